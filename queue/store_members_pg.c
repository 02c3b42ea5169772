/*
 * store_members_pg.c - the members API's store operations on PostgreSQL
 * (store_members_pg.h): one member, the search, the consent log, create,
 * update, opt-out and opt-in by id, answered through callbacks.
 *
 * DESIGN
 *
 * The statements are store_members.c's and store_consent.c's, translated
 * (doc/postgresql.md): "?N" becomes "$N::type", SQLite's JSON functions
 * jsonb, LIKE's ASCII case folding lower() under the "C" collation (the
 * pattern lower-cased in C; ILIKE would fold non-ASCII letters too under
 * a UTF-8 ctype, and find other members than SQLite does). The member's columns
 * and joins are store_members-internal.h's SM_COLS and SM_FROM, so a member
 * reads the same on both stores.
 *
 * Reads go on store_pg_conn(), outside the group: they need no
 * transaction and must not fail one. A member is two statements (the
 * row, its subscriptions) pipelined and answered when both are in; a
 * search by list pipelines the list's lookup (id, else name) before the
 * page, so an unknown list is told apart from an empty page at no extra
 * round trip; the consent log is one statement whose LEFT JOIN from the
 * member tells "no member" (no row) from "no events" (one row of NULLs).
 *
 * Writes are statements in the node's group (store_pg_group_send()),
 * answered from the group's commit callback, written so that no expected
 * case raises an error (which would abort every write of the group):
 *  - create and update first take the transaction-level advisory lock
 *    (1868, 7), then run one statement that reads who else has the phone
 *    or email and writes only if nobody does. The lock is taken by a
 *    statement of its own: under READ COMMITTED a statement sees what
 *    committed before it started, so the owner read after the lock sees
 *    the other node's member (whose group committed and released the
 *    lock), where in the same statement it would not, and the write would
 *    raise a unique violation instead of answering 409. The create's
 *    INSERT is ON CONFLICT DO NOTHING besides: inbound texts and
 *    unsubscribe links make members by address without the lock (their
 *    own ON CONFLICT makes them safe from each other), and a create
 *    racing one of them answers 409 too. An update racing such a write
 *    with the same new address can still fail its group (an UPDATE has
 *    no ON CONFLICT); the client retries and gets its 409.
 *  - an update computes each new value from the 'set' bits as SQLite
 *    does and matches only when one differs (d->changed); attributes
 *    are merged with jsonb: a key set to null is removed, the others
 *    replaced (RFC 7396 at the top level; a nested object value replaces
 *    the stored one whole, its nulls removed).
 *  - an opt-out is INSERT ... ON CONFLICT DO NOTHING RETURNING and its
 *    consent event is inserted from what that returned, in the same
 *    statement (an opt-in: DELETE ... RETURNING): two nodes opting one
 *    member out at once write one opt-out and one event, and the
 *    dispatchers' send-time check (pg_queue.c) reads it once committed.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compat.h"
#include "message.h"
#include "store-internal.h"
#include "store_members-internal.h"
#include "store_members_pg-internal.h"
#include "store_members_pg.h"
#include "xmalloc.h"

#define SMP_SUBS_MAX 20 /* subscriptions of one create, as the API's */

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"

static const char smp_sql_member[] =
    "SELECT " SM_COLS SM_FROM " WHERE m.id = $1::bigint";
static const char smp_sql_subs[] =
    "SELECT s.list_id, l.name, s.channel, s.status, s.source, s.created_at,"
    " s.updated_at FROM subscriptions s JOIN lists l ON l.id = s.list_id"
    " WHERE s.member_id = $1::bigint ORDER BY s.list_id, s.channel";

/* A list by reference: $1 its id (NULL if not digits), $2 its name. */
#define SMP_LIST_ID(id, name)                                        \
	"(SELECT coalesce((SELECT id FROM lists WHERE id = " id ")," \
	" (SELECT id FROM lists WHERE name = " name ")))"
static const char smp_sql_list[] =
    "SELECT " SMP_LIST_ID("$1::bigint", "$2::text");

/*
 * ASCII case folding, as SQLite's LIKE does: lower() under the "C"
 * collation folds A-Z only (translate() did the same eight times slower
 * on 20,000 members).
 */
#define SMP_FOLD(col) "lower(" col " COLLATE \"C\")"

/*
 * A search: $1 phone, $2 email, $3 name pattern (lower-cased, LIKE's
 * wildcards escaped), $4 tag, $5 and $6 the list's name and id, $7
 * cursor, $8 limit (+ 1).
 */
#define SMP_FIRST_LIKE SMP_FOLD("m.first_name") " LIKE $3::text ESCAPE '\\'"
#define SMP_LAST_LIKE  SMP_FOLD("m.last_name") " LIKE $3::text ESCAPE '\\'"
#define SMP_THE_LIST   SMP_LIST_ID("$6::bigint", "$5::text")
static const char smp_sql_search[] =
    "SELECT " SM_COLS SM_FROM " WHERE ($1::text IS NULL OR m.phone = $1::text)"
    " AND ($2::text IS NULL OR m.email = $2::text)"
    " AND ($3::text IS NULL OR " SMP_FIRST_LIKE " OR " SMP_LAST_LIKE ")"
    " AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM"
    " jsonb_array_elements_text(m.tags::jsonb) t(v) WHERE t.v = $4::text))"
    " AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM subscriptions s"
    " WHERE s.member_id = m.id AND s.list_id = " SMP_THE_LIST
    " AND s.status <> 'left')) AND m.id > $7::bigint ORDER BY m.id"
    " LIMIT $8::bigint";

