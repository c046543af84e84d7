package usage

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// SnapshotKind says what a snapshot is the evidence of.
type SnapshotKind string

const (
	// SnapshotNotification: the seats a usage notification email counted.
	SnapshotNotification SnapshotKind = "notification"
	// SnapshotReclaim: the seats a reclaim policy run planned for.
	SnapshotReclaim SnapshotKind = "reclaim"
)

// SnapshotRetention is how long snapshots are kept: long enough to answer
// for any email of the last quarter, short enough that a weekly email to
// several admins over 150,000 seats stays a bounded table.
const SnapshotRetention = 90 * 24 * time.Hour

// Snapshot is the evidence of one email or run: the seats it was about as
// they were at TakenAt. There is one per email or run; its ID is derived
// from them ("notification-42"), so an email can link to its snapshot
// before the snapshot is recorded with the email's delivery.
type Snapshot struct {
	ID        string       `json:"id"`
	Kind      SnapshotKind `json:"kind"`
	SourceID  int64        `json:"source_id"` // the notification run's or the reclaim run's id
	AccountID int64        `json:"-"`
	Range     Range        `json:"range"`
	TakenAt   time.Time    `json:"taken_at"`
	SeatCount int          `json:"seats"`
	UserCount int          `json:"users"`
	// Seats are the rows to record; not read back whole.
	Seats []SnapshotSeat `json:"-"`
}

// SnapshotSeat is one seat as a snapshot keeps it.
type SnapshotSeat struct {
	UserID         int64
	SubscriptionID int64
	Email          string
	AssignedAt     time.Time
	LastUsedAt     time.Time // as the seat held it: before AssignedAt when never used since
	Inactivity     Inactivity
	Action         string // what a reclaim run did or would do with the seat; "" for an email
}

// SnapshotID names the snapshot of an email or run.
func SnapshotID(kind SnapshotKind, sourceID int64) string {
	return string(kind) + "-" + strconv.FormatInt(sourceID, 10)
}

// ParseSnapshotID reads what SnapshotID writes.
func ParseSnapshotID(s string) (SnapshotKind, int64, bool) {
	k, n, ok := strings.Cut(s, "-")
	if !ok || (SnapshotKind(k) != SnapshotNotification && SnapshotKind(k) != SnapshotReclaim) {
		return "", 0, false
	}
	id, err := strconv.ParseInt(n, 10, 64)
	if err != nil || id <= 0 || strings.HasPrefix(n, "+") {
		return "", 0, false
	}
	return SnapshotKind(k), id, true
}

// NewSnapshot is the snapshot of seats for an email or run, with its counts.
func NewSnapshot(kind SnapshotKind, sourceID, accountID int64, r Range, at time.Time, seats []SnapshotSeat) *Snapshot {
	users := map[int64]bool{}
	for i, st := range seats {
		users[st.UserID] = true
		if st.LastUsedAt.IsZero() {
			// Never used: stored as the seats' own "never" (0), which any
			// use is after.
			seats[i].LastUsedAt = time.UnixMilli(0).UTC()
		}
	}
	return &Snapshot{ID: SnapshotID(kind, sourceID), Kind: kind, SourceID: sourceID, AccountID: accountID, Range: r,
		TakenAt: at.UTC().Truncate(time.Millisecond), SeatCount: len(seats), UserCount: len(users), Seats: seats}
}

// Change says how a snapshot's seat differs from the seat now.
type Change string

const (
	// Unchanged: held since, and not used since.
	Unchanged Change = ""
	// UsedSince: the seat was used after the snapshot's last use of it.
	UsedSince Change = "used_since"
	// Unassigned: the person no longer holds the seat.
	Unassigned Change = "unassigned"
	// Reassigned: the seat was freed and given again since.
	Reassigned Change = "reassigned"
)

// SeatNow is a seat as it is now, to compare with a snapshot's.
type SeatNow struct {
	AssignedAt time.Time
	LastUsedAt time.Time
}

// ChangeOf compares a snapshot's seat with the seat now (nil: not held).
func ChangeOf(then SnapshotSeat, now *SeatNow) Change {
	switch {
	case now == nil:
		return Unassigned
	case !now.AssignedAt.Equal(then.AssignedAt):
		return Reassigned
	case now.LastUsedAt.After(then.LastUsedAt) && !now.LastUsedAt.Before(now.AssignedAt):
		// A use since the assignment, and later than the snapshot knew of.
		return UsedSince
	}
	return Unchanged
}

