/*
 * check_pg_queue.c - unit tests of the queue shared by several nodes on
 * PostgreSQL (queue/pg_queue.c) against a throwaway cluster
 * (check_pgcluster.h), with three "nodes" on one loop: three connections
 * and three pg_queue instances, as three daemons would have.
 *
 *  - 50,000 messages drained by three nodes claiming the same route side
 *    by side: each message sent exactly once, history complete; rows
 *    another node is claiming are skipped, not waited for;
 *  - one node killed mid-drain (its connection closed with a batch
 *    claimed, "sent" and never marked): the others sweep its expired
 *    leases and send everything; duplicates are exactly that batch;
 *  - a late result from a node whose lease expired and whose message was
 *    claimed again by another node is refused;
 *  - a node restarted under its name returns its own claims at start,
 *    and a second live process under the same name is refused;
 *  - a route lease is never held by two nodes at once over many rounds
 *    of acquire attempts with handovers, each with a fresh epoch; the
 *    fair share spreads routes over the live nodes (by heartbeat), and a
 *    node over its share gives the rest up on renewal;
 *  - an opt-out committed between claim and check is reported;
 *  - delivery reports kept in status_early are applied when the send is
 *    recorded; expiry of due messages and the next due time; the email
 *    bounce count.
 *
 * No timing assertions: leases are short so that the tests end soon, but
 * the assertions are on states. Each test uses its own database with the
 * schema applied by pg_migrate() (queue/pg_migrate.c). Skipped, with the reason
 * printed, when PostgreSQL's server binaries are missing; without libpq the
 * suite holds one test that says so.
 */
#include "autoconf.h"

#include <stdio.h>

#include <check.h>

#include "check_suites.h"

#ifndef HAVE_LIBPQ

#include "check_pgcluster.h"

Suite *
pg_queue_suite(void)
{
	return ckpg_not_built_suite("pg_queue");
}

#else /* HAVE_LIBPQ */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "check_pgcluster.h"
#include "message.h"
#include "pg.h"
#include "pg_migrate.h"
#include "pg_queue.h"

#define T_NODES 3
#define T_DRAIN 50000
#define T_BATCH 250
#define T_NOW	"(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

static char pg_url[512]; /* "" = no cluster: the tests skip */

