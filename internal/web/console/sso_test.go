package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store"
)

// ssoClient speaks HTTP to an ssoSite without a browser and without
// following redirects, for what a browser hides: cookies and statuses.
type ssoClient struct {
	t    *testing.T
	http *http.Client
}

func newSSOClient(t *testing.T) *ssoClient {
	jar, _ := cookiejar.New(nil)
	return &ssoClient{t: t, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *ssoClient) get(u string) answer {
	c.t.Helper()
	resp, err := c.http.Get(u)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func TestSingleSignOnOverHTTP(t *testing.T) {
	s := newSSOSite(t, store.SQLite)

	t.Run("the start sends the browser to the provider with PKCE and a bound state", func(t *testing.T) {
		c := newSSOClient(t)
		a := c.get(s.url + "/signin/oidc?account=" + itoa(s.acct.ID) + "&next=%2Faudit-log")
		if a.status != http.StatusSeeOther {
			t.Fatalf("status %d, want 303: %s", a.status, a.body)
		}
		loc, err := url.Parse(a.header.Get("Location"))
		if err != nil || !strings.HasPrefix(loc.String(), s.idp.Issuer+"/authorize?") {
			t.Fatalf("Location %s, want the provider's authorization endpoint", loc)
		}
		q := loc.Query()
		for _, k := range []string{"state", "nonce", "code_challenge"} {
			if len(q.Get(k)) < 43 {
				t.Errorf("%s %q: want 256 random bits", k, q.Get(k))
			}
		}
		if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "usher-console" ||
			q.Get("redirect_uri") != s.url+"/signin/oidc/callback" || !strings.Contains(q.Get("scope"), "openid") {
			t.Errorf("authorization request %v", q)
		}
		c2 := a.header.Get("Set-Cookie")
		for _, want := range []string{"usher_sso_state=" + q.Get("state"), "Path=/signin/oidc", "HttpOnly", "SameSite=Lax", "Max-Age=600"} {
			if !strings.Contains(c2, want) {
				t.Errorf("Set-Cookie %q lacks %q", c2, want)
			}
		}

		t.Run("the provider's refusal is shown", func(t *testing.T) {
			a := c.get(s.url + "/signin/oidc/callback?state=" + url.QueryEscape(q.Get("state")) + "&error=access_denied&error_description=The+user+cancelled")
			if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "Test IdP refused the sign-in (access_denied: The user cancelled)") {
				t.Errorf("status %d, body %s", a.status, a.body)
			}
		})
	})
	t.Run("a callback in a browser without the state cookie is refused", func(t *testing.T) {
		c := newSSOClient(t)
		a := c.get(s.url + "/signin/oidc?account=" + itoa(s.acct.ID))
		loc, _ := url.Parse(a.header.Get("Location"))
		other := newSSOClient(t) // another browser: no cookie
		a = other.get(s.url + "/signin/oidc/callback?code=x&state=" + url.QueryEscape(loc.Query().Get("state")))
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "started in another browser") {
			t.Errorf("status %d, body %s", a.status, a.body)
		}
	})
	t.Run("an account without single sign-on offers none", func(t *testing.T) {
		a := newSSOClient(t).get(s.url + "/signin?account=999")
		if a.status != http.StatusOK || strings.Contains(a.body, `id="sso-signin"`) || !strings.Contains(a.body, `id="sso-email"`) {
			t.Errorf("status %d, body %s", a.status, a.body)
		}
		a = newSSOClient(t).get(s.url + "/signin/oidc?account=999")
		if a.status != http.StatusNotFound || !strings.Contains(a.body, "Single sign-on is not set up") {
			t.Errorf("start for account 999: status %d, body %s", a.status, a.body)
		}
	})
	t.Run("an email of no single sign-on account says so", func(t *testing.T) {
		a := newSSOClient(t).get(s.url + "/signin/sso?email=someone%40elsewhere.test")
		if a.status != http.StatusNotFound || !strings.Contains(a.body, "not set up for someone@elsewhere.test") {
			t.Errorf("status %d, body %s", a.status, a.body)
		}
	})
	t.Run("a plain user may not open the settings", func(t *testing.T) {
		c := newSSOClient(t)
		resp, err := c.http.PostForm(s.url+"/signin", url.Values{"email": {"ben@acme.test"}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("Ben's password sign-in: %d", resp.StatusCode)
		}
		if a := c.get(s.url + "/settings/sso"); a.status != http.StatusForbidden {
			t.Errorf("settings page for Ben: %d, want 403", a.status)
		}
	})
}
