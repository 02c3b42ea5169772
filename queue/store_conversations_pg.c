/*
 * store_conversations_pg.c - the staff inbox on the PostgreSQL store
 * (store_conversations_pg.h): listings, threads, state changes, notes and
 * replies as operations answered through callbacks.
 *
 * DESIGN
 *
 * The statements are store_conversations.c's, translated (doc/
 * postgresql.md): "?N" becomes "$N::type", FTS5 becomes the GIN index
 * conversation_fts on to_tsvector('od_search', body) of the messages
 * that carry a conversation. The listing keeps its one static statement
 * whose filters are all parameters; it is sent with PQsendQueryParams()
 * (an unnamed statement, planned with the values given), so "$N IS NULL
 * OR ..." folds away and the search term is a constant the GIN index is
 * used for. No SQL is ever built from a request: the search text becomes
 * a tsquery text (store_conv_tsquery(): every word quoted) passed as a
 * parameter.
 *
 * Reads go on store_pg_conn(), outside the group: they need no
 * transaction and must not fail one. A thread is two statements (the
 * summary, the items) pipelined together and answered when both are in.
 *
 * Writes are one statement each in the node's group (store_pg_group_send()),
 * answered from the group's commit callback, written so that no expected
 * case raises an error (which would abort every write of the group):
 *  - a state change is an UPDATE ... RETURNING; a missing conversation is
 *    no row back. An assign checks its staff member in the same
 *    statement, as SQLite checks it before the write.
 *  - a note is INSERT ... SELECT from the conversation's row: none when
 *    it does not exist.
 *  - a reply is queue_pg.c's enqueue (INSERT ... ON CONFLICT
 *    (idempotency_key) DO NOTHING RETURNING id, its history row) with the
 *    conversation's CONV_OP_REPLIED update in the same statement, done
 *    only when the insert made a row: a retried reply, on any node,
 *    changes nothing. As in queue_pg.c, the first message of a key used
 *    before is not in the statement's snapshot; it is read after the
 *    commit, outside the group.
 */
#include "autoconf.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compat.h"
#include "message.h"
#include "queue-internal.h"
#include "queue.h"
#include "store-internal.h"
#include "store_conversations_pg.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"

/*
 * A CONV_SUMMARY row, as store_conversations.c's: $1 now, $2
 * stale_after (ms). Columns: 0 id, 1 member id, 2 phone, 3 first name,
 * 4 last name, 5 status, 6 assigned staff, 7 staff name, 8 unread,
 * 9 last_message_at, 10-12 last message direction, body, status,
 * 13 alert_id, 14 stale, 15 sender.
 */
#define SCP_SQL_SUMMARY                                                       \
	"SELECT c.id, mb.id, mb.phone, mb.first_name, mb.last_name,"          \
	" c.status, c.assigned_staff, s.name, c.unread, c.last_message_at,"   \
	" lm.direction, lm.body, lm.status, c.alert_id,"                      \
	" (c.status = 'open' AND c.last_in_at IS NOT NULL"                    \
	"  AND c.last_in_at > coalesce(c.last_out_at, 0)"                     \
	"  AND c.last_in_at <= $1::bigint - $2::bigint), c.sender"            \
	" FROM conversations c JOIN members mb ON mb.id = c.member_id"        \
	" LEFT JOIN staff s ON s.id = c.assigned_staff"                       \
	" LEFT JOIN messages lm ON lm.id = (SELECT max(x.id) FROM messages x" \
	"  WHERE x.conversation_id = c.id)"

static const char scp_sql_one[] = SCP_SQL_SUMMARY " WHERE c.id = $3::bigint";

/*
 * A listing: $3 status, $4 unread only, $5 assigned kind (enum
 * conv_assigned), $6 staff, $7 list, $8 alert, $9 stale only, $10 the
 * tsquery text ("" matches nothing), $11 and $12 the cursor
 * (last_message_at, id), $13 limit, $14 member.
 */
static const char scp_sql_list[] = SCP_SQL_SUMMARY
    " WHERE ($14::bigint IS NULL OR c.member_id = $14::bigint)"
    " AND ($3::text IS NULL OR c.status = $3::text)"
    " AND ($4::int = 0 OR c.unread > 0)"
    " AND ($5::int = 0 OR ($5::int = 1 AND c.assigned_staff IS NULL)"
    "  OR ($5::int = 2 AND c.assigned_staff = $6::bigint))"
    " AND ($7::bigint IS NULL OR EXISTS (SELECT 1 FROM subscriptions sb"
    "  WHERE sb.member_id = c.member_id AND sb.list_id = $7::bigint"
    "  AND sb.status <> 'left'))"
    " AND ($8::bigint IS NULL OR c.alert_id = $8::bigint)"
    " AND ($9::int = 0 OR (c.status = 'open' AND c.last_in_at IS NOT NULL"
    "  AND c.last_in_at > coalesce(c.last_out_at, 0)"
    "  AND c.last_in_at <= $1::bigint - $2::bigint))"
    " AND ($10::text IS NULL OR ($10::text <> '' AND c.id IN"
    "  (SELECT fm.conversation_id FROM messages fm"
    "  WHERE fm.conversation_id IS NOT NULL"
    "  AND to_tsvector('od_search', fm.body)"
    "  @@ to_tsquery('od_search', $10::text))))"
    " AND ($11::bigint IS NULL OR c.last_message_at < $11::bigint"
    "  OR (c.last_message_at = $11::bigint AND c.id < $12::bigint))"
    " ORDER BY c.last_message_at DESC, c.id DESC LIMIT $13::bigint";

