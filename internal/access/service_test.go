package access_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// fixture is an account with one user per role, two subscriptions and a
// second account to test isolation against.
type fixture struct {
	svc                  *access.Service
	primary, secondary   usher.Actor
	manager, coordinator usher.Actor
	plain                usher.Actor
	target               usher.User
	sub1, sub2           usher.Subscription
	otherAdmin           usher.Actor
	otherUser            usher.User
	otherSub             usher.Subscription
}

var testNow = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{svc: access.New(db.Access(), func() time.Time { return testNow })}
	f.primary, _ = f.account(t, "Acme", "admin@acme.test")
	mk := func(email string) usher.User {
		t.Helper()
		u, err := f.svc.CreateUser(ctx, f.primary, access.UserInput{Email: &email})
		if err != nil {
			t.Fatalf("create user %s: %v", email, err)
		}
		return u
	}
	sec, mgr, coord, plain := mk("sec@acme.test"), mk("mgr@acme.test"), mk("coord@acme.test"), mk("plain@acme.test")
	f.target = mk("target@acme.test")
	mgr2 := mk("mgr2@acme.test")
	must(t, f.svc.GrantRole(ctx, f.primary, usher.RoleGrant{UserID: sec.ID, Role: usher.RoleSecondaryAdmin}))
	f.sub1 = f.subscription(t, f.primary, "C-1", "modelstudio", usher.PlanStandard, 10, mgr.ID, "web_support", "phone_support")
	f.sub2 = f.subscription(t, f.primary, "C-2", "draftpro", usher.PlanPremium, 10, mgr2.ID)
	must(t, f.svc.GrantRole(ctx, f.primary, usher.RoleGrant{UserID: coord.ID, Role: usher.RoleSoftwareCoordinator, SubscriptionID: f.sub1.ID}))
	f.secondary = f.actor(t, f.primary.AccountID, sec.ID)
	f.manager = f.actor(t, f.primary.AccountID, mgr.ID)
	f.coordinator = f.actor(t, f.primary.AccountID, coord.ID)
	f.plain = f.actor(t, f.primary.AccountID, plain.ID)

	var otherAdminUser usher.User
	f.otherAdmin, otherAdminUser = f.account(t, "Other", "admin@other.test")
	f.otherSub = f.subscription(t, f.otherAdmin, "C-1", "draftpro", usher.PlanBasic, 5, otherAdminUser.ID)
	e := "someone@other.test"
	u, err := f.svc.CreateUser(ctx, f.otherAdmin, access.UserInput{Email: &e})
	must(t, err)
	f.otherUser = u
	return f
}

func (f *fixture) account(t *testing.T, name, email string) (usher.Actor, usher.User) {
	t.Helper()
	_, admin, token, err := f.svc.CreateAccount(context.Background(), access.NewAccount{Name: name, AdminEmail: email, TimeZone: "Europe/Berlin", AllowExistingEmail: true})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	a, err := f.svc.Authenticate(context.Background(), token)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return a, admin
}

func (f *fixture) actor(t *testing.T, accountID, userID int64) usher.Actor {
	t.Helper()
	a, err := f.svc.ActorFor(context.Background(), accountID, userID)
	must(t, err)
	return a
}

