/*
 * check_conversations.c - unit tests of queue/store_conversations.c and
 * the conversation side of store_inbound_link(): the search text turned
 * into FTS5 strings, attribution to the last alert within the window
 * (else the last message out), reopening, listings with every filter and
 * the cursor, the stale flag, threads merging messages and notes, state
 * changes, reply targets, saved replies, and queue_observe().
 *
 * Every test opens a fresh store in its own directory; members, lists,
 * messages and staff are written with plain SQL so the tests state
 * exactly the rows they mean.
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
#include "queue.h"
#include "store-internal.h"
#include "store_conversations.h"
#include "store_members.h"

#define C_T0	 INT64_C(1795749274000)
#define C_HOUR	 INT64_C(3600000)
#define C_WINDOW (72 * C_HOUR)
#define C_STALE	 (24 * C_HOUR)

static char c_dir[64];
static struct store *c_st;
static char c_err[512];

static void
c_setup(void)
{
	char path[128];

	snprintf(c_dir, sizeof(c_dir), "/tmp/check_conv.XXXXXX");
	if (mkdtemp(c_dir) == NULL)
		ck_abort_msg("mkdtemp %s failed", c_dir);
	snprintf(path, sizeof(path), "%s/outreachd.db", c_dir);
	c_st = store_open(path, c_err, sizeof(c_err));
	ck_assert_msg(c_st != NULL, "store_open: %s", c_err);
}

static void
c_teardown(void)
{
	store_close(c_st);
	c_st = NULL;
	cku_rmtree(c_dir);
}

static void
c_exec(const char *sql)
{
	ck_assert_msg(sqlite3_exec(store_db(c_st), sql, NULL, NULL, NULL) ==
		SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(store_db(c_st)));
}

static int64_t
c_int(const char *sql)
{
	sqlite3_stmt *stmt;
	int64_t v = -1;

	ck_assert_int_eq(
	    sqlite3_prepare_v2(store_db(c_st), sql, -1, &stmt, NULL),
	    SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_type(stmt, 0) == SQLITE_NULL
		    ? 0
		    : sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

/*
 * Members 1 (Ann, +15550000001, active on list 1 "darfur" whose sender
 * is "tw"), 2 (+15550000002, opted out of SMS), 3 (email only); staff 1
 * "Organizer One".
 */
static void
c_seed(void)
{
	c_exec("INSERT INTO lists (id, name, sender, created_at, updated_at)"
	       " VALUES (1, 'darfur', 'tw', 0, 0)");
	c_exec("INSERT INTO members (id, phone, email, first_name, created_at,"
	       " updated_at) VALUES (1, '+15550000001', NULL, 'Ann', 0, 0),"
	       " (2, '+15550000002', NULL, NULL, 0, 0),"
	       " (3, NULL, 'c@example.org', NULL, 0, 0)");
	c_exec("INSERT INTO subscriptions VALUES (1, 1, 'sms', 'active',"
	       " 'api', 0, 0)");
	c_exec("INSERT INTO sms_optout VALUES (2, 0, 'keyword')");
	c_exec("INSERT INTO staff (id, name, role, created_at) VALUES"
	       " (1, 'Organizer One', 'organizer', 0)");
}

/* An outbound message to member 'member' at 'at'; its id. */
static int64_t
c_out(int64_t member, int64_t alert, const char *status, int64_t at)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	    "INSERT INTO messages (direction, channel, member_id, sender,"
	    " to_addr, body, status, next_attempt_at, alert_id, created_at,"
	    " updated_at) VALUES ('out', 'sms', %lld, 'console', '+1555',"
	    " 'an alert', '%s', 0, %s, %lld, %lld)",
	    (long long)member, status,
	    alert != 0 ? (alert == 1 ? "1" : "2") : "NULL", (long long)at,
	    (long long)at);
	c_exec(sql);
	return sqlite3_last_insert_rowid(store_db(c_st));
}

/* Member 'member' texts 'body' through 'sender' at 'at': the
 * conversation's id. */
