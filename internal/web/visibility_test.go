package web_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

// newFullEnv is newEnv with the usage and notification endpoints too.
func newFullEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	now := func() time.Time { return testNow }
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{t: t, svc: access.New(db.Access(), now)}
	ns := notify.New(db.Notify(), nil, noInactivity{}, notify.Config{BaseURL: "https://usher.example.com", Now: now, Logger: quiet})
	e.srv = newTestServer(t, web.NewHandler(web.Config{
		Access: e.svc, Notify: ns, Usage: usage.New(db.Usage(), usage.Config{Now: now}), Logger: quiet,
	}))
	e.admin, e.adminU = e.account("Acme", "admin@acme.test")
	return e
}

// auditCount is how many entries the account's audit log holds.
func (c *client) auditCount() int {
	c.t.Helper()
	var page auditPage
	c.ok(http.StatusOK, "GET", "/api/v1/audit-log?limit=500", nil, &page)
	return len(page.Items)
}

// TestWhatAnActorMayNotSeeAnswersNotFound has a software coordinator of
// one contract name another contract on every endpoint that takes a
// subscription: each answers exactly as for a subscription that does not
// exist, never names A-200, and changes nothing.
func TestWhatAnActorMayNotSeeAnswersNotFound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newFullEnv(t, db)
		c := e.admin
		mine := c.createSubscription("A-100", "modelstudio", 5, e.adminU.ID, "web_support")
		hidden := c.createSubscription("A-200", "draftpro", 5, e.adminU.ID, "web_support")
		coordU := c.createUser("coord@example.com")
		c.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(coordU.ID)+"/roles", map[string]any{"role": "software_coordinator", "subscription_id": mine.ID}, nil)
		coord := e.tokenFor(e.adminU.AccountID, coordU.ID, usher.ScopeFull)
		target := c.createUser("target@example.com")
		// The target holds a seat of A-200, so every write below has something it could change.
		c.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(target.ID)+"/seats", map[string]any{"subscription_id": hidden.ID, "benefits": []string{"web_support"}}, nil)
		before, audits := c.subscription(hidden.ID), c.auditCount()
		u := itoa(target.ID)

		type call struct {
			name, method string
			path         func(sub string) string
			body         func(sub int64) any
			fields       []string
			accept       string
		}
		calls := []call{
			{"GetSubscription", "GET", func(s string) string { return "/api/v1/subscriptions/" + s }, nil, nil, ""},
			{"PutAccess", "PUT", func(string) string { return "/api/v1/users/" + u + "/access" }, func(s int64) any {
				return map[string]any{"subscriptions": []map[string]any{{"subscription_id": mine.ID, "assigned": true}, {"subscription_id": s, "assigned": false}}}
			}, []string{"subscriptions[1].subscription_id"}, ""},
			{"Unassign", "POST", func(string) string { return "/api/v1/unassign" }, func(s int64) any {
				return map[string]any{"items": []map[string]any{{"user_id": target.ID, "subscription_id": s}}}
			}, []string{"items[0].subscription_id"}, ""},
			{"AddSeat", "POST", func(string) string { return "/api/v1/users/" + u + "/seats" }, func(s int64) any {
				return map[string]any{"subscription_id": s}
			}, []string{"subscription_id"}, ""},
			{"RemoveSeat", "DELETE", func(s string) string { return "/api/v1/users/" + u + "/seats/" + s }, nil, nil, ""},
			{"AppointCoordinator", "POST", func(string) string { return "/api/v1/users/" + u + "/roles" }, func(s int64) any {
				return map[string]any{"role": "software_coordinator", "subscription_id": s}
			}, []string{"subscription_id"}, ""},
			{"RevokeCoordinator", "DELETE", func(s string) string {
				return "/api/v1/users/" + u + "/roles?role=software_coordinator&subscription_id=" + s
			}, nil, []string{"subscription_id"}, ""},
			{"ReportFilter", "GET", func(s string) string { return "/api/v1/reports/usage?subscription=" + s }, nil, []string{"subscription"}, ""},
			{"ReportExportFilter", "GET", func(s string) string { return "/api/v1/reports/usage?subscription=" + s }, nil, []string{"subscription"}, "text/csv"},
		}
		const missing = 987654
		for _, cl := range calls {
			t.Run(cl.name, func(t *testing.T) {
				ask := func(id int64) (*response, problem) {
					var body any
					if cl.body != nil {
						body = cl.body(id)
					}
					accept := cl.accept
					if accept == "" {
						accept = "application/json"
					}
					r := coord.do(cl.method, cl.path(itoa(id)), body, "Accept", accept)
					return r, r.problem(t, http.StatusNotFound, usher.ENOTFOUND, cl.fields...)
				}
				hr, hp := ask(hidden.ID)
				mr, mp := ask(missing)
				if strings.Contains(string(hr.Body), "A-200") || strings.Contains(string(hr.Body), "draftpro") {
					t.Fatalf("the answer names the hidden contract: %s", hr.Body)
				}
				if !strings.Contains(hp.Detail, "subscription "+itoa(hidden.ID)) {
					t.Fatalf("detail %q does not name the subscription by id", hp.Detail)
				}
				norm := func(b []byte, id int64) string {
					return strings.ReplaceAll(string(b), "subscription "+itoa(id), "subscription N")
				}
				if norm(hr.Body, hidden.ID) != norm(mr.Body, missing) || hp.Title != mp.Title {
					t.Fatalf("a hidden subscription answers unlike a missing one:\n%s\n%s", hr.Body, mr.Body)
				}
			})
		}
		if got := c.subscription(hidden.ID); got.SeatsUsed != before.SeatsUsed {
			t.Fatalf("seats used of A-200: got %d, want %d", got.SeatsUsed, before.SeatsUsed)
		}
		if as, _, benefits := c.access(target.ID).seat(hidden.ID); !as || len(benefits) != 1 {
			t.Fatalf("the target's seat of A-200 changed: assigned %v, benefits %v", as, benefits)
		}
		if as, _, _ := c.access(target.ID).seat(mine.ID); as {
			t.Fatal("a refused PUT still gave the target a seat of A-100")
		}
		if got := c.auditCount(); got != audits {
			t.Fatalf("audit entries: got %d, want %d: a refused write was recorded", got, audits)
		}

		t.Run("AccessViewOmitsIt", func(t *testing.T) {
			r := coord.ok(http.StatusOK, "GET", "/api/v1/users/"+u+"/access", nil, nil)
			if strings.Contains(string(r.Body), "A-200") {
				t.Fatalf("the coordinator's view of access names A-200: %s", r.Body)
			}
		})
		t.Run("AnotherAccountsSubscription", func(t *testing.T) {
			other, otherAdmin := e.account("Other", "admin@other.test")
			theirs := other.createSubscription("Z-900", "draftpro", 3, otherAdmin.ID)
			r := c.do("GET", "/api/v1/reports/usage?subscription="+itoa(theirs.ID), nil)
			r.problem(t, http.StatusNotFound, usher.ENOTFOUND, "subscription")
			r = c.do("POST", "/api/v1/users/"+u+"/seats", map[string]any{"subscription_id": theirs.ID})
			r.problem(t, http.StatusNotFound, usher.ENOTFOUND, "subscription_id")
			if strings.Contains(string(r.Body), "Z-900") {
				t.Fatalf("the answer names another account's contract: %s", r.Body)
			}
		})
	})
}

