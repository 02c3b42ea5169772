/*
 * dispatch.c - the scheduler between the queue and the adapters.
 *
 * A route is one way out: an SMS sender ([sender NAME]) or the email
 * adapter. Each tick, every route with room (its in-flight cap) and tokens
 * (its token bucket) claims due messages for itself alone, so a slow
 * sender never holds up a fast one. Claims are written in the store's
 * group transaction; the messages go to the adapter only once that commit
 * succeeded, and right before each send the member's opt-out is checked
 * again (compliance at send time, doc/compliance.md). Results go back through
 * queue/: accepted -> sent, transient -> queued with backoff (or expired
 * when the next try would fall after its expiry), permanent -> failed.
 *
 * Ticks are a single timer: a new message kicks it to run at once,
 * otherwise it sleeps until the next due message, the next token, or the
 * idle interval, whichever comes first.
 *
 * Batches (the MT hot path, doc/queue.md): a route with sends in flight
 * claims again only once half a batch fits (so claims are large and the
 * window still holds plenty for the adapter, the pipe never runs dry);
 * the opt-out check runs once per claimed batch, after its commit, right
 * before the hand-over; accepted results are gathered for
 * DISPATCH_SETTLE_MS and recorded together (queue_mark_sent_batch), with
 * one msgs_sent log line per route and batch. A job counts as in flight
 * until its result is recorded, so the duplicate window after a crash
 * stays within max_in_flight.
 *
 * Either store (queue/queue_async.h): every queue operation answers to a
 * callback, at once on SQLite, a round trip later on PostgreSQL, and the
 * code here works either way (a route has one claim pending at most; a
 * job is in flight from its claim's answer until its result's). On
 * PostgreSQL, where several nodes share the queue, a route is claimed
 * only while this node holds its lease (qa_route_held(); a new epoch
 * restarts its bucket empty, so a sender's rate holds across nodes); a
 * claimed message goes to the adapter only before the claim's deadline
 * and while the route is still held, else it is released; a result the
 * database drops (the message's lease ended, another node may own it) is
 * logged at debug; the next due time is polled each tick, so messages
 * other nodes queued are seen within the idle tick; leases are released
 * at a graceful stop, which waits for every pending operation to answer.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "adapter.h"
#include "compat.h"
#include "config.h"
#include "dispatch.h"
#include "email_links.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "queue_async.h"
#include "ratelimit.h"
#include "store.h"
#include "store_members.h"
#include "xmalloc.h"

#define DISPATCH_EXPIRE_EVERY_MS 1000  /* sweep for expired messages */
#define DISPATCH_RETRY_AFTER_MAX 86400 /* s; longer asks are capped */
#define DISPATCH_SENDER_PAUSE_S	 60    /* after a refused sender */
#define DISPATCH_SETTLE_MS	 5     /* accepted results gathered this long */
#define DISPATCH_SETTLE_MAX	 1024  /* or this many, then at once */

/* Retry-After is capped in seconds, before it becomes milliseconds in the
 * unsigned that rl_throttle() takes: the cap must fit once multiplied. */
_Static_assert(DISPATCH_RETRY_AFTER_MAX * 1000ULL <= UINT_MAX,
    "DISPATCH_RETRY_AFTER_MAX in ms must fit an unsigned");

struct route {
	struct dispatch *d;
	size_t idx; /* in d->routes, and qa_routes_start()'s */
	char *name; /* sender name, or "email" */
	enum channel channel;
	struct adapter *ad;
	struct rl_bucket bucket;
	const char *from;   /* default From; borrowed from the config */
	unsigned in_flight; /* claimed and not yet settled */
	unsigned max_in_flight;
	bool full_claim;  /* the last claim filled its batch */
	bool backlog;	  /* the last claim that ran filled it: more wait */
	bool claiming;	  /* a claim has not answered yet */
	size_t claim_max; /* what it asked for */
	int64_t claim_now;
	int64_t epoch; /* of the route's lease when last claimed */
	/* accepted results of the settle in progress (msgs_sent line) */
	unsigned sent_n;
	int64_t sent_lat_sum, sent_lat_max;
};

/* One claimed message, from its claim until its result is stored. */
struct dispatch_job {
	TAILQ_ENTRY(dispatch_job) entry;
	struct dispatch *d;
	struct route *route;
	struct out_msg *msg;
	int64_t claimed_at;
	int64_t deadline;	/* nothing handed out at or after; 0 = none */
	int64_t epoch;		/* the route lease's, at the claim */
	bool at_adapter;	/* handed to the adapter, result pending */
	bool abandoned;		/* given up at the shutdown deadline */
	struct send_result res; /* an accepted result waiting to be recorded */
};
TAILQ_HEAD(dispatch_job_list, dispatch_job);

/* Jobs claimed in one tick, waiting for the claim to commit, then for
 * their opt-out check. */
struct dispatch_batch {
	struct dispatch *d;
	struct dispatch_job **jobs;
	size_t n;
	size_t *at; /* the opt-out check's recipients: their jobs */
	size_t nat;
};

/* Accepted sends being recorded (qa_mark_sent()). */
struct dispatch_sent_batch {
	struct dispatch *d;
	struct dispatch_job **jobs;
	size_t n;
	int64_t now;
};

/* An email result whose bounce count is being recorded, or a carrier
 * opt-out (to masked, code the channel). */
struct dispatch_email {
	struct dispatch *d;
	int64_t id;
	int code;
	char to[MSG_ADDR_MAX];
};

struct dispatch {
	struct event_base *base;
	struct store *st;
	struct qa *qa; /* the queue, either store (queue_async.h) */
	const struct config *cfg;
	struct metrics *metrics;
	struct httpc *httpc;
	struct email_links *links; /* unsubscribe URLs; NULL = none */
	struct route *routes;
	size_t nroutes;
	const char *default_sender;
	struct event *tick_ev;
	struct event *deadline_ev;
	int64_t tick_at; /* when the pending tick fires; 0 = none */
	int64_t last_expire;
	bool expire_pending;
	bool due_pending;
	bool in_tick; /* claims answered now are the tick's */
	bool in_due;  /* qa_next_due() answered now is the caller's */
	int64_t due;  /* the next due message, as last answered */
	struct dispatch_job_list jobs;
	struct dispatch_job_list abandoned;
	struct dispatch_job **acc; /* accepted, not yet recorded */
	size_t nacc;
	size_t acc_cap;
	struct event *settle_ev; /* records acc (dispatch_on_settle) */
	bool settle_armed;
	bool running;
	bool stopping;
	dispatch_stopped_fn *stopped_cb;
	void *stopped_arg;
};

