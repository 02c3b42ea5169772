-- 015_sending_index.sql - the twin of SQLite's 015, which drops that
-- store's messages_sending. PostgreSQL keeps it: every node reclaims the
-- ended leases of the others in lease_until order (queue/pg_queue.c).
COMMENT ON INDEX messages_sending IS
    'ended leases, reclaimed by any node in lease_until order';
