package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/usher"
)

// ImportRow is one line of a user import: a user, the groups they join, the
// roles they get and the subscriptions they get a direct seat of. An import
// only adds: it never removes memberships, roles or seats.
type ImportRow struct {
	Line          int
	Email         string
	Name          string // "" keeps an existing user's name
	Groups        []string
	Roles         []ImportRole
	Subscriptions []ImportSeat
}

// ImportRole is a role to grant; Contract names the subscription of a
// per-subscription role.
type ImportRole struct {
	Role     usher.Role
	Contract string
}

// ImportSeat is a direct seat to give, by contract number, with services.
type ImportSeat struct {
	Contract string
	Services []string
}

// ImportChange is what an import did (or, in a dry run, would do) for one line.
type ImportChange struct {
	Line    int      `json:"line"`
	Email   string   `json:"email"`
	Changes []string `json:"changes"`
}

// ImportResult counts what an import did or would do.
type ImportResult struct {
	DryRun        bool           `json:"dry_run"`
	Lines         int            `json:"lines"`
	UsersCreated  int            `json:"users_created"`
	UsersUpdated  int            `json:"users_updated"`
	GroupsCreated int            `json:"groups_created"`
	MembersAdded  int            `json:"members_added"`
	RolesGranted  int            `json:"roles_granted"`
	SeatsAssigned int            `json:"seats_assigned"`
	Waiting       int            `json:"waiting"`
	Changes       []ImportChange `json:"changes"`
}

