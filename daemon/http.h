/*
 * http.h - the HTTP server (libevent evhttp): listening, a route table with
 * {param} segments, body limits, and replies that may be sent later.
 *
 * Contract:
 *  - Handlers get a struct http_req they own until they reply. A handler
 *    replies at once, or keeps the request and replies later (after a group
 *    commit); http_reply*() frees it. A request whose client went away may
 *    still be replied to: the reply is then dropped.
 *  - Bodies over the configured limit never reach a handler (evhttp answers
 *    413 and the server keeps serving).
 *  - Every reply is counted per route and status in metrics.
 *  - Slow and surplus clients: a connection gets request_timeout to send
 *    a whole request (head and body), counted from when it is ready for
 *    one (accepted, or the previous reply handed over); after that it is
 *    closed. While a handler holds a request, no deadline runs. A
 *    connection beyond max_connections is answered 503 at once and
 *    closed, so the descriptors in use stay bounded.
 *  - Loop thread only.
 */
#ifndef OD_HTTP_H
#define OD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "webhook_kv.h"

struct event_base;
struct evhttp_request;
struct http_conn;
struct http_server;
struct http_stream;
struct metrics;

#define HTTP_MAX_PARAMS 4
/* Defaults of [http] max_connections and request_timeout. */
#define HTTP_DEFAULT_MAX_CONNECTIONS	4096
#define HTTP_DEFAULT_REQUEST_TIMEOUT_MS 30000

/*
 * Who made a request, as api_authorized() found it: a staff member's
 * API token or a web session. staff_id 0 = not (yet) authorized.
 */
enum http_role { HTTP_ROLE_NONE = 0, HTTP_ROLE_ORGANIZER, HTTP_ROLE_ADMIN };
enum http_auth_via { HTTP_AUTH_NONE = 0, HTTP_AUTH_TOKEN, HTTP_AUTH_SESSION };
struct http_auth {
	int64_t staff_id;
	enum http_role role;
	enum http_auth_via via;
	int64_t session_id; /* via a session: its row id, else 0 */
};

enum http_method {
	HTTP_GET = 0x01,
	HTTP_POST = 0x02,
	HTTP_PUT = 0x04,
	HTTP_DELETE = 0x08,
	HTTP_PATCH = 0x10,
	HTTP_HEAD = 0x20,
};

struct http_req {
	struct http_server *srv;
	struct evhttp_request *ev; /* libevent's request */
	enum http_method method;
	const char *route;	       /* the matched pattern, for metrics */
	char *path;		       /* decoded path, without the query */
	char *query;		       /* raw query string, or NULL */
	char *params[HTTP_MAX_PARAMS]; /* the {name} segments, in order */
	size_t nparams;
	char *body; /* NUL-terminated copy of the body */
	size_t body_len;
	void *user;		    /* free for the handler */
	struct http_stream *stream; /* http.c: a reply sent in chunks */
	struct http_conn *conn;	    /* http.c: NULL once the client left */
	struct http_auth auth;	    /* set by api_authorized() */
	/* http.c: the matched route's handler, for http_rerun() */
	void (*handler)(struct http_req *req, void *arg);
	void *handler_arg;
};

typedef void http_handler_fn(struct http_req *req, void *arg);

/* Creates a server on base that counts into 'metrics' (may be NULL). */
struct http_server *http_new(struct event_base *base, size_t max_body,
    struct metrics *metrics);
/*
 * Sets the connection cap and the request deadline (defaults above); for
 * connections accepted from then on.
 */
void http_set_limits(struct http_server *srv, unsigned max_connections,
    unsigned request_timeout_ms);
/*
 * Adds a route. 'pattern' is a path whose segments may be "{name}", e.g.
 * "/api/v1/messages/{id}"; 'methods' is a mask of HTTP_*. Routes are tried
 * in the order added.
 */
void http_route(struct http_server *srv, unsigned methods, const char *pattern,
    http_handler_fn *fn, void *arg);
/*
 * Listens on addr:port (port 0 = any free port). Returns 0 and the bound
 * port in *bound, or -1 with the reason in err.
 */
