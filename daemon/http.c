/*
 * http.c - the HTTP server on libevent's evhttp, with a route table.
 *
 * evhttp parses requests and enforces the size limits; this file maps a
 * request to the first route whose pattern and method match, copies what a
 * handler needs into a struct http_req it owns, and gives every module
 * the same way to answer, JSON errors included. Because a request is a
 * heap object the handler owns, a reply can wait for the store's group
 * commit (doc/queue.md) without blocking anything.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/queue.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "compat.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define HTTP_MAX_HEADERS 16384 /* request line + headers */
#define HTTP_TIMEOUT_S	 30    /* idle keep-alive and slow clients */

struct http_route_entry {
	TAILQ_ENTRY(http_route_entry) entry;
	unsigned methods;
	char *pattern;
	http_handler_fn *fn;
	void *arg;
};
TAILQ_HEAD(http_route_list, http_route_entry);

struct http_server {
	struct event_base *base;
	struct evhttp *evh;
	struct evhttp_bound_socket *sock;
	struct metrics *metrics;
	struct http_route_list routes;
};

static void http_on_request(struct evhttp_request *, void *);
static bool http_match(const char *, const char *, struct http_req *);
static enum http_method http_method_of(struct evhttp_request *);
static void http_req_free(struct http_req *);
static void http_text_safe(char *);
static void http_stream_closed(struct evhttp_connection *, void *);
static void http_stream_written(struct evhttp_connection *, void *);
static void http_stream_wake(evutil_socket_t, short, void *);

/*
 * A reply sent in chunks. libevent keeps a request whose client went away
 * (EOF, write error, timeout) detached from its connection until
 * evhttp_send_reply_end() frees it, and tells us through the connection's
 * close callback; when the whole server is freed it frees the request
 * itself, so 'ev' is then cleared and never touched again.
 */
struct http_stream {
	struct http_req *req;
	struct evhttp_connection *conn; /* NULL once gone */
	struct event *wake;		/* runs fn on a later loop turn */
	http_handler_fn *fn;
	void *arg;
	bool gone;
};

static const struct {
	enum http_method m;
	const char *name;
} http_methods[] = {
    {HTTP_GET, "GET"},
    {HTTP_POST, "POST"},
    {HTTP_PUT, "PUT"},
    {HTTP_DELETE, "DELETE"},
    {HTTP_PATCH, "PATCH"},
    {HTTP_HEAD, "HEAD"},
};

struct http_server *
http_new(struct event_base *base, size_t max_body, struct metrics *metrics)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));

	srv->base = base;
	srv->metrics = metrics;
	TAILQ_INIT(&srv->routes);
	if ((srv->evh = evhttp_new(base)) == NULL)
		fatalx("http_new: evhttp_new failed");
	evhttp_set_max_body_size(srv->evh, (ev_ssize_t)max_body);
	evhttp_set_max_headers_size(srv->evh, HTTP_MAX_HEADERS);
	evhttp_set_timeout(srv->evh, HTTP_TIMEOUT_S);
	evhttp_set_allowed_methods(srv->evh,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
		EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD);
	/* Read the rest of an oversized body before closing, so the client
	 * sees the 413 instead of a reset. */
	evhttp_set_flags(srv->evh, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_gencb(srv->evh, http_on_request, srv);
	return srv;
}

void
http_route(struct http_server *srv, unsigned methods, const char *pattern,
    http_handler_fn *fn, void *arg)
{
	struct http_route_entry *r = xcalloc(1, sizeof(*r));

	r->methods = methods;
	r->pattern = xstrdup(pattern);
	r->fn = fn;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&srv->routes, r, entry);
}

int
http_listen(struct http_server *srv, const char *addr, unsigned port,
    unsigned *bound, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	evutil_socket_t fd;

	srv->sock =
	    evhttp_bind_socket_with_handle(srv->evh, addr, (ev_uint16_t)port);
	if (srv->sock == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", addr, port,
		    strerror(errno));
		return -1;
	}
	fd = evhttp_bound_socket_get_fd(srv->sock);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1) {
		snprintf(err, errlen, "getsockname: %s", strerror(errno));
		return -1;
	}
	if (ss.ss_family == AF_INET6)
		*bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		*bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

