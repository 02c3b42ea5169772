/*
 * store_events.h - the stored side of live events and email digests: the
 * events table that GET /api/v1/events replays from (daemon/events.c),
 * and the notify state and inbound conversation messages the digests
 * read (daemon/notify.c). Neither caller sees SQL.
 *
 * Contract:
 *  - Event ids grow for the life of the database and are never reused,
 *    also once the oldest events are pruned (AUTOINCREMENT).
 *  - Writes join the store's group transaction (store_write_begin());
 *    an event is durable, and may be shown, once that group committed.
 *  - "floor" is the highest id that may be gone: every event with an id
 *    in (floor, last] that was ever committed is still there.
 *  - Loop thread only. Errors: 0 / -1 (or as stated) with text in err.
 */
#ifndef OD_STORE_EVENTS_H
#define OD_STORE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* One stored event; the strings are borrowed for the callback's call. */
struct store_event {
	int64_t id;
	const char *type;
	const char *data; /* JSON object text */
	int64_t created_at;
};

/* Appends an event; returns its id, or -1. */
int64_t store_event_add(struct store *st, const char *type, const char *data,
    int64_t now, char *err, size_t errlen);

/* Which events a walk reads: after < id <= upto, at most limit of them. */
struct store_events_range {
	int64_t after;
	int64_t upto;
	int64_t limit;
};
/* Called per event; non-zero stops the walk. */
typedef int store_event_fn(void *arg, const struct store_event *e);
/* Calls fn for the events of r in id order. Returns how many, or -1. */
int64_t store_events_walk(struct store *st, const struct store_events_range *r,
    store_event_fn *fn, void *arg, char *err, size_t errlen);

struct store_events_bounds {
	int64_t floor; /* ids <= floor may be gone (see the top) */
	int64_t last;  /* the highest id ever given; 0 = none */
};
int store_events_bounds(struct store *st, struct store_events_bounds *out,
    char *err, size_t errlen);

/* What pruning keeps: events newer than 'before' and the 'keep' newest. */
struct store_events_prune {
	int64_t before; /* ms: older events go */
	int64_t keep;	/* at most this many stay */
	int64_t batch;	/* at most this many are deleted per call */
};
/* Deletes old events (one bounded batch). Returns how many, or -1. */
int64_t store_events_prune(struct store *st, const struct store_events_prune *p,
    char *err, size_t errlen);

/* ---- Digests of inbound conversation messages -------------------------- */

struct notify_state {
	int64_t last_message_id; /* the last message a digest covered */
	int64_t last_digest_at;	 /* ms; 0 = never */
};
int store_notify_state(struct store *st, struct notify_state *out, char *err,
    size_t errlen);
int store_notify_state_set(struct store *st, const struct notify_state *s,
    char *err, size_t errlen);
/*
 * The time of the oldest inbound conversation message with an id over
 * 'after' into *at: 1, 0 when there is none, or -1.
 */
int store_notify_first(struct store *st, int64_t after, int64_t *at, char *err,
    size_t errlen);

/* One inbound conversation message with what a digest shows of it. */
struct notify_item {
	int64_t message_id;
	int64_t conversation_id;
	int64_t created_at;
	const char *body;
	int64_t staff_id;	 /* the conversation's assignee; 0 = none */
	const char *staff_email; /* NULL when none, disabled or no address */
	const char *first_name;	 /* the member's; each may be NULL */
	const char *last_name;
	const char *phone;
	const char *from_addr; /* the sender's address as received */
};
typedef void notify_item_fn(void *arg, const struct notify_item *it);
/* A walk: the messages with ids over 'after', at most 'limit'. */
struct notify_walk {
	int64_t after;
	int64_t limit;
	notify_item_fn *fn;
	void *arg;
};
/*
 * Calls w->fn for the inbound conversation messages of w, in id order.
 * Returns how many, or -1.
 */
int64_t store_notify_walk(struct store *st, const struct notify_walk *w,
    char *err, size_t errlen);

#endif
