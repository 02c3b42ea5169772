/*
 * check_store_pg.c - unit tests of the PostgreSQL store core
 * (queue/store_pg.c) against a throwaway cluster (check_pgcluster.h),
 * each test on a fresh database:
 *
 *  - open migrates and starts the node (a restarted node recovers its
 *    own claims);
 *  - 1,000 group sends in one turn make one COMMIT, every statement is
 *    answered (with its RETURNING id) before its group's callbacks, which
 *    all hear ok; the rows are there;
 *  - a failing statement fails its whole group (callbacks false, nothing
 *    stored) and the next group commits; store_abort_group() likewise;
 *  - a group pipelined behind a COMMIT in flight is answered after it;
 *  - the backend terminated with a COMMIT in flight: callbacks false,
 *    nothing stored, then the store reconnects and the next group
 *    commits; store_ping() says down, then up; a group gathered over
 *    turns across a reconnection commits whole; one held while the
 *    connection cannot come back fails whole, unsent;
 *  - synchronous_commit off refused at open, and found after a
 *    reconnection (ping fails, groups fail until it is on again); a second
 * store under a live node's name refused, naming the node;
 *  - the SQLite-only internals (queue_status(), store_stmt(), ...) fail
 *    with "not available on the PostgreSQL store yet";
 *  - the node duties advance nodes.heartbeat_at.
 *
 * No timing assertions: the tests wait for states (with a generous
 * deadline that only catches a hang). Skipped, with the reason printed,
 * when PostgreSQL's server binaries are missing; without libpq the suite
 * holds one test that says so.
 */
#include "autoconf.h"

#include <stdio.h>

#include <check.h>

#include "check_suites.h"

#ifndef HAVE_LIBPQ

#include "check_pgcluster.h"

Suite *
store_pg_suite(void)
{
	return ckpg_not_built_suite("store_pg");
}

#else /* HAVE_LIBPQ */

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "check_pgcluster.h"
#include "pg.h"
#include "pg_migrate.h"
#include "pg_queue.h"
#include "queue.h"
#include "store-internal.h"
#include "store.h"

#define T_MANY 1000

static char pg_url[512]; /* "" = no cluster: the tests skip */
static struct event_base *t_base;