void
http_stop_listening(struct http_server *srv)
{
	if (srv->sock != NULL) {
		evhttp_del_accept_socket(srv->evh, srv->sock);
		srv->sock = NULL;
	}
}

void
http_free(struct http_server *srv)
{
	struct http_route_entry *r;

	if (srv == NULL)
		return;
	evhttp_free(srv->evh);
	while ((r = TAILQ_FIRST(&srv->routes)) != NULL) {
		TAILQ_REMOVE(&srv->routes, r, entry);
		free(r->pattern);
		free(r);
	}
	free(srv);
}

static enum http_method
http_method_of(struct evhttp_request *ev)
{
	switch (evhttp_request_get_command(ev)) {
	case EVHTTP_REQ_GET:
		return HTTP_GET;
	case EVHTTP_REQ_POST:
		return HTTP_POST;
	case EVHTTP_REQ_PUT:
		return HTTP_PUT;
	case EVHTTP_REQ_DELETE:
		return HTTP_DELETE;
	case EVHTTP_REQ_PATCH:
		return HTTP_PATCH;
	default:
		return HTTP_HEAD;
	}
}

const char *
http_method_to_text(enum http_method m)
{
	size_t i;

	for (i = 0; i < sizeof(http_methods) / sizeof(*http_methods); i++)
		if (http_methods[i].m == m)
			return http_methods[i].name;
	return "?";
}

/*
 * Matches 'path' against 'pattern' segment by segment; a "{name}" segment
 * matches any non-empty segment, which is captured into req->params.
 */
static bool
http_match(const char *pattern, const char *path, struct http_req *req)
{
	const char *p = pattern, *q = path, *pe, *qe;
	size_t n = 0, i;

	while (*p != '\0' && *q != '\0') {
		pe = strchr(p, '/');
		pe = pe ? pe : p + strlen(p);
		qe = strchr(q, '/');
		qe = qe ? qe : q + strlen(q);
		if (*p == '{') {
			if (qe == q || n == HTTP_MAX_PARAMS)
				goto fail;
			req->params[n++] = xstrndup(q, (size_t)(qe - q));
		} else if (pe - p != qe - q || strncmp(p, q, (size_t)(pe - p)))
			goto fail;
		p = *pe ? pe + 1 : pe;
		q = *qe ? qe + 1 : qe;
		if ((*pe == '\0') != (*qe == '\0'))
			goto fail;
	}
	if (*p != '\0' || *q != '\0')
		goto fail;
	req->nparams = n;
	return true;
fail:
	for (i = 0; i < n; i++) {
		free(req->params[i]);
		req->params[i] = NULL;
	}
	return false;
}

/* Builds the http_req, finds the route, and calls its handler. */
static void
http_on_request(struct evhttp_request *ev, void *arg)
{
	struct http_server *srv = arg;
	struct http_route_entry *r;
	struct http_req *req = xcalloc(1, sizeof(*req));
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	char allow[64] = "";
	bool path_known = false;
	size_t plen = 0, i;

	req->srv = srv;
	req->ev = ev;
	req->route = "unmatched";
	req->method = http_method_of(ev);
	req->path = evhttp_uridecode(raw ? raw : "/", 0, &plen);
	if (uri != NULL && evhttp_uri_get_query(uri) != NULL)
		req->query = xstrdup(evhttp_uri_get_query(uri));
	req->body_len = evbuffer_get_length(in);
	req->body = xmalloc(req->body_len + 1);
	evbuffer_remove(in, req->body, req->body_len);
	req->body[req->body_len] = '\0';
	if (req->path == NULL || strlen(req->path) != plen) {
		/* an encoded NUL ("%00") in the path */
		http_reply_error(req, 400, "bad_request", "malformed path");
		return;
	}
	log_trace(TRACE_HTTP, "http_request method=%s path=%s bytes=%zu",
	    http_method_to_text(req->method), req->path, req->body_len);
	TAILQ_FOREACH(r, &srv->routes, entry) {
		if (!http_match(r->pattern, req->path, req))
			continue;
		path_known = true;
		if (r->methods & req->method) {
			req->route = r->pattern;
			r->fn(req, r->arg);
			return;
		}
		for (i = 0; i < req->nparams; i++) {
			free(req->params[i]);
			req->params[i] = NULL;
		}
		for (i = 0; i < sizeof(http_methods) / sizeof(*http_methods);
		     i++)
			if (r->methods & http_methods[i].m) {
				if (allow[0] != '\0')
					strlcat(allow, ", ", sizeof(allow));
				strlcat(allow, http_methods[i].name,
				    sizeof(allow));
			}
	}
	if (path_known) {
		http_add_header(req, "Allow", allow);
		http_reply_error(req, 405, "method_not_allowed",
		    "%s is not allowed on %s (allowed: %s)",
		    http_method_to_text(req->method), req->path, allow);
	} else
		http_reply_error(req, 404, "not_found", "no such path: %s",
		    req->path);
}

