package store

import (
	"context"
	"fmt"
	"slices"
)

// LockUsers returns which of ids are users of the account, and keeps those
// from being deleted until the transaction ends: usage_events has no
// foreign key to users (migration 0022), so the ingest stores events of
// the users confirmed here only, one lookup per user and batch where the
// key cost one per event. On PostgreSQL the rows are locked FOR KEY SHARE,
// the lock the key's check took, in id order; a user deleted between the
// ingest's lookup by email and this call is missing from the answer. On
// SQLite the write transaction already excludes every other writer.
func (tx *Tx) LockUsers(ctx context.Context, accountID int64, ids []int64) (map[int64]bool, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[int64]bool, len(ids))
	scan := func(query string, args ...any) error {
		rows, err := tx.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out[id] = true
		}
		return rows.Err()
	}
	if tx.engine == Postgres {
		err := scan(`SELECT id FROM users WHERE account_id = ? AND id = ANY(?::bigint[]) ORDER BY id FOR KEY SHARE`, accountID, ids)
		if err != nil {
			return nil, fmt.Errorf("lock users: %w", err)
		}
		return out, nil
	}
	for chunk := range slices.Chunk(ids, sqliteChunk) {
		args := append([]any{accountID}, int64Args(chunk)...)
		if err := scan("SELECT id FROM users WHERE account_id = ? AND id IN ("+placeholders(len(chunk))+")", args...); err != nil {
			return nil, fmt.Errorf("lock users: %w", err)
		}
	}
	return out, nil
}