static void
cluster_start(void)
{
	ckpg_start("check_pg_queue", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_pg_queue", pg_url);
}

#define NEED_CLUSTER()                 \
	do {                           \
		if (pg_url[0] == '\0') \
			return;        \
	} while (0)

/* ---- harness: one loop, synchronous waits on answers ------------------ */

/* A copy of one pgq answer. */
struct t_ans {
	bool done;
	char error[512];
	size_t n;
	int64_t *ids; /* ids, or the claimed messages' ids */
	char (*to)[MSG_ADDR_MAX];
	bool *sup;
	int64_t node_id, epoch, deadline, due_in_ms;
};

static struct event_base *t_base;

static void
t_on(void *arg, const struct pgq_answer *a)
{
	struct t_ans *t = arg;
	size_t i;

	ck_assert(!t->done);
	memset(t, 0, sizeof(*t));
	t->done = true;
	if (a->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", a->error);
	t->n = a->n;
	t->ids = calloc(a->n + 1, sizeof(*t->ids));
	t->to = calloc(a->n + 1, sizeof(*t->to));
	for (i = 0; i < a->n; i++) {
		if (a->msgs != NULL) {
			t->ids[i] = a->msgs[i]->id;
			snprintf(t->to[i], sizeof(t->to[i]), "%s",
			    a->msgs[i]->to);
			out_msg_free(a->msgs[i]);
		} else if (a->ids != NULL)
			t->ids[i] = a->ids[i];
		else if (a->moved != NULL) {
			t->ids[i] = a->moved[i].id;
			snprintf(t->to[i], sizeof(t->to[i]), "%s:%s",
			    channel_to_text(a->moved[i].ch),
			    a->moved[i].sender != NULL ? a->moved[i].sender
						       : "");
		}
	}
	if (a->sup != NULL) {
		t->sup = calloc(a->n + 1, sizeof(*t->sup));
		memcpy(t->sup, a->sup, a->n * sizeof(*t->sup));
	}
	t->node_id = a->node_id;
	t->epoch = a->epoch;
	t->deadline = a->deadline;
	t->due_in_ms = a->due_in_ms;
}

static void
t_ans_clear(struct t_ans *t)
{
	free(t->ids);
	free(t->to);
	free(t->sup);
	memset(t, 0, sizeof(*t));
}

/* Runs the loop until *flag; fails the test at the (generous) deadline. */
static void
t_run_until(const bool *flag, const char *what)
{
	ckpg_run_until(t_base, flag, what);
}

/* Waits for t's answer and fails on an error. */
static void
t_wait_ok(struct t_ans *t, const char *what)
{
	t_run_until(&t->done, what);
	ck_assert_msg(t->error[0] == '\0', "%s: %s", what, t->error);
}

static struct pg *
t_connect(const char *url)
{
	return ckpg_connect(t_base, url);
}

/* Runs sql (one optional parameter) on pg; returns the first value. */
static const char *
t_sql(struct pg *pg, const char *sql, const char *p1)
{
	return ckpg_sql(t_base, pg, sql, p1);
}

static int64_t
t_sql_int(struct pg *pg, const char *sql, const char *p1)
{
	return strtoll(t_sql(pg, sql, p1), NULL, 10);
}

struct t_mig {
	bool done;
	char error[512];
};

static void
t_migrated(void *arg, const struct pg_migrate_result *r)
{
	struct t_mig *m = arg;

	m->done = true;
	if (r->error != NULL)
		snprintf(m->error, sizeof(m->error), "%s", r->error);
}

/*
 * A fresh database 'db' with the schema applied the way the store will:
 * pg_migrate() with the embedded queue/schema/pg/ migrations. Its URL in
 * url.
 */
static void
t_db(const char *db, char *url, size_t urllen)
{
	struct t_mig m = {0};
	struct pg *pg;
	char sql[128], err[256];

	pg = t_connect(pg_url);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
	t_sql(pg, sql, NULL);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	t_sql(pg, sql, NULL);
	pg_free(pg);
	ckpg_db_url(pg_url, db, url, urllen);
	pg = t_connect(url);
	ck_assert_msg(pg_migrate(pg,
			  &(struct pg_migrate_req){.node = "check_pg_queue",
			      .done = t_migrated,
			      .arg = &m},
			  err, sizeof(err)) == 0,
	    "pg_migrate: %s", err);
	t_run_until(&m.done, "pg_migrate");
	ck_assert_msg(m.error[0] == '\0', "pg_migrate: %s", m.error);
	/* This suite needs migration 011. */
	ck_assert_int_eq(t_sql_int(pg,
			     "SELECT count(*) FROM information_schema.columns"
			     " WHERE table_name = 'messages' AND column_name ="
			     " 'lease_owner'",
			     NULL),
	    1);
	pg_free(pg);
}

/* A node: its connection and queue, started (registered). */
struct t_node {
	struct pg *pg;
	struct pg_queue *q;
	char name[32];
};

static int
t_node_try(struct t_node *n, const char *url, const char *name,
    unsigned route_lease_ms, char *error, size_t errlen)
{
	struct t_ans a = {0};
	char err[256];
	int rc;

	snprintf(n->name, sizeof(n->name), "%s", name);
	n->pg = t_connect(url);
	n->q = pgq_new(&(struct pgq_config){.pg = n->pg,
			   .node = name,
			   .route_lease_ms = route_lease_ms},
	    err, sizeof(err));
	ck_assert_msg(n->q != NULL, "pgq_new: %s", err);
	ck_assert_msg(pgq_start(n->q, t_on, &a, err, sizeof(err)) == 0,
	    "pgq_start: %s", err);
	t_run_until(&a.done, "pgq_start");
	snprintf(error, errlen, "%s", a.error);
	rc = a.error[0] == '\0' ? (int)a.n : -1;
	if (rc >= 0)
		ck_assert_int_eq(pgq_node_id(n->q), a.node_id);
	t_ans_clear(&a);
	return rc;
}

static void
t_node_start(struct t_node *n, const char *url, const char *name,
    unsigned route_lease_ms)
{
	char error[512];

	ck_assert_msg(
	    t_node_try(n, url, name, route_lease_ms, error, sizeof(error)) >= 0,
	    "start %s: %s", name, error);
}

/* The node dies: its connection closes with whatever it held. */
static void
t_node_kill(struct t_node *n)
{
	pgq_free(n->q);
	pg_free(n->pg);
	n->q = NULL;
	n->pg = NULL;
}

/* Queues n SMS messages of sender 's1' to +1555NNNNNNN. */
static void
t_enqueue(struct pg *pg, int n)
{
	char num[16];

	snprintf(num, sizeof(num), "%d", n);
	t_sql(pg,
	    "INSERT INTO messages (direction, channel, sender, to_addr, body,"
	    " status, priority, next_attempt_at, created_at, updated_at)"
	    " SELECT 'out', 'sms', 's1', '+1555' || lpad(i::text, 7, '0'),"
	    " 'hello', 'queued', 5, 0, 0, 0"
	    " FROM generate_series(1, $1::integer) AS i",
	    num);
}

/* Synchronous wrappers. */
static void
t_claim(struct t_node *n, unsigned lease_ms, size_t max, struct t_ans *a)
{
	char err[256];

	memset(a, 0, sizeof(*a));
	ck_assert_msg(pgq_claim(n->q,
			  &(struct pgq_claim_req){.ch = CHANNEL_SMS,
			      .sender = "s1",
			      .lease_ms = lease_ms,
			      .max = max},
			  t_on, a, err, sizeof(err)) == 0,
	    "pgq_claim: %s", err);
	t_wait_ok(a, "claim");
}

static size_t
t_mark_sent(struct t_node *n, const int64_t *ids, size_t count)
{
	struct pgq_sent *v = calloc(count, sizeof(*v));
	struct t_ans a = {0};
	char err[256];
	size_t i, got;

	for (i = 0; i < count; i++)
		v[i] = (struct pgq_sent){.id = ids[i],
		    .provider = n->name,
		    .provider_id = "pid-\"x\"\\y"};
	ck_assert_msg(
	    pgq_mark_sent(n->q, v, count, t_on, &a, err, sizeof(err)) == 0,
	    "pgq_mark_sent: %s", err);
	free(v);
	t_wait_ok(&a, "mark sent");
	got = a.n;
	t_ans_clear(&a);
	return got;
}

static size_t
t_mark(struct t_node *n, const struct pgq_result *r)
{
	struct t_ans a = {0};
	char err[256];
	size_t got;

	ck_assert_msg(pgq_mark(n->q, r, t_on, &a, err, sizeof(err)) == 0,
	    "pgq_mark: %s", err);
	t_wait_ok(&a, "mark");
	got = a.n;
	t_ans_clear(&a);
	return got;
}

static size_t
t_sweep(struct t_node *n)
{
	struct t_ans a = {0};
	char err[256];
	size_t got;

	ck_assert_msg(pgq_sweep(n->q, t_on, &a, err, sizeof(err)) == 0,
	    "pgq_sweep: %s", err);
	t_wait_ok(&a, "sweep");
	got = a.n;
	t_ans_clear(&a);
	return got;
}

/* ---- the drain: three nodes, each a claim -> send -> mark loop -------- */

struct t_drainer;

struct t_drain {
	struct t_drainer *d;
	size_t ndrainers;
	uint8_t *sends;	 /* per message id: times handed to "provider" */
	int64_t nids;	 /* ids are 1..nids */
	size_t recorded; /* 'sent' recorded, all nodes */
	size_t target;	 /* recorded == target: done */
	bool done;
	int kill;	   /* this drainer dies after its kill_after claim */
	size_t kill_after; /* claimed messages before it dies */
	unsigned kill_lease;
	int64_t *lost; /* the killed node's claimed-and-unmarked */
	size_t nlost;
	size_t sweeps_moved;
};

struct t_drainer {
	struct t_drain *w;
	struct t_node node;
	int idx;
	bool dead;
	size_t claimed;
	size_t claims;
	struct event *later;
	unsigned lease;
};

static void t_drainer_claim(struct t_drainer *d);

static void
t_drainer_later(evutil_socket_t fd, short what, void *arg)
{
	struct t_drainer *d = arg;

	(void)fd;
	(void)what;
	if (d->dead && d->node.q != NULL) {
		t_node_kill(&d->node); /* not from a pg callback */
		return;
	}
	t_drainer_claim(d);
}

static void
t_drainer_marked(void *arg, const struct pgq_answer *a)
{
	struct t_drainer *d = arg;

	ck_assert_msg(a->error == NULL, "mark sent: %s", a->error);
	d->w->recorded += a->n;
	if (d->w->recorded >= d->w->target)
		d->w->done = true;
	t_drainer_claim(d);
}

static void
t_drainer_swept(void *arg, const struct pgq_answer *a)
{
	struct t_drainer *d = arg;
	struct timeval tv = {0, 50000};

	ck_assert_msg(a->error == NULL, "sweep: %s", a->error);
	d->w->sweeps_moved += a->n;
	evtimer_add(d->later, &tv);
}

static void
t_drainer_claimed(void *arg, const struct pgq_answer *a)
{
	struct t_drainer *d = arg;
	struct t_drain *w = d->w;
	struct pgq_sent *v;
	char err[256];
	size_t i;

	ck_assert_msg(a->error == NULL, "claim: %s", a->error);
	d->claims++;
	if (a->n == 0) {
		/* Nothing due: sweep expired leases, then look again. */
		ck_assert_int_eq(
		    pgq_sweep(d->node.q, t_drainer_swept, d, err, sizeof(err)),
		    0);
		return;
	}
	v = calloc(a->n, sizeof(*v));
	for (i = 0; i < a->n; i++) {
		ck_assert(a->msgs[i]->id >= 1 && a->msgs[i]->id <= w->nids);
		w->sends[a->msgs[i]->id]++; /* handed to the provider */
		v[i] = (struct pgq_sent){.id = a->msgs[i]->id,
		    .provider = "fake",
		    .provider_id = a->msgs[i]->to};
	}
	d->claimed += a->n;
	if (d->idx == w->kill && d->claimed >= w->kill_after) {
		/* Dies with this batch sent and never recorded. */
		w->lost = calloc(a->n, sizeof(*w->lost));
		for (i = 0; i < a->n; i++)
			w->lost[i] = a->msgs[i]->id;
		w->nlost = a->n;
		d->dead = true;
		event_active(d->later, EV_TIMEOUT, 1);
	} else
		ck_assert_int_eq(pgq_mark_sent(d->node.q, v, a->n,
				     t_drainer_marked, d, err, sizeof(err)),
		    0);
	for (i = 0; i < a->n; i++)
		out_msg_free(a->msgs[i]);
	free(v);
}

static void
t_drainer_claim(struct t_drainer *d)
{
	char err[256];

	if (d->dead || d->w->done)
		return;
	ck_assert_msg(pgq_claim(d->node.q,
			  &(struct pgq_claim_req){.ch = CHANNEL_SMS,
			      .sender = "s1",
			      .lease_ms = d->lease,
			      .max = T_BATCH},
			  t_drainer_claimed, d, err, sizeof(err)) == 0,
	    "pgq_claim: %s", err);
}

/* Runs three drainers on url until w->target messages are recorded. */
static void
t_drain_run(struct t_drain *w, const char *url)
{
	struct t_drainer d[T_NODES];
	char name[16];
	int i;

	memset(d, 0, sizeof(d));
	w->d = d;
	w->ndrainers = T_NODES;
	for (i = 0; i < T_NODES; i++) {
		snprintf(name, sizeof(name), "node%d", i);
		t_node_start(&d[i].node, url, name, 0);
		d[i].w = w;
		d[i].idx = i;
		d[i].lease = i == w->kill ? w->kill_lease : 600000;
		d[i].later = evtimer_new(t_base, t_drainer_later, &d[i]);
	}
	for (i = 0; i < T_NODES; i++)
		t_drainer_claim(&d[i]);
	t_run_until(&w->done, "the drain");
	for (i = 0; i < T_NODES; i++) {
		fprintf(stderr,
		    "check_pg_queue: node%d claimed %zu in %zu claims%s\n", i,
		    d[i].claimed, d[i].claims, d[i].dead ? " (killed)" : "");
		/* Operations still pending are detached and dropped. */
		if (d[i].node.q != NULL)
			t_node_kill(&d[i].node);
		event_free(d[i].later);
	}
}

START_TEST(test_drain_three_nodes)
{
	struct t_drain w = {0};
	char url[600];
	struct pg *pg;
	int64_t id;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_drain", url, sizeof(url));
	pg = t_connect(url);
	t_enqueue(pg, T_DRAIN);
	w.nids = T_DRAIN;
	w.sends = calloc(T_DRAIN + 1, 1);
	w.target = T_DRAIN;
	w.kill = -1;
	t_drain_run(&w, url);
	for (id = 1; id <= T_DRAIN; id++)
		ck_assert_msg(w.sends[id] == 1,
		    "message %" PRId64 " sent %d times", id, w.sends[id]);
	ck_assert_int_eq(t_sql_int(pg,
			     "SELECT count(*) FROM messages WHERE status = "
			     "'sent' AND lease_owner IS NULL AND attempts = 1",
			     NULL),
	    T_DRAIN);
	/* History: one 'sending' and one 'sent' row each, nothing else. */
	ck_assert_str_eq(
	    t_sql(pg,
		"SELECT string_agg(status || '=' || n, ',' ORDER BY"
		" status) FROM (SELECT status, count(*) AS n FROM"
		" message_events GROUP BY status) s",
		NULL),
	    "sending=50000,sent=50000");
	pg_free(pg);
	free(w.sends);
	event_base_free(t_base);
}
END_TEST

START_TEST(test_drain_node_killed)
{
	struct t_drain w = {0};
	char url[600];
	struct pg *pg;
	size_t dups = 0, i;
	int64_t id;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_kill", url, sizeof(url));
	pg = t_connect(url);
	t_enqueue(pg, T_DRAIN);
	w.nids = T_DRAIN;
	w.sends = calloc(T_DRAIN + 1, 1);
	w.target = T_DRAIN;
	w.kill = 2;
	w.kill_after = 5000;
	w.kill_lease = 1000; /* the killed node's claims: a short lease */
	t_drain_run(&w, url);
	ck_assert_uint_gt(w.nlost, 0);
	for (id = 1; id <= T_DRAIN; id++) {
		ck_assert_msg(w.sends[id] >= 1,
		    "message %" PRId64 " never sent", id);
		dups += w.sends[id] - 1;
	}
	/* Duplicates: at most the dead node's in-flight batch, and here
	 * exactly it (it "sent" all of it and recorded none). */
	ck_assert_uint_le(dups, w.nlost);
	for (i = 0; i < w.nlost; i++)
		ck_assert_int_eq(w.sends[w.lost[i]], 2);
	ck_assert_int_eq(t_sql_int(pg,
			     "SELECT count(*) FROM messages WHERE status = "
			     "'sent' AND lease_owner IS NULL",
			     NULL),
	    T_DRAIN);
	/* Every lost one came back through a sweep, and nothing else did. */
	ck_assert_int_eq(t_sql_int(pg,
			     "SELECT count(*) FROM message_events WHERE"
			     " status = 'queued' AND text = 'lease expired'",
			     NULL),
	    (int64_t)w.nlost);
	pg_free(pg);
	free(w.sends);
	free(w.lost);
	event_base_free(t_base);
}
END_TEST

/* ---- results after a lost lease; recovery at start ------------------ */

START_TEST(test_late_result_refused)
{
	struct t_node a, b;
	struct t_ans c1, c2;
	char url[600];
	size_t moved = 0;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_late", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	t_node_start(&b, url, "b", 0);
	t_enqueue(a.pg, 1);
	t_claim(&a, 100, 10, &c1);
	ck_assert_uint_eq(c1.n, 1);
	/* b sweeps until a's lease ran out and the message is queued. */
	while (moved == 0)
		moved = t_sweep(&b);
	ck_assert_uint_eq(moved, 1);
	t_claim(&b, 600000, 10, &c2);
	ck_assert_uint_eq(c2.n, 1);
	ck_assert_int_eq(c2.ids[0], c1.ids[0]);
	/* a's late answers are dropped; b's stands. */
	ck_assert_uint_eq(t_mark_sent(&a, c1.ids, 1), 0);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct pgq_result){.id = c1.ids[0],
				  .to = MSG_ST_QUEUED,
				  .retry_in_ms = 1000}),
	    0);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct pgq_result){.id = c1.ids[0],
				  .to = MSG_ST_FAILED,
				  .code = 500}),
	    0);
	ck_assert_str_eq(
	    t_sql(a.pg, "SELECT status || ',' || lease_owner FROM messages",
		NULL),
	    "sending,2");
	ck_assert_uint_eq(t_mark_sent(&b, c2.ids, 1), 1);
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT status || ',' || provider || ',' ||"
			     " provider_message_id || ',' || attempts ||"
			     " ',' || (lease_owner IS NULL) FROM messages",
			     NULL),
	    "sent,b,pid-\"x\"\\y,1,true");
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(status || ':' ||"
			     " coalesce(text, ''), ',' ORDER BY id) FROM"
			     " message_events",
			     NULL),
	    "sending:,queued:lease expired,sending:,sent:");
	t_ans_clear(&c1);
	t_ans_clear(&c2);
	t_node_kill(&a);
	t_node_kill(&b);
	event_base_free(t_base);
}
END_TEST

