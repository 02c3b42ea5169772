/*
 * check_pg.c - unit tests of the non-blocking PostgreSQL driver
 * (queue/pg.c) against a throwaway cluster (check_pgcluster.c:
 * tests/pg.sh, initdb in a temp dir, a Unix socket only, removed at the
 * end and by a watchdog if this process dies): connecting, 1,000
 * inserts pipelined in one transaction, an error in the middle of a
 * pipeline answered to its own query while the others are answered, several
 * statements in one PG_SIMPLE query between pipelined ones, reconnection after
 * pg_ctl restart with its LISTEN re-issued, queries lost in flight (failed, or
 * resent when idempotent), LISTEN/NOTIFY, a loop that keeps running while a
 * query sleeps on the server, and what happens without a server at all.
 *
 * The cluster tests are skipped, with the reason printed, when
 * PostgreSQL's server binaries are missing (pg.sh check); without libpq
 * (configure --without-postgresql) the suite holds one test that says so.
 */
#include "autoconf.h"

#include <stdio.h>

#include <check.h>

#include "check_suites.h"

#ifndef HAVE_LIBPQ

#include "check_pgcluster.h"

Suite *
pg_suite(void)
{
	return ckpg_not_built_suite("pg");
}

#else /* HAVE_LIBPQ */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "check_pgcluster.h"
#include "pg.h"

#define T_MAX_ANSWERS 1100
#define T_DEADLINE_S  60

static char pg_url[512]; /* "" = no cluster: the cluster tests skip */

/* Unchecked fixture (runs once, in the runner's process). */
static void
cluster_start(void)
{
	ckpg_start("check_pg", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_pg", pg_url);
}

#define NEED_CLUSTER()                 \
	do {                           \
		if (pg_url[0] == '\0') \
			return;        \
	} while (0)

/* ---- a small harness: one loop, answers recorded in order ------------- */

struct t_answer {
	int tag;
	char value[128]; /* first row, first column; "" for none */
	char error[256];
	char sqlstate[8];
	char cmd[32]; /* PQcmdStatus */
	bool maybe_ran;
	size_t in_flight; /* the driver's in-flight count when answered */
};

struct t_ctx;

struct t_tag {
	struct t_ctx *ctx;
	int tag;
};

struct t_ctx {
	struct event_base *base;
	struct pg *pg;
	struct t_answer answers[T_MAX_ANSWERS];
	size_t nanswers;
	int ups, downs;
	char last_down[256];
	char notified[128];
	int notifications;
	int ticks;
	bool timed_out;
	struct t_tag tags[T_MAX_ANSWERS];
};

static void
t_done(void *arg, const struct pg_answer *a)
{
	struct t_tag *t = arg;
	struct t_ctx *c = t->ctx;
	struct t_answer *ta;
	struct pg_stats st;

	ck_assert_uint_lt(c->nanswers, T_MAX_ANSWERS);
	ta = &c->answers[c->nanswers++];
	memset(ta, 0, sizeof(*ta));
	ta->tag = t->tag;
	ta->maybe_ran = a->maybe_ran;
	if (a->error != NULL)
		snprintf(ta->error, sizeof(ta->error), "%s", a->error);
	if (a->sqlstate != NULL)
		snprintf(ta->sqlstate, sizeof(ta->sqlstate), "%s", a->sqlstate);
	if (a->res != NULL) {
		snprintf(ta->cmd, sizeof(ta->cmd), "%s",
		    PQcmdStatus((PGresult *)a->res));
		if (PQntuples(a->res) > 0 && PQnfields(a->res) > 0)
			snprintf(ta->value, sizeof(ta->value), "%s",
			    PQgetvalue(a->res, 0, 0));
	}
	pg_get_stats(c->pg, &st);
	ta->in_flight = st.in_flight;
}

static void
t_state(void *arg, enum pg_state st, const char *why)
{
	struct t_ctx *c = arg;

	if (st == PG_UP)
		c->ups++;
	if (st == PG_DOWN) {
		c->downs++;
		snprintf(c->last_down, sizeof(c->last_down), "%s",
		    why != NULL ? why : "");
	}
}

static void
t_notify(void *arg, const char *channel, const char *payload)
{
	struct t_ctx *c = arg;

	ck_assert_str_eq(channel, "od_test events");
	snprintf(c->notified, sizeof(c->notified), "%s", payload);
	c->notifications++;
}

static void
t_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct t_ctx *c = arg;

	(void)fd;
	(void)what;
	c->timed_out = true;
	event_base_loopbreak(c->base);
}

