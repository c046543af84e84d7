package notify

import (
	"context"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Store runs functions in transactions, like access.Store. A function's
// error rolls its transaction back.
type Store interface {
	Read(ctx context.Context, fn func(Tx) error) error
	Write(ctx context.Context, fn func(Tx) error) error
}

// Tx is what the notify service needs from storage inside one transaction.
// Methods that take an accountID confine themselves to that account and
// answer usher.ENOTFOUND for objects of other accounts. DueSettings and
// ClaimRuns are the exceptions: they serve the scheduler, which works for
// every account.
//
// Times are UTC instants; storage keeps at least millisecond precision and
// compares them as instants. A zero time.Time is stored as a value that
// compares before every real instant (not NULL), so "lease_until < now"
// holds for a run that was never leased.
type Tx interface {
	access.KeyTx // the key that signs cursors
	// InsertSnapshot records an email's evidence with its delivery.
	usage.SnapshotTx

	// The next four have the same meaning (and signatures) as in access.Tx,
	// so one storage transaction can serve both services.
	AccountByID(ctx context.Context, id int64) (usher.Account, error)
	UserByID(ctx context.Context, accountID, id int64) (usher.User, error)
	RolesOf(ctx context.Context, accountID, userID int64) ([]usher.RoleGrant, error)
	InsertAudit(ctx context.Context, e *usher.AuditEntry) error
	// UserWithRoles answers what UserByID and RolesOf answer, in one
	// statement: an email's recipient is read so for every email planned
	// and every email sent.
	UserWithRoles(ctx context.Context, accountID, userID int64) (usher.User, []usher.RoleGrant, error)

	// Addressees answers, in one statement, the setting of each (account,
	// user) of keys that has one, with its account, its user and the user's
	// grants, as SettingOf, AccountByID and UserWithRoles would: a claim
	// reads them so for all its runs. Keys without a setting are absent
	// from the answer.
	Addressees(ctx context.Context, keys []UserKey) (map[UserKey]Addressee, error)
	// SettingOf returns the user's setting, on or off; usher.ENOTFOUND when
	// the user never set one up.
	SettingOf(ctx context.Context, accountID, userID int64) (Setting, error)
	// PutSetting inserts or replaces the setting of (s.AccountID, s.UserID).
	PutSetting(ctx context.Context, s Setting) error
	// DueSettings returns at most limit enabled settings with NextAt <= now,
	// of any account, ordered by (NextAt, AccountID, UserID).
	DueSettings(ctx context.Context, now time.Time, limit int) ([]Setting, error)
	// AdvanceSetting moves a due setting on: it sets NextAt, LastRunFor and
	// UpdatedAt from s, but only if the stored setting is still enabled and
	// its NextAt still equals from. It reports whether it changed the row;
	// false means another scheduler planned it first or the admin changed it.
	AdvanceSetting(ctx context.Context, s Setting, from time.Time) (bool, error)

	// InsertRun stores r and sets r.ID, unless a run for (r.AccountID,
	// r.UserID, r.ScheduledFor) exists; then it changes nothing and reports
	// false. It must not fail in that case, nor abort the transaction.
	InsertRun(ctx context.Context, r *Run) (bool, error)
	// ClaimRuns leases at most limit claimable runs of any account to owner
	// until until, in one atomic statement, and returns them as updated. A
	// run is claimable when its status is pending or sending, NextAttemptAt
	// <= now and LeaseUntil < now (a sending run whose lease has expired
	// belongs to a worker that died). Claiming sets status sending,
	// LeaseOwner owner, LeaseUntil until, Attempts+1 and UpdatedAt now. Runs
	// are taken in (NextAttemptAt, ID) order. No run may be returned to two
	// concurrent callers.
	ClaimRuns(ctx context.Context, now time.Time, owner string, until time.Time, limit int) ([]Run, error)
	// ClaimRunsAfter is ClaimRuns confined to runs past after in
	// (NextAttemptAt, ID) order; a zero after confines nothing.
	ClaimRunsAfter(ctx context.Context, now time.Time, owner string, until time.Time, limit int, after Position) ([]Run, error)
	// FinishRun records the outcome of an attempt: it writes r's Status,
	// Attempts, NextAttemptAt, InactiveUsers, InactiveSeats, LastError,
	// LeaseOwner, LeaseUntil, DeliveredAt and UpdatedAt, but only while the
	// run is still sending and leased to owner. Otherwise (the lease expired
	// and another worker took the run) it changes nothing and answers
	// usher.ECONFLICT.
	FinishRun(ctx context.Context, r Run, owner string) error
	// Backlog counts the work waiting at now, of every account, for
	// metrics.
	Backlog(ctx context.Context, now time.Time) (Backlog, error)
	// RunsOf returns at most limit runs of the user, newest first (by ID
	// descending), with ID < beforeID when beforeID > 0.
	RunsOf(ctx context.Context, accountID, userID, beforeID int64, limit int) ([]Run, error)
}

// Position is a place in the order work is claimed in, (NextAttemptAt, ID):
// one send loop claims past the last row it claimed, so that its claims do
// not walk again over every row it already sent. Rows behind it that
// become claimable again (a lease run out, a run handed back) are taken by
// the next loop, which starts from the beginning.
type Position struct {
	At time.Time
	ID int64
}

// IsZero reports whether p is the start: past it is everything.
func (p Position) IsZero() bool { return p.ID == 0 && p.At.IsZero() }

// Past answers the later of p and (at, id).
func (p Position) Past(at time.Time, id int64) Position {
	if q := (Position{at, id}); p.IsZero() || at.After(p.At) || at.Equal(p.At) && id > p.ID {
		return q
	}
	return p
}

// UserKey names a user of an account.
type UserKey struct{ AccountID, UserID int64 }

// Addressee is a setting with the account and user it belongs to and the
// user's grants.
type Addressee struct {
	Setting Setting
	Account usher.Account
	User    usher.User
	Grants  []usher.RoleGrant
}
