package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

type tokenJSON struct {
	Token      string     `json:"token"` // only in the answer to POST
	ID         int64      `json:"id"`
	UserID     int64      `json:"user_id"`
	UserEmail  string     `json:"user_email"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

type tokenPage struct {
	Items []tokenJSON `json:"items"`
}

func (c *client) createToken(body map[string]any) tokenJSON {
	c.t.Helper()
	var tok tokenJSON
	c.ok(http.StatusCreated, "POST", "/api/v1/tokens", body, &tok)
	return tok
}

func (c *client) tokens() []tokenJSON {
	c.t.Helper()
	var p tokenPage
	c.ok(http.StatusOK, "GET", "/api/v1/tokens", nil, &p)
	return p.Items
}

func TestTokensForEveryone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		mgr := e.admin.createUser("mia@acme.test")
		sub := e.admin.createSubscription("A-100", "draftpro", 3, mgr.ID)
		boss := e.admin.createUser("bo@acme.test")
		other := e.admin.createSubscription("A-200", "draftpro", 3, boss.ID)
		mgrFull := e.tokenFor(e.adminU.AccountID, mgr.ID, usher.ScopeFull)

		var read tokenJSON
		t.Run("AContractManagerMakesAReadTokenAndUsesItOnTheirSubscription", func(t *testing.T) {
			read = mgrFull.createToken(map[string]any{"name": "reporting", "scope": "read", "expires_in_days": 90})
			if read.Token == "" || read.Scope != "read" || read.UserID != mgr.ID || read.ExpiresAt == nil ||
				!read.ExpiresAt.Equal(testNow.AddDate(0, 0, 90)) || read.LastUsedAt != nil {
				t.Fatalf("got %+v, want a read token of user %d expiring in 90 days, never used", read, mgr.ID)
			}
			c := e.client(read.Token)
			if got := c.subscription(sub.ID); got.ContractNumber != "A-100" {
				t.Fatalf("got %+v", got)
			}
			c.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/subscriptions/"+itoa(other.ID), nil)
		})
		t.Run("AReadTokenOnlyGETs", func(t *testing.T) {
			c := e.client(read.Token)
			u := e.admin.createUser("ulf@acme.test")
			c.fail(http.StatusForbidden, usher.EFORBIDDEN, "PUT", "/api/v1/users/"+itoa(u.ID)+"/access", map[string]any{"subscriptions": []any{}})
			c.fail(http.StatusForbidden, usher.EFORBIDDEN, "POST", "/api/v1/tokens", map[string]any{"name": "more"})
			c.fail(http.StatusForbidden, usher.EFORBIDDEN, "DELETE", "/api/v1/tokens/"+itoa(read.ID), nil)
			if a := e.admin.access(u.ID); len(a.Subscriptions) != 2 {
				t.Fatalf("access: got %+v", a)
			}
		})
		t.Run("LastUseIsRecorded", func(t *testing.T) {
			for _, tok := range mgrFull.tokens() {
				if tok.ID == read.ID && (tok.LastUsedAt == nil || !tok.LastUsedAt.Equal(testNow)) {
					t.Fatalf("last used: got %v, want %v", tok.LastUsedAt, testNow)
				}
				if tok.Token != "" {
					t.Fatalf("a list shows a secret: %+v", tok)
				}
			}
		})
		t.Run("OnlyAdminsHoldIngestAndSCIMTokens", func(t *testing.T) {
			mgrFull.fail(http.StatusForbidden, usher.EFORBIDDEN, "POST", "/api/v1/tokens", map[string]any{"name": "x", "scope": "ingest"})
			mgrFull.fail(http.StatusForbidden, usher.EFORBIDDEN, "POST", "/api/v1/tokens", map[string]any{"name": "x", "scope": "scim"})
		})
		t.Run("ASCIMTokenIsRefusedByTheAPI", func(t *testing.T) {
			scim := e.admin.createToken(map[string]any{"name": "idp", "scope": "scim"})
			c := e.client(scim.Token)
			c.fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", "/api/v1/me", nil)
			c.fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", "/api/v1/users", nil)
			c.fail(http.StatusForbidden, usher.EFORBIDDEN, "POST", "/api/v1/users", map[string]any{"email": "x@acme.test"})
		})
		t.Run("BadInputNamesTheField", func(t *testing.T) {
			mgrFull.fail(http.StatusUnprocessableEntity, usher.EINVALID, "POST", "/api/v1/tokens", map[string]any{"name": "", "scope": "root"}, "name", "scope")
			mgrFull.fail(http.StatusUnprocessableEntity, usher.EINVALID, "POST", "/api/v1/tokens",
				map[string]any{"name": "x", "expires_in_days": 3, "expires_at": "2027-01-01T00:00:00Z"}, "expires_in_days")
			mgrFull.fail(http.StatusUnprocessableEntity, usher.EINVALID, "POST", "/api/v1/tokens", map[string]any{"name": "x", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at")
			mgrFull.fail(http.StatusUnprocessableEntity, usher.EINVALID, "POST", "/api/v1/tokens", map[string]any{"name": "x", "expires_in_days": 0}, "expires_in_days")
		})
		t.Run("AUserSeesOnlyTheirOwnAndAPrimaryAdminSeesAllWithOwner", func(t *testing.T) {
			for _, tok := range mgrFull.tokens() {
				if tok.UserID != mgr.ID {
					t.Fatalf("manager sees token %+v of another user", tok)
				}
			}
			owners := map[int64]string{}
			for _, tok := range e.admin.tokens() {
				owners[tok.UserID] = tok.UserEmail
			}
			if owners[mgr.ID] != "mia@acme.test" || owners[e.adminU.ID] != "admin@acme.test" {
				t.Fatalf("admin sees owners %v, want the manager's and their own", owners)
			}
		})
		t.Run("OthersTokensAreNotFoundAndAPrimaryAdminRevokesAny", func(t *testing.T) {
			mine := e.admin.createToken(map[string]any{"name": "admin's"})
			mgrFull.fail(http.StatusNotFound, usher.ENOTFOUND, "DELETE", "/api/v1/tokens/"+itoa(mine.ID), nil)
			e.client(mine.Token).ok(http.StatusOK, "GET", "/api/v1/me", nil, nil)

			e.admin.ok(http.StatusNoContent, "DELETE", "/api/v1/tokens/"+itoa(read.ID), nil, nil)
			e.client(read.Token).fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", "/api/v1/me", nil)
			e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "DELETE", "/api/v1/tokens/"+itoa(read.ID), nil)

			var log auditPage
			e.admin.ok(http.StatusOK, "GET", "/api/v1/audit-log?action=token.revoke", nil, &log)
			if len(log.Items) != 1 || log.Items[0].TargetUserID != mgr.ID || log.Items[0].ActorID != e.adminU.ID {
				t.Fatalf("audit: got %+v, want the admin revoking the manager's token", log.Items)
			}
			e.admin.ok(http.StatusOK, "GET", "/api/v1/audit-log?action=token.create", nil, &log)
			if len(log.Items) < 3 {
				t.Fatalf("audit: got %d token.create entries, want at least 3", len(log.Items))
			}
		})
		t.Run("OwnTokenRevokedStopsAtOnce", func(t *testing.T) {
			tok := mgrFull.createToken(map[string]any{"name": "short-lived"})
			c := e.client(tok.Token)
			c.ok(http.StatusOK, "GET", "/api/v1/subscriptions/"+itoa(sub.ID), nil, nil)
			mgrFull.ok(http.StatusNoContent, "DELETE", "/api/v1/tokens/"+itoa(tok.ID), nil, nil)
			c.fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", "/api/v1/subscriptions/"+itoa(sub.ID), nil)
		})
		t.Run("AnExpiredTokenIs401", func(t *testing.T) {
			// A token made two days ago that lived one day.
			earlier := access.New(db.Access(), func() time.Time { return testNow.Add(-48 * time.Hour) })
			a, err := earlier.ActorFor(context.Background(), e.adminU.AccountID, mgr.ID)
			if err != nil {
				t.Fatal(err)
			}
			days := 1
			_, plain, err := earlier.CreateToken(context.Background(), a, access.TokenInput{Name: "old", ExpiresInDays: &days})
			if err != nil {
				t.Fatal(err)
			}
			p := e.client(plain).fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", "/api/v1/me", nil)
			if p.Detail != "the token has expired" {
				t.Fatalf("detail: got %q", p.Detail)
			}
		})
		t.Run("DisablingEndsTokensAndReEnablingDoesNotReviveThem", func(t *testing.T) {
			c := e.tokenFor(e.adminU.AccountID, mgr.ID, usher.ScopeFull)
			c.ok(http.StatusOK, "GET", "/api/v1/me", nil, nil)
			e.admin.ok(http.StatusOK, "PATCH", "/api/v1/users/"+itoa(mgr.ID), map[string]any{"status": "disabled"}, nil)
			c.fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", "/api/v1/me", nil)
			e.admin.ok(http.StatusOK, "PATCH", "/api/v1/users/"+itoa(mgr.ID), map[string]any{"status": "active"}, nil)
			c.fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", "/api/v1/me", nil)
			mgrFull.fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", "/api/v1/me", nil)
			for _, tok := range e.admin.tokens() {
				if tok.UserID == mgr.ID {
					t.Fatalf("token %+v of a user who was disabled is still listed", tok)
				}
			}
		})
		t.Run("DeletingEndsTokens", func(t *testing.T) {
			u := e.admin.createUser("dora@acme.test")
			c := e.tokenFor(e.adminU.AccountID, u.ID, usher.ScopeFull)
			c.ok(http.StatusOK, "GET", "/api/v1/me", nil, nil)
			e.admin.ok(http.StatusNoContent, "DELETE", "/api/v1/users/"+itoa(u.ID), nil, nil)
			c.fail(http.StatusUnauthorized, usher.EUNAUTHORIZED, "GET", "/api/v1/me", nil)
		})
	})
}
