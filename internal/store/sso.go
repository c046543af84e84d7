package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/usher"
)

// This file implements sso.Tx: single sign-on settings and sign-ins in
// progress (migration 0009). The user, role and audit methods are shared
// with access.Tx and auth.Tx.

// SSO returns the store of the sso domain.
func (db *DB) SSO() sso.Store { return domainStore[sso.Tx]{db} }

var _ sso.Tx = (*Tx)(nil)

const ssoSettingsColumns = `account_id, provider_name, issuer, client_id, client_secret, allowed_domains,
	create_users, require_sso, created_at, updated_at`

func scanSSOSettings(row interface{ Scan(...any) error }) (sso.Settings, error) {
	var s sso.Settings
	var domains string
	var created, updated int64
	err := row.Scan(&s.AccountID, &s.ProviderName, &s.Issuer, &s.ClientID, &s.ClientSecret, &domains,
		&s.CreateUsers, &s.RequireSSO, &created, &updated)
	if err != nil {
		return s, err
	}
	s.AllowedDomains = strings.Fields(domains)
	if s.AllowedDomains == nil {
		s.AllowedDomains = []string{}
	}
	s.CreatedAt, s.UpdatedAt = fromMillis(created), fromMillis(updated)
	return s, nil
}

// SSOSettings returns the account's single sign-on settings.
func (tx *Tx) SSOSettings(ctx context.Context, accountID int64) (sso.Settings, error) {
	s, err := scanSSOSettings(tx.queryRow(ctx, "SELECT "+ssoSettingsColumns+" FROM sso_settings WHERE account_id = ?", accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return s, usher.Errorf(usher.ENOTFOUND, "no single sign-on settings for account %d", accountID)
	} else if err != nil {
		return s, fmt.Errorf("single sign-on settings of account %d: %w", accountID, err)
	}
	return s, nil
}

// ListSSOSettings returns every account's settings, by account id.
func (tx *Tx) ListSSOSettings(ctx context.Context) ([]sso.Settings, error) {
	rows, err := tx.query(ctx, "SELECT "+ssoSettingsColumns+" FROM sso_settings ORDER BY account_id")
	if err != nil {
		return nil, fmt.Errorf("list single sign-on settings: %w", err)
	}
	out, err := collect(rows, scanSSOSettings)
	if err != nil {
		return nil, fmt.Errorf("list single sign-on settings: %w", err)
	}
	return out, nil
}

// PutSSOSettings inserts or replaces the settings of s.AccountID.
func (tx *Tx) PutSSOSettings(ctx context.Context, s sso.Settings) error {
	_, err := tx.exec(ctx, `
		INSERT INTO sso_settings (`+ssoSettingsColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET provider_name = excluded.provider_name, issuer = excluded.issuer,
			client_id = excluded.client_id, client_secret = excluded.client_secret,
			allowed_domains = excluded.allowed_domains, create_users = excluded.create_users,
			require_sso = excluded.require_sso, updated_at = excluded.updated_at`,
		s.AccountID, s.ProviderName, s.Issuer, s.ClientID, s.ClientSecret, strings.Join(s.AllowedDomains, " "),
		s.CreateUsers, s.RequireSSO, millis(s.CreatedAt), millis(s.UpdatedAt))
	switch {
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "account %d not found", s.AccountID)
	case err != nil:
		return fmt.Errorf("put single sign-on settings of account %d: %w", s.AccountID, err)
	}
	return nil
}

// DeleteSSOSettings removes the account's settings and its sign-ins in progress.
func (tx *Tx) DeleteSSOSettings(ctx context.Context, accountID int64) error {
	// The sign-ins go first and explicitly, not by cascade alone, so the
	// outcome does not hang on SQLite's foreign_keys setting.
	if _, err := tx.exec(ctx, "DELETE FROM sso_logins WHERE account_id = ?", accountID); err != nil {
		return fmt.Errorf("delete single sign-on sign-ins of account %d: %w", accountID, err)
	}
	n, err := affected(tx.exec(ctx, "DELETE FROM sso_settings WHERE account_id = ?", accountID))
	if err != nil {
		return fmt.Errorf("delete single sign-on settings of account %d: %w", accountID, err)
	}
	if n == 0 {
		return usher.Errorf(usher.ENOTFOUND, "no single sign-on settings for account %d", accountID)
	}
	return nil
}

// CreateSSOLogin stores a sign-in in progress.
func (tx *Tx) CreateSSOLogin(ctx context.Context, l sso.Login) error {
	_, err := tx.exec(ctx, `
		INSERT INTO sso_logins (state_hash, account_id, nonce, verifier, next, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		l.StateHash, l.AccountID, l.Nonce, l.Verifier, l.Next, millis(l.CreatedAt), millis(l.ExpiresAt))
	switch {
	case isForeignKeyViolation(err):
		return usher.Errorf(usher.ENOTFOUND, "single sign-on is not set up for account %d", l.AccountID)
	case err != nil:
		return fmt.Errorf("create single sign-on sign-in: %w", err)
	}
	return nil
}

// SSOLoginByHash returns the sign-in with this state hash.
func (tx *Tx) SSOLoginByHash(ctx context.Context, hash []byte) (sso.Login, error) {
	var l sso.Login
	var created, expires int64
	var used sql.NullInt64
	err := tx.queryRow(ctx, `
		SELECT state_hash, account_id, nonce, verifier, next, created_at, expires_at, used_at
		FROM sso_logins WHERE state_hash = ?`, hash).
		Scan(&l.StateHash, &l.AccountID, &l.Nonce, &l.Verifier, &l.Next, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return l, usher.Errorf(usher.ENOTFOUND, "no such single sign-on sign-in")
	} else if err != nil {
		return l, fmt.Errorf("single sign-on sign-in: %w", err)
	}
	l.CreatedAt, l.ExpiresAt = fromMillis(created), fromMillis(expires)
	if used.Valid {
		l.UsedAt = fromMillis(used.Int64)
	}
	return l, nil
}

// UseSSOLogin marks the sign-in used, once.
func (tx *Tx) UseSSOLogin(ctx context.Context, hash []byte, at time.Time) error {
	n, err := affected(tx.exec(ctx, "UPDATE sso_logins SET used_at = ? WHERE state_hash = ? AND used_at IS NULL", millis(at), hash))
	if err != nil {
		return fmt.Errorf("use single sign-on sign-in: %w", err)
	}
	if n == 0 {
		return usher.Errorf(usher.ECONFLICT, "the sign-in has been used already")
	}
	return nil
}

// PruneSSOLogins drops sign-ins that expired before t. A used one is kept
// until then too, so that replaying it is refused as a replay.
func (tx *Tx) PruneSSOLogins(ctx context.Context, before time.Time) error {
	if _, err := tx.exec(ctx, "DELETE FROM sso_logins WHERE expires_at < ?", millis(before)); err != nil {
		return fmt.Errorf("prune single sign-on sign-ins: %w", err)
	}
	return nil
}
