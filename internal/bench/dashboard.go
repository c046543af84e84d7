package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
)

// goalDashboardP99 is the console home page's goal at full scale.
const goalDashboardP99 = 100 * time.Millisecond

// Dashboard compares the console's home page through HTTP (signed in as
// the primary admin, rendered with its charts) with the bare SQL of the
// counts it shows. The page keeps its counts per data version, so it is
// timed both ways: warm (the same version again) and cold (the first
// request after a change).
type Dashboard struct {
	HTTPP50, HTTPP99 time.Duration // warm
	ColdP50, ColdP99 time.Duration // first request after each change
	SQLP50, SQLP99   time.Duration
}

// dashboardSQL are the page's counts as bare SQL, as storage reads them:
// each contract with its waiting people, the seats by month of assignment
// and the inactive seats of each contract, the users of each product by
// month (kept at ingest), and the seats reclaims took back. Seats are
// counted by index ranges on SQLite and in one bucketed pass on PostgreSQL
// (internal/store/dashboard.go says why).
func dashboardSQL(engine string, accountID int64, subs []int64, bounds []int64, months []int64, cutoff int64) ([]string, [][]any) {
	qs := []string{`
		SELECT s.id, s.product_id, s.plan IN ('standard', 'premium'),
		       (SELECT COUNT(*) FROM seat_waiters w WHERE w.account_id = s.account_id AND w.subscription_id = s.id)
		FROM subscriptions s WHERE s.account_id = ? ORDER BY s.id`}
	args := [][]any{{accountID}}
	if engine == store.Postgres {
		qs = append(qs, `
		SELECT a.subscription_id, width_bucket(a.assigned_at, ?::bigint[]),
		       COUNT(*) FILTER (WHERE a.last_used_at < ? AND a.assigned_at < ?), COUNT(*)
		FROM assignments a WHERE a.account_id = ? GROUP BY 1, 2`)
		args = append(args, []any{bounds[1 : len(bounds)-1], cutoff, cutoff, accountID})
	} else {
		for _, sub := range subs {
			var q strings.Builder
			a := []any{}
			q.WriteString("SELECT ")
			for i := range len(bounds) - 1 {
				lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
				if i > 0 {
					lo = bounds[i]
					q.WriteString(", ")
				}
				if i < len(bounds)-2 {
					hi = bounds[i+1]
				}
				q.WriteString("(SELECT COUNT(*) FROM assignments WHERE account_id = ? AND subscription_id = ? AND assigned_at >= ? AND assigned_at < ?)")
				a = append(a, accountID, sub, lo, hi)
			}
			q.WriteString(", (SELECT COUNT(*) FROM assignments WHERE account_id = ? AND subscription_id = ? AND last_used_at < ? AND assigned_at < ?)")
			a = append(a, accountID, sub, cutoff, cutoff)
			qs, args = append(qs, q.String()), append(args, a)
		}
	}
	qs = append(qs, `
		SELECT product_id, month, users FROM usage_months WHERE account_id = ? AND month >= ? AND month < ?`, `
		SELECT i.currency, COUNT(*), COALESCE(SUM(i.price_cents), 0)
		FROM reclaim_batches b JOIN reclaim_batch_items i ON i.batch_id = b.id
		WHERE b.account_id = ? AND b.created_at >= ? AND b.undone_at = 0 AND i.seat = ?
		GROUP BY i.currency`)
	args = append(args, []any{accountID, months[0], months[len(months)-1]}, []any{accountID, bounds[0], true})
	return qs, args
}

// signInCookie signs the account's primary admin in to the console and
// returns the session cookie.
func signInCookie(ctx context.Context, db *store.DB, w *world) (*http.Cookie, error) {
	actor, err := access.New(db.Access(), nil).Authenticate(ctx, w.token)
	if err != nil {
		return nil, err
	}
	a := auth.New(db.Auth(), auth.Config{Params: auth.Params{Memory: 64, Time: 1, Threads: 1}})
	const password = "bench password, not secret"
	if err := a.SetPassword(ctx, w.account.ID, actor.UserID, password); err != nil {
		return nil, err
	}
	token, _, err := a.SignIn(ctx, actor.Email, password, "")
	if err != nil {
		return nil, err
	}
	return &http.Cookie{Name: "usher_session", Value: token}, nil
}

func measureDashboard(ctx context.Context, c *client, db *store.DB, w *world, cfg Config) (Dashboard, error) {
	var d Dashboard
	cookie, err := signInCookie(ctx, db, w)
	if err != nil {
		return d, fmt.Errorf("dashboard sign-in: %w", err)
	}
	get := func() (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/", nil)
		if err != nil {
			return 0, err
		}
		req.AddCookie(cookie)
		start := time.Now()
		resp, err := c.http.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<svg") || !strings.Contains(string(body), "reclaimed-heading") {
			return 0, fmt.Errorf("dashboard: %s, with a chart %v", resp.Status, strings.Contains(string(body), "<svg"))
		}
		return took, nil
	}
	// Cold: a change to the account's data (its data version moved, as any
	// write does) before each request.
	coldTimes := make([]time.Duration, max(cfg.ReportRequests/10, 3))
	for i := range coldTimes {
		if _, err := db.SQL().ExecContext(ctx, db.Rebind("UPDATE accounts SET data_version = data_version + 1 WHERE id = ?"), w.account.ID); err != nil {
			return d, fmt.Errorf("dashboard: %w", err)
		}
		if coldTimes[i], err = get(); err != nil {
			return d, err
		}
	}
	httpTimes := make([]time.Duration, cfg.ReportRequests)
	for i := range httpTimes {
		if httpTimes[i], err = get(); err != nil {
			return d, err
		}
	}

	today := usage.DayOf(time.Now(), w.loc)
	// The grace of new seats is shorter than the range, so the range's
	// cutoff decides.
	cutoff := usage.StartOfDay(usage.Range3m.Cutoff(today), w.loc).UnixMilli()
	first := today.Month()
	var bounds, months []int64
	for i := range usage.DashboardMonths + 1 {
		m := usage.Day(time.Date(first.Date().Year(), first.Date().Month()+time.Month(i-usage.DashboardMonths+1), 1, 0, 0, 0, 0, time.UTC).Unix() / 86400)
		months = append(months, int64(m))
		bounds = append(bounds, usage.StartOfDay(m, w.loc).UnixMilli())
	}
	var subs []int64
	for _, p := range w.products[:len(w.products)-1] { // the last is Basic, without usage data
		subs = append(subs, p.subscriptionID)
	}
	queries, args := dashboardSQL(db.Engine(), w.account.ID, subs, bounds, months, cutoff)
	sqlTimes := make([]time.Duration, cfg.ReportRequests)
	for i := range sqlTimes {
		start := time.Now()
		for q, text := range queries {
			rows, err := db.SQL().QueryContext(ctx, db.Rebind(text), args[q]...)
			if err != nil {
				return d, fmt.Errorf("bare dashboard query: %w", err)
			}
			for rows.Next() {
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return d, err
			}
		}
		sqlTimes[i] = time.Since(start)
	}
	d.HTTPP50, d.HTTPP99 = percentiles(httpTimes)
	d.ColdP50, d.ColdP99 = percentiles(coldTimes)
	d.SQLP50, d.SQLP99 = percentiles(sqlTimes)
	return d, nil
}
