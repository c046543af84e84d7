package access_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// reclaimWorld builds the same people and seats in a database: direct
// seats with services and benefits, a seat a group gives, and a full
// contract with someone waiting for it through their group.
func reclaimWorld(t *testing.T, db *store.DB) (*fixture, []access.PersonSeats) {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, db)
	small := f.subscription(t, f.primary, "C-S", "modelstudio", usher.PlanStandard, 3, f.target.ID) // the manager holds one
	p := f.users(t, "p", 6)
	_, err := f.svc.AddSeat(ctx, f.primary, p[0], access.SeatChange{SubscriptionID: f.sub1.ID, Services: []string{"rendering"}, Benefits: []string{"web_support"}})
	must(t, err)
	must(t, f.svc.Assign(ctx, f.primary, p[1], f.sub1.ID, nil))
	must(t, f.svc.Assign(ctx, f.primary, p[1], f.sub2.ID, []string{"cloud_storage"}))
	g := f.group(t, f.primary, "Design")
	_, err = f.svc.AddMembers(ctx, f.primary, g.ID, []int64{p[2]})
	must(t, err)
	_, err = f.svc.AssignGroup(ctx, f.primary, g.ID, f.sub2.ID, access.GroupAssignmentInput{})
	must(t, err)
	w := f.group(t, f.primary, "Waiting")
	_, err = f.svc.AssignGroup(ctx, f.primary, w.ID, small.ID, access.GroupAssignmentInput{})
	must(t, err)
	must(t, f.svc.Assign(ctx, f.primary, p[3], small.ID, nil))
	must(t, f.svc.Assign(ctx, f.primary, p[4], small.ID, nil))
	_, err = f.svc.AddMembers(ctx, f.primary, w.ID, []int64{p[5]}) // waits: the contract is full
	must(t, err)
	batch := func() *usher.ReclaimBatch {
		return &usher.ReclaimBatch{AccountID: f.primary.AccountID, Source: usher.BatchPolicy, PolicyID: 1, RunID: 1, ActorEmail: "reclaim policy Idle", CreatedAt: testNow}
	}
	return f, []access.PersonSeats{
		{UserID: p[0], SubscriptionIDs: []int64{f.sub1.ID}, Batch: batch()},
		{UserID: p[1], SubscriptionIDs: []int64{f.sub2.ID, f.sub1.ID}, Batch: batch()},
		{UserID: p[2], SubscriptionIDs: []int64{f.sub2.ID}, Batch: batch()},
		{UserID: p[3], SubscriptionIDs: []int64{small.ID}, Batch: batch()},
		{UserID: p[4]}, // nothing to give back
	}
}

// dump prints the rows a reclaim changes; audit entries without their ids,
// as a group writes them in another order than person by person.
func dump(t *testing.T, db *store.DB) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		"SELECT * FROM assignments ORDER BY 1, 2, 3",
		"SELECT * FROM assignment_services ORDER BY 1, 2, 3, 4",
		"SELECT * FROM seat_group_sources ORDER BY 1, 2, 3, 4",
		"SELECT account_id, subscription_id, user_id FROM seat_waiters ORDER BY 1, 2, 3",
		"SELECT * FROM benefit_grants ORDER BY 1, 2, 3, 4",
		"SELECT account_id, group_id, subscription_id, user_id FROM group_exclusions ORDER BY 1, 2, 3, 4",
		"SELECT id, seats, seats_used FROM subscriptions ORDER BY 1",
		"SELECT account_id, actor_id, actor_email, action, target_user_id, target_email, subscription_id, before, after, at FROM audit_log ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
		"SELECT * FROM reclaim_batches ORDER BY 1",
		"SELECT * FROM reclaim_batch_items ORDER BY 1, 2, 3",
	} {
		rows, err := db.SQL().QueryContext(context.Background(), q)
		must(t, err)
		names, _ := rows.Columns()
		fmt.Fprintf(&b, "%s\n", q)
		for rows.Next() {
			vals := make([]sql.NullString, len(names))
			ptrs := make([]any, len(names))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			must(t, rows.Scan(ptrs...))
			fmt.Fprintf(&b, "  %v\n", vals)
		}
		must(t, rows.Close())
	}
	return b.String()
}

// TestReclaimGroupMatchesReclaimSeats: reclaiming a group of people at
// once leaves the database as reclaiming them one by one does — seats,
// services, benefits, exclusions, waiters seated, audit entries and
// batches — on both engines.
func TestReclaimGroupMatchesReclaimSeats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, one *store.DB) {
		ctx := context.Background()
		two := storetest.Open(t, one.Engine())
		f1, people1 := reclaimWorld(t, one)
		f2, people2 := reclaimWorld(t, two)
		if a, b := dump(t, one), dump(t, two); a != b {
			t.Fatalf("the two databases differ before the reclaim:\n%s\n%s", a, b)
		}
		sys := usher.System(f1.primary.AccountID)
		sys.Email = "reclaim policy Idle"
		must(t, one.Access().Write(ctx, func(tx access.Tx) error {
			for _, p := range people1 {
				if len(p.SubscriptionIDs) == 0 {
					continue
				}
				if err := f1.svc.ReclaimSeats(ctx, tx, sys, p.UserID, p.SubscriptionIDs, p.Batch); err != nil {
					return err
				}
				if err := tx.InsertBatch(ctx, p.Batch); err != nil {
					return err
				}
			}
			return nil
		}))
		must(t, two.Access().Write(ctx, func(tx access.Tx) error {
			if err := f2.svc.ReclaimGroup(ctx, tx, sys, people2); err != nil {
				return err
			}
			var bs []*usher.ReclaimBatch
			for _, p := range people2 {
				if len(p.SubscriptionIDs) > 0 {
					bs = append(bs, p.Batch)
				}
			}
			return tx.InsertBatches(ctx, bs)
		}))
		a, b := dump(t, one), dump(t, two)
		if a != b {
			t.Fatalf("one by one:\n%s\nas a group:\n%s", a, b)
		}
		if !strings.Contains(a, "group.exclude") || !strings.Contains(a, "seat.assign") || !strings.Contains(a, "benefits.set") {
			t.Fatalf("the reclaim did not exclude from a group, seat a waiter and take benefits:\n%s", a)
		}

		// A seat no longer held fails the whole group, as it fails the person.
		err := two.Access().Write(ctx, func(tx access.Tx) error {
			return f2.svc.ReclaimGroup(ctx, tx, sys, people2[:1])
		})
		wantCode(t, err, usher.ECONFLICT)
	})
}
