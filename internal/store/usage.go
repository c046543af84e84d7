package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// This file implements usage.Tx.

// Usage returns the store of the usage domain.
func (db *DB) Usage() usage.Store { return domainStore[usage.Tx]{db} }

var _ usage.Tx = (*Tx)(nil)

// HasSubscription reports whether the account has subscription id.
func (tx *Tx) HasSubscription(ctx context.Context, accountID, id int64) (bool, error) {
	var n int
	if err := tx.queryRow(ctx, "SELECT COUNT(*) FROM subscriptions WHERE account_id = ? AND id = ?", accountID, id).Scan(&n); err != nil {
		return false, fmt.Errorf("subscription %d: %w", id, err)
	}
	return n > 0, nil
}

// sqliteChunk bounds the rows of one multi-row INSERT on SQLite, whose
// statements take at most 32,766 parameters (6 per row at most here).
const sqliteChunk = 2000

// ProductIDs maps every catalog product code to its id.
func (tx *Tx) ProductIDs(ctx context.Context) (map[string]int64, error) {
	rows, err := tx.query(ctx, "SELECT code, id FROM products")
	if err != nil {
		return nil, fmt.Errorf("product ids: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var code string
		var id int64
		if err := rows.Scan(&code, &id); err != nil {
			return nil, fmt.Errorf("product ids: %w", err)
		}
		out[code] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("product ids: %w", err)
	}
	return out, nil
}

// UserIDs maps the given (normalised) emails to user ids in the account,
// served by the unique key (account_id, email).
func (tx *Tx) UserIDs(ctx context.Context, accountID int64, emails []string) (map[string]int64, error) {
	out := make(map[string]int64, len(emails))
	for chunk := range slices.Chunk(emails, 1000) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, accountID)
		for _, e := range chunk {
			args = append(args, e)
		}
		rows, err := tx.query(ctx, "SELECT email, id FROM users WHERE account_id = ? AND email IN ("+placeholders(len(chunk))+")", args...)
		if err != nil {
			return nil, fmt.Errorf("user ids: %w", err)
		}
		for rows.Next() {
			var e string
			var id int64
			if err := rows.Scan(&e, &id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("user ids: %w", err)
			}
			out[e] = id
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("user ids: %w", err)
		}
	}
	return out, nil
}

