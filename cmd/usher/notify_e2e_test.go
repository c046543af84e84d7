package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/mail/smtptest"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// End-to-end tests of usage notifications: real `usher serve` processes,
// a real SMTP server (aiosmtpd) and a clock the test moves through
// USHER_TEST_NOW_FILE.

// e2eBaseURL starts every link in the emails, and names the Message-IDs.
const e2eBaseURL = "https://usher.example.com"

var usherBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if usherBin.dir != "" {
		os.RemoveAll(usherBin.dir)
	}
	os.Exit(code)
}

// usherBinary builds the usher binary once for every test that runs it.
func usherBinary(t *testing.T) string {
	t.Helper()
	usherBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "usher-e2e-")
		if err != nil {
			usherBin.err = err
			return
		}
		usherBin.dir, usherBin.path = dir, filepath.Join(dir, "usher")
		if out, err := exec.Command("go", "build", "-o", usherBin.path, ".").CombinedOutput(); err != nil {
			usherBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if usherBin.err != nil {
		t.Fatal(usherBin.err)
	}
	return usherBin.path
}

// serveProc is one running `usher serve`.
type serveProc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan error
	done   bool
	addr   string
}

// startServe starts `usher serve` with args and the test clock, and waits
// until it listens.
func startServe(t *testing.T, name, clockFile string, args ...string) *serveProc {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--scheduler-interval", "100ms", "--base-url", e2eBaseURL}, args...)
	cmd := exec.Command(usherBinary(t), args...)
	cmd.Env = append(os.Environ(), testNowEnv+"="+clockFile, "USHER_SMTP_URL=", "USHER_MAIL_FROM=", "USHER_LOG_LEVEL=info")
	p := &serveProc{t: t, name: name, cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = io.Discard, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if !p.done {
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s (pid %d) stderr:\n%s", name, cmd.Process.Pid, p.stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for p.addr == "" {
		for _, l := range p.logs() {
			if l["msg"] == "listening" {
				p.addr, _ = l["addr"].(string)
			}
		}
		select {
		case err := <-p.exited:
			p.done = true
			t.Fatalf("%s exited at start: %v\n%s", name, err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen within 30s:\n%s", name, p.stderr.String())
		}
	}
	return p
}

// logs parses the JSON log lines written so far.
func (p *serveProc) logs() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// count counts log lines with message msg.
func (p *serveProc) count(msg string) int {
	n := 0
	for _, l := range p.logs() {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// lease is the prefix of every lease this process takes: its host name and
// process id (scheduler.Owner).
func (p *serveProc) lease() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "usher"
	}
	return fmt.Sprintf("%s:%d-", host, p.cmd.Process.Pid)
}

// kill ends the process with SIGKILL: no shutdown, no outcome recorded.
func (p *serveProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.exited
	p.done = true
}

// stop ends the process with SIGTERM and wants a clean exit.
func (p *serveProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.done = true
		if err != nil {
			p.t.Fatalf("%s after SIGTERM: %v, want exit 0", p.name, err)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s did not stop within 30s of SIGTERM", p.name)
	}
}

// eventually polls cond until it holds, failing the test with cond's last
// explanation after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, why)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// maildirCount counts delivered messages without parsing them, cheaply
// enough to poll every few milliseconds.
func maildirCount(t *testing.T, mailbox string) int {
	t.Helper()
	n := 0
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(mailbox, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		n += len(entries)
	}
	return n
}

// copiesByMessageID counts delivered messages per Message-ID.
func copiesByMessageID(t *testing.T, mailbox string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range smtptest.Messages(t, mailbox) {
		out[m.Header.Get("Message-Id")]++
	}
	return out
}

// storedRun is a run as the test reads it back from the database.
type storedRun struct {
	id, accountID, userID int64
	status                string
	attempts              int
	messageID, leaseOwner string
	lastError             string
	inactiveUsers         int
}

// runsFor reads every run scheduled for at.
func runsFor(t *testing.T, db *store.DB, at time.Time) []storedRun {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), fmt.Sprintf(`
		SELECT id, account_id, user_id, status, attempts, message_id, lease_owner, last_error, inactive_users
		FROM notification_runs WHERE scheduled_for = %d ORDER BY id`, at.UnixMilli()))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedRun
	for rows.Next() {
		var r storedRun
		if err := rows.Scan(&r.id, &r.accountID, &r.userID, &r.status, &r.attempts, &r.messageID, &r.leaseOwner, &r.lastError, &r.inactiveUsers); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func countStatus(runs []storedRun, status string) int {
	n := 0
	for _, r := range runs {
		if r.status == status {
			n++
		}
	}
	return n
}

// admin is a primary admin with notifications set up.
type admin struct {
	accountID, userID int64
	email, token      string
}

func (a admin) messageID(at time.Time) string {
	return fmt.Sprintf("<run-%d-%d-%d@usher.example.com>", a.accountID, a.userID, at.Unix())
}

// seedAdmins creates n accounts, each with a primary admin whose weekly
// notifications start on start at 08:00 UTC, as of now.
func seedAdmins(t *testing.T, db *store.DB, n int, now time.Time, start string) []admin {
	t.Helper()
	ctx := context.Background()
	clock := func() time.Time { return now }
	acc := access.New(db.Access(), clock)
	ns := notify.New(db.Notify(), nil, nil, notify.Config{Now: clock})
	d, err := usher.ParseDate(start)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]admin, n)
	for i := range n {
		acct, u, token, err := acc.CreateAccount(ctx, access.NewAccount{Name: fmt.Sprintf("Org %03d", i), AdminEmail: fmt.Sprintf("admin@org%03d.test", i), TimeZone: "UTC"})
		if err != nil {
			t.Fatal(err)
		}
		a, err := acc.ActorFor(ctx, acct.ID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ns.Set(ctx, a, notify.Input{StartDate: d, Frequency: notify.Weekly, Range: usage.Range3m}); err != nil {
			t.Fatal(err)
		}
		out[i] = admin{accountID: acct.ID, userID: u.ID, email: u.Email, token: token}
	}
	return out
}

// TestNotificationsExactlyOnceAcrossTwoServers runs two `usher serve` on
// one PostgreSQL with 200 primary admins due at the same instant, three
// times: both servers up; one killed with SIGKILL mid-run and restarted;
// the SMTP server down for a while.
func TestNotificationsExactlyOnceAcrossTwoServers(t *testing.T) {
	dsn := postgresDSN(t)
	db := openMigrated(t, dsn)
	const n = 200
	t0 := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC) // Monday
	setNow := setClock(t, t0)
	clockFile := os.Getenv(testNowEnv)
	admins := seedAdmins(t, db, n, t0, "2026-01-06")
	smtp := smtptest.StartServer(t, smtptest.NoTLS)
	mailArgs := []string{"--db", dsn, "--smtp", "smtp://" + smtp.Addr, "--mail-from", "Usher <usher@example.com>"}

	a := startServe(t, "server A", clockFile, mailArgs...)
	b := startServe(t, "server B", clockFile, mailArgs...)

	// checkOnce fails unless every admin got the email for at exactly once,
	// apart from the Message-IDs in resent, which may have arrived twice.
	checkOnce := func(at time.Time, resent map[string]bool) (twice int) {
		t.Helper()
		copies := copiesByMessageID(t, smtp.Mailbox)
		for _, ad := range admins {
			id := ad.messageID(at)
			switch c := copies[id]; {
			case c == 1:
			case c == 2 && resent[id]:
				twice++
			default:
				t.Fatalf("%s (%s, resent after a kill: %v) arrived %d times", id, ad.email, resent[id], c)
			}
		}
		return twice
	}
	allDelivered := func(at time.Time) func() (bool, string) {
		return func() (bool, string) {
			runs := runsFor(t, db, at)
			d := countStatus(runs, "delivered")
			return len(runs) == n && d == n, fmt.Sprintf("%d runs for %v, %d delivered; want %d delivered", len(runs), at, d, n)
		}
	}

	// 1. Both servers find 200 emails due at once. The waits are generous:
	// the clock is a file, so only a loaded machine makes them long, and
	// what is checked is how often each email arrived, not how fast.
	week1 := time.Date(2026, 1, 6, 8, 0, 0, 0, time.UTC)
	setNow(week1)
	eventually(t, 90*time.Second, allDelivered(week1))
	eventually(t, 10*time.Second, func() (bool, string) {
		c := maildirCount(t, smtp.Mailbox)
		return c >= n, fmt.Sprintf("%d messages in the mailbox, want %d", c, n)
	})
	checkOnce(week1, nil)
	if got := maildirCount(t, smtp.Mailbox); got != n {
		t.Fatalf("mailbox holds %d messages, want %d", got, n)
	}
	for _, r := range runsFor(t, db, week1) {
		if r.attempts != 1 {
			t.Fatalf("run %d took %d attempts, want 1", r.id, r.attempts)
		}
	}
	t.Logf("week 1: server A delivered %d, server B %d", a.count("usage notification delivered"), b.count("usage notification delivered"))

	// 2. Server A alone starts the next round and is killed with SIGKILL
	// as soon as its first email arrives.
	b.stop()
	week2 := week1.AddDate(0, 0, 7)
	before := maildirCount(t, smtp.Mailbox)
	setNow(week2)
	deadline := time.Now().Add(30 * time.Second)
	for maildirCount(t, smtp.Mailbox) == before {
		if time.Now().After(deadline) {
			t.Fatal("server A sent nothing within 30s of week 2's emails falling due")
		}
		time.Sleep(2 * time.Millisecond)
	}
	a.kill()
	lease := a.lease()
	// A claim whose COMMIT the dead server had already written to its socket
	// still commits after the process is gone: PostgreSQL reads the message
	// before it notices the closed connection. So the runs leased to the dead
	// server are read until they stop changing.
	var inDoubt map[string]bool // leased to the dead server: sent or not, nobody knows
	var deliveredAtKill int
	settle := time.Now().Add(10 * time.Second)
	for {
		now := map[string]bool{}
		delivered := 0
		for _, r := range runsFor(t, db, week2) {
			switch {
			case r.status == "sending" && strings.HasPrefix(r.leaseOwner, lease):
				now[r.messageID] = true
			case r.status == "delivered":
				delivered++
			}
		}
		if inDoubt != nil && maps.Equal(now, inDoubt) || time.Now().After(settle) {
			inDoubt, deliveredAtKill = now, delivered
			break
		}
		inDoubt = now
		time.Sleep(300 * time.Millisecond)
	}
	if len(inDoubt) == 0 {
		t.Fatal("the kill found no email in the middle of sending; the test did not test a crash")
	}
	t.Logf("week 2: killed server A with %d emails delivered and %d in the middle of sending", deliveredAtKill, len(inDoubt))

	a = startServe(t, "server A (restarted)", clockFile, mailArgs...)
	b = startServe(t, "server B (restarted)", clockFile, mailArgs...)
	// Everything not leased to the dead server goes now; the rest waits for
	// the dead server's lease to run out.
	eventually(t, 90*time.Second, func() (bool, string) {
		runs := runsFor(t, db, week2)
		d := countStatus(runs, "delivered")
		return d == n-len(inDoubt), fmt.Sprintf("%d delivered, want %d before the dead server's leases expire", d, n-len(inDoubt))
	})
	setNow(week2.Add(notify.DefaultLease + time.Minute))
	eventually(t, 90*time.Second, allDelivered(week2))
	resent := checkOnce(week2, inDoubt)
	for _, r := range runsFor(t, db, week2) {
		if inDoubt[r.messageID] != (r.attempts == 2) {
			t.Fatalf("run %d (%s, in doubt %v) took %d attempts", r.id, r.messageID, inDoubt[r.messageID], r.attempts)
		}
	}
	// The one duplicate Usher allows: an email handed to the SMTP server
	// just before the kill, whose outcome was never recorded, is sent again
	// with the same Message-ID.
	t.Logf("week 2: %d of the %d emails in doubt had reached the SMTP server before the kill and were resent with the same Message-ID; every other email arrived once",
		resent, len(inDoubt))

	// 3. The SMTP server is down when the next round is due.
	smtp.Stop()
	week3 := week2.AddDate(0, 0, 7)
	setNow(week3)
	eventually(t, 90*time.Second, func() (bool, string) {
		runs := runsFor(t, db, week3)
		failed := 0
		for _, r := range runs {
			if r.status == "pending" && r.attempts == 1 && r.lastError != "" {
				failed++
			}
		}
		return failed == n, fmt.Sprintf("%d of %d runs failed their first attempt and wait to retry", failed, len(runs))
	})
	smtp.Restart()
	setNow(week3.Add(notify.Backoff(1)))
	eventually(t, 90*time.Second, allDelivered(week3))
	checkOnce(week3, nil)
	for _, r := range runsFor(t, db, week3) {
		if r.attempts != 2 || r.lastError != "" {
			t.Fatalf("run %d: %d attempts, last error %q; want delivered on the retry", r.id, r.attempts, r.lastError)
		}
	}
	a.stop()
	b.stop()
}

