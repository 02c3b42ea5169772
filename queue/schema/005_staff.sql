-- 005_staff.sql - staff accounts, their API tokens, web sessions and the
-- audit log (daemon/staff.c, doc/staff.md). Times are INTEGER
-- milliseconds since the Unix epoch (UTC).
--
-- 001 gave staff a token_hash column that no code wrote; a staff member
-- may now hold several tokens, kept in api_tokens. The old column stays,
-- unused (SQLite cannot drop a UNIQUE column).

ALTER TABLE staff ADD COLUMN password_hash TEXT;	-- Argon2id, PHC string;
							-- NULL = no password login
ALTER TABLE staff ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN updated_at INTEGER;

CREATE TABLE api_tokens (
	id INTEGER PRIMARY KEY,
	staff_id INTEGER NOT NULL REFERENCES staff(id),
	name TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,	-- hex SHA-256 of the token
	-- 1 = the daemon's own token ([http] api_token or the token file),
	-- written at start-up; at most one row
	daemon INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER			-- NULL = valid
);
CREATE INDEX api_tokens_staff ON api_tokens(staff_id);
CREATE UNIQUE INDEX api_tokens_daemon ON api_tokens(daemon) WHERE daemon = 1;

CREATE TABLE sessions (
	id INTEGER PRIMARY KEY,
	staff_id INTEGER NOT NULL REFERENCES staff(id),
	id_hash TEXT NOT NULL UNIQUE,		-- hex SHA-256 of the cookie
	via TEXT NOT NULL CHECK (via IN ('password', 'token')),
	peer TEXT,				-- client address at login
	created_at INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,		-- idle expiry counts from it
	expires_at INTEGER NOT NULL,		-- absolute end
	revoked_at INTEGER			-- logout, disable: NULL = live
);
CREATE INDEX sessions_staff ON sessions(staff_id);

-- Append-only: who changed what through the API.
CREATE TABLE audit (
	id INTEGER PRIMARY KEY,
	staff_id INTEGER REFERENCES staff(id),
	action TEXT NOT NULL,			-- "PATCH /api/v1/staff/{id}"
	target TEXT,				-- "/api/v1/staff/3"
	detail TEXT,				-- JSON {"status": 200, ...}
	created_at INTEGER NOT NULL
);
CREATE INDEX audit_staff ON audit(staff_id, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;