// InsertEvents stores the events not stored yet and returns those it stored.
// Rows go in key order, so two concurrent ingests on PostgreSQL take their
// unique-index locks in the same order and cannot deadlock.
func (tx *Tx) InsertEvents(ctx context.Context, accountID int64, events []usage.StoredEvent) ([]usage.StoredEvent, error) {
	type key struct{ u, p, at int64 }
	days := make(map[key]usage.Day, len(events))
	keys := make([]key, 0, len(events))
	for _, e := range events {
		k := key{e.UserID, e.ProductID, millis(e.At)}
		if _, ok := days[k]; !ok {
			keys = append(keys, k)
		}
		days[k] = e.Day
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.u, b.u), cmp.Compare(a.p, b.p), cmp.Compare(a.at, b.at))
	})
	out := make([]usage.StoredEvent, 0, len(keys))
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.u, &k.p, &k.at); err != nil {
				return err
			}
			out = append(out, usage.StoredEvent{UserID: k.u, ProductID: k.p, At: fromMillis(k.at), Day: days[k]})
		}
		return rows.Err()
	}
	if tx.engine == Postgres {
		// One statement per batch: the arrays travel as three parameters.
		us, ps, ats := make([]int64, len(keys)), make([]int64, len(keys)), make([]int64, len(keys))
		for i, k := range keys {
			us[i], ps[i], ats[i] = k.u, k.p, k.at
		}
		rows, err := tx.query(ctx, `
			INSERT INTO usage_events (account_id, user_id, product_id, at)
			SELECT ?, u, p, a FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS t (u, p, a)
			ON CONFLICT DO NOTHING
			RETURNING user_id, product_id, at`, accountID, us, ps, ats)
		if err == nil {
			err = scan(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("insert usage events: %w", err)
		}
		return out, nil
	}
	for chunk := range slices.Chunk(keys, sqliteChunk) {
		args := make([]any, 0, 4*len(chunk))
		for _, k := range chunk {
			args = append(args, accountID, k.u, k.p, k.at)
		}
		rows, err := tx.query(ctx, `
			INSERT INTO usage_events (account_id, user_id, product_id, at) VALUES `+valueRows(len(chunk), 4)+`
			ON CONFLICT DO NOTHING
			RETURNING user_id, product_id, at`, args...)
		if err == nil {
			err = scan(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("insert usage events: %w", err)
		}
	}
	return out, nil
}

// WriteEvents stores one ingest batch and what follows from it. On
// PostgreSQL the events go by COPY and the rest in one set-based statement
// (writeEventsPostgres), where the step by step path sends every event's
// key to the server and back. On SQLite, whose statements run in the
// process, it is the step by step path.
func (tx *Tx) WriteEvents(ctx context.Context, accountID int64, events []usage.StoredEvent) (usage.EventWrites, error) {
	var w usage.EventWrites
	if tx.engine != Postgres {
		stored, err := tx.insertEventsSQLite(ctx, accountID, events)
		if err != nil {
			return w, err
		}
		added, err := tx.AddDays(ctx, accountID, usage.UseDays(stored))
		if err != nil {
			return w, err
		}
		w.Events, w.Days = len(stored), len(added)
		if len(added) == 0 {
			return w, nil
		}
		if err := tx.AddToRollups(ctx, accountID, added); err != nil {
			return w, err
		}
		w.Rollups = usage.RollupRows(added)
		if w.Seats, err = tx.TouchSeats(ctx, accountID, usage.LatestUses(stored, added)); err != nil {
			return w, err
		}
		months, err := tx.addUserMonths(ctx, accountID, added)
		if err != nil {
			return w, err
		}
		w.Months = months.total()
		return w, tx.countMonths(ctx, accountID, months)
	}
	return tx.writeEventsPostgres(ctx, accountID, events)
}

// monthCounts are users new to a product in a month, by (month, product).
type monthCounts map[[2]int64]int

func (m monthCounts) total() int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// parseMonthCounts reads "product:month:users,…" as writeStagedEventsSQL
// returns it.
func parseMonthCounts(s string) (monthCounts, error) {
	out := monthCounts{}
	for part := range strings.SplitSeq(s, ",") {
		if part == "" {
			continue
		}
		var p, m int64
		var n int
		if _, err := fmt.Sscanf(part, "%d:%d:%d", &p, &m, &n); err != nil {
			return nil, fmt.Errorf("new months %q: %w", part, err)
		}
		out[[2]int64{m, p}] += n
	}
	return out, nil
}

// addUserMonths records the (user, product, month) of newly recorded days
// and counts those not recorded before, per month and product.
func (tx *Tx) addUserMonths(ctx context.Context, accountID int64, days []usage.UseDay) (monthCounts, error) {
	type um struct{ u, p, m int64 }
	seen := map[um]bool{}
	var ums []um
	for _, d := range days {
		k := um{d.UserID, d.ProductID, int64(d.Day.Month())}
		if !seen[k] {
			seen[k] = true
			ums = append(ums, k)
		}
	}
	out := monthCounts{}
	for chunk := range slices.Chunk(ums, sqliteChunk) {
		args := make([]any, 0, 4*len(chunk))
		for _, k := range chunk {
			args = append(args, accountID, k.u, k.p, k.m)
		}
		rows, err := tx.query(ctx, `
			INSERT INTO usage_user_months (account_id, user_id, product_id, month) VALUES `+valueRows(len(chunk), 4)+`
			ON CONFLICT DO NOTHING
			RETURNING product_id, month`, args...)
		if err != nil {
			return nil, fmt.Errorf("add usage months: %w", err)
		}
		for rows.Next() {
			var p, m int64
			if err := rows.Scan(&p, &m); err != nil {
				rows.Close()
				return nil, fmt.Errorf("add usage months: %w", err)
			}
			out[[2]int64{m, p}]++
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("add usage months: %w", err)
		}
	}
	return out, nil
}

// countMonths adds users new to a product in a month to the dashboard's
// monthly counts, in key order so that concurrent ingests of one account
// lock the same rows in the same order. It runs last in the ingest's
// transaction, so those locks are held only until its commit.
func (tx *Tx) countMonths(ctx context.Context, accountID int64, counts monthCounts) error {
	if len(counts) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b [2]int64) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	args := make([]any, 0, 4*len(keys))
	for _, k := range keys {
		args = append(args, accountID, k[0], k[1], counts[k])
	}
	_, err := tx.exec(ctx, `
		INSERT INTO usage_months (account_id, month, product_id, users) VALUES `+valueRows(len(keys), 4)+`
		ON CONFLICT (account_id, month, product_id) DO UPDATE SET users = usage_months.users + excluded.users`, args...)
	if err != nil {
		return fmt.Errorf("count usage months: %w", err)
	}
	return nil
}

