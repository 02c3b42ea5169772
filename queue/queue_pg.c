/*
 * queue_pg.c - the hot path's queue operations on either backend
 * (queue_pg.h): enqueue, a delivery report and a received text made
 * durable through a callback, and a message read as JSON. The SQLite
 * half hands on today's synchronous functions (queue.c,
 * queue_webhooks.c); the PostgreSQL half is here, with its SQL.
 *
 * DESIGN
 *
 * One statement per operation. On PostgreSQL a write joins the node's
 * group transaction (store_pg_group_send(): a pipelined BEGIN, the
 * turn's statements, COMMIT at the end of the turn), and an error in any
 * statement aborts the whole group: every caller of that group answers
 * 503. So an expected case must never raise an error, and each operation
 * is written as ONE statement whose data-modifying CTEs do all of it:
 * the message and its history row commit together without a second
 * round trip, and the conflicts the code expects are answered by ON
 * CONFLICT, not by a unique violation:
 *  - enqueue: INSERT ... ON CONFLICT (idempotency_key) DO NOTHING
 *    RETURNING id, its message_events row from the RETURNING. No row
 *    back means the key was used: by a transaction that had committed,
 *    or that ON CONFLICT waited for until it committed. That row is not
 *    in our statement's snapshot, so its id is read after our group
 *    committed, outside the group (store_pg_conn()), where it is
 *    visible. Two nodes given the same key at once both answer the
 *    first id.
 *  - a delivery report: the message found by our id or the provider's,
 *    moved forward only (sent -> delivered | undelivered | failed; the
 *    UPDATE's WHERE re-checks the row's state and sequence under its
 *    lock, so a concurrent report on another node cannot move it back),
 *    or the report kept in status_early under the keys
 *    queue_webhooks.c uses ("#<id>" for a message still queued or
 *    sending, else the provider's id) for the PostgreSQL dispatcher to
 *    apply at 'sent'. A kept report older than an hour is replaced, as
 *    SQLite drops it first (the DELETE of old rows spares the key being
 *    written: one statement must not change a row twice).
 *  - a received text: inserted with ON CONFLICT DO NOTHING (the unique
 *    index messages_inbound_provider_id makes a provider's retry, on any
 *    node, a no-op), and only when that insert made a row: the member
 *    ensured by phone (ON CONFLICT (phone) DO UPDATE, so that the row is
 *    returned whether it was made now, before, or by another node a
 *    moment ago), linked to the text, the SMS opt-out written (STOP) or
 *    removed (START, or YES while opted out) with its consent_events row
 *    only when it changed, and the reply queued with its history row.
 *    The retry test ("seen") runs before the member is ensured, so a
 *    retry creates nothing. A STOP committed by node A is read by node
 *    B's send-time check (pg_queue.c, READ COMMITTED) from then on.
 * Reads (a message as JSON, a duplicate's id) are sent outside the group
 * on the store's connection: they need no transaction and must not fail
 * one.
 *
 * Ordering: a statement's answer comes before its group's COMMIT answer
 * (the same pipeline), so the RETURNING values are in the operation
 * before store_on_commit() runs its callback, which is registered right
 * after the statement is sent. 'done' runs from that callback (or after
 * the duplicate's read), never from inside the call.
 *
 *  - YES, a list keyword or any other text (qpg_sql_route): the same
 *    head, then the subscription (ON CONFLICT (member_id, list_id,
 *    channel) DO UPDATE ... WHERE the state may move) with its consent
 *    event, or the member's conversation made or bumped, and the reply
 *    chosen among the caller's candidates by what was done. It follows
 *    a statement of the same group that locks the member's row: a
 *    statement's snapshot is taken when it starts, so without that lock
 *    two nodes routing texts of one member at once each read "no
 *    conversation" and made one (check_queue_pg test_route_two_nodes).
 *
 *  - follow-up questions: the member's pending question (member_prompts)
 *    is in the database, so a question asked by one node is answered on
 *    any. Before a routed text's statements, one read outside the group
 *    (qpg_sql_prompt) gives the caller the pending question and the list
 *    the text may join; the caller (inbound.c, route.prepare) renders the
 *    questions and parses the answer in C as on SQLite, and the route's
 *    statement acts on the answer only while the question is still the
 *    one read (a text racing another answer of the same member on
 *    another node is then a conversation message). An email answer takes
 *    the members' writers' advisory lock first.
 *
 * Not carried over to PostgreSQL: the queue_observe() hook (conversation
 * messages: migration 012's triggers there).
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compat.h"
#include "queue-internal.h"
#include "queue.h"
#include "queue_pg.h"
#include "store-internal.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"
#endif

/* One operation in flight: its caller, and what its answers said. */
struct qpg_op {
	struct store *st;
	queue_done_fn *done;
	void *arg;
	struct queue_done d;
	bool failed;	 /* its statement answered an error */
	char error[256]; /* that error, for d.error */
	char *key;	 /* enqueue: the idempotency key */
	/* message JSON */
	queue_json_fn *jfn;
	json_t *o;
	int answers; /* answers still to come */
	/* inbound routing: what d.routed and d.list point at */
	char routed[16];
	char list[72];
	char *arrays[5]; /* the reply candidates as array literals */
};

static struct qpg_op *
qpg_op_new(struct store *st, queue_done_fn *done, void *arg)
{
	struct qpg_op *op = xcalloc(1, sizeof(*op));

	op->st = st;
	op->done = done;
	op->arg = arg;
	op->d.status = -1;
	return op;
}

static void
qpg_op_free(struct qpg_op *op)
{
	size_t i;

	for (i = 0; i < sizeof(op->arrays) / sizeof(op->arrays[0]); i++)
		free(op->arrays[i]);
	free(op->key);
	free(op);
}

/* Runs the caller's callback once, then frees op. */
static void
qpg_finish(struct qpg_op *op, bool ok)
{
	op->d.ok = ok && !op->failed;
	if (!op->d.ok && op->error[0] != '\0')
		op->d.error = op->error;
	op->done(op->arg, &op->d);
	qpg_op_free(op);
}

/* ---- SQLite: today's functions, answered after the group commit ------ */

static void
qpg_sqlite_commit(void *arg, bool ok)
{
	struct qpg_op *op = arg;
	char err[256];

	if (ok && op->d.dup && op->key != NULL)
		op->d.status = queue_status(op->st, op->d.id, err, sizeof(err));
	qpg_finish(op, ok);
}

#ifdef HAVE_LIBPQ

/* ---- PostgreSQL ------------------------------------------------------ */

#define QPG_EARLY_KEEP_MS "3600000" /* queue_webhooks.c: an hour */

/* ?1.. as queue.c's queue_sql_insert, with the history row. */
static const char qpg_sql_enqueue[] =
    "WITH ins AS (INSERT INTO messages (direction, channel, member_id,"
    " sender, to_addr, from_addr, subject, body, html, status, priority,"
    " next_attempt_at, alert_id, conversation_id, idempotency_key,"
    " not_before, expires_at, created_at, updated_at, encoding, segments,"
    " optout_exempt, staff_id) VALUES ('out', $1::text, $2::bigint,"
    " $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, 'queued',"
    " $9::bigint, $10::bigint, $11::bigint, $12::bigint, $13::text,"
    " $14::bigint, $15::bigint, $16::bigint, $16::bigint, $17::text,"
    " $18::bigint, $19::bigint, $20::bigint)"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id),"
    " ev AS (INSERT INTO message_events (message_id, status, created_at)"
    " SELECT id, 'queued', $16::bigint FROM ins)"
    " SELECT id FROM ins";
