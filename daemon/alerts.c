/*
 * alerts.c - the alert engine: scheduling, lazy fan-out, quiet hours and
 * guard rails (alerts.h; the HTTP side is alerts_api.c).
 *
 * One timer drives every live alert. Each turn, per alert:
 *  - scheduled, and its time has come: it starts sending;
 *  - sending: while its due backlog (messages in flight, or queued and due)
 *    is under [alerts] backlog, the next members after its cursor are
 *    walked (store_alert_walk(), a bounded id range per call), their
 *    messages rendered and queued with the alert's id, and the cursor
 *    saved, all in the same group transaction; once the walk is done and
 *    nothing of the alert is left unfinished, it is done;
 *  - every few seconds its guard rails are checked.
 * The backlog bound is what keeps memory and the queue small however
 * large the audience: a million members are never a million rows at once,
 * only the messages quiet hours hold for later pile up (they are rows,
 * not memory, and they expire with the alert's validity).
 *
 * Priorities: alert messages are queued at MSG_PRIO_ALERT, below keyword
 * replies and staff replies, so the dispatcher sends those first whatever
 * an alert's backlog. Two alerts on one sender interleave by creation
 * time, so both progress.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "alerts-internal.h"
#include "api.h"
#include "compat.h"
#include "config.h"
#include "dispatch.h"
#include "events.h"
#include "log.h"
#include "message.h"
#include "queue.h"
#include "quiet.h"
#include "smstext.h"
#include "store.h"
#include "store_alerts_pg.h"
#include "xmalloc.h"

/* At most one progress event per alert per this many ms. */
/* Counts that took this many ms to read are cached (alerts_counts()). */
#define ALERTS_COUNTS_DEAR 10
/* Member ids an audience count looks at per turn. */
#define ALERTS_COUNT_SCAN 20000
/* Guard rails: how often is ALERTS_GUARD_EVERY (alerts-internal.h). */
/* The smallest due backlog an alert keeps (alerts_backlog_bound()). */
#define ALERTS_BACKLOG_MIN 10
/* Deliveries of a later guard-rail window. */
#define ALERTS_GUARD_WINDOW 1000

static void alerts_tick(evutil_socket_t, short, void *);
static void alerts_arm(struct alerts *, unsigned);
static void alerts_refresh(struct alerts *);
static void alerts_step(struct alerts *, struct alert_run *, int64_t);

/* Cheap figures are read fresh every time; dear ones (a large alert) serve
 * for 50 times what they cost to read. */
static int64_t
alerts_cache_ttl(int64_t took_ms)
{
	return took_ms >= ALERTS_COUNTS_DEAR ? took_ms * 50 : 0;
}

static void alerts_announce(struct alerts *, int64_t, enum alert_status,
    int64_t);

struct alerts *
alerts_new(struct http_server *srv, const struct alerts_deps *deps)
{
	struct alerts *a = xcalloc(1, sizeof(*a));

	a->deps = *deps;
	TAILQ_INIT(&a->runs);
	a->timer = evtimer_new(deps->base, alerts_tick, a);
	if (a->timer == NULL)
		fatalx("alerts_new: evtimer_new failed");
	if (store_backend(deps->st) == STORE_POSTGRESQL)
		alerts_pg_new(a, srv);
	else
		alerts_api_routes(a, srv);
	return a;
}

void
alerts_start(struct alerts *a)
{
	char why[256];

	/* Info, not a warning: every Debian 12 host has it, and nothing in
	 * outreachd's configuration can change it. */
	if (quiet_tzdata_stale(why, sizeof(why)))
		log_info("quiet_hours_tzdata_stale detail=\"%s\"", why);
	a->started = true;
	if (a->pg != NULL) {
		alerts_pg_start(a);
		return;
	}
	alerts_refresh(a);
	alerts_arm(a, 0);
}

void
alerts_stop(struct alerts *a)
{
	a->stopped = true;
	evtimer_del(a->timer);
	if (a->pg != NULL)
		alerts_pg_stop(a);
}

void
alerts_free(struct alerts *a)
{
	struct alert_run *r;

	if (a == NULL)
		return;
	alerts_pg_free(a);
	while ((r = TAILQ_FIRST(&a->runs)) != NULL) {
		TAILQ_REMOVE(&a->runs, r, entry);
		alerts_run_free(r);
	}
	if (a->timer != NULL)
		event_free(a->timer);
	free(a);
}

static void
alerts_arm(struct alerts *a, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (!a->started || a->stopped)
		return;
	evtimer_add(a->timer, &tv);
}

void
alerts_run_free(struct alert_run *r)
{
	json_decref(r->counts);
	alerts_tpls_free(&r->tpls);
	store_alert_row_free(&r->row);
	free(r);
}