// SnapshotRow is a snapshot's seat as storage returns it, with what the
// report shows of the person, the contract and the seat now.
type SnapshotRow struct {
	SnapshotSeat
	Name           string // "" when the user was deleted
	ProductCode    string
	ProductName    string
	ContractNumber string
	Plan           usher.Plan
	Now            *SeatNow // nil: not held now
	Direct         bool
	Groups         []usher.SeatSource
}

// SnapshotQuery selects and pages a snapshot's seats, in name order.
type SnapshotQuery struct {
	SnapshotID      int64   // storage's key, from SnapshotByID
	AccountID       int64   // for the joins
	SubscriptionIDs []int64 // nil: every subscription; else only these
	SubscriptionID  int64
	ProductCode     string
	Inactivity      Inactivity // "": both
	Query           string     // lower-cased substring of name or email
	After           *ReportCursor
	Limit           int // 0: no limit
}

// SnapshotTotals count a snapshot's seats matching a query.
type SnapshotTotals struct {
	Seats, Users, NeverUsed, StoppedUsing, Changed int
}

// SnapshotTx is what recording and reading snapshots needs from storage.
type SnapshotTx interface {
	// InsertSnapshot records s with its seats and sets nothing else; a
	// snapshot of the same email or run recorded before is kept and s is
	// dropped, so the evidence is what the first recorded attempt saw.
	InsertSnapshot(ctx context.Context, s *Snapshot) error
}

// snapshotCursorKind binds a snapshot cursor to its snapshot.
func snapshotCursorKind(id string) string { return access.CursorUsageReport + "snapshot:" + id }

// InactiveEvidence is InactiveSummary with every inactive seat it counts,
// read in the same transaction, for the email's snapshot.
func (s *Service) InactiveEvidence(ctx context.Context, accountID int64, r Range, firstUsers int) (InactiveSummary, []SnapshotSeat, error) {
	var sum InactiveSummary
	var seats []SnapshotSeat
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		sum, seats, err = s.InactiveEvidenceIn(ctx, tx, accountID, r, firstUsers)
		return err
	})
	if err != nil {
		return sum, nil, fmt.Errorf("inactive evidence: %w", err)
	}
	return sum, seats, nil
}

// InactiveEvidenceIn is InactiveEvidence in the caller's transaction, such
// as the one that claims a notification run, so that the email costs one
// transaction instead of two.
func (s *Service) InactiveEvidenceIn(ctx context.Context, tx Tx, accountID int64, r Range, firstUsers int) (InactiveSummary, []SnapshotSeat, error) {
	var seats []SnapshotSeat
	sum, q, err := s.inactiveSummary(ctx, tx, accountID, r, firstUsers)
	if err != nil {
		return sum, nil, err
	}
	q.Limit, q.After = 0, nil
	err = tx.EachReportRow(ctx, q, func(row RawRow) error {
		_, why := Classify(row.Plan, row.AssignedAt, row.LastUsedAt, q.Cutoffs())
		seats = append(seats, SnapshotSeat{UserID: row.UserID, SubscriptionID: row.SubscriptionID, Email: row.Email,
			AssignedAt: row.AssignedAt.UTC(), LastUsedAt: row.LastUsedAt.UTC(), Inactivity: why})
		return nil
	})
	return sum, seats, err
}