static int64_t
c_text(int64_t member, const char *sender, const char *body, int64_t at)
{
	char sql[512];
	int64_t msg, conv;

	snprintf(sql, sizeof(sql),
	    "INSERT INTO messages (direction, channel, sender, to_addr,"
	    " from_addr, body, status, next_attempt_at, created_at,"
	    " updated_at) VALUES ('in', 'sms', '%s', '+1999', '+1555', '%s',"
	    " 'received', 0, %lld, %lld)",
	    sender, body, (long long)at, (long long)at);
	c_exec(sql);
	msg = sqlite3_last_insert_rowid(store_db(c_st));
	conv = store_inbound_link(c_st,
	    &(struct inbound_link_req){.msg = msg,
		.member = member,
		.conversation = true,
		.now = at,
		.sender = sender,
		.window_ms = C_WINDOW},
	    c_err, sizeof(c_err));
	ck_assert_msg(conv > 0, "store_inbound_link: %s", c_err);
	return conv;
}

static void
c_flush(void)
{
	ck_assert_msg(store_flush(c_st, c_err, sizeof(c_err)) == 0, "%s",
	    c_err);
}

/* The ids of a listing, "1,2,3", and its next cursor in *next. */
static const char *
c_ids(struct conv_query *q, char *next, size_t nextlen)
{
	static char out[256];
	json_t *o, *c;
	size_t i;

	if (q->limit == 0)
		q->limit = 50;
	o = store_conv_list(c_st, q, c_err, sizeof(c_err));
	ck_assert_msg(o != NULL, "store_conv_list: %s", c_err);
	out[0] = '\0';
	json_array_foreach(json_object_get(o, "conversations"), i, c)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%lld",
		    i > 0 ? "," : "",
		    (long long)json_integer_value(json_object_get(c, "id")));
	if (next != NULL)
		snprintf(next, nextlen, "%s",
		    json_is_string(json_object_get(o, "next"))
			? json_string_value(json_object_get(o, "next"))
			: "");
	json_decref(o);
	return out;
}

