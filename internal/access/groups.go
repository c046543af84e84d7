package access

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/usher"
)

// Groups are account-wide sets of users. Primary and secondary admins
// manage them (ManageGroups); giving a group a subscription's seats also
// needs ManageSeats on that subscription. A synced group belongs to the
// identity provider that provisioned it: its name, description and members
// change only through a provisioning (SCIM-scoped) actor, while Usher's
// admins still decide which subscriptions it gets.

// GroupInput is the input of CreateGroup and UpdateGroup; nil fields are
// left unchanged on update.
type GroupInput struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	// ExternalID is set by provisioning clients only.
	ExternalID *string `json:"external_id"`
}

// MaxGroupMembersPerCall bounds the members one call adds or removes.
const MaxGroupMembersPerCall = 10_000

func (in *GroupInput) validate(p *usher.Problems, create bool) {
	if in.Name != nil || create {
		n := ""
		if in.Name != nil {
			n = strings.TrimSpace(*in.Name)
			in.Name = &n
		}
		if n == "" || utf8.RuneCountInString(n) > 200 {
			p.Add("name", "is required, 1 to 200 characters")
		} else if reason := usher.TextProblem(n); reason != "" {
			p.Add("name", reason)
		}
	}
	// The REST API refuses such text as it decodes the body; a SCIM body
	// reaches here as it came, so the rules are kept here too.
	if in.Description != nil {
		d := strings.TrimSpace(*in.Description)
		in.Description = &d
		if utf8.RuneCountInString(d) > 2000 {
			p.Add("description", "must be at most 2000 characters")
		} else if reason := usher.TextProblem(d); reason != "" {
			p.Add("description", reason)
		}
	}
	if in.ExternalID != nil {
		if utf8.RuneCountInString(*in.ExternalID) > 500 {
			p.Add("external_id", "must be at most 500 characters")
		} else if reason := usher.TextProblem(*in.ExternalID); reason != "" {
			p.Add("external_id", reason)
		}
	}
}

// provisioning reports whether the actor is an identity provider's
// provisioning client, the only one that may change synced groups.
func provisioning(a usher.Actor) bool { return a.Scope == usher.ScopeSCIM }

// canEditGroup refuses changes of a group's name, description or members
// unless the actor may make them.
func canEditGroup(a usher.Actor, g usher.Group) error {
	if !Can(a, ManageGroups, 0) && !provisioning(a) {
		return forbidden("manage groups")
	}
	if g.Synced && !provisioning(a) {
		return usher.Errorf(usher.ECONFLICT, "group %s is synced from the identity provider: change it there", g.Name)
	}
	return nil
}

func groupAudit(g usher.Group) map[string]any {
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "external_id": g.ExternalID, "synced": g.Synced}
}

type groupCursor struct {
	Name string `json:"n"`
	ID   int64  `json:"i"`
}

