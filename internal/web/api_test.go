package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

func TestHealth(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		anon := e.client("")
		var body map[string]string
		r := anon.ok(http.StatusOK, "GET", "/healthz", nil, &body)
		if body["status"] != "ok" {
			t.Fatalf("got %v, want status ok", body)
		}
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("headers: got %v", r.Header)
		}

		t.Run("DatabaseDownIs503", func(t *testing.T) {
			down := func(context.Context) error { return errors.New("connection refused") }
			e.health.Store(&down)
			defer e.health.Store(nil)
			anon.ok(http.StatusServiceUnavailable, "GET", "/healthz", nil, &body)
			if body["status"] != "unavailable" {
				t.Fatalf("got %v, want status unavailable", body)
			}
		})

		t.Run("PanicIs500AndServerSurvives", func(t *testing.T) {
			boom := func(context.Context) error { panic("health check exploded") }
			e.health.Store(&boom)
			p := anon.fail(http.StatusInternalServerError, usher.EINTERNAL, "GET", "/healthz", nil)
			if p.Detail != "internal error" {
				t.Fatalf("detail: got %q, want internal error", p.Detail)
			}
			e.health.Store(nil)
			anon.ok(http.StatusOK, "GET", "/healthz", nil, nil)
		})
	})
}

func TestAuthentication(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		t.Run("NoTokenIs401", func(t *testing.T) {
			r := e.client("").do("GET", "/api/v1/me", nil)
			r.problem(t, http.StatusUnauthorized, usher.EUNAUTHORIZED)
			if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Fatalf("WWW-Authenticate: got %q, want Bearer", got)
			}
		})
		t.Run("BadTokenIs401", func(t *testing.T) {
			r := e.client("ush_not-a-token").do("GET", "/api/v1/users", nil)
			r.problem(t, http.StatusUnauthorized, usher.EUNAUTHORIZED)
			if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate: got %q, want invalid_token", got)
			}
		})
		t.Run("OtherSchemeIs401", func(t *testing.T) {
			r := e.admin.do("GET", "/api/v1/me", nil, "Authorization", "Basic "+e.admin.token)
			r.problem(t, http.StatusUnauthorized, usher.EUNAUTHORIZED)
		})
		t.Run("MeDescribesTheCaller", func(t *testing.T) {
			var me struct {
				User    userJSON          `json:"user"`
				Roles   []usher.RoleGrant `json:"roles"`
				Account usher.Account     `json:"account"`
				Scope   string            `json:"scope"`
			}
			r := e.admin.ok(http.StatusOK, "GET", "/api/v1/me", nil, &me)
			if me.User.Email != "admin@acme.test" || me.Account.Name != "Acme" || me.Account.TimeZone != "Europe/Berlin" || me.Scope != "full" {
				t.Fatalf("got %+v", me)
			}
			if len(me.Roles) != 1 || me.Roles[0].Role != usher.RolePrimaryAdmin {
				t.Fatalf("roles: got %+v, want primary_admin", me.Roles)
			}
			if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("headers: got %v", r.Header)
			}
		})
		t.Run("NewTokenWorksAndIngestTokenOnlyIngests", func(t *testing.T) {
			var tok struct {
				Token string `json:"token"`
				ID    int64  `json:"id"`
				Name  string `json:"name"`
				Scope string `json:"scope"`
			}
			e.admin.ok(http.StatusCreated, "POST", "/api/v1/tokens", map[string]any{"name": "ci", "scope": "ingest"}, &tok)
			if !strings.HasPrefix(tok.Token, "ush_") || tok.ID == 0 || tok.Name != "ci" || tok.Scope != "ingest" {
				t.Fatalf("got %+v", tok)
			}
			ingest := e.client(tok.Token)
			ingest.ok(http.StatusOK, "GET", "/api/v1/me", nil, nil)
			ingest.fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", "/api/v1/users", nil)
			e.admin.fail(http.StatusUnprocessableEntity, usher.EINVALID, "POST", "/api/v1/tokens", map[string]any{"name": "x", "scope": "root"}, "scope")
		})
	})
}