/* What dispatch_route_init() makes a route's adapter from. */
struct dispatch_routedef {
	const char *adapter; /* its name in adapter_table[]: "twilio", "smtp" */
	const char *name;    /* the route's: the sender's name, or "email" */
	const struct config_section *sec; /* its section; may be NULL */
};

static int dispatch_route_init(struct dispatch *, struct route *,
    const struct dispatch_routedef *, char *, size_t);
static struct route *dispatch_sms_route(const struct dispatch *, const char *);
static void dispatch_schedule(struct dispatch *, int64_t);
static void dispatch_on_tick(evutil_socket_t, short, void *);
static void dispatch_claim(struct dispatch *, struct route *, int64_t);
static void dispatch_on_claimed(void *, const struct qa_answer *);
static void dispatch_on_claim_commit(void *, bool);
static void dispatch_check_optout(struct dispatch *, struct dispatch_batch *);
static void dispatch_on_checked(void *, const struct qa_answer *);
static void dispatch_release(struct dispatch_job *, int64_t);
static void dispatch_on_marked(void *, const struct qa_answer *);
static void dispatch_on_route(void *, size_t, bool, int64_t);
static void dispatch_on_due(void *, const struct qa_answer *);
static void dispatch_on_expire_done(void *, const struct qa_answer *);
static void dispatch_on_idle(void *);
static void dispatch_send(struct dispatch_job *, int, int64_t);
static void dispatch_on_result(void *, const struct send_result *);
static void dispatch_accepted(struct dispatch_job *,
    const struct send_result *);
static void dispatch_on_settle(evutil_socket_t, short, void *);
static void dispatch_record_sent(struct dispatch *, struct dispatch_job **,
    size_t, int64_t);
static void dispatch_on_recorded(void *, const struct qa_answer *);
static void dispatch_sent_one(struct dispatch_job *, const char *, int64_t);
static void dispatch_log_sent(struct dispatch *);
static size_t dispatch_room(const struct dispatch *, const struct route *);
static void dispatch_retry(struct dispatch_job *, const struct send_result *,
    int64_t);
static void dispatch_settle(struct dispatch_job *);
static void dispatch_pause_sender(struct dispatch *, struct route *,
    const struct send_result *, int64_t);
static void dispatch_record_optout(struct dispatch *, const struct out_msg *,
    int64_t);
static void dispatch_email_links(struct dispatch *, struct out_msg *);
static void dispatch_email_result(struct dispatch *, const struct out_msg *,
    const struct send_result *, int64_t);
static void dispatch_on_email(void *, const struct qa_answer *);
static void dispatch_on_optout(void *, const struct qa_answer *);
static void dispatch_check_stopped(struct dispatch *);
static void dispatch_on_deadline(evutil_socket_t, short, void *);
static void dispatch_on_expired(void *, int64_t, enum channel, const char *);
static void dispatch_on_stopped(evutil_socket_t, short, void *);
static int64_t dispatch_next_delay(struct dispatch *, int64_t);

/* Creates the adapter of one route and checks that its channel fits. */
static int
dispatch_route_init(struct dispatch *d, struct route *r,
    const struct dispatch_routedef *def, char *err, size_t errlen)
{
	const struct config_section *sec = def->sec;
	const char *ops = def->adapter;
	struct adapter_env env = {
	    .base = d->base,
	    .var_dir = d->cfg->var_dir,
	    .public_url = d->cfg->public_url,
	    .httpc = d->httpc,
	    .dkim_domain = d->cfg->dkim_domain,
	    .dkim_selector = d->cfg->dkim_selector,
	    .dkim_key_file = d->cfg->dkim_key_file,
	};

	r->name = xstrdup(def->name);
	r->max_in_flight = d->cfg->max_in_flight;
	if ((r->ad = adapter_new(ops, def->name, &env, sec, err, errlen)) ==
	    NULL)
		return -1;
	log_debug("route_ready name=%s channel=%s adapter=%s", def->name,
	    channel_to_text(r->channel), ops);
	if (r->ad->ops->channel != r->channel) {
		snprintf(err, errlen,
		    "%s:%d: '%s' is an %s adapter, not an %s "
		    "one",
		    sec ? sec->file : d->cfg->file,
		    sec ? config_section_line(sec,
			      r->channel == CHANNEL_SMS ? "provider"
							: "adapter")
			: 0,
		    ops, channel_to_text(r->ad->ops->channel),
		    channel_to_text(r->channel));
		return -1;
	}
	return 0;
}

struct dispatch *
dispatch_new(const struct dispatch_deps *deps, char *err, size_t errlen)
{
	struct dispatch *d = xcalloc(1, sizeof(*d));
	const struct config *cfg = deps->cfg;
	const struct config_sender *s;
	struct route *r;
	int64_t now = msg_now_ms();
	size_t i;

	d->base = deps->base;
	d->st = deps->st;
	d->cfg = cfg;
	d->metrics = deps->metrics;
	d->httpc = deps->httpc;
	d->default_sender = cfg->default_sender;
	TAILQ_INIT(&d->jobs);
	TAILQ_INIT(&d->abandoned);
	d->routes = xcalloc(cfg->nsenders + 1, sizeof(*d->routes));
	for (i = 0; i < cfg->nsenders; i++) {
		s = &cfg->senders[i];
		r = &d->routes[d->nroutes];
		r->d = d;
		r->idx = d->nroutes++;
		r->channel = CHANNEL_SMS;
		r->from = s->from;
		rl_init(&r->bucket, s->rate, s->burst, now);
		if (dispatch_route_init(d, r,
			&(struct dispatch_routedef){.adapter = s->provider,
			    .name = s->name,
			    .sec = s->section},
			err, errlen) == -1)
			goto fail;
	}
	r = &d->routes[d->nroutes];
	r->d = d;
	r->idx = d->nroutes++;
	r->channel = CHANNEL_EMAIL;
	rl_init(&r->bucket, 0, 1, now);
	if (dispatch_route_init(d, r,
		&(struct dispatch_routedef){.adapter = cfg->email_adapter,
		    .name = "email",
		    .sec = strcmp(cfg->email_adapter, "smtp") == 0
			? cfg->smtp_section
			: cfg->email_section},
		err, errlen) == -1)
		goto fail;
	if (d->base != NULL) {
		d->tick_ev = evtimer_new(d->base, dispatch_on_tick, d);
		d->deadline_ev = evtimer_new(d->base, dispatch_on_deadline, d);
		d->settle_ev = evtimer_new(d->base, dispatch_on_settle, d);
		if (d->tick_ev == NULL || d->deadline_ev == NULL ||
		    d->settle_ev == NULL)
			fatalx("dispatch_new: evtimer_new failed");
		d->qa = qa_new(d->st, d->base);
		qa_on_idle(d->qa, dispatch_on_idle, d);
	}
	return d;
fail:
	dispatch_free(d);
	return NULL;
}

