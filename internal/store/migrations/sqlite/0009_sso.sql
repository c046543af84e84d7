-- Single sign-on with OpenID Connect: each account's provider settings and
-- the sign-ins in progress. Times are unix milliseconds (UTC). Keep in step
-- with ../postgres/0009_sso.sql.
--
-- The client secret is stored as given: Usher must send it to the
-- provider's token endpoint, so a hash would not do. The API never shows it.
-- States are stored as SHA-256 hashes, like session tokens.

CREATE TABLE sso_settings (
    account_id      INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    provider_name   TEXT    NOT NULL,
    issuer          TEXT    NOT NULL,
    client_id       TEXT    NOT NULL,
    client_secret   TEXT    NOT NULL,
    allowed_domains TEXT    NOT NULL, -- space-separated, lower case; '' allows any
    create_users    INTEGER NOT NULL CHECK (create_users IN (0, 1)),
    require_sso     INTEGER NOT NULL CHECK (require_sso IN (0, 1)),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- One row per sign-in started; the callback uses it up (used_at), so a
-- state works once, on every replica.
CREATE TABLE sso_logins (
    state_hash BLOB    PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES sso_settings (account_id) ON DELETE CASCADE,
    nonce      TEXT    NOT NULL,
    verifier   TEXT    NOT NULL,
    next       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX sso_logins_by_expiry ON sso_logins (expires_at);