struct alert_run *
alerts_run_find(struct alerts *a, int64_t id)
{
	struct alert_run *r;

	TAILQ_FOREACH(r, &a->runs, entry)
		if (r->row.id == id)
			return r;
	return NULL;
}

/*
 * (Re)loads alert 'id' into its run: a live or paused alert gets one with
 * compiled templates; any other status drops it.
 */
static void
alerts_load(struct alerts *a, int64_t id)
{
	struct alert_run *r = alerts_run_find(a, id);
	struct alert_problem p;
	struct alert_row row;
	char err[256];
	bool found;

	if (store_alert_load(a->deps.st, id, &row, &found, err, sizeof(err)) ==
	    -1) {
		log_warnx("alert_load_failed alert=%lld error=\"%s\"",
		    (long long)id, err);
		return;
	}
	if (!found ||
	    (row.status != ALERT_SCHEDULED && row.status != ALERT_SENDING &&
		row.status != ALERT_PAUSED)) {
		if (r != NULL) {
			TAILQ_REMOVE(&a->runs, r, entry);
			alerts_run_free(r);
		}
		store_alert_row_free(&row);
		return;
	}
	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		TAILQ_INSERT_TAIL(&a->runs, r, entry);
	} else {
		alerts_tpls_free(&r->tpls);
		store_alert_row_free(&r->row);
	}
	r->row = row;
	r->seen = true;
	r->counts_at = 0; /* the counts of a changed alert are read again */
	r->have_last = false;
	if (alerts_compile(&ALERT_TEXTS_OF(row), &r->tpls, &p) == -1) {
		/* Checked when it was made: a template that no longer
		 * compiles (an older release's rules) stops the alert. */
		log_warnx("alert_template_invalid alert=%lld field=%s "
			  "error=\"%s\"",
		    (long long)id, p.field, p.err.message);
	}
}

static void
alerts_seen(void *arg, int64_t id)
{
	alerts_load(arg, id);
}

/* Syncs the runs with the store's scheduled and sending alerts. */
static void
alerts_refresh(struct alerts *a)
{
	struct alert_run *r, *next;
	char err[256];

	TAILQ_FOREACH(r, &a->runs, entry)
		r->seen = r->row.status == ALERT_PAUSED;
	if (store_alert_live(a->deps.st, alerts_seen, a, err, sizeof(err)) ==
	    -1) {
		log_warnx("alerts_refresh_failed error=\"%s\"", err);
		return;
	}
	for (r = TAILQ_FIRST(&a->runs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (!r->seen) {
			TAILQ_REMOVE(&a->runs, r, entry);
			alerts_run_free(r);
		}
	}
}

void
alerts_changed(struct alerts *a, int64_t id)
{
	struct alert_run *r;
	struct alert_row row;
	char err[256];
	bool found = false;

	alerts_load(a, id);
	alerts_arm(a, 0);
	if (a->deps.events == NULL)
		return;
	if ((r = alerts_run_find(a, id)) != NULL)
		alerts_announce(a, id, r->row.status, msg_now_ms());
	else if (store_alert_load(a->deps.st, id, &row, &found, err,
		     sizeof(err)) == 0) {
		if (found)
			alerts_announce(a, id, row.status, msg_now_ms());
		store_alert_row_free(&row);
	}
}

/*
 * Publishes an "alert" event {id, status, counters} (the counts of
 * alerts_counts(), the API's "counts"): on every status change, and at
 * most every ALERTS_ANNOUNCE_MS while it sends (alerts_tick()).
 */
static void
alerts_announce(struct alerts *a, int64_t id, enum alert_status status,
    int64_t now)
{
	struct alert_run *r = alerts_run_find(a, id);
	struct alert_guard g;
	json_t *counts;
	char err[256];

	if (a->deps.events == NULL)
		return;
	if ((counts = alerts_counts(a, id, &g, err, sizeof(err))) == NULL) {
		log_warnx("alert_counts_failed alert=%lld error=\"%s\"",
		    (long long)id, err);
		counts = json_object();
	}
	if (r != NULL)
		r->announced_at = now;
	events_publish(a->deps.events, "alert",
	    json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id, "status",
		alert_status_name(status), "counters", counts));
}