/* The consent log: $1 member, $2 cursor, $3 limit (+ 1). */
static const char smp_sql_consent[] =
    "SELECT e.id, e.channel, e.action, e.source, e.list_id, l.name,"
    " e.message_id, e.detail, e.created_at FROM members mb"
    " LEFT JOIN consent_events e ON e.member_id = mb.id AND e.id > $2::bigint"
    " LEFT JOIN lists l ON l.id = e.list_id WHERE mb.id = $1::bigint"
    " ORDER BY e.id LIMIT $3::bigint";

/*
 * A create: $1 phone, $2 email, $3 first, $4 last, $5 zip, $6 time zone,
 * $7 attributes, $8 tags, $9 now. Answers (new id or NULL, what is taken
 * ("phone" first), by whom).
 */
static const char smp_sql_create[] =
    "WITH own AS (SELECT CASE WHEN o.phone = $1::text THEN 'phone'"
    " ELSE 'email' END AS what, o.id FROM members o"
    " WHERE o.phone = $1::text OR o.email = $2::text ORDER BY 1 DESC"
    " LIMIT 1),"
    " ins AS (INSERT INTO members (phone, email, first_name, last_name, zip,"
    " time_zone, attributes, tags, created_at, updated_at)"
    " SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text,"
    " coalesce($7::text, '{}'), coalesce($8::text, '[]'), $9::bigint,"
    " $9::bigint WHERE NOT EXISTS (SELECT 1 FROM own)"
    " ON CONFLICT DO NOTHING RETURNING id)"
    " SELECT (SELECT id FROM ins), (SELECT what FROM own),"
    " (SELECT id FROM own)";

/*
 * A create with subscriptions: the create's statement, then $10 the lists
 * and $11 the channels (arrays) and $12 the consent event's detail: each
 * subscription active, source 'api', with its opt_in event.
 */
static const char smp_sql_create_subs[] =
    "WITH own AS (SELECT CASE WHEN o.phone = $1::text THEN 'phone'"
    " ELSE 'email' END AS what, o.id FROM members o"
    " WHERE o.phone = $1::text OR o.email = $2::text ORDER BY 1 DESC"
    " LIMIT 1),"
    " ins AS (INSERT INTO members (phone, email, first_name, last_name, zip,"
    " time_zone, attributes, tags, created_at, updated_at)"
    " SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text,"
    " coalesce($7::text, '{}'), coalesce($8::text, '[]'), $9::bigint,"
    " $9::bigint WHERE NOT EXISTS (SELECT 1 FROM own)"
    " ON CONFLICT DO NOTHING RETURNING id),"
    " sub AS (INSERT INTO subscriptions (member_id, list_id, channel, status,"
    " source, created_at, updated_at) SELECT ins.id, s.list, s.ch, 'active',"
    " 'api', $9::bigint, $9::bigint FROM ins,"
    " unnest($10::bigint[], $11::text[]) WITH ORDINALITY AS s(list, ch, i)"
    " ORDER BY s.i ON CONFLICT DO NOTHING"
    " RETURNING member_id, list_id, channel),"
    " ce AS (INSERT INTO consent_events (member_id, channel, action, source,"
    " list_id, message_id, detail, created_at) SELECT member_id, channel,"
    " 'opt_in', 'api', list_id, NULL, $12::text, $9::bigint FROM sub)"
    " SELECT (SELECT id FROM ins), (SELECT what FROM own),"
    " (SELECT id FROM own)";

/* Lists by reference: $1 the refs; (ordinal, id, double_optin). */
static const char smp_sql_lists[] =
    "SELECT r.i, l.id, l.double_optin FROM unnest($1::text[])"
    " WITH ORDINALITY AS r(ref, i) LEFT JOIN LATERAL (SELECT id,"
    " double_optin, 0 AS pri FROM lists WHERE id = CASE WHEN r.ref"
    " ~ '^[0-9]{1,18}$' THEN r.ref::bigint END UNION ALL SELECT id,"
    " double_optin, 1 FROM lists WHERE name = r.ref ORDER BY 3 LIMIT 1) l"
    " ON true ORDER BY r.i";

/*
 * An update: $1 id, $2 now, $3.. as above. Answers (member exists, what
 * is taken, by whom, whether the row changed).
 */
static const char smp_sql_update[] =
    "WITH own AS (SELECT CASE WHEN ($3::int & 1) <> 0 AND o.phone = $4::text"
    " THEN 'phone' ELSE 'email' END AS what, o.id FROM members o"
    " WHERE o.id <> $1::bigint AND ((($3::int & 1) <> 0"
    " AND o.phone = $4::text) OR (($3::int & 2) <> 0"
    " AND o.email = $5::text)) ORDER BY 1 DESC LIMIT 1),"
    " up AS (UPDATE members SET phone = " SMP_NEW_PHONE
    ", email = " SMP_NEW_EMAIL ", first_name = " SMP_NEW_FIRST
    ", last_name = " SMP_NEW_LAST ", zip = " SMP_NEW_ZIP
    ", time_zone = " SMP_NEW_TZ ", attributes = " SMP_NEW_ATTRS
    ", tags = " SMP_NEW_TAGS ", bouncing = CASE WHEN email IS DISTINCT FROM"
    " " SMP_NEW_EMAIL " THEN 0 ELSE bouncing END, email_failures = CASE"
    " WHEN email IS DISTINCT FROM " SMP_NEW_EMAIL " THEN 0 ELSE"
    " email_failures END, updated_at = $2::bigint"
    " WHERE id = $1::bigint AND NOT EXISTS (SELECT 1 FROM own)"
    " AND (" SMP_NEW_PHONE " IS NOT NULL OR " SMP_NEW_EMAIL " IS NOT NULL)"
    " AND " SMP_DIFFERS " RETURNING id)"
    " SELECT EXISTS (SELECT 1 FROM members WHERE id = $1::bigint),"
    " (SELECT what FROM own), (SELECT id FROM own),"
    " EXISTS (SELECT 1 FROM up)";

