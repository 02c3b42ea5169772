/*
 * store_lists_pg.c - the lists API's store operations on PostgreSQL
 * (store_lists_pg.h): lists made, changed and deleted through the API,
 * one list or all as JSON, a list's members, subscribe and unsubscribe,
 * the list's CSV export, and the lists a received text is routed with.
 *
 * DESIGN
 *
 * The statements are store_lists.c's and store_subscriptions.c's,
 * translated as store_members_pg.c translates its own (doc/postgresql.md);
 * the checks of a definition (store_lists_check()), the stored form of
 * its questions and the states of the counts and the export are
 * store_lists.c's, so a list reads the same on both stores.
 *
 * Reads are one statement each on store_pg_conn(), outside the group. A
 * list is found by reference as the API takes it (an id, else a name)
 * inside the statement; its keywords and counts are subqueries of its
 * row, so one list and all lists are the same statement.
 *
 * Writes are statements in the node's group, answered from the group's
 * commit callback; no expected case raises an error:
 *  - create and update take the transaction-level advisory lock
 *    (1868, 2), the one the config sync at a node's start takes, in a
 *    statement of its own; the statement after it sees what every other
 *    node's list write committed before the lock was granted, and writes
 *    only when no other list has the name or one of the keywords (and,
 *    for an update, the list is not the config's): two nodes creating
 *    lists with one keyword at once get one 201 and one 409, never a
 *    unique violation that would fail the group. The keywords become
 *    exactly the definition's (ON CONFLICT DO NOTHING: a keyword is only
 *    ever taken from nobody).
 *  - a delete takes the same lock, then the list's row FOR UPDATE (a
 *    subscribe on another node holds it FOR KEY SHARE until its group
 *    commits), each in a statement of its own, then one statement: the
 *    list (not the config's), the count of its members unless forced,
 *    then the rows (keywords and subscriptions go with it, ON DELETE
 *    CASCADE). An update racing the delete finds no list (404) instead
 *    of writing keywords of a deleted list, and the count sees every
 *    member committed before.
 *  - a subscribe is one statement (after the members' lock (1868, 7)
 *    when it makes the member, as a create does): the list's row locked
 *    FOR KEY SHARE (a list another node is deleting is waited for, then
 *    not found: 404, where the subscription's foreign key would have
 *    failed the group), the member made when new, the subscription
 *    inserted or moved (left -> rejoined, pending -> active) by ON
 *    CONFLICT DO UPDATE ... WHERE, and its consent event from what that
 *    returned, so two nodes subscribing one member at once write one
 *    event.
 *  - an unsubscribe is one UPDATE ... WHERE status <> 'left' RETURNING
 *    and the consent events of what it returned.
 *
 * Routing: a node plans a received text without reading the store
 * (daemon/inbound.c, inbound_plan()), but the lists are the database's,
 * made and changed through the API of any node. So a text that may be a
 * keyword (one word) or a YES reads the lists it needs when it arrives,
 * store_route_lists_pg(): the list with that keyword, or every list's
 * welcome for a YES. Nothing is cached: a list made, changed or deleted
 * on another node routes (or stops routing) from its commit on, and the
 * routing statement finds the list again by name in its own snapshot.
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
#include "store_lists_pg.h"
#include "store_members-internal.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"

#define SLP_LISTS_LOCK	 "SELECT pg_advisory_xact_lock(1868, 2)"
#define SLP_MEMBERS_LOCK "SELECT pg_advisory_xact_lock(1868, 7)"

/*
 * $1 a list by reference (an id, else a name); NULL: every list. The
 * lists read (t), then, for the counts, the subscriptions of those lists
 * with their opt-outs (sub), each member's best state (b) and the counts
 * of both kinds per list (c: members by their best state, [[state, n],
 * ...]; cc: subscriptions by channel and state, [[channel, state, n],
 * ...]), in one pass over the lists' subscriptions (a subquery per list
 * would be planned for an average list, not this one; "$1 IS NULL OR"
 * lets the plan of every list skip t).
 */
#define SLP_LISTS_READ                                                        \
	"WITH t AS MATERIALIZED (SELECT id FROM lists WHERE $1::text IS NULL" \
	" OR id = coalesce((SELECT id FROM lists WHERE id = CASE WHEN"        \
	" $1::text ~ '^[0-9]{1,18}$' THEN $1::bigint END), (SELECT id FROM"   \
	" lists WHERE name = $1::text))),"
#define SLP_COUNTS_CTES                                                      \
	" sub AS MATERIALIZED (SELECT s.list_id, s.member_id, s.channel,"    \
	" " STORE_LISTS_STATE_SQL " AS st FROM subscriptions s"              \
	" LEFT JOIN sms_optout so ON so.member_id = s.member_id"             \
	" LEFT JOIN email_optout eo ON eo.member_id = s.member_id"           \
	" WHERE $1::text IS NULL OR s.list_id IN (SELECT id FROM t)),"       \
	" b AS (SELECT list_id, max(st) AS best FROM sub"                    \
	" GROUP BY list_id, member_id),"                                     \
	" c AS (SELECT list_id, json_agg(json_build_array(best, n)) AS j"    \
	" FROM (SELECT list_id, best, count(*) AS n FROM b GROUP BY 1, 2) x" \
	" GROUP BY list_id),"                                                \
	" cc AS (SELECT list_id, json_agg(json_build_array(channel, st, n))" \
	" AS j FROM (SELECT list_id, channel, st, count(*) AS n FROM sub"    \
	" GROUP BY 1, 2, 3) x GROUP BY list_id),"