const char *
http_header(const struct http_req *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req->ev),
	    name);
}

size_t
http_headers(const struct http_req *req, struct webhook_kv *out, size_t max)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req->ev);
	struct evkeyval *kv;
	size_t n = 0;

	TAILQ_FOREACH(kv, h, next) {
		if (n < max) {
			out[n].key = kv->key;
			out[n].value = kv->value;
		}
		n++;
	}
	return n;
}

const char *
http_peer(const struct http_req *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req->ev);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (conn == NULL)
		return "";
	evhttp_connection_get_peer(conn, &addr, &port);
	return addr != NULL ? addr : "";
}

void
http_add_header(struct http_req *req, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(req->ev), name,
	    value);
}

static void
http_req_free(struct http_req *req)
{
	size_t i;

	for (i = 0; i < req->nparams; i++)
		free(req->params[i]);
	free(req->path);
	free(req->query);
	free(req->body);
	free(req);
}

void
http_reply(struct http_req *req, int code, const char *ctype, const char *body,
    size_t len)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req->ev);

	if (ctype != NULL)
		http_add_header(req, "Content-Type", ctype);
	if (len > 0 && req->method != HTTP_HEAD)
		evbuffer_add(out, body, len);
	if (req->srv->metrics != NULL)
		metrics_count_http(req->srv->metrics, req->route, code);
	log_trace(TRACE_HTTP, "http_reply path=%s status=%d bytes=%zu",
	    req->path ? req->path : "-", code, len);
	evhttp_send_reply(req->ev, code, NULL, NULL);
	http_req_free(req);
}

void
http_reply_json(struct http_req *req, int code, json_t *obj)
{
	static const char fallback[] = "{\"error\":{\"code\":\"internal\","
				       "\"message\":\"reply not encodable\"}}";
	char *s = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	if (s == NULL) {
		/* A reply built from bad input (jansson refuses invalid
		 * UTF-8): a bug to fix, never a reason to stop serving. */
		log_warnx("http_reply_unencodable route=%s status=%d",
		    req->route, code);
		http_reply(req, 500, "application/json", fallback,
		    sizeof(fallback) - 1);
		return;
	}
	http_reply(req, code, "application/json", s, strlen(s));
	free(s);
}

void
http_reply_error(struct http_req *req, int code, const char *ecode,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_text_safe(msg);
	http_reply_json(req, code,
	    json_pack("{s:{s:s, s:s}}", "error", "code", ecode, "message",
		msg));
}

/*
 * Error texts echo client input (a path, a sender name). If msg is not
 * valid UTF-8 (jansson would refuse it), every non-ASCII byte becomes
 * '?'; control characters always do.
 */
static void
http_text_safe(char *msg)
{
	json_t *probe = json_string(msg);
	bool ascii_only = probe == NULL;
	unsigned char *p;

	json_decref(probe);
	for (p = (unsigned char *)msg; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f || (ascii_only && *p >= 0x80))
			*p = '?';
}

