package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// This file implements the reclaim batches of access.Tx.

// InsertBatch stores b with its items and sets b.ID.
func (tx *Tx) InsertBatch(ctx context.Context, b *usher.ReclaimBatch) error {
	err := tx.queryRow(ctx, `
		INSERT INTO reclaim_batches (account_id, source, policy_id, run_id, actor_id, actor_email, created_at, undone_at, undone_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, '')
		RETURNING id`,
		b.AccountID, b.Source, b.PolicyID, b.RunID, b.ActorID, b.ActorEmail, millis(b.CreatedAt)).Scan(&b.ID)
	if err != nil {
		return fmt.Errorf("insert reclaim batch: %w", err)
	}
	for _, it := range b.Items {
		services, _ := json.Marshal(orEmptyStrings(it.Services))
		benefits, _ := json.Marshal(orEmptyStrings(it.Benefits))
		_, err := tx.exec(ctx, `
			INSERT INTO reclaim_batch_items (batch_id, user_id, subscription_id, email, seat, services, benefits, assigned_at, price_cents, currency)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			b.ID, it.UserID, it.SubscriptionID, it.Email, it.Seat, string(services), string(benefits), millis(it.AssignedAt),
			priceCents(it.Price), priceCurrency(it.Price))
		if err != nil {
			return fmt.Errorf("insert reclaim batch %d item: %w", b.ID, err)
		}
	}
	return nil
}

func orEmptyStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const batchColumns = "id, account_id, source, policy_id, run_id, actor_id, actor_email, created_at, undone_at, undone_by"

func scanBatch(row interface{ Scan(...any) error }) (usher.ReclaimBatch, error) {
	var b usher.ReclaimBatch
	var created, undone int64
	err := row.Scan(&b.ID, &b.AccountID, &b.Source, &b.PolicyID, &b.RunID, &b.ActorID, &b.ActorEmail, &created, &undone, &b.UndoneBy)
	b.CreatedAt = fromMillis(created)
	if undone != 0 {
		b.UndoneAt = fromMillis(undone)
	}
	return b, err
}

// BatchByID returns one batch with its items.
func (tx *Tx) BatchByID(ctx context.Context, accountID, id int64) (usher.ReclaimBatch, error) {
	b, err := scanBatch(tx.queryRow(ctx, "SELECT "+batchColumns+" FROM reclaim_batches WHERE account_id = ? AND id = ?", accountID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, usher.Errorf(usher.ENOTFOUND, "reclaim %d not found", id)
	} else if err != nil {
		return b, fmt.Errorf("get reclaim batch %d: %w", id, err)
	}
	bs := []*usher.ReclaimBatch{&b}
	if err := tx.loadBatchItems(ctx, bs); err != nil {
		return b, err
	}
	return b, nil
}

// ListBatches returns batches newest first, with their items.
func (tx *Tx) ListBatches(ctx context.Context, accountID, beforeID int64, limit int) ([]usher.ReclaimBatch, error) {
	q := "SELECT " + batchColumns + " FROM reclaim_batches WHERE account_id = ?"
	args := []any{accountID}
	if beforeID > 0 {
		q += " AND id < ?"
		args = append(args, beforeID)
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list reclaim batches: %w", err)
	}
	out, err := collect(rows, scanBatch)
	if err != nil {
		return nil, fmt.Errorf("list reclaim batches: %w", err)
	}
	ptrs := make([]*usher.ReclaimBatch, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	return out, tx.loadBatchItems(ctx, ptrs)
}

func (tx *Tx) loadBatchItems(ctx context.Context, bs []*usher.ReclaimBatch) error {
	if len(bs) == 0 {
		return nil
	}
	byID := map[int64]*usher.ReclaimBatch{}
	ids := make([]int64, len(bs))
	for i, b := range bs {
		byID[b.ID], ids[i] = b, b.ID
		b.Items = []usher.BatchItem{}
	}
	rows, err := tx.query(ctx, `
		SELECT batch_id, user_id, subscription_id, email, seat, services, benefits, assigned_at, price_cents, currency,
		       undo_state, undo_reason
		FROM reclaim_batch_items WHERE batch_id IN (`+placeholders(len(ids))+`)
		ORDER BY batch_id, email, subscription_id`, int64Args(ids)...)
	if err != nil {
		return fmt.Errorf("reclaim batch items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var batchID, assigned, cents int64
		var it usher.BatchItem
		var services, benefits, currency string
		if err := rows.Scan(&batchID, &it.UserID, &it.SubscriptionID, &it.Email, &it.Seat, &services, &benefits, &assigned, &cents, &currency,
			&it.Undo, &it.UndoReason); err != nil {
			return fmt.Errorf("reclaim batch items: %w", err)
		}
		if err := json.Unmarshal([]byte(services), &it.Services); err != nil {
			return fmt.Errorf("reclaim batch %d: services: %w", batchID, err)
		}
		if err := json.Unmarshal([]byte(benefits), &it.Benefits); err != nil {
			return fmt.Errorf("reclaim batch %d: benefits: %w", batchID, err)
		}
		if assigned != 0 {
			it.AssignedAt = fromMillis(assigned)
		}
		if currency != "" {
			it.Price = &usher.Price{Cents: cents, Currency: currency}
		}
		b := byID[batchID]
		b.Items = append(b.Items, it)
		b.UndoUnfinished = b.UndoUnfinished || (!b.UndoneAt.IsZero() && it.Undo == "")
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reclaim batch items: %w", err)
	}
	return nil
}

// SetUndoOutcome records the undo outcome of one user's items of a batch
// whose outcome is not recorded yet, and reports whether it did. Taking the
// rows first in the transaction that restores the user is what keeps two
// undos of one batch from restoring a person twice.
func (tx *Tx) SetUndoOutcome(ctx context.Context, batchID, userID int64, state, reason string) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		UPDATE reclaim_batch_items SET undo_state = ?, undo_reason = ?
		WHERE batch_id = ? AND user_id = ? AND undo_state = ''`, state, reason, batchID, userID))
	if err != nil {
		return false, fmt.Errorf("record undo of reclaim batch %d for user %d: %w", batchID, userID, err)
	}
	return n > 0, nil
}

// MarkBatchUndone records an undo unless the batch was undone already.
func (tx *Tx) MarkBatchUndone(ctx context.Context, accountID, id int64, at time.Time, by string) (bool, error) {
	n, err := affected(tx.exec(ctx, `
		UPDATE reclaim_batches SET undone_at = ?, undone_by = ? WHERE account_id = ? AND id = ? AND undone_at = 0`,
		millis(at), by, accountID, id))
	if err != nil {
		return false, fmt.Errorf("undo reclaim batch %d: %w", id, err)
	}
	return n == 1, nil
}
