/*
 * http.c - the HTTP server on libevent's evhttp, with a route table.
 *
 * evhttp parses requests and enforces the size limits; this file maps a
 * request to the first route whose pattern and method match, copies what a
 * handler needs into a struct http_req it owns, and gives every module
 * the same way to answer, JSON errors included. Because a request is a
 * heap object the handler owns, a reply can wait for the store's group
 * commit (doc/queue.md) without blocking anything.
 *
 * Connections. evhttp's own timeout is an idle timeout: it restarts on
 * every byte, so a client sending one header line every few seconds kept
 * its connection for hours, and nothing capped how many connections
 * there were. libevent 2.1 has no hook for a new connection, only one
 * that makes its bufferevent (evhttp_set_bevcb). We make it there, hold
 * a reference, and on the next callback of the loop (before any I/O on
 * it) read the evhttp connection back from its callback argument; from
 * then on a close callback tells us when evhttp frees it. Each
 * connection has one timer: the deadline for its next request. It is
 * armed when the connection is ready for a request and stopped when a
 * complete request reaches a handler; if it fires, the connection is
 * closed. Requests find their connection through a table indexed by
 * descriptor.
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
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "compat.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define HTTP_MAX_HEADERS 16384 /* request line + headers */
#define HTTP_TIMEOUT_S	 30    /* a stalled write; idle between reads */
/* Bytes read and dropped before a refused connection is closed, so that
 * the close sends FIN, not RST, and the 503 is not lost. */
#define HTTP_REFUSE_DRAIN 65536

struct http_route_entry {
	TAILQ_ENTRY(http_route_entry) entry;
	unsigned methods;
	char *pattern;
	http_handler_fn *fn;
	void *arg;
};
TAILQ_HEAD(http_route_list, http_route_entry);

/* One client connection (see the top of the file). */
struct http_conn {
	TAILQ_ENTRY(http_conn) entry;
	struct http_server *srv;
	struct bufferevent *bev;	 /* referenced by us until set up */
	struct evhttp_connection *evcon; /* NULL until set up */
	struct event *ev;		 /* set-up, then the deadline */
	struct http_req *req;		 /* in a handler's hands, or NULL */
	int fd;
};
TAILQ_HEAD(http_conn_list, http_conn);

struct http_server {
	struct event_base *base;
	struct evhttp *evh;
	struct evhttp_bound_socket *sock;
	struct metrics *metrics;
	struct http_route_list routes;
	struct http_conn_list conns;
	unsigned nconns;
	unsigned max_conns;
	struct timeval req_timeout;
	struct http_conn **byfd; /* [fd]: the connection on it, or NULL */
	size_t nbyfd;
	bool at_limit;		      /* logged; cleared below the cap */
	unsigned long refused;	      /* while at_limit */
	http_reply_hook_fn *on_reply; /* http_set_reply_hook() */
	void *on_reply_arg;
};

static void http_on_request(struct evhttp_request *, void *);
static bool http_match(const char *, const char *, struct http_req *);
static enum http_method http_method_of(struct evhttp_request *);
static void http_req_free(struct http_req *);
static void http_text_safe(char *);
static struct bufferevent *http_conn_new_cb(struct event_base *, void *);
static void http_conn_on_event(evutil_socket_t, short, void *);
static void http_conn_setup(struct http_conn *);
static void http_conn_refuse(struct http_conn *);
static void http_conn_expired(struct http_conn *);
static void http_conn_closed(struct evhttp_connection *, void *);
static void http_conn_forget(struct http_conn *);
static void http_conn_ready(struct http_conn *);
static struct http_conn *http_conn_of(struct http_server *,
    struct evhttp_request *);
static void http_stream_closed(struct http_stream *);
static void http_stream_written(struct evhttp_connection *, void *);
static void http_stream_wake(evutil_socket_t, short, void *);

/*
 * A reply sent in chunks. libevent keeps a request whose client went away
 * (EOF, write error, timeout) detached from its connection until
 * evhttp_send_reply_end() frees it, and tells us through the connection's
 * close callback (http_conn_closed); when the whole server is freed it
 * frees the request itself, so 'ev' is then cleared and never touched
 * again.
 */
struct http_stream {
	struct http_req *req;
	struct evhttp_connection *conn; /* NULL once gone */
	struct event *wake;		/* runs fn on a later loop turn */
	http_handler_fn *fn;
	void *arg;
	http_handler_fn *watch; /* http_reply_watch() */
	void *watch_arg;
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
	TAILQ_INIT(&srv->conns);
	http_set_limits(srv, HTTP_DEFAULT_MAX_CONNECTIONS,
	    HTTP_DEFAULT_REQUEST_TIMEOUT_MS);
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
	evhttp_set_bevcb(srv->evh, http_conn_new_cb, srv);
	return srv;
}

