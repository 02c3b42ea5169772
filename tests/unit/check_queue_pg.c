/*
 * check_queue_pg.c - unit tests of the hot path's operations on a
 * PostgreSQL store (queue/queue_pg.c, queue/store_staff_pg.c) against a
 * throwaway cluster (check_pgcluster.h), with one or two stores ("nodes")
 * on one loop, as daemons on one database would have:
 *
 *  - an enqueue made durable: its id, its row and history row committed;
 *  - an idempotency key given to two nodes, one after the other and in
 *    the same loop turn: both answer the first message's id, one row;
 *  - the message as JSON (with its history), and none for an unknown id;
 *  - a token: found with its role, unknown, revoked, a disabled member;
 *    the daemon's own token bootstrapped once across two nodes;
 *  - logins and sessions: one email created on two nodes in one turn
 *    (one member), a session made on one node checked, touched and
 *    revoked on the other, a disabled member's sessions and tokens
 *    refused, the last admin kept (of two demoted on two nodes at once,
 *    one refused: fails without the advisory lock);
 *  - delivery reports: forward only (a later failure after delivered is
 *    stale), kept early for an unknown provider id and for a message not
 *    sent yet (status_early, the keys queue_webhooks.c uses);
 *  - received texts: a provider's retry stores nothing twice; STOP opts
 *    the member out with one consent event and one exempt reply, a
 *    second STOP changes nothing, START opts back in, YES while not
 *    opted out routes nothing, HELP answers;
 *  - routed texts of one member on two nodes at once, the first node's
 *    group held open after its statement by an advisory lock: the
 *    second node's text waits on the member's row and then sees what
 *    the first committed: two plain texts make one conversation (unread
 *    2), two keywords one subscription, one consent event, a welcome
 *    and an "already" reply; a double opt-in keyword then YES on the
 *    other node: pending, then active with a confirm event and the
 *    list's welcome;
 *  - follow-up questions (route.prepare, as inbound.c prepares them): a
 *    keyword on one node sends the welcome and the first question, the
 *    answer on the other is stored and the next asked (no conversation);
 *    two texts of the member on both nodes at once, both having read
 *    the question before either wrote: one acts on it (a bad answer,
 *    asked again), the other finds it changed and is a conversation
 *    message; the good answer clears the question.
 *
 * Assertions are on states, never timings. Each test has its own
 * database, migrated by store_open_config(). Skipped, with the reason
 * printed, when PostgreSQL's server binaries are missing; without libpq
 * the suite holds one test that says so.
 */
#include "autoconf.h"

#include <stdio.h>

#include <check.h>

#include "check_suites.h"

#ifndef HAVE_LIBPQ

#include "check_pgcluster.h"

Suite *
queue_pg_suite(void)
{
	return ckpg_not_built_suite("queue_pg");
}

#else /* HAVE_LIBPQ */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "check_pgcluster.h"
#include "message.h"
#include "pg.h"
#include "queue.h"
#include "queue_pg.h"
#include "store-internal.h"
#include "store.h"
#include "store_staff.h"
#include "store_staff_pg.h"

static char pg_url[512]; /* "" = no cluster: the tests skip */
static struct event_base *t_base;

static void
cluster_start(void)
{
	ckpg_start("check_queue_pg", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_queue_pg", pg_url);
}

#define NEED_CLUSTER()                 \
	do {                           \
		if (pg_url[0] == '\0') \
			return;        \
	} while (0)

/* ---- harness ------------------------------------------------------------ */

/* Runs the loop until every flag of v[0..n) is set (fails on a hang). */
static void
t_run_all(bool *const *v, size_t n, const char *what)
{
	size_t i;

	for (i = 0; i < n; i++)
		ckpg_run_until(t_base, v[i], what);
}

static void
t_run_until(bool *flag, const char *what)
{
	ckpg_run_until(t_base, flag, what);
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

static long long
t_int(struct pg *pg, const char *sql, const char *p1)
{
	return strtoll(t_sql(pg, sql, p1), NULL, 10);
}

/* A fresh database 'db' (schema applied by the first store opened). */
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

static struct store *
t_open(const char *url, const char *node)
{
	struct store_config cfg;
	struct store *st;
	char err[512];

	memset(&cfg, 0, sizeof(cfg));
	cfg.backend = STORE_POSTGRESQL;
	cfg.url = url;
	cfg.node = node;
	cfg.base = t_base;
	cfg.connect_timeout_ms = 30000;
	st = store_open_config(&cfg, err, sizeof(err));
	ck_assert_msg(st != NULL, "store_open_config: %s", err);
	store_attach(st, t_base, 0);
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

/* A durable operation's answer, copied. */
struct t_done {
	bool done;
	struct queue_done d;
	char error[256];
	char routed[16], list[72]; /* d.routed and d.list point here */
};

static void
t_on_done(void *arg, const struct queue_done *d)
{
	struct t_done *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	t->d.error = NULL;
	if (d->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", d->error);
	/* borrowed for the call: copied */
	if (d->routed != NULL) {
		snprintf(t->routed, sizeof(t->routed), "%s", d->routed);
		t->d.routed = t->routed;
	}
	if (d->list != NULL) {
		snprintf(t->list, sizeof(t->list), "%s", d->list);
		t->d.list = t->list;
	}
}

static void
t_wait_ok(struct t_done *t, const char *what)
{
	t_run_until(&t->done, what);
	ck_assert_msg(t->d.ok, "%s failed: %s", what, t->error);
}

static struct queue_new
t_msg(const char *to, const char *key)
{
	return (struct queue_new){.channel = CHANNEL_SMS,
	    .to = to,
	    .sender = "main",
	    .body = "hello",
	    .idempotency_key = key,
	    .priority = MSG_PRIO_DEFAULT,
	    .encoding = "gsm7",
	    .segments = 1};
}

/* Enqueues m on st and waits for its commit. */
static struct queue_done
t_enqueue(struct store *st, const struct queue_new *m)
{
	struct t_done t = {0};
	char err[256];

	ck_assert_msg(queue_enqueue_durable(st, m, msg_now_ms(), t_on_done, &t,
			  err, sizeof(err)) == 0,
	    "enqueue: %s", err);
	t_wait_ok(&t, "enqueue");
	return t.d;
}

/* ---- enqueue ------------------------------------------------------------ */

START_TEST(test_enqueue_durable)
{
	char url[600], id[24];
	struct queue_new m = t_msg("+15555550101", NULL);
	struct queue_done d;
	struct store *st;
	struct pg *pg;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_enqueue", url, sizeof(url));
	st = t_open(url, "a");
	pg = t_connect(url);
	d = t_enqueue(st, &m);
	ck_assert(!d.dup);
	ck_assert_int_gt(d.id, 0);
	snprintf(id, sizeof(id), "%" PRId64, d.id);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT status || ' ' || to_addr || ' ' || sender"
			     " || ' ' || encoding FROM messages WHERE id = $1",
			     id),
	    "queued +15555550101 main gsm7");
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM message_events"
			     " WHERE message_id = $1 AND status = 'queued'",
			     id),
	    1);
	/* refused before anything is sent: no callback */
	m.sender = NULL;
	ck_assert_int_eq(queue_enqueue_durable(st, &m, msg_now_ms(), t_on_done,
			     NULL, url, sizeof(url)),
	    -1);
	ck_assert_str_eq(url, "sender: required for SMS");
	pg_free(pg);
	store_close(st);
	t_teardown();
}
END_TEST

