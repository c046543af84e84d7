package usage

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// The report's totals count every seat the filter matches, which on a large
// account costs more than the page itself. They change only when the data
// does, so each replica keeps them per filter and data version: the latest
// audit entry (every change of users and seats writes one) and the time
// usage was last processed. The age bound covers anything else.
const (
	totalsMaxAge  = 5 * time.Minute
	totalsMaxKeys = 4096
)

type totalsCache struct {
	mu sync.Mutex
	m  map[string]totalsEntry
	// counting lets requests that miss together share one count: after a
	// change every open console page and client asks at once, and on a
	// large account each count alone takes a core for a while.
	counting singleflight.Group
}

type totalsEntry struct {
	totals ReportTotals
	at     time.Time
}

// totalsKey identifies what the totals of q depend on.
func totalsKey(q ReportQuery, version string) string {
	return fmt.Sprintf("%d|%v|%s|%d|%d|%s|%d|%q|%s", q.AccountID, q.SubscriptionIDs, q.Status, q.CutoffAt.UnixMilli(), q.AssignedBefore.UnixMilli(),
		q.ProductCode, q.SubscriptionID, q.Query, version)
}

func (c *totalsCache) get(key string, now time.Time) (ReportTotals, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || now.Sub(e.at) > totalsMaxAge || now.Before(e.at) {
		return ReportTotals{}, false
	}
	return e.totals, true
}

func (c *totalsCache) put(key string, t ReportTotals, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= totalsMaxKeys {
		c.m = make(map[string]totalsEntry) // simplest bound: start over
	}
	c.m[key] = totalsEntry{totals: t, at: now}
}

// count returns the totals for key, counted by count unless another request
// is counting the same key: then it waits for that count, which read the
// same data version. If that other request failed (its client went away,
// say) and this one has not, it counts for itself.
func (c *totalsCache) count(ctx context.Context, key string, count func() (ReportTotals, error)) (ReportTotals, error) {
	led := false
	ch := c.counting.DoChan(key, func() (any, error) {
		led = true
		return count()
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			if !led && ctx.Err() == nil {
				return count()
			}
			return ReportTotals{}, r.Err
		}
		return r.Val.(ReportTotals), nil
	case <-ctx.Done():
		return ReportTotals{}, ctx.Err()
	}
}
