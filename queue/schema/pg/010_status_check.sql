-- 010_status_check.sql - the twin of queue/schema/010_status_check.sql,
-- which rewrites SQLite's CHECK on messages.status from an IN list to a
-- chain of equalities (SQLite built a temporary b-tree per row for the
-- list). PostgreSQL keeps the IN list: it stores it as
-- "status = ANY (ARRAY[...])" and tests the array in place, with no
-- per-row setup, so there is nothing to change here. The set of states is
-- the same on both sides (tests/integration/test_pg_schema.py compares
-- the two CHECKs as sets of allowed values). The migration only says so
-- on the constraint, to keep the two numberings in step.
COMMENT ON CONSTRAINT messages_status_check ON messages IS
    'SQLite spells this set status = ''queued'' OR ... (migration 010)';
