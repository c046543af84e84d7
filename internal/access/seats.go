package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// SubscriptionAccess is what one user holds of one subscription.
type SubscriptionAccess struct {
	Subscription usher.Subscription `json:"subscription"`
	Assigned     bool               `json:"assigned"`
	AssignedAt   *time.Time         `json:"assigned_at,omitempty"`
	Services     []string           `json:"services"`
	Benefits     []string           `json:"benefits"`
	// Sources says how a held seat reaches the user: directly and/or
	// through groups. Empty when not assigned.
	Sources []usher.SeatSource `json:"sources"`
	// Waiting is true when the user's groups give them this subscription
	// but no seat was free; they are seated oldest first.
	Waiting bool `json:"waiting"`
	// Editable says whether the actor may change this entry.
	Editable bool `json:"editable"`
}

// UserAccess is a user's products, services and benefits, one entry per
// subscription the actor may see.
type UserAccess struct {
	User          usher.User           `json:"user"`
	Subscriptions []SubscriptionAccess `json:"subscriptions"`
	// Version changes whenever what this view shows of the user's access
	// changes: seats, their services and benefits, and which subscriptions
	// the actor sees and may change. Seat counts of the subscriptions are
	// not part of it. The HTTP edge sends it as the ETag.
	Version string `json:"-"`
}