/* A thread's messages and notes, newest first (reversed in C). */
static const char scp_sql_items[] =
    "SELECT 'message', m.id, m.direction, m.channel, m.body, m.status,"
    " m.created_at, m.updated_at, m.error_code, m.error_text, m.staff_id,"
    " s.name FROM messages m LEFT JOIN staff s ON s.id = m.staff_id"
    " WHERE m.conversation_id = $1::bigint"
    " UNION ALL SELECT 'note', n.id, NULL, NULL, n.body, NULL, n.created_at,"
    " NULL, NULL, NULL, n.staff_id, s.name FROM conversation_notes n"
    " LEFT JOIN staff s ON s.id = n.staff_id"
    " WHERE n.conversation_id = $1::bigint"
    " ORDER BY 7 DESC, 1 DESC, 2 DESC LIMIT $2::bigint";

static const char scp_sql_note[] =
    "SELECT 'note', n.id, NULL, NULL, n.body, NULL, n.created_at, NULL,"
    " NULL, NULL, n.staff_id, s.name FROM conversation_notes n"
    " LEFT JOIN staff s ON s.id = n.staff_id WHERE n.id = $1::bigint";

/* As store_conversations.c's conv_sql_target. */
static const char scp_sql_target[] =
    "SELECT mb.id, mb.phone, c.sender, (SELECT l.sender FROM subscriptions sb"
    "  JOIN lists l ON l.id = sb.list_id WHERE sb.member_id = mb.id"
    "  AND sb.channel = 'sms' AND sb.status = 'active'"
    "  AND l.sender IS NOT NULL ORDER BY l.id LIMIT 1),"
    " EXISTS (SELECT 1 FROM sms_optout o WHERE o.member_id = mb.id)"
    " FROM conversations c JOIN members mb ON mb.id = c.member_id"
    " WHERE c.id = $1::bigint";

/*
 * The state changes: $1 id, $2 staff (assign; NULL = the pool), $3 now.
 * Each answers (conversation changed, staff found).
 */
static const char scp_sql_assign[] =
    "WITH s AS MATERIALIZED (SELECT $2::bigint IS NULL OR EXISTS"
    " (SELECT 1 FROM staff WHERE id = $2::bigint) AS ok),"
    " u AS (UPDATE conversations SET assigned_staff = $2::bigint,"
    " updated_at = $3::bigint WHERE id = $1::bigint"
    " AND (SELECT ok FROM s) RETURNING id)"
    " SELECT EXISTS (SELECT 1 FROM conversations WHERE id = $1::bigint),"
    " (SELECT ok FROM s)";
static const char scp_sql_close[] =
    "WITH u AS (UPDATE conversations SET status = 'closed',"
    " updated_at = $3::bigint WHERE id = $1::bigint AND $2::bigint IS NULL"
    " RETURNING id) SELECT EXISTS (SELECT 1 FROM u), true";
static const char scp_sql_reopen[] =
    "WITH u AS (UPDATE conversations SET status = 'open',"
    " updated_at = $3::bigint WHERE id = $1::bigint AND $2::bigint IS NULL"
    " RETURNING id) SELECT EXISTS (SELECT 1 FROM u), true";
static const char scp_sql_read[] =
    "WITH u AS (UPDATE conversations SET unread = 0,"
    " updated_at = $3::bigint WHERE id = $1::bigint AND $2::bigint IS NULL"
    " RETURNING id) SELECT EXISTS (SELECT 1 FROM u), true";
static const char scp_sql_replied[] =
    "WITH u AS (UPDATE conversations SET unread = 0,"
    " last_out_at = $3::bigint, last_message_at = $3::bigint,"
    " updated_at = $3::bigint WHERE id = $1::bigint AND $2::bigint IS NULL"
    " RETURNING id) SELECT EXISTS (SELECT 1 FROM u), true";

/* $1 conversation, $2 staff (NULL), $3 body, $4 now: the note's id. */
static const char scp_sql_note_add[] =
    "INSERT INTO conversation_notes (conversation_id, staff_id, body,"
    " created_at) SELECT id, $2::bigint, $3::text, $4::bigint"
    " FROM conversations WHERE id = $1::bigint RETURNING id";

/*
 * A reply (queue_pg.c's enqueue, SMS only) and the conversation marked
 * replied when the message is new: $1 member, $2 sender, $3 to, $4 from,
 * $5 body, $6 priority, $7 next_attempt_at, $8 conversation, $9 key, $10
 * not_before, $11 expires_at, $12 now, $13 encoding, $14 segments, $15
 * staff. Answers the new message's id, or no row (the key was used).
 */
static const char scp_sql_reply[] =
    "WITH ins AS (INSERT INTO messages (direction, channel, member_id,"
    " sender, to_addr, from_addr, body, status, priority, next_attempt_at,"
    " conversation_id, idempotency_key, not_before, expires_at, created_at,"
    " updated_at, encoding, segments, optout_exempt, staff_id)"
    " VALUES ('out', 'sms', $1::bigint, $2::text, $3::text, $4::text,"
    " $5::text, 'queued', $6::bigint, $7::bigint, $8::bigint, $9::text,"
    " $10::bigint, $11::bigint, $12::bigint, $12::bigint, $13::text,"
    " $14::bigint, 0, $15::bigint)"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id),"
    " ev AS (INSERT INTO message_events (message_id, status, created_at)"
    " SELECT id, 'queued', $12::bigint FROM ins),"
    " cu AS (UPDATE conversations SET unread = 0, last_out_at = $12::bigint,"
    " last_message_at = $12::bigint, updated_at = $12::bigint"
    " WHERE id = $8::bigint AND EXISTS (SELECT 1 FROM ins))"
    " SELECT id FROM ins";
