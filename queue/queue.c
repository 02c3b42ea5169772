/*
 * queue.c - the outbound queue on the store: enqueue, claim with a lease,
 * the outcome of a send, recovery, expiry, and the read side the API and
 * /metrics need.
 *
 * Transitions: queue_edges[] is the one table of legal state changes
 * (doc/queue.md). Each change is a single UPDATE whose WHERE clause carries
 * the legal "from" states taken from that table, so SQL refuses what C
 * refuses; when the UPDATE matches nothing, the table is consulted again
 * only to explain why. Each change also appends a message_events row.
 *
 * Atomicity: an operation is one to a few statements inside the store's
 * group transaction. A statement that fails undoes itself (SQLite), so a
 * failure before any change needs nothing more. A failure after the
 * operation changed rows (say the history insert after the UPDATE) rolls
 * the whole group back: a half-done operation must never commit, and the
 * store then reports the group failed (ok = false to every waiting
 * callback, so no 202 is sent for it) and carries on with the next one.
 * Savepoints would confine the damage to one operation, but cost about a
 * third of enqueue's CPU (every page already dirty in the group is copied
 * to the savepoint journal); such failures are I/O errors, a full disk or
 * bugs, which doom the group anyway.
 *
 * Claims are per route (channel + sender) and walk the priorities present
 * in that route from the highest down, one index seek each (messages_due
 * is ordered by route, priority, then due time): a million messages
 * deferred to tomorrow cost a seek, not a scan.
 *
 * Batches: the dispatcher's hot path (a claim's history rows, a batch of
 * accepted sends, the send-time opt-out check) runs multi-row statements
 * of up to QUEUE_BATCH rows (queue_sql_init) instead of a statement per
 * message; their rows obey the same transition table.
 *
 * Inbound messages and delivery reports (webhooks) are in
 * queue_webhooks.c; queue-internal.h declares what the two files share.
 */
#include "autoconf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sqlite3.h>

#include "compat.h"
#include "log.h"
#include "queue.h"
#include "queue-internal.h"
#include "store-internal.h"
#include "xmalloc.h"

#define QUEUE_BIT(s)   (1u << (s))
#define QUEUE_FROM_MAX 3  /* most "from" states of any target (failed) */
#define QUEUE_BATCH    64 /* rows per multi-row statement (queue_sql_init) */

/* queue_edges[from] = the set of states 'from' may move to. */
static const unsigned queue_edges[MSG_ST_COUNT] = {
    [MSG_ST_QUEUED] = QUEUE_BIT(MSG_ST_SENDING) | QUEUE_BIT(MSG_ST_FAILED) |
	QUEUE_BIT(MSG_ST_EXPIRED) | QUEUE_BIT(MSG_ST_CANCELLED) |
	QUEUE_BIT(MSG_ST_SUPPRESSED),
    [MSG_ST_SENDING] = QUEUE_BIT(MSG_ST_SENT) | QUEUE_BIT(MSG_ST_QUEUED) |
	QUEUE_BIT(MSG_ST_FAILED) | QUEUE_BIT(MSG_ST_EXPIRED) |
	QUEUE_BIT(MSG_ST_CANCELLED) | QUEUE_BIT(MSG_ST_SUPPRESSED),
    [MSG_ST_SENT] = QUEUE_BIT(MSG_ST_DELIVERED) |
	QUEUE_BIT(MSG_ST_UNDELIVERED) | QUEUE_BIT(MSG_ST_FAILED),
};

/* The targets queue_mark() sets; the others have their own function. */
static const unsigned queue_mark_targets = QUEUE_BIT(MSG_ST_FAILED) |
    QUEUE_BIT(MSG_ST_EXPIRED) | QUEUE_BIT(MSG_ST_CANCELLED) |
    QUEUE_BIT(MSG_ST_SUPPRESSED) | QUEUE_BIT(MSG_ST_DELIVERED) |
    QUEUE_BIT(MSG_ST_UNDELIVERED);

/*
 * One transition. The UPDATE statements below share this numbering:
 * ?1 id, ?2..?4 legal from states, ?5 target, ?6 now, ?7 code, ?8 text,
 * ?9 provider, ?10 provider id, ?11 next attempt.
 */
struct queue_move {
	int64_t id;
	enum msg_status to;
	unsigned from_mask; /* legal from states for this function */
	int64_t now;
	int64_t next_attempt_at;
	const struct queue_result *r;
	const char *event_text; /* history text when r has none */
};

/* A claimed message. */
struct queue_claimed {
	int64_t conv; /* its conversation; 0 = none */
	struct out_msg *msg;
};

/* One history row of queue_events_batch(). */
struct queue_ev_row {
	int64_t id;
	int64_t conv; /* the message's conversation; 0 = none */
	int code;     /* 0 = none */
	const char *text;
};

/* What queue_sql_gen() writes: head, n rows of parameters, tail. */
struct queue_sqlgen {
	const char *head;
	const char *tail;
	int first;	/* number of the first row parameter */
	int per;	/* parameters per row */
	bool values;	/* each row in parentheses (VALUES), else an IN list */
	const char *fn; /* wraps each parameter ("lower"); NULL = none */
};

/* One queue_claim() call: the route, the clock and what was claimed. */
struct queue_claim {
	const char *channel; /* "sms" / "email" */
	const char *sender;  /* NULL for email */
	int64_t now;
	int64_t lease_until;
	int64_t prio; /* the priority the route queries look at (?3) */
	struct queue_claimed *c;
	size_t n;
	size_t max;
};

static const char queue_sql_rollback[] = "ROLLBACK";

static const char queue_sql_insert[] =
    "INSERT INTO messages (direction, channel, member_id, sender, to_addr,"
    " from_addr, subject, body, html, status, priority, next_attempt_at,"
    " alert_id, conversation_id, idempotency_key, not_before, expires_at,"
    " created_at, updated_at, encoding, segments, optout_exempt, staff_id)"
    " VALUES ('out', ?1, ?2,"
    " ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
    " ?16, ?16, ?17, ?18, ?19, ?20)"
    " ON CONFLICT (idempotency_key) DO NOTHING";
static const char queue_sql_by_key[] =
    "SELECT id FROM messages WHERE idempotency_key = ?1";
static const char queue_sql_event[] =
    "INSERT INTO message_events (message_id, status, code, text,"
    " created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
/* queue_observe(): is the message in a conversation? */
static const char queue_sql_conv_of[] =
    "SELECT conversation_id FROM messages WHERE id = ?1";

static const char queue_sql_sent[] =
    "UPDATE messages SET status = ?5, attempts = attempts + 1,"
    " lease_until = NULL, provider = ?9, provider_message_id = ?10,"
    " error_code = NULL, error_text = NULL, updated_at = ?6"
    " WHERE id = ?1 AND status IN (?2, ?3, ?4)";
static const char queue_sql_retry[] =
    "UPDATE messages SET status = ?5, attempts = attempts + 1,"
    " next_attempt_at = ?11, lease_until = NULL, error_code = ?7,"
    " error_text = ?8, updated_at = ?6"
    " WHERE id = ?1 AND status IN (?2, ?3, ?4)";
static const char queue_sql_release_msg[] =
    "UPDATE messages SET status = ?5, lease_until = NULL, updated_at = ?6"
    " WHERE id = ?1 AND status IN (?2, ?3, ?4)";
/* A provider's refusal (sending -> failed) was an attempt; the other
 * marks (opt-out or expiry found before sending) were not. */
static const char queue_sql_mark[] =
    "UPDATE messages SET status = ?5, lease_until = NULL,"
    " attempts = attempts + (status = 'sending' AND ?5 = 'failed'),"
    " error_code = coalesce(?7, error_code),"
    " error_text = coalesce(?8, error_text), updated_at = ?6"
    " WHERE id = ?1 AND status IN (?2, ?3, ?4)";

