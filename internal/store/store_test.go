package store_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// now is a fixed instant with milliseconds, as the store keeps them.
var now = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// ---- helpers ----

func write(t testing.TB, db *store.DB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := db.Write(context.Background(), fn); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func read(t testing.TB, db *store.DB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := db.Read(context.Background(), fn); err != nil {
		t.Fatalf("read: %v", err)
	}
}

// wantCode fails unless err carries the usher error code want.
func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := usher.ErrorCode(err); got != want {
		t.Fatalf("error code: got %q (%v), want %q", got, err, want)
	}
}

func newAccount(t testing.TB, db *store.DB, name string) usher.Account {
	t.Helper()
	a := usher.Account{Name: name, TimeZone: "Europe/Berlin", CreatedAt: now}
	write(t, db, func(tx *store.Tx) error { return tx.CreateAccount(context.Background(), &a) })
	return a
}

func newUser(t testing.TB, db *store.DB, accountID int64, email, name string) usher.User {
	t.Helper()
	u := usher.User{AccountID: accountID, Email: email, Name: name, Status: usher.UserActive, CreatedAt: now, UpdatedAt: now}
	write(t, db, func(tx *store.Tx) error { return tx.CreateUser(context.Background(), &u) })
	return u
}

func newSubscription(t testing.TB, db *store.DB, accountID int64, contract string, seats int, benefits ...string) usher.Subscription {
	t.Helper()
	ctx := context.Background()
	var s usher.Subscription
	write(t, db, func(tx *store.Tx) error {
		p, err := tx.ProductByCode(ctx, "modelstudio")
		if err != nil {
			return err
		}
		s = usher.Subscription{
			AccountID: accountID, Product: p, Plan: usher.PlanPremium, Seats: seats, ContractNumber: contract,
			TermStart: date("2025-01-01"), TermEnd: date("2025-12-31"), Benefits: benefits, CreatedAt: now,
		}
		return tx.CreateSubscription(ctx, &s)
	})
	return s
}

func date(s string) usher.Date {
	d, err := usher.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func subscription(t testing.TB, db *store.DB, accountID, id int64) usher.Subscription {
	t.Helper()
	var s usher.Subscription
	read(t, db, func(tx *store.Tx) (err error) {
		s, err = tx.SubscriptionByID(context.Background(), accountID, id)
		return err
	})
	return s
}

// count runs a COUNT(*) query written without parameters.
func count(t testing.TB, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRowContext(context.Background(), fmt.Sprintf(query, args...)).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// assign reserves a seat and records the assignment, as the access service does.
func assign(ctx context.Context, tx *store.Tx, accountID, userID, subID int64, services ...string) error {
	if err := tx.ReserveSeat(ctx, accountID, subID); err != nil {
		return err
	}
	if services == nil {
		services = []string{}
	}
	return tx.InsertAssignment(ctx, usher.Assignment{AccountID: accountID, UserID: userID, SubscriptionID: subID, Services: services, AssignedAt: now})
}

// ---- accounts ----

func TestAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newAccount(t, db, "Acme")
		b := newAccount(t, db, "Globex")
		if a.ID == 0 || b.ID == 0 || a.ID == b.ID {
			t.Fatalf("ids: got %d and %d, want two distinct non-zero ids", a.ID, b.ID)
		}

		t.Run("ByIDRoundTrips", func(t *testing.T) {
			var got usher.Account
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.AccountByID(ctx, a.ID); return err })
			if got != a {
				t.Fatalf("got %+v, want %+v", got, a)
			}
		})
		t.Run("ListIsByID", func(t *testing.T) {
			var got []usher.Account
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.ListAccounts(ctx); return err })
			if !slices.Equal(got, []usher.Account{a, b}) {
				t.Fatalf("got %+v, want %+v", got, []usher.Account{a, b})
			}
		})
		t.Run("UnknownIsNotFound", func(t *testing.T) {
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.AccountByID(ctx, b.ID+100); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

// ---- users ----

func TestUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		ada := newUser(t, db, acct.ID, "ada@example.com", "Ada Lovelace")

		t.Run("ByIDAndEmailRoundTrip", func(t *testing.T) {
			var byID, byEmail usher.User
			read(t, db, func(tx *store.Tx) (err error) {
				if byID, err = tx.UserByID(ctx, acct.ID, ada.ID); err != nil {
					return err
				}
				byEmail, err = tx.UserByEmail(ctx, acct.ID, "ada@example.com")
				return err
			})
			if byID != ada || byEmail != ada {
				t.Fatalf("got %+v and %+v, want %+v", byID, byEmail, ada)
			}
		})
		t.Run("DuplicateEmailIsConflict", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.CreateUser(ctx, &usher.User{AccountID: acct.ID, Email: "ada@example.com", Name: "Other", Status: usher.UserActive})
			})
			wantCode(t, err, usher.ECONFLICT)
			if got, want := usher.ErrorMessage(err), "a user with email ada@example.com already exists"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
		t.Run("SameEmailInAnotherAccountIsFine", func(t *testing.T) {
			other := newAccount(t, db, "Other")
			newUser(t, db, other.ID, "ada@example.com", "Ada Elsewhere")
		})
		t.Run("UnknownAccountIsNotFound", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.CreateUser(ctx, &usher.User{AccountID: 9999, Email: "x@example.com", Name: "X", Status: usher.UserActive})
			})
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("UnknownIDAndEmailAreNotFound", func(t *testing.T) {
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.UserByID(ctx, acct.ID, ada.ID+1000); return err })
			wantCode(t, err, usher.ENOTFOUND)
			if got, want := usher.ErrorMessage(err), fmt.Sprintf("user %d not found", ada.ID+1000); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			err = db.Read(ctx, func(tx *store.Tx) error { _, err := tx.UserByEmail(ctx, acct.ID, "nobody@example.com"); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("UpdateChangesFields", func(t *testing.T) {
			u := newUser(t, db, acct.ID, "bob@example.com", "Bob")
			u.Email, u.Name, u.Status, u.UpdatedAt = "robert@example.com", "Robert", usher.UserDisabled, now.Add(time.Hour)
			write(t, db, func(tx *store.Tx) error { return tx.UpdateUser(ctx, u) })
			var got usher.User
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.UserByID(ctx, acct.ID, u.ID); return err })
			if got != u {
				t.Fatalf("got %+v, want %+v", got, u)
			}
		})
		t.Run("UpdateToTakenEmailIsConflict", func(t *testing.T) {
			u := newUser(t, db, acct.ID, "carol@example.com", "Carol")
			u.Email = "ada@example.com"
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.UpdateUser(ctx, u) })
			wantCode(t, err, usher.ECONFLICT)
		})
		t.Run("UpdateUnknownIsNotFound", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.UpdateUser(ctx, usher.User{ID: 9999, AccountID: acct.ID, Email: "z@example.com", Name: "Z", Status: usher.UserActive})
			})
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("DeleteUnknownIsNotFound", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.DeleteUser(ctx, acct.ID, 9999) })
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