START_TEST(test_fts_query)
{
	char out[1024], big[CONV_SEARCH_MAX + 2];

	ck_assert_int_eq(store_conv_fts_query("meeting", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "\"meeting\"*");
	ck_assert_int_eq(store_conv_fts_query("  a  b\tc ", out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "\"a\"* \"b\"* \"c\"*");
	ck_assert_int_eq(
	    store_conv_fts_query("x \"the rally\" y", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "\"x\"* \"the rally\" \"y\"*");
	ck_assert_int_eq(store_conv_fts_query("a\"b AND", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "\"a\"\"b\"* \"AND\"*");
	ck_assert_int_eq(
	    store_conv_fts_query("\"unclosed phrase", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "\"unclosed phrase\"");
	ck_assert_int_eq(store_conv_fts_query("\"", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "\"\"");
	ck_assert_int_eq(store_conv_fts_query("", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "\"\"");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(store_conv_fts_query(big, out, sizeof(out)), -1);
	ck_assert_int_eq(store_conv_fts_query("abcdef", out, 6), -1);
}
END_TEST

START_TEST(test_attribution_and_reopen)
{
	int64_t old_alert, alert, last, conv, conv2;

	c_seed();
	old_alert = c_out(1, 1, "delivered", C_T0 - 100 * C_HOUR);
	alert = c_out(1, 2, "sent", C_T0 - 2 * C_HOUR);
	c_out(1, 1, "failed", C_T0 - C_HOUR); /* never reached them */
	conv = c_text(1, "tw", "I called", C_T0);
	ck_assert_int_eq(c_int("SELECT alert_id FROM conversations"), 2);
	ck_assert_int_eq(c_int("SELECT reply_to FROM conversations"), alert);
	ck_assert_int_eq(c_int("SELECT reply_to FROM messages WHERE"
			       " direction = 'in'"),
	    alert);
	ck_assert_int_eq(c_int("SELECT last_in_at FROM conversations"), C_T0);
	ck_assert_int_eq(c_int("SELECT count(*) FROM messages WHERE"
			       " sender = 'tw' AND direction = 'in'"),
	    1);
	/* beyond the window: no alert, but the last message out */
	last = c_out(1, 0, "sent", C_T0 + 75 * C_HOUR);
	c_exec("UPDATE conversations SET status = 'closed'");
	conv2 = c_text(1, "other", "hello?", C_T0 + 76 * C_HOUR);
	ck_assert_int_eq(conv2, conv); /* reopened, not a new one */
	ck_assert_int_eq(c_int("SELECT count(*) FROM conversations"), 1);
	ck_assert_int_eq(c_int("SELECT status = 'open' AND unread = 2 AND"
			       " sender = 'other' FROM conversations"),
	    1);
	ck_assert_int_eq(c_int("SELECT reply_to FROM messages WHERE"
			       " body = 'hello?'"),
	    last);
	/* the conversation keeps the alert it last answered */
	ck_assert_int_eq(c_int("SELECT alert_id FROM conversations"), 2);
	(void)old_alert;
	/* a member who never got anything: nothing to answer */
	c_text(2, "tw", "who is this", C_T0);
	ck_assert_int_eq(c_int("SELECT reply_to IS NULL AND alert_id IS NULL"
			       " FROM conversations WHERE member_id = 2"),
	    1);
}
END_TEST

START_TEST(test_list_filters_cursor_search)
{
	struct conv_query q = {.clock = {C_T0 + 10, C_STALE}};
	char next[64];
	int64_t a, b, c;

	c_seed();
	c_out(2, 2, "sent", C_T0 - C_HOUR);
	a = c_text(1, "tw", "Is the meeting at the cafe?", C_T0);
	b = c_text(2, "tw", "call me tomorrow", C_T0 + 1);
	c = c_text(3, "tw", "who organizes the rally", C_T0 + 2);
	ck_assert_int_eq(a, 1);
	ck_assert_int_eq(b, 2);
	ck_assert_int_eq(c, 3);
	c_flush(); /* the texts join the search index at the commit */
	ck_assert_str_eq(c_ids(&q, next, sizeof(next)), "3,2,1");
	ck_assert_str_eq(next, "");
	q.limit = 2;
	ck_assert_str_eq(c_ids(&q, next, sizeof(next)), "3,2");
	ck_assert_str_eq(next, "1795749274001.2");
	q.after = next;
	ck_assert_str_eq(c_ids(&q, NULL, 0), "1");
	q.after = "12";
	ck_assert_ptr_null(store_conv_list(c_st, &q, c_err, sizeof(c_err)));
	ck_assert(q.invalid);
	q = (struct conv_query){.clock = {C_T0 + 10, C_STALE}};
	q.list_id = 1;
	ck_assert_str_eq(c_ids(&q, NULL, 0), "1");
	q = (struct conv_query){.clock = {C_T0 + 10, C_STALE}, .alert_id = 2};
	ck_assert_str_eq(c_ids(&q, NULL, 0), "2");
	q = (struct conv_query){.clock = {C_T0 + 10, C_STALE}, .member_id = 3};
	ck_assert_str_eq(c_ids(&q, NULL, 0), "3");
	q = (struct conv_query){.clock = {C_T0 + 10, C_STALE}, .q = "CAF"};
	ck_assert_str_eq(c_ids(&q, NULL, 0), "1");
	q.q = "the";
	ck_assert_str_eq(c_ids(&q, NULL, 0), "3,1");
	q.q = "NEAR(\"the\" ) OR *";
	ck_assert_str_eq(c_ids(&q, NULL, 0), "");
	ck_assert(!q.invalid);
	/* assignment, status, unread */
	ck_assert_int_eq(store_conv_change(c_st, b,
			     &(struct conv_change){.op = CONV_OP_ASSIGN,
				 .staff = 1,
				 .now = C_T0 + 3},
			     c_err, sizeof(c_err)),
	    1);
	ck_assert_int_eq(
	    store_conv_change(c_st, c,
		&(struct conv_change){.op = CONV_OP_CLOSE, .now = C_T0 + 3},
		c_err, sizeof(c_err)),
	    1);
	ck_assert_int_eq(
	    store_conv_change(c_st, a,
		&(struct conv_change){.op = CONV_OP_READ, .now = C_T0 + 3},
		c_err, sizeof(c_err)),
	    1);
	ck_assert_int_eq(
	    store_conv_change(c_st, 99,
		&(struct conv_change){.op = CONV_OP_READ, .now = C_T0 + 3},
		c_err, sizeof(c_err)),
	    0);
	q = (struct conv_query){.clock = {C_T0 + 10, C_STALE},
	    .assigned = CONV_ASSIGNED_STAFF,
	    .staff = 1};
	ck_assert_str_eq(c_ids(&q, NULL, 0), "2");
	q.assigned = CONV_ASSIGNED_NONE;
	ck_assert_str_eq(c_ids(&q, NULL, 0), "3,1");
	q.status = "open";
	ck_assert_str_eq(c_ids(&q, NULL, 0), "1");
	q = (struct conv_query){.clock = {C_T0 + 10, C_STALE}, .unread = true};
	ck_assert_str_eq(c_ids(&q, NULL, 0), "3,2");
	q.status = "closed";
	ck_assert_str_eq(c_ids(&q, NULL, 0), "3");
}
END_TEST

START_TEST(test_stale_flag)
{
	struct conv_clock early = {C_T0 + C_HOUR, C_STALE};
	struct conv_clock late = {C_T0 + 25 * C_HOUR, C_STALE};
	struct conv_query q = {.clock = late, .stale = true};
	int64_t a;
	json_t *o;

	c_seed();
	a = c_text(1, "tw", "anyone?", C_T0);
	o = store_conv_summary(c_st, a, &early, c_err, sizeof(c_err));
	ck_assert(json_is_false(json_object_get(o, "stale")));
	json_decref(o);
	o = store_conv_summary(c_st, a, &late, c_err, sizeof(c_err));
	ck_assert(json_is_true(json_object_get(o, "stale")));
	json_decref(o);
	ck_assert_str_eq(c_ids(&q, NULL, 0), "1");
	/* a staff reply answers it */
	ck_assert_int_eq(store_conv_change(c_st, a,
			     &(struct conv_change){.op = CONV_OP_REPLIED,
				 .now = C_T0 + 2 * C_HOUR},
			     c_err, sizeof(c_err)),
	    1);
	ck_assert_str_eq(c_ids(&q, NULL, 0), "");
	ck_assert_int_eq(c_int("SELECT unread FROM conversations"), 0);
	/* the member writes again, nobody answers for a day */
	c_text(1, "tw", "hello?", C_T0 + 3 * C_HOUR);
	q.clock.now = C_T0 + 28 * C_HOUR;
	ck_assert_str_eq(c_ids(&q, NULL, 0), "1");
	o = store_conv_summary(c_st, 42, &late, c_err, sizeof(c_err));
	ck_assert_ptr_null(o);
	ck_assert_str_eq(c_err, "");
}
END_TEST

START_TEST(test_thread_notes_target)
{
	struct conv_clock clock = {C_T0 + 10, C_STALE};
	struct conv_target t;
	int64_t a, note;
	json_t *o, *items;

	c_seed();
	a = c_text(1, "tw", "first", C_T0);
	note = store_conv_note_add(c_st,
	    &(struct conv_note){.conversation = a,
		.staff = 1,
		.body = "call her",
		.now = C_T0 + 1},
	    c_err, sizeof(c_err));
	ck_assert_int_gt(note, 0);
	ck_assert_int_eq(store_conv_note_add(c_st,
			     &(struct conv_note){.conversation = 77,
				 .body = "x",
				 .now = C_T0},
			     c_err, sizeof(c_err)),
	    0);
	c_exec("INSERT INTO messages (direction, channel, member_id, sender,"
	       " to_addr, body, status, next_attempt_at, conversation_id,"
	       " staff_id, created_at, updated_at) VALUES ('out', 'sms', 1,"
	       " 'tw', '+15550000001', 'reply', 'delivered', 0, 1, 1,"
	       " 1795749274002, 1795749274003)");
	o = store_conv_thread(c_st, a, &clock, c_err, sizeof(c_err));
	ck_assert_msg(o != NULL, "%s", c_err);
	ck_assert_str_eq(json_string_value(json_object_get(o, "sender")), "tw");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(o, "last_message"), "body")),
	    "reply");
	items = json_object_get(o, "items");
	ck_assert_int_eq(json_array_size(items), 3);
	ck_assert_str_eq(json_string_value(
			     json_object_get(json_array_get(items, 0), "body")),
	    "first");
	ck_assert_str_eq(json_string_value(
			     json_object_get(json_array_get(items, 1), "kind")),
	    "note");
	ck_assert_str_eq(
	    json_string_value(json_object_get(
		json_object_get(json_array_get(items, 1), "staff"), "name")),
	    "Organizer One");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(items, 2), "status")),
	    "delivered");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(items, 2), "direction")),
	    "out");
	json_decref(o);
	/* targets: the sender texted, the list's, the opt-out */
	ck_assert_int_eq(store_conv_target(c_st, a, &t, c_err, sizeof(c_err)),
	    1);
	ck_assert_str_eq(t.phone, "+15550000001");
	ck_assert_str_eq(t.sender, "tw");
	ck_assert_str_eq(t.list_sender, "tw");
	ck_assert(!t.sms_opted_out);
	a = c_text(2, "kx", "hi", C_T0);
	ck_assert_int_eq(store_conv_target(c_st, a, &t, c_err, sizeof(c_err)),
	    1);
	ck_assert(t.sms_opted_out);
	ck_assert_str_eq(t.sender, "kx");
	ck_assert_str_eq(t.list_sender, "");
	a = c_text(3, "kx", "by mail", C_T0);
	ck_assert_int_eq(store_conv_target(c_st, a, &t, c_err, sizeof(c_err)),
	    1);
	ck_assert_str_eq(t.phone, "");
	ck_assert_int_eq(store_conv_target(c_st, 99, &t, c_err, sizeof(c_err)),
	    0);
	ck_assert_int_eq(store_conv_staff_exists(c_st, 1, c_err, sizeof(c_err)),
	    1);
	ck_assert_int_eq(store_conv_staff_exists(c_st, 2, c_err, sizeof(c_err)),
	    0);
}
END_TEST

