/*
 * store_conversations.c - the staff inbox as stored
 * (store_conversations.h): listings with filters and a cursor, threads,
 * state changes, notes, saved replies and the full-text search.
 *
 * A listing is one static statement whose filters are all parameters
 * ("?3 IS NULL OR ..."), so no SQL is ever built from a request; it walks
 * conversations_activity backwards (newest activity first) and stops at
 * the page's end. One member's conversation has its own statement, which
 * finds it by member. The cursor is "<last_message_at>.<id>" of the page's last
 * row. The search runs through conversation_fts (schema 006), fed by
 * triggers on messages that carry a conversation.
 */
#include "autoconf.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "queue-internal.h"
#include "store_conversations.h"
#include "xmalloc.h"

/*
 * A CONV_SUMMARY row. ?1 now, ?2 stale_after (ms). Columns: 0 id,
 * 1 member id, 2 phone, 3 first name, 4 last name, 5 status, 6 assigned
 * staff, 7 staff name, 8 unread, 9 last_message_at, 10-12 last message
 * direction, body, status, 13 alert_id, 14 stale, 15 sender.
 */
#define CONV_SQL_SUMMARY                                                      \
	"SELECT c.id, mb.id, mb.phone, mb.first_name, mb.last_name,"          \
	" c.status, c.assigned_staff, s.name, c.unread, c.last_message_at,"   \
	" lm.direction, lm.body, lm.status, c.alert_id,"                      \
	" (c.status = 'open' AND c.last_in_at IS NOT NULL"                    \
	"  AND c.last_in_at > coalesce(c.last_out_at, 0)"                     \
	"  AND c.last_in_at <= ?1 - ?2), c.sender"                            \
	" FROM conversations c JOIN members mb ON mb.id = c.member_id"        \
	" LEFT JOIN staff s ON s.id = c.assigned_staff"                       \
	" LEFT JOIN messages lm ON lm.id = (SELECT max(x.id) FROM messages x" \
	"  WHERE x.conversation_id = c.id)"

static const char conv_sql_one[] = CONV_SQL_SUMMARY " WHERE c.id = ?3";
/*
 * The filters and the page of a listing: ?3 status, ?4 unread only, ?5
 * assigned kind (enum conv_assigned), ?6 staff, ?7 list, ?8 alert, ?9
 * stale only, ?10 FTS query, ?11 and ?12 the cursor (last_message_at,
 * id), ?13 limit. Each is "?N IS NULL OR ..." (or 0), so one statement
 * serves every combination; it walks conversations_activity backwards
 * and stops at the page's end.
 */
#define CONV_SQL_FILTERS                                                  \
	" AND (?3 IS NULL OR c.status = ?3)"                              \
	" AND (?4 = 0 OR c.unread > 0)"                                   \
	" AND (?5 = 0 OR (?5 = 1 AND c.assigned_staff IS NULL)"           \
	"  OR (?5 = 2 AND c.assigned_staff = ?6))"                        \
	" AND (?7 IS NULL OR EXISTS (SELECT 1 FROM subscriptions sb"      \
	"  WHERE sb.member_id = c.member_id AND sb.list_id = ?7"          \
	"  AND sb.status <> 'left'))"                                     \
	" AND (?8 IS NULL OR c.alert_id = ?8)"                            \
	" AND (?9 = 0 OR (c.status = 'open' AND c.last_in_at IS NOT NULL" \
	"  AND c.last_in_at > coalesce(c.last_out_at, 0)"                 \
	"  AND c.last_in_at <= ?1 - ?2))"                                 \
	" AND (?10 IS NULL OR c.id IN (SELECT fm.conversation_id"         \
	"  FROM conversation_fts f JOIN messages fm ON fm.id = f.rowid"   \
	"  WHERE conversation_fts MATCH ?10))"                            \
	" AND (?11 IS NULL OR c.last_message_at < ?11"                    \
	"  OR (c.last_message_at = ?11 AND c.id < ?12))"                  \
	" ORDER BY c.last_message_at DESC, c.id DESC LIMIT ?13"
