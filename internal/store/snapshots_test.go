package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// TestSnapshots records a snapshot, changes seats after it (one used, one
// unassigned, one unassigned and assigned again, one untouched), and reads
// it back page by page with each change, on both engines. A second
// snapshot of the same email is dropped, and pruning deletes by age.
func TestSnapshots(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		other := newAccount(t, db, "Other")
		sub := newSubscription(t, db, acct.ID, "C-1", 10)
		var users []usher.User
		for i, name := range []string{"Dana", "alice", "Bob", "Carol"} {
			users = append(users, newUser(t, db, acct.ID, fmt.Sprintf("u%d@example.com", i), name))
		}
		var seats []usage.SnapshotSeat
		write(t, db, func(tx *store.Tx) error {
			for _, u := range users {
				if err := assign(ctx, tx, acct.ID, u.ID, sub.ID); err != nil {
					return err
				}
				seats = append(seats, usage.SnapshotSeat{UserID: u.ID, SubscriptionID: sub.ID, Email: u.Email, AssignedAt: now, Inactivity: usage.NeverUsed})
			}
			return nil
		})
		taken := now.Add(time.Hour)
		snap := usage.NewSnapshot(usage.SnapshotNotification, 42, acct.ID, usage.Range3m, taken, seats)
		write(t, db, func(tx *store.Tx) error { return tx.InsertSnapshot(ctx, snap) })
		t.Run("SecondOfTheSameEmailIsDropped", func(t *testing.T) {
			again := usage.NewSnapshot(usage.SnapshotNotification, 42, acct.ID, usage.Range1y, taken, seats[:1])
			write(t, db, func(tx *store.Tx) error { return tx.InsertSnapshot(ctx, again) })
			read(t, db, func(tx *store.Tx) error {
				got, _, err := tx.SnapshotByID(ctx, acct.ID, usage.SnapshotNotification, 42)
				if err != nil {
					return err
				}
				if got.Range != usage.Range3m || got.SeatCount != 4 || got.UserCount != 4 || !got.TakenAt.Equal(taken) {
					t.Fatalf("got %+v, want the first snapshot", got)
				}
				return nil
			})
		})
		t.Run("ErrNotFoundInAnotherAccount", func(t *testing.T) {
			read(t, db, func(tx *store.Tx) error {
				_, _, err := tx.SnapshotByID(ctx, other.ID, usage.SnapshotNotification, 42)
				if usher.ErrorCode(err) != usher.ENOTFOUND {
					t.Fatalf("got %v, want not found", err)
				}
				return nil
			})
		})
		// Dana (0) uses the product; alice (1) loses the seat; Bob (2) loses
		// it and gets it again; Carol (3) is untouched.
		write(t, db, func(tx *store.Tx) error {
			if _, err := tx.TouchSeats(ctx, acct.ID, []usage.SeatUse{{UserID: users[0].ID, ProductID: sub.Product.ID, At: taken.Add(time.Hour)}}); err != nil {
				return err
			}
			for _, u := range users[1:3] {
				if err := tx.DeleteAssignment(ctx, acct.ID, u.ID, sub.ID); err != nil {
					return err
				}
				if err := tx.ReleaseSeat(ctx, acct.ID, sub.ID); err != nil {
					return err
				}
			}
			if err := tx.ReserveSeat(ctx, acct.ID, sub.ID); err != nil {
				return err
			}
			return tx.InsertAssignment(ctx, usher.Assignment{AccountID: acct.ID, UserID: users[2].ID, SubscriptionID: sub.ID, Services: []string{}, AssignedAt: taken.Add(2 * time.Hour)})
		})
		var key int64
		read(t, db, func(tx *store.Tx) (err error) {
			_, key, err = tx.SnapshotByID(ctx, acct.ID, usage.SnapshotNotification, 42)
			return err
		})
		q := usage.SnapshotQuery{SnapshotID: key, AccountID: acct.ID, Limit: 3}
		var got []usage.SnapshotRow
		read(t, db, func(tx *store.Tx) error {
			for range 5 {
				rows, err := tx.SnapshotRows(ctx, q)
				if err != nil {
					return err
				}
				got = append(got, rows...)
				if len(rows) < q.Limit {
					return nil
				}
				last := rows[len(rows)-1]
				q.After = &usage.ReportCursor{Key: strings.ToLower(last.Name), UserID: last.UserID, SubscriptionID: last.SubscriptionID}
			}
			return nil
		})
		want := []struct {
			name   string
			change usage.Change
		}{{"alice", usage.Unassigned}, {"Bob", usage.Reassigned}, {"Carol", usage.Unchanged}, {"Dana", usage.UsedSince}}
		if len(got) != len(want) {
			t.Fatalf("got %d rows, want %d", len(got), len(want))
		}
		for i, w := range want {
			if got[i].Name != w.name || usage.ChangeOf(got[i].SnapshotSeat, got[i].Now) != w.change {
				t.Errorf("row %d: got %s %q, want %s %q", i, got[i].Name, usage.ChangeOf(got[i].SnapshotSeat, got[i].Now), w.name, w.change)
			}
		}
		read(t, db, func(tx *store.Tx) error {
			tot, err := tx.SnapshotTotals(ctx, usage.SnapshotQuery{SnapshotID: key, AccountID: acct.ID})
			if err != nil {
				return err
			}
			if tot != (usage.SnapshotTotals{Seats: 4, Users: 4, NeverUsed: 4, Changed: 3}) {
				t.Fatalf("totals: got %+v", tot)
			}
			tot, err = tx.SnapshotTotals(ctx, usage.SnapshotQuery{SnapshotID: key, AccountID: acct.ID, Query: "car"})
			if err != nil {
				return err
			}
			if tot.Seats != 1 || tot.Changed != 0 {
				t.Fatalf("totals for car: got %+v", tot)
			}
			return nil
		})
		t.Run("PrunedByAge", func(t *testing.T) {
			var n int64
			write(t, db, func(tx *store.Tx) (err error) {
				n, err = tx.PruneSnapshots(ctx, taken, 5)
				return err
			})
			if n != 0 {
				t.Fatalf("pruned %d before the snapshot's time, want 0", n)
			}
			write(t, db, func(tx *store.Tx) (err error) {
				n, err = tx.PruneSnapshots(ctx, taken.Add(time.Millisecond), 5)
				return err
			})
			if n != 1 {
				t.Fatalf("pruned %d, want 1", n)
			}
			if left := count(t, db, "SELECT COUNT(*) FROM snapshot_seats"); left != 0 {
				t.Fatalf("%d seats left after pruning, want 0", left)
			}
		})
	})
}
