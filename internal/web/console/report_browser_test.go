package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/mail/smtptest"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/console"
)

// reportSite is a running Usher server on SQLite with usage, notifications
// and a real SMTP server (aiosmtpd). Its seats were assigned four months
// ago:
//
//   - Ada, primary admin; Sam, secondary admin; neither holds a seat;
//   - Ina Idle holds Model Studio MS-1 (Premium) and never used it;
//   - Ivan Inert holds MS-1 and DraftPro DP-1 (Standard), never used;
//   - Uma Using holds MS-1 and used it yesterday;
//   - Bea Basic holds CivilWorks CW-1, a Basic plan without usage data.
//
// Over 3 months, Ina and Ivan are inactive: 2 users, 3 seats.
type reportSite struct {
	*site
	usage   *usage.Service
	notify  *notify.Service
	reclaim *reclaim.Service
	mailbox string
	cw      usher.Subscription
	// offset moves the notification service's clock, so a weekly email
	// falls due without waiting a week.
	offset atomic.Int64
}

func newReportSite(t *testing.T) *reportSite {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	setUp := time.Now().AddDate(0, -4, 0)
	var seeding atomic.Bool
	seeding.Store(true)
	clock := func() time.Time {
		if seeding.Load() {
			return setUp
		}
		return time.Now()
	}
	rs := &reportSite{site: &site{t: t, access: access.New(db.Access(), clock), users: map[string]usher.User{}}}
	s := rs.site
	s.auth = auth.New(db.Auth(), auth.Config{Params: auth.Params{Memory: 64, Time: 1, Threads: 1}})

	acct, ada, _, err := s.access.CreateAccount(ctx, access.NewAccount{Name: "Acme Ltd", AdminEmail: "ada@acme.test", AdminName: "Ada Admin", TimeZone: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	s.acct, s.users["ada"] = acct, ada
	sys := usher.System(acct.ID)
	for _, name := range []string{"Sam Second", "Ina Idle", "Ivan Inert", "Uma Using", "Bea Basic"} {
		email := strings.ToLower(strings.Fields(name)[0]) + "@acme.test"
		u, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		s.users[strings.ToLower(strings.Fields(name)[0])] = u
	}
	for _, u := range s.users {
		if err := s.auth.SetPassword(ctx, acct.ID, u.ID, password); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.access.GrantRole(ctx, sys, usher.RoleGrant{UserID: s.users["sam"].ID, Role: usher.RoleSecondaryAdmin}); err != nil {
		t.Fatal(err)
	}
	no := false
	term := func(s string) usher.Date { d, _ := usher.ParseDate(s); return d }
	contract := func(product string, plan usher.Plan, seats int, number string) usher.Subscription {
		sub, err := s.access.CreateSubscription(ctx, sys, access.NewSubscription{
			Product: product, Plan: plan, Seats: &seats, ContractNumber: number,
			TermStart: term("2026-01-01"), TermEnd: term("2027-12-31"), ContractManagerID: ada.ID, AssignManagerSeat: &no,
		})
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	s.ms = contract("modelstudio", usher.PlanPremium, 5, "MS-1")
	s.dp = contract("draftpro", usher.PlanStandard, 3, "DP-1")
	rs.cw = contract("civilworks", usher.PlanBasic, 2, "CW-1")
	for _, a := range []struct {
		user string
		sub  usher.Subscription
	}{{"ina", s.ms}, {"ivan", s.ms}, {"ivan", s.dp}, {"uma", s.ms}, {"bea", rs.cw}} {
		if err := s.access.Assign(ctx, sys, s.users[a.user].ID, a.sub.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	seeding.Store(false)

	rs.usage = usage.New(db.Usage(), usage.Config{})
	used := usage.Item{Line: 1, Event: usage.Event{User: "uma@acme.test", Product: "modelstudio", At: time.Now().Add(-24 * time.Hour)}}
	if res, err := rs.usage.Ingest(ctx, sys, func(yield func(usage.Item) bool) { yield(used) }); err != nil || res.Accepted != 1 {
		t.Fatalf("ingest Uma's use: %+v %v", res, err)
	}

	addr, mailbox := smtptest.Start(t)
	rs.mailbox = mailbox
	mailer, err := mail.Open("smtp://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	// The server's URL goes into the emails, so the handler comes after it.
	var handler atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rs.notify = notify.New(db.Notify(), mailer, rs.usage, notify.Config{
		BaseURL: srv.URL, From: "Usher <usher@acme.test>", Logger: logger,
		Now: func() time.Time { return time.Now().Add(time.Duration(rs.offset.Load())) },
	})
	rs.reclaim = reclaim.New(db.Reclaim(), s.access, mailer, reclaim.Config{
		BaseURL: srv.URL, From: "Usher <usher@acme.test>", Logger: logger,
		Now: func() time.Time { return time.Now().Add(time.Duration(rs.offset.Load())) },
	})
	ui, err := console.New(console.Config{Access: s.access, Auth: s.auth, Usage: rs.usage, Notify: rs.notify, Reclaim: rs.reclaim, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	handler.Store(web.NewHandler(web.Config{Access: s.access, Usage: rs.usage, Notify: rs.notify, Reclaim: rs.reclaim, Console: ui, Logger: logger}))
	return rs
}

func (rs *reportSite) actor(name string) usher.Actor {
	rs.t.Helper()
	a, err := rs.access.ActorFor(context.Background(), rs.acct.ID, rs.users[name].ID)
	if err != nil {
		rs.t.Fatal(err)
	}
	return a
}

// today is the date in the account's time zone.
func (rs *reportSite) today() usher.Date {
	return usher.DateOf(time.Now().In(rs.acct.Location()))
}

// rows lists the report's rows as "Name|Contract|Status".
func (b *tab) reportRows() []string {
	b.t.Helper()
	raw := run(b, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("table.report tbody tr")).map(tr =>
		tr.querySelector("th.person a").textContent.trim() + "|" + tr.querySelector(".contract-number").textContent.trim() + "|" + tr.querySelector("td.status").textContent.trim()).join("\n")`))
	if raw == "" {
		return nil
	}
	return strings.Split(raw, "\n")
}

func (b *tab) visible(sel string) bool {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e !== null && e.offsetParent !== null })()`, sel))
}

// TestInactiveUsersFromEmailInBrowser follows a usage notification email
// from the SMTP server into the Usage Report and unassigns two inactive
// users there.
func TestInactiveUsersFromEmailInBrowser(t *testing.T) {
	rs := newReportSite(t)
	ctx := context.Background()
	ada := rs.actor("ada")
	if _, _, err := rs.notify.Set(ctx, ada, notify.Input{StartDate: rs.today(), Frequency: notify.Weekly, Range: usage.Range3m}); err != nil {
		t.Fatal(err)
	}
	// Eight days on, the first weekly email is due.
	rs.offset.Store(int64(8 * 24 * time.Hour))
	if n, err := rs.notify.PlanDue(ctx); err != nil || n != 1 {
		t.Fatalf("plan due emails: %d %v, want 1", n, err)
	}
	if n, err := rs.notify.SendDue(ctx, "browser-test", 10); err != nil || n != 1 {
		t.Fatalf("send due emails: %d %v, want 1 delivered", n, err)
	}
	msgs := smtptest.WaitMessages(t, rs.mailbox, 1, 10*time.Second)
	text := textPart(t, msgs[0])
	m := regexp.MustCompile(`View inactive users:\s*(\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("the email has no View inactive users link:\n%s", text)
	}
	if !strings.HasPrefix(m[1], rs.url+"/reports/usage?snapshot=notification-") {
		t.Fatalf("link: got %s, want the report as of the email", m[1])
	}
	// The report as of the email has its own test
	// (TestReportAsOfEmailInBrowser); this one works on the report now.
	link := rs.url + "/reports/usage?status=inactive&range=3m"

	browser := newBrowser(t)
	b := rs.window(t, browser)

	t.Run("LinkAsksToSignInThenShowsTheFilteredReport", func(t *testing.T) {
		b.do(chromedp.Navigate(link), chromedp.WaitReady(chromedp.CSS("main h1")))
		if !strings.Contains(b.location(), "/signin") {
			t.Fatalf("signed out, the link opened %s, want the sign-in page", b.location())
		}
		b.do(chromedp.SetValue(chromedp.CSS("#email"), "ada@acme.test"), chromedp.SetValue(chromedp.CSS("#password"), password))
		b.submit(`form[action="/signin"] button[type=submit]`)
		if loc := b.location(); loc != link {
			t.Fatalf("after sign-in: %s, want back at %s", loc, link)
		}
		b.wantText("main h1", "Usage Report")
		b.wantText("#report-heading", "Inactive users over the last 3 months")
		if got := run(b, chromedp.Evaluate[string](`document.getElementById("status").selectedOptions[0].textContent`)); got != "Inactive users" {
			t.Errorf("the Users filter shows %q, want Inactive users", got)
		}
		want := []string{"Ina Idle|MS-1|Inactive · never used", "Ivan Inert|MS-1|Inactive · never used", "Ivan Inert|DP-1|Inactive · never used"}
		if got := b.reportRows(); strings.Join(got, ";") != strings.Join(want, ";") {
			t.Fatalf("rows: got %q, want %q", got, want)
		}
		b.wantText(".totals", "2 users holding 3 seats")
		b.wantText("#processed", "Usage data last processed")
		if !b.visible("#selection-bar") || !b.disabled("unassign") {
			t.Error("before anything is selected the bar should stand in place with Unassign disabled")
		}
	})

	t.Run("SelectTwoAndUnassignAfterConfirming", func(t *testing.T) {
		ina := fmt.Sprintf("#seat-%d-%d", rs.users["ina"].ID, rs.ms.ID)
		ivan := fmt.Sprintf("#seat-%d-%d", rs.users["ivan"].ID, rs.ms.ID)
		// One with the mouse, one with the keyboard.
		b.do(chromedp.Click(chromedp.CSS(ina)), chromedp.Focus(chromedp.CSS(ivan)), chromedp.SendKeys(chromedp.CSS(ivan), " "))
		if b.disabled("unassign") {
			t.Fatal("selecting two users leaves Unassign disabled")
		}
		b.wantText("#selection-count", "2 users selected, holding 2 seats")
		if !b.eval(`document.getElementById("select-all").indeterminate`) {
			t.Error("select-all does not show that some rows are selected")
		}
		b.screenshot("usage-report-selected")
		b.do(chromedp.Click(chromedp.CSS("#unassign")))
		if !b.eval(`document.getElementById("unassign-dialog").open`) {
			t.Fatal("Unassign opened no confirmation window")
		}
		if !b.eval(`document.getElementById("unassign-dialog").contains(document.activeElement)`) {
			t.Error("the keyboard focus is not in the confirmation window")
		}
		b.wantText("#unassign-dialog-text", "Unassign 2 seats from 2 users?")
		b.wantText("#unassign-dialog-list", "Ina Idle · Model Studio MS-1", "Ivan Inert · Model Studio MS-1")
		b.screenshot("usage-report-confirm")
		// Cancel changes nothing.
		b.do(chromedp.Click(chromedp.CSS("#unassign-cancel")))
		if b.eval(`document.getElementById("unassign-dialog").open`) || !rs.accessOf("ina")[rs.ms.ID].Assigned {
			t.Fatal("Cancel did not close the window, or unassigned")
		}
		b.do(chromedp.Click(chromedp.CSS("#unassign")))
		b.submit("#unassign-confirm")
		b.wantText(".message", "Unassigned 2 seats from 2 users")
		if loc := b.location(); !strings.Contains(loc, "status=inactive") || !strings.Contains(loc, "range=3m") {
			t.Errorf("after unassigning: %s, want the same filtered report", loc)
		}
		if got := b.reportRows(); strings.Join(got, ";") != "Ivan Inert|DP-1|Inactive · never used" {
			t.Errorf("rows after unassigning: %q, want Ivan's DP-1 only", got)
		}
		if rs.accessOf("ina")[rs.ms.ID].Assigned || rs.accessOf("ivan")[rs.ms.ID].Assigned || !rs.accessOf("ivan")[rs.dp.ID].Assigned {
			t.Fatal("stored: want Ina and Ivan without MS-1 and Ivan still on DP-1")
		}
	})

	t.Run("SubscriptionsShowTheSeatsFreed", func(t *testing.T) {
		b.open("/subscriptions")
		b.wantText(fmt.Sprintf("#sub-%d .seats-used", rs.ms.ID), "1")
		b.wantText(fmt.Sprintf("#sub-%d .seats-available", rs.ms.ID), "4")
		b.wantText(fmt.Sprintf("#sub-%d .seats-used", rs.dp.ID), "1")
	})

	t.Run("NotificationsPageListsTheEmail", func(t *testing.T) {
		b.open("/usage-notifications")
		b.wantText("table.runs tbody", "3 months", "2 users, 3 seats", "Delivered")
	})
}

// TestUsageReportInBrowser checks the report opened directly: everyone,
// filters, sorting, the CSV export, the confirmation page that works
// without the script, and a refused unassign that changes nothing.
func TestUsageReportInBrowser(t *testing.T) {
	rs := newReportSite(t)
	browser := newBrowser(t)
	ada := rs.person(t, browser, "ada")

	t.Run("OpenedDirectlyShowsEveryone", func(t *testing.T) {
		ada.wantText("header nav", "Usage Report", "Usage Notifications")
		ada.open("/reports/usage")
		// Over the default 30 days, seats assigned four months ago and
		// never used are inactive.
		want := []string{"Bea Basic|CW-1|No usage data: not available for this plan", "Ina Idle|MS-1|Inactive · never used", "Ivan Inert|MS-1|Inactive · never used", "Ivan Inert|DP-1|Inactive · never used", "Uma Using|MS-1|Active"}
		if got := ada.reportRows(); strings.Join(got, ";") != strings.Join(want, ";") {
			t.Fatalf("rows: got %q, want %q", got, want)
		}
		ada.wantText("#report-heading", "All users")
		ada.wantText(".totals", "4 users holding 5 seats", "2 inactive users holding 3 inactive seats")
		ada.wantText("table.report tbody", "No usage data", "Never")
		// At 1280 px every column fits: the Status column is in view
		// without scrolling sideways.
		if !ada.eval(`(() => { const w = document.querySelector(".table-wrap"), s = document.querySelector("table.report thead th.status");
			return w.scrollWidth <= w.clientWidth && s.getBoundingClientRect().right <= w.getBoundingClientRect().right })()`) {
			t.Error("at 1280 px the report's Status column is not in view without scrolling")
		}
		// At 375 px the table scrolls in its frame; scrolled to the end,
		// the checkbox and the name stay in view.
		ada.do(chromedp.EmulateViewport(375, 812))
		if !ada.eval(`(() => { const w = document.querySelector(".table-wrap"); w.scrollLeft = w.scrollWidth;
			const left = w.getBoundingClientRect().left, r = document.querySelector("table.report tbody tr");
			return w.scrollLeft > 0 && r.querySelector("th.person").getBoundingClientRect().left >= left && r.querySelector("td.select").getBoundingClientRect().left >= left - 1 })()`) {
			t.Error("at 375 px, scrolled sideways, the report's checkbox and name leave the view")
		}
		ada.do(chromedp.EmulateViewport(1280, 900))
		ada.screenshot("usage-report")
	})

	t.Run("ANameOpensThePersonsPage", func(t *testing.T) {
		ada.open("/reports/usage")
		ada.submit(fmt.Sprintf(`table.report th.person a[href="/users/%d"]`, rs.users["uma"].ID))
		ada.wantText("main h1", "Uma Using")
		yesterday := usher.DateOf(time.Now().In(rs.acct.Location()).Add(-24 * time.Hour)).Human()
		ada.wantText("table.person-seats tbody", "Model Studio", "MS-1", yesterday, "Active")
		if got := ada.text("table.person-seats td.days-used"); got != "1" {
			t.Errorf("days used: %q, want 1", got)
		}
		ada.wantText("#history-heading", "History")
		ada.screenshot("person")
		ada.open("/reports/usage")
	})

	t.Run("FiltersAndSorting", func(t *testing.T) {
		// Both at once: a changed filter applies by itself, one at a time.
		ada.eval(`(() => { document.getElementById("product").value = "modelstudio"; document.getElementById("status").value = "active"; return true })()`)
		ada.submitForm(`form.report-filters`)
		if got := ada.reportRows(); strings.Join(got, ";") != "Uma Using|MS-1|Active" {
			t.Errorf("active Model Studio rows: %q, want Uma's", got)
		}
		ada.open("/reports/usage?q=ivan")
		if n := len(ada.reportRows()); n != 2 {
			t.Errorf("rows matching ivan: %d, want 2", n)
		}
		ada.open("/reports/usage")
		ada.submit(`table.report thead a[href*="sort=-name"]`)
		if got := ada.reportRows(); len(got) != 5 || !strings.HasPrefix(got[0], "Uma Using") {
			t.Errorf("sorted by name, descending: %q", got)
		}
		if got := run(ada, chromedp.Evaluate[string](`document.querySelector("th[aria-sort]").textContent`)); !strings.Contains(got, "Name") {
			t.Errorf("the sorted column is %q, want Name", got)
		}
	})

	t.Run("CSVExportHasTheSameFilters", func(t *testing.T) {
		ada.open("/reports/usage?status=inactive&range=3m")
		csv := run(ada, chromedp.Evaluate[string](`(() => { const x = new XMLHttpRequest(); x.open("GET", document.getElementById("csv").href, false); x.send(); return x.status + "\n" + x.responseText })()`))
		lines := strings.Split(strings.TrimSpace(csv), "\n")
		if lines[0] != "200" || len(lines) != 5 || !strings.HasPrefix(lines[1], "name,email,product") {
			t.Fatalf("CSV export: got %q, want a header and 3 inactive rows", lines)
		}
		for _, l := range lines[2:] {
			if !strings.Contains(l, ",inactive,") {
				t.Errorf("CSV row not inactive: %s", l)
			}
		}
	})

	t.Run("WithoutTheScriptAConfirmationPageAsks", func(t *testing.T) {
		ada.open("/reports/usage?status=inactive&range=3m")
		ada.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("#seat-%d-%d", rs.users["ivan"].ID, rs.dp.ID))))
		// What the form sends without the script: no confirm=1.
		ada.do(
			discard(chromedp.Evaluate[bool](`(() => { document.body.dataset.stale = "1"; document.getElementById("unassign-form").requestSubmit(); return true })()`)),
			chromedp.WaitReady(chromedp.CSS("body:not([data-stale]) main h1")),
		)
		ada.wantText("main h1", "Unassign")
		ada.wantText("#unassign-summary", "Unassign 1 seat from 1 user?")
		ada.wantText(".unassign-list", "Ivan Inert", "DraftPro DP-1")
		if !rs.accessOf("ivan")[rs.dp.ID].Assigned {
			t.Fatal("the confirmation page unassigned already")
		}
		ada.screenshot("usage-report-confirm-page")
		ada.submit(`form.dialog-buttons button[type=submit]`)
		ada.wantText(".message", "Unassigned 1 seat from 1 user")
		if rs.accessOf("ivan")[rs.dp.ID].Assigned {
			t.Fatal("Ivan still holds DP-1")
		}
		// The message is shown once: it lives in the session, not the address.
		ada.open(strings.TrimPrefix(ada.location(), rs.url))
		if ada.exists(".message") {
			t.Errorf("reloading the report repeats the message %q", ada.text(".message"))
		}
	})

	t.Run("MessagesNeverComeFromTheAddress", func(t *testing.T) {
		for _, path := range []string{"/reports/usage?unassigned=500&users=300", "/usage-notifications?done=off", "/subscriptions?released=1"} {
			ada.open(path)
			if ada.exists(".message") {
				t.Errorf("%s shows the message %q", path, ada.text(".message"))
			}
		}
	})

	t.Run("RefusedUnassignChangesNothing", func(t *testing.T) {
		ada.open("/reports/usage")
		ina := fmt.Sprintf("#seat-%d-%d", rs.users["ina"].ID, rs.ms.ID)
		uma := fmt.Sprintf("#seat-%d-%d", rs.users["uma"].ID, rs.ms.ID)
		ada.do(chromedp.Click(chromedp.CSS(ina)), chromedp.Click(chromedp.CSS(uma)))
		// Someone else takes Ina's seat while the page is open.
		sys := usher.System(rs.acct.ID)
		if _, err := rs.access.Unassign(context.Background(), sys, []access.UnassignItem{{UserID: rs.users["ina"].ID, SubscriptionID: rs.ms.ID}}); err != nil {
			t.Fatal(err)
		}
		ada.do(chromedp.Click(chromedp.CSS("#unassign")))
		ada.submit("#unassign-confirm")
		ada.wantText(".errors", "Nothing was unassigned", "Ina Idle, Model Studio MS-1", "holds no seat")
		if !rs.accessOf("uma")[rs.ms.ID].Assigned {
			t.Fatal("Uma lost her seat although the unassign was refused")
		}
		if !ada.eval(fmt.Sprintf(`document.querySelector(%q).checked`, uma)) {
			t.Error("the refused selection is not kept on the page")
		}
	})

	t.Run("SecondaryAdminSeesTheReportButNotNotifications", func(t *testing.T) {
		sam := rs.person(t, browser, "sam")
		nav := sam.text("header nav")
		if !strings.Contains(nav, "Usage Report") || strings.Contains(nav, "Usage Notifications") {
			t.Errorf("a secondary admin's navigation: %q, want the Usage Report without Usage Notifications", nav)
		}
		sam.open("/usage-notifications")
		sam.wantText("main h1", "Forbidden")
		sam.wantText("main", "Only primary admins can set up usage notifications")
		if sam.exists("#setup") || sam.exists("#notification-form") {
			t.Error("a secondary admin is offered Set Up")
		}
		sam.open("/reports/usage")
		if n := len(sam.reportRows()); n != 3 {
			t.Errorf("a secondary admin sees %d rows, want the account's 3 seats left", n)
		}
	})
}

// TestUsageNotificationsInBrowser sets notifications up, edits them and
// turns them off with the switch, checking each message and what is stored.
func TestUsageNotificationsInBrowser(t *testing.T) {
	rs := newReportSite(t)
	browser := newBrowser(t)
	ada := rs.person(t, browser, "ada")
	loc := rs.acct.Location()
	stored := func() notify.Setting {
		t.Helper()
		st, err := rs.notify.Setting(context.Background(), rs.actor("ada"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	start := rs.today().AddDate(0, 0, 1)

	t.Run("SetUpAndTurnOn", func(t *testing.T) {
		ada.open("/usage-notifications")
		ada.wantText("main", "not set up")
		ada.submit("#setup")
		ada.wantText("#notification-form h2", "Set up usage notifications")
		if got := run(ada, chromedp.Evaluate[string](`document.getElementById("start_date").type + " " + document.getElementById("start_date").min`)); got != "date "+rs.today().String() {
			t.Errorf("start date input: %q, want a date picker from today %s", got, rs.today())
		}
		ada.do(
			chromedp.SetValue(chromedp.CSS("#start_date"), start.Format(time.DateOnly)),
			chromedp.SetValue(chromedp.CSS("#frequency"), "weekly"),
			chromedp.SetValue(chromedp.CSS("#range"), "3m"),
		)
		ada.screenshot("usage-notifications-setup")
		ada.submit("#turn-on")
		next := time.Date(start.Year(), start.Month(), start.Day(), notify.DefaultSendHour, 0, 0, 0, loc)
		ada.wantText(".message", "Usage notifications have been turned on", next.Format("2 Jan 2006, 08:00 MST"))
		if ada.text("#switch") != "On" || !ada.eval(`document.getElementById("switch").getAttribute("aria-checked") === "true"`) {
			t.Error("the switch does not show On")
		}
		ada.wantText("#frequency-label", "Every week")
		ada.wantText("#range-label", "3 months")
		ada.wantText("#next-send", next.Format("2 Jan 2006, 08:00 MST"))
		ada.wantText("#no-runs", "No emails have been sent yet")
		st := stored()
		if !st.Enabled || st.Frequency != notify.Weekly || st.Range != usage.Range3m || st.StartDate.String() != start.Format(time.DateOnly) || !st.NextAt.Equal(next) {
			t.Fatalf("stored: %+v", st)
		}
	})

	t.Run("EditAndSave", func(t *testing.T) {
		ada.submit("#edit")
		ada.wantText("#notification-form h2", "Edit usage notifications")
		if got := run(ada, chromedp.Evaluate[string](`document.getElementById("frequency").value + " " + document.getElementById("range").value`)); got != "weekly 3m" {
			t.Errorf("the form shows %q, want the stored weekly 3m", got)
		}
		ada.do(chromedp.SetValue(chromedp.CSS("#frequency"), "monthly"), chromedp.SetValue(chromedp.CSS("#range"), "6m"))
		ada.submit("#save")
		ada.wantText(".message", "Your changes have been saved", "The next email goes on")
		ada.wantText("#frequency-label", "Every month")
		ada.wantText("#range-label", "6 months")
		ada.screenshot("usage-notifications")
		if st := stored(); !st.Enabled || st.Frequency != notify.Monthly || st.Range != usage.Range6m {
			t.Fatalf("stored: %+v, want monthly over 6 months, on", st)
		}
	})

	t.Run("PastStartDateIsRefused", func(t *testing.T) {
		ada.submit("#edit")
		ada.do(discard(chromedp.Evaluate[bool](`(() => { const d = document.getElementById("start_date"); d.min = ""; d.value = "2020-01-01"; return true })()`)))
		ada.submit("#save")
		ada.wantText(".errors", "Nothing was saved", "Start date: must be today")
		if st := stored(); st.StartDate.String() != start.Format(time.DateOnly) {
			t.Fatalf("stored start date changed to %s", st.StartDate)
		}
	})

	t.Run("SwitchTurnsThemOff", func(t *testing.T) {
		ada.open("/usage-notifications")
		ada.submit("#switch")
		ada.wantText(".message", "Usage notifications have been turned off")
		if ada.text("#switch") != "Off" || !ada.eval(`document.getElementById("switch").getAttribute("aria-checked") === "false"`) {
			t.Error("the switch does not show Off")
		}
		ada.wantText("#next-send", "None")
		if st := stored(); st.Enabled || !st.NextAt.IsZero() {
			t.Fatalf("stored: %+v, want off", st)
		}
		ada.screenshot("usage-notifications-off")
		ada.submit("#switch")
		ada.wantText(".message", "Usage notifications have been turned on")
		if st := stored(); !st.Enabled || st.Frequency != notify.Monthly {
			t.Fatalf("stored after switching on: %+v, want the monthly schedule on again", st)
		}
	})
}

// textPart is the plain text of a multipart/alternative email.
func textPart(t *testing.T, m *netmail.Message) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type: got %q %v, want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no text part: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt == "text/plain" {
			return string(b)
		}
	}
}

// TestReportAndNotificationsOverHTTP checks, without a browser, what a
// browser hides: refusals, statuses and the export's headers.
func TestReportAndNotificationsOverHTTP(t *testing.T) {
	rs := newReportSite(t)
	site := &httpSite{t: t, url: rs.url}
	signedIn := func(name string) *browserless {
		c := site.client()
		if a := c.signIn(rs.users[name].Email, password); a.status != http.StatusSeeOther {
			t.Fatalf("sign in as %s: %d", name, a.status)
		}
		return c
	}
	ada, ina := signedIn("ada"), signedIn("ina")

	t.Run("PeopleWithoutReportsAreRefused", func(t *testing.T) {
		a := ina.send("GET", "/reports/usage", nil)
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "may not see the usage report") {
			t.Errorf("a user without a role opened the report: %d", a.status)
		}
		if a := ina.send("GET", "/usage-notifications", nil); a.status != http.StatusForbidden {
			t.Errorf("a user without a role opened Usage Notifications: %d", a.status)
		}
		if a := ina.send("GET", fmt.Sprintf("/users/%d/access", rs.users["ina"].ID), nil); strings.Contains(a.body, `href="/reports/usage"`) || strings.Contains(a.body, `href="/usage-notifications"`) {
			t.Error("the navigation of a user without a role links to the report or notifications")
		}
	})
	t.Run("WrongFilterNamesTheField", func(t *testing.T) {
		a := ada.send("GET", "/reports/usage?status=asleep&subscription=x", nil)
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "subscription: &#34;x&#34; is not a contract") || !strings.Contains(a.body, "status: must be one of") {
			t.Fatalf("got %d, want both wrong filters named:\n%s", a.status, a.body)
		}
		if a := ada.send("GET", "/reports/usage?status=inactive&subscription=x&format=csv", nil); a.status != http.StatusUnprocessableEntity {
			t.Errorf("an export with a wrong contract: %d, want 422 rather than every contract", a.status)
		}
	})
	t.Run("ExportIsCSVWithTheFilters", func(t *testing.T) {
		a := ada.send("GET", "/reports/usage?status=inactive&range=3m&product=draftpro&format=csv", nil)
		lines := strings.Split(strings.TrimSpace(a.body), "\n")
		if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/csv") || len(lines) != 2 || !strings.Contains(lines[1], "ivan@acme.test,draftpro") {
			t.Fatalf("got %d %s: %q", a.status, a.header.Get("Content-Type"), lines)
		}
		if !strings.Contains(a.header.Get("Content-Disposition"), "attachment") {
			t.Errorf("Content-Disposition %q, want an attachment", a.header.Get("Content-Disposition"))
		}
	})
	seat := fmt.Sprintf("%d/%d", rs.users["ina"].ID, rs.ms.ID)
	t.Run("CrossSiteUnassignIsRefused", func(t *testing.T) {
		a := ada.send("POST", "/reports/usage/unassign", url.Values{"seat": {seat}, "confirm": {"1"}}, "Sec-Fetch-Site", "cross-site")
		if a.status != http.StatusForbidden || !rs.accessOf("ina")[rs.ms.ID].Assigned {
			t.Fatalf("cross-site unassign: %d, Ina assigned %v", a.status, rs.accessOf("ina")[rs.ms.ID].Assigned)
		}
	})
	t.Run("UnassignWithoutSelectionSaysSo", func(t *testing.T) {
		a := ada.send("POST", "/reports/usage/unassign", url.Values{"confirm": {"1"}, "return": {"/reports/usage?status=inactive"}})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "Select at least one user to unassign") {
			t.Fatalf("got %d", a.status)
		}
	})
	t.Run("UnassignGoesBackOnlyToTheReport", func(t *testing.T) {
		a := ada.send("POST", "/reports/usage/unassign", url.Values{"seat": {seat}, "confirm": {"1"}, "return": {"https://evil.example/reports/usage"}})
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/reports/usage" {
			t.Fatalf("got %d to %q", a.status, a.header.Get("Location"))
		}
		if rs.accessOf("ina")[rs.ms.ID].Assigned {
			t.Fatal("Ina still holds MS-1")
		}
	})
}

// TestSelectAllMatchingInBrowser unassigns every seat matching a filter,
// more than one page of them, after a confirmation with the exact count;
// a selection that changed in between unassigns nothing.
func TestSelectAllMatchingInBrowser(t *testing.T) {
	rs := newReportSite(t)
	ctx := context.Background()
	sys := usher.System(rs.acct.ID)
	seats, no := 80, false
	term := func(s string) usher.Date { d, _ := usher.ParseDate(s); return d }
	big, err := rs.access.CreateSubscription(ctx, sys, access.NewSubscription{
		Product: "modelstudio", Plan: usher.PlanStandard, Seats: &seats, ContractNumber: "MS-9",
		TermStart: term("2026-01-01"), TermEnd: term("2027-12-31"), ContractManagerID: rs.users["ada"].ID, AssignManagerSeat: &no,
	})
	if err != nil {
		t.Fatal(err)
	}
	var people []usher.User
	for i := range 55 {
		email, name := fmt.Sprintf("p%02d@acme.test", i), fmt.Sprintf("Person %02d", i)
		u, err := rs.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.access.Assign(ctx, sys, u.ID, big.ID, nil); err != nil {
			t.Fatal(err)
		}
		people = append(people, u)
	}
	ada := rs.person(t, newBrowser(t), "ada")
	filter := fmt.Sprintf("/reports/usage?subscription=%d", big.ID)

	t.Run("AChangedSelectionUnassignsNothing", func(t *testing.T) {
		ada.open(filter)
		ada.wantText("#select-matching", "Select all 55 matching")
		// Someone takes one seat after the page was shown: 54 match now.
		ada.do(chromedp.Click(chromedp.CSS("#select-matching")))
		if _, err := rs.access.Unassign(ctx, sys, []access.UnassignItem{{UserID: people[7].ID, SubscriptionID: big.ID}}); err != nil {
			t.Fatal(err)
		}
		ada.do(chromedp.Click(chromedp.CSS("#unassign")))
		ada.submit("#unassign-confirm")
		ada.wantText(".errors", "Nothing was unassigned", "54 seats now, not 55")
		if got := rs.seatsUsed(big.ID); got != 54 {
			t.Fatalf("seats used: %d, want 54 (nothing unassigned)", got)
		}
	})

	t.Run("SelectAllMatchingUnassignsEveryPage", func(t *testing.T) {
		ada.open(filter)
		if n := len(ada.reportRows()); n != 50 {
			t.Fatalf("first page: %d rows, want 50", n)
		}
		ada.do(chromedp.Click(chromedp.CSS("#select-matching")))
		ada.wantText("#selection-count", "All 54 seats matching the filter are selected, held by 54 users")
		ada.screenshot("usage-report-select-matching")
		ada.do(chromedp.Click(chromedp.CSS("#unassign")))
		ada.wantText("#unassign-dialog-text", "Unassign all 54 seats matching the filter, from 54 users?")
		ada.submit("#unassign-confirm")
		ada.wantText(".message", "Unassigned 54 seats from 54 users")
		if got := rs.seatsUsed(big.ID); got != 0 {
			t.Fatalf("seats used: %d, want 0", got)
		}
		// The other contracts keep their seats.
		if !rs.accessOf("uma")[rs.ms.ID].Assigned {
			t.Fatal("a seat outside the filter was unassigned")
		}
	})

	t.Run("WithoutTheScriptTheConfirmationPageCounts", func(t *testing.T) {
		// Back to four seats on MS-1 and DP-1, page size unchanged: the
		// button only shows when more match than one page holds, so post
		// what it would send.
		ada.eval(`(() => { document.body.dataset.stale = "1";
			const f = document.createElement("form"); f.method = "post"; f.action = "/reports/usage/unassign";
			for (const [k, v] of [["return", "/reports/usage?status=inactive&range=3m"], ["all", "1"]]) {
				const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.append(i) }
			document.body.append(f); f.submit(); return true })()`)
		ada.do(chromedp.WaitReady(chromedp.CSS("body:not([data-stale]) main h1")))
		ada.wantText("#unassign-summary", "Unassign all 3 seats matching the filter, from 2 users?")
		ada.wantText(".unassign-list", "Ina Idle", "Ivan Inert")
		if !rs.accessOf("ina")[rs.ms.ID].Assigned {
			t.Fatal("the confirmation page unassigned already")
		}
	})
}

// TestDashboardInBrowser checks the home page against the seats and use
// of the report's site: inactive seats per contract link into the report,
// and each product's chart has its numbers in a table too.
func TestDashboardInBrowser(t *testing.T) {
	rs := newReportSite(t)
	ada := rs.person(t, newBrowser(t), "ada")
	ada.open("/")
	ada.wantText("main h1", "Dashboard")
	// Over 3 months, Ina and Ivan hold inactive MS-1 seats, Ivan a DP-1 one.
	ada.wantText(fmt.Sprintf("#contract-%d .inactive", rs.ms.ID), "2")
	ada.wantText(fmt.Sprintf("#contract-%d .inactive", rs.dp.ID), "1")
	ada.wantText(fmt.Sprintf("#contract-%d .inactive", rs.cw.ID), "0")
	ada.wantText(fmt.Sprintf("#contract-%d .used", rs.ms.ID), "3")
	ada.wantText(fmt.Sprintf("#contract-%d .waiting", rs.ms.ID), "0")
	// No price on MS-1: no cost to show.
	ada.wantText(fmt.Sprintf("#contract-%d .inactive-cost", rs.ms.ID), "–")
	ada.wantText("#ending", "None")
	ada.wantText("#reclaimed", "No seats reclaimed since")
	if n := ada.evalInt(`document.querySelectorAll("figure.chart svg[role=img]").length`); n != 2 {
		t.Errorf("charts: %d, want one per product with usage data (2)", n)
	}
	// The last month of Model Studio's table: 3 seats held.
	got := run(ada, chromedp.Evaluate[string](`(() => { const f = Array.from(document.querySelectorAll("figure.chart")).find(f => f.querySelector("h3").textContent === "Model Studio");
		const rows = f.querySelectorAll("table.chart-table tbody tr"); return rows.length + "|" + rows[rows.length - 1].children[1].textContent })()`))
	if got != "12|3" {
		t.Errorf("Model Studio's chart table: %s, want 12 months and 3 seats held in the last", got)
	}
	ada.screenshot("dashboard")
	ada.submit(fmt.Sprintf("#contract-%d .inactive a", rs.ms.ID))
	ada.wantText("#report-heading", "Inactive users over the last 3 months")
	if rows := ada.reportRows(); len(rows) != 2 {
		t.Errorf("inactive MS-1 rows: %q, want Ina's and Ivan's", rows)
	}
}
