/*
 * check_store_alerts.c - unit tests of queue/store_alerts.c: create with an
 * idempotency key, update and delete of drafts, state transitions and what
 * they fix (audience bound, start and finish times), the audience walk
 * (lists, channels, opt-outs, bouncing, unconfirmed, tags, fields, ZIP
 * prefix, follow-ups, bounded ranges, resuming at a cursor), the reach
 * counts and the per-channel message counts (read from an index only).
 *
 * Every test opens a fresh store in its own directory, as check_members.c
 * does; members, lists and subscriptions are written with plain SQL so the
 * tests state exactly the rows they mean.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <sqlite3.h>

#include "check_suites.h"
#include "check_util.h"
#include "store-internal.h"
#include "store_alerts.h"

#define A_T0 INT64_C(1795749274123)

static char a_dir[64];
static struct store *a_st;
static char a_err[512];

static void
a_setup(void)
{
	char path[128];

	snprintf(a_dir, sizeof(a_dir), "/tmp/check_alerts.XXXXXX");
	if (mkdtemp(a_dir) == NULL)
		ck_abort_msg("mkdtemp %s failed", a_dir);
	snprintf(path, sizeof(path), "%s/outreachd.db", a_dir);
	a_st = store_open(path, a_err, sizeof(a_err));
	ck_assert_msg(a_st != NULL, "store_open: %s", a_err);
}

static void
a_teardown(void)
{
	store_close(a_st);
	a_st = NULL;
	cku_rmtree(a_dir);
}

static void
a_exec(const char *sql)
{
	ck_assert_msg(sqlite3_exec(store_db(a_st), sql, NULL, NULL, NULL) ==
		SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(store_db(a_st)));
}

/*
 * Two lists (1 "darfur", 2 "climate", the second with a time zone) and
 * these members (id: who they are):
 *  1: phone+email, both active on list 1, tags [vol, nyc], zip 02139
 *  2: phone only, active sms on list 1, opted out of SMS
 *  3: email only, active email on list 1, bouncing
 *  4: phone, sms pending (double opt-in) on list 1
 *  5: phone+email, active sms on list 2 only, tags [vol], team = "blue"
 *  6: email, active email on list 1, opted out of email
 *  7: not subscribed to anything
 *  8: phone, active sms on list 1, tags [vol], zip 02140, team = "red"
 */
static void
a_seed(void)
{
	a_exec("INSERT INTO lists (id, name, created_at, updated_at) VALUES"
	       " (1, 'darfur', 0, 0)");
	a_exec("INSERT INTO lists (id, name, time_zone, created_at, updated_at)"
	       " VALUES (2, 'climate', 'America/Chicago', 0, 0)");
	a_exec("INSERT INTO members (id, phone, email, first_name, zip, tags,"
	       " attributes, bouncing, created_at, updated_at) VALUES"
	       " (1, '+12025550101', 'a@example.org', 'Ann', '02139',"
	       "  '[\"vol\",\"nyc\"]', '{}', 0, 0, 0),"
	       " (2, '+12025550102', NULL, 'Bo', NULL, '[]', '{}', 0, 0, 0),"
	       " (3, NULL, 'c@example.org', NULL, NULL, '[]', '{}', 1, 0, 0),"
	       " (4, '+12025550104', NULL, NULL, NULL, '[]', '{}', 0, 0, 0),"
	       " (5, '+12025550105', 'e@example.org', 'Eve', NULL, '[\"vol\"]',"
	       "  '{\"team\":\"blue\"}', 0, 0, 0),"
	       " (6, NULL, 'f@example.org', NULL, NULL, '[]', '{}', 0, 0, 0),"
	       " (7, '+12025550107', NULL, NULL, NULL, '[]', '{}', 0, 0, 0),"
	       " (8, '+12025550108', NULL, 'Hal', '02140', '[\"vol\"]',"
	       "  '{\"team\":\"red\"}', 0, 0, 0)");
	a_exec("INSERT INTO subscriptions (member_id, list_id, channel, status,"
	       " source, created_at, updated_at) VALUES"
	       " (1, 1, 'sms', 'active', 'api', 0, 0),"
	       " (1, 1, 'email', 'active', 'api', 0, 0),"
	       " (2, 1, 'sms', 'active', 'api', 0, 0),"
	       " (3, 1, 'email', 'active', 'api', 0, 0),"
	       " (4, 1, 'sms', 'pending', 'keyword', 0, 0),"
	       " (5, 2, 'sms', 'active', 'api', 0, 0),"
	       " (6, 1, 'email', 'active', 'api', 0, 0),"
	       " (8, 1, 'sms', 'active', 'api', 0, 0)");
	a_exec("INSERT INTO sms_optout VALUES (2, 0, 'keyword')");
	a_exec("INSERT INTO email_optout VALUES (6, 0, 'web')");
}