static const char scp_sql_by_key[] =
    "SELECT id FROM messages WHERE idempotency_key = $1::text";

/* Every saved reply's write takes it first (see the header). */
#define SCP_SAVED_LOCK "SELECT pg_advisory_xact_lock(1868, 6)"

static const char scp_sql_saved_all[] =
    "SELECT id, name, body FROM saved_replies ORDER BY name, id";
static const char scp_sql_saved_one[] =
    "SELECT id, name, body FROM saved_replies WHERE id = $1::bigint";
/*
 * The writes: $1 id (a create: NULL), $2 name (NULL: unchanged), $3 body
 * (NULL: unchanged), $4 now. Each answers (the id written or NULL, the
 * name taken by another, the reply exists).
 */
static const char scp_sql_saved_add[] =
    "WITH c AS MATERIALIZED (SELECT 1 FROM saved_replies"
    " WHERE name = $2::text AND $1::bigint IS NULL),"
    " i AS (INSERT INTO saved_replies (name, body, created_at, updated_at)"
    " SELECT $2::text, $3::text, $4::bigint, $4::bigint"
    " WHERE NOT EXISTS (SELECT 1 FROM c) RETURNING id)"
    " SELECT (SELECT id FROM i), EXISTS (SELECT 1 FROM c),"
    " EXISTS (SELECT 1 FROM i)";
static const char scp_sql_saved_set[] =
    "WITH c AS MATERIALIZED (SELECT 1 FROM saved_replies"
    " WHERE $2::text IS NOT NULL AND name = $2::text AND id <> $1::bigint),"
    " u AS (UPDATE saved_replies SET name = coalesce($2::text, name),"
    " body = coalesce($3::text, body), updated_at = $4::bigint"
    " WHERE id = $1::bigint AND NOT EXISTS (SELECT 1 FROM c) RETURNING id)"
    " SELECT (SELECT id FROM u), EXISTS (SELECT 1 FROM c),"
    " EXISTS (SELECT 1 FROM saved_replies WHERE id = $1::bigint)";
static const char scp_sql_saved_del[] =
    "WITH d AS (DELETE FROM saved_replies WHERE id = $1::bigint"
    " AND $2::text IS NULL AND $3::text IS NULL AND $4::bigint > 0"
    " RETURNING id) SELECT (SELECT id FROM d), false,"
    " EXISTS (SELECT 1 FROM d)";

/* A saved reply's template and the member it is rendered for. */
static const char scp_sql_saved_for[] =
    "SELECT s.body, mb.phone, mb.email, mb.first_name, mb.last_name,"
    " mb.zip, mb.attributes FROM members mb"
    " LEFT JOIN saved_replies s ON s.id = $2::bigint"
    " WHERE mb.id = $1::bigint";

/* ---- Values and JSON of rows --------------------------------------- */

/* {"id", "name"} of staff column col (name at col + 1), or null. */
static json_t *
scp_staff(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	return json_pack("{s:I, s:o}", "id",
	    (json_int_t)pgr_get_i64(res, row, col), "name",
	    pgr_json_text(res, row, col + 1));
}

/* A CONV_SUMMARY of row 'row' of an SCP_SQL_SUMMARY answer. */
static json_t *
scp_summary_row(const PGresult *res, int row)
{
	json_t *o = json_object(), *last = json_null();

	json_object_set_new(o, "id", pgr_json_int(res, row, 0));
	json_object_set_new(o, "member",
	    json_pack("{s:o, s:o, s:o, s:o}", "id", pgr_json_int(res, row, 1),
		"phone", pgr_json_text(res, row, 2), "first_name",
		pgr_json_text(res, row, 3), "last_name",
		pgr_json_text(res, row, 4)));
	json_object_set_new(o, "status", pgr_json_text(res, row, 5));
	json_object_set_new(o, "assigned", scp_staff(res, row, 6));
	json_object_set_new(o, "unread", pgr_json_int(res, row, 8));
	json_object_set_new(o, "last_message_at", pgr_json_time(res, row, 9));
	if (!PQgetisnull(res, row, 10))
		last = json_pack("{s:o, s:o, s:o}", "direction",
		    pgr_json_text(res, row, 10), "body",
		    pgr_json_text(res, row, 11), "status",
		    pgr_json_text(res, row, 12));
	json_object_set_new(o, "last_message", last);
	json_object_set_new(o, "alert_id", pgr_json_int(res, row, 13));
	json_object_set_new(o, "stale",
	    json_boolean(pgr_get_bool(res, row, 14)));
	return o;
}

/* A thread item of row 'row' of scp_sql_items / scp_sql_note. */
static json_t *
scp_item_row(const PGresult *res, int row)
{
	const char *kind = PQgetvalue(res, row, 0);
	json_t *o = json_object();

	json_object_set_new(o, "kind", json_string(kind));
	json_object_set_new(o, "id", pgr_json_int(res, row, 1));
	if (strcmp(kind, "note") == 0) {
		json_object_set_new(o, "body", pgr_json_text(res, row, 4));
		json_object_set_new(o, "staff", scp_staff(res, row, 10));
		json_object_set_new(o, "created_at",
		    pgr_json_time(res, row, 6));
		return o;
	}
	json_object_set_new(o, "direction", pgr_json_text(res, row, 2));
	json_object_set_new(o, "channel", pgr_json_text(res, row, 3));
	json_object_set_new(o, "body", pgr_json_text(res, row, 4));
	json_object_set_new(o, "status", pgr_json_text(res, row, 5));
	json_object_set_new(o, "created_at", pgr_json_time(res, row, 6));
	json_object_set_new(o, "updated_at", pgr_json_time(res, row, 7));
	json_object_set_new(o, "error_code", pgr_json_int(res, row, 8));
	json_object_set_new(o, "error_text", pgr_json_text(res, row, 9));
	json_object_set_new(o, "staff", scp_staff(res, row, 10));
	return o;
}