static const char qpg_sql_by_key[] =
    "SELECT id, status FROM messages WHERE idempotency_key = $1::text";

/*
 * A delivery report: $1 provider, $2 our id (NULL), $3 the provider's id
 * (NULL), $4 status, $5 code (NULL), $6 text (NULL), $7 sequence (NULL),
 * $8 now. Answers (id or 0, queue_su_result).
 */
static const char qpg_sql_status[] =
    "WITH t AS MATERIALIZED (SELECT id, status,"
    " coalesce(status_sequence, 0) AS seq FROM ("
    "SELECT id, status, status_sequence, 1 AS pri FROM messages"
    " WHERE id = $2::bigint AND direction = 'out'"
    " AND (provider IS NULL OR provider = $1::text)"
    " UNION ALL SELECT id, status, status_sequence, 2 FROM messages"
    " WHERE provider = $1::text AND provider_message_id = $3::text"
    " AND direction = 'out' ORDER BY pri LIMIT 1) f),"
    " ap AS (UPDATE messages m SET status = $4::text,"
    " error_code = CASE WHEN $4::text = 'delivered' THEN m.error_code"
    " ELSE coalesce($5::bigint, m.error_code) END,"
    " error_text = CASE WHEN $4::text = 'delivered' THEN m.error_text"
    " ELSE coalesce($6::text, m.error_text) END,"
    " status_sequence = coalesce($7::bigint, m.status_sequence),"
    " updated_at = $8::bigint FROM t WHERE m.id = t.id"
    " AND t.status = 'sent' AND $4::text <> 'sent' AND m.status = 'sent'"
    " AND ($7::bigint IS NULL OR $7::bigint >= coalesce(m.status_sequence,"
    " 0)) RETURNING m.id),"
    " h AS (INSERT INTO message_events (message_id, status, code, text,"
    " created_at) SELECT id, $4::text, $5::bigint, $6::text, $8::bigint"
    " FROM ap),"
    " sq AS (UPDATE messages m SET status_sequence = $7::bigint FROM t"
    " WHERE m.id = t.id AND t.status = 'sent' AND $4::text = 'sent'"
    " AND m.status = 'sent'"
    " AND $7::bigint > coalesce(m.status_sequence, 0) RETURNING m.id),"
    " k AS MATERIALIZED (SELECT '#' || t.id AS key FROM t"
    " WHERE t.status IN ('queued', 'sending')"
    " UNION ALL SELECT $3::text WHERE $3::text IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM t)),"
    " dr AS (DELETE FROM status_early WHERE EXISTS (SELECT 1 FROM k)"
    " AND created_at < $8::bigint - " QPG_EARLY_KEEP_MS
    " AND NOT (provider = $1::text"
    " AND provider_message_id IN (SELECT key FROM k))),"
    " ke AS (INSERT INTO status_early (provider, provider_message_id,"
    " status, code, text, sequence, created_at)"
    " SELECT $1::text, key, $4::text, $5::bigint, $6::text, $7::bigint,"
    " $8::bigint FROM k ON CONFLICT (provider, provider_message_id)"
    " DO UPDATE SET status = excluded.status, code = excluded.code,"
    " text = excluded.text, sequence = excluded.sequence,"
    " created_at = excluded.created_at"
    " WHERE status_early.created_at < $8::bigint - " QPG_EARLY_KEEP_MS
    " OR (status_early.status = 'sent' AND excluded.status <> 'sent'"
    " AND (excluded.sequence IS NULL OR status_early.sequence IS NULL"
    " OR excluded.sequence >= status_early.sequence))"
    " OR (excluded.status = status_early.status"
    " AND excluded.sequence > status_early.sequence) RETURNING 1)"
    " SELECT coalesce((SELECT id FROM t), 0),"
    " CASE WHEN EXISTS (SELECT 1 FROM ap) THEN 0"
    " WHEN EXISTS (SELECT 1 FROM k) OR NOT EXISTS (SELECT 1 FROM t) THEN 2"
    " ELSE 1 END,"
    " (SELECT count(*) FROM ke) + (SELECT count(*) FROM sq)";

/*
 * A received text and its routing: $1 sender, $2 to, $3 from, $4 body,
 * $5 provider, $6 provider id (NULL), $7 segments (NULL), $8 now; $9 the
 * action (none, optout, optin, yes, help), $10 the member's E.164 (NULL:
 * no member), $11 the reply's body (NULL: none), $12 its from, $13 its
 * encoding, $14 its segments, $15 its priority, $16 optout_exempt.
 * Answers (the message id, whether it is new, the member, changed, the
 * reply's id).
 */
static const char qpg_sql_inbound[] =
    "WITH seen AS MATERIALIZED (SELECT id FROM messages"
    " WHERE provider = $5::text AND provider_message_id = $6::text"
    " AND direction = 'in'),"
    " mem AS (INSERT INTO members (phone, created_at, updated_at)"
    " SELECT $10::text, $8::bigint, $8::bigint WHERE $10::text IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM seen) ON CONFLICT (phone) DO UPDATE"
    " SET phone = excluded.phone RETURNING id),"
    " ins AS (INSERT INTO messages (direction, channel, member_id, sender,"
    " to_addr, from_addr, body, status, next_attempt_at, provider,"
    " provider_message_id, segments, created_at, updated_at)"
    " VALUES ('in', 'sms', coalesce((SELECT id FROM mem),"
    " (SELECT id FROM members WHERE phone = $3::text)), $1::text, $2::text,"
    " $3::text, $4::text, 'received', $8::bigint, $5::text, $6::text,"
    " $7::bigint, $8::bigint, $8::bigint) ON CONFLICT DO NOTHING"
    " RETURNING id, member_id),"
    " ev AS (INSERT INTO message_events (message_id, status, created_at)"
    " SELECT id, 'received', $8::bigint FROM ins),"
    " r AS MATERIALIZED (SELECT mem.id AS member, ins.id AS msg"
    " FROM mem, ins WHERE ins.member_id = mem.id),"
    " oo AS (INSERT INTO sms_optout (member_id, opted_out_at, source)"
    " SELECT member, $8::bigint, 'keyword' FROM r WHERE $9::text = 'optout'"
    " ON CONFLICT DO NOTHING RETURNING member_id),"
    " oi AS (DELETE FROM sms_optout WHERE $9::text IN ('optin', 'yes')"
    " AND member_id IN (SELECT member FROM r) RETURNING member_id),"
    " ce AS (INSERT INTO consent_events (member_id, channel, action,"
    " source, message_id, created_at)"
    " SELECT member_id, 'sms', 'opt_out', 'keyword', (SELECT msg FROM r),"
    " $8::bigint FROM oo UNION ALL"
    " SELECT member_id, 'sms', 'opt_in', 'keyword', (SELECT msg FROM r),"
    " $8::bigint FROM oi),"
    " rp AS (INSERT INTO messages (direction, channel, member_id, sender,"
    " to_addr, from_addr, body, status, priority, next_attempt_at,"
    " created_at, updated_at, encoding, segments, optout_exempt)"
    " SELECT 'out', 'sms', member, $1::text, $10::text, $12::text,"
    " $11::text, 'queued', $15::bigint, $8::bigint, $8::bigint, $8::bigint,"
    " $13::text, $14::bigint, $16::bigint FROM r"
    " WHERE $11::text IS NOT NULL AND ($9::text IN ('optin', 'help')"
    " OR ($9::text = 'optout' AND EXISTS (SELECT 1 FROM oo))"
    " OR ($9::text = 'yes' AND EXISTS (SELECT 1 FROM oi))) RETURNING id),"
    " rh AS (INSERT INTO message_events (message_id, status, created_at)"
    " SELECT id, 'queued', $8::bigint FROM rp)"
    " SELECT coalesce((SELECT id FROM ins), (SELECT id FROM seen), 0),"
    " EXISTS (SELECT 1 FROM ins), coalesce((SELECT member FROM r), 0),"
    " EXISTS (SELECT 1 FROM oo) OR EXISTS (SELECT 1 FROM oi),"
    " coalesce((SELECT id FROM rp), 0)";

