-- 008_fts_batch.sql - the twin of queue/schema/008_fts_batch.sql, which
-- drops SQLite's trigger conversation_fts_link (its search index is fed
-- once per group commit instead). PostgreSQL's GIN index conversation_fts
-- (006) needs no trigger, so nothing changes here.
SELECT 1;
