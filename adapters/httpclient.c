/*
 * httpclient.c - outbound HTTP on one libcurl multi handle, driven by the
 * daemon's libevent loop (the pattern of curl's docs/examples/
 * multi-event.c).
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 * when to wake it (CURLMOPT_TIMERFUNCTION); we mirror both with libevent
 * events and hand readiness back through curl_multi_socket_action().
 * Finished transfers are collected with curl_multi_info_read() after each
 * such call, so a done callback always runs from the loop, never from
 * inside httpc_request() (curl_multi_add_handle only arms a 0 ms timer).
 *
 * A request runs on a transfer record (struct httpc_xfer) that owns an
 * easy handle; finished records are kept for reuse with their handle's
 * options, their header list, URL and buffers, so a request sets only
 * what differs from the last one that ran on that record (for a sender,
 * usually the body alone). Connections live in the multi handle's cache,
 * so keep-alive reuse spans requests. The caps per origin
 * (scheme://host:port) and in all come from [http_client]. Requests over
 * a cap wait here, in a FIFO per origin, and reach libcurl only when a
 * transfer of theirs ends: libcurl's own queue for handles over
 * CURLMOPT_MAX_HOST_CONNECTIONS halved throughput when hundreds waited
 * (measured: 5,100 vs 11,500 requests/s on loopback), and a request's
 * timeout now covers its transfer, not its wait. With HTTP/1.1 one
 * transfer is one connection, so the caps are connection caps; the curl
 * options stay set as a backstop.
 *
 * Sockets curl asked us to watch are also kept on a list, so that
 * httpc_free() releases their events even when curl_multi_cleanup() does
 * not report every cached connection's socket as removed.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "compat.h"
#include "httpclient.h"
#include "log.h"
#include "xmalloc.h"

#define HTTPC_CONNECT_TIMEOUT_MS 5000  /* [http_client] connect_timeout */
#define HTTPC_TIMEOUT_MS	 15000 /* Twilio's own webhook budget */
#define HTTPC_MAX_PER_HOST	 16
#define HTTPC_MAX_TOTAL		 256
#define HTTPC_MAX_HEADERS	 32 /* more is a caller bug */

/* A socket libcurl asked us to watch, with its libevent event. */
struct httpc_sock {
	LIST_ENTRY(httpc_sock) entry;
	struct httpc *c;
	curl_socket_t fd;
	short events; /* EV_READ|EV_WRITE watched now */
	struct event *ev;
};
LIST_HEAD(httpc_sock_list, httpc_sock);

struct httpc_origin;

/*
 * One request in flight: waiting for its origin, or handed to libcurl;
 * or, between requests, idle on httpc.idle with what its last request
 * set (options, headers, URL, buffers) for the next one to reuse.
 */
struct httpc_xfer {
	TAILQ_ENTRY(httpc_xfer) entry;	/* httpc.xfers, or httpc.idle */
	TAILQ_ENTRY(httpc_xfer) wentry; /* httpc_origin.waiting */
	struct httpc *c;
	struct httpc_origin *origin;
	bool started; /* added to the multi handle */
	CURL *easy;   /* its fixed options set once, at creation */
	struct curl_slist *headers; /* as set on easy; NULL = none yet */
	char *url;		    /* as set on easy; NULL = none yet */
	CURLU *uh;	 /* url parsed, set on easy (CURLOPT_CURLU) */
	long timeout_ms; /* as set on easy */
	char *req;	 /* the request body (CURLOPT_POSTFIELDS) */
	size_t req_cap;
	httpc_done_fn *done;
	void *arg;
	char *body; /* the response body so far */
	size_t len;
	size_t cap;
	bool too_large;
	char errbuf[CURL_ERROR_SIZE];
};
TAILQ_HEAD(httpc_xfer_list, httpc_xfer);

/* Transfers to one scheme://host:port, and those waiting for a turn. */
struct httpc_origin {
	LIST_ENTRY(httpc_origin) entry;
	char *key;
	unsigned active;
	struct httpc_xfer_list waiting;
};
LIST_HEAD(httpc_origin_list, httpc_origin);

struct httpc {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	unsigned connect_timeout_ms;
	unsigned timeout_ms;
	char *ca_file;
	unsigned per_host; /* transfers per origin at once */
	unsigned total;	   /* transfers at once */
	unsigned active;   /* handed to libcurl */
	struct httpc_xfer_list xfers;
	struct httpc_origin_list origins;
	struct httpc_sock_list socks;
	unsigned n;
	int running;
	/* Finished transfer records kept for reuse, at most 'total':
	 * curl_easy_init and cleanup allocate and free tens of kilobytes,
	 * and setting every option, header and URL again per request cost
	 * CPU on every message (bench/README.md). */
	struct httpc_xfer_list idle;
	size_t nidle;
};