// ListGroups returns a page of groups ordered by name; q matches the name.
func (s *Service) ListGroups(ctx context.Context, a usher.Actor, q, cursor string, limit int) (Page[usher.Group], error) {
	var out Page[usher.Group]
	if !CanAny(a, ViewUsers) && !provisioning(a) {
		return out, forbidden("list groups")
	}
	var p usher.Problems
	limit = checkLimit(&p, limit)
	var c groupCursor
	if err := s.cursors.Decode(ctx, &p, CursorGroups, a.AccountID, cursor, &c); err != nil {
		return out, fmt.Errorf("list groups: %w", err)
	}
	if utf8.RuneCountInString(q) > 200 {
		p.Add("q", "is longer than 200 characters")
	}
	if err := p.Err(); err != nil {
		return out, err
	}
	err := s.store.Read(ctx, func(tx Tx) error {
		gs, err := tx.ListGroups(ctx, a.AccountID, GroupFilter{Query: strings.TrimSpace(q), AfterName: c.Name, AfterID: c.ID, Limit: limit + 1})
		if err != nil {
			return err
		}
		if len(gs) > limit {
			gs = gs[:limit]
			last := gs[limit-1]
			if out.NextCursor, err = s.cursors.Encode(ctx, CursorGroups, a.AccountID, groupCursor{Name: strings.ToLower(last.Name), ID: last.ID}); err != nil {
				return err
			}
		}
		out.Items = gs
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("list groups: %w", err)
	}
	if out.Items == nil {
		out.Items = []usher.Group{}
	}
	return out, nil
}

// GroupSubscription is one subscription a group is assigned, with how many
// of its members hold a seat through it and how many wait.
type GroupSubscription struct {
	usher.GroupAssignment
	ContractNumber string `json:"contract_number"`
	Product        string `json:"product"`
	Seated         int    `json:"seated"`
	Waiting        int    `json:"waiting"`
}

// GroupDetail is a group with its assignments, exclusions and waiting members.
type GroupDetail struct {
	usher.Group
	Subscriptions []GroupSubscription    `json:"subscriptions"`
	Exclusions    []usher.GroupExclusion `json:"exclusions"`
	Waiting       []usher.Waiter         `json:"waiting"`
}

// Group returns one group with its assignments, exclusions and waiters.
func (s *Service) Group(ctx context.Context, a usher.Actor, id int64) (GroupDetail, error) {
	var out GroupDetail
	if !CanAny(a, ViewUsers) && !provisioning(a) {
		return out, usher.Errorf(usher.ENOTFOUND, "group %d not found", id)
	}
	err := s.store.Read(ctx, func(tx Tx) error {
		return s.groupDetail(ctx, tx, a, id, &out)
	})
	if err != nil {
		return out, fmt.Errorf("get group %d: %w", id, err)
	}
	return out, nil
}

func (s *Service) groupDetail(ctx context.Context, tx Tx, a usher.Actor, id int64, out *GroupDetail) error {
	g, err := tx.GroupByID(ctx, a.AccountID, id)
	if err != nil {
		return err
	}
	out.Group = g
	gas, err := tx.GroupAssignments(ctx, a.AccountID, id)
	if err != nil {
		return err
	}
	if out.Waiting, err = tx.Waiters(ctx, a.AccountID, WaiterFilter{GroupID: id}); err != nil {
		return err
	}
	if out.Exclusions, err = tx.GroupExclusions(ctx, a.AccountID, id); err != nil {
		return err
	}
	seated, err := tx.GroupSeatCounts(ctx, a.AccountID, id)
	if err != nil {
		return err
	}
	out.Subscriptions = make([]GroupSubscription, 0, len(gas))
	for _, ga := range gas {
		sub, err := tx.SubscriptionByID(ctx, a.AccountID, ga.SubscriptionID)
		if err != nil {
			return err
		}
		gs := GroupSubscription{GroupAssignment: ga, ContractNumber: sub.ContractNumber, Product: sub.Product.Code, Seated: seated[sub.ID]}
		for _, w := range out.Waiting {
			if w.SubscriptionID == sub.ID {
				gs.Waiting++
			}
		}
		out.Subscriptions = append(out.Subscriptions, gs)
	}
	if out.Exclusions == nil {
		out.Exclusions = []usher.GroupExclusion{}
	}
	if out.Waiting == nil {
		out.Waiting = []usher.Waiter{}
	}
	return nil
}

// CreateGroup adds a group to the actor's account. A provisioning actor's
// groups are synced.
func (s *Service) CreateGroup(ctx context.Context, a usher.Actor, in GroupInput) (usher.Group, error) {
	return s.CreateGroupWithMembers(ctx, a, in, nil)
}

// CreateGroupWithMembers adds a group and its first members in one
// transaction, as a provisioning client's create of a group with members
// asks: if a member is refused, there is no group either.
func (s *Service) CreateGroupWithMembers(ctx context.Context, a usher.Actor, in GroupInput, members []int64) (usher.Group, error) {
	var p usher.Problems
	in.validate(&p, true)
	if len(members) > MaxGroupMembersPerCall {
		p.Addf("members", "may list at most %d users", MaxGroupMembersPerCall)
	}
	if in.ExternalID != nil && !provisioning(a) {
		p.Add("external_id", "is set by the identity provider's provisioning only")
	}
	if err := p.Err(); err != nil {
		return usher.Group{}, err
	}
	if !Can(a, ManageGroups, 0) && !provisioning(a) {
		return usher.Group{}, forbidden("create groups")
	}
	now := s.Now()
	g := usher.Group{AccountID: a.AccountID, Name: *in.Name, Synced: provisioning(a), CreatedAt: now, UpdatedAt: now}
	if in.Description != nil {
		g.Description = *in.Description
	}
	if in.ExternalID != nil {
		g.ExternalID = *in.ExternalID
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		g.ID = 0
		if err := tx.CreateGroup(ctx, &g); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "group.create", usher.User{}, 0, nil, groupAudit(g)); err != nil {
			return err
		}
		if len(members) == 0 {
			return nil
		}
		var res MembersResult
		if err := s.changeMembers(ctx, tx, a, g.ID, members, nil, &res); err != nil {
			return err
		}
		g.MemberCount = res.Added
		return nil
	})
	if err != nil {
		return usher.Group{}, fmt.Errorf("create group: %w", err)
	}
	return g, nil
}

