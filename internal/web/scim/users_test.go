package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

func userBody(userName, email, display, externalID string) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"displayName":%q,"externalId":%q,
		"emails":[{"value":%q,"type":"work","primary":true}],"active":true}`, userName, display, externalID, email)
}

// userNames returns the userNames of a list answer, sorted.
func userNames(t *testing.T, r *response) []string {
	t.Helper()
	var out []string
	res, _ := r.Body["Resources"].([]any)
	for _, x := range res {
		out = append(out, str(x.(map[string]any)["userName"]))
	}
	sort.Strings(out)
	return out
}

func TestUserFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.scimToken(e.admin, "idp")
		for _, u := range [][4]string{
			{"ada@corp.test", "ada@corp.test", "Ada Lovelace", "EXT-ada"},
			{"alan@corp.test", "alan.turing@mail.test", "Alan Turing", "ext-alan"},
			{"grace@corp.test", "grace@navy.test", "Grace Hopper", "EXT-grace"},
		} {
			c.must(http.StatusCreated, "POST", "/scim/v2/Users", userBody(u[0], u[1], u[2], u[3]))
		}
		cases := []struct {
			filter string
			want   string
		}{
			{`userName eq "ADA@corp.test"`, "[ada@corp.test]"},
			{`userName sw "a"`, "[ada@corp.test admin@acme.test alan@corp.test]"},
			{`userName sw "a" and displayName co "turing"`, "[alan@corp.test]"},
			{`displayName co "o"`, "[ada@corp.test grace@corp.test]"},
			{`emails.value eq "grace@navy.test"`, "[grace@corp.test]"},
			{`emails[type eq "work" and value co "mail.test"]`, "[alan@corp.test]"},
			{`emails[value ew "corp.test"]`, "[ada@corp.test]"},
			{`emails[type eq "home"]`, "[]"},
			{`externalId eq "EXT-ada"`, "[ada@corp.test]"},
			{`externalId eq "ext-ada"`, "[]"}, // externalId is caseExact
			{`externalId sw "EXT"`, "[ada@corp.test grace@corp.test]"},
			{`externalId co "-a"`, "[ada@corp.test alan@corp.test]"},
			{`userName eq "ada@corp.test" or userName eq "grace@corp.test"`, "[ada@corp.test grace@corp.test]"},
			{`not (userName sw "a") and externalId pr`, "[grace@corp.test]"},
			// The primary admin, made in Usher, answers to their email.
			{`userName eq "admin@acme.test"`, "[admin@acme.test]"},
		}
		for _, tc := range cases {
			t.Run(tc.filter, func(t *testing.T) {
				got := fmt.Sprint(userNames(t, c.must(http.StatusOK, "GET", filter(tc.filter), "")))
				if got != tc.want {
					t.Errorf("got %s, want %s", got, tc.want)
				}
			})
		}
		for _, bad := range []string{`userName eq`, `title eq "x"`, `userName gt "a"`, `meta.created pr`} {
			t.Run("invalidFilter "+bad, func(t *testing.T) {
				wantError(t, c.do("GET", filter(bad), ""), http.StatusBadRequest, "invalidFilter")
			})
		}
	})
}

func TestUserPaging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.scimToken(e.admin, "idp")
		for i := range 7 {
			n := fmt.Sprintf("p%d@corp.test", i)
			c.must(http.StatusCreated, "POST", "/scim/v2/Users", userBody(n, n, n, ""))
		}
		seen := map[string]bool{}
		for start := 1; start <= 8; start += 3 {
			r := c.must(http.StatusOK, "GET", fmt.Sprintf("/scim/v2/Users?filter=%s&startIndex=%d&count=3", "userName+sw+%22p%22", start), "")
			if total(t, r) != 7 || r.Body["startIndex"] != float64(start) {
				t.Fatalf("page at %d: %s", start, r.Raw)
			}
			for _, n := range userNames(t, r) {
				if seen[n] {
					t.Errorf("%s on two pages", n)
				}
				seen[n] = true
			}
		}
		if len(seen) != 7 {
			t.Errorf("pages held %d users, want 7", len(seen))
		}
		r := c.must(http.StatusOK, "GET", "/scim/v2/Users?count=0", "")
		if total(t, r) != 8 || r.Body["itemsPerPage"] != float64(0) {
			t.Errorf("count=0: %s", r.Raw)
		}
	})
}

func TestUserRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		c := e.scimToken(e.admin, "idp")

		wantError(t, e.client("").do("GET", "/scim/v2/Users", ""), http.StatusUnauthorized, "")
		wantError(t, e.client("ush_nonsense").do("GET", "/scim/v2/Users", ""), http.StatusUnauthorized, "")
		// A full API token is not a SCIM token: provisioning is told apart.
		_, full, err := e.svc.CreateToken(ctx, e.admin, access.TokenInput{Name: "full", Scope: usher.ScopeFull})
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, e.client(full).do("GET", "/scim/v2/Users", ""), http.StatusForbidden, "")
		// A SCIM token does nothing in the REST API.
		if r := c.do("GET", "/api/v1/users", ""); r.Status != http.StatusForbidden {
			t.Errorf("SCIM token on /api/v1/users: %d", r.Status)
		}

		wantError(t, c.do("POST", "/scim/v2/Users", `{"userName": "x"}`), http.StatusBadRequest, "invalidValue")
		wantError(t, c.do("POST", "/scim/v2/Users", `{"userName": "x@corp.test", "active": "maybe"}`), http.StatusBadRequest, "invalidValue")
		wantError(t, c.do("POST", "/scim/v2/Users", `not json`), http.StatusBadRequest, "invalidSyntax")
		// Text with a NUL or a control character is refused, naming the
		// attribute, rather than stored (PostgreSQL refuses NUL outright).
		for _, body := range []string{
			`{"userName": "nul\u0000@corp.test"}`,
			`{"userName": "tab@corp.test", "displayName": "T\u001eab"}`,
			`{"userName": "ext@corp.test", "externalId": "x\u0000"}`,
		} {
			wantError(t, c.do("POST", "/scim/v2/Users", body), http.StatusBadRequest, "invalidValue")
		}
		wantError(t, c.do("GET", "/scim/v2/Users/999999", ""), http.StatusNotFound, "")
		wantError(t, c.do("GET", "/scim/v2/Nothing", ""), http.StatusNotFound, "")
		u := c.must(http.StatusCreated, "POST", "/scim/v2/Users", userBody("b@corp.test", "b@corp.test", "B", ""))
		path := fmt.Sprintf("/scim/v2/Users/%d", id(t, u))
		wantError(t, c.do("PATCH", path, `{"Operations": [{"op": "move", "path": "userName", "value": "x"}]}`), http.StatusBadRequest, "invalidSyntax")
		wantError(t, c.do("PATCH", path, `{"Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]}`), http.StatusBadRequest, "invalidPath")
		wantError(t, c.do("PATCH", path, `{"Operations": [{"op": "replace", "path": "userName", "value": "admin@acme.test"}]}`), http.StatusConflict, "uniqueness")
		wantError(t, c.do("PATCH", path, `{"Operations": [{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "admin@acme.test"}]}`), http.StatusConflict, "uniqueness")

		// Another account's SCIM token sees none of this account's users.
		other := e.scimToken(e.account("Other", "boss@other.test"), "idp")
		wantError(t, other.do("GET", path, ""), http.StatusNotFound, "")
		if n := total(t, other.must(http.StatusOK, "GET", filter(`userName eq "b@corp.test"`), "")); n != 0 {
			t.Errorf("other account found %d", n)
		}

		// The only active primary admin cannot be deprovisioned.
		admin := c.must(http.StatusOK, "GET", filter(`userName eq "admin@acme.test"`), "")
		adminID := str(admin.Body["Resources"].([]any)[0].(map[string]any)["id"])
		r := c.do("PATCH", "/scim/v2/Users/"+adminID, `{"Operations": [{"op": "replace", "path": "active", "value": false}]}`)
		wantError(t, r, http.StatusConflict, "")
		if got, _ := e.svc.User(ctx, e.admin, e.admin.UserID); got.Status != usher.UserActive {
			t.Error("the only primary admin was disabled")
		}
	})
}

