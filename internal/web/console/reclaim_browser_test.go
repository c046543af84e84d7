package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

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
	ada.eval(`(() => { window.confirm = () => true; return true })()`)
	ada.submit("table.reclaims form button")
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
