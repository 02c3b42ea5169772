/*
 * store_events_pg.c - the live events table on PostgreSQL, shared by the
 * nodes (store_events_pg.h). The hub that streams the events is
 * daemon/events.c.
 *
 * DESIGN
 *
 * On one SQLite node an event is streamed from its group's commit
 * callback: one writer, so ids commit in order. Several nodes share one
 * table, and each node's staff page must see every node's events, in id
 * order, each once, with Last-Event-ID replay working on any node.
 *
 *  - Writing: the event's INSERT and a pg_notify('od_events', id) are one
 *    statement of the publisher's group transaction. PostgreSQL delivers
 *    a NOTIFY only when its transaction commits, to every session that
 *    LISTENs, so every node (the publisher too) hears of it once it is
 *    durable, and never of a rolled-back one.
 *  - Reading: a node does not stream what the NOTIFY carries; it reads
 *    the table after the last id it streamed (store_events_pg_read(): the
 *    rows and the table's bounds in one statement), so one path serves
 *    live events, missed notifications and replay alike.
 *  - Order across nodes: ids come from the identity sequence when the
 *    INSERT runs, not when its group commits, so node A's id 10 may
 *    commit after node B's id 11. A reader that streamed 11 at once
 *    would never stream 10. So the hub streams only the next id
 *    (shown + 1) and waits at a gap; the gap's owner commits within a
 *    round trip (the NOTIFY then wakes the readers) or rolls back and
 *    never fills it, which the hub passes after a grace period
 *    (daemon/events.c, events_order_take()). The sequence hands ids out
 *    one by one (CACHE 1), so a gap means a transaction in flight, a
 *    rollback, or the values PostgreSQL pre-logs and skips after its own
 *    crash.
 *  - Notifications sent while a node's connection is down are lost; the
 *    hub polls once a second as well, which also ends a gap's grace.
 *  - Pruning: every node runs the bounded prune (the same cut as SQLite:
 *    older than a day, or beyond the newest 100,000), in autocommit with
 *    SKIP LOCKED so two nodes pruning at once never wait on each other.
 *    The bounds read with each page tell a replaying stream whether the
 *    events it asks for are still all there.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"
#include "store_events_pg.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"

#define SEP_CHANNEL "od_events"

static const char sep_sql_add[] =
    "WITH e AS (INSERT INTO events (type, data, created_at)"
    " VALUES ($1::text, $2::text, $3::bigint) RETURNING id)"
    " SELECT pg_notify('" SEP_CHANNEL "', id::text) FROM e";
/* The page and the bounds in one snapshot; always one row at least (the
 * bounds, with NULL event columns when no event is past $1). An empty
 * table's last id is the sequence's, so ids never seem to go back. */
static const char sep_sql_read[] =
    "WITH b AS (SELECT min(id) AS lo, max(id) AS hi FROM events)"
    " SELECT e.id, e.type, e.data, e.created_at, b.lo,"
    " coalesce(b.hi, pg_sequence_last_value("
    "pg_get_serial_sequence('events', 'id')::regclass), 0)"
    " FROM b LEFT JOIN LATERAL (SELECT id, type, data, created_at"
    " FROM events WHERE id > $1::bigint ORDER BY id LIMIT $2::bigint) e"
    " ON true ORDER BY e.id";
/* $1 = before, $2 = keep, $3 = batch: as store_events.c's cut. */
static const char sep_sql_prune[] =
    "WITH cut AS (SELECT greatest(coalesce((SELECT max(id) FROM events"
    " WHERE created_at < $1::bigint), 0),"
    " coalesce((SELECT max(id) FROM events), 0) - $2::bigint) AS c),"
    " gone AS (DELETE FROM events WHERE id IN (SELECT id FROM events"
    " WHERE id <= (SELECT c FROM cut) ORDER BY id LIMIT $3::bigint"
    " FOR UPDATE SKIP LOCKED) RETURNING 1)"
    " SELECT count(*) FROM gone";

struct sep_read {
	store_events_page_fn *fn;
	void *arg;
};

struct sep_prune {
	store_events_pruned_fn *fn;
	void *arg;
};

struct store_events_watch {
	store_events_wake_fn *fn;
	void *arg;
};

static void
sep_read_answer(void *arg, const struct pg_answer *a)
{
	struct sep_read *r = arg;
	struct store_events_page p = {0};
	struct store_event *ev = NULL;
	const PGresult *res = a->res;
	int i, rows;

	if (a->error != NULL || (rows = PQntuples(res)) < 1) {
		r->fn(r->arg, NULL,
		    a->error != NULL ? a->error : "read events: no row");
		free(r);
		return;
	}
	p.b.last = pgr_get_i64(res, 0, 5);
	p.b.floor =
	    PQgetisnull(res, 0, 4) ? p.b.last : pgr_get_i64(res, 0, 4) - 1;
	ev = xcalloc((size_t)rows, sizeof(*ev));
	for (i = 0; i < rows; i++) {
		if (PQgetisnull(res, i, 0))
			continue; /* the bounds' row: no event */
		ev[p.n].id = pgr_get_i64(res, i, 0);
		ev[p.n].type = PQgetvalue(res, i, 1);
		ev[p.n].data = PQgetvalue(res, i, 2);
		ev[p.n].created_at = pgr_get_i64(res, i, 3);
		p.n++;
	}
	p.ev = ev;
	r->fn(r->arg, &p, NULL);
	free(ev);
	free(r);
}

