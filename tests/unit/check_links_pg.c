/*
 * check_links_pg.c - a one-click unsubscribe's store operations
 * (queue/store_links_pg.c) on their PostgreSQL side, against a throwaway
 * cluster (check_pgcluster.h), through PostgreSQL stores opened as the
 * daemon opens them (store_open_config()), two "nodes" on one loop:
 *
 *  - the recipient of a message: an outbound email's to (as stored), an
 *    inbound text's from, the member, and found = false for no message;
 *  - an email opt-out by one node creates the member, its email_optout
 *    row (source web) and one consent event carrying the message; the
 *    same opt-out on the other node is answered ok with changed false
 *    and writes nothing; an existing member keeps its id;
 *  - both nodes opting one new address out in the same turn (two group
 *    transactions racing): both answer ok, one member, one opt-out, one
 *    event, exactly one of them changed (an insert without ON CONFLICT
 *    would fail the second group);
 *  - an SMS opt-out by phone writes sms_optout;
 *  - an email double opt-in's click (queue/store_confirm_pg.c) served by
 *    both nodes in the same turn: both ok, exactly one activated, the
 *    subscription active, one confirm and one opt_in event (the email
 *    opt-out lifted), one welcome email; a third click changes nothing;
 *    a left subscription and an unknown one are told, nothing written;
 *  - an email subscription to a double opt-in list with its
 *    confirmation email, asked by both nodes in the same turn: one new
 *    (one pending row, one opt_in event, one email), one already; once
 *    left, rejoined with a second email; the list's name read.
 *
 * The SQLite side is email_links.c's own tests (test_email_links.py runs
 * on it unchanged). States only, no timing assertions. Skipped, with the
 * reason printed, when PostgreSQL's server binaries are missing; without
 * libpq the suite holds one test that says so.
 */
#include "autoconf.h"

#include <stdio.h>

#include <check.h>

#include "check_suites.h"

#ifndef HAVE_LIBPQ

#include "check_pgcluster.h"

Suite *
links_pg_suite(void)
{
	return ckpg_not_built_suite("links_pg");
}

#else /* HAVE_LIBPQ */

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "check_pgcluster.h"
#include "message.h"
#include "pg.h"
#include "store.h"
#include "store_confirm_pg.h"
#include "store_links_pg.h"

static char pg_url[512]; /* "" = no cluster: the tests skip */
static struct event_base *t_base;
static struct pg *t_pg; /* the test database's connection, for checks */