START_TEST(test_idempotency_two_nodes)
{
	struct queue_new m = t_msg("+15555550102", "key-1");
	struct queue_new m2 = t_msg("+15555550103", "key-2");
	struct t_done a = {0}, b = {0};
	bool *both[] = {&a.done, &b.done};
	struct queue_done first, again;
	struct store *na, *nb;
	char url[600], err[256];
	struct pg *pg;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_idem", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = t_connect(url);
	/* one after the other: B answers A's message */
	first = t_enqueue(na, &m);
	ck_assert(!first.dup);
	again = t_enqueue(nb, &m);
	ck_assert(again.dup);
	ck_assert_int_eq(again.id, first.id);
	ck_assert_int_eq(again.status, MSG_ST_QUEUED);
	/* both in one turn: one row, the same id for both */
	ck_assert_int_eq(queue_enqueue_durable(na, &m2, msg_now_ms(), t_on_done,
			     &a, err, sizeof(err)),
	    0);
	ck_assert_int_eq(queue_enqueue_durable(nb, &m2, msg_now_ms(), t_on_done,
			     &b, err, sizeof(err)),
	    0);
	t_run_all(both, 2, "two enqueues");
	ck_assert_msg(a.d.ok && b.d.ok, "%s / %s", a.error, b.error);
	ck_assert_int_eq(a.d.id, b.d.id);
	ck_assert(a.d.dup != b.d.dup);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM messages"
			     " WHERE idempotency_key = $1",
			     "key-2"),
	    1);
	ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM message_events", NULL),
	    2);
	pg_free(pg);
	store_close(nb);
	store_close(na);
	t_teardown();
}
END_TEST

/* ---- a message as JSON -------------------------------------------------- */

struct t_json {
	bool done;
	json_t *o;
	char error[256];
};

static void
t_on_json(void *arg, json_t *o, const char *error)
{
	struct t_json *t = arg;

	t->done = true;
	t->o = o;
	if (error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", error);
}

START_TEST(test_message_json)
{
	struct queue_new m = t_msg("+15555550104", NULL);
	struct t_json j = {0}, none = {0};
	struct queue_done d;
	struct store *st;
	char url[600], err[256];
	json_t *h;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_json", url, sizeof(url));
	st = t_open(url, "a");
	d = t_enqueue(st, &m);
	ck_assert_int_eq(
	    queue_message_json_async(st, d.id, t_on_json, &j, err, sizeof(err)),
	    0);
	t_run_until(&j.done, "message json");
	ck_assert_msg(j.o != NULL, "no message: %s", j.error);
	ck_assert_int_eq(json_integer_value(json_object_get(j.o, "id")), d.id);
	ck_assert_str_eq(json_string_value(json_object_get(j.o, "status")),
	    "queued");
	ck_assert_str_eq(json_string_value(json_object_get(j.o, "to")),
	    "+15555550104");
	ck_assert(json_is_null(json_object_get(j.o, "error")));
	h = json_object_get(j.o, "history");
	ck_assert_int_eq(json_array_size(h), 1);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_array_get(h, 0), "status")),
	    "queued");
	json_decref(j.o);
	ck_assert_int_eq(queue_message_json_async(st, d.id + 1000, t_on_json,
			     &none, err, sizeof(err)),
	    0);
	t_run_until(&none.done, "no message");
	ck_assert_ptr_null(none.o);
	ck_assert_str_eq(none.error, "");
	store_close(st);
	t_teardown();
}
END_TEST

/* ---- tokens ------------------------------------------------------------- */

struct t_auth {
	bool done;
	int rc;
	struct staff_auth a;
	char error[256];
};