#define SLP_LIST_SELECT(ctes, counts, joins)                             \
	SLP_LISTS_READ ctes                                              \
	    " k AS (SELECT list_id, json_agg(keyword"                    \
	    " ORDER BY keyword COLLATE \"C\") AS j FROM list_keywords"   \
	    " WHERE $1::text IS NULL OR list_id IN (SELECT id FROM t)"   \
	    " GROUP BY list_id)"                                         \
	    " SELECT l.id, l.name, l.sender, l.welcome_sms,"             \
	    " l.welcome_email_subject, l.welcome_email, l.double_optin," \
	    " l.questions, l.from_config, l.created_at, l.updated_at,"   \
	    " l.time_zone, coalesce(k.j, '[]')::text, " counts           \
	    " FROM lists l JOIN t ON t.id = l.id"                        \
	    " LEFT JOIN k ON k.list_id = l.id" joins " ORDER BY l.id"
static const char slp_sql_list[] =
    SLP_LIST_SELECT(SLP_COUNTS_CTES, "c.j::text, cc.j::text",
	" LEFT JOIN c ON c.list_id = l.id LEFT JOIN cc ON cc.list_id = l.id");
static const char slp_sql_list_light[] =
    SLP_LIST_SELECT("", "NULL::text, NULL::text", "");

/*
 * A create ($11 NULL) or an update of list $11: $1 name, $2 sender, $3
 * welcome SMS, $4 email subject, $5 email body, $6 double opt-in, $7
 * questions, $8 now, $9 time zone, $10 keywords (a text array). Writes
 * only when no other list has the name or a keyword and the list is not
 * the config's; an update's row only when something differs (as
 * store_lists.c's). Answers (the list's id or NULL, the list exists, it
 * is the config's, its name, the other list with the name, the first
 * keyword another list has, that list).
 */
static const char slp_sql_write[] =
    "WITH cur AS MATERIALIZED (SELECT id, name, from_config FROM lists"
    " WHERE id = $11::bigint),"
    " nm AS MATERIALIZED (SELECT id FROM lists WHERE name = $1::text"
    " AND id IS DISTINCT FROM $11::bigint),"
    " kw AS MATERIALIZED (SELECT k.keyword, k.list_id FROM unnest("
    "$10::text[]) WITH ORDINALITY AS w(kw, i) JOIN list_keywords k"
    " ON k.keyword = w.kw WHERE k.list_id IS DISTINCT FROM $11::bigint"
    " ORDER BY w.i LIMIT 1),"
    " ok AS MATERIALIZED (SELECT 1 AS y WHERE NOT EXISTS (SELECT 1 FROM nm)"
    " AND NOT EXISTS (SELECT 1 FROM kw) AND ($11::bigint IS NULL"
    " OR EXISTS (SELECT 1 FROM cur WHERE from_config = 0))),"
    " ins AS (INSERT INTO lists (name, sender, welcome_sms,"
    " welcome_email_subject, welcome_email, double_optin, questions,"
    " from_config, created_at, updated_at, time_zone) SELECT $1::text,"
    " $2::text, $3::text, $4::text, $5::text, $6::bigint, $7::text, 0,"
    " $8::bigint, $8::bigint, $9::text FROM ok WHERE $11::bigint IS NULL"
    " ON CONFLICT DO NOTHING RETURNING id),"
    " up AS (UPDATE lists SET name = $1::text, sender = $2::text,"
    " welcome_sms = $3::text, welcome_email_subject = $4::text,"
    " welcome_email = $5::text, double_optin = $6::bigint,"
    " questions = $7::text, updated_at = $8::bigint, time_zone = $9::text"
    " WHERE id = $11::bigint AND EXISTS (SELECT 1 FROM ok)"
    " AND (name, sender, welcome_sms, welcome_email_subject, welcome_email,"
    " double_optin, questions, time_zone) IS DISTINCT FROM ($1::text,"
    " $2::text, $3::text, $4::text, $5::text, $6::bigint, $7::text,"
    " $9::text) RETURNING id),"
    " tgt AS MATERIALIZED (SELECT id FROM ins UNION ALL SELECT $11::bigint"
    " FROM ok WHERE $11::bigint IS NOT NULL),"
    " kd AS (DELETE FROM list_keywords WHERE list_id IN (SELECT id FROM tgt)"
    " AND keyword <> ALL ($10::text[])),"
    " ki AS (INSERT INTO list_keywords (keyword, list_id) SELECT k,"
    " (SELECT id FROM tgt) FROM unnest($10::text[]) AS k"
    " WHERE EXISTS (SELECT 1 FROM tgt) ON CONFLICT (keyword) DO NOTHING)"
    " SELECT (SELECT id FROM tgt), EXISTS (SELECT 1 FROM cur),"
    " (SELECT from_config FROM cur), (SELECT name FROM cur),"
    " (SELECT id FROM nm), (SELECT keyword FROM kw), (SELECT list_id FROM kw)";

/*
 * A delete's list row locked first ($1), in a statement of its own: the
 * delete's statement, after it, counts the members that subscribes on
 * other nodes (which lock the row FOR KEY SHARE) committed meanwhile.
 */