func TestRouting(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/nope", nil)
		r := e.admin.do("DELETE", "/api/v1/products", nil)
		r.problem(t, http.StatusMethodNotAllowed, "method_not_allowed")
		if !strings.Contains(r.Header.Get("Allow"), "GET") {
			t.Fatalf("Allow: got %q", r.Header.Get("Allow"))
		}
		for _, path := range []string{"/api/v1/users/abc", "/api/v1/users/0", "/api/v1/users/-1/access", "/api/v1/subscriptions/1.5"} {
			p := e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", path, nil)
			if !strings.Contains(p.Detail, "positive whole numbers") {
				t.Fatalf("%s: detail %q does not explain ids", path, p.Detail)
			}
		}
	})
}

func TestCreateUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		countUsers := func() int {
			var page userPage
			c.ok(http.StatusOK, "GET", "/api/v1/users?limit=500", nil, &page)
			return len(page.Items)
		}

		t.Run("CreatedWithLocation", func(t *testing.T) {
			var u userJSON
			r := c.ok(http.StatusCreated, "POST", "/api/v1/users", map[string]any{"email": " Ada@Example.com ", "name": "Ada"}, &u)
			if u.Email != "ada@example.com" || u.Name != "Ada" || u.Status != "active" || u.ID == 0 {
				t.Fatalf("got %+v", u)
			}
			loc := r.Header.Get("Location")
			if loc != "/api/v1/users/"+itoa(u.ID) {
				t.Fatalf("Location: got %q", loc)
			}
			var got userJSON
			c.ok(http.StatusOK, "GET", loc, nil, &got)
			if got.Email != u.Email || got.Roles == nil {
				t.Fatalf("GET Location: got %+v", got)
			}
		})
		before := countUsers()

		cases := []struct {
			name   string
			body   any
			header []string
			status int
			code   string
			fields []string
		}{
			{"DuplicateEmailIsConflict", map[string]any{"email": "ADA@example.com"}, nil, 409, usher.ECONFLICT, nil},
			{"BadEmailNamesEmail", map[string]any{"email": "ada at example"}, nil, 422, usher.EINVALID, []string{"email"}},
			{"EveryProblemAtOnce", map[string]any{"email": "x", "name": "", "status": "asleep"}, nil, 422, usher.EINVALID, []string{"email", "name", "status"}},
			{"UnknownFieldNamed", raw(`{"email":"b@example.com","role":"admin"}`), nil, 400, "malformed_request", []string{"role"}},
			{"BrokenJSON", raw(`{"email": "b@example.com",`), nil, 400, "malformed_request", nil},
			{"SyntaxError", raw("{\n  \"email\" \"b@example.com\"}"), nil, 400, "malformed_request", nil},
			{"WrongTypeNamesField", raw(`{"email":"b@example.com","name":5}`), nil, 400, "malformed_request", []string{"name"}},
			{"TrailingData", raw(`{"email":"b@example.com"} {"email":"c@example.com"}`), nil, 400, "malformed_request", nil},
			{"NotAnObject", raw(`["b@example.com"]`), nil, 400, "malformed_request", nil},
			{"EmptyBody", raw(``), nil, 400, "malformed_request", nil},
			{"OversizedBody", raw(`{"name":"` + strings.Repeat("x", web.DefaultMaxBody+100<<10) + `"}`), nil, 413, usher.ETOOLARGE, nil},
			{"WrongContentType", raw(`{"email":"b@example.com"}`), []string{"Content-Type", "text/plain"}, 415, usher.EUNSUPPORTED, nil},
			{"FormContentType", raw(`email=b@example.com`), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, usher.EUNSUPPORTED, nil},
			{"MissingContentType", raw(`{"email":"b@example.com"}`), []string{"Content-Type", ""}, 415, usher.EUNSUPPORTED, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := c.do("POST", "/api/v1/users", tc.body, tc.header...)
				p := r.problem(t, tc.status, tc.code, tc.fields...)
				if tc.status == 400 && p.Detail == "" {
					t.Fatalf("400 without a detail: %s", r.Body)
				}
				if got := countUsers(); got != before {
					t.Fatalf("users: got %d, want %d (nothing created)", got, before)
				}
			})
		}
		t.Run("SyntaxErrorSaysWhere", func(t *testing.T) {
			p := c.fail(400, "malformed_request", "POST", "/api/v1/users", raw("{\n  \"email\" \"b@example.com\"}"))
			if !strings.Contains(p.Detail, "line 2") {
				t.Fatalf("detail %q does not give the line", p.Detail)
			}
			p = c.fail(400, "malformed_request", "POST", "/api/v1/users", raw(`{"email":"b@example.com","name":5}`), "name")
			if p.Errors[0].Reason != "must be a string" {
				t.Fatalf("reason: got %q", p.Errors[0].Reason)
			}
		})
		t.Run("UpdateAndDelete", func(t *testing.T) {
			u := c.createUser("grace@example.com")
			var got userJSON
			c.ok(http.StatusOK, "PATCH", "/api/v1/users/"+itoa(u.ID), map[string]any{"name": "Grace Hopper", "status": "disabled"}, &got)
			if got.Name != "Grace Hopper" || got.Status != "disabled" || got.Email != "grace@example.com" {
				t.Fatalf("after PATCH: got %+v", got)
			}
			c.fail(422, usher.EINVALID, "PATCH", "/api/v1/users/"+itoa(u.ID), map[string]any{"status": "gone"}, "status")
			c.fail(409, usher.ECONFLICT, "DELETE", "/api/v1/users/"+itoa(e.adminU.ID), nil) // the only primary admin
			r := c.do("DELETE", "/api/v1/users/"+itoa(u.ID), nil)
			if r.Status != http.StatusNoContent || len(r.Body) != 0 {
				t.Fatalf("DELETE: got %d %s, want 204", r.Status, r.Body)
			}
			c.fail(404, usher.ENOTFOUND, "GET", "/api/v1/users/"+itoa(u.ID), nil)
		})
	})
}

func TestRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		u := c.createUser("sec@example.com")
		path := "/api/v1/users/" + itoa(u.ID) + "/roles"
		var g usher.RoleGrant
		c.ok(http.StatusCreated, "POST", path, map[string]any{"role": "secondary_admin"}, &g)
		if g.UserID != u.ID || g.Role != usher.RoleSecondaryAdmin {
			t.Fatalf("got %+v", g)
		}
		c.fail(422, usher.EINVALID, "POST", path, map[string]any{"role": "emperor"}, "role")
		c.fail(422, usher.EINVALID, "POST", path, map[string]any{"role": "software_coordinator"}, "subscription_id")
		c.fail(400, "malformed_request", "POST", path, map[string]any{"role": "secondary_admin", "user_id": 1}, "user_id")

		// Revoke by query parameters, then by body.
		if r := c.do("DELETE", path+"?role=secondary_admin", nil); r.Status != http.StatusNoContent {
			t.Fatalf("revoke by query: got %d %s", r.Status, r.Body)
		}
		c.fail(404, usher.ENOTFOUND, "DELETE", path+"?role=secondary_admin", nil)
		c.fail(422, usher.EINVALID, "DELETE", path+"?role=software_coordinator&subscription_id=x", nil, "subscription_id")
		c.ok(http.StatusCreated, "POST", path, map[string]any{"role": "secondary_admin"}, nil)
		if r := c.do("DELETE", path, map[string]any{"role": "secondary_admin"}); r.Status != http.StatusNoContent {
			t.Fatalf("revoke by body: got %d %s", r.Status, r.Body)
		}
		var got userJSON
		c.ok(http.StatusOK, "GET", "/api/v1/users/"+itoa(u.ID), nil, &got)
		if len(got.Roles) != 0 {
			t.Fatalf("roles after revoke: got %+v", got.Roles)
		}
	})
}