/*
 * Claims, per route. The literal 'queued' lets SQLite use the partial
 * index messages_due (channel, sender, priority DESC, next_attempt_at);
 * "sender IS ?2" matches the NULL sender of email. ?1 channel, ?2 sender,
 * ?3 priority.
 */
static const char queue_sql_prio_first[] =
    "SELECT max(priority) FROM messages WHERE status = 'queued'"
    " AND channel = ?1 AND sender IS ?2";
static const char queue_sql_prio_next[] =
    "SELECT max(priority) FROM messages WHERE status = 'queued'"
    " AND channel = ?1 AND sender IS ?2 AND priority < ?3";
static const char queue_sql_prio_due[] =
    "SELECT min(next_attempt_at) FROM messages WHERE status = 'queued'"
    " AND channel = ?1 AND sender IS ?2 AND priority = ?3";
/*
 * A claim reads the due rows in order, then moves them with
 * queue_sql_claim_batch, inside one write transaction. Not one UPDATE ...
 * RETURNING: SQLite 3.40 runs RETURNING as a trigger program per row,
 * 7,000 instructions a claimed message (bench/README.md, 2026-12-08).
 */
static const char queue_sql_claim[] =
    "SELECT id, channel, priority, attempts, member_id, alert_id,"
    " created_at, expires_at, sender, to_addr, from_addr, subject, body,"
    " html, optout_exempt, conversation_id FROM messages"
    " WHERE status = 'queued' AND channel = ?1 AND sender IS ?2"
    " AND priority = ?3 AND next_attempt_at <= ?4"
    " ORDER BY next_attempt_at, id LIMIT ?5";
/* Uses the partial index messages_next_due. */
static const char queue_sql_next_due[] =
    "SELECT min(next_attempt_at) FROM messages WHERE status = 'queued'";

/*
 * The rows in flight, found through messages_status (channel, status):
 * naming both channels lets SQLite seek it (migration 015 dropped the
 * index of lease_until that each claim and result kept up).
 */
#define QUEUE_SENDING "channel IN ('sms', 'email') AND status = 'sending'"
static const char queue_sql_any_sending[] =
    "SELECT 1 FROM messages WHERE " QUEUE_SENDING " LIMIT 1";
static const char queue_sql_recover[] =
    "UPDATE messages SET status = 'queued', lease_until = NULL,"
    " updated_at = ?1 WHERE " QUEUE_SENDING " RETURNING id";
static const char queue_sql_any_lease_over[] =
    "SELECT 1 FROM messages WHERE " QUEUE_SENDING " AND lease_until < ?1"
    " LIMIT 1";
static const char queue_sql_reclaim[] =
    "UPDATE messages SET status = 'queued', lease_until = NULL,"
    " updated_at = ?1 WHERE " QUEUE_SENDING " AND lease_until < ?1"
    " RETURNING id";
static const char queue_sql_any_expired[] =
    "SELECT 1 FROM messages WHERE status = 'queued'"
    " AND expires_at IS NOT NULL AND expires_at <= ?1 LIMIT 1";
static const char queue_sql_expire[] =
    "UPDATE messages SET status = 'expired', updated_at = ?1"
    " WHERE status = 'queued' AND expires_at IS NOT NULL"
    " AND expires_at <= ?1 RETURNING id, channel, sender";

/* ?2 = alert id; a chunk at a time, so one call stays short. */
static const char queue_sql_cancel_alert[] =
    "UPDATE messages SET status = 'cancelled', updated_at = ?1"
    " WHERE id IN (SELECT id FROM messages WHERE alert_id = ?2"
    " AND status = 'queued' LIMIT 5000) RETURNING id, channel, sender";

static const char queue_sql_status[] =
    "SELECT status FROM messages WHERE id = ?1";
/* queue_mark_sent_batch(): is any delivery report kept at all? */
static const char queue_sql_any_early[] = "SELECT 1 FROM status_early LIMIT 1";

/*
 * The multi-row statements, written once by queue_sql_init() with
 * QUEUE_BATCH rows of parameters each; parameters left unbound are NULL,
 * which matches no row (an IN list, an id) or is skipped (events' WHERE).
 * Their buffers' addresses key the statement cache as the literals'
 * do. queue_sql_claim_batch: ?1 lease end, ?2 now, then the ids.
 * queue_sql_sent_batch: ?1 now, then per row id, provider, provider
 * id ('sending' is the one state that may move to sent); the rows it
 * will move are read first by queue_sql_sent_rows (the ids). Events: ?1
 * status, ?2 now, then per row id, code, text.
 */
static char queue_sql_claim_batch[1024];
static char queue_sql_sent_batch[2048];
static char queue_sql_sent_rows[1024];
static char queue_sql_events_batch[2048];
static char queue_sql_sms_optout_batch[1024];
static char queue_sql_email_optout_batch[2048];
static bool queue_sql_ready;
static const char queue_sql_counts[] =
    "SELECT channel, status, count(*) FROM messages GROUP BY channel, status";
static const char queue_sql_sms_optout[] =
    "SELECT 1 FROM members m JOIN sms_optout o ON o.member_id = m.id"
    " WHERE m.phone = ?1";
static const char queue_sql_email_optout[] =
    "SELECT 1 FROM members m LEFT JOIN email_optout o ON o.member_id = m.id"
    " WHERE m.email = lower(?1) AND (o.member_id IS NOT NULL"
    " OR m.bouncing = 1)";
static const char queue_sql_json_msg[] =
    "SELECT id, channel, to_addr, from_addr, subject, body, status,"
    " priority, attempts, provider, provider_message_id, error_code,"
    " error_text, created_at, updated_at, encoding, segments, not_before,"
    " expires_at, alert_id FROM messages WHERE id = ?1";
static const char queue_sql_json_events[] =
    "SELECT status, created_at, code, text FROM message_events"
    " WHERE message_id = ?1 ORDER BY id";

static bool queue_edge_is_legal(int, int);
static unsigned queue_from_mask(enum msg_status);
static int queue_exec(struct store *, const char *, char *, size_t);
static int queue_insert(struct store *, const struct queue_new *, int64_t,
    struct queue_stored *, char *, size_t);
static int queue_move_run(struct store *, const char *,
    const struct queue_move *, char *, size_t);
static int queue_move_row(struct store *, const char *,
    const struct queue_move *, bool *, char *, size_t);
static int queue_refusal(struct store *, const struct queue_move *, char *,
    size_t);
static int queue_int_query(struct store *, const char *, int64_t, int64_t *,
    char *, size_t);
static int queue_route_query(struct store *, const char *,
    const struct queue_claim *, int64_t *, char *, size_t);
static int queue_claim_prio(struct store *, struct queue_claim *, int64_t,
    char *, size_t);
static struct out_msg *queue_out_from_row(sqlite3_stmt *);
static int queue_claim_move(struct store *, const struct queue_claim *, size_t,
    char *, size_t);
static int queue_claim_events(struct store *, const struct queue_claim *,
    char *, size_t);
struct queue_bulk_op;
static ssize_t queue_bulk(struct store *, const struct queue_bulk_op *, int64_t,
    char *, size_t);
static json_t *queue_json_history(struct store *, int64_t, char *, size_t);
static void queue_observed(struct store *, int64_t, enum msg_status);
static void queue_notify(struct store *, int64_t, enum msg_status, int64_t);
static int queue_event_insert(struct store *, int64_t,
    const struct queue_event *, char *, size_t);
static void queue_sql_init(void);
static void queue_sql_gen(char *, size_t, const struct queue_sqlgen *);
static int queue_events_batch(struct store *, const struct queue_ev_row *,
    size_t, const struct queue_event *, char *, size_t);
static int queue_sent_chunk(struct store *, struct queue_sent *, size_t,
    int64_t, struct queue_ev_row *, size_t *, char *, size_t);
static int queue_sent_early(struct store *, const struct queue_sent *, size_t,
    int64_t, char *, size_t);