/*
 * An opt-out of one channel by member id: $1 member, $2 now, $3 source,
 * $4 message id (NULL), $5 detail (NULL). Answers (member exists,
 * opt-out row inserted).
 */
#define SMP_SQL_OPTOUT(table, chan)                                        \
	"WITH mem AS (SELECT id FROM members WHERE id = $1::bigint),"      \
	" oo AS (INSERT INTO " table " (member_id, opted_out_at, source)"  \
	" SELECT id, $2::bigint, $3::text FROM mem ON CONFLICT DO NOTHING" \
	" RETURNING member_id),"                                           \
	" ce AS (INSERT INTO consent_events (member_id, channel, action,"  \
	" source, list_id, message_id, detail, created_at)"                \
	" SELECT member_id, '" chan "', 'opt_out', $3::text, NULL,"        \
	" $4::bigint, $5::text, $2::bigint FROM oo)"                       \
	" SELECT EXISTS (SELECT 1 FROM mem), EXISTS (SELECT 1 FROM oo)"
/* The opt-in: the same parameters; the opt-out row removed. */
#define SMP_SQL_OPTIN(table, chan)                                        \
	"WITH mem AS (SELECT id FROM members WHERE id = $1::bigint),"     \
	" oo AS (DELETE FROM " table " WHERE member_id = $1::bigint"      \
	" RETURNING member_id),"                                          \
	" ce AS (INSERT INTO consent_events (member_id, channel, action," \
	" source, list_id, message_id, detail, created_at)"               \
	" SELECT member_id, '" chan "', 'opt_in', $3::text, NULL,"        \
	" $4::bigint, $5::text, $2::bigint FROM oo)"                      \
	" SELECT EXISTS (SELECT 1 FROM mem), EXISTS (SELECT 1 FROM oo)"
static const char smp_sql_optout_sms[] = SMP_SQL_OPTOUT("sms_optout", "sms");
static const char smp_sql_optout_email[] =
    SMP_SQL_OPTOUT("email_optout", "email");
static const char smp_sql_optin_sms[] = SMP_SQL_OPTIN("sms_optout", "sms");
static const char smp_sql_optin_email[] =
    SMP_SQL_OPTIN("email_optout", "email");

/* The consent log's CSV rows: $1 member (0: all), $2 cursor, $3 limit. */
static const char smp_sql_export_consent[] =
    "SELECT e.id, e.member_id, m.phone, m.email, e.channel, e.action,"
    " e.source, l.name, e.message_id, e.detail, e.created_at"
    " FROM consent_events e JOIN members m ON m.id = e.member_id"
    " LEFT JOIN lists l ON l.id = e.list_id"
    " WHERE ($1::bigint = 0 OR e.member_id = $1::bigint)"
    " AND e.id > $2::bigint ORDER BY e.id LIMIT $3::bigint";
/* Its header, as store_consent.c's store_export_consent() writes it. */
static const char *const smp_consent_head[] = {"id", "member_id", "phone",
    "email", "channel", "action", "source", "list", "message_id", "detail",
    "at"};
#define SMP_CONSENT_NCOLS (sizeof(smp_consent_head) / sizeof(*smp_consent_head))

/* ---- Values and JSON of rows --------------------------------------- */

/* A stored JSON column; {} / [] when unreadable. */
static json_t *
smp_jsoncol(const PGresult *res, int row, int col, bool object)
{
	json_t *v = NULL;

	if (!PQgetisnull(res, row, col))
		v = json_loads(PQgetvalue(res, row, col), 0, NULL);
	if (v != NULL && (object ? json_is_object(v) : json_is_array(v)))
		return v;
	json_decref(v);
	return object ? json_object() : json_array();
}

/* The opt-out state of a channel: its columns at 'at' (time, source). */
static json_t *
smp_channel(const PGresult *res, int row, int at)
{
	json_t *c = json_object();

	json_object_set_new(c, "opted_out",
	    json_boolean(!PQgetisnull(res, row, at)));
	json_object_set_new(c, "opted_out_at", pgr_json_time(res, row, at));
	json_object_set_new(c, "source", pgr_json_text(res, row, at + 1));
	return c;
}

/* The member of row 'row' (SM_COLS), as store_members_row(). */
json_t *
smp_member_row(const PGresult *res, int row)
{
	json_t *o = json_object(), *chs = json_object(), *c;

	json_object_set_new(o, "id", pgr_json_int(res, row, 0));
	json_object_set_new(o, "phone", pgr_json_text(res, row, 1));
	json_object_set_new(o, "email", pgr_json_text(res, row, 2));
	json_object_set_new(o, "first_name", pgr_json_text(res, row, 3));
	json_object_set_new(o, "last_name", pgr_json_text(res, row, 4));
	json_object_set_new(o, "zip", pgr_json_text(res, row, 5));
	json_object_set_new(o, "time_zone", pgr_json_text(res, row, 6));
	json_object_set_new(o, "attributes", smp_jsoncol(res, row, 7, true));
	json_object_set_new(o, "tags", smp_jsoncol(res, row, 8, false));
	json_object_set_new(chs, "sms", smp_channel(res, row, 13));
	c = smp_channel(res, row, 15);
	json_object_set_new(c, "bouncing",
	    json_boolean(pgr_get_i64(res, row, 9) != 0));
	json_object_set_new(c, "failures", pgr_json_int(res, row, 10));
	json_object_set_new(chs, "email", c);
	json_object_set_new(o, "channels", chs);
	json_object_set_new(o, "created_at", pgr_json_time(res, row, 11));
	json_object_set_new(o, "updated_at", pgr_json_time(res, row, 12));
	return o;
}

