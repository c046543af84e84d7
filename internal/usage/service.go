package usage

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// Config tunes the usage service.
type Config struct {
	Now       func() time.Time
	Retention time.Duration // raw events older than this are refused and pruned; default 400 days
	ClockSkew time.Duration // how far in the future an event may be; default 5 minutes
	BatchSize int           // events written per transaction; default 10,000
}

// DefaultRetention is how long raw events are kept unless configured.
const DefaultRetention = 400 * 24 * time.Hour

// Service ingests usage and answers the Usage Report.
type Service struct {
	store   Store
	cfg     Config
	stats   Stats
	totals  totalsCache
	dash    dashboardCache
	cursors *access.Cursors
}

// Stats counts writes so write amplification can be measured.
type Stats struct {
	EventsAccepted atomic.Int64 // raw events stored
	// EventsDuplicate and EventsRejected count events sent again and lines
	// refused, for metrics.
	EventsDuplicate atomic.Int64
	EventsRejected  atomic.Int64
	DayWrites       atomic.Int64 // (user, product, day) rows added
	RollupWrites    atomic.Int64 // rollup rows changed
	SeatWrites      atomic.Int64 // seats whose last use moved forward
}

// New returns a usage service on store.
func New(store Store, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = 5 * time.Minute
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 10_000
	}
	return &Service{store: store, cfg: cfg, cursors: access.NewCursors(store.Read, store.Write)}
}

// Stats returns the service's write counters.
func (s *Service) Stats() *Stats { return &s.stats }

// Retention is how long raw events are kept.
func (s *Service) Retention() time.Duration { return s.cfg.Retention }

// maxUserCache bounds the email→id cache of one ingest.
const maxUserCache = 500_000

// Ingest stores events read from items, batch by batch, so a body of any
// size needs bounded memory. Lines that cannot be stored are counted and
// listed with their reason; good lines are kept. Sending the same events
// again stores nothing new.
func (s *Service) Ingest(ctx context.Context, a usher.Actor, items iter.Seq[Item]) (IngestResult, error) {
	res := IngestResult{Rejections: []Rejection{}}
	if !access.Can(a, access.IngestUsage, 0) {
		return res, usher.Errorf(usher.EFORBIDDEN, "you may not send usage events")
	}
	defer func() {
		s.stats.EventsDuplicate.Add(int64(res.Duplicates))
		s.stats.EventsRejected.Add(int64(res.Rejected))
	}()
	var acct usher.Account
	var products map[string]int64
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		if acct, err = tx.AccountByID(ctx, a.AccountID); err != nil {
			return err
		}
		products, err = tx.ProductIDs(ctx)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("ingest: %w", err)
	}
	loc := acct.Location()
	users := map[string]int64{} // email → id, 0 when unknown
	batch := make([]Item, 0, s.cfg.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.ingestBatch(ctx, acct.ID, loc, products, users, batch, &res)
		batch = batch[:0]
		return err
	}
	for it := range items {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("ingest: %w", err)
		}
		if it.Fatal {
			// Nothing can be read after it: store what came before, then
			// say why the rest of the body was not read.
			if err := flush(); err != nil {
				return res, fmt.Errorf("ingest: %w", err)
			}
			res.reject(it.Line, "%v", it.Err)
			break
		}
		// Malformed lines travel in the batch too, so rejections are listed
		// in line order and the first MaxRejections are the first lines.
		batch = append(batch, it)
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return res, fmt.Errorf("ingest: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return res, fmt.Errorf("ingest: %w", err)
	}
	return res, nil
}

