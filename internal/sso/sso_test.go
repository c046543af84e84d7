package sso_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/sso/ssotest"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

const base = "https://usher.example.test"

// fixture is an account with a primary admin (Ada), a secondary admin
// (Sam) and a plain user (Ben), and a running OpenID provider that knows
// Ada, Ben, a stranger and a person from another domain.
type fixture struct {
	t      *testing.T
	access *access.Service
	sso    *sso.Service
	acct   usher.Account
	ada    usher.User
	sam    usher.User
	ben    usher.User
	idp    *ssotest.Provider
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, access: access.New(db.Access(), nil), sso: sso.New(db.SSO(), sso.Config{BaseURL: base})}
	var err error
	f.acct, f.ada, _, err = f.access.CreateAccount(ctx, access.NewAccount{Name: "Acme Ltd", AdminEmail: "ada@acme.test", AdminName: "Ada Admin", TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	sys := usher.System(f.acct.ID)
	for _, p := range []struct {
		u    *usher.User
		mail string
	}{{&f.sam, "sam@acme.test"}, {&f.ben, "ben@acme.test"}} {
		email := p.mail
		if *p.u, err = f.access.CreateUser(ctx, sys, access.UserInput{Email: &email}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.access.GrantRole(ctx, sys, usher.RoleGrant{UserID: f.sam.ID, Role: usher.RoleSecondaryAdmin}); err != nil {
		t.Fatal(err)
	}
	f.idp = ssotest.Start(t)
	f.idp.SetRedirectURI(f.sso.RedirectURL())
	for _, u := range []ssotest.User{
		{Username: "ada", Password: "pw-ada", Email: "Ada@Acme.test", EmailVerified: true, Name: "Ada Admin"},
		{Username: "ben", Password: "pw-ben", Email: "ben@acme.test", EmailVerified: true, Name: "Ben Baker"},
		{Username: "nina", Password: "pw-nina", Email: "nina@acme.test", EmailVerified: true, Name: "Nina New"},
		{Username: "olga", Password: "pw-olga", Email: "olga@other.test", EmailVerified: true, Name: "Olga Other"},
		{Username: "uma", Password: "pw-uma", Email: "uma@acme.test", EmailVerified: false, Name: "Uma Unverified"},
	} {
		f.idp.AddUser(u)
	}
	return f
}

func (f *fixture) actor(u usher.User) usher.Actor {
	f.t.Helper()
	a, err := f.access.ActorFor(context.Background(), f.acct.ID, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *fixture) setUp(mod func(*sso.Input)) sso.Settings {
	f.t.Helper()
	in := sso.Input{ProviderName: "Test IdP", Issuer: f.idp.Issuer, ClientID: ssotest.ClientID, ClientSecret: ssotest.ClientSecret,
		AllowedDomains: []string{"acme.test"}}
	if mod != nil {
		mod(&in)
	}
	st, _, err := f.sso.Set(context.Background(), f.actor(f.ada), in)
	if err != nil {
		f.t.Fatalf("set up single sign-on: %v", err)
	}
	return st
}

// signIn runs a whole sign-in without a browser as the provider's user
// username, and returns the callback it produced with the result.
func (f *fixture) signIn(username string) (sso.Callback, sso.Result, error) {
	f.t.Helper()
	ctx := context.Background()
	start, err := f.sso.Begin(ctx, f.acct.ID, "/users", "")
	if err != nil {
		f.t.Fatalf("begin: %v", err)
	}
	back, err := f.idp.SignIn(ctx, start.URL, username, "pw-"+username)
	if err != nil {
		f.t.Fatalf("sign in at the provider: %v", err)
	}
	cb := callbackOf(f.t, back)
	cb.BrowserState = start.State
	res, err := f.sso.Finish(ctx, cb)
	return cb, res, err
}

func callbackOf(t *testing.T, back string) sso.Callback {
	t.Helper()
	u, err := url.Parse(back)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(back, base+sso.CallbackPath) {
		t.Fatalf("the provider sent the browser to %s, want the redirect URI %s", back, base+sso.CallbackPath)
	}
	q := u.Query()
	return sso.Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), ErrorDescription: q.Get("error_description")}
}

func wantRefused(t *testing.T, err error, fragment string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one saying %q", fragment)
	}
	if usher.ErrorCode(err) != usher.EUNAUTHORIZED {
		t.Errorf("code %s (%v), want %s", usher.ErrorCode(err), err, usher.EUNAUTHORIZED)
	}
	if msg := usher.ErrorMessage(err); !strings.Contains(msg, fragment) {
		t.Errorf("message %q does not say %q", msg, fragment)
	}
}

func TestSettings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		ada := f.actor(f.ada)

		t.Run("ENOTFOUND before set up", func(t *testing.T) {
			if _, err := f.sso.Settings(ctx, ada); usher.ErrorCode(err) != usher.ENOTFOUND {
				t.Fatalf("got %v, want not found", err)
			}
		})
		t.Run("EFORBIDDEN for a secondary admin", func(t *testing.T) {
			sam := f.actor(f.sam)
			if _, _, err := f.sso.Set(ctx, sam, sso.Input{}); usher.ErrorCode(err) != usher.EFORBIDDEN {
				t.Errorf("set: got %v, want forbidden", err)
			}
			if _, err := f.sso.Settings(ctx, sam); usher.ErrorCode(err) != usher.EFORBIDDEN {
				t.Errorf("get: got %v, want forbidden", err)
			}
			if err := f.sso.TurnOff(ctx, sam); usher.ErrorCode(err) != usher.EFORBIDDEN {
				t.Errorf("off: got %v, want forbidden", err)
			}
		})
		t.Run("EINVALID names every field", func(t *testing.T) {
			_, _, err := f.sso.Set(ctx, ada, sso.Input{Issuer: "http://idp.example.com", AllowedDomains: []string{"not a domain"}})
			var fields []string
			for _, fe := range usher.ErrorFields(err) {
				fields = append(fields, fe.Field)
			}
			want := []string{"provider_name", "issuer", "client_id", "client_secret", "allowed_domains"}
			if !slices.Equal(fields, want) {
				t.Errorf("fields %v, want %v (%v)", fields, want, err)
			}
		})
		t.Run("set, edit keeping the secret, audited without it", func(t *testing.T) {
			st, created, err := f.sso.Set(ctx, ada, sso.Input{ProviderName: "Okta", Issuer: "https://acme.okta.com", ClientID: "abc",
				ClientSecret: "s3cret-value", AllowedDomains: []string{" ACME.test", "@acme.co.uk", "acme.test"}, RequireSSO: true})
			if err != nil || !created {
				t.Fatalf("set: %v, created %v", err, created)
			}
			if want := []string{"acme.test", "acme.co.uk"}; !slices.Equal(st.AllowedDomains, want) {
				t.Errorf("domains %v, want %v", st.AllowedDomains, want)
			}
			st, created, err = f.sso.Set(ctx, ada, sso.Input{ProviderName: "Okta", Issuer: "https://acme.okta.com", ClientID: "abc2"})
			if err != nil || created {
				t.Fatalf("edit: %v, created %v", err, created)
			}
			got, err := f.sso.Settings(ctx, ada)
			if err != nil {
				t.Fatal(err)
			}
			if got.ClientSecret != "s3cret-value" || got.ClientID != "abc2" || got.RequireSSO || len(got.AllowedDomains) != 0 {
				t.Errorf("after edit: %+v", got)
			}
			if !got.CreatedAt.Equal(st.CreatedAt) {
				t.Errorf("created_at moved: %v, want %v", got.CreatedAt, st.CreatedAt)
			}
			page, err := f.access.AuditLog(ctx, ada, 0, "sso.set", "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 2 {
				t.Fatalf("%d sso.set entries, want 2", len(page.Items))
			}
			for _, e := range page.Items {
				if strings.Contains(string(e.Before)+string(e.After), "s3cret") {
					t.Errorf("the audit log holds the secret: %s %s", e.Before, e.After)
				}
				if e.ActorID != f.ada.ID {
					t.Errorf("actor %d, want Ada", e.ActorID)
				}
			}
		})
		t.Run("turn off", func(t *testing.T) {
			if err := f.sso.TurnOff(ctx, ada); err != nil {
				t.Fatal(err)
			}
			if _, err := f.sso.Settings(ctx, ada); usher.ErrorCode(err) != usher.ENOTFOUND {
				t.Errorf("after off: %v, want not found", err)
			}
			if err := f.sso.TurnOff(ctx, ada); usher.ErrorCode(err) != usher.ENOTFOUND {
				t.Errorf("second off: %v, want not found", err)
			}
			page, err := f.access.AuditLog(ctx, ada, 0, "sso.off", "", 10)
			if err != nil || len(page.Items) != 1 {
				t.Fatalf("sso.off entries: %v %v", page.Items, err)
			}
		})
	})
}

func TestSignIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.setUp(nil)

		t.Run("an existing user signs in", func(t *testing.T) {
			_, res, err := f.signIn("ada")
			if err != nil {
				t.Fatal(err)
			}
			if res.User.ID != f.ada.ID || res.AccountID != f.acct.ID || res.Next != "/users" || res.Created {
				t.Errorf("result %+v, want Ada, not created, next /users", res)
			}
		})
		t.Run("the login hint reaches the provider", func(t *testing.T) {
			start, err := f.sso.Begin(ctx, f.acct.ID, "", "Ben@Acme.test")
			if err != nil {
				t.Fatal(err)
			}
			// The provider records the hint when the browser arrives.
			if _, err := f.idp.SignIn(ctx, start.URL, "ben", "pw-ben"); err != nil {
				t.Fatal(err)
			}
			hints := f.idp.LoginHints()
			if got := hints[len(hints)-1]; got != "ben@acme.test" {
				t.Errorf("login_hint %q, want ben@acme.test", got)
			}
		})
		t.Run("a replayed state is refused", func(t *testing.T) {
			cb, _, err := f.signIn("ben")
			if err != nil {
				t.Fatal(err)
			}
			calls := f.idp.TokenRequests()
			_, err = f.sso.Finish(ctx, cb)
			wantRefused(t, err, "replayed")
			if f.idp.TokenRequests() != calls {
				t.Error("the replayed code was sent to the provider")
			}
		})
		t.Run("concurrent callbacks with one state: exactly one wins", func(t *testing.T) {
			start, err := f.sso.Begin(ctx, f.acct.ID, "", "")
			if err != nil {
				t.Fatal(err)
			}
			back, err := f.idp.SignIn(ctx, start.URL, "ben", "pw-ben")
			if err != nil {
				t.Fatal(err)
			}
			cb := callbackOf(t, back)
			cb.BrowserState = start.State
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() { _, errs[i] = f.sso.Finish(ctx, cb) })
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else if !strings.Contains(usher.ErrorMessage(err), "used already") {
					t.Errorf("a losing callback: %v", err)
				}
			}
			if ok != 1 {
				t.Errorf("%d callbacks succeeded, want 1", ok)
			}
		})
		t.Run("another browser's state is refused", func(t *testing.T) {
			start, err := f.sso.Begin(ctx, f.acct.ID, "", "")
			if err != nil {
				t.Fatal(err)
			}
			back, err := f.idp.SignIn(ctx, start.URL, "ben", "pw-ben")
			if err != nil {
				t.Fatal(err)
			}
			cb := callbackOf(t, back)
			_, err = f.sso.Finish(ctx, cb)
			wantRefused(t, err, "another browser")
		})
		t.Run("an unknown state is refused", func(t *testing.T) {
			_, err := f.sso.Finish(ctx, sso.Callback{State: "forged", BrowserState: "forged", Code: "x"})
			wantRefused(t, err, "not known here")
		})
		t.Run("wrong audience", func(t *testing.T) {
			f.idp.SetAudience("some-other-app")
			defer f.idp.SetAudience("")
			_, _, err := f.signIn("ben")
			wantRefused(t, err, "wrong audience")
		})
		t.Run("expired ID token", func(t *testing.T) {
			f.idp.SetIDTokenLifetime(-time.Hour)
			defer f.idp.SetIDTokenLifetime(time.Hour)
			_, _, err := f.signIn("ben")
			wantRefused(t, err, "expired")
		})
		t.Run("tampered ID token", func(t *testing.T) {
			// Ben's token, rewritten on the way to name Ada.
			f.idp.TamperEmail("ada@acme.test")
			defer f.idp.TamperEmail("")
			_, res, err := f.signIn("ben")
			wantRefused(t, err, "signature")
			if res.User.ID != 0 {
				t.Errorf("a tampered token signed in %s", res.User.Email)
			}
		})
		t.Run("a user who does not exist", func(t *testing.T) {
			_, _, err := f.signIn("nina")
			wantRefused(t, err, "no Usher user nina@acme.test")
		})
		t.Run("an email domain not allowed", func(t *testing.T) {
			_, _, err := f.signIn("olga")
			wantRefused(t, err, "domain other.test is not allowed")
		})
		t.Run("an email not said to be verified", func(t *testing.T) {
			// With allowed domains, the domain vouches for emails the
			// provider does not call verified; without, nothing does.
			f.setUp(func(in *sso.Input) { in.AllowedDomains = nil; in.ClientSecret = "" })
			defer f.setUp(func(in *sso.Input) { in.ClientSecret = "" })
			_, _, err := f.signIn("uma")
			wantRefused(t, err, "did not say that uma@acme.test is verified")
			if _, _, err := f.signIn("ben"); err != nil {
				t.Errorf("Ben, whose email the provider says is verified: %v", err)
			}
		})
		t.Run("a disabled user", func(t *testing.T) {
			disabled := usher.UserDisabled
			if _, err := f.access.UpdateUser(ctx, usher.System(f.acct.ID), f.ben.ID, access.UserInput{Status: &disabled}); err != nil {
				t.Fatal(err)
			}
			defer func() {
				active := usher.UserActive
				if _, err := f.access.UpdateUser(ctx, usher.System(f.acct.ID), f.ben.ID, access.UserInput{Status: &active}); err != nil {
					t.Fatal(err)
				}
			}()
			_, _, err := f.signIn("ben")
			wantRefused(t, err, "disabled")
		})
		t.Run("just in time creation", func(t *testing.T) {
			f.setUp(func(in *sso.Input) { in.CreateUsers = true; in.ClientSecret = "" })
			_, res, err := f.signIn("nina")
			if err != nil {
				t.Fatal(err)
			}
			if !res.Created || res.User.Email != "nina@acme.test" || res.User.Name != "Nina New" || res.User.Status != usher.UserActive {
				t.Errorf("result %+v, want Nina created active", res)
			}
			page, err := f.access.AuditLog(ctx, usher.System(f.acct.ID), res.User.ID, "user.create", "", 10)
			if err != nil || len(page.Items) != 1 || page.Items[0].ActorEmail != "sso" {
				t.Fatalf("audit of the creation: %+v %v", page.Items, err)
			}
			// The second time she is found, not created again.
			_, res2, err := f.signIn("nina")
			if err != nil || res2.Created || res2.User.ID != res.User.ID {
				t.Errorf("second sign-in: %+v %v", res2, err)
			}
		})
	})
}

