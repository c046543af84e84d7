-- Indexes of the users list's sorts and filters. Keep in step with
-- ../postgres/0018_user_list.sql.
--
-- Sorting by email uses the unique (account_id, email) index; by name,
-- users_by_name. These serve the two other sorts, and the status filter
-- in name order.
CREATE INDEX users_by_status ON users (account_id, status, name_key, id);
CREATE INDEX users_by_created ON users (account_id, created_at, id);
