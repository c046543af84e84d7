package bench

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
)

type client struct {
	http  *http.Client
	base  string
	token string
}

func (c *client) do(ctx context.Context, method, path, contentType, accept string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return resp, nil
}

// ingestRounds is how many parts of the history the ingest and its
// baseline take turns on, so that a change in the machine's load during the
// run weighs on both sides alike.
const ingestRounds = 8

// measureIngest posts every event as NDJSON batches from Senders
// goroutines, and loads the same rows raw into a scratch table, taking
// turns part by part of the history.
func measureIngest(ctx context.Context, c *client, db *store.DB, g *events, use *usage.Service) (Ingest, error) {
	res := Ingest{Events: g.total()}
	if err := createRaw(ctx, db); err != nil {
		return res, fmt.Errorf("raw load: %w", err)
	}
	defer db.SQL().ExecContext(context.WithoutCancel(ctx), "DROP TABLE bench_raw_events") //nolint:errcheck // scratch
	for r := range ingestRounds {
		from, to := r*g.cfg.Days/ingestRounds, (r+1)*g.cfg.Days/ingestRounds
		d, err := ingestHTTP(ctx, c, g, from, to, &res)
		if err != nil {
			return res, err
		}
		res.HTTP += d
		d, method, err := rawLoad(ctx, db, g, from, to)
		if err != nil {
			return res, fmt.Errorf("raw load: %w", err)
		}
		res.Raw += d
		res.RawMethod = method
	}
	if res.Accepted+res.Duplicates != res.Events {
		return res, fmt.Errorf("ingest: %d accepted + %d duplicates, want %d events", res.Accepted, res.Duplicates, res.Events)
	}
	st := use.Stats()
	res.DayWrites, res.RollupWrites = st.DayWrites.Load(), st.RollupWrites.Load()
	return res, nil
}

// ingestHTTP posts the events of days [from, to) and adds what the answers
// counted to res.
func ingestHTTP(ctx context.Context, c *client, g *events, from, to int, res *Ingest) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	batches := make(chan []byte, g.cfg.Senders)
	var accepted, dupes atomic.Int64
	var firstErr error
	var once sync.Once
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	var wg sync.WaitGroup
	for range g.cfg.Senders {
		wg.Go(func() {
			for b := range batches {
				var out usage.IngestResult
				resp, err := c.do(ctx, "POST", "/api/v1/usage-events", "application/x-ndjson", "", bytes.NewReader(b))
				if err == nil {
					err = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
				}
				if err == nil && out.Rejected > 0 {
					err = fmt.Errorf("ingest rejected %d events, first: %+v", out.Rejected, out.Rejections[0])
				}
				if err != nil {
					fail(err)
					continue // drain
				}
				accepted.Add(int64(out.Accepted))
				dupes.Add(int64(out.Duplicates))
			}
		})
	}
	start := time.Now()
	buf := make([]byte, 0, g.cfg.Batch*100)
	n := 0
	err := g.eachIn(from, to, func(seat int, at int64) error {
		buf = g.appendNDJSON(buf, seat, at)
		if n++; n == g.cfg.Batch {
			select {
			case batches <- buf:
			case <-ctx.Done():
				return ctx.Err()
			}
			buf, n = make([]byte, 0, g.cfg.Batch*100), 0
		}
		return nil
	})
	if err == nil && n > 0 {
		batches <- buf
	}
	close(batches)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return elapsed, fmt.Errorf("ingest: %w", firstErr)
	}
	if err != nil {
		return elapsed, fmt.Errorf("ingest: %w", err)
	}
	res.Accepted += int(accepted.Load())
	res.Duplicates += int(dupes.Load())
	return elapsed, nil
}

