/*
 * pg_queue.c - the outbound queue shared by several nodes on one
 * PostgreSQL database (issue 13); the contract is pg_queue.h.
 *
 * DESIGN
 *
 * Nodes. Each daemon is a node with a name (unique among live processes,
 * e.g. the host name) and a row in 'nodes' (migration 011), created on
 * first start and reused on every later one: the same name gets the same
 * id, which is how a restarted node finds its previous life's claims.
 * pgq_start() also takes a session advisory lock on the id; a second live
 * process under the same name is refused instead of stealing the first
 * one's claims (the lock file plays this part on SQLite). The lock goes
 * with the session: a node killed or cut off loses it at once. (After a
 * reconnection of its pg, the owner must call pgq_start() again to hold
 * it again.) heartbeat_at, renewed by pgq_heartbeat(), tells which nodes
 * are live for the routes' fair share. All lease and history times come
 * from the database clock (clock_timestamp(), in milliseconds like every
 * time in the schema), so the nodes' clocks never have to agree.
 *
 * Claims. One statement per claim:
 *   UPDATE messages SET status = 'sending', lease_owner = me,
 *          lease_until = now + lease
 *   WHERE id IN (SELECT id ... status = 'queued' AND channel, sender,
 *                due ... ORDER BY priority DESC, next_attempt_at
 *                LIMIT n FOR UPDATE SKIP LOCKED) RETURNING ...
 * with the history rows inserted by a data-modifying CTE of the same
 * statement. The inner SELECT is a MATERIALIZED CTE joined to the
 * UPDATE, not an "id IN (subquery)": the planner may rescan such a
 * subquery, and with SKIP LOCKED and a volatile clock each rescan can
 * pick other rows, so one claim took more than its LIMIT (seen in
 * check_pg_queue.c: 20 claimed for 10 asked). SKIP LOCKED lets every node claim
 * the same route side by side without waiting on each other's rows; a row
 * another node claimed and committed meanwhile is re-checked (status no longer
 * 'queued') and dropped, so a message is claimed by one node at a time. The
 * inner query walks messages_due in order. The statement commits on its own
 * (synchronous_commit on) before its answer arrives, so the answer's
 * messages may go to an adapter at once, as on SQLite after the group's
 * fsync.
 *
 * Results. Every result statement carries "AND status = 'sending' AND
 * lease_owner = me": a node whose lease expired and whose message was
 * swept (and maybe claimed by another node) records nothing; the other
 * node's result stands. Accepted sends are recorded in one statement per
 * batch (UPDATE ... FROM unnest(arrays)), again with their history rows
 * in the same statement. The column lists are queue.c's.
 *
 * Recovery. On SQLite the lock file proves nobody else holds 'sending'
 * messages, so all go back at start. Here a node returns at start only
 * its own (lease_owner = its id: its previous life's, safe because the
 * advisory lock proves that life is over), and every node sweeps
 * messages whose lease ended (lease_until < now, SKIP LOCKED, a bounded
 * number per call) back to 'queued'. The lease must be longer than an
 * adapter's timeout plus a commit; a claim's answer carries a deadline
 * (this process's monotonic clock, taken before the statement was sent,
 * so it ends before the database's lease) after which the node hands
 * nothing more of that claim to an adapter.
 *
 * The duplicate window is queue.md's: a message is sent twice only when
 * a node handed it to a provider and died (or lost its lease) before
 * its 'sent' committed; then another node sends it again after the
 * sweep. So duplicates are bounded by the messages in flight on the node
 * that died, and a message never handed out is never sent twice.
 *
 * Route leases: a sender's rate across nodes. Each sender route
 * ("sms:NAME", "email") is held by one node at a time through a row of
 * route_leases (route, owner, lease_until, epoch); the holder paces the
 * route with the in-memory token bucket of ratelimit.c, as one node does
 * today. pgq_route_acquire() is one INSERT ... ON CONFLICT DO UPDATE
 * ... WHERE: the row lock serializes concurrent attempts, and the WHERE
 * lets through only a renewal by the holder (same epoch) or a take-over
 * of a free, released or expired lease (epoch + 1): never two holders at
 * once. A node renews about every second (lease 5 s); its own view of
 * the lease (pgq_route_held()) ends a fifth of the lease before the
 * database's expiry, counted from before the statement was sent, so a
 * node that cannot renew stops handing the route out before another node
 * can take it. The new holder starts with an empty bucket (a new epoch
 * says so): the rate is never exceeded across a handover. Fair share: a
 * node takes or renews a route (in name order) only within floor(routes /
 * live nodes), or within the ceiling while no other live node is below
 * the floor, releasing the others, so routes spread when nodes join and
 * no live node stays without one while another holds more than its
 * floor.
 *
 * Why a lease and not a shared token-bucket row: a bucket row would put
 * a round trip on one hot row, updated by every node, before every
 * claim; the adaptive parts of ratelimit.c (halving on 429, Retry-After
 * pauses, the slow recovery) and the in-flight cap would have to move
 * into shared rows too. With a lease all of it stays in one node's
 * memory and is right by construction; one node sending a route's
 * traffic (a few hundred messages a second at most) is far below what
 * one node sends.
 *
 * The send-time opt-out check is one statement per claimed batch
 * (members joined with sms_optout, or email_optout / bouncing), sent on
 * its own after the claim's answer: READ COMMITTED takes a fresh
 * snapshot per statement, so an opt-out committed by any node before the
 * check suppresses.
 *
 * Delivery reports kept in status_early (a report that overtook the
 * provider's answer) are applied by the same statement that records the
 * send (pgq_mark_sent()), as queue.c's queue_mark_sent_batch() does. On
 * SQLite one writer orders the two; here a report's statement may see
 * the message still 'sending' and keep the report while the recording
 * statement runs with an older snapshot, which cannot see it. So once
 * the recording committed, a second statement (a fresh snapshot) applies
 * whatever is kept for the recorded messages by then: a report kept by a
 * statement that committed before it started. It costs a round trip per
 * batch and reads only the ids' keys when nothing is kept. A report
 * statement still running then (it commits after the second pass took
 * its snapshot) is left to the sweep: every second each node's
 * pgq_sweep() also applies the reports kept for messages now 'sent', so
 * such a report is applied a second later at most. (A row lock would not
 * close it: a report known by the provider's id only cannot find the
 * message in its snapshot.) queue.c's queue_observe() hook is not
 * carried over: the "message" events of conversation messages are written
 * by the triggers of migration 012 (012_message_events.sql) with each
 * change these statements make.
 *
 * Ownership: each operation is a struct pgq_op, owned by the pg_queue's
 * pending list until its answer; pgq_free() detaches them (op->q = NULL)
 * and the answer then only frees them.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include "compat.h"
#include "log.h"
#include "message.h"
#include "pg.h"
#include "pg_row.h"
#include "pg_queue.h"
#include "xmalloc.h"

#define PGQ_ROUTE_MAX  64     /* route name, with its NUL */
#define PGQ_BATCH_MAX  10000  /* rows one statement may carry */
#define PGQ_LOCK_CLASS "1867" /* advisory lock class of node ids */
#define PGQ_NOW	       "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
/* Delivery reports are kept this long (queue_webhooks.c's). */
#define PGQ_EARLY_KEEP_MS "3600000"

enum pgq_kind {
	PGQ_REGISTER,
	PGQ_RECOVER,
	PGQ_HEARTBEAT,
	PGQ_RELOCK,
	PGQ_CLAIM,
	PGQ_SENT,
	PGQ_SENT_LATE,
	PGQ_MARK,
	PGQ_SWEEP,
	PGQ_OPTOUT,
	PGQ_ROUTE,
	PGQ_RELEASE,
	PGQ_EXPIRE,
	PGQ_NEXT_DUE,
	PGQ_EMAIL,
	PGQ_MEMBER_OPTOUT,
};

