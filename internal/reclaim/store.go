package reclaim

import (
	"context"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Store runs functions in transactions, like access.Store.
type Store interface {
	Read(ctx context.Context, fn func(Tx) error) error
	Write(ctx context.Context, fn func(Tx) error) error
}

// Seat is a seat a policy may act on, with what the plan needs to know.
type Seat struct {
	UserID         int64
	Email          string
	Name           string
	ReclaimExempt  bool
	SubscriptionID int64
	ContractNumber string
	Product        string
	ProductName    string
	Plan           usher.Plan
	Price          *usher.Price
	AssignedAt     time.Time
	LastUsedAt     time.Time // zero before the first use since assignment
}

// SeatQuery selects the seats of SubscriptionIDs whose last use falls
// before UsedBefore and assignment before AssignedBefore (the loosest
// cutoffs of a policy's rules), of the listed users when UserIDs is not nil.
type SeatQuery struct {
	AccountID       int64
	SubscriptionIDs []int64
	UsedBefore      time.Time
	AssignedBefore  time.Time
	UserIDs         []int64
}

// Tx is what the reclaim service needs from storage inside one transaction.
// It includes access.Tx, so reclaims go through the access service's rules
// in the run's own transaction.
type Tx interface {
	access.Tx
	// InsertSnapshot records a run's evidence with its outcome.
	usage.SnapshotTx

	// Savepoint runs fn inside a savepoint: when fn fails, its changes are
	// rolled back, the transaction goes on, and fn's error is failed. err
	// is a failure of the transaction itself, which must then end.
	Savepoint(ctx context.Context, fn func() error) (failed, err error)

	InsertPolicy(ctx context.Context, p *Policy) error
	// UpdatePolicy replaces every field of the stored policy but CreatedAt.
	UpdatePolicy(ctx context.Context, p Policy) error
	DeletePolicy(ctx context.Context, accountID, id int64) error
	PolicyByID(ctx context.Context, accountID, id int64) (Policy, error)
	ListPolicies(ctx context.Context, accountID int64) ([]Policy, error)
	// DuePolicies returns at most limit enabled policies with NextRunAt <= now, of any account.
	DuePolicies(ctx context.Context, now time.Time, limit int) ([]Policy, error)
	// AdvancePolicy sets NextRunAt of an enabled policy whose NextRunAt is
	// still from, and reports whether it did.
	AdvancePolicy(ctx context.Context, p Policy, from time.Time) (bool, error)

	// InsertReclaimRun stores r unless the policy has a run for r.RunOn; then it
	// changes nothing and reports false.
	InsertReclaimRun(ctx context.Context, r *Run) (bool, error)
	// ClaimReclaimRun leases one claimable run of any account to owner
	// (status pending or running, NextAttemptAt <= now, LeaseUntil < now).
	ClaimReclaimRun(ctx context.Context, now time.Time, owner string, until time.Time) (Run, bool, error)
	// FinishReclaimRun records r's outcome while r is leased to owner;
	// usher.ECONFLICT otherwise.
	FinishReclaimRun(ctx context.Context, r Run, owner string) error
	// RunsOfPolicy returns the policy's latest runs, newest first.
	RunsOfPolicy(ctx context.Context, accountID, policyID int64, limit int) ([]Run, error)

	// InactiveSeats returns the seats q selects, by user email and subscription.
	InactiveSeats(ctx context.Context, q SeatQuery) ([]Seat, error)
	// PolicyWarnings returns the policy's open warnings and the kept ones
	// whose KeptUntil is after now, of the listed users when userIDs is not nil.
	PolicyWarnings(ctx context.Context, accountID, policyID int64, userIDs []int64, now time.Time) ([]Warning, error)
	// InsertWarning stores w unless the seat has an open warning of the
	// policy; then it reports false.
	InsertWarning(ctx context.Context, w *Warning) (bool, error)
	// ResolveWarning sets the outcome of an open warning and reports
	// whether it was still open.
	ResolveWarning(ctx context.Context, w Warning) (bool, error)
	// ResolveWarnings is ResolveWarning for the warnings ids, with w's
	// outcome, times and run; it answers how many were still open.
	ResolveWarnings(ctx context.Context, accountID int64, ids []int64, w Warning) (int, error)
	// WarningByTokenHash finds a warning of any account by its link token.
	WarningByTokenHash(ctx context.Context, hash []byte) (Warning, error)
	// ReportKept gives run runID the policy's warnings kept from their link
	// whose reclaim time has come and that no run reported yet.
	ReportKept(ctx context.Context, accountID, policyID, runID int64, now time.Time) error
	// RunWarnings returns the warnings a run created or resolved.
	RunWarnings(ctx context.Context, runID int64) (created, resolved []Warning, err error)
	// RunBatches returns the batches a run made, with their items.
	RunBatches(ctx context.Context, runID int64) ([]usher.ReclaimBatch, error)

	// InsertEmail stores e unless (RunID, Kind, UserID) has one; then it reports false.
	InsertEmail(ctx context.Context, e *Email) (bool, error)
	// ClaimEmail leases one claimable email of any account to owner.
	ClaimEmail(ctx context.Context, now time.Time, owner string, until time.Time) (Email, bool, error)
	// ClaimEmailsAfter leases at most n claimable emails of any account to
	// owner, past after (the zero Position: from the start). One
	// sendEmails claims past the last email it claimed, as notification
	// runs are claimed, so that its claims do not walk again over every
	// email it sent (on PostgreSQL, dead index entries until they are
	// pruned); an email behind the position that becomes claimable again
	// (a lease run out) is taken by the next sendEmails.
	ClaimEmailsAfter(ctx context.Context, now time.Time, owner string, until time.Time, n int, after notify.Position) ([]Email, error)
	// FinishEmail records an attempt's outcome while e is leased to owner;
	// a delivered email's payload is emptied.
	FinishEmail(ctx context.Context, e Email, owner string) error
	// FinishDelivered records the emails ids, leased to owner, as delivered
	// at at, as FinishEmail does, and returns those still leased to owner.
	FinishDelivered(ctx context.Context, owner string, ids []int64, at time.Time) ([]int64, error)
}

// Mailer delivers reclaim messages; Send returns nil only when the SMTP
// server accepted the message.
type Mailer interface {
	SendReclaim(ctx context.Context, m Message) error
}
