-- Console sign-in: password hashes, sessions, failed sign-in attempts and
-- one-time set-password links. Times are unix milliseconds (UTC). Keep in
-- step with ../postgres/0004_console.sql. Depends only on 0001.
--
-- No secret is stored in the clear: passwords as argon2id hashes (PHC
-- strings), session and link tokens as SHA-256 hashes, so a copy of the
-- database lets nobody sign in.

CREATE TABLE user_passwords (
    account_id INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    hash       TEXT    NOT NULL, -- $argon2id$v=19$m=…,t=…,p=…$salt$key
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY,
    token_hash BLOB    NOT NULL UNIQUE,
    account_id INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX sessions_by_user ON sessions (account_id, user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- One row per failed attempt; the limit counts rows of a key (an email
-- address, a client address) within a window. Kept in the database so every
-- replica sees the same count.
CREATE TABLE sign_in_failures (
    key TEXT    NOT NULL,
    at  INTEGER NOT NULL
) STRICT;
CREATE INDEX sign_in_failures_by_key ON sign_in_failures (key, at);

CREATE TABLE password_links (
    token_hash BLOB    PRIMARY KEY,
    account_id INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX password_links_by_user ON password_links (account_id, user_id);

-- Sign-in finds a user by email across accounts.
CREATE INDEX users_by_email ON users (email);
