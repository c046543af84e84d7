// Package demo seeds a realistic demo account. It goes through
// access.Service for every change, so the demo obeys the same rules and
// leaves the same audit trail as real use.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// The demo account and its primary admin.
const (
	AccountName = "Demo Co"
	TimeZone    = "Europe/Berlin"
	AdminEmail  = "admin@demo.usher.test"
	AdminName   = "Avery Admin"
	// AdminPassword is the admin's console password, set at the first
	// demo start. It is public: the demo holds no real data.
	AdminPassword = "usher-demo-password"
	Domain        = "demo.usher.test"
)

// UserCount is how many people the demo account has besides its two admins.
const UserCount = 300

// Result says what Seed created.
type Result struct {
	Account usher.Account
	Admin   usher.User // the primary admin
	// AdminToken is the API token CreateAccount made for the primary admin.
	// Only its hash is stored: it is shown once.
	AdminToken string

	Users               int // every user, admins included
	SecondaryAdmins     int
	Subscriptions       int
	Seats               int // seats bought, over all subscriptions
	SeatsUsed           int
	Leavers             int // people who left before the set-up day (with Options.SetClock)
	BenefitGrants       int // (user, subscription, benefit) triples
	ContractManagers    int
	ManagersWithoutSeat int // contract managers who declined a seat of their contract
	Coordinators        int // software coordinator grants
	Groups              int
	GroupSeats          int // seats held through a group only
	Waiting             int // group members waiting for a seat
}

// The demo's groups: Design holds seats of the contract with the most spare
// seats; Contractors outnumber the free seats of theirs, so some wait.
const (
	DesignGroup      = "Design"
	ContractorsGroup = "Contractors"
	// DesignMembers is the size the Design group aims for.
	DesignMembers = 12
	// ContractorsWaiting is how many Contractors wait for a seat.
	ContractorsWaiting = 2
)

// contract is one subscription of the demo account.
type contract struct {
	product string
	plan    usher.Plan
	seats   int
}

// contracts covers all five catalog products with a mix of plans.
var contracts = []contract{
	{"draftpro", usher.PlanPremium, 120},
	{"draftpro", usher.PlanBasic, 25},
	{"modelstudio", usher.PlanPremium, 80},
	{"modelstudio", usher.PlanStandard, 30},
	{"civilworks", usher.PlanStandard, 60},
	{"animator", usher.PlanStandard, 20},
	{"animator", usher.PlanBasic, 10},
	{"plantdesign", usher.PlanPremium, 45},
	{"plantdesign", usher.PlanStandard, 15},
}

// benefitsOf is what each plan's contracts carry.
var benefitsOf = map[usher.Plan][]string{
	usher.PlanPremium:  {"web_support", "phone_support", "remote_desktop", "training"},
	usher.PlanStandard: {"web_support", "phone_support"},
	usher.PlanBasic:    {"web_support"},
}

var firstNames = []string{
	"Aaliyah", "Adrian", "Aisha", "Alex", "Amara", "Andrea", "Anton", "Beatrice", "Ben", "Carla",
	"Chen", "Clara", "Daniel", "Dario", "Elena", "Elif", "Emil", "Emma", "Fatima", "Felix",
	"Finn", "Greta", "Hana", "Hannah", "Hugo", "Ines", "Ivan", "Jakob", "Jana", "Jonas",
	"Julia", "Kai", "Karim", "Katja", "Lars", "Laura", "Lea", "Leon", "Lina", "Luca",
	"Maja", "Marco", "Maria", "Mateo", "Mia", "Mila", "Nadia", "Niklas", "Noah", "Nora",
	"Oskar", "Paula", "Priya", "Rafael", "Rosa", "Sara", "Sofia", "Tobias", "Yara", "Zoe",
}

var lastNames = []string{
	"Andersen", "Bauer", "Becker", "Berger", "Brandt", "Costa", "Demir", "Dubois", "Eriksson", "Fischer",
	"Garcia", "Hartmann", "Hoffmann", "Ivanova", "Jansen", "Kaiser", "Keller", "Klein", "Koch", "Kowalski",
	"Lang", "Lehmann", "Lorenz", "Martin", "Meyer", "Moreau", "Nguyen", "Novak", "Okafor", "Peters",
	"Richter", "Rossi", "Santos", "Schmidt", "Schulz", "Silva", "Tanaka", "Vogel", "Wagner", "Weber",
	"Wolf", "Yilmaz", "Zimmermann", "Nakamura", "Haddad",
}