static const char conv_sql_list[] =
    CONV_SQL_SUMMARY " WHERE 1" CONV_SQL_FILTERS;
/* One member's (?14), through conversations_member. */
static const char conv_sql_list_member[] =
    CONV_SQL_SUMMARY " WHERE c.member_id = ?14" CONV_SQL_FILTERS;

/* A thread: messages and notes, newest first (reversed in C). */
static const char conv_sql_items[] =
    "SELECT 'message', m.id, m.direction, m.channel, m.body, m.status,"
    " m.created_at, m.updated_at, m.error_code, m.error_text, m.staff_id,"
    " s.name FROM messages m LEFT JOIN staff s ON s.id = m.staff_id"
    " WHERE m.conversation_id = ?1"
    " UNION ALL SELECT 'note', n.id, NULL, NULL, n.body, NULL, n.created_at,"
    " NULL, NULL, NULL, n.staff_id, s.name FROM conversation_notes n"
    " LEFT JOIN staff s ON s.id = n.staff_id WHERE n.conversation_id = ?1"
    " ORDER BY 7 DESC, 1 DESC, 2 DESC LIMIT ?2";

static const char conv_sql_assign[] =
    "UPDATE conversations SET assigned_staff = ?2, updated_at = ?3"
    " WHERE id = ?1";
static const char conv_sql_close[] =
    "UPDATE conversations SET status = 'closed', updated_at = ?3"
    " WHERE id = ?1";
static const char conv_sql_reopen[] =
    "UPDATE conversations SET status = 'open', updated_at = ?3"
    " WHERE id = ?1";
static const char conv_sql_read[] =
    "UPDATE conversations SET unread = 0, updated_at = ?3 WHERE id = ?1";
static const char conv_sql_replied[] =
    "UPDATE conversations SET unread = 0, last_out_at = ?3,"
    " last_message_at = ?3, updated_at = ?3 WHERE id = ?1";
static const char conv_sql_staff[] = "SELECT 1 FROM staff WHERE id = ?1";
static const char conv_sql_exists[] =
    "SELECT 1 FROM conversations WHERE id = ?1";

static const char conv_sql_note_add[] =
    "INSERT INTO conversation_notes (conversation_id, staff_id, body,"
    " created_at) VALUES (?1, ?2, ?3, ?4)";
static const char conv_sql_note[] =
    "SELECT 'note', n.id, NULL, NULL, n.body, NULL, n.created_at, NULL,"
    " NULL, NULL, n.staff_id, s.name FROM conversation_notes n"
    " LEFT JOIN staff s ON s.id = n.staff_id WHERE n.id = ?1";

/* The member's number and opt-out, the sender they last texted, and the
 * sender of a list they are active on (the oldest such list). */
static const char conv_sql_target[] =
    "SELECT mb.id, mb.phone, c.sender, (SELECT l.sender FROM subscriptions sb"
    "  JOIN lists l ON l.id = sb.list_id WHERE sb.member_id = mb.id"
    "  AND sb.channel = 'sms' AND sb.status = 'active'"
    "  AND l.sender IS NOT NULL ORDER BY l.id LIMIT 1),"
    " EXISTS (SELECT 1 FROM sms_optout o WHERE o.member_id = mb.id)"
    " FROM conversations c JOIN members mb ON mb.id = c.member_id"
    " WHERE c.id = ?1";

static const char conv_sql_saved_all[] =
    "SELECT id, name, body FROM saved_replies ORDER BY name, id";
static const char conv_sql_saved_one[] =
    "SELECT id, name, body FROM saved_replies WHERE id = ?1";
static const char conv_sql_saved_name[] =
    "SELECT id FROM saved_replies WHERE name = ?1 AND id IS NOT ?2";
static const char conv_sql_saved_add[] =
    "INSERT INTO saved_replies (name, body, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?3)";