// A secondary admin's SCIM token may not touch a primary admin, as in the API.
func TestSecondaryAdminTokenLeavesPrimaryAdmins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		sec, err := e.svc.CreateUser(ctx, e.admin, access.UserInput{Email: ptr("sec@acme.test")})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.GrantRole(ctx, e.admin, usher.RoleGrant{UserID: sec.ID, Role: usher.RoleSecondaryAdmin}); err != nil {
			t.Fatal(err)
		}
		a, err := e.svc.ActorFor(ctx, e.admin.AccountID, sec.ID)
		if err != nil {
			t.Fatal(err)
		}
		c := e.scimToken(a, "idp")
		r := c.do("PATCH", fmt.Sprintf("/scim/v2/Users/%d", e.admin.UserID), `{"Operations": [{"op": "replace", "path": "displayName", "value": "Renamed"}]}`)
		wantError(t, r, http.StatusForbidden, "")
	})
}

func ptr[T any](v T) *T { return &v }

// Connecting a provider to an account that already has its people: the
// create of someone Usher knows by email takes them over, history and seats
// kept, rather than failing.
func TestCreateTakesOverUserMadeInUsher(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		u, err := e.svc.CreateUser(ctx, e.admin, access.UserInput{Email: ptr("lin@corp.test"), Name: ptr("Lin")})
		if err != nil {
			t.Fatal(err)
		}
		sub := e.subscription("C-1", 3)
		if err := e.svc.Assign(ctx, e.admin, u.ID, sub.ID, nil); err != nil {
			t.Fatal(err)
		}
		c := e.scimToken(e.admin, "idp")
		r := c.must(http.StatusCreated, "POST", "/scim/v2/Users", userBody("lin.w@corp.onmicrosoft.test", "Lin@corp.test", "Lin Wei", "ext-lin"))
		if id(t, r) != u.ID || r.Body["userName"] != "lin.w@corp.onmicrosoft.test" {
			t.Fatalf("take-over: %s", r.Raw)
		}
		if e.seatsUsed(sub.ID) != 1 {
			t.Error("taking over a user changed their seats")
		}
		if n := len(e.audit(u.ID, "user.provision")); n != 1 {
			t.Errorf("%d user.provision entries", n)
		}
		// Created twice is a conflict now that the provider manages them.
		wantError(t, c.do("POST", "/scim/v2/Users", userBody("other@corp.test", "lin@corp.test", "Lin", "")), http.StatusConflict, "uniqueness")
	})
}