// AddDays records days with use and returns those not recorded before.
func (tx *Tx) AddDays(ctx context.Context, accountID int64, days []usage.UseDay) ([]usage.UseDay, error) {
	days = slices.Clone(days)
	slices.SortFunc(days, compareUseDays)
	days = slices.Compact(days)
	out := make([]usage.UseDay, 0, len(days))
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var d usage.UseDay
			if err := rows.Scan(&d.UserID, &d.ProductID, &d.Day); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	}
	if tx.engine == Postgres {
		us, ps, ds := make([]int64, len(days)), make([]int64, len(days)), make([]int64, len(days))
		for i, d := range days {
			us[i], ps[i], ds[i] = d.UserID, d.ProductID, int64(d.Day)
		}
		rows, err := tx.query(ctx, `
			INSERT INTO usage_days (account_id, user_id, product_id, day)
			SELECT ?, u, p, d FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS t (u, p, d)
			ON CONFLICT DO NOTHING
			RETURNING user_id, product_id, day`, accountID, us, ps, ds)
		if err == nil {
			err = scan(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("add usage days: %w", err)
		}
		return out, nil
	}
	for chunk := range slices.Chunk(days, sqliteChunk) {
		args := make([]any, 0, 4*len(chunk))
		for _, d := range chunk {
			args = append(args, accountID, d.UserID, d.ProductID, int64(d.Day))
		}
		rows, err := tx.query(ctx, `
			INSERT INTO usage_days (account_id, user_id, product_id, day) VALUES `+valueRows(len(chunk), 4)+`
			ON CONFLICT DO NOTHING
			RETURNING user_id, product_id, day`, args...)
		if err == nil {
			err = scan(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("add usage days: %w", err)
		}
	}
	return out, nil
}

func compareUseDays(a, b usage.UseDay) int {
	return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.ProductID, b.ProductID), cmp.Compare(a.Day, b.Day))
}

// AddToRollups folds newly recorded days into the rollups: one upsert per
// (user, product) among days, however many days it gained. Callers pass only
// days AddDays reported as new, so days stays a count of distinct days.
func (tx *Tx) AddToRollups(ctx context.Context, accountID int64, days []usage.UseDay) error {
	type rollup struct {
		u, p        int64
		first, last usage.Day
		n           int64
	}
	days = slices.Clone(days)
	slices.SortFunc(days, compareUseDays)
	days = slices.Compact(days)
	var rs []rollup
	for _, d := range days {
		if n := len(rs); n > 0 && rs[n-1].u == d.UserID && rs[n-1].p == d.ProductID {
			rs[n-1].last = d.Day // days are sorted
			rs[n-1].n++
			continue
		}
		rs = append(rs, rollup{u: d.UserID, p: d.ProductID, first: d.Day, last: d.Day, n: 1})
	}
	const upsert = `
		ON CONFLICT (account_id, user_id, product_id) DO UPDATE SET
			first_day = CASE WHEN excluded.first_day < usage_rollups.first_day THEN excluded.first_day ELSE usage_rollups.first_day END,
			last_day  = CASE WHEN excluded.last_day > usage_rollups.last_day THEN excluded.last_day ELSE usage_rollups.last_day END,
			days      = usage_rollups.days + excluded.days`
	if tx.engine == Postgres {
		us, ps, fs, ls, ns := make([]int64, len(rs)), make([]int64, len(rs)), make([]int64, len(rs)), make([]int64, len(rs)), make([]int64, len(rs))
		for i, r := range rs {
			us[i], ps[i], fs[i], ls[i], ns[i] = r.u, r.p, int64(r.first), int64(r.last), r.n
		}
		_, err := tx.exec(ctx, `
			INSERT INTO usage_rollups (account_id, user_id, product_id, first_day, last_day, days)
			SELECT ?, u, p, f, l, n FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[]) AS t (u, p, f, l, n)`+
			upsert, accountID, us, ps, fs, ls, ns)
		if err != nil {
			return fmt.Errorf("update usage rollups: %w", err)
		}
		return nil
	}
	for chunk := range slices.Chunk(rs, sqliteChunk) {
		args := make([]any, 0, 6*len(chunk))
		for _, r := range chunk {
			args = append(args, accountID, r.u, r.p, int64(r.first), int64(r.last), r.n)
		}
		_, err := tx.exec(ctx, `
			INSERT INTO usage_rollups (account_id, user_id, product_id, first_day, last_day, days)
			VALUES `+valueRows(len(chunk), 6)+upsert, args...)
		if err != nil {
			return fmt.Errorf("update usage rollups: %w", err)
		}
	}
	return nil
}

