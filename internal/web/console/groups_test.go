package console_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// groupSite is an account with a one-seat contract C-1, users Bob and Cy,
// and Cora, software coordinator of C-1, each with a password.
type groupSite struct {
	*httpSite
	sub         usher.Subscription
	bob, cy, co usher.User
}

func newGroupSite(t *testing.T) *groupSite {
	t.Helper()
	s := &groupSite{httpSite: newHTTPSite(t, false)}
	ctx := context.Background()
	sys := usher.System(s.acct.ID)
	mk := func(name, email string) usher.User {
		u, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.auth.SetPassword(ctx, s.acct.ID, u.ID, password); err != nil {
			t.Fatal(err)
		}
		return u
	}
	s.bob, s.cy, s.co = mk("Bob Baker", "bob@acme.test"), mk("Cy Carter", "cy@acme.test"), mk("Cora Coordinator", "cora@acme.test")
	one, no := 1, false
	d := func(x string) usher.Date { v, _ := usher.ParseDate(x); return v }
	var err error
	s.sub, err = s.access.CreateSubscription(ctx, sys, access.NewSubscription{Product: "modelstudio", Plan: usher.PlanStandard, Seats: &one,
		ContractNumber: "C-1", TermStart: d("2026-01-01"), TermEnd: d("2027-12-31"), Benefits: []string{"web_support"},
		ContractManagerID: s.admin.ID, AssignManagerSeat: &no})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.access.GrantRole(ctx, sys, usher.RoleGrant{UserID: s.co.ID, Role: usher.RoleSoftwareCoordinator, SubscriptionID: s.sub.ID}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (c *browserless) wantStatus(a answer, status int, wants ...string) {
	c.t.Helper()
	body := html.UnescapeString(a.body)
	if a.status != status {
		c.t.Fatalf("got %d, want %d:\n%s", a.status, status, body)
	}
	for _, w := range wants {
		if !strings.Contains(body, w) {
			c.t.Errorf("the page lacks %q:\n%s", w, body)
		}
	}
}

// follow sends a request and, when it answers with a redirect, gets the page
// it points to.
func (c *browserless) follow(method, path string, form url.Values) answer {
	c.t.Helper()
	a := c.send(method, path, form)
	if a.status == http.StatusSeeOther {
		return c.send("GET", a.header.Get("Location"), nil)
	}
	return a
}

func TestGroupPages(t *testing.T) {
	s := newGroupSite(t)
	ctx := context.Background()
	sys := usher.System(s.acct.ID)
	ada := s.client()
	ada.signIn("ada@acme.test", password)

	ada.wantStatus(ada.send("GET", "/groups", nil), http.StatusOK, "There are no groups yet", `href="/groups"`)
	var id int64
	t.Run("CreateNamesTheMissingName", func(t *testing.T) {
		a := ada.send("POST", "/groups", url.Values{"name": {"  "}})
		ada.wantStatus(a, http.StatusUnprocessableEntity, "Nothing was changed", "name")
		a = ada.send("POST", "/groups", url.Values{"name": {"Design"}, "description": {"The design team"}})
		if a.status != http.StatusSeeOther {
			t.Fatalf("create: %d %s", a.status, a.body)
		}
		if _, err := fmt.Sscanf(a.header.Get("Location"), "/groups/%d", &id); err != nil {
			t.Fatalf("create went to %q", a.header.Get("Location"))
		}
		ada.wantStatus(ada.send("GET", a.header.Get("Location"), nil), http.StatusOK, "The group Design has been created", "The design team", "0 members")
	})
	gp := fmt.Sprintf("/groups/%d", id)

	t.Run("AddMembersByEmailAndBySearch", func(t *testing.T) {
		ada.wantStatus(ada.follow("POST", gp+"/members", url.Values{"member": {"BOB@acme.test"}}), http.StatusOK, "Bob Baker has been added")
		// "acme" matches several people: the page lists them to choose from.
		a := ada.send("POST", gp+"/members", url.Values{"member": {"acme"}})
		ada.wantStatus(a, http.StatusOK, "users match “acme”", "Cy Carter")
		ada.wantStatus(ada.follow("POST", gp+"/members", url.Values{"member": {"carter"}}), http.StatusOK, "Cy Carter has been added")
		ada.wantStatus(ada.send("POST", gp+"/members", url.Values{"member": {"nobody-here"}}), http.StatusUnprocessableEntity, "no user’s name or email contains")
		members, err := s.access.GroupMembers(ctx, sys, id, "", 10)
		if err != nil || len(members.Items) != 2 {
			t.Fatalf("stored members: %+v %v, want Bob and Cy", members.Items, err)
		}
	})

	t.Run("AssigningOneSeatToTwoMembersLeavesOneWaiting", func(t *testing.T) {
		a := ada.follow("POST", fmt.Sprintf("%s/subscriptions/%d", gp, s.sub.ID), url.Values{"service": {"cloud_storage"}, "benefit": {"web_support"}})
		ada.wantStatus(a, http.StatusOK, "Contract C-1 has been given to the group: 1 seat held through it, 1 member waiting for one", "Cloud storage", "Web support")
		if n := regexp.MustCompile(`id="group-waiting"`).FindAllString(a.body, -1); len(n) != 1 {
			t.Error("the group's page shows no waiting list")
		}
		w, err := s.access.Waiting(ctx, sys, s.sub.ID)
		if err != nil || len(w) != 1 || w[0].UserID != s.cy.ID {
			t.Fatalf("waiting: %+v %v, want Cy (the newer member)", w, err)
		}
		ada.wantStatus(ada.send("GET", "/subscriptions", nil), http.StatusOK, "1 waiting")
		ada.wantStatus(ada.send("GET", fmt.Sprintf("/subscriptions/%d/waiting", s.sub.ID), nil), http.StatusOK, "1 person waits", "Cy Carter", "cy@acme.test")
		// Bob's page says his seat comes through the group.
		ada.wantStatus(ada.send("GET", fmt.Sprintf("/users/%d", s.bob.ID), nil), http.StatusOK, fmt.Sprintf(`<a href="/groups/%d">Design</a>`, id), "group <a")
		ada.wantStatus(ada.send("GET", fmt.Sprintf("/users/%d", s.cy.ID), nil), http.StatusOK, "Waiting for a seat", "C-1")
	})

	t.Run("ACoordinatorSeesButCannotChange", func(t *testing.T) {
		co := s.client()
		co.signIn("cora@acme.test", password)
		a := co.send("GET", gp, nil)
		co.wantStatus(a, http.StatusOK, "Bob Baker", "Cy Carter")
		for _, form := range []string{`id="edit-group"`, `id="add-member"`, `/members/remove"`, `id="delete-group"`, `/unassign"`} {
			if strings.Contains(a.body, form) {
				t.Errorf("a software coordinator is offered %s", form)
			}
		}
		if strings.Contains(co.send("GET", "/groups", nil).body, `id="create-group"`) {
			t.Error("a software coordinator is offered Create a group")
		}
		for path, form := range map[string]url.Values{
			"/groups":              {"name": {"Sneaky"}},
			gp:                     {"name": {"Renamed"}},
			gp + "/members":        {"member": {"cora@acme.test"}},
			gp + "/members/remove": {"user_id": {fmt.Sprint(s.bob.ID)}},
			gp + "/delete":         {},
			fmt.Sprintf("%s/subscriptions/%d/unassign", gp, s.sub.ID): {},
		} {
			if a := co.send("POST", path, form); a.status != http.StatusForbidden {
				t.Errorf("POST %s by a coordinator: %d, want 403", path, a.status)
			}
		}
		d, err := s.access.Group(ctx, sys, id)
		if err != nil || d.Name != "Design" || d.MemberCount != 2 || len(d.Subscriptions) != 1 {
			t.Fatalf("after refused changes: %+v %v", d, err)
		}
	})

	t.Run("RemovingTheSeatedMemberSeatsTheWaitingOne", func(t *testing.T) {
		a := ada.follow("POST", gp+"/members/remove", url.Values{"user_id": {fmt.Sprint(s.bob.ID)}})
		ada.wantStatus(a, http.StatusOK, "Bob Baker has been removed: 1 seat freed", "No member waits for a seat")
		ua, err := s.access.Access(ctx, sys, s.cy.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ua.Subscriptions {
			if e.Subscription.ID == s.sub.ID && !e.Assigned {
				t.Fatal("Cy did not get the seat Bob's leaving freed")
			}
		}
	})

	t.Run("AnUnassignedMemberIsExcludedUntilIncludedAgain", func(t *testing.T) {
		// Unassigning Cy's group seat (as the Usage Report does) excludes
		// him; the contract's software coordinator may include him again.
		if _, err := s.access.Unassign(ctx, sys, []access.UnassignItem{{UserID: s.cy.ID, SubscriptionID: s.sub.ID}}); err != nil {
			t.Fatal(err)
		}
		co := s.client()
		co.signIn("cora@acme.test", password)
		a := co.send("GET", gp, nil)
		co.wantStatus(a, http.StatusOK, "cy@acme.test", "Include again")
		a = co.follow("POST", fmt.Sprintf("%s/subscriptions/%d/include", gp, s.sub.ID), url.Values{"user_id": {fmt.Sprint(s.cy.ID)}})
		co.wantStatus(a, http.StatusOK, "Cy Carter is included again", "No member is excluded")
		if sub, _ := s.access.Subscription(ctx, sys, s.sub.ID); sub.SeatsUsed != 1 {
			t.Fatalf("seats used after include: %d, want 1 (Cy's)", sub.SeatsUsed)
		}
		if a := co.send("POST", fmt.Sprintf("%s/subscriptions/%d/include", gp, s.sub.ID), url.Values{"user_id": {"x"}}); a.status != http.StatusUnprocessableEntity {
			t.Errorf("include with a bad user id: %d, want 422", a.status)
		}
	})

	t.Run("UnassignAndDelete", func(t *testing.T) {
		ada.wantStatus(ada.follow("POST", fmt.Sprintf("%s/subscriptions/%d/unassign", gp, s.sub.ID), nil), http.StatusOK, "has been taken from the group", "The group is given no contract")
		if sub, _ := s.access.Subscription(ctx, sys, s.sub.ID); sub.SeatsUsed != 0 {
			t.Fatalf("seats used after unassign: %d, want 0", sub.SeatsUsed)
		}
		ada.wantStatus(ada.follow("POST", gp, url.Values{"name": {"Designers"}, "description": {""}}), http.StatusOK, "Your changes have been saved", "Group Designers")
		ada.wantStatus(ada.follow("POST", gp+"/delete", nil), http.StatusOK, "The group Designers has been deleted")
		if _, err := s.access.Group(ctx, sys, id); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("after delete: %v", err)
		}
	})

	t.Run("SyncedGroupsAreReadOnly", func(t *testing.T) {
		scim := sys
		scim.Scope = usher.ScopeSCIM
		name := "Engineering"
		g, err := s.access.CreateGroup(ctx, scim, access.GroupInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprintf("/groups/%d", g.ID)
		a := ada.send("GET", p, nil)
		ada.wantStatus(a, http.StatusOK, "Synced by SCIM", "read-only here")
		if strings.Contains(a.body, `id="edit-group"`) || strings.Contains(a.body, `id="add-member"`) {
			t.Error("a synced group offers its name or members to change")
		}
		if !strings.Contains(a.body, fmt.Sprintf(`/subscriptions/%d"`, s.sub.ID)) {
			t.Error("a synced group's contracts cannot be given in the console")
		}
		ada.wantStatus(ada.send("POST", p, url.Values{"name": {"Renamed"}}), http.StatusConflict, "synced from the identity provider")
		ada.wantStatus(ada.send("GET", "/groups", nil), http.StatusOK, "Engineering", "Synced by SCIM")
	})
}

func TestGroupsListPages(t *testing.T) {
	s := newGroupSite(t)
	sys := usher.System(s.acct.ID)
	for i := range 30 {
		name := fmt.Sprintf("Team %02d", i)
		if _, err := s.access.CreateGroup(context.Background(), sys, access.GroupInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	c := s.client()
	c.signIn("ada@acme.test", password)
	a := c.send("GET", "/groups", nil)
	c.wantStatus(a, http.StatusOK, "Team 00", "Team 24", "Next page")
	if strings.Contains(a.body, "Team 25") || strings.Contains(a.body, "Previous page") {
		t.Fatal("the first page shows more than 25 groups, or a Previous page")
	}
	next := html.UnescapeString(regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(a.body)[1])
	a = c.send("GET", next, nil)
	c.wantStatus(a, http.StatusOK, "Team 25", "Team 29", "Previous page", "First page")
	if strings.Contains(a.body, "Team 24") || strings.Contains(a.body, "Next page") {
		t.Fatal("the second page repeats the first or offers a third")
	}
}

// upload posts a file to the import form as a browser does.
func (c *browserless) upload(name string, content []byte) answer {
	c.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		c.t.Fatal(err)
	}
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", c.site.url+"/users/import", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// hiddenContent is the file a dry run's page sends back with Import.
func hiddenContent(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`name="content" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the dry run offers no Import:\n%s", body)
	}
	return html.UnescapeString(m[1])
}

func TestImportUsersInConsole(t *testing.T) {
	s := newGroupSite(t)
	ctx := context.Background()
	sys := usher.System(s.acct.ID)
	ada := s.client()
	ada.signIn("ada@acme.test", password)
	exists := func(email string) bool {
		_, err := s.access.UserByEmail(ctx, sys, email)
		return err == nil
	}

	ada.wantStatus(ada.send("GET", "/users/import", nil), http.StatusOK, "At most 2 MB", "email", "subscriptions")

	t.Run("OnlyAdminsImport", func(t *testing.T) {
		co := s.client()
		co.signIn("cora@acme.test", password)
		co.wantStatus(co.send("GET", "/users/import", nil), http.StatusForbidden, "Only primary and secondary admins")
		if a := co.upload("people.csv", []byte("email\nzed@acme.test\n")); a.status != http.StatusForbidden || exists("zed@acme.test") {
			t.Fatalf("a coordinator's upload: %d", a.status)
		}
	})

	t.Run("ProblemsAreListedByLineAndNothingChanges", func(t *testing.T) {
		a := ada.upload("people.csv", []byte("email,name,subscriptions\nnew@acme.test,New,\nnot-an-email,X,\nzoe@acme.test,Zoe,C-404\n"))
		ada.wantStatus(a, http.StatusOK, "The import would fail", "not-an-email", "no contract numbered C-404")
		for _, want := range []string{`<th scope="row" role="rowheader" class="num">3</th>`, `<th scope="row" role="rowheader" class="num">4</th>`} {
			if !strings.Contains(a.body, want) {
				t.Errorf("the problems do not name their line (%s):\n%s", want, a.body)
			}
		}
		if strings.Contains(a.body, `id="run-import"`) || exists("new@acme.test") {
			t.Fatal("a file with problems is offered for import, or changed something")
		}
		ada.wantStatus(ada.upload("people.csv", []byte("email,name\n")), http.StatusUnprocessableEntity, "has no user lines")
		a = ada.upload("people.csv", []byte("email,colour\nx@acme.test,red\n"))
		ada.wantStatus(a, http.StatusUnprocessableEntity, `"colour" is not a column`)
		a = ada.upload("people.csv", append([]byte("email,name\nbad@acme.test,"), 0xff, '\n'))
		ada.wantStatus(a, http.StatusUnprocessableEntity, "not UTF-8")
		a = ada.upload("people.csv", []byte("email,name\nbad@acme.test,\"Tab\tName\"\n"))
		ada.wantStatus(a, http.StatusOK, "control character")
		a = ada.upload("big.csv", bytes.Repeat([]byte("x"), 2<<20+1))
		ada.wantStatus(a, http.StatusRequestEntityTooLarge, "larger than 2 MB")
	})

	file := []byte("email,name,groups,roles,subscriptions\n" +
		"dan@acme.test,Dan,Design,,C-1:cloud_storage\n" +
		"eve@acme.test,Eve,Design,software_coordinator:C-1,\n" +
		"bob@acme.test,Robert Baker,,,\n")
	var content string
	t.Run("DryRunListsChangesAndChangesNothing", func(t *testing.T) {
		a := ada.upload("people.csv", file)
		ada.wantStatus(a, http.StatusOK, "Checked 3 of 3 lines", "would make", "2 users created, 1 updated, 1 group created",
			"create user Dan", "assign C-1", "grant software_coordinator on C-1", `rename "Bob Baker" to "Robert Baker"`, "Nothing has been changed yet")
		content = hiddenContent(t, a.body)
		if exists("dan@acme.test") || exists("eve@acme.test") {
			t.Fatal("the dry run created users")
		}
		if _, err := s.access.GroupByName(ctx, sys, "Design"); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("the dry run created a group: %v", err)
		}
		if u, _ := s.access.UserByEmail(ctx, sys, "bob@acme.test"); u.Name != "Bob Baker" {
			t.Fatalf("the dry run renamed Bob to %q", u.Name)
		}
	})

	t.Run("ImportIsAllOrNothing", func(t *testing.T) {
		// Meanwhile someone takes C-1's only seat: Dan's line fails, so
		// nothing at all is imported.
		if err := s.access.Assign(ctx, sys, s.cy.ID, s.sub.ID, nil); err != nil {
			t.Fatal(err)
		}
		a := ada.send("POST", "/users/import/run", url.Values{"name": {"people.csv"}, "content": {content}})
		ada.wantStatus(a, http.StatusOK, "Nothing was imported")
		if exists("dan@acme.test") || exists("eve@acme.test") {
			t.Fatal("a failed import left users behind")
		}
		if _, err := s.access.Unassign(ctx, sys, []access.UnassignItem{{UserID: s.cy.ID, SubscriptionID: s.sub.ID}}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ImportAppliesEverythingAndSaysSoOnce", func(t *testing.T) {
		a := ada.send("POST", "/users/import/run", url.Values{"name": {"people.csv"}, "content": {content}})
		ada.wantStatus(a, http.StatusOK, "Imported 3 of 3 lines", `http-equiv="refresh"`, "Continue to Users")
		if !exists("dan@acme.test") || !exists("eve@acme.test") {
			t.Fatal("the import created nobody")
		}
		g, err := s.access.GroupByName(ctx, sys, "Design")
		if err != nil || g.MemberCount != 2 {
			t.Fatalf("group after import: %+v %v", g, err)
		}
		if sub, _ := s.access.Subscription(ctx, sys, s.sub.ID); sub.SeatsUsed != 1 {
			t.Fatalf("seats used: %d, want 1 (Dan's)", sub.SeatsUsed)
		}
		ada.wantStatus(ada.send("GET", "/users", nil), http.StatusOK, "Imported people.csv (3 lines): 2 users created, 1 updated, 1 group created, 2 memberships, 1 role granted, 1 seat given")
		if strings.Contains(ada.send("GET", "/users", nil).body, "Imported people.csv") {
			t.Error("the import's message is shown twice")
		}
	})

	t.Run("ATamperedFileIsRefused", func(t *testing.T) {
		a := ada.send("POST", "/users/import/run", url.Values{"content": {"%%% not base64"}})
		ada.wantStatus(a, http.StatusUnprocessableEntity, "upload it again")
	})
}