func TestDeleteUserRemovesEverythingTheyHeldAndFreesSeats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		u := newUser(t, db, acct.ID, "dan@example.com", "Dan")
		keep := newUser(t, db, acct.ID, "eve@example.com", "Eve")
		sub := newSubscription(t, db, acct.ID, "C-1", 3, "web_support")
		sub2 := newSubscription(t, db, acct.ID, "C-2", 3)
		tok := usher.Token{AccountID: acct.ID, UserID: u.ID, Name: "t", Scope: usher.ScopeFull, Hash: []byte("hash-dan"), CreatedAt: now}
		write(t, db, func(tx *store.Tx) error {
			for _, err := range []error{
				tx.GrantRole(ctx, acct.ID, usher.RoleGrant{UserID: u.ID, Role: usher.RoleSecondaryAdmin}),
				tx.GrantRole(ctx, acct.ID, usher.RoleGrant{UserID: u.ID, Role: usher.RoleContractManager, SubscriptionID: sub.ID}),
				tx.CreateToken(ctx, &tok),
				assign(ctx, tx, acct.ID, u.ID, sub.ID, "rendering"),
				assign(ctx, tx, acct.ID, u.ID, sub2.ID),
				assign(ctx, tx, acct.ID, keep.ID, sub.ID),
				tx.SetBenefits(ctx, acct.ID, u.ID, sub.ID, []string{"web_support"}),
			} {
				if err != nil {
					return err
				}
			}
			return tx.DeleteUser(ctx, acct.ID, u.ID)
		})
		read(t, db, func(tx *store.Tx) error {
			if _, err := tx.UserByID(ctx, acct.ID, u.ID); usher.ErrorCode(err) != usher.ENOTFOUND {
				t.Fatalf("user: got %v, want not found", err)
			}
			if _, err := tx.TokenByHash(ctx, tok.Hash); usher.ErrorCode(err) != usher.ENOTFOUND {
				t.Fatalf("token: got %v, want not found", err)
			}
			return nil
		})
		for _, table := range []string{"role_grants", "assignments", "assignment_services", "benefit_grants"} {
			if got := count(t, db, "SELECT COUNT(*) FROM %s WHERE user_id = %d", table, u.ID); got != 0 {
				t.Fatalf("%s: got %d rows, want 0", table, got)
			}
		}
		if got := subscription(t, db, acct.ID, sub.ID).SeatsUsed; got != 1 {
			t.Fatalf("seats used of %s: got %d, want 1 (Eve's)", sub.ContractNumber, got)
		}
		if got := subscription(t, db, acct.ID, sub2.ID).SeatsUsed; got != 0 {
			t.Fatalf("seats used of %s: got %d, want 0", sub2.ContractNumber, got)
		}
	})
}

func TestListUsersWalksEveryUserOnceInNameOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		other := newAccount(t, db, "Other")
		newUser(t, db, other.ID, "intruder@example.com", "Aaron Intruder")

		// Duplicate names (ties broken by id), mixed case, punctuation
		// and non-ASCII, which locale collations would order differently.
		names := []string{"bob", "Alice", "alice", "Bob", "Zoë", "zed", "Émile", "al ice", "al-ice", "Al_ice",
			"100% Carl", "carl", "Dora", "dora", "ALICE", "Mallory", "", "x", "Y", "y"}
		var all []usher.User
		for i, n := range names {
			all = append(all, newUser(t, db, acct.ID, fmt.Sprintf("u%02d@example.com", i), n))
		}
		slices.SortFunc(all, func(a, b usher.User) int {
			if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})

		walk := func(t *testing.T, query string, limit int) []usher.User {
			t.Helper()
			var got []usher.User
			f := access.UserFilter{Query: query, Limit: limit}
			for pages := 0; ; pages++ {
				if pages > len(names) {
					t.Fatalf("pagination does not end")
				}
				var page []usher.User
				read(t, db, func(tx *store.Tx) (err error) { page, err = tx.ListUsers(ctx, acct.ID, f); return err })
				got = append(got, page...)
				if len(page) < limit {
					return got
				}
				last := page[len(page)-1]
				f.AfterName, f.AfterID = strings.ToLower(last.Name), last.ID
			}
		}
		ids := func(us []usher.User) []int64 {
			out := make([]int64, len(us))
			for i, u := range us {
				out[i] = u.ID
			}
			return out
		}

		for _, limit := range []int{1, 3, 7, len(names), 100} {
			t.Run(fmt.Sprintf("PagesOf%d", limit), func(t *testing.T) {
				got := walk(t, "", limit)
				if !slices.Equal(ids(got), ids(all)) {
					t.Fatalf("got %v, want %v", names2(got), names2(all))
				}
			})
		}

		tests := []struct {
			name, query string
			want        func(u usher.User) bool
		}{
			{"QueryMatchesNameCaseInsensitively", "ALI", func(u usher.User) bool { return strings.Contains(strings.ToLower(u.Name), "ali") }},
			{"QueryMatchesEmail", "U1", func(u usher.User) bool { return strings.HasPrefix(u.Email, "u1") }},
			{"QueryPercentIsLiteral", "100%", func(u usher.User) bool { return u.Name == "100% Carl" }},
			{"QueryUnderscoreIsLiteral", "l_i", func(u usher.User) bool { return u.Name == "Al_ice" }},
			{"QueryMatchesNothing", "nobody-at-all", func(usher.User) bool { return false }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				want := []usher.User{}
				for _, u := range all {
					if tc.want(u) {
						want = append(want, u)
					}
				}
				got := walk(t, tc.query, 2)
				if !slices.Equal(ids(got), ids(want)) {
					t.Fatalf("got %v, want %v", names2(got), names2(want))
				}
			})
		}
	})
}

func names2(us []usher.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = fmt.Sprintf("%q#%d", u.Name, u.ID)
	}
	return out
}

// ---- roles and tokens ----

func TestRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		u := newUser(t, db, acct.ID, "ada@example.com", "Ada")
		v := newUser(t, db, acct.ID, "bob@example.com", "Bob")
		s1 := newSubscription(t, db, acct.ID, "C-1", 1)
		s2 := newSubscription(t, db, acct.ID, "C-2", 1)
		grants := []usher.RoleGrant{
			{UserID: u.ID, Role: usher.RoleSoftwareCoordinator, SubscriptionID: s2.ID},
			{UserID: u.ID, Role: usher.RoleContractManager, SubscriptionID: s2.ID},
			{UserID: u.ID, Role: usher.RoleContractManager, SubscriptionID: s1.ID},
			{UserID: u.ID, Role: usher.RolePrimaryAdmin},
			{UserID: v.ID, Role: usher.RoleContractManager, SubscriptionID: s1.ID},
		}
		write(t, db, func(tx *store.Tx) error {
			for _, g := range grants {
				if err := tx.GrantRole(ctx, acct.ID, g); err != nil {
					return err
				}
			}
			return nil
		})

		t.Run("GrantTwiceIsIdempotent", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error {
				if err := tx.GrantRole(ctx, acct.ID, grants[0]); err != nil {
					return err
				}
				return tx.GrantRole(ctx, acct.ID, grants[3])
			})
			if got := count(t, db, "SELECT COUNT(*) FROM role_grants"); got != len(grants) {
				t.Fatalf("got %d grants, want %d", got, len(grants))
			}
		})
		t.Run("RolesOfIsMostPowerfulFirst", func(t *testing.T) {
			var got []usher.RoleGrant
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.RolesOf(ctx, acct.ID, u.ID); return err })
			want := []usher.RoleGrant{grants[3], grants[2], grants[1], grants[0]}
			if !slices.Equal(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
		t.Run("UserWithRolesAnswersWhatUserByIDAndRolesOfDo", func(t *testing.T) {
			other := newAccount(t, db, "Other")
			w := newUser(t, db, acct.ID, "cy@example.com", "Cy") // no grants
			for _, id := range []int64{u.ID, v.ID, w.ID} {
				var gotUser, wantUser usher.User
				var got, want []usher.RoleGrant
				read(t, db, func(tx *store.Tx) (err error) {
					if gotUser, got, err = tx.UserWithRoles(ctx, acct.ID, id); err != nil {
						return err
					}
					if wantUser, err = tx.UserByID(ctx, acct.ID, id); err != nil {
						return err
					}
					want, err = tx.RolesOf(ctx, acct.ID, id)
					return err
				})
				if gotUser != wantUser || !slices.Equal(got, want) {
					t.Fatalf("user %d: got %+v %+v, want %+v %+v", id, gotUser, got, wantUser, want)
				}
			}
			err := db.Read(ctx, func(tx *store.Tx) error { _, _, err := tx.UserWithRoles(ctx, other.ID, u.ID); return err })
			wantCode(t, err, usher.ENOTFOUND)
			err = db.Read(ctx, func(tx *store.Tx) error { _, _, err := tx.UserWithRoles(ctx, acct.ID, 99999); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("UsersWithRole", func(t *testing.T) {
			var got []usher.RoleGrant
			read(t, db, func(tx *store.Tx) (err error) {
				got, err = tx.UsersWithRole(ctx, acct.ID, usher.RoleContractManager)
				return err
			})
			want := []usher.RoleGrant{grants[2], grants[1], grants[4]}
			if !slices.Equal(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
		t.Run("RevokeRemovesOnlyThatGrant", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error { return tx.RevokeRole(ctx, acct.ID, grants[1]) })
			var got []usher.RoleGrant
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.RolesOf(ctx, acct.ID, u.ID); return err })
			want := []usher.RoleGrant{grants[3], grants[2], grants[0]}
			if !slices.Equal(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
		t.Run("RevokeMissingIsNotFound", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.RevokeRole(ctx, acct.ID, usher.RoleGrant{UserID: v.ID, Role: usher.RolePrimaryAdmin})
			})
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("GrantToUnknownUserOrSubscriptionIsNotFound", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.GrantRole(ctx, acct.ID, usher.RoleGrant{UserID: 9999, Role: usher.RoleSecondaryAdmin})
			})
			wantCode(t, err, usher.ENOTFOUND)
			err = db.Write(ctx, func(tx *store.Tx) error {
				return tx.GrantRole(ctx, acct.ID, usher.RoleGrant{UserID: v.ID, Role: usher.RoleContractManager, SubscriptionID: 9999})
			})
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		u := newUser(t, db, acct.ID, "ada@example.com", "Ada")
		_, hash := access.NewToken()
		tok := usher.Token{AccountID: acct.ID, UserID: u.ID, Name: "ci", Scope: usher.ScopeIngest, Hash: hash, CreatedAt: now}
		write(t, db, func(tx *store.Tx) error { return tx.CreateToken(ctx, &tok) })
		if tok.ID == 0 {
			t.Fatalf("got id 0, want an id")
		}

		t.Run("ByHashRoundTrips", func(t *testing.T) {
			var got usher.Token
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.TokenByHash(ctx, hash); return err })
			if got.ID != tok.ID || got.AccountID != acct.ID || got.UserID != u.ID || got.Name != "ci" ||
				got.Scope != usher.ScopeIngest || string(got.Hash) != string(hash) || !got.CreatedAt.Equal(now) {
				t.Fatalf("got %+v, want %+v", got, tok)
			}
		})
		t.Run("UnknownHashIsNotFound", func(t *testing.T) {
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.TokenByHash(ctx, access.HashToken("nope")); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("HolderHasTheTokenStatusAndGrantsInOneRead", func(t *testing.T) {
			var got usher.Token
			var status usher.UserStatus
			var grants []usher.RoleGrant
			read(t, db, func(tx *store.Tx) (err error) { got, status, grants, err = tx.TokenHolder(ctx, hash); return err })
			if got.ID != tok.ID || got.UserEmail != "ada@example.com" || status != usher.UserActive || len(grants) != 0 {
				t.Fatalf("got %+v, %s, %+v; want the token, active, no grants", got, status, grants)
			}
			sub := newSubscription(t, db, acct.ID, "C-HOLD", 1)
			write(t, db, func(tx *store.Tx) error {
				for _, g := range []usher.RoleGrant{{UserID: u.ID, Role: usher.RoleContractManager, SubscriptionID: sub.ID}, {UserID: u.ID, Role: usher.RoleSecondaryAdmin}} {
					if err := tx.GrantRole(ctx, acct.ID, g); err != nil {
						return err
					}
				}
				return nil
			})
			var want []usher.RoleGrant
			read(t, db, func(tx *store.Tx) (err error) {
				if _, _, grants, err = tx.TokenHolder(ctx, hash); err != nil {
					return err
				}
				want, err = tx.RolesOf(ctx, acct.ID, u.ID)
				return err
			})
			if !slices.Equal(grants, want) || len(grants) != 2 {
				t.Fatalf("grants %+v, want %+v as RolesOf gives them", grants, want)
			}
			err := db.Read(ctx, func(tx *store.Tx) error { _, _, _, err := tx.TokenHolder(ctx, access.HashToken("nope")); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("DuplicateHashIsConflict", func(t *testing.T) {
			dup := tok
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.CreateToken(ctx, &dup) })
			wantCode(t, err, usher.ECONFLICT)
		})
		t.Run("ExpiryLastUseAndOwnerRoundTrip", func(t *testing.T) {
			v := newUser(t, db, acct.ID, "vic@example.com", "Vic")
			exp := now.Add(90 * 24 * time.Hour)
			_, h := access.NewToken()
			rt := usher.Token{AccountID: acct.ID, UserID: v.ID, Name: "read", Scope: usher.ScopeRead, Hash: h, CreatedAt: now, ExpiresAt: &exp}
			write(t, db, func(tx *store.Tx) error { return tx.CreateToken(ctx, &rt) })
			var got usher.Token
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.TokenByID(ctx, acct.ID, rt.ID); return err })
			if got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.LastUsedAt != nil || got.UserEmail != "vic@example.com" || got.Scope != usher.ScopeRead {
				t.Fatalf("got %+v, want expiry %v, no last use, owner vic", got, exp)
			}
			// A touch within the minute does not move the recorded use.
			first, second := now.Add(time.Second), now.Add(30*time.Second)
			write(t, db, func(tx *store.Tx) error { return tx.TouchToken(ctx, rt.ID, first, first.Add(-time.Minute)) })
			write(t, db, func(tx *store.Tx) error { return tx.TouchToken(ctx, rt.ID, second, second.Add(-time.Minute)) })
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.TokenByHash(ctx, h); return err })
			if got.LastUsedAt == nil || !got.LastUsedAt.Equal(first) {
				t.Fatalf("last used %v, want %v", got.LastUsedAt, first)
			}

			var mine, all []usher.Token
			read(t, db, func(tx *store.Tx) (err error) { mine, err = tx.ListTokens(ctx, acct.ID, v.ID); return err })
			read(t, db, func(tx *store.Tx) (err error) { all, err = tx.ListTokens(ctx, acct.ID, 0); return err })
			if len(mine) != 1 || mine[0].ID != rt.ID || len(all) != 2 || all[0].ID != tok.ID {
				t.Fatalf("got own %v and all %v, want [%d] and [%d %d]", mine, all, rt.ID, tok.ID, rt.ID)
			}

			other := newAccount(t, db, "Other")
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.TokenByID(ctx, other.ID, rt.ID); return err })
			wantCode(t, err, usher.ENOTFOUND)
			err = db.Write(ctx, func(tx *store.Tx) error { return tx.DeleteToken(ctx, other.ID, rt.ID) })
			wantCode(t, err, usher.ENOTFOUND)
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.TokenByID(ctx, 0, rt.ID); return err })
			if got.AccountID != acct.ID {
				t.Fatalf("any-account lookup got account %d, want %d", got.AccountID, acct.ID)
			}

			var n int
			write(t, db, func(tx *store.Tx) (err error) { n, err = tx.DeleteTokensOfUser(ctx, acct.ID, v.ID); return err })
			if n != 1 {
				t.Fatalf("deleted %d tokens, want 1", n)
			}
			err = db.Read(ctx, func(tx *store.Tx) error { _, err := tx.TokenByHash(ctx, h); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

// ---- products ----

func TestProducts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()

		t.Run("CatalogIsSeeded", func(t *testing.T) {
			var got []usher.Product
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.ListProducts(ctx); return err })
			want := map[string][]string{
				"draftpro":    {"cloud_storage", "shared_views"},
				"modelstudio": {"cloud_storage", "rendering", "generative"},
				"civilworks":  {"cloud_storage", "collaboration"},
				"animator":    {"cloud_storage", "rendering"},
				"plantdesign": {"cloud_storage", "collaboration", "rendering"},
			}
			order := []string{"draftpro", "modelstudio", "civilworks", "animator", "plantdesign"}
			if len(got) != len(order) {
				t.Fatalf("got %d products, want %d", len(got), len(order))
			}
			for i, p := range got {
				var codes []string
				for _, s := range p.Services {
					codes = append(codes, s.Code)
				}
				if p.Code != order[i] || !slices.Equal(codes, want[p.Code]) {
					t.Fatalf("product %d: got %s %v, want %s %v", i, p.Code, codes, order[i], want[order[i]])
				}
			}
			if got[3].Name != "Animator 3D" || got[1].Services[2].Name != "Generative design" {
				t.Fatalf("names: got %q and %q", got[3].Name, got[1].Services[2].Name)
			}
		})
		t.Run("ByCodeHasServices", func(t *testing.T) {
			var p usher.Product
			read(t, db, func(tx *store.Tx) (err error) { p, err = tx.ProductByCode(ctx, "civilworks"); return err })
			want := []usher.Service{{Code: "cloud_storage", Name: "Cloud storage"}, {Code: "collaboration", Name: "Design collaboration"}}
			if p.Name != "CivilWorks" || !slices.Equal(p.Services, want) {
				t.Fatalf("got %+v, want CivilWorks with %+v", p, want)
			}
		})
		t.Run("UnknownCodeIsNotFound", func(t *testing.T) {
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.ProductByCode(ctx, "nope"); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("CreateKeepsServiceOrder", func(t *testing.T) {
			p := usher.Product{Code: "sketch", Name: "Sketch", Services: []usher.Service{{Code: "z_last", Name: "Z"}, {Code: "a_first", Name: "A"}}}
			write(t, db, func(tx *store.Tx) error { return tx.CreateProduct(ctx, &p) })
			var got usher.Product
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.ProductByCode(ctx, "sketch"); return err })
			if got.ID != p.ID || !slices.Equal(got.Services, p.Services) {
				t.Fatalf("got %+v, want %+v", got, p)
			}
		})
		t.Run("DuplicateCodeIsConflict", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.CreateProduct(ctx, &usher.Product{Code: "draftpro", Name: "Again"})
			})
			wantCode(t, err, usher.ECONFLICT)
		})
	})
}

