-- usage_events loses its foreign key to users: the check cost a trigger
-- call per stored event (as much as the insert itself), where the ingest
-- confirms and locks each user once per batch in the same transaction (see
-- decision 0029). A trigger deletes a deleted user's events, as the key's
-- ON DELETE CASCADE did. Keep in step with
-- ../sqlite/0022_usage_events_without_user_key.sql.
ALTER TABLE usage_events DROP CONSTRAINT usage_events_account_id_user_id_fkey;

CREATE FUNCTION users_delete_usage_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM usage_events WHERE account_id = OLD.account_id AND user_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER users_delete_usage_events AFTER DELETE ON users
FOR EACH ROW EXECUTE FUNCTION users_delete_usage_events();
