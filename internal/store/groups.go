package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// This file implements the groups part of access.Tx: groups, members,
// group assignments and exclusions, seat sources and waiting lists.

// ---- locks ----

// LockSubscriptions takes the subscriptions' row locks in id order. SQLite's
// single writer holds every lock already.
func (tx *Tx) LockSubscriptions(ctx context.Context, accountID int64, ids []int64) error {
	return tx.lockRows(ctx, "subscriptions", accountID, ids)
}

// LockGroups takes the groups' row locks in id order.
func (tx *Tx) LockGroups(ctx context.Context, accountID int64, ids []int64) error {
	return tx.lockRows(ctx, "user_groups", accountID, ids)
}

func (tx *Tx) lockRows(ctx context.Context, table string, accountID int64, ids []int64) error {
	if tx.engine != Postgres || len(ids) == 0 {
		return nil
	}
	// ORDER BY makes the lock order the id order whatever the plan. NO KEY
	// UPDATE is the lock an UPDATE of seats_used takes; unlike FOR UPDATE it
	// lets other transactions insert rows referencing these (foreign key
	// checks take KEY SHARE), which would otherwise close lock cycles.
	rows, err := tx.query(ctx, "SELECT id FROM "+table+" WHERE account_id = ? AND id IN ("+placeholders(len(ids))+") ORDER BY id FOR NO KEY UPDATE",
		append([]any{accountID}, int64Args(ids)...)...)
	if err == nil {
		err = rows.Close()
	}
	if err != nil {
		return fmt.Errorf("lock %s %v: %w", table, ids, err)
	}
	return nil
}

// ---- groups ----

const groupColumns = `g.id, g.account_id, g.name, g.description, COALESCE(g.external_id, ''), g.synced, g.created_at, g.updated_at,
	(SELECT COUNT(*) FROM group_members m WHERE m.account_id = g.account_id AND m.group_id = g.id)`

func scanGroup(row interface{ Scan(...any) error }) (usher.Group, error) {
	var g usher.Group
	var created, updated int64
	err := row.Scan(&g.ID, &g.AccountID, &g.Name, &g.Description, &g.ExternalID, &g.Synced, &created, &updated, &g.MemberCount)
	g.CreatedAt, g.UpdatedAt = fromMillis(created), fromMillis(updated)
	return g, err
}

func groupConflict(g usher.Group) error {
	return usher.Errorf(usher.ECONFLICT, "a group named %q or with external id %q already exists", g.Name, g.ExternalID)
}

// CreateGroup stores g and sets its ID.
func (tx *Tx) CreateGroup(ctx context.Context, g *usher.Group) error {
	err := tx.queryRow(ctx, `
		INSERT INTO user_groups (account_id, name, name_key, description, external_id, synced, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		g.AccountID, g.Name, nameKey(g.Name), g.Description, nullString(g.ExternalID), g.Synced, millis(g.CreatedAt), millis(g.UpdatedAt)).Scan(&g.ID)
	switch {
	case isUniqueViolation(err):
		return groupConflict(*g)
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "account %d not found", g.AccountID)
	case err != nil:
		return fmt.Errorf("create group %s: %w", g.Name, err)
	}
	return nil
}

func (tx *Tx) groupWhere(ctx context.Context, what string, where string, args ...any) (usher.Group, error) {
	g, err := scanGroup(tx.queryRow(ctx, "SELECT "+groupColumns+" FROM user_groups g WHERE "+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return g, usher.Errorf(usher.ENOTFOUND, "group %s not found", what)
	} else if err != nil {
		return g, fmt.Errorf("get group %s: %w", what, err)
	}
	return g, nil
}

// GroupByID returns one group of the account.
func (tx *Tx) GroupByID(ctx context.Context, accountID, id int64) (usher.Group, error) {
	return tx.groupWhere(ctx, fmt.Sprint(id), "g.account_id = ? AND g.id = ?", accountID, id)
}

// GroupByName returns the group of the account with this name, in any case.
func (tx *Tx) GroupByName(ctx context.Context, accountID int64, name string) (usher.Group, error) {
	return tx.groupWhere(ctx, name, "g.account_id = ? AND g.name_key = ?", accountID, nameKey(name))
}

// GroupByExternalID returns the provisioned group with this external id.
func (tx *Tx) GroupByExternalID(ctx context.Context, accountID int64, externalID string) (usher.Group, error) {
	return tx.groupWhere(ctx, externalID, "g.account_id = ? AND g.external_id = ?", accountID, externalID)
}

// ListGroups returns a page of groups ordered by (lower(name), id), served
// by the unique index on (account_id, name_key).
func (tx *Tx) ListGroups(ctx context.Context, accountID int64, f access.GroupFilter) ([]usher.Group, error) {
	var q strings.Builder
	args := []any{accountID}
	q.WriteString("SELECT " + groupColumns + " FROM user_groups g WHERE g.account_id = ?")
	if f.AfterName != "" || f.AfterID != 0 {
		q.WriteString(" AND g.name_key >= ? AND (g.name_key > ? OR g.id > ?)")
		args = append(args, f.AfterName, f.AfterName, f.AfterID)
	}
	if f.Query != "" {
		q.WriteString(` AND g.name_key LIKE ? ESCAPE '\'`)
		args = append(args, "%"+escapeLike(strings.ToLower(f.Query))+"%")
	}
	q.WriteString(" ORDER BY g.name_key, g.id")
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	rows, err := tx.query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	out, err := collect(rows, scanGroup)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return out, nil
}

