/*
 * queue_webhooks.c - what providers report through webhooks, on the
 * store: inbound messages and delivery reports (doc/queue.md).
 *
 * Inbound: a message is stored as received, with its history row; a
 * provider's retry of the same webhook (same provider, same provider
 * message id) is found again instead of stored twice.
 *
 * Delivery reports only move a message forward, from sent to a final
 * state, and never back past a report with a higher sequence. A report
 * can overtake the provider's own answer to the send: the message is
 * still queued or sending, or no message carries the provider's id yet.
 * Such a report is kept in status_early for QUEUE_EARLY_KEEP_MS, and
 * queue_mark_sent() (queue.c) applies it through queue_early_apply() as
 * soon as it records that id.
 *
 * Writes join the store's group transaction through queue_op_begin() and
 * queue_op_end(), so the atomicity rules at the top of queue.c hold here
 * too. queue-internal.h declares what this file shares with queue.c.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "queue.h"
#include "queue-internal.h"
#include "store-internal.h"
#include "xmalloc.h"

/* Early delivery reports are kept this long (queue.h). */
#define QUEUE_EARLY_KEEP_MS (3600 * 1000)
/* "#<message id>": the key of an early report that named our id. */
#define QUEUE_EARLY_KEY_MAX 24
/* Reports kept for one message: one under each of its two keys. */
#define QUEUE_EARLY_ROWS 2

/* A delivery report as queue/ applies it (from status_update or a row of
 * status_early). */
struct queue_report {
	enum msg_status status; /* sent, delivered, undelivered or failed */
	int code;		/* 0 = none */
	const char *text;	/* NULL = none */
	int64_t sequence;	/* provider's event order; 0 = none */
};

/* The message a report is about, as found. */
struct queue_target {
	int64_t id;
	enum msg_status status;
	int64_t sequence; /* last applied report's; 0 = none */
};

/* One operation on delivery reports: whose, when, and what it changed. */
struct queue_su_op {
	const char *provider; /* the adapter that reported */
	int64_t now;
	bool wrote; /* out: a row may have changed */
};

/* The two keys a message's kept reports may sit under. */
struct queue_early_ids {
	const char *provider;
	const char *provider_id; /* the provider's id for the message */
	const char *key;	 /* '#<id>': reported before it was sent */
};

/* The reports kept for one message, read by queue_early_rows(). */
struct queue_early_set {
	struct queue_report rep[QUEUE_EARLY_ROWS];
	char *text[QUEUE_EARLY_ROWS]; /* rep[i].text's copies; caller frees */
	size_t n;
};

/*
 * Webhooks. Inbound rows are de-duplicated by the partial unique index
 * messages_inbound_provider_id (002_webhooks.sql); "ON CONFLICT DO
 * NOTHING" turns a provider's retry into no change. ?1 sender, ?2 to,
 * ?3 from, ?4 body, ?5 provider, ?6 provider id, ?7 segments, ?8 now.
 */
static const char queue_sql_inbound[] =
    "INSERT INTO messages (direction, channel, member_id, sender, to_addr,"
    " from_addr, body, status, next_attempt_at, provider,"
    " provider_message_id, segments, created_at, updated_at)"
    " VALUES ('in', 'sms', (SELECT id FROM members WHERE phone = ?3), ?1,"
    " ?2, ?3, ?4, 'received', ?8, ?5, ?6, ?7, ?8, ?8)"
    " ON CONFLICT DO NOTHING";
static const char queue_sql_inbound_by_pid[] =
    "SELECT id FROM messages WHERE provider = ?1"
    " AND provider_message_id = ?2 AND direction = 'in'";

/* Delivery reports: the message a report names, by our id or theirs. */
static const char queue_sql_su_by_id[] =
    "SELECT id, status, status_sequence FROM messages WHERE id = ?1"
    " AND direction = 'out' AND (provider IS NULL OR provider = ?2)";
static const char queue_sql_su_by_pid[] =
    "SELECT id, status, status_sequence FROM messages WHERE provider = ?1"
    " AND provider_message_id = ?2 AND direction = 'out'";
/* sent -> a final state; ?1 id, ?2 to, ?3 error code, ?4 error text,
 * ?5 sequence, ?6 now. */
static const char queue_sql_su_apply[] =
    "UPDATE messages SET status = ?2, error_code = coalesce(?3, error_code),"
    " error_text = coalesce(?4, error_text),"
    " status_sequence = coalesce(?5, status_sequence), updated_at = ?6"
    " WHERE id = ?1 AND status = 'sent'";
