package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/console"
)

// ---- keyboard ----

// press sends one key (kb.Tab, kb.Enter, " ") to the focused element.
func (b *tab) press(key string) {
	b.t.Helper()
	b.do(chromedp.KeyEvent(key))
}

// typeText types text into the focused element, key by key.
func (b *tab) typeText(text string) {
	b.t.Helper()
	b.do(chromedp.KeyEvent(text))
}

// focused reports whether the focused element matches sel.
func (b *tab) focused(sel string) bool {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(() => { const e = document.activeElement; return e !== null && e.matches(%q) })()`, sel))
}

// tabTo presses Tab, as a person would, until the element matching sel
// has the focus: it fails when Tab never reaches it, so every control the
// day uses is proven reachable by keyboard. It starts from the top of the
// page unless keep is set.
func (b *tab) tabTo(sel string, keep ...bool) {
	b.t.Helper()
	if !b.exists(sel) {
		b.t.Fatalf("keyboard: nothing matches %s on %s", sel, b.location())
	}
	if len(keep) == 0 || !keep[0] {
		b.eval(`(() => { if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); return true })()`)
	}
	for range 400 {
		if b.focused(sel) {
			return
		}
		b.press(kb.Tab)
	}
	b.t.Fatalf("keyboard: 400 Tabs never reached %s on %s", sel, b.location())
}

// enterAndWait presses Enter on the focused element and waits for the
// page it leads to.
func (b *tab) enterAndWait() {
	b.t.Helper()
	b.eval(`(() => { document.body.dataset.stale = "1"; return true })()`)
	b.press(kb.Enter)
	b.do(chromedp.WaitReady(chromedp.CSS("body:not([data-stale]) main h1")))
	b.settle()
}

// ---- the site of a new account ----

// newDaySite is a running Usher on SQLite with an account whose only admin
// is Ada, new to it, and one contract bought long ago: Model Studio MS-OLD
// with 60 of its 70 seats given to people four months ago, never used
// since.
func newDaySite(t *testing.T) *site {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	var seeding atomic.Bool
	seeding.Store(true)
	past := time.Now().AddDate(0, -4, 0)
	clock := func() time.Time {
		if seeding.Load() {
			return past
		}
		return time.Now()
	}
	s := &site{t: t, access: access.New(db.Access(), clock), users: map[string]usher.User{}}
	s.auth = auth.New(db.Auth(), auth.Config{Params: auth.Params{Memory: 64, Time: 1, Threads: 1}})
	acct, ada, _, err := s.access.CreateAccount(ctx, access.NewAccount{Name: "Northwind", AdminEmail: "ada@northwind.test", AdminName: "Ada Admin", TimeZone: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	s.acct, s.users["ada"] = acct, ada
	if err := s.auth.SetPassword(ctx, acct.ID, ada.ID, password); err != nil {
		t.Fatal(err)
	}
	sys := usher.System(acct.ID)
	seats, no := 70, false
	term := func(v string) usher.Date { d, _ := usher.ParseDate(v); return d }
	s.ms, err = s.access.CreateSubscription(ctx, sys, access.NewSubscription{
		Product: "modelstudio", Plan: usher.PlanStandard, Seats: &seats, ContractNumber: "MS-OLD",
		TermStart: term("2025-01-01"), TermEnd: term("2027-12-31"), ContractManagerID: ada.ID, AssignManagerSeat: &no,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		email, name := fmt.Sprintf("old%02d@northwind.test", i), fmt.Sprintf("Old Timer %02d", i)
		u, err := s.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.access.Assign(ctx, sys, u.ID, s.ms.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	seeding.Store(false)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	use := usage.New(db.Usage(), usage.Config{})
	rec := reclaim.New(db.Reclaim(), s.access, nil, reclaim.Config{Logger: logger})
	ui, err := console.New(console.Config{Access: s.access, Auth: s.auth, Usage: use, Reclaim: rec, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.NewHandler(web.Config{Access: s.access, Usage: use, Reclaim: rec, Console: ui, Logger: logger}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// TestAdminsDayByKeyboardInBrowser is the day of a new admin, done in the
// browser alone and by keyboard at 1280 and at 375 px: add ten users, make
// one a contract manager, add a priced contract, assign seats, find the
// inactive seats from the dashboard, open a person, reclaim with Select all
// matching, and undo it. Every page on the way is checked by axe-core and
// the layout check at that width. Selects and date fields are set
// directly: how a browser's own pickers take keys is not the console's.
func TestAdminsDayByKeyboardInBrowser(t *testing.T) {
	browser := newBrowser(t)
	for _, width := range []struct {
		name string
		w, h int64
	}{{"1280", 1280, 900}, {"375", 375, 812}} {
		t.Run(width.name, func(t *testing.T) {
			s := newDaySite(t)
			ctx := context.Background()
			ada := s.person(t, browser, "ada")
			ada.do(chromedp.EmulateViewport(width.w, width.h))
			check := func(where string) {
				t.Helper()
				ada.checkPage(where + " at " + width.name + " px")
			}
			check("dashboard")

			// Ten users, each typed into Add a user.
			newcomers := []string{"Nia Newton", "Omar Ortiz", "Pia Park", "Quinn Quade", "Rui Reis", "Sara Sol", "Tom Tay", "Uli Umber", "Vera Vance", "Wes Wong"}
			for i, name := range newcomers {
				ada.open("/users")
				if i == 0 {
					check("users")
				}
				ada.tabTo("details.add-user summary")
				ada.press(kb.Enter)
				ada.tabTo("#new-name", true)
				ada.typeText(name)
				ada.press(kb.Tab)
				ada.typeText(strings.ToLower(strings.Fields(name)[0]) + "@northwind.test")
				ada.enterAndWait()
				ada.wantText(".message", name+" has been added")
			}
			list, err := s.access.FindUsers(ctx, usher.System(s.acct.ID), access.UserQuery{Q: "@northwind.test"}, "", 100)
			if err != nil || list.Total != 71 {
				t.Fatalf("users after adding ten: %d (%v), want 71", list.Total, err)
			}
			nia, err := s.access.UserByEmail(ctx, usher.System(s.acct.ID), "nia@northwind.test")
			if err != nil {
				t.Fatal(err)
			}
			ada.wantText("main h1", "Wes Wong")
			check("person")

			// Nia becomes contract manager of MS-OLD, on her page.
			ada.open("/users?q=nia")
			ada.wantText("#users-total", "1")
			ada.tabTo(fmt.Sprintf(`table.users a[href="/users/%d"]`, nia.ID))
			ada.enterAndWait()
			ada.do(chromedp.SetValue(chromedp.CSS("#role"), fmt.Sprintf("contract_manager:%d", s.ms.ID)))
			ada.tabTo("#grant-role")
			ada.enterAndWait()
			ada.wantText("#roles", "Contract manager of Model Studio MS-OLD")

			// A new contract with a price, managed by Nia.
			ada.open("/subscriptions")
			check("subscriptions")
			ada.tabTo("#add-contract")
			ada.enterAndWait()
			check("add a contract")
			ada.do(chromedp.SetValue(chromedp.CSS("#product"), "draftpro"), chromedp.SetValue(chromedp.CSS("#plan"), "premium"),
				chromedp.SetValue(chromedp.CSS("#term_start"), "2026-01-01"), chromedp.SetValue(chromedp.CSS("#term_end"), "2027-12-31"))
			ada.tabTo("#contract_number")
			ada.typeText("DP-NEW")
			ada.tabTo("#seats")
			ada.typeText("5")
			ada.tabTo("#price_per_seat_year")
			ada.typeText("1200.00")
			ada.tabTo("#currency")
			ada.press(kb.End)
			for range 3 {
				ada.press(kb.Backspace)
			}
			ada.typeText("EUR")
			ada.tabTo("#contract_manager")
			ada.typeText("nia@northwind.test")
			ada.tabTo("#benefit-web_support")
			ada.press(" ")
			ada.tabTo("#contract-submit")
			ada.enterAndWait()
			ada.wantText(".message", "Contract DP-NEW for DraftPro has been added, with 5 seats")
			ada.wantText("table.subscriptions", "DP-NEW", "EUR 1200.00")
			subs, err := s.access.ListSubscriptions(ctx, usher.System(s.acct.ID), "", 10)
			if err != nil || len(subs.Items) != 2 {
				t.Fatalf("subscriptions: %+v %v", subs.Items, err)
			}
			dp := subs.Items[1]
			if dp.Price == nil || dp.Price.Cents != 120000 || dp.Price.Currency != "EUR" || dp.SeatsUsed != 1 {
				t.Fatalf("DP-NEW: got %+v, want EUR 1200.00 and Nia's seat", dp)
			}

			// Two more seats of DP-NEW, on Edit Access, by Space and Enter.
			for _, who := range []string{"omar", "pia"} {
				u, err := s.access.UserByEmail(ctx, usher.System(s.acct.ID), who+"@northwind.test")
				if err != nil {
					t.Fatal(err)
				}
				ada.open(fmt.Sprintf("/users/%d/access", u.ID))
				ada.tabTo(fmt.Sprintf("#assign-%d", dp.ID))
				ada.press(" ")
				ada.tabTo("#save")
				ada.enterAndWait()
				ada.wantText(".message", "have been saved")
				if !assigned(t, s, u.ID, dp.ID) {
					t.Fatalf("%s holds no DP-NEW seat after Save", who)
				}
			}
			check("edit access")

			// The dashboard shows MS-OLD's 60 inactive seats and leads to them.
			ada.open("/")
			ada.wantText(fmt.Sprintf("#contract-%d .inactive", s.ms.ID), "60")
			ada.tabTo(fmt.Sprintf("#contract-%d .inactive a", s.ms.ID))
			ada.enterAndWait()
			check("usage report")
			ada.wantText("#report-heading", "Inactive")
			if n := len(ada.reportRows()); n != 50 {
				t.Fatalf("first page of inactive seats: %d rows, want 50", n)
			}
			report := strings.TrimPrefix(ada.location(), s.url)

			// A person, from their name in the report.
			ada.tabTo("table.report tbody th.person a")
			ada.enterAndWait()
			check("a person from the report")
			ada.wantText("table.person-seats", "MS-OLD", "Never")

			// Reclaim: every matching seat, on both pages, confirmed by count.
			ada.open(report)
			ada.tabTo("#select-matching")
			ada.press(kb.Enter)
			ada.wantText("#selection-count", "All 60 seats matching the filter are selected, held by 60 users")
			if !ada.focused("#unassign") {
				t.Fatal("after Select all matching the focus is not on Unassign")
			}
			ada.press(kb.Enter)
			ada.wantText("#unassign-dialog-text", "Unassign all 60 seats matching the filter, from 60 users?")
			check("unassign confirmation")
			ada.tabTo("#unassign-confirm", true)
			ada.enterAndWait()
			ada.wantText(".message", "Unassigned 60 seats from 60 users")
			if got := s.seatsUsed(s.ms.ID); got != 0 {
				t.Fatalf("MS-OLD seats used after the reclaim: %d, want 0", got)
			}
			check("report after reclaim")

			// Undo gives all of them back.
			ada.tabTo("#undo")
			ada.enterAndWait()
			if ada.exists("#confirm-dialog[open]") {
				ada.tabTo("#confirm-ok", true)
				ada.enterAndWait()
			}
			if got := s.seatsUsed(s.ms.ID); got != 60 {
				t.Fatalf("MS-OLD seats used after Undo: %d, want 60", got)
			}
			check("after undo")
		})
	}
}

func assigned(t *testing.T, s *site, userID, subID int64) bool {
	t.Helper()
	ua, err := s.access.Access(context.Background(), usher.System(s.acct.ID), userID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ua.Subscriptions {
		if e.Subscription.ID == subID {
			return e.Assigned
		}
	}
	return false
}

// TestUsersListAndContractsInBrowser checks the users list's filters,
// sorting, export and Disable selected, and the contract forms, including
// seats that cannot go below those in use.
func TestUsersListAndContractsInBrowser(t *testing.T) {
	s := newSite(t)
	browser := newBrowser(t)
	ada := s.person(t, browser, "ada")
	ctx := context.Background()

	t.Run("FiltersApplyOnChange", func(t *testing.T) {
		ada.open("/users")
		ada.wantText("#users-total", "4")
		if ada.visible(".users-filters button.apply") {
			t.Error("Apply shows although the filters apply on change")
		}
		ada.eval(`(() => { document.body.dataset.stale = "1"; const r = document.getElementById("role"); r.value = "contract_manager"; r.dispatchEvent(new Event("change")); return true })()`)
		ada.do(chromedp.WaitReady(chromedp.CSS("body:not([data-stale]) main h1")))
		ada.settle()
		ada.wantText("#users-total", "2")
		ada.wantText("table.users tbody", "Max Manager", "Ada Admin")
		if !ada.focused("#role") {
			t.Error("after the filter applied, the focus is not back on it")
		}
		ada.open("/users?product=modelstudio&sort=-email")
		got := run(ada, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("table.users tbody td.email")).map(e => e.textContent).join(" ")`))
		if got != "max@acme.test cora@acme.test" {
			t.Errorf("Model Studio seat holders by email, descending: %q", got)
		}
		ada.wantText(`th[aria-sort="descending"]`, "Email")
		ada.screenshot("users-filtered")
		csvText := run(ada, chromedp.Evaluate[string](`fetch(document.getElementById("users-csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
		rows, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
		if err != nil || len(rows) != 3 || rows[1][2] != "max@acme.test" || rows[2][2] != "cora@acme.test" {
			t.Errorf("the export: %q (%v), want the header, Max and Cora", rows, err)
		}
	})

	t.Run("LoweringSeatsBelowThoseInUseSaysWhoMustGoFirst", func(t *testing.T) {
		ada.open("/subscriptions")
		ada.submit(fmt.Sprintf("#edit-%d", s.ms.ID))
		ada.wantText("main h1", "Change contract MS-1")
		ada.do(chromedp.SetValue(chromedp.CSS("#seats"), "1"))
		ada.submit("#contract-submit")
		ada.wantText(".errors", "Nothing was saved", "Seats: cannot be 1 while 2 seats are in use: unassign 1 seat first (listed below)")
		ada.wantText("#holders", "Unassign these first")
		if n := ada.evalInt(`document.querySelectorAll("#holders li a[href^='/users/']").length`); n != 1 {
			t.Errorf("holders listed: %d, want the one who must go", n)
		}
		ada.screenshot("contract-seats-refused")
		if got := s.seatsUsed(s.ms.ID); got != 2 {
			t.Fatalf("seats used: %d", got)
		}
		sub, _ := s.access.Subscription(ctx, usher.System(s.acct.ID), s.ms.ID)
		if sub.Seats != 5 {
			t.Fatalf("a refused change changed seats to %d", sub.Seats)
		}
		ada.do(chromedp.SetValue(chromedp.CSS("#seats"), "8"), chromedp.SetValue(chromedp.CSS("#price_per_seat_year"), "99.5"), chromedp.SetValue(chromedp.CSS("#currency"), "usd"))
		ada.submit("#contract-submit")
		ada.wantText(".message", "Your changes to contract MS-1 have been saved")
		ada.wantText(fmt.Sprintf("#sub-%d .seats-bought", s.ms.ID), "8")
		ada.wantText(fmt.Sprintf("#sub-%d .price", s.ms.ID), "USD 99.50")
	})

	t.Run("DisableSelectedAsksWithTheCount", func(t *testing.T) {
		ada.open("/users?sort=name")
		ada.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("#select-%d", s.users["ben"].ID))), chromedp.Click(chromedp.CSS(fmt.Sprintf("#select-%d", s.users["cora"].ID))))
		ada.wantText("#users-selection", "2 users selected")
		ada.do(chromedp.Click(chromedp.CSS("#disable-selected")))
		ada.wantText("#confirm-text", "Disable 2 users?")
		ada.submit("#confirm-ok")
		ada.wantText(".message", "Disabled 2 users")
		for _, who := range []string{"ben", "cora"} {
			u, err := s.access.User(ctx, usher.System(s.acct.ID), s.users[who].ID)
			if err != nil || u.Status != usher.UserDisabled {
				t.Errorf("%s: %+v %v, want disabled", who, u.Status, err)
			}
		}
		ada.open("/users?status=disabled")
		ada.wantText("#users-total", "2")
	})

	t.Run("ANewContractNamesEveryMistake", func(t *testing.T) {
		ada.open("/subscriptions/new")
		ada.screenshot("contract-new")
		ada.do(chromedp.SetValue(chromedp.CSS("#product"), "draftpro"), chromedp.SetValue(chromedp.CSS("#contract_number"), "DP-1"),
			chromedp.SetValue(chromedp.CSS("#seats"), "3"), chromedp.SetValue(chromedp.CSS("#term_start"), "2026-06-01"), chromedp.SetValue(chromedp.CSS("#term_end"), "2026-01-01"),
			chromedp.SetValue(chromedp.CSS("#contract_manager"), "nobody@acme.test"))
		ada.submit("#contract-submit")
		ada.wantText(".errors", "Term end: must be after term_start", "Contract manager: no user has the email nobody@acme.test")
		if got := run(ada, chromedp.Evaluate[string](`document.getElementById("contract_number").value`)); got != "DP-1" {
			t.Errorf("the refused form lost what was typed: %q", got)
		}
	})

	t.Run("ContractManagersMayNotChangeContracts", func(t *testing.T) {
		max := s.person(t, browser, "max")
		max.open("/subscriptions")
		if max.exists("#add-contract") || max.exists(fmt.Sprintf("#edit-%d", s.ms.ID)) {
			t.Error("a contract manager is offered Add a contract or Change")
		}
		max.open(fmt.Sprintf("/subscriptions/%d/edit", s.ms.ID))
		max.wantText("main", "Only primary and secondary admins can change contracts")
	})
}
