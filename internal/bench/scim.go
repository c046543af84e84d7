package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

// SCIM compares provisioning SCIMUsers users into one group through the
// SCIM 2.0 endpoint, as an identity provider does it, with inserting the
// same rows (users and memberships) with plain SQL in one transaction.
type SCIM struct {
	Users           int           // users provisioned, and put in the group
	Requests        int           // SCIM requests sent, all answered 2xx
	Create          time.Duration // looking each user up and creating them
	Patch           time.Duration // creating the group and adding the members
	Members         int           // the group's members counted afterwards
	Provisioned     int           // the account's provisioned users counted afterwards
	Baseline        time.Duration
	BaselineMethod  string
	BaselineMembers int // the baseline group's members counted afterwards
}

func (s SCIM) HTTP() time.Duration   { return s.Create + s.Patch }
func (s SCIM) HTTPRate() float64     { return rate(s.Users, s.HTTP()) }
func (s SCIM) BaselineRate() float64 { return rate(s.Users, s.Baseline) }
func (s SCIM) CreateRate() float64   { return rate(s.Users, s.Create) }
func (s SCIM) PatchRate() float64    { return rate(s.Users, s.Patch) }
func (s SCIM) Ratio() float64        { return s.HTTPRate() / max(s.BaselineRate(), 1e-9) }
func (s SCIM) ok(users int) bool {
	return s.Members == users && s.Provisioned == users && s.BaselineMembers == users
}
func scimEmail(acct string, i int) string {
	return fmt.Sprintf("%s%06d@scim.bench.usher.test", acct, i)
}

// measureSCIM provisions cfg.SCIMUsers users into a group of a new account
// through the SCIM endpoint at base, then loads the same rows into another
// new account with plain SQL, on the same database.
func measureSCIM(ctx context.Context, db *store.DB, base string, cfg Config) (SCIM, error) {
	res := SCIM{Users: cfg.SCIMUsers}
	svc := access.New(db.Access(), nil)
	newAccount := func(name, email string) (usher.Account, usher.Actor, error) {
		acct, _, token, err := svc.CreateAccount(ctx, access.NewAccount{Name: name, TimeZone: "Europe/Berlin", AdminEmail: email, AdminName: name + " Admin"})
		if err != nil {
			return acct, usher.Actor{}, fmt.Errorf("scim: account: %w", err)
		}
		actor, err := svc.Authenticate(ctx, token)
		return acct, actor, err
	}
	acct, admin, err := newAccount("SCIM Co", "admin@scim.bench.usher.test")
	if err != nil {
		return res, err
	}
	// The identity provider's own token, as an admin makes it to connect it.
	_, token, err := svc.CreateToken(ctx, admin, access.TokenInput{Name: "Entra ID", Scope: usher.ScopeSCIM})
	if err != nil {
		return res, fmt.Errorf("scim: token: %w", err)
	}
	c := &scimClient{
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.SCIMSenders + 1}},
		base: base + "/scim/v2", token: token,
	}
	ids := make([]string, cfg.SCIMUsers)
	start := time.Now()
	if err := c.createUsers(ctx, ids, cfg.SCIMSenders); err != nil {
		return res, err
	}
	res.Create = time.Since(start)
	start = time.Now()
	if err := c.fillGroup(ctx, ids, cfg.SCIMBatch); err != nil {
		return res, err
	}
	res.Patch = time.Since(start)
	res.Requests = c.requests

	q := func(query string, args ...any) (n int, err error) {
		err = db.SQL().QueryRowContext(ctx, db.Rebind(query), args...).Scan(&n)
		return n, err
	}
	if res.Members, err = q("SELECT COUNT(*) FROM group_members WHERE account_id = ?", acct.ID); err != nil {
		return res, fmt.Errorf("scim: count members: %w", err)
	}
	if res.Provisioned, err = q("SELECT COUNT(*) FROM users WHERE account_id = ? AND scim_state = 'provisioned'", acct.ID); err != nil {
		return res, fmt.Errorf("scim: count users: %w", err)
	}

	bacct, badmin, err := newAccount("SCIM Baseline Co", "admin@scim-baseline.bench.usher.test")
	if err != nil {
		return res, err
	}
	name := "All staff"
	g, err := svc.CreateGroup(ctx, badmin, access.GroupInput{Name: &name})
	if err != nil {
		return res, fmt.Errorf("scim baseline: group: %w", err)
	}
	rows, err := provisionedRows(ctx, db, acct.ID)
	if err != nil {
		return res, fmt.Errorf("scim baseline: %w", err)
	}
	start = time.Now()
	if res.BaselineMethod, err = insertProvisioned(ctx, db, bacct.ID, g.ID, rows); err != nil {
		return res, fmt.Errorf("scim baseline: %w", err)
	}
	res.Baseline = time.Since(start)
	if res.BaselineMembers, err = q("SELECT COUNT(*) FROM group_members WHERE account_id = ? AND group_id = ?", bacct.ID, g.ID); err != nil {
		return res, fmt.Errorf("scim baseline: count members: %w", err)
	}
	if !res.ok(cfg.SCIMUsers) {
		return res, fmt.Errorf("scim: %d users provisioned, %d group members, %d baseline members; want %d each",
			res.Provisioned, res.Members, res.BaselineMembers, cfg.SCIMUsers)
	}
	return res, nil
}