/* {"id", "name", "body"} of row 'row' of a saved reply read. */
static json_t *
scp_saved_row(const PGresult *res, int row)
{
	return json_pack("{s:o, s:o, s:o}", "id", pgr_json_int(res, row, 0),
	    "name", pgr_json_text(res, row, 1), "body",
	    pgr_json_text(res, row, 2));
}

static json_t *
scp_saved_all_json(const PGresult *res)
{
	json_t *list = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(list, scp_saved_row(res, i));
	return json_pack("{s:o}", "saved_replies", list);
}

/* ---- Reads ---------------------------------------------------------- */

enum scp_read {
	SCP_LIST = 0,
	SCP_SUMMARY,
	SCP_THREAD,
	SCP_NOTE,
	SCP_SAVED_ALL,
	SCP_SAVED,
};

/* One read in flight. */
struct scp_op {
	enum scp_read kind;
	store_conv_json_fn *fn;
	void *arg;
	unsigned limit;	 /* a listing's page size */
	json_t *o;	 /* a thread: the summary, when found */
	int answers;	 /* answers still to come */
	bool failed;	 /* an answer was an error */
	char error[256]; /* the first error */
};

static void
scp_note_error(struct scp_op *op, const char *error)
{
	if (!op->failed)
		snprintf(op->error, sizeof(op->error), "%s", error);
	op->failed = true;
}

/* {"conversations": [...], "next"} of a listing's answer. */
static json_t *
scp_list_json(const PGresult *res, unsigned limit)
{
	json_t *list = json_array(), *o;
	char next[48];
	int i, n = PQntuples(res);

	for (i = 0; i < n; i++)
		json_array_append_new(list, scp_summary_row(res, i));
	o = json_pack("{s:o}", "conversations", list);
	if (n > 0 && (unsigned)n == limit) {
		snprintf(next, sizeof(next), "%" PRId64 ".%" PRId64,
		    pgr_get_i64(res, n - 1, 9), pgr_get_i64(res, n - 1, 0));
		json_object_set_new(o, "next", json_string(next));
	} else
		json_object_set_new(o, "next", json_null());
	return o;
}

/* Both answers of a thread are in: the caller hears once. */
static void
scp_settle(struct scp_op *op)
{
	if (--op->answers > 0)
		return;
	if (op->failed) {
		json_decref(op->o);
		op->fn(op->arg, NULL, op->error);
	} else
		op->fn(op->arg, op->o, NULL);
	free(op);
}

static void
scp_read_answer(void *arg, const struct pg_answer *a)
{
	struct scp_op *op = arg;

	if (a->error != NULL)
		scp_note_error(op, a->error);
	else if (op->kind == SCP_LIST)
		op->o = scp_list_json(a->res, op->limit);
	else if (op->kind == SCP_SAVED_ALL)
		op->o = scp_saved_all_json(a->res);
	else if (PQntuples(a->res) == 1)
		op->o = op->kind == SCP_NOTE ? scp_item_row(a->res, 0)
		    : op->kind == SCP_SAVED  ? scp_saved_row(a->res, 0)
					     : scp_summary_row(a->res, 0);
	if (op->kind == SCP_THREAD && op->o != NULL && a->error == NULL)
		json_object_set_new(op->o, "sender",
		    pgr_json_text(a->res, 0, 15));
	scp_settle(op);
}

static void
scp_items_answer(void *arg, const struct pg_answer *a)
{
	struct scp_op *op = arg;
	json_t *items;
	int i;

	if (a->error != NULL)
		scp_note_error(op, a->error);
	else if (op->o != NULL) {
		items = json_array();
		for (i = PQntuples(a->res) - 1; i >= 0; i--)
			json_array_append_new(items, scp_item_row(a->res, i));
		json_object_set_new(op->o, "items", items);
	}
	scp_settle(op);
}

/* Sends a read of op (freed on failure). 0 / -1 with err. */
static int
scp_send(struct store *st, struct scp_op *op, const struct pg_query *q,
    char *err, size_t errlen)
{
	return store_pg_read(st, q, q->done, op, err, errlen);
}

static struct scp_op *
scp_op_new(enum scp_read kind, store_conv_json_fn *fn, void *arg)
{
	struct scp_op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->fn = fn;
	op->arg = arg;
	op->answers = 1;
	return op;
}

/* Parses a cursor "<last_message_at>.<id>": 0 / -1. */
static int
scp_cursor_parse(const char *s, int64_t *at, int64_t *id)
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