// UpdateGroup changes a group's name, description or external id.
func (s *Service) UpdateGroup(ctx context.Context, a usher.Actor, id int64, in GroupInput) (usher.Group, error) {
	var p usher.Problems
	in.validate(&p, false)
	if in.ExternalID != nil && !provisioning(a) {
		p.Add("external_id", "is set by the identity provider's provisioning only")
	}
	if err := p.Err(); err != nil {
		return usher.Group{}, err
	}
	var g usher.Group
	err := s.store.Write(ctx, func(tx Tx) (err error) {
		g, err = s.updateGroup(ctx, tx, a, id, in)
		return err
	})
	if err != nil {
		return usher.Group{}, fmt.Errorf("update group %d: %w", id, err)
	}
	return g, nil
}

// updateGroup applies a validated GroupInput.
func (s *Service) updateGroup(ctx context.Context, tx Tx, a usher.Actor, id int64, in GroupInput) (usher.Group, error) {
	before, err := tx.GroupByID(ctx, a.AccountID, id)
	if err != nil {
		return usher.Group{}, err
	}
	if err := canEditGroup(a, before); err != nil {
		return usher.Group{}, err
	}
	g := before
	if in.Name != nil {
		g.Name = *in.Name
	}
	if in.Description != nil {
		g.Description = *in.Description
	}
	if in.ExternalID != nil {
		g.ExternalID = *in.ExternalID
	}
	if g == before {
		return g, nil
	}
	g.UpdatedAt = s.Now()
	if err := tx.UpdateGroup(ctx, g); err != nil {
		return usher.Group{}, err
	}
	return g, s.audit(ctx, tx, a, "group.update", usher.User{}, 0, groupAudit(before), groupAudit(g))
}