static struct pg *
t_connect(struct t_ctx *c, const char *url, unsigned wait_timeout_ms)
{
	struct pg_config cfg;
	char err[256];
	struct pg *pg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.url = url;
	cfg.reconnect_min_ms = 50;
	cfg.reconnect_max_ms = 400;
	cfg.wait_timeout_ms = wait_timeout_ms;
	cfg.on_state = t_state;
	cfg.arg = c;
	pg = pg_new(c->base, &cfg, err, sizeof(err));
	ck_assert_msg(pg != NULL, "pg_new: %s", err);
	return pg;
}

/* A context on the heap (its answers are too big for a stack). */
static struct t_ctx *
t_init(void)
{
	struct t_ctx *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	c->base = event_base_new();
	ck_assert_ptr_nonnull(c->base);
	return c;
}

static void
t_fini(struct t_ctx *c)
{
	pg_free(c->pg);
	event_base_free(c->base);
	free(c);
}

/* Runs the loop until pred(c) holds; fails the test at the deadline. */
static void
t_run_until(struct t_ctx *c, bool (*pred)(struct t_ctx *, size_t), size_t n,
    const char *what)
{
	struct event *dl = evtimer_new(c->base, t_deadline, c);
	struct timeval tv = {T_DEADLINE_S, 0};

	c->timed_out = false;
	evtimer_add(dl, &tv);
	while (!pred(c, n) && !c->timed_out)
		event_base_loop(c->base, EVLOOP_ONCE);
	event_free(dl);
	ck_assert_msg(!c->timed_out, "timed out waiting for %s", what);
}

static bool
t_answered(struct t_ctx *c, size_t n)
{
	return c->nanswers >= n;
}

static bool
t_ups(struct t_ctx *c, size_t n)
{
	return (size_t)c->ups >= n;
}

static bool
t_downs(struct t_ctx *c, size_t n)
{
	return (size_t)c->downs >= n;
}

static bool
t_notified(struct t_ctx *c, size_t n)
{
	return (size_t)c->notifications >= n;
}

/* Sends sql with up to 2 parameters; its answer is recorded under tag. */
static void
t_send(struct t_ctx *c, struct pg *pg, int tag, const char *sql, const char *p1,
    unsigned flags)
{
	struct pg_query q;
	const char *values[1] = {p1};
	char err[256];

	ck_assert_int_lt(tag, T_MAX_ANSWERS);
	c->tags[tag].ctx = c;
	c->tags[tag].tag = tag;
	memset(&q, 0, sizeof(q));
	q.sql = sql;
	q.nparams = p1 != NULL ? 1 : 0;
	q.values = p1 != NULL ? values : NULL;
	q.flags = flags;
	q.done = t_done;
	q.arg = &c->tags[tag];
	ck_assert_msg(pg_send(pg, &q, err, sizeof(err)) == 0, "pg_send: %s",
	    err);
}

/* One query on its own, run to its answer; returns the answer. */
static const struct t_answer *
t_query(struct t_ctx *c, const char *sql)
{
	size_t n = c->nanswers;

	t_send(c, c->pg, 0, sql, NULL, 0);
	t_run_until(c, t_answered, n + 1, sql);
	ck_assert_msg(c->answers[n].error[0] == '\0', "%s: %s", sql,
	    c->answers[n].error);
	return &c->answers[n];
}

/* A context connected to the cluster, its first answer consumed. */
static struct t_ctx *
t_up(void)
{
	struct t_ctx *c = t_init();

	c->pg = t_connect(c, pg_url, 0);
	t_query(c, "SELECT 1");
	c->nanswers = 0;
	return c;
}

/*
 * Runs sql (with one parameter) on another connection, on its own loop,
 * to its answer; returns the first value (static storage).
 */
static const char *
t_other(const char *sql, const char *p1)
{
	static char value[128];
	struct t_ctx *o = t_up();

	t_send(o, o->pg, 1, sql, p1, 0);
	t_run_until(o, t_answered, 1, sql);
	ck_assert_msg(o->answers[0].error[0] == '\0', "%s: %s", sql,
	    o->answers[0].error);
	snprintf(value, sizeof(value), "%s", o->answers[0].value);
	t_fini(o);
	return value;
}

