package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// TestReportPagesAreTheSameWhicheverWayTheyAreFound pages through the report
// with and without the hint that many rows match (which on SQLite walks
// users in name order instead of sorting the matches) and wants the same
// rows in the same order both ways, for every status filter.
func TestReportPagesAreTheSameWhicheverWayTheyAreFound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		std := newSubscription(t, db, acct.ID, "C-1", 100)
		// Seats are assigned at now; the range starts a day later, so only
		// the seats used two days later are active.
		cutoff := now.Add(24 * time.Hour)
		var users []usher.User
		for i := range 60 {
			// Names out of id order, some equal, so ties break by id.
			users = append(users, newUser(t, db, acct.ID, fmt.Sprintf("u%02d@example.com", i), fmt.Sprintf("User %02d", (i*37)%25)))
		}
		write(t, db, func(tx *store.Tx) error {
			for i, u := range users {
				if err := assign(ctx, tx, acct.ID, u.ID, std.ID); err != nil {
					return err
				}
				if i%3 == 0 { // used recently: active
					if _, err := tx.TouchSeats(ctx, acct.ID, []usage.SeatUse{{UserID: u.ID, ProductID: std.Product.ID, At: now.Add(48 * time.Hour)}}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		for _, status := range []string{"all", "inactive", "active", "never_used", "stopped_using"} {
			t.Run(status, func(t *testing.T) {
				pages := func(matching int) [][2]int64 {
					var out [][2]int64
					q := usage.ReportQuery{AccountID: acct.ID, Status: status, Sort: "name", Limit: 4, Matching: matching,
						CutoffAt: cutoff, AssignedBefore: cutoff, CutoffDay: usage.DayOf(cutoff, time.UTC)}
					for range 100 {
						var rows []usage.RawRow
						read(t, db, func(tx *store.Tx) (err error) {
							rows, err = tx.ReportRows(ctx, q)
							return err
						})
						for _, r := range rows {
							out = append(out, [2]int64{r.UserID, r.SubscriptionID})
						}
						if len(rows) < q.Limit {
							return out
						}
						last := rows[len(rows)-1]
						q.After = &usage.ReportCursor{Key: strings.ToLower(last.Name), UserID: last.UserID, SubscriptionID: last.SubscriptionID}
					}
					t.Fatal("paging did not end")
					return nil
				}
				sorted, walked := pages(0), pages(1_000_000)
				want := map[string]int{"all": 60, "inactive": 40, "active": 20, "never_used": 40, "stopped_using": 0}[status]
				if len(sorted) != want {
					t.Fatalf("sorted: got %d rows, want %d", len(sorted), want)
				}
				if !slices.Equal(sorted, walked) {
					t.Fatalf("pages differ:\nsorted %v\nwalked %v", sorted, walked)
				}
			})
		}
	})
}

// TestDataVersionMovesOnWithEveryAuditedChangeAndIngest: the report keeps
// totals per version, so a change that did not move it would show stale
// totals.
func TestDataVersionMovesOnWithEveryAuditedChangeAndIngest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		other := newAccount(t, db, "Globex")
		version := func(id int64) string {
			var v string
			read(t, db, func(tx *store.Tx) (err error) {
				v, _, err = tx.ReportVersion(ctx, id)
				return err
			})
			return v
		}
		v0, o0 := version(acct.ID), version(other.ID)
		write(t, db, func(tx *store.Tx) error {
			return tx.InsertAudit(ctx, &usher.AuditEntry{AccountID: acct.ID, ActorEmail: "a@acme.test", Action: "user.update", At: now})
		})
		v1 := version(acct.ID)
		if v1 == v0 {
			t.Fatalf("an audited change left the version at %s", v1)
		}
		write(t, db, func(tx *store.Tx) error { return tx.SetProcessedAt(ctx, acct.ID, now) })
		v2 := version(acct.ID)
		if v2 == v1 {
			t.Fatalf("processing usage left the version at %s", v2)
		}
		// A transaction that fails changes nothing, its version included.
		err := db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.InsertAudit(ctx, &usher.AuditEntry{AccountID: acct.ID, ActorEmail: "a@acme.test", Action: "user.update", At: now}); err != nil {
				return err
			}
			return usher.Errorf(usher.ECONFLICT, "changed my mind")
		})
		if err == nil || version(acct.ID) != v2 {
			t.Fatalf("a rolled-back change moved the version: %v, %s → %s", err, v2, version(acct.ID))
		}
		if version(other.ID) != o0 {
			t.Fatalf("another account's version moved")
		}
	})
}

