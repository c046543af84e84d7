package access

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// TokenInput describes a new API token. At most one of ExpiresAt and
// ExpiresInDays is set; with neither the token does not expire.
type TokenInput struct {
	Name          string
	Scope         usher.TokenScope // "" means full
	ExpiresAt     *time.Time
	ExpiresInDays *int
}

// Token limits.
const (
	MaxTokenNameLen = 100  // characters
	MaxTokenDays    = 3650 // ten years
	// tokenTouchEvery is how stale a token's recorded last use may grow
	// before a request writes a new one: at most one write a minute per
	// token, not one per request.
	tokenTouchEvery = time.Minute
)

func (in *TokenInput) validate(p *usher.Problems, now time.Time) *time.Time {
	in.Name = strings.TrimSpace(in.Name)
	usher.CheckText(p, "name", in.Name, 1, MaxTokenNameLen)
	if in.Scope == "" {
		in.Scope = usher.ScopeFull
	}
	if !in.Scope.Valid() {
		p.Add("scope", `must be one of "full", "read", "ingest", "scim"`)
	}
	switch {
	case in.ExpiresAt != nil && in.ExpiresInDays != nil:
		p.Add("expires_in_days", "give expires_at or expires_in_days, not both")
	case in.ExpiresAt != nil:
		at := in.ExpiresAt.UTC().Truncate(time.Millisecond)
		if !at.After(now) {
			p.Add("expires_at", "must be in the future")
		} else if at.After(now.AddDate(0, 0, MaxTokenDays)) {
			p.Addf("expires_at", "must be within %d days", MaxTokenDays)
		}
		return &at
	case in.ExpiresInDays != nil:
		d := *in.ExpiresInDays
		if d < 1 || d > MaxTokenDays {
			p.Addf("expires_in_days", "must be between 1 and %d", MaxTokenDays)
		}
		at := now.AddDate(0, 0, d)
		return &at
	}
	return nil
}

// mayHoldScope checks that the token's owner (with the roles they hold)
// may use a token of scope: ingest and SCIM tokens are for admins.
func mayHoldScope(owner usher.Actor, scope usher.TokenScope) error {
	switch scope {
	case usher.ScopeIngest:
		if !Can(owner, IngestUsage, 0) {
			return forbidden("hold ingest tokens; only admins send usage")
		}
	case usher.ScopeSCIM:
		if !Can(owner, ManageUsers, 0) {
			return forbidden("hold SCIM tokens; only admins provision users")
		}
	}
	return nil
}

// CreateToken makes a new API token for the actor's own user and returns it
// with its secret, which is shown this once: only its hash is stored.
// Anyone signed in, or holding a full token, may make tokens for
// themselves; ingest and SCIM tokens only admins.
func (s *Service) CreateToken(ctx context.Context, a usher.Actor, in TokenInput) (usher.Token, string, error) {
	now := s.Now()
	var p usher.Problems
	expires := in.validate(&p, now)
	if err := p.Err(); err != nil {
		return usher.Token{}, "", err
	}
	if a.Scope != usher.ScopeFull {
		return usher.Token{}, "", forbidden("create tokens with a " + string(a.Scope) + " token")
	}
	if err := mayHoldScope(a, in.Scope); err != nil {
		return usher.Token{}, "", err
	}
	var t usher.Token
	var plain string
	err := s.store.Write(ctx, func(tx Tx) (err error) {
		owner, err := tx.UserByID(ctx, a.AccountID, a.UserID)
		if err != nil {
			return err
		}
		t, plain, err = s.createToken(ctx, tx, a, owner, in, expires, now)
		return err
	})
	if err != nil {
		return usher.Token{}, "", fmt.Errorf("create token: %w", err)
	}
	return t, plain, nil
}

// IssueToken makes a token for a user as an operator (command line).
func (s *Service) IssueToken(ctx context.Context, accountID, userID int64, in TokenInput) (usher.Token, string, error) {
	now := s.Now()
	var p usher.Problems
	expires := in.validate(&p, now)
	if err := p.Err(); err != nil {
		return usher.Token{}, "", err
	}
	var t usher.Token
	var plain string
	err := s.store.Write(ctx, func(tx Tx) error {
		owner, err := actorFor(ctx, tx, accountID, userID)
		if usher.ErrorCode(err) == usher.EUNAUTHORIZED {
			// A disabled user's tokens would not work; say so now.
			return usher.Errorf(usher.ECONFLICT, "user %d cannot hold tokens: %s", userID, usher.ErrorMessage(err))
		} else if err != nil {
			return err
		}
		if err := mayHoldScope(owner, in.Scope); err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, accountID, userID)
		if err != nil {
			return err
		}
		t, plain, err = s.createToken(ctx, tx, usher.System(accountID), u, in, expires, now)
		return err
	})
	if err != nil {
		return usher.Token{}, "", fmt.Errorf("issue token: %w", err)
	}
	return t, plain, nil
}

