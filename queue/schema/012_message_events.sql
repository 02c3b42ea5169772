-- 012_message_events.sql - the "message" events of conversation messages
-- (doc/events.md) on the shared PostgreSQL store (issue 13).
--
-- Nothing to do on SQLite: one process holds the store, and queue.c's
-- queue_observe() hook tells daemon/conversations.c of every state change
-- of a conversation message inside the change's group, which publishes
-- the event. This file exists so that both schemas keep the same
-- migrations, numbered alike (check_pg_migrate, test_pg_schema.py); its
-- PostgreSQL twin is the one that does something.
SELECT 1;
