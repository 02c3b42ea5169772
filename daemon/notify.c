/*
 * notify.c - email digests of new inbound conversation messages
 * (notify.h).
 *
 * A timer looks once a second (or once per digest_interval when that is
 * shorter) for the oldest inbound conversation message after the last
 * one a digest covered (a partial index makes that one cheap lookup).
 * When a digest is due it walks the new messages once, in id order,
 * groups them by recipient and thread, queues one email per recipient
 * and records the last message covered and the digest's time
 * (notify_state), all in one group transaction: either the emails and
 * the new state are both durable, or neither is and the next turn tries
 * again.
 *
 * On PostgreSQL every node runs the same timer over the shared tables,
 * and each digest is queued ONCE, by whichever node gets there first:
 * the tick's read (the state and the oldest new message) and the walk go
 * outside the group, and the emails with the new state are ONE statement
 * of the group that claims notify_state's row with FOR UPDATE SKIP
 * LOCKED and writes only if the state is still the one the walk started
 * from (store_notify_pg.c: the statement and why it is the claim). The
 * node that loses writes nothing and reads the new state on its next
 * tick; a node killed mid-digest loses its transaction, and the next
 * tick of any node starts again from the committed state. Nothing is
 * held between digests, so nothing is handed over. The state is read
 * from the table at each tick (another node may have moved it), and a
 * digest waits NOTIFY_PG_SETTLE_MS more than on SQLite and covers only
 * the messages created that long ago: ids are given when a text's
 * statement runs and seen when its group commits, possibly out of
 * order across nodes, and a walk must not pass a text still in flight.
 * One read, walk or write is in flight at a time (the flight).
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "dispatch.h"
#include "log.h"
#include "message.h"
#include "notify.h"
#include "queue.h"
#include "store.h"
#include "store_events.h"
#include "store_notify_pg.h"
#include "xmalloc.h"

#define NOTIFY_POLL_MS	    1000
#define NOTIFY_WALK_MAX	    10000 /* messages per digest; the rest wait */
#define NOTIFY_WORDS_MAX    80	  /* bytes of a message's first words */
#define NOTIFY_PG_SETTLE_MS 2000  /* PostgreSQL: see the top */

struct notify_flight;

struct notify {
	struct notify_deps deps;
	char *base_url; /* without a trailing '/' */
	struct event *timer;
	struct notify_state state; /* SQLite: as committed */
	bool stopped;
	bool pg;
	struct notify_flight *flight; /* PostgreSQL: in flight, or NULL */
};

/* One thread of a digest. */
struct notify_thread {
	int64_t conversation;
	int64_t count;
	char *who;   /* "Ann Lee (+12125550100)" */
	char *words; /* the newest message's first words */
};

/* One recipient's digest. */
struct notify_rcpt {
	char *to;
	struct notify_thread *t;
	size_t n, cap;
	int64_t messages;
};

/* What one digest run collects. */
struct notify_run {
	struct notify *nf;
	struct notify_rcpt *r;
	size_t nr, capr;
	int64_t last_id; /* the last message walked */
	int64_t walked;
	int64_t unaddressed; /* messages with no recipient */
};

/* One tick's read, walk and write; alone in flight. */
struct notify_flight {
	struct notify *nf; /* NULL once notify_free()d: answers only free */
	struct notify_run run;
	struct queue_new *emails; /* one per run.r[] */
	int64_t now;
};

static void notify_tick(evutil_socket_t, short, void *);

struct notify *
notify_new(const struct notify_deps *deps)
{
	struct notify *nf = xcalloc(1, sizeof(*nf));
	unsigned poll = NOTIFY_POLL_MS;
	struct timeval tv;
	char err[256];
	size_t len;

	nf->deps = *deps;
	len = deps->base_url != NULL ? strlen(deps->base_url) : 0;
	while (len > 0 && deps->base_url[len - 1] == '/')
		len--;
	nf->base_url =
	    xstrndup(deps->base_url != NULL ? deps->base_url : "", len);
	nf->pg = store_backend(deps->st) == STORE_POSTGRESQL;
	if (!nf->pg &&
	    store_notify_state(deps->st, &nf->state, err, sizeof(err)) == -1)
		log_warnx("notify_state_failed error=\"%s\"", err);
	if (deps->cfg->conv_digest_interval_ms < poll)
		poll = deps->cfg->conv_digest_interval_ms;
	tv.tv_sec = poll / 1000;
	tv.tv_usec = (poll % 1000) * 1000;
	nf->timer = event_new(deps->base, -1, EV_PERSIST, notify_tick, nf);
	if (nf->timer == NULL)
		fatalx("notify_new: event_new failed");
	event_add(nf->timer, &tv);
	return nf;
}