// scimClient speaks SCIM as an identity provider's provisioning client.
type scimClient struct {
	http     *http.Client
	base     string
	token    string
	mu       sync.Mutex
	requests int
}

// do sends one request and decodes a 2xx answer's body into out, if any;
// anything else is an error.
func (c *scimClient) do(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/scim+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// createUsers provisions len(ids) users from senders clients at once, as
// Entra ID does each: it looks the user up by userName, finds nobody, and
// creates them. ids receives each user's SCIM id.
func (c *scimClient) createUsers(ctx context.Context, ids []string, senders int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range next {
				if err := c.createUser(ctx, i, &ids[i]); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
	for i := range ids {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return first
}

func (c *scimClient) createUser(ctx context.Context, i int, id *string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	userName := scimEmail("u", i)
	var list struct {
		TotalResults int `json:"totalResults"`
	}
	filter := "/Users?filter=" + strings.ReplaceAll(fmt.Sprintf("userName eq %q", userName), " ", "%20")
	if err := c.do(ctx, "GET", filter, nil, &list); err != nil {
		return err
	}
	if list.TotalResults != 0 {
		return fmt.Errorf("GET %s: %d users, want none", filter, list.TotalResults)
	}
	given, family := firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)]
	user := map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		"userName":    userName,
		"externalId":  fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i),
		"active":      true,
		"displayName": fmt.Sprintf("%s %s %d", given, family, i),
		"emails":      []map[string]any{{"primary": true, "type": "work", "value": userName}},
		"name":        map[string]string{"givenName": given, "familyName": family},
		"title":       "Engineer",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]string{"department": "R&D", "employeeNumber": strconv.Itoa(i)},
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, "POST", "/Users", user, &out); err != nil {
		return err
	}
	if out.ID == "" {
		return fmt.Errorf("POST /Users %s: no id in the answer", userName)
	}
	*id = out.ID
	return nil
}

// fillGroup creates a group and adds the users to it batch members per
// PATCH, one PATCH after the other, as Entra ID and Okta send membership.
func (c *scimClient) fillGroup(ctx context.Context, ids []string, batch int) error {
	var g struct {
		ID string `json:"id"`
	}
	group := map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "All staff",
		"externalId":  "00000000-0000-4000-8000-00000000a11",
		"members":     []any{},
	}
	if err := c.do(ctx, "POST", "/Groups", group, &g); err != nil {
		return err
	}
	for lo := 0; lo < len(ids); lo += batch {
		members := make([]map[string]string, 0, batch)
		for _, id := range ids[lo:min(lo+batch, len(ids))] {
			members = append(members, map[string]string{"value": id})
		}
		patch := map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "Add", "path": "members", "value": members}},
		}
		if err := c.do(ctx, "PATCH", "/Groups/"+g.ID, patch, nil); err != nil {
			return err
		}
	}
	return nil
}

