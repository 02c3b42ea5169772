-- 013_imports.sql - CSV imports of members as rows, so that any node can
-- take the next piece of an import another node started (issue 13,
-- doc/postgresql.md; daemon/import_pg.c has the design).
--
-- On SQLite an import is a session in the daemon's memory (daemon/import.c),
-- so none of this is used: these tables stay empty. They exist so both
-- schemas stay in step (tests/integration/test_pg_schema.py); the
-- PostgreSQL twin is what queue/store_imports_pg.c reads and writes.
--
-- imports: one row per import: what the report shows, the header's mapping
-- ('header', JSON [[field, name], ...]) and the CSV reader's saved state
-- ('reader', daemon/csv.h csv_save()) between two pieces; 'claim' is the
-- token of the piece that wrote it last; 'counted' the last line whose
-- outcome is in the counts. Times are milliseconds.
CREATE TABLE imports (
	id TEXT PRIMARY KEY,
	state TEXT NOT NULL DEFAULT 'open',
	error TEXT,
	list_id INTEGER NOT NULL,
	list TEXT NOT NULL,
	source TEXT NOT NULL,
	region TEXT NOT NULL,
	bytes INTEGER NOT NULL DEFAULT 0,
	line INTEGER NOT NULL DEFAULT 1,
	bom INTEGER NOT NULL DEFAULT 0,
	header TEXT,
	columns TEXT NOT NULL DEFAULT '[]',
	reader TEXT,
	rows INTEGER NOT NULL DEFAULT 0,
	blank INTEGER NOT NULL DEFAULT 0,
	rejected INTEGER NOT NULL DEFAULT 0,
	duplicates INTEGER NOT NULL DEFAULT 0,
	warnings INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL DEFAULT 0,
	updated INTEGER NOT NULL DEFAULT 0,
	unchanged INTEGER NOT NULL DEFAULT 0,
	opted_out INTEGER NOT NULL DEFAULT 0,
	conflicts INTEGER NOT NULL DEFAULT 0,
	issues_total INTEGER NOT NULL DEFAULT 0,
	counted INTEGER NOT NULL DEFAULT 0,
	work_us INTEGER NOT NULL DEFAULT 0,
	claim TEXT,
	created_at INTEGER NOT NULL,
	used_at INTEGER NOT NULL
);
CREATE INDEX imports_used ON imports (used_at);

-- The phones ('p' + E.164) and emails ('e' + address) seen in an import's
-- file, with the line of their first row: a later row with one of them is
-- a duplicate.
CREATE TABLE import_keys (
	import_id TEXT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	line INTEGER NOT NULL,
	PRIMARY KEY (import_id, key)
);

-- What each written row of an import did (created, updated, unchanged,
-- opted_out, conflict, duplicate), summed into the import's counts by its
-- piece's last statement.
CREATE TABLE import_lines (
	import_id TEXT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
	line INTEGER NOT NULL,
	outcome TEXT NOT NULL,
	warned INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (import_id, line)
);

-- The report's problem rows, in file order (ord orders one line's).
CREATE TABLE import_issues (
	import_id TEXT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
	line INTEGER NOT NULL,
	ord INTEGER NOT NULL,
	kind TEXT NOT NULL,
	reason TEXT NOT NULL,
	first_line INTEGER,
	PRIMARY KEY (import_id, line, ord)
);