static const char conv_sql_saved_set[] =
    "UPDATE saved_replies SET name = coalesce(?2, name),"
    " body = coalesce(?3, body), updated_at = ?4 WHERE id = ?1";
static const char conv_sql_saved_del[] =
    "DELETE FROM saved_replies WHERE id = ?1";

/* ---- JSON of rows ------------------------------------------------------- */

/* {"id", "name"} of staff column col (name at col + 1), or null. */
static json_t *
conv_staff_json(sqlite3_stmt *stmt, int col)
{
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return json_null();
	return json_pack("{s:I, s:o}", "id",
	    (json_int_t)sqlite3_column_int64(stmt, col), "name",
	    queue_json_text(stmt, col + 1));
}

/* A CONV_SUMMARY of the current row of a CONV_SQL_SUMMARY statement. */
static json_t *
conv_summary_row(sqlite3_stmt *stmt)
{
	json_t *o = json_object(), *last = json_null();

	json_object_set_new(o, "id", queue_json_int(stmt, 0));
	json_object_set_new(o, "member",
	    json_pack("{s:o, s:o, s:o, s:o}", "id", queue_json_int(stmt, 1),
		"phone", queue_json_text(stmt, 2), "first_name",
		queue_json_text(stmt, 3), "last_name",
		queue_json_text(stmt, 4)));
	json_object_set_new(o, "status", queue_json_text(stmt, 5));
	json_object_set_new(o, "assigned", conv_staff_json(stmt, 6));
	json_object_set_new(o, "unread", queue_json_int(stmt, 8));
	json_object_set_new(o, "last_message_at", queue_json_time(stmt, 9));
	if (sqlite3_column_type(stmt, 10) != SQLITE_NULL)
		last = json_pack("{s:o, s:o, s:o}", "direction",
		    queue_json_text(stmt, 10), "body",
		    queue_json_text(stmt, 11), "status",
		    queue_json_text(stmt, 12));
	json_object_set_new(o, "last_message", last);
	json_object_set_new(o, "alert_id", queue_json_int(stmt, 13));
	json_object_set_new(o, "stale",
	    json_boolean(sqlite3_column_int(stmt, 14) != 0));
	return o;
}

/* A thread item of the current row of conv_sql_items / conv_sql_note. */
static json_t *
conv_item_row(sqlite3_stmt *stmt)
{
	const char *kind = (const char *)sqlite3_column_text(stmt, 0);
	json_t *o = json_object();

	json_object_set_new(o, "kind", json_string(kind));
	json_object_set_new(o, "id", queue_json_int(stmt, 1));
	if (strcmp(kind, "note") == 0) {
		json_object_set_new(o, "body", queue_json_text(stmt, 4));
		json_object_set_new(o, "staff", conv_staff_json(stmt, 10));
		json_object_set_new(o, "created_at", queue_json_time(stmt, 6));
		return o;
	}
	json_object_set_new(o, "direction", queue_json_text(stmt, 2));
	json_object_set_new(o, "channel", queue_json_text(stmt, 3));
	json_object_set_new(o, "body", queue_json_text(stmt, 4));
	json_object_set_new(o, "status", queue_json_text(stmt, 5));
	json_object_set_new(o, "created_at", queue_json_time(stmt, 6));
	json_object_set_new(o, "updated_at", queue_json_time(stmt, 7));
	json_object_set_new(o, "error_code", queue_json_int(stmt, 8));
	json_object_set_new(o, "error_text", queue_json_text(stmt, 9));
	json_object_set_new(o, "staff", conv_staff_json(stmt, 10));
	return o;
}

/* ---- Reads --------------------------------------------------------------- */

/* Binds ?1 now and ?2 stale_after of a CONV_SQL_SUMMARY statement. */
static void
conv_bind_clock(sqlite3_stmt *stmt, const struct conv_clock *clock)
{
	sqlite3_bind_int64(stmt, 1, clock->now);
	sqlite3_bind_int64(stmt, 2, clock->stale_after_ms);
}

