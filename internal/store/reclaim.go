package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// This file implements reclaim.Tx.

// Reclaim returns the store of the reclaim domain.
func (db *DB) Reclaim() reclaim.Store { return domainStore[reclaim.Tx]{db} }

var _ reclaim.Tx = (*Tx)(nil)

// ---- policies ----

const policyColumns = `id, account_id, name, enabled, scope_kind, scope, inactive_range, never_used, stopped_using,
	mode, grace_days, exemptions, next_run_at, created_at, updated_at`

func scanPolicy(row interface{ Scan(...any) error }) (reclaim.Policy, error) {
	var p reclaim.Policy
	var scope, never, stopped, exempt string
	var next, created, updated int64
	err := row.Scan(&p.ID, &p.AccountID, &p.Name, &p.Enabled, &p.Scope.Kind, &scope, &p.Range, &never, &stopped,
		&p.Mode, &p.GraceDays, &exempt, &next, &created, &updated)
	if err != nil {
		return p, err
	}
	if p.Scope.Kind == reclaim.ScopeSubscriptions {
		err = json.Unmarshal([]byte(scope), &p.Scope.SubscriptionIDs)
	} else {
		err = json.Unmarshal([]byte(scope), &p.Scope.Products)
	}
	if err == nil {
		err = json.Unmarshal([]byte(never), &p.NeverUsed)
	}
	if err == nil {
		err = json.Unmarshal([]byte(stopped), &p.StoppedUsing)
	}
	if err == nil {
		err = json.Unmarshal([]byte(exempt), &p.Exemptions)
	}
	if err != nil {
		return p, fmt.Errorf("reclaim policy %d: %w", p.ID, err)
	}
	if p.Exemptions.Groups == nil {
		p.Exemptions.Groups = []int64{} // stored before groups could be exempt
	}
	if next != 0 {
		p.NextRunAt = fromMillis(next)
	}
	p.CreatedAt, p.UpdatedAt = fromMillis(created), fromMillis(updated)
	return p, nil
}

func policyArgs(p reclaim.Policy) []any {
	var scope []byte
	if p.Scope.Kind == reclaim.ScopeSubscriptions {
		scope, _ = json.Marshal(orEmptyIDs(p.Scope.SubscriptionIDs))
	} else {
		scope, _ = json.Marshal(orEmptyStrings(p.Scope.Products))
	}
	never, _ := json.Marshal(p.NeverUsed)
	stopped, _ := json.Marshal(p.StoppedUsing)
	exempt, _ := json.Marshal(p.Exemptions)
	next := int64(0)
	if !p.NextRunAt.IsZero() {
		next = millis(p.NextRunAt)
	}
	return []any{p.Name, p.Enabled, string(p.Scope.Kind), string(scope), string(p.Range), string(never), string(stopped),
		string(p.Mode), p.GraceDays, string(exempt), next, millis(p.UpdatedAt)}
}

