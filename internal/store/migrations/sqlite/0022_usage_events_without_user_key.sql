-- usage_events loses its foreign key to users: the check cost a lookup of
-- the user per stored event, where the ingest confirms each user once per
-- batch in the same transaction (see decision 0029). A trigger deletes a
-- deleted user's events, as the key's ON DELETE CASCADE did. Keep in step
-- with ../postgres/0022_usage_events_without_user_key.sql.
--
-- SQLite cannot drop a foreign key, so usage_events is rebuilt. No table
-- references it.
CREATE TABLE usage_events_new (
    account_id INTEGER NOT NULL,
    user_id    INTEGER NOT NULL, -- no foreign key, see above
    product_id INTEGER NOT NULL, -- no foreign key, see 0002_usage.sql
    at         INTEGER NOT NULL, -- unix milliseconds
    PRIMARY KEY (account_id, user_id, product_id, at)
) STRICT, WITHOUT ROWID;
INSERT INTO usage_events_new (account_id, user_id, product_id, at)
SELECT account_id, user_id, product_id, at FROM usage_events;
DROP TABLE usage_events;
ALTER TABLE usage_events_new RENAME TO usage_events;
-- Pruning walks the oldest events of every account.
CREATE INDEX usage_events_by_at ON usage_events (at);

-- Events of users deleted before this migration (none: the key cascaded)
-- would stay; a user deleted from now on takes their events along, by the
-- primary key's prefix.
CREATE TRIGGER users_delete_usage_events AFTER DELETE ON users
BEGIN
    DELETE FROM usage_events WHERE account_id = OLD.account_id AND user_id = OLD.id;
END;
