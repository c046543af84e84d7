package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Config tunes the notify service. Zero values take the defaults.
type Config struct {
	// BaseURL is where Usher is reached from a browser, e.g.
	// https://usher.example.com; email links start with it.
	BaseURL string
	// From is the emails' sender, e.g. "Usher <usher@example.com>".
	From   string
	Now    func() time.Time
	Logger *slog.Logger

	Lease       time.Duration // how long a claimed run is a worker's; default 5 minutes
	SendTimeout time.Duration // the longest one SMTP delivery may take; default 1 minute
	MaxAttempts int           // attempts before a run fails for good; default 10
	Workers     int           // emails sent at once by one SendDue; default 4
	FirstUsers  int           // inactive users listed by name in an email; default 10
	// StopGrace is how long a send in progress may still take once SendDue's
	// context ends (the server is stopping); past it the send is cut and its
	// claim released for another worker at once. Default 10 seconds.
	StopGrace time.Duration
}

// Defaults of Config.
const (
	DefaultLease       = 5 * time.Minute
	DefaultSendTimeout = time.Minute
	DefaultMaxAttempts = 10
	DefaultWorkers     = 4
	DefaultFirstUsers  = 10
	DefaultStopGrace   = 10 * time.Second
)

// planBatch is how many due settings one planning transaction handles.
const planBatch = 100

// Paths of the pages email links open, below Config.BaseURL.
const (
	ReportPath   = "/reports/usage"
	SettingsPath = "/usage-notifications"
)

// Service manages notification settings and plans and sends the runs.
type Service struct {
	store      Store
	mailer     Mailer
	inactivity Inactivity
	cfg        Config
	log        *slog.Logger
	msgHost    string
	claims     atomic.Int64 // numbers this process's claims, so each lease is distinct
	stats      Stats
	cursors    *access.Cursors
}

// Stats counts what happened to emails since the service started, for
// metrics. Kind-neutral names let the edge export them under one series
// with a kind label ("notification" here; later warning and digest emails).
type Stats struct {
	Sent     atomic.Int64 // accepted by the SMTP server
	Retried  atomic.Int64 // attempts that failed and will be retried
	Failed   atomic.Int64 // runs that failed for good
	Released atomic.Int64 // sends cut short by a shutdown and handed back at once
}

// Stats returns the service's email counters.
func (s *Service) Stats() *Stats { return &s.stats }

// New returns a notify service. mailer may be nil when no SMTP server is
// configured: settings and runs are still kept and planned, and runs stay
// pending until a service with a mailer sends them. Pass a literal nil, not
// a nil pointer of a Mailer type.
func New(store Store, mailer Mailer, inactivity Inactivity, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.FirstUsers <= 0 {
		cfg.FirstUsers = DefaultFirstUsers
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	host := "usher"
	if u, err := url.Parse(cfg.BaseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return &Service{store: store, mailer: mailer, inactivity: inactivity, cfg: cfg, log: cfg.Logger, msgHost: host,
		cursors: access.NewCursors(store.Read, store.Write)}
}

// CanDeliver reports whether the service has a mailer to send with.
func (s *Service) CanDeliver() bool { return s.mailer != nil }

// now is the service's clock, truncated to milliseconds as stored.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

func forbidden() error {
	return usher.Errorf(usher.EFORBIDDEN, "only primary admins can set up usage notifications")
}

// Backoff is the wait after failed attempt number attempt (1-based) before
// the next: 1 minute, doubling, at most an hour.
func Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 7 { // 2^6 minutes is already past the cap
		return time.Hour
	}
	return min(time.Minute<<(attempt-1), time.Hour)
}

// MessageID is the Message-ID of the run of (accountID, userID) scheduled
// for at: derived from the run's unique key, so it is the same on every
// attempt and distinct between runs.
func (s *Service) MessageID(accountID, userID int64, at time.Time) string {
	return fmt.Sprintf("<run-%d-%d-%d@%s>", accountID, userID, at.Unix(), s.msgHost)
}

// ReportURL is the Usage Report filtered to users inactive over r.
func (s *Service) ReportURL(r usage.Range) string {
	return s.cfg.BaseURL + ReportPath + "?status=inactive&range=" + url.QueryEscape(string(r))
}

// SnapshotURL is the Usage Report as of an email: the seats it counted,
// each marked if it changed since.
func (s *Service) SnapshotURL(id string) string {
	return s.cfg.BaseURL + ReportPath + "?snapshot=" + url.QueryEscape(id)
}

// summarize counts the inactive seats of the run's range for its email
// and, when the counts come with their seats, keeps them as the run's
// evidence.
func (s *Service) summarize(ctx context.Context, r *Run) (usage.InactiveSummary, error) {
	ev, ok := s.inactivity.(Evidence)
	if !ok {
		return s.inactivity.InactiveSummary(ctx, r.AccountID, r.Range, s.cfg.FirstUsers)
	}
	at := s.now()
	sum, seats, err := ev.InactiveEvidence(ctx, r.AccountID, r.Range, s.cfg.FirstUsers)
	if err == nil && sum.InactiveSeats > 0 {
		r.Evidence = usage.NewSnapshot(usage.SnapshotNotification, r.ID, r.AccountID, r.Range, at, seats)
	}
	return sum, err
}

// recordEvidence records a delivered email's snapshot in the transaction
// that records its delivery: a snapshot exists exactly for the emails that
// went out, and says what the one that went out counted.
func recordEvidence(ctx context.Context, tx Tx, r Run) error {
	if r.Status != StatusDelivered || r.Evidence == nil {
		return nil
	}
	return tx.InsertSnapshot(ctx, r.Evidence)
}

// ---- settings ----

// Setting returns the actor's own setting, on or off; usher.ENOTFOUND when
// they never set one up.
func (s *Service) Setting(ctx context.Context, a usher.Actor) (Setting, error) {
	if !access.Can(a, access.ViewNotification, 0) {
		return Setting{}, forbidden()
	}
	var out Setting
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = settingOf(ctx, tx, a)
		return err
	})
	if err != nil {
		return Setting{}, fmt.Errorf("usage notification setting: %w", err)
	}
	return out, nil
}