static void
cluster_start(void)
{
	ckpg_start("check_links_pg", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_links_pg", pg_url);
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
	struct pg *pg = ckpg_connect(t_base, pg_url);
	char sql[128], url[512], err[512];
	int i;

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
	ckpg_sql(t_base, pg, sql, NULL);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	ckpg_sql(t_base, pg, sql, NULL);
	pg_free(pg);
	ckpg_db_url(pg_url, db, url, sizeof(url));
	for (i = 0; i < 2; i++) {
		st[i] = store_open_config(
		    &(struct store_config){.backend = STORE_POSTGRESQL,
			.url = url,
			.node = names[i],
			.base = t_base},
		    err, sizeof(err));
		ck_assert_msg(st[i] != NULL, "store_open_config %s: %s",
		    names[i], err);
		store_attach(st[i], t_base, 0);
	}
	t_pg = ckpg_connect(t_base, url);
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

/* ---- the recipient ------------------------------------------------- */

struct t_rcpt {
	bool done;
	int rc;
	struct msg_recipient r;
	char error[256];
};

static void
t_on_rcpt(void *arg, int rc, const struct msg_recipient *r, const char *error)
{
	struct t_rcpt *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->rc = rc;
	if (r != NULL)
		t->r = *r;
	if (error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", error);
}

static void
t_rcpt(struct store *st, int64_t id, struct t_rcpt *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(store_message_recipient_async(st, id, t_on_rcpt, t, err,
			  sizeof(err)) == 0,
	    "recipient: %s", err);
	ck_assert(!t->done); /* answered from the loop, not inside the call */
	ckpg_run_until(t_base, &t->done, "recipient");
	ck_assert_msg(t->rc == 0, "recipient: %s", t->error);
}

START_TEST(test_recipient)
{
	struct store *st[2];
	struct t_rcpt t;
	int64_t out, in, member;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_open("links_rcpt", st);
	member = t_int("INSERT INTO members (phone, created_at, updated_at)"
		       " VALUES ('+15550100001', 1, 1) RETURNING id");
	out = t_int("INSERT INTO messages (direction, channel, to_addr,"
		    " subject, body, status, next_attempt_at, created_at,"
		    " updated_at) VALUES ('out', 'email', 'Bob@Example.ORG',"
		    " 's', 'b', 'sent', 1, 1, 1) RETURNING id");
	in = t_int("INSERT INTO messages (direction, channel, member_id,"
		   " to_addr, from_addr, body, status, next_attempt_at,"
		   " created_at, updated_at) VALUES ('in', 'sms', (SELECT id"
		   " FROM members), '+15550109999', '+15550100001', 'hi',"
		   " 'received', 1, 1, 1) RETURNING id");

	t_rcpt(st[1], out, &t);
	ck_assert(t.r.found);
	ck_assert_int_eq(t.r.ch, CHANNEL_EMAIL);
	ck_assert_str_eq(t.r.addr, "Bob@Example.ORG"); /* as stored */
	ck_assert_int_eq(t.r.member, 0);
	t_rcpt(st[0], in, &t);
	ck_assert(t.r.found);
	ck_assert_int_eq(t.r.ch, CHANNEL_SMS);
	ck_assert_str_eq(t.r.addr, "+15550100001"); /* inbound: the sender */
	ck_assert_int_eq(t.r.member, member);
	t_rcpt(st[0], in + out + 1000, &t);
	ck_assert(!t.r.found);
	t_close(st);
}
END_TEST

/* ---- the opt-out --------------------------------------------------- */

struct t_out {
	bool done;
	struct store_optout_done d;
	char error[256];
};

static void
t_on_out(void *arg, const struct store_optout_done *d)
{
	struct t_out *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	if (d->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", d->error);
	t->d.error = NULL;
}

/* Starts an opt-out of 'address' on st; answered once its group commits. */
static void
t_optout_send(struct store *st, enum channel ch, const char *address,
    int64_t msg, struct t_out *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(store_member_optout_durable(st, address,
			  &(struct consent_change){.ch = ch,
			      .source = CONSENT_WEB,
			      .message_id = msg,
			      .now = msg_now_ms()},
			  t_on_out, t, err, sizeof(err)) == 0,
	    "opt-out: %s", err);
	ck_assert(!t->done);
}

static void
t_optout_wait(struct t_out *t)
{
	ckpg_run_until(t_base, &t->done, "opt-out");
	ck_assert_msg(t->d.ok, "opt-out: %s", t->error);
}

static void
t_optout(struct store *st, enum channel ch, const char *address, int64_t msg,
    struct t_out *t)
{
	t_optout_send(st, ch, address, msg, t);
	t_optout_wait(t);
}

START_TEST(test_optout_email_any_node)
{
	struct store *st[2];
	struct t_out t;
	int64_t carol;
	char sql[256];

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_open("links_email", st);
	t_sql("INSERT INTO messages (id, direction, channel, to_addr, body,"
	      " status, next_attempt_at, created_at, updated_at) VALUES (42,"
	      " 'out', 'email', 'bob@example.org', 'b', 'sent', 1, 1, 1)");

	/* node a: a new member, its opt-out and one event */
	t_optout(st[0], CHANNEL_EMAIL, "bob@example.org", 42, &t);
	ck_assert(t.d.changed);
	ck_assert_int_gt(t.d.member, 0);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM members WHERE id = %lld"
	    " AND email = 'bob@example.org'",
	    (long long)t.d.member);
	ck_assert_str_eq(t_sql(sql), "1");
	ck_assert_str_eq(t_sql("SELECT string_agg(source, ',') FROM"
			       " email_optout"),
	    "web");
	ck_assert_str_eq(t_sql("SELECT string_agg(channel || ' ' || action"
			       " || ' ' || source || ' ' || message_id || ' '"
			       " || coalesce(list_id::text, '-'), ',')"
			       " FROM consent_events"),
	    "email opt_out web 42 -");

	/* node b, the same click again: ok, nothing written */
	t_optout(st[1], CHANNEL_EMAIL, "bob@example.org", 42, &t);
	ck_assert(!t.d.changed);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM members"), "1");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM email_optout"), "1");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM consent_events"), "1");

	/* a member known before keeps its id */
	carol = t_int("INSERT INTO members (email, created_at, updated_at)"
		      " VALUES ('carol@example.org', 1, 1) RETURNING id");
	t_optout(st[1], CHANNEL_EMAIL, "carol@example.org", 0, &t);
	ck_assert(t.d.changed);
	ck_assert_int_eq(t.d.member, carol);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM members"), "2");
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM consent_events WHERE member_id = %lld"
	    " AND message_id IS NULL",
	    (long long)carol);
	ck_assert_str_eq(t_sql(sql), "1");
	t_close(st);
}
END_TEST

