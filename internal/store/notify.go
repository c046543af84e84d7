package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usher"
)

// This file implements notify.Tx. AccountByID, UserByID, RolesOf and
// InsertAudit are shared with access.Tx (access.go).

// Notify returns the store of the notify domain.
func (db *DB) Notify() notify.Store { return domainStore[notify.Tx]{db} }

var _ notify.Tx = (*Tx)(nil)

// ---- settings ----

const settingColumns = `account_id, user_id, enabled, start_date, frequency, inactive_range, send_hour,
	next_at, last_run_for, created_at, updated_at`

func scanSetting(row interface{ Scan(...any) error }) (notify.Setting, error) {
	var s notify.Setting
	var start string
	var next, last, created, updated int64
	err := row.Scan(&s.AccountID, &s.UserID, &s.Enabled, &start, &s.Frequency, &s.Range, &s.SendHour,
		&next, &last, &created, &updated)
	if err != nil {
		return s, err
	}
	if s.StartDate, err = parseStoredDate(start); err != nil {
		return s, err
	}
	s.NextAt, s.LastRunFor, s.CreatedAt, s.UpdatedAt = fromMillis(next), fromMillis(last), fromMillis(created), fromMillis(updated)
	return s, nil
}

// SettingOf returns the user's notification setting.
func (tx *Tx) SettingOf(ctx context.Context, accountID, userID int64) (notify.Setting, error) {
	s, err := scanSetting(tx.queryRow(ctx, "SELECT "+settingColumns+" FROM notification_settings WHERE account_id = ? AND user_id = ?", accountID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return s, usher.Errorf(usher.ENOTFOUND, "no usage notification setting for user %d", userID)
	} else if err != nil {
		return s, fmt.Errorf("get notification setting of user %d: %w", userID, err)
	}
	return s, nil
}

// Addressees reads the settings of keys with their accounts, users and
// grants in one statement, by the settings' primary key; a setting's user
// and account exist (foreign keys delete the setting with either).
func (tx *Tx) Addressees(ctx context.Context, keys []notify.UserKey) (map[notify.UserKey]notify.Addressee, error) {
	out := make(map[notify.UserKey]notify.Addressee, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	var in strings.Builder
	args := make([]any, 0, 2*len(keys))
	for i, k := range keys {
		if i > 0 {
			in.WriteString(" OR ")
		}
		// One term per key, not a row value IN a VALUES list, which SQLite
		// answers by scanning every setting: each term searches the
		// primary key (a multi-index OR; a BitmapOr on PostgreSQL).
		in.WriteString("(s.account_id = ? AND s.user_id = ?)")
		args = append(args, k.AccountID, k.UserID)
	}
	rows, err := tx.query(ctx, `
		SELECT s.account_id, s.user_id, s.enabled, s.start_date, s.frequency, s.inactive_range, s.send_hour,
			s.next_at, s.last_run_for, s.created_at, s.updated_at,
			u.id, u.email, u.name, u.status, u.reclaim_exempt, u.created_at, u.updated_at, g.role, COALESCE(g.subscription_id, 0),
			a.name, a.time_zone, a.new_seat_grace_days, a.created_at
		FROM notification_settings s
		JOIN accounts a ON a.id = s.account_id
		JOIN users u ON u.account_id = s.account_id AND u.id = s.user_id
		LEFT JOIN role_grants g ON g.account_id = u.account_id AND g.user_id = u.id
		WHERE `+in.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("notification addressees: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st                         notify.Setting
			u                          usher.User
			start                      string
			next, last, sc, su, uc, uu int64
			role                       sql.NullString
			sub, ac                    int64
			acct                       usher.Account
		)
		err := rows.Scan(&st.AccountID, &st.UserID, &st.Enabled, &start, &st.Frequency, &st.Range, &st.SendHour,
			&next, &last, &sc, &su, &u.ID, &u.Email, &u.Name, &u.Status, &u.ReclaimExempt, &uc, &uu, &role, &sub,
			&acct.Name, &acct.TimeZone, &acct.NewSeatGraceDays, &ac)
		if err != nil {
			return nil, fmt.Errorf("notification addressees: %w", err)
		}
		k := notify.UserKey{AccountID: st.AccountID, UserID: st.UserID}
		a, seen := out[k]
		if !seen {
			if st.StartDate, err = parseStoredDate(start); err != nil {
				return nil, fmt.Errorf("notification addressees: %w", err)
			}
			st.NextAt, st.LastRunFor, st.CreatedAt, st.UpdatedAt = fromMillis(next), fromMillis(last), fromMillis(sc), fromMillis(su)
			u.AccountID, u.CreatedAt, u.UpdatedAt = st.AccountID, fromMillis(uc), fromMillis(uu)
			acct.ID, acct.CreatedAt = st.AccountID, fromMillis(ac)
			a = notify.Addressee{Setting: st, Account: acct, User: u}
		}
		if role.Valid {
			a.Grants = append(a.Grants, usher.RoleGrant{UserID: u.ID, Role: usher.Role(role.String), SubscriptionID: sub})
		}
		out[k] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notification addressees: %w", err)
	}
	for k, a := range out {
		sortGrants(a.Grants)
		out[k] = a
	}
	return out, nil
}

// PutSetting inserts or replaces the setting of (s.AccountID, s.UserID).
func (tx *Tx) PutSetting(ctx context.Context, s notify.Setting) error {
	_, err := tx.exec(ctx, `
		INSERT INTO notification_settings (`+settingColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id, user_id) DO UPDATE SET
			enabled = excluded.enabled, start_date = excluded.start_date, frequency = excluded.frequency,
			inactive_range = excluded.inactive_range, send_hour = excluded.send_hour, next_at = excluded.next_at,
			last_run_for = excluded.last_run_for, created_at = excluded.created_at, updated_at = excluded.updated_at`,
		s.AccountID, s.UserID, s.Enabled, s.StartDate.String(), string(s.Frequency), string(s.Range), s.SendHour,
		millis(s.NextAt), millis(s.LastRunFor), millis(s.CreatedAt), millis(s.UpdatedAt))
	if isForeignKeyViolation(err) {
		return usher.Errorf(usher.ENOTFOUND, "user %d not found", s.UserID)
	} else if err != nil {
		return fmt.Errorf("put notification setting of user %d: %w", s.UserID, err)
	}
	return nil
}

// DueSettings returns enabled settings whose next occurrence is due, of
// every account, served by notification_settings_due. On PostgreSQL the rows
// are locked and rows another scheduler holds are skipped, so replicas
// planning at once share the work instead of queueing behind each other;
// SQLite has one writer, so nobody else holds them.
func (tx *Tx) DueSettings(ctx context.Context, now time.Time, limit int) ([]notify.Setting, error) {
	q := "SELECT " + settingColumns + ` FROM notification_settings
		WHERE enabled AND next_at <= ?
		ORDER BY next_at, account_id, user_id LIMIT ?`
	if tx.engine == Postgres {
		q += " FOR UPDATE SKIP LOCKED"
	}
	rows, err := tx.query(ctx, q, millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due notification settings: %w", err)
	}
	out, err := collect(rows, scanSetting)
	if err != nil {
		return nil, fmt.Errorf("due notification settings: %w", err)
	}
	return out, nil
}

// AdvanceSetting moves a due setting to its next occurrence unless it
// changed since it was read. On PostgreSQL a concurrent advance holds the
// row lock; after it commits, the WHERE is checked again against the new
// row, so only one of two racing schedulers sees a row changed.
func (tx *Tx) AdvanceSetting(ctx context.Context, s notify.Setting, from time.Time) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		UPDATE notification_settings SET next_at = ?, last_run_for = ?, updated_at = ?
		WHERE account_id = ? AND user_id = ? AND enabled AND next_at = ?`,
		millis(s.NextAt), millis(s.LastRunFor), millis(s.UpdatedAt), s.AccountID, s.UserID, millis(from)))
	if err != nil {
		return false, fmt.Errorf("advance notification setting of user %d: %w", s.UserID, err)
	}
	return n == 1, nil
}