func orEmptyIDs(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

// InsertPolicy stores p and sets its ID.
func (tx *Tx) InsertPolicy(ctx context.Context, p *reclaim.Policy) error {
	args := append([]any{p.AccountID}, policyArgs(*p)...)
	args = append(args, millis(p.CreatedAt))
	err := tx.queryRow(ctx, `
		INSERT INTO reclaim_policies (account_id, name, enabled, scope_kind, scope, inactive_range, never_used, stopped_using,
			mode, grace_days, exemptions, next_run_at, updated_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`, args...).Scan(&p.ID)
	if isUniqueViolation(err) {
		return usher.Errorf(usher.ECONFLICT, "a reclaim policy named %q exists already", p.Name)
	} else if err != nil {
		return fmt.Errorf("insert reclaim policy: %w", err)
	}
	return nil
}

// UpdatePolicy replaces the stored policy but its creation time.
func (tx *Tx) UpdatePolicy(ctx context.Context, p reclaim.Policy) error {
	args := append(policyArgs(p), p.AccountID, p.ID)
	n, err := affected(tx.exec(ctx, `
		UPDATE reclaim_policies SET name = ?, enabled = ?, scope_kind = ?, scope = ?, inactive_range = ?, never_used = ?,
			stopped_using = ?, mode = ?, grace_days = ?, exemptions = ?, next_run_at = ?, updated_at = ?
		WHERE account_id = ? AND id = ?`, args...))
	switch {
	case isUniqueViolation(err):
		return usher.Errorf(usher.ECONFLICT, "a reclaim policy named %q exists already", p.Name)
	case err != nil:
		return fmt.Errorf("update reclaim policy %d: %w", p.ID, err)
	case n == 0:
		return usher.Errorf(usher.ENOTFOUND, "reclaim policy %d not found", p.ID)
	}
	return nil
}

// DeletePolicy removes a policy with its runs and warnings (cascade).
func (tx *Tx) DeletePolicy(ctx context.Context, accountID, id int64) error {
	n, err := affected(tx.exec(ctx, "DELETE FROM reclaim_policies WHERE account_id = ? AND id = ?", accountID, id))
	if err != nil {
		return fmt.Errorf("delete reclaim policy %d: %w", id, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "reclaim policy %d not found", id)
	}
	return nil
}

// PolicyByID returns one policy of the account.
func (tx *Tx) PolicyByID(ctx context.Context, accountID, id int64) (reclaim.Policy, error) {
	p, err := scanPolicy(tx.queryRow(ctx, "SELECT "+policyColumns+" FROM reclaim_policies WHERE account_id = ? AND id = ?", accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, usher.Errorf(usher.ENOTFOUND, "reclaim policy %d not found", id)
	} else if err != nil {
		return p, fmt.Errorf("get reclaim policy %d: %w", id, err)
	}
	return p, nil
}

// ListPolicies returns the account's policies by name.
func (tx *Tx) ListPolicies(ctx context.Context, accountID int64) ([]reclaim.Policy, error) {
	rows, err := tx.query(ctx, "SELECT "+policyColumns+" FROM reclaim_policies WHERE account_id = ? ORDER BY name, id", accountID)
	if err != nil {
		return nil, fmt.Errorf("list reclaim policies: %w", err)
	}
	out, err := collect(rows, scanPolicy)
	if err != nil {
		return nil, fmt.Errorf("list reclaim policies: %w", err)
	}
	return out, nil
}

// DuePolicies returns enabled policies whose next run is due, of any
// account, served by reclaim_policies_due.
func (tx *Tx) DuePolicies(ctx context.Context, now time.Time, limit int) ([]reclaim.Policy, error) {
	rows, err := tx.query(ctx, "SELECT "+policyColumns+` FROM reclaim_policies
		WHERE enabled AND next_run_at <= ? ORDER BY next_run_at, id LIMIT ?`, millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due reclaim policies: %w", err)
	}
	out, err := collect(rows, scanPolicy)
	if err != nil {
		return nil, fmt.Errorf("due reclaim policies: %w", err)
	}
	return out, nil
}

// AdvancePolicy moves a due policy on unless another scheduler did.
func (tx *Tx) AdvancePolicy(ctx context.Context, p reclaim.Policy, from time.Time) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		UPDATE reclaim_policies SET next_run_at = ? WHERE account_id = ? AND id = ? AND enabled AND next_run_at = ?`,
		millis(p.NextRunAt), p.AccountID, p.ID, millis(from)))
	if err != nil {
		return false, fmt.Errorf("advance reclaim policy %d: %w", p.ID, err)
	}
	return n == 1, nil
}

// ---- runs ----

const reclaimRunColumns = `id, account_id, policy_id, run_on, status, attempts, next_attempt_at, lease_owner, lease_until,
	warned, reclaimed, kept, last_error, created_at, updated_at`

func scanReclaimRun(row interface{ Scan(...any) error }) (reclaim.Run, error) {
	var r reclaim.Run
	var next, lease, created, updated int64
	err := row.Scan(&r.ID, &r.AccountID, &r.PolicyID, &r.RunOn, &r.Status, &r.Attempts, &next, &r.LeaseOwner, &lease,
		&r.Warned, &r.Reclaimed, &r.Kept, &r.LastError, &created, &updated)
	r.NextAttemptAt, r.LeaseUntil, r.CreatedAt, r.UpdatedAt = fromMillis(next), fromMillis(lease), fromMillis(created), fromMillis(updated)
	return r, err
}

// InsertReclaimRun stores r unless the policy has a run that day.
func (tx *Tx) InsertReclaimRun(ctx context.Context, r *reclaim.Run) (bool, error) {
	err := tx.queryRow(ctx, `
		INSERT INTO reclaim_runs (account_id, policy_id, run_on, status, attempts, next_attempt_at, lease_owner, lease_until,
			warned, reclaimed, kept, last_error, created_at, updated_at)
		VALUES (?, ?, ?, ?, 0, ?, '', 0, 0, 0, 0, '', ?, ?)
		ON CONFLICT (policy_id, run_on) DO NOTHING
		RETURNING id`,
		r.AccountID, r.PolicyID, r.RunOn, string(r.Status), millis(r.NextAttemptAt), millis(r.CreatedAt), millis(r.UpdatedAt)).Scan(&r.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("insert reclaim run of policy %d for %s: %w", r.PolicyID, r.RunOn, err)
	}
	return true, nil
}

var (
	reclaimRunLeases   = leases{table: "reclaim_runs", leased: "running", waiting: "'pending', 'running'", columns: reclaimRunColumns, touch: true}
	reclaimEmailLeases = leases{table: "reclaim_emails", leased: "sending", waiting: "'pending', 'sending'", columns: reclaimEmailColumns}
)

// claimOne leases the first claimable row of l, as notification runs are
// claimed (claimLeases), and scans it; false when there is none.
func claimOne[T any](ctx context.Context, tx *Tx, l leases, scan func(interface{ Scan(...any) error }) (T, error), now time.Time, owner string, until time.Time) (T, bool, error) {
	var zero T
	rows, err := tx.claimLeases(ctx, l, now, owner, until, 1, notify.Position{})
	if err != nil {
		return zero, false, err
	}
	out, err := collect(rows, scan)
	if err != nil || len(out) == 0 {
		return zero, false, err
	}
	return out[0], true, nil
}

// ClaimReclaimRun leases one claimable run.
func (tx *Tx) ClaimReclaimRun(ctx context.Context, now time.Time, owner string, until time.Time) (reclaim.Run, bool, error) {
	r, ok, err := claimOne(ctx, tx, reclaimRunLeases, scanReclaimRun, now, owner, until)
	if err != nil {
		return r, false, fmt.Errorf("claim reclaim run: %w", err)
	}
	return r, ok, nil
}

// FinishReclaimRun records a run's outcome while it is leased to owner.
func (tx *Tx) FinishReclaimRun(ctx context.Context, r reclaim.Run, owner string) error {
	n, err := affected(tx.exec(ctx, `
		UPDATE reclaim_runs SET status = ?, next_attempt_at = ?, lease_owner = ?, lease_until = ?, warned = warned + ?,
			reclaimed = reclaimed + ?, kept = kept + ?, last_error = ?, updated_at = ?
		WHERE account_id = ? AND id = ? AND status = 'running' AND lease_owner = ?`,
		string(r.Status), millis(r.NextAttemptAt), r.LeaseOwner, millis(r.LeaseUntil), r.Warned, r.Reclaimed, r.Kept,
		r.LastError, millis(r.UpdatedAt), r.AccountID, r.ID, owner))
	if err != nil {
		return fmt.Errorf("finish reclaim run %d: %w", r.ID, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ECONFLICT, "reclaim run %d is no longer leased to %s", r.ID, owner)
	}
	return nil
}

// RunsOfPolicy returns the policy's latest runs, newest first.
func (tx *Tx) RunsOfPolicy(ctx context.Context, accountID, policyID int64, limit int) ([]reclaim.Run, error) {
	rows, err := tx.query(ctx, "SELECT "+reclaimRunColumns+` FROM reclaim_runs
		WHERE account_id = ? AND policy_id = ? ORDER BY id DESC LIMIT ?`, accountID, policyID, limit)
	if err != nil {
		return nil, fmt.Errorf("runs of reclaim policy %d: %w", policyID, err)
	}
	out, err := collect(rows, scanReclaimRun)
	if err == nil {
		err = tx.nameRunSnapshots(ctx, out)
	}
	if err != nil {
		return nil, fmt.Errorf("runs of reclaim policy %d: %w", policyID, err)
	}
	return out, nil
}

// ---- seats and warnings ----

// inactiveSeatsQuery selects the seats of q, with what a plan needs.
func inactiveSeatsQuery(q reclaim.SeatQuery) (string, []any) {
	var b strings.Builder
	args := []any{q.AccountID}
	b.WriteString(`
		SELECT a.user_id, u.email, u.name, u.reclaim_exempt, s.id, s.contract_number, p.code, p.name, s.plan,
		       s.price_cents, s.currency, a.assigned_at, a.last_used_at
		FROM assignments a
		JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id
		JOIN users u ON u.account_id = a.account_id AND u.id = a.user_id
		JOIN products p ON p.id = s.product_id
		WHERE a.account_id = ? AND a.subscription_id IN (` + placeholders(len(q.SubscriptionIDs)) + `)`)
	args = append(args, int64Args(q.SubscriptionIDs)...)
	b.WriteString(" AND " + inactiveSeat)
	args = append(args, millis(q.UsedBefore), millis(q.AssignedBefore))
	if q.UserIDs != nil {
		b.WriteString(" AND a.user_id IN (" + placeholders(len(q.UserIDs)) + ")")
		args = append(args, int64Args(q.UserIDs)...)
	}
	b.WriteString(" ORDER BY u.email, s.id")
	return b.String(), args
}

// InactiveSeats returns the seats of q's subscriptions whose last use and
// assignment fall before q's cutoffs: the report's inactiveSeat predicate
// on the seat row, served by assignments_by_last_use per subscription.
func (tx *Tx) InactiveSeats(ctx context.Context, q reclaim.SeatQuery) ([]reclaim.Seat, error) {
	if len(q.SubscriptionIDs) == 0 || (q.UserIDs != nil && len(q.UserIDs) == 0) {
		return nil, nil
	}
	query, args := inactiveSeatsQuery(q)
	rows, err := tx.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("inactive seats: %w", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (reclaim.Seat, error) {
		var st reclaim.Seat
		var cents, assigned, last int64
		var currency string
		err := row.Scan(&st.UserID, &st.Email, &st.Name, &st.ReclaimExempt, &st.SubscriptionID, &st.ContractNumber, &st.Product,
			&st.ProductName, &st.Plan, &cents, &currency, &assigned, &last)
		st.AssignedAt, st.LastUsedAt = fromMillis(assigned), fromMillis(last)
		if last == 0 {
			st.LastUsedAt = time.Time{}
		}
		if currency != "" {
			st.Price = &usher.Price{Cents: cents, Currency: currency}
		}
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("inactive seats: %w", err)
	}
	return out, nil
}

const warningColumns = `id, account_id, policy_id, run_id, user_id, subscription_id, inactivity, last_used_at, warned_at,
	reclaim_at, token_hash, outcome, resolved_at, resolved_run_id, kept_until`

func scanWarning(row interface{ Scan(...any) error }) (reclaim.Warning, error) {
	var w reclaim.Warning
	var last, warned, reclaimAt, resolved, kept int64
	var inactivity string
	err := row.Scan(&w.ID, &w.AccountID, &w.PolicyID, &w.RunID, &w.UserID, &w.SubscriptionID, &inactivity, &last, &warned,
		&reclaimAt, &w.TokenHash, &w.Outcome, &resolved, &w.ResolvedRunID, &kept)
	w.Inactivity = usage.Inactivity(inactivity)
	w.WarnedAt, w.ReclaimAt = fromMillis(warned), fromMillis(reclaimAt)
	if last != 0 {
		w.LastUsedAt = fromMillis(last)
	}
	if resolved != 0 {
		w.ResolvedAt = fromMillis(resolved)
	}
	if kept != 0 {
		w.KeptUntil = fromMillis(kept)
	}
	return w, err
}

func collectWarnings(rows *sql.Rows, err error) ([]reclaim.Warning, error) {
	if err != nil {
		return nil, fmt.Errorf("reclaim warnings: %w", err)
	}
	out, err := collect(rows, scanWarning)
	if err != nil {
		return nil, fmt.Errorf("reclaim warnings: %w", err)
	}
	return out, nil
}

// PolicyWarnings returns open warnings and those kept until after now,
// served by reclaim_warnings_by_policy.
func (tx *Tx) PolicyWarnings(ctx context.Context, accountID, policyID int64, userIDs []int64, now time.Time) ([]reclaim.Warning, error) {
	q := "SELECT " + warningColumns + ` FROM reclaim_warnings
		WHERE policy_id = ? AND account_id = ? AND (outcome = 'open' OR (outcome = 'kept' AND kept_until > ?))`
	args := []any{policyID, accountID, millis(now)}
	if userIDs != nil {
		if len(userIDs) == 0 {
			return nil, nil
		}
		q += " AND user_id IN (" + placeholders(len(userIDs)) + ")"
		args = append(args, int64Args(userIDs)...)
	}
	return collectWarnings(tx.query(ctx, q, args...))
}

func optMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return millis(t)
}

// InsertWarning stores w unless the seat has an open warning of the policy.
func (tx *Tx) InsertWarning(ctx context.Context, w *reclaim.Warning) (bool, error) {
	err := tx.queryRow(ctx, `
		INSERT INTO reclaim_warnings (account_id, policy_id, run_id, user_id, subscription_id, inactivity, last_used_at, warned_at,
			reclaim_at, token_hash, outcome, resolved_at, resolved_run_id, kept_until)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', 0, 0, 0)
		ON CONFLICT DO NOTHING
		RETURNING id`,
		w.AccountID, w.PolicyID, w.RunID, w.UserID, w.SubscriptionID, string(w.Inactivity), optMillis(w.LastUsedAt),
		millis(w.WarnedAt), millis(w.ReclaimAt), w.TokenHash).Scan(&w.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("insert reclaim warning: %w", err)
	}
	return true, nil
}

// ResolveWarning closes an open warning.
func (tx *Tx) ResolveWarning(ctx context.Context, w reclaim.Warning) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		UPDATE reclaim_warnings SET outcome = ?, resolved_at = ?, resolved_run_id = ?, kept_until = ?
		WHERE account_id = ? AND id = ? AND outcome = 'open'`,
		w.Outcome, optMillis(w.ResolvedAt), w.ResolvedRunID, optMillis(w.KeptUntil), w.AccountID, w.ID))
	if err != nil {
		return false, fmt.Errorf("resolve reclaim warning %d: %w", w.ID, err)
	}
	return n == 1, nil
}