/* One route lease as this node sees it. */
struct pgq_route {
	char name[PGQ_ROUTE_MAX];
	int64_t epoch;
	int64_t deadline; /* pg_clock_ms(); 0 = not held */
};

struct pgq_op {
	LIST_ENTRY(pgq_op) entry;
	struct pg_queue *q; /* NULL once detached by pgq_free() */
	enum pgq_kind kind;
	pgq_done_fn *done;
	void *arg;
	int64_t sent_at;   /* pg_clock_ms() when queued */
	unsigned lease_ms; /* claim, route */
	char route[PGQ_ROUTE_MAX];
	char **to; /* opt-out check: the recipients (copies) */
	size_t nto;
	enum channel ch;
	int64_t node_id; /* register: the id while recovery runs */
	int64_t *ids;	 /* mark sent: the ids recorded, while the late */
	size_t nids;	 /* reports are applied (PGQ_SENT_LATE) */
};

struct pg_queue {
	struct pg *pg;
	char *node;
	unsigned route_lease_ms;
	unsigned node_timeout_ms;
	unsigned sweep_max;
	int64_t node_id;
	bool leaving; /* pgq_leave(): heartbeats keep heartbeat_at at 0 */
	struct pgq_route *routes;
	size_t nroutes;
	LIST_HEAD(, pgq_op) pending;
};

/* The node row of a name, its id locked for this session. */
static const char pgq_sql_register[] =
    "WITH n AS (INSERT INTO nodes (name, started_at, heartbeat_at)"
    " VALUES ($1, " PGQ_NOW ", " PGQ_NOW ") ON CONFLICT (name) DO UPDATE"
    " SET started_at = EXCLUDED.started_at,"
    " heartbeat_at = EXCLUDED.heartbeat_at RETURNING id)"
    " SELECT id, pg_try_advisory_lock(" PGQ_LOCK_CLASS ", id::integer)"
    " FROM n";
/* The lock again, and who holds it when we cannot (pgq_relock()). */
static const char pgq_sql_relock[] =
    "WITH t AS MATERIALIZED (SELECT pg_try_advisory_lock(" PGQ_LOCK_CLASS
    ", $1::integer) AS got)"
    " SELECT t.got, (SELECT l.pid FROM pg_locks l"
    " WHERE l.locktype = 'advisory' AND l.classid = " PGQ_LOCK_CLASS
    " AND l.objid = $1::integer::oid AND l.objsubid = 2 AND l.granted"
    " AND l.pid <> pg_backend_pid() LIMIT 1) FROM t";
static const char pgq_sql_heartbeat[] =
    "UPDATE nodes SET heartbeat_at = " PGQ_NOW " WHERE id = $1 RETURNING id";
/* A stopping node: not live for the fair share (pgq_leave()). */
static const char pgq_sql_leave[] =
    "UPDATE nodes SET heartbeat_at = 0 WHERE id = $1 AND heartbeat_at <> 0"
    " RETURNING id";

/* The history rows of the moved messages u(id, updated_at). */
#define PGQ_EVENTS(status, code, text)                                        \
	", e AS (INSERT INTO message_events (message_id, status, code, text," \
	" created_at) SELECT id, " status ", " code ", " text                 \
	", updated_at FROM u) SELECT id FROM u"

static const char pgq_sql_recover[] =
    "WITH u AS (UPDATE messages SET status = 'queued', lease_until = NULL,"
    " lease_owner = NULL, updated_at = " PGQ_NOW
    " WHERE status = 'sending' AND lease_owner = $1"
    " RETURNING id, updated_at)" PGQ_EVENTS("'queued'", "NULL",
	"'recovered after restart'");

/*
 * Claims (queue.c's queue_sql_claim, with the owner and SKIP LOCKED): $1
 * channel, $2 sender (typed, NULL for email), $3 node, $4 lease ms, $5
 * count. Two texts so that each compares sender in a way messages_due
 * serves.
 */
#define PGQ_CLAIM(sender_cond)                                                \
	"WITH p AS MATERIALIZED (SELECT id FROM messages"                     \
	" WHERE status = 'queued' AND channel = $1 AND " sender_cond          \
	" AND next_attempt_at <= " PGQ_NOW                                    \
	" ORDER BY priority DESC, next_attempt_at LIMIT $5"                   \
	" FOR UPDATE SKIP LOCKED),"                                           \
	" c AS (UPDATE messages m SET status = 'sending', lease_owner = $3,"  \
	" lease_until = " PGQ_NOW " + $4, updated_at = " PGQ_NOW              \
	" FROM p WHERE m.id = p.id AND m.status = 'queued'"                   \
	" RETURNING m.id, channel, priority, attempts, member_id, alert_id,"  \
	" created_at, expires_at, sender, to_addr, from_addr, subject, body," \
	" html, next_attempt_at, optout_exempt, conversation_id,"             \
	" updated_at),"                                                       \
	" e AS (INSERT INTO message_events (message_id, status, code, text,"  \
	" created_at) SELECT id, 'sending', NULL, NULL, updated_at FROM c)"   \
	" SELECT * FROM c ORDER BY priority DESC, next_attempt_at, id"
static const char pgq_sql_claim_sms[] = PGQ_CLAIM("sender = $2::text");
static const char pgq_sql_claim_email[] =
    PGQ_CLAIM("sender IS NULL AND $2::text IS NULL");

/*
 * queue.c's queue_sql_sent_batch with the owner: $1 node, then arrays of
 * ids, providers, provider ids, codes and texts; and, in the same
 * statement, queue_early_apply()'s delivery reports kept in status_early
 * (under the provider's id or '#<our id>', younger than an hour): k the
 * kept ones, s the highest sequence of a kept 'sent', f the final report
 * that applies (the first by sequence, NULLs first as SQLite orders them,
 * that a kept 'sent' with a higher sequence does not outdate). The row
 * moves straight to f's state, with a 'sent' and an f history row (in
 * that order), and the kept reports are dropped. A row may be modified
 * only once per statement, hence one UPDATE that computes the end state.
 */
static const char pgq_sql_sent[] =
    "WITH v AS (SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[],"
    " $5::bigint[], $6::text[]) AS v(id, provider, provider_id, code,"
    " text)),"
    " k AS (SELECT v.id, x.provider, x.provider_message_id, x.status,"
    " x.code, x.text, x.sequence FROM v JOIN status_early x"
    " ON x.provider = v.provider AND x.provider_message_id IN"
    " (v.provider_id, '#' || v.id) AND x.created_at >= " PGQ_NOW
    " - " PGQ_EARLY_KEEP_MS "),"
    " s AS (SELECT id, max(sequence) FILTER (WHERE sequence > 0) AS seq"
    " FROM k WHERE status = 'sent' GROUP BY id),"
    " f AS (SELECT DISTINCT ON (k.id) k.id, k.status, k.code, k.text,"
    " k.sequence FROM k LEFT JOIN s ON s.id = k.id WHERE k.status <> 'sent'"
    " AND NOT (coalesce(k.sequence, 0) > 0"
    " AND k.sequence < coalesce(s.seq, 0))"
    " ORDER BY k.id, k.sequence NULLS FIRST),"
    " u AS (UPDATE messages m SET status = coalesce(f.status, 'sent'),"
    " attempts = m.attempts + 1, lease_until = NULL, lease_owner = NULL,"
    " provider = v.provider, provider_message_id = v.provider_id,"
    " error_code = CASE WHEN f.status <> 'delivered' THEN f.code END,"
    " error_text = CASE WHEN f.status <> 'delivered' THEN f.text END,"
    " status_sequence = coalesce(CASE WHEN f.sequence > 0 THEN f.sequence"
    " END, s.seq, m.status_sequence), updated_at = " PGQ_NOW
    " FROM v LEFT JOIN f ON f.id = v.id LEFT JOIN s ON s.id = v.id"
    " WHERE m.id = v.id AND m.status = 'sending' AND m.lease_owner = $1"
    " RETURNING m.id, m.updated_at, v.code, v.text, f.status AS fstatus,"
    " f.code AS fcode, f.text AS ftext),"
    " e AS (INSERT INTO message_events (message_id, status, code, text,"
    " created_at) SELECT id, status, code, text, updated_at FROM"
    " (SELECT id, 0 AS o, 'sent' AS status, code, text, updated_at FROM u"
    " UNION ALL SELECT id, 1, fstatus, fcode, ftext, updated_at FROM u"
    " WHERE fstatus IS NOT NULL) AS h ORDER BY id, o),"
    " d AS (DELETE FROM status_early x USING k, u WHERE k.id = u.id"
    " AND x.provider = k.provider"
    " AND x.provider_message_id = k.provider_message_id)"
    " SELECT id FROM u";