/* Collects the walked members as "id:s|e|se" into a buffer. */
struct a_seen {
	char text[512];
	const char *tz[16];
};

static int
a_collect(void *arg, const struct alert_member *m, char *err, size_t errlen)
{
	struct a_seen *seen = arg;
	size_t len = strlen(seen->text);

	(void)err;
	(void)errlen;
	snprintf(seen->text + len, sizeof(seen->text) - len, "%s%lld:%s%s",
	    len ? " " : "", (long long)m->id, m->phone ? "s" : "",
	    m->email ? "e" : "");
	if (m->id < 16)
		seen->tz[m->id] = m->list_time_zone != NULL ? "tz" : NULL;
	return 0;
}

static const char *
a_walk(const char *audience, bool sms, bool email)
{
	static struct a_seen seen;
	struct alert_walk w = {.audience = audience,
	    .sms = sms,
	    .email = email,
	    .limit = 100};
	const struct alert_visitor v = {a_collect, &seen};
	struct alert_cursor cur;

	memset(&seen, 0, sizeof(seen));
	ck_assert_msg(
	    store_alert_walk(a_st, &w, &v, &cur, a_err, sizeof(a_err)) >= 0,
	    "walk: %s", a_err);
	ck_assert(cur.end);
	return seen.text;
}

START_TEST(test_walk_channels_and_exclusions)
{
	a_seed();
	/* 2 opted out of SMS, 3 bouncing, 4 unconfirmed, 6 opted out of
	 * email, 7 not subscribed, 5 on the other list. */
	ck_assert_str_eq(a_walk("{\"lists\":[1]}", true, true), "1:se 8:s");
	ck_assert_str_eq(a_walk("{\"lists\":[1]}", true, false), "1:s 8:s");
	ck_assert_str_eq(a_walk("{\"lists\":[1]}", false, true), "1:e");
	ck_assert_str_eq(a_walk("{\"lists\":[1,2]}", true, true),
	    "1:se 5:s 8:s");
	ck_assert_str_eq(a_walk("{\"lists\":[]}", true, true), "");
}
END_TEST

START_TEST(test_walk_filters)
{
	a_seed();
	ck_assert_str_eq(
	    a_walk("{\"lists\":[1,2],\"tags\":[\"vol\"]}", true, true),
	    "1:se 5:s 8:s");
	ck_assert_str_eq(
	    a_walk("{\"lists\":[1,2],\"tags\":[\"vol\",\"nyc\"]}", true, true),
	    "1:se");
	ck_assert_str_eq(
	    a_walk("{\"lists\":[1,2],\"fields\":{\"team\":\"red\"}}", true,
		true),
	    "8:s");
	ck_assert_str_eq(
	    a_walk("{\"lists\":[1,2],\"zip_prefix\":\"0213\"}", true, true),
	    "1:se");
	ck_assert_str_eq(
	    a_walk("{\"lists\":[1,2],\"zip_prefix\":\"021\"}", true, true),
	    "1:se 8:s");
}
END_TEST

START_TEST(test_walk_follow_up)
{
	a_seed();
	/* Alert 9 reached 1 (failed), 5 (delivered, then 5 replied) and
	 * 8 (delivered, no reply). */
	a_exec(
	    "INSERT INTO messages (direction, channel, member_id, to_addr,"
	    " body, status, next_attempt_at, alert_id, created_at,"
	    " updated_at) VALUES"
	    " ('out', 'sms', 1, '+12025550101', 'x', 'failed', 0, 9, 10, 10),"
	    " ('out', 'sms', 5, '+12025550105', 'x', 'delivered', 0, 9, 10,"
	    "  10),"
	    " ('out', 'sms', 8, '+12025550108', 'x', 'delivered', 0, 9, 10,"
	    "  10),"
	    " ('in', 'sms', 5, '+1000', 'ok', 'received', 0, NULL, 20, 20)");
	ck_assert_str_eq(a_walk("{\"lists\":[1,2],\"follow_up\":{\"alert\":9,"
				"\"who\":\"missed\"}}",
			     true, true),
	    "1:se");
	ck_assert_str_eq(a_walk("{\"lists\":[1,2],\"follow_up\":{\"alert\":9,"
				"\"who\":\"no_reply\"}}",
			     true, true),
	    "8:s");
}
END_TEST

