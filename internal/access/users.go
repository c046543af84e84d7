package access

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// UserWithRoles is a user as lists and details show them.
type UserWithRoles struct {
	usher.User
	Roles []usher.RoleGrant `json:"roles"`
}

type userCursor struct {
	Name    string `json:"n,omitempty"`
	Key     string `json:"k,omitempty"`
	Created int64  `json:"c,omitempty"` // Unix milliseconds
	ID      int64  `json:"i"`
}

// UserQuery is what the users list shows: a search, filters and an order.
type UserQuery struct {
	Q       string           // part of a name or an email
	Product string           // a product code: users holding a seat of it
	Role    usher.Role       // users granted this role
	Status  usher.UserStatus // active or disabled
	// Sort is name, email, status or created, with a leading "-" for
	// descending; "" is name.
	Sort string
}

// UserList is a page of the users list with the number of users matching
// the whole query.
type UserList struct {
	Page[usher.User]
	Total int `json:"total"`
}

// UserSorts lists the values UserQuery.Sort takes (each also with "-").
var UserSorts = []UserSort{SortUsersByName, SortUsersByEmail, SortUsersByStatus, SortUsersByCreated}

// filter validates q into a store filter, recording what is wrong.
func (q UserQuery) filter(p *usher.Problems, a usher.Actor) UserFilter {
	f := UserFilter{Query: strings.TrimSpace(q.Q), Product: strings.TrimSpace(q.Product), Role: q.Role, Status: q.Status}
	usher.CheckText(p, "q", q.Q, 0, 200)
	usher.CheckText(p, "product", q.Product, 0, 64)
	if q.Role != "" && !q.Role.Valid() {
		p.Addf("role", "must be one of %s", joinRoles())
	}
	if q.Status != "" && !q.Status.Valid() {
		p.Add("status", `must be "active" or "disabled"`)
	}
	sort, desc := strings.CutPrefix(q.Sort, "-")
	f.Sort, f.Desc = UserSort(sort), desc
	if q.Sort == "" {
		f.Sort = SortUsersByName
	} else if !slices.Contains(UserSorts, f.Sort) {
		p.Add("sort", "must be one of name, email, status, created, each with - for descending")
	}
	// Seats of contracts the actor may not see are no business of theirs.
	f.SubscriptionIDs = VisibleSubscriptions(a, ViewSubscription)
	return f
}

func joinRoles() string {
	out := make([]string, len(usher.Roles))
	for i, r := range usher.Roles {
		out[i] = string(r)
	}
	return strings.Join(out, ", ")
}

// cursorKind is the kind of cursor of a sort: a position in one order
// means nothing in another. Name order keeps the original kind, so its
// cursors stay valid.
func (f UserFilter) cursorKind() string {
	if f.Sort == SortUsersByName && !f.Desc {
		return CursorUsers
	}
	kind := CursorUsers + ":" + string(f.Sort)
	if f.Desc {
		kind += ":desc"
	}
	return kind
}

// ListUsers returns a page of users ordered by name. q matches name or email.
func (s *Service) ListUsers(ctx context.Context, a usher.Actor, q, cursor string, limit int) (Page[usher.User], error) {
	list, err := s.FindUsers(ctx, a, UserQuery{Q: q}, cursor, limit)
	return list.Page, err
}