void
dispatch_set_email_links(struct dispatch *d, struct email_links *links)
{
	d->links = links;
}

void
dispatch_start(struct dispatch *d)
{
	struct qa_route *routes = xcalloc(d->nroutes, sizeof(*routes));
	size_t i;

	for (i = 0; i < d->nroutes; i++)
		routes[i] = (struct qa_route){.ch = d->routes[i].channel,
		    .sender = d->routes[i].channel == CHANNEL_SMS
			? d->routes[i].name
			: NULL};
	d->running = true;
	if (d->qa != NULL)
		qa_routes_start(d->qa, routes, d->nroutes, dispatch_on_route,
		    d);
	free(routes);
	dispatch_schedule(d, 0);
}

/*
 * A route's lease changed hands (PostgreSQL, queue_async.h): claim at
 * once when this node got it; its bucket restarts at the next claim.
 */
static void
dispatch_on_route(void *arg, size_t i, bool held, int64_t epoch)
{
	struct dispatch *d = arg;

	log_info("route_lease route=%s held=%d epoch=%lld", d->routes[i].name,
	    held, (long long)epoch);
	if (held)
		dispatch_kick(d);
}

void
dispatch_kick(struct dispatch *d)
{
	if (d->running && !d->stopping)
		dispatch_schedule(d, 0);
}

/* The route of SMS sender 'name', or NULL. */
static struct route *
dispatch_sms_route(const struct dispatch *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->nroutes; i++)
		if (d->routes[i].channel == CHANNEL_SMS &&
		    strcmp(d->routes[i].name, name) == 0)
			return &d->routes[i];
	return NULL;
}

bool
dispatch_has_sender(const struct dispatch *d, const char *name)
{
	return dispatch_sms_route(d, name) != NULL;
}

struct adapter *
dispatch_sender_adapter(const struct dispatch *d, const char *name)
{
	struct route *r = dispatch_sms_route(d, name);

	return r != NULL ? r->ad : NULL;
}

const char *
dispatch_sender_from(const struct dispatch *d, const char *name)
{
	struct route *r = dispatch_sms_route(d, name);

	return r != NULL ? r->from : NULL;
}

const char *
dispatch_default_sender(const struct dispatch *d)
{
	return d->default_sender;
}

json_t *
dispatch_routes_json(const struct dispatch *d)
{
	json_t *senders = json_array(), *email = json_null();
	const struct route *r;
	size_t i;

	for (i = 0; i < d->nroutes; i++) {
		r = &d->routes[i];
		if (r->channel == CHANNEL_EMAIL) {
			json_decref(email);
			email = json_pack("{s:s, s:i}", "adapter",
			    r->ad->ops->name, "in_flight", (int)r->in_flight);
			continue;
		}
		json_array_append_new(senders,
		    json_pack("{s:s, s:s, s:s?, s:f, s:i, s:i}", "name",
			r->name, "provider", r->ad->ops->name, "from", r->from,
			"rate", r->bucket.rate, "burst", (int)r->bucket.burst,
			"in_flight", (int)r->in_flight));
	}
	return json_pack("{s:o, s:o}", "senders", senders, "email", email);
}

/* Makes the next tick fire within delay_ms (an earlier one is kept). */
static void
dispatch_schedule(struct dispatch *d, int64_t delay_ms)
{
	int64_t at = msg_now_ms() + delay_ms;
	struct timeval tv;

	if (d->tick_ev == NULL || (d->tick_at != 0 && d->tick_at <= at))
		return;
	d->tick_at = at;
	tv.tv_sec = delay_ms / 1000;
	tv.tv_usec = (delay_ms % 1000) * 1000;
	evtimer_add(d->tick_ev, &tv);
}

static void
dispatch_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dispatch *d = arg;
	int64_t now = msg_now_ms();
	size_t i;

	(void)fd;
	(void)what;
	d->tick_at = 0;
	if (!d->running || d->stopping)
		return;
	if (now - d->last_expire >= DISPATCH_EXPIRE_EVERY_MS &&
	    !d->expire_pending) {
		d->last_expire = now;
		d->expire_pending = true;
		qa_expire(d->qa, now, dispatch_on_expired,
		    dispatch_on_expire_done, d);
	}
	d->in_tick = true;
	for (i = 0; i < d->nroutes; i++)
		dispatch_claim(d, &d->routes[i], now);
	d->in_tick = false;
	dispatch_schedule(d, dispatch_next_delay(d, now));
}

static void
dispatch_on_expire_done(void *arg, const struct qa_answer *a)
{
	struct dispatch *d = arg;

	d->expire_pending = false;
	if (a->error != NULL)
		log_warnx("dispatch_expire error=\"%s\"", a->error);
}

/* The expiry sweep moved message 'id' of route (ch, sender). */
static void
dispatch_on_expired(void *arg, int64_t id, enum channel ch, const char *sender)
{
	struct dispatch *d = arg;
	const struct route *r;

	/* the email route is the last one (dispatch_new) */
	if (ch == CHANNEL_EMAIL)
		r = &d->routes[d->nroutes - 1];
	else
		r = sender != NULL ? dispatch_sms_route(d, sender) : NULL;
	log_info("msg_expired msg=%lld channel=%s sender=%s reason=\"expired "
		 "before it was sent\"",
	    (long long)id, channel_to_text(ch), sender ? sender : "-");
	metrics_count_message(d->metrics, ch, r ? r->ad->ops->name : "none",
	    r ? r->name : (sender ? sender : "-"), METRICS_OUT_EXPIRED);
}

/*
 * How long the dispatcher may sleep: at once if a route filled its batch
 * and has room, else until the next token of a paced route or the next
 * due message, at most the idle tick.
 */
