package access_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

func (f *fixture) group(t *testing.T, a usher.Actor, name string) usher.Group {
	t.Helper()
	g, err := f.svc.CreateGroup(context.Background(), a, access.GroupInput{Name: &name})
	if err != nil {
		t.Fatalf("create group %s: %v", name, err)
	}
	return g
}

func (f *fixture) users(t *testing.T, prefix string, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		e := fmt.Sprintf("%s%03d@acme.test", prefix, i)
		u, err := f.svc.CreateUser(context.Background(), f.primary, access.UserInput{Email: &e})
		must(t, err)
		ids[i] = u.ID
	}
	return ids
}

// seat returns the user's seat of sub, if any.
func (f *fixture) seat(t *testing.T, userID, subID int64) (access.SubscriptionAccess, bool) {
	t.Helper()
	ua, err := f.svc.Access(context.Background(), f.primary, userID)
	must(t, err)
	for _, e := range ua.Subscriptions {
		if e.Subscription.ID == subID {
			return e, e.Assigned
		}
	}
	return access.SubscriptionAccess{}, false
}

func (f *fixture) seatsUsed(t *testing.T, subID int64) int {
	t.Helper()
	s, err := f.svc.Subscription(context.Background(), f.primary, subID)
	must(t, err)
	return s.SeatsUsed
}

func waiterIDs(ws []usher.Waiter) []int64 {
	out := make([]int64, len(ws))
	for i, w := range ws {
		out[i] = w.UserID
	}
	return out
}

// TestGroupSeatsWaitAndFillOldestFirst is the acceptance case: 100 members
// added to a group whose subscription has 60 free seats; exactly 60 get
// seats, 40 wait; freeing 5 seats seats the 5 oldest waiters.
func TestGroupSeatsWaitAndFillOldestFirst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		// 61 seats, the contract manager holds one: 60 free.
		sub := f.subscription(t, f.primary, "C-G", "draftpro", usher.PlanStandard, 61, f.target.ID)
		g := f.group(t, f.primary, "Design")
		if _, err := f.svc.AssignGroup(ctx, f.primary, g.ID, sub.ID, access.GroupAssignmentInput{Services: []string{"cloud_storage"}}); err != nil {
			t.Fatal(err)
		}
		members := f.users(t, "m", 100)
		res, err := f.svc.AddMembers(ctx, f.primary, g.ID, members)
		must(t, err)
		if res.Added != 100 || res.Seated != 60 || res.Waiting != 40 {
			t.Fatalf("add members: got %+v, want 100 added, 60 seated, 40 waiting", res)
		}
		if got := f.seatsUsed(t, sub.ID); got != 61 {
			t.Fatalf("seats used: got %d, want 61", got)
		}
		waiting, err := f.svc.Waiting(ctx, f.primary, sub.ID)
		must(t, err)
		if !slices.Equal(waiterIDs(waiting), members[60:]) {
			t.Fatalf("waiters: got %v, want the last 40 members in the order added", waiterIDs(waiting))
		}
		if waiting[0].Position != 1 || waiting[39].Position != 40 {
			t.Fatalf("positions: got %d..%d, want 1..40", waiting[0].Position, waiting[39].Position)
		}
		detail, err := f.svc.Group(ctx, f.primary, g.ID)
		must(t, err)
		if len(detail.Waiting) != 40 || detail.Subscriptions[0].Seated != 60 || detail.Subscriptions[0].Waiting != 40 {
			t.Fatalf("group detail: %d waiting, subscription %+v", len(detail.Waiting), detail.Subscriptions[0])
		}
		e, ok := f.seat(t, members[0], sub.ID)
		if !ok || len(e.Sources) != 1 || e.Sources[0].GroupName != "Design" || !slices.Equal(e.Services, []string{"cloud_storage"}) {
			t.Fatalf("member 0's seat: assigned %v, %+v", ok, e)
		}
		if e, _ := f.seat(t, members[99], sub.ID); !e.Waiting {
			t.Fatalf("member 99 does not show as waiting: %+v", e)
		}

		// Free 5 seats: 4 members leave, 1 direct seat is unassigned.
		res, err = f.svc.RemoveMembers(ctx, f.primary, g.ID, members[:4])
		must(t, err)
		if res.Removed != 4 || res.Freed != 4 {
			t.Fatalf("remove members: got %+v", res)
		}
		if _, err := f.svc.Unassign(ctx, f.primary, []access.UnassignItem{{UserID: f.target.ID, SubscriptionID: sub.ID}}); err != nil {
			t.Fatal(err)
		}
		for i, id := range members[60:65] {
			if _, ok := f.seat(t, id, sub.ID); !ok {
				t.Errorf("waiter %d (member %d) was not seated", i+1, id)
			}
		}
		if _, ok := f.seat(t, members[65], sub.ID); ok {
			t.Error("the sixth waiter got a seat")
		}
		waiting, err = f.svc.Waiting(ctx, f.primary, sub.ID)
		must(t, err)
		if !slices.Equal(waiterIDs(waiting), members[65:]) {
			t.Fatalf("waiters after freeing 5: got %v, want members 65..99", waiterIDs(waiting))
		}
		if got := f.seatsUsed(t, sub.ID); got != 61 {
			t.Fatalf("seats used after refill: got %d, want 61", got)
		}
		log, err := f.svc.AuditLog(ctx, f.primary, members[60], "", "", 50)
		must(t, err)
		actions := []string{}
		for _, e := range log.Items {
			actions = append(actions, e.Action)
		}
		if !slices.Contains(actions, "seat.wait") || !slices.Contains(actions, "seat.assign") || !slices.Contains(actions, "group.member.add") {
			t.Fatalf("audit of a waiter seated later: %v", actions)
		}
	})
}