static void
t_on_auth(void *arg, int rc, const struct staff_auth *a, const char *error)
{
	struct t_auth *t = arg;

	t->done = true;
	t->rc = rc;
	if (a != NULL)
		t->a = *a;
	if (error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", error);
}

static int
t_auth(struct store *st, const char *hash, struct staff_auth *out)
{
	struct t_auth t = {0};
	char err[256];

	ck_assert_msg(store_token_auth_async(st, hash, t_on_auth, &t, err,
			  sizeof(err)) == 0,
	    "token auth: %s", err);
	t_run_until(&t.done, "token auth");
	ck_assert_msg(t.rc != -1, "token auth: %s", t.error);
	if (out != NULL)
		*out = t.a;
	return t.rc;
}

/* A token create's or revoke's answer. */
struct t_tok {
	bool done;
	bool ok;
	int64_t id;
};

static void
t_on_tok(void *arg, bool ok, int64_t id, const char *error)
{
	struct t_tok *t = arg;

	(void)error;
	t->done = true;
	t->ok = ok;
	t->id = id;
}

/* store_token_create_durable(): the new id (0: no such enabled owner). */
static int64_t
t_token_new(struct store *st, int64_t owner, const char *hash)
{
	struct t_tok t = {0};
	char err[256];

	ck_assert_msg(store_token_create_durable(st,
			  &(struct token_new){.staff_id = owner,
			      .name = "made",
			      .hash = hash,
			      .now = 7},
			  t_on_tok, &t, err, sizeof(err)) == 0,
	    "token create: %s", err);
	t_run_until(&t.done, "token create");
	ck_assert(t.ok);
	return t.id;
}

/* store_token_revoke_durable(): the token's owner (0: none). */
static int64_t
t_token_revoke(struct store *st, int64_t id, int64_t by)
{
	struct t_tok t = {0};
	char err[256];

	ck_assert_msg(store_token_revoke_durable(st,
			  &(struct token_revoke){.id = id, .by = by, .now = 8},
			  t_on_tok, &t, err, sizeof(err)) == 0,
	    "token revoke: %s", err);
	t_run_until(&t.done, "token revoke");
	ck_assert(t.ok);
	return t.id;
}

/* 64 hex digits made of one repeated digit: a SHA-256's shape. */
static const char *
t_hash(char c, char buf[65])
{
	memset(buf, c, 64);
	buf[64] = '\0';
	return buf;
}

START_TEST(test_token_auth)
{
	char url[600], err[256], h1[65], h2[65], h3[65], h4[65], h5[65];
	struct staff_auth a;
	int64_t tid;
	struct store *na, *nb;
	struct pg *pg;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_token", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = t_connect(url);
	/* the daemon's token: staff #1 made once, by whichever node */
	ck_assert_int_eq(
	    store_staff_boot(na, t_hash('1', h1), 1000, err, sizeof(err)),
	    STAFF_BOOT_CREATED);
	ck_assert_int_eq(store_staff_boot(nb, h1, 1001, err, sizeof(err)),
	    STAFF_BOOT_KEPT);
	ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM staff", NULL), 1);
	ck_assert_int_eq(t_auth(nb, h1, &a), 1);
	ck_assert_str_eq(a.role, "admin");
	ck_assert_int_eq(a.staff_id,
	    t_int(pg, "SELECT id FROM staff WHERE name = 'Administrator'",
		NULL));
	/* a new daemon token replaces the old one */
	ck_assert_int_eq(
	    store_staff_boot(nb, t_hash('2', h2), 1002, err, sizeof(err)),
	    STAFF_BOOT_ROTATED);
	ck_assert_int_eq(t_auth(na, h1, NULL), 0);
	ck_assert_int_eq(t_auth(na, h2, NULL), 1);
	/* an organizer's token (as outreachctl token create makes it) */
	t_sql(pg,
	    "INSERT INTO staff (name, role, created_at, updated_at)"
	    " VALUES ('Org', 'organizer', 1, 1)",
	    NULL);
	t_sql(pg,
	    "INSERT INTO api_tokens (staff_id, name, token_hash, daemon,"
	    " created_at) SELECT id, 't', $1, 0, 1 FROM staff"
	    " WHERE name = 'Org'",
	    t_hash('3', h3));
	ck_assert_int_eq(t_auth(na, h3, &a), 1);
	ck_assert_str_eq(a.role, "organizer");
	ck_assert_int_eq(t_auth(na, t_hash('4', h4), NULL), 0); /* unknown */
	/* made through the API on one node, used and revoked on the other */
	tid = t_token_new(na, a.staff_id, t_hash('5', h5));
	ck_assert_int_gt(tid, 0);
	ck_assert_int_eq(t_auth(nb, h5, &a), 1);
	ck_assert_str_eq(a.role, "organizer");
	ck_assert_int_eq(t_token_new(na, a.staff_id + 100, t_hash('6', h4)), 0);
	ck_assert_int_eq(t_token_revoke(nb, tid + 100, 0), 0); /* none */
	/* someone else's token: its owner answered, nothing revoked */
	ck_assert_int_eq(t_token_revoke(nb, tid, a.staff_id + 1), a.staff_id);
	ck_assert_int_eq(t_auth(na, h5, NULL), 1);
	ck_assert_int_eq(t_token_revoke(nb, tid, a.staff_id), a.staff_id);
	ck_assert_int_eq(t_auth(na, h5, NULL), 0);
	t_sql(pg, "UPDATE api_tokens SET revoked_at = 5 WHERE token_hash = $1",
	    h3);
	ck_assert_int_eq(t_auth(nb, h3, NULL), 0); /* revoked */
	t_sql(pg, "UPDATE staff SET disabled = 1 WHERE role = 'admin'", NULL);
	ck_assert_int_eq(t_auth(nb, h2, NULL), 0); /* disabled member */
	pg_free(pg);
	store_close(nb);
	store_close(na);
	t_teardown();
}
END_TEST

/* ---- logins, sessions and the staff routes ------------------------------ */

/* A staff write's answer, copied. */
struct t_sdone {
	bool done;
	struct staff_done d;
	int64_t member; /* d.o's "id" */
};

static void
t_on_sdone(void *arg, const struct staff_done *d)
{
	struct t_sdone *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	t->d.o = NULL;
	t->d.role = NULL;
	t->d.error = NULL;
	if (d->o != NULL)
		t->member = json_integer_value(json_object_get(d->o, "id"));
}

/* A read's answer as JSON text. */
struct t_sjson {
	bool done;
	char *text; /* NULL: none */
};

static void
t_on_sjson(void *arg, json_t *o, const char *error)
{
	struct t_sjson *t = arg;

	ck_assert_msg(error == NULL, "read: %s", error);
	t->done = true;
	t->text =
	    o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
}

static void
t_staff_new_send(struct store *st, const struct staff_new *n, struct t_sdone *t)
{
	char err[256];

	ck_assert_msg(
	    store_staff_create_pg(st, n, t_on_sdone, t, err, sizeof(err)) == 0,
	    "staff create: %s", err);
}

static void
t_update_send(struct store *st, int64_t id, const struct staff_patch *p,
    struct t_sdone *t)
{
	char err[256];

	ck_assert_msg(store_staff_update_pg(st,
			  &(struct staff_update){.id = id, .patch = p},
			  t_on_sdone, t, err, sizeof(err)) == 0,
	    "staff update: %s", err);
}

/* The session 'hash' checked on st at 'now' (idle 1000): 1 / 0. */
static int
t_session(struct store *st, const char *hash, int64_t now,
    struct staff_auth *out)
{
	struct t_auth t = {0};
	char err[256];

	ck_assert_msg(store_session_auth_pg(st,
			  &(struct session_check){.hash = hash,
			      .now = now,
			      .idle_ms = 1000},
			  t_on_auth, &t, err, sizeof(err)) == 0,
	    "session auth: %s", err);
	t_run_until(&t.done, "session auth");
	ck_assert_msg(t.rc != -1, "session auth: %s", t.error);
	if (out != NULL)
		*out = t.a;
	return t.rc;
}

static struct t_sdone
t_session_new(struct store *st, int64_t staff, const char *hash)
{
	struct t_sdone t = {0};
	char err[256];

	ck_assert_msg(store_session_create_pg(st,
			  &(struct session_new){.staff_id = staff,
			      .id_hash = hash,
			      .via = "password",
			      .peer = "127.0.0.1",
			      .now = 100,
			      .expires_at = 100000},
			  t_on_sdone, &t, err, sizeof(err)) == 0,
	    "session create: %s", err);
	t_run_until(&t.done, "session create");
	ck_assert(t.d.ok);
	return t;
}

static struct t_sdone
t_session_revoke(struct store *st, int64_t id, int64_t by)
{
	struct t_sdone t = {0};
	char err[256];

	ck_assert_msg(store_session_revoke_pg(st,
			  &(struct session_revoke){.id = id,
			      .by = by,
			      .now = 200,
			      .idle_ms = 1000},
			  t_on_sdone, &t, err, sizeof(err)) == 0,
	    "session revoke: %s", err);
	t_run_until(&t.done, "session revoke");
	ck_assert(t.d.ok);
	return t;
}

static void
t_row(void *arg, int rc, const struct staff_row *row, const char *error)
{
	struct staff_row *out = arg;

	ck_assert_msg(rc != -1, "by email: %s", error);
	out->id = rc == 1 ? row->id : 0;
	if (rc == 1)
		snprintf(out->password_hash, sizeof(out->password_hash), "%s",
		    row->password_hash);
	out->disabled = true; /* answered */
}

START_TEST(test_staff_two_nodes)
{
	char url[600], err[256], h1[65], h2[65], ids[24];
	struct t_sdone c1 = {0}, c2 = {0}, t, u1 = {0}, u2 = {0};
	struct t_sjson j = {0};
	struct staff_row row = {0};
	struct staff_auth a;
	struct store *na, *nb;
	int64_t org, adm2;
	struct pg *pg;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_staff", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = t_connect(url);
	ck_assert_int_eq(
	    store_staff_boot(na, t_hash('1', h1), 1000, err, sizeof(err)),
	    STAFF_BOOT_CREATED);
	/* one email created on both nodes in one turn: one member, one 409,
	 * no group failed (without ON CONFLICT the second fails) */
	t_staff_new_send(na,
	    &(struct staff_new){.name = "Olga",
		.email = "o@example.org",
		.role = "organizer",
		.password_hash = "$argon2id$o",
		.now = 10},
	    &c1);
	t_staff_new_send(nb,
	    &(struct staff_new){.name = "Olga",
		.email = "o@example.org",
		.role = "organizer",
		.now = 10},
	    &c2);
	t_run_until(&c1.done, "create a");
	t_run_until(&c2.done, "create b");
	ck_assert(c1.d.ok && c2.d.ok);
	ck_assert_int_eq(c1.d.found + c2.d.found, 1);
	org = c1.d.found ? c1.member : c2.member;
	ck_assert_int_gt(org, 1);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM staff WHERE email = $1",
			     "o@example.org"),
	    1);
	ck_assert_int_eq(store_staff_by_email_pg(nb, "o@example.org", t_row,
			     &row, err, sizeof(err)),
	    0);
	while (!row.disabled)
		event_base_loop(t_base, EVLOOP_ONCE);
	ck_assert_int_eq(row.id, org);

	/* a session made on a, checked on b, revoked on b */
	t = t_session_new(na, org, t_hash('a', h2));
	ck_assert(t.d.found);
	ck_assert_int_eq(t.member, org);
	ck_assert_int_eq(t_session(nb, h2, 150, &a), 1);
	ck_assert_int_eq(a.staff_id, org);
	ck_assert_int_eq(a.session_id, t.d.id);
	ck_assert_str_eq(a.role, "organizer");
	ck_assert_int_eq(a.last_seen_at, 100);
	ck_assert_int_eq(t_session(nb, h2, 1200, NULL), 0); /* idle */
	ck_assert_int_eq(
	    store_session_touch_pg(na, t.d.id, 1100, err, sizeof(err)), 0);
	store_flush(na, err, sizeof(err));
	ck_assert_int_eq(t_session(nb, h2, 1200, NULL), 1);
	ck_assert(!t_session_revoke(nb, t.d.id, org + 1).d.found);
	ck_assert_int_eq(t_session(na, h2, 1200, NULL), 1);
	ck_assert_int_eq(t_session_revoke(nb, t.d.id, 0).d.id, org);
	ck_assert_int_eq(t_session(na, h2, 1200, NULL), 0);
	ck_assert(!t_session_revoke(nb, t.d.id, 0).d.found);

	/* disabled on b: its sessions and tokens revoked, no new session */
	t = t_session_new(na, org, t_hash('b', h2));
	ck_assert(t.d.found);
	ck_assert_int_gt(t_token_new(na, org, t_hash('c', h1)), 0);
	memset(&t, 0, sizeof(t));
	t_update_send(nb, org,
	    &(struct staff_patch){.set_disabled = true,
		.disabled = true,
		.now = 300},
	    &t);
	t_run_until(&t.done, "disable");
	ck_assert(t.d.ok && t.d.found && !t.d.last_admin);
	ck_assert_int_eq(t_session(na, t_hash('b', h2), 1200, NULL), 0);
	ck_assert_int_eq(t_auth(na, h1, NULL), 0);
	snprintf(ids, sizeof(ids), "%" PRId64, org);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM api_tokens WHERE "
			     "revoked_at IS NULL AND staff_id = $1::bigint",
			     ids),
	    0);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM sessions WHERE "
			     "revoked_at IS NULL AND staff_id = $1::bigint",
			     ids),
	    0);
	ck_assert(!t_session_new(na, org, t_hash('d', h2)).d.found);

	/* the last admin: one refused; of two demoted on two nodes in one
	 * turn, one (without the lock both pass: no admin left) */
	memset(&t, 0, sizeof(t));
	t_update_send(na, 1,
	    &(struct staff_patch){.set_role = true, .role = "organizer"}, &t);
	t_run_until(&t.done, "demote");
	ck_assert(t.d.ok && t.d.found && t.d.last_admin);
	memset(&c1, 0, sizeof(c1));
	t_staff_new_send(na,
	    &(struct staff_new){.name = "Ada",
		.email = "a@example.org",
		.role = "admin",
		.now = 10},
	    &c1);
	t_run_until(&c1.done, "create admin");
	adm2 = c1.member;
	t_update_send(na, 1,
	    &(struct staff_patch){.set_role = true, .role = "organizer"}, &u1);
	t_update_send(nb, adm2,
	    &(struct staff_patch){.set_disabled = true, .disabled = true}, &u2);
	t_run_until(&u1.done, "demote 1");
	t_run_until(&u2.done, "disable 2");
	ck_assert(u1.d.ok && u2.d.ok);
	ck_assert_int_eq(u1.d.last_admin + u2.d.last_admin, 1);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM staff WHERE role = 'admin'"
			     " AND disabled = 0",
			     NULL),
	    1);
	memset(&t, 0, sizeof(t));
	t_update_send(nb, 999,
	    &(struct staff_patch){.set_name = true, .name = "Nobody"}, &t);
	t_run_until(&t.done, "update none");
	ck_assert(t.d.ok && !t.d.found);

	/* the reads: a member (none), the list without emails */
	ck_assert_int_eq(
	    store_staff_json_pg(nb, 999, t_on_sjson, &j, err, sizeof(err)), 0);
	t_run_until(&j.done, "staff one");
	ck_assert_ptr_null(j.text);
	memset(&j, 0, sizeof(j));
	ck_assert_int_eq(store_staff_list_json_pg(nb, false, t_on_sjson, &j,
			     err, sizeof(err)),
	    0);
	t_run_until(&j.done, "staff list");
	ck_assert_ptr_nonnull(j.text);
	ck_assert_ptr_null(strstr(j.text, "example.org"));
	ck_assert_ptr_nonnull(strstr(j.text, "\"name\":\"Olga\""));
	free(j.text);
	pg_free(pg);
	store_close(nb);
	store_close(na);
	t_teardown();
}
END_TEST

