// Package access holds the rules for accounts, users, roles, subscriptions
// and the assignment of seats, services and benefits. Every change goes
// through Service, which checks permissions, validates, writes an audit entry
// and commits in one transaction.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// Service is the access domain service used by every edge.
type Service struct {
	store   Store
	now     Clock
	cursors *Cursors
}

// New returns a Service on store. now may be nil for the wall clock.
func New(store Store, now Clock) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now, cursors: NewCursors(store.Read, store.Write)}
}

// Now returns the service's current time, truncated to milliseconds as stored.
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Page is one page of a list and the cursor of the next one ("" at the end).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Default and maximum page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

func checkLimit(p *usher.Problems, limit int) int {
	switch {
	case limit == 0:
		return DefaultLimit
	case limit < 0 || limit > MaxLimit:
		p.Addf("limit", "must be between 1 and %d", MaxLimit)
	}
	return limit
}

// NewToken returns a fresh random API token and the hash under which it is stored.
func NewToken() (plain string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	plain = "ush_" + base64.RawURLEncoding.EncodeToString(b)
	return plain, HashToken(plain)
}

// HashToken is the stored form of a token.
func HashToken(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}

// audit writes an audit entry in tx. before and after are marshalled to JSON.
func (s *Service) audit(ctx context.Context, tx Tx, a usher.Actor, action string, target usher.User, subID int64, before, after any) error {
	e, err := s.auditEntry(a, action, target, subID, before, after)
	if err != nil {
		return err
	}
	if err := tx.InsertAudit(ctx, &e); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// auditEntry is the entry audit stores, for callers that store several at once.
func (s *Service) auditEntry(a usher.Actor, action string, target usher.User, subID int64, before, after any) (usher.AuditEntry, error) {
	e := usher.AuditEntry{
		AccountID: a.AccountID, ActorID: a.UserID, ActorEmail: a.Email, Action: action,
		TargetUserID: target.ID, TargetEmail: target.Email, SubscriptionID: subID, At: s.Now(),
	}
	if err := e.SetChange(before, after); err != nil {
		return e, fmt.Errorf("audit %s: %w", action, err)
	}
	return e, nil
}

// ---- accounts and authentication ----

// NewAccount is the input of CreateAccount.
type NewAccount struct {
	Name       string
	TimeZone   string
	AdminEmail string
	AdminName  string
	// AllowExistingEmail creates the account even when the admin's email is
	// a user in another account already. Without it that is refused: a
	// second account for the same person is usually a mistake, and makes
	// every later command that names them by email ask which account.
	AllowExistingEmail bool
}

// CreateAccount creates an account with its first primary admin and an API
// token for them. It is an operator action (command line), not an API one.
func (s *Service) CreateAccount(ctx context.Context, in NewAccount) (usher.Account, usher.User, string, error) {
	var p usher.Problems
	usher.CheckText(&p, "name", in.Name, 1, 200)
	if in.AdminName != "" {
		usher.CheckText(&p, "admin_name", in.AdminName, 1, 200)
	}
	if in.TimeZone == "" {
		in.TimeZone = "UTC"
	}
	if _, err := time.LoadLocation(in.TimeZone); err != nil {
		p.Add("timezone", "is not an IANA time zone such as Europe/Berlin")
	}
	in.AdminEmail = usher.NormalizeEmail(in.AdminEmail)
	if !usher.ValidEmail(in.AdminEmail) {
		p.Add("admin_email", "is not an email address")
	}
	if err := p.Err(); err != nil {
		return usher.Account{}, usher.User{}, "", err
	}
	if in.AdminName == "" {
		in.AdminName = in.AdminEmail
	}
	now := s.Now()
	acct := usher.Account{Name: in.Name, TimeZone: in.TimeZone, NewSeatGraceDays: usher.DefaultNewSeatGraceDays, CreatedAt: now}
	admin := usher.User{Email: in.AdminEmail, Name: in.AdminName, Status: usher.UserActive, CreatedAt: now, UpdatedAt: now}
	plain, hash := NewToken()
	err := s.store.Write(ctx, func(tx Tx) error {
		if !in.AllowExistingEmail {
			existing, err := tx.UsersByEmail(ctx, in.AdminEmail)
			if err != nil {
				return err
			}
			if len(existing) > 0 {
				ids := make([]string, len(existing))
				for i, u := range existing {
					ids[i] = strconv.FormatInt(u.AccountID, 10)
				}
				return &usher.Error{Code: usher.ECONFLICT, Message: "the admin email has an account already",
					Fields: []usher.FieldError{{Field: "admin_email", Reason: fmt.Sprintf(
						"%s is a user in account %s already; allow an existing email to create another account for them anyway",
						in.AdminEmail, strings.Join(ids, ", "))}}}
			}
		}
		if err := tx.CreateAccount(ctx, &acct); err != nil {
			return err
		}
		admin.AccountID = acct.ID
		if err := tx.CreateUser(ctx, &admin); err != nil {
			return err
		}
		g := usher.RoleGrant{UserID: admin.ID, Role: usher.RolePrimaryAdmin}
		if err := tx.GrantRole(ctx, acct.ID, g); err != nil {
			return err
		}
		tok := usher.Token{AccountID: acct.ID, UserID: admin.ID, Name: "initial admin token", Scope: usher.ScopeFull, Hash: hash, CreatedAt: now}
		if err := tx.CreateToken(ctx, &tok); err != nil {
			return err
		}
		sys := usher.System(acct.ID)
		if err := s.audit(ctx, tx, sys, "account.create", admin, 0, nil, acct); err != nil {
			return err
		}
		return s.audit(ctx, tx, sys, "role.grant", admin, 0, nil, g)
	})
	if err != nil {
		return usher.Account{}, usher.User{}, "", fmt.Errorf("create account: %w", err)
	}
	return acct, admin, plain, nil
}

// ListAccounts lists every account; an operator action for the command line.
func (s *Service) ListAccounts(ctx context.Context) ([]usher.Account, error) {
	var out []usher.Account
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.ListAccounts(ctx)
		return err
	})
	return out, err
}

