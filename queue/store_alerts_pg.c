/*
 * store_alerts_pg.c - action alerts on the PostgreSQL store
 * (store_alerts_pg.h): the API's reads and writes, and the fan-out.
 * SQLite keeps store_alerts.c; the audience's rules are the same, only
 * the SQL differs (jsonb for SQLite's json_each).
 *
 * DESIGN
 *
 * The fan-out on several nodes. Every node runs the engine's tick
 * (daemon/alerts_pg.c); any node may fan out any alert, and exactly one
 * does a given batch. A batch is one transaction on the node's fan-out
 * connection (a third connection per node, besides the group and queue
 * connections of store_pg.c: the transaction takes three round trips,
 * and must neither wait inside a group nor hold one up):
 *
 *   BEGIN;
 *   SELECT cursor, <due backlog> FROM alerts WHERE id = $1
 *     AND status = 'sending' AND fanout_done = 0
 *     FOR UPDATE OF alerts SKIP LOCKED;          -- the claim
 *   SELECT <members after the cursor, up to the bound>;  -- the walk
 *   WITH up AS (UPDATE alerts SET cursor = new WHERE id = $1
 *     AND cursor = <as read> AND status = 'sending' ...),
 *   ins AS (INSERT INTO messages ... FROM unnest(...) WHERE EXISTS up),
 *   ...history rows...;                          -- the write
 *   COMMIT;
 *
 * The row lock is the claim: a node that finds the row locked skips the
 * alert this tick, so two nodes never walk the same members at once; a
 * node killed mid-batch loses its transaction and its lock with it, and
 * the next node starts from the committed cursor. The messages and the
 * cursor are ONE statement, guarded by the cursor the claim read, so
 * they commit together or not at all even in the cases the lock does
 * not cover: the driver sends what was queued behind a lost connection
 * on the next one, outside the transaction (pg.h), where the write
 * would run alone; the guard then makes it write nothing unless the
 * cursor is still the one its members were read after. The walk reads
 * the cursor after the lock is held (a statement of its own, so with a
 * snapshot taken after the lock), so it sees what the last holder
 * committed.
 *
 * The due backlog bound ([alerts] backlog, or a second of the sender's
 * rate) and the chunk and scan bounds are the SQLite engine's: an
 * alert's messages are made as fast as they are sent, never a million
 * rows at once. Messages are rendered in C (daemon/alerts.c, through
 * the visitor), as on SQLite, and written with one INSERT ... SELECT
 * FROM unnest(arrays) with their history rows.
 *
 * The tick's other statements run alone (autocommit) on the same
 * connection and are safe from any number of nodes at once: a
 * scheduled alert starts with UPDATE ... WHERE status = 'scheduled'
 * (the second node's UPDATE waits, then finds it sending and does
 * nothing), a fanned-out alert whose messages all finished becomes done
 * the same way.
 *
 * The API's writes are statements in the node's group transaction, none
 * of which fails in an expected way: create is INSERT ... ON CONFLICT
 * (create_key) DO NOTHING (the first alert's id is read once the group
 * committed: ON CONFLICT waited for the other insert to commit), an
 * action's transition is UPDATE ... WHERE status = ANY(the statuses it
 * may leave), so a race between two nodes moves the alert once. A send
 * with a key takes the transaction-level advisory lock (1868, 9) first:
 * its transition, a statement of its own that begins once the lock is
 * held, sees a key another node's group committed and then moves
 * nothing and answers whose key it is, where the unique send_key would
 * have failed the group.
 *
 * The audience's reads for the API (sap_audience(): the reach, the
 * members lacking a field, the preview's members) are SQLite's
 * statements over every member (after 0, up to the largest id), sent
 * outside the group on the store's connection in one round trip; their
 * answers come in the order sent, so one callback counts them off. A
 * NULL sorts last in the preview's "longest values", as in SQLite.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "message.h"
#include "queue.h"
#include "store-internal.h"
#include "store_alerts_pg.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"

/* ---- SQL ---------------------------------------------------------------- */

/* $1 = audience JSON text. The alert's lists, and a member's active (or
 * 'st') subscription to one of them on a channel. */
#define SAP_LISTS                                               \
	"(SELECT value::bigint FROM jsonb_array_elements_text(" \
	"$1::jsonb -> 'lists'))"
#define SAP_SUB(ch, st)                                                  \
	"EXISTS (SELECT 1 FROM subscriptions s WHERE s.member_id = m.id" \
	" AND s.channel = '" ch "' AND s.status " st                     \
	" AND s.list_id IN " SAP_LISTS ")"
/* Reached on SMS ($2) / email ($3): as store_alerts.c's. */
#define SAP_SMS_OK                                                      \
	"($2::boolean AND m.phone IS NOT NULL AND " SAP_SUB("sms",      \
	    "= 'active'") " AND NOT EXISTS (SELECT 1 FROM sms_optout o" \
			  " WHERE o.member_id = m.id))"
#define SAP_EMAIL_OK                                                            \
	"($3::boolean AND m.email IS NOT NULL AND m.bouncing = 0 AND " SAP_SUB( \
	    "email",                                                            \
	    "= 'active'") " AND NOT EXISTS (SELECT 1 FROM"                      \
			  " email_optout o WHERE o.member_id = m.id))"
/* Every tag, every field (compared as text, as SQLite's CAST), the ZIP
 * prefix, and what became of an earlier alert's message to the member
 * (follow_up: "missed", failed, expired or undelivered; "no_reply", sent
 * or delivered and no text from the member since), as store_alerts.c's
 * ALERT_SQL_FILTERS. */
#define SAP_FOLLOW_UP "(($1::jsonb #>> '{follow_up,alert}')::bigint)"
#define SAP_FILTERS                                                    \
	" AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text("    \
	"coalesce($1::jsonb -> 'tags', '[]'::jsonb)) t"                \
	" WHERE NOT (m.tags::jsonb ? t.value))"                        \
	" AND NOT EXISTS (SELECT 1 FROM jsonb_each("                   \
	"coalesce($1::jsonb -> 'fields', '{}'::jsonb)) f"              \
	" WHERE (m.attributes::jsonb ->> f.key) IS DISTINCT FROM"      \
	" (f.value #>> '{}'))"                                         \
	" AND ($1::jsonb ->> 'zip_prefix' IS NULL OR"                  \
	" left(m.zip, length($1::jsonb ->> 'zip_prefix'))"             \
	" = $1::jsonb ->> 'zip_prefix')"                               \
	" AND (" SAP_FOLLOW_UP " IS NULL OR EXISTS"                    \
	" (SELECT 1 FROM messages x WHERE x.member_id = m.id"          \
	" AND x.alert_id = " SAP_FOLLOW_UP " AND x.direction = 'out'"  \
	" AND CASE $1::jsonb #>> '{follow_up,who}' WHEN 'missed' THEN" \
	" x.status IN ('failed', 'expired', 'undelivered')"            \
	" ELSE x.status IN ('sent', 'delivered') AND NOT EXISTS"       \
	" (SELECT 1 FROM messages r WHERE r.member_id = m.id"          \
	" AND r.direction = 'in' AND r.created_at >= x.created_at) END))"

/* $4 after, $5 the last id looked at, $6 limit. */
static const char sap_sql_walk[] =
    "SELECT id, sms_ok, email_ok, phone, email, first_name, last_name, zip,"
    " time_zone, attributes, (SELECT l.time_zone FROM subscriptions s"
    " JOIN lists l ON l.id = s.list_id WHERE s.member_id = w.id"
    " AND s.status = 'active' AND l.time_zone IS NOT NULL AND s.list_id IN"
    " " SAP_LISTS " ORDER BY l.id LIMIT 1)"
    " FROM (SELECT m.*, " SAP_SMS_OK " AS sms_ok, " SAP_EMAIL_OK
    " AS email_ok FROM members m WHERE m.id > $4::bigint"
    " AND m.id <= $5::bigint" SAP_FILTERS ") w"
    " WHERE sms_ok OR email_ok ORDER BY id LIMIT $6::bigint";

/*
 * Who the audience reaches and leaves out, as store_alerts.c's
 * alert_sql_reach: $1 audience, $2 SMS, $3 email, $4 after, $5 the last
 * id looked at.
 */
#define SAP_OUT(ch, optout)                                         \
	SAP_SUB(ch, "IN ('active', 'pending')")                     \
	" AND EXISTS (SELECT 1 FROM " optout " o WHERE o.member_id" \
	" = m.id)"
#define SAP_SMS_OUT   "($2::boolean AND " SAP_OUT("sms", "sms_optout") ")"
#define SAP_EMAIL_OUT "($3::boolean AND " SAP_OUT("email", "email_optout") ")"
#define SAP_BOUNCING                                            \
	"($3::boolean AND m.bouncing = 1 AND " SAP_SUB("email", \
	    "= 'active'") ")"