/* ---- delivery reports --------------------------------------------------- */

static struct queue_done
t_report(struct store *st, int64_t id, const char *pid, enum msg_status s)
{
	struct status_update u = {.msg_id = id, .status = s};
	struct t_done t = {0};
	char err[256];

	snprintf(u.provider_id, sizeof(u.provider_id), "%s", pid);
	if (s != MSG_ST_DELIVERED) {
		u.code = 30005;
		snprintf(u.text, sizeof(u.text), "unknown handset");
	}
	ck_assert_msg(queue_status_update_durable(st,
			  &(struct queue_webhook){.provider = "twilio",
			      .now = msg_now_ms()},
			  &u, t_on_done, &t, err, sizeof(err)) == 0,
	    "status update: %s", err);
	t_wait_ok(&t, "status update");
	return t.d;
}

START_TEST(test_status_forward_and_early)
{
	struct queue_new m = t_msg("+15555550105", NULL);
	struct queue_done d, sent, queued;
	struct store *na, *nb;
	char url[600], id[24];
	struct pg *pg;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_status", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = t_connect(url);
	sent = t_enqueue(na, &m);
	snprintf(id, sizeof(id), "%" PRId64, sent.id);
	t_sql(pg,
	    "UPDATE messages SET status = 'sent', provider = 'twilio',"
	    " provider_message_id = 'SM1' WHERE id = $1",
	    id);
	/* by the provider's id, on the other node: forward */
	d = t_report(nb, 0, "SM1", MSG_ST_DELIVERED);
	ck_assert_int_eq(d.su, QUEUE_SU_APPLIED);
	ck_assert_int_eq(d.id, sent.id);
	ck_assert_str_eq(
	    t_sql(pg, "SELECT status FROM messages WHERE id = $1", id),
	    "delivered");
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM message_events"
			     " WHERE message_id = $1 AND status = 'delivered'",
			     id),
	    1);
	/* never backwards: a failure after delivered is stale */
	d = t_report(na, 0, "SM1", MSG_ST_FAILED);
	ck_assert_int_eq(d.su, QUEUE_SU_STALE);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT status || coalesce(error_code::text, '-')"
			     " FROM messages WHERE id = $1",
			     id),
	    "delivered-");
	/* a provider id no message carries yet: kept */
	d = t_report(na, 0, "SM-early", MSG_ST_DELIVERED);
	ck_assert_int_eq(d.su, QUEUE_SU_EARLY);
	ck_assert_int_eq(d.id, 0);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT status FROM status_early WHERE provider ="
			     " 'twilio' AND provider_message_id = $1",
			     "SM-early"),
	    "delivered");
	/* our id, for a message not sent yet: kept under '#id' */
	queued = t_enqueue(na, &m);
	d = t_report(nb, queued.id, "", MSG_ST_FAILED);
	ck_assert_int_eq(d.su, QUEUE_SU_EARLY);
	ck_assert_int_eq(d.id, queued.id);
	snprintf(id, sizeof(id), "#%" PRId64, queued.id);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT status || code FROM status_early"
			     " WHERE provider_message_id = $1",
			     id),
	    "failed30005");
	/* a repeat that is no further along leaves the kept one */
	d = t_report(na, queued.id, "", MSG_ST_SENT);
	ck_assert_int_eq(d.su, QUEUE_SU_EARLY);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT status FROM status_early"
			     " WHERE provider_message_id = $1",
			     id),
	    "failed");
	snprintf(id, sizeof(id), "%" PRId64, queued.id);
	ck_assert_str_eq(
	    t_sql(pg, "SELECT status FROM messages WHERE id = $1", id),
	    "queued");
	pg_free(pg);
	store_close(nb);
	store_close(na);
	t_teardown();
}
END_TEST

