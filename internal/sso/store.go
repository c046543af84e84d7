package sso

import (
	"context"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// Store runs functions in transactions, like access.Store. A function's
// error rolls its transaction back.
type Store interface {
	Read(ctx context.Context, fn func(Tx) error) error
	Write(ctx context.Context, fn func(Tx) error) error
}

// Tx is what the sso service needs from storage inside one transaction.
// Methods that take an accountID confine themselves to that account and
// answer usher.ENOTFOUND for objects of other accounts.
type Tx interface {
	// These have the same meaning (and signatures) as in access.Tx and
	// auth.Tx, so one storage transaction serves every service.
	AccountByID(ctx context.Context, id int64) (usher.Account, error)
	UserByEmail(ctx context.Context, accountID int64, email string) (usher.User, error)
	UsersByEmail(ctx context.Context, email string) ([]usher.User, error)
	CreateUser(ctx context.Context, u *usher.User) error
	RolesOf(ctx context.Context, accountID, userID int64) ([]usher.RoleGrant, error)
	InsertAudit(ctx context.Context, e *usher.AuditEntry) error

	// SSOSettings returns the account's settings; usher.ENOTFOUND when
	// single sign-on is not set up.
	SSOSettings(ctx context.Context, accountID int64) (Settings, error)
	// ListSSOSettings returns the settings of every account that has them,
	// ordered by account id, for finding an account by email domain.
	ListSSOSettings(ctx context.Context) ([]Settings, error)
	// PutSSOSettings inserts or replaces the settings of s.AccountID.
	PutSSOSettings(ctx context.Context, s Settings) error
	// DeleteSSOSettings removes them; usher.ENOTFOUND when there are none.
	// Sign-ins in progress for the account go with them.
	DeleteSSOSettings(ctx context.Context, accountID int64) error

	// CreateSSOLogin stores a sign-in in progress.
	CreateSSOLogin(ctx context.Context, l Login) error
	// SSOLoginByHash answers usher.ENOTFOUND for an unknown state hash.
	SSOLoginByHash(ctx context.Context, hash []byte) (Login, error)
	// UseSSOLogin sets UsedAt once; a second call answers usher.ECONFLICT,
	// so a state is good for one callback only, however many race.
	UseSSOLogin(ctx context.Context, hash []byte, at time.Time) error
	// PruneSSOLogins drops sign-ins that expired before t.
	PruneSSOLogins(ctx context.Context, before time.Time) error
}

// Login is one sign-in in progress: what the callback must find to accept
// the identity provider's answer. Only the hash of its state is stored.
type Login struct {
	StateHash []byte
	AccountID int64
	Nonce     string
	Verifier  string // the PKCE code verifier
	Next      string // where to go after signing in, a local path
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}