static int
scp_list(struct store *st, struct conv_query *q, struct scp_op *op, char *err,
    size_t errlen)
{
	char b[10][24], ts[CONV_SEARCH_MAX * 4 + 64];
	const char *v[14];
	int64_t at = 0, id = 0;

	if (q->q != NULL && store_conv_tsquery(q->q, ts, sizeof(ts)) == -1) {
		snprintf(err, errlen,
		    "q: at most %d bytes of words to search for",
		    CONV_SEARCH_MAX);
		q->invalid = true;
		free(op);
		return -1;
	}
	if (q->after != NULL && scp_cursor_parse(q->after, &at, &id) == -1) {
		snprintf(err, errlen,
		    "after: not a cursor (use the \"next\" of the previous "
		    "page)");
		q->invalid = true;
		free(op);
		return -1;
	}
	v[0] = pgr_i64(b[0], q->clock.now, false);
	v[1] = pgr_i64(b[1], q->clock.stale_after_ms, false);
	v[2] = q->status;
	v[3] = q->unread ? "1" : "0";
	v[4] = pgr_i64(b[2], (int64_t)q->assigned, false);
	v[5] = pgr_i64(b[3], q->staff, false);
	v[6] = pgr_i64(b[4], q->list_id, true);
	v[7] = pgr_i64(b[5], q->alert_id, true);
	v[8] = q->stale ? "1" : "0";
	v[9] = q->q != NULL ? ts : NULL;
	v[10] = q->after != NULL ? pgr_i64(b[6], at, false) : NULL;
	v[11] = q->after != NULL ? pgr_i64(b[7], id, false) : NULL;
	v[12] = pgr_i64(b[8], (int64_t)q->limit, false);
	v[13] = pgr_i64(b[9], q->member_id, true);
	op->limit = q->limit;
	return scp_send(st, op,
	    &(struct pg_query){.sql = scp_sql_list,
		.nparams = 14,
		.values = v,
		.done = scp_read_answer},
	    err, errlen);
}

/* The summary of id (and a thread's items): one or two statements. */
static int
scp_one(struct store *st, int64_t id, const struct conv_clock *clock,
    struct scp_op *op, char *err, size_t errlen)
{
	char now[24], stale[24], ids[24], max[24];
	const char *v[3] = {pgr_i64(now, clock->now, false),
	    pgr_i64(stale, clock->stale_after_ms, false),
	    pgr_i64(ids, id, false)};
	const char *iv[2] = {ids, pgr_i64(max, CONV_THREAD_MAX_ITEMS, false)};

	if (op->kind == SCP_THREAD)
		op->answers = 2;
	if (scp_send(st, op,
		&(struct pg_query){.sql = scp_sql_one,
		    .nparams = 3,
		    .values = v,
		    .done = scp_read_answer},
		err, errlen) == -1)
		return -1;
	if (op->kind != SCP_THREAD)
		return 0;
	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = scp_sql_items,
		    .nparams = 2,
		    .values = iv,
		    .flags = PG_IDEMPOTENT,
		    .done = scp_items_answer,
		    .arg = op},
		err, errlen) == -1) {
		/* the summary's answer settles it alone */
		op->answers = 1;
		scp_note_error(op, err);
	}
	return 0;
}

/* ---- Target ---------------------------------------------------------- */

struct scp_target_op {
	store_conv_target_fn *fn;
	void *arg;
};

/* Copies text column col into out ("" for NULL or too long). */
static void
scp_col_copy(const PGresult *res, int col, char *out, size_t outlen)
{
	const char *s = PQgetvalue(res, 0, col);

	out[0] = '\0';
	if (!PQgetisnull(res, 0, col) && strlen(s) < outlen)
		strlcpy(out, s, outlen);
}

static void
scp_target_answer(void *arg, const struct pg_answer *a)
{
	struct scp_target_op *op = arg;
	struct conv_target t;

	memset(&t, 0, sizeof(t));
	if (a->error != NULL)
		op->fn(op->arg, -1, NULL, a->error);
	else if (PQntuples(a->res) == 0)
		op->fn(op->arg, 0, NULL, NULL);
	else {
		t.member = pgr_get_i64(a->res, 0, 0);
		scp_col_copy(a->res, 1, t.phone, sizeof(t.phone));
		scp_col_copy(a->res, 2, t.sender, sizeof(t.sender));
		scp_col_copy(a->res, 3, t.list_sender, sizeof(t.list_sender));
		t.sms_opted_out = pgr_get_bool(a->res, 0, 4);
		op->fn(op->arg, 1, &t, NULL);
	}
	free(op);
}

static int
scp_target(struct store *st, int64_t id, struct scp_target_op *op, char *err,
    size_t errlen)
{
	char ids[24];
	const char *v[1] = {pgr_i64(ids, id, false)};

	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = scp_sql_target,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = scp_target_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	return 0;
}

/* ---- Writes ---------------------------------------------------------- */

/* One write in flight. */
struct scp_write {
	struct store *st;
	store_conv_done_fn *fn;
	void *arg;
	struct conv_done d;
	bool failed;
	char error[256];
	char *key; /* a reply's idempotency key */
};

static void
scp_write_free(struct scp_write *w)
{
	free(w->key);
	free(w);
}

static void
scp_finish(struct scp_write *w, bool ok)
{
	w->d.ok = ok && !w->failed;
	if (!w->d.ok && w->error[0] != '\0')
		w->d.error = w->error;
	w->fn(w->arg, &w->d);
	scp_write_free(w);
}

static bool
scp_write_failed(struct scp_write *w, const struct pg_answer *a)
{
	if (a->error == NULL)
		return false;
	w->failed = true;
	snprintf(w->error, sizeof(w->error), "%s", a->error);
	return true;
}

static void
scp_write_commit(void *arg, bool ok)
{
	scp_finish(arg, ok);
}

/* Sends q in the group with w's commit callback; w freed on failure. */
static int
scp_group(struct store *st, struct scp_write *w, const struct pg_query *q,
    store_commit_fn *on_commit, char *err, size_t errlen)
{
	struct pg_query s = *q;

	s.arg = w;
	if (store_pg_group_send(st, &s, err, errlen) == -1) {
		scp_write_free(w);
		return -1;
	}
	store_on_commit(st, on_commit, w);
	return 0;
}

