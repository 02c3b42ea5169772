/*
 * check_conversations_pg.c - unit tests of the staff inbox on a
 * PostgreSQL store (queue/store_conversations_pg.c) against a throwaway
 * cluster (check_pgcluster.h), with two stores ("nodes") on one loop:
 *
 *  - the search text made a tsquery text (no cluster): words quoted as
 *    prefixes, phrases, quotes and backslashes doubled, nothing left of a
 *    text without words, too long refused;
 *  - a listing: newest activity first, each filter, the search through
 *    the GIN index (accents and case folded, prefixes, phrases in order,
 *    hostile text answered, not failed), pages with their cursor, a
 *    cursor that is not one refused; a thread with its items;
 *  - writes on two nodes: close seen by the other node, assign to a staff
 *    member that does not exist changes nothing, a note, a missing
 *    conversation found missing without failing the group; a reply with
 *    its history row marking the conversation replied, and its
 *    idempotency key given to both nodes, one after the other and in the
 *    same turn: one message, both answer its id;
 *  - saved replies on two nodes: a name taken answered as such, both
 *    nodes naming one in the same turn (one made, one told the name is
 *    taken, neither group failed), update, delete, and a saved reply read
 *    with the member it is rendered for;
 *  - members (queue/store_members_pg.c) on two nodes: one member created
 *    on both in one turn, and one email given to two members on both in
 *    one turn (one written, one told whose it is, neither group failed);
 *    an update that changes nothing, a missing member, attributes merged
 *    and tags replaced; searches (ASCII case folding, LIKE's wildcards,
 *    a tag, a list by name and id, an unknown list, pages); an opt-out
 *    on both nodes in one turn (one row, one consent event, as SQLite
 *    writes it), the opt-in, the consent log and its CSV export in
 *    pages.
 *
 * Assertions are on states, never timings. Each test has its own
 * database, migrated by store_open_config(). Skipped, with the reason
 * printed, when PostgreSQL's server binaries are missing.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include <check.h>

#include "check_suites.h"
#include "store_conversations.h"
#include "store_conversations_pg.h"
#include "store_members_pg.h"

/* ---- the search text (pure) ---------------------------------------------- */

static const char *
t_ts(const char *text)
{
	static char out[2048];

	ck_assert_int_eq(store_conv_tsquery(text, out, sizeof(out)), 0);
	return out;
}

START_TEST(test_tsquery)
{
	char big[CONV_SEARCH_MAX + 2], small[8];

	ck_assert_str_eq(t_ts("meet"), "'meet':*");
	ck_assert_str_eq(t_ts("  house  Meeting "), "'house':* & 'Meeting':*");
	ck_assert_str_eq(t_ts("\"house meeting\" now"),
	    "('house' <-> 'meeting') & 'now':*");
	ck_assert_str_eq(t_ts("\"unclosed phrase"),
	    "('unclosed' <-> 'phrase')");
	ck_assert_str_eq(t_ts("o'brien \\x"), "'o''brien':* & '\\\\x':*");
	ck_assert_str_eq(t_ts("a & | ! ( ) :* <->"),
	    "'a':* & '&':* & '|':* & '!':* & '(':* & ')':* & ':*':* & "
	    "'<->':*");
	ck_assert_str_eq(t_ts(""), "");
	ck_assert_str_eq(t_ts("   "), "");
	ck_assert_str_eq(t_ts("\"\""), "");
	ck_assert_str_eq(t_ts("a \"\" b"), "'a':* & 'b':*");
	ck_assert_str_eq(t_ts("\"  \" b"), "'b':*");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(store_conv_tsquery(big, small, sizeof(small)), -1);
	big[CONV_SEARCH_MAX] = '\0';
	ck_assert_int_eq(store_conv_tsquery(big, small, sizeof(small)), -1);
}
END_TEST

#ifndef HAVE_LIBPQ

Suite *
conversations_pg_suite(void)
{
	Suite *s = suite_create("conversations_pg");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, test_tsquery);
	suite_add_tcase(s, tc);
	return s;
}

#else /* HAVE_LIBPQ */

#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "check_pgcluster.h"
#include "message.h"
#include "pg.h"
#include "queue.h"
#include "store-internal.h"
#include "store.h"

static char pg_url[512]; /* "" = no cluster: the tests skip */
static struct event_base *t_base;

