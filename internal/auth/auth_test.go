package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// cheap keeps argon2 fast in tests; the format and code path are the same.
var cheap = auth.Params{Memory: 64, Time: 1, Threads: 1}

const goodPassword = "correct horse battery"

type fixture struct {
	db     *store.DB
	access *access.Service
	auth   *auth.Service
	now    time.Time
	acct   usher.Account
	admin  usher.User
}

func (f *fixture) clock() time.Time { return f.now }

func newFixture(t *testing.T, db *store.DB, cfg auth.Config) *fixture {
	t.Helper()
	f := &fixture{db: db, now: time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)}
	f.access = access.New(db.Access(), f.clock)
	cfg.Now, cfg.Params = f.clock, cheap
	f.auth = auth.New(db.Auth(), cfg)
	var err error
	f.acct, f.admin, _, err = f.access.CreateAccount(context.Background(), access.NewAccount{Name: "Acme", AdminEmail: "ada@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.auth.SetPassword(context.Background(), f.acct.ID, f.admin.ID, goodPassword); err != nil {
		t.Fatal(err)
	}
	return f
}

func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := usher.ErrorCode(err); got != want {
		t.Fatalf("error code: got %q (%v), want %q", got, err, want)
	}
}

func TestSignIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, auth.Config{SessionTTL: time.Hour})

		t.Run("StartsASessionForTheUser", func(t *testing.T) {
			token, sess, err := f.auth.SignIn(ctx, " ADA@acme.test ", goodPassword, "10.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(token, "uss_") || sess.UserID != f.admin.ID || sess.AccountID != f.acct.ID {
				t.Fatalf("got token %q session %+v, want a uss_ token for user %d", token, sess, f.admin.ID)
			}
			got, err := f.auth.Session(ctx, token)
			if err != nil || got.ID != sess.ID {
				t.Fatalf("session: got %+v, %v; want %d", got, err, sess.ID)
			}
			if n := countRows(t, db, "SELECT COUNT(*) FROM sessions WHERE token_hash = '"+token+"'"); n != 0 {
				t.Fatalf("the plain token is stored")
			}
		})
		t.Run("EUNAUTHORIZEDForAWrongPassword", func(t *testing.T) {
			_, _, err := f.auth.SignIn(ctx, "ada@acme.test", "wrong password!", "10.0.0.1")
			wantCode(t, err, usher.EUNAUTHORIZED)
		})
		t.Run("EUNAUTHORIZEDForAnUnknownEmailWithTheSameMessage", func(t *testing.T) {
			_, _, err1 := f.auth.SignIn(ctx, "nobody@acme.test", goodPassword, "10.0.0.1")
			_, _, err2 := f.auth.SignIn(ctx, "ada@acme.test", "wrong password!", "10.0.0.1")
			wantCode(t, err1, usher.EUNAUTHORIZED)
			if usher.ErrorMessage(err1) != usher.ErrorMessage(err2) {
				t.Fatalf("messages differ: %q vs %q", usher.ErrorMessage(err1), usher.ErrorMessage(err2))
			}
		})
		t.Run("EINVALIDNamesEmptyFields", func(t *testing.T) {
			_, _, err := f.auth.SignIn(ctx, "", "", "")
			wantCode(t, err, usher.EINVALID)
			fs := usher.ErrorFields(err)
			if len(fs) != 2 || fs[0].Field != "email" || fs[1].Field != "password" {
				t.Fatalf("fields: got %+v, want email and password", fs)
			}
		})
		t.Run("EUNAUTHORIZEDForADisabledUser", func(t *testing.T) {
			sys := usher.System(f.acct.ID)
			email, name := "bob@acme.test", "Bob"
			u, err := f.access.CreateUser(ctx, sys, access.UserInput{Email: &email, Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.auth.SetPassword(ctx, f.acct.ID, u.ID, goodPassword); err != nil {
				t.Fatal(err)
			}
			off := usher.UserDisabled
			if _, err := f.access.UpdateUser(ctx, sys, u.ID, access.UserInput{Status: &off}); err != nil {
				t.Fatal(err)
			}
			_, _, err = f.auth.SignIn(ctx, email, goodPassword, "")
			wantCode(t, err, usher.EUNAUTHORIZED)
		})
		t.Run("SessionExpires", func(t *testing.T) {
			token, _, err := f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "")
			if err != nil {
				t.Fatal(err)
			}
			f.now = f.now.Add(time.Hour - time.Millisecond)
			if _, err := f.auth.Session(ctx, token); err != nil {
				t.Fatalf("a millisecond before expiry: %v", err)
			}
			f.now = f.now.Add(time.Millisecond)
			_, err = f.auth.Session(ctx, token)
			wantCode(t, err, usher.EUNAUTHORIZED)
		})
		t.Run("SignOutEndsTheSession", func(t *testing.T) {
			token, _, err := f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := f.auth.SignOut(ctx, token); err != nil {
				t.Fatal(err)
			}
			_, err = f.auth.Session(ctx, token)
			wantCode(t, err, usher.EUNAUTHORIZED)
		})
	})
}