func (s *Service) ingestBatch(ctx context.Context, accountID int64, loc *time.Location, products map[string]int64,
	users map[string]int64, batch []Item, res *IngestResult) error {
	var unknown []string
	asked := map[string]bool{}
	valid := 0
	for i := range batch {
		if batch[i].Err != nil {
			continue
		}
		valid++
		e := usher.NormalizeEmail(batch[i].Event.User)
		batch[i].Event.User = e
		if _, ok := users[e]; !ok && !asked[e] {
			asked[e] = true
			unknown = append(unknown, e)
		}
	}
	if valid == 0 {
		// Nothing to store: no transaction, which on SQLite would take the
		// write lock for nothing.
		for _, it := range batch {
			res.reject(it.Line, "%v", it.Err)
		}
		return nil
	}
	if len(users)+len(unknown) > maxUserCache {
		clear(users)
	}
	now := s.cfg.Now()
	oldest, newest := now.Add(-s.cfg.Retention), now.Add(s.cfg.ClockSkew)
	// The transaction may run more than once (see store.DB.Write), so it
	// counts into out and the totals move on only once it has committed.
	var out IngestResult
	var dayWrites, rollupWrites, seatWrites int64
	err := s.store.Write(ctx, func(tx Tx) error {
		out = IngestResult{}
		dayWrites, rollupWrites, seatWrites = 0, 0, 0
		if len(unknown) > 0 {
			found, err := tx.UserIDs(ctx, accountID, unknown)
			if err != nil {
				return err
			}
			for _, e := range unknown {
				users[e] = found[e]
			}
		}
		if err := confirmUsers(ctx, tx, accountID, users, batch); err != nil {
			return err
		}
		type key struct {
			u, p int64
			at   int64
		}
		seen := make(map[key]bool, len(batch))
		events := make([]StoredEvent, 0, len(batch))
		dupes := 0
		for _, it := range batch {
			ev := it.Event
			uid, pid := users[ev.User], products[ev.Product]
			switch {
			case it.Err != nil:
				out.reject(it.Line, "%v", it.Err)
			case uid == 0:
				out.reject(it.Line, "user %q is not a user of this account", ev.User)
			case pid == 0:
				out.reject(it.Line, "product %q is not a product code", ev.Product)
			case ev.At.After(newest):
				out.reject(it.Line, "at %s is in the future (more than %s ahead of the server's clock)", ev.At.Format(time.RFC3339), minutes(s.cfg.ClockSkew))
			case ev.At.Before(oldest):
				out.reject(it.Line, "at %s is older than the retention period of %d days", ev.At.Format(time.RFC3339), int(s.cfg.Retention.Hours()/24))
			default:
				at := ev.At.UTC().Truncate(time.Millisecond)
				k := key{uid, pid, at.UnixMilli()}
				if seen[k] {
					dupes++
					continue
				}
				seen[k] = true
				events = append(events, StoredEvent{UserID: uid, ProductID: pid, At: at, Day: DayOf(at, loc)})
			}
		}
		if len(events) == 0 {
			out.Duplicates += dupes
			return nil
		}
		w, err := tx.WriteEvents(ctx, accountID, events)
		if err != nil {
			return err
		}
		if err := tx.SetProcessedAt(ctx, accountID, now); err != nil {
			return err
		}
		out.Accepted += w.Events
		out.Duplicates += dupes + len(events) - w.Events
		dayWrites, rollupWrites, seatWrites = int64(w.Days), int64(w.Rollups), w.Seats
		return nil
	})
	if err != nil {
		return err
	}
	res.add(out)
	s.stats.EventsAccepted.Add(int64(out.Accepted))
	s.stats.DayWrites.Add(dayWrites)
	s.stats.RollupWrites.Add(rollupWrites)
	s.stats.SeatWrites.Add(seatWrites)
	return nil
}