/* ---- the tests ---------------------------------------------------------- */

START_TEST(test_connect_and_query)
{
	struct t_ctx *c;
	struct pg_stats st;

	NEED_CLUSTER();
	c = t_init();
	c->pg = t_connect(c, pg_url, 0);
	t_send(c, c->pg, 1, "SELECT $1::int + 1", "41", 0);
	t_send(c, c->pg, 2, "SHOW synchronous_commit", NULL, 0);
	t_send(c, c->pg, 3, "SELECT NULL::text", NULL, 0);
	t_run_until(c, t_answered, 3, "three answers");
	ck_assert_int_eq(c->ups, 1);
	ck_assert_int_eq(c->answers[0].tag, 1);
	ck_assert_str_eq(c->answers[0].value, "42");
	ck_assert_str_eq(c->answers[1].value, "on");
	ck_assert_str_eq(c->answers[2].error, "");
	ck_assert_int_gt(pg_backend_pid(c->pg), 0);
	pg_get_stats(c->pg, &st);
	ck_assert_uint_eq(st.connects, 1);
	ck_assert_uint_eq(st.sent, 3);
	ck_assert_uint_eq(st.waiting + st.in_flight, 0);
	ck_assert_int_eq(st.state, PG_UP);
	t_fini(c);
}
END_TEST

START_TEST(test_pipeline_1000_one_transaction)
{
	static char nums[1000][8];
	struct t_ctx *c;
	const struct t_answer *a;
	int i;

	NEED_CLUSTER();
	c = t_init();
	c->pg = t_connect(c, pg_url, 0);
	t_query(c, "DROP TABLE IF EXISTS t_pipe");
	t_query(c, "CREATE TABLE t_pipe (i int PRIMARY KEY, xid text)");
	c->nanswers = 0;
	t_send(c, c->pg, 0, "BEGIN", NULL, 0);
	for (i = 0; i < 1000; i++) {
		snprintf(nums[i], sizeof(nums[i]), "%d", i);
		t_send(c, c->pg, i + 1,
		    "INSERT INTO t_pipe VALUES ($1, pg_current_xact_id()::text)",
		    nums[i], 0);
	}
	t_send(c, c->pg, 1001, "COMMIT", NULL, 0);
	t_run_until(c, t_answered, 1002, "1,002 answers");
	/* Pipelined: every query was sent before the first answer came. */
	ck_assert_uint_eq(c->answers[0].in_flight, 1001);
	for (i = 0; i < 1002; i++) {
		ck_assert_int_eq(c->answers[i].tag, i);
		ck_assert_msg(c->answers[i].error[0] == '\0', "%d: %s", i,
		    c->answers[i].error);
	}
	ck_assert_str_eq(c->answers[1].cmd, "INSERT 0 1");
	ck_assert_str_eq(c->answers[1001].cmd, "COMMIT");
	/* One transaction: every row carries the same transaction id. */
	a = t_query(c,
	    "SELECT count(*) || '/' || count(DISTINCT xid) "
	    "FROM t_pipe");
	ck_assert_str_eq(a->value, "1000/1");
	t_fini(c);
}
END_TEST

