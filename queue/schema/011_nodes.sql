-- 011_nodes.sql - several nodes on one store (issue 13, doc/postgresql.md):
-- who holds a claimed message, which nodes are alive, and which node paces
-- each sender route.
--
-- On SQLite one process holds the store (the lock file), so none of this
-- is used: these columns and tables stay empty. They exist so both
-- schemas stay in step (tests/integration/test_pg_schema.py); the
-- PostgreSQL twin is what queue/pg_queue.c reads and writes.
--
-- messages.lease_owner: the node (nodes.id) whose claim set the message
-- 'sending'; NULL in every other state. A node records a result only for
-- the messages it still owns, and at start returns its own previous
-- life's 'sending' messages to the queue.
ALTER TABLE messages ADD COLUMN lease_owner INTEGER;

-- One row per node name, reused when the node restarts (same name, same
-- id). Times are the database clock's milliseconds (PostgreSQL now()).
CREATE TABLE nodes (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	started_at INTEGER NOT NULL,
	heartbeat_at INTEGER NOT NULL
);

-- A sender route ("sms:NAME", "email") is paced by the one node holding
-- its lease; epoch grows at each change of holder (the new holder starts
-- with an empty token bucket). owner NULL = released.
CREATE TABLE route_leases (
	route TEXT PRIMARY KEY,
	owner INTEGER,
	lease_until INTEGER NOT NULL,
	epoch INTEGER NOT NULL DEFAULT 0
);