func TestCreateSubscription(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		mgr := c.createUser("mgr@example.com")
		good := func() map[string]any {
			return map[string]any{
				"product": "modelstudio", "plan": "premium", "seats": 5, "contract_number": "C-100",
				"term_start": "2026-01-01", "term_end": "2027-01-01", "benefits": []string{"web_support"}, "contract_manager_id": mgr.ID,
			}
		}
		with := func(k string, v any) map[string]any { b := good(); b[k] = v; return b }
		countSubs := func() int {
			var page struct{ Items []subJSON }
			c.ok(http.StatusOK, "GET", "/api/v1/subscriptions", nil, &page)
			return len(page.Items)
		}
		cases := []struct {
			name   string
			body   any
			status int
			fields []string
		}{
			{"UnknownPlan", with("plan", "gold"), 422, []string{"plan"}},
			{"NegativeSeats", with("seats", -3), 422, []string{"seats"}},
			{"UnknownProduct", with("product", "nope"), 422, []string{"product"}},
			{"UnknownBenefit", with("benefits", []string{"massage"}), 422, []string{"benefits[0]"}},
			{"BadDateNamed", with("term_start", "2026-13-01"), 422, []string{"term_start"}},
			{"BadDateAndPlanTogether", func() map[string]any { b := with("plan", "gold"); b["term_end"] = "soon"; return b }(), 422, []string{"plan", "term_end"}},
			{"SeatsNotANumber", with("seats", "five"), 400, []string{"seats"}},
			{"SeatsNotWhole", with("seats", 2.5), 400, []string{"seats"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				code := usher.EINVALID
				if tc.status == 400 {
					code = "malformed_request"
				}
				c.fail(tc.status, code, "POST", "/api/v1/subscriptions", tc.body, tc.fields...)
				if n := countSubs(); n != 0 {
					t.Fatalf("subscriptions: got %d, want 0", n)
				}
			})
		}
		t.Run("CreatedWithManagerSeat", func(t *testing.T) {
			var s subJSON
			r := c.ok(http.StatusCreated, "POST", "/api/v1/subscriptions", good(), &s)
			if s.Seats != 5 || s.SeatsUsed != 1 || s.SeatsAvailable != 4 || s.Plan != "premium" || s.Product.Code != "modelstudio" {
				t.Fatalf("got %+v", s)
			}
			if loc := r.Header.Get("Location"); loc != "/api/v1/subscriptions/"+itoa(s.ID) {
				t.Fatalf("Location: got %q", loc)
			}
			if got := c.subscription(s.ID); got.SeatsAvailable != 4 || got.SeatsUsed != 1 {
				t.Fatalf("GET: got %+v", got)
			}
			if a, _, _ := c.access(mgr.ID).seat(s.ID); !a {
				t.Fatal("the contract manager holds no seat")
			}
			c.fail(409, usher.ECONFLICT, "POST", "/api/v1/subscriptions", good()) // contract number taken
		})
		t.Run("ProductsListed", func(t *testing.T) {
			var page struct {
				Items []usher.Product `json:"items"`
			}
			c.ok(http.StatusOK, "GET", "/api/v1/products", nil, &page)
			for _, p := range page.Items {
				if p.Code == "modelstudio" && p.HasService("rendering") && p.HasService("cloud_storage") {
					return
				}
			}
			t.Fatalf("modelstudio with rendering and cloud_storage not in %+v", page.Items)
		})
	})
}

func TestSetAccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		sub := c.createSubscription("C-1", "modelstudio", 2, e.adminU.ID, "web_support", "phone_support")
		other := c.createSubscription("C-2", "draftpro", 5, e.adminU.ID)
		u := c.createUser("user@example.com")
		path := "/api/v1/users/" + itoa(u.ID) + "/access"
		put := func(status int, subs ...map[string]any) accessJSON {
			t.Helper()
			var a accessJSON
			c.ok(status, "PUT", path, map[string]any{"subscriptions": subs}, &a)
			return a
		}

		a := put(http.StatusOK, map[string]any{"subscription_id": sub.ID, "assigned": true, "services": []string{"rendering", "cloud_storage"}, "benefits": []string{"web_support"}})
		if as, svcs, bens := a.seat(sub.ID); !as || len(svcs) != 2 || len(bens) != 1 || bens[0] != "web_support" {
			t.Fatalf("after assigning: got %+v", a)
		}
		if got := c.subscription(sub.ID); got.SeatsUsed != 2 || got.SeatsAvailable != 0 {
			t.Fatalf("seats after assigning: got %+v", got)
		}

		a = put(http.StatusOK, map[string]any{"subscription_id": sub.ID, "assigned": true, "services": []string{"cloud_storage"}, "benefits": []string{"web_support"}})
		if as, svcs, _ := a.seat(sub.ID); !as || len(svcs) != 1 || svcs[0] != "cloud_storage" {
			t.Fatalf("after clearing a service: got %+v", a)
		}
		unchanged := func(t *testing.T) {
			t.Helper()
			got := c.access(u.ID)
			if as, svcs, bens := got.seat(sub.ID); !as || len(svcs) != 1 || svcs[0] != "cloud_storage" || len(bens) != 1 {
				t.Fatalf("access changed: got %+v", got)
			}
			if as, _, _ := got.seat(other.ID); as {
				t.Fatal("access changed: user holds a seat of C-2")
			}
			if s := c.subscription(sub.ID); s.SeatsUsed != 2 {
				t.Fatalf("seats used of C-1 changed to %d", s.SeatsUsed)
			}
		}

		t.Run("ServiceOfAnotherProductChangesNothing", func(t *testing.T) {
			c.fail(422, usher.EINVALID, "PUT", path, map[string]any{"subscriptions": []map[string]any{
				{"subscription_id": other.ID, "assigned": true, "services": []string{"rendering"}},
				{"subscription_id": sub.ID, "assigned": false},
			}}, "subscriptions[0].services[0]")
			unchanged(t)
		})
		t.Run("FullSubscriptionIsNoSeats", func(t *testing.T) {
			v := c.createUser("late@example.com")
			c.fail(409, usher.ENOSEATS, "PUT", "/api/v1/users/"+itoa(v.ID)+"/access", map[string]any{"subscriptions": []map[string]any{
				{"subscription_id": other.ID, "assigned": true},
				{"subscription_id": sub.ID, "assigned": true},
			}})
			if got := c.access(v.ID); len(got.Subscriptions) != 2 {
				t.Fatalf("access entries: got %d, want 2", len(got.Subscriptions))
			} else if as, _, _ := got.seat(other.ID); as {
				t.Fatal("the seat of C-2 stayed assigned though the request failed")
			}
			if s := c.subscription(other.ID); s.SeatsUsed != 1 {
				t.Fatalf("seats used of C-2: got %d, want 1", s.SeatsUsed)
			}
			unchanged(t)
		})
		t.Run("MissingSubscriptionsRefused", func(t *testing.T) {
			c.fail(422, usher.EINVALID, "PUT", path, map[string]any{}, "subscriptions")
			unchanged(t)
		})
		t.Run("WrongTypeDeepInsideNamesThePath", func(t *testing.T) {
			c.fail(400, "malformed_request", "PUT", path, raw(`{"subscriptions":[{"subscription_id":1,"assigned":true},{"subscription_id":"two"}]}`), "subscriptions[1].subscription_id")
			c.fail(400, "malformed_request", "PUT", path, raw(`{"subscriptions":[{"subscription_id":1,"servces":[]}]}`), "subscriptions[0].servces")
			unchanged(t)
		})
	})
}