void
http_set_limits(struct http_server *srv, unsigned max_connections,
    unsigned request_timeout_ms)
{
	srv->max_conns = max_connections;
	srv->req_timeout.tv_sec = request_timeout_ms / 1000;
	srv->req_timeout.tv_usec = (request_timeout_ms % 1000) * 1000;
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
	struct http_conn *c;

	if (srv == NULL)
		return;
	/* Frees every connection; those set up leave through the close
	 * callback, the ones accepted in this very loop turn stay. */
	evhttp_free(srv->evh);
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL) {
		bufferevent_decref(c->bev);
		http_conn_forget(c);
	}
	free(srv->byfd);
	while ((r = TAILQ_FIRST(&srv->routes)) != NULL) {
		TAILQ_REMOVE(&srv->routes, r, entry);
		free(r->pattern);
		free(r);
	}
	free(srv);
}

/*
 * evhttp accepted a connection and wants its bufferevent. The set-up runs
 * on the next callback of this loop turn, before any I/O on it: evhttp
 * has then filled in the bufferevent's callback argument. Our reference
 * keeps the bufferevent valid if evhttp gave up on it meanwhile.
 */
static struct bufferevent *
http_conn_new_cb(struct event_base *base, void *arg)
{
	struct http_server *srv = arg;
	struct http_conn *c = xcalloc(1, sizeof(*c));

	c->srv = srv;
	c->fd = -1;
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->ev = event_new(base, -1, 0, http_conn_on_event, c);
	if (c->bev == NULL || c->ev == NULL)
		fatalx("http: cannot allocate a connection");
	bufferevent_incref(c->bev);
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
	event_active(c->ev, EV_TIMEOUT, 0);
	return c->bev;
}

static void
http_conn_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->evcon == NULL)
		http_conn_setup(c);
	else
		http_conn_expired(c);
}

/* Learns the connection, then refuses it or starts its deadline. */
static void
http_conn_setup(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	void *evcon = NULL;
	size_t n;

	bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
	if (evcon == NULL) {
		/* evhttp freed it already (out of memory, epoll failed) */
		bufferevent_decref(c->bev);
		http_conn_forget(c);
		return;
	}
	c->evcon = evcon;
	c->fd = (int)bufferevent_getfd(c->bev);
	bufferevent_decref(c->bev); /* evhttp's alone from now on */
	evhttp_connection_set_closecb(c->evcon, http_conn_closed, c);
	if (c->fd >= 0 && (size_t)c->fd >= srv->nbyfd) {
		n = srv->nbyfd == 0 ? 1024 : srv->nbyfd;
		while (n <= (size_t)c->fd)
			n *= 2;
		srv->byfd = xreallocarray(srv->byfd, n, sizeof(*srv->byfd));
		memset(srv->byfd + srv->nbyfd, 0,
		    (n - srv->nbyfd) * sizeof(*srv->byfd));
		srv->nbyfd = n;
	}
	if (c->fd >= 0)
		srv->byfd[c->fd] = c;
	if (srv->nconns > srv->max_conns) {
		http_conn_refuse(c);
		return;
	}
	http_conn_ready(c);
}

/* The connection waits for a request: its deadline starts now. */
static void
http_conn_ready(struct http_conn *c)
{
	c->req = NULL;
	event_add(c->ev, &c->srv->req_timeout);
}

/*
 * Over the cap: a fixed 503 and close, without waiting for the request,
 * so the descriptor is free again at once. What the client sent already
 * is read first: closing a socket with unread data resets it, and the
 * reset can overtake the 503.
 */
