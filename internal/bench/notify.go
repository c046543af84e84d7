package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	netmail "net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/scheduler"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// The scheduler counts each email's inactive users in the transaction
// that claims its run.
var _ notify.TxEvidence = (*usage.Service)(nil)

// NotifyConfig sizes the notification benchmark.
type NotifyConfig struct {
	Accounts int // accounts, each with one primary admin who gets one email
	Users    int // users per account besides the admin, each with a seat
	// Workers is how many emails are in flight at once, in the scheduler
	// (notify.Config.Workers) and in the bare loop alike.
	Workers int
}

// NotifyFull is the size of the notification goal: 1,000 emails to the
// primary admins of 1,000 accounts, at the scheduler's default concurrency.
func NotifyFull() NotifyConfig {
	return NotifyConfig{Accounts: 1000, Users: 3, Workers: notify.DefaultWorkers}
}

// NotifyScaled returns NotifyFull with the accounts multiplied by f, at
// least 20 so that the rates still mean something.
func NotifyScaled(f float64) NotifyConfig {
	c := NotifyFull()
	// Above scale 1 the goals are about one large account's seats, not
	// more accounts.
	c.Accounts = max(20, int(float64(c.Accounts)*min(f, 1)))
	return c
}

func (c NotifyConfig) validate() error {
	if c.Accounts < 1 || c.Users < 0 || c.Workers < 1 {
		return fmt.Errorf("notify bench: need at least one account and one worker (accounts %d, users %d, workers %d)", c.Accounts, c.Users, c.Workers)
	}
	return nil
}

// NotifyResult holds one engine's notification figures.
type NotifyResult struct {
	Engine string
	Config NotifyConfig
	Sink   string        // the SMTP server both paths sent to
	Setup  time.Duration // accounts, seats and settings; not measured against anything

	// Usher is scheduler.RunOnce from the first due setting to the last
	// outcome recorded: plan, claim, count inactive users, render, send over
	// SMTP and record, for every email. Plan is its planning part.
	Usher     time.Duration
	Plan      time.Duration
	Planned   int // runs RunOnce created
	Delivered int // runs RunOnce reported delivered
	// Bare is the same number of the same rendered message sent through
	// go-mail, one connection per email as mail.SMTP does, with as many in
	// flight as the scheduler sends at once: half before the scheduler's
	// run and half after it.
	Bare time.Duration

	// CPU time used during each phase by this process (with SQLite, which
	// runs in it, but not PostgreSQL's server) and by the sink: on a machine
	// whose cores the sink shares, what Usher spends is taken from the sink.
	// Zero when not measured (off Linux).
	UsherCPU, UsherSinkCPU time.Duration
	BareCPU, BareSinkCPU   time.Duration

	// Messages the sink stored during each phase: the comparison holds only
	// if both are Config.Accounts.
	UsherReceived, BareReceived int
	MessageBytes                int // size of one message as the sink stored it
}

func (r NotifyResult) UsherRate() float64 { return rate(r.UsherReceived, r.Usher) }
func (r NotifyResult) BareRate() float64  { return rate(r.BareReceived, r.Bare) }
func (r NotifyResult) Ratio() float64     { return r.UsherRate() / r.BareRate() }

// Where the synthetic emails come from and point to.
const (
	benchFrom    = "Usher <usher@bench.usher.test>"
	benchBaseURL = "https://usher.bench.usher.test"
)

// zones the accounts are spread over, so the due occurrences are not all
// at one instant and planning resolves several time zones.
var zones = []string{"Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"}