static void
scp_change_answer(void *arg, const struct pg_answer *a)
{
	struct scp_write *w = arg;

	if (scp_write_failed(w, a) || PQntuples(a->res) != 1)
		return;
	w->d.found = pgr_get_bool(a->res, 0, 0);
	w->d.staff_found = pgr_get_bool(a->res, 0, 1);
}

static int
scp_change(struct store *st, int64_t id, const struct conv_change *c,
    struct scp_write *w, char *err, size_t errlen)
{
	static const char *const sql[] = {
	    [CONV_OP_ASSIGN] = scp_sql_assign,
	    [CONV_OP_CLOSE] = scp_sql_close,
	    [CONV_OP_REOPEN] = scp_sql_reopen,
	    [CONV_OP_READ] = scp_sql_read,
	    [CONV_OP_REPLIED] = scp_sql_replied,
	};
	char ids[24], staff[24], now[24];
	const char *v[3];

	if ((unsigned)c->op >= sizeof(sql) / sizeof(sql[0])) {
		snprintf(err, errlen, "conversation: unknown change %d",
		    (int)c->op);
		scp_write_free(w);
		return -1;
	}
	v[0] = pgr_i64(ids, id, false);
	v[1] = c->op == CONV_OP_ASSIGN ? pgr_i64(staff, c->staff, true) : NULL;
	v[2] = pgr_i64(now, c->now, false);
	return scp_group(st, w,
	    &(struct pg_query){.sql = sql[c->op],
		.nparams = 3,
		.values = v,
		.done = scp_change_answer},
	    scp_write_commit, err, errlen);
}

static void
scp_note_answer(void *arg, const struct pg_answer *a)
{
	struct scp_write *w = arg;

	if (scp_write_failed(w, a) || PQntuples(a->res) != 1)
		return;
	w->d.found = true;
	w->d.id = pgr_get_i64(a->res, 0, 0);
}

static int
scp_note_add(struct store *st, const struct conv_note *n, struct scp_write *w,
    char *err, size_t errlen)
{
	char conv[24], staff[24], now[24];
	const char *v[4] = {pgr_i64(conv, n->conversation, false),
	    pgr_i64(staff, n->staff, true), n->body,
	    pgr_i64(now, n->now, false)};

	return scp_group(st, w,
	    &(struct pg_query){.sql = scp_sql_note_add,
		.nparams = 4,
		.values = v,
		.done = scp_note_answer},
	    scp_write_commit, err, errlen);
}

static void
scp_reply_answer(void *arg, const struct pg_answer *a)
{
	struct scp_write *w = arg;

	if (scp_write_failed(w, a))
		return;
	w->d.found = true;
	if (PQntuples(a->res) == 1)
		w->d.id = pgr_get_i64(a->res, 0, 0);
	else
		w->d.dup = true;
}

static void
scp_dup_answer(void *arg, const struct pg_answer *a)
{
	struct scp_write *w = arg;

	if (scp_write_failed(w, a)) {
		scp_finish(w, false);
		return;
	}
	if (PQntuples(a->res) != 1) {
		snprintf(w->error, sizeof(w->error),
		    "idempotency key conflict without a row");
		w->failed = true;
		scp_finish(w, false);
		return;
	}
	w->d.id = pgr_get_i64(a->res, 0, 0);
	scp_finish(w, true);
}

/* The group committed: a duplicate's first message is visible now. */
static void
scp_reply_commit(void *arg, bool ok)
{
	struct scp_write *w = arg;
	const char *v[1] = {w->key};
	char err[256];

	if (!ok || w->failed || !w->d.dup) {
		scp_finish(w, ok);
		return;
	}
	if (w->key == NULL) {
		snprintf(w->error, sizeof(w->error),
		    "insert reply: no row inserted");
		w->failed = true;
		scp_finish(w, false);
		return;
	}
	if (pg_send(store_pg_conn(w->st),
		&(struct pg_query){.sql = scp_sql_by_key,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = scp_dup_answer,
		    .arg = w},
		err, sizeof(err)) == -1) {
		snprintf(w->error, sizeof(w->error), "%s", err);
		w->failed = true;
		scp_finish(w, false);
	}
}

static int
scp_reply(struct store *st, const struct queue_new *m, int64_t now,
    struct scp_write *w, char *err, size_t errlen)
{
	char b[9][24];
	const char *v[15];

	v[0] = pgr_i64(b[0], m->member_id, true);
	v[1] = m->sender;
	v[2] = m->to;
	v[3] = m->from;
	v[4] = m->body;
	v[5] = pgr_i64(b[1], m->priority, false);
	v[6] = pgr_i64(b[2], m->not_before > now ? m->not_before : now, false);
	v[7] = pgr_i64(b[3], m->conversation_id, false);
	v[8] = m->idempotency_key;
	v[9] = pgr_i64(b[4], m->not_before, true);
	v[10] = pgr_i64(b[5], m->expires_at, true);
	v[11] = pgr_i64(b[6], now, false);
	v[12] = m->encoding;
	v[13] = pgr_i64(b[7], m->segments, true);
	v[14] = pgr_i64(b[8], m->staff_id, true);
	if (m->idempotency_key != NULL)
		w->key = xstrdup(m->idempotency_key);
	return scp_group(st, w,
	    &(struct pg_query){.sql = scp_sql_reply,
		.nparams = 15,
		.values = v,
		.done = scp_reply_answer},
	    scp_reply_commit, err, errlen);
}

