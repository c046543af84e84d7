package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/store"
)

// Goals of the reclaim issue, checked in the table WriteReclaim prints.
const (
	goalReclaimRatio      = 0.5 // each step's seats/s ÷ bulk Unassign's
	goalReclaimEmailRatio = 0.8 // warnings/s ÷ the bare SMTP loop's
)

// reclaimGraceDays is the policy's grace period between warning and reclaim.
const reclaimGraceDays = 7

// reclaimWorkers is how many emails are in flight at once, in the reclaim
// service (its default, reclaim.Config.Workers) and in the bare loop alike.
const reclaimWorkers = notify.DefaultWorkers

// ReclaimConfig sizes the reclaim benchmark: the usage suite's account
// (users and seats, without events) with a fifth of its seats inactive, at
// most one per user, so that each warned person gets one email.
type ReclaimConfig struct {
	Users, Seats int
	Inactive     int
}

// ReclaimScaled is the reclaim goal's size, 150,000 seats with 30,000
// inactive, multiplied by f like the usage suite.
func ReclaimScaled(f float64) ReclaimConfig {
	c := Scaled(f)
	return ReclaimConfig{Users: c.Users, Seats: c.Seats, Inactive: c.Seats / 5}
}

func (c ReclaimConfig) validate() error {
	// Inactive seats are first seats of users on the four products with
	// usage data: four users in five.
	if c.Users < 1 || c.Seats < c.Users || c.Seats > 2*c.Users || c.Inactive < 1 || c.Inactive > c.Users*4/5 {
		return fmt.Errorf("reclaim bench: need seats between users and twice users, and inactive seats between 1 and 4/5 of users (users %d, seats %d, inactive %d)",
			c.Users, c.Seats, c.Inactive)
	}
	return nil
}

// ReclaimResult holds one engine's reclaim figures.
type ReclaimResult struct {
	Engine string
	Config ReclaimConfig
	Sink   string
	Setup  time.Duration // seeding, not measured against anything

	// Preview is reclaim.Service.Preview on the seeded account; Warn is the
	// run of the warn step (PlanDue, then SendDue carrying out the run and
	// delivering its first email); Reclaim the same after the grace period.
	Preview, Warn, Reclaim time.Duration
	// Unassign is access.Service.Unassign (POST /api/v1/unassign) of the
	// same seats, in requests of at most access.MaxUnassignItems, before
	// the policy ran; the seats are put back as they were afterwards.
	Unassign time.Duration

	PreviewWarn   int // seats the preview would warn
	Warned        int // seats the warn run warned
	Reclaimed     int // seats the reclaim run reclaimed
	Unassigned    int // seats the baseline unassigned
	SeatsLeft     int // assignments after the reclaim run
	WarningsSent  int // warning emails recorded as delivered
	NoticesSent   int // reclaim notices recorded as delivered
	WarnReceived  int // messages the sink stored after the warn run: its warnings but the first, and its digest
	BareReceived  int // messages the sink stored from the bare loop
	WarnEmails    time.Duration
	Bare          time.Duration
	WarnEmailsCPU time.Duration // this process's CPU while the warnings went out; 0 off Linux
	BareCPU       time.Duration
}

func (r ReclaimResult) PreviewRate() float64  { return rate(r.PreviewWarn, r.Preview) }
func (r ReclaimResult) WarnRate() float64     { return rate(r.Warned, r.Warn) }
func (r ReclaimResult) ReclaimRate() float64  { return rate(r.Reclaimed, r.Reclaim) }
func (r ReclaimResult) UnassignRate() float64 { return rate(r.Unassigned, r.Unassign) }
func (r ReclaimResult) EmailRate() float64    { return rate(r.WarnReceived, r.WarnEmails) }
func (r ReclaimResult) BareRate() float64     { return rate(r.BareReceived, r.Bare) }
func (r ReclaimResult) EmailRatio() float64   { return r.EmailRate() / r.BareRate() }

// benchClock is the benchmark's controlled clock.
type benchClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *benchClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *benchClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// firstWarning is the real SMTP mailer, keeping the first warning it sent
// so that the bare loop sends the same message.
type firstWarning struct {
	*mail.SMTP
	mu    sync.Mutex
	first *reclaim.Message
}

func (f *firstWarning) SendReclaim(ctx context.Context, m reclaim.Message) error {
	err := f.SMTP.SendReclaim(ctx, m)
	f.mu.Lock()
	if err == nil && f.first == nil && m.Kind == reclaim.EmailWarning {
		f.first = &m
	}
	f.mu.Unlock()
	return err
}

