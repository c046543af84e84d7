package web_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

type (
	groupJSON struct {
		ID            int64  `json:"id"`
		Name          string `json:"name"`
		Description   string `json:"description"`
		Synced        bool   `json:"synced"`
		MemberCount   int    `json:"member_count"`
		Subscriptions []struct {
			SubscriptionID int64    `json:"subscription_id"`
			Services       []string `json:"services"`
			Benefits       []string `json:"benefits"`
			Seated         int      `json:"seated"`
			Waiting        int      `json:"waiting"`
		} `json:"subscriptions"`
		Exclusions []usher.GroupExclusion `json:"exclusions"`
		Waiting    []usher.Waiter         `json:"waiting"`
	}
	membersResult struct {
		Added, Removed, Seated, Waiting, Freed int
	}
	waiterPage struct {
		Items []usher.Waiter `json:"items"`
	}
	sourcedAccess struct {
		Subscriptions []struct {
			Subscription subJSON            `json:"subscription"`
			Assigned     bool               `json:"assigned"`
			Waiting      bool               `json:"waiting"`
			Sources      []usher.SeatSource `json:"sources"`
		} `json:"subscriptions"`
	}
)

func (c *client) sources(userID, subID int64) (assigned, waiting bool, src []usher.SeatSource) {
	c.t.Helper()
	var a sourcedAccess
	c.ok(http.StatusOK, "GET", "/api/v1/users/"+itoa(userID)+"/access", nil, &a)
	for _, e := range a.Subscriptions {
		if e.Subscription.ID == subID {
			return e.Assigned, e.Waiting, e.Sources
		}
	}
	return false, false, nil
}