// snapshotReport is the Usage Report as of a snapshot: its seats, each
// compared with the seat now.
func (s *Service) snapshotReport(ctx context.Context, a usher.Actor, f ReportFilter) (Report, error) {
	var p usher.Problems
	kind, source, ok := ParseSnapshotID(f.Snapshot)
	if !ok {
		p.Add("snapshot", "must name a snapshot, such as notification-42 or reclaim-7")
	}
	var inactivity Inactivity
	switch f.Status {
	case "", "all", "inactive":
	case "never_used", "stopped_using":
		inactivity = Inactivity(f.Status)
	default:
		p.Add("status", "a snapshot holds inactive seats: use all, inactive, never_used or stopped_using")
	}
	if sort := strings.TrimPrefix(f.Sort, "-"); sort != "" && f.Sort != "name" {
		p.Add("sort", "a snapshot is shown in name order: leave sort out or use name")
	}
	usher.CheckText(&p, "q", f.Query, 0, 200)
	if reason := usher.TextProblem(f.Product); reason != "" {
		p.Add("product", reason)
		f.Product = ""
	}
	switch {
	case f.Limit == 0:
		f.Limit = 100
	case f.Limit < 0 || f.Limit > 1000:
		p.Add("limit", "must be between 1 and 1000")
	}
	if err := p.Err(); err != nil {
		return Report{}, err
	}
	var cur *ReportCursor
	if f.Cursor != "" {
		cur = new(ReportCursor)
		if err := s.cursors.Decode(ctx, &p, snapshotCursorKind(f.Snapshot), a.AccountID, f.Cursor, cur); err != nil {
			return Report{}, err
		}
		if err := p.Err(); err != nil {
			return Report{}, err
		}
	}
	if !access.CanAny(a, access.ViewReports) {
		return Report{}, usher.Errorf(usher.EFORBIDDEN, "you may not see the usage report")
	}
	if _, err := s.cursors.Key(ctx); err != nil {
		return Report{}, err
	}
	var out Report
	err := s.store.Read(ctx, func(tx Tx) error {
		snap, key, err := tx.SnapshotByID(ctx, a.AccountID, kind, source)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			reason := fmt.Sprintf("%s was never recorded, or is older than %d days", f.Snapshot, int(SnapshotRetention.Hours()/24))
			return &usher.Error{Code: usher.ENOTFOUND, Message: "snapshot not found", Fields: []usher.FieldError{{Field: "snapshot", Reason: reason}}}
		} else if err != nil {
			return err
		}
		if f.Range != "" && f.Range != snap.Range {
			return usher.Problems{{Field: "range", Reason: "the snapshot keeps its own range, " + string(snap.Range) + ": leave range out"}}.Err()
		}
		if f.Product != "" {
			products, err := tx.ProductIDs(ctx)
			if err != nil {
				return err
			}
			if products[f.Product] == 0 {
				return usher.Problems{{Field: "product", Reason: fmt.Sprintf("%q is not a product code", f.Product)}}.Err()
			}
		}
		acct, err := tx.AccountByID(ctx, a.AccountID)
		if err != nil {
			return err
		}
		loc := acct.Location()
		q := SnapshotQuery{SnapshotID: key, AccountID: a.AccountID, SubscriptionIDs: access.VisibleSubscriptions(a, access.ViewReports),
			SubscriptionID: f.SubscriptionID, ProductCode: f.Product, Inactivity: inactivity,
			Query: strings.ToLower(strings.TrimSpace(f.Query)), After: cur, Limit: f.Limit + 1}
		if f.SubscriptionID != 0 && !access.Can(a, access.ViewReports, f.SubscriptionID) {
			q.SubscriptionIDs = []int64{}
		}
		t, err := tx.SnapshotTotals(ctx, q)
		if err != nil {
			return err
		}
		rows, err := tx.SnapshotRows(ctx, q)
		if err != nil {
			return err
		}
		taken := DayOf(snap.TakenAt, loc)
		cut := snap.Range.CutoffsOn(taken, loc, acct.NewSeatGraceDays)
		snap.TakenAt = snap.TakenAt.In(loc)
		out = Report{Range: snap.Range, Cutoff: cut.Day.Date(), AssignedBefore: cut.AssignedBefore.In(loc), Today: taken.Date(),
			Rows: make([]ReportRow, 0, len(rows)), Snapshot: &snap,
			Totals: ReportTotals{Seats: t.Seats, Users: t.Users, InactiveSeats: t.Seats, InactiveUsers: t.Users,
				NeverUsedSeats: t.NeverUsed, StoppedUsingSeats: t.StoppedUsing, InactiveCost: []usher.Cost{}, ChangedSeats: &t.Changed}}
		if len(rows) > f.Limit {
			rows = rows[:f.Limit]
			last := rows[len(rows)-1]
			c := ReportCursor{Key: snapshotSortKey(last), UserID: last.UserID, SubscriptionID: last.SubscriptionID}
			if out.NextCursor, err = s.cursors.Encode(ctx, snapshotCursorKind(f.Snapshot), a.AccountID, c); err != nil {
				return err
			}
		}
		for _, r := range rows {
			out.Rows = append(out.Rows, snapshotRow(r, taken, loc))
		}
		out.ProcessedAt, err = tx.ProcessedAt(ctx, a.AccountID)
		return err
	})
	if err != nil {
		return Report{}, fmt.Errorf("usage report as of %s: %w", f.Snapshot, err)
	}
	return out, nil
}

