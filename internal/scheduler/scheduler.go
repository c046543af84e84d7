// Package scheduler drives due work: it plans and sends usage
// notifications on a timer inside `usher serve`, or once for
// `usher notifications run-due`. It keeps no state of its own: every claim
// is made in the database, so any number of replicas may run it at once.
package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Notifier is the work the scheduler drives; *notify.Service implements it.
type Notifier interface {
	PlanDue(ctx context.Context) (int, error)
	SendDue(ctx context.Context, owner string, max int) (int, error)
	CanDeliver() bool
}

// DefaultInterval is how often `usher serve` looks for due work.
const DefaultInterval = 30 * time.Second

// batch is how many runs one SendDue claims.
const batch = 100

// Owner names this process in run leases: host name, process id and a
// random suffix. The suffix keeps two replicas apart even when they share
// both (containers whose processes are all pid 1 on copied host names), so
// a lease one of them lost can never be mistaken for the other's.
func Owner() string {
	ownerOnce.Do(func() {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "usher"
		}
		b := make([]byte, 4)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		owner = fmt.Sprintf("%s:%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	})
	return owner
}

var (
	ownerOnce sync.Once
	owner     string
)

// Result counts what one pass did.
type Result struct {
	Planned   int // runs created for due occurrences
	Delivered int // emails the SMTP server accepted
}

// RunOnce plans every due occurrence and sends every due run once, then
// returns. It is `usher notifications run-due`, for those who prefer cron.
//
// Sending starts while planning goes on: planning commits its runs in
// batches, and each is claimable at once, so the emails of the first
// batches are on the wire while the last are planned.
func RunOnce(ctx context.Context, n Notifier, owner string) (Result, error) {
	var res Result
	type planned struct {
		n   int
		err error
	}
	plan := make(chan planned, 1)
	go func() {
		k, err := n.PlanDue(ctx)
		plan <- planned{k, err}
	}()
	planning := true
	endPlanning := func(p planned) error {
		planning, res.Planned = false, p.n
		return p.err
	}
	// Claim in batches until planning has ended and nothing is claimable.
	// Each claimed run is either delivered or waits out its backoff, so
	// this ends.
	for ctx.Err() == nil {
		delivered, err := n.SendDue(ctx, owner, batch)
		res.Delivered += delivered
		if err != nil {
			if planning {
				_ = endPlanning(<-plan) // nothing outlives RunOnce
			}
			return res, err
		}
		if planning {
			select {
			case p := <-plan:
				if err := endPlanning(p); err != nil {
					return res, err
				}
				continue // what the last batches planned
			default:
			}
		}
		if delivered > 0 {
			continue
		}
		if !planning {
			break
		}
		// Nothing claimable yet: wait for planning to commit more.
		select {
		case p := <-plan:
			if err := endPlanning(p); err != nil {
				return res, err
			}
		case <-time.After(planPoll):
		}
	}
	if planning {
		if err := endPlanning(<-plan); err != nil {
			return res, err
		}
	}
	return res, nil
}

// planPoll is how long RunOnce waits for planning to commit runs when none
// is claimable yet.
const planPoll = 20 * time.Millisecond

// Run plans and sends due notifications at once and then every interval
// until ctx ends; it returns when the pass in progress has finished, so
// nothing it started outlives it. Errors are logged and the next tick tries
// again. log may be nil for slog.Default(). Saying that a Notifier without
// a mailer delivers nothing is the caller's job: it knows the setting to name.
func Run(ctx context.Context, n Notifier, interval time.Duration, owner string, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	log = log.With(slog.String("owner", owner))
	log.InfoContext(ctx, "scheduler started", slog.Duration("interval", interval))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		res, err := RunOnce(ctx, n, owner)
		switch {
		case err != nil && ctx.Err() == nil:
			log.ErrorContext(ctx, "scheduler pass failed", slog.Int("planned", res.Planned), slog.Int("delivered", res.Delivered), slog.String("error", err.Error()))
		case res.Planned > 0 || res.Delivered > 0:
			log.InfoContext(ctx, "scheduler pass", slog.Int("planned", res.Planned), slog.Int("delivered", res.Delivered), slog.Duration("took", time.Since(start)))
		}
		select {
		case <-ctx.Done():
			log.InfoContext(context.WithoutCancel(ctx), "scheduler stopped")
			return
		case <-t.C:
		}
	}
}

// All drives several kinds of due work as one Notifier — usage
// notifications and reclaim runs — so they share the scheduler's timer,
// owner and pass, and none needs a loop of its own.
type All []Notifier

// PlanDue plans the due work of each, in order.
func (all All) PlanDue(ctx context.Context) (int, error) {
	total := 0
	var errs []error
	for _, n := range all {
		k, err := n.PlanDue(ctx)
		total += k
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// SendDue does at most max due items of each.
func (all All) SendDue(ctx context.Context, owner string, max int) (int, error) {
	total := 0
	var errs []error
	for _, n := range all {
		k, err := n.SendDue(ctx, owner, max)
		total += k
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// CanDeliver reports whether any of them can deliver.
func (all All) CanDeliver() bool {
	for _, n := range all {
		if n.CanDeliver() {
			return true
		}
	}
	return false
}