// Seed creates the demo account with its users, contracts, roles, seats and
// benefits. rnd decides every choice, so a given seed gives the same account;
// now places the contract terms.
func Seed(ctx context.Context, svc *access.Service, now time.Time, rnd *rand.Rand) (Result, error) {
	return SeedWith(ctx, svc, now, rnd, Options{})
}

// Options make the demo look lived in.
type Options struct {
	// SetClock, when set, moves the clock of svc (the seeding access
	// service), so that seats are assigned over two years up to SetUpAt and a
	// few leavers give theirs up before it, as a real account's history.
	SetClock func(time.Time)
	SetUpAt  time.Time
}

// Leavers is how many people left before the demo's set-up day: their
// seats were unassigned and their users disabled (with Options.SetClock).
const Leavers = 4

// SeedWith is Seed with options.
func SeedWith(ctx context.Context, svc *access.Service, now time.Time, rnd *rand.Rand, opt Options) (Result, error) {
	var res Result
	acct, admin, token, err := svc.CreateAccount(ctx, access.NewAccount{
		Name: AccountName, TimeZone: TimeZone, AdminEmail: AdminEmail, AdminName: AdminName,
		AllowExistingEmail: true, // the demo address is the demo's; whoever else uses it is no reason to stop
	})
	if err != nil {
		return res, fmt.Errorf("seed demo: %w", err)
	}
	res.Account, res.Admin, res.AdminToken = acct, admin, token
	actor, err := svc.ActorFor(ctx, acct.ID, admin.ID)
	if err != nil {
		return res, fmt.Errorf("seed demo: %w", err)
	}
	s := &seeder{svc: svc, actor: actor, rnd: rnd, res: &res, opt: opt}
	if err := s.seed(ctx, now.In(acct.Location())); err != nil {
		return res, fmt.Errorf("seed demo: %w", err)
	}
	return res, nil
}

type seeder struct {
	svc   *access.Service
	actor usher.Actor
	rnd   *rand.Rand
	res   *Result
	opt   Options
	left  map[int64]bool // leavers, disabled
}

// at moves the seeding clock to a day between from and the set-up day, at
// random, when the options allow it.
func (s *seeder) at(from time.Time) {
	if s.opt.SetClock == nil {
		return
	}
	to := s.opt.SetUpAt
	t := to
	if days := int(to.Sub(from).Hours() / 24); days > 0 {
		t = to.AddDate(0, 0, -s.rnd.IntN(days+1))
	}
	s.opt.SetClock(t)
}

// plan is what one user will hold on one subscription.
type plan struct {
	seat     bool
	held     bool // the seat came with the contract (a contract manager's)
	services []string
	benefits []string
}