// ---- subscriptions ----

func TestSubscriptions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		s := newSubscription(t, db, acct.ID, "C-100", 5, "web_support", "phone_support")

		t.Run("ByIDRoundTrips", func(t *testing.T) {
			got := subscription(t, db, acct.ID, s.ID)
			if got.ID != s.ID || got.AccountID != acct.ID || got.Plan != usher.PlanPremium || got.Seats != 5 || got.SeatsUsed != 0 ||
				got.ContractNumber != "C-100" || got.TermStart != s.TermStart || got.TermEnd != s.TermEnd || !got.CreatedAt.Equal(now) {
				t.Fatalf("got %+v, want %+v", got, s)
			}
			if got.Product.Code != "modelstudio" || len(got.Product.Services) != 3 {
				t.Fatalf("product: got %+v, want modelstudio with 3 services", got.Product)
			}
			if want := []string{"phone_support", "web_support"}; !slices.Equal(got.Benefits, want) {
				t.Fatalf("benefits: got %v, want %v", got.Benefits, want)
			}
		})
		t.Run("SeatsUsedStartsAtZero", func(t *testing.T) {
			in := usher.Subscription{AccountID: acct.ID, Product: s.Product, Plan: usher.PlanBasic, Seats: 2, SeatsUsed: 2,
				ContractNumber: "C-101", TermStart: date("2025-01-01"), TermEnd: date("2026-01-01"), CreatedAt: now}
			write(t, db, func(tx *store.Tx) error { return tx.CreateSubscription(ctx, &in) })
			if got := subscription(t, db, acct.ID, in.ID); got.SeatsUsed != 0 || len(got.Benefits) != 0 || got.Benefits == nil {
				t.Fatalf("got seats used %d and benefits %#v, want 0 and []", got.SeatsUsed, got.Benefits)
			}
		})
		t.Run("DuplicateContractNumberIsConflict", func(t *testing.T) {
			dup := s
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.CreateSubscription(ctx, &dup) })
			wantCode(t, err, usher.ECONFLICT)
			if got, want := usher.ErrorMessage(err), "contract number C-100 already exists"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
		t.Run("SameContractNumberInAnotherAccountIsFine", func(t *testing.T) {
			other := newAccount(t, db, "Other")
			newSubscription(t, db, other.ID, "C-100", 1)
		})
		t.Run("UnknownProductIsNotFound", func(t *testing.T) {
			in := usher.Subscription{AccountID: acct.ID, Product: usher.Product{ID: 9999}, Plan: usher.PlanBasic, Seats: 1,
				ContractNumber: "C-X", TermStart: date("2025-01-01"), TermEnd: date("2026-01-01")}
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.CreateSubscription(ctx, &in) })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("UnknownIDIsNotFound", func(t *testing.T) {
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.SubscriptionByID(ctx, acct.ID, 9999); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

func TestListSubscriptions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		var subs []usher.Subscription
		for i := range 6 {
			var benefits []string
			if i%2 == 0 {
				benefits = []string{"training", "web_support"}
			}
			subs = append(subs, newSubscription(t, db, acct.ID, fmt.Sprintf("C-%d", i), i, benefits...))
		}
		list := func(t *testing.T, f access.SubscriptionFilter) []usher.Subscription {
			t.Helper()
			var got []usher.Subscription
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.ListSubscriptions(ctx, acct.ID, f); return err })
			return got
		}
		contracts := func(ss []usher.Subscription) []string {
			out := []string{}
			for _, s := range ss {
				out = append(out, s.ContractNumber)
			}
			return out
		}

		t.Run("PagesByID", func(t *testing.T) {
			first := list(t, access.SubscriptionFilter{Limit: 4})
			rest := list(t, access.SubscriptionFilter{AfterID: first[len(first)-1].ID, Limit: 4})
			got := contracts(append(first, rest...))
			if want := contracts(subs); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
		t.Run("LoadsBenefitsAndServicesOfEveryRow", func(t *testing.T) {
			for i, s := range list(t, access.SubscriptionFilter{Limit: 10}) {
				want := []string{}
				if i%2 == 0 {
					want = []string{"training", "web_support"}
				}
				if !slices.Equal(s.Benefits, want) || len(s.Product.Services) != 3 {
					t.Fatalf("%s: got benefits %v and %d services, want %v and 3", s.ContractNumber, s.Benefits, len(s.Product.Services), want)
				}
			}
		})
		t.Run("IDsSelect", func(t *testing.T) {
			got := contracts(list(t, access.SubscriptionFilter{IDs: []int64{subs[4].ID, subs[1].ID, 9999}, Limit: 10}))
			if want := []string{"C-1", "C-4"}; !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
		t.Run("EmptyIDsSelectNothing", func(t *testing.T) {
			got := list(t, access.SubscriptionFilter{IDs: []int64{}, Limit: 10})
			if got == nil || len(got) != 0 {
				t.Fatalf("got %#v, want an empty list", got)
			}
		})
	})
}

// ---- seats ----

func TestSeats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		s := newSubscription(t, db, acct.ID, "C-7", 2)

		t.Run("ReserveUntilFullThenNoSeats", func(t *testing.T) {
			for range 2 {
				write(t, db, func(tx *store.Tx) error { return tx.ReserveSeat(ctx, acct.ID, s.ID) })
			}
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.ReserveSeat(ctx, acct.ID, s.ID) })
			wantCode(t, err, usher.ENOSEATS)
			if got, want := usher.ErrorMessage(err), "no seats available on contract C-7"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			if got := subscription(t, db, acct.ID, s.ID).SeatsUsed; got != 2 {
				t.Fatalf("got %d seats used, want 2", got)
			}
		})
		t.Run("ReleaseFreesASeat", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error { return tx.ReleaseSeat(ctx, acct.ID, s.ID) })
			if got := subscription(t, db, acct.ID, s.ID).SeatsUsed; got != 1 {
				t.Fatalf("got %d seats used, want 1", got)
			}
		})
		t.Run("ReleaseBelowZeroFails", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error { return tx.ReleaseSeat(ctx, acct.ID, s.ID) })
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.ReleaseSeat(ctx, acct.ID, s.ID) })
			if err == nil {
				t.Fatalf("got nil, want an error")
			}
			if got := subscription(t, db, acct.ID, s.ID).SeatsUsed; got != 0 {
				t.Fatalf("got %d seats used, want 0", got)
			}
		})
		t.Run("UnknownSubscriptionIsNotFound", func(t *testing.T) {
			wantCode(t, db.Write(ctx, func(tx *store.Tx) error { return tx.ReserveSeat(ctx, acct.ID, 9999) }), usher.ENOTFOUND)
			wantCode(t, db.Write(ctx, func(tx *store.Tx) error { return tx.ReleaseSeat(ctx, acct.ID, 9999) }), usher.ENOTFOUND)
		})
		t.Run("ZeroSeatSubscriptionHasNoSeats", func(t *testing.T) {
			z := newSubscription(t, db, acct.ID, "C-0", 0)
			wantCode(t, db.Write(ctx, func(tx *store.Tx) error { return tx.ReserveSeat(ctx, acct.ID, z.ID) }), usher.ENOSEATS)
		})
	})
}