// TouchSeats moves assignments.last_used_at forward for the seats of each
// (user, product) in uses, in key order so concurrent ingests lock seats in
// the same order.
func (tx *Tx) TouchSeats(ctx context.Context, accountID int64, uses []usage.SeatUse) (int64, error) {
	uses = slices.Clone(uses)
	slices.SortFunc(uses, func(a, b usage.SeatUse) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.ProductID, b.ProductID))
	})
	if tx.engine == Postgres {
		us, ps, ats := make([]int64, len(uses)), make([]int64, len(uses)), make([]int64, len(uses))
		for i, u := range uses {
			us[i], ps[i], ats[i] = u.UserID, u.ProductID, millis(u.At)
		}
		// The seats are locked in the one global order (subscription,
		// user) before they are updated, as a bulk unassign locks them: an
		// UPDATE … FROM locks rows in whatever order its plan meets them.
		n, err := affected(tx.exec(ctx, `
			WITH target AS (
				SELECT a.user_id, a.subscription_id, t.at
				FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS t (u, p, at)
				JOIN subscriptions s ON s.account_id = ? AND s.product_id = t.p
				JOIN assignments a ON a.account_id = s.account_id AND a.subscription_id = s.id AND a.user_id = t.u
				WHERE a.last_used_at < t.at
				ORDER BY a.subscription_id, a.user_id
				FOR NO KEY UPDATE OF a)
			UPDATE assignments a SET last_used_at = target.at FROM target
			WHERE a.account_id = ? AND a.subscription_id = target.subscription_id AND a.user_id = target.user_id
			  AND a.last_used_at < target.at`,
			us, ps, ats, accountID, accountID))
		if err != nil {
			return 0, fmt.Errorf("touch seats: %w", err)
		}
		return n, nil
	}
	// One statement per chunk: compiling an UPDATE per seat cost SQLite
	// more than the updates themselves.
	var total int64
	for chunk := range slices.Chunk(uses, sqliteChunk) {
		args := make([]any, 0, 3*len(chunk)+2)
		for _, u := range chunk {
			args = append(args, u.UserID, u.ProductID, millis(u.At))
		}
		args = append(args, accountID, accountID)
		n, err := affected(tx.exec(ctx, `
			WITH t (u, p, at) AS (VALUES `+valueRows(len(chunk), 3)+`)
			UPDATE assignments SET last_used_at = t.at
			FROM t JOIN subscriptions s ON s.product_id = t.p
			WHERE s.account_id = ? AND assignments.account_id = ? AND assignments.user_id = t.u
			  AND assignments.subscription_id = s.id AND assignments.last_used_at < t.at`, args...))
		if err != nil {
			return 0, fmt.Errorf("touch seats: %w", err)
		}
		total += n
	}
	return total, nil
}

// SetProcessedAt records when usage was last processed for the account.
func (tx *Tx) SetProcessedAt(ctx context.Context, accountID int64, at time.Time) error {
	_, err := tx.exec(ctx, `
		INSERT INTO usage_processed (account_id, processed_at) VALUES (?, ?)
		ON CONFLICT (account_id) DO UPDATE SET processed_at = excluded.processed_at`,
		accountID, millis(at))
	if err != nil {
		return fmt.Errorf("set usage processed time: %w", err)
	}
	tx.markChanged(accountID)
	return nil
}

// ProcessedAt is when usage was last processed for the account; nil if never.
func (tx *Tx) ProcessedAt(ctx context.Context, accountID int64) (*time.Time, error) {
	var ms int64
	err := tx.queryRow(ctx, "SELECT processed_at FROM usage_processed WHERE account_id = ?", accountID).Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil //nolint:nilnil // never processed is a valid answer, documented on usage.Tx
	} else if err != nil {
		return nil, fmt.Errorf("usage processed time: %w", err)
	}
	t := fromMillis(ms)
	return &t, nil
}

// pruneEventsSQL deletes the oldest events before a time, at most a limit
// of them: neither engine has a portable DELETE … LIMIT.
const pruneEventsSQL = `
	DELETE FROM usage_events WHERE (account_id, user_id, product_id, at) IN (
		SELECT account_id, user_id, product_id, at FROM usage_events
		WHERE at < ? ORDER BY at LIMIT ?)`

// PruneEvents deletes at most limit raw events older than before, oldest
// first, through usage_events_by_at. Days and rollups stay.
func (tx *Tx) PruneEvents(ctx context.Context, before time.Time, limit int) (int64, error) {
	n, err := affected(tx.exec(ctx, pruneEventsSQL, millis(before), limit))
	if err != nil {
		return 0, fmt.Errorf("prune usage events: %w", err)
	}
	return n, nil
}

// ---- the Usage Report ----

// usagePlanList is the SQL list of plans that carry usage data, taken from
// usher.Plan.HasUsageData so that the rule has one definition.
var usagePlanList = func() string {
	var q []string
	for _, p := range usher.Plans {
		if p.HasUsageData() {
			q = append(q, "'"+string(p)+"'")
		}
	}
	return strings.Join(q, ", ")
}()