static const char slp_sql_lock_list[] =
    "SELECT 1 FROM lists WHERE id = $1::bigint FOR UPDATE";

/*
 * A delete: $1 the list, $2 force (0/1). Answers (the list exists, it is
 * the config's, its members, deleted).
 */
static const char slp_sql_delete[] =
    "WITH l AS MATERIALIZED (SELECT id, from_config FROM lists"
    " WHERE id = $1::bigint),"
    " n AS MATERIALIZED (SELECT count(DISTINCT member_id) AS c"
    " FROM subscriptions WHERE list_id = $1::bigint AND status <> 'left'),"
    " go AS MATERIALIZED (SELECT id FROM l WHERE from_config = 0"
    " AND ($2::int <> 0 OR (SELECT c FROM n) = 0)),"
    " dp AS (DELETE FROM member_prompts WHERE list_id IN (SELECT id FROM go)),"
    " dl AS (DELETE FROM lists WHERE id IN (SELECT id FROM go) RETURNING id)"
    " SELECT EXISTS (SELECT 1 FROM l), coalesce((SELECT from_config FROM l),"
    " 0), (SELECT c FROM n), EXISTS (SELECT 1 FROM dl)";

/* The subscriptions of list $1 a listing shows: $2 status (NULL: not
 * left). */
#define SLP_MEMBERS_OF(s)                                                 \
	s "list_id = $1::bigint AND (" s "status = $2::text OR ($2::text" \
	  " IS NULL AND " s "status <> 'left'))"
/* A page of a list's members: $3 cursor, $4 members (limit + 1). */
static const char slp_sql_members[] =
    "SELECT " SM_COLS ", s.channel, s.status, s.source, s.created_at"
    " FROM subscriptions s JOIN members m ON m.id = s.member_id"
    " LEFT JOIN sms_optout so ON so.member_id = m.id"
    " LEFT JOIN email_optout eo ON eo.member_id = m.id"
    " WHERE " SLP_MEMBERS_OF(
	"s.") " AND s.member_id IN (SELECT DISTINCT"
	      " member_id FROM subscriptions WHERE " SLP_MEMBERS_OF(
		  "") " AND member_id > $3::bigint ORDER BY member_id LIMIT $4::bigint)"
		      " ORDER BY s.member_id, s.channel";

/* A subscribe's member: $1 id, else $2 phone's, else $3 email's. */
static const char slp_sql_find[] =
    "SELECT id, phone, email FROM members WHERE id = coalesce($1::bigint,"
    " (SELECT id FROM members WHERE phone = $2::text),"
    " (SELECT id FROM members WHERE email = $3::text))";

/*
 * A subscribe: $1 member (NULL: a new one with $2 phone and $3 email), $4
 * list, $5 channel, $6 status asked, $7 the event's detail, $8 now.
 * Answers (member, member made, list exists, what another member has
 * ("phone" first), that member, the status before, the status written,
 * opted out of the channel).
 */
static const char slp_sql_subscribe[] =
    "WITH own AS MATERIALIZED (SELECT CASE WHEN o.phone = $2::text"
    " THEN 'phone' ELSE 'email' END AS what, o.id FROM members o"
    " WHERE $1::bigint IS NULL AND (o.phone = $2::text"
    " OR o.email = $3::text) ORDER BY 1 DESC LIMIT 1),"
    " l AS MATERIALIZED (SELECT id FROM lists WHERE id = $4::bigint"
    " FOR KEY SHARE),"
    " mem AS (INSERT INTO members (phone, email, attributes, tags,"
    " created_at, updated_at) SELECT $2::text, $3::text, '{}', '[]',"
    " $8::bigint, $8::bigint WHERE $1::bigint IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM own) AND EXISTS (SELECT 1 FROM l)"
    " ON CONFLICT DO NOTHING RETURNING id),"
    " mm AS MATERIALIZED (SELECT id FROM mem UNION ALL SELECT id FROM members"
    " WHERE id = $1::bigint),"
    " cur AS MATERIALIZED (SELECT s.status FROM subscriptions s, mm"
    " WHERE s.member_id = mm.id AND s.list_id = $4::bigint"
    " AND s.channel = $5::text),"
    " sub AS (INSERT INTO subscriptions (member_id, list_id, channel, status,"
    " source, created_at, updated_at) SELECT mm.id, l.id, $5::text, $6::text,"
    " 'api', $8::bigint, $8::bigint FROM mm, l ON CONFLICT (member_id,"
    " list_id, channel) DO UPDATE SET status = excluded.status,"
    " source = excluded.source, updated_at = excluded.updated_at"
    " WHERE subscriptions.status = 'left' OR (subscriptions.status ="
    " 'pending' AND excluded.status = 'active') RETURNING status),"
    " ce AS (INSERT INTO consent_events (member_id, channel, action, source,"
    " list_id, message_id, detail, created_at) SELECT mm.id, $5::text,"
    " CASE WHEN (SELECT status FROM cur) = 'pending' THEN 'confirm'"
    " ELSE 'opt_in' END, 'api', $4::bigint, NULL, $7::text, $8::bigint"
    " FROM mm WHERE EXISTS (SELECT 1 FROM sub))"
    " SELECT (SELECT id FROM mm), EXISTS (SELECT 1 FROM mem),"
    " EXISTS (SELECT 1 FROM l), (SELECT what FROM own), (SELECT id FROM own),"
    " (SELECT status FROM cur), (SELECT status FROM sub),"
    " CASE WHEN $5::text = 'sms' THEN EXISTS (SELECT 1 FROM sms_optout o, mm"
    " WHERE o.member_id = mm.id) ELSE EXISTS (SELECT 1 FROM email_optout o,"
    " mm WHERE o.member_id = mm.id) END";

