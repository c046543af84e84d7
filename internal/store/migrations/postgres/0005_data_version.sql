-- A counter per account that every committed change of its users, seats or
-- usage moves on, in commit order: the last statement of such a transaction
-- (see store.run). The Usage Report keeps its totals per version.
ALTER TABLE accounts ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;
