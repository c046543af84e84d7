package demo_test

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/demo"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// Seeded with a moving clock, as serve --demo does, the demo has a history:
// seats assigned over two years, leavers, and a contract ending soon.
func TestSeedWithHistory(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	setUp := now.AddDate(0, -demo.HistoryMonths, 0)
	var clock atomic.Int64
	clock.Store(setUp.UnixNano())
	svc := access.New(db.Access(), func() time.Time { return time.Unix(0, clock.Load()) })
	opt := demo.Options{SetUpAt: setUp, SetClock: func(t time.Time) { clock.Store(t.UnixNano()) }}
	s, err := demo.EnsureWith(ctx, svc, now, rand.New(rand.NewPCG(1, 2)), opt)
	if err != nil {
		t.Fatal(err)
	}
	if s.Seeded.Leavers != demo.Leavers {
		t.Fatalf("leavers: %d, want %d", s.Seeded.Leavers, demo.Leavers)
	}
	sys := usher.System(s.Account.ID)
	subs, err := svc.ListSubscriptions(ctx, sys, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	ending := 0
	for _, sub := range subs.Items {
		if d := sub.TermEnd.Sub(now); d > 0 && d < 90*24*time.Hour {
			ending++
		}
	}
	if ending == 0 {
		t.Error("no contract ends in the next 90 days")
	}
	var first, last time.Time
	disabled := 0
	users, err := svc.ListUsers(ctx, sys, "", "", access.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users.Items {
		ua, err := svc.Access(ctx, sys, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		seats := 0
		for _, e := range ua.Subscriptions {
			if e.Assigned && e.AssignedAt != nil {
				seats++
				if first.IsZero() || e.AssignedAt.Before(first) {
					first = *e.AssignedAt
				}
				if e.AssignedAt.After(last) {
					last = *e.AssignedAt
				}
			}
		}
		if u.Status == usher.UserDisabled {
			disabled++
			if seats > 0 {
				t.Errorf("leaver %s still holds %d seats", u.Email, seats)
			}
		}
	}
	if disabled != demo.Leavers {
		t.Errorf("disabled users: %d, want %d", disabled, demo.Leavers)
	}
	if last.Sub(first) < 365*24*time.Hour || last.After(setUp) {
		t.Errorf("seats assigned from %s to %s: want more than a year, up to the set-up day %s", first, last, setUp)
	}
}