START_TEST(test_saved_replies)
{
	struct saved_reply r = {.name = "thanks", .body = "Thanks!", .now = 1};
	int64_t id, id2;
	json_t *o;
	char *body;

	id = store_saved_reply_create(c_st, &r, c_err, sizeof(c_err));
	ck_assert_int_gt(id, 0);
	r = (struct saved_reply){.name = "thanks", .body = "x", .now = 2};
	ck_assert_int_eq(
	    store_saved_reply_create(c_st, &r, c_err, sizeof(c_err)), -1);
	ck_assert(r.conflict);
	r = (struct saved_reply){.name = "again", .body = "Again", .now = 2};
	id2 = store_saved_reply_create(c_st, &r, c_err, sizeof(c_err));
	ck_assert_int_gt(id2, id);
	r = (struct saved_reply){.name = "thanks", .now = 3};
	ck_assert_int_eq(
	    store_saved_reply_update(c_st, id2, &r, c_err, sizeof(c_err)), -1);
	ck_assert(r.conflict);
	r = (struct saved_reply){.body = "Thank you!", .now = 3};
	ck_assert_int_eq(
	    store_saved_reply_update(c_st, id, &r, c_err, sizeof(c_err)), 1);
	body = store_saved_reply_body(c_st, id, c_err, sizeof(c_err));
	ck_assert_str_eq(body, "Thank you!");
	free(body);
	o = store_saved_replies_json(c_st, c_err, sizeof(c_err));
	ck_assert_int_eq(json_array_size(json_object_get(o, "saved_replies")),
	    2);
	ck_assert_str_eq(
	    json_string_value(json_object_get(
		json_array_get(json_object_get(o, "saved_replies"), 0),
		"name")),
	    "again");
	json_decref(o);
	ck_assert_int_eq(
	    store_saved_reply_delete(c_st, id, c_err, sizeof(c_err)), 1);
	ck_assert_int_eq(
	    store_saved_reply_delete(c_st, id, c_err, sizeof(c_err)), 0);
	ck_assert_ptr_null(
	    store_saved_reply_body(c_st, id, c_err, sizeof(c_err)));
	ck_assert_str_eq(c_err, "");
	r = (struct saved_reply){.body = "x", .now = 4};
	ck_assert_int_eq(
	    store_saved_reply_update(c_st, id, &r, c_err, sizeof(c_err)), 0);
}
END_TEST

