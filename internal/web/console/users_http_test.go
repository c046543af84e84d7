package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// TestUsersAndContractsWithoutScript posts the users list's and the
// contract forms as a browser without JavaScript would.
func TestUsersAndContractsWithoutScript(t *testing.T) {
	s := newHTTPSite(t, false)
	ctx := context.Background()
	sys := usher.System(s.acct.ID)
	var ids []string
	for _, who := range []string{"ben", "cora", "dan"} {
		email := who + "@acme.test"
		u, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fmt.Sprint(u.ID))
	}
	c := s.client()
	c.signIn("ada@acme.test", password)

	t.Run("DisableNobodyIsRefused", func(t *testing.T) {
		a := c.send("POST", "/users/disable", url.Values{"return": {"/users"}})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "tick the users to disable first") {
			t.Fatalf("got %d:\n%s", a.status, a.body)
		}
	})
	t.Run("DisableSelectedComesBackWithTheCount", func(t *testing.T) {
		a := c.send("POST", "/users/disable", url.Values{"return": {"/users?status=active"}, "user": ids[:2]})
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/users?status=active" {
			t.Fatalf("got %d to %q:\n%s", a.status, a.header.Get("Location"), a.body)
		}
		page := c.send("GET", "/users?status=active", nil)
		if !strings.Contains(page.body, "Disabled 2 users: they can no longer sign in.") || !strings.Contains(page.body, `<span id="users-total">2</span> users match the filter`) {
			t.Fatalf("the page after: %s", page.body)
		}
		if again := c.send("GET", "/users?status=active", nil); strings.Contains(again.body, "Disabled 2 users") {
			t.Fatal("the message shows twice")
		}
	})
	t.Run("ExportHasTheFiltersAndOrder", func(t *testing.T) {
		a := c.send("GET", "/users.csv?status=disabled&sort=-email", nil)
		want := "id,name,email,status,created_at\n" + ids[1] + ",cora@acme.test,cora@acme.test,disabled,"
		if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/csv") || !strings.HasPrefix(a.body, want) || strings.Count(a.body, "\n") != 3 {
			t.Fatalf("got %d %s:\n%s", a.status, a.header.Get("Content-Type"), a.body)
		}
	})
	t.Run("AHandMadeFilterIsNamedAndEveryoneShown", func(t *testing.T) {
		a := c.send("GET", "/users?sort=age&status=gone", nil)
		if a.status != http.StatusOK || !strings.Contains(a.body, "status: must be") || !strings.Contains(a.body, "sort: must be one of") || !strings.Contains(a.body, `<span id="users-total">4</span> users`) {
			t.Fatalf("got %d:\n%s", a.status, a.body)
		}
	})
	t.Run("ContractCreatedAndSeatsRefusedBelowUse", func(t *testing.T) {
		a := c.send("POST", "/subscriptions", url.Values{
			"product": {"draftpro"}, "plan": {"standard"}, "contract_number": {"DP-7"}, "seats": {"4"},
			"term_start": {"2026-01-01"}, "term_end": {"2026-12-31"}, "price_per_seat_year": {"250"}, "currency": {"eur"},
			"contract_manager": {"dan@acme.test"}, "assign_manager_seat": {"1"}, "benefit": {"web_support"},
		})
		if a.status != http.StatusSeeOther {
			t.Fatalf("create: %d:\n%s", a.status, a.body)
		}
		subs, err := s.access.ListSubscriptions(ctx, sys, "", 10)
		if err != nil || len(subs.Items) != 1 {
			t.Fatal(subs, err)
		}
		sub := subs.Items[0]
		if sub.Price == nil || sub.Price.Cents != 25000 || sub.Price.Currency != "EUR" || sub.SeatsUsed != 1 || len(sub.Benefits) != 1 {
			t.Fatalf("stored: %+v", sub)
		}
		a = c.send("POST", fmt.Sprintf("/subscriptions/%d", sub.ID), url.Values{"seats": {"0"}, "term_start": {"2026-01-01"}, "term_end": {"2026-12-31"}})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "Seats: must be between 1 and") {
			t.Fatalf("0 seats: %d:\n%s", a.status, a.body)
		}
		a = c.send("POST", fmt.Sprintf("/subscriptions/%d", sub.ID), url.Values{"seats": {"2"}, "term_start": {"2026-01-01"}, "term_end": {"not a day"}, "price_per_seat_year": {""}})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `Term end: &#34;not a day&#34; is not a date`) {
			t.Fatalf("a bad date: %d:\n%s", a.status, a.body)
		}
		if got, _ := s.access.Subscription(ctx, sys, sub.ID); got.Seats != 4 || got.Price == nil {
			t.Fatalf("a refused change changed %+v", got)
		}
	})
}
