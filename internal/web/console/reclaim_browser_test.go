package console_test

import (
	"context"
	"fmt"
	"github.com/chromedp/chromedp"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/mail/smtptest"
	"github.com/usherhq/usher/internal/reclaim"
)

// keepURL finds the Keep my seat link in the warning sent to email.
func (rs *reportSite) keepURL(t *testing.T, email string) string {
	t.Helper()
	link := regexp.MustCompile(regexp.QuoteMeta(rs.url) + `/keep/[A-Za-z0-9_-]+`)
	for _, m := range smtptest.Messages(t, rs.mailbox) {
		if strings.Contains(m.Header.Get("To"), email) && strings.Contains(m.Header.Get("Subject"), "will be reclaimed") {
			if u := link.FindString(textPart(t, m)); u != "" {
				return u
			}
		}
	}
	t.Fatalf("no warning with a Keep my seat link to %s", email)
	return ""
}

// TestReclaimInBrowser: a policy warns Ina and Ivan; Ina opens the link
// from her email in a browser without signing in, and only the button keeps
// her seat; when the grace period ends Ivan's seat goes, and Ada undoes
// that from the Reclaim history.
func TestReclaimInBrowser(t *testing.T) {
	rs := newReportSite(t)
	ctx := context.Background()
	p, err := rs.reclaim.Create(ctx, rs.actor("ada"), reclaim.Input{Name: "Idle Model Studio", Range: "3m", Mode: reclaim.WarnThenReclaim,
		Scope: reclaim.Scope{Kind: reclaim.ScopeSubscriptions, SubscriptionIDs: []int64{rs.ms.ID}}, GraceDays: ptr(7)})
	if err != nil {
		t.Fatal(err)
	}
	rs.offset.Store(int64(p.NextRunAt.Sub(time.Now()) + time.Minute))
	if _, err := rs.reclaim.RunNow(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	link := rs.keepURL(t, "ina@acme.test")
	rs.keepURL(t, "ivan@acme.test")

	browser := newBrowser(t)
	ina := rs.window(t, browser) // not signed in: the link is the proof
	path := strings.TrimPrefix(link, rs.url)
	ina.open(path)
	ina.wantText("main", "Model Studio", "MS-1", "Keep my seat")
	ina.screenshot("keep-my-seat")
	// Opening the page (as a mail scanner would) kept nothing.
	if offer, err := rs.reclaim.KeepOffer(ctx, strings.TrimPrefix(path, "/keep/")); err != nil || offer.Kept {
		t.Fatalf("after GET: %+v, %v", offer, err)
	}
	ina.submit("#keep")
	ina.wantText("#kept", "is kept")
	ina.open(path)
	ina.wantText("#kept", "is kept")

	// Past the grace period, Ivan's MS-1 seat goes; Ina keeps hers.
	rs.offset.Add(int64(8 * 24 * time.Hour))
	if _, err := rs.reclaim.RunNow(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if !rs.accessOf("ina")[rs.ms.ID].Assigned || rs.accessOf("ivan")[rs.ms.ID].Assigned {
		t.Fatalf("after the reclaim: Ina %v, Ivan %v", rs.accessOf("ina")[rs.ms.ID].Assigned, rs.accessOf("ivan")[rs.ms.ID].Assigned)
	}

	ada := rs.person(t, browser, "ada")
	ada.open("/reclaims")
	ada.wantText("table.reclaims", "Reclaim policy run", "ivan@acme.test")
	ada.screenshot("reclaim-history")
	ada.do(chromedp.Click(chromedp.CSS("table.reclaims form button")))
	ada.wantText("#confirm-text", "Give back what this reclaim removed")
	ada.submit("#confirm-ok")
	ada.wantText("#undo-result", "Restored: ivan@acme.test")
	ada.wantText("table.reclaims", "Undone")
	if !rs.accessOf("ivan")[rs.ms.ID].Assigned {
		t.Fatal("Undo did not give Ivan his seat back")
	}

	// The policy and its preview, read in the console.
	ada.open("/reclaim-policies")
	ada.wantText("table.policies", "Idle Model Studio", "warn_then_reclaim")
	ada.submit(fmt.Sprintf("#policy-%d a", p.ID))
	ada.wantText("#preview-summary", "If “Idle Model Studio” ran now")
	ada.wantText("ul.skipped", "ina@acme.test", "kept from the warning's link")
	ada.screenshot("reclaim-preview")
}

// TestKeepLinkOverHTTP: GET never keeps, POST keeps once, a bad token is a 404.
func TestKeepLinkOverHTTP(t *testing.T) {
	rs := newReportSite(t)
	ctx := context.Background()
	p, err := rs.reclaim.Create(ctx, rs.actor("ada"), reclaim.Input{Name: "Idle", Range: "3m", Mode: reclaim.WarnThenReclaim,
		Scope: reclaim.Scope{Kind: reclaim.ScopeProducts, Products: []string{"modelstudio"}}})
	if err != nil {
		t.Fatal(err)
	}
	rs.offset.Store(int64(p.NextRunAt.Sub(time.Now()) + time.Minute))
	if _, err := rs.reclaim.RunNow(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	link := rs.keepURL(t, "ivan@acme.test")
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for range 3 {
		if code, body := get(link); code != http.StatusOK || !strings.Contains(body, `id="keep"`) {
			t.Fatalf("GET: %d\n%s", code, body)
		}
	}
	post := func() int {
		req, _ := http.NewRequest("POST", link, strings.NewReader(url.Values{}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", rs.url)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != http.StatusOK {
		t.Fatalf("POST: %d", code)
	}
	if code := post(); code != http.StatusConflict {
		t.Fatalf("second POST: %d, want 409", code)
	}
	if code, _ := get(rs.url + "/keep/not-a-token"); code != http.StatusNotFound {
		t.Fatalf("bad token: %d, want 404", code)
	}
}

func ptr[T any](v T) *T { return &v }

// TestReclaimPolicyFormInBrowser: Ada creates a policy in the console —
// refused first with each problem beside its field, previewed before it is
// saved, then saved and previewed again — edits it, and deletes it after
// the console's confirmation; Sam, a secondary admin, reads it only.
func TestReclaimPolicyFormInBrowser(t *testing.T) {
	rs := newReportSite(t)
	ctx := context.Background()
	g, err := rs.access.CreateGroup(ctx, rs.actor("ada"), access.GroupInput{Name: ptr("Service accounts")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.access.AddMembers(ctx, rs.actor("ada"), g.ID, []int64{rs.users["ivan"].ID}); err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t)
	ada := rs.person(t, browser, "ada")
	ada.open("/reclaim-policies")
	ada.wantText("#no-policies", "no reclaim policies")
	ada.submit("#new-policy")
	ada.wantText("main h1", "New reclaim policy")
	ada.wantText("#scope", "Model Studio MS-1 (Premium)", "DraftPro DP-1 (Standard)")
	if strings.Contains(ada.text("#scope"), "CW-1") {
		t.Error("the form offers the Basic contract CW-1, which has no usage data")
	}
	ada.screenshot("reclaim-policy-new")

	// No name, no contract, too long a grace period: each problem
	// shows beside its field, and nothing is saved.
	ada.do(chromedp.SetValue(chromedp.CSS("#grace_days"), "400"), chromedp.SetValue(chromedp.CSS("#exempt_users"), "nobody@acme.test"))
	ada.submit("#save-policy")
	ada.wantText("#name-error", "required")
	ada.wantText("#scope-error", "at least one subscription")
	ada.wantText("#grace_days-error", "between 0 and 365")
	ada.wantText("#exempt_users-error", "no user nobody@acme.test")
	ada.wantText(".errors", "Nothing was saved")
	if ada.eval(`document.getElementById("name").getAttribute("aria-invalid") !== "true"`) {
		t.Error("the name field is not marked invalid")
	}
	ada.screenshot("reclaim-policy-errors")
	if ps, _ := rs.reclaim.Policies(ctx, rs.actor("ada")); len(ps) != 0 {
		t.Fatalf("a refused form saved %d policies", len(ps))
	}

	// Preview before saving: Ina and Ivan hold idle MS-1 seats; Ivan is in
	// the exempt group.
	ada.do(chromedp.SetValue(chromedp.CSS("#name"), "Idle Model Studio"), chromedp.SetValue(chromedp.CSS("#grace_days"), "10"),
		chromedp.Clear(chromedp.CSS("#exempt_users")),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name=subscription_ids][value="%d"]`, rs.ms.ID))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name=exempt_groups][value="%d"]`, g.ID))))
	ada.submit("#preview-policy")
	ada.wantText("#form-preview", "were saved and ran now", "ina@acme.test", "ivan@acme.test: exempt as a member of the group Service accounts")
	if ps, _ := rs.reclaim.Policies(ctx, rs.actor("ada")); len(ps) != 0 {
		t.Fatal("Preview saved the policy")
	}
	if !ada.eval(`document.getElementById("name").value === "Idle Model Studio"`) || !ada.checked("mode-warn_then_reclaim") {
		t.Error("the form lost what was typed after Preview")
	}
	ada.screenshot("reclaim-policy-form-preview")

	ada.submit("#save-policy")
	ada.wantText(".message", "Policy “Idle Model Studio” saved")
	ada.wantText("#preview-summary", "If “Idle Model Studio” ran now it would warn 1")
	ps, err := rs.reclaim.Policies(ctx, rs.actor("ada"))
	if err != nil || len(ps) != 1 {
		t.Fatalf("policies %+v %v, want one", ps, err)
	}
	p := ps[0]
	if p.Mode != reclaim.WarnThenReclaim || p.GraceDays != 10 || p.Range != "3m" || len(p.Scope.SubscriptionIDs) != 1 ||
		p.Scope.SubscriptionIDs[0] != rs.ms.ID || len(p.Exemptions.Groups) != 1 || p.Exemptions.Groups[0] != g.ID || !p.Enabled {
		t.Fatalf("stored %+v", p)
	}

	// Edit: a number of days, reclaim straight away.
	ada.open("/reclaim-policies")
	ada.submit(fmt.Sprintf("#policy-%d a.edit", p.ID))
	ada.do(chromedp.SetValue(chromedp.CSS("#range"), "days"), chromedp.SetValue(chromedp.CSS("#range_days"), "45"),
		chromedp.Click(chromedp.CSS("#mode-reclaim")), chromedp.SetValue(chromedp.CSS("#exempt_users"), "uma@acme.test"))
	ada.submit("#save-policy")
	ada.wantText(".message", "saved")
	p, err = rs.reclaim.Policy(ctx, rs.actor("ada"), p.ID)
	if err != nil || p.Range != "45d" || p.Mode != reclaim.ReclaimNow || len(p.Exemptions.Users) != 1 || p.Exemptions.Users[0] != rs.users["uma"].ID {
		t.Fatalf("after the edit: %+v %v", p, err)
	}
	ada.open(fmt.Sprintf("/reclaim-policies/%d", p.ID))
	if !ada.eval(`document.getElementById("range_days").value === "45" && document.getElementById("range").value === "days"`) {
		t.Error("the form does not show the stored range of 45 days")
	}
	ada.screenshot("reclaim-policy-edit")

	// Sam reads the policy; he can change nothing.
	sam := rs.person(t, browser, "sam")
	sam.open("/reclaim-policies")
	if sam.exists("#new-policy") {
		t.Error("a secondary admin is offered New Policy")
	}
	sam.submit(fmt.Sprintf("#policy-%d a.edit", p.ID))
	sam.wantText("#read-only", "Primary admins change reclaim policies")
	if sam.exists("#save-policy") || sam.exists("#delete-policy") || !sam.eval(`document.getElementById("name").matches(":disabled")`) {
		t.Error("a secondary admin is offered to change or delete the policy")
	}
	sam.screenshot("reclaim-policy-read-only")
	samHTTP := &httpSite{t: t, url: rs.url}
	c := samHTTP.client()
	if a := c.signIn("sam@acme.test", password); a.status != http.StatusSeeOther {
		t.Fatalf("sign in as Sam: %d", a.status)
	}
	for _, path := range []string{fmt.Sprintf("/reclaim-policies/%d/delete", p.ID), fmt.Sprintf("/reclaim-policies/%d", p.ID), "/reclaim-policies"} {
		if a := c.send("POST", path, url.Values{"name": {"Mine"}}, "Origin", rs.url); a.status != http.StatusForbidden {
			t.Errorf("Sam's POST %s: %d, want 403", path, a.status)
		}
	}
	if a := c.send("GET", "/reclaim-policies/new", nil); a.status != http.StatusForbidden {
		t.Errorf("Sam's GET of the new policy form: %d, want 403", a.status)
	}

	// Ada deletes it after the console's own confirmation.
	ada.open(fmt.Sprintf("/reclaim-policies/%d", p.ID))
	ada.do(chromedp.Click(chromedp.CSS("#delete-policy")))
	ada.wantText("#confirm-text", "Delete the policy “Idle Model Studio”?")
	ada.submit("#confirm-ok")
	ada.wantText(".message", "Policy “Idle Model Studio” deleted")
	if ps, _ := rs.reclaim.Policies(ctx, rs.actor("ada")); len(ps) != 0 {
		t.Fatalf("after the delete: %d policies", len(ps))
	}
}
