package store_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// A userName is the user's userName, or their email when they have none;
// a filter does not show users the client deleted, a lookup does.
func TestProvisionedUserByUserName(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newAccount(t, db, "Acme")
		other := newAccount(t, db, "Other")
		made := newUser(t, db, a.ID, "made@acme.test", "Made In Usher")
		named := newUser(t, db, a.ID, "named@acme.test", "Named")
		gone := newUser(t, db, a.ID, "gone@acme.test", "Gone")
		newUser(t, db, other.ID, "elsewhere@acme.test", "Elsewhere")
		write(t, db, func(tx *store.Tx) error {
			if err := tx.SetScimIdentity(ctx, access.ProvisionedUser{User: named, State: access.ScimProvisioned, UserName: "Ada.Named"}); err != nil {
				return err
			}
			return tx.SetScimIdentity(ctx, access.ProvisionedUser{User: gone, State: access.ScimDeleted, UserName: "gone"})
		})
		for _, tc := range []struct {
			userName string
			lookup   int64 // 0: not found
			filter   int64 // 0: none
		}{
			{"made@acme.test", made.ID, made.ID},
			{" MADE@acme.test ", made.ID, 0}, // a filter's value is not trimmed
			{"ada.named", named.ID, named.ID},
			{"ADA.NAMED", named.ID, named.ID},
			{"named@acme.test", 0, 0}, // a userName hides the email
			{"gone", gone.ID, 0},
			{"elsewhere@acme.test", 0, 0},
		} {
			t.Run(tc.userName, func(t *testing.T) {
				err := db.Read(ctx, func(tx *store.Tx) error {
					u, err := tx.ProvisionedUserByUserName(ctx, a.ID, tc.userName)
					if tc.lookup == 0 {
						wantCode(t, err, usher.ENOTFOUND)
					} else if err != nil || u.ID != tc.lookup {
						t.Errorf("lookup: got user %d (%v), want %d", u.ID, err, tc.lookup)
					}
					found, total, err := tx.FindProvisionedUsers(ctx, a.ID, access.UserMatch{Op: access.MatchEq, Attr: access.AttrUserName, Value: tc.userName}, 0, 10)
					if err != nil {
						return err
					}
					want := 0
					if tc.filter != 0 {
						want = 1
					}
					if total != want || len(found) != want || (want == 1 && found[0].ID != tc.filter) {
						t.Errorf("filter: got %d of %d (%+v), want user %d", len(found), total, found, tc.filter)
					}
					if found, total, err := tx.FindProvisionedUsers(ctx, a.ID, access.UserMatch{Op: access.MatchEq, Attr: access.AttrUserName, Value: tc.userName}, 1, 10); err != nil || len(found) != 0 || total != want {
						t.Errorf("filter from the second: got %d of %d (%v), want none of %d", len(found), total, err, want)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// The lookup a provisioning client makes before creating each user reads
// one row per half whatever the statistics say: here ANALYZE saw only an
// account whose users have no userName, and none of the account looked in.
// An OR of the two halves scanned the whole table on SQLite, and all the
// account's users on PostgreSQL (decision 0039).
func TestUserNameLookupReadsOneRowPerHalf(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		big := newAccount(t, db, "Big")
		q := `INSERT INTO users (account_id, email, name, name_key, status, created_at, updated_at) VALUES `
		var args []any
		for i := range 2000 {
			if i > 0 {
				q += ", "
			}
			q += "(?, ?, 'U', 'u', 'active', 0, 0)"
			args = append(args, big.ID, fmt.Sprintf("user%d@big.test", i))
		}
		if _, err := db.SQL().ExecContext(ctx, db.Rebind(q), args...); err != nil {
			t.Fatal(err)
		}
		if err := db.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
		fresh := newAccount(t, db, "Fresh")
		for i := range 300 {
			u := newUser(t, db, fresh.ID, fmt.Sprintf("p%d@fresh.test", i), "P")
			if i%2 == 0 {
				write(t, db, func(tx *store.Tx) error {
					return tx.SetScimIdentity(ctx, access.ProvisionedUser{User: u, State: access.ScimProvisioned, UserName: u.Email})
				})
			}
		}
		lookup := store.UserNameLookupForTest(db.Engine())
		for _, tc := range []struct {
			account int64
			key     string
		}{
			{fresh.ID, "p2@fresh.test"}, {fresh.ID, "p3@fresh.test"}, {fresh.ID, "nobody@fresh.test"},
			{big.ID, "user7@big.test"}, {big.ID, "nobody@big.test"},
		} {
			args := []any{tc.account, tc.key, tc.account, tc.key}
			if db.Engine() == store.SQLite {
				plan := explainSQLite(t, db, lookup, args)
				joined := strings.Join(plan, "; ")
				for _, l := range plan {
					if strings.HasPrefix(l, "SCAN ") && l != "SCAN CONSTANT ROW" {
						t.Errorf("%s: %s in plan %s", tc.key, l, joined)
					}
				}
				if !strings.Contains(joined, "(account_id=? AND user_name_key=?)") || !strings.Contains(joined, "(account_id=? AND email=?)") {
					t.Errorf("%s: plan %s, want a search on each unique key", tc.key, joined)
				}
				continue
			}
			// PostgreSQL: the rows read and thrown away, from EXPLAIN ANALYZE.
			var plan []string
			rows, err := db.SQL().QueryContext(ctx, "EXPLAIN ANALYZE "+lookup, args...)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			rows.Close()
			removed := 0
			for _, m := range regexp.MustCompile(`Rows Removed by Filter: (\d+)`).FindAllStringSubmatch(strings.Join(plan, "\n"), -1) {
				n, _ := strconv.Atoi(m[1])
				removed += n
			}
			if removed > 1 || strings.Contains(strings.Join(plan, "\n"), "Seq Scan") {
				t.Errorf("%s: %d rows read in vain, want at most 1:\n%s", tc.key, removed, strings.Join(plan, "\n"))
			}
		}
	})
}

func explainSQLite(t *testing.T, db *store.DB, query string, args []any) []string {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return plan
}
