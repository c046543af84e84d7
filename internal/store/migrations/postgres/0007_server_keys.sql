-- Secrets the server keeps for itself, one per name: "cursor" signs the
-- cursors of paged lists (HMAC-SHA256). A secret is made from crypto/rand
-- by the first process that needs it and shared by every replica on the
-- database. Keep in step with ../sqlite/0007_server_keys.sql.
CREATE TABLE server_keys (
    name       TEXT   PRIMARY KEY,
    secret     BYTEA  NOT NULL,
    created_at BIGINT NOT NULL -- unix milliseconds, UTC
);