static void
cluster_start(void)
{
	ckpg_start("check_conversations_pg", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_conversations_pg", pg_url);
}

#define NEED_CLUSTER()                 \
	do {                           \
		if (pg_url[0] == '\0') \
			return;        \
	} while (0)

/* ---- harness ------------------------------------------------------------ */

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
	struct pg *pg = ckpg_connect(t_base, pg_url);
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

/*
 * Two members, staff member 7, conversation 1 (Alice, open, 2 unread, a
 * text with accents) and 2 (Bob, closed, assigned to 7, on list 5).
 */
static void
t_seed(struct pg *pg)
{
	static const char *const sql[] = {
	    "INSERT INTO staff (id, name, role, created_at)"
	    " VALUES (7, 'Ann', 'organizer', 1)",
	    "INSERT INTO members (id, phone, first_name, created_at,"
	    " updated_at) VALUES (1, '+15550001001', 'Alice', 1, 1),"
	    " (2, '+15550001002', 'Bob', 1, 1)",
	    "INSERT INTO lists (id, name, created_at, updated_at)"
	    " VALUES (5, 'rally', 1, 1)",
	    "INSERT INTO subscriptions (member_id, list_id, channel, status,"
	    " source,"
	    " created_at, updated_at) VALUES (2, 5, 'sms', 'active', 'api', 1, 1)",
	    "INSERT INTO conversations (id, member_id, status, unread,"
	    " last_message_at, created_at, sender, last_in_at, updated_at)"
	    " VALUES (1, 1, 'open', 2, 1000, 900, 'main', 1000, 1000)",
	    "INSERT INTO conversations (id, member_id, status, unread,"
	    " assigned_staff, last_message_at, created_at, sender, last_in_at,"
	    " updated_at) VALUES (2, 2, 'closed', 0, 7, 2000, 900, 'main',"
	    " 2000, 2000)",
	    "INSERT INTO messages (direction, channel, member_id, sender,"
	    " to_addr, from_addr, body, status, next_attempt_at,"
	    " conversation_id, created_at, updated_at) VALUES"
	    " ('in', 'sms', 1, 'main', '+15550100001', '+15550001001',"
	    " 'Can I host a house meeting at the Café?', 'received', 990, 1,"
	    " 990, 990),"
	    " ('in', 'sms', 1, 'main', '+15550100001', '+15550001001',"
	    " 'Or next week', 'received', 1000, 1, 1000, 1000),"
	    " ('in', 'sms', 2, 'main', '+15550100001', '+15550001002',"
	    " 'Thanks for the RALLY', 'received', 2000, 2, 2000, 2000),"
	    " ('in', 'sms', 2, 'main', '+15550100001', '+15550001002',"
	    " 'meeting outside any conversation', 'received', 2000, NULL,"
	    " 2000, 2000)",
	};
	size_t i;

	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
		t_sql(pg, sql[i], NULL);
}

/* A read's answer, kept. */
struct t_json {
	bool done;
	json_t *o;
	char error[256];
};

static void
t_on_json(void *arg, json_t *o, const char *error)
{
	struct t_json *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->o = o;
	if (error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", error);
}

/* The listing q as "id,id,..." with its "next" in next (or ""). */
static const char *
t_list(struct store *st, struct conv_query q, char *next, size_t nextlen)
{
	static char ids[256];
	struct t_json t = {0};
	char err[256];
	json_t *c;
	size_t i;
	int n = 0;

	if (q.limit == 0)
		q.limit = 50;
	q.clock = (struct conv_clock){.now = 10000000, .stale_after_ms = 60000};
	ck_assert_msg(
	    store_conv_list_pg(st, &q, t_on_json, &t, err, sizeof(err)) == 0,
	    "list: %s", err);
	ckpg_run_until(t_base, &t.done, "list");
	ck_assert_msg(t.o != NULL, "list: %s", t.error);
	ids[0] = '\0';
	json_array_foreach(json_object_get(t.o, "conversations"), i, c)
		n += snprintf(ids + n, sizeof(ids) - (size_t)n, "%s%lld",
		    i > 0 ? "," : "",
		    (long long)json_integer_value(json_object_get(c, "id")));
	if (next != NULL)
		snprintf(next, nextlen, "%s",
		    json_is_string(json_object_get(t.o, "next"))
			? json_string_value(json_object_get(t.o, "next"))
			: "");
	json_decref(t.o);
	return ids;
}

static const char *
t_search(struct store *st, const char *text)
{
	return t_list(st, (struct conv_query){.q = text}, NULL, 0);
}

/* ---- reads --------------------------------------------------------------- */

START_TEST(test_list_and_thread)
{
	struct conv_clock clock = {.now = 10000000, .stale_after_ms = 60000};
	struct conv_query bad = {.after = "12x", .limit = 5};
	struct t_json t = {0};
	struct store *st;
	struct pg *pg;
	char url[600], next[64], err[256];
	json_t *items, *c;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("cvpg_read", url, sizeof(url));
	st = t_open(url, "a");
	pg = ckpg_connect(t_base, url);
	t_seed(pg);
	/* newest activity first; the filters */
	ck_assert_str_eq(t_list(st, (struct conv_query){0}, NULL, 0), "2,1");
	ck_assert_str_eq(
	    t_list(st, (struct conv_query){.status = "open"}, NULL, 0), "1");
	ck_assert_str_eq(
	    t_list(st, (struct conv_query){.unread = true}, NULL, 0), "1");
	ck_assert_str_eq(
	    t_list(st, (struct conv_query){.assigned = CONV_ASSIGNED_NONE},
		NULL, 0),
	    "1");
	ck_assert_str_eq(
	    t_list(st,
		(struct conv_query){.assigned = CONV_ASSIGNED_STAFF,
		    .staff = 7},
		NULL, 0),
	    "2");
	ck_assert_str_eq(t_list(st, (struct conv_query){.list_id = 5}, NULL, 0),
	    "2");
	ck_assert_str_eq(
	    t_list(st, (struct conv_query){.member_id = 1}, NULL, 0), "1");
	ck_assert_str_eq(
	    t_list(st, (struct conv_query){.stale = true}, NULL, 0), "1");
	ck_assert_str_eq(
	    t_list(st, (struct conv_query){.alert_id = 3}, NULL, 0), "");
	/* the search: accents and case folded, prefixes, phrases */
	ck_assert_str_eq(t_search(st, "cafe"), "1");
	ck_assert_str_eq(t_search(st, "CAF"), "1");
	ck_assert_str_eq(t_search(st, "rally"), "2");
	ck_assert_str_eq(t_search(st, "meeting"), "1"); /* not the loose one */
	ck_assert_str_eq(t_search(st, "\"house meeting\""), "1");
	ck_assert_str_eq(t_search(st, "\"meeting house\""), "");
	ck_assert_str_eq(t_search(st, "host next"), "");
	ck_assert_str_eq(t_search(st, "\"\""), "");
	ck_assert_str_eq(t_search(st, "o'brien \\ & | ! ( ) :* <-> '"), "");
	ck_assert_str_eq(t_search(st, "' cafe"), "1");
	/* pages */
	ck_assert_str_eq(
	    t_list(st, (struct conv_query){.limit = 1}, next, sizeof(next)),
	    "2");
	ck_assert_str_eq(next, "2000.2");
	ck_assert_str_eq(t_list(st,
			     (struct conv_query){.limit = 1, .after = "2000.2"},
			     next, sizeof(next)),
	    "1");
	ck_assert_str_eq(t_list(st,
			     (struct conv_query){.limit = 1, .after = next},
			     next, sizeof(next)),
	    "");
	ck_assert_str_eq(next, "");
	ck_assert_int_eq(
	    store_conv_list_pg(st, &bad, t_on_json, &t, err, sizeof(err)), -1);
	ck_assert(bad.invalid && !t.done);
	/* a thread */
	ck_assert_int_eq(store_conv_thread_pg(st, 1, &clock, t_on_json, &t, err,
			     sizeof(err)),
	    0);
	ckpg_run_until(t_base, &t.done, "thread");
	ck_assert_msg(t.o != NULL, "thread: %s", t.error);
	ck_assert_str_eq(json_string_value(json_object_get(t.o, "sender")),
	    "main");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(t.o, "member"), "phone")),
	    "+15550001001");
	ck_assert(json_is_true(json_object_get(t.o, "stale")));
	ck_assert_int_eq(json_integer_value(json_object_get(t.o, "unread")), 2);
	items = json_object_get(t.o, "items");
	ck_assert_int_eq(json_array_size(items), 2);
	c = json_array_get(items, 0);
	ck_assert_str_eq(json_string_value(json_object_get(c, "body")),
	    "Can I host a house meeting at the Café?");
	ck_assert_str_eq(json_string_value(json_object_get(c, "created_at")),
	    "1970-01-01T00:00:00.990Z");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(t.o, "last_message"), "body")),
	    "Or next week");
	json_decref(t.o);
	/* none */
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(store_conv_thread_pg(st, 99, &clock, t_on_json, &t,
			     err, sizeof(err)),
	    0);
	ckpg_run_until(t_base, &t.done, "no thread");
	ck_assert(t.o == NULL && t.error[0] == '\0');
	pg_free(pg);
	store_close(st);
	event_base_free(t_base);
}
END_TEST

