package usage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Requests that miss the cache together share one count, and every one of
// them gets its result.
func TestTotalsCountedOncePerKeyAtATime(t *testing.T) {
	var c totalsCache
	var calls atomic.Int32
	release := make(chan struct{})
	count := func() (ReportTotals, error) {
		calls.Add(1)
		<-release
		return ReportTotals{Seats: 42}, nil
	}
	const n = 16
	var wg sync.WaitGroup
	got := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			var t ReportTotals
			t, errs[i] = c.count(context.Background(), "k", count)
			got[i] = t.Seats
		})
	}
	// Let every goroutine join the count before it ends.
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != 42 {
			t.Fatalf("request %d: %d, %v; want 42", i, got[i], errs[i])
		}
	}
	if k := calls.Load(); k != 1 {
		t.Fatalf("counted %d times, want once", k)
	}
}

// A request whose shared count failed for another request counts for
// itself; the one that failed gets its own error.
func TestTotalsCountAgainWhenTheSharedCountFailed(t *testing.T) {
	var c totalsCache
	started := make(chan struct{})
	fail := make(chan struct{})
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.count(context.Background(), "k", func() (ReportTotals, error) {
			close(started)
			<-fail
			return ReportTotals{}, context.Canceled
		})
		leaderErr <- err
	}()
	<-started
	var own atomic.Int32
	done := make(chan struct{})
	var got ReportTotals
	var err error
	go func() {
		defer close(done)
		got, err = c.count(context.Background(), "k", func() (ReportTotals, error) {
			own.Add(1)
			return ReportTotals{Seats: 7}, nil
		})
	}()
	time.Sleep(50 * time.Millisecond)
	close(fail)
	<-done
	if err != nil || got.Seats != 7 || own.Load() != 1 {
		t.Fatalf("follower: %d, %v, own counts %d; want 7, nil, 1", got.Seats, err, own.Load())
	}
	if e := <-leaderErr; !errors.Is(e, context.Canceled) {
		t.Fatalf("leader: %v, want its own error", e)
	}
}
