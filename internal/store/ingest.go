package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/usherhq/usher/internal/usage"
)

// LockUsers returns which of ids are users of the account, and keeps those
// from being deleted until the transaction ends: usage_events has no
// foreign key to users (migration 0022), so the ingest stores events of
// the users confirmed here only, one lookup per user and batch where the
// key cost one per event. On PostgreSQL the rows are locked FOR KEY SHARE,
// the lock the key's check took, in id order; a user deleted between the
// ingest's lookup by email and this call is missing from the answer. On
// SQLite the write transaction already excludes every other writer.
func (tx *Tx) LockUsers(ctx context.Context, accountID int64, ids []int64) (map[int64]bool, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[int64]bool, len(ids))
	scan := func(query string, args ...any) error {
		rows, err := tx.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out[id] = true
		}
		return rows.Err()
	}
	if tx.engine == Postgres {
		err := scan(`SELECT id FROM users WHERE account_id = ? AND id = ANY(?::bigint[]) ORDER BY id FOR KEY SHARE`, accountID, ids)
		if err != nil {
			return nil, fmt.Errorf("lock users: %w", err)
		}
		return out, nil
	}
	for chunk := range slices.Chunk(ids, sqliteChunk) {
		args := append([]any{accountID}, int64Args(chunk)...)
		if err := scan("SELECT id FROM users WHERE account_id = ? AND id IN ("+placeholders(len(chunk))+")", args...); err != nil {
			return nil, fmt.Errorf("lock users: %w", err)
		}
	}
	return out, nil
}

// ingestKey is an event's key in usage_events, without the account.
type ingestKey struct{ u, p, at int64 }

func compareIngestKeys(a, b ingestKey) int {
	return cmp.Or(cmp.Compare(a.u, b.u), cmp.Compare(a.p, b.p), cmp.Compare(a.at, b.at))
}

// ingestDay is one (user, product, day) of a batch, with its month and its
// latest instant in the batch.
type ingestDay struct {
	u, p   int64
	d, m   int32
	latest int64
}

// batchKeys returns the batch's distinct event keys in key order, and its
// distinct days in key order with their latest instants.
func batchKeys(events []usage.StoredEvent) ([]ingestKey, []ingestDay) {
	type ev struct {
		k ingestKey
		d usage.Day
	}
	evs := make([]ev, len(events))
	for i, e := range events {
		evs[i] = ev{ingestKey{e.UserID, e.ProductID, millis(e.At)}, e.Day}
	}
	slices.SortFunc(evs, func(a, b ev) int { return compareIngestKeys(a.k, b.k) })
	keys := make([]ingestKey, 0, len(evs))
	var days []ingestDay
	for i, e := range evs {
		if i > 0 && evs[i-1].k == e.k {
			continue
		}
		keys = append(keys, e.k)
		// Within a (user, product), later instants are on the same day or
		// later ones: the days come out sorted and their latest instant last.
		if n := len(days); n > 0 && days[n-1].u == e.k.u && days[n-1].p == e.k.p && days[n-1].d == int32(e.d) {
			days[n-1].latest = e.k.at
			continue
		}
		days = append(days, ingestDay{u: e.k.u, p: e.k.p, d: int32(e.d), m: int32(e.d.Month()), latest: e.k.at})
	}
	return keys, days
}

// writeEventsPostgres is WriteEvents on PostgreSQL. The events go straight
// into usage_events through the COPY protocol, as fast as a bulk load, in
// a savepoint: when one of them is stored already (a batch sent again, or
// the same events in a concurrent request, whose commit COPY waits for),
// the primary key refuses the COPY, and the batch goes again through
// INSERT … ON CONFLICT DO NOTHING, which skips the stored ones. Either
// way the count of new events is exact. Then one statement records the
// batch's days, rollups, months and seats from its distinct days (some
// hundreds of rows for ten thousand events), set-based.
func (tx *Tx) writeEventsPostgres(ctx context.Context, accountID int64, events []usage.StoredEvent) (usage.EventWrites, error) {
	var w usage.EventWrites
	keys, days := batchKeys(events)
	n, err := tx.copyEvents(ctx, accountID, keys)
	if err != nil {
		return w, fmt.Errorf("insert usage events: %w", err)
	}
	if w.Events = n; n == 0 {
		// Every event was stored before, with its day, month and seat.
		return w, nil
	}
	us, ps := make([]int64, len(days)), make([]int64, len(days))
	ds, ms := make([]int32, len(days)), make([]int32, len(days))
	ats := make([]int64, len(days))
	for i, d := range days {
		us[i], ps[i], ds[i], ms[i], ats[i] = d.u, d.p, d.d, d.m, d.latest
	}
	var months string
	err = tx.queryRow(ctx, writeDaysSQL, us, ps, ds, ms, ats, accountID, accountID, accountID, accountID).
		Scan(&w.Days, &w.Rollups, &w.Seats, &months)
	if err != nil {
		return w, fmt.Errorf("write usage days: %w", err)
	}
	counts, err := parseMonthCounts(months)
	if err != nil {
		return w, fmt.Errorf("write usage days: %w", err)
	}
	w.Months = counts.total()
	return w, tx.countMonths(ctx, accountID, counts)
}