/* ---- writes -------------------------------------------------------------- */

struct t_done {
	bool done;
	struct conv_done d;
	char error[256];
};

static void
t_on_done(void *arg, const struct conv_done *d)
{
	struct t_done *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	t->d.error = NULL;
	if (d->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", d->error);
}

static struct conv_done
t_wait(struct t_done *t, const char *what)
{
	ckpg_run_until(t_base, &t->done, what);
	ck_assert_msg(t->d.ok, "%s failed: %s", what, t->error);
	return t->d;
}

static struct conv_done
t_change(struct store *st, int64_t id, enum conv_op op, int64_t staff)
{
	struct t_done t = {0};
	char err[256];

	ck_assert_msg(
	    store_conv_change_pg(st, id,
		&(struct conv_change){.op = op, .staff = staff, .now = 5000},
		t_on_done, &t, err, sizeof(err)) == 0,
	    "change: %s", err);
	return t_wait(&t, "change");
}

static struct conv_done
t_note(struct store *st, int64_t conv, const char *body)
{
	struct t_done t = {0};
	char err[256];

	ck_assert_msg(store_conv_note_add_pg(st,
			  &(struct conv_note){.conversation = conv,
			      .staff = 7,
			      .body = body,
			      .now = 6000},
			  t_on_done, &t, err, sizeof(err)) == 0,
	    "note: %s", err);
	return t_wait(&t, "note");
}

static struct queue_new
t_reply_msg(const char *key)
{
	return (struct queue_new){.channel = CHANNEL_SMS,
	    .to = "+15550001001",
	    .sender = "main",
	    .body = "Yes, Saturday",
	    .priority = MSG_PRIO_REPLY,
	    .encoding = "gsm7",
	    .segments = 1,
	    .member_id = 1,
	    .conversation_id = 1,
	    .staff_id = 7,
	    .idempotency_key = key};
}

static int
t_reply_send(struct store *st, const struct queue_new *m, struct t_done *t)
{
	char err[256];
	int rc;

	rc = store_conv_reply_pg(st, m, 7000, t_on_done, t, err, sizeof(err));
	ck_assert_msg(rc == 0, "reply: %s", err);
	return rc;
}

/* The summary of conversation id read on st. */
static json_t *
t_summary(struct store *st, int64_t id)
{
	struct conv_clock clock = {.now = 10000000, .stale_after_ms = 60000};
	struct t_json t = {0};
	char err[256];

	ck_assert_int_eq(store_conv_summary_pg(st, id, &clock, t_on_json, &t,
			     err, sizeof(err)),
	    0);
	ckpg_run_until(t_base, &t.done, "summary");
	ck_assert_msg(t.o != NULL, "summary %lld: %s", (long long)id, t.error);
	return t.o;
}

START_TEST(test_writes_two_nodes)
{
	struct queue_new m = t_reply_msg("reply:1:k1");
	struct queue_new m2 = t_reply_msg("reply:1:k2");
	struct t_done a = {0}, b = {0};
	struct t_json tj = {0};
	struct conv_done d;
	struct store *na, *nb;
	char url[600], err[256], ids[24];
	struct pg *pg;
	json_t *o;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("cvpg_write", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = ckpg_connect(t_base, url);
	t_seed(pg);
	/* close on A, seen on B */
	d = t_change(na, 1, CONV_OP_CLOSE, 0);
	ck_assert(d.found && d.staff_found);
	o = t_summary(nb, 1);
	ck_assert_str_eq(json_string_value(json_object_get(o, "status")),
	    "closed");
	json_decref(o);
	ck_assert(t_change(nb, 1, CONV_OP_REOPEN, 0).found);
	ck_assert(!t_change(nb, 99, CONV_OP_READ, 0).found);
	/* assign: no such staff member changes nothing */
	d = t_change(na, 1, CONV_OP_ASSIGN, 99);
	ck_assert(d.found && !d.staff_found);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT coalesce(assigned_staff, 0)"
			     " FROM conversations WHERE id = 1",
			     NULL),
	    "0");
	d = t_change(na, 1, CONV_OP_ASSIGN, 7);
	ck_assert(d.found && d.staff_found);
	o = t_summary(nb, 1);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(o, "assigned"), "name")),
	    "Ann");
	json_decref(o);
	ck_assert(t_change(na, 1, CONV_OP_ASSIGN, 0).staff_found);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT coalesce(assigned_staff, 0)"
			     " FROM conversations WHERE id = 1",
			     NULL),
	    "0");
	/* notes */
	d = t_note(nb, 1, "wants a group");
	ck_assert(d.found && d.id > 0);
	ck_assert_int_eq(
	    store_conv_note_json_pg(na, d.id, t_on_json, &tj, err, sizeof(err)),
	    0);
	ckpg_run_until(t_base, &tj.done, "note");
	ck_assert_msg(tj.o != NULL, "note: %s", tj.error);
	ck_assert_str_eq(json_string_value(json_object_get(tj.o, "body")),
	    "wants a group");
	ck_assert_str_eq(json_string_value(json_object_get(tj.o, "kind")),
	    "note");
	json_decref(tj.o);
	ck_assert(!t_note(na, 99, "nowhere").found);
	ck_assert_int_eq(
	    t_int(pg, "SELECT count(*) FROM conversation_notes", NULL), 1);
	/* a reply, then its key again on the other node */
	t_reply_send(na, &m, &a);
	d = t_wait(&a, "reply");
	ck_assert(!d.dup && d.id > 0);
	snprintf(ids, sizeof(ids), "%" PRId64, d.id);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT status || ' ' || conversation_id || ' ' ||"
			     " staff_id || ' ' || priority FROM messages"
			     " WHERE id = $1",
			     ids),
	    "queued 1 7 10");
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM message_events"
			     " WHERE message_id = $1 AND status = 'queued'",
			     ids),
	    1);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT unread || ' ' || last_out_at || ' ' ||"
			     " last_message_at FROM conversations WHERE id = 1",
			     NULL),
	    "0 7000 7000");
	t_sql(pg, "UPDATE conversations SET unread = 3 WHERE id = 1", NULL);
	memset(&b, 0, sizeof(b));
	t_reply_send(nb, &m, &b);
	ck_assert(t_wait(&b, "reply again").dup);
	ck_assert_int_eq(b.d.id, d.id);
	/* the retry changed nothing */
	ck_assert_int_eq(
	    t_int(pg, "SELECT unread FROM conversations WHERE id = 1", NULL),
	    3);
	/* both nodes in one turn: one message, both answer its id */
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	t_reply_send(na, &m2, &a);
	t_reply_send(nb, &m2, &b);
	t_wait(&a, "reply on a");
	t_wait(&b, "reply on b");
	ck_assert_int_eq(a.d.id, b.d.id);
	ck_assert(a.d.dup != b.d.dup);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM messages"
			     " WHERE conversation_id = 1 AND direction = 'out'",
			     NULL),
	    2);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM message_events e JOIN"
			     " messages m ON m.id = e.message_id"
			     " WHERE m.direction = 'out'",
			     NULL),
	    2);
	/* refused before anything is sent */
	m.conversation_id = 0;
	ck_assert_int_eq(store_conv_reply_pg(na, &m, 7000, t_on_done, NULL, err,
			     sizeof(err)),
	    -1);
	pg_free(pg);
	store_close(nb);
	store_close(na);
	event_base_free(t_base);
}
END_TEST

