-- 014_login_failures.sql (PostgreSQL) - failed logins counted by every
-- node (queue/store_logins_pg.c; its header comment is the design): one
-- row per limiter key ("account:EMAIL", "peer:ADDRESS"), its failures and
-- the last one's time (BIGINT milliseconds). On SQLite the one node
-- counts in memory (the SQLite file of this number does nothing).
CREATE TABLE login_failures (
	key TEXT PRIMARY KEY,
	failures BIGINT NOT NULL,
	last_fail BIGINT NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_fail);