func (f *fixture) subscription(t *testing.T, a usher.Actor, number, product string, plan usher.Plan, seats int, manager int64, benefits ...string) usher.Subscription {
	t.Helper()
	start, _ := usher.ParseDate("2026-01-01")
	end, _ := usher.ParseDate("2027-01-01")
	s, err := f.svc.CreateSubscription(context.Background(), a, access.NewSubscription{
		Product: product, Plan: plan, Seats: &seats, ContractNumber: number, TermStart: start, TermEnd: end,
		Benefits: benefits, ContractManagerID: manager,
	})
	if err != nil {
		t.Fatalf("create subscription %s: %v", number, err)
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := usher.ErrorCode(err); got != code {
		t.Fatalf("error code: got %q (%v), want %q", got, err, code)
	}
}

// TestPermissionMatrix runs each action of the service as each role and
// checks it is allowed or refused as the matrix says.
func TestPermissionMatrix(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		type op struct {
			name string
			do   func(f *fixture, a usher.Actor) error
		}
		n := 0
		ops := []op{
			{"list users", func(f *fixture, a usher.Actor) error { _, err := f.svc.ListUsers(ctx, a, "", "", 10); return err }},
			{"create user", func(f *fixture, a usher.Actor) error {
				n++
				e := fmt.Sprintf("new%d@acme.test", n)
				_, err := f.svc.CreateUser(ctx, a, access.UserInput{Email: &e})
				return err
			}},
			{"grant primary admin", func(f *fixture, a usher.Actor) error {
				return f.svc.GrantRole(ctx, a, usher.RoleGrant{UserID: f.target.ID, Role: usher.RolePrimaryAdmin})
			}},
			{"grant secondary admin", func(f *fixture, a usher.Actor) error {
				return f.svc.GrantRole(ctx, a, usher.RoleGrant{UserID: f.target.ID, Role: usher.RoleSecondaryAdmin})
			}},
			{"appoint coordinator on sub1", func(f *fixture, a usher.Actor) error {
				return f.svc.GrantRole(ctx, a, usher.RoleGrant{UserID: f.target.ID, Role: usher.RoleSoftwareCoordinator, SubscriptionID: f.sub1.ID})
			}},
			{"name contract manager of sub1", func(f *fixture, a usher.Actor) error {
				return f.svc.GrantRole(ctx, a, usher.RoleGrant{UserID: f.target.ID, Role: usher.RoleContractManager, SubscriptionID: f.sub1.ID})
			}},
			{"create subscription", func(f *fixture, a usher.Actor) error {
				n++
				seats := 3
				start, _ := usher.ParseDate("2026-01-01")
				end, _ := usher.ParseDate("2027-01-01")
				_, err := f.svc.CreateSubscription(ctx, a, access.NewSubscription{Product: "animator", Plan: usher.PlanBasic, Seats: &seats,
					ContractNumber: fmt.Sprintf("N-%d", n), TermStart: start, TermEnd: end, ContractManagerID: f.target.ID, AssignManagerSeat: new(bool)})
				return err
			}},
			{"assign seat of sub1", func(f *fixture, a usher.Actor) error {
				return f.svc.Assign(ctx, a, f.target.ID, f.sub1.ID, []string{"rendering"})
			}},
			{"assign seat of sub2", func(f *fixture, a usher.Actor) error { return f.svc.Assign(ctx, a, f.target.ID, f.sub2.ID, nil) }},
			{"read audit log", func(f *fixture, a usher.Actor) error { _, err := f.svc.AuditLog(ctx, a, 0, "", "", 10); return err }},
			{"read another user's access", func(f *fixture, a usher.Actor) error { _, err := f.svc.Access(ctx, a, f.target.ID); return err }},
			{"read own access", func(f *fixture, a usher.Actor) error { _, err := f.svc.Access(ctx, a, a.UserID); return err }},
			{"view sub2", func(f *fixture, a usher.Actor) error { _, err := f.svc.Subscription(ctx, a, f.sub2.ID); return err }},
		}
		// allowed[role][op]; roles: primary, secondary, manager (of sub1), coordinator (of sub1), plain.
		allowed := map[string][]bool{
			//                    list  create gPA   gSA   gSC   gCM   cSub  as1   as2   audit accO  accS  v2
			"primary":     {true, true, true, true, true, true, true, true, true, true, true, true, true},
			"secondary":   {true, true, false, true, true, true, true, true, true, true, true, true, true},
			"manager":     {true, false, false, false, true, false, false, true, false, false, true, true, false},
			"coordinator": {true, false, false, false, false, false, false, true, false, false, true, true, false},
			"plain":       {false, false, false, false, false, false, false, false, false, false, false, true, false},
		}
		for role, want := range allowed {
			for i, o := range ops {
				t.Run(role+"/"+o.name, func(t *testing.T) {
					f := newFixture(t, db)
					a := map[string]usher.Actor{"primary": f.primary, "secondary": f.secondary, "manager": f.manager, "coordinator": f.coordinator, "plain": f.plain}[role]
					err := o.do(f, a)
					if want[i] && err != nil {
						t.Fatalf("allowed, got error %v", err)
					}
					if !want[i] {
						if code := usher.ErrorCode(err); code != usher.EFORBIDDEN && code != usher.ENOTFOUND {
							t.Fatalf("refused action: got %v (%s), want forbidden or not found", err, code)
						}
					}
				})
			}
		}
	})
}