/* ---- received texts ----------------------------------------------------- */

static struct queue_done
t_inbound(struct store *st, const char *pid, const char *body,
    enum queue_in_action action, const char *reply)
{
	struct in_msg m = {.segments = 1};
	struct queue_new r = {.channel = CHANNEL_SMS,
	    .to = "+15555550199",
	    .sender = "main",
	    .from = "+15555550000",
	    .body = reply,
	    .priority = MSG_PRIO_REPLY,
	    .optout_exempt =
		action == QUEUE_IN_OPTOUT || action == QUEUE_IN_HELP};
	struct queue_in_route route = {.action = action,
	    .phone = "+15555550199",
	    .reply = reply != NULL ? &r : NULL};
	struct t_done t = {0};
	char err[256];

	snprintf(m.provider_id, sizeof(m.provider_id), "%s", pid);
	snprintf(m.from, sizeof(m.from), "+15555550199");
	snprintf(m.to, sizeof(m.to), "+15555550000");
	m.body = (char *)body;
	ck_assert_msg(queue_inbound_durable(st,
			  &(struct queue_webhook){.sender = "main",
			      .provider = "twilio",
			      .now = msg_now_ms()},
			  &m, &route, t_on_done, &t, err, sizeof(err)) == 0,
	    "inbound: %s", err);
	t_wait_ok(&t, "inbound");
	return t.d;
}

START_TEST(test_inbound_dedup)
{
	struct queue_done a, b;
	struct store *na, *nb;
	char url[600];
	struct pg *pg;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_inbound", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = t_connect(url);
	a = t_inbound(na, "SMin1", "hello there", QUEUE_IN_NONE, NULL);
	ck_assert(!a.dup);
	ck_assert_int_gt(a.id, 0);
	ck_assert_int_gt(a.member, 0); /* ensured by phone, linked */
	/* the provider's retry lands on the other node */
	b = t_inbound(nb, "SMin1", "hello there", QUEUE_IN_NONE, NULL);
	ck_assert(b.dup);
	ck_assert_int_eq(b.id, a.id);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM messages"
			     " WHERE direction = 'in'",
			     NULL),
	    1);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM message_events"
			     " WHERE status = 'received'",
			     NULL),
	    1);
	ck_assert_int_eq(t_int(pg,
			     "SELECT member_id FROM messages"
			     " WHERE direction = 'in'",
			     NULL),
	    a.member);
	pg_free(pg);
	store_close(nb);
	store_close(na);
	t_teardown();
}
END_TEST

