package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/usher"
)

// This file implements auth.Tx: passwords, sessions, failed sign-ins and
// set-password links (migration 0004).

// Auth returns the store of the auth domain.
func (db *DB) Auth() auth.Store { return domainStore[auth.Tx]{db} }

var _ auth.Tx = (*Tx)(nil)

// UsersByEmail lists the users with this email in every account, served by
// users_by_email.
func (tx *Tx) UsersByEmail(ctx context.Context, email string) ([]usher.User, error) {
	rows, err := tx.query(ctx, "SELECT "+userColumns+" FROM users WHERE email = ? ORDER BY account_id", email)
	if err != nil {
		return nil, fmt.Errorf("users by email: %w", err)
	}
	out, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("users by email: %w", err)
	}
	return out, nil
}

// PasswordHash returns the user's password hash.
func (tx *Tx) PasswordHash(ctx context.Context, accountID, userID int64) (string, error) {
	var h string
	err := tx.queryRow(ctx, "SELECT hash FROM user_passwords WHERE account_id = ? AND user_id = ?", accountID, userID).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", usher.Errorf(usher.ENOTFOUND, "user %d has no password", userID)
	} else if err != nil {
		return "", fmt.Errorf("password of user %d: %w", userID, err)
	}
	return h, nil
}

// SetPasswordHash stores or replaces the user's password hash.
func (tx *Tx) SetPasswordHash(ctx context.Context, accountID, userID int64, hash string, at time.Time) error {
	_, err := tx.exec(ctx, `
		INSERT INTO user_passwords (account_id, user_id, hash, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id, user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at`,
		accountID, userID, hash, millis(at))
	switch {
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "user %d not found", userID)
	case err != nil:
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	return nil
}

