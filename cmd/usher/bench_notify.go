package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/bench"
	"github.com/usherhq/usher/internal/store"
)

// parseSuites reads --suites.
func parseSuites(list string) (usage, notify, reclaim bool, err error) {
	for _, s := range strings.Split(list, ",") {
		switch strings.TrimSpace(s) {
		case "usage":
			usage = true
		case "notify":
			notify = true
		case "reclaim":
			reclaim = true
		default:
			return false, false, false, usageErrorf("bench: --suites: unknown benchmark %q: want usage, notify, reclaim or a list of them", s)
		}
	}
	return usage, notify, reclaim, nil
}

// notifyConfig sizes the notification benchmark: --notify accounts, or
// 1,000 times the scale when it is 0.
func notifyConfig(scale float64, accounts int) (bench.NotifyConfig, error) {
	cfg := bench.NotifyScaled(scale)
	if accounts != 0 {
		cfg.Accounts = accounts
	}
	if cfg.Accounts < 1 {
		return cfg, usageErrorf("bench: --notify %d: want a positive number of accounts", accounts)
	}
	return cfg, nil
}

// writeTables prints the usage table, the notification table and the
// reclaim table, each only if it ran.
func writeTables(w io.Writer, results []bench.Result, notified []bench.NotifyResult, reclaimed []bench.ReclaimResult) error {
	if err := bench.Write(w, results); err != nil {
		return err
	}
	if len(results) > 0 && len(notified) > 0 {
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
	}
	if err := bench.WriteNotify(w, notified); err != nil {
		return err
	}
	if len(results)+len(notified) > 0 && len(reclaimed) > 0 {
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
	}
	return bench.WriteReclaim(w, reclaimed)
}

// benchReclaim runs the reclaim benchmark on each engine, each on a
// scratch database of its own.
func benchReclaim(ctx context.Context, engines []string, pgURL string, cfg bench.ReclaimConfig, log io.Writer) ([]bench.ReclaimResult, error) {
	fmt.Fprintf(log, "usher bench: reclaim policy over %d seats, %d inactive; %d cores, Go %s\n",
		cfg.Seats, cfg.Inactive, runtime.NumCPU(), runtime.Version())
	var out []bench.ReclaimResult
	for _, engine := range engines {
		progress := func(format string, args ...any) {
			fmt.Fprintf(log, "  %s %s: %s\n", time.Now().Format("15:04:05"), engine, fmt.Sprintf(format, args...))
		}
		res, err := onScratchDB(ctx, engine, pgURL, func(db *store.DB) (bench.ReclaimResult, error) {
			return bench.RunReclaim(ctx, db, cfg, progress)
		})
		if err != nil {
			return nil, fmt.Errorf("reclaim bench on %s: %w", engine, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// benchNotify runs the notification benchmark on each engine, each on a
// scratch database of its own: it must start empty, and the usage
// benchmark's data would only slow its setup.
func benchNotify(ctx context.Context, engines []string, pgURL string, cfg bench.NotifyConfig, log io.Writer) ([]bench.NotifyResult, error) {
	fmt.Fprintf(log, "usher bench: notifications to the primary admins of %d accounts, %d at once; %d cores, Go %s\n",
		cfg.Accounts, cfg.Workers, runtime.NumCPU(), runtime.Version())
	var out []bench.NotifyResult
	for _, engine := range engines {
		progress := func(format string, args ...any) {
			fmt.Fprintf(log, "  %s %s: %s\n", time.Now().Format("15:04:05"), engine, fmt.Sprintf(format, args...))
		}
		res, err := onScratchDB(ctx, engine, pgURL, func(db *store.DB) (bench.NotifyResult, error) {
			return bench.RunNotify(ctx, db, cfg, progress)
		})
		if err != nil {
			return nil, fmt.Errorf("notification bench on %s: %w", engine, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// onScratchDB runs fn on a new, migrated database on engine, dropped
// afterwards, as benchOn does for the usage benchmark.
func onScratchDB[T any](ctx context.Context, engine, pgURL string, fn func(*store.DB) (T, error)) (T, error) {
	var zero T
	if engine == store.Postgres {
		db, drop, err := store.OpenScratchSchema(ctx, pgURL, "usher_bench_")
		if err != nil {
			return zero, fmt.Errorf("PostgreSQL at %s: %w", redact(pgURL), err)
		}
		defer drop(context.WithoutCancel(ctx)) //nolint:errcheck // best effort on the way out
		return fn(db)
	}
	dir, err := os.MkdirTemp("", "usher-bench-")
	if err != nil {
		return zero, err
	}
	defer os.RemoveAll(dir)
	db, err := openDB(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		return zero, err
	}
	defer db.Close()
	return fn(db)
}