func TestReserveSeatConcurrentlyNeverOversells(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		s := newSubscription(t, db, acct.ID, "C-10", 10)
		const n = 50
		users := make([]usher.User, n)
		for i := range users {
			users[i] = newUser(t, db, acct.ID, fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("User %d", i))
		}

		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = db.Write(ctx, func(tx *store.Tx) error { return assign(ctx, tx, acct.ID, users[i].ID, s.ID) })
			})
		}
		close(start)
		wg.Wait()

		var ok, noSeats int
		for _, err := range errs {
			switch usher.ErrorCode(err) {
			case "":
				ok++
			case usher.ENOSEATS:
				noSeats++
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if ok != 10 || noSeats != 40 {
			t.Fatalf("got %d assigned and %d without seats, want 10 and 40", ok, noSeats)
		}
		if got := subscription(t, db, acct.ID, s.ID).SeatsUsed; got != 10 {
			t.Fatalf("seats used: got %d, want 10", got)
		}
		if got := count(t, db, "SELECT COUNT(*) FROM assignments WHERE subscription_id = %d", s.ID); got != 10 {
			t.Fatalf("assignment rows: got %d, want 10", got)
		}
	})
}

// ---- assignments and benefits ----

func TestAssignments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		u := newUser(t, db, acct.ID, "ada@example.com", "Ada")
		s1 := newSubscription(t, db, acct.ID, "C-1", 5)
		s2 := newSubscription(t, db, acct.ID, "C-2", 5)
		write(t, db, func(tx *store.Tx) error {
			if err := assign(ctx, tx, acct.ID, u.ID, s2.ID, "rendering", "cloud_storage"); err != nil {
				return err
			}
			return assign(ctx, tx, acct.ID, u.ID, s1.ID)
		})
		seats := func(t *testing.T) []usher.Assignment {
			t.Helper()
			var got []usher.Assignment
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.AssignmentsOfUser(ctx, acct.ID, u.ID); return err })
			return got
		}

		t.Run("OfUserIsBySubscriptionWithServices", func(t *testing.T) {
			got := seats(t)
			if len(got) != 2 {
				t.Fatalf("got %d seats, want 2", len(got))
			}
			a, b := got[0], got[1]
			if a.SubscriptionID != s1.ID || a.Services == nil || len(a.Services) != 0 || !a.AssignedAt.Equal(now) || a.AccountID != acct.ID || a.UserID != u.ID {
				t.Fatalf("first: got %+v, want subscription %d with no services", a, s1.ID)
			}
			if want := []string{"cloud_storage", "rendering"}; b.SubscriptionID != s2.ID || !slices.Equal(b.Services, want) {
				t.Fatalf("second: got %+v, want subscription %d with %v", b, s2.ID, want)
			}
		})
		t.Run("SecondSeatOfSameSubscriptionIsConflict", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.InsertAssignment(ctx, usher.Assignment{AccountID: acct.ID, UserID: u.ID, SubscriptionID: s1.ID, AssignedAt: now})
			})
			wantCode(t, err, usher.ECONFLICT)
			if got, want := usher.ErrorMessage(err), "user already holds a seat of this subscription"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
		t.Run("SetServicesReplaces", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error {
				return tx.SetAssignmentServices(ctx, acct.ID, u.ID, s2.ID, []string{"generative"})
			})
			if got := seats(t)[1].Services; !slices.Equal(got, []string{"generative"}) {
				t.Fatalf("got %v, want [generative]", got)
			}
			write(t, db, func(tx *store.Tx) error { return tx.SetAssignmentServices(ctx, acct.ID, u.ID, s2.ID, nil) })
			if got := seats(t)[1].Services; len(got) != 0 {
				t.Fatalf("got %v, want none", got)
			}
		})
		t.Run("SetServicesWithoutSeatIsNotFound", func(t *testing.T) {
			other := newUser(t, db, acct.ID, "bob@example.com", "Bob")
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.SetAssignmentServices(ctx, acct.ID, other.ID, s1.ID, []string{"rendering"})
			})
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("DeleteRemovesServicesToo", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error {
				return tx.SetAssignmentServices(ctx, acct.ID, u.ID, s2.ID, []string{"rendering", "generative"})
			})
			write(t, db, func(tx *store.Tx) error { return tx.DeleteAssignment(ctx, acct.ID, u.ID, s2.ID) })
			if got := count(t, db, "SELECT COUNT(*) FROM assignment_services WHERE user_id = %d AND subscription_id = %d", u.ID, s2.ID); got != 0 {
				t.Fatalf("got %d service rows, want 0", got)
			}
			if got := seats(t); len(got) != 1 || got[0].SubscriptionID != s1.ID {
				t.Fatalf("got %+v, want only the seat of %d", got, s1.ID)
			}
		})
		t.Run("DeleteMissingIsNotFound", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.DeleteAssignment(ctx, acct.ID, u.ID, s2.ID) })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("UnknownUserOrSubscriptionIsNotFound", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.InsertAssignment(ctx, usher.Assignment{AccountID: acct.ID, UserID: 9999, SubscriptionID: s1.ID, AssignedAt: now})
			})
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