// DeleteGroup removes a group. The seats it gave go where no other source
// gives them, and their subscriptions' waiters take them.
func (s *Service) DeleteGroup(ctx context.Context, a usher.Actor, id int64) error {
	err := s.store.Write(ctx, func(tx Tx) error {
		if err := tx.LockGroups(ctx, a.AccountID, []int64{id}); err != nil {
			return err
		}
		g, err := tx.GroupByID(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		if err := canEditGroup(a, g); err != nil {
			return err
		}
		gas, err := tx.GroupAssignments(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		for _, ga := range gas {
			if !Can(a, ManageSeats, ga.SubscriptionID) && !provisioning(a) {
				return forbidden("delete a group holding seats of a subscription you do not manage")
			}
		}
		members, err := tx.GroupMemberIDs(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		subs := make([]int64, len(gas))
		for i, ga := range gas {
			subs[i] = ga.SubscriptionID
		}
		subs = sortedUnique(subs)
		if err := tx.LockSubscriptions(ctx, a.AccountID, subs); err != nil {
			return err
		}
		for _, ga := range gas {
			for _, m := range members {
				if err := s.dropBenefitsOf(ctx, tx, a, m, ga); err != nil {
					return err
				}
			}
		}
		if err := tx.DeleteGroup(ctx, a.AccountID, id); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "group.delete", usher.User{}, 0, map[string]any{"group": groupAudit(g), "members": len(members), "subscriptions": subs}, nil); err != nil {
			return err
		}
		_, err = s.settle(ctx, tx, a, crossKeys(members, subs))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete group %d: %w", id, err)
	}
	return nil
}

// crossKeys pairs every user with every subscription, subscription-major so
// the oldest members of a group are seated first.
func crossKeys(users, subs []int64) []seatKey {
	out := make([]seatKey, 0, len(users)*len(subs))
	for _, sub := range subs {
		for _, u := range users {
			out = append(out, seatKey{u, sub})
		}
	}
	return out
}

type memberCursor struct {
	Name string `json:"n"`
	ID   int64  `json:"i"`
}

// GroupMembers returns a page of a group's members ordered by name.
func (s *Service) GroupMembers(ctx context.Context, a usher.Actor, groupID int64, cursor string, limit int) (Page[usher.GroupMember], error) {
	var out Page[usher.GroupMember]
	if !CanAny(a, ViewUsers) && !provisioning(a) {
		return out, usher.Errorf(usher.ENOTFOUND, "group %d not found", groupID)
	}
	var p usher.Problems
	limit = checkLimit(&p, limit)
	var c memberCursor
	// The group is part of the kind: a cursor of one group's members does
	// not page another's.
	kind := fmt.Sprintf("%s/%d", CursorGroupMembers, groupID)
	if err := s.cursors.Decode(ctx, &p, kind, a.AccountID, cursor, &c); err != nil {
		return out, fmt.Errorf("members of group %d: %w", groupID, err)
	}
	if err := p.Err(); err != nil {
		return out, err
	}
	err := s.store.Read(ctx, func(tx Tx) error {
		if _, err := tx.GroupByID(ctx, a.AccountID, groupID); err != nil {
			return err
		}
		ms, err := tx.GroupMembers(ctx, a.AccountID, groupID, UserFilter{AfterName: c.Name, AfterID: c.ID, Limit: limit + 1})
		if err != nil {
			return err
		}
		if len(ms) > limit {
			ms = ms[:limit]
			last := ms[limit-1]
			if out.NextCursor, err = s.cursors.Encode(ctx, kind, a.AccountID, memberCursor{Name: strings.ToLower(last.Name), ID: last.ID}); err != nil {
				return err
			}
		}
		out.Items = ms
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("members of group %d: %w", groupID, err)
	}
	if out.Items == nil {
		out.Items = []usher.GroupMember{}
	}
	return out, nil
}

// MembersResult says what a change of members did.
type MembersResult struct {
	Added   int `json:"added"`
	Removed int `json:"removed"`
	// Seated members got a seat through the group; Waiting ones wait for one.
	Seated  int `json:"seated"`
	Waiting int `json:"waiting"`
	// Freed seats were given back (and went to waiters where any wait).
	Freed int `json:"freed"`
}

// AddMembers adds users to a group. Each gets a seat of every subscription
// the group is assigned, or waits for one. Users already members are left
// as they are. All or nothing.
func (s *Service) AddMembers(ctx context.Context, a usher.Actor, groupID int64, userIDs []int64) (MembersResult, error) {
	return s.ChangeMembers(ctx, a, groupID, userIDs, nil)
}

// RemoveMembers takes users out of a group, freeing the seats that only the
// group gave them.
func (s *Service) RemoveMembers(ctx context.Context, a usher.Actor, groupID int64, userIDs []int64) (MembersResult, error) {
	return s.ChangeMembers(ctx, a, groupID, nil, userIDs)
}

// ChangeMembers adds and removes members in one transaction, as a
// provisioning client's batched PATCH does. Removing a non-member or adding
// a member is not an error. A user may not be both added and removed.
func (s *Service) ChangeMembers(ctx context.Context, a usher.Actor, groupID int64, add, remove []int64) (MembersResult, error) {
	var res MembersResult
	var p usher.Problems
	switch {
	case len(add)+len(remove) == 0:
		p.Add("user_ids", "must list at least one user")
	case len(add)+len(remove) > MaxGroupMembersPerCall:
		p.Addf("user_ids", "may list at most %d users", MaxGroupMembersPerCall)
	}
	for i, id := range add {
		if slices.Contains(remove, id) {
			p.Addf(fmt.Sprintf("add[%d]", i), "user %d is both added and removed", id)
		}
	}
	if err := p.Err(); err != nil {
		return res, err
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		res = MembersResult{}
		return s.changeMembers(ctx, tx, a, groupID, add, remove, &res)
	})
	if err != nil {
		return MembersResult{}, fmt.Errorf("change members of group %d: %w", groupID, err)
	}
	return res, nil
}

// SetMembers makes the group's members exactly userIDs, as a provisioning
// client's PUT of a group does.
func (s *Service) SetMembers(ctx context.Context, a usher.Actor, groupID int64, userIDs []int64) (MembersResult, error) {
	if len(userIDs) > MaxGroupMembersPerCall {
		return MembersResult{}, (&usher.Problems{{Field: "user_ids", Reason: fmt.Sprintf("may list at most %d users", MaxGroupMembersPerCall)}}).Err()
	}
	var res MembersResult
	err := s.store.Write(ctx, func(tx Tx) error {
		res = MembersResult{}
		return s.setMembers(ctx, tx, a, groupID, userIDs, &res)
	})
	if err != nil {
		return MembersResult{}, fmt.Errorf("set members of group %d: %w", groupID, err)
	}
	return res, nil
}

func (s *Service) setMembers(ctx context.Context, tx Tx, a usher.Actor, groupID int64, userIDs []int64, res *MembersResult) error {
	if err := tx.LockGroups(ctx, a.AccountID, []int64{groupID}); err != nil {
		return err
	}
	current, err := tx.GroupMemberIDs(ctx, a.AccountID, groupID)
	if err != nil {
		return err
	}
	var add, remove []int64
	for _, id := range userIDs {
		if !slices.Contains(current, id) && !slices.Contains(add, id) {
			add = append(add, id)
		}
	}
	for _, id := range current {
		if !slices.Contains(userIDs, id) {
			remove = append(remove, id)
		}
	}
	if len(add)+len(remove) == 0 {
		_, err := tx.GroupByID(ctx, a.AccountID, groupID)
		return err
	}
	return s.changeMembers(ctx, tx, a, groupID, add, remove, res)
}

// GroupChange is a change of a group's name, description or external id
// and of its members at once, as a provisioning client's PATCH or PUT of a
// group sends it.
type GroupChange struct {
	GroupInput
	// ReplaceMembers makes the members exactly Members; otherwise Add and
	// Remove change them.
	ReplaceMembers bool
	Members        []int64
	Add, Remove    []int64
}

// ChangeGroup applies a GroupChange in one transaction: if any part is
// refused (a name taken, a user who does not exist), nothing changes.
func (s *Service) ChangeGroup(ctx context.Context, a usher.Actor, id int64, ch GroupChange) (MembersResult, error) {
	var p usher.Problems
	ch.validate(&p, false)
	if ch.ExternalID != nil && !provisioning(a) {
		p.Add("external_id", "is set by the identity provider's provisioning only")
	}
	if n := len(ch.Members) + len(ch.Add) + len(ch.Remove); n > MaxGroupMembersPerCall {
		p.Addf("members", "may list at most %d users", MaxGroupMembersPerCall)
	}
	for i, uid := range ch.Add {
		if slices.Contains(ch.Remove, uid) {
			p.Addf(fmt.Sprintf("add[%d]", i), "user %d is both added and removed", uid)
		}
	}
	if err := p.Err(); err != nil {
		return MembersResult{}, err
	}
	var res MembersResult
	err := s.store.Write(ctx, func(tx Tx) error {
		res = MembersResult{}
		if err := tx.LockGroups(ctx, a.AccountID, []int64{id}); err != nil {
			return err
		}
		if _, err := s.updateGroup(ctx, tx, a, id, ch.GroupInput); err != nil {
			return err
		}
		switch {
		case ch.ReplaceMembers:
			return s.setMembers(ctx, tx, a, id, ch.Members, &res)
		case len(ch.Add)+len(ch.Remove) > 0:
			return s.changeMembers(ctx, tx, a, id, ch.Add, ch.Remove, &res)
		}
		return nil
	})
	if err != nil {
		return MembersResult{}, fmt.Errorf("change group %d: %w", id, err)
	}
	return res, nil
}

func (s *Service) changeMembers(ctx context.Context, tx Tx, a usher.Actor, groupID int64, add, remove []int64, res *MembersResult) error {
	if err := tx.LockGroups(ctx, a.AccountID, []int64{groupID}); err != nil {
		return err
	}
	g, err := tx.GroupByID(ctx, a.AccountID, groupID)
	if err != nil {
		return err
	}
	if err := canEditGroup(a, g); err != nil {
		return err
	}
	gas, err := tx.GroupAssignments(ctx, a.AccountID, groupID)
	if err != nil {
		return err
	}
	subs := make([]int64, len(gas))
	for i, ga := range gas {
		subs[i] = ga.SubscriptionID
	}
	subs = sortedUnique(subs)
	if err := tx.LockSubscriptions(ctx, a.AccountID, subs); err != nil {
		return err
	}
	var p usher.Problems
	var changed []int64
	users := map[int64]usher.User{}
	for i, id := range add {
		u, err := tx.UserByID(ctx, a.AccountID, id)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			p.Addf(fmt.Sprintf("user_ids[%d]", i), "user %d not found", id)
			continue
		} else if err != nil {
			return err
		}
		users[id] = u
	}
	for i, id := range remove {
		u, err := tx.UserByID(ctx, a.AccountID, id)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			p.Addf(fmt.Sprintf("remove[%d]", i), "user %d not found", id)
			continue
		} else if err != nil {
			return err
		}
		users[id] = u
	}
	if err := p.Err(); err != nil {
		return err
	}
	ref := map[string]any{"group_id": g.ID, "group": g.Name}
	for _, id := range remove {
		ok, err := tx.RemoveGroupMember(ctx, a.AccountID, groupID, id)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		res.Removed++
		changed = append(changed, id)
		if err := s.audit(ctx, tx, a, "group.member.remove", users[id], 0, ref, nil); err != nil {
			return err
		}
	}
	for _, id := range add {
		ok, err := tx.AddGroupMember(ctx, a.AccountID, groupID, id, s.Now())
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		res.Added++
		changed = append(changed, id)
		if err := s.audit(ctx, tx, a, "group.member.add", users[id], 0, nil, ref); err != nil {
			return err
		}
	}
	outcomes, err := s.settle(ctx, tx, a, crossKeys(changed, subs))
	if err != nil {
		return err
	}
	for _, o := range outcomes {
		switch o {
		case seated:
			res.Seated++
		case waiting:
			res.Waiting++
		case freed:
			res.Freed++
		}
	}
	return nil
}

// GroupAssignmentInput is what a group is given of one subscription.
type GroupAssignmentInput struct {
	Services []string `json:"services"`
	Benefits []string `json:"benefits"`
}

// AssignGroup gives every member of a group a seat of the subscription,
// with services and benefits, or changes what an existing assignment gives.
// Members the subscription has no seat for wait, longest-standing member
// first. It returns the group as it is afterwards.
func (s *Service) AssignGroup(ctx context.Context, a usher.Actor, groupID, subscriptionID int64, in GroupAssignmentInput) (GroupDetail, error) {
	if !Can(a, ManageGroups, 0) || !Can(a, ManageSeats, subscriptionID) {
		return GroupDetail{}, forbidden("assign seats of this subscription to groups")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		if err := tx.LockGroups(ctx, a.AccountID, []int64{groupID}); err != nil {
			return err
		}
		g, err := tx.GroupByID(ctx, a.AccountID, groupID)
		if err != nil {
			return err
		}
		if err := tx.LockSubscriptions(ctx, a.AccountID, []int64{subscriptionID}); err != nil {
			return err
		}
		sub, err := tx.SubscriptionByID(ctx, a.AccountID, subscriptionID)
		if err != nil {
			return err
		}
		var p usher.Problems
		validateServices(&p, "", sub, true, in.Services)
		validateBenefits(&p, "", sub, in.Benefits)
		if err := p.Err(); err != nil {
			return fieldsTrimmed(err)
		}
		gas, err := tx.GroupAssignments(ctx, a.AccountID, groupID)
		if err != nil {
			return err
		}
		var before *usher.GroupAssignment
		for _, ga := range gas {
			if ga.SubscriptionID == subscriptionID {
				before = &ga
			}
		}
		ga := usher.GroupAssignment{AccountID: a.AccountID, GroupID: groupID, SubscriptionID: subscriptionID,
			Services: union(nil, in.Services), Benefits: union(nil, in.Benefits), CreatedAt: s.Now()}
		if before != nil {
			ga.CreatedAt = before.CreatedAt
			if sameSet(before.Services, ga.Services) && sameSet(before.Benefits, ga.Benefits) {
				return nil
			}
		}
		if err := tx.SetGroupAssignment(ctx, ga); err != nil {
			return err
		}
		action := "group.assign"
		var was any
		if before != nil {
			action, was = "group.assignment.update", before
		}
		if err := s.audit(ctx, tx, a, action, usher.User{}, subscriptionID, was, map[string]any{"group": groupAudit(g), "assignment": ga}); err != nil {
			return err
		}
		members, err := tx.GroupMemberIDs(ctx, a.AccountID, groupID)
		if err != nil {
			return err
		}
		if before != nil {
			// Members holding the seat take the new services and benefits:
			// re-settle them as if the group joined anew.
			return s.reapply(ctx, tx, a, *before, ga, members)
		}
		_, err = s.settle(ctx, tx, a, crossKeys(members, []int64{subscriptionID}))
		return err
	})
	if err != nil {
		return GroupDetail{}, fmt.Errorf("assign group %d to subscription %d: %w", groupID, subscriptionID, err)
	}
	return s.Group(ctx, a, groupID)
}