// reportWhere returns the FROM and WHERE clauses of the report's queries:
// the seats (assignments) matching everything in q but the keyset position
// and the limit. The query is flat, so each engine can walk an index in the
// report's order and stop at the page's end; a seat's status is decided from
// its own row (plan, assigned_at, last_used_at), never from a derived table.
//
// withRows adds what the rows show: the user, the product and the rollup;
// withProduct the product alone. walkUsers makes SQLite start from users in
// name order (CROSS JOIN fixes its join order), for pages in name order of a
// filter that matches many seats: the page is then found by walking an
// index and stopping, not by sorting every match. PostgreSQL's planner makes
// that choice itself from its statistics.
func (tx *Tx) reportWhere(q usage.ReportQuery, withRows, withProduct, walkUsers bool) (string, []any) {
	var b strings.Builder
	var args []any
	switch {
	case walkUsers && tx.engine == SQLite:
		b.WriteString(`
		FROM users u
		CROSS JOIN assignments a
		JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id`)
	case withRows || q.Query != "":
		b.WriteString(`
		FROM assignments a
		JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id
		JOIN users u ON u.account_id = a.account_id AND u.id = a.user_id`)
	default:
		b.WriteString(`
		FROM assignments a
		JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id`)
	}
	if withRows || withProduct || q.ProductCode != "" {
		b.WriteString(`
		JOIN products p ON p.id = s.product_id`)
	}
	if withRows {
		b.WriteString(`
		LEFT JOIN usage_rollups r ON r.account_id = a.account_id AND r.user_id = a.user_id AND r.product_id = s.product_id`)
	}
	b.WriteString(`
		WHERE a.account_id = ?`)
	args = append(args, q.AccountID)
	if walkUsers && tx.engine == SQLite {
		b.WriteString(" AND u.account_id = a.account_id AND u.id = a.user_id")
	}
	if q.SubscriptionIDs != nil {
		if len(q.SubscriptionIDs) == 0 {
			b.WriteString(" AND 1 = 0")
		} else {
			b.WriteString(" AND a.subscription_id IN (" + placeholders(len(q.SubscriptionIDs)) + ")")
			args = append(args, int64Args(q.SubscriptionIDs)...)
		}
	}
	if q.SubscriptionID != 0 {
		b.WriteString(" AND a.subscription_id = ?")
		args = append(args, q.SubscriptionID)
	}
	if q.ProductCode != "" {
		b.WriteString(" AND p.code = ?")
		args = append(args, q.ProductCode)
	}
	if q.Query != "" {
		b.WriteString(` AND (u.name_key LIKE ? ESCAPE '\' OR lower(u.email) LIKE ? ESCAPE '\')`)
		pattern := "%" + escapeLike(strings.ToLower(q.Query)) + "%"
		args = append(args, pattern, pattern)
	}
	switch q.Status {
	case string(usage.StatusInactive):
		b.WriteString(" AND " + inactiveSeat)
		args = append(args, millis(q.CutoffAt), millis(q.AssignedBefore))
	case string(usage.NeverUsed):
		b.WriteString(" AND " + inactiveSeat + " AND " + neverUsedSeat)
		args = append(args, millis(q.CutoffAt), millis(q.AssignedBefore))
	case string(usage.StoppedUsing):
		b.WriteString(" AND " + inactiveSeat + " AND NOT " + neverUsedSeat)
		args = append(args, millis(q.CutoffAt), millis(q.AssignedBefore))
	case string(usage.StatusActive):
		b.WriteString(" AND s.plan IN (" + usagePlanList + ") AND (a.last_used_at >= ? OR a.assigned_at >= ?)")
		args = append(args, millis(q.CutoffAt), millis(q.AssignedBefore))
	case string(usage.StatusUnavailable):
		b.WriteString(" AND s.plan NOT IN (" + usagePlanList + ")")
	}
	return b.String(), args
}

// inactiveSeat is usage.Classify in SQL, with the range's first midnight
// and the assignment cutoff (usage.Cutoffs) as its parameters: a seat with
// usage data whose last use and assignment both fall before them. A last
// use before that midnight is a last day before the cutoff day, as days are
// days of the account's zone.
var inactiveSeat = "(s.plan IN (" + usagePlanList + ") AND a.last_used_at < ? AND a.assigned_at < ?)"

// neverUsedSeat tells an inactive seat never used since its assignment
// (last_used_at is 0 then, or older than the assignment) from one that
// stopped being used: a predicate on the seat row, like inactiveSeat.
const neverUsedSeat = "(a.last_used_at < a.assigned_at)"

// daysUsedSQL counts the seat's days of use in the range by a key range of
// usage_days; its parameter is the cutoff day.
const daysUsedSQL = `(SELECT COUNT(*) FROM usage_days d
		 WHERE d.account_id = a.account_id AND d.user_id = a.user_id AND d.product_id = s.product_id AND d.day >= ?)`

// reportSortKey is the SQL expression of each sort order and whether it
// takes the cutoff day as a parameter; cursorOf in the usage service builds
// the same keys from rows. PostgreSQL compares the text keys bytewise
// (COLLATE "C"), as SQLite does and as the cursors expect.
func (tx *Tx) reportSortKey(sort string) (string, bool) {
	collate := ""
	if tx.engine == Postgres {
		collate = ` COLLATE "C"`
	}
	switch sort {
	case "email":
		return "u.email" + collate, false
	case "product":
		return "p.code" + collate, false
	case "last_used":
		return "COALESCE(r.last_day, -1)", false
	case "days_used":
		return daysUsedSQL, true
	}
	return "u.name_key", false // COLLATE "C" in its column definition
}

