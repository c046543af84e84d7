package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/sso/ssotest"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/console"
)

// ssoSite is a running Usher with single sign-on through a real OpenID
// provider (ssotest, the zitadel/oidc OP) on another loopback port. The
// account has Ada (primary admin, with a password) and Ben (a plain user);
// the provider knows Ben, Ada and Nina, who is no user of the account.
type ssoSite struct {
	*site
	sso *sso.Service
	idp *ssotest.Provider

	mu        sync.Mutex
	callbacks []string // every callback URL the server was sent, in order
}

func newSSOSite(t *testing.T, engine string) *ssoSite {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, engine)
	s := &ssoSite{site: &site{t: t, access: access.New(db.Access(), nil), users: map[string]usher.User{}}}
	srv := httptest.NewUnstartedServer(nil)
	s.url = "http://" + srv.Listener.Addr().String()
	s.sso = sso.New(db.SSO(), sso.Config{BaseURL: s.url})
	s.auth = auth.New(db.Auth(), auth.Config{Params: auth.Params{Memory: 64, Time: 1, Threads: 1}, PasswordPolicy: s.sso.PasswordAllowed})

	var err error
	var ada usher.User
	s.acct, ada, _, err = s.access.CreateAccount(ctx, access.NewAccount{Name: "Acme Ltd", AdminEmail: "ada@acme.test", AdminName: "Ada Admin", TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	s.users["ada"] = ada
	email, name := "ben@acme.test", "Ben Baker"
	if s.users["ben"], err = s.access.CreateUser(ctx, usher.System(s.acct.ID), access.UserInput{Email: &email, Name: &name}); err != nil {
		t.Fatal(err)
	}
	for _, u := range s.users {
		if err := s.auth.SetPassword(ctx, s.acct.ID, u.ID, password); err != nil {
			t.Fatal(err)
		}
	}

	s.idp = ssotest.Start(t)
	s.idp.SetRedirectURI(s.sso.RedirectURL())
	for _, u := range []ssotest.User{
		{Username: "ben", Password: "pw-ben", Email: "ben@acme.test", EmailVerified: true, Name: "Ben Baker"},
		{Username: "ada", Password: "pw-ada", Email: "ada@acme.test", EmailVerified: true, Name: "Ada Admin"},
		{Username: "nina", Password: "pw-nina", Email: "nina@acme.test", EmailVerified: true, Name: "Nina New"},
	} {
		s.idp.AddUser(u)
	}
	adaActor, err := s.access.ActorFor(ctx, s.acct.ID, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.sso.Set(ctx, adaActor, sso.Input{ProviderName: "Test IdP", Issuer: s.idp.Issuer, ClientID: ssotest.ClientID,
		ClientSecret: ssotest.ClientSecret, AllowedDomains: []string{"acme.test"}}); err != nil {
		t.Fatal(err)
	}

	ui, err := console.New(console.Config{Access: s.access, Auth: s.auth, SSO: s.sso})
	if err != nil {
		t.Fatal(err)
	}
	h := web.NewHandler(web.Config{Access: s.access, Console: ui, SSO: s.sso, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == sso.CallbackPath {
			s.mu.Lock()
			s.callbacks = append(s.callbacks, r.URL.RequestURI())
			s.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

func (s *ssoSite) lastCallback() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.callbacks) == 0 {
		s.t.Fatal("the provider never sent the browser back")
	}
	return s.callbacks[len(s.callbacks)-1]
}

// atProvider signs in on the provider's own page, which the browser must
// be on, and waits for Usher's next page.
func (b *tab) atProvider(username string) {
	b.t.Helper()
	b.do(
		chromedp.WaitVisible(chromedp.CSS("#idp-username")),
		chromedp.SetValue(chromedp.CSS("#idp-username"), username),
		chromedp.SetValue(chromedp.CSS("#idp-password"), "pw-"+username),
		chromedp.Click(chromedp.CSS("#idp-submit")),
		// The provider's pages have no main element; Usher's all do.
		chromedp.WaitReady(chromedp.CSS("main h1")),
	)
}

// ssoSignIn starts from /signin?account=ID, the link admins hand out.
func (s *ssoSite) ssoSignIn(b *tab, username string) {
	s.t.Helper()
	b.open("/signin?account=" + itoa(s.acct.ID))
	b.wantText("#sso-signin", "Sign in with Test IdP")
	b.do(chromedp.Click(chromedp.CSS("#sso-signin")))
	b.atProvider(username)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// wantRefused checks that the browser is back on the sign-in page, not
// signed in, with an alert saying fragment.
func (b *tab) wantRefused(fragment string) {
	b.t.Helper()
	if loc := b.location(); !strings.Contains(loc, "/signin") {
		b.t.Errorf("landed on %s, want the sign-in page", loc)
	}
	b.wantText(".errors", fragment)
	if b.exists(".who") {
		b.t.Errorf("signed in as %s after a refused sign-in", b.text(".who"))
	}
}

// TestSingleSignOnInBrowser drives single sign-on end to end in Chromium:
// Usher's sign-in page, the provider's login page, back to the console
// signed in as the right user; then each way a sign-in must be refused.
func TestSingleSignOnInBrowser(t *testing.T) {
	s := newSSOSite(t, store.SQLite)
	browser := newBrowser(t)

	t.Run("by work email, signed in as Ben", func(t *testing.T) {
		b := s.window(t, browser)
		b.open("/signin")
		b.do(chromedp.SetValue(chromedp.CSS("#sso-email"), "ben@acme.test"))
		b.submit("#sso-continue")
		b.wantText("#sso-signin", "Sign in with Test IdP")
		b.do(chromedp.Click(chromedp.CSS("#sso-signin")))
		b.atProvider("ben")
		if got := b.text(".who"); got != "ben@acme.test" {
			t.Fatalf("signed in as %q, want ben@acme.test", got)
		}
		if loc := b.location(); !strings.HasPrefix(loc, s.url+"/users/") {
			t.Errorf("landed on %s, want Ben's own access", loc)
		}
		if hints := s.idp.LoginHints(); hints[len(hints)-1] != "ben@acme.test" {
			t.Errorf("login_hint %q, want the typed email", hints[len(hints)-1])
		}
		b.screenshot("console-sso-signed-in")

		// The sign-in page now offers the provider straight away.
		b.do(chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitReady(chromedp.CSS("main h1")))
		b.wantText("#sso-signin", "Sign in with Test IdP")

		t.Run("a replayed callback is refused", func(t *testing.T) {
			b.open(s.lastCallback())
			b.wantRefused("replayed")
		})
	})

	t.Run("the sign-in link of the account, returning to the page asked for", func(t *testing.T) {
		b := s.window(t, browser)
		b.do(chromedp.Navigate(s.url + "/audit-log"))
		b.do(chromedp.WaitReady(chromedp.CSS("main h1")))
		if loc := b.location(); !strings.Contains(loc, "/signin?next=") {
			t.Fatalf("landed on %s, want the sign-in page", loc)
		}
		// The account link keeps next.
		b.open("/signin?account=" + itoa(s.acct.ID) + "&next=%2Faudit-log")
		b.screenshot("console-sso-signin")
		b.do(chromedp.Click(chromedp.CSS("#sso-signin")))
		b.atProvider("ada")
		if got := b.text(".who"); got != "ada@acme.test" {
			t.Fatalf("signed in as %q, want ada@acme.test", got)
		}
		if loc := b.location(); loc != s.url+"/audit-log" {
			t.Errorf("landed on %s, want /audit-log", loc)
		}
	})

	for _, c := range []struct {
		name     string
		user     string
		misstep  func()
		restore  func()
		fragment string
	}{
		{"wrong audience", "ben", func() { s.idp.SetAudience("another-app") }, func() { s.idp.SetAudience("") }, "wrong audience"},
		{"expired ID token", "ben", func() { s.idp.SetIDTokenLifetime(-time.Hour) }, func() { s.idp.SetIDTokenLifetime(time.Hour) }, "has expired"},
		{"tampered ID token", "ben", func() { s.idp.TamperEmail("ada@acme.test") }, func() { s.idp.TamperEmail("") }, "failed its signature check"},
		{"a user who does not exist", "nina", func() {}, func() {}, "no Usher user nina@acme.test"},
	} {
		t.Run(c.name+" is refused", func(t *testing.T) {
			c.misstep()
			defer c.restore()
			b := s.window(t, browser)
			s.ssoSignIn(b, c.user)
			b.wantRefused(c.fragment)
			// The page offers to try again.
			b.wantText("#sso-signin", "Sign in with Test IdP")
		})
	}

	t.Run("settings page: Ada requires single sign-on; Ben's password stops working, Ada's does not", func(t *testing.T) {
		b := s.person(t, browser, "ada")
		b.open("/settings/sso")
		b.wantText("#redirect-url", s.url+"/signin/oidc/callback")
		if got := run(b, chromedp.Evaluate[string](`document.getElementById("issuer").value`)); got != s.idp.Issuer {
			t.Errorf("issuer field %q, want %q", got, s.idp.Issuer)
		}
		if got := run(b, chromedp.Evaluate[string](`document.getElementById("client_secret").value`)); got != "" {
			t.Errorf("the secret field shows %q; it must stay empty", got)
		}
		b.do(chromedp.Click(chromedp.CSS("#require_sso")))
		b.submit("#sso-save")
		b.wantText("main .message", "Your changes have been saved.")
		if !b.checked("require_sso") {
			t.Error("require SSO is not ticked after saving")
		}
		b.screenshot("console-sso-settings")
		st, err := s.sso.Settings(context.Background(), usher.System(s.acct.ID))
		if err != nil || !st.RequireSSO || st.ClientSecret != ssotest.ClientSecret {
			t.Fatalf("stored settings %+v %v: want require SSO and the secret kept", st, err)
		}

		ben := s.window(t, browser)
		ben.open("/signin")
		ben.do(
			chromedp.SetValue(chromedp.CSS("#email"), "ben@acme.test"),
			chromedp.SetValue(chromedp.CSS("#password"), password),
		)
		ben.submit(`form[action="/signin"] button[type=submit]`)
		ben.wantRefused("single sign-on only")
		ben.wantText("#sso-signin", "Sign in with Test IdP")

		if ada := s.person(t, browser, "ada"); ada.text(".who") != "ada@acme.test" {
			t.Error("Ada, a primary admin, could not sign in with her password while SSO is required")
		}
	})
}