/*
 * Applies the delivery reports kept in status_early for the 'sent'
 * messages of CTE P "v" (id, provider, provider_id, base: the message's
 * status_sequence or 0), with the first pass's rules: CTEs P "k" (the
 * kept reports), P "s", P "f", P "u" (the messages moved), P "e" (their
 * history rows), P "d" (the reports dropped). P: a prefix for the names,
 * so that the sweep's statement can hold them beside its own.
 */
#define PGQ_APPLY_KEPT(P)                                                      \
	" " P "k AS (SELECT v.id, x.provider, x.provider_message_id,"          \
	" x.status, x.code, x.text, x.sequence FROM " P "v v JOIN"             \
	" status_early x ON x.provider = v.provider AND"                       \
	" x.provider_message_id IN (v.provider_id, '#' || v.id)"               \
	" AND x.created_at >= " PGQ_NOW " - " PGQ_EARLY_KEEP_MS "),"           \
	" " P "s AS (SELECT id, max(sequence) FILTER (WHERE sequence > 0)"     \
	" AS seq FROM " P "k WHERE status = 'sent' GROUP BY id),"              \
	" " P "f AS (SELECT DISTINCT ON (k.id) k.id, k.status, k.code,"        \
	" k.text, k.sequence FROM " P "k k JOIN " P "v v ON v.id = k.id"       \
	" LEFT JOIN " P "s s ON s.id = k.id WHERE k.status <> 'sent'"          \
	" AND NOT (coalesce(k.sequence, 0) > 0"                                \
	" AND k.sequence < greatest(coalesce(s.seq, 0), v.base))"              \
	" ORDER BY k.id, k.sequence NULLS FIRST),"                             \
	" " P "u AS (UPDATE messages m SET status = coalesce(f.status,"        \
	" m.status), error_code = CASE WHEN f.status <> 'delivered'"           \
	" THEN coalesce(f.code, m.error_code) ELSE m.error_code END,"          \
	" error_text = CASE WHEN f.status <> 'delivered'"                      \
	" THEN coalesce(f.text, m.error_text) ELSE m.error_text END,"          \
	" status_sequence = coalesce(CASE WHEN f.sequence > 0"                 \
	" THEN f.sequence END, CASE WHEN s.seq > v.base THEN s.seq END,"       \
	" m.status_sequence), updated_at = " PGQ_NOW " FROM " P "v v"          \
	" LEFT JOIN " P "f f ON f.id = v.id LEFT JOIN " P "s s ON s.id = v.id" \
	" WHERE m.id = v.id AND m.status = 'sent'"                             \
	" AND (f.id IS NOT NULL OR s.seq > v.base)"                            \
	" RETURNING m.id, m.updated_at, f.status AS fstatus,"                  \
	" f.code AS fcode, f.text AS ftext),"                                  \
	" " P "e AS (INSERT INTO message_events (message_id, status, code,"    \
	" text, created_at) SELECT id, fstatus, fcode, ftext, updated_at"      \
	" FROM " P "u WHERE fstatus IS NOT NULL),"                             \
	" " P "d AS (DELETE FROM status_early x USING " P "k k"                \
	" WHERE x.provider = k.provider"                                       \
	" AND x.provider_message_id = k.provider_message_id)"

/*
 * The second pass of pgq_mark_sent(), a statement of its own (a fresh
 * snapshot) sent once the first committed: a delivery report kept in
 * status_early while the first statement ran (its snapshot predates the
 * report, which saw the message still 'sending') is applied now, with the
 * same rules. $1 the ids recorded sent. v holds only those with a kept
 * report at all, so the common case reads the ids' keys and stops.
 */
static const char pgq_sql_sent_late[] =
    "WITH v AS MATERIALIZED (SELECT m.id, m.provider,"
    " m.provider_message_id AS provider_id,"
    " coalesce(m.status_sequence, 0) AS base FROM messages m"
    " WHERE m.id = ANY ($1::bigint[]) AND m.status = 'sent'"
    " AND EXISTS (SELECT 1 FROM status_early x WHERE x.provider ="
    " m.provider AND x.provider_message_id IN (m.provider_message_id,"
    " '#' || m.id)))," PGQ_APPLY_KEPT("") " SELECT count(*) FROM u";

/*
 * The sweep, every second on every node: $1 at most this many expired
 * leases back to the queue (the answer: their ids); and beside them, the
 * delivery reports kept in status_early for messages recorded 'sent'
 * since (lv, by the provider's id or '#<our id>'): a report kept by a
 * statement that committed after pgq_mark_sent()'s second pass took its
 * snapshot had no one to apply it (test_dispatch_batch
 * test_overtaking_reports_and_complete_history left 1 or 2 of its 60
 * messages 'sent'). status_early is small: reports waiting a moment.
 */
static const char pgq_sql_sweep[] =
    "WITH p AS MATERIALIZED (SELECT id FROM messages"
    " WHERE status = 'sending' AND lease_until < " PGQ_NOW
    " ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED),"
    " u AS (UPDATE messages m SET status = 'queued', lease_until = NULL,"
    " lease_owner = NULL, updated_at = " PGQ_NOW
    " FROM p WHERE m.id = p.id AND m.status = 'sending'"
    " RETURNING m.id, m.updated_at),"
    " lv AS MATERIALIZED (SELECT DISTINCT m.id, m.provider,"
    " m.provider_message_id AS provider_id,"
    " coalesce(m.status_sequence, 0) AS base FROM status_early x"
    " JOIN messages m ON m.provider = x.provider"
    " AND (m.provider_message_id = x.provider_message_id"
    " OR m.id = CASE WHEN x.provider_message_id ~ '^#[0-9]{1,18}$'"
    " THEN substr(x.provider_message_id, 2)::bigint END)"
    " WHERE m.status = 'sent' LIMIT $1)," PGQ_APPLY_KEPT("l")
	PGQ_EVENTS("'queued'", "NULL", "'lease expired'");

/*
 * Set-wide expiry (queue.c's queue_sql_expire): due queued messages past
 * expires_at -> expired, at most $1 a call, skipping rows another node is
 * claiming; the answer names each one's route.
 */