// MaxImportRows bounds one import, which runs in one transaction.
const MaxImportRows = 100_000

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// ImportUsers creates or updates users, adds them to groups (creating
// groups that do not exist), grants roles and assigns direct seats, all in
// one transaction: every line is checked and any problem — named by line —
// changes nothing. A dry run does all of it and rolls back, so it reports
// exactly what would change, seats and waiting lists included. progress, if
// not nil, is called after each line.
func (s *Service) ImportUsers(ctx context.Context, a usher.Actor, rows []ImportRow, dryRun bool, progress func(done, total int)) (ImportResult, error) {
	var res ImportResult
	if len(rows) == 0 {
		return res, (&usher.Problems{{Field: "file", Reason: "has no user lines"}}).Err()
	}
	if len(rows) > MaxImportRows {
		return res, (&usher.Problems{{Field: "file", Reason: fmt.Sprintf("has %d lines; at most %d per import", len(rows), MaxImportRows)}}).Err()
	}
	if !Can(a, ManageUsers, 0) {
		return res, forbidden("import users")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		res = ImportResult{DryRun: dryRun, Lines: len(rows)}
		if err := s.importRows(ctx, tx, a, rows, &res, progress); err != nil {
			return err
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return ImportResult{}, fmt.Errorf("import users: %w", err)
	}
	if res.Changes == nil {
		res.Changes = []ImportChange{}
	}
	return res, nil
}

func lineField(line int, field string) string { return fmt.Sprintf("line %d: %s", line, field) }

func (s *Service) importRows(ctx context.Context, tx Tx, a usher.Actor, rows []ImportRow, res *ImportResult, progress func(done, total int)) error {
	subs, err := tx.ListSubscriptions(ctx, a.AccountID, SubscriptionFilter{Limit: MaxSubscriptionsPerAccount})
	if err != nil {
		return err
	}
	byContract := map[string]usher.Subscription{}
	for _, sub := range subs {
		byContract[strings.ToLower(sub.ContractNumber)] = sub
	}
	// Check every line before changing anything, so the answer lists every
	// problem at once.
	var p usher.Problems
	seen := map[string]int{}
	groupNames := map[string]string{} // lower(name) → name as first written
	for i := range rows {
		r := &rows[i]
		r.Email = usher.NormalizeEmail(r.Email)
		r.Name = strings.TrimSpace(r.Name)
		if !usher.ValidEmail(r.Email) {
			p.Add(lineField(r.Line, "email"), fmt.Sprintf("%q is not an email address", r.Email))
		} else if first, dup := seen[r.Email]; dup {
			p.Add(lineField(r.Line, "email"), fmt.Sprintf("%s is also on line %d", r.Email, first))
		}
		seen[r.Email] = r.Line
		if reason := usher.TextProblem(r.Name); reason != "" {
			p.Add(lineField(r.Line, "name"), reason)
		} else if utf8.RuneCountInString(r.Name) > 200 {
			p.Add(lineField(r.Line, "name"), "must be at most 200 characters")
		}
		for j, g := range r.Groups {
			g = strings.TrimSpace(g)
			r.Groups[j] = g
			if reason := usher.TextProblem(g); reason != "" {
				p.Add(lineField(r.Line, fmt.Sprintf("groups[%d]", j)), reason)
			} else if g == "" || utf8.RuneCountInString(g) > 200 {
				p.Add(lineField(r.Line, fmt.Sprintf("groups[%d]", j)), "a group name is 1 to 200 characters")
			} else if _, ok := groupNames[strings.ToLower(g)]; !ok {
				groupNames[strings.ToLower(g)] = g
			}
		}
		for j, role := range r.Roles {
			f := lineField(r.Line, fmt.Sprintf("roles[%d]", j))
			g := usher.RoleGrant{Role: role.Role}
			if role.Contract != "" {
				sub, ok := byContract[strings.ToLower(role.Contract)]
				if !ok {
					p.Add(f, fmt.Sprintf("no contract numbered %s", role.Contract))
					continue
				}
				g.SubscriptionID = sub.ID
			}
			if err := validateGrant(g); err != nil {
				p.Add(f, fieldReasons(err))
			} else if !Can(a, grantAction(g.Role), g.SubscriptionID) {
				return forbidden("grant " + string(g.Role))
			}
		}
		for j, seat := range r.Subscriptions {
			f := lineField(r.Line, fmt.Sprintf("subscriptions[%d]", j))
			sub, ok := byContract[strings.ToLower(seat.Contract)]
			if !ok {
				p.Add(f, fmt.Sprintf("no contract numbered %s", seat.Contract))
				continue
			}
			if !Can(a, ManageSeats, sub.ID) {
				return usher.Errorf(usher.EFORBIDDEN, "you may not change seats of contract %s", sub.ContractNumber)
			}
			var sp usher.Problems
			validateServices(&sp, "", sub, true, seat.Services)
			for _, fe := range sp {
				p.Add(f, fe.Reason)
			}
		}
	}
	if err := p.Err(); err != nil {
		return err
	}
	if len(groupNames) > 0 && !Can(a, ManageGroups, 0) {
		return forbidden("add users to groups")
	}

	// Lock the groups named and the subscriptions touched, groups first.
	groups := map[string]usher.Group{}
	var gids, sids []int64
	for key, name := range groupNames {
		g, err := tx.GroupByName(ctx, a.AccountID, name)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			continue
		} else if err != nil {
			return err
		}
		groups[key] = g
		gids = append(gids, g.ID)
		gas, err := tx.GroupAssignments(ctx, a.AccountID, g.ID)
		if err != nil {
			return err
		}
		for _, ga := range gas {
			sids = append(sids, ga.SubscriptionID)
		}
	}
	for _, r := range rows {
		for _, seat := range r.Subscriptions {
			sids = append(sids, byContract[strings.ToLower(seat.Contract)].ID)
		}
	}
	if err := tx.LockGroups(ctx, a.AccountID, sortedUnique(gids)); err != nil {
		return err
	}
	if err := tx.LockSubscriptions(ctx, a.AccountID, sortedUnique(sids)); err != nil {
		return err
	}

	for i, r := range rows {
		ch := ImportChange{Line: r.Line, Email: r.Email, Changes: []string{}}
		if err := s.importRow(ctx, tx, a, r, byContract, groups, res, &ch, &p); err != nil {
			return err
		}
		if len(ch.Changes) > 0 {
			res.Changes = append(res.Changes, ch)
		}
		if progress != nil {
			progress(i+1, len(rows))
		}
	}
	return p.Err()
}

// fieldReasons joins the reasons of a validation error.
func fieldReasons(err error) string {
	var out []string
	for _, f := range usher.ErrorFields(err) {
		out = append(out, f.Field+" "+f.Reason)
	}
	return strings.Join(out, "; ")
}

