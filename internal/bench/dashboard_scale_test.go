package bench

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
)

// TestDashboardCountsAtScale times the dashboard's counts (the usage
// service, no HTTP) after a change, at the scale in USHER_BENCH_DASHBOARD
// (1 for 150,000 seats), on both engines. Without ingesting 10,000,000
// events it takes a minute or two: the days of use the events would make
// are loaded directly, with the summaries the ingest keeps. It is skipped
// unless asked for; docs/performance.md has its figures.
func TestDashboardCountsAtScale(t *testing.T) {
	s := os.Getenv("USHER_BENCH_DASHBOARD")
	if s == "" {
		t.Skip("set USHER_BENCH_DASHBOARD to a scale, e.g. 1")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Scaled(f)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		w, err := seed(ctx, db, cfg, now, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		g := newEvents(cfg, w, now)
		type key struct {
			seat int
			day  usage.Day
		}
		last := key{-1, 0}
		var rows [][4]int64
		lastAt := map[int]int64{}
		_ = g.each(func(seat int, at int64) error {
			d := usage.DayOf(time.UnixMilli(at), w.loc)
			lastAt[seat] = max(lastAt[seat], at)
			if k := (key{seat, d}); k != last {
				last = k
				st := w.seats[seat]
				rows = append(rows, [4]int64{w.userIDs[st.user], w.products[st.product].id, int64(d), int64(d.Month())})
			}
			return nil
		})
		err = inTx(ctx, db, func(tx *sql.Tx) error {
			for lo := 0; lo < len(rows); lo += chunkRows {
				hi := min(lo+chunkRows, len(rows))
				var days, months strings.Builder
				var dargs, margs []any
				for i, r := range rows[lo:hi] {
					if i > 0 {
						days.WriteString(", ")
						months.WriteString(", ")
					}
					days.WriteString("(?, ?, ?, ?)")
					months.WriteString("(?, ?, ?, ?)")
					dargs = append(dargs, w.account.ID, r[0], r[1], r[2])
					margs = append(margs, w.account.ID, r[0], r[1], r[3])
				}
				if _, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO usage_days (account_id, user_id, product_id, day) VALUES "+days.String()), dargs...); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO usage_user_months (account_id, user_id, product_id, month) VALUES "+months.String()+" ON CONFLICT DO NOTHING"), margs...); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO usage_months (account_id, month, product_id, users)
				SELECT account_id, month, product_id, COUNT(*) FROM usage_user_months GROUP BY account_id, month, product_id`); err != nil {
				return err
			}
			for seat, at := range lastAt {
				st := w.seats[seat]
				if _, err := tx.ExecContext(ctx, db.Rebind("UPDATE assignments SET last_used_at = ? WHERE account_id = ? AND user_id = ? AND subscription_id = ?"),
					at, w.account.ID, w.userIDs[st.user], w.products[st.product].subscriptionID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := analyze(ctx, db); err != nil {
			t.Fatal(err)
		}
		actor, err := access.New(db.Access(), nil).Authenticate(ctx, w.token)
		if err != nil {
			t.Fatal(err)
		}
		times := make([]time.Duration, 10)
		for i := range times {
			use := usage.New(db.Usage(), usage.Config{}) // nothing cached
			start := time.Now()
			d, err := use.Dashboard(ctx, actor)
			times[i] = time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Products) != len(plans)-1 {
				t.Fatalf("charts of %d products, want %d", len(d.Products), len(plans)-1)
			}
		}
		p50, p99 := percentiles(times)
		t.Logf("%s, %d seats, %d days of use: dashboard counts after a change p50 %s, max %s", db.Engine(), len(w.seats), len(rows), ms(p50), ms(p99))
	})
}
