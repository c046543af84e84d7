package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// TestSaveFromAnOutdatedPageIsRefused: someone gives Kim a seat while an
// admin has Kim's Edit Access open; the admin's Save, made from the page
// without that seat, must not take it away.
func TestSaveFromAnOutdatedPageIsRefused(t *testing.T) {
	s := newHTTPSite(t, false)
	ctx := context.Background()
	sys := usher.System(s.acct.ID)
	five := 5
	d := func(v string) usher.Date { x, _ := usher.ParseDate(v); return x }
	var subs []usher.Subscription
	for _, n := range []string{"CW-1", "CW-2"} {
		sub, err := s.access.CreateSubscription(ctx, sys, access.NewSubscription{
			Product: "civilworks", Plan: usher.PlanStandard, Seats: &five, ContractNumber: n,
			TermStart: d("2026-01-01"), TermEnd: d("2026-12-31"), ContractManagerID: s.admin.ID, AssignManagerSeat: new(bool),
		})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	email, name := "kim@acme.test", "Kim"
	kim, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	c := s.client()
	c.signIn("ada@acme.test", password)
	path := fmt.Sprintf("/users/%d/access", kim.ID)
	opened := c.send("GET", path, nil)
	m := regexp.MustCompile(`name="version" value="([0-9a-f]+)"`).FindStringSubmatch(opened.body)
	if opened.status != http.StatusOK || m == nil {
		t.Fatalf("Edit Access: %d, no version in the form:\n%s", opened.status, opened.body)
	}
	if err := s.access.Assign(ctx, sys, kim.ID, subs[1].ID, nil); err != nil {
		t.Fatal(err)
	}
	a := c.send("POST", path, url.Values{"tab": {"products"}, "version": {m[1]}, "assign": {fmt.Sprint(subs[0].ID)}})
	if a.status != http.StatusPreconditionFailed || !strings.Contains(a.body, `role="alert"`) || !strings.Contains(a.body, "Someone else changed Kim") {
		t.Fatalf("save from the outdated page: %d, want 412 with an alert:\n%s", a.status, a.body)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf(`id="assign-%d"`, subs[1].ID)) + `[^>]* checked`).MatchString(a.body) {
		t.Error("the refusal does not show the seat given meanwhile")
	}
	got, err := s.access.Access(ctx, sys, kim.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got.Subscriptions {
		if e.Assigned != (e.Subscription.ID == subs[1].ID) {
			t.Fatalf("after the refused save, %s assigned = %v", e.Subscription.ContractNumber, e.Assigned)
		}
	}
	// From the page as it is now, the same Save goes through.
	a = c.send("POST", path, url.Values{"tab": {"products"}, "version": {got.Version}, "assign": {fmt.Sprint(subs[0].ID), fmt.Sprint(subs[1].ID)}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("save from the current page: %d\n%s", a.status, a.body)
	}
}

func TestAuditLogNamesAnUnknownAction(t *testing.T) {
	s := newHTTPSite(t, false)
	c := s.client()
	c.signIn("ada@acme.test", password)
	a := c.send("GET", "/audit-log?action=seat.asign", nil)
	if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `role="alert"`) || !strings.Contains(a.body, "action: must be one of") {
		t.Fatalf("unknown action: %d, want 422 with an alert:\n%s", a.status, a.body)
	}
	if a := c.send("GET", "/audit-log?action=seat.assign", nil); a.status != http.StatusOK {
		t.Fatalf("known action: %d", a.status)
	}
}