static int64_t
dispatch_next_delay(struct dispatch *d, int64_t now)
{
	int64_t delay = d->cfg->tick_ms, due, w;
	struct route *r;
	size_t i;

	for (i = 0; i < d->nroutes; i++) {
		r = &d->routes[i];
		if (dispatch_room(d, r) == 0)
			continue; /* a settling send kicks the tick */
		if (r->full_claim)
			return 0;
		if ((w = rl_wait_ms(&r->bucket, now)) > 0 && w < delay)
			delay = w;
	}
	/* Messages due already but not claimed wait for their route (its
	 * token, its pause, a settling send's kick): only a future due time
	 * may shorten the sleep, or a paused route would spin the loop. */
	if (!d->due_pending) {
		d->due_pending = d->in_due = true;
		qa_next_due(d->qa, dispatch_on_due, d);
		d->in_due = false;
	}
	if ((due = d->due) > now && due - now < delay)
		delay = due - now;
	return delay;
}

/*
 * The next due time answered: read by dispatch_next_delay() when it
 * answered at once (SQLite), else it schedules the tick itself
 * (PostgreSQL, where it also sees messages other nodes queued).
 */
static void
dispatch_on_due(void *arg, const struct qa_answer *a)
{
	struct dispatch *d = arg;
	int64_t now;

	d->due_pending = false;
	if (a->error != NULL)
		return; /* the idle tick comes anyway */
	d->due = a->due;
	if (d->in_due || !d->running || d->stopping)
		return;
	if ((now = msg_now_ms()) < a->due)
		dispatch_schedule(d, a->due - now);
}

/*
 * How many messages route r may claim now, tokens aside: up to a batch
 * while the in-flight window has room. With a backlog (the last claim
 * found more than it could take) and sends in flight, 0 until half a
 * batch fits, so that a busy route claims in large batches (one claim,
 * one commit, one opt-out query each) while the window still holds
 * plenty for its adapter; messages that trickle in go at once.
 */
static size_t
dispatch_room(const struct dispatch *d, const struct route *r)
{
	size_t room, batch = d->cfg->batch;

	if (r->in_flight >= r->max_in_flight)
		return 0;
	room = r->max_in_flight - r->in_flight;
	if (batch > r->max_in_flight)
		batch = r->max_in_flight;
	if (r->backlog && r->in_flight > 0 && room < batch / 2)
		return 0;
	return room < batch ? room : batch;
}

/* Claims what route r may send now, to go out once the claim commits. */
static void
dispatch_claim(struct dispatch *d, struct route *r, int64_t now)
{
	int64_t epoch;
	size_t max;

	r->full_claim = false;
	if (r->claiming || (max = dispatch_room(d, r)) == 0)
		return;
	/* Another node paces this route (PostgreSQL; SQLite: always held). */
	if (!qa_route_held(d->qa, r->idx, &epoch))
		return;
	if (epoch != r->epoch) {
		/* Another node paced it meanwhile: start afresh, empty, so
		 * that the rate holds across the handover. */
		r->epoch = epoch;
		rl_init(&r->bucket, r->bucket.rate, (unsigned)r->bucket.burst,
		    now);
		r->bucket.tokens = 0;
	}
	/* Paused by a 429, or no token yet (this call also refills). */
	if (rl_wait_ms(&r->bucket, now) > 0)
		return;
	if (r->bucket.rate > 0 && (double)max > floor(r->bucket.tokens))
		max = (size_t)floor(r->bucket.tokens);
	if (max == 0)
		return;
	r->claiming = true;
	r->claim_max = max;
	r->claim_now = now;
	qa_claim(d->qa,
	    &(struct queue_claim_req){.ch = r->channel,
		.sender = r->channel == CHANNEL_SMS ? r->name : NULL,
		.now = now,
		.lease_ms = d->cfg->lease_ms,
		.max = max},
	    dispatch_on_claimed, r);
}

/*
 * A claim answered (SQLite: at once, in the open group; PostgreSQL: later,
 * committed): its messages are in flight from now on, and go out once the
 * claim is durable (qa_when_durable()).
 */
static void
dispatch_on_claimed(void *arg, const struct qa_answer *a)
{
	struct route *r = arg;
	struct dispatch *d = r->d;
	int64_t now = r->claim_now;
	struct dispatch_batch *b;
	int64_t deadline = 0, margin;
	size_t i;

	r->claiming = false;
	if (a->error != NULL || a->n == 0) {
		if (a->error != NULL)
			log_warnx("dispatch_claim route=%s error=\"%s\"",
			    r->name, a->error);
		else
			r->backlog = false;
		return;
	}
	r->full_claim = r->backlog = a->n == r->claim_max;
	/* A message handed out must be answered before its lease ends (or
	 * another node may send it too): an adapter's timeout before the
	 * claim's deadline, at most half the lease. */
	if (a->deadline != 0) {
		margin = d->cfg->client_timeout_ms;
		if (margin > d->cfg->lease_ms / 2)
			margin = d->cfg->lease_ms / 2;
		deadline = a->deadline - margin;
	}
	b = xcalloc(1, sizeof(*b));
	b->d = d;
	b->n = a->n;
	b->jobs = xcalloc(b->n, sizeof(*b->jobs));
	for (i = 0; i < b->n; i++) {
		(void)rl_take(&r->bucket, now);
		b->jobs[i] = xcalloc(1, sizeof(**b->jobs));
		b->jobs[i]->d = d;
		b->jobs[i]->route = r;
		b->jobs[i]->msg = a->msgs[i];
		b->jobs[i]->claimed_at = now;
		b->jobs[i]->deadline = deadline;
		b->jobs[i]->epoch = r->epoch;
		TAILQ_INSERT_TAIL(&d->jobs, b->jobs[i], entry);
	}
	r->in_flight += (unsigned)b->n;
	log_trace(TRACE_DISPATCH, "dispatch_claimed route=%s count=%zu",
	    r->name, b->n);
	/* Answered after its tick (PostgreSQL): a full claim claims again. */
	if (!d->in_tick && r->full_claim)
		dispatch_kick(d);
	qa_when_durable(d->qa, dispatch_on_claim_commit, b);
}

/* The claim is durable (or was rolled back): check, or forget the jobs. */
static void
dispatch_on_claim_commit(void *arg, bool ok)
{
	struct dispatch_batch *b = arg;
	struct dispatch *d = b->d;
	int64_t now = msg_now_ms();
	size_t i;

	if (ok && !d->stopping) {
		dispatch_check_optout(d, b);
		return;
	}
	for (i = 0; i < b->n; i++) {
		if (ok) /* stopping */
			dispatch_release(b->jobs[i], now);
		dispatch_settle(b->jobs[i]); /* !ok: still queued */
	}
	free(b->jobs);
	free(b);
	dispatch_check_stopped(d);
}

/*
 * The send-time opt-out check of a committed claim, one query for the
 * batch (all of one route, so one channel), except the exempt compliance
 * replies; dispatch_on_checked() sends.
 */