// TestNotificationsEndToEndOnSQLite follows a new user: create an account,
// turn notifications on through the API (and, for a second account, the
// CLI), see when the next email goes, and receive it through a real SMTP
// server; then stop the server for three weeks and get one catch-up email.
func TestNotificationsEndToEndOnSQLite(t *testing.T) {
	dbPath := tempDB(t)
	t0 := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC) // Monday, 10:30 in Berlin
	setNow := setClock(t, t0)
	clockFile := os.Getenv(testNowEnv)
	bin := usherBinary(t)

	create := func(name, email, adminName string) string {
		t.Helper()
		cmd := exec.Command(bin, "account", "create", "--name", name, "--admin-email", email, "--admin-name", adminName, "--timezone", "Europe/Berlin", "--db", dbPath)
		cmd.Env = append(os.Environ(), testNowEnv+"="+clockFile)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("account create: %v", err)
		}
		return tokenRE.FindString(string(out))
	}
	token := create("Acme", "ada@acme.test", "Ada Admin")
	create("Quiet Co", "quinn@quiet.test", "Quinn Quiet")

	// Someone at Acme has held a seat since last year and never used it.
	ctx := context.Background()
	db, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lastYear := access.New(db.Access(), func() time.Time { return t0.AddDate(-1, 0, 0) })
	email := "cam@acme.test"
	cam, err := lastYear.CreateUser(ctx, usher.System(1), access.UserInput{Email: &email, Name: ptr("Cam Idle")})
	if err != nil {
		t.Fatal(err)
	}
	seats := 5
	_, err = lastYear.CreateSubscription(ctx, usher.System(1), access.NewSubscription{Product: "draftpro", Plan: usher.PlanStandard, Seats: &seats,
		ContractNumber: "C-100", TermStart: usher.Date{Time: t0.AddDate(-1, 0, 0)}, TermEnd: usher.Date{Time: t0.AddDate(1, 0, 0)},
		Benefits: []string{}, ContractManagerID: cam.ID})
	if err != nil {
		t.Fatal(err)
	}

	smtp := smtptest.StartServer(t, smtptest.NoTLS)
	srv := startServe(t, "server", clockFile, "--db", dbPath, "--smtp", "smtp://"+smtp.Addr, "--mail-from", "Usher <usher@example.com>")
	api := &apiClient{t: t, base: "http://" + srv.addr, token: token}

	var set struct {
		Change      string    `json:"change"`
		NextAt      time.Time `json:"next_at"`
		NextAtLocal string    `json:"next_at_local"`
		Message     string    `json:"message"`
	}
	api.do("PUT", "/api/v1/usage-notifications", `{"start_date":"2026-03-04","frequency":"weekly","range":"3m"}`, 200, &set)
	first := time.Date(2026, 3, 4, 7, 0, 0, 0, time.UTC) // 08:00 in Berlin
	if set.Change != "turned_on" || !set.NextAt.Equal(first) || set.NextAtLocal != "2026-03-04T08:00:00+01:00" ||
		!strings.Contains(set.Message, "Wednesday 4 March 2026 at 08:00 (Europe/Berlin)") {
		t.Fatalf("turn on: got %+v", set)
	}
	code, stdout, stderr := cli(t, "notifications", "set", "--admin", "quinn@quiet.test", "--db", dbPath, "--start-date", "2026-03-04", "--frequency", "monthly", "--range", "30d")
	if code != 0 || !strings.Contains(stdout, "Wednesday 4 March 2026 at 08:00 Europe/Berlin") {
		t.Fatalf("CLI set: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	setNow(first.Add(-time.Minute))
	time.Sleep(300 * time.Millisecond) // three scheduler passes
	if c := maildirCount(t, smtp.Mailbox); c != 0 {
		t.Fatalf("%d emails before the first is due", c)
	}
	setNow(first.Add(10 * time.Second))
	msgs := smtptest.WaitMessages(t, smtp.Mailbox, 2, 30*time.Second)
	byTo := map[string]*netmail.Message{}
	for _, m := range msgs {
		byTo[m.Header.Get("To")] = m
	}

	t.Run("EmailWithInactiveUsers", func(t *testing.T) {
		m := byTo[`"Ada Admin" <ada@acme.test>`]
		if m == nil {
			t.Fatalf("no email to Ada; got To headers %v", keys(byTo))
		}
		h := m.Header
		checks := map[string]string{
			"From":           `"Usher" <usher@example.com>`,
			"Subject":        "1 inactive user in Acme over the past 3 months",
			"Message-Id":     fmt.Sprintf("<run-1-1-%d@usher.example.com>", first.Unix()),
			"Auto-Submitted": "auto-generated",
		}
		for k, want := range checks {
			if got := h.Get(k); got != want {
				t.Errorf("%s: got %q, want %q", k, got, want)
			}
		}
		if d, err := h.Date(); err != nil || d.Sub(first).Abs() > time.Minute {
			t.Errorf("Date: got %v %v, want the test clock's %v", d, err, first)
		}
		text, html := alternatives(t, m)
		// The button opens the report as of this email: its snapshot.
		found := regexp.MustCompile(`View inactive users:\n(\S+)`).FindStringSubmatch(text)
		if found == nil || !regexp.MustCompile(`^`+regexp.QuoteMeta(e2eBaseURL)+`/reports/usage\?snapshot=notification-\d+$`).MatchString(found[1]) {
			t.Fatalf("View inactive users link: got %q, want the report as of the email", found)
		}
		link := found[1]
		for _, want := range []string{"Cam Idle <cam@acme.test>", "View inactive users:\n" + link, "DraftPro: 1 seat, 1 user"} {
			if !strings.Contains(text, want) {
				t.Errorf("text part lacks %q:\n%s", want, text)
			}
		}
		for _, want := range []string{`href="` + strings.ReplaceAll(link, "&", "&amp;") + `"`, "View inactive users", "Cam Idle"} {
			if !strings.Contains(html, want) {
				t.Errorf("HTML part lacks %q:\n%s", want, html)
			}
		}
	})
	t.Run("EmailWithNobodyInactiveHasNoButton", func(t *testing.T) {
		m := byTo[`"Quinn Quiet" <quinn@quiet.test>`]
		if m == nil {
			t.Fatalf("no email to Quinn; got To headers %v", keys(byTo))
		}
		if got, want := m.Header.Get("Subject"), "No inactive users in Quiet Co over the past 30 days"; got != want {
			t.Errorf("Subject: got %q, want %q", got, want)
		}
		text, html := alternatives(t, m)
		for _, part := range []string{text, html} {
			if strings.Contains(part, "View inactive users") || strings.Contains(part, "/reports/usage") {
				t.Errorf("a part has the button or the report link:\n%s", part)
			}
		}
	})
	t.Run("RunHistory", func(t *testing.T) {
		var runs struct {
			Items []struct {
				ScheduledFor  time.Time `json:"scheduled_for"`
				Status        string    `json:"status"`
				InactiveUsers int       `json:"inactive_users"`
				DeliveredAt   time.Time `json:"delivered_at"`
			} `json:"items"`
		}
		// The email reaches the mailbox a moment before its delivery is
		// recorded (with the email's snapshot): give the record time.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			api.do("GET", "/api/v1/usage-notifications/runs", "", 200, &runs)
			if len(runs.Items) != 1 || runs.Items[0].Status != "sending" || time.Now().After(deadline) {
				break
			}
		}
		if len(runs.Items) != 1 || runs.Items[0].Status != "delivered" || !runs.Items[0].ScheduledFor.Equal(first) || runs.Items[0].InactiveUsers != 1 || runs.Items[0].DeliveredAt.IsZero() {
			t.Fatalf("runs: got %+v", runs.Items)
		}
	})

	// Down over three weekly occurrences: one catch-up, for the latest.
	srv.stop()
	setNow(first.AddDate(0, 0, 21).Add(3 * time.Hour))
	srv = startServe(t, "server (after downtime)", clockFile, "--db", dbPath, "--smtp", "smtp://"+smtp.Addr, "--mail-from", "Usher <usher@example.com>")
	msgs = smtptest.WaitMessages(t, smtp.Mailbox, 3, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // five more passes: a burst would show now
	msgs = smtptest.Messages(t, smtp.Mailbox)
	if len(msgs) != 3 {
		t.Fatalf("after downtime: %d emails in all, want 3 (one catch-up)", len(msgs))
	}
	latest := first.AddDate(0, 0, 21)
	if got, want := msgs[2].Header.Get("Message-Id"), fmt.Sprintf("<run-1-1-%d@usher.example.com>", latest.Unix()); got != want {
		t.Fatalf("catch-up Message-ID: got %q, want %q (the latest missed occurrence)", got, want)
	}
	srv.stop()
}

// apiClient calls the REST API of a running server.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c *apiClient) do(method, path, body string, want int, out any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: got %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// alternatives returns the text/plain and text/html parts of a
// multipart/alternative message, decoded.
func alternatives(t *testing.T, m *netmail.Message) (text, html string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type: got %q %v, want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	if text == "" || html == "" {
		t.Fatalf("want a text and an HTML part; got text %d bytes, HTML %d bytes", len(text), len(html))
	}
	return text, html
}

// TestNotificationsWaitWithoutSMTPUntilRunDue: a server without a mail
// server says so and keeps the due email pending; `usher notifications
// run-due` with one, as from cron, sends it once.
func TestNotificationsWaitWithoutSMTPUntilRunDue(t *testing.T) {
	dbPath := tempDB(t)
	t0 := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC) // Monday, 10:30 in Berlin: today's 08:00 has passed
	setClock(t, t0)
	clockFile := os.Getenv(testNowEnv)
	if code, _, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--timezone", "Europe/Berlin", "--db", dbPath); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := cli(t, "notifications", "set", "--admin", "ada@acme.test", "--db", dbPath, "--start-date", "2026-03-02", "--frequency", "weekly", "--range", "30d"); code != 0 {
		t.Fatal(stderr)
	}

	srv := startServe(t, "server without SMTP", clockFile, "--db", dbPath)
	if !strings.Contains(srv.stderr.String(), "no SMTP server configured (--smtp or USHER_SMTP_URL)") {
		t.Fatalf("serve did not say that no SMTP server is configured:\n%s", srv.stderr.String())
	}
	ctx := context.Background()
	db, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	due := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	eventually(t, 10*time.Second, func() (bool, string) {
		runs := runsFor(t, db, due)
		return len(runs) == 1, fmt.Sprintf("%d runs planned, want 1", len(runs))
	})
	time.Sleep(300 * time.Millisecond) // three more passes, none of which may send
	srv.stop()
	if runs := runsFor(t, db, due); runs[0].status != "pending" || runs[0].attempts != 0 {
		t.Fatalf("without SMTP: got %+v, want pending and never attempted", runs[0])
	}

	smtp := smtptest.StartServer(t, smtptest.NoTLS)
	runDue := func() string {
		t.Helper()
		cmd := exec.Command(usherBinary(t), "notifications", "run-due", "--db", dbPath, "--smtp", "smtp://"+smtp.Addr,
			"--mail-from", "usher@example.com", "--base-url", e2eBaseURL)
		cmd.Env = append(os.Environ(), testNowEnv+"="+clockFile)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("run-due: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := runDue(); !strings.Contains(out, "Planned 0 emails; delivered 1.") {
		t.Fatalf("first run-due: %q", out)
	}
	if out := runDue(); !strings.Contains(out, "Planned 0 emails; delivered 0.") {
		t.Fatalf("second run-due: %q", out)
	}
	copies := copiesByMessageID(t, smtp.Mailbox)
	if want := fmt.Sprintf("<run-1-1-%d@usher.example.com>", due.Unix()); len(copies) != 1 || copies[want] != 1 {
		t.Fatalf("got messages %v, want %s once", copies, want)
	}
	if runs := runsFor(t, db, due); runs[0].status != "delivered" || runs[0].attempts != 1 {
		t.Fatalf("after run-due: got %+v", runs[0])
	}
}
