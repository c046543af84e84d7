package demo_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/demo"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

var now = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

func TestEnsure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := access.New(db.Access(), func() time.Time { return now })
		// Seeded as serve --demo does, as if months ago, so that the usage
		// seeded last has seats to be inactive on.
		setUp := now.AddDate(0, -demo.HistoryMonths, 0)
		past := access.New(db.Access(), func() time.Time { return setUp })

		start := time.Now()
		rnd := rand.New(rand.NewPCG(1, 2))
		first, err := demo.Ensure(ctx, past, now, rnd)
		if err != nil {
			t.Fatalf("ensure: %v", err)
		}
		res := first.Seeded
		if res == nil {
			t.Fatal("first Ensure did not seed")
		}
		t.Logf("seeded the demo on %s in %v: %d users, %d subscriptions, %d of %d seats used, %d benefit grants",
			db.Engine(), time.Since(start).Round(time.Millisecond), res.Users, res.Subscriptions, res.SeatsUsed, res.Seats, res.BenefitGrants)

		t.Run("Counts", func(t *testing.T) {
			want := map[string][2]int{
				"users":             {res.Users, demo.UserCount + 2},
				"subscriptions":     {res.Subscriptions, 9},
				"secondary admins":  {res.SecondaryAdmins, 1},
				"contract managers": {res.ContractManagers, 9},
				"coordinators":      {res.Coordinators, 3},
			}
			for name, gw := range want {
				if gw[0] != gw[1] {
					t.Errorf("%s: got %d, want %d", name, gw[0], gw[1])
				}
			}
			if res.ManagersWithoutSeat == 0 || res.ManagersWithoutSeat == res.ContractManagers {
				t.Errorf("managers without seat: got %d of %d, want some but not all", res.ManagersWithoutSeat, res.ContractManagers)
			}
			if res.BenefitGrants == 0 {
				t.Error("no benefit grants")
			}
		})

		admin, err := svc.Authenticate(ctx, first.Token)
		if err != nil {
			t.Fatalf("authenticate the demo token: %v", err)
		}
		if admin.Email != demo.AdminEmail || !admin.Has(usher.RolePrimaryAdmin, 0) {
			t.Fatalf("demo token acts as %s with %v, want primary admin %s", admin.Email, admin.Grants, demo.AdminEmail)
		}

		// The contracts the demo's groups are assigned.
		grouped := map[int64]bool{}
		groups := map[string]access.GroupDetail{}
		for _, name := range []string{demo.DesignGroup, demo.ContractorsGroup} {
			g, err := svc.GroupByName(ctx, admin, name)
			if err != nil {
				t.Fatalf("group %s: %v", name, err)
			}
			d, err := svc.Group(ctx, admin, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			groups[name] = d
			for _, gs := range d.Subscriptions {
				grouped[gs.SubscriptionID] = true
			}
		}

		t.Run("Groups", func(t *testing.T) {
			if res.Groups != 2 {
				t.Errorf("groups: got %d, want 2", res.Groups)
			}
			design, contractors := groups[demo.DesignGroup], groups[demo.ContractorsGroup]
			if len(design.Subscriptions) != 1 || len(contractors.Subscriptions) != 1 {
				t.Fatalf("assignments: Design %d, Contractors %d, want one each", len(design.Subscriptions), len(contractors.Subscriptions))
			}
			if design.Subscriptions[0].SubscriptionID == contractors.Subscriptions[0].SubscriptionID {
				t.Error("both groups are assigned the same contract")
			}

			// Design: about a dozen, every one seated through the group,
			// with seats to spare.
			ds := design.Subscriptions[0]
			if design.MemberCount < 8 || design.MemberCount > demo.DesignMembers {
				t.Errorf("Design members: got %d, want 8 to %d", design.MemberCount, demo.DesignMembers)
			}
			if ds.Seated != design.MemberCount || ds.Waiting != 0 || len(design.Waiting) != 0 {
				t.Errorf("Design: %d seated, %d waiting of %d members, want all seated", ds.Seated, ds.Waiting, design.MemberCount)
			}
			sub, err := svc.Subscription(ctx, admin, ds.SubscriptionID)
			if err != nil {
				t.Fatal(err)
			}
			if sub.SeatsAvailable() <= 0 {
				t.Errorf("Design's contract %s: %d of %d seats used, want some spare", sub.ContractNumber, sub.SeatsUsed, sub.Seats)
			}
			members, err := svc.GroupMembers(ctx, admin, design.ID, "", access.MaxLimit)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range members.Items {
				acc, err := svc.Access(ctx, admin, m.ID)
				if err != nil {
					t.Fatal(err)
				}
				through := false
				for _, sa := range acc.Subscriptions {
					if sa.Subscription.ID == ds.SubscriptionID && sa.Assigned && slices.ContainsFunc(sa.Sources, func(src usher.SeatSource) bool { return src.GroupID == design.ID }) {
						through = true
					}
				}
				if !through {
					t.Errorf("Design member %s holds no seat through the group", m.Email)
				}
			}

			// Contractors: the contract is full and some of them wait.
			cs := contractors.Subscriptions[0]
			if cs.Waiting != demo.ContractorsWaiting || res.Waiting != demo.ContractorsWaiting {
				t.Errorf("Contractors waiting: got %d (result %d), want %d", cs.Waiting, res.Waiting, demo.ContractorsWaiting)
			}
			if cs.Seated+cs.Waiting != contractors.MemberCount {
				t.Errorf("Contractors: %d seated + %d waiting, want %d members", cs.Seated, cs.Waiting, contractors.MemberCount)
			}
			waiting, err := svc.Waiting(ctx, admin, cs.SubscriptionID)
			if err != nil {
				t.Fatal(err)
			}
			if len(waiting) != demo.ContractorsWaiting {
				t.Errorf("waiting list of Contractors' contract: got %d, want %d", len(waiting), demo.ContractorsWaiting)
			}
			sub, err = svc.Subscription(ctx, admin, cs.SubscriptionID)
			if err != nil {
				t.Fatal(err)
			}
			if sub.SeatsAvailable() != 0 {
				t.Errorf("Contractors' contract %s: %d of %d seats used, want full", sub.ContractNumber, sub.SeatsUsed, sub.Seats)
			}
			if res.GroupSeats != ds.Seated+cs.Seated {
				t.Errorf("group seats: result %d, groups hold %d", res.GroupSeats, ds.Seated+cs.Seated)
			}
		})

		t.Run("SubscriptionsFilledNotOver", func(t *testing.T) {
			page, err := svc.ListSubscriptions(ctx, admin, "", access.MaxLimit)
			if err != nil {
				t.Fatal(err)
			}
			products := map[string]bool{}
			plans := map[usher.Plan]bool{}
			seats, used := 0, 0
			for _, sub := range page.Items {
				products[sub.Product.Code] = true
				plans[sub.Plan] = true
				seats += sub.Seats
				used += sub.SeatsUsed
				if sub.SeatsUsed > sub.Seats {
					t.Errorf("contract %s: %d seats used of %d", sub.ContractNumber, sub.SeatsUsed, sub.Seats)
				}
				if grouped[sub.ID] {
					continue // a group's seats may fill it
				}
				if pct := sub.SeatsUsed * 100 / sub.Seats; pct < 55 || pct > 95 {
					t.Errorf("contract %s: %d%% used (%d of %d), want 60–95%%", sub.ContractNumber, pct, sub.SeatsUsed, sub.Seats)
				}
				if sub.Seats < 10 || sub.Seats > 120 {
					t.Errorf("contract %s: %d seats, want 10 to 120", sub.ContractNumber, sub.Seats)
				}
				if len(sub.ContractNumber) != 12 {
					t.Errorf("contract number %q, want 12 digits", sub.ContractNumber)
				}
			}
			if len(products) != 5 {
				t.Errorf("products: got %v, want all five", products)
			}
			if len(plans) != 3 {
				t.Errorf("plans: got %v, want standard, premium and basic", plans)
			}
			if seats != res.Seats || used != res.SeatsUsed {
				t.Errorf("seats: got %d used of %d, result says %d of %d", used, seats, res.SeatsUsed, res.Seats)
			}
		})

		t.Run("Roles", func(t *testing.T) {
			roles := map[usher.Role]int{}
			users := 0
			cursor := ""
			for {
				page, err := svc.ListUsers(ctx, admin, "", cursor, access.MaxLimit)
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range page.Items {
					users++
					full, err := svc.User(ctx, admin, u.ID)
					if err != nil {
						t.Fatal(err)
					}
					for _, g := range full.Roles {
						roles[g.Role]++
					}
				}
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
			if users != demo.UserCount+2 {
				t.Errorf("users listed: got %d, want %d", users, demo.UserCount+2)
			}
			want := map[usher.Role]int{
				usher.RolePrimaryAdmin: 1, usher.RoleSecondaryAdmin: 1,
				usher.RoleContractManager: 9, usher.RoleSoftwareCoordinator: 3,
			}
			for r, n := range want {
				if roles[r] != n {
					t.Errorf("%s grants: got %d, want %d", r, roles[r], n)
				}
			}
		})

		t.Run("Audited", func(t *testing.T) {
			page, err := svc.AuditLog(ctx, admin, 0, "seat.assign", "", access.MaxLimit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) == 0 {
				t.Error("no seat.assign audit entries")
			}
		})

		t.Run("SecondStartReplacesTheToken", func(t *testing.T) {
			again, err := demo.Ensure(ctx, svc, now.Add(time.Hour), rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			if again.Seeded != nil {
				t.Fatal("second Ensure seeded again")
			}
			if again.Account.ID != first.Account.ID || again.Token == first.Token {
				t.Fatalf("second start: account %d token changed %v, want account %d and a new token", again.Account.ID, again.Token != first.Token, first.Account.ID)
			}
			if _, err := svc.Authenticate(ctx, again.Token); err != nil {
				t.Errorf("the new token: %v", err)
			}
			if _, err := svc.Authenticate(ctx, first.Token); usher.ErrorCode(err) != usher.EUNAUTHORIZED {
				t.Errorf("the earlier token: got %v, want it revoked", err)
			}
			admin, err := svc.ActorFor(ctx, again.Account.ID, again.Admin.ID)
			if err != nil {
				t.Fatal(err)
			}
			tokens, err := svc.ListTokens(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			if len(tokens) != 1 || tokens[0].Name != demo.TokenName || again.Replaced != 1 {
				t.Errorf("tokens after two starts: got %+v (replaced %d), want the one demo token", tokens, again.Replaced)
			}
			accounts, err := svc.ListAccounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(accounts) != 1 {
				t.Errorf("accounts: got %d, want 1", len(accounts))
			}
		})

		t.Run("SeedUsage", func(t *testing.T) {
			use := usage.New(db.Usage(), usage.Config{Now: func() time.Time { return now }})
			s := first
			start = time.Now()
			res, err := demo.SeedUsage(ctx, svc, use, s, now, rnd)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("seeded %d usage events for %d (user, product) pairs on %s in %v", res.Events, res.Pairs, db.Engine(), time.Since(start).Round(time.Millisecond))
			if res.Events < 10_000 || res.Daily == 0 || res.Occasional == 0 || res.Stopped == 0 || res.Never == 0 || res.RecentSeats != demo.RecentSeats {
				t.Fatalf("got %+v, want every kind of use and %d recent seats", res, demo.RecentSeats)
			}

			admin, err := svc.ActorFor(ctx, s.Account.ID, s.Admin.ID)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			for _, rg := range []usage.Range{usage.Range30d, usage.Range3m} {
				err = use.EachRow(ctx, admin, usage.ReportFilter{Range: rg}, func(usage.Report) error { return nil }, func(r usage.ReportRow) error {
					kind := string(rg) + " " + string(r.Status)
					switch {
					case r.Status == usage.StatusUnavailable:
					case r.LastUsed == nil && r.Status == usage.StatusActive:
						kind += " new, never used"
					case r.LastUsed == nil:
						kind += " never used"
					}
					kinds[kind]++
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range []string{
				"30d active", "30d inactive", "30d inactive never used", "30d active new, never used", "30d unavailable",
				"3m active", "3m inactive", "3m inactive never used",
			} {
				if kinds[want] == 0 {
					t.Errorf("no %q rows; got %v", want, kinds)
				}
			}
			// Some who stopped one to three months ago are inactive for 30 days
			// only.
			if kinds["3m inactive"] >= kinds["30d inactive"] {
				t.Errorf("3m inactive %d, 30d inactive %d: want fewer inactive over the longer range", kinds["3m inactive"], kinds["30d inactive"])
			}
		})
	})
}