#define SAP_PENDING                                               \
	"(" SAP_SUB("sms", "= 'pending'") " OR " SAP_SUB("email", \
	    "= 'pending'") ")"
#define SAP_REACH_COLS                                                         \
	SAP_SMS_OK " AS sms_ok, " SAP_EMAIL_OK " AS email_ok, " SAP_SMS_OUT    \
		   " AS sms_out, " SAP_EMAIL_OUT                               \
		   " AS email_out, " SAP_BOUNCING " AS bouncing, " SAP_PENDING \
		   " AS pending"
static const char sap_sql_reach[] =
    "SELECT count(*), count(*) FILTER (WHERE sms_ok),"
    " count(*) FILTER (WHERE email_ok),"
    " count(*) FILTER (WHERE sms_ok AND email_ok),"
    " count(*) FILTER (WHERE sms_out), count(*) FILTER (WHERE email_out),"
    " count(*) FILTER (WHERE bouncing),"
    " count(*) FILTER (WHERE NOT sms_ok AND NOT email_ok AND pending)"
    " FROM (SELECT " SAP_REACH_COLS " FROM members m"
    " WHERE m.id > $4::bigint AND m.id <= $5::bigint"
    " AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.member_id = m.id"
    " AND s.status IN ('active', 'pending') AND s.list_id IN " SAP_LISTS
    ")" SAP_FILTERS ") x";

/* The members reached with one field's value as 'v' ($c the column's
 * name, $a the attribute's key), as store_alerts.c's. */
#define SAP_FIELD(c, a)                                                \
	"CASE " c "::text WHEN 'first_name' THEN m.first_name"         \
	" WHEN 'last_name' THEN m.last_name WHEN 'email' THEN m.email" \
	" WHEN 'phone' THEN m.phone WHEN 'zip' THEN m.zip"             \
	" ELSE (m.attributes::jsonb ->> " a "::text) END"
#define SAP_REACHED_WITH_FIELD(c, a)                          \
	"SELECT m.*, " SAP_SMS_OK " AS sms_ok, " SAP_EMAIL_OK \
	" AS email_ok, " SAP_FIELD(c,                         \
	    a) " AS v FROM members m WHERE m.id > $4::bigint" \
	       " AND m.id <= $5::bigint" SAP_FILTERS
/* Members reached who lack the field ($6 column, $7 attribute). */
static const char sap_sql_missing[] =
    "SELECT count(*) FROM (" SAP_REACHED_WITH_FIELD("$6",
	"$7") ") x"
	      " WHERE (sms_ok OR email_ok)"
	      " AND (v IS NULL OR btrim(v, E' \\t\\r\\n') = '')";
/* ... and those with its longest values ($6 limit, $7 column, $8
 * attribute; SQLite sorts a NULL last when descending). */
static const char sap_sql_longest[] =
    "SELECT id, sms_ok, email_ok, phone, email, first_name, last_name, zip,"
    " time_zone, attributes, NULL FROM (" SAP_REACHED_WITH_FIELD("$7",
	"$8") ") x WHERE sms_ok OR email_ok"
	      " ORDER BY length(v) DESC NULLS LAST, id LIMIT $6::bigint";

/* The claim: $1 alert, $2 now, $3 count the due backlog up to this. */
static const char sap_sql_lock[] =
    "SELECT cursor, (SELECT count(*) FROM (SELECT 1 FROM messages"
    " WHERE alert_id = $1::bigint AND (status = 'sending' OR"
    " (status = 'queued' AND next_attempt_at <= $2::bigint))"
    " LIMIT $3::bigint) x) FROM alerts WHERE id = $1::bigint"
    " AND status = 'sending' AND fanout_done = 0"
    " FOR UPDATE OF alerts SKIP LOCKED";

/*
 * The write: $1 alert, $2 new cursor, $3 done (0/1), $4 now, $5 the
 * cursor the claim read; $6.. one array per column of the messages.
 * Answers (cursor moved: 0/1, messages made). The batch that ends the
 * fan-out sets the audience's size: the messages made per channel, one
 * per member reached (SQLite counts the same members in the engine's
 * turns; until then it reads null on both).
 */
#define SAP_AUDIENCE(ch)                                                     \
	" audience_" ch " = CASE WHEN $3::bigint = 1 THEN (SELECT count(*)"  \
	" FROM messages WHERE alert_id = $1::bigint AND channel = '" ch "')" \
	" + (SELECT count(*) FROM unnest($6::text[]) c WHERE c = '" ch "')"  \
	" ELSE audience_" ch " END"
#define SAP_AUDIENCES SAP_AUDIENCE("sms") "," SAP_AUDIENCE("email")
static const char sap_sql_write[] =
    "WITH up AS (UPDATE alerts SET cursor = $2::bigint,"
    " fanout_done = $3::bigint, updated_at = $4::bigint," SAP_AUDIENCES
    " WHERE id = $1::bigint AND cursor = $5::bigint AND status = 'sending'"
    " AND fanout_done = 0 RETURNING id),"
    " ins AS (INSERT INTO messages (direction, channel, member_id, sender,"
    " to_addr, from_addr, subject, body, html, status, priority,"
    " next_attempt_at, alert_id, not_before, expires_at, created_at,"
    " updated_at, encoding, segments, error_text)"
    " SELECT 'out', u.ch, u.mem, u.snd, u.to_addr, u.from_addr, u.subj,"
    " u.body, u.html, CASE WHEN u.rerr IS NULL THEN 'queued' ELSE 'failed'"
    " END, u.prio, greatest(coalesce(u.nb, 0), $4::bigint), $1::bigint,"
    " u.nb, u.exp, $4::bigint, $4::bigint, u.enc, u.seg, u.rerr"
    " FROM unnest($6::text[], $7::bigint[], $8::text[], $9::text[],"
    " $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[],"
    " $15::text[], $16::bigint[], $17::text[], $18::bigint[],"
    " $19::bigint[]) AS u(ch, mem, snd, to_addr, from_addr, subj, body,"
    " html, nb, enc, seg, rerr, exp, prio)"
    " WHERE EXISTS (SELECT 1 FROM up) RETURNING id, status, error_text),"
    " ev AS (INSERT INTO message_events (message_id, status, created_at,"
    " text) SELECT id, 'queued', $4::bigint, NULL FROM ins"
    " UNION ALL SELECT id, 'failed', $4::bigint, error_text FROM ins"
    " WHERE status = 'failed')"
    " SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM ins)";

/* The tick, $1 now: scheduled alerts whose time came start sending. */
static const char sap_sql_start_due[] =
    "UPDATE alerts SET status = 'sending', pause_reason = NULL,"
    " updated_at = $1::bigint, started_at = coalesce(started_at, $1::bigint),"
    " audience_max_id = coalesce(audience_max_id,"
    " (SELECT coalesce(max(id), 0) FROM members))"
    " WHERE status = 'scheduled' AND scheduled_at <= $1::bigint"
    " RETURNING id";
/* ... alerts fanned out whose messages all finished are done ... */
static const char sap_sql_finish[] =
    "UPDATE alerts a SET status = 'done', finished_at = $1::bigint,"
    " updated_at = $1::bigint WHERE status = 'sending' AND fanout_done = 1"
    " AND NOT EXISTS (SELECT 1 FROM messages x WHERE x.alert_id = a.id"
    " AND x.status IN ('queued', 'sending')) RETURNING id";

#define SAP_COLS                                                           \
	"id, name, status, pause_reason, audience, sms, email, sender,"    \
	" sms_body, email_subject, email_text, email_html, urgent,"        \
	" validity_s, scheduled_at, audience_max_id, cursor, fanout_done," \
	" created_at, started_at, finished_at, audience_sms, audience_email"
/* ... and those sending (to fan out, or to watch: the guard rails). */
static const char sap_sql_live[] = "SELECT " SAP_COLS " FROM alerts"
				   " WHERE status = 'sending' ORDER BY id";
static const char sap_sql_load[] =
    "SELECT " SAP_COLS ", (SELECT id FROM alerts k WHERE k.send_key ="
    " $2::text) FROM alerts WHERE id = $1::bigint";
static const char sap_sql_page[] =
    "SELECT " SAP_COLS " FROM alerts WHERE ($1::bigint = 0 OR id < $1::bigint)"
    " AND ($2::text IS NULL OR status = $2::text) ORDER BY id DESC"
    " LIMIT $3::bigint";

/* As store_alerts.c's alert_sql_counts: $1 alert, $2 now. */
static const char sap_sql_counts[] =
    "SELECT channel, CASE WHEN status IN ('queued', 'sending') THEN"
    " 'pending' ELSE status END, count(*) FROM messages"
    " WHERE alert_id = $1::bigint GROUP BY status, channel"
    " UNION ALL SELECT channel, 'deferred', count(*) FROM messages"
    " WHERE alert_id = $1::bigint AND status = 'queued'"
    " AND next_attempt_at > $2::bigint GROUP BY channel";