func (s *seeder) seed(ctx context.Context, now time.Time) error {
	products, err := s.svc.ListProducts(ctx, s.actor)
	if err != nil {
		return err
	}
	byCode := map[string]usher.Product{}
	for _, p := range products {
		byCode[p.Code] = p
	}
	for _, c := range contracts {
		if _, ok := byCode[c.product]; !ok {
			return fmt.Errorf("product %q is not in the catalog", c.product)
		}
	}

	users := []usher.User{s.res.Admin}
	second, err := s.user(ctx, "robin.castellano@"+Domain, "Robin Castellano")
	if err != nil {
		return err
	}
	if err := s.svc.GrantRole(ctx, s.actor, usher.RoleGrant{UserID: second.ID, Role: usher.RoleSecondaryAdmin}); err != nil {
		return err
	}
	s.res.SecondaryAdmins = 1
	users = append(users, second)
	for _, i := range s.rnd.Perm(len(firstNames) * len(lastNames))[:UserCount] {
		first, last := firstNames[i%len(firstNames)], lastNames[i/len(firstNames)]
		u, err := s.user(ctx, strings.ToLower(first+"."+last)+"@"+Domain, first+" "+last)
		if err != nil {
			return err
		}
		users = append(users, u)
	}
	s.res.Users = len(users)

	// Contracts, each with a contract manager from the staff (not an admin).
	// Every third manager runs the contract without using the software.
	holds := map[int64]map[int64]*plan{} // user id → subscription id → plan
	hold := func(userID, subID int64) *plan {
		if holds[userID] == nil {
			holds[userID] = map[int64]*plan{}
		}
		if holds[userID][subID] == nil {
			holds[userID][subID] = &plan{}
		}
		return holds[userID][subID]
	}
	staff := users[2:]
	managers := s.rnd.Perm(len(staff))
	numbers := map[string]bool{}
	subs := make([]usher.Subscription, 0, len(contracts))
	declined := map[int64]int64{} // subscription id → manager who has no seat
	for i, c := range contracts {
		mgr := staff[managers[i]]
		seat := i%3 != 1
		years, back := 1, 300
		if c.plan == usher.PlanPremium {
			// Three-year contracts started up to two years ago, so their
			// seats were assigned over that time.
			years, back = 3, 700
		}
		start := usher.DateOf(now.AddDate(0, 0, -30-s.rnd.IntN(back)))
		if i == 1 {
			// One contract ends in 40 days: the dashboard lists it.
			start = usher.DateOf(now.AddDate(-1, 0, 40))
		}
		number := fmt.Sprintf("1100%08d", s.rnd.IntN(100_000_000))
		for numbers[number] {
			number = fmt.Sprintf("1100%08d", s.rnd.IntN(100_000_000))
		}
		numbers[number] = true
		seats := c.seats
		sub, err := s.svc.CreateSubscription(ctx, s.actor, access.NewSubscription{
			Product: c.product, Plan: c.plan, Seats: &seats, ContractNumber: number,
			TermStart: start, TermEnd: usher.Date{Time: start.AddDate(years, 0, 0)},
			Benefits: benefitsOf[c.plan], ContractManagerID: mgr.ID, AssignManagerSeat: &seat,
		})
		if err != nil {
			return err
		}
		subs = append(subs, sub)
		s.res.Subscriptions++
		s.res.Seats += sub.Seats
		s.res.ContractManagers++
		if seat {
			p := hold(mgr.ID, sub.ID)
			p.seat, p.held = true, true
		} else {
			declined[sub.ID] = mgr.ID
			s.res.ManagersWithoutSeat++
		}
	}

	// A couple of software coordinators, people who are not managers: two on
	// the largest contract, one on another.
	for k, subIdx := range []int{0, 0, 2} {
		u := staff[managers[len(contracts)+k]]
		g := usher.RoleGrant{UserID: u.ID, Role: usher.RoleSoftwareCoordinator, SubscriptionID: subs[subIdx].ID}
		if err := s.svc.GrantRole(ctx, s.actor, g); err != nil {
			return err
		}
		s.res.Coordinators++
	}

	// Fill each contract to 60–95% of its seats, then choose services and
	// benefits for every seat holder.
	for _, sub := range subs {
		target := sub.Seats * (60 + s.rnd.IntN(36)) / 100
		used := 0
		for _, h := range holds {
			if p := h[sub.ID]; p != nil && p.seat {
				used++
			}
		}
		candidates := slices.DeleteFunc(slices.Clone(users), func(u usher.User) bool {
			p := holds[u.ID][sub.ID]
			return (p != nil && p.seat) || declined[sub.ID] == u.ID
		})
		for _, u := range pick(s.rnd, candidates, target-used) {
			hold(u.ID, sub.ID).seat = true
		}
		for _, u := range users {
			p := holds[u.ID][sub.ID]
			if p == nil {
				continue
			}
			for _, service := range sub.Product.Services {
				if s.rnd.IntN(10) < 6 {
					p.services = append(p.services, service.Code)
				}
			}
			for _, b := range sub.Benefits {
				if s.rnd.IntN(2) == 0 {
					p.benefits = append(p.benefits, b)
				}
			}
		}
	}

	// One call per user: Assign for a lone seat without benefits, else
	// SetAccess with everything the user holds (a contract manager's seat
	// included, since SetAccess replaces).
	for _, u := range users {
		h := holds[u.ID]
		if len(h) == 0 {
			continue
		}
		var changes []access.AccessChange
		held := false
		for _, sub := range subs {
			p := h[sub.ID]
			if p == nil {
				continue
			}
			changes = append(changes, access.AccessChange{SubscriptionID: sub.ID, Assigned: p.seat, Services: p.services, Benefits: p.benefits})
			if p.seat {
				s.res.SeatsUsed++
			}
			held = held || p.held
			s.res.BenefitGrants += len(p.benefits)
		}
		if s.opt.SetClock != nil {
			// Assigned on a day after every one of its contracts started.
			from := time.Time{}
			for _, sub := range subs {
				if h[sub.ID] != nil && sub.TermStart.After(from) {
					from = sub.TermStart.Time
				}
			}
			if held {
				from = s.opt.SetUpAt // a contract manager's seat came with the contract
			}
			s.at(from)
		}
		if len(changes) == 1 && len(changes[0].Benefits) == 0 && !held {
			if err := s.svc.Assign(ctx, s.actor, u.ID, changes[0].SubscriptionID, changes[0].Services); err != nil {
				return err
			}
			continue
		}
		if _, err := s.svc.SetAccess(ctx, s.actor, u.ID, changes); err != nil {
			return err
		}
	}
	if err := s.leave(ctx, users, holds); err != nil {
		return err
	}
	return s.groups(ctx, users, subs, holds, declined)
}