// TestConcurrentAssignmentsNeverOversubscribe fires 50 assignments at a
// 10-seat subscription at once.
func TestConcurrentAssignmentsNeverOversubscribe(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := &fixture{svc: access.New(db.Access(), nil)}
		admin, adminUser := f.account(t, "Busy", "admin@busy.test")
		sub := f.subscription(t, admin, "C-50", "draftpro", usher.PlanStandard, 10, adminUser.ID)
		if sub.SeatsUsed != 1 {
			t.Fatalf("manager seat: got %d seats used, want 1", sub.SeatsUsed)
		}
		// Free the manager's seat so all 10 are contested.
		res, err := f.svc.Unassign(ctx, admin, []access.UnassignItem{{UserID: adminUser.ID, SubscriptionID: sub.ID}})
		must(t, err)
		if res.Seats != 1 {
			t.Fatalf("unassign manager: got %d seats, want 1", res.Seats)
		}
		users := make([]usher.User, 50)
		for i := range users {
			e := fmt.Sprintf("u%02d@busy.test", i)
			users[i], err = f.svc.CreateUser(ctx, admin, access.UserInput{Email: &e})
			must(t, err)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(users))
		start := make(chan struct{})
		for i, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = f.svc.Assign(ctx, admin, u.ID, sub.ID, nil)
			}()
		}
		close(start)
		wg.Wait()
		ok, noSeats := 0, 0
		for _, err := range errs {
			switch usher.ErrorCode(err) {
			case "":
				ok++
			case usher.ENOSEATS:
				noSeats++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 10 || noSeats != 40 {
			t.Fatalf("got %d successes and %d no-seat conflicts, want 10 and 40", ok, noSeats)
		}
		got, err := f.svc.Subscription(ctx, admin, sub.ID)
		must(t, err)
		if got.SeatsUsed != 10 || got.SeatsAvailable() != 0 {
			t.Fatalf("got %d used, %d available; want 10 and 0", got.SeatsUsed, got.SeatsAvailable())
		}
		held := 0
		for _, u := range users {
			acc, err := f.svc.Access(ctx, admin, u.ID)
			must(t, err)
			for _, s := range acc.Subscriptions {
				if s.Assigned {
					held++
				}
			}
		}
		if held != 10 {
			t.Fatalf("got %d assignment rows, want 10", held)
		}
	})
}

func TestCrossAccountObjectsAreNotFound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		a := f.primary
		checks := map[string]error{}
		_, checks["user"] = f.svc.User(ctx, a, f.otherUser.ID)
		_, checks["access"] = f.svc.Access(ctx, a, f.otherUser.ID)
		_, checks["subscription"] = f.svc.Subscription(ctx, a, f.otherSub.ID)
		checks["assign other user"] = f.svc.Assign(ctx, a, f.otherUser.ID, f.sub1.ID, nil)
		checks["assign other subscription"] = f.svc.Assign(ctx, a, f.target.ID, f.otherSub.ID, nil)
		name := "x"
		_, checks["update"] = f.svc.UpdateUser(ctx, a, f.otherUser.ID, access.UserInput{Name: &name})
		checks["delete"] = f.svc.DeleteUser(ctx, a, f.otherUser.ID)
		checks["grant"] = f.svc.GrantRole(ctx, a, usher.RoleGrant{UserID: f.otherUser.ID, Role: usher.RoleSecondaryAdmin})
		for what, err := range checks {
			if usher.ErrorCode(err) != usher.ENOTFOUND {
				t.Errorf("%s: got %v, want not found", what, err)
			}
		}
		_, err := f.svc.Unassign(ctx, a, []access.UnassignItem{{UserID: f.otherUser.ID, SubscriptionID: f.otherSub.ID}})
		wantCode(t, err, usher.ENOTFOUND)
		page, err := f.svc.ListUsers(ctx, a, "", "", 500)
		must(t, err)
		for _, u := range page.Items {
			if u.ID == f.otherUser.ID || u.Email == "admin@other.test" {
				t.Fatalf("list of account A shows %s of account B", u.Email)
			}
		}
		subs, err := f.svc.ListSubscriptions(ctx, a, "", 500)
		must(t, err)
		for _, s := range subs.Items {
			if s.ID == f.otherSub.ID {
				t.Fatal("list of account A shows account B's subscription")
			}
		}
		// Nothing of B changed.
		sub, err := f.svc.Subscription(ctx, f.otherAdmin, f.otherSub.ID)
		must(t, err)
		if sub.SeatsUsed != 1 {
			t.Fatalf("account B's seats used changed to %d", sub.SeatsUsed)
		}
	})
}

