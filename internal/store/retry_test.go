package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// Two writes that lock the same two rows in opposite orders deadlock on
// PostgreSQL; the one the server aborts is run again and both commit.
func TestWriteRunsADeadlockedTransactionAgain(t *testing.T) {
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	var a, b usher.Account
	write(t, db, func(tx *store.Tx) error {
		a, b = usher.Account{Name: "A", TimeZone: "UTC", CreatedAt: now}, usher.Account{Name: "B", TimeZone: "UTC", CreatedAt: now}
		if err := tx.CreateAccount(ctx, &a); err != nil {
			return err
		}
		return tx.CreateAccount(ctx, &b)
	})

	var bothHoldOne sync.WaitGroup
	bothHoldOne.Add(2)
	var runs atomic.Int32
	lockBoth := func(first, second int64) func(tx *store.Tx) error {
		tried := false
		return func(tx *store.Tx) error {
			runs.Add(1)
			// Found in a twentieth of a second instead of the default second.
			if err := store.ExecForTest(ctx, tx, "SET LOCAL deadlock_timeout = '50ms'"); err != nil {
				return err
			}
			if err := store.ExecForTest(ctx, tx, "UPDATE accounts SET name = name || '.' WHERE id = ?", first); err != nil {
				return err
			}
			if !tried {
				tried = true
				bothHoldOne.Done()
				bothHoldOne.Wait()
			}
			return store.ExecForTest(ctx, tx, "UPDATE accounts SET name = name || '.' WHERE id = ?", second)
		}
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = db.Write(ctx, lockBoth(a.ID, b.ID)) })
	wg.Go(func() { errs[1] = db.Write(ctx, lockBoth(b.ID, a.ID)) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	// Usually one is aborted and runs again; under load the server may
	// abort both, each then running again.
	if n := runs.Load(); n < 3 || n > 4 {
		t.Errorf("the transactions ran %d times, want 3 or 4 (deadlocked ones ran again)", n)
	}
	read(t, db, func(tx *store.Tx) error {
		for _, id := range []int64{a.ID, b.ID} {
			acct, err := tx.AccountByID(ctx, id)
			if err != nil {
				return err
			}
			if len(acct.Name) != 3 {
				t.Errorf("account %d is named %q, want both updates of both writes", id, acct.Name)
			}
		}
		return nil
	})
}

// An error that running again cannot cure is returned at once.
func TestWriteDoesNotRetryOtherErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		runs := 0
		err := db.Write(context.Background(), func(tx *store.Tx) error {
			runs++
			return usher.Errorf(usher.ECONFLICT, "no")
		})
		if usher.ErrorCode(err) != usher.ECONFLICT || runs != 1 {
			t.Fatalf("got %v after %d runs, want the conflict after 1", err, runs)
		}
	})
}