/*
 * As store_alerts.c's alert_sql_guard, $1 alert: the messages that left
 * (sent, delivered, undelivered), of those whose member opted out of the
 * channel within a day, the permanent failures, and of those that left
 * whose member wrote within a day.
 */
#define SAP_LEFT "x.status IN ('sent', 'delivered', 'undelivered')"
static const char sap_sql_guard[] =
    "SELECT count(*) FILTER (WHERE " SAP_LEFT "),"
    " count(*) FILTER (WHERE " SAP_LEFT " AND CASE x.channel"
    " WHEN 'sms' THEN EXISTS (SELECT 1 FROM sms_optout o"
    " WHERE o.member_id = x.member_id AND o.opted_out_at >= x.created_at"
    " AND o.opted_out_at < x.created_at + 86400000)"
    " ELSE EXISTS (SELECT 1 FROM email_optout o"
    " WHERE o.member_id = x.member_id AND o.opted_out_at >= x.created_at"
    " AND o.opted_out_at < x.created_at + 86400000) END),"
    " count(*) FILTER (WHERE x.status = 'failed'),"
    " count(*) FILTER (WHERE " SAP_LEFT " AND EXISTS"
    " (SELECT 1 FROM messages r WHERE r.member_id = x.member_id"
    " AND r.direction = 'in' AND r.created_at >= x.created_at"
    " AND r.created_at < x.created_at + 86400000))"
    " FROM messages x WHERE x.alert_id = $1::bigint AND x.direction = 'out'"
    " AND x.status IN ('sent', 'delivered', 'undelivered', 'failed')";

/* An audience's lists, names or ids, in order, and whether the alert of
 * its follow_up exists ($1 the audience). */
static const char sap_sql_lists[] =
    "SELECT l.id, l.sender, " SAP_FOLLOW_UP " IS NULL OR EXISTS"
    " (SELECT 1 FROM alerts WHERE id = " SAP_FOLLOW_UP ")"
    " FROM jsonb_array_elements($1::jsonb -> 'lists')"
    " WITH ORDINALITY x(v, n) LEFT JOIN lists l ON"
    " l.id = CASE WHEN jsonb_typeof(x.v) = 'number'"
    " THEN (x.v #>> '{}')::bigint END"
    " OR l.name = CASE WHEN jsonb_typeof(x.v) = 'string'"
    " THEN x.v #>> '{}' END ORDER BY x.n";

static const char sap_sql_create[] =
    "INSERT INTO alerts (name, status, audience, sms, email, sender,"
    " sms_body, email_subject, email_text, email_html, urgent, validity_s,"
    " scheduled_at, create_key, created_by, created_at, updated_at)"
    " VALUES ($1::text, 'draft', $2::text, $3::bigint, $4::bigint, $5::text,"
    " $6::text, $7::text, $8::text, $9::text, $10::bigint, $11::bigint,"
    " $12::bigint, $13::text, $14::bigint, $15::bigint, $15::bigint)"
    " ON CONFLICT (create_key) DO NOTHING RETURNING id";
/* A draft rewritten ($1 id, then the columns of create, $14 now) or
 * deleted ($1 id): only while it is a draft. */
static const char sap_sql_draft_update[] =
    "UPDATE alerts SET name = $2::text, audience = $3::text,"
    " sms = $4::bigint, email = $5::bigint, sender = $6::text,"
    " sms_body = $7::text, email_subject = $8::text, email_text = $9::text,"
    " email_html = $10::text, urgent = $11::bigint, validity_s = $12::bigint,"
    " scheduled_at = $13::bigint, updated_at = $14::bigint"
    " WHERE id = $1::bigint AND status = 'draft' RETURNING id";
static const char sap_sql_draft_delete[] =
    "DELETE FROM alerts WHERE id = $1::bigint AND status = 'draft'"
    " RETURNING id";
static const char sap_sql_by_create_key[] =
    "SELECT id FROM alerts WHERE create_key = $1::text";

/*
 * $1 id, $2 to, $3 reason, $4 now, $5 from (text[]), $6 scheduled_at
 * (NULL = keep), $7 send key (NULL = none). Answers the alert when it
 * moved (else NULL), and the alert that holds the send key (else NULL):
 * a key another alert holds moves nothing. Behind SAP_SEND_KEY_LOCK, a
 * key committed by another node's group is seen here, so the unique
 * send_key never fails a group.
 */
#define SAP_SEND_KEY_LOCK "SELECT pg_advisory_xact_lock(1868, 9)"
static const char sap_sql_transition[] =
    "WITH k AS (SELECT id FROM alerts WHERE $7::text IS NOT NULL"
    " AND send_key = $7::text), up AS ("
    "UPDATE alerts SET status = $2::text, pause_reason = $3::text,"
    " updated_at = $4::bigint,"
    " scheduled_at = coalesce($6::bigint, scheduled_at),"
    " started_at = CASE WHEN $2::text = 'sending' THEN"
    " coalesce(started_at, $4::bigint) ELSE started_at END,"
    " audience_max_id = CASE WHEN $2::text = 'sending' THEN"
    " coalesce(audience_max_id, (SELECT coalesce(max(id), 0) FROM members))"
    " ELSE audience_max_id END,"
    " finished_at = CASE WHEN $2::text IN ('done', 'cancelled') THEN"
    " $4::bigint ELSE finished_at END,"
    " send_key = CASE WHEN $2::text = 'sending' AND $7::text IS NOT NULL"
    " THEN $7::text ELSE send_key END"
    " WHERE id = $1::bigint AND status = ANY ($5::text[])"
    " AND NOT EXISTS (SELECT 1 FROM k) RETURNING id)"
    " SELECT (SELECT id FROM up), (SELECT id FROM k)";
/* Paused alerts keep their queued messages this far ahead (as SQLite). */
#define SAP_HELD_AT "140737488355327"
static const char sap_sql_hold[] =
    "UPDATE messages SET next_attempt_at = " SAP_HELD_AT
    " WHERE alert_id = $1::bigint AND status = 'queued'"
    " AND next_attempt_at < " SAP_HELD_AT;
static const char sap_sql_release[] =
    "UPDATE messages SET next_attempt_at = greatest(coalesce(not_before, 0),"
    " $2::bigint) WHERE alert_id = $1::bigint AND status = 'queued'"
    " AND next_attempt_at = " SAP_HELD_AT;
static const char sap_sql_cancel[] =
    "WITH c AS (UPDATE messages SET status = 'cancelled',"
    " updated_at = $2::bigint WHERE alert_id = $1::bigint"
    " AND status = 'queued' RETURNING id)"
    " INSERT INTO message_events (message_id, status, created_at, text)"
    " SELECT id, 'cancelled', $2::bigint, 'alert cancelled' FROM c";

/* ---- Helpers ------------------------------------------------------------ */

static char *
sap_dup(const PGresult *res, int row, int col)
{
	const char *s = pgr_get_text(res, row, col);

	return s != NULL ? xstrdup(s) : NULL;
}

/* A row of SAP_COLS into *r (strings owned: store_alert_row_free()). */
static void
sap_row(const PGresult *res, int i, struct alert_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = pgr_get_i64(res, i, 0);
	r->name = sap_dup(res, i, 1);
	if (alert_status_parse(PQgetvalue(res, i, 2), &r->status) == -1)
		r->status = ALERT_CANCELLED; /* the CHECK forbids it */
	r->pause_reason = sap_dup(res, i, 3);
	r->audience = sap_dup(res, i, 4);
	r->sms = pgr_get_i64(res, i, 5) != 0;
	r->email = pgr_get_i64(res, i, 6) != 0;
	r->sender = sap_dup(res, i, 7);
	r->sms_body = sap_dup(res, i, 8);
	r->email_subject = sap_dup(res, i, 9);
	r->email_text = sap_dup(res, i, 10);
	r->email_html = sap_dup(res, i, 11);
	r->urgent = pgr_get_i64(res, i, 12) != 0;
	r->validity_s = pgr_get_i64(res, i, 13);
	r->scheduled_at = pgr_get_i64(res, i, 14);
	r->audience_max_id = pgr_get_i64(res, i, 15);
	r->cursor = pgr_get_i64(res, i, 16);
	r->fanout_done = pgr_get_i64(res, i, 17) != 0;
	r->created_at = pgr_get_i64(res, i, 18);
	r->started_at = pgr_get_i64(res, i, 19);
	r->finished_at = pgr_get_i64(res, i, 20);
	r->audience_sms =
	    PQgetisnull(res, i, 21) ? -1 : pgr_get_i64(res, i, 21);
	r->audience_email =
	    PQgetisnull(res, i, 22) ? -1 : pgr_get_i64(res, i, 22);
}