// TestReportRowsAtReadsTheVersionWithThePage: the page read outside a
// transaction says whether the account's data version is still the one
// read before it; an empty page cannot say, and says no. Peek refuses
// writes.
func TestReportRowsAtReadsTheVersionWithThePage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		std := newSubscription(t, db, acct.ID, "C-1", 10)
		u := newUser(t, db, acct.ID, "ada@example.com", "Ada")
		write(t, db, func(tx *store.Tx) error { return assign(ctx, tx, acct.ID, u.ID, std.ID) })
		cutoff := now.Add(24 * time.Hour)
		q := usage.ReportQuery{AccountID: acct.ID, Status: "all", Sort: "name", Limit: 10,
			CutoffAt: cutoff, AssignedBefore: cutoff, CutoffDay: usage.DayOf(cutoff, time.UTC)}
		var version string
		err := db.Peek(ctx, func(tx *store.Tx) (err error) {
			got, v, _, err := tx.ReportAccount(ctx, acct.ID)
			if err == nil && got.ID != acct.ID {
				t.Errorf("ReportAccount: account %d, want %d", got.ID, acct.ID)
			}
			version = v
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rowsAt := func(q usage.ReportQuery, version string) ([]usage.RawRow, bool) {
			var rows []usage.RawRow
			var same bool
			if err := db.Peek(ctx, func(tx *store.Tx) (err error) {
				rows, same, err = tx.ReportRowsAt(ctx, q, version)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return rows, same
		}
		if rows, same := rowsAt(q, version); len(rows) != 1 || rows[0].UserID != u.ID || !same {
			t.Errorf("same version: %d rows, same %v; want Ada's seat, same", len(rows), same)
		}
		empty := q
		empty.SubscriptionID = std.ID + 1000
		if rows, same := rowsAt(empty, version); len(rows) != 0 || same {
			t.Errorf("no row: %d rows, same %v; want none, not same", len(rows), same)
		}
		write(t, db, func(tx *store.Tx) error { return tx.SetProcessedAt(ctx, acct.ID, now) }) // moves the version on
		if rows, same := rowsAt(q, version); len(rows) != 1 || same {
			t.Errorf("after a change: %d rows, same %v; want one row, not same", len(rows), same)
		}
		err = db.Peek(ctx, func(tx *store.Tx) error {
			return tx.SetProcessedAt(ctx, acct.ID, now)
		})
		if err == nil {
			t.Error("a write through Peek succeeded; want it refused")
		}
	})
}

// TestTokenReportAccountReadsTheTokensAccount: the report's first read with
// a token gives the token with its holder and the token's own account with
// the version ReportAccount reads; an unknown hash is not found.
func TestTokenReportAccountReadsTheTokensAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		newAccount(t, db, "Other")
		acct := newAccount(t, db, "Acme")
		u := newUser(t, db, acct.ID, "ada@example.com", "Ada")
		_, hash := access.NewToken()
		tok := usher.Token{AccountID: acct.ID, UserID: u.ID, Name: "ci", Scope: usher.ScopeRead, Hash: hash, CreatedAt: now}
		write(t, db, func(tx *store.Tx) error { return tx.CreateToken(ctx, &tok) })
		write(t, db, func(tx *store.Tx) error { return tx.SetProcessedAt(ctx, acct.ID, now) })
		err := db.Peek(ctx, func(tx *store.Tx) error {
			h, got, v, processed, err := tx.TokenReportAccount(ctx, hash)
			if err != nil {
				return err
			}
			want, wantV, _, err := tx.ReportAccount(ctx, acct.ID)
			if err != nil {
				return err
			}
			if h.Token.ID != tok.ID || h.Token.UserID != u.ID || h.Status != usher.UserActive || got != want || v != wantV ||
				processed == nil || !processed.Equal(now) {
				t.Errorf("got token %+v status %s, account %+v version %s processed %v; want token %d, account %+v version %s processed %v",
					h.Token, h.Status, got, v, processed, tok.ID, want, wantV, now)
			}
			_, _, _, _, err = tx.TokenReportAccount(ctx, access.HashToken("nope"))
			if usher.ErrorCode(err) != usher.ENOTFOUND {
				t.Errorf("unknown token: got %v, want not found", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