// groups seeds DesignGroup on the contract with the most free seats, all of
// its members seated through it, and ContractorsGroup on the contract with
// the fewest, with ContractorsWaiting more members than free seats.
func (s *seeder) groups(ctx context.Context, users []usher.User, subs []usher.Subscription, holds map[int64]map[int64]*plan, declined map[int64]int64) error {
	free := make([]int, len(subs))
	for i, sub := range subs {
		cur, err := s.svc.Subscription(ctx, s.actor, sub.ID)
		if err != nil {
			return err
		}
		free[i] = cur.SeatsAvailable()
	}
	most, fewest := 0, -1
	for i := range subs {
		if free[i] > free[most] {
			most = i
		}
	}
	for i := range subs {
		if i != most && (fewest < 0 || free[i] < free[fewest]) {
			fewest = i
		}
	}
	taken := map[int64]bool{}
	// eligible are active people without a seat of sub, in no demo group: a group
	// gives each of them a seat of their own.
	eligible := func(sub usher.Subscription) []usher.User {
		return slices.DeleteFunc(slices.Clone(users[2:]), func(u usher.User) bool {
			p := holds[u.ID][sub.ID]
			return (p != nil && p.seat) || declined[sub.ID] == u.ID || s.left[u.ID] || taken[u.ID]
		})
	}
	seed := func(name, desc string, sub usher.Subscription, n, seated int) error {
		members := pick(s.rnd, eligible(sub), n)
		ids := make([]int64, len(members))
		for i, u := range members {
			ids[i], taken[u.ID] = u.ID, true
		}
		g, err := s.svc.CreateGroupWithMembers(ctx, s.actor, access.GroupInput{Name: &name, Description: &desc}, ids)
		if err != nil {
			return err
		}
		in := access.GroupAssignmentInput{}
		for _, svc := range sub.Product.Services {
			in.Services = append(in.Services, svc.Code)
		}
		if len(sub.Benefits) > 0 {
			in.Benefits = sub.Benefits[:1]
		}
		if _, err := s.svc.AssignGroup(ctx, s.actor, g.ID, sub.ID, in); err != nil {
			return err
		}
		seated = min(seated, len(ids))
		s.res.Groups++
		s.res.GroupSeats += seated
		s.res.SeatsUsed += seated
		s.res.Waiting += len(ids) - seated
		return nil
	}
	// Design leaves a few seats spare.
	design := min(DesignMembers, free[most]-3)
	if err := seed(DesignGroup, "Product design team", subs[most], design, design); err != nil {
		return err
	}
	return seed(ContractorsGroup, "External contractors", subs[fewest], free[fewest]+ContractorsWaiting, free[fewest])
}

// leave makes Leavers people without roles give up their seats and be
// disabled some weeks before the set-up day.
func (s *seeder) leave(ctx context.Context, users []usher.User, holds map[int64]map[int64]*plan) error {
	if s.opt.SetClock == nil {
		return nil
	}
	left := 0
	for _, u := range users[2:] {
		if left == Leavers {
			break
		}
		var items []access.UnassignItem
		managed := false
		for subID, p := range holds[u.ID] {
			managed = managed || p.held
			if p.seat {
				items = append(items, access.UnassignItem{UserID: u.ID, SubscriptionID: subID})
			}
		}
		if managed || len(items) == 0 {
			continue
		}
		if ua, err := s.svc.User(ctx, s.actor, u.ID); err != nil || len(ua.Roles) > 0 {
			if err != nil {
				return err
			}
			continue
		}
		s.opt.SetClock(s.opt.SetUpAt.AddDate(0, 0, -7*(left+1)))
		if _, err := s.svc.Unassign(ctx, s.actor, items); err != nil {
			return err
		}
		disabled := usher.UserDisabled
		if _, err := s.svc.UpdateUser(ctx, s.actor, u.ID, access.UserInput{Status: &disabled}); err != nil {
			return err
		}
		s.res.SeatsUsed -= len(items)
		s.res.Leavers++
		if s.left == nil {
			s.left = map[int64]bool{}
		}
		s.left[u.ID] = true
		left++
	}
	s.opt.SetClock(s.opt.SetUpAt)
	return nil
}