START_TEST(test_walk_bounded_and_resumed)
{
	struct a_seen seen;
	struct alert_walk w = {.audience = "{\"lists\":[1,2]}",
	    .sms = true,
	    .email = true,
	    .max_id = 8,
	    .limit = 2,
	    .scan = 0};
	const struct alert_visitor v = {a_collect, &seen};
	struct alert_cursor cur;
	ssize_t n;

	a_seed();
	memset(&seen, 0, sizeof(seen));
	n = store_alert_walk(a_st, &w, &v, &cur, a_err, sizeof(a_err));
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(seen.text, "1:se 5:s");
	ck_assert_int_eq(cur.next, 5);
	ck_assert(!cur.end);
	ck_assert_ptr_null(seen.tz[1]);
	ck_assert_ptr_nonnull(seen.tz[5]); /* list 2's time zone */

	/* A scan bound stops at id 7 with nobody found past 5... */
	memset(&seen, 0, sizeof(seen));
	w.after = cur.next;
	w.scan = 2;
	n = store_alert_walk(a_st, &w, &v, &cur, a_err, sizeof(a_err));
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(cur.next, 7);
	ck_assert(!cur.end);
	/* ... and the next range finds 8 and ends at max_id. */
	w.after = cur.next;
	n = store_alert_walk(a_st, &w, &v, &cur, a_err, sizeof(a_err));
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(seen.text, "8:s");
	ck_assert_int_eq(cur.next, 8);
	ck_assert(cur.end);
	/* Past max_id: nothing, and still the end. */
	w.after = 8;
	n = store_alert_walk(a_st, &w, &v, &cur, a_err, sizeof(a_err));
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(cur.next, 8);
	ck_assert(cur.end);
}
END_TEST

START_TEST(test_reach)
{
	struct alert_walk w = {.audience = "{\"lists\":[1]}",
	    .sms = true,
	    .email = true};
	struct alert_reach r;

	a_seed();
	ck_assert_msg(store_alert_reach(a_st, &w, &r, a_err, sizeof(a_err)) ==
		0,
	    "%s", a_err);
	/* 1, 2, 3, 4, 6, 8 are subscribed to list 1 in some status. */
	ck_assert_int_eq(r.matched, 6);
	ck_assert_int_eq(r.sms, 2);
	ck_assert_int_eq(r.email, 1);
	ck_assert_int_eq(r.both, 1);
	ck_assert_int_eq(r.sms_opted_out, 1);
	ck_assert_int_eq(r.email_opted_out, 1);
	ck_assert_int_eq(r.email_bouncing, 1);
	ck_assert_int_eq(r.unconfirmed, 1);
}
END_TEST

static struct alert_def
a_def(const char *key)
{
	struct alert_def d = {.name = "Call your senator",
	    .audience = "{\"lists\":[1]}",
	    .sms = true,
	    .email = false,
	    .sms_body = "Hi {{first_name|friend}}",
	    .validity_s = 86400,
	    .create_key = key};

	return d;
}

START_TEST(test_create_key_update_delete)
{
	struct alert_def d = a_def("k1");
	struct alert_row r;
	int64_t id, id2;
	bool dup, found;
	json_t *j;

	id = store_alert_create(a_st, &d, A_T0, &dup, a_err, sizeof(a_err));
	ck_assert_int_gt(id, 0);
	ck_assert(!dup);
	id2 = store_alert_create(a_st, &d, A_T0, &dup, a_err, sizeof(a_err));
	ck_assert(dup);
	ck_assert_int_eq(id2, id);

	d.name = "Call them today";
	d.email = true;
	ck_assert_int_eq(
	    store_alert_update(a_st, id, &d, A_T0 + 1, a_err, sizeof(a_err)),
	    1);
	ck_assert_int_eq(
	    store_alert_load(a_st, id, &r, &found, a_err, sizeof(a_err)), 0);
	ck_assert(found);
	ck_assert_str_eq(r.name, "Call them today");
	ck_assert(r.sms && r.email);
	ck_assert_int_eq(r.status, ALERT_DRAFT);
	store_alert_row_free(&r);

	j = store_alert_json(a_st, id, a_err, sizeof(a_err));
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")),
	    "draft");
	ck_assert_int_eq(json_array_size(json_object_get(j, "channels")), 2);
	ck_assert_int_eq(json_array_size(json_object_get(
			     json_object_get(j, "audience"), "lists")),
	    1);
	json_decref(j);

	ck_assert_int_eq(
	    store_alert_delete(a_st, id, &found, a_err, sizeof(a_err)), 0);
	ck_assert(found);
	ck_assert_int_eq(
	    store_alert_load(a_st, id, &r, &found, a_err, sizeof(a_err)), 0);
	ck_assert(!found);
}
END_TEST

