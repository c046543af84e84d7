package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/scheduler"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

const notificationsHelp = `Usage: usher notifications <command> [flags]

Usage notifications email a primary admin, on a schedule they choose, who in
their account holds seats without using them.

Commands:
  show      show an admin's setting, when the next email goes, and recent emails
  set       turn an admin's notifications on, or edit them
  off       turn an admin's notifications off
  run-due   plan and send every email that is due, then exit (for cron)

Run "usher notifications <command> --help" for its flags.
`

const adminFlagsHelp = `  --admin EMAIL       act as this primary admin (required)
  --account ID        the admin's account; needed only when the email is a
                      user in several accounts
`

const notificationsShowHelp = `Usage: usher notifications show --admin EMAIL [flags]

Shows the admin's usage notification setting, when the next email goes (in
the account's time zone and in UTC) and the latest emails with their outcome.

Flags:
` + adminFlagsHelp + `  --runs N            how many recent emails to list (default 5, 0 for none)
` + dbFlagHelp + `  -h, --help          show this help
`

const notificationsSetHelp = `Usage: usher notifications set --admin EMAIL [flags]

Turns the admin's usage notifications on, or edits them, and says which and
when the next email goes. Only primary admins may. A new setting needs
--start-date, --frequency and --range; an edit changes only the flags given.

Flags:
` + adminFlagsHelp + `  --start-date DATE   the day of the first email, YYYY-MM-DD: today or later in
                      the account's time zone
  --frequency F       weekly, biweekly, monthly or quarterly (every three months)
  --range R           inactive range: 30d, 3m, 6m, 9m or 1y
  --send-hour H       local hour the emails go at, 0-23 (default 8)
` + dbFlagHelp + `  -h, --help          show this help

Example:
  usher notifications set --admin ada@acme.example --start-date 2026-02-02 --frequency monthly --range 3m
`

const notificationsOffHelp = `Usage: usher notifications off --admin EMAIL [flags]

Turns the admin's usage notifications off: no email goes after this, not even
one waiting for a retry. The choices are kept for turning them on again.

Flags:
` + adminFlagsHelp + dbFlagHelp + `  -h, --help          show this help
`

const notificationsRunDueHelp = `Usage: usher notifications run-due [flags]

Plans every usage notification email that is due and sends every email
waiting to go, then exits: what "usher serve" does every 30 seconds, for
those who prefer cron. It is safe to run while servers run, and from several
machines at once: each email is claimed in the database before it is sent.

Flags (a flag wins over its environment variable):
` + dbFlagHelp + `  --smtp URL          SMTP server, as for "usher serve"; without one, emails are
                      planned and wait                           env USHER_SMTP_URL
  --mail-from ADDR    sender of the emails; required with --smtp env USHER_MAIL_FROM
  --base-url URL      public URL of the server, which starts the links in the
                      emails (default http://127.0.0.1:8080)     env USHER_BASE_URL
  -h, --help          show this help

Example (crontab, every 5 minutes):
  */5 * * * *  USHER_DB=/var/lib/usher/usher.db USHER_SMTP_URL=smtp://mail:25 USHER_MAIL_FROM=usher@example.com usher notifications run-due
`

func runNotifications(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, usageErrorf("notifications: missing subcommand: show, set, off or run-due (see usher notifications --help)"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, notificationsHelp)
		return exitOK
	}
	c, ok := findCommand("notifications " + args[0])
	if !ok {
		return fail(stderr, usageErrorf("notifications: unknown subcommand %q: want show, set, off or run-due", args[0]))
	}
	return fail(stderr, c.run(ctx, args[1:], stdout, stderr))
}

// mailConfig is what the notify service needs to send.
type mailConfig struct {
	smtp    string // "" for no delivery
	from    string
	baseURL string
}

// newNotifyService builds the notify service on db. Without an SMTP URL it
// gets no mailer: runs are planned and stay pending.
func newNotifyService(db *store.DB, mc mailConfig, now func() time.Time, log *slog.Logger) (*notify.Service, error) {
	var mailer notify.Mailer // a literal nil unless configured: see notify.New
	if mc.smtp != "" {
		m, err := mail.Open(mc.smtp)
		if err != nil {
			return nil, usageErrorf("--smtp: %v", err)
		}
		mailer = m
	}
	return notify.New(db.Notify(), mailer, newInactivity(db, now), notify.Config{
		BaseURL: mc.baseURL, From: mc.from, Now: now, Logger: log,
	}), nil
}