// TestRequireSSO checks the break-glass rule: with single sign-on
// required, only primary admins still sign in with a password.
func TestRequireSSO(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		authSvc := auth.New(db.Auth(), auth.Config{Params: auth.Params{Memory: 64, Time: 1, Threads: 1}, PasswordPolicy: f.sso.PasswordAllowed})
		const pw = "a long enough password"
		for _, u := range []usher.User{f.ada, f.ben} {
			if err := authSvc.SetPassword(ctx, f.acct.ID, u.ID, pw); err != nil {
				t.Fatal(err)
			}
		}
		f.setUp(func(in *sso.Input) { in.RequireSSO = true })

		if _, _, err := authSvc.SignIn(ctx, "ben@acme.test", pw, "test"); usher.ErrorCode(err) != usher.EFORBIDDEN ||
			!strings.Contains(usher.ErrorMessage(err), "Sign in with Test IdP") {
			t.Errorf("Ben with a password: %v, want forbidden naming the provider", err)
		}
		if _, _, err := authSvc.SignIn(ctx, "ada@acme.test", pw, "test"); err != nil {
			t.Errorf("Ada (primary admin) with a password: %v, want signed in", err)
		}
		token, _, err := authSvc.CreatePasswordLink(ctx, f.acct.ID, f.ben.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := authSvc.UsePasswordLink(ctx, token, pw); usher.ErrorCode(err) != usher.EFORBIDDEN {
			t.Errorf("Ben's set-password link: %v, want forbidden", err)
		}

		f.setUp(func(in *sso.Input) { in.RequireSSO = false; in.ClientSecret = "" })
		if _, _, err := authSvc.SignIn(ctx, "ben@acme.test", pw, "test"); err != nil {
			t.Errorf("Ben once SSO is optional: %v", err)
		}
	})
}

func TestProviderForEmail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		if _, err := f.sso.ProviderForEmail(ctx, "ben@acme.test"); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Errorf("before set up: %v, want not found", err)
		}
		f.setUp(nil)
		for _, email := range []string{"ben@acme.test", "someone.new@ACME.test"} {
			p, err := f.sso.ProviderForEmail(ctx, email)
			if err != nil || p.AccountID != f.acct.ID || p.Name != "Test IdP" || p.AccountName != "Acme Ltd" {
				t.Errorf("%s: %+v %v", email, p, err)
			}
		}
		if _, err := f.sso.ProviderForEmail(ctx, "x@elsewhere.test"); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Errorf("another domain: %v, want not found", err)
		}
	})
}
