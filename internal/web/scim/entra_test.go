package scim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// The requests below follow Microsoft's published examples of what the
// Entra ID provisioning service sends ("Develop and plan provisioning for a
// SCIM endpoint"): the user-matching query, the create, multi- and
// single-valued updates, disabling with "Replace" and the string "False",
// and the delete.

const entraCreate = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
	"userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
	"active": true,
	"emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
	"meta": {"resourceType": "User"},
	"name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
	"roles": []
}`

func TestEntraIDUserLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		entra := e.scimToken(e.admin, "Entra ID")

		// The connection test and the matching query find nobody.
		cfg := entra.must(http.StatusOK, "GET", "/scim/v2/ServiceProviderConfig", "")
		if patch, _ := cfg.Body["patch"].(map[string]any); patch["supported"] != true {
			t.Errorf("ServiceProviderConfig says patch is not supported: %s", cfg.Raw)
		}
		none := entra.must(http.StatusOK, "GET", filter(`userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"`), "")
		if n := total(t, none); n != 0 {
			t.Fatalf("matching query found %d users before the create", n)
		}
		if res, _ := none.Body["Resources"].([]any); res == nil {
			t.Errorf("Resources should be an empty list, not absent: %s", none.Raw)
		}

		created := entra.must(http.StatusCreated, "POST", "/scim/v2/Users", entraCreate)
		uid := id(t, created)
		if loc := created.Header.Get("Location"); loc != e.srv.URL+fmt.Sprintf("/scim/v2/Users/%d", uid) {
			t.Errorf("Location %q", loc)
		}
		if created.Body["userName"] != "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1" || created.Body["active"] != true ||
			created.Body["externalId"] != "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" {
			t.Errorf("created user: %s", created.Raw)
		}
		u, err := e.svc.User(ctx, e.admin, uid)
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "test_user_fd0ea19b@testuser.com" || u.Name != "givenName familyName" || u.Status != usher.UserActive {
			t.Errorf("stored user %+v", u.User)
		}

		found := entra.must(http.StatusOK, "GET", filter(`userName eq "test_user_AB6490EE-1e48-479e-a20b-2d77186b5dd1"`), "")
		if total(t, found) != 1 || str(found.Body["Resources"].([]any)[0].(map[string]any)["id"]) != fmt.Sprint(uid) {
			t.Fatalf("userName is compared without case: %s", found.Raw)
		}

		// The admin gives the new person two seats and a benefit.
		subA, subB := e.subscription("C-A", 5), e.subscription("C-B", 5)
		if err := e.svc.Assign(ctx, e.admin, uid, subA.ID, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.SetAccess(ctx, e.admin, uid, []access.AccessChange{
			{SubscriptionID: subA.ID, Assigned: true}, {SubscriptionID: subB.ID, Assigned: true, Benefits: []string{"web_support"}},
		}); err != nil {
			t.Fatal(err)
		}

		// Update User [Multi-valued properties].
		multi := entra.must(http.StatusOK, "PATCH", fmt.Sprintf("/scim/v2/Users/%d", uid), `{
			"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations": [
				{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
				{"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
			]}`)
		if name, _ := multi.Body["name"].(map[string]any); name["familyName"] != "updatedFamilyName" || name["givenName"] != "givenName" {
			t.Errorf("name after PATCH: %v", multi.Body["name"])
		}
		if u, _ := e.svc.User(ctx, e.admin, uid); u.Email != "updatedemail@microsoft.com" {
			t.Errorf("email after PATCH of emails[type eq \"work\"].value: %q", u.Email)
		}

		// Update User [Single-valued properties], and the enterprise extension.
		single := entra.must(http.StatusOK, "PATCH", fmt.Sprintf("/scim/v2/Users/%d", uid), `{
			"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations": [
				{"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"},
				{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Design"},
				{"op": "Add", "path": "displayName", "value": "Grace Given"}
			]}`)
		if single.Body["userName"] != "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com" || single.Body["displayName"] != "Grace Given" {
			t.Errorf("after single-valued PATCH: %s", single.Raw)
		}
		ext, _ := single.Body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
		if ext["department"] != "Design" {
			t.Errorf("enterprise extension: %s", single.Raw)
		}
		if fmt.Sprint(single.Body["schemas"]) != "[urn:ietf:params:scim:schemas:core:2.0:User urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]" {
			t.Errorf("schemas %v", single.Body["schemas"])
		}
		got := entra.must(http.StatusOK, "GET", fmt.Sprintf("/scim/v2/Users/%d", uid), "")
		if got.Body["userName"] != single.Body["userName"] || got.Body["displayName"] != "Grace Given" {
			t.Errorf("GET after PATCH: %s", got.Raw)
		}

		// The person has a console session and an API token of their own.
		if err := e.auth.SetPassword(ctx, e.admin.AccountID, uid, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		session, _, err := e.auth.SignIn(ctx, "updatedemail@microsoft.com", "correct horse battery", "test")
		if err != nil {
			t.Fatal(err)
		}
		self, err := e.svc.ActorFor(ctx, e.admin.AccountID, uid)
		if err != nil {
			t.Fatal(err)
		}
		_, ownToken, err := e.svc.CreateToken(ctx, self, access.TokenInput{Name: "laptop", Scope: usher.ScopeFull})
		if err != nil {
			t.Fatal(err)
		}

		// Disable User, as Entra ID sends it without the aadOptscim062020 flag.
		disabled := entra.must(http.StatusOK, "PATCH", fmt.Sprintf("/scim/v2/Users/%d", uid), `{
			"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}`)
		if disabled.Body["active"] != false {
			t.Errorf("active after disable: %v", disabled.Body["active"])
		}
		if used := e.seatsUsed(subA.ID) + e.seatsUsed(subB.ID); used != 0 {
			t.Errorf("%d seats still used after deprovisioning", used)
		}
		acc, err := e.svc.Access(ctx, e.admin, uid)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range acc.Subscriptions {
			if s.Assigned || len(s.Benefits) > 0 {
				t.Errorf("after deprovisioning still holds %+v", s)
			}
		}
		if _, err := e.auth.Session(ctx, session); err == nil {
			t.Error("the console session survived deprovisioning")
		}
		if _, err := e.svc.Authenticate(ctx, ownToken); usher.ErrorCode(err) != usher.EUNAUTHORIZED {
			t.Errorf("the user's own token: %v, want unauthorized", err)
		}
		var tokens int
		if err := db.SQL().QueryRowContext(ctx, rebind(db, "SELECT COUNT(*) FROM api_tokens WHERE user_id = ?"), uid).Scan(&tokens); err != nil || tokens != 0 {
			t.Errorf("%d tokens left (%v)", tokens, err)
		}
		for _, want := range []struct {
			action string
			n      int
		}{{"seat.unassign", 2}, {"benefits.set", 1}, {"user.deprovision", 1}} {
			entries := e.audit(uid, want.action)
			if len(entries) < want.n {
				t.Errorf("%d %s entries, want %d", len(entries), want.action, want.n)
				continue
			}
			last := entries[len(entries)-want.n:]
			for _, en := range last {
				if en.ActorEmail != "scim:Entra ID" || en.ActorID != e.admin.UserID {
					t.Errorf("%s entry by %q (%d), want the provisioning client", want.action, en.ActorEmail, en.ActorID)
				}
			}
		}
		var freed struct {
			Seats []int64 `json:"seats_freed"`
		}
		dep := e.audit(uid, "user.deprovision")
		if err := json.Unmarshal(dep[0].After, &freed); err != nil || fmt.Sprint(freed.Seats) != fmt.Sprint([]int64{subA.ID, subB.ID}) {
			t.Errorf("deprovision entry %s (%v)", dep[0].After, err)
		}

		// Delete User: gone for SCIM, kept (disabled) in Usher.
		if r := entra.do("DELETE", fmt.Sprintf("/scim/v2/Users/%d", uid), ""); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", r.Status, r.Raw)
		}
		wantError(t, entra.do("GET", fmt.Sprintf("/scim/v2/Users/%d", uid), ""), http.StatusNotFound, "")
		if n := total(t, entra.must(http.StatusOK, "GET", filter(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`), "")); n != 0 {
			t.Errorf("a deleted user is still listed (%d)", n)
		}
		if u, err := e.svc.User(ctx, e.admin, uid); err != nil || u.Status != usher.UserDisabled {
			t.Errorf("after DELETE the user is %+v (%v), want kept and disabled", u.User, err)
		}
		if len(e.audit(uid, "user.scim_delete")) != 1 {
			t.Error("no user.scim_delete entry")
		}

		// Provisioned again later: the same person comes back, active.
		body := strings.NewReplacer("Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1", "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com",
			"Test_User_fd0ea19b@testuser.com", "updatedEmail@microsoft.com").Replace(entraCreate)
		again := entra.must(http.StatusCreated, "POST", "/scim/v2/Users", body)
		if id(t, again) != uid || again.Body["active"] != true {
			t.Errorf("re-created user: %s", again.Raw)
		}
	})
}

// rebind turns ? into $n on PostgreSQL, for the few raw queries of tests.
func rebind(db *store.DB, q string) string {
	if db.Engine() != store.Postgres {
		return q
	}
	n := 0
	out := []byte{}
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = append(out, fmt.Sprintf("$%d", n)...)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}
