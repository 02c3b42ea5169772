/*
 * check_members.c - unit tests of queue/store_members.c and
 * queue/store_lists.c: members (create, conflicts, update, JSON, search),
 * opt-out and opt-in with their consent events, lists (sync with a
 * keyword conflict, create, update, delete), subscriptions (new, already,
 * pending then confirmed, unsubscribe), prompts, the inbound link to a
 * conversation, the consent log and the export iterators, imports (every
 * outcome, opted-out wins, a rerun changes nothing) and email bounces.
 *
 * Every test opens a fresh store in its own directory under a per-TCase
 * root (mkdtemp), as check_queue.c does. Times are made up and passed in.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <sqlite3.h>

#include "check_suites.h"
#include "check_util.h"
#include "message.h"
#include "queue.h"
#include "store-internal.h"
#include "store_members.h"

#define M_T0 INT64_C(1795749274123) /* 2026-11-27T03:14:34.123Z */

static char m_root[64];
static char m_dir[128];
static char m_path[192];
static struct store *m_st;
static char m_err[512];

static void
m_root_setup(void)
{
	snprintf(m_root, sizeof(m_root), "/tmp/check_members.XXXXXX");
	if (mkdtemp(m_root) == NULL)
		ck_abort_msg("mkdtemp %s failed", m_root);
}

static void
m_root_teardown(void)
{
	cku_rmtree(m_root);
}

static void
m_setup(void)
{
	snprintf(m_dir, sizeof(m_dir), "%s/t.XXXXXX", m_root);
	if (mkdtemp(m_dir) == NULL)
		ck_abort_msg("mkdtemp %s failed", m_dir);
	snprintf(m_path, sizeof(m_path), "%s/outreachd.db", m_dir);
	m_st = store_open(m_path, m_err, sizeof(m_err));
	ck_assert_msg(m_st != NULL, "store_open: %s", m_err);
}

static void
m_teardown(void)
{
	store_close(m_st);
	m_st = NULL;
	cku_rmtree(m_dir);
}

/* The first column of the first row of 'sql' as an integer (-1 if none). */
static int64_t
m_db_int(const char *sql)
{
	sqlite3_stmt *stmt;
	int64_t v = -1;

	ck_assert_int_eq(
	    sqlite3_prepare_v2(store_db(m_st), sql, -1, &stmt, NULL),
	    SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

/* The first column of the first row of 'sql' as text, in a static buffer. */
static const char *
m_db_text(const char *sql)
{
	static char buf[1024];
	sqlite3_stmt *stmt;
	const char *s;

	buf[0] = '\0';
	ck_assert_int_eq(
	    sqlite3_prepare_v2(store_db(m_st), sql, -1, &stmt, NULL),
	    SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW &&
	    (s = (const char *)sqlite3_column_text(stmt, 0)) != NULL)
		snprintf(buf, sizeof(buf), "%s", s);
	sqlite3_finalize(stmt);
	return buf;
}

static void
m_db_exec(const char *sql)
{
	ck_assert_msg(sqlite3_exec(store_db(m_st), sql, NULL, NULL, NULL) ==
		SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(store_db(m_st)));
}

static void
m_flush(void)
{
	ck_assert_msg(store_flush(m_st, m_err, sizeof(m_err)) == 0,
	    "store_flush: %s", m_err);
}

static int64_t
m_events(void)
{
	return m_db_int("SELECT count(*) FROM consent_events");
}

static int64_t
m_create(const char *phone, const char *email, const char *first)
{
	struct member_fields f = {0};
	struct member_write w = {.now = M_T0, .conflict = true};

	f.set = MF_PHONE | MF_EMAIL | MF_FIRST_NAME;
	f.phone = phone;
	f.email = email;
	f.first_name = first;
	ck_assert_msg(store_member_create(m_st, &f, &w, m_err, sizeof(m_err)) ==
		0,
	    "store_member_create: %s", m_err);
	ck_assert(!w.conflict);
	ck_assert_int_gt(w.id, 0);
	return w.id;
}

static int64_t
m_list(const char *name, const char *keyword, bool double_optin)
{
	const char *kw[1] = {keyword};
	struct list_def d = {0};
	bool conflict = true;
	int64_t id = 0;

	d.name = name;
	d.keywords = kw;
	d.nkeywords = keyword != NULL ? 1 : 0;
	d.welcome_sms = "Welcome";
	d.double_optin = double_optin;
	id = store_list_create(m_st, &d, M_T0, &conflict, m_err, sizeof(m_err));
	ck_assert_msg(id > 0, "store_list_create: %s", m_err);
	ck_assert(!conflict);
	return id;
}

static enum sub_change
m_subscribe(int64_t member, int64_t list, enum channel ch,
    enum sub_status status)
{
	enum sub_change c;

	ck_assert_msg(store_subscribe(m_st,
			  &(struct consent_change){.member = member,
			      .list = list,
			      .ch = ch,
			      .source = CONSENT_KEYWORD,
			      .now = M_T0},
			  status, &c, m_err, sizeof(m_err)) == 0,
	    "store_subscribe: %s", m_err);
	return c;
}

/* ---- Members ---------------------------------------------------------- */

START_TEST(test_member_create_conflict)
{
	struct member_fields f = {0};
	struct member_write w = {.now = M_T0};
	int64_t a;

	a = m_create("+15551230001", "Ann@Example.org", "Ann");
	ck_assert_str_eq(m_db_text("SELECT email FROM members"),
	    "ann@example.org");
	f.set = MF_PHONE;
	f.phone = "+15551230001";
	ck_assert_int_eq(
	    store_member_create(m_st, &f, &w, m_err, sizeof(m_err)), -1);
	ck_assert(w.conflict);
	ck_assert_str_eq(m_err,
	    "phone +15551230001 already belongs to member 1");
	f.set = MF_EMAIL;
	f.email = "ANN@example.org";
	w.conflict = false;
	ck_assert_int_eq(
	    store_member_create(m_st, &f, &w, m_err, sizeof(m_err)), -1);
	ck_assert(w.conflict);
	ck_assert_str_eq(m_err,
	    "email ANN@example.org already belongs to member 1");
	f.set = MF_FIRST_NAME;
	f.first_name = "Nobody";
	w.conflict = true;
	ck_assert_int_eq(
	    store_member_create(m_st, &f, &w, m_err, sizeof(m_err)), -1);
	ck_assert(!w.conflict);
	ck_assert_int_eq(a, 1);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM members"), 1);
}
END_TEST

START_TEST(test_member_update_json)
{
	struct member_fields f = {0};
	json_t *attrs = json_pack("{s:s}", "ward", "5");
	json_t *tags = json_pack("[s,s,s]", "vol", "donor", "vol");
	struct member_write w = {.now = M_T0 + 1, .conflict = true};
	int64_t a;
	int64_t b;
	json_t *j;
	json_t *c;

	a = m_create("+15551230001", NULL, "Ann");
	b = m_create("+15551230002", "bo@example.org", "Bo");
	/* Conflict: b's email. */
	f.set = MF_EMAIL;
	f.email = "bo@example.org";
	ck_assert_int_eq(
	    store_member_update(m_st, a, &f, &w, m_err, sizeof(m_err)), -1);
	ck_assert(w.conflict);
	ck_assert_str_eq(m_err,
	    "email bo@example.org already belongs to member 2");
	/* Absent member. */
	w.conflict = true;
	ck_assert_int_eq(
	    store_member_update(m_st, 99, &f, &w, m_err, sizeof(m_err)), -1);
	ck_assert(!w.conflict);
	ck_assert_str_eq(m_err, "no member 99");
	/* Clearing the only address is refused. */
	f.set = MF_PHONE;
	f.phone = NULL;
	ck_assert_int_eq(
	    store_member_update(m_st, a, &f, &w, m_err, sizeof(m_err)), -1);
	ck_assert(!w.conflict);
	/* A real change. */
	memset(&f, 0, sizeof(f));
	f.set = MF_LAST_NAME | MF_ZIP | MF_ATTRS | MF_TAGS | MF_EMAIL;
	f.last_name = "Lee";
	f.zip = "94110";
	f.attrs = attrs;
	f.tags = tags;
	f.email = "ann@example.org";
	w.now = M_T0 + 1000;
	ck_assert_msg(
	    store_member_update(m_st, a, &f, &w, m_err, sizeof(m_err)) == 0,
	    "%s", m_err);
	ck_assert(w.changed);
	ck_assert(!w.conflict);
	ck_assert_str_eq(m_db_text("SELECT tags FROM members WHERE id = 1"),
	    "[\"vol\",\"donor\"]");
	/* The same again: nothing changes, updated_at stays. */
	w.now = M_T0 + 2000;
	ck_assert_int_eq(
	    store_member_update(m_st, a, &f, &w, m_err, sizeof(m_err)), 0);
	ck_assert(!w.changed);
	ck_assert_int_eq(
	    m_db_int("SELECT updated_at FROM members WHERE id = 1"),
	    M_T0 + 1000);
	j = store_member_json(m_st, a, m_err, sizeof(m_err));
	ck_assert_msg(j != NULL, "%s", m_err);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "id")), a);
	ck_assert_str_eq(json_string_value(json_object_get(j, "phone")),
	    "+15551230001");
	ck_assert_str_eq(json_string_value(json_object_get(j, "email")),
	    "ann@example.org");
	ck_assert_str_eq(json_string_value(json_object_get(j, "first_name")),
	    "Ann");
	ck_assert_str_eq(json_string_value(json_object_get(j, "last_name")),
	    "Lee");
	ck_assert(json_is_null(json_object_get(j, "time_zone")));
	ck_assert(json_equal(json_object_get(j, "attributes"), attrs));
	ck_assert_int_eq(json_array_size(json_object_get(j, "tags")), 2);
	c = json_object_get(json_object_get(j, "channels"), "sms");
	ck_assert(json_is_false(json_object_get(c, "opted_out")));
	c = json_object_get(json_object_get(j, "channels"), "email");
	ck_assert(json_is_false(json_object_get(c, "bouncing")));
	ck_assert_int_eq(json_integer_value(json_object_get(c, "failures")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(j, "created_at")),
	    "2026-11-27T03:14:34.123Z");
	ck_assert_str_eq(json_string_value(json_object_get(j, "updated_at")),
	    "2026-11-27T03:14:35.123Z");
	ck_assert_int_eq(json_array_size(json_object_get(j, "subscriptions")),
	    0);
	json_decref(j);
	/* Not found: NULL with err empty. */
	ck_assert_ptr_null(store_member_json(m_st, 42, m_err, sizeof(m_err)));
	ck_assert_str_eq(m_err, "");
	(void)b;
	json_decref(attrs);
	json_decref(tags);
}
END_TEST

