package access_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

var errCrash = errors.New("the process died")

// crashingStore is the real store whose process dies once, at the end of
// its n-th write, before the commit: that transaction's work is rolled
// back, as a killed process's would be, and the caller stops.
type crashingStore struct {
	access.Store
	mu sync.Mutex
	n  int
}

func (c *crashingStore) Write(ctx context.Context, fn func(access.Tx) error) error {
	c.mu.Lock()
	c.n--
	die := c.n == 0
	c.mu.Unlock()
	if !die {
		return c.Store.Write(ctx, fn)
	}
	err := c.Store.Write(ctx, func(tx access.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errCrash
	})
	if !errors.Is(err, errCrash) {
		return err
	}
	return errCrash
}

// TestUndoStoppedHalfwayResumes: an undo that dies after restoring the first
// person leaves the batch unfinished; undoing again — twice at once —
// restores the rest exactly once, reports the person whose seat went
// meanwhile, and answers for everyone.
func TestUndoStoppedHalfwayResumes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		sub := f.subscription(t, f.primary, "C-U", "draftpro", usher.PlanStandard, 8, f.target.ID)
		people := f.users(t, "p", 4) // p000 … p003, undone in this order
		var items []access.UnassignItem
		for _, id := range people {
			must(t, f.svc.Assign(ctx, f.primary, id, sub.ID, []string{"cloud_storage"}))
			items = append(items, access.UnassignItem{UserID: id, SubscriptionID: sub.ID})
		}
		res, err := f.svc.Unassign(ctx, f.primary, items)
		must(t, err)
		// Others take seats until three are free: the last person's cannot come back.
		for i, id := range f.users(t, "filler", 8) {
			if f.seatsUsed(t, sub.ID) == 8-3 {
				break
			}
			must(t, f.svc.Assign(ctx, f.primary, id, sub.ID, nil))
			if i > 7 {
				t.Fatal("could not fill the contract")
			}
		}

		// Writes: 1 marks the batch undone, 2 restores p000, 3 dies restoring p001.
		crashing := access.New(&crashingStore{Store: db.Access(), n: 3}, func() time.Time { return testNow })
		if _, err := crashing.Undo(ctx, f.primary, res.BatchID); !errors.Is(err, errCrash) {
			t.Fatalf("undo that dies: got %v, want the crash", err)
		}
		b, err := f.svc.Batch(ctx, f.primary, res.BatchID)
		must(t, err)
		if !b.UndoUnfinished || b.UndoneAt.IsZero() {
			t.Fatalf("after the crash: unfinished %v, undone at %v; want an unfinished undo", b.UndoUnfinished, b.UndoneAt)
		}
		held := func() []bool {
			out := make([]bool, len(people))
			for i, id := range people {
				_, out[i] = f.seat(t, id, sub.ID)
			}
			return out
		}
		if got := held(); !slices.Equal(got, []bool{true, false, false, false}) {
			t.Fatalf("after the crash, seats held %v, want only the first person's back", got)
		}

		var wg sync.WaitGroup
		results := make([]access.UndoResult, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() { results[i], errs[i] = f.svc.Undo(ctx, f.primary, res.BatchID) })
		}
		wg.Wait()
		answered := 0
		for i := range 2 {
			// The one that comes after the other finished finds nothing to do.
			if usher.ErrorCode(errs[i]) == usher.ECONFLICT {
				continue
			}
			if errs[i] != nil {
				t.Fatalf("resumed undo %d: %v", i, errs[i])
			}
			answered++
			var restored []int64
			for _, o := range results[i].Restored {
				restored = append(restored, o.UserID)
			}
			if !slices.Equal(restored, people[:3]) || len(results[i].Failed) != 1 || results[i].Failed[0].UserID != people[3] ||
				results[i].Failed[0].Reason != "no seat of contract C-U is free" {
				t.Fatalf("resumed undo %d answers %+v, want the first three restored and the last not, for want of a seat", i, results[i])
			}
		}
		if answered == 0 {
			t.Fatal("neither resumed undo finished the batch")
		}
		if got := held(); !slices.Equal(got, []bool{true, true, true, false}) {
			t.Fatalf("after resuming, seats held %v, want the first three", got)
		}
		for i, id := range people {
			log, err := f.svc.AuditLog(ctx, f.primary, id, "seat.assign", "", 100)
			must(t, err)
			want := 2 // the first seat, and the one given back
			if i == 3 {
				want = 1
			}
			if len(log.Items) != want {
				t.Errorf("user %d: %d seat.assign entries, want %d: restored exactly once", id, len(log.Items), want)
			}
		}
		b, err = f.svc.Batch(ctx, f.primary, res.BatchID)
		must(t, err)
		if b.UndoUnfinished {
			t.Fatal("the batch is still unfinished after the resumed undo")
		}
		if _, err := f.svc.Undo(ctx, f.primary, res.BatchID); usher.ErrorCode(err) != usher.ECONFLICT {
			t.Fatalf("undo of a finished undo: got %v, want conflict", err)
		}
		log, err := f.svc.AuditLog(ctx, f.primary, 0, "reclaim.undo", "", 100)
		must(t, err)
		if len(log.Items) != 1 {
			t.Fatalf("%d reclaim.undo entries, want 1", len(log.Items))
		}
	})
}