// RunNotify builds cfg.Accounts accounts in db, which must be freshly
// migrated and empty, makes one notification due for each account's primary
// admin, and times their delivery through the scheduler against a bare send
// loop of the same message, both to one real SMTP server on loopback.
// progress, if not nil, hears what it is doing.
func RunNotify(ctx context.Context, db *store.DB, cfg NotifyConfig, progress func(format string, args ...any)) (NotifyResult, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	res := NotifyResult{Engine: db.Engine(), Config: cfg, Sink: sinkKind}
	if err := cfg.validate(); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "usher-bench-smtp-")
	if err != nil {
		return res, fmt.Errorf("notify bench: %w", err)
	}
	defer os.RemoveAll(dir)
	sk, err := startSink(dir)
	if err != nil {
		return res, err
	}
	defer sk.stop()
	mailer, err := mail.Open("smtp://" + sk.addr)
	if err != nil {
		return res, fmt.Errorf("notify bench: %w", err)
	}

	// The clock runs like the wall clock, shifted: seats are assigned more
	// than a year before the settings are saved, so every seat counts as
	// inactive and each email lists users and links the report, the larger
	// kind; then the clock moves past the last first occurrence so that
	// every setting is due.
	var shift atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	use := usage.New(db.Usage(), usage.Config{Now: clock})
	svc := notify.New(db.Notify(), mailer, use, notify.Config{
		BaseURL: benchBaseURL, From: benchFrom, Now: clock, Workers: cfg.Workers,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), // formatted as in serve, not written
	})

	start := time.Now()
	shift.Store(int64(-400 * 24 * time.Hour))
	admins, err := seedNotify(ctx, db, cfg, clock, progress)
	if err != nil {
		return res, err
	}
	shift.Store(0)
	progress("turning on notifications for %d primary admins", len(admins))
	var due time.Time
	for _, a := range admins {
		st, _, err := svc.Set(ctx, a.actor, notify.Input{
			StartDate: usher.DateOf(clock().In(a.account.Location())), Frequency: notify.Monthly, Range: usage.Range3m,
		})
		if err != nil {
			return res, fmt.Errorf("notify bench: turn on notifications for %s: %w", a.actor.Email, err)
		}
		if st.NextAt.After(due) {
			due = st.NextAt
		}
	}
	if ahead := time.Until(due); ahead > 0 {
		shift.Store(int64(ahead + time.Minute))
	}
	if err := analyze(ctx, db); err != nil {
		return res, err
	}
	res.Setup = time.Since(start)

	// The bare loop sends the first admin's email, rendered from the data
	// the scheduler will use for it. It runs in two halves, before and after
	// the scheduler, so that a change in the machine's load during the run
	// weighs on both sides alike.
	e, err := renderFor(ctx, db, svc, use, admins[0], clock)
	if err != nil {
		return res, err
	}
	firstHalf := cfg.Accounts / 2
	files := []map[string]bool{}
	snapshot := func() error {
		f, err := sk.files()
		files = append(files, f)
		return err
	}
	bare := func(n int) error {
		progress("sending the same message %d times with a bare go-mail loop, %d at once", n, cfg.Workers)
		self, sinkCPU := selfCPU(), sk.cpu()
		d, err := bareSend(ctx, sk.addr, e, n, cfg.Workers)
		res.Bare += d
		res.BareCPU += selfCPU() - self
		res.BareSinkCPU += sk.cpu() - sinkCPU
		if err != nil {
			return fmt.Errorf("notify bench: bare loop: %w", err)
		}
		return snapshot()
	}
	if err := snapshot(); err != nil {
		return res, err
	}
	if err := bare(firstHalf); err != nil {
		return res, err
	}

	progress("sending %d notifications through the scheduler to %s", cfg.Accounts, sk.addr)
	tn := &timedNotifier{Service: svc}
	self, sinkCPU := selfCPU(), sk.cpu()
	start = time.Now()
	run, err := scheduler.RunOnce(ctx, tn, scheduler.Owner())
	res.Usher, res.Plan = time.Since(start), tn.plan
	res.UsherCPU, res.UsherSinkCPU = selfCPU()-self, sk.cpu()-sinkCPU
	res.Planned, res.Delivered = run.Planned, run.Delivered
	if err != nil {
		return res, fmt.Errorf("notify bench: scheduler (planned %d, delivered %d): %w", run.Planned, run.Delivered, err)
	}
	if err := snapshot(); err != nil {
		return res, err
	}
	if err := bare(cfg.Accounts - firstHalf); err != nil {
		return res, err
	}

	fromBare, fromUsher := added(files[0], files[1]), added(files[1], files[2])
	for f := range added(files[2], files[3]) {
		fromBare[f] = true
	}
	res.UsherReceived, res.BareReceived = len(fromUsher), len(fromBare)
	if run.Planned != cfg.Accounts || run.Delivered != cfg.Accounts || res.UsherReceived != cfg.Accounts {
		return res, fmt.Errorf("notify bench: the scheduler planned %d and delivered %d, the sink received %d; want %d of each",
			run.Planned, run.Delivered, res.UsherReceived, cfg.Accounts)
	}
	if res.BareReceived != cfg.Accounts {
		return res, fmt.Errorf("notify bench: the sink received %d messages from the bare loop, want %d", res.BareReceived, cfg.Accounts)
	}
	if n, err := deliveredRuns(ctx, db); err != nil {
		return res, fmt.Errorf("notify bench: %w", err)
	} else if n != cfg.Accounts {
		return res, fmt.Errorf("notify bench: %d runs recorded as delivered, want %d", n, cfg.Accounts)
	}
	if res.MessageBytes, err = sameMessage(fromUsher, fromBare, e.MessageID); err != nil {
		return res, fmt.Errorf("notify bench: %w", err)
	}
	return res, nil
}

