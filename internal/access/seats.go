package access

import (
	"context"
	"fmt"
	"slices"
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
	// Editable says whether the actor may change this entry.
	Editable bool `json:"editable"`
}

// UserAccess is a user's products, services and benefits, one entry per
// subscription the actor may see.
type UserAccess struct {
	User          usher.User           `json:"user"`
	Subscriptions []SubscriptionAccess `json:"subscriptions"`
}

// Access returns the user's access. Admins see every subscription; contract
// managers and software coordinators see theirs; a user sees their own seats
// and benefits.
func (s *Service) Access(ctx context.Context, a usher.Actor, userID int64) (UserAccess, error) {
	self := userID == a.UserID && a.Scope != usher.ScopeIngest // an ingest token only sends usage
	if !self && !CanAny(a, ManageSeats) {
		return UserAccess{}, usher.Errorf(usher.ENOTFOUND, "user %d not found", userID)
	}
	var out UserAccess
	err := s.store.Read(ctx, func(tx Tx) error {
		u, held, benefits, err := s.holdings(ctx, tx, a.AccountID, userID)
		if err != nil {
			return err
		}
		out.User = u
		subs, err := tx.ListSubscriptions(ctx, a.AccountID, SubscriptionFilter{Limit: MaxSubscriptionsPerAccount})
		if err != nil {
			return err
		}
		for _, sub := range subs {
			as, assigned := held[sub.ID]
			visible := Can(a, ManageSeats, sub.ID) || (self && (assigned || len(benefits[sub.ID]) > 0))
			if !visible {
				continue
			}
			e := SubscriptionAccess{Subscription: sub, Assigned: assigned, Services: []string{}, Benefits: benefits[sub.ID], Editable: Can(a, ManageSeats, sub.ID)}
			if assigned {
				at := as.AssignedAt
				e.AssignedAt = &at
				e.Services = as.Services
			}
			if e.Benefits == nil {
				e.Benefits = []string{}
			}
			out.Subscriptions = append(out.Subscriptions, e)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("get access of user %d: %w", userID, err)
	}
	if out.Subscriptions == nil {
		out.Subscriptions = []SubscriptionAccess{}
	}
	return out, nil
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
// the actor's reach are untouched, and naming one is refused. All or nothing.
func (s *Service) SetAccess(ctx context.Context, a usher.Actor, userID int64, want []AccessChange) (UserAccess, error) {
	if !CanAny(a, ManageSeats) {
		return UserAccess{}, forbidden("change access")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		u, held, benefits, err := s.holdings(ctx, tx, a.AccountID, userID)
		if err != nil {
			return err
		}
		subs, err := tx.ListSubscriptions(ctx, a.AccountID, SubscriptionFilter{Limit: MaxSubscriptionsPerAccount})
		if err != nil {
			return err
		}
		byID := make(map[int64]usher.Subscription, len(subs))
		for _, sub := range subs {
			byID[sub.ID] = sub
		}
		// Validate everything first so the answer lists every problem.
		var p usher.Problems
		wanted := map[int64]AccessChange{}
		for i, c := range want {
			f := fmt.Sprintf("subscriptions[%d]", i)
			sub, ok := byID[c.SubscriptionID]
			switch {
			case !ok:
				p.Addf(f+".subscription_id", "subscription %d not found", c.SubscriptionID)
				continue
			case !Can(a, ManageSeats, sub.ID):
				return usher.Errorf(usher.EFORBIDDEN, "you may not change seats of contract %s", sub.ContractNumber)
			case wanted[sub.ID].SubscriptionID != 0:
				p.Addf(f+".subscription_id", "subscription %d is listed twice", sub.ID)
				continue
			}
			validateServices(&p, f, sub, c.Assigned, c.Services)
			validateBenefits(&p, f, sub, c.Benefits)
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
				if err := s.unassignSeat(ctx, tx, a, u, sub, as); err != nil {
					return err
				}
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
		}
		return nil
	})
	if err != nil {
		return UserAccess{}, fmt.Errorf("set access of user %d: %w", userID, err)
	}
	return s.Access(ctx, a, userID)
}

func validateServices(p *usher.Problems, field string, sub usher.Subscription, assigned bool, services []string) {
	if len(services) > 0 && !assigned {
		p.Add(field+".services", "services need the seat: set assigned to true or list no services")
	}
	seen := map[string]bool{}
	for j, code := range services {
		switch {
		case !sub.Product.HasService(code):
			p.Addf(fmt.Sprintf("%s.services[%d]", field, j), "%q is not a service of %s", code, sub.Product.Name)
		case seen[code]:
			p.Addf(fmt.Sprintf("%s.services[%d]", field, j), "%q is listed twice", code)
		}
		seen[code] = true
	}
}

func validateBenefits(p *usher.Problems, field string, sub usher.Subscription, codes []string) {
	seen := map[string]bool{}
	for j, code := range codes {
		switch {
		case !sub.HasBenefit(code):
			p.Addf(fmt.Sprintf("%s.benefits[%d]", field, j), "%q is not a benefit of contract %s", code, sub.ContractNumber)
		case seen[code]:
			p.Addf(fmt.Sprintf("%s.benefits[%d]", field, j), "%q is listed twice", code)
		}
		seen[code] = true
	}
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
	as := usher.Assignment{AccountID: a.AccountID, UserID: u.ID, SubscriptionID: sub.ID, Services: orEmpty(services), AssignedAt: s.Now()}
	if err := tx.InsertAssignment(ctx, as); err != nil {
		return err
	}
	return s.audit(ctx, tx, a, "seat.assign", u, sub.ID, nil, as)
}

func (s *Service) unassignSeat(ctx context.Context, tx Tx, a usher.Actor, u usher.User, sub usher.Subscription, as usher.Assignment) error {
	if err := tx.DeleteAssignment(ctx, a.AccountID, u.ID, sub.ID); err != nil {
		return err
	}
	if err := tx.ReleaseSeat(ctx, a.AccountID, sub.ID); err != nil {
		return err
	}
	return s.audit(ctx, tx, a, "seat.unassign", u, sub.ID, as, nil)
}

func (s *Service) setBenefits(ctx context.Context, tx Tx, a usher.Actor, u usher.User, subID int64, before, after []string) error {
	if err := tx.SetBenefits(ctx, a.AccountID, u.ID, subID, orEmpty(after)); err != nil {
		return err
	}
	return s.audit(ctx, tx, a, "benefits.set", u, subID, orEmpty(before), orEmpty(after))
}

// Assign gives u a seat of sub with services, keeping their other access.
func (s *Service) Assign(ctx context.Context, a usher.Actor, userID, subscriptionID int64, services []string) error {
	if !Can(a, ManageSeats, subscriptionID) {
		return forbidden("assign seats of this subscription")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		u, err := tx.UserByID(ctx, a.AccountID, userID)
		if err != nil {
			return err
		}
		sub, err := tx.SubscriptionByID(ctx, a.AccountID, subscriptionID)
		if err != nil {
			return err
		}
		var p usher.Problems
		validateServices(&p, "subscription", sub, true, services)
		if err := p.Err(); err != nil {
			return err
		}
		if u.Status != usher.UserActive {
			return usher.Errorf(usher.ECONFLICT, "user %s is disabled and cannot be assigned a seat", u.Email)
		}
		return s.assignSeat(ctx, tx, a, u, sub, services)
	})
	if err != nil {
		return fmt.Errorf("assign user %d to subscription %d: %w", userID, subscriptionID, err)
	}
	return nil
}

// UnassignItem names what to take from one user on one subscription. With
// neither Services nor Benefits it takes the seat with its services and
// benefits; otherwise only the listed services and benefits.
type UnassignItem struct {
	UserID         int64    `json:"user_id"`
	SubscriptionID int64    `json:"subscription_id"`
	Services       []string `json:"services,omitempty"`
	Benefits       []string `json:"benefits,omitempty"`
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
// is all or nothing: one bad item and nothing changes; the error names it.
func (s *Service) Unassign(ctx context.Context, a usher.Actor, items []UnassignItem) (UnassignResult, error) {
	var res UnassignResult
	var p usher.Problems
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
		res = UnassignResult{}
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
			if !ok {
				var err error
				sub, err = tx.SubscriptionByID(ctx, a.AccountID, it.SubscriptionID)
				if usher.ErrorCode(err) == usher.ENOTFOUND {
					p.Addf(f+".subscription_id", "subscription %d not found", it.SubscriptionID)
					continue
				} else if err != nil {
					return err
				}
				subs[sub.ID] = sub
			}
			if !Can(a, ManageSeats, sub.ID) {
				return usher.Errorf(usher.EFORBIDDEN, "%s: you may not change seats of contract %s", f, sub.ContractNumber)
			}
			u, held, benefits, err := s.holdings(ctx, tx, a.AccountID, it.UserID)
			if usher.ErrorCode(err) == usher.ENOTFOUND {
				p.Addf(f+".user_id", "user %d not found", it.UserID)
				continue
			} else if err != nil {
				return err
			}
			as, has := held[sub.ID]
			w := work{item: it, user: u, sub: sub, as: as, has: has, benefits: benefits[sub.ID]}
			whole := len(it.Services) == 0 && len(it.Benefits) == 0
			if whole && !has {
				p.Addf(f, "%s holds no seat of contract %s", u.Email, sub.ContractNumber)
			}
			for j, code := range it.Services {
				if !has || !slices.Contains(as.Services, code) {
					p.Addf(fmt.Sprintf("%s.services[%d]", f, j), "%s does not have %q on contract %s", u.Email, code, sub.ContractNumber)
				}
			}
			for j, code := range it.Benefits {
				if !slices.Contains(w.benefits, code) {
					p.Addf(fmt.Sprintf("%s.benefits[%d]", f, j), "%s does not have %q on contract %s", u.Email, code, sub.ContractNumber)
				}
			}
			todo = append(todo, w)
		}
		if err := p.Err(); err != nil {
			return err
		}
		batch := usher.ReclaimBatch{AccountID: a.AccountID, Source: usher.BatchUnassign, ActorID: a.UserID, ActorEmail: a.Email, CreatedAt: s.Now()}
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
				if err := s.unassignSeat(ctx, tx, a, w.user, w.sub, w.as); err != nil {
					return err
				}
				res.Seats++
				res.Services += len(w.as.Services)
				if len(w.benefits) > 0 {
					if err := s.setBenefits(ctx, tx, a, w.user, w.sub.ID, w.benefits, nil); err != nil {
						return err
					}
					res.Benefits += len(w.benefits)
				}
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

// AuditLog lists audit entries the actor may read, newest first.
func (s *Service) AuditLog(ctx context.Context, a usher.Actor, userID int64, action, cursor string, limit int) (Page[usher.AuditEntry], error) {
	var out Page[usher.AuditEntry]
	var p usher.Problems
	limit = checkLimit(&p, limit)
	var before int64
	DecodeCursor(&p, cursor, &before)
	if err := p.Err(); err != nil {
		return out, err
	}
	if !Can(a, ViewAudit, 0) {
		return out, forbidden("read the audit log")
	}
	err := s.store.Read(ctx, func(tx Tx) error {
		es, err := tx.ListAudit(ctx, a.AccountID, AuditFilter{UserID: userID, Action: action, BeforeID: before, Limit: limit + 1})
		if err != nil {
			return err
		}
		if len(es) > limit {
			es = es[:limit]
			out.NextCursor = EncodeCursor(es[limit-1].ID)
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
