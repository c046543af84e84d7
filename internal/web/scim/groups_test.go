package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
)

// The group requests follow Microsoft's published examples of what the
// Entra ID provisioning service sends for groups (create, lookup by
// displayName without members, member add and remove in batches) and
// Okta's (PATCH with members and a replace of displayName).

func groups(f string) string { return "/scim/v2/Groups?filter=" + url.QueryEscape(f) }

// entraUser creates a user as Entra ID does and returns its id.
func entraUser(t *testing.T, c *client, name string) int64 {
	t.Helper()
	return id(t, c.must(http.StatusCreated, "POST", "/scim/v2/Users", fmt.Sprintf(`{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "externalId": "ext-%[1]s",
		"userName": "%[1]s@acme.test", "active": true, "displayName": "%[1]s",
		"emails": [{"primary": true, "type": "work", "value": "%[1]s@acme.test"}]}`, name)))
}

func memberValues(r *response) []string {
	var out []string
	list, _ := r.Body["members"].([]any)
	for _, m := range list {
		out = append(out, str(m.(map[string]any)["value"]))
	}
	slices.Sort(out)
	return out
}

func TestEntraIDGroupSeats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		entra := e.scimToken(e.admin, "Entra ID")
		ada, bob := entraUser(t, entra, "ada"), entraUser(t, entra, "bob")

		// Entra ID looks the group up, creates it, and finds it again.
		if n := total(t, entra.must(http.StatusOK, "GET", groups(`displayName eq "Design"`)+"&excludedAttributes=members", "")); n != 0 {
			t.Fatalf("found %d groups before the create", n)
		}
		created := entra.must(http.StatusCreated, "POST", "/scim/v2/Groups", `{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
			"externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Design", "members": []}`)
		gid := id(t, created)
		if created.Header.Get("Location") != e.srv.URL+fmt.Sprintf("/scim/v2/Groups/%d", gid) || created.Body["displayName"] != "Design" {
			t.Errorf("created group: %s %s", created.Header.Get("Location"), created.Raw)
		}
		found := entra.must(http.StatusOK, "GET", groups(`displayName eq "design" and externalId eq "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"`)+"&excludedAttributes=members", "")
		if total(t, found) != 1 {
			t.Fatalf("lookup: %s", found.Raw)
		}
		if _, has := found.Body["Resources"].([]any)[0].(map[string]any)["members"]; has {
			t.Error("members returned though excluded")
		}
		detail, err := e.svc.Group(ctx, e.admin, gid)
		if err != nil || !detail.Synced {
			t.Fatalf("the group is not synced: %+v (%v)", detail.Group, err)
		}

		// Usher's admin gives the group a subscription of five seats.
		sub := e.subscription("C-G", 5)
		if _, err := e.svc.AssignGroup(ctx, e.admin, gid, sub.ID, access.GroupAssignmentInput{}); err != nil {
			t.Fatal(err)
		}

		// Entra ID adds both members in one PATCH: each gets a seat.
		// The answer is 204 without the group, as Entra ID expects.
		entra.must(http.StatusNoContent, "PATCH", fmt.Sprintf("/scim/v2/Groups/%d", gid), fmt.Sprintf(`{
			"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations": [{"op": "Add", "path": "members", "value": [{"value": "%d"}, {"value": "%d"}]}]}`, ada, bob))
		added := entra.must(http.StatusOK, "GET", fmt.Sprintf("/scim/v2/Groups/%d", gid), "")
		if got := memberValues(added); fmt.Sprint(got) != fmt.Sprint([]string{fmt.Sprint(ada), fmt.Sprint(bob)}) {
			t.Errorf("members after add: %v", got)
		}
		if used := e.seatsUsed(sub.ID); used != 2 {
			t.Errorf("%d seats used after adding two members, want 2", used)
		}
		for _, u := range []int64{ada, bob} {
			for _, action := range []string{"group.member.add", "seat.assign"} {
				if en := e.audit(u, action); len(en) != 1 || en[0].ActorEmail != "scim:Entra ID" {
					t.Errorf("user %d: %d %s entries (%v), want one by the provisioning client", u, len(en), action, en)
				}
			}
		}

		// Entra ID removes bob: his seat is freed.
		// Asked for its members, the answer is the group with them.
		removed := entra.must(http.StatusOK, "PATCH", fmt.Sprintf("/scim/v2/Groups/%d?attributes=members", gid), fmt.Sprintf(`{
			"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations": [{"op": "Remove", "path": "members[value eq \"%d\"]"}]}`, bob))
		if got := memberValues(removed); fmt.Sprint(got) != fmt.Sprint([]string{fmt.Sprint(ada)}) {
			t.Errorf("members after remove: %v", got)
		}
		if used := e.seatsUsed(sub.ID); used != 1 {
			t.Errorf("%d seats used after removing bob, want 1", used)
		}
		for _, action := range []string{"group.member.remove", "seat.unassign"} {
			if en := e.audit(bob, action); len(en) != 1 || en[0].ActorEmail != "scim:Entra ID" {
				t.Errorf("bob: %d %s entries, want one by the provisioning client", len(en), action)
			}
		}

		// Entra ID disables ada: her seat is freed too.
		entra.must(http.StatusOK, "PATCH", fmt.Sprintf("/scim/v2/Users/%d", ada), `{
			"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}`)
		if used := e.seatsUsed(sub.ID); used != 0 {
			t.Errorf("%d seats used after disabling ada, want 0", used)
		}
		if en := e.audit(ada, "seat.unassign"); len(en) != 1 || en[0].ActorEmail != "scim:Entra ID" {
			t.Errorf("ada: %d seat.unassign entries, want one by the provisioning client", len(en))
		}
		if len(e.audit(ada, "user.deprovision")) != 1 {
			t.Error("no user.deprovision entry for ada")
		}

		// Admins may not change a synced group in Usher.
		name := "Renamed"
		if _, err := e.svc.UpdateGroup(ctx, e.admin, gid, access.GroupInput{Name: &name}); err == nil {
			t.Error("an admin renamed a synced group")
		}

		// Entra ID deletes the group.
		if r := entra.do("DELETE", fmt.Sprintf("/scim/v2/Groups/%d", gid), ""); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", r.Status, r.Raw)
		}
		wantError(t, entra.do("GET", fmt.Sprintf("/scim/v2/Groups/%d", gid), ""), http.StatusNotFound, "")
	})
}

func TestOktaGroupPatchPutAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		okta := e.scimToken(e.admin, "Okta")
		a, b, c := entraUser(t, okta, "a"), entraUser(t, okta, "b"), entraUser(t, okta, "c")
		gid := id(t, okta.must(http.StatusCreated, "POST", "/scim/v2/Groups", fmt.Sprintf(`{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering",
			"members": [{"value": "%d", "display": "a"}]}`, a)))
		okta.must(http.StatusCreated, "POST", "/scim/v2/Groups", `{"displayName": "Design Leads", "externalId": "okta-2"}`)
		okta.must(http.StatusCreated, "POST", "/scim/v2/Groups", `{"displayName": "Sales", "externalId": "okta-3"}`)
		wantError(t, okta.do("POST", "/scim/v2/Groups", `{"displayName": "sales"}`), http.StatusConflict, "uniqueness")
		wantError(t, okta.do("POST", "/scim/v2/Groups", `{"externalId": "x"}`), http.StatusBadRequest, "invalidValue")
		// Control characters and NULs in a group's text are refused, on
		// create and on rename.
		for _, body := range []string{`{"displayName": "Eng\u001eOps"}`, `{"displayName": "Nul\u0000"}`,
			`{"displayName": "Fine", "externalId": "x\u001f"}`} {
			wantError(t, okta.do("POST", "/scim/v2/Groups", body), http.StatusBadRequest, "invalidValue")
		}
		wantError(t, okta.do("PATCH", fmt.Sprintf("/scim/v2/Groups/%d", gid), `{"Operations": [{"op": "replace", "path": "displayName", "value": "Eng\u001fOps"}]}`),
			http.StatusBadRequest, "invalidValue")
		// A create whose member is refused leaves no group behind.
		wantError(t, okta.do("POST", "/scim/v2/Groups", `{"displayName": "Ghosts", "members": [{"value": "99999"}]}`), http.StatusBadRequest, "invalidValue")
		if n := total(t, okta.must(http.StatusOK, "GET", groups(`displayName eq "Ghosts"`), "")); n != 0 {
			t.Fatalf("a refused create left %d groups", n)
		}

		// Okta: add and remove members, then rename, with a value object.
		p := okta.must(http.StatusOK, "PATCH", fmt.Sprintf("/scim/v2/Groups/%d?excludedAttributes=externalId", gid), fmt.Sprintf(`{
			"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations": [
				{"op": "add", "path": "members", "value": [{"value": "%d", "display": "b"}, {"value": "%d", "display": "c"}]},
				{"op": "remove", "path": "members", "value": [{"value": "%d", "display": "a"}]},
				{"op": "replace", "value": {"id": "%d", "displayName": "Engineering Team"}}
			]}`, b, c, a, gid))
		if got := memberValues(p); fmt.Sprint(got) != fmt.Sprint([]string{fmt.Sprint(b), fmt.Sprint(c)}) || p.Body["displayName"] != "Engineering Team" {
			t.Errorf("after PATCH: %s", p.Raw)
		}
		wantError(t, okta.do("PATCH", fmt.Sprintf("/scim/v2/Groups/%d", gid), `{"Operations": [{"op": "add", "path": "members", "value": [{"value": "99999"}]}]}`), http.StatusBadRequest, "invalidValue")
		wantError(t, okta.do("PATCH", fmt.Sprintf("/scim/v2/Groups/%d", gid), `{"Operations": [{"op": "replace", "path": "owner", "value": "x"}]}`), http.StatusBadRequest, "invalidPath")

		// One PATCH is one transaction: a rename with a member who does not
		// exist, or a rename to a taken name with valid members, changes
		// nothing at all.
		path := fmt.Sprintf("/scim/v2/Groups/%d", gid)
		wantError(t, okta.do("PATCH", path, `{"Operations": [
			{"op": "replace", "path": "displayName", "value": "Half Renamed"},
			{"op": "add", "path": "members", "value": [{"value": "99999"}]}]}`), http.StatusBadRequest, "invalidValue")
		wantError(t, okta.do("PATCH", path, fmt.Sprintf(`{"Operations": [
			{"op": "remove", "path": "members", "value": [{"value": "%d"}]},
			{"op": "replace", "path": "displayName", "value": "Sales"}]}`, b)), http.StatusConflict, "uniqueness")
		wantError(t, okta.do("PUT", path, `{"displayName": "Put Renamed", "members": [{"value": "99999"}]}`), http.StatusBadRequest, "invalidValue")
		if g := okta.must(http.StatusOK, "GET", path, ""); g.Body["displayName"] != "Engineering Team" || fmt.Sprint(memberValues(g)) != fmt.Sprint([]string{fmt.Sprint(b), fmt.Sprint(c)}) {
			t.Errorf("a refused PATCH or PUT changed the group: %s", g.Raw)
		}

		// PUT replaces the members.
		put := okta.must(http.StatusOK, "PUT", fmt.Sprintf("/scim/v2/Groups/%d", gid), fmt.Sprintf(`{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering Team",
			"members": [{"value": "%d"}]}`, a))
		if got := memberValues(put); fmt.Sprint(got) != fmt.Sprint([]string{fmt.Sprint(a)}) {
			t.Errorf("after PUT: %s", put.Raw)
		}

		// Filters and paging.
		for _, tc := range []struct {
			filter string
			want   int
		}{
			{`displayName co "lead"`, 1},
			{`displayName sw "engineering"`, 1},
			{`externalId sw "okta-"`, 2},
			{`externalId eq "OKTA-2"`, 0},
			{`displayName sw "e" and externalId pr`, 0},
			{`displayName sw "s" or displayName sw "d"`, 2},
			{`not (displayName eq "SALES")`, 2},
			{`externalId ne "okta-2"`, 2},
			{`displayName ew "TEAM"`, 1},
			{fmt.Sprintf(`id eq "%d"`, gid), 1},
			{`externalId co "kta"`, 2},
			{`externalId co "KTA"`, 0},
		} {
			if n := total(t, okta.must(http.StatusOK, "GET", groups(tc.filter), "")); n != tc.want {
				t.Errorf("%s: %d groups, want %d", tc.filter, n, tc.want)
			}
		}
		wantError(t, okta.do("GET", groups(`members.value eq "1"`), ""), http.StatusBadRequest, "invalidFilter")
		page := okta.must(http.StatusOK, "GET", "/scim/v2/Groups?startIndex=2&count=1", "")
		if total(t, page) != 3 || len(page.Body["Resources"].([]any)) != 1 || page.Body["startIndex"] != float64(2) {
			t.Errorf("paging: %s", page.Raw)
		}
		if r := okta.must(http.StatusOK, "GET", "/scim/v2/Groups?startIndex=4", ""); len(r.Body["Resources"].([]any)) != 0 || total(t, r) != 3 {
			t.Errorf("past the end: %s", r.Raw)
		}

		// Other tokens cannot provision groups.
		_, plain, err := e.svc.CreateToken(context.Background(), e.admin, access.TokenInput{Name: "full", Scope: "full"})
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, e.client(plain).do("GET", "/scim/v2/Groups", ""), http.StatusForbidden, "")
	})
}
