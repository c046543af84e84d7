// Package notify holds usage notifications: each primary admin's schedule,
// the runs that deliver one email per scheduled occurrence, and the rules
// that make each occurrence go out once. No SQL, no SMTP: storage is behind
// Tx and delivery behind Mailer.
//
// Exactly once works in two layers. A run row is unique per (account, user,
// scheduled time) and is created in the same transaction that moves the
// setting to its next occurrence, so an occurrence gets at most one run no
// matter how many schedulers plan it. A worker leases a run in the database
// before sending and records the outcome under that lease, so one run is
// sent by one worker at a time. If a worker dies between handing the email
// to the SMTP server and recording that it did, nobody can know whether the
// email went out; the lease expires and the run is sent again with the same
// Message-ID. Delivery is therefore exactly once per occurrence at the run
// level and at least once at the SMTP level, with a stable Message-ID that
// lets mail systems and people recognise a duplicate.
package notify

import (
	"context"
	"time"

	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// DefaultSendHour is the local hour emails go out at unless the admin picks another.
const DefaultSendHour = 8

// Setting is one primary admin's usage notification schedule.
type Setting struct {
	AccountID int64       `json:"-"`
	UserID    int64       `json:"user_id"`
	Enabled   bool        `json:"enabled"`
	StartDate usher.Date  `json:"start_date"`
	Frequency Frequency   `json:"frequency"`
	Range     usage.Range `json:"range"`
	SendHour  int         `json:"send_hour"` // local hour in the account's time zone, 0–23
	// NextAt is the UTC instant of the next occurrence to plan; zero when off.
	NextAt time.Time `json:"next_at,omitzero"`
	// LastRunFor is the scheduled time of the latest run planned for this
	// setting; zero if none. It keeps an edit from planning a run for an
	// occurrence that already had one.
	LastRunFor time.Time `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Input is what an admin submits to turn notifications on or edit them.
type Input struct {
	StartDate usher.Date  `json:"start_date"`
	Frequency Frequency   `json:"frequency"`
	Range     usage.Range `json:"range"`
	// SendHour is the local hour; nil keeps the current one (DefaultSendHour
	// for a new setting).
	SendHour *int `json:"send_hour,omitempty"`
}

// Status is where a run is in its life.
type Status string

const (
	StatusPending   Status = "pending"   // waiting for its first or next attempt
	StatusSending   Status = "sending"   // leased by a worker
	StatusDelivered Status = "delivered" // the SMTP server accepted the email
	StatusFailed    Status = "failed"    // given up; LastError says why
)

// Run is one scheduled email to one admin: the exactly-once unit. It is
// unique per (AccountID, UserID, ScheduledFor).
type Run struct {
	ID           int64       `json:"id"`
	AccountID    int64       `json:"-"`
	UserID       int64       `json:"user_id"`
	ScheduledFor time.Time   `json:"scheduled_for"`
	Range        usage.Range `json:"range"`
	Status       Status      `json:"status"`
	Attempts     int         `json:"attempts"`
	// NextAttemptAt is when a pending run may be claimed.
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// MessageID is the email's Message-ID header, angle brackets included,
	// fixed when the run is created so every attempt sends the same one.
	MessageID     string    `json:"message_id"`
	InactiveUsers int       `json:"inactive_users"`
	InactiveSeats int       `json:"inactive_seats"`
	LastError     string    `json:"last_error,omitempty"`
	LeaseOwner    string    `json:"-"`
	LeaseUntil    time.Time `json:"-"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Evidence is the snapshot of the seats an attempt's email counts,
	// recorded with its delivery; nil when the counts come without seats.
	Evidence *usage.Snapshot `json:"-"`
}

// Message is one usage notification email, ready to render and send.
type Message struct {
	MessageID string // with angle brackets
	From      string // an address, optionally with a display name
	To        usher.User
	Account   usher.Account
	Date      time.Time // when the email is composed
	// ScheduledFor is the occurrence the email is for.
	ScheduledFor time.Time
	Summary      usage.InactiveSummary
	// ReportURL opens the Usage Report filtered to the inactive users of the
	// range. It is empty when nobody is inactive: such an email carries no
	// button and no link to the filtered report.
	ReportURL string
	// SettingsURL is where the admin changes or turns off notifications.
	SettingsURL string
}

// Mailer delivers messages. Send returns nil only when the SMTP server
// accepted the message.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Inactivity counts inactive users and seats; usage.Service implements it.
type Inactivity interface {
	InactiveSummary(ctx context.Context, accountID int64, r usage.Range, firstUsers int) (usage.InactiveSummary, error)
}

// Evidence is an Inactivity that also lists the seats it counts, read
// with the counts, so that each email keeps a snapshot of what it said;
// usage.Service implements it.
type Evidence interface {
	InactiveEvidence(ctx context.Context, accountID int64, r usage.Range, firstUsers int) (usage.InactiveSummary, []usage.SnapshotSeat, error)
}

// TxEvidence is an Evidence that also counts inside a transaction of the
// caller's, when storage's transactions serve the usage domain too (tx is
// then a usage.Tx): the scheduler counts in the transaction that claims the
// run, so an email costs one transaction instead of two. usage.Service
// implements it.
type TxEvidence interface {
	InactiveEvidenceIn(ctx context.Context, tx usage.Tx, accountID int64, r usage.Range, firstUsers int) (usage.InactiveSummary, []usage.SnapshotSeat, error)
}

// Backlog is the scheduler's waiting work at one instant.
type Backlog struct {
	DueRuns     int       // pending runs whose time has come, and sending runs whose lease expired
	RetryRuns   int       // pending runs waiting out a retry backoff
	SendingRuns int       // runs leased to a live worker
	DueSettings int       // occurrences due but not yet planned into runs
	OldestDue   time.Time // the earliest due run or occurrence; zero when none
}

// Lag is how far behind the scheduler is at now: the age of the oldest due
// work, zero when nothing is due.
func (b Backlog) Lag(now time.Time) time.Duration {
	if b.OldestDue.IsZero() || b.OldestDue.After(now) {
		return 0
	}
	return now.Sub(b.OldestDue)
}