static json_t *
smp_subs_json(const PGresult *res)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(a,
		    json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "list_id",
			pgr_json_int(res, i, 0), "list",
			pgr_json_text(res, i, 1), "channel",
			pgr_json_text(res, i, 2), "status",
			pgr_json_text(res, i, 3), "source",
			pgr_json_text(res, i, 4), "created_at",
			pgr_json_time(res, i, 5), "updated_at",
			pgr_json_time(res, i, 6)));
	return a;
}

/* {"members": [...], "next_cursor"} of a search's rows (limit + 1). */
static json_t *
smp_page_json(const PGresult *res, unsigned limit)
{
	json_t *a = json_array();
	char buf[32];
	int i, n = PQntuples(res);

	for (i = 0; i < n && (unsigned)i < limit; i++)
		json_array_append_new(a, smp_member_row(res, i));
	return json_pack("{s:o, s:o}", "members", a, "next_cursor",
	    (unsigned)n > limit
		? json_string(store_members_cursor(
		      pgr_get_i64(res, (int)limit - 1, 0), buf, sizeof(buf)))
		: json_null());
}

/* The consent log of member 'member' from its rows (limit + 1). */
static json_t *
smp_consent_json(const PGresult *res, int64_t member, unsigned limit)
{
	json_t *a = json_array();
	char buf[32];
	int i, n = PQntuples(res);

	if (n == 1 && PQgetisnull(res, 0, 0))
		n = 0; /* the member, without events */
	for (i = 0; i < n && (unsigned)i < limit; i++)
		json_array_append_new(a,
		    json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			"id", pgr_json_int(res, i, 0), "channel",
			pgr_json_text(res, i, 1), "action",
			pgr_json_text(res, i, 2), "source",
			pgr_json_text(res, i, 3), "list_id",
			pgr_json_int(res, i, 4), "list",
			pgr_json_text(res, i, 5), "message_id",
			pgr_json_int(res, i, 6), "detail",
			pgr_json_text(res, i, 7), "at",
			pgr_json_time(res, i, 8)));
	return json_pack("{s:I, s:o, s:o}", "member_id", (json_int_t)member,
	    "events", a, "next_cursor",
	    (unsigned)n > limit
		? json_string(store_members_cursor(
		      pgr_get_i64(res, (int)limit - 1, 0), buf, sizeof(buf)))
		: json_null());
}

/* [[id, double_optin] or null, ...] of a lists' lookup. */
static json_t *
smp_lists_json(const PGresult *res)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(a,
		    PQgetisnull(res, i, 1)
			? json_null()
			: json_pack("[I, b]",
			      (json_int_t)pgr_get_i64(res, i, 1),
			      pgr_get_i64(res, i, 2) != 0));
	return a;
}

/* ---- Reads ---------------------------------------------------------- */

enum smp_read {
	SMP_MEMBER = 0,
	SMP_SEARCH,
	SMP_CONSENT,
	SMP_LISTS,
};

/* One read in flight. */
struct smp_op {
	enum smp_read kind;
	store_mb_json_fn *fn;
	void *arg;
	int64_t member;	 /* the consent log's */
	unsigned limit;	 /* a page's size */
	json_t *o;	 /* the answer so far */
	bool none;	 /* not found (the member, the search's list) */
	int answers;	 /* answers still to come */
	bool failed;	 /* an answer was an error */
	char error[256]; /* the first error */
};

static void
smp_note_error(struct smp_op *op, const char *error)
{
	if (!op->failed)
		snprintf(op->error, sizeof(op->error), "%s", error);
	op->failed = true;
}

/* An answer is in: the caller hears once all are. */
static void
smp_settle(struct smp_op *op)
{
	if (--op->answers > 0)
		return;
	if (op->failed || op->none || op->o == NULL) {
		json_decref(op->o);
		op->fn(op->arg, NULL, op->failed ? op->error : NULL);
	} else
		op->fn(op->arg, op->o, NULL);
	free(op);
}

/* The first statement of a read: a member, a list, a consent log. */
static void
smp_read_answer(void *arg, const struct pg_answer *a)
{
	struct smp_op *op = arg;

	if (a->error != NULL)
		smp_note_error(op, a->error);
	else if (op->kind == SMP_MEMBER) {
		if (PQntuples(a->res) == 1)
			op->o = smp_member_row(a->res, 0);
		else
			op->none = true;
	} else if (op->kind == SMP_SEARCH)
		op->none = PQntuples(a->res) != 1 || PQgetisnull(a->res, 0, 0);
	else if (op->kind == SMP_LISTS)
		op->o = smp_lists_json(a->res);
	else if (PQntuples(a->res) == 0)
		op->none = true;
	else
		op->o = smp_consent_json(a->res, op->member, op->limit);
	smp_settle(op);
}

