package web_test

import (
	"encoding/csv"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
)

// TestListUsersFiltersSortsAndExports checks GET /api/v1/users with the
// console's filters and sorts, page by page and as CSV.
func TestListUsersFiltersSortsAndExports(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		c := e.admin
		var made []userJSON
		for _, email := range []string{"dora@acme.test", "ben@acme.test", "cora@acme.test", "eve@acme.test"} {
			made = append(made, c.createUser(email))
		}
		// Ben manages DraftPro and holds its seat; Eve is disabled.
		c.createSubscription("DP-1", "draftpro", 3, made[1].ID)
		c.ok(http.StatusOK, "PATCH", "/api/v1/users/"+itoa(made[3].ID), map[string]any{"status": "disabled"}, nil)

		type page struct {
			Items      []userJSON `json:"items"`
			NextCursor string     `json:"next_cursor"`
			Total      int        `json:"total"`
		}
		walk := func(t *testing.T, query string) ([]string, int) {
			t.Helper()
			var emails []string
			total := -1
			cursor := ""
			for range 10 {
				var p page
				c.ok(http.StatusOK, "GET", "/api/v1/users?limit=2&"+query+"&cursor="+cursor, nil, &p)
				for _, u := range p.Items {
					emails = append(emails, u.Email)
				}
				if total >= 0 && p.Total != total {
					t.Fatalf("%s: total changed between pages: %d, then %d", query, total, p.Total)
				}
				total = p.Total
				if cursor = p.NextCursor; cursor == "" {
					return emails, total
				}
			}
			t.Fatalf("%s: paging does not end", query)
			return nil, 0
		}
		tests := []struct{ query, want string }{
			{"sort=email", "admin ben cora dora eve"},
			{"sort=-email", "eve dora cora ben admin"},
			{"status=disabled", "eve"},
			{"role=contract_manager", "ben"},
			{"role=primary_admin&status=active", "admin"},
			{"product=draftpro", "ben"},
			{"product=modelstudio", ""},
			{"sort=-status&q=acme", "eve dora cora ben admin"},
		}
		for _, tc := range tests {
			t.Run(tc.query, func(t *testing.T) {
				got, total := walk(t, tc.query)
				for i := range got {
					got[i], _, _ = strings.Cut(got[i], "@")
				}
				if strings.Join(got, " ") != tc.want || total != len(got) {
					t.Fatalf("got %v (total %d), want %s", got, total, tc.want)
				}
			})
		}
		t.Run("CSVHasEveryMatchingUserInOrder", func(t *testing.T) {
			r := c.do("GET", "/api/v1/users?status=active&sort=-email", nil, "Accept", "text/csv")
			if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
				t.Fatalf("got %d %s", r.Status, r.Header.Get("Content-Type"))
			}
			rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var emails []string
			for _, row := range rows[1:] {
				emails = append(emails, row[2])
			}
			if want := []string{"dora@acme.test", "cora@acme.test", "ben@acme.test", "admin@acme.test"}; !slices.Equal(rows[0], []string{"id", "name", "email", "status", "created_at"}) || !slices.Equal(emails, want) {
				t.Fatalf("got %v, want the header and %v", rows, want)
			}
		})
		t.Run("BadFiltersAreNamed", func(t *testing.T) {
			c.fail(422, "invalid", "GET", "/api/v1/users?sort=age&status=gone&role=king", nil, "role", "status", "sort")
			var p page
			c.ok(http.StatusOK, "GET", "/api/v1/users?limit=1&sort=email", nil, &p)
			c.fail(422, "invalid", "GET", "/api/v1/users?sort=name&cursor="+p.NextCursor, nil, "cursor")
		})
	})
}
