package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// The GET of the usage report authenticates in the report's first read: it
// must refuse, and answer, exactly as the routes behind bearer do, and a
// revoked token, a disabled user or a role taken away must count from the
// very next request.
func TestReportReadAuthenticatesAsEveryRoute(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ue := newUsageEnv(t, db, 0)
		e := ue.env
		u := ue.seat("una@acme.test", ue.std)
		other := e.admin.createUser("otto@acme.test")
		const path = "/api/v1/reports/usage"

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
			if got := r.Header.Get("Vary"); got != "" {
				t.Fatalf("Vary on a refused token: got %q, want none", got)
			}
			// The token is refused before the filter is looked at.
			e.client("ush_not-a-token").fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", path+"?range=2y&limit=x", nil)
			e.tokenFor(e.adminU.AccountID, e.adminU.ID, usher.ScopeSCIM).fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", path, nil)
		})
		t.Run("WhoSeesWhat", func(t *testing.T) {
			var rep struct {
				Rows []struct {
					Email string `json:"email"`
				} `json:"rows"`
				Totals struct {
					Seats int `json:"seats"`
				} `json:"totals"`
			}
			r := e.admin.ok(http.StatusOK, "GET", path, nil, &rep)
			if r.Header.Get("Vary") != "Accept" || len(rep.Rows) != 3 || rep.Rows[2].Email != "una@acme.test" || rep.Totals.Seats != 3 {
				t.Fatalf("admin: got Vary %q, %+v", r.Header.Get("Vary"), rep)
			}
			e.admin.fail(http.StatusUnprocessableEntity, usher.EINVALID, "GET", path+"?range=2y&limit=x", nil, "limit", "range")
			e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", path+"?subscription=999999", nil, "subscription")
			e.tokenFor(e.adminU.AccountID, e.adminU.ID, usher.ScopeRead).ok(http.StatusOK, "GET", path, nil, nil)
			e.tokenFor(e.adminU.AccountID, u.ID, usher.ScopeFull).fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", path, nil)
			// The CSV export, which this read does not serve, answers the same way.
			if r := e.admin.do("GET", path, nil, "Accept", "text/csv"); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "una@acme.test") {
				t.Fatalf("CSV: got %d %s", r.Status, r.Body)
			}
		})
		t.Run("ChangesCountFromTheNextRequest", func(t *testing.T) {
			changesCountFromTheNextRequest(t, e, path, other.ID, http.StatusForbidden)
		})
	})
}
