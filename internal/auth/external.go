package auth

import (
	"context"
	"fmt"

	"github.com/usherhq/usher/internal/usher"
)

// PasswordPolicy decides whether a user may sign in with a password at
// all, before the password is checked: an account that requires single
// sign-on turns passwords off for most of its people. A nil policy allows
// everyone.
type PasswordPolicy func(ctx context.Context, u usher.User) error

// passwordAllowed asks the configured policy about u.
func (s *Service) passwordAllowed(ctx context.Context, u usher.User) error {
	if s.cfg.PasswordPolicy == nil {
		return nil
	}
	return s.cfg.PasswordPolicy(ctx, u)
}

// StartSession signs a user in whose identity someone else has vouched for
// (an OpenID provider, checked by the sso service), returning the session's
// token. It refuses users who no longer exist or are disabled.
func (s *Service) StartSession(ctx context.Context, accountID, userID int64) (string, Session, error) {
	plain, hash := newSecret("uss_")
	now := s.now()
	sess := Session{TokenHash: hash, AccountID: accountID, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	err := s.store.Write(ctx, func(tx Tx) error {
		u, err := tx.UserByID(ctx, accountID, userID)
		if err != nil {
			return err
		}
		if u.Status != usher.UserActive {
			return usher.Errorf(usher.EUNAUTHORIZED, "the user is disabled")
		}
		if err := tx.DeleteExpiredSessions(ctx, now); err != nil {
			return err
		}
		return tx.CreateSession(ctx, &sess)
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("start session for user %d: %w", userID, err)
	}
	return plain, sess, nil
}
