package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/usherhq/usher/internal/usage"
)

// InactiveBySubscription counts the inactive seats of each subscription in
// q, by the same condition as the report.
func (tx *Tx) InactiveBySubscription(ctx context.Context, q usage.ReportQuery) (map[int64]int, error) {
	q.Status = string(usage.StatusInactive)
	from, args := tx.reportWhere(q, false, false, false)
	rows, err := tx.query(ctx, `SELECT a.subscription_id, COUNT(*)`+from+` GROUP BY a.subscription_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("inactive by subscription: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("inactive by subscription: %w", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inactive by subscription: %w", err)
	}
	return out, nil
}

// bucket is a SQL CASE giving the index of the bound interval col falls in:
// 0 before bounds[1], …, len(bounds)-2 from the last interval's start on.
func bucket(col string, n int) string {
	var b strings.Builder
	b.WriteString("CASE")
	for i := 1; i < n-1; i++ {
		b.WriteString(" WHEN " + col + " < ? THEN " + fmt.Sprint(i-1))
	}
	b.WriteString(" ELSE " + fmt.Sprint(n-2) + " END")
	return b.String()
}

// SeatMonths counts, per product and month, today's seats on plans with
// usage data assigned before each month's end, and the users who used the
// product in the month. Two
// grouped scans: the account's seats, and its use days since the first
// month.
func (tx *Tx) SeatMonths(ctx context.Context, accountID int64, b usage.MonthBounds) ([]usage.ProductMonths, error) {
	n := len(b.At)
	months := n - 1
	byProduct := map[int64]*usage.ProductMonths{}
	var order []int64
	get := func(id int64) *usage.ProductMonths {
		p, ok := byProduct[id]
		if !ok {
			p = &usage.ProductMonths{ProductID: id, Held: make([]int, months), Active: make([]int, months)}
			byProduct[id] = p
			order = append(order, id)
		}
		return p
	}
	// Seats: assigned before month 0 count from month 0 on.
	args := []any{}
	for _, at := range b.At[1 : n-1] {
		args = append(args, at)
	}
	args = append(args, accountID)
	rows, err := tx.query(ctx, `
		SELECT s.product_id, `+bucket("a.assigned_at", n)+` AS m, COUNT(*)
		FROM assignments a
		JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id
		WHERE a.account_id = ? AND s.plan IN (`+usagePlanList+`)
		GROUP BY s.product_id, m`, args...)
	if err != nil {
		return nil, fmt.Errorf("seat months: %w", err)
	}
	assigned := map[int64][]int{}
	for rows.Next() {
		var pid int64
		var m, c int
		if err := rows.Scan(&pid, &m, &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("seat months: %w", err)
		}
		get(pid)
		if assigned[pid] == nil {
			assigned[pid] = make([]int, months)
		}
		assigned[pid][m] += c
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("seat months: %w", err)
	}
	for pid, counts := range assigned {
		sum := 0
		for m, c := range counts {
			sum += c
			byProduct[pid].Held[m] = sum
		}
	}
	args = args[:0]
	for _, d := range b.Days[1 : n-1] {
		args = append(args, int64(d))
	}
	args = append(args, accountID, int64(b.Days[0]))
	rows, err = tx.query(ctx, `
		SELECT product_id, `+bucket("day", n)+` AS m, COUNT(DISTINCT user_id)
		FROM usage_days
		WHERE account_id = ? AND day >= ?
		GROUP BY product_id, m`, args...)
	if err != nil {
		return nil, fmt.Errorf("use months: %w", err)
	}
	for rows.Next() {
		var pid int64
		var m, c int
		if err := rows.Scan(&pid, &m, &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("use months: %w", err)
		}
		if p, ok := byProduct[pid]; ok {
			p.Active[m] = c
		}
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("use months: %w", err)
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
	return out, nil
}
