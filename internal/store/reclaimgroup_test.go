package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// groupWorld is the same small account built in two databases: seats held
// directly and through a group, with services, benefits and a waiter.
type groupWorld struct {
	acct           usher.Account
	ann, bob, cat  usher.User
	gone           usher.User // not in the account
	s1, s2         usher.Subscription
	group          usher.Group
	users          []int64
	remove         []access.SeatRef // what the reclaim takes
	removeBenefits []access.SeatRef
}

func newGroupWorld(t *testing.T, db *store.DB) groupWorld {
	t.Helper()
	ctx := context.Background()
	var w groupWorld
	w.acct = newAccount(t, db, "Acme")
	other := newAccount(t, db, "Other")
	w.ann = newUser(t, db, w.acct.ID, "ann@example.com", "Ann")
	w.bob = newUser(t, db, w.acct.ID, "bob@example.com", "Bob")
	w.cat = newUser(t, db, w.acct.ID, "cat@example.com", "Cat")
	w.gone = newUser(t, db, other.ID, "dan@example.com", "Dan")
	w.s1 = newSubscription(t, db, w.acct.ID, "C-1", 5, "web_support", "training")
	w.s2 = newSubscription(t, db, w.acct.ID, "C-2", 5, "web_support")
	write(t, db, func(tx *store.Tx) error {
		w.group = usher.Group{AccountID: w.acct.ID, Name: "Design", CreatedAt: now}
		if err := tx.CreateGroup(ctx, &w.group); err != nil {
			return err
		}
		if _, err := tx.AddGroupMember(ctx, w.acct.ID, w.group.ID, w.cat.ID, now); err != nil {
			return err
		}
		if err := tx.SetGroupAssignment(ctx, usher.GroupAssignment{AccountID: w.acct.ID, GroupID: w.group.ID, SubscriptionID: w.s2.ID,
			Services: []string{}, Benefits: []string{}, CreatedAt: now}); err != nil {
			return err
		}
		for _, x := range []struct {
			u        usher.User
			s        usher.Subscription
			services []string
		}{{w.ann, w.s1, []string{"rendering", "cloud_storage"}}, {w.bob, w.s1, nil}, {w.bob, w.s2, []string{"rendering"}}, {w.cat, w.s1, nil}} {
			if err := assign(ctx, tx, w.acct.ID, x.u.ID, x.s.ID, x.services...); err != nil {
				return err
			}
		}
		if err := tx.ReserveSeat(ctx, w.acct.ID, w.s2.ID); err != nil {
			return err
		}
		if err := tx.InsertAssignment(ctx, usher.Assignment{AccountID: w.acct.ID, UserID: w.cat.ID, SubscriptionID: w.s2.ID,
			Services: []string{}, AssignedAt: now, Groups: []int64{w.group.ID}}); err != nil {
			return err
		}
		if err := tx.SetBenefits(ctx, w.acct.ID, w.ann.ID, w.s1.ID, []string{"training", "web_support"}); err != nil {
			return err
		}
		if err := tx.SetBenefits(ctx, w.acct.ID, w.bob.ID, w.s2.ID, []string{"web_support"}); err != nil {
			return err
		}
		if err := tx.SetBenefits(ctx, w.acct.ID, w.cat.ID, w.s1.ID, []string{"web_support"}); err != nil {
			return err
		}
		// A waiting place beside a held seat, which a freed seat ends.
		_, err := tx.AddWaiter(ctx, w.acct.ID, w.s1.ID, w.bob.ID, now)
		return err
	})
	w.users = []int64{w.cat.ID, w.ann.ID, w.bob.ID, w.gone.ID, w.ann.ID}
	w.remove = []access.SeatRef{{UserID: w.bob.ID, SubscriptionID: w.s2.ID}, {UserID: w.ann.ID, SubscriptionID: w.s1.ID}, {UserID: w.bob.ID, SubscriptionID: w.s1.ID}}
	w.removeBenefits = []access.SeatRef{{UserID: w.ann.ID, SubscriptionID: w.s1.ID}, {UserID: w.bob.ID, SubscriptionID: w.s2.ID}}
	return w
}