// TestFiltersAndEnums: ids that name nothing answer 404 naming the
// parameter; values outside a known set answer 422 naming the parameter
// and the values it takes.
func TestFiltersAndEnums(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newFullEnv(t, db)
		c := e.admin
		sub := c.createSubscription("C-1", "draftpro", 5, e.adminU.ID)
		gone := c.createUser("gone@example.com")
		c.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(gone.ID)+"/seats", map[string]any{"subscription_id": sub.ID}, nil)
		c.ok(http.StatusNoContent, "DELETE", "/api/v1/users/"+itoa(gone.ID), nil, nil)

		p := c.fail(404, usher.ENOTFOUND, "GET", "/api/v1/reports/usage?subscription=999999", nil, "subscription")
		if !strings.Contains(p.Detail, "subscription 999999 not found") {
			t.Fatalf("detail: %q", p.Detail)
		}
		c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?subscription="+itoa(sub.ID), nil, nil)

		p = c.fail(404, usher.ENOTFOUND, "GET", "/api/v1/audit-log?user_id=999999", nil, "user_id")
		if !strings.Contains(p.Detail, "user 999999 not found") {
			t.Fatalf("detail: %q", p.Detail)
		}
		// A deleted user's history stays readable.
		var page auditPage
		c.ok(http.StatusOK, "GET", "/api/v1/audit-log?user_id="+itoa(gone.ID), nil, &page)
		if len(page.Items) < 3 || page.Items[0].Action != "user.delete" {
			t.Fatalf("history of a deleted user: got %+v", page.Items)
		}

		for _, tc := range []struct{ path, field, allowed string }{
			{"/api/v1/audit-log?action=bogus", "action", "seat.assign"},
			{"/api/v1/audit-log?action=SEAT.ASSIGN", "action", "notification.turn_off"},
			{"/api/v1/reports/usage?status=bogus", "status", "inactive"},
			{"/api/v1/reports/usage?range=2y", "range", "9m"},
			{"/api/v1/reports/usage?sort=salary", "sort", "days_used"},
			{"/api/v1/users/" + itoa(e.adminU.ID) + "/roles?role=emperor&subscription_id=1", "role", "software_coordinator"},
		} {
			method := "GET"
			if strings.Contains(tc.path, "/roles") {
				method = "DELETE"
			}
			p := c.fail(422, usher.EINVALID, method, tc.path, nil, tc.field)
			if !strings.Contains(p.Errors[0].Reason, tc.allowed) {
				t.Fatalf("%s: reason %q does not list the allowed values", tc.path, p.Errors[0].Reason)
			}
		}
		c.ok(http.StatusOK, "GET", "/api/v1/audit-log?action=seat.assign", nil, &page)
		if len(page.Items) != 2 { // the manager's seat and gone's
			t.Fatalf("seat.assign entries: got %d, want 2", len(page.Items))
		}
	})
}