// newReclaimService builds the reclaim service on db. Without an SMTP URL
// it gets no mailer: policies are kept and previewed, runs wait.
func newReclaimService(db *store.DB, acc *access.Service, mc mailConfig, now func() time.Time, log *slog.Logger) (*reclaim.Service, error) {
	var mailer reclaim.Mailer // a literal nil unless configured
	if mc.smtp != "" {
		m, err := mail.Open(mc.smtp)
		if err != nil {
			return nil, usageErrorf("--smtp: %v", err)
		}
		mailer = m
	}
	return reclaim.New(db.Reclaim(), acc, mailer, reclaim.Config{BaseURL: mc.baseURL, From: mc.from, Now: now, Logger: log}), nil
}

// superviseScheduler runs the scheduler until ctx ends. A panic in a pass
// is logged and the scheduler restarts after one interval, so a bug in one
// email cannot silently stop every later one while the server keeps serving.
func superviseScheduler(ctx context.Context, n scheduler.Notifier, interval time.Duration, log *slog.Logger) {
	for {
		crashed := func() (crashed bool) {
			defer func() {
				if v := recover(); v != nil {
					log.Error("scheduler crashed; restarting it", "panic", fmt.Sprint(v), "stack", string(debug.Stack()), "after", interval.String())
					crashed = true
				}
			}()
			scheduler.Run(ctx, n, interval, scheduler.Owner(), log)
			return false
		}()
		if !crashed {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// adminFlags are the flags that choose whom a command acts as.
type adminFlags struct {
	email   string
	account int64
	dsn     *string
}

func (f *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.email, "admin", "", "act as this primary admin")
	fs.Int64Var(&f.account, "account", 0, "the admin's account")
	f.dsn = dbFlag(fs)
}

// open checks the flags, opens the database and finds the actor.
func (f *adminFlags) open(ctx context.Context, cmd string) (*store.DB, *access.Service, func() time.Time, usher.Actor, error) {
	if f.email == "" {
		return nil, nil, nil, usher.Actor{}, usageErrorf("%s: --admin is required (see usher %s --help)", cmd, cmd)
	}
	if f.account < 0 {
		return nil, nil, nil, usher.Actor{}, usageErrorf("%s: --account %d: want a positive account id", cmd, f.account)
	}
	now, err := clockFromEnv(nil)
	if err != nil {
		return nil, nil, nil, usher.Actor{}, err
	}
	db, err := openDB(ctx, *f.dsn)
	if err != nil {
		return nil, nil, nil, usher.Actor{}, err
	}
	svc := access.New(db.Access(), now)
	a, err := actorByEmail(ctx, svc, f.email, f.account)
	if err != nil {
		db.Close()
		return nil, nil, nil, usher.Actor{}, err
	}
	return db, svc, now, a, nil
}

// actorByEmail finds the user with this email, in accountID or, when it is
// 0, in whichever single account has one, and returns them as an actor with
// the roles they hold now. Whether they may do anything is the domain's call.
func actorByEmail(ctx context.Context, svc *access.Service, email string, accountID int64) (usher.Actor, error) {
	email = usher.NormalizeEmail(email)
	var accounts []usher.Account
	if accountID != 0 {
		accounts = []usher.Account{{ID: accountID}}
	} else {
		all, err := svc.ListAccounts(ctx)
		if err != nil {
			return usher.Actor{}, fmt.Errorf("find %s: %w", email, err)
		}
		accounts = all
	}
	type match struct{ accountID, userID int64 }
	var found []match
	for _, acct := range accounts {
		page, err := svc.ListUsers(ctx, usher.System(acct.ID), email, "", access.MaxLimit)
		if err != nil {
			return usher.Actor{}, fmt.Errorf("find %s in account %d: %w", email, acct.ID, err)
		}
		for _, u := range page.Items {
			if u.Email == email {
				found = append(found, match{acct.ID, u.ID})
			}
		}
	}
	switch len(found) {
	case 0:
		if accountID != 0 {
			return usher.Actor{}, usher.Errorf(usher.ENOTFOUND, "no user %s in account %d", email, accountID)
		}
		return usher.Actor{}, usher.Errorf(usher.ENOTFOUND, "no user %s in any account", email)
	case 1:
		return svc.ActorFor(ctx, found[0].accountID, found[0].userID)
	}
	ids := make([]string, len(found))
	for i, m := range found {
		ids[i] = fmt.Sprint(m.accountID)
	}
	return usher.Actor{}, usageErrorf("%s is a user in accounts %s: choose one with --account", email, strings.Join(ids, ", "))
}

func runNotificationsShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	fs := newFlagSet("notifications show")
	af.register(fs)
	runs := fs.Int("runs", 5, "recent emails to list")
	if err := parse(fs, notificationsShowHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	if *runs < 0 || *runs > access.MaxLimit {
		return usageErrorf("notifications show: --runs %d: want 0 to %d", *runs, access.MaxLimit)
	}
	db, svc, now, a, err := af.open(ctx, "notifications show")
	if err != nil {
		return err
	}
	defer db.Close()
	ns, err := newNotifyService(db, mailConfig{}, now, nil)
	if err != nil {
		return err
	}
	acct, err := svc.Account(ctx, a)
	if err != nil {
		return err
	}
	st, err := ns.Setting(ctx, a)
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		fmt.Fprintf(stdout, "Usage notifications are not set up for %s (account %d %q).\nTurn them on with: usher notifications set --admin %s --start-date %s --frequency monthly --range 3m\n",
			a.Email, acct.ID, acct.Name, a.Email, usher.DateOf(now().In(acct.Location())))
		return nil
	} else if err != nil {
		return err
	}
	printSetting(stdout, a, acct, st)
	if *runs == 0 {
		return nil
	}
	page, err := ns.Runs(ctx, a, "", *runs)
	if err != nil {
		return err
	}
	printRuns(stdout, acct, page.Items)
	return nil
}

func runNotificationsSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	var start, frequency, rng string
	var hour int
	fs := newFlagSet("notifications set")
	af.register(fs)
	fs.StringVar(&start, "start-date", "", "first day, YYYY-MM-DD")
	fs.StringVar(&frequency, "frequency", "", "weekly, biweekly, monthly or quarterly")
	fs.StringVar(&rng, "range", "", "30d, 3m, 6m, 9m or 1y")
	fs.IntVar(&hour, "send-hour", notify.DefaultSendHour, "local hour, 0-23")
	if err := parse(fs, notificationsSetHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	db, svc, now, a, err := af.open(ctx, "notifications set")
	if err != nil {
		return err
	}
	defer db.Close()
	ns, err := newNotifyService(db, mailConfig{}, now, nil)
	if err != nil {
		return err
	}
	in := notify.Input{Frequency: notify.Frequency(frequency), Range: usage.Range(rng)}
	if given["send-hour"] {
		in.SendHour = &hour
	}
	// An edit keeps what the flags do not change. Reading the setting first
	// also answers "forbidden" before a date error for someone who may not
	// set notifications up at all.
	prev, err := ns.Setting(ctx, a)
	switch {
	case err == nil:
		in.StartDate, in.Frequency, in.Range = prev.StartDate, prev.Frequency, prev.Range
		if given["frequency"] {
			in.Frequency = notify.Frequency(frequency)
		}
		if given["range"] {
			in.Range = usage.Range(rng)
		}
	case usher.ErrorCode(err) != usher.ENOTFOUND:
		return err
	}
	var dates usher.Problems
	if given["start-date"] {
		in.StartDate = usher.Date{}
		if d, err := usher.ParseDate(start); err != nil {
			dates.Addf("start_date", "%q is not a date in the form YYYY-MM-DD", start)
		} else {
			in.StartDate = d
		}
	}
	st, turnedOn, err := ns.Set(ctx, a, in)
	if err != nil {
		return withReasons(err, dates)
	}
	acct, err := svc.Account(ctx, a)
	if err != nil {
		return err
	}
	if turnedOn {
		fmt.Fprintln(stdout, "Usage notifications have been turned on.")
	} else {
		fmt.Fprintln(stdout, "Your changes have been saved.")
	}
	printSetting(stdout, a, acct, st)
	return nil
}

// withReasons puts the edge's reason for a field in place of the domain's,
// as the API does for a malformed date, keeping every other problem.
func withReasons(err error, edge usher.Problems) error {
	if len(edge) == 0 || usher.ErrorCode(err) != usher.EINVALID {
		return err
	}
	var out usher.Problems
	for _, f := range usher.ErrorFields(err) {
		for _, e := range edge {
			if e.Field == f.Field {
				f.Reason = e.Reason
			}
		}
		out = append(out, f)
	}
	return out.Err()
}

func runNotificationsOff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	fs := newFlagSet("notifications off")
	af.register(fs)
	if err := parse(fs, notificationsOffHelp, args, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	db, _, now, a, err := af.open(ctx, "notifications off")
	if err != nil {
		return err
	}
	defer db.Close()
	ns, err := newNotifyService(db, mailConfig{}, now, nil)
	if err != nil {
		return err
	}
	if _, err := ns.TurnOff(ctx, a); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Usage notifications have been turned off for %s. Turn them on again with: usher notifications set --admin %s\n", a.Email, a.Email)
	return nil
}

func runNotificationsRunDue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	db, mc, now, log, err := runDueSetup(ctx, "notifications run-due", notificationsRunDueHelp, args, stdout, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	ns, err := newNotifyService(db, mc, now, log)
	if err != nil {
		return err
	}
	res, err := scheduler.RunOnce(ctx, ns, scheduler.Owner())
	if err != nil {
		return fmt.Errorf("run due notifications (planned %d, delivered %d): %w", res.Planned, res.Delivered, err)
	}
	fmt.Fprintf(stdout, "Planned %d %s; delivered %d.\n", res.Planned, plural(res.Planned, "email", "emails"), res.Delivered)
	if !ns.CanDeliver() {
		fmt.Fprintln(stdout, "No SMTP server configured (--smtp or USHER_SMTP_URL): emails wait, unsent, until one is.")
	}
	return nil
}

// printSetting writes a setting for people, times in the account's zone.
func printSetting(w io.Writer, a usher.Actor, acct usher.Account, st notify.Setting) {
	loc := acct.Location()
	state := "on"
	if !st.Enabled {
		state = "off"
	}
	fmt.Fprintf(w, "Usage notifications for %s (account %d %q, time zone %s): %s\n", a.Email, acct.ID, acct.Name, acct.TimeZone, state)
	fmt.Fprintf(w, "  start date:      %s\n", st.StartDate)
	fmt.Fprintf(w, "  frequency:       %s (%s)\n", st.Frequency, st.Frequency.Label())
	fmt.Fprintf(w, "  inactive range:  %s (%s)\n", st.Range, st.Range.Label())
	fmt.Fprintf(w, "  send hour:       %02d:00\n", st.SendHour)
	if st.Enabled {
		next := st.NextAt.In(loc)
		fmt.Fprintf(w, "  next email:      %s at %s %s (%s)\n", next.Format("Monday 2 January 2006"), next.Format("15:04"), acct.TimeZone, st.NextAt.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(w, "  next email:      none while off")
	}
}

// printRuns lists recent emails, newest first.
func printRuns(w io.Writer, acct usher.Account, runs []notify.Run) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "No emails yet.")
		return
	}
	fmt.Fprintln(w, "Recent emails:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SCHEDULED FOR\tRANGE\tSTATUS\tATTEMPTS\tINACTIVE USERS\tSEATS\tDETAIL")
	for _, r := range runs {
		detail := r.LastError
		if r.Status == notify.StatusDelivered {
			detail = "delivered " + r.DeliveredAt.In(acct.Location()).Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.ScheduledFor.In(acct.Location()).Format("2006-01-02 15:04"),
			r.Range, r.Status, r.Attempts, r.InactiveUsers, r.InactiveSeats, oneLine(detail))
	}
	tw.Flush()
}