/*
 * Rows another transaction has locked (another node's claim in progress)
 * are skipped, not waited for: the claim takes the next ones. Without
 * SKIP LOCKED it would wait, and fail on the lock timeout.
 */
START_TEST(test_claim_skips_locked)
{
	struct t_node a;
	struct pg *other;
	struct t_ans c;
	char url[600];
	size_t i;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_skip", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	other = t_connect(url);
	t_enqueue(a.pg, 10);
	t_sql(a.pg, "SET lock_timeout = '10s'", NULL);
	t_sql(other, "BEGIN", NULL);
	t_sql(other,
	    "SELECT count(*) FROM (SELECT id FROM messages WHERE id <= 5"
	    " FOR UPDATE) AS s",
	    NULL);
	t_claim(&a, 600000, 5, &c);
	ck_assert_uint_eq(c.n, 5);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(c.ids[i], (int64_t)i + 6);
	t_ans_clear(&c);
	t_sql(other, "ROLLBACK", NULL);
	t_claim(&a, 600000, 10, &c);
	ck_assert_uint_eq(c.n, 5);
	ck_assert_int_eq(c.ids[0], 1);
	t_ans_clear(&c);
	pg_free(other);
	t_node_kill(&a);
	event_base_free(t_base);
}
END_TEST

START_TEST(test_retry_release_fail)
{
	struct t_node a;
	struct t_ans c;
	char url[600];

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_marks", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	t_enqueue(a.pg, 3);
	t_claim(&a, 600000, 10, &c);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct pgq_result){.id = c.ids[0],
				  .to = MSG_ST_QUEUED,
				  .retry_in_ms = 3600000,
				  .code = 503,
				  .text = "busy"}),
	    1);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct pgq_result){.id = c.ids[1],
				  .to = MSG_ST_QUEUED,
				  .release = true}),
	    1);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct pgq_result){.id = c.ids[2],
				  .to = MSG_ST_FAILED,
				  .code = 21211,
				  .text = "invalid number"}),
	    1);
	/* A result for a message no longer sending is dropped. */
	ck_assert_uint_eq(
	    t_mark(&a,
		&(struct pgq_result){.id = c.ids[2], .to = MSG_ST_SUPPRESSED}),
	    0);
	ck_assert_str_eq(
	    t_sql(a.pg,
		"SELECT string_agg(status || ',' || attempts || ','"
		" || coalesce(error_code::text, '-') || ',' ||"
		" coalesce(error_text, '-'), ';' ORDER BY id)"
		" FROM messages",
		NULL),
	    "queued,1,503,busy;queued,0,-,-;failed,1,21211,invalid number");
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(status || ':' ||"
			     " coalesce(code::text, '') || ':' ||"
			     " coalesce(text, ''), ',' ORDER BY message_id, id)"
			     " FROM message_events WHERE status <> 'sending'",
			     NULL),
	    "queued:503:busy,queued::released,failed:21211:invalid number");
	t_ans_clear(&c);
	/* The retried one is due in an hour; the released one at once. */
	t_claim(&a, 600000, 10, &c);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_int_eq(c.ids[0], 2);
	t_ans_clear(&c);
	t_node_kill(&a);
	event_base_free(t_base);
}
END_TEST

