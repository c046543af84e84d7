package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
)

// Goals of many clients at once (performance issue): each endpoint at
// least half the throughput of its bare SQL at the same concurrency, with
// p99 within 50 ms.
const (
	goalLoadRatio = 0.5
	goalLoadP99   = 50 * time.Millisecond
)

// Load is one endpoint under Clients concurrent clients for a while,
// driven by vegeta, against its bare SQL run by as many goroutines on the
// same connection pool for as long.
type Load struct {
	Path              string // the request, {id} for a user id
	Requests, Errors  int
	RPS               float64
	P50, P99          time.Duration
	SQLRPS            float64
	SQLP50, SQLP99    time.Duration
	ErrorText         string // the first error, if any
	BaselineQueryRows int    // rows the bare SQL returned, once
}

// Ratio is the endpoint's throughput against its bare SQL's.
func (l Load) Ratio() float64 {
	if l.SQLRPS == 0 {
		return 0
	}
	return l.RPS / l.SQLRPS
}

// bareAccessSQL is what GET /users/{id}/access shows: every contract of the
// account with the user's seat, if any, and its services.
const bareAccessSQL = `
	SELECT s.id, p.code, s.contract_number, a.assigned_at,
	       (SELECT COUNT(*) FROM assignment_services x
	        WHERE x.account_id = a.account_id AND x.user_id = a.user_id AND x.subscription_id = a.subscription_id)
	FROM subscriptions s
	JOIN products p ON p.id = s.product_id
	LEFT JOIN assignments a ON a.account_id = s.account_id AND a.subscription_id = s.id AND a.user_id = ?
	WHERE s.account_id = ?
	ORDER BY s.id`