// dumpTables prints every row of the tables a reclaim changes, in order.
func dumpTables(t *testing.T, db *store.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"assignments", "assignment_services", "seat_group_sources", "seat_waiters", "benefit_grants",
		"subscriptions", "audit_log", "reclaim_batches", "reclaim_batch_items"} {
		cols := "*"
		if table == "subscriptions" {
			cols = "id, seats, seats_used"
		}
		rows, err := db.SQL().QueryContext(context.Background(), "SELECT "+cols+" FROM "+table+" ORDER BY 1, 2, 3")
		if err != nil {
			t.Fatal(err)
		}
		names, _ := rows.Columns()
		fmt.Fprintf(&b, "%s %v\n", table, names)
		for rows.Next() {
			vals := make([]sql.NullString, len(names))
			ptrs := make([]any, len(names))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "  %v\n", vals)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestGroupStatementsMatchThePersonByPersonOnes: each set-based statement
// of access.GroupTx reads what the per-person ones read, and changes the
// database as they do, row for row, on both engines.
func TestGroupStatementsMatchThePersonByPersonOnes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, one *store.DB) {
		ctx := context.Background()
		two := storetest.Open(t, one.Engine())
		w := newGroupWorld(t, one)
		if w2 := newGroupWorld(t, two); !reflect.DeepEqual(w, w2) {
			t.Fatalf("the two databases differ before the test:\n%+v\n%+v", w, w2)
		}

		t.Run("Reads", func(t *testing.T) {
			read(t, one, func(tx *store.Tx) error {
				users, err := tx.UsersByIDs(ctx, w.acct.ID, w.users)
				if err != nil {
					return err
				}
				seats, err := tx.AssignmentsOfUsers(ctx, w.acct.ID, w.users)
				if err != nil {
					return err
				}
				benefits, err := tx.BenefitsOfUsers(ctx, w.acct.ID, w.users)
				if err != nil {
					return err
				}
				var all []access.SeatRef
				for _, u := range w.users {
					for _, s := range []int64{w.s1.ID, w.s2.ID} {
						all = append(all, access.SeatRef{UserID: u, SubscriptionID: s})
					}
				}
				granted, err := tx.GroupGrantedSeats(ctx, w.acct.ID, all)
				if err != nil {
					return err
				}
				if _, ok := users[w.gone.ID]; ok || len(users) != 3 {
					t.Errorf("UsersByIDs found %d users (%v), want the account's 3", len(users), users)
				}
				var wantGranted []access.SeatRef
				for _, id := range []int64{w.ann.ID, w.bob.ID, w.cat.ID} {
					u, err := tx.UserByID(ctx, w.acct.ID, id)
					if err != nil {
						return err
					}
					if !reflect.DeepEqual(users[id], u) {
						t.Errorf("UsersByIDs: %+v, UserByID: %+v", users[id], u)
					}
					as, err := tx.AssignmentsOfUser(ctx, w.acct.ID, id)
					if err != nil {
						return err
					}
					if !reflect.DeepEqual(seats[id], as) {
						t.Errorf("AssignmentsOfUsers for user %d: %+v, AssignmentsOfUser: %+v", id, seats[id], as)
					}
					bs, err := tx.BenefitsOfUser(ctx, w.acct.ID, id)
					if err != nil {
						return err
					}
					if len(bs) == 0 {
						bs = nil
					}
					if !reflect.DeepEqual(map[int64][]string(benefits[id]), bs) {
						t.Errorf("BenefitsOfUsers for user %d: %v, BenefitsOfUser: %v", id, benefits[id], bs)
					}
					for _, s := range []int64{w.s1.ID, w.s2.ID} {
						gs, err := tx.GroupGrantsFor(ctx, w.acct.ID, id, s)
						if err != nil {
							return err
						}
						if len(gs) > 0 {
							wantGranted = append(wantGranted, access.SeatRef{UserID: id, SubscriptionID: s})
						}
					}
				}
				if len(seats[w.gone.ID]) > 0 || len(benefits[w.gone.ID]) > 0 {
					t.Errorf("another account's user's seats or benefits were read")
				}
				if !sameRefs(granted, wantGranted) || len(granted) != 1 {
					t.Errorf("GroupGrantedSeats: %v, GroupGrantsFor: %v (want cat's seat of C-2 only)", granted, wantGranted)
				}
				return nil
			})
		})

		t.Run("Writes", func(t *testing.T) {
			at := now.Add(1000)
			batches := func() []*usher.ReclaimBatch {
				var out []*usher.ReclaimBatch
				for _, u := range []usher.User{w.bob, w.ann} {
					b := &usher.ReclaimBatch{AccountID: w.acct.ID, Source: usher.BatchPolicy, PolicyID: 7, RunID: 9, ActorEmail: "reclaim policy Idle", CreatedAt: at}
					for _, k := range w.remove {
						if k.UserID == u.ID {
							b.Items = append(b.Items, usher.BatchItem{UserID: u.ID, Email: u.Email, SubscriptionID: k.SubscriptionID, Seat: true,
								Services: []string{"rendering"}, Benefits: []string{}, AssignedAt: now, Price: &usher.Price{Cents: 1200, Currency: "EUR"}})
						}
					}
					out = append(out, b)
				}
				out = append(out, &usher.ReclaimBatch{AccountID: w.acct.ID, Source: usher.BatchUnassign, ActorID: w.cat.ID, ActorEmail: w.cat.Email, CreatedAt: at})
				return out
			}
			audits := func() []usher.AuditEntry {
				var out []usher.AuditEntry
				for i, k := range w.remove {
					e := usher.AuditEntry{AccountID: w.acct.ID, ActorEmail: "reclaim policy Idle", Action: "seat.unassign", TargetUserID: k.UserID,
						TargetEmail: fmt.Sprintf("u%d@example.com", k.UserID), SubscriptionID: k.SubscriptionID, At: at}
					if i == 0 {
						e.ActorID, e.TargetUserID, e.TargetEmail, e.SubscriptionID = w.cat.ID, 0, "", 0
					}
					if err := e.SetChange(map[string]any{"n": i}, nil); err != nil {
						t.Fatal(err)
					}
					out = append(out, e)
				}
				return out
			}
			// One by one, as ReclaimSeats does it.
			write(t, one, func(tx *store.Tx) error {
				for _, k := range w.remove {
					if _, err := tx.DeleteWaiter(ctx, w.acct.ID, k.SubscriptionID, k.UserID); err != nil {
						return err
					}
					if err := tx.DeleteAssignment(ctx, w.acct.ID, k.UserID, k.SubscriptionID); err != nil {
						return err
					}
					if err := tx.ReleaseSeat(ctx, w.acct.ID, k.SubscriptionID); err != nil {
						return err
					}
				}
				for _, k := range w.removeBenefits {
					if err := tx.SetBenefits(ctx, w.acct.ID, k.UserID, k.SubscriptionID, nil); err != nil {
						return err
					}
				}
				for _, e := range audits() {
					if err := tx.InsertAudit(ctx, &e); err != nil {
						return err
					}
				}
				for _, b := range batches() {
					if err := tx.InsertBatch(ctx, b); err != nil {
						return err
					}
				}
				return nil
			})
			// All at once.
			var got []*usher.ReclaimBatch
			write(t, two, func(tx *store.Tx) error {
				if err := tx.DeleteSeats(ctx, w.acct.ID, w.remove); err != nil {
					return err
				}
				if err := tx.ReleaseSeats(ctx, w.acct.ID, map[int64]int{w.s1.ID: 2, w.s2.ID: 1}); err != nil {
					return err
				}
				if err := tx.ClearBenefits(ctx, w.acct.ID, w.removeBenefits); err != nil {
					return err
				}
				if err := tx.InsertAudits(ctx, audits()); err != nil {
					return err
				}
				got = batches()
				return tx.InsertBatches(ctx, got)
			})
			if a, b := dumpTables(t, one), dumpTables(t, two); a != b {
				t.Fatalf("one by one:\n%s\nall at once:\n%s", a, b)
			}
			for i, b := range got {
				if b.ID == 0 || (i > 0 && b.ID <= got[i-1].ID) {
					t.Fatalf("InsertBatches set IDs %d, %d…, want ascending", got[0].ID, b.ID)
				}
			}
		})

		t.Run("Refusals", func(t *testing.T) {
			ctx := context.Background()
			err := two.Write(ctx, func(tx *store.Tx) error {
				return tx.DeleteSeats(ctx, w.acct.ID, []access.SeatRef{{UserID: w.cat.ID, SubscriptionID: w.s1.ID}, {UserID: w.ann.ID, SubscriptionID: w.s1.ID}})
			})
			wantCode(t, err, usher.ENOTFOUND)
			err = two.Write(ctx, func(tx *store.Tx) error {
				return tx.ReleaseSeats(ctx, w.acct.ID, map[int64]int{w.s1.ID: 2})
			})
			if err == nil {
				t.Fatal("ReleaseSeats gave back more seats than were in use")
			}
			if got := subscription(t, two, w.acct.ID, w.s1.ID).SeatsUsed; got != 1 {
				t.Fatalf("after the refusals C-1 has %d seats in use, want cat's one", got)
			}
		})
	})
}