// fieldsTrimmed drops the leading "." of field names validated with no prefix.
func fieldsTrimmed(err error) error {
	fs := usher.ErrorFields(err)
	var p usher.Problems
	for _, f := range fs {
		p.Add(strings.TrimPrefix(f.Field, "."), f.Reason)
	}
	return p.Err()
}

// reapply moves the members holding a seat through the group from the old
// assignment's services and benefits to the new one's.
func (s *Service) reapply(ctx context.Context, tx Tx, a usher.Actor, old, ga usher.GroupAssignment, members []int64) error {
	for _, id := range members {
		seats, err := tx.AssignmentsOfUser(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		for _, as := range seats {
			if as.SubscriptionID != ga.SubscriptionID || !slices.Contains(as.Groups, ga.GroupID) {
				continue
			}
			u, err := tx.UserByID(ctx, a.AccountID, id)
			if err != nil {
				return err
			}
			grants, err := tx.GroupGrantsFor(ctx, a.AccountID, id, ga.SubscriptionID)
			if err != nil {
				return err
			}
			services := union(as.Services, ga.Services)
			if !as.Direct {
				services, _ = grantsUnion(grants)
			}
			if !sameSet(services, as.Services) {
				if err := tx.SetAssignmentServices(ctx, a.AccountID, id, ga.SubscriptionID, services); err != nil {
					return err
				}
				if err := s.audit(ctx, tx, a, "services.set", u, ga.SubscriptionID, orEmpty(as.Services), services); err != nil {
					return err
				}
			}
			if err := s.addBenefits(ctx, tx, a, u, ga.SubscriptionID, ga.Benefits); err != nil {
				return err
			}
			if !as.Direct {
				// Benefits the old assignment gave and the new one does not.
				_, keep := grantsUnion(grants)
				all, err := tx.BenefitsOfUser(ctx, a.AccountID, id)
				if err != nil {
					return err
				}
				before := all[ga.SubscriptionID]
				after := slices.DeleteFunc(slices.Clone(before), func(c string) bool {
					return slices.Contains(old.Benefits, c) && !slices.Contains(keep, c)
				})
				if len(after) != len(before) {
					if err := s.setBenefits(ctx, tx, a, u, ga.SubscriptionID, before, after); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// UnassignGroup takes a subscription away from a group: its members lose
// the seats no other source gives them (waiters of the subscription take
// them), and the group's waiters stop waiting.
func (s *Service) UnassignGroup(ctx context.Context, a usher.Actor, groupID, subscriptionID int64) error {
	if !Can(a, ManageGroups, 0) || !Can(a, ManageSeats, subscriptionID) {
		return forbidden("take seats of this subscription from groups")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		if err := tx.LockGroups(ctx, a.AccountID, []int64{groupID}); err != nil {
			return err
		}
		g, err := tx.GroupByID(ctx, a.AccountID, groupID)
		if err != nil {
			return err
		}
		if err := tx.LockSubscriptions(ctx, a.AccountID, []int64{subscriptionID}); err != nil {
			return err
		}
		gas, err := tx.GroupAssignments(ctx, a.AccountID, groupID)
		if err != nil {
			return err
		}
		var ga *usher.GroupAssignment
		for _, x := range gas {
			if x.SubscriptionID == subscriptionID {
				ga = &x
			}
		}
		if ga == nil {
			return usher.Errorf(usher.ENOTFOUND, "group %s is not assigned subscription %d", g.Name, subscriptionID)
		}
		members, err := tx.GroupMemberIDs(ctx, a.AccountID, groupID)
		if err != nil {
			return err
		}
		// settle drops the benefits of groups it sees leave a seat by
		// reading their assignments; this one is about to go, so its
		// benefits go here.
		for _, id := range members {
			if err := s.dropBenefitsOf(ctx, tx, a, id, *ga); err != nil {
				return err
			}
		}
		if err := tx.DeleteGroupAssignment(ctx, a.AccountID, groupID, subscriptionID); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "group.unassign", usher.User{}, subscriptionID, map[string]any{"group": groupAudit(g), "assignment": ga}, nil); err != nil {
			return err
		}
		_, err = s.settle(ctx, tx, a, crossKeys(members, []int64{subscriptionID}))
		return err
	})
	if err != nil {
		return fmt.Errorf("unassign group %d from subscription %d: %w", groupID, subscriptionID, err)
	}
	return nil
}

// dropBenefitsOf takes the benefits of a removed group assignment from a
// member who held its seat only through groups, keeping what other groups give.
func (s *Service) dropBenefitsOf(ctx context.Context, tx Tx, a usher.Actor, userID int64, ga usher.GroupAssignment) error {
	if len(ga.Benefits) == 0 {
		return nil
	}
	seats, err := tx.AssignmentsOfUser(ctx, a.AccountID, userID)
	if err != nil {
		return err
	}
	for _, as := range seats {
		if as.SubscriptionID != ga.SubscriptionID || as.Direct || !slices.Contains(as.Groups, ga.GroupID) {
			continue
		}
		u, err := tx.UserByID(ctx, a.AccountID, userID)
		if err != nil {
			return err
		}
		grants, err := tx.GroupGrantsFor(ctx, a.AccountID, userID, ga.SubscriptionID)
		if err != nil {
			return err
		}
		grants = slices.DeleteFunc(grants, func(x usher.GroupAssignment) bool { return x.GroupID == ga.GroupID })
		_, keep := grantsUnion(grants)
		all, err := tx.BenefitsOfUser(ctx, a.AccountID, userID)
		if err != nil {
			return err
		}
		before := all[ga.SubscriptionID]
		after := slices.DeleteFunc(slices.Clone(before), func(c string) bool {
			return slices.Contains(ga.Benefits, c) && !slices.Contains(keep, c)
		})
		if len(after) != len(before) {
			return s.setBenefits(ctx, tx, a, u, ga.SubscriptionID, before, after)
		}
	}
	return nil
}

// IncludeMember ends a member's exclusion from a group's assignment: they
// get its seat again, or wait for one.
func (s *Service) IncludeMember(ctx context.Context, a usher.Actor, groupID, subscriptionID, userID int64) error {
	if !Can(a, ManageSeats, subscriptionID) {
		return forbidden("change seats of this subscription")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		if err := tx.LockSubscriptions(ctx, a.AccountID, []int64{subscriptionID}); err != nil {
			return err
		}
		g, err := tx.GroupByID(ctx, a.AccountID, groupID)
		if err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, a.AccountID, userID)
		if err != nil {
			return err
		}
		if err := tx.DeleteExclusion(ctx, a.AccountID, groupID, subscriptionID, userID); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "group.include", u, subscriptionID, map[string]any{"group_id": g.ID, "group": g.Name}, nil); err != nil {
			return err
		}
		_, err = s.settle(ctx, tx, a, []seatKey{{userID, subscriptionID}})
		return err
	})
	if err != nil {
		return fmt.Errorf("include user %d in group %d's assignment: %w", userID, groupID, err)
	}
	return nil
}

// Waiting lists the users waiting for a seat of a subscription, oldest first.
func (s *Service) Waiting(ctx context.Context, a usher.Actor, subscriptionID int64) ([]usher.Waiter, error) {
	if !Can(a, ViewSubscription, subscriptionID) {
		return nil, usher.Errorf(usher.ENOTFOUND, "subscription %d not found", subscriptionID)
	}
	var out []usher.Waiter
	err := s.store.Read(ctx, func(tx Tx) error {
		if _, err := tx.SubscriptionByID(ctx, a.AccountID, subscriptionID); err != nil {
			return err
		}
		var err error
		out, err = tx.Waiters(ctx, a.AccountID, WaiterFilter{SubscriptionID: subscriptionID})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("waiters of subscription %d: %w", subscriptionID, err)
	}
	if out == nil {
		out = []usher.Waiter{}
	}
	return out, nil
}

// GroupByName finds a group by name, for the command line and imports.
func (s *Service) GroupByName(ctx context.Context, a usher.Actor, name string) (usher.Group, error) {
	if !CanAny(a, ViewUsers) && !provisioning(a) {
		return usher.Group{}, usher.Errorf(usher.ENOTFOUND, "group %s not found", name)
	}
	var g usher.Group
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		g, err = tx.GroupByName(ctx, a.AccountID, strings.TrimSpace(name))
		return err
	})
	return g, err
}

