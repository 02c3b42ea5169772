/*
 * events.h - live events for the staff page: GET /api/v1/events, a
 * Server-Sent Events stream (text/event-stream, a chunked evhttp reply
 * that stays open).
 *
 * Contract:
 *  - Every event has a type ("message", "conversation", "alert", ...),
 *    a JSON object of data and an id that grows for the life of the
 *    store (it survives restarts), so a browser that reconnects with
 *    Last-Event-ID gets every event it missed. When the events it missed
 *    are older than what is kept, it gets one "reset" event and reloads
 *    what it shows.
 *  - events_publish() never blocks and never fails for lack of
 *    listeners; a stream whose client reads too slowly is closed (the
 *    browser reconnects and resumes).
 *  - Loop thread only.
 */
#ifndef OD_EVENTS_H
#define OD_EVENTS_H

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
/* Ends every stream and frees the hub; NULL is a no-op. */
void events_free(struct events *ev);

#endif