static int httpc_on_socket(CURL *, curl_socket_t, int, void *, void *);
static int httpc_on_timer_set(CURLM *, long, void *);
static void httpc_on_event(evutil_socket_t, short, void *);
static void httpc_on_timeout(evutil_socket_t, short, void *);
static size_t httpc_on_write(char *, size_t, size_t, void *);
static struct httpc_xfer *httpc_xfer_get(struct httpc *, char *, size_t);
static int httpc_setup_fixed(struct httpc *, struct httpc_xfer *);
static int httpc_setup(struct httpc *, struct httpc_xfer *,
    const struct httpc_request *, char *, size_t);
static bool httpc_headers_same(const struct curl_slist *, const char *const *);
static int httpc_setup_url(struct httpc_xfer *, const char *, char *, size_t);
static int httpc_setup_headers(struct httpc_xfer *, const char *const *, char *,
    size_t);
static int httpc_setup_method(struct httpc_xfer *,
    const struct httpc_request *);
static void httpc_collect(struct httpc *);
static void httpc_finish(struct httpc_xfer *, CURLcode);
static void httpc_response_fill(struct httpc_xfer *, CURLcode,
    struct httpc_response *);
static struct httpc_origin *httpc_origin_get(struct httpc *, const char *);
static void httpc_pump(struct httpc *);
static void httpc_stop(struct httpc_xfer *);
static void httpc_xfer_free(struct httpc_xfer *);
static void httpc_xfer_destroy(struct httpc_xfer *);

/*
 * Creates the client: a multi handle whose sockets and timer run on
 * 'base'. Zero fields of 'cfg' take the defaults of httpclient.h; the
 * CA file path is copied. Returns NULL with err set if libcurl refuses.
 */
struct httpc *
httpc_new(struct event_base *base, const struct httpc_config *cfg, char *err,
    size_t errlen)
{
	struct httpc *c;
	long per_host, total;
	int bad = 0;

	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->connect_timeout_ms = cfg->connect_timeout_ms
	    ? cfg->connect_timeout_ms
	    : HTTPC_CONNECT_TIMEOUT_MS;
	c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : HTTPC_TIMEOUT_MS;
	c->ca_file = cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
	per_host =
	    cfg->max_per_host ? (long)cfg->max_per_host : HTTPC_MAX_PER_HOST;
	total = cfg->max_total ? (long)cfg->max_total : HTTPC_MAX_TOTAL;
	c->per_host = (unsigned)per_host;
	c->total = (unsigned)total;
	TAILQ_INIT(&c->xfers);
	TAILQ_INIT(&c->idle);
	LIST_INIT(&c->origins);
	LIST_INIT(&c->socks);
	if ((c->multi = curl_multi_init()) == NULL) {
		snprintf(err, errlen, "curl_multi_init failed");
		goto fail;
	}
	bad |= curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION,
		   httpc_on_socket) != CURLM_OK;
	bad |= curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK;
	bad |= curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION,
		   httpc_on_timer_set) != CURLM_OK;
	bad |= curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK;
	bad |= curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
		   per_host) != CURLM_OK;
	bad |= curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
		   total) != CURLM_OK;
	/* keep as many idle connections as may be open at once */
	bad |= curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, total) !=
	    CURLM_OK;
	if (bad) {
		snprintf(err, errlen, "curl_multi_setopt failed");
		goto fail;
	}
	if ((c->timer = evtimer_new(base, httpc_on_timeout, c)) == NULL) {
		snprintf(err, errlen, "evtimer_new failed");
		goto fail;
	}
	return c;
fail:
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	free(c->ca_file);
	free(c);
	return NULL;
}

/*
 * Starts 'req': copies it into a new easy handle, queues that on its
 * origin, and adds it to the multi handle if the caps allow (which only
 * arms the timer; the transfer begins on the loop). Returns 0 (done runs
 * exactly once, later) or -1 with err set.
 */
