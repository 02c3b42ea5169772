/*
 * events.h - live events for the staff page: GET /api/v1/events, a
 * Server-Sent Events stream (text/event-stream, a chunked evhttp reply
 * that stays open). The protocol is in doc/events.md.
 *
 * Contract:
 *  - Every event has a type ("message", "conversation", "alert", ...),
 *    a JSON object of data and an id that grows for the life of the
 *    store (it survives restarts), so a browser that reconnects with
 *    Last-Event-ID gets every event it missed. When the events it missed
 *    are older than what is kept, it gets one "reset" event and reloads
 *    what it shows.
 *  - events_publish() writes the event into the store's open group
 *    transaction (so call it with the change it describes, before or
 *    after that change's commit); streams see it once that group is
 *    durable, never before, so what a stream showed a restart replays.
 *  - events_publish() never blocks and never fails for lack of
 *    listeners; a stream whose client reads too slowly is closed (the
 *    browser reconnects and resumes).
 *  - Loop thread only.
 */
#ifndef OD_EVENTS_H
#define OD_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct api;
struct event_base;
struct http_server;
struct store;

struct events_deps {
	struct event_base *base;
	struct http_server *srv;
	struct api *api; /* for api_authorized() */
	struct store *st;
};

struct events;

/* Registers GET /api/v1/events; returns the hub (free with events_free). */
struct events *events_new(const struct events_deps *deps);
/*
 * Sends event 'type' with 'data' (a JSON object; the reference is
 * stolen) to every open stream and keeps it for replay. ev may be NULL
 * (then data is just released), so publishers need no test.
 */
void events_publish(struct events *ev, const char *type, json_t *data);
/*
 * Shutdown: ends every open stream (a complete chunked reply, so the
 * browser reconnects to whoever listens next) and refuses new ones with
 * 503. Events published later are still stored.
 */
void events_stop(struct events *ev);
/* Ends every stream and frees the hub; NULL is a no-op. */
void events_free(struct events *ev);

/* ---- Exposed for the unit tests ----------------------------------------- */

/* Keep-alive period, replay and buffer bounds, what is kept. */
#define EVENTS_KEEPALIVE_MS    15000
#define EVENTS_RETRY_MS	       2000
#define EVENTS_REPLAY_MAX      10000
#define EVENTS_MAX_PENDING     (4 * 1024 * 1024)
#define EVENTS_KEEP_MS	       (24 * 3600 * 1000LL)
#define EVENTS_KEEP_COUNT      100000
#define EVENTS_PRUNE_BATCH     10000
#define EVENTS_PRUNE_PERIOD_MS 60000

/*
 * One event as it goes on the wire: "id: N\nevent: TYPE\ndata: ...\n\n",
 * a "data:" line per line of 'data' (JSON from jansson has none, but the
 * framing never depends on it). A new string.
 */
char *events_frame(int64_t id, const char *type, const char *data);

/* How a new stream begins. */
enum events_start { EVENTS_LIVE, EVENTS_REPLAY, EVENTS_RESET };
struct events_resume {
	bool asked;    /* a Last-Event-ID was given */
	bool valid;    /* ... and it is a number >= 0 */
	int64_t last;  /* that number */
	int64_t floor; /* ids <= floor may be gone (store_events_bounds) */
	int64_t shown; /* the newest id streams were sent */
};
/*
 * LIVE: no Last-Event-ID, start with the next event. REPLAY: send the
 * events in (last, shown] first. RESET: some of them are gone (or the id
 * is from another database, or too many are missed): one "reset" event.
 */
enum events_start events_plan(const struct events_resume *r);

/*
 * The order events are streamed in on the shared PostgreSQL store, where
 * ids are given when an event is inserted but seen when its node's group
 * commits (queue/store_events_pg.c): only the id after 'shown' is taken;
 * a later one waits at the gap for EVENTS_GAP_MS (its transaction is in
 * flight, or rolled back and will never fill it).
 */
#define EVENTS_GAP_MS 5000
struct events_order {
	int64_t shown;	   /* the newest id streamed */
	int64_t gap_since; /* ms when a gap after shown was first seen; 0 */
};
/* Whether event 'id' is streamed now (then shown = id); 'now' in ms. */
bool events_order_take(struct events_order *o, int64_t id, int64_t now);

#endif