// Access returns the user's access. Admins see every subscription; contract
// managers and software coordinators see theirs; a user sees their own seats
// and benefits.
func (s *Service) Access(ctx context.Context, a usher.Actor, userID int64) (UserAccess, error) {
	if !mayReadAccess(a, userID) {
		return UserAccess{}, usher.Errorf(usher.ENOTFOUND, "user %d not found", userID)
	}
	var out UserAccess
	// The view is one statement (Tx.AccessView), consistent on its own.
	err := s.store.Peek(ctx, func(tx Tx) (err error) {
		out, err = s.view(ctx, tx, a, userID)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("get access of user %d: %w", userID, err)
	}
	return out, nil
}

// mayReadAccess reports whether the actor may read userID's access at all:
// their own (not with an ingest token, which only sends usage), or anyone's
// when they manage some subscription's seats.
func mayReadAccess(a usher.Actor, userID int64) bool {
	self := userID == a.UserID && seesOwn(a) // an ingest or SCIM token does not read seats
	return self || CanAny(a, ManageSeats)
}

// view loads the user's access as the actor sees it.
// It is one statement: every GET of a user's access, and every change of
// it, which answers with the view, pays for it.
func (s *Service) view(ctx context.Context, tx Tx, a usher.Actor, userID int64) (UserAccess, error) {
	d, err := tx.AccessView(ctx, a.AccountID, userID, MaxSubscriptionsPerAccount)
	if err != nil {
		return UserAccess{}, err
	}
	return buildView(a, d.User, d.Held, d.Benefits, d.Subscriptions, grouping{groups: d.Groups, waits: d.Waits}), nil
}

// grouping is what a view shows of the user's groups: their names, and the
// subscriptions the user waits for.
type grouping struct {
	groups []usher.Group
	waits  []usher.Waiter
}

func groupings(ctx context.Context, tx Tx, accountID, userID int64) (grouping, error) {
	var g grouping
	var err error
	if g.groups, err = tx.GroupsOfUser(ctx, accountID, userID); err != nil {
		return g, err
	}
	g.waits, err = tx.Waiters(ctx, accountID, WaiterFilter{UserID: userID})
	return g, err
}

// buildView is the access of u as actor a sees it, from what storage holds.
func buildView(a usher.Actor, u usher.User, held map[int64]usher.Assignment, benefits map[int64][]string, subs []usher.Subscription, g grouping) UserAccess {
	self := u.ID == a.UserID && seesOwn(a)
	out := UserAccess{User: u, Subscriptions: []SubscriptionAccess{}}
	for _, sub := range subs {
		as, assigned := held[sub.ID]
		wait := slices.ContainsFunc(g.waits, func(w usher.Waiter) bool { return w.SubscriptionID == sub.ID })
		visible := Can(a, ManageSeats, sub.ID) || (self && (assigned || wait || len(benefits[sub.ID]) > 0))
		if !visible {
			continue
		}
		e := SubscriptionAccess{Subscription: sub, Assigned: assigned, Services: []string{}, Benefits: orEmpty(benefits[sub.ID]),
			Sources: []usher.SeatSource{}, Waiting: wait, Editable: Can(a, ManageSeats, sub.ID)}
		if assigned {
			at := as.AssignedAt
			e.AssignedAt = &at
			e.Services = orEmpty(as.Services)
			e.Sources = seatSources(as, g.groups)
		}
		out.Subscriptions = append(out.Subscriptions, e)
	}
	out.Version = accessVersion(out)
	return out
}

// accessVersion hashes what a view shows of the user's access, in a fixed
// order, so equal access has an equal version whatever the storage order.
func accessVersion(ua UserAccess) string {
	h := sha256.New()
	fmt.Fprintf(h, "user %d\n", ua.User.ID)
	for _, e := range ua.Subscriptions {
		at := int64(0)
		if e.AssignedAt != nil {
			at = e.AssignedAt.UnixMilli()
		}
		services, benefits := slices.Sorted(slices.Values(e.Services)), slices.Sorted(slices.Values(e.Benefits))
		fmt.Fprintf(h, "sub %d editable=%t assigned=%t at=%d services=%s benefits=%s waiting=%t sources=",
			e.Subscription.ID, e.Editable, e.Assigned, at, strings.Join(services, ","), strings.Join(benefits, ","), e.Waiting)
		for _, src := range e.Sources {
			fmt.Fprintf(h, "%t/%d,", src.Direct, src.GroupID)
		}
		fmt.Fprintln(h)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// checkVersion refuses a change when the caller named versions (If-Match)
// and the user's access, as the actor sees it now, has none of them.
func checkVersion(now UserAccess, ifMatch []string) error {
	if len(ifMatch) == 0 || slices.Contains(ifMatch, now.Version) {
		return nil
	}
	return usher.Errorf(usher.EPRECONDITION, "the access of user %d has changed since you read it (its version is now %s); read it again and repeat your change", now.User.ID, now.Version)
}

// seatSources names the sources of a held seat.
func seatSources(as usher.Assignment, groups []usher.Group) []usher.SeatSource {
	out := []usher.SeatSource{}
	if as.Direct {
		out = append(out, usher.SeatSource{Direct: true})
	}
	for _, id := range as.Groups {
		src := usher.SeatSource{GroupID: id}
		for _, g := range groups {
			if g.ID == id {
				src.GroupName = g.Name
			}
		}
		out = append(out, src)
	}
	return out
}

// MaxSubscriptionsPerAccount bounds the subscriptions an access view walks.
const MaxSubscriptionsPerAccount = 10_000

// holdings loads a user with their seats (by subscription id) and benefits.
func (s *Service) holdings(ctx context.Context, tx Tx, accountID, userID int64) (usher.User, map[int64]usher.Assignment, map[int64][]string, error) {
	u, err := tx.UserByID(ctx, accountID, userID)
	if err != nil {
		return u, nil, nil, err
	}
	seats, err := tx.AssignmentsOfUser(ctx, accountID, userID)
	if err != nil {
		return u, nil, nil, err
	}
	held := make(map[int64]usher.Assignment, len(seats))
	for _, as := range seats {
		held[as.SubscriptionID] = as
	}
	benefits, err := tx.BenefitsOfUser(ctx, accountID, userID)
	return u, held, benefits, err
}

// lockedHoldings is holdings with the user (LockUser), the seats it
// returns and those of the subscriptions in also locked (LockSeats): it
// reads, locks what it read, and reads again, as a seat may have been
// released between the read and the lock. With the user locked no seat can
// be added meanwhile; should one appear all the same, it is locked too.
func (s *Service) lockedHoldings(ctx context.Context, tx Tx, accountID, userID int64, also []int64) (usher.User, map[int64]usher.Assignment, map[int64][]string, error) {
	if err := tx.LockUser(ctx, accountID, userID); err != nil {
		return usher.User{}, nil, nil, err
	}
	locked := map[int64]bool{}
	for {
		u, held, benefits, err := s.holdings(ctx, tx, accountID, userID)
		if err != nil {
			return u, held, benefits, err
		}
		var more []int64
		note := func(id int64) {
			if !locked[id] {
				locked[id] = true
				more = append(more, id)
			}
		}
		for _, id := range also {
			note(id)
		}
		for id := range held {
			note(id)
		}
		for id := range benefits {
			note(id)
		}
		if len(more) == 0 {
			return u, held, benefits, nil
		}
		if err := tx.LockSeats(ctx, accountID, more, []int64{userID}); err != nil {
			return u, held, benefits, err
		}
	}
}

// AccessChange is the wanted state of one subscription for a user.
type AccessChange struct {
	SubscriptionID int64    `json:"subscription_id"`
	Assigned       bool     `json:"assigned"`
	Services       []string `json:"services"`
	Benefits       []string `json:"benefits"`
}

// SetAccess replaces the user's access on every subscription the actor
// manages: listed subscriptions get exactly the listed seat, services and
// benefits; unlisted ones the actor manages lose them. Subscriptions outside
// the actor's reach are untouched, and naming one is answered as naming one
// that does not exist. All or nothing. With ifMatch, the change is made only
// if the access, as the actor sees it, still has one of those versions
// (usher.EPRECONDITION otherwise).
func (s *Service) SetAccess(ctx context.Context, a usher.Actor, userID int64, want []AccessChange, ifMatch ...string) (UserAccess, error) {
	if !CanAny(a, ManageSeats) {
		return UserAccess{}, forbidden("change access")
	}
	var out UserAccess
	err := s.store.Write(ctx, func(tx Tx) error {
		// Lock what may change before reading it, in the one global order:
		// the user, then the subscriptions the user holds or waits for and
		// those the request names.
		if err := tx.LockUser(ctx, a.AccountID, userID); err != nil {
			return err
		}
		named := make([]int64, len(want))
		for i, c := range want {
			named[i] = c.SubscriptionID
		}
		if _, err := lockSeatsOf(ctx, tx, a, userID, named...); err != nil {
			return err
		}
		u, held, benefits, err := s.holdings(ctx, tx, a.AccountID, userID)
		if err != nil {
			return err
		}
		subs, err := tx.ListSubscriptions(ctx, a.AccountID, SubscriptionFilter{Limit: MaxSubscriptionsPerAccount})
		if err != nil {
			return err
		}
		g, err := groupings(ctx, tx, a.AccountID, userID)
		if err != nil {
			return err
		}
		if err := checkVersion(buildView(a, u, held, benefits, subs, g), ifMatch); err != nil {
			return err
		}
		var touched []seatKey
		byID := make(map[int64]usher.Subscription, len(subs))
		for _, sub := range subs {
			byID[sub.ID] = sub
		}
		// Validate everything first so the answer lists every problem.
		var p refProblems
		wanted := map[int64]AccessChange{}
		for i, c := range want {
			f := fmt.Sprintf("subscriptions[%d]", i)
			sub, ok := byID[c.SubscriptionID]
			switch {
			case !ok || !Can(a, ViewSubscription, sub.ID):
				p.missing(f+".subscription_id", "subscription %d not found", c.SubscriptionID)
				continue
			case !Can(a, ManageSeats, sub.ID):
				return usher.Errorf(usher.EFORBIDDEN, "%s: you may not change seats of contract %s", f, sub.ContractNumber)
			case wanted[sub.ID].SubscriptionID != 0:
				p.Addf(f+".subscription_id", "subscription %d is listed twice", sub.ID)
				continue
			}
			validateServices(&p.Problems, f, sub, c.Assigned, c.Services)
			validateBenefits(&p.Problems, f, sub, c.Benefits)
			wanted[sub.ID] = c
		}
		if err := p.Err(); err != nil {
			return err
		}
		for _, sub := range subs {
			if !Can(a, ManageSeats, sub.ID) {
				continue
			}
			c := wanted[sub.ID] // zero value: no seat, no benefits
			as, has := held[sub.ID]
			switch {
			case c.Assigned && !has:
				if u.Status != usher.UserActive {
					return usher.Errorf(usher.ECONFLICT, "user %s is disabled and cannot be assigned a seat", u.Email)
				}
				if err := s.assignSeat(ctx, tx, a, u, sub, c.Services); err != nil {
					return err
				}
			case !c.Assigned && has:
				// A seat held through groups is taken by excluding the user
				// from those groups' assignments (see takeSeat).
				if err := s.takeSeat(ctx, tx, a, u, as); err != nil {
					return err
				}
				touched = append(touched, seatKey{u.ID, sub.ID})
				continue
			case has && !sameSet(as.Services, c.Services):
				if err := tx.SetAssignmentServices(ctx, a.AccountID, u.ID, sub.ID, c.Services); err != nil {
					return err
				}
				if err := s.audit(ctx, tx, a, "services.set", u, sub.ID, as.Services, orEmpty(c.Services)); err != nil {
					return err
				}
			}
			if !sameSet(benefits[sub.ID], c.Benefits) {
				if err := s.setBenefits(ctx, tx, a, u, sub.ID, benefits[sub.ID], c.Benefits); err != nil {
					return err
				}
			}
			if c.Assigned && !has {
				touched = append(touched, seatKey{u.ID, sub.ID})
			}
		}
		if _, err := s.settle(ctx, tx, a, touched); err != nil {
			return err
		}
		// Benefits asked for a seat that was taken stay as asked.
		for _, k := range touched {
			c := wanted[k.sub]
			if c.Assigned {
				continue
			}
			all, err := tx.BenefitsOfUser(ctx, a.AccountID, u.ID)
			if err != nil {
				return err
			}
			if !sameSet(all[k.sub], c.Benefits) {
				if err := s.setBenefits(ctx, tx, a, u, k.sub, all[k.sub], c.Benefits); err != nil {
					return err
				}
			}
		}
		out, err = s.view(ctx, tx, a, userID)
		return err
	})
	if err != nil {
		return UserAccess{}, fmt.Errorf("set access of user %d: %w", userID, err)
	}
	return out, nil
}

// refProblems collects validation problems, noting whether any of them is
// a reference to something that does not exist or that the actor may not
// see: then the answer is "not found" (404), so that what the actor may not
// see looks exactly like what does not exist.
type refProblems struct {
	usher.Problems
	notFound bool
}

func (p *refProblems) missing(field, format string, args ...any) {
	p.Addf(field, format, args...)
	p.notFound = true
}

func (p refProblems) Err() error {
	if len(p.Problems) == 0 {
		return nil
	}
	if p.notFound {
		return &usher.Error{Code: usher.ENOTFOUND, Message: "the request names something that does not exist", Fields: p.Problems}
	}
	return p.Problems.Err()
}

func validateServices(p *usher.Problems, field string, sub usher.Subscription, assigned bool, services []string) {
	if len(services) > 0 && !assigned {
		p.Add(fieldPath(field, "services"), "services need the seat: set assigned to true or list no services")
	}
	seen := map[string]bool{}
	for j, code := range services {
		switch {
		case !sub.Product.HasService(code):
			p.Addf(fmt.Sprintf("%s[%d]", fieldPath(field, "services"), j), "%q is not a service of %s", code, sub.Product.Name)
		case seen[code]:
			p.Addf(fmt.Sprintf("%s[%d]", fieldPath(field, "services"), j), "%q is listed twice", code)
		}
		seen[code] = true
	}
}

func validateBenefits(p *usher.Problems, field string, sub usher.Subscription, codes []string) {
	seen := map[string]bool{}
	for j, code := range codes {
		switch {
		case !sub.HasBenefit(code):
			p.Addf(fmt.Sprintf("%s[%d]", fieldPath(field, "benefits"), j), "%q is not a benefit of contract %s", code, sub.ContractNumber)
		case seen[code]:
			p.Addf(fmt.Sprintf("%s[%d]", fieldPath(field, "benefits"), j), "%q is listed twice", code)
		}
		seen[code] = true
	}
}

// fieldPath names a field inside prefix ("subscriptions[0]"), or at the top
// of the body when prefix is "".
func fieldPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// assignSeat takes one seat of sub for u, failing with usher.ENOSEATS when none is left.
func (s *Service) assignSeat(ctx context.Context, tx Tx, a usher.Actor, u usher.User, sub usher.Subscription, services []string) error {
	if err := tx.ReserveSeat(ctx, a.AccountID, sub.ID); err != nil {
		return err
	}
	as := usher.Assignment{AccountID: a.AccountID, UserID: u.ID, SubscriptionID: sub.ID, Services: orEmpty(services), AssignedAt: s.Now(), Direct: true, Groups: []int64{}}
	if err := tx.InsertAssignment(ctx, as); err != nil {
		return err
	}
	return s.audit(ctx, tx, a, "seat.assign", u, sub.ID, nil, as)
}

func (s *Service) setBenefits(ctx context.Context, tx Tx, a usher.Actor, u usher.User, subID int64, before, after []string) error {
	if err := tx.SetBenefits(ctx, a.AccountID, u.ID, subID, orEmpty(after)); err != nil {
		return err
	}
	return s.audit(ctx, tx, a, "benefits.set", u, subID, orEmpty(before), orEmpty(after))
}

// Assign gives u a seat of sub with services, keeping their other access.
func (s *Service) Assign(ctx context.Context, a usher.Actor, userID, subscriptionID int64, services []string) error {
	_, err := s.AddSeat(ctx, a, userID, SeatChange{SubscriptionID: subscriptionID, Services: services})
	return err
}

// SeatChange is one seat to give a user: the subscription, the services of
// its product and the benefits of the contract that come with it.
type SeatChange struct {
	SubscriptionID int64    `json:"subscription_id"`
	Services       []string `json:"services"`
	Benefits       []string `json:"benefits"`
}

// AddSeat gives the user one seat of a subscription with the listed
// services, and adds the listed benefits of that contract to those the user
// has, leaving everything else as it is. A user who holds a seat of the
// subscription already is a conflict: the services of a held seat change
// with SetAccess. With ifMatch, as SetAccess. It returns the user's access
// after the change.
func (s *Service) AddSeat(ctx context.Context, a usher.Actor, userID int64, in SeatChange, ifMatch ...string) (UserAccess, error) {
	var out UserAccess
	if in.SubscriptionID <= 0 {
		return out, (&usher.Problems{{Field: "subscription_id", Reason: "is required: the id of a subscription"}}).Err()
	}
	if !CanAny(a, ManageSeats) {
		return out, forbidden("assign seats")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		// The user before the subscription, the global lock order: no other
		// change adds a seat to the user between the read and the add.
		if err := tx.LockUser(ctx, a.AccountID, userID); err != nil {
			return err
		}
		if err := tx.LockSubscriptions(ctx, a.AccountID, []int64{in.SubscriptionID}); err != nil {
			return err
		}
		u, sub, now, err := s.seatTarget(ctx, tx, a, userID, in.SubscriptionID, "subscription_id", ifMatch)
		if err != nil {
			return err
		}
		var p usher.Problems
		validateServices(&p, "", sub, true, in.Services)
		validateBenefits(&p, "", sub, in.Benefits)
		if err := p.Err(); err != nil {
			return err
		}
		var held *SubscriptionAccess
		for i := range now.Subscriptions {
			if now.Subscriptions[i].Subscription.ID == sub.ID {
				held = &now.Subscriptions[i]
			}
		}
		direct := func(x usher.SeatSource) bool { return x.Direct }
		if held != nil && held.Assigned && slices.ContainsFunc(held.Sources, direct) {
			return usher.Errorf(usher.ECONFLICT, "%s holds a seat of contract %s already; change its services and benefits with PUT /api/v1/users/%d/access", u.Email, sub.ContractNumber, u.ID)
		}
		// A seat held through groups becomes direct too; else a new seat.
		if err := s.assignDirect(ctx, tx, a, u, sub, in.Services); err != nil {
			return err
		}
		var before []string
		if held != nil {
			before = held.Benefits
		}
		after := slices.Clone(before)
		for _, b := range in.Benefits {
			if !slices.Contains(after, b) {
				after = append(after, b)
			}
		}
		if len(after) != len(before) {
			if err := s.setBenefits(ctx, tx, a, u, sub.ID, before, after); err != nil {
				return err
			}
		}
		out, err = s.view(ctx, tx, a, userID)
		return err
	})
	if err != nil {
		return UserAccess{}, fmt.Errorf("assign user %d a seat of subscription %d: %w", userID, in.SubscriptionID, err)
	}
	return out, nil
}

// RemoveSeat takes the user's seat of one subscription, with its services
// and the user's benefits of that contract, leaving everything else as it
// is. A user without a seat there is "not found". With ifMatch, as
// SetAccess. It returns the user's access after the change.
func (s *Service) RemoveSeat(ctx context.Context, a usher.Actor, userID, subscriptionID int64, ifMatch ...string) (UserAccess, error) {
	var out UserAccess
	if !CanAny(a, ManageSeats) {
		return out, forbidden("unassign seats")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		// The seat is locked in the global order (subscription, then seat)
		// before it is read, so what is read is what is removed.
		if err := tx.LockSeats(ctx, a.AccountID, []int64{subscriptionID}, []int64{userID}); err != nil {
			return err
		}
		u, sub, now, err := s.seatTarget(ctx, tx, a, userID, subscriptionID, "", ifMatch)
		if err != nil {
			return err
		}
		var held SubscriptionAccess
		for _, e := range now.Subscriptions {
			if e.Subscription.ID == sub.ID {
				held = e
			}
		}
		if !held.Assigned {
			return usher.Errorf(usher.ENOTFOUND, "%s holds no seat of contract %s", u.Email, sub.ContractNumber)
		}
		seats, err := tx.AssignmentsOfUser(ctx, a.AccountID, u.ID)
		if err != nil {
			return err
		}
		for _, as := range seats {
			if as.SubscriptionID == sub.ID {
				// Every source goes: group ones by exclusion (see takeSeat).
				if err := s.takeSeat(ctx, tx, a, u, as); err != nil {
					return err
				}
			}
		}
		if _, err := s.settle(ctx, tx, a, []seatKey{{u.ID, sub.ID}}); err != nil {
			return err
		}
		all, err := tx.BenefitsOfUser(ctx, a.AccountID, u.ID)
		if err != nil {
			return err
		}
		if len(all[sub.ID]) > 0 {
			if err := s.setBenefits(ctx, tx, a, u, sub.ID, all[sub.ID], nil); err != nil {
				return err
			}
		}
		out, err = s.view(ctx, tx, a, userID)
		return err
	})
	if err != nil {
		return UserAccess{}, fmt.Errorf("unassign user %d from subscription %d: %w", userID, subscriptionID, err)
	}
	return out, nil
}

// seatTarget loads the user and the subscription of a one-seat change with
// the user's access as the actor sees it, checking ifMatch against it. A
// subscription the actor may not see is "not found", as one that does not
// exist; field names it when it came in the body.
func (s *Service) seatTarget(ctx context.Context, tx Tx, a usher.Actor, userID, subID int64, field string, ifMatch []string) (usher.User, usher.Subscription, UserAccess, error) {
	now, err := s.view(ctx, tx, a, userID)
	if err != nil {
		return usher.User{}, usher.Subscription{}, now, err
	}
	notFound := usher.Errorf(usher.ENOTFOUND, "subscription %d not found", subID)
	if field != "" {
		notFound.Fields = []usher.FieldError{{Field: field, Reason: notFound.Message}}
	}
	if !Can(a, ViewSubscription, subID) {
		return usher.User{}, usher.Subscription{}, now, notFound
	}
	sub, err := tx.SubscriptionByID(ctx, a.AccountID, subID)
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		return usher.User{}, usher.Subscription{}, now, notFound
	} else if err != nil {
		return usher.User{}, usher.Subscription{}, now, err
	}
	if !Can(a, ManageSeats, sub.ID) {
		return usher.User{}, usher.Subscription{}, now, usher.Errorf(usher.EFORBIDDEN, "you may not change seats of contract %s", sub.ContractNumber)
	}
	if err := checkVersion(now, ifMatch); err != nil {
		return usher.User{}, usher.Subscription{}, now, err
	}
	return now.User, sub, now, nil
}

