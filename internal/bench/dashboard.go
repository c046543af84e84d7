package bench

import (
	"context"
	"fmt"
	"io"
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
// counts it shows.
type Dashboard struct {
	// Cold is the first request, before the counts are cached for the
	// account's data version.
	Cold             time.Duration
	HTTPP50, HTTPP99 time.Duration
	SQLP50, SQLP99   time.Duration
}

// dashboardSQL are the page's counts as plain SQL: inactive seats per
// contract over 3 months, and seats and users of each product by month.
// Their parameters are the 3-month cutoff twice, the first month's start
// (as an instant and as a day).
var dashboardSQL = []string{`
	SELECT a.subscription_id, COUNT(*) FROM assignments a
	JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id
	WHERE a.account_id = ? AND s.plan IN ('standard', 'premium') AND a.last_used_at < ? AND a.assigned_at < ?
	GROUP BY a.subscription_id`, `
	SELECT s.product_id, a.assigned_at >= ?, COUNT(*) FROM assignments a
	JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id
	WHERE a.account_id = ? AND s.plan IN ('standard', 'premium')
	GROUP BY 1, 2`, `
	SELECT product_id, day / 30, COUNT(DISTINCT user_id) FROM usage_days
	WHERE account_id = ? AND day >= ?
	GROUP BY 1, 2`}

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
	httpTimes := make([]time.Duration, cfg.ReportRequests)
	for i := range httpTimes {
		req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/", nil)
		if err != nil {
			return d, err
		}
		req.AddCookie(cookie)
		start := time.Now()
		resp, err := c.http.Do(req)
		if err != nil {
			return d, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		httpTimes[i] = time.Since(start)
		if err != nil {
			return d, err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<svg") {
			return d, fmt.Errorf("dashboard: %s, with a chart %v", resp.Status, strings.Contains(string(body), "<svg"))
		}
	}
	today := usage.DayOf(time.Now(), w.loc)
	cutoff := usage.StartOfDay(usage.Range3m.Cutoff(today), w.loc).UnixMilli()
	firstDay := today - 365
	firstAt := usage.StartOfDay(firstDay, w.loc).UnixMilli()
	args := [][]any{{w.account.ID, cutoff, cutoff}, {firstAt, w.account.ID}, {w.account.ID, int64(firstDay)}}
	sqlTimes := make([]time.Duration, cfg.ReportRequests)
	for i := range sqlTimes {
		start := time.Now()
		for q, text := range dashboardSQL {
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
	d.Cold = httpTimes[0]
	d.HTTPP50, d.HTTPP99 = percentiles(httpTimes)
	d.SQLP50, d.SQLP99 = percentiles(sqlTimes)
	return d, nil
}