func TestBenefits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		u := newUser(t, db, acct.ID, "ada@example.com", "Ada")
		s1 := newSubscription(t, db, acct.ID, "C-1", 1, "web_support", "training", "phone_support")
		s2 := newSubscription(t, db, acct.ID, "C-2", 1, "web_support")
		benefits := func(t *testing.T) map[int64][]string {
			t.Helper()
			var got map[int64][]string
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.BenefitsOfUser(ctx, acct.ID, u.ID); return err })
			return got
		}

		t.Run("NoneIsAnEmptyMap", func(t *testing.T) {
			if got := benefits(t); got == nil || len(got) != 0 {
				t.Fatalf("got %#v, want an empty map", got)
			}
		})
		t.Run("SetReplaces", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error {
				if err := tx.SetBenefits(ctx, acct.ID, u.ID, s1.ID, []string{"web_support", "training"}); err != nil {
					return err
				}
				return tx.SetBenefits(ctx, acct.ID, u.ID, s2.ID, []string{"web_support"})
			})
			write(t, db, func(tx *store.Tx) error {
				return tx.SetBenefits(ctx, acct.ID, u.ID, s1.ID, []string{"phone_support", "training"})
			})
			got := benefits(t)
			if len(got) != 2 || !slices.Equal(got[s1.ID], []string{"phone_support", "training"}) || !slices.Equal(got[s2.ID], []string{"web_support"}) {
				t.Fatalf("got %v", got)
			}
		})
		t.Run("SetEmptyClears", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error { return tx.SetBenefits(ctx, acct.ID, u.ID, s1.ID, []string{}) })
			if got := benefits(t); len(got) != 1 || got[s1.ID] != nil {
				t.Fatalf("got %v, want only %d", got, s2.ID)
			}
		})
		t.Run("UnknownUserOrSubscriptionIsNotFound", func(t *testing.T) {
			wantCode(t, db.Write(ctx, func(tx *store.Tx) error { return tx.SetBenefits(ctx, acct.ID, 9999, s1.ID, nil) }), usher.ENOTFOUND)
			wantCode(t, db.Write(ctx, func(tx *store.Tx) error { return tx.SetBenefits(ctx, acct.ID, u.ID, 9999, nil) }), usher.ENOTFOUND)
		})
	})
}

// ---- audit ----

func TestAudit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		other := newAccount(t, db, "Other")
		const ada, bob, cy = 1001, 1002, 1003
		entries := []usher.AuditEntry{
			{AccountID: acct.ID, Action: "account.create", ActorEmail: "system", TargetUserID: ada, TargetEmail: "ada@example.com", After: json.RawMessage(`{"name":"Acme"}`)},
			{AccountID: acct.ID, Action: "seat.assign", ActorID: ada, ActorEmail: "ada@example.com", TargetUserID: bob, TargetEmail: "bob@example.com", SubscriptionID: 7},
			{AccountID: other.ID, Action: "seat.assign", ActorID: ada, ActorEmail: "ada@example.com", TargetUserID: bob},
			{AccountID: acct.ID, Action: "seat.unassign", ActorID: bob, ActorEmail: "bob@example.com", TargetUserID: cy, TargetEmail: "cy@example.com", SubscriptionID: 7, Before: json.RawMessage(`{"services":[]}`)},
			{AccountID: acct.ID, Action: "seat.assign", ActorID: cy, ActorEmail: "cy@example.com", TargetUserID: cy, TargetEmail: "cy@example.com", SubscriptionID: 8},
		}
		for i := range entries {
			entries[i].At = now.Add(time.Duration(i) * time.Second)
			write(t, db, func(tx *store.Tx) error { return tx.InsertAudit(ctx, &entries[i]) })
		}
		list := func(t *testing.T, f access.AuditFilter) []usher.AuditEntry {
			t.Helper()
			var got []usher.AuditEntry
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.ListAudit(ctx, acct.ID, f); return err })
			return got
		}
		ids := func(es []usher.AuditEntry) []int64 {
			out := []int64{}
			for _, e := range es {
				out = append(out, e.ID)
			}
			return out
		}
		e := entries

		t.Run("NewestFirstWithinTheAccount", func(t *testing.T) {
			got := list(t, access.AuditFilter{Limit: 10})
			if want := []int64{e[4].ID, e[3].ID, e[1].ID, e[0].ID}; !slices.Equal(ids(got), want) {
				t.Fatalf("got %v, want %v", ids(got), want)
			}
		})
		t.Run("EntriesRoundTrip", func(t *testing.T) {
			got := list(t, access.AuditFilter{Limit: 10})
			for _, g := range got {
				w := entries[slices.IndexFunc(entries, func(x usher.AuditEntry) bool { return x.ID == g.ID })]
				if g.AccountID != w.AccountID || g.ActorID != w.ActorID || g.ActorEmail != w.ActorEmail || g.Action != w.Action ||
					g.TargetUserID != w.TargetUserID || g.TargetEmail != w.TargetEmail || g.SubscriptionID != w.SubscriptionID ||
					string(g.Before) != string(w.Before) || string(g.After) != string(w.After) || !g.At.Equal(w.At) {
					t.Fatalf("got %+v, want %+v", g, w)
				}
			}
		})
		t.Run("BeforeIDPages", func(t *testing.T) {
			first := list(t, access.AuditFilter{Limit: 2})
			rest := list(t, access.AuditFilter{BeforeID: first[len(first)-1].ID, Limit: 2})
			if want := []int64{e[1].ID, e[0].ID}; !slices.Equal(ids(rest), want) {
				t.Fatalf("got %v, want %v", ids(rest), want)
			}
		})
		t.Run("ActionFilter", func(t *testing.T) {
			got := list(t, access.AuditFilter{Action: "seat.assign", Limit: 10})
			if want := []int64{e[4].ID, e[1].ID}; !slices.Equal(ids(got), want) {
				t.Fatalf("got %v, want %v", ids(got), want)
			}
		})
		t.Run("UserFilterIsByOrAbout", func(t *testing.T) {
			for _, tc := range []struct {
				user int64
				want []int64
			}{
				{ada, []int64{e[1].ID, e[0].ID}},
				{bob, []int64{e[3].ID, e[1].ID}},
				{cy, []int64{e[4].ID, e[3].ID}},
			} {
				if got := list(t, access.AuditFilter{UserID: tc.user, Limit: 10}); !slices.Equal(ids(got), tc.want) {
					t.Fatalf("user %d: got %v, want %v", tc.user, ids(got), tc.want)
				}
			}
		})
		t.Run("FiltersCombine", func(t *testing.T) {
			got := list(t, access.AuditFilter{UserID: cy, Action: "seat.assign", BeforeID: e[4].ID + 1, Limit: 10})
			if want := []int64{e[4].ID}; !slices.Equal(ids(got), want) {
				t.Fatalf("got %v, want %v", ids(got), want)
			}
		})
	})
}

