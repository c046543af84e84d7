package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/console"
)

// These tests speak HTTP to the console without a browser, for what a
// browser hides: status codes, headers, cookies and forged requests.

type httpSite struct {
	t      *testing.T
	url    string
	access *access.Service
	auth   *auth.Service
	acct   usher.Account
	admin  usher.User
	// now is the clock of both services; tests move it between requests,
	// which the server reads on other goroutines.
	now atomic.Pointer[time.Time]
	log lockedBuffer // the server's log
}

func (s *httpSite) advance(d time.Duration) {
	t := s.now.Load().Add(d)
	s.now.Store(&t)
}

// lockedBuffer collects log lines the server writes on its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newHTTPSite(t *testing.T, secure bool, opts ...func(*console.Config)) *httpSite {
	t.Helper()
	db := storetest.Open(t, store.SQLite)
	s := &httpSite{t: t}
	start := time.Now().UTC()
	s.now.Store(&start)
	clock := func() time.Time { return *s.now.Load() }
	s.access = access.New(db.Access(), clock)
	s.auth = auth.New(db.Auth(), auth.Config{Now: clock, Params: auth.Params{Memory: 64, Time: 1, Threads: 1}, MaxFailuresPerEmail: 3, SessionTTL: time.Hour})
	var err error
	s.acct, s.admin, _, err = s.access.CreateAccount(context.Background(), access.NewAccount{Name: "Acme", AdminEmail: "ada@acme.test", AdminName: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.auth.SetPassword(context.Background(), s.acct.ID, s.admin.ID, password); err != nil {
		t.Fatal(err)
	}
	cfg := console.Config{Access: s.access, Auth: s.auth, SecureCookies: secure}
	for _, o := range opts {
		o(&cfg)
	}
	ui, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.NewHandler(web.Config{Access: s.access, Console: ui, Logger: slog.New(slog.NewTextHandler(&s.log, nil))}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// browserless is a client with a cookie jar that does not follow redirects,
// so each answer can be checked.
type browserless struct {
	t    *testing.T
	site *httpSite
	http *http.Client
}

func (s *httpSite) client() *browserless {
	jar, _ := cookiejar.New(nil)
	return &browserless{t: s.t, site: s, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (c *browserless) send(method, path string, form url.Values, header ...string) answer {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.site.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func (c *browserless) signIn(email, pw string) answer {
	c.t.Helper()
	return c.send("POST", "/signin", url.Values{"email": {email}, "password": {pw}})
}

func TestSignInCookie(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secure bool
	}{{"PlainHTTP", false}, {"BehindHTTPS", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHTTPSite(t, tc.secure)
			a := s.client().signIn("ada@acme.test", password)
			if a.status != http.StatusSeeOther || a.header.Get("Location") != "/" {
				t.Fatalf("sign in: %d to %q, want 303 to /", a.status, a.header.Get("Location"))
			}
			c := a.header.Get("Set-Cookie")
			for _, want := range []string{"usher_session=uss_", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"} {
				if !strings.Contains(c, want) {
					t.Errorf("Set-Cookie %q lacks %q", c, want)
				}
			}
			if got := strings.Contains(c, "Secure"); got != tc.secure {
				t.Errorf("Set-Cookie %q: Secure is %v, want %v", c, got, tc.secure)
			}
		})
	}
}

func TestSignInPage(t *testing.T) {
	s := newHTTPSite(t, false)

	t.Run("AnonymousVisitorIsSentToSignInAndBack", func(t *testing.T) {
		a := s.client().send("GET", "/users?q=x", nil)
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/signin?next=%2Fusers%3Fq%3Dx" {
			t.Fatalf("got %d to %q", a.status, a.header.Get("Location"))
		}
		c := s.client()
		a = c.send("POST", "/signin", url.Values{"email": {"ada@acme.test"}, "password": {password}, "next": {"/users?q=x"}})
		if a.header.Get("Location") != "/users?q=x" {
			t.Fatalf("after sign-in: to %q, want /users?q=x", a.header.Get("Location"))
		}
	})
	t.Run("NextNeverLeavesTheSite", func(t *testing.T) {
		for _, next := range []string{"https://evil.test/", "//evil.test/x", "/\\evil.test", "javascript:alert(1)"} {
			a := s.client().send("POST", "/signin", url.Values{"email": {"ada@acme.test"}, "password": {password}, "next": {next}})
			if loc := a.header.Get("Location"); loc != "/" {
				t.Errorf("next=%q: redirected to %q, want /", next, loc)
			}
		}
	})
	t.Run("EmptyFieldsAreNamed", func(t *testing.T) {
		a := s.client().signIn("", "")
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "email: is required") || !strings.Contains(a.body, "password: is required") {
			t.Fatalf("got %d:\n%s", a.status, a.body)
		}
	})
	t.Run("TooManyFailuresAre429WithAMessage", func(t *testing.T) {
		c := s.client()
		for range 3 {
			if a := c.signIn("ada@acme.test", "wrong password"); a.status != http.StatusUnauthorized {
				t.Fatalf("wrong password: got %d, want 401", a.status)
			}
		}
		a := c.signIn("ada@acme.test", password)
		if a.status != http.StatusTooManyRequests || !strings.Contains(a.body, "Too many failed sign-in attempts") {
			t.Fatalf("got %d:\n%s", a.status, a.body)
		}
		if a.header.Get("Set-Cookie") != "" {
			t.Fatal("a refused sign-in set a cookie")
		}
		s.advance(auth.DefaultFailureWindow + time.Second)
		if a := c.signIn("ada@acme.test", password); a.status != http.StatusSeeOther {
			t.Fatalf("after the window: got %d, want 303", a.status)
		}
	})
}

func TestSessionEnds(t *testing.T) {
	s := newHTTPSite(t, false)
	c := s.client()
	c.signIn("ada@acme.test", password)
	if a := c.send("GET", "/users", nil); a.status != http.StatusOK {
		t.Fatalf("signed in: /users answered %d", a.status)
	}
	t.Run("APostAfterExpiryIsRefusedAndSaysWhy", func(t *testing.T) {
		s.advance(time.Hour)
		a := c.send("POST", fmt.Sprintf("/users/%d/access", s.admin.ID), url.Values{"tab": {"products"}})
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "nothing was saved") {
			t.Fatalf("got %d:\n%s", a.status, a.body)
		}
		if a := c.send("GET", "/users", nil); a.status != http.StatusSeeOther {
			t.Fatalf("GET after expiry: %d, want a redirect to sign in", a.status)
		}
	})
}

func TestCrossOriginPostIsRefused(t *testing.T) {
	s := newHTTPSite(t, false)
	c := s.client()
	c.signIn("ada@acme.test", password)
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "https://evil.test"},
	} {
		a := c.send("POST", "/signout", url.Values{}, h...)
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "came from another site") {
			t.Errorf("%s: %s answered %d, want 403 with the page saying why", h[0], h[1], a.status)
		}
	}
	// The session survived the refused sign-out.
	if a := c.send("GET", "/users", nil); a.status != http.StatusOK {
		t.Fatalf("after refused cross-site sign-out: /users answered %d, want 200", a.status)
	}
	if a := c.send("POST", "/signout", url.Values{}, "Sec-Fetch-Site", "same-origin"); a.status != http.StatusSeeOther {
		t.Fatalf("same-origin sign-out: %d, want 303", a.status)
	}
}

