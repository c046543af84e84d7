package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
)

// TestPatchSubscriptionSeatsAndTerm checks PATCH /api/v1/subscriptions/{id}
// with seats and term: the same service as the console's Change form.
func TestPatchSubscriptionSeatsAndTerm(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		ben, cora := c.createUser("ben@acme.test"), c.createUser("cora@acme.test")
		sub := c.createSubscription("MS-1", "modelstudio", 5, ben.ID) // Ben holds a seat
		c.ok(http.StatusOK, "PUT", "/api/v1/users/"+itoa(cora.ID)+"/access", map[string]any{"subscriptions": []map[string]any{{"subscription_id": sub.ID, "assigned": true}}}, nil)
		path := "/api/v1/subscriptions/" + itoa(sub.ID)

		var got subJSON
		c.ok(http.StatusOK, "PATCH", path, map[string]any{"seats": 3, "term_end": "2027-06-30"}, &got)
		if got.Seats != 3 || got.SeatsAvailable != 1 {
			t.Fatalf("got %+v, want 3 seats, 1 available", got)
		}
		p := c.fail(422, "invalid", "PATCH", path, map[string]any{"seats": 1}, "seats")
		if r := p.Errors[0].Reason; !strings.Contains(r, "cannot be 1 while 2 seats are in use") || !strings.Contains(r, "ben@acme.test") || strings.Contains(r, "cora@acme.test") {
			t.Errorf("reason %q does not name the one holder who must go first", r)
		}
		if s := c.subscription(sub.ID); s.Seats != 3 {
			t.Fatalf("a refused PATCH changed seats to %d", s.Seats)
		}
		c.fail(422, "invalid", "PATCH", path, map[string]any{"term_start": "2026-13-01", "seats": 0}, "seats", "term_start")
		c.fail(422, "invalid", "PATCH", path, map[string]any{"term_end": "2025-01-01"}, "term_end") // before the stored start
		c.fail(422, "invalid", "PATCH", path, map[string]any{}, "seats")
		c.fail(400, "malformed_request", "PATCH", path, map[string]any{"seats": "many"}, "seats")
	})
}
