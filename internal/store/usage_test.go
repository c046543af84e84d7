package store_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// usageFixture is an account with two users holding seats of one premium
// subscription of modelstudio, and a second account with a user of its own.
type usageFixture struct {
	acct, other usher.Account
	ada, bob    usher.User
	stranger    usher.User
	sub         usher.Subscription
	product     int64
}

func newUsageFixture(t *testing.T, db *store.DB) usageFixture {
	t.Helper()
	ctx := context.Background()
	var f usageFixture
	f.acct = newAccount(t, db, "Acme")
	f.other = newAccount(t, db, "Globex")
	f.ada = newUser(t, db, f.acct.ID, "ada@example.com", "Ada Lovelace")
	f.bob = newUser(t, db, f.acct.ID, "bob@example.com", "Bob Babbage")
	f.stranger = newUser(t, db, f.other.ID, "ada@example.com", "Ada Elsewhere")
	f.sub = newSubscription(t, db, f.acct.ID, "C-1", 10)
	f.product = f.sub.Product.ID
	write(t, db, func(tx *store.Tx) error {
		if err := assign(ctx, tx, f.acct.ID, f.ada.ID, f.sub.ID); err != nil {
			return err
		}
		return assign(ctx, tx, f.acct.ID, f.bob.ID, f.sub.ID)
	})
	return f
}

func ev(user, product int64, at time.Time) usage.StoredEvent {
	return usage.StoredEvent{UserID: user, ProductID: product, At: at, Day: usage.DayOf(at, time.UTC)}
}

func TestUsageEventsAreStoredOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		events := []usage.StoredEvent{
			ev(f.bob.ID, f.product, now.Add(time.Hour)),
			ev(f.ada.ID, f.product, now),
			ev(f.ada.ID, f.product, now.Add(time.Millisecond)),
		}
		var got []usage.StoredEvent
		write(t, db, func(tx *store.Tx) (err error) {
			got, err = tx.InsertEvents(ctx, f.acct.ID, events)
			return err
		})
		if len(got) != 3 {
			t.Fatalf("first insert: got %d events, want 3", len(got))
		}
		for _, e := range got {
			if !slices.Contains(events, e) {
				t.Errorf("returned %+v, which was not sent", e)
			}
		}
		// The same events again, and one new: only the new one is stored.
		more := append(slices.Clone(events), ev(f.bob.ID, f.product, now.Add(2*time.Hour)))
		write(t, db, func(tx *store.Tx) (err error) {
			got, err = tx.InsertEvents(ctx, f.acct.ID, more)
			return err
		})
		if len(got) != 1 || got[0] != more[3] {
			t.Fatalf("second insert: got %+v, want only %+v", got, more[3])
		}
		// The same instant in another account is another event.
		write(t, db, func(tx *store.Tx) (err error) {
			got, err = tx.InsertEvents(ctx, f.other.ID, []usage.StoredEvent{ev(f.stranger.ID, f.product, now)})
			return err
		})
		if len(got) != 1 {
			t.Fatalf("other account: got %d events, want 1", len(got))
		}
		if n := count(t, db, "SELECT COUNT(*) FROM usage_events"); n != 5 {
			t.Fatalf("stored %d events, want 5", n)
		}
	})
}

// usage_events has no foreign key to users: the ingest stores events of the
// users LockUsers confirmed, and deleting a user deletes their events.
func TestUsageUsersAreConfirmedInTheirAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		var got map[int64]bool
		write(t, db, func(tx *store.Tx) (err error) {
			got, err = tx.LockUsers(ctx, f.acct.ID, []int64{f.stranger.ID, f.ada.ID, f.ada.ID, f.bob.ID + 1000})
			return err
		})
		if len(got) != 1 || !got[f.ada.ID] {
			t.Fatalf("confirmed %v, want only ada (%d)", got, f.ada.ID)
		}
	})
}

func TestUsageEventsGoWithTheirUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		write(t, db, func(tx *store.Tx) error {
			if _, err := tx.InsertEvents(ctx, f.acct.ID, []usage.StoredEvent{ev(f.ada.ID, f.product, now), ev(f.bob.ID, f.product, now)}); err != nil {
				return err
			}
			_, err := tx.InsertEvents(ctx, f.other.ID, []usage.StoredEvent{ev(f.stranger.ID, f.product, now)})
			return err
		})
		write(t, db, func(tx *store.Tx) error { return tx.DeleteUser(ctx, f.acct.ID, f.ada.ID) })
		if n := count(t, db, "SELECT COUNT(*) FROM usage_events WHERE user_id = %d", f.ada.ID); n != 0 {
			t.Fatalf("%d events of the deleted user stay", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM usage_events"); n != 2 {
			t.Fatalf("%d events stay, want the other two", n)
		}
	})
}

func TestUsageBulkInsertOfManyRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		// More rows than one SQLite statement takes, spread over 100 days.
		var events []usage.StoredEvent
		for i := range 4500 {
			events = append(events, ev(f.ada.ID, f.product, now.Add(-time.Duration(i)*31*time.Minute)))
		}
		var stored []usage.StoredEvent
		var days []usage.UseDay
		write(t, db, func(tx *store.Tx) (err error) {
			if stored, err = tx.InsertEvents(ctx, f.acct.ID, events); err != nil {
				return err
			}
			var all []usage.UseDay
			for _, e := range stored {
				all = append(all, usage.UseDay{UserID: e.UserID, ProductID: e.ProductID, Day: e.Day})
			}
			if days, err = tx.AddDays(ctx, f.acct.ID, all); err != nil {
				return err
			}
			return tx.AddToRollups(ctx, f.acct.ID, days)
		})
		first, last := events[len(events)-1].Day, events[0].Day
		if len(stored) != 4500 || len(days) != int(last-first)+1 {
			t.Fatalf("got %d events and %d days, want 4500 and %d", len(stored), len(days), last-first+1)
		}
		var rf, rl, rd int
		if err := db.SQL().QueryRowContext(ctx, fmt.Sprintf(
			"SELECT first_day, last_day, days FROM usage_rollups WHERE account_id = %d AND user_id = %d", f.acct.ID, f.ada.ID)).
			Scan(&rf, &rl, &rd); err != nil {
			t.Fatal(err)
		}
		if rf != int(first) || rl != int(last) || rd != len(days) {
			t.Fatalf("rollup: got %d..%d, %d days; want %d..%d, %d days", rf, rl, rd, first, last, len(days))
		}
	})
}

func TestUsageDaysAndRollups(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		add := func(days ...usage.Day) []usage.UseDay {
			t.Helper()
			in := make([]usage.UseDay, len(days))
			for i, d := range days {
				in[i] = usage.UseDay{UserID: f.ada.ID, ProductID: f.product, Day: d}
			}
			var added []usage.UseDay
			write(t, db, func(tx *store.Tx) (err error) {
				if added, err = tx.AddDays(ctx, f.acct.ID, in); err != nil {
					return err
				}
				if len(added) == 0 {
					return nil
				}
				return tx.AddToRollups(ctx, f.acct.ID, added)
			})
			return added
		}
		rollup := func() (first, last, days int) {
			t.Helper()
			err := db.SQL().QueryRowContext(ctx, fmt.Sprintf(
				"SELECT first_day, last_day, days FROM usage_rollups WHERE account_id = %d AND user_id = %d AND product_id = %d",
				f.acct.ID, f.ada.ID, f.product)).Scan(&first, &last, &days)
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if got := add(100, 102, 100); len(got) != 2 {
			t.Fatalf("first add: got %v, want days 100 and 102", got)
		}
		if a, b, n := rollup(); a != 100 || b != 102 || n != 2 {
			t.Fatalf("rollup: got %d..%d %d days, want 100..102 2 days", a, b, n)
		}
		// A day already counted is not new: nothing to write.
		if got := add(102, 100); len(got) != 0 {
			t.Fatalf("known days: got %v, want none new", got)
		}
		// Late data before the first day and new data after the last.
		if got := add(90, 101, 110); len(got) != 3 {
			t.Fatalf("third add: got %v, want 3 new", got)
		}
		if a, b, n := rollup(); a != 90 || b != 110 || n != 5 {
			t.Fatalf("rollup: got %d..%d %d days, want 90..110 5 days", a, b, n)
		}
	})
}