func settingOf(ctx context.Context, tx Tx, a usher.Actor) (Setting, error) {
	st, err := tx.SettingOf(ctx, a.AccountID, a.UserID)
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		return Setting{}, usher.Errorf(usher.ENOTFOUND, "usage notifications are not set up")
	}
	return st, err
}

// Set turns the actor's notifications on, or edits them if they are on. It
// answers the saved setting, whose NextAt says when the next email goes,
// and whether this call turned notifications on (false: it edited them).
//
// The permission is checked before validation because validation needs the
// account's clock and the current setting, which someone who may not manage
// notifications has no business probing.
func (s *Service) Set(ctx context.Context, a usher.Actor, in Input) (Setting, bool, error) {
	if !access.Can(a, access.ManageNotification, 0) {
		return Setting{}, false, forbidden()
	}
	var out Setting
	var turnedOn bool
	err := s.store.Write(ctx, func(tx Tx) error {
		acct, err := tx.AccountByID(ctx, a.AccountID)
		if err != nil {
			return err
		}
		loc := acct.Location()
		now := s.now()
		prev, err := tx.SettingOf(ctx, a.AccountID, a.UserID)
		exists := err == nil
		if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
			return err
		}
		var p *Setting
		if exists {
			p = &prev
		}
		if err := validate(in, usher.DateOf(now.In(loc)), loc, p); err != nil {
			return err
		}
		next := Setting{
			AccountID: a.AccountID, UserID: a.UserID, Enabled: true,
			StartDate: in.StartDate, Frequency: in.Frequency, Range: in.Range, SendHour: DefaultSendHour,
			CreatedAt: now, UpdatedAt: now,
		}
		if exists {
			next.SendHour, next.CreatedAt, next.LastRunFor = prev.SendHour, prev.CreatedAt, prev.LastRunFor
		}
		if in.SendHour != nil {
			next.SendHour = *in.SendHour
		}
		next.NextAt = FirstDue(next, loc, now)
		if err := tx.PutSetting(ctx, next); err != nil {
			return err
		}
		turnedOn = !exists || !prev.Enabled
		action, before := "notification.edit", any(prev)
		if turnedOn {
			action = "notification.turn_on"
		}
		if !exists {
			before = nil
		}
		out = next
		return s.audit(ctx, tx, a, action, before, next)
	})
	if err != nil {
		return Setting{}, false, fmt.Errorf("set usage notifications: %w", err)
	}
	return out, turnedOn, nil
}