// walkInNameOrder tells whether a page in name order is found faster by
// walking users in name order than by sorting every match: when the filter
// matches many rows, so that a page's worth turns up among the first users.
func walkInNameOrder(q usage.ReportQuery) bool {
	return q.Sort == "name" && q.Limit > 0 && q.Matching >= 20*q.Limit
}

// reportQuery is the query of the report's rows. withVersion adds the
// account's data version as a last column (ReportRowsAt).
func (tx *Tx) reportQuery(q usage.ReportQuery, withVersion bool) (string, []any) {
	var b strings.Builder
	args := []any{int64(q.CutoffDay)}
	b.WriteString(`SELECT a.user_id, u.name, u.email, p.code, p.name, s.id, s.contract_number, s.plan, a.assigned_at, r.last_day,
		a.last_used_at, ` + daysUsedSQL + `, a.direct, ` + tx.seatGroupsSQL())
	if withVersion {
		b.WriteString(`, (SELECT v.data_version FROM accounts v WHERE v.id = ?)`)
		args = append(args, q.AccountID)
	}
	from, fromArgs := tx.reportWhere(q, true, true, walkInNameOrder(q))
	b.WriteString(from)
	args = append(args, fromArgs...)
	key, keyArg := tx.reportSortKey(q.Sort)
	dir, cmpOp := "", ">"
	if q.Desc {
		dir, cmpOp = " DESC", "<"
	}
	if c := q.After; c != nil {
		b.WriteString(" AND (" + key + ", a.user_id, a.subscription_id) " + cmpOp + " (?, ?, ?)")
		if keyArg {
			args = append(args, int64(q.CutoffDay))
		}
		switch q.Sort {
		case "last_used", "days_used":
			args = append(args, c.Num)
		default:
			args = append(args, c.Key)
		}
		args = append(args, c.UserID, c.SubscriptionID)
	}
	b.WriteString(" ORDER BY " + key + dir + ", a.user_id" + dir + ", a.subscription_id" + dir)
	if keyArg {
		args = append(args, int64(q.CutoffDay))
	}
	if q.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, q.Limit)
	}
	return b.String(), args
}

// seatGroupsSQL lists the groups a seat comes through as "id:name" items
// separated by the unit separator (names are free text), by the primary key
// of seat_group_sources.
func (tx *Tx) seatGroupsSQL() string {
	agg := "group_concat(CAST(g.id AS TEXT) || ':' || g.name, char(31))"
	if tx.engine == Postgres {
		agg = "string_agg(CAST(g.id AS TEXT) || ':' || g.name, chr(31) ORDER BY g.id)"
	}
	return `(SELECT ` + agg + ` FROM seat_group_sources gs
		 JOIN user_groups g ON g.account_id = gs.account_id AND g.id = gs.group_id
		 WHERE gs.account_id = a.account_id AND gs.user_id = a.user_id AND gs.subscription_id = a.subscription_id)`
}

// parseSeatGroups reads what seatGroupsSQL lists.
func parseSeatGroups(s sql.NullString) []usher.SeatSource {
	if !s.Valid || s.String == "" {
		return nil
	}
	var out []usher.SeatSource
	for _, item := range strings.Split(s.String, "\x1f") {
		id, name, _ := strings.Cut(item, ":")
		n, _ := strconv.ParseInt(id, 10, 64)
		out = append(out, usher.SeatSource{GroupID: n, GroupName: name})
	}
	slices.SortFunc(out, func(a, b usher.SeatSource) int { return cmp.Compare(a.GroupID, b.GroupID) })
	return out
}

func scanRawRow(row interface{ Scan(...any) error }) (usage.RawRow, error) {
	return scanRawRowWith(row)
}

// scanRawRowWith scans a row of reportQuery, with extra columns after it.
func scanRawRowWith(row interface{ Scan(...any) error }, extra ...any) (usage.RawRow, error) {
	var r usage.RawRow
	var assigned, lastUsed int64
	var last sql.NullInt64
	var groups sql.NullString
	err := row.Scan(append([]any{&r.UserID, &r.Name, &r.Email, &r.ProductCode, &r.ProductName, &r.SubscriptionID,
		&r.ContractNumber, &r.Plan, &assigned, &last, &lastUsed, &r.DaysUsed, &r.Direct, &groups}, extra...)...)
	r.AssignedAt, r.LastUsedAt = fromMillis(assigned), fromMillis(lastUsed)
	r.Groups = parseSeatGroups(groups)
	if last.Valid {
		d := usage.Day(last.Int64)
		r.LastDay = &d
	}
	return r, err
}

