package access_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"sync"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

var cursorKey = []byte("0123456789abcdef0123456789abcdef")

// userPosition has the shape of the users list's cursor.
type userPosition struct {
	Name string `json:"n"`
	ID   int64  `json:"i"`
}

func mustSign(t testing.TB, kind string, account int64, pos any) string {
	t.Helper()
	s, err := access.SignCursor(cursorKey, kind, account, pos)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCursorOpensOnlyWhereItWasMade(t *testing.T) {
	good := mustSign(t, access.CursorUsers, 1, userPosition{Name: "grace", ID: 7})
	var pos userPosition
	if err := access.OpenCursor(cursorKey, access.CursorUsers, 1, good, &pos); err != nil || pos != (userPosition{"grace", 7}) {
		t.Fatalf("got %+v, %v", pos, err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	for name, tc := range map[string]struct {
		key     []byte
		kind    string
		account int64
		cursor  string
	}{
		"AnotherKey":     {[]byte("another key of thirty-two bytes!"), access.CursorUsers, 1, good},
		"AnotherList":    {cursorKey, access.CursorAuditLog, 1, good},
		"AnotherAccount": {cursorKey, access.CursorUsers, 2, good},
		"Unsigned":       {cursorKey, access.CursorUsers, 1, b64([]byte(`{"n":"grace","i":7}`))},
		"Empty":          {cursorKey, access.CursorUsers, 1, "."},
		"UnknownField":   {cursorKey, access.CursorUsers, 1, mustSign(t, access.CursorUsers, 1, map[string]any{"n": "x", "i": 1, "sql": "1=1"})},
		"WrongType":      {cursorKey, access.CursorUsers, 1, mustSign(t, access.CursorUsers, 1, -5)},
	} {
		t.Run(name, func(t *testing.T) {
			var pos userPosition
			if err := access.OpenCursor(tc.key, tc.kind, tc.account, tc.cursor, &pos); err == nil {
				t.Fatalf("opened %q as %+v", tc.cursor, pos)
			}
		})
	}
}

// FuzzOpenCursor feeds OpenCursor anything: it never panics, and whatever
// it opens is exactly what SignCursor makes of the position, so a cursor
// has one spelling and nothing unsigned gets through.
func FuzzOpenCursor(f *testing.F) {
	f.Add(mustSign(f, access.CursorUsers, 1, userPosition{Name: "grace", ID: 7}), int64(1))
	f.Add(mustSign(f, access.CursorUsers, 2, userPosition{Name: "", ID: -1}), int64(2))
	f.Add(mustSign(f, access.CursorAuditLog, 1, 41), int64(1))
	f.Add("eyJuIjoiZ3JhY2UiLCJpIjo3fQ", int64(1))
	f.Add("eyJuIjoiZ3JhY2UiLCJpIjo3fQ.AAAA", int64(1))
	f.Add("1' OR '1'='1", int64(1))
	f.Add("LTU", int64(1))
	f.Add("..", int64(0))
	f.Add("", int64(-1))
	f.Fuzz(func(t *testing.T, s string, account int64) {
		var pos userPosition
		if err := access.OpenCursor(cursorKey, access.CursorUsers, account, s, &pos); err != nil {
			return
		}
		again, err := access.SignCursor(cursorKey, access.CursorUsers, account, pos)
		if err != nil || again != s {
			t.Fatalf("opened %q as %+v, which signs as %q", s, pos, again)
		}
	})
}

// TestReplicasShareOneCursorKey starts many services on one fresh database
// at once, as replicas starting together: the first to need the key makes
// it, and every cursor opens on every replica.
func TestReplicasShareOneCursorKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := &fixture{svc: access.New(db.Access(), nil)}
		admin, _ := f.account(t, "Acme", "admin@acme.test")
		for _, email := range []string{"a@acme.test", "b@acme.test", "c@acme.test"} {
			if _, err := f.svc.CreateUser(ctx, admin, access.UserInput{Email: &email}); err != nil {
				t.Fatal(err)
			}
		}
		const replicas = 8
		cursors := make([]string, replicas)
		errs := make([]error, replicas)
		svcs := make([]*access.Service, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			svcs[i] = access.New(db.Access(), nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				page, err := svcs[i].ListUsers(ctx, admin, "", "", 1)
				cursors[i], errs[i] = page.NextCursor, err
			}()
		}
		wg.Wait()
		for i := range replicas {
			if errs[i] != nil || cursors[i] == "" {
				t.Fatalf("replica %d: cursor %q, %v", i, cursors[i], errs[i])
			}
			for j := range replicas {
				page, err := svcs[j].ListUsers(ctx, admin, "", cursors[i], 1)
				if err != nil || len(page.Items) != 1 {
					t.Fatalf("replica %d's cursor on replica %d: %+v, %v", i, j, page, err)
				}
			}
		}
		// The key is kept once, whatever the race.
		var keys [][]byte
		err := db.Read(ctx, func(tx *store.Tx) error {
			k, err := tx.ServerKey(ctx, "cursor")
			keys = append(keys, k)
			return err
		})
		if err != nil || len(keys[0]) != 32 {
			t.Fatalf("stored key: %x, %v", keys, err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.AddServerKey(ctx, "cursor", bytes.Repeat([]byte{1}, 32), f.svc.Now())
		}); err != nil {
			t.Fatal(err)
		}
		_ = db.Read(ctx, func(tx *store.Tx) error {
			k, err := tx.ServerKey(ctx, "cursor")
			if err != nil || !bytes.Equal(k, keys[0]) {
				t.Fatalf("a second AddServerKey replaced the key: %x, %v", k, err)
			}
			return nil
		})
		err = db.Read(ctx, func(tx *store.Tx) error { _, err := tx.ServerKey(ctx, "nope"); return err })
		if usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("missing key: got %v, want not found", err)
		}
	})
}