/* The summary of conversation id; *sender (may be NULL) gets its sender. */
static json_t *
conv_summary(struct store *st, int64_t id, const struct conv_clock *clock,
    json_t **sender, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *o = NULL;
	int rc;

	err[0] = '\0';
	if ((stmt = store_stmt(st, conv_sql_one, err, errlen)) == NULL)
		return NULL;
	conv_bind_clock(stmt, clock);
	sqlite3_bind_int64(stmt, 3, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		o = conv_summary_row(stmt);
		if (sender != NULL)
			*sender = queue_json_text(stmt, 15);
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "read conversation", err, errlen);
	sqlite3_reset(stmt);
	return o;
}

json_t *
store_conv_summary(struct store *st, int64_t id, const struct conv_clock *clock,
    char *err, size_t errlen)
{
	return conv_summary(st, id, clock, NULL, err, errlen);
}

json_t *
store_conv_thread(struct store *st, int64_t id, const struct conv_clock *clock,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *o, *items, *sender = NULL;
	int rc;

	if ((o = conv_summary(st, id, clock, &sender, err, errlen)) == NULL)
		return NULL;
	json_object_set_new(o, "sender", sender);
	if ((stmt = store_stmt(st, conv_sql_items, err, errlen)) == NULL) {
		json_decref(o);
		return NULL;
	}
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int(stmt, 2, CONV_THREAD_MAX_ITEMS);
	items = json_array();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		json_array_insert_new(items, 0, conv_item_row(stmt));
	if (rc != SQLITE_DONE)
		store_errmsg(st, "read thread", err, errlen);
	sqlite3_reset(stmt);
	json_object_set_new(o, "items", items);
	if (rc != SQLITE_DONE) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Parses a cursor "<last_message_at>.<id>": 0 / -1. */
static int
conv_cursor_parse(const char *s, int64_t *at, int64_t *id)
{
	char *end;
	long long a, b;

	if (!isdigit((unsigned char)*s))
		return -1;
	a = strtoll(s, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return -1;
	b = strtoll(end + 1, &end, 10);
	if (*end != '\0' || a < 0 || b <= 0 || a == LLONG_MAX || b == LLONG_MAX)
		return -1;
	*at = a;
	*id = b;
	return 0;
}

/* Binds the filters of q (?3 to ?13, and ?14 of conv_sql_list_member). */
static int
conv_list_bind(sqlite3_stmt *stmt, struct conv_query *q, char *fts,
    size_t ftslen, char *err, size_t errlen)
{
	int64_t at = 0, id = 0;

	conv_bind_clock(stmt, &q->clock);
	queue_bind_text(stmt, 3, q->status);
	sqlite3_bind_int(stmt, 4, q->unread ? 1 : 0);
	sqlite3_bind_int(stmt, 5, (int)q->assigned);
	sqlite3_bind_int64(stmt, 6, q->staff);
	queue_bind_id(stmt, 7, q->list_id);
	queue_bind_id(stmt, 8, q->alert_id);
	sqlite3_bind_int(stmt, 9, q->stale ? 1 : 0);
	if (q->q != NULL) {
		if (store_conv_fts_query(q->q, fts, ftslen) == -1) {
			snprintf(err, errlen,
			    "q: at most %d bytes of words to search for",
			    CONV_SEARCH_MAX);
			q->invalid = true;
			return -1;
		}
		sqlite3_bind_text(stmt, 10, fts, -1, SQLITE_STATIC);
	}
	if (q->after != NULL) {
		if (conv_cursor_parse(q->after, &at, &id) == -1) {
			snprintf(err, errlen,
			    "after: not a cursor (use the \"next\" of the "
			    "previous page)");
			q->invalid = true;
			return -1;
		}
		sqlite3_bind_int64(stmt, 11, at);
		sqlite3_bind_int64(stmt, 12, id);
	}
	sqlite3_bind_int(stmt, 13, (int)q->limit);
	if (q->member_id != 0)
		sqlite3_bind_int64(stmt, 14, q->member_id);
	return 0;
}

json_t *
store_conv_list(struct store *st, struct conv_query *q, char *err,
    size_t errlen)
{
	char fts[CONV_SEARCH_MAX * 3 + 16], next[48];
	sqlite3_stmt *stmt;
	json_t *list, *o;
	int64_t last_at = 0, last_id = 0;
	unsigned n = 0;
	int rc;

	q->invalid = false;
	if ((stmt = store_stmt(st,
		 q->member_id != 0 ? conv_sql_list_member : conv_sql_list, err,
		 errlen)) == NULL)
		return NULL;
	if (conv_list_bind(stmt, q, fts, sizeof(fts), err, errlen) == -1) {
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
		return NULL;
	}
	list = json_array();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		json_array_append_new(list, conv_summary_row(stmt));
		last_id = sqlite3_column_int64(stmt, 0);
		last_at = sqlite3_column_int64(stmt, 9);
		n++;
	}
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "list conversations", err, errlen);
		/* quoting leaves no syntax to refuse; should FTS5 still
		 * balk at a query, that is the asker's, not the store's */
		if (q->q != NULL &&
		    sqlite3_errcode(store_db(st)) == SQLITE_ERROR &&
		    strstr(err, "fts5") != NULL)
			q->invalid = true;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return NULL;
	}
	o = json_pack("{s:o}", "conversations", list);
	if (n == q->limit && n > 0) {
		snprintf(next, sizeof(next), "%" PRId64 ".%" PRId64, last_at,
		    last_id);
		json_object_set_new(o, "next", json_string(next));
	} else
		json_object_set_new(o, "next", json_null());
	return o;
}

