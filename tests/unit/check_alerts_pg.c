/*
 * check_alerts_pg.c - action alerts on PostgreSQL
 * (queue/store_alerts_pg.c), against a throwaway cluster
 * (check_pgcluster.h), through stores opened as the daemon opens them
 * and fan-out connections named for two "nodes", all on one loop:
 *
 *  - create with one Idempotency-Key on both nodes in the same turn:
 *    both committed, one alert, both answered its id, one of them a
 *    duplicate (an insert without ON CONFLICT fails the second group);
 *  - a draft rewritten and deleted, a sending alert neither;
 *  - two alerts sent with one send key on both nodes in the same turn:
 *    both groups commit, one alert moves, the other is told whose key
 *    it is;
 *  - actions: send moves a draft once (a second send finds it sending
 *    and moves nothing), fixes audience_max_id and keeps the send key;
 *    pause holds its queued messages, resume releases them (their
 *    not_before kept), cancel cancels them with a history row each;
 *  - the tick, run by both nodes in the same turn: a scheduled alert
 *    whose time came starts once, a fanned-out alert with nothing left
 *    becomes done once, and the alerts left to fan out are read;
 *  - the walk: active subscriptions to the alert's lists on the channel,
 *    opt-outs, bouncing (email), tags, fields and the ZIP prefix;
 *  - the audience's reads (sap_audience(), sap_lists()): the reach with
 *    who is left out, the members lacking a field (none, or blanks), the
 *    first members and the longest values to the visitor, in order; a
 *    follow_up's members ("no_reply": a member who wrote since is not;
 *    "missed"), the lists resolved and the follow_up's alert looked for;
 *  - a batch skips an alert whose row another transaction holds (SKIP
 *    LOCKED: rc 0, nothing written);
 *  - a node whose backend is terminated mid-batch (its walk held by a
 *    lock) writes nothing, and the other node then fans the alert out
 *    from the committed cursor: every member exactly one message, in
 *    bounded batches, the cursor at audience_max_id and fanout_done.
 *
 * States only, no timing assertions. Skipped, with the reason printed,
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
alerts_pg_suite(void)
{
	return ckpg_not_built_suite("alerts_pg");
}

#else /* HAVE_LIBPQ */

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "check_pgcluster.h"
#include "message.h"
#include "pg.h"
#include "queue.h"
#include "store.h"
#include "store_alerts_pg.h"

static char pg_url[512]; /* "" = no cluster: the tests skip */
static char db_url[512];
static struct event_base *t_base;
static struct pg *t_pg; /* the test database's connection, for checks */

static void
cluster_start(void)
{
	ckpg_start("check_alerts_pg", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_alerts_pg", pg_url);
}

static const char *
t_sql(const char *sql)
{
	return ckpg_sql(t_base, t_pg, sql, NULL);
}

static int64_t
t_int(const char *sql)
{
	return strtoll(t_sql(sql), NULL, 10);
}

/* A fresh database 'db' and two nodes' stores on it; t_pg connected. */
static void
t_open(const char *db, struct store *st[2])
{
	static const char *const names[2] = {"a", "b"};
	struct pg *pg;
	char sql[128], err[512];
	int i;

	t_base = event_base_new();
	pg = ckpg_connect(t_base, pg_url);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
	ckpg_sql(t_base, pg, sql, NULL);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	ckpg_sql(t_base, pg, sql, NULL);
	pg_free(pg);
	ckpg_db_url(pg_url, db, db_url, sizeof(db_url));
	for (i = 0; i < 2; i++) {
		st[i] = store_open_config(
		    &(struct store_config){.backend = STORE_POSTGRESQL,
			.url = db_url,
			.node = names[i],
			.base = t_base},
		    err, sizeof(err));
		ck_assert_msg(st[i] != NULL, "store_open_config %s: %s",
		    names[i], err);
		store_attach(st[i], t_base, 0);
	}
	t_pg = ckpg_connect(t_base, db_url);
}

static void
t_close(struct store *st[2])
{
	store_close(st[0]);
	store_close(st[1]);
	pg_free(t_pg);
	t_pg = NULL;
	event_base_free(t_base);
}

/*
 * List 1 'news' (sender console) and members 1..n with a phone, each
 * subscribed to it by SMS, active.
 */
static void
t_seed(int n)
{
	char sql[1024];

	t_sql("INSERT INTO lists (id, name, sender, created_at, updated_at)"
	      " VALUES (1, 'news', 'console', 1, 1)");
	snprintf(sql, sizeof(sql),
	    "INSERT INTO members (id, phone, first_name, created_at,"
	    " updated_at) SELECT g, '+1555' || lpad(g::text, 7, '0'),"
	    " 'M' || g, 1, 1 FROM generate_series(1, %d) g",
	    n);
	t_sql(sql);
	snprintf(sql, sizeof(sql),
	    "INSERT INTO subscriptions (member_id, list_id, channel, status,"
	    " source, created_at, updated_at) SELECT g, 1, 'sms', 'active',"
	    " 't', 1, 1 FROM generate_series(1, %d) g",
	    n);
	t_sql(sql);
}

/* An alert in 'status' to list 1 by SMS; its id. */
static int64_t
t_alert(const char *status, const char *audience)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
	    "INSERT INTO alerts (name, status, audience, sms, sender,"
	    " sms_body, validity_s, audience_max_id, started_at, created_at,"
	    " updated_at) VALUES ('x', '%s', '%s', 1, 'console', 'hi', 3600,"
	    " (SELECT max(id) FROM members), 1, 1, 1) RETURNING id",
	    status, audience);
	return t_int(sql);
}

