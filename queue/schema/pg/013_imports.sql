-- 013_imports.sql (PostgreSQL) - the twin of queue/schema/013_imports.sql:
-- CSV imports of members as rows, so that any node can
-- take the next piece of an import another node started (issue 13,
-- doc/postgresql.md; daemon/import_pg.c has the design).
--
-- SQLite keeps an import in the daemon's memory and leaves these empty;
-- queue/store_imports_pg.c reads and writes them.
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
	list_id BIGINT NOT NULL,
	list TEXT NOT NULL,
	source TEXT NOT NULL,
	region TEXT NOT NULL,
	bytes BIGINT NOT NULL DEFAULT 0,
	line BIGINT NOT NULL DEFAULT 1,
	bom BIGINT NOT NULL DEFAULT 0,
	header TEXT,
	columns TEXT NOT NULL DEFAULT '[]',
	reader TEXT,
	rows BIGINT NOT NULL DEFAULT 0,
	blank BIGINT NOT NULL DEFAULT 0,
	rejected BIGINT NOT NULL DEFAULT 0,
	duplicates BIGINT NOT NULL DEFAULT 0,
	warnings BIGINT NOT NULL DEFAULT 0,
	created BIGINT NOT NULL DEFAULT 0,
	updated BIGINT NOT NULL DEFAULT 0,
	unchanged BIGINT NOT NULL DEFAULT 0,
	opted_out BIGINT NOT NULL DEFAULT 0,
	conflicts BIGINT NOT NULL DEFAULT 0,
	issues_total BIGINT NOT NULL DEFAULT 0,
	counted BIGINT NOT NULL DEFAULT 0,
	work_us BIGINT NOT NULL DEFAULT 0,
	claim TEXT,
	created_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL
);
CREATE INDEX imports_used ON imports (used_at);

-- The phones ('p' + E.164) and emails ('e' + address) seen in an import's
-- file, with the line of their first row: a later row with one of them is
-- a duplicate.
CREATE TABLE import_keys (
	import_id TEXT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	line BIGINT NOT NULL,
	PRIMARY KEY (import_id, key)
);

-- What each written row of an import did (created, updated, unchanged,
-- opted_out, conflict, duplicate), summed into the import's counts by its
-- piece's last statement.
CREATE TABLE import_lines (
	import_id TEXT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
	line BIGINT NOT NULL,
	outcome TEXT NOT NULL,
	warned BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (import_id, line)
);

-- The report's problem rows, in file order (ord orders one line's).
CREATE TABLE import_issues (
	import_id TEXT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
	line BIGINT NOT NULL,
	ord BIGINT NOT NULL,
	kind TEXT NOT NULL,
	reason TEXT NOT NULL,
	first_line BIGINT,
	PRIMARY KEY (import_id, line, ord)
);