static const char pgq_sql_expire[] =
    "WITH p AS MATERIALIZED (SELECT id FROM messages"
    " WHERE status = 'queued' AND expires_at IS NOT NULL"
    " AND expires_at <= " PGQ_NOW " ORDER BY expires_at LIMIT $1"
    " FOR UPDATE SKIP LOCKED),"
    " u AS (UPDATE messages m SET status = 'expired', updated_at = " PGQ_NOW
    " FROM p WHERE m.id = p.id AND m.status = 'queued'"
    " RETURNING m.id, m.channel, m.sender, m.updated_at),"
    " e AS (INSERT INTO message_events (message_id, status, code, text,"
    " created_at) SELECT id, 'expired', NULL, 'expired before it was sent',"
    " updated_at FROM u) SELECT id, channel, sender FROM u";
/* The next due time, relative to the database clock (messages_next_due). */
static const char pgq_sql_next_due[] = "SELECT min(next_attempt_at) - " PGQ_NOW
				       " FROM messages WHERE status = 'queued'";

/*
 * One result (queue.c's queue_sql_retry, queue_sql_release_msg,
 * queue_sql_mark): $1 id, $2 node, $3 target, $4 code, $5 text, $6 the
 * history text when $5 is NULL; retry only: $7 its delay in ms.
 */
#define PGQ_MARK(set)                                                     \
	"WITH u AS (UPDATE messages SET status = $3, lease_until = NULL," \
	" lease_owner = NULL, " set ", updated_at = " PGQ_NOW             \
	" WHERE id = $1 AND status = 'sending' AND lease_owner = $2"      \
	" RETURNING id, updated_at)" PGQ_EVENTS("$3", "$4::bigint",       \
	    "coalesce($5::text, $6::text)")
static const char pgq_sql_retry[] =
    PGQ_MARK("attempts = attempts + 1, next_attempt_at = " PGQ_NOW
	     " + $7::bigint, error_code = $4::bigint, error_text = $5::text");
static const char pgq_sql_release[] = PGQ_MARK("attempts = attempts");
/* A provider's refusal was an attempt; a suppression or expiry not. */
static const char pgq_sql_mark[] =
    PGQ_MARK("attempts = attempts + ($3::text = 'failed')::integer,"
	     " error_code = coalesce($4::bigint, error_code),"
	     " error_text = coalesce($5::text, error_text)");

/* Email bounces (store_email.c's): $1 address, $2 limit. */
static const char pgq_sql_email_fail[] =
    "UPDATE members SET email_failures = email_failures + 1,"
    " bouncing = CASE WHEN $2::bigint > 0 AND email_failures + 1 >= $2::bigint"
    " THEN 1 ELSE bouncing END, updated_at = " PGQ_NOW
    " WHERE email = lower($1) RETURNING bouncing";
static const char pgq_sql_email_ok[] =
    "UPDATE members SET email_failures = 0 WHERE email = lower($1)"
    " AND email_failures <> 0 AND bouncing = 0";

/*
 * A carrier opt-out (store_consent.c's store_member_optout): $1 address,
 * $2 source, $3 message id (NULL). The member row is created when none
 * has the address (the no-op update returns an existing one's id).
 */
#define PGQ_OPTOUT_SQL(col, addr, table, ch)                                 \
	"WITH mem AS (INSERT INTO members (" col ", created_at, updated_at)" \
	" VALUES (" addr ", " PGQ_NOW ", " PGQ_NOW ") ON CONFLICT (" col ")" \
	" DO UPDATE SET " col " = excluded." col " RETURNING id),"           \
	" oo AS (INSERT INTO " table " (member_id, opted_out_at, source)"    \
	" SELECT id, " PGQ_NOW ", $2::text FROM mem ON CONFLICT DO NOTHING"  \
	" RETURNING member_id),"                                             \
	" ce AS (INSERT INTO consent_events (member_id, channel, action,"    \
	" source, message_id, created_at) SELECT member_id, '" ch "',"       \
	" 'opt_out', $2::text, $3::bigint, " PGQ_NOW " FROM oo)"             \
	" SELECT member_id FROM oo"
static const char pgq_sql_sms_member_optout[] =
    PGQ_OPTOUT_SQL("phone", "$1::text", "sms_optout", "sms");
static const char pgq_sql_email_member_optout[] =
    PGQ_OPTOUT_SQL("email", "lower($1::text)", "email_optout", "email");

/* queue.c's opt-out batches, with arrays. */
static const char pgq_sql_sms_optout[] =
    "SELECT m.phone FROM members m JOIN sms_optout o ON o.member_id = m.id"
    " WHERE m.phone = ANY ($1::text[])";
static const char pgq_sql_email_optout[] =
    "SELECT m.email FROM members m LEFT JOIN email_optout o"
    " ON o.member_id = m.id WHERE m.email = ANY (SELECT lower(x)"
    " FROM unnest($1::text[]) AS x) AND (o.member_id IS NOT NULL"
    " OR m.bouncing = 1)";

/*
 * A route lease: $1 route, $2 node, $3 lease ms, $4 routes in all, $5
 * node timeout ms. me is computed once (MATERIALIZED). held = this node's
 * live leases: all of them for a new route, those before $1 in name
 * order for a renewal, so a node over its share keeps the first ones.
 * The share: up to floor(routes / live nodes) always, one more (up to
 * the ceiling) only while no other live node holds fewer than the floor,
 * so that 4 routes on 3 nodes end 2/1/1, not 2/2/0 (the node over the
 * floor gives its extra route up at its next renewal).
 * The conflict's WHERE lets through a renewal (epoch kept) or a take-over
 * of a free, released or expired lease (epoch + 1); EXCLUDED.lease_until
 * - $3 is me.now.
 */
static const char pgq_sql_route[] =
    "WITH me AS MATERIALIZED (SELECT $2::bigint AS id, " PGQ_NOW " AS now),"
    " mine AS (SELECT r.route FROM route_leases r, me WHERE r.owner = me.id"
    " AND r.lease_until >= me.now),"
    " live AS (SELECT n.id, (SELECT count(*) FROM route_leases l"
    " WHERE l.owner = n.id AND l.lease_until >= me.now) AS k"
    " FROM nodes n, me WHERE n.heartbeat_at >= me.now - $5::bigint),"
    " share AS (SELECT floor($4::numeric / greatest(1, count(*))) AS lo,"
    " ceil($4::numeric / greatest(1, count(*))) AS hi FROM live),"
    " held AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM mine WHERE route ="
    " $1) THEN (SELECT count(*) FROM mine WHERE route < $1)"
    " ELSE (SELECT count(*) FROM mine) END AS n)"
    " INSERT INTO route_leases AS r (route, owner, lease_until, epoch)"
    " SELECT $1, me.id, me.now + $3::bigint, 1 FROM me, share, held"
    " WHERE held.n < share.lo OR (held.n < share.hi AND NOT EXISTS"
    " (SELECT 1 FROM live WHERE live.id <> me.id AND live.k < share.lo))"
    " ON CONFLICT (route) DO UPDATE SET owner = EXCLUDED.owner,"
    " lease_until = EXCLUDED.lease_until, epoch = r.epoch + CASE WHEN"
    " r.owner = EXCLUDED.owner AND r.lease_until >= EXCLUDED.lease_until"
    " - $3::bigint THEN 0 ELSE 1 END"
    " WHERE r.owner IS NULL OR r.owner = EXCLUDED.owner"
    " OR r.lease_until < EXCLUDED.lease_until - $3::bigint"
    " RETURNING epoch";
static const char pgq_sql_release_route[] =
    "UPDATE route_leases SET owner = NULL WHERE route = $1 AND owner = $2"
    " RETURNING epoch";