// TestGroupsAPI drives groups end to end over HTTP: 100 members, 60 free
// seats, 40 waiting, 5 seats freed, 5 oldest waiters seated.
func TestGroupsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		sub := c.createSubscription("C-1", "modelstudio", 61, e.adminU.ID, "web_support")
		var g groupJSON
		r := c.ok(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "Design", "description": "Designers"}, &g)
		if r.Header.Get("Location") != "/api/v1/groups/"+itoa(g.ID) || g.Name != "Design" || g.Synced {
			t.Fatalf("create group: %s %+v", r.Header.Get("Location"), g)
		}
		c.fail(http.StatusConflict, usher.ECONFLICT, "POST", "/api/v1/groups", map[string]any{"name": "design"})
		c.fail(422, usher.EINVALID, "POST", "/api/v1/groups", map[string]any{"name": " ", "external_id": "x"}, "name", "external_id")
		c.fail(422, usher.EINVALID, "PUT", "/api/v1/groups/"+itoa(g.ID)+"/subscriptions/"+itoa(sub.ID),
			map[string]any{"services": []string{"nope"}, "benefits": []string{"training"}}, "services[0]", "benefits[0]")
		c.ok(http.StatusOK, "PUT", "/api/v1/groups/"+itoa(g.ID)+"/subscriptions/"+itoa(sub.ID),
			map[string]any{"services": []string{"rendering"}, "benefits": []string{"web_support"}}, &g)
		if len(g.Subscriptions) != 1 || !slices.Equal(g.Subscriptions[0].Services, []string{"rendering"}) {
			t.Fatalf("assign group: %+v", g.Subscriptions)
		}

		ids := make([]int64, 100)
		for i := range ids {
			ids[i] = c.createUser(fmt.Sprintf("m%03d@example.com", i)).ID
		}
		var res membersResult
		c.ok(http.StatusOK, "POST", "/api/v1/groups/"+itoa(g.ID)+"/members", map[string]any{"user_ids": ids}, &res)
		if res.Added != 100 || res.Seated != 60 || res.Waiting != 40 {
			t.Fatalf("add members: %+v", res)
		}
		if s := c.subscription(sub.ID); s.SeatsUsed != 61 || s.SeatsAvailable != 0 {
			t.Fatalf("subscription: %+v", s)
		}
		var waiting waiterPage
		c.ok(http.StatusOK, "GET", "/api/v1/subscriptions/"+itoa(sub.ID)+"/waiting", nil, &waiting)
		if len(waiting.Items) != 40 || waiting.Items[0].UserID != ids[60] || waiting.Items[0].Position != 1 {
			t.Fatalf("waiting on the subscription: %d, first %+v", len(waiting.Items), waiting.Items[0])
		}
		c.ok(http.StatusOK, "GET", "/api/v1/groups/"+itoa(g.ID), nil, &g)
		if g.MemberCount != 100 || len(g.Waiting) != 40 || g.Subscriptions[0].Seated != 60 || g.Subscriptions[0].Waiting != 40 {
			t.Fatalf("group: %d members, %d waiting, %+v", g.MemberCount, len(g.Waiting), g.Subscriptions)
		}
		assigned, _, src := c.sources(ids[0], sub.ID)
		if !assigned || len(src) != 1 || src[0].GroupName != "Design" || src[0].Direct {
			t.Fatalf("member 0: assigned %v, sources %+v", assigned, src)
		}
		if _, w, _ := c.sources(ids[99], sub.ID); !w {
			t.Fatal("member 99 is not shown waiting")
		}

		// Free 5 seats by removing 5 members.
		for _, id := range ids[:5] {
			c.ok(http.StatusNoContent, "DELETE", "/api/v1/groups/"+itoa(g.ID)+"/members/"+itoa(id), nil, nil)
		}
		c.fail(http.StatusNotFound, usher.ENOTFOUND, "DELETE", "/api/v1/groups/"+itoa(g.ID)+"/members/"+itoa(ids[0]), nil)
		c.ok(http.StatusOK, "GET", "/api/v1/subscriptions/"+itoa(sub.ID)+"/waiting", nil, &waiting)
		got := make([]int64, len(waiting.Items))
		for i, w := range waiting.Items {
			got[i] = w.UserID
		}
		if !slices.Equal(got, ids[65:]) {
			t.Fatalf("waiting after 5 left: got %v, want members 65..99", got)
		}
		for _, id := range ids[60:65] {
			if a, _, _ := c.sources(id, sub.ID); !a {
				t.Fatalf("waiter %d not seated", id)
			}
		}

		// Unassigning a group-held seat excludes the member; removing the
		// exclusion gives the seat back (or a place in the queue).
		var ur struct{ Seats, Users int }
		c.ok(http.StatusOK, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{{"user_id": ids[10], "subscription_id": sub.ID}}}, &ur)
		if ur.Seats != 1 {
			t.Fatalf("unassign: %+v", ur)
		}
		if a, _, _ := c.sources(ids[65], sub.ID); !a {
			t.Fatal("the oldest waiter did not take the unassigned seat")
		}
		c.ok(http.StatusOK, "GET", "/api/v1/groups/"+itoa(g.ID), nil, &g)
		if len(g.Exclusions) != 1 || g.Exclusions[0].UserID != ids[10] {
			t.Fatalf("exclusions: %+v", g.Exclusions)
		}
		c.ok(http.StatusNoContent, "DELETE", "/api/v1/groups/"+itoa(g.ID)+"/subscriptions/"+itoa(sub.ID)+"/exclusions/"+itoa(ids[10]), nil, nil)
		if _, w, _ := c.sources(ids[10], sub.ID); !w {
			t.Fatal("an included member did not join the waiting list")
		}
		var audit auditPage
		c.ok(http.StatusOK, "GET", "/api/v1/audit-log?action=group.exclude", nil, &audit)
		if len(audit.Items) != 1 || audit.Items[0].TargetUserID != ids[10] {
			t.Fatalf("group.exclude audit: %+v", audit.Items)
		}

		// Taking the subscription from the group frees every seat it gave.
		c.ok(http.StatusNoContent, "DELETE", "/api/v1/groups/"+itoa(g.ID)+"/subscriptions/"+itoa(sub.ID), nil, nil)
		if s := c.subscription(sub.ID); s.SeatsUsed != 1 {
			t.Fatalf("seats used after unassigning the group: %d, want 1", s.SeatsUsed)
		}
		c.ok(http.StatusOK, "GET", "/api/v1/subscriptions/"+itoa(sub.ID)+"/waiting", nil, &waiting)
		if len(waiting.Items) != 0 {
			t.Fatalf("still waiting: %d", len(waiting.Items))
		}
		c.ok(http.StatusOK, "PATCH", "/api/v1/groups/"+itoa(g.ID), map[string]any{"name": "Design team"}, &g)
		if g.Name != "Design team" {
			t.Fatalf("patch: %+v", g)
		}
		var members struct {
			Items      []userJSON `json:"items"`
			NextCursor string     `json:"next_cursor"`
		}
		c.ok(http.StatusOK, "GET", "/api/v1/groups/"+itoa(g.ID)+"/members?limit=10", nil, &members)
		if len(members.Items) != 10 || members.NextCursor == "" {
			t.Fatalf("members page: %d, cursor %q", len(members.Items), members.NextCursor)
		}
		var list struct{ Items []groupJSON }
		c.ok(http.StatusOK, "GET", "/api/v1/groups?q=team", nil, &list)
		if len(list.Items) != 1 || list.Items[0].MemberCount != 95 {
			t.Fatalf("list: %+v", list.Items)
		}
		c.ok(http.StatusNoContent, "DELETE", "/api/v1/groups/"+itoa(g.ID), nil, nil)
		c.fail(http.StatusNotFound, usher.ENOTFOUND, "GET", "/api/v1/groups/"+itoa(g.ID), nil)
	})
}

