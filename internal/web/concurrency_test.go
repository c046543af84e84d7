package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
)

// call is one request sent from a goroutine: it never calls t.Fatal, it
// returns what happened, so the test judges every answer afterwards.
type call struct {
	method, path string
	status       int
	body         []byte
	err          error
}

func (c *client) send(method, path, contentType string, body []byte) call {
	out := call{method: method, path: path}
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		out.err = err
		return out
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		out.err = err
		return out
	}
	defer resp.Body.Close()
	out.status = resp.StatusCode
	out.body, out.err = io.ReadAll(resp.Body)
	return out
}

func (c *client) sendJSON(method, path string, v any) call {
	b, err := json.Marshal(v)
	if err != nil {
		return call{method: method, path: path, err: err}
	}
	return c.send(method, path, "application/json", b)
}

func (c call) String() string {
	return fmt.Sprintf("%s %s: %d %s", c.method, c.path, c.status, strings.TrimSpace(string(c.body)))
}

// Twenty bulk unassigns at once, each naming 4 of the same 10 seats in a
// random order: each either takes all its seats (200) or, because another
// took one of them first, is a conflict naming that item (409) and changes
// nothing. Never a deadlock (500) or a "not found" (404).
func TestOverlappingBulkUnassignsAreConflictsNotErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 0)
		extra := u.admin.createSubscription("STD-2", "civilworks", 10, u.adminU.ID)
		// The admin holds a seat of each; 10 users hold one more, spread
		// over both contracts, so the requests lock rows of both.
		type seat struct{ User, Sub int64 }
		var seats []seat
		for i := range 10 {
			sub := u.std
			if i%2 == 1 {
				sub = extra
			}
			usr := u.seat(fmt.Sprintf("user%d@acme.test", i), sub)
			seats = append(seats, seat{usr.ID, sub.ID})
		}
		before := u.admin.subscription(u.std.ID).SeatsUsed + u.admin.subscription(extra.ID).SeatsUsed

		const requests = 20
		calls := make([]call, requests)
		named := make([][]seat, requests)
		for i := range requests {
			perm := rand.Perm(len(seats))[:4]
			for _, j := range perm {
				named[i] = append(named[i], seats[j])
			}
		}
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range requests {
			wg.Go(func() {
				items := make([]map[string]int64, len(named[i]))
				for k, s := range named[i] {
					items[k] = map[string]int64{"user_id": s.User, "subscription_id": s.Sub}
				}
				start.Wait()
				calls[i] = u.admin.sendJSON("POST", "/api/v1/unassign", map[string]any{"items": items})
			})
		}
		start.Done()
		wg.Wait()

		taken := 0
		for i, c := range calls {
			switch {
			case c.err != nil:
				t.Errorf("request %d: %v", i, c.err)
			case c.status == http.StatusOK:
				var res struct{ Seats int }
				if err := json.Unmarshal(c.body, &res); err != nil || res.Seats != 4 {
					t.Errorf("request %d: %s, want 4 seats taken", i, c)
				}
				taken += res.Seats
			case c.status == http.StatusConflict:
				var p problem
				if err := json.Unmarshal(c.body, &p); err != nil || p.Code != "conflict" || len(p.Errors) == 0 ||
					!strings.HasPrefix(p.Errors[0].Field, "items[") || !strings.Contains(p.Errors[0].Reason, "holds no seat") {
					t.Errorf("request %d: %s, want a conflict naming the item", i, c)
				}
			default:
				t.Errorf("request %d: %s, want 200 or 409", i, c)
			}
		}
		if taken == 0 {
			t.Error("no request took its seats")
		}
		after := u.admin.subscription(u.std.ID).SeatsUsed + u.admin.subscription(extra.ID).SeatsUsed
		if before-after != taken {
			t.Errorf("seats used went from %d to %d, but the answers took %d", before, after, taken)
		}
		var log auditPage
		u.admin.ok(http.StatusOK, "GET", "/api/v1/audit-log?action=seat.unassign&limit=100", nil, &log)
		if len(log.Items) != taken {
			t.Errorf("audit log has %d seat.unassign entries, want %d", len(log.Items), taken)
		}
	})
}