void
notify_stop(struct notify *nf)
{
	if (nf == NULL)
		return;
	nf->stopped = true;
	event_del(nf->timer);
}

void
notify_free(struct notify *nf)
{
	if (nf == NULL)
		return;
	if (nf->flight != NULL) /* its answer frees it */
		nf->flight->nf = NULL;
	event_free(nf->timer);
	free(nf->base_url);
	free(nf);
}

/* ---- Collecting --------------------------------------------------------- */

/* "Ann Lee (+12125550100)", "+12125550100" or the sender's address. */
static char *
notify_who(const struct notify_item *it)
{
	const char *f = it->first_name != NULL ? it->first_name : "";
	const char *l = it->last_name != NULL ? it->last_name : "";
	const char *num = it->phone != NULL ? it->phone
	    : it->from_addr != NULL	    ? it->from_addr
					    : "unknown";

	if (*f == '\0' && *l == '\0')
		return xstrdup(num);
	return xasprintf("%s%s%s (%s)", f, *f != '\0' && *l != '\0' ? " " : "",
	    l, num);
}

/* The first words of body (notify.h). */
char *
notify_words(const char *body)
{
	size_t len = 0, cut, i;
	char *out;

	if (body == NULL)
		return xstrdup("");
	while (body[len] != '\0' && len <= NOTIFY_WORDS_MAX)
		len++;
	cut = len;
	if (len > NOTIFY_WORDS_MAX) {
		cut = NOTIFY_WORDS_MAX;
		while (cut > 0 && ((unsigned char)body[cut] & 0xc0) == 0x80)
			cut--;
		for (i = cut; i > NOTIFY_WORDS_MAX / 2; i--)
			if (body[i] == ' ') {
				cut = i;
				break;
			}
	}
	out = xmalloc(cut + 4);
	memcpy(out, body, cut);
	for (i = 0; i < cut; i++)
		if (out[i] == '\n' || out[i] == '\r' || out[i] == '\t')
			out[i] = ' ';
	strcpy(out + cut, len > cut ? "..." : "");
	return out;
}

static struct notify_rcpt *
notify_rcpt_of(struct notify_run *run, const char *to)
{
	size_t i;

	for (i = 0; i < run->nr; i++)
		if (strcasecmp(run->r[i].to, to) == 0)
			return &run->r[i];
	if (run->nr == run->capr) {
		run->capr = run->capr == 0 ? 4 : run->capr * 2;
		run->r = xreallocarray(run->r, run->capr, sizeof(*run->r));
	}
	memset(&run->r[run->nr], 0, sizeof(run->r[run->nr]));
	run->r[run->nr].to = xstrdup(to);
	return &run->r[run->nr++];
}

static struct notify_thread *
notify_thread_of(struct notify_rcpt *r, int64_t conversation)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->t[i].conversation == conversation)
			return &r->t[i];
	if (r->n == r->cap) {
		r->cap = r->cap == 0 ? 8 : r->cap * 2;
		r->t = xreallocarray(r->t, r->cap, sizeof(*r->t));
	}
	memset(&r->t[r->n], 0, sizeof(r->t[r->n]));
	r->t[r->n].conversation = conversation;
	return &r->t[r->n++];
}

static void
notify_collect(void *arg, const struct notify_item *it)
{
	struct notify_run *run = arg;
	const char *to = it->staff_id != 0 && it->staff_email != NULL
	    ? it->staff_email
	    : run->nf->deps.cfg->conv_notify_email;
	struct notify_rcpt *r;
	struct notify_thread *t;

	run->last_id = it->message_id;
	run->walked++;
	if (to == NULL || *to == '\0') {
		run->unaddressed++;
		return;
	}
	r = notify_rcpt_of(run, to);
	t = notify_thread_of(r, it->conversation_id);
	r->messages++;
	t->count++;
	free(t->who);
	free(t->words);
	t->who = notify_who(it);
	t->words = notify_words(it->body);
}

static void
notify_run_clear(struct notify_run *run)
{
	size_t i, j;

	for (i = 0; i < run->nr; i++) {
		for (j = 0; j < run->r[i].n; j++) {
			free(run->r[i].t[j].who);
			free(run->r[i].t[j].words);
		}
		free(run->r[i].t);
		free(run->r[i].to);
	}
	free(run->r);
}

/* ---- Sending ------------------------------------------------------------ */

/* r's digest email into *q: subject and body are new strings. */
static void
notify_email(const struct notify *nf, const struct notify_rcpt *r,
    struct queue_new *q)
{
	struct evbuffer *b = evbuffer_new();
	size_t i;