// UpdateGroup stores g's name, description and external id.
func (tx *Tx) UpdateGroup(ctx context.Context, g usher.Group) error {
	n, err := affected(tx.exec(ctx, `
		UPDATE user_groups SET name = ?, name_key = ?, description = ?, external_id = ?, updated_at = ?
		WHERE account_id = ? AND id = ?`,
		g.Name, nameKey(g.Name), g.Description, nullString(g.ExternalID), millis(g.UpdatedAt), g.AccountID, g.ID))
	switch {
	case isUniqueViolation(err):
		return groupConflict(g)
	case err != nil:
		return fmt.Errorf("update group %d: %w", g.ID, err)
	case n == 0:
		return usher.Errorf(usher.ENOTFOUND, "group %d not found", g.ID)
	}
	return nil
}

// DeleteGroup removes the group; members, assignments, exclusions and seat
// sources go with it (ON DELETE CASCADE).
func (tx *Tx) DeleteGroup(ctx context.Context, accountID, id int64) error {
	n, err := affected(tx.exec(ctx, "DELETE FROM user_groups WHERE account_id = ? AND id = ?", accountID, id))
	if err != nil {
		return fmt.Errorf("delete group %d: %w", id, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "group %d not found", id)
	}
	return nil
}

// ---- members ----

// AddGroupMember adds the user to the group, reporting false if a member already.
func (tx *Tx) AddGroupMember(ctx context.Context, accountID, groupID, userID int64, at time.Time) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		INSERT INTO group_members (account_id, group_id, user_id, added_at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, accountID, groupID, userID, millis(at)))
	if isForeignKeyViolation(err) {
		return false, usher.Errorf(usher.ENOTFOUND, "group %d or user %d not found", groupID, userID)
	} else if err != nil {
		return false, fmt.Errorf("add user %d to group %d: %w", userID, groupID, err)
	}
	tx.markChanged(accountID)
	return n == 1, nil
}