/* ---- target -------------------------------------------------------------- */

struct t_target {
	bool done;
	int rc;
	struct conv_target t;
};

static void
t_on_target(void *arg, int rc, const struct conv_target *t, const char *error)
{
	struct t_target *x = arg;

	ck_assert_msg(rc != -1, "target: %s", error);
	x->done = true;
	x->rc = rc;
	if (t != NULL)
		x->t = *t;
}

START_TEST(test_target)
{
	struct t_target x = {0};
	struct store *st;
	struct pg *pg;
	char url[600], err[256];

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("cvpg_target", url, sizeof(url));
	st = t_open(url, "a");
	pg = ckpg_connect(t_base, url);
	t_seed(pg);
	t_sql(pg, "UPDATE lists SET sender = 'listy' WHERE id = 5", NULL);
	t_sql(pg,
	    "INSERT INTO sms_optout (member_id, opted_out_at, source)"
	    " VALUES (2, 1, 'keyword')",
	    NULL);
	ck_assert_int_eq(
	    store_conv_target_pg(st, 1, t_on_target, &x, err, sizeof(err)), 0);
	ckpg_run_until(t_base, &x.done, "target 1");
	ck_assert_int_eq(x.rc, 1);
	ck_assert_int_eq(x.t.member, 1);
	ck_assert_str_eq(x.t.phone, "+15550001001");
	ck_assert_str_eq(x.t.sender, "main");
	ck_assert_str_eq(x.t.list_sender, "");
	ck_assert(!x.t.sms_opted_out);
	memset(&x, 0, sizeof(x));
	ck_assert_int_eq(
	    store_conv_target_pg(st, 2, t_on_target, &x, err, sizeof(err)), 0);
	ckpg_run_until(t_base, &x.done, "target 2");
	ck_assert_int_eq(x.rc, 1);
	ck_assert_str_eq(x.t.list_sender, "listy");
	ck_assert(x.t.sms_opted_out);
	memset(&x, 0, sizeof(x));
	ck_assert_int_eq(
	    store_conv_target_pg(st, 99, t_on_target, &x, err, sizeof(err)), 0);
	ckpg_run_until(t_base, &x.done, "no target");
	ck_assert_int_eq(x.rc, 0);
	pg_free(pg);
	store_close(st);
	event_base_free(t_base);
}
END_TEST

/* ---- saved replies ------------------------------------------------------ */