func TestCoordinatorCannotTouchAnotherContract(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		coordU := c.createUser("coord@example.com")
		mine := c.createSubscription("C-1", "modelstudio", 5, e.adminU.ID)
		theirs := c.createSubscription("C-2", "draftpro", 5, e.adminU.ID)
		c.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(coordU.ID)+"/roles", map[string]any{"role": "software_coordinator", "subscription_id": mine.ID}, nil)
		coord := e.tokenFor(e.adminU.AccountID, coordU.ID, usher.ScopeFull)
		target := c.createUser("target@example.com")
		path := "/api/v1/users/" + itoa(target.ID) + "/access"

		coord.ok(http.StatusOK, "PUT", path, map[string]any{"subscriptions": []map[string]any{{"subscription_id": mine.ID, "assigned": true}}}, nil)
		// A contract the coordinator may not see answers as one that does not exist.
		coord.fail(404, usher.ENOTFOUND, "PUT", path, map[string]any{"subscriptions": []map[string]any{
			{"subscription_id": mine.ID, "assigned": true}, {"subscription_id": theirs.ID, "assigned": true},
		}}, "subscriptions[1].subscription_id")
		coord.fail(404, usher.ENOTFOUND, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{
			{"user_id": e.adminU.ID, "subscription_id": theirs.ID},
		}}, "items[0].subscription_id")
		coord.fail(404, usher.ENOTFOUND, "GET", "/api/v1/subscriptions/"+itoa(theirs.ID), nil)
		coord.fail(403, usher.EFORBIDDEN, "POST", "/api/v1/users", map[string]any{"email": "new@example.com"})
		if s := c.subscription(theirs.ID); s.SeatsUsed != 1 {
			t.Fatalf("seats used of C-2: got %d, want 1 (the manager's)", s.SeatsUsed)
		}
		if as, _, _ := c.access(target.ID).seat(theirs.ID); as {
			t.Fatal("target got a seat of C-2")
		}
		if as, _, _ := c.access(target.ID).seat(mine.ID); !as {
			t.Fatal("target lost the seat of C-1")
		}
	})
}

func TestUnassignIsAllOrNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		sub := c.createSubscription("C-1", "modelstudio", 10, e.adminU.ID)
		u1, u2, idle := c.createUser("u1@example.com"), c.createUser("u2@example.com"), c.createUser("idle@example.com")
		for _, u := range []userJSON{u1, u2} {
			c.ok(http.StatusOK, "PUT", "/api/v1/users/"+itoa(u.ID)+"/access", map[string]any{"subscriptions": []map[string]any{
				{"subscription_id": sub.ID, "assigned": true, "services": []string{"rendering"}},
			}}, nil)
		}
		good := []map[string]any{{"user_id": u1.ID, "subscription_id": sub.ID}, {"user_id": u2.ID, "subscription_id": sub.ID}}

		// Naming a seat the user does not hold is a conflict with the
		// current state, the same whether it was never held or another
		// request took it a moment ago.
		c.fail(409, usher.ECONFLICT, "POST", "/api/v1/unassign", map[string]any{"items": append(good, map[string]any{"user_id": idle.ID, "subscription_id": sub.ID})}, "items[2]")
		for _, u := range []userJSON{u1, u2} {
			if as, _, _ := c.access(u.ID).seat(sub.ID); !as {
				t.Fatalf("%s lost the seat though the request failed", u.Email)
			}
		}
		if s := c.subscription(sub.ID); s.SeatsUsed != 3 {
			t.Fatalf("seats used after failed unassign: got %d, want 3", s.SeatsUsed)
		}
		c.fail(422, usher.EINVALID, "POST", "/api/v1/unassign", map[string]any{"items": []any{}}, "items")

		var res struct{ Seats, Services, Benefits, Users int }
		c.ok(http.StatusOK, "POST", "/api/v1/unassign", map[string]any{"items": good}, &res)
		if res.Seats != 2 || res.Services != 2 || res.Users != 2 || res.Benefits != 0 {
			t.Fatalf("got %+v, want 2 seats, 2 services, 2 users", res)
		}
		if s := c.subscription(sub.ID); s.SeatsUsed != 1 || s.SeatsAvailable != 9 {
			t.Fatalf("seats after unassign: got %+v", s)
		}
	})
}

