package store_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// TestListUsersSortsAndFilters walks the users list page by page in every
// order and filter, and compares it with the same order worked out here,
// and its count with the rows walked.
func TestListUsersSortsAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		other := newAccount(t, db, "Other")
		newUser(t, db, other.ID, "zz@example.com", "Intruder")
		ms := newSubscription(t, db, acct.ID, "MS-1", 20)
		ms2 := newSubscription(t, db, acct.ID, "MS-2", 20)

		var all []usher.User
		seat := map[int64][]int64{}
		manager := map[int64]bool{}
		for i := range 23 {
			u := usher.User{AccountID: acct.ID, Email: fmt.Sprintf("%c%02d@example.com", 'z'-i%5, i), Name: fmt.Sprintf("%s %d", []string{"ada", "Ben", "cora", "Dan"}[i%4], i%3),
				Status: usher.UserActive, CreatedAt: now.Add(time.Duration(i%7) * time.Hour), UpdatedAt: now}
			if i%3 == 0 {
				u.Status = usher.UserDisabled
			}
			write(t, db, func(tx *store.Tx) error {
				if err := tx.CreateUser(ctx, &u); err != nil {
					return err
				}
				switch {
				case i%4 == 1:
					seat[u.ID] = append(seat[u.ID], ms.ID)
					return assign(ctx, tx, acct.ID, u.ID, ms.ID)
				case i%4 == 2:
					seat[u.ID] = append(seat[u.ID], ms2.ID)
					return assign(ctx, tx, acct.ID, u.ID, ms2.ID)
				case i%5 == 0:
					manager[u.ID] = true
					return tx.GrantRole(ctx, acct.ID, usher.RoleGrant{UserID: u.ID, Role: usher.RoleContractManager, SubscriptionID: ms.ID})
				}
				return nil
			})
			all = append(all, u)
		}

		order := map[access.UserSort]func(a, b usher.User) int{
			access.SortUsersByName: func(a, b usher.User) int {
				return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
			},
			access.SortUsersByEmail: func(a, b usher.User) int {
				return cmp.Or(strings.Compare(a.Email, b.Email), cmp.Compare(a.ID, b.ID))
			},
			access.SortUsersByStatus: func(a, b usher.User) int {
				return cmp.Or(strings.Compare(string(a.Status), string(b.Status)), strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
			},
			access.SortUsersByCreated: func(a, b usher.User) int {
				return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
			},
		}
		filters := []struct {
			name string
			f    access.UserFilter
			keep func(u usher.User) bool
		}{
			{"Everyone", access.UserFilter{}, func(usher.User) bool { return true }},
			{"Disabled", access.UserFilter{Status: usher.UserDisabled}, func(u usher.User) bool { return u.Status == usher.UserDisabled }},
			{"ContractManagers", access.UserFilter{Role: usher.RoleContractManager}, func(u usher.User) bool { return manager[u.ID] }},
			{"HoldingModelStudio", access.UserFilter{Product: "modelstudio"}, func(u usher.User) bool { return len(seat[u.ID]) > 0 }},
			{"HoldingModelStudioOfMS2Only", access.UserFilter{Product: "modelstudio", SubscriptionIDs: []int64{ms2.ID}}, func(u usher.User) bool { return slices.Contains(seat[u.ID], ms2.ID) }},
			{"HoldingModelStudioOfNoContract", access.UserFilter{Product: "modelstudio", SubscriptionIDs: []int64{}}, func(usher.User) bool { return false }},
			{"HoldingDraftPro", access.UserFilter{Product: "draftpro"}, func(usher.User) bool { return false }},
			{"ActiveMatchingBen", access.UserFilter{Status: usher.UserActive, Query: "BEN"}, func(u usher.User) bool {
				return u.Status == usher.UserActive && strings.Contains(strings.ToLower(u.Name), "ben")
			}},
		}
		for _, fc := range filters {
			for _, sort := range access.UserSorts {
				for _, desc := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%s/desc=%v", fc.name, sort, desc), func(t *testing.T) {
						want := []usher.User{}
						for _, u := range all {
							if fc.keep(u) {
								want = append(want, u)
							}
						}
						slices.SortFunc(want, order[sort])
						if desc {
							slices.Reverse(want)
						}
						f := fc.f
						f.Sort, f.Desc, f.Limit = sort, desc, 4
						var got []usher.User
						for pages := 0; ; pages++ {
							if pages > len(all) {
								t.Fatal("pagination does not end")
							}
							var page []usher.User
							read(t, db, func(tx *store.Tx) (err error) { page, err = tx.ListUsers(ctx, acct.ID, f); return err })
							got = append(got, page...)
							if len(page) < f.Limit {
								break
							}
							last := page[len(page)-1]
							f.AfterID, f.AfterName, f.AfterKey, f.AfterCreated = last.ID, strings.ToLower(last.Name), "", last.CreatedAt
							switch sort {
							case access.SortUsersByEmail:
								f.AfterKey = last.Email
							case access.SortUsersByStatus:
								f.AfterKey = string(last.Status)
							}
						}
						if !slices.Equal(userIDs(got), userIDs(want)) {
							t.Fatalf("got %v, want %v", names2(got), names2(want))
						}
						var n int
						read(t, db, func(tx *store.Tx) (err error) { n, err = tx.CountUsers(ctx, acct.ID, f); return err })
						if n != len(want) {
							t.Fatalf("count: got %d, want %d", n, len(want))
						}
					})
				}
			}
		}
	})
}