static void
dispatch_check_optout(struct dispatch *d, struct dispatch_batch *b)
{
	const char **to = xcalloc(b->n, sizeof(*to));
	size_t i, n = 0;

	b->at = xcalloc(b->n, sizeof(*b->at));
	for (i = 0; i < b->n; i++) {
		if (b->jobs[i]->msg->optout_exempt)
			continue;
		b->at[n] = i;
		to[n++] = b->jobs[i]->msg->to;
	}
	b->nat = n;
	if (n > 0)
		qa_suppressed(d->qa, b->jobs[0]->msg->channel, to, n,
		    dispatch_on_checked, b);
	else
		dispatch_on_checked(b, &(struct qa_answer){.n = 0});
	free(to);
}

/*
 * The opt-out check answered: each job goes on with sup = 1 opted out, 0
 * not (or exempt), -1 the check failed; or, once stopping began, back to
 * the queue.
 */
static void
dispatch_on_checked(void *arg, const struct qa_answer *a)
{
	struct dispatch_batch *b = arg;
	struct dispatch *d = b->d;
	int64_t now = msg_now_ms();
	int *sup = xcalloc(b->n, sizeof(*sup));
	size_t i;

	if (a->error != NULL)
		log_warnx("dispatch_optout_check route=%s count=%zu "
			  "error=\"%s\"",
		    b->jobs[0]->route->name, b->nat, a->error);
	for (i = 0; i < a->n || (a->error != NULL && i < b->n); i++) {
		if (a->error != NULL) {
			if (!b->jobs[i]->msg->optout_exempt)
				sup[i] = -1;
		} else
			sup[b->at[i]] = a->sup[i] ? 1 : 0;
	}
	for (i = 0; i < b->n; i++) {
		if (d->stopping) {
			dispatch_release(b->jobs[i], now);
			dispatch_settle(b->jobs[i]);
		} else
			dispatch_send(b->jobs[i], sup[i], now);
	}
	free(sup);
	free(b->at);
	free(b->jobs);
	free(b);
	dispatch_check_stopped(d);
}

/* dispatch_on_marked()'s name for a release (its arg is not const). */
static char dispatch_what_release[] = "dispatch_release";

/* Gives the job's message back to the queue, no attempt counted. */
static void
dispatch_release(struct dispatch_job *job, int64_t now)
{
	qa_mark(job->d->qa,
	    &(struct qa_result){.id = job->msg->id,
		.to = MSG_ST_QUEUED,
		.release = true,
		.now = now},
	    dispatch_on_marked, dispatch_what_release);
}

/*
 * A result answered: an error is logged (arg names the operation); a
 * result dropped because another node holds the message now (its lease
 * ended) is the documented duplicate window, logged at debug.
 */
static void
dispatch_on_marked(void *arg, const struct qa_answer *a)
{
	const char *what = arg != NULL ? arg : "dispatch_mark";

	if (a->error != NULL)
		log_warnx("%s msg=%lld error=\"%s\"", what, (long long)a->id,
		    a->error);
	else if (a->n == 0)
		log_debug("%s msg=%lld dropped=\"not this node's any more\"",
		    what, (long long)a->id);
}

/*
 * Last checks before a message leaves: opt-out (compliance at send time:
 * 'sup' is the batch's check, dispatch_check_optout), expiry, then the
 * adapter.
 */
static void
dispatch_send(struct dispatch_job *job, int sup, int64_t now)
{
	struct dispatch *d = job->d;
	struct out_msg *msg = job->msg;
	struct route *r = job->route;
	char masked[MSG_ADDR_MAX];
	int64_t epoch;

	if (sup != 0 || (msg->expires_at != 0 && msg->expires_at <= now)) {
		log_mask_addr(msg->to, masked, sizeof(masked));
		/* On a failed check, hold the message back: retry later. */
		if (sup == -1)
			dispatch_retry(job, NULL, now);
		else {
			qa_mark(d->qa,
			    &(struct qa_result){.id = msg->id,
				.to = sup == 1 ? MSG_ST_SUPPRESSED
					       : MSG_ST_EXPIRED,
				.text = sup == 1 ? "recipient opted out"
						 : "expired before sending",
				.now = now},
			    dispatch_on_marked, NULL);
			log_info("msg_%s msg=%lld channel=%s to=%s",
			    sup == 1 ? "suppressed" : "expired",
			    (long long)msg->id, channel_to_text(msg->channel),
			    masked);
			metrics_count_message(d->metrics, msg->channel,
			    r->ad->ops->name, r->name,
			    sup == 1 ? METRICS_OUT_SUPPRESSED
				     : METRICS_OUT_EXPIRED);
			/* Nothing went to the provider: its pace is not
			 * spent (after a STOP, the rest of a queue ends at
			 * once instead of at the sender's rate). */
			rl_refund(&r->bucket);
		}
		dispatch_settle(job);
		return;
	}
	/* PostgreSQL: the claim's lease may end, or the route go to another
	 * node, before the hand-over: then it is not ours to send. */
	if ((job->deadline != 0 && now >= job->deadline) ||
	    !qa_route_held(d->qa, r->idx, &epoch) || epoch != job->epoch) {
		log_info("msg_released msg=%lld route=%s reason=\"lease ended "
			 "before the hand-over\"",
		    (long long)msg->id, r->name);
		dispatch_release(job, now);
		rl_refund(&r->bucket);
		dispatch_settle(job);
		return;
	}
	if (msg->from[0] == '\0' && r->from != NULL)
		strlcpy(msg->from, r->from, sizeof(msg->from));
	if (msg->channel == CHANNEL_EMAIL && !msg->optout_exempt)
		dispatch_email_links(d, msg);
	job->at_adapter = true;
	if (adapter_send(r->ad, msg, dispatch_on_result, job) == -1) {
		job->at_adapter = false;
		dispatch_retry(job, NULL, now);
		dispatch_settle(job);
	}
}