// importRow applies one line. Problems a line runs into (no seat left, a
// synced group) are collected in p; anything else aborts.
func (s *Service) importRow(ctx context.Context, tx Tx, a usher.Actor, r ImportRow, byContract map[string]usher.Subscription,
	groups map[string]usher.Group, res *ImportResult, ch *ImportChange, p *usher.Problems) error {
	now := s.Now()
	u, err := tx.UserByEmail(ctx, a.AccountID, r.Email)
	switch {
	case usher.ErrorCode(err) == usher.ENOTFOUND:
		u = usher.User{AccountID: a.AccountID, Email: r.Email, Name: r.Name, Status: usher.UserActive, CreatedAt: now, UpdatedAt: now}
		if u.Name == "" {
			u.Name = u.Email
		}
		if err := tx.CreateUser(ctx, &u); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "user.create", u, 0, nil, u); err != nil {
			return err
		}
		res.UsersCreated++
		ch.Changes = append(ch.Changes, "create user "+u.Name)
	case err != nil:
		return err
	case r.Name != "" && r.Name != u.Name:
		if err := primaryAdminTargetGuard(ctx, tx, a, u.ID, "rename"); err != nil {
			return err
		}
		before := u
		u.Name, u.UpdatedAt = r.Name, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "user.update", u, 0, before, u); err != nil {
			return err
		}
		res.UsersUpdated++
		ch.Changes = append(ch.Changes, fmt.Sprintf("rename %q to %q", before.Name, u.Name))
	}

	for _, name := range r.Groups {
		key := strings.ToLower(name)
		g, ok := groups[key]
		if !ok {
			g = usher.Group{AccountID: a.AccountID, Name: name, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateGroup(ctx, &g); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, a, "group.create", usher.User{}, 0, nil, groupAudit(g)); err != nil {
				return err
			}
			groups[key] = g
			res.GroupsCreated++
			ch.Changes = append(ch.Changes, "create group "+name)
		}
		if g.Synced {
			p.Add(lineField(r.Line, "groups"), fmt.Sprintf("group %s is synced from the identity provider: change its members there", g.Name))
			continue
		}
		var mr MembersResult
		if err := s.changeMembers(ctx, tx, a, g.ID, []int64{u.ID}, nil, &mr); err != nil {
			return err
		}
		if mr.Added == 0 {
			continue
		}
		res.MembersAdded++
		res.SeatsAssigned += mr.Seated
		res.Waiting += mr.Waiting
		what := "add to group " + g.Name
		switch {
		case mr.Seated > 0 && mr.Waiting > 0:
			what += fmt.Sprintf(" (%d seats, waiting for %d)", mr.Seated, mr.Waiting)
		case mr.Seated > 0:
			what += fmt.Sprintf(" (%d %s)", mr.Seated, plural(mr.Seated, "seat", "seats"))
		case mr.Waiting > 0:
			what += fmt.Sprintf(" (waiting for %d)", mr.Waiting)
		}
		ch.Changes = append(ch.Changes, what)
	}

	held, err := tx.RolesOf(ctx, a.AccountID, u.ID)
	if err != nil {
		return err
	}
	for _, role := range r.Roles {
		g := usher.RoleGrant{UserID: u.ID, Role: role.Role}
		if role.Contract != "" {
			g.SubscriptionID = byContract[strings.ToLower(role.Contract)].ID
		}
		if slices.Contains(held, g) {
			continue
		}
		if err := tx.GrantRole(ctx, a.AccountID, g); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "role.grant", u, g.SubscriptionID, nil, g); err != nil {
			return err
		}
		held = append(held, g)
		res.RolesGranted++
		what := "grant " + string(g.Role)
		if role.Contract != "" {
			what += " on " + role.Contract
		}
		ch.Changes = append(ch.Changes, what)
	}

	for j, seat := range r.Subscriptions {
		sub := byContract[strings.ToLower(seat.Contract)]
		seats, err := tx.AssignmentsOfUser(ctx, a.AccountID, u.ID)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(seats, func(as usher.Assignment) bool { return as.SubscriptionID == sub.ID && as.Direct }) {
			continue
		}
		err = s.assignDirect(ctx, tx, a, u, sub, seat.Services)
		switch usher.ErrorCode(err) {
		case "":
			res.SeatsAssigned++
			ch.Changes = append(ch.Changes, "assign "+sub.ContractNumber)
		case usher.ENOSEATS, usher.ECONFLICT:
			p.Add(lineField(r.Line, fmt.Sprintf("subscriptions[%d]", j)), usher.ErrorMessage(err))
		default:
			return err
		}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
