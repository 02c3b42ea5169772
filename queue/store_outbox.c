/*
 * store_outbox.c - the messages to and from one address after a cursor
 * (store_outbox.h): what the phone simulator shows on its screen.
 *
 * There is no index on the addresses: the walk is by id from the cursor,
 * and the answer's cursor moves past every row read, so a poller reads
 * each message once.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "queue-internal.h"
#include "store-internal.h"
#include "store_outbox.h"

static const char store_outbox_sql[] =
    "SELECT id, direction, channel, sender, to_addr, from_addr, body,"
    " status, created_at, updated_at FROM messages"
    " WHERE id > ?1 AND ((?3 != 1 AND direction = 'out' AND to_addr = ?2)"
    " OR (?3 != 0 AND direction = 'in' AND from_addr = ?2))"
    " ORDER BY id LIMIT ?4";
static const char store_outbox_max_sql[] = "SELECT max(id) FROM messages";

/* One row of store_outbox_sql as the API's object. */
static json_t *
store_outbox_row(sqlite3_stmt *stmt)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", queue_json_int(stmt, 0));
	json_object_set_new(o, "direction", queue_json_text(stmt, 1));
	json_object_set_new(o, "channel", queue_json_text(stmt, 2));
	json_object_set_new(o, "sender", queue_json_text(stmt, 3));
	json_object_set_new(o, "to", queue_json_text(stmt, 4));
	json_object_set_new(o, "from", queue_json_text(stmt, 5));
	json_object_set_new(o, "body", queue_json_text(stmt, 6));
	json_object_set_new(o, "status", queue_json_text(stmt, 7));
	json_object_set_new(o, "created_at", queue_json_time(stmt, 8));
	json_object_set_new(o, "updated_at", queue_json_time(stmt, 9));
	return o;
}

json_t *
store_outbox_json(struct store *st, const struct outbox_query *q, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *a, *res;
	int64_t last = 0, max = 0;
	bool found = false;
	int rc;

	if ((stmt = store_stmt(st, store_outbox_sql, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, q->after);
	sqlite3_bind_text(stmt, 2, q->addr, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 3, (int)q->direction);
	sqlite3_bind_int(stmt, 4, (int)q->limit);
	a = json_array();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		last = sqlite3_column_int64(stmt, 0);
		json_array_append_new(a, store_outbox_row(stmt));
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "read messages", err, errlen);
		json_decref(a);
		return NULL;
	}
	if (json_array_size(a) < q->limit) {
		if ((stmt = store_stmt(st, store_outbox_max_sql, err,
			 errlen)) == NULL ||
		    queue_int_row(st, stmt, &max, &found, err, errlen) == -1) {
			json_decref(a);
			return NULL;
		}
		last = found && max > q->after ? max : q->after;
		found = found || last > 0;
	} else
		found = true;
	res = json_pack("{s:o}", "messages", a);
	json_object_set_new(res, "next",
	    found ? json_integer(last) : json_null());
	return res;
}