// GroupByExternalID finds a provisioned group by the identity provider's id.
func (s *Service) GroupByExternalID(ctx context.Context, a usher.Actor, externalID string) (usher.Group, error) {
	if !CanAny(a, ViewUsers) && !provisioning(a) {
		return usher.Group{}, usher.Errorf(usher.ENOTFOUND, "group %s not found", externalID)
	}
	var g usher.Group
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		g, err = tx.GroupByExternalID(ctx, a.AccountID, externalID)
		return err
	})
	return g, err
}

// GroupsOf lists the groups a user is a member of, by name. Anyone may
// read their own; reading other people's needs ViewUsers.
func (s *Service) GroupsOf(ctx context.Context, a usher.Actor, userID int64) ([]usher.Group, error) {
	if !(userID == a.UserID && seesOwn(a)) && !CanAny(a, ViewUsers) {
		return nil, usher.Errorf(usher.ENOTFOUND, "user %d not found", userID)
	}
	var out []usher.Group
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		if _, err := tx.UserByID(ctx, a.AccountID, userID); err != nil {
			return err
		}
		out, err = tx.GroupsOfUser(ctx, a.AccountID, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("groups of user %d: %w", userID, err)
	}
	if out == nil {
		out = []usher.Group{}
	}
	return out, nil
}

// WaitingCounts counts the users waiting for a seat, per subscription the
// actor may see; subscriptions nobody waits for are left out.
func (s *Service) WaitingCounts(ctx context.Context, a usher.Actor) (map[int64]int, error) {
	var all map[int64]int
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		all, err = tx.WaitingCounts(ctx, a.AccountID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count waiters: %w", err)
	}
	out := map[int64]int{}
	for sub, n := range all {
		if Can(a, ViewSubscription, sub) {
			out[sub] = n
		}
	}
	return out, nil
}