// snapshotSortKey is a row's place in a snapshot's name order; storage
// sorts by the same key.
func snapshotSortKey(r SnapshotRow) string {
	if r.Name == "" && r.Now == nil {
		return strings.ToLower(r.Email)
	}
	return strings.ToLower(r.Name)
}

// snapshotRow is a snapshot's seat as a report row: as it was, with how it
// changed since. Days inactive are counted to the snapshot's day.
func snapshotRow(r SnapshotRow, taken Day, loc *time.Location) ReportRow {
	out := ReportRow{
		UserID: r.UserID, Name: r.Name, Email: r.Email, Product: r.ProductCode, ProductName: r.ProductName,
		SubscriptionID: r.SubscriptionID, ContractNumber: r.ContractNumber, Plan: r.Plan, AssignedAt: r.AssignedAt.In(loc),
		Status: StatusInactive, Inactivity: r.Inactivity, Sources: []usher.SeatSource{}, Action: r.Action,
	}
	if out.Name == "" {
		out.Name = r.Email
	}
	if r.Direct {
		out.Sources = append(out.Sources, usher.SeatSource{Direct: true})
	}
	out.Sources = append(out.Sources, r.Groups...)
	since := DayOf(r.AssignedAt, loc)
	if !r.LastUsedAt.Before(r.AssignedAt) {
		d := DayOf(r.LastUsedAt, loc)
		date := d.Date()
		out.LastUsed, since = &date, d
	}
	days := max(0, int(taken-since))
	out.DaysInactive = &days
	out.Change = ChangeOf(r.SnapshotSeat, r.Now)
	if out.Change == UsedSince {
		d := DayOf(r.Now.LastUsedAt, loc).Date()
		out.LastUsedNow = &d
	}
	return out
}

// eachSnapshotRow is EachRow as of a snapshot, page by page: a snapshot
// no longer changes, so its pages add up to the whole.
func (s *Service) eachSnapshotRow(ctx context.Context, a usher.Actor, f ReportFilter, head func(Report) error, fn func(ReportRow) error) error {
	f.Cursor, f.Limit = "", 1000
	for first := true; ; first = false {
		rep, err := s.snapshotReport(ctx, a, f)
		if err != nil {
			return fmt.Errorf("usage report export: %w", err)
		}
		if first {
			if err := head(rep); err != nil {
				return err
			}
		}
		for _, r := range rep.Rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		if rep.NextCursor == "" {
			return nil
		}
		f.Cursor = rep.NextCursor
	}
}

// SeatKey names one seat: a user on a subscription.
type SeatKey struct{ UserID, SubscriptionID int64 }

// UnusedSince returns, for each seat of a snapshot the actor may see, the
// instant from which a use of it, or its assignment again, means it changed
// since the snapshot (as ChangeOf decides): just after the later of its
// last use and its assignment then. It also returns when the snapshot was
// taken, for seats it does not list. An unassign from the report as of a
// snapshot passes these as access.UnassignItem.UnusedSince.
func (s *Service) UnusedSince(ctx context.Context, a usher.Actor, snapshot string) (time.Time, map[SeatKey]time.Time, error) {
	kind, source, ok := ParseSnapshotID(snapshot)
	if !ok {
		return time.Time{}, nil, usher.Problems{{Field: "snapshot", Reason: "must name a snapshot, such as notification-42 or reclaim-7"}}.Err()
	}
	if !access.CanAny(a, access.ViewReports) {
		return time.Time{}, nil, usher.Errorf(usher.EFORBIDDEN, "you may not see the usage report")
	}
	var taken time.Time
	out := map[SeatKey]time.Time{}
	err := s.store.Read(ctx, func(tx Tx) error {
		snap, key, err := tx.SnapshotByID(ctx, a.AccountID, kind, source)
		if err != nil {
			return err
		}
		taken = snap.TakenAt
		rows, err := tx.SnapshotRows(ctx, SnapshotQuery{SnapshotID: key, AccountID: a.AccountID, SubscriptionIDs: access.VisibleSubscriptions(a, access.ViewReports)})
		if err != nil {
			return err
		}
		for _, r := range rows {
			since := r.AssignedAt
			if r.LastUsedAt.After(since) {
				since = r.LastUsedAt
			}
			out[SeatKey{r.UserID, r.SubscriptionID}] = since.Add(time.Millisecond)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("seats of snapshot %s: %w", snapshot, err)
	}
	return taken, out, nil
}
