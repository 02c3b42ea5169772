/*
 * events.c - the live events hub and GET /api/v1/events (events.h;
 * the protocol is described in doc/events.md).
 *
 * Replay design: every event is a row of the events table
 * (queue/store_events.c), inserted by events_publish() into the store's
 * open group transaction, that is with the change it describes when the
 * publisher calls it before that change commits. Streams are sent an
 * event only from the group's commit callback, once it is durable; the
 * newest id sent so far is 'shown'. A stream that resumes reads the
 * table for (Last-Event-ID, shown] and then takes live events after
 * 'shown', so it misses nothing and sees nothing twice, and an event a
 * stream saw is one a restart still has. The table, not a memory ring,
 * is what makes ids grow across restarts and replay work after one; it
 * is pruned every minute to the last 24 hours and at most 100,000 rows
 * (AUTOINCREMENT keeps pruned ids from coming back). A Last-Event-ID
 * older than what is kept, or newer than anything this database gave
 * (another install), or too far behind to replay in one go, gets one
 * "reset" event carrying the current id instead.
 *
 * Streams are chunked replies (http.h) that stay open: a keep-alive
 * comment every 15 s keeps proxies from closing them (the HTTP layer
 * itself no longer applies its 30 s idle timeout to a chunked reply, only
 * to a stalled write), the HTTP layer tells us when a client leaves
 * (http_reply_watch), and a client whose unsent output passes
 * EVENTS_MAX_PENDING is cut (it reconnects and resumes from its
 * Last-Event-ID).
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "api.h"
#include "events.h"
#include "http.h"
#include "log.h"
#include "message.h"
#include "store.h"
#include "store_events.h"
#include "xmalloc.h"

struct events_stream {
	TAILQ_ENTRY(events_stream) entry;
	struct events *ev;
	struct http_req *req;
	int64_t cursor; /* the last id this stream was sent */
};
TAILQ_HEAD(events_stream_list, events_stream);

struct events {
	struct events_deps deps;
	struct events_stream_list streams;
	size_t nstreams;
	struct event *keepalive;
	struct event *prune;
	int64_t shown; /* the newest committed id sent to streams */
	bool stopped;
};

/* An event waiting for its group's commit. */
struct events_pending {
	struct events *ev;
	int64_t id;
	char *frame;
};

static void events_get(struct http_req *, void *);
static void events_on_commit(void *, bool);
static void events_on_keepalive(evutil_socket_t, short, void *);
static void events_on_prune(evutil_socket_t, short, void *);
static void events_gone(struct http_req *, void *);
static bool events_send(struct events_stream *, const char *);
static void events_close(struct events_stream *, bool);

struct events *
events_new(const struct events_deps *deps)
{
	const struct timeval ka = {EVENTS_KEEPALIVE_MS / 1000, 0},
			     pr = {EVENTS_PRUNE_PERIOD_MS / 1000, 0};
	struct events *ev = xcalloc(1, sizeof(*ev));
	struct store_events_bounds b;
	char err[256];

	ev->deps = *deps;
	TAILQ_INIT(&ev->streams);
	if (store_events_bounds(deps->st, &b, err, sizeof(err)) == -1)
		log_warnx("events_bounds_failed error=\"%s\"", err);
	else
		ev->shown = b.last;
	ev->keepalive =
	    event_new(deps->base, -1, EV_PERSIST, events_on_keepalive, ev);
	ev->prune = event_new(deps->base, -1, EV_PERSIST, events_on_prune, ev);
	if (ev->keepalive == NULL || ev->prune == NULL)
		fatalx("events_new: event_new failed");
	event_add(ev->keepalive, &ka);
	event_add(ev->prune, &pr);
	event_active(ev->prune, EV_TIMEOUT, 0); /* once at start too */
	http_route(deps->srv, HTTP_GET, "/api/v1/events", events_get, ev);
	return ev;
}

/* ---- Framing and the start of a stream (pure, unit-tested) ------------- */

char *
events_frame(int64_t id, const char *type, const char *data)
{
	const char *p = data, *nl;
	size_t lines = 1, cap, len;
	char *out;

	for (nl = data; (nl = strpbrk(nl, "\r\n")) != NULL; nl++)
		lines++;
	cap = strlen(type) + strlen(data) + lines * sizeof("data: \n") + 64;
	out = xmalloc(cap);

	len = (size_t)snprintf(out, cap, "id: %" PRId64 "\nevent: %s\n", id,
	    type);
	for (;;) {
		nl = strpbrk(p, "\r\n");
		len += (size_t)snprintf(out + len, cap - len, "data: %.*s\n",
		    (int)(nl != NULL ? nl - p : (ptrdiff_t)strlen(p)), p);
		if (nl == NULL)
			break;
		p = nl + (nl[0] == '\r' && nl[1] == '\n' ? 2 : 1);
	}
	snprintf(out + len, cap - len, "\n");
	return out;
}

