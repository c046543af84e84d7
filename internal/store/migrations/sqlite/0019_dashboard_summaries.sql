-- What the dashboard reads without scanning an account's usage or seats.
-- Keep in step with ../postgres/0019_dashboard_summaries.sql.
--
-- usage_user_months: each (user, product, month) with use, month being the
-- first day of the calendar month (usage.Day). The ingest adds one when a
-- user's first day of use in a month is recorded; its key makes that exact
-- under concurrent ingests.
CREATE TABLE usage_user_months (
    account_id INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    month      INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id, product_id, month),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
);

-- usage_months: how many users used each product in each month, counted
-- up as usage_user_months gains rows. A deleted user's use stays counted:
-- it happened.
CREATE TABLE usage_months (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    month      INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    users      INTEGER NOT NULL CHECK (users >= 0),
    PRIMARY KEY (account_id, month, product_id)
);

INSERT INTO usage_user_months (account_id, user_id, product_id, month)
SELECT DISTINCT account_id, user_id, product_id, CAST(julianday(date(day * 86400, 'unixepoch', 'start of month')) - 2440587.5 AS INTEGER)
FROM usage_days;

INSERT INTO usage_months (account_id, month, product_id, users)
SELECT account_id, month, product_id, COUNT(*) FROM usage_user_months
GROUP BY account_id, month, product_id;

-- The dashboard counts a contract's inactive seats from this index alone
-- (last use, then assignment), and its seats by month of assignment from
-- the next.
DROP INDEX assignments_by_last_use;
CREATE INDEX assignments_by_last_use ON assignments (account_id, subscription_id, last_used_at, assigned_at);
CREATE INDEX assignments_by_assigned_at ON assignments (account_id, subscription_id, assigned_at);
