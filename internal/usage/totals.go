package usage

import (
	"fmt"
	"sync"
	"time"
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
