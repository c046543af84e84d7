package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

// newSSOEnv is newEnv with single sign-on offered.
func newSSOEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	e := &env{t: t, svc: access.New(db.Access(), func() time.Time { return testNow })}
	h := web.NewHandler(web.Config{
		Access: e.svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SSO: sso.New(db.SSO(), sso.Config{BaseURL: "https://usher.acme.test", Now: func() time.Time { return testNow }}),
	})
	e.srv = newTestServer(t, h) // checks every exchange against docs/openapi.yaml
	e.admin, e.adminU = e.account("Acme", "admin@acme.test")
	return e
}

type ssoAnswer struct {
	ProviderName   string   `json:"provider_name"`
	Issuer         string   `json:"issuer"`
	ClientID       string   `json:"client_id"`
	ClientSecret   string   `json:"client_secret"`
	AllowedDomains []string `json:"allowed_domains"`
	CreateUsers    bool     `json:"create_users"`
	RequireSSO     bool     `json:"require_sso"`
	RedirectURL    string   `json:"redirect_url"`
	SignInURL      string   `json:"sign_in_url"`
	Change         string   `json:"change"`
	Message        string   `json:"message"`
}

func TestSSOEndpoints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newSSOEnv(t, db)
		e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/sso", nil)

		body := map[string]any{"provider_name": "Okta", "issuer": "https://acme.okta.com", "client_id": "0oa1",
			"client_secret": "very-secret", "allowed_domains": []string{"acme.test"}, "require_sso": true}
		var got ssoAnswer
		r := e.admin.ok(http.StatusOK, "PUT", "/api/v1/sso", body, &got)
		if strings.Contains(string(r.Body), "very-secret") {
			t.Fatalf("PUT answered the secret: %s", r.Body)
		}
		if got.Change != "turned_on" || got.ClientSecret != "set" || !got.RequireSSO || got.ClientID != "0oa1" ||
			got.RedirectURL != "https://usher.acme.test/signin/oidc/callback" || !strings.HasSuffix(got.SignInURL, "/signin?account=1") {
			t.Errorf("PUT answered %+v", got)
		}

		// An edit without the secret keeps it; GET never shows it.
		delete(body, "client_secret")
		body["provider_name"] = "Okta Workforce"
		e.admin.ok(http.StatusOK, "PUT", "/api/v1/sso", body, &got)
		if got.Change != "edited" {
			t.Errorf("second PUT: change %q, want edited", got.Change)
		}
		r = e.admin.ok(http.StatusOK, "GET", "/api/v1/sso", nil, &got)
		if strings.Contains(string(r.Body), "very-secret") || got.ProviderName != "Okta Workforce" || got.ClientSecret != "set" {
			t.Errorf("GET answered %s", r.Body)
		}
		st, err := sso.New(db.SSO(), sso.Config{}).Settings(context.Background(), usher.System(e.adminU.AccountID))
		if err != nil || st.ClientSecret != "very-secret" {
			t.Errorf("stored secret %q (%v), want it kept", st.ClientSecret, err)
		}

		e.admin.fail(http.StatusUnprocessableEntity, usher.EINVALID, "PUT", "/api/v1/sso",
			map[string]any{"issuer": "ftp://x", "allowed_domains": []string{"-bad-"}},
			"provider_name", "issuer", "client_id", "allowed_domains")

		// A secondary admin may not touch it.
		email := "sam@acme.test"
		sam, err := e.svc.CreateUser(context.Background(), usher.System(e.adminU.AccountID), access.UserInput{Email: &email})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.GrantRole(context.Background(), usher.System(e.adminU.AccountID), usher.RoleGrant{UserID: sam.ID, Role: usher.RoleSecondaryAdmin}); err != nil {
			t.Fatal(err)
		}
		samc := e.tokenFor(e.adminU.AccountID, sam.ID, usher.ScopeFull)
		samc.fail(http.StatusForbidden, usher.EFORBIDDEN, "GET", "/api/v1/sso", nil)
		samc.fail(http.StatusForbidden, usher.EFORBIDDEN, "PUT", "/api/v1/sso", body)
		samc.fail(http.StatusForbidden, usher.EFORBIDDEN, "DELETE", "/api/v1/sso", nil)

		e.admin.ok(http.StatusOK, "DELETE", "/api/v1/sso", nil, &got)
		if got.Change != "turned_off" {
			t.Errorf("DELETE: change %q", got.Change)
		}
		e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/sso", nil)
		e.admin.fail(http.StatusNotFound, usher.ENOTFOUND, "DELETE", "/api/v1/sso", nil)

		var audit struct {
			Items []usher.AuditEntry `json:"items"`
		}
		e.admin.ok(http.StatusOK, "GET", "/api/v1/audit-log?limit=10", nil, &audit)
		var actions []string
		for _, a := range audit.Items {
			if strings.HasPrefix(a.Action, "sso.") {
				actions = append(actions, a.Action)
			}
		}
		if strings.Join(actions, ",") != "sso.off,sso.set,sso.set" {
			t.Errorf("audit actions %v, want sso.off, sso.set, sso.set (newest first)", actions)
		}
	})
}
