/*
 * dispatch.h - the scheduler: claims due messages, paces them per sender,
 * checks opt-outs at send time, hands them to adapters and records the
 * results (doc/queue.md).
 *
 * Contract:
 *  - One route per [sender NAME] (SMS) plus one for email, each with its
 *    adapter, token bucket and in-flight cap. The core reaches adapters
 *    only through adapter.h.
 *  - Claimed messages go to their adapter only after the claim committed;
 *    each result is written back through queue/ (at-least-once delivery:
 *    a crash between a provider's acceptance and the commit of "sent"
 *    sends that message again after restart).
 *  - Loop thread only.
 */
#ifndef OD_DISPATCH_H
#define OD_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct adapter;
struct config;
struct dispatch;
struct email_links;
struct httpc;
struct event_base;
struct metrics;
struct store;

/* What the dispatcher works with (all borrowed). */
struct dispatch_deps {
	struct event_base *base; /* NULL: --check-config, no I/O */
	struct store *st;
	const struct config *cfg;
	struct metrics *metrics;
	struct httpc *httpc; /* shared by the adapters; NULL if no HTTP one */
};

/*
 * Creates the dispatcher and one adapter per route from deps->cfg; the
 * adapters share deps->httpc (may be NULL when no HTTP provider runs).
 * Returns it, or NULL with "FILE:LINE: ..." in err (a configuration
 * error). With deps->base == NULL only the configuration is checked
 * (--check-config).
 */
struct dispatch *dispatch_new(const struct dispatch_deps *deps, char *err,
    size_t errlen);
/*
 * Gives the dispatcher the email link maker (borrowed; NULL = none): every
 * email that is not a compliance reply then carries its one-click
 * unsubscribe URL. Call before dispatch_start().
 */
void dispatch_set_email_links(struct dispatch *d, struct email_links *links);
/* Starts claiming. */
void dispatch_start(struct dispatch *d);
/* Something became due now (a new message): claim soon. Cheap; coalesced. */
void dispatch_kick(struct dispatch *d);
/* True if 'name' is a configured SMS sender. */
bool dispatch_has_sender(const struct dispatch *d, const char *name);
/* The adapter of SMS sender 'name' (borrowed), or NULL if unknown. */
struct adapter *dispatch_sender_adapter(const struct dispatch *d,
    const char *name);
/* The from number configured for SMS sender 'name', or NULL. */
const char *dispatch_sender_from(const struct dispatch *d, const char *name);
/* The default SMS sender's name, or NULL if there is none. */
const char *dispatch_default_sender(const struct dispatch *d);
/*
 * The routes for /api/v1/status, as a new object: {"senders": [{name,
 * provider, rate, in_flight}], "email": {adapter, in_flight}}.
 */
json_t *dispatch_routes_json(const struct dispatch *d);

typedef void dispatch_stopped_fn(void *arg);
/*
 * Graceful stop: no more claims, adapters drain, in-flight sends may finish
 * until timeout_ms; what is still in flight then goes back to queued.
 * 'cb' runs (from the loop) once nothing is in flight.
 */
void dispatch_shutdown(struct dispatch *d, unsigned timeout_ms,
    dispatch_stopped_fn *cb, void *arg);
/* Frees the dispatcher and its adapters. NULL is a no-op. */
void dispatch_free(struct dispatch *d);

#endif
