package console_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usherhq/usher/internal/mail/smtptest"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// TestReportAsOfEmailInBrowser follows the email's View inactive users link
// from the SMTP server to the report as of that email. Ina uses the product
// after the email while her seat is ticked: the unassign is refused and
// changes nothing; her row is then marked and cannot be selected, while
// Ivan's seats go. The switch to now shows today's report.
func TestReportAsOfEmailInBrowser(t *testing.T) {
	rs := newReportSite(t)
	ctx := context.Background()
	if _, _, err := rs.notify.Set(ctx, rs.actor("ada"), notify.Input{StartDate: rs.today(), Frequency: notify.Weekly, Range: usage.Range3m}); err != nil {
		t.Fatal(err)
	}
	rs.offset.Store(int64(8 * 24 * time.Hour))
	if n, err := rs.notify.PlanDue(ctx); err != nil || n != 1 {
		t.Fatalf("plan due emails: %d %v, want 1", n, err)
	}
	if n, err := rs.notify.SendDue(ctx, "browser-test", 10); err != nil || n != 1 {
		t.Fatalf("send due emails: %d %v, want 1 delivered", n, err)
	}
	text := textPart(t, smtptest.WaitMessages(t, rs.mailbox, 1, 10*time.Second)[0])
	m := regexp.MustCompile(`View inactive users:\s*(\S+)`).FindStringSubmatch(text)
	if m == nil || !regexp.MustCompile(`/reports/usage\?snapshot=notification-\d+$`).MatchString(m[1]) {
		t.Fatalf("the email's View inactive users link: %q, want the report as of the email:\n%s", m, text)
	}
	link := m[1]
	b := rs.person(t, newBrowser(t), "ada")
	inaMS := fmt.Sprintf("#seat-%d-%d", rs.users["ina"].ID, rs.ms.ID)
	ivanMS := fmt.Sprintf("#seat-%d-%d", rs.users["ivan"].ID, rs.ms.ID)
	ivanDP := fmt.Sprintf("#seat-%d-%d", rs.users["ivan"].ID, rs.dp.ID)

	t.Run("LinkOpensTheReportAsOfTheEmail", func(t *testing.T) {
		b.open(strings.TrimPrefix(link, rs.url))
		b.wantText("#report-heading", "Inactive users as of the email of")
		b.wantText("#as-of", "As of the email of")
		if !b.eval(`document.getElementById("as-of").getAttribute("aria-current") === "page"`) {
			t.Error("the switch does not say the report is shown as of the email")
		}
		want := []string{"Ina Idle|MS-1|Inactive · never used", "Ivan Inert|MS-1|Inactive · never used", "Ivan Inert|DP-1|Inactive · never used"}
		if got := b.reportRows(); strings.Join(got, ";") != strings.Join(want, ";") {
			t.Fatalf("rows: got %q, want %q", got, want)
		}
		b.wantText(".totals", "2 inactive users holding 3 inactive seats", "0 seats changed since")
		if b.exists("#select-matching") {
			t.Error("the report as of an email offers Select all matching")
		}
		b.screenshot("usage-report-as-of-email")
	})

	t.Run("SomeoneWhoUsedTheProductSinceIsNotUnassigned", func(t *testing.T) {
		b.do(chromedp.Click(chromedp.CSS(inaMS)), chromedp.Click(chromedp.CSS(ivanMS)))
		// Ina uses Model Studio while the page is open.
		used := usage.Item{Line: 1, Event: usage.Event{User: "ina@acme.test", Product: "modelstudio", At: time.Now()}}
		if res, err := rs.usage.Ingest(ctx, usher.System(rs.acct.ID), func(yield func(usage.Item) bool) { yield(used) }); err != nil || res.Accepted != 1 {
			t.Fatalf("ingest Ina's use: %+v %v", res, err)
		}
		b.do(chromedp.Click(chromedp.CSS("#unassign")))
		b.submit("#unassign-confirm")
		b.wantText(".errors", "Nothing was unassigned", "Ina Idle, Model Studio MS-1", "has used Model Studio since the seat was reported inactive")
		if !rs.accessOf("ina")[rs.ms.ID].Assigned || !rs.accessOf("ivan")[rs.ms.ID].Assigned {
			t.Fatal("a refused unassign took a seat")
		}
	})

	t.Run("HerRowIsMarkedAndCannotBeSelected", func(t *testing.T) {
		b.open(strings.TrimPrefix(link, rs.url))
		today := usher.DateOf(time.Now().In(rs.acct.Location())).Human()
		want := []string{"Ina Idle|MS-1|Inactive · never used⚠ Used since: last use " + today, "Ivan Inert|MS-1|Inactive · never used", "Ivan Inert|DP-1|Inactive · never used"}
		if got := b.reportRows(); strings.Join(got, ";") != strings.Join(want, ";") {
			t.Fatalf("rows: got %q, want %q", got, want)
		}
		b.wantText(".totals", "1 seat changed since")
		if b.exists(inaMS) || !b.exists(ivanMS) {
			t.Fatal("want Ina's changed row without a checkbox, Ivan's with one")
		}
		b.do(chromedp.Click(chromedp.CSS(ivanMS)), chromedp.Click(chromedp.CSS(ivanDP)), chromedp.Click(chromedp.CSS("#unassign")))
		b.submit("#unassign-confirm")
		b.wantText(".message", "Unassigned 2 seats from 1 user")
		if !rs.accessOf("ina")[rs.ms.ID].Assigned || rs.accessOf("ivan")[rs.ms.ID].Assigned || rs.accessOf("ivan")[rs.dp.ID].Assigned {
			t.Fatal("stored: want Ina still on MS-1 and Ivan on nothing")
		}
		if !strings.Contains(b.location(), "snapshot=notification-") {
			t.Errorf("after unassigning: %s, want back at the report as of the email", b.location())
		}
		b.wantText("table.report tbody", "Unassigned since")
		b.wantText(".totals", "3 seats changed since")
		b.screenshot("usage-report-as-of-email-changed")
	})

	t.Run("SwitchToNow", func(t *testing.T) {
		b.submit("#show-now")
		if loc := b.location(); !strings.HasSuffix(loc, "/reports/usage?range=3m&status=inactive") {
			t.Fatalf("Now opened %s, want the inactive users over 3 months", loc)
		}
		b.wantText("#report-heading", "Inactive users over the last 3 months")
		if got := b.reportRows(); len(got) != 0 {
			t.Fatalf("rows now: %q, want none: Ina used the product and Ivan's seats are gone", got)
		}
	})

	t.Run("SeatsUnassignedInTheRangeWithTheirDate", func(t *testing.T) {
		b.open("/reports/usage?status=unassigned&range=3m")
		if got := run(b, chromedp.Evaluate[string](`document.getElementById("status").selectedOptions[0].textContent`)); got != "Unassigned in the range" {
			t.Errorf("the Users filter shows %q, want Unassigned in the range", got)
		}
		b.wantText("#report-heading", "Seats unassigned in the last 3 months")
		today := usher.DateOf(time.Now().In(rs.acct.Location())).Human()
		want := []string{"Ivan Inert|MS-1|Unassigned " + today, "Ivan Inert|DP-1|Unassigned " + today}
		if got := b.reportRows(); strings.Join(got, ";") != strings.Join(want, ";") {
			t.Fatalf("rows: got %q, want %q", got, want)
		}
		b.wantText(".totals", "2 seats unassigned from 1 user")
		if b.exists("table.report td.select input") {
			t.Error("a freed seat can be selected for Unassign")
		}
		b.screenshot("usage-report-unassigned")
	})
}