func TestCrossOriginCheckComparesTheScheme(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			s := newHTTPSite(t, secure)
			host := strings.TrimPrefix(s.url, "http://")
			own, other := "http://"+host, "https://"+host
			if secure {
				own, other = other, own
			}
			c := s.client()
			c.signIn("ada@acme.test", password)
			if a := c.send("POST", "/signout", url.Values{}, "Origin", other); a.status != http.StatusForbidden {
				t.Fatalf("Origin %s: %d, want 403: the same host over another scheme is another site", other, a.status)
			}
			if a := c.send("POST", "/signout", url.Values{}, "Origin", own); a.status != http.StatusSeeOther {
				t.Fatalf("Origin %s: %d, want 303", own, a.status)
			}
		})
	}
}

// TestTrustedProxyNamesTheClient: behind a trusted proxy, failures count
// against the address X-Forwarded-For names, so one client's guessing does
// not lock out another behind the same proxy; from an untrusted peer the
// header is ignored.
func TestTrustedProxyNamesTheClient(t *testing.T) {
	proxies, err := web.ParseTrustedProxies("127.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	s := newHTTPSite(t, false, func(c *console.Config) { c.TrustedProxies = proxies })
	c := s.client()
	// 100 failures (the default client limit) from one client, each for a
	// different email so the per-email limit does not stop it first.
	for i := range auth.DefaultMaxFailuresPerClient {
		a := c.send("POST", "/signin", url.Values{"email": {fmt.Sprintf("guess%d@acme.test", i)}, "password": {"wrong password!"}},
			"X-Forwarded-For", "198.51.100.7")
		if a.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, a.status)
		}
	}
	a := c.send("POST", "/signin", url.Values{"email": {"ada@acme.test"}, "password": {password}}, "X-Forwarded-For", "198.51.100.7")
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("the guessing client: %d, want 429", a.status)
	}
	// Another client behind the same proxy signs in.
	a = s.client().send("POST", "/signin", url.Values{"email": {"ada@acme.test"}, "password": {password}}, "X-Forwarded-For", "198.51.100.7, 203.0.113.9")
	if a.status != http.StatusSeeOther {
		t.Fatalf("another client behind the proxy: %d, want 303", a.status)
	}
}

