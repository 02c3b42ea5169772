/*
 * store_events.c - live events kept for replay, and the state of the
 * email digests (store_events.h).
 *
 * Pruning deletes by id: events are written in id order as time goes, so
 * "older than" is "up to the newest id older than", and one bounded batch
 * per call keeps each loop turn short however many events piled up.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>

#include <sqlite3.h>

#include "queue-internal.h"
#include "store-internal.h"
#include "store_events.h"

static const char store_events_sql_add[] =
    "INSERT INTO events (type, data, created_at) VALUES (?1, ?2, ?3)";
static const char store_events_sql_walk[] =
    "SELECT id, type, data, created_at FROM events WHERE id > ?1"
    " AND id <= ?2 ORDER BY id LIMIT ?3";
static const char store_events_sql_min[] = "SELECT min(id) FROM events";
static const char store_events_sql_seq[] =
    "SELECT seq FROM sqlite_sequence WHERE name = 'events'";
/* ?1 = before, ?2 = keep: the highest id that goes. */
static const char store_events_sql_cut[] =
    "SELECT max(coalesce((SELECT max(id) FROM events WHERE created_at < ?1),"
    " 0), coalesce((SELECT max(id) FROM events), 0) - ?2)";
static const char store_events_sql_prune[] =
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ?1"
    " ORDER BY id LIMIT ?2)";

static const char store_notify_sql_get[] =
    "SELECT last_message_id, last_digest_at FROM notify_state WHERE id = 1";
static const char store_notify_sql_set[] =
    "INSERT INTO notify_state (id, last_message_id, last_digest_at)"
    " VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET"
    " last_message_id = excluded.last_message_id,"
    " last_digest_at = excluded.last_digest_at";
/* The WHERE matches the partial index messages_inbound_conv. A disabled
 * assignee has no address here: its threads go to notify_email. */
static const char store_notify_sql_first[] =
    "SELECT created_at FROM messages WHERE direction = 'in'"
    " AND conversation_id IS NOT NULL AND id > ?1 ORDER BY id LIMIT 1";
static const char store_notify_sql_walk[] =
    "SELECT m.id, m.conversation_id, m.created_at, m.body, c.assigned_staff,"
    " s.email, b.first_name, b.last_name, b.phone, m.from_addr"
    " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
    " LEFT JOIN staff s ON s.id = c.assigned_staff AND s.disabled = 0"
    " LEFT JOIN members b ON b.id = c.member_id"
    " WHERE m.direction = 'in' AND m.conversation_id IS NOT NULL"
    " AND m.id > ?1 ORDER BY m.id LIMIT ?2";

int64_t
store_event_add(struct store *st, const char *type, const char *data,
    int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (stmt = store_stmt(st, store_events_sql_add, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, data, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, now);
	if (queue_step_done(st, stmt, "add event", err, errlen) == -1)
		return -1;
	return sqlite3_last_insert_rowid(store_db(st));
}

int64_t
store_events_walk(struct store *st, const struct store_events_range *r,
    store_event_fn *fn, void *arg, char *err, size_t errlen)
{
	struct store_event e;
	sqlite3_stmt *stmt;
	int64_t n = 0;
	int rc;

	if ((stmt = store_stmt(st, store_events_sql_walk, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, r->after);
	sqlite3_bind_int64(stmt, 2, r->upto);
	sqlite3_bind_int64(stmt, 3, r->limit);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		e.id = sqlite3_column_int64(stmt, 0);
		e.type = (const char *)sqlite3_column_text(stmt, 1);
		e.data = (const char *)sqlite3_column_text(stmt, 2);
		e.created_at = sqlite3_column_int64(stmt, 3);
		n++;
		if (e.type != NULL && e.data != NULL && fn(arg, &e) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "read events", err, errlen);
		n = -1;
	}
	sqlite3_reset(stmt);
	return n;
}

int
store_events_bounds(struct store *st, struct store_events_bounds *out,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t min = 0, seq = 0;
	bool have_min, have_seq;

	if ((stmt = store_stmt(st, store_events_sql_min, err, errlen)) ==
		NULL ||
	    queue_int_row(st, stmt, &min, &have_min, err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, store_events_sql_seq, err, errlen)) ==
		NULL ||
	    queue_int_row(st, stmt, &seq, &have_seq, err, errlen) == -1)
		return -1;
	out->last = have_seq ? seq : 0;
	out->floor = have_min ? min - 1 : out->last;
	return 0;
}

int64_t
store_events_prune(struct store *st, const struct store_events_prune *p,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t cut = 0;
	bool found;

	if ((stmt = store_stmt(st, store_events_sql_cut, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, p->before);
	sqlite3_bind_int64(stmt, 2, p->keep);
	if (queue_int_row(st, stmt, &cut, &found, err, errlen) == -1)
		return -1;
	if (!found || cut <= 0)
		return 0;
	if (store_write_begin(st, err, errlen) == -1 ||
	    (stmt = store_stmt(st, store_events_sql_prune, err, errlen)) ==
		NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, cut);
	sqlite3_bind_int64(stmt, 2, p->batch);
	if (queue_step_done(st, stmt, "prune events", err, errlen) == -1)
		return -1;
	return sqlite3_changes(store_db(st));
}

/* ---- Digests ------------------------------------------------------------ */

int
store_notify_state(struct store *st, struct notify_state *out, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	out->last_message_id = 0;
	out->last_digest_at = 0;
	if ((stmt = store_stmt(st, store_notify_sql_get, err, errlen)) == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		out->last_message_id = sqlite3_column_int64(stmt, 0);
		out->last_digest_at = sqlite3_column_int64(stmt, 1);
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "read notify state", err, errlen);
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
store_notify_state_set(struct store *st, const struct notify_state *s,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (stmt = store_stmt(st, store_notify_sql_set, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, s->last_message_id);
	sqlite3_bind_int64(stmt, 2, s->last_digest_at);
	return queue_step_done(st, stmt, "write notify state", err, errlen);
}

int
store_notify_first(struct store *st, int64_t after, int64_t *at, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	bool found;

	if ((stmt = store_stmt(st, store_notify_sql_first, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, after);
	if (queue_int_row(st, stmt, at, &found, err, errlen) == -1)
		return -1;
	return found ? 1 : 0;
}

static const char *
store_notify_col(sqlite3_stmt *stmt, int col)
{
	return (const char *)sqlite3_column_text(stmt, col);
}

int64_t
store_notify_walk(struct store *st, const struct notify_walk *w, char *err,
    size_t errlen)
{
	struct notify_item it;
	sqlite3_stmt *stmt;
	int64_t n = 0;
	int rc;

	if ((stmt = store_stmt(st, store_notify_sql_walk, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, w->after);
	sqlite3_bind_int64(stmt, 2, w->limit);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		it.message_id = sqlite3_column_int64(stmt, 0);
		it.conversation_id = sqlite3_column_int64(stmt, 1);
		it.created_at = sqlite3_column_int64(stmt, 2);
		it.body = store_notify_col(stmt, 3);
		it.staff_id = sqlite3_column_int64(stmt, 4);
		it.staff_email = store_notify_col(stmt, 5);
		it.first_name = store_notify_col(stmt, 6);
		it.last_name = store_notify_col(stmt, 7);
		it.phone = store_notify_col(stmt, 8);
		it.from_addr = store_notify_col(stmt, 9);
		w->fn(w->arg, &it);
		n++;
	}
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "read inbound messages", err, errlen);
		n = -1;
	}
	sqlite3_reset(stmt);
	return n;
}
