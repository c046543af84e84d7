package demo

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// HistoryMonths is how long ago the demo account is set up when its usage
// is seeded: seats assigned then, and never used since, are inactive today.
const HistoryMonths = 7

// usageDays is how many days of usage SeedUsage makes up to now.
const usageDays = 183

// RecentSeats is how many seats SeedUsage assigns on the day it runs: new
// seats without use, which the report counts as active.
const RecentSeats = 6

// UsageResult says what SeedUsage created.
type UsageResult struct {
	Events      int // usage events stored
	Pairs       int // (user, product) pairs with a seat
	Daily       int // pairs used on most working days
	Occasional  int // pairs used about once a week
	Stopped     int // pairs last used one to six months ago
	Never       int // pairs never used
	RecentSeats int // seats assigned today
}

// profile is how one person uses one product.
type profile int

const (
	daily profile = iota
	occasional
	stoppedLongAgo // last use 100 to 170 days ago: inactive for 30 days and 3 months
	stoppedLately  // last use 35 to 85 days ago: inactive for 30 days only
	never
)

// profileWeights are out of 100, in profile order.
var profileWeights = []int{40, 20, 12, 10, 18}

func pickProfile(rnd *rand.Rand) profile {
	n := rnd.IntN(100)
	for p, w := range profileWeights {
		if n < w {
			return profile(p)
		}
		n -= w
	}
	return never
}

// SeedUsage gives the demo account months of realistic usage: for every
// person and product they hold a seat of, a daily, occasional, stopped or
// no use at all, as events sent through the usage service like any other.
// It also assigns RecentSeats seats today, so the report shows new seats
// that are active without use. Call it once, after Ensure has seeded the
// account with an access service whose clock stood HistoryMonths back.
func SeedUsage(ctx context.Context, svc *access.Service, use *usage.Service, s Session, now time.Time, rnd *rand.Rand) (UsageResult, error) {
	var res UsageResult
	actor, err := svc.ActorFor(ctx, s.Account.ID, s.Admin.ID)
	if err != nil {
		return res, fmt.Errorf("seed demo usage: %w", err)
	}
	loc := s.Account.Location()
	now = now.In(loc)

	type pair struct{ email, product string }
	var pairs []pair
	seen := map[pair]bool{}
	holds := map[int64]map[int64]bool{} // user → subscription
	err = use.EachRow(ctx, actor, usage.ReportFilter{Sort: "email"}, func(usage.Report) error { return nil },
		func(r usage.ReportRow) error {
			if holds[r.UserID] == nil {
				holds[r.UserID] = map[int64]bool{}
			}
			holds[r.UserID][r.SubscriptionID] = true
			p := pair{r.Email, r.Product}
			if !seen[p] {
				seen[p] = true
				pairs = append(pairs, p)
			}
			return nil
		})
	if err != nil {
		return res, fmt.Errorf("seed demo usage: %w", err)
	}

	// New seats today on the first Standard or Premium contract with room.
	recent, err := s.assignRecent(ctx, svc, actor, holds, rnd)
	if err != nil {
		return res, fmt.Errorf("seed demo usage: %w", err)
	}
	res.RecentSeats = recent

	profiles := make([]profile, len(pairs))
	for i := range pairs {
		profiles[i] = pickProfile(rnd)
		switch profiles[i] {
		case daily:
			res.Daily++
		case occasional:
			res.Occasional++
		case stoppedLongAgo, stoppedLately:
			res.Stopped++
		case never:
			res.Never++
		}
	}
	res.Pairs = len(pairs)

	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	events := func(yield func(usage.Item) bool) {
		line := 0
		for i, p := range pairs {
			last := 0 // days before today of the last possible use
			switch profiles[i] {
			case never:
				continue
			case stoppedLongAgo:
				last = 100 + rnd.IntN(71)
			case stoppedLately:
				last = 35 + rnd.IntN(51)
			}
			for back := usageDays; back >= last; back-- {
				day := today.AddDate(0, 0, -back)
				if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
					continue
				}
				var uses int
				switch profiles[i] {
				case occasional:
					if rnd.IntN(5) == 0 {
						uses = 1
					}
				default:
					if rnd.IntN(10) < 9 {
						uses = 1 + rnd.IntN(2)
					}
				}
				for range uses {
					at := day.Add(8*time.Hour + time.Duration(rnd.IntN(10*3600))*time.Second)
					if !at.Before(now) {
						continue
					}
					line++
					if !yield(usage.Item{Line: line, Event: usage.Event{User: p.email, Product: p.product, At: at}}) {
						return
					}
				}
			}
		}
	}
	ing, err := use.Ingest(ctx, actor, iter.Seq[usage.Item](events))
	if err != nil {
		return res, fmt.Errorf("seed demo usage: %w", err)
	}
	if ing.Rejected > 0 {
		return res, fmt.Errorf("seed demo usage: %d events rejected, the first: line %d: %s", ing.Rejected, ing.Rejections[0].Line, ing.Rejections[0].Reason)
	}
	res.Events = ing.Accepted
	return res, nil
}

// assignRecent gives up to RecentSeats people who hold no seat a seat of
// the first Standard or Premium contract with room, today.
func (s Session) assignRecent(ctx context.Context, svc *access.Service, actor usher.Actor, holds map[int64]map[int64]bool, rnd *rand.Rand) (int, error) {
	subs, err := svc.ListSubscriptions(ctx, actor, "", access.MaxLimit)
	if err != nil {
		return 0, err
	}
	var sub *usher.Subscription
	for i := range subs.Items {
		if x := subs.Items[i]; x.Plan.HasUsageData() && x.SeatsAvailable() >= RecentSeats {
			sub = &subs.Items[i]
			break
		}
	}
	if sub == nil {
		return 0, nil
	}
	var candidates []usher.User
	for cursor := ""; ; {
		page, err := svc.ListUsers(ctx, actor, "", cursor, access.MaxLimit)
		if err != nil {
			return 0, err
		}
		for _, u := range page.Items {
			// People without any seat, so their new seat has no use at all.
			if len(holds[u.ID]) == 0 {
				candidates = append(candidates, u)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	n := 0
	for _, u := range pick(rnd, candidates, RecentSeats) {
		if err := svc.Assign(ctx, actor, u.ID, sub.ID, nil); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
