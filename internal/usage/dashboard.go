package usage

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// DashboardMonths is how many calendar months the dashboard's chart shows,
// the current one last.
const DashboardMonths = 12

// DashboardRange is the inactivity range of the dashboard's counts.
const DashboardRange = Range3m

// Dashboard is what the console's home page shows about usage.
type Dashboard struct {
	Range Range
	Today usher.Date
	// InactiveBySubscription counts inactive seats per contract the actor
	// may see, and WaitingBySubscription the people waiting for a seat.
	InactiveBySubscription map[int64]int
	WaitingBySubscription  map[int64]int
	// Months are the first days of the chart's months, oldest first.
	Months []usher.Date
	// Products has a series per product; nil when the actor sees only some
	// contracts, as use is counted per product across the account.
	Products []ProductMonths
	// Reclaimed is what reclaims (policy runs and bulk unassigns) took back
	// since the first month's start and was not undone: seats and their
	// yearly price per currency ("" for seats without a price). Nil, like
	// Products, for actors who see only some contracts.
	Reclaimed []usher.Cost
}

// ContractCounts are one subscription's dashboard counts.
type ContractCounts struct {
	SubscriptionID int64
	Inactive       int // inactive seats over DashboardRange
	Waiting        int // people waiting for a seat
}

// ProductMonths is one product's seats per month: Held at the month's end
// (or today), and Active, those of them whose holder used the product in
// that month. Held counts today's seats by when they were assigned: Usher
// keeps no seat history besides the audit log, so seats given up since are
// not in it.
type ProductMonths struct {
	ProductID int64
	Held      []int
	Active    []int
}

// MonthBounds are the chart's month starts as days and as instants, for
// storage to bucket by; index i is the start of month i, and the last
// entry ends the current month.
type MonthBounds struct {
	Days []Day
	At   []int64 // unix milliseconds of each day's first instant
}

// Dashboard counts inactive seats per contract and the chart's monthly
// series, for anyone who may see the Usage Report.
func (s *Service) Dashboard(ctx context.Context, a usher.Actor) (Dashboard, error) {
	var out Dashboard
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		q, acct, today, err := s.prepare(ctx, tx, a, ReportFilter{Status: "inactive", Range: DashboardRange, Limit: 1}, true)
		if err != nil {
			return err
		}
		out.Range, out.Today = DashboardRange, today.Date()
		// Like the report's totals, the counts change only with the data:
		// kept per data version and day, with the same age bound.
		version, _, err := tx.ReportVersion(ctx, a.AccountID)
		if err != nil {
			return err
		}
		key, now := fmt.Sprintf("%d|%v|%d|%s", a.AccountID, q.SubscriptionIDs, today, version), s.cfg.Now()
		if cached, ok := s.dash.get(key, now); ok {
			cached.Range, cached.Today = out.Range, out.Today
			out = cached
			return nil
		}
		defer func() {
			if err == nil {
				s.dash.put(key, out, now)
			}
		}()
		loc := acct.Location()
		t := today.Date().Time
		first := usher.Date{Time: t.AddDate(0, 0, 1-t.Day()).AddDate(0, 1-DashboardMonths, 0)}
		var b MonthBounds
		for i := 0; i <= DashboardMonths; i++ {
			d := usher.Date{Time: first.AddDate(0, i, 0)}
			if i < DashboardMonths {
				out.Months = append(out.Months, d)
			}
			day := DayOf(d.Time, d.Location())
			b.Days = append(b.Days, day)
			b.At = append(b.At, StartOfDay(day, loc).UnixMilli())
		}
		contracts, products, err := tx.DashboardSeats(ctx, q, b)
		if err != nil {
			return err
		}
		out.InactiveBySubscription, out.WaitingBySubscription = map[int64]int{}, map[int64]int{}
		for _, c := range contracts {
			out.InactiveBySubscription[c.SubscriptionID] = c.Inactive
			out.WaitingBySubscription[c.SubscriptionID] = c.Waiting
		}
		if q.SubscriptionIDs != nil {
			return nil
		}
		out.Products = products
		out.Reclaimed, err = tx.ReclaimedSince(ctx, a.AccountID, time.UnixMilli(b.At[0]))
		return err
	})
	if err != nil {
		return Dashboard{}, fmt.Errorf("dashboard: %w", err)
	}
	return out, nil
}

// dashboardCache keeps computed dashboards per key, as totalsCache does
// for the report's totals. Callers must not change what they get.
type dashboardCache struct {
	mu sync.Mutex
	m  map[string]dashboardEntry
}

type dashboardEntry struct {
	d  Dashboard
	at time.Time
}

func (c *dashboardCache) get(key string, now time.Time) (Dashboard, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || now.Sub(e.at) > totalsMaxAge || now.Before(e.at) {
		return Dashboard{}, false
	}
	return e.d, true
}

func (c *dashboardCache) put(key string, d Dashboard, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= totalsMaxKeys {
		c.m = make(map[string]dashboardEntry)
	}
	c.m[key] = dashboardEntry{d: d, at: now}
}