static const char *const pgq_what[] = {
    [PGQ_REGISTER] = "register node",
    [PGQ_RECOVER] = "recover claims",
    [PGQ_HEARTBEAT] = "heartbeat",
    [PGQ_RELOCK] = "lock the node again",
    [PGQ_CLAIM] = "claim",
    [PGQ_SENT] = "mark sent",
    [PGQ_SENT_LATE] = "apply reports kept meanwhile",
    [PGQ_MARK] = "mark",
    [PGQ_SWEEP] = "sweep expired leases",
    [PGQ_OPTOUT] = "opt-out check",
    [PGQ_ROUTE] = "route lease",
    [PGQ_RELEASE] = "route release",
    [PGQ_EXPIRE] = "expire",
    [PGQ_NEXT_DUE] = "next due",
    [PGQ_EMAIL] = "email result",
    [PGQ_MEMBER_OPTOUT] = "member opt-out",
};

static void pgq_on_answer(void *arg, const struct pg_answer *pa);

struct pg_queue *
pgq_new(const struct pgq_config *cfg, char *err, size_t errlen)
{
	struct pg_queue *q;

	if (cfg->pg == NULL || cfg->node == NULL || cfg->node[0] == '\0') {
		snprintf(err, errlen,
		    "pg_queue: a connection and a node name are required");
		return NULL;
	}
	q = xcalloc(1, sizeof(*q));
	q->pg = cfg->pg;
	q->node = xstrdup(cfg->node);
	q->route_lease_ms = cfg->route_lease_ms ? cfg->route_lease_ms : 5000;
	q->node_timeout_ms =
	    cfg->node_timeout_ms ? cfg->node_timeout_ms : 15000;
	q->sweep_max = cfg->sweep_max ? cfg->sweep_max : 5000;
	LIST_INIT(&q->pending);
	return q;
}

void
pgq_free(struct pg_queue *q)
{
	struct pgq_op *op;

	if (q == NULL)
		return;
	while ((op = LIST_FIRST(&q->pending)) != NULL) {
		LIST_REMOVE(op, entry);
		op->q = NULL;
	}
	free(q->routes);
	free(q->node);
	free(q);
}

int64_t
pgq_node_id(const struct pg_queue *q)
{
	return q->node_id;
}

static void
pgq_op_free(struct pgq_op *op)
{
	size_t i;

	for (i = 0; i < op->nto; i++)
		free(op->to[i]);
	free(op->to);
	free(op->ids);
	free(op);
}

/* A new operation of q, on its pending list. */
static struct pgq_op *
pgq_op_new(struct pg_queue *q, enum pgq_kind kind, pgq_done_fn *done, void *arg)
{
	struct pgq_op *op = xcalloc(1, sizeof(*op));

	op->q = q;
	op->kind = kind;
	op->done = done;
	op->arg = arg;
	op->sent_at = pg_clock_ms();
	LIST_INSERT_HEAD(&q->pending, op, entry);
	return op;
}

/* Queues op's statement; on failure op is freed and -1 returned. */
static int
pgq_send(struct pgq_op *op, const char *sql, const char *const *values,
    int nparams, char *err, size_t errlen)
{
	struct pg_query pq = {.sql = sql,
	    .nparams = nparams,
	    .values = values,
	    .done = pgq_on_answer,
	    .arg = op};

	if (pg_send(op->q->pg, &pq, err, errlen) == -1) {
		LIST_REMOVE(op, entry);
		pgq_op_free(op);
		return -1;
	}
	return 0;
}

static int
pgq_need_node(const struct pg_queue *q, char *err, size_t errlen)
{
	if (q->node_id != 0)
		return 0;
	snprintf(err, errlen, "pg_queue: node not started (pgq_start)");
	return -1;
}

/* Appends s to an array literal being built in *buf. */
static void
pgq_array_add(char **buf, size_t *len, size_t *cap, const char *s, bool first)
{
	size_t need = (s != NULL ? strlen(s) * 2 : 0) + 8;
	char *p;

	if (*len + need >= *cap) {
		*cap = (*len + need) * 2;
		*buf = xreallocarray(*buf, *cap, 1);
	}
	p = *buf + *len;
	if (!first)
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
	*len = (size_t)(p - *buf);
	(*buf)[*len] = '\0';
}

/*
 * A PostgreSQL array literal of n elements: get(v, i, tmp) gives element
 * i as text (NULL = SQL NULL); tmp is 24 bytes for numbers.
 */
typedef const char *pgq_elem_fn(const void *v, size_t i, char *tmp);

static char *
pgq_array(const void *v, size_t n, pgq_elem_fn *get)
{
	size_t len = 1, cap = 64;
	char *buf = xmalloc(cap);
	char tmp[24];
	size_t i;

	buf[0] = '{';
	buf[1] = '\0';
	for (i = 0; i < n; i++)
		pgq_array_add(&buf, &len, &cap, get(v, i, tmp), i == 0);
	if (len + 2 >= cap)
		buf = xreallocarray(buf, len + 2, 1);
	buf[len++] = '}';
	buf[len] = '\0';
	return buf;
}

static const char *
pgq_id_elem(const void *v, size_t i, char *tmp)
{
	snprintf(tmp, 24, "%" PRId64, ((const int64_t *)v)[i]);
	return tmp;
}

static const char *
pgq_sent_id(const void *v, size_t i, char *tmp)
{
	snprintf(tmp, 24, "%" PRId64, ((const struct pgq_sent *)v)[i].id);
	return tmp;
}

static const char *
pgq_sent_provider(const void *v, size_t i, char *tmp)
{
	(void)tmp;
	return ((const struct pgq_sent *)v)[i].provider;
}

static const char *
pgq_sent_provider_id(const void *v, size_t i, char *tmp)
{
	(void)tmp;
	return ((const struct pgq_sent *)v)[i].provider_id;
}

static const char *
pgq_sent_code(const void *v, size_t i, char *tmp)
{
	int code = ((const struct pgq_sent *)v)[i].code;

	if (code == 0)
		return NULL;
	snprintf(tmp, 24, "%d", code);
	return tmp;
}

static const char *
pgq_sent_text(const void *v, size_t i, char *tmp)
{
	(void)tmp;
	return ((const struct pgq_sent *)v)[i].text;
}

static const char *
pgq_str_elem(const void *v, size_t i, char *tmp)
{
	(void)tmp;
	return ((const char *const *)v)[i];
}

int
pgq_start(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen)
{
	const char *values[1] = {q->node};
	struct pgq_op *op = pgq_op_new(q, PGQ_REGISTER, done, arg);

	return pgq_send(op, pgq_sql_register, values, 1, err, errlen);
}

int
pgq_relock(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen)
{
	char id[24];
	const char *values[1] = {id};

	if (pgq_need_node(q, err, errlen) == -1)
		return -1;
	snprintf(id, sizeof(id), "%" PRId64, q->node_id);
	return pgq_send(pgq_op_new(q, PGQ_RELOCK, done, arg), pgq_sql_relock,
	    values, 1, err, errlen);
}

int
pgq_heartbeat(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen)
{
	char id[24];
	const char *values[1] = {id};

	if (pgq_need_node(q, err, errlen) == -1)
		return -1;
	snprintf(id, sizeof(id), "%" PRId64, q->node_id);
	return pgq_send(pgq_op_new(q, PGQ_HEARTBEAT, done, arg),
	    q->leaving ? pgq_sql_leave : pgq_sql_heartbeat, values, 1, err,
	    errlen);
}

int
pgq_leave(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen)
{
	if (pgq_need_node(q, err, errlen) == -1)
		return -1;
	q->leaving = true;
	return pgq_heartbeat(q, done, arg, err, errlen);
}