// runDueSetup reads the flags of a "run-due" command (the database, the SMTP
// server, the sender, the public URL), holds them to serve's checks so cron
// and server refuse the same mistakes, and opens the database. The caller
// closes it.
func runDueSetup(ctx context.Context, name, help string, args []string, stdout, stderr io.Writer) (*store.DB, mailConfig, func() time.Time, *slog.Logger, error) {
	var mc mailConfig
	fs := newFlagSet(name)
	dsn := dbFlag(fs)
	fs.StringVar(&mc.smtp, "smtp", "", "SMTP server URL")
	fs.StringVar(&mc.from, "mail-from", "", "sender of the emails")
	fs.StringVar(&mc.baseURL, "base-url", "", "public URL of the server")
	err := parse(fs, help, args, stdout, map[string]string{
		"db": "USHER_DB", "smtp": "USHER_SMTP_URL", "mail-from": "USHER_MAIL_FROM", "base-url": "USHER_BASE_URL",
	})
	if err != nil {
		return nil, mc, nil, nil, err
	}
	check := serveConfig{smtp: mc.smtp, mailFrom: mc.from, baseURL: mc.baseURL, logLevel: "warn", logFormat: "text", interval: scheduler.DefaultInterval}
	log, err := check.check(stderr)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return nil, mc, nil, nil, usageErrorf("%s: %s", name, strings.TrimPrefix(ue.msg, "serve: "))
		}
		return nil, mc, nil, nil, err
	}
	if mc.baseURL == "" {
		mc.baseURL = serverURL()
	}
	now, err := clockFromEnv(log)
	if err != nil {
		return nil, mc, nil, nil, err
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return nil, mc, nil, nil, err
	}
	return db, mc, now, log, nil
}
