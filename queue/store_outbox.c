/*
 * store_outbox.c - the messages to and from one address after a cursor
 * (store_outbox.h): what the phone simulator shows on its screen.
 *
 * There is no index on the addresses: the walk is by id from the cursor,
 * and the answer's cursor moves past every row read, so a poller reads
 * each message once.
 *
 * On PostgreSQL (store_outbox_read()) the same two statements are sent
 * outside the group on the store's connection, pipelined in one round
 * trip; the second's answer calls back with what both said.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "queue-internal.h"
#include "store-internal.h"
#include "store_outbox.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"
#endif

static const char store_outbox_sql[] =
    "SELECT id, direction, channel, sender, to_addr, from_addr, body,"
    " status, created_at, updated_at FROM messages"
    " WHERE id > ?1 AND ((?3 != 1 AND direction = 'out' AND to_addr = ?2)"
    " OR (?3 != 0 AND direction = 'in' AND from_addr = ?2))"
    " ORDER BY id LIMIT ?4";
static const char store_outbox_max_sql[] = "SELECT max(id) FROM messages";

static json_t *store_outbox_answer(json_t *a, const struct outbox_query *q,
    int64_t last, bool have_max, int64_t max);

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
	json_t *a;
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
	if (json_array_size(a) < q->limit &&
	    ((stmt = store_stmt(st, store_outbox_max_sql, err, errlen)) ==
		    NULL ||
		queue_int_row(st, stmt, &max, &found, err, errlen) == -1)) {
		json_decref(a);
		return NULL;
	}
	return store_outbox_answer(a, q, last, found, max);
}

/* The cursor of an answer: the last id of a full page, else the highest
 * id now (null when there is none at all), as store_outbox_json(). */
static json_t *
store_outbox_answer(json_t *a, const struct outbox_query *q, int64_t last,
    bool have_max, int64_t max)
{
	json_t *res;
	bool found = true;

	if (json_array_size(a) < q->limit) {
		last = have_max && max > q->after ? max : q->after;
		found = have_max || last > 0;
	}
	res = json_pack("{s:o}", "messages", a);
	json_object_set_new(res, "next",
	    found ? json_integer(last) : json_null());
	return res;
}

#ifdef HAVE_LIBPQ
static const char store_outbox_pg_sql[] =
    "SELECT id, direction, channel, sender, to_addr, from_addr, body,"
    " status, created_at, updated_at FROM messages"
    " WHERE id > $1::bigint AND (($3::int <> 1 AND direction = 'out'"
    " AND to_addr = $2::text) OR ($3::int <> 0 AND direction = 'in'"
    " AND from_addr = $2::text)) ORDER BY id LIMIT $4::bigint";

/* A read in flight: the page's answer kept for the second one. */
struct store_outbox_op {
	store_outbox_fn *fn;
	void *arg;
	struct outbox_query q;
	json_t *rows;
	int64_t last;
	char error[256];
};

static bool
store_outbox_failed(struct store_outbox_op *op, const struct pg_answer *a)
{
	if (a->error == NULL)
		return op->error[0] != '\0';
	if (op->error[0] == '\0')
		snprintf(op->error, sizeof(op->error), "read messages: %s",
		    a->error);
	return true;
}

static void
store_outbox_page(void *arg, const struct pg_answer *a)
{
	struct store_outbox_op *op = arg;
	const PGresult *res = a->res;
	json_t *o;
	int i;

	if (store_outbox_failed(op, a))
		return;
	for (i = 0; i < PQntuples(res); i++) {
		o = json_object();
		op->last = pgr_get_i64(res, i, 0);
		json_object_set_new(o, "id", pgr_json_int(res, i, 0));
		json_object_set_new(o, "direction", pgr_json_text(res, i, 1));
		json_object_set_new(o, "channel", pgr_json_text(res, i, 2));
		json_object_set_new(o, "sender", pgr_json_text(res, i, 3));
		json_object_set_new(o, "to", pgr_json_text(res, i, 4));
		json_object_set_new(o, "from", pgr_json_text(res, i, 5));
		json_object_set_new(o, "body", pgr_json_text(res, i, 6));
		json_object_set_new(o, "status", pgr_json_text(res, i, 7));
		json_object_set_new(o, "created_at", pgr_json_time(res, i, 8));
		json_object_set_new(o, "updated_at", pgr_json_time(res, i, 9));
		json_array_append_new(op->rows, o);
	}
}

static void
store_outbox_max(void *arg, const struct pg_answer *a)
{
	struct store_outbox_op *op = arg;
	json_t *res;

	if (store_outbox_failed(op, a) || PQntuples(a->res) != 1) {
		json_decref(op->rows);
		op->fn(op->arg, NULL,
		    op->error[0] != '\0' ? op->error : "read messages: no row");
	} else {
		res = store_outbox_answer(op->rows, &op->q, op->last,
		    !PQgetisnull(a->res, 0, 0), pgr_get_i64(a->res, 0, 0));
		op->fn(op->arg, res, NULL);
	}
	free(op);
}

static int
store_outbox_read_pg(struct store *st, const struct outbox_query *q,
    store_outbox_fn *fn, void *arg, char *err, size_t errlen)
{
	struct store_outbox_op *op = xcalloc(1, sizeof(*op));
	char after[24], dir[24], lim[24];
	const char *v[4] = {pgr_i64(after, q->after, false), q->addr,
	    pgr_i64(dir, (int64_t)q->direction, false),
	    pgr_i64(lim, (int64_t)q->limit, false)};

	op->fn = fn;
	op->arg = arg;
	op->q = *q;
	op->q.addr = NULL; /* not kept: the answers need the numbers only */
	op->rows = json_array();
	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = store_outbox_pg_sql,
		    .nparams = 4,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = store_outbox_page,
		    .arg = op},
		err, errlen) == -1) {
		json_decref(op->rows);
		free(op);
		return -1;
	}
	/* Refused only while closing, when the first is answered "closed"
	 * and this one never runs (as sap_get()). */
	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = store_outbox_max_sql,
		    .flags = PG_IDEMPOTENT,
		    .done = store_outbox_max,
		    .arg = op},
		err, errlen) == -1)
		abort();
	return 0;
}
#endif

int
store_outbox_read(struct store *st, const struct outbox_query *q,
    store_outbox_fn *fn, void *arg, char *err, size_t errlen)
{
	json_t *o;

	if (store_backend(st) == STORE_POSTGRESQL) {
#ifdef HAVE_LIBPQ
		return store_outbox_read_pg(st, q, fn, arg, err, errlen);
#else
		return store_no_libpq(err, errlen);
#endif
	}
	if ((o = store_outbox_json(st, q, err, errlen)) == NULL)
		fn(arg, NULL, err);
	else
		fn(arg, o, NULL);
	return 0;
}
