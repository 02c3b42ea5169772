-- 010_status_check.sql - the CHECK on messages.status as a chain of
-- equalities instead of an IN list: the same ten states, without a
-- temporary b-tree per row (issue 12, accept path).
--
-- SQLite evaluates a table's CHECK on every INSERT and on every UPDATE
-- that sets a column it names. For "x IN (list)" of more than two
-- constants it codes an ephemeral b-tree, fills it with the list and
-- probes it, on every row (EXPLAIN shows OpenEphemeral and ten IdxInsert
-- before the Found): about 2 us of CPU on each enqueue and on each status
-- change (bench/README.md, "The CHECK on messages.status"). "status =
-- 'queued' OR status = 'sending' OR ..." compares in place, most frequent
-- states first. Both forms accept the same values: a value in the list
-- passes, another fails, and NULL (refused by NOT NULL anyway) makes
-- both NULL, which a CHECK lets through. direction and channel have two
-- values each; SQLite already codes those as comparisons.
--
-- How: SQLite's documented edit of a table's stored CREATE text
-- (sqlite.org/lang_altertable.html#otheralter), not the 12-step rebuild.
-- Changing a CHECK is in the list of safe edits when every existing row
-- satisfies the new one, which holds since the set is the same. The
-- rebuild would copy every message, write every index again, recreate
-- the search triggers, and, with foreign keys on, dropping the old table
-- would cascade into message_events. The edit is O(1) and
-- runs inside this migration's transaction, so a failure rolls it back.
-- Then the connection must parse the edited text, and every other one
-- must see that the schema changed: PRAGMA writable_schema = RESET turns
-- writing off and makes this connection parse the schema again, and the
-- guard table below, created and dropped in the main database, moves
-- PRAGMA schema_version on, which makes any other connection parse it
-- too. (Without the reparse, a later ALTER TABLE messages ADD COLUMN on
-- the same connection splices its column into the stored text at the
-- offset of the old one.) The runner (store_migrate_one()) also bumps
-- schema_version itself after every migration, the procedure's own step.
--
-- The guard makes the migration fail, and roll back, unless exactly the
-- text written by 001_initial.sql was found and replaced: a database
-- whose messages table reads differently is left alone, loudly.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql,
'status TEXT NOT NULL CHECK (status IN (''queued'', ''sending'', ''sent'',
	    ''delivered'', ''undelivered'', ''failed'', ''expired'', ''cancelled'',
	    ''suppressed'', ''received'')),',
'status TEXT NOT NULL CHECK (status = ''queued'' OR status = ''sending''
	    OR status = ''sent'' OR status = ''delivered''
	    OR status = ''undelivered'' OR status = ''failed''
	    OR status = ''expired'' OR status = ''cancelled''
	    OR status = ''suppressed'' OR status = ''received''),')
WHERE type = 'table' AND name = 'messages';
PRAGMA writable_schema = RESET;
CREATE TABLE migration_010_guard (
	replaced INTEGER NOT NULL
	    CONSTRAINT messages_status_check_not_as_written_by_001
	    CHECK (replaced = 1)
);
INSERT INTO migration_010_guard
    SELECT count(*) FROM sqlite_schema
    WHERE type = 'table' AND name = 'messages'
	AND instr(sql, 'status IN (') = 0
	AND instr(sql, 'OR status = ''received''),') > 0;
DROP TABLE migration_010_guard;