// RemoveGroupMember takes the user out of the group, reporting false if not a member.
func (tx *Tx) RemoveGroupMember(ctx context.Context, accountID, groupID, userID int64) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		DELETE FROM group_members WHERE account_id = ? AND group_id = ? AND user_id = ?`, accountID, groupID, userID))
	if err != nil {
		return false, fmt.Errorf("remove user %d from group %d: %w", userID, groupID, err)
	}
	return n == 1, nil
}

// GroupMembers lists a page of members ordered by (lower(name), id).
func (tx *Tx) GroupMembers(ctx context.Context, accountID, groupID int64, f access.UserFilter) ([]usher.GroupMember, error) {
	var q strings.Builder
	args := []any{accountID, groupID}
	q.WriteString(`
		SELECT u.id, u.account_id, u.email, u.name, u.status, u.created_at, u.updated_at, m.added_at
		FROM group_members m JOIN users u ON u.account_id = m.account_id AND u.id = m.user_id
		WHERE m.account_id = ? AND m.group_id = ?`)
	if f.AfterName != "" || f.AfterID != 0 {
		q.WriteString(" AND u.name_key >= ? AND (u.name_key > ? OR u.id > ?)")
		args = append(args, f.AfterName, f.AfterName, f.AfterID)
	}
	q.WriteString(" ORDER BY u.name_key, u.id")
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	rows, err := tx.query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("members of group %d: %w", groupID, err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (usher.GroupMember, error) {
		var m usher.GroupMember
		var created, updated, added int64
		err := row.Scan(&m.ID, &m.AccountID, &m.Email, &m.Name, &m.Status, &created, &updated, &added)
		m.CreatedAt, m.UpdatedAt, m.AddedAt = fromMillis(created), fromMillis(updated), fromMillis(added)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("members of group %d: %w", groupID, err)
	}
	return out, nil
}

// GroupMemberIDs lists every member of the group, longest-standing first.
func (tx *Tx) GroupMemberIDs(ctx context.Context, accountID, groupID int64) ([]int64, error) {
	return tx.ids(ctx, fmt.Sprintf("members of group %d", groupID), `
		SELECT user_id FROM group_members WHERE account_id = ? AND group_id = ?
		ORDER BY added_at, user_id`, accountID, groupID)
}

func (tx *Tx) ids(ctx context.Context, what, query string, args ...any) ([]int64, error) {
	rows, err := tx.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (int64, error) {
		var id int64
		err := row.Scan(&id)
		return id, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// GroupsOfUser lists the user's groups by name.
func (tx *Tx) GroupsOfUser(ctx context.Context, accountID, userID int64) ([]usher.Group, error) {
	rows, err := tx.query(ctx, "SELECT "+groupColumns+` FROM user_groups g
		WHERE g.account_id = ? AND g.id IN (SELECT group_id FROM group_members WHERE account_id = ? AND user_id = ?)
		ORDER BY g.name_key, g.id`, accountID, accountID, userID)
	if err != nil {
		return nil, fmt.Errorf("groups of user %d: %w", userID, err)
	}
	out, err := collect(rows, scanGroup)
	if err != nil {
		return nil, fmt.Errorf("groups of user %d: %w", userID, err)
	}
	return out, nil
}

// GroupSeatCounts counts the seats held through the group per subscription.
func (tx *Tx) GroupSeatCounts(ctx context.Context, accountID, groupID int64) (map[int64]int, error) {
	rows, err := tx.query(ctx, `
		SELECT subscription_id, COUNT(*) FROM seat_group_sources
		WHERE account_id = ? AND group_id = ? GROUP BY subscription_id`, accountID, groupID)
	if err != nil {
		return nil, fmt.Errorf("seats of group %d: %w", groupID, err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var sub int64
		var n int
		if err := rows.Scan(&sub, &n); err != nil {
			return nil, fmt.Errorf("seats of group %d: %w", groupID, err)
		}
		out[sub] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("seats of group %d: %w", groupID, err)
	}
	return out, nil
}

// WaitingCounts counts waiters per subscription, through the index
// seat_waiters_in_order.
func (tx *Tx) WaitingCounts(ctx context.Context, accountID int64) (map[int64]int, error) {
	rows, err := tx.query(ctx, `
		SELECT subscription_id, COUNT(*) FROM seat_waiters
		WHERE account_id = ? GROUP BY subscription_id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("count waiters: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var sub int64
		var n int
		if err := rows.Scan(&sub, &n); err != nil {
			return nil, fmt.Errorf("count waiters: %w", err)
		}
		out[sub] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count waiters: %w", err)
	}
	return out, nil
}

// ---- group assignments ----

func codesJSON(codes []string) string {
	if codes == nil {
		codes = []string{}
	}
	b, _ := json.Marshal(codes) // a []string always marshals
	return string(b)
}