/* The adapter's one answer for a job. */
static void
dispatch_on_result(void *arg, const struct send_result *res)
{
	struct dispatch_job *job = arg;
	struct dispatch *d = job->d;
	struct out_msg *msg = job->msg;
	struct route *r = job->route;
	struct send_result held;
	int64_t now = msg_now_ms();
	char masked[MSG_ADDR_MAX];

	if (job->abandoned) {
		/* Released at the shutdown deadline; the message is queued
		 * again and may be sent twice (the documented window). */
		TAILQ_REMOVE(&d->abandoned, job, entry);
		out_msg_free(job->msg);
		free(job);
		return;
	}
	job->at_adapter = false;
	if (res->outcome == SEND_ACCEPTED) {
		dispatch_accepted(job, res);
		return;
	}
	log_mask_addr(msg->to, masked, sizeof(masked));
	switch (res->outcome) {
	case SEND_ACCEPTED:
		break; /* above */
	case SEND_TRANSIENT:
		/* Every use below sees the capped Retry-After (a provider's
		 * 4294968 s once paused a sender for 704 ms). */
		held = *res;
		if (held.retry_after > DISPATCH_RETRY_AFTER_MAX)
			held.retry_after = DISPATCH_RETRY_AFTER_MAX;
		if (held.flags & SEND_F_SENDER_BROKEN) {
			if (held.retry_after < DISPATCH_SENDER_PAUSE_S)
				held.retry_after = DISPATCH_SENDER_PAUSE_S;
			dispatch_pause_sender(d, r, &held, now);
			dispatch_retry(job, &held, now);
			break;
		}
		if (held.flags & SEND_F_RATE_LIMITED)
			rl_throttle(&r->bucket, now, held.retry_after * 1000);
		metrics_count_message(d->metrics, msg->channel,
		    r->ad->ops->name, r->name, METRICS_OUT_TRANSIENT);
		dispatch_retry(job, &held, now);
		break;
	case SEND_PERMANENT:
		qa_mark(d->qa,
		    &(struct qa_result){.id = msg->id,
			.to = MSG_ST_FAILED,
			.code = res->code,
			.text = res->text[0] != '\0' ? res->text : NULL,
			.now = now},
		    dispatch_on_marked, NULL);
		if (res->flags & SEND_F_OPTED_OUT)
			dispatch_record_optout(d, msg, now);
		log_info("msg_failed msg=%lld channel=%s sender=%s provider=%s "
			 "to=%s code=%d error=\"%s\"",
		    (long long)msg->id, channel_to_text(msg->channel), r->name,
		    r->ad->ops->name, masked, res->code, res->text);
		metrics_count_message(d->metrics, msg->channel,
		    r->ad->ops->name, r->name, METRICS_OUT_PERMANENT);
		break;
	}
	if (msg->channel == CHANNEL_EMAIL)
		dispatch_email_result(d, msg, res, now);
	dispatch_settle(job);
	dispatch_kick(d);
}

/*
 * An accepted send waits, still in flight, to be recorded with the others
 * of the next DISPATCH_SETTLE_MS (or at once when DISPATCH_SETTLE_MAX
 * wait).
 */
static void
dispatch_accepted(struct dispatch_job *job, const struct send_result *res)
{
	struct dispatch *d = job->d;
	struct timeval tv = {0, DISPATCH_SETTLE_MS * 1000};

	job->res = *res;
	if (d->nacc == d->acc_cap) {
		d->acc_cap = d->acc_cap == 0 ? 64 : d->acc_cap * 2;
		d->acc = xreallocarray(d->acc, d->acc_cap, sizeof(*d->acc));
	}
	d->acc[d->nacc++] = job;
	if (d->nacc >= DISPATCH_SETTLE_MAX) {
		evtimer_del(d->settle_ev);
		d->settle_armed = false;
		dispatch_on_settle(-1, 0, d);
	} else if (!d->settle_armed) {
		d->settle_armed = true;
		evtimer_add(d->settle_ev, &tv);
	}
}

/* Records the accepted sends gathered so far; they settle once recorded
 * (dispatch_on_recorded()). */
static void
dispatch_on_settle(evutil_socket_t fd, short what, void *arg)
{
	struct dispatch *d = arg;
	struct dispatch_job **jobs = d->acc;
	size_t n = d->nacc;

	(void)fd;
	(void)what;
	d->settle_armed = false;
	if (n == 0)
		return;
	/* Taken off first: settling may add results (a callback that ends
	 * in the adapter never does, but nothing here relies on it). */
	d->acc = NULL;
	d->nacc = d->acc_cap = 0;
	dispatch_record_sent(d, jobs, n, msg_now_ms());
}

/* One msgs_sent line per route that settled accepted sends. */
static void
dispatch_log_sent(struct dispatch *d)
{
	struct route *r;
	size_t i;

	for (i = 0; i < d->nroutes; i++) {
		r = &d->routes[i];
		if (r->sent_n == 0)
			continue;
		log_info("msgs_sent sender=%s provider=%s count=%u "
			 "latency_ms_avg=%lld latency_ms_max=%lld",
		    r->name, r->ad->ops->name, r->sent_n,
		    (long long)(r->sent_lat_sum / r->sent_n),
		    (long long)r->sent_lat_max);
		r->sent_n = 0;
		r->sent_lat_sum = r->sent_lat_max = 0;
	}
}

/* sending -> sent for jobs[0..n-1] (owned from here) in one batch. */
static void
dispatch_record_sent(struct dispatch *d, struct dispatch_job **jobs, size_t n,
    int64_t now)
{
	struct queue_sent *v = xcalloc(n, sizeof(*v));
	struct dispatch_sent_batch *sb = xcalloc(1, sizeof(*sb));
	size_t i;

	for (i = 0; i < n; i++)
		v[i] = (struct queue_sent){.id = jobs[i]->msg->id,
		    .provider = jobs[i]->route->ad->ops->name,
		    .provider_id = jobs[i]->res.provider_id,
		    .code = jobs[i]->res.code,
		    .text = jobs[i]->res.text[0] != '\0' ? jobs[i]->res.text
							 : NULL};
	*sb = (struct dispatch_sent_batch){.d = d,
	    .jobs = jobs,
	    .n = n,
	    .now = now};
	qa_mark_sent(d->qa, v, n, now, dispatch_on_recorded, sb);
	free(v);
}

/* The batch is recorded (or failed as a whole): each job settles. */
static void
dispatch_on_recorded(void *arg, const struct qa_answer *a)
{
	struct dispatch_sent_batch *sb = arg;
	struct dispatch *d = sb->d;
	size_t i;

	if (a->error != NULL)
		log_warnx("dispatch_mark count=%zu error=\"%s\"", sb->n,
		    a->error);
	for (i = 0; i < sb->n; i++) {
		if (a->error != NULL || a->ok[i])
			dispatch_sent_one(sb->jobs[i], NULL, sb->now);
		else
			dispatch_sent_one(sb->jobs[i],
			    a->why[i] != NULL ? a->why[i] : "", sb->now);
	}
	free(sb->jobs);
	free(sb);
	dispatch_log_sent(d);
	dispatch_kick(d);
}