// WarningByTokenHash finds a warning by its link's token.
func (tx *Tx) WarningByTokenHash(ctx context.Context, hash []byte) (reclaim.Warning, error) {
	w, err := scanWarning(tx.queryRow(ctx, "SELECT "+warningColumns+" FROM reclaim_warnings WHERE token_hash = ?", hash))
	if errors.Is(err, sql.ErrNoRows) {
		return w, usher.Errorf(usher.ENOTFOUND, "no such link")
	} else if err != nil {
		return w, fmt.Errorf("reclaim warning by token: %w", err)
	}
	return w, nil
}

// ReportKept hands kept warnings whose reclaim time came to a run's digest.
func (tx *Tx) ReportKept(ctx context.Context, accountID, policyID, runID int64, now time.Time) error {
	_, err := tx.exec(ctx, `
		UPDATE reclaim_warnings SET resolved_run_id = ?
		WHERE policy_id = ? AND account_id = ? AND outcome = 'kept' AND resolved_run_id = 0 AND reclaim_at <= ?`,
		runID, policyID, accountID, millis(now))
	if err != nil {
		return fmt.Errorf("report kept seats: %w", err)
	}
	return nil
}

// RunWarnings returns the warnings a run created and those it resolved.
func (tx *Tx) RunWarnings(ctx context.Context, runID int64) ([]reclaim.Warning, []reclaim.Warning, error) {
	created, err := collectWarnings(tx.query(ctx, "SELECT "+warningColumns+" FROM reclaim_warnings WHERE run_id = ? ORDER BY id", runID))
	if err != nil {
		return nil, nil, err
	}
	resolved, err := collectWarnings(tx.query(ctx, "SELECT "+warningColumns+" FROM reclaim_warnings WHERE resolved_run_id = ? ORDER BY id", runID))
	return created, resolved, err
}