// ---- isolation between accounts ----

func TestOtherAccountsObjectsAreNotFound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newAccount(t, db, "Acme")
		b := newAccount(t, db, "Globex")
		ua := newUser(t, db, a.ID, "ada@acme.example", "Ada")
		sa := newSubscription(t, db, a.ID, "A-1", 5, "web_support")
		ub := newUser(t, db, b.ID, "bob@globex.example", "Bob")
		sb := newSubscription(t, db, b.ID, "B-1", 5, "web_support")
		write(t, db, func(tx *store.Tx) error {
			if err := tx.GrantRole(ctx, b.ID, usher.RoleGrant{UserID: ub.ID, Role: usher.RoleContractManager, SubscriptionID: sb.ID}); err != nil {
				return err
			}
			if err := assign(ctx, tx, b.ID, ub.ID, sb.ID, "rendering"); err != nil {
				return err
			}
			if err := tx.SetBenefits(ctx, b.ID, ub.ID, sb.ID, []string{"web_support"}); err != nil {
				return err
			}
			return tx.InsertAudit(ctx, &usher.AuditEntry{AccountID: b.ID, ActorID: ub.ID, ActorEmail: ub.Email, Action: "user.update", TargetUserID: ub.ID, At: now})
		})

		notFound := []struct {
			name string
			fn   func(tx *store.Tx) error
		}{
			{"UserByID", func(tx *store.Tx) error { _, err := tx.UserByID(ctx, a.ID, ub.ID); return err }},
			{"UserByEmail", func(tx *store.Tx) error { _, err := tx.UserByEmail(ctx, a.ID, ub.Email); return err }},
			{"UpdateUser", func(tx *store.Tx) error { u := ub; u.AccountID = a.ID; u.Name = "Hacked"; return tx.UpdateUser(ctx, u) }},
			{"DeleteUser", func(tx *store.Tx) error { return tx.DeleteUser(ctx, a.ID, ub.ID) }},
			{"GrantRoleToOtherUser", func(tx *store.Tx) error {
				return tx.GrantRole(ctx, a.ID, usher.RoleGrant{UserID: ub.ID, Role: usher.RoleSecondaryAdmin})
			}},
			{"GrantRoleOnOtherSubscription", func(tx *store.Tx) error {
				return tx.GrantRole(ctx, a.ID, usher.RoleGrant{UserID: ua.ID, Role: usher.RoleContractManager, SubscriptionID: sb.ID})
			}},
			{"RevokeRole", func(tx *store.Tx) error {
				return tx.RevokeRole(ctx, a.ID, usher.RoleGrant{UserID: ub.ID, Role: usher.RoleContractManager, SubscriptionID: sb.ID})
			}},
			{"CreateTokenForOtherUser", func(tx *store.Tx) error {
				return tx.CreateToken(ctx, &usher.Token{AccountID: a.ID, UserID: ub.ID, Name: "x", Scope: usher.ScopeFull, Hash: []byte("x")})
			}},
			{"SubscriptionByID", func(tx *store.Tx) error { _, err := tx.SubscriptionByID(ctx, a.ID, sb.ID); return err }},
			{"ReserveSeat", func(tx *store.Tx) error { return tx.ReserveSeat(ctx, a.ID, sb.ID) }},
			{"ReleaseSeat", func(tx *store.Tx) error { return tx.ReleaseSeat(ctx, a.ID, sb.ID) }},
			{"InsertAssignmentOnOtherSubscription", func(tx *store.Tx) error {
				return tx.InsertAssignment(ctx, usher.Assignment{AccountID: a.ID, UserID: ua.ID, SubscriptionID: sb.ID, AssignedAt: now})
			}},
			{"InsertAssignmentOfOtherUser", func(tx *store.Tx) error {
				return tx.InsertAssignment(ctx, usher.Assignment{AccountID: a.ID, UserID: ub.ID, SubscriptionID: sa.ID, AssignedAt: now})
			}},
			{"DeleteAssignment", func(tx *store.Tx) error { return tx.DeleteAssignment(ctx, a.ID, ub.ID, sb.ID) }},
			{"SetAssignmentServices", func(tx *store.Tx) error { return tx.SetAssignmentServices(ctx, a.ID, ub.ID, sb.ID, nil) }},
			{"SetBenefitsOfOtherUser", func(tx *store.Tx) error { return tx.SetBenefits(ctx, a.ID, ub.ID, sa.ID, nil) }},
			{"SetBenefitsOnOtherSubscription", func(tx *store.Tx) error { return tx.SetBenefits(ctx, a.ID, ua.ID, sb.ID, nil) }},
		}
		for _, tc := range notFound {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, db.Write(ctx, tc.fn), usher.ENOTFOUND)
			})
		}

		t.Run("ListsNeverLeak", func(t *testing.T) {
			read(t, db, func(tx *store.Tx) error {
				users, err := tx.ListUsers(ctx, a.ID, access.UserFilter{Limit: 100})
				if err != nil {
					return err
				}
				if len(users) != 1 || users[0].ID != ua.ID {
					t.Fatalf("users: got %+v, want only %d", users, ua.ID)
				}
				subs, err := tx.ListSubscriptions(ctx, a.ID, access.SubscriptionFilter{Limit: 100})
				if err != nil {
					return err
				}
				if len(subs) != 1 || subs[0].ID != sa.ID {
					t.Fatalf("subscriptions: got %+v, want only %d", subs, sa.ID)
				}
				subs, err = tx.ListSubscriptions(ctx, a.ID, access.SubscriptionFilter{IDs: []int64{sb.ID}, Limit: 100})
				if err != nil {
					return err
				}
				if len(subs) != 0 {
					t.Fatalf("subscriptions by id: got %+v, want none", subs)
				}
				roles, err := tx.RolesOf(ctx, a.ID, ub.ID)
				if err != nil {
					return err
				}
				withRole, err := tx.UsersWithRole(ctx, a.ID, usher.RoleContractManager)
				if err != nil {
					return err
				}
				seats, err := tx.AssignmentsOfUser(ctx, a.ID, ub.ID)
				if err != nil {
					return err
				}
				benefits, err := tx.BenefitsOfUser(ctx, a.ID, ub.ID)
				if err != nil {
					return err
				}
				audit, err := tx.ListAudit(ctx, a.ID, access.AuditFilter{UserID: ub.ID, Limit: 100})
				if err != nil {
					return err
				}
				if len(roles)+len(withRole)+len(seats)+len(benefits)+len(audit) != 0 {
					t.Fatalf("got roles %v, role holders %v, seats %v, benefits %v, audit %v; want none",
						roles, withRole, seats, benefits, audit)
				}
				return nil
			})
		})
		t.Run("OtherAccountIsUntouched", func(t *testing.T) {
			var u usher.User
			read(t, db, func(tx *store.Tx) (err error) { u, err = tx.UserByID(ctx, b.ID, ub.ID); return err })
			if u.Name != "Bob" {
				t.Fatalf("got %q, want Bob", u.Name)
			}
			if got := subscription(t, db, b.ID, sb.ID).SeatsUsed; got != 1 {
				t.Fatalf("seats used: got %d, want 1", got)
			}
		})
	})
}