// ---- runs ----

const runColumns = `id, account_id, user_id, scheduled_for, inactive_range, status, attempts, next_attempt_at,
	message_id, inactive_users, inactive_seats, last_error, lease_owner, lease_until, delivered_at, created_at, updated_at`

func scanRun(row interface{ Scan(...any) error }) (notify.Run, error) {
	var r notify.Run
	var scheduled, nextAttempt, leaseUntil, delivered, created, updated int64
	err := row.Scan(&r.ID, &r.AccountID, &r.UserID, &scheduled, &r.Range, &r.Status, &r.Attempts, &nextAttempt,
		&r.MessageID, &r.InactiveUsers, &r.InactiveSeats, &r.LastError, &r.LeaseOwner, &leaseUntil, &delivered, &created, &updated)
	r.ScheduledFor, r.NextAttemptAt, r.LeaseUntil = fromMillis(scheduled), fromMillis(nextAttempt), fromMillis(leaseUntil)
	r.DeliveredAt, r.CreatedAt, r.UpdatedAt = fromMillis(delivered), fromMillis(created), fromMillis(updated)
	return r, err
}

// InsertRun stores r unless its occurrence has a run. ON CONFLICT DO
// NOTHING, not a caught unique violation: on PostgreSQL a failed statement
// would abort the whole transaction, and with it the setting's advance.
func (tx *Tx) InsertRun(ctx context.Context, r *notify.Run) (bool, error) {
	err := tx.queryRow(ctx, `
		INSERT INTO notification_runs (account_id, user_id, scheduled_for, inactive_range, status, attempts, next_attempt_at,
			message_id, inactive_users, inactive_seats, last_error, lease_owner, lease_until, delivered_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id, user_id, scheduled_for) DO NOTHING
		RETURNING id`,
		r.AccountID, r.UserID, millis(r.ScheduledFor), string(r.Range), string(r.Status), r.Attempts, millis(r.NextAttemptAt),
		r.MessageID, r.InactiveUsers, r.InactiveSeats, r.LastError, r.LeaseOwner, millis(r.LeaseUntil), millis(r.DeliveredAt),
		millis(r.CreatedAt), millis(r.UpdatedAt)).Scan(&r.ID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case isForeignKeyViolation(err):
		return false, usher.Errorf(usher.ENOTFOUND, "no usage notification setting for user %d", r.UserID)
	case err != nil:
		return false, fmt.Errorf("insert notification run of user %d for %s: %w", r.UserID, r.ScheduledFor.Format(time.RFC3339), err)
	}
	return true, nil
}

