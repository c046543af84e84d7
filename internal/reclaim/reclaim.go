// Package reclaim holds reclaim policies: which inactive seats to give back,
// after warning whom and how long; previews of what a policy would do; the
// daily runs that warn, wait and reclaim; and the "Keep my seat" links. No
// SQL, no SMTP: storage is behind Tx and delivery behind Mailer.
//
// A preview and a run share one code path (Service.plan): a run is a plan
// carried out, many people to a transaction that checks the plan again
// against their seats as they are then, each person all or nothing. Runs and their emails
// are claimed in the database like usage notification runs (package notify):
// one run per policy and local day, leased by one worker at a time, and one
// email per person, kind and run, retried with notify.Backoff and a fixed
// Message-ID.
package reclaim

import (
	"time"

	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Mode says what a policy does with the inactive seats it finds.
type Mode string

const (
	// WarnThenReclaim warns each person, waits GraceDays, then reclaims the
	// seats still inactive and not kept.
	WarnThenReclaim Mode = "warn_then_reclaim"
	// ReclaimNow reclaims at once, telling the person afterwards.
	ReclaimNow Mode = "reclaim"
	// ReportOnly changes nothing; runs and previews list what it would do.
	ReportOnly Mode = "report_only"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == WarnThenReclaim || m == ReclaimNow || m == ReportOnly }

// ScopeKind says what a policy's scope lists.
type ScopeKind string

const (
	ScopeSubscriptions ScopeKind = "subscriptions"
	ScopeProducts      ScopeKind = "products"
)

// Scope is the seats a policy looks at: those of the listed subscriptions,
// or of every subscription of the listed products. Only Standard and
// Premium subscriptions count; Basic ones carry no usage data.
type Scope struct {
	Kind            ScopeKind `json:"kind"`
	SubscriptionIDs []int64   `json:"subscription_ids,omitempty"`
	Products        []string  `json:"products,omitempty"`
}

// Rule says whether a policy acts on one kind of inactive seat, and over
// which range; an empty Range is the policy's.
type Rule struct {
	Enabled bool        `json:"enabled"`
	Range   usage.Range `json:"range,omitempty"`
}

// Exemptions are people a policy never touches, besides users whose
// ReclaimExempt flag is set: listed users, members of listed groups (as the
// groups are when the policy runs), and holders of listed roles
// (account-wide roles, or per-subscription roles on the seat's subscription).
type Exemptions struct {
	Users  []int64      `json:"users"`
	Groups []int64      `json:"groups"`
	Roles  []usher.Role `json:"roles"`
}

// Policy is one reclaim policy of an account.
type Policy struct {
	ID           int64       `json:"id"`
	AccountID    int64       `json:"-"`
	Name         string      `json:"name"`
	Enabled      bool        `json:"enabled"`
	Scope        Scope       `json:"scope"`
	Range        usage.Range `json:"range"`
	NeverUsed    Rule        `json:"never_used"`
	StoppedUsing Rule        `json:"stopped_using"`
	Mode         Mode        `json:"mode"`
	GraceDays    int         `json:"grace_days"`
	Exemptions   Exemptions  `json:"exemptions"`
	// NextRunAt is when the next daily run is planned; zero when disabled.
	NextRunAt time.Time `json:"next_run_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Input is what an admin submits to create or replace a policy.
type Input struct {
	Name         string      `json:"name"`
	Enabled      *bool       `json:"enabled"` // default true
	Scope        Scope       `json:"scope"`
	Range        string      `json:"range"`
	NeverUsed    *Rule       `json:"never_used"`    // default enabled, the policy's range
	StoppedUsing *Rule       `json:"stopped_using"` // default enabled, the policy's range
	Mode         Mode        `json:"mode"`
	GraceDays    *int        `json:"grace_days"` // default 14
	Exemptions   *Exemptions `json:"exemptions"`
}

// DefaultGraceDays is a policy's grace period unless set.
const DefaultGraceDays = 14

// RunHour is the local hour of the account at which policies run each day.
const RunHour = 6

// Action is what a plan does with one seat.
type Action string

const (
	ActWarn    Action = "warn"    // warn the person; reclaim after the grace period
	ActReclaim Action = "reclaim" // free the seat now
	ActReport  Action = "report"  // report_only: would be warned or reclaimed
	ActWait    Action = "wait"    // warned; the grace period is not over
	ActKeep    Action = "keep"    // warned, and used the product since or kept the seat: the warning closes
)

// Item is one seat in a plan.
type Item struct {
	UserID         int64            `json:"user_id"`
	Email          string           `json:"email"`
	Name           string           `json:"name"`
	SubscriptionID int64            `json:"subscription_id"`
	ContractNumber string           `json:"contract_number"`
	Product        string           `json:"product"`
	ProductName    string           `json:"product_name"`
	Inactivity     usage.Inactivity `json:"inactivity,omitempty"`
	AssignedAt     time.Time        `json:"assigned_at"`
	// LastUsedAt is the seat's last use since assignment; zero if never.
	LastUsedAt time.Time    `json:"last_used_at,omitzero"`
	Action     Action       `json:"action"`
	Reason     string       `json:"reason,omitempty"`
	ReclaimAt  time.Time    `json:"reclaim_at,omitzero"` // warn, wait: when the seat goes
	WarningID  int64        `json:"warning_id,omitempty"`
	Price      *usher.Price `json:"price"`
}

// Skip is a seat the policy would act on but leaves alone, and why.
type Skip struct {
	UserID         int64  `json:"user_id"`
	Email          string `json:"email"`
	SubscriptionID int64  `json:"subscription_id"`
	Reason         string `json:"reason"`
}

// Plan is what a policy does if it runs at At: the preview, and the
// instructions of a run.
type Plan struct {
	PolicyID int64        `json:"policy_id"`
	Mode     Mode         `json:"mode"`
	At       time.Time    `json:"at"`
	Items    []Item       `json:"items"`
	Skipped  []Skip       `json:"skipped"`
	Warn     int          `json:"warn"`
	Reclaim  int          `json:"reclaim"`
	Report   int          `json:"report"`
	Waiting  int          `json:"waiting"`
	Kept     int          `json:"kept"`
	Savings  []usher.Cost `json:"savings"` // yearly price of the seats reclaimed
}

// RunStatus is where a run is in its life.
type RunStatus string

const (
	RunPending RunStatus = "pending"
	RunRunning RunStatus = "running"
	RunDone    RunStatus = "done"
	RunFailed  RunStatus = "failed"
)

// Run is one daily run of a policy: unique per (policy, local day).
type Run struct {
	ID            int64     `json:"id"`
	AccountID     int64     `json:"-"`
	PolicyID      int64     `json:"policy_id"`
	RunOn         string    `json:"run_on"` // YYYY-MM-DD in the account's time zone
	Status        RunStatus `json:"status"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LeaseOwner    string    `json:"-"`
	LeaseUntil    time.Time `json:"-"`
	Warned        int       `json:"warned"`
	Reclaimed     int       `json:"reclaimed"`
	Kept          int       `json:"kept"`
	LastError     string    `json:"last_error,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// SnapshotID names the run's evidence: the seats its plan was about
	// (GET /api/v1/reports/usage?snapshot=…); empty before it ran.
	SnapshotID string `json:"snapshot_id,omitempty"`
	// Evidence is the snapshot of the attempt's plan, recorded with the
	// run's outcome.
	Evidence *usage.Snapshot `json:"-"`
}

// Warning outcomes.
const (
	OutcomeOpen      = "open"
	OutcomeKept      = "kept"
	OutcomeUsed      = "used"
	OutcomeReclaimed = "reclaimed"
)

// Warning says that one seat will be reclaimed at ReclaimAt unless it is
// kept or used before.
type Warning struct {
	ID             int64            `json:"id"`
	AccountID      int64            `json:"-"`
	PolicyID       int64            `json:"policy_id"`
	RunID          int64            `json:"run_id"`
	UserID         int64            `json:"user_id"`
	SubscriptionID int64            `json:"subscription_id"`
	Inactivity     usage.Inactivity `json:"inactivity"`
	LastUsedAt     time.Time        `json:"last_used_at,omitzero"`
	WarnedAt       time.Time        `json:"warned_at"`
	ReclaimAt      time.Time        `json:"reclaim_at"`
	TokenHash      []byte           `json:"-"`
	Outcome        string           `json:"outcome"`
	ResolvedAt     time.Time        `json:"resolved_at,omitzero"`
	ResolvedRunID  int64            `json:"resolved_run_id,omitempty"`
	KeptUntil      time.Time        `json:"kept_until,omitzero"`
}

// EmailKind names the emails of a run.
type EmailKind string

const (
	EmailWarning EmailKind = "warning" // to a person: your seats will be reclaimed
	EmailNotice  EmailKind = "notice"  // to a person: your seats were reclaimed
	EmailDigest  EmailKind = "digest"  // to an admin: what a run did
)

// Email is one email of a run, kept until delivered: the exactly-once unit,
// unique per (RunID, Kind, UserID).
type Email struct {
	ID            int64     `json:"id"`
	AccountID     int64     `json:"-"`
	RunID         int64     `json:"run_id"`
	Kind          EmailKind `json:"kind"`
	UserID        int64     `json:"user_id"`
	MessageID     string    `json:"message_id"`
	Payload       Message   `json:"-"`
	Status        string    `json:"status"` // pending, sending, delivered, failed
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LeaseOwner    string    `json:"-"`
	LeaseUntil    time.Time `json:"-"`
	LastError     string    `json:"last_error,omitempty"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
	CreatedAt     time.Time `json:"created_at"`
}

// Message is a reclaim email, ready to render: a warning or notice to the
// person whose seats it lists, or a digest to an admin.
type Message struct {
	Kind      EmailKind     `json:"kind"`
	MessageID string        `json:"message_id"`
	From      string        `json:"from"`
	To        usher.User    `json:"to"`
	Account   usher.Account `json:"account"`
	Date      time.Time     `json:"date"`
	Policy    string        `json:"policy"`
	Range     usage.Range   `json:"range"`
	// Seats are the warned or reclaimed seats (warning, notice), each with
	// its Keep my seat link in a warning.
	Seats []MessageSeat `json:"seats"`
	// Digest: what the run did.
	Reclaimed []MessageSeat `json:"reclaimed,omitempty"`
	Warned    []MessageSeat `json:"warned,omitempty"`
	Kept      []MessageSeat `json:"kept,omitempty"`
	Saved     []usher.Cost  `json:"saved,omitempty"`
	// HistoryURL opens the console's Reclaim history (digest).
	HistoryURL string `json:"history_url,omitempty"`
}

// MessageSeat is one seat in a message.
type MessageSeat struct {
	Email          string     `json:"email,omitempty"` // the holder, in digests
	Name           string     `json:"name,omitempty"`
	ProductName    string     `json:"product_name"`
	ContractNumber string     `json:"contract_number"`
	LastUsed       *time.Time `json:"last_used,omitempty"` // nil: never since assigned
	ReclaimAt      time.Time  `json:"reclaim_at,omitzero"`
	KeepURL        string     `json:"keep_url,omitempty"`
	Reason         string     `json:"reason,omitempty"` // kept: why
}
