package reclaim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	umail "github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

var errBatch = errors.New("the batch could not be stored")

// failingStore is the real store whose transactions fail to store the
// reclaim batch of one user: that person's part fails after their seat was
// already taken, inside a transaction that carries out others too.
type failingStore struct {
	reclaim.Store
	userID int64
}

func (f failingStore) Write(ctx context.Context, fn func(reclaim.Tx) error) error {
	return f.Store.Write(ctx, func(tx reclaim.Tx) error { return fn(failingTx{tx, f.userID}) })
}

type failingTx struct {
	reclaim.Tx
	userID int64
}

func (f failingTx) InsertBatch(ctx context.Context, b *usher.ReclaimBatch) error {
	if len(b.Items) > 0 && b.Items[0].UserID == f.userID {
		return errBatch
	}
	return f.Tx.InsertBatch(ctx, b)
}

// InsertBatches fails as InsertBatch does, for the group carried out at
// once: the whole group then goes again, person by person.
func (f failingTx) InsertBatches(ctx context.Context, bs []*usher.ReclaimBatch) error {
	for _, b := range bs {
		if len(b.Items) > 0 && b.Items[0].UserID == f.userID {
			return errBatch
		}
	}
	return f.Tx.InsertBatches(ctx, bs)
}

// TestOnePersonsFailureLeavesTheOthersReclaimed: a reclaim run carries out
// several people in one transaction; one person's part fails half-way, and
// only that part is rolled back: the others are reclaimed with their batch,
// notice and audit, that person keeps the seat, the warning and no batch,
// and the run is tried again later, which reclaims them too, once.
func TestOnePersonsFailureLeavesTheOthersReclaimed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		long := w.clock.Now().AddDate(0, 0, -100)
		people := []string{"ann@acme.test", "bob@acme.test", "cat@acme.test", "dan@acme.test"}
		for _, email := range people {
			w.seat(email, long, false)
		}
		bob := w.users["bob@acme.test"]
		sender, err := umail.Open("smtp://" + w.smtp)
		if err != nil {
			t.Fatal(err)
		}
		failing := reclaim.New(failingStore{db.Reclaim(), bob.ID}, w.acc, sender, reclaim.Config{BaseURL: "https://usher.example.com",
			From: "Usher <usher@example.com>", Now: w.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		p, err := w.rec.Create(ctx, w.admin, reclaim.Input{Name: "Idle", Scope: reclaim.Scope{Kind: reclaim.ScopeSubscriptions,
			SubscriptionIDs: []int64{w.sub.ID}}, Range: "30d", Mode: reclaim.ReclaimNow, GraceDays: ptr(0)})
		if err != nil {
			t.Fatal(err)
		}
		used := func() int {
			t.Helper()
			s, err := w.acc.Subscription(ctx, w.admin, w.sub.ID)
			if err != nil {
				t.Fatal(err)
			}
			return s.SeatsUsed
		}

		w.clock.Set(time.Date(2026, 3, 3, 6, 0, 1, 0, w.loc))
		if _, err := failing.RunNow(ctx, "test"); err != nil {
			t.Fatal(err) // the run's failure is its own outcome, below
		}
		for _, email := range people {
			if got, want := w.holds(email), email == "bob@acme.test"; got != want {
				t.Errorf("after the failed attempt, %s holds the seat: %v, want %v", email, got, want)
			}
		}
		if got := used(); got != 1 {
			t.Errorf("after the failed attempt, %d seats used, want bob's only", got)
		}
		hist, err := w.acc.Batches(ctx, w.admin, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		var batched []string
		for _, b := range hist.Items {
			for _, it := range b.Items {
				batched = append(batched, it.Email)
			}
		}
		slices.Sort(batched)
		if want := []string{"ann@acme.test", "cat@acme.test", "dan@acme.test"}; !slices.Equal(batched, want) {
			t.Fatalf("after the failed attempt, batches hold %v, want %v", batched, want)
		}
		for _, email := range people {
			log, err := w.acc.AuditLog(ctx, w.admin, w.users[email].ID, "reclaim.reclaim", "", 10)
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if email == "bob@acme.test" {
				want = 0
			}
			if len(log.Items) != want {
				t.Errorf("%s: %d reclaim.reclaim audit entries after the failed attempt, want %d", email, len(log.Items), want)
			}
		}
		runs, err := w.rec.Runs(ctx, w.admin, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || runs[0].Status != reclaim.RunPending || runs[0].Reclaimed != 3 ||
			!strings.Contains(runs[0].LastError, fmt.Sprintf("user %d: ", bob.ID)) || !strings.Contains(runs[0].LastError, errBatch.Error()) {
			t.Fatalf("run after the failed attempt: %+v, want pending with 3 reclaimed and the error", runs)
		}
		notices := func() []string {
			var out []string
			for _, m := range w.mails() {
				if strings.Contains(m.subject, "reclaimed") && !strings.HasPrefix(m.subject, "Reclaim policy") {
					out = append(out, strings.Trim(strings.SplitN(m.to, "<", 2)[len(strings.SplitN(m.to, "<", 2))-1], "> "))
				}
			}
			slices.Sort(out)
			return out
		}
		if got, want := notices(), []string{"ann@acme.test", "cat@acme.test", "dan@acme.test"}; !slices.Equal(got, want) {
			t.Fatalf("notices after the failed attempt went to %v, want %v", got, want)
		}

		// Tried again after its backoff, with the failure gone: bob goes,
		// nobody else is touched twice, and the digest comes once.
		w.clock.Set(w.clock.Now().Add(time.Hour))
		if _, err := w.rec.RunNow(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		if w.holds("bob@acme.test") || used() != 0 {
			t.Fatalf("after the retry bob holds the seat: %v, %d seats used", w.holds("bob@acme.test"), used())
		}
		if got := notices(); !slices.Equal(got, people) {
			t.Fatalf("notices after the retry went to %v, want each person once: %v", got, people)
		}
		runs, err = w.rec.Runs(ctx, w.admin, p.ID)
		if err != nil || len(runs) != 1 || runs[0].Status != reclaim.RunDone || runs[0].Reclaimed != 4 {
			t.Fatalf("run after the retry: %+v (%v), want done with 4 reclaimed", runs, err)
		}
		digests := 0
		for _, m := range w.mails() {
			if strings.HasPrefix(m.subject, "Reclaim policy") && strings.Contains(m.to, "admin@") {
				digests++
			}
		}
		if digests != 1 {
			t.Fatalf("%d digests to the admin, want 1", digests)
		}
	})
}