START_TEST(test_restart_recovers_own)
{
	struct t_node a, a2, b;
	struct t_ans c;
	char url[600], error[512];
	int got;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_recover", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	t_node_start(&b, url, "b", 0);
	t_enqueue(a.pg, 20);
	t_claim(&a, 600000, 10, &c);
	ck_assert_uint_eq(c.n, 10);
	t_ans_clear(&c);
	t_claim(&b, 600000, 5, &c);
	ck_assert_uint_eq(c.n, 5);
	t_ans_clear(&c);
	/* A second live process under a's name is refused. */
	ck_assert_int_eq(t_node_try(&a2, url, "a", 0, error, sizeof(error)),
	    -1);
	ck_assert_msg(strstr(error, "node a is already running") != NULL, "%s",
	    error);
	t_node_kill(&a2);
	/* a dies; restarted, it returns its 10 (not b's 5) at once, long
	 * before their lease would end. Its old session may take a moment
	 * to end on the server: until then the name is refused. */
	t_node_kill(&a);
	while (
	    (got = t_node_try(&a2, url, "a", 0, error, sizeof(error))) == -1) {
		ck_assert_msg(strstr(error, "already running") != NULL, "%s",
		    error);
		t_node_kill(&a2);
	}
	ck_assert_int_eq(got, 10);
	ck_assert_str_eq(
	    t_sql(b.pg,
		"SELECT string_agg(status || '=' || n, ',' ORDER BY"
		" status) FROM (SELECT status, count(*) AS n FROM"
		" messages GROUP BY status) s",
		NULL),
	    "queued=15,sending=5");
	ck_assert_int_eq(t_sql_int(b.pg,
			     "SELECT count(*) FROM message_events WHERE text ="
			     " 'recovered after restart'",
			     NULL),
	    10);
	/* The same name, the same id. */
	ck_assert_int_eq(t_sql_int(b.pg, "SELECT count(*) FROM nodes", NULL),
	    2);
	t_node_kill(&a2);
	t_node_kill(&b);
	event_base_free(t_base);
}
END_TEST

/* ---- route leases ----------------------------------------------------- */

static void
t_acquire_send(struct t_node *n, const char *route, unsigned nroutes,
    struct t_ans *a)
{
	char err[256];

	memset(a, 0, sizeof(*a));
	ck_assert_msg(pgq_route_acquire(n->q, route, nroutes, t_on, a, err,
			  sizeof(err)) == 0,
	    "pgq_route_acquire: %s", err);
}

/* How many of the nodes see themselves holding route; *who the last. */
static int
t_holders(struct t_node *n, int count, const char *route, int *who)
{
	int i, held = 0;

	for (i = 0; i < count; i++)
		if (pgq_route_held(n[i].q, route, NULL)) {
			held++;
			*who = i;
		}
	return held;
}