int
httpc_request(struct httpc *c, const struct httpc_request *req,
    httpc_done_fn *done, void *arg, char *err, size_t errlen)
{
	struct httpc_xfer *x;

	if (req->url == NULL ||
	    (strncmp(req->url, "http://", 7) != 0 &&
		strncmp(req->url, "https://", 8) != 0)) {
		snprintf(err, errlen, "not an http:// or https:// URL");
		return -1;
	}
	if ((x = httpc_xfer_get(c, err, errlen)) == NULL)
		return -1;
	x->done = done;
	x->arg = arg;
	if (httpc_setup(c, x, req, err, errlen) == -1) {
		httpc_xfer_free(x);
		return -1;
	}
	x->origin = httpc_origin_get(c, req->url);
	TAILQ_INSERT_TAIL(&x->origin->waiting, x, wentry);
	TAILQ_INSERT_TAIL(&c->xfers, x, entry);
	c->n++;
	httpc_pump(c);
	return 0;
}

/* The origin of url ("https://host:port", up to the path), made once. */
static struct httpc_origin *
httpc_origin_get(struct httpc *c, const char *url)
{
	const char *auth = strstr(url, "://") + 3;
	size_t len = (size_t)(auth - url) + strcspn(auth, "/?#");
	struct httpc_origin *o;

	LIST_FOREACH(o, &c->origins, entry)
		if (strlen(o->key) == len && strncmp(o->key, url, len) == 0)
			return o;
	o = xcalloc(1, sizeof(*o));
	o->key = xstrndup(url, len);
	TAILQ_INIT(&o->waiting);
	LIST_INSERT_HEAD(&c->origins, o, entry);
	return o;
}

/*
 * Hands waiting transfers to libcurl, oldest first per origin, while
 * the per-origin and total caps allow. Adding a handle only arms the
 * timer, so no callback runs from here.
 */
static void
httpc_pump(struct httpc *c)
{
	struct httpc_origin *o;
	struct httpc_xfer *x;

	LIST_FOREACH(o, &c->origins, entry) {
		while (o->active < c->per_host && c->active < c->total &&
		    (x = TAILQ_FIRST(&o->waiting)) != NULL) {
			TAILQ_REMOVE(&o->waiting, x, wentry);
			/* fails only on misuse or out of memory */
			if (curl_multi_add_handle(c->multi, x->easy) !=
			    CURLM_OK)
				fatalx("httpc: curl_multi_add_handle failed");
			x->started = true;
			o->active++;
			c->active++;
		}
	}
}

/* Takes x off libcurl or its origin's queue, and off the client. */
static void
httpc_stop(struct httpc_xfer *x)
{
	struct httpc *c = x->c;

	if (x->started) {
		curl_multi_remove_handle(c->multi, x->easy);
		x->origin->active--;
		c->active--;
	} else {
		TAILQ_REMOVE(&x->origin->waiting, x, wentry);
	}
	TAILQ_REMOVE(&c->xfers, x, entry);
	c->n--;
}

/*
 * A transfer record for a new request: the most recently idle one, or a
 * new one with its fixed options set. NULL with err set if libcurl
 * refuses.
 */
static struct httpc_xfer *
httpc_xfer_get(struct httpc *c, char *err, size_t errlen)
{
	struct httpc_xfer *x;

	if ((x = TAILQ_FIRST(&c->idle)) != NULL) {
		TAILQ_REMOVE(&c->idle, x, entry);
		c->nidle--;
	} else {
		x = xcalloc(1, sizeof(*x));
		x->c = c;
		if ((x->easy = curl_easy_init()) == NULL ||
		    httpc_setup_fixed(c, x) == -1) {
			snprintf(err, errlen, "curl_easy_init failed");
			if (x->easy != NULL)
				curl_easy_cleanup(x->easy);
			free(x);
			return NULL;
		}
	}
	x->len = 0;
	if (x->body != NULL)
		x->body[0] = '\0'; /* an empty answer writes nothing */
	x->too_large = false;
	x->errbuf[0] = '\0';
	return x;
}

/*
 * The options every request of the client shares, set once per easy
 * handle. TLS verification is left on and said so explicitly; redirects
 * are not followed (a provider API never needs one, and it would resend
 * the body).
 */
static int
httpc_setup_fixed(struct httpc *c, struct httpc_xfer *x)
{
	CURL *e = x->easy;
	CURLcode rc = CURLE_OK;

	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file != NULL)
		rc |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)c->connect_timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_USERAGENT,
	    "outreachd/" PACKAGE_VERSION);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpc_on_write);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	return rc == CURLE_OK ? 0 : -1;
}