/* store_alert_transition() of alert id: 1 moved, 0 not, -1 error. */
static int
a_move(int64_t id, unsigned from, enum alert_status to, const char *reason,
    int64_t now)
{
	const struct alert_transition t = {from, to, reason, now};

	return store_alert_transition(a_st, id, &t, a_err, sizeof(a_err));
}

START_TEST(test_transitions)
{
	struct alert_def d = a_def(NULL);
	struct alert_row r;
	int64_t id, other;
	bool dup, found;

	a_seed();
	id = store_alert_create(a_st, &d, A_T0, &dup, a_err, sizeof(a_err));
	ck_assert_int_gt(id, 0);
	/* Not from the wrong state. */
	ck_assert_int_eq(
	    a_move(id, 1u << ALERT_PAUSED, ALERT_SENDING, NULL, A_T0), 0);
	ck_assert_int_eq(a_move(id, 1u << ALERT_DRAFT | 1u << ALERT_SCHEDULED,
			     ALERT_SENDING, NULL, A_T0 + 5),
	    1);
	/* A member who joins later is outside the audience bound. */
	a_exec("INSERT INTO members (id, phone, created_at, updated_at)"
	       " VALUES (20, '+12025550120', 0, 0)");
	ck_assert_int_eq(a_move(id, 1u << ALERT_SENDING, ALERT_PAUSED,
			     "opt-out rate 6% > 5%", A_T0 + 6),
	    1);
	ck_assert_int_eq(
	    a_move(id, 1u << ALERT_PAUSED, ALERT_SENDING, "ignored", A_T0 + 7),
	    1);
	ck_assert_int_eq(
	    store_alert_load(a_st, id, &r, &found, a_err, sizeof(a_err)), 0);
	ck_assert_int_eq(r.status, ALERT_SENDING);
	ck_assert_int_eq(r.audience_max_id, 8);
	ck_assert_int_eq(r.started_at, A_T0 + 5);
	ck_assert_ptr_null(r.pause_reason);
	store_alert_row_free(&r);

	ck_assert_int_eq(a_move(id, 1u << ALERT_SENDING, ALERT_PAUSED,
			     "opt-out rate 6% > 5%", A_T0 + 8),
	    1);
	ck_assert_int_eq(
	    store_alert_load(a_st, id, &r, &found, a_err, sizeof(a_err)), 0);
	ck_assert_str_eq(r.pause_reason, "opt-out rate 6% > 5%");
	store_alert_row_free(&r);

	ck_assert_int_eq(
	    a_move(id, 1u << ALERT_PAUSED, ALERT_CANCELLED, NULL, A_T0 + 9), 1);
	ck_assert_int_eq(
	    store_alert_load(a_st, id, &r, &found, a_err, sizeof(a_err)), 0);
	ck_assert_int_eq(r.finished_at, A_T0 + 9);
	store_alert_row_free(&r);

	/* The send key belongs to one alert; looking does not take it. */
	other = store_alert_create(a_st, &d, A_T0, &dup, a_err, sizeof(a_err));
	ck_assert_int_gt(other, id);
	ck_assert_int_eq(
	    store_alert_send_key(a_st, id, "s1", false, a_err, sizeof(a_err)),
	    0);
	ck_assert_int_eq(
	    store_alert_send_key(a_st, other, "s1", true, a_err, sizeof(a_err)),
	    0);
	ck_assert_int_eq(
	    store_alert_send_key(a_st, id, "s1", true, a_err, sizeof(a_err)),
	    other);
}
END_TEST