func TestUsageProcessedAtAndPrune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		var at *time.Time
		read(t, db, func(tx *store.Tx) (err error) { at, err = tx.ProcessedAt(ctx, f.acct.ID); return err })
		if at != nil {
			t.Fatalf("processed at before any ingest: got %v, want nil", at)
		}
		write(t, db, func(tx *store.Tx) error {
			if err := tx.SetProcessedAt(ctx, f.acct.ID, now.Add(-time.Hour)); err != nil {
				return err
			}
			return tx.SetProcessedAt(ctx, f.acct.ID, now)
		})
		read(t, db, func(tx *store.Tx) (err error) { at, err = tx.ProcessedAt(ctx, f.acct.ID); return err })
		if at == nil || !at.Equal(now) {
			t.Fatalf("processed at: got %v, want %v", at, now)
		}

		var events []usage.StoredEvent
		for i := range 10 {
			events = append(events, ev(f.ada.ID, f.product, now.Add(-time.Duration(i)*24*time.Hour)))
		}
		write(t, db, func(tx *store.Tx) error {
			_, err := tx.InsertEvents(ctx, f.acct.ID, events)
			return err
		})
		before := now.Add(-4*24*time.Hour + time.Minute) // events 4..9 are older
		var n int64
		write(t, db, func(tx *store.Tx) (err error) { n, err = tx.PruneEvents(ctx, before, 4); return err })
		if n != 4 {
			t.Fatalf("first prune: got %d, want the limit of 4", n)
		}
		write(t, db, func(tx *store.Tx) (err error) { n, err = tx.PruneEvents(ctx, before, 4); return err })
		if n != 2 {
			t.Fatalf("second prune: got %d, want 2", n)
		}
		if got := count(t, db, "SELECT COUNT(*) FROM usage_events WHERE at >= %d", before.UnixMilli()); got != 4 {
			t.Fatalf("%d recent events left, want 4", got)
		}
	})
}

func TestUsageUserAndProductIDs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		read(t, db, func(tx *store.Tx) error {
			ids, err := tx.UserIDs(ctx, f.acct.ID, []string{"ada@example.com", "ghost@example.com", "bob@example.com"})
			if err != nil {
				return err
			}
			if len(ids) != 2 || ids["ada@example.com"] != f.ada.ID || ids["bob@example.com"] != f.bob.ID {
				t.Errorf("user ids: got %v", ids)
			}
			products, err := tx.ProductIDs(ctx)
			if err != nil {
				return err
			}
			if products["modelstudio"] != f.product || len(products) != 5 {
				t.Errorf("product ids: got %v", products)
			}
			return nil
		})
	})
}

// reportQuery is a query for the whole account with a cutoff at day.
func reportQuery(f usageFixture, cutoff usage.Day) usage.ReportQuery {
	d := cutoff.Date()
	at := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
	return usage.ReportQuery{
		AccountID: f.acct.ID, Status: "all", CutoffDay: cutoff, CutoffAt: at, AssignedBefore: at, Sort: "name",
	}
}