	if (b == NULL)
		fatalx("notify_email: evbuffer_new failed");
	memset(q, 0, sizeof(*q));
	q->subject = xasprintf("%" PRId64 " new message%s in %zu "
			       "conversation%s",
	    r->messages, r->messages == 1 ? "" : "s", r->n,
	    r->n == 1 ? "" : "s");
	evbuffer_add_printf(b,
	    "New messages from members since the last "
	    "digest:\n\n");
	for (i = 0; i < r->n; i++)
		evbuffer_add_printf(b,
		    "%s - %" PRId64 " new message%s\n  \"%s\"\n  "
		    "%s/ui/#/conversations/%" PRId64 "\n\n",
		    r->t[i].who, r->t[i].count, r->t[i].count == 1 ? "" : "s",
		    r->t[i].words, nf->base_url, r->t[i].conversation);
	evbuffer_add_printf(b,
	    "-- \nSent by outreachd at most once every %u s ([conversations] "
	    "digest_interval).\n",
	    nf->deps.cfg->conv_digest_interval_ms / 1000);
	evbuffer_add(b, "", 1);
	q->channel = CHANNEL_EMAIL;
	q->to = r->to;
	q->body = xstrdup((const char *)evbuffer_pullup(b, -1));
	q->priority = MSG_PRIO_REPLY;
	evbuffer_free(b);
}

static void
notify_email_clear(struct queue_new *q)
{
	free((char *)q->subject);
	free((char *)q->body);
}

static void
notify_queued_log(const struct notify_rcpt *r, int64_t id)
{
	char masked[128];

	log_info("notify_digest_queued msg=%lld to=%s threads=%zu "
		 "messages=%" PRId64,
	    (long long)id, log_mask_email(r->to, masked, sizeof(masked)), r->n,
	    r->messages);
}

/* Queues r's digest. 0, or -1 with err. */
static int
notify_queue(struct notify *nf, const struct notify_rcpt *r, int64_t now,
    char *err, size_t errlen)
{
	struct queue_stored qs;
	struct queue_new q;
	int rc;

	notify_email(nf, r, &q);
	rc = queue_enqueue(nf->deps.st, &q, now, &qs, err, errlen);
	if (rc == 0)
		notify_queued_log(r, qs.id);
	notify_email_clear(&q);
	return rc;
}

static void
notify_digest_log(const struct notify_run *run)
{
	log_info("notify_digest recipients=%zu messages=%" PRId64
		 " unaddressed=%" PRId64 " last_message=%" PRId64,
	    run->nr, run->walked, run->unaddressed, run->last_id);
}

/* Walks what is new, queues the digests and records the state. */
static void
notify_digest(struct notify *nf, int64_t now)
{
	struct notify_run run = {.nf = nf};
	struct notify_state next;
	char err[256];
	int64_t n;
	size_t i;
	int rc = 0;

	n = store_notify_walk(nf->deps.st,
	    &(struct notify_walk){nf->state.last_message_id, NOTIFY_WALK_MAX,
		notify_collect, &run},
	    err, sizeof(err));
	if (n == -1) {
		log_warnx("notify_walk_failed error=\"%s\"", err);
		notify_run_clear(&run);
		return;
	}
	for (i = 0; i < run.nr && rc == 0; i++)
		rc = notify_queue(nf, &run.r[i], now, err, sizeof(err));
	next.last_message_id = run.last_id;
	next.last_digest_at = now;
	if (rc == 0 && n > 0)
		rc = store_notify_state_set(nf->deps.st, &next, err,
		    sizeof(err));
	if (rc == -1) {
		/* the emails and the state stand or fall together */
		store_abort_group(nf->deps.st);
		log_warnx("notify_digest_failed error=\"%s\" action=\"retried "
			  "on the next turn\"",
		    err);
	} else if (n > 0) {
		nf->state = next;
		if (run.nr > 0)
			dispatch_kick(nf->deps.dispatch);
		notify_digest_log(&run);
	}
	notify_run_clear(&run);
}

/* ---- PostgreSQL (see the top) ------------------------------------------ */

static void
notify_flight_end(struct notify_flight *fl)
{
	size_t i;

	if (fl->nf != NULL)
		fl->nf->flight = NULL;
	for (i = 0; fl->emails != NULL && i < fl->run.nr; i++)
		notify_email_clear(&fl->emails[i]);
	free(fl->emails);
	notify_run_clear(&fl->run);
	free(fl);
}