func TestPagination(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		want := map[int64]bool{e.adminU.ID: true}
		for i := range 7 {
			want[c.createUser(fmt.Sprintf("p%d@example.com", i)).ID] = true
		}
		seen := map[int64]int{}
		cursor, pages := "", 0
		for {
			var page userPage
			path := "/api/v1/users?limit=3"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			c.ok(http.StatusOK, "GET", path, nil, &page)
			pages++
			if len(page.Items) > 3 {
				t.Fatalf("page %d has %d items, limit 3", pages, len(page.Items))
			}
			for _, u := range page.Items {
				seen[u.ID]++
			}
			if page.NextCursor == "" {
				break
			}
			if pages > 10 {
				t.Fatal("pagination does not end")
			}
			cursor = page.NextCursor
		}
		if pages != 3 || len(seen) != len(want) {
			t.Fatalf("got %d pages and %d users, want 3 pages and %d users", pages, len(seen), len(want))
		}
		for id, n := range seen {
			if n != 1 || !want[id] {
				t.Fatalf("user %d seen %d times (expected: %v)", id, n, want[id])
			}
		}
		c.fail(422, usher.EINVALID, "GET", "/api/v1/users?cursor=bogus!", nil, "cursor")
		for _, l := range []string{"abc", "0", "-1", "501"} {
			c.fail(422, usher.EINVALID, "GET", "/api/v1/users?limit="+l, nil, "limit")
			c.fail(422, usher.EINVALID, "GET", "/api/v1/subscriptions?limit="+l, nil, "limit")
			c.fail(422, usher.EINVALID, "GET", "/api/v1/audit-log?limit="+l, nil, "limit")
		}
		var page userPage
		c.ok(http.StatusOK, "GET", "/api/v1/users?q=P3%40", nil, &page)
		if len(page.Items) != 1 || page.Items[0].Email != "p3@example.com" {
			t.Fatalf("search: got %+v", page.Items)
		}
	})
}

func TestAuditLogShowsWhoChangedWhat(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		sub := c.createSubscription("C-1", "modelstudio", 3, e.adminU.ID)
		u := c.createUser("u@example.com")
		c.ok(http.StatusOK, "PUT", "/api/v1/users/"+itoa(u.ID)+"/access", map[string]any{"subscriptions": []map[string]any{
			{"subscription_id": sub.ID, "assigned": true, "services": []string{"rendering"}},
		}}, nil)

		var page auditPage
		c.ok(http.StatusOK, "GET", "/api/v1/audit-log?action=seat.assign&user_id="+itoa(u.ID), nil, &page)
		if len(page.Items) != 1 {
			t.Fatalf("got %d entries, want 1: %+v", len(page.Items), page.Items)
		}
		en := page.Items[0]
		if en.ActorEmail != "admin@acme.test" || en.ActorID != e.adminU.ID || en.TargetEmail != "u@example.com" || en.SubscriptionID != sub.ID || !en.At.Equal(testNow) {
			t.Fatalf("got %+v", en)
		}
		var after usher.Assignment
		if err := json.Unmarshal(en.After, &after); err != nil || len(after.Services) != 1 || after.Services[0] != "rendering" {
			t.Fatalf("after: got %s (%v)", en.After, err)
		}
		c.ok(http.StatusOK, "GET", "/api/v1/audit-log?limit=2", nil, &page)
		if len(page.Items) != 2 || page.Items[0].Action != "seat.assign" {
			t.Fatalf("newest first: got %+v", page.Items)
		}
		c.fail(422, usher.EINVALID, "GET", "/api/v1/audit-log?user_id=me", nil, "user_id")

		// Only admins read the audit log.
		plain := e.tokenFor(e.adminU.AccountID, u.ID, usher.ScopeFull)
		plain.fail(403, usher.EFORBIDDEN, "GET", "/api/v1/audit-log", nil)
	})
}

