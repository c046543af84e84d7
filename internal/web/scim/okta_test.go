package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// The requests below follow Okta's SCIM 2.0 reference ("Okta and SCIM
// Version 2.0"): the userName query with startIndex and count, the create
// (with a password Usher ignores), PUT of the whole user, and deactivation
// and reactivation by PATCH with a value object and no path.

const oktaCreate = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
	"userName": "test.user@okta.local",
	"name": {"givenName": "Test", "familyName": "User"},
	"emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
	"displayName": "Test User",
	"locale": "en-US",
	"externalId": "00ujl29u0le5T6Aj10h7",
	"groups": [],
	"password": "1mz050nq",
	"active": true
}`

func TestOktaUserLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		okta := e.scimToken(e.admin, "Okta")

		q := filter(`userName eq "test.user@okta.local"`) + "&startIndex=1&count=100"
		if n := total(t, okta.must(http.StatusOK, "GET", q, "")); n != 0 {
			t.Fatalf("found %d before the create", n)
		}
		created := okta.must(http.StatusCreated, "POST", "/scim/v2/Users", oktaCreate)
		uid := id(t, created)
		if _, leaked := created.Body["password"]; leaked {
			t.Error("the password is kept and returned")
		}
		if created.Body["locale"] != "en-US" || created.Body["displayName"] != "Test User" {
			t.Errorf("created: %s", created.Raw)
		}
		list := okta.must(http.StatusOK, "GET", q, "")
		if total(t, list) != 1 || list.Body["startIndex"] != float64(1) || list.Body["itemsPerPage"] != float64(1) {
			t.Fatalf("list: %s", list.Raw)
		}
		okta.must(http.StatusOK, "GET", fmt.Sprintf("/scim/v2/Users/%d", uid), "")

		// Creating the same userName again is a uniqueness conflict.
		wantError(t, okta.do("POST", "/scim/v2/Users", oktaCreate), http.StatusConflict, "uniqueness")

		sub := e.subscription("C-1", 1)
		if err := e.svc.Assign(ctx, e.admin, uid, sub.ID, nil); err != nil {
			t.Fatal(err)
		}

		// PUT of the whole user, with a new family name and title.
		put := okta.must(http.StatusOK, "PUT", fmt.Sprintf("/scim/v2/Users/%d", uid), `{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
			"id": "`+fmt.Sprint(uid)+`",
			"userName": "test.user@okta.local",
			"name": {"givenName": "Test", "familyName": "Userton"},
			"emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
			"displayName": "Test Userton",
			"title": "Engineer",
			"externalId": "00ujl29u0le5T6Aj10h7",
			"active": true
		}`)
		if put.Body["title"] != "Engineer" || put.Body["displayName"] != "Test Userton" {
			t.Errorf("after PUT: %s", put.Raw)
		}
		if _, kept := put.Body["locale"]; kept {
			t.Error("PUT replaces the whole user, yet locale stayed")
		}
		if u, _ := e.svc.User(ctx, e.admin, uid); u.Name != "Test Userton" {
			t.Errorf("name after PUT: %q", u.Name)
		}
		if e.seatsUsed(sub.ID) != 1 {
			t.Error("a PUT that keeps the user active freed their seat")
		}

		deact := okta.must(http.StatusOK, "PATCH", fmt.Sprintf("/scim/v2/Users/%d", uid), `{
			"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations": [{"op": "replace", "value": {"active": false}}]}`)
		if deact.Body["active"] != false || e.seatsUsed(sub.ID) != 0 {
			t.Errorf("deactivation: active %v, seats used %d", deact.Body["active"], e.seatsUsed(sub.ID))
		}
		if n := len(e.audit(uid, "user.deprovision")); n != 1 {
			t.Errorf("%d user.deprovision entries", n)
		}

		react := okta.must(http.StatusOK, "PATCH", fmt.Sprintf("/scim/v2/Users/%d", uid), `{
			"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations": [{"op": "replace", "value": {"active": true}}]}`)
		if react.Body["active"] != true {
			t.Errorf("reactivation: %s", react.Raw)
		}
		if u, _ := e.svc.User(ctx, e.admin, uid); u.Status != usher.UserActive {
			t.Errorf("status after reactivation %q", u.Status)
		}
		if e.seatsUsed(sub.ID) != 0 {
			t.Error("reactivation gave a seat back; seats are the admins' to give")
		}
	})
}
