package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// snapshotChunk is how many seats one INSERT of a snapshot carries: 8
// parameters each, well inside both engines' limits.
const snapshotChunk = 500

// InsertSnapshot records s and its seats, unless the email or run has a
// snapshot already. ON CONFLICT DO NOTHING, not a caught unique violation:
// on PostgreSQL a failed statement would abort the transaction that records
// the email or run with it.
func (tx *Tx) InsertSnapshot(ctx context.Context, s *usage.Snapshot) error {
	if tx.engine == Postgres && len(s.Seats) <= snapshotChunk {
		return tx.insertSmallSnapshot(ctx, s)
	}
	var id int64
	err := tx.queryRow(ctx, `
		INSERT INTO snapshots (account_id, kind, source_id, inactive_range, taken_at, seats, users)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, source_id) DO NOTHING
		RETURNING id`,
		s.AccountID, string(s.Kind), s.SourceID, string(s.Range), millis(s.TakenAt), s.SeatCount, s.UserCount).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("insert snapshot %s: %w", s.ID, err)
	}
	if tx.engine == Postgres {
		return tx.copySnapshotSeats(ctx, id, s)
	}
	for start := 0; start < len(s.Seats); start += snapshotChunk {
		part := s.Seats[start:min(start+snapshotChunk, len(s.Seats))]
		var b strings.Builder
		b.WriteString(`INSERT INTO snapshot_seats (snapshot_id, user_id, subscription_id, email, assigned_at, last_used_at, inactivity, action) VALUES `)
		args := make([]any, 0, 8*len(part))
		for i, st := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, id, st.UserID, st.SubscriptionID, st.Email, millis(st.AssignedAt), millis(st.LastUsedAt), string(st.Inactivity), st.Action)
		}
		// A seat listed twice (a plan names each seat once; this only
		// guards the key) is kept once.
		b.WriteString(" ON CONFLICT (snapshot_id, user_id, subscription_id) DO NOTHING")
		if _, err := tx.exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("insert snapshot %s seats: %w", s.ID, err)
		}
	}
	return nil
}

// insertSmallSnapshot records a snapshot and its seats on PostgreSQL in
// one statement: an email's snapshot holds a few seats, and it is recorded
// in the transaction that claims the next email, where the round trips and
// the COPY protocol's messages of a separate seat insert cost more than
// the rows. The seats go as one array per column; when the snapshot exists
// already, the CTE returns no id and no seat is inserted.
func (tx *Tx) insertSmallSnapshot(ctx context.Context, s *usage.Snapshot) error {
	n := len(s.Seats)
	users, subs, assigned, used := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	emails, inactivity, actions := make([]string, n), make([]string, n), make([]string, n)
	for i, st := range s.Seats {
		users[i], subs[i], emails[i] = st.UserID, st.SubscriptionID, st.Email
		assigned[i], used[i], inactivity[i], actions[i] = millis(st.AssignedAt), millis(st.LastUsedAt), string(st.Inactivity), st.Action
	}
	_, err := tx.exec(ctx, `
		WITH s AS (
			INSERT INTO snapshots (account_id, kind, source_id, inactive_range, taken_at, seats, users)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (kind, source_id) DO NOTHING
			RETURNING id
		)
		INSERT INTO snapshot_seats (snapshot_id, user_id, subscription_id, email, assigned_at, last_used_at, inactivity, action)
		SELECT s.id, v.user_id, v.subscription_id, v.email, v.assigned_at, v.last_used_at, v.inactivity, v.action
		FROM s, unnest(?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::text[])
			AS v (user_id, subscription_id, email, assigned_at, last_used_at, inactivity, action)
		ON CONFLICT (snapshot_id, user_id, subscription_id) DO NOTHING`,
		s.AccountID, string(s.Kind), s.SourceID, string(s.Range), millis(s.TakenAt), s.SeatCount, s.UserCount,
		users, subs, emails, assigned, used, inactivity, actions)
	if err != nil {
		return fmt.Errorf("insert snapshot %s: %w", s.ID, err)
	}
	return nil
}

// copySnapshotSeats hands a snapshot's seats to PostgreSQL with COPY: a
// snapshot of 30,000 seats is recorded in the transaction that records an
// email, which should not hold its locks for long. COPY has no ON CONFLICT,
// so a seat listed twice is dropped here.
func (tx *Tx) copySnapshotSeats(ctx context.Context, id int64, s *usage.Snapshot) error {
	type key struct{ u, sub int64 }
	seen := make(map[key]bool, len(s.Seats))
	seats := make([]usage.SnapshotSeat, 0, len(s.Seats))
	for _, st := range s.Seats {
		if k := (key{st.UserID, st.SubscriptionID}); !seen[k] {
			seen[k] = true
			seats = append(seats, st)
		}
	}
	row := make([]any, 8)
	_, err := tx.copyFrom(ctx, pgx.Identifier{"snapshot_seats"},
		[]string{"snapshot_id", "user_id", "subscription_id", "email", "assigned_at", "last_used_at", "inactivity", "action"},
		pgx.CopyFromSlice(len(seats), func(i int) ([]any, error) {
			st := seats[i]
			row[0], row[1], row[2], row[3] = id, st.UserID, st.SubscriptionID, st.Email
			row[4], row[5], row[6], row[7] = millis(st.AssignedAt), millis(st.LastUsedAt), string(st.Inactivity), st.Action
			return row, nil
		}))
	if err != nil {
		return fmt.Errorf("copy snapshot %s seats: %w", s.ID, err)
	}
	return nil
}

