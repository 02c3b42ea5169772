/*
 * alerts.h - action alerts: one message to a list or segment over SMS
 * and email, previewed, personalized, paced, quiet-hour safe, resumable
 * (doc/alerts.md).
 *
 * Contract:
 *  - alerts_new() registers the /api/v1/alerts routes; alerts_start()
 *    resumes what a previous run left scheduled or sending, then runs the
 *    fan-out from a timer on the loop.
 *  - Fan-out is lazy: each turn of the timer an alert in 'sending' walks
 *    its audience from its stored cursor and makes at most as many
 *    messages as keep its due backlog (queued and due, or in flight)
 *    under [alerts] backlog. The messages and the new cursor are written
 *    in the same group transaction, so a crash resumes exactly at the
 *    cursor: nobody is skipped and nobody gets a second message from the
 *    fan-out (the dispatcher's in-flight window is the only duplicate
 *    window, as for any message).
 *  - SMS waits for the member's quiet-hours window (quiet.h) unless the
 *    alert is urgent; email is not held. Deferred messages are queued
 *    with not_before and wait; they expire with the alert's validity.
 *  - Opt-outs: the audience leaves out members opted out when their
 *    message is made; the dispatcher's send-time check stays the last
 *    word for those who opt out later.
 *  - Progress: an "alert" event (events.h) with the alert's status and
 *    counts on every status change and about once a second while it
 *    sends.
 *  - Guard rails: an alert in 'sending' pauses itself, with the reason
 *    kept, when its opt-out rate or permanent-failure rate passes
 *    [alerts] max_optout_rate / max_failure_rate.
 *  - Loop thread only.
 */
#ifndef OD_ALERTS_H
#define OD_ALERTS_H

#include <stdint.h>

#include <jansson.h>

struct api;
struct config;
struct dispatch;
struct event_base;
struct events;
struct http_server;
struct metrics;
struct store;

struct alerts_deps {
	struct event_base *base;
	struct store *st;
	struct dispatch *dispatch;
	struct api *api; /* authorization, JSON bodies, stopping */
	const struct config *cfg;
	struct events *events; /* "alert" progress events; may be NULL */
};

struct alerts;

/* Registers the routes on srv; free with alerts_free(). */
struct alerts *alerts_new(struct http_server *srv,
    const struct alerts_deps *deps);
/* Resumes live alerts and starts the fan-out timer. */
void alerts_start(struct alerts *a);
/* Stops the timer (shutdown): no new messages are made. */
void alerts_stop(struct alerts *a);
/*
 * Appends the Prometheus lines of the live alerts (per alert, channel and
 * state) to 'out' (an evbuffer).
 */
struct evbuffer;
void alerts_metrics(struct alerts *a, struct evbuffer *out);
void alerts_free(struct alerts *a);

#endif