/* queue_observe(): what it heard. */
static char c_heard[512];

static void
c_observer(void *arg, const struct queue_change *c)
{
	(void)arg;
	snprintf(c_heard + strlen(c_heard), sizeof(c_heard) - strlen(c_heard),
	    "%lld/%lld:%s ", (long long)c->id, (long long)c->conversation,
	    msg_status_to_text(c->status));
}

START_TEST(test_observer)
{
	struct queue_stored qs;
	struct queue_stored other;
	struct out_msg *claimed[4];
	int64_t conv;
	ssize_t n;

	c_seed();
	conv = c_text(1, "tw", "hi", C_T0);
	c_heard[0] = '\0';
	queue_observe(c_st, c_observer, NULL);
	ck_assert_int_eq(queue_enqueue(c_st,
			     &(struct queue_new){.channel = CHANNEL_SMS,
				 .to = "+15550000001",
				 .sender = "tw",
				 .body = "reply",
				 .priority = MSG_PRIO_REPLY,
				 .member_id = 1,
				 .conversation_id = conv,
				 .staff_id = 1},
			     C_T0, &qs, c_err, sizeof(c_err)),
	    0);
	ck_assert_int_eq(queue_enqueue(c_st,
			     &(struct queue_new){.channel = CHANNEL_SMS,
				 .to = "+15550000001",
				 .sender = "tw",
				 .body = "not in a conversation",
				 .priority = MSG_PRIO_DEFAULT},
			     C_T0, &other, c_err, sizeof(c_err)),
	    0);
	n = queue_claim(c_st,
	    &(struct queue_claim_req){.ch = CHANNEL_SMS,
		.sender = "tw",
		.now = C_T0,
		.lease_ms = 1000,
		.max = 4},
	    claimed, c_err, sizeof(c_err));
	ck_assert_int_eq(n, 2);
	out_msg_free(claimed[0]);
	out_msg_free(claimed[1]);
	ck_assert_int_eq(
	    queue_mark_sent(c_st, qs.id,
		&(struct queue_result){.provider = "tw", .provider_id = "SM1"},
		C_T0, c_err, sizeof(c_err)),
	    0);
	ck_assert_int_eq(
	    queue_mark_sent(c_st, other.id,
		&(struct queue_result){.provider = "tw", .provider_id = "SM2"},
		C_T0, c_err, sizeof(c_err)),
	    0);
	{
		char want[128];

		snprintf(want, sizeof(want),
		    "%lld/%lld:queued %lld/%lld:sending %lld/%lld:sent ",
		    (long long)qs.id, (long long)conv, (long long)qs.id,
		    (long long)conv, (long long)qs.id, (long long)conv);
		ck_assert_str_eq(c_heard, want);
	}
	ck_assert_int_eq(c_int("SELECT staff_id FROM messages WHERE"
			       " body = 'reply'"),
	    1);
	queue_observe(c_st, NULL, NULL);
	c_flush();
}
END_TEST