// FindUsers returns a page of the users q selects, in its order, with how
// many it selects in all.
func (s *Service) FindUsers(ctx context.Context, a usher.Actor, q UserQuery, cursor string, limit int) (UserList, error) {
	var out UserList
	if !CanAny(a, ViewUsers) {
		return out, forbidden("list users")
	}
	var p usher.Problems
	limit = checkLimit(&p, limit)
	f := q.filter(&p, a)
	var c userCursor
	if err := s.cursors.Decode(ctx, &p, f.cursorKind(), a.AccountID, cursor, &c); err != nil {
		return out, fmt.Errorf("list users: %w", err)
	}
	if err := p.Err(); err != nil {
		return out, err
	}
	f.AfterName, f.AfterKey, f.AfterID = c.Name, c.Key, c.ID
	if c.Created != 0 {
		f.AfterCreated = time.UnixMilli(c.Created).UTC()
	}
	f.Limit = limit + 1
	err := s.store.Read(ctx, func(tx Tx) error {
		users, err := tx.ListUsers(ctx, a.AccountID, f)
		if err != nil {
			return err
		}
		if len(users) > limit {
			users = users[:limit]
			if out.NextCursor, err = s.cursors.Encode(ctx, f.cursorKind(), a.AccountID, positionOf(f.Sort, users[limit-1])); err != nil {
				return err
			}
		}
		out.Items = users
		if cursor == "" && out.NextCursor == "" {
			out.Total = len(users) // the whole list is this page
			return nil
		}
		out.Total, err = tx.CountUsers(ctx, a.AccountID, f)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("list users: %w", err)
	}
	if out.Items == nil {
		out.Items = []usher.User{}
	}
	return out, nil
}

// EachUser calls fn with every user q selects, in its order, reading a
// page at a time in transactions of their own, so that memory stays flat
// and no transaction stays open while fn writes to a slow client. head is
// called once, before the first user, when q is valid and allowed.
func (s *Service) EachUser(ctx context.Context, a usher.Actor, q UserQuery, head func() error, fn func(usher.User) error) error {
	if !CanAny(a, ViewUsers) {
		return forbidden("list users")
	}
	var p usher.Problems
	f := q.filter(&p, a)
	if err := p.Err(); err != nil {
		return err
	}
	if err := head(); err != nil {
		return err
	}
	f.Limit = MaxLimit
	for {
		var page []usher.User
		err := s.store.Read(ctx, func(tx Tx) (err error) {
			page, err = tx.ListUsers(ctx, a.AccountID, f)
			return err
		})
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		for _, u := range page {
			if err := fn(u); err != nil {
				return err
			}
		}
		if len(page) < f.Limit {
			return nil
		}
		c := positionOf(f.Sort, page[len(page)-1])
		f.AfterName, f.AfterKey, f.AfterID = c.Name, c.Key, c.ID
		f.AfterCreated = time.UnixMilli(c.Created).UTC()
	}
}

// positionOf is the cursor of the row u in the order sort.
func positionOf(sort UserSort, u usher.User) userCursor {
	c := userCursor{ID: u.ID}
	switch sort {
	case SortUsersByEmail:
		c.Key = u.Email
	case SortUsersByStatus:
		c.Key, c.Name = string(u.Status), strings.ToLower(u.Name)
	case SortUsersByCreated:
		c.Created = u.CreatedAt.UnixMilli()
	default:
		c.Name = strings.ToLower(u.Name)
	}
	return c
}

// MaxBulkUsers bounds how many users one bulk change takes.
const MaxBulkUsers = 1000

// SetUsersStatus disables or enables several users at once, as UpdateUser
// does each: all of them or, when any one is refused, none.
func (s *Service) SetUsersStatus(ctx context.Context, a usher.Actor, ids []int64, status usher.UserStatus) (int, error) {
	var p usher.Problems
	switch {
	case len(ids) == 0:
		p.Add("users", "select at least one user")
	case len(ids) > MaxBulkUsers:
		p.Addf("users", "at most %d users at once", MaxBulkUsers)
	}
	if !status.Valid() {
		p.Add("status", `must be "active" or "disabled"`)
	}
	seen := map[int64]bool{}
	for i, id := range ids {
		if id <= 0 || seen[id] {
			p.Addf(fmt.Sprintf("users[%d]", i), "%d is not a user, or is listed twice", id)
		}
		seen[id] = true
	}
	if err := p.Err(); err != nil {
		return 0, err
	}
	if !Can(a, ManageUsers, 0) {
		return 0, forbidden("edit users")
	}
	changed := 0
	in := UserInput{Status: &status}
	err := s.store.Write(ctx, func(tx Tx) error {
		for _, id := range ids {
			before, after, err := s.updateUser(ctx, tx, a, id, in)
			if c := usher.ErrorCode(err); c != "" && c != usher.EINTERNAL {
				// Say whom it is about: the change names many people.
				who := before.Email
				if who == "" {
					who = fmt.Sprintf("user %d", id)
				}
				return usher.Errorf(c, "%s: %s", who, usher.ErrorMessage(err))
			} else if err != nil {
				return err
			}
			if before.Status != after.Status {
				changed++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("set the status of %d users: %w", len(ids), err)
	}
	return changed, nil
}

// User returns one user with their roles. Anyone may read themself.
func (s *Service) User(ctx context.Context, a usher.Actor, id int64) (UserWithRoles, error) {
	var out UserWithRoles
	if id != a.UserID && !CanAny(a, ViewUsers) {
		return out, usher.Errorf(usher.ENOTFOUND, "user %d not found", id)
	}
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		if out.User, err = tx.UserByID(ctx, a.AccountID, id); err != nil {
			return err
		}
		out.Roles, err = tx.RolesOf(ctx, a.AccountID, id)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("get user %d: %w", id, err)
	}
	return out, nil
}

// UserInput is the input of CreateUser and UpdateUser; nil fields are left
// unchanged on update.
type UserInput struct {
	Email  *string           `json:"email"`
	Name   *string           `json:"name"`
	Status *usher.UserStatus `json:"status"`
	// ReclaimExempt keeps reclaim policies away from the user's seats.
	ReclaimExempt *bool `json:"reclaim_exempt"`
}

func (in *UserInput) validate(p *usher.Problems, create bool) {
	if in.Email != nil || create {
		e := ""
		if in.Email != nil {
			e = usher.NormalizeEmail(*in.Email)
			in.Email = &e
		}
		if !usher.ValidEmail(e) {
			p.Add("email", "is not an email address such as ada@example.com")
		}
	}
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		in.Name = &n
		usher.CheckText(p, "name", n, 1, 200)
	}
	if in.Status != nil && !in.Status.Valid() {
		p.Add("status", `must be "active" or "disabled"`)
	}
}

// CreateUser adds a user to the actor's account.
func (s *Service) CreateUser(ctx context.Context, a usher.Actor, in UserInput) (usher.User, error) {
	var p usher.Problems
	in.validate(&p, true)
	if err := p.Err(); err != nil {
		return usher.User{}, err
	}
	if !Can(a, ManageUsers, 0) {
		return usher.User{}, forbidden("create users")
	}
	now := s.Now()
	u := usher.User{AccountID: a.AccountID, Email: *in.Email, Status: usher.UserActive, CreatedAt: now, UpdatedAt: now}
	u.Name = u.Email
	if in.Name != nil {
		u.Name = *in.Name
	}
	if in.Status != nil {
		u.Status = *in.Status
	}
	if in.ReclaimExempt != nil {
		u.ReclaimExempt = *in.ReclaimExempt
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		if err := tx.CreateUser(ctx, &u); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "user.create", u, 0, nil, u)
	})
	if err != nil {
		return usher.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// UpdateUser changes a user's email, name or status.
func (s *Service) UpdateUser(ctx context.Context, a usher.Actor, id int64, in UserInput) (usher.User, error) {
	var p usher.Problems
	in.validate(&p, false)
	if err := p.Err(); err != nil {
		return usher.User{}, err
	}
	if !Can(a, ManageUsers, 0) {
		return usher.User{}, forbidden("edit users")
	}
	var u usher.User
	err := s.store.Write(ctx, func(tx Tx) (err error) {
		_, u, err = s.updateUser(ctx, tx, a, id, in)
		return err
	})
	if err != nil {
		return usher.User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	return u, nil
}

// updateUser applies a validated change to one user in tx.
func (s *Service) updateUser(ctx context.Context, tx Tx, a usher.Actor, id int64, in UserInput) (before, u usher.User, err error) {
	before, err = tx.UserByID(ctx, a.AccountID, id)
	if err != nil {
		return before, u, err
	}
	if err := primaryAdminTargetGuard(ctx, tx, a, id, "edit"); err != nil {
		return before, u, err
	}
	u = before
	if in.Email != nil {
		u.Email = *in.Email
	}
	if in.Name != nil {
		u.Name = *in.Name
	}
	if in.Status != nil {
		u.Status = *in.Status
	}
	if in.ReclaimExempt != nil {
		u.ReclaimExempt = *in.ReclaimExempt
	}
	if u == before {
		return before, u, nil
	}
	if u.Status == usher.UserDisabled && before.Status == usher.UserActive {
		if err := lastPrimaryAdminGuard(ctx, tx, a.AccountID, id, "disable"); err != nil {
			return before, u, err
		}
	}
	u.UpdatedAt = s.Now()
	if err := tx.UpdateUser(ctx, u); err != nil {
		return before, u, err
	}
	if err := s.audit(ctx, tx, a, "user.update", u, 0, before, u); err != nil {
		return before, u, err
	}
	if u.Status == usher.UserDisabled && before.Status == usher.UserActive {
		if err := s.endCredentials(ctx, tx, a, u, "user disabled"); err != nil {
			return before, u, err
		}
	}
	if u.Status != before.Status {
		return before, u, s.settleStatus(ctx, tx, a, u)
	}
	return before, u, nil
}

// DeleteUser removes a user, freeing their seats.
func (s *Service) DeleteUser(ctx context.Context, a usher.Actor, id int64) error {
	if !Can(a, ManageUsers, 0) {
		return forbidden("delete users")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		u, err := tx.UserByID(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		if err := primaryAdminTargetGuard(ctx, tx, a, id, "delete"); err != nil {
			return err
		}
		if err := lastPrimaryAdminGuard(ctx, tx, a.AccountID, id, "delete"); err != nil {
			return err
		}
		if err := tx.LockUser(ctx, a.AccountID, id); err != nil {
			return err
		}
		groups, err := tx.GroupsOfUser(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		gids := make([]int64, len(groups))
		for i, g := range groups {
			gids[i] = g.ID
		}
		if err := tx.LockGroups(ctx, a.AccountID, gids); err != nil {
			return err
		}
		subs, err := lockSeatsOf(ctx, tx, a, id)
		if err != nil {
			return err
		}
		seats, err := tx.AssignmentsOfUser(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		for _, as := range seats {
			if err := tx.DeleteAssignment(ctx, a.AccountID, id, as.SubscriptionID); err != nil {
				return err
			}
			if err := tx.ReleaseSeat(ctx, a.AccountID, as.SubscriptionID); err != nil {
				return err
			}
		}
		// The rows would go with the user anyway; revoking first leaves
		// the revocations in the audit log.
		if err := s.endCredentials(ctx, tx, a, u, "user deleted"); err != nil {
			return err
		}
		if err := tx.DeleteUser(ctx, a.AccountID, id); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "user.delete", u, 0, map[string]any{"user": u, "seats": seats}, nil); err != nil {
			return err
		}
		// The freed seats go to their subscriptions' waiters.
		for _, sub := range subs {
			if err := s.seatWaiters(ctx, tx, a, sub); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	return nil
}

// settleStatus applies a change of the user's status to their seats: a
// disabled user holds no seat and waits for none (their seats go to the
// subscriptions' waiters); a re-enabled one gets again the seats their
// groups give, or waits for them. Direct seats do not come back.
func (s *Service) settleStatus(ctx context.Context, tx Tx, a usher.Actor, u usher.User) error {
	groups, err := tx.GroupSubscriptionsOfUser(ctx, a.AccountID, u.ID)
	if err != nil {
		return err
	}
	subs, err := lockSeatsOf(ctx, tx, a, u.ID, groups...)
	if err != nil {
		return err
	}
	_, err = s.settle(ctx, tx, a, keysFor(u.ID, subs))
	return err
}

// primaryAdminTargetGuard refuses to edit or delete a primary admin unless
// the actor may grant and revoke that role: disabling, re-addressing or
// deleting a primary admin would otherwise be a revoke by another route.
func primaryAdminTargetGuard(ctx context.Context, tx Tx, a usher.Actor, userID int64, verb string) error {
	if Can(a, GrantPrimaryAdmin, 0) {
		return nil
	}
	roles, err := tx.RolesOf(ctx, a.AccountID, userID)
	if err != nil {
		return err
	}
	for _, g := range roles {
		if g.Role == usher.RolePrimaryAdmin {
			return forbidden(verb + " a primary admin")
		}
	}
	return nil
}

// lastPrimaryAdminGuard refuses to remove, disable or delete the account's
// only active primary admin: a disabled one cannot sign in to act.
func lastPrimaryAdminGuard(ctx context.Context, tx Tx, accountID, userID int64, verb string) error {
	// Two admins removing each other at once must not both pass.
	if err := tx.LockRoleGrants(ctx, accountID, usher.RolePrimaryAdmin); err != nil {
		return err
	}
	admins, err := tx.UsersWithRole(ctx, accountID, usher.RolePrimaryAdmin)
	if err != nil {
		return err
	}
	target, others := false, 0
	for _, g := range admins {
		u, err := tx.UserByID(ctx, accountID, g.UserID)
		if err != nil {
			return err
		}
		switch {
		case u.Status != usher.UserActive:
		case g.UserID == userID:
			target = true
		default:
			others++
		}
	}
	if target && others == 0 {
		return usher.Errorf(usher.ECONFLICT, "cannot %s the account's only active primary admin; make someone else primary admin first", verb)
	}
	return nil
}

// grantAction is the permission needed to grant or revoke g.
func grantAction(r usher.Role) Action {
	switch r {
	case usher.RolePrimaryAdmin:
		return GrantPrimaryAdmin
	case usher.RoleSecondaryAdmin:
		return GrantAdmin
	case usher.RoleContractManager:
		return GrantManager
	default:
		return AppointCoordinator
	}
}

func validateGrant(g usher.RoleGrant) error {
	var p usher.Problems
	if !g.Role.Valid() {
		p.Add("role", "must be one of primary_admin, secondary_admin, contract_manager, software_coordinator")
	} else if g.Role.PerSubscription() && g.SubscriptionID <= 0 {
		p.Addf("subscription_id", "is required for %s", g.Role)
	} else if !g.Role.PerSubscription() && g.SubscriptionID != 0 {
		p.Addf("subscription_id", "must be empty for %s, an account-wide role", g.Role)
	}
	return p.Err()
}

// grantVisible answers a per-subscription grant on a subscription the actor
// may not see as one on a subscription that does not exist.
func grantVisible(a usher.Actor, g usher.RoleGrant) error {
	if g.Role.PerSubscription() && !Can(a, ViewSubscription, g.SubscriptionID) {
		msg := fmt.Sprintf("subscription %d not found", g.SubscriptionID)
		return &usher.Error{Code: usher.ENOTFOUND, Message: msg, Fields: []usher.FieldError{{Field: "subscription_id", Reason: msg}}}
	}
	return nil
}

// GrantRole gives a user a role.
func (s *Service) GrantRole(ctx context.Context, a usher.Actor, g usher.RoleGrant) error {
	if err := validateGrant(g); err != nil {
		return err
	}
	if err := grantVisible(a, g); err != nil {
		return err
	}
	if !Can(a, grantAction(g.Role), g.SubscriptionID) {
		return forbidden("grant " + string(g.Role))
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		u, err := tx.UserByID(ctx, a.AccountID, g.UserID)
		if err != nil {
			return err
		}
		if g.SubscriptionID != 0 {
			if _, err := tx.SubscriptionByID(ctx, a.AccountID, g.SubscriptionID); err != nil {
				return err
			}
		}
		if err := tx.GrantRole(ctx, a.AccountID, g); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "role.grant", u, g.SubscriptionID, nil, g)
	})
	if err != nil {
		return fmt.Errorf("grant %s: %w", g.Role, err)
	}
	return nil
}

// RevokeRole takes a role away.
func (s *Service) RevokeRole(ctx context.Context, a usher.Actor, g usher.RoleGrant) error {
	if err := validateGrant(g); err != nil {
		return err
	}
	if err := grantVisible(a, g); err != nil {
		return err
	}
	if !Can(a, grantAction(g.Role), g.SubscriptionID) {
		return forbidden("revoke " + string(g.Role))
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		u, err := tx.UserByID(ctx, a.AccountID, g.UserID)
		if err != nil {
			return err
		}
		if g.Role == usher.RolePrimaryAdmin {
			if err := lastPrimaryAdminGuard(ctx, tx, a.AccountID, g.UserID, "remove"); err != nil {
				return err
			}
		}
		if err := tx.RevokeRole(ctx, a.AccountID, g); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "role.revoke", u, g.SubscriptionID, g, nil)
	})
	if err != nil {
		return fmt.Errorf("revoke %s: %w", g.Role, err)
	}
	return nil
}

// UserByEmail finds a user of the actor's account by email, for the command
// line and imports.
func (s *Service) UserByEmail(ctx context.Context, a usher.Actor, email string) (usher.User, error) {
	if !CanAny(a, ViewUsers) {
		return usher.User{}, usher.Errorf(usher.ENOTFOUND, "user %s not found", email)
	}
	var u usher.User
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		u, err = tx.UserByEmail(ctx, a.AccountID, usher.NormalizeEmail(email))
		return err
	})
	return u, err
}
