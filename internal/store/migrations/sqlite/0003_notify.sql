-- Usage notifications: each primary admin's schedule and one run per
-- scheduled email. Keep in step with ../postgres/0003_notify.sql. Depends
-- only on 0001 (users), so it applies whatever other migrations exist.
--
-- Times are unix milliseconds (UTC). A time that is not set (next_at of a
-- setting that is off, lease_until of a run never leased) holds the value of
-- Go's zero time, which compares before every real instant.

-- Deleting a user deletes their setting and, through it, their runs.
CREATE TABLE notification_settings (
    account_id     INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    start_date     TEXT    NOT NULL,
    frequency      TEXT    NOT NULL CHECK (frequency IN ('weekly', 'biweekly', 'monthly', 'quarterly')),
    inactive_range TEXT    NOT NULL CHECK (inactive_range IN ('30d', '3m', '6m', '9m', '1y')),
    send_hour      INTEGER NOT NULL CHECK (send_hour BETWEEN 0 AND 23),
    next_at        INTEGER NOT NULL,
    last_run_for   INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;
-- Serves DueSettings: only enabled settings, in the order they are planned.
CREATE INDEX notification_settings_due ON notification_settings (next_at, account_id, user_id) WHERE enabled;

-- One row per (admin, scheduled time): the unique key is what makes each
-- occurrence planned once however many schedulers run.
CREATE TABLE notification_runs (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    scheduled_for   INTEGER NOT NULL,
    inactive_range  TEXT    NOT NULL CHECK (inactive_range IN ('30d', '3m', '6m', '9m', '1y')),
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    message_id      TEXT    NOT NULL,
    inactive_users  INTEGER NOT NULL,
    inactive_seats  INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    lease_owner     TEXT    NOT NULL,
    lease_until     INTEGER NOT NULL,
    delivered_at    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (account_id, user_id, scheduled_for),
    FOREIGN KEY (account_id, user_id) REFERENCES notification_settings (account_id, user_id) ON DELETE CASCADE
) STRICT;
-- Serves ClaimRuns: only runs that may still be sent, in claiming order.
CREATE INDEX notification_runs_claimable ON notification_runs (next_attempt_at, id) WHERE status IN ('pending', 'sending');
-- Serves RunsOf: one admin's runs, newest first.
CREATE INDEX notification_runs_by_user ON notification_runs (account_id, user_id, id);
