package web_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// etagOf checks that r carries a strong ETag and returns it.
func etagOf(t *testing.T, r *response) string {
	t.Helper()
	tag := r.Header.Get("ETag")
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' || strings.HasPrefix(tag, "W/") {
		t.Fatalf("ETag: got %q, want a strong, quoted tag", tag)
	}
	return tag
}

func TestAccessETagAndIfMatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		sub := c.createSubscription("C-1", "modelstudio", 5, e.adminU.ID, "web_support")
		other := c.createSubscription("C-2", "draftpro", 5, e.adminU.ID)
		u := c.createUser("grace@example.com")
		path := "/api/v1/users/" + itoa(u.ID) + "/access"
		get := func() (string, accessJSON) {
			var a accessJSON
			return etagOf(t, c.ok(http.StatusOK, "GET", path, nil, &a)), a
		}
		assign := map[string]any{"subscriptions": []map[string]any{{"subscription_id": sub.ID, "assigned": true, "services": []string{"rendering"}}}}

		v1, _ := get()
		if again, _ := get(); again != v1 {
			t.Fatalf("ETag changed without a change: %s then %s", v1, again)
		}
		r := c.do("PUT", path, assign, "If-Match", v1)
		if r.Status != http.StatusOK {
			t.Fatalf("PUT with the current ETag: got %d %s", r.Status, r.Body)
		}
		v2 := etagOf(t, r)
		if v2 == v1 {
			t.Fatal("the ETag did not change with the access")
		}
		if now, _ := get(); now != v2 {
			t.Fatalf("PUT answered ETag %s, GET %s", v2, now)
		}

		t.Run("StaleIs412AndChangesNothing", func(t *testing.T) {
			audits := c.auditCount()
			for _, tag := range []string{v1, `W/` + v2, `"nope"`, `nope`, `"a", ` + v1} {
				r := c.do("PUT", path, map[string]any{"subscriptions": []any{}}, "If-Match", tag)
				p := r.problem(t, http.StatusPreconditionFailed, usher.EPRECONDITION)
				if !strings.Contains(p.Detail, "changed since you read it") {
					t.Fatalf("detail: %q", p.Detail)
				}
			}
			if now, a := get(); now != v2 {
				t.Fatalf("a refused PUT changed the access: %+v", a)
			}
			if got := c.auditCount(); got != audits {
				t.Fatalf("audit entries: got %d, want %d", got, audits)
			}
		})
		t.Run("ListAndStarMatch", func(t *testing.T) {
			r := c.do("PUT", path, assign, "If-Match", `"other", `+v2)
			if r.Status != http.StatusOK || etagOf(t, r) != v2 {
				t.Fatalf("If-Match list: got %d %s", r.Status, r.Body)
			}
			c.ok(http.StatusOK, "PUT", path, assign, nil) // no If-Match: still works
			if r := c.do("PUT", path, assign, "If-Match", "*"); r.Status != http.StatusOK {
				t.Fatalf("If-Match *: got %d %s", r.Status, r.Body)
			}
		})
		t.Run("SeatCountsOfOthersDoNotChangeIt", func(t *testing.T) {
			before, _ := get()
			someone := c.createUser("someone@example.com")
			c.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(someone.ID)+"/seats", map[string]any{"subscription_id": sub.ID}, nil)
			if now, a := get(); now != before {
				t.Fatalf("another user's seat changed this user's ETag (%+v)", a)
			}
		})
		t.Run("AnotherWriterMakesItStale", func(t *testing.T) {
			mine, _ := get()
			// Someone else adds a product in the meantime...
			c.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(u.ID)+"/seats", map[string]any{"subscription_id": other.ID}, nil)
			// ...so replacing everything from the old read is refused instead of taking it away.
			c.do("PUT", path, assign, "If-Match", mine).problem(t, http.StatusPreconditionFailed, usher.EPRECONDITION)
			if as, _, _ := c.access(u.ID).seat(other.ID); !as {
				t.Fatal("the stale PUT took the other seat away")
			}
		})
		t.Run("ChangesOnContractsTheReaderCannotSeeDoNotShow", func(t *testing.T) {
			coordU := c.createUser("coord@example.com")
			c.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(coordU.ID)+"/roles", map[string]any{"role": "software_coordinator", "subscription_id": sub.ID}, nil)
			coord := e.tokenFor(e.adminU.AccountID, coordU.ID, usher.ScopeFull)
			before := etagOf(t, coord.ok(http.StatusOK, "GET", path, nil, nil))
			c.ok(http.StatusOK, "DELETE", "/api/v1/users/"+itoa(u.ID)+"/seats/"+itoa(other.ID), nil, nil)
			if now := etagOf(t, coord.ok(http.StatusOK, "GET", path, nil, nil)); now != before {
				t.Fatal("the coordinator's ETag moved with a contract they cannot see")
			}
		})
	})
}