// assignDirect gives u a direct seat of sub: a new seat, or the seat they
// hold through groups, which then also counts as direct and gains services.
func (s *Service) assignDirect(ctx context.Context, tx Tx, a usher.Actor, u usher.User, sub usher.Subscription, services []string) error {
	if u.Status != usher.UserActive {
		return usher.Errorf(usher.ECONFLICT, "user %s is disabled and cannot be assigned a seat", u.Email)
	}
	seats, err := tx.AssignmentsOfUser(ctx, a.AccountID, u.ID)
	if err != nil {
		return err
	}
	for _, as := range seats {
		if as.SubscriptionID != sub.ID {
			continue
		}
		if as.Direct {
			return usher.Errorf(usher.ECONFLICT, "%s holds a seat of contract %s already", u.Email, sub.ContractNumber)
		}
		if err := tx.SetSeatSources(ctx, a.AccountID, u.ID, sub.ID, true, as.Groups); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "seat.sources", u, sub.ID, sourcesView{false, orNone(as.Groups)}, sourcesView{true, orNone(as.Groups)}); err != nil {
			return err
		}
		if more := union(as.Services, services); !sameSet(more, as.Services) {
			if err := tx.SetAssignmentServices(ctx, a.AccountID, u.ID, sub.ID, more); err != nil {
				return err
			}
			return s.audit(ctx, tx, a, "services.set", u, sub.ID, orEmpty(as.Services), more)
		}
		return nil
	}
	if err := s.assignSeat(ctx, tx, a, u, sub, services); err != nil {
		return err
	}
	_, err = s.settle(ctx, tx, a, []seatKey{{u.ID, sub.ID}})
	return err
}

