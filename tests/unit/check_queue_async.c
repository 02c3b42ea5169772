/*
 * check_queue_async.c - the dispatcher's queue interface
 * (queue/queue_async.c) on its PostgreSQL side, against a throwaway
 * cluster (check_pgcluster.h), through PostgreSQL stores opened as the
 * daemon opens them (store_open_config()), two "nodes" on one loop:
 *
 *  - a claim answers with its messages and a deadline, is durable at
 *    once (qa_when_durable()), and the opt-out check reads what another
 *    connection committed after the claim;
 *  - results: a batch recorded sent, a retry, a release and a failure
 *    recorded; a result for a message no longer this node's (its lease
 *    swept, claimed by the other node) is dropped, not an error (n = 0,
 *    ok false with no why);
 *  - expiry names each message's route; the next due time, or none;
 *  - the email bounce count; a carrier opt-out with its consent event;
 *  - route leases: each route held by one node at a time, reported
 *    through the changed callback with its epoch; after a release the
 *    other node takes it with a new epoch;
 *  - qa_busy() while statements are pending, qa_on_idle() once all
 *    answered.
 *
 * The SQLite side is the dispatcher's own tests (the integration suite:
 * test_dispatch_batch.py and the others run on it unchanged). No timing
 * assertions: states only. Skipped, with the reason printed, when
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
queue_async_suite(void)
{
	return ckpg_not_built_suite("queue_async");
}

#else /* HAVE_LIBPQ */

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "check_pgcluster.h"
#include "message.h"
#include "pg.h"
#include "queue_async.h"
#include "store.h"

static char pg_url[512]; /* "" = no cluster: the tests skip */
static struct event_base *t_base;

static void
cluster_start(void)
{
	ckpg_start("check_queue_async", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_queue_async", pg_url);
}

/* The test database's connection, for setup and checks. */
static struct pg *t_pg;

static const char *
t_sql(const char *sql)
{
	return ckpg_sql(t_base, t_pg, sql, NULL);
}

/* A fresh database 'db', its URL in url, and t_pg connected to it. */
static void
t_db(const char *db, char *url, size_t urllen)
{
	struct pg *pg = ckpg_connect(t_base, pg_url);
	char sql[128];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
	ckpg_sql(t_base, pg, sql, NULL);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	ckpg_sql(t_base, pg, sql, NULL);
	pg_free(pg);
	ckpg_db_url(pg_url, db, url, urllen);
	t_pg = ckpg_connect(t_base, url);
}

/* Ends a test: its connection, then its loop. */
static void
t_end(void)
{
	pg_free(t_pg);
	t_pg = NULL;
	event_base_free(t_base);
}

/* A node: a PostgreSQL store opened as the daemon opens it, and its qa. */
struct t_node {
	struct store *st;
	struct qa *qa;
};

static void
t_node_open(struct t_node *n, const char *url, const char *name)
{
	char err[512];

	n->st = store_open_config(
	    &(struct store_config){.backend = STORE_POSTGRESQL,
		.url = url,
		.node = name,
		.base = t_base},
	    err, sizeof(err));
	ck_assert_msg(n->st != NULL, "store_open_config %s: %s", name, err);
	store_attach(n->st, t_base, 0);
	n->qa = qa_new(n->st, t_base);
}

static void
t_on_idle(void *arg)
{
	*(bool *)arg = true;
}

/*
 * Closes a node as the daemon stops: its routes released, every pending
 * operation answered (a route tick's acquire may be in flight; freed
 * before its answer, it would never be), then the qa and the store.
 */
static void
t_node_close(struct t_node *n)
{
	bool idle = false;

	qa_routes_release(n->qa);
	if (qa_busy(n->qa)) {
		qa_on_idle(n->qa, t_on_idle, &idle);
		ckpg_run_until(t_base, &idle, "the node's operations answer");
	}
	qa_free(n->qa);
	store_close(n->st);
}

/* A copy of one answer. */
struct t_ans {
	bool done;
	char error[512];
	size_t n;
	int64_t id, deadline, due;
	int64_t ids[64];
	bool ok[64], why[64], sup[64];
	size_t each; /* qa_expire(): messages heard of */
	char routes[256];
};

static void
t_on(void *arg, const struct qa_answer *a)
{
	struct t_ans *t = arg;
	size_t i;

	ck_assert(!t->done);
	t->done = true;
	if (a->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", a->error);
	t->n = a->n;
	t->id = a->id;
	t->deadline = a->deadline;
	t->due = a->due;
	for (i = 0; i < a->n && i < 64; i++) {
		if (a->msgs != NULL) {
			t->ids[i] = a->msgs[i]->id;
			out_msg_free(a->msgs[i]);
		}
		if (a->sup != NULL)
			t->sup[i] = a->sup[i];
	}
	for (i = 0; a->ok != NULL && i < a->n && i < 64; i++) {
		t->ok[i] = a->ok[i];
		t->why[i] = a->why[i] != NULL;
	}
}

static void
t_wait(struct t_ans *t, const char *what)
{
	ckpg_run_until(t_base, &t->done, what);
	ck_assert_msg(t->error[0] == '\0', "%s: %s", what, t->error);
}

static void
t_claim(struct t_node *n, unsigned lease_ms, size_t max, struct t_ans *a)
{
	memset(a, 0, sizeof(*a));
	qa_claim(n->qa,
	    &(struct queue_claim_req){.ch = CHANNEL_SMS,
		.sender = "s1",
		.now = msg_now_ms(),
		.lease_ms = lease_ms,
		.max = max},
	    t_on, a);
	t_wait(a, "claim");
}

static size_t
t_mark(struct t_node *n, const struct qa_result *r)
{
	struct t_ans a = {0};

	qa_mark(n->qa, r, t_on, &a);
	t_wait(&a, "mark");
	ck_assert_int_eq(a.id, r->id);
	return a.n;
}

static void
t_enqueue(int n)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	    "INSERT INTO messages (direction, channel, sender, to_addr, body,"
	    " status, priority, next_attempt_at, created_at, updated_at)"
	    " SELECT 'out', 'sms', 's1', '+1555' || lpad(i::text, 7, '0'),"
	    " 'hello', 'queued', 5, 0, 0, 0 FROM generate_series(1, %d) AS i",
	    n);
	t_sql(sql);
}