static void
cluster_start(void)
{
	ckpg_start("check_store_pg", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_store_pg", pg_url);
}

#define NEED_CLUSTER()                 \
	do {                           \
		if (pg_url[0] == '\0') \
			return;        \
	} while (0)

/* ---- harness -------------------------------------------------------------
 */

/* Runs the loop until *flag; fails the test at the (generous) deadline. */
static void
t_run_until(const bool *flag, const char *what)
{
	ckpg_run_until(t_base, flag, what);
}

static void
t_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Lets the loop run for a while (polling between two looks at a state). */
static void
t_pause(void)
{
	struct timeval tv = {0, 50000};
	bool done = false;
	struct event *ev = evtimer_new(t_base, t_tick, &done);

	evtimer_add(ev, &tv);
	t_run_until(&done, "a pause");
	event_free(ev);
}

static struct pg *
t_connect(const char *url)
{
	return ckpg_connect(t_base, url);
}

static const char *
t_sql(struct pg *pg, const char *sql, const char *p1)
{
	return ckpg_sql(t_base, pg, sql, p1);
}

static long long t_sql_int(struct pg *, const char *, const char *);

/* The rows the groups stored. */
static long long
t_items(struct pg *pg)
{
	return t_sql_int(pg, "SELECT count(*) FROM t_items", NULL);
}

static long long
t_sql_int(struct pg *pg, const char *sql, const char *p1)
{
	return strtoll(t_sql(pg, sql, p1), NULL, 10);
}

/* A fresh, empty database 'db'; its URL in url. */
static void
t_db(const char *db, char *url, size_t urllen)
{
	struct pg *pg = t_connect(pg_url);
	char sql[128];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
	t_sql(pg, sql, NULL);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	t_sql(pg, sql, NULL);
	pg_free(pg);
	ckpg_db_url(pg_url, db, url, urllen);
}

/* store_open_config() for PostgreSQL; NULL with the error in err. */
static struct store *
t_open(const char *url, const char *node, char *err, size_t errlen)
{
	struct store_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.backend = STORE_POSTGRESQL;
	cfg.url = url;
	cfg.node = node;
	cfg.base = t_base;
	cfg.connect_timeout_ms = 30000;
	return store_open_config(&cfg, err, errlen);
}

static struct store *
t_open_ok(const char *url, const char *node)
{
	char err[512];
	struct store *st = t_open(url, node, err, sizeof(err));

	ck_assert_msg(st != NULL, "store_open_config: %s", err);
	return st;
}

static void
t_setup(void)
{
	t_base = event_base_new();
	ck_assert_ptr_nonnull(t_base);
}

static void
t_teardown(void)
{
	event_base_free(t_base);
	t_base = NULL;
}

/* ---- group statements and callbacks --------------------------------------
 */

/* What one test's group sends and callbacks heard. */
struct t_rec {
	size_t answers;	    /* statement answers */
	size_t answer_errs; /* of them with an error */
	size_t bad_ids;	    /* RETURNING id answers without an id > 0 */
	size_t cbs;	    /* commit callbacks */
	size_t cb_ok;	    /* of them with ok */
	size_t answers_at_first_cb;
	int order[8]; /* groups in the order their callbacks ran */
	size_t norder;
	bool done; /* set by t_cb when cbs reaches want */
	size_t want;
};

static void
t_on_stmt(void *arg, const struct pg_answer *a)
{
	struct t_rec *r = arg;

	r->answers++;
	if (a->error != NULL) {
		r->answer_errs++;
		return;
	}
	if (a->res != NULL && PQntuples(a->res) == 1 &&
	    strtoll(PQgetvalue(a->res, 0, 0), NULL, 10) <= 0)
		r->bad_ids++;
}

static void
t_cb(void *arg, bool ok)
{
	struct t_rec *r = arg;

	if (r->cbs == 0)
		r->answers_at_first_cb = r->answers;
	r->cbs++;
	if (ok)
		r->cb_ok++;
	if (r->cbs == r->want)
		r->done = true;
}

/* A callback that records its group number (arg: struct t_grp). */
struct t_grp {
	struct t_rec *r;
	int group;
	bool ok;
};

static void
t_cb_group(void *arg, bool ok)
{
	struct t_grp *g = arg;

	g->ok = ok;
	if (g->r->norder < sizeof(g->r->order) / sizeof(g->r->order[0]))
		g->r->order[g->r->norder++] = g->group;
	t_cb(g->r, ok);
}

/* Sends one statement (one optional parameter) into the open group. */
static void
t_group_send(struct store *st, const char *sql, const char *p1, struct t_rec *r)
{
	const char *values[1] = {p1};
	char err[256];

	ck_assert_msg(store_pg_group_send(st,
			  &(struct pg_query){.sql = sql,
			      .nparams = p1 != NULL ? 1 : 0,
			      .values = p1 != NULL ? values : NULL,
			      .done = t_on_stmt,
			      .arg = r},
			  err, sizeof(err)) == 0,
	    "store_pg_group_send: %s", err);
}

static const char t_insert[] =
    "INSERT INTO t_items (v) VALUES ($1::integer) RETURNING id";

/*
 * A new record r expecting n callbacks, and n inserts into the open group
 * (values first, first + 1, ...; the one at index 'bad' is -1, which the
 * CHECK refuses; bad < 0: none), each with a commit callback.
 */
static void
t_insert_rows(struct store *st, struct t_rec *r, int n, int first, int bad)
{
	char v[16];
	int i;

	memset(r, 0, sizeof(*r));
	r->want = (size_t)n;
	for (i = 0; i < n; i++) {
		snprintf(v, sizeof(v), "%d", i == bad ? -1 : first + i);
		t_group_send(st, t_insert, v, r);
		store_on_commit(st, t_cb, r);
	}
}

/* t_items, the table the groups write, on a second connection. */
static struct pg *
t_items_table(const char *url)
{
	struct pg *pg = t_connect(url);

	t_sql(pg,
	    "CREATE TABLE t_items (id BIGINT GENERATED ALWAYS AS IDENTITY"
	    " PRIMARY KEY, v INTEGER NOT NULL CHECK (v >= 0))",
	    NULL);
	return pg;
}

/* The store's group backend, seen from pg: its pid as text. */
static void
t_backend_pid(struct store *st, char *out, size_t outlen)
{
	int pid = pg_backend_pid(store_pg_conn(st));

	ck_assert_int_gt(pid, 0);
	snprintf(out, outlen, "%d", pid);
}

static void
t_terminate(struct pg *pg, const char *pid)
{
	ck_assert_str_eq(
	    t_sql(pg, "SELECT pg_terminate_backend($1::integer)", pid), "t");
}

/*
 * What most tests start from: a fresh database 'db', a store on it (node
 * "node-a", attached with commit_delay_ms), t_items and a connection to
 * read it.
 */
struct t_fix {
	char url[512];
	struct store *st;
	struct pg *pg;
};

static void
t_fix_open(struct t_fix *f, const char *db, unsigned commit_delay_ms)
{
	t_setup();
	t_db(db, f->url, sizeof(f->url));
	f->st = t_open_ok(f->url, "node-a");
	store_attach(f->st, t_base, commit_delay_ms);
	f->pg = t_items_table(f->url);
}

static void
t_fix_close(struct t_fix *f)
{
	store_close(f->st);
	pg_free(f->pg);
	t_teardown();
}

/* Polls until store_ping() answers 0 (up) or -1 (down). */
static void
t_wait_ping(struct store *st, int want)
{
	char err[256];

	while (store_ping(st, err, sizeof(err)) != want)
		t_pause();
}

/* Terminates the store's group backend and waits until it is seen down. */
static void
t_kill_group_conn(struct t_fix *f)
{
	char pid[16];

	t_backend_pid(f->st, pid, sizeof(pid));
	t_terminate(f->pg, pid);
	t_wait_ping(f->st, -1);
}

/* ---- tests ---------------------------------------------------------------
 */

START_TEST(test_open_migrates_and_starts)
{
	char url[512], num[32];
	const struct store_migration *m;
	struct store *st;
	struct pg *pg;
	int newest = 0;
	int64_t id;

	NEED_CLUSTER();
	t_setup();
	t_db("sp_open", url, sizeof(url));
	st = t_open_ok(url, "node-a");
	ck_assert_int_eq(store_backend(st), STORE_POSTGRESQL);
	for (m = pg_migrations; m->sql != NULL; m++)
		newest = m->version;
	ck_assert_int_eq(store_schema_version(st), newest);
	ck_assert_ptr_nonnull(store_pg_conn(st));
	ck_assert_ptr_nonnull(store_pg_queue(st));
	id = pgq_node_id(store_pg_queue(st));
	ck_assert_int_gt(id, 0);
	ck_assert_ptr_null(store_db(st));

	pg = t_connect(url);
	ck_assert_int_eq(
	    t_sql_int(pg, "SELECT count(*) FROM schema_version", NULL), newest);
	snprintf(num, sizeof(num), "%lld", (long long)id);
	ck_assert_int_eq(t_sql_int(pg,
			     "SELECT count(*) FROM nodes WHERE name = 'node-a'"
			     " AND id = $1::bigint",
			     num),
	    1);
	/* A claim of this node's life, left 'sending' when it "dies". */
	t_sql(pg,
	    "INSERT INTO messages (direction, channel, sender, to_addr, body,"
	    " status, priority, next_attempt_at, created_at, updated_at,"
	    " lease_owner, lease_until) VALUES ('out', 'sms', 's1',"
	    " '+15550000001', 'hi', 'sending', 5, 0, 0, 0, $1::bigint,"
	    " 9000000000000)",
	    num);
	store_close(st);

	/* The next life: same id, its claim recovered. */
	st = t_open_ok(url, "node-a");
	ck_assert_int_eq(pgq_node_id(store_pg_queue(st)), id);
	ck_assert_str_eq(t_sql(pg, "SELECT status FROM messages", NULL),
	    "queued");
	store_close(st);
	pg_free(pg);
	t_teardown();
}
END_TEST

START_TEST(test_group_commit_one_turn)
{
	struct t_rec r = {0};
	struct store_stats before, after;
	struct t_fix f;

	NEED_CLUSTER();
	t_fix_open(&f, "sp_many", 0);
	store_get_stats(f.st, &before);

	/* One turn: nothing runs the loop between these. */
	t_insert_rows(f.st, &r, T_MANY, 0, -1);
	ck_assert(store_in_transaction(f.st));
	t_run_until(&r.done, "the group's callbacks");
	ck_assert_uint_eq(r.cb_ok, T_MANY);
	ck_assert_uint_eq(r.answers_at_first_cb, T_MANY);
	ck_assert_uint_eq(r.answer_errs, 0);
	ck_assert_uint_eq(r.bad_ids, 0);
	store_get_stats(f.st, &after);
	ck_assert_uint_eq(after.commits - before.commits, 1);
	ck_assert_uint_eq(after.commit_failures, before.commit_failures);
	ck_assert_uint_eq(after.writes - before.writes, T_MANY);
	ck_assert_int_eq(
	    t_sql_int(f.pg, "SELECT count(DISTINCT v) FROM t_items", NULL),
	    T_MANY);

	/* No group open: the callback runs on the next turn, ok. */
	ck_assert(!store_in_transaction(f.st));
	memset(&r, 0, sizeof(r));
	r.want = 1;
	store_on_commit(f.st, t_cb, &r);
	ck_assert_uint_eq(r.cbs, 0);
	t_run_until(&r.done, "a callback with no group");
	ck_assert_uint_eq(r.cb_ok, 1);

	t_fix_close(&f);
}
END_TEST

START_TEST(test_group_fails_whole)
{
	struct t_rec r = {0};
	struct store_stats before, after;
	struct t_fix f;

	NEED_CLUSTER();
	t_fix_open(&f, "sp_fail", 0);
	store_get_stats(f.st, &before);

	/* Ten rows, the sixth violating the CHECK. */
	t_insert_rows(f.st, &r, 10, 100, 5);
	t_run_until(&r.done, "the failed group's callbacks");
	ck_assert_uint_eq(r.cb_ok, 0);
	ck_assert_uint_ge(r.answer_errs, 1);
	ck_assert_int_eq(t_items(f.pg), 0);
	store_get_stats(f.st, &after);
	ck_assert_uint_eq(after.commit_failures - before.commit_failures, 1);
	ck_assert_uint_eq(after.commits, before.commits);

	/* The next group commits fine. */
	t_insert_rows(f.st, &r, 5, 200, -1);
	t_run_until(&r.done, "the next group's callbacks");
	ck_assert_uint_eq(r.cb_ok, 5);
	ck_assert_int_eq(t_items(f.pg), 5);

	/* An aborted group: answered, rolled back, callbacks false. */
	t_insert_rows(f.st, &r, 3, 300, -1);
	store_abort_group(f.st);
	t_run_until(&r.done, "the aborted group's callbacks");
	ck_assert_uint_eq(r.cb_ok, 0);
	ck_assert_int_eq(t_items(f.pg), 5);

	t_fix_close(&f);
}
END_TEST

/*
 * Group 1 waits on the server (pg_sleep) when group 2 is sent behind its
 * COMMIT: group 2 is answered after it, its callbacks run second.
 */
START_TEST(test_groups_in_order)
{
	struct t_rec r = {0};
	struct t_grp g1 = {&r, 1, false}, g2 = {&r, 2, false};
	struct t_fix f;
	struct pg_stats ps;

	NEED_CLUSTER();
	t_fix_open(&f, "sp_order", 0);

	r.want = 2;
	t_group_send(f.st, "SELECT pg_sleep(0.3)", NULL, &r);
	t_group_send(f.st, t_insert, "1", &r);
	store_on_commit(f.st, t_cb_group, &g1);
	/* Until group 1 is on the wire (its COMMIT in flight). */
	do {
		t_pause();
		pg_get_stats(store_pg_conn(f.st), &ps);
	} while (ps.in_flight == 0 && r.cbs == 0);
	ck_assert(!store_in_transaction(f.st));
	ck_assert_uint_eq(r.cbs, 0);
	t_group_send(f.st, t_insert, "2", &r);
	store_on_commit(f.st, t_cb_group, &g2);
	t_run_until(&r.done, "both groups");
	ck_assert(g1.ok);
	ck_assert(g2.ok);
	ck_assert_uint_eq(r.norder, 2);
	ck_assert_int_eq(r.order[0], 1);
	ck_assert_int_eq(r.order[1], 2);
	ck_assert_int_eq(t_items(f.pg), 2);

	t_fix_close(&f);
}
END_TEST

/*
 * While a group's COMMIT is in flight, the writes of the next turns gather
 * into ONE group, sent when that COMMIT answers: one WAL flush per group,
 * not per turn. Group 1 waits on an advisory lock another connection
 * holds, so its COMMIT stays in flight through three turns of writes.
 * Sent each turn behind it, they made three more COMMITs.
 */
START_TEST(test_groups_gather_behind_commit)
{
	struct t_rec r = {0};
	struct t_grp g1 = {&r, 1, false}, g2 = {&r, 2, false};
	struct store_stats before, after;
	struct pg_stats ps;
	struct t_fix f;
	char v[16];
	int i;

	NEED_CLUSTER();
	t_fix_open(&f, "sp_gather", 0);
	t_sql(f.pg, "SELECT pg_advisory_lock(4242)", NULL);
	store_get_stats(f.st, &before);

	r.want = 5; /* group 1's callback and the four below */
	t_group_send(f.st, "SELECT pg_advisory_xact_lock(4242)", NULL, &r);
	t_group_send(f.st, t_insert, "1", &r);
	store_on_commit(f.st, t_cb_group, &g1);
	do {
		t_pause();
		pg_get_stats(store_pg_conn(f.st), &ps);
	} while (ps.in_flight == 0);
	for (i = 0; i < 3; i++) { /* three turns apart */
		snprintf(v, sizeof(v), "%d", 10 + i);
		t_group_send(f.st, t_insert, v, &r);
		store_on_commit(f.st, t_cb, &r);
		t_pause();
	}
	store_on_commit(f.st, t_cb_group, &g2);
	ck_assert_uint_eq(r.cbs, 0);
	t_sql(f.pg, "SELECT pg_advisory_unlock(4242)", NULL);
	t_run_until(&r.done, "both groups");
	store_get_stats(f.st, &after);
	ck_assert(g1.ok);
	ck_assert(g2.ok);
	ck_assert_uint_eq(r.cb_ok, 5);
	ck_assert_int_eq(r.order[0], 1);
	ck_assert_int_eq(r.order[1], 2);
	ck_assert_int_eq(t_items(f.pg), 4);
	ck_assert_uint_eq(after.commits - before.commits, 2);

	t_fix_close(&f);
}
END_TEST

START_TEST(test_backend_terminated)
{
	struct t_rec r = {0};
	char pid[16], err[256];
	struct t_fix f;

	NEED_CLUSTER();
	t_fix_open(&f, "sp_term", 0);
	ck_assert_int_eq(store_ping(f.st, err, sizeof(err)), 0);
	t_backend_pid(f.st, pid, sizeof(pid));

	/* A group whose COMMIT is in flight behind a long statement. */
	r.want = 3;
	t_group_send(f.st, t_insert, "1", &r);
	store_on_commit(f.st, t_cb, &r);
	t_group_send(f.st, "SELECT pg_sleep(600)", NULL, &r);
	store_on_commit(f.st, t_cb, &r);
	t_group_send(f.st, t_insert, "2", &r);
	store_on_commit(f.st, t_cb, &r);
	while (t_sql_int(f.pg,
		   "SELECT count(*) FROM pg_stat_activity WHERE pid ="
		   " $1::integer AND query LIKE 'SELECT pg_sleep%'",
		   pid) == 0)
		t_pause();
	t_terminate(f.pg, pid);
	t_run_until(&r.done, "the lost group's callbacks");
	ck_assert_uint_eq(r.cb_ok, 0);
	/* The first insert was answered (inside the transaction). */
	ck_assert_uint_eq(r.answers, 3);
	ck_assert_uint_eq(r.answer_errs, 2);
	/* Down until the driver reconnects (ping follows the state). */
	ck_assert_int_eq(store_ping(f.st, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "database connection down: ", 26) == 0, "%s",
	    err);
	t_wait_ping(f.st, 0);
	ck_assert_int_eq(t_items(f.pg), 0);

	/* The next group commits on the new connection. */
	t_insert_rows(f.st, &r, 2, 3, -1);
	t_run_until(&r.done, "the next group's callbacks");
	ck_assert_uint_eq(r.cb_ok, 2);
	ck_assert_int_eq(t_items(f.pg), 2);

	/* Terminated while idle: the next group waits for the new one. */
	t_kill_group_conn(&f);
	t_insert_rows(f.st, &r, 1, 4, -1);
	t_run_until(&r.done, "a group sent while down");
	ck_assert_uint_eq(r.cb_ok, 1);
	ck_assert_int_eq(t_items(f.pg), 3);

	t_fix_close(&f);
}
END_TEST

/*
 * A group that gathers over several turns (commit_delay_ms) while its
 * connection is lost and comes back: all of it commits, or none of it.
 * (Statements sent as they came would have put the first insert in a
 * transaction that died and the second in autocommit on the new
 * connection: a row stored for a group whose callbacks hear false.)
 */
START_TEST(test_group_spans_reconnection)
{
	struct t_rec r = {0};
	struct t_fix f;
	char err[256];

	NEED_CLUSTER();
	t_fix_open(&f, "sp_span", 600000); /* commits at store_flush() */
	r.want = 2;
	t_group_send(f.st, t_insert, "1", &r);
	store_on_commit(f.st, t_cb, &r);
	t_pause();
	t_kill_group_conn(&f);
	t_wait_ping(f.st, 0);
	t_group_send(f.st, t_insert, "2", &r);
	store_on_commit(f.st, t_cb, &r);
	ck_assert(store_in_transaction(f.st));
	ck_assert_int_eq(store_flush(f.st, err, sizeof(err)), 0);
	ck_assert(r.done);
	ck_assert_uint_eq(r.cb_ok, 2);
	ck_assert_int_eq(t_items(f.pg), 2);
	t_fix_close(&f);
}
END_TEST

/*
 * The group connection cannot come back (the database refuses
 * connections): a group is held, not handed to the driver, then fails
 * whole, nothing sent; once connections are allowed again the next group
 * commits.
 */
START_TEST(test_group_held_while_down)
{
	struct t_rec r = {0};
	struct t_fix f;
	struct pg *admin;
	char err[256];

	NEED_CLUSTER();
	t_fix_open(&f, "sp_down", 0);
	admin = t_connect(pg_url);
	t_sql(admin, "ALTER DATABASE sp_down ALLOW_CONNECTIONS false", NULL);
	t_kill_group_conn(&f);

	t_insert_rows(f.st, &r, 2, 1, -1);
	t_run_until(&r.done, "the held group's callbacks");
	ck_assert_uint_eq(r.cb_ok, 0);
	ck_assert_uint_eq(r.answer_errs, 2);
	ck_assert_uint_eq(r.answers_at_first_cb, 2);
	ck_assert_int_eq(store_ping(f.st, err, sizeof(err)), -1);

	t_sql(admin, "ALTER DATABASE sp_down ALLOW_CONNECTIONS true", NULL);
	t_insert_rows(f.st, &r, 3, 10, -1);
	t_run_until(&r.done, "the next group's callbacks");
	ck_assert_uint_eq(r.cb_ok, 3);
	ck_assert_int_eq(t_items(f.pg), 3);
	pg_free(admin);
	t_fix_close(&f);
}
END_TEST

/*
 * synchronous_commit turned off for the database while the node runs: the
 * reconnected group connection is found not durable (ping fails, groups
 * fail), and durable again after the setting is reset.
 */
START_TEST(test_durability_rechecked)
{
	struct t_rec r = {0};
	struct t_fix f;
	char err[256];

	NEED_CLUSTER();
	t_fix_open(&f, "sp_dur", 0);
	t_sql(f.pg, "ALTER DATABASE sp_dur SET synchronous_commit = off", NULL);
	t_kill_group_conn(&f);
	while (store_ping(f.st, err, sizeof(err)) == 0 ||
	    strncmp(err, "database not durable: ", 22) != 0)
		t_pause();
	ck_assert_msg(strstr(err, "synchronous_commit is off") != NULL, "%s",
	    err);
	t_insert_rows(f.st, &r, 2, 1, -1);
	t_run_until(&r.done, "a group while not durable");
	ck_assert_uint_eq(r.cb_ok, 0);

	t_sql(f.pg, "ALTER DATABASE sp_dur RESET synchronous_commit", NULL);
	t_kill_group_conn(&f);
	t_wait_ping(f.st, 0);
	t_insert_rows(f.st, &r, 2, 10, -1);
	t_run_until(&r.done, "a group once durable again");
	ck_assert_uint_eq(r.cb_ok, 2);
	t_fix_close(&f);
}
END_TEST

START_TEST(test_refused_at_open)
{
	char url[512], off[600], err[512];
	struct store *st, *st2;
	struct pg *pg;

	NEED_CLUSTER();
	t_setup();
	t_db("sp_refuse", url, sizeof(url));

	snprintf(off, sizeof(off), "%s&options=-c%%20synchronous_commit%%3Doff",
	    url);
	ck_assert_ptr_null(t_open(off, "node-a", err, sizeof(err)));
	ck_assert_msg(strstr(err, "synchronous_commit is off") != NULL, "%s",
	    err);

	st = t_open_ok(url, "node-a");
	ck_assert_ptr_null(t_open(url, "node-a", err, sizeof(err)));
	ck_assert_msg(strstr(err, "node node-a is already running") != NULL,
	    "%s", err);
	/* Another name is another node. */
	st2 = t_open_ok(url, "node-b");
	store_close(st2);
	store_close(st);

	/* Refused opens left no node process behind: the name is free. */
	st = t_open_ok(url, "node-a");
	pg = t_connect(url);
	ck_assert_int_eq(t_sql_int(pg, "SELECT count(*) FROM nodes", NULL), 2);
	store_close(st);
	pg_free(pg);

	/* Incomplete configurations. */
	ck_assert_ptr_null(t_open(url, NULL, err, sizeof(err)));
	ck_assert_ptr_null(t_open(NULL, "n", err, sizeof(err)));
	t_teardown();
}
END_TEST

/* The backend holding node-a's name lock other than 'except' ("" = none). */
static const char *
t_lock_holder(struct pg *pg, const char *except)
{
	return t_sql(pg,
	    "SELECT coalesce(min(l.pid)::text, '') FROM pg_locks l"
	    " JOIN nodes n ON l.objid = n.id::integer::oid"
	    " WHERE n.name = 'node-a' AND l.locktype = 'advisory'"
	    " AND l.classid = 1867 AND l.objsubid = 2 AND l.granted"
	    " AND l.pid::text <> $1",
	    except);
}

/*
 * The queue connection's session holds the node's name lock; when it is
 * lost, the node takes the lock again on the new session, retrying while
 * another session holds it, so a second process under the name is
 * refused again.
 */
START_TEST(test_name_lock_taken_again)
{
	struct t_fix f;
	char old[16], mine[16], err[512];

	NEED_CLUSTER();
	t_fix_open(&f, "sp_relock", 0);
	snprintf(old, sizeof(old), "%s", t_lock_holder(f.pg, "0"));
	ck_assert_str_ne(old, "");
	/* The session dies, and this test's session takes the lock before
	 * the node is back (it waits for the backend to exit). */
	snprintf(mine, sizeof(mine), "%d", pg_backend_pid(f.pg));
	t_sql(f.pg,
	    "SELECT pg_terminate_backend($1::integer, 10000),"
	    " pg_advisory_lock(1867, (SELECT id FROM nodes"
	    " WHERE name = 'node-a')::integer)",
	    old);
	ck_assert_str_eq(t_lock_holder(f.pg, "0"), mine);
	/* The node is back and tries; once the lock is free it has it. */
	while (t_sql_int(f.pg,
		   "SELECT count(*) FROM pg_stat_activity WHERE datname ="
		   " current_database() AND pid <> pg_backend_pid()",
		   NULL) < 2)
		t_pause();
	t_pause();
	t_sql(f.pg,
	    "SELECT pg_advisory_unlock(1867, (SELECT id FROM nodes"
	    " WHERE name = 'node-a')::integer)",
	    NULL);
	while (strcmp(t_lock_holder(f.pg, mine), "") == 0)
		t_pause();
	ck_assert_str_ne(t_lock_holder(f.pg, mine), old);
	ck_assert_ptr_null(t_open(f.url, "node-a", err, sizeof(err)));
	ck_assert_msg(strstr(err, "node node-a is already running") != NULL,
	    "%s", err);
	t_fix_close(&f);
}
END_TEST

START_TEST(test_sqlite_only_refused)
{
	const char *yet = "not available on the PostgreSQL store yet";
	struct out_msg *m = NULL;
	char url[512], err[256];
	struct store *st;

	NEED_CLUSTER();
	t_setup();
	t_db("sp_sqlite", url, sizeof(url));
	st = t_open_ok(url, "node-a");

	err[0] = '\0';
	ck_assert_int_eq(queue_status(st, 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, yet) != NULL, "%s", err);
	err[0] = '\0';
	ck_assert_int_eq(queue_claim(st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "s1",
				 .lease_ms = 1000,
				 .max = 1},
			     &m, err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, yet) != NULL, "%s", err);
	ck_assert_ptr_null(store_db(st));
	ck_assert_ptr_null(store_stmt(st, "SELECT 1", err, sizeof(err)));
	ck_assert_int_eq(store_write_begin(st, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, yet) != NULL, "%s", err);
	ck_assert_int_eq(store_defer_id(st, "SELECT ?1", 1, err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, yet) != NULL, "%s", err);
	ck_assert(!store_in_transaction(st));

	store_close(st);
	t_teardown();
}
END_TEST