// TestGroupsAPIConcurrentMembers adds and removes members and assigns seats
// directly in parallel requests; the subscription is never oversubscribed.
func TestGroupsAPIConcurrentMembers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		const seats = 10
		sub := c.createSubscription("C-1", "draftpro", seats, e.adminU.ID)
		var g groupJSON
		c.ok(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "All"}, &g)
		c.ok(http.StatusOK, "PUT", "/api/v1/groups/"+itoa(g.ID)+"/subscriptions/"+itoa(sub.ID), map[string]any{}, nil)
		ids := make([]int64, 24)
		for i := range ids {
			ids[i] = c.createUser(fmt.Sprintf("p%02d@example.com", i)).ID
		}
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch i % 3 {
				case 0, 1:
					r := c.do("POST", "/api/v1/groups/"+itoa(g.ID)+"/members", map[string]any{"user_ids": []int64{id}})
					if r.Status != http.StatusOK {
						t.Errorf("add member: %d %s", r.Status, r.Body)
					}
				case 2:
					r := c.do("PUT", "/api/v1/users/"+itoa(id)+"/access", map[string]any{"subscriptions": []map[string]any{{"subscription_id": sub.ID, "assigned": true}}})
					if r.Status != http.StatusOK && r.Status != http.StatusConflict {
						t.Errorf("assign: %d %s", r.Status, r.Body)
					}
				}
			}()
		}
		wg.Wait()
		s := c.subscription(sub.ID)
		var waiting waiterPage
		c.ok(http.StatusOK, "GET", "/api/v1/subscriptions/"+itoa(sub.ID)+"/waiting", nil, &waiting)
		held := 0
		for _, id := range ids {
			if a, _, _ := c.sources(id, sub.ID); a {
				held++
			}
		}
		if s.SeatsUsed != seats || held != seats-1 || len(waiting.Items) != 16-(seats-1-countDirect(c, ids, sub.ID)) {
			t.Fatalf("seats used %d of %d, members holding %d, waiting %d", s.SeatsUsed, seats, held, len(waiting.Items))
		}
	})
}

// countDirect counts the users holding the seat only directly.
func countDirect(c *client, ids []int64, subID int64) int {
	n := 0
	for _, id := range ids {
		if a, _, src := c.sources(id, subID); a && len(src) == 1 && src[0].Direct {
			n++
		}
	}
	return n
}

// TestUsageReportSaysHowSeatsReachUsers: the report (JSON and CSV) names
// each seat's sources, and unassigning a group-held seat from it excludes
// the user from the group's assignment.
func TestUsageReportSaysHowSeatsReachUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 0)
		c := u.admin
		both := u.seat("both@acme.test", u.std)
		viaGroup := c.createUser("group@acme.test")
		var g groupJSON
		c.ok(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "=Design"}, &g)
		c.ok(http.StatusOK, "PUT", "/api/v1/groups/"+itoa(g.ID)+"/subscriptions/"+itoa(u.std.ID), map[string]any{}, nil)
		c.ok(http.StatusOK, "POST", "/api/v1/groups/"+itoa(g.ID)+"/members", map[string]any{"user_ids": []int64{both.ID, viaGroup.ID}}, nil)

		var rep struct {
			Rows []struct {
				Email   string             `json:"email"`
				Sources []usher.SeatSource `json:"sources"`
			} `json:"rows"`
		}
		c.ok(http.StatusOK, "GET", "/api/v1/reports/usage?product=draftpro&sort=email", nil, &rep)
		got := map[string][]usher.SeatSource{}
		for _, r := range rep.Rows {
			got[r.Email] = r.Sources
		}
		if s := got["both@acme.test"]; len(s) != 2 || !s[0].Direct || s[1].GroupName != "=Design" {
			t.Fatalf("both: %+v", s)
		}
		if s := got["group@acme.test"]; len(s) != 1 || s[0].GroupID != g.ID {
			t.Fatalf("via group: %+v", s)
		}
		if s := got["admin@acme.test"]; len(s) != 1 || !s[0].Direct {
			t.Fatalf("admin: %+v", s)
		}
		r := c.do("GET", "/api/v1/reports/usage?product=draftpro&sort=email", nil, "Accept", "text/csv")
		recs, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		bySource := map[string]string{}
		for _, rec := range recs[1:] {
			bySource[rec[1]] = rec[12]
		}
		if bySource["both@acme.test"] != "direct; group =Design" || bySource["group@acme.test"] != "group =Design" {
			t.Fatalf("CSV sources: %q", bySource)
		}

		c.ok(http.StatusOK, "POST", "/api/v1/unassign", map[string]any{"items": []map[string]any{{"user_id": both.ID, "subscription_id": u.std.ID}}}, nil)
		if a, _, _ := c.sources(both.ID, u.std.ID); a {
			t.Fatal("unassigning a seat held directly and through a group kept it")
		}
		c.ok(http.StatusOK, "GET", "/api/v1/groups/"+itoa(g.ID), nil, &g)
		if len(g.Exclusions) != 1 || g.Exclusions[0].UserID != both.ID {
			t.Fatalf("exclusions: %+v", g.Exclusions)
		}
	})
}