static void
t_durable(void *arg, bool ok)
{
	*(int *)arg = ok ? 1 : -1;
}

START_TEST(test_claim_check_results)
{
	struct t_node a;
	struct t_ans c, x;
	struct queue_sent v[2];
	const char *to[3];
	char url[600];
	int durable = 0;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_db("qa_results", url, sizeof(url));
	t_node_open(&a, url, "a");
	t_enqueue(5);
	t_sql("INSERT INTO members (phone, created_at, updated_at) VALUES"
	      " ('+15550000002', 0, 0)");
	t_claim(&a, 600000, 10, &c);
	ck_assert_uint_eq(c.n, 5);
	ck_assert(c.deadline > msg_now_ms());
	/* Committed before it answered: durable at once. */
	qa_when_durable(a.qa, t_durable, &durable);
	ck_assert_int_eq(durable, 1);
	/* A STOP committed after the claim is seen by the check. */
	t_sql("INSERT INTO sms_optout (member_id, opted_out_at, source)"
	      " SELECT id, 0, 'keyword' FROM members");
	to[0] = "+15550000001";
	to[1] = "+15550000002";
	to[2] = "+15550000003";
	memset(&x, 0, sizeof(x));
	qa_suppressed(a.qa, CHANNEL_SMS, to, 3, t_on, &x);
	ck_assert(qa_busy(a.qa));
	t_wait(&x, "opt-out check");
	ck_assert(!x.sup[0] && x.sup[1] && !x.sup[2]);
	/* Results: 1 and 3 sent, 2 suppressed, 4 retried, 5 released. */
	v[0] = (struct queue_sent){.id = c.ids[0],
	    .provider = "fake",
	    .provider_id = "p1"};
	v[1] = (struct queue_sent){.id = c.ids[2],
	    .provider = "fake",
	    .provider_id = "p3"};
	memset(&x, 0, sizeof(x));
	qa_mark_sent(a.qa, v, 2, msg_now_ms(), t_on, &x);
	t_wait(&x, "mark sent");
	ck_assert_uint_eq(x.n, 2);
	ck_assert(x.ok[0] && x.ok[1]);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct qa_result){.id = c.ids[1],
				  .to = MSG_ST_SUPPRESSED,
				  .text = "recipient opted out"}),
	    1);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct qa_result){.id = c.ids[3],
				  .to = MSG_ST_QUEUED,
				  .next_attempt_at = msg_now_ms() + 3600000,
				  .code = 503,
				  .text = "busy",
				  .now = msg_now_ms()}),
	    1);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct qa_result){.id = c.ids[4],
				  .to = MSG_ST_QUEUED,
				  .release = true}),
	    1);
	ck_assert_str_eq(t_sql("SELECT string_agg(status || ',' || attempts,"
			       " ';' ORDER BY id) FROM messages"),
	    "sent,1;suppressed,0;sent,1;queued,1;queued,0");
	/* Due: the released one now, so the next due time is not ahead. */
	memset(&x, 0, sizeof(x));
	qa_next_due(a.qa, t_on, &x);
	t_wait(&x, "next due");
	ck_assert(x.due != 0 && x.due <= msg_now_ms() + 1000);
	t_node_close(&a);
	t_end();
}
END_TEST

