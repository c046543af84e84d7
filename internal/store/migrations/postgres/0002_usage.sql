-- Usage: raw events (kept for the retention period), days with use, and per
-- (user, product) rollups. Keep in step with ../sqlite/0002_usage.sql.
--
-- Days are calendar days in the account's time zone, counted in days since
-- 1970-01-01 (usage.Day). An event costs one narrow row in usage_events; a
-- (user, product, day) already recorded costs nothing more, so people who use
-- the same products every day cause one usage_days row and one rollup update
-- per day, whatever the number of events.

-- product_id has no foreign key here, unlike in the small tables below:
-- products are never deleted and the usage service only stores ids it looked
-- up, while the check costs PostgreSQL a trigger call per event (about 40% of
-- the insert time of a batch). The user key stays: it cascades deletions and
-- keeps every event inside its account.
CREATE TABLE usage_events (
    account_id BIGINT  NOT NULL,
    user_id    BIGINT  NOT NULL,
    product_id BIGINT  NOT NULL, -- no foreign key, see above
    at         BIGINT  NOT NULL, -- unix milliseconds
    PRIMARY KEY (account_id, user_id, product_id, at),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);
-- Pruning walks the oldest events of every account.
CREATE INDEX usage_events_by_at ON usage_events (at);

-- The report counts days used in a range with a range scan of this key.
CREATE TABLE usage_days (
    account_id BIGINT  NOT NULL,
    user_id    BIGINT  NOT NULL,
    product_id BIGINT  NOT NULL REFERENCES products (id),
    day        INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id, product_id, day),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);

-- One row per (user, product) ever used; the report reads last_day by key.
CREATE TABLE usage_rollups (
    account_id BIGINT  NOT NULL,
    user_id    BIGINT  NOT NULL,
    product_id BIGINT  NOT NULL REFERENCES products (id),
    first_day  INTEGER NOT NULL,
    last_day   INTEGER NOT NULL,
    days       INTEGER NOT NULL CHECK (days > 0),
    PRIMARY KEY (account_id, user_id, product_id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE,
    CHECK (first_day <= last_day)
);

-- When usage was last processed, shown on the report.
CREATE TABLE usage_processed (
    account_id   BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    processed_at BIGINT NOT NULL
);

-- A seat's latest use of its product (unix ms; 0 before the first), kept
-- with the seat so that the report decides inactive seats from the seat row
-- alone: inactive for a range when the plan has usage data and both
-- last_used_at and assigned_at fall before the range's first midnight. The
-- ingest moves it forward once per new day of use, like the rollups.
ALTER TABLE assignments ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX assignments_by_last_use ON assignments (account_id, subscription_id, last_used_at);