// RunReclaim builds the usage suite's account in db (freshly migrated and
// empty) with cfg.Inactive of its seats inactive, times the bulk Unassign of
// those seats through the access service, puts them back, and then runs a
// warn-then-reclaim policy over the account through the reclaim service with
// a controlled clock: preview, the warn run, its warnings to a real SMTP
// server, and after the grace period the reclaim run. The warnings are
// compared with a bare go-mail loop sending the first of them as often.
func RunReclaim(ctx context.Context, db *store.DB, cfg ReclaimConfig, progress func(format string, args ...any)) (ReclaimResult, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	res := ReclaimResult{Engine: db.Engine(), Config: cfg, Sink: sinkKind}
	if err := cfg.validate(); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "usher-bench-reclaim-smtp-")
	if err != nil {
		return res, fmt.Errorf("reclaim bench: %w", err)
	}
	defer os.RemoveAll(dir)
	sk, err := startSink(dir)
	if err != nil {
		return res, err
	}
	defer sk.stop()
	smtp, err := mail.Open("smtp://" + sk.addr)
	if err != nil {
		return res, fmt.Errorf("reclaim bench: %w", err)
	}
	mailer := &firstWarning{SMTP: smtp}

	start := time.Now()
	now := start.UTC().Truncate(time.Millisecond)
	clock := &benchClock{t: now}
	ucfg := Full()
	ucfg.Users, ucfg.Seats = cfg.Users, cfg.Seats
	w, err := seed(ctx, db, ucfg, now, progress)
	if err != nil {
		return res, err
	}
	inactive, err := w.makeInactive(ctx, db, cfg.Inactive, now)
	if err != nil {
		return res, err
	}
	acc := access.New(db.Access(), clock.Now)
	actor, err := acc.Authenticate(ctx, w.token)
	if err != nil {
		return res, err
	}
	rec := reclaim.New(db.Reclaim(), acc, mailer, reclaim.Config{
		BaseURL: benchBaseURL, From: benchFrom, Now: clock.Now, Workers: reclaimWorkers,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	res.Setup = time.Since(start)

	// The baseline: the same seats through the domain service's bulk
	// Unassign, as POST /api/v1/unassign does it.
	progress("unassigning the %d inactive seats through the access service", len(inactive))
	items := make([]access.UnassignItem, len(inactive))
	for i, s := range inactive {
		items[i] = access.UnassignItem{UserID: s.userID, SubscriptionID: s.subscriptionID}
	}
	start = time.Now()
	for lo := 0; lo < len(items); lo += access.MaxUnassignItems {
		r, err := acc.Unassign(ctx, actor, items[lo:min(lo+access.MaxUnassignItems, len(items))])
		if err != nil {
			return res, fmt.Errorf("reclaim bench: unassign: %w", err)
		}
		res.Unassigned += r.Seats
	}
	res.Unassign = time.Since(start)
	if err := w.restoreSeats(ctx, db, inactive); err != nil {
		return res, err
	}

	progress("creating a warn-then-reclaim policy over %d products", len(w.products)-1)
	var codes []string
	for _, p := range w.products {
		codes = append(codes, p.code)
	}
	grace := reclaimGraceDays
	p, err := rec.Create(ctx, actor, reclaim.Input{Name: "Idle seats", Scope: reclaim.Scope{Kind: reclaim.ScopeProducts, Products: codes},
		Range: "30d", Mode: reclaim.WarnThenReclaim, GraceDays: &grace})
	if err != nil {
		return res, fmt.Errorf("reclaim bench: create policy: %w", err)
	}

	progress("previewing the policy")
	start = time.Now()
	pl, err := rec.Preview(ctx, actor, p.ID)
	res.Preview = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("reclaim bench: %w", err)
	}
	res.PreviewWarn = pl.Warn

	// The warn run: the policy's first run time. SendDue with one carries
	// out the run and then delivers one email, as the scheduler's loop does.
	clock.Set(p.NextRunAt.Add(time.Second))
	step := func(what string) (time.Duration, error) {
		progress("%s run", what)
		start := time.Now()
		if _, err := rec.PlanDue(ctx); err != nil {
			return 0, fmt.Errorf("reclaim bench: %s: %w", what, err)
		}
		if _, err := rec.SendDue(ctx, "bench", 1); err != nil {
			return 0, fmt.Errorf("reclaim bench: %s: %w", what, err)
		}
		return time.Since(start), nil
	}
	if res.Warn, err = step("warn"); err != nil {
		return res, err
	}
	before, err := sk.files()
	if err != nil {
		return res, err
	}
	progress("sending the warnings to %s", sk.addr)
	self := selfCPU()
	start = time.Now()
	if err := drain(ctx, rec); err != nil {
		return res, err
	}
	res.WarnEmails, res.WarnEmailsCPU = time.Since(start), selfCPU()-self
	afterWarn, err := sk.files()
	if err != nil {
		return res, err
	}
	res.WarnReceived = len(added(before, afterWarn))

	mailer.mu.Lock()
	first := mailer.first
	mailer.mu.Unlock()
	if first == nil {
		return res, fmt.Errorf("reclaim bench: the warn run sent no warning")
	}
	e, err := mail.RenderReclaim(*first)
	if err != nil {
		return res, fmt.Errorf("reclaim bench: render: %w", err)
	}
	// The service sends reclaimWorkers emails at once, so the bare loop does too.
	progress("sending the same warning %d times with a bare go-mail loop, %d at once", res.WarnReceived, reclaimWorkers)
	self = selfCPU()
	if res.Bare, err = bareSend(ctx, sk.addr, e, res.WarnReceived, reclaimWorkers); err != nil {
		return res, fmt.Errorf("reclaim bench: bare loop: %w", err)
	}
	res.BareCPU = selfCPU() - self
	afterBare, err := sk.files()
	if err != nil {
		return res, err
	}
	res.BareReceived = len(added(afterWarn, afterBare))

	// After the grace period: the run on the day the warnings said.
	clock.Set(p.NextRunAt.AddDate(0, 0, reclaimGraceDays).Add(time.Second))
	if res.Reclaim, err = step("reclaim"); err != nil {
		return res, err
	}
	progress("sending the reclaim notices")
	if err := drain(ctx, rec); err != nil {
		return res, err
	}
	return res, res.count(ctx, db)
}

