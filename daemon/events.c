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
 * On PostgreSQL (several nodes, one events table) an event is not
 * streamed from its commit callback: every node reads the table back in
 * id order after the last id it streamed, woken by the NOTIFY each
 * event's group sends on commit and by a poll every second, and takes
 * ids one after the other (events_order_take(): an id given to a group
 * still in flight on another node leaves a gap that is waited for). A
 * stream that resumes reads its replay from the table too, in pages,
 * before it joins the live ones; the bounds read with each page say
 * whether what it asks for is still kept. The design, with the reasons,
 * is at the top of queue/store_events_pg.c.
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
#include "store_events_pg.h"
#include "xmalloc.h"

struct events_stream {
	TAILQ_ENTRY(events_stream) entry;
	struct events *ev;
	struct http_req *req;
	int64_t cursor; /* the last id this stream was sent */
	/* PostgreSQL: replaying from the table (not sent live events) */
	bool catching;
	bool reading;	/* a replay read is in flight: free s on its answer */
	bool gone;	/* closed while reading */
	bool first;	/* the first page of its replay is next */
	int64_t gap_at; /* a missing id it read past the hub once */
};
TAILQ_HEAD(events_stream_list, events_stream);

struct events {
	struct events_deps deps;
	struct events_stream_list streams;
	size_t nstreams;
	struct event *keepalive;
	struct event *prune;
	struct events_order order; /* shown: the newest id sent to streams */
	int64_t floor;		   /* PostgreSQL: as last read */
	bool stopped;
	/* PostgreSQL: the table is read back (see the top) */
	bool pg;
	bool ready;   /* the first read answered: order.shown is known */
	bool reading; /* one hub read at a time ... */
	bool again;   /* ... and another one once it answers */
	bool read_failing;
	struct store_events_watch *watch;
	struct event *poll;
	unsigned pending; /* reads and prunes in flight */
	bool dead;	  /* freed while some were: the last one frees */
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
static void events_pg_start(struct events *);
static void events_pg_fetch(struct events *);
static void events_pg_catch_up(struct events_stream *);
static void events_release(struct events *);

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
	ev->pg = store_backend(deps->st) == STORE_POSTGRESQL;
	if (ev->pg)
		events_pg_start(ev);
	else if (store_events_bounds(deps->st, &b, err, sizeof(err)) == -1)
		log_warnx("events_bounds_failed error=\"%s\"", err);
	else
		ev->order.shown = b.last;
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

bool
events_order_take(struct events_order *o, int64_t id, int64_t now)
{
	if (id <= o->shown)
		return false;
	if (id != o->shown + 1) {
		if (o->gap_since == 0)
			o->gap_since = now;
		if (now - o->gap_since < EVENTS_GAP_MS)
			return false;
	}
	o->shown = id;
	o->gap_since = 0;
	return true;
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
	if (ev->pg) {
		/* streamed once read back (see the top) */
		if (store_events_pg_add(ev->deps.st, type, text, msg_now_ms(),
			err, sizeof(err)) == -1)
			log_warnx("event_store_failed type=%s error=\"%s\"",
			    type, err);
		free(text);
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

	if (ok && p->id > ev->order.shown) {
		ev->order.shown = p->id;
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
	if (s->reading)
		s->gone = true; /* its read's answer frees it */
	else
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
	r->shown = ev->order.shown;
	if (last == NULL)
		return 0;
	r->asked = true;
	errno = 0;
	r->last = strtoll(last, &end, 10);
	r->valid = errno == 0 && end != last && *end == '\0' && r->last >= 0;
	if (ev->pg) {
		r->floor = ev->floor; /* the replay's first page checks again */
		return 0;
	}
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
	s->cursor = ev->order.shown;
	if (ev->pg && r->asked && r->valid) {
		/* the table says, page after page (events_pg_replay) */
		s->cursor = r->last;
		s->catching = true;
		s->first = true;
		events_pg_catch_up(s);
		return 0;
	}
	switch (events_plan(r)) {
	case EVENTS_LIVE:
		return 0;
	case EVENTS_RESET:
		frame = events_frame(ev->order.shown, "reset", "{}");
		http_reply_chunk(s->req, frame, strlen(frame));
		free(frame);
		return 0;
	case EVENTS_REPLAY:
		break;
	}
	s->cursor = r->last;
	if (store_events_walk(ev->deps.st,
		&(struct store_events_range){r->last, ev->order.shown,
		    EVENTS_REPLAY_MAX},
		events_replay_one, s, err, errlen) == -1)
		return -1;
	s->cursor = ev->order.shown;
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
	if (ev->pg && !ev->ready) {
		http_reply_error(req, 503, "unavailable",
		    "the events are not read from the database yet");
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
	    req->auth.staff_id, (int)events_plan(&r), r.last, ev->order.shown,
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
events_pg_pruned(void *arg, int64_t n, const char *error)
{
	struct events *ev = arg;

	ev->pending--;
	if (ev->dead)
		events_release(ev);
	else if (n == -1)
		log_warnx("events_prune_failed error=\"%s\"", error);
	else if (n > 0)
		log_info("events_pruned count=%" PRId64, n);
}

static void
events_on_prune(evutil_socket_t fd, short what, void *arg)
{
	struct events *ev = arg;
	int64_t now = msg_now_ms(), n;
	char err[256];

	(void)fd;
	(void)what;
	if (ev->pg) {
		if (store_events_pg_prune(ev->deps.st,
			&(struct store_events_prune){now - EVENTS_KEEP_MS,
			    EVENTS_KEEP_COUNT, EVENTS_PRUNE_BATCH},
			events_pg_pruned, ev, err, sizeof(err)) == -1)
			log_warnx("events_prune_failed error=\"%s\"", err);
		else
			ev->pending++;
		return;
	}
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
	ev->keepalive = ev->prune = NULL;
	if (ev->pg) {
		store_events_pg_unwatch(ev->deps.st, ev->watch);
		ev->watch = NULL;
		event_free(ev->poll);
		ev->poll = NULL;
	}
	ev->dead = true;
	events_release(ev);
}

/* Frees a dead hub once no read or prune of it is in flight. */
static void
events_release(struct events *ev)
{
	if (ev->dead && ev->pending == 0)
		free(ev);
}

/* ---- PostgreSQL: the table read back (see the top) ---------------------- */

#define EVENTS_PG_PAGE	  1000
#define EVENTS_PG_POLL_MS 1000

static void events_pg_page(void *, const struct store_events_page *,
    const char *);

static void
events_pg_woken(void *arg)
{
	events_pg_fetch(arg);
}

static void
events_pg_on_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	events_pg_fetch(arg);
}

/* Listens, polls, and reads where the table stands (events_pg_page). */
static void
events_pg_start(struct events *ev)
{
	const struct timeval tv = {EVENTS_PG_POLL_MS / 1000,
	    (EVENTS_PG_POLL_MS % 1000) * 1000};
	char err[256];

	if ((ev->watch = store_events_pg_watch(ev->deps.st, events_pg_woken, ev,
		 err, sizeof(err))) == NULL)
		log_warnx("events_listen_failed error=\"%s\" action=\"events "
			  "reach this node's streams within a second\"",
		    err);
	ev->poll =
	    event_new(ev->deps.base, -1, EV_PERSIST, events_pg_on_poll, ev);
	if (ev->poll == NULL)
		fatalx("events_new: event_new failed");
	event_add(ev->poll, &tv);
	events_pg_fetch(ev);
}

/* Reads the events after the newest one streamed (one read at a time). */
static void
events_pg_fetch(struct events *ev)
{
	char err[256];

	if (ev->dead || ev->stopped)
		return;
	if (ev->reading) {
		ev->again = true;
		return;
	}
	/* Before the first answer, only the bounds: what is already there
	 * was shown before this node listened. */
	if (store_events_pg_read(ev->deps.st,
		ev->ready ? ev->order.shown : INT64_MAX,
		ev->ready ? EVENTS_PG_PAGE : 1, events_pg_page, ev, err,
		sizeof(err)) == -1) {
		log_warnx("events_read_failed error=\"%s\"", err);
		return;
	}
	ev->reading = true;
	ev->again = false;
	ev->pending++;
}

/* Streams one event, read back in order, to the live streams. */
static void
events_pg_stream(struct events *ev, const struct store_event *e)
{
	struct events_stream *s, *next;
	char *frame = events_frame(e->id, e->type, e->data);

	for (s = TAILQ_FIRST(&ev->streams); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (!s->catching && s->cursor < e->id && events_send(s, frame))
			s->cursor = e->id;
	}
	free(frame);
}

static void
events_pg_page(void *arg, const struct store_events_page *p, const char *error)
{
	struct events *ev = arg;
	int64_t now = msg_now_ms();
	size_t i;

	ev->pending--;
	ev->reading = false;
	if (ev->dead) {
		events_release(ev);
		return;
	}
	if (p == NULL) {
		if (!ev->read_failing)
			log_warnx("events_read_failed error=\"%s\" "
				  "action=\"read again every second\"",
			    error);
		ev->read_failing = true;
		return;
	}
	if (ev->read_failing)
		log_info("events_read_recovered shown=%" PRId64,
		    ev->order.shown);
	ev->read_failing = false;
	ev->floor = p->b.floor;
	if (!ev->ready) {
		ev->ready = true;
		ev->order.shown = p->b.last;
		log_debug("events_ready shown=%" PRId64 " floor=%" PRId64,
		    ev->order.shown, ev->floor);
	}
	for (i = 0; i < p->n; i++) {
		if (!events_order_take(&ev->order, p->ev[i].id, now))
			break; /* a gap: its group commits, or the grace ends */
		events_pg_stream(ev, &p->ev[i]);
	}
	if (i == p->n && p->n == EVENTS_PG_PAGE)
		ev->again = true;
	if (ev->again)
		events_pg_fetch(ev);
}

static void events_pg_replay(void *, const struct store_events_page *,
    const char *);

/* The next page of a resuming stream's replay, from its cursor. */
static void
events_pg_catch_up(struct events_stream *s)
{
	struct events *ev = s->ev;
	char err[256];

	if (store_events_pg_read(ev->deps.st, s->cursor, EVENTS_REPLAY_MAX,
		events_pg_replay, s, err, sizeof(err)) == -1) {
		log_warnx("events_replay_failed error=\"%s\"", err);
		events_close(s, true);
		return;
	}
	s->reading = true;
	ev->pending++;
}

/*
 * A page of a replay. The first one checks what events_plan() checks on
 * SQLite, with the table's own bounds: the id must be one this database
 * gave, its successors still kept, and not too many behind. Then rows
 * are sent in id order up to the hub's shown (the hub streams what is
 * after, once the stream is live). An id missing from a page that the
 * hub is past was committed after the page was read, or never will be:
 * the next page tells (the hub saw it commit before that page is read),
 * and what is still missing then is passed.
 */
static void
events_pg_replay(void *arg, const struct store_events_page *p,
    const char *error)
{
	struct events_stream *s = arg;
	struct events *ev = s->ev;
	int64_t shown = ev->order.shown, id;
	char *frame;
	size_t i;
	bool first = s->first;

	s->reading = false;
	s->first = false;
	ev->pending--;
	if (s->gone || ev->dead) {
		if (s->gone)
			free(s);
		events_release(ev);
		return;
	}
	if (p == NULL) {
		log_warnx("events_replay_failed error=\"%s\"", error);
		events_close(s, true);
		return;
	}
	if (first &&
	    (s->cursor < p->b.floor || s->cursor > p->b.last ||
		shown - s->cursor > EVENTS_REPLAY_MAX)) {
		frame = events_frame(shown, "reset", "{}");
		http_reply_chunk(s->req, frame, strlen(frame));
		free(frame);
		s->cursor = shown;
		s->catching = false;
		return;
	}
	for (i = 0; i < p->n && (id = p->ev[i].id) <= shown; i++) {
		if (id != s->cursor + 1 && s->gap_at != s->cursor + 1)
			break; /* look again */
		(void)events_replay_one(s, &p->ev[i]);
		s->gap_at = 0;
	}
	if (s->cursor >= shown) {
		s->catching = false; /* live from here */
		return;
	}
	if (i == p->n && p->n < EVENTS_REPLAY_MAX &&
	    s->gap_at == s->cursor + 1) {
		s->cursor = shown; /* looked twice: never committed */
		s->catching = false;
		return;
	}
	if (i < p->n || p->n < EVENTS_REPLAY_MAX)
		s->gap_at = s->cursor + 1;
	events_pg_catch_up(s);
}