// TestSeatWithManySourcesIsOneSeat: a user holding a subscription directly
// and through two groups uses one seat, freed only when the last source goes.
func TestSeatWithManySourcesIsOneSeat(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		sub := f.sub2 // the manager holds one of 10 seats
		u := f.target.ID
		must(t, f.svc.Assign(ctx, f.primary, u, sub.ID, nil))
		a, b := f.group(t, f.primary, "A"), f.group(t, f.primary, "B")
		for _, g := range []usher.Group{a, b} {
			_, err := f.svc.AssignGroup(ctx, f.primary, g.ID, sub.ID, access.GroupAssignmentInput{Benefits: nil})
			must(t, err)
			_, err = f.svc.AddMembers(ctx, f.primary, g.ID, []int64{u})
			must(t, err)
		}
		if got := f.seatsUsed(t, sub.ID); got != 2 {
			t.Fatalf("seats used: got %d, want 2 (manager and target, once)", got)
		}
		e, _ := f.seat(t, u, sub.ID)
		if len(e.Sources) != 3 || !e.Sources[0].Direct || e.Sources[1].GroupID != a.ID || e.Sources[2].GroupID != b.ID {
			t.Fatalf("sources: got %+v, want direct, A, B", e.Sources)
		}
		// Direct source goes (PUT access keeps the seat? no: that takes
		// every source). Take the direct one by unassigning and restoring
		// the groups' inclusion instead: here remove groups one by one.
		_, err := f.svc.RemoveMembers(ctx, f.primary, a.ID, []int64{u})
		must(t, err)
		if _, ok := f.seat(t, u, sub.ID); !ok {
			t.Fatal("seat freed while B and the direct source still give it")
		}
		must(t, f.svc.UnassignGroup(ctx, f.primary, b.ID, sub.ID))
		e, ok := f.seat(t, u, sub.ID)
		if !ok || len(e.Sources) != 1 || !e.Sources[0].Direct {
			t.Fatalf("after A and B went: assigned %v, sources %+v; want the direct seat", ok, e.Sources)
		}
		// Back through A, then unassign from the report: both sources go,
		// A's by an exclusion, which IncludeMember undoes.
		_, err = f.svc.AddMembers(ctx, f.primary, a.ID, []int64{u})
		must(t, err)
		if got := f.seatsUsed(t, sub.ID); got != 2 {
			t.Fatalf("seats used: got %d, want 2", got)
		}
		_, err = f.svc.Unassign(ctx, f.primary, []access.UnassignItem{{UserID: u, SubscriptionID: sub.ID}})
		must(t, err)
		if _, ok := f.seat(t, u, sub.ID); ok {
			t.Fatal("seat still held after unassign")
		}
		if got := f.seatsUsed(t, sub.ID); got != 1 {
			t.Fatalf("seats used after unassign: got %d, want 1", got)
		}
		detail, err := f.svc.Group(ctx, f.primary, a.ID)
		must(t, err)
		if len(detail.Exclusions) != 1 || detail.Exclusions[0].UserID != u {
			t.Fatalf("exclusions: %+v", detail.Exclusions)
		}
		log, err := f.svc.AuditLog(ctx, f.primary, u, "group.exclude", "", 10)
		must(t, err)
		if len(log.Items) != 1 {
			t.Fatalf("group.exclude audit entries: got %d, want 1", len(log.Items))
		}
		must(t, f.svc.IncludeMember(ctx, f.primary, a.ID, sub.ID, u))
		e, ok = f.seat(t, u, sub.ID)
		if !ok || len(e.Sources) != 1 || e.Sources[0].GroupID != a.ID {
			t.Fatalf("after include: assigned %v, sources %+v; want group A", ok, e.Sources)
		}
		// Deleting the group frees the seat it alone gave.
		must(t, f.svc.DeleteGroup(ctx, f.primary, a.ID))
		if _, ok := f.seat(t, u, sub.ID); ok {
			t.Fatal("seat kept after its only group was deleted")
		}
		if got := f.seatsUsed(t, sub.ID); got != 1 {
			t.Fatalf("seats used after group delete: got %d, want 1", got)
		}
	})
}