/*
 * An unsubscribe: $1 member, $2 list, $3 channels (a text array), $4 now.
 * Answers (the member exists, the channels left, comma-separated).
 */
static const char slp_sql_unsubscribe[] =
    "WITH mm AS MATERIALIZED (SELECT id FROM members WHERE id = $1::bigint),"
    " up AS (UPDATE subscriptions SET status = 'left', source = 'api',"
    " updated_at = $4::bigint WHERE member_id IN (SELECT id FROM mm)"
    " AND list_id = $2::bigint AND channel = ANY ($3::text[])"
    " AND status <> 'left' RETURNING channel),"
    " ce AS (INSERT INTO consent_events (member_id, channel, action, source,"
    " list_id, message_id, detail, created_at) SELECT $1::bigint, channel,"
    " 'opt_out', 'api', $2::bigint, NULL, NULL, $4::bigint FROM up"
    " ORDER BY channel = 'email')"
    " SELECT EXISTS (SELECT 1 FROM mm),"
    " (SELECT coalesce(string_agg(channel, ','), '') FROM up)";

/* A page of a list's CSV rows: $1 list, $2 cursor, $3 members (+ 1). */
static const char slp_sql_export[] = STORE_LISTS_EXPORT_FROM
    " WHERE s.list_id = $1::bigint AND s.member_id IN (SELECT DISTINCT"
    " member_id FROM subscriptions WHERE list_id = $1::bigint"
    " AND member_id > $2::bigint ORDER BY member_id LIMIT $3::bigint)"
    " ORDER BY s.member_id, s.channel";

/* A route's lists: $1 the keyword's, or (NULL) every one. */
static const char slp_sql_route[] =
    "SELECT l.name, l.welcome_sms, l.double_optin FROM lists l"
    " WHERE $1::text IS NULL OR l.id = (SELECT list_id FROM list_keywords"
    " WHERE keyword = $1::text) ORDER BY l.id";

/* ---- JSON of rows ----------------------------------------------------- */

/* A JSON text column parsed; an empty array when unreadable. */
static json_t *
slp_array_col(const PGresult *res, int row, int col)
{
	json_t *v = NULL;

	if (!PQgetisnull(res, row, col))
		v = json_loads(PQgetvalue(res, row, col), 0, NULL);
	if (json_is_array(v))
		return v;
	json_decref(v);
	return json_array();
}

/* {"active": 0, "pending": 0, "opted_out": 0, "left": 0} */
static json_t *
slp_zero_counts(void)
{
	return json_pack("{s:i, s:i, s:i, s:i}", "active", 0, "pending", 0,
	    "opted_out", 0, "left", 0);
}

/* "counts" and "channel_counts" of a list's row (columns 13, 14). */
static void
slp_counts(json_t *o, const PGresult *res, int row)
{
	json_t *c = slp_zero_counts(), *a, *v, *ch;
	size_t i;

	a = slp_array_col(res, row, 13);
	json_array_foreach(a, i, v)
		json_object_set(c,
		    store_lists_state(
			(int)json_integer_value(json_array_get(v, 0))),
		    json_array_get(v, 1));
	json_decref(a);
	json_object_set_new(o, "counts", c);
	c = json_pack("{s:o, s:o}", "sms", slp_zero_counts(), "email",
	    slp_zero_counts());
	a = slp_array_col(res, row, 14);
	json_array_foreach(a, i, v)
		if ((ch = json_object_get(c,
			 json_string_value(json_array_get(v, 0)))) != NULL)
			json_object_set(ch,
			    store_lists_state(
				(int)json_integer_value(json_array_get(v, 1))),
			    json_array_get(v, 2));
	json_decref(a);
	json_object_set_new(o, "channel_counts", c);
}

/* The list of row 'row', as store_list_json() gives it. */
static json_t *
slp_list_row(const PGresult *res, int row, bool light)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", pgr_json_int(res, row, 0));
	json_object_set_new(o, "name", pgr_json_text(res, row, 1));
	json_object_set_new(o, "sender", pgr_json_text(res, row, 2));
	json_object_set_new(o, "welcome_sms", pgr_json_text(res, row, 3));
	json_object_set_new(o, "welcome_email_subject",
	    pgr_json_text(res, row, 4));
	json_object_set_new(o, "welcome_email", pgr_json_text(res, row, 5));
	json_object_set_new(o, "double_optin",
	    json_boolean(pgr_get_i64(res, row, 6) != 0));
	json_object_set_new(o, "questions", slp_array_col(res, row, 7));
	json_object_set_new(o, "time_zone", pgr_json_text(res, row, 11));
	json_object_set_new(o, "from_config",
	    json_boolean(pgr_get_i64(res, row, 8) != 0));
	json_object_set_new(o, "created_at", pgr_json_time(res, row, 9));
	json_object_set_new(o, "updated_at", pgr_json_time(res, row, 10));
	json_object_set_new(o, "keywords", slp_array_col(res, row, 12));
	if (!light)
		slp_counts(o, res, row);
	return o;
}