// CreateSession stores s and sets its ID.
func (tx *Tx) CreateSession(ctx context.Context, s *auth.Session) error {
	err := tx.queryRow(ctx, `
		INSERT INTO sessions (token_hash, account_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
		RETURNING id`,
		s.TokenHash, s.AccountID, s.UserID, millis(s.CreatedAt), millis(s.ExpiresAt)).Scan(&s.ID)
	switch {
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "user %d not found", s.UserID)
	case err != nil:
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByHash returns the session with this token hash.
func (tx *Tx) SessionByHash(ctx context.Context, hash []byte) (auth.Session, error) {
	var s auth.Session
	var created, expires int64
	var flash sql.NullString // read with the session, so pages without a message write nothing
	err := tx.queryRow(ctx, `
		SELECT id, token_hash, account_id, user_id, created_at, expires_at, flash FROM sessions WHERE token_hash = ?`, hash).
		Scan(&s.ID, &s.TokenHash, &s.AccountID, &s.UserID, &created, &expires, &flash)
	if errors.Is(err, sql.ErrNoRows) {
		return s, usher.Errorf(usher.ENOTFOUND, "session not found")
	} else if err != nil {
		return s, fmt.Errorf("get session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt, s.Flash = fromMillis(created), fromMillis(expires), flash.String
	return s, nil
}

// DeleteSession removes the session with this token hash, if any.
func (tx *Tx) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := tx.exec(ctx, "DELETE FROM sessions WHERE token_hash = ?", hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteSessionsOfUser signs the user out everywhere.
func (tx *Tx) DeleteSessionsOfUser(ctx context.Context, accountID, userID int64) error {
	if _, err := tx.exec(ctx, "DELETE FROM sessions WHERE account_id = ? AND user_id = ?", accountID, userID); err != nil {
		return fmt.Errorf("delete sessions of user %d: %w", userID, err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions that expired at or before now,
// served by sessions_by_expiry.
func (tx *Tx) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	if _, err := tx.exec(ctx, "DELETE FROM sessions WHERE expires_at <= ?", millis(now)); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	return nil
}

// RecordSignInFailure adds one failure at t under each key.
func (tx *Tx) RecordSignInFailure(ctx context.Context, keys []string, t time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, millis(t))
	}
	if _, err := tx.exec(ctx, "INSERT INTO sign_in_failures (key, at) VALUES "+valueRows(len(keys), 2), args...); err != nil {
		return fmt.Errorf("record sign-in failure: %w", err)
	}
	return nil
}

// CountSignInFailures counts the key's failures at or after since, served
// by sign_in_failures_by_key.
func (tx *Tx) CountSignInFailures(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	if err := tx.queryRow(ctx, "SELECT COUNT(*) FROM sign_in_failures WHERE key = ? AND at >= ?", key, millis(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sign-in failures: %w", err)
	}
	return n, nil
}

// ClearSignInFailures forgets the key's failures.
func (tx *Tx) ClearSignInFailures(ctx context.Context, key string) error {
	if _, err := tx.exec(ctx, "DELETE FROM sign_in_failures WHERE key = ?", key); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}

// PruneSignInFailures drops failures before t. It scans the table; the table
// holds only one window's failures, because every failure prunes.
func (tx *Tx) PruneSignInFailures(ctx context.Context, before time.Time) error {
	if _, err := tx.exec(ctx, "DELETE FROM sign_in_failures WHERE at < ?", millis(before)); err != nil {
		return fmt.Errorf("prune sign-in failures: %w", err)
	}
	return nil
}

// CreatePasswordLink stores l.
func (tx *Tx) CreatePasswordLink(ctx context.Context, l auth.PasswordLink) error {
	_, err := tx.exec(ctx, `
		INSERT INTO password_links (token_hash, account_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		l.TokenHash, l.AccountID, l.UserID, millis(l.CreatedAt), millis(l.ExpiresAt))
	switch {
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "user %d not found", l.UserID)
	case err != nil:
		return fmt.Errorf("create password link: %w", err)
	}
	return nil
}

// PasswordLinkByHash returns the link with this token hash.
func (tx *Tx) PasswordLinkByHash(ctx context.Context, hash []byte) (auth.PasswordLink, error) {
	var l auth.PasswordLink
	var created, expires int64
	var used sql.NullInt64
	err := tx.queryRow(ctx, `
		SELECT token_hash, account_id, user_id, created_at, expires_at, used_at FROM password_links WHERE token_hash = ?`, hash).
		Scan(&l.TokenHash, &l.AccountID, &l.UserID, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return l, usher.Errorf(usher.ENOTFOUND, "password link not found")
	} else if err != nil {
		return l, fmt.Errorf("get password link: %w", err)
	}
	l.CreatedAt, l.ExpiresAt = fromMillis(created), fromMillis(expires)
	if used.Valid {
		l.UsedAt = fromMillis(used.Int64)
	}
	return l, nil
}

// MarkPasswordLinkUsed sets the link's used_at if it is still unused.
func (tx *Tx) MarkPasswordLinkUsed(ctx context.Context, hash []byte, at time.Time) error {
	n, err := affected(tx.exec(ctx, "UPDATE password_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL", millis(at), hash))
	switch {
	case err != nil:
		return fmt.Errorf("use password link: %w", err)
	case n == 0:
		return usher.Errorf(usher.ECONFLICT, "the password link has been used already")
	}
	return nil
}

// SetSessionFlash keeps a message for the session's next page.
func (tx *Tx) SetSessionFlash(ctx context.Context, hash []byte, msg string) error {
	if _, err := tx.exec(ctx, "UPDATE sessions SET flash = ? WHERE token_hash = ?", msg, hash); err != nil {
		return fmt.Errorf("set session message: %w", err)
	}
	return nil
}

// TakeSessionFlash returns the session's message, if any, and clears it.
func (tx *Tx) TakeSessionFlash(ctx context.Context, hash []byte) (string, error) {
	var msg sql.NullString
	err := tx.queryRow(ctx, "SELECT flash FROM sessions WHERE token_hash = ?", hash).Scan(&msg)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !msg.Valid {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("take session message: %w", err)
	}
	if _, err := tx.exec(ctx, "UPDATE sessions SET flash = NULL WHERE token_hash = ?", hash); err != nil {
		return "", fmt.Errorf("take session message: %w", err)
	}
	return msg.String, nil
}
