-- Accounts, users, roles, tokens, the product catalog, subscriptions, seats,
-- benefits and the audit log. Times are unix milliseconds (UTC); calendar
-- dates are 'YYYY-MM-DD'. Keep in step with ../postgres/0001_init.sql.
--
-- Child tables reference users and subscriptions by (account_id, id), so a
-- row can never point into another account. Keys of per-user rows lead with
-- (account_id, user_id): that serves the per-user lookups and the cascades,
-- and SQLite picks them even before ANALYZE has gathered statistics.

CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    time_zone  TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL, -- lower(name), computed by the application; sort key of lists
    status     TEXT    NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (account_id, email),
    UNIQUE (account_id, id)
) STRICT;
CREATE INDEX users_by_name ON users (account_id, name_key, id);

CREATE TABLE products (
    id   INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
) STRICT;

CREATE TABLE product_services (
    product_id INTEGER NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    code       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (product_id, code)
) STRICT;

CREATE TABLE subscriptions (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    product_id      INTEGER NOT NULL REFERENCES products (id),
    plan            TEXT    NOT NULL CHECK (plan IN ('standard', 'premium', 'basic')),
    seats           INTEGER NOT NULL CHECK (seats >= 0),
    seats_used      INTEGER NOT NULL DEFAULT 0,
    contract_number TEXT    NOT NULL,
    term_start      TEXT    NOT NULL,
    term_end        TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (account_id, contract_number),
    UNIQUE (account_id, id),
    CHECK (seats_used >= 0 AND seats_used <= seats)
) STRICT;

CREATE TABLE subscription_benefits (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    code            TEXT    NOT NULL,
    PRIMARY KEY (subscription_id, code)
) STRICT;

-- subscription_id is NULL for account-wide roles.
CREATE TABLE role_grants (
    account_id      INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('primary_admin', 'secondary_admin', 'contract_manager', 'software_coordinator')),
    subscription_id INTEGER,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, subscription_id) REFERENCES subscriptions (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE UNIQUE INDEX role_grants_key ON role_grants (account_id, user_id, role, COALESCE(subscription_id, 0));
CREATE INDEX role_grants_by_role ON role_grants (account_id, role);
CREATE INDEX role_grants_by_subscription ON role_grants (account_id, subscription_id);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    scope      TEXT    NOT NULL CHECK (scope IN ('full', 'ingest')),
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX api_tokens_by_user ON api_tokens (account_id, user_id);

CREATE TABLE assignments (
    account_id      INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    assigned_at     INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id, subscription_id),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, subscription_id) REFERENCES subscriptions (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX assignments_by_subscription ON assignments (account_id, subscription_id, user_id);

CREATE TABLE assignment_services (
    account_id      INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    service_code    TEXT    NOT NULL,
    PRIMARY KEY (account_id, user_id, subscription_id, service_code),
    FOREIGN KEY (account_id, user_id, subscription_id) REFERENCES assignments (account_id, user_id, subscription_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE benefit_grants (
    account_id      INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    code            TEXT    NOT NULL,
    PRIMARY KEY (account_id, user_id, subscription_id, code),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, subscription_id) REFERENCES subscriptions (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX benefit_grants_by_subscription ON benefit_grants (account_id, subscription_id);

-- Audit entries outlive the users they name, so they hold ids and emails,
-- not foreign keys. actor_id is NULL for the system actor.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    actor_id        INTEGER,
    actor_email     TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    target_user_id  INTEGER,
    target_email    TEXT,
    subscription_id INTEGER,
    before          TEXT,
    after           TEXT,
    at              INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_log_by_account ON audit_log (account_id, id);
CREATE INDEX audit_log_by_actor ON audit_log (account_id, actor_id, id);
CREATE INDEX audit_log_by_target ON audit_log (account_id, target_user_id, id);
CREATE INDEX audit_log_by_action ON audit_log (account_id, action, id);

-- The catalog.
INSERT INTO products (code, name) VALUES
    ('draftpro', 'DraftPro'),
    ('modelstudio', 'Model Studio'),
    ('civilworks', 'CivilWorks'),
    ('animator', 'Animator 3D'),
    ('plantdesign', 'Plant Design');

INSERT INTO product_services (product_id, code, name, position)
SELECT p.id, s.code, s.name, s.position
FROM products p
JOIN (
              SELECT 'draftpro' AS product, 'cloud_storage' AS code, 'Cloud storage' AS name, 1 AS position
    UNION ALL SELECT 'draftpro', 'shared_views', 'Shared views', 2
    UNION ALL SELECT 'modelstudio', 'cloud_storage', 'Cloud storage', 1
    UNION ALL SELECT 'modelstudio', 'rendering', 'Cloud rendering', 2
    UNION ALL SELECT 'modelstudio', 'generative', 'Generative design', 3
    UNION ALL SELECT 'civilworks', 'cloud_storage', 'Cloud storage', 1
    UNION ALL SELECT 'civilworks', 'collaboration', 'Design collaboration', 2
    UNION ALL SELECT 'animator', 'cloud_storage', 'Cloud storage', 1
    UNION ALL SELECT 'animator', 'rendering', 'Cloud rendering', 2
    UNION ALL SELECT 'plantdesign', 'cloud_storage', 'Cloud storage', 1
    UNION ALL SELECT 'plantdesign', 'collaboration', 'Design collaboration', 2
    UNION ALL SELECT 'plantdesign', 'rendering', 'Cloud rendering', 3
) s ON s.product = p.code;
