-- Groups, their members, and seats given to groups. Keep in step with
-- ../postgres/0008_groups.sql.
--
-- A seat (assignments row) records how it reaches its holder: direct for a
-- seat assigned to the user themself, and one seat_group_sources row per
-- group that gives it. The access service frees the seat when the last
-- source goes. Members a group's subscription has no seat for wait in
-- seat_waiters, seated in id order (oldest first).

CREATE TABLE user_groups (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    name_key    TEXT    NOT NULL, -- lower(name): names are unique per account regardless of case
    description TEXT    NOT NULL DEFAULT '',
    external_id TEXT,             -- the identity provider's id of a provisioned group
    synced      INTEGER NOT NULL DEFAULT 0 CHECK (synced IN (0, 1)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (account_id, name_key),
    UNIQUE (account_id, id)
) STRICT;
CREATE UNIQUE INDEX groups_by_external_id ON user_groups (account_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE group_members (
    account_id INTEGER NOT NULL,
    group_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (account_id, group_id, user_id),
    FOREIGN KEY (account_id, group_id) REFERENCES user_groups (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX group_members_by_user ON group_members (account_id, user_id, group_id);

-- services and benefits are JSON arrays of codes: always read and written whole.
CREATE TABLE group_assignments (
    account_id      INTEGER NOT NULL,
    group_id        INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    services        TEXT    NOT NULL DEFAULT '[]',
    benefits        TEXT    NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, group_id, subscription_id),
    FOREIGN KEY (account_id, group_id) REFERENCES user_groups (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, subscription_id) REFERENCES subscriptions (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX group_assignments_by_subscription ON group_assignments (account_id, subscription_id, group_id);

-- A member kept from the seat their group's assignment gives (an admin
-- unassigned it). It goes with the group assignment.
CREATE TABLE group_exclusions (
    account_id      INTEGER NOT NULL,
    group_id        INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, group_id, subscription_id, user_id),
    FOREIGN KEY (account_id, group_id, subscription_id) REFERENCES group_assignments (account_id, group_id, subscription_id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;

ALTER TABLE assignments ADD COLUMN direct INTEGER NOT NULL DEFAULT 1 CHECK (direct IN (0, 1));

CREATE TABLE seat_group_sources (
    account_id      INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    group_id        INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id, subscription_id, group_id),
    FOREIGN KEY (account_id, user_id, subscription_id) REFERENCES assignments (account_id, user_id, subscription_id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, group_id) REFERENCES user_groups (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX seat_group_sources_by_group ON seat_group_sources (account_id, group_id, subscription_id);

CREATE TABLE seat_waiters (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    since           INTEGER NOT NULL,
    UNIQUE (account_id, subscription_id, user_id),
    FOREIGN KEY (account_id, subscription_id) REFERENCES subscriptions (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX seat_waiters_in_order ON seat_waiters (account_id, subscription_id, id);
CREATE INDEX seat_waiters_by_user ON seat_waiters (account_id, user_id);