int
pgq_claim(struct pg_queue *q, const struct pgq_claim_req *req,
    pgq_done_fn *done, void *arg, char *err, size_t errlen)
{
	char node[24], lease[24], max[24];
	const char *values[5];
	struct pgq_op *op;
	bool email = req->ch == CHANNEL_EMAIL;

	if (pgq_need_node(q, err, errlen) == -1)
		return -1;
	if (req->max == 0 || req->max > PGQ_BATCH_MAX || req->lease_ms == 0 ||
	    (!email && req->sender == NULL)) {
		snprintf(err, errlen,
		    "pg_queue: claim needs 1..%d messages, a lease and, for "
		    "SMS, a sender",
		    PGQ_BATCH_MAX);
		return -1;
	}
	snprintf(node, sizeof(node), "%" PRId64, q->node_id);
	snprintf(lease, sizeof(lease), "%u", req->lease_ms);
	snprintf(max, sizeof(max), "%zu", req->max);
	values[0] = channel_to_text(req->ch);
	values[1] = email ? NULL : req->sender;
	values[2] = node;
	values[3] = lease;
	values[4] = max;
	op = pgq_op_new(q, PGQ_CLAIM, done, arg);
	op->lease_ms = req->lease_ms;
	return pgq_send(op, email ? pgq_sql_claim_email : pgq_sql_claim_sms,
	    values, 5, err, errlen);
}

int
pgq_mark_sent(struct pg_queue *q, const struct pgq_sent *v, size_t n,
    pgq_done_fn *done, void *arg, char *err, size_t errlen)
{
	static pgq_elem_fn *const cols[5] = {pgq_sent_id, pgq_sent_provider,
	    pgq_sent_provider_id, pgq_sent_code, pgq_sent_text};
	char node[24];
	char *arrays[5];
	const char *values[6] = {node};
	int i, rc;

	if (pgq_need_node(q, err, errlen) == -1)
		return -1;
	if (n == 0 || n > PGQ_BATCH_MAX) {
		snprintf(err, errlen,
		    "pg_queue: mark sent takes 1..%d messages", PGQ_BATCH_MAX);
		return -1;
	}
	snprintf(node, sizeof(node), "%" PRId64, q->node_id);
	for (i = 0; i < 5; i++)
		values[i + 1] = arrays[i] = pgq_array(v, n, cols[i]);
	rc = pgq_send(pgq_op_new(q, PGQ_SENT, done, arg), pgq_sql_sent, values,
	    6, err, errlen);
	for (i = 0; i < 5; i++)
		free(arrays[i]);
	return rc;
}

/* The statement for r, or NULL with err (a target pgq_mark() refuses). */
static const char *
pgq_mark_sql(const struct pgq_result *r, char *err, size_t errlen)
{
	switch (r->to) {
	case MSG_ST_QUEUED:
		return r->release ? pgq_sql_release : pgq_sql_retry;
	case MSG_ST_FAILED:
	case MSG_ST_EXPIRED:
	case MSG_ST_CANCELLED:
	case MSG_ST_SUPPRESSED:
		return pgq_sql_mark;
	default:
		snprintf(err, errlen,
		    "pg_queue: cannot move message %" PRId64
		    " from sending to %s; use pgq_mark_sent",
		    r->id, msg_status_to_text(r->to));
		return NULL;
	}
}

int
pgq_mark(struct pg_queue *q, const struct pgq_result *r, pgq_done_fn *done,
    void *arg, char *err, size_t errlen)
{
	char id[24], node[24], code[24], delay[24];
	const char *values[7];
	const char *sql;

	if (pgq_need_node(q, err, errlen) == -1)
		return -1;
	if ((sql = pgq_mark_sql(r, err, errlen)) == NULL)
		return -1;
	snprintf(id, sizeof(id), "%" PRId64, r->id);
	snprintf(node, sizeof(node), "%" PRId64, q->node_id);
	snprintf(code, sizeof(code), "%d", r->code);
	snprintf(delay, sizeof(delay), "%u",
	    r->to == MSG_ST_QUEUED && !r->release ? r->retry_in_ms : 0);
	values[0] = id;
	values[1] = node;
	values[2] = msg_status_to_text(r->to);
	values[3] = r->code != 0 ? code : NULL;
	values[4] = r->text;
	values[5] = r->to != MSG_ST_QUEUED ? NULL
	    : r->release		   ? "released"
					   : "retry";
	values[6] = delay;
	return pgq_send(pgq_op_new(q, PGQ_MARK, done, arg), sql, values,
	    sql == pgq_sql_retry ? 7 : 6, err, errlen);
}

int
pgq_sweep(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen)
{
	char max[24];
	const char *values[1] = {max};

	snprintf(max, sizeof(max), "%u", q->sweep_max);
	return pgq_send(pgq_op_new(q, PGQ_SWEEP, done, arg), pgq_sql_sweep,
	    values, 1, err, errlen);
}

int
pgq_suppressed(struct pg_queue *q, enum channel ch, const char *const *to,
    size_t n, pgq_done_fn *done, void *arg, char *err, size_t errlen)
{
	struct pgq_op *op;
	const char *values[1];
	char *array;
	size_t i;
	int rc;

	if (n == 0 || n > PGQ_BATCH_MAX) {
		snprintf(err, errlen,
		    "pg_queue: the opt-out check takes 1..%d recipients",
		    PGQ_BATCH_MAX);
		return -1;
	}
	op = pgq_op_new(q, PGQ_OPTOUT, done, arg);
	op->ch = ch;
	op->to = xreallocarray(NULL, n, sizeof(*op->to));
	for (i = 0; i < n; i++)
		op->to[i] = to[i] != NULL ? xstrdup(to[i]) : NULL;
	op->nto = n;
	values[0] = array = pgq_array(to, n, pgq_str_elem);
	rc = pgq_send(op,
	    ch == CHANNEL_EMAIL ? pgq_sql_email_optout : pgq_sql_sms_optout,
	    values, 1, err, errlen);
	free(array);
	return rc;
}

int
pgq_expire(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen)
{
	char max[24];
	const char *values[1] = {max};

	snprintf(max, sizeof(max), "%u", q->sweep_max);
	return pgq_send(pgq_op_new(q, PGQ_EXPIRE, done, arg), pgq_sql_expire,
	    values, 1, err, errlen);
}

int
pgq_next_due(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen)
{
	return pgq_send(pgq_op_new(q, PGQ_NEXT_DUE, done, arg),
	    pgq_sql_next_due, NULL, 0, err, errlen);
}

int
pgq_email_result(struct pg_queue *q, const struct pgq_email *e,
    pgq_done_fn *done, void *arg, char *err, size_t errlen)
{
	char limit[24];
	const char *values[2] = {e->address, limit};

	if (e->address == NULL || e->address[0] == '\0') {
		snprintf(err, errlen, "pg_queue: an email address is required");
		return -1;
	}
	snprintf(limit, sizeof(limit), "%u", e->limit);
	return pgq_send(pgq_op_new(q, PGQ_EMAIL, done, arg),
	    e->accepted ? pgq_sql_email_ok : pgq_sql_email_fail, values,
	    e->accepted ? 1 : 2, err, errlen);
}

int
pgq_member_optout(struct pg_queue *q, const struct pgq_optout *o,
    pgq_done_fn *done, void *arg, char *err, size_t errlen)
{
	char id[24];
	const char *values[3] = {o->address, o->source, id};

	if (o->address == NULL || o->address[0] == '\0' || o->source == NULL ||
	    o->source[0] == '\0') {
		snprintf(err, errlen,
		    "pg_queue: opt-out needs an address and a "
		    "source");
		return -1;
	}
	snprintf(id, sizeof(id), "%" PRId64, o->message_id);
	if (o->message_id == 0)
		values[2] = NULL;
	return pgq_send(pgq_op_new(q, PGQ_MEMBER_OPTOUT, done, arg),
	    o->ch == CHANNEL_EMAIL ? pgq_sql_email_member_optout
				   : pgq_sql_sms_member_optout,
	    values, 3, err, errlen);
}