// TestGroupBenefitsComeAndGo: a group's benefits come with its seat and go
// with it, unless another group still gives them.
func TestGroupBenefitsComeAndGo(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		sub := f.sub1 // benefits web_support, phone_support
		u := f.target.ID
		a, b := f.group(t, f.primary, "A"), f.group(t, f.primary, "B")
		_, err := f.svc.AssignGroup(ctx, f.primary, a.ID, sub.ID, access.GroupAssignmentInput{Services: []string{"rendering"}, Benefits: []string{"web_support", "phone_support"}})
		must(t, err)
		_, err = f.svc.AssignGroup(ctx, f.primary, b.ID, sub.ID, access.GroupAssignmentInput{Services: []string{"generative"}, Benefits: []string{"web_support"}})
		must(t, err)
		_, err = f.svc.AddMembers(ctx, f.primary, a.ID, []int64{u})
		must(t, err)
		_, err = f.svc.AddMembers(ctx, f.primary, b.ID, []int64{u})
		must(t, err)
		e, _ := f.seat(t, u, sub.ID)
		if !slices.Equal(e.Services, []string{"generative", "rendering"}) || !slices.Equal(e.Benefits, []string{"phone_support", "web_support"}) {
			t.Fatalf("through A and B: services %v, benefits %v", e.Services, e.Benefits)
		}
		_, err = f.svc.RemoveMembers(ctx, f.primary, a.ID, []int64{u})
		must(t, err)
		e, _ = f.seat(t, u, sub.ID)
		if !slices.Equal(e.Services, []string{"generative"}) || !slices.Equal(e.Benefits, []string{"web_support"}) {
			t.Fatalf("through B only: services %v, benefits %v", e.Services, e.Benefits)
		}
		must(t, f.svc.UnassignGroup(ctx, f.primary, b.ID, sub.ID))
		e, ok := f.seat(t, u, sub.ID)
		if ok || len(e.Benefits) != 0 {
			t.Fatalf("after B's assignment went: assigned %v, benefits %v", ok, e.Benefits)
		}
	})
}

// TestDisablingFreesSeatsForWaiters: a disabled user holds no seat and waits
// for none; their seat goes to the oldest waiter.
func TestDisablingFreesSeatsForWaiters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		sub := f.subscription(t, f.primary, "C-3", "animator", usher.PlanStandard, 2, f.target.ID) // target holds 1
		g := f.group(t, f.primary, "G")
		_, err := f.svc.AssignGroup(ctx, f.primary, g.ID, sub.ID, access.GroupAssignmentInput{})
		must(t, err)
		m := f.users(t, "d", 3)
		res, err := f.svc.AddMembers(ctx, f.primary, g.ID, m)
		must(t, err)
		if res.Seated != 1 || res.Waiting != 2 {
			t.Fatalf("add: %+v", res)
		}
		disabled, active := usher.UserDisabled, usher.UserActive
		_, err = f.svc.UpdateUser(ctx, f.primary, f.target.ID, access.UserInput{Status: &disabled})
		must(t, err)
		if _, ok := f.seat(t, m[1], sub.ID); !ok {
			t.Fatal("oldest waiter not seated when a holder was disabled")
		}
		_, err = f.svc.UpdateUser(ctx, f.primary, m[0], access.UserInput{Status: &disabled})
		must(t, err)
		if _, ok := f.seat(t, m[2], sub.ID); !ok {
			t.Fatal("last waiter not seated when a group holder was disabled")
		}
		// Re-enabled: their group gives the seat again, but none is free.
		_, err = f.svc.UpdateUser(ctx, f.primary, m[0], access.UserInput{Status: &active})
		must(t, err)
		w, err := f.svc.Waiting(ctx, f.primary, sub.ID)
		must(t, err)
		if !slices.Equal(waiterIDs(w), []int64{m[0]}) {
			t.Fatalf("waiters after re-enabling: got %v, want [%d]", waiterIDs(w), m[0])
		}
		// Deleting a holder seats them.
		must(t, f.svc.DeleteUser(ctx, f.primary, m[1]))
		if _, ok := f.seat(t, m[0], sub.ID); !ok {
			t.Fatal("waiter not seated when a holder was deleted")
		}
		if got := f.seatsUsed(t, sub.ID); got != 2 {
			t.Fatalf("seats used: got %d, want 2", got)
		}
	})
}

