package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/usherhq/usher/internal/scheduler"
)

// fakeNotifier has due runs to deliver, batch by batch.
type fakeNotifier struct {
	mu      sync.Mutex
	plans   int
	due     int // runs waiting
	owners  map[string]bool
	planErr error
}

func (f *fakeNotifier) PlanDue(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans++
	if f.planErr != nil {
		return 0, f.planErr
	}
	f.due += 3
	return 3, nil
}

func (f *fakeNotifier) SendDue(ctx context.Context, owner string, max int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.owners == nil {
		f.owners = map[string]bool{}
	}
	f.owners[owner] = true
	n := min(max, f.due)
	f.due -= n
	return n, nil
}

func (f *fakeNotifier) CanDeliver() bool { return true }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRunOnceSendsEverythingDue(t *testing.T) {
	f := &fakeNotifier{due: 250}
	res, err := scheduler.RunOnce(context.Background(), f, "one")
	if err != nil {
		t.Fatal(err)
	}
	if res.Planned != 3 || res.Delivered != 253 || f.due != 0 {
		t.Fatalf("got %+v with %d left", res, f.due)
	}
}

func TestRunOnceReportsAPlanningError(t *testing.T) {
	f := &fakeNotifier{planErr: errors.New("database is locked")}
	if _, err := scheduler.RunOnce(context.Background(), f, "one"); err == nil {
		t.Fatal("no error")
	}
}

func TestRunTicksUntilCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNotifier{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			scheduler.Run(ctx, f, time.Minute, "replica-a", quiet())
			close(done)
		}()
		time.Sleep(5*time.Minute + time.Second)
		synctest.Wait()
		f.mu.Lock()
		plans := f.plans
		f.mu.Unlock()
		if plans != 6 { // at once, then after each of 5 minutes
			t.Errorf("got %d passes, want 6", plans)
		}
		cancel()
		<-done // Run returned; synctest fails the test if a goroutine it started is still alive
		if !f.owners["replica-a"] {
			t.Errorf("owners: got %v", f.owners)
		}
	})
}

func TestRunKeepsGoingAfterAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNotifier{planErr: errors.New("database is locked")}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go scheduler.Run(ctx, f, time.Minute, "a", quiet())
		time.Sleep(2*time.Minute + time.Second)
		synctest.Wait()
		f.mu.Lock()
		f.planErr = nil
		f.mu.Unlock()
		time.Sleep(time.Minute)
		synctest.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.plans != 4 || f.due != 0 {
			t.Fatalf("got %d passes, %d due, want 4 passes and nothing due", f.plans, f.due)
		}
	})
}

func TestOwnerNamesThisProcessStably(t *testing.T) {
	o := scheduler.Owner()
	if o != scheduler.Owner() {
		t.Fatalf("owner changed between calls: %q, %q", o, scheduler.Owner())
	}
	if want := fmt.Sprintf(":%d-", os.Getpid()); !strings.Contains(o, want) || len(o) < len(want)+8 {
		t.Fatalf("got %q, want host name, %q and a random suffix", o, want)
	}
}

// slowPlanner plans in two batches and commits the second only once the
// first has been sent, as a long planning pass does over many settings.
type slowPlanner struct {
	fakeNotifier
	sent chan struct{}
	once sync.Once
}

func (s *slowPlanner) PlanDue(ctx context.Context) (int, error) {
	s.mu.Lock()
	s.due += 3
	s.mu.Unlock()
	select {
	case <-s.sent:
	case <-time.After(10 * time.Second):
		return 3, errors.New("the first batch was not sent while planning went on")
	}
	s.mu.Lock()
	s.due += 2
	s.mu.Unlock()
	return 5, nil
}

func (s *slowPlanner) SendDue(ctx context.Context, owner string, max int) (int, error) {
	n, err := s.fakeNotifier.SendDue(ctx, owner, max)
	if n > 0 {
		s.once.Do(func() { close(s.sent) })
	}
	return n, err
}

func TestRunOnceSendsWhilePlanning(t *testing.T) {
	p := &slowPlanner{sent: make(chan struct{})}
	res, err := scheduler.RunOnce(context.Background(), p, "one")
	if err != nil {
		t.Fatal(err)
	}
	if res.Planned != 5 || res.Delivered != 5 || p.due != 0 {
		t.Fatalf("got %+v with %d left", res, p.due)
	}
}
