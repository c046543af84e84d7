package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// ServerKey returns the secret stored under name.
func (tx *Tx) ServerKey(ctx context.Context, name string) ([]byte, error) {
	var secret []byte
	err := tx.queryRow(ctx, "SELECT secret FROM server_keys WHERE name = ?", name).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usher.Errorf(usher.ENOTFOUND, "server key %q not found", name)
	} else if err != nil {
		return nil, fmt.Errorf("server key %q: %w", name, err)
	}
	return secret, nil
}

// AddServerKey stores secret under name unless one is stored already. A
// concurrent insert of the same name waits for the first and then does
// nothing (writes run READ COMMITTED on PostgreSQL, one at a time on SQLite).
func (tx *Tx) AddServerKey(ctx context.Context, name string, secret []byte, at time.Time) error {
	_, err := tx.exec(ctx, "INSERT INTO server_keys (name, secret, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
		name, secret, millis(at))
	if err != nil {
		return fmt.Errorf("add server key %q: %w", name, err)
	}
	return nil
}
