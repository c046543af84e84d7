package store

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// DashboardSeats counts what the dashboard shows of seats without
// grouping an account's seats row by row on SQLite, where such a scan of
// 150,000 seats took over half a second (docs/performance.md): there each
// count is a range of an index — inactive seats those of
// assignments_by_last_use below the cutoff whose assignment is old enough,
// seats by month of assignment ranges of assignments_by_assigned_at. On
// PostgreSQL, whose index-only scans visit the table for pages the ingest's
// seat updates keep changing, one pass over the account's seats, bucketed
// by width_bucket, is cheaper. Use per month comes from usage_months, which
// the ingest keeps.
func (tx *Tx) DashboardSeats(ctx context.Context, q usage.ReportQuery, b usage.MonthBounds) ([]usage.ContractCounts, []usage.ProductMonths, error) {
	subs, err := tx.query(ctx, `
		SELECT s.id, s.product_id, s.plan IN (`+usagePlanList+`),
		       (SELECT COUNT(*) FROM seat_waiters w WHERE w.account_id = s.account_id AND w.subscription_id = s.id)
		FROM subscriptions s WHERE s.account_id = ? ORDER BY s.id`, q.AccountID)
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard seats: %w", err)
	}
	type sub struct {
		id, product int64
		usageData   bool
		waiting     int
	}
	list, err := collect(subs, func(row interface{ Scan(...any) error }) (sub, error) {
		var s sub
		err := row.Scan(&s.id, &s.product, &s.usageData, &s.waiting)
		return s, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard seats: %w", err)
	}
	months := len(b.At) - 1
	inactive := map[int64]int{}
	held := map[int64][]int{} // per subscription with usage data, seats assigned in each month
	for _, s := range list {
		if s.usageData {
			held[s.id] = make([]int, months)
		}
	}
	if tx.engine == Postgres {
		bounds := b.At[1:months]
		rows, err := tx.query(ctx, `
			SELECT a.subscription_id, width_bucket(a.assigned_at, ?::bigint[]),
			       COUNT(*) FILTER (WHERE a.last_used_at < ? AND a.assigned_at < ?), COUNT(*)
			FROM assignments a WHERE a.account_id = ?
			GROUP BY 1, 2`, bounds, millis(q.CutoffAt), millis(q.AssignedBefore), q.AccountID)
		if err != nil {
			return nil, nil, fmt.Errorf("dashboard seats: %w", err)
		}
		for rows.Next() {
			var id int64
			var m, in, n int
			if err := rows.Scan(&id, &m, &in, &n); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("dashboard seats: %w", err)
			}
			if h := held[id]; h != nil {
				h[m] += n
				inactive[id] += in
			}
		}
		if err := rows.Close(); err != nil {
			return nil, nil, fmt.Errorf("dashboard seats: %w", err)
		}
	} else {
		for _, s := range list {
			if !s.usageData {
				continue
			}
			// Month i's seats were assigned in [lo, hi): before month 1
			// for the first, from the current month's start on for the
			// last.
			var sql strings.Builder
			args := []any{}
			for i := range months {
				lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
				if i > 0 {
					lo = b.At[i]
				}
				if i < months-1 {
					hi = b.At[i+1]
				}
				if i > 0 {
					sql.WriteString(", ")
				}
				sql.WriteString(`(SELECT COUNT(*) FROM assignments a
					WHERE a.account_id = ? AND a.subscription_id = ? AND a.assigned_at >= ? AND a.assigned_at < ?)`)
				args = append(args, q.AccountID, s.id, lo, hi)
			}
			sql.WriteString(`, (SELECT COUNT(*) FROM assignments a
				WHERE a.account_id = ? AND a.subscription_id = ? AND a.last_used_at < ? AND a.assigned_at < ?)`)
			args = append(args, q.AccountID, s.id, millis(q.CutoffAt), millis(q.AssignedBefore))
			dest := make([]any, 0, months+1)
			for i := range held[s.id] {
				dest = append(dest, &held[s.id][i])
			}
			var in int
			dest = append(dest, &in)
			if err := tx.queryRow(ctx, "SELECT "+sql.String(), args...).Scan(dest...); err != nil {
				return nil, nil, fmt.Errorf("dashboard seats: %w", err)
			}
			inactive[s.id] = in
		}
	}

	var contracts []usage.ContractCounts
	for _, s := range list {
		if q.SubscriptionIDs == nil || slices.Contains(q.SubscriptionIDs, s.id) {
			contracts = append(contracts, usage.ContractCounts{SubscriptionID: s.id, Inactive: inactive[s.id], Waiting: s.waiting})
		}
	}
	byProduct := map[int64]*usage.ProductMonths{}
	var order []int64
	for _, s := range list {
		h := held[s.id]
		if h == nil {
			continue
		}
		p, ok := byProduct[s.product]
		if !ok {
			p = &usage.ProductMonths{ProductID: s.product, Held: make([]int, months), Active: make([]int, months)}
			byProduct[s.product] = p
			order = append(order, s.product)
		}
		sum := 0
		for m, n := range h {
			sum += n
			p.Held[m] += sum
		}
	}
	index := make(map[usage.Day]int, months)
	for i, d := range b.Days[:months] {
		index[d] = i
	}
	rows, err := tx.query(ctx, `
		SELECT product_id, month, users FROM usage_months
		WHERE account_id = ? AND month >= ? AND month < ?`, q.AccountID, int64(b.Days[0]), int64(b.Days[months]))
	if err != nil {
		return nil, nil, fmt.Errorf("use months: %w", err)
	}
	for rows.Next() {
		var pid int64
		var m usage.Day
		var c int
		if err := rows.Scan(&pid, &m, &c); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("use months: %w", err)
		}
		i, ok := index[m]
		if p := byProduct[pid]; p != nil && ok {
			p.Active[i] = c
		}
	}
	if err := rows.Close(); err != nil {
		return nil, nil, fmt.Errorf("use months: %w", err)
	}
	out := make([]usage.ProductMonths, 0, len(order))
	for _, id := range order {
		p := byProduct[id]
		for m := range p.Active {
			// Users of the product without a seat of it do not make seats
			// active.
			p.Active[m] = min(p.Active[m], p.Held[m])
		}
		out = append(out, *p)
	}
	return contracts, out, nil
}

// ReclaimedSince counts the seats reclaims took back since, and not
// undone, with what they cost per year, per currency ("" for seats
// without a price).
func (tx *Tx) ReclaimedSince(ctx context.Context, accountID int64, since time.Time) ([]usher.Cost, error) {
	rows, err := tx.query(ctx, `
		SELECT i.currency, COUNT(*), COALESCE(SUM(i.price_cents), 0)
		FROM reclaim_batches b JOIN reclaim_batch_items i ON i.batch_id = b.id
		WHERE b.account_id = ? AND b.created_at >= ? AND b.undone_at = 0 AND i.seat = ?
		GROUP BY i.currency ORDER BY i.currency`, accountID, millis(since), true)
	if err != nil {
		return nil, fmt.Errorf("reclaimed seats: %w", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (usher.Cost, error) {
		var c usher.Cost
		err := row.Scan(&c.Currency, &c.Seats, &c.Cents)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("reclaimed seats: %w", err)
	}
	return out, nil
}