static struct t_done *
t_saved_send(struct store *st, enum saved_op op, int64_t id, const char *name,
    const char *body, struct t_done *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(
	    store_saved_reply_write_pg(st, op, id,
		&(struct saved_reply){.name = name, .body = body, .now = 8000},
		t_on_done, t, err, sizeof(err)) == 0,
	    "saved reply: %s", err);
	return t;
}

static struct conv_done
t_saved(struct store *st, enum saved_op op, int64_t id, const char *name,
    const char *body)
{
	struct t_done t;

	return t_wait(t_saved_send(st, op, id, name, body, &t), "saved reply");
}

struct t_for {
	bool done;
	int rc;
	char body[64], first[64];
};

static void
t_on_for(void *arg, int rc, const struct conv_saved_for *s, const char *error)
{
	struct t_for *x = arg;

	ck_assert_msg(rc != -1, "saved for: %s", error);
	x->done = true;
	x->rc = rc;
	if (s != NULL) {
		snprintf(x->body, sizeof(x->body), "%s",
		    s->body != NULL ? s->body : "(none)");
		snprintf(x->first, sizeof(x->first), "%s", s->first_name);
	}
}

static struct t_for
t_saved_for(struct store *st, int64_t saved, int64_t member)
{
	struct t_for x = {0};
	char err[256];

	ck_assert_int_eq(store_conv_saved_for_pg(st, saved, member, t_on_for,
			     &x, err, sizeof(err)),
	    0);
	ckpg_run_until(t_base, &x.done, "saved for");
	return x;
}

START_TEST(test_saved_replies_two_nodes)
{
	struct t_done a, b;
	struct t_json tj = {0};
	struct conv_done d;
	struct store *na, *nb;
	struct t_for x;
	char url[600], err[256];
	struct pg *pg;
	json_t *list;
	int64_t id;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("cvpg_saved", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = ckpg_connect(t_base, url);
	t_seed(pg);
	d = t_saved(na, SAVED_CREATE, 0, "thanks", "Thanks {{first_name}}!");
	ck_assert(d.found && !d.dup && d.id > 0);
	id = d.id;
	d = t_saved(nb, SAVED_CREATE, 0, "thanks", "again");
	ck_assert(!d.found && d.dup);
	/* both nodes in one turn: one made, the other told, no group fails */
	t_saved_send(na, SAVED_CREATE, 0, "other", "one", &a);
	t_saved_send(nb, SAVED_CREATE, 0, "other", "two", &b);
	t_wait(&a, "create on a");
	t_wait(&b, "create on b");
	ck_assert(a.d.dup != b.d.dup && a.d.found != b.d.found);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM saved_replies"
			     " WHERE name = 'other'",
			     NULL),
	    1);
	/* update: a name taken, a body, none */
	d = t_saved(nb, SAVED_UPDATE, id, "other", NULL);
	ck_assert(d.dup);
	d = t_saved(nb, SAVED_UPDATE, id, NULL, "Thanks, {{first_name}}!");
	ck_assert(d.found && !d.dup);
	ck_assert(!t_saved(na, SAVED_UPDATE, 999, NULL, "x").found);
	ck_assert_int_eq(
	    store_saved_replies_json_pg(na, t_on_json, &tj, err, sizeof(err)),
	    0);
	ckpg_run_until(t_base, &tj.done, "saved replies");
	ck_assert_msg(tj.o != NULL, "saved replies: %s", tj.error);
	list = json_object_get(tj.o, "saved_replies");
	ck_assert_int_eq(json_array_size(list), 2);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_array_get(list, 1), "body")),
	    "Thanks, {{first_name}}!");
	json_decref(tj.o);
	/* read with the member it is for */
	x = t_saved_for(nb, id, 1);
	ck_assert_int_eq(x.rc, 1);
	ck_assert_str_eq(x.body, "Thanks, {{first_name}}!");
	ck_assert_str_eq(x.first, "Alice");
	x = t_saved_for(nb, 999, 1);
	ck_assert_int_eq(x.rc, 1);
	ck_assert_str_eq(x.body, "(none)");
	ck_assert_int_eq(t_saved_for(nb, id, 999).rc, 0);
	/* delete */
	ck_assert(t_saved(na, SAVED_DELETE, id, NULL, NULL).found);
	ck_assert(!t_saved(nb, SAVED_DELETE, id, NULL, NULL).found);
	pg_free(pg);
	store_close(nb);
	store_close(na);
	event_base_free(t_base);
}
END_TEST

/* ---- members (queue/store_members_pg.c) ---------------------------------- */

struct t_mb {
	bool done;
	struct mb_done d;
	char error[256];
};