func (s *Service) createToken(ctx context.Context, tx Tx, a usher.Actor, owner usher.User, in TokenInput, expires *time.Time, now time.Time) (usher.Token, string, error) {
	plain, hash := NewToken()
	t := usher.Token{AccountID: owner.AccountID, UserID: owner.ID, UserEmail: owner.Email, Name: in.Name, Scope: in.Scope,
		Hash: hash, CreatedAt: now, ExpiresAt: expires}
	if err := tx.CreateToken(ctx, &t); err != nil {
		return usher.Token{}, "", err
	}
	if err := s.audit(ctx, tx, a, "token.create", owner, 0, nil, tokenAudit(t)); err != nil {
		return usher.Token{}, "", err
	}
	return t, plain, nil
}

// tokenAudit is what the audit log keeps of a token: never its hash.
func tokenAudit(t usher.Token) map[string]any {
	m := map[string]any{"id": t.ID, "name": t.Name, "scope": t.Scope}
	if t.ExpiresAt != nil {
		m["expires_at"] = *t.ExpiresAt
	}
	return m
}

// ListTokens lists the actor's own tokens, or every token of the account
// with its owner for whoever may see them all (a primary admin).
func (s *Service) ListTokens(ctx context.Context, a usher.Actor) ([]usher.Token, error) {
	if !seesOwn(a) {
		return nil, forbidden("list tokens with a " + string(a.Scope) + " token")
	}
	userID := a.UserID
	if Can(a, ViewTokens, 0) {
		userID = 0
	}
	var out []usher.Token
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.ListTokens(ctx, a.AccountID, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// UserTokens lists one user's tokens for whoever may see every token of
// the account (ViewTokens); others are refused, even for their own, which
// ListTokens gives them.
func (s *Service) UserTokens(ctx context.Context, a usher.Actor, userID int64) ([]usher.Token, error) {
	if !seesOwn(a) || !Can(a, ViewTokens, 0) {
		return nil, forbidden("list other people's tokens")
	}
	var out []usher.Token
	err := s.store.Read(ctx, func(tx Tx) error {
		if _, err := tx.UserByID(ctx, a.AccountID, userID); err != nil {
			return err
		}
		var err error
		out, err = tx.ListTokens(ctx, a.AccountID, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	return out, nil
}

// RevokeToken ends a token at once: the actor's own, or any of the account
// for whoever may revoke them all. Other people's tokens are not found.
func (s *Service) RevokeToken(ctx context.Context, a usher.Actor, id int64) (usher.Token, error) {
	if a.Scope != usher.ScopeFull {
		return usher.Token{}, forbidden("revoke tokens with a " + string(a.Scope) + " token")
	}
	var t usher.Token
	err := s.store.Write(ctx, func(tx Tx) (err error) {
		t, err = tx.TokenByID(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		if t.UserID != a.UserID && !Can(a, RevokeTokens, 0) {
			return usher.Errorf(usher.ENOTFOUND, "token %d not found", id)
		}
		return s.revokeToken(ctx, tx, a, t, "")
	})
	if err != nil {
		return usher.Token{}, fmt.Errorf("revoke token %d: %w", id, err)
	}
	return t, nil
}

// RevokeTokenByID revokes a token of any account as an operator (command line).
func (s *Service) RevokeTokenByID(ctx context.Context, id int64) (usher.Token, error) {
	var t usher.Token
	err := s.store.Write(ctx, func(tx Tx) (err error) {
		if t, err = tx.TokenByID(ctx, 0, id); err != nil {
			return err
		}
		return s.revokeToken(ctx, tx, usher.System(t.AccountID), t, "")
	})
	if err != nil {
		return usher.Token{}, fmt.Errorf("revoke token %d: %w", id, err)
	}
	return t, nil
}

// TokensOf lists one user's tokens as an operator (command line).
func (s *Service) TokensOf(ctx context.Context, accountID, userID int64) ([]usher.Token, error) {
	var out []usher.Token
	err := s.store.Read(ctx, func(tx Tx) error {
		if _, err := tx.UserByID(ctx, accountID, userID); err != nil {
			return err
		}
		var err error
		out, err = tx.ListTokens(ctx, accountID, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	return out, nil
}

func (s *Service) revokeToken(ctx context.Context, tx Tx, a usher.Actor, t usher.Token, reason string) error {
	if err := tx.DeleteToken(ctx, t.AccountID, t.ID); err != nil {
		return err
	}
	before := tokenAudit(t)
	var after any
	if reason != "" {
		after = map[string]string{"reason": reason}
	}
	return s.audit(ctx, tx, a, "token.revoke", usher.User{ID: t.UserID, Email: t.UserEmail}, 0, before, after)
}

// endCredentials signs a user out everywhere and revokes their tokens, so
// that re-enabling them later revives neither.
func (s *Service) endCredentials(ctx context.Context, tx Tx, a usher.Actor, u usher.User, reason string) error {
	if err := tx.DeleteSessionsOfUser(ctx, u.AccountID, u.ID); err != nil {
		return err
	}
	tokens, err := tx.ListTokens(ctx, u.AccountID, u.ID)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if err := s.revokeToken(ctx, tx, a, t, reason); err != nil {
			return err
		}
	}
	return nil
}

// Authenticate turns a bearer token into an actor with the roles its user
// holds now. Unknown and expired tokens, and tokens of disabled users, are
// refused.
func (s *Service) Authenticate(ctx context.Context, token string) (usher.Actor, error) {
	var h TokenHolder
	// One statement, outside a transaction: every API request pays for it.
	// It reads the token as committed now, so a revoked token, a disabled
	// user or a role taken away is refused from the next request on.
	err := s.store.Peek(ctx, func(tx Tx) (err error) {
		h.Token, h.Status, h.Grants, err = tx.TokenHolder(ctx, HashToken(token))
		return err
	})
	return s.admit(ctx, h, err)
}

// AccessByToken is Authenticate and Access in one read, for a GET of a
// user's access: the token, its holder's status and grants, and the view
// of the user in the token's account are one statement. The actor's
// authentication is decided first, as Authenticate decides it (authErr);
// then, as Access decides it, whether the actor may see the view (err).
// Nothing of the view is returned unless both allow it.
func (s *Service) AccessByToken(ctx context.Context, token string, userID int64) (a usher.Actor, ua UserAccess, authErr, err error) {
	var h TokenHolder
	var d AccessData
	err = s.store.Peek(ctx, func(tx Tx) (err error) {
		h, d, err = tx.TokenAccessView(ctx, HashToken(token), userID, MaxSubscriptionsPerAccount)
		return err
	})
	if a, authErr = s.admit(ctx, h, err); authErr != nil {
		return usher.Actor{}, UserAccess{}, authErr, nil
	}
	if !mayReadAccess(a, userID) || d.User.ID == 0 {
		return a, UserAccess{}, nil, usher.Errorf(usher.ENOTFOUND, "user %d not found", userID)
	}
	return a, buildView(a, d.User, d.Held, d.Benefits, d.Subscriptions, grouping{groups: d.Groups, waits: d.Waits}), nil, nil
}

// Admit decides a token read with its holder in another service's
// statement (as TokenHolder reads it, err being that read's error) as
// Authenticate decides it: unknown, expired and disabled users' tokens are
// refused; the token's use is noted now and then.
func (s *Service) Admit(ctx context.Context, h TokenHolder, err error) (usher.Actor, error) {
	return s.admit(ctx, h, err)
}

// admit turns a token read with its holder (or the error of reading it)
// into the actor, refusing unknown and expired tokens and disabled users,
// and notes the token's use now and then.
func (s *Service) admit(ctx context.Context, h TokenHolder, err error) (usher.Actor, error) {
	now := s.Now()
	t := h.Token
	switch {
	case usher.ErrorCode(err) == usher.ENOTFOUND:
		return usher.Actor{}, usher.Errorf(usher.EUNAUTHORIZED, "the token is not valid")
	case err != nil:
		return usher.Actor{}, err
	case t.Expired(now):
		return usher.Actor{}, usher.Errorf(usher.EUNAUTHORIZED, "the token has expired")
	case h.Status != usher.UserActive:
		return usher.Actor{}, usher.Errorf(usher.EUNAUTHORIZED, "the user is disabled")
	}
	actor := usher.Actor{AccountID: t.AccountID, UserID: t.UserID, Email: t.UserEmail, Grants: h.Grants, Scope: t.Scope}
	if t.Scope == usher.ScopeSCIM {
		// The audit log names the provisioning client, not its owner.
		actor.Client, actor.Email = t.Name, "scim:"+t.Name
	}
	if t.LastUsedAt == nil || t.LastUsedAt.Before(now.Add(-tokenTouchEvery)) {
		err := s.store.Write(ctx, func(tx Tx) error { return tx.TouchToken(ctx, t.ID, now, now.Add(-tokenTouchEvery)) })
		if err != nil {
			return usher.Actor{}, fmt.Errorf("authenticate: %w", err)
		}
	}
	return actor, nil
}