START_TEST(test_stop_start)
{
	struct queue_done d;
	struct store *na, *nb;
	char url[600], id[24];
	struct pg *pg;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_stop", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = t_connect(url);
	/* STOP: opted out, one event, one exempt reply */
	d = t_inbound(na, "SM1", "STOP", QUEUE_IN_OPTOUT, "You are out.");
	ck_assert(!d.dup && d.changed);
	ck_assert_int_gt(d.reply_id, 0);
	snprintf(id, sizeof(id), "%" PRId64, d.member);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM sms_optout"
			     " WHERE member_id = $1 AND source = 'keyword'",
			     id),
	    1);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM consent_events WHERE"
			     " member_id = $1 AND action = 'opt_out'",
			     id),
	    1);
	snprintf(id, sizeof(id), "%" PRId64, d.reply_id);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT status || ' ' || optout_exempt || ' ' ||"
			     " to_addr || ' ' || body || ' ' || priority"
			     " FROM messages WHERE id = $1",
			     id),
	    "queued 1 +15555550199 You are out. 10");
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM message_events"
			     " WHERE message_id = $1",
			     id),
	    1);
	/* a second STOP (any node): nothing changes, no reply */
	d = t_inbound(nb, "SM2", "stop", QUEUE_IN_OPTOUT, "You are out.");
	ck_assert(!d.dup && !d.changed);
	ck_assert_int_eq(d.reply_id, 0);
	ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM consent_events", NULL),
	    1);
	/* START: back in, its event and its (not exempt) reply */
	d = t_inbound(nb, "SM3", "START", QUEUE_IN_OPTIN, "Welcome back.");
	ck_assert(d.changed);
	ck_assert_int_gt(d.reply_id, 0);
	ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM sms_optout", NULL), 0);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM consent_events"
			     " WHERE action = 'opt_in'",
			     NULL),
	    1);
	snprintf(id, sizeof(id), "%" PRId64, d.reply_id);
	ck_assert_int_eq(
	    t_int(pg, "SELECT optout_exempt FROM messages WHERE id = $1", id),
	    0);
	/* YES while not opted out: nothing routed */
	d = t_inbound(na, "SM4", "YES", QUEUE_IN_YES, "Welcome back.");
	ck_assert(!d.changed);
	ck_assert_int_eq(d.reply_id, 0);
	/* HELP: answered, exempt, no state change */
	d = t_inbound(na, "SM5", "HELP", QUEUE_IN_HELP, "Call us.");
	ck_assert(!d.changed);
	ck_assert_int_gt(d.reply_id, 0);
	/* one member throughout, every text stored and linked to it */
	ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM members", NULL), 1);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM messages WHERE"
			     " direction = 'in' AND member_id IS NOT NULL",
			     NULL),
	    5);
	pg_free(pg);
	store_close(nb);
	store_close(na);
	t_teardown();
}
END_TEST

/* ---- routed texts: YES, keywords, conversations ------------------------ */

static const struct queue_in_reply t_replies[] = {
    {"start", NULL, "Back in.", "gsm7", 1},
    {"already", NULL, "Already in.", "gsm7", 1},
    {"confirm", NULL, "Reply YES.", "gsm7", 1},
    {"welcome", "L", "Welcome to L.", "gsm7", 1},
    {"welcome", "D", "Welcome to D.", "gsm7", 1},
};

/* Sends text 'pid' of +15555550199 on st through route (not waited for). */
static void
t_route_send(struct store *st, const char *pid, const char *body,
    const struct queue_in_route *route, struct t_done *t)
{
	struct in_msg m = {.segments = 1};
	char err[256];

	snprintf(m.provider_id, sizeof(m.provider_id), "%s", pid);
	snprintf(m.from, sizeof(m.from), "+15555550199");
	snprintf(m.to, sizeof(m.to), "+15555550000");
	m.body = (char *)body; /* copied by the operation */
	ck_assert_msg(queue_inbound_durable(st,
			  &(struct queue_webhook){.sender = "main",
			      .provider = "twilio",
			      .now = msg_now_ms()},
			  &m, route, t_on_done, t, err, sizeof(err)) == 0,
	    "inbound: %s", err);
}

/* Starts routing text 'pid' of +15555550199 on st (not waited for). */
static void
t_route_start(struct store *st, const char *pid, const char *body,
    struct t_done *t)
{
	struct queue_in_route route = {.phone = "+15555550199",
	    .replies = t_replies,
	    .nreplies = sizeof(t_replies) / sizeof(t_replies[0]),
	    .reply_from = "+15555550000",
	    .window_ms = 3600000};

	if (strcmp(body, "YES") == 0)
		route.action = QUEUE_IN_YES;
	else if (strcmp(body, "L") == 0 || strcmp(body, "D") == 0 ||
	    strcmp(body, "G") == 0) {
		route.action = QUEUE_IN_KEYWORD;
		route.list = body;
		route.keyword = body;
	} else
		route.action = QUEUE_IN_TEXT;
	t_route_send(st, pid, body, &route, t);
}

/* Routes text 'pid' on st and waits: the answer in *t. */
static const struct queue_done *
t_route(struct store *st, const char *pid, const char *body, struct t_done *t)
{
	memset(t, 0, sizeof(*t));
	t_route_start(st, pid, body, t);
	t_wait_ok(t, "routed text");
	return &t->d;
}

/* Backends of this database waiting on a lock. */
static long long
t_waiting(struct pg *pg)
{
	return t_int(pg,
	    "SELECT count(*) FROM pg_stat_activity WHERE"
	    " datname = current_database() AND wait_event_type = 'Lock'",
	    NULL);
}

/*
 * 'body' texted to node na and node nb at once: na's group waits after
 * its statement on an advisory lock 'hold' has, until nb's text waits
 * too; then both commit. The answers go to t[0] (na) and t[1] (nb).
 */
static void
t_route_race(struct store *na, struct store *nb, struct pg *hold,
    const char *body, struct t_done *t)
{
	struct t_done *ta = &t[0], *tb = &t[1];
	char err[256], pa[32], pb[32];
	static int n;

	memset(t, 0, 2 * sizeof(*t));
	snprintf(pa, sizeof(pa), "SMrace%da", n);
	snprintf(pb, sizeof(pb), "SMrace%db", n++);
	t_sql(hold, "SELECT pg_advisory_lock(4243)", NULL);
	t_route_start(na, pa, body, ta);
	ck_assert_msg(
	    store_pg_group_send(na,
		&(struct pg_query){.sql = "SELECT pg_advisory_xact_lock(4243)"},
		err, sizeof(err)) == 0,
	    "%s", err);
	while (t_waiting(hold) < 1)
		;
	t_route_start(nb, pb, body, tb);
	while (t_waiting(hold) < 2)
		;
	t_sql(hold, "SELECT pg_advisory_unlock(4243)", NULL);
	t_wait_ok(ta, "node a's text");
	t_wait_ok(tb, "node b's text");
}