static void
http_conn_refuse(struct http_conn *c)
{
	static const char body[] =
	    "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many "
	    "connections; try again later\"}}";
	struct http_server *srv = c->srv;
	char sink[4096], reply[512];
	size_t drained = 0;
	ssize_t n;
	int len;

	while (drained < HTTP_REFUSE_DRAIN &&
	    (n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		drained += (size_t)n;
	len = snprintf(reply, sizeof(reply),
	    "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "Retry-After: 1\r\n"
	    "Connection: close\r\n"
	    "\r\n%s",
	    sizeof(body) - 1, body);
	/* A fresh socket's send buffer takes these few bytes whole. */
	(void)send(c->fd, reply, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (srv->metrics != NULL)
		metrics_count_http(srv->metrics, "over_capacity", 503);
	if (!srv->at_limit) {
		srv->at_limit = true;
		log_warnx("http_connections_at_limit max=%u action=\"new "
			  "connections are answered 503 until some close\"",
		    srv->max_conns);
	}
	srv->refused++;
	evhttp_connection_free(c->evcon); /* http_conn_closed() frees c */
}

/*
 * The deadline passed. A connection still writing its last reply is
 * given another period (evhttp's write timeout covers a stalled reader);
 * one that did not deliver a whole request in time is closed.
 */
static void
http_conn_expired(struct http_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (c->req != NULL)
		return;
	if (evbuffer_get_length(out) > 0) {
		event_add(c->ev, &c->srv->req_timeout);
		return;
	}
	evhttp_connection_get_peer(c->evcon, &addr, &port);
	log_info("http_request_timeout peer=%s timeout_ms=%lld "
		 "action=\"connection closed\"",
	    addr != NULL ? addr : "-",
	    (long long)c->srv->req_timeout.tv_sec * 1000 +
		c->srv->req_timeout.tv_usec / 1000);
	evhttp_connection_free(c->evcon); /* http_conn_closed() frees c */
}

/*
 * evhttp frees the connection. A request still attached to it is freed
 * with it, so the handler that holds it must no longer touch 'ev'; a
 * request libevent detached before (the client left) stays valid until
 * it is replied to.
 */
static void
http_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;
	struct http_req *req = c->req;

	(void)evcon;
	if (req != NULL) {
		req->conn = NULL;
		if (req->ev != NULL &&
		    evhttp_request_get_connection(req->ev) != NULL)
			req->ev = NULL;
		if (req->stream != NULL)
			http_stream_closed(req->stream);
	}
	http_conn_forget(c);
}

static void
http_conn_forget(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if (c->fd >= 0 && (size_t)c->fd < srv->nbyfd && srv->byfd[c->fd] == c)
		srv->byfd[c->fd] = NULL;
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->nconns--;
	if (srv->at_limit && srv->nconns < srv->max_conns) {
		log_info("http_connections_below_limit max=%u refused=%lu",
		    srv->max_conns, srv->refused);
		srv->at_limit = false;
		srv->refused = 0;
	}
	event_free(c->ev);
	free(c);
}

/* The connection a complete request arrived on, or NULL. */
static struct http_conn *
http_conn_of(struct http_server *srv, struct evhttp_request *ev)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct http_conn *c;
	evutil_socket_t fd;

	if (evcon == NULL)
		return NULL;
	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (fd < 0 || (size_t)fd >= srv->nbyfd)
		return NULL;
	c = srv->byfd[fd];
	return c != NULL && c->evcon == evcon ? c : NULL;
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

void
http_rerun(struct http_req *req)
{
	req->handler(req, req->handler_arg);
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
	/* A whole request is in: the deadline stops until the reply. */
	if ((req->conn = http_conn_of(srv, ev)) != NULL) {
		req->conn->req = req;
		event_del(req->conn->ev);
	}
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
			req->handler = r->fn;
			req->handler_arg = r->arg;
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
	if (req->ev == NULL)
		return NULL; /* the server is being freed */
	return evhttp_find_header(evhttp_request_get_input_headers(req->ev),
	    name);
}

size_t
http_headers(const struct http_req *req, struct webhook_kv *out, size_t max)
{
	struct evkeyvalq *h;
	struct evkeyval *kv;
	size_t n = 0;

	if (req->ev == NULL)
		return 0;
	h = evhttp_request_get_input_headers(req->ev);
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
	struct evhttp_connection *conn;
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (req->ev == NULL ||
	    (conn = evhttp_request_get_connection(req->ev)) == NULL)
		return "";
	evhttp_connection_get_peer(conn, &addr, &port);
	return addr != NULL ? addr : "";
}

void
http_add_header(struct http_req *req, const char *name, const char *value)
{
	if (req->ev != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req->ev),
		    name, value);
}

/*
 * Frees req. Its connection, if any, waits for the next request from
 * here on (before evhttp gets the reply: sending may free the
 * connection).
 */
static void
http_req_free(struct http_req *req)
{
	size_t i;

	if (req->conn != NULL) {
		http_conn_ready(req->conn);
		req->conn = NULL;
	}

	for (i = 0; i < req->nparams; i++)
		free(req->params[i]);
	free(req->path);
	free(req->query);
	free(req->body);
	free(req);
}

void
http_set_reply_hook(struct http_server *srv, http_reply_hook_fn *fn, void *arg)
{
	srv->on_reply = fn;
	srv->on_reply_arg = arg;
}

const char *
http_reply_header(const struct http_req *req, const char *name)
{
	if (req->ev == NULL)
		return NULL;
	return evhttp_find_header(evhttp_request_get_output_headers(req->ev),
	    name);
}

void
http_reply(struct http_req *req, int code, const char *ctype, const char *body,
    size_t len)
{
	struct evhttp_request *ev = req->ev;

	if (req->srv->on_reply != NULL)
		req->srv->on_reply(req->srv->on_reply_arg, req, code);
	if (req->srv->metrics != NULL)
		metrics_count_http(req->srv->metrics, req->route, code);
	log_trace(TRACE_HTTP, "http_reply path=%s status=%d bytes=%zu",
	    req->path ? req->path : "-", code, len);
	if (ev != NULL) {
		if (ctype != NULL)
			http_add_header(req, "Content-Type", ctype);
		if (len > 0 && req->method != HTTP_HEAD)
			evbuffer_add(evhttp_request_get_output_buffer(ev), body,
			    len);
	}
	http_req_free(req);
	if (ev != NULL)
		evhttp_send_reply(ev, code, NULL, NULL);
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
	struct bufferevent *bev;

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
	if (req->ev == NULL ||
	    (hs->conn = evhttp_request_get_connection(req->ev)) == NULL) {
		hs->gone = true; /* the client left while we worked */
		return;
	}
	evhttp_send_reply_start(req->ev, code, NULL);
	/* While the reply is written, evhttp still reads to learn of a
	 * close, under its idle timeout: a client that only listens (a
	 * Server-Sent Events stream) would be cut after HTTP_TIMEOUT_S.
	 * Only a stalled write counts now, and what the client sends
	 * meanwhile (nothing is due) is buffered up to a bound, not without
	 * one; http_reply_end() restores both. */
	bev = evhttp_connection_get_bufferevent(hs->conn);
	bufferevent_set_timeouts(bev, NULL,
	    &(struct timeval){HTTP_TIMEOUT_S, 0});
	bufferevent_setwatermark(bev, EV_READ, 0, HTTP_MAX_HEADERS);
}

/*
 * The connection is being freed: the client went away, or shutdown
 * (http_conn_closed() has cleared req->ev if it goes with it).
 */
static void
http_stream_closed(struct http_stream *hs)
{
	hs->gone = true;
	hs->conn = NULL;
	if (hs->fn != NULL || hs->watch != NULL)
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
	if (fn != NULL) {
		fn(hs->req, hs->arg); /* may have freed hs */
		return;
	}
	if (hs->gone && (fn = hs->watch) != NULL) {
		hs->watch = NULL;
		fn(hs->req, hs->watch_arg);
	}
}

void
http_reply_watch(struct http_req *req, http_handler_fn *fn, void *arg)
{
	struct http_stream *hs = req->stream;

	hs->watch = fn;
	hs->watch_arg = arg;
	if (hs->gone && fn != NULL)
		event_active(hs->wake, EV_TIMEOUT, 0);
}

size_t
http_reply_pending(const struct http_req *req)
{
	const struct http_stream *hs = req->stream;

	if (hs == NULL || hs->gone || hs->conn == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(
	    evhttp_connection_get_bufferevent(hs->conn)));
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

	struct evhttp_request *ev = req->ev;

	log_trace(TRACE_HTTP, "http_reply_end path=%s gone=%d",
	    req->path ? req->path : "-", hs->gone);
	if (hs->conn != NULL) { /* what http_reply_start() changed */
		evhttp_connection_set_timeout(hs->conn, HTTP_TIMEOUT_S);
		bufferevent_setwatermark(
		    evhttp_connection_get_bufferevent(hs->conn), EV_READ, 0, 0);
	}
	event_free(hs->wake);
	free(hs);
	req->stream = NULL;
	http_req_free(req);
	if (ev != NULL)
		evhttp_send_reply_end(ev); /* frees a detached one too */
}

void
http_reply_abort(struct http_req *req)
{
	struct http_stream *hs = req->stream;

	log_trace(TRACE_HTTP, "http_reply_abort path=%s",
	    req->path ? req->path : "-");
	/* The close callback runs inside: it clears req->ev, whose request
	 * the connection frees, and req->conn. */
	if (hs->conn != NULL)
		evhttp_connection_free(hs->conn);
	http_reply_end(req);
}
