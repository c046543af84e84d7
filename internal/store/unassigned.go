package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/usherhq/usher/internal/usage"
)

// freedSeatsSQL is the report's rows of seats freed in the range: the seats
// whole reclaim batches took (bulk unassigns and policy runs) at or after
// the range's first midnight, not undone and not held again now, the latest
// time per person and contract. Its parameters: account, cutoff, account.
const freedSeatsSQL = `
		FROM (SELECT bi.user_id, bi.subscription_id, MAX(b.created_at) AS freed_at,
		             MAX(bi.assigned_at) AS assigned_at, MAX(bi.email) AS email
		      FROM reclaim_batches b
		      JOIN reclaim_batch_items bi ON bi.batch_id = b.id
		      WHERE b.account_id = ? AND b.undone_at = 0 AND bi.seat AND b.created_at >= ?
		      GROUP BY bi.user_id, bi.subscription_id) f
		JOIN subscriptions s ON s.account_id = ? AND s.id = f.subscription_id
		JOIN products p ON p.id = s.product_id
		LEFT JOIN users u ON u.account_id = s.account_id AND u.id = f.user_id
		LEFT JOIN usage_rollups r ON r.account_id = s.account_id AND r.user_id = f.user_id AND r.product_id = s.product_id
		WHERE NOT EXISTS (SELECT 1 FROM assignments a
		                  WHERE a.account_id = s.account_id AND a.user_id = f.user_id AND a.subscription_id = f.subscription_id)`

// freedWhere is the report's FROM and WHERE for freed seats, with q's filters.
func (tx *Tx) freedWhere(q usage.ReportQuery) (string, []any) {
	var b strings.Builder
	b.WriteString(freedSeatsSQL)
	args := []any{q.AccountID, millis(q.CutoffAt), q.AccountID}
	if q.SubscriptionIDs != nil {
		if len(q.SubscriptionIDs) == 0 {
			b.WriteString(" AND 1 = 0")
		} else {
			b.WriteString(" AND f.subscription_id IN (" + placeholders(len(q.SubscriptionIDs)) + ")")
			args = append(args, int64Args(q.SubscriptionIDs)...)
		}
	}
	if q.SubscriptionID != 0 {
		b.WriteString(" AND f.subscription_id = ?")
		args = append(args, q.SubscriptionID)
	}
	if q.ProductCode != "" {
		b.WriteString(" AND p.code = ?")
		args = append(args, q.ProductCode)
	}
	if q.Query != "" {
		b.WriteString(` AND (u.name_key LIKE ? ESCAPE '\' OR lower(f.email) LIKE ? ESCAPE '\')`)
		pattern := "%" + escapeLike(strings.ToLower(q.Query)) + "%"
		args = append(args, pattern, pattern)
	}
	return b.String(), args
}

// FreedRows returns the seats freed in q's range, in name order (the
// user's name key, or the lower-cased email once the user is gone; then
// user and subscription id), at most q.Limit.
func (tx *Tx) FreedRows(ctx context.Context, q usage.ReportQuery) ([]usage.RawRow, error) {
	key := `COALESCE(u.name_key, lower(f.email))`
	if tx.engine == Postgres {
		key = `(` + key + ` COLLATE "C")`
	}
	var b strings.Builder
	b.WriteString(`SELECT f.user_id, COALESCE(u.name, ''), f.email, p.code, p.name, s.id, s.contract_number, s.plan, f.assigned_at,
		r.last_day, (SELECT COUNT(*) FROM usage_days d
		 WHERE d.account_id = s.account_id AND d.user_id = f.user_id AND d.product_id = s.product_id AND d.day >= ?), f.freed_at`)
	where, args := tx.freedWhere(q)
	args = append([]any{int64(q.CutoffDay)}, args...)
	b.WriteString(where)
	if c := q.After; c != nil {
		b.WriteString(" AND (" + key + ", f.user_id, f.subscription_id) > (?, ?, ?)")
		args = append(args, c.Key, c.UserID, c.SubscriptionID)
	}
	b.WriteString(" ORDER BY " + key + ", f.user_id, f.subscription_id")
	if q.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, q.Limit)
	}
	rows, err := tx.query(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("seats freed in the range: %w", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (usage.RawRow, error) {
		var r usage.RawRow
		var assigned, freed int64
		var last sql.NullInt64
		err := row.Scan(&r.UserID, &r.Name, &r.Email, &r.ProductCode, &r.ProductName, &r.SubscriptionID, &r.ContractNumber, &r.Plan,
			&assigned, &last, &r.DaysUsed, &freed)
		r.AssignedAt, r.UnassignedAt = fromMillis(assigned), fromMillis(freed)
		if last.Valid {
			d := usage.Day(last.Int64)
			r.LastDay = &d
		}
		if r.Name == "" {
			r.Name = r.Email
		}
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("seats freed in the range: %w", err)
	}
	return out, nil
}

// FreedTotals counts the seats freed in q's range and their users.
func (tx *Tx) FreedTotals(ctx context.Context, q usage.ReportQuery) (usage.ReportTotals, error) {
	where, args := tx.freedWhere(q)
	var t usage.ReportTotals
	if err := tx.queryRow(ctx, `SELECT COUNT(*), COUNT(DISTINCT f.user_id)`+where, args...).Scan(&t.Seats, &t.Users); err != nil {
		return t, fmt.Errorf("seats freed in the range: %w", err)
	}
	return t, nil
}