/*
 * The rest of one accepted send: 'why' is NULL when it was recorded,
 * else the error (logged), or "" when the result was dropped because the
 * message is not this node's any more (debug); the per-message line is at
 * debug level (the route's msgs_sent line counts it); metrics; email
 * bookkeeping.
 */
static void
dispatch_sent_one(struct dispatch_job *job, const char *why, int64_t now)
{
	struct dispatch *d = job->d;
	struct out_msg *msg = job->msg;
	struct route *r = job->route;
	char masked[MSG_ADDR_MAX];
	int64_t lat = now - job->claimed_at;

	if (why != NULL)
		dispatch_on_marked(NULL,
		    &(struct qa_answer){.id = msg->id,
			.error = why[0] != '\0' ? why : NULL});
	if (log_get_level() >= LOG_LVL_DEBUG) {
		log_mask_addr(msg->to, masked, sizeof(masked));
		log_debug("msg_sent msg=%lld channel=%s sender=%s "
			  "provider=%s to=%s attempt=%d latency_ms=%lld",
		    (long long)msg->id, channel_to_text(msg->channel), r->name,
		    r->ad->ops->name, masked, msg->attempts + 1,
		    (long long)lat);
	}
	r->sent_n++;
	r->sent_lat_sum += lat;
	if (lat > r->sent_lat_max)
		r->sent_lat_max = lat;
	metrics_count_message(d->metrics, msg->channel, r->ad->ops->name,
	    r->name, METRICS_OUT_ACCEPTED);
	if (msg->channel == CHANNEL_EMAIL)
		dispatch_email_result(d, msg, &job->res, now);
	dispatch_settle(job);
}

/*
 * An email to a member gets its List-Unsubscribe targets (RFC 8058): the
 * signed one-click URL (none without [http] public_url) and the
 * [email] unsubscribe_mailto address. Compliance replies (the double
 * opt-in confirmation) carry none.
 */
static void
dispatch_email_links(struct dispatch *d, struct out_msg *msg)
{
	char url[1024];

	if (msg->unsubscribe_url == NULL && d->links != NULL &&
	    email_links_unsubscribe_url(d->links, msg->id, url, sizeof(url)) ==
		0)
		msg->unsubscribe_url = xstrdup(url);
	if (msg->unsubscribe_mailto == NULL &&
	    d->cfg->email_unsubscribe_mailto != NULL &&
	    d->cfg->email_unsubscribe_mailto[0] != '\0')
		msg->unsubscribe_mailto =
		    xstrdup(d->cfg->email_unsubscribe_mailto);
}

/*
 * Bounce bookkeeping of an email result: a permanent refusal with an SMTP
 * 5xx code counts a failure of the address (at [email] bounce_limit the
 * member is marked bouncing and queue_is_suppressed() holds back its
 * mail); an accepted one resets the count. Permanent failures without a
 * 5xx (a message that could not be built) say nothing about the address.
 */
static void
dispatch_email_result(struct dispatch *d, const struct out_msg *msg,
    const struct send_result *res, int64_t now)
{
	struct dispatch_email *e;

	if (res->outcome != SEND_ACCEPTED &&
	    (res->outcome != SEND_PERMANENT || res->code < 500 ||
		res->code > 599))
		return;
	e = xcalloc(1, sizeof(*e));
	e->d = d;
	e->id = msg->id;
	e->code = res->outcome == SEND_ACCEPTED ? 0 : res->code;
	strlcpy(e->to, msg->to, sizeof(e->to));
	qa_email_result(d->qa,
	    &(struct qa_email){.address = msg->to,
		.accepted = res->outcome == SEND_ACCEPTED,
		.limit = d->cfg->email_bounce_limit,
		.now = now},
	    dispatch_on_email, e);
}

/* The bounce count answered: tell the operator of a bouncing address. */
static void
dispatch_on_email(void *arg, const struct qa_answer *a)
{
	struct dispatch_email *e = arg;
	char masked[MSG_ADDR_MAX];

	log_mask_email(e->to, masked, sizeof(masked));
	if (a->error != NULL && e->code == 0)
		log_warnx("email_success_record_failed msg=%lld error=\"%s\"",
		    (long long)e->id, a->error);
	else if (a->error != NULL)
		log_warnx("email_failure_record_failed msg=%lld to=%s "
			  "error=\"%s\"",
		    (long long)e->id, masked, a->error);
	else if (e->code != 0 && a->n == 1)
		log_warnx("email_bouncing to=%s msg=%lld code=%d limit=%u "
			  "action=\"no more email goes to this address until "
			  "the member's email is changed\"",
		    masked, (long long)e->id, e->code,
		    e->d->cfg->email_bounce_limit);
	free(e);
}

/*
 * The provider refused the sender itself (credentials, account, credit):
 * every message of it would fail alike, so none is failed. The message
 * goes back to the queue (the caller retries it), the sender pauses for
 * res->retry_after (capped by the caller at DISPATCH_RETRY_AFTER_MAX),
 * and the operator is told, once per pause.
 */
static void
dispatch_pause_sender(struct dispatch *d, struct route *r,
    const struct send_result *res, int64_t now)
{
	rl_throttle(&r->bucket, now, res->retry_after * 1000);
	log_warnx("sender_paused sender=%s provider=%s code=%d "
		  "resume_in_s=%u reason=\"%s\" action=\"check the sender's "
		  "credentials and account\"",
	    r->name, r->ad->ops->name, res->code, res->retry_after, res->text);
	metrics_count_message(d->metrics, r->channel, r->ad->ops->name, r->name,
	    METRICS_OUT_TRANSIENT);
}

/*
 * The provider refused msg because its recipient opted out at the carrier
 * (Twilio 21610, Telnyx 40300): record the opt-out, with a consent event
 * naming the message, so nothing else is sent to that number.
 */
static void
dispatch_record_optout(struct dispatch *d, const struct out_msg *msg,
    int64_t now)
{
	struct dispatch_email *e = xcalloc(1, sizeof(*e));

	e->d = d;
	e->id = msg->id;
	e->code = (int)msg->channel;
	log_mask_addr(msg->to, e->to, sizeof(e->to));
	qa_member_optout(d->qa,
	    &(struct qa_optout){.ch = msg->channel,
		.address = msg->to,
		.source = CONSENT_PROVIDER,
		.message_id = msg->id,
		.now = now},
	    dispatch_on_optout, e);
}