// createRaw makes the baseline's scratch table, with usage_events' columns
// and keys.
func createRaw(ctx context.Context, db *store.DB) error {
	const ddl = `CREATE TABLE bench_raw_events (
		account_id BIGINT NOT NULL, user_id BIGINT NOT NULL, product_id BIGINT NOT NULL, at BIGINT NOT NULL,
		PRIMARY KEY (account_id, user_id, product_id, at))`
	if _, err := db.SQL().ExecContext(ctx, ddl); err != nil {
		return err
	}
	_, err := db.SQL().ExecContext(ctx, "CREATE INDEX bench_raw_events_by_at ON bench_raw_events (at)")
	return err
}

// rawLoad loads the events of days [from, to), already resolved to ids,
// into the scratch table, the fastest way each engine offers.
func rawLoad(ctx context.Context, db *store.DB, g *events, from, to int) (time.Duration, string, error) {
	acct := g.w.account.ID
	row := func(seat int, at int64) []any {
		s := g.w.seats[seat]
		return []any{acct, g.w.userIDs[s.user], g.w.products[s.product].id, at}
	}
	start := time.Now()
	if db.Engine() == store.Postgres {
		conn, err := db.SQL().Conn(ctx)
		if err != nil {
			return 0, "", err
		}
		defer conn.Close()
		err = conn.Raw(func(dc any) error {
			pc := dc.(*stdlib.Conn).Conn()
			rows := make(chan []any, 1024)
			errc := make(chan error, 1)
			go func() {
				defer close(rows)
				errc <- g.eachIn(from, to, func(seat int, at int64) error {
					select {
					case rows <- row(seat, at):
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
			}()
			_, err := pc.CopyFrom(ctx, pgx.Identifier{"bench_raw_events"}, []string{"account_id", "user_id", "product_id", "at"},
				pgx.CopyFromFunc(func() ([]any, error) {
					r, ok := <-rows
					if !ok {
						return nil, nil
					}
					return r, nil
				}))
			for range rows { // let the generator finish if COPY stopped early
			}
			if gerr := <-errc; err == nil {
				err = gerr
			}
			return err
		})
		return time.Since(start), "pgx CopyFrom into a table with the same keys", err
	}
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO bench_raw_events VALUES (?, ?, ?, ?)")
		if err != nil {
			return err
		}
		defer stmt.Close()
		return g.eachIn(from, to, func(seat int, at int64) error {
			_, err := stmt.ExecContext(ctx, row(seat, at)...)
			return err
		})
	})
	return time.Since(start), "one transaction of prepared INSERTs into a table with the same keys", err
}

// reportPage is the part of the report's JSON the benchmark checks.
type reportPage struct {
	Cutoff string `json:"cutoff"`
	Rows   []struct {
		UserID         int64 `json:"user_id"`
		SubscriptionID int64 `json:"subscription_id"`
	} `json:"rows"`
}

// bareReportSQL returns the page's seats by plain SQL on the same schema:
// inactive seats on plans with usage data, in name order, with what a row
// shows. cutoffAt is the range's first midnight, as the service computes it.
// On SQLite the join is written as CROSS JOIN, SQLite's way of fixing the
// join order, so that it walks users in name order as the report does;
// left to itself it sorts every inactive seat, hundreds of times slower,
// which would make a baseline too easy to beat.
const bareReportSQL = `
	SELECT a.user_id, a.subscription_id, u.name, u.email, p.code, s.contract_number, s.plan, a.assigned_at, r.last_day
	FROM users u
	%s assignments a ON a.account_id = u.account_id AND a.user_id = u.id
	JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id
	JOIN products p ON p.id = s.product_id
	LEFT JOIN usage_rollups r ON r.account_id = a.account_id AND r.user_id = a.user_id AND r.product_id = s.product_id
	WHERE u.account_id = ? AND s.plan IN ('standard', 'premium') AND a.last_used_at < ? AND a.assigned_at < ?
	ORDER BY u.name_key, a.user_id, a.subscription_id
	LIMIT ?`

func measureReport(ctx context.Context, c *client, db *store.DB, w *world, cfg Config) (Latency, error) {
	lat := Latency{Query: fmt.Sprintf("/api/v1/reports/usage?status=inactive&range=3m&limit=%d", cfg.PageSize)}
	var page reportPage
	httpTimes := make([]time.Duration, cfg.ReportRequests)
	for i := range httpTimes {
		start := time.Now()
		resp, err := c.do(ctx, "GET", lat.Query, "", "application/json", nil)
		if err != nil {
			return lat, err
		}
		if i == 0 {
			err = json.NewDecoder(resp.Body).Decode(&page)
		} else {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
		if err != nil {
			return lat, err
		}
		httpTimes[i] = time.Since(start)
	}
	lat.Rows = len(page.Rows)
	cut, err := time.ParseInLocation(time.DateOnly, page.Cutoff, w.loc)
	if err != nil {
		return lat, fmt.Errorf("report cutoff %q: %w", page.Cutoff, err)
	}

	join := "JOIN"
	if db.Engine() == store.SQLite {
		join = "CROSS JOIN"
	}
	lat.cutoff = cut.UnixMilli()
	query := db.Rebind(fmt.Sprintf(bareReportSQL, join))
	sqlTimes := make([]time.Duration, cfg.ReportRequests)
	var ids [][2]int64
	for i := range sqlTimes {
		start := time.Now()
		rows, err := db.SQL().QueryContext(ctx, query, w.account.ID, cut.UnixMilli(), cut.UnixMilli(), cfg.PageSize)
		if err != nil {
			return lat, fmt.Errorf("bare report query: %w", err)
		}
		ids = ids[:0]
		for rows.Next() {
			var u, s, assigned int64
			var name, email, code, contract, plan string
			var last sql.NullInt64
			if err := rows.Scan(&u, &s, &name, &email, &code, &contract, &plan, &assigned, &last); err != nil {
				rows.Close()
				return lat, err
			}
			ids = append(ids, [2]int64{u, s})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return lat, err
		}
		sqlTimes[i] = time.Since(start)
	}
	// The comparison means something only if both return the same seats.
	if len(ids) != len(page.Rows) {
		return lat, fmt.Errorf("report: the API's page has %d rows, the bare query %d", len(page.Rows), len(ids))
	}
	for i, r := range page.Rows {
		if ids[i] != [2]int64{r.UserID, r.SubscriptionID} {
			return lat, fmt.Errorf("report row %d: API has seat %d/%d, the bare query %d/%d", i, r.UserID, r.SubscriptionID, ids[i][0], ids[i][1])
		}
	}
	lat.HTTPP50, lat.HTTPP99 = percentiles(httpTimes)
	lat.SQLP50, lat.SQLP99 = percentiles(sqlTimes)
	return lat, nil
}

// percentiles returns the 50th and 99th percentiles (nearest rank).
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.50), rank(0.99)
}