static void
scp_saved_answer(void *arg, const struct pg_answer *a)
{
	struct scp_write *w = arg;

	if (scp_write_failed(w, a) || PQntuples(a->res) != 1)
		return;
	w->d.id = pgr_get_i64(a->res, 0, 0);
	w->d.dup = pgr_get_bool(a->res, 0, 1);
	w->d.found = pgr_get_bool(a->res, 0, 2);
}

static int
scp_saved_write(struct store *st, enum saved_op op, int64_t id,
    const struct saved_reply *r, struct scp_write *w, char *err, size_t errlen)
{
	static const char *const sql[] = {
	    [SAVED_CREATE] = scp_sql_saved_add,
	    [SAVED_UPDATE] = scp_sql_saved_set,
	    [SAVED_DELETE] = scp_sql_saved_del,
	};
	char ids[24], now[24];
	const char *v[4] = {pgr_i64(ids, op == SAVED_CREATE ? 0 : id, true),
	    op == SAVED_DELETE ? NULL : r->name,
	    op == SAVED_DELETE ? NULL : r->body, pgr_i64(now, r->now, false)};

	if ((unsigned)op >= sizeof(sql) / sizeof(sql[0])) {
		snprintf(err, errlen, "saved reply: unknown write %d", (int)op);
		scp_write_free(w);
		return -1;
	}
	if (store_pg_group_send(st, &(struct pg_query){.sql = SCP_SAVED_LOCK},
		err, errlen) == -1) {
		scp_write_free(w);
		return -1;
	}
	return scp_group(st, w,
	    &(struct pg_query){.sql = sql[op],
		.nparams = 4,
		.values = v,
		.done = scp_saved_answer},
	    scp_write_commit, err, errlen);
}

struct scp_saved_op {
	store_conv_saved_fn *fn;
	void *arg;
};

static const char *
scp_str(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col);
}

static void
scp_saved_for_answer(void *arg, const struct pg_answer *a)
{
	struct scp_saved_op *op = arg;
	struct conv_saved_for s;

	if (a->error != NULL)
		op->fn(op->arg, -1, NULL, a->error);
	else if (PQntuples(a->res) != 1)
		op->fn(op->arg, 0, NULL, NULL);
	else {
		s = (struct conv_saved_for){.body = scp_str(a->res, 0),
		    .phone = scp_str(a->res, 1),
		    .email = scp_str(a->res, 2),
		    .first_name = scp_str(a->res, 3),
		    .last_name = scp_str(a->res, 4),
		    .zip = scp_str(a->res, 5),
		    .attributes = scp_str(a->res, 6)};
		op->fn(op->arg, 1, &s, NULL);
	}
	free(op);
}

static int
scp_saved_for(struct store *st, int64_t saved, int64_t member,
    struct scp_saved_op *op, char *err, size_t errlen)
{
	char m[24], s[24];
	const char *v[2] = {pgr_i64(m, member, false),
	    pgr_i64(s, saved, false)};

	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = scp_sql_saved_for,
		    .nparams = 2,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = scp_saved_for_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	return 0;
}
#endif /* HAVE_LIBPQ */

/* ---- The public operations ------------------------------------------- */

/* Refuses a SQLite store or a build without libpq: -1 with err. */
static int
scp_refuse(struct store *st, char *err, size_t errlen)
{
	if (store_postgresql_only(st, "store_conversations_pg", err, errlen) ==
	    -1)
		return -1;
#ifdef HAVE_LIBPQ
	return 0;
#else
	return store_no_libpq(err, errlen);
#endif
}

#ifdef HAVE_LIBPQ
static struct scp_write *
scp_write_new(struct store *st, store_conv_done_fn *fn, void *arg)
{
	struct scp_write *w = xcalloc(1, sizeof(*w));

	w->st = st;
	w->fn = fn;
	w->arg = arg;
	return w;
}
#endif

int
store_conv_list_pg(struct store *st, struct conv_query *q,
    store_conv_json_fn *fn, void *arg, char *err, size_t errlen)
{
	q->invalid = false;
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	return scp_list(st, q, scp_op_new(SCP_LIST, fn, arg), err, errlen);
#else
	(void)fn;
	(void)arg;
	return -1;
#endif
}

