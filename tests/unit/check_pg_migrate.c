/*
 * check_pg_migrate.c - unit tests of the PostgreSQL schema runner and the
 * durability check (queue/pg_migrate.c), each on a fresh database of a
 * throwaway cluster (check_pgcluster.c): a fresh database brought to the
 * newest version with every table of the SQLite schema; a second run
 * that changes nothing; three connections migrating one fresh database at
 * once (each migration applied exactly once); a database newer than the
 * binary refused; a migration failing midway rolled back entirely (a
 * test-only list); the connection lost in the middle of a migration;
 * synchronous_commit off refused. Without a cluster:
 * the embedded PostgreSQL list matches the SQLite one, and a list out of
 * order is refused.
 *
 * The cluster tests are skipped, with the reason printed, when
 * PostgreSQL's server binaries are missing; without libpq the suite holds
 * one test that says so.
 */
#include "autoconf.h"

#include <stdio.h>

#include <check.h>

#include "check_suites.h"

#ifndef HAVE_LIBPQ

#include "check_pgcluster.h"

Suite *
pg_migrate_suite(void)
{
	return ckpg_not_built_suite("pg_migrate");
}

#else /* HAVE_LIBPQ */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "check_pgcluster.h"
#include "pg.h"
#include "pg_migrate.h"
#include "store-internal.h"

#define M_DEADLINE_S 60
#define M_NODES	     3

static char pg_url[512]; /* "" = no cluster: the cluster tests skip */

#define NEED_CLUSTER()                 \
	do {                           \
		if (pg_url[0] == '\0') \
			return;        \
	} while (0)

static void
cluster_start(void)
{
	ckpg_start("check_pg_migrate", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_pg_migrate", pg_url);
}

/* ---- a small harness: one loop, connections, runs to their end -------- */

struct m_run {
	bool finished;
	char error[768];
	int version;
	int applied;
};

struct m_ctx {
	struct event_base *base;
	char url[600]; /* the test's own database */
	bool timed_out;
};

static void
m_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct m_ctx *c = arg;

	(void)fd;
	(void)what;
	c->timed_out = true;
	event_base_loopbreak(c->base);
}

/* Runs the loop until *flag (or every flag of n) is set. */
static void
m_run_until(struct m_ctx *c, bool *const *flags, size_t n, const char *what)
{
	struct event *dl = evtimer_new(c->base, m_deadline, c);
	struct timeval tv = {M_DEADLINE_S, 0};
	size_t i;
	bool all;

	c->timed_out = false;
	evtimer_add(dl, &tv);
	for (;;) {
		for (all = true, i = 0; i < n; i++)
			all = all && *flags[i];
		if (all || c->timed_out)
			break;
		event_base_loop(c->base, EVLOOP_ONCE);
	}
	event_free(dl);
	ck_assert_msg(!c->timed_out, "timed out waiting for %s", what);
}

static struct pg *
m_connect(struct m_ctx *c, const char *url)
{
	struct pg_config cfg;
	char err[256];
	struct pg *pg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.url = url;
	cfg.reconnect_min_ms = 50;
	cfg.reconnect_max_ms = 400;
	pg = pg_new(c->base, &cfg, err, sizeof(err));
	ck_assert_msg(pg != NULL, "pg_new: %s", err);
	return pg;
}

/* Runs sql on pg to its answer; the first value ("" for none). */
static const char *
m_query(struct m_ctx *c, struct pg *pg, const char *sql)
{
	static struct ckpg_answer a;
	bool *flag = &a.done;
	struct pg_query q;
	char err[256];

	memset(&a, 0, sizeof(a));
	memset(&q, 0, sizeof(q));
	q.sql = sql;
	q.done = ckpg_on_answer;
	q.arg = &a;
	ck_assert_msg(pg_send(pg, &q, err, sizeof(err)) == 0, "%s", err);
	m_run_until(c, &flag, 1, sql);
	ck_assert_msg(a.error[0] == '\0', "%s: %s", sql, a.error);
	return a.value;
}