START_TEST(test_optout_race_two_nodes)
{
	struct store *st[2];
	struct t_out ta, tb;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_open("links_race", st);
	/* Both groups go out in the same loop turn, on two connections. */
	t_optout_send(st[0], CHANNEL_EMAIL, "dave@example.org", 0, &ta);
	t_optout_send(st[1], CHANNEL_EMAIL, "dave@example.org", 0, &tb);
	t_optout_wait(&ta);
	t_optout_wait(&tb);
	ck_assert_msg(ta.d.changed != tb.d.changed,
	    "exactly one changed: %d %d", ta.d.changed, tb.d.changed);
	ck_assert_int_eq(ta.d.member, tb.d.member);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM members"), "1");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM email_optout"), "1");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM consent_events"), "1");
	t_close(st);
}
END_TEST

START_TEST(test_optout_sms)
{
	struct store *st[2];
	struct t_out t;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_open("links_sms", st);
	t_optout(st[0], CHANNEL_SMS, "+15550100002", 0, &t);
	ck_assert(t.d.changed);
	ck_assert_str_eq(t_sql("SELECT m.phone || ' ' || o.source FROM"
			       " sms_optout o JOIN members m ON"
			       " m.id = o.member_id"),
	    "+15550100002 web");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM email_optout"), "0");
	ck_assert_str_eq(t_sql("SELECT channel FROM consent_events"), "sms");
	t_close(st);
}
END_TEST

/* ---- the email double opt-in (store_confirm_pg.c) ------------------ */

struct t_conf {
	bool done;
	struct store_confirm_done d;
	char error[256];
};