// SetGroupAssignment creates or replaces the group's assignment of a subscription.
func (tx *Tx) SetGroupAssignment(ctx context.Context, ga usher.GroupAssignment) error {
	_, err := tx.exec(ctx, `
		INSERT INTO group_assignments (account_id, group_id, subscription_id, services, benefits, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id, group_id, subscription_id) DO UPDATE SET services = excluded.services, benefits = excluded.benefits`,
		ga.AccountID, ga.GroupID, ga.SubscriptionID, codesJSON(ga.Services), codesJSON(ga.Benefits), millis(ga.CreatedAt))
	if isForeignKeyViolation(err) {
		return usher.Errorf(usher.ENOTFOUND, "group %d or subscription %d not found", ga.GroupID, ga.SubscriptionID)
	} else if err != nil {
		return fmt.Errorf("assign group %d to subscription %d: %w", ga.GroupID, ga.SubscriptionID, err)
	}
	tx.markChanged(ga.AccountID)
	return nil
}

// DeleteGroupAssignment removes it and, by cascade, its exclusions. The
// seat sources it gave stay until the caller settles the members' seats.
func (tx *Tx) DeleteGroupAssignment(ctx context.Context, accountID, groupID, subscriptionID int64) error {
	n, err := affected(tx.exec(ctx, `
		DELETE FROM group_assignments WHERE account_id = ? AND group_id = ? AND subscription_id = ?`,
		accountID, groupID, subscriptionID))
	if err != nil {
		return fmt.Errorf("unassign group %d from subscription %d: %w", groupID, subscriptionID, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "group %d is not assigned subscription %d", groupID, subscriptionID)
	}
	return nil
}

const groupAssignmentColumns = "ga.account_id, ga.group_id, ga.subscription_id, ga.services, ga.benefits, ga.created_at"

func scanGroupAssignment(row interface{ Scan(...any) error }) (usher.GroupAssignment, error) {
	var ga usher.GroupAssignment
	var services, benefits string
	var created int64
	if err := row.Scan(&ga.AccountID, &ga.GroupID, &ga.SubscriptionID, &services, &benefits, &created); err != nil {
		return ga, err
	}
	ga.CreatedAt = fromMillis(created)
	if err := json.Unmarshal([]byte(services), &ga.Services); err != nil {
		return ga, fmt.Errorf("group %d services: %w", ga.GroupID, err)
	}
	if err := json.Unmarshal([]byte(benefits), &ga.Benefits); err != nil {
		return ga, fmt.Errorf("group %d benefits: %w", ga.GroupID, err)
	}
	return ga, nil
}

// GroupAssignments lists the group's assignments by subscription id.
func (tx *Tx) GroupAssignments(ctx context.Context, accountID, groupID int64) ([]usher.GroupAssignment, error) {
	rows, err := tx.query(ctx, "SELECT "+groupAssignmentColumns+` FROM group_assignments ga
		WHERE ga.account_id = ? AND ga.group_id = ? ORDER BY ga.subscription_id`, accountID, groupID)
	if err != nil {
		return nil, fmt.Errorf("assignments of group %d: %w", groupID, err)
	}
	out, err := collect(rows, scanGroupAssignment)
	if err != nil {
		return nil, fmt.Errorf("assignments of group %d: %w", groupID, err)
	}
	return out, nil
}

// GroupGrantsFor lists the assignments of the subscription that reach the
// user through their groups, by group id.
func (tx *Tx) GroupGrantsFor(ctx context.Context, accountID, userID, subscriptionID int64) ([]usher.GroupAssignment, error) {
	rows, err := tx.query(ctx, "SELECT "+groupAssignmentColumns+` FROM group_assignments ga
		JOIN group_members m ON m.account_id = ga.account_id AND m.group_id = ga.group_id
		WHERE ga.account_id = ? AND ga.subscription_id = ? AND m.user_id = ?
		  AND NOT EXISTS (SELECT 1 FROM group_exclusions e
		                  WHERE e.account_id = ga.account_id AND e.group_id = ga.group_id
		                    AND e.subscription_id = ga.subscription_id AND e.user_id = m.user_id)
		ORDER BY ga.group_id`, accountID, subscriptionID, userID)
	if err != nil {
		return nil, fmt.Errorf("group grants of user %d: %w", userID, err)
	}
	out, err := collect(rows, scanGroupAssignment)
	if err != nil {
		return nil, fmt.Errorf("group grants of user %d: %w", userID, err)
	}
	return out, nil
}