func TestContractManagerGetsSeatAndCanGiveItUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		acc, err := f.svc.Access(ctx, f.manager, f.manager.UserID)
		must(t, err)
		if len(acc.Subscriptions) != 1 || !acc.Subscriptions[0].Assigned || acc.Subscriptions[0].Subscription.ID != f.sub1.ID {
			t.Fatalf("manager's own access: got %+v, want a seat of sub1", acc.Subscriptions)
		}
		res, err := f.svc.Unassign(ctx, f.manager, []access.UnassignItem{{UserID: f.manager.UserID, SubscriptionID: f.sub1.ID}})
		must(t, err)
		if res.Seats != 1 {
			t.Fatalf("got %d seats freed, want 1", res.Seats)
		}
		sub, err := f.svc.Subscription(ctx, f.manager, f.sub1.ID)
		must(t, err)
		if sub.SeatsUsed != 0 || sub.SeatsAvailable() != 10 {
			t.Fatalf("after giving up: got %d used %d available", sub.SeatsUsed, sub.SeatsAvailable())
		}
		// Declining the seat at creation leaves all seats free.
		no := false
		seats := 4
		s, err := f.svc.CreateSubscription(ctx, f.primary, access.NewSubscription{Product: "civilworks", Plan: usher.PlanPremium, Seats: &seats,
			ContractNumber: "C-9", TermStart: f.sub1.TermStart, TermEnd: f.sub1.TermEnd, ContractManagerID: f.target.ID, AssignManagerSeat: &no})
		must(t, err)
		if s.SeatsUsed != 0 {
			t.Fatalf("declined manager seat: got %d used, want 0", s.SeatsUsed)
		}
	})
}