// UnassignItem names what to take from one user on one subscription. With
// neither Services nor Benefits it takes the seat with its services and
// benefits; otherwise only the listed services and benefits.
type UnassignItem struct {
	UserID         int64    `json:"user_id"`
	SubscriptionID int64    `json:"subscription_id"`
	Services       []string `json:"services,omitempty"`
	Benefits       []string `json:"benefits,omitempty"`
	// UnusedSince, when set, is when the seat was reported inactive (an
	// email's or run's snapshot): a seat used at or after it, or assigned
	// again after it, is refused, so nobody who took up the product after the report is
	// unassigned on its word.
	UnusedSince *time.Time `json:"unused_since,omitempty"`
}

// UnassignResult counts what Unassign removed.
type UnassignResult struct {
	Seats    int `json:"seats"`
	Services int `json:"services"`
	Benefits int `json:"benefits"`
	Users    int `json:"users"`
	// BatchID names the reclaim batch that records what was removed, for
	// POST /api/v1/reclaims/{id}/undo.
	BatchID int64 `json:"batch_id"`
}

// MaxUnassignItems bounds one bulk unassign.
const MaxUnassignItems = 10_000

// Unassign removes seats, services or benefits from many users at once. It
// is all or nothing: one bad item and nothing changes; the error names it,
// usher.ECONFLICT for one naming what the user does not hold (any more:
// another change may have taken it).
func (s *Service) Unassign(ctx context.Context, a usher.Actor, items []UnassignItem) (UnassignResult, error) {
	var res UnassignResult
	var p refProblems
	if len(items) == 0 {
		p.Add("items", "must list at least one item")
	} else if len(items) > MaxUnassignItems {
		p.Addf("items", "may list at most %d items", MaxUnassignItems)
	}
	if err := p.Err(); err != nil {
		return res, err
	}
	if !CanAny(a, ManageSeats) {
		return res, forbidden("unassign")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		res, p = UnassignResult{}, refProblems{} // fresh if the store runs this again
		// Seats are locked before they are read, in the one global order,
		// so that what is checked below is what is changed: a seat another
		// request has just released is seen as gone, not deleted twice.
		subIDs, userIDs := make([]int64, len(items)), make([]int64, len(items))
		for i, it := range items {
			subIDs[i], userIDs[i] = it.SubscriptionID, it.UserID
		}
		if err := tx.LockSeats(ctx, a.AccountID, subIDs, userIDs); err != nil {
			return err
		}
		// gone lists what the users no longer hold: a conflict with the
		// current state rather than a wrong request.
		var gone usher.Problems
		var freedSubs []seatKey
		type key struct{ u, s int64 }
		seen := map[key]bool{}
		users := map[int64]bool{}
		subs := map[int64]usher.Subscription{}
		type work struct {
			item     UnassignItem
			user     usher.User
			sub      usher.Subscription
			as       usher.Assignment
			has      bool
			benefits []string
		}
		todo := make([]work, 0, len(items))
		for i, it := range items {
			f := fmt.Sprintf("items[%d]", i)
			if seen[key{it.UserID, it.SubscriptionID}] {
				p.Addf(f, "user %d and subscription %d are listed twice", it.UserID, it.SubscriptionID)
				continue
			}
			seen[key{it.UserID, it.SubscriptionID}] = true
			sub, ok := subs[it.SubscriptionID]
			if !ok && Can(a, ViewSubscription, it.SubscriptionID) {
				var err error
				sub, err = tx.SubscriptionByID(ctx, a.AccountID, it.SubscriptionID)
				if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
					return err
				}
				ok = err == nil
				if ok {
					subs[sub.ID] = sub
				}
			}
			if !ok {
				// One the actor may not see is answered as one that does not exist.
				p.missing(f+".subscription_id", "subscription %d not found", it.SubscriptionID)
				continue
			}
			if !Can(a, ManageSeats, sub.ID) {
				return usher.Errorf(usher.EFORBIDDEN, "%s: you may not change seats of contract %s", f, sub.ContractNumber)
			}
			u, held, benefits, err := s.holdings(ctx, tx, a.AccountID, it.UserID)
			if usher.ErrorCode(err) == usher.ENOTFOUND {
				p.missing(f+".user_id", "user %d not found", it.UserID)
				continue
			} else if err != nil {
				return err
			}
			as, has := held[sub.ID]
			w := work{item: it, user: u, sub: sub, as: as, has: has, benefits: benefits[sub.ID]}
			whole := len(it.Services) == 0 && len(it.Benefits) == 0
			if whole && !has {
				gone.Addf(f, "%s holds no seat of contract %s", u.Email, sub.ContractNumber)
			}
			if since := it.UnusedSince; has && since != nil {
				switch {
				case as.AssignedAt.After(*since):
					gone.Addf(f, "%s was given the seat of contract %s again since it was reported inactive; the seat stays", u.Email, sub.ContractNumber)
				case !as.LastUsedAt.Before(*since):
					gone.Addf(f, "%s has used %s since the seat was reported inactive; the seat stays", u.Email, sub.Product.Name)
				}
			}
			for j, code := range it.Services {
				if !has || !slices.Contains(as.Services, code) {
					gone.Addf(fmt.Sprintf("%s.services[%d]", f, j), "%s does not have %q on contract %s", u.Email, code, sub.ContractNumber)
				}
			}
			for j, code := range it.Benefits {
				if !slices.Contains(w.benefits, code) {
					gone.Addf(fmt.Sprintf("%s.benefits[%d]", f, j), "%s does not have %q on contract %s", u.Email, code, sub.ContractNumber)
				}
			}
			todo = append(todo, w)
		}
		if err := p.Err(); err != nil {
			return err
		}
		batch := usher.ReclaimBatch{AccountID: a.AccountID, Source: usher.BatchUnassign, ActorID: a.UserID, ActorEmail: a.Email, CreatedAt: s.Now()}
		if len(gone) > 0 {
			return &usher.Error{Code: usher.ECONFLICT, Message: "nothing was unassigned: users no longer hold what items name", Fields: gone}
		}
		for _, w := range todo {
			it := w.item
			bi := usher.BatchItem{UserID: w.user.ID, Email: w.user.Email, SubscriptionID: w.sub.ID,
				Services: orEmpty(slices.Clone(it.Services)), Benefits: orEmpty(slices.Clone(it.Benefits))}
			if len(it.Services) == 0 && len(it.Benefits) == 0 {
				bi.Seat, bi.Services, bi.Benefits = true, orEmpty(slices.Clone(w.as.Services)), orEmpty(slices.Clone(w.benefits))
				bi.AssignedAt, bi.Price = w.as.AssignedAt, w.sub.Price
			}
			batch.Items = append(batch.Items, bi)
			if len(it.Services) == 0 && len(it.Benefits) == 0 {
				// Every source of the seat goes: the direct one, and each
				// group's by an exclusion (reversible, see takeSeat).
				if err := s.takeSeat(ctx, tx, a, w.user, w.as); err != nil {
					return err
				}
				freedSubs = append(freedSubs, seatKey{w.user.ID, w.sub.ID})
				res.Seats++
				res.Services += len(w.as.Services)
				res.Benefits += len(w.benefits)
			} else {
				if len(it.Services) > 0 {
					left := slices.DeleteFunc(slices.Clone(w.as.Services), func(c string) bool { return slices.Contains(it.Services, c) })
					if err := tx.SetAssignmentServices(ctx, a.AccountID, w.user.ID, w.sub.ID, left); err != nil {
						return err
					}
					if err := s.audit(ctx, tx, a, "services.set", w.user, w.sub.ID, w.as.Services, orEmpty(left)); err != nil {
						return err
					}
					res.Services += len(it.Services)
				}
				if len(it.Benefits) > 0 {
					left := slices.DeleteFunc(slices.Clone(w.benefits), func(c string) bool { return slices.Contains(it.Benefits, c) })
					if err := s.setBenefits(ctx, tx, a, w.user, w.sub.ID, w.benefits, left); err != nil {
						return err
					}
					res.Benefits += len(it.Benefits)
				}
			}
			users[w.user.ID] = true
		}
		if _, err := s.settle(ctx, tx, a, freedSubs); err != nil {
			return err
		}
		// A taken seat takes its benefits with it, whoever gave them.
		for _, k := range freedSubs {
			all, err := tx.BenefitsOfUser(ctx, a.AccountID, k.user)
			if err != nil {
				return err
			}
			if len(all[k.sub]) > 0 {
				u, err := tx.UserByID(ctx, a.AccountID, k.user)
				if err != nil {
					return err
				}
				if err := s.setBenefits(ctx, tx, a, u, k.sub, all[k.sub], nil); err != nil {
					return err
				}
			}
		}
		res.Users = len(users)
		if err := tx.InsertBatch(ctx, &batch); err != nil {
			return err
		}
		res.BatchID = batch.ID
		return nil
	})
	if err != nil {
		return UnassignResult{}, fmt.Errorf("unassign: %w", err)
	}
	return res, nil
}