// provisionedRow is a users row as SCIM provisioning wrote it.
type provisionedRow struct {
	email, name, nameKey, status, scimState    string
	externalID, userName, userNameKey, profile sql.NullString
	created, updated                           int64
}

func provisionedRows(ctx context.Context, db *store.DB, accountID int64) ([]provisionedRow, error) {
	rows, err := db.SQL().QueryContext(ctx, db.Rebind(`
		SELECT email, name, name_key, status, scim_state, external_id, user_name, user_name_key, scim_profile, created_at, updated_at
		FROM users WHERE account_id = ? AND scim_state = 'provisioned' ORDER BY id`), accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []provisionedRow
	for rows.Next() {
		var r provisionedRow
		if err := rows.Scan(&r.email, &r.name, &r.nameKey, &r.status, &r.scimState, &r.externalID, &r.userName, &r.userNameKey, &r.profile, &r.created, &r.updated); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

var provisionedColumns = []string{"id", "account_id", "email", "name", "name_key", "status", "scim_state", "external_id", "user_name", "user_name_key", "scim_profile", "created_at", "updated_at"}

// insertProvisioned inserts rows as users of the account and makes them
// members of the group, in one transaction, the fastest way each engine
// offers: COPY on PostgreSQL (ids drawn from the sequence first), prepared
// INSERTs on SQLite.
func insertProvisioned(ctx context.Context, db *store.DB, accountID, groupID int64, rows []provisionedRow) (string, error) {
	now := time.Now().UnixMilli()
	if db.Engine() == store.Postgres {
		conn, err := db.SQL().Conn(ctx)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		return "COPY users and group_members in one transaction", conn.Raw(func(dc any) error {
			pc := dc.(*stdlib.Conn).Conn()
			tx, err := pc.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx) //nolint:errcheck // after Commit, a no-op
			ids := make([]int64, 0, len(rows))
			seq, err := tx.Query(ctx, "SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, $1)", len(rows))
			if err != nil {
				return err
			}
			for seq.Next() {
				var id int64
				if err := seq.Scan(&id); err != nil {
					return err
				}
				ids = append(ids, id)
			}
			if err := seq.Err(); err != nil {
				return err
			}
			users := make([][]any, len(rows))
			members := make([][]any, len(rows))
			for i, r := range rows {
				users[i] = []any{ids[i], accountID, r.email, r.name, r.nameKey, r.status, r.scimState, r.externalID, r.userName, r.userNameKey, r.profile, r.created, r.updated}
				members[i] = []any{accountID, groupID, ids[i], now}
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"}, provisionedColumns, pgx.CopyFromRows(users)); err != nil {
				return fmt.Errorf("copy users: %w", err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"group_members"}, []string{"account_id", "group_id", "user_id", "added_at"}, pgx.CopyFromRows(members)); err != nil {
				return fmt.Errorf("copy group members: %w", err)
			}
			return tx.Commit(ctx)
		})
	}
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		insUser, err := tx.PrepareContext(ctx, `INSERT INTO users (account_id, email, name, name_key, status, scim_state, external_id, user_name, user_name_key, scim_profile, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insUser.Close()
		insMember, err := tx.PrepareContext(ctx, "INSERT INTO group_members (account_id, group_id, user_id, added_at) VALUES (?, ?, ?, ?)")
		if err != nil {
			return err
		}
		defer insMember.Close()
		for _, r := range rows {
			res, err := insUser.ExecContext(ctx, accountID, r.email, r.name, r.nameKey, r.status, r.scimState, r.externalID, r.userName, r.userNameKey, r.profile, r.created, r.updated)
			if err != nil {
				return fmt.Errorf("insert user: %w", err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			if _, err := insMember.ExecContext(ctx, accountID, groupID, id, now); err != nil {
				return fmt.Errorf("insert group member: %w", err)
			}
		}
		return nil
	})
	return "prepared INSERTs of users and group_members in one transaction", err
}