/* A row of SAP_COLS as store_alert_json() shows it. */
static json_t *
sap_row_json(const PGresult *res, int i)
{
	json_t *aud = json_loads(PQgetvalue(res, i, 4), 0, NULL), *ch;
	json_t *o;

	o = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
		      " s:o, s:o, s:b, s:I, s:o, s:o, s:I, s:b, s:o,"
		      " s:o, s:o}",
	    "id", (json_int_t)pgr_get_i64(res, i, 0), "name",
	    pgr_json_text(res, i, 1), "status", pgr_json_text(res, i, 2),
	    "pause_reason", pgr_json_text(res, i, 3), "audience",
	    aud != NULL ? aud : json_null(), "channels", json_array(), "sender",
	    pgr_json_text(res, i, 7), "sms_body", pgr_json_text(res, i, 8),
	    "email_subject", pgr_json_text(res, i, 9), "email_text",
	    pgr_json_text(res, i, 10), "email_html", pgr_json_text(res, i, 11),
	    "urgent", pgr_get_i64(res, i, 12) != 0, "validity_s",
	    (json_int_t)pgr_get_i64(res, i, 13), "scheduled_at",
	    pgr_json_time(res, i, 14), "audience_size",
	    json_pack("{s:o, s:o}", "sms", pgr_json_int(res, i, 21), "email",
		pgr_json_int(res, i, 22)),
	    "cursor", (json_int_t)pgr_get_i64(res, i, 16), "fanout_done",
	    pgr_get_i64(res, i, 17) != 0, "created_at",
	    pgr_json_time(res, i, 18), "started_at", pgr_json_time(res, i, 19),
	    "finished_at", pgr_json_time(res, i, 20));
	if (o == NULL)
		return NULL;
	ch = json_object_get(o, "channels");
	if (pgr_get_i64(res, i, 5) != 0)
		json_array_append_new(ch, json_string("sms"));
	if (pgr_get_i64(res, i, 6) != 0)
		json_array_append_new(ch, json_string("email"));
	return o;
}

/* ---- Array literals (as pg_queue.c builds them) ------------------------- */

struct sap_arr {
	char *buf;
	size_t len;
	size_t cap;
	size_t n;
};

static void
sap_arr_add(struct sap_arr *a, const char *s)
{
	size_t need = (s != NULL ? strlen(s) * 2 : 0) + 8;
	char *p;

	if (a->len + need >= a->cap) {
		a->cap = (a->len + need) * 2 + 64;
		a->buf = xreallocarray(a->buf, a->cap, 1);
	}
	if (a->len == 0)
		a->buf[a->len++] = '{';
	p = a->buf + a->len;
	if (a->n > 0)
		*p++ = ',';
	if (s == NULL) {
		memcpy(p, "NULL", 4);
		p += 4;
	} else {
		*p++ = '"';
		for (; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				*p++ = '\\';
			*p++ = *s;
		}
		*p++ = '"';
	}
	a->len = (size_t)(p - a->buf);
	a->n++;
}

static void
sap_arr_i64(struct sap_arr *a, int64_t v, bool zero_is_null)
{
	char b[24];

	sap_arr_add(a, pgr_i64(b, v, zero_is_null));
}

/* The literal, closed ("{}" when empty); owned by a. */
static const char *
sap_arr_close(struct sap_arr *a)
{
	if (a->cap < a->len + 3) {
		a->cap = a->len + 3;
		a->buf = xreallocarray(a->buf, a->cap, 1);
	}
	if (a->len == 0)
		a->buf[a->len++] = '{';
	a->buf[a->len++] = '}';
	a->buf[a->len] = '\0';
	return a->buf;
}

/* ---- Reads -------------------------------------------------------------- */

/* One read or write in flight and what its answers said. */
struct sap_op {
	struct store *st;
	void *arg;
	sap_lists_fn *lfn;
	sap_json_fn *jfn;
	sap_load_fn *ldfn;
	sap_done_fn *dfn;
	int64_t id;
	int64_t now;
	json_t *o;   /* sap_get(): the alert being built */
	bool failed; /* an answer was an error */
	char error[256];
	struct sap_done d;
	char *key; /* create: the key, to read the first alert by */
};

static struct sap_op *
sap_op_new(struct store *st, void *arg)
{
	struct sap_op *op = xcalloc(1, sizeof(*op));

	op->st = st;
	op->arg = arg;
	return op;
}

static void
sap_op_free(struct sap_op *op)
{
	json_decref(op->o);
	free(op->key);
	free(op);
}

/* Notes an error answer in op; true if a is one. */
static bool
sap_failed(struct sap_op *op, const struct pg_answer *a)
{
	if (a->error == NULL)
		return false;
	if (!op->failed)
		snprintf(op->error, sizeof(op->error), "%s", a->error);
	op->failed = true;
	return true;
}

static int
sap_read(struct store *st, const struct pg_query *q, struct sap_op *op,
    char *err, size_t errlen)
{
	struct pg_query c = *q;

	c.flags = PG_IDEMPOTENT;
	c.arg = op;
	return pg_send(store_pg_conn(st), &c, err, errlen);
}

static void
sap_lists_answer(void *arg, const struct pg_answer *a)
{
	struct sap_op *op = arg;
	struct sap_list_ref *refs;
	int i, n;

	if (sap_failed(op, a)) {
		op->lfn(op->arg, -1, NULL, op->error);
		sap_op_free(op);
		return;
	}
	n = PQntuples(a->res);
	refs = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*refs));
	for (i = 0; i < n; i++) {
		refs[i].id = pgr_get_i64(a->res, i, 0);
		refs[i].sender = pgr_get_text(a->res, i, 1);
	}
	op->lfn(op->arg, 0,
	    &(struct sap_lists_answer){refs, (size_t)n,
		n > 0 && pgr_get_bool(a->res, 0, 2)},
	    NULL);
	free(refs);
	sap_op_free(op);
}

int
sap_lists(struct store *st, const char *audience, sap_lists_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct sap_op *op = sap_op_new(st, arg);
	const char *v[1] = {audience};

	op->lfn = fn;
	if (sap_read(st,
		&(struct pg_query){.sql = sap_sql_lists,
		    .nparams = 1,
		    .values = v,
		    .done = sap_lists_answer},
		op, err, errlen) == -1) {
		sap_op_free(op);
		return -1;
	}
	return 0;
}

/* sap_get(): the row, then the counts, then what it caused. */
static void
sap_get_row(void *arg, const struct pg_answer *a)
{
	struct sap_op *op = arg;

	if (sap_failed(op, a) || PQntuples(a->res) != 1)
		return;
	op->o = sap_row_json(a->res, 0);
}

/* counts[name] += n; a count that reaches 0 is dropped. */
static void
sap_count_add(json_t *counts, const char *name, int64_t n)
{
	int64_t v = json_integer_value(json_object_get(counts, name)) + n;

	if (v != 0)
		json_object_set_new(counts, name, json_integer(v));
	else
		json_object_del(counts, name);
}

static void
sap_get_counts(void *arg, const struct pg_answer *a)
{
	struct sap_op *op = arg;
	json_t *c, *ch;
	int i;

	if (sap_failed(op, a) || op->o == NULL)
		return;
	c = json_pack("{s:{}, s:{}}", "sms", "email");
	for (i = 0; i < PQntuples(a->res); i++) {
		const char *name = PQgetvalue(a->res, i, 1);
		int64_t n = pgr_get_i64(a->res, i, 2);

		if ((ch = json_object_get(c, PQgetvalue(a->res, i, 0))) ==
			NULL ||
		    n == 0)
			continue;
		sap_count_add(ch, name, n);
		if (strcmp(name, "deferred") == 0)
			sap_count_add(ch, "pending", -n);
	}
	json_object_set_new(op->o, "counts", c);
}

static void
sap_get_caused(void *arg, const struct pg_answer *a)
{
	struct sap_op *op = arg;

	if (!sap_failed(op, a) && op->o != NULL && PQntuples(a->res) == 1)
		json_object_set_new(op->o, "caused",
		    json_pack("{s:I, s:I}", "optouts",
			(json_int_t)pgr_get_i64(a->res, 0, 1), "replies",
			(json_int_t)pgr_get_i64(a->res, 0, 3)));
	if (op->failed)
		op->jfn(op->arg, -1, NULL, op->error);
	else {
		op->jfn(op->arg, 0, op->o, NULL);
		op->o = NULL;
	}
	sap_op_free(op);
}

int
sap_get(struct store *st, int64_t id, int64_t now, sap_json_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct sap_op *op = sap_op_new(st, arg);
	char ids[24], nows[24];
	const char *v[2] = {pgr_i64(ids, id, false), pgr_i64(nows, now, false)};

	op->jfn = fn;
	/* Three reads in one round trip; only the last one calls back, and
	 * a failure of the ones before it is kept in op (answers come in
	 * order, so op lives until then). */
	if (sap_read(st,
		&(struct pg_query){.sql = "SELECT " SAP_COLS
					  " FROM alerts WHERE id = $1::bigint",
		    .nparams = 1,
		    .values = v,
		    .done = sap_get_row},
		op, err, errlen) == -1) {
		sap_op_free(op);
		return -1;
	}
	if (sap_read(st,
		&(struct pg_query){.sql = sap_sql_counts,
		    .nparams = 2,
		    .values = v,
		    .done = sap_get_counts},
		op, err, errlen) == -1 ||
	    sap_read(st,
		&(struct pg_query){.sql = sap_sql_guard,
		    .nparams = 1,
		    .values = v,
		    .done = sap_get_caused},
		op, err, errlen) == -1) {
		/* pg_send() refuses only a closing connection: the first
		 * read's answer then comes as "closed" and frees nothing. */
		abort();
	}
	return 0;
}