// ReportRowsAt is ReportRows reading the account's data version in the
// same statement: same is false when it is no longer version, or when no
// row matched (nothing to read it from).
func (tx *Tx) ReportRowsAt(ctx context.Context, q usage.ReportQuery, version string) (out []usage.RawRow, same bool, err error) {
	want, err := strconv.ParseInt(version, 10, 64)
	if err != nil {
		return nil, false, fmt.Errorf("usage report rows: version %q: %w", version, err)
	}
	query, args := tx.reportQuery(q, true)
	rows, err := tx.query(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("usage report rows: %w", err)
	}
	var got int64
	out, err = collect(rows, func(row interface{ Scan(...any) error }) (usage.RawRow, error) {
		return scanRawRowWith(row, &got)
	})
	if err != nil {
		return nil, false, fmt.Errorf("usage report rows: %w", err)
	}
	return out, len(out) > 0 && got == want, nil
}

// ReportAccount is AccountByID and ReportVersion in one statement.
func (tx *Tx) ReportAccount(ctx context.Context, id int64) (usher.Account, string, *time.Time, error) {
	var version, processed int64
	var a usher.Account
	var created int64
	err := tx.queryRow(ctx, `
		SELECT a.id, a.name, a.time_zone, a.new_seat_grace_days, a.created_at, a.data_version,
		       COALESCE((SELECT processed_at FROM usage_processed p WHERE p.account_id = a.id), 0)
		FROM accounts a WHERE a.id = ?`, id).Scan(&a.ID, &a.Name, &a.TimeZone, &a.NewSeatGraceDays, &created, &version, &processed)
	if errors.Is(err, sql.ErrNoRows) {
		return a, "", nil, usher.Errorf(usher.ENOTFOUND, "account %d not found", id)
	} else if err != nil {
		return a, "", nil, fmt.Errorf("get account %d: %w", id, err)
	}
	a.CreatedAt = fromMillis(created)
	var at *time.Time
	if processed != 0 {
		t := fromMillis(processed)
		at = &t
	}
	return a, strconv.FormatInt(version, 10), at, nil
}

// TokenReportAccount is TokenHolder and ReportAccount of the token's
// account in one statement: the report's first read, for a request with a
// bearer token, authenticates it too. It answers usher.ENOTFOUND when no
// token has the hash.
func (tx *Tx) TokenReportAccount(ctx context.Context, hash []byte) (access.TokenHolder, usher.Account, string, *time.Time, error) {
	var h access.TokenHolder
	var a usher.Account
	var grants sql.NullString
	var tokenCreated, created, version, processed int64
	var used, expires sql.NullInt64
	t := &h.Token
	err := tx.queryRow(ctx, "SELECT "+tokenColumns+", u.status, (SELECT "+grantsAgg(tx.engine)+` FROM role_grants g
		WHERE g.account_id = t.account_id AND g.user_id = t.user_id),
		a.id, a.name, a.time_zone, a.new_seat_grace_days, a.created_at, a.data_version,
		COALESCE((SELECT processed_at FROM usage_processed p WHERE p.account_id = a.id), 0)`+tokenFrom+
		"JOIN accounts a ON a.id = t.account_id WHERE t.hash = ?", hash).
		Scan(&t.ID, &t.AccountID, &t.UserID, &t.UserEmail, &t.Name, &t.Scope, &t.Hash, &tokenCreated, &used, &expires, &h.Status, &grants,
			&a.ID, &a.Name, &a.TimeZone, &a.NewSeatGraceDays, &created, &version, &processed)
	if errors.Is(err, sql.ErrNoRows) {
		return h, a, "", nil, usher.Errorf(usher.ENOTFOUND, "token not found")
	} else if err != nil {
		return h, a, "", nil, fmt.Errorf("get token and account: %w", err)
	}
	t.CreatedAt = fromMillis(tokenCreated)
	t.LastUsedAt, t.ExpiresAt = timeOrNil(used), timeOrNil(expires)
	if h.Grants, err = parseGrants(t.UserID, grants); err != nil {
		return h, a, "", nil, fmt.Errorf("get token: %w", err)
	}
	a.CreatedAt = fromMillis(created)
	var at *time.Time
	if processed != 0 {
		pt := fromMillis(processed)
		at = &pt
	}
	return h, a, strconv.FormatInt(version, 10), at, nil
}

// ReportRows returns the rows matching q in q's order, at most q.Limit.
func (tx *Tx) ReportRows(ctx context.Context, q usage.ReportQuery) ([]usage.RawRow, error) {
	query, args := tx.reportQuery(q, false)
	rows, err := tx.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("usage report rows: %w", err)
	}
	out, err := collect(rows, scanRawRow)
	if err != nil {
		return nil, fmt.Errorf("usage report rows: %w", err)
	}
	return out, nil
}