static const char queue_sql_su_sequence[] =
    "UPDATE messages SET status_sequence = ?2 WHERE id = ?1";

/*
 * Early reports (table status_early). A newer report for the same id
 * replaces a kept one only if it is further along (sent -> final) and
 * not older by sequence, or the same state with a higher sequence.
 */
static const char queue_sql_early_drop_old[] =
    "DELETE FROM status_early WHERE created_at < ?1";
static const char queue_sql_early_keep[] =
    "INSERT INTO status_early (provider, provider_message_id, status, code,"
    " text, sequence, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (provider, provider_message_id) DO UPDATE SET"
    " status = excluded.status, code = excluded.code, text = excluded.text,"
    " sequence = excluded.sequence, created_at = excluded.created_at"
    " WHERE (status_early.status = 'sent' AND excluded.status <> 'sent'"
    " AND (excluded.sequence IS NULL OR status_early.sequence IS NULL"
    " OR excluded.sequence >= status_early.sequence))"
    " OR (excluded.status = status_early.status"
    " AND excluded.sequence > status_early.sequence)";
/* Both keys a message may have been reported under; 'sent' first. */
static const char queue_sql_early_find[] =
    "SELECT status, code, text, sequence FROM status_early"
    " WHERE provider = ?1 AND provider_message_id IN (?2, ?3)"
    " AND created_at >= ?4 ORDER BY status <> 'sent', sequence";
static const char queue_sql_early_drop[] =
    "DELETE FROM status_early WHERE provider = ?1"
    " AND provider_message_id IN (?2, ?3)";

static int queue_su_row(struct store *, sqlite3_stmt *, struct queue_target *,
    char *, size_t);
static int queue_su_find(struct store *, const char *,
    const struct status_update *, struct queue_target *, char *, size_t);
static int queue_su_apply(struct store *, struct queue_target *,
    const struct queue_report *, struct queue_su_op *, char *, size_t);
static int queue_early_keep(struct store *, struct queue_su_op *, const char *,
    const struct queue_report *, char *, size_t);
static void queue_early_key(int64_t, char *, size_t);
static int queue_early_rows(struct store *, const struct queue_early_ids *,
    int64_t, struct queue_early_set *, char *, size_t);

/* What an inbound message must carry before it can be stored. */
int
queue_check_inbound(const char *sender, const char *provider,
    const struct in_msg *m, char *err, size_t errlen)
{
	if (provider == NULL || *provider == '\0') {
		snprintf(err, errlen, "inbound message: provider required");
		return -1;
	}
	if (sender == NULL || *sender == '\0' ||
	    strlen(sender) >= MSG_SENDER_MAX) {
		snprintf(err, errlen,
		    "inbound message: sender required, at most %d bytes",
		    MSG_SENDER_MAX - 1);
		return -1;
	}
	if (m->from[0] == '\0') {
		snprintf(err, errlen, "inbound message: from required");
		return -1;
	}
	return 0;
}

/*
 * Stores an inbound message as received (with its history row), or finds
 * the copy a provider's retry repeats: same provider, same provider id.
 * A message without a provider id cannot be matched, so it is always
 * stored. The member is linked when one has the sender's number. 0 / -1.
 */
int
queue_inbound_store(struct store *st, const struct queue_webhook *wh,
    const struct in_msg *m, struct queue_stored *out, char *err, size_t errlen)
{
	const char *pid = m->provider_id[0] != '\0' ? m->provider_id : NULL;
	const char *sender = wh->sender;
	const char *provider = wh->provider;
	int64_t now = wh->now;
	sqlite3_stmt *stmt;
	bool found;
	int rc;

	out->id = 0;
	out->dup = false;
	if (queue_check_inbound(sender, provider, m, err, errlen) == -1)
		return -1;
	if (queue_op_begin(st, err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, queue_sql_inbound, err, errlen)) == NULL)
		return -1;
	queue_bind_text(stmt, 1, sender);
	queue_bind_text(stmt, 2, m->to);
	queue_bind_text(stmt, 3, m->from);
	queue_bind_text(stmt, 4, m->body != NULL ? m->body : "");
	queue_bind_text(stmt, 5, provider);
	queue_bind_text(stmt, 6, pid);
	queue_bind_id(stmt, 7, m->segments);
	sqlite3_bind_int64(stmt, 8, now);
	if (queue_step_done(st, stmt, "insert inbound message", err, errlen) ==
	    -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 1) {
		out->id = sqlite3_last_insert_rowid(store_db(st));
		rc = queue_event_add(st, out->id,
		    &(struct queue_event){.status = MSG_ST_RECEIVED,
			.now = now},
		    err, errlen);
		return queue_op_end(st, rc, true);
	}
	/* ON CONFLICT DO NOTHING: the provider sent this one before. */
	stmt = store_stmt(st, queue_sql_inbound_by_pid, err, errlen);
	if (stmt == NULL)
		return -1;
	queue_bind_text(stmt, 1, provider);
	queue_bind_text(stmt, 2, pid);
	if (queue_int_row(st, stmt, &out->id, &found, err, errlen) == -1)
		return -1;
	if (!found) {
		snprintf(err, errlen,
		    "inbound message: conflict without a row");
		return -1;
	}
	out->dup = true;
	return 0;
}