/* The carrier opt-out answered (e->to is masked, e->code the channel). */
static void
dispatch_on_optout(void *arg, const struct qa_answer *a)
{
	struct dispatch_email *e = arg;

	if (a->error != NULL)
		log_warnx("optout_record_failed msg=%lld to=%s error=\"%s\"",
		    (long long)e->id, e->to, a->error);
	else
		log_info("member_opted_out channel=%s to=%s source=provider "
			 "msg=%lld",
		    channel_to_text((enum channel)e->code), e->to,
		    (long long)e->id);
	free(e);
}

/*
 * Puts the job's message back to queued after a transient failure (res
 * may be NULL for a local hold-back), with backoff; expires it instead if
 * the next attempt would come after its expiry.
 */
static void
dispatch_retry(struct dispatch_job *job, const struct send_result *res,
    int64_t now)
{
	struct dispatch *d = job->d;
	struct out_msg *msg = job->msg;
	struct qa_result qr = {.id = msg->id, .now = now};
	uint32_t rnd32 = 0;
	int64_t delay, next;

	(void)RAND_bytes((unsigned char *)&rnd32, sizeof(rnd32));
	delay = queue_backoff_ms((unsigned)msg->attempts + 1,
	    d->cfg->retry_base_ms, d->cfg->retry_max_ms,
	    res != NULL ? (int64_t)res->retry_after * 1000 : 0,
	    rnd32 / 4294967296.0);
	next = now + delay;
	qr.code = res != NULL ? res->code : 0;
	qr.text = res != NULL && res->text[0] != '\0' ? res->text
						      : "held back, will retry";
	if (msg->expires_at != 0 && next >= msg->expires_at) {
		qr.to = MSG_ST_EXPIRED;
		qa_mark(d->qa, &qr, dispatch_on_marked, NULL);
		log_info("msg_expired msg=%lld attempts=%d error=\"%s\"",
		    (long long)msg->id, msg->attempts + 1, qr.text);
		metrics_count_message(d->metrics, msg->channel,
		    job->route->ad->ops->name, job->route->name,
		    METRICS_OUT_EXPIRED);
		return;
	}
	qr.to = MSG_ST_QUEUED;
	qr.next_attempt_at = next;
	qa_mark(d->qa, &qr, dispatch_on_marked, NULL);
	log_info("msg_retry msg=%lld channel=%s sender=%s attempt=%d code=%d "
		 "retry_in_ms=%lld uncertain=%d error=\"%s\"",
	    (long long)msg->id, channel_to_text(msg->channel), job->route->name,
	    msg->attempts + 1, qr.code, (long long)delay,
	    res != NULL && res->uncertain, qr.text);
}

/* Forgets a finished job and frees its message. */
static void
dispatch_settle(struct dispatch_job *job)
{
	struct dispatch *d = job->d;

	TAILQ_REMOVE(&d->jobs, job, entry);
	job->route->in_flight--;
	out_msg_free(job->msg);
	free(job);
	if (d->stopping)
		dispatch_check_stopped(d);
}

void
dispatch_shutdown(struct dispatch *d, unsigned timeout_ms,
    dispatch_stopped_fn *cb, void *arg)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	size_t i;

	d->stopping = true;
	d->stopped_cb = cb;
	d->stopped_arg = arg;
	if (d->tick_ev != NULL)
		evtimer_del(d->tick_ev);
	/* No more claims: another node may take the routes at once. */
	if (d->qa != NULL)
		qa_routes_release(d->qa);
	for (i = 0; i < d->nroutes; i++)
		adapter_drain(d->routes[i].ad);
	evtimer_add(d->deadline_ev, &tv);
	dispatch_check_stopped(d);
}

/*
 * Once nothing is in flight and every result and release has answered
 * (PostgreSQL: before the store closes), reports the stop (from the loop).
 */
static void
dispatch_check_stopped(struct dispatch *d)
{
	if (!d->stopping || !TAILQ_EMPTY(&d->jobs) || d->stopped_cb == NULL ||
	    (d->qa != NULL && qa_busy(d->qa)))
		return;
	evtimer_del(d->deadline_ev);
	if (event_base_once(d->base, -1, EV_TIMEOUT, dispatch_on_stopped, d,
		NULL) == -1)
		fatalx("dispatch_check_stopped: event_base_once failed");
}

/* The last pending queue operation answered. */
static void
dispatch_on_idle(void *arg)
{
	dispatch_check_stopped(arg);
}

static void
dispatch_on_stopped(evutil_socket_t fd, short what, void *arg)
{
	struct dispatch *d = arg;
	dispatch_stopped_fn *cb = d->stopped_cb;

	(void)fd;
	(void)what;
	if (cb == NULL)
		return;
	d->stopped_cb = NULL;
	cb(d->stopped_arg);
}

/*
 * The shutdown deadline passed: messages still at an adapter go back to
 * queued (they will be tried again after restart); their late answers,
 * if any arrive, are ignored.
 */
static void
dispatch_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct dispatch *d = arg;
	struct dispatch_job *job, *tmp;
	int64_t now = msg_now_ms();
	unsigned n = 0;

	(void)fd;
	(void)what;
	for (job = TAILQ_FIRST(&d->jobs); job != NULL; job = tmp) {
		tmp = TAILQ_NEXT(job, entry);
		if (!job->at_adapter)
			continue; /* its claim commit will release it */
		dispatch_release(job, now);
		TAILQ_REMOVE(&d->jobs, job, entry);
		job->route->in_flight--;
		job->abandoned = true;
		TAILQ_INSERT_TAIL(&d->abandoned, job, entry);
		n++;
	}
	log_info("shutdown_deadline released=%u", n);
	dispatch_check_stopped(d);
}

void
dispatch_free(struct dispatch *d)
{
	struct dispatch_job *job;
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->nroutes; i++) {
		adapter_free(d->routes[i].ad);
		free(d->routes[i].name);
	}
	while ((job = TAILQ_FIRST(&d->abandoned)) != NULL) {
		TAILQ_REMOVE(&d->abandoned, job, entry);
		out_msg_free(job->msg);
		free(job);
	}
	while ((job = TAILQ_FIRST(&d->jobs)) != NULL) {
		TAILQ_REMOVE(&d->jobs, job, entry);
		out_msg_free(job->msg);
		free(job);
	}
	if (d->tick_ev != NULL)
		event_free(d->tick_ev);
	if (d->deadline_ev != NULL)
		event_free(d->deadline_ev);
	if (d->settle_ev != NULL)
		event_free(d->settle_ev);
	free(d->acc);
	free(d->routes);
	qa_free(d->qa);
	free(d);
}
