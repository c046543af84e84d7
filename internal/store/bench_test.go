package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// BenchmarkAssign measures one seat assignment transaction (ReserveSeat +
// InsertAssignment with two services) per iteration.
func BenchmarkAssign(b *testing.B) {
	for _, engine := range storetest.Engines {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, engine)
			acct := newAccount(b, db, "Acme")
			sub := newSubscription(b, db, acct.ID, "C-1", b.N)
			users := make([]usher.User, b.N)
			for i := range users {
				users[i] = newUser(b, db, acct.ID, fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("User %d", i))
			}
			b.ResetTimer()
			for i := range b.N {
				err := db.Write(ctx, func(tx *store.Tx) error {
					return assign(ctx, tx, acct.ID, users[i].ID, sub.ID, "cloud_storage", "rendering")
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkListUsersPage measures one keyset page of 50 users deep inside
// an account of 5,000.
func BenchmarkListUsersPage(b *testing.B) {
	for _, engine := range storetest.Engines {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, engine)
			acct := newAccount(b, db, "Acme")
			write(b, db, func(tx *store.Tx) error {
				for i := range 5000 {
					u := usher.User{AccountID: acct.ID, Email: fmt.Sprintf("u%d@example.com", i), Name: fmt.Sprintf("User %04d", (i*7919)%5000), Status: usher.UserActive}
					if err := tx.CreateUser(ctx, &u); err != nil {
						return err
					}
				}
				return nil
			})
			f := access.UserFilter{AfterName: "user 4000", AfterID: 1, Limit: 50}
			b.ResetTimer()
			for range b.N {
				err := db.Read(ctx, func(tx *store.Tx) error {
					users, err := tx.ListUsers(ctx, acct.ID, f)
					if err == nil && len(users) != 50 {
						err = fmt.Errorf("got %d users, want 50", len(users))
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

// BenchmarkSnapshot30k measures the evidence of one email over 30,000
// inactive seats (of 150,000, as in usher bench): recording the snapshot in
// one transaction, then one page of 50 of the report as of it with its
// totals, deep in name order.
func BenchmarkSnapshot30k(b *testing.B) {
	const n = 30_000
	for _, engine := range storetest.Engines {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, engine)
			acct := newAccount(b, db, "Acme")
			sub := newSubscription(b, db, acct.ID, "C-1", 1)
			seats := make([]usage.SnapshotSeat, n)
			for i := range seats {
				// Users gone since: the rows sort by the email kept.
				seats[i] = usage.SnapshotSeat{UserID: int64(1_000_000 + i), SubscriptionID: sub.ID, Email: fmt.Sprintf("u%06d@example.com", i),
					AssignedAt: now, Inactivity: usage.NeverUsed}
			}
			var key int64
			b.Run("record", func(b *testing.B) {
				for i := range b.N {
					snap := usage.NewSnapshot(usage.SnapshotNotification, int64(i+1), acct.ID, usage.Range3m, now, seats)
					if err := db.Write(ctx, func(tx *store.Tx) error { return tx.InsertSnapshot(ctx, snap) }); err != nil {
						b.Fatal(err)
					}
				}
			})
			read(b, db, func(tx *store.Tx) (err error) {
				_, key, err = tx.SnapshotByID(ctx, acct.ID, usage.SnapshotNotification, 1)
				return err
			})
			b.Run("page", func(b *testing.B) {
				q := usage.SnapshotQuery{SnapshotID: key, AccountID: acct.ID, Limit: 51,
					After: &usage.ReportCursor{Key: "u015000@example.com", UserID: 1_015_000, SubscriptionID: sub.ID}}
				for range b.N {
					read(b, db, func(tx *store.Tx) error {
						if _, err := tx.SnapshotTotals(ctx, q); err != nil {
							return err
						}
						rows, err := tx.SnapshotRows(ctx, q)
						if err == nil && len(rows) != 51 {
							b.Fatalf("got %d rows, want 51", len(rows))
						}
						return err
					})
				}
			})
		})
	}
}