START_TEST(test_error_mid_pipeline)
{
	struct t_ctx *c;
	const struct t_answer *a;

	NEED_CLUSTER();
	c = t_init();
	c->pg = t_connect(c, pg_url, 0);
	/* Outside a transaction: only the bad query fails. */
	t_send(c, c->pg, 1, "SELECT 1", NULL, 0);
	t_send(c, c->pg, 2, "SELECT 1 / $1::int", "0", 0);
	t_send(c, c->pg, 3, "SELECT 3", NULL, 0);
	t_send(c, c->pg, 4, "SELEKT 4", NULL, 0);
	t_send(c, c->pg, 5, "SELECT 5", NULL, 0);
	t_run_until(c, t_answered, 5, "five answers");
	ck_assert_str_eq(c->answers[0].value, "1");
	ck_assert_int_eq(c->answers[1].tag, 2);
	ck_assert_str_eq(c->answers[1].sqlstate, "22012");
	ck_assert_str_eq(c->answers[1].error, "division by zero");
	ck_assert(!c->answers[1].maybe_ran);
	ck_assert_str_eq(c->answers[2].value, "3");
	ck_assert_str_eq(c->answers[2].error, "");
	ck_assert_str_eq(c->answers[3].sqlstate, "42601");
	ck_assert_str_eq(c->answers[4].value, "5");

	/* Inside one: the rest of it is refused and COMMIT rolls back. */
	t_query(c, "DROP TABLE IF EXISTS t_err");
	t_query(c, "CREATE TABLE t_err (i int)");
	c->nanswers = 0;
	t_send(c, c->pg, 1, "BEGIN", NULL, 0);
	t_send(c, c->pg, 2, "INSERT INTO t_err VALUES (1)", NULL, 0);
	t_send(c, c->pg, 3, "INSERT INTO t_err VALUES ('x')", NULL, 0);
	t_send(c, c->pg, 4, "INSERT INTO t_err VALUES (2)", NULL, 0);
	t_send(c, c->pg, 5, "COMMIT", NULL, 0);
	t_send(c, c->pg, 6, "SELECT count(*) FROM t_err", NULL, 0);
	t_run_until(c, t_answered, 6, "six answers");
	ck_assert_str_eq(c->answers[1].error, "");
	ck_assert_str_eq(c->answers[2].sqlstate, "22P02");
	ck_assert_str_eq(c->answers[3].sqlstate, "25P02");
	ck_assert_str_eq(c->answers[4].cmd, "ROLLBACK");
	ck_assert_str_eq(c->answers[5].value, "0");
	a = t_query(c, "SELECT 'still fine'");
	ck_assert_str_eq(a->value, "still fine");
	t_fini(c);
}
END_TEST

/*
 * PG_SIMPLE: several statements in one text, split by the server ($$
 * bodies, strings and comments holding semicolons), answered in order
 * with the pipelined queries around it; an error in the middle of one
 * fails it whole (an implicit transaction); afterwards the connection is
 * back in pipeline mode.
 */
