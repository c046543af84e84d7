package reclaim_test

import (
	"context"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
)

// TestRunKeepsASnapshotOfItsPlan runs a warn-then-reclaim policy: the run
// names its snapshot, which lists each seat the plan was about with what
// the run did, and the report as of it shows them.
func TestRunKeepsASnapshotOfItsPlan(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		long := w.clock.Now().AddDate(0, 0, -100)
		w.seat("idle@acme.test", long, false)
		w.seat("quiet@acme.test", long, false)
		w.seat("fresh@acme.test", w.clock.Now().AddDate(0, 0, -5), false)
		p, err := w.rec.Create(ctx, w.admin, reclaim.Input{Name: "Idle DraftPro", Scope: reclaim.Scope{Kind: reclaim.ScopeSubscriptions,
			SubscriptionIDs: []int64{w.sub.ID}}, Range: "30d", Mode: reclaim.WarnThenReclaim, GraceDays: ptr(7)})
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Set(time.Date(2026, 3, 3, 6, 0, 1, 0, w.loc))
		if _, err := w.rec.RunNow(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		runs, err := w.rec.Runs(ctx, w.admin, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || runs[0].SnapshotID != usage.SnapshotID(usage.SnapshotReclaim, runs[0].ID) {
			t.Fatalf("runs: got %+v, want one naming its snapshot", runs)
		}
		rep, err := w.use.Report(ctx, w.admin, usage.ReportFilter{Snapshot: runs[0].SnapshotID})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Snapshot.Kind != usage.SnapshotReclaim || rep.Snapshot.Range != usage.Range30d || len(rep.Rows) != 2 {
			t.Fatalf("snapshot: got %+v with %d rows", rep.Snapshot, len(rep.Rows))
		}
		for i, email := range []string{"idle@acme.test", "quiet@acme.test"} {
			r := rep.Rows[i]
			if r.Email != email || r.Action != string(reclaim.ActWarn) || r.Inactivity != usage.NeverUsed || r.Change != usage.Unchanged {
				t.Errorf("row %d: got %+v, want %s warned", i, r, email)
			}
		}
		// A second pass the same day keeps the first evidence.
		if _, err := w.rec.RunNow(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		again, err := w.use.Report(ctx, w.admin, usage.ReportFilter{Snapshot: runs[0].SnapshotID})
		if err != nil || !again.Snapshot.TakenAt.Equal(rep.Snapshot.TakenAt) || again.Totals.Seats != 2 {
			t.Fatalf("after a second pass: got %+v, %v", again.Snapshot, err)
		}
	})
}