/*
 * The member's row locked before a routed text's statement (see
 * qpg_sql_route): $1 the E.164, $2 now.
 */
static const char qpg_sql_member_lock[] =
    "INSERT INTO members (phone, created_at, updated_at)"
    " VALUES ($1::text, $2::bigint, $2::bigint) ON CONFLICT (phone)"
    " DO UPDATE SET phone = excluded.phone";

/*
 * A received text routed beyond the compliance words: YES, a list
 * keyword, or a conversation message, as inbound_route() does it on
 * SQLite. $1-$8 as qpg_sql_inbound; $9 the action (yes, keyword, text),
 * $10 the member's E.164, $11 the keyword's list name, $12 the keyword,
 * $13 the reply's from, $14 the attribution window (ms), $15-$19 the
 * reply candidates (kind, list, body, encoding, segments: arrays), $20
 * the reply's priority; the pending question as read before ($21 list,
 * $22 index, $23 attempts, $24 asked_at: NULL none), $25 what to do with
 * it ('answer', 'clear', NULL), $26 its field, $27 the answer parsed for
 * it (NULL: a bad one), $28 and $29 the step after a good and after a
 * bad answer ('next', 'reask', 'clear'). Answers (the message id,
 * whether it is new, the member, whether an opt-out was lifted, the
 * first reply's id, what was done, the list, the conversation).
 *
 * Follow-up questions: a join or a confirmation sends the welcome and
 * then, when the caller gave one ("first"), the list's first question,
 * which becomes the member's pending question (member_prompts). A text
 * that is no keyword and no confirming YES is the answer to the pending
 * question when that is still the one the caller read and prepared for
 * (its list, index, attempts and time): a good answer (parsed by the
 * caller, an email no other member has) is stored on the member and is
 * no conversation message; a bad one is asked again once ("reask"),
 * then dropped; then the next question ("next") or none. The member's
 * row is updated by this statement, so the member is found (made by
 * the lock statement before) and not upserted here: a row updated twice
 * by one statement keeps one of the changes.
 *
 * The member's row is locked by the statement before (the group's
 * qpg_sql_member_lock), so this one's snapshot, taken after that lock,
 * holds whatever another node's group committed for this member: its
 * opt-out, subscriptions, conversation, and the text itself when it was
 * a provider's retry ("seen"). The reads below (st, pl, cur, lc) may
 * then trust the snapshot. The conversation is made or bumped before
 * the text is inserted, which carries its id: a statement's CTEs do not
 * see each other's rows, so the text cannot be updated once inserted.
 */