// EachReportRow streams every row matching q in q's order without holding
// them all.
func (tx *Tx) EachReportRow(ctx context.Context, q usage.ReportQuery, fn func(usage.RawRow) error) error {
	query, args := tx.reportQuery(q, false)
	rows, err := tx.query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("usage report rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRawRow(rows)
		if err != nil {
			return fmt.Errorf("usage report rows: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("usage report rows: %w", err)
	}
	return nil
}

// ReportVersion is the account's data version, which every committed change
// of users, seats and usage moves on in commit order (see Tx.bumpVersions),
// and the time usage was last processed, which the report shows.
func (tx *Tx) ReportVersion(ctx context.Context, accountID int64) (string, *time.Time, error) {
	var version, processed int64
	err := tx.queryRow(ctx, `
		SELECT a.data_version, COALESCE((SELECT processed_at FROM usage_processed p WHERE p.account_id = a.id), 0)
		FROM accounts a WHERE a.id = ?`, accountID).Scan(&version, &processed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, usher.Errorf(usher.ENOTFOUND, "account %d not found", accountID)
	} else if err != nil {
		return "", nil, fmt.Errorf("usage report version: %w", err)
	}
	var at *time.Time
	if processed != 0 {
		t := fromMillis(processed)
		at = &t
	}
	return strconv.FormatInt(version, 10), at, nil
}

// reportTotalsQuery counts the seats and users matching q, and the inactive
// ones among them, ignoring its position and limit.
func (tx *Tx) reportTotalsQuery(q usage.ReportQuery) (string, []any) {
	from, args := tx.reportWhere(q, false, false, false)
	c := []any{millis(q.CutoffAt), millis(q.AssignedBefore)}
	args = append(slices.Concat(c, c, c, c), args...)
	return `
		SELECT COUNT(*), COUNT(DISTINCT a.user_id),
		       COALESCE(SUM(CASE WHEN ` + inactiveSeat + ` THEN 1 ELSE 0 END), 0),
		       COUNT(DISTINCT CASE WHEN ` + inactiveSeat + ` THEN a.user_id END),
		       COALESCE(SUM(CASE WHEN ` + inactiveSeat + ` AND ` + neverUsedSeat + ` THEN 1 ELSE 0 END), 0),
		       COALESCE(SUM(CASE WHEN ` + inactiveSeat + ` AND NOT ` + neverUsedSeat + ` THEN 1 ELSE 0 END), 0)` + from, args
}

// inactiveCostQuery sums the yearly price of the inactive seats matching q,
// per currency, over the totals' FROM and WHERE.
func (tx *Tx) inactiveCostQuery(q usage.ReportQuery) (string, []any) {
	from, args := tx.reportWhere(q, false, false, false)
	args = append(args, millis(q.CutoffAt), millis(q.AssignedBefore))
	return `
		SELECT s.currency, COUNT(*), SUM(s.price_cents)` + from + ` AND ` + inactiveSeat + ` AND s.currency <> ''
		GROUP BY s.currency ORDER BY s.currency`, args
}

// ReportTotals counts all rows matching q, ignoring its position and limit,
// and what the inactive seats among them cost per year, per currency.
func (tx *Tx) ReportTotals(ctx context.Context, q usage.ReportQuery) (usage.ReportTotals, error) {
	query, args := tx.reportTotalsQuery(q)
	var t usage.ReportTotals
	if err := tx.queryRow(ctx, query, args...).Scan(&t.Seats, &t.Users, &t.InactiveSeats, &t.InactiveUsers,
		&t.NeverUsedSeats, &t.StoppedUsingSeats); err != nil {
		return t, fmt.Errorf("usage report totals: %w", err)
	}
	t.InactiveCost = []usher.Cost{}
	if t.InactiveSeats == 0 {
		return t, nil
	}
	cq, args := tx.inactiveCostQuery(q)
	rows, err := tx.query(ctx, cq, args...)
	if err != nil {
		return t, fmt.Errorf("usage report cost: %w", err)
	}
	t.InactiveCost, err = collect(rows, func(row interface{ Scan(...any) error }) (usher.Cost, error) {
		var c usher.Cost
		err := row.Scan(&c.Currency, &c.Seats, &c.Cents)
		return c, err
	})
	if err != nil {
		return t, fmt.Errorf("usage report cost: %w", err)
	}
	return t, nil
}

// InactiveByProduct counts inactive seats and users per product for q, by
// product code.
func (tx *Tx) InactiveByProduct(ctx context.Context, q usage.ReportQuery) ([]usage.ProductSummary, error) {
	q.Status = string(usage.StatusInactive)
	from, args := tx.reportWhere(q, false, true, false)
	rows, err := tx.query(ctx, `
		SELECT p.code, p.name, COUNT(*), COUNT(DISTINCT a.user_id)`+from+`
		GROUP BY p.code, p.name
		ORDER BY p.code`, args...)
	if err != nil {
		return nil, fmt.Errorf("inactive by product: %w", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (usage.ProductSummary, error) {
		var s usage.ProductSummary
		err := row.Scan(&s.Product, &s.ProductName, &s.InactiveSeats, &s.InactiveUsers)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("inactive by product: %w", err)
	}
	return out, nil
}