void
http_reply_start(struct http_req *req, int code, const char *ctype)
{
	struct http_stream *hs = xcalloc(1, sizeof(*hs));

	hs->req = req;
	req->stream = hs;
	hs->wake = event_new(req->srv->base, -1, 0, http_stream_wake, hs);
	if (hs->wake == NULL)
		fatalx("http_reply_start: event_new failed");
	if (ctype != NULL)
		http_add_header(req, "Content-Type", ctype);
	if (req->srv->metrics != NULL)
		metrics_count_http(req->srv->metrics, req->route, code);
	log_trace(TRACE_HTTP, "http_reply_start path=%s status=%d",
	    req->path ? req->path : "-", code);
	if ((hs->conn = evhttp_request_get_connection(req->ev)) == NULL) {
		hs->gone = true; /* the client left while we worked */
		return;
	}
	evhttp_connection_set_closecb(hs->conn, http_stream_closed, hs);
	evhttp_send_reply_start(req->ev, code, NULL);
}

/* The connection is being freed: the client went away, or shutdown. */
static void
http_stream_closed(struct evhttp_connection *conn, void *arg)
{
	struct http_stream *hs = arg;

	(void)conn;
	hs->gone = true;
	hs->conn = NULL;
	/* Still attached: libevent frees the request with the connection. */
	if (evhttp_request_get_connection(hs->req->ev) != NULL)
		hs->req->ev = NULL;
	if (hs->fn != NULL)
		event_active(hs->wake, EV_TIMEOUT, 0);
}

static void
http_stream_written(struct evhttp_connection *conn, void *arg)
{
	struct http_stream *hs = arg;

	(void)conn;
	if (hs->fn != NULL)
		event_active(hs->wake, EV_TIMEOUT, 0);
}

static void
http_stream_wake(evutil_socket_t fd, short what, void *arg)
{
	struct http_stream *hs = arg;
	http_handler_fn *fn = hs->fn;

	(void)fd;
	(void)what;
	hs->fn = NULL;
	if (fn != NULL)
		fn(hs->req, hs->arg);
}

bool
http_reply_gone(const struct http_req *req)
{
	return req->stream == NULL || req->stream->gone;
}

void
http_reply_chunk(struct http_req *req, const void *data, size_t len)
{
	http_reply_chunk_then(req, data, len, NULL, NULL);
}

void
http_reply_chunk_then(struct http_req *req, const void *data, size_t len,
    http_handler_fn *fn, void *arg)
{
	struct http_stream *hs = req->stream;
	struct evbuffer *buf;

	hs->fn = fn;
	hs->arg = arg;
	if (hs->gone || len == 0) {
		if (fn != NULL)
			event_active(hs->wake, EV_TIMEOUT, 0);
		return;
	}
	if ((buf = evbuffer_new()) == NULL)
		fatalx("http_reply_chunk: evbuffer_new failed");
	evbuffer_add(buf, data, len);
	evhttp_send_reply_chunk_with_cb(req->ev, buf,
	    fn != NULL ? http_stream_written : NULL, hs);
	evbuffer_free(buf);
}

void
http_reply_end(struct http_req *req)
{
	struct http_stream *hs = req->stream;

	log_trace(TRACE_HTTP, "http_reply_end path=%s gone=%d",
	    req->path ? req->path : "-", hs->gone);
	if (hs->conn != NULL)
		evhttp_connection_set_closecb(hs->conn, NULL, NULL);
	if (req->ev != NULL)
		evhttp_send_reply_end(req->ev); /* frees a detached one too */
	event_free(hs->wake);
	free(hs);
	http_req_free(req);
}

void
http_reply_abort(struct http_req *req)
{
	struct http_stream *hs = req->stream;

	log_trace(TRACE_HTTP, "http_reply_abort path=%s",
	    req->path ? req->path : "-");
	/* The close callback runs inside: it clears req->ev, whose request
	 * the connection frees. */
	if (hs->conn != NULL)
		evhttp_connection_free(hs->conn);
	http_reply_end(req);
}