/*
 * Sets what this request changes on its record's handle: the URL (and
 * with it the HTTP version: 1.1 for http://; for https:// libcurl's
 * default, HTTP/2 when the server offers it), the timeout and the headers
 * only when they differ from the last request's; the method and the body
 * always. The body is copied into the record, so 'req' is not kept.
 */
static int
httpc_setup(struct httpc *c, struct httpc_xfer *x,
    const struct httpc_request *req, char *err, size_t errlen)
{
	CURL *e = x->easy;
	CURLcode rc = CURLE_OK;
	long timeout =
	    req->timeout_ms ? (long)req->timeout_ms : (long)c->timeout_ms;

	if (httpc_setup_headers(x, req->headers, err, errlen) == -1)
		return -1;
	if (x->url == NULL || strcmp(x->url, req->url) != 0) {
		if (httpc_setup_url(x, req->url, err, errlen) == -1)
			return -1;
		rc |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
		    strncmp(x->url, "http://", 7) == 0
			? (long)CURL_HTTP_VERSION_1_1
			: (long)CURL_HTTP_VERSION_2TLS);
	}
	if (x->timeout_ms != timeout) {
		x->timeout_ms = timeout;
		rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
	}
	if (rc != CURLE_OK || httpc_setup_method(x, req) == -1) {
		free(x->url); /* set them again next time */
		x->url = NULL;
		x->timeout_ms = 0;
		snprintf(err, errlen, "curl_easy_setopt failed");
		return -1;
	}
	return 0;
}

/*
 * The URL, parsed once and handed over as a URL handle. Given the string
 * (CURLOPT_URL), libcurl parses it and prints it back on every transfer:
 * a tenth of the daemon's instructions per Twilio message (callgrind,
 * bench/README.md); with the handle it copies the parsed parts.
 * CURLOPT_URL is cleared so that libcurl's own copy of the string
 * (CURLINFO_EFFECTIVE_URL) is made from the new handle. On error the
 * record has no URL (set again next time).
 */
static int
httpc_setup_url(struct httpc_xfer *x, const char *url, char *err, size_t errlen)
{
	CURLU *uh;
	CURLUcode uc;

	if ((uh = curl_url()) == NULL)
		fatalx("httpc: curl_url failed");
	if ((uc = curl_url_set(uh, CURLUPART_URL, url, 0)) != CURLUE_OK) {
		snprintf(err, errlen, "URL rejected: %s",
		    curl_url_strerror(uc));
		curl_url_cleanup(uh);
		return -1;
	}
	free(x->url);
	x->url = NULL;
	if (curl_easy_setopt(x->easy, CURLOPT_URL, NULL) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_CURLU, uh) != CURLE_OK) {
		snprintf(err, errlen, "curl_easy_setopt failed");
		curl_url_cleanup(uh);
		return -1;
	}
	curl_url_cleanup(x->uh); /* no longer on the handle */
	x->uh = uh;
	x->url = xstrdup(url);
	return 0;
}

/* True if list l holds lines h (NULL-terminated) and then "Expect:". */
static bool
httpc_headers_same(const struct curl_slist *l, const char *const *h)
{
	size_t i;

	for (i = 0; h != NULL && h[i] != NULL; i++, l = l->next)
		if (l == NULL || strcmp(l->data, h[i]) != 0)
			return false;
	return l != NULL && l->next == NULL && strcmp(l->data, "Expect:") == 0;
}

/*
 * The request headers plus "Expect:" (no 100-continue round trip before
 * larger bodies). The list on the handle is kept when it holds the same
 * lines in the same order, as every request of one sender does.
 */
static int
httpc_setup_headers(struct httpc_xfer *x, const char *const *headers, char *err,
    size_t errlen)
{
	struct curl_slist *l = NULL, *nl = NULL;
	size_t i, n = 0;

	while (headers != NULL && headers[n] != NULL)
		if (++n > HTTPC_MAX_HEADERS) {
			snprintf(err, errlen, "too many request headers");
			return -1;
		}
	if (httpc_headers_same(x->headers, headers))
		return 0;
	for (i = 0; i < n; i++) {
		if ((l = curl_slist_append(nl, headers[i])) == NULL)
			break;
		nl = l;
	}
	if (i < n || (l = curl_slist_append(nl, "Expect:")) == NULL ||
	    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, l) != CURLE_OK) {
		curl_slist_free_all(l != NULL ? l : nl);
		snprintf(err, errlen, "curl_slist_append failed");
		return -1;
	}
	curl_slist_free_all(x->headers);
	x->headers = l;
	return 0;
}

