/*
 * check_notify_pg.c - the email digests' reads and write on PostgreSQL
 * (queue/store_notify_pg.c), against a throwaway cluster
 * (check_pgcluster.h), through two PostgreSQL stores opened as the daemon
 * opens them, two "nodes" on one loop:
 *
 *  - the tick's read: the state (as the migration leaves it) and the time
 *    of the oldest text after it, none once it is covered;
 *  - the walk: the texts after the state in id order with what a digest
 *    shows of them, stopping at the first text not settled, even when a
 *    later id is (ids commit out of order across nodes);
 *  - the write from both nodes in one turn (two groups racing): exactly
 *    one is taken, one email with its history row, the state moved; a
 *    write from a stale state is not taken;
 *  - the state's row held by another session: the write is not taken
 *    and answers at once (SKIP LOCKED), and is taken once it is freed.
 *
 * The engine (daemon/notify.c) is test_notify.py's and test_pg_notify.py's.
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
notify_pg_suite(void)
{
	return ckpg_not_built_suite("notify_pg");
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
#include "store_notify_pg.h"

static char pg_url[512]; /* "" = no cluster: the tests skip */
static struct event_base *t_base;
static struct pg *t_pg; /* the test database's connection, for checks */

static void
cluster_start(void)
{
	ckpg_start("check_notify_pg", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_notify_pg", pg_url);
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

/* A fresh database 'db', two nodes' stores on it, and a member with a
 * conversation; t_pg connected. */
static void
t_open(const char *db, struct store *st[2])
{
	static const char *const names[2] = {"a", "b"};

	t_base = event_base_new();
	ckpg_open_nodes(t_base, pg_url, db, names, 2, st, &t_pg);
	t_sql("INSERT INTO members (phone, first_name, created_at, updated_at)"
	      " VALUES ('+15550100001', 'Ann', 1, 1)");
	t_sql("INSERT INTO conversations (member_id, status, unread,"
	      " last_message_at, created_at, sender, last_in_at, updated_at)"
	      " SELECT id, 'open', 1, 1, 1, 'sx', 1, 1 FROM members");
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

/* A text of the member's conversation created at 'at': its id. */
static int64_t
t_text(int64_t at, const char *body)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	    "INSERT INTO messages (direction, channel, member_id, sender,"
	    " to_addr, from_addr, body, status, next_attempt_at,"
	    " conversation_id, created_at, updated_at) SELECT 'in', 'sms',"
	    " member_id, 'sx', '+15550109999', '+15550100001', '%s',"
	    " 'received', %lld, id, %lld, %lld FROM conversations RETURNING id",
	    body, (long long)at, (long long)at, (long long)at);
	return t_int(sql);
}

/* ---- the reads ------------------------------------------------------ */

struct t_read {
	bool done;
	struct store_notify_due d;
	size_t n;
	int64_t first_id;
	char first_body[64];
	char phone[32];
	bool staff_email_null;
	char error[256];
};

static void
t_on_due(void *arg, const struct store_notify_due *d, const char *error)
{
	struct t_read *t = arg;

	t->done = true;
	if (d != NULL)
		t->d = *d;
	if (error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", error);
}

static void
t_on_items(void *arg, const struct notify_item *it, size_t n, const char *error)
{
	struct t_read *t = arg;

	t->done = true;
	t->n = n;
	if (error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", error);
	if (n > 0) {
		t->first_id = it[0].message_id;
		snprintf(t->first_body, sizeof(t->first_body), "%s",
		    it[0].body);
		snprintf(t->phone, sizeof(t->phone), "%s", it[0].phone);
		t->staff_email_null = it[0].staff_email == NULL;
	}
}

static void
t_due(struct store *st, struct t_read *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(store_notify_pg_due(st, t_on_due, t, err, sizeof(err)) ==
		0,
	    "due: %s", err);
	ck_assert(!t->done);
	ckpg_run_until(t_base, &t->done, "due");
	ck_assert_msg(t->error[0] == '\0', "due: %s", t->error);
}

static size_t
t_walk(struct store *st, int64_t after, int64_t settled, struct t_read *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(store_notify_pg_walk(st,
			  &(struct store_notify_pg_walk){.after = after,
			      .settled = settled,
			      .limit = 100},
			  t_on_items, t, err, sizeof(err)) == 0,
	    "walk: %s", err);
	ckpg_run_until(t_base, &t->done, "walk");
	ck_assert_msg(t->error[0] == '\0', "walk: %s", t->error);
	return t->n;
}

START_TEST(test_due_and_walk)
{
	struct store *st[2];
	struct t_read t;
	int64_t a;

	if (pg_url[0] == '\0')
		return;
	t_open("notify_walk", st);
	t_due(st[0], &t);
	ck_assert(!t.d.found);
	ck_assert_int_eq(t.d.state.last_message_id, 0);
	ck_assert_int_eq(t.d.state.last_digest_at, 0);

	a = t_text(1000, "first");
	t_text(2000, "second");
	t_text(9000, "late");
	t_due(st[1], &t);
	ck_assert(t.d.found);
	ck_assert_int_eq(t.d.first_at, 1000);
	/* settled up to 5000: the first two */
	ck_assert_int_eq(t_walk(st[0], 0, 5000, &t), 2);
	ck_assert_int_eq(t.first_id, a);
	ck_assert_str_eq(t.first_body, "first");
	ck_assert_str_eq(t.phone, "+15550100001");
	ck_assert(t.staff_email_null);
	ck_assert_int_eq(t_walk(st[0], 0, 500, &t), 0);
	/* a later id that is settled waits behind an earlier one that is
	 * not: the walk never passes a text still to come */
	t_text(1500, "committed late elsewhere");
	ck_assert_int_eq(t_walk(st[1], a + 1, 5000, &t), 0);
	ck_assert_int_eq(t_walk(st[1], a + 1, 10000, &t), 2);
	ck_assert_str_eq(t.first_body, "late");
	/* covered: nothing due */
	t_sql("UPDATE notify_state SET last_message_id ="
	      " (SELECT max(id) FROM messages)");
	t_due(st[0], &t);
	ck_assert(!t.d.found);
	t_close(st);
}
END_TEST

/* ---- the write ------------------------------------------------------ */

struct t_write {
	bool done;
	struct store_notify_written w;
	int64_t id;
	char error[256];
};

static void
t_on_written(void *arg, const struct store_notify_written *w)
{
	struct t_write *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->w = *w;
	t->w.error = NULL;
	t->w.ids = NULL;
	t->id = w->taken ? w->ids[0] : 0;
	if (w->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", w->error);
}

/* Starts a digest of one email covering up to 'upto', from 'from'. */
static void
t_write_send(struct store *st, int64_t from, int64_t upto, struct t_write *t)
{
	struct queue_new q = {.channel = CHANNEL_EMAIL,
	    .to = "inbox@example.org",
	    .subject = "1 new message in 1 conversation",
	    .body = "New messages from members since the last digest: \"x\"",
	    .priority = MSG_PRIO_REPLY};
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(store_notify_pg_write(st,
			  &(struct store_notify_pg_digest){.from = from,
			      .next = {upto, 7000},
			      .emails = &q,
			      .n = 1},
			  t_on_written, t, err, sizeof(err)) == 0,
	    "write: %s", err);
	ck_assert(!t->done);
}

static void
t_write_wait(struct t_write *t)
{
	ckpg_run_until(t_base, &t->done, "write");
	ck_assert_msg(t->w.ok, "write: %s", t->error);
}

START_TEST(test_write_once_two_nodes)
{
	struct store *st[2];
	struct t_write ta, tb;
	int64_t a;
	char sql[256];

	if (pg_url[0] == '\0')
		return;
	t_open("notify_once", st);
	a = t_text(1000, "hello");
	/* both nodes' groups go out in the same loop turn */
	t_write_send(st[0], 0, a, &ta);
	t_write_send(st[1], 0, a, &tb);
	t_write_wait(&ta);
	t_write_wait(&tb);
	ck_assert_msg(ta.w.taken != tb.w.taken, "exactly one taken: %d %d",
	    ta.w.taken, tb.w.taken);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM messages WHERE"
			       " channel = 'email'"),
	    "1");
	snprintf(sql, sizeof(sql),
	    "SELECT to_addr || ' ' || status || ' ' || priority FROM messages"
	    " WHERE id = %lld",
	    (long long)(ta.w.taken ? ta.id : tb.id));
	ck_assert_str_eq(t_sql(sql), "inbox@example.org queued 10");
	ck_assert_str_eq(t_sql("SELECT string_agg(e.status, ',') FROM"
			       " message_events e JOIN messages m ON m.id ="
			       " e.message_id WHERE m.channel = 'email'"),
	    "queued");
	snprintf(sql, sizeof(sql),
	    "SELECT last_message_id = %lld AND last_digest_at = 7000"
	    " FROM notify_state",
	    (long long)a);
	ck_assert_str_eq(t_sql(sql), "t");
	/* from a stale state: nothing */
	t_write_send(st[0], 0, a, &ta);
	t_write_wait(&ta);
	ck_assert(!ta.w.taken);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM messages WHERE"
			       " channel = 'email'"),
	    "1");
	t_close(st);
}
END_TEST

START_TEST(test_write_skips_a_held_row)
{
	struct store *st[2];
	struct t_write t;
	int64_t a;

	if (pg_url[0] == '\0')
		return;
	t_open("notify_held", st);
	a = t_text(1000, "hello");
	/* another node's digest in flight: the row is locked */
	t_sql("BEGIN");
	t_sql("SELECT id FROM notify_state FOR UPDATE");
	t_write_send(st[0], 0, a, &t);
	t_write_wait(&t); /* answered while the lock is held */
	ck_assert(!t.w.taken);
	t_sql("ROLLBACK");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM messages WHERE"
			       " channel = 'email'"),
	    "0");
	t_write_send(st[1], 0, a, &t);
	t_write_wait(&t);
	ck_assert(t.w.taken);
	ck_assert_int_gt(t.id, a);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM messages WHERE"
			       " channel = 'email'"),
	    "1");
	t_close(st);
}
END_TEST

Suite *
notify_pg_suite(void)
{
	Suite *s = suite_create("notify_pg");
	TCase *tc = tcase_create("pg");

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_due_and_walk);
	tcase_add_test(tc, test_write_once_two_nodes);
	tcase_add_test(tc, test_write_skips_a_held_row);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