// copyEvents stores the events of keys not stored yet and returns how many
// it stored: by COPY when none was, else by INSERT … ON CONFLICT.
func (tx *Tx) copyEvents(ctx context.Context, accountID int64, keys []ingestKey) (int, error) {
	// Without arguments, one simple-protocol round trip each.
	if _, err := tx.tx.ExecContext(ctx, "SAVEPOINT usage_copy"); err != nil {
		return 0, err
	}
	row := make([]any, 4)
	_, err := tx.copyFrom(ctx, pgx.Identifier{"usage_events"}, []string{"account_id", "user_id", "product_id", "at"},
		pgx.CopyFromSlice(len(keys), func(i int) ([]any, error) {
			k := keys[i]
			row[0], row[1], row[2], row[3] = accountID, k.u, k.p, k.at
			return row, nil
		}))
	if err == nil {
		_, err = tx.tx.ExecContext(ctx, "RELEASE SAVEPOINT usage_copy")
		return len(keys), err
	}
	if !isUniqueViolation(err) {
		return 0, err
	}
	if _, err := tx.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT usage_copy"); err != nil {
		return 0, err
	}
	us, ps, ats := make([]int64, len(keys)), make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		us[i], ps[i], ats[i] = k.u, k.p, k.at
	}
	// In key order, so concurrent ingests take their unique-index locks in
	// the same order and cannot deadlock.
	n, err := affected(tx.exec(ctx, `
		INSERT INTO usage_events (account_id, user_id, product_id, at)
		SELECT ?, u, p, a FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) WITH ORDINALITY AS t (u, p, a, i)
		ORDER BY i
		ON CONFLICT DO NOTHING`, accountID, us, ps, ats))
	return int(n), err
}

// writeDaysSQL records a batch's distinct days ($1–$5: user, product, day,
// month, latest instant of the day, in key order) for account $6. The parts
// of one statement see the same snapshot and each writes its own table.
// Days and months are offered for every day of the batch, not only those
// of new events: an event stored before had its day and month recorded in
// the same transaction, so they conflict and add nothing. A seat moves only
// for a pair that gained a day, to the pair's latest instant in the batch,
// a real use. The new months come back as "product:month:users,…" for
// countMonths, which updates the account's shared counters last.
const writeDaysSQL = `
	WITH t AS (
		SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::integer[], ?::integer[], ?::bigint[]) AS t (u, p, d, m, at)
	), new_days AS (
		INSERT INTO usage_days (account_id, user_id, product_id, day)
		SELECT ?, u, p, d FROM t
		ON CONFLICT DO NOTHING
		RETURNING user_id, product_id, day
	), rollups AS (
		INSERT INTO usage_rollups (account_id, user_id, product_id, first_day, last_day, days)
		SELECT ?, user_id, product_id, min(day), max(day), count(*) FROM new_days
		GROUP BY user_id, product_id ORDER BY user_id, product_id
		ON CONFLICT (account_id, user_id, product_id) DO UPDATE SET
			first_day = LEAST(usage_rollups.first_day, excluded.first_day),
			last_day  = GREATEST(usage_rollups.last_day, excluded.last_day),
			days      = usage_rollups.days + excluded.days
		RETURNING 1
	), new_months AS (
		INSERT INTO usage_user_months (account_id, user_id, product_id, month)
		SELECT DISTINCT ?::bigint, u, p, m FROM t ORDER BY 2, 3, 4
		ON CONFLICT DO NOTHING
		RETURNING product_id, month
	), seats AS (
		UPDATE assignments a SET last_used_at = x.at
		FROM (
			SELECT t.u, t.p, max(t.at) AS at
			FROM t JOIN (SELECT DISTINCT user_id, product_id FROM new_days) n ON n.user_id = t.u AND n.product_id = t.p
			GROUP BY t.u, t.p
		) x, subscriptions s
		WHERE a.account_id = ? AND a.user_id = x.u AND a.last_used_at < x.at
		  AND s.account_id = a.account_id AND s.id = a.subscription_id AND s.product_id = x.p
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM new_days), (SELECT count(*) FROM rollups), (SELECT count(*) FROM seats),
		(SELECT COALESCE(string_agg(product_id || ':' || month || ':' || n, ','), '')
		 FROM (SELECT product_id, month, count(*) AS n FROM new_months GROUP BY product_id, month) c)`

// insertEventsSQLite is InsertEvents on SQLite for WriteEvents: each chunk
// goes first as a plain multi-row INSERT, which returns nothing to read
// back, as the events of a batch are usually all new. When one of them is
// stored already, the primary key fails that statement, which SQLite
// undoes alone, and the chunk goes again through InsertEvents, which skips
// and leaves out the stored ones. The transaction excludes other writers,
// so the events of a chunk that went in plain are exactly the new ones.
func (tx *Tx) insertEventsSQLite(ctx context.Context, accountID int64, events []usage.StoredEvent) ([]usage.StoredEvent, error) {
	events = slices.Clone(events)
	slices.SortFunc(events, func(a, b usage.StoredEvent) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.ProductID, b.ProductID), a.At.Compare(b.At))
	})
	events = slices.CompactFunc(events, func(a, b usage.StoredEvent) bool {
		return a.UserID == b.UserID && a.ProductID == b.ProductID && millis(a.At) == millis(b.At)
	})
	out := events[:0:0]
	args := make([]any, 0, 4*sqliteChunk)
	for chunk := range slices.Chunk(events, sqliteChunk) {
		args = args[:0]
		for _, e := range chunk {
			args = append(args, accountID, e.UserID, e.ProductID, millis(e.At))
		}
		_, err := tx.exec(ctx, `INSERT INTO usage_events (account_id, user_id, product_id, at) VALUES `+valueRows(len(chunk), 4), args...)
		switch {
		case err == nil:
			out = append(out, chunk...)
		case isUniqueViolation(err):
			stored, err := tx.InsertEvents(ctx, accountID, chunk)
			if err != nil {
				return nil, err
			}
			out = append(out, stored...)
		default:
			return nil, fmt.Errorf("insert usage events: %w", err)
		}
	}
	return out, nil
}