START_TEST(test_member_email_change_clears_bouncing)
{
	struct member_fields f = {0};
	struct member_write w = {.now = M_T0};
	int64_t a;

	a = m_create(NULL, "old@example.org", NULL);
	ck_assert_int_eq(store_email_failure(m_st, "old@example.org", 1, M_T0,
			     m_err, sizeof(m_err)),
	    1);
	f.set = MF_EMAIL;
	f.email = "new@example.org";
	ck_assert_int_eq(
	    store_member_update(m_st, a, &f, &w, m_err, sizeof(m_err)), 0);
	ck_assert(w.changed);
	ck_assert_int_eq(
	    m_db_int("SELECT bouncing + email_failures FROM members"), 0);
}
END_TEST

START_TEST(test_member_find_ensure_search)
{
	struct member_query q = {0};
	struct member_write w = {.now = M_T0};
	int64_t id = 0;
	int64_t list;
	json_t *r;
	json_t *tags = json_pack("[s]", "vol");
	struct member_fields f = {0};

	ck_assert_int_eq(store_member_find(m_st, CHANNEL_SMS, "+15551230001",
			     &id, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(store_member_ensure(m_st, CHANNEL_SMS, "+15551230001",
			     &w, m_err, sizeof(m_err)),
	    1);
	ck_assert_int_eq(w.id, 1);
	w.id = 0;
	ck_assert_int_eq(store_member_ensure(m_st, CHANNEL_SMS, "+15551230001",
			     &w, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(w.id, 1);
	ck_assert_int_eq(store_member_ensure(m_st, CHANNEL_EMAIL, "X@Y.org", &w,
			     m_err, sizeof(m_err)),
	    1);
	ck_assert_int_eq(store_member_find(m_st, CHANNEL_EMAIL, "x@y.org", &id,
			     m_err, sizeof(m_err)),
	    1);
	ck_assert_int_eq(id, 2);
	m_create("+15551230003", NULL, "Maria");
	m_create("+15551230004", NULL, "Mario");
	m_create("+15551230005", NULL, "Bob");
	f.set = MF_TAGS | MF_LAST_NAME;
	f.tags = tags;
	f.last_name = "O'MARi_";
	ck_assert_int_eq(
	    store_member_update(m_st, 5, &f, &w, m_err, sizeof(m_err)), 0);
	list = m_list("news", "NEWS", false);
	m_subscribe(4, list, CHANNEL_SMS, SUB_ACTIVE);
	/* Name: case-insensitive substring of first or last name. */
	q.name = "mari";
	q.limit = 2;
	r = store_member_search(m_st, &q, m_err, sizeof(m_err));
	ck_assert_msg(r != NULL, "%s", m_err);
	ck_assert_int_eq(json_array_size(json_object_get(r, "members")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(r, "next_cursor")),
	    "4");
	json_decref(r);
	q.after = 4;
	r = store_member_search(m_st, &q, m_err, sizeof(m_err));
	ck_assert_int_eq(json_array_size(json_object_get(r, "members")), 1);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(
		json_array_get(json_object_get(r, "members"), 0), "id")),
	    5);
	ck_assert(json_is_null(json_object_get(r, "next_cursor")));
	json_decref(r);
	/* Wildcards are literal. */
	memset(&q, 0, sizeof(q));
	q.name = "i_";
	q.limit = 10;
	r = store_member_search(m_st, &q, m_err, sizeof(m_err));
	ck_assert_int_eq(json_array_size(json_object_get(r, "members")), 1);
	json_decref(r);
	/* Tag, list, phone, email. */
	memset(&q, 0, sizeof(q));
	q.tag = "vol";
	q.limit = 10;
	r = store_member_search(m_st, &q, m_err, sizeof(m_err));
	ck_assert_int_eq(json_array_size(json_object_get(r, "members")), 1);
	json_decref(r);
	memset(&q, 0, sizeof(q));
	q.list_id = list;
	q.limit = 10;
	r = store_member_search(m_st, &q, m_err, sizeof(m_err));
	ck_assert_int_eq(json_array_size(json_object_get(r, "members")), 1);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(
		json_array_get(json_object_get(r, "members"), 0), "id")),
	    4);
	json_decref(r);
	memset(&q, 0, sizeof(q));
	q.email = "x@y.org";
	q.limit = 10;
	r = store_member_search(m_st, &q, m_err, sizeof(m_err));
	ck_assert_int_eq(json_array_size(json_object_get(r, "members")), 1);
	json_decref(r);
	memset(&q, 0, sizeof(q));
	q.phone = "+15551230003";
	q.name = "bob";
	q.limit = 10;
	r = store_member_search(m_st, &q, m_err, sizeof(m_err));
	ck_assert_int_eq(json_array_size(json_object_get(r, "members")), 0);
	json_decref(r);
	q.limit = 0;
	ck_assert_ptr_null(store_member_search(m_st, &q, m_err, sizeof(m_err)));
	ck_assert_str_eq(m_err, "limit: must be 1..1000");
	json_decref(tags);
}
END_TEST

/* ---- Opt-out and opt-in ------------------------------------------------ */

