package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// TestGroupsInBrowser: Ada creates a group, adds members, gives it DP-1
// (3 seats) and sees who waits, on the group's page and the contract's;
// removing a seated member seats the first waiter. Then she imports users
// from a CSV file: a dry run, then the import. Every page is checked with
// axe-core and for overflow at 1280 and 375 px.
func TestGroupsInBrowser(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	sys := usher.System(s.acct.ID)
	var extra []int64
	for _, name := range []string{"Dee Dyer", "Eli Evans", "Fay Fox"} {
		email := strings.ToLower(strings.Fields(name)[0]) + "@acme.test"
		u, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, u.ID)
	}
	browser := newBrowser(t)
	ada := s.person(t, browser, "ada")
	dp := s.dp

	ada.wantText("header nav", "Groups")
	ada.submit(`header nav a[href="/groups"]`)
	ada.wantText("main h1", "Groups")
	ada.wantText("#no-groups", "There are no groups yet")
	ada.screenshot("groups-empty")

	ada.do(
		chromedp.SetValue(chromedp.CSS("#new-name"), "Design"),
		chromedp.SetValue(chromedp.CSS("#new-description"), "Product design team"),
	)
	ada.submit("#create-group-submit")
	ada.wantText(".message", "The group Design has been created")
	ada.wantText("main h1", "Design")
	g, err := s.access.GroupByName(ctx, sys, "Design")
	if err != nil {
		t.Fatalf("the group is not stored: %v", err)
	}
	groupPage := fmt.Sprintf("/groups/%d", g.ID)

	// By email, then by a search that finds several people and a choice.
	ada.do(chromedp.SetValue(chromedp.CSS("#member"), "ben@acme.test"))
	ada.submit("#add-member-submit")
	ada.wantText(".message", "Ben Baker has been added")
	ada.do(chromedp.SetValue(chromedp.CSS("#member"), "acme"))
	ada.submit("#add-member-submit")
	ada.wantText("#matches", "choose one", "Max Manager")
	ada.submit(fmt.Sprintf(`#matches input[value="%d"] + button`, s.users["max"].ID))
	ada.wantText(".message", "Max Manager has been added")
	if _, err := s.access.AddMembers(ctx, sys, g.ID, extra); err != nil {
		t.Fatal(err)
	}
	ada.open(groupPage)
	ada.wantText("#member-count", "5 members")

	// DP-1 has 3 seats for 5 members: the 2 newest wait.
	ada.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("#offer-%d summary", dp.ID))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf("#offer-%d-benefit-web_support", dp.ID))))
	ada.submit(fmt.Sprintf("#offer-%d-submit", dp.ID))
	ada.wantText(".message", "Contract DP-1 has been given to the group: 3 seats held through it, 2 members waiting for one")
	ada.wantText(fmt.Sprintf("#group-sub-%d .seated", dp.ID), "3")
	ada.wantText(fmt.Sprintf("#group-sub-%d .waiting", dp.ID), "2")
	ada.wantText("#group-waiting", "Eli Evans", "Fay Fox")
	if n := ada.evalInt(`document.querySelectorAll("#group-waiting tbody tr").length`); n != 2 {
		t.Fatalf("waiting rows: %d, want 2", n)
	}
	if got := s.seatsUsed(dp.ID); got != 3 {
		t.Fatalf("DP-1 seats used: %d, want 3, never more than bought", got)
	}
	ada.screenshot("group")

	ada.open("/subscriptions")
	ada.wantText(fmt.Sprintf("#sub-%d .waiting-link", dp.ID), "2 waiting")
	ada.submit(fmt.Sprintf("#sub-%d .waiting-link", dp.ID))
	ada.wantText("main h1", "Waiting list", "DP-1")
	ada.wantText("#waiting", "Eli Evans", "Fay Fox")
	ada.screenshot("subscription-waiting")

	// Ben's page names the group his DP-1 seat comes through.
	ada.open(fmt.Sprintf("/users/%d", s.users["ben"].ID))
	ada.wantText("#person-groups", "Design")
	ada.wantText("table.person-seats", "DraftPro", "group Design")
	ada.screenshot("person-groups")

	// Removing Ben, after the console's confirmation, frees his seat for Eli.
	ada.open(groupPage)
	ada.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("#member-%d button", s.users["ben"].ID))))
	ada.wantText("#confirm-text", "Remove Ben Baker from Design?")
	ada.submit("#confirm-ok")
	ada.wantText(".message", "Ben Baker has been removed: 1 seat freed")
	if n := ada.evalInt(`document.querySelectorAll("#group-waiting tbody tr").length`); n != 1 {
		t.Fatalf("waiting rows after a seat freed: %d, want 1", n)
	}
	ada.wantText("#group-waiting", "Fay Fox")
	if got := s.seatsUsed(dp.ID); got != 3 {
		t.Fatalf("DP-1 seats used: %d, want 3 (Ben's went to Eli)", got)
	}

	ada.open("/groups")
	ada.wantText(fmt.Sprintf("#group-%d", g.ID), "Design", "Product design team", "4")
	ada.screenshot("groups")

	scim := sys
	scim.Scope = usher.ScopeSCIM
	name := "Engineering"
	eng, err := s.access.CreateGroup(ctx, scim, access.GroupInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	ada.open(fmt.Sprintf("/groups/%d", eng.ID))
	ada.wantText("#synced-note", "read-only here")
	if ada.exists("#edit-group") || ada.exists("#add-member") {
		t.Error("a synced group offers its name or members to change")
	}
	ada.screenshot("group-synced")

	// The import: a dry run that changes nothing, then the import.
	file := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(file, []byte("email,name,groups,subscriptions\n"+
		"gus@acme.test,Gus Green,Design,\n"+
		"hal@acme.test,Hal Hart,CAD,MS-1:cloud_storage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ada.open("/users")
	ada.submit("#import-users")
	ada.wantText("main h1", "Import users")
	ada.wantText("#file-hint", "At most 2 MB")
	ada.screenshot("user-import")
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("email,name,subscriptions\nnot-an-email,X,\nivy@acme.test,Ivy,XX-9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ada.do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{bad}))
	ada.submit("#check-import")
	ada.wantText("#import-problems", "not-an-email", "no contract numbered XX-9")
	if ada.exists("#import") {
		t.Error("a file with problems is offered for import")
	}
	ada.screenshot("user-import-problems")
	ada.open("/users/import")
	ada.do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}))
	ada.submit("#check-import")
	ada.wantText("#import-summary", "would make", "2 users created", "1 group created")
	ada.wantText("#import-changes", "create user Gus Green", "add to group Design", "assign MS-1")
	ada.wantText("#import-progress", "Checked 2 of 2 lines")
	if _, err := s.access.UserByEmail(ctx, sys, "gus@acme.test"); usher.ErrorCode(err) != usher.ENOTFOUND {
		t.Fatalf("the dry run created Gus: %v", err)
	}
	ada.screenshot("user-import-dry-run")
	ada.submit("#import")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.HasSuffix(ada.location(), "/users") {
		if time.Now().After(deadline) {
			t.Fatalf("after Import the browser stays at %s", ada.location())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ada.settle()
	ada.wantText(".message", "Imported people.csv (2 lines): 2 users created")
	if _, err := s.access.UserByEmail(ctx, sys, "hal@acme.test"); err != nil {
		t.Fatalf("the import did not create Hal: %v", err)
	}
	if _, err := s.access.GroupByName(ctx, sys, "CAD"); err != nil {
		t.Fatalf("the import did not create the group CAD: %v", err)
	}
}
