package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/bench"
	"github.com/usherhq/usher/internal/store"
)

const benchHelp = `Usage: usher bench [flags]

Measures the usage path on real databases against a baseline on the same
database, in the same run: ingest through POST /api/v1/usage-events against a
raw bulk load of the same rows; the Usage Report's first page (status=inactive,
range=3m, 100 rows) against the bare SQL that returns the same rows; the full
CSV export against COPY (same query) TO STDOUT; usher serve processes of
this binary under 16 clients, with their peak memory (two on PostgreSQL, one
on SQLite);
SCIM provisioning of 10,000 users into a group (at scale 1 and above) against plain
SQL inserts of the same rows. At scale 1 it builds 100,000
users, 150,000 seats and 10,000,000 usage events on each engine, which takes
minutes. Prints a Markdown table with the goals; see docs/performance.md.

Then it measures usage notifications: one email to the primary admin of each
of 1,000 accounts (at scale 1) through the scheduler, the mail package and a
local SMTP server (Postfix's smtp-sink, from Debian's postfix), against a bare
go-mail loop sending the same message as often, as many at once, to the same
server. Prints a second table.

Then it measures reclaim: a warn-then-reclaim policy over 150,000 seats with
30,000 inactive (at scale 1) through the reclaim service with a controlled
clock (preview, the warn run, after the grace period the reclaim run) in
seats per second, against the bulk Unassign of the same seats through the
access service on the same database; and the warnings it sends to
smtp-sink, against a bare go-mail loop. Prints a third table.

Every run uses a scratch database: a new SQLite file in a temporary directory,
and a new schema in the PostgreSQL database, dropped afterwards.

Flags:
  --scale F           multiple of the full size, 0 < F <= 10 (default 1);
                      above 2, events stay at twice the full size
  --engines LIST      sqlite, postgres or both (default sqlite,postgres)
  --suites LIST       usage, notify, reclaim or a list of them
                      (default usage,notify,reclaim)
  --notify N          accounts of the notification benchmark (default 1000
                      times the scale up to 1, at least 20)
  --postgres URL      PostgreSQL server and database to make the schema in
                      (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
                                                                 env USHER_BENCH_POSTGRES_URL
  --out FILE          also write the table to FILE
  -h, --help          show this help
`

const defaultBenchPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench")
	scale := fs.Float64("scale", 1, "fraction of the full size")
	engines := fs.String("engines", "sqlite,postgres", "engines to run on")
	pg := fs.String("postgres", defaultBenchPostgres, "PostgreSQL URL")
	out := fs.String("out", "", "file to write the table to")
	suites := fs.String("suites", "usage,notify,reclaim", "benchmarks to run")
	notifyAccounts := fs.Int("notify", 0, "accounts of the notification benchmark")
	if err := parse(fs, benchHelp, args, stdout, map[string]string{"postgres": "USHER_BENCH_POSTGRES_URL"}); err != nil {
		return err
	}
	if *scale <= 0 || *scale > bench.MaxScale {
		return usageErrorf("bench: --scale %v: want a number above 0 and at most %d", *scale, bench.MaxScale)
	}
	var list []string
	for _, e := range strings.Split(*engines, ",") {
		e = strings.TrimSpace(e)
		if e != store.SQLite && e != store.Postgres {
			return usageErrorf("bench: --engines: unknown engine %q: want sqlite, postgres or both", e)
		}
		if !slices.Contains(list, e) {
			list = append(list, e)
		}
	}
	runUsage, runNotify, runReclaim, err := parseSuites(*suites)
	if err != nil {
		return err
	}
	ncfg, err := notifyConfig(*scale, *notifyAccounts)
	if err != nil {
		return err
	}
	usageEngines := list
	if !runUsage {
		usageEngines = nil
	}
	cfg := bench.Scaled(*scale)
	// Two replicas on PostgreSQL are this binary's own `usher serve`; a
	// test binary would run its tests instead, so its runs skip them.
	if exe, err := os.Executable(); err == nil && !testing.Testing() {
		cfg.Usher = exe
	}
	if runUsage {
		fmt.Fprintf(stderr, "usher bench: %d users, %d seats, %d events; %d cores, Go %s\n",
			cfg.Users, cfg.Seats, cfg.Events, runtime.NumCPU(), runtime.Version())
	}
	var results []bench.Result
	for _, engine := range usageEngines {
		res, err := benchOn(ctx, engine, *pg, cfg, stderr)
		if err != nil {
			return fmt.Errorf("bench on %s: %w", engine, err)
		}
		results = append(results, res)
	}
	var notified []bench.NotifyResult
	if runNotify {
		if notified, err = benchNotify(ctx, list, *pg, ncfg, stderr); err != nil {
			return err
		}
	}
	var reclaimed []bench.ReclaimResult
	if runReclaim {
		if reclaimed, err = benchReclaim(ctx, list, *pg, bench.ReclaimScaled(*scale), stderr); err != nil {
			return err
		}
	}
	if err := writeTables(stdout, results, notified, reclaimed); err != nil {
		return err
	}
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer f.Close()
		if err := writeTables(f, results, notified, reclaimed); err != nil {
			return fmt.Errorf("bench: write %s: %w", *out, err)
		}
		return f.Close()
	}
	return nil
}

func benchOn(ctx context.Context, engine, pgURL string, cfg bench.Config, log io.Writer) (bench.Result, error) {
	progress := func(format string, args ...any) {
		fmt.Fprintf(log, "  %s %s: %s\n", time.Now().Format("15:04:05"), engine, fmt.Sprintf(format, args...))
	}
	if engine == store.Postgres {
		db, drop, err := store.OpenScratchSchema(ctx, pgURL, "usher_bench_")
		if err != nil {
			return bench.Result{}, fmt.Errorf("PostgreSQL at %s: %w", redact(pgURL), err)
		}
		defer drop(context.WithoutCancel(ctx)) //nolint:errcheck // best effort on the way out
		return bench.Run(ctx, db, cfg, progress)
	}
	dir, err := os.MkdirTemp("", "usher-bench-")
	if err != nil {
		return bench.Result{}, err
	}
	defer os.RemoveAll(dir)
	db, err := openDB(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		return bench.Result{}, err
	}
	defer db.Close()
	return bench.Run(ctx, db, cfg, progress)
}