// confirmUsers confirms the users of the batch's events in the writing
// transaction, once per user: ids may come from an earlier batch's lookup,
// and storage keeps no foreign key per event. A user deleted since is
// forgotten, so their events are refused as those of an unknown user.
func confirmUsers(ctx context.Context, tx Tx, accountID int64, users map[string]int64, batch []Item) error {
	ids := make([]int64, 0, len(batch))
	for i := range batch {
		if batch[i].Err == nil {
			if uid := users[batch[i].Event.User]; uid != 0 {
				ids = append(ids, uid)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	present, err := tx.LockUsers(ctx, accountID, ids)
	if err != nil {
		return err
	}
	var gone []string
	for i := range batch {
		if e := batch[i].Event.User; batch[i].Err == nil && users[e] != 0 && !present[users[e]] {
			users[e] = 0
			gone = append(gone, e)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	// Looked up again by email: the address may belong to a new user now.
	found, err := tx.UserIDs(ctx, accountID, gone)
	if err != nil || len(found) == 0 {
		return err
	}
	present, err = tx.LockUsers(ctx, accountID, slices.Collect(maps.Values(found)))
	if err != nil {
		return err
	}
	for e, id := range found {
		if present[id] {
			users[e] = id
		}
	}
	return nil
}

// minutes writes d for people: "5 minutes", or "90s" when not whole minutes.
func minutes(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "1 minute"
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// pruneSnapshotsBatch is how many snapshots one pruning transaction
// deletes: one may hold tens of thousands of seats.
const pruneSnapshotsBatch = 5

// Prune deletes raw events older than the retention period, and snapshots
// older than SnapshotRetention, in chunks so no transaction holds locks for
// long. Rollups and day rows are kept. It answers how many events it deleted.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	before := s.cfg.Now().Add(-s.cfg.Retention)
	var total int64
	for {
		var n int64
		err := s.store.Write(ctx, func(tx Tx) (err error) {
			n, err = tx.PruneEvents(ctx, before, 10_000)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune usage events: %w", err)
		}
		total += n
		if n < 10_000 {
			break
		}
	}
	// Snapshots go after their own retention, with the same job.
	old := s.cfg.Now().Add(-SnapshotRetention)
	for {
		var n int64
		err := s.store.Write(ctx, func(tx Tx) (err error) {
			n, err = tx.PruneSnapshots(ctx, old, pruneSnapshotsBatch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune snapshots: %w", err)
		}
		if n < pruneSnapshotsBatch {
			return total, nil
		}
	}
}

var sorts = []string{"name", "email", "product", "last_used", "days_used"}
var statuses = []string{"all", "active", "inactive", "never_used", "stopped_using", "unavailable", "unassigned"}

// prepare validates f and turns it into a storage query for the actor.
func (s *Service) prepare(ctx context.Context, tx Tx, a usher.Actor, f ReportFilter, paged bool) (ReportQuery, usher.Account, Day, error) {
	return s.prepareFor(ctx, tx, a, f, paged, nil)
}

// prepareFor is prepare with the account already read, unless acct is nil.
func (s *Service) prepareFor(ctx context.Context, tx Tx, a usher.Actor, f ReportFilter, paged bool, acct *usher.Account) (ReportQuery, usher.Account, Day, error) {
	var p usher.Problems
	if f.Status == "" {
		f.Status = "all"
	}
	if !slices.Contains(statuses, f.Status) {
		p.Add("status", "must be one of all, active, inactive, never_used, stopped_using, unavailable, unassigned")
	}
	if f.Range == "" {
		f.Range = Range30d
	}
	if !f.Range.Valid() {
		p.Add("range", "must be one of 30d, 3m, 6m, 9m, 1y")
	}
	sort, desc := strings.CutPrefix(f.Sort, "-")
	if sort == "" {
		sort = "name"
	}
	if !slices.Contains(sorts, sort) {
		p.Add("sort", "must be one of name, email, product, last_used, days_used, optionally prefixed with - for descending")
	} else if f.Status == "unassigned" && (sort != "name" || desc) {
		p.Add("sort", "seats unassigned in the range are listed by name: leave sort out or use name")
	}
	usher.CheckText(&p, "q", f.Query, 0, 200)
	if reason := usher.TextProblem(f.Product); reason != "" {
		p.Add("product", reason)
		f.Product = "" // not looked up
	}
	if paged {
		switch {
		case f.Limit == 0:
			f.Limit = 100
		case f.Limit < 0 || f.Limit > 1000:
			p.Add("limit", "must be between 1 and 1000")
		}
	}
	var cur *ReportCursor
	if f.Cursor != "" {
		cur = new(ReportCursor)
		if err := s.cursors.Decode(ctx, &p, reportCursorKind(sort, desc), a.AccountID, f.Cursor, cur); err != nil {
			return ReportQuery{}, usher.Account{}, 0, err
		}
	}
	if f.Product != "" {
		products, err := tx.ProductIDs(ctx)
		if err != nil {
			return ReportQuery{}, usher.Account{}, 0, err
		}
		if products[f.Product] == 0 {
			p.Addf("product", "%q is not a product code", f.Product)
		}
	}
	if err := p.Err(); err != nil {
		return ReportQuery{}, usher.Account{}, 0, err
	}
	if !access.CanAny(a, access.ViewReports) {
		return ReportQuery{}, usher.Account{}, 0, usher.Errorf(usher.EFORBIDDEN, "you may not see the usage report")
	}
	if f.SubscriptionID != 0 {
		// One the actor may not see is answered as one that does not exist.
		found := access.Can(a, access.ViewReports, f.SubscriptionID)
		if found {
			var err error
			if found, err = tx.HasSubscription(ctx, a.AccountID, f.SubscriptionID); err != nil {
				return ReportQuery{}, usher.Account{}, 0, err
			}
		}
		if !found {
			msg := fmt.Sprintf("subscription %d not found", f.SubscriptionID)
			return ReportQuery{}, usher.Account{}, 0, &usher.Error{Code: usher.ENOTFOUND, Message: msg, Fields: []usher.FieldError{{Field: "subscription", Reason: msg}}}
		}
	}
	if acct == nil {
		read, err := tx.AccountByID(ctx, a.AccountID)
		if err != nil {
			return ReportQuery{}, usher.Account{}, 0, err
		}
		acct = &read
	}
	loc := acct.Location()
	today := DayOf(s.cfg.Now(), loc)
	c := f.Range.CutoffsOn(today, loc, acct.NewSeatGraceDays)
	q := ReportQuery{
		AccountID: a.AccountID, SubscriptionIDs: access.VisibleSubscriptions(a, access.ViewReports),
		Status: f.Status, CutoffDay: c.Day, CutoffAt: c.UsedBefore, AssignedBefore: c.AssignedBefore,
		ProductCode: f.Product, SubscriptionID: f.SubscriptionID, Query: strings.ToLower(strings.TrimSpace(f.Query)),
		Sort: sort, Desc: desc, After: cur, Limit: f.Limit,
	}
	return q, *acct, today, nil
}

func (s *Service) row(r RawRow, rg Range, q ReportQuery, today Day, loc *time.Location) ReportRow {
	out := ReportRow{
		UserID: r.UserID, Name: r.Name, Email: r.Email, Product: r.ProductCode, ProductName: r.ProductName,
		SubscriptionID: r.SubscriptionID, ContractNumber: r.ContractNumber, Plan: r.Plan, AssignedAt: r.AssignedAt,
		DaysUsed: r.DaysUsed, Sources: []usher.SeatSource{},
	}
	if r.Direct {
		out.Sources = append(out.Sources, usher.SeatSource{Direct: true})
	}
	out.Sources = append(out.Sources, r.Groups...)
	if r.LastDay != nil {
		d := r.LastDay.Date()
		out.LastUsed = &d
	}
	out.Status, out.Inactivity = Classify(r.Plan, r.AssignedAt, r.LastUsedAt, q.Cutoffs())
	if out.Status == StatusUnavailable {
		out.StatusNote = "usage data is not available for the " + string(r.Plan) + " plan"
	}
	months := float64(rg.months())
	if months == 0 {
		months = 1
	}
	out.MonthlyAverage = math.Round(float64(r.DaysUsed)/months*10) / 10
	if out.Status != StatusUnavailable {
		since := DayOf(r.AssignedAt, loc)
		if r.LastDay != nil && *r.LastDay > since {
			since = *r.LastDay
		}
		days := max(0, int(today-since))
		out.DaysInactive = &days
	}
	return out
}

// reportCursorKind binds a report cursor to its order: a position means
// something else in another one.
func reportCursorKind(sort string, desc bool) string {
	if desc {
		sort = "-" + sort
	}
	return access.CursorUsageReport + sort
}

// Report returns one page of the Usage Report with totals for the filter.
func (s *Service) Report(ctx context.Context, a usher.Actor, f ReportFilter) (Report, error) {
	return s.report(ctx, a, f, nil)
}

// Admit decides a token read with its holder, as access.Service.Admit does.
type Admit func(ctx context.Context, h access.TokenHolder, err error) (usher.Actor, error)

// reportAccount is the report's first read: the account with its data
// version and when usage was last processed.
type reportAccount struct {
	acct      usher.Account
	version   string
	processed *time.Time
}

// ReportByToken is authentication and Report with one round trip fewer,
// for a request with a bearer token: the token with its holder's status
// and grants is read in the statement that reads the token's account and
// its data version (Tx.TokenReportAccount). admit decides the token, as
// every other request's authentication does (authErr); only then is the
// page read and the filter decided for the actor, as Report does (err).
func (s *Service) ReportByToken(ctx context.Context, admit Admit, token string, f ReportFilter) (a usher.Actor, out Report, authErr, err error) {
	var h access.TokenHolder
	var ra reportAccount
	err = s.store.Peek(ctx, func(tx Tx) (err error) {
		h, ra.acct, ra.version, ra.processed, err = tx.TokenReportAccount(ctx, access.HashToken(token))
		return err
	})
	if a, authErr = admit(ctx, h, err); authErr != nil {
		return usher.Actor{}, Report{}, authErr, nil
	}
	out, err = s.report(ctx, a, f, &ra)
	return a, out, nil, err
}

// report is Report with the account already read, unless ra is nil; the
// page read outside a transaction checks the version read with it.
func (s *Service) report(ctx context.Context, a usher.Actor, f ReportFilter, ra *reportAccount) (Report, error) {
	if f.Snapshot != "" {
		return s.snapshotReport(ctx, a, f)
	}
	// Loaded before the transaction, which signs the next page's cursor.
	if _, err := s.cursors.Key(ctx); err != nil {
		return Report{}, fmt.Errorf("usage report: %w", err)
	}
	if f.Status != string(StatusUnassigned) {
		out, ok, err := s.reportPeek(ctx, a, f, ra)
		if err != nil {
			return Report{}, fmt.Errorf("usage report: %w", err)
		}
		if ok {
			return out, nil
		}
	}
	var out Report
	err := s.store.Read(ctx, func(tx Tx) error {
		q, acct, today, err := s.prepare(ctx, tx, a, f, true)
		if err != nil {
			return err
		}
		rg := f.Range
		if rg == "" {
			rg = Range30d
		}
		// Totals first: how many rows match tells storage how to find the page.
		version, processed, err := tx.ReportVersion(ctx, a.AccountID)
		if err != nil {
			return err
		}
		if q.Status == string(StatusUnassigned) {
			out, err = s.freedReport(ctx, tx, a, q, acct, today, rg)
			out.ProcessedAt = processed
			return err
		}
		key, now := totalsKey(q, version), s.cfg.Now()
		totals, ok := s.totals.get(key, now)
		if !ok {
			totals, err = s.totals.count(ctx, key, func() (ReportTotals, error) { return tx.ReportTotals(ctx, q) })
			if err != nil {
				return err
			}
			s.totals.put(key, totals, now)
		}
		limit := q.Limit
		q.Limit = limit + 1
		q.Matching = totals.Seats
		raw, err := tx.ReportRows(ctx, q)
		if err != nil {
			return err
		}
		out, err = s.page(ctx, a, q, limit, acct, today, rg, totals, raw)
		out.ProcessedAt = processed
		return err
	})
	if err != nil {
		return Report{}, fmt.Errorf("usage report: %w", err)
	}
	return out, nil
}

// reportPeek answers the page outside a transaction when it can, in two
// statements instead of a transaction's four round trips: the account with
// its data version, then the page (and, when not cached, the totals before
// it), the page reading the version again. Every committed change of what
// the report shows moves the version on (see Tx.ReportVersion), so when the
// page still reads the same version, nothing changed in between and the
// answer is what one snapshot would show. ok is false when the version
// moved or the page is empty (nothing to read the version from); the
// caller then reads in a transaction. ra, when not nil, is the account
// already read (with the token, ReportByToken): the first statement.
func (s *Service) reportPeek(ctx context.Context, a usher.Actor, f ReportFilter, ra *reportAccount) (out Report, ok bool, err error) {
	err = s.store.Peek(ctx, func(tx Tx) error {
		if ra == nil {
			ra = new(reportAccount)
			var err error
			if ra.acct, ra.version, ra.processed, err = tx.ReportAccount(ctx, a.AccountID); err != nil {
				return err
			}
		}
		version, processed := ra.version, ra.processed
		q, acct, today, err := s.prepareFor(ctx, tx, a, f, true, &ra.acct)
		if err != nil {
			return err
		}
		rg := f.Range
		if rg == "" {
			rg = Range30d
		}
		key, now := totalsKey(q, version), s.cfg.Now()
		totals, cached := s.totals.get(key, now)
		if !cached {
			// A count shared with another request happened before this
			// page's read, so the version check below covers it too.
			totals, err = s.totals.count(ctx, key, func() (ReportTotals, error) { return tx.ReportTotals(ctx, q) })
			if err != nil {
				return err
			}
		}
		limit := q.Limit
		q.Limit = limit + 1
		q.Matching = totals.Seats
		raw, same, err := tx.ReportRowsAt(ctx, q, version)
		if err != nil || !same {
			return err
		}
		if !cached {
			s.totals.put(key, totals, now)
		}
		out, err = s.page(ctx, a, q, limit, acct, today, rg, totals, raw)
		out.ProcessedAt = processed
		ok = err == nil
		return err
	})
	return out, ok, err
}

// page builds the report's page from up to limit+1 rows of q: a row past
// the limit means there is a next page, whose cursor it signs.
func (s *Service) page(ctx context.Context, a usher.Actor, q ReportQuery, limit int, acct usher.Account, today Day, rg Range, totals ReportTotals, raw []RawRow) (Report, error) {
	loc := acct.Location()
	out := Report{Range: rg, Cutoff: q.CutoffDay.Date(), AssignedBefore: q.AssignedBefore.In(loc), Today: today.Date(),
		Rows: make([]ReportRow, 0, len(raw)), Totals: totals}
	if len(raw) > limit {
		raw = raw[:limit]
		var err error
		if out.NextCursor, err = s.cursors.Encode(ctx, reportCursorKind(q.Sort, q.Desc), a.AccountID, cursorOf(q.Sort, raw[limit-1])); err != nil {
			return out, err
		}
	}
	for _, r := range raw {
		r.AssignedAt = r.AssignedAt.In(loc)
		out.Rows = append(out.Rows, s.row(r, rg, q, today, loc))
	}
	return out, nil
}

// cursorOf is the keyset position of r in the order of sort.
func cursorOf(sort string, r RawRow) ReportCursor {
	c := ReportCursor{UserID: r.UserID, SubscriptionID: r.SubscriptionID}
	switch sort {
	case "email":
		c.Key = r.Email
	case "product":
		c.Key = r.ProductCode
	case "last_used":
		c.Num = -1
		if r.LastDay != nil {
			c.Num = int64(*r.LastDay)
		}
	case "days_used":
		c.Num = int64(r.DaysUsed)
	default:
		c.Key = strings.ToLower(r.Name)
	}
	return c
}

// EachRow streams every row matching f (no pagination), e.g. for CSV export.
// It returns the report header (range, cutoff, processed time) first through head.
func (s *Service) EachRow(ctx context.Context, a usher.Actor, f ReportFilter, head func(Report) error, fn func(ReportRow) error) error {
	if f.Snapshot != "" {
		return s.eachSnapshotRow(ctx, a, f, head, fn)
	}
	err := s.store.Read(ctx, func(tx Tx) error {
		q, acct, today, err := s.prepare(ctx, tx, a, f, false)
		if err != nil {
			return err
		}
		rg := f.Range
		if rg == "" {
			rg = Range30d
		}
		q.Limit, q.After = 0, nil
		h := Report{Range: rg, Cutoff: q.CutoffDay.Date(), AssignedBefore: q.AssignedBefore.In(acct.Location()), Today: today.Date()}
		if h.ProcessedAt, err = tx.ProcessedAt(ctx, a.AccountID); err != nil {
			return err
		}
		if err := head(h); err != nil {
			return err
		}
		loc := acct.Location()
		if q.Status == string(StatusUnassigned) {
			rows, err := tx.FreedRows(ctx, q)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := fn(s.freedRow(r, rg, q, today, loc)); err != nil {
					return err
				}
			}
			return nil
		}
		return tx.EachReportRow(ctx, q, func(r RawRow) error {
			r.AssignedAt = r.AssignedAt.In(loc)
			return fn(s.row(r, rg, q, today, loc))
		})
	})
	if err != nil {
		return fmt.Errorf("usage report export: %w", err)
	}
	return nil
}

// InactiveSummary counts the account's inactive users and seats for range r,
// per product, with the first users by name. It is what notifications send.
func (s *Service) InactiveSummary(ctx context.Context, accountID int64, r Range, firstUsers int) (InactiveSummary, error) {
	var out InactiveSummary
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, _, err = s.inactiveSummary(ctx, tx, accountID, r, firstUsers)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("inactive summary: %w", err)
	}
	return out, nil
}

// inactiveSummary is InactiveSummary in tx; it also returns the query of
// the inactive seats it counted.
func (s *Service) inactiveSummary(ctx context.Context, tx Tx, accountID int64, r Range, firstUsers int) (InactiveSummary, ReportQuery, error) {
	out := InactiveSummary{Range: r, ByProduct: []ProductSummary{}, FirstUsers: []usher.User{}, InactiveCost: []usher.Cost{}}
	a := usher.System(accountID)
	q, _, _, err := s.prepare(ctx, tx, a, ReportFilter{Status: "inactive", Range: r, Limit: 1000}, true)
	if err != nil {
		return out, q, err
	}
	t, err := tx.ReportTotals(ctx, q)
	if err != nil {
		return out, q, err
	}
	out.InactiveSeats, out.InactiveUsers = t.InactiveSeats, t.InactiveUsers
	out.NeverUsedSeats, out.StoppedUsingSeats, out.InactiveCost = t.NeverUsedSeats, t.StoppedUsingSeats, t.InactiveCost
	if out.ByProduct, err = tx.InactiveByProduct(ctx, q); err != nil {
		return out, q, err
	}
	seen := map[int64]bool{}
	page := q
	for len(out.FirstUsers) < firstUsers {
		rows, err := tx.ReportRows(ctx, page)
		if err != nil {
			return out, q, err
		}
		for _, row := range rows {
			if !seen[row.UserID] && len(out.FirstUsers) < firstUsers {
				seen[row.UserID] = true
				out.FirstUsers = append(out.FirstUsers, usher.User{ID: row.UserID, Name: row.Name, Email: row.Email})
			}
		}
		if len(rows) < page.Limit {
			break
		}
		c := cursorOf(page.Sort, rows[len(rows)-1])
		page.After = &c
	}
	return out, q, nil
}

// freedReport is one page of the seats freed in the range (status
// unassigned), in name order.
func (s *Service) freedReport(ctx context.Context, tx Tx, a usher.Actor, q ReportQuery, acct usher.Account, today Day, rg Range) (Report, error) {
	loc := acct.Location()
	totals, err := tx.FreedTotals(ctx, q)
	if err != nil {
		return Report{}, err
	}
	totals.InactiveCost = []usher.Cost{}
	limit := q.Limit
	q.Limit = limit + 1
	raw, err := tx.FreedRows(ctx, q)
	if err != nil {
		return Report{}, err
	}
	out := Report{Range: rg, Cutoff: q.CutoffDay.Date(), AssignedBefore: q.AssignedBefore.In(loc), Today: today.Date(),
		Rows: make([]ReportRow, 0, len(raw)), Totals: totals}
	if len(raw) > limit {
		raw = raw[:limit]
		if out.NextCursor, err = s.cursors.Encode(ctx, reportCursorKind(q.Sort, q.Desc), a.AccountID, cursorOf(q.Sort, raw[limit-1])); err != nil {
			return Report{}, err
		}
	}
	for _, r := range raw {
		out.Rows = append(out.Rows, s.freedRow(r, rg, q, today, loc))
	}
	return out, nil
}

// freedRow is a seat freed in the range as a report row: what it was, with
// the day it was freed. It is no seat now, so it has no days inactive.
func (s *Service) freedRow(r RawRow, rg Range, q ReportQuery, today Day, loc *time.Location) ReportRow {
	r.AssignedAt = r.AssignedAt.In(loc)
	out := s.row(r, rg, q, today, loc)
	out.Status, out.Inactivity, out.StatusNote, out.DaysInactive = StatusUnassigned, "", "", nil
	d := DayOf(r.UnassignedAt, loc).Date()
	out.UnassignedAt = &d
	return out
}