static const char qpg_sql_route[] =
    "WITH seen AS MATERIALIZED (SELECT id FROM messages"
    " WHERE provider = $5::text AND provider_message_id = $6::text"
    " AND direction = 'in'),"
    /* made (and locked) by the statement before: qpg_sql_member_lock */
    " mem AS MATERIALIZED (SELECT id FROM members WHERE phone = $10::text"
    " AND NOT EXISTS (SELECT 1 FROM seen)),"
    " st AS MATERIALIZED (SELECT id AS member, EXISTS (SELECT 1"
    " FROM sms_optout o WHERE o.member_id = mem.id) AS out FROM mem),"
    /* the list a keyword names, or the pending one YES confirms */
    " kl AS MATERIALIZED (SELECT l.id, l.name, l.double_optin FROM lists l"
    " WHERE $9::text = 'keyword' AND l.name = $11::text"
    " AND EXISTS (SELECT 1 FROM st) FOR KEY SHARE OF l),"
    " pl AS MATERIALIZED (SELECT l.id, l.name, l.double_optin"
    " FROM st, subscriptions s JOIN lists l ON l.id = s.list_id"
    " WHERE $9::text = 'yes' AND NOT st.out AND s.member_id = st.member"
    " AND s.channel = 'sms' AND s.status = 'pending'"
    " ORDER BY s.updated_at DESC, s.list_id DESC LIMIT 1 FOR KEY SHARE OF l),"
    " tl AS MATERIALIZED (SELECT id, name, double_optin, 'keyword' AS how"
    " FROM kl UNION ALL SELECT id, name, double_optin, 'confirm' FROM pl),"
    " cur AS MATERIALIZED (SELECT tl.id AS list, tl.name, tl.double_optin,"
    " tl.how, st.member, st.out, s.status AS was FROM tl CROSS JOIN st"
    " LEFT JOIN subscriptions s ON s.member_id = st.member"
    " AND s.list_id = tl.id AND s.channel = 'sms'),"
    " dec AS MATERIALIZED (SELECT *, CASE WHEN how = 'confirm'"
    " THEN 'confirm' WHEN was = 'active' AND NOT out THEN 'already'"
    " WHEN double_optin <> 0 AND was IS DISTINCT FROM 'active'"
    " THEN 'pending' ELSE 'join' END AS outcome FROM cur),"
    /* YES from an opted-out member, or a keyword: the opt-out lifted */
    " oi AS (DELETE FROM sms_optout WHERE member_id IN (SELECT member"
    " FROM st) AND ($9::text = 'yes' OR ($9::text = 'keyword'"
    " AND EXISTS (SELECT 1 FROM kl))) RETURNING member_id),"
    " sub AS (INSERT INTO subscriptions (member_id, list_id, channel,"
    " status, source, created_at, updated_at) SELECT member, list, 'sms',"
    " CASE WHEN outcome = 'pending' THEN 'pending' ELSE 'active' END,"
    " 'keyword', $8::bigint, $8::bigint FROM dec WHERE outcome <> 'already'"
    " ON CONFLICT (member_id, list_id, channel) DO UPDATE"
    " SET status = excluded.status, source = excluded.source,"
    " updated_at = excluded.updated_at"
    " WHERE subscriptions.status = 'left' OR (subscriptions.status ="
    " 'pending' AND excluded.status = 'active') RETURNING list_id),"
    /* anything else: the answer to the pending question, if any ... */
    " ga AS MATERIALIZED (SELECT member FROM st"
    " WHERE NOT ($9::text = 'yes' AND out)"
    " AND NOT EXISTS (SELECT 1 FROM tl)),"
    " pq AS MATERIALIZED (SELECT p.member_id, p.question"
    " FROM member_prompts p, ga WHERE p.member_id = ga.member"
    " AND p.list_id = $21::bigint AND p.question = $22::bigint"
    " AND p.attempts = $23::bigint AND p.asked_at = $24::bigint"
    " AND $25::text IN ('answer', 'clear')),"
    " stp AS MATERIALIZED (SELECT member_id, question, good,"
    " CASE WHEN $25::text = 'clear' THEN 'stale' WHEN good THEN $28::text"
    " ELSE $29::text END AS step FROM (SELECT pq.*, $25::text = 'answer'"
    " AND $27::text IS NOT NULL AND ($26::text IS DISTINCT FROM 'email'"
    " OR NOT EXISTS (SELECT 1 FROM members o WHERE o.email = $27::text"
    " AND o.id <> pq.member_id)) AS good FROM pq) a),"
    " mu AS (UPDATE members m SET first_name = CASE WHEN $26::text ="
    " 'first_name' THEN $27::text ELSE m.first_name END,"
    " last_name = CASE WHEN $26::text = 'last_name' THEN $27::text"
    " ELSE m.last_name END, zip = CASE WHEN $26::text = 'zip'"
    " THEN $27::text ELSE m.zip END, email = CASE WHEN $26::text = 'email'"
    " THEN $27::text ELSE m.email END, bouncing = CASE WHEN $26::text ="
    " 'email' THEN 0 ELSE m.bouncing END, email_failures = CASE"
    " WHEN $26::text = 'email' THEN 0 ELSE m.email_failures END,"
    " updated_at = $8::bigint FROM stp WHERE m.id = stp.member_id"
    " AND stp.good AND CASE $26::text WHEN 'first_name' THEN m.first_name"
    " WHEN 'last_name' THEN m.last_name WHEN 'zip' THEN m.zip"
    " ELSE m.email END IS DISTINCT FROM $27::text),"
    " pn AS (UPDATE member_prompts p SET question = p.question"
    " + CASE WHEN stp.step = 'next' THEN 1 ELSE 0 END,"
    " attempts = CASE WHEN stp.step = 'reask' THEN 1 ELSE 0 END,"
    " asked_at = $8::bigint FROM stp WHERE p.member_id = stp.member_id"
    " AND stp.step IN ('next', 'reask')),"
    " pc AS (DELETE FROM member_prompts p USING stp"
    " WHERE p.member_id = stp.member_id"
    " AND stp.step IN ('clear', 'stale')),"
    /* ... else the member's conversation, with what it answers */
    " cg AS MATERIALIZED (SELECT member FROM ga"
    " WHERE NOT EXISTS (SELECT 1 FROM stp WHERE good)),"
    " al AS MATERIALIZED (SELECT x.id, x.alert_id,"
    " x.updated_at >= $8::bigint - $14::bigint AS fresh"
    " FROM messages x, cg WHERE x.member_id = cg.member"
    " AND x.direction = 'out' AND x.alert_id IS NOT NULL"
    " AND x.status IN ('sent', 'delivered') ORDER BY x.id DESC LIMIT 1),"
    " lo AS MATERIALIZED (SELECT x.id FROM messages x, cg"
    " WHERE x.member_id = cg.member AND x.direction = 'out'"
    " AND x.status IN ('sent', 'delivered') ORDER BY x.id DESC LIMIT 1),"
    " att AS MATERIALIZED (SELECT (SELECT alert_id FROM al WHERE fresh)"
    " AS alert, coalesce((SELECT id FROM al WHERE fresh),"
    " (SELECT id FROM lo)) AS message),"
    " lc AS MATERIALIZED (SELECT c.id FROM conversations c, cg"
    " WHERE c.member_id = cg.member ORDER BY c.id DESC LIMIT 1),"
    " cb AS (UPDATE conversations c SET status = 'open',"
    " unread = c.unread + 1, last_message_at = $8::bigint,"
    " last_in_at = $8::bigint, sender = coalesce($1::text, c.sender),"
    " alert_id = coalesce((SELECT alert FROM att), c.alert_id),"
    " reply_to = coalesce((SELECT message FROM att), c.reply_to),"
    " updated_at = $8::bigint FROM lc WHERE c.id = lc.id RETURNING c.id),"
    " cn AS (INSERT INTO conversations (member_id, status, unread,"
    " last_message_at, created_at, last_in_at, sender, alert_id, reply_to,"
    " updated_at) SELECT member, 'open', 1, $8::bigint, $8::bigint,"
    " $8::bigint, $1::text, (SELECT alert FROM att),"
    " (SELECT message FROM att), $8::bigint FROM cg"
    " WHERE NOT EXISTS (SELECT 1 FROM lc) RETURNING id),"
    " conv AS MATERIALIZED (SELECT id FROM cb UNION ALL SELECT id FROM cn),"
    " ins AS (INSERT INTO messages (direction, channel, member_id, sender,"
    " to_addr, from_addr, body, status, next_attempt_at, provider,"
    " provider_message_id, segments, created_at, updated_at,"
    " conversation_id, reply_to)"
    " VALUES ('in', 'sms', coalesce((SELECT member FROM st),"
    " (SELECT id FROM members WHERE phone = $3::text)), $1::text, $2::text,"
    " $3::text, $4::text, 'received', $8::bigint, $5::text, $6::text,"
    " $7::bigint, $8::bigint, $8::bigint, (SELECT id FROM conv),"
    " CASE WHEN EXISTS (SELECT 1 FROM conv) THEN (SELECT message FROM att)"
    " END) ON CONFLICT DO NOTHING RETURNING id),"
    " ev AS (INSERT INTO message_events (message_id, status, created_at)"
    " SELECT id, 'received', $8::bigint FROM ins),"
    " ce AS (INSERT INTO consent_events (member_id, channel, action,"
    " source, list_id, message_id, detail, created_at)"
    " SELECT member_id, 'sms', 'opt_in', 'keyword', NULL::bigint,"
    " (SELECT id FROM ins), CASE WHEN $9::text = 'keyword' THEN $12::text"
    " END, $8::bigint FROM oi UNION ALL"
    " SELECT d.member, 'sms', CASE WHEN d.was = 'pending' THEN 'confirm'"
    " ELSE 'opt_in' END, 'keyword', d.list, (SELECT id FROM ins),"
    " CASE WHEN d.how = 'confirm' THEN 'YES' ELSE $12::text END, $8::bigint"
    " FROM dec d WHERE d.list IN (SELECT list_id FROM sub)),"
    /* the reply: one of the candidates, by what was done */
    " rsel AS MATERIALIZED (SELECT CASE WHEN $9::text = 'yes'"
    " AND EXISTS (SELECT 1 FROM oi) THEN 'start'"
    " ELSE (SELECT CASE outcome WHEN 'already' THEN 'already'"
    " WHEN 'pending' THEN 'confirm' ELSE 'welcome' END FROM dec) END"
    " AS kind, (SELECT name FROM dec) AS list, 1 AS ord"
    /* after a welcome its list's first question; after an answer */
    " UNION ALL SELECT 'first', name, 2 FROM dec"
    " WHERE outcome IN ('join', 'confirm')"
    " UNION ALL SELECT step, NULL, 3 FROM stp WHERE step IN ('next',"
    " 'reask')),"
    " pick AS MATERIALIZED (SELECT DISTINCT ON (s.ord) r.body, r.enc,"
    " r.segs, s.ord FROM unnest($15::text[], $16::text[], $17::text[],"
    " $18::text[], $19::bigint[]) AS r(kind, list, body, enc, segs),"
    " rsel s WHERE r.kind = s.kind AND (r.kind NOT IN ('welcome', 'first')"
    " OR r.list = s.list) ORDER BY s.ord),"
    " rp AS (INSERT INTO messages (direction, channel, member_id, sender,"
    " to_addr, from_addr, body, status, priority, next_attempt_at,"
    " created_at, updated_at, encoding, segments, optout_exempt)"
    " SELECT 'out', 'sms', st.member, $1::text, $10::text, $13::text,"
    " pick.body, 'queued', $20::bigint, $8::bigint, $8::bigint, $8::bigint,"
    " pick.enc, pick.segs, 0 FROM st, pick"
    " WHERE EXISTS (SELECT 1 FROM ins) ORDER BY pick.ord RETURNING id),"
    " rh AS (INSERT INTO message_events (message_id, status, created_at)"
    " SELECT id, 'queued', $8::bigint FROM rp),"
    /* the first question asked: it is the member's pending one */
    " fq AS (INSERT INTO member_prompts (member_id, list_id, question,"
    " attempts, asked_at) SELECT d.member, d.list, 0, 0, $8::bigint"
    " FROM dec d WHERE d.outcome IN ('join', 'confirm')"
    " AND EXISTS (SELECT 1 FROM pick WHERE ord = 2)"
    " AND EXISTS (SELECT 1 FROM ins) ON CONFLICT (member_id) DO UPDATE"
    " SET list_id = excluded.list_id, question = 0, attempts = 0,"
    " asked_at = excluded.asked_at)"
    " SELECT coalesce((SELECT id FROM ins), (SELECT id FROM seen), 0),"
    " EXISTS (SELECT 1 FROM ins), coalesce((SELECT member FROM st), 0),"
    " EXISTS (SELECT 1 FROM oi), coalesce((SELECT min(id) FROM rp), 0),"
    " coalesce(CASE WHEN $9::text = 'yes' AND EXISTS (SELECT 1 FROM oi)"
    " THEN 'optin' END, (SELECT outcome FROM dec),"
    " (SELECT CASE WHEN good THEN 'answer' WHEN step = 'reask'"
    " THEN 'reask' ELSE 'dropped' END FROM stp WHERE step <> 'stale'),"
    " CASE WHEN EXISTS (SELECT 1 FROM conv) THEN 'conversation' END,"
    " 'none'), (SELECT name FROM dec), coalesce((SELECT id FROM conv), 0)";