/* A report must name a message and carry a delivery state. */
int
queue_check_report(const char *provider, const struct status_update *u,
    char *err, size_t errlen)
{
	if (provider == NULL || *provider == '\0') {
		snprintf(err, errlen, "status report: provider required");
		return -1;
	}
	if (u->status != MSG_ST_SENT && u->status != MSG_ST_DELIVERED &&
	    u->status != MSG_ST_UNDELIVERED && u->status != MSG_ST_FAILED) {
		snprintf(err, errlen,
		    "status report: state %d is not sent, delivered, "
		    "undelivered or failed",
		    (int)u->status);
		return -1;
	}
	if (u->msg_id <= 0 && u->provider_id[0] == '\0') {
		snprintf(err, errlen, "status report: names no message");
		return -1;
	}
	return 0;
}

/* Steps a bound (id, status, status_sequence) query: 1 found, 0 not, -1. */
static int
queue_su_row(struct store *st, sqlite3_stmt *stmt, struct queue_target *t,
    char *err, size_t errlen)
{
	const char *s;
	int status = -1;
	int rc;

	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		t->id = sqlite3_column_int64(stmt, 0);
		s = (const char *)sqlite3_column_text(stmt, 1);
		status = s != NULL ? msg_status_parse(s) : -1;
		t->sequence = sqlite3_column_int64(stmt, 2); /* NULL: 0 */
		if (status == -1)
			snprintf(err, errlen, "message %lld: unknown status",
			    (long long)t->id);
		t->status = (enum msg_status)status;
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "find message", err, errlen);
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE)
		return 0;
	return rc == SQLITE_ROW && status != -1 ? 1 : -1;
}

/*
 * The outbound message a report is about: by our id when the provider
 * echoed it (and the message went out through this provider, or has not
 * gone out yet), else by the provider's id. 1 found, 0 not, -1 error.
 */
static int
queue_su_find(struct store *st, const char *provider,
    const struct status_update *u, struct queue_target *t, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	if (u->msg_id > 0) {
		stmt = store_stmt(st, queue_sql_su_by_id, err, errlen);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, u->msg_id);
		queue_bind_text(stmt, 2, provider);
		if ((rc = queue_su_row(st, stmt, t, err, errlen)) != 0)
			return rc;
	}
	if (u->provider_id[0] == '\0')
		return 0;
	if ((stmt = store_stmt(st, queue_sql_su_by_pid, err, errlen)) == NULL)
		return -1;
	queue_bind_text(stmt, 1, provider);
	queue_bind_text(stmt, 2, u->provider_id);
	return queue_su_row(st, stmt, t, err, errlen);
}

/*
 * Moves t forward by rep when rep is news: t is sent (final states never
 * change; queued/sending are the caller's), rep is final, and rep is not
 * older by sequence than the last report applied. A 'sent' report with a
 * higher sequence only records that sequence. Returns QUEUE_SU_APPLIED or
 * QUEUE_SU_STALE, setting op->wrote when a row changed; -1 on error.
 */