// exportSQL is the export's query, every seat with its days used in the
// range and its status, in the report's order. Its four numbers are
// formatted in because COPY takes no parameters; they are integers.
const exportSQL = `
	SELECT u.name, u.email, p.code, p.name, s.contract_number, s.plan, a.assigned_at, r.last_day,
	       (SELECT COUNT(*) FROM usage_days d
	        WHERE d.account_id = a.account_id AND d.user_id = a.user_id AND d.product_id = s.product_id AND d.day >= %[2]d) AS days_used,
	       CASE WHEN s.plan NOT IN ('standard', 'premium') THEN 'unavailable'
	            WHEN a.last_used_at < %[3]d AND a.assigned_at < %[3]d THEN 'inactive'
	            ELSE 'active' END AS status
	FROM assignments a
	JOIN users u ON u.account_id = a.account_id AND u.id = a.user_id
	JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id
	JOIN products p ON p.id = s.product_id
	LEFT JOIN usage_rollups r ON r.account_id = a.account_id AND r.user_id = a.user_id AND r.product_id = s.product_id
	WHERE a.account_id = %[1]d
	ORDER BY u.name_key, a.user_id, a.subscription_id`

func measureExport(ctx context.Context, c *client, db *store.DB, w *world) (Export, error) {
	var exp Export
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	liveBefore := heapLive()
	peak := sampleHeap()

	start := time.Now()
	resp, err := c.do(ctx, "GET", "/api/v1/reports/usage?range=3m", "", "text/csv", nil)
	if err != nil {
		peak()
		return exp, err
	}
	cut, err := time.ParseInLocation(time.DateOnly, resp.Header.Get("Usher-Report-Cutoff"), w.loc)
	if err != nil {
		resp.Body.Close()
		peak()
		return exp, fmt.Errorf("export cutoff: %w", err)
	}
	lines, err := countLines(resp.Body)
	resp.Body.Close()
	exp.HTTP = time.Since(start)
	top := peak()
	if err != nil {
		return exp, fmt.Errorf("export: %w", err)
	}
	exp.Rows = lines - 1 // the header
	if top.inUse > before.HeapInuse {
		exp.PeakHeapBytes = top.inUse - before.HeapInuse
	}
	if top.live > liveBefore {
		exp.PeakLiveHeapBytes = top.live - liveBefore
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	exp.GCs = int(after.NumGC - before.NumGC)

	query := fmt.Sprintf(exportSQL, w.account.ID, int64(usage.DayOf(cut, w.loc)), cut.UnixMilli())
	var rows int
	start = time.Now()
	if db.Engine() == store.Postgres {
		exp.BaselineKind = "COPY (same query) TO STDOUT WITH CSV"
		rows, err = copyTo(ctx, db, "COPY ("+query+") TO STDOUT WITH (FORMAT csv)")
	} else {
		exp.BaselineKind = "the same query streamed into encoding/csv"
		rows, err = queryToCSV(ctx, db, query)
	}
	exp.Baseline = time.Since(start)
	if err != nil {
		return exp, fmt.Errorf("export baseline: %w", err)
	}
	if rows != exp.Rows {
		return exp, fmt.Errorf("export: HTTP gave %d rows, the baseline %d", exp.Rows, rows)
	}
	return exp, nil
}

// heapPeak is the most sampleHeap saw of the heap: in use (live objects
// and garbage not collected yet), and live as of the latest collection.
type heapPeak struct{ inUse, live uint64 }

// heapLive is the heap that the latest garbage collection found reachable.
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// sampleHeap samples the heap every few milliseconds until the returned
// function is called, which returns the largest values seen. The heap in
// use grows with garbage until the next collection, which the runtime lets
// grow as large as the live heap (GOGC=100): in the benchmark's process,
// which holds the synthetic account, that headroom grows with the scale
// whatever the export keeps. The live heap after each collection is what
// the export really holds (decision 0036).
func sampleHeap() func() heapPeak {
	var mu sync.Mutex
	var top heapPeak
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			live := heapLive()
			mu.Lock()
			top.inUse, top.live = max(top.inUse, m.HeapInuse), max(top.live, live)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() heapPeak {
		close(done)
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		return top
	}
}

func countLines(r io.Reader) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
			n++
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func copyTo(ctx context.Context, db *store.DB, sqlText string) (int, error) {
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var n int64
	err = conn.Raw(func(dc any) error {
		tag, err := dc.(*stdlib.Conn).Conn().PgConn().CopyTo(ctx, io.Discard, sqlText)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

func queryToCSV(ctx context.Context, db *store.DB, sqlText string) (int, error) {
	rows, err := db.SQL().QueryContext(ctx, sqlText)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cw := csv.NewWriter(io.Discard)
	rec := make([]string, 10)
	var last sql.NullInt64
	var assigned, days int64
	n := 0
	for rows.Next() {
		if err := rows.Scan(&rec[0], &rec[1], &rec[2], &rec[3], &rec[4], &rec[5], &assigned, &last, &days, &rec[9]); err != nil {
			return n, err
		}
		rec[6], rec[7], rec[8] = itoa(assigned), "", itoa(days)
		if last.Valid {
			rec[7] = itoa(last.Int64)
		}
		if err := cw.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	cw.Flush()
	return n, errors.Join(rows.Err(), cw.Error())
}
