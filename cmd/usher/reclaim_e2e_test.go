package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/mail/smtptest"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// End-to-end test of reclaim runs: two `usher serve` on one PostgreSQL, a
// real SMTP server, the clock moved through USHER_TEST_NOW_FILE, and the
// server that is in the middle of a run killed with SIGKILL.

// reclaimOrg is one seeded account: a primary admin who manages the one
// Standard contract, and people holding idle seats of it.
type reclaimOrg struct {
	accountID int64
	admin     usher.User
	sub       usher.Subscription
	people    []usher.User
}

// seedReclaim creates n accounts, each with `people` seats assigned 100 days
// before now and never used, and a warn_then_reclaim policy with 7 days of
// grace over 30 days, whose first run is at 06:00 UTC the next morning.
func seedReclaim(t *testing.T, db *store.DB, now time.Time, n, people int) []reclaimOrg {
	t.Helper()
	ctx := context.Background()
	at := now.AddDate(0, 0, -100)
	clock := func() time.Time { return at }
	acc := access.New(db.Access(), clock)
	rec := reclaim.New(db.Reclaim(), acc, nil, reclaim.Config{Now: func() time.Time { return now }})
	out := make([]reclaimOrg, n)
	for i := range n {
		acct, admin, _, err := acc.CreateAccount(ctx, access.NewAccount{Name: fmt.Sprintf("Org %02d", i), AdminEmail: fmt.Sprintf("admin@org%02d.test", i), TimeZone: "UTC"})
		if err != nil {
			t.Fatal(err)
		}
		sys := usher.System(acct.ID)
		seats, no := people+5, false
		sub, err := acc.CreateSubscription(ctx, sys, access.NewSubscription{Product: "draftpro", Plan: usher.PlanStandard, Seats: &seats,
			ContractNumber: fmt.Sprintf("DP-%02d", i), TermStart: usher.Date{Time: at}, TermEnd: usher.Date{Time: at.AddDate(2, 0, 0)},
			ContractManagerID: admin.ID, AssignManagerSeat: &no, PricePerSeatYear: "120.00", Currency: "EUR"})
		if err != nil {
			t.Fatal(err)
		}
		o := reclaimOrg{accountID: acct.ID, admin: admin, sub: sub}
		for j := range people {
			email := fmt.Sprintf("p%03d@org%02d.test", j, i)
			u, err := acc.CreateUser(ctx, sys, access.UserInput{Email: &email})
			if err != nil {
				t.Fatal(err)
			}
			if err := acc.Assign(ctx, sys, u.ID, sub.ID, []string{"cloud_storage"}); err != nil {
				t.Fatal(err)
			}
			o.people = append(o.people, u)
		}
		a, err := acc.ActorFor(ctx, acct.ID, admin.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rec.Create(ctx, a, reclaim.Input{Name: "Idle DraftPro", Scope: reclaim.Scope{Kind: reclaim.ScopeSubscriptions, SubscriptionIDs: []int64{sub.ID}},
			Range: "30d", Mode: reclaim.WarnThenReclaim, GraceDays: ptr(7)}); err != nil {
			t.Fatal(err)
		}
		out[i] = o
	}
	return out
}

// reclaimRunRow and reclaimEmailRow are rows as the test reads them back.
type reclaimRunRow struct {
	id         int64
	status     string
	attempts   int
	leaseOwner string
	// lastError and nextAttemptAt say why a run is not done: a failed
	// attempt waits for its backoff, past a clock the test keeps still.
	lastError     string
	nextAttemptAt int64
}

type reclaimEmailRow struct {
	id, accountID, userID int64
	kind, messageID       string
	status, leaseOwner    string
}

func reclaimRunsOn(t *testing.T, db *store.DB, day string) []reclaimRunRow {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(),
		"SELECT id, status, attempts, lease_owner, last_error, next_attempt_at FROM reclaim_runs WHERE run_on = '"+day+"' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []reclaimRunRow
	for rows.Next() {
		var r reclaimRunRow
		if err := rows.Scan(&r.id, &r.status, &r.attempts, &r.leaseOwner, &r.lastError, &r.nextAttemptAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func reclaimEmails(t *testing.T, db *store.DB) []reclaimEmailRow {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(),
		"SELECT id, account_id, user_id, kind, message_id, status, lease_owner FROM reclaim_emails ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []reclaimEmailRow
	for rows.Next() {
		var e reclaimEmailRow
		if err := rows.Scan(&e.id, &e.accountID, &e.userID, &e.kind, &e.messageID, &e.status, &e.leaseOwner); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sqlInt runs a query that answers one number.
func sqlInt(t *testing.T, db *store.DB, query string) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRowContext(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestReclaimExactlyOnceAcrossTwoServers: two servers on one PostgreSQL run
// a policy in four accounts. Both warn; between the warning and the
// reclaim one person per account keeps the seat from the email's link and
// one uses the product; on reclaim day the server in the middle of a run is
// killed with SIGKILL and the other finishes. Every warning, notice and
// digest arrives once (an email handed to the SMTP server just before the
// kill may arrive twice, with the same Message-ID), every idle seat is
// reclaimed once, and no other seat is touched.
func TestReclaimExactlyOnceAcrossTwoServers(t *testing.T) {
	dsn := postgresDSN(t)
	ctx := context.Background()
	db := openMigrated(t, dsn)
	const accounts, people = 4, 40
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	setNow := setClock(t, t0)
	clockFile := os.Getenv(testNowEnv)
	orgs := seedReclaim(t, db, t0, accounts, people)
	smtp := smtptest.StartServer(t, smtptest.NoTLS)
	mailArgs := []string{"--db", dsn, "--smtp", "smtp://" + smtp.Addr, "--mail-from", "Usher <usher@example.com>"}
	servers := []*serveProc{startServe(t, "server A", clockFile, mailArgs...), startServe(t, "server B", clockFile, mailArgs...)}

	// runDone waits for every run of day to be done and every email to be delivered.
	runDone := func(day string, emails int) func() (bool, string) {
		return func() (bool, string) {
			runs := reclaimRunsOn(t, db, day)
			done := 0
			var pending []string
			for _, r := range runs {
				if r.status == "done" {
					done++
				} else {
					pending = append(pending, fmt.Sprintf("run %d %s after %d attempts, lease %q, next attempt %s, last error %q",
						r.id, r.status, r.attempts, r.leaseOwner, time.UnixMilli(r.nextAttemptAt).UTC().Format(time.RFC3339), r.lastError))
				}
			}
			es := reclaimEmails(t, db)
			delivered := 0
			for _, e := range es {
				if e.status == "delivered" {
					delivered++
				}
			}
			return done == accounts && len(es) == emails && delivered == emails,
				fmt.Sprintf("%s: %d of %d runs done; %d emails, %d delivered, want %d; not done: %v", day, done, len(runs), len(es), delivered, emails, pending)
		}
	}
	// checkOnce fails unless each stored email arrived once (those in
	// resent at most twice) and nothing else arrived.
	checkOnce := func(resent map[string]bool) (twice int) {
		t.Helper()
		copies := copiesByMessageID(t, smtp.Mailbox)
		stored := map[string]bool{}
		for _, e := range reclaimEmails(t, db) {
			stored[e.messageID] = true
			switch c := copies[e.messageID]; {
			case c == 1:
			case c == 2 && resent[e.messageID]:
				twice++
			default:
				t.Fatalf("%s %s to user %d arrived %d times (resent after the kill: %v)", e.kind, e.messageID, e.userID, c, resent[e.messageID])
			}
		}
		for id := range copies {
			if !stored[id] {
				t.Fatalf("%s arrived but is no email of a run", id)
			}
		}
		return twice
	}
	usersOf := func(kind string) []int64 {
		var out []int64
		for _, e := range reclaimEmails(t, db) {
			if e.kind == kind {
				out = append(out, e.userID)
			}
		}
		slices.Sort(out)
		return out
	}
	idsOf := func(skip func(j int) bool) []int64 {
		var out []int64
		for _, o := range orgs {
			for j, u := range o.people {
				if !skip(j) {
					out = append(out, u.ID)
				}
			}
		}
		slices.Sort(out)
		return out
	}

	// 1. Both servers warn, each person once, with one digest per run.
	warnDay := time.Date(2026, 3, 3, 6, 0, 1, 0, time.UTC)
	setNow(warnDay)
	warnEmails := accounts*people + accounts
	eventually(t, 120*time.Second, runDone("2026-03-03", warnEmails))
	eventually(t, 10*time.Second, func() (bool, string) {
		c := maildirCount(t, smtp.Mailbox)
		return c >= warnEmails, fmt.Sprintf("%d messages in the mailbox, want %d", c, warnEmails)
	})
	checkOnce(nil)
	if got, want := usersOf("warning"), idsOf(func(int) bool { return false }); !slices.Equal(got, want) {
		t.Fatalf("warnings went to %d people, want each of the %d once", len(got), len(want))
	}
	for _, r := range reclaimRunsOn(t, db, "2026-03-03") {
		if r.attempts != 1 {
			t.Fatalf("warning run %d took %d attempts, want 1", r.id, r.attempts)
		}
	}

	// 2. In each account p000 keeps the seat from the link in the warning
	// (GET shows the page, the POST keeps), and p001 uses the product.
	keepLink := regexp.MustCompile(regexp.QuoteMeta(e2eBaseURL) + `/keep/[A-Za-z0-9_-]+`)
	kept := 0
	for _, m := range smtptest.Messages(t, smtp.Mailbox) {
		to := m.Header.Get("To")
		if !strings.Contains(to, "p000@") || !strings.Contains(m.Header.Get("Subject"), "will be reclaimed") {
			continue
		}
		text, _ := alternatives(t, m)
		link := keepLink.FindString(text)
		if link == "" {
			t.Fatalf("no Keep my seat link in the warning to %s", to)
		}
		page := "http://" + servers[kept%2].addr + strings.TrimPrefix(link, e2eBaseURL)
		resp, err := http.Get(page)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", page, resp.StatusCode)
		}
		resp, err = http.Post(page, "application/x-www-form-urlencoded", strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d", page, resp.StatusCode)
		}
		kept++
	}
	if kept != accounts {
		t.Fatalf("kept %d seats from the links, want %d", kept, accounts)
	}
	useDay := warnDay.AddDate(0, 0, 2)
	use := usage.New(db.Usage(), usage.Config{Now: func() time.Time { return useDay }})
	for _, o := range orgs {
		ev := usage.Item{Line: 1, Event: usage.Event{User: o.people[1].Email, Product: "draftpro", At: useDay}}
		if res, err := use.Ingest(ctx, usher.System(o.accountID), func(yield func(usage.Item) bool) { yield(ev) }); err != nil || res.Accepted != 1 {
			t.Fatalf("ingest %s's use: %+v %v", o.people[1].Email, res, err)
		}
	}

	// 3. Reclaim day. The first server seen in the middle of a run — it has
	// reclaimed from someone and not finished — is killed.
	reclaimDay := time.Date(2026, 3, 10, 6, 0, 1, 0, time.UTC)
	setNow(reclaimDay)
	var victim, survivor *serveProc
	var victimRun int64
	deadline := time.Now().Add(120 * time.Second)
	for victim == nil {
		for _, r := range reclaimRunsOn(t, db, "2026-03-10") {
			if r.status != "running" || sqlInt(t, db, fmt.Sprintf("SELECT count(*) FROM reclaim_batches WHERE run_id = %d", r.id)) == 0 {
				continue
			}
			for i, p := range servers {
				if strings.HasPrefix(r.leaseOwner, p.lease()) {
					victim, survivor, victimRun = p, servers[1-i], r.id
				}
			}
			if victim != nil {
				break
			}
		}
		if victim == nil {
			if time.Now().After(deadline) {
				t.Fatal("no server was seen in the middle of a reclaim run within 120s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	victim.kill()
	lease := victim.lease()
	// A transaction whose COMMIT the dead server had written to its socket
	// may still commit: what the dead server held is read until it settles.
	var inDoubt map[string]bool // emails leased to the dead server: sent or not, nobody knows
	var heldRuns int
	settle := time.Now().Add(10 * time.Second)
	for {
		now := map[string]bool{}
		for _, e := range reclaimEmails(t, db) {
			if e.status == "sending" && strings.HasPrefix(e.leaseOwner, lease) {
				now[e.messageID] = true
			}
		}
		held := 0
		for _, r := range reclaimRunsOn(t, db, "2026-03-10") {
			if r.status == "running" && strings.HasPrefix(r.leaseOwner, lease) {
				held++
			}
		}
		if inDoubt != nil && maps.Equal(now, inDoubt) && held == heldRuns || time.Now().After(settle) {
			inDoubt, heldRuns = now, held
			break
		}
		inDoubt, heldRuns = now, held
		time.Sleep(300 * time.Millisecond)
	}
	if heldRuns == 0 {
		t.Fatal("the killed server held no run once things settled; the test did not kill a run half-way")
	}
	reclaimedAtKill := sqlInt(t, db, fmt.Sprintf("SELECT count(*) FROM reclaim_batches WHERE run_id = %d", victimRun))
	t.Logf("reclaim day: killed %s in the middle of run %d (%d %s reclaimed from), with %d %s in the middle of sending",
		victim.name, victimRun, reclaimedAtKill, plural(reclaimedAtKill, "person", "people"), len(inDoubt), plural(len(inDoubt), "email", "emails"))

	// The survivor finishes what it can before the clock moves on: an
	// email it holds when the clock jumps past its lease would be claimed
	// and sent again (with its Message-ID, as a lease that runs out
	// allows), which is not the kill this test is about.
	eventually(t, 120*time.Second, func() (bool, string) {
		busy := 0
		for _, e := range reclaimEmails(t, db) {
			if e.status != "delivered" && !strings.HasPrefix(e.leaseOwner, lease) {
				busy++
			}
		}
		for _, r := range reclaimRunsOn(t, db, "2026-03-10") {
			if r.status != "done" && !strings.HasPrefix(r.leaseOwner, lease) {
				busy++
			}
		}
		return busy == 0, fmt.Sprintf("the survivor has %d runs and emails to finish before the clock moves on", busy)
	})
	// The survivor finishes the dead server's runs and emails once their
	// leases run out.
	setNow(reclaimDay.Add(5*time.Minute + time.Minute)) // the reclaim service's lease is 5 minutes
	reclaimed := accounts * (people - 2)
	eventually(t, 180*time.Second, runDone("2026-03-10", warnEmails+reclaimed+accounts))
	eventually(t, 10*time.Second, func() (bool, string) {
		c := maildirCount(t, smtp.Mailbox)
		return c >= warnEmails+reclaimed+accounts, fmt.Sprintf("%d messages in the mailbox, want %d", c, warnEmails+reclaimed+accounts)
	})
	resent := checkOnce(inDoubt)
	t.Logf("reclaim day: %d of the %d emails in doubt had reached the SMTP server before the kill and were resent with the same Message-ID", resent, len(inDoubt))
	if got, want := usersOf("notice"), idsOf(func(j int) bool { return j < 2 }); !slices.Equal(got, want) {
		t.Fatalf("notices went to %v, want each reclaimed person once: %v", got, want)
	}
	digests := map[int64]int{}
	for _, e := range reclaimEmails(t, db) {
		if e.kind == "digest" {
			digests[e.userID]++
		}
	}
	for _, o := range orgs {
		if digests[o.admin.ID] != 2 {
			t.Fatalf("%s got %d digests, want one per run", o.admin.Email, digests[o.admin.ID])
		}
	}
	for _, r := range reclaimRunsOn(t, db, "2026-03-10") {
		if want := map[bool]int{true: 2, false: 1}[r.id == victimRun]; r.attempts != want || r.status != "done" {
			t.Fatalf("run %d: %s after %d attempts, want done after %d", r.id, r.status, r.attempts, want)
		}
	}

	// Seats: every idle one reclaimed exactly once; the kept and the used
	// ones, and nobody else's, untouched.
	if n := sqlInt(t, db, `SELECT count(*) FROM (SELECT user_id, subscription_id FROM reclaim_batch_items
		GROUP BY user_id, subscription_id HAVING count(*) > 1) twice`); n != 0 {
		t.Fatalf("%d seats were reclaimed more than once", n)
	}
	if n := sqlInt(t, db, "SELECT count(*) FROM reclaim_batch_items"); n != reclaimed {
		t.Fatalf("%d seats reclaimed, want %d", n, reclaimed)
	}
	if n := sqlInt(t, db, "SELECT count(*) FROM audit_log WHERE action = 'reclaim.reclaim'"); n != reclaimed {
		t.Fatalf("%d reclaim.reclaim audit entries, want %d", n, reclaimed)
	}
	for _, o := range orgs {
		holders := sqlInt(t, db, fmt.Sprintf("SELECT count(*) FROM assignments WHERE subscription_id = %d", o.sub.ID))
		if holders != 2 {
			t.Fatalf("contract %s has %d seats held, want the kept and the used one", o.sub.ContractNumber, holders)
		}
		for j, u := range o.people[:2] {
			if sqlInt(t, db, fmt.Sprintf("SELECT count(*) FROM assignments WHERE subscription_id = %d AND user_id = %d", o.sub.ID, u.ID)) != 1 {
				t.Fatalf("%s (%s) lost the seat", u.Email, []string{"kept from the link", "used the product"}[j])
			}
		}
	}
	survivor.stop()
}