/* Column order of queue.c's queue_sql_json_msg. */
static const char qpg_sql_json_msg[] =
    "SELECT id, channel, to_addr, from_addr, subject, body, status,"
    " priority, attempts, provider, provider_message_id, error_code,"
    " error_text, created_at, updated_at, encoding, segments, not_before,"
    " expires_at, alert_id FROM messages WHERE id = $1::bigint";
static const char qpg_sql_json_events[] =
    "SELECT status, created_at, code, text FROM message_events"
    " WHERE message_id = $1::bigint ORDER BY id";

/* Notes an error answer: the group fails, 'done' will say so. */
static bool
qpg_answer_failed(struct qpg_op *op, const struct pg_answer *a)
{
	if (a->error == NULL)
		return false;
	op->failed = true;
	snprintf(op->error, sizeof(op->error), "%s", a->error);
	return true;
}

/* True when a is the one row a statement answers ('what': for errors). */
static bool
qpg_one_row(struct qpg_op *op, const struct pg_answer *a, const char *what)
{
	if (qpg_answer_failed(op, a))
		return false;
	if (PQntuples(a->res) == 1)
		return true;
	op->failed = true;
	snprintf(op->error, sizeof(op->error), "%s: no answer row", what);
	return false;
}

/*
 * Sends q in the group and registers op's commit callback: 0, or -1
 * with err (op is freed, nothing was sent).
 */
static int
qpg_group(struct qpg_op *op, struct pg_query *q, store_commit_fn *on_commit,
    char *err, size_t errlen)
{
	q->arg = op;
	if (store_pg_group_send(op->st, q, err, errlen) == -1) {
		qpg_op_free(op);
		return -1;
	}
	store_on_commit(op->st, on_commit, op);
	return 0;
}

/* ---- enqueue ---- */

static void
qpg_enqueue_answer(void *arg, const struct pg_answer *a)
{
	struct qpg_op *op = arg;

	if (qpg_answer_failed(op, a))
		return;
	if (PQntuples(a->res) == 1)
		op->d.id = pgr_get_i64(a->res, 0, 0);
	else
		op->d.dup = true;
}

static void
qpg_dup_answer(void *arg, const struct pg_answer *a)
{
	struct qpg_op *op = arg;

	if (qpg_answer_failed(op, a)) {
		qpg_finish(op, false);
		return;
	}
	if (PQntuples(a->res) != 1) {
		/* the key's message was deleted: nothing to point at */
		snprintf(op->error, sizeof(op->error),
		    "idempotency key conflict without a row");
		op->failed = true;
		qpg_finish(op, false);
		return;
	}
	op->d.id = pgr_get_i64(a->res, 0, 0);
	op->d.status = msg_status_parse(PQgetvalue(a->res, 0, 1));
	qpg_finish(op, true);
}

/* The group committed: a duplicate's first id is visible now. */
static void
qpg_enqueue_commit(void *arg, bool ok)
{
	struct qpg_op *op = arg;
	const char *values[1];
	char err[256];

	if (!ok || op->failed || !op->d.dup) {
		qpg_finish(op, ok);
		return;
	}
	if (op->key == NULL) {
		snprintf(op->error, sizeof(op->error),
		    "insert message: no row inserted");
		op->failed = true;
		qpg_finish(op, false);
		return;
	}
	values[0] = op->key;
	if (pg_send(store_pg_conn(op->st),
		&(struct pg_query){.sql = qpg_sql_by_key,
		    .nparams = 1,
		    .values = values,
		    .flags = PG_IDEMPOTENT,
		    .done = qpg_dup_answer,
		    .arg = op},
		err, sizeof(err)) == -1) {
		snprintf(op->error, sizeof(op->error), "%s", err);
		op->failed = true;
		qpg_finish(op, false);
	}
}

static int
qpg_enqueue(const struct queue_new *m, int64_t now, struct qpg_op *op,
    char *err, size_t errlen)
{
	char b[10][24];
	const char *v[20];

	v[0] = channel_to_text(m->channel);
	v[1] = pgr_i64(b[0], m->member_id, true);
	v[2] = m->channel == CHANNEL_SMS ? m->sender : NULL;
	v[3] = m->to;
	v[4] = m->from;
	v[5] = m->subject;
	v[6] = m->body;
	v[7] = m->html;
	v[8] = pgr_i64(b[1], m->priority, false);
	v[9] = pgr_i64(b[2], m->not_before > now ? m->not_before : now, false);
	v[10] = pgr_i64(b[3], m->alert_id, true);
	v[11] = pgr_i64(b[4], m->conversation_id, true);
	v[12] = m->idempotency_key;
	v[13] = pgr_i64(b[5], m->not_before, true);
	v[14] = pgr_i64(b[6], m->expires_at, true);
	v[15] = pgr_i64(b[7], now, false);
	v[16] = m->encoding;
	v[17] = pgr_i64(b[8], m->segments, true);
	v[18] = m->optout_exempt ? "1" : "0";
	v[19] = pgr_i64(b[9], m->staff_id, true);
	if (m->idempotency_key != NULL)
		op->key = xstrdup(m->idempotency_key);
	return qpg_group(op,
	    &(struct pg_query){.sql = qpg_sql_enqueue,
		.nparams = 20,
		.values = v,
		.done = qpg_enqueue_answer},
	    qpg_enqueue_commit, err, errlen);
}

/* ---- delivery reports ---- */

static void
qpg_status_answer(void *arg, const struct pg_answer *a)
{
	struct qpg_op *op = arg;

	if (!qpg_one_row(op, a, "status report"))
		return;
	op->d.id = pgr_get_i64(a->res, 0, 0);
	op->d.su = (int)pgr_get_i64(a->res, 0, 1);
}

static void
qpg_commit_finish(void *arg, bool ok)
{
	qpg_finish(arg, ok);
}

static int
qpg_status_update(const struct queue_webhook *wh, const struct status_update *u,
    struct qpg_op *op, char *err, size_t errlen)
{
	char id[24], code[24], seq[24], now[24];
	const char *v[8];