static int
queue_su_apply(struct store *st, struct queue_target *t,
    const struct queue_report *rep, struct queue_su_op *op, char *err,
    size_t errlen)
{
	bool failure = rep->status != MSG_ST_DELIVERED;
	int64_t now = op->now;
	sqlite3_stmt *stmt;

	if (t->status != MSG_ST_SENT ||
	    (rep->sequence > 0 && rep->sequence < t->sequence))
		return QUEUE_SU_STALE;
	if (rep->status == MSG_ST_SENT && rep->sequence <= t->sequence)
		return QUEUE_SU_STALE;
	if (queue_op_begin(st, err, errlen) == -1)
		return -1;
	if (rep->status == MSG_ST_SENT) {
		stmt = store_stmt(st, queue_sql_su_sequence, err, errlen);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, t->id);
		sqlite3_bind_int64(stmt, 2, rep->sequence);
		if (queue_step_done(st, stmt, "update message", err, errlen) ==
		    -1)
			return -1;
		op->wrote = true;
		t->sequence = rep->sequence;
		return QUEUE_SU_STALE;
	}
	if ((stmt = store_stmt(st, queue_sql_su_apply, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, t->id);
	sqlite3_bind_text(stmt, 2, msg_status_to_text(rep->status), -1,
	    SQLITE_STATIC);
	queue_bind_id(stmt, 3, failure ? rep->code : 0);
	queue_bind_text(stmt, 4, failure ? rep->text : NULL);
	queue_bind_id(stmt, 5, rep->sequence);
	sqlite3_bind_int64(stmt, 6, now);
	if (queue_step_done(st, stmt, "update message", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return QUEUE_SU_STALE;
	op->wrote = true;
	t->status = rep->status;
	if (rep->sequence > 0)
		t->sequence = rep->sequence;
	if (queue_event_add(st, t->id,
		&(struct queue_event){.status = rep->status,
		    .code = rep->code,
		    .text = rep->text,
		    .now = now},
		err, errlen) == -1)
		return -1;
	return QUEUE_SU_APPLIED;
}

/* '#<id>': the key of a report that named a message not sent yet. */
static void
queue_early_key(int64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "#%lld", (long long)id);
}

/*
 * Keeps rep under (op->provider, key) until queue_mark_sent() can apply
 * it, first dropping reports past QUEUE_EARLY_KEEP_MS. A report already
 * kept under the key is replaced only by one further along (see
 * queue_sql_early_keep). Sets op->wrote when a row may have changed.
 */
static int
queue_early_keep(struct store *st, struct queue_su_op *op, const char *key,
    const struct queue_report *rep, char *err, size_t errlen)
{
	const char *provider = op->provider;
	int64_t now = op->now;
	sqlite3_stmt *stmt;

	if (queue_op_begin(st, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, queue_sql_early_drop_old, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, now - QUEUE_EARLY_KEEP_MS);
	if (queue_step_done(st, stmt, "drop old reports", err, errlen) == -1)
		return -1;
	op->wrote = sqlite3_changes(store_db(st)) > 0;
	if ((stmt = store_stmt(st, queue_sql_early_keep, err, errlen)) == NULL)
		return -1;
	queue_bind_text(stmt, 1, provider);
	queue_bind_text(stmt, 2, key);
	sqlite3_bind_text(stmt, 3, msg_status_to_text(rep->status), -1,
	    SQLITE_STATIC);
	queue_bind_id(stmt, 4, rep->code);
	queue_bind_text(stmt, 5, rep->text);
	queue_bind_id(stmt, 6, rep->sequence);
	sqlite3_bind_int64(stmt, 7, now);
	if (queue_step_done(st, stmt, "keep report", err, errlen) == -1)
		return -1;
	op->wrote = true;
	return 0;
}

/*
 * Applies a delivery report: finds the message, keeps the report when
 * the message cannot take it yet (unknown provider id, or still queued or
 * sending), or moves the message forward. A stale report only reads, and
 * opens no group. A report naming only our id, for a message that is not
 * ours, is answered QUEUE_SU_EARLY but not kept: no message will ever
 * carry that id.
 */
int
queue_status_update(struct store *st, const struct queue_webhook *wh,
    const struct status_update *u, int64_t *id, char *err, size_t errlen)
{
	const char *provider = wh->provider;
	int64_t now = wh->now;
	struct queue_report rep = {.status = u->status,
	    .code = u->code,
	    .text = u->text[0] != '\0' ? u->text : NULL,
	    .sequence = u->sequence > 0 ? u->sequence : 0};
	struct queue_target t = {0};
	struct queue_su_op op = {.provider = provider, .now = now};
	char key[QUEUE_EARLY_KEY_MAX];
	int rc;

	*id = 0;
	if (queue_check_report(provider, u, err, errlen) == -1)
		return -1;
	if ((rc = queue_su_find(st, provider, u, &t, err, errlen)) == -1)
		return -1;
	if (rc == 0 && u->provider_id[0] == '\0')
		return QUEUE_SU_EARLY;
	if (rc == 0 || t.status == MSG_ST_QUEUED ||
	    t.status == MSG_ST_SENDING) {
		*id = t.id;
		if (rc == 1)
			queue_early_key(t.id, key, sizeof(key));
		rc = queue_early_keep(st, &op, rc == 1 ? key : u->provider_id,
		    &rep, err, errlen);
		if (queue_op_end(st, rc, op.wrote) == -1)
			return -1;
		return QUEUE_SU_EARLY;
	}
	*id = t.id;
	rc = queue_su_apply(st, &t, &rep, &op, err, errlen);
	return queue_op_end(st, rc, op.wrote);
}

/*
 * Reads the reports kept for a message into set->rep[set->n..] (up to
 * QUEUE_EARLY_ROWS in all; set->text holds their copied texts, freed by
 * the caller): under ids->provider_id or ids->key, younger than
 * QUEUE_EARLY_KEEP_MS, 'sent' first. 0 / -1.
 */
static int
queue_early_rows(struct store *st, const struct queue_early_ids *ids,
    int64_t now, struct queue_early_set *set, char *err, size_t errlen)
{
	struct queue_report *rep = set->rep;
	char **text = set->text;
	size_t *n = &set->n;
	sqlite3_stmt *stmt;
	const char *s;
	int status;
	int rc;

	if ((stmt = store_stmt(st, queue_sql_early_find, err, errlen)) == NULL)
		return -1;
	queue_bind_text(stmt, 1, ids->provider);
	queue_bind_text(stmt, 2, ids->provider_id);
	queue_bind_text(stmt, 3, ids->key);
	sqlite3_bind_int64(stmt, 4, now - QUEUE_EARLY_KEEP_MS);
	while (
	    (rc = sqlite3_step(stmt)) == SQLITE_ROW && *n < QUEUE_EARLY_ROWS) {
		s = (const char *)sqlite3_column_text(stmt, 0);
		if (s == NULL || (status = msg_status_parse(s)) == -1)
			continue; /* the CHECK constraint rules this out */
		rep[*n].status = (enum msg_status)status;
		rep[*n].code = sqlite3_column_int(stmt, 1);
		s = (const char *)sqlite3_column_text(stmt, 2);
		text[*n] = s != NULL ? xstrdup(s) : NULL;
		rep[*n].text = text[*n];
		rep[*n].sequence = sqlite3_column_int64(stmt, 3);
		(*n)++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		store_errmsg(st, "find kept reports", err, errlen);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/*
 * After queue_mark_sent() recorded r->provider_id for message id: applies
 * the reports kept under that id or under '#id' (at most one each; 'sent'
 * first, so a final one still moves the message on) and drops them.
 * Reports past QUEUE_EARLY_KEEP_MS are ignored. Runs inside the caller's
 * operation, which rolls the group back if this fails.
 */
int
queue_early_apply(struct store *st, int64_t id, const struct queue_result *r,
    int64_t now, char *err, size_t errlen)
{
	struct queue_target t = {.id = id, .status = MSG_ST_SENT};
	struct queue_su_op op = {.provider = r->provider, .now = now};
	struct queue_early_set set = {.n = 0};
	struct queue_early_ids ids;
	char key[QUEUE_EARLY_KEY_MAX];
	sqlite3_stmt *stmt;
	size_t i;
	int rc;

	queue_early_key(id, key, sizeof(key));
	ids = (struct queue_early_ids){.provider = r->provider,
	    .provider_id = r->provider_id,
	    .key = key};
	rc = queue_early_rows(st, &ids, now, &set, err, errlen);
	if (rc == 0 && set.n > 0) {
		stmt = store_stmt(st, queue_sql_early_drop, err, errlen);
		if (stmt == NULL)
			rc = -1;
		else {
			queue_bind_text(stmt, 1, ids.provider);
			queue_bind_text(stmt, 2, ids.provider_id);
			queue_bind_text(stmt, 3, ids.key);
			rc = queue_step_done(st, stmt, "drop kept reports", err,
			    errlen);
		}
	}
	for (i = 0; rc == 0 && i < set.n; i++)
		if (queue_su_apply(st, &t, &set.rep[i], &op, err, errlen) == -1)
			rc = -1;
	for (i = 0; i < set.n; i++)
		free(set.text[i]);
	return rc;
}