/*
 * The method and body: GET, POST, or a custom verb with a body. The body
 * is copied into the record's buffer (kept between requests) and handed
 * to libcurl by pointer, which does not copy it again.
 */
static int
httpc_setup_method(struct httpc_xfer *x, const struct httpc_request *req)
{
	const char *method = req->method ? req->method : "GET";
	CURL *e = x->easy;
	CURLcode rc = CURLE_OK;

	if (strcmp(method, "GET") == 0) {
		rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
		rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		return rc == CURLE_OK ? 0 : -1;
	}
	if (x->req_cap < req->body_len + 1) {
		x->req_cap = req->body_len + 1;
		free(x->req);
		x->req = xmalloc(x->req_cap);
	}
	if (req->body_len > 0)
		memcpy(x->req, req->body, req->body_len);
	x->req[req->body_len] = '\0';
	rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
	    strcmp(method, "POST") != 0 ? method : NULL);
	rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)req->body_len);
	rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req);
	return rc == CURLE_OK ? 0 : -1;
}

/* Appends response bytes; past HTTPC_MAX_BODY it fails the transfer. */
static size_t
httpc_on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct httpc_xfer *x = arg;
	size_t n = size * nmemb;

	if (n > HTTPC_MAX_BODY - x->len) {
		x->too_large = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (x->len + n + 1 > x->cap) {
		x->cap = x->cap ? x->cap : 1024;
		while (x->cap < x->len + n + 1)
			x->cap *= 2;
		x->body = xreallocarray(x->body, x->cap, 1);
	}
	memcpy(x->body + x->len, data, n);
	x->len += n;
	x->body[x->len] = '\0';
	return n;
}

/*
 * CURLMOPT_SOCKETFUNCTION: watch 's' for what libcurl wants, or stop
 * watching it. The per-socket record is attached with curl_multi_assign.
 */
static int
httpc_on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
	struct httpc *c = userp;
	struct httpc_sock *hs = socketp;
	short events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (hs != NULL) {
			curl_multi_assign(c->multi, s, NULL);
			LIST_REMOVE(hs, entry);
			event_free(hs->ev);
			free(hs);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	if (hs == NULL) {
		hs = xcalloc(1, sizeof(*hs));
		hs->c = c;
		hs->fd = s;
		if ((hs->ev = event_new(c->base, s, events | EV_PERSIST,
			 httpc_on_event, c)) == NULL)
			fatalx("httpc: event_new failed"); /* out of memory */
		LIST_INSERT_HEAD(&c->socks, hs, entry);
		curl_multi_assign(c->multi, s, hs);
	} else if (events == hs->events) {
		return 0; /* already watched so: no epoll_ctl */
	} else {
		event_del(hs->ev);
		event_assign(hs->ev, c->base, s, events | EV_PERSIST,
		    httpc_on_event, c);
	}
	hs->events = events;
	if (events != 0)
		event_add(hs->ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, else fire in timeout_ms. */
static int
httpc_on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *c = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(c->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	return 0;
}

static void
httpc_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *c = arg;
	int action = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(c->multi, fd, action, &c->running);
	/*
	 * Unlike multi-event.c we leave the timer alone when nothing runs:
	 * a done callback may just have started a request that needs it,
	 * and libcurl disarms it through the timer callback itself.
	 */
	httpc_collect(c);
}

static void
httpc_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *c = arg;

	(void)fd;
	(void)what;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
	httpc_collect(c);
}

/* Finishes every transfer libcurl reports done. */
static void
httpc_collect(struct httpc *c)
{
	CURLMsg *m;
	char *priv;
	CURLcode code;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		priv = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		code = m->data.result; /* m is invalid once the handle leaves */
		if (priv != NULL)
			httpc_finish((struct httpc_xfer *)(void *)priv, code);
	}
}

/*
 * Reports one finished transfer to its owner, then frees it. The next
 * waiting transfer starts before done runs, so requests done itself
 * makes queue behind those already waiting.
 */
static void
httpc_finish(struct httpc_xfer *x, CURLcode code)
{
	struct httpc_response resp;

	httpc_response_fill(x, code, &resp);
	httpc_stop(x);
	httpc_pump(x->c);
	x->done(x->arg, &resp);
	httpc_xfer_free(x);
}