START_TEST(test_route_lease_exclusive)
{
	struct t_node n[T_NODES];
	struct t_ans a[T_NODES];
	char url[600], name[16], owner[32];
	int64_t epoch = 0, e = 0;
	int i, round, who = -1;
	volatile int holder = -1, stopped = -1, handovers = 0;
	bool all;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_route", url, sizeof(url));
	for (i = 0; i < T_NODES; i++) {
		snprintf(name, sizeof(name), "node%d", i);
		t_node_start(&n[i], url, name, 200);
	}
	for (round = 0; round < 1000000 && handovers < 6; round++) {
		/* Every node tries, except the holder that "hangs": it stops
		 * renewing until another node took the route. */
		for (i = 0; i < T_NODES; i++)
			if (i != stopped)
				t_acquire_send(&n[i], "sms:r1", 1, &a[i]);
			else
				a[i].done = true;
		do {
			event_base_loop(t_base, EVLOOP_ONCE);
			/* Never two holders, at any moment. */
			ck_assert_int_le(t_holders(n, T_NODES, "sms:r1", &who),
			    1);
			for (all = true, i = 0; i < T_NODES; i++)
				all = all && a[i].done;
		} while (!all);
		for (i = 0; i < T_NODES; i++) {
			ck_assert_msg(a[i].error[0] == '\0', "%s", a[i].error);
			t_ans_clear(&a[i]);
		}
		if (t_holders(n, T_NODES, "sms:r1", &who) == 0)
			continue;
		ck_assert(pgq_route_held(n[who].q, "sms:r1", &e));
		snprintf(owner, sizeof(owner), "%" PRId64 ",%" PRId64,
		    pgq_node_id(n[who].q), e);
		ck_assert_str_eq(t_sql(n[0].pg,
				     "SELECT owner || ',' || epoch FROM"
				     " route_leases WHERE route = 'sms:r1'",
				     NULL),
		    owner);
		if (who != holder) {
			/* A handover: a fresh epoch each time. */
			ck_assert_int_eq(e, epoch + 1);
			epoch = e;
			holder = who;
			handovers++;
			stopped = -1;
		} else {
			ck_assert_int_eq(e, epoch); /* a renewal */
			if (round % 5 == 0)
				stopped = who;
		}
	}
	ck_assert_int_ge(handovers, 6);
	for (i = 0; i < T_NODES; i++)
		t_node_kill(&n[i]);
	event_base_free(t_base);
}
END_TEST

START_TEST(test_route_fair_share)
{
	static const char *const routes[4] = {"sms:a", "sms:b", "sms:c",
	    "sms:d"};
	struct t_node n[2];
	struct t_ans a[4];
	char url[600];
	int i, k;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_share", url, sizeof(url));
	t_node_start(&n[0], url, "n0", 600000);
	t_node_start(&n[1], url, "n1", 600000);
	/* Two live nodes, four routes: two each, whoever asks first. */
	for (k = 0; k < 2; k++) {
		for (i = 0; i < 4; i++)
			t_acquire_send(&n[k], routes[i], 4, &a[i]);
		for (i = 0; i < 4; i++) {
			t_wait_ok(&a[i], "acquire");
			ck_assert_uint_eq(a[i].n, k == 0 ? i < 2 : i >= 2);
			ck_assert_int_eq(
			    pgq_route_held(n[k].q, routes[i], NULL),
			    k == 0 ? i < 2 : i >= 2);
			if (a[i].n == 1)
				ck_assert_int_eq(a[i].epoch, 1);
			t_ans_clear(&a[i]);
		}
	}
	/* Renewals keep the epoch; n1 releases one, n0 may take it (a new
	 * holder: epoch 2) while n1 is then under its share. */
	t_acquire_send(&n[0], routes[0], 4, &a[0]);
	t_wait_ok(&a[0], "renew");
	ck_assert_uint_eq(a[0].n, 1);
	ck_assert_int_eq(a[0].epoch, 1);
	t_ans_clear(&a[0]);
	memset(&a[1], 0, sizeof(a[1]));
	{
		char err[256];

		ck_assert_int_eq(pgq_route_release(n[1].q, routes[3], t_on,
				     &a[1], err, sizeof(err)),
		    0);
	}
	ck_assert(!pgq_route_held(n[1].q, routes[3], NULL));
	t_wait_ok(&a[1], "release");
	ck_assert_uint_eq(a[1].n, 1);
	/* n0 holds its share (2) already: refused. */
	t_acquire_send(&n[0], routes[3], 4, &a[2]);
	t_wait_ok(&a[2], "acquire over share");
	ck_assert_uint_eq(a[2].n, 0);
	t_acquire_send(&n[1], routes[3], 4, &a[3]);
	t_wait_ok(&a[3], "take back");
	ck_assert_uint_eq(a[3].n, 1);
	ck_assert_int_eq(a[3].epoch, 2);
	for (i = 1; i < 4; i++)
		t_ans_clear(&a[i]);
	/* n1 stops: releases its two and leaves; n0, alone live now, takes
	 * them at once (without pgq_leave() its share stays 2 until n1's
	 * heartbeat is node_timeout_ms old). Heartbeats after leaving keep
	 * n1 out. */
	for (i = 2; i < 4; i++) {
		char err[256];

		memset(&a[i], 0, sizeof(a[i]));
		ck_assert_int_eq(pgq_route_release(n[1].q, routes[i], t_on,
				     &a[i], err, sizeof(err)),
		    0);
		t_wait_ok(&a[i], "release");
		t_ans_clear(&a[i]);
	}
	{
		char err[256];

		memset(&a[0], 0, sizeof(a[0]));
		ck_assert_int_eq(
		    pgq_leave(n[1].q, t_on, &a[0], err, sizeof(err)), 0);
		t_wait_ok(&a[0], "leave");
		ck_assert_uint_eq(a[0].n, 1);
		t_ans_clear(&a[0]);
		ck_assert_int_eq(
		    pgq_heartbeat(n[1].q, t_on, &a[0], err, sizeof(err)), 0);
		t_wait_ok(&a[0], "heartbeat after leaving");
		ck_assert_uint_eq(a[0].n, 0);
		t_ans_clear(&a[0]);
	}
	for (i = 2; i < 4; i++) {
		t_acquire_send(&n[0], routes[i], 4, &a[i]);
		t_wait_ok(&a[i], "take a left node's route");
		ck_assert_uint_eq(a[i].n, 1);
		t_ans_clear(&a[i]);
	}
	for (i = 0; i < 2; i++)
		t_node_kill(&n[i]);
	event_base_free(t_base);
}
END_TEST

/*
 * A node whose heartbeat is stale does not count as live: the one live
 * node takes every route. Once the other heartbeats, the first keeps
 * only its share on renewal (the first routes by name) and gives up the
 * rest, which the other takes with a new epoch.
 */
START_TEST(test_route_rebalance_on_heartbeat)
{
	static const char *const routes[4] = {"sms:a", "sms:b", "sms:c",
	    "sms:d"};
	struct t_node n[2];
	struct t_ans a[4];
	char url[600], err[256];
	int i;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_rebalance", url, sizeof(url));
	t_node_start(&n[0], url, "n0", 600000);
	t_node_start(&n[1], url, "n1", 600000);
	t_sql(n[0].pg, "UPDATE nodes SET heartbeat_at = 0 WHERE name = 'n1'",
	    NULL);
	for (i = 0; i < 4; i++)
		t_acquire_send(&n[0], routes[i], 4, &a[i]);
	for (i = 0; i < 4; i++) {
		t_wait_ok(&a[i], "acquire alone");
		ck_assert_uint_eq(a[i].n, 1);
		t_ans_clear(&a[i]);
	}
	ck_assert_int_eq(pgq_heartbeat(n[1].q, t_on, &a[0], err, sizeof(err)),
	    0);
	t_wait_ok(&a[0], "heartbeat");
	ck_assert_uint_eq(a[0].n, 1);
	t_ans_clear(&a[0]);
	ck_assert_int_eq(
	    t_sql_int(n[0].pg,
		"SELECT count(*) FROM nodes WHERE heartbeat_at > 0", NULL),
	    2);
	for (i = 0; i < 4; i++)
		t_acquire_send(&n[0], routes[i], 4, &a[i]);
	for (i = 0; i < 4; i++) {
		t_wait_ok(&a[i], "renew");
		ck_assert_uint_eq(a[i].n, i < 2);
		ck_assert_int_eq(pgq_route_held(n[0].q, routes[i], NULL),
		    i < 2);
		t_ans_clear(&a[i]);
	}
	/* The releases were sent after those answers: one more round trip
	 * on the same connection sees them done. */
	ck_assert_str_eq(t_sql(n[0].pg,
			     "SELECT count(*) FROM route_leases WHERE owner IS"
			     " NULL",
			     NULL),
	    "2");
	for (i = 2; i < 4; i++) {
		t_acquire_send(&n[1], routes[i], 4, &a[i]);
		t_wait_ok(&a[i], "take over");
		ck_assert_uint_eq(a[i].n, 1);
		ck_assert_int_eq(a[i].epoch, 2);
		t_ans_clear(&a[i]);
	}
	for (i = 0; i < 2; i++)
		t_node_kill(&n[i]);
	event_base_free(t_base);
}
END_TEST