// TestCrossAccountIsolation has each account's admin try the other's ids on
// every endpoint that takes one.
func TestCrossAccountIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		type side struct {
			admin *client
			user  userJSON
			sub   subJSON
		}
		mk := func(c *client, adminID int64) side {
			s := side{admin: c, user: c.createUser("someone@example.com")}
			s.sub = c.createSubscription("C-1", "modelstudio", 4, adminID)
			c.ok(http.StatusOK, "PUT", "/api/v1/users/"+itoa(s.user.ID)+"/access", map[string]any{"subscriptions": []map[string]any{
				{"subscription_id": s.sub.ID, "assigned": true},
			}}, nil)
			return s
		}
		bc, bAdmin := e.account("Other", "admin@other.test")
		a, b := mk(e.admin, e.adminU.ID), mk(bc, bAdmin.ID)

		for _, pair := range []struct {
			name       string
			me, victim side
		}{{"AtoB", a, b}, {"BtoA", b, a}} {
			t.Run(pair.name, func(t *testing.T) {
				c, u, s := pair.me.admin, itoa(pair.victim.user.ID), itoa(pair.victim.sub.ID)
				for _, r := range []struct {
					method, path string
					body         any
				}{
					{"GET", "/api/v1/users/" + u, nil},
					{"PATCH", "/api/v1/users/" + u, map[string]any{"name": "Pwned"}},
					{"DELETE", "/api/v1/users/" + u, nil},
					{"POST", "/api/v1/users/" + u + "/roles", map[string]any{"role": "secondary_admin"}},
					{"DELETE", "/api/v1/users/" + u + "/roles?role=secondary_admin", nil},
					{"GET", "/api/v1/users/" + u + "/access", nil},
					{"PUT", "/api/v1/users/" + u + "/access", map[string]any{"subscriptions": []any{}}},
					{"GET", "/api/v1/subscriptions/" + s, nil},
				} {
					c.fail(404, usher.ENOTFOUND, r.method, r.path, r.body)
				}
				c.fail(404, usher.ENOTFOUND, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{
					{"user_id": pair.victim.user.ID, "subscription_id": pair.victim.sub.ID},
				}}, "items[0].subscription_id")
				c.fail(422, usher.EINVALID, "POST", "/api/v1/subscriptions", map[string]any{
					"product": "modelstudio", "plan": "basic", "seats": 1, "contract_number": "X-1",
					"term_start": "2026-01-01", "term_end": "2027-01-01", "contract_manager_id": pair.victim.user.ID,
				}, "contract_manager_id")
				var page userPage
				c.ok(http.StatusOK, "GET", "/api/v1/users?q=someone", nil, &page)
				if len(page.Items) != 1 || page.Items[0].ID != pair.me.user.ID {
					t.Fatalf("search shows another account's user: %+v", page.Items)
				}
				// Nothing of the victim changed.
				v := pair.victim.admin
				var got userJSON
				v.ok(http.StatusOK, "GET", "/api/v1/users/"+u, nil, &got)
				if got.Name == "Pwned" || len(got.Roles) != 0 {
					t.Fatalf("victim's user changed: %+v", got)
				}
				if as, _, _ := v.access(pair.victim.user.ID).seat(pair.victim.sub.ID); !as {
					t.Fatal("victim's user lost their seat")
				}
				if got := v.subscription(pair.victim.sub.ID); got.SeatsUsed != 2 {
					t.Fatalf("victim's seats used: got %d, want 2", got.SeatsUsed)
				}
			})
		}
	})
}