// added returns the files in after that are not in before.
func added(before, after map[string]bool) map[string]bool {
	out := map[string]bool{}
	for f := range after {
		if !before[f] {
			out[f] = true
		}
	}
	return out
}

// timedNotifier is the notify service with its planning timed, to tell
// planning from sending inside one RunOnce.
type timedNotifier struct {
	*notify.Service
	plan time.Duration
}

func (t *timedNotifier) PlanDue(ctx context.Context) (int, error) {
	start := time.Now()
	n, err := t.Service.PlanDue(ctx)
	t.plan += time.Since(start)
	return n, err
}

// benchAdmin is one synthetic account's primary admin.
type benchAdmin struct {
	account usher.Account
	user    usher.User
	actor   usher.Actor
}

// seedNotify creates the accounts through the access service, which keeps
// the rules for an account, its admin, a subscription and its seats: one
// subscription per account with a seat for the admin and for each of
// cfg.Users users. It is a few thousand small transactions, seconds on
// either engine, so no bulk loading is needed.
func seedNotify(ctx context.Context, db *store.DB, cfg NotifyConfig, clock func() time.Time, progress func(string, ...any)) ([]benchAdmin, error) {
	svc := access.New(db.Access(), clock)
	progress("seeding %d accounts with %d seats each", cfg.Accounts, cfg.Users+1)
	var catalog []usher.Product
	admins := make([]benchAdmin, 0, cfg.Accounts)
	for i := range cfg.Accounts {
		acct, admin, _, err := svc.CreateAccount(ctx, access.NewAccount{
			Name: fmt.Sprintf("Bench %04d GmbH", i), TimeZone: zones[i%len(zones)],
			AdminEmail: fmt.Sprintf("admin%04d@bench.usher.test", i), AdminName: fmt.Sprintf("%s %s", firstNames[i%len(firstNames)], lastNames[i/len(firstNames)%len(lastNames)]),
		})
		if err != nil {
			return nil, fmt.Errorf("seed account %d: %w", i, err)
		}
		actor, err := svc.ActorFor(ctx, acct.ID, admin.ID)
		if err != nil {
			return nil, fmt.Errorf("seed account %d: %w", i, err)
		}
		if catalog == nil {
			if catalog, err = svc.ListProducts(ctx, actor); err != nil {
				return nil, fmt.Errorf("seed: list products: %w", err)
			}
			if len(catalog) == 0 {
				return nil, errors.New("seed: the product catalog is empty")
			}
		}
		seats := cfg.Users + 2 // one spare, as contracts usually have
		today := usher.DateOf(clock().In(acct.Location()))
		sub, err := svc.CreateSubscription(ctx, actor, access.NewSubscription{
			Product: catalog[i%len(catalog)].Code, Plan: usher.PlanStandard, Seats: &seats, ContractNumber: fmt.Sprintf("NB-%04d", i),
			TermStart: today, TermEnd: usher.Date{Time: today.AddDate(3, 0, 0)}, ContractManagerID: admin.ID, // the admin gets a seat
		})
		if err != nil {
			return nil, fmt.Errorf("seed account %d: %w", i, err)
		}
		for j := range cfg.Users {
			addr, name := fmt.Sprintf("user%d.%04d@bench.usher.test", j, i), fmt.Sprintf("%s %s %d", firstNames[(i+j+1)%len(firstNames)], lastNames[(i+j)%len(lastNames)], j)
			u, err := svc.CreateUser(ctx, actor, access.UserInput{Email: &addr, Name: &name})
			if err != nil {
				return nil, fmt.Errorf("seed account %d: %w", i, err)
			}
			if err := svc.Assign(ctx, actor, u.ID, sub.ID, nil); err != nil {
				return nil, fmt.Errorf("seed account %d: %w", i, err)
			}
		}
		admins = append(admins, benchAdmin{account: acct, user: admin, actor: actor})
		if (i+1)%250 == 0 && i+1 < cfg.Accounts {
			progress("seeded %d accounts", i+1)
		}
	}
	return admins, nil
}