/*
 * Four routes, three nodes: the share is one each, and a second route
 * only while no other live node is without one. A node alone took all
 * four; once the others are live it keeps one at renewal, and the three
 * end with 1, 1 and 2 (with ceil(4/3) = 2 as the only bound, the first
 * two kept two each and the third none).
 */
START_TEST(test_route_share_three_nodes)
{
	static const char *const routes[4] = {"sms:a", "sms:b", "sms:c",
	    "sms:d"};
	struct t_node n[3];
	struct t_ans a[4];
	char url[600], err[256];
	int i, k, held[3] = {0, 0, 0};

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_share3", url, sizeof(url));
	for (k = 0; k < 3; k++) {
		char name[8];

		snprintf(name, sizeof(name), "n%d", k);
		t_node_start(&n[k], url, name, 600000);
	}
	t_sql(n[0].pg,
	    "UPDATE nodes SET heartbeat_at = 0 WHERE name IN ('n1', 'n2')",
	    NULL);
	for (i = 0; i < 4; i++)
		t_acquire_send(&n[0], routes[i], 4, &a[i]);
	for (i = 0; i < 4; i++) {
		t_wait_ok(&a[i], "acquire alone");
		ck_assert_uint_eq(a[i].n, 1);
		t_ans_clear(&a[i]);
	}
	for (k = 1; k < 3; k++) {
		ck_assert_int_eq(
		    pgq_heartbeat(n[k].q, t_on, &a[0], err, sizeof(err)), 0);
		t_wait_ok(&a[0], "heartbeat");
		t_ans_clear(&a[0]);
	}
	/* Two rounds: renewals and releases, then the others' takes. */
	for (int round = 0; round < 2; round++) {
		for (k = 0; k < 3; k++) {
			for (i = 0; i < 4; i++)
				t_acquire_send(&n[k], routes[i], 4, &a[i]);
			for (i = 0; i < 4; i++) {
				t_wait_ok(&a[i], "acquire");
				t_ans_clear(&a[i]);
			}
			/* its releases go out after the answers */
			t_sql(n[k].pg, "SELECT 1", NULL);
		}
	}
	for (k = 0; k < 3; k++)
		for (i = 0; i < 4; i++)
			held[k] += pgq_route_held(n[k].q, routes[i], NULL);
	ck_assert_msg(held[0] >= 1 && held[1] >= 1 && held[2] >= 1 &&
		held[0] + held[1] + held[2] == 4,
	    "routes held: %d %d %d", held[0], held[1], held[2]);
	ck_assert_int_eq(t_sql_int(n[0].pg,
			     "SELECT count(DISTINCT owner) FROM route_leases",
			     NULL),
	    3);
	for (k = 0; k < 3; k++)
		t_node_kill(&n[k]);
	event_base_free(t_base);
}
END_TEST

/* ---- the send-time opt-out check -------------------------------------- */

START_TEST(test_optout_between_claim_and_check)
{
	struct t_node a;
	struct pg *other;
	struct t_ans c, s;
	const char *to[3];
	char url[600], err[256];

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_optout", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	other = t_connect(url);
	t_enqueue(a.pg, 2);
	t_sql(other,
	    "INSERT INTO members (phone, email, bouncing, created_at,"
	    " updated_at) VALUES ('+15550000001', NULL, 0, 0, 0),"
	    " ('+15550000002', NULL, 0, 0, 0),"
	    " (NULL, 'bounce@example.org', 1, 0, 0),"
	    " (NULL, 'out@example.org', 0, 0, 0),"
	    " (NULL, 'fine@example.org', 0, 0, 0)",
	    NULL);
	t_claim(&a, 600000, 10, &c);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_str_eq(c.to[0], "+15550000001");
	/* Another node records a STOP after the claim, before the check. */
	t_sql(other,
	    "INSERT INTO sms_optout (member_id, opted_out_at, source)"
	    " SELECT id, 0, 'keyword' FROM members"
	    " WHERE phone = '+15550000001'",
	    NULL);
	to[0] = c.to[0];
	to[1] = c.to[1];
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(
	    pgq_suppressed(a.q, CHANNEL_SMS, to, 2, t_on, &s, err, sizeof(err)),
	    0);
	t_wait_ok(&s, "opt-out check");
	ck_assert_uint_eq(s.n, 2);
	ck_assert(s.sup[0]);
	ck_assert(!s.sup[1]);
	ck_assert_uint_eq(t_mark(&a,
			      &(struct pgq_result){.id = c.ids[0],
				  .to = MSG_ST_SUPPRESSED,
				  .text = "opted out"}),
	    1);
	ck_assert_str_eq(t_sql(other,
			     "SELECT status FROM messages WHERE to_addr ="
			     " '+15550000001'",
			     NULL),
	    "suppressed");
	t_ans_clear(&s);
	/* Email: opted out or bouncing, matched without case. */
	t_sql(other,
	    "INSERT INTO email_optout (member_id, opted_out_at, source)"
	    " SELECT id, 0, 'web' FROM members WHERE email = 'out@example.org'",
	    NULL);
	to[0] = "Bounce@Example.org";
	to[1] = "OUT@example.org";
	to[2] = "fine@example.org";
	ck_assert_int_eq(pgq_suppressed(a.q, CHANNEL_EMAIL, to, 3, t_on, &s,
			     err, sizeof(err)),
	    0);
	t_wait_ok(&s, "email opt-out check");
	ck_assert(s.sup[0]);
	ck_assert(s.sup[1]);
	ck_assert(!s.sup[2]);
	t_ans_clear(&s);
	t_ans_clear(&c);
	pg_free(other);
	t_node_kill(&a);
	event_base_free(t_base);
}
END_TEST

/*
 * Delivery reports that overtook the provider's answer (kept in
 * status_early, as queue_status_update() keeps them) are applied by the
 * statement that records the send, as on SQLite: a final report under the
 * provider's id or under '#<our id>' moves the message on, with both
 * history rows; a final report older by sequence than a kept 'sent' is
 * not applied (only the sequence is); the kept rows are dropped. Without
 * the status_early part of pgq_mark_sent() every message stays 'sent'.
 */