func TestSetAccessServicesAndBenefits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		a := f.secondary
		_, err := f.svc.SetAccess(ctx, a, f.target.ID, []access.AccessChange{
			{SubscriptionID: f.sub1.ID, Assigned: true, Services: []string{"rendering", "cloud_storage"}, Benefits: []string{"web_support"}},
		})
		must(t, err)
		acc, err := f.svc.Access(ctx, a, f.target.ID)
		must(t, err)
		e := entry(t, acc, f.sub1.ID)
		if !e.Assigned || len(e.Services) != 2 || len(e.Benefits) != 1 || e.Benefits[0] != "web_support" {
			t.Fatalf("after assign: got %+v", e)
		}
		// Clear one service; the seat stays.
		_, err = f.svc.SetAccess(ctx, a, f.target.ID, []access.AccessChange{
			{SubscriptionID: f.sub1.ID, Assigned: true, Services: []string{"cloud_storage"}, Benefits: []string{"web_support"}},
		})
		must(t, err)
		acc, _ = f.svc.Access(ctx, a, f.target.ID)
		if e := entry(t, acc, f.sub1.ID); !e.Assigned || len(e.Services) != 1 || e.Services[0] != "cloud_storage" {
			t.Fatalf("after clearing a service: got %+v", e)
		}

		t.Run("ServiceOfAnotherProductChangesNothing", func(t *testing.T) {
			_, err := f.svc.SetAccess(ctx, a, f.target.ID, []access.AccessChange{
				{SubscriptionID: f.sub1.ID, Assigned: true, Services: []string{"cloud_storage"}, Benefits: []string{"web_support"}},
				{SubscriptionID: f.sub2.ID, Assigned: true, Services: []string{"generative"}},
			})
			wantCode(t, err, usher.EINVALID)
			if fs := usher.ErrorFields(err); len(fs) != 1 || fs[0].Field != "subscriptions[1].services[0]" {
				t.Fatalf("fields: got %+v, want subscriptions[1].services[0]", fs)
			}
			acc, _ := f.svc.Access(ctx, a, f.target.ID)
			if entry(t, acc, f.sub2.ID).Assigned {
				t.Fatal("sub2 seat assigned despite the error")
			}
		})
		t.Run("BenefitNotOnContract", func(t *testing.T) {
			_, err := f.svc.SetAccess(ctx, a, f.target.ID, []access.AccessChange{{SubscriptionID: f.sub2.ID, Benefits: []string{"web_support"}}})
			wantCode(t, err, usher.EINVALID)
		})
		t.Run("UnlistedSubscriptionsLoseAccess", func(t *testing.T) {
			_, err := f.svc.SetAccess(ctx, a, f.target.ID, nil)
			must(t, err)
			acc, _ := f.svc.Access(ctx, a, f.target.ID)
			if e := entry(t, acc, f.sub1.ID); e.Assigned || len(e.Benefits) != 0 {
				t.Fatalf("got %+v, want nothing", e)
			}
			sub, _ := f.svc.Subscription(ctx, a, f.sub1.ID)
			if sub.SeatsUsed != 1 { // only the manager's seat is left
				t.Fatalf("seats used: got %d, want 1", sub.SeatsUsed)
			}
		})
		t.Run("CoordinatorCannotTouchAnotherContract", func(t *testing.T) {
			// A contract the coordinator may not see is one that does not exist.
			_, err := f.svc.SetAccess(ctx, f.coordinator, f.target.ID, []access.AccessChange{{SubscriptionID: f.sub2.ID, Assigned: true}})
			wantCode(t, err, usher.ENOTFOUND)
			if strings.Contains(err.Error(), f.sub2.ContractNumber) {
				t.Fatalf("the refusal names the contract the coordinator may not see: %v", err)
			}
		})
		t.Run("CoordinatorLeavesOtherContractsAlone", func(t *testing.T) {
			must(t, f.svc.Assign(ctx, a, f.target.ID, f.sub2.ID, nil))
			_, err := f.svc.SetAccess(ctx, f.coordinator, f.target.ID, []access.AccessChange{{SubscriptionID: f.sub1.ID, Assigned: true}})
			must(t, err)
			acc, _ := f.svc.Access(ctx, a, f.target.ID)
			if !entry(t, acc, f.sub1.ID).Assigned || !entry(t, acc, f.sub2.ID).Assigned {
				t.Fatalf("got %+v, want seats of both", acc.Subscriptions)
			}
			view, _ := f.svc.Access(ctx, f.coordinator, f.target.ID)
			if len(view.Subscriptions) != 1 {
				t.Fatalf("coordinator sees %d subscriptions, want 1", len(view.Subscriptions))
			}
		})
	})
}

func entry(t *testing.T, acc access.UserAccess, subID int64) access.SubscriptionAccess {
	t.Helper()
	for _, e := range acc.Subscriptions {
		if e.Subscription.ID == subID {
			return e
		}
	}
	t.Fatalf("subscription %d not in access view", subID)
	return access.SubscriptionAccess{}
}

func TestUnassignIsAllOrNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		a := f.primary
		e1, e2 := "one@acme.test", "two@acme.test"
		u1, _ := f.svc.CreateUser(ctx, a, access.UserInput{Email: &e1})
		u2, _ := f.svc.CreateUser(ctx, a, access.UserInput{Email: &e2})
		must(t, f.svc.Assign(ctx, a, u1.ID, f.sub1.ID, []string{"rendering"}))
		must(t, f.svc.Assign(ctx, a, u2.ID, f.sub1.ID, nil))
		items := []access.UnassignItem{
			{UserID: u1.ID, SubscriptionID: f.sub1.ID},
			{UserID: u2.ID, SubscriptionID: f.sub1.ID},
			{UserID: f.target.ID, SubscriptionID: f.sub1.ID}, // holds no seat
		}
		_, err := f.svc.Unassign(ctx, a, items)
		wantCode(t, err, usher.ECONFLICT)
		if fs := usher.ErrorFields(err); len(fs) != 1 || fs[0].Field != "items[2]" {
			t.Fatalf("fields: got %+v, want items[2]", fs)
		}
		sub, _ := f.svc.Subscription(ctx, a, f.sub1.ID)
		if sub.SeatsUsed != 3 {
			t.Fatalf("seats used after failed unassign: got %d, want 3", sub.SeatsUsed)
		}
		res, err := f.svc.Unassign(ctx, a, items[:2])
		must(t, err)
		if res.Seats != 2 || res.Users != 2 || res.Services != 1 {
			t.Fatalf("got %+v, want 2 seats, 2 users, 1 service", res)
		}
		sub, _ = f.svc.Subscription(ctx, a, f.sub1.ID)
		if sub.SeatsUsed != 1 {
			t.Fatalf("seats used: got %d, want 1", sub.SeatsUsed)
		}
		log, err := f.svc.AuditLog(ctx, a, u1.ID, "seat.unassign", "", 10)
		must(t, err)
		if len(log.Items) != 1 || log.Items[0].ActorEmail != "admin@acme.test" || log.Items[0].TargetEmail != "one@acme.test" {
			t.Fatalf("audit: got %+v", log.Items)
		}
	})
}

func TestValidationNamesEveryField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		seats := -1
		_, err := f.svc.CreateSubscription(ctx, f.primary, access.NewSubscription{Product: "nope", Plan: "gold", Seats: &seats})
		wantCode(t, err, usher.EINVALID)
		got := map[string]bool{}
		for _, fe := range usher.ErrorFields(err) {
			got[fe.Field] = true
		}
		for _, want := range []string{"plan", "seats", "contract_number", "term_start", "term_end", "contract_manager_id"} {
			if !got[want] {
				t.Errorf("no error for field %s; got %v", want, got)
			}
		}
		bad := "not-an-email"
		_, err = f.svc.CreateUser(ctx, f.primary, access.UserInput{Email: &bad})
		wantCode(t, err, usher.EINVALID)
		dup := "target@acme.test"
		_, err = f.svc.CreateUser(ctx, f.primary, access.UserInput{Email: &dup})
		wantCode(t, err, usher.ECONFLICT)
	})
}

func TestLastPrimaryAdminCannotBeRemoved(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		err := f.svc.RevokeRole(ctx, f.primary, usher.RoleGrant{UserID: f.primary.UserID, Role: usher.RolePrimaryAdmin})
		wantCode(t, err, usher.ECONFLICT)
		wantCode(t, f.svc.DeleteUser(ctx, f.primary, f.primary.UserID), usher.ECONFLICT)
		must(t, f.svc.GrantRole(ctx, f.primary, usher.RoleGrant{UserID: f.target.ID, Role: usher.RolePrimaryAdmin}))
		must(t, f.svc.RevokeRole(ctx, f.primary, usher.RoleGrant{UserID: f.primary.UserID, Role: usher.RolePrimaryAdmin}))
	})
}

// A secondary admin manages users, but disabling, re-addressing or deleting
// a primary admin would be revoking that role by another route.
func TestSecondaryAdminCannotEditOrDeleteAPrimaryAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		must(t, f.svc.GrantRole(ctx, f.primary, usher.RoleGrant{UserID: f.target.ID, Role: usher.RolePrimaryAdmin}))
		disabled, email := usher.UserDisabled, "taken@acme.test"
		for _, id := range []int64{f.primary.UserID, f.target.ID} {
			_, err := f.svc.UpdateUser(ctx, f.secondary, id, access.UserInput{Status: &disabled})
			wantCode(t, err, usher.EFORBIDDEN)
			_, err = f.svc.UpdateUser(ctx, f.secondary, id, access.UserInput{Email: &email})
			wantCode(t, err, usher.EFORBIDDEN)
			wantCode(t, f.svc.DeleteUser(ctx, f.secondary, id), usher.EFORBIDDEN)
		}
		if u, _ := f.svc.User(ctx, f.primary, f.target.ID); u.Status != usher.UserActive || u.Email == email {
			t.Fatalf("the refused edits changed %+v", u)
		}
		// A primary admin may disable another, but not the last active one.
		if _, err := f.svc.UpdateUser(ctx, f.primary, f.target.ID, access.UserInput{Status: &disabled}); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.UpdateUser(ctx, f.primary, f.primary.UserID, access.UserInput{Status: &disabled})
		wantCode(t, err, usher.ECONFLICT)
		wantCode(t, f.svc.DeleteUser(ctx, f.primary, f.primary.UserID), usher.ECONFLICT)
	})
}