	v[0] = wh->provider;
	v[1] = pgr_i64(id, u->msg_id > 0 ? u->msg_id : 0, true);
	v[2] = u->provider_id[0] != '\0' ? u->provider_id : NULL;
	v[3] = msg_status_to_text(u->status);
	v[4] = pgr_i64(code, u->code, true);
	v[5] = u->text[0] != '\0' ? u->text : NULL;
	v[6] = pgr_i64(seq, u->sequence > 0 ? u->sequence : 0, true);
	v[7] = pgr_i64(now, wh->now, false);
	return qpg_group(op,
	    &(struct pg_query){.sql = qpg_sql_status,
		.nparams = 8,
		.values = v,
		.done = qpg_status_answer},
	    qpg_commit_finish, err, errlen);
}

/* ---- received texts ---- */

static const char *const qpg_actions[] = {
    [QUEUE_IN_NONE] = "none",
    [QUEUE_IN_OPTOUT] = "optout",
    [QUEUE_IN_OPTIN] = "optin",
    [QUEUE_IN_YES] = "yes",
    [QUEUE_IN_HELP] = "help",
};

static void
qpg_inbound_answer(void *arg, const struct pg_answer *a)
{
	struct qpg_op *op = arg;

	if (!qpg_one_row(op, a, "inbound message"))
		return;
	op->d.id = pgr_get_i64(a->res, 0, 0);
	op->d.dup = !pgr_get_bool(a->res, 0, 1);
	op->d.member = pgr_get_i64(a->res, 0, 2);
	op->d.changed = pgr_get_bool(a->res, 0, 3);
	op->d.reply_id = pgr_get_i64(a->res, 0, 4);
}

static int
qpg_inbound(const struct queue_webhook *wh, const struct in_msg *m,
    const struct queue_in_route *r, struct qpg_op *op, char *err, size_t errlen)
{
	const struct queue_new *rp = r->reply;
	char seg[24], now[24], rseg[24], prio[24];
	const char *v[16];

	v[0] = wh->sender;
	v[1] = m->to;
	v[2] = m->from;
	v[3] = m->body != NULL ? m->body : "";
	v[4] = wh->provider;
	v[5] = m->provider_id[0] != '\0' ? m->provider_id : NULL;
	v[6] = pgr_i64(seg, m->segments, true);
	v[7] = pgr_i64(now, wh->now, false);
	v[8] = qpg_actions[r->phone != NULL ? r->action : QUEUE_IN_NONE];
	v[9] = r->phone;
	v[10] = rp != NULL ? rp->body : NULL;
	v[11] = rp != NULL ? rp->from : NULL;
	v[12] = rp != NULL ? rp->encoding : NULL;
	v[13] = pgr_i64(rseg, rp != NULL ? rp->segments : 0, true);
	v[14] =
	    pgr_i64(prio, rp != NULL ? rp->priority : MSG_PRIO_REPLY, false);
	v[15] = rp != NULL && rp->optout_exempt ? "1" : "0";
	return qpg_group(op,
	    &(struct pg_query){.sql = qpg_sql_inbound,
		.nparams = 16,
		.values = v,
		.done = qpg_inbound_answer},
	    qpg_commit_finish, err, errlen);
}

/* ---- routed texts: YES, keywords, conversations ---- */

static const char *const qpg_route_actions[] = {
    [QUEUE_IN_YES] = "yes",
    [QUEUE_IN_KEYWORD] = "keyword",
    [QUEUE_IN_TEXT] = "text",
};

/*
 * One PostgreSQL array literal of n texts (NULL elements allowed): "{"
 * "a","b\"c",NULL}". Malloc'd.
 */