/* A page of a list's members (store_list_members_json()): 'limit' of
 * them, and a cursor when the statement found one more. */
static json_t *
slp_members_json(const PGresult *res, unsigned limit)
{
	json_t *a = json_array(), *o;
	int64_t id, last = 0;
	unsigned n = 0;
	bool more = false;
	char buf[32];
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		id = pgr_get_i64(res, i, 0);
		if (id != last) {
			if (n == limit) {
				more = true;
				break;
			}
			n++;
			last = id;
		}
		o = smp_member_row(res, i);
		json_object_set_new(o, "subscription",
		    json_pack("{s:o, s:o, s:o, s:o}", "channel",
			pgr_json_text(res, i, SM_NCOLS), "status",
			pgr_json_text(res, i, SM_NCOLS + 1), "source",
			pgr_json_text(res, i, SM_NCOLS + 2), "created_at",
			pgr_json_time(res, i, SM_NCOLS + 3)));
		json_array_append_new(a, o);
	}
	return json_pack("{s:o, s:o}", "members", a, "next_cursor",
	    more ? json_string(store_members_cursor(last, buf, sizeof(buf)))
		 : json_null());
}

/* ---- Reads ------------------------------------------------------------ */

enum slp_read {
	SLP_ONE = 0, /* a list by reference */
	SLP_ALL,     /* every list */
	SLP_MEMBERS, /* a page of a list's members */
	SLP_FIND,    /* a subscribe's member */
	SLP_ROUTE,   /* a route's lists */
};

/* One read in flight. */
struct slp_op {
	enum slp_read kind;
	bool light;
	unsigned limit;
	store_mb_json_fn *fn;
	void *arg;
};

static json_t *
slp_read_json(const struct slp_op *op, const PGresult *res)
{
	json_t *a;
	int i, n = PQntuples(res);

	switch (op->kind) {
	case SLP_ONE:
		return n == 1 ? slp_list_row(res, 0, op->light) : NULL;
	case SLP_ALL:
		a = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(a,
			    slp_list_row(res, i, op->light));
		return json_pack("{s:o}", "lists", a);
	case SLP_MEMBERS:
		return slp_members_json(res, op->limit);
	case SLP_FIND:
		return n == 1 ? json_pack("{s:o, s:o, s:o}", "id",
				    pgr_json_int(res, 0, 0), "phone",
				    pgr_json_text(res, 0, 1), "email",
				    pgr_json_text(res, 0, 2))
			      : NULL;
	default:
		a = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(a,
			    json_pack("{s:o, s:o, s:b}", "name",
				pgr_json_text(res, i, 0), "welcome_sms",
				pgr_json_text(res, i, 1), "double_optin",
				pgr_get_i64(res, i, 2) != 0));
		return a;
	}
}

static void
slp_read_answer(void *arg, const struct pg_answer *a)
{
	struct slp_op *op = arg;

	if (a->error != NULL)
		op->fn(op->arg, NULL, a->error);
	else
		op->fn(op->arg, slp_read_json(op, a->res), NULL);
	free(op);
}

/* Sends one read; op is freed when it could not be. 0 / -1. */
static int
slp_read(struct store *st, struct slp_op *op, const struct pg_query *q,
    char *err, size_t errlen)
{
	return store_pg_read(st, q, slp_read_answer, op, err, errlen);
}

static struct slp_op *
slp_op_new(enum slp_read kind, store_mb_json_fn *fn, void *arg)
{
	struct slp_op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->fn = fn;
	op->arg = arg;
	return op;
}

/* ---- Writes ----------------------------------------------------------- */

enum slp_write_kind {
	SLP_W_LIST = 0,
	SLP_W_DELETE,
	SLP_W_SUB,
	SLP_W_UNSUB,
};

/* One write in flight. */
struct slp_write {
	enum slp_write_kind kind;
	store_list_done_fn *fn;
	void *arg;
	struct list_done d;
	bool failed;	 /* a statement answered an error */
	char error[512]; /* that error, or the conflict's text */
	/* for the answer's texts */
	int64_t id;
	char name[LIST_NAME_MAX + 1];
	char phone[MSG_ADDR_MAX];
	char email[MSG_ADDR_MAX];
	enum sub_status asked;
};

static void
slp_write_commit(void *arg, bool ok)
{
	struct slp_write *w = arg;

	w->d.ok = ok && !w->failed;
	if ((!w->d.ok || w->d.conflict) && w->error[0] != '\0')
		w->d.error = w->error;
	w->fn(w->arg, &w->d);
	free(w);
}

/* True when the answer is an error (noted) or not the one row. */
static bool
slp_write_failed(struct slp_write *w, const struct pg_answer *a)
{
	if (a->error == NULL && PQntuples(a->res) == 1)
		return false;
	w->failed = true;
	snprintf(w->error, sizeof(w->error), "%s",
	    a->error != NULL ? a->error : "no answer row");
	return true;
}

