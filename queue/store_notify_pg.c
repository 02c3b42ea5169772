/*
 * store_notify_pg.c - the email digests' reads and write on the
 * PostgreSQL store (store_notify_pg.h); the engine is daemon/notify.c,
 * SQLite keeps store_events.c's store_notify_*().
 *
 * DESIGN
 *
 * Every node runs the digest timer, and each digest must be queued once.
 * A tick reads the state (notify_state's one row) and the oldest message
 * after it (store_notify_pg_due(), one indexed read outside the group);
 * when a digest is due the node walks the new messages
 * (store_notify_pg_walk(), outside the group too), composes the emails
 * in C as on SQLite, and writes them with the new state as ONE statement
 * of its group transaction:
 *
 *   WITH lk AS (SELECT id FROM notify_state WHERE id = 1
 *       AND last_message_id = <where the walk started>
 *       FOR UPDATE SKIP LOCKED),                    -- the claim
 *     up AS (UPDATE notify_state ... FROM lk ...),  -- the new state
 *     ins AS (INSERT INTO messages ... WHERE EXISTS (SELECT 1 FROM up)),
 *     ev AS (INSERT INTO message_events ...)        -- history rows
 *   SELECT ...
 *
 * The row lock is the claim, taken inside the statement that queues the
 * emails: a group is pipelined whole (BEGIN, statements, COMMIT) and
 * cannot branch on an earlier statement's answer, so a claim in a
 * statement of its own could not stop the emails. Two nodes due in the
 * same second: the first locks the row; the second skips it (SKIP
 * LOCKED: it does not wait inside its group, holding up the node's other
 * writes) and writes nothing; once the first committed, the row's
 * last_message_id has moved and the second's lock re-checks it on the
 * newest version (READ COMMITTED) and finds no row: nothing again. So a
 * digest is written once, by whichever node got there first, and its
 * emails and state stand or fall together, as on SQLite. The statement
 * is its own guard, so it is safe when the driver runs it alone after a
 * lost connection (the group's BEGIN lost with it): it writes all or
 * nothing, and the next tick reads the state it left. A node killed
 * mid-digest loses its transaction and its lock; the next tick of any
 * node starts again from the committed state. There is no owner between
 * digests, so nothing has to be handed over.
 *
 * Ids are given when an INSERT runs and seen when its group commits:
 * node A's text 10 may commit after node B's 11. A walk that covered 11
 * while 10 was in flight would pass 10 for ever. So the walk stops at
 * the first message created after 'settled' (now - NOTIFY_PG_SETTLE_MS,
 * daemon/notify.c), and the digest is due that much later than on
 * SQLite: a text is missed only if its group committed more than that
 * after its time was taken (a group stuck on a lock, or nodes' clocks
 * that far apart); it stays in the inbox, only unannounced.
 *
 * The emails go in as one JSON array parameter (jsonb_to_recordset), as
 * queue_pg.c's enqueue writes a message: status queued, its history row,
 * no idempotency key (the state's guard is the key); they are checked
 * first with the SQLite enqueue's checks (queue_check_new()).
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "queue-internal.h"
#include "queue.h"
#include "store-internal.h"
#include "store_notify_pg.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"

/* The state (0, 0 without its row) and the oldest new message's time.
 * The sub-select matches the partial index messages_inbound_conv. */
static const char snp_sql_due[] =
    "SELECT s.l, s.d, (SELECT created_at FROM messages"
    " WHERE direction = 'in' AND conversation_id IS NOT NULL"
    " AND id > s.l ORDER BY id LIMIT 1)"
    " FROM (SELECT coalesce(max(last_message_id), 0) AS l,"
    " coalesce(max(last_digest_at), 0) AS d FROM notify_state"
    " WHERE id = 1) s";
/* $1 after, $2 settled, $3 limit: store_events.c's walk, up to the first
 * message not settled. A disabled assignee has no address here. */
static const char snp_sql_walk[] =
    "SELECT m.id, m.conversation_id, m.created_at, m.body,"
    " c.assigned_staff, s.email, b.first_name, b.last_name, b.phone,"
    " m.from_addr FROM messages m"
    " JOIN conversations c ON c.id = m.conversation_id"
    " LEFT JOIN staff s ON s.id = c.assigned_staff AND s.disabled = 0"
    " LEFT JOIN members b ON b.id = c.member_id"
    " WHERE m.direction = 'in' AND m.conversation_id IS NOT NULL"
    " AND m.id > $1::bigint AND m.id < coalesce((SELECT min(id)"
    " FROM messages WHERE direction = 'in' AND conversation_id IS NOT NULL"
    " AND id > $1::bigint AND created_at > $2::bigint),"
    " 9223372036854775807) ORDER BY m.id LIMIT $3::bigint";
/* $1 from, $2 the new last message, $3 now, $4 the emails (JSON). One
 * row: whether the state moved, then each email's id and address (NULL
 * when none was written). */