// validate checks an input against today's date in the account's time
// zone. prev is the current setting, nil if none: keeping its start date is
// allowed even once that date has passed.
func validate(in Input, today usher.Date, loc *time.Location, prev *Setting) error {
	var p usher.Problems
	switch {
	case in.StartDate.IsZero():
		p.Add("start_date", "is required, a date such as "+today.String())
	case in.StartDate.Before(today.Time) && (prev == nil || !in.StartDate.Equal(prev.StartDate.Time)):
		p.Addf("start_date", "must be today (%s in %s) or later", today, loc)
	}
	if !in.Frequency.Valid() {
		p.Add("frequency", "must be one of weekly, biweekly, monthly, quarterly")
	}
	if !in.Range.Valid() {
		p.Add("range", "must be one of 30d, 3m, 6m, 9m, 1y")
	}
	if in.SendHour != nil && (*in.SendHour < 0 || *in.SendHour > 23) {
		p.Add("send_hour", "must be a whole hour from 0 to 23, local time of the account")
	}
	return p.Err()
}

// TurnOff stops the actor's notifications: no occurrence after now is
// planned, and runs not sent yet are not sent. Turning off what is off
// changes nothing and succeeds.
func (s *Service) TurnOff(ctx context.Context, a usher.Actor) (Setting, error) {
	if !access.Can(a, access.ManageNotification, 0) {
		return Setting{}, forbidden()
	}
	var out Setting
	err := s.store.Write(ctx, func(tx Tx) error {
		prev, err := settingOf(ctx, tx, a)
		if err != nil {
			return err
		}
		out = prev
		if !prev.Enabled {
			return nil
		}
		out.Enabled, out.NextAt, out.UpdatedAt = false, time.Time{}, s.now()
		if err := tx.PutSetting(ctx, out); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "notification.turn_off", prev, out)
	})
	if err != nil {
		return Setting{}, fmt.Errorf("turn off usage notifications: %w", err)
	}
	return out, nil
}