func TestDisablingAUserEndsTheirSessions(t *testing.T) {
	s := newHTTPSite(t, false)
	ctx := context.Background()
	sys := usher.System(s.acct.ID)
	email := "ben@acme.test"
	ben, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.auth.SetPassword(ctx, s.acct.ID, ben.ID, password); err != nil {
		t.Fatal(err)
	}
	c := s.client()
	if a := c.signIn(email, password); a.status != http.StatusSeeOther {
		t.Fatalf("sign in: %d", a.status)
	}
	mine := fmt.Sprintf("/users/%d/access", ben.ID)
	if a := c.send("GET", mine, nil); a.status != http.StatusOK {
		t.Fatalf("signed in: %d", a.status)
	}
	off, on := usher.UserDisabled, usher.UserActive
	if _, err := s.access.UpdateUser(ctx, sys, ben.ID, access.UserInput{Status: &off}); err != nil {
		t.Fatal(err)
	}
	if a := c.send("GET", mine, nil); a.status != http.StatusSeeOther {
		t.Fatalf("after disabling: %d, want a redirect to sign in", a.status)
	}
	if _, err := s.access.UpdateUser(ctx, sys, ben.ID, access.UserInput{Status: &on}); err != nil {
		t.Fatal(err)
	}
	if a := c.send("GET", mine, nil); a.status != http.StatusSeeOther {
		t.Fatalf("after re-enabling: %d, want the old session still ended", a.status)
	}
}

var rowRE = regexp.MustCompile(`<th scope="row" role="rowheader">`)