// drain delivers every due reclaim email, as the scheduler's loop does.
func drain(ctx context.Context, rec *reclaim.Service) error {
	for {
		n, err := rec.SendDue(ctx, "bench", 100)
		if err != nil {
			return fmt.Errorf("reclaim bench: send: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}

// count reads what the runs recorded.
func (r *ReclaimResult) count(ctx context.Context, db *store.DB) error {
	q := db.SQL()
	rows, err := q.QueryContext(ctx, "SELECT status, warned, reclaimed FROM reclaim_runs ORDER BY id")
	if err != nil {
		return fmt.Errorf("reclaim bench: runs: %w", err)
	}
	defer rows.Close()
	var runs []string
	for rows.Next() {
		var status string
		var warned, reclaimed int
		if err := rows.Scan(&status, &warned, &reclaimed); err != nil {
			return err
		}
		runs = append(runs, status)
		r.Warned += warned
		r.Reclaimed += reclaimed
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if strings.Join(runs, ",") != "done,done" {
		return fmt.Errorf("reclaim bench: runs ended %v, want two done", runs)
	}
	err = q.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM reclaim_emails WHERE kind = 'warning' AND status = 'delivered'),
		(SELECT COUNT(*) FROM reclaim_emails WHERE kind = 'notice' AND status = 'delivered'),
		(SELECT COUNT(*) FROM assignments)`).Scan(&r.WarningsSent, &r.NoticesSent, &r.SeatsLeft)
	if err != nil {
		return fmt.Errorf("reclaim bench: emails: %w", err)
	}
	return nil
}

type seatRef struct {
	userID, subscriptionID int64
	assignedAt, lastUsedAt int64
}

// makeInactive marks every seat used yesterday, then n users' first seats
// on products with usage data inactive: assigned 400 days ago, and never
// used (even users) or last used 200 days ago (odd users). It returns them.
func (w *world) makeInactive(ctx context.Context, db *store.DB, n int, now time.Time) ([]seatRef, error) {
	assigned := now.AddDate(0, 0, -400).UnixMilli()
	var out []seatRef
	for i := 0; len(out) < n && i < len(w.userIDs); i++ {
		s := w.seats[i] // the first len(userIDs) seats are the users' first
		if !plans[s.product].HasUsageData() {
			continue
		}
		last := int64(0)
		if i%2 == 1 {
			last = now.AddDate(0, 0, -200).UnixMilli()
		}
		out = append(out, seatRef{userID: w.userIDs[s.user], subscriptionID: w.products[s.product].subscriptionID, assignedAt: assigned, lastUsedAt: last})
	}
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.Rebind("UPDATE assignments SET last_used_at = ? WHERE account_id = ?"),
			now.AddDate(0, 0, -1).UnixMilli(), w.account.ID); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, db.Rebind("UPDATE assignments SET assigned_at = ?, last_used_at = ? WHERE user_id = ? AND subscription_id = ?"))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, s := range out {
			if _, err := stmt.ExecContext(ctx, s.assignedAt, s.lastUsedAt, s.userID, s.subscriptionID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reclaim bench: mark inactive seats: %w", err)
	}
	return out, analyze(ctx, db)
}

// restoreSeats puts back the seats the baseline unassigned, as they were,
// and the subscriptions' counts of seats used.
func (w *world) restoreSeats(ctx context.Context, db *store.DB, seats []seatRef) error {
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, db.Rebind("INSERT INTO assignments (account_id, user_id, subscription_id, assigned_at, last_used_at) VALUES (?, ?, ?, ?, ?)"))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, s := range seats {
			if _, err := stmt.ExecContext(ctx, w.account.ID, s.userID, s.subscriptionID, s.assignedAt, s.lastUsedAt); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, db.Rebind(`UPDATE subscriptions SET seats_used =
			(SELECT COUNT(*) FROM assignments a WHERE a.subscription_id = subscriptions.id) WHERE account_id = ?`), w.account.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("reclaim bench: restore seats: %w", err)
	}
	return analyze(ctx, db)
}

// WriteReclaim prints reclaim results as a Markdown table, one column per
// engine, with the goals and whether they were met.
func WriteReclaim(w io.Writer, results []ReclaimResult) error {
	if len(results) == 0 {
		return nil
	}
	c := results[0].Config
	p := &printer{w: w}
	p.printf("Reclaim: %d users, %d seats on 5 products, %d of them inactive (one per person, half never used); a warn-then-reclaim policy over the 4 products with usage data, range 30 days, grace %d days, clock controlled. Baseline: bulk Unassign of the same seats through the access service (POST /api/v1/unassign's path), %d per request, before the policy, on the same database.\n\n",
		c.Users, c.Seats, c.Inactive, reclaimGraceDays, access.MaxUnassignItems)
	engines := make([]string, len(results))
	for i, r := range results {
		engines[i] = r.Engine
	}
	p.tableHead(engines)
	row := func(name, goal string, cell func(r ReclaimResult) string) { tableRow(p, results, name, goal, cell) }
	mark := func(ok bool) string {
		if ok {
			return "✓"
		}
		return "✗"
	}
	row("bulk Unassign (baseline), seats/s", "", func(r ReclaimResult) string {
		return fmt.Sprintf("%.0f (%s)", r.UnassignRate(), secs(r.Unassign))
	})
	steps := []struct {
		name string
		rate func(ReclaimResult) float64
		took func(ReclaimResult) time.Duration
	}{
		{"preview", ReclaimResult.PreviewRate, func(r ReclaimResult) time.Duration { return r.Preview }},
		{"warn run", ReclaimResult.WarnRate, func(r ReclaimResult) time.Duration { return r.Warn }},
		{"reclaim run", ReclaimResult.ReclaimRate, func(r ReclaimResult) time.Duration { return r.Reclaim }},
	}
	for _, s := range steps {
		row(s.name+", seats/s; ÷ baseline", fmt.Sprintf("≥ %.1f", goalReclaimRatio), func(r ReclaimResult) string {
			x := s.rate(r) / r.UnassignRate()
			return fmt.Sprintf("%.0f (%s); %.2f %s", s.rate(r), secs(s.took(r)), x, mark(x >= goalReclaimRatio))
		})
	}
	row("seats previewed / warned / reclaimed / unassigned", fmt.Sprint(c.Inactive), func(r ReclaimResult) string {
		return fmt.Sprintf("%d / %d / %d / %d", r.PreviewWarn, r.Warned, r.Reclaimed, r.Unassigned)
	})
	row("warning emails, emails/s", "", func(r ReclaimResult) string {
		return fmt.Sprintf("%.0f (%s)", r.EmailRate(), secs(r.WarnEmails))
	})
	row("bare go-mail loop, emails/s", "", func(r ReclaimResult) string { return fmt.Sprintf("%.0f (%s)", r.BareRate(), secs(r.Bare)) })
	row("warnings ÷ bare", fmt.Sprintf("≥ %.1f", goalReclaimEmailRatio), func(r ReclaimResult) string {
		return fmt.Sprintf("%.2f %s", r.EmailRatio(), mark(r.EmailRatio() >= goalReclaimEmailRatio))
	})
	row("warnings / notices delivered", fmt.Sprintf("%d / %d", c.Inactive, c.Inactive), func(r ReclaimResult) string {
		return fmt.Sprintf("%d / %d", r.WarningsSent, r.NoticesSent)
	})
	row("CPU per email, benchmark process: warnings; bare loop", "", func(r ReclaimResult) string {
		return fmt.Sprintf("%s; %s", perEmail(r.WarnEmailsCPU, r.WarnReceived), perEmail(r.BareCPU, r.BareReceived))
	})
	row("setup (not measured)", "", func(r ReclaimResult) string { return secs(r.Setup) })
	p.printf("\nThe warn and reclaim runs are PlanDue and then SendDue carrying out the run and delivering its first email; the other emails are timed apart (warnings), %d at once as the service sends them, each on its own SMTP connection, and so is the bare loop. The warnings timed apart are all but the first, with the warn run's digest to the admin. SMTP sink: %s, on this machine.\n", reclaimWorkers, results[0].Sink)
	return p.err
}
