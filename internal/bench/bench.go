// Package bench measures Usher's usage path on a real database against a
// baseline on the same database in the same run: ingest through the HTTP
// endpoint against raw bulk loading, the Usage Report's first page against
// the bare SQL that returns the same rows, and the CSV export against
// streaming the same query (COPY on PostgreSQL). `usher bench` runs it; the
// test suite runs it at a small scale so that it keeps working.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/web"
	"github.com/usherhq/usher/internal/web/console"
	"github.com/usherhq/usher/internal/web/scim"
)

// Config sizes a run. Full is the size the performance goals are set for.
type Config struct {
	Users           int // users in the synthetic account
	Seats           int // assigned seats over five products, at least Users
	Events          int // usage events over Days
	EventsPerUseDay int // events a user sends on a day they use a product
	Days            int // days of usage history, ending yesterday
	Batch           int // events per ingest request (NDJSON)
	Senders         int // ingest requests in flight at once
	ReportRequests  int // requests timed for the report's first page
	PageSize        int // rows on the report's first page
	// Clients is how many clients at once the load part runs (0: none),
	// for LoadFor per endpoint and as long for its bare SQL.
	Clients int
	LoadFor time.Duration
	// SCIMUsers is how many users the SCIM part provisions into one group
	// (0: none), from SCIMSenders clients at once, then SCIMBatch members
	// per PATCH of the group.
	SCIMUsers, SCIMSenders, SCIMBatch int
	// Usher is the usher binary whose `usher serve` the two-process part
	// runs on PostgreSQL, with Clients clients for LoadFor; "" skips it.
	Usher string
}

// Full is the size of the performance goals: 100,000 users, 150,000 seats
// and 10,000,000 events over a year.
func Full() Config {
	return Config{
		Users: 100_000, Seats: 150_000, Events: 10_000_000, EventsPerUseDay: 25, Days: 365,
		Batch: 10_000, Senders: 2, ReportRequests: 200, PageSize: 100,
		Clients: 16, LoadFor: 30 * time.Second,
		SCIMUsers: 10_000, SCIMSenders: 4, SCIMBatch: 100,
	}
}

// MaxScale is the largest scale: ten times the seats of the goals.
const MaxScale = 10

// Scaled returns Full with users and seats multiplied by f (0 < f ≤
// MaxScale), events by f up to twice Full's (above that the run's ingest
// would take hours, and the goals at that size are about seats), and the
// SCIM users by f up to Full's: the goal is 10,000 users into a group,
// and at 100,000 SCIM alone would take most of an hour on SQLite.
func Scaled(f float64) Config {
	c := Full()
	c.Users = max(50, int(float64(c.Users)*f))
	c.Seats = max(c.Users, int(float64(c.Seats)*f))
	c.Events = max(c.EventsPerUseDay*c.Days, int(float64(c.Events)*min(f, 2)))
	c.SCIMUsers = max(50, int(float64(c.SCIMUsers)*min(f, 1)))
	return c
}

func (c Config) validate() error {
	switch {
	case c.Users < 1 || c.Seats < c.Users || c.Seats > 2*c.Users:
		return fmt.Errorf("bench: seats must be between users and twice users (users %d, seats %d)", c.Users, c.Seats)
	case c.EventsPerUseDay < 1 || c.Days < recentDays+1 || c.Events < c.EventsPerUseDay*c.Days:
		return fmt.Errorf("bench: need at least one use-day a day over more than %d days", recentDays)
	case c.Batch < 1 || c.Senders < 1 || c.ReportRequests < 1 || c.PageSize < 1:
		return errors.New("bench: batch, senders, report requests and page size must be positive")
	case c.Clients < 0 || (c.Clients > 0 && c.LoadFor <= 0):
		return errors.New("bench: clients must not be negative, and need a duration")
	case c.SCIMUsers < 0 || (c.SCIMUsers > 0 && (c.SCIMSenders < 1 || c.SCIMBatch < 1 || c.SCIMBatch > access.MaxGroupMembersPerCall)):
		return fmt.Errorf("bench: SCIM users must not be negative, with at least one sender and 1 to %d members per PATCH", access.MaxGroupMembersPerCall)
	}
	return nil
}

// Result holds one engine's figures.
type Result struct {
	Engine string
	Config Config
	Setup  time.Duration // seeding users and seats, not measured against anything

	Ingest    Ingest
	Report    Latency
	Export    Export
	Dashboard Dashboard
	Load      []Load // many clients at once, per endpoint
	Replicas  Replicas
	// Processes is two `usher serve` processes on one PostgreSQL database;
	// zero on SQLite, without Clients or without Config.Usher.
	Processes Processes
	// Serve is one `usher serve` process on the SQLite file under the same
	// load (PeakRSS[0], CPU[0]); PostgreSQL has Processes instead.
	Serve Processes
	SCIM  SCIM // zero without Config.SCIMUsers
	// PeakRSS is the largest resident memory of the process, sampled while
	// it served the measured requests (after seeding); 0 off Linux. The
	// server runs in the benchmark's process, so this bounds usher serve's.
	PeakRSS uint64
}

// Ingest compares events/s through POST /api/v1/usage-events with a raw
// bulk load of the same rows into a table shaped like usage_events.
type Ingest struct {
	Events       int
	Accepted     int
	Duplicates   int
	HTTP         time.Duration
	Raw          time.Duration
	RawMethod    string
	DayWrites    int64 // (user, product, day) rows added
	RollupWrites int64 // rollup rows changed
}