/* The second statement: a member's subscriptions, a search's page. */
static void
smp_more_answer(void *arg, const struct pg_answer *a)
{
	struct smp_op *op = arg;

	if (a->error != NULL)
		smp_note_error(op, a->error);
	else if (op->kind == SMP_SEARCH)
		op->o = smp_page_json(a->res, op->limit);
	else if (op->o != NULL)
		json_object_set_new(op->o, "subscriptions",
		    smp_subs_json(a->res));
	smp_settle(op);
}

static struct smp_op *
smp_op_new(enum smp_read kind, store_mb_json_fn *fn, void *arg)
{
	struct smp_op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->fn = fn;
	op->arg = arg;
	return op;
}

/*
 * Sends q as one statement of op. The first one sent failing frees op
 * (nothing of it went out); a later one cannot be taken back, so the
 * statements already sent answer and settle op, failed. 0 / -1.
 */
static int
smp_send(struct store *st, struct smp_op *op, const struct pg_query *q,
    char *err, size_t errlen)
{
	struct pg_query s = *q;

	s.flags = PG_IDEMPOTENT;
	s.arg = op;
	op->answers++;
	if (pg_send(store_pg_conn(st), &s, err, errlen) == -1) {
		if (--op->answers == 0)
			free(op);
		else
			smp_note_error(op, err);
		return -1;
	}
	return 0;
}

/* ---- Writes --------------------------------------------------------- */

/* One write in flight. */
struct smp_write {
	store_mb_done_fn *fn;
	void *arg;
	struct mb_done d;
	bool failed;	 /* a statement answered an error */
	char error[256]; /* that error, or the conflict's text */
};

static void
smp_write_commit(void *arg, bool ok)
{
	struct smp_write *w = arg;

	w->d.ok = ok && !w->failed;
	if ((!w->d.ok || w->d.conflict) && w->error[0] != '\0')
		w->d.error = w->error;
	w->fn(w->arg, &w->d);
	free(w);
}

static bool
smp_write_failed(struct smp_write *w, const struct pg_answer *a)
{
	if (a->error == NULL)
		return false;
	w->failed = true;
	snprintf(w->error, sizeof(w->error), "%s", a->error);
	return true;
}

/* The conflict a create or update read: columns 'at' (what), at + 1. */
static void
smp_conflict(struct smp_write *w, const PGresult *res, int at,
    const struct member_fields *f)
{
	const char *what;

	if (PQgetisnull(res, 0, at))
		return;
	what = PQgetvalue(res, 0, at);
	w->d.conflict = true;
	snprintf(w->error, sizeof(w->error),
	    "%s %s already belongs to member %" PRId64, what,
	    strcmp(what, "phone") == 0 ? f->phone : f->email,
	    pgr_get_i64(res, 0, at + 1));
}

/* A create's or update's write and the fields it was given. */
struct smp_member_write {
	struct smp_write w;
	char phone[MSG_ADDR_MAX];
	char email[MSG_ADDR_MAX];
};

static void
smp_create_answer(void *arg, const struct pg_answer *a)
{
	struct smp_member_write *mw = arg;
	struct member_fields f = {.phone = mw->phone, .email = mw->email};

	if (smp_write_failed(&mw->w, a) || PQntuples(a->res) != 1)
		return;
	if (!PQgetisnull(a->res, 0, 0)) {
		mw->w.d.id = pgr_get_i64(a->res, 0, 0);
		mw->w.d.found = mw->w.d.changed = true;
		return;
	}
	smp_conflict(&mw->w, a->res, 1, &f);
	if (!mw->w.d.conflict) {
		/* a writer without the lock, not committed when read */
		mw->w.d.conflict = true;
		snprintf(mw->w.error, sizeof(mw->w.error),
		    "the phone or email already belongs to another member");
	}
}

static void
smp_update_answer(void *arg, const struct pg_answer *a)
{
	struct smp_member_write *mw = arg;
	struct member_fields f = {.phone = mw->phone, .email = mw->email};

	if (smp_write_failed(&mw->w, a) || PQntuples(a->res) != 1)
		return;
	mw->w.d.found = pgr_get_bool(a->res, 0, 0);
	smp_conflict(&mw->w, a->res, 1, &f);
	mw->w.d.changed = pgr_get_bool(a->res, 0, 3);
}

static void
smp_opt_answer(void *arg, const struct pg_answer *a)
{
	struct smp_write *w = arg;

	if (smp_write_failed(w, a) || PQntuples(a->res) != 1)
		return;
	w->d.found = pgr_get_bool(a->res, 0, 0);
	w->d.changed = pgr_get_bool(a->res, 0, 1);
}

/*
 * Sends the group's statements q[0..n) for w, then its commit callback;
 * w is freed when nothing was sent. A statement after the first that
 * cannot be added fails the group (store_abort_group()).
 */
static int
smp_group(struct store *st, struct smp_write *w, const struct pg_query *q,
    size_t n, char *err, size_t errlen)
{
	struct pg_query s;
	size_t i;

	for (i = 0; i < n; i++) {
		s = q[i];
		s.arg = w;
		if (store_pg_group_send(st, &s, err, errlen) == -1) {
			if (i == 0) {
				free(w);
				return -1;
			}
			w->failed = true;
			snprintf(w->error, sizeof(w->error), "%s", err);
			break;
		}
	}
	store_on_commit(st, smp_write_commit, w);
	if (i < n)
		store_abort_group(st);
	return 0;
}

