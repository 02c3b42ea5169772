/*
 * store_notify_pg.h - what the email digests of new inbound conversation
 * messages (daemon/notify.c) read and write on the PostgreSQL store
 * (issue 13, doc/postgresql.md; the design is at the top of
 * store_notify_pg.c). SQLite keeps store_notify_*() (store_events.h).
 *
 * Contract:
 *  - Loop thread only; nothing here blocks. Each function returns 0 once
 *    its statement is queued, or -1 with err (a SQLite store, a build
 *    without libpq, input the SQLite enqueue refuses): then no callback
 *    runs. Otherwise the callback runs exactly once, from the loop.
 *  - store_notify_pg_due() and store_notify_pg_walk() read outside any
 *    group, what every node committed.
 *  - store_notify_pg_write() is ONE statement in the node's group
 *    transaction: the digest's emails (each with its history row) and
 *    the new state, written only if the state is still the one the walk
 *    started from and no other node holds its row; else nothing
 *    (d->taken false). It never fails in an expected way.
 *  - What a callback gets is borrowed for the call.
 */
#ifndef OD_STORE_NOTIFY_PG_H
#define OD_STORE_NOTIFY_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_events.h"

struct queue_new;
struct store;

/* What a tick reads: the state and the oldest message after it. */
struct store_notify_due {
	struct notify_state state;
	bool found;	  /* a message after state.last_message_id */
	int64_t first_at; /* found: its created_at */
};
typedef void store_notify_due_fn(void *arg, const struct store_notify_due *d,
    const char *error);
int store_notify_pg_due(struct store *st, store_notify_due_fn *fn, void *arg,
    char *err, size_t errlen);

/*
 * A walk: the messages with ids over 'after', at most 'limit', up to
 * (not including) the first one created after 'settled' (see the top of
 * store_notify_pg.c). fn gets them in id order (n = 0: none), or
 * it = NULL and the error.
 */
struct store_notify_pg_walk {
	int64_t after;
	int64_t settled; /* ms */
	int64_t limit;
};
typedef void store_notify_items_fn(void *arg, const struct notify_item *it,
    size_t n, const char *error);
int store_notify_pg_walk(struct store *st, const struct store_notify_pg_walk *w,
    store_notify_items_fn *fn, void *arg, char *err, size_t errlen);

/* A digest to write: its emails (channel email: to, subject, body,
 * priority) and the state that records what it covered. */
struct store_notify_pg_digest {
	int64_t from; /* state.last_message_id the walk started after */
	struct notify_state next;
	const struct queue_new *emails;
	size_t n;
};
/* What the write did, once its group is settled. */
struct store_notify_written {
	bool ok;	    /* the group committed */
	const char *error;  /* !ok: why, when known */
	bool taken;	    /* ok: this digest was written (else another
			     * node's was, or is being) */
	const int64_t *ids; /* taken: emails[i]'s message id */
};
typedef void store_notify_written_fn(void *arg,
    const struct store_notify_written *w);
int store_notify_pg_write(struct store *st,
    const struct store_notify_pg_digest *d, store_notify_written_fn *fn,
    void *arg, char *err, size_t errlen);

#endif