START_TEST(test_sent_applies_early_reports)
{
	struct t_node a;
	struct pgq_sent v[4];
	struct t_ans c, s;
	char url[600], err[256];
	const char *pid[4] = {"p1", "p2", "p3", "p4"};
	size_t i;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_early", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	t_enqueue(a.pg, 4);
	t_claim(&a, 600000, 10, &c);
	ck_assert_uint_eq(c.n, 4);
	t_sql(a.pg,
	    "INSERT INTO status_early (provider, provider_message_id, status,"
	    " code, text, sequence, created_at) VALUES"
	    " ('fake', 'p1', 'delivered', NULL, NULL, NULL, " T_NOW "),"
	    " ('fake', '#2', 'failed', 30003, 'unreachable', NULL, " T_NOW "),"
	    " ('fake', 'p3', 'sent', NULL, NULL, 5, " T_NOW "),"
	    " ('fake', '#3', 'delivered', NULL, NULL, 3, " T_NOW "),"
	    " ('other', 'p4', 'delivered', NULL, NULL, NULL, " T_NOW ")",
	    NULL);
	for (i = 0; i < 4; i++)
		v[i] = (struct pgq_sent){.id = c.ids[i],
		    .provider = "fake",
		    .provider_id = pid[i]};
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(pgq_mark_sent(a.q, v, 4, t_on, &s, err, sizeof(err)),
	    0);
	t_wait_ok(&s, "mark sent");
	ck_assert_uint_eq(s.n, 4);
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(status || ',' ||"
			     " coalesce(error_code::text, '-') || ',' ||"
			     " coalesce(error_text, '-') || ',' ||"
			     " coalesce(status_sequence::text, '-'), ';'"
			     " ORDER BY id) FROM messages",
			     NULL),
	    "delivered,-,-,-;failed,30003,unreachable,-;sent,-,-,5;"
	    "sent,-,-,-");
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(message_id || ':' || status,"
			     " ',' ORDER BY id) FROM message_events"
			     " WHERE status <> 'sending'",
			     NULL),
	    "1:sent,1:delivered,2:sent,2:failed,3:sent,4:sent");
	/* Applied or outdated, the kept reports are gone; another
	 * provider's stays. */
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(provider || '/' ||"
			     " provider_message_id, ',') FROM status_early",
			     NULL),
	    "other/p4");
	t_ans_clear(&s);
	t_ans_clear(&c);
	t_node_kill(&a);
	event_base_free(t_base);
}
END_TEST

/*
 * The window the second pass of pgq_mark_sent() closes: a report kept
 * (the message seen still 'sending') by a transaction that commits while
 * the statement recording the send is running, after its snapshot. Made
 * certain here: another connection holds the message's row lock with the
 * report inserted, the recording statement starts and waits on the lock
 * (seen in pg_stat_activity), then the other commits. The first pass
 * cannot see the report; the second applies it. Without the second pass
 * the message stays 'sent' with its report left in status_early.
 */
START_TEST(test_sent_applies_report_kept_meanwhile)
{
	struct t_node a;
	struct pg *other, *watch;
	struct pgq_sent v;
	struct t_ans c, s;
	char url[600], err[256], sql[256];

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_early_late", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	other = t_connect(url);
	watch = t_connect(url);
	t_enqueue(a.pg, 1);
	t_claim(&a, 600000, 10, &c);
	ck_assert_uint_eq(c.n, 1);
	t_sql(other, "BEGIN", NULL);
	t_sql(other, "SELECT id FROM messages FOR UPDATE", NULL);
	snprintf(sql, sizeof(sql),
	    "INSERT INTO status_early (provider, provider_message_id, status,"
	    " created_at) VALUES ('fake', '#%" PRId64 "', 'delivered', " T_NOW
	    ")",
	    c.ids[0]);
	t_sql(other, sql, NULL);
	v = (struct pgq_sent){.id = c.ids[0],
	    .provider = "fake",
	    .provider_id = "p1"};
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(pgq_mark_sent(a.q, &v, 1, t_on, &s, err, sizeof(err)),
	    0);
	/* Until the recording statement waits on the row lock. */
	while (t_sql_int(watch,
		   "SELECT count(*) FROM pg_stat_activity WHERE"
		   " wait_event_type = 'Lock' AND query LIKE 'WITH v AS%'",
		   NULL) == 0)
		;
	t_sql(other, "COMMIT", NULL);
	t_wait_ok(&s, "mark sent");
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(t_sql(watch, "SELECT status FROM messages", NULL),
	    "delivered");
	ck_assert_str_eq(t_sql(watch,
			     "SELECT string_agg(status, ',' ORDER BY id)"
			     " FROM message_events WHERE status <> 'sending'",
			     NULL),
	    "sent,delivered");
	ck_assert_str_eq(
	    t_sql(watch, "SELECT count(*) FROM status_early", NULL), "0");
	t_ans_clear(&s);
	t_ans_clear(&c);
	pg_free(other);
	pg_free(watch);
	t_node_kill(&a);
	event_base_free(t_base);
}
END_TEST

/*
 * A report kept after both passes of pgq_mark_sent() took their snapshots
 * (its statement committed later) is applied by the next pgq_sweep() of
 * any node: by the provider's id and by '#<our id>', with its history
 * row, once; a report for no message of ours stays. Without the sweep's
 * part the messages stay 'sent' (test_dispatch_batch's overtaking test
 * saw it on PostgreSQL).
 */
START_TEST(test_sweep_applies_report_kept_late)
{
	struct t_node a, b;
	struct pgq_sent v[2];
	struct t_ans c, s;
	char url[600], err[256], sql[512];

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_early_sweep", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	t_node_start(&b, url, "b", 0);
	t_enqueue(a.pg, 2);
	t_claim(&a, 600000, 10, &c);
	ck_assert_uint_eq(c.n, 2);
	v[0] = (struct pgq_sent){.id = c.ids[0],
	    .provider = "fake",
	    .provider_id = "p1"};
	v[1] = (struct pgq_sent){.id = c.ids[1],
	    .provider = "fake",
	    .provider_id = "p2"};
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(pgq_mark_sent(a.q, v, 2, t_on, &s, err, sizeof(err)),
	    0);
	t_wait_ok(&s, "mark sent");
	t_ans_clear(&s);
	snprintf(sql, sizeof(sql),
	    "INSERT INTO status_early (provider, provider_message_id, status,"
	    " code, created_at) VALUES ('fake', 'p1', 'delivered', NULL, " T_NOW
	    "), ('fake', '#%" PRId64 "', 'failed', 30006, " T_NOW
	    "), ('fake', 'nobody', 'delivered', NULL, " T_NOW ")",
	    c.ids[1]);
	t_sql(a.pg, sql, NULL);
	ck_assert_uint_eq(t_sweep(&b), 0); /* no lease swept */
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(status || ' ' ||"
			     " coalesce(error_code::text, '-'), ','"
			     " ORDER BY id) FROM messages",
			     NULL),
	    "delivered -,failed 30006");
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(status, ',' ORDER BY id)"
			     " FROM message_events WHERE status NOT IN"
			     " ('queued', 'sending')",
			     NULL),
	    "sent,sent,delivered,failed");
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(provider_message_id, ',')"
			     " FROM status_early",
			     NULL),
	    "nobody");
	/* once: 2 sending, 2 sent, delivered, failed */
	ck_assert_uint_eq(t_sweep(&a), 0);
	ck_assert_str_eq(
	    t_sql(a.pg, "SELECT count(*) FROM message_events", NULL), "6");
	t_ans_clear(&c);
	t_node_kill(&b);
	t_node_kill(&a);
	event_base_free(t_base);
}
END_TEST