START_TEST(test_heartbeat)
{
	char url[512], first[64], num[32];
	struct store *st;
	struct pg *pg;

	NEED_CLUSTER();
	t_setup();
	t_db("sp_heart", url, sizeof(url));
	st = t_open_ok(url, "node-a");
	pg = t_connect(url);
	snprintf(num, sizeof(num), "%lld",
	    (long long)pgq_node_id(store_pg_queue(st)));
	snprintf(first, sizeof(first), "%s",
	    t_sql(pg, "SELECT heartbeat_at FROM nodes WHERE id = $1::bigint",
		num));
	ck_assert_str_ne(first, "");
	store_attach(st, t_base, 0);
	while (t_sql_int(pg,
		   "SELECT heartbeat_at FROM nodes WHERE id = $1::bigint",
		   num) <= strtoll(first, NULL, 10))
		t_pause();
	store_close(st);
	pg_free(pg);
	t_teardown();
}
END_TEST

/* Without a server: no URL refused, an unreachable one times out. */
START_TEST(test_no_server)
{
	struct store_config cfg;
	char err[512];

	t_setup();
	memset(&cfg, 0, sizeof(cfg));
	cfg.backend = STORE_POSTGRESQL;
	cfg.node = "n";
	cfg.base = t_base;
	ck_assert_ptr_null(store_open_config(&cfg, err, sizeof(err)));
	ck_assert_msg(strstr(err, "URL") != NULL, "%s", err);
	cfg.url = "postgresql:///nowhere?host=/nonexistent-od-socket-dir";
	cfg.connect_timeout_ms = 300;
	ck_assert_ptr_null(store_open_config(&cfg, err, sizeof(err)));
	ck_assert_msg(strncmp(err, "postgresql: ", 12) == 0, "%s", err);
	t_teardown();
}
END_TEST

Suite *
store_pg_suite(void)
{
	Suite *s = suite_create("store_pg");
	TCase *tn = tcase_create("no_server");
	TCase *tc = tcase_create("cluster");

	tcase_add_test(tn, test_no_server);
	suite_add_tcase(s, tn);

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_open_migrates_and_starts);
	tcase_add_test(tc, test_group_commit_one_turn);
	tcase_add_test(tc, test_group_fails_whole);
	tcase_add_test(tc, test_groups_in_order);
	tcase_add_test(tc, test_groups_gather_behind_commit);
	tcase_add_test(tc, test_backend_terminated);
	tcase_add_test(tc, test_group_spans_reconnection);
	tcase_add_test(tc, test_group_held_while_down);
	tcase_add_test(tc, test_durability_rechecked);
	tcase_add_test(tc, test_refused_at_open);
	tcase_add_test(tc, test_name_lock_taken_again);
	tcase_add_test(tc, test_sqlite_only_refused);
	tcase_add_test(tc, test_heartbeat);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
