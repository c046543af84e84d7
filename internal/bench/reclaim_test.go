package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/bench"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
)

// TestRunReclaimReclaimsTheInactiveSeats runs the reclaim benchmark on both
// engines at a size that takes seconds and checks what the policy did; the
// rates it prints mean little at this size.
func TestRunReclaimReclaimsTheInactiveSeats(t *testing.T) {
	cfg := bench.ReclaimScaled(0.0005) // 50 users, 75 seats, 15 inactive
	var results []bench.ReclaimResult
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		res, err := bench.RunReclaim(context.Background(), db, cfg, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		n := cfg.Inactive
		if res.Unassigned != n || res.PreviewWarn != n || res.Warned != n || res.Reclaimed != n {
			t.Errorf("unassigned %d, previewed %d, warned %d, reclaimed %d; want %d of each", res.Unassigned, res.PreviewWarn, res.Warned, res.Reclaimed, n)
		}
		if res.SeatsLeft != cfg.Seats-n {
			t.Errorf("%d seats left after the reclaim run, want %d", res.SeatsLeft, cfg.Seats-n)
		}
		if res.WarningsSent != n || res.NoticesSent != n {
			t.Errorf("delivered %d warnings and %d notices, want %d of each", res.WarningsSent, res.NoticesSent, n)
		}
		// The warnings but the first, sent within the run, and the digest.
		if res.WarnReceived != n-1+1 || res.BareReceived != res.WarnReceived {
			t.Errorf("the sink stored %d messages while the warnings went out and %d from the bare loop, want %d", res.WarnReceived, res.BareReceived, n)
		}
		if res.Preview <= 0 || res.Warn <= 0 || res.Reclaim <= 0 || res.Unassign <= 0 || res.WarnEmails <= 0 || res.Bare <= 0 {
			t.Errorf("times: %+v", res)
		}
		results = append(results, res)
	})
	var out bytes.Buffer
	if err := bench.WriteReclaim(&out, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| measure | goal | sqlite | postgres |", "| reclaim run, seats/s; ÷ baseline | ≥ 0.5 |", "| warnings ÷ bare | ≥ 0.8 |",
		"| warnings / notices delivered | 15 / 15 | 15 / 15 | 15 / 15 |", "smtp-sink"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