static int queue_optout_chunk(struct store *, enum channel, const char *const *,
    size_t, bool *, char *, size_t);

static bool
queue_edge_is_legal(int from, int to)
{
	if (from < 0 || from >= MSG_ST_COUNT || to < 0 || to >= MSG_ST_COUNT)
		return false;
	return (queue_edges[from] & QUEUE_BIT(to)) != 0;
}

/* The states that may move to 'to', as a bit set. */
static unsigned
queue_from_mask(enum msg_status to)
{
	unsigned mask = 0;
	int from;

	for (from = 0; from < MSG_ST_COUNT; from++)
		if (queue_edge_is_legal(from, to))
			mask |= QUEUE_BIT(from);
	return mask;
}

/* Runs a cached statement whose rows, if any, are not needed. */
static int
queue_exec(struct store *st, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	return queue_step_done(st, stmt, sql, err, errlen);
}

/* Steps a write to completion and resets it. */
int
queue_step_done(struct store *st, sqlite3_stmt *stmt, const char *what,
    char *err, size_t errlen)
{
	int rc;

	rc = sqlite3_step(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_errmsg(st, what, err, errlen);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	return 0;
}

/* Joins (or opens) the group transaction before an operation's writes. */
int
queue_op_begin(struct store *st, char *err, size_t errlen)
{
	return store_write_begin(st, err, errlen);
}

/*
 * Ends an operation: if it failed (rc == -1) after changing rows
 * ('wrote'), rolls the group back (see the top of the file). Returns rc;
 * err still says what failed.
 */
int
queue_op_end(struct store *st, int rc, bool wrote)
{
	char ignored[256]; /* err already holds the failure that matters */

	if (rc == -1 && wrote && !sqlite3_get_autocommit(store_db(st)))
		(void)queue_exec(st, queue_sql_rollback, ignored,
		    sizeof(ignored));
	return rc;
}

/* Binds text, or NULL for a NULL pointer. The string must outlive step. */
void
queue_bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, i);
}

/* Binds an optional id or time: 0 means none (NULL). */
void
queue_bind_id(sqlite3_stmt *stmt, int i, int64_t v)
{
	if (v != 0)
		sqlite3_bind_int64(stmt, i, v);
	else
		sqlite3_bind_null(stmt, i);
}

/* The fields out_msg holds in fixed arrays are checked here, once. */
int
queue_check_new(const struct queue_new *m, char *err, size_t errlen)
{
	if (m->channel != CHANNEL_SMS && m->channel != CHANNEL_EMAIL) {
		snprintf(err, errlen, "channel: unknown channel %d",
		    (int)m->channel);
		return -1;
	}
	if (m->to == NULL || *m->to == '\0') {
		snprintf(err, errlen, "to: required");
		return -1;
	}
	if (m->body == NULL) {
		snprintf(err, errlen, "body: required");
		return -1;
	}
	if (strlen(m->to) >= MSG_ADDR_MAX ||
	    (m->from != NULL && strlen(m->from) >= MSG_ADDR_MAX)) {
		snprintf(err, errlen, "%s: longer than %d bytes",
		    strlen(m->to) >= MSG_ADDR_MAX ? "to" : "from",
		    MSG_ADDR_MAX - 1);
		return -1;
	}
	/* An SMS without a sender would match no claim route: stuck. */
	if (m->channel == CHANNEL_SMS &&
	    (m->sender == NULL || *m->sender == '\0')) {
		snprintf(err, errlen, "sender: required for SMS");
		return -1;
	}
	if (m->sender != NULL && strlen(m->sender) >= MSG_SENDER_MAX) {
		snprintf(err, errlen, "sender: longer than %d bytes",
		    MSG_SENDER_MAX - 1);
		return -1;
	}
	return 0;
}

/*
 * Inserts the message, or finds the one that already holds its
 * idempotency key. A message is due at max(now, not_before).
 */
int
queue_enqueue(struct store *st, const struct queue_new *m, int64_t now,
    struct queue_stored *out, char *err, size_t errlen)
{
	int rc;

	out->dup = false;
	if (queue_check_new(m, err, errlen) == -1)
		return -1;
	if (queue_op_begin(st, err, errlen) == -1)
		return -1;
	if (queue_insert(st, m, now, out, err, errlen) == -1)
		return -1;
	if (out->dup)
		return 0;
	/* the conversation is known: no lookup as queue_event_add() does */
	rc = queue_event_insert(st, out->id,
	    &(struct queue_event){.status = MSG_ST_QUEUED, .now = now}, err,
	    errlen);
	if (rc == 0)
		queue_notify(st, out->id, MSG_ST_QUEUED, m->conversation_id);
	return queue_op_end(st, rc, true);
}