/* A context with a fresh database 'db' on the cluster. */
static struct m_ctx *
m_init(const char *db)
{
	struct m_ctx *c = calloc(1, sizeof(*c));
	struct pg *admin;
	char sql[256];

	ck_assert_ptr_nonnull(c);
	c->base = event_base_new();
	ck_assert_ptr_nonnull(c->base);
	admin = m_connect(c, pg_url);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
	m_query(c, admin, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	m_query(c, admin, sql);
	pg_free(admin);
	ckpg_db_url(pg_url, db, c->url, sizeof(c->url));
	return c;
}

static void
m_fini(struct m_ctx *c)
{
	event_base_free(c->base);
	free(c);
}

static void
m_on_migrated(void *arg, const struct pg_migrate_result *r)
{
	struct m_run *run = arg;

	ck_assert(!run->finished); /* exactly once */
	run->finished = true;
	run->version = r->version;
	run->applied = r->applied;
	if (r->error != NULL)
		snprintf(run->error, sizeof(run->error), "%s", r->error);
}

static void
m_start(struct pg *pg, const struct store_migration *list, const char *node,
    struct m_run *run)
{
	struct pg_migrate_req req;
	char err[256];

	memset(run, 0, sizeof(*run));
	memset(&req, 0, sizeof(req));
	req.migrations = list;
	req.node = node;
	req.done = m_on_migrated;
	req.arg = run;
	ck_assert_msg(pg_migrate(pg, &req, err, sizeof(err)) == 0, "%s", err);
}

/* One run of list (NULL: the embedded one) on a new connection to url. */
static void
m_migrate(struct m_ctx *c, const char *url, const struct store_migration *list,
    struct m_run *run)
{
	struct pg *pg = m_connect(c, url);
	bool *flag = &run->finished;

	m_start(pg, list, "node-a", run);
	m_run_until(c, &flag, 1, "pg_migrate");
	pg_free(pg);
}

static int
m_count(const struct store_migration *list)
{
	int n = 0;

	while (list[n].sql != NULL)
		n++;
	return n;
}

static int
m_newest(const struct store_migration *list)
{
	return list[m_count(list) - 1].version;
}

/* ---- the tests ---------------------------------------------------------- */

/* The embedded lists are twins: same versions, same file names. */
START_TEST(test_lists_in_step)
{
	int i, n = m_count(store_migrations);

	ck_assert_int_gt(n, 0);
	ck_assert_msg(m_count(pg_migrations) == n,
	    "%d SQLite migrations, %d PostgreSQL ones: add the new "
	    "queue/schema/pg/ file to OD_PG_SCHEMA in queue/include.am",
	    n, m_count(pg_migrations));
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(pg_migrations[i].version,
		    store_migrations[i].version);
		ck_assert_str_eq(pg_migrations[i].name,
		    store_migrations[i].name);
	}
}
END_TEST