/*
 * A node whose claim's lease ran out and was swept, its message claimed
 * by the other node: its late results are dropped (n = 0; ok false and
 * no why), the other node's stand.
 */
START_TEST(test_dropped_results)
{
	struct t_node a, b;
	struct t_ans c1, c2, x;
	struct queue_sent v;
	char url[600];

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_db("qa_dropped", url, sizeof(url));
	t_node_open(&a, url, "a");
	t_node_open(&b, url, "b");
	t_enqueue(1);
	t_claim(&a, 600000, 10, &c1);
	ck_assert_uint_eq(c1.n, 1);
	/* The lease ends (as if a's node stalled); b takes the message. */
	t_sql("UPDATE messages SET lease_until = 0");
	t_sql("UPDATE messages SET status = 'queued', lease_owner = NULL,"
	      " lease_until = NULL");
	t_claim(&b, 600000, 10, &c2);
	ck_assert_uint_eq(c2.n, 1);
	v = (struct queue_sent){.id = c1.ids[0],
	    .provider = "fake",
	    .provider_id = "late"};
	memset(&x, 0, sizeof(x));
	qa_mark_sent(a.qa, &v, 1, msg_now_ms(), t_on, &x);
	t_wait(&x, "late mark sent");
	ck_assert_uint_eq(x.n, 0);
	ck_assert(!x.ok[0] && !x.why[0]);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct qa_result){.id = c1.ids[0],
				  .to = MSG_ST_FAILED,
				  .code = 21211}),
	    0);
	v.provider_id = "b's";
	memset(&x, 0, sizeof(x));
	qa_mark_sent(b.qa, &v, 1, msg_now_ms(), t_on, &x);
	t_wait(&x, "mark sent");
	ck_assert(x.ok[0]);
	ck_assert_str_eq(t_sql(
			     "SELECT status || ',' || provider_message_id FROM"
			     " messages"),
	    "sent,b's");
	t_node_close(&a);
	t_node_close(&b);
	t_end();
}
END_TEST

static void
t_each(void *arg, int64_t id, enum channel ch, const char *sender)
{
	struct t_ans *t = arg;
	size_t len = strlen(t->routes);

	(void)id;
	t->each++;
	snprintf(t->routes + len, sizeof(t->routes) - len, "%s%s:%s",
	    len > 0 ? "," : "", channel_to_text(ch), sender ? sender : "");
}

START_TEST(test_expire_email)
{
	struct t_node a;
	struct t_ans x;
	char url[600];
	int i;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_db("qa_expire", url, sizeof(url));
	t_node_open(&a, url, "a");
	t_sql("INSERT INTO messages (direction, channel, sender, to_addr, body,"
	      " status, priority, next_attempt_at, expires_at, created_at,"
	      " updated_at) VALUES ('out', 'sms', 's1', '+15550000001', 'x',"
	      " 'queued', 5, 0, 1, 0, 0)");
	memset(&x, 0, sizeof(x));
	qa_expire(a.qa, msg_now_ms(), t_each, t_on, &x);
	t_wait(&x, "expire");
	ck_assert_uint_eq(x.n, 1);
	ck_assert_uint_eq(x.each, 1);
	ck_assert_str_eq(x.routes, "sms:s1");
	memset(&x, 0, sizeof(x));
	qa_next_due(a.qa, t_on, &x);
	t_wait(&x, "next due, none");
	ck_assert_int_eq(x.due, 0);
	t_sql("INSERT INTO members (email, created_at, updated_at) VALUES"
	      " ('b@example.org', 0, 0)");
	for (i = 0; i < 2; i++) {
		memset(&x, 0, sizeof(x));
		qa_email_result(a.qa,
		    &(struct qa_email){.address = "b@example.org",
			.limit = 2,
			.now = msg_now_ms()},
		    t_on, &x);
		t_wait(&x, "email failure");
		ck_assert_uint_eq(x.n, i == 1 ? 1 : 0);
	}
	ck_assert_str_eq(t_sql("SELECT bouncing FROM members"), "1");
	t_node_close(&a);
	t_end();
}
END_TEST

/*
 * A carrier opt-out (Twilio 21610) recorded by the dispatcher: the member
 * created when none has the number, its opt-out and one consent event
 * naming the message; a second one changes nothing (n = 0); email
 * addresses lower-cased, an existing member reused.
 */