static const char snp_sql_write[] =
    "WITH lk AS (SELECT id FROM notify_state WHERE id = 1"
    " AND last_message_id = $1::bigint FOR UPDATE SKIP LOCKED),"
    " up AS (UPDATE notify_state n SET last_message_id = $2::bigint,"
    " last_digest_at = $3::bigint FROM lk WHERE n.id = lk.id"
    " RETURNING n.id),"
    " ins AS (INSERT INTO messages (direction, channel, to_addr, subject,"
    " body, status, priority, next_attempt_at, created_at, updated_at,"
    " optout_exempt) SELECT 'out', 'email', e.to_addr, e.subject, e.body,"
    " 'queued', e.priority, $3::bigint, $3::bigint, $3::bigint, 0"
    " FROM jsonb_to_recordset($4::jsonb) AS e(to_addr text, subject text,"
    " body text, priority bigint) WHERE EXISTS (SELECT 1 FROM up)"
    " RETURNING id, to_addr),"
    " ev AS (INSERT INTO message_events (message_id, status, created_at)"
    " SELECT id, 'queued', $3::bigint FROM ins)"
    " SELECT (SELECT count(*) FROM up), i.id, i.to_addr"
    " FROM (VALUES (1)) x LEFT JOIN ins i ON true";

struct snp_read {
	store_notify_due_fn *due;
	store_notify_items_fn *items;
	void *arg;
};

/* A write in flight: its caller and what the statement answered. */
struct snp_write {
	store_notify_written_fn *fn;
	void *arg;
	char **to; /* the emails' addresses, to match the answer's rows */
	int64_t *ids;
	size_t n;
	bool taken;
	bool failed;
	char error[256];
};

static void
snp_due_answer(void *arg, const struct pg_answer *a)
{
	struct snp_read *r = arg;
	struct store_notify_due d = {0};

	if (a->error != NULL || PQntuples(a->res) != 1) {
		r->due(r->arg, NULL,
		    a->error != NULL ? a->error : "read notify state: no row");
		free(r);
		return;
	}
	d.state.last_message_id = pgr_get_i64(a->res, 0, 0);
	d.state.last_digest_at = pgr_get_i64(a->res, 0, 1);
	d.found = !PQgetisnull(a->res, 0, 2);
	d.first_at = pgr_get_i64(a->res, 0, 2);
	r->due(r->arg, &d, NULL);
	free(r);
}

static void
snp_walk_answer(void *arg, const struct pg_answer *a)
{
	struct snp_read *r = arg;
	struct notify_item *it;
	const PGresult *res = a->res;
	int i, rows;

	if (a->error != NULL) {
		r->items(r->arg, NULL, 0, a->error);
		free(r);
		return;
	}
	rows = PQntuples(res);
	it = xcalloc((size_t)rows + 1, sizeof(*it));
	for (i = 0; i < rows; i++) {
		it[i].message_id = pgr_get_i64(res, i, 0);
		it[i].conversation_id = pgr_get_i64(res, i, 1);
		it[i].created_at = pgr_get_i64(res, i, 2);
		it[i].body = pgr_get_text(res, i, 3);
		it[i].staff_id = pgr_get_i64(res, i, 4);
		it[i].staff_email = pgr_get_text(res, i, 5);
		it[i].first_name = pgr_get_text(res, i, 6);
		it[i].last_name = pgr_get_text(res, i, 7);
		it[i].phone = pgr_get_text(res, i, 8);
		it[i].from_addr = pgr_get_text(res, i, 9);
	}
	r->items(r->arg, it, (size_t)rows, NULL);
	free(it);
	free(r);
}

static void
snp_write_free(struct snp_write *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		free(w->to[i]);
	free(w->to);
	free(w->ids);
	free(w);
}

static void
snp_write_answer(void *arg, const struct pg_answer *a)
{
	struct snp_write *w = arg;
	const char *to;
	int i, rows;
	size_t k;

	if (a->error != NULL) {
		w->failed = true;
		snprintf(w->error, sizeof(w->error), "%s", a->error);
		return;
	}
	rows = PQntuples(a->res);
	w->taken = rows > 0 && pgr_get_i64(a->res, 0, 0) > 0;
	for (i = 0; w->taken && i < rows; i++) {
		if (PQgetisnull(a->res, i, 1))
			continue;
		to = PQgetvalue(a->res, i, 2);
		for (k = 0; k < w->n; k++)
			if (w->ids[k] == 0 && strcmp(w->to[k], to) == 0) {
				w->ids[k] = pgr_get_i64(a->res, i, 1);
				break;
			}
	}
}

static void
snp_write_commit(void *arg, bool ok)
{
	struct snp_write *w = arg;
	struct store_notify_written d = {0};

	d.ok = ok && !w->failed;
	d.error = w->failed ? w->error : NULL;
	d.taken = d.ok && w->taken;
	d.ids = w->ids;
	w->fn(w->arg, &d);
	snp_write_free(w);
}