func (s *seeder) user(ctx context.Context, email, name string) (usher.User, error) {
	return s.svc.CreateUser(ctx, s.actor, access.UserInput{Email: &email, Name: &name})
}

// pick returns n elements of from in random order (all of them if n is larger).
func pick[T any](rnd *rand.Rand, from []T, n int) []T {
	if n > len(from) {
		n = len(from)
	}
	if n <= 0 {
		return nil
	}
	out := make([]T, 0, n)
	for _, i := range rnd.Perm(len(from))[:n] {
		out = append(out, from[i])
	}
	return out
}

// Session is what a demo start needs to tell the user.
type Session struct {
	Account usher.Account
	Admin   usher.User
	Token   string  // a fresh full-scope API token of Admin, the only demo token
	Seeded  *Result // nil when the account existed already
	// Replaced counts the earlier demo tokens revoked to make way for Token.
	Replaced int
}

// TokenName names the demo's API token.
const TokenName = "demo token"

// initialTokenName is the token account creation gives the first admin;
// the demo never prints it, so it replaces it too.
const initialTokenName = "initial admin token"

// Ensure seeds the demo account unless an account named AccountName exists,
// then makes a fresh API token for its primary admin, revoking the one an
// earlier start printed. Only token hashes are stored, so a new token is the
// only way to print one on every start; keeping one at a time stops a demo
// that restarts often from piling up tokens that never expire.
func Ensure(ctx context.Context, svc *access.Service, now time.Time, rnd *rand.Rand) (Session, error) {
	return EnsureWith(ctx, svc, now, rnd, Options{})
}

// EnsureWith is Ensure with options for a newly seeded account.
func EnsureWith(ctx context.Context, svc *access.Service, now time.Time, rnd *rand.Rand, opt Options) (Session, error) {
	var out Session
	accounts, err := svc.ListAccounts(ctx)
	if err != nil {
		return out, fmt.Errorf("find demo account: %w", err)
	}
	found := false
	for _, a := range accounts {
		if a.Name == AccountName {
			out.Account, found = a, true
			break
		}
	}
	if !found {
		res, err := SeedWith(ctx, svc, now, rnd, opt)
		if err != nil {
			return out, err
		}
		out.Account, out.Seeded = res.Account, &res
	}
	page, err := svc.ListUsers(ctx, usher.System(out.Account.ID), AdminEmail, "", 10)
	if err != nil {
		return out, fmt.Errorf("find demo admin: %w", err)
	}
	for _, u := range page.Items {
		if u.Email == AdminEmail {
			out.Admin = u
		}
	}
	if out.Admin.ID == 0 {
		return out, fmt.Errorf("find demo admin: account %q has no user %s", AccountName, AdminEmail)
	}
	actor, err := svc.ActorFor(ctx, out.Account.ID, out.Admin.ID)
	if err != nil {
		return out, fmt.Errorf("demo admin %s: %w", AdminEmail, err)
	}
	// One demo token at a time: the one printed last. The secret of an
	// earlier one cannot be shown again (only its hash is kept), so it is
	// replaced rather than reused.
	tokens, err := svc.ListTokens(ctx, actor)
	if err != nil {
		return out, fmt.Errorf("demo token: %w", err)
	}
	for _, t := range tokens {
		if t.UserID == out.Admin.ID && (t.Name == TokenName || t.Name == initialTokenName || strings.HasPrefix(t.Name, TokenName+" ")) {
			if _, err := svc.RevokeToken(ctx, actor, t.ID); err != nil {
				return out, fmt.Errorf("demo token: %w", err)
			}
			out.Replaced++
		}
	}
	_, out.Token, err = svc.CreateToken(ctx, actor, access.TokenInput{Name: TokenName, Scope: usher.ScopeFull})
	if err != nil {
		return out, fmt.Errorf("demo token: %w", err)
	}
	return out, nil
}