START_TEST(test_member_optout)
{
	struct t_node a;
	struct t_ans x;
	char url[600];
	int i;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_db("qa_optout", url, sizeof(url));
	t_node_open(&a, url, "a");
	t_sql("INSERT INTO members (email, created_at, updated_at) VALUES"
	      " ('c@example.org', 0, 0)");
	for (i = 0; i < 2; i++) {
		memset(&x, 0, sizeof(x));
		qa_member_optout(a.qa,
		    &(struct qa_optout){.ch = CHANNEL_SMS,
			.address = "+15550000009",
			.source = "provider",
			.message_id = 42},
		    t_on, &x);
		t_wait(&x, "sms opt-out");
		ck_assert_uint_eq(x.n, i == 0 ? 1 : 0);
	}
	memset(&x, 0, sizeof(x));
	qa_member_optout(a.qa,
	    &(struct qa_optout){.ch = CHANNEL_EMAIL,
		.address = "C@Example.org",
		.source = "provider"},
	    t_on, &x);
	t_wait(&x, "email opt-out");
	ck_assert_uint_eq(x.n, 1);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM members"), "2");
	ck_assert_str_eq(t_sql("SELECT string_agg(m.phone, ',') FROM members m"
			       " JOIN sms_optout o ON o.member_id = m.id"
			       " WHERE o.source = 'provider'"),
	    "+15550000009");
	ck_assert_str_eq(t_sql("SELECT string_agg(m.email, ',') FROM members m"
			       " JOIN email_optout o ON o.member_id = m.id"),
	    "c@example.org");
	ck_assert_str_eq(t_sql("SELECT string_agg(channel || ':' || action ||"
			       " ':' || source || ':' ||"
			       " coalesce(message_id::text, '-'), ',' ORDER BY"
			       " id) FROM consent_events"),
	    "sms:opt_out:provider:42,email:opt_out:provider:-");
	t_node_close(&a);
	t_end();
}
END_TEST

/* What the route callbacks of one node heard. */
struct t_routes {
	int changes;
	bool held[2];
	bool any; /* holds a route */
	int64_t epoch[2];
};

static void
t_route_changed(void *arg, size_t i, bool held, int64_t epoch)
{
	struct t_routes *t = arg;

	ck_assert_uint_lt(i, 2);
	t->changes++;
	t->held[i] = held;
	t->any = t->held[0] || t->held[1];
	if (held)
		t->epoch[i] = epoch;
}

static void
t_idle(void *arg)
{
	*(bool *)arg = true;
}

/*
 * Two routes, two nodes: each route held by one node at a time (the fair
 * share gives each node one); released at a node's graceful stop, the
 * other node takes it with a new epoch at its next renewal: the stopping
 * node left (heartbeat_at 0), so the share counts it no more.
 */
START_TEST(test_route_leases)
{
	const struct qa_route routes[2] = {{.ch = CHANNEL_SMS, .sender = "s1"},
	    {.ch = CHANNEL_EMAIL}};
	struct t_routes ra = {0}, rb = {0};
	struct t_node a, b;
	char url[600];
	bool idle = false;
	int64_t ea, eb;
	size_t i, mine = 0;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_db("qa_routes", url, sizeof(url));
	t_node_open(&a, url, "a");
	t_node_open(&b, url, "b");
	qa_routes_start(a.qa, routes, 2, t_route_changed, &ra);
	qa_routes_start(b.qa, routes, 2, t_route_changed, &rb);
	/* Each node gets one (both are live: the share is one each). */
	ckpg_run_until(t_base, &ra.any, "a holds a route");
	ckpg_run_until(t_base, &rb.any, "b holds a route");
	for (i = 0; i < 2; i++) {
		ck_assert(!(qa_route_held(a.qa, i, &ea) &&
		    qa_route_held(b.qa, i, &eb)));
		if (qa_route_held(a.qa, i, NULL))
			mine = i;
	}
	ck_assert(qa_route_held(a.qa, mine, &ea));
	ck_assert(!qa_route_held(b.qa, mine, NULL));
	/* a stops: releases; b takes a's route with the next epoch. */
	qa_on_idle(a.qa, t_idle, &idle);
	qa_routes_release(a.qa);
	ck_assert(!qa_route_held(a.qa, mine, NULL));
	ckpg_run_until(t_base, &idle, "a's releases");
	ck_assert(!qa_busy(a.qa));
	/* a left: the fair share counts it no more. */
	ck_assert_str_eq(
	    t_sql("SELECT heartbeat_at FROM nodes WHERE name = 'a'"), "0");
	ckpg_run_until(t_base, &rb.held[mine], "b takes a's route");
	ck_assert(qa_route_held(b.qa, mine, &eb));
	ck_assert_int_eq(eb, ea + 1);
	ck_assert_int_eq(rb.epoch[mine], eb);
	t_node_close(&a);
	t_node_close(&b);
	t_end();
}
END_TEST

Suite *
queue_async_suite(void)
{
	Suite *s = suite_create("queue_async");
	TCase *tc = tcase_create("cluster");

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_claim_check_results);
	tcase_add_test(tc, test_dropped_results);
	tcase_add_test(tc, test_expire_email);
	tcase_add_test(tc, test_member_optout);
	tcase_add_test(tc, test_route_leases);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