// measureLoad runs the report's first page and a user's access under
// cfg.Clients clients for cfg.LoadFor each, then their bare SQL the same way.
func measureLoad(ctx context.Context, c *client, db *store.DB, w *world, cfg Config, reportCutoff int64) ([]Load, error) {
	reportPath := fmt.Sprintf("/api/v1/reports/usage?status=inactive&range=3m&limit=%d", cfg.PageSize)
	join := "JOIN"
	if db.Engine() == store.SQLite {
		join = "CROSS JOIN"
	}
	// Prepared once, as the server keeps its statements compiled (the
	// statement cache on SQLite, pgx's on PostgreSQL).
	reportSQL, err := db.ReadSQL().PrepareContext(ctx, db.Rebind(fmt.Sprintf(bareReportSQL, join)))
	if err != nil {
		return nil, fmt.Errorf("load: bare report query: %w", err)
	}
	defer reportSQL.Close()
	accessSQL, err := db.ReadSQL().PrepareContext(ctx, db.Rebind(bareAccessSQL))
	if err != nil {
		return nil, fmt.Errorf("load: bare access query: %w", err)
	}
	defer accessSQL.Close()
	var next atomic.Uint64
	userID := func() int64 { return w.userIDs[int(next.Add(1)*7919)%len(w.userIDs)] }

	runs := []struct {
		path  string
		url   func() string
		query func(ctx context.Context) (int, error)
	}{
		{reportPath, func() string { return c.base + reportPath }, func(ctx context.Context) (int, error) {
			return countRows(ctx, reportSQL, w.account.ID, reportCutoff, reportCutoff, cfg.PageSize)
		}},
		{"/api/v1/users/{id}/access", func() string { return c.base + "/api/v1/users/" + strconv.FormatInt(userID(), 10) + "/access" },
			func(ctx context.Context) (int, error) {
				return countRows(ctx, accessSQL, userID(), w.account.ID)
			}},
	}
	var out []Load
	for _, r := range runs {
		l, err := measureLoadOf(ctx, c, cfg, r.path, r.url, r.query)
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

// measureLoadOf runs one endpoint (url gives each request's) under
// cfg.Clients clients for cfg.LoadFor, then its bare SQL (query) the same
// way.
func measureLoadOf(ctx context.Context, c *client, cfg Config, path string, url func() string, query func(context.Context) (int, error)) (Load, error) {
	l := Load{Path: path}
	header := http.Header{"Authorization": {"Bearer " + c.token}, "Accept": {"application/json"}}
	targeter := func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header = "GET", url(), header
		return nil
	}
	r := attack(targeter, cfg, path)
	l.Requests, l.Errors, l.ErrorText, l.RPS, l.P50, l.P99 = r.Requests, r.Errors, r.ErrorText, r.RPS, r.P50, r.P99
	if l.Requests == 0 {
		return l, fmt.Errorf("load %s: no request was sent", path)
	}
	var err error
	if l.SQLRPS, l.SQLP50, l.SQLP99, l.BaselineQueryRows, err = hammer(ctx, cfg.Clients, cfg.LoadFor, query); err != nil {
		return l, fmt.Errorf("load %s, bare SQL: %w", path, err)
	}
	return l, nil
}

// countRows runs a statement prepared on the pool the server's reads use
// (on SQLite the reader pool, not the single writer connection), so that
// the baseline has as many connections as the requests it is compared with.
func countRows(ctx context.Context, stmt *sql.Stmt, args ...any) (int, error) {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// hammer runs query from clients goroutines for d, each again as soon as
// it returns, and gives the completed queries per second and their p50 and
// p99.
func hammer(ctx context.Context, clients int, d time.Duration, query func(context.Context) (int, error)) (rps float64, p50, p99 time.Duration, rows int, err error) {
	var (
		mu    sync.Mutex
		times []time.Duration
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t := time.Now()
				n, err := query(ctx)
				if err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
				mu.Lock()
				rows = n
				mu.Unlock()
			}
			mu.Lock()
			times = append(times, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if first != nil {
		return 0, 0, 0, 0, first
	}
	if len(times) == 0 {
		return 0, 0, 0, 0, fmt.Errorf("no query completed in %v", d)
	}
	slices.Sort(times)
	p50, p99 = percentiles(times)
	return float64(len(times)) / time.Since(start).Seconds(), p50, p99, rows, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Replicas is the report's first page under Clients clients spread over two
// servers, each with its own connection pool, on one database.
type Replicas struct {
	Requests, Errors int
	RPS              float64 // both servers together
	P50, P99         time.Duration
	ErrorText        string
}

// measureReplicas starts a second server on a second DB opened on the same
// database and sends the report's first page to both in turn.
func measureReplicas(ctx context.Context, c *client, db *store.DB, cfg Config) (Replicas, error) {
	var r Replicas
	db2, err := db.OpenAgain(ctx)
	if err != nil {
		return r, fmt.Errorf("second replica: %w", err)
	}
	defer db2.Close()
	srv, base2, err := serve(db2, usage.New(db2.Usage(), usage.Config{}))
	if err != nil {
		return r, fmt.Errorf("second replica: %w", err)
	}
	defer srv.Close()
	return reportOver([]string{c.base, base2}, c.token, cfg, "replicas"), nil
}

// reportOver sends the report's first page to bases in turn from
// cfg.Clients clients for cfg.LoadFor, with token.
func reportOver(bases []string, token string, cfg Config, name string) Replicas {
	path := fmt.Sprintf("/api/v1/reports/usage?status=inactive&range=3m&limit=%d", cfg.PageSize)
	var next atomic.Uint64
	header := http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}}
	targeter := func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header = "GET", bases[next.Add(1)%uint64(len(bases))]+path, header
		return nil
	}
	return attack(targeter, cfg, name)
}

// attack sends targeter's requests from cfg.Clients clients for
// cfg.LoadFor and returns what came back. Rate 0 with MaxWorkers: each
// client sends its next request as soon as the last is answered.
func attack(targeter vegeta.Targeter, cfg Config, name string) Replicas {
	n := uint64(cfg.Clients)
	atk := vegeta.NewAttacker(vegeta.Workers(n), vegeta.MaxWorkers(n), vegeta.Connections(cfg.Clients), vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second))
	var m vegeta.Metrics
	for res := range atk.Attack(targeter, vegeta.Rate{Freq: 0}, cfg.LoadFor, name) {
		m.Add(res)
	}
	m.Close()
	var r Replicas
	r.Requests = int(m.Requests)
	r.Errors = r.Requests - int(m.Success*float64(m.Requests)+0.5)
	if len(m.Errors) > 0 {
		r.ErrorText = m.Errors[0]
	}
	r.RPS, r.P50, r.P99 = m.Throughput, m.Latencies.P50, m.Latencies.P99
	return r
}
