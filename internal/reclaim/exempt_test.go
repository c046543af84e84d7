package reclaim_test

import (
	"context"
	"slices"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// TestGroupExemptions: members of an exempt group are left alone, as the
// group is when the policy plans (a member who joins later is exempt from
// then on), and runs carry out what previews say.
func TestGroupExemptions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		long := w.clock.Now().AddDate(0, 0, -100)
		svc := w.seat("service@acme.test", long, false)
		late := w.seat("late@acme.test", long, false)
		w.seat("idle@acme.test", long, false)
		g, err := w.acc.CreateGroup(ctx, w.admin, access.GroupInput{Name: ptr("Service accounts")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.acc.AddMembers(ctx, w.admin, g.ID, []int64{svc.ID}); err != nil {
			t.Fatal(err)
		}
		p, err := w.rec.Create(ctx, w.admin, reclaim.Input{Name: "Idle", Scope: reclaim.Scope{Kind: reclaim.ScopeSubscriptions,
			SubscriptionIDs: []int64{w.sub.ID}}, Range: "30d", Mode: reclaim.ReclaimNow, GraceDays: ptr(0),
			Exemptions: &reclaim.Exemptions{Groups: []int64{g.ID, g.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.Exemptions.Groups, []int64{g.ID}) {
			t.Fatalf("exempt groups %v, want [%d] once", p.Exemptions.Groups, g.ID)
		}
		stored, err := w.rec.Policy(ctx, w.admin, p.ID)
		if err != nil || !slices.Equal(stored.Exemptions.Groups, []int64{g.ID}) {
			t.Fatalf("stored exempt groups %v (%v), want [%d]", stored.Exemptions.Groups, err, g.ID)
		}
		skipped := func(pl reclaim.Plan) map[string]string {
			out := map[string]string{}
			for _, s := range pl.Skipped {
				out[s.Email] = s.Reason
			}
			return out
		}
		pl, err := w.rec.Preview(ctx, w.admin, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := seatsOf(pl, reclaim.ActReclaim), []string{"idle@acme.test", "late@acme.test"}; !slices.Equal(got, want) {
			t.Fatalf("preview reclaims %v, want %v", got, want)
		}
		if why := skipped(pl)["service@acme.test"]; why != "exempt as a member of the group Service accounts" {
			t.Fatalf("service account skipped for %q", why)
		}

		// Joining the group exempts from the next plan on.
		if _, err := w.acc.AddMembers(ctx, w.admin, g.ID, []int64{late.ID}); err != nil {
			t.Fatal(err)
		}
		pl, err = w.rec.Preview(ctx, w.admin, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := seatsOf(pl, reclaim.ActReclaim), []string{"idle@acme.test"}; !slices.Equal(got, want) {
			t.Fatalf("after joining, preview reclaims %v, want %v", got, want)
		}
		if _, ok := skipped(pl)["late@acme.test"]; !ok {
			t.Fatalf("the new member is not skipped: %+v", pl.Skipped)
		}
		w.clock.Set(p.NextRunAt.Add(1))
		if _, err := w.rec.RunNow(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		if w.holds("idle@acme.test") || !w.holds("service@acme.test") || !w.holds("late@acme.test") {
			t.Fatalf("after the run: idle %v, service %v, late %v; want only idle's seat gone",
				w.holds("idle@acme.test"), w.holds("service@acme.test"), w.holds("late@acme.test"))
		}

		// A deleted group exempts nobody; the policy still plans.
		if err := w.acc.DeleteGroup(ctx, w.admin, g.ID); err != nil {
			t.Fatal(err)
		}
		pl, err = w.rec.Preview(ctx, w.admin, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := seatsOf(pl, reclaim.ActReclaim), []string{"late@acme.test", "service@acme.test"}; !slices.Equal(got, want) {
			t.Fatalf("after the group's deletion, preview reclaims %v, want %v", got, want)
		}
	})
}

func TestGroupExemptionsValidated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		g, err := w.acc.CreateGroup(ctx, w.admin, access.GroupInput{Name: ptr("Staff")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.rec.Create(ctx, w.admin, reclaim.Input{Name: "Idle", Scope: reclaim.Scope{Kind: reclaim.ScopeSubscriptions,
			SubscriptionIDs: []int64{w.sub.ID}}, Range: "30d", Mode: reclaim.ReportOnly,
			Exemptions: &reclaim.Exemptions{Groups: []int64{g.ID, 9999}}})
		if usher.ErrorCode(err) != usher.EINVALID {
			t.Fatalf("got %v, want invalid", err)
		}
		fields := usher.ErrorFields(err)
		if len(fields) != 1 || fields[0].Field != "exemptions.groups[1]" {
			t.Fatalf("problems %+v, want exemptions.groups[1] alone", fields)
		}
		ps, err := w.rec.Policies(ctx, w.admin)
		if err != nil || len(ps) != 0 {
			t.Fatalf("policies %v (%v), want none saved", ps, err)
		}
	})
}
