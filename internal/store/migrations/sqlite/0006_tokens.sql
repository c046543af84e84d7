-- API tokens for everyone: the read and scim scopes, an optional expiry and
-- the time of last use; and a one-shot console message kept with the
-- session, so that no message travels in a URL. Keep in step with
-- ../postgres/0006_tokens.sql.
--
-- SQLite cannot change a CHECK constraint, so api_tokens is rebuilt. No
-- table references it.

CREATE TABLE api_tokens_new (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    scope        TEXT    NOT NULL CHECK (scope IN ('full', 'read', 'ingest', 'scim')),
    hash         BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at   INTEGER,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;
INSERT INTO api_tokens_new (id, account_id, user_id, name, scope, hash, created_at)
SELECT id, account_id, user_id, name, scope, hash, created_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_by_user ON api_tokens (account_id, user_id);

ALTER TABLE sessions ADD COLUMN flash TEXT;
