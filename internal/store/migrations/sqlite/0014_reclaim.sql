-- Reclaim: policies, their daily runs, warnings with "Keep my seat" links,
-- the emails they send (an outbox claimed like notification runs), and
-- reclaim batches for undo. Times are unix milliseconds (UTC). Keep in step
-- with ../postgres/0014_reclaim.sql.

CREATE TABLE reclaim_policies (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    enabled       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    scope_kind    TEXT    NOT NULL CHECK (scope_kind IN ('subscriptions', 'products')),
    scope         TEXT    NOT NULL, -- JSON array: subscription ids or product codes
    inactive_range TEXT   NOT NULL, -- 30d, 3m, 6m, 9m, 1y or Nd
    never_used    TEXT    NOT NULL, -- JSON rule {"enabled":…, "range":…}
    stopped_using TEXT    NOT NULL,
    mode          TEXT    NOT NULL CHECK (mode IN ('warn_then_reclaim', 'reclaim', 'report_only')),
    grace_days    INTEGER NOT NULL CHECK (grace_days BETWEEN 0 AND 365),
    exemptions    TEXT    NOT NULL, -- JSON {"users":[…], "roles":[…]}
    next_run_at   INTEGER NOT NULL,    -- the next daily run to plan
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (account_id, name),
    UNIQUE (account_id, id)
) STRICT;
-- Serves DuePolicies: only enabled policies, in the order they are planned.
CREATE INDEX reclaim_policies_due ON reclaim_policies (next_run_at, id) WHERE enabled;

-- One row per (policy, local day): the unique key makes each daily run
-- planned once however many schedulers run; the lease makes it run by one
-- worker at a time, as notification_runs.
CREATE TABLE reclaim_runs (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    policy_id       INTEGER NOT NULL,
    run_on          TEXT    NOT NULL, -- YYYY-MM-DD in the account's time zone
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT    NOT NULL,
    lease_until     INTEGER NOT NULL,
    warned          INTEGER NOT NULL,
    reclaimed       INTEGER NOT NULL,
    kept            INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (policy_id, run_on),
    FOREIGN KEY (account_id, policy_id) REFERENCES reclaim_policies (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX reclaim_runs_claimable ON reclaim_runs (next_attempt_at, id) WHERE status IN ('pending', 'running');
CREATE INDEX reclaim_runs_by_policy ON reclaim_runs (account_id, policy_id, id);

-- A warning that one seat will be reclaimed on reclaim_at unless kept or
-- used. outcome: open, kept, used (used the product, or the seat went
-- otherwise), reclaimed. A seat has at most one open warning per policy.
CREATE TABLE reclaim_warnings (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    policy_id       INTEGER NOT NULL,
    run_id          INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    inactivity      TEXT    NOT NULL CHECK (inactivity IN ('never_used', 'stopped_using')),
    last_used_at    INTEGER NOT NULL,
    warned_at       INTEGER NOT NULL,
    reclaim_at      INTEGER NOT NULL,
    token_hash      BLOB    NOT NULL UNIQUE, -- SHA-256 of the Keep my seat link's token
    outcome         TEXT    NOT NULL CHECK (outcome IN ('open', 'kept', 'used', 'reclaimed')),
    resolved_at     INTEGER NOT NULL,
    resolved_run_id INTEGER NOT NULL, -- the run that resolved it; 0 when kept by link or open
    kept_until      INTEGER NOT NULL, -- a kept seat is exempt until then
    FOREIGN KEY (account_id, policy_id) REFERENCES reclaim_policies (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE UNIQUE INDEX reclaim_warnings_open ON reclaim_warnings (policy_id, user_id, subscription_id) WHERE outcome = 'open';
CREATE INDEX reclaim_warnings_by_policy ON reclaim_warnings (policy_id, outcome, user_id);
CREATE INDEX reclaim_warnings_by_run ON reclaim_warnings (run_id);
CREATE INDEX reclaim_warnings_by_resolved_run ON reclaim_warnings (resolved_run_id) WHERE resolved_run_id <> 0;

-- Emails of reclaim runs: one warning or notice per person and run, one
-- digest per admin and run (the unique key), leased and retried like
-- notification runs, with a Message-ID fixed at creation. payload is the
-- message to render; it is emptied once delivered, as it holds link tokens.
CREATE TABLE reclaim_emails (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    run_id          INTEGER NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('warning', 'notice', 'digest')),
    user_id         INTEGER NOT NULL,
    message_id      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT    NOT NULL,
    lease_until     INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    delivered_at    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (run_id, kind, user_id)
) STRICT;
CREATE INDEX reclaim_emails_claimable ON reclaim_emails (next_attempt_at, id) WHERE status IN ('pending', 'sending');

-- What one reclaim removed (a policy run or a bulk unassign), for undo.
-- Batch rows outlive users and subscriptions, so they hold ids, not keys.
CREATE TABLE reclaim_batches (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    source      TEXT    NOT NULL CHECK (source IN ('policy', 'unassign')),
    policy_id   INTEGER NOT NULL, -- 0 for a bulk unassign
    run_id      INTEGER NOT NULL, -- 0 for a bulk unassign
    actor_id    INTEGER NOT NULL,
    actor_email TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    undone_at   INTEGER NOT NULL,
    undone_by   TEXT    NOT NULL
) STRICT;
CREATE INDEX reclaim_batches_by_account ON reclaim_batches (account_id, id);
CREATE INDEX reclaim_batches_by_run ON reclaim_batches (run_id) WHERE run_id <> 0;

CREATE TABLE reclaim_batch_items (
    batch_id        INTEGER NOT NULL REFERENCES reclaim_batches (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    email           TEXT    NOT NULL,
    seat            INTEGER NOT NULL CHECK (seat IN (0, 1)), -- the whole seat was removed
    services        TEXT    NOT NULL, -- JSON array of service codes removed
    benefits        TEXT    NOT NULL, -- JSON array of benefit codes removed
    assigned_at     INTEGER NOT NULL,
    price_cents     INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    PRIMARY KEY (batch_id, user_id, subscription_id)
) STRICT;