START_TEST(test_route_two_nodes)
{
	struct t_done t[2], y;
	const struct queue_done *d0 = &t[0].d, *d1 = &t[1].d;
	struct store *na, *nb;
	char url[600], id[24], err[256];
	struct pg *pg, *hold;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_route", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = t_connect(url);
	hold = t_connect(url);
	t_sql(pg,
	    "INSERT INTO lists (name, double_optin, created_at, updated_at)"
	    " VALUES ('L', 0, 1, 1), ('D', 1, 1, 1)",
	    NULL);

	/* a new member's plain texts on both nodes: one conversation */
	t_route_race(na, nb, hold, "is the meeting at 6?", t);
	ck_assert(!d0->dup && !d1->dup);
	ck_assert_str_eq(d0->routed, "conversation");
	ck_assert_int_eq(d0->member, d1->member);
	ck_assert_int_gt(d0->conversation, 0);
	ck_assert_int_eq(d1->conversation, d0->conversation);
	snprintf(id, sizeof(id), "%" PRId64, d0->conversation);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT count(*) || ' ' || min(status) || ' ' ||"
			     " min(unread) || ' ' || min(sender)"
			     " FROM conversations",
			     NULL),
	    "1 open 2 main");
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM messages WHERE"
			     " direction = 'in' AND conversation_id = $1",
			     id),
	    2);
	ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM members", NULL), 1);

	/* its keyword on both nodes: one subscription, one event */
	t_route_race(na, nb, hold, "L", t);
	ck_assert_str_eq(d0->routed, "join");
	ck_assert_str_eq(d0->list, "L");
	ck_assert_str_eq(d1->routed, "already");
	ck_assert_str_eq(t_sql(pg,
			     "SELECT string_agg(s.status || ' ' || s.channel"
			     " || ' ' || s.source, ',') FROM subscriptions s",
			     NULL),
	    "active sms keyword");
	ck_assert_str_eq(t_sql(pg,
			     "SELECT string_agg(action || ' ' || detail || ' '"
			     " || (list_id IS NOT NULL), ',') FROM"
			     " consent_events",
			     NULL),
	    "opt_in L true");
	ck_assert_str_eq(t_sql(pg,
			     "SELECT string_agg(body, ',' ORDER BY id) FROM"
			     " messages WHERE direction = 'out'",
			     NULL),
	    "Welcome to L.,Already in.");

	/* double opt-in: pending, then YES on the other node */
	ck_assert_str_eq(t_route(na, "SMd1", "D", &y)->routed, "pending");
	d1 = t_route(nb, "SMd2", "YES", &t[1]);
	ck_assert_str_eq(d1->routed, "confirm");
	ck_assert_str_eq(d1->list, "D");
	ck_assert_int_gt(d1->reply_id, 0);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT string_agg(l.name || ' ' || s.status, ','"
			     " ORDER BY l.name) FROM subscriptions s JOIN"
			     " lists l ON l.id = s.list_id",
			     NULL),
	    "D active,L active");
	ck_assert_str_eq(t_sql(pg,
			     "SELECT string_agg(action || ' ' || detail, ','"
			     " ORDER BY id) FROM consent_events",
			     NULL),
	    "opt_in L,opt_in D,confirm YES");
	ck_assert_str_eq(t_sql(pg,
			     "SELECT string_agg(body, ',' ORDER BY id) FROM"
			     " messages WHERE direction = 'out'",
			     NULL),
	    "Welcome to L.,Already in.,Reply YES.,Welcome to D.");
	/* YES with nothing pending: a conversation message */
	ck_assert_str_eq(t_route(na, "SMd3", "YES", &y)->routed,
	    "conversation");
	ck_assert_int_eq(t_int(pg, "SELECT unread FROM conversations", NULL),
	    3);
	/*
	 * A keyword of a list another node is deleting (its group held open
	 * after the DELETE): the text waits for the list's row (FOR KEY
	 * SHARE), then finds no list and is a conversation message; without
	 * that lock its subscription's foreign key failed its group.
	 */
	t_sql(pg,
	    "INSERT INTO lists (name, double_optin, created_at, updated_at)"
	    " VALUES ('G', 0, 1, 1)",
	    NULL);
	memset(t, 0, sizeof(t));
	t_sql(hold, "SELECT pg_advisory_lock(4243)", NULL);
	ck_assert_msg(
	    store_pg_group_send(na,
		&(struct pg_query){.sql = "DELETE FROM lists WHERE name = 'G'"},
		err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_msg(
	    store_pg_group_send(na,
		&(struct pg_query){.sql = "SELECT pg_advisory_xact_lock(4243)"},
		err, sizeof(err)) == 0,
	    "%s", err);
	while (t_waiting(hold) < 1)
		;
	t_route_start(nb, "SMg1", "G", &t[1]);
	while (t_waiting(hold) < 2)
		;
	t_sql(hold, "SELECT pg_advisory_unlock(4243)", NULL);
	t_wait_ok(&t[1], "a keyword of a list being deleted");
	ck_assert_str_eq(t[1].d.routed, "conversation");
	ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM lists", NULL), 2);
	pg_free(hold);
	pg_free(pg);
	store_close(nb);
	store_close(na);
	t_teardown();
}
END_TEST

/* ---- follow-up questions (route.prepare) ------------------------------- */

/* A routed text with its own route, prepared as inbound.c prepares it. */
struct t_qroute {
	struct queue_in_route route;
	struct queue_in_reply replies[8];
	size_t n;
	char value[64];
	const char *body;
};

/*
 * The test's prepare: list Q asks "Name?" (first_name: a capitalized
 * word) then "ZIP?" (five digits); a bad answer is asked again once.
 */
static void
t_q_prepare(void *arg, const struct queue_in_prompt *pr)
{
	static const char *const field[] = {"first_name", "zip"};
	static const char *const again[] = {"Sorry: Name?", "Sorry: ZIP?"};
	struct t_qroute *q = arg;
	struct queue_in_answer *an = &q->route.answer;
	const char *b = pr->body;
	bool good;

	ck_assert_str_eq(b, q->body);
	if (pr->join != NULL && strcmp(pr->join, "Q") == 0)
		q->replies[q->n++] =
		    (struct queue_in_reply){"first", "Q", "Name?", "gsm7", 1};
	if (pr->list_id > 0 && pr->index <= 1) {
		an->list_id = pr->list_id;
		an->index = pr->index;
		an->attempts = pr->attempts;
		an->asked_at = pr->asked_at;
		an->field = field[pr->index];
		good = pr->index == 0
		    ? b[0] >= 'A' && b[0] <= 'Z'
		    : strlen(b) == 5 && strspn(b, "0123456789") == 5;
		snprintf(q->value, sizeof(q->value), "%s", b);
		an->value = good ? q->value : NULL;
		an->good = pr->index == 0 ? "next" : "clear";
		an->bad = pr->attempts == 0 ? "reask" : an->good;
		if (pr->index == 0)
			q->replies[q->n++] = (struct queue_in_reply){"next",
			    NULL, "ZIP?", "gsm7", 1};
		if (pr->attempts == 0)
			q->replies[q->n++] = (struct queue_in_reply){"reask",
			    NULL, again[pr->index], "gsm7", 1};
	}
	q->route.replies = q->replies;
	q->route.nreplies = q->n;
}

/* Starts routing text 'pid' of +15555550199 on st through q. */
static void
t_qroute_start(struct store *st, const char *pid, const char *body,
    struct t_qroute *q, struct t_done *t)
{
	memset(q, 0, sizeof(*q));
	memset(t, 0, sizeof(*t));
	q->replies[q->n++] =
	    (struct queue_in_reply){"welcome", "Q", "Welcome to Q.", "gsm7", 1};
	q->replies[q->n++] =
	    (struct queue_in_reply){"already", NULL, "Already in.", "gsm7", 1};
	q->body = body;
	q->route = (struct queue_in_route){.phone = "+15555550199",
	    .action = strcmp(body, "Q") == 0 ? QUEUE_IN_KEYWORD : QUEUE_IN_TEXT,
	    .list = strcmp(body, "Q") == 0 ? "Q" : NULL,
	    .keyword = strcmp(body, "Q") == 0 ? "Q" : NULL,
	    .replies = q->replies,
	    .nreplies = q->n,
	    .reply_from = "+15555550000",
	    .window_ms = 3600000,
	    .prepare = t_q_prepare,
	    .prepare_arg = q};
	t_route_send(st, pid, body, &q->route, t);
}

static const struct queue_done *
t_qroute(struct store *st, const char *pid, const char *body,
    struct t_qroute *q, struct t_done *t)
{
	t_qroute_start(st, pid, body, q, t);
	t_wait_ok(t, "routed text");
	return &t->d;
}

START_TEST(test_route_questions_two_nodes)
{
	struct t_qroute q[2];
	struct t_done t[2];
	struct store *na, *nb;
	char url[600];
	struct pg *pg, *hold;
	bool a_answered;

	NEED_CLUSTER();
	t_setup();
	t_db("qpg_questions", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = t_connect(url);
	hold = t_connect(url);
	t_sql(pg,
	    "INSERT INTO lists (name, double_optin, questions, created_at,"
	    " updated_at) VALUES ('Q', 0, '[{\"field\": \"first_name\","
	    " \"prompt\": \"\"}, {\"field\": \"zip\", \"prompt\": \"\"}]', 1,"
	    " 1)",
	    NULL);
#define T_PROMPT                                                   \
	"SELECT coalesce((SELECT question || ' ' || attempts FROM" \
	" member_prompts), '-')"
#define T_OUT                                                          \
	"SELECT string_agg(body, ',' ORDER BY id) FROM messages WHERE" \
	" direction = 'out'"

	/* the keyword on a: the welcome, then the first question */
	ck_assert_str_eq(t_qroute(na, "SMq1", "Q", &q[0], &t[0])->routed,
	    "join");
	ck_assert_str_eq(t_sql(pg, T_OUT, NULL), "Welcome to Q.,Name?");
	ck_assert_str_eq(t_sql(pg, T_PROMPT, NULL), "0 0");
	/* its answer on b: stored, the next question, no conversation */
	ck_assert_str_eq(t_qroute(nb, "SMq2", "Ann", &q[1], &t[1])->routed,
	    "answer");
	ck_assert_int_eq(t[1].d.conversation, 0);
	ck_assert_str_eq(t_sql(pg, "SELECT first_name FROM members", NULL),
	    "Ann");
	ck_assert_str_eq(t_sql(pg, T_PROMPT, NULL), "1 0");
	ck_assert_str_eq(t_sql(pg, T_OUT, NULL), "Welcome to Q.,Name?,ZIP?");

	/*
	 * Two texts of the member on both nodes at once, both read the
	 * question (1, 0) before either writes: the member's row is held by
	 * another session until both wait on it. The first to get it acts on
	 * the question (a bad ZIP: asked again); the other finds it changed
	 * and is a conversation message, not a second answer.
	 */
	t_sql(hold, "BEGIN", NULL);
	t_sql(hold, "SELECT 1 FROM members FOR UPDATE", NULL);
	t_qroute_start(na, "SMq3", "nowhere", &q[0], &t[0]);
	t_qroute_start(nb, "SMq4", "nope", &q[1], &t[1]);
	while (t_waiting(hold) < 2)
		;
	t_sql(hold, "COMMIT", NULL);
	t_wait_ok(&t[0], "node a's text");
	t_wait_ok(&t[1], "node b's text");
	a_answered = strcmp(t[0].d.routed, "reask") == 0;
	ck_assert_str_eq(t[a_answered ? 0 : 1].d.routed, "reask");
	ck_assert_str_eq(t[a_answered ? 1 : 0].d.routed, "conversation");
	ck_assert_str_eq(t_sql(pg, T_PROMPT, NULL), "1 1");
	ck_assert_str_eq(t_sql(pg, T_OUT, NULL),
	    "Welcome to Q.,Name?,ZIP?,Sorry: ZIP?");
	ck_assert_int_eq(t_int(pg, "SELECT unread FROM conversations", NULL),
	    2);
	/* the good ZIP on b: stored, the question cleared */
	ck_assert_str_eq(t_qroute(nb, "SMq5", "02139", &q[1], &t[1])->routed,
	    "answer");
	ck_assert_str_eq(t_sql(pg, "SELECT zip FROM members", NULL), "02139");
	ck_assert_str_eq(t_sql(pg, T_PROMPT, NULL), "-");
	/* then a text is a conversation message again */
	ck_assert_str_eq(t_qroute(na, "SMq6", "thanks", &q[0], &t[0])->routed,
	    "conversation");
	ck_assert_int_eq(t_int(pg, "SELECT unread FROM conversations", NULL),
	    3);
#undef T_PROMPT
#undef T_OUT
	pg_free(hold);
	pg_free(pg);
	store_close(nb);
	store_close(na);
	t_teardown();
}
END_TEST

Suite *
queue_pg_suite(void)
{
	Suite *s = suite_create("queue_pg");
	TCase *tc = tcase_create("cluster");

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_enqueue_durable);
	tcase_add_test(tc, test_idempotency_two_nodes);
	tcase_add_test(tc, test_message_json);
	tcase_add_test(tc, test_token_auth);
	tcase_add_test(tc, test_staff_two_nodes);
	tcase_add_test(tc, test_status_forward_and_early);
	tcase_add_test(tc, test_inbound_dedup);
	tcase_add_test(tc, test_stop_start);
	tcase_add_test(tc, test_route_two_nodes);
	tcase_add_test(tc, test_route_questions_two_nodes);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
