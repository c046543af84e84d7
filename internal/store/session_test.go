package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

func TestPasswords(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newAccount(t, db, "Acme")
		u := newUser(t, db, a.ID, "ada@acme.test", "Ada")

		t.Run("ENOTFOUNDWithoutPassword", func(t *testing.T) {
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.PasswordHash(ctx, a.ID, u.ID); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("SetThenReplace", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error { return tx.SetPasswordHash(ctx, a.ID, u.ID, "h1", now) })
			write(t, db, func(tx *store.Tx) error { return tx.SetPasswordHash(ctx, a.ID, u.ID, "h2", now) })
			var got string
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.PasswordHash(ctx, a.ID, u.ID); return err })
			if got != "h2" {
				t.Fatalf("hash: got %q, want h2", got)
			}
		})
		t.Run("ENOTFOUNDForUserOfAnotherAccount", func(t *testing.T) {
			b := newAccount(t, db, "Other")
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetPasswordHash(ctx, b.ID, u.ID, "h", now) })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("UsersByEmailAcrossAccounts", func(t *testing.T) {
			b := newAccount(t, db, "Second")
			u2 := newUser(t, db, b.ID, "ada@acme.test", "Ada Two")
			newUser(t, db, b.ID, "bob@acme.test", "Bob")
			var got []usher.User
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.UsersByEmail(ctx, "ada@acme.test"); return err })
			if len(got) != 2 || got[0].ID != u.ID || got[1].ID != u2.ID {
				t.Fatalf("users: got %+v, want ids %d, %d", got, u.ID, u2.ID)
			}
		})
	})
}

func TestSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newAccount(t, db, "Acme")
		u := newUser(t, db, a.ID, "ada@acme.test", "Ada")
		s := auth.Session{TokenHash: []byte("hash-1"), AccountID: a.ID, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		write(t, db, func(tx *store.Tx) error { return tx.CreateSession(ctx, &s) })
		if s.ID == 0 {
			t.Fatal("CreateSession did not set the id")
		}

		t.Run("ReadBackByHash", func(t *testing.T) {
			var got auth.Session
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.SessionByHash(ctx, []byte("hash-1")); return err })
			if got.ID != s.ID || got.UserID != u.ID || got.AccountID != a.ID || !got.CreatedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
				t.Fatalf("session: got %+v, want %+v", got, s)
			}
		})
		t.Run("ENOTFOUNDForUnknownHash", func(t *testing.T) {
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.SessionByHash(ctx, []byte("nope")); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("FlashIsReadWithTheSession", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error { return tx.SetSessionFlash(ctx, []byte("hash-1"), "Saved.") })
			var got auth.Session
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.SessionByHash(ctx, []byte("hash-1")); return err })
			if got.Flash != "Saved." {
				t.Fatalf("flash: got %q, want Saved.", got.Flash)
			}
			write(t, db, func(tx *store.Tx) (err error) { _, err = tx.TakeSessionFlash(ctx, []byte("hash-1")); return err })
			read(t, db, func(tx *store.Tx) (err error) { got, err = tx.SessionByHash(ctx, []byte("hash-1")); return err })
			if got.Flash != "" {
				t.Fatalf("flash after taking it: %q", got.Flash)
			}
		})
		t.Run("DeleteExpiredKeepsLive", func(t *testing.T) {
			old := auth.Session{TokenHash: []byte("hash-old"), AccountID: a.ID, UserID: u.ID, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now}
			write(t, db, func(tx *store.Tx) error { return tx.CreateSession(ctx, &old) })
			write(t, db, func(tx *store.Tx) error { return tx.DeleteExpiredSessions(ctx, now) })
			if n := count(t, db, "SELECT COUNT(*) FROM sessions"); n != 1 {
				t.Fatalf("sessions left: got %d, want 1 (the live one)", n)
			}
		})
		t.Run("DeleteOne", func(t *testing.T) {
			write(t, db, func(tx *store.Tx) error { return tx.DeleteSession(ctx, []byte("hash-1")) })
			write(t, db, func(tx *store.Tx) error { return tx.DeleteSession(ctx, []byte("hash-1")) }) // idempotent
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.SessionByHash(ctx, []byte("hash-1")); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("DeleteOfUserLeavesOthers", func(t *testing.T) {
			v := newUser(t, db, a.ID, "bob@acme.test", "Bob")
			for i, uid := range []int64{u.ID, u.ID, v.ID} {
				ss := auth.Session{TokenHash: []byte{byte(i), 'x'}, AccountID: a.ID, UserID: uid, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				write(t, db, func(tx *store.Tx) error { return tx.CreateSession(ctx, &ss) })
			}
			write(t, db, func(tx *store.Tx) error { return tx.DeleteSessionsOfUser(ctx, a.ID, u.ID) })
			if n := count(t, db, "SELECT COUNT(*) FROM sessions WHERE user_id = %d", u.ID); n != 0 {
				t.Fatalf("sessions of the user: got %d, want 0", n)
			}
			if n := count(t, db, "SELECT COUNT(*) FROM sessions WHERE user_id = %d", v.ID); n != 1 {
				t.Fatalf("sessions of another user: got %d, want 1", n)
			}
		})
		t.Run("FlashIsTakenOnce", func(t *testing.T) {
			f := auth.Session{TokenHash: []byte("flash"), AccountID: a.ID, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			write(t, db, func(tx *store.Tx) error { return tx.CreateSession(ctx, &f) })
			write(t, db, func(tx *store.Tx) error { return tx.SetSessionFlash(ctx, []byte("flash"), "Token revoked.") })
			var got, again string
			write(t, db, func(tx *store.Tx) (err error) { got, err = tx.TakeSessionFlash(ctx, []byte("flash")); return err })
			write(t, db, func(tx *store.Tx) (err error) { again, err = tx.TakeSessionFlash(ctx, []byte("flash")); return err })
			if got != "Token revoked." || again != "" {
				t.Fatalf("got %q then %q, want the message once", got, again)
			}
		})
		t.Run("GoWithTheUser", func(t *testing.T) {
			w := newUser(t, db, a.ID, "carl@acme.test", "Carl")
			ss := auth.Session{TokenHash: []byte("carl"), AccountID: a.ID, UserID: w.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			write(t, db, func(tx *store.Tx) error { return tx.CreateSession(ctx, &ss) })
			write(t, db, func(tx *store.Tx) error { return tx.DeleteUser(ctx, a.ID, w.ID) })
			if n := count(t, db, "SELECT COUNT(*) FROM sessions WHERE user_id = %d", w.ID); n != 0 {
				t.Fatalf("sessions of a deleted user: got %d, want 0", n)
			}
		})
	})
}

func TestSignInFailures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		countKey := func(key string, since time.Time) int {
			t.Helper()
			var n int
			read(t, db, func(tx *store.Tx) (err error) { n, err = tx.CountSignInFailures(ctx, key, since); return err })
			return n
		}
		for i := range 3 {
			at := now.Add(time.Duration(i) * time.Minute)
			write(t, db, func(tx *store.Tx) error {
				return tx.RecordSignInFailure(ctx, []string{"email:a@x.test", "client:1.2.3.4"}, at)
			})
		}
		write(t, db, func(tx *store.Tx) error { return tx.RecordSignInFailure(ctx, []string{"email:b@x.test"}, now) })

		if n := countKey("email:a@x.test", now); n != 3 {
			t.Fatalf("failures of a: got %d, want 3", n)
		}
		if n := countKey("email:a@x.test", now.Add(time.Minute)); n != 2 {
			t.Fatalf("failures of a in the last two minutes: got %d, want 2", n)
		}
		if n := countKey("client:1.2.3.4", now); n != 3 {
			t.Fatalf("failures of the client: got %d, want 3", n)
		}
		write(t, db, func(tx *store.Tx) error { return tx.ClearSignInFailures(ctx, "email:a@x.test") })
		if n := countKey("email:a@x.test", now); n != 0 {
			t.Fatalf("failures of a after clearing: got %d, want 0", n)
		}
		if n := countKey("client:1.2.3.4", now); n != 3 {
			t.Fatalf("clearing an email changed the client's count: got %d, want 3", n)
		}
		write(t, db, func(tx *store.Tx) error { return tx.PruneSignInFailures(ctx, now.Add(time.Minute)) })
		if n := countKey("client:1.2.3.4", time.Time{}); n != 2 {
			t.Fatalf("client failures after pruning: got %d, want 2", n)
		}
		if n := countKey("email:b@x.test", time.Time{}); n != 0 {
			t.Fatalf("b's failure before the prune time: got %d, want 0", n)
		}
	})
}

func TestPasswordLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newAccount(t, db, "Acme")
		u := newUser(t, db, a.ID, "ada@acme.test", "Ada")
		l := auth.PasswordLink{TokenHash: []byte("link"), AccountID: a.ID, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		write(t, db, func(tx *store.Tx) error { return tx.CreatePasswordLink(ctx, l) })

		var got auth.PasswordLink
		read(t, db, func(tx *store.Tx) (err error) { got, err = tx.PasswordLinkByHash(ctx, []byte("link")); return err })
		if got.UserID != u.ID || !got.ExpiresAt.Equal(l.ExpiresAt) || !got.UsedAt.IsZero() {
			t.Fatalf("link: got %+v, want %+v unused", got, l)
		}
		write(t, db, func(tx *store.Tx) error { return tx.MarkPasswordLinkUsed(ctx, []byte("link"), now) })
		read(t, db, func(tx *store.Tx) (err error) { got, err = tx.PasswordLinkByHash(ctx, []byte("link")); return err })
		if !got.UsedAt.Equal(now) {
			t.Fatalf("used at: got %v, want %v", got.UsedAt, now)
		}
		t.Run("ECONFLICTWhenUsedTwice", func(t *testing.T) {
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.MarkPasswordLinkUsed(ctx, []byte("link"), now) })
			wantCode(t, err, usher.ECONFLICT)
		})
		t.Run("ENOTFOUNDForUnknownHash", func(t *testing.T) {
			err := db.Read(ctx, func(tx *store.Tx) error { _, err := tx.PasswordLinkByHash(ctx, []byte("x")); return err })
			wantCode(t, err, usher.ENOTFOUND)
		})
		t.Run("ENOTFOUNDForUserOfAnotherAccount", func(t *testing.T) {
			b := newAccount(t, db, "Other")
			bad := auth.PasswordLink{TokenHash: []byte("bad"), AccountID: b.ID, UserID: u.ID, CreatedAt: now, ExpiresAt: now}
			err := db.Write(ctx, func(tx *store.Tx) error { return tx.CreatePasswordLink(ctx, bad) })
			wantCode(t, err, usher.ENOTFOUND)
		})
	})
}

// TestSignInQueriesUseIndexes pins the SQLite plans of the queries every
// console request or sign-in runs: each must search an index, not scan.
func TestSignInQueriesUseIndexes(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	for _, q := range []string{
		"SELECT id FROM sessions WHERE token_hash = x'00'",
		"DELETE FROM sessions WHERE expires_at <= 1",
		"DELETE FROM sessions WHERE account_id = 1 AND user_id = 1",
		"SELECT COUNT(*) FROM sign_in_failures WHERE key = 'email:a' AND at >= 1",
		"DELETE FROM sign_in_failures WHERE key = 'email:a'",
		"SELECT id FROM users WHERE email = 'a@b.test' ORDER BY account_id",
		"SELECT hash FROM user_passwords WHERE account_id = 1 AND user_id = 1",
		"SELECT user_id FROM password_links WHERE token_hash = x'00'",
	} {
		rows, err := db.SQL().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if !strings.Contains(joined, "USING") || strings.Contains(joined, "SCAN") {
			t.Errorf("%s\n  plan: %s\n  want a SEARCH using an index", q, joined)
		}
	}
}