// SnapshotByID returns the account's snapshot of an email or run, by the
// unique key (kind, source_id).
func (tx *Tx) SnapshotByID(ctx context.Context, accountID int64, kind usage.SnapshotKind, sourceID int64) (usage.Snapshot, int64, error) {
	s := usage.Snapshot{AccountID: accountID, Kind: kind, SourceID: sourceID, ID: usage.SnapshotID(kind, sourceID)}
	var key, taken int64
	var rg string
	err := tx.queryRow(ctx, `
		SELECT id, inactive_range, taken_at, seats, users FROM snapshots
		WHERE kind = ? AND source_id = ? AND account_id = ?`, string(kind), sourceID, accountID).Scan(&key, &rg, &taken, &s.SeatCount, &s.UserCount)
	if errors.Is(err, sql.ErrNoRows) {
		return s, 0, usher.Errorf(usher.ENOTFOUND, "snapshot %s not found", s.ID)
	} else if err != nil {
		return s, 0, fmt.Errorf("snapshot %s: %w", s.ID, err)
	}
	s.Range, s.TakenAt = usage.Range(rg), fromMillis(taken)
	return s, key, nil
}

// snapshotSortSQL is a snapshot row's place in name order: the user's name
// key, or the lower-cased email kept in the snapshot once the user is gone.
// usage.snapshotSortKey builds the same key for cursors.
func (tx *Tx) snapshotSortSQL() string {
	if tx.engine == Postgres {
		return `(COALESCE(u.name_key, lower(ss.email)) COLLATE "C")`
	}
	return `COALESCE(u.name_key, lower(ss.email))`
}

// snapshotWhere joins a snapshot's seats to the people, contracts and seats
// now, through the primary keys of users, subscriptions and assignments.
func (tx *Tx) snapshotWhere(q usage.SnapshotQuery) (string, []any) {
	var b strings.Builder
	b.WriteString(`
		FROM snapshot_seats ss
		JOIN subscriptions s ON s.account_id = ? AND s.id = ss.subscription_id
		JOIN products p ON p.id = s.product_id
		LEFT JOIN users u ON u.account_id = ? AND u.id = ss.user_id
		LEFT JOIN assignments a ON a.account_id = ? AND a.user_id = ss.user_id AND a.subscription_id = ss.subscription_id
		WHERE ss.snapshot_id = ?`)
	args := []any{q.AccountID, q.AccountID, q.AccountID, q.SnapshotID}
	if q.SubscriptionIDs != nil {
		if len(q.SubscriptionIDs) == 0 {
			b.WriteString(" AND 1 = 0")
		} else {
			b.WriteString(" AND ss.subscription_id IN (" + placeholders(len(q.SubscriptionIDs)) + ")")
			args = append(args, int64Args(q.SubscriptionIDs)...)
		}
	}
	if q.SubscriptionID != 0 {
		b.WriteString(" AND ss.subscription_id = ?")
		args = append(args, q.SubscriptionID)
	}
	if q.ProductCode != "" {
		b.WriteString(" AND p.code = ?")
		args = append(args, q.ProductCode)
	}
	if q.Inactivity != "" {
		b.WriteString(" AND ss.inactivity = ?")
		args = append(args, string(q.Inactivity))
	}
	if q.Query != "" {
		b.WriteString(` AND (u.name_key LIKE ? ESCAPE '\' OR lower(ss.email) LIKE ? ESCAPE '\')`)
		pattern := "%" + escapeLike(strings.ToLower(q.Query)) + "%"
		args = append(args, pattern, pattern)
	}
	return b.String(), args
}

// snapshotChanged is usage.ChangeOf in SQL: not held, held since a later
// assignment, or used since the assignment and after the snapshot's last use.
const snapshotChanged = `(a.user_id IS NULL OR a.assigned_at <> ss.assigned_at
		OR (a.last_used_at > ss.last_used_at AND a.last_used_at >= a.assigned_at))`