static int
queue_insert(struct store *st, const struct queue_new *m, int64_t now,
    struct queue_stored *out, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	bool found;

	if ((stmt = store_stmt(st, queue_sql_insert, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, channel_to_text(m->channel), -1,
	    SQLITE_STATIC);
	queue_bind_id(stmt, 2, m->member_id);
	/* Email routes have no sender; claims match "sender IS NULL". */
	queue_bind_text(stmt, 3, m->channel == CHANNEL_SMS ? m->sender : NULL);
	queue_bind_text(stmt, 4, m->to);
	queue_bind_text(stmt, 5, m->from);
	queue_bind_text(stmt, 6, m->subject);
	queue_bind_text(stmt, 7, m->body);
	queue_bind_text(stmt, 8, m->html);
	sqlite3_bind_int(stmt, 9, m->priority);
	sqlite3_bind_int64(stmt, 10, m->not_before > now ? m->not_before : now);
	queue_bind_id(stmt, 11, m->alert_id);
	queue_bind_id(stmt, 12, m->conversation_id);
	queue_bind_text(stmt, 13, m->idempotency_key);
	queue_bind_id(stmt, 14, m->not_before);
	queue_bind_id(stmt, 15, m->expires_at);
	sqlite3_bind_int64(stmt, 16, now);
	queue_bind_text(stmt, 17, m->encoding);
	queue_bind_id(stmt, 18, m->segments);
	sqlite3_bind_int(stmt, 19, m->optout_exempt ? 1 : 0);
	queue_bind_id(stmt, 20, m->staff_id);
	if (queue_step_done(st, stmt, "insert message", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 1) {
		out->id = sqlite3_last_insert_rowid(store_db(st));
		return 0;
	}
	/* ON CONFLICT DO NOTHING: the key is taken. */
	if (m->idempotency_key == NULL) {
		snprintf(err, errlen, "insert message: no row inserted");
		return -1;
	}
	if ((stmt = store_stmt(st, queue_sql_by_key, err, errlen)) == NULL)
		return -1;
	queue_bind_text(stmt, 1, m->idempotency_key);
	if (queue_int_row(st, stmt, &out->id, &found, err, errlen) == -1)
		return -1;
	if (!found) {
		snprintf(err, errlen, "idempotency key conflict without a row");
		return -1;
	}
	out->dup = true;
	return 0;
}

/*
 * Runs a cached one-column integer query with ?1 = arg1 (if used) into
 * *out. Returns 1, 0 when there is no row or the value is NULL, or -1.
 */
static int
queue_int_query(struct store *st, const char *sql, int64_t arg1, int64_t *out,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	bool found;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	if (sqlite3_bind_parameter_count(stmt) >= 1)
		sqlite3_bind_int64(stmt, 1, arg1);
	if (queue_int_row(st, stmt, out, &found, err, errlen) == -1)
		return -1;
	return found ? 1 : 0;
}

/*
 * Steps a bound one-column query and resets it. *found is false when
 * there is no row or the value is NULL (an aggregate over no rows).
 */
int
queue_int_row(struct store *st, sqlite3_stmt *stmt, int64_t *out, bool *found,
    char *err, size_t errlen)
{
	int rc;

	*found = false;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
		*out = sqlite3_column_int64(stmt, 0);
		*found = true;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_errmsg(st, "query", err, errlen);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	return 0;
}

/* Appends message id's history row (queue-internal.h). */
int
queue_event_add(struct store *st, int64_t id, const struct queue_event *ev,
    char *err, size_t errlen)
{
	if (queue_event_insert(st, id, ev, err, errlen) == -1)
		return -1;
	queue_observed(st, id, ev->status);
	return 0;
}

/* The history row alone, without telling the queue_observe() hook. */
static int
queue_event_insert(struct store *st, int64_t id, const struct queue_event *ev,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, queue_sql_event, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, msg_status_to_text(ev->status), -1,
	    SQLITE_STATIC);
	queue_bind_id(stmt, 3, ev->code);
	queue_bind_text(stmt, 4, ev->text);
	sqlite3_bind_int64(stmt, 5, ev->now);
	return queue_step_done(st, stmt, "insert message event", err, errlen);
}

/* Writes the multi-row statements once (see queue_sql_sent_batch). */
static void
queue_sql_init(void)
{
	if (queue_sql_ready)
		return;
	queue_sql_gen(queue_sql_claim_batch, sizeof(queue_sql_claim_batch),
	    &(struct queue_sqlgen){
		.head = "UPDATE messages SET status = 'sending', lease_until"
			" = ?1, updated_at = ?2 WHERE status = 'queued'"
			" AND id IN (",
		.tail = ")",
		.first = 3,
		.per = 1});
	queue_sql_gen(queue_sql_sent_batch, sizeof(queue_sql_sent_batch),
	    &(struct queue_sqlgen){
		.head = "UPDATE messages SET status = 'sent',"
			" attempts = attempts + 1, lease_until = NULL,"
			" provider = v.column2, provider_message_id = "
			"v.column3,"
			" error_code = NULL, error_text = NULL, updated_at = ?1"
			" FROM (VALUES ",
		.tail = ") AS v WHERE messages.id = v.column1"
			" AND messages.status = 'sending'",
		.first = 2,
		.per = 3,
		.values = true});
	queue_sql_gen(queue_sql_sent_rows, sizeof(queue_sql_sent_rows),
	    &(struct queue_sqlgen){
		.head = "SELECT id, conversation_id FROM messages"
			" WHERE status = 'sending' AND id IN (",
		.tail = ")",
		.first = 1,
		.per = 1});
	queue_sql_gen(queue_sql_events_batch, sizeof(queue_sql_events_batch),
	    &(struct queue_sqlgen){
		.head = "INSERT INTO message_events (message_id, status, code,"
			" text, created_at) SELECT column1, ?1, column2,"
			" column3, ?2 FROM (VALUES ",
		.tail = ") WHERE column1 IS NOT NULL",
		.first = 3,
		.per = 3,
		.values = true});
	queue_sql_gen(queue_sql_sms_optout_batch,
	    sizeof(queue_sql_sms_optout_batch),
	    &(struct queue_sqlgen){
		.head = "SELECT m.phone FROM members m JOIN sms_optout o"
			" ON o.member_id = m.id WHERE m.phone IN (",
		.tail = ")",
		.first = 1,
		.per = 1});
	queue_sql_gen(queue_sql_email_optout_batch,
	    sizeof(queue_sql_email_optout_batch),
	    &(struct queue_sqlgen){
		.head = "SELECT m.email FROM members m LEFT JOIN email_optout o"
			" ON o.member_id = m.id WHERE m.email IN (",
		.tail = ") AND (o.member_id IS NOT NULL OR m.bouncing = 1)",
		.first = 1,
		.per = 1,
		.fn = "lower"});
	queue_sql_ready = true;
}

/* g->head, QUEUE_BATCH rows of g->per parameters, g->tail into buf. */
static void
queue_sql_gen(char *buf, size_t len, const struct queue_sqlgen *g)
{
	size_t used;
	int row, k, p = g->first;

	used = strlcpy(buf, g->head, len);
	for (row = 0; row < QUEUE_BATCH && used < len; row++) {
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
		    row > 0 ? "," : "", g->values ? "(" : "");
		for (k = 0; k < g->per && used < len; k++, p++)
			used += (size_t)snprintf(buf + used, len - used,
			    "%s%s%s?%d%s", k > 0 ? "," : "", g->fn ? g->fn : "",
			    g->fn ? "(" : "", p, g->fn ? ")" : "");
		if (g->values && used < len)
			used = strlcat(buf, ")", len);
	}
	if (used >= len || strlcat(buf, g->tail, len) >= len)
		fatalx("queue_sql_gen: statement longer than %zu bytes", len);
}

/*
 * Appends the history rows of n messages that moved to ev->status (one
 * statement per QUEUE_BATCH), then tells the queue_observe() hook of
 * those in a conversation. ev->code and ev->text are unused: each row
 * has its own.
 */
static int
queue_events_batch(struct store *st, const struct queue_ev_row *rows, size_t n,
    const struct queue_event *ev, char *err, size_t errlen)
{
	struct store_hook *h = store_msg_hook(st);
	sqlite3_stmt *stmt;
	size_t off, k;
	int p;

	queue_sql_init();
	for (off = 0; off < n; off += QUEUE_BATCH) {
		if ((stmt = store_stmt(st, queue_sql_events_batch, err,
			 errlen)) == NULL)
			return -1;
		sqlite3_bind_text(stmt, 1, msg_status_to_text(ev->status), -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, ev->now);
		for (k = 0, p = 3; k < QUEUE_BATCH && off + k < n;
		     k++, p += 3) {
			sqlite3_bind_int64(stmt, p, rows[off + k].id);
			queue_bind_id(stmt, p + 1, rows[off + k].code);
			queue_bind_text(stmt, p + 2, rows[off + k].text);
		}
		if (queue_step_done(st, stmt, "insert message events", err,
			errlen) == -1)
			return -1;
	}
	for (k = 0; h->fn != NULL && k < n; k++)
		if (rows[k].conv != 0)
			h->fn(h->arg,
			    &(struct queue_change){.id = rows[k].id,
				.conversation = rows[k].conv,
				.status = ev->status});
	return 0;
}

void
queue_observe(struct store *st, queue_observe_fn *fn, void *arg)
{
	struct store_hook *h = store_msg_hook(st);

	h->fn = fn;
	h->arg = arg;
}

/*
 * Tells the queue_observe() hook of message id's new status when the
 * message is in a conversation. A received message is not yet (inbound.c
 * links it later). The lookup failing only loses the notice.
 */
static void
queue_observed(struct store *st, int64_t id, enum msg_status status)
{
	struct store_hook *h = store_msg_hook(st);
	struct queue_change c = {.id = id, .status = status};
	sqlite3_stmt *stmt;
	char ignored[128];
	bool found;

	if (h->fn == NULL || status == MSG_ST_RECEIVED ||
	    (stmt = store_stmt(st, queue_sql_conv_of, ignored,
		 sizeof(ignored))) == NULL)
		return;
	sqlite3_bind_int64(stmt, 1, id);
	if (queue_int_row(st, stmt, &c.conversation, &found, ignored,
		sizeof(ignored)) == 0 &&
	    found)
		h->fn(h->arg, &c);
}

/* The same notice for a message whose conversation is known (0: none). */
static void
queue_notify(struct store *st, int64_t id, enum msg_status status,
    int64_t conversation)
{
	struct store_hook *h = store_msg_hook(st);

	if (h->fn != NULL && conversation != 0)
		h->fn(h->arg,
		    &(struct queue_change){.id = id,
			.status = status,
			.conversation = conversation});
}

/* Runs one transition as its own operation. */
static int
queue_move_run(struct store *st, const char *sql, const struct queue_move *mv,
    char *err, size_t errlen)
{
	bool wrote = false;
	int rc;

	if (mv->from_mask == 0)
		return queue_refusal(st, mv, err, errlen);
	if (queue_op_begin(st, err, errlen) == -1)
		return -1;
	rc = queue_move_row(st, sql, mv, &wrote, err, errlen);
	return queue_op_end(st, rc, wrote);
}

/*
 * Binds the shared parameters (see struct queue_move), runs the UPDATE
 * (setting *wrote if it changed the row) and records the history row.
 * Parameters a statement does not use are skipped.
 */
static int
queue_move_row(struct store *st, const char *sql, const struct queue_move *mv,
    bool *wrote, char *err, size_t errlen)
{
	const struct queue_result *r = mv->r;
	struct queue_event ev;
	sqlite3_stmt *stmt;
	int nparams;
	int slot = 2;
	int from;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	nparams = sqlite3_bind_parameter_count(stmt);
	sqlite3_bind_int64(stmt, 1, mv->id);
	for (from = 0; from < MSG_ST_COUNT && slot <= 1 + QUEUE_FROM_MAX;
	     from++)
		if (mv->from_mask & QUEUE_BIT(from))
			sqlite3_bind_text(stmt, slot++,
			    msg_status_to_text(from), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, msg_status_to_text(mv->to), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, mv->now);
	if (nparams >= 8) {
		queue_bind_id(stmt, 7, r != NULL ? r->code : 0);
		queue_bind_text(stmt, 8, r != NULL ? r->text : NULL);
	}
	if (nparams >= 10) {
		queue_bind_text(stmt, 9, r != NULL ? r->provider : NULL);
		queue_bind_text(stmt, 10, r != NULL ? r->provider_id : NULL);
	}
	if (nparams >= 11)
		sqlite3_bind_int64(stmt, 11, mv->next_attempt_at);
	if (queue_step_done(st, stmt, "update message", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return queue_refusal(st, mv, err, errlen);
	*wrote = true;
	ev.status = mv->to;
	ev.code = r != NULL ? r->code : 0;
	ev.text = r != NULL && r->text != NULL ? r->text : mv->event_text;
	ev.now = mv->now;
	return queue_event_add(st, mv->id, &ev, err, errlen);
}

/*
 * Explains a refused transition: the message is absent, the edge is not
 * in queue_edges[], or (queue_mark() only) the edge exists but belongs to
 * another function, which needs a lease or provider fields.
 */
static int
queue_refusal(struct store *st, const struct queue_move *mv, char *err,
    size_t errlen)
{
	char qerr[256] = "";
	int cur;

	cur = queue_status(st, mv->id, qerr, sizeof(qerr));
	if (cur == -1 && qerr[0] != '\0')
		snprintf(err, errlen, "%s", qerr);
	else if (cur == -1)
		snprintf(err, errlen, "no message %lld", (long long)mv->id);
	else if (queue_edge_is_legal(cur, mv->to))
		snprintf(err, errlen,
		    "queue_mark cannot move message %lld from %s to %s; use queue_claim, queue_mark_sent, queue_mark_retry or queue_release",
		    (long long)mv->id, msg_status_to_text(cur),
		    msg_status_to_text(mv->to));
	else
		snprintf(err, errlen,
		    "illegal transition %s -> %s for message %lld",
		    msg_status_to_text(cur), msg_status_to_text(mv->to),
		    (long long)mv->id);
	return -1;
}

/*
 * sending -> sent: records provider and provider message id, counts the
 * attempt, clears the lease and any earlier transient error. Then applies
 * a delivery report kept for this message (queue_status_update() could
 * not place it yet), in the same group. 0 / -1.
 */
int
queue_mark_sent(struct store *st, int64_t id, const struct queue_result *r,
    int64_t now, char *err, size_t errlen)
{
	struct queue_move mv = {.id = id,
	    .to = MSG_ST_SENT,
	    .now = now,
	    .r = r};
	bool wrote = false;
	int rc;

	mv.from_mask = queue_from_mask(mv.to);
	if (queue_op_begin(st, err, errlen) == -1)
		return -1;
	rc = queue_move_row(st, queue_sql_sent, &mv, &wrote, err, errlen);
	/* A delivery report may have overtaken the provider's answer. */
	if (rc == 0 && r != NULL && r->provider != NULL)
		rc = queue_early_apply(st, id, r, now, err, errlen);
	return queue_op_end(st, rc, wrote);
}

/*
 * queue_mark_sent() for many messages (queue.h): the rows move in one
 * UPDATE ... FROM (VALUES ...) per QUEUE_BATCH, their history rows go in
 * one INSERT per QUEUE_BATCH, and the kept delivery reports are looked
 * for only when any is kept at all.
 */
ssize_t
queue_mark_sent_batch(struct store *st, struct queue_sent *v, size_t n,
    int64_t now, char *err, size_t errlen)
{
	struct queue_ev_row *rows;
	size_t off, chunk, nrows = 0;
	int rc = 0;

	for (off = 0; off < n; off++)
		v[off].ok = false;
	if (n == 0)
		return 0;
	queue_sql_init();
	if (queue_op_begin(st, err, errlen) == -1)
		return -1;
	rows = xreallocarray(NULL, n, sizeof(*rows));
	for (off = 0; rc == 0 && off < n; off += chunk) {
		chunk = n - off < QUEUE_BATCH ? n - off : QUEUE_BATCH;
		rc = queue_sent_chunk(st, v + off, chunk, now, rows, &nrows,
		    err, errlen);
	}
	if (rc == 0 && nrows > 0)
		rc = queue_events_batch(st, rows, nrows,
		    &(struct queue_event){.status = MSG_ST_SENT, .now = now},
		    err, errlen);
	if (rc == 0 && nrows > 0)
		rc = queue_sent_early(st, v, n, now, err, errlen);
	free(rows);
	if (queue_op_end(st, rc, nrows > 0) == -1)
		return -1;
	return (ssize_t)nrows;
}

/*
 * One UPDATE for v[0..n-1] (n <= QUEUE_BATCH): marks each row it moves
 * ok and appends its history row to rows[*nrows]. The rows that will
 * move (those still sending) are read first, in the same transaction,
 * rather than returned by the UPDATE (see queue_sql_claim on RETURNING).
 */
static int
queue_sent_chunk(struct store *st, struct queue_sent *v, size_t n, int64_t now,
    struct queue_ev_row *rows, size_t *nrows, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	size_t k, found = 0;
	int64_t id;
	int p, rc, moved;

	if ((stmt = store_stmt(st, queue_sql_sent_rows, err, errlen)) == NULL)
		return -1;
	for (k = 0; k < n; k++)
		sqlite3_bind_int64(stmt, 1 + (int)k, v[k].id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		id = sqlite3_column_int64(stmt, 0);
		for (k = 0; k < n && (v[k].id != id || v[k].ok); k++)
			;
		if (k == n)
			continue; /* cannot happen: the rows are v's */
		v[k].ok = true;
		found++;
		rows[(*nrows)++] = (struct queue_ev_row){.id = id,
		    .conv = sqlite3_column_int64(stmt, 1),
		    .code = v[k].code,
		    .text = v[k].text};
	}
	if (rc != SQLITE_DONE)
		store_errmsg(st, "read messages sending", err, errlen);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return -1;
	if (found == 0)
		return 0;
	if ((stmt = store_stmt(st, queue_sql_sent_batch, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, now);
	for (k = 0, p = 2; k < n; k++, p += 3) {
		sqlite3_bind_int64(stmt, p, v[k].id);
		queue_bind_text(stmt, p + 1, v[k].provider);
		queue_bind_text(stmt, p + 2, v[k].provider_id);
	}
	rc = queue_step_done(st, stmt, "update messages to sent", err, errlen);
	if (rc == -1)
		return -1;
	if ((moved = sqlite3_changes(store_db(st))) != (int)found) {
		snprintf(err, errlen,
		    "update messages to sent: %d of %zu sending moved", moved,
		    found);
		return -1;
	}
	return 0;
}

/*
 * Delivery reports that overtook the provider's answer (kept in
 * status_early): applied to the messages just recorded, as
 * queue_mark_sent() does, when any report is kept at all.
 */
static int
queue_sent_early(struct store *st, const struct queue_sent *v, size_t n,
    int64_t now, char *err, size_t errlen)
{
	int64_t one;
	size_t i;
	int rc;

	rc = queue_int_query(st, queue_sql_any_early, 0, &one, err, errlen);
	for (i = 0; rc == 1 && i < n; i++) {
		if (!v[i].ok || v[i].provider == NULL)
			continue;
		if (queue_early_apply(st, v[i].id,
			&(struct queue_result){.provider = v[i].provider,
			    .provider_id = v[i].provider_id},
			now, err, errlen) == -1)
			rc = -1;
	}
	return rc == -1 ? -1 : 0;
}

/*
 * sending -> queued, due again at r->next_attempt_at: counts the attempt
 * and keeps r's code and text as the message's error. 0 / -1.
 */
int
queue_mark_retry(struct store *st, int64_t id, const struct queue_result *r,
    int64_t now, char *err, size_t errlen)
{
	struct queue_move mv = {.id = id,
	    .to = MSG_ST_QUEUED,
	    .now = now,
	    .next_attempt_at = r->next_attempt_at,
	    .r = r,
	    .event_text = "retry"};

	mv.from_mask = queue_from_mask(mv.to);
	return queue_move_run(st, queue_sql_retry, &mv, err, errlen);
}

/*
 * The final states and the status-callback edges, to r->to. Targets that
 * need more than a status (queued, sending, sent) are refused with a
 * pointer to the right function; r's code and text are recorded when set.
 */
int
queue_mark(struct store *st, int64_t id, const struct queue_result *r,
    int64_t now, char *err, size_t errlen)
{
	enum msg_status to = r->to;
	struct queue_move mv = {.id = id, .to = to, .now = now, .r = r};

	if ((unsigned)to >= MSG_ST_COUNT) {
		snprintf(err, errlen, "queue_mark: unknown status %d", (int)to);
		return -1;
	}
	if (queue_mark_targets & QUEUE_BIT(to))
		mv.from_mask = queue_from_mask(to);
	return queue_move_run(st, queue_sql_mark, &mv, err, errlen);
}

/* sending -> queued, due at once, attempt not counted. 0 / -1. */
int
queue_release(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen)
{
	struct queue_move mv = {.id = id,
	    .to = MSG_ST_QUEUED,
	    .now = now,
	    .event_text = "released"};

	mv.from_mask = queue_from_mask(mv.to);
	return queue_move_run(st, queue_sql_release_msg, &mv, err, errlen);
}

/*
 * Claims due messages of one route, priority by priority, highest first.
 * Only reads run until something is due, so an idle tick opens no
 * transaction (and costs no commit). The output is ordered by priority,
 * then due time, then id.
 */
ssize_t
queue_claim(struct store *st, const struct queue_claim_req *req,
    struct out_msg **out, char *err, size_t errlen)
{
	int64_t now = req->now;
	size_t max = req->max;
	struct queue_claim q = {.channel = channel_to_text(req->ch),
	    .sender = req->ch == CHANNEL_EMAIL ? NULL : req->sender,
	    .now = now,
	    .lease_until = now + (int64_t)req->lease_ms,
	    .max = max};
	size_t i;
	int64_t prio;
	int64_t due;
	int have;
	int found;
	bool open = false;
	int rc = 0;

	have =
	    queue_route_query(st, queue_sql_prio_first, &q, &prio, err, errlen);
	if (have == -1)
		rc = -1;
	while (rc == 0 && have == 1 && q.n < max) {
		q.prio = prio;
		found = queue_route_query(st, queue_sql_prio_due, &q, &due, err,
		    errlen);
		if (found == -1)
			rc = -1;
		if (found == 1 && due <= now) {
			if (!open) {
				q.c = xreallocarray(NULL, max, sizeof(*q.c));
				if ((rc = queue_op_begin(st, err, errlen)) ==
				    -1)
					break;
				open = true;
			}
			rc = queue_claim_prio(st, &q, prio, err, errlen);
		}
		if (rc == 0 && q.n < max) {
			have = queue_route_query(st, queue_sql_prio_next, &q,
			    &prio, err, errlen);
			if (have == -1)
				rc = -1;
		}
	}
	if (rc == 0 && q.n > 0)
		rc = queue_claim_events(st, &q, err, errlen);
	if (open)
		rc = queue_op_end(st, rc, q.n > 0);
	for (i = 0; i < q.n; i++) {
		if (rc == 0)
			out[i] = q.c[i].msg;
		else
			out_msg_free(q.c[i].msg);
	}
	free(q.c);
	return rc == 0 ? (ssize_t)q.n : -1;
}

/* The claimed messages' history rows ("sending"), a batch at a time. */
static int
queue_claim_events(struct store *st, const struct queue_claim *q, char *err,
    size_t errlen)
{
	struct queue_ev_row *rows = xreallocarray(NULL, q->n, sizeof(*rows));
	size_t i;
	int rc;

	for (i = 0; i < q->n; i++)
		rows[i] = (struct queue_ev_row){.id = q->c[i].msg->id,
		    .conv = q->c[i].conv};
	rc = queue_events_batch(st, rows, q->n,
	    &(struct queue_event){.status = MSG_ST_SENDING, .now = q->now}, err,
	    errlen);
	free(rows);
	return rc;
}

/*
 * A one-integer query on the claim's route into *out; ?3 = q->prio when
 * used. Returns 1, 0 when there is no row or the value is NULL, or -1.
 */
static int
queue_route_query(struct store *st, const char *sql,
    const struct queue_claim *q, int64_t *out, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	bool found;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, q->channel, -1, SQLITE_STATIC);
	queue_bind_text(stmt, 2, q->sender);
	if (sqlite3_bind_parameter_count(stmt) >= 3)
		sqlite3_bind_int64(stmt, 3, q->prio);
	if (queue_int_row(st, stmt, out, &found, err, errlen) == -1)
		return -1;
	return found ? 1 : 0;
}

/*
 * Claims up to max - n due messages of one priority into c[n..], in due
 * order: reads them, then moves them to sending a QUEUE_BATCH at a time.
 * The caller's write transaction keeps the rows read from changing in
 * between; a row that did not move anyway fails the claim (rolled back).
 */
static int
queue_claim_prio(struct store *st, struct queue_claim *q, int64_t prio,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	size_t first = q->n;
	int rc = SQLITE_DONE;

	if ((stmt = store_stmt(st, queue_sql_claim, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, q->channel, -1, SQLITE_STATIC);
	queue_bind_text(stmt, 2, q->sender);
	sqlite3_bind_int64(stmt, 3, prio);
	sqlite3_bind_int64(stmt, 4, q->now);
	sqlite3_bind_int64(stmt, 5, (int64_t)(q->max - q->n));
	while (q->n < q->max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		q->c[q->n].conv = sqlite3_column_int64(stmt, 15);
		q->c[q->n].msg = queue_out_from_row(stmt);
		q->n++;
	}
	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE; /* max reached: the LIMIT's last row */
	if (rc != SQLITE_DONE)
		store_errmsg(st, "claim", err, errlen);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return -1;
	return queue_claim_move(st, q, first, err, errlen);
}

/* Moves the claimed rows c[first..n) to sending (queue_sql_claim_batch). */
static int
queue_claim_move(struct store *st, const struct queue_claim *q, size_t first,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	size_t off, k;
	int moved;

	queue_sql_init();
	for (off = first; off < q->n; off += k) {
		if ((stmt = store_stmt(st, queue_sql_claim_batch, err,
			 errlen)) == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, q->lease_until);
		sqlite3_bind_int64(stmt, 2, q->now);
		for (k = 0; k < QUEUE_BATCH && off + k < q->n; k++)
			sqlite3_bind_int64(stmt, 3 + (int)k,
			    q->c[off + k].msg->id);
		if (queue_step_done(st, stmt, "claim", err, errlen) == -1)
			return -1;
		if ((moved = sqlite3_changes(store_db(st))) != (int)k) {
			snprintf(err, errlen,
			    "claim: %d of %zu messages read as queued moved",
			    moved, k);
			return -1;
		}
	}
	return 0;
}

/* Column order is queue_sql_claim's. */
static struct out_msg *
queue_out_from_row(sqlite3_stmt *stmt)
{
	struct out_msg *m = xcalloc(1, sizeof(*m));
	const char *s;

	m->id = sqlite3_column_int64(stmt, 0);
	s = (const char *)sqlite3_column_text(stmt, 1);
	m->channel =
	    s != NULL && strcmp(s, "email") == 0 ? CHANNEL_EMAIL : CHANNEL_SMS;
	m->priority = sqlite3_column_int(stmt, 2);
	m->attempts = sqlite3_column_int(stmt, 3);
	m->member_id = sqlite3_column_int64(stmt, 4);
	m->alert_id = sqlite3_column_int64(stmt, 5);
	m->created_at = sqlite3_column_int64(stmt, 6);
	m->expires_at = sqlite3_column_int64(stmt, 7);
	/* Lengths were checked by queue_enqueue(); these cannot truncate. */
	if ((s = (const char *)sqlite3_column_text(stmt, 8)) != NULL)
		strlcpy(m->sender, s, sizeof(m->sender));
	if ((s = (const char *)sqlite3_column_text(stmt, 9)) != NULL)
		strlcpy(m->to, s, sizeof(m->to));
	if ((s = (const char *)sqlite3_column_text(stmt, 10)) != NULL)
		strlcpy(m->from, s, sizeof(m->from));
	if ((s = (const char *)sqlite3_column_text(stmt, 11)) != NULL)
		m->subject = xstrdup(s);
	s = (const char *)sqlite3_column_text(stmt, 12);
	m->body = xstrdup(s != NULL ? s : "");
	if ((s = (const char *)sqlite3_column_text(stmt, 13)) != NULL)
		m->html = xstrdup(s);
	m->optout_exempt = sqlite3_column_int(stmt, 14) != 0;
	return m;
}

/* A set-wide transition (see queue_bulk). */
struct queue_bulk_op {
	const char *probe; /* cheap "any row?" check, ?1 = now */
	const char *sql;   /* UPDATE ... RETURNING id[, channel, sender] */
	enum msg_status to;
	const char *text;    /* history text */
	queue_each_fn *each; /* per row (RETURNING has 3 columns); or NULL */
	void *arg;
	int64_t key; /* bound to ?2 of sql when not 0 */
};

/* Hands one returned row (id, channel, sender) to op->each. */
static void
queue_bulk_each(const struct queue_bulk_op *op, sqlite3_stmt *stmt, int64_t id)
{
	const char *ch = (const char *)sqlite3_column_text(stmt, 1);
	const char *sender = (const char *)sqlite3_column_text(stmt, 2);
	int c = ch != NULL ? channel_parse(ch) : -1;

	op->each(op->arg, id, c >= 0 ? (enum channel)c : CHANNEL_SMS, sender);
}

/*
 * A set-wide transition: 'probe' checks cheaply (index, no transaction)
 * whether any row qualifies; 'sql' is an UPDATE ... RETURNING id whose
 * ?1 is now; each returned id gets a history row.
 */
static ssize_t
queue_bulk(struct store *st, const struct queue_bulk_op *op, int64_t now,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t *ids = NULL;
	size_t n = 0;
	size_t cap = 0;
	size_t i;
	int64_t one;
	int rc;

	if (op->probe != NULL) {
		rc = queue_int_query(st, op->probe, now, &one, err, errlen);
		if (rc <= 0)
			return rc; /* -1, or 0: nothing to move */
	}
	if (queue_op_begin(st, err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, op->sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, now);
	if (op->key != 0)
		sqlite3_bind_int64(stmt, 2, op->key);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			ids = xreallocarray(ids, cap, sizeof(*ids));
		}
		ids[n++] = sqlite3_column_int64(stmt, 0);
		if (op->each != NULL)
			queue_bulk_each(op, stmt, ids[n - 1]);
	}
	if (rc != SQLITE_DONE)
		store_errmsg(st, "update messages", err, errlen);
	sqlite3_reset(stmt);
	rc = rc == SQLITE_DONE ? 0 : -1;
	for (i = 0; rc == 0 && i < n; i++)
		rc = queue_event_add(st, ids[i],
		    &(struct queue_event){.status = op->to,
			.text = op->text,
			.now = now},
		    err, errlen);
	free(ids);
	if (queue_op_end(st, rc, n > 0) == -1)
		return -1;
	return (ssize_t)n;
}

/* All sending -> queued ("recovered after restart"); the count, or -1. */
ssize_t
queue_recover(struct store *st, int64_t now, char *err, size_t errlen)
{
	struct queue_bulk_op op = {queue_sql_any_sending, queue_sql_recover,
	    MSG_ST_QUEUED, "recovered after restart", NULL, NULL, 0};

	return queue_bulk(st, &op, now, err, errlen);
}

/* sending with lease_until < now -> queued ("lease expired"); n or -1. */
ssize_t
queue_reclaim_expired_leases(struct store *st, int64_t now, char *err,
    size_t errlen)
{
	struct queue_bulk_op op = {queue_sql_any_lease_over, queue_sql_reclaim,
	    MSG_ST_QUEUED, "lease expired", NULL, NULL, 0};

	return queue_bulk(st, &op, now, err, errlen);
}

/* queued with expires_at <= now -> expired; n or -1. */
ssize_t
queue_expire(struct store *st, int64_t now, queue_each_fn *each, void *arg,
    char *err, size_t errlen)
{
	struct queue_bulk_op op = {queue_sql_any_expired, queue_sql_expire,
	    MSG_ST_EXPIRED, "expired before it was sent", each, arg, 0};

	return queue_bulk(st, &op, now, err, errlen);
}

/* Up to 5,000 queued messages of alert 'alert_id' -> cancelled; n or -1
 * (call again until 0). */
ssize_t
queue_cancel_alert(struct store *st, int64_t alert_id, int64_t now, char *err,
    size_t errlen)
{
	struct queue_bulk_op op = {NULL, queue_sql_cancel_alert,
	    MSG_ST_CANCELLED, "alert cancelled", NULL, NULL, alert_id};

	return queue_bulk(st, &op, now, err, errlen);
}

/*
 * The earliest next_attempt_at among queued messages, over all routes.
 * Returns 0 if nothing is queued, -1 on error (err set).
 */
int64_t
queue_next_due(struct store *st, char *err, size_t errlen)
{
	int64_t due;
	int rc;

	rc = queue_int_query(st, queue_sql_next_due, 0, &due, err, errlen);
	if (rc == -1)
		return -1;
	return rc == 1 ? due : 0;
}

/*
 * Fills counts[channel][status] (zero where no row) from one GROUP BY
 * over all messages. 0 / -1.
 */
int
queue_count_by_status(struct store *st,
    int64_t counts[CHANNEL_COUNT][MSG_ST_COUNT], char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	const char *ch;
	const char *status;
	int c;
	int s;
	int rc;

	memset(counts, 0, sizeof(int64_t) * CHANNEL_COUNT * MSG_ST_COUNT);
	if ((stmt = store_stmt(st, queue_sql_counts, err, errlen)) == NULL)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		ch = (const char *)sqlite3_column_text(stmt, 0);
		status = (const char *)sqlite3_column_text(stmt, 1);
		c = ch != NULL ? channel_parse(ch) : -1;
		s = status != NULL ? msg_status_parse(status) : -1;
		if (c >= 0 && s >= 0)
			counts[c][s] = sqlite3_column_int64(stmt, 2);
	}
	if (rc != SQLITE_DONE)
		store_errmsg(st, "count messages", err, errlen);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The status of message id; -1 with err "" if absent, err set on error. */
int
queue_status(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	const char *s;
	int status = -1;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if ((stmt = store_stmt(st, queue_sql_status, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		s = (const char *)sqlite3_column_text(stmt, 0);
		status = s != NULL ? msg_status_parse(s) : -1;
		if (status == -1)
			snprintf(err, errlen,
			    "message %lld: unknown status '%s'", (long long)id,
			    s != NULL ? s : "");
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "message status", err, errlen);
	sqlite3_reset(stmt);
	return status;
}

/*
 * SMS: a member with this phone has an sms_optout row. Email: a member
 * with this address (compared lower-cased) has an email_optout row or is
 * bouncing. 1 / 0 / -1.
 */
int
queue_is_suppressed(struct store *st, enum channel ch, const char *to,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	const char *sql;
	int rc;

	sql =
	    ch == CHANNEL_EMAIL ? queue_sql_email_optout : queue_sql_sms_optout;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	queue_bind_text(stmt, 1, to);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_errmsg(st, "opt-out lookup", err, errlen);
	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* queue_is_suppressed() for many recipients (queue.h). */
int
queue_suppressed_batch(struct store *st, enum channel ch, const char *const *to,
    size_t n, bool *sup, char *err, size_t errlen)
{
	size_t off, chunk;

	queue_sql_init();
	for (off = 0; off < n; off++)
		sup[off] = false;
	for (off = 0; off < n; off += chunk) {
		chunk = n - off < QUEUE_BATCH ? n - off : QUEUE_BATCH;
		if (queue_optout_chunk(st, ch, to + off, chunk, sup + off, err,
			errlen) == -1)
			return -1;
	}
	return 0;
}

/*
 * One opt-out query for to[0..n-1] (n <= QUEUE_BATCH). Email addresses
 * come back as stored (lower-cased, as lower() in the query does it:
 * ASCII only), hence strcasecmp.
 */
static int
queue_optout_chunk(struct store *st, enum channel ch, const char *const *to,
    size_t n, bool *sup, char *err, size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? queue_sql_email_optout_batch
					      : queue_sql_sms_optout_batch;
	sqlite3_stmt *stmt;
	const char *got;
	size_t k;
	int rc;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	for (k = 0; k < n; k++)
		queue_bind_text(stmt, (int)k + 1, to[k]);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if ((got = (const char *)sqlite3_column_text(stmt, 0)) == NULL)
			continue;
		for (k = 0; k < n; k++)
			if (to[k] != NULL &&
			    (ch == CHANNEL_EMAIL ? strcasecmp(got, to[k])
						 : strcmp(got, to[k])) == 0)
				sup[k] = true;
	}
	if (rc != SQLITE_DONE)
		store_errmsg(st, "opt-out lookup", err, errlen);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Text or null; text that is not UTF-8 becomes null (jansson refuses it). */
json_t *
queue_json_text(sqlite3_stmt *stmt, int col)
{
	const char *s = (const char *)sqlite3_column_text(stmt, col);
	json_t *v;

	if (s == NULL || (v = json_string(s)) == NULL)
		return json_null();
	return v;
}

json_t *
queue_json_int(sqlite3_stmt *stmt, int col)
{
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return json_null();
	return json_integer(sqlite3_column_int64(stmt, col));
}

/* Milliseconds since the epoch as "2026-11-27T03:14:34.123Z", or null. */
json_t *
queue_json_time(sqlite3_stmt *stmt, int col)
{
	char buf[40]; /* msg_time_to_text() needs 25 */

	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return json_null();
	return json_string(msg_time_to_text(sqlite3_column_int64(stmt, col),
	    buf, sizeof(buf)));
}

/*
 * The API view of a message (GET /api/v1/messages/{id}). Column
 * order is queue_sql_json_msg's.
 */
json_t *
queue_message_json(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *o = NULL;
	json_t *history;
	json_t *e;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if ((stmt = store_stmt(st, queue_sql_json_msg, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		o = json_object();
		json_object_set_new(o, "id", json_integer(id));
		json_object_set_new(o, "channel", queue_json_text(stmt, 1));
		json_object_set_new(o, "to", queue_json_text(stmt, 2));
		json_object_set_new(o, "from", queue_json_text(stmt, 3));
		json_object_set_new(o, "subject", queue_json_text(stmt, 4));
		json_object_set_new(o, "body", queue_json_text(stmt, 5));
		json_object_set_new(o, "status", queue_json_text(stmt, 6));
		json_object_set_new(o, "priority", queue_json_int(stmt, 7));
		json_object_set_new(o, "attempts", queue_json_int(stmt, 8));
		json_object_set_new(o, "provider", queue_json_text(stmt, 9));
		json_object_set_new(o, "provider_message_id",
		    queue_json_text(stmt, 10));
		if (sqlite3_column_type(stmt, 11) != SQLITE_NULL ||
		    sqlite3_column_type(stmt, 12) != SQLITE_NULL) {
			e = json_object();
			json_object_set_new(e, "code",
			    queue_json_int(stmt, 11));
			json_object_set_new(e, "text",
			    queue_json_text(stmt, 12));
			json_object_set_new(o, "error", e);
		} else
			json_object_set_new(o, "error", json_null());
		json_object_set_new(o, "created_at", queue_json_time(stmt, 13));
		json_object_set_new(o, "updated_at", queue_json_time(stmt, 14));
		json_object_set_new(o, "encoding", queue_json_text(stmt, 15));
		json_object_set_new(o, "segments", queue_json_int(stmt, 16));
		json_object_set_new(o, "not_before", queue_json_time(stmt, 17));
		json_object_set_new(o, "expires_at", queue_json_time(stmt, 18));
		json_object_set_new(o, "alert_id", queue_json_int(stmt, 19));
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "read message", err, errlen);
	sqlite3_reset(stmt);
	if (o == NULL)
		return NULL;
	if ((history = queue_json_history(st, id, err, errlen)) == NULL) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "history", history);
	return o;
}

/* The message's events, oldest first, as [{status, at, code, text}]. */
static json_t *
queue_json_history(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *a;
	json_t *e;
	int rc;

	if ((stmt = store_stmt(st, queue_sql_json_events, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	a = json_array();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		e = json_object();
		json_object_set_new(e, "status", queue_json_text(stmt, 0));
		json_object_set_new(e, "at", queue_json_time(stmt, 1));
		json_object_set_new(e, "code", queue_json_int(stmt, 2));
		json_object_set_new(e, "text", queue_json_text(stmt, 3));
		json_array_append_new(a, e);
	}
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "read message history", err, errlen);
		json_decref(a);
		a = NULL;
	}
	sqlite3_reset(stmt);
	return a;
}

/*
 * Equal jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): half the delay is fixed so retries never bunch at zero, half
 * is random so a burst of failures spreads out. The doubling stops at the
 * cap, so any attempt number is safe from overflow.
 */
int64_t
queue_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms,
    int64_t retry_after_ms, double rnd)
{
	int64_t d = base_ms;
	int64_t half;
	int64_t result;
	unsigned i;

	for (i = 1; i < attempt && d > 0 && d < (int64_t)max_ms; i++)
		d *= 2; /* d < max_ms <= UINT_MAX, so 2 * d fits */
	if (d > (int64_t)max_ms)
		d = max_ms;
	if (!(rnd > 0.0)) /* also NaN */
		rnd = 0.0;
	if (rnd >= 1.0)
		rnd = nextafter(1.0, 0.0);
	half = d / 2;
	result = half + (int64_t)floor(rnd * (double)(d - half));
	if (d > 0 && result >= d) /* rnd * x can round up to x */
		result = d - 1;
	return result > retry_after_ms ? result : retry_after_ms;
}