func TestUsersArePaged(t *testing.T) {
	s := newHTTPSite(t, false)
	sys := usher.System(s.acct.ID)
	for i := range 30 {
		email, name := fmt.Sprintf("user%02d@acme.test", i), fmt.Sprintf("User %02d", i)
		if _, err := s.access.CreateUser(context.Background(), sys, access.UserInput{Email: &email, Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	c := s.client()
	c.signIn("ada@acme.test", password)
	first := c.send("GET", "/users", nil)
	if n := len(rowRE.FindAllString(first.body, -1)); n != 25 {
		t.Fatalf("first page: %d rows, want 25", n)
	}
	next := regexp.MustCompile(`href="(/users\?[^"]+)" rel="next"`).FindStringSubmatch(first.body)
	if next == nil || strings.Contains(first.body, "First page") {
		t.Fatal("the first page has no Next page link, or offers a First page link")
	}
	second := c.send("GET", strings.ReplaceAll(next[1], "&amp;", "&"), nil)
	if n := len(rowRE.FindAllString(second.body, -1)); n != 6 { // 30 users and Ada
		t.Fatalf("second page: %d rows, want 6", n)
	}
	if !strings.Contains(second.body, "First page") || strings.Contains(second.body, `rel="next"`) {
		t.Fatal("the last page lacks First page or offers Next page")
	}
	if !strings.Contains(second.body, "page 2") {
		t.Error("the second page does not say it is page 2")
	}
	prev := regexp.MustCompile(`href="(/users[^"]*)" rel="prev"`).FindStringSubmatch(second.body)
	if prev == nil {
		t.Fatal("the second page has no Previous page link")
	}
	back := c.send("GET", strings.ReplaceAll(prev[1], "&amp;", "&"), nil)
	if n := len(rowRE.FindAllString(back.body, -1)); n != 25 || !strings.Contains(back.body, "page 1") {
		t.Fatalf("Previous page: %d rows, want the first page's 25", n)
	}
}

func TestSetPasswordLink(t *testing.T) {
	s := newHTTPSite(t, false)
	token, _, err := s.auth.CreatePasswordLink(context.Background(), s.acct.ID, s.admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := s.client()
	if a := c.send("GET", "/set-password?token="+token, nil); a.status != http.StatusOK || !strings.Contains(a.body, "ada@acme.test") {
		t.Fatalf("link page: %d", a.status)
	}
	a := c.send("POST", "/set-password", url.Values{"token": {token}, "password": {"a new password"}, "repeat": {"another one!"}})
	if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "repeat: does not match") {
		t.Fatalf("different repeat: %d", a.status)
	}
	a = c.send("POST", "/set-password", url.Values{"token": {token}, "password": {"a new password"}, "repeat": {"a new password"}})
	if a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Set-Cookie"), "usher_session=uss_") {
		t.Fatalf("set password: %d, Set-Cookie %q", a.status, a.header.Get("Set-Cookie"))
	}
	if a := c.send("GET", "/users", nil); a.status != http.StatusOK {
		t.Fatalf("signed in by the link: /users answered %d", a.status)
	}
	if a := c.send("GET", "/set-password?token="+token, nil); a.status != http.StatusUnauthorized || !strings.Contains(a.body, "used already") {
		t.Fatalf("used link: %d", a.status)
	}
}

func TestPlainUserSeesOnlyTheirOwnAccess(t *testing.T) {
	s := newHTTPSite(t, false)
	email, name := "pat@acme.test", "Pat"
	u, err := s.access.CreateUser(context.Background(), usher.System(s.acct.ID), access.UserInput{Email: &email, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.auth.SetPassword(context.Background(), s.acct.ID, u.ID, password); err != nil {
		t.Fatal(err)
	}
	c := s.client()
	c.signIn(email, password)
	home := c.send("GET", "/", nil)
	if want := fmt.Sprintf("/users/%d/access", u.ID); home.header.Get("Location") != want {
		t.Fatalf("a plain user's start page: %q, want %q", home.header.Get("Location"), want)
	}
	page := c.send("GET", fmt.Sprintf("/users/%d/access", u.ID), nil)
	if page.status != http.StatusOK || strings.Contains(page.body, `href="/users"`) || strings.Contains(page.body, `id="save"`) {
		t.Fatalf("own access: %d; it must link no Users page and offer no Save", page.status)
	}
	for _, path := range []string{"/users", "/audit-log", "/subscriptions", fmt.Sprintf("/users/%d/access", s.admin.ID)} {
		if a := c.send("GET", path, nil); a.status != http.StatusForbidden && a.status != http.StatusNotFound {
			t.Errorf("%s: a plain user got %d, want 403 or 404", path, a.status)
		}
	}
}

func TestAPIKeepsItsProblemsWithTheConsoleMounted(t *testing.T) {
	s := newHTTPSite(t, false)
	c := s.client()
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/v1/nothing-here", http.StatusNotFound},
		{"POST", "/api/v1/me", http.StatusMethodNotAllowed},
		{"GET", "/api/v1/me", http.StatusUnauthorized},
	} {
		a := c.send(tc.method, tc.path, nil)
		if a.status != tc.status || a.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %s, want %d problem+json", tc.method, tc.path, a.status, a.header.Get("Content-Type"), tc.status)
		}
	}
	if a := c.send("GET", "/no-such-page", nil); a.status != http.StatusNotFound || !strings.Contains(a.header.Get("Content-Type"), "text/html") {
		t.Errorf("an unknown console page: %d %s, want a 404 page", a.status, a.header.Get("Content-Type"))
	}
	a := c.send("GET", "/signin", nil)
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if a.header.Get(h) == "" {
			t.Errorf("the sign-in page has no %s header", h)
		}
	}
}

func TestRefusedSaveKeepsTheTicksAndChangesNothing(t *testing.T) {
	s := newHTTPSite(t, false)
	ctx := context.Background()
	sys := usher.System(s.acct.ID)
	one, no := 1, false
	d := func(v string) usher.Date { x, _ := usher.ParseDate(v); return x }
	sub, err := s.access.CreateSubscription(ctx, sys, access.NewSubscription{
		Product: "civilworks", Plan: usher.PlanStandard, Seats: &one, ContractNumber: "CW-1",
		TermStart: d("2026-01-01"), TermEnd: d("2026-12-31"), Benefits: []string{"web_support"},
		ContractManagerID: s.admin.ID, AssignManagerSeat: &no,
	})
	if err != nil {
		t.Fatal(err)
	}
	var users []usher.User
	for _, name := range []string{"Kim", "Lou"} {
		email := strings.ToLower(name) + "@acme.test"
		u, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	if err := s.access.Assign(ctx, sys, users[0].ID, sub.ID, nil); err != nil {
		t.Fatal(err)
	}
	c := s.client()
	c.signIn("ada@acme.test", password)
	a := c.send("POST", fmt.Sprintf("/users/%d/access", users[1].ID), url.Values{
		"tab": {"products"}, "assign": {fmt.Sprint(sub.ID)}, "service": {fmt.Sprintf("%d/collaboration", sub.ID)},
	})
	if a.status != http.StatusConflict || !strings.Contains(a.body, `role="alert"`) || !strings.Contains(a.body, "Nothing was saved") || !strings.Contains(a.body, "No seats available on contract CW-1") {
		t.Fatalf("assigning the last seat twice: %d, want 409 with an alert:\n%s", a.status, a.body)
	}
	for _, id := range []string{fmt.Sprintf(`id="assign-%d"`, sub.ID), fmt.Sprintf(`id="service-%d-collaboration"`, sub.ID)} {
		if !regexp.MustCompile(regexp.QuoteMeta(id) + `[^>]* checked`).MatchString(a.body) {
			t.Errorf("the refused page does not keep %s ticked", id)
		}
	}
	got, err := s.access.Access(ctx, sys, users[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got.Subscriptions {
		if e.Assigned {
			t.Fatalf("Lou holds a seat of %s after a refused save", e.Subscription.ContractNumber)
		}
	}

	t.Run("AServiceWithoutItsSeatNamesTheContract", func(t *testing.T) {
		a := c.send("POST", fmt.Sprintf("/users/%d/access", users[1].ID), url.Values{
			"tab": {"products"}, "service": {fmt.Sprintf("%d/collaboration", sub.ID)},
		})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "CivilWorks CW-1: services need the seat") {
			t.Fatalf("got %d:\n%s", a.status, a.body)
		}
	})
}

func TestRequestLogNamesTheSignedInUser(t *testing.T) {
	s := newHTTPSite(t, false)
	c := s.client()
	c.signIn("ada@acme.test", password)
	c.send("GET", "/subscriptions", nil)
	want := "path=/subscriptions status=200"
	for _, line := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(line, want) {
			if !strings.Contains(line, fmt.Sprintf("account_id=%d user_id=%d", s.acct.ID, s.admin.ID)) {
				t.Fatalf("the log line does not name the user: %s", line)
			}
			return
		}
	}
	t.Fatalf("no log line with %q in:\n%s", want, s.log.String())
}
