package usage

import (
	"context"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// Store runs functions in transactions, like access.Store; Peek runs a
// read outside one, each statement on its own.
type Store interface {
	Read(ctx context.Context, fn func(Tx) error) error
	Write(ctx context.Context, fn func(Tx) error) error
	Peek(ctx context.Context, fn func(Tx) error) error
}

// StoredEvent is an event resolved to ids, as kept in storage.
type StoredEvent struct {
	UserID    int64
	ProductID int64
	At        time.Time
	Day       Day
}

// UseDay is one (user, product, day) with use.
type UseDay struct {
	UserID    int64
	ProductID int64
	Day       Day
}

// SeatUse is the latest use of a product by a user in one ingest batch.
type SeatUse struct {
	UserID    int64
	ProductID int64
	At        time.Time
}

// EventWrites counts what one ingest batch wrote.
type EventWrites struct {
	Events  int   // events stored (not stored before)
	Days    int   // (user, product, day) rows added
	Rollups int   // rollup rows added or changed
	Seats   int64 // seats whose last use moved forward
	Months  int   // (user, product, month) rows added
}

// UseDays returns the distinct (user, product, day) of events.
func UseDays(events []StoredEvent) []UseDay {
	seen := make(map[UseDay]bool)
	var days []UseDay
	for _, e := range events {
		k := UseDay{UserID: e.UserID, ProductID: e.ProductID, Day: e.Day}
		if !seen[k] {
			seen[k] = true
			days = append(days, k)
		}
	}
	return days
}

// LatestUses returns, for each (user, product) that gained a day of use,
// its latest event among stored. Seats move only with new days, so a person
// using a product all day costs one seat write a day, not one per event;
// any instant of the latest day decides inactivity as well as the last.
func LatestUses(stored []StoredEvent, added []UseDay) []SeatUse {
	type k struct{ u, p int64 }
	gained := make(map[k]bool, len(added))
	for _, d := range added {
		gained[k{d.UserID, d.ProductID}] = true
	}
	latest := make(map[k]time.Time, len(gained))
	for _, e := range stored {
		key := k{e.UserID, e.ProductID}
		if gained[key] && e.At.After(latest[key]) {
			latest[key] = e.At
		}
	}
	out := make([]SeatUse, 0, len(latest))
	for key, at := range latest {
		out = append(out, SeatUse{UserID: key.u, ProductID: key.p, At: at})
	}
	return out
}

// RollupRows counts the distinct (user, product) pairs among days: the
// rollup rows that adding them writes.
func RollupRows(days []UseDay) int {
	type k struct{ u, p int64 }
	m := map[k]bool{}
	for _, d := range days {
		m[k{d.UserID, d.ProductID}] = true
	}
	return len(m)
}

// ReportQuery is a ReportFilter resolved for storage.
type ReportQuery struct {
	AccountID       int64
	SubscriptionIDs []int64 // nil: every subscription; else only these
	Status          string  // all, active, inactive, never_used, stopped_using, unavailable
	CutoffDay       Day     // usage on or after this day counts inside the range
	CutoffAt        time.Time
	// AssignedBefore: seats assigned on or after it are active (Cutoffs).
	AssignedBefore time.Time
	ProductCode    string
	SubscriptionID int64
	Query          string // lower-cased substring of name or email
	Sort           string // name, email, product, last_used, days_used
	Desc           bool
	After          *ReportCursor // keyset position; nil for the first page
	Limit          int           // 0: no limit (export)
	Matching       int           // rows the filter matches, when known: a hint for finding the page
}

// ReportCursor is a keyset position in the report's order.
type ReportCursor struct {
	Key            string `json:"k,omitempty"` // text sort key
	Num            int64  `json:"n,omitempty"` // numeric sort key
	UserID         int64  `json:"u"`
	SubscriptionID int64  `json:"s"`
}

// RawRow is a report row as storage returns it; the service derives status
// and averages from it.
type RawRow struct {
	UserID         int64
	Name           string
	Email          string
	ProductCode    string
	ProductName    string
	SubscriptionID int64
	ContractNumber string
	Plan           usher.Plan
	AssignedAt     time.Time
	LastDay        *Day      // the product's last day of use by the user (rollup)
	LastUsedAt     time.Time // the seat's last use since assignment (assignments.last_used_at)
	DaysUsed       int       // days with use on or after CutoffDay
	// Direct and Groups are how the seat reaches the user.
	Direct bool
	Groups []usher.SeatSource
	// UnassignedAt is when a seat freed in the range was freed (FreedRows).
	UnassignedAt time.Time
}

// Tx is what the usage service needs from storage inside one transaction.
type Tx interface {
	access.KeyTx // the key that signs the report's cursors

	AccountByID(ctx context.Context, id int64) (usher.Account, error)
	// HasSubscription reports whether the account has subscription id.
	HasSubscription(ctx context.Context, accountID, id int64) (bool, error)
	// ProductIDs maps every catalog product code to its id.
	ProductIDs(ctx context.Context) (map[string]int64, error)
	// UserIDs maps the given emails to user ids in the account; unknown
	// emails are absent from the result.
	UserIDs(ctx context.Context, accountID int64, emails []string) (map[string]int64, error)
	// LockUsers returns which of ids are users of the account and keeps
	// them from being deleted until the transaction ends. Events are
	// stored only for users it confirmed in the same transaction: storage
	// does not check each event's user.
	LockUsers(ctx context.Context, accountID int64, ids []int64) (map[int64]bool, error)
	// WriteEvents is the write of one ingest batch: it stores the events
	// not stored yet (InsertEvents), records their days (AddDays), folds the
	// new days into the rollups (AddToRollups) and moves the seats' last use
	// (TouchSeats with LatestUses), and counts what it wrote. Storage may do
	// it set-based in fewer statements, with the same outcome.
	WriteEvents(ctx context.Context, accountID int64, events []StoredEvent) (EventWrites, error)
	// InsertEvents stores events that are not stored yet (same user, product
	// and instant) and returns the new ones.
	InsertEvents(ctx context.Context, accountID int64, events []StoredEvent) ([]StoredEvent, error)
	// AddDays records days with use and returns those not recorded before.
	AddDays(ctx context.Context, accountID int64, days []UseDay) ([]UseDay, error)
	// AddToRollups folds newly recorded days into the per (user, product)
	// rollups: first day, last day and days used.
	AddToRollups(ctx context.Context, accountID int64, days []UseDay) error
	// TouchSeats moves the last use of the user's seats of each product
	// forward to At, where it is earlier, and returns how many seats changed.
	TouchSeats(ctx context.Context, accountID int64, uses []SeatUse) (int64, error)
	SetProcessedAt(ctx context.Context, accountID int64, at time.Time) error
	// ProcessedAt is when usage was last processed for the account; nil if never.
	ProcessedAt(ctx context.Context, accountID int64) (*time.Time, error)
	// PruneEvents deletes raw events older than before, at most limit of them.
	PruneEvents(ctx context.Context, before time.Time, limit int) (int64, error)

	// ReportRows returns rows matching q in q's order, at most q.Limit.
	ReportRows(ctx context.Context, q ReportQuery) ([]RawRow, error)
	// EachReportRow streams every row matching q in q's order.
	EachReportRow(ctx context.Context, q ReportQuery, fn func(RawRow) error) error
	// ReportVersion changes whenever anything the report shows may have
	// changed: users, seats, or usage processed. It also returns when usage
	// was last processed (nil if never), which it reads anyway.
	ReportVersion(ctx context.Context, accountID int64) (string, *time.Time, error)
	// ReportAccount is AccountByID and ReportVersion in one statement.
	ReportAccount(ctx context.Context, id int64) (usher.Account, string, *time.Time, error)
	// TokenReportAccount is access's TokenHolder and ReportAccount of the
	// token's account in one statement; usher.ENOTFOUND when no token has
	// the hash.
	TokenReportAccount(ctx context.Context, hash []byte) (access.TokenHolder, usher.Account, string, *time.Time, error)
	// ReportRowsAt is ReportRows reading the account's data version in the
	// same statement: same is false when it is no longer version, or when
	// no row matched.
	ReportRowsAt(ctx context.Context, q ReportQuery, version string) (rows []RawRow, same bool, err error)
	// ReportTotals counts all rows matching q (ignoring After and Limit),
	// with the yearly cost of the inactive seats among them.
	ReportTotals(ctx context.Context, q ReportQuery) (ReportTotals, error)
	// InactiveByProduct counts inactive seats and users per product for q.
	InactiveByProduct(ctx context.Context, q ReportQuery) ([]ProductSummary, error)
	// DashboardSeats counts inactive seats (by q's cutoffs) and people
	// waiting per subscription of q; and, per product with usage data in
	// the account, for each month of b, today's seats assigned before the
	// month's end and the users who used the product in it.
	DashboardSeats(ctx context.Context, q ReportQuery, b MonthBounds) ([]ContractCounts, []ProductMonths, error)
	// ReclaimedSince sums the seats reclaimed since then and not undone,
	// with their yearly price, per currency ("" for seats without a price).
	ReclaimedSince(ctx context.Context, accountID int64, since time.Time) ([]usher.Cost, error)

	// SnapshotByID returns the account's snapshot of the email or run, with
	// storage's key for it; usher.ENOTFOUND when there is none.
	SnapshotByID(ctx context.Context, accountID int64, kind SnapshotKind, sourceID int64) (Snapshot, int64, error)
	// SnapshotRows returns the snapshot's seats matching q, in name order
	// (SnapshotRow's name lower-cased, or the email's when the user is
	// gone; then user and subscription id), at most q.Limit.
	SnapshotRows(ctx context.Context, q SnapshotQuery) ([]SnapshotRow, error)
	// SnapshotTotals counts the seats matching q (ignoring After and Limit).
	SnapshotTotals(ctx context.Context, q SnapshotQuery) (SnapshotTotals, error)
	// FreedRows returns the seats freed in q's range and not held again:
	// those reclaim batches took whole at or after q.CutoffAt and that were
	// not undone, once per user and subscription with the latest time, in
	// name order (the user's name lower-cased, or the email's once the
	// user is gone; then user and subscription id), at most q.Limit.
	FreedRows(ctx context.Context, q ReportQuery) ([]RawRow, error)
	// FreedTotals counts FreedRows' seats and users (ignoring After and Limit).
	FreedTotals(ctx context.Context, q ReportQuery) (ReportTotals, error)
	// PruneSnapshots deletes snapshots taken before before, at most limit of them.
	PruneSnapshots(ctx context.Context, before time.Time, limit int) (int64, error)
}

// Cutoffs are the query's status cutoffs.
func (q ReportQuery) Cutoffs() Cutoffs {
	return Cutoffs{Day: q.CutoffDay, UsedBefore: q.CutoffAt, AssignedBefore: q.AssignedBefore}
}
