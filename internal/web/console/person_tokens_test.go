package console_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// TestPersonTokensOnlyForWhoSeesEveryToken checks that a person's page lists
// their API tokens to an admin who may see every token, and to nobody else:
// not to the person themself, a secondary admin or a contract manager.
func TestPersonTokensOnlyForWhoSeesEveryToken(t *testing.T) {
	s := newHTTPSite(t, false)
	ctx := context.Background()
	sys := usher.System(s.acct.ID)
	user := func(who string) usher.User {
		email, name := who+"@acme.test", strings.ToUpper(who[:1])+who[1:]
		u, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.auth.SetPassword(ctx, s.acct.ID, u.ID, password); err != nil {
			t.Fatal(err)
		}
		return u
	}
	pat, sam, max := user("pat"), user("sam"), user("max")
	if err := s.access.GrantRole(ctx, sys, usher.RoleGrant{UserID: sam.ID, Role: usher.RoleSecondaryAdmin}); err != nil {
		t.Fatal(err)
	}
	seats, no := 5, false
	start := usher.DateOf(time.Now().AddDate(0, -1, 0))
	if _, err := s.access.CreateSubscription(ctx, sys, access.NewSubscription{
		Product: "draftpro", Plan: usher.PlanStandard, Seats: &seats, ContractNumber: "DP-1",
		TermStart: start, TermEnd: usher.Date{Time: start.AddDate(1, 0, 0)}, ContractManagerID: max.ID, AssignManagerSeat: &no,
	}); err != nil {
		t.Fatal(err)
	}
	days := 30
	for _, in := range []access.TokenInput{{Name: "nightly export", Scope: usher.ScopeRead, ExpiresInDays: &days}, {Name: "seat sync"}} {
		if _, _, err := s.access.IssueToken(ctx, s.acct.ID, pat.ID, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.access.IssueToken(ctx, s.acct.ID, max.ID, access.TokenInput{Name: "manager script"}); err != nil {
		t.Fatal(err)
	}
	patPage := fmt.Sprintf("/users/%d", pat.ID)

	t.Run("PrimaryAdminSeesThem", func(t *testing.T) {
		c := s.client()
		c.signIn("ada@acme.test", password)
		a := c.send("GET", patPage, nil)
		if a.status != http.StatusOK {
			t.Fatalf("got %d:\n%s", a.status, a.body)
		}
		for _, want := range []string{`id="person-tokens"`, ">nightly export<", ">seat sync<", `<td role="cell" data-label="Scope">read</td>`, `href="/tokens"`} {
			if !strings.Contains(a.body, want) {
				t.Errorf("the page lacks %q", want)
			}
		}
		if strings.Contains(a.body, "manager script") {
			t.Error("the page lists someone else's token")
		}
		// Dates in the one style: the expiry is a day and time, not a timestamp.
		if strings.Contains(a.body, "T00:") || !strings.Contains(a.body, `data-label="Last used" class="when">Never<`) {
			t.Errorf("token dates are not in the console's style")
		}
		none := c.send("GET", fmt.Sprintf("/users/%d", sam.ID), nil)
		if !strings.Contains(none.body, `id="no-person-tokens"`) || strings.Contains(none.body, "nightly export") {
			t.Errorf("a person without tokens: the section does not say so")
		}
	})

	for _, tc := range []struct{ name, email, path string }{
		{"OwnPage", "pat@acme.test", patPage},
		{"SecondaryAdmin", "sam@acme.test", patPage},
		{"ContractManagerOwnPage", "max@acme.test", fmt.Sprintf("/users/%d", max.ID)},
		{"ContractManager", "max@acme.test", patPage},
	} {
		t.Run("NoneFor"+tc.name, func(t *testing.T) {
			c := s.client()
			c.signIn(tc.email, password)
			a := c.send("GET", tc.path, nil)
			if a.status != http.StatusOK {
				t.Fatalf("got %d:\n%s", a.status, a.body)
			}
			for _, leak := range []string{`id="person-tokens"`, "nightly export", "seat sync", "manager script"} {
				if strings.Contains(a.body, leak) {
					t.Errorf("the page shows %q", leak)
				}
			}
		})
	}

	t.Run("TheServiceDecides", func(t *testing.T) {
		sec, err := s.access.ActorFor(ctx, s.acct.ID, sam.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.access.UserTokens(ctx, sec, pat.ID); usher.ErrorCode(err) != usher.EFORBIDDEN {
			t.Errorf("a secondary admin: got %v, want forbidden", err)
		}
		if got, err := s.access.UserTokens(ctx, sys, 1<<40); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Errorf("an unknown user: got %v %v, want not found", got, err)
		}
	})
}