static void
alerts_tick(evutil_socket_t fd, short what, void *arg)
{
	struct alerts *a = arg;
	struct alert_run *r, *next;
	int64_t now = msg_now_ms();
	bool live = false;

	(void)fd;
	(void)what;
	if (a->stopped)
		return;
	a->hurry = false;
	for (r = TAILQ_FIRST(&a->runs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		alerts_step(a, r, now);
	}
	TAILQ_FOREACH(r, &a->runs, entry)
		if (r->row.status == ALERT_SENDING &&
		    now - r->announced_at >= ALERTS_ANNOUNCE_MS)
			alerts_announce(a, r->row.id, r->row.status, now);
	TAILQ_FOREACH(r, &a->runs, entry)
		if (r->row.status == ALERT_SCHEDULED ||
		    r->row.status == ALERT_SENDING)
			live = true;
	if (live)
		alerts_arm(a, a->hurry ? 0 : ALERTS_TICK_MS);
}

/* Moves r's alert to 'to' (from its current status) and logs it. */
static bool
alerts_move(struct alerts *a, struct alert_run *r, enum alert_status to,
    const char *reason, int64_t now)
{
	const struct alert_transition t = {1u << r->row.status, to, reason,
	    now};
	char err[256];
	int64_t id;
	int rc;

	if ((rc = store_alert_transition(a->deps.st, r->row.id, &t, err,
		 sizeof(err))) == -1) {
		log_warnx(
		    "alert_transition_failed alert=%lld to=%s error=\"%s\"",
		    (long long)r->row.id, alert_status_name(to), err);
		return false;
	}
	if (rc == 0)
		return false;
	log_info("alert_%s alert=%lld%s%s%s", alert_status_name(to),
	    (long long)r->row.id, reason ? " reason=\"" : "",
	    reason ? reason : "", reason ? "\"" : "");
	if (to == ALERT_SENDING && r->row.urgent)
		log_info("alert_urgent alert=%lld quiet_hours=overridden",
		    (long long)r->row.id);
	id = r->row.id;
	alerts_load(a, id); /* may free r */
	alerts_announce(a, id, to, now);
	return true;
}

/* ---- Guard rails -------------------------------------------------------- */

/* One guard rail: n of m over pct percent trips it, when 'armed'. */
struct alerts_rail {
	const char *what; /* "opt-out" */
	const char *span; /* " reached" */
	int64_t n;
	int64_t m;
	double pct;
	const char *key; /* its [alerts] key */
	bool armed;	 /* enough messages for the rate to mean something */
};

/* "WHAT rate R% (N of MSPAN) is over [alerts] KEY P%" into why when the
 * armed rail r is tripped. */
static bool
alerts_over(char *why, size_t len, const struct alerts_rail *r)
{
	if (!r->armed || r->m <= 0 ||
	    100.0 * (double)r->n <= r->pct * (double)r->m)
		return false;
	snprintf(why, len,
	    "%s rate %.1f%% (%lld of %lld%s) is over [alerts] %s %.1f%%",
	    r->what, 100.0 * (double)r->n / (double)r->m, (long long)r->n,
	    (long long)r->m, r->span, r->key, r->pct);
	return true;
}

/*
 * Pauses r's alert when more of those it reached opted out, or more of its
 * messages failed permanently, than [alerts] allows: over everything it
 * sent once guard_min messages went out (its first deliveries), and over
 * each later window of at least ALERTS_GUARD_WINDOW deliveries, so a late
 * surge is not diluted by a good start. The query reads every message of
 * the alert, so it runs at most every ALERTS_GUARD_EVERY ms and never
 * takes more than about 2% of the loop (the interval grows with its cost).
 */
bool
alerts_guard_check(struct alerts *a, struct alert_run *r,
    const struct alert_guard *gp, int64_t now, int64_t took, char *why,
    size_t whylen)
{
	const struct config *cfg = a->deps.cfg;
	struct alert_guard g = *gp, d;

	r->last = g;
	r->have_last = true;
	r->last_at = now;
	r->last_ttl = alerts_cache_ttl(took);
	r->next_guard_at = now +
	    (took * 50 > ALERTS_GUARD_EVERY ? took * 50 : ALERTS_GUARD_EVERY);
	if (r->rate_at != 0 && now > r->rate_at)
		r->rate = (double)(g.finished - r->rate_n) * 1000.0 /
		    (double)(now - r->rate_at);
	r->rate_at = now;
	r->rate_n = g.finished;
	/* The window since the last one closed. */
	d.reached = g.reached - r->win.reached;
	d.optouts = g.optouts - r->win.optouts;
	d.failed = g.failed - r->win.failed;
	d.finished = g.finished - r->win.finished;
	{
		const struct alerts_rail rails[] = {
		    {"opt-out", " reached", g.optouts, g.reached,
			cfg->alerts_max_optout_pct, "max_optout_rate",
			g.reached >= cfg->alerts_guard_min},
		    {"permanent-failure", " sent", g.failed, g.finished,
			cfg->alerts_max_failure_pct, "max_failure_rate",
			g.finished >= cfg->alerts_guard_min},
		    {"opt-out", " lately", d.optouts, d.reached,
			cfg->alerts_max_optout_pct, "max_optout_rate",
			r->win.finished > 0 &&
			    d.reached >= ALERTS_GUARD_WINDOW},
		    {"permanent-failure", " lately", d.failed, d.finished,
			cfg->alerts_max_failure_pct, "max_failure_rate",
			r->win.finished > 0 &&
			    d.finished >= ALERTS_GUARD_WINDOW},
		};
		size_t i;

		why[0] = '\0';
		for (i = 0; i < sizeof(rails) / sizeof(rails[0]); i++)
			if (alerts_over(why, whylen, &rails[i]))
				break;
	}
	if (d.finished >= ALERTS_GUARD_WINDOW || r->win.finished == 0)
		r->win = g.reached >= ALERTS_GUARD_WINDOW ? g : r->win;
	return why[0] != '\0';
}

/* The guard rails of r's alert on SQLite: read, checked, paused. */
static void
alerts_guard(struct alerts *a, struct alert_run *r, int64_t now)
{
	struct alert_guard g;
	char err[256], why[200];

	if (store_alert_guard(a->deps.st, r->row.id, &g, err, sizeof(err)) ==
	    -1) {
		r->next_guard_at = now + ALERTS_GUARD_EVERY;
		log_warnx("alert_guard_failed alert=%lld error=\"%s\"",
		    (long long)r->row.id, err);
		return;
	}
	if (!alerts_guard_check(a, r, &g, now, msg_now_ms() - now, why,
		sizeof(why)))
		return;
	if (store_alert_hold(a->deps.st, r->row.id, true, now, err,
		sizeof(err)) == -1) {
		log_warnx("alert_hold_failed alert=%lld error=\"%s\"",
		    (long long)r->row.id, err);
		return;
	}
	log_warnx("alert_guard_tripped alert=%lld reason=\"%s\"",
	    (long long)r->row.id, why);
	alerts_move(a, r, ALERT_PAUSED, why, now);
}

/* ---- Fan-out ------------------------------------------------------------ */

/* template_attr_fn: a custom field from the member's attributes. */
static const char *
alerts_attr(void *arg, const char *name)
{
	struct alerts_view_ctx *ctx = arg;
	json_t *v;

	free(ctx->value);
	ctx->value = NULL;
	if (ctx->attrs == NULL && ctx->m->attributes != NULL)
		ctx->attrs = json_loads(ctx->m->attributes, 0, NULL);
	v = json_object_get(ctx->attrs, name);
	if (json_is_string(v))
		ctx->value = xstrdup(json_string_value(v));
	else if (json_is_integer(v))
		ctx->value =
		    xasprintf("%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		ctx->value = xasprintf("%g", json_real_value(v));
	return ctx->value;
}

void
alerts_member_view(const struct alert_member *m, struct alerts_view_ctx *ctx,
    struct template_member_view *v)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->m = m;
	memset(v, 0, sizeof(*v));
	v->first_name = m->first_name;
	v->last_name = m->last_name;
	v->email = m->email;
	v->phone = m->phone;
	v->zip = m->zip;
	v->attr = alerts_attr;
	v->arg = ctx;
}

void
alerts_view_done(struct alerts_view_ctx *ctx)
{
	json_decref(ctx->attrs);
	free(ctx->value);
	memset(ctx, 0, sizeof(*ctx));
}

char *
alerts_render(struct evbuffer *buf, const struct template_compiled *t,
    const struct template_member_view *v, bool sms, char **raw,
    struct template_error *err)
{
	size_t len;
	char *s, *smart;

	if (raw != NULL)
		*raw = NULL;
	evbuffer_drain(buf, evbuffer_get_length(buf));
	if (template_render(t, v, buf, err) == -1)
		return NULL;
	len = evbuffer_get_length(buf);
	s = xmalloc(len + 1);
	evbuffer_remove(buf, s, len);
	s[len] = '\0';
	if (sms && !smstext_is_gsm7(s) && (smart = smstext_smart(s)) != NULL) {
		if (smstext_is_gsm7(smart)) {
			if (raw != NULL)
				*raw = s;
			else
				free(s);
			return smart;
		}
		free(smart);
	}
	return s;
}

/*
 * The cache slot of 'key' (empty if it holds another key). The cache is
 * emptied once a day, as zone rules may change across a year.
 */
static struct alerts_zone_slot *
alerts_zone_slot(struct alerts *a, const char *key, int64_t now)
{
	struct alerts_zone_slot *slot;
	uint32_t h = 2166136261u;
	const char *p;

	if (now / 86400000 != a->zones_day) {
		memset(a->zones, 0, sizeof(a->zones));
		a->zones_day = now / 86400000;
	}
	for (p = key; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	slot = &a->zones[h % ALERTS_ZONE_SLOTS];
	if (slot->used && strcmp(slot->key, key) != 0)
		slot->used = false;
	return slot;
}

int64_t
alerts_sms_not_before(struct alerts *a, const struct alert_member *m,
    int64_t now, struct quiet_zones *zones)
{
	const struct config *cfg = a->deps.cfg;
	struct quiet_window w = {cfg->quiet_start_min, cfg->quiet_end_min};
	struct alerts_zone_slot *slot = NULL;
	struct quiet_zones z;
	char err[160], key[sizeof(slot->key)];

	if (zones == NULL)
		zones = &z;
	/*
	 * A North American number's zones follow from its area code (the
	 * geocoder answers per area code there), so members without a zone
	 * of their own share one lookup per area code and list zone: the
	 * lookup (libphonenumber's parse and geocoder) costs more than the
	 * rest of a member's fan-out.
	 */
	if ((m->time_zone == NULL || m->time_zone[0] == '\0') &&
	    m->phone != NULL && strncmp(m->phone, "+1", 2) == 0 &&
	    strlen(m->phone) == 12 &&
	    snprintf(key, sizeof(key), "%.5s|%s", m->phone,
		m->list_time_zone != NULL ? m->list_time_zone : "") <
		(int)sizeof(key)) {
		slot = alerts_zone_slot(a, key, now);
		if (slot->used) {
			*zones = slot->z;
			return quiet_next_allowed(zones, &w, now);
		}
	}
	if (quiet_zones_for(&(struct quiet_hints){.member_tz = m->time_zone,
				.e164 = m->phone,
				.list_tz = m->list_time_zone,
				.default_tz = cfg->alerts_time_zone},
		now, zones, err, sizeof(err)) == -1)
		return QUIET_NO_WINDOW;
	if (slot != NULL) {
		snprintf(slot->key, sizeof(slot->key), "%s", key);
		slot->z = *zones;
		slot->used = true;
	}
	return quiet_next_allowed(zones, &w, now);
}

/* Queues one message of the alert; a render failure becomes a failed
 * message that says which field was missing. */
/* One rendered message of a member. */
struct alerts_out {
	enum channel ch;
	const char *body; /* NULL when rendering failed */
	const char *subject;
	const char *html;
	const char *render_err; /* why it failed, else NULL */
	int64_t not_before;	/* quiet hours; 0 = now */
};

static int
alerts_queue(struct alerts_fan *f, const struct alert_member *m,
    const struct alerts_out *o, char *err, size_t errlen)
{
	enum channel ch = o->ch;
	const char *body = o->body, *render_err = o->render_err;
	int64_t not_before = o->not_before;

	struct queue_new q = {0};
	struct smstext_info info;
	struct queue_result res = {0};
	struct queue_stored qs;

	q.channel = ch;
	q.to = ch == CHANNEL_SMS ? m->phone : m->email;
	q.priority = MSG_PRIO_ALERT;
	q.member_id = m->id;
	q.alert_id = f->r->row.id;
	q.expires_at = f->expires_at;
	q.not_before = not_before > f->now ? not_before : 0;
	q.body = body != NULL ? body : "";
	q.subject = o->subject;
	q.html = o->html;
	if (ch == CHANNEL_SMS) {
		q.sender = f->sender;
		q.from = f->from;
		if (body != NULL && smstext_analyze(body, &info) == 0) {
			q.encoding = smstext_encoding_to_text(info.encoding);
			q.segments = info.segments;
		}
	}
	if (f->batch != NULL) /* PostgreSQL: written with the cursor */
		sap_batch_add(f->batch, &q, render_err);
	else if (queue_enqueue(f->a->deps.st, &q, f->now, &qs, err, errlen) ==
	    -1)
		return -1;
	if (render_err != NULL && f->batch == NULL) {
		res.text = render_err;
		res.to = MSG_ST_FAILED;
		if (queue_mark(f->a->deps.st, qs.id, &res, f->now, err,
			errlen) == -1)
			return -1;
	}
	if (q.not_before != 0)
		f->deferred++;
	f->made++;
	return 0;
}

/* Walk callback: the member's SMS and email. */
int
alerts_fan_member(void *arg, const struct alert_member *m, char *err,
    size_t errlen)
{
	struct alerts_fan *f = arg;
	struct alert_run *r = f->r;
	struct template_error te;
	struct template_member_view v;
	struct alerts_view_ctx ctx;
	char *body, *subject, *html;
	int64_t nb = 0;
	int rc = 0;

	alerts_member_view(m, &ctx, &v);

	if (m->phone != NULL && r->tpls.sms != NULL && f->sender != NULL) {
		if (!r->row.urgent) {
			nb = alerts_sms_not_before(f->a, m, f->now, NULL);
			if (nb == QUIET_NO_WINDOW) {
				/* No safe hour in two days: held until the
				 * alert expires; never sent at night. */
				if (!r->no_window_warned)
					log_warnx("alert_no_safe_window "
						  "alert=%lld member=%lld",
					    (long long)r->row.id,
					    (long long)m->id);
				r->no_window_warned = true;
				nb = f->expires_at > 0
				    ? f->expires_at
				    : f->now + QUIET_HORIZON_MS;
			}
		}
		body = alerts_render(f->buf, r->tpls.sms, &v, true, NULL, &te);
		{
			const struct alerts_out o = {CHANNEL_SMS, body, NULL,
			    NULL, body == NULL ? te.message : NULL, nb};

			rc = alerts_queue(f, m, &o, err, errlen);
		}
		if (body == NULL)
			r->failed_renders++;
		free(body);
		if (rc == -1) {
			alerts_view_done(&ctx);
			return -1;
		}
	}
	if (m->email != NULL && r->tpls.subject != NULL) {
		subject = alerts_render(f->buf, r->tpls.subject, &v, false,
		    NULL, &te);
		body = subject == NULL
		    ? NULL
		    : alerts_render(f->buf, r->tpls.text, &v, false, NULL, &te);
		html = body == NULL || r->tpls.html == NULL
		    ? NULL
		    : alerts_render(f->buf, r->tpls.html, &v, false, NULL, &te);
		if (body != NULL && r->tpls.html != NULL && html == NULL) {
			free(body);
			body = NULL;
		}
		{
			const struct alerts_out o = {CHANNEL_EMAIL, body,
			    subject != NULL ? subject : "", html,
			    body == NULL ? te.message : NULL, 0};

			rc = alerts_queue(f, m, &o, err, errlen);
		}
		if (body == NULL)
			r->failed_renders++;
		free(subject);
		free(body);
		free(html);
	}
	alerts_view_done(&ctx);
	return rc;
}

/* Makes up to 'room' members' messages; how many members, or -1. */
static int64_t
alerts_fan_out(struct alerts *a, struct alert_run *r, int64_t now, int64_t room)
{
	struct alerts_fan f = {.a = a, .r = r, .now = now};
	struct alert_walk w = {.audience = r->row.audience,
	    .sms = r->row.sms && r->tpls.sms != NULL,
	    .email = r->row.email && r->tpls.subject != NULL,
	    .after = r->row.cursor,
	    .max_id = r->row.audience_max_id,
	    .limit = (size_t)room,
	    .scan = ALERTS_SCAN};
	const struct alert_visitor v = {alerts_fan_member, &f};
	struct alert_cursor cur = {0, true};
	char err[256], *sender;
	ssize_t n;

	sender = alerts_sender(a, r->row.sender, r->row.audience);
	f.sender = sender;
	f.from = sender != NULL ? dispatch_sender_from(a->deps.dispatch, sender)
				: NULL;
	f.expires_at = r->row.started_at + r->row.validity_s * 1000;
	if (w.sms && f.sender == NULL)
		w.sms = false;
	if (w.max_id == 0) {
		/* Nobody was a member when it started. */
		free(sender);
		r->row.fanout_done = true;
		return store_alert_set_cursor(a->deps.st, r->row.id, &cur, now,
		    err, sizeof(err));
	}
	f.buf = evbuffer_new();
	n = store_alert_walk(a->deps.st, &w, &v, &cur, err, sizeof(err));
	evbuffer_free(f.buf);
	free(sender);
	if (n == -1 ||
	    store_alert_set_cursor(a->deps.st, r->row.id, &cur, now, err,
		sizeof(err)) == -1) {
		/* Messages and cursor go together or not at all: a message
		 * kept without its cursor would be made again next turn. */
		store_abort_group(a->deps.st);
		log_warnx("alert_fanout_failed alert=%lld error=\"%s\"",
		    (long long)r->row.id, err);
		return -1;
	}
	r->row.cursor = cur.next;
	r->row.fanout_done = cur.end;
	if (f.made > 0)
		dispatch_kick(a->deps.dispatch);
	if (cur.end)
		log_info("alert_fanout_done alert=%lld", (long long)r->row.id);
	return n;
}

/*
 * The due backlog an alert may hold: [alerts] backlog, or about a
 * second's worth of its SMS sender's rate when that is less. Every alert
 * refills its backlog each turn and the dispatcher takes the oldest due
 * message first, so alerts sharing a paced sender take turns second by
 * second instead of one waiting for the other's whole backlog.
 */
int64_t
alerts_backlog_bound(struct alerts *a, const struct alert_run *r)
{
	const struct config *cfg = a->deps.cfg;
	const struct config_sender *snd;
	int64_t bound = cfg->alerts_backlog, per_s;

	if (r->row.sms && r->row.sender != NULL &&
	    (snd = config_sender_lookup(cfg, r->row.sender)) != NULL &&
	    snd->rate > 0) {
		per_s = (int64_t)(snd->rate + 0.999);
		if (per_s < ALERTS_BACKLOG_MIN)
			per_s = ALERTS_BACKLOG_MIN;
		if (per_s < bound)
			bound = per_s;
	}
	return bound;
}

/*
 * Counts whom a sending alert reaches, a range of member ids per turn,
 * so that a million-member audience never holds the loop; once done the
 * counts are stored (audience_size in the API, the total of a progress
 * bar). Until then they read null.
 */
static void
alerts_count(struct alerts *a, struct alert_run *r, int64_t now)
{
	struct alert_walk w = {.audience = r->row.audience,
	    .sms = r->row.sms && r->tpls.sms != NULL,
	    .email = r->row.email && r->tpls.subject != NULL,
	    .after = r->count_after,
	    .max_id = r->row.audience_max_id,
	    .scan = ALERTS_COUNT_SCAN};
	struct alert_reach reach;
	char err[256];

	(void)now;
	if (w.max_id > w.after &&
	    store_alert_reach(a->deps.st, &w, &reach, err, sizeof(err)) == -1) {
		log_warnx("alert_count_failed alert=%lld error=\"%s\"",
		    (long long)r->row.id, err);
		return;
	}
	if (w.max_id > w.after) {
		r->count_sms += reach.sms;
		r->count_email += reach.email;
		r->count_after = w.after + ALERTS_COUNT_SCAN;
	}
	if (r->count_after < w.max_id)
		return;
	if (store_alert_set_audience(a->deps.st, r->row.id, r->count_sms,
		r->count_email, err, sizeof(err)) == -1) {
		log_warnx("alert_count_failed alert=%lld error=\"%s\"",
		    (long long)r->row.id, err);
		return;
	}
	r->row.audience_sms = r->count_sms;
	r->row.audience_email = r->count_email;
}

static void
alerts_step(struct alerts *a, struct alert_run *r, int64_t now)
{
	struct alert_backlog bl;
	char err[256];

	switch (r->row.status) {
	case ALERT_SCHEDULED:
		if (r->row.scheduled_at > now)
			return;
		alerts_move(a, r, ALERT_SENDING, NULL, now);
		return;
	case ALERT_SENDING:
		break;
	default:
		return;
	}
	if (r->tpls.sms == NULL && r->tpls.subject == NULL) {
		alerts_move(a, r, ALERT_PAUSED,
		    "its templates do not compile; update and resume", now);
		return;
	}
	if (now >= r->next_guard_at)
		alerts_guard(a, r, now);
	if (r->row.status != ALERT_SENDING)
		return;
	if (r->row.audience_sms < 0)
		alerts_count(a, r, now);
	/* Once fanned out, only whether any is left: not a count per turn of
	 * a million messages quiet hours hold. */
	bl.limit = r->row.fanout_done ? 1 : alerts_backlog_bound(a, r);
	if (store_alert_backlog(a->deps.st, r->row.id, now, &bl, err,
		sizeof(err)) == -1) {
		log_warnx("alert_backlog_failed alert=%lld error=\"%s\"",
		    (long long)r->row.id, err);
		return;
	}
	if (!r->row.fanout_done) {
		int64_t room = alerts_backlog_bound(a, r) - bl.due;

		if (room > ALERTS_CHUNK_MAX)
			room = ALERTS_CHUNK_MAX;
		/* A full chunk with room left: the next turn comes at once. */
		if (room > 0 && alerts_fan_out(a, r, now, room) == room &&
		    bl.due + room < alerts_backlog_bound(a, r))
			a->hurry = true;
		return;
	}
	if (bl.due == 0 && bl.waiting == 0)
		alerts_move(a, r, ALERT_DONE, NULL, now);
}

/* ---- Shared with the API ------------------------------------------------ */

char *
alerts_sender(struct alerts *a, const char *own, const char *audience)
{
	char err[256], *s = NULL;

	if (own != NULL)
		s = xstrdup(own);
	else if (audience != NULL &&
	    store_alert_list_sender(a->deps.st, audience, &s, err,
		sizeof(err)) == -1)
		log_warnx("alert_sender_lookup_failed error=\"%s\"", err);
	if (s == NULL && dispatch_default_sender(a->deps.dispatch) != NULL)
		s = xstrdup(dispatch_default_sender(a->deps.dispatch));
	if (s != NULL && !dispatch_has_sender(a->deps.dispatch, s)) {
		free(s);
		return NULL;
	}
	return s;
}

static int
alerts_compile_one(const char *field, const char *src, enum template_mode mode,
    struct template_compiled **out, struct alert_problem *p)
{
	static const struct template_fields any = {.attrs_any = true};

	*out = NULL;
	if (src == NULL)
		return 0;
	if (template_compile(src, strlen(src), mode, &any, out, &p->err) ==
	    -1) {
		p->field = field;
		return -1;
	}
	return 0;
}

int
alerts_compile(const struct alert_texts *x, struct alert_tpls *tpls,
    struct alert_problem *p)
{
	bool sms = x->sms, email = x->email;
	const char *sms_body = x->sms_body, *subject = x->email_subject,
		   *text = x->email_text, *html = x->email_html;

	memset(tpls, 0, sizeof(*tpls));
	memset(p, 0, sizeof(*p));
	if ((sms &&
		alerts_compile_one("sms_body", sms_body, TEMPLATE_TEXT,
		    &tpls->sms, p) == -1) ||
	    (email &&
		(alerts_compile_one("email_subject", subject, TEMPLATE_TEXT,
		     &tpls->subject, p) == -1 ||
		    alerts_compile_one("email_text", text, TEMPLATE_TEXT,
			&tpls->text, p) == -1 ||
		    alerts_compile_one("email_html", html, TEMPLATE_HTML,
			&tpls->html, p) == -1))) {
		alerts_tpls_free(tpls);
		return -1;
	}
	if (email && tpls->text == NULL) {
		/* Email needs a subject and a text part. */
		template_free(tpls->subject);
		tpls->subject = NULL;
	}
	return 0;
}

void
alerts_tpls_free(struct alert_tpls *tpls)
{
	template_free(tpls->sms);
	template_free(tpls->subject);
	template_free(tpls->text);
	template_free(tpls->html);
	memset(tpls, 0, sizeof(*tpls));
}

json_t *
alerts_counts(struct alerts *a, int64_t id, struct alert_guard *g, char *err,
    size_t errlen)
{
	struct alert_run *r = alerts_run_find(a, id);
	int64_t now = msg_now_ms(), took;
	json_t *c;

	if (r == NULL) {
		if ((c = store_alert_counts(a->deps.st, id, now, err,
			 errlen)) == NULL)
			return NULL;
		if (store_alert_guard(a->deps.st, id, g, err, errlen) == -1) {
			json_decref(c);
			return NULL;
		}
		return c;
	}
	if (r->counts == NULL || now - r->counts_at >= r->counts_ttl) {
		if ((c = store_alert_counts(a->deps.st, id, now, err,
			 errlen)) == NULL)
			return NULL;
		json_decref(r->counts);
		r->counts = c;
		took = msg_now_ms() - now;
		r->counts_at = now;
		r->counts_ttl = alerts_cache_ttl(took);
	}
	/* The guard rails' figures as shown: a paused alert's are no longer
	 * read by alerts_guard(), yet its members keep opting out. */
	if (!r->have_last || now - r->last_at >= r->last_ttl) {
		int64_t t0 = msg_now_ms();

		if (store_alert_guard(a->deps.st, id, &r->last, err, errlen) ==
		    -1)
			return NULL;
		took = msg_now_ms() - t0;
		r->have_last = true;
		r->last_at = now;
		r->last_ttl = alerts_cache_ttl(took);
	}
	*g = r->last;
	return json_deep_copy(r->counts);
}

void
alerts_metrics(struct alerts *a, struct evbuffer *out)
{
	struct alert_run *r;
	const char *ch, *stname;
	json_t *counts, *per, *v;
	char err[256];

	evbuffer_add_printf(out,
	    "# HELP outreachd_alert_messages Messages of a live or paused "
	    "alert, by channel and state.\n"
	    "# TYPE outreachd_alert_messages gauge\n");
	TAILQ_FOREACH(r, &a->runs, entry) {
		struct alert_guard g;

		if ((counts = alerts_counts(a, r->row.id, &g, err,
			 sizeof(err))) == NULL)
			continue;
		json_object_foreach(counts, ch, per) {
			json_object_foreach(per, stname, v)
				evbuffer_add_printf(out,
				    "outreachd_alert_messages{alert=\"%lld\","
				    "channel=\"%s\",status=\"%s\"} %lld\n",
				    (long long)r->row.id, ch, stname,
				    (long long)json_integer_value(v));
		}
		json_decref(counts);
	}
}