START_TEST(test_simple_query)
{
	struct t_ctx *c;
	struct pg_query q;
	char err[256];
	const char *one[1] = {"1"};

	NEED_CLUSTER();
	c = t_up();
	t_send(c, c->pg, 1, "SELECT $1::int", "1", 0);
	t_send(c, c->pg, 2,
	    "CREATE TEMP TABLE t_simple (s text); -- a comment; with ';'\n"
	    "CREATE FUNCTION pg_temp.t_f() RETURNS text LANGUAGE plpgsql AS\n"
	    "$body$ BEGIN RETURN 'a;b'; END; $body$;\n"
	    "/* a block comment; */ INSERT INTO t_simple\n"
	    "    VALUES (pg_temp.t_f()), ('c;d');\n"
	    "SELECT count(*) FROM t_simple",
	    NULL, PG_SIMPLE);
	t_send(c, c->pg, 3,
	    "SELECT string_agg(s, '|' ORDER BY s) FROM t_simple", NULL, 0);
	t_send(c, c->pg, 4,
	    "INSERT INTO t_simple VALUES ('e'); SELECT 1 / 0;"
	    "INSERT INTO t_simple VALUES ('f')",
	    NULL, PG_SIMPLE);
	t_send(c, c->pg, 5, "SELECT count(*) FROM t_simple", NULL, 0);
	t_run_until(c, t_answered, 5, "five answers");
	ck_assert_int_eq(c->answers[0].tag, 1);
	ck_assert_str_eq(c->answers[0].value, "1");
	ck_assert_int_eq(c->answers[1].tag, 2);
	ck_assert_msg(c->answers[1].error[0] == '\0', "%s",
	    c->answers[1].error);
	ck_assert_str_eq(c->answers[1].value, "2"); /* the last result */
	ck_assert_str_eq(c->answers[2].value, "a;b|c;d");
	ck_assert_str_eq(c->answers[3].error, "division by zero");
	ck_assert_str_eq(c->answers[3].sqlstate, "22012");
	ck_assert_str_eq(c->answers[4].value, "2"); /* 'e' rolled back */

	/* Pipelined again: the three went out before the first answer. */
	c->nanswers = 0;
	t_send(c, c->pg, 6, "SELECT 6", NULL, 0);
	t_send(c, c->pg, 7, "SELECT 7", NULL, 0);
	t_send(c, c->pg, 8, "SELECT 8", NULL, 0);
	t_run_until(c, t_answered, 3, "three answers");
	ck_assert_uint_eq(c->answers[0].in_flight, 2);
	ck_assert_str_eq(c->answers[2].value, "8");

	memset(&q, 0, sizeof(q));
	q.sql = "SELECT $1";
	q.nparams = 1;
	q.values = one;
	q.flags = PG_SIMPLE;
	ck_assert_int_eq(pg_send(c->pg, &q, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "a PG_SIMPLE query takes no parameters");
	t_fini(c);
}
END_TEST

START_TEST(test_listen_notify)
{
	struct t_ctx *c;
	char err[256];

	NEED_CLUSTER();
	c = t_init();
	c->pg = t_connect(c, pg_url, 0);
	ck_assert_int_eq(
	    pg_listen(c->pg, "od_test events", t_notify, c, err, sizeof(err)),
	    0);
	ck_assert_int_eq(pg_listen(c->pg, "", t_notify, c, err, sizeof(err)),
	    -1);
	t_query(c, "SELECT 1"); /* the LISTEN went first */
	/* Another connection on another loop notifies. */
	t_other("SELECT pg_notify('od_test events', $1)", "hello \"world\"");
	t_run_until(c, t_notified, 1, "the notification");
	ck_assert_str_eq(c->notified, "hello \"world\"");
	/* Forgotten, a notification is dropped; listened to again while
	 * the connection is up (the LISTEN goes out at once), it comes. */
	pg_unlisten(c->pg, "od_test events", t_notify, c);
	t_other("SELECT pg_notify('od_test events', $1)", "dropped");
	t_query(c, "SELECT 1"); /* read (and dropped) by now */
	ck_assert_int_eq(c->notifications, 1);
	ck_assert_int_eq(
	    pg_listen(c->pg, "od_test events", t_notify, c, err, sizeof(err)),
	    0);
	t_query(c, "SELECT 1");
	t_other("SELECT pg_notify('od_test events', $1)", "again");
	t_run_until(c, t_notified, 2, "the notification after listening again");
	t_query(c, "SELECT 1");
	ck_assert_str_eq(c->notified, "again");
	ck_assert_int_eq(c->notifications, 2);
	t_fini(c);
}
END_TEST

/*
 * A text with parameters sent with PG_PREPARE is prepared once per
 * connection (one Parse, in the same pipeline as its first Execute), then
 * only executed; a Parse that fails answers its query with the Parse's
 * error and is tried again next time; a new connection prepares again;
 * without the flag nothing is prepared.
 */
START_TEST(test_prepared_once)
{
	struct t_ctx *c;
	struct pg_stats st;
	unsigned long before;
	int i;

	NEED_CLUSTER();
	c = t_up();
	pg_get_stats(c->pg, &st);
	before = st.parses;
	c->nanswers = 0;
	for (i = 0; i < 3; i++) {
		static const char *const v[3] = {"1", "2", "3"};

		t_send(c, c->pg, i, "SELECT $1::int + 1", v[i], PG_PREPARE);
	}
	t_send(c, c->pg, 3, "SELEC $1::int", "1", PG_PREPARE);
	t_send(c, c->pg, 4, "SELECT $1::int + 1", "41", PG_PREPARE);
	/* sent before the Parse's answer: no such statement */
	t_send(c, c->pg, 5, "SELEC $1::int", "1", PG_PREPARE);
	t_send(c, c->pg, 6, "SELECT 7", NULL, PG_PREPARE);
	t_run_until(c, t_answered, 7, "seven answers");
	ck_assert_str_eq(c->answers[0].value, "2");
	ck_assert_str_eq(c->answers[1].value, "3");
	ck_assert_str_eq(c->answers[2].value, "4");
	ck_assert_str_eq(c->answers[3].sqlstate, "42601"); /* syntax */
	ck_assert_str_eq(c->answers[4].value, "42");
	ck_assert_str_eq(c->answers[5].sqlstate, "26000");
	ck_assert_str_eq(c->answers[6].value, "7");
	/* later, parsed again: the syntax error again */
	t_send(c, c->pg, 7, "SELEC $1::int", "1", PG_PREPARE);
	t_run_until(c, t_answered, 8, "the bad text again");
	ck_assert_str_eq(c->answers[7].sqlstate, "42601");
	pg_get_stats(c->pg, &st);
	/* one for the good text, two for the bad one; none for the query
	 * without parameters */
	ck_assert_uint_eq(st.parses - before, 3);
	/* without PG_PREPARE: planned each time, nothing prepared */
	t_send(c, c->pg, 8, "SELECT $1::int * 2", "21", 0);
	t_send(c, c->pg, 9, "SELECT $1::int * 2", "4", 0);
	t_run_until(c, t_answered, 10, "two unprepared answers");
	ck_assert_str_eq(c->answers[8].value, "42");
	ck_assert_str_eq(c->answers[9].value, "8");
	pg_get_stats(c->pg, &st);
	ck_assert_uint_eq(st.parses - before, 3);
	t_fini(c);
}
END_TEST

START_TEST(test_restart_reconnects)
{
	struct t_ctx *c;
	char err[256];
	const struct t_answer *a;
	struct pg_stats st;

	NEED_CLUSTER();
	c = t_init();
	c->pg = t_connect(c, pg_url, 0);
	ck_assert_int_eq(
	    pg_listen(c->pg, "od_test events", t_notify, c, err, sizeof(err)),
	    0);
	t_query(c, "SELECT 1");
	ck_assert_int_eq(ckpg_restart(pg_url), 0);
	/* The shutdown reaches us as EOF or a 57P01 on the socket. */
	t_run_until(c, t_downs, 1, "the connection to drop");
	t_run_until(c, t_ups, 2, "the reconnection");
	a = t_query(c, "SELECT 'after restart'");
	ck_assert_str_eq(a->value, "after restart");
	/* A text prepared on the lost session is prepared again. */
	{
		unsigned long p0;
		size_t n = c->nanswers;

		t_send(c, c->pg, 0, "SELECT $1::text", "before", PG_PREPARE);
		t_run_until(c, t_answered, n + 1, "prepared");
		pg_get_stats(c->pg, &st);
		p0 = st.parses;
		ck_assert_int_eq(ckpg_restart(pg_url), 0);
		t_run_until(c, t_downs, 2, "the connection to drop again");
		t_run_until(c, t_ups, 3, "the reconnection again");
		t_send(c, c->pg, 0, "SELECT $1::text", "again", PG_PREPARE);
		t_run_until(c, t_answered, n + 2, "prepared again");
		ck_assert_str_eq(c->answers[n + 1].value, "again");
		pg_get_stats(c->pg, &st);
		ck_assert_uint_eq(st.parses, p0 + 1);
	}
	pg_get_stats(c->pg, &st);
	ck_assert_uint_ge(st.connects, 2);
	/* The LISTEN was issued again on the new connection. */
	t_query(c, "SELECT pg_notify('od_test events', 'again')");
	t_run_until(c, t_notified, 1, "a notification after the restart");
	ck_assert_str_eq(c->notified, "again");
	t_fini(c);
}
END_TEST

START_TEST(test_lost_in_flight)
{
	struct t_ctx *c;
	char pid[16];
	struct pg_stats st;
	size_t i;
	int seen = 0;

	NEED_CLUSTER();
	c = t_up();
	snprintf(pid, sizeof(pid), "%d", pg_backend_pid(c->pg));
	t_send(c, c->pg, 1, "SELECT pg_sleep(60)", NULL, 0);
	t_send(c, c->pg, 2, "SELECT 42", NULL, PG_IDEMPOTENT);
	t_send(c, c->pg, 3, "SELECT 43", NULL, 0);
	event_base_loop(c->base, EVLOOP_NONBLOCK); /* sends them */
	pg_get_stats(c->pg, &st);
	ck_assert_uint_eq(st.in_flight, 3);
	ck_assert_str_eq(t_other("SELECT pg_terminate_backend($1::int)", pid),
	    "t");
	t_run_until(c, t_answered, 3, "three answers");
	for (i = 0; i < 3; i++) {
		const struct t_answer *a = &c->answers[i];

		if (a->tag == 1) {
			/* Killed while running: may or may not have run. */
			ck_assert(a->maybe_ran);
			ck_assert_msg(strstr(a->error, "connection lost") !=
				NULL,
			    "%s", a->error);
			seen |= 1;
		} else if (a->tag == 3) {
			ck_assert(a->maybe_ran);
			ck_assert_msg(
			    strncmp(a->error, "connection lost", 15) == 0, "%s",
			    a->error);
			seen |= 4;
		} else {
			/* Idempotent: sent again once reconnected. */
			ck_assert_int_eq(a->tag, 2);
			ck_assert_str_eq(a->error, "");
			ck_assert_str_eq(a->value, "42");
			seen |= 2;
		}
	}
	ck_assert_int_eq(seen, 7);
	ck_assert_int_ge(c->ups, 2);
	t_fini(c);
}
END_TEST

static void
t_tick(evutil_socket_t fd, short what, void *arg)
{
	struct t_ctx *c = arg;

	(void)fd;
	(void)what;
	c->ticks++;
}

START_TEST(test_loop_never_blocks)
{
	struct t_ctx *c;
	struct event *tick;
	struct timeval tv = {0, 20000};
	char pid[16];

	NEED_CLUSTER();
	c = t_up();
	snprintf(pid, sizeof(pid), "%d", pg_backend_pid(c->pg));
	/* A query that sleeps a minute on the server... */
	t_send(c, c->pg, 1, "SELECT pg_sleep(60)", NULL, 0);
	tick = event_new(c->base, -1, EV_PERSIST, t_tick, c);
	event_add(tick, &tv);
	/* ...while the loop keeps ticking: 5 ticks, then cancel it. Were the
	 * loop stuck in the query, no tick would come and the deadline
	 * (before the minute is up) would fail the test. */
	while (c->ticks < 5 && c->nanswers == 0)
		event_base_loop(c->base, EVLOOP_ONCE);
	ck_assert_uint_eq(c->nanswers, 0);
	ck_assert_str_eq(t_other("SELECT pg_cancel_backend($1::int)", pid),
	    "t");
	t_run_until(c, t_answered, 1, "the cancelled query");
	ck_assert_str_eq(c->answers[0].sqlstate, "57014");
	ck_assert(!c->answers[0].maybe_ran);
	ck_assert_int_ge(c->ticks, 5);
	event_free(tick);
	/* The connection survived the cancel. */
	ck_assert_str_eq(t_query(c, "SELECT 'alive'")->value, "alive");
	t_fini(c);
}
END_TEST

/* No server: queries wait, then fail; pg_free answers what is left. */
START_TEST(test_no_server)
{
	struct t_ctx *c;
	struct pg_config cfg;
	char err[256];

	c = t_init();
	memset(&cfg, 0, sizeof(cfg));
	cfg.url = "postgresql://[";
	ck_assert_ptr_null(pg_new(c->base, &cfg, err, sizeof(err)));
	ck_assert_msg(strstr(err, "PostgreSQL URL") != NULL, "%s", err);
	cfg.url = "";
	ck_assert_ptr_null(pg_new(c->base, &cfg, err, sizeof(err)));

	/* Attempts (every <= 400 ms) more frequent than the sweep (every
	 * 500 ms) must not postpone it. */
	c->pg = t_connect(c,
	    "postgresql:///outreachd?host=/nonexistent-od-pg&connect_timeout=2",
	    2000);
	t_send(c, c->pg, 1, "SELECT 1", NULL, 0);
	t_run_until(c, t_answered, 1, "the wait timeout");
	ck_assert_msg(strncmp(c->answers[0].error,
			  "no connection within 2000 ms", 28) == 0,
	    "%s", c->answers[0].error);
	ck_assert(!c->answers[0].maybe_ran);
	ck_assert_int_ge(c->downs, 1);
	ck_assert_msg(strstr(c->last_down, "nonexistent-od-pg") != NULL, "%s",
	    c->last_down);
	ck_assert_int_eq(c->ups, 0);

	t_send(c, c->pg, 2, "SELECT 2", NULL, 0);
	pg_free(c->pg);
	c->pg = NULL;
	ck_assert_uint_eq(c->nanswers, 2);
	ck_assert_str_eq(c->answers[1].error, "closed");
	t_fini(c);
}
END_TEST

Suite *
pg_suite(void)
{
	Suite *s = suite_create("pg");
	TCase *tn = tcase_create("no_server");
	TCase *tc = tcase_create("cluster");

	tcase_add_test(tn, test_no_server);
	tcase_set_timeout(tn, 30);
	suite_add_tcase(s, tn);

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_connect_and_query);
	tcase_add_test(tc, test_pipeline_1000_one_transaction);
	tcase_add_test(tc, test_error_mid_pipeline);
	tcase_add_test(tc, test_simple_query);
	tcase_add_test(tc, test_listen_notify);
	tcase_add_test(tc, test_prepared_once);
	tcase_add_test(tc, test_lost_in_flight);
	tcase_add_test(tc, test_loop_never_blocks);
	tcase_add_test(tc, test_restart_reconnects);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