/* A list's create or update answered (slp_sql_write's columns). */
static void
slp_list_answer(struct slp_write *w, const PGresult *res)
{
	w->d.found = w->id == 0 || pgr_get_bool(res, 0, 1);
	if (!PQgetisnull(res, 0, 0)) {
		w->d.id = pgr_get_i64(res, 0, 0);
		return;
	}
	if (!w->d.found)
		return;
	w->d.conflict = true;
	if (w->id != 0 && pgr_get_i64(res, 0, 2) != 0)
		snprintf(w->error, sizeof(w->error),
		    "list %" PRId64
		    " comes from the config file; edit [list %s] there",
		    w->id, pgr_get_text(res, 0, 3));
	else if (!PQgetisnull(res, 0, 4))
		snprintf(w->error, sizeof(w->error),
		    "list name %s is taken by list %" PRId64, w->name,
		    pgr_get_i64(res, 0, 4));
	else if (!PQgetisnull(res, 0, 5))
		snprintf(w->error, sizeof(w->error),
		    "keyword %s belongs to list %" PRId64,
		    pgr_get_text(res, 0, 5), pgr_get_i64(res, 0, 6));
	else /* taken by a writer without the lock meanwhile */
		snprintf(w->error, sizeof(w->error),
		    "list name %s or one of its keywords is taken", w->name);
}

static void
slp_delete_answer(struct slp_write *w, const PGresult *res)
{
	int64_t members = pgr_get_i64(res, 0, 2);

	w->d.found = pgr_get_bool(res, 0, 0);
	w->d.id = w->id;
	if (!w->d.found || pgr_get_bool(res, 0, 3))
		return;
	w->d.conflict = true;
	if (pgr_get_i64(res, 0, 1) != 0)
		snprintf(w->error, sizeof(w->error),
		    "list %" PRId64 " comes from the config file", w->id);
	else
		snprintf(w->error, sizeof(w->error),
		    "list %" PRId64 " has %" PRId64 " members; use force",
		    w->id, members);
}

static void
slp_sub_answer(struct slp_write *w, const PGresult *res)
{
	const char *cur = pgr_get_text(res, 0, 5), *what;
	int was = cur != NULL ? store_members_sub_parse(cur) : -1;

	w->d.found = pgr_get_bool(res, 0, 2);
	w->d.member = pgr_get_i64(res, 0, 0);
	w->d.member_created = pgr_get_bool(res, 0, 1);
	w->d.opted_out = pgr_get_bool(res, 0, 7);
	if (!w->d.found)
		return;
	if (w->d.member == 0) {
		w->d.conflict = true;
		what = pgr_get_text(res, 0, 3);
		if (what != NULL)
			snprintf(w->error, sizeof(w->error),
			    "%s %s already belongs to member %" PRId64, what,
			    strcmp(what, "phone") == 0 ? w->phone : w->email,
			    pgr_get_i64(res, 0, 4));
		else
			snprintf(w->error, sizeof(w->error),
			    "the phone or email already belongs to another "
			    "member");
		return;
	}
	if (!PQgetisnull(res, 0, 6)) {
		w->d.status = w->asked;
		w->d.change = was < 0 ? SUB_CHANGE_NEW
		    : was == SUB_LEFT ? SUB_CHANGE_REJOINED
				      : SUB_CHANGE_ACTIVATED;
	} else {
		w->d.change = SUB_CHANGE_ALREADY;
		w->d.status = was >= 0 ? (enum sub_status)was : w->asked;
	}
}

static void
slp_unsub_answer(struct slp_write *w, const PGresult *res)
{
	const char *left = pgr_get_text(res, 0, 1);

	w->d.found = pgr_get_bool(res, 0, 0);
	if (left != NULL && strstr(left, "sms") != NULL)
		w->d.left |= 1u << CHANNEL_SMS;
	if (left != NULL && strstr(left, "email") != NULL)
		w->d.left |= 1u << CHANNEL_EMAIL;
}

/* The write's last statement answered. */
static void
slp_write_answer(void *arg, const struct pg_answer *a)
{
	struct slp_write *w = arg;

	if (slp_write_failed(w, a))
		return;
	switch (w->kind) {
	case SLP_W_LIST:
		slp_list_answer(w, a->res);
		break;
	case SLP_W_DELETE:
		slp_delete_answer(w, a->res);
		break;
	case SLP_W_SUB:
		slp_sub_answer(w, a->res);
		break;
	default:
		slp_unsub_answer(w, a->res);
	}
}

/* A lock's answer: only an error matters. */
static void
slp_lock_answer(void *arg, const struct pg_answer *a)
{
	struct slp_write *w = arg;

	if (a->error != NULL && !w->failed) {
		w->failed = true;
		snprintf(w->error, sizeof(w->error), "%s", a->error);
	}
}

/*
 * Sends the group's statements for w: the locks pre[0..npre) (answers:
 * errors only), then q; then w's commit callback. w is freed when
 * nothing was sent; a statement after the first that cannot be added
 * fails the group.
 */