int
store_conv_summary_pg(struct store *st, int64_t id,
    const struct conv_clock *clock, store_conv_json_fn *fn, void *arg,
    char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	return scp_one(st, id, clock, scp_op_new(SCP_SUMMARY, fn, arg), err,
	    errlen);
#else
	(void)id, (void)clock, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_conv_thread_pg(struct store *st, int64_t id,
    const struct conv_clock *clock, store_conv_json_fn *fn, void *arg,
    char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	return scp_one(st, id, clock, scp_op_new(SCP_THREAD, fn, arg), err,
	    errlen);
#else
	(void)id, (void)clock, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_conv_note_json_pg(struct store *st, int64_t id, store_conv_json_fn *fn,
    void *arg, char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	{
		char ids[24];
		const char *v[1] = {pgr_i64(ids, id, false)};

		return scp_send(st, scp_op_new(SCP_NOTE, fn, arg),
		    &(struct pg_query){.sql = scp_sql_note,
			.nparams = 1,
			.values = v,
			.done = scp_read_answer},
		    err, errlen);
	}
#else
	(void)id, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_conv_target_pg(struct store *st, int64_t id, store_conv_target_fn *fn,
    void *arg, char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	{
		struct scp_target_op *op = xcalloc(1, sizeof(*op));

		op->fn = fn;
		op->arg = arg;
		return scp_target(st, id, op, err, errlen);
	}
#else
	(void)id, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_conv_change_pg(struct store *st, int64_t id, const struct conv_change *c,
    store_conv_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	return scp_change(st, id, c, scp_write_new(st, fn, arg), err, errlen);
#else
	(void)id, (void)c, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_conv_note_add_pg(struct store *st, const struct conv_note *n,
    store_conv_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	return scp_note_add(st, n, scp_write_new(st, fn, arg), err, errlen);
#else
	(void)n, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_conv_reply_pg(struct store *st, const struct queue_new *m, int64_t now,
    store_conv_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
	if (m->channel != CHANNEL_SMS || m->conversation_id <= 0) {
		snprintf(err, errlen,
		    "a reply is an SMS with its conversation");
		return -1;
	}
	if (queue_check_new(m, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	return scp_reply(st, m, now, scp_write_new(st, fn, arg), err, errlen);
#else
	(void)now, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_saved_replies_json_pg(struct store *st, store_conv_json_fn *fn, void *arg,
    char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	return scp_send(st, scp_op_new(SCP_SAVED_ALL, fn, arg),
	    &(struct pg_query){.sql = scp_sql_saved_all,
		.done = scp_read_answer},
	    err, errlen);
#else
	(void)fn, (void)arg;
	return -1;
#endif
}

int
store_saved_reply_json_pg(struct store *st, int64_t id, store_conv_json_fn *fn,
    void *arg, char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	{
		char ids[24];
		const char *v[1] = {pgr_i64(ids, id, false)};

		return scp_send(st, scp_op_new(SCP_SAVED, fn, arg),
		    &(struct pg_query){.sql = scp_sql_saved_one,
			.nparams = 1,
			.values = v,
			.done = scp_read_answer},
		    err, errlen);
	}
#else
	(void)id, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_saved_reply_write_pg(struct store *st, enum saved_op op, int64_t id,
    const struct saved_reply *r, store_conv_done_fn *fn, void *arg, char *err,
    size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
	if (op == SAVED_CREATE && (r->name == NULL || r->body == NULL)) {
		snprintf(err, errlen, "saved reply: name and body required");
		return -1;
	}
#ifdef HAVE_LIBPQ
	return scp_saved_write(st, op, id, r, scp_write_new(st, fn, arg), err,
	    errlen);
#else
	(void)id, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_conv_saved_for_pg(struct store *st, int64_t saved, int64_t member,
    store_conv_saved_fn *fn, void *arg, char *err, size_t errlen)
{
	if (scp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	{
		struct scp_saved_op *op = xcalloc(1, sizeof(*op));

		op->fn = fn;
		op->arg = arg;
		return scp_saved_for(st, saved, member, op, err, errlen);
	}
#else
	(void)saved, (void)member, (void)fn, (void)arg;
	return -1;
#endif
}

/* ---- Search text ------------------------------------------------------ */

/* Appends s[0..n) to out as one quoted tsquery operand ('' and \\
 * doubled), then ":*" if prefix. 0 / -1 when it does not fit. */
static int
scp_ts_word(const char *s, size_t n, bool prefix, char *out, size_t outlen,
    size_t *len)
{
	size_t i;

	if (*len + n * 2 + 4 >= outlen)
		return -1;
	out[(*len)++] = '\'';
	for (i = 0; i < n; i++) {
		if (s[i] == '\'' || s[i] == '\\')
			out[(*len)++] = s[i];
		out[(*len)++] = s[i];
	}
	out[(*len)++] = '\'';
	if (prefix) {
		out[(*len)++] = ':';
		out[(*len)++] = '*';
	}
	out[*len] = '\0';
	return 0;
}

/* Appends the literal text s. 0 / -1. */
static int
scp_ts_put(const char *s, char *out, size_t outlen, size_t *len)
{
	size_t n = strlen(s);

	if (*len + n >= outlen)
		return -1;
	memcpy(out + *len, s, n + 1);
	*len += n;
	return 0;
}

/* A phrase's words s[0..n) as ( 'a' <-> 'b' ); a word alone as is. */
static int
scp_ts_phrase(const char *s, size_t n, char *out, size_t outlen, size_t *len)
{
	const char *p = s, *end = s + n, *w;
	unsigned words = 0;
	size_t open = *len;

	if (scp_ts_put("(", out, outlen, len) == -1)
		return -1;
	while (p < end) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p == end)
			break;
		for (w = p; p < end && !isspace((unsigned char)*p); p++)
			;
		if ((words > 0 &&
			scp_ts_put(" <-> ", out, outlen, len) == -1) ||
		    scp_ts_word(w, (size_t)(p - w), false, out, outlen, len) ==
			-1)
			return -1;
		words++;
	}
	if (words == 0) { /* "" or "  ": no operand */
		*len = open;
		out[*len] = '\0';
		return 0;
	}
	return scp_ts_put(")", out, outlen, len);
}

int
store_conv_tsquery(const char *text, char *out, size_t outlen)
{
	const char *p = text, *s;
	size_t len = 0, before;
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
		before = len;
		if (p > s && len > 0 &&
		    scp_ts_put(" & ", out, outlen, &len) == -1)
			return -1;
		if (p > s &&
		    (quoted ? scp_ts_phrase(s, (size_t)(p - s), out, outlen,
				  &len)
			    : scp_ts_word(s, (size_t)(p - s), true, out, outlen,
				  &len)) == -1)
			return -1;
		if (quoted && len == before + (before > 0 ? 3 : 0)) {
			/* an empty phrase added nothing: drop its " & " */
			len = before;
			out[len] = '\0';
		}
		if (quoted && *p == '"')
			p++;
	}
	return 0;
}