// GroupSubscriptionsOfUser lists the subscriptions the user's groups are assigned.
func (tx *Tx) GroupSubscriptionsOfUser(ctx context.Context, accountID, userID int64) ([]int64, error) {
	return tx.ids(ctx, fmt.Sprintf("group subscriptions of user %d", userID), `
		SELECT DISTINCT ga.subscription_id FROM group_assignments ga
		JOIN group_members m ON m.account_id = ga.account_id AND m.group_id = ga.group_id
		WHERE ga.account_id = ? AND m.user_id = ?
		ORDER BY ga.subscription_id`, accountID, userID)
}

// ---- exclusions ----

// InsertExclusion keeps the user from the group's assignment, reporting
// false if they were kept from it already.
func (tx *Tx) InsertExclusion(ctx context.Context, e usher.GroupExclusion) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		INSERT INTO group_exclusions (account_id, group_id, subscription_id, user_id, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, e.AccountID, e.GroupID, e.SubscriptionID, e.UserID, millis(e.CreatedAt)))
	if isForeignKeyViolation(err) {
		return false, usher.Errorf(usher.ENOTFOUND, "group %d is not assigned subscription %d", e.GroupID, e.SubscriptionID)
	} else if err != nil {
		return false, fmt.Errorf("exclude user %d from group %d: %w", e.UserID, e.GroupID, err)
	}
	return n == 1, nil
}

// DeleteExclusion ends an exclusion.
func (tx *Tx) DeleteExclusion(ctx context.Context, accountID, groupID, subscriptionID, userID int64) error {
	n, err := affected(tx.exec(ctx, `
		DELETE FROM group_exclusions WHERE account_id = ? AND group_id = ? AND subscription_id = ? AND user_id = ?`,
		accountID, groupID, subscriptionID, userID))
	if err != nil {
		return fmt.Errorf("include user %d in group %d: %w", userID, groupID, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "user %d is not excluded from group %d's seat of subscription %d", userID, groupID, subscriptionID)
	}
	return nil
}

// GroupExclusions lists the group's exclusions by subscription and email.
func (tx *Tx) GroupExclusions(ctx context.Context, accountID, groupID int64) ([]usher.GroupExclusion, error) {
	rows, err := tx.query(ctx, `
		SELECT e.account_id, e.group_id, e.subscription_id, e.user_id, u.email, e.created_at
		FROM group_exclusions e JOIN users u ON u.account_id = e.account_id AND u.id = e.user_id
		WHERE e.account_id = ? AND e.group_id = ?
		ORDER BY e.subscription_id, u.email`, accountID, groupID)
	if err != nil {
		return nil, fmt.Errorf("exclusions of group %d: %w", groupID, err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (usher.GroupExclusion, error) {
		var e usher.GroupExclusion
		var created int64
		err := row.Scan(&e.AccountID, &e.GroupID, &e.SubscriptionID, &e.UserID, &e.Email, &created)
		e.CreatedAt = fromMillis(created)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("exclusions of group %d: %w", groupID, err)
	}
	return out, nil
}

// ---- seat sources ----

func (tx *Tx) insertSeatGroups(ctx context.Context, accountID, userID, subscriptionID int64, groups []int64) error {
	if len(groups) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(groups))
	for _, g := range groups {
		args = append(args, accountID, userID, subscriptionID, g)
	}
	_, err := tx.exec(ctx, `
		INSERT INTO seat_group_sources (account_id, user_id, subscription_id, group_id)
		VALUES `+valueRows(len(groups), 4), args...)
	if isUniqueViolation(err) {
		return usher.Errorf(usher.ECONFLICT, "a group is listed twice")
	}
	return err
}

// SetSeatSources replaces how a held seat reaches its holder.
func (tx *Tx) SetSeatSources(ctx context.Context, accountID, userID, subscriptionID int64, direct bool, groups []int64) error {
	n, err := affected(tx.exec(ctx, `
		UPDATE assignments SET direct = ? WHERE account_id = ? AND user_id = ? AND subscription_id = ?`,
		direct, accountID, userID, subscriptionID))
	if err != nil {
		return fmt.Errorf("set sources of user %d's seat of subscription %d: %w", userID, subscriptionID, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "user %d holds no seat of subscription %d", userID, subscriptionID)
	}
	_, err = tx.exec(ctx, `
		DELETE FROM seat_group_sources WHERE account_id = ? AND user_id = ? AND subscription_id = ?`,
		accountID, userID, subscriptionID)
	if err == nil {
		err = tx.insertSeatGroups(ctx, accountID, userID, subscriptionID, groups)
	}
	if err != nil {
		return fmt.Errorf("set sources of user %d's seat of subscription %d: %w", userID, subscriptionID, err)
	}
	tx.markChanged(accountID)
	return nil
}

// ---- waiting lists ----

// AddWaiter puts the user at the end of the subscription's waiting list.
func (tx *Tx) AddWaiter(ctx context.Context, accountID, subscriptionID, userID int64, since time.Time) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		INSERT INTO seat_waiters (account_id, subscription_id, user_id, since) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, accountID, subscriptionID, userID, millis(since)))
	if isForeignKeyViolation(err) {
		return false, usher.Errorf(usher.ENOTFOUND, "user %d or subscription %d not found", userID, subscriptionID)
	} else if err != nil {
		return false, fmt.Errorf("user %d waits for subscription %d: %w", userID, subscriptionID, err)
	}
	tx.markChanged(accountID)
	return n == 1, nil
}

