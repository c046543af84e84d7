-- An undo's outcome per person, so that an undo stopped half-way (a crash,
-- a lost connection) resumes where it stopped instead of restoring someone
-- twice or leaving the rest behind. Keep in step with
-- ../sqlite/0017_resumable_undo.sql.
--
-- undo_state: '' while the batch is not undone or this person's part is
-- still to do; 'restored' or 'not_restored' (with undo_reason) once done;
-- 'unrecorded' for batches undone before outcomes were kept.
ALTER TABLE reclaim_batch_items ADD COLUMN undo_state TEXT NOT NULL DEFAULT ''
    CHECK (undo_state IN ('', 'restored', 'not_restored', 'unrecorded'));
ALTER TABLE reclaim_batch_items ADD COLUMN undo_reason TEXT NOT NULL DEFAULT '';

UPDATE reclaim_batch_items SET undo_state = 'unrecorded'
WHERE batch_id IN (SELECT id FROM reclaim_batches WHERE undone_at <> 0);