static int
smp_write(struct store *st, const struct member_write_pg *mw,
    struct smp_member_write *w, char *err, size_t errlen)
{
	const struct member_fields *f = mw->f;
	unsigned set = f->set;
	struct sm_bind b;
	char ids[24], now[24], bits[24], *lists = NULL, *chans = NULL;
	const char *v[13], *ch[SMP_SUBS_MAX];
	char *add = NULL, *remove = NULL;
	int64_t lid[SMP_SUBS_MAX];
	size_t i;
	int rc;

	if (mw->id == 0) {
		/* a create sets what it has: merges become replacements */
		if ((set & MF_ATTRS_MERGE) != 0)
			set = (set & ~MF_ATTRS_MERGE) | MF_ATTRS;
		if ((set & MF_TAGS_ADD) != 0)
			set = (set & ~MF_TAGS_ADD) | MF_TAGS;
	}
	if (store_members_prepare(f, set, &b, err, errlen) == -1) {
		free(w);
		return -1;
	}
	snprintf(w->phone, sizeof(w->phone), "%s",
	    (set & MF_PHONE) && f->phone != NULL ? f->phone : "");
	snprintf(w->email, sizeof(w->email), "%s",
	    (set & MF_EMAIL) && f->email != NULL ? f->email : "");
	if (mw->id == 0) {
		v[0] = (set & MF_PHONE) ? f->phone : NULL;
		v[1] = (set & MF_EMAIL) ? f->email : NULL;
		v[2] = (set & MF_FIRST_NAME) ? f->first_name : NULL;
		v[3] = (set & MF_LAST_NAME) ? f->last_name : NULL;
		v[4] = (set & MF_ZIP) ? f->zip : NULL;
		v[5] = (set & MF_TIME_ZONE) ? f->time_zone : NULL;
		v[6] = b.attrs;
		v[7] = b.tags;
		v[8] = pgr_i64(now, mw->now, false);
		for (i = 0; i < mw->nsubs; i++) {
			lid[i] = mw->subs[i].list;
			ch[i] = channel_to_text(mw->subs[i].ch);
		}
		if (mw->nsubs > 0) {
			v[9] = lists = pgr_array(NULL, lid, mw->nsubs);
			v[10] = chans = pgr_array(ch, NULL, mw->nsubs);
			v[11] = mw->source;
		}
	} else {
		v[0] = pgr_i64(ids, mw->id, false);
		v[1] = pgr_i64(now, mw->now, false);
		v[2] = pgr_i64(bits, (int64_t)set, false);
		v[3] = f->phone;
		v[4] = f->email;
		v[5] = f->first_name;
		v[6] = f->last_name;
		v[7] = f->zip;
		v[8] = f->time_zone;
		v[9] = b.attrs;
		v[10] = b.tags;
		if (mw->add_tags != NULL)
			add = json_dumps(mw->add_tags, JSON_COMPACT);
		if (mw->remove_tags != NULL)
			remove = json_dumps(mw->remove_tags, JSON_COMPACT);
		v[11] = add;
		v[12] = remove;
	}
	rc = smp_group(st, &w->w,
	    (const struct pg_query[]){{.sql = SMP_LOCK},
		{.sql = mw->id != 0	? smp_sql_update
			: lists != NULL ? smp_sql_create_subs
					: smp_sql_create,
		    .nparams = mw->id != 0 ? 13
			: lists != NULL	   ? 12
					   : 9,
		    .values = v,
		    .done =
			mw->id == 0 ? smp_create_answer : smp_update_answer}},
	    2, err, errlen);
	store_members_bind_clear(&b);
	free(lists);
	free(chans);
	free(add);
	free(remove);
	return rc;
}

static int
smp_opt(struct store *st, const struct consent_change *cc, bool out,
    struct smp_write *w, char *err, size_t errlen)
{
	bool email = cc->ch == CHANNEL_EMAIL;
	char ids[24], now[24], msg[24];
	const char *v[5] = {pgr_i64(ids, cc->member, false),
	    pgr_i64(now, cc->now, false), cc->source,
	    cc->message_id > 0 ? pgr_i64(msg, cc->message_id, false) : NULL,
	    cc->detail};

	return smp_group(st, w,
	    &(struct pg_query){.sql = out
		    ? (email ? smp_sql_optout_email : smp_sql_optout_sms)
		    : (email ? smp_sql_optin_email : smp_sql_optin_sms),
		.nparams = 5,
		.values = v,
		.done = smp_opt_answer},
	    1, err, errlen);
}

/* An export page being read. */
struct smp_export {
	struct export_page *pg;
	const struct export_sink *to;
	store_export_done_fn *done;
	void *arg;
};

/* The page's rows to the sink: 0, or -1 when the sink stopped. */
static int
smp_export_rows(struct smp_export *x, const PGresult *res)
{
	const char *cols[SMP_CONSENT_NCOLS];
	struct export_row row = {smp_consent_head, SMP_CONSENT_NCOLS};
	char at[40];
	int i, n = PQntuples(res);
	size_t c;

	if (x->pg->after <= 0 && x->to->each(x->to->arg, &row) == -1)
		return -1;
	row.cols = cols;
	for (i = 0; i < n && (unsigned)i < x->pg->limit; i++) {
		for (c = 0; c < SMP_CONSENT_NCOLS; c++)
			cols[c] = PQgetisnull(res, i, (int)c)
			    ? NULL
			    : PQgetvalue(res, i, (int)c);
		cols[10] =
		    msg_time_to_text(pgr_get_i64(res, i, 10), at, sizeof(at));
		if (x->to->each(x->to->arg, &row) == -1)
			return -1;
	}
	if ((unsigned)n > x->pg->limit)
		x->pg->next = pgr_get_i64(res, (int)x->pg->limit - 1, 0);
	return 0;
}