func sameRefs(a, b []access.SeatRef) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[access.SeatRef]int{}
	for _, k := range a {
		seen[k]++
	}
	for _, k := range b {
		seen[k]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestAccessViewReadsGroupNamesWithSeparatorBytes: a group name stored with
// the bytes the one-row view separates its parts by (SCIM stored such text
// before it checked it) is read without them, rather than failing the view
// of every member.
func TestAccessViewReadsGroupNamesWithSeparatorBytes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newGroupWorld(t, db)
		write(t, db, func(tx *store.Tx) error {
			return store.ExecForTest(ctx, tx, "UPDATE user_groups SET name = ? WHERE account_id = ? AND id = ?", "De\x1esi\x1fgn\x1d", w.acct.ID, w.group.ID)
		})
		var v access.AccessData
		if err := db.Peek(ctx, func(tx *store.Tx) (err error) {
			v, err = tx.AccessView(ctx, w.acct.ID, w.cat.ID, 10)
			return err
		}); err != nil {
			t.Fatalf("access view: %v", err)
		}
		if len(v.Groups) != 1 || v.Groups[0].ID != w.group.ID || v.Groups[0].Name != "Design" {
			t.Fatalf("groups %+v, want group %d named Design", v.Groups, w.group.ID)
		}
	})
}
