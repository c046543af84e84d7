package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// This file implements access.Tx.

// ---- accounts ----

// CreateAccount stores a and sets its ID.
func (tx *Tx) CreateAccount(ctx context.Context, a *usher.Account) error {
	err := tx.queryRow(ctx, `
		INSERT INTO accounts (name, time_zone, new_seat_grace_days, created_at) VALUES (?, ?, ?, ?)
		RETURNING id`,
		a.Name, a.TimeZone, a.NewSeatGraceDays, millis(a.CreatedAt)).Scan(&a.ID)
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return nil
}

const accountColumns = "id, name, time_zone, new_seat_grace_days, created_at"

func scanAccount(row interface{ Scan(...any) error }) (usher.Account, error) {
	var a usher.Account
	var created int64
	err := row.Scan(&a.ID, &a.Name, &a.TimeZone, &a.NewSeatGraceDays, &created)
	a.CreatedAt = fromMillis(created)
	return a, err
}

// AccountByID returns one account.
func (tx *Tx) AccountByID(ctx context.Context, id int64) (usher.Account, error) {
	a, err := scanAccount(tx.queryRow(ctx, "SELECT "+accountColumns+" FROM accounts WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, usher.Errorf(usher.ENOTFOUND, "account %d not found", id)
	} else if err != nil {
		return a, fmt.Errorf("get account %d: %w", id, err)
	}
	return a, nil
}

// ListAccounts returns every account by id.
func (tx *Tx) ListAccounts(ctx context.Context) ([]usher.Account, error) {
	rows, err := tx.query(ctx, "SELECT "+accountColumns+" FROM accounts ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	out, err := collect(rows, scanAccount)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// ---- users ----

const userColumns = "id, account_id, email, name, status, reclaim_exempt, created_at, updated_at"

func scanUser(row interface{ Scan(...any) error }) (usher.User, error) {
	var u usher.User
	var created, updated int64
	err := row.Scan(&u.ID, &u.AccountID, &u.Email, &u.Name, &u.Status, &u.ReclaimExempt, &created, &updated)
	u.CreatedAt, u.UpdatedAt = fromMillis(created), fromMillis(updated)
	return u, err
}

// nameKey is the sort key of users: the same lower-casing the access
// service uses for its cursors, so keyset pages line up exactly.
func nameKey(name string) string { return strings.ToLower(name) }

// CreateUser stores u and sets its ID.
func (tx *Tx) CreateUser(ctx context.Context, u *usher.User) error {
	err := tx.queryRow(ctx, `
		INSERT INTO users (account_id, email, name, name_key, status, reclaim_exempt, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		u.AccountID, u.Email, u.Name, nameKey(u.Name), u.Status, u.ReclaimExempt, millis(u.CreatedAt), millis(u.UpdatedAt)).Scan(&u.ID)
	switch {
	case isUniqueViolation(err):
		return usher.Errorf(usher.ECONFLICT, "a user with email %s already exists", u.Email)
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "account %d not found", u.AccountID)
	case err != nil:
		return fmt.Errorf("create user %s: %w", u.Email, err)
	}
	return nil
}

// UserByID returns one user of the account.
func (tx *Tx) UserByID(ctx context.Context, accountID, id int64) (usher.User, error) {
	u, err := scanUser(tx.queryRow(ctx, "SELECT "+userColumns+" FROM users WHERE account_id = ? AND id = ?", accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, usher.Errorf(usher.ENOTFOUND, "user %d not found", id)
	} else if err != nil {
		return u, fmt.Errorf("get user %d: %w", id, err)
	}
	return u, nil
}

// UserByEmail returns the user of the account with this email.
func (tx *Tx) UserByEmail(ctx context.Context, accountID int64, email string) (usher.User, error) {
	u, err := scanUser(tx.queryRow(ctx, "SELECT "+userColumns+" FROM users WHERE account_id = ? AND email = ?", accountID, email))
	if errors.Is(err, sql.ErrNoRows) {
		return u, usher.Errorf(usher.ENOTFOUND, "user %s not found", email)
	} else if err != nil {
		return u, fmt.Errorf("get user %s: %w", email, err)
	}
	return u, nil
}

// ListUsers returns a page of users in the filter's order, each served by
// an index: users_by_name (name), the unique (account_id, email) index
// (email), users_by_status (status, and the status filter by name) and
// users_by_created (created). A Limit of 0 or less means no limit.
func (tx *Tx) ListUsers(ctx context.Context, accountID int64, f access.UserFilter) ([]usher.User, error) {
	where, args := userWhere(accountID, f)
	cols, after := userOrder(f)
	if after != nil {
		// A row value seeks to the cursor in the sort's index on both
		// engines; every column runs the same way, so one comparison does.
		op := ">"
		if f.Desc {
			op = "<"
		}
		where += " AND (" + strings.Join(cols, ", ") + ") " + op + " (" + placeholders(len(after)) + ")"
		args = append(args, after...)
	}
	dir := ""
	if f.Desc {
		dir = " DESC"
	}
	q := "SELECT " + userColumns + " FROM users WHERE " + where + " ORDER BY " + strings.Join(cols, dir+", ") + dir
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// CountUsers counts the users f selects, whatever its keyset and limit.
func (tx *Tx) CountUsers(ctx context.Context, accountID int64, f access.UserFilter) (int, error) {
	where, args := userWhere(accountID, f)
	var n int
	if err := tx.queryRow(ctx, "SELECT count(*) FROM users WHERE "+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// userWhere is the condition of the users f selects, keyset aside.
func userWhere(accountID int64, f access.UserFilter) (string, []any) {
	var q strings.Builder
	args := []any{accountID}
	q.WriteString("account_id = ?")
	if f.Query != "" {
		q.WriteString(` AND (name_key LIKE ? ESCAPE '\' OR lower(email) LIKE ? ESCAPE '\')`)
		pattern := "%" + escapeLike(strings.ToLower(f.Query)) + "%"
		args = append(args, pattern, pattern)
	}
	if f.Status != "" {
		q.WriteString(" AND status = ?")
		args = append(args, f.Status)
	}
	if f.Role != "" {
		q.WriteString(` AND EXISTS (SELECT 1 FROM role_grants g
			WHERE g.account_id = users.account_id AND g.user_id = users.id AND g.role = ?)`)
		args = append(args, f.Role)
	}
	if f.Product != "" {
		q.WriteString(` AND EXISTS (SELECT 1 FROM assignments a
			JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id
			JOIN products p ON p.id = s.product_id
			WHERE a.account_id = users.account_id AND a.user_id = users.id AND p.code = ?`)
		args = append(args, f.Product)
		if f.SubscriptionIDs != nil {
			if len(f.SubscriptionIDs) == 0 {
				q.WriteString(" AND 1 = 0")
			} else {
				q.WriteString(" AND s.id IN (" + placeholders(len(f.SubscriptionIDs)) + ")")
				args = append(args, int64Args(f.SubscriptionIDs)...)
			}
		}
		q.WriteString(")")
	}
	return q.String(), args
}

// userOrder is the sort's columns, ending with id, and the cursor's values
// of them; nil values when f has no cursor.
func userOrder(f access.UserFilter) (cols []string, after []any) {
	switch f.Sort {
	case access.SortUsersByEmail:
		cols, after = []string{"email", "id"}, []any{f.AfterKey, f.AfterID}
	case access.SortUsersByStatus:
		cols, after = []string{"status", "name_key", "id"}, []any{f.AfterKey, f.AfterName, f.AfterID}
	case access.SortUsersByCreated:
		cols, after = []string{"created_at", "id"}, []any{millis(f.AfterCreated), f.AfterID}
	default:
		cols, after = []string{"name_key", "id"}, []any{f.AfterName, f.AfterID}
		if f.AfterName != "" && f.AfterID == 0 {
			return cols, after
		}
	}
	if f.AfterID == 0 {
		return cols, nil
	}
	return cols, after
}

// escapeLike makes s match itself literally in a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// UpdateUser stores u's email, name and status and its UpdatedAt.
func (tx *Tx) UpdateUser(ctx context.Context, u usher.User) error {
	n, err := affected(tx.exec(ctx, `
		UPDATE users SET email = ?, name = ?, name_key = ?, status = ?, reclaim_exempt = ?, updated_at = ?
		WHERE account_id = ? AND id = ?`,
		u.Email, u.Name, nameKey(u.Name), u.Status, u.ReclaimExempt, millis(u.UpdatedAt), u.AccountID, u.ID))
	switch {
	case isUniqueViolation(err):
		return usher.Errorf(usher.ECONFLICT, "a user with email %s already exists", u.Email)
	case err != nil:
		return fmt.Errorf("update user %d: %w", u.ID, err)
	case n == 0:
		return usher.Errorf(usher.ENOTFOUND, "user %d not found", u.ID)
	}
	return nil
}

// DeleteUser removes the user; their roles, tokens, seats, services and
// benefits go with them (ON DELETE CASCADE). Seats they still hold are
// released first, so seats_used stays equal to the number of assignments.
func (tx *Tx) DeleteUser(ctx context.Context, accountID, id int64) error {
	_, err := tx.exec(ctx, `
		UPDATE subscriptions SET seats_used = seats_used - 1
		WHERE account_id = ? AND id IN (SELECT subscription_id FROM assignments WHERE account_id = ? AND user_id = ?)`,
		accountID, accountID, id)
	if err != nil {
		return fmt.Errorf("delete user %d: release seats: %w", id, err)
	}
	n, err := affected(tx.exec(ctx, "DELETE FROM users WHERE account_id = ? AND id = ?", accountID, id))
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "user %d not found", id)
	}
	return nil
}

// ---- roles ----

// GrantRole gives the user the role; granting a role twice is not an error.
func (tx *Tx) GrantRole(ctx context.Context, accountID int64, g usher.RoleGrant) error {
	if err := tx.checkUserAndSubscription(ctx, accountID, g.UserID, g.SubscriptionID); err != nil {
		return fmt.Errorf("grant role %s: %w", g.Role, err)
	}
	_, err := tx.exec(ctx, `
		INSERT INTO role_grants (account_id, user_id, role, subscription_id) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		accountID, g.UserID, g.Role, nullID(g.SubscriptionID))
	if err != nil {
		return fmt.Errorf("grant role %s to user %d: %w", g.Role, g.UserID, err)
	}
	return nil
}

// RevokeRole takes the role away.
func (tx *Tx) RevokeRole(ctx context.Context, accountID int64, g usher.RoleGrant) error {
	// COALESCE matches the expression of the unique index role_grants_key.
	n, err := affected(tx.exec(ctx, `
		DELETE FROM role_grants
		WHERE account_id = ? AND user_id = ? AND role = ? AND COALESCE(subscription_id, 0) = ?`,
		accountID, g.UserID, g.Role, g.SubscriptionID))
	if err != nil {
		return fmt.Errorf("revoke role %s from user %d: %w", g.Role, g.UserID, err)
	}
	if n == 0 {
		if g.SubscriptionID != 0 {
			return usher.Errorf(usher.ENOTFOUND, "user %d does not hold role %s on subscription %d", g.UserID, g.Role, g.SubscriptionID)
		}
		return usher.Errorf(usher.ENOTFOUND, "user %d does not hold role %s", g.UserID, g.Role)
	}
	return nil
}

func scanGrant(row interface{ Scan(...any) error }) (usher.RoleGrant, error) {
	var g usher.RoleGrant
	err := row.Scan(&g.UserID, &g.Role, &g.SubscriptionID)
	return g, err
}

// RolesOf returns the user's grants, most powerful role first.
func (tx *Tx) RolesOf(ctx context.Context, accountID, userID int64) ([]usher.RoleGrant, error) {
	rows, err := tx.query(ctx, `
		SELECT user_id, role, COALESCE(subscription_id, 0) FROM role_grants
		WHERE account_id = ? AND user_id = ?`, accountID, userID)
	if err != nil {
		return nil, fmt.Errorf("roles of user %d: %w", userID, err)
	}
	out, err := collect(rows, scanGrant)
	if err != nil {
		return nil, fmt.Errorf("roles of user %d: %w", userID, err)
	}
	sortGrants(out)
	return out, nil
}

// UserWithRoles returns the user and their grants, most powerful role
// first, in one statement: what UserByID and RolesOf answer in two. The
// scheduler reads an email's recipient this way for every email it plans
// and sends.
func (tx *Tx) UserWithRoles(ctx context.Context, accountID, userID int64) (usher.User, []usher.RoleGrant, error) {
	rows, err := tx.query(ctx, `
		SELECT u.id, u.account_id, u.email, u.name, u.status, u.reclaim_exempt, u.created_at, u.updated_at, g.role, COALESCE(g.subscription_id, 0)
		FROM users u LEFT JOIN role_grants g ON g.account_id = u.account_id AND g.user_id = u.id
		WHERE u.account_id = ? AND u.id = ?`, accountID, userID)
	if err != nil {
		return usher.User{}, nil, fmt.Errorf("get user %d with roles: %w", userID, err)
	}
	defer rows.Close()
	var (
		u      usher.User
		grants []usher.RoleGrant
		found  bool
	)
	for rows.Next() {
		var (
			created, updated int64
			role             sql.NullString
			sub              int64
		)
		if err := rows.Scan(&u.ID, &u.AccountID, &u.Email, &u.Name, &u.Status, &u.ReclaimExempt, &created, &updated, &role, &sub); err != nil {
			return usher.User{}, nil, fmt.Errorf("get user %d with roles: %w", userID, err)
		}
		u.CreatedAt, u.UpdatedAt, found = fromMillis(created), fromMillis(updated), true
		if role.Valid {
			grants = append(grants, usher.RoleGrant{UserID: u.ID, Role: usher.Role(role.String), SubscriptionID: sub})
		}
	}
	if err := rows.Err(); err != nil {
		return usher.User{}, nil, fmt.Errorf("get user %d with roles: %w", userID, err)
	}
	if !found {
		return usher.User{}, nil, usher.Errorf(usher.ENOTFOUND, "user %d not found", userID)
	}
	sortGrants(grants)
	return u, grants, nil
}

// sortGrants puts the most powerful role first.
func sortGrants(out []usher.RoleGrant) {
	slices.SortFunc(out, func(a, b usher.RoleGrant) int {
		if c := slices.Index(usher.Roles, a.Role) - slices.Index(usher.Roles, b.Role); c != 0 {
			return c
		}
		return cmp.Compare(a.SubscriptionID, b.SubscriptionID)
	})
}

// UsersWithRole lists the account's grants of role by user and subscription.
func (tx *Tx) UsersWithRole(ctx context.Context, accountID int64, role usher.Role) ([]usher.RoleGrant, error) {
	rows, err := tx.query(ctx, `
		SELECT user_id, role, COALESCE(subscription_id, 0) FROM role_grants
		WHERE account_id = ? AND role = ?
		ORDER BY user_id, COALESCE(subscription_id, 0)`, accountID, role)
	if err != nil {
		return nil, fmt.Errorf("users with role %s: %w", role, err)
	}
	out, err := collect(rows, scanGrant)
	if err != nil {
		return nil, fmt.Errorf("users with role %s: %w", role, err)
	}
	return out, nil
}

// LockRoleGrants holds the account's grants of role until the transaction
// ends, so that decisions about who holds it (the last primary admin) are
// taken one at a time. SQLite's single writer already takes them so.
func (tx *Tx) LockRoleGrants(ctx context.Context, accountID int64, role usher.Role) error {
	if tx.engine != Postgres {
		return nil
	}
	rows, err := tx.query(ctx, "SELECT 1 FROM role_grants WHERE account_id = ? AND role = ? FOR UPDATE", accountID, role)
	if err == nil {
		err = rows.Close()
	}
	if err != nil {
		return fmt.Errorf("lock %s grants: %w", role, err)
	}
	return nil
}

// checkUserAndSubscription answers ENOTFOUND unless the user, and the
// subscription when subscriptionID is not 0, belong to the account. One
// round trip.
func (tx *Tx) checkUserAndSubscription(ctx context.Context, accountID, userID, subscriptionID int64) error {
	var users, subs int
	err := tx.queryRow(ctx, `
		SELECT
			(SELECT COUNT(*) FROM users WHERE account_id = ? AND id = ?),
			(SELECT COUNT(*) FROM subscriptions WHERE account_id = ? AND id = ?)`,
		accountID, userID, accountID, subscriptionID).Scan(&users, &subs)
	switch {
	case err != nil:
		return err
	case users == 0:
		return usher.Errorf(usher.ENOTFOUND, "user %d not found", userID)
	case subscriptionID != 0 && subs == 0:
		return usher.Errorf(usher.ENOTFOUND, "subscription %d not found", subscriptionID)
	}
	return nil
}

// ---- tokens ----

// CreateToken stores t (its hash, never the token) and sets its ID.
func (tx *Tx) CreateToken(ctx context.Context, t *usher.Token) error {
	err := tx.queryRow(ctx, `
		INSERT INTO api_tokens (account_id, user_id, name, scope, hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		t.AccountID, t.UserID, t.Name, t.Scope, t.Hash, millis(t.CreatedAt), nullMillis(t.ExpiresAt)).Scan(&t.ID)
	switch {
	case isUniqueViolation(err):
		return usher.Errorf(usher.ECONFLICT, "a token with this hash already exists")
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "user %d not found", t.UserID)
	case err != nil:
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// tokenColumns are read by scanToken; t is api_tokens, u its owner in users.
const tokenColumns = "t.id, t.account_id, t.user_id, u.email, t.name, t.scope, t.hash, t.created_at, t.last_used_at, t.expires_at"

const tokenFrom = " FROM api_tokens t JOIN users u ON u.account_id = t.account_id AND u.id = t.user_id "

func scanToken(row interface{ Scan(...any) error }) (usher.Token, error) {
	var t usher.Token
	var created int64
	var used, expires sql.NullInt64
	if err := row.Scan(&t.ID, &t.AccountID, &t.UserID, &t.UserEmail, &t.Name, &t.Scope, &t.Hash, &created, &used, &expires); err != nil {
		return t, err
	}
	t.CreatedAt = fromMillis(created)
	t.LastUsedAt, t.ExpiresAt = timeOrNil(used), timeOrNil(expires)
	return t, nil
}

func nullMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: millis(*t), Valid: true}
}

func timeOrNil(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := fromMillis(ms.Int64)
	return &t
}

// TokenByHash finds a token by the hash of its secret, in any account.
func (tx *Tx) TokenByHash(ctx context.Context, hash []byte) (usher.Token, error) {
	t, err := scanToken(tx.queryRow(ctx, "SELECT "+tokenColumns+tokenFrom+"WHERE t.hash = ?", hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, usher.Errorf(usher.ENOTFOUND, "token not found")
	} else if err != nil {
		return t, fmt.Errorf("get token: %w", err)
	}
	return t, nil
}

// TokenHolder is TokenByHash with the holder's status and grants, the
// grants folded into one column ("role:subscription,…") so that a request's
// authentication is one statement.
func (tx *Tx) TokenHolder(ctx context.Context, hash []byte) (usher.Token, usher.UserStatus, []usher.RoleGrant, error) {
	agg := grantsAgg(tx.engine)
	var t usher.Token
	var status usher.UserStatus
	var grants sql.NullString
	var created int64
	var used, expires sql.NullInt64
	err := tx.queryRow(ctx, "SELECT "+tokenColumns+", u.status, (SELECT "+agg+` FROM role_grants g
		WHERE g.account_id = t.account_id AND g.user_id = t.user_id)`+tokenFrom+"WHERE t.hash = ?", hash).
		Scan(&t.ID, &t.AccountID, &t.UserID, &t.UserEmail, &t.Name, &t.Scope, &t.Hash, &created, &used, &expires, &status, &grants)
	if errors.Is(err, sql.ErrNoRows) {
		return t, "", nil, usher.Errorf(usher.ENOTFOUND, "token not found")
	} else if err != nil {
		return t, "", nil, fmt.Errorf("get token: %w", err)
	}
	t.CreatedAt = fromMillis(created)
	t.LastUsedAt, t.ExpiresAt = timeOrNil(used), timeOrNil(expires)
	out, err := parseGrants(t.UserID, grants)
	if err != nil {
		return t, "", nil, fmt.Errorf("get token: %w", err)
	}
	return t, status, out, nil
}

// parseGrants unfolds the grants of grantsAgg, sorted as RolesOf sorts them.
func parseGrants(userID int64, grants sql.NullString) ([]usher.RoleGrant, error) {
	out := []usher.RoleGrant{}
	for part := range strings.SplitSeq(grants.String, ",") {
		if part == "" {
			continue
		}
		role, sub, _ := strings.Cut(part, ":")
		id, err := strconv.ParseInt(sub, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("grant %q: %w", part, err)
		}
		out = append(out, usher.RoleGrant{UserID: userID, Role: usher.Role(role), SubscriptionID: id})
	}
	sortGrants(out)
	return out, nil
}

// TokenByID finds a token of the account; accountID 0 looks in every
// account, for operators who name a token by its id alone.
func (tx *Tx) TokenByID(ctx context.Context, accountID, id int64) (usher.Token, error) {
	t, err := scanToken(tx.queryRow(ctx, "SELECT "+tokenColumns+tokenFrom+"WHERE t.id = ? AND (? = 0 OR t.account_id = ?)", id, accountID, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return t, usher.Errorf(usher.ENOTFOUND, "token %d not found", id)
	} else if err != nil {
		return t, fmt.Errorf("get token %d: %w", id, err)
	}
	return t, nil
}

// ListTokens lists the account's tokens, of one user when userID is not 0,
// oldest first; served by api_tokens_by_user.
func (tx *Tx) ListTokens(ctx context.Context, accountID, userID int64) ([]usher.Token, error) {
	rows, err := tx.query(ctx, "SELECT "+tokenColumns+tokenFrom+"WHERE t.account_id = ? AND (? = 0 OR t.user_id = ?) ORDER BY t.id",
		accountID, userID, userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out, err := collect(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken removes a token of the account; usher.ENOTFOUND when absent.
func (tx *Tx) DeleteToken(ctx context.Context, accountID, id int64) error {
	n, err := affected(tx.exec(ctx, "DELETE FROM api_tokens WHERE account_id = ? AND id = ?", accountID, id))
	switch {
	case err != nil:
		return fmt.Errorf("delete token %d: %w", id, err)
	case n == 0:
		return usher.Errorf(usher.ENOTFOUND, "token %d not found", id)
	}
	return nil
}

// DeleteTokensOfUser removes every token of the user and says how many.
func (tx *Tx) DeleteTokensOfUser(ctx context.Context, accountID, userID int64) (int, error) {
	n, err := affected(tx.exec(ctx, "DELETE FROM api_tokens WHERE account_id = ? AND user_id = ?", accountID, userID))
	if err != nil {
		return 0, fmt.Errorf("delete tokens of user %d: %w", userID, err)
	}
	return int(n), nil
}

// TouchToken sets the token's last use to at unless it was already set at
// or after staleBefore, so that busy tokens cost one write a minute, not one
// per request.
func (tx *Tx) TouchToken(ctx context.Context, id int64, at, staleBefore time.Time) error {
	if _, err := tx.exec(ctx, "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
		millis(at), id, millis(staleBefore)); err != nil {
		return fmt.Errorf("touch token %d: %w", id, err)
	}
	return nil
}

// ---- products ----

// ListProducts returns the catalog in the order it was created, each
// product with its services.
func (tx *Tx) ListProducts(ctx context.Context) ([]usher.Product, error) {
	rows, err := tx.query(ctx, "SELECT id, code, name FROM products ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	out, err := collect(rows, scanProduct)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	ptrs := make([]*usher.Product, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	if err := tx.loadServices(ctx, ptrs); err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return out, nil
}

func scanProduct(row interface{ Scan(...any) error }) (usher.Product, error) {
	var p usher.Product
	err := row.Scan(&p.ID, &p.Code, &p.Name)
	return p, err
}

// ProductByCode returns one product with its services.
func (tx *Tx) ProductByCode(ctx context.Context, code string) (usher.Product, error) {
	p, err := scanProduct(tx.queryRow(ctx, "SELECT id, code, name FROM products WHERE code = ?", code))
	if errors.Is(err, sql.ErrNoRows) {
		return p, usher.Errorf(usher.ENOTFOUND, "product %s not found", code)
	} else if err != nil {
		return p, fmt.Errorf("get product %s: %w", code, err)
	}
	if err := tx.loadServices(ctx, []*usher.Product{&p}); err != nil {
		return p, fmt.Errorf("get product %s: %w", code, err)
	}
	return p, nil
}

// CreateProduct adds a product and its services, in order, to the catalog.
func (tx *Tx) CreateProduct(ctx context.Context, p *usher.Product) error {
	err := tx.queryRow(ctx, "INSERT INTO products (code, name) VALUES (?, ?) RETURNING id", p.Code, p.Name).Scan(&p.ID)
	if isUniqueViolation(err) {
		return usher.Errorf(usher.ECONFLICT, "product code %s already exists", p.Code)
	} else if err != nil {
		return fmt.Errorf("create product %s: %w", p.Code, err)
	}
	if len(p.Services) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(p.Services))
	for i, s := range p.Services {
		args = append(args, p.ID, s.Code, s.Name, i+1)
	}
	_, err = tx.exec(ctx, "INSERT INTO product_services (product_id, code, name, position) VALUES "+valueRows(len(p.Services), 4), args...)
	if isUniqueViolation(err) {
		return usher.Errorf(usher.ECONFLICT, "product %s lists a service twice", p.Code)
	} else if err != nil {
		return fmt.Errorf("create product %s: %w", p.Code, err)
	}
	return nil
}

// loadServices fills in the services of products with one query.
func (tx *Tx) loadServices(ctx context.Context, products []*usher.Product) error {
	if len(products) == 0 {
		return nil
	}
	byID := make(map[int64][]*usher.Product, len(products))
	var ids []int64
	for _, p := range products {
		p.Services = []usher.Service{}
		if _, ok := byID[p.ID]; !ok {
			ids = append(ids, p.ID)
		}
		byID[p.ID] = append(byID[p.ID], p)
	}
	rows, err := tx.query(ctx, `
		SELECT product_id, code, name FROM product_services
		WHERE product_id IN (`+placeholders(len(ids))+`)
		ORDER BY product_id, position`, int64Args(ids)...)
	if err != nil {
		return fmt.Errorf("load services: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var s usher.Service
		if err := rows.Scan(&id, &s.Code, &s.Name); err != nil {
			return fmt.Errorf("load services: %w", err)
		}
		for _, p := range byID[id] {
			p.Services = append(p.Services, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load services: %w", err)
	}
	return nil
}

// ---- subscriptions ----

// CreateSubscription stores s with no seat used and sets its ID. s.Product
// needs its ID; the product's services are not stored here.
func (tx *Tx) CreateSubscription(ctx context.Context, s *usher.Subscription) error {
	var exists int
	if err := tx.queryRow(ctx, "SELECT COUNT(*) FROM products WHERE id = ?", s.Product.ID).Scan(&exists); err != nil {
		return fmt.Errorf("create subscription %s: %w", s.ContractNumber, err)
	} else if exists == 0 {
		return usher.Errorf(usher.ENOTFOUND, "product %d not found", s.Product.ID)
	}
	err := tx.queryRow(ctx, `
		INSERT INTO subscriptions (account_id, product_id, plan, seats, seats_used, contract_number, term_start, term_end, price_cents, currency, created_at)
		VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		s.AccountID, s.Product.ID, s.Plan, s.Seats, s.ContractNumber, s.TermStart.String(), s.TermEnd.String(),
		priceCents(s.Price), priceCurrency(s.Price), millis(s.CreatedAt)).Scan(&s.ID)
	switch {
	case isUniqueViolation(err):
		return usher.Errorf(usher.ECONFLICT, "contract number %s already exists", s.ContractNumber)
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "account %d not found", s.AccountID)
	case err != nil:
		return fmt.Errorf("create subscription %s: %w", s.ContractNumber, err)
	}
	s.SeatsUsed = 0
	if s.Benefits == nil {
		s.Benefits = []string{}
	}
	if len(s.Benefits) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(s.Benefits))
	for _, code := range s.Benefits {
		args = append(args, s.ID, code)
	}
	_, err = tx.exec(ctx, "INSERT INTO subscription_benefits (subscription_id, code) VALUES "+valueRows(len(s.Benefits), 2), args...)
	if isUniqueViolation(err) {
		return usher.Errorf(usher.ECONFLICT, "contract %s lists a benefit twice", s.ContractNumber)
	} else if err != nil {
		return fmt.Errorf("create subscription %s: benefits: %w", s.ContractNumber, err)
	}
	return nil
}

const subscriptionSelect = `
	SELECT s.id, s.account_id, s.plan, s.seats, s.seats_used, s.contract_number,
	       s.term_start, s.term_end, s.price_cents, s.currency, s.created_at, p.id, p.code, p.name
	FROM subscriptions s JOIN products p ON p.id = s.product_id`

func scanSubscription(row interface{ Scan(...any) error }) (usher.Subscription, error) {
	var s usher.Subscription
	var start, end string
	var created, cents int64
	var currency string
	err := row.Scan(&s.ID, &s.AccountID, &s.Plan, &s.Seats, &s.SeatsUsed, &s.ContractNumber,
		&start, &end, &cents, &currency, &created, &s.Product.ID, &s.Product.Code, &s.Product.Name)
	if err != nil {
		return s, err
	}
	if currency != "" {
		s.Price = &usher.Price{Cents: cents, Currency: currency}
	}
	s.CreatedAt = fromMillis(created)
	if s.TermStart, err = parseStoredDate(start); err != nil {
		return s, fmt.Errorf("subscription %d: term_start: %w", s.ID, err)
	}
	if s.TermEnd, err = parseStoredDate(end); err != nil {
		return s, fmt.Errorf("subscription %d: term_end: %w", s.ID, err)
	}
	return s, nil
}

// parseStoredDate reads a calendar date as stored, YYYY-MM-DD, or the empty string for none.
func parseStoredDate(s string) (usher.Date, error) {
	if s == "" {
		return usher.Date{}, nil
	}
	return usher.ParseDate(s)
}

// SubscriptionByID returns one subscription with its product (and the
// product's services) and its benefits.
func (tx *Tx) SubscriptionByID(ctx context.Context, accountID, id int64) (usher.Subscription, error) {
	s, err := scanSubscription(tx.queryRow(ctx, subscriptionSelect+" WHERE s.account_id = ? AND s.id = ?", accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, usher.Errorf(usher.ENOTFOUND, "subscription %d not found", id)
	} else if err != nil {
		return s, fmt.Errorf("get subscription %d: %w", id, err)
	}
	if err := tx.loadSubscriptionDetails(ctx, []*usher.Subscription{&s}); err != nil {
		return s, fmt.Errorf("get subscription %d: %w", id, err)
	}
	return s, nil
}

// ListSubscriptions returns a page of the account's subscriptions by id,
// served by the unique index on (account_id, id). A Limit of 0 or less
// means no limit; IDs that are not nil but empty select nothing.
func (tx *Tx) ListSubscriptions(ctx context.Context, accountID int64, f access.SubscriptionFilter) ([]usher.Subscription, error) {
	if f.IDs != nil && len(f.IDs) == 0 {
		return []usher.Subscription{}, nil
	}
	var q strings.Builder
	args := []any{accountID, f.AfterID}
	q.WriteString(subscriptionSelect + " WHERE s.account_id = ? AND s.id > ?")
	if f.IDs != nil {
		q.WriteString(" AND s.id IN (" + placeholders(len(f.IDs)) + ")")
		args = append(args, int64Args(f.IDs)...)
	}
	q.WriteString(" ORDER BY s.id")
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	rows, err := tx.query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	out, err := collect(rows, scanSubscription)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	ptrs := make([]*usher.Subscription, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	if err := tx.loadSubscriptionDetails(ctx, ptrs); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return out, nil
}

// loadSubscriptionDetails fills in the product services and the benefits of
// subs: two queries however many subscriptions there are.
func (tx *Tx) loadSubscriptionDetails(ctx context.Context, subs []*usher.Subscription) error {
	if len(subs) == 0 {
		return nil
	}
	products := make([]*usher.Product, len(subs))
	byID := make(map[int64]*usher.Subscription, len(subs))
	ids := make([]int64, len(subs))
	for i, s := range subs {
		products[i] = &s.Product
		s.Benefits = []string{}
		byID[s.ID] = s
		ids[i] = s.ID
	}
	if err := tx.loadServices(ctx, products); err != nil {
		return err
	}
	rows, err := tx.query(ctx, `
		SELECT subscription_id, code FROM subscription_benefits
		WHERE subscription_id IN (`+placeholders(len(ids))+`)
		ORDER BY subscription_id, code`, int64Args(ids)...)
	if err != nil {
		return fmt.Errorf("load benefits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var code string
		if err := rows.Scan(&id, &code); err != nil {
			return fmt.Errorf("load benefits: %w", err)
		}
		byID[id].Benefits = append(byID[id].Benefits, code)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load benefits: %w", err)
	}
	return nil
}

// ---- seats ----

// LockUser takes the user's row lock (FOR NO KEY UPDATE, which foreign-key
// checks of rows referencing the user do not wait for). SQLite's single
// writer needs none.
func (tx *Tx) LockUser(ctx context.Context, accountID, userID int64) error {
	if tx.engine != Postgres {
		return nil
	}
	rows, err := tx.query(ctx, "SELECT 1 FROM users WHERE account_id = ? AND id = ? FOR NO KEY UPDATE", accountID, userID)
	if err == nil {
		err = rows.Close()
	}
	if err != nil {
		return fmt.Errorf("lock user %d: %w", userID, err)
	}
	return nil
}

// LockSeats takes the row locks of the subscriptions (their seat counters)
// in id order, then of the users' seats of them in (subscription, user)
// order. On SQLite the single writer already holds every lock there is.
// Subscriptions are locked FOR NO KEY UPDATE, as ReserveSeat's UPDATE would:
// that does not block the foreign-key checks of rows that reference them.
func (tx *Tx) LockSeats(ctx context.Context, accountID int64, subscriptionIDs, userIDs []int64) error {
	if tx.engine != Postgres || len(subscriptionIDs) == 0 {
		return nil
	}
	subs, users := sortedUnique(subscriptionIDs), sortedUnique(userIDs)
	rows, err := tx.query(ctx, `
		SELECT id FROM subscriptions WHERE account_id = ? AND id = ANY(?::bigint[])
		ORDER BY id FOR NO KEY UPDATE`, accountID, subs)
	if err == nil {
		err = rows.Close()
	}
	if err != nil {
		return fmt.Errorf("lock subscriptions: %w", err)
	}
	if len(users) == 0 {
		return nil
	}
	rows, err = tx.query(ctx, `
		SELECT 1 FROM assignments
		WHERE account_id = ? AND subscription_id = ANY(?::bigint[]) AND user_id = ANY(?::bigint[])
		ORDER BY subscription_id, user_id FOR UPDATE`, accountID, subs, users)
	if err == nil {
		err = rows.Close()
	}
	if err != nil {
		return fmt.Errorf("lock seats: %w", err)
	}
	return nil
}

func sortedUnique(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// ReserveSeat takes one free seat of the subscription. The conditional
// UPDATE is the whole concurrency story: PostgreSQL's row lock makes a
// concurrent reservation wait and re-check seats_used < seats against the
// committed row; SQLite runs one writer at a time.
func (tx *Tx) ReserveSeat(ctx context.Context, accountID, subscriptionID int64) error {
	n, err := affected(tx.exec(ctx, `
		UPDATE subscriptions SET seats_used = seats_used + 1
		WHERE account_id = ? AND id = ? AND seats_used < seats`,
		accountID, subscriptionID))
	if err != nil {
		return fmt.Errorf("reserve seat of subscription %d: %w", subscriptionID, err)
	}
	if n == 1 {
		return nil
	}
	var contract string
	err = tx.queryRow(ctx, "SELECT contract_number FROM subscriptions WHERE account_id = ? AND id = ?", accountID, subscriptionID).Scan(&contract)
	if errors.Is(err, sql.ErrNoRows) {
		return usher.Errorf(usher.ENOTFOUND, "subscription %d not found", subscriptionID)
	} else if err != nil {
		return fmt.Errorf("reserve seat of subscription %d: %w", subscriptionID, err)
	}
	return usher.Errorf(usher.ENOSEATS, "no seats available on contract %s", contract)
}

// ReleaseSeat gives one seat of the subscription back.
func (tx *Tx) ReleaseSeat(ctx context.Context, accountID, subscriptionID int64) error {
	n, err := affected(tx.exec(ctx, `
		UPDATE subscriptions SET seats_used = seats_used - 1
		WHERE account_id = ? AND id = ? AND seats_used > 0`,
		accountID, subscriptionID))
	if err != nil {
		return fmt.Errorf("release seat of subscription %d: %w", subscriptionID, err)
	}
	if n == 1 {
		return nil
	}
	var exists int
	if err := tx.queryRow(ctx, "SELECT COUNT(*) FROM subscriptions WHERE account_id = ? AND id = ?", accountID, subscriptionID).Scan(&exists); err != nil {
		return fmt.Errorf("release seat of subscription %d: %w", subscriptionID, err)
	}
	if exists == 0 {
		return usher.Errorf(usher.ENOTFOUND, "subscription %d not found", subscriptionID)
	}
	// A bug in the caller: every release pairs with a reservation.
	return fmt.Errorf("release seat of subscription %d: no seat is in use", subscriptionID)
}

// InsertAssignment records that the user holds a seat, with its services.
// It does not reserve the seat; call ReserveSeat in the same transaction.
func (tx *Tx) InsertAssignment(ctx context.Context, a usher.Assignment) error {
	_, err := tx.exec(ctx, `
		INSERT INTO assignments (account_id, user_id, subscription_id, assigned_at, direct) VALUES (?, ?, ?, ?, ?)`,
		a.AccountID, a.UserID, a.SubscriptionID, millis(a.AssignedAt), a.Direct)
	switch {
	case isUniqueViolation(err):
		return usher.Errorf(usher.ECONFLICT, "user already holds a seat of this subscription")
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "user %d or subscription %d not found", a.UserID, a.SubscriptionID)
	case err != nil:
		return fmt.Errorf("assign user %d to subscription %d: %w", a.UserID, a.SubscriptionID, err)
	}
	if err := tx.insertServices(ctx, a.AccountID, a.UserID, a.SubscriptionID, a.Services); err != nil {
		return fmt.Errorf("assign user %d to subscription %d: %w", a.UserID, a.SubscriptionID, err)
	}
	if err := tx.insertSeatGroups(ctx, a.AccountID, a.UserID, a.SubscriptionID, a.Groups); err != nil {
		return fmt.Errorf("assign user %d to subscription %d: %w", a.UserID, a.SubscriptionID, err)
	}
	tx.seats.assigned++
	return nil
}

func (tx *Tx) insertServices(ctx context.Context, accountID, userID, subscriptionID int64, services []string) error {
	if len(services) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(services))
	for _, code := range services {
		args = append(args, accountID, userID, subscriptionID, code)
	}
	_, err := tx.exec(ctx, `
		INSERT INTO assignment_services (account_id, user_id, subscription_id, service_code)
		VALUES `+valueRows(len(services), 4), args...)
	if isUniqueViolation(err) {
		return usher.Errorf(usher.ECONFLICT, "a service is listed twice")
	}
	return err
}

// DeleteAssignment removes the seat record and, by cascade, its services.
// It does not release the seat; call ReleaseSeat in the same transaction.
func (tx *Tx) DeleteAssignment(ctx context.Context, accountID, userID, subscriptionID int64) error {
	n, err := affected(tx.exec(ctx, `
		DELETE FROM assignments WHERE account_id = ? AND user_id = ? AND subscription_id = ?`,
		accountID, userID, subscriptionID))
	if err != nil {
		return fmt.Errorf("unassign user %d from subscription %d: %w", userID, subscriptionID, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "user %d holds no seat of subscription %d", userID, subscriptionID)
	}
	tx.seats.unassigned++
	return nil
}

// SetAssignmentServices replaces the services of a seat the user holds.
func (tx *Tx) SetAssignmentServices(ctx context.Context, accountID, userID, subscriptionID int64, services []string) error {
	var held int
	err := tx.queryRow(ctx, `
		SELECT COUNT(*) FROM assignments WHERE account_id = ? AND user_id = ? AND subscription_id = ?`,
		accountID, userID, subscriptionID).Scan(&held)
	if err != nil {
		return fmt.Errorf("set services of user %d on subscription %d: %w", userID, subscriptionID, err)
	}
	if held == 0 {
		return usher.Errorf(usher.ENOTFOUND, "user %d holds no seat of subscription %d", userID, subscriptionID)
	}
	_, err = tx.exec(ctx, `
		DELETE FROM assignment_services WHERE account_id = ? AND user_id = ? AND subscription_id = ?`,
		accountID, userID, subscriptionID)
	if err == nil {
		err = tx.insertServices(ctx, accountID, userID, subscriptionID, services)
	}
	if err != nil {
		return fmt.Errorf("set services of user %d on subscription %d: %w", userID, subscriptionID, err)
	}
	return nil
}

// AssignmentsOfUser returns the user's seats by subscription id, each with
// its services in code order: two queries.
func (tx *Tx) AssignmentsOfUser(ctx context.Context, accountID, userID int64) ([]usher.Assignment, error) {
	rows, err := tx.query(ctx, `
		SELECT account_id, user_id, subscription_id, assigned_at, direct, last_used_at FROM assignments
		WHERE account_id = ? AND user_id = ?
		ORDER BY subscription_id`, accountID, userID)
	if err != nil {
		return nil, fmt.Errorf("seats of user %d: %w", userID, err)
	}
	out, err := collect(rows, scanHeldSeat)
	if err != nil {
		return nil, fmt.Errorf("seats of user %d: %w", userID, err)
	}
	if len(out) == 0 {
		return out, nil
	}
	index := make(map[int64]int, len(out))
	for i, a := range out {
		index[a.SubscriptionID] = i
	}
	rows, err = tx.query(ctx, `
		SELECT subscription_id, service_code FROM assignment_services
		WHERE account_id = ? AND user_id = ?
		ORDER BY subscription_id, service_code`, accountID, userID)
	if err != nil {
		return nil, fmt.Errorf("seats of user %d: %w", userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var subID int64
		var code string
		if err := rows.Scan(&subID, &code); err != nil {
			return nil, fmt.Errorf("seats of user %d: %w", userID, err)
		}
		if i, ok := index[subID]; ok {
			out[i].Services = append(out[i].Services, code)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("seats of user %d: %w", userID, err)
	}
	rows.Close()
	rows, err = tx.query(ctx, `
		SELECT subscription_id, group_id FROM seat_group_sources
		WHERE account_id = ? AND user_id = ?
		ORDER BY subscription_id, group_id`, accountID, userID)
	if err != nil {
		return nil, fmt.Errorf("seats of user %d: %w", userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var subID, groupID int64
		if err := rows.Scan(&subID, &groupID); err != nil {
			return nil, fmt.Errorf("seats of user %d: %w", userID, err)
		}
		if i, ok := index[subID]; ok {
			out[i].Groups = append(out[i].Groups, groupID)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("seats of user %d: %w", userID, err)
	}
	return out, nil
}

// scanHeldSeat reads a seat as AssignmentsOfUser and AssignmentsOfUsers select
// it (account, user, subscription, assigned, direct, last used), with
// empty services and groups for the caller to fill.
func scanHeldSeat(row interface{ Scan(...any) error }) (usher.Assignment, error) {
	a := usher.Assignment{Services: []string{}, Groups: []int64{}}
	var at, used int64
	err := row.Scan(&a.AccountID, &a.UserID, &a.SubscriptionID, &at, &a.Direct, &used)
	a.AssignedAt, a.LastUsedAt = fromMillis(at), fromMillis(used)
	return a, err
}

// BenefitsOfUser returns the user's benefit codes by subscription id, in
// code order.
func (tx *Tx) BenefitsOfUser(ctx context.Context, accountID, userID int64) (map[int64][]string, error) {
	rows, err := tx.query(ctx, `
		SELECT subscription_id, code FROM benefit_grants
		WHERE account_id = ? AND user_id = ?
		ORDER BY subscription_id, code`, accountID, userID)
	if err != nil {
		return nil, fmt.Errorf("benefits of user %d: %w", userID, err)
	}
	defer rows.Close()
	out := map[int64][]string{}
	for rows.Next() {
		var subID int64
		var code string
		if err := rows.Scan(&subID, &code); err != nil {
			return nil, fmt.Errorf("benefits of user %d: %w", userID, err)
		}
		out[subID] = append(out[subID], code)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("benefits of user %d: %w", userID, err)
	}
	return out, nil
}

// SetBenefits replaces the user's benefits on one subscription.
func (tx *Tx) SetBenefits(ctx context.Context, accountID, userID, subscriptionID int64, codes []string) error {
	if err := tx.checkUserAndSubscription(ctx, accountID, userID, subscriptionID); err != nil {
		return fmt.Errorf("set benefits of user %d: %w", userID, err)
	}
	_, err := tx.exec(ctx, `
		DELETE FROM benefit_grants WHERE account_id = ? AND user_id = ? AND subscription_id = ?`,
		accountID, userID, subscriptionID)
	if err != nil {
		return fmt.Errorf("set benefits of user %d on subscription %d: %w", userID, subscriptionID, err)
	}
	if len(codes) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(codes))
	for _, code := range codes {
		args = append(args, accountID, userID, subscriptionID, code)
	}
	_, err = tx.exec(ctx, `
		INSERT INTO benefit_grants (account_id, user_id, subscription_id, code)
		VALUES `+valueRows(len(codes), 4), args...)
	if isUniqueViolation(err) {
		return usher.Errorf(usher.ECONFLICT, "a benefit is listed twice")
	} else if err != nil {
		return fmt.Errorf("set benefits of user %d on subscription %d: %w", userID, subscriptionID, err)
	}
	return nil
}

// ---- audit ----

// InsertAudit appends e to the audit log and sets its ID.
func (tx *Tx) InsertAudit(ctx context.Context, e *usher.AuditEntry) error {
	if !usher.ValidAuditAction(e.Action) {
		// The audit log's action filter offers exactly usher.AuditActions.
		return fmt.Errorf("audit %q: not one of usher.AuditActions; add it there", e.Action)
	}
	err := tx.queryRow(ctx, `
		INSERT INTO audit_log (account_id, actor_id, actor_email, action, target_user_id, target_email,
		                       subscription_id, before, after, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		e.AccountID, nullID(e.ActorID), e.ActorEmail, e.Action, nullID(e.TargetUserID), nullString(e.TargetEmail),
		nullID(e.SubscriptionID), nullString(string(e.Before)), nullString(string(e.After)), millis(e.At)).Scan(&e.ID)
	if isForeignKeyViolation(err) {
		return usher.Errorf(usher.ENOTFOUND, "account %d not found", e.AccountID)
	} else if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	tx.markChanged(e.AccountID) // every change of users and seats is audited
	return nil
}

// ListAudit returns a page of the account's audit log, newest first. The
// indexes audit_log_by_* serve each filter.
func (tx *Tx) ListAudit(ctx context.Context, accountID int64, f access.AuditFilter) ([]usher.AuditEntry, error) {
	var q strings.Builder
	args := []any{accountID}
	q.WriteString(`
		SELECT id, account_id, COALESCE(actor_id, 0), actor_email, action, COALESCE(target_user_id, 0),
		       COALESCE(target_email, ''), COALESCE(subscription_id, 0), COALESCE(before, ''), COALESCE(after, ''), at
		FROM audit_log WHERE account_id = ?`)
	if f.BeforeID > 0 {
		q.WriteString(" AND id < ?")
		args = append(args, f.BeforeID)
	}
	if f.Action != "" {
		q.WriteString(" AND action = ?")
		args = append(args, f.Action)
	}
	if f.UserID != 0 {
		q.WriteString(" AND (actor_id = ? OR target_user_id = ?)")
		args = append(args, f.UserID, f.UserID)
	}
	q.WriteString(" ORDER BY id DESC")
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	rows, err := tx.query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (usher.AuditEntry, error) {
		var e usher.AuditEntry
		var before, after string
		var at int64
		err := row.Scan(&e.ID, &e.AccountID, &e.ActorID, &e.ActorEmail, &e.Action, &e.TargetUserID,
			&e.TargetEmail, &e.SubscriptionID, &before, &after, &at)
		if before != "" {
			e.Before = []byte(before)
		}
		if after != "" {
			e.After = []byte(after)
		}
		e.At = fromMillis(at)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	return out, nil
}

// ---- helpers ----

// collect scans every row with scan and closes rows. It returns an empty,
// non-nil slice when there are no rows.
func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// valueRows returns "(?, ?), (?, ?)" for a multi-row INSERT of n rows of
// width columns.
func valueRows(n, width int) string {
	row := "(" + placeholders(width) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

func priceCents(p *usher.Price) int64 {
	if p == nil {
		return 0
	}
	return p.Cents
}

func priceCurrency(p *usher.Price) string {
	if p == nil {
		return ""
	}
	return p.Currency
}

// SetAccountGrace stores the account's new-seat grace.
func (tx *Tx) SetAccountGrace(ctx context.Context, accountID int64, days int) error {
	n, err := affected(tx.exec(ctx, "UPDATE accounts SET new_seat_grace_days = ? WHERE id = ?", days, accountID))
	if err != nil {
		return fmt.Errorf("set new-seat grace of account %d: %w", accountID, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "account %d not found", accountID)
	}
	tx.markChanged(accountID)
	return nil
}

// SetSubscriptionTerms stores a subscription's seats and term, unless its
// seats in use exceed the new seat count, which it reports as false: the
// condition is part of the UPDATE, so no seat reserved meanwhile slips
// past it.
func (tx *Tx) SetSubscriptionTerms(ctx context.Context, accountID, id int64, seats int, start, end usher.Date) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		UPDATE subscriptions SET seats = ?, term_start = ?, term_end = ?
		WHERE account_id = ? AND id = ? AND seats_used <= ?`,
		seats, start.String(), end.String(), accountID, id, seats))
	if err != nil {
		return false, fmt.Errorf("set seats and term of subscription %d: %w", id, err)
	}
	if n == 0 {
		if _, err := tx.SubscriptionByID(ctx, accountID, id); err != nil {
			return false, err
		}
		return false, nil
	}
	tx.markChanged(accountID)
	return true, nil
}

// SeatHolders lists who holds seats of the subscription, the longest
// inactive first: by the later of their last use of its product and when
// the seat was assigned, both in Unix milliseconds (a day of use counts
// from its start). Served by assignments' primary key and usage_rollups'.
func (tx *Tx) SeatHolders(ctx context.Context, accountID, subscriptionID int64, limit int) ([]access.SeatHolder, error) {
	rows, err := tx.query(ctx, `
		SELECT u.id, u.account_id, u.email, u.name, u.status, u.reclaim_exempt, u.created_at, u.updated_at,
		       a.assigned_at, r.last_day
		FROM assignments a
		JOIN users u ON u.account_id = a.account_id AND u.id = a.user_id
		JOIN subscriptions s ON s.account_id = a.account_id AND s.id = a.subscription_id
		LEFT JOIN usage_rollups r ON r.account_id = a.account_id AND r.user_id = a.user_id AND r.product_id = s.product_id
		WHERE a.account_id = ? AND a.subscription_id = ?
		ORDER BY CASE WHEN r.last_day IS NOT NULL AND CAST(r.last_day AS BIGINT) * 86400000 > a.assigned_at
		              THEN CAST(r.last_day AS BIGINT) * 86400000 ELSE a.assigned_at END, u.id
		LIMIT ?`, accountID, subscriptionID, limit)
	if err != nil {
		return nil, fmt.Errorf("seat holders of subscription %d: %w", subscriptionID, err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (access.SeatHolder, error) {
		var h access.SeatHolder
		var created, updated, assigned int64
		var lastDay sql.NullInt64
		err := row.Scan(&h.User.ID, &h.User.AccountID, &h.User.Email, &h.User.Name, &h.User.Status, &h.User.ReclaimExempt,
			&created, &updated, &assigned, &lastDay)
		h.User.CreatedAt, h.User.UpdatedAt, h.AssignedAt = fromMillis(created), fromMillis(updated), fromMillis(assigned)
		if lastDay.Valid {
			d := usher.DateOf(time.Unix(lastDay.Int64*86400, 0).UTC())
			h.LastUsed = &d
		}
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("seat holders of subscription %d: %w", subscriptionID, err)
	}
	return out, nil
}

// SetSubscriptionPrice stores a subscription's price per seat per year; nil removes it.
func (tx *Tx) SetSubscriptionPrice(ctx context.Context, accountID, id int64, p *usher.Price) error {
	n, err := affected(tx.exec(ctx, "UPDATE subscriptions SET price_cents = ?, currency = ? WHERE account_id = ? AND id = ?",
		priceCents(p), priceCurrency(p), accountID, id))
	if err != nil {
		return fmt.Errorf("set price of subscription %d: %w", id, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "subscription %d not found", id)
	}
	tx.markChanged(accountID)
	return nil
}

// ---- a user's access ----

// accessViewSQL reads a view of a user's access in one statement and one
// row: the user's row and accessItemsSQL, every other part of the view
// folded into one column. A user the account does not have is no row.
const accessViewSQL = `SELECT ` + accessUserColumns + `, ` + accessItemsSQL + `
	FROM users u
	WHERE u.account_id = ? AND u.id = ?`

// tokenAccessViewSQL is TokenHolder's statement and accessViewSQL in one:
// the token's row with its holder's status and grants, and the view of a
// user of the token's account (NULLs when that account has no such user),
// one row, none when no token has the hash. Its first columns are
// tokenColumns with the holder as hu, u being the user viewed.
const tokenAccessViewSQL = `SELECT t.id, t.account_id, t.user_id, hu.email, t.name, t.scope, t.hash, t.created_at, t.last_used_at, t.expires_at, hu.status,
	       (SELECT %[1]s FROM role_grants g WHERE g.account_id = t.account_id AND g.user_id = t.user_id),
	       ` + accessUserColumns + `, ` + accessItemsSQL + `
	FROM api_tokens t JOIN users hu ON hu.account_id = t.account_id AND hu.id = t.user_id
	LEFT JOIN users u ON u.account_id = t.account_id AND u.id = ?
	WHERE t.hash = ?`

const accessUserColumns = `u.id, u.account_id, u.email, u.name, u.status, u.reclaim_exempt, u.created_at, u.updated_at`

// accessItemsSQL folds the rest of the view of user u into one text
// column, one item per row of a UNION ALL, each a kind and its fields:
// 's' a subscription of the account (at most ? of them, by id) with its
// benefits, 'a' a seat of the user, 'x' a service of a seat, 'g' a group a
// seat comes through with its name when the user is a member (as
// GroupsOfUser would name it), 'b' a benefit of the user, 'w' a waiting
// list the user is on. Items are separated by the unit separator (31),
// fields by the record separator (30), a subscription's benefits by the
// group separator (29); no text Usher stores holds them (usher.TextProblem
// refuses control characters), except group names a SCIM client sent
// before SCIM checked text, which lose those bytes here. Each part is one index range of the user
// (or the account), not a probe per subscription, and one aggregate; the
// products' names and services come from the catalog cache
// (productCatalog), since they never change. %[2]s is the engine's
// aggregate of the items, %[3]s its chr, %[4]s its aggregate of a
// subscription's benefits.
const accessItemsSQL = `(SELECT %[2]s FROM (
	SELECT 's' || %[3]s(30) || s.id || %[3]s(30) || s.plan || %[3]s(30) || s.seats || %[3]s(30) || s.seats_used
	       || %[3]s(30) || s.contract_number || %[3]s(30) || s.term_start || %[3]s(30) || s.term_end
	       || %[3]s(30) || s.price_cents || %[3]s(30) || s.currency || %[3]s(30) || s.created_at || %[3]s(30) || s.product_id
	       || %[3]s(30) || COALESCE((SELECT %[4]s FROM subscription_benefits sb WHERE sb.subscription_id = s.id), '') AS item
	FROM (SELECT id, plan, seats, seats_used, contract_number, term_start, term_end, price_cents, currency, created_at, product_id
	      FROM subscriptions WHERE account_id = u.account_id ORDER BY id LIMIT ?) s
	UNION ALL
	SELECT 'a' || %[3]s(30) || a.subscription_id || %[3]s(30) || a.assigned_at || %[3]s(30) || CASE WHEN a.direct THEN '1' ELSE '0' END
	       || %[3]s(30) || a.last_used_at
	FROM assignments a WHERE a.account_id = u.account_id AND a.user_id = u.id
	UNION ALL
	SELECT 'x' || %[3]s(30) || x.subscription_id || %[3]s(30) || x.service_code
	FROM assignment_services x WHERE x.account_id = u.account_id AND x.user_id = u.id
	UNION ALL
	SELECT 'g' || %[3]s(30) || gs.subscription_id || %[3]s(30) || gs.group_id || %[3]s(30)
	       || COALESCE((SELECT replace(replace(replace(g.name, %[3]s(29), ''), %[3]s(30), ''), %[3]s(31), '') FROM user_groups g
	         JOIN group_members m ON m.account_id = g.account_id AND m.group_id = g.id AND m.user_id = gs.user_id
	         WHERE g.account_id = gs.account_id AND g.id = gs.group_id), '')
	FROM seat_group_sources gs WHERE gs.account_id = u.account_id AND gs.user_id = u.id
	UNION ALL
	SELECT 'b' || %[3]s(30) || b.subscription_id || %[3]s(30) || b.code
	FROM benefit_grants b WHERE b.account_id = u.account_id AND b.user_id = u.id
	UNION ALL
	SELECT 'w' || %[3]s(30) || w.subscription_id
	FROM seat_waiters w WHERE w.account_id = u.account_id AND w.user_id = u.id) i)`

// accessViewQuery is accessViewSQL for the engine, tokenAccessViewQuery
// tokenAccessViewSQL.
var accessViewQuery, tokenAccessViewQuery = accessViewQueries(accessViewSQL), accessViewQueries(tokenAccessViewSQL)

func accessViewQueries(query string) map[string]string {
	out := map[string]string{}
	for _, engine := range []string{SQLite, Postgres} {
		if engine == Postgres {
			out[engine] = fmt.Sprintf(query, grantsAgg(engine), "string_agg(i.item, chr(31))", "chr", "string_agg(sb.code, chr(29))")
		} else {
			out[engine] = fmt.Sprintf(query, grantsAgg(engine), "group_concat(i.item, char(31))", "char", "group_concat(sb.code, char(29))")
		}
	}
	return out
}

// grantsAgg folds a holder's role grants g into one column
// ("role:subscription,…"), as TokenHolder reads them.
func grantsAgg(engine string) string {
	if engine == Postgres {
		return "string_agg(g.role || ':' || COALESCE(g.subscription_id, 0), ',')"
	}
	return "group_concat(g.role || ':' || COALESCE(g.subscription_id, 0), ',')"
}

// AccessView reads what a view of the user's access shows in one statement
// (accessViewSQL): a GET of a user's access is then one round trip.
func (tx *Tx) AccessView(ctx context.Context, accountID, userID int64, maxSubscriptions int) (access.AccessData, error) {
	v := newAccessViewReader(userID)
	err := v.scan(tx.queryRow(ctx, accessViewQuery[tx.engine], maxSubscriptions, accountID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return v.d, usher.Errorf(usher.ENOTFOUND, "user %d not found", userID)
	} else if err != nil {
		return v.d, fmt.Errorf("access of user %d: %w", userID, err)
	}
	return v.done(ctx, tx)
}

// TokenAccessView is TokenHolder and AccessView in one statement
// (tokenAccessViewSQL), the view read in the token's account: a GET of a
// user's access with a bearer token is then one round trip. It answers
// usher.ENOTFOUND when no token has the hash; a user the token's account
// does not have is a view whose User is zero.
func (tx *Tx) TokenAccessView(ctx context.Context, hash []byte, userID int64, maxSubscriptions int) (access.TokenHolder, access.AccessData, error) {
	var h access.TokenHolder
	var created int64
	var used, expires sql.NullInt64
	var grants sql.NullString
	v := newAccessViewReader(userID)
	t := &h.Token
	err := v.scan(tx.queryRow(ctx, tokenAccessViewQuery[tx.engine], maxSubscriptions, userID, hash),
		&t.ID, &t.AccountID, &t.UserID, &t.UserEmail, &t.Name, &t.Scope, &t.Hash, &created, &used, &expires, &h.Status, &grants)
	if errors.Is(err, sql.ErrNoRows) {
		return h, v.d, usher.Errorf(usher.ENOTFOUND, "token not found")
	} else if err != nil {
		return h, v.d, fmt.Errorf("token and access of user %d: %w", userID, err)
	}
	t.CreatedAt = fromMillis(created)
	t.LastUsedAt, t.ExpiresAt = timeOrNil(used), timeOrNil(expires)
	if h.Grants, err = parseGrants(t.UserID, grants); err != nil {
		return h, v.d, fmt.Errorf("get token: %w", err)
	}
	if !v.found {
		return h, v.d, nil // no such user: d.User is zero
	}
	d, err := v.done(ctx, tx)
	return h, d, err
}

// accessViewReader builds access.AccessData from the row of accessViewSQL.
type accessViewReader struct {
	d      access.AccessData
	userID int64
	found  bool
	items  sql.NullString // accessItemsSQL's column
}

func newAccessViewReader(userID int64) *accessViewReader {
	return &accessViewReader{
		d:      access.AccessData{Subscriptions: []usher.Subscription{}, Held: map[int64]usher.Assignment{}, Benefits: map[int64][]string{}},
		userID: userID,
	}
}

// scan reads the row: first into head, the columns before the view's, if
// any. A user that is NULL (tokenAccessViewSQL's, for a user the account
// does not have) leaves found false.
func (v *accessViewReader) scan(row *sql.Row, head ...any) error {
	var (
		uid, accountID, created, updated sql.NullInt64
		email, name, status              sql.NullString
		exempt                           sql.NullBool
	)
	if err := row.Scan(append(head, &uid, &accountID, &email, &name, &status, &exempt, &created, &updated, &v.items)...); err != nil {
		return err
	}
	if !uid.Valid {
		return nil
	}
	v.found = true
	v.d.User = usher.User{ID: uid.Int64, AccountID: accountID.Int64, Email: email.String, Name: name.String,
		Status: usher.UserStatus(status.String), ReclaimExempt: exempt.Bool,
		CreatedAt: fromMillis(created.Int64), UpdatedAt: fromMillis(updated.Int64)}
	return nil
}

// done unfolds the items of the view read (accessItemsSQL) and fills in the
// products from the catalog; usher.ENOTFOUND when no row named the user.
// The items come in no particular order: each list is sorted here.
func (v *accessViewReader) done(ctx context.Context, tx *Tx) (access.AccessData, error) {
	if !v.found {
		return v.d, usher.Errorf(usher.ENOTFOUND, "user %d not found", v.userID)
	}
	accountID := v.d.User.AccountID
	services, groupsOf := map[int64][]string{}, map[int64][]int64{}
	names := map[int64]string{}
	fail := func(item string, err error) error {
		return fmt.Errorf("access of user %d: item %q: %w", v.userID, item, err)
	}
	for _, item := range splitItems(v.items) {
		f := strings.Split(item, "\x1e")
		want := map[string]int{"s": 13, "a": 5, "x": 3, "g": 4, "b": 3, "w": 2}[f[0]]
		if want == 0 || len(f) != want {
			return v.d, fail(item, fmt.Errorf("%d fields of kind %q", len(f), f[0]))
		}
		sub, err := strconv.ParseInt(f[1], 10, 64) // every kind's first field
		if err != nil {
			return v.d, fail(item, err)
		}
		switch f[0] {
		case "s":
			s, err := parseAccessSubscription(accountID, sub, f[2:])
			if err != nil {
				return v.d, fail(item, err)
			}
			v.d.Subscriptions = append(v.d.Subscriptions, s)
		case "a":
			var at, direct, used int64
			for i, p := range []*int64{&at, &direct, &used} {
				if *p, err = strconv.ParseInt(f[2+i], 10, 64); err != nil {
					return v.d, fail(item, err)
				}
			}
			v.d.Held[sub] = usher.Assignment{AccountID: accountID, UserID: v.userID, SubscriptionID: sub,
				AssignedAt: fromMillis(at), Direct: direct == 1, LastUsedAt: fromMillis(used)}
		case "x":
			services[sub] = append(services[sub], f[2])
		case "g":
			id, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return v.d, fail(item, err)
			}
			groupsOf[sub] = append(groupsOf[sub], id)
			if f[3] != "" {
				names[id] = f[3]
			}
		case "b":
			v.d.Benefits[sub] = append(v.d.Benefits[sub], f[2])
		case "w":
			v.d.Waits = append(v.d.Waits, usher.Waiter{UserID: v.userID, SubscriptionID: sub})
		}
	}
	slices.SortFunc(v.d.Subscriptions, func(a, b usher.Subscription) int { return cmp.Compare(a.ID, b.ID) })
	for id, as := range v.d.Held {
		as.Services, as.Groups = orEmpty(services[id]), orEmpty(groupsOf[id])
		slices.Sort(as.Services)
		slices.Sort(as.Groups)
		v.d.Held[id] = as
	}
	for _, b := range v.d.Benefits {
		slices.Sort(b)
	}
	slices.SortFunc(v.d.Waits, func(a, b usher.Waiter) int { return cmp.Compare(a.SubscriptionID, b.SubscriptionID) })
	for id, name := range names {
		v.d.Groups = append(v.d.Groups, usher.Group{ID: id, AccountID: accountID, Name: name})
	}
	slices.SortFunc(v.d.Groups, func(a, b usher.Group) int { return cmp.Compare(a.ID, b.ID) })
	if err := tx.fillProducts(ctx, v.d.Subscriptions); err != nil {
		return v.d, fmt.Errorf("access of user %d: %w", v.userID, err)
	}
	return v.d, nil
}

// parseAccessSubscription reads a subscription's fields of accessItemsSQL
// after its id: plan, seats, seats used, contract number, term start and
// end, price in cents, currency, created, product id and benefits. The
// product is its id only.
func parseAccessSubscription(accountID, id int64, f []string) (usher.Subscription, error) {
	s := usher.Subscription{ID: id, AccountID: accountID, Plan: usher.Plan(f[0]), ContractNumber: f[3]}
	var seats, used, cents, created int64
	for _, n := range []struct {
		p *int64
		s string
	}{{&seats, f[1]}, {&used, f[2]}, {&cents, f[6]}, {&created, f[8]}, {&s.Product.ID, f[9]}} {
		var err error
		if *n.p, err = strconv.ParseInt(n.s, 10, 64); err != nil {
			return s, fmt.Errorf("subscription %d: %w", id, err)
		}
	}
	s.Seats, s.SeatsUsed, s.CreatedAt = int(seats), int(used), fromMillis(created)
	if f[7] != "" {
		s.Price = &usher.Price{Cents: cents, Currency: f[7]}
	}
	var err error
	if s.TermStart, err = parseStoredDate(f[4]); err != nil {
		return s, fmt.Errorf("subscription %d: term_start: %w", id, err)
	}
	if s.TermEnd, err = parseStoredDate(f[5]); err != nil {
		return s, fmt.Errorf("subscription %d: term_end: %w", id, err)
	}
	s.Benefits = []string{}
	if f[10] != "" {
		s.Benefits = strings.Split(f[10], "\x1d")
		slices.Sort(s.Benefits)
	}
	return s, nil
}

// productCatalog keeps the products read, with their services, by id.
// Products are only ever inserted, with their services in the same
// transaction (CreateProduct; no statement updates or deletes either), so
// a product read as committed is the same on every replica for as long as
// the process runs, and a view need not read it again.
type productCatalog struct {
	mu   sync.RWMutex
	byID map[int64]usher.Product
}

// fillProducts sets the code, name and services of the products of subs,
// which hold their ids only: from the catalog, reading those it lacks.
// Each subscription gets its own copy of the services.
func (tx *Tx) fillProducts(ctx context.Context, subs []usher.Subscription) error {
	var missing []int64
	c := tx.catalog
	if c != nil {
		c.mu.RLock()
	}
	for i := range subs {
		p := &subs[i].Product
		if c != nil {
			if known, ok := c.byID[p.ID]; ok {
				*p = known
				p.Services = slices.Clone(known.Services)
				continue
			}
		}
		if !slices.Contains(missing, p.ID) {
			missing = append(missing, p.ID)
		}
	}
	if c != nil {
		c.mu.RUnlock()
	}
	if len(missing) == 0 {
		return nil
	}
	rows, err := tx.query(ctx, "SELECT id, code, name FROM products WHERE id IN ("+placeholders(len(missing))+")", int64Args(missing)...)
	if err != nil {
		return fmt.Errorf("products: %w", err)
	}
	read, err := collect(rows, scanProduct)
	if err != nil {
		return fmt.Errorf("products: %w", err)
	}
	ptrs := make([]*usher.Product, len(read))
	for i := range read {
		ptrs[i] = &read[i]
	}
	if err := tx.loadServices(ctx, ptrs); err != nil {
		return fmt.Errorf("products: %w", err)
	}
	byID := map[int64]usher.Product{}
	for _, p := range read {
		byID[p.ID] = p
	}
	for i := range subs {
		p := &subs[i].Product
		if known, ok := byID[p.ID]; ok {
			*p = known
			p.Services = slices.Clone(known.Services)
		} else if p.Code == "" {
			return fmt.Errorf("product %d of subscription %d not found", p.ID, subs[i].ID)
		}
	}
	// Only what was read outside a transaction is kept: a product a
	// transaction created may yet be rolled back, and on SQLite its id
	// given to another.
	if c != nil && tx.tx == nil {
		c.mu.Lock()
		if c.byID == nil {
			c.byID = map[int64]usher.Product{}
		}
		for id, p := range byID {
			c.byID[id] = p
		}
		c.mu.Unlock()
	}
	return nil
}

// splitItems splits a folded list of accessViewSQL; NULL is none.
func splitItems(s sql.NullString) []string {
	if !s.Valid || s.String == "" {
		return nil
	}
	return strings.Split(s.String, "\x1f")
}

// orEmpty is s, or an empty slice for nil.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