static void
t_on_conf(void *arg, const struct store_confirm_done *d)
{
	struct t_conf *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	if (d->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", d->error);
	t->d.error = NULL;
}

static void
t_confirm_send(struct store *st, int64_t member, int64_t list, struct t_conf *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(store_confirm_durable(st,
			  &(struct store_confirm){.member = member,
			      .list = list,
			      .now = msg_now_ms(),
			      .priority = MSG_PRIO_REPLY},
			  t_on_conf, t, err, sizeof(err)) == 0,
	    "confirm: %s", err);
	ck_assert(!t->done);
}

static void
t_confirm_wait(struct t_conf *t)
{
	ckpg_run_until(t_base, &t->done, "confirm");
	ck_assert_msg(t->d.ok, "confirm: %s", t->error);
}

START_TEST(test_confirm_two_nodes)
{
	struct store *st[2];
	struct t_conf ta, tb;
	int64_t m, l, m2;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_open("links_confirm", st);
	l = t_int("INSERT INTO lists (name, welcome_email_subject,"
		  " welcome_email, double_optin, created_at, updated_at)"
		  " VALUES ('news', '', 'Glad you are here.', 1, 1, 1)"
		  " RETURNING id");
	m = t_int("INSERT INTO members (email, created_at, updated_at)"
		  " VALUES ('eve@example.org', 1, 1) RETURNING id");
	t_sql("INSERT INTO subscriptions (member_id, list_id, channel, status,"
	      " source, created_at, updated_at) SELECT id, (SELECT id FROM"
	      " lists), 'email', 'pending', 'api', 1, 1 FROM members");
	t_sql("INSERT INTO email_optout (member_id, opted_out_at, source)"
	      " SELECT id, 1, 'web' FROM members");

	/* one click served by both nodes in the same turn */
	t_confirm_send(st[0], m, l, &ta);
	t_confirm_send(st[1], m, l, &tb);
	t_confirm_wait(&ta);
	t_confirm_wait(&tb);
	ck_assert_int_eq(ta.d.result, STORE_CONFIRM_OK);
	ck_assert_int_eq(tb.d.result, STORE_CONFIRM_OK);
	ck_assert_msg(ta.d.activated != tb.d.activated,
	    "exactly one activated: %d %d", ta.d.activated, tb.d.activated);
	ck_assert(ta.d.activated ? ta.d.opted_back_in : tb.d.opted_back_in);
	ck_assert_int_gt(ta.d.activated ? ta.d.welcome : tb.d.welcome, 0);
	ck_assert_str_eq(t_sql("SELECT status || ' ' || source FROM"
			       " subscriptions"),
	    "active web");
	ck_assert_str_eq(t_sql("SELECT string_agg(action || ' ' || source ||"
			       " ' ' || coalesce(list_id::text, '-') || ' ' ||"
			       " detail, ',' ORDER BY id) FROM consent_events"),
	    "confirm web 1 confirmation link,opt_in web - confirmation link");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM email_optout"), "0");
	/* the welcome: its subject the list's name when it has none */
	ck_assert_str_eq(t_sql("SELECT string_agg(to_addr || ' ' || subject ||"
			       " ' ' || m.status || ' ' || e.status, ',') FROM"
			       " messages m JOIN message_events e ON"
			       " e.message_id = m.id"),
	    "eve@example.org news queued queued");

	/* a third click: nothing more */
	t_confirm_send(st[1], m, l, &ta);
	t_confirm_wait(&ta);
	ck_assert_int_eq(ta.d.result, STORE_CONFIRM_OK);
	ck_assert(!ta.d.activated);
	ck_assert_int_eq(ta.d.welcome, 0);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM consent_events"), "2");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM messages"), "1");

	/* left since the link was sent; no such subscription */
	m2 = t_int("INSERT INTO members (email, created_at, updated_at)"
		   " VALUES ('fay@example.org', 1, 1) RETURNING id");
	t_sql("INSERT INTO subscriptions (member_id, list_id, channel, status,"
	      " source, created_at, updated_at) SELECT id, (SELECT id FROM"
	      " lists), 'email', 'left', 'api', 1, 1 FROM members WHERE"
	      " email = 'fay@example.org'");
	t_confirm_send(st[0], m2, l, &ta);
	t_confirm_wait(&ta);
	ck_assert_int_eq(ta.d.result, STORE_CONFIRM_LEFT);
	t_confirm_send(st[0], m2 + 100, l, &ta);
	t_confirm_wait(&ta);
	ck_assert_int_eq(ta.d.result, STORE_CONFIRM_UNKNOWN);
	ck_assert(!ta.d.activated);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM consent_events"), "2");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM messages"), "1");
	t_close(st);
}
END_TEST

struct t_sub {
	bool done;
	struct store_confirm_sub_done d;
	char error[256];
};