// RunBatches returns the batches a run made, with their items.
func (tx *Tx) RunBatches(ctx context.Context, runID int64) ([]usher.ReclaimBatch, error) {
	rows, err := tx.query(ctx, "SELECT "+batchColumns+" FROM reclaim_batches WHERE run_id = ? ORDER BY id", runID)
	if err != nil {
		return nil, fmt.Errorf("batches of reclaim run %d: %w", runID, err)
	}
	out, err := collect(rows, scanBatch)
	if err != nil {
		return nil, fmt.Errorf("batches of reclaim run %d: %w", runID, err)
	}
	ptrs := make([]*usher.ReclaimBatch, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	return out, tx.loadBatchItems(ctx, ptrs)
}

// ---- emails ----

const reclaimEmailColumns = `id, account_id, run_id, kind, user_id, message_id, payload, status, attempts, next_attempt_at,
	lease_owner, lease_until, last_error, delivered_at, created_at`

func scanReclaimEmail(row interface{ Scan(...any) error }) (reclaim.Email, error) {
	var e reclaim.Email
	var payload string
	var next, lease, delivered, created int64
	err := row.Scan(&e.ID, &e.AccountID, &e.RunID, &e.Kind, &e.UserID, &e.MessageID, &payload, &e.Status, &e.Attempts, &next,
		&e.LeaseOwner, &lease, &e.LastError, &delivered, &created)
	if err != nil {
		return e, err
	}
	if payload != "" {
		if err := json.Unmarshal([]byte(payload), &e.Payload); err != nil {
			return e, fmt.Errorf("reclaim email %d: %w", e.ID, err)
		}
	}
	e.NextAttemptAt, e.LeaseUntil, e.CreatedAt = fromMillis(next), fromMillis(lease), fromMillis(created)
	if delivered != 0 {
		e.DeliveredAt = fromMillis(delivered)
	}
	return e, nil
}

// InsertEmail stores e unless its (run, kind, user) has one.
func (tx *Tx) InsertEmail(ctx context.Context, e *reclaim.Email) (bool, error) {
	payload, err := json.Marshal(e.Payload)
	if err != nil {
		return false, fmt.Errorf("insert reclaim email: %w", err)
	}
	err = tx.queryRow(ctx, `
		INSERT INTO reclaim_emails (account_id, run_id, kind, user_id, message_id, payload, status, attempts, next_attempt_at,
			lease_owner, lease_until, last_error, delivered_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, '', 0, '', 0, ?)
		ON CONFLICT (run_id, kind, user_id) DO NOTHING
		RETURNING id`,
		e.AccountID, e.RunID, string(e.Kind), e.UserID, e.MessageID, string(payload), millis(e.NextAttemptAt), millis(e.CreatedAt)).Scan(&e.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("insert reclaim email: %w", err)
	}
	return true, nil
}

// ClaimEmail leases one claimable email.
func (tx *Tx) ClaimEmail(ctx context.Context, now time.Time, owner string, until time.Time) (reclaim.Email, bool, error) {
	e, ok, err := claimOne(ctx, tx, reclaimEmailLeases, scanReclaimEmail, now, owner, until)
	if err != nil {
		return e, false, fmt.Errorf("claim reclaim email: %w", err)
	}
	return e, ok, nil
}

// ClaimEmailsAfter leases at most n claimable emails past after, in the
// order ClaimEmail takes them; see claimLeases.
func (tx *Tx) ClaimEmailsAfter(ctx context.Context, now time.Time, owner string, until time.Time, n int, after notify.Position) ([]reclaim.Email, error) {
	rows, err := tx.claimLeases(ctx, reclaimEmailLeases, now, owner, until, n, after)
	if err != nil {
		return nil, fmt.Errorf("claim reclaim emails: %w", err)
	}
	out, err := collect(rows, scanReclaimEmail)
	if err != nil {
		return nil, fmt.Errorf("claim reclaim emails: %w", err)
	}
	return out, nil
}

// FinishDelivered records the emails ids, leased to owner, as delivered at
// at, in one statement, emptying their payloads as FinishEmail does; it
// returns those it recorded, the ones still leased to owner.
func (tx *Tx) FinishDelivered(ctx context.Context, owner string, ids []int64, at time.Time) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := append([]any{millis(at), owner}, int64Args(ids)...)
	rows, err := tx.query(ctx, `
		UPDATE reclaim_emails SET status = 'delivered', lease_owner = '', lease_until = 0, last_error = '', delivered_at = ?, payload = ''
		WHERE status = 'sending' AND lease_owner = ? AND id IN (`+placeholders(len(ids))+`)
		RETURNING id`, args...)
	if err != nil {
		return nil, fmt.Errorf("finish delivered reclaim emails: %w", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (id int64, err error) { return id, row.Scan(&id) })
	if err != nil {
		return nil, fmt.Errorf("finish delivered reclaim emails: %w", err)
	}
	return out, nil
}

// FinishEmail records an attempt's outcome while e is leased to owner; a
// delivered email's payload, which holds link tokens, is emptied.
func (tx *Tx) FinishEmail(ctx context.Context, e reclaim.Email, owner string) error {
	n, err := affected(tx.exec(ctx, `
		UPDATE reclaim_emails SET status = ?, next_attempt_at = ?, lease_owner = ?, lease_until = ?, last_error = ?, delivered_at = ?,
			payload = CASE WHEN ? = 'delivered' THEN '' ELSE payload END
		WHERE account_id = ? AND id = ? AND status = 'sending' AND lease_owner = ?`,
		e.Status, millis(e.NextAttemptAt), e.LeaseOwner, millis(e.LeaseUntil), e.LastError, optMillis(e.DeliveredAt), e.Status,
		e.AccountID, e.ID, owner))
	if err != nil {
		return fmt.Errorf("finish reclaim email %d: %w", e.ID, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ECONFLICT, "reclaim email %d is no longer leased to %s", e.ID, owner)
	}
	return nil
}

// ---- savepoints ----

// Savepoint runs fn inside a savepoint of the transaction. When fn fails,
// what it changed is rolled back, the transaction goes on, and its error
// comes back as failed. A deadlock or serialization failure, a cancelled
// context, or a savepoint statement that fails come back as err instead:
// the whole transaction must then end (and Write tries it again when it
// can), as a rolled-back part of it would not be enough.
func (tx *Tx) Savepoint(ctx context.Context, fn func() error) (failed, err error) {
	changed, seats := len(tx.changed), tx.seats
	if _, err := tx.tx.ExecContext(ctx, "SAVEPOINT reclaim_person"); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	ferr := fn()
	if ferr == nil {
		if _, err := tx.tx.ExecContext(ctx, "RELEASE SAVEPOINT reclaim_person"); err != nil {
			return nil, fmt.Errorf("release savepoint: %w", err)
		}
		return nil, nil
	}
	if isRetryable(ferr) || ctx.Err() != nil {
		return nil, ferr
	}
	if _, err := tx.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT reclaim_person"); err != nil {
		return nil, errors.Join(ferr, fmt.Errorf("rollback to savepoint: %w", err))
	}
	if _, err := tx.tx.ExecContext(ctx, "RELEASE SAVEPOINT reclaim_person"); err != nil {
		return nil, errors.Join(ferr, fmt.Errorf("release savepoint: %w", err))
	}
	// What the rolled-back part noted for the commit goes with it.
	tx.changed, tx.seats = tx.changed[:changed], seats
	return ferr, nil
}
