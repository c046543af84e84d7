-- API tokens for everyone: the read and scim scopes, an optional expiry and
-- the time of last use; and a one-shot console message kept with the
-- session, so that no message travels in a URL. Keep in step with
-- ../sqlite/0006_tokens.sql.

ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check CHECK (scope IN ('full', 'read', 'ingest', 'scim'));
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT, ADD COLUMN expires_at BIGINT;

ALTER TABLE sessions ADD COLUMN flash TEXT;