static void
t_on_mb(void *arg, const struct mb_done *d)
{
	struct t_mb *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	t->d.error = NULL;
	if (d->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", d->error);
}

static struct mb_done
t_mb_wait(struct t_mb *t, const char *what)
{
	ckpg_run_until(t_base, &t->done, what);
	ck_assert_msg(t->d.ok, "%s failed: %s", what, t->error);
	return t->d;
}

/* Sends a create (id 0) or update of f on st into t. */
static struct t_mb *
t_mb_write(struct store *st, int64_t id, const struct member_fields *f,
    struct t_mb *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(
	    store_member_write_pg(st,
		&(struct member_write_pg){.id = id, .f = f, .now = 9000},
		t_on_mb, t, err, sizeof(err)) == 0,
	    "member write: %s", err);
	return t;
}

/* Sends an update of member id's tags on st into t. */
static struct t_mb *
t_mb_tags(struct store *st, int64_t id, const json_t *add, const json_t *remove,
    struct t_mb *t)
{
	static const struct member_fields none;
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(store_member_write_pg(st,
			  &(struct member_write_pg){.id = id,
			      .f = &none,
			      .now = 9000,
			      .add_tags = add,
			      .remove_tags = remove},
			  t_on_mb, t, err, sizeof(err)) == 0,
	    "tags: %s", err);
	return t;
}

static struct t_mb *
t_mb_opt(struct store *st, int64_t id, bool out, struct t_mb *t)
{
	struct consent_change cc = {.member = id,
	    .ch = CHANNEL_SMS,
	    .source = CONSENT_API,
	    .detail = "asked",
	    .now = 9100};
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(
	    (out ? store_member_optout_pg(st, &cc, t_on_mb, t, err, sizeof(err))
		 : store_member_optin_pg(st, &cc, t_on_mb, t, err,
		       sizeof(err))) == 0,
	    "opt: %s", err);
	return t;
}

/* A member read or search: its JSON (NULL: none), read to the end. */
static json_t *
t_mb_json(struct store *st, int64_t id, const struct member_search *s)
{
	struct t_json t = {0};
	char err[256];

	ck_assert_msg((s == NULL ? store_member_json_pg(st, id, t_on_json, &t,
				       err, sizeof(err))
				 : store_member_search_pg(st, s, t_on_json, &t,
				       err, sizeof(err))) == 0,
	    "member read: %s", err);
	ckpg_run_until(t_base, &t.done, "member read");
	ck_assert_msg(t.error[0] == '\0', "member read: %s", t.error);
	return t.o;
}

/* The ids of a search, "1,2". */
static const char *
t_mb_ids(struct store *st, const struct member_search *s)
{
	static char ids[128];
	json_t *o = t_mb_json(st, 0, s), *m;
	size_t i;
	int n = 0;

	if (o == NULL)
		return "(none)";
	ids[0] = '\0';
	json_array_foreach(json_object_get(o, "members"), i, m)
		n += snprintf(ids + n, sizeof(ids) - (size_t)n, "%s%lld",
		    i > 0 ? "," : "",
		    (long long)json_integer_value(json_object_get(m, "id")));
	json_decref(o);
	return ids;
}

/* Runs the loop (a query at a time) until n sessions wait for a lock. */
static void
t_mb_waiters(struct pg *pg, long long n)
{
	time_t end = time(NULL) + CKPG_DEADLINE_S;

	while (t_int(pg, "SELECT count(*) FROM pg_locks WHERE NOT granted",
		   NULL) < n)
		ck_assert_msg(time(NULL) < end,
		    "%lld sessions never waited for a lock", n);
}

/* An export's rows as "a|b|...;" (NULL: "~"), the header included. */
struct t_csv {
	bool done;
	int rc;
	char rows[1024];
	size_t n;
};

static int
t_csv_row(void *arg, const struct export_row *row)
{
	struct t_csv *c = arg;
	size_t i;

	for (i = 0; i < row->ncols && i < 10; i++) /* not "at" */
		c->n += (size_t)snprintf(c->rows + c->n, sizeof(c->rows) - c->n,
		    "%s%s", i > 0 ? "|" : "",
		    row->cols[i] != NULL ? row->cols[i] : "~");
	c->n += (size_t)snprintf(c->rows + c->n, sizeof(c->rows) - c->n, ";");
	return 0;
}

static void
t_csv_done(void *arg, int rc, const char *error)
{
	struct t_csv *c = arg;

	ck_assert_msg(rc == 0, "export: %s", error);
	c->done = true;
	c->rc = rc;
}

/* One page of member's consent export after 'after', limit 1. */
static const char *
t_csv_page(struct store *st, int64_t member, struct export_page *pg,
    struct t_csv *c)
{
	struct export_sink to = {.each = t_csv_row, .arg = c};
	char err[256];

	memset(c, 0, sizeof(*c));
	ck_assert_msg(
	    store_export_consent_pg(st,
		&(struct export_req_pg){.member = member, .pg = pg, .to = &to},
		t_csv_done, c, err, sizeof(err)) == 0,
	    "export: %s", err);
	ckpg_run_until(t_base, &c->done, "export page");
	return c->rows;
}

START_TEST(test_members_two_nodes)
{
	struct member_fields f = {.set = MF_PHONE | MF_FIRST_NAME,
	    .phone = "+15550001009",
	    .first_name = "Cleo"};
	struct t_mb a, b;
	struct mb_done d;
	struct store *na, *nb;
	struct t_json tj = {0};
	char url[600], err[256], text[128];
	struct pg *pg;
	json_t *o, *attrs, *patch, *tags, *remove;
	int64_t cleo;

	NEED_CLUSTER();
	t_base = event_base_new();
	t_db("cvpg_members", url, sizeof(url));
	na = t_open(url, "a");
	nb = t_open(url, "b");
	pg = ckpg_connect(t_base, url);
	t_seed(pg);
	t_sql(pg, "SELECT setval(pg_get_serial_sequence('members', 'id'), 10)",
	    NULL);
	/* one member created on both nodes in one turn: one made, one told */
	t_mb_write(na, 0, &f, &a);
	t_mb_write(nb, 0, &f, &b);
	t_mb_wait(&a, "create on a");
	t_mb_wait(&b, "create on b");
	ck_assert(a.d.conflict != b.d.conflict);
	d = a.d.conflict ? b.d : a.d;
	ck_assert(d.id == 11 && d.found);
	cleo = d.id;
	snprintf(text, sizeof(text),
	    "phone +15550001009 already belongs to member %lld",
	    (long long)cleo);
	ck_assert_str_eq(a.d.conflict ? a.error : b.error, text);
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM members"
			     " WHERE phone = '+15550001009'",
			     NULL),
	    1);
	/*
	 * Two members given one email on two nodes, the second while the
	 * first's group, its UPDATE done, is held open (by a lock this
	 * connection holds): the second waits for the member lock (1868, 7),
	 * then sees the first's committed email and answers a conflict;
	 * without that lock its UPDATE would wait on the first's row and
	 * then raise a unique violation, failing its group.
	 */
	t_sql(pg, "SELECT pg_advisory_lock(1868, 99)", NULL);
	f = (struct member_fields){.set = MF_EMAIL, .email = "x@example.org"};
	t_mb_write(na, 1, &f, &a);
	ck_assert_msg(store_pg_group_send(na,
			  &(struct pg_query){
			      .sql = "SELECT pg_advisory_xact_lock(1868, 99)"},
			  err, sizeof(err)) == 0,
	    "hold: %s", err);
	t_mb_waiters(pg, 1);
	t_mb_write(nb, 2, &f, &b);
	t_mb_waiters(pg, 2);
	t_sql(pg, "SELECT pg_advisory_unlock(1868, 99)", NULL);
	t_mb_wait(&a, "update on a");
	t_mb_wait(&b, "update on b");
	ck_assert(a.d.changed && !a.d.conflict && a.d.found);
	ck_assert(!b.d.changed && b.d.conflict && b.d.found);
	ck_assert_str_eq(b.error,
	    "email x@example.org already belongs to member 1");
	ck_assert_int_eq(t_int(pg,
			     "SELECT count(*) FROM members"
			     " WHERE email = 'x@example.org'",
			     NULL),
	    1);
	/* nothing differs: not changed; a missing member: not found */
	d = t_mb_wait(t_mb_write(na, 1, &f, &a), "same");
	ck_assert(d.found && !d.changed && !d.conflict);
	d = t_mb_wait(t_mb_write(na, 999, &f, &a), "missing");
	ck_assert(!d.found && !d.changed);
	/* attributes merged (null removes), tags replaced */
	attrs = json_pack("{s:s, s:i}", "shirt", "M", "ward", 3);
	patch = json_pack("{s:n, s:s}", "shirt", "team", "blue");
	f = (struct member_fields){.set = MF_ATTRS | MF_TAGS,
	    .attrs = attrs,
	    .tags = json_pack("[s, s, s]", "a", "b", "a")};
	ck_assert(t_mb_wait(t_mb_write(nb, cleo, &f, &a), "attrs").changed);
	json_decref((json_t *)f.tags);
	f = (struct member_fields){.set = MF_ATTRS_MERGE, .attrs = patch};
	ck_assert(t_mb_wait(t_mb_write(na, cleo, &f, &a), "merge").changed);
	o = t_mb_json(nb, cleo, NULL);
	ck_assert_ptr_nonnull(o);
	json_decref(attrs);
	attrs = json_pack("{s:i, s:s}", "ward", 3, "team", "blue");
	ck_assert(json_equal(json_object_get(o, "attributes"), attrs));
	ck_assert_int_eq(json_array_size(json_object_get(o, "tags")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(o, "first_name")),
	    "Cleo");
	json_decref(o);
	json_decref(attrs);
	json_decref(patch);
	ck_assert_ptr_null(t_mb_json(na, 999, NULL));
	/*
	 * add_tags / remove_tags applied to the stored tags by the statement:
	 * two nodes adding one each in one turn keep both; a tag removed and
	 * added comes last; an add of what is there changes nothing
	 */
	tags = json_pack("[s, s]", "x", "x");
	t_mb_tags(na, cleo, tags, NULL, &a);
	json_decref(tags);
	tags = json_pack("[s]", "y");
	t_mb_tags(nb, cleo, tags, NULL, &b);
	t_mb_wait(&a, "add on a");
	t_mb_wait(&b, "add on b");
	ck_assert(a.d.changed && b.d.changed);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT tags::jsonb - 'x' - 'y' FROM"
			     " members WHERE id = 11",
			     NULL),
	    "[\"a\", \"b\"]");
	ck_assert_int_eq(t_int(pg,
			     "SELECT jsonb_array_length(tags::jsonb)"
			     " FROM members WHERE id = 11",
			     NULL),
	    4);
	remove = json_pack("[s, s]", "a", "y");
	ck_assert(
	    t_mb_wait(t_mb_tags(na, cleo, tags, remove, &a), "swap").changed);
	ck_assert_str_eq(
	    t_sql(pg, "SELECT tags FROM members WHERE id = 11", NULL),
	    "[\"b\", \"x\", \"y\"]");
	ck_assert(
	    !t_mb_wait(t_mb_tags(nb, cleo, tags, NULL, &a), "again").changed);
	json_decref(tags);
	json_decref(remove);
	/* searches: ASCII case folding, LIKE's wildcards, tags, lists */
	ck_assert_str_eq(
	    t_mb_ids(na,
		&(struct member_search){.q = {.name = "ALI", .limit = 10}}),
	    "1");
	ck_assert_str_eq(
	    t_mb_ids(na,
		&(struct member_search){.q = {.name = "_", .limit = 10}}),
	    "");
	/* only A-Z folded, as SQLite's LIKE: "É" is not "é" */
	t_sql(pg,
	    "INSERT INTO members (id, email, last_name, created_at,"
	    " updated_at) VALUES (7, 'e@example.org', 'Émile', 1, 1)",
	    NULL);
	ck_assert_str_eq(
	    t_mb_ids(na,
		&(struct member_search){.q = {.name = "éMILE", .limit = 10}}),
	    "");
	ck_assert_str_eq(
	    t_mb_ids(na,
		&(struct member_search){.q = {.name = "Émile", .limit = 10}}),
	    "7");
	ck_assert_str_eq(
	    t_mb_ids(nb,
		&(struct member_search){.q = {.tag = "b", .limit = 10}}),
	    "11");
	ck_assert_str_eq(t_mb_ids(nb,
			     &(struct member_search){.q = {.limit = 10},
				 .list_ref = "rally"}),
	    "2");
	ck_assert_str_eq(
	    t_mb_ids(nb,
		&(struct member_search){.q = {.limit = 10}, .list_ref = "5"}),
	    "2");
	ck_assert_str_eq(
	    t_mb_ids(nb,
		&(struct member_search){.q = {.limit = 10}, .list_ref = "6"}),
	    "(none)");
	ck_assert_str_eq(t_mb_ids(nb,
			     &(struct member_search){
				 .q = {.phone = "+15550001002", .limit = 10}}),
	    "2");
	ck_assert_str_eq(
	    t_mb_ids(nb,
		&(struct member_search){.q = {.after = 1, .limit = 1}}),
	    "2");
	/* lists by reference; array elements quoted whatever they hold */
	{
		static const char *const refs[] = {"5", "rally", "no\"pe,{x}\\",
		    "6", "05"};
		char errs[256];

		memset(&tj, 0, sizeof(tj));
		ck_assert_msg(store_lists_resolve_pg(nb, refs, 5, t_on_json,
				  &tj, errs, sizeof(errs)) == 0,
		    "lists: %s", errs);
		ckpg_run_until(t_base, &tj.done, "lists");
		ck_assert_msg(tj.o != NULL, "lists: %s", tj.error);
		o = json_pack("[[I, b], [I, b], n, n, [I, b]]", (json_int_t)5,
		    0, (json_int_t)5, 0, (json_int_t)5, 0);
		ck_assert(json_equal(tj.o, o));
		json_decref(o);
		json_decref(tj.o);
		memset(&tj, 0, sizeof(tj));
	}
	/* an opt-out on both nodes in one turn: one row, one event */
	t_mb_opt(na, 1, true, &a);
	t_mb_opt(nb, 1, true, &b);
	t_mb_wait(&a, "opt-out on a");
	t_mb_wait(&b, "opt-out on b");
	ck_assert(a.d.changed != b.d.changed && a.d.found && b.d.found);
	ck_assert(!t_mb_wait(t_mb_opt(na, 999, true, &a), "none").found);
	ck_assert(t_mb_wait(t_mb_opt(nb, 1, false, &a), "opt-in").changed);
	ck_assert(!t_mb_wait(t_mb_opt(na, 1, false, &a), "again").changed);
	ck_assert_str_eq(t_sql(pg,
			     "SELECT string_agg(concat_ws(',', channel, action,"
			     " source, coalesce(list_id, 0), coalesce("
			     "message_id, 0), detail, created_at), ';'"
			     " ORDER BY id) FROM consent_events"
			     " WHERE member_id = 1",
			     NULL),
	    "sms,opt_out,api,0,0,asked,9100;sms,opt_in,api,0,0,asked,9100");
	/* the consent log, a page of one, a member without events, none */
	ck_assert_int_eq(store_consent_json_pg(nb,
			     &(struct consent_page){.member = 1, .limit = 1},
			     t_on_json, &tj, err, sizeof(err)),
	    0);
	ckpg_run_until(t_base, &tj.done, "consent");
	ck_assert_ptr_nonnull(tj.o);
	ck_assert_int_eq(json_array_size(json_object_get(tj.o, "events")), 1);
	ck_assert(json_is_string(json_object_get(tj.o, "next_cursor")));
	json_decref(tj.o);
	memset(&tj, 0, sizeof(tj));
	ck_assert_int_eq(store_consent_json_pg(nb,
			     &(struct consent_page){.member = 2, .limit = 10},
			     t_on_json, &tj, err, sizeof(err)),
	    0);
	ckpg_run_until(t_base, &tj.done, "consent");
	ck_assert_ptr_nonnull(tj.o);
	ck_assert_int_eq(json_array_size(json_object_get(tj.o, "events")), 0);
	json_decref(tj.o);
	memset(&tj, 0, sizeof(tj));
	ck_assert_int_eq(store_consent_json_pg(nb,
			     &(struct consent_page){.member = 999, .limit = 10},
			     t_on_json, &tj, err, sizeof(err)),
	    0);
	ckpg_run_until(t_base, &tj.done, "consent");
	ck_assert(tj.o == NULL && tj.error[0] == '\0');
	/* the consent export in pages of one: the header on the first */
	{
		struct export_page ep = {.limit = 1};
		struct t_csv c;
		char want[256];
		int64_t e1 = t_int(pg,
		    "SELECT min(id) FROM consent_events WHERE member_id = 1",
		    NULL);

		snprintf(want, sizeof(want),
		    "id|member_id|phone|email|channel|action|source|list|"
		    "message_id|detail;%lld|1|+15550001001|x@example.org|sms|"
		    "opt_out|api|~|~|asked;",
		    (long long)e1);
		ck_assert_str_eq(t_csv_page(nb, 1, &ep, &c), want);
		ck_assert_int_eq(ep.next, e1);
		ep.after = ep.next;
		snprintf(want, sizeof(want),
		    "%lld|1|+15550001001|x@example.org|sms|opt_in|api|~|~|"
		    "asked;",
		    (long long)e1 + 1);
		ck_assert_str_eq(t_csv_page(na, 1, &ep, &c), want);
		ck_assert_int_eq(ep.next, 0);
		ep = (struct export_page){.limit = 10};
		t_csv_page(na, 2, &ep, &c);
		ck_assert_str_eq(c.rows,
		    "id|member_id|phone|email|channel|action|source|list|"
		    "message_id|detail;");
	}
	pg_free(pg);
	store_close(nb);
	store_close(na);
	event_base_free(t_base);
}
END_TEST

Suite *
conversations_pg_suite(void)
{
	Suite *s = suite_create("conversations_pg");
	TCase *pure = tcase_create("pure");
	TCase *tc = tcase_create("cluster");

	tcase_add_test(pure, test_tsquery);
	suite_add_tcase(s, pure);
	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_list_and_thread);
	tcase_add_test(tc, test_writes_two_nodes);
	tcase_add_test(tc, test_target);
	tcase_add_test(tc, test_saved_replies_two_nodes);
	tcase_add_test(tc, test_members_two_nodes);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