// ClaimRuns leases claimable runs in one UPDATE (claimLeases), served by
// notification_runs_claimable.
func (tx *Tx) ClaimRuns(ctx context.Context, now time.Time, owner string, until time.Time, limit int) ([]notify.Run, error) {
	return tx.ClaimRunsAfter(ctx, now, owner, until, limit, notify.Position{})
}

// ClaimRunsAfter leases claimable runs past after, as ClaimRuns does.
func (tx *Tx) ClaimRunsAfter(ctx context.Context, now time.Time, owner string, until time.Time, limit int, after notify.Position) ([]notify.Run, error) {
	rows, err := tx.claimLeases(ctx, notificationRunLeases, now, owner, until, limit, after)
	if err != nil {
		return nil, fmt.Errorf("claim notification runs: %w", err)
	}
	out, err := collect(rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("claim notification runs: %w", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b notify.Run) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

var notificationRunLeases = leases{table: "notification_runs", leased: "sending", waiting: "'pending', 'sending'", columns: runColumns, touch: true}

// leases describes a table of durable work claimed under a lease: rows
// whose status is one of waiting (SQL literals), whose next_attempt_at has
// come and whose lease_until has passed are claimable; a claim sets the
// status to leased, the lease, and counts the attempt. Notification runs,
// reclaim runs and reclaim emails are claimed this one way.
type leases struct {
	table, leased, waiting, columns string
	touch                           bool // the table has updated_at, set to now by a claim
}

// claimLeases leases up to limit claimable rows of l to owner until until,
// in (next_attempt_at, id) order, and returns them with l.columns. On
// PostgreSQL, SKIP LOCKED makes the subquery skip rows a concurrent claim
// has locked, so replicas claiming at once get disjoint rows without
// waiting; a row whose lease a committed claim has just renewed no longer
// matches when re-checked. On SQLite the write transaction holds the
// database's only write lock, across processes too, so claims follow one
// another.
//
// A claim past after (not zero) starts the index scan at after instead of
// at the index's start: on PostgreSQL every row delivered leaves a dead
// entry in the partial index until it is pruned, and a claim from the start
// would walk over all of them, more with every email sent.
func (tx *Tx) claimLeases(ctx context.Context, l leases, now time.Time, owner string, until time.Time, limit int, after notify.Position) (*sql.Rows, error) {
	lock, touch, past := "", "", ""
	if tx.engine == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	args := []any{owner, millis(until)}
	if l.touch {
		touch = ", updated_at = ?"
		args = append(args, millis(now))
	}
	// The rows to claim, in the claim's order; pickArgs are its arguments.
	pickArgs := []any{millis(now), millis(now)}
	if !after.IsZero() {
		past = " AND (next_attempt_at, id) > (?, ?)"
		pickArgs = append(pickArgs, millis(after.At), after.ID)
	}
	pickArgs = append(pickArgs, limit)
	pick := `SELECT id FROM ` + l.table + `
			WHERE status IN (` + l.waiting + `) AND next_attempt_at <= ? AND lease_until < ?` + past + `
			ORDER BY next_attempt_at, id
			LIMIT ?` + lock
	set := `UPDATE ` + l.table + `
		SET status = '` + l.leased + `', lease_owner = ?, lease_until = ?, attempts = attempts + 1` + touch
	if tx.engine == Postgres {
		// The claimable rows are chosen once, in a materialized CTE. As a
		// subquery of the UPDATE they may be chosen again when PostgreSQL
		// re-checks a row that a concurrent transaction changed
		// (EvalPlanQual re-runs the subquery, whose SKIP LOCKED then
		// passes over the rows this claim has just taken and returns the
		// next ones): one claim of one run leased several, and the runs
		// it did not return waited for the lease to run out.
		return tx.query(ctx, `
		WITH pick AS MATERIALIZED (`+pick+`)
		`+set+`
		WHERE id IN (SELECT id FROM pick)
		RETURNING `+l.columns, append(pickArgs, args...)...)
	}
	return tx.query(ctx, set+`
		WHERE id IN (`+pick+`)
		RETURNING `+l.columns, append(args, pickArgs...)...)
}

// FinishRun records an attempt's outcome while the run is still leased to owner.
func (tx *Tx) FinishRun(ctx context.Context, r notify.Run, owner string) error {
	n, err := affected(tx.exec(ctx, `
		UPDATE notification_runs
		SET status = ?, attempts = ?, next_attempt_at = ?, inactive_users = ?, inactive_seats = ?, last_error = ?,
			lease_owner = ?, lease_until = ?, delivered_at = ?, updated_at = ?
		WHERE account_id = ? AND id = ? AND status = 'sending' AND lease_owner = ?`,
		string(r.Status), r.Attempts, millis(r.NextAttemptAt), r.InactiveUsers, r.InactiveSeats, r.LastError,
		r.LeaseOwner, millis(r.LeaseUntil), millis(r.DeliveredAt), millis(r.UpdatedAt),
		r.AccountID, r.ID, owner))
	if err != nil {
		return fmt.Errorf("finish notification run %d: %w", r.ID, err)
	}
	if n == 1 {
		return nil
	}
	var exists int
	if err := tx.queryRow(ctx, "SELECT COUNT(*) FROM notification_runs WHERE account_id = ? AND id = ?", r.AccountID, r.ID).Scan(&exists); err != nil {
		return fmt.Errorf("finish notification run %d: %w", r.ID, err)
	}
	if exists == 0 {
		return usher.Errorf(usher.ENOTFOUND, "notification run %d not found", r.ID)
	}
	return usher.Errorf(usher.ECONFLICT, "notification run %d is no longer leased to %s", r.ID, owner)
}

// RunsOf returns a page of the user's runs, newest first, served by
// notification_runs_by_user.
func (tx *Tx) RunsOf(ctx context.Context, accountID, userID, beforeID int64, limit int) ([]notify.Run, error) {
	var q strings.Builder
	args := []any{accountID, userID}
	q.WriteString("SELECT " + runColumns + " FROM notification_runs WHERE account_id = ? AND user_id = ?")
	if beforeID > 0 {
		q.WriteString(" AND id < ?")
		args = append(args, beforeID)
	}
	q.WriteString(" ORDER BY id DESC LIMIT ?")
	args = append(args, limit)
	rows, err := tx.query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("notification runs of user %d: %w", userID, err)
	}
	out, err := collect(rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("notification runs of user %d: %w", userID, err)
	}
	return out, nil
}

// Backlog counts waiting runs over notification_runs_claimable (only
// pending and sending runs) and due occurrences over
// notification_settings_due, so a scrape costs little however many runs
// were ever delivered.
func (tx *Tx) Backlog(ctx context.Context, now time.Time) (notify.Backlog, error) {
	var b notify.Backlog
	ms := millis(now)
	var oldestRun, oldestSetting sql.NullInt64
	err := tx.queryRow(ctx, `
		SELECT
			COALESCE(SUM(CASE WHEN (status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until < ?) THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN status = 'pending' AND next_attempt_at > ? THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN status = 'sending' AND lease_until >= ? THEN 1 ELSE 0 END), 0),
			MIN(CASE WHEN (status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until < ?) THEN next_attempt_at END)
		FROM notification_runs WHERE status IN ('pending', 'sending')`,
		ms, ms, ms, ms, ms, ms).Scan(&b.DueRuns, &b.RetryRuns, &b.SendingRuns, &oldestRun)
	if err != nil {
		return b, fmt.Errorf("notification run backlog: %w", err)
	}
	err = tx.queryRow(ctx, `SELECT COUNT(*), MIN(next_at) FROM notification_settings WHERE enabled AND next_at <= ?`, ms).
		Scan(&b.DueSettings, &oldestSetting)
	if err != nil {
		return b, fmt.Errorf("notification setting backlog: %w", err)
	}
	for _, o := range []sql.NullInt64{oldestRun, oldestSetting} {
		if o.Valid && (b.OldestDue.IsZero() || fromMillis(o.Int64).Before(b.OldestDue)) {
			b.OldestDue = fromMillis(o.Int64)
		}
	}
	return b, nil
}