/* ---- writes ------------------------------------------------------------ */

struct t_done {
	bool done;
	struct sap_done d;
	char error[256];
};

static void
t_on_done(void *arg, const struct sap_done *d)
{
	struct t_done *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	if (d->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", d->error);
}

START_TEST(test_create_one_key_two_nodes)
{
	struct store *st[2];
	struct t_done t[2];
	struct alert_def d = {.name = "Rally",
	    .audience = "{\"lists\":[1]}",
	    .sms = true,
	    .sender = "console",
	    .sms_body = "Hi",
	    .validity_s = 3600,
	    .create_key = "k1"};
	char err[256];
	int i;

	if (pg_url[0] == '\0')
		return;
	t_open("alerts_create", st);
	memset(t, 0, sizeof(t));
	for (i = 0; i < 2; i++)
		ck_assert_msg(sap_create(st[i], &d, 1000, t_on_done, &t[i], err,
				  sizeof(err)) == 0,
		    "create: %s", err);
	ckpg_run_until(t_base, &t[0].done, "create a");
	ckpg_run_until(t_base, &t[1].done, "create b");
	for (i = 0; i < 2; i++)
		ck_assert_msg(t[i].d.ok, "create %d: %s", i, t[i].error);
	ck_assert_int_eq(t_int("SELECT count(*) FROM alerts"), 1);
	ck_assert_int_eq(t[0].d.id, t_int("SELECT id FROM alerts"));
	ck_assert_int_eq(t[1].d.id, t[0].d.id);
	ck_assert(t[0].d.dup != t[1].d.dup);
	ck_assert_str_eq(
	    t_sql("SELECT status || sender || audience FROM alerts"),
	    "draftconsole{\"lists\":[1]}");
	t_close(st);
}
END_TEST

static struct t_done
t_action(struct store *st, const struct sap_action *a)
{
	struct t_done t = {0};
	char err[256];

	ck_assert_msg(sap_action(st, a, t_on_done, &t, err, sizeof(err)) == 0,
	    "action: %s", err);
	ckpg_run_until(t_base, &t.done, "action");
	ck_assert_msg(t.d.ok, "action: %s", t.error);
	return t;
}

START_TEST(test_actions)
{
	struct store *st[2];
	struct sap_action a = {0};
	struct t_done t;
	int64_t id;

	if (pg_url[0] == '\0')
		return;
	t_open("alerts_actions", st);
	t_seed(5);
	id = t_int("INSERT INTO alerts (name, status, audience, sms,"
		   " validity_s, created_at, updated_at) VALUES ('x', 'draft',"
		   " '{\"lists\":[1]}', 1, 60, 1, 1) RETURNING id");
	a.id = id;
	a.t = (struct alert_transition){1u << ALERT_DRAFT, ALERT_SENDING, NULL,
	    5000};
	a.key = "send-1";
	t = t_action(st[0], &a);
	ck_assert(t.d.moved);
	t = t_action(st[1], &a); /* no longer a draft */
	ck_assert(!t.d.moved);
	ck_assert_str_eq(t_sql("SELECT status || ' ' || audience_max_id || ' '"
			       " || started_at || ' ' || send_key FROM alerts"),
	    "sending 5 5000 send-1");
	/* Its queued messages: one due, one held by quiet hours. */
	t_sql("INSERT INTO messages (direction, channel, to_addr, body, status,"
	      " next_attempt_at, not_before, alert_id, created_at, updated_at)"
	      " VALUES ('out', 'sms', '+1', 'a', 'queued', 5000, NULL, 1, 1,"
	      " 1), ('out', 'sms', '+2', 'b', 'queued', 9000, 9000, 1, 1, 1)");
	a.key = NULL;
	a.t = (struct alert_transition){1u << ALERT_SENDING, ALERT_PAUSED,
	    "paused by staff", 6000};
	ck_assert(t_action(st[1], &a).d.moved);
	ck_assert_str_eq(t_sql("SELECT status || ' ' || pause_reason FROM"
			       " alerts"),
	    "paused paused by staff");
	ck_assert_int_eq(t_int("SELECT count(*) FROM messages WHERE"
			       " next_attempt_at = 140737488355327"),
	    2);
	a.t = (struct alert_transition){1u << ALERT_PAUSED, ALERT_SENDING, NULL,
	    7000};
	a.release = true;
	ck_assert(t_action(st[0], &a).d.moved);
	ck_assert_str_eq(t_sql("SELECT string_agg(next_attempt_at::text, ','"
			       " ORDER BY id) FROM messages"),
	    "7000,9000");
	a.release = false;
	a.t = (struct alert_transition){1u << ALERT_SENDING, ALERT_CANCELLED,
	    NULL, 8000};
	ck_assert(t_action(st[0], &a).d.moved);
	ck_assert_str_eq(t_sql("SELECT status || ' ' || finished_at FROM"
			       " alerts"),
	    "cancelled 8000");
	ck_assert_int_eq(t_int("SELECT count(*) FROM messages WHERE status ="
			       " 'cancelled'"),
	    2);
	ck_assert_int_eq(t_int("SELECT count(*) FROM message_events WHERE"
			       " status = 'cancelled' AND text = 'alert"
			       " cancelled'"),
	    2);
	t_close(st);
}
END_TEST

/*
 * Two alerts sent with one Idempotency-Key on two nodes in the same turn:
 * both groups commit, one alert moves and keeps the key, the other is
 * told which alert holds it (without the lock, the unique send_key
 * failed the second group).
 */
START_TEST(test_send_key_two_nodes)
{
	struct store *st[2];
	struct sap_action a[2] = {{0}};
	struct t_done t[2];
	int64_t id[2];
	char err[256];
	int i;

	if (pg_url[0] == '\0')
		return;
	t_open("alerts_send_key", st);
	t_seed(3);
	memset(t, 0, sizeof(t));
	for (i = 0; i < 2; i++) {
		id[i] = t_alert("draft", "{\"lists\":[1]}");
		a[i].id = id[i];
		a[i].t = (struct alert_transition){1u << ALERT_DRAFT,
		    ALERT_SENDING, NULL, 5000};
		a[i].key = "send-same";
	}
	for (i = 0; i < 2; i++)
		ck_assert_msg(sap_action(st[i], &a[i], t_on_done, &t[i], err,
				  sizeof(err)) == 0,
		    "action: %s", err);
	ckpg_run_until(t_base, &t[0].done, "send a");
	ckpg_run_until(t_base, &t[1].done, "send b");
	for (i = 0; i < 2; i++)
		ck_assert_msg(t[i].d.ok, "send %d: %s", i, t[i].error);
	ck_assert(t[0].d.moved != t[1].d.moved);
	i = t[0].d.moved ? 0 : 1;
	ck_assert_int_eq(t[i].d.key_alert, 0);
	ck_assert_int_eq(t[1 - i].d.key_alert, id[i]);
	ck_assert_int_eq(t_int("SELECT count(*) FROM alerts WHERE status ="
			       " 'sending' AND send_key = 'send-same'"),
	    1);
	ck_assert_int_eq(t_int("SELECT count(*) FROM alerts WHERE status ="
			       " 'draft' AND send_key IS NULL"),
	    1);
	t_close(st);
}
END_TEST

START_TEST(test_draft_update_delete)
{
	struct store *st[2];
	struct alert_def d = {.name = "Two",
	    .audience = "{\"lists\":[1]}",
	    .sms = true,
	    .sender = "console",
	    .sms_body = "Hi again",
	    .validity_s = 120,
	    .create_key = "ignored"};
	struct t_done t;
	char err[256];
	int64_t draft, sending;

	if (pg_url[0] == '\0')
		return;
	t_open("alerts_drafts", st);
	t_seed(2);
	draft = t_alert("draft", "{\"lists\":[1]}");
	sending = t_alert("sending", "{\"lists\":[1]}");
	memset(&t, 0, sizeof(t));
	ck_assert(sap_draft(st[0], draft, &d, 9000, t_on_done, &t, err,
		      sizeof(err)) == 0);
	ckpg_run_until(t_base, &t.done, "update");
	ck_assert_msg(t.d.ok && t.d.moved, "update: %s", t.error);
	ck_assert_str_eq(t_sql("SELECT name || sms_body || validity_s ||"
			       " updated_at || coalesce(create_key, '-') FROM"
			       " alerts WHERE id = 1"),
	    "TwoHi again1209000-");
	memset(&t, 0, sizeof(t));
	ck_assert(sap_draft(st[1], sending, &d, 9000, t_on_done, &t, err,
		      sizeof(err)) == 0);
	ckpg_run_until(t_base, &t.done, "update of a sending alert");
	ck_assert(t.d.ok && !t.d.moved);
	memset(&t, 0, sizeof(t));
	ck_assert(sap_draft(st[1], sending, NULL, 9000, t_on_done, &t, err,
		      sizeof(err)) == 0);
	ckpg_run_until(t_base, &t.done, "delete of a sending alert");
	ck_assert(t.d.ok && !t.d.moved);
	memset(&t, 0, sizeof(t));
	ck_assert(sap_draft(st[1], draft, NULL, 9000, t_on_done, &t, err,
		      sizeof(err)) == 0);
	ckpg_run_until(t_base, &t.done, "delete");
	ck_assert(t.d.ok && t.d.moved);
	ck_assert_str_eq(t_sql("SELECT string_agg(id::text || status, ',')"
			       " FROM alerts"),
	    "2sending");
	t_close(st);
}
END_TEST

/* ---- the fan-out ------------------------------------------------------- */

struct t_tick {
	bool done;
	int rc;
	size_t started, finished, rows;
	int64_t row_ids[8];
};

static void
t_on_tick(void *arg, int rc, const struct sap_tick *t, const char *error)
{
	struct t_tick *k = arg;
	size_t i;

	ck_assert_msg(rc == 0, "tick: %s", error != NULL ? error : "");
	k->done = true;
	k->rc = rc;
	k->started = t->started;
	k->finished = t->done;
	k->rows = t->nrows;
	for (i = 0; i < t->nrows && i < 8; i++)
		k->row_ids[i] = t->rows[i].id;
}

static struct sap_fan *
t_fan(const char *node)
{
	char err[256];
	struct sap_fan *f =
	    sap_fan_open(t_base, db_url, node, err, sizeof(err));

	ck_assert_msg(f != NULL, "fan: %s", err);
	return f;
}

START_TEST(test_tick_two_nodes)
{
	struct store *st[2];
	struct sap_fan *f[2];
	struct t_tick k[2];
	char err[256];
	int64_t sched, fanned, live;
	int i;

	if (pg_url[0] == '\0')
		return;
	t_open("alerts_tick", st);
	t_seed(3);
	sched = t_alert("scheduled", "{\"lists\":[1]}");
	t_sql("UPDATE alerts SET scheduled_at = 1000, audience_max_id = NULL,"
	      " started_at = NULL");
	fanned = t_alert("sending", "{\"lists\":[1]}");
	t_sql("UPDATE alerts SET fanout_done = 1 WHERE status = 'sending'");
	live = t_alert("sending", "{\"lists\":[1]}");
	f[0] = t_fan("a");
	f[1] = t_fan("b");
	memset(k, 0, sizeof(k));
	for (i = 0; i < 2; i++)
		ck_assert_msg(sap_fan_tick(f[i], 2000, t_on_tick, &k[i], err,
				  sizeof(err)) == 0,
		    "tick: %s", err);
	ckpg_run_until(t_base, &k[0].done, "tick a");
	ckpg_run_until(t_base, &k[1].done, "tick b");
	ck_assert_int_eq(k[0].started + k[1].started, 1);
	ck_assert_int_eq(k[0].finished + k[1].finished, 1);
	ck_assert_str_eq(t_sql("SELECT string_agg(id || status || coalesce("
			       "audience_max_id, -1) || coalesce(started_at,"
			       " -1), ',' ORDER BY id) FROM alerts"),
	    "1sending32000,2done31,3sending31");
	(void)sched, (void)fanned;
	/* Each read the alerts left to fan out after its updates: the
	 * started one and the live one (or only the live one when it ran
	 * before the other node started the scheduled one). */
	for (i = 0; i < 2; i++) {
		ck_assert(k[i].rows >= 1);
		ck_assert_int_eq(k[i].row_ids[k[i].rows - 1], live);
	}
	sap_fan_close(f[0]);
	sap_fan_close(f[1]);
	t_close(st);
}
END_TEST

/* A batch's visitor: each member's SMS (and notes whom it saw). */
struct t_visit {
	struct sap_batch *b;
	int64_t seen[64];
	size_t n;
};

static int
t_visit_member(void *arg, const struct alert_member *m, char *err,
    size_t errlen)
{
	struct t_visit *v = arg;
	struct queue_new q = {0};

	(void)err;
	(void)errlen;
	if (v->n < 64)
		v->seen[v->n] = m->id;
	v->n++;
	q.channel = m->phone != NULL ? CHANNEL_SMS : CHANNEL_EMAIL;
	q.to = m->phone != NULL ? m->phone : m->email;
	q.sender = m->phone != NULL ? "console" : NULL;
	q.body = "hi";
	q.priority = MSG_PRIO_ALERT;
	q.member_id = m->id;
	q.expires_at = 99999;
	sap_batch_add(v->b, &q, m->id == 2 ? "no first_name" : NULL);
	return 0;
}

struct t_batch {
	bool done;
	struct sap_batch_done d;
	char error[256];
};

static void
t_on_batch(void *arg, const struct sap_batch_done *d)
{
	struct t_batch *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	if (d->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", d->error);
}

/* Starts a batch of alert 'id' (as loaded now) on f; t answers it. */
static void
t_batch_start(struct sap_fan *f, int64_t id, struct t_visit *v,
    struct t_batch *t, size_t chunk)
{
	struct alert_row row = {0};
	const struct alert_visitor vis = {t_visit_member, v};
	char sql[256], err[256];

	snprintf(sql, sizeof(sql),
	    "SELECT audience FROM alerts WHERE id = %lld", (long long)id);
	row.id = id;
	row.audience = strdup(t_sql(sql));
	snprintf(sql, sizeof(sql),
	    "SELECT audience_max_id FROM alerts WHERE id = %lld",
	    (long long)id);
	row.audience_max_id = t_int(sql);
	memset(t, 0, sizeof(*t));
	memset(v, 0, sizeof(*v));
	v->b = sap_batch(f,
	    &(struct sap_batch_req){.row = &row,
		.now = 5000,
		.sms = true,
		.email = true,
		.backlog = 1000000,
		.chunk = chunk,
		.scan = 20000},
	    &vis, t_on_batch, t, err, sizeof(err));
	ck_assert_msg(v->b != NULL, "batch: %s", err);
	free(row.audience);
}

static struct t_batch
t_batch_run(struct sap_fan *f, int64_t id, struct t_visit *v, size_t chunk)
{
	struct t_batch t;

	t_batch_start(f, id, v, &t, chunk);
	ckpg_run_until(t_base, &t.done, "batch");
	return t;
}

START_TEST(test_walk_audience)
{
	struct store *st[2];
	struct sap_fan *f;
	struct t_visit v;
	struct t_batch t;
	int64_t id;
	char got[256] = "";
	size_t i;

	if (pg_url[0] == '\0')
		return;
	t_open("alerts_walk", st);
	t_seed(12);
	t_sql("INSERT INTO lists (id, name, created_at, updated_at) VALUES"
	      " (2, 'other', 1, 1)");
	/* 1: reached. 2: reached (its message fails to render). 3: opted
	 * out. 4: left. 5: pending. 6: only on list 2. 7: tag missing.
	 * 8: field differs. 9: ZIP differs. 10: email only, bouncing.
	 * 11: email only, reached. 12: no phone, no email. */
	t_sql("UPDATE members SET tags = '[\"vol\",\"x\"]',"
	      " attributes = '{\"ward\": 5}', zip = '02139'");
	t_sql("INSERT INTO sms_optout (member_id, opted_out_at, source)"
	      " VALUES (3, 1, 't')");
	t_sql("UPDATE subscriptions SET status = 'left' WHERE member_id = 4");
	t_sql("UPDATE subscriptions SET status = 'pending' WHERE member_id ="
	      " 5");
	t_sql("UPDATE subscriptions SET list_id = 2 WHERE member_id = 6");
	t_sql("UPDATE members SET tags = '[\"x\"]' WHERE id = 7");
	t_sql("UPDATE members SET attributes = '{\"ward\": 6}' WHERE id = 8");
	t_sql("UPDATE members SET zip = '10001' WHERE id = 9");
	t_sql("UPDATE members SET phone = NULL, email = 'm' || id ||"
	      " '@example.org', bouncing = CASE WHEN id = 10 THEN 1 ELSE 0"
	      " END WHERE id IN (10, 11)");
	t_sql("UPDATE subscriptions SET channel = 'email' WHERE member_id IN"
	      " (10, 11)");
	t_sql("UPDATE members SET phone = NULL WHERE id = 12");
	id = t_alert("sending",
	    "{\"lists\":[1],\"tags\":[\"vol\"],\"fields\":{\"ward\":\"5\"},"
	    "\"zip_prefix\":\"021\"}");
	f = t_fan("a");
	t = t_batch_run(f, id, &v, 100);
	ck_assert_msg(t.d.rc == 1, "batch: %s", t.error);
	for (i = 0; i < v.n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld",
		    i > 0 ? "," : "", (long long)v.seen[i]);
	ck_assert_str_eq(got, "1,2,11");
	ck_assert_int_eq(t.d.members, 3);
	ck_assert_int_eq(t.d.made, 3);
	ck_assert(t.d.cursor.end);
	ck_assert_int_eq(t.d.cursor.next, 12);
	ck_assert_str_eq(t_sql("SELECT cursor || ' ' || fanout_done FROM"
			       " alerts"),
	    "12 1");
	/* the batch that ended the fan-out counted the audience */
	ck_assert_str_eq(t_sql("SELECT audience_sms || ' ' || audience_email"
			       " FROM alerts"),
	    "2 1");
	ck_assert_str_eq(t_sql("SELECT string_agg(member_id || channel ||"
			       " status || coalesce(error_text, ''), ','"
			       " ORDER BY member_id) FROM messages"),
	    "1smsqueued,2smsfailedno first_name,11emailqueued");
	ck_assert_str_eq(t_sql("SELECT string_agg(m.member_id || e.status,"
			       " ',' ORDER BY e.id) FROM message_events e"
			       " JOIN messages m ON m.id = e.message_id"),
	    "1queued,2queued,11queued,2failed");
	sap_fan_close(f);
	t_close(st);
}
END_TEST

/* ---- the audience's reads (create's checks, preview, follow_up) -------- */

struct t_aud {
	bool done;
	int rc;
	struct alert_reach r;
	int64_t missing[4];
	char seen[128]; /* the members visited, in order */
	char error[256];
};

static int
t_aud_member(void *arg, const struct alert_member *m, char *err, size_t errlen)
{
	struct t_aud *t = arg;

	(void)err;
	(void)errlen;
	snprintf(t->seen + strlen(t->seen), sizeof(t->seen) - strlen(t->seen),
	    "%s%lld", t->seen[0] != '\0' ? "," : "", (long long)m->id);
	return 0;
}

static void
t_on_aud(void *arg, int rc, const struct alert_reach *r, const int64_t *missing,
    const char *error)
{
	struct t_aud *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->rc = rc;
	if (rc == 0) {
		t->r = *r;
		memcpy(t->missing, missing, 2 * sizeof(*missing));
	} else
		snprintf(t->error, sizeof(t->error), "%s", error);
}

/* The reach of 'audience' by SMS, the first 10 members reached and the
 * longest first name, and who lacks a first name and the ward. */
static struct t_aud
t_audience(struct store *st, const char *audience)
{
	static const struct sap_missing_q mq[2] = {{true, {"first_name", NULL}},
	    {true, {NULL, "ward"}}};
	static const struct alert_field longest[1] = {{"first_name", NULL}};
	struct t_aud t = {0};
	char err[256];

	ck_assert_msg(sap_audience(st,
			  &(struct sap_audience_q){.audience = audience,
			      .sms = true,
			      .missing = mq,
			      .nmissing = 2,
			      .walk = 10,
			      .longest = longest,
			      .nlongest = 1,
			      .longest_limit = 1,
			      .v = {t_aud_member, &t}},
			  t_on_aud, &t, err, sizeof(err)) == 0,
	    "sap_audience: %s", err);
	ckpg_run_until(t_base, &t.done, "audience");
	ck_assert_msg(t.rc == 0, "audience: %s", t.error);
	return t;
}

struct t_lists {
	bool done;
	int64_t ids[4];
	size_t n;
	bool follow_up;
};

static void
t_on_lists(void *arg, int rc, const struct sap_lists_answer *l,
    const char *error)
{
	struct t_lists *t = arg;
	size_t i;

	ck_assert_msg(rc == 0, "lists: %s", error);
	t->done = true;
	for (i = 0; i < l->n && i < 4; i++)
		t->ids[i] = l->refs[i].id;
	t->n = l->n;
	t->follow_up = l->follow_up;
}

static struct t_lists
t_lists(struct store *st, const char *audience)
{
	struct t_lists t = {0};
	char err[256];

	ck_assert_msg(
	    sap_lists(st, audience, t_on_lists, &t, err, sizeof(err)) == 0,
	    "sap_lists: %s", err);
	ckpg_run_until(t_base, &t.done, "lists");
	return t;
}

START_TEST(test_audience_reach_and_follow_up)
{
	struct store *st[2];
	struct t_aud t;
	struct t_lists l;
	int64_t id;
	char aud[128], sql[512];

	if (pg_url[0] == '\0')
		return;
	t_open("alerts_audience", st);
	t_seed(6);
	/* 1, 2, 6: reached (6 without a first name, 1 alone with a ward);
	 * 3: opted out; 4: pending; 5: left. */
	t_sql("UPDATE members SET attributes = '{\"ward\": 5}' WHERE id = 1");
	t_sql("UPDATE members SET first_name = NULL, attributes ="
	      " '{\"ward\": \" \"}' WHERE id = 6");
	t_sql("INSERT INTO sms_optout (member_id, opted_out_at, source)"
	      " VALUES (3, 1, 't')");
	t_sql("UPDATE subscriptions SET status = 'pending' WHERE member_id ="
	      " 4");
	t_sql("UPDATE subscriptions SET status = 'left' WHERE member_id = 5");
	t = t_audience(st[0], "{\"lists\":[1]}");
	ck_assert_int_eq(t.r.matched, 5);
	ck_assert_int_eq(t.r.sms, 3);
	ck_assert_int_eq(t.r.email, 0);
	ck_assert_int_eq(t.r.sms_opted_out, 1);
	ck_assert_int_eq(t.r.unconfirmed, 1);
	ck_assert_int_eq(t.missing[0], 1);
	ck_assert_int_eq(t.missing[1], 2);
	/* the walk, then the longest first name (a NULL one last) */
	ck_assert_str_eq(t.seen, "1,2,6,1");

	/* follow_up: 1 got alert id's message, 2's failed, 6 replied. */
	id = t_alert("done", "{\"lists\":[1]}");
	snprintf(sql, sizeof(sql),
	    "INSERT INTO messages (direction, channel, member_id, to_addr,"
	    " body, status, next_attempt_at, alert_id, created_at,"
	    " updated_at) SELECT 'out', 'sms', g, 'x', 'hi', CASE g WHEN 2"
	    " THEN 'failed' ELSE 'sent' END, 1, %lld, 10, 10 FROM"
	    " unnest(ARRAY[1, 2, 6]) g",
	    (long long)id);
	t_sql(sql);
	t_sql("INSERT INTO messages (direction, channel, member_id, to_addr,"
	      " body, status, next_attempt_at, created_at, updated_at) VALUES"
	      " ('in', 'sms', 6, 'x', 'ok', 'received', 20, 20, 20)");
	snprintf(aud, sizeof(aud),
	    "{\"lists\":[1],\"follow_up\":{\"alert\":%lld,"
	    "\"who\":\"no_reply\"}}",
	    (long long)id);
	t = t_audience(st[1], aud);
	ck_assert_int_eq(t.r.sms, 1);
	ck_assert_str_eq(t.seen, "1,1");
	l = t_lists(st[0], aud);
	ck_assert(l.follow_up);
	ck_assert_int_eq(l.n, 1);
	ck_assert_int_eq(l.ids[0], 1);
	snprintf(aud, sizeof(aud),
	    "{\"lists\":[1],\"follow_up\":{\"alert\":%lld,"
	    "\"who\":\"missed\"}}",
	    (long long)id);
	t = t_audience(st[0], aud);
	ck_assert_int_eq(t.r.sms, 1);
	ck_assert_str_eq(t.seen, "2,2");
	/* lists by name and id, one unknown; an unknown follow_up alert */
	l = t_lists(st[1],
	    "{\"lists\":[\"news\",7],\"follow_up\":"
	    "{\"alert\":999,\"who\":\"missed\"}}");
	ck_assert(!l.follow_up);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(l.ids[0], 1);
	ck_assert_int_eq(l.ids[1], 0);
	t_close(st);
}
END_TEST

START_TEST(test_batch_skips_a_locked_alert)
{
	struct store *st[2];
	struct sap_fan *f;
	struct t_visit v;
	struct t_batch t;
	struct pg *locker;
	int64_t id;

	if (pg_url[0] == '\0')
		return;
	t_open("alerts_locked", st);
	t_seed(10);
	id = t_alert("sending", "{\"lists\":[1]}");
	locker = ckpg_connect(t_base, db_url);
	ckpg_sql(t_base, locker, "BEGIN", NULL);
	ckpg_sql(t_base, locker, "SELECT id FROM alerts FOR UPDATE", NULL);
	f = t_fan("a");
	t = t_batch_run(f, id, &v, 100);
	ck_assert_int_eq(t.d.rc, 0);
	ck_assert_int_eq(v.n, 0);
	ck_assert_int_eq(t_int("SELECT count(*) FROM messages"), 0);
	ckpg_sql(t_base, locker, "ROLLBACK", NULL);
	t = t_batch_run(f, id, &v, 4);
	ck_assert_msg(t.d.rc == 1, "batch: %s", t.error);
	ck_assert_int_eq(t.d.members, 4);
	ck_assert(!t.d.cursor.end);
	ck_assert_int_eq(t_int("SELECT cursor FROM alerts"), 4);
	ck_assert_int_eq(t_int("SELECT count(*) FROM messages"), 4);
	pg_free(locker);
	sap_fan_close(f);
	t_close(st);
}
END_TEST

START_TEST(test_node_killed_mid_batch)
{
	struct store *st[2];
	struct sap_fan *f[2];
	struct t_visit v;
	struct t_batch t;
	struct pg *locker;
	int64_t id;
	int rounds = 0, tries;
	const char *app;

	if (pg_url[0] == '\0')
		return;
	t_open("alerts_killed", st);
	t_seed(1000);
	id = t_alert("sending", "{\"lists\":[1]}");
	f[0] = t_fan("a");
	f[1] = t_fan("b");
	/* Node a's batch, held inside its transaction: its walk reads
	 * subscriptions, which the locker holds. (Watched from t_pg: a
	 * transaction sees one snapshot of pg_stat_activity.) */
	locker = ckpg_connect(t_base, db_url);
	ckpg_sql(t_base, locker, "BEGIN", NULL);
	ckpg_sql(t_base, locker,
	    "LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE", NULL);
	t_batch_start(f[0], id, &v, &t, 300);
	for (tries = 0; tries < 100000; tries++) {
		app = ckpg_sql(t_base, t_pg,
		    "SELECT application_name FROM pg_stat_activity WHERE"
		    " wait_event_type = 'Lock' AND application_name ="
		    " 'outreachd-alerts:a'",
		    NULL);
		if (app[0] != '\0')
			break;
	}
	ck_assert_msg(tries < 100000, "node a's walk never waited");
	/* Node b skips the alert meanwhile. */
	{
		struct t_visit vb;
		struct t_batch tb = t_batch_run(f[1], id, &vb, 300);

		ck_assert_int_eq(tb.d.rc, 0);
	}
	/* Node a dies: its backend goes, its transaction with it. */
	ckpg_sql(t_base, locker,
	    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
	    " application_name = 'outreachd-alerts:a'",
	    NULL);
	ckpg_sql(t_base, locker, "ROLLBACK", NULL);
	ckpg_run_until(t_base, &t.done, "the killed batch");
	ck_assert_int_eq(t.d.rc, -1);
	ck_assert_int_eq(t_int("SELECT count(*) FROM messages"), 0);
	ck_assert_int_eq(t_int("SELECT cursor FROM alerts"), 0);
	/* Node b fans it out from the committed cursor. */
	do {
		t = t_batch_run(f[1], id, &v, 300);
		ck_assert_msg(t.d.rc == 1, "batch: %s", t.error);
		ck_assert(t.d.members <= 300);
		rounds++;
	} while (!t.d.cursor.end);
	ck_assert_int_eq(rounds, 4);
	ck_assert_int_eq(t_int("SELECT count(*) FROM messages"), 1000);
	ck_assert_int_eq(t_int("SELECT count(DISTINCT member_id) FROM"
			       " messages"),
	    1000);
	ck_assert_str_eq(t_sql("SELECT cursor || ' ' || fanout_done FROM"
			       " alerts"),
	    "1000 1");
	pg_free(locker);
	sap_fan_close(f[0]);
	sap_fan_close(f[1]);
	t_close(st);
}
END_TEST

Suite *
alerts_pg_suite(void)
{
	Suite *s = suite_create("alerts_pg");
	TCase *tc = tcase_create("pg");

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_create_one_key_two_nodes);
	tcase_add_test(tc, test_actions);
	tcase_add_test(tc, test_send_key_two_nodes);
	tcase_add_test(tc, test_draft_update_delete);
	tcase_add_test(tc, test_tick_two_nodes);
	tcase_add_test(tc, test_walk_audience);
	tcase_add_test(tc, test_audience_reach_and_follow_up);
	tcase_add_test(tc, test_batch_skips_a_locked_alert);
	tcase_add_test(tc, test_node_killed_mid_batch);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