func TestUsageReportRowsAndTotals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		// Ada used the product on three days, two of them on or after the cutoff.
		today := usage.DayOf(now, time.UTC)
		cutoff := today - 30
		days := []usage.UseDay{
			{UserID: f.ada.ID, ProductID: f.product, Day: cutoff - 1},
			{UserID: f.ada.ID, ProductID: f.product, Day: cutoff},
			{UserID: f.ada.ID, ProductID: f.product, Day: today},
		}
		write(t, db, func(tx *store.Tx) error {
			added, err := tx.AddDays(ctx, f.acct.ID, days)
			if err != nil {
				return err
			}
			return tx.AddToRollups(ctx, f.acct.ID, added)
		})
		// Seats were assigned at now, after the cutoff: move Bob's before it.
		if _, err := db.SQL().ExecContext(ctx, fmt.Sprintf("UPDATE assignments SET assigned_at = %d WHERE user_id = %d",
			now.Add(-60*24*time.Hour).UnixMilli(), f.bob.ID)); err != nil {
			t.Fatal(err)
		}
		q := reportQuery(f, cutoff)
		var rows []usage.RawRow
		var totals usage.ReportTotals
		var byProduct []usage.ProductSummary
		read(t, db, func(tx *store.Tx) (err error) {
			if rows, err = tx.ReportRows(ctx, q); err != nil {
				return err
			}
			if totals, err = tx.ReportTotals(ctx, q); err != nil {
				return err
			}
			byProduct, err = tx.InactiveByProduct(ctx, q)
			return err
		})
		if len(rows) != 2 || rows[0].UserID != f.ada.ID || rows[1].UserID != f.bob.ID {
			t.Fatalf("rows: got %+v, want Ada then Bob", rows)
		}
		a, b := rows[0], rows[1]
		if a.DaysUsed != 2 || a.LastDay == nil || *a.LastDay != today || a.Plan != usher.PlanPremium ||
			a.ContractNumber != "C-1" || a.ProductCode != "modelstudio" || a.Email != "ada@example.com" || !a.AssignedAt.Equal(now) {
			t.Errorf("Ada: got %+v", a)
		}
		if b.DaysUsed != 0 || b.LastDay != nil {
			t.Errorf("Bob: got %+v, want never used", b)
		}
		if !reflect.DeepEqual(totals, usage.ReportTotals{Seats: 2, Users: 2, InactiveSeats: 1, InactiveUsers: 1, NeverUsedSeats: 1, InactiveCost: []usher.Cost{}}) {
			t.Errorf("totals: got %+v", totals)
		}
		if len(byProduct) != 1 || byProduct[0] != (usage.ProductSummary{Product: "modelstudio", ProductName: "Model Studio", InactiveSeats: 1, InactiveUsers: 1}) {
			t.Errorf("by product: got %+v", byProduct)
		}

		t.Run("StatusFilter", func(t *testing.T) {
			q := q
			q.Status = "inactive"
			read(t, db, func(tx *store.Tx) (err error) { rows, err = tx.ReportRows(ctx, q); return err })
			if len(rows) != 1 || rows[0].UserID != f.bob.ID {
				t.Fatalf("got %+v, want Bob only", rows)
			}
		})
		t.Run("NoVisibleSubscriptionsNoRows", func(t *testing.T) {
			q := q
			q.SubscriptionIDs = []int64{}
			read(t, db, func(tx *store.Tx) (err error) { totals, err = tx.ReportTotals(ctx, q); return err })
			if totals.Seats != 0 {
				t.Fatalf("got %+v, want nothing", totals)
			}
		})
		t.Run("OtherAccountSeesNothing", func(t *testing.T) {
			q := q
			q.AccountID = f.other.ID
			read(t, db, func(tx *store.Tx) (err error) { rows, err = tx.ReportRows(ctx, q); return err })
			if len(rows) != 0 {
				t.Fatalf("got %+v, want nothing", rows)
			}
		})
		t.Run("QueryMatchesNameOrEmailLiterally", func(t *testing.T) {
			for query, want := range map[string]int{"babbage": 1, "EXAMPLE.COM": 2, "%": 0, "_": 0} {
				q := q
				q.Query = query
				read(t, db, func(tx *store.Tx) (err error) { rows, err = tx.ReportRows(ctx, q); return err })
				if len(rows) != want {
					t.Errorf("q=%q: got %d rows, want %d", query, len(rows), want)
				}
			}
		})
		t.Run("KeysetPagesInEveryOrder", func(t *testing.T) {
			for _, sort := range []string{"name", "email", "product", "last_used", "days_used"} {
				for _, desc := range []bool{false, true} {
					q := q
					q.Sort, q.Desc = sort, desc
					var all, paged []usage.RawRow
					read(t, db, func(tx *store.Tx) (err error) {
						if all, err = tx.ReportRows(ctx, q); err != nil {
							return err
						}
						q.Limit = 1
						for {
							page, err := tx.ReportRows(ctx, q)
							if err != nil || len(page) == 0 {
								return err
							}
							paged = append(paged, page...)
							r := page[0]
							c := usage.ReportCursor{UserID: r.UserID, SubscriptionID: r.SubscriptionID}
							switch sort {
							case "name":
								c.Key = "ada lovelace"
								if r.UserID == f.bob.ID {
									c.Key = "bob babbage"
								}
							case "email":
								c.Key = r.Email
							case "product":
								c.Key = r.ProductCode
							case "last_used":
								c.Num = -1
								if r.LastDay != nil {
									c.Num = int64(*r.LastDay)
								}
							case "days_used":
								c.Num = int64(r.DaysUsed)
							}
							q.After = &c
						}
					})
					var streamed []usage.RawRow
					read(t, db, func(tx *store.Tx) error {
						q := q
						q.Limit, q.After = 0, nil
						return tx.EachReportRow(ctx, q, func(r usage.RawRow) error { streamed = append(streamed, r); return nil })
					})
					if len(all) != 2 || !slices.EqualFunc(all, paged, sameRow) || !slices.EqualFunc(all, streamed, sameRow) {
						t.Errorf("sort %s desc %v: all %v, paged %v, streamed %v", sort, desc, ids(all), ids(paged), ids(streamed))
					}
					if desc && sort == "days_used" && all[0].UserID != f.ada.ID {
						t.Errorf("-days_used: Ada used it most, got %v first", ids(all))
					}
				}
			}
		})
	})
}