// AuditLog lists audit entries the actor may read, newest first. userID
// (0: everyone) must name a user of the account, or one the log mentions
// (deleted users keep their history); action ("" : all) one of
// usher.AuditActions.
func (s *Service) AuditLog(ctx context.Context, a usher.Actor, userID int64, action, cursor string, limit int) (Page[usher.AuditEntry], error) {
	var out Page[usher.AuditEntry]
	if !Can(a, ViewAudit, 0) {
		return out, forbidden("read the audit log")
	}
	var p usher.Problems
	limit = checkLimit(&p, limit)
	if action != "" && !usher.ValidAuditAction(action) {
		p.Addf("action", "must be one of %s", strings.Join(usher.AuditActions, ", "))
	}
	var before int64
	if err := s.cursors.Decode(ctx, &p, CursorAuditLog, a.AccountID, cursor, &before); err != nil {
		return out, fmt.Errorf("audit log: %w", err)
	}
	if err := p.Err(); err != nil {
		return out, err
	}
	err := s.store.Read(ctx, func(tx Tx) error {
		if userID != 0 {
			if err := auditUserExists(ctx, tx, a.AccountID, userID); err != nil {
				return err
			}
		}
		es, err := tx.ListAudit(ctx, a.AccountID, AuditFilter{UserID: userID, Action: action, BeforeID: before, Limit: limit + 1})
		if err != nil {
			return err
		}
		if len(es) > limit {
			es = es[:limit]
			if out.NextCursor, err = s.cursors.Encode(ctx, CursorAuditLog, a.AccountID, es[limit-1].ID); err != nil {
				return err
			}
		}
		out.Items = es
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("audit log: %w", err)
	}
	if out.Items == nil {
		out.Items = []usher.AuditEntry{}
	}
	return out, nil
}

// auditUserExists answers "not found", naming user_id, for an id that is
// neither a user of the account nor anyone its audit log mentions.
func auditUserExists(ctx context.Context, tx Tx, accountID, userID int64) error {
	_, err := tx.UserByID(ctx, accountID, userID)
	if usher.ErrorCode(err) != usher.ENOTFOUND {
		return err
	}
	es, err := tx.ListAudit(ctx, accountID, AuditFilter{UserID: userID, Limit: 1})
	if err != nil || len(es) > 0 {
		return err
	}
	msg := fmt.Sprintf("user %d not found", userID)
	return &usher.Error{Code: usher.ENOTFOUND, Message: msg, Fields: []usher.FieldError{{Field: "user_id", Reason: msg}}}
}