// Account returns the actor's account.
func (s *Service) Account(ctx context.Context, a usher.Actor) (usher.Account, error) {
	var out usher.Account
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.AccountByID(ctx, a.AccountID)
		return err
	})
	return out, err
}

// ActorFor loads the actor for a user, e.g. for a console session.
func (s *Service) ActorFor(ctx context.Context, accountID, userID int64) (usher.Actor, error) {
	var actor usher.Actor
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		actor, err = actorFor(ctx, tx, accountID, userID)
		return err
	})
	return actor, err
}

func actorFor(ctx context.Context, tx Tx, accountID, userID int64) (usher.Actor, error) {
	u, err := tx.UserByID(ctx, accountID, userID)
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		return usher.Actor{}, usher.Errorf(usher.EUNAUTHORIZED, "the user no longer exists")
	} else if err != nil {
		return usher.Actor{}, err
	}
	if u.Status != usher.UserActive {
		return usher.Actor{}, usher.Errorf(usher.EUNAUTHORIZED, "the user is disabled")
	}
	grants, err := tx.RolesOf(ctx, accountID, userID)
	if err != nil {
		return usher.Actor{}, err
	}
	return usher.Actor{AccountID: accountID, UserID: u.ID, Email: u.Email, Grants: grants, Scope: usher.ScopeFull}, nil
}

// ---- account settings ----

// AccountSettings is the input of UpdateAccount; nil fields stay as they are.
type AccountSettings struct {
	NewSeatGraceDays *int `json:"new_seat_grace_days"`
}

// UpdateAccount changes the account's settings.
func (s *Service) UpdateAccount(ctx context.Context, a usher.Actor, in AccountSettings) (usher.Account, error) {
	var p usher.Problems
	if in.NewSeatGraceDays != nil && (*in.NewSeatGraceDays < 0 || *in.NewSeatGraceDays > usher.MaxNewSeatGraceDays) {
		p.Addf("new_seat_grace_days", "must be between 0 and %d", usher.MaxNewSeatGraceDays)
	}
	if err := p.Err(); err != nil {
		return usher.Account{}, err
	}
	if !Can(a, ManageAccount, 0) {
		return usher.Account{}, forbidden("change account settings")
	}
	var out usher.Account
	err := s.store.Write(ctx, func(tx Tx) error {
		before, err := tx.AccountByID(ctx, a.AccountID)
		if err != nil {
			return err
		}
		out = before
		if in.NewSeatGraceDays == nil || *in.NewSeatGraceDays == before.NewSeatGraceDays {
			return nil
		}
		out.NewSeatGraceDays = *in.NewSeatGraceDays
		if err := tx.SetAccountGrace(ctx, a.AccountID, out.NewSeatGraceDays); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "account.update", usher.User{}, 0,
			AccountSettings{NewSeatGraceDays: &before.NewSeatGraceDays}, AccountSettings{NewSeatGraceDays: &out.NewSeatGraceDays})
	})
	if err != nil {
		return usher.Account{}, fmt.Errorf("update account: %w", err)
	}
	return out, nil
}
