/*
 * metrics.h - counters kept by the daemon and the Prometheus text format
 * (version 0.0.4) they are exposed in at /metrics.
 *
 * Contract:
 *  - Counters only grow; gauges (queue depth, store figures) are read at
 *    scrape time by the caller and written with metrics_render_sample().
 *  - Label values are escaped here; callers pass plain text.
 *  - Loop thread only.
 */
#ifndef OD_METRICS_H
#define OD_METRICS_H

#include <stdint.h>

#include "message.h"

struct evbuffer;
struct metrics;

/* Outcomes counted per message attempt. */
#define METRICS_OUT_ACCEPTED   "accepted"
#define METRICS_OUT_TRANSIENT  "transient"
#define METRICS_OUT_PERMANENT  "permanent"
#define METRICS_OUT_SUPPRESSED "suppressed"
#define METRICS_OUT_EXPIRED    "expired"

/* Email link actions (outreachd_email_link_actions_total{action}). */
#define METRICS_LINK_UNSUBSCRIBE "unsubscribe"
#define METRICS_LINK_CONFIRM	 "confirm"

/* A new, empty set of counters; free with metrics_free(). */
struct metrics *metrics_new(void);
/* Frees m; NULL is a no-op. */
void metrics_free(struct metrics *m);

/* outreachd_messages_total{channel,provider,sender,outcome} += 1 */
void metrics_count_message(struct metrics *m, enum channel ch,
    const char *provider, const char *sender, const char *outcome);
/* outreachd_http_requests_total{route,status} += 1 */
void metrics_count_http(struct metrics *m, const char *route, int status);

/*
 * outreachd_email_link_actions_total{action} += 1: a one-click
 * unsubscribe that opted an address out, or a confirmed subscription.
 */
void metrics_count_email_link(struct metrics *m, const char *action);

/* Appends every counter family, with HELP and TYPE lines. */
void metrics_render_counters(const struct metrics *m, struct evbuffer *out);
/* Appends "# HELP name help" and "# TYPE name type". */
void metrics_render_family(struct evbuffer *out, const char *name,
    const char *type, const char *help);
/*
 * Appends one sample: name{labels} value. 'labels' is a NULL-terminated
 * list of name, value pairs (values escaped here), or NULL.
 */
void metrics_render_sample(struct evbuffer *out, const char *name,
    const char *const *labels, double value);

#endif