// TestGroupPermissions: admins manage groups; others may not; synced groups
// are read-only outside provisioning.
func TestGroupPermissions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		name := "Ops"
		for _, a := range []usher.Actor{f.manager, f.coordinator, f.plain} {
			_, err := f.svc.CreateGroup(ctx, a, access.GroupInput{Name: &name})
			wantCode(t, err, usher.EFORBIDDEN)
		}
		g := f.group(t, f.secondary, name)
		_, err := f.svc.CreateGroup(ctx, f.primary, access.GroupInput{Name: ptr("OPS")})
		wantCode(t, err, usher.ECONFLICT)
		_, err = f.svc.AddMembers(ctx, f.coordinator, g.ID, []int64{f.target.ID})
		wantCode(t, err, usher.EFORBIDDEN)
		// A contract manager manages seats of C-1 but not groups.
		_, err = f.svc.AssignGroup(ctx, f.manager, g.ID, f.sub1.ID, access.GroupAssignmentInput{})
		wantCode(t, err, usher.EFORBIDDEN)
		_, err = f.svc.Group(ctx, f.otherAdmin, g.ID)
		wantCode(t, err, usher.ENOTFOUND)
		_, err = f.svc.AddMembers(ctx, f.primary, g.ID, []int64{f.otherUser.ID})
		wantCode(t, err, usher.EINVALID)

		scim := f.primary
		scim.Scope = usher.ScopeSCIM
		ext := "00aa-11"
		synced, err := f.svc.CreateGroup(ctx, scim, access.GroupInput{Name: ptr("Engineering"), ExternalID: &ext})
		must(t, err)
		if !synced.Synced {
			t.Fatal("a provisioned group is not marked synced")
		}
		_, err = f.svc.AddMembers(ctx, f.primary, synced.ID, []int64{f.target.ID})
		wantCode(t, err, usher.ECONFLICT)
		_, err = f.svc.UpdateGroup(ctx, f.primary, synced.ID, access.GroupInput{Name: ptr("x")})
		wantCode(t, err, usher.ECONFLICT)
		wantCode(t, f.svc.DeleteGroup(ctx, f.primary, synced.ID), usher.ECONFLICT)
		// Admins still decide which subscriptions it gets.
		_, err = f.svc.AssignGroup(ctx, f.primary, synced.ID, f.sub1.ID, access.GroupAssignmentInput{})
		must(t, err)
		res, err := f.svc.SetMembers(ctx, scim, synced.ID, []int64{f.target.ID})
		must(t, err)
		if res.Added != 1 || res.Seated != 1 {
			t.Fatalf("provisioned members: %+v", res)
		}
		byExt, err := f.svc.GroupByExternalID(ctx, f.primary, ext)
		must(t, err)
		if byExt.ID != synced.ID || byExt.MemberCount != 1 {
			t.Fatalf("by external id: %+v", byExt)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestGroupSeatsUnderConcurrency adds and removes members of two groups and
// assigns and unassigns seats directly from many goroutines at once. The
// subscription never counts more seats than it has, each seat is counted
// once, and no seat stays free while someone waits.
func TestGroupSeatsUnderConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		const seats = 15
		sub := f.subscription(t, f.primary, "C-X", "civilworks", usher.PlanStandard, seats, f.target.ID)
		ga, gb := f.group(t, f.primary, "GA"), f.group(t, f.primary, "GB")
		for _, g := range []usher.Group{ga, gb} {
			_, err := f.svc.AssignGroup(ctx, f.primary, g.ID, sub.ID, access.GroupAssignmentInput{})
			must(t, err)
		}
		users := f.users(t, "c", 30)
		var wg sync.WaitGroup
		errs := make(chan error, 1000)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 7))
				for i := 0; i < 25; i++ {
					u := users[r.IntN(len(users))]
					g := []usher.Group{ga, gb}[r.IntN(2)]
					var err error
					switch r.IntN(4) {
					case 0:
						_, err = f.svc.AddMembers(ctx, f.primary, g.ID, []int64{u, users[r.IntN(len(users))]})
					case 1:
						_, err = f.svc.RemoveMembers(ctx, f.primary, g.ID, []int64{u})
					case 2:
						err = f.svc.Assign(ctx, f.primary, u, sub.ID, nil)
					case 3:
						_, err = f.svc.Unassign(ctx, f.primary, []access.UnassignItem{{UserID: u, SubscriptionID: sub.ID}})
					}
					// Refusals are expected: no seats, holds none, holds one already.
					switch usher.ErrorCode(err) {
					case "", usher.ENOSEATS, usher.ECONFLICT, usher.EINVALID:
					default:
						errs <- err
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("unexpected error: %v", err)
		}
		checkSeatInvariants(t, db, sub.ID, seats)
	})
}

