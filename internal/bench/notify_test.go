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

// TestRunNotifyDeliversEveryEmailOnce runs the notification benchmark on
// both engines at a size that takes seconds and checks its counts; the
// rates it prints mean little at this size.
func TestRunNotifyDeliversEveryEmailOnce(t *testing.T) {
	cfg := bench.NotifyFull()
	cfg.Accounts = 20
	var results []bench.NotifyResult
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		res, err := bench.RunNotify(context.Background(), db, cfg, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		if res.Planned != 20 || res.Delivered != 20 {
			t.Errorf("scheduler: planned %d, delivered %d, want 20 and 20", res.Planned, res.Delivered)
		}
		if res.UsherReceived != 20 || res.BareReceived != 20 {
			t.Errorf("sink received %d from the scheduler and %d from the bare loop, want 20 and 20", res.UsherReceived, res.BareReceived)
		}
		if res.Usher <= 0 || res.Bare <= 0 || res.Plan <= 0 || res.Plan >= res.Usher {
			t.Errorf("times: scheduler %v (planning %v), bare %v", res.Usher, res.Plan, res.Bare)
		}
		if res.MessageBytes < 1000 {
			t.Errorf("message of %d bytes: too small to list inactive users", res.MessageBytes)
		}
		results = append(results, res)
	})
	var out bytes.Buffer
	if err := bench.WriteNotify(&out, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| measure | goal | sqlite | postgres |", "| scheduler ÷ bare | ≥ 0.8 |", "| received by the sink (scheduler / bare) | 20 | 20 / 20 | 20 / 20 |", "smtp-sink"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