/*
 * A database of schema 5 with a conversation of two texts and one
 * keyword message migrates: the conversation's last text in and sender
 * are filled from its messages, and the search finds its texts (and only
 * them).
 */
START_TEST(test_migration_of_existing_conversations)
{
	struct conv_query q = {.clock = {C_T0, C_STALE}, .limit = 10};
	const struct store_migration *m;
	char path[128], *err = NULL;
	sqlite3 *db;
	json_t *o;

	store_close(c_st);
	snprintf(path, sizeof(path), "%s/old.db", c_dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	for (m = store_migrations; m->sql != NULL && m->version <= 5; m++)
		ck_assert_msg(sqlite3_exec(db, m->sql, NULL, NULL, &err) ==
			SQLITE_OK,
		    "%s: %s", m->name, err);
	ck_assert_int_eq(
	    sqlite3_exec(db,
		"PRAGMA user_version = 5;"
		"INSERT INTO members (id, phone, created_at,"
		" updated_at) VALUES (1, '+15550000001', 0, 0);"
		"INSERT INTO conversations (id, member_id, status,"
		" unread, last_message_at, created_at) VALUES (1, 1,"
		" 'open', 2, 20, 10);"
		"INSERT INTO messages (direction, channel, member_id,"
		" sender, to_addr, body, status, next_attempt_at,"
		" conversation_id, created_at, updated_at) VALUES"
		" ('in', 'sms', 1, 'old', '+1', 'first question', "
		"'received', 0, 1, 10, 10),"
		" ('in', 'sms', 1, 'newer', '+1', 'second question',"
		" 'received', 0, 1, 20, 20),"
		" ('in', 'sms', 1, 'newer', '+1', 'JOIN question',"
		" 'received', 0, NULL, 5, 5);",
		NULL, NULL, &err),
	    SQLITE_OK);
	sqlite3_close(db);
	c_st = store_open(path, c_err, sizeof(c_err));
	ck_assert_msg(c_st != NULL, "store_open: %s", c_err);
	ck_assert_int_ge(store_schema_version(c_st), 6);
	ck_assert_int_eq(c_int("SELECT last_in_at FROM conversations"), 20);
	ck_assert_int_eq(c_int("SELECT sender = 'newer' FROM conversations"),
	    1);
	q.q = "question";
	o = store_conv_list(c_st, &q, c_err, sizeof(c_err));
	ck_assert_int_eq(json_array_size(json_object_get(o, "conversations")),
	    1);
	json_decref(o);
	ck_assert_int_eq(c_int("SELECT count(*) FROM conversation_fts WHERE"
			       " conversation_fts MATCH 'question'"),
	    2);
}
END_TEST

/*
 * A linked text joins the search index with its group's commit, in the
 * same transaction (store_defer_id(), 008_fts_batch.sql): not before, and
 * not at all if the group rolls back; a later group indexes only its own.
 */
START_TEST(test_search_indexed_at_commit)
{
	struct conv_query q = {.clock = {C_T0 + 10, C_STALE}, .q = "rally"};

	c_seed();
	c_text(1, "tw", "who organizes the rally", C_T0);
	c_text(2, "tw", "is the rally on sunday", C_T0 + 1);
	ck_assert_int_eq(c_int("SELECT count(*) FROM conversation_fts WHERE"
			       " conversation_fts MATCH 'rally'"),
	    0);
	c_flush();
	ck_assert_str_eq(c_ids(&q, NULL, 0), "2,1");
	c_text(3, "tw", "the rally needs chairs", C_T0 + 2);
	store_abort_group(c_st);
	/* the commit point finds the group gone and fails it */
	ck_assert_int_eq(store_flush(c_st, c_err, sizeof(c_err)), -1);
	ck_assert_str_eq(c_ids(&q, NULL, 0), "2,1");
	c_text(3, "tw", "chairs for the rally", C_T0 + 3);
	c_flush();
	ck_assert_str_eq(c_ids(&q, NULL, 0), "3,2,1");
	ck_assert_int_eq(c_int("SELECT count(*) FROM conversation_fts WHERE"
			       " conversation_fts MATCH 'rally'"),
	    3);
	ck_assert_int_eq(c_int("SELECT count(*) FROM conversation_fts WHERE"
			       " conversation_fts MATCH 'needs'"),
	    0);
}
END_TEST

Suite *
conversations_suite(void)
{
	Suite *s = suite_create("conversations");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, c_setup, c_teardown);
	tcase_add_test(tc, test_fts_query);
	tcase_add_test(tc, test_attribution_and_reopen);
	tcase_add_test(tc, test_list_filters_cursor_search);
	tcase_add_test(tc, test_search_indexed_at_commit);
	tcase_add_test(tc, test_stale_flag);
	tcase_add_test(tc, test_thread_notes_target);
	tcase_add_test(tc, test_saved_replies);
	tcase_add_test(tc, test_observer);
	tcase_add_test(tc, test_migration_of_existing_conversations);
	suite_add_tcase(s, tc);
	return s;
}