// checkSeatInvariants checks the stored seats of a subscription directly.
func checkSeatInvariants(t *testing.T, db *store.DB, subID int64, seats int) {
	t.Helper()
	q := func(query string, args ...any) int {
		t.Helper()
		if db.Engine() == store.Postgres {
			for i := 1; strings.Contains(query, "?"); i++ {
				query = strings.Replace(query, "?", fmt.Sprintf("$%d", i), 1)
			}
		}
		var n int
		if err := db.SQL().QueryRow(query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	used := q("SELECT seats_used FROM subscriptions WHERE id = ?", subID)
	held := q("SELECT COUNT(*) FROM assignments WHERE subscription_id = ?", subID)
	distinct := q("SELECT COUNT(DISTINCT user_id) FROM assignments WHERE subscription_id = ?", subID)
	waiting := q("SELECT COUNT(*) FROM seat_waiters WHERE subscription_id = ?", subID)
	sourceless := q(`SELECT COUNT(*) FROM assignments a WHERE subscription_id = ? AND NOT a.direct
		AND NOT EXISTS (SELECT 1 FROM seat_group_sources s WHERE s.account_id = a.account_id AND s.user_id = a.user_id AND s.subscription_id = a.subscription_id)`, subID)
	waitingHolders := q(`SELECT COUNT(*) FROM seat_waiters w JOIN assignments a
		ON a.account_id = w.account_id AND a.user_id = w.user_id AND a.subscription_id = w.subscription_id WHERE w.subscription_id = ?`, subID)
	// Entitled members (of a group assigned the subscription, not excluded)
	// who neither hold a seat nor wait.
	forgotten := q(`SELECT COUNT(*) FROM (SELECT DISTINCT m.user_id FROM group_assignments ga
		JOIN group_members m ON m.account_id = ga.account_id AND m.group_id = ga.group_id
		WHERE ga.subscription_id = ?
		  AND NOT EXISTS (SELECT 1 FROM group_exclusions e WHERE e.group_id = ga.group_id AND e.subscription_id = ga.subscription_id AND e.user_id = m.user_id)
		  AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.user_id = m.user_id AND a.subscription_id = ga.subscription_id)
		  AND NOT EXISTS (SELECT 1 FROM seat_waiters w WHERE w.user_id = m.user_id AND w.subscription_id = ga.subscription_id)) x`, subID)
	t.Logf("seats %d, used %d, held %d, waiting %d", seats, used, held, waiting)
	switch {
	case used > seats:
		t.Errorf("oversubscribed: %d seats used of %d", used, seats)
	case used != held || held != distinct:
		t.Errorf("seats counted twice: used %d, assignments %d, distinct users %d", used, held, distinct)
	case waiting > 0 && used < seats:
		t.Errorf("%d wait while %d of %d seats are free", waiting, seats-used, seats)
	case sourceless > 0:
		t.Errorf("%d seats have no source", sourceless)
	case waitingHolders > 0:
		t.Errorf("%d users wait for a seat they hold", waitingHolders)
	case forgotten > 0:
		t.Errorf("%d entitled members neither hold a seat nor wait", forgotten)
	}
}