func deliveredRuns(ctx context.Context, db *store.DB) (int, error) {
	var n int
	err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM notification_runs WHERE status = 'delivered'").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count delivered runs: %w", err)
	}
	return n, nil
}

// renderFor renders the email the scheduler is to send to a's admin for
// their due setting, from the same inactivity count. sameMessage later
// checks that the scheduler sent an email with the same Message-ID.
func renderFor(ctx context.Context, db *store.DB, svc *notify.Service, use *usage.Service, a benchAdmin, clock func() time.Time) (mail.Email, error) {
	st, err := svc.Setting(ctx, a.actor)
	if err != nil {
		return mail.Email{}, fmt.Errorf("notify bench: %w", err)
	}
	sum, err := use.InactiveSummary(ctx, a.account.ID, st.Range, notify.DefaultFirstUsers)
	if err != nil {
		return mail.Email{}, fmt.Errorf("notify bench: %w", err)
	}
	m := notify.Message{
		MessageID: svc.MessageID(a.account.ID, a.user.ID, st.NextAt), From: benchFrom, To: a.user, Account: a.account,
		Date: clock(), ScheduledFor: st.NextAt, Summary: sum, SettingsURL: benchBaseURL + notify.SettingsPath,
	}
	if sum.InactiveUsers > 0 {
		// The scheduler's email links to its snapshot, named by the run's
		// id: in a fresh database, runs are numbered in planning order.
		var before int64
		err := db.SQL().QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM notification_settings
			WHERE enabled AND (next_at < ? OR next_at = ? AND (account_id < ? OR account_id = ? AND user_id < ?))`),
			st.NextAt.UnixMilli(), st.NextAt.UnixMilli(), a.account.ID, a.account.ID, a.user.ID).Scan(&before)
		if err != nil {
			return mail.Email{}, fmt.Errorf("notify bench: the first email's run: %w", err)
		}
		m.ReportURL = svc.SnapshotURL(usage.SnapshotID(usage.SnapshotNotification, before+1))
	}
	e, err := mail.Render(m)
	if err != nil {
		return mail.Email{}, fmt.Errorf("notify bench: render: %w", err)
	}
	return e, nil
}

// bareSend sends e n times to addr with go-mail, workers at once, each on
// a connection of its own and with the options mail.SMTP uses for a clear
// text server: what a program that only sends this email would do.
func bareSend(ctx context.Context, addr string, e mail.Email, n, workers int) (time.Duration, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	send := func() error {
		msg, err := goMailMsg(e)
		if err != nil {
			return err
		}
		c, err := gomail.NewClient(host, gomail.WithPort(port), gomail.WithTimeout(30*time.Second), gomail.WithTLSPolicy(gomail.NoTLS),
			gomail.WithTLSConfig(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}))
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return c.DialAndSendWithContext(sctx, msg)
	}
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if err := send(); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// goMailMsg builds the MIME message the way mail.SMTP does: the same
// headers and a multipart/alternative of the text and the HTML. sameMessage
// checks that the sink saw the same header fields and size from both.
func goMailMsg(e mail.Email) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := m.From(e.From); err != nil {
		return nil, err
	}
	if err := m.AddToFormat(e.To.Name, e.To.Address); err != nil {
		return nil, err
	}
	m.Subject(e.Subject)
	m.SetMessageIDWithValue(strings.TrimSuffix(strings.TrimPrefix(e.MessageID, "<"), ">"))
	m.SetDateWithValue(e.Date)
	m.SetUserAgent("Usher")
	m.SetBulk()
	m.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, e.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	return m, nil
}

// sameMessage finds the scheduler's email with messageID among the files
// in fromUsher and one of the bare loop's in fromBare, and checks that they
// carry the same header fields, subject, addresses and body size: otherwise
// the two rates compare different work. It answers the message's size.
func sameMessage(fromUsher, fromBare map[string]bool, messageID string) (int, error) {
	find := func(files map[string]bool, what string) (*storedMsg, error) {
		for f := range files {
			m, err := readStored(f)
			if err != nil {
				return nil, err
			}
			if m.msg.Header.Get("Message-Id") == messageID {
				return m, nil
			}
		}
		return nil, fmt.Errorf("the sink holds no message %s from the %s", messageID, what)
	}
	u, err := find(fromUsher, "scheduler")
	if err != nil {
		return 0, err
	}
	b, err := find(fromBare, "bare loop")
	if err != nil {
		return 0, err
	}
	for _, h := range []string{"Subject", "From", "To", "Content-Type"} {
		uh, bh := u.msg.Header.Get(h), b.msg.Header.Get(h)
		if h == "Content-Type" { // the boundary is random; its length is not
			uh, bh = strings.Split(uh, ";")[0], strings.Split(bh, ";")[0]
		}
		if uh != bh {
			return 0, fmt.Errorf("the bare loop's message differs from the scheduler's: %s %q, not %q", h, bh, uh)
		}
	}
	if uf, bf := u.fields(), b.fields(); !slices.Equal(uf, bf) {
		return 0, fmt.Errorf("the bare loop's message differs from the scheduler's: header fields %v, not %v", bf, uf)
	}
	if u.bodySize != b.bodySize {
		return 0, fmt.Errorf("the bare loop's message differs from the scheduler's: body of %d bytes, not %d", b.bodySize, u.bodySize)
	}
	return u.size, nil
}

type storedMsg struct {
	msg      *netmail.Message
	size     int
	bodySize int
}

func readStored(path string) (*storedMsg, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read stored message: %w", err)
	}
	m, err := netmail.ReadMessage(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("parse stored message %s: %w", path, err)
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return nil, fmt.Errorf("read stored message %s: %w", path, err)
	}
	return &storedMsg{msg: m, size: len(b), bodySize: len(body)}, nil
}

// fields lists the header field names, sorted.
func (s *storedMsg) fields() []string {
	var out []string
	for k := range s.msg.Header {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// goalNotifyRatio is the notifications issue's goal: the scheduler sends
// at least 0.8 times as many emails a second as the bare loop.
const goalNotifyRatio = 0.8

// WriteNotify prints notification results as a Markdown table, one column
// per engine, with the goal and whether it was met.
func WriteNotify(w io.Writer, results []NotifyResult) error {
	if len(results) == 0 {
		return nil
	}
	c := results[0].Config
	p := &printer{w: w}
	p.printf("Notifications: %d accounts, each with a primary admin who gets one email and %d seats, all inactive; %d emails in flight at once, one SMTP connection each; the bare loop sends half before the scheduler and half after.\n\n",
		c.Accounts, c.Users+1, c.Workers)
	engines := make([]string, len(results))
	for i, r := range results {
		engines[i] = r.Engine
	}
	p.tableHead(engines)
	row := func(name, goal string, cell func(r NotifyResult) string) { tableRow(p, results, name, goal, cell) }
	row("scheduler (RunOnce), emails/s", "", func(r NotifyResult) string {
		return fmt.Sprintf("%.0f (%s, planning %s)", r.UsherRate(), secs(r.Usher), secs(r.Plan))
	})
	row("bare go-mail loop, emails/s", "", func(r NotifyResult) string { return fmt.Sprintf("%.0f (%s)", r.BareRate(), secs(r.Bare)) })
	row("scheduler ÷ bare", fmt.Sprintf("≥ %.1f", goalNotifyRatio), func(r NotifyResult) string {
		mark := "✗"
		if r.Ratio() >= goalNotifyRatio {
			mark = "✓"
		}
		return fmt.Sprintf("%.2f %s", r.Ratio(), mark)
	})
	row("received by the sink (scheduler / bare)", fmt.Sprint(c.Accounts), func(r NotifyResult) string {
		return fmt.Sprintf("%d / %d", r.UsherReceived, r.BareReceived)
	})
	row("CPU per email, benchmark process / sink: scheduler; bare loop", "", func(r NotifyResult) string {
		return fmt.Sprintf("%s / %s; %s / %s", perEmail(r.UsherCPU, r.UsherReceived), perEmail(r.UsherSinkCPU, r.UsherReceived),
			perEmail(r.BareCPU, r.BareReceived), perEmail(r.BareSinkCPU, r.BareReceived))
	})
	row("message size", "", func(r NotifyResult) string { return fmt.Sprintf("%.1f KiB", float64(r.MessageBytes)/1024) })
	row("setup (not measured)", "", func(r NotifyResult) string { return secs(r.Setup) })
	p.printf("\nSMTP sink: %s, on this machine. Its CPU per email is in the table: while it is small beside the sender's, the ratio measures Usher, not the sink.\n", results[0].Sink)
	return p.err
}

// perEmail is d shared over n emails, in milliseconds; "–" when d was not
// measured.
func perEmail(d time.Duration, n int) string {
	if d <= 0 || n <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000/float64(n))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