func TestDeleteUserFreesSeats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		must(t, f.svc.Assign(ctx, f.primary, f.target.ID, f.sub1.ID, []string{"rendering"}))
		must(t, f.svc.DeleteUser(ctx, f.primary, f.target.ID))
		sub, _ := f.svc.Subscription(ctx, f.primary, f.sub1.ID)
		if sub.SeatsUsed != 1 {
			t.Fatalf("seats used: got %d, want 1", sub.SeatsUsed)
		}
		_, err := f.svc.User(ctx, f.primary, f.target.ID)
		wantCode(t, err, usher.ENOTFOUND)
	})
}

// An ingest token sends usage; of people it reads only its own user (as
// GET /me shows it), not even that user's seats and benefits.
func TestIngestTokenReadsNoUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		_, plain, err := f.svc.CreateToken(ctx, f.primary, access.TokenInput{Name: "sensor", Scope: usher.ScopeIngest})
		must(t, err)
		ingest, err := f.svc.Authenticate(ctx, plain)
		must(t, err)
		_, err = f.svc.User(ctx, ingest, f.target.ID)
		wantCode(t, err, usher.ENOTFOUND)
		_, err = f.svc.Access(ctx, ingest, ingest.UserID)
		wantCode(t, err, usher.ENOTFOUND)
		// The full token of the same user still reads its access.
		if _, err := f.svc.Access(ctx, f.primary, f.primary.UserID); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTwoPrimaryAdminsRemovingEachOtherLeaveOne: each passes the last-admin
// check alone; at once, one of them must be refused.
func TestTwoPrimaryAdminsRemovingEachOtherLeaveOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		for round := range 20 {
			a, _ := f.account(t, fmt.Sprintf("Pair %d", round), fmt.Sprintf("a%d@pair.test", round))
			email, name := fmt.Sprintf("b%d@pair.test", round), "B"
			bu, err := f.svc.CreateUser(ctx, a, access.UserInput{Email: &email, Name: &name})
			must(t, err)
			must(t, f.svc.GrantRole(ctx, a, usher.RoleGrant{UserID: bu.ID, Role: usher.RolePrimaryAdmin}))
			b, err := f.svc.ActorFor(ctx, a.AccountID, bu.ID)
			must(t, err)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			start := make(chan struct{})
			wg.Go(func() { <-start; errs[0] = f.svc.DeleteUser(ctx, a, b.UserID) })
			wg.Go(func() { <-start; errs[1] = f.svc.DeleteUser(ctx, b, a.UserID) })
			close(start)
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("round %d: want exactly one removal, got errors %v and %v", round, errs[0], errs[1])
			}
			left, err := f.svc.ListUsers(ctx, usher.System(a.AccountID), "", "", 10)
			must(t, err)
			if len(left.Items) != 1 {
				t.Fatalf("round %d: %d users left, want the one primary admin", round, len(left.Items))
			}
		}
	})
}

func TestCreateAccountRefusesAnExistingAdminEmail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := access.New(db.Access(), nil)
		first, _, _, err := svc.CreateAccount(ctx, access.NewAccount{Name: "Acme", AdminEmail: "ada@acme.test"})
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = svc.CreateAccount(ctx, access.NewAccount{Name: "Acme again", AdminEmail: " ADA@acme.test"})
		if usher.ErrorCode(err) != usher.ECONFLICT || !strings.Contains(err.Error(), fmt.Sprintf("account %d", first.ID)) {
			t.Fatalf("got %v, want a conflict naming account %d", err, first.ID)
		}
		if accounts, _ := svc.ListAccounts(ctx); len(accounts) != 1 {
			t.Fatalf("accounts: got %d, want 1", len(accounts))
		}
		if _, _, _, err := svc.CreateAccount(ctx, access.NewAccount{Name: "Acme again", AdminEmail: "ada@acme.test", AllowExistingEmail: true}); err != nil {
			t.Fatalf("allowed: %v", err)
		}
	})
}