enum events_start
events_plan(const struct events_resume *r)
{
	if (!r->asked)
		return EVENTS_LIVE;
	if (!r->valid || r->last < r->floor || r->last > r->shown ||
	    r->shown - r->last > EVENTS_REPLAY_MAX)
		return EVENTS_RESET;
	return EVENTS_REPLAY;
}

/* ---- Publishing --------------------------------------------------------- */

void
events_publish(struct events *ev, const char *type, json_t *data)
{
	struct events_pending *p;
	char err[256], *text;
	int64_t id;

	if (ev == NULL || data == NULL) {
		json_decref(data);
		return;
	}
	text = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (text == NULL) {
		log_warnx("event_unencodable type=%s", type);
		return;
	}
	id = store_event_add(ev->deps.st, type, text, msg_now_ms(), err,
	    sizeof(err));
	if (id == -1) {
		log_warnx("event_store_failed type=%s error=\"%s\"", type, err);
		free(text);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->ev = ev;
	p->id = id;
	p->frame = events_frame(id, type, text);
	free(text);
	log_trace(TRACE_HTTP, "event_published id=%" PRId64 " type=%s", id,
	    type);
	store_on_commit(ev->deps.st, events_on_commit, p);
}

/* The event's group is durable: every stream gets it now. */
static void
events_on_commit(void *arg, bool ok)
{
	struct events_pending *p = arg;
	struct events *ev = p->ev;
	struct events_stream *s, *next;

	if (ok && p->id > ev->shown) {
		ev->shown = p->id;
		for (s = TAILQ_FIRST(&ev->streams); s != NULL; s = next) {
			next = TAILQ_NEXT(s, entry);
			if (s->cursor < p->id && events_send(s, p->frame))
				s->cursor = p->id;
		}
	}
	free(p->frame);
	free(p);
}

/* ---- Streams ------------------------------------------------------------ */

/* Writes text to s; false when s was closed for reading too slowly. */
static bool
events_send(struct events_stream *s, const char *text)
{
	size_t pending = http_reply_pending(s->req);

	if (pending > EVENTS_MAX_PENDING) {
		log_info("events_stream_slow peer=%s pending=%zu "
			 "action=\"stream closed; the client resumes\"",
		    http_peer(s->req), pending);
		events_close(s, true);
		return false;
	}
	http_reply_chunk(s->req, text, strlen(text));
	return true;
}

/* Ends s (abort: drop the connection, for a client that cannot keep up). */
static void
events_close(struct events_stream *s, bool abort)
{
	struct events *ev = s->ev;

	TAILQ_REMOVE(&ev->streams, s, entry);
	ev->nstreams--;
	log_debug("events_stream_closed staff=%" PRId64 " cursor=%" PRId64
		  " streams=%zu",
	    s->req->auth.staff_id, s->cursor, ev->nstreams);
	if (abort)
		http_reply_abort(s->req);
	else
		http_reply_end(s->req);
	free(s);
}

static void
events_gone(struct http_req *req, void *arg)
{
	struct events_stream *s = arg;

	(void)req;
	events_close(s, false);
}

/* One stored event of a replay. */
static int
events_replay_one(void *arg, const struct store_event *e)
{
	struct events_stream *s = arg;
	char *frame = events_frame(e->id, e->type, e->data);

	http_reply_chunk(s->req, frame, strlen(frame));
	free(frame);
	s->cursor = e->id;
	return 0;
}

/* The Last-Event-ID header, or ?last_event_id= (a new string or NULL). */
static char *
events_last_id(struct http_req *req, bool *bad)
{
	static const char *const known[] = {"last_event_id", NULL};
	const char *h = http_header(req, "Last-Event-ID");
	struct evkeyvalq q;
	char *v = NULL;

	*bad = false;
	if (!api_read_query(req, &q, known)) {
		*bad = true; /* answered */
		return NULL;
	}
	if (h != NULL)
		v = xstrdup(h);
	else if ((h = evhttp_find_header(&q, "last_event_id")) != NULL)
		v = xstrdup(h);
	evhttp_clear_headers(&q);
	return v;
}

/* Fills r from the client's Last-Event-ID and the kept events. 0 / -1. */
static int
events_resume_of(struct events *ev, const char *last, struct events_resume *r,
    char *err, size_t errlen)
{
	struct store_events_bounds b;
	char *end;

	memset(r, 0, sizeof(*r));
	r->shown = ev->shown;
	if (last == NULL)
		return 0;
	r->asked = true;
	errno = 0;
	r->last = strtoll(last, &end, 10);
	r->valid = errno == 0 && end != last && *end == '\0' && r->last >= 0;
	if (store_events_bounds(ev->deps.st, &b, err, errlen) == -1)
		return -1;
	r->floor = b.floor;
	return 0;
}

/* Sends what a new stream starts with; 0, or -1 (store failure). */
static int
events_begin(struct events_stream *s, const struct events_resume *r, char *err,
    size_t errlen)
{
	struct events *ev = s->ev;
	char head[64], *frame;

	snprintf(head, sizeof(head), "retry: %d\n\n", EVENTS_RETRY_MS);
	http_reply_chunk(s->req, head, strlen(head));
	s->cursor = ev->shown;
	switch (events_plan(r)) {
	case EVENTS_LIVE:
		return 0;
	case EVENTS_RESET:
		frame = events_frame(ev->shown, "reset", "{}");
		http_reply_chunk(s->req, frame, strlen(frame));
		free(frame);
		return 0;
	case EVENTS_REPLAY:
		break;
	}
	s->cursor = r->last;
	if (store_events_walk(ev->deps.st,
		&(struct store_events_range){r->last, ev->shown,
		    EVENTS_REPLAY_MAX},
		events_replay_one, s, err, errlen) == -1)
		return -1;
	s->cursor = ev->shown;
	return 0;
}

static void
events_get(struct http_req *req, void *arg)
{
	struct events *ev = arg;
	struct events_stream *s;
	struct events_resume r;
	char err[256], *last;
	bool bad;

	if (!api_authorized(ev->deps.api, req))
		return;
	if (ev->stopped) {
		http_reply_error(req, 503, "unavailable",
		    "the daemon is shutting down");
		return;
	}
	last = events_last_id(req, &bad);
	if (bad)
		return;
	if (events_resume_of(ev, last, &r, err, sizeof(err)) == -1) {
		free(last);
		log_warnx("events_bounds_failed error=\"%s\"", err);
		http_reply_error(req, 503, "unavailable", "store: %s", err);
		return;
	}
	free(last);
	s = xcalloc(1, sizeof(*s));
	s->ev = ev;
	s->req = req;
	http_add_header(req, "Cache-Control", "no-cache");
	http_add_header(req, "X-Accel-Buffering", "no");
	http_reply_start(req, 200, "text/event-stream");
	TAILQ_INSERT_TAIL(&ev->streams, s, entry);
	ev->nstreams++;
	http_reply_watch(req, events_gone, s);
	log_debug("events_stream_open staff=%" PRId64 " plan=%d last=%" PRId64
		  " shown=%" PRId64 " streams=%zu",
	    req->auth.staff_id, (int)events_plan(&r), r.last, ev->shown,
	    ev->nstreams);
	if (events_begin(s, &r, err, sizeof(err)) == -1) {
		log_warnx("events_replay_failed error=\"%s\"", err);
		events_close(s, true);
	}
}

static void
events_on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	static const char ka[] = ": keepalive\n\n";
	struct events *ev = arg;
	struct events_stream *s, *next;

	(void)fd;
	(void)what;
	for (s = TAILQ_FIRST(&ev->streams); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		(void)events_send(s, ka);
	}
}

static void
events_on_prune(evutil_socket_t fd, short what, void *arg)
{
	struct events *ev = arg;
	int64_t now = msg_now_ms(), n;
	char err[256];

	(void)fd;
	(void)what;
	n = store_events_prune(ev->deps.st,
	    &(struct store_events_prune){now - EVENTS_KEEP_MS,
		EVENTS_KEEP_COUNT, EVENTS_PRUNE_BATCH},
	    err, sizeof(err));
	if (n == -1)
		log_warnx("events_prune_failed error=\"%s\"", err);
	else if (n > 0)
		log_info("events_pruned count=%" PRId64, n);
}

void
events_stop(struct events *ev)
{
	struct events_stream *s;

	if (ev == NULL)
		return;
	ev->stopped = true;
	while ((s = TAILQ_FIRST(&ev->streams)) != NULL)
		events_close(s, false);
}

void
events_free(struct events *ev)
{
	if (ev == NULL)
		return;
	events_stop(ev);
	event_free(ev->keepalive);
	event_free(ev->prune);
	free(ev);
}