func countRows(t *testing.T, db *store.DB, q string) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestFailedSignInLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, auth.Config{FailureWindow: 15 * time.Minute, MaxFailuresPerEmail: 3, MaxFailuresPerClient: 5})

		t.Run("ERATELIMITEDAfterTheEmailLimitEvenWithTheRightPassword", func(t *testing.T) {
			for i := range 3 {
				_, _, err := f.auth.SignIn(ctx, "ada@acme.test", "wrong password!", "10.0.0.1")
				wantCode(t, err, usher.EUNAUTHORIZED)
				f.now = f.now.Add(time.Duration(i+1) * time.Second)
			}
			_, _, err := f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "10.0.0.2")
			wantCode(t, err, usher.ERATELIMITED)
		})
		t.Run("AllowedAgainWhenTheWindowHasPassed", func(t *testing.T) {
			f.now = f.now.Add(15 * time.Minute)
			if _, _, err := f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "10.0.0.2"); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("ASuccessClearsTheEmailCount", func(t *testing.T) {
			for range 2 {
				_, _, _ = f.auth.SignIn(ctx, "ada@acme.test", "wrong password!", "10.0.0.3")
			}
			if _, _, err := f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "10.0.0.3"); err != nil {
				t.Fatal(err)
			}
			_, _, err := f.auth.SignIn(ctx, "ada@acme.test", "wrong password!", "10.0.0.3")
			wantCode(t, err, usher.EUNAUTHORIZED) // one failure, not three
		})
		t.Run("ERATELIMITEDForAClientTryingManyEmails", func(t *testing.T) {
			f.now = f.now.Add(time.Hour)
			for i := range 5 {
				_, _, err := f.auth.SignIn(ctx, "guess"+string(rune('a'+i))+"@acme.test", "whatever12345", "10.9.9.9")
				wantCode(t, err, usher.EUNAUTHORIZED)
			}
			_, _, err := f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "10.9.9.9")
			wantCode(t, err, usher.ERATELIMITED)
			if _, _, err := f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "10.0.0.4"); err != nil {
				t.Fatalf("another client: %v", err)
			}
		})
	})
}

