/*
 * api.h - the JSON admin API (/api/v1/...), /healthz and /metrics.
 *
 * Contract:
 *  - api_new() registers its routes on the HTTP server; requests under
 *    /api/v1 need a staff member's "Authorization: Bearer <token>" or
 *    web session (staff.h).
 *  - A message is answered 202 only after its row committed (doc/queue.md).
 *  - Errors are JSON {"error": {"code", "message"}} with the right status.
 *  - Dependencies are borrowed and must outlive the api. Loop thread only.
 */
#ifndef OD_API_H
#define OD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct config;
struct dispatch;
struct http_server;
struct metrics;
struct store;

struct api_deps {
	struct store *st;
	struct dispatch *dispatch;
	struct metrics *metrics;
	const struct config *cfg;
	const char *token;  /* the daemon's token (staff.h makes it valid) */
	int64_t started_at; /* ms, for uptime */
};

struct api;

/* Registers the routes on srv and returns the api (free with api_free). */
struct api *api_new(struct http_server *srv, const struct api_deps *deps);
/* Adds lines to /metrics: fn appends Prometheus text to 'out' (an
 * evbuffer) on every scrape. One hook; a later call replaces it. */
struct evbuffer;
typedef void api_metrics_fn(void *arg, struct evbuffer *out);
void api_add_metrics(struct api *api, api_metrics_fn *fn, void *arg);
/* From now on, requests that would enqueue are refused with 503. */
void api_set_stopping(struct api *api);
/* True once shutdown began: handlers that write answer 503. */
bool api_is_stopping(const struct api *api);
/*
 * Checks the request's bearer token; when it fails, answers 401 itself
 * and returns false. Every /api/v1 handler (api.c, members.c, ...) starts
 * with it.
 */
struct http_req;
bool api_authorized(struct api *api, struct http_req *req);
/* Who may call: the staff module (staff.h), set once before serving. */
struct staff;
void api_set_staff(struct api *api, struct staff *staff);
/*
 * api_authorized() and the caller must be an admin: otherwise answers
 * 403 (or 401) itself and returns false. Staff management and the audit
 * log use it.
 */
bool api_require_admin(struct api *api, struct http_req *req);
/*
 * The request body as a JSON object (new reference), or NULL after
 * answering 415 (not application/json), 400 (does not parse, with line
 * and column) or 422 (not an object) itself.
 */
json_t *api_read_object(struct http_req *req);
/*
 * Refuses fields of object o not in the NULL-terminated 'known' (a typo
 * must not pass silently): 0, or -1 with "FIELD: unknown field" in err.
 */
int api_check_fields(json_t *o, const char *const *known, char *err,
    size_t errlen);
/*
 * Validates the JSON body 'o' of POST /api/v1/messages into m, whose
 * strings are borrowed from o; resolves the default sender and its from
 * number. Returns 0, or -1 with "field: problem" in err (answered 422).
 */
struct queue_new;
int api_message_parse(struct api *api, json_t *o, struct queue_new *m,
    char *err, size_t errlen);
/*
 * Parses the request's query string into q (free with
 * evhttp_clear_headers()) and refuses parameters not in the
 * NULL-terminated 'known'. Answers 422 itself and returns false on
 * failure.
 */
struct evkeyvalq;
bool api_read_query(struct http_req *req, struct evkeyvalq *q,
    const char *const *known);
/*
 * Parses a time given as ISO 8601 ("2026-11-27T10:00:00Z", an optional
 * fraction, "Z" or +HH:MM / -HH:MM) or as Unix seconds (a JSON number)
 * into ms since the epoch. 0, or -1 if it is neither.
 */
int api_parse_time(const json_t *v, int64_t *ms);
/* Frees api; NULL is a no-op. */
void api_free(struct api *api);

#endif