// SnapshotRows returns a page of a snapshot's seats in name order.
func (tx *Tx) SnapshotRows(ctx context.Context, q usage.SnapshotQuery) ([]usage.SnapshotRow, error) {
	key := tx.snapshotSortSQL()
	var b strings.Builder
	b.WriteString(`SELECT ss.user_id, ss.subscription_id, ss.email, ss.assigned_at, ss.last_used_at, ss.inactivity, ss.action,
		COALESCE(u.name, ''), p.code, p.name, s.contract_number, s.plan, a.assigned_at, a.last_used_at, COALESCE(a.direct, ` + tx.falseSQL() + `), ` + tx.seatGroupsSQL())
	where, args := tx.snapshotWhere(q)
	b.WriteString(where)
	if c := q.After; c != nil {
		b.WriteString(" AND (" + key + ", ss.user_id, ss.subscription_id) > (?, ?, ?)")
		args = append(args, c.Key, c.UserID, c.SubscriptionID)
	}
	b.WriteString(" ORDER BY " + key + ", ss.user_id, ss.subscription_id")
	if q.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, q.Limit)
	}
	rows, err := tx.query(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("snapshot rows: %w", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (usage.SnapshotRow, error) {
		var r usage.SnapshotRow
		var assigned, lastUsed int64
		var inactivity string
		var nowAssigned, nowUsed sql.NullInt64
		var groups sql.NullString
		err := row.Scan(&r.UserID, &r.SubscriptionID, &r.Email, &assigned, &lastUsed, &inactivity, &r.Action,
			&r.Name, &r.ProductCode, &r.ProductName, &r.ContractNumber, &r.Plan, &nowAssigned, &nowUsed, &r.Direct, &groups)
		r.AssignedAt, r.LastUsedAt, r.Inactivity = fromMillis(assigned), fromMillis(lastUsed), usage.Inactivity(inactivity)
		if nowAssigned.Valid {
			r.Now = &usage.SeatNow{AssignedAt: fromMillis(nowAssigned.Int64), LastUsedAt: fromMillis(nowUsed.Int64)}
		}
		r.Groups = parseSeatGroups(groups)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot rows: %w", err)
	}
	return out, nil
}

// falseSQL is false as each engine writes a boolean column's value.
func (tx *Tx) falseSQL() string {
	if tx.engine == Postgres {
		return "FALSE"
	}
	return "0"
}

// SnapshotTotals counts a snapshot's seats matching q, and those changed since.
func (tx *Tx) SnapshotTotals(ctx context.Context, q usage.SnapshotQuery) (usage.SnapshotTotals, error) {
	where, args := tx.snapshotWhere(q)
	var t usage.SnapshotTotals
	var never, stopped, changed sql.NullInt64
	err := tx.queryRow(ctx, `SELECT COUNT(*), COUNT(DISTINCT ss.user_id),
		SUM(CASE WHEN ss.inactivity = 'never_used' THEN 1 ELSE 0 END),
		SUM(CASE WHEN ss.inactivity = 'stopped_using' THEN 1 ELSE 0 END),
		SUM(CASE WHEN `+snapshotChanged+` THEN 1 ELSE 0 END)`+where, args...).Scan(&t.Seats, &t.Users, &never, &stopped, &changed)
	if err != nil {
		return t, fmt.Errorf("snapshot totals: %w", err)
	}
	t.NeverUsed, t.StoppedUsing, t.Changed = int(never.Int64), int(stopped.Int64), int(changed.Int64)
	return t, nil
}

// PruneSnapshots deletes the oldest snapshots taken before before, at most
// limit of them, through snapshots_by_taken_at; their seats go by cascade.
func (tx *Tx) PruneSnapshots(ctx context.Context, before time.Time, limit int) (int64, error) {
	n, err := affected(tx.exec(ctx, `
		DELETE FROM snapshots WHERE id IN (
			SELECT id FROM snapshots WHERE taken_at < ? ORDER BY taken_at LIMIT ?)`, millis(before), limit))
	if err != nil {
		return 0, fmt.Errorf("prune snapshots: %w", err)
	}
	return n, nil
}

// nameRunSnapshots sets the SnapshotID of the runs that have one.
func (tx *Tx) nameRunSnapshots(ctx context.Context, runs []reclaim.Run) error {
	if len(runs) == 0 {
		return nil
	}
	ids := make([]int64, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	rows, err := tx.query(ctx, `SELECT source_id FROM snapshots WHERE kind = 'reclaim' AND source_id IN (`+placeholders(len(ids))+`)`, int64Args(ids)...)
	if err != nil {
		return fmt.Errorf("snapshots of runs: %w", err)
	}
	found, err := collect(rows, func(row interface{ Scan(...any) error }) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("snapshots of runs: %w", err)
	}
	for i := range runs {
		if slices.Contains(found, runs[i].ID) {
			runs[i].SnapshotID = usage.SnapshotID(usage.SnapshotReclaim, runs[i].ID)
		}
	}
	return nil
}
