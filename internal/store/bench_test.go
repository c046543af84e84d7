package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
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