static char *
qpg_text_array(const char *const *v, size_t n)
{
	size_t i, len = 3;
	const char *p;
	char *out, *o;

	for (i = 0; i < n; i++)
		len += v[i] == NULL ? 5 : 2 * strlen(v[i]) + 3;
	o = out = xmalloc(len);
	*o++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		if (v[i] == NULL) {
			memcpy(o, "NULL", 4);
			o += 4;
			continue;
		}
		*o++ = '"';
		for (p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

/* The reply candidates as five array literals into op->arrays. */
static void
qpg_route_arrays(struct qpg_op *op, const struct queue_in_route *r)
{
	size_t n = r->nreplies, i;
	const char **v = xcalloc(n + 1, sizeof(*v));
	char *segs, *o;
	int f;

	for (f = 0; f < 4; f++) {
		for (i = 0; i < n; i++) {
			const struct queue_in_reply *x = &r->replies[i];

			v[i] = f == 0 ? x->kind
			    : f == 1  ? x->list
			    : f == 2  ? x->body
				      : x->encoding;
		}
		op->arrays[f] = qpg_text_array(v, n);
	}
	free(v);
	o = segs = xmalloc(n * 24 + 3);
	*o++ = '{';
	for (i = 0; i < n; i++) {
		if (r->replies[i].segments > 0)
			o += sprintf(o, "%s%d", i > 0 ? "," : "",
			    r->replies[i].segments);
		else
			o += sprintf(o, "%sNULL", i > 0 ? "," : "");
	}
	*o++ = '}';
	*o = '\0';
	op->arrays[4] = segs;
}

static void
qpg_route_answer(void *arg, const struct pg_answer *a)
{
	struct qpg_op *op = arg;

	if (!qpg_one_row(op, a, "inbound message"))
		return;
	op->d.id = pgr_get_i64(a->res, 0, 0);
	op->d.dup = !pgr_get_bool(a->res, 0, 1);
	op->d.member = pgr_get_i64(a->res, 0, 2);
	op->d.changed = pgr_get_bool(a->res, 0, 3);
	op->d.reply_id = pgr_get_i64(a->res, 0, 4);
	snprintf(op->routed, sizeof(op->routed), "%s",
	    PQgetisnull(a->res, 0, 5) ? "none" : PQgetvalue(a->res, 0, 5));
	op->d.routed = op->routed;
	if (!PQgetisnull(a->res, 0, 6)) {
		snprintf(op->list, sizeof(op->list), "%s",
		    PQgetvalue(a->res, 0, 6));
		op->d.list = op->list;
	}
	op->d.conversation = pgr_get_i64(a->res, 0, 7);
}

/*
 * What a routed text's statement is prepared with, read outside the
 * group: $1 the member's E.164, $2 the action, $3 a keyword's list.
 * Answers (the pending question's list id, its list's name and
 * questions, its index, attempts, time: NULL when none; the name and
 * questions of the list the text may join: the keyword's, or the
 * pending one a YES confirms, as qpg_sql_route picks it).
 */
static const char qpg_sql_prompt[] =
    "WITH mem AS MATERIALIZED (SELECT id FROM members"
    " WHERE phone = $1::text),"
    " pr AS MATERIALIZED (SELECT p.list_id, l.name, l.questions, p.question,"
    " p.attempts, p.asked_at FROM member_prompts p JOIN mem"
    " ON p.member_id = mem.id LEFT JOIN lists l ON l.id = p.list_id),"
    " jn AS MATERIALIZED (SELECT l.name, l.questions FROM lists l"
    " WHERE $2::text = 'keyword' AND l.name = $3::text"
    " UNION ALL SELECT * FROM (SELECT l.name, l.questions FROM mem,"
    " subscriptions s JOIN lists l ON l.id = s.list_id"
    " WHERE $2::text = 'yes' AND s.member_id = mem.id"
    " AND s.channel = 'sms' AND s.status = 'pending'"
    " ORDER BY s.updated_at DESC, s.list_id DESC LIMIT 1) y)"
    " SELECT pr.list_id, pr.name, pr.questions, pr.question, pr.attempts,"
    " pr.asked_at, (SELECT name FROM jn LIMIT 1),"
    " (SELECT questions FROM jn LIMIT 1) FROM (SELECT 1) one"
    " LEFT JOIN pr ON true";

/* The members' writers' advisory lock (store_members_pg.c). */
static const char qpg_sql_members_lock[] =
    "SELECT pg_advisory_xact_lock(1868, 7)";

/* The member's lock, then the routing statement (see qpg_sql_route). */
static int
qpg_route(const struct queue_webhook *wh, const struct in_msg *m,
    const struct queue_in_route *r, struct qpg_op *op, char *err, size_t errlen)
{
	char seg[24], now[24], win[24], prio[24], pl[24], pi[24], pa[24],
	    pt[24];
	const struct queue_in_answer *an = &r->answer;
	const char *v[29];

	v[0] = wh->sender;
	v[1] = m->to;
	v[2] = m->from;
	v[3] = m->body != NULL ? m->body : "";
	v[4] = wh->provider;
	v[5] = m->provider_id[0] != '\0' ? m->provider_id : NULL;
	v[6] = pgr_i64(seg, m->segments, true);
	v[7] = pgr_i64(now, wh->now, false);
	v[8] = qpg_route_actions[r->action];
	v[9] = r->phone;
	v[10] = r->list;
	v[11] = r->keyword;
	v[12] = r->reply_from;
	v[13] = pgr_i64(win, r->window_ms, false);
	qpg_route_arrays(op, r);
	v[14] = op->arrays[0];
	v[15] = op->arrays[1];
	v[16] = op->arrays[2];
	v[17] = op->arrays[3];
	v[18] = op->arrays[4];
	v[19] = pgr_i64(prio, MSG_PRIO_REPLY, false);
	v[20] = an->list_id > 0 ? pgr_i64(pl, an->list_id, false) : NULL;
	v[21] = pgr_i64(pi, an->index, false);
	v[22] = pgr_i64(pa, an->attempts, false);
	v[23] = pgr_i64(pt, an->asked_at, false);
	v[24] = an->list_id <= 0 ? NULL : an->clear ? "clear" : "answer";
	v[25] = an->field;
	v[26] = an->value;
	v[27] = an->good;
	v[28] = an->bad;
	/* an email answer: after the members' writers, who may give it to
	 * another member (then it is a bad answer, not a failed group) */
	if (an->list_id > 0 && !an->clear && an->value != NULL &&
	    an->field != NULL && strcmp(an->field, "email") == 0 &&
	    store_pg_group_send(op->st,
		&(struct pg_query){.sql = qpg_sql_members_lock}, err,
		errlen) == -1) {
		qpg_op_free(op);
		return -1;
	}
	if (store_pg_group_send(op->st,
		&(struct pg_query){.sql = qpg_sql_member_lock,
		    .nparams = 2,
		    .values = (const char *[]){r->phone, now}},
		err, errlen) == -1) {
		qpg_op_free(op);
		return -1;
	}
	return qpg_group(op,
	    &(struct pg_query){.sql = qpg_sql_route,
		.nparams = 29,
		.values = v,
		.done = qpg_route_answer},
	    qpg_commit_finish, err, errlen);
}

/*
 * A routed text waiting for its prompt's read (qpg_sql_prompt): the
 * webhook and the text copied (the caller's are borrowed for the call
 * only), the route the caller's (its plan lives until 'done').
 */
struct qpg_prep {
	struct qpg_op *op;
	struct queue_webhook wh;
	struct in_msg m; /* m.body owned */
	char *sender;	 /* wh.sender, owned */
	char *provider;	 /* wh.provider, owned */
	const struct queue_in_route *r;
};

static void
qpg_prep_free(struct qpg_prep *pp)
{
	free(pp->m.body);
	free(pp->sender);
	free(pp->provider);
	free(pp);
}

/* The prompt read: prepare, then the text's statements in the group. */
static void
qpg_prompt_answer(void *arg, const struct pg_answer *a)
{
	struct qpg_prep *pp = arg;
	struct qpg_op *op = pp->op;
	const PGresult *res = a->res;
	struct queue_in_prompt pr = {.body =
					 pp->m.body != NULL ? pp->m.body : "",
	    .now = pp->wh.now};
	queue_done_fn *done;
	void *darg;
	char err[256];

	if (a->error != NULL || PQntuples(res) != 1) {
		snprintf(op->error, sizeof(op->error), "%s",
		    a->error != NULL ? a->error : "prompt: no answer row");
		op->failed = true;
		qpg_prep_free(pp);
		qpg_finish(op, false);
		return;
	}
	pr.list_id = pgr_get_i64(res, 0, 0);
	pr.list = pgr_get_text(res, 0, 1);
	pr.questions = pgr_get_text(res, 0, 2);
	pr.index = (unsigned)pgr_get_i64(res, 0, 3);
	pr.attempts = (unsigned)pgr_get_i64(res, 0, 4);
	pr.asked_at = pgr_get_i64(res, 0, 5);
	pr.join = pgr_get_text(res, 0, 6);
	pr.join_questions = pgr_get_text(res, 0, 7);
	pp->r->prepare(pp->r->prepare_arg, &pr);
	done = op->done;
	darg = op->arg;
	if (qpg_route(&pp->wh, &pp->m, pp->r, op, err, sizeof(err)) == -1)
		/* nothing sent, op freed: 'done' hears it from here */
		done(darg,
		    &(struct queue_done){.ok = false,
			.error = err,
			.status = -1});
	qpg_prep_free(pp);
}

/*
 * A routed text whose route asks to be prepared: the prompt's read
 * outside the group first (qpg_prompt_answer() goes on), else at once.
 */
static int
qpg_route_prepared(const struct queue_webhook *wh, const struct in_msg *m,
    const struct queue_in_route *r, struct qpg_op *op, char *err, size_t errlen)
{
	struct qpg_prep *pp;
	const char *v[3];

	if (r->prepare == NULL)
		return qpg_route(wh, m, r, op, err, errlen);
	pp = xcalloc(1, sizeof(*pp));
	pp->op = op;
	pp->wh = *wh;
	pp->wh.sender = pp->sender =
	    wh->sender != NULL ? xstrdup(wh->sender) : NULL;
	pp->wh.provider = pp->provider =
	    wh->provider != NULL ? xstrdup(wh->provider) : NULL;
	pp->m = *m;
	pp->m.body = m->body != NULL ? xstrdup(m->body) : NULL;
	pp->r = r;
	v[0] = r->phone;
	v[1] = qpg_route_actions[r->action];
	v[2] = r->list;
	if (pg_send(store_pg_conn(op->st),
		&(struct pg_query){.sql = qpg_sql_prompt,
		    .nparams = 3,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = qpg_prompt_answer,
		    .arg = pp},
		err, errlen) == -1) {
		qpg_prep_free(pp);
		qpg_op_free(op);
		return -1;
	}
	return 0;
}

/* ---- a message as JSON ---- */

/* The message row as queue_message_json() shows it, in its order. */
static json_t *
qpg_json_row(const PGresult *res)
{
	static const char *const head[] = {"channel", "to", "from", "subject",
	    "body", "status"};
	json_t *o = json_object(), *e;
	int i;

	json_object_set_new(o, "id", pgr_json_int(res, 0, 0));
	for (i = 0; i < 6; i++)
		json_object_set_new(o, head[i], pgr_json_text(res, 0, i + 1));
	json_object_set_new(o, "priority", pgr_json_int(res, 0, 7));
	json_object_set_new(o, "attempts", pgr_json_int(res, 0, 8));
	json_object_set_new(o, "provider", pgr_json_text(res, 0, 9));
	json_object_set_new(o, "provider_message_id",
	    pgr_json_text(res, 0, 10));
	if (!PQgetisnull(res, 0, 11) || !PQgetisnull(res, 0, 12)) {
		e = json_object();
		json_object_set_new(e, "code", pgr_json_int(res, 0, 11));
		json_object_set_new(e, "text", pgr_json_text(res, 0, 12));
		json_object_set_new(o, "error", e);
	} else
		json_object_set_new(o, "error", json_null());
	json_object_set_new(o, "created_at", pgr_json_time(res, 0, 13));
	json_object_set_new(o, "updated_at", pgr_json_time(res, 0, 14));
	json_object_set_new(o, "encoding", pgr_json_text(res, 0, 15));
	json_object_set_new(o, "segments", pgr_json_int(res, 0, 16));
	json_object_set_new(o, "not_before", pgr_json_time(res, 0, 17));
	json_object_set_new(o, "expires_at", pgr_json_time(res, 0, 18));
	json_object_set_new(o, "alert_id", pgr_json_int(res, 0, 19));
	return o;
}

/* Both answers are in (or one failed): the caller hears once. */
static void
qpg_json_settle(struct qpg_op *op)
{
	if (--op->answers > 0)
		return;
	if (op->failed) {
		json_decref(op->o);
		op->jfn(op->arg, NULL, op->error);
	} else
		op->jfn(op->arg, op->o, NULL);
	qpg_op_free(op);
}

static void
qpg_json_msg_answer(void *arg, const struct pg_answer *a)
{
	struct qpg_op *op = arg;

	if (!qpg_answer_failed(op, a) && PQntuples(a->res) == 1)
		op->o = qpg_json_row(a->res);
	qpg_json_settle(op);
}

static void
qpg_json_events_answer(void *arg, const struct pg_answer *a)
{
	struct qpg_op *op = arg;
	json_t *h, *e;
	int i;

	if (!qpg_answer_failed(op, a) && op->o != NULL) {
		h = json_array();
		for (i = 0; i < PQntuples(a->res); i++) {
			e = json_object();
			json_object_set_new(e, "status",
			    pgr_json_text(a->res, i, 0));
			json_object_set_new(e, "at",
			    pgr_json_time(a->res, i, 1));
			json_object_set_new(e, "code",
			    pgr_json_int(a->res, i, 2));
			json_object_set_new(e, "text",
			    pgr_json_text(a->res, i, 3));
			json_array_append_new(h, e);
		}
		json_object_set_new(op->o, "history", h);
	}
	qpg_json_settle(op);
}

static int
qpg_message_json(struct store *st, int64_t id, struct qpg_op *op, char *err,
    size_t errlen)
{
	struct pg *pg = store_pg_conn(st);
	char ids[24];
	const char *v[1] = {pgr_i64(ids, id, false)};

	op->answers = 2;
	if (pg_send(pg,
		&(struct pg_query){.sql = qpg_sql_json_msg,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = qpg_json_msg_answer,
		    .arg = op},
		err, errlen) == -1) {
		qpg_op_free(op);
		return -1;
	}
	if (pg_send(pg,
		&(struct pg_query){.sql = qpg_sql_json_events,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = qpg_json_events_answer,
		    .arg = op},
		err, errlen) == -1) {
		/* the first answer settles it alone */
		op->answers = 1;
		op->failed = true;
		snprintf(op->error, sizeof(op->error), "%s", err);
	}
	return 0;
}

#endif /* HAVE_LIBPQ */

/* ---- the public operations: one branch per backend ------------------- */

#ifndef HAVE_LIBPQ
/* The PostgreSQL half is missing: this build has no libpq. */
static int
qpg_no_pg(struct qpg_op *op, char *err, size_t errlen)
{
	qpg_op_free(op);
	return store_no_libpq(err, errlen);
}
#endif

int
queue_enqueue_durable(struct store *st, const struct queue_new *m, int64_t now,
    queue_done_fn *done, void *arg, char *err, size_t errlen)
{
	struct queue_stored qs = {0};
	struct qpg_op *op;

	if (store_backend(st) == STORE_SQLITE) {
		if (queue_enqueue(st, m, now, &qs, err, errlen) == -1)
			return -1;
		op = qpg_op_new(st, done, arg);
		op->d.id = qs.id;
		op->d.dup = qs.dup;
		if (qs.dup)
			op->key = xstrdup(m->idempotency_key);
		store_on_commit(st, qpg_sqlite_commit, op);
		return 0;
	}
	if (queue_check_new(m, err, errlen) == -1)
		return -1;
	op = qpg_op_new(st, done, arg);
#ifdef HAVE_LIBPQ
	return qpg_enqueue(m, now, op, err, errlen);
#else
	(void)now;
	return qpg_no_pg(op, err, errlen);
#endif
}

int
queue_status_update_durable(struct store *st, const struct queue_webhook *wh,
    const struct status_update *u, queue_done_fn *done, void *arg, char *err,
    size_t errlen)
{
	struct qpg_op *op;
	int64_t id = 0;
	int rc;

	if (store_backend(st) == STORE_SQLITE) {
		if ((rc = queue_status_update(st, wh, u, &id, err, errlen)) ==
		    -1)
			return -1;
		op = qpg_op_new(st, done, arg);
		op->d.id = id;
		op->d.su = rc;
		store_on_commit(st, qpg_sqlite_commit, op);
		return 0;
	}
	if (queue_check_report(wh->provider, u, err, errlen) == -1)
		return -1;
	op = qpg_op_new(st, done, arg);
#ifdef HAVE_LIBPQ
	return qpg_status_update(wh, u, op, err, errlen);
#else
	return qpg_no_pg(op, err, errlen);
#endif
}

int
queue_inbound_durable(struct store *st, const struct queue_webhook *wh,
    const struct in_msg *m, const struct queue_in_route *r, queue_done_fn *done,
    void *arg, char *err, size_t errlen)
{
	struct qpg_op *op;

	if (store_backend(st) == STORE_SQLITE) {
		snprintf(err, errlen,
		    "queue_inbound_durable: PostgreSQL only (SQLite: "
		    "queue_inbound_store and inbound_route)");
		return -1;
	}
	if (queue_check_inbound(wh->sender, wh->provider, m, err, errlen) == -1)
		return -1;
	op = qpg_op_new(st, done, arg);
#ifdef HAVE_LIBPQ
	if (r->phone != NULL &&
	    (r->action == QUEUE_IN_YES || r->action == QUEUE_IN_KEYWORD ||
		r->action == QUEUE_IN_TEXT))
		return qpg_route_prepared(wh, m, r, op, err, errlen);
	return qpg_inbound(wh, m, r, op, err, errlen);
#else
	(void)r;
	return qpg_no_pg(op, err, errlen);
#endif
}

int
queue_message_json_async(struct store *st, int64_t id, queue_json_fn *fn,
    void *arg, char *err, size_t errlen)
{
	struct qpg_op *op;
	char e[256];
	json_t *o;

	if (store_backend(st) == STORE_SQLITE) {
		e[0] = '\0';
		o = queue_message_json(st, id, e, sizeof(e));
		fn(arg, o, o == NULL && e[0] != '\0' ? e : NULL);
		return 0;
	}
	op = qpg_op_new(st, NULL, arg);
	op->jfn = fn;
#ifdef HAVE_LIBPQ
	return qpg_message_json(st, id, op, err, errlen);
#else
	(void)id;
	return qpg_no_pg(op, err, errlen);
#endif
}