static void
sap_page_answer(void *arg, const struct pg_answer *a)
{
	struct sap_op *op = arg;
	json_t *arr;
	int i;

	if (sap_failed(op, a)) {
		op->jfn(op->arg, -1, NULL, op->error);
		sap_op_free(op);
		return;
	}
	arr = json_array();
	for (i = 0; i < PQntuples(a->res); i++)
		json_array_append_new(arr, sap_row_json(a->res, i));
	op->jfn(op->arg, 0, arr, NULL);
	sap_op_free(op);
}

int
sap_list(struct store *st, const struct sap_page *p, sap_json_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct sap_op *op = sap_op_new(st, arg);
	char before[24], limit[24];
	const char *v[3] = {pgr_i64(before, p->before, false), p->status,
	    pgr_i64(limit, (int64_t)p->limit, false)};

	op->jfn = fn;
	if (sap_read(st,
		&(struct pg_query){.sql = sap_sql_page,
		    .nparams = 3,
		    .values = v,
		    .done = sap_page_answer},
		op, err, errlen) == -1) {
		sap_op_free(op);
		return -1;
	}
	return 0;
}

static void
sap_load_answer(void *arg, const struct pg_answer *a)
{
	struct sap_op *op = arg;
	struct alert_row r;

	if (sap_failed(op, a)) {
		op->ldfn(op->arg, -1, NULL, 0, op->error);
		sap_op_free(op);
		return;
	}
	if (PQntuples(a->res) != 1) {
		op->ldfn(op->arg, 0, NULL, 0, NULL);
		sap_op_free(op);
		return;
	}
	sap_row(a->res, 0, &r);
	op->ldfn(op->arg, 0, &r, pgr_get_i64(a->res, 0, 23), NULL);
	store_alert_row_free(&r);
	sap_op_free(op);
}

int
sap_load(struct store *st, int64_t id, const char *key, sap_load_fn *fn,
    void *arg, char *err, size_t errlen)
{
	struct sap_op *op = sap_op_new(st, arg);
	char ids[24];
	const char *v[2] = {pgr_i64(ids, id, false), key};

	op->ldfn = fn;
	if (sap_read(st,
		&(struct pg_query){.sql = sap_sql_load,
		    .nparams = 2,
		    .values = v,
		    .done = sap_load_answer},
		op, err, errlen) == -1) {
		sap_op_free(op);
		return -1;
	}
	return 0;
}

/* A member row (id, sms_ok, email_ok, phone, email, first_name,
 * last_name, zip, time_zone, attributes, list time zone) into *m, its
 * strings borrowed from res. */
static void
sap_member(const PGresult *res, int i, struct alert_member *m)
{
	memset(m, 0, sizeof(*m));
	m->id = pgr_get_i64(res, i, 0);
	m->phone = pgr_get_bool(res, i, 1) ? pgr_get_text(res, i, 3) : NULL;
	m->email = pgr_get_bool(res, i, 2) ? pgr_get_text(res, i, 4) : NULL;
	m->first_name = pgr_get_text(res, i, 5);
	m->last_name = pgr_get_text(res, i, 6);
	m->zip = pgr_get_text(res, i, 7);
	m->time_zone = pgr_get_text(res, i, 8);
	m->attributes = pgr_get_text(res, i, 9);
	m->list_time_zone = pgr_get_text(res, i, 10);
}

/* sap_audience(): its statements' answers come in the order sent. */
struct sap_aud_op {
	sap_audience_fn *fn;
	void *arg;
	struct alert_visitor v;
	size_t nmissing;
	size_t base;	/* 1 when the reach is not read */
	size_t answers; /* answered so far */
	size_t total;	/* statements sent */
	bool failed;
	char error[256];
	struct alert_reach reach;
	int64_t *missing;
};

static void
sap_aud_answer(void *arg, const struct pg_answer *a)
{
	struct sap_aud_op *op = arg;
	const PGresult *res = a->res;
	struct alert_member m;
	size_t k = op->base + op->answers++;
	int i;

	if (a->error != NULL && !op->failed) {
		snprintf(op->error, sizeof(op->error), "%s", a->error);
		op->failed = true;
	}
	if (op->failed)
		;
	else if (k == 0 && PQntuples(res) == 1) {
		op->reach.matched = pgr_get_i64(res, 0, 0);
		op->reach.sms = pgr_get_i64(res, 0, 1);
		op->reach.email = pgr_get_i64(res, 0, 2);
		op->reach.both = pgr_get_i64(res, 0, 3);
		op->reach.sms_opted_out = pgr_get_i64(res, 0, 4);
		op->reach.email_opted_out = pgr_get_i64(res, 0, 5);
		op->reach.email_bouncing = pgr_get_i64(res, 0, 6);
		op->reach.unconfirmed = pgr_get_i64(res, 0, 7);
	} else if (k >= 1 && k <= op->nmissing && PQntuples(res) == 1)
		op->missing[k - 1] = pgr_get_i64(res, 0, 0);
	else if (k > op->nmissing) {
		for (i = 0; i < PQntuples(res); i++) {
			sap_member(res, i, &m);
			if (op->v.fn(op->v.arg, &m, op->error,
				sizeof(op->error)) == -1) {
				op->failed = true;
				break;
			}
		}
	}
	if (op->answers < op->total)
		return;
	if (op->failed)
		op->fn(op->arg, -1, NULL, NULL, op->error);
	else
		op->fn(op->arg, 0, &op->reach, op->missing, NULL);
	free(op->missing);
	free(op);
}

/* Sends one statement of op; only the first may be refused (pg_send()
 * refuses a closing connection only, whose queue is answered "closed"). */
static int
sap_aud_send(struct store *st, struct sap_aud_op *op, const char *sql,
    const char *const *v, int n)
{
	char err[256];

	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = sql,
		    .nparams = n,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = sap_aud_answer,
		    .arg = op},
		err, sizeof(err)) == -1) {
		if (op->total > 0)
			abort();
		snprintf(op->error, sizeof(op->error), "%s", err);
		return -1;
	}
	op->total++;
	return 0;
}

int
sap_audience(struct store *st, const struct sap_audience_q *q,
    sap_audience_fn *fn, void *arg, char *err, size_t errlen)
{
	struct sap_aud_op *op = xcalloc(1, sizeof(*op));
	char last[24], lim[24];
	const char *v[8];
	size_t i;

	op->fn = fn;
	op->arg = arg;
	op->v = q->v;
	op->nmissing = q->nmissing;
	op->missing = xcalloc(q->nmissing + 1, sizeof(*op->missing));
	/* Every member: after 0, up to the largest id. */
	v[0] = q->audience;
	v[1] = q->sms ? "true" : "false";
	v[2] = q->email ? "true" : "false";
	v[3] = "0";
	v[4] = pgr_i64(last, INT64_MAX, false);
	op->base = q->skip_reach ? 1 : 0;
	/* Only the first statement sent may be refused (see sap_aud_send()). */
	if (!q->skip_reach && sap_aud_send(st, op, sap_sql_reach, v, 5) == -1)
		goto refused;
	for (i = 0; i < q->nmissing; i++) {
		v[1] = q->missing[i].sms ? "true" : "false";
		v[2] = q->missing[i].sms ? "false" : "true";
		v[5] = q->missing[i].f.column != NULL ? q->missing[i].f.column
						      : "";
		v[6] = q->missing[i].f.attr;
		if (sap_aud_send(st, op, sap_sql_missing, v, 7) == -1)
			goto refused;
	}
	v[1] = q->sms ? "true" : "false";
	v[2] = q->email ? "true" : "false";
	if (q->walk > 0) {
		v[5] = pgr_i64(lim, (int64_t)q->walk, false);
		if (sap_aud_send(st, op, sap_sql_walk, v, 6) == -1)
			goto refused;
	}
	v[2] = "false";
	v[5] = pgr_i64(lim, (int64_t)q->longest_limit, false);
	for (i = 0; i < q->nlongest; i++) {
		v[6] = q->longest[i].column != NULL ? q->longest[i].column : "";
		v[7] = q->longest[i].attr;
		if (sap_aud_send(st, op, sap_sql_longest, v, 8) == -1)
			goto refused;
	}
	if (op->total == 0)
		abort(); /* nothing asked: the callers always read something */
	return 0;
refused:
	snprintf(err, errlen, "%s", op->error);
	free(op->missing);
	free(op);
	return -1;
}