static void
t_on_sub(void *arg, const struct store_confirm_sub_done *d)
{
	struct t_sub *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	if (d->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", d->error);
	t->d.error = NULL;
}

static void
t_sub_send(struct store *st, int64_t member, int64_t list, struct t_sub *t)
{
	struct queue_new q = {.channel = CHANNEL_EMAIL,
	    .to = "gil@example.org",
	    .subject = "Please confirm: news",
	    .body = "open the link",
	    .html = "<p>open the link</p>",
	    .priority = MSG_PRIO_REPLY,
	    .member_id = member,
	    .optout_exempt = true};
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(store_confirm_subscribe_durable(st,
			  &(struct store_confirm_sub){.member = member,
			      .list = list,
			      .source = "signup form",
			      .now = msg_now_ms(),
			      .mail = &q},
			  t_on_sub, t, err, sizeof(err)) == 0,
	    "subscribe: %s", err);
	ck_assert(!t->done);
}

static void
t_sub_wait(struct t_sub *t)
{
	ckpg_run_until(t_base, &t->done, "subscribe");
	ck_assert_msg(t->d.ok, "subscribe: %s", t->error);
}

struct t_name {
	bool done;
	int rc;
	char name[64];
};

static void
t_on_name(void *arg, int rc, const char *name, const char *error)
{
	struct t_name *t = arg;

	(void)error;
	t->done = true;
	t->rc = rc;
	snprintf(t->name, sizeof(t->name), "%s", name != NULL ? name : "-");
}

START_TEST(test_confirm_subscribe_two_nodes)
{
	struct store *st[2];
	struct t_sub ta, tb;
	struct t_name tn = {0};
	char err[256];
	int64_t m, l;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_open("links_sub", st);
	l = t_int("INSERT INTO lists (name, double_optin, created_at,"
		  " updated_at) VALUES ('news', 1, 1, 1) RETURNING id");
	m = t_int("INSERT INTO members (email, created_at, updated_at)"
		  " VALUES ('gil@example.org', 1, 1) RETURNING id");
	ck_assert(store_list_name_async(st[1], l, t_on_name, &tn, err,
		      sizeof(err)) == 0);
	ckpg_run_until(t_base, &tn.done, "list name");
	ck_assert_int_eq(tn.rc, 0);
	ck_assert_str_eq(tn.name, "news");

	/* both nodes in the same turn: one new, one already, one email */
	t_sub_send(st[0], m, l, &ta);
	t_sub_send(st[1], m, l, &tb);
	t_sub_wait(&ta);
	t_sub_wait(&tb);
	ck_assert_msg((ta.d.change == SUB_CHANGE_NEW) !=
		(tb.d.change == SUB_CHANGE_NEW),
	    "exactly one new: %d %d", ta.d.change, tb.d.change);
	ck_assert_int_eq(ta.d.status, SUB_PENDING);
	ck_assert_int_eq(tb.d.status, SUB_PENDING);
	ck_assert_int_gt(ta.d.msg_id + tb.d.msg_id, 0);
	ck_assert_msg(ta.d.msg_id == 0 || tb.d.msg_id == 0, "one email");
	ck_assert_str_eq(t_sql("SELECT status || ' ' || source FROM"
			       " subscriptions"),
	    "pending api");
	ck_assert_str_eq(t_sql("SELECT string_agg(action || ' ' || source ||"
			       " ' ' || detail, ',') FROM consent_events"),
	    "opt_in api signup form");
	ck_assert_str_eq(t_sql("SELECT string_agg(subject || ' ' ||"
			       " optout_exempt || ' ' || html, ',')"
			       " FROM messages"),
	    "Please confirm: news 1 <p>open the link</p>");

	/* left, then asked again: rejoined, a second email */
	t_sql("UPDATE subscriptions SET status = 'left'");
	t_sub_send(st[1], m, l, &ta);
	t_sub_wait(&ta);
	ck_assert_int_eq(ta.d.change, SUB_CHANGE_REJOINED);
	ck_assert_int_gt(ta.d.msg_id, 0);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM messages"), "2");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM consent_events"), "2");
	/* active: left alone */
	t_sql("UPDATE subscriptions SET status = 'active'");
	t_sub_send(st[0], m, l, &ta);
	t_sub_wait(&ta);
	ck_assert_int_eq(ta.d.change, SUB_CHANGE_ALREADY);
	ck_assert_int_eq(ta.d.status, SUB_ACTIVE);
	ck_assert_int_eq(ta.d.msg_id, 0);
	ck_assert_str_eq(t_sql("SELECT status FROM subscriptions"), "active");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM messages"), "2");
	t_close(st);
}
END_TEST

Suite *
links_pg_suite(void)
{
	Suite *s = suite_create("links_pg");
	TCase *tc = tcase_create("pg");

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_recipient);
	tcase_add_test(tc, test_optout_email_any_node);
	tcase_add_test(tc, test_optout_race_two_nodes);
	tcase_add_test(tc, test_optout_sms);
	tcase_add_test(tc, test_confirm_two_nodes);
	tcase_add_test(tc, test_confirm_subscribe_two_nodes);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