static void
smp_export_answer(void *arg, const struct pg_answer *a)
{
	struct smp_export *x = arg;

	if (a->error != NULL)
		x->done(x->arg, -1, a->error);
	else if (smp_export_rows(x, a->res) == -1)
		x->done(x->arg, -1, "export: stopped by the writer");
	else
		x->done(x->arg, 0, NULL);
	free(x);
}

#endif /* HAVE_LIBPQ */

/* ---- The public operations ------------------------------------------- */

/* NULL, or a JSON array of non-empty strings. */
static bool
smp_tags_ok(const json_t *a)
{
	const json_t *v;
	size_t i;

	if (a == NULL)
		return true;
	if (!json_is_array(a))
		return false;
	json_array_foreach(a, i, v)
		if (!json_is_string(v) || json_string_length(v) == 0)
			return false;
	return true;
}

/* Refuses a SQLite store or a build without libpq: -1 with err. */
static int
smp_refuse(struct store *st, char *err, size_t errlen)
{
	if (store_postgresql_only(st, "store_members_pg", err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	return 0;
#else
	return store_no_libpq(err, errlen);
#endif
}

int
store_member_json_pg(struct store *st, int64_t id, store_mb_json_fn *fn,
    void *arg, char *err, size_t errlen)
{
	if (smp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	char ids[24];
	const char *v[1] = {pgr_i64(ids, id, false)};
	struct smp_op *op = smp_op_new(SMP_MEMBER, fn, arg);

	if (smp_send(st, op,
		&(struct pg_query){.sql = smp_sql_member,
		    .nparams = 1,
		    .values = v,
		    .done = smp_read_answer},
		err, errlen) == -1)
		return -1;
	(void)smp_send(st, op,
	    &(struct pg_query){.sql = smp_sql_subs,
		.nparams = 1,
		.values = v,
		.done = smp_more_answer},
	    err, errlen);
	return 0;
#else
	(void)id, (void)fn, (void)arg;
	return -1;
#endif
}

#ifdef HAVE_LIBPQ
/* %pattern% of a name search: ASCII lower-cased, LIKE's wildcards
 * escaped; a new string. */
static char *
smp_name_pattern(const char *name)
{
	char *pat = xmalloc(2 * strlen(name) + 3), c;
	size_t i, j = 0;

	pat[j++] = '%';
	for (i = 0; name[i] != '\0'; i++) {
		c = name[i];
		if (c == '%' || c == '_' || c == '\\')
			pat[j++] = '\\';
		pat[j++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	pat[j++] = '%';
	pat[j] = '\0';
	return pat;
}
#endif

int
store_member_search_pg(struct store *st, const struct member_search *s,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen)
{
	const struct member_query *q = &s->q;

	if (smp_refuse(st, err, errlen) == -1)
		return -1;
	if (q->limit < 1 || q->limit > SM_LIMIT_MAX) {
		snprintf(err, errlen, "limit: must be 1..%d", SM_LIMIT_MAX);
		return -1;
	}
#ifdef HAVE_LIBPQ
	char after[24], limit[24], listid[24], *pat = NULL, *end;
	const char *lid = NULL, *v[8];
	struct smp_op *op = smp_op_new(SMP_SEARCH, fn, arg);
	long long n;
	int rc = 0;

	op->limit = q->limit;
	if (q->name != NULL && *q->name != '\0')
		pat = smp_name_pattern(q->name);
	if (s->list_ref != NULL && s->list_ref[0] >= '1' &&
	    s->list_ref[0] <= '9') {
		n = strtoll(s->list_ref, &end, 10);
		if (*end == '\0' && n > 0 && n < INT64_MAX)
			lid = pgr_i64(listid, (int64_t)n, false);
	}
	v[0] = q->phone;
	v[1] = q->phone != NULL ? NULL : q->email;
	v[2] = pat;
	v[3] = q->tag;
	v[4] = s->list_ref;
	v[5] = lid;
	v[6] = pgr_i64(after, q->after > 0 ? q->after : 0, false);
	v[7] = pgr_i64(limit, (int64_t)q->limit + 1, false);
	if (s->list_ref != NULL)
		rc = smp_send(st, op,
		    &(struct pg_query){.sql = smp_sql_list,
			.nparams = 2,
			.values = (const char *const[]){lid, s->list_ref},
			.done = smp_read_answer},
		    err, errlen);
	if (rc == 0 &&
	    smp_send(st, op,
		&(struct pg_query){.sql = smp_sql_search,
		    .nparams = 8,
		    .values = v,
		    .done = smp_more_answer},
		err, errlen) == -1 &&
	    s->list_ref == NULL)
		rc = -1; /* else the list's answer settles op, failed */
	free(pat);
	return rc;
#else
	(void)fn, (void)arg;
	return -1;
#endif
}

int
store_consent_json_pg(struct store *st, const struct consent_page *p,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen)
{
	if (smp_refuse(st, err, errlen) == -1)
		return -1;
	if (p->limit < 1 || p->limit > SM_LIMIT_MAX) {
		snprintf(err, errlen, "limit: must be 1..%d", SM_LIMIT_MAX);
		return -1;
	}
#ifdef HAVE_LIBPQ
	char ids[24], after[24], limit[24];
	const char *v[3] = {pgr_i64(ids, p->member, false),
	    pgr_i64(after, p->after > 0 ? p->after : 0, false),
	    pgr_i64(limit, (int64_t)p->limit + 1, false)};
	struct smp_op *op = smp_op_new(SMP_CONSENT, fn, arg);

	op->member = p->member;
	op->limit = p->limit;
	return smp_send(st, op,
	    &(struct pg_query){.sql = smp_sql_consent,
		.nparams = 3,
		.values = v,
		.done = smp_read_answer},
	    err, errlen);
#else
	(void)fn, (void)arg;
	return -1;
#endif
}

int
store_member_write_pg(struct store *st, const struct member_write_pg *w,
    store_mb_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (smp_refuse(st, err, errlen) == -1 ||
	    store_members_check_fields(w->f, err, errlen) == -1)
		return -1;
	if ((w->id != 0 && (w->f->set & MF_TAGS_ADD) != 0) ||
	    ((w->add_tags != NULL || w->remove_tags != NULL) &&
		(w->id == 0 || (w->f->set & MF_TAGS) != 0 ||
		    !smp_tags_ok(w->add_tags) ||
		    !smp_tags_ok(w->remove_tags)))) {
		snprintf(err, errlen,
		    "tags: give either tags (replaces them all) or "
		    "add_tags/remove_tags (arrays of strings), not both");
		return -1;
	}
	if (w->nsubs > SMP_SUBS_MAX ||
	    (w->nsubs > 0 &&
		(w->id != 0 || w->source == NULL || *w->source == '\0'))) {
		snprintf(err, errlen,
		    "member: at most %d subscriptions, a create's only, "
		    "with a consent source",
		    SMP_SUBS_MAX);
		return -1;
	}
	if (w->id == 0 && !((w->f->set & MF_PHONE) && w->f->phone != NULL) &&
	    !((w->f->set & MF_EMAIL) && w->f->email != NULL)) {
		snprintf(err, errlen,
		    "member: a phone or an email is required");
		return -1;
	}
#ifdef HAVE_LIBPQ
	struct smp_member_write *mw = xcalloc(1, sizeof(*mw));

	mw->w.fn = fn;
	mw->w.arg = arg;
	mw->w.d.id = w->id;
	return smp_write(st, w, mw, err, errlen);
#else
	(void)fn, (void)arg;
	return -1;
#endif
}

/* The checks of an opt-out or opt-in by id. */
static int
smp_opt_check(struct store *st, const struct consent_change *cc,
    const char *what, char *err, size_t errlen)
{
	if (smp_refuse(st, err, errlen) == -1 ||
	    store_members_check_ch(cc->ch, what, err, errlen) == -1)
		return -1;
	if (cc->source == NULL || *cc->source == '\0') {
		snprintf(err, errlen, "%s: source required", what);
		return -1;
	}
	return 0;
}

int
store_member_optout_pg(struct store *st, const struct consent_change *cc,
    store_mb_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (smp_opt_check(st, cc, "opt-out", err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	struct smp_write *w = xcalloc(1, sizeof(*w));

	w->fn = fn;
	w->arg = arg;
	w->d.id = cc->member;
	return smp_opt(st, cc, true, w, err, errlen);
#else
	(void)fn, (void)arg;
	return -1;
#endif
}

int
store_member_optin_pg(struct store *st, const struct consent_change *cc,
    store_mb_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (smp_opt_check(st, cc, "opt-in", err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	struct smp_write *w = xcalloc(1, sizeof(*w));

	w->fn = fn;
	w->arg = arg;
	w->d.id = cc->member;
	return smp_opt(st, cc, false, w, err, errlen);
#else
	(void)fn, (void)arg;
	return -1;
#endif
}

int
store_export_consent_pg(struct store *st, const struct export_req_pg *r,
    store_export_done_fn *done, void *arg, char *err, size_t errlen)
{
	if (smp_refuse(st, err, errlen) == -1)
		return -1;
	r->pg->next = 0;
	if (r->pg->limit < 1) {
		snprintf(err, errlen, "export: limit must be at least 1");
		return -1;
	}
#ifdef HAVE_LIBPQ
	char ids[24], after[24], limit[24];
	const char *v[3] = {pgr_i64(ids, r->member > 0 ? r->member : 0, false),
	    pgr_i64(after, r->pg->after > 0 ? r->pg->after : 0, false),
	    pgr_i64(limit, (int64_t)r->pg->limit + 1, false)};
	struct smp_export *x = xcalloc(1, sizeof(*x));

	x->pg = r->pg;
	x->to = r->to;
	x->done = done;
	x->arg = arg;
	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = smp_sql_export_consent,
		    .nparams = 3,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = smp_export_answer,
		    .arg = x},
		err, errlen) == -1) {
		free(x);
		return -1;
	}
	return 0;
#else
	(void)done, (void)arg;
	return -1;
#endif
}

int
store_lists_resolve_pg(struct store *st, const char *const *refs, size_t n,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen)
{
	if (smp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	char *a = pgr_array(refs, NULL, n);
	const char *v[1] = {a};
	struct smp_op *op = smp_op_new(SMP_LISTS, fn, arg);
	int rc;

	rc = smp_send(st, op,
	    &(struct pg_query){.sql = smp_sql_lists,
		.nparams = 1,
		.values = v,
		.done = smp_read_answer},
	    err, errlen);
	free(a);
	return rc;
#else
	(void)refs, (void)n, (void)fn, (void)arg;
	return -1;
#endif
}