/* ---- Writes ------------------------------------------------------------- */

static void
sap_done_call(struct sap_op *op, bool ok)
{
	op->d.ok = ok && !op->failed;
	if (!op->d.ok && op->error[0] != '\0')
		op->d.error = op->error;
	op->dfn(op->arg, &op->d);
	sap_op_free(op);
}

static void
sap_create_answer(void *arg, const struct pg_answer *a)
{
	struct sap_op *op = arg;

	if (sap_failed(op, a))
		return;
	if (PQntuples(a->res) == 1)
		op->d.id = pgr_get_i64(a->res, 0, 0);
}

static void
sap_create_by_key(void *arg, const struct pg_answer *a)
{
	struct sap_op *op = arg;

	if (!sap_failed(op, a) && PQntuples(a->res) == 1)
		op->d.id = pgr_get_i64(a->res, 0, 0);
	if (!op->failed && op->d.id == 0) {
		op->failed = true;
		snprintf(op->error, sizeof(op->error),
		    "create: the alert of key '%.64s' vanished", op->key);
	}
	sap_done_call(op, true);
}

static void
sap_create_commit(void *arg, bool ok)
{
	struct sap_op *op = arg;
	const char *v[1] = {op->key};
	char err[256];

	if (ok && !op->failed && op->d.id == 0 && op->key != NULL) {
		/* The key was another alert's: its id, now committed. */
		op->d.dup = true;
		if (sap_read(op->st,
			&(struct pg_query){.sql = sap_sql_by_create_key,
			    .nparams = 1,
			    .values = v,
			    .done = sap_create_by_key},
			op, err, sizeof(err)) == 0)
			return;
		op->failed = true;
		snprintf(op->error, sizeof(op->error), "%s", err);
	}
	sap_done_call(op, ok);
}

int
sap_create(struct store *st, const struct alert_def *d, int64_t now,
    sap_done_fn *fn, void *arg, char *err, size_t errlen)
{
	struct sap_op *op = sap_op_new(st, arg);
	char b[6][24];
	const char *v[15];

	v[0] = d->name;
	v[1] = d->audience;
	v[2] = d->sms ? "1" : "0";
	v[3] = d->email ? "1" : "0";
	v[4] = d->sender;
	v[5] = d->sms_body;
	v[6] = d->email_subject;
	v[7] = d->email_text;
	v[8] = d->email_html;
	v[9] = d->urgent ? "1" : "0";
	v[10] = pgr_i64(b[0], d->validity_s, false);
	v[11] = pgr_i64(b[1], d->scheduled_at, true);
	v[12] = d->create_key;
	v[13] = pgr_i64(b[2], d->created_by, true);
	v[14] = pgr_i64(b[3], now, false);
	op->dfn = fn;
	op->key = d->create_key != NULL ? xstrdup(d->create_key) : NULL;
	if (store_pg_group_send(st,
		&(struct pg_query){.sql = sap_sql_create,
		    .nparams = 15,
		    .values = v,
		    .done = sap_create_answer,
		    .arg = op},
		err, errlen) == -1) {
		sap_op_free(op);
		return -1;
	}
	store_on_commit(st, sap_create_commit, op);
	return 0;
}

static void
sap_action_moved(void *arg, const struct pg_answer *a)
{
	struct sap_op *op = arg;

	if (sap_failed(op, a) || PQntuples(a->res) != 1)
		return;
	op->d.moved = !PQgetisnull(a->res, 0, 0);
	if (PQnfields(a->res) > 1 && !PQgetisnull(a->res, 0, 1))
		op->d.key_alert = pgr_get_i64(a->res, 0, 1);
}

static void
sap_action_other(void *arg, const struct pg_answer *a)
{
	sap_failed(arg, a);
}

static void
sap_action_commit(void *arg, bool ok)
{
	sap_done_call(arg, ok);
}

int
sap_draft(struct store *st, int64_t id, const struct alert_def *d, int64_t now,
    sap_done_fn *fn, void *arg, char *err, size_t errlen)
{
	struct sap_op *op = sap_op_new(st, arg);
	char b[4][24];
	const char *v[14];

	v[0] = pgr_i64(b[0], id, false);
	if (d != NULL) {
		v[1] = d->name;
		v[2] = d->audience;
		v[3] = d->sms ? "1" : "0";
		v[4] = d->email ? "1" : "0";
		v[5] = d->sender;
		v[6] = d->sms_body;
		v[7] = d->email_subject;
		v[8] = d->email_text;
		v[9] = d->email_html;
		v[10] = d->urgent ? "1" : "0";
		v[11] = pgr_i64(b[1], d->validity_s, false);
		v[12] = pgr_i64(b[2], d->scheduled_at, true);
		v[13] = pgr_i64(b[3], now, false);
	}
	op->dfn = fn;
	if (store_pg_group_send(st,
		&(struct pg_query){.sql = d != NULL ? sap_sql_draft_update
						    : sap_sql_draft_delete,
		    .nparams = d != NULL ? 14 : 1,
		    .values = v,
		    .done = sap_action_moved,
		    .arg = op},
		err, errlen) == -1) {
		sap_op_free(op);
		return -1;
	}
	store_on_commit(st, sap_action_commit, op);
	return 0;
}

/* Adds one statement of an action to the group. */
static int
sap_action_send(struct store *st, const char *sql, const char *const *v, int n,
    struct sap_op *op)
{
	char err[256];

	if (store_pg_group_send(st,
		&(struct pg_query){.sql = sql,
		    .nparams = n,
		    .values = v,
		    .done = sql == sap_sql_transition ? sap_action_moved
						      : sap_action_other,
		    .arg = op},
		err, sizeof(err)) == -1) {
		/* Only the first statement may be refused (no group can be
		 * opened); later ones join the group it opened. */
		if (!op->failed)
			snprintf(op->error, sizeof(op->error), "%s", err);
		op->failed = true;
		return -1;
	}
	return 0;
}

int
sap_action(struct store *st, const struct sap_action *a, sap_done_fn *fn,
    void *arg, char *err, size_t errlen)
{
	struct sap_op *op = sap_op_new(st, arg);
	struct sap_arr from = {0};
	char ids[24], nows[24], at[24];
	const char *v[7];
	unsigned i;

	for (i = 0; i < ALERT_STATUS_COUNT; i++)
		if (a->t.from & (1u << i))
			sap_arr_add(&from, alert_status_name(i));
	v[0] = pgr_i64(ids, a->id, false);
	v[1] = alert_status_name(a->t.to);
	v[2] = a->t.to == ALERT_PAUSED ? a->t.reason : NULL;
	v[3] = pgr_i64(nows, a->t.now, false);
	v[4] = sap_arr_close(&from);
	v[5] = pgr_i64(at, a->at, true);
	v[6] = a->key;
	op->dfn = fn;
	if ((a->key != NULL &&
		sap_action_send(st, SAP_SEND_KEY_LOCK, NULL, 0, op) == -1) ||
	    sap_action_send(st, sap_sql_transition, v, 7, op) == -1) {
		snprintf(err, errlen, "%s", op->error);
		free(from.buf);
		sap_op_free(op);
		return -1;
	}
	free(from.buf);
	/* The messages: $1 id, $2 now. */
	v[1] = v[3];
	if (a->t.to == ALERT_PAUSED)
		sap_action_send(st, sap_sql_hold, v, 1, op);
	if (a->release)
		sap_action_send(st, sap_sql_release, v, 2, op);
	if (a->t.to == ALERT_CANCELLED)
		sap_action_send(st, sap_sql_cancel, v, 2, op);
	store_on_commit(st, sap_action_commit, op);
	return 0;
}

/* ---- The fan-out -------------------------------------------------------- */

struct sap_fan {
	struct pg *pg;
	char *appname; /* "outreachd-alerts:NODE" */
	bool closing;
};

/* Each connection is named for the node (pg_stat_activity shows which
 * node's fan-out a backend serves). */
static void
sap_fan_state(void *arg, enum pg_state state, const char *why)
{
	struct sap_fan *f = arg;
	const char *v[1] = {f->appname};
	char err[128];

	(void)why;
	if (state != PG_UP || f->closing)
		return;
	(void)pg_send(f->pg,
	    &(struct pg_query){
		.sql = "SELECT set_config('application_name', $1, false)",
		.nparams = 1,
		.values = v},
	    err, sizeof(err));
}

struct sap_fan *
sap_fan_open(struct event_base *base, const char *url, const char *node,
    char *err, size_t errlen)
{
	struct sap_fan *f = xcalloc(1, sizeof(*f));
	struct pg_config pc;

	memset(&pc, 0, sizeof(pc));
	pc.url = url;
	pc.on_state = sap_fan_state;
	pc.arg = f;
	f->appname = xasprintf("outreachd-alerts:%s", node != NULL ? node : "");
	if ((f->pg = pg_new(base, &pc, err, errlen)) == NULL) {
		free(f->appname);
		free(f);
		return NULL;
	}
	return f;
}