static int
slp_group(struct store *st, struct slp_write *w, const struct pg_query *pre,
    size_t npre, const struct pg_query *q, char *err, size_t errlen)
{
	struct pg_query s;
	size_t i;

	for (i = 0; i <= npre; i++) {
		s = i < npre ? pre[i] : *q;
		s.done = i < npre ? slp_lock_answer : slp_write_answer;
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
	store_on_commit(st, slp_write_commit, w);
	if (i <= npre)
		store_abort_group(st);
	return 0;
}

static struct slp_write *
slp_write_new(enum slp_write_kind kind, store_list_done_fn *fn, void *arg)
{
	struct slp_write *w = xcalloc(1, sizeof(*w));

	w->kind = kind;
	w->fn = fn;
	w->arg = arg;
	return w;
}

#endif /* HAVE_LIBPQ */

/* ---- The public operations -------------------------------------------- */

/* Refuses a SQLite store or a build without libpq: -1 with err. */
static int
slp_refuse(struct store *st, char *err, size_t errlen)
{
	if (store_postgresql_only(st, "store_lists_pg", err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	return 0;
#else
	return store_no_libpq(err, errlen);
#endif
}

int
store_list_json_pg(struct store *st, const struct list_read_pg *r,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen)
{
	if (slp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	struct slp_op *op =
	    slp_op_new(r->ref != NULL ? SLP_ONE : SLP_ALL, fn, arg);
	const char *v[1] = {r->ref};

	op->light = r->light;
	return slp_read(st, op,
	    &(struct pg_query){.sql =
				   r->light ? slp_sql_list_light : slp_sql_list,
		.nparams = 1,
		.values = v},
	    err, errlen);
#else
	(void)r, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_list_write_pg(struct store *st, const struct list_write_pg *lw,
    store_list_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (slp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	const struct list_def *d = lw->d;
	struct slp_write *w;
	char now[24], ids[24], *q, *kw;
	const char *v[11];
	int rc;

	if (store_lists_check(d, err, errlen) == -1 ||
	    (q = store_lists_questions(d, err, errlen)) == NULL)
		return -1;
	kw = sl_pg_array(d->keywords, d->nkeywords);
	w = slp_write_new(SLP_W_LIST, fn, arg);
	w->id = lw->id;
	snprintf(w->name, sizeof(w->name), "%s", d->name);
	v[0] = d->name;
	v[1] = d->sender;
	v[2] = d->welcome_sms;
	v[3] = d->welcome_email_subject;
	v[4] = d->welcome_email;
	v[5] = d->double_optin ? "1" : "0";
	v[6] = q;
	v[7] = pgr_i64(now, lw->now, false);
	v[8] = d->time_zone;
	v[9] = kw;
	v[10] = pgr_i64(ids, lw->id, true);
	rc = slp_group(st, w, &(struct pg_query){.sql = SLP_LISTS_LOCK}, 1,
	    &(struct pg_query){.sql = slp_sql_write,
		.nparams = 11,
		.values = v},
	    err, errlen);
	free(kw);
	free(q);
	return rc;
#else
	(void)lw, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_list_delete_pg(struct store *st, int64_t id, bool force,
    store_list_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (slp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	struct slp_write *w = slp_write_new(SLP_W_DELETE, fn, arg);
	char ids[24];
	const char *v[2] = {pgr_i64(ids, id, false), force ? "1" : "0"};

	w->id = id;
	return slp_group(st, w,
	    (const struct pg_query[]){{.sql = SLP_LISTS_LOCK},
		{.sql = slp_sql_lock_list, .nparams = 1, .values = v}},
	    2,
	    &(struct pg_query){.sql = slp_sql_delete,
		.nparams = 2,
		.values = v},
	    err, errlen);
#else
	(void)id, (void)force, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_list_members_json_pg(struct store *st, const struct list_members_query *q,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen)
{
	if (slp_refuse(st, err, errlen) == -1)
		return -1;
	if (q->limit < 1 || q->limit > SM_LIMIT_MAX) {
		snprintf(err, errlen, "limit: must be 1..%d", SM_LIMIT_MAX);
		return -1;
	}
	if (q->status != NULL && store_members_sub_parse(q->status) < 0) {
		snprintf(err, errlen,
		    "status: must be pending, active or left");
		return -1;
	}
#ifdef HAVE_LIBPQ
	struct slp_op *op = slp_op_new(SLP_MEMBERS, fn, arg);
	char ids[24], after[24], lim[24];
	const char *v[4] = {pgr_i64(ids, q->list, false), q->status,
	    pgr_i64(after, q->after > 0 ? q->after : 0, false),
	    pgr_i64(lim, (int64_t)q->limit + 1, false)};

	op->limit = q->limit;
	return slp_read(st, op,
	    &(struct pg_query){.sql = slp_sql_members,
		.nparams = 4,
		.values = v},
	    err, errlen);
#else
	(void)fn, (void)arg;
	return -1;
#endif
}

int
store_member_find_pg(struct store *st, const struct member_find_pg *f,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen)
{
	if (slp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	char ids[24];
	const char *v[3] = {pgr_i64(ids, f->member, true), f->phone, f->email};

	return slp_read(st, slp_op_new(SLP_FIND, fn, arg),
	    &(struct pg_query){.sql = slp_sql_find, .nparams = 3, .values = v},
	    err, errlen);
#else
	(void)f, (void)fn, (void)arg;
	return -1;
#endif
}

int
store_list_subscribe_pg(struct store *st, const struct list_sub_pg *s,
    store_list_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (slp_refuse(st, err, errlen) == -1)
		return -1;
	if (s->status != SUB_PENDING && s->status != SUB_ACTIVE) {
		snprintf(err, errlen,
		    "subscribe: status must be pending or active");
		return -1;
	}
#ifdef HAVE_LIBPQ
	struct slp_write *w = slp_write_new(SLP_W_SUB, fn, arg);
	char ids[24], lists[24], now[24];
	const char *v[8] = {pgr_i64(ids, s->member, true), s->phone, s->email,
	    pgr_i64(lists, s->list, false), channel_to_text(s->ch),
	    s->status == SUB_PENDING ? "pending" : "active", s->detail,
	    pgr_i64(now, s->now, false)};

	w->asked = s->status;
	snprintf(w->phone, sizeof(w->phone), "%s",
	    s->phone != NULL ? s->phone : "");
	snprintf(w->email, sizeof(w->email), "%s",
	    s->email != NULL ? s->email : "");
	return slp_group(st, w, &(struct pg_query){.sql = SLP_MEMBERS_LOCK},
	    s->member == 0 ? 1 : 0,
	    &(struct pg_query){.sql = slp_sql_subscribe,
		.nparams = 8,
		.values = v},
	    err, errlen);
#else
	(void)fn, (void)arg;
	return -1;
#endif
}

int
store_list_unsubscribe_pg(struct store *st, const struct list_unsub_pg *u,
    store_list_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (slp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	struct slp_write *w = slp_write_new(SLP_W_UNSUB, fn, arg);
	const char *chans[CHANNEL_COUNT];
	char ids[24], lists[24], now[24], *arr;
	size_t n = 0;
	int ch, rc;

	for (ch = 0; ch < CHANNEL_COUNT; ch++)
		if (u->channels & (1u << ch))
			chans[n++] = channel_to_text((enum channel)ch);
	arr = sl_pg_array(chans, n);
	rc = slp_group(st, w, NULL, 0,
	    &(struct pg_query){.sql = slp_sql_unsubscribe,
		.nparams = 4,
		.values = (const char *[]){pgr_i64(ids, u->member, false),
		    pgr_i64(lists, u->list, false), arr,
		    pgr_i64(now, u->now, false)}},
	    err, errlen);
	free(arr);
	return rc;
#else
	(void)u, (void)fn, (void)arg;
	return -1;
#endif
}

#ifdef HAVE_LIBPQ
/* An export page being read. */
struct slp_export {
	struct export_page *pg;
	const struct export_sink *to;
	store_export_done_fn *done;
	void *arg;
};

/* The page's rows to the sink, as store_export_list() writes them: 0, or
 * -1 when the sink stopped. */
static int
slp_export_rows(struct slp_export *x, const PGresult *res)
{
	const char *cols[SL_EXPORT_NCOLS];
	struct export_row row = {store_lists_export_head, SL_EXPORT_NCOLS};
	int64_t id, last = 0;
	unsigned n = 0;
	char at[40];
	size_t c;
	int i;

	if (x->pg->after <= 0 && x->to->each(x->to->arg, &row) == -1)
		return -1;
	row.cols = cols;
	for (i = 0; i < PQntuples(res); i++) {
		id = pgr_get_i64(res, i, 0);
		if (id != last) {
			if (n == x->pg->limit) {
				x->pg->next = last;
				break;
			}
			n++;
			last = id;
		}
		for (c = 0; c < SL_EXPORT_NCOLS; c++)
			cols[c] = pgr_get_text(res, i, (int)c);
		cols[10] = store_lists_state((int)pgr_get_i64(res, i, 10));
		cols[12] =
		    msg_time_to_text(pgr_get_i64(res, i, 12), at, sizeof(at));
		cols[13] = pgr_get_bool(res, i, 13) ? "true" : "false";
		cols[14] = pgr_get_bool(res, i, 14) ? "true" : "false";
		if (x->to->each(x->to->arg, &row) == -1)
			return -1;
	}
	return 0;
}

static void
slp_export_answer(void *arg, const struct pg_answer *a)
{
	struct slp_export *x = arg;

	if (a->error != NULL)
		x->done(x->arg, -1, a->error);
	else if (slp_export_rows(x, a->res) == -1)
		x->done(x->arg, -1, "export: stopped by the writer");
	else
		x->done(x->arg, 0, NULL);
	free(x);
}
#endif

int
store_export_list_pg(struct store *st, const struct export_req_pg *r,
    store_export_done_fn *done, void *arg, char *err, size_t errlen)
{
	if (slp_refuse(st, err, errlen) == -1)
		return -1;
	if (r->pg->limit < 1) {
		snprintf(err, errlen, "export: limit must be at least 1");
		return -1;
	}
#ifdef HAVE_LIBPQ
	struct slp_export *x = xcalloc(1, sizeof(*x));
	char ids[24], after[24], lim[24];
	const char *v[3] = {pgr_i64(ids, r->member, false),
	    pgr_i64(after, r->pg->after > 0 ? r->pg->after : 0, false),
	    pgr_i64(lim, (int64_t)r->pg->limit + 1, false)};

	r->pg->next = 0;
	x->pg = r->pg;
	x->to = r->to;
	x->done = done;
	x->arg = arg;
	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = slp_sql_export,
		    .nparams = 3,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = slp_export_answer,
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
store_route_lists_pg(struct store *st, const char *keyword,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen)
{
	if (slp_refuse(st, err, errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	const char *v[1] = {keyword};

	return slp_read(st, slp_op_new(SLP_ROUTE, fn, arg),
	    &(struct pg_query){.sql = slp_sql_route, .nparams = 1, .values = v},
	    err, errlen);
#else
	(void)keyword, (void)fn, (void)arg;
	return -1;
#endif
}