func userIDs(us []usher.User) []int64 {
	out := make([]int64, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

// TestSeatHoldersLongestInactiveFirst orders a subscription's holders by
// the later of their last use of its product and their seat's assignment.
func TestSeatHoldersLongestInactiveFirst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		sub := newSubscription(t, db, acct.ID, "MS-1", 10)
		day := func(s string) int64 { return date(s).Unix() / 86400 }
		// now is the assignment time of every seat (2025-…); usage moves
		// some later, and one old use does not move its holder.
		uses := map[string]string{"recent@x.test": "2026-03-01", "older@x.test": "2026-01-01", "ancient@x.test": "2020-01-01"}
		var want []string
		for _, email := range []string{"never@x.test", "ancient@x.test", "older@x.test", "recent@x.test"} {
			u := newUser(t, db, acct.ID, email, email)
			write(t, db, func(tx *store.Tx) error { return assign(ctx, tx, acct.ID, u.ID, sub.ID) })
			if d, ok := uses[email]; ok {
				if _, err := db.SQL().ExecContext(ctx, rebind(db, `INSERT INTO usage_rollups (account_id, user_id, product_id, first_day, last_day, days) VALUES (?, ?, ?, ?, ?, 1)`),
					acct.ID, u.ID, sub.Product.ID, day(d), day(d)); err != nil {
					t.Fatal(err)
				}
			}
			want = append(want, email)
		}
		var got []access.SeatHolder
		read(t, db, func(tx *store.Tx) (err error) { got, err = tx.SeatHolders(ctx, acct.ID, sub.ID, 10); return err })
		var emails []string
		for _, h := range got {
			emails = append(emails, h.User.Email)
		}
		if !slices.Equal(emails, want) {
			t.Fatalf("got %v, want %v", emails, want)
		}
		if got[0].LastUsed != nil || got[3].LastUsed == nil || got[3].LastUsed.String() != "2026-03-01" {
			t.Fatalf("last used: got %v and %v, want never and 2026-03-01", got[0].LastUsed, got[3].LastUsed)
		}
		read(t, db, func(tx *store.Tx) (err error) { got, err = tx.SeatHolders(ctx, acct.ID, sub.ID, 2); return err })
		if len(got) != 2 {
			t.Fatalf("limit 2: got %d holders", len(got))
		}
	})
}

// rebind turns ? into $n for PostgreSQL, for raw statements in tests.
func rebind(db *store.DB, q string) string {
	if db.Engine() != store.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
