/*
 * store_events_pg.h - the live events table as several nodes share it on
 * PostgreSQL (issue 13; the hub is daemon/events.c, the design is at the
 * top of store_events_pg.c).
 *
 * Contract:
 *  - Loop thread only; nothing here blocks. Each function returns 0 once
 *    its statement is queued, or -1 with err (a SQLite store, a build
 *    without libpq, a connection being freed): then no callback runs.
 *  - store_events_pg_add() joins the node's open group transaction: the
 *    event is durable with the change it describes, and every node that
 *    watches is told once that group committed (NOTIFY is transactional).
 *  - A page answers exactly once, from the loop: the events after
 *    'after' in id order and the table's bounds read in the same
 *    statement, or the error text with p NULL.
 *  - What a callback gets is borrowed for the call.
 */
#ifndef OD_STORE_EVENTS_PG_H
#define OD_STORE_EVENTS_PG_H

#include <stddef.h>
#include <stdint.h>

#include "store_events.h"

struct store;

/* Queues the event's INSERT and its NOTIFY in the open group. */
int store_events_pg_add(struct store *st, const char *type, const char *data,
    int64_t now, char *err, size_t errlen);

/* What a read found. */
struct store_events_page {
	const struct store_event *ev; /* in id order */
	size_t n;
	/* the table's bounds, as store_events_bounds() reports them:
	 * floor = the lowest kept id - 1 (or last when none is kept),
	 * last = the highest id committed (or ever given, when none is
	 * kept) */
	struct store_events_bounds b;
};
typedef void store_events_page_fn(void *arg, const struct store_events_page *p,
    const char *error);

/* Reads at most 'limit' committed events with ids over 'after'. */
int store_events_pg_read(struct store *st, int64_t after, int64_t limit,
    store_events_page_fn *fn, void *arg, char *err, size_t errlen);

/*
 * Calls fn(arg) whenever a node committed events (a NOTIFY), from the
 * next connection on. Notifications sent while the connection was down
 * are lost: the caller polls too.
 */
typedef void store_events_wake_fn(void *arg);
struct store_events_watch;
/* The watch, or NULL with err; end it with store_events_pg_unwatch(). */
struct store_events_watch *store_events_pg_watch(struct store *st,
    store_events_wake_fn *fn, void *arg, char *err, size_t errlen);
/* fn is not called again; NULL is a no-op. Not from inside fn. */
void store_events_pg_unwatch(struct store *st, struct store_events_watch *w);

/* One bounded prune batch (store_events_prune()), outside any group:
 * fn gets how many events went, or -1 and the error. */
typedef void store_events_pruned_fn(void *arg, int64_t n, const char *error);
int store_events_pg_prune(struct store *st, const struct store_events_prune *p,
    store_events_pruned_fn *fn, void *arg, char *err, size_t errlen);

#endif