/* The emails as the statement's JSON array text, or NULL (not UTF-8). */
static char *
snp_emails_json(const struct store_notify_pg_digest *d)
{
	json_t *arr = json_array(), *o;
	char *out = NULL;
	size_t i;

	for (i = 0; i < d->n; i++) {
		o = json_pack("{s:s?, s:s?, s:s?, s:I}", "to_addr",
		    d->emails[i].to, "subject", d->emails[i].subject, "body",
		    d->emails[i].body, "priority",
		    (json_int_t)d->emails[i].priority);
		if (o == NULL)
			goto out;
		json_array_append_new(arr, o);
	}
	out = json_dumps(arr, JSON_COMPACT);
out:
	json_decref(arr);
	return out;
}
#endif /* HAVE_LIBPQ */

/* The group connection, or NULL with err when st is not PostgreSQL. */
static struct pg *
snp_conn(struct store *st, char *err, size_t errlen)
{
	if (store_postgresql_only(st, "store_notify_pg", err, errlen) == -1)
		return NULL;
#ifdef HAVE_LIBPQ
	return store_pg_conn(st);
#else
	store_no_libpq(err, errlen);
	return NULL;
#endif
}

#ifdef HAVE_LIBPQ
/* Sends read q (r its callback's) outside the group: 0, or -1 with err
 * (r is freed). */
static int
snp_read_send(struct pg *pg, struct pg_query *q, struct snp_read *r, char *err,
    size_t errlen)
{
	q->flags = PG_IDEMPOTENT;
	q->arg = r;
	if (pg_send(pg, q, err, errlen) == -1) {
		free(r);
		return -1;
	}
	return 0;
}
#endif

int
store_notify_pg_due(struct store *st, store_notify_due_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct pg *pg;

	if ((pg = snp_conn(st, err, errlen)) == NULL)
		return -1;
#ifdef HAVE_LIBPQ
	struct snp_read *r = xcalloc(1, sizeof(*r));

	r->due = fn;
	r->arg = arg;
	return snp_read_send(pg,
	    &(struct pg_query){.sql = snp_sql_due, .done = snp_due_answer}, r,
	    err, errlen);
#else
	(void)fn;
	(void)arg;
	return -1;
#endif
}

int
store_notify_pg_walk(struct store *st, const struct store_notify_pg_walk *w,
    store_notify_items_fn *fn, void *arg, char *err, size_t errlen)
{
	struct pg *pg;

	if ((pg = snp_conn(st, err, errlen)) == NULL)
		return -1;
#ifdef HAVE_LIBPQ
	char b[3][24];
	const char *v[3] = {pgr_i64(b[0], w->after, false),
	    pgr_i64(b[1], w->settled, false), pgr_i64(b[2], w->limit, false)};
	struct snp_read *r = xcalloc(1, sizeof(*r));

	r->items = fn;
	r->arg = arg;
	return snp_read_send(pg,
	    &(struct pg_query){.sql = snp_sql_walk,
		.nparams = 3,
		.values = v,
		.done = snp_walk_answer},
	    r, err, errlen);
#else
	(void)w;
	(void)fn;
	(void)arg;
	return -1;
#endif
}

int
store_notify_pg_write(struct store *st, const struct store_notify_pg_digest *d,
    store_notify_written_fn *fn, void *arg, char *err, size_t errlen)
{
	size_t i;

	if (snp_conn(st, err, errlen) == NULL)
		return -1;
	for (i = 0; i < d->n; i++)
		if (queue_check_new(&d->emails[i], err, errlen) == -1)
			return -1;
#ifdef HAVE_LIBPQ
	char b[3][24], *json;
	const char *v[4];
	struct snp_write *w;
	int rc;

	if ((json = snp_emails_json(d)) == NULL) {
		snprintf(err, errlen, "digest: text that is not UTF-8");
		return -1;
	}
	w = xcalloc(1, sizeof(*w));
	w->fn = fn;
	w->arg = arg;
	w->n = d->n;
	w->to = xcalloc(d->n + 1, sizeof(*w->to));
	w->ids = xcalloc(d->n + 1, sizeof(*w->ids));
	for (i = 0; i < d->n; i++)
		w->to[i] = xstrdup(d->emails[i].to);
	v[0] = pgr_i64(b[0], d->from, false);
	v[1] = pgr_i64(b[1], d->next.last_message_id, false);
	v[2] = pgr_i64(b[2], d->next.last_digest_at, false);
	v[3] = json;
	rc = store_pg_group_send(st,
	    &(struct pg_query){.sql = snp_sql_write,
		.nparams = 4,
		.values = v,
		.done = snp_write_answer,
		.arg = w},
	    err, errlen);
	free(json);
	if (rc == -1) {
		snp_write_free(w);
		return -1;
	}
	store_on_commit(st, snp_write_commit, w);
	return 0;
#else
	(void)fn;
	(void)arg;
	return -1;
#endif
}