START_TEST(test_bad_list_refused)
{
	static const struct store_migration unordered[] = {
	    {2, "002_b.sql", "SELECT 2"},
	    {1, "001_a.sql", "SELECT 1"},
	    {0, NULL, NULL},
	};
	static const struct store_migration empty[] = {{0, NULL, NULL}};
	struct event_base *base = event_base_new();
	struct pg_config cfg;
	struct pg_migrate_req req;
	struct m_run run;
	char err[256];
	struct pg *pg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.url = "postgresql:///x?host=/nonexistent-od-pg";
	pg = pg_new(base, &cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(pg);
	memset(&req, 0, sizeof(req));
	memset(&run, 0, sizeof(run));
	req.done = m_on_migrated;
	req.arg = &run;
	req.migrations = unordered;
	ck_assert_int_eq(pg_migrate(pg, &req, err, sizeof(err)), -1);
	ck_assert_str_eq(err,
	    "migration 001_a.sql is out of order (version 1 after 2)");
	req.migrations = empty;
	ck_assert_int_eq(pg_migrate(pg, &req, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "no PostgreSQL migrations");
	pg_free(pg);
	ck_assert(!run.finished);
	event_base_free(base);
}
END_TEST

/* Calls fn for each table of the SQLite schema but FTS5's. */
static void
m_sqlite_tables(void (*fn)(void *, const char *), void *arg)
{
	const struct store_migration *m;
	sqlite3_stmt *st;
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
	for (m = store_migrations; m->sql != NULL; m++)
		ck_assert_msg(sqlite3_exec(db, m->sql, NULL, NULL, NULL) ==
			SQLITE_OK,
		    "%s: %s", m->name, sqlite3_errmsg(db));
	ck_assert_int_eq(sqlite3_prepare_v2(db,
			     "SELECT name FROM sqlite_master WHERE type = "
			     "'table' AND name NOT LIKE 'sqlite_%' AND name "
			     "NOT LIKE 'conversation_fts%'",
			     -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

struct m_tables {
	struct m_ctx *c;
	struct pg *pg;
	int n;
};

static void
m_table_exists(void *arg, const char *table)
{
	struct m_tables *t = arg;
	char sql[256];

	snprintf(sql, sizeof(sql),
	    "SELECT to_regclass('public.%s') IS NOT NULL", table);
	ck_assert_msg(strcmp(m_query(t->c, t->pg, sql), "t") == 0,
	    "table %s: in SQLite, not in PostgreSQL after pg_migrate", table);
	t->n++;
}

/* A fresh database reaches the newest version, with every table. */
START_TEST(test_fresh_database)
{
	struct m_ctx *c;
	struct m_run run;
	struct m_tables t;
	int n = m_count(pg_migrations);
	char want[32];

	NEED_CLUSTER();
	c = m_init("m_fresh");
	m_migrate(c, c->url, NULL, &run);
	ck_assert_msg(run.error[0] == '\0', "%s", run.error);
	ck_assert_int_eq(run.version, m_newest(pg_migrations));
	ck_assert_int_eq(run.applied, n);

	memset(&t, 0, sizeof(t));
	t.c = c;
	t.pg = m_connect(c, c->url);
	m_sqlite_tables(m_table_exists, &t);
	ck_assert_int_ge(t.n, 20); /* the reader found the schema at all */
	snprintf(want, sizeof(want), "%d", n);
	ck_assert_str_eq(m_query(c, t.pg,
			     "SELECT count(*) FROM schema_version WHERE "
			     "applied_by = 'node-a'"),
	    want);
	ck_assert_str_eq(m_query(c, t.pg,
			     "SELECT name FROM schema_version "
			     "ORDER BY version DESC LIMIT 1"),
	    pg_migrations[n - 1].name);
	/* What the migrations made works: the append-only trigger. */
	m_query(c, t.pg,
	    "INSERT INTO audit (action, created_at) VALUES ('x', 0)");
	pg_free(t.pg);
	m_fini(c);
}
END_TEST

/* A second run on an up-to-date database changes nothing. */
START_TEST(test_rerun_is_noop)
{
	struct m_ctx *c;
	struct m_run run;
	struct pg *pg;
	char before[256];

	NEED_CLUSTER();
	c = m_init("m_rerun");
	m_migrate(c, c->url, NULL, &run);
	ck_assert_msg(run.error[0] == '\0', "%s", run.error);
	pg = m_connect(c, c->url);
	snprintf(before, sizeof(before), "%s",
	    m_query(c, pg,
		"SELECT string_agg(version || '@' || applied_at, ',' "
		"ORDER BY version) FROM schema_version"));
	m_migrate(c, c->url, NULL, &run);
	ck_assert_msg(run.error[0] == '\0', "%s", run.error);
	ck_assert_int_eq(run.applied, 0);
	ck_assert_int_eq(run.version, m_newest(pg_migrations));
	ck_assert_str_eq(m_query(c, pg,
			     "SELECT string_agg(version || '@' || applied_at, "
			     "',' ORDER BY version) FROM schema_version"),
	    before);
	pg_free(pg);
	m_fini(c);
}
END_TEST

/*
 * Three nodes start together on one fresh database: no error, each sees
 * the newest version, and each migration was applied once (by whichever
 * node held the lock), its row written once.
 */
START_TEST(test_three_nodes_at_once)
{
	static const char *names[M_NODES] = {"node-1", "node-2", "node-3"};
	struct m_ctx *c;
	struct m_run run[M_NODES];
	struct pg *pg[M_NODES];
	bool *flags[M_NODES];
	int i, total = 0, n = m_count(pg_migrations);
	char want[64];

	NEED_CLUSTER();
	c = m_init("m_three");
	for (i = 0; i < M_NODES; i++)
		pg[i] = m_connect(c, c->url);
	for (i = 0; i < M_NODES; i++) {
		m_start(pg[i], NULL, names[i], &run[i]);
		flags[i] = &run[i].finished;
	}
	m_run_until(c, flags, M_NODES, "three runs");
	for (i = 0; i < M_NODES; i++) {
		ck_assert_msg(run[i].error[0] == '\0', "%s: %s", names[i],
		    run[i].error);
		ck_assert_int_eq(run[i].version, m_newest(pg_migrations));
		total += run[i].applied;
	}
	ck_assert_int_eq(total, n);
	snprintf(want, sizeof(want), "%d %d", n, n);
	ck_assert_str_eq(m_query(c, pg[0],
			     "SELECT count(*) || ' ' || count(DISTINCT version)"
			     " FROM schema_version"),
	    want);
	for (i = 0; i < M_NODES; i++)
		pg_free(pg[i]);
	m_fini(c);
}
END_TEST

/* A database written by a newer outreachd is refused, untouched. */
START_TEST(test_newer_database_refused)
{
	struct m_ctx *c;
	struct m_run run;
	struct pg *pg;
	char sql[256], want[256];
	int newest = m_newest(pg_migrations);

	NEED_CLUSTER();
	c = m_init("m_newer");
	m_migrate(c, c->url, NULL, &run);
	ck_assert_msg(run.error[0] == '\0', "%s", run.error);
	pg = m_connect(c, c->url);
	snprintf(sql, sizeof(sql),
	    "INSERT INTO schema_version (version, name) "
	    "VALUES (%d, '%03d_future.sql')",
	    newest + 5, newest + 5);
	m_query(c, pg, sql);
	m_migrate(c, c->url, NULL, &run);
	snprintf(want, sizeof(want),
	    "database schema version %d is newer than this outreachd (%d): "
	    "upgrade outreachd",
	    newest + 5, newest);
	ck_assert_str_eq(run.error, want);
	ck_assert_int_eq(run.applied, 0);
	ck_assert_int_eq(run.version, newest + 5);
	snprintf(want, sizeof(want), "%d", m_count(pg_migrations) + 1);
	ck_assert_str_eq(m_query(c, pg, "SELECT count(*) FROM schema_version"),
	    want);
	pg_free(pg);
	m_fini(c);
}
END_TEST

/*
 * A migration that fails after some of its statements ran is rolled back
 * whole: its table, its function and its version row are not there, the
 * one before it stays; once fixed, the next run applies it alone. Both
 * bodies hold PL/pgSQL in $$ quotes and semicolons in strings and
 * comments, which the server splits (PG_SIMPLE).
 */
START_TEST(test_failing_migration_rolls_back)
{
	static const struct store_migration bad[] = {
	    {1, "001_a.sql",
		"CREATE TABLE t_a (x int); -- one; two\n"
		"INSERT INTO t_a VALUES (1);\n"},
	    {2, "002_b.sql",
		"CREATE TABLE t_b (x text);\n"
		"CREATE FUNCTION t_f() RETURNS text LANGUAGE plpgsql AS $$\n"
		"BEGIN RETURN 'x;y'; END;\n"
		"$$;\n"
		"INSERT INTO t_b VALUES (t_f());\n"
		"SELECT 1 / 0;\n"
		"CREATE TABLE t_c (x int);\n"},
	    {0, NULL, NULL},
	};
	static const struct store_migration good[] = {
	    {1, "001_a.sql", "SELECT 'never run again'"},
	    {2, "002_b.sql",
		"CREATE TABLE t_b (x text);\n"
		"CREATE FUNCTION t_f() RETURNS text LANGUAGE plpgsql AS $$\n"
		"BEGIN RETURN 'x;y'; END;\n"
		"$$;\n"
		"INSERT INTO t_b VALUES (t_f()), ('/* not a comment; */');\n"},
	    {0, NULL, NULL},
	};
	struct m_ctx *c;
	struct m_run run;
	struct pg *pg;

	NEED_CLUSTER();
	c = m_init("m_fail");
	m_migrate(c, c->url, bad, &run);
	ck_assert_msg(strcmp(run.error,
			  "migration 002_b.sql: division by "
			  "zero (SQLSTATE 22012)") == 0,
	    "%s", run.error);
	ck_assert_int_eq(run.applied, 1);
	ck_assert_int_eq(run.version, 1);
	pg = m_connect(c, c->url);
	ck_assert_str_eq(m_query(c, pg,
			     "SELECT concat_ws(',', to_regclass('t_a'), "
			     "to_regclass('t_b'), to_regclass('t_c'), "
			     "to_regproc('t_f'))"),
	    "t_a");
	ck_assert_str_eq(m_query(c, pg,
			     "SELECT string_agg(version::text, ',') FROM "
			     "schema_version"),
	    "1");

	m_migrate(c, c->url, good, &run);
	ck_assert_msg(run.error[0] == '\0', "%s", run.error);
	ck_assert_int_eq(run.applied, 1);
	ck_assert_int_eq(run.version, 2);
	ck_assert_str_eq(
	    m_query(c, pg, "SELECT string_agg(x, '|' ORDER BY x) FROM t_b"),
	    "/* not a comment; */|x;y");
	ck_assert_str_eq(m_query(c, pg, "SELECT count(*) FROM t_a"), "1");
	pg_free(pg);
	m_fini(c);
}
END_TEST

struct m_poll {
	struct pg *pg, *other;
	const char *needle;
	bool busy, found;
};

static void
m_on_poll(void *arg, const struct pg_answer *a)
{
	struct m_poll *p = arg;

	p->busy = false;
	if (a->error == NULL && a->res != NULL && PQntuples(a->res) == 1 &&
	    strcmp(PQgetvalue(a->res, 0, 0), "1") == 0)
		p->found = true;
}

static void
m_on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
	struct m_poll *p = arg;
	struct pg_query q;
	char sql[256], err[256];

	(void)fd;
	(void)what;
	if (p->busy || p->found || pg_backend_pid(p->pg) == 0)
		return;
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM pg_stat_activity WHERE pid = %d "
	    "AND state = 'active' AND query LIKE '%%%s%%'",
	    pg_backend_pid(p->pg), p->needle);
	memset(&q, 0, sizeof(q));
	q.sql = sql;
	q.done = m_on_poll;
	q.arg = p;
	ck_assert_msg(pg_send(p->other, &q, err, sizeof(err)) == 0, "%s", err);
	p->busy = true;
}

/*
 * Runs the loop until pg's backend is running a query holding 'needle'
 * (asked on 'other' every 50 ms; the loop never stops meanwhile).
 */
static void
m_wait_running(struct m_ctx *c, struct pg *pg, struct pg *other,
    const char *needle)
{
	struct m_poll p;
	struct event *ev;
	struct timeval tv = {0, 50 * 1000};
	bool *flag = &p.found;

	memset(&p, 0, sizeof(p));
	p.pg = pg;
	p.other = other;
	p.needle = needle;
	ev = event_new(c->base, -1, EV_PERSIST, m_on_poll_timer, &p);
	event_add(ev, &tv);
	m_run_until(c, &flag, 1, needle);
	event_free(ev);
	/* An answer still on its way writes to p: wait for it. */
	while (p.busy)
		event_base_loop(c->base, EVLOOP_ONCE);
}

/*
 * The connection dies while a migration runs (its backend terminated
 * from another connection): the run fails saying the migration committed
 * whole or not at all, the database stays at the version before it, and
 * the next run applies it.
 */
START_TEST(test_connection_lost_mid_migration)
{
	static const struct store_migration slow[] = {
	    {1, "001_a.sql", "CREATE TABLE t_a (x int);\n"},
	    {2, "002_slow.sql",
		"CREATE TABLE t_slow (x int);\n"
		"SELECT pg_sleep(60);\n"},
	    {0, NULL, NULL},
	};
	static const struct store_migration quick[] = {
	    {1, "001_a.sql", "CREATE TABLE t_a (x int);\n"},
	    {2, "002_slow.sql", "CREATE TABLE t_slow (x int);\n"},
	    {0, NULL, NULL},
	};
	struct m_ctx *c;
	struct m_run run;
	struct pg *pg, *other;
	bool *flag = &run.finished;
	char sql[256];

	NEED_CLUSTER();
	c = m_init("m_lost");
	pg = m_connect(c, c->url);
	other = m_connect(c, c->url);
	m_start(pg, slow, "node-a", &run);
	m_wait_running(c, pg, other, "pg_sleep");
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)",
	    pg_backend_pid(pg));
	ck_assert_str_eq(m_query(c, other, sql), "t");
	m_run_until(c, &flag, 1, "the run to fail");
	ck_assert_msg(strstr(run.error,
			  "migration 002_slow.sql: connection "
			  "lost") == run.error &&
		strstr(run.error,
		    "committed entirely or not at all: start "
		    "again") != NULL,
	    "%s", run.error);
	ck_assert_int_eq(run.version, 1);
	ck_assert_int_eq(run.applied, 1);
	pg_free(pg);
	ck_assert_str_eq(m_query(c, other,
			     "SELECT concat_ws(',', to_regclass('t_a'), "
			     "to_regclass('t_slow'), (SELECT max(version) FROM "
			     "schema_version))"),
	    "t_a,1");
	pg_free(other);

	m_migrate(c, c->url, quick, &run);
	ck_assert_msg(run.error[0] == '\0', "%s", run.error);
	ck_assert_int_eq(run.applied, 1);
	ck_assert_int_eq(run.version, 2);
	m_fini(c);
}
END_TEST

static void
m_on_check(void *arg, const char *error)
{
	struct ckpg_answer *a = arg;

	a->done = true;
	snprintf(a->error, sizeof(a->error), "%s", error != NULL ? error : "");
}

/* pg_check_durability() on a new connection to url; its error or "". */
static const char *
m_check(struct m_ctx *c, const char *url)
{
	static struct ckpg_answer a;
	bool *flag = &a.done;
	struct pg *pg = m_connect(c, url);
	char err[256];

	memset(&a, 0, sizeof(a));
	ck_assert_msg(
	    pg_check_durability(pg, m_on_check, &a, err, sizeof(err)) == 0,
	    "%s", err);
	m_run_until(c, &flag, 1, "pg_check_durability");
	pg_free(pg);
	return a.error;
}

/*
 * synchronous_commit off (here through the URL's options) is refused by
 * the check and by pg_migrate, which then changes nothing; local, which
 * still waits for the local flush, is accepted.
 */
START_TEST(test_sync_commit_off_refused)
{
	struct m_ctx *c;
	struct m_run run;
	struct pg *pg;
	char off[700], local[700];

	NEED_CLUSTER();
	c = m_init("m_sync");
	snprintf(off, sizeof(off), "%s&options=-c%%20synchronous_commit%%3Doff",
	    c->url);
	snprintf(local, sizeof(local),
	    "%s&options=-c%%20synchronous_commit%%3Dlocal", c->url);
	ck_assert_str_eq(m_check(c, c->url), "");
	ck_assert_str_eq(m_check(c, local), "");
	ck_assert_msg(
	    strncmp(m_check(c, off), "synchronous_commit is off", 25) == 0,
	    "%s", m_check(c, off));

	m_migrate(c, off, NULL, &run);
	ck_assert_msg(strncmp(run.error,
			  "synchronous_commit is off on this "
			  "PostgreSQL connection",
			  55) == 0,
	    "%s", run.error);
	ck_assert_int_eq(run.applied, 0);
	pg = m_connect(c, c->url);
	ck_assert_str_eq(
	    m_query(c, pg, "SELECT to_regclass('schema_version') IS NULL"),
	    "t");
	pg_free(pg);
	m_fini(c);
}
END_TEST

Suite *
pg_migrate_suite(void)
{
	Suite *s = suite_create("pg_migrate");
	TCase *tn = tcase_create("lists");
	TCase *tc = tcase_create("cluster");

	tcase_add_test(tn, test_lists_in_step);
	tcase_add_test(tn, test_bad_list_refused);
	suite_add_tcase(s, tn);

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_fresh_database);
	tcase_add_test(tc, test_rerun_is_noop);
	tcase_add_test(tc, test_three_nodes_at_once);
	tcase_add_test(tc, test_newer_database_refused);
	tcase_add_test(tc, test_failing_migration_rolls_back);
	tcase_add_test(tc, test_connection_lost_mid_migration);
	tcase_add_test(tc, test_sync_commit_off_refused);
	tcase_set_timeout(tc, 180);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