/*
 * What the owner learns of a transfer. 'maybe_sent' is true once a
 * connection was established or request bytes went out: from then on a
 * failure leaves it unknown whether the server acted on the request.
 * curl converts an HTTP-date Retry-After into seconds from now.
 */
static void
httpc_response_fill(struct httpc_xfer *x, CURLcode code,
    struct httpc_response *resp)
{
	long status = 0, req_size = 0;
	curl_off_t connect_us = 0, pre_us = 0, total_us = 0, retry = 0;
	char *ctype = NULL;

	memset(resp, 0, sizeof(*resp));
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &req_size);
	curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
	curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &pre_us);
	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry);
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ctype);
	resp->status = (int)status;
	resp->curl_code = (int)code;
	resp->timed_out = code == CURLE_OPERATION_TIMEDOUT;
	resp->connect_failed = code == CURLE_COULDNT_CONNECT ||
	    code == CURLE_COULDNT_RESOLVE_HOST ||
	    code == CURLE_COULDNT_RESOLVE_PROXY;
	resp->maybe_sent = !resp->connect_failed &&
	    (status > 0 || connect_us > 0 || pre_us > 0 || req_size > 0);
	if (retry > 0)
		resp->retry_after =
		    retry > UINT_MAX ? UINT_MAX : (unsigned)retry;
	resp->content_type = ctype;
	resp->body = x->body ? x->body : "";
	resp->body_len = x->len;
	resp->total_ms = (double)total_us / 1000.0;
	if (x->too_large)
		snprintf(resp->error, sizeof(resp->error),
		    "response body over %d bytes", HTTPC_MAX_BODY);
	else if (code != CURLE_OK)
		snprintf(resp->error, sizeof(resp->error), "%s",
		    x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
}

/*
 * Ends a request's use of its record: kept idle for the next request
 * (at most 'total' are: as many as can run at once), or destroyed.
 */
static void
httpc_xfer_free(struct httpc_xfer *x)
{
	struct httpc *c = x->c;

	x->done = NULL;
	x->arg = NULL;
	if (c->nidle < c->total) {
		TAILQ_INSERT_HEAD(&c->idle, x, entry);
		c->nidle++;
	} else
		httpc_xfer_destroy(x);
}

/* Frees a record that is on no list. */
static void
httpc_xfer_destroy(struct httpc_xfer *x)
{
	curl_easy_cleanup(x->easy);
	curl_url_cleanup(x->uh);
	curl_slist_free_all(x->headers);
	free(x->url);
	free(x->req);
	free(x->body);
	free(x);
}

/*
 * Drops the unfinished requests of 'arg' without calling them back:
 * removing an easy handle also drops a completion libcurl had queued.
 */
unsigned
httpc_cancel(struct httpc *c, const void *arg)
{
	struct httpc_xfer *x, *next;
	unsigned n = 0;

	if (c == NULL)
		return 0;
	for (x = TAILQ_FIRST(&c->xfers); x != NULL; x = next) {
		next = TAILQ_NEXT(x, entry);
		if (x->arg != arg)
			continue;
		httpc_stop(x);
		httpc_xfer_free(x);
		n++;
	}
	if (n > 0)
		httpc_pump(c);
	return n;
}

/* Requests started and not finished: handed to libcurl or waiting. */
unsigned
httpc_in_flight(const struct httpc *c)
{
	return c == NULL ? 0 : c->n;
}

/*
 * Aborts what is still running (no callbacks), closes the cached
 * connections and frees the client and any socket records left.
 */
void
httpc_free(struct httpc *c)
{
	struct httpc_origin *o;
	struct httpc_xfer *x;
	struct httpc_sock *hs;

	if (c == NULL)
		return;
	while ((x = TAILQ_FIRST(&c->xfers)) != NULL) {
		httpc_stop(x);
		httpc_xfer_free(x);
	}
	while ((o = LIST_FIRST(&c->origins)) != NULL) {
		LIST_REMOVE(o, entry);
		free(o->key);
		free(o);
	}
	while ((x = TAILQ_FIRST(&c->idle)) != NULL) {
		TAILQ_REMOVE(&c->idle, x, entry);
		httpc_xfer_destroy(x);
	}
	c->nidle = 0;
	curl_multi_cleanup(c->multi);
	while ((hs = LIST_FIRST(&c->socks)) != NULL) {
		LIST_REMOVE(hs, entry);
		event_free(hs->ev);
		free(hs);
	}
	event_free(c->timer);
	free(c->ca_file);
	free(c);
}