// Runs lists the actor's runs, newest first.
func (s *Service) Runs(ctx context.Context, a usher.Actor, cursor string, limit int) (access.Page[Run], error) {
	out := access.Page[Run]{Items: []Run{}}
	if !access.Can(a, access.ViewNotification, 0) {
		return out, forbidden()
	}
	var p usher.Problems
	switch {
	case limit == 0:
		limit = access.DefaultLimit
	case limit < 0 || limit > access.MaxLimit:
		p.Addf("limit", "must be between 1 and %d", access.MaxLimit)
	}
	var before int64
	if err := s.cursors.Decode(ctx, &p, access.CursorNotificationRuns, a.AccountID, cursor, &before); err != nil {
		return out, fmt.Errorf("usage notification runs: %w", err)
	}
	if err := p.Err(); err != nil {
		return out, err
	}
	err := s.store.Read(ctx, func(tx Tx) error {
		runs, err := tx.RunsOf(ctx, a.AccountID, a.UserID, before, limit+1)
		if err != nil {
			return err
		}
		if len(runs) > limit {
			runs = runs[:limit]
			if out.NextCursor, err = s.cursors.Encode(ctx, access.CursorNotificationRuns, a.AccountID, runs[limit-1].ID); err != nil {
				return err
			}
		}
		out.Items = append(out.Items, runs...)
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("usage notification runs: %w", err)
	}
	return out, nil
}

func (s *Service) audit(ctx context.Context, tx Tx, a usher.Actor, action string, before, after any) error {
	e := usher.AuditEntry{
		AccountID: a.AccountID, ActorID: a.UserID, ActorEmail: a.Email, Action: action,
		TargetUserID: a.UserID, TargetEmail: a.Email, At: s.now(),
	}
	if err := e.SetChange(before, after); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	if err := tx.InsertAudit(ctx, &e); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// recipient loads who a setting's emails go to and reports whether they may
// still get them: an active user who is still a primary admin.
func recipient(ctx context.Context, tx Tx, accountID, userID int64) (usher.User, bool, error) {
	u, grants, err := tx.UserWithRoles(ctx, accountID, userID)
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		return usher.User{}, false, nil
	} else if err != nil {
		return usher.User{}, false, err
	}
	return u, eligible(accountID, u, grants), nil
}

// eligible reports whether u, with grants, may still get notifications: an
// active user who is still a primary admin.
func eligible(accountID int64, u usher.User, grants []usher.RoleGrant) bool {
	a := usher.Actor{AccountID: accountID, UserID: u.ID, Grants: grants, Scope: usher.ScopeFull}
	return u.Status == usher.UserActive && access.Can(a, access.ManageNotification, 0)
}

// ---- planning ----

// PlanDue creates a run for every enabled setting whose next occurrence is
// due and moves the setting to its first occurrence after now. A setting
// several occurrences behind (the server was down) gets one run, for the
// latest of them. It answers how many runs it created. Several schedulers
// may plan at once: each occurrence still gets one run.
func (s *Service) PlanDue(ctx context.Context) (int, error) {
	now := s.now()
	total := 0
	for {
		var seen, advanced, created int
		err := s.store.Write(ctx, func(tx Tx) error {
			seen, advanced, created = 0, 0, 0
			due, err := tx.DueSettings(ctx, now, planBatch)
			if err != nil {
				return err
			}
			seen = len(due)
			accounts := map[int64]usher.Account{}
			for _, st := range due {
				acct, ok := accounts[st.AccountID]
				if !ok {
					acct, err = tx.AccountByID(ctx, st.AccountID)
					if usher.ErrorCode(err) == usher.ENOTFOUND {
						// Storage should have deleted the setting with its account;
						// with no recipient, plan only moves it on (in UTC).
						acct, err = usher.Account{ID: st.AccountID}, nil
					} else if err != nil {
						return err
					}
					accounts[st.AccountID] = acct
				}
				moved, made, err := s.plan(ctx, tx, st, acct.Location(), now)
				if err != nil {
					return fmt.Errorf("account %d user %d: %w", st.AccountID, st.UserID, err)
				}
				if moved {
					advanced++
				}
				if made {
					created++
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("plan due notifications: %w", err)
		}
		total += created
		// A full batch may mean more are due. Without progress (another
		// scheduler holds them), the next tick looks again rather than spin.
		if seen < planBatch || advanced == 0 {
			return total, nil
		}
	}
}

// plan handles one due setting and reports whether it moved the setting on
// and whether it created a run.
func (s *Service) plan(ctx context.Context, tx Tx, st Setting, loc *time.Location, now time.Time) (advanced, created bool, err error) {
	at := st.NextAt
	if latest, ok := LatestAtOrBefore(st, loc, now); ok && latest.After(at) {
		at = latest // one catch-up for the latest missed occurrence, not one per occurrence
	}
	u, eligible, err := recipient(ctx, tx, st.AccountID, st.UserID)
	if err != nil {
		return false, false, err
	}
	next := st
	next.NextAt, next.UpdatedAt = NextAfter(st, loc, now), now
	if eligible && at.After(next.LastRunFor) {
		next.LastRunFor = at
	}
	// Advance first: if another scheduler or an edit got there first, this
	// transaction must not create a run for an occurrence it no longer owns.
	if advanced, err = tx.AdvanceSetting(ctx, next, st.NextAt); err != nil || !advanced {
		return false, false, err
	}
	log := s.log.With(slog.Int64("account_id", st.AccountID), slog.Int64("user_id", st.UserID), slog.Time("scheduled_for", at))
	if !eligible {
		log.InfoContext(ctx, "usage notification skipped: recipient is no longer an active primary admin", slog.String("email", u.Email))
		return true, false, nil
	}
	r := Run{
		AccountID: st.AccountID, UserID: st.UserID, ScheduledFor: at, Range: st.Range, Status: StatusPending,
		NextAttemptAt: now, MessageID: s.MessageID(st.AccountID, st.UserID, at), CreatedAt: now, UpdatedAt: now,
	}
	if created, err = tx.InsertRun(ctx, &r); err != nil {
		return true, false, err
	}
	if created {
		log.InfoContext(ctx, "usage notification planned", slog.Int64("run_id", r.ID), slog.Time("next_at", next.NextAt))
	}
	return true, created, nil
}

// Backlog counts the runs and occurrences waiting now, for metrics.
func (s *Service) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	now := s.now()
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		b, err = tx.Backlog(ctx, now)
		return err
	})
	if err != nil {
		return b, fmt.Errorf("notification backlog: %w", err)
	}
	return b, nil
}

// Now is the service's clock, as it plans and sends.
func (s *Service) Now() time.Time { return s.now() }