int http_listen(struct http_server *srv, const char *addr, unsigned port,
    unsigned *bound, char *err, size_t errlen);
/* Stops accepting new connections; requests already read still run. */
void http_stop_listening(struct http_server *srv);
/* Frees the server, closing every connection. NULL is a no-op. */
void http_free(struct http_server *srv);

/* The value of request header 'name', or NULL. */
const char *http_header(const struct http_req *req, const char *name);
/*
 * Fills out[0..min(n, max)) with the request's headers in the order
 * received and returns their number n (may exceed max). The strings are
 * borrowed from the request: valid until it is replied to.
 */
size_t http_headers(const struct http_req *req, struct webhook_kv *out,
    size_t max);
/* The client's address as text ("127.0.0.1", "::1"); borrowed as above. */
const char *http_peer(const struct http_req *req);
/* Adds a response header (before replying). */
void http_add_header(struct http_req *req, const char *name, const char *value);
/* Sends status 'code' with a body of 'len' bytes and frees req. */
void http_reply(struct http_req *req, int code, const char *ctype,
    const char *body, size_t len);
/* Sends obj as JSON (the reference is consumed) and frees req. */
void http_reply_json(struct http_req *req, int code, json_t *obj);
/*
 * Sends {"error": {"code": ecode, "message": ...}} with status 'code' and
 * frees req.
 */
void http_reply_error(struct http_req *req, int code, const char *ecode,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * Replies in pieces (HTTP/1.1 chunked transfer encoding), for bodies too
 * big to build in memory. http_reply_start() sends the status and the
 * headers; http_reply_chunk() queues 'len' bytes; http_reply_end() ends
 * the body and frees req (it must always be called, also after the
 * client went away). To send more only once a piece left, use
 * http_reply_chunk_then(): 'fn' is called from a later loop turn (never
 * from inside the call) once the data was written to the socket, or once
 * the client went away - then http_reply_gone() is true and the handler
 * should call http_reply_end() at once. Writing to a client that went
 * away is a no-op.
 */
void http_reply_start(struct http_req *req, int code, const char *ctype);
void http_reply_chunk(struct http_req *req, const void *data, size_t len);
void http_reply_chunk_then(struct http_req *req, const void *data, size_t len,
    http_handler_fn *fn, void *arg);
bool http_reply_gone(const struct http_req *req);
void http_reply_end(struct http_req *req);
/*
 * For a reply held open with nothing to write for a while (an event
 * stream): 'fn' is called once, from a later loop turn, when the client
 * went away (unless a http_reply_chunk_then() callback is pending: that
 * one is called instead); it should call http_reply_end(). NULL stops
 * watching. A chunked reply is not cut by the connection's idle timeout
 * (only a write stalled that long closes it), nor by request_timeout.
 */
void http_reply_watch(struct http_req *req, http_handler_fn *fn, void *arg);
/* Bytes of a chunked reply queued but not yet written to the client. */
size_t http_reply_pending(const struct http_req *req);
/*
 * Ends a chunked reply that cannot be completed (the data source failed):
 * the connection is closed without the last chunk, so the client sees an
 * incomplete transfer rather than a short body that looks whole. Frees
 * req.
 */
void http_reply_abort(struct http_req *req);
/*
 * Calls the handler that received req again, with the same req, now:
 * for a check that answered later (staff.c: a token read on
 * PostgreSQL) while the handler had returned without replying. The
 * handler must have done nothing before that check that it cannot do
 * twice.
 */
void http_rerun(struct http_req *req);
/* "GET", "POST", ... */
const char *http_method_to_text(enum http_method m);
/*
 * Calls fn(arg, req, code) from http_reply() for every whole reply,
 * before req is freed (staff.c records the audit log there). One hook;
 * a later call replaces it. fn must not reply to req.
 */
typedef void http_reply_hook_fn(void *arg, const struct http_req *req,
    int code);
void http_set_reply_hook(struct http_server *srv, http_reply_hook_fn *fn,
    void *arg);
/* The value of response header 'name' added so far, or NULL. */
const char *http_reply_header(const struct http_req *req, const char *name);

#endif
