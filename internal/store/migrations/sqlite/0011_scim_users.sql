-- SCIM 2.0 provisioning of users: what the identity provider calls a user
-- and whether it manages them. Keep in step with ../postgres/0011_scim_users.sql.
-- Depends only on 0001 (users).
--
-- scim_state is 'none' for users made in Usher, 'provisioned' once a SCIM
-- client created or took over the user, and 'deleted' after the client
-- deleted them: the user stays, disabled, so that the audit log and usage
-- history keep their person, but SCIM no longer shows them.
ALTER TABLE users ADD COLUMN scim_state TEXT NOT NULL DEFAULT 'none' CHECK (scim_state IN ('none', 'provisioned', 'deleted'));
-- The provider's own id of the user (caseExact, RFC 7643 §3.1).
ALTER TABLE users ADD COLUMN external_id TEXT;
-- The provider's login name (userName); NULL reads as the email.
ALTER TABLE users ADD COLUMN user_name TEXT;
-- lower(coalesce(user_name, email)), computed by the application: userName
-- is unique and compared without case (RFC 7643 §4.1.1).
ALTER TABLE users ADD COLUMN user_name_key TEXT;
-- The other attributes the provider sent (name parts, title, the enterprise
-- extension …) as a JSON object, returned as sent.
ALTER TABLE users ADD COLUMN scim_profile TEXT;

-- Clients look users up by userName and externalId before they create them.
CREATE UNIQUE INDEX users_by_user_name ON users (account_id, user_name_key);
CREATE INDEX users_by_external_id ON users (account_id, external_id) WHERE external_id IS NOT NULL;