START_TEST(test_counts_and_backlog)
{
	json_t *c;
	struct alert_backlog b = {.limit = 0};

	a_exec("INSERT INTO messages (direction, channel, to_addr, body,"
	       " status, next_attempt_at, alert_id, created_at, updated_at)"
	       " VALUES ('out', 'sms', '+1', 'x', 'queued', 0, 3, 0, 0),"
	       " ('out', 'sms', '+1', 'x', 'queued', 500, 3, 0, 0),"
	       " ('out', 'sms', '+1', 'x', 'sent', 0, 3, 0, 0),"
	       " ('out', 'sms', '+1', 'x', 'sent', 0, 3, 0, 0),"
	       " ('out', 'email', 'a@b.org', 'x', 'sending', 0, 3, 0, 0),"
	       " ('out', 'email', 'a@b.org', 'x', 'sending', 0, 4, 0, 0)");
	c = store_alert_counts(a_st, 3, 100, a_err, sizeof(a_err));
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(c, "sms"), "sent")),
	    2);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(c, "sms"), "pending")),
	    1);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(c, "sms"), "deferred")),
	    1);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(c, "email"), "pending")),
	    1);
	json_decref(c);
	ck_assert_int_eq(
	    store_alert_backlog(a_st, 3, 100, &b, a_err, sizeof(a_err)), 0);
	ck_assert_int_eq(b.due, 2);	/* queued and due, and in flight */
	ck_assert_int_eq(b.waiting, 1); /* queued for 500 */

	/* Pause holds the queued ones; resume gives them back their time. */
	a_exec(
	    "UPDATE messages SET not_before = 500 WHERE next_attempt_at = 500");
	ck_assert_int_eq(
	    store_alert_hold(a_st, 3, true, 100, a_err, sizeof(a_err)), 0);
	ck_assert_int_eq(
	    store_alert_backlog(a_st, 3, 100, &b, a_err, sizeof(a_err)), 0);
	ck_assert_int_eq(b.due, 1);
	ck_assert_int_eq(b.waiting, 2);
	/* A limit stops each count: the fan-out asks for its bound, a done
	 * fan-out only whether any is left. */
	b.limit = 1;
	ck_assert_int_eq(
	    store_alert_backlog(a_st, 3, 100, &b, a_err, sizeof(a_err)), 0);
	ck_assert_int_eq(b.due, 1);
	ck_assert_int_eq(b.waiting, 1);
	b.limit = 0;
	ck_assert_int_eq(
	    store_alert_hold(a_st, 3, false, 200, a_err, sizeof(a_err)), 0);
	ck_assert_int_eq(
	    store_alert_backlog(a_st, 3, 200, &b, a_err, sizeof(a_err)), 0);
	ck_assert_int_eq(b.due, 2);
	ck_assert_int_eq(b.waiting, 1);
}
END_TEST

/*
 * The statement of store_alert_counts(), found among the store's cached
 * statements by its text (it stays private to store_alerts.c).
 */
static const char *
a_counts_sql(void)
{
	sqlite3_stmt *s = NULL;
	const char *sql;

	while ((s = sqlite3_next_stmt(store_db(a_st), s)) != NULL)
		if ((sql = sqlite3_sql(s)) != NULL &&
		    strstr(sql, "'deferred'") != NULL)
			return sql;
	ck_abort_msg("store_alert_counts' statement is not cached");
	return NULL;
}

/*
 * An alert's counts read messages_alert only, never a message's row: at a
 * million held messages a row read per message blocked the event loop
 * for seconds (009_alert_counts.sql). Every step of the plan that touches
 * messages must be a covering index search.
 */
START_TEST(test_counts_index_only)
{
	char *explain;
	sqlite3_stmt *s;
	json_t *c;
	int steps = 0;

	a_exec("INSERT INTO messages (direction, channel, to_addr, body,"
	       " status, next_attempt_at, alert_id, created_at, updated_at)"
	       " VALUES ('out', 'sms', '+1', 'x', 'queued', 500, 3, 0, 0),"
	       " ('out', 'email', 'a@b.org', 'x', 'queued', 500, 3, 0, 0)");
	c = store_alert_counts(a_st, 3, 100, a_err, sizeof(a_err));
	ck_assert_ptr_nonnull(c);
	json_decref(c);
	explain = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", a_counts_sql());
	ck_assert_int_eq(
	    sqlite3_prepare_v2(store_db(a_st), explain, -1, &s, NULL),
	    SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(s, 3);

		if (d == NULL || strstr(d, "messages") == NULL)
			continue;
		steps++;
		ck_assert_msg(
		    strstr(d, "USING COVERING INDEX messages_alert ") != NULL,
		    "reads rows: %s", d);
	}
	sqlite3_finalize(s);
	sqlite3_free(explain);
	/* the counts by state and channel, the held sms, the held email */
	ck_assert_int_eq(steps, 3);
}
END_TEST

Suite *
store_alerts_suite(void)
{
	Suite *s = suite_create("store_alerts");
	TCase *tc = tcase_create("store_alerts");

	tcase_add_checked_fixture(tc, a_setup, a_teardown);
	tcase_add_test(tc, test_walk_channels_and_exclusions);
	tcase_add_test(tc, test_walk_filters);
	tcase_add_test(tc, test_walk_follow_up);
	tcase_add_test(tc, test_walk_bounded_and_resumed);
	tcase_add_test(tc, test_reach);
	tcase_add_test(tc, test_create_key_update_delete);
	tcase_add_test(tc, test_transitions);
	tcase_add_test(tc, test_counts_and_backlog);
	tcase_add_test(tc, test_counts_index_only);
	suite_add_tcase(s, tc);
	return s;
}