/*
 * pgq_expire() moves due queued messages past their expiry, and only
 * those, naming each one's route; pgq_next_due() tells when the next
 * queued message is due (relative to the database clock), or that none
 * is queued.
 */
START_TEST(test_expire_and_next_due)
{
	struct t_node a;
	struct t_ans x;
	char url[600], err[256];

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_expire", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	t_sql(a.pg,
	    "INSERT INTO messages (direction, channel, sender, to_addr, body,"
	    " status, priority, next_attempt_at, expires_at, created_at,"
	    " updated_at) VALUES"
	    " ('out', 'sms', 's1', '+15550000001', 'x', 'queued', 5, 0, 1, 0,"
	    " 0),"
	    " ('out', 'email', NULL, 'a@example.org', 'x', 'queued', 5, 0, 1,"
	    " 0, 0),"
	    " ('out', 'sms', 's1', '+15550000003', 'x', 'queued', 5, " T_NOW
	    " + 3600000, " T_NOW " + 7200000, 0, 0),"
	    " ('out', 'sms', 's1', '+15550000004', 'x', 'sent', 5, 0, 1, 0, 0)",
	    NULL);
	memset(&x, 0, sizeof(x));
	ck_assert_int_eq(pgq_expire(a.q, t_on, &x, err, sizeof(err)), 0);
	t_wait_ok(&x, "expire");
	ck_assert_uint_eq(x.n, 2);
	ck_assert_int_eq(x.ids[0] + x.ids[1], 3);
	ck_assert_str_eq(x.to[x.ids[0] == 1 ? 0 : 1], "sms:s1");
	ck_assert_str_eq(x.to[x.ids[0] == 1 ? 1 : 0], "email:");
	t_ans_clear(&x);
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(status, ',' ORDER BY id)"
			     " FROM messages",
			     NULL),
	    "expired,expired,queued,sent");
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(message_id || ':' || status"
			     " || ':' || text, ',' ORDER BY message_id)"
			     " FROM message_events",
			     NULL),
	    "1:expired:expired before it was sent,"
	    "2:expired:expired before it was sent");
	ck_assert_int_eq(pgq_next_due(a.q, t_on, &x, err, sizeof(err)), 0);
	t_wait_ok(&x, "next due");
	ck_assert_uint_eq(x.n, 1);
	/* Due in an hour: within the hour, and more than a minute away. */
	ck_assert(x.due_in_ms > 60000 && x.due_in_ms <= 3600000);
	t_ans_clear(&x);
	t_sql(a.pg, "UPDATE messages SET status = 'cancelled' WHERE id = 3",
	    NULL);
	ck_assert_int_eq(pgq_next_due(a.q, t_on, &x, err, sizeof(err)), 0);
	t_wait_ok(&x, "next due, none");
	ck_assert_uint_eq(x.n, 0);
	t_ans_clear(&x);
	t_node_kill(&a);
	event_base_free(t_base);
}
END_TEST

/* Email bounce bookkeeping: refusals count up to the limit, then the
 * address is bouncing; an acceptance resets a count short of it. */
START_TEST(test_email_result)
{
	struct t_node a;
	struct t_ans x;
	char url[600], err[256];
	int i;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("q_email", url, sizeof(url));
	t_node_start(&a, url, "a", 0);
	t_sql(a.pg,
	    "INSERT INTO members (email, created_at, updated_at) VALUES"
	    " ('b@example.org', 0, 0), ('c@example.org', 0, 0)",
	    NULL);
	for (i = 0; i < 3; i++) {
		memset(&x, 0, sizeof(x));
		ck_assert_int_eq(
		    pgq_email_result(a.q,
			&(struct pgq_email){.address = i < 2 ? "B@example.org"
							     : "c@example.org",
			    .limit = 2},
			t_on, &x, err, sizeof(err)),
		    0);
		t_wait_ok(&x, "email failure");
		ck_assert_uint_eq(x.n, i == 1 ? 1 : 0);
		t_ans_clear(&x);
	}
	ck_assert_int_eq(pgq_email_result(a.q,
			     &(struct pgq_email){.address = "c@example.org",
				 .accepted = true},
			     t_on, &x, err, sizeof(err)),
	    0);
	t_wait_ok(&x, "email success");
	t_ans_clear(&x);
	ck_assert_str_eq(t_sql(a.pg,
			     "SELECT string_agg(email || ',' || bouncing ||"
			     " ',' || email_failures, ';' ORDER BY id)"
			     " FROM members",
			     NULL),
	    "b@example.org,1,2;c@example.org,0,0");
	t_node_kill(&a);
	event_base_free(t_base);
}
END_TEST

/* Refusals that need no server. */
START_TEST(test_refusals)
{
	struct event_base *base = event_base_new();
	struct pg_config cfg = {.url = "postgresql:///x?host=/nonexistent-od"};
	struct pg *pg;
	struct pg_queue *q;
	char err[256];

	ck_assert_ptr_null(
	    pgq_new(&(struct pgq_config){.node = "a"}, err, sizeof(err)));
	pg = pg_new(base, &cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(pg);
	ck_assert_ptr_null(pgq_new(&(struct pgq_config){.pg = pg, .node = ""},
	    err, sizeof(err)));
	q = pgq_new(&(struct pgq_config){.pg = pg, .node = "a"}, err,
	    sizeof(err));
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(pgq_claim(q,
			     &(struct pgq_claim_req){.ch = CHANNEL_SMS,
				 .sender = "s1",
				 .lease_ms = 1000,
				 .max = 10},
			     t_on, NULL, err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "node not started") != NULL, "%s", err);
	ck_assert(!pgq_route_held(q, "sms:r1", NULL));
	/* Pending operations are detached: their callbacks never run. */
	ck_assert_int_eq(pgq_start(q, NULL, NULL, err, sizeof(err)), 0);
	pgq_free(q);
	pg_free(pg);
	event_base_free(base);
}
END_TEST

Suite *
pg_queue_suite(void)
{
	Suite *s = suite_create("pg_queue");
	TCase *tn = tcase_create("no_server");
	TCase *tc = tcase_create("cluster");

	tcase_add_test(tn, test_refusals);
	suite_add_tcase(s, tn);

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_late_result_refused);
	tcase_add_test(tc, test_claim_skips_locked);
	tcase_add_test(tc, test_retry_release_fail);
	tcase_add_test(tc, test_restart_recovers_own);
	tcase_add_test(tc, test_route_lease_exclusive);
	tcase_add_test(tc, test_route_fair_share);
	tcase_add_test(tc, test_route_share_three_nodes);
	tcase_add_test(tc, test_route_rebalance_on_heartbeat);
	tcase_add_test(tc, test_optout_between_claim_and_check);
	tcase_add_test(tc, test_sent_applies_early_reports);
	tcase_add_test(tc, test_sent_applies_report_kept_meanwhile);
	tcase_add_test(tc, test_sweep_applies_report_kept_late);
	tcase_add_test(tc, test_expire_and_next_due);
	tcase_add_test(tc, test_email_result);
	tcase_add_test(tc, test_drain_three_nodes);
	tcase_add_test(tc, test_drain_node_killed);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