/* q's entry for route, created (not held) when absent. */
static struct pgq_route *
pgq_route_get(struct pg_queue *q, const char *route)
{
	size_t i;

	for (i = 0; i < q->nroutes; i++)
		if (strcmp(q->routes[i].name, route) == 0)
			return &q->routes[i];
	q->routes =
	    xreallocarray(q->routes, q->nroutes + 1, sizeof(*q->routes));
	memset(&q->routes[q->nroutes], 0, sizeof(*q->routes));
	strlcpy(q->routes[q->nroutes].name, route, PGQ_ROUTE_MAX);
	return &q->routes[q->nroutes++];
}

static int
pgq_route_check(const struct pg_queue *q, const char *route, char *err,
    size_t errlen)
{
	if (pgq_need_node(q, err, errlen) == -1)
		return -1;
	if (route == NULL || route[0] == '\0' ||
	    strlen(route) >= PGQ_ROUTE_MAX) {
		snprintf(err, errlen, "pg_queue: a route name of 1..%d bytes",
		    PGQ_ROUTE_MAX - 1);
		return -1;
	}
	return 0;
}

int
pgq_route_acquire(struct pg_queue *q, const char *route, unsigned nroutes,
    pgq_done_fn *done, void *arg, char *err, size_t errlen)
{
	char node[24], lease[24], routes[24], timeout[24];
	const char *values[5] = {route, node, lease, routes, timeout};
	struct pgq_op *op;

	if (pgq_route_check(q, route, err, errlen) == -1)
		return -1;
	snprintf(node, sizeof(node), "%" PRId64, q->node_id);
	snprintf(lease, sizeof(lease), "%u", q->route_lease_ms);
	snprintf(routes, sizeof(routes), "%u", nroutes > 0 ? nroutes : 1);
	snprintf(timeout, sizeof(timeout), "%u", q->node_timeout_ms);
	op = pgq_op_new(q, PGQ_ROUTE, done, arg);
	op->lease_ms = q->route_lease_ms;
	strlcpy(op->route, route, sizeof(op->route));
	return pgq_send(op, pgq_sql_route, values, 5, err, errlen);
}

int
pgq_route_release(struct pg_queue *q, const char *route, pgq_done_fn *done,
    void *arg, char *err, size_t errlen)
{
	char node[24];
	const char *values[2] = {route, node};
	struct pgq_op *op;

	if (pgq_route_check(q, route, err, errlen) == -1)
		return -1;
	/* Stops counting as held now, before the release commits. */
	pgq_route_get(q, route)->deadline = 0;
	snprintf(node, sizeof(node), "%" PRId64, q->node_id);
	op = pgq_op_new(q, PGQ_RELEASE, done, arg);
	strlcpy(op->route, route, sizeof(op->route));
	return pgq_send(op, pgq_sql_release_route, values, 2, err, errlen);
}

bool
pgq_route_held(struct pg_queue *q, const char *route, int64_t *epoch)
{
	size_t i;

	for (i = 0; i < q->nroutes; i++) {
		if (strcmp(q->routes[i].name, route) != 0)
			continue;
		if (q->routes[i].deadline == 0 ||
		    pg_clock_ms() >= q->routes[i].deadline)
			return false;
		if (epoch != NULL)
			*epoch = q->routes[i].epoch;
		return true;
	}
	return false;
}

/* ---- answers -------------------------------------------------------- */

/* Column order is the claim's RETURNING list (queue.c's). */
static struct out_msg *
pgq_out_from_row(const PGresult *res, int r)
{
	struct out_msg *m = xcalloc(1, sizeof(*m));
	const char *s;

	m->id = pgr_get_i64(res, r, 0);
	s = pgr_get_text(res, r, 1);
	m->channel =
	    s != NULL && strcmp(s, "email") == 0 ? CHANNEL_EMAIL : CHANNEL_SMS;
	m->priority = (int)pgr_get_i64(res, r, 2);
	m->attempts = (int)pgr_get_i64(res, r, 3);
	m->member_id = pgr_get_i64(res, r, 4);
	m->alert_id = pgr_get_i64(res, r, 5);
	m->created_at = pgr_get_i64(res, r, 6);
	m->expires_at = pgr_get_i64(res, r, 7);
	if ((s = pgr_get_text(res, r, 8)) != NULL)
		strlcpy(m->sender, s, sizeof(m->sender));
	if ((s = pgr_get_text(res, r, 9)) != NULL)
		strlcpy(m->to, s, sizeof(m->to));
	if ((s = pgr_get_text(res, r, 10)) != NULL)
		strlcpy(m->from, s, sizeof(m->from));
	if ((s = pgr_get_text(res, r, 11)) != NULL)
		m->subject = xstrdup(s);
	s = pgr_get_text(res, r, 12);
	m->body = xstrdup(s != NULL ? s : "");
	if ((s = pgr_get_text(res, r, 13)) != NULL)
		m->html = xstrdup(s);
	m->optout_exempt = pgr_get_i64(res, r, 15) != 0;
	return m;
}

/* The first column of every row, as ids. */
static int64_t *
pgq_ids(const PGresult *res, size_t *n)
{
	int64_t *ids;
	int i, rows = PQntuples(res);

	ids = xreallocarray(NULL, rows > 0 ? (size_t)rows : 1, sizeof(*ids));
	for (i = 0; i < rows; i++)
		ids[i] = pgr_get_i64(res, i, 0);
	*n = (size_t)rows;
	return ids;
}

static void
pgq_answer_claim(struct pgq_op *op, const PGresult *res, struct pgq_answer *a)
{
	int i, rows = PQntuples(res);

	a->msgs =
	    xreallocarray(NULL, rows > 0 ? (size_t)rows : 1, sizeof(*a->msgs));
	for (i = 0; i < rows; i++)
		a->msgs[i] = pgq_out_from_row(res, i);
	a->n = (size_t)rows;
	a->deadline = op->sent_at + op->lease_ms;
}

static void
pgq_answer_optout(struct pgq_op *op, const PGresult *res, struct pgq_answer *a)
{
	bool *sup = xcalloc(op->nto, sizeof(*sup));
	const char *got;
	size_t k;
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		if ((got = pgr_get_text(res, i, 0)) == NULL)
			continue;
		for (k = 0; k < op->nto; k++)
			if (op->to[k] != NULL &&
			    (op->ch == CHANNEL_EMAIL
				    ? strcasecmp(got, op->to[k])
				    : strcmp(got, op->to[k])) == 0)
				sup[k] = true;
	}
	a->sup = sup;
	a->n = op->nto;
}

static void
pgq_answer_expire(const PGresult *res, struct pgq_answer *a)
{
	struct pgq_moved *m;
	const char *ch;
	int i, rows = PQntuples(res);

	m = xreallocarray(NULL, rows > 0 ? (size_t)rows : 1, sizeof(*m));
	for (i = 0; i < rows; i++) {
		ch = pgr_get_text(res, i, 1);
		m[i] = (struct pgq_moved){.id = pgr_get_i64(res, i, 0),
		    .ch = ch != NULL && strcmp(ch, "email") == 0 ? CHANNEL_EMAIL
								 : CHANNEL_SMS,
		    .sender = pgr_get_text(res, i, 2)};
	}
	a->moved = m;
	a->n = (size_t)rows;
}

