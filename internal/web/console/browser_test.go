package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/console"
)

// chromiumPath is Debian's Chromium, which scripts/test installs.
const chromiumPath = "/usr/bin/chromium"

const password = "browser test password"

// site is a running Usher server on SQLite with one account:
//
//   - Ada, primary admin;
//   - Max, contract manager of Model Studio (contract MS-1) with a seat;
//   - Cora, software coordinator of DraftPro (contract DP-1), who also holds
//     a seat of MS-1 that she may not change;
//   - Ben, a plain user with nothing yet.
type site struct {
	t      *testing.T
	url    string
	access *access.Service
	auth   *auth.Service
	acct   usher.Account
	users  map[string]usher.User // by first name, lower case
	ms, dp usher.Subscription
}

func newSite(t *testing.T) *site {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	s := &site{t: t, access: access.New(db.Access(), nil), users: map[string]usher.User{}}
	// argon2's cost is not under test here; the format and code path are.
	authSvc := auth.New(db.Auth(), auth.Config{Params: auth.Params{Memory: 64, Time: 1, Threads: 1}})
	s.auth = authSvc

	acct, ada, _, err := s.access.CreateAccount(ctx, access.NewAccount{Name: "Acme Ltd", AdminEmail: "ada@acme.test", AdminName: "Ada Admin", TimeZone: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	s.acct, s.users["ada"] = acct, ada
	sys := usher.System(acct.ID)
	for _, name := range []string{"Max Manager", "Cora Coordinator", "Ben Baker"} {
		email := strings.ToLower(strings.Fields(name)[0]) + "@acme.test"
		u, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		s.users[strings.ToLower(strings.Fields(name)[0])] = u
	}
	for _, u := range s.users {
		if err := authSvc.SetPassword(ctx, acct.ID, u.ID, password); err != nil {
			t.Fatal(err)
		}
	}
	seats, no := 5, false
	term := func(s string) usher.Date { d, _ := usher.ParseDate(s); return d }
	s.ms, err = s.access.CreateSubscription(ctx, sys, access.NewSubscription{
		Product: "modelstudio", Plan: usher.PlanPremium, Seats: &seats, ContractNumber: "MS-1",
		TermStart: term("2026-01-01"), TermEnd: term("2026-12-31"), Benefits: []string{"web_support", "phone_support"},
		ContractManagerID: s.users["max"].ID,
	})
	if err != nil {
		t.Fatal(err)
	}
	three := 3
	s.dp, err = s.access.CreateSubscription(ctx, sys, access.NewSubscription{
		Product: "draftpro", Plan: usher.PlanStandard, Seats: &three, ContractNumber: "DP-1",
		TermStart: term("2026-01-01"), TermEnd: term("2026-12-31"), Benefits: []string{"web_support"},
		ContractManagerID: ada.ID, AssignManagerSeat: &no,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.access.GrantRole(ctx, sys, usher.RoleGrant{UserID: s.users["cora"].ID, Role: usher.RoleSoftwareCoordinator, SubscriptionID: s.dp.ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.access.Assign(ctx, sys, s.users["cora"].ID, s.ms.ID, []string{"cloud_storage"}); err != nil {
		t.Fatal(err)
	}

	ui, err := console.New(console.Config{Access: s.access, Auth: authSvc})
	if err != nil {
		t.Fatal(err)
	}
	h := web.NewHandler(web.Config{Access: s.access, Console: ui, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// accessOf is the stored access of a user, as the admin sees it.
func (s *site) accessOf(name string) map[int64]access.SubscriptionAccess {
	s.t.Helper()
	ua, err := s.access.Access(context.Background(), usher.System(s.acct.ID), s.users[name].ID)
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[int64]access.SubscriptionAccess{}
	for _, e := range ua.Subscriptions {
		out[e.Subscription.ID] = e
	}
	return out
}

func (s *site) seatsUsed(id int64) int {
	s.t.Helper()
	sub, err := s.access.Subscription(context.Background(), usher.System(s.acct.ID), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return sub.SeatsUsed
}

// newBrowser starts Chromium with a fresh profile. A missing Chromium fails
// the test: a skipped browser test would let the console break unnoticed.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is needed for the console's browser tests and is missing at %s (%v).\n"+
			"Install Debian's package: sudo apt-get install chromium — or run ./scripts/test, which installs it.", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Screenshots show the page, not a scrollbar eating 15 px of 375.
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return bctx
}

// tab is one person's browser window: its own cookies, on the site.
type tab struct {
	t    *testing.T
	ctx  context.Context
	site *site
}

// person opens an isolated browser context (its own cookie jar) and signs
// in as the named user.
func (s *site) person(t *testing.T, browser context.Context, name string) *tab {
	t.Helper()
	b := s.window(t, browser)
	b.do(chromedp.Navigate(s.url + "/"))
	if loc := b.location(); !strings.Contains(loc, "/signin") {
		t.Fatalf("a new visitor landed on %s, want the sign-in page", loc)
	}
	b.do(
		chromedp.SetValue(chromedp.CSS("#email"), s.users[name].Email),
		chromedp.SetValue(chromedp.CSS("#password"), password),
	)
	b.submit(`form[action="/signin"] button[type=submit]`)
	return b
}

// window opens a tab in a browser context of its own, so it shares no
// cookies with other windows.
func (s *site) window(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first run opens the tab, which lives as long as that run's
	// context: it must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("open a browser window: %v", err)
	}
	return &tab{t: t, ctx: ctx, site: s}
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func run[T any](b *tab, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// discard makes an action that returns a value fit among steps.
func discard[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

func (b *tab) location() string { b.t.Helper(); return run(b, chromedp.Location()) }

// text is the visible text of the first element matching sel, waiting
// for it to appear. It asks the page by selector rather than through
// DevTools node ids, which a page just replaced by a form's answer can
// invalidate between the lookup and the read.
func (b *tab) text(sel string) string {
	b.t.Helper()
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? [e.innerText] : [] })()`, sel)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v := run(b, chromedp.Evaluate[[]string](expr)); len(v) == 1 {
			return v[0]
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: no element matches %s on %s", sel, b.location())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *tab) eval(expr string) bool { b.t.Helper(); return run(b, chromedp.Evaluate[bool](expr)) }

func (b *tab) evalInt(expr string) int { b.t.Helper(); return run(b, chromedp.Evaluate[int](expr)) }

// open navigates to a path of the site and waits for its main content.
func (b *tab) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.site.url+path), chromedp.WaitReady(chromedp.CSS("main h1")))
	b.settle()
}

// submit clicks a submit button and waits for the next page: the old body
// is marked, so the wait cannot be satisfied by the page being left.
func (b *tab) submit(sel string) {
	b.t.Helper()
	b.do(
		discard(chromedp.Evaluate[bool](`(() => { document.body.dataset.stale = "1"; return true })()`)),
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitReady(chromedp.CSS("body:not([data-stale]) main h1")),
	)
	b.settle()
}

// submitForm submits a form as its (possibly hidden) submit button would,
// and waits for the next page; filters hide Apply when script runs.
func (b *tab) submitForm(sel string) {
	b.t.Helper()
	b.do(
		discard(chromedp.Evaluate[bool](fmt.Sprintf(`(() => { document.body.dataset.stale = "1"; document.querySelector(%q).requestSubmit(); return true })()`, sel))),
		chromedp.WaitReady(chromedp.CSS("body:not([data-stale]) main h1")),
	)
	b.settle()
}

// settle waits until the page's deferred script has run (the document is
// complete), so checks of what the script changes do not race it.
func (b *tab) settle() {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !b.eval(`document.readyState === "complete"`) {
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: %s never finished loading", b.location())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *tab) checked(id string) bool {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`document.getElementById(%q).checked`, id))
}

func (b *tab) disabled(id string) bool {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`document.getElementById(%q).disabled`, id))
}

func (b *tab) exists(sel string) bool {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
}

func (b *tab) wantText(sel string, wants ...string) {
	b.t.Helper()
	got := b.text(sel)
	for _, w := range wants {
		if !strings.Contains(got, w) {
			b.t.Errorf("%s: %q does not contain %q", sel, got, w)
		}
	}
}

// screenshot saves the page at desktop and phone width under
// test-results/console/ (and, with USHER_UPDATE_SCREENSHOTS=1, as
// docs/screenshots/console-NAME-WIDTH.png) and checks the page at both
// widths: axe-core finds no serious or critical accessibility violation, and
// nothing is wider than the screen except inside a scroll container.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	root := repoRoot(b.t)
	dir := filepath.Join(root, "test-results", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	for _, size := range []struct {
		label string
		w, h  int64
	}{{"desktop", 1280, 900}, {"375", 375, 812}} {
		b.do(chromedp.EmulateViewport(size.w, size.h))
		b.checkPage(fmt.Sprintf("%s at %d px", name, size.w))
		png := run(b, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, name+"-"+size.label+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		if os.Getenv("USHER_UPDATE_SCREENSHOTS") == "1" {
			file := name
			if !strings.HasPrefix(file, "console-") {
				file = "console-" + file
			}
			docs := filepath.Join(root, "docs", "screenshots", file+"-"+size.label+".png")
			if err := os.WriteFile(docs, png, 0o644); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	b.do(chromedp.EmulateViewport(1280, 900))
}

// checkPage runs the page checks of screenshot at the current width.
func (b *tab) checkPage(where string) {
	b.t.Helper()
	for _, v := range b.axeViolations() {
		b.t.Errorf("%s: accessibility: %s", where, v)
	}
	for _, o := range b.overflows() {
		b.t.Errorf("%s: layout: %s", where, o)
	}
}

// axeVersion is the axe-core release scripts/test installs from the npm
// registry; bump both together.
const axeVersion = "4.11.0"

// axeScript is axe-core's axe.min.js, read once. A missing copy fails the
// test: scripts/test installs it.
func axeScript(t *testing.T) string {
	t.Helper()
	axeOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			axeErr = err
			return
		}
		path := filepath.Join(cache, "usher", "axe-core-"+axeVersion, "node_modules", "axe-core", "axe.min.js")
		b, err := os.ReadFile(path)
		if err != nil {
			axeErr = fmt.Errorf("axe-core %s is needed by the console's browser tests and is missing (%v); run ./scripts/test, which installs it with npm", axeVersion, err)
			return
		}
		axeSource = string(b)
	})
	if axeErr != nil {
		t.Fatal(axeErr)
	}
	return axeSource
}

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

// axeViolations runs axe-core on the page as it is now and lists its
// serious and critical violations, each with the elements it found.
func (b *tab) axeViolations() []string {
	b.t.Helper()
	src := axeScript(b.t)
	if !b.eval(`typeof window.axe === "object"`) {
		// DevTools evaluation is not subject to the page's CSP, which
		// allows only the console's own scripts.
		b.do(discard(chromedp.Evaluate[bool](src + ";true")))
	}
	return run(b, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ["violations"]}).then((r) =>
  r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) =>
    v.impact + " " + v.id + ": " + v.help + " — " + v.nodes.slice(0, 4).map((n) => n.target.join(" ") + " (" + n.failureSummary.replace(/\s+/g, " ") + ")").join("; ")))`, chromedp.EvalAwaitPromise))
}

// overflows lists what sticks out of the screen sideways: the page itself,
// and any element whose right edge passes the screen's without a scroll
// container (overflow-x auto or scroll) around it.
func (b *tab) overflows() []string {
	b.t.Helper()
	return run(b, chromedp.Evaluate[[]string](`(() => {
  const vw = document.documentElement.clientWidth, out = [];
  const over = document.documentElement.scrollWidth - vw;
  if (over > 0) out.push("the page is " + over + " px wider than the screen");
  const scrolls = (e) => { for (let p = e.parentElement; p && p !== document.documentElement; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX; if (o === "auto" || o === "scroll") return true } return false };
  for (const e of document.body.querySelectorAll("*")) {
    const r = e.getBoundingClientRect();
    if (r.width < 2 || r.height < 2 || r.right <= vw + 1) continue;
    if (scrolls(e)) continue;
    const name = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "");
    out.push(name + " ends at " + Math.round(r.right) + " px, past the screen's " + vw);
    if (out.length > 5) break;
  }
  return out;
})()`))
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestConsoleInBrowser drives the console in Chromium the way an admin
// would, and checks what each person sees against what is stored.
func TestConsoleInBrowser(t *testing.T) {
	s := newSite(t)
	browser := newBrowser(t)
	ben, ms := s.users["ben"], s.ms
	benAccess := fmt.Sprintf("/users/%d/access", ben.ID)

	t.Run("WrongPasswordIsRefused", func(t *testing.T) {
		b := s.window(t, browser)
		b.open("/signin")
		b.screenshot("signin")
		b.do(chromedp.SetValue(chromedp.CSS("#email"), "ada@acme.test"), chromedp.SetValue(chromedp.CSS("#password"), "not the password"))
		b.submit(`form[action="/signin"] button[type=submit]`)
		b.wantText(".errors", "The email or password is wrong")
		if strings.Contains(b.location(), "/users") {
			t.Fatal("a wrong password got past the sign-in page")
		}
	})

	ada := s.person(t, browser, "ada")

	t.Run("SignInLandsOnUsers", func(t *testing.T) {
		if loc := ada.location(); loc != s.url+"/" {
			t.Fatalf("after sign-in: %s, want the dashboard at /", loc)
		}
		ada.wantText("main h1", "Dashboard")
		ada.wantText(fmt.Sprintf("#contract-%d", ms.ID), "Model Studio", "MS-1")
		ada.wantText(fmt.Sprintf("#contract-%d .bought", ms.ID), "5")
		ada.screenshot("dashboard-small")
		ada.open("/users")
		ada.wantText("main h1", "Users")
		ada.wantText("header nav", "Users", "Subscriptions", "Audit log", "My access")
		ada.wantText(".who", "ada@acme.test")
		if n := ada.evalInt(`document.querySelectorAll("table.users tbody tr").length`); n != 4 {
			t.Errorf("users listed: got %d, want 4", n)
		}
		ada.screenshot("users")
	})

	t.Run("PhonesFoldTheNavigationBehindAMenuButton", func(t *testing.T) {
		ada.do(chromedp.EmulateViewport(375, 812))
		defer ada.do(chromedp.EmulateViewport(1280, 900))
		if ada.visible("header nav") || !ada.visible("#menu-button") {
			t.Fatal("at 375 px the navigation shows, or the Menu button does not")
		}
		ada.do(chromedp.Click(chromedp.CSS("#menu-button")))
		if !ada.visible("header nav") || !ada.eval(`document.getElementById("menu-button").getAttribute("aria-expanded") === "true"`) {
			t.Fatal("the Menu button does not open the navigation")
		}
		ada.wantText("header nav", "Users", "Subscriptions", "Audit log", "My access")
		ada.do(chromedp.Click(chromedp.CSS("#menu-button")))
		if ada.visible("header nav") {
			t.Error("the Menu button does not close the navigation")
		}
		ada.do(chromedp.EmulateViewport(1280, 900))
		if !ada.visible("header nav") || ada.visible("#menu-button") {
			t.Error("at 1280 px the navigation is folded away")
		}
		// A favicon, so the browser does not ask for a missing one.
		if got := run(ada, chromedp.Evaluate[string](`fetch("/favicon.ico").then(r => r.status + " " + r.headers.get("Content-Type"))`, chromedp.EvalAwaitPromise)); got != "200 image/svg+xml" {
			t.Errorf("/favicon.ico: %s", got)
		}
	})

	t.Run("SearchFindsOneUser", func(t *testing.T) {
		ada.do(chromedp.SetValue(chromedp.CSS("#q"), "bak"))
		ada.submitForm(`form.users-filters`)
		if n := ada.evalInt(`document.querySelectorAll("table.users tbody tr").length`); n != 1 {
			t.Fatalf("rows for \"bak\": got %d, want 1", n)
		}
		ada.wantText("table.users tbody", "Ben Baker", "ben@acme.test", "Edit Access")
	})

	t.Run("AssignAProductWithTwoServicesAndABenefit", func(t *testing.T) {
		ada.submit(`table.users tbody a.action`)
		ada.wantText("main h1", "Edit Access", "Ben Baker")
		ada.wantText(`.tabs a[aria-current="page"]`, "Products & Services")
		ada.wantText(fmt.Sprintf("section[aria-labelledby='c-%d'] .seats", ms.ID), "3 of 5 seats available")
		if ada.checked(fmt.Sprintf("assign-%d", ms.ID)) {
			t.Fatal("Ben's Assign box on MS-1 is ticked before anything was saved")
		}
		// The services are folded away behind the contract's arrow.
		svc := fmt.Sprintf("service-%d-rendering", ms.ID)
		if ada.eval(fmt.Sprintf(`document.getElementById(%q).offsetParent !== null`, svc)) {
			t.Fatalf("services are visible before the arrow was used, on %s: %s", ada.location(), run(ada, chromedp.Evaluate[string](`document.querySelector("button.toggle") ? document.querySelector("button.toggle").outerHTML : document.body.innerHTML.slice(0, 500)`)))
		}
		ada.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`button.toggle[aria-controls="products-%d"]`, ms.ID))))
		if !ada.eval(fmt.Sprintf(`document.querySelector('button.toggle[aria-controls="products-%d"]').getAttribute("aria-expanded") === "true"`, ms.ID)) {
			t.Fatal("the arrow does not say the services are shown")
		}
		// Ticking a service ticks the contract's Assign too.
		ada.do(
			chromedp.Click(chromedp.CSS("#service-"+fmt.Sprint(ms.ID)+"-cloud_storage")),
			chromedp.Click(chromedp.CSS("#"+svc)),
		)
		if !ada.checked(fmt.Sprintf("assign-%d", ms.ID)) {
			t.Fatal("ticking a service did not tick the contract's Assign")
		}
		ada.screenshot("access-products")
		ada.submit("#save")
		ada.wantText(".message", "saved")
		ada.wantText(fmt.Sprintf("section[aria-labelledby='c-%d'] .seats", ms.ID), "2 of 5 seats available")
		if !ada.checked(fmt.Sprintf("assign-%d", ms.ID)) || !ada.checked(svc) || ada.checked(fmt.Sprintf("service-%d-generative", ms.ID)) {
			t.Error("after saving, the page does not show the seat with cloud storage and rendering only")
		}
		got := s.accessOf("ben")[ms.ID]
		if !got.Assigned || !sameSet(got.Services, []string{"cloud_storage", "rendering"}) {
			t.Fatalf("stored: assigned %v services %v, want a seat with cloud_storage and rendering", got.Assigned, got.Services)
		}

		ada.submit(`.tabs a[href$="tab=benefits"]`)
		ada.wantText(`.tabs a[aria-current="page"]`, "Benefits")
		ada.do(
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`button.toggle[aria-controls="benefits-%d"]`, ms.ID))),
			chromedp.Click(chromedp.CSS(fmt.Sprintf("#benefit-%d-web_support", ms.ID))),
		)
		ada.screenshot("access-benefits")
		ada.submit("#save")
		ada.wantText(".message", "saved")
		if !ada.checked(fmt.Sprintf("benefit-%d-web_support", ms.ID)) || ada.checked(fmt.Sprintf("benefit-%d-phone_support", ms.ID)) {
			t.Error("after saving, the Benefits tab does not show web support only")
		}
		got = s.accessOf("ben")[ms.ID]
		if !sameSet(got.Benefits, []string{"web_support"}) || !sameSet(got.Services, []string{"cloud_storage", "rendering"}) {
			t.Fatalf("stored: benefits %v services %v; the Benefits tab must leave services alone", got.Benefits, got.Services)
		}
	})

	t.Run("ClearOneServiceAndSave", func(t *testing.T) {
		ada.open(benAccess + "?tab=products")
		// With the keyboard: Space on the arrow unfolds the services, and
		// the focused control shows a visible outline.
		toggle := fmt.Sprintf(`button.toggle[aria-controls="products-%d"]`, ms.ID)
		ada.do(chromedp.Focus(chromedp.CSS(toggle)), chromedp.SendKeys(chromedp.CSS(toggle), " "))
		if !ada.eval(fmt.Sprintf(`document.querySelector('%s').getAttribute("aria-expanded") === "true"`, toggle)) {
			t.Fatal("Space on the arrow did not unfold the services")
		}
		// The console's own ring (3px solid), not the browser's thin default.
		if style := run(ada, chromedp.Evaluate[string](`(() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + " " + s.outlineWidth })()`)); style != "solid 3px" {
			t.Errorf("the focused arrow's outline is %q, want the console's solid 3px ring", style)
		}
		ada.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("#service-%d-rendering", ms.ID))))
		ada.submit("#save")
		ada.wantText(".message", "saved")
		got := s.accessOf("ben")[ms.ID]
		if !got.Assigned || !sameSet(got.Services, []string{"cloud_storage"}) || !sameSet(got.Benefits, []string{"web_support"}) {
			t.Fatalf("stored: assigned %v services %v benefits %v; want the seat with cloud_storage and web_support", got.Assigned, got.Services, got.Benefits)
		}
		if ada.checked(fmt.Sprintf("service-%d-rendering", ms.ID)) || !ada.checked(fmt.Sprintf("service-%d-cloud_storage", ms.ID)) {
			t.Error("the page does not show rendering cleared and cloud storage kept")
		}
	})

	t.Run("ThePersonsPageFromTheUsersList", func(t *testing.T) {
		ada.open("/users")
		ada.submit(fmt.Sprintf(`table.users a[href="/users/%d"]`, ben.ID))
		ada.wantText("main h1", "Ben Baker")
		ada.wantText("main .person-meta", "ben@acme.test", "Active")
		ada.wantText("table.person-seats tbody", "Model Studio", "MS-1", "Cloud storage", "Web support")
		ada.wantText("#roles", "No roles")
		ada.wantText("table.audit tbody", "services.set", "ada@acme.test")
		maxPage := fmt.Sprintf("/users/%d", s.users["max"].ID)
		ada.open(maxPage)
		ada.wantText("#roles", "Contract manager of Model Studio MS-1")
		ada.open(benAccess + "?tab=products")
	})

	t.Run("AddAUserGrantARoleDisableAndDelete", func(t *testing.T) {
		ada.open("/users")
		ada.do(chromedp.Click(chromedp.CSS("details.add-user summary")),
			chromedp.SetValue(chromedp.CSS("#new-name"), "Nia New"), chromedp.SetValue(chromedp.CSS("#new-email"), "nia@acme.test"))
		ada.submit("#add-user-submit")
		ada.wantText("main h1", "Nia New")
		ada.wantText(".message", "Nia New has been added")
		nia, err := s.auth.FindUser(context.Background(), "nia@acme.test", s.acct.ID)
		if err != nil {
			t.Fatalf("the added user is not stored: %v", err)
		}
		// Contract manager of DP-1.
		ada.do(chromedp.SetValue(chromedp.CSS("#role"), fmt.Sprintf("contract_manager:%d", s.dp.ID)))
		ada.submit("#grant-role")
		ada.wantText(".message", "Contract manager role granted")
		ada.wantText("#roles", "Contract manager of DraftPro DP-1")
		ada.screenshot("person-admin")
		// Rename, then disable after the console's confirmation.
		ada.do(chromedp.SetValue(chromedp.CSS("#name"), "Nia Newer"), chromedp.Click(chromedp.CSS("#reclaim_exempt")))
		ada.submit("#save-user")
		ada.wantText("main h1", "Nia Newer")
		ada.wantText("#person-exempt", "Exempt from reclaim")
		ada.do(chromedp.Click(chromedp.CSS("#disable-user")))
		ada.wantText("#confirm-text", "Disable nia@acme.test?")
		ada.submit("#confirm-ok")
		ada.wantText("#person-status", "Disabled")
		got, err := s.access.User(context.Background(), usher.System(s.acct.ID), nia.ID)
		if err != nil || got.Status != usher.UserDisabled || got.Name != "Nia Newer" || len(got.Roles) != 1 || !got.ReclaimExempt {
			t.Fatalf("stored: %+v %v, want Nia Newer, disabled, exempt from reclaim, with one role", got, err)
		}
		ada.do(chromedp.Click(chromedp.CSS("#delete-user")))
		ada.submit("#confirm-ok")
		ada.wantText(".message", "Nia Newer has been deleted")
		if _, err := s.access.User(context.Background(), usher.System(s.acct.ID), nia.ID); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("after delete: %v, want not found", err)
		}
		ada.open(benAccess + "?tab=products")
	})

	t.Run("UnassignFromEditAccess", func(t *testing.T) {
		before := s.seatsUsed(ms.ID)
		ada.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("#assign-%d", ms.ID))))
		ada.submit("#save")
		ada.wantText(".message", "saved")
		got := s.accessOf("ben")[ms.ID]
		if got.Assigned || len(got.Services) != 0 {
			t.Fatalf("stored: assigned %v services %v, want no seat", got.Assigned, got.Services)
		}
		if after := s.seatsUsed(ms.ID); after != before-1 {
			t.Fatalf("seats used: got %d, want %d", after, before-1)
		}
		ada.wantText(fmt.Sprintf("section[aria-labelledby='c-%d'] .seats", ms.ID), "3 of 5 seats available")
	})

	t.Run("AuditLogFiltersByUserAndAction", func(t *testing.T) {
		ada.open("/audit-log")
		ada.wantText("table.audit", "seat.unassign", "ben@acme.test")
		ada.do(chromedp.SetValue(chromedp.CSS("#user"), "ben@acme.test"), chromedp.SetValue(chromedp.CSS("#action"), "services.set"))
		ada.submitForm(`form.filters`)
		if n := ada.evalInt(`document.querySelectorAll("table.audit tbody tr").length`); n != 1 {
			t.Fatalf("services.set entries about Ben: got %d, want 1 (the cleared rendering)", n)
		}
		ada.wantText("table.audit tbody", "ada@acme.test", "services.set", "ben@acme.test", "Model Studio MS-1")
		ada.screenshot("audit-log")
	})

	t.Run("SubscriptionsShowSeats", func(t *testing.T) {
		ada.open("/subscriptions")
		ada.wantText(fmt.Sprintf("#sub-%d", ms.ID), "Model Studio", "MS-1", "Premium")
		ada.wantText(fmt.Sprintf("#sub-%d .seats-bought", ms.ID), "5")
		ada.wantText(fmt.Sprintf("#sub-%d .seats-used", ms.ID), "2")
		ada.wantText(fmt.Sprintf("#sub-%d .seats-available", ms.ID), "3")
		if ada.exists("table.subscriptions form") {
			t.Error("Ada holds no seat but is offered to release one")
		}
		ada.screenshot("subscriptions")
	})

	t.Run("ContractManagerReleasesOwnSeat", func(t *testing.T) {
		maxTab := s.person(t, browser, "max")
		maxTab.open("/subscriptions")
		if maxTab.exists(fmt.Sprintf("#sub-%d", s.dp.ID)) {
			t.Error("Max sees contract DP-1, which he has no role on")
		}
		maxTab.wantText(fmt.Sprintf("#sub-%d .seats-used", ms.ID), "2")
		maxTab.wantText(fmt.Sprintf("#sub-%d form button", ms.ID), "Release my seat")
		maxTab.screenshot("subscriptions-manager")
		// The console's own confirmation window asks, never the browser's
		// confirm(): Cancel keeps the seat, the window's button releases it.
		maxTab.eval(`(() => { window.confirm = () => { throw new Error("confirm() used") }; return true })()`)
		maxTab.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("#sub-%d form button", ms.ID))))
		if !maxTab.eval(`document.getElementById("confirm-dialog").open`) {
			t.Fatal("Release my seat opened no confirmation window")
		}
		maxTab.wantText("#confirm-text", "Release your seat on contract MS-1?")
		maxTab.screenshot("subscriptions-confirm")
		maxTab.do(chromedp.Click(chromedp.CSS("#confirm-cancel")))
		if maxTab.eval(`document.getElementById("confirm-dialog").open`) || !s.accessOf("max")[ms.ID].Assigned {
			t.Fatal("Cancel did not close the window, or released the seat")
		}
		maxTab.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("#sub-%d form button", ms.ID))))
		maxTab.submit("#confirm-ok")
		maxTab.wantText(".message", "Your seat on contract MS-1 has been released")
		maxTab.wantText(fmt.Sprintf("#sub-%d .seats-used", ms.ID), "1")
		if maxTab.exists(fmt.Sprintf("#sub-%d form", ms.ID)) {
			t.Error("the Release my seat button is still offered")
		}
		if s.accessOf("max")[ms.ID].Assigned {
			t.Fatal("Max still holds a seat of MS-1")
		}
	})

	t.Run("CoordinatorCannotChangeAnotherContractsSeats", func(t *testing.T) {
		cora := s.person(t, browser, "cora")
		cora.wantText("header nav", "Users", "Subscriptions", "My access")
		if strings.Contains(cora.text("header nav"), "Audit log") {
			t.Error("a software coordinator is offered the audit log")
		}
		// Ben's access: only DP-1, which she coordinates, is there.
		cora.open(benAccess)
		if cora.exists(fmt.Sprintf("#assign-%d", ms.ID)) {
			t.Error("Cora is shown MS-1 on Ben's access")
		}
		if cora.disabled(fmt.Sprintf("assign-%d", s.dp.ID)) {
			t.Error("Cora cannot tick DP-1, which she coordinates")
		}
		// Her own access: her MS-1 seat is shown, read only.
		cora.open(fmt.Sprintf("/users/%d/access", s.users["cora"].ID))
		if !cora.checked(fmt.Sprintf("assign-%d", ms.ID)) || !cora.disabled(fmt.Sprintf("assign-%d", ms.ID)) {
			t.Fatal("Cora's own MS-1 seat is not shown ticked and disabled")
		}
		cora.wantText(fmt.Sprintf("section[aria-labelledby='c-%d'] .meta", ms.ID), "read only")
		cora.screenshot("access-readonly")
		// Forcing the disabled box on and saving changes nothing on MS-1.
		cora.eval(fmt.Sprintf(`(() => { const b = document.getElementById("assign-%d"); b.disabled = false; b.checked = false; return true })()`, ms.ID))
		cora.submit("#save")
		if got := s.accessOf("cora")[ms.ID]; !got.Assigned || !sameSet(got.Services, []string{"cloud_storage"}) {
			t.Fatalf("Cora changed her MS-1 seat: assigned %v services %v", got.Assigned, got.Services)
		}
		cora.open("/subscriptions")
		if cora.exists(fmt.Sprintf("#sub-%d", ms.ID)) {
			t.Error("Cora's subscriptions list shows MS-1")
		}
		cora.wantText(fmt.Sprintf("#sub-%d", s.dp.ID), "DP-1")
		cora.open("/audit-log")
		cora.wantText("main h1", "Forbidden")
	})

	t.Run("CrossSitePostIsRefused", func(t *testing.T) {
		// Another origin (another port) whose page posts to Usher as soon as
		// it loads, riding on Ada's session cookie.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>Win a prize</title>
<form method="post" action="%s%s"><input name="tab" value="products"><input name="assign" value="%d"></form>
<script>document.forms[0].submit()</script>`, s.url, benAccess, ms.ID)
		}))
		defer evil.Close()
		before := s.seatsUsed(ms.ID)
		ada.do(
			chromedp.Navigate(evil.URL),
			chromedp.WaitReady(chromedp.CSS("main h1")),
		)
		ada.wantText("main h1", "Request refused")
		ada.wantText("main", "came from another site", "Nothing was changed")
		if s.accessOf("ben")[ms.ID].Assigned || s.seatsUsed(ms.ID) != before {
			t.Fatal("the cross-site form assigned Ben a seat")
		}
	})

	t.Run("OneTimeLinkSetsThePasswordAndSignsIn", func(t *testing.T) {
		token, _, err := s.auth.CreatePasswordLink(context.Background(), s.acct.ID, ben.ID)
		if err != nil {
			t.Fatal(err)
		}
		b := s.window(t, browser)
		b.open("/set-password?token=" + token)
		b.wantText("main", "Choose the password for", "ben@acme.test")
		b.screenshot("set-password")
		b.do(chromedp.SetValue(chromedp.CSS("#password"), "bens own password"), chromedp.SetValue(chromedp.CSS("#repeat"), "bens own password"))
		b.submit(`form[action="/set-password"] button[type=submit]`)
		b.wantText("main h1", "My access")
		b.wantText(".who", "ben@acme.test")
		if _, _, err := s.auth.SignIn(context.Background(), "ben@acme.test", "bens own password", ""); err != nil {
			t.Fatalf("sign in with the password set through the link: %v", err)
		}
		b.open("/set-password?token=" + token)
		b.wantText("main", "used already")
	})

	t.Run("SignOutEndsTheSession", func(t *testing.T) {
		ada.open("/users")
		ada.submit(`form.signout button`)
		ada.wantText(".message", "You have signed out")
		ada.open("/users")
		if !strings.Contains(ada.location(), "/signin") {
			t.Fatalf("after signing out, /users shows %s, want the sign-in page", ada.location())
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
