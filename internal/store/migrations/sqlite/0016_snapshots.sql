-- Evidence snapshots: the seats a usage notification email or a reclaim
-- policy run was about, as they were when it was written, so the report can
-- be shown as of that email and rows that changed since can be marked.
-- Times are unix milliseconds (UTC). Keep in step with
-- ../postgres/0016_snapshots.sql.
--
-- One snapshot per email or run (the unique key): it is written in the
-- transaction that records the email as delivered or the run's outcome.
-- Seat rows hold ids and the email, not names: names are read from users
-- while the user exists, and the email says who it was after a deletion.
-- They are pruned with raw usage events, after the snapshot retention.
CREATE TABLE snapshots (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('notification', 'reclaim')),
    source_id      INTEGER NOT NULL, -- notification_runs.id or reclaim_runs.id
    inactive_range TEXT    NOT NULL,
    taken_at       INTEGER NOT NULL,
    seats          INTEGER NOT NULL,
    users          INTEGER NOT NULL,
    UNIQUE (kind, source_id)
) STRICT;
-- Pruning walks the oldest snapshots of every account.
CREATE INDEX snapshots_by_taken_at ON snapshots (taken_at);

-- action: what a reclaim run did or would do with the seat (warn, reclaim,
-- report, wait, keep); '' for an email.
CREATE TABLE snapshot_seats (
    snapshot_id     INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    email           TEXT    NOT NULL,
    assigned_at     INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL, -- as assignments.last_used_at held it
    inactivity      TEXT    NOT NULL CHECK (inactivity IN ('', 'never_used', 'stopped_using')),
    action          TEXT    NOT NULL,
    PRIMARY KEY (snapshot_id, user_id, subscription_id)
) STRICT, WITHOUT ROWID;