void
sap_fan_close(struct sap_fan *f)
{
	if (f == NULL)
		return;
	f->closing = true;
	pg_free(f->pg);
	free(f->appname);
	free(f);
}

/* A tick in flight. */
struct sap_tick_op {
	sap_tick_fn *fn;
	void *arg;
	bool failed;
	char error[256];
	int64_t *started;
	size_t nstarted;
	int64_t *done;
	size_t ndone;
};

static void
sap_ids(const struct pg_answer *a, int64_t **ids, size_t *n)
{
	int i, rows = PQntuples(a->res);

	*ids = xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(**ids));
	for (i = 0; i < rows; i++)
		(*ids)[i] = pgr_get_i64(a->res, i, 0);
	*n = (size_t)rows;
}

static bool
sap_tick_failed(struct sap_tick_op *op, const struct pg_answer *a)
{
	if (a->error == NULL)
		return false;
	if (!op->failed)
		snprintf(op->error, sizeof(op->error), "%s", a->error);
	op->failed = true;
	return true;
}

static void
sap_tick_started(void *arg, const struct pg_answer *a)
{
	struct sap_tick_op *op = arg;

	if (!sap_tick_failed(op, a))
		sap_ids(a, &op->started, &op->nstarted);
}

static void
sap_tick_done(void *arg, const struct pg_answer *a)
{
	struct sap_tick_op *op = arg;

	if (!sap_tick_failed(op, a))
		sap_ids(a, &op->done, &op->ndone);
}

static void
sap_tick_live(void *arg, const struct pg_answer *a)
{
	struct sap_tick_op *op = arg;
	struct sap_tick t = {0};
	struct alert_row *rows = NULL;
	int i, n = 0;

	if (!sap_tick_failed(op, a)) {
		n = PQntuples(a->res);
		rows = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*rows));
		for (i = 0; i < n; i++)
			sap_row(a->res, i, &rows[i]);
	}
	if (op->failed)
		op->fn(op->arg, -1, NULL, op->error);
	else {
		t.started = op->nstarted;
		t.started_ids = op->started;
		t.done = op->ndone;
		t.done_ids = op->done;
		t.rows = rows;
		t.nrows = (size_t)n;
		op->fn(op->arg, 0, &t, NULL);
	}
	for (i = 0; i < n; i++)
		store_alert_row_free(&rows[i]);
	free(rows);
	free(op->started);
	free(op->done);
	free(op);
}

