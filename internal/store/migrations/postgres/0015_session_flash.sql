-- A message for the next page a session opens ("Saved.", "Unassigned 3
-- seats from 2 users."), shown once and then cleared. It lives with the
-- session, not in the address, so a link cannot make a page claim what
-- nobody did. Keep in step with the other engine's 0015_session_flash.sql.
ALTER TABLE sessions ADD COLUMN flash TEXT NOT NULL DEFAULT '';
