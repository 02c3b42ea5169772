-- 014_login_failures.sql - failed logins counted by every node of the
-- shared PostgreSQL store (issue 13, queue/store_logins_pg.c).
--
-- Nothing to do on SQLite: one process holds the store and counts failed
-- logins in its memory (daemon/auth.c). This file exists so that both
-- schemas keep the same migrations, numbered alike (check_pg_migrate,
-- test_pg_schema.py); its PostgreSQL twin creates the table.
SELECT 1;