// DeleteWaiter takes the user off the subscription's waiting list.
func (tx *Tx) DeleteWaiter(ctx context.Context, accountID, subscriptionID, userID int64) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		DELETE FROM seat_waiters WHERE account_id = ? AND subscription_id = ? AND user_id = ?`,
		accountID, subscriptionID, userID))
	if err != nil {
		return false, fmt.Errorf("user %d stops waiting for subscription %d: %w", userID, subscriptionID, err)
	}
	return n == 1, nil
}

// NextWaiter returns the user waiting longest for the subscription, served
// by seat_waiters_in_order.
func (tx *Tx) NextWaiter(ctx context.Context, accountID, subscriptionID int64) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `
		SELECT user_id FROM seat_waiters WHERE account_id = ? AND subscription_id = ?
		ORDER BY id LIMIT 1`, accountID, subscriptionID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, usher.Errorf(usher.ENOTFOUND, "nobody waits for subscription %d", subscriptionID)
	} else if err != nil {
		return 0, fmt.Errorf("next waiter of subscription %d: %w", subscriptionID, err)
	}
	return id, nil
}

// Waiters lists waiting users, per subscription oldest first, with their
// place in the subscription's list.
func (tx *Tx) Waiters(ctx context.Context, accountID int64, f access.WaiterFilter) ([]usher.Waiter, error) {
	var q strings.Builder
	args := []any{accountID}
	q.WriteString(`
		SELECT w.user_id, u.email, u.name, w.subscription_id, w.since,
		       (SELECT COUNT(*) FROM seat_waiters o
		        WHERE o.account_id = w.account_id AND o.subscription_id = w.subscription_id AND o.id <= w.id)
		FROM seat_waiters w JOIN users u ON u.account_id = w.account_id AND u.id = w.user_id
		WHERE w.account_id = ?`)
	if f.SubscriptionID != 0 {
		q.WriteString(" AND w.subscription_id = ?")
		args = append(args, f.SubscriptionID)
	}
	if f.UserID != 0 {
		q.WriteString(" AND w.user_id = ?")
		args = append(args, f.UserID)
	}
	if f.GroupID != 0 {
		// Those this group's assignments would seat: members, not excluded.
		q.WriteString(` AND EXISTS (
			SELECT 1 FROM group_assignments ga JOIN group_members m ON m.account_id = ga.account_id AND m.group_id = ga.group_id
			WHERE ga.account_id = w.account_id AND ga.group_id = ? AND ga.subscription_id = w.subscription_id AND m.user_id = w.user_id
			  AND NOT EXISTS (SELECT 1 FROM group_exclusions e WHERE e.account_id = ga.account_id AND e.group_id = ga.group_id
			                  AND e.subscription_id = ga.subscription_id AND e.user_id = m.user_id))`)
		args = append(args, f.GroupID)
	}
	q.WriteString(" ORDER BY w.subscription_id, w.id")
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	rows, err := tx.query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list waiters: %w", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (usher.Waiter, error) {
		var w usher.Waiter
		var since int64
		err := row.Scan(&w.UserID, &w.Email, &w.Name, &w.SubscriptionID, &since, &w.Position)
		w.Since = fromMillis(since)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("list waiters: %w", err)
	}
	return out, nil
}
