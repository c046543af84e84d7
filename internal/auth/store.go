package auth

import (
	"context"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// Store runs functions in database transactions, as access.Store does.
type Store interface {
	Read(ctx context.Context, fn func(Tx) error) error
	Write(ctx context.Context, fn func(Tx) error) error
}

// Tx is what the auth service needs from storage inside one transaction.
type Tx interface {
	// UsersByEmail lists the users with this (normalised) email in every
	// account, ordered by account id.
	UsersByEmail(ctx context.Context, email string) ([]usher.User, error)
	UserByID(ctx context.Context, accountID, id int64) (usher.User, error)

	// PasswordHash answers usher.ENOTFOUND when the user has no password.
	PasswordHash(ctx context.Context, accountID, userID int64) (string, error)
	SetPasswordHash(ctx context.Context, accountID, userID int64, hash string, at time.Time) error

	CreateSession(ctx context.Context, s *Session) error
	// SessionByHash answers usher.ENOTFOUND for an unknown token hash,
	// expired or not; the caller checks expiry.
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	// DeleteSession is idempotent.
	DeleteSession(ctx context.Context, hash []byte) error
	DeleteSessionsOfUser(ctx context.Context, accountID, userID int64) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) error

	// RecordSignInFailure adds one failure at t under each key.
	RecordSignInFailure(ctx context.Context, keys []string, t time.Time) error
	// CountSignInFailures counts the key's failures at or after since.
	CountSignInFailures(ctx context.Context, key string, since time.Time) (int, error)
	ClearSignInFailures(ctx context.Context, key string) error
	// PruneSignInFailures drops failures before t, which no window counts.
	PruneSignInFailures(ctx context.Context, before time.Time) error

	// SetSessionFlash keeps a message for the session's next page;
	// TakeSessionFlash returns it ("" for none) and clears it.
	SetSessionFlash(ctx context.Context, hash []byte, msg string) error
	TakeSessionFlash(ctx context.Context, hash []byte) (string, error)

	CreatePasswordLink(ctx context.Context, l PasswordLink) error
	// PasswordLinkByHash answers usher.ENOTFOUND for an unknown token hash.
	PasswordLinkByHash(ctx context.Context, hash []byte) (PasswordLink, error)
	// MarkPasswordLinkUsed sets UsedAt once; a second call answers
	// usher.ECONFLICT, so two tabs cannot both use one link.
	MarkPasswordLinkUsed(ctx context.Context, hash []byte, at time.Time) error

	InsertAudit(ctx context.Context, e *usher.AuditEntry) error
}

// Session is a signed-in browser. Only the hash of its token is stored.
type Session struct {
	ID        int64
	TokenHash []byte
	AccountID int64
	UserID    int64
	CreatedAt time.Time
	ExpiresAt time.Time
	// Flash is a message for the next page the session opens, shown once.
	Flash string
}

// PasswordLink lets one user set their password once before it expires.
type PasswordLink struct {
	TokenHash []byte
	AccountID int64
	UserID    int64
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}
