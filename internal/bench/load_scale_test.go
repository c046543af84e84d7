package bench

import (
	"context"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
)

// TestAccessLoadAtScale runs only the benchmark's many-clients line of
// GET /users/{id}/access (against its bare SQL, as measureLoad does) on
// the seeded account at the scale in USHER_BENCH_LOAD (1 for 150,000
// seats), on both engines, without the ingest, which that line does not
// depend on: it takes a minute or two instead of the whole run.
// USHER_BENCH_LOAD_FOR sets the time of each half (default 30s);
// USHER_BENCH_LOAD_PROFILE=FILE writes a CPU profile of both halves to
// FILE.sqlite and FILE.postgres; USHER_BENCH_LOAD_CEILING=1 also runs the
// same requests without a valid token (401 before the database), the
// rate of HTTP and the load generator alone. It is skipped unless asked
// for.
func TestAccessLoadAtScale(t *testing.T) {
	s := os.Getenv("USHER_BENCH_LOAD")
	if s == "" {
		t.Skip("set USHER_BENCH_LOAD to a scale, e.g. 1")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Scaled(f)
	if d := os.Getenv("USHER_BENCH_LOAD_FOR"); d != "" {
		if cfg.LoadFor, err = time.ParseDuration(d); err != nil {
			t.Fatal(err)
		}
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w, err := seed(ctx, db, cfg, time.Now(), t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		if err := analyze(ctx, db); err != nil {
			t.Fatal(err)
		}
		srv, base, err := serve(db, usage.New(db.Usage(), usage.Config{}))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		c := &client{http: &http.Client{}, base: base, token: w.token}
		// The benchmark's access line (measureLoad), alone.
		stmt, err := db.ReadSQL().PrepareContext(ctx, db.Rebind(bareAccessSQL))
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		var next atomic.Uint64
		userID := func() int64 { return w.userIDs[int(next.Add(1)*7919)%len(w.userIDs)] }
		if p := os.Getenv("USHER_BENCH_LOAD_PROFILE"); p != "" {
			f, err := os.Create(p + "." + db.Engine())
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				t.Fatal(err)
			}
			defer pprof.StopCPUProfile()
		}
		l, err := measureLoadOf(ctx, c, cfg, "/api/v1/users/{id}/access",
			func() string { return c.base + "/api/v1/users/" + strconv.FormatInt(userID(), 10) + "/access" },
			func(ctx context.Context) (int, error) { return countRows(ctx, stmt, userID(), w.account.ID) })
		if err != nil {
			t.Fatal(err)
		}
		if l.Errors != 0 {
			t.Errorf("%s: %d errors of %d: %s", l.Path, l.Errors, l.Requests, l.ErrorText)
		}
		t.Logf("%s %s: %.0f requests/s, p50 %v, p99 %v; bare SQL %.0f/s, p50 %v, p99 %v; ratio %.2f",
			db.Engine(), l.Path, l.RPS, l.P50, l.P99, l.SQLRPS, l.SQLP50, l.SQLP99, l.Ratio())
		if os.Getenv("USHER_BENCH_LOAD_CEILING") != "" {
			// The same requests without a valid token: refused with 401
			// before the database is asked, so HTTP, the middleware and
			// the load generator alone; its rate bounds the access line's.
			none := &client{http: c.http, base: c.base, token: "not-a-token"}
			l, err := measureLoadOf(ctx, none, cfg, "/api/v1/users/{id}/access (401)",
				func() string { return none.base + "/api/v1/users/" + strconv.FormatInt(userID(), 10) + "/access" },
				func(ctx context.Context) (int, error) { return countRows(ctx, stmt, userID(), w.account.ID) })
			if err != nil {
				t.Fatal(err)
			}
			rps := float64(l.Requests) / cfg.LoadFor.Seconds() // vegeta's throughput counts successes
			t.Logf("%s %s: %.0f requests/s, p50 %v, p99 %v; bare SQL %.0f/s; ratio %.2f",
				db.Engine(), l.Path, rps, l.P50, l.P99, l.SQLRPS, rps/l.SQLRPS)
		}
	})
}
