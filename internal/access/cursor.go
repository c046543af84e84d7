package access

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// Cursor kinds: a cursor opens only on the list that made it.
const (
	CursorUsers            = "users"
	CursorGroups           = "groups"
	CursorGroupMembers     = "group_members"
	CursorSubscriptions    = "subscriptions"
	CursorAuditLog         = "audit-log"
	CursorNotificationRuns = "notification-runs"
	CursorReclaims         = "reclaims"
	// CursorUsageReport is followed by the report's sort ("usage-report:-days_used"),
	// since a position means something else in another order.
	CursorUsageReport = "usage-report:"
)

// cursorKeyName names the cursor key among the server keys.
const cursorKeyName = "cursor"

// maxCursorLen bounds what is even looked at; real cursors are far shorter.
const maxCursorLen = 1024

// cursorB64 is strict so that one position has exactly one spelling.
var cursorB64 = base64.RawURLEncoding.Strict()

// errBadCursor is what every refused cursor says: why it was refused helps
// nobody but someone forging one.
var errBadCursor = errors.New("is not a cursor returned by this list")

// SignCursor makes the opaque cursor of a keyset position: the position as
// JSON, then an HMAC-SHA256 under key of the kind, the account and the JSON.
func SignCursor(key []byte, kind string, accountID int64, pos any) (string, error) {
	b, err := json.Marshal(pos)
	if err != nil {
		return "", fmt.Errorf("sign cursor: %w", err)
	}
	return cursorB64.EncodeToString(b) + "." + cursorB64.EncodeToString(cursorMAC(key, kind, accountID, b)), nil
}

func cursorMAC(key []byte, kind string, accountID int64, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	// Kind and account are length-delimited, so no two inputs run together.
	m.Write([]byte(strconv.Itoa(len(kind)) + ":" + kind + ":" + strconv.FormatInt(accountID, 10) + ":"))
	m.Write(payload)
	return m.Sum(nil)
}

// OpenCursor checks that s was made by SignCursor with the same key, kind
// and account, and decodes its position into pos.
func OpenCursor(key []byte, kind string, accountID int64, s string, pos any) error {
	if len(s) > maxCursorLen {
		return errBadCursor
	}
	payload64, mac64, ok := strings.Cut(s, ".")
	if !ok {
		return errBadCursor
	}
	payload, err1 := cursorB64.DecodeString(payload64)
	mac, err2 := cursorB64.DecodeString(mac64)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, cursorMAC(key, kind, accountID, payload)) {
		return errBadCursor
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(pos); err != nil || dec.More() {
		return errBadCursor // a key shared with an older format, at worst
	}
	return nil
}

// KeyTx is what loading the server's cursor key needs of a transaction.
type KeyTx interface {
	// ServerKey returns the secret stored under name; usher.ENOTFOUND if none.
	ServerKey(ctx context.Context, name string) ([]byte, error)
	// AddServerKey stores secret under name unless a secret is stored there
	// already, in which case it changes nothing and does not fail.
	AddServerKey(ctx context.Context, name string, secret []byte, at time.Time) error
}

// Cursors signs and opens the cursors of one service's lists, with a key
// kept in the database: every replica on the database uses the same key,
// and the first to need it creates it.
type Cursors struct {
	load func(ctx context.Context) ([]byte, error)
	mu   sync.Mutex
	key  []byte
}

// NewCursors returns Cursors whose key is read (and on first use of a
// database, created) through read and write, the Read and Write of a Store.
func NewCursors[T KeyTx](read, write func(ctx context.Context, fn func(T) error) error) *Cursors {
	return &Cursors{load: func(ctx context.Context) ([]byte, error) {
		var key []byte
		err := read(ctx, func(tx T) (err error) {
			key, err = tx.ServerKey(ctx, cursorKeyName)
			return err
		})
		if usher.ErrorCode(err) != usher.ENOTFOUND {
			return key, err
		}
		fresh := make([]byte, 32)
		_, _ = rand.Read(fresh) // crypto/rand never fails on supported platforms
		err = write(ctx, func(tx T) (err error) {
			// Two replicas may race here; both read back the one that won.
			if err := tx.AddServerKey(ctx, cursorKeyName, fresh, time.Now().UTC()); err != nil {
				return err
			}
			key, err = tx.ServerKey(ctx, cursorKeyName)
			return err
		})
		return key, err
	}}
}

// Key returns the cursor key, loading it once.
func (c *Cursors) Key(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != nil {
		return c.key, nil
	}
	key, err := c.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load the cursor key: %w", err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("load the cursor key: the stored key has %d bytes, want at least 16", len(key))
	}
	c.key = key
	return key, nil
}

// Encode signs pos as a cursor of the kind of list for the account.
func (c *Cursors) Encode(ctx context.Context, kind string, accountID int64, pos any) (string, error) {
	key, err := c.Key(ctx)
	if err != nil {
		return "", err
	}
	return SignCursor(key, kind, accountID, pos)
}

// Decode opens cursor s into pos, recording a problem naming "cursor" when
// it is not one this kind of list made for the account. "" leaves pos as
// is. The error is for a key that cannot be loaded. Lists call it before
// their transaction even without a cursor, so that Encode inside the
// transaction finds the key loaded.
func (c *Cursors) Decode(ctx context.Context, p *usher.Problems, kind string, accountID int64, s string, pos any) error {
	key, err := c.Key(ctx)
	if err != nil {
		return err
	}
	if s == "" {
		return nil
	}
	if err := OpenCursor(key, kind, accountID, s, pos); err != nil {
		p.Add("cursor", err.Error())
	}
	return nil
}