func (i Ingest) HTTPRate() float64 { return rate(i.Events, i.HTTP) }
func (i Ingest) RawRate() float64  { return rate(i.Events, i.Raw) }
func (i Ingest) Ratio() float64    { return i.HTTPRate() / i.RawRate() }

// RollupWritesPerEvent is the write amplification of the rollups.
func (i Ingest) RollupWritesPerEvent() float64 {
	return float64(i.RollupWrites) / float64(max(i.Accepted, 1))
}

// Latency compares the report's first page through HTTP with the bare SQL
// query that returns the same rows.
type Latency struct {
	Query            string // the request timed
	Rows             int    // rows on the page
	HTTPP50, HTTPP99 time.Duration
	SQLP50, SQLP99   time.Duration
	cutoff           int64 // the range's first instant, unix ms, as the page said
}

// Export compares the full CSV export through HTTP with streaming the same
// query from the database (COPY … TO STDOUT on PostgreSQL).
type Export struct {
	Rows          int
	HTTP          time.Duration
	Baseline      time.Duration
	BaselineKind  string
	PeakHeapBytes uint64 // heap in use, growth while the export ran (garbage included)
	// PeakLiveHeapBytes is the growth of the live heap, as the garbage
	// collections during the export (GCs of them) found it: what the
	// export retained.
	PeakLiveHeapBytes uint64
	GCs               int
}

func (e Export) HTTPRate() float64     { return rate(e.Rows, e.HTTP) }
func (e Export) BaselineRate() float64 { return rate(e.Rows, e.Baseline) }
func (e Export) Ratio() float64        { return e.HTTPRate() / e.BaselineRate() }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Run builds the synthetic account in db, which must be freshly migrated and
// empty, and measures. progress, if not nil, hears what it is doing.
func Run(ctx context.Context, db *store.DB, cfg Config, progress func(format string, args ...any)) (Result, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	res := Result{Engine: db.Engine(), Config: cfg}
	now := time.Now()
	start := time.Now()
	w, err := seed(ctx, db, cfg, now, progress)
	if err != nil {
		return res, err
	}
	res.Setup = time.Since(start)

	stopRSS := sampleRSS(&res.PeakRSS)
	defer stopRSS()
	use := usage.New(db.Usage(), usage.Config{})
	srv, base, err := serve(db, use)
	if err != nil {
		return res, err
	}
	defer srv.Close()
	c := &client{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Senders + 1}}, base: base, token: w.token}
	g := newEvents(cfg, w, now)

	progress("ingesting %d events through HTTP", g.total())
	if res.Ingest, err = measureIngest(ctx, c, db, g, use); err != nil {
		return res, err
	}
	if err := analyze(ctx, db); err != nil {
		return res, err
	}
	progress("timing %d report requests", cfg.ReportRequests)
	if res.Report, err = measureReport(ctx, c, db, w, cfg); err != nil {
		return res, err
	}
	progress("exporting the full report as CSV")
	if res.Export, err = measureExport(ctx, c, db, w); err != nil {
		return res, err
	}
	progress("timing %d console dashboard requests", cfg.ReportRequests)
	if res.Dashboard, err = measureDashboard(ctx, c, db, w, cfg); err != nil {
		return res, err
	}
	if cfg.Clients > 0 {
		progress("%d clients at once for %v per endpoint, then its bare SQL", cfg.Clients, cfg.LoadFor)
		if res.Load, err = measureLoad(ctx, c, db, w, cfg, res.Report.cutoff); err != nil {
			return res, err
		}
		progress("%d clients at once for %v over two servers on the same database", cfg.Clients, cfg.LoadFor)
		if res.Replicas, err = measureReplicas(ctx, c, db, cfg); err != nil {
			return res, err
		}
	}
	stopRSS()
	// Measured after the in-process peak above: the processes' memory is
	// their own, and provisioning is not the usage path.
	if cfg.Clients > 0 && cfg.Usher != "" && db.Engine() == store.Postgres {
		progress("%d clients at once for %v over two usher serve processes on the same database", cfg.Clients, cfg.LoadFor)
		if res.Processes, err = measureProcesses(ctx, db, w.token, cfg); err != nil {
			return res, err
		}
	}
	if cfg.Clients > 0 && cfg.Usher != "" && db.Engine() == store.SQLite {
		progress("%d clients at once for %v over one usher serve process on the same SQLite file", cfg.Clients, cfg.LoadFor)
		if res.Serve, err = measureServe(ctx, db, w.token, cfg); err != nil {
			return res, err
		}
	}
	if cfg.SCIMUsers > 0 {
		progress("provisioning %d users into a group over SCIM, then the same rows with plain SQL", cfg.SCIMUsers)
		if res.SCIM, err = measureSCIM(ctx, db, base, cfg); err != nil {
			return res, err
		}
	}
	return res, nil
}

// sampleRSS records the process's peak resident memory in peak every 20 ms
// until the returned function is called (more than once is harmless).
func sampleRSS(peak *uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			*peak = max(*peak, selfRSS())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}

// serve runs the real API handler on a loopback port.
func serve(db *store.DB, use *usage.Service) (*http.Server, string, error) {
	acc := access.New(db.Access(), nil)
	// The console, for the dashboard: its sessions are checked by the same
	// auth service as in production.
	ui, err := console.New(console.Config{Access: acc, Auth: auth.New(db.Auth(), auth.Config{}), Usage: use})
	if err != nil {
		return nil, "", err
	}
	h := web.NewHandler(web.Config{
		Access:  acc,
		Usage:   use,
		Console: ui,
		SCIM:    scim.NewHandler(scim.Config{Access: acc}),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return srv, "http://" + ln.Addr().String(), nil
}