func sameRow(a, b usage.RawRow) bool {
	return a.UserID == b.UserID && a.SubscriptionID == b.SubscriptionID
}

func ids(rows []usage.RawRow) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.UserID
	}
	return out
}

// BenchmarkUsageReportPage measures the first page of 100 report rows by
// most days used, with the totals, in an account of 5,000 seats each used
// on 60 of 90 days.
func BenchmarkUsageReportPage(b *testing.B) {
	for _, engine := range storetest.Engines {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, engine)
			acct := newAccount(b, db, "Acme")
			sub := newSubscription(b, db, acct.ID, "C-1", 5000)
			today := usage.DayOf(now, time.UTC)
			write(b, db, func(tx *store.Tx) error {
				var days []usage.UseDay
				for i := range 5000 {
					u := usher.User{AccountID: acct.ID, Email: fmt.Sprintf("u%d@example.com", i), Name: fmt.Sprintf("User %04d", (i*7919)%5000), Status: usher.UserActive}
					if err := tx.CreateUser(ctx, &u); err != nil {
						return err
					}
					if err := assign(ctx, tx, acct.ID, u.ID, sub.ID); err != nil {
						return err
					}
					for d := range 90 {
						if (d+i)%3 != 0 {
							days = append(days, usage.UseDay{UserID: u.ID, ProductID: sub.Product.ID, Day: today - usage.Day(d) - usage.Day(i%200)})
						}
					}
				}
				added, err := tx.AddDays(ctx, acct.ID, days)
				if err != nil {
					return err
				}
				return tx.AddToRollups(ctx, acct.ID, added)
			})
			if engine == store.Postgres {
				if _, err := db.SQL().ExecContext(ctx, "ANALYZE"); err != nil {
					b.Fatal(err)
				}
			}
			q := reportQuery(usageFixture{acct: acct}, today-30)
			q.Limit, q.Sort, q.Desc = 100, "days_used", true
			b.ResetTimer()
			for range b.N {
				err := db.Read(ctx, func(tx *store.Tx) error {
					rows, err := tx.ReportRows(ctx, q)
					if err == nil && len(rows) != 100 {
						err = fmt.Errorf("got %d rows, want 100", len(rows))
					}
					if err == nil {
						_, err = tx.ReportTotals(ctx, q)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The report and pruning are served by indexes on both engines: SQLite's
// plan has no full scan of a table, and PostgreSQL, told to avoid sequential
// scans, finds an index for every table.
func TestUsageQueriesUseIndexes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		for _, q := range []usage.ReportQuery{
			reportQuery(f, 20000),
			func() usage.ReportQuery {
				q := reportQuery(f, 20000)
				q.SubscriptionIDs, q.Status, q.Sort, q.Limit = []int64{f.sub.ID}, "inactive", "days_used", 100
				q.After = &usage.ReportCursor{Num: 3, UserID: 1, SubscriptionID: 1}
				return q
			}(),
			func() usage.ReportQuery {
				q := reportQuery(f, 20000)
				q.Status, q.Limit = "never_used", 100
				return q
			}(),
		} {
			for name, qa := range store.UsageQueriesForTest(db.Engine(), q) {
				query, args := qa[0].(string), qa[1].([]any)
				tx, err := db.SQL().BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				explain := "EXPLAIN QUERY PLAN "
				if db.Engine() == store.Postgres {
					explain = "EXPLAIN "
					if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
						t.Fatal(err)
					}
				}
				rows, err := tx.QueryContext(ctx, explain+query, args...)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var plan []string
				cols, _ := rows.Columns()
				for rows.Next() {
					vals := make([]any, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					if err := rows.Scan(ptrs...); err != nil {
						t.Fatal(err)
					}
					plan = append(plan, fmt.Sprint(vals[len(vals)-1]))
				}
				rows.Close()
				_ = tx.Rollback()
				for _, line := range plan {
					l := strings.TrimSpace(line)
					if strings.HasPrefix(l, "SCAN ") && !strings.HasPrefix(l, "SCAN CONSTANT") || strings.Contains(l, "Seq Scan") {
						t.Errorf("%s: a full scan: %s\nplan:\n%s", name, l, strings.Join(plan, "\n"))
					}
				}
			}
		}
	})
}

// WriteEvents is one ingest batch's whole write (set-based through a COPY
// staging table on PostgreSQL): what it counts and what it leaves must be
// the same on both engines, and sending the batch again writes nothing.
func TestUsageWriteEventsCountsAndIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newUsageFixture(t, db)
		day := now.Truncate(24 * time.Hour)
		events := []usage.StoredEvent{
			ev(f.ada.ID, f.product, day.Add(-48*time.Hour+time.Hour)),
			ev(f.ada.ID, f.product, day.Add(-48*time.Hour+2*time.Hour)),
			ev(f.ada.ID, f.product, day.Add(3*time.Hour)),
			ev(f.bob.ID, f.product, day.Add(time.Hour)),
		}
		var w usage.EventWrites
		writeBatch := func(evs []usage.StoredEvent) {
			t.Helper()
			write(t, db, func(tx *store.Tx) (err error) {
				w, err = tx.WriteEvents(ctx, f.acct.ID, evs)
				return err
			})
		}
		writeBatch(events)
		// Ada's two days and Bob's one fall in March: two user-months.
		if want := (usage.EventWrites{Events: 4, Days: 3, Rollups: 2, Seats: 2, Months: 2}); w != want {
			t.Fatalf("first write: got %+v, want %+v", w, want)
		}
		writeBatch(events)
		if w != (usage.EventWrites{}) {
			t.Fatalf("same batch again: got %+v, want nothing written", w)
		}
		// One new event on a day already recorded: stored, but no day,
		// rollup or seat write.
		writeBatch([]usage.StoredEvent{ev(f.ada.ID, f.product, day.Add(4*time.Hour))})
		if want := (usage.EventWrites{Events: 1}); w != want {
			t.Fatalf("event on a known day: got %+v, want %+v", w, want)
		}
		// The dashboard's count of March's users of the product.
		var users, month int64
		err := db.SQL().QueryRowContext(ctx, db.Rebind(`SELECT users, month FROM usage_months WHERE account_id = ? AND product_id = ?`),
			f.acct.ID, f.product).Scan(&users, &month)
		if err != nil {
			t.Fatal(err)
		}
		if wantMonth := usage.DayOf(day, time.UTC).Month(); users != 2 || month != int64(wantMonth) {
			t.Errorf("usage months: %d users in %d, want 2 in %d", users, month, wantMonth)
		}
		var days, first, last, lastUsed int64
		err = db.SQL().QueryRowContext(ctx, db.Rebind(`
			SELECT r.days, r.first_day, r.last_day, a.last_used_at FROM usage_rollups r
			JOIN assignments a ON a.account_id = r.account_id AND a.user_id = r.user_id
			WHERE r.account_id = ? AND r.user_id = ?`), f.acct.ID, f.ada.ID).Scan(&days, &first, &last, &lastUsed)
		if err != nil {
			t.Fatal(err)
		}
		wantFirst, wantLast := usage.DayOf(day.Add(-47*time.Hour), time.UTC), usage.DayOf(day, time.UTC)
		if days != 2 || first != int64(wantFirst) || last != int64(wantLast) {
			t.Errorf("ada's rollup: %d days from %d to %d, want 2 from %d to %d", days, first, last, wantFirst, wantLast)
		}
		if want := day.Add(3 * time.Hour).UnixMilli(); lastUsed != want {
			t.Errorf("ada's seat last used at %d, want %d (the latest event of the batch that gained the day)", lastUsed, want)
		}
	})
}