// PATCH without a path: each key of the value is a path of its own, dotted
// or prefixed with the enterprise extension's URN.
func TestPatchWithoutPath(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.scimToken(e.admin, "idp")
		r := c.must(http.StatusCreated, "POST", "/scim/v2/Users", userBody("kim@corp.test", "kim@corp.test", "Kim", ""))
		path := fmt.Sprintf("/scim/v2/Users/%d", id(t, r))
		p := c.must(http.StatusOK, "PATCH", path, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
			{"op": "Add", "value": {"name.givenName": "Kim", "Title": "Lead",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Design", "manager": {"value": "12"}}}},
			{"op": "Replace", "value": {"displayName": "Kim Park"}},
			{"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}
		]}`)
		ext, _ := p.Body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
		name, _ := p.Body["name"].(map[string]any)
		if p.Body["displayName"] != "Kim Park" || p.Body["title"] != "Lead" || name["givenName"] != "Kim" ||
			ext["employeeNumber"] != "701" || ext["department"] != "Design" || ext["manager"] != nil {
			t.Errorf("after PATCH: %s", p.Raw)
		}
	})
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	c := e.scimToken(e.admin, "idp")
	types := c.must(http.StatusOK, "GET", "/scim/v2/ResourceTypes", "")
	res, _ := types.Body["Resources"].([]any)
	if total(t, types) != len(res) || len(res) == 0 {
		t.Fatalf("ResourceTypes: %s", types.Raw)
	}
	user := c.must(http.StatusOK, "GET", "/scim/v2/ResourceTypes/User", "")
	if user.Body["endpoint"] != "/Users" || user.Body["schema"] != "urn:ietf:params:scim:schemas:core:2.0:User" {
		t.Errorf("ResourceTypes/User: %s", user.Raw)
	}
	group := c.must(http.StatusOK, "GET", "/scim/v2/ResourceTypes/Group", "")
	if group.Body["endpoint"] != "/Groups" || group.Body["schema"] != "urn:ietf:params:scim:schemas:core:2.0:Group" {
		t.Errorf("ResourceTypes/Group: %s", group.Raw)
	}
	schemas := c.must(http.StatusOK, "GET", "/scim/v2/Schemas", "")
	ids := map[string]bool{}
	for _, s := range schemas.Body["Resources"].([]any) {
		ids[str(s.(map[string]any)["id"])] = true
	}
	for _, want := range []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "urn:ietf:params:scim:schemas:core:2.0:Group"} {
		if !ids[want] {
			t.Errorf("Schemas lacks %s", want)
		}
		c.must(http.StatusOK, "GET", "/scim/v2/Schemas/"+want, "")
	}
	wantError(t, c.do("GET", "/scim/v2/Schemas/urn:nothing", ""), http.StatusNotFound, "")
	wantError(t, c.do("GET", "/scim/v2/ResourceTypes/Nothing", ""), http.StatusNotFound, "")
	// A method SCIM does not offer on a path it has.
	r := c.do("DELETE", "/scim/v2/Users", "")
	wantError(t, r, http.StatusMethodNotAllowed, "")
	if r.Header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
}