// ---- transactions and migrations ----

func TestFailingWriteRollsBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acct := newAccount(t, db, "Acme")
		s := newSubscription(t, db, acct.ID, "C-1", 1)
		boom := errors.New("boom")
		err := db.Write(ctx, func(tx *store.Tx) error {
			u := usher.User{AccountID: acct.ID, Email: "gone@example.com", Name: "Gone", Status: usher.UserActive, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateUser(ctx, &u); err != nil {
				return err
			}
			if err := assign(ctx, tx, acct.ID, u.ID, s.ID); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want boom", err)
		}
		err = db.Read(ctx, func(tx *store.Tx) error { _, err := tx.UserByEmail(ctx, acct.ID, "gone@example.com"); return err })
		wantCode(t, err, usher.ENOTFOUND)
		if got := subscription(t, db, acct.ID, s.ID).SeatsUsed; got != 0 {
			t.Fatalf("seats used: got %d, want 0", got)
		}
	})
}

func TestReadCannotWrite(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		err := db.Read(ctx, func(tx *store.Tx) error {
			return tx.CreateAccount(ctx, &usher.Account{Name: "Nope", TimeZone: "UTC", CreatedAt: now})
		})
		if err == nil {
			t.Fatalf("got nil, want an error from a write in a read transaction")
		}
	})
}

func TestAccessAdapterRunsTheSameTransactions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := db.Access()
		var id int64
		err := st.Write(ctx, func(tx access.Tx) error {
			a := usher.Account{Name: "Acme", TimeZone: "UTC", CreatedAt: now}
			err := tx.CreateAccount(ctx, &a)
			id = a.ID
			return err
		})
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		err = st.Read(ctx, func(tx access.Tx) error {
			a, err := tx.AccountByID(ctx, id)
			if err == nil && a.Name != "Acme" {
				t.Fatalf("got %q, want Acme", a.Name)
			}
			return err
		})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	})
}

// migrationFiles counts the engine's migration files and returns the
// highest version among them, so the test holds as migrations are added
// (versions need not be contiguous: branches take numbers in parallel).
func migrationFiles(t *testing.T, engine string) (n, latest int) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("migrations", engine))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		n, latest = n+1, max(latest, v)
	}
	if n == 0 {
		t.Fatalf("no migrations in migrations/%s", engine)
	}
	return n, latest
}

func TestMigrateTwiceIsHarmless(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for range 2 {
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("migrate: %v", err)
			}
		}
		v, err := db.SchemaVersion(ctx)
		if err != nil {
			t.Fatalf("schema version: %v", err)
		}
		files, latest := migrationFiles(t, db.Engine())
		if v != latest {
			t.Fatalf("got version %d, want %d", v, latest)
		}
		if got := count(t, db, "SELECT COUNT(*) FROM products"); got != 5 {
			t.Fatalf("got %d products, want 5", got)
		}
		if got := count(t, db, "SELECT COUNT(*) FROM schema_migrations"); got != files {
			t.Fatalf("got %d migration rows, want %d, one per file", got, files)
		}
	})
}

func TestMigrateConcurrentlyAppliesOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// A second database on a fresh, unmigrated schema (PostgreSQL) or
		// file (SQLite), opened by several "replicas" at once.
		dsn := filepath.Join(t.TempDir(), "fresh.db")
		if db.Engine() == store.Postgres {
			dsn = freshPostgresSchema(t, db)
		}
		const replicas = 4
		dbs := make([]*store.DB, replicas)
		for i := range dbs {
			var err error
			if dbs[i], err = store.Open(ctx, dsn); err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { dbs[i].Close() })
		}
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range dbs {
			wg.Go(func() { errs[i] = dbs[i].Migrate(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
		}
		if got := count(t, dbs[0], "SELECT COUNT(*) FROM products"); got != 5 {
			t.Fatalf("got %d products, want 5", got)
		}
	})
}

// freshPostgresSchema creates an empty schema, dropped after the test, and
// returns a URL whose search_path points at it.
func freshPostgresSchema(t *testing.T, db *store.DB) string {
	t.Helper()
	ctx := context.Background()
	schema := fmt.Sprintf("usher_t_fresh_%d", time.Now().UnixNano())
	if _, err := db.SQL().ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.SQL().ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u := storetest.PostgresURL()
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "search_path=" + schema
}

func TestOpenAcceptsSQLitePrefixes(t *testing.T) {
	ctx := context.Background()
	for _, prefix := range []string{"", "sqlite:", "file:"} {
		t.Run("Prefix"+strings.TrimSuffix(prefix, ":"), func(t *testing.T) {
			db, err := store.Open(ctx, prefix+filepath.Join(t.TempDir(), "x.db"))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer db.Close()
			if got := db.Engine(); got != store.SQLite {
				t.Fatalf("got %q, want sqlite", got)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("migrate: %v", err)
			}
		})
	}
}
