package bench_test

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/bench"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
)

// TestRunAtSmallScale runs the whole benchmark on both engines at a scale
// that takes seconds, so it keeps working; the figures it prints mean little.
func TestRunAtSmallScale(t *testing.T) {
	cfg := bench.Scaled(0.003) // 300 users, 450 seats, 30,000 events
	cfg.ReportRequests = 5
	cfg.PageSize = 20
	cfg.LoadFor = 300 * time.Millisecond
	cfg.SCIMBatch = 20 // a few PATCHes of the group
	cfg.Usher = buildUsher(t)
	var results []bench.Result
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		res, err := bench.Run(context.Background(), db, cfg, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		in := res.Ingest
		if in.Events < 29_000 || in.Accepted != in.Events || in.Duplicates != 0 {
			t.Errorf("ingest: %d events, %d accepted, %d duplicates", in.Events, in.Accepted, in.Duplicates)
		}
		if in.HTTP <= 0 || in.Raw <= 0 {
			t.Errorf("ingest times: HTTP %v, raw %v", in.HTTP, in.Raw)
		}
		// 25 events a use-day: one day row per 25 events at most, and one
		// rollup write per day row at most.
		if in.DayWrites == 0 || in.DayWrites > int64(in.Accepted/25+1) || in.RollupWrites > in.DayWrites {
			t.Errorf("writes: %d days, %d rollups for %d events", in.DayWrites, in.RollupWrites, in.Accepted)
		}
		if res.Report.Rows != cfg.PageSize {
			t.Errorf("report page: %d rows, want %d (the data has inactive seats)", res.Report.Rows, cfg.PageSize)
		}
		if res.Export.Rows != cfg.Seats {
			t.Errorf("export: %d rows, want one per seat (%d)", res.Export.Rows, cfg.Seats)
		}
		if res.Dashboard.HTTPP50 <= 0 || res.Dashboard.ColdP50 <= 0 || res.Dashboard.SQLP50 <= 0 {
			t.Errorf("dashboard: %+v, want both timed", res.Dashboard)
		}
		if len(res.Load) != 2 {
			t.Errorf("load: %+v, want the report and a user's access", res.Load)
		}
		for _, l := range res.Load {
			if l.Requests == 0 || l.Errors != 0 || l.RPS <= 0 || l.SQLRPS <= 0 || l.BaselineQueryRows == 0 {
				t.Errorf("load %s: %+v, want requests without errors and a baseline", l.Path, l)
			}
		}
		if x := res.Replicas; x.Requests == 0 || x.Errors != 0 || x.RPS <= 0 {
			t.Errorf("two replicas: %+v, want requests without errors", x)
		}
		if x := res.SCIM; x.Users != cfg.SCIMUsers || x.Members != x.Users || x.Provisioned != x.Users || x.BaselineMembers != x.Users ||
			x.Requests != 2*x.Users+1+(x.Users+cfg.SCIMBatch-1)/cfg.SCIMBatch || x.Create <= 0 || x.Patch <= 0 || x.Baseline <= 0 {
			t.Errorf("SCIM: %+v, want %d users provisioned into the group over SCIM and with plain SQL", x, cfg.SCIMUsers)
		}
		if x := res.Processes; db.Engine() == store.Postgres {
			if x.Requests == 0 || x.Errors != 0 || x.RPS <= 0 {
				t.Errorf("two usher serve processes: %+v, want requests without errors", x)
			}
			if runtime.GOOS == "linux" && (x.PeakRSS[0] < 1<<20 || x.PeakRSS[1] < 1<<20) {
				t.Errorf("usher serve peak resident memory %v bytes: not read", x.PeakRSS)
			}
		} else if x.Requests != 0 {
			t.Errorf("two usher serve processes on %s: %+v, want none (one process)", db.Engine(), x)
		}
		if x := res.Serve; db.Engine() == store.SQLite {
			if x.Requests == 0 || x.Errors != 0 || x.RPS <= 0 {
				t.Errorf("one usher serve process on the SQLite file: %+v, want requests without errors", x)
			}
			if runtime.GOOS == "linux" && x.PeakRSS[0] < 1<<20 {
				t.Errorf("usher serve peak resident memory %v bytes: not read", x.PeakRSS)
			}
		} else if x.Requests != 0 {
			t.Errorf("one usher serve process on %s: %+v, want none (two processes)", db.Engine(), x)
		}
		if x := res.Export; x.GCs > 0 && x.PeakLiveHeapBytes > x.PeakHeapBytes+1<<20 {
			t.Errorf("export: live heap grew %d bytes, more than the heap in use (%d)", x.PeakLiveHeapBytes, x.PeakHeapBytes)
		}
		if runtime.GOOS == "linux" && res.PeakRSS < 1<<20 {
			t.Errorf("peak resident memory %d bytes: not sampled", res.PeakRSS)
		}
		results = append(results, res)
	})
	var out bytes.Buffer
	if err := bench.Write(&out, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| measure | goal | sqlite | postgres |", "rollup writes per event", "export ÷ baseline", "dashboard p50 / p99", "resident memory of the benchmark process", "16 clients, `GET /api/v1/users/{id}/access`", "two `usher serve` processes", "— (one process)", "one `usher serve` process (the SQLite file)", "— (two processes above)", "live heap growth during export (after GC)", "SCIM ÷ plain SQL", "| group members afterwards (SCIM / plain SQL) | 50 / 50 | 50 / 50 ✓ | 50 / 50 ✓ |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

func TestScaledKeepsSCIMAtTheGoalsSize(t *testing.T) {
	for _, tc := range []struct {
		f           float64
		users, scim int
	}{{0.0001, 50, 50}, {0.5, 50_000, 5_000}, {1, 100_000, 10_000}, {10, 1_000_000, 10_000}} {
		if c := bench.Scaled(tc.f); c.Users != tc.users || c.SCIMUsers != tc.scim {
			t.Errorf("Scaled(%v): %d users, %d SCIM users; want %d, %d", tc.f, c.Users, c.SCIMUsers, tc.users, tc.scim)
		}
	}
}