static void
sep_prune_answer(void *arg, const struct pg_answer *a)
{
	struct sep_prune *r = arg;

	if (a->error != NULL)
		r->fn(r->arg, -1, a->error);
	else
		r->fn(r->arg, pgr_get_i64(a->res, 0, 0), NULL);
	free(r);
}

static void
sep_notified(void *arg, const char *channel, const char *payload)
{
	struct store_events_watch *w = arg;

	(void)channel;
	(void)payload;
	w->fn(w->arg);
}

#endif /* HAVE_LIBPQ */

/* NULL when st is not a PostgreSQL store, with the reason in err. */
static struct pg *
sep_conn(struct store *st, char *err, size_t errlen)
{
	if (store_postgresql_only(st, "store_events_pg", err, errlen) == -1)
		return NULL;
#ifdef HAVE_LIBPQ
	return store_pg_conn(st);
#else
	store_no_libpq(err, errlen);
	return NULL;
#endif
}

int
store_events_pg_add(struct store *st, const char *type, const char *data,
    int64_t now, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char at[24];
	const char *v[3] = {type, data, at};

	if (sep_conn(st, err, errlen) == NULL)
		return -1;
	snprintf(at, sizeof(at), "%" PRId64, now);
	return store_pg_group_send(st,
	    &(struct pg_query){.sql = sep_sql_add, .nparams = 3, .values = v},
	    err, errlen);
#else
	(void)type;
	(void)data;
	(void)now;
	sep_conn(st, err, errlen);
	return -1;
#endif
}

int
store_events_pg_read(struct store *st, int64_t after, int64_t limit,
    store_events_page_fn *fn, void *arg, char *err, size_t errlen)
{
	struct pg *pg;

	if ((pg = sep_conn(st, err, errlen)) == NULL)
		return -1;
#ifdef HAVE_LIBPQ
	char a[24], l[24];
	const char *v[2] = {a, l};
	struct sep_read *r = xcalloc(1, sizeof(*r));

	snprintf(a, sizeof(a), "%" PRId64, after);
	snprintf(l, sizeof(l), "%" PRId64, limit);
	r->fn = fn;
	r->arg = arg;
	if (pg_send(pg,
		&(struct pg_query){.sql = sep_sql_read,
		    .nparams = 2,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = sep_read_answer,
		    .arg = r},
		err, errlen) == -1) {
		free(r);
		return -1;
	}
	return 0;
#else
	(void)after;
	(void)limit;
	(void)fn;
	(void)arg;
	return -1;
#endif
}

int
store_events_pg_prune(struct store *st, const struct store_events_prune *p,
    store_events_pruned_fn *fn, void *arg, char *err, size_t errlen)
{
	struct pg *pg;

	if ((pg = sep_conn(st, err, errlen)) == NULL)
		return -1;
#ifdef HAVE_LIBPQ
	char b[24], k[24], n[24];
	const char *v[3] = {b, k, n};
	struct sep_prune *r = xcalloc(1, sizeof(*r));

	snprintf(b, sizeof(b), "%" PRId64, p->before);
	snprintf(k, sizeof(k), "%" PRId64, p->keep);
	snprintf(n, sizeof(n), "%" PRId64, p->batch);
	r->fn = fn;
	r->arg = arg;
	if (pg_send(pg,
		&(struct pg_query){.sql = sep_sql_prune,
		    .nparams = 3,
		    .values = v,
		    .done = sep_prune_answer,
		    .arg = r},
		err, errlen) == -1) {
		free(r);
		return -1;
	}
	return 0;
#else
	(void)p;
	(void)fn;
	(void)arg;
	return -1;
#endif
}

struct store_events_watch *
store_events_pg_watch(struct store *st, store_events_wake_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct pg *pg;

	if ((pg = sep_conn(st, err, errlen)) == NULL)
		return NULL;
#ifdef HAVE_LIBPQ
	struct store_events_watch *w = xcalloc(1, sizeof(*w));

	w->fn = fn;
	w->arg = arg;
	if (pg_listen(pg, SEP_CHANNEL, sep_notified, w, err, errlen) == -1) {
		free(w);
		return NULL;
	}
	return w;
#else
	(void)fn;
	(void)arg;
	return NULL;
#endif
}

void
store_events_pg_unwatch(struct store *st, struct store_events_watch *w)
{
	if (w == NULL)
		return;
#ifdef HAVE_LIBPQ
	struct pg *pg = store_pg_conn(st);

	if (pg != NULL)
		pg_unlisten(pg, SEP_CHANNEL, sep_notified, w);
#else
	(void)st;
#endif
	free(w);
}
