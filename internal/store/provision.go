package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// This file implements access.ProvisionTx: the SCIM columns of users
// (migration 0011).

const provisionedColumns = userColumns + ", scim_state, COALESCE(external_id, ''), COALESCE(user_name, email), COALESCE(scim_profile, '')"

func scanProvisioned(row interface{ Scan(...any) error }) (access.ProvisionedUser, error) {
	var u access.ProvisionedUser
	var created, updated int64
	var profile string
	err := row.Scan(&u.ID, &u.AccountID, &u.Email, &u.Name, &u.Status, &u.ReclaimExempt, &created, &updated,
		&u.State, &u.ExternalID, &u.UserName, &profile)
	u.CreatedAt, u.UpdatedAt = fromMillis(created), fromMillis(updated)
	if profile != "" {
		u.Profile = json.RawMessage(profile)
	}
	return u, err
}

// ProvisionedUserByID returns one user of the account with their SCIM columns.
func (tx *Tx) ProvisionedUserByID(ctx context.Context, accountID, id int64) (access.ProvisionedUser, error) {
	u, err := scanProvisioned(tx.queryRow(ctx, "SELECT "+provisionedColumns+" FROM users WHERE account_id = ? AND id = ?", accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, usher.Errorf(usher.ENOTFOUND, "user %d not found", id)
	} else if err != nil {
		return u, fmt.Errorf("get user %d: %w", id, err)
	}
	return u, nil
}

// userNameLookup finds the users whose userName is a key: the one whose
// user_name_key is the key, and the one whose email is the key, flagged
// with whether they have no userName (only then does the email count).
// Each half is an equality on a unique key, (account_id, user_name_key)
// and (account_id, email), so it reads one row whatever the statistics
// say (decision 0039). The OR of the two let SQLite scan the whole table
// when ANALYZE had seen no userName yet, and PostgreSQL read all of a new
// account's users: a client provisioning an account looks every user up
// first. The account id is a subquery so that PostgreSQL plans without
// its value: ANALYZE has not seen a new account, which then looks empty,
// and any index on account_id looks as good as the unique one. The NULL
// test is read rather than filtered on, for it is no key: every user made
// in Usher has a NULL user_name_key.
const userNameLookup = "SELECT " + provisionedColumns + ", TRUE FROM users" +
	" WHERE account_id = (SELECT CAST(? AS BIGINT)) AND user_name_key = ?" +
	" UNION ALL SELECT " + provisionedColumns + ", user_name_key IS NULL FROM users" +
	" WHERE account_id = (SELECT CAST(? AS BIGINT)) AND email = ?"

// flaggedRow is a row of userNameLookup: its last column goes to flag.
type flaggedRow struct {
	row  interface{ Scan(...any) error }
	flag *bool
}

func (r flaggedRow) Scan(dest ...any) error { return r.row.Scan(append(dest, r.flag)...) }

// usersByUserName returns the users whose userName, or whose email when
// they have none, is key (lower-cased), in id order: at most two, and
// only one unless the service's checks were bypassed.
func (tx *Tx) usersByUserName(ctx context.Context, accountID int64, key string) ([]access.ProvisionedUser, error) {
	rows, err := tx.query(ctx, userNameLookup, accountID, key, accountID, key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []access.ProvisionedUser
	for rows.Next() {
		var match bool
		u, err := scanProvisioned(flaggedRow{rows, &match})
		if err != nil {
			return nil, err
		}
		if match {
			out = append(out, u)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b access.ProvisionedUser) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// ProvisionedUserByUserName finds a user by userName, or by email when
// they have none (userNameLookup). Emails are stored lower-cased
// (usher.NormalizeEmail).
func (tx *Tx) ProvisionedUserByUserName(ctx context.Context, accountID int64, userName string) (access.ProvisionedUser, error) {
	out, err := tx.usersByUserName(ctx, accountID, strings.ToLower(strings.TrimSpace(userName)))
	if err != nil {
		return access.ProvisionedUser{}, fmt.Errorf("get user %s: %w", userName, err)
	}
	if len(out) == 0 {
		return access.ProvisionedUser{}, usher.Errorf(usher.ENOTFOUND, "user %s not found", userName)
	}
	return out[0], nil // a userName set by SCIM sorts no matter: both cannot exist, the service checks
}

// FindProvisionedUsers lists the users SCIM sees that match m, by id.
func (tx *Tx) FindProvisionedUsers(ctx context.Context, accountID int64, m access.UserMatch, offset, limit int) ([]access.ProvisionedUser, int, error) {
	if m.Op == access.MatchEq && m.Attr == access.AttrUserName {
		// The filter a client sends before creating each user: two
		// one-row reads (userNameLookup) rather than a count and a page
		// whose plan depends on the statistics.
		found, err := tx.usersByUserName(ctx, accountID, strings.ToLower(m.Value))
		if err != nil {
			return nil, 0, fmt.Errorf("find provisioned users: %w", err)
		}
		found = slices.DeleteFunc(found, func(u access.ProvisionedUser) bool { return u.State == access.ScimDeleted })
		if offset >= len(found) {
			return []access.ProvisionedUser{}, len(found), nil
		}
		return found[offset:min(offset+limit, len(found))], len(found), nil
	}
	var where strings.Builder
	args := []any{accountID}
	where.WriteString(" FROM users WHERE account_id = ? AND scim_state <> 'deleted'")
	if m.Op != "" {
		where.WriteString(" AND ")
		if err := tx.matchSQL(&where, &args, m, matchColumn); err != nil {
			return nil, 0, err
		}
	}
	var total int
	if err := tx.queryRow(ctx, "SELECT COUNT(*)"+where.String(), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count provisioned users: %w", err)
	}
	if limit == 0 || offset >= total {
		return []access.ProvisionedUser{}, total, nil
	}
	rows, err := tx.query(ctx, "SELECT "+provisionedColumns+where.String()+" ORDER BY id LIMIT ? OFFSET ?", append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list provisioned users: %w", err)
	}
	out, err := collect(rows, scanProvisioned)
	if err != nil {
		return nil, 0, fmt.Errorf("list provisioned users: %w", err)
	}
	return out, total, nil
}

// FindGroups lists the groups m matches, by id. An account has groups by
// the hundred, so the count and the page read them through the account's
// part of user_groups.
func (tx *Tx) FindGroups(ctx context.Context, accountID int64, m access.UserMatch, offset, limit int) ([]usher.Group, int, error) {
	var where strings.Builder
	args := []any{accountID}
	where.WriteString(" FROM user_groups g WHERE g.account_id = ?")
	if m.Op != "" {
		where.WriteString(" AND ")
		if err := tx.matchSQL(&where, &args, m, groupMatchColumn); err != nil {
			return nil, 0, err
		}
	}
	var total int
	if err := tx.queryRow(ctx, "SELECT COUNT(*)"+where.String(), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count groups: %w", err)
	}
	if limit == 0 || offset >= total {
		return []usher.Group{}, total, nil
	}
	rows, err := tx.query(ctx, "SELECT "+groupColumns+where.String()+" ORDER BY g.id LIMIT ? OFFSET ?", append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("find groups: %w", err)
	}
	out, err := collect(rows, scanGroup)
	if err != nil {
		return nil, 0, fmt.Errorf("find groups: %w", err)
	}
	return out, total, nil
}

// userNameColumn is a user's userName, lower-cased. matchSQL writes an eq
// test of it as two that users_by_user_name and the (account_id, email)
// key serve: a client looks every user up by userName before creating
// them, and the expression itself would read all the account's users.
const userNameColumn = "COALESCE(user_name_key, email)"

// matchColumn is the SQL of each attribute and whether it compares
// without case (its values are then lower-cased, the column already is).
func matchColumn(attr access.UserAttr) (string, bool, error) {
	switch attr {
	case access.AttrUserName:
		return userNameColumn, true, nil
	case access.AttrExternalID:
		return "external_id", false, nil
	case access.AttrDisplayName:
		return "name_key", true, nil
	case access.AttrEmail:
		return "email", true, nil
	}
	return "", false, usher.Errorf(usher.EINVALID, "cannot filter on %q", attr)
}

// groupMatchColumn is matchColumn for user_groups g.
func groupMatchColumn(attr access.UserAttr) (string, bool, error) {
	switch attr {
	case access.AttrDisplayName:
		return "g.name_key", true, nil
	case access.AttrExternalID:
		return "g.external_id", false, nil
	case access.AttrID:
		return "CAST(g.id AS TEXT)", false, nil
	}
	return "", false, usher.Errorf(usher.EINVALID, "cannot filter groups on %q", attr)
}

// matchSQL writes m as a WHERE condition with ? arguments, with the columns
// column names.
func (tx *Tx) matchSQL(b *strings.Builder, args *[]any, m access.UserMatch, column func(access.UserAttr) (string, bool, error)) error {
	switch m.Op {
	case access.MatchAnd, access.MatchOr:
		b.WriteString("(")
		for i, t := range m.Terms {
			if i > 0 {
				b.WriteString(" " + strings.ToUpper(m.Op) + " ")
			}
			if err := tx.matchSQL(b, args, t, column); err != nil {
				return err
			}
		}
		b.WriteString(")")
		return nil
	case access.MatchNot:
		if len(m.Terms) != 1 {
			return usher.Errorf(usher.EINVALID, "not takes one condition")
		}
		// COALESCE: NOT of a comparison with NULL is NULL, yet a user
		// without the attribute does not match it, so NOT matches them.
		b.WriteString("NOT COALESCE(")
		if err := tx.matchSQL(b, args, m.Terms[0], column); err != nil {
			return err
		}
		b.WriteString(", FALSE)")
		return nil
	}
	col, fold, err := column(m.Attr)
	if err != nil {
		return err
	}
	v := m.Value
	if fold {
		v = strings.ToLower(v)
	}
	switch m.Op {
	case access.MatchPr:
		b.WriteString("(" + col + " IS NOT NULL AND " + col + " <> '')")
		return nil
	case access.MatchEq:
		if col == userNameColumn {
			b.WriteString("(user_name_key = ? OR (user_name_key IS NULL AND email = ?))")
			*args = append(*args, v, v)
			return nil
		}
		b.WriteString(col + " = ?")
		*args = append(*args, v)
	case access.MatchNe:
		b.WriteString("(" + col + " IS NULL OR " + col + " <> ?)")
		*args = append(*args, v)
	case access.MatchCo, access.MatchSw, access.MatchEw:
		pattern := escapeLike(v)
		switch m.Op {
		case access.MatchCo:
			pattern = "%" + pattern + "%"
		case access.MatchSw:
			pattern += "%"
		default:
			pattern = "%" + pattern
		}
		if !fold {
			// LIKE ignores case on SQLite, so externalId, compared with
			// case, is matched by position instead.
			b.WriteString(tx.caseExact(m.Op, col))
			if m.Op == access.MatchCo {
				*args = append(*args, v)
			} else {
				*args = append(*args, v, v)
			}
			return nil
		}
		b.WriteString(col + ` LIKE ? ESCAPE '\'`)
		*args = append(*args, pattern)
	default:
		return usher.Errorf(usher.EINVALID, "operator %q is not supported", m.Op)
	}
	return nil
}

// caseExact is a case-exact co, sw or ew match of col on either engine.
func (tx *Tx) caseExact(op, col string) string {
	switch op {
	case access.MatchSw:
		return "substr(" + col + ", 1, length(CAST(? AS TEXT))) = ?"
	case access.MatchEw:
		return "substr(" + col + ", length(" + col + ") - length(CAST(? AS TEXT)) + 1) = ?"
	}
	if tx.engine == Postgres {
		return "strpos(" + col + ", ?) > 0"
	}
	return "instr(" + col + ", ?) > 0"
}

// SetScimIdentity stores the user's SCIM columns.
func (tx *Tx) SetScimIdentity(ctx context.Context, u access.ProvisionedUser) error {
	var userName, key sql.NullString
	if u.UserName != "" {
		userName = sql.NullString{String: u.UserName, Valid: true}
		key = sql.NullString{String: strings.ToLower(u.UserName), Valid: true}
	}
	n, err := affected(tx.exec(ctx, `
		UPDATE users SET scim_state = ?, external_id = ?, user_name = ?, user_name_key = ?, scim_profile = ?
		WHERE account_id = ? AND id = ?`,
		string(u.State), nullString(u.ExternalID), userName, key, nullString(string(u.Profile)), u.AccountID, u.ID))
	switch {
	case isUniqueViolation(err):
		return usher.Errorf(usher.ECONFLICT, "a user with userName %s already exists", u.UserName)
	case err != nil:
		return fmt.Errorf("set SCIM identity of user %d: %w", u.ID, err)
	case n == 0:
		return usher.Errorf(usher.ENOTFOUND, "user %d not found", u.ID)
	}
	return nil
}