// TestRefusalsCostOneVerification pins what makes refusals take the same
// time whatever the email: exactly one argon2id verification each.
func TestRefusalsCostOneVerification(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, auth.Config{MaxFailuresPerEmail: 100, MaxFailuresPerClient: 1000})
		sys := usher.System(f.acct.ID)
		// ada@acme.test has passwords in two accounts; bob has none;
		// carl is disabled.
		acct2, ada2, _, err := f.access.CreateAccount(ctx, access.NewAccount{Name: "Second", AdminEmail: "ada@acme.test", AllowExistingEmail: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.auth.SetPassword(ctx, acct2.ID, ada2.ID, "another good password"); err != nil {
			t.Fatal(err)
		}
		for _, email := range []string{"bob@acme.test", "carl@acme.test"} {
			u, err := f.access.CreateUser(ctx, sys, access.UserInput{Email: &email})
			if err != nil {
				t.Fatal(err)
			}
			if email == "carl@acme.test" {
				if err := f.auth.SetPassword(ctx, f.acct.ID, u.ID, goodPassword); err != nil {
					t.Fatal(err)
				}
				off := usher.UserDisabled
				if _, err := f.access.UpdateUser(ctx, sys, u.ID, access.UserInput{Status: &off}); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, email := range []string{"nobody@acme.test", "ada@acme.test", "bob@acme.test", "carl@acme.test"} {
			t.Run(email, func(t *testing.T) {
				before := f.auth.Verifications()
				_, _, err := f.auth.SignIn(ctx, email, "wrong password!", "10.0.0.1")
				wantCode(t, err, usher.EUNAUTHORIZED)
				if n := f.auth.Verifications() - before; n != 1 {
					t.Fatalf("verifications: got %d, want 1", n)
				}
			})
		}
		t.Run("SignInToNamesTheSecondAccount", func(t *testing.T) {
			_, sess, err := f.auth.SignInTo(ctx, acct2.ID, "ada@acme.test", "another good password", "10.0.0.1")
			if err != nil || sess.AccountID != acct2.ID {
				t.Fatalf("got session %+v, %v; want one in account %d", sess, err, acct2.ID)
			}
			_, sess, err = f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "10.0.0.1")
			if err != nil || sess.AccountID != f.acct.ID {
				t.Fatalf("got session %+v, %v; want one in account %d (the lowest)", sess, err, f.acct.ID)
			}
		})
	})
}

// TestLockoutIsPerAccountAndEmail: failures against one account's user do
// not lock the same email in another account, and a busy client address
// that only succeeds is never limited.
func TestLockoutIsPerAccountAndEmail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, auth.Config{MaxFailuresPerEmail: 3, MaxFailuresPerClient: 5})
		acct2, ada2, _, err := f.access.CreateAccount(ctx, access.NewAccount{Name: "Second", AdminEmail: "ada@acme.test", AllowExistingEmail: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.auth.SetPassword(ctx, acct2.ID, ada2.ID, goodPassword); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_, _, err := f.auth.SignInTo(ctx, f.acct.ID, "ada@acme.test", "wrong password!", "10.0.0.1")
			wantCode(t, err, usher.EUNAUTHORIZED)
		}
		_, _, err = f.auth.SignInTo(ctx, f.acct.ID, "ada@acme.test", goodPassword, "10.0.0.2")
		wantCode(t, err, usher.ERATELIMITED)
		if _, _, err := f.auth.SignInTo(ctx, acct2.ID, "ada@acme.test", goodPassword, "10.0.0.2"); err != nil {
			t.Fatalf("the same email in another account: %v", err)
		}
		// Behind one proxy address: ten sign-ins that succeed count nothing.
		for i := range 10 {
			if _, _, err := f.auth.SignInTo(ctx, acct2.ID, "ada@acme.test", goodPassword, "10.0.0.9"); err != nil {
				t.Fatalf("success %d from a shared address: %v", i+1, err)
			}
		}
	})
}

func TestSetPassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, auth.Config{})

		t.Run("EINVALIDNamesThePassword", func(t *testing.T) {
			err := f.auth.SetPassword(ctx, f.acct.ID, f.admin.ID, "short")
			wantCode(t, err, usher.EINVALID)
			if fs := usher.ErrorFields(err); len(fs) != 1 || fs[0].Field != "password" {
				t.Fatalf("fields: got %+v, want password", fs)
			}
		})
		t.Run("EndsSessionsAndIsAudited", func(t *testing.T) {
			token, _, err := f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := f.auth.SetPassword(ctx, f.acct.ID, f.admin.ID, "a new password here"); err != nil {
				t.Fatal(err)
			}
			_, err = f.auth.Session(ctx, token)
			wantCode(t, err, usher.EUNAUTHORIZED)
			_, _, err = f.auth.SignIn(ctx, "ada@acme.test", goodPassword, "")
			wantCode(t, err, usher.EUNAUTHORIZED)
			if _, _, err := f.auth.SignIn(ctx, "ada@acme.test", "a new password here", ""); err != nil {
				t.Fatal(err)
			}
			page, err := f.access.AuditLog(ctx, usher.System(f.acct.ID), f.admin.ID, "password.set", "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 2 { // newFixture's and this one; the refused one left none
				t.Fatalf("password.set entries: got %d, want 2", len(page.Items))
			}
		})
		t.Run("ENOTFOUNDForAUserOfAnotherAccount", func(t *testing.T) {
			err := f.auth.SetPassword(ctx, f.acct.ID+1000, f.admin.ID, goodPassword)
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

func TestPasswordLink(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, auth.Config{LinkTTL: time.Hour})

		token, _, err := f.auth.CreatePasswordLink(ctx, f.acct.ID, f.admin.ID)
		if err != nil {
			t.Fatal(err)
		}
		u, err := f.auth.PasswordLinkUser(ctx, token)
		if err != nil || u.ID != f.admin.ID {
			t.Fatalf("link user: got %+v, %v; want %d", u, err, f.admin.ID)
		}
		t.Run("EINVALIDForAShortPasswordLeavesTheLinkUsable", func(t *testing.T) {
			_, _, err := f.auth.UsePasswordLink(ctx, token, "short")
			wantCode(t, err, usher.EINVALID)
		})
		t.Run("SetsThePasswordAndSignsIn", func(t *testing.T) {
			sessToken, sess, err := f.auth.UsePasswordLink(ctx, token, "link password 123")
			if err != nil {
				t.Fatal(err)
			}
			if sess.UserID != f.admin.ID {
				t.Fatalf("session user: got %d, want %d", sess.UserID, f.admin.ID)
			}
			if _, err := f.auth.Session(ctx, sessToken); err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.auth.SignIn(ctx, "ada@acme.test", "link password 123", ""); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("EUNAUTHORIZEDWhenUsedTwice", func(t *testing.T) {
			_, _, err := f.auth.UsePasswordLink(ctx, token, "another password 1")
			wantCode(t, err, usher.EUNAUTHORIZED)
		})
		t.Run("EUNAUTHORIZEDWhenExpired", func(t *testing.T) {
			tok2, _, err := f.auth.CreatePasswordLink(ctx, f.acct.ID, f.admin.ID)
			if err != nil {
				t.Fatal(err)
			}
			f.now = f.now.Add(time.Hour)
			_, _, err = f.auth.UsePasswordLink(ctx, tok2, "another password 1")
			wantCode(t, err, usher.EUNAUTHORIZED)
		})
	})
}

func TestFindUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, auth.Config{})
		acct2, admin2, _, err := f.access.CreateAccount(ctx, access.NewAccount{Name: "Second", AdminEmail: "ada@acme.test", AllowExistingEmail: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Run("EINVALIDNamesAccountWhenTheEmailIsInTwo", func(t *testing.T) {
			_, err := f.auth.FindUser(ctx, "ada@acme.test", 0)
			wantCode(t, err, usher.EINVALID)
			if fs := usher.ErrorFields(err); len(fs) != 1 || fs[0].Field != "account" {
				t.Fatalf("fields: got %+v, want account", fs)
			}
		})
		t.Run("FoundInTheNamedAccount", func(t *testing.T) {
			u, err := f.auth.FindUser(ctx, "ADA@acme.test", acct2.ID)
			if err != nil || u.ID != admin2.ID {
				t.Fatalf("got %+v, %v; want user %d", u, err, admin2.ID)
			}
		})
		t.Run("ENOTFOUND", func(t *testing.T) {
			_, err := f.auth.FindUser(ctx, "nobody@acme.test", 0)
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

func TestPasswordHash(t *testing.T) {
	h := auth.HashPassword("s3cret password", cheap)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string with its parameters", h)
	}
	if h2 := auth.HashPassword("s3cret password", cheap); h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		name, password, hash string
		ok, wantErr          bool
	}{
		{"Match", "s3cret password", h, true, false},
		{"Mismatch", "s3cret passwore", h, false, false},
		{"NotArgon2id", "x", "$2a$10$abc", false, true},
		{"HugeMemory", "x", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5", false, true},
		{"BadBase64", "x", "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := auth.VerifyPassword(tc.password, tc.hash)
			if ok != tc.ok || (err != nil) != tc.wantErr {
				t.Fatalf("got %v, %v; want %v, error %v", ok, err, tc.ok, tc.wantErr)
			}
		})
	}
}