int
sap_fan_tick(struct sap_fan *f, int64_t now, sap_tick_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct sap_tick_op *op = xcalloc(1, sizeof(*op));
	char nows[24];
	const char *v[1] = {pgr_i64(nows, now, false)};

	op->fn = fn;
	op->arg = arg;
	/* Each answers in order; the last one calls back. The two updates
	 * are safe to run twice (their WHERE), so all three are resent
	 * after a reconnection. */
	if (pg_send(f->pg,
		&(struct pg_query){.sql = sap_sql_start_due,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = sap_tick_started,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	if (pg_send(f->pg,
		&(struct pg_query){.sql = sap_sql_finish,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = sap_tick_done,
		    .arg = op},
		err, errlen) == -1 ||
	    pg_send(f->pg,
		&(struct pg_query){.sql = sap_sql_live,
		    .flags = PG_IDEMPOTENT,
		    .done = sap_tick_live,
		    .arg = op},
		err, errlen) == -1)
		abort(); /* refused only while closing: see sap_get() */
	return 0;
}

/* A guard read in flight. */
struct sap_guard_op {
	sap_guard_fn *fn;
	void *arg;
};

static void
sap_guard_answer(void *arg, const struct pg_answer *a)
{
	struct sap_guard_op *op = arg;
	struct alert_guard g = {0};

	if (a->error != NULL || PQntuples(a->res) != 1)
		op->fn(op->arg, -1, NULL,
		    a->error != NULL ? a->error : "guard: no row");
	else {
		g.reached = pgr_get_i64(a->res, 0, 0);
		g.optouts = pgr_get_i64(a->res, 0, 1);
		g.failed = pgr_get_i64(a->res, 0, 2);
		g.replies = pgr_get_i64(a->res, 0, 3);
		g.finished = g.reached + g.failed;
		op->fn(op->arg, 0, &g, NULL);
	}
	free(op);
}

int
sap_fan_guard(struct sap_fan *f, int64_t id, sap_guard_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct sap_guard_op *op = xcalloc(1, sizeof(*op));
	char ids[24];
	const char *v[1] = {pgr_i64(ids, id, false)};

	op->fn = fn;
	op->arg = arg;
	if (pg_send(f->pg,
		&(struct pg_query){.sql = sap_sql_guard,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = sap_guard_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	return 0;
}

/* The columns of the messages a batch writes. */
enum {
	SAP_C_CH,
	SAP_C_MEM,
	SAP_C_SND,
	SAP_C_TO,
	SAP_C_FROM,
	SAP_C_SUBJ,
	SAP_C_BODY,
	SAP_C_HTML,
	SAP_C_NB,
	SAP_C_ENC,
	SAP_C_SEG,
	SAP_C_RERR,
	SAP_C_EXP,
	SAP_C_PRIO,
	SAP_NCOLS
};

struct sap_batch {
	struct sap_fan *f;
	int64_t id;
	char *audience;
	int64_t max_id;
	int64_t now;
	bool sms;
	bool email;
	int64_t backlog;
	size_t chunk;
	int64_t scan;
	struct alert_visitor v;
	sap_batch_fn *fn;
	void *arg;
	/* what the answers said */
	bool failed;
	bool skipped;
	char error[256];
	int64_t cursor; /* as the claim read it */
	struct sap_batch_done d;
	int64_t moved; /* the write's: cursor moved (0/1) */
	struct sap_arr cols[SAP_NCOLS];
};

static void
sap_batch_free(struct sap_batch *b)
{
	size_t i;

	for (i = 0; i < SAP_NCOLS; i++)
		free(b->cols[i].buf);
	free(b->audience);
	free(b);
}

static bool
sap_batch_failed(struct sap_batch *b, const char *error)
{
	if (error == NULL)
		return false;
	if (!b->failed)
		snprintf(b->error, sizeof(b->error), "%s", error);
	b->failed = true;
	return true;
}

/* The end of a batch: its ROLLBACK or COMMIT answered. */
static void
sap_batch_end(void *arg, const struct pg_answer *a)
{
	struct sap_batch *b = arg;
	bool committed = a->error == NULL && a->res != NULL &&
	    strcmp(PQcmdStatus((PGresult *)a->res), "COMMIT") == 0;

	if (b->failed)
		b->d.rc = -1;
	else if (b->skipped)
		b->d.rc = 0;
	else if (!committed) {
		sap_batch_failed(b,
		    a->error != NULL ? a->error : "the COMMIT rolled back");
		b->d.rc = -1;
	} else if (b->moved != 1)
		b->d.rc = 0; /* the cursor was not the one read */
	else
		b->d.rc = 1;
	if (b->d.rc != 1) {
		b->d.members = b->d.made = 0;
		b->d.cursor.next = b->cursor;
		b->d.cursor.end = false;
	}
	b->d.error = b->d.rc == -1 ? b->error : NULL;
	b->fn(b->arg, &b->d);
	sap_batch_free(b);
}

static void
sap_batch_finish(struct sap_batch *b, const char *sql)
{
	char err[256];

	if (pg_send(b->f->pg,
		&(struct pg_query){.sql = sql, .done = sap_batch_end, .arg = b},
		err, sizeof(err)) == -1) {
		/* The connection is closing: end the batch here. */
		sap_batch_failed(b, err);
		sap_batch_end(b, &(struct pg_answer){.error = err});
	}
}

static void
sap_batch_begun(void *arg, const struct pg_answer *a)
{
	sap_batch_failed(arg, a->error);
}

static void
sap_batch_written(void *arg, const struct pg_answer *a)
{
	struct sap_batch *b = arg;

	if (sap_batch_failed(b, a->error) || PQntuples(a->res) != 1)
		return;
	b->moved = pgr_get_i64(a->res, 0, 0);
	b->d.made = pgr_get_i64(a->res, 0, 1);
}

/* The walk's members, rendered by the visitor; then the write. */
static void
sap_batch_walked(void *arg, const struct pg_answer *a)
{
	struct sap_batch *b = arg;
	struct alert_member m;
	char err[256], cur[24], next[24], nows[24], old[24];
	const char *v[5 + SAP_NCOLS];
	int64_t last;
	int i, n;

	if (sap_batch_failed(b, a->error)) {
		sap_batch_finish(b, "ROLLBACK");
		return;
	}
	last =
	    b->max_id < b->cursor + b->scan ? b->max_id : b->cursor + b->scan;
	if (last < b->cursor)
		last = b->cursor;
	n = PQntuples(a->res);
	b->d.cursor.next = b->cursor;
	for (i = 0; i < n; i++) {
		sap_member(a->res, i, &m);
		if (b->v.fn(b->v.arg, &m, err, sizeof(err)) == -1) {
			sap_batch_failed(b, err);
			sap_batch_finish(b, "ROLLBACK");
			return;
		}
		b->d.cursor.next = m.id;
	}
	b->d.members = n;
	if ((size_t)n < b->chunk) {
		/* The range is exhausted: resume after its end. */
		b->d.cursor.next = last;
		b->d.cursor.end = last >= b->max_id;
	}
	v[0] = pgr_i64(cur, b->id, false);
	v[1] = pgr_i64(next, b->d.cursor.next, false);
	v[2] = b->d.cursor.end ? "1" : "0";
	v[3] = pgr_i64(nows, b->now, false);
	v[4] = pgr_i64(old, b->cursor, false);
	for (i = 0; i < SAP_NCOLS; i++)
		v[5 + i] = sap_arr_close(&b->cols[i]);
	if (pg_send(b->f->pg,
		&(struct pg_query){.sql = sap_sql_write,
		    .nparams = 5 + SAP_NCOLS,
		    .values = v,
		    .done = sap_batch_written,
		    .arg = b},
		err, sizeof(err)) == -1) {
		sap_batch_failed(b, err);
		sap_batch_end(b, &(struct pg_answer){.error = err});
		return;
	}
	sap_batch_finish(b, "COMMIT");
}

/* The claim's answer: the cursor and the due backlog, or no row. */
static void
sap_batch_claimed(void *arg, const struct pg_answer *a)
{
	struct sap_batch *b = arg;
	char err[256], after[24], lastb[24], limb[24];
	const char *v[6];
	int64_t room, last;

	if (sap_batch_failed(b, a->error) || b->failed) {
		sap_batch_finish(b, "ROLLBACK");
		return;
	}
	if (PQntuples(a->res) != 1) {
		/* Another node holds it, or it is no longer sending. */
		b->skipped = true;
		sap_batch_finish(b, "ROLLBACK");
		return;
	}
	b->cursor = pgr_get_i64(a->res, 0, 0);
	room = b->backlog - pgr_get_i64(a->res, 0, 1);
	if (room <= 0) {
		b->skipped = true; /* its backlog is full: nothing to do */
		sap_batch_finish(b, "ROLLBACK");
		return;
	}
	if ((size_t)room < b->chunk)
		b->chunk = (size_t)room;
	last =
	    b->max_id < b->cursor + b->scan ? b->max_id : b->cursor + b->scan;
	if (last < b->cursor)
		last = b->cursor;
	v[0] = b->audience;
	v[1] = b->sms ? "true" : "false";
	v[2] = b->email ? "true" : "false";
	v[3] = pgr_i64(after, b->cursor, false);
	v[4] = pgr_i64(lastb, last, false);
	v[5] = pgr_i64(limb, (int64_t)b->chunk, false);
	if (pg_send(b->f->pg,
		&(struct pg_query){.sql = sap_sql_walk,
		    .nparams = 6,
		    .values = v,
		    .done = sap_batch_walked,
		    .arg = b},
		err, sizeof(err)) == -1) {
		sap_batch_failed(b, err);
		sap_batch_end(b, &(struct pg_answer){.error = err});
	}
}

struct sap_batch *
sap_batch(struct sap_fan *f, const struct sap_batch_req *req,
    const struct alert_visitor *v, sap_batch_fn *fn, void *arg, char *err,
    size_t errlen)
{
	struct sap_batch *b = xcalloc(1, sizeof(*b));
	char ids[24], nows[24], bl[24];
	const char *p[3];

	b->f = f;
	b->id = req->row->id;
	b->audience = xstrdup(req->row->audience);
	b->max_id = req->row->audience_max_id;
	b->now = req->now;
	b->sms = req->sms;
	b->email = req->email;
	b->backlog = req->backlog;
	b->chunk = req->chunk;
	b->scan = req->scan;
	b->v = *v;
	b->fn = fn;
	b->arg = arg;
	b->cursor = req->row->cursor;
	p[0] = pgr_i64(ids, b->id, false);
	p[1] = pgr_i64(nows, b->now, false);
	p[2] = pgr_i64(bl, b->backlog, false);
	if (pg_send(f->pg,
		&(struct pg_query){.sql = "BEGIN",
		    .done = sap_batch_begun,
		    .arg = b},
		err, errlen) == -1) {
		sap_batch_free(b);
		return NULL;
	}
	if (pg_send(f->pg,
		&(struct pg_query){.sql = sap_sql_lock,
		    .nparams = 3,
		    .values = p,
		    .done = sap_batch_claimed,
		    .arg = b},
		err, errlen) == -1)
		abort(); /* refused only while closing */
	return b;
}

void
sap_batch_add(struct sap_batch *b, const struct queue_new *q,
    const char *render_err)
{
	struct sap_arr *c = b->cols;

	sap_arr_add(&c[SAP_C_CH], channel_to_text(q->channel));
	sap_arr_i64(&c[SAP_C_MEM], q->member_id, true);
	sap_arr_add(&c[SAP_C_SND], q->sender);
	sap_arr_add(&c[SAP_C_TO], q->to);
	sap_arr_add(&c[SAP_C_FROM], q->from);
	sap_arr_add(&c[SAP_C_SUBJ], q->subject);
	sap_arr_add(&c[SAP_C_BODY], q->body);
	sap_arr_add(&c[SAP_C_HTML], q->html);
	sap_arr_i64(&c[SAP_C_NB], q->not_before, true);
	sap_arr_add(&c[SAP_C_ENC], q->encoding);
	sap_arr_i64(&c[SAP_C_SEG], q->segments, true);
	sap_arr_add(&c[SAP_C_RERR], render_err);
	sap_arr_i64(&c[SAP_C_EXP], q->expires_at, true);
	sap_arr_i64(&c[SAP_C_PRIO], q->priority, false);
}

#else /* !HAVE_LIBPQ: the daemon never calls these without PostgreSQL */

static int
sap_no_pg(char *err, size_t errlen)
{
	return store_no_libpq(err, errlen);
}

int
sap_lists(struct store *st, const char *audience, sap_lists_fn *fn, void *arg,
    char *err, size_t errlen)
{
	(void)st, (void)audience, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

int
sap_get(struct store *st, int64_t id, int64_t now, sap_json_fn *fn, void *arg,
    char *err, size_t errlen)
{
	(void)st, (void)id, (void)now, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

int
sap_list(struct store *st, const struct sap_page *p, sap_json_fn *fn, void *arg,
    char *err, size_t errlen)
{
	(void)st, (void)p, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

int
sap_load(struct store *st, int64_t id, const char *key, sap_load_fn *fn,
    void *arg, char *err, size_t errlen)
{
	(void)st, (void)id, (void)key, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

int
sap_create(struct store *st, const struct alert_def *d, int64_t now,
    sap_done_fn *fn, void *arg, char *err, size_t errlen)
{
	(void)st, (void)d, (void)now, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

int
sap_action(struct store *st, const struct sap_action *a, sap_done_fn *fn,
    void *arg, char *err, size_t errlen)
{
	(void)st, (void)a, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

int
sap_draft(struct store *st, int64_t id, const struct alert_def *d, int64_t now,
    sap_done_fn *fn, void *arg, char *err, size_t errlen)
{
	(void)st, (void)id, (void)d, (void)now, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

int
sap_audience(struct store *st, const struct sap_audience_q *q,
    sap_audience_fn *fn, void *arg, char *err, size_t errlen)
{
	(void)st, (void)q, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

struct sap_fan *
sap_fan_open(struct event_base *base, const char *url, const char *node,
    char *err, size_t errlen)
{
	(void)base, (void)url, (void)node;
	sap_no_pg(err, errlen);
	return NULL;
}

void
sap_fan_close(struct sap_fan *f)
{
	(void)f;
}

int
sap_fan_tick(struct sap_fan *f, int64_t now, sap_tick_fn *fn, void *arg,
    char *err, size_t errlen)
{
	(void)f, (void)now, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

int
sap_fan_guard(struct sap_fan *f, int64_t id, sap_guard_fn *fn, void *arg,
    char *err, size_t errlen)
{
	(void)f, (void)id, (void)fn, (void)arg;
	return sap_no_pg(err, errlen);
}

struct sap_batch *
sap_batch(struct sap_fan *f, const struct sap_batch_req *req,
    const struct alert_visitor *v, sap_batch_fn *fn, void *arg, char *err,
    size_t errlen)
{
	(void)f, (void)req, (void)v, (void)fn, (void)arg;
	sap_no_pg(err, errlen);
	return NULL;
}

void
sap_batch_add(struct sap_batch *b, const struct queue_new *q,
    const char *render_err)
{
	(void)b, (void)q, (void)render_err;
}

#endif /* HAVE_LIBPQ */