func TestOneSeatEndpoints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		ms := c.createSubscription("C-1", "modelstudio", 3, e.adminU.ID, "web_support", "training")
		dp := c.createSubscription("C-2", "draftpro", 5, e.adminU.ID, "phone_support")
		u := c.createUser("grace@example.com")
		seats := "/api/v1/users/" + itoa(u.ID) + "/seats"
		// Grace holds a DraftPro seat with a benefit, which adding and removing ModelStudio must keep.
		c.ok(http.StatusCreated, "POST", seats, map[string]any{"subscription_id": dp.ID, "benefits": []string{"phone_support"}}, nil)

		t.Run("AddKeepsTheRest", func(t *testing.T) {
			var got accessJSON
			r := c.ok(http.StatusCreated, "POST", seats, map[string]any{
				"subscription_id": ms.ID, "services": []string{"rendering"}, "benefits": []string{"training"},
			}, &got)
			etagOf(t, r)
			if as, services, benefits := got.seat(ms.ID); !as || !slices.Equal(services, []string{"rendering"}) || !slices.Equal(benefits, []string{"training"}) {
				t.Fatalf("new seat: assigned %v, services %v, benefits %v", as, services, benefits)
			}
			if as, _, benefits := got.seat(dp.ID); !as || !slices.Equal(benefits, []string{"phone_support"}) {
				t.Fatalf("the other seat changed: assigned %v, benefits %v", as, benefits)
			}
			if s := c.subscription(ms.ID); s.SeatsUsed != 2 {
				t.Fatalf("seats used: got %d, want 2", s.SeatsUsed)
			}
		})
		t.Run("AlreadyHeldIs409", func(t *testing.T) {
			p := c.fail(409, usher.ECONFLICT, "POST", seats, map[string]any{"subscription_id": ms.ID})
			if !strings.Contains(p.Detail, "already") || !strings.Contains(p.Detail, "PUT /api/v1/users/") {
				t.Fatalf("detail: %q", p.Detail)
			}
			if s := c.subscription(ms.ID); s.SeatsUsed != 2 {
				t.Fatalf("seats used: got %d, want 2", s.SeatsUsed)
			}
		})
		t.Run("InvalidIs422NamingTheField", func(t *testing.T) {
			v := c.createUser("v@example.com")
			p := "/api/v1/users/" + itoa(v.ID) + "/seats"
			c.fail(422, usher.EINVALID, "POST", p, map[string]any{"services": []string{"rendering"}}, "subscription_id")
			c.fail(422, usher.EINVALID, "POST", p, map[string]any{"subscription_id": ms.ID, "services": []string{"teleport", "rendering", "rendering"}, "benefits": []string{"phone_support"}},
				"services[0]", "services[2]", "benefits[0]")
			c.fail(400, "malformed_request", "POST", p, map[string]any{"subscription_id": ms.ID, "assigned": true}, "assigned")
			c.fail(404, usher.ENOTFOUND, "POST", "/api/v1/users/999999/seats", map[string]any{"subscription_id": ms.ID})
			if as, _, _ := c.access(v.ID).seat(ms.ID); as {
				t.Fatal("a refused POST gave a seat")
			}
		})
		t.Run("NoSeatLeftIs409", func(t *testing.T) {
			c.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(c.createUser("third@example.com").ID)+"/seats", map[string]any{"subscription_id": ms.ID}, nil)
			late := c.createUser("late@example.com")
			c.fail(409, usher.ENOSEATS, "POST", "/api/v1/users/"+itoa(late.ID)+"/seats", map[string]any{"subscription_id": ms.ID, "benefits": []string{"training"}})
			if as, _, benefits := c.access(late.ID).seat(ms.ID); as || len(benefits) != 0 {
				t.Fatalf("a refused POST changed access: assigned %v, benefits %v", as, benefits)
			}
			if s := c.subscription(ms.ID); s.SeatsUsed != 3 {
				t.Fatalf("seats used: got %d, want 3", s.SeatsUsed)
			}
		})
		t.Run("DisabledUserIs409", func(t *testing.T) {
			d := c.createUser("disabled@example.com")
			c.ok(http.StatusOK, "PATCH", "/api/v1/users/"+itoa(d.ID), map[string]any{"status": "disabled"}, nil)
			c.fail(409, usher.ECONFLICT, "POST", "/api/v1/users/"+itoa(d.ID)+"/seats", map[string]any{"subscription_id": dp.ID})
		})
		t.Run("RemoveTakesSeatServicesAndBenefitsOfThatContractOnly", func(t *testing.T) {
			var got accessJSON
			etagOf(t, c.ok(http.StatusOK, "DELETE", seats+"/"+itoa(ms.ID), nil, &got))
			if as, services, benefits := got.seat(ms.ID); as || len(services) != 0 || len(benefits) != 0 {
				t.Fatalf("after remove: assigned %v, services %v, benefits %v", as, services, benefits)
			}
			if as, _, benefits := got.seat(dp.ID); !as || !slices.Equal(benefits, []string{"phone_support"}) {
				t.Fatalf("the other seat changed: assigned %v, benefits %v", as, benefits)
			}
			if s := c.subscription(ms.ID); s.SeatsUsed != 2 {
				t.Fatalf("seats used: got %d, want 2", s.SeatsUsed)
			}
			p := c.fail(404, usher.ENOTFOUND, "DELETE", seats+"/"+itoa(ms.ID), nil)
			if !strings.Contains(p.Detail, "holds no seat") {
				t.Fatalf("detail: %q", p.Detail)
			}
			c.fail(404, usher.ENOTFOUND, "DELETE", seats+"/abc", nil)
		})
		t.Run("Audited", func(t *testing.T) {
			var page auditPage
			c.ok(http.StatusOK, "GET", "/api/v1/audit-log?user_id="+itoa(u.ID)+"&limit=20", nil, &page)
			var actions []string
			for _, en := range page.Items {
				if en.SubscriptionID == ms.ID {
					actions = append(actions, en.Action)
				}
			}
			// Newest first: the removal, then the addition.
			want := []string{"benefits.set", "seat.unassign", "benefits.set", "seat.assign"}
			if !slices.Equal(actions, want) {
				t.Fatalf("audit of C-1: got %v, want %v", actions, want)
			}
			var removed usher.Assignment
			for _, en := range page.Items {
				if en.Action == "seat.unassign" {
					if err := json.Unmarshal(en.Before, &removed); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !slices.Equal(removed.Services, []string{"rendering"}) {
				t.Fatalf("seat.unassign before: got %+v", removed)
			}
		})
		t.Run("IfMatch", func(t *testing.T) {
			stale := etagOf(t, c.ok(http.StatusOK, "GET", "/api/v1/users/"+itoa(u.ID)+"/access", nil, nil))
			c.ok(http.StatusCreated, "POST", seats, map[string]any{"subscription_id": ms.ID}, nil)
			c.do("DELETE", seats+"/"+itoa(ms.ID), nil, "If-Match", stale).problem(t, http.StatusPreconditionFailed, usher.EPRECONDITION)
			c.do("POST", seats, map[string]any{"subscription_id": ms.ID}, "If-Match", stale).problem(t, http.StatusPreconditionFailed, usher.EPRECONDITION)
			fresh := etagOf(t, c.ok(http.StatusOK, "GET", "/api/v1/users/"+itoa(u.ID)+"/access", nil, nil))
			if r := c.do("DELETE", seats+"/"+itoa(ms.ID), nil, "If-Match", fresh); r.Status != http.StatusOK {
				t.Fatalf("DELETE with the current ETag: got %d %s", r.Status, r.Body)
			}
		})
		t.Run("PlainUserIs403", func(t *testing.T) {
			plain := e.tokenFor(e.adminU.AccountID, u.ID, usher.ScopeFull)
			plain.fail(403, usher.EFORBIDDEN, "POST", seats, map[string]any{"subscription_id": dp.ID})
			plain.fail(403, usher.EFORBIDDEN, "DELETE", seats+"/"+itoa(dp.ID), nil)
			if as, _, _ := c.access(u.ID).seat(dp.ID); !as {
				t.Fatal("a refused DELETE took the seat")
			}
		})
	})
}
