package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// The GET of a user's access authenticates in the read of the view: it
// must refuse, and answer, exactly as the routes behind bearer do, and a
// revoked token, a disabled user or a role taken away must count from the
// very next request.
func TestAccessReadAuthenticatesAsEveryRoute(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		u := e.admin.createUser("una@acme.test")
		other := e.admin.createUser("otto@acme.test")
		sub := e.admin.createSubscription("C-9", "modelstudio", 4, e.adminU.ID)
		e.admin.ok(http.StatusOK, "PUT", "/api/v1/users/"+itoa(u.ID)+"/access", map[string]any{"subscriptions": []map[string]any{
			{"subscription_id": sub.ID, "assigned": true},
		}}, nil)
		path := "/api/v1/users/" + itoa(u.ID) + "/access"

		t.Run("RefusedTokens", func(t *testing.T) {
			r := e.client("").do("GET", path, nil)
			r.problem(t, http.StatusUnauthorized, usher.EUNAUTHORIZED)
			if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Fatalf("WWW-Authenticate: got %q", got)
			}
			r = e.client("ush_not-a-token").do("GET", path, nil)
			r.problem(t, http.StatusUnauthorized, usher.EUNAUTHORIZED)
			if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate: got %q", got)
			}
			// The token is refused before the id is looked at.
			e.client("ush_not-a-token").fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", "/api/v1/users/x/access", nil)
			e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/users/x/access", nil)
			e.tokenFor(e.adminU.AccountID, e.adminU.ID, usher.ScopeSCIM).fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", path, nil)
		})
		t.Run("WhoSeesWhat", func(t *testing.T) {
			var ua accessJSONForTest
			r := e.admin.ok(http.StatusOK, "GET", path, nil, &ua)
			if r.Header.Get("ETag") == "" || len(ua.Subscriptions) != 1 || !ua.Subscriptions[0].Assigned {
				t.Fatalf("admin: got %s %+v", r.Header.Get("ETag"), ua)
			}
			own := e.tokenFor(e.adminU.AccountID, u.ID, usher.ScopeFull)
			own.ok(http.StatusOK, "GET", path, nil, nil)
			own.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/users/"+itoa(other.ID)+"/access", nil)
			own.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/users/999999999/access", nil)
			e.tokenFor(e.adminU.AccountID, e.adminU.ID, usher.ScopeIngest).fail(http.StatusNotFound, usher.ENOTFOUND, "GET", path, nil)
			e.tokenFor(e.adminU.AccountID, u.ID, usher.ScopeRead).ok(http.StatusOK, "GET", path, nil, nil)
		})
		t.Run("ChangesCountFromTheNextRequest", func(t *testing.T) {
			changesCountFromTheNextRequest(t, e, path, other.ID, http.StatusNotFound)
		})
	})
}

// changesCountFromTheNextRequest checks that a route which authenticates in
// its own read sees each change from the very next request: a role given
// and taken away (refused with the status refused, 403 or 404, as the
// route's bearer twin refuses it), the user disabled, their token revoked.
// The user userID of the account of e.admin starts without a role.
func changesCountFromTheNextRequest(t *testing.T, e *env, path string, userID int64, refused int) {
	t.Helper()
	code := map[int]string{http.StatusForbidden: usher.EFORBIDDEN, http.StatusNotFound: usher.ENOTFOUND}[refused]
	if code == "" {
		t.Fatalf("refused status %d: want 403 or 404", refused)
	}
	c := e.tokenFor(e.adminU.AccountID, userID, usher.ScopeFull)
	c.fail(refused, code, "GET", path, nil)
	roles := "/api/v1/users/" + itoa(userID) + "/roles"
	e.admin.ok(http.StatusCreated, "POST", roles, map[string]any{"role": "secondary_admin"}, nil)
	c.ok(http.StatusOK, "GET", path, nil, nil)
	if r := e.admin.do("DELETE", roles+"?role=secondary_admin", nil); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: got %d %s", r.Status, r.Body)
	}
	c.fail(refused, code, "GET", path, nil)

	e.admin.ok(http.StatusCreated, "POST", roles, map[string]any{"role": "secondary_admin"}, nil)
	c.ok(http.StatusOK, "GET", path, nil, nil)
	e.admin.ok(http.StatusOK, "PATCH", "/api/v1/users/"+itoa(userID), map[string]any{"status": "disabled"}, nil)
	c.fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", path, nil)

	tok := e.admin.createToken(map[string]any{"name": "soon revoked"})
	t2 := e.client(tok.Token)
	t2.ok(http.StatusOK, "GET", path, nil, nil)
	e.admin.ok(http.StatusNoContent, "DELETE", "/api/v1/tokens/"+itoa(tok.ID), nil, nil)
	t2.fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", path, nil)
}

type accessJSONForTest struct {
	Subscriptions []struct {
		Assigned bool `json:"assigned"`
	} `json:"subscriptions"`
}