// TestCursorsAreAuthenticated tampers with the cursor of every paged list:
// each refusal is 422 naming cursor, and real cursors keep working.
func TestCursorsAreAuthenticated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newFullEnv(t, db)
		c := e.admin
		for _, n := range []string{"a", "b", "c"} {
			u := c.createUser(n + "@example.com")
			c.createSubscription("C-"+n, "draftpro", 5, u.ID)
		}
		other, _ := e.account("Other", "admin@other.test")
		other.createUser("x@other.test")
		other.createUser("y@other.test")

		next := func(cl *client, path string) string {
			t.Helper()
			var page struct {
				NextCursor string `json:"next_cursor"`
			}
			cl.ok(http.StatusOK, "GET", path, nil, &page)
			if page.NextCursor == "" {
				t.Fatalf("%s: no next cursor", path)
			}
			return page.NextCursor
		}
		lists := map[string]string{
			"users":         "/api/v1/users?limit=1",
			"subscriptions": "/api/v1/subscriptions?limit=1",
			"audit":         "/api/v1/audit-log?limit=1",
			"report":        "/api/v1/reports/usage?limit=1",
		}
		cursors := map[string]string{}
		for name, path := range lists {
			cursors[name] = next(c, path)
			c.ok(http.StatusOK, "GET", path+"&cursor="+url.QueryEscape(cursors[name]), nil, nil)
		}
		otherUsers := next(other, "/api/v1/users?limit=1")
		b64 := base64.RawURLEncoding.EncodeToString
		payload, sig, _ := strings.Cut(cursors["users"], ".")
		flipped := []byte(sig)
		flipped[0] ^= 1
		if flipped[0] == '.' {
			flipped[0] = 'A'
		}
		forged := map[string]string{
			"ForgedJSON":         b64([]byte(`{"n":"","i":0}`)),
			"ForgedJSONWithMAC":  b64([]byte(`{"n":"","i":0}`)) + "." + sig,
			"SQLText":            "1' OR '1'='1",
			"SQLTextEncoded":     b64([]byte(`"x' OR 1=1 --"`)) + "." + sig,
			"NegativeID":         b64([]byte(`-5`)),
			"NegativeIDWithMAC":  b64([]byte(`-5`)) + "." + sig,
			"FlippedSignature":   payload + "." + string(flipped),
			"TruncatedSignature": payload + "." + sig[:10],
			"Padded":             cursors["users"] + "==",
			"Huge":               strings.Repeat("A", 5000),
			"AnotherAccounts":    otherUsers,
		}
		for name, cur := range forged {
			t.Run(name, func(t *testing.T) {
				c.fail(422, usher.EINVALID, "GET", "/api/v1/users?limit=1&cursor="+url.QueryEscape(cur), nil, "cursor")
			})
		}
		t.Run("AnotherListsCursor", func(t *testing.T) {
			for name, path := range lists {
				for from, cur := range cursors {
					if from == name {
						continue
					}
					c.fail(422, usher.EINVALID, "GET", path+"&cursor="+url.QueryEscape(cur), nil, "cursor")
				}
				c.fail(422, usher.EINVALID, "GET", path+"&cursor="+url.QueryEscape(b64([]byte("7"))), nil, "cursor")
			}
			c.fail(422, usher.EINVALID, "GET", "/api/v1/usage-notifications/runs?cursor="+url.QueryEscape(cursors["audit"]), nil, "cursor")
		})
		t.Run("ReportCursorOfAnotherOrder", func(t *testing.T) {
			c.fail(422, usher.EINVALID, "GET", "/api/v1/reports/usage?limit=1&sort=-days_used&cursor="+url.QueryEscape(cursors["report"]), nil, "cursor")
		})
		t.Run("SameKeyAfterRestart", func(t *testing.T) {
			// A second service on the same database, as another replica or
			// a restarted process, opens the first one's cursors.
			svc := access.New(db.Access(), func() time.Time { return testNow })
			a, err := svc.ActorFor(context.Background(), e.adminU.AccountID, e.adminU.ID)
			if err != nil {
				t.Fatal(err)
			}
			page, err := svc.ListUsers(context.Background(), a, "", cursors["users"], 1)
			if err != nil || len(page.Items) != 1 {
				t.Fatalf("got %+v, %v", page, err)
			}
		})
	})
}