/* ---- Writes -------------------------------------------------------------- */

/* Runs a one-row write on ?1 id: 1 if it changed a row, 0 if none, -1. */
static int
conv_update(struct store *st, sqlite3_stmt *stmt, const char *what, char *err,
    size_t errlen)
{
	if (queue_step_done(st, stmt, what, err, errlen) == -1)
		return -1;
	return sqlite3_changes(store_db(st)) > 0 ? 1 : 0;
}

int
store_conv_change(struct store *st, int64_t id, const struct conv_change *c,
    char *err, size_t errlen)
{
	static const char *const sql[] = {
	    [CONV_OP_ASSIGN] = conv_sql_assign,
	    [CONV_OP_CLOSE] = conv_sql_close,
	    [CONV_OP_REOPEN] = conv_sql_reopen,
	    [CONV_OP_READ] = conv_sql_read,
	    [CONV_OP_REPLIED] = conv_sql_replied,
	};
	sqlite3_stmt *stmt;

	if ((unsigned)c->op >= sizeof(sql) / sizeof(sql[0])) {
		snprintf(err, errlen, "conversation: unknown change %d",
		    (int)c->op);
		return -1;
	}
	if (store_write_begin(st, err, errlen) == -1 ||
	    (stmt = store_stmt(st, sql[c->op], err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	if (c->op == CONV_OP_ASSIGN)
		queue_bind_id(stmt, 2, c->staff);
	sqlite3_bind_int64(stmt, 3, c->now);
	return conv_update(st, stmt, "update conversation", err, errlen);
}

/* 1 if the one-id query 'sql' has a row for id, 0 if not, -1. */
static int
conv_exists(struct store *st, const char *sql, int64_t id, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t one;
	bool found;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	if (queue_int_row(st, stmt, &one, &found, err, errlen) == -1)
		return -1;
	return found ? 1 : 0;
}

int
store_conv_staff_exists(struct store *st, int64_t id, char *err, size_t errlen)
{
	return conv_exists(st, conv_sql_staff, id, err, errlen);
}

int64_t
store_conv_note_add(struct store *st, const struct conv_note *n, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	if ((rc = conv_exists(st, conv_sql_exists, n->conversation, err,
		 errlen)) != 1)
		return rc;
	if (store_write_begin(st, err, errlen) == -1 ||
	    (stmt = store_stmt(st, conv_sql_note_add, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, n->conversation);
	queue_bind_id(stmt, 2, n->staff);
	queue_bind_text(stmt, 3, n->body);
	sqlite3_bind_int64(stmt, 4, n->now);
	if (queue_step_done(st, stmt, "add note", err, errlen) == -1)
		return -1;
	return sqlite3_last_insert_rowid(store_db(st));
}

/* The JSON of the one row 'sql' has for id (row() makes it); NULL if
 * none (err empty) or on error. */
static json_t *
conv_one(struct store *st, const char *sql, int64_t id,
    json_t *(*row)(sqlite3_stmt *), char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *o = NULL;
	int rc;

	err[0] = '\0';
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		o = row(stmt);
	else if (rc != SQLITE_DONE)
		store_errmsg(st, "read row", err, errlen);
	sqlite3_reset(stmt);
	return o;
}

json_t *
store_conv_note_json(struct store *st, int64_t id, char *err, size_t errlen)
{
	return conv_one(st, conv_sql_note, id, conv_item_row, err, errlen);
}

/* Copies text column col into out ("" for NULL or too long). */
static void
conv_col_copy(sqlite3_stmt *stmt, int col, char *out, size_t outlen)
{
	const unsigned char *s = sqlite3_column_text(stmt, col);

	out[0] = '\0';
	if (s != NULL && strlen((const char *)s) < outlen)
		strlcpy(out, (const char *)s, outlen);
}

int
store_conv_target(struct store *st, int64_t id, struct conv_target *t,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	memset(t, 0, sizeof(*t));
	if ((stmt = store_stmt(st, conv_sql_target, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		t->member = sqlite3_column_int64(stmt, 0);
		conv_col_copy(stmt, 1, t->phone, sizeof(t->phone));
		conv_col_copy(stmt, 2, t->sender, sizeof(t->sender));
		conv_col_copy(stmt, 3, t->list_sender, sizeof(t->list_sender));
		t->sms_opted_out = sqlite3_column_int(stmt, 4) != 0;
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "read conversation", err, errlen);
	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- Saved replies ------------------------------------------------------- */

static json_t *
conv_saved_row(sqlite3_stmt *stmt)
{
	return json_pack("{s:o, s:o, s:o}", "id", queue_json_int(stmt, 0),
	    "name", queue_json_text(stmt, 1), "body", queue_json_text(stmt, 2));
}

json_t *
store_saved_replies_json(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *list;
	int rc;

	if ((stmt = store_stmt(st, conv_sql_saved_all, err, errlen)) == NULL)
		return NULL;
	list = json_array();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		json_array_append_new(list, conv_saved_row(stmt));
	if (rc != SQLITE_DONE)
		store_errmsg(st, "list saved replies", err, errlen);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:o}", "saved_replies", list);
}

json_t *
store_saved_reply_json(struct store *st, int64_t id, char *err, size_t errlen)
{
	return conv_one(st, conv_sql_saved_one, id, conv_saved_row, err,
	    errlen);
}

char *
store_saved_reply_body(struct store *st, int64_t id, char *err, size_t errlen)
{
	json_t *o = store_saved_reply_json(st, id, err, errlen);
	const char *body;
	char *s = NULL;

	if (o == NULL)
		return NULL;
	if ((body = json_string_value(json_object_get(o, "body"))) != NULL)
		s = xstrdup(body);
	else
		snprintf(err, errlen,
		    "saved reply %" PRId64 ": body is not "
		    "UTF-8",
		    id);
	json_decref(o);
	return s;
}

/*
 * 0 if no saved reply but 'self' (0 = none) is called r->name; else -1,
 * with r->conflict set when one is (the message in err either way).
 */
static int
conv_saved_name_free(struct store *st, struct saved_reply *r, int64_t self,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t other;
	bool found;

	r->conflict = false;
	if ((stmt = store_stmt(st, conv_sql_saved_name, err, errlen)) == NULL)
		return -1;
	queue_bind_text(stmt, 1, r->name);
	queue_bind_id(stmt, 2, self);
	if (queue_int_row(st, stmt, &other, &found, err, errlen) == -1)
		return -1;
	if (!found)
		return 0;
	r->conflict = true;
	snprintf(err, errlen, "name: a saved reply is already called '%s'",
	    r->name);
	return -1;
}

int64_t
store_saved_reply_create(struct store *st, struct saved_reply *r, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;

	if (conv_saved_name_free(st, r, 0, err, errlen) == -1)
		return -1;
	if (store_write_begin(st, err, errlen) == -1 ||
	    (stmt = store_stmt(st, conv_sql_saved_add, err, errlen)) == NULL)
		return -1;
	queue_bind_text(stmt, 1, r->name);
	queue_bind_text(stmt, 2, r->body);
	sqlite3_bind_int64(stmt, 3, r->now);
	if (queue_step_done(st, stmt, "add saved reply", err, errlen) == -1)
		return -1;
	return sqlite3_last_insert_rowid(store_db(st));
}

int
store_saved_reply_update(struct store *st, int64_t id, struct saved_reply *r,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	r->conflict = false;
	if (r->name != NULL &&
	    conv_saved_name_free(st, r, id, err, errlen) == -1)
		return -1;
	if (store_write_begin(st, err, errlen) == -1 ||
	    (stmt = store_stmt(st, conv_sql_saved_set, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	queue_bind_text(stmt, 2, r->name);
	queue_bind_text(stmt, 3, r->body);
	sqlite3_bind_int64(stmt, 4, r->now);
	return conv_update(st, stmt, "update saved reply", err, errlen);
}

int
store_saved_reply_delete(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (stmt = store_stmt(st, conv_sql_saved_del, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	return conv_update(st, stmt, "delete saved reply", err, errlen);
}

/* ---- Search text --------------------------------------------------------- */

/* Appends s[0..n) as one FTS5 string ("" doubled), then '*' if prefix. */
static int
conv_fts_phrase(const char *s, size_t n, bool prefix, char *out, size_t outlen,
    size_t *len)
{
	size_t i;

	if (*len + n * 2 + 5 > outlen)
		return -1;
	if (*len > 0)
		out[(*len)++] = ' ';
	out[(*len)++] = '"';
	for (i = 0; i < n; i++) {
		if (s[i] == '"')
			out[(*len)++] = '"';
		out[(*len)++] = s[i];
	}
	out[(*len)++] = '"';
	if (prefix)
		out[(*len)++] = '*';
	out[*len] = '\0';
	return 0;
}

int
store_conv_fts_query(const char *text, char *out, size_t outlen)
{
	const char *p = text, *s;
	size_t len = 0;
	bool quoted;

	if (outlen == 0 || strlen(text) > CONV_SEARCH_MAX)
		return -1;
	out[0] = '\0';
	while (*p != '\0') {
		while (*p != '\0' && isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		/* "a phrase" (an unclosed quote runs to the end) */
		if ((quoted = *p == '"'))
			p++;
		for (s = p; *p != '\0' &&
		     (quoted ? *p != '"' : !isspace((unsigned char)*p));
		     p++)
			;
		if (p > s &&
		    conv_fts_phrase(s, (size_t)(p - s), !quoted, out, outlen,
			&len) == -1)
			return -1;
		if (quoted && *p == '"')
			p++;
	}
	/* no word at all ('"', "  "): an empty phrase, which matches
	 * nothing */
	if (len == 0)
		return conv_fts_phrase("", 0, false, out, outlen, &len);
	return 0;
}