/* A route answer: held (a row came back) or not; q's view follows. */
static void
pgq_answer_route(struct pgq_op *op, const PGresult *res, struct pgq_answer *a)
{
	struct pg_queue *q = op->q;
	struct pgq_route *rt = pgq_route_get(q, op->route);
	char err[128];
	bool was = pgq_route_held(q, op->route, NULL);

	if (PQntuples(res) == 0) {
		rt->deadline = 0;
		/* Held beyond its share (or lost): let the others have it. */
		if (was &&
		    pgq_route_release(q, op->route, NULL, NULL, err,
			sizeof(err)) == -1)
			log_warnx("pgq_route_release route=%s error=\"%s\"",
			    op->route, err);
		return;
	}
	a->n = 1;
	a->epoch = pgr_get_i64(res, 0, 0);
	a->deadline = op->sent_at + op->lease_ms - op->lease_ms / 5;
	if (rt->epoch != a->epoch && rt->epoch != 0)
		log_info("pgq_route_epoch route=%s epoch=%" PRId64, op->route,
		    a->epoch);
	rt->epoch = a->epoch;
	rt->deadline = a->deadline;
}

/* Registered: checks the lock and sends the recovery of own claims. */
static bool
pgq_answer_register(struct pgq_op *op, const PGresult *res, char *err,
    size_t errlen)
{
	struct pg_queue *q = op->q;
	char id[24];
	const char *values[1] = {id};
	const char *locked;

	if (PQntuples(res) != 1) {
		snprintf(err, errlen, "register node: no row");
		return false;
	}
	locked = pgr_get_text(res, 0, 1);
	if (locked == NULL || strcmp(locked, "t") != 0) {
		snprintf(err, errlen,
		    "node %s is already running (another live session holds "
		    "its lock)",
		    q->node);
		return false;
	}
	op->node_id = pgr_get_i64(res, 0, 0);
	snprintf(id, sizeof(id), "%" PRId64, op->node_id);
	op->kind = PGQ_RECOVER;
	op->sent_at = pg_clock_ms();
	return pg_send(q->pg,
		   &(struct pg_query){.sql = pgq_sql_recover,
		       .nparams = 1,
		       .values = values,
		       .done = pgq_on_answer,
		       .arg = op},
		   err, errlen) == 0;
}

/* Sends the second pass of a mark sent (pgq_sql_sent_late); false with
 * err when it cannot be queued. */
static bool
pgq_send_late(struct pgq_op *op, char *err, size_t errlen)
{
	char *array = pgq_array(op->ids, op->nids, pgq_id_elem);
	const char *values[1] = {array};
	bool ok;

	op->kind = PGQ_SENT_LATE;
	ok = pg_send(op->q->pg,
		 &(struct pg_query){.sql = pgq_sql_sent_late,
		     .nparams = 1,
		     .values = values,
		     .done = pgq_on_answer,
		     .arg = op},
		 err, errlen) == 0;
	free(array);
	if (!ok) {
		op->kind = PGQ_SENT;
		log_warnx("pgq_failed op=\"%s\" error=\"%s\"",
		    pgq_what[PGQ_SENT_LATE], err);
	}
	return ok;
}

/* Fills a from a successful result; returns false when op goes on. */
static bool
pgq_answer_ok(struct pgq_op *op, const PGresult *res, struct pgq_answer *a,
    char *err, size_t errlen)
{
	switch (op->kind) {
	case PGQ_REGISTER:
		if (pgq_answer_register(op, res, err, errlen))
			return false;
		a->error = err;
		break;
	case PGQ_SENT:
		op->ids = pgq_ids(res, &op->nids);
		if (op->nids > 0 && pgq_send_late(op, err, errlen))
			return false;
		/* Nothing recorded, or the second pass could not be
		 * queued: answered with the ids as they are. */
		/* FALLTHROUGH */
	case PGQ_SENT_LATE:
		a->ids = op->ids;
		a->n = op->nids;
		op->ids = NULL;
		break;
	case PGQ_RECOVER:
		op->q->node_id = a->node_id = op->node_id;
		/* FALLTHROUGH */
	case PGQ_SWEEP:
		a->ids = pgq_ids(res, &a->n);
		if (op->kind == PGQ_RECOVER)
			log_info("pgq_node_started node=%s id=%" PRId64
				 " recovered=%zu",
			    op->q->node, op->node_id, a->n);
		break;
	case PGQ_MARK:
		a->n = (size_t)PQntuples(res);
		break;
	case PGQ_CLAIM:
		pgq_answer_claim(op, res, a);
		break;
	case PGQ_OPTOUT:
		pgq_answer_optout(op, res, a);
		break;
	case PGQ_ROUTE:
		pgq_answer_route(op, res, a);
		break;
	case PGQ_HEARTBEAT:
	case PGQ_RELEASE:
		a->n = (size_t)PQntuples(res);
		break;
	case PGQ_RELOCK:
		a->n = PQntuples(res) == 1 && pgr_get_text(res, 0, 0) != NULL &&
		    strcmp(pgr_get_text(res, 0, 0), "t") == 0;
		a->holder = a->n == 1 || PQntuples(res) != 1
		    ? 0
		    : (int)pgr_get_i64(res, 0, 1);
		break;
	case PGQ_EXPIRE:
		pgq_answer_expire(res, a);
		break;
	case PGQ_NEXT_DUE:
		a->n = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
		a->due_in_ms = a->n == 1 ? pgr_get_i64(res, 0, 0) : 0;
		break;
	case PGQ_EMAIL:
		a->n = PQntuples(res) == 1 && pgr_get_i64(res, 0, 0) == 1;
		break;
	case PGQ_MEMBER_OPTOUT:
		a->n = (size_t)PQntuples(res);
		break;
	}
	return true;
}

/* Frees what an answer lent the callback (not the messages). */
static void
pgq_answer_clear(struct pgq_answer *a)
{
	free(a->msgs);
	free((void *)a->ids);
	free((void *)a->sup);
	free((void *)a->moved);
}

static void
pgq_on_answer(void *arg, const struct pg_answer *pa)
{
	struct pgq_op *op = arg;
	struct pgq_answer a = {0};
	char err[512];
	size_t i;

	if (op->q != NULL && pa->error != NULL && op->kind == PGQ_SENT_LATE) {
		/* The sends are recorded; only kept reports wait (they are
		 * dropped an hour later, as on SQLite). */
		log_warnx("pgq_failed op=\"%s\" error=\"%s\"",
		    pgq_what[op->kind], pa->error);
		a.ids = op->ids;
		a.n = op->nids;
		op->ids = NULL;
	} else if (op->q != NULL && pa->error != NULL) {
		snprintf(err, sizeof(err), "%s: %s", pgq_what[op->kind],
		    pa->error);
		a.error = err;
		a.maybe_ran = pa->maybe_ran;
		if (op->kind == PGQ_ROUTE) /* unknown: not held */
			pgq_route_get(op->q, op->route)->deadline = 0;
	} else if (op->q != NULL &&
	    !pgq_answer_ok(op, pa->res, &a, err, sizeof(err)))
		return; /* op goes on with another statement */
	if (op->q != NULL) {
		LIST_REMOVE(op, entry);
		if (op->done != NULL)
			op->done(op->arg, &a);
		else if (a.error != NULL)
			log_warnx("pgq_failed op=\"%s\" error=\"%s\"",
			    pgq_what[op->kind], a.error);
	}
	/* Messages nobody took (no callback, or detached). */
	for (i = 0;
	     a.msgs != NULL && (op->q == NULL || op->done == NULL) && i < a.n;
	     i++)
		out_msg_free(a.msgs[i]);
	pgq_answer_clear(&a);
	pgq_op_free(op);
}
