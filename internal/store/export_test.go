package store

import (
	"context"

	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/usage"
)

// UsageQueriesForTest returns the SQL and arguments of the report's page
// and totals queries and of pruning as the engine runs them, so the plan
// test can EXPLAIN them.
func UsageQueriesForTest(engine string, q usage.ReportQuery) map[string][2]any {
	tx := &Tx{engine: engine}
	page, pageArgs := tx.reportQuery(q, false)
	totals, totalArgs := tx.reportTotalsQuery(q)
	cost, costArgs := tx.inactiveCostQuery(q)
	subs := q.SubscriptionIDs
	if len(subs) == 0 {
		subs = []int64{1}
	}
	seats, seatArgs := inactiveSeatsQuery(reclaim.SeatQuery{AccountID: q.AccountID, SubscriptionIDs: subs, UsedBefore: q.CutoffAt, AssignedBefore: q.AssignedBefore})
	return map[string][2]any{
		"page":          {tx.bind(page), pageArgs},
		"totals":        {tx.bind(totals), totalArgs},
		"cost":          {tx.bind(cost), costArgs},
		"reclaim seats": {tx.bind(seats), seatArgs},
		"prune":         {tx.bind(pruneEventsSQL), []any{int64(1), 10}},
	}
}

// ExecForTest runs a statement in tx, for tests that need to take row
// locks in a chosen order.
func ExecForTest(ctx context.Context, tx *Tx, query string, args ...any) error {
	_, err := tx.exec(ctx, query, args...)
	return err
}

// MigrateToForTest applies the migrations up to version upTo.
func (db *DB) MigrateToForTest(ctx context.Context, upTo int) error { return db.migrateTo(ctx, upTo) }

// VersionsForTest lists the engine's schema versions in order.
func VersionsForTest(engine string) []int {
	ms, err := migrations(engine)
	if err != nil {
		panic(err)
	}
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.version
	}
	return out
}

// UserNameLookupForTest is the SQL that finds a user by userName, as the
// engine runs it, so the plan test can EXPLAIN it.
func UserNameLookupForTest(engine string) string {
	return (&Tx{engine: engine}).bind(userNameLookup)
}
