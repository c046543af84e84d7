package notify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// firstBlocksMailer holds its first Send until release is closed, then
// fails it as a send timeout would, and delivers the others at once.
type firstBlocksMailer struct {
	fakeMailer
	calls   atomic.Int64
	started chan struct{}
	release chan struct{}
}

func (m *firstBlocksMailer) Send(ctx context.Context, msg notify.Message) error {
	if m.calls.Add(1) == 1 {
		close(m.started)
		select {
		case <-m.release:
			return errors.New("i/o timeout")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return m.fakeMailer.Send(ctx, msg)
}

// TestAStalledPreparedRunIsTakenOverAndSentOnce stops a server between
// preparing an email and sending it, the way a crash or a stall would: its
// one sender hangs on the first email while its preparer has already
// claimed the second. Once the leases have run out, a replica sends both;
// when the stalled server comes back, its send has timed out and it does
// not send the prepared email: each email goes out once, with the run's
// Message-ID, and the stalled server's late outcomes change nothing.
func TestAStalledPreparedRunIsTakenOverAndSentOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1)
		second := f.addUser(usher.RolePrimaryAdmin)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustSet(t, f, second, weekly("2026-01-14"))
		mustPlan(t, f.svc, 2)
		oneWorker := func(m notify.Mailer) *notify.Service {
			return notify.New(f.db.Notify(), m, fakeInactivity{users: 1, seats: 1}, notify.Config{
				BaseURL: "https://usher.example.com/", From: "Usher <usher@example.com>", Now: f.clock.Now,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 1,
			})
		}
		stalled := &firstBlocksMailer{started: make(chan struct{}), release: make(chan struct{})}
		var wg sync.WaitGroup
		var stalledSent int
		wg.Go(func() {
			n, err := oneWorker(stalled).SendDue(context.Background(), "stalled", 100)
			if err != nil {
				t.Errorf("stalled server: %v", err)
			}
			stalledSent = n
		})
		<-stalled.started
		// Wait for the preparer to claim the second run while the first is
		// on the wire.
		deadline := time.Now().Add(30 * time.Second)
		for {
			sending := 0
			for _, r := range f.runs() {
				if r.Status == notify.StatusSending {
					sending++
				}
			}
			if sending == 2 {
				break
			}
			if time.Now().After(deadline) {
				close(stalled.release)
				wg.Wait()
				t.Fatalf("the second run was never prepared: %+v", f.runs())
			}
			time.Sleep(5 * time.Millisecond)
		}
		f.clock.Add(notify.DefaultLease + time.Second)
		replica := &fakeMailer{}
		if n, err := oneWorker(replica).SendDue(context.Background(), "replica", 100); err != nil || n != 2 {
			t.Fatalf("replica: delivered %d (%v), want both runs whose leases ran out", n, err)
		}
		close(stalled.release)
		wg.Wait()
		if stalledSent != 0 {
			t.Fatalf("the stalled server delivered %d, want none", stalledSent)
		}
		seen := map[string]int{}
		for _, m := range append(stalled.messages(), replica.messages()...) {
			seen[m.MessageID]++
		}
		for _, r := range f.runs() {
			if r.Status != notify.StatusDelivered || seen[r.MessageID] != 1 {
				t.Errorf("run %d: %s, sent %d times; want delivered once", r.ID, r.Status, seen[r.MessageID])
			}
		}
	})
}

// failingEvidence counts in the claim's transaction and apart, failing
// each as often as told.
type failingEvidence struct {
	fakeInactivity
	failIn, failApart atomic.Int64
}

var errCount = errors.New("count broke")

func (f *failingEvidence) InactiveEvidence(ctx context.Context, accountID int64, r usage.Range, first int) (usage.InactiveSummary, []usage.SnapshotSeat, error) {
	if f.failApart.Add(-1) >= 0 {
		return usage.InactiveSummary{}, nil, errCount
	}
	s, err := f.InactiveSummary(ctx, accountID, r, first)
	return s, nil, err
}

func (f *failingEvidence) InactiveEvidenceIn(ctx context.Context, tx usage.Tx, accountID int64, r usage.Range, first int) (usage.InactiveSummary, []usage.SnapshotSeat, error) {
	if f.failIn.Add(-1) >= 0 {
		return usage.InactiveSummary{}, nil, errCount
	}
	return f.InactiveEvidence(ctx, accountID, r, first)
}

// TestACountFailingInTheClaimIsAFailedAttempt makes the count in the
// claim's transaction fail, which rolls the claim back: the run is claimed
// again and counted apart, so a count that keeps failing is an attempt
// retried after its backoff, not a run that blocks every claim.
func TestACountFailingInTheClaimIsAFailedAttempt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1)
		ev := &failingEvidence{fakeInactivity: fakeInactivity{users: 1, seats: 1}}
		ev.failIn.Store(100)
		ev.failApart.Store(1)
		f.svc = f.service(f.mailer, ev)
		mustSet(t, f, f.admin, weekly("2026-01-14"))
		mustPlan(t, f.svc, 1)
		mustSend(t, f.svc, 0)
		r := f.runs()[0]
		if r.Status != notify.StatusPending || r.Attempts != 1 || !strings.Contains(r.LastError, "count broke") ||
			!r.NextAttemptAt.Equal(f.clock.Now().Add(notify.Backoff(1))) {
			t.Fatalf("after a failed count: %+v", r)
		}
		f.clock.Add(notify.Backoff(1))
		mustSend(t, f.svc, 1) // counted apart this time
		if r := f.runs()[0]; r.Status != notify.StatusDelivered || r.Attempts != 2 {
			t.Fatalf("after the retry: %+v", r)
		}
		if n := len(f.mailer.messages()); n != 1 {
			t.Fatalf("sent %d emails, want 1", n)
		}
	})
}