START_TEST(test_optout_optin_events)
{
	bool changed = false;
	int64_t a;
	json_t *j;
	json_t *c;

	a = m_create("+15551230001", "a@example.org", NULL);
	ck_assert_int_eq(store_member_is_opted_out(m_st, a, CHANNEL_SMS, m_err,
			     sizeof(m_err)),
	    0);
	ck_assert_int_eq(store_member_optout_id(m_st,
			     &(struct consent_change){.member = a,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_KEYWORD,
				 .message_id = 7,
				 .detail = "STOP",
				 .now = M_T0},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ck_assert(changed);
	ck_assert_int_eq(store_member_optout_id(m_st,
			     &(struct consent_change){.member = a,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_API,
				 .now = M_T0 + 5},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ck_assert(!changed);
	ck_assert_int_eq(m_events(), 1);
	ck_assert_str_eq(m_db_text("SELECT channel || ',' || action || ',' ||"
				   " source || ',' || message_id || ',' ||"
				   " detail FROM consent_events"),
	    "sms,opt_out,keyword,7,STOP");
	ck_assert_int_eq(store_member_is_opted_out(m_st, a, CHANNEL_SMS, m_err,
			     sizeof(m_err)),
	    1);
	ck_assert_int_eq(store_member_is_opted_out(m_st, a, CHANNEL_EMAIL,
			     m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(queue_is_suppressed(m_st, CHANNEL_SMS, "+15551230001",
			     m_err, sizeof(m_err)),
	    1);
	j = store_member_json(m_st, a, m_err, sizeof(m_err));
	c = json_object_get(json_object_get(j, "channels"), "sms");
	ck_assert(json_is_true(json_object_get(c, "opted_out")));
	ck_assert_str_eq(json_string_value(json_object_get(c, "source")),
	    "keyword");
	ck_assert_str_eq(json_string_value(json_object_get(c, "opted_out_at")),
	    "2026-11-27T03:14:34.123Z");
	json_decref(j);
	/* Opt back in: once. */
	ck_assert_int_eq(store_member_optin(m_st,
			     &(struct consent_change){.member = a,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_KEYWORD,
				 .message_id = 8,
				 .detail = "START",
				 .now = M_T0 + 10},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ck_assert(changed);
	ck_assert_int_eq(store_member_optin(m_st,
			     &(struct consent_change){.member = a,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_KEYWORD,
				 .message_id = 9,
				 .detail = "START",
				 .now = M_T0 + 20},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ck_assert(!changed);
	ck_assert_int_eq(m_events(), 2);
	ck_assert_str_eq(m_db_text("SELECT action || ',' || message_id FROM"
				   " consent_events ORDER BY id DESC"),
	    "opt_in,8");
	ck_assert_int_eq(store_member_is_opted_out(m_st, a, CHANNEL_SMS, m_err,
			     sizeof(m_err)),
	    0);
	/* An absent member. */
	ck_assert_int_eq(store_member_optout_id(m_st,
			     &(struct consent_change){.member = 77,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_API,
				 .now = M_T0},
			     &changed, m_err, sizeof(m_err)),
	    -1);
	ck_assert_str_eq(m_err, "no member 77");
	/* The log is append-only. */
	m_flush();
	ck_assert_int_ne(sqlite3_exec(store_db(m_st),
			     "DELETE FROM consent_events", NULL, NULL, NULL),
	    SQLITE_OK);
}
END_TEST

/* ---- Lists ------------------------------------------------------------------
 */

START_TEST(test_list_sync)
{
	const char *kw_a[] = {"JOIN", "HOLA"};
	const char *kw_b[] = {"NEWS"};
	const char *kw_taken[] = {"API"};
	struct list_question qs[] = {{"first_name", "Your first name?"},
	    {"zip", "Your ZIP?"}};
	struct list_def defs[2] = {{0}};
	struct list_info li;
	bool found = false;
	int64_t id = 0;
	int64_t api;

	defs[0].name = "main";
	defs[0].keywords = kw_a;
	defs[0].nkeywords = 2;
	defs[0].welcome_sms = "Hi";
	defs[0].questions = qs;
	defs[0].nquestions = 2;
	defs[1].name = "news";
	defs[1].keywords = kw_b;
	defs[1].nkeywords = 1;
	defs[1].sender = "twilio";
	defs[1].double_optin = true;
	ck_assert_msg(
	    store_list_sync(m_st, defs, 2, M_T0, m_err, sizeof(m_err)) == 0,
	    "%s", m_err);
	ck_assert_int_eq(store_list_by_keyword(m_st, "HOLA", &id, &found, m_err,
			     sizeof(m_err)),
	    0);
	ck_assert(found);
	ck_assert_int_eq(id, 1);
	ck_assert_int_eq(
	    store_list_get(m_st, 2, &li, &found, m_err, sizeof(m_err)), 0);
	ck_assert(found);
	ck_assert_str_eq(li.name, "news");
	ck_assert_str_eq(li.sender, "twilio");
	ck_assert(li.double_optin);
	ck_assert(li.from_config);
	ck_assert_ptr_null(li.welcome_sms);
	list_info_clear(&li);
	ck_assert_int_eq(
	    store_list_get(m_st, 1, &li, &found, m_err, sizeof(m_err)), 0);
	ck_assert_int_eq(li.nquestions, 2);
	ck_assert_str_eq(li.questions[1].field, "zip");
	ck_assert_str_eq(li.questions[1].prompt, "Your ZIP?");
	list_info_clear(&li);
	/* Again: same ids. */
	ck_assert_int_eq(
	    store_list_sync(m_st, defs, 2, M_T0 + 1, m_err, sizeof(m_err)), 0);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM lists"), 2);
	ck_assert_int_eq(m_db_int("SELECT max(updated_at) FROM lists"), M_T0);
	/* An API list holds a keyword the config now claims. */
	api = m_list("api list", "API", false);
	defs[1].keywords = kw_taken;
	ck_assert_int_eq(
	    store_list_sync(m_st, defs, 2, M_T0 + 2, m_err, sizeof(m_err)), -1);
	ck_assert_str_eq(m_err,
	    "keyword API of [list news] belongs to list 3 "
	    "(created through the API)");
	ck_assert_int_eq(store_list_by_keyword(m_st, "NEWS", &id, &found, m_err,
			     sizeof(m_err)),
	    0);
	ck_assert(found); /* unchanged */
	/* The API can't edit a config list. */
	{
		struct list_write lw = {.now = M_T0};

		ck_assert_int_eq(store_list_update(m_st, 1, &defs[0], &lw,
				     m_err, sizeof(m_err)),
		    -1);
		ck_assert(lw.conflict);
		ck_assert_str_eq(m_err,
		    "list 1 comes from the config file; "
		    "edit [list main] there");
	}
	/* "news" leaves the config: stays, loses config mark and keyword. */
	ck_assert_int_eq(
	    store_list_sync(m_st, defs, 1, M_T0 + 3, m_err, sizeof(m_err)), 0);
	ck_assert_int_eq(m_db_int("SELECT from_config FROM lists WHERE id = 2"),
	    0);
	ck_assert_int_eq(store_list_by_keyword(m_st, "NEWS", &id, &found, m_err,
			     sizeof(m_err)),
	    0);
	ck_assert(!found);
	ck_assert_int_eq(store_list_by_name(m_st, "api list", &id, &found,
			     m_err, sizeof(m_err)),
	    0);
	ck_assert(found);
	ck_assert_int_eq(id, api);
}
END_TEST

/* A keyword moves between config lists; a stored list is adopted by name. */
START_TEST(test_list_sync_move_adopt)
{
	const char *kw1[] = {"JOIN"};
	const char *kw2[] = {"JOIN", "MORE"};
	struct list_def defs[2] = {{0}};
	bool found;
	int64_t id = 0;
	int64_t api;

	api = m_list("later", "LATER", false);
	defs[0].name = "a";
	defs[0].keywords = kw1;
	defs[0].nkeywords = 1;
	defs[1].name = "later"; /* the API list's name and keyword */
	ck_assert_msg(
	    store_list_sync(m_st, defs, 2, M_T0, m_err, sizeof(m_err)) == 0,
	    "%s", m_err);
	ck_assert_int_eq(store_list_by_name(m_st, "later", &id, &found, m_err,
			     sizeof(m_err)),
	    0);
	ck_assert_int_eq(id, api);
	ck_assert_int_eq(
	    m_db_int("SELECT from_config FROM lists WHERE name = 'later'"), 1);
	ck_assert_int_eq(store_list_by_keyword(m_st, "LATER", &id, &found,
			     m_err, sizeof(m_err)),
	    0);
	ck_assert(!found); /* the config gives it none */
	defs[0].keywords = NULL;
	defs[0].nkeywords = 0;
	defs[1].keywords = kw2;
	defs[1].nkeywords = 2;
	ck_assert_msg(
	    store_list_sync(m_st, defs, 2, M_T0, m_err, sizeof(m_err)) == 0,
	    "%s", m_err);
	ck_assert_int_eq(store_list_by_keyword(m_st, "JOIN", &id, &found, m_err,
			     sizeof(m_err)),
	    0);
	ck_assert(found);
	ck_assert_int_eq(id, api);
	/* The same keyword twice in the config. */
	defs[0].keywords = kw1;
	defs[0].nkeywords = 1;
	ck_assert_int_eq(
	    store_list_sync(m_st, defs, 2, M_T0, m_err, sizeof(m_err)), -1);
	ck_assert_str_eq(m_err,
	    "keyword JOIN is in both [list a] and [list later]");
}
END_TEST

START_TEST(test_list_crud_json)
{
	const char *kw[] = {"VOTE", "VOTA"};
	struct list_def d = {0};
	bool conflict = false;
	int64_t a;
	int64_t m;
	json_t *j;
	json_t *all;

	a = m_list("first", "JOIN", false);
	d.name = "first";
	d.keywords = kw;
	d.nkeywords = 2;
	ck_assert_int_eq(
	    store_list_create(m_st, &d, M_T0, &conflict, m_err, sizeof(m_err)),
	    -1);
	ck_assert(conflict);
	ck_assert_str_eq(m_err, "list name first is taken by list 1");
	d.name = "second";
	kw[1] = "JOIN";
	conflict = false;
	ck_assert_int_eq(
	    store_list_create(m_st, &d, M_T0, &conflict, m_err, sizeof(m_err)),
	    -1);
	ck_assert(conflict);
	ck_assert_str_eq(m_err, "keyword JOIN belongs to list 1");
	kw[1] = "vota";
	conflict = false;
	ck_assert_int_eq(
	    store_list_create(m_st, &d, M_T0, &conflict, m_err, sizeof(m_err)),
	    -1);
	ck_assert(!conflict);
	/* Update: rename, keywords replaced. */
	kw[1] = "VOTA";
	d.name = "renamed";
	d.welcome_email_subject = "Welcome";
	ck_assert_msg(store_list_update(m_st, a, &d,
			  &(struct list_write){.now = M_T0 + 1000}, m_err,
			  sizeof(m_err)) == 0,
	    "%s", m_err);
	m = m_create("+15551230001", NULL, NULL);
	m_subscribe(m, a, CHANNEL_SMS, SUB_ACTIVE);
	j = store_list_json(m_st, a, m_err, sizeof(m_err));
	ck_assert_msg(j != NULL, "%s", m_err);
	ck_assert_str_eq(json_string_value(json_object_get(j, "name")),
	    "renamed");
	ck_assert_int_eq(json_array_size(json_object_get(j, "keywords")), 2);
	ck_assert_str_eq(json_string_value(
			     json_array_get(json_object_get(j, "keywords"), 0)),
	    "VOTA");
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(j, "counts"), "active")),
	    1);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(j, "counts"), "pending")),
	    0);
	ck_assert(json_is_false(json_object_get(j, "from_config")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "updated_at")),
	    "2026-11-27T03:14:35.123Z");
	json_decref(j);
	all = store_lists_json(m_st, m_err, sizeof(m_err));
	ck_assert_int_eq(json_array_size(json_object_get(all, "lists")), 1);
	json_decref(all);
	ck_assert_ptr_null(store_list_json(m_st, 9, m_err, sizeof(m_err)));
	ck_assert_str_eq(m_err, "");
	/* Delete: refused with members unless forced. */
	ck_assert_int_eq(
	    store_list_delete(m_st, a, false, &conflict, m_err, sizeof(m_err)),
	    -1);
	ck_assert(conflict);
	ck_assert_str_eq(m_err, "list 1 has 1 members; use force");
	ck_assert_int_eq(
	    store_list_delete(m_st, a, true, &conflict, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM subscriptions"), 0);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM list_keywords"), 0);
	ck_assert_int_eq(m_db_int("SELECT list_id FROM consent_events"), a);
	ck_assert_int_eq(
	    store_list_delete(m_st, a, true, &conflict, m_err, sizeof(m_err)),
	    -1);
	ck_assert(!conflict);
}
END_TEST

/*
 * A list's time_zone (the quiet hours fallback) round trips through
 * create, update and sync, and shows in the JSON; a change alone is a
 * change (updated_at moves), and a list leaving the config keeps it.
 */
START_TEST(test_list_time_zone)
{
	const char *kw[] = {"TOKYO"};
	struct list_def d = {0};
	struct list_info li;
	bool conflict = false;
	bool found = false;
	int64_t id = 0;
	json_t *j;

	d.name = "tokyo";
	d.keywords = kw;
	d.nkeywords = 1;
	d.time_zone = "Asia/Tokyo";
	id = store_list_create(m_st, &d, M_T0, &conflict, m_err, sizeof(m_err));
	ck_assert_msg(id > 0, "%s", m_err);
	ck_assert_str_eq(
	    m_db_text("SELECT time_zone FROM lists WHERE name = 'tokyo'"),
	    "Asia/Tokyo");
	ck_assert_int_eq(
	    store_list_get(m_st, id, &li, &found, m_err, sizeof(m_err)), 0);
	ck_assert(found);
	ck_assert_str_eq(li.time_zone, "Asia/Tokyo");
	list_info_clear(&li);
	j = store_list_json(m_st, id, m_err, sizeof(m_err));
	ck_assert_msg(j != NULL, "%s", m_err);
	ck_assert_str_eq(json_string_value(json_object_get(j, "time_zone")),
	    "Asia/Tokyo");
	json_decref(j);
	/* only the zone differs: the row is written */
	d.time_zone = "America/Chicago";
	ck_assert_msg(store_list_update(m_st, id, &d,
			  &(struct list_write){.now = M_T0 + 1000}, m_err,
			  sizeof(m_err)) == 0,
	    "%s", m_err);
	ck_assert_str_eq(m_db_text("SELECT time_zone FROM lists"),
	    "America/Chicago");
	ck_assert_int_eq(m_db_int("SELECT updated_at FROM lists"), M_T0 + 1000);
	/* cleared */
	d.time_zone = NULL;
	ck_assert_msg(store_list_update(m_st, id, &d,
			  &(struct list_write){.now = M_T0 + 2000}, m_err,
			  sizeof(m_err)) == 0,
	    "%s", m_err);
	ck_assert_int_eq(m_db_int("SELECT time_zone IS NULL FROM lists"), 1);
	j = store_list_json(m_st, id, m_err, sizeof(m_err));
	ck_assert_msg(j != NULL, "%s", m_err);
	ck_assert(json_is_null(json_object_get(j, "time_zone")));
	json_decref(j);
	ck_assert_int_eq(
	    store_list_get(m_st, id, &li, &found, m_err, sizeof(m_err)), 0);
	ck_assert_ptr_null(li.time_zone);
	list_info_clear(&li);
	/* the config adopts the list by name with its own zone */
	d.time_zone = "Europe/Paris";
	ck_assert_msg(store_list_sync(m_st, &d, 1, M_T0 + 3000, m_err,
			  sizeof(m_err)) == 0,
	    "%s", m_err);
	ck_assert_str_eq(m_db_text("SELECT time_zone FROM lists"),
	    "Europe/Paris");
	ck_assert_int_eq(m_db_int("SELECT updated_at FROM lists"), M_T0 + 3000);
	/* the same again writes nothing; a new zone is written */
	ck_assert_int_eq(
	    store_list_sync(m_st, &d, 1, M_T0 + 4000, m_err, sizeof(m_err)), 0);
	ck_assert_int_eq(m_db_int("SELECT updated_at FROM lists"), M_T0 + 3000);
	d.time_zone = "Asia/Tokyo";
	ck_assert_int_eq(
	    store_list_sync(m_st, &d, 1, M_T0 + 5000, m_err, sizeof(m_err)), 0);
	ck_assert_str_eq(m_db_text("SELECT time_zone FROM lists"),
	    "Asia/Tokyo");
	ck_assert_int_eq(m_db_int("SELECT updated_at FROM lists"), M_T0 + 5000);
	/* gone from the config: keeps its members and its zone */
	ck_assert_int_eq(
	    store_list_sync(m_st, NULL, 0, M_T0 + 6000, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(m_db_int("SELECT from_config FROM lists"), 0);
	ck_assert_str_eq(m_db_text("SELECT time_zone FROM lists"),
	    "Asia/Tokyo");
}
END_TEST

/* ---- Subscriptions ---------------------------------------------------- */

START_TEST(test_subscribe_flow)
{
	enum sub_status status;
	bool changed = false;
	int64_t m;
	int64_t l1;
	int64_t l2;
	int64_t list = 0;
	enum sub_change c;

	m = m_create("+15551230001", NULL, NULL);
	l1 = m_list("one", "ONE", false);
	l2 = m_list("two", "TWO", true);
	ck_assert_int_eq(m_subscribe(m, l1, CHANNEL_SMS, SUB_ACTIVE),
	    SUB_CHANGE_NEW);
	ck_assert_int_eq(m_subscribe(m, l1, CHANNEL_SMS, SUB_ACTIVE),
	    SUB_CHANGE_ALREADY);
	ck_assert_int_eq(m_subscribe(m, l1, CHANNEL_SMS, SUB_PENDING),
	    SUB_CHANGE_ALREADY);
	ck_assert_int_eq(m_events(), 1);
	/* Double opt-in. */
	ck_assert_int_eq(m_subscribe(m, l2, CHANNEL_SMS, SUB_PENDING),
	    SUB_CHANGE_NEW);
	ck_assert_int_eq(m_subscribe(m, l2, CHANNEL_SMS, SUB_PENDING),
	    SUB_CHANGE_ALREADY);
	ck_assert_int_eq(store_subscription_pending(m_st, m, CHANNEL_SMS, &list,
			     m_err, sizeof(m_err)),
	    1);
	ck_assert_int_eq(list, l2);
	ck_assert_int_eq(m_subscribe(m, l2, CHANNEL_SMS, SUB_ACTIVE),
	    SUB_CHANGE_ACTIVATED);
	ck_assert_int_eq(
	    store_subscription_status(m_st,
		&(struct sub_key){.member = m, .list = l2, .ch = CHANNEL_SMS},
		&status, m_err, sizeof(m_err)),
	    1);
	ck_assert_int_eq(status, SUB_ACTIVE);
	ck_assert_int_eq(store_subscription_pending(m_st, m, CHANNEL_SMS, &list,
			     m_err, sizeof(m_err)),
	    0);
	ck_assert_str_eq(m_db_text("SELECT group_concat(action || ':' ||"
				   " list_id) FROM (SELECT * FROM"
				   " consent_events ORDER BY id)"),
	    "opt_in:1,opt_in:2,confirm:2");
	/* Unsubscribe, twice; then rejoin. */
	ck_assert_int_eq(store_unsubscribe(m_st,
			     &(struct consent_change){.member = m,
				 .list = l1,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_WEB,
				 .detail = "link",
				 .now = M_T0},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ck_assert(changed);
	ck_assert_int_eq(store_unsubscribe(m_st,
			     &(struct consent_change){.member = m,
				 .list = l1,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_WEB,
				 .detail = "link",
				 .now = M_T0},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ck_assert(!changed);
	ck_assert_int_eq(store_unsubscribe(m_st,
			     &(struct consent_change){.member = m,
				 .list = l1,
				 .ch = CHANNEL_EMAIL,
				 .source = CONSENT_WEB,
				 .now = M_T0},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ck_assert(!changed);
	ck_assert_int_eq(m_events(), 4);
	ck_assert_str_eq(m_db_text("SELECT action || ',' || source || ',' ||"
				   " detail FROM consent_events ORDER BY id"
				   " DESC"),
	    "opt_out,web,link");
	ck_assert_int_eq(m_subscribe(m, l1, CHANNEL_SMS, SUB_ACTIVE),
	    SUB_CHANGE_REJOINED);
	/* Unknown list. */
	ck_assert_int_eq(store_subscribe(m_st,
			     &(struct consent_change){.member = m,
				 .list = 99,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_API,
				 .now = M_T0},
			     SUB_ACTIVE, &c, m_err, sizeof(m_err)),
	    -1);
	ck_assert_str_eq(m_err, "subscribe: no member 1 or no list 99");
}
END_TEST

START_TEST(test_list_members_json)
{
	int64_t l;
	int64_t i;
	json_t *r;
	json_t *a;
	json_t *s;

	l = m_list("one", "ONE", false);
	for (i = 0; i < 3; i++) {
		char phone[32];
		char email[32];

		snprintf(phone, sizeof(phone), "+1555123000%d", (int)i);
		snprintf(email, sizeof(email), "m%d@example.org", (int)i);
		m_create(phone, email, NULL);
		m_subscribe(i + 1, l, CHANNEL_SMS, SUB_ACTIVE);
		m_subscribe(i + 1, l, CHANNEL_EMAIL,
		    i == 1 ? SUB_PENDING : SUB_ACTIVE);
	}
	r = store_list_members_json(m_st,
	    &(struct list_members_query){.list = l, .limit = 1}, m_err,
	    sizeof(m_err));
	ck_assert_msg(r != NULL, "%s", m_err);
	a = json_object_get(r, "members");
	ck_assert_int_eq(json_array_size(a), 2); /* both channels of 1 */
	s = json_object_get(json_array_get(a, 1), "subscription");
	ck_assert_str_eq(json_string_value(json_object_get(s, "channel")),
	    "sms");
	ck_assert_str_eq(json_string_value(json_object_get(r, "next_cursor")),
	    "1");
	json_decref(r);
	r = store_list_members_json(m_st,
	    &(struct list_members_query){.list = l,
		.status = "pending",
		.limit = 10},
	    m_err, sizeof(m_err));
	a = json_object_get(r, "members");
	ck_assert_int_eq(json_array_size(a), 1);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_array_get(a, 0), "id")), 2);
	ck_assert(json_is_null(json_object_get(r, "next_cursor")));
	json_decref(r);
	ck_assert_ptr_null(store_list_members_json(m_st,
	    &(struct list_members_query){.list = 9, .limit = 10}, m_err,
	    sizeof(m_err)));
	ck_assert_str_eq(m_err, "");
}
END_TEST

/* ---- Prompts and inbound ----------------------------------------------- */

START_TEST(test_prompts)
{
	struct member_prompt p = {.list_id = 1,
	    .index = 2,
	    .attempts = 1,
	    .asked_at = M_T0};
	struct member_prompt out;
	bool found = true;
	int64_t m;

	m = m_create("+15551230001", NULL, NULL);
	ck_assert_int_eq(
	    store_prompt_get(m_st, m, &out, &found, m_err, sizeof(m_err)), 0);
	ck_assert(!found);
	ck_assert_int_eq(store_prompt_set(m_st, m, &p, m_err, sizeof(m_err)),
	    0);
	p.index = 3;
	p.attempts = 0;
	ck_assert_int_eq(store_prompt_set(m_st, m, &p, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(
	    store_prompt_get(m_st, m, &out, &found, m_err, sizeof(m_err)), 0);
	ck_assert(found);
	ck_assert_int_eq(out.list_id, 1);
	ck_assert_int_eq(out.index, 3);
	ck_assert_int_eq(out.attempts, 0);
	ck_assert_int_eq(out.asked_at, M_T0);
	ck_assert_int_eq(store_prompt_clear(m_st, m, m_err, sizeof(m_err)), 0);
	ck_assert_int_eq(
	    store_prompt_get(m_st, m, &out, &found, m_err, sizeof(m_err)), 0);
	ck_assert(!found);
}
END_TEST

static int64_t
m_inbound(const char *from, const char *body)
{
	struct in_msg im;
	struct queue_stored qs = {0, true};
	static int n;

	memset(&im, 0, sizeof(im));
	snprintf(im.provider_id, sizeof(im.provider_id), "SM%d", ++n);
	snprintf(im.from, sizeof(im.from), "%s", from);
	snprintf(im.to, sizeof(im.to), "+15550000000");
	im.body = (char *)body;
	ck_assert_msg(queue_inbound_store(m_st,
			  &(struct queue_webhook){.sender = "main",
			      .provider = "console",
			      .now = M_T0},
			  &im, &qs, m_err, sizeof(m_err)) == 0,
	    "%s", m_err);
	ck_assert(!qs.dup);
	return qs.id;
}

START_TEST(test_inbound_link)
{
	int64_t m;
	int64_t k;
	int64_t a;
	int64_t b;
	int64_t conv = -1;
	int64_t conv2 = -1;

	m = m_create("+15551230001", NULL, NULL);
	k = m_inbound("+15551230001", "JOIN");
	conv = store_inbound_link(m_st,
	    &(struct inbound_link_req){.msg = k,
		.member = m,
		.conversation = false,
		.now = M_T0},
	    m_err, sizeof(m_err));
	ck_assert_int_eq(conv, 0); /* no conversation: 0 */
	ck_assert_int_eq(conv, 0);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM conversations"), 0);
	a = m_inbound("+15551230001", "hello?");
	b = m_inbound("+15551230001", "anyone?");
	conv = store_inbound_link(m_st,
	    &(struct inbound_link_req){.msg = a,
		.member = m,
		.conversation = true,
		.now = M_T0 + 10},
	    m_err, sizeof(m_err));
	ck_assert_int_ge(conv, 0);
	ck_assert_int_gt(conv, 0);
	conv2 = store_inbound_link(m_st,
	    &(struct inbound_link_req){.msg = b,
		.member = m,
		.conversation = true,
		.now = M_T0 + 20},
	    m_err, sizeof(m_err));
	ck_assert_int_ge(conv2, 0);
	ck_assert_int_eq(conv2, conv);
	/* Repeated: counted once. */
	conv2 = store_inbound_link(m_st,
	    &(struct inbound_link_req){.msg = b,
		.member = m,
		.conversation = true,
		.now = M_T0 + 30},
	    m_err, sizeof(m_err));
	ck_assert_int_ge(conv2, 0);
	ck_assert_int_eq(conv2, conv);
	ck_assert_str_eq(m_db_text("SELECT member_id || ',' || status || ','"
				   " || unread || ',' || last_message_at"
				   " FROM conversations"),
	    "1,open,2,1795749274143");
	ck_assert_int_eq(
	    m_db_int("SELECT count(*) FROM messages WHERE member_id = 1"), 3);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM messages WHERE"
				  " conversation_id IS NOT NULL"),
	    2);
	ck_assert_int_eq(store_inbound_link(m_st,
			     &(struct inbound_link_req){.msg = 999,
				 .member = m,
				 .conversation = true,
				 .now = M_T0},
			     m_err, sizeof(m_err)),
	    -1);
	ck_assert_str_eq(m_err, "no inbound message 999");
	/* A closed conversation reopens when the member writes again. */
	m_flush();
	m_db_exec("UPDATE conversations SET status = 'closed'");
	a = m_inbound("+15551230001", "back again");
	conv2 = store_inbound_link(m_st,
	    &(struct inbound_link_req){.msg = a,
		.member = m,
		.conversation = true,
		.now = M_T0 + 40,
		.sender = "main"},
	    m_err, sizeof(m_err));
	ck_assert_int_eq(conv2, conv);
	ck_assert_str_eq(m_db_text("SELECT status || ',' || unread || ','"
				   " || sender FROM conversations"),
	    "open,3,main");
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM conversations"), 1);
}
END_TEST

/* ---- Consent log and exports ------------------------------------------ */

START_TEST(test_consent_json)
{
	bool changed;
	int64_t m;
	int64_t l;
	json_t *r;
	json_t *ev;
	json_t *e;

	l = m_list("one", "ONE", false);
	m = m_create("+15551230001", NULL, NULL);
	m_subscribe(m, l, CHANNEL_SMS, SUB_ACTIVE);
	ck_assert_int_eq(store_member_optout_id(m_st,
			     &(struct consent_change){.member = m,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_KEYWORD,
				 .message_id = 5,
				 .detail = "STOP",
				 .now = M_T0 + 1},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(store_member_optin(m_st,
			     &(struct consent_change){.member = m,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_API,
				 .detail = "staff 2",
				 .now = M_T0 + 2},
			     &changed, m_err, sizeof(m_err)),
	    0);
	r = store_consent_json(m_st, m, 0, 2, m_err, sizeof(m_err));
	ck_assert_msg(r != NULL, "%s", m_err);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "member_id")),
	    m);
	ev = json_object_get(r, "events");
	ck_assert_int_eq(json_array_size(ev), 2);
	e = json_array_get(ev, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(e, "id")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(e, "action")),
	    "opt_in");
	ck_assert_str_eq(json_string_value(json_object_get(e, "list")), "one");
	ck_assert_int_eq(json_integer_value(json_object_get(e, "list_id")), l);
	ck_assert(json_is_null(json_object_get(e, "message_id")));
	ck_assert_str_eq(json_string_value(json_object_get(e, "at")),
	    "2026-11-27T03:14:34.123Z");
	e = json_array_get(ev, 1);
	ck_assert_str_eq(json_string_value(json_object_get(e, "action")),
	    "opt_out");
	ck_assert_int_eq(json_integer_value(json_object_get(e, "message_id")),
	    5);
	ck_assert(json_is_null(json_object_get(e, "list")));
	ck_assert_str_eq(json_string_value(json_object_get(r, "next_cursor")),
	    "2");
	json_decref(r);
	r = store_consent_json(m_st, m, 2, 2, m_err, sizeof(m_err));
	ev = json_object_get(r, "events");
	ck_assert_int_eq(json_array_size(ev), 1);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_array_get(ev, 0), "detail")),
	    "staff 2");
	ck_assert(json_is_null(json_object_get(r, "next_cursor")));
	json_decref(r);
	ck_assert_ptr_null(
	    store_consent_json(m_st, 42, 0, 10, m_err, sizeof(m_err)));
	ck_assert_str_eq(m_err, "");
}
END_TEST

struct m_rows {
	int n;
	int header;
	char first[64];
	char last[256];
};

static int
m_collect(void *arg, const struct export_row *row)
{
	struct m_rows *r = arg;
	size_t i;
	size_t len = 0;

	if (strcmp(row->cols[0], "id") == 0) {
		r->header++;
		return 0;
	}
	if (r->n == 0)
		snprintf(r->first, sizeof(r->first), "%s", row->cols[0]);
	r->last[0] = '\0';
	for (i = 0; i < row->ncols; i++)
		len += (size_t)snprintf(r->last + len, sizeof(r->last) - len,
		    "%s%s", i > 0 ? "|" : "",
		    row->cols[i] != NULL ? row->cols[i] : "NULL");
	r->n++;
	return 0;
}

START_TEST(test_export_paging)
{
	struct m_rows rows;
	struct export_sink to = {.each = m_collect, .arg = &rows};
	struct export_page pg;
	bool changed;
	int64_t next = -1;
	int64_t l;
	int i;
	int pages = 0;
	int total = 0;

	l = m_list("one", "ONE", false);
	for (i = 1; i <= 5; i++) {
		char phone[32];

		snprintf(phone, sizeof(phone), "+1555123000%d", i);
		m_create(phone, i == 5 ? "five@example.org" : NULL, "X");
		m_subscribe(i, l, CHANNEL_SMS, SUB_ACTIVE);
	}
	m_subscribe(5, l, CHANNEL_EMAIL, SUB_ACTIVE);
	ck_assert_int_eq(store_member_optout_id(m_st,
			     &(struct consent_change){.member = 5,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_API,
				 .now = M_T0},
			     &changed, m_err, sizeof(m_err)),
	    0);
	next = 0;
	do {
		memset(&rows, 0, sizeof(rows));
		pg = (struct export_page){.after = next, .limit = 2};
		ck_assert_msg(store_export_list(m_st, l, &pg, &to, m_err,
				  sizeof(m_err)) == 0,
		    "%s", m_err);
		next = pg.next;
		ck_assert_int_eq(rows.header, pages == 0 ? 1 : 0);
		pages++;
		total += rows.n;
	} while (next != 0);
	ck_assert_int_eq(pages, 3);
	ck_assert_int_eq(total, 6);
	/* The last page: member 5's SMS and email rows together; the SMS
	 * row of a member opted out of SMS says so. */
	ck_assert_int_eq(rows.n, 2);
	ck_assert_str_eq(rows.last,
	    "5|+15551230005|five@example.org|X|NULL|NULL|NULL|[]|{}|sms|"
	    "opted_out|keyword|2026-11-27T03:14:34.123Z|true|false");
	/* Consent export: 7 events, 3 per page. */
	next = 0;
	pages = total = 0;
	do {
		memset(&rows, 0, sizeof(rows));
		pg = (struct export_page){.after = next, .limit = 3};
		ck_assert_msg(store_export_consent(m_st, 0, &pg, &to, m_err,
				  sizeof(m_err)) == 0,
		    "%s", m_err);
		next = pg.next;
		pages++;
		total += rows.n;
	} while (next != 0);
	ck_assert_int_eq(pages, 3);
	ck_assert_int_eq(total, 7);
	ck_assert_str_eq(rows.last,
	    "7|5|+15551230005|five@example.org|sms|opt_out|api|NULL|NULL|NULL|"
	    "2026-11-27T03:14:34.123Z");
	memset(&rows, 0, sizeof(rows));
	pg = (struct export_page){.after = 0, .limit = 100, .next = -1};
	ck_assert_int_eq(
	    store_export_consent(m_st, 5, &pg, &to, m_err, sizeof(m_err)), 0);
	ck_assert_int_eq(rows.n, 3);
	ck_assert_int_eq(pg.next, 0);
	pg = (struct export_page){.after = 0, .limit = 10};
	ck_assert_int_eq(
	    store_export_list(m_st, 99, &pg, &to, m_err, sizeof(m_err)), -1);
	ck_assert_str_eq(m_err, "no list 99");
}
END_TEST

/* ---- Import ------------------------------------------------------------ */

static enum import_outcome
m_import(const char *phone, const char *email, const char *first,
    const json_t *tags, int64_t list, int64_t *member)
{
	struct member_fields f = {0};
	struct import_result res;

	f.set = MF_PHONE | MF_EMAIL | MF_FIRST_NAME | MF_TAGS | MF_ATTRS;
	f.phone = phone;
	f.email = email;
	f.first_name = first;
	f.tags = tags;
	ck_assert_msg(store_import_row(m_st, &f,
			  &(struct import_into){.list = list,
			      .detail = "signup sheet",
			      .now = M_T0},
			  &res, m_err, sizeof(m_err)) == 0,
	    "store_import_row: %s", m_err);
	if (member != NULL)
		*member = res.member;
	return res.outcome;
}

START_TEST(test_import_outcomes)
{
	json_t *t1 = json_pack("[s]", "vol");
	json_t *t2 = json_pack("[s,s]", "donor", "vol");
	struct member_fields f = {0};
	struct import_result res;
	bool changed;
	int64_t l;
	int64_t a = 0;
	int64_t b = 0;
	int64_t id;
	int64_t ev;
	int changes;

	l = m_list("one", "ONE", false);
	ck_assert_int_eq(
	    m_import("+15551230001", "a@example.org", "Ann", t1, l, &a),
	    IMPORT_CREATED);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM subscriptions WHERE"
				  " status = 'active'"),
	    2);
	ck_assert_str_eq(m_db_text("SELECT group_concat(channel || ':' ||"
				   " action || ':' || source || ':' || detail)"
				   " FROM consent_events"),
	    "sms:opt_in:import:signup sheet,email:opt_in:import:signup sheet");
	ev = m_events();
	/* The same row: nothing changes. */
	m_flush();
	changes = sqlite3_total_changes(store_db(m_st));
	ck_assert_int_eq(
	    m_import("+15551230001", "A@example.org", "Ann", t1, l, NULL),
	    IMPORT_UNCHANGED);
	ck_assert_int_eq(sqlite3_total_changes(store_db(m_st)), changes);
	ck_assert_int_eq(m_events(), ev);
	/* A new tag, an empty field (not cleared). */
	ck_assert_int_eq(m_import("+15551230001", NULL, NULL, t2, l, NULL),
	    IMPORT_UPDATED);
	ck_assert_str_eq(m_db_text("SELECT tags || first_name FROM members"),
	    "[\"vol\",\"donor\"]Ann");
	ck_assert_int_eq(m_import("+15551230001", NULL, NULL, t2, l, NULL),
	    IMPORT_UNCHANGED);
	/* Found by email, phone added: a new SMS subscription. */
	ck_assert_int_eq(m_import(NULL, "b@example.org", "Bo", NULL, 0, &b),
	    IMPORT_CREATED);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM subscriptions WHERE"
				  " member_id = 2"),
	    0);
	ck_assert_int_eq(
	    m_import("+15551230002", "b@example.org", NULL, NULL, l, &id),
	    IMPORT_UPDATED);
	ck_assert_int_eq(id, b);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM subscriptions WHERE"
				  " member_id = 2"),
	    2);
	/* Opted out wins: fields update, no subscription on SMS. */
	ck_assert_int_eq(m_import("+15551230003", NULL, "Cy", NULL, 0, &id),
	    IMPORT_CREATED);
	ck_assert_int_eq(store_member_optout_id(m_st,
			     &(struct consent_change){.member = id,
				 .ch = CHANNEL_SMS,
				 .source = CONSENT_KEYWORD,
				 .now = M_T0},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ev = m_events();
	ck_assert_int_eq(m_import("+15551230003", NULL, "Cyrus", NULL, l, NULL),
	    IMPORT_OPTED_OUT);
	ck_assert_str_eq(m_db_text("SELECT first_name FROM members WHERE"
				   " phone = '+15551230003'"),
	    "Cyrus");
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM subscriptions WHERE"
				  " member_id = 3"),
	    0);
	ck_assert_int_eq(m_events(), ev);
	ck_assert_int_eq(store_member_is_opted_out(m_st, id, CHANNEL_SMS, m_err,
			     sizeof(m_err)),
	    1);
	/* Left the list: not rejoined by an import. */
	ck_assert_int_eq(store_unsubscribe(m_st,
			     &(struct consent_change){.member = a,
				 .list = l,
				 .ch = CHANNEL_EMAIL,
				 .source = CONSENT_WEB,
				 .now = M_T0},
			     &changed, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(
	    m_import("+15551230001", "a@example.org", NULL, NULL, l, NULL),
	    IMPORT_OPTED_OUT);
	ck_assert_str_eq(m_db_text("SELECT status FROM subscriptions WHERE"
				   " member_id = 1 AND channel = 'email'"),
	    "left");
	/* Conflict: phone of one member, email of another. */
	ev = m_events();
	f.set = MF_PHONE | MF_EMAIL | MF_FIRST_NAME;
	f.phone = "+15551230001";
	f.email = "b@example.org";
	f.first_name = "Mixed";
	ck_assert_int_eq(
	    store_import_row(m_st, &f,
		&(struct import_into){.list = l, .detail = "x", .now = M_T0},
		&res, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(res.outcome, IMPORT_CONFLICT);
	ck_assert_str_eq(m_err,
	    "phone +15551230001 belongs to member 1 and "
	    "email b@example.org to member 2");
	ck_assert_int_eq(m_events(), ev);
	ck_assert_int_eq(m_db_int("SELECT count(*) FROM members WHERE"
				  " first_name = 'Mixed'"),
	    0);
	json_decref(t1);
	json_decref(t2);
}
END_TEST

START_TEST(test_import_attrs_merge)
{
	json_t *a1 = json_pack("{s:s, s:i}", "ward", "5", "age", 30);
	json_t *a2 = json_pack("{s:s}", "ward", "6");
	struct member_fields f = {0};
	struct import_result res;

	f.set = MF_PHONE | MF_ATTRS;
	f.phone = "+15551230001";
	f.attrs = a1;
	ck_assert_int_eq(
	    store_import_row(m_st, &f,
		&(struct import_into){.list = 0, .detail = NULL, .now = M_T0},
		&res, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(res.outcome, IMPORT_CREATED);
	ck_assert_int_eq(
	    store_import_row(m_st, &f,
		&(struct import_into){.list = 0, .detail = NULL, .now = M_T0},
		&res, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(res.outcome, IMPORT_UNCHANGED);
	f.attrs = a2;
	ck_assert_int_eq(
	    store_import_row(m_st, &f,
		&(struct import_into){.list = 0, .detail = NULL, .now = M_T0},
		&res, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(res.outcome, IMPORT_UPDATED);
	ck_assert_str_eq(m_db_text("SELECT attributes FROM members"),
	    "{\"ward\":\"6\",\"age\":30}");
	ck_assert_int_eq(
	    store_import_row(m_st, &f,
		&(struct import_into){.list = 0, .detail = NULL, .now = M_T0},
		&res, m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(res.outcome, IMPORT_UNCHANGED);
	json_decref(a1);
	json_decref(a2);
}
END_TEST

/* ---- Email bounces ------------------------------------------------------ */

START_TEST(test_bounce_threshold)
{
	struct msg_recipient r = {.ch = CHANNEL_SMS, .member = -1};
	struct queue_new q = {.channel = CHANNEL_EMAIL,
	    .to = "a@example.org",
	    .subject = "Hi",
	    .body = "hello",
	    .priority = 5};
	struct queue_stored qs = {0};

	m_create(NULL, "a@example.org", NULL);
	ck_assert_int_eq(store_email_failure(m_st, "A@example.org", 3, M_T0,
			     m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(store_email_failure(m_st, "a@example.org", 3, M_T0,
			     m_err, sizeof(m_err)),
	    0);
	/* A success resets the count. */
	ck_assert_int_eq(
	    store_email_success(m_st, "a@example.org", m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(m_db_int("SELECT email_failures FROM members"), 0);
	ck_assert_int_eq(queue_is_suppressed(m_st, CHANNEL_EMAIL,
			     "a@example.org", m_err, sizeof(m_err)),
	    0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(store_email_failure(m_st, "a@example.org", 3,
				     M_T0, m_err, sizeof(m_err)),
		    0);
	ck_assert_int_eq(store_email_failure(m_st, "a@example.org", 3, M_T0,
			     m_err, sizeof(m_err)),
	    1);
	ck_assert_int_eq(store_email_bouncing_count(m_st, m_err, sizeof(m_err)),
	    1);
	ck_assert_int_eq(queue_is_suppressed(m_st, CHANNEL_EMAIL,
			     "A@Example.org", m_err, sizeof(m_err)),
	    1);
	/* Unknown addresses are ignored. */
	ck_assert_int_eq(store_email_failure(m_st, "z@example.org", 1, M_T0,
			     m_err, sizeof(m_err)),
	    0);
	ck_assert_int_eq(store_email_bouncing_count(m_st, m_err, sizeof(m_err)),
	    1);
	/* The recipient of a message. */
	ck_assert_int_eq(
	    queue_enqueue(m_st, &q, M_T0, &qs, m_err, sizeof(m_err)), 0);
	ck_assert_int_eq(
	    store_message_recipient(m_st, qs.id, &r, m_err, sizeof(m_err)), 0);
	ck_assert(r.found);
	ck_assert_int_eq(r.ch, CHANNEL_EMAIL);
	ck_assert_str_eq(r.addr, "a@example.org");
	ck_assert_int_eq(r.member, 0);
	ck_assert_int_eq(
	    store_message_recipient(m_st, qs.id + 1, &r, m_err, sizeof(m_err)),
	    0);
	ck_assert(!r.found);
}
END_TEST

/* Timing of a large import (printed, not asserted): CK_RUN_CASE=timing. */
START_TEST(test_import_timing)
{
	struct member_fields f = {0};
	struct import_result res;
	struct timespec t0;
	struct timespec t1;
	struct timespec c0;
	struct timespec c1;
	char phone[32];
	char email[64];
	char name[32];
	int64_t l;
	int n =
	    getenv("OD_IMPORT_ROWS") ? atoi(getenv("OD_IMPORT_ROWS")) : 100000;
	int pass;
	int bad = 0;
	int i;

	l = m_list("big", "BIG", false);
	for (pass = 0; pass < 2; pass++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
		for (i = 0; i < n; i++) {
			snprintf(phone, sizeof(phone), "+1555%07d", i);
			snprintf(email, sizeof(email), "m%d@example.org", i);
			snprintf(name, sizeof(name), "Name%d", i);
			f.set = MF_PHONE | MF_EMAIL | MF_FIRST_NAME;
			f.phone = phone;
			f.email = email;
			f.first_name = name;
			/* No ck_assert per row: each one writes to Check's
			 * log, which would be most of what is measured. */
			if (store_import_row(m_st, &f,
				&(struct import_into){.list = l,
				    .detail = "bench",
				    .now = M_T0},
				&res, m_err, sizeof(m_err)) == -1 ||
			    res.outcome !=
				(pass == 0 ? IMPORT_CREATED : IMPORT_UNCHANGED))
				bad++;
		}
		m_flush();
		ck_assert_msg(bad == 0, "%d bad rows; last error: %s", bad,
		    m_err);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
		printf("import %d rows (%s): %.3f s wall, %.3f s CPU\n", n,
		    pass == 0 ? "new" : "rerun",
		    (double)(t1.tv_sec - t0.tv_sec) +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		    (double)(c1.tv_sec - c0.tv_sec) +
			(double)(c1.tv_nsec - c0.tv_nsec) / 1e9);
	}
}
END_TEST

Suite *
members_suite(void)
{
	Suite *s = suite_create("members");
	TCase *tc = tcase_create("store");
	TCase *tt;

	tcase_add_unchecked_fixture(tc, m_root_setup, m_root_teardown);
	tcase_add_checked_fixture(tc, m_setup, m_teardown);
	tcase_add_test(tc, test_member_create_conflict);
	tcase_add_test(tc, test_member_update_json);
	tcase_add_test(tc, test_member_email_change_clears_bouncing);
	tcase_add_test(tc, test_member_find_ensure_search);
	tcase_add_test(tc, test_optout_optin_events);
	tcase_add_test(tc, test_list_sync);
	tcase_add_test(tc, test_list_sync_move_adopt);
	tcase_add_test(tc, test_list_crud_json);
	tcase_add_test(tc, test_list_time_zone);
	tcase_add_test(tc, test_subscribe_flow);
	tcase_add_test(tc, test_list_members_json);
	tcase_add_test(tc, test_prompts);
	tcase_add_test(tc, test_inbound_link);
	tcase_add_test(tc, test_consent_json);
	tcase_add_test(tc, test_export_paging);
	tcase_add_test(tc, test_import_outcomes);
	tcase_add_test(tc, test_import_attrs_merge);
	tcase_add_test(tc, test_bounce_threshold);
	suite_add_tcase(s, tc);
	/* Only when asked: CK_RUN_CASE=timing. */
	if (getenv("CK_RUN_CASE") != NULL &&
	    strcmp(getenv("CK_RUN_CASE"), "timing") == 0) {
		tt = tcase_create("timing");
		tcase_add_unchecked_fixture(tt, m_root_setup, m_root_teardown);
		tcase_add_checked_fixture(tt, m_setup, m_teardown);
		tcase_set_timeout(tt, 120);
		tcase_add_test(tt, test_import_timing);
		suite_add_tcase(s, tt);
	}
	return s;
}