static void
notify_pg_written(void *arg, const struct store_notify_written *w)
{
	struct notify_flight *fl = arg;
	struct notify *nf = fl->nf;
	size_t i;

	if (nf == NULL) {
		notify_flight_end(fl);
		return;
	}
	if (!w->ok)
		log_warnx("notify_digest_failed error=\"%s\" action=\"retried "
			  "on the next turn\"",
		    w->error != NULL ? w->error : "commit failed");
	else if (!w->taken)
		log_info("notify_digest_elsewhere last_message=%" PRId64
			 " (another node's digest covered it)",
		    fl->run.last_id);
	else {
		for (i = 0; i < fl->run.nr; i++)
			notify_queued_log(&fl->run.r[i], w->ids[i]);
		if (fl->run.nr > 0 && !nf->stopped)
			dispatch_kick(nf->deps.dispatch);
		notify_digest_log(&fl->run);
	}
	notify_flight_end(fl);
}

static void
notify_pg_items(void *arg, const struct notify_item *it, size_t n,
    const char *error)
{
	struct notify_flight *fl = arg;
	struct notify *nf = fl->nf;
	struct store_notify_pg_digest d = {0};
	char err[256];
	size_t i;

	if (nf == NULL || error != NULL || n == 0) {
		if (nf != NULL && error != NULL)
			log_warnx("notify_walk_failed error=\"%s\"", error);
		notify_flight_end(fl);
		return;
	}
	for (i = 0; i < n; i++)
		notify_collect(&fl->run, &it[i]);
	fl->emails = xcalloc(fl->run.nr + 1, sizeof(*fl->emails));
	for (i = 0; i < fl->run.nr; i++)
		notify_email(nf, &fl->run.r[i], &fl->emails[i]);
	d.from = nf->state.last_message_id;
	d.next.last_message_id = fl->run.last_id;
	d.next.last_digest_at = fl->now;
	d.emails = fl->emails;
	d.n = fl->run.nr;
	if (store_notify_pg_write(nf->deps.st, &d, notify_pg_written, fl, err,
		sizeof(err)) == -1) {
		log_warnx("notify_digest_failed error=\"%s\" action=\"retried "
			  "on the next turn\"",
		    err);
		notify_flight_end(fl);
	}
}

static void
notify_pg_due(void *arg, const struct store_notify_due *d, const char *error)
{
	struct notify_flight *fl = arg;
	struct notify *nf = fl->nf;
	int64_t every, due;
	char err[256];

	if (nf == NULL || error != NULL || nf->stopped || !d->found) {
		if (nf != NULL && error != NULL)
			log_warnx("notify_check_failed error=\"%s\"", error);
		notify_flight_end(fl);
		return;
	}
	nf->state = d->state;
	every = nf->deps.cfg->conv_digest_interval_ms;
	due =
	    (d->first_at > d->state.last_digest_at ? d->first_at
						   : d->state.last_digest_at) +
	    every + NOTIFY_PG_SETTLE_MS;
	fl->now = msg_now_ms();
	if (fl->now < due) {
		notify_flight_end(fl);
		return;
	}
	if (store_notify_pg_walk(nf->deps.st,
		&(struct store_notify_pg_walk){.after =
						   d->state.last_message_id,
		    .settled = fl->now - NOTIFY_PG_SETTLE_MS,
		    .limit = NOTIFY_WALK_MAX},
		notify_pg_items, fl, err, sizeof(err)) == -1) {
		log_warnx("notify_walk_failed error=\"%s\"", err);
		notify_flight_end(fl);
	}
}

static void
notify_pg_tick(struct notify *nf)
{
	struct notify_flight *fl;
	char err[256];

	if (nf->flight != NULL)
		return;
	fl = xcalloc(1, sizeof(*fl));
	fl->nf = nf;
	fl->run.nf = nf;
	nf->flight = fl;
	if (store_notify_pg_due(nf->deps.st, notify_pg_due, fl, err,
		sizeof(err)) == -1) {
		log_warnx("notify_check_failed error=\"%s\"", err);
		notify_flight_end(fl);
	}
}

static void
notify_tick(evutil_socket_t fd, short what, void *arg)
{
	struct notify *nf = arg;
	int64_t now = msg_now_ms(), first = 0, due;
	int64_t every = nf->deps.cfg->conv_digest_interval_ms;
	char err[256];
	int rc;

	(void)fd;
	(void)what;
	if (nf->stopped)
		return;
	if (nf->pg) {
		notify_pg_tick(nf);
		return;
	}
	rc = store_notify_first(nf->deps.st, nf->state.last_message_id, &first,
	    err, sizeof(err));
	if (rc == -1)
		log_warnx("notify_check_failed error=\"%s\"", err);
	if (rc != 1)
		return;
	due = (first > nf->state.last_digest_at ? first
						: nf->state.last_digest_at) +
	    every;
	if (now >= due)
		notify_digest(nf, now);
}
