/*
 * alerts_pg.c - action alerts on the PostgreSQL store (issue 13,
 * doc/postgresql.md): the fan-out engine every node runs, and the
 * /api/v1/alerts routes served there. SQLite keeps alerts.c's engine and
 * alerts_api.c's routes; what a member receives is made by the same C
 * code on both (alerts_fan_member(): templates, smart replacement,
 * quiet hours per member time zone), only the store differs
 * (queue/store_alerts_pg.h).
 *
 * DESIGN
 *
 * The engine. Any node may fan out any alert, so the alert's state lives
 * in its row, not in a node's memory. Every node runs one timer (250 ms
 * while anything is live, 1 s otherwise); each tick is one round trip on
 * the node's fan-out connection (sap_fan_tick()): scheduled alerts whose
 * time came start sending, fanned-out alerts whose messages all finished
 * are done (both UPDATEs guarded by the status, so they happen once
 * whichever nodes run them), and the alerts still to fan out are read.
 * Then, one alert after the other, one batch each (sap_batch()): the
 * alert's row locked FOR UPDATE SKIP LOCKED (another node busy with it:
 * skipped this tick), the next members after its cursor walked, rendered
 * here, and their messages written with the new cursor in one statement
 * and one transaction. A node killed mid-batch loses its transaction and
 * its lock; the next node's batch starts at the committed cursor, so
 * every member gets its message once. The due backlog bound of SQLite
 * (alerts_backlog_bound()) holds: an alert makes messages as fast as
 * they leave. Batches run one at a time per node.
 *
 * The API. Create (draft, Idempotency-Key across nodes), get (with the
 * counts per channel and state), list, preview, schedule, send (with its
 * Idempotency-Key), pause, resume and cancel, each as on SQLite: a read
 * outside the group, then the writes in the group, answered once it
 * committed; a draft's update (PATCH) and delete as well. A create (and
 * a PATCH) reads its lists and its follow_up's alert in one round trip
 * (sap_lists()), then what its audience reaches and which members lack
 * a field its templates need in another (sap_audience()), and answers
 * SQLite's 422s in SQLite's order (reach, template, fields) from the
 * same C code (alerts_reaches_nobody(), alerts_missing_report()); the
 * preview reads the reach, the counts and the members it renders in one
 * round trip and is made by alerts_api.c's alerts_preview_*(). A send,
 * schedule or resume checks, as al_check_quick() does, that its
 * templates compile and that its audience reaches somebody now (the
 * first member reached, not a count). A
 * follow_up audience is a filter of the audience's statements
 * (store_alerts_pg.c), as on SQLite. The audience's size is set by the
 * batch that ends the fan-out (the messages made per channel).
 *
 * The guard rails are SQLite's (alerts_guard_check()): every node reads
 * the figures of each sending alert it sees (on its fan-out connection,
 * at most every ALERTS_GUARD_EVERY ms per alert), and a tripped rail
 * pauses the alert through the staff pause's statements (from sending
 * only, so once whichever nodes trip it).
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <event2/http.h>
#include <jansson.h>

#include "alerts-internal.h"
#include "api.h"
#include "compat.h"
#include "config.h"
#include "dispatch.h"
#include "events.h"
#include "http.h"
#include "log.h"
#include "message.h"
#include "store.h"
#include "store_alerts_pg.h"
#include "xmalloc.h"

/* Timer period while nothing is live (another node may start one). */
#define ALERTS_PG_IDLE_MS 1000
#define ALERTS_PG_KEY_MAX 200

struct apg_ann;

struct alerts_pg {
	struct sap_fan *fan;
	struct event *timer;
	struct alert_run_list runs; /* alerts being fanned out */
	bool busy;		    /* a tick or batch in flight */
	bool closing;
	LIST_HEAD(, apg_ann) announcing; /* "alert" events being read */
	bool hurry;   /* a batch made messages: the next tick at once */
	bool live;    /* the last tick found alerts to fan out */
	bool failing; /* the last tick failed (logged once) */
};

static void apg_tick(evutil_socket_t, short, void *);
static void apg_next_batch(struct alerts *a, struct alert_run *after);
static void apg_guards(struct alerts *a, int64_t now);

static const char *
apg_node(const struct alerts *a)
{
	return a->deps.cfg->store_node != NULL ? a->deps.cfg->store_node : "-";
}

static void
apg_arm(struct alerts *a, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (a->pg->closing || a->stopped || !a->started)
		return;
	evtimer_add(a->pg->timer, &tv);
}

/* ---- The engine --------------------------------------------------------- */

static char *
apg_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
apg_row_copy(struct alert_row *d, const struct alert_row *s)
{
	*d = *s;
	d->name = apg_dup(s->name);
	d->pause_reason = apg_dup(s->pause_reason);
	d->audience = apg_dup(s->audience);
	d->sender = apg_dup(s->sender);
	d->sms_body = apg_dup(s->sms_body);
	d->email_subject = apg_dup(s->email_subject);
	d->email_text = apg_dup(s->email_text);
	d->email_html = apg_dup(s->email_html);
}

/* The runs follow the tick's rows: new ones compiled, gone ones freed. */
static void
apg_sync_runs(struct alerts *a, const struct sap_tick *t)
{
	struct alerts_pg *pg = a->pg;
	struct alert_run *r, *next;
	struct alert_problem p;
	size_t i;

	TAILQ_FOREACH(r, &pg->runs, entry)
		r->seen = false;
	for (i = 0; i < t->nrows; i++) {
		TAILQ_FOREACH(r, &pg->runs, entry)
			if (r->row.id == t->rows[i].id)
				break;
		if (r == NULL) {
			r = xcalloc(1, sizeof(*r));
			TAILQ_INSERT_TAIL(&pg->runs, r, entry);
			apg_row_copy(&r->row, &t->rows[i]);
			if (alerts_compile(&ALERT_TEXTS_OF(r->row), &r->tpls,
				&p) == -1)
				log_warnx("alert_template_invalid alert=%lld "
					  "field=%s error=\"%s\"",
				    (long long)r->row.id, p.field,
				    p.err.message);
		} else {
			/* The cursor moves; the rest is fixed once sending. */
			r->row.cursor = t->rows[i].cursor;
			r->row.fanout_done = t->rows[i].fanout_done;
		}
		r->seen = true;
	}
	for (r = TAILQ_FIRST(&pg->runs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (!r->seen) {
			TAILQ_REMOVE(&pg->runs, r, entry);
			alerts_run_free(r);
		}
	}
}

/* ---- "alert" events ------------------------------------------------------ */

/*
 * The staff pages of every node hear of an alert's status changes and,
 * about once a second while it fans out, of its progress, as from
 * alerts_announce() on SQLite: {"id", "status", "counters"}, counters
 * being the alert's "counts" of the API. The alert is read back once its
 * change committed (sap_get(), outside any group), so the event follows
 * the change in its own group instead of riding in the change's: a node
 * dying between the two loses the event, never the change, and the next
 * one carries the figures.
 */
struct apg_ann {
	LIST_ENTRY(apg_ann) entry;
	struct alerts *a; /* NULL once the module is freed */
};

static void
apg_announced(void *arg, int rc, json_t *o, const char *error)
{
	struct apg_ann *ann = arg;
	struct alerts *a = ann->a;
	json_t *status, *counts;

	if (a != NULL)
		LIST_REMOVE(ann, entry);
	free(ann);
	if (a == NULL) {
		json_decref(o);
		return;
	}
	if (rc == -1 || o == NULL) {
		if (rc == -1)
			log_debug("alert_announce_failed error=\"%s\"", error);
		json_decref(o);
		return;
	}
	status = json_object_get(o, "status");
	counts = json_object_get(o, "counts");
	events_publish(a->deps.events, "alert",
	    json_pack("{s:O, s:O, s:O}", "id", json_object_get(o, "id"),
		"status", status != NULL ? status : json_null(), "counters",
		counts != NULL ? counts : json_object()));
	json_decref(o);
}

static void
apg_announce(struct alerts *a, int64_t id)
{
	struct apg_ann *ann;
	char err[256];

	if (a->deps.events == NULL || a->pg->closing)
		return;
	ann = xcalloc(1, sizeof(*ann));
	ann->a = a;
	if (sap_get(a->deps.st, id, msg_now_ms(), apg_announced, ann, err,
		sizeof(err)) == -1) {
		log_debug("alert_announce_failed alert=%lld error=\"%s\"",
		    (long long)id, err);
		free(ann);
		return;
	}
	LIST_INSERT_HEAD(&a->pg->announcing, ann, entry);
}

static void
apg_tick_done(void *arg, int rc, const struct sap_tick *t, const char *error)
{
	struct alerts *a = arg;
	struct alerts_pg *pg = a->pg;
	size_t i;

	if (pg->closing)
		return;
	if (rc == -1) {
		if (!pg->failing)
			log_warnx("alerts_tick_failed node=%s error=\"%s\"",
			    apg_node(a), error);
		pg->failing = true;
		pg->busy = false;
		apg_arm(a, ALERTS_PG_IDLE_MS);
		return;
	}
	pg->failing = false;
	for (i = 0; i < t->started; i++) {
		log_info("alert_sending alert=%lld node=%s",
		    (long long)t->started_ids[i], apg_node(a));
		apg_announce(a, t->started_ids[i]);
	}
	for (i = 0; i < t->done; i++) {
		log_info("alert_done alert=%lld node=%s",
		    (long long)t->done_ids[i], apg_node(a));
		apg_announce(a, t->done_ids[i]);
	}
	apg_sync_runs(a, t);
	pg->live = t->nrows > 0;
	pg->hurry = false;
	apg_next_batch(a, NULL);
}

static void
apg_tick(evutil_socket_t fd, short what, void *arg)
{
	struct alerts *a = arg;
	struct alerts_pg *pg = a->pg;
	char err[256];

	(void)fd;
	(void)what;
	if (pg->busy || pg->closing || a->stopped)
		return;
	if (sap_fan_tick(pg->fan, msg_now_ms(), apg_tick_done, a, err,
		sizeof(err)) == -1) {
		log_warnx("alerts_tick_failed node=%s error=\"%s\"",
		    apg_node(a), err);
		apg_arm(a, ALERTS_PG_IDLE_MS);
		return;
	}
	pg->busy = true;
}

/* A batch in flight: its fan-out state and the run it belongs to. */
struct apg_batch {
	struct alerts *a;
	struct alerts_fan f;
	char *sender;
	int64_t id;
};

static void
apg_batch_done(void *arg, const struct sap_batch_done *d)
{
	struct apg_batch *b = arg;
	struct alerts *a = b->a;
	struct alert_run *r;

	evbuffer_free(b->f.buf);
	free(b->sender);
	if (a->pg->closing) {
		free(b);
		return;
	}
	TAILQ_FOREACH(r, &a->pg->runs, entry)
		if (r->row.id == b->id)
			break;
	if (d->rc == -1)
		log_warnx("alert_fanout_failed alert=%lld node=%s error=\"%s\"",
		    (long long)b->id, apg_node(a), d->error);
	else if (d->rc == 1) {
		if (r != NULL) {
			r->row.cursor = d->cursor.next;
			r->row.fanout_done = d->cursor.end;
			if (d->made > 0 &&
			    msg_now_ms() - r->announced_at >=
				ALERTS_ANNOUNCE_MS) {
				r->announced_at = msg_now_ms();
				apg_announce(a, b->id);
			}
		}
		if (d->made > 0)
			dispatch_kick(a->deps.dispatch);
		log_info("alert_fanout_batch alert=%lld node=%s members=%lld "
			 "messages=%lld cursor=%lld",
		    (long long)b->id, apg_node(a), (long long)d->members,
		    (long long)d->made, (long long)d->cursor.next);
		if (d->cursor.end)
			log_info("alert_fanout_done alert=%lld node=%s",
			    (long long)b->id, apg_node(a));
		else if (d->members > 0)
			a->pg->hurry = true; /* more may be due: at once */
	}
	free(b);
	apg_next_batch(a, r);
}

/* ---- Guard rails --------------------------------------------------------- */

/* A guard read in flight, then the pause it asked for. */
struct apg_guard {
	struct alerts *a;
	int64_t id;
	int64_t sent_at;
	char why[200];
};

static void
apg_guard_paused(void *arg, const struct sap_done *d)
{
	struct apg_guard *g = arg;

	if (!d->ok)
		log_warnx("alert_hold_failed alert=%lld node=%s error=\"%s\"",
		    (long long)g->id, apg_node(g->a),
		    d->error != NULL ? d->error : "the group failed");
	else if (d->moved) { /* once, on the node whose pause moved it */
		log_warnx("alert_guard_tripped alert=%lld node=%s "
			  "reason=\"%s\"",
		    (long long)g->id, apg_node(g->a), g->why);
		apg_announce(g->a, g->id);
	}
	free(g);
}

/*
 * The figures of a sending alert: its rails checked as on SQLite
 * (alerts_guard_check()), and a tripped one paused with its messages
 * held. Every node checks the alerts it sees sending; the pause's
 * transition (from sending only) moves the alert once.
 */
static void
apg_guard_read(void *arg, int rc, const struct alert_guard *fig,
    const char *error)
{
	struct apg_guard *g = arg;
	struct alerts *a = g->a;
	struct alert_run *r;
	struct sap_action act = {0};
	int64_t now = msg_now_ms();
	char err[256];

	if (a->pg->closing)
		goto done;
	TAILQ_FOREACH(r, &a->pg->runs, entry)
		if (r->row.id == g->id)
			break;
	if (rc == -1) {
		log_warnx("alert_guard_failed alert=%lld node=%s error=\"%s\"",
		    (long long)g->id, apg_node(a), error);
		if (r != NULL)
			r->next_guard_at = now + ALERTS_GUARD_EVERY;
		goto done;
	}
	if (r == NULL ||
	    !alerts_guard_check(a, r, fig, g->sent_at, now - g->sent_at, g->why,
		sizeof(g->why)))
		goto done;
	act.id = g->id;
	act.t = (struct alert_transition){1u << ALERT_SENDING, ALERT_PAUSED,
	    g->why, now};
	if (sap_action(a->deps.st, &act, apg_guard_paused, g, err,
		sizeof(err)) == 0)
		return;
	log_warnx("alert_hold_failed alert=%lld node=%s error=\"%s\"",
	    (long long)g->id, apg_node(a), err);
done:
	free(g);
}

/* Reads the figures of each sending alert whose check is due. */
static void
apg_guards(struct alerts *a, int64_t now)
{
	struct alert_run *r;
	struct apg_guard *g;
	char err[256];

	TAILQ_FOREACH(r, &a->pg->runs, entry) {
		if (a->stopped || r->next_guard_at > now)
			continue;
		g = xcalloc(1, sizeof(*g));
		g->a = a;
		g->id = r->row.id;
		g->sent_at = now;
		if (sap_fan_guard(a->pg->fan, r->row.id, apg_guard_read, g, err,
			sizeof(err)) == -1) {
			log_warnx("alert_guard_failed alert=%lld node=%s "
				  "error=\"%s\"",
			    (long long)r->row.id, apg_node(a), err);
			free(g);
			r->next_guard_at = now + ALERTS_GUARD_EVERY;
			continue;
		}
		r->next_guard_at = INT64_MAX; /* until it answers */
	}
}

/*
 * Starts the batch of the run after 'after' (NULL: the first) that has
 * templates; none left: the tick is over and the timer is armed.
 */
static void
apg_next_batch(struct alerts *a, struct alert_run *after)
{
	struct alerts_pg *pg = a->pg;
	struct alert_run *r =
	    after != NULL ? TAILQ_NEXT(after, entry) : TAILQ_FIRST(&pg->runs);
	struct apg_batch *b;
	struct sap_batch_req req;
	const struct alert_visitor v = {alerts_fan_member, NULL};
	struct alert_visitor vv;
	char err[256];
	int64_t now = msg_now_ms();

	for (; r != NULL; r = TAILQ_NEXT(r, entry)) {
		if (a->stopped || r->row.fanout_done ||
		    (r->tpls.sms == NULL && r->tpls.subject == NULL))
			continue;
		b = xcalloc(1, sizeof(*b));
		b->a = a;
		b->id = r->row.id;
		b->f.a = a;
		b->f.r = r;
		b->f.now = now;
		b->sender = r->row.sender != NULL &&
			dispatch_has_sender(a->deps.dispatch, r->row.sender)
		    ? xstrdup(r->row.sender)
		    : NULL;
		b->f.sender = b->sender;
		b->f.from = b->sender != NULL
		    ? dispatch_sender_from(a->deps.dispatch, b->sender)
		    : NULL;
		b->f.expires_at = r->row.started_at + r->row.validity_s * 1000;
		b->f.buf = evbuffer_new();
		memset(&req, 0, sizeof(req));
		req.row = &r->row;
		req.now = now;
		req.sms =
		    r->row.sms && r->tpls.sms != NULL && b->sender != NULL;
		req.email = r->row.email && r->tpls.subject != NULL;
		req.backlog = alerts_backlog_bound(a, r);
		req.chunk = ALERTS_CHUNK_MAX;
		req.scan = ALERTS_SCAN;
		vv = v;
		vv.arg = &b->f;
		if ((b->f.batch = sap_batch(pg->fan, &req, &vv, apg_batch_done,
			 b, err, sizeof(err))) == NULL) {
			log_warnx("alert_fanout_failed alert=%lld node=%s "
				  "error=\"%s\"",
			    (long long)r->row.id, apg_node(a), err);
			evbuffer_free(b->f.buf);
			free(b->sender);
			free(b);
			continue;
		}
		return;
	}
	pg->busy = false;
	apg_guards(a, now);
	apg_arm(a,
	    pg->hurry ? 0 : (pg->live ? ALERTS_TICK_MS : ALERTS_PG_IDLE_MS));
}

/* ---- The API ------------------------------------------------------------ */

static void apg_collection(struct http_req *, void *);
static void apg_item(struct http_req *, void *);
static void apg_action(struct http_req *, void *);

static void
apg_store_error(struct http_req *req, const char *what, const char *err)
{
	log_warnx("alerts_store_failed what=%s error=\"%s\"", what, err);
	http_reply_error(req, 503, "unavailable", "store: %s", err);
}

static int64_t
apg_id(struct http_req *req)
{
	char *end;
	long long id = strtoll(req->params[0], &end, 10);

	return *end == '\0' && id > 0 ? id : 0;
}

/* A request waiting on the store, and what it carries along. */
struct apg_req {
	struct alerts *a;
	struct http_req *req;
	json_t *body;
	struct al_input in;
	int code;      /* the answer's status once the alert is read */
	json_t *extra; /* merged into the answer */
	int64_t id;
	const char *action;
	char *key;
	bool update; /* PATCH: the draft p->id rewritten, not a create */
	/* create and preview: the templates checked against the audience */
	struct alert_row row; /* preview: the alert */
	struct alert_tpls t;
	bool compiled;
	char *problem; /* create: the templates' 422, after the reach's */
	struct alerts_need *needs;
	size_t nneeds;
	struct alerts_preview pv;
	/* an action's writes, once its checks are done */
	struct sap_action act;
	bool urgent;
	int64_t reached; /* send, schedule, resume: members reached now */
};

static struct apg_req *
apg_req_new(struct alerts *a, struct http_req *req)
{
	struct apg_req *p = xcalloc(1, sizeof(*p));

	p->a = a;
	p->req = req;
	return p;
}

static void
apg_req_free(struct apg_req *p)
{
	alerts_input_free(&p->in);
	json_decref(p->body);
	json_decref(p->extra);
	free(p->key);
	alerts_preview_free(&p->pv);
	if (p->compiled)
		alerts_tpls_free(&p->t);
	store_alert_row_free(&p->row);
	free(p->problem);
	free(p->needs);
	free(p);
}

/* The alert read back: answered with p->code (and Location on 201). */
static void
apg_answer(void *arg, int rc, json_t *o, const char *error)
{
	struct apg_req *p = arg;
	char loc[64];

	if (rc == -1)
		apg_store_error(p->req, "get", error);
	else if (o == NULL)
		http_reply_error(p->req, 404, "not_found", "no alert %lld",
		    (long long)p->id);
	else {
		if (p->extra != NULL)
			json_object_update(o, p->extra);
		if (p->code == 201) {
			snprintf(loc, sizeof(loc), "/api/v1/alerts/%lld",
			    (long long)p->id);
			http_add_header(p->req, "Location", loc);
		}
		http_reply_json(p->req, p->code, o);
	}
	apg_req_free(p);
}

/* Reads alert p->id and answers it (p is freed). */
static void
apg_reply_alert(struct apg_req *p)
{
	char err[256];

	if (sap_get(p->a->deps.st, p->id, msg_now_ms(), apg_answer, p, err,
		sizeof(err)) == -1) {
		apg_store_error(p->req, "get", err);
		apg_req_free(p);
	}
}

/* After a write's group: the alert, or 503. */
static void
apg_written(void *arg, const struct sap_done *d)
{
	struct apg_req *p = arg;

	if (!d->ok) {
		http_reply_error(p->req, 503, "unavailable",
		    "the store could not commit%s%s; nothing was saved, retry "
		    "with the same Idempotency-Key",
		    d->error != NULL ? ": " : "",
		    d->error != NULL ? d->error : "");
		apg_req_free(p);
		return;
	}
	if (p->action == NULL) { /* create */
		p->id = d->id;
		p->code = d->dup ? 200 : 201;
		p->extra = json_pack("{s:b}", "duplicate", d->dup);
	} else if (d->key_alert != 0 && d->key_alert != p->id) {
		/* another node's send took the key first */
		http_reply_error(p->req, 422, "invalid_request",
		    "Idempotency-Key: already used to send alert %lld; use a "
		    "new key for this one",
		    (long long)d->key_alert);
		apg_req_free(p);
		return;
	} else if (d->key_alert != 0 && !d->moved) {
		p->extra = json_pack("{s:b}", "duplicate", 1); /* a retry */
	} else
		apg_announce(p->a, p->id); /* schedule, send, pause, ... */
	apg_reply_alert(p);
}

/* A draft's update (p->update) or delete settled. */
static void
apg_drafted(void *arg, const struct sap_done *d)
{
	struct apg_req *p = arg;

	if (!d->ok) {
		http_reply_error(p->req, 503, "unavailable",
		    "the store could not commit%s%s; nothing was saved",
		    d->error != NULL ? ": " : "",
		    d->error != NULL ? d->error : "");
	} else if (!d->moved) {
		http_reply_error(p->req, 409, "conflict",
		    p->update ? "alert %lld is not a draft (or does not "
				"exist): only drafts can be changed"
			      : "alert %lld is not a draft (or does not "
				"exist); cancel it instead",
		    (long long)p->id);
	} else if (p->update) {
		p->code = 200;
		apg_reply_alert(p);
		return;
	} else
		http_reply(p->req, 204, NULL, NULL, 0);
	apg_req_free(p);
}

/* create: the audience read; its checks as on SQLite, then the write. */
static void
apg_create_checked(void *arg, int rc, const struct alert_reach *reach,
    const int64_t *missing, const char *error)
{
	struct apg_req *p = arg;
	struct alerts *a = p->a;
	struct alert_def *d = &p->in.def;
	char err[512];

	if (rc == -1) {
		apg_store_error(p->req, "audience", error);
		goto done;
	}
	/* The order of al_check_templates(): reach, templates, fields. */
	if (alerts_reaches_nobody(d, reach, err, sizeof(err))) {
		http_reply_error(p->req, 422, "invalid_request", "%s", err);
		goto done;
	}
	if (p->problem != NULL) {
		http_reply_error(p->req, 422, "invalid_request", "%s",
		    p->problem);
		goto done;
	}
	if (alerts_missing_report(p->needs, p->nneeds, missing, NULL, err,
		sizeof(err)) != 0) {
		http_reply_error(p->req, 422, "invalid_request", "%s", err);
		goto done;
	}
	if (p->update) {
		if (sap_draft(a->deps.st, p->id, d, msg_now_ms(), apg_drafted,
			p, err, sizeof(err)) == -1) {
			apg_store_error(p->req, "update", err);
			goto done;
		}
		return;
	}
	if (sap_create(a->deps.st, d, msg_now_ms(), apg_written, p, err,
		sizeof(err)) == -1) {
		apg_store_error(p->req, "create", err);
		goto done;
	}
	return;
done:
	apg_req_free(p);
}

/* The count queries of p's compiled templates' needs (free() them). */
static struct sap_missing_q *
apg_missing_q(struct apg_req *p)
{
	struct sap_missing_q *mq;
	size_t i;

	p->nneeds = alerts_needs(&p->t, &p->needs);
	mq = xcalloc(p->nneeds + 1, sizeof(*mq));
	for (i = 0; i < p->nneeds; i++)
		mq[i] = (struct sap_missing_q){p->needs[i].sms, p->needs[i].f};
	return mq;
}

/* create: the lists resolved; the sender, templates, then the audience. */
static void
apg_create_lists(void *arg, int rc, const struct sap_lists_answer *l,
    const char *error)
{
	struct apg_req *p = arg;
	struct alerts *a = p->a;
	struct alert_def *d = &p->in.def;
	json_t *lists = json_object_get(p->in.audience, "lists"), *x;
	const char *own = d->sender;
	struct sap_missing_q *mq = NULL;
	struct alert_problem pr;
	char err[256], *s = NULL;
	size_t i;

	if (rc == -1) {
		apg_store_error(p->req, "lists", error);
		goto done;
	}
	for (i = 0; i < l->n && i < json_array_size(lists); i++) {
		x = json_array_get(lists, i);
		if (l->refs[i].id == 0) {
			if (json_is_string(x))
				http_reply_error(p->req, 422, "invalid_request",
				    "lists[%zu]: no list named '%.64s'", i,
				    json_string_value(x));
			else
				http_reply_error(p->req, 422, "invalid_request",
				    "lists[%zu]: no list %lld", i,
				    (long long)json_integer_value(x));
			goto done;
		}
	}
	if (!l->follow_up) {
		http_reply_error(p->req, 422, "invalid_request",
		    "follow_up.alert: no alert %lld",
		    (long long)json_integer_value(json_object_get(
			json_object_get(p->in.audience, "follow_up"),
			"alert")));
		goto done;
	}
	/* The sender: its own, else the first list's, else the default;
	 * alerts_sender()'s rule, with the list read above. */
	if (d->sms) {
		if (own != NULL)
			s = xstrdup(own);
		else if (l->n > 0 && l->refs[0].sender != NULL)
			s = xstrdup(l->refs[0].sender);
		else if (dispatch_default_sender(a->deps.dispatch) != NULL)
			s = xstrdup(dispatch_default_sender(a->deps.dispatch));
		if (s == NULL || !dispatch_has_sender(a->deps.dispatch, s)) {
			free(s);
			if (own != NULL)
				http_reply_error(p->req, 422, "invalid_request",
				    "sender: no SMS sender named '%s'", own);
			else
				http_reply_error(p->req, 422, "invalid_request",
				    "sender: no SMS sender is configured "
				    "([sender NAME])");
			goto done;
		}
		free(p->in.sender);
		p->in.sender = s;
		d->sender = s;
	}
	/* The audience with the lists' ids. */
	for (i = 0; i < l->n; i++)
		json_array_set_new(lists, i, json_integer(l->refs[i].id));
	free(p->in.audience_text);
	p->in.audience_text = json_dumps(p->in.audience, JSON_COMPACT);
	d->audience = p->in.audience_text;
	/* A template error is answered after the reach, as on SQLite. */
	if (alerts_compile(&ALERT_TEXTS_OF(*d), &p->t, &pr) == -1)
		p->problem = xasprintf("%s: line %u column %u: %s", pr.field,
		    pr.err.line, pr.err.column, pr.err.message);
	else {
		p->compiled = true;
		mq = apg_missing_q(p);
	}
	if (sap_audience(a->deps.st,
		&(struct sap_audience_q){.audience = d->audience,
		    .sms = d->sms,
		    .email = d->email,
		    .missing = mq,
		    .nmissing = mq != NULL ? p->nneeds : 0},
		apg_create_checked, p, err, sizeof(err)) == -1) {
		apg_store_error(p->req, "audience", err);
		goto done;
	}
	free(mq);
	return;
done:
	free(mq);
	apg_req_free(p);
}

static void
apg_create(struct alerts *a, struct http_req *req, int64_t update)
{
	struct apg_req *p = apg_req_new(a, req);
	char err[512];

	p->id = update;
	p->update = update != 0;
	if ((p->body = api_read_object(req)) == NULL) {
		apg_req_free(p);
		return;
	}
	if (alerts_parse_input(a, req, p->body, &p->in, err, sizeof(err)) ==
	    -1) {
		http_reply_error(req, 422, "invalid_request", "%s", err);
		apg_req_free(p);
		return;
	}
	if (sap_lists(a->deps.st, p->in.audience_text, apg_create_lists, p, err,
		sizeof(err)) == -1) {
		apg_store_error(req, "lists", err);
		apg_req_free(p);
	}
}

static void
apg_list_answer(void *arg, int rc, json_t *arr, const char *error)
{
	struct apg_req *p = arg;
	json_t *last;
	size_t n;

	if (rc == -1) {
		apg_store_error(p->req, "list", error);
		apg_req_free(p);
		return;
	}
	n = json_array_size(arr);
	last = json_array_get(arr, n - 1);
	http_reply_json(p->req, 200,
	    json_pack("{s:o, s:o}", "alerts", arr, "next",
		n == (size_t)p->id && last != NULL
		    ? json_integer(
			  json_integer_value(json_object_get(last, "id")))
		    : json_null()));
	apg_req_free(p);
}

static void
apg_list(struct alerts *a, struct http_req *req)
{
	struct alerts_page_q pq;
	struct apg_req *p;
	char err[256];

	if (!alerts_page_parse(req, &pq))
		return;
	p = apg_req_new(a, req);
	p->id = pq.limit; /* the page's size, for "next" */
	if (sap_list(a->deps.st,
		&(struct sap_page){pq.before, (size_t)pq.limit, pq.status},
		apg_list_answer, p, err, sizeof(err)) == -1) {
		apg_store_error(req, "list", err);
		apg_req_free(p);
	}
}

static void
apg_collection(struct http_req *req, void *arg)
{
	struct alerts *a = arg;

	if (!api_authorized(a->deps.api, req))
		return;
	if (req->method == HTTP_GET) {
		apg_list(a, req);
		return;
	}
	if (api_is_stopping(a->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	apg_create(a, req, 0);
}

static void
apg_item(struct http_req *req, void *arg)
{
	struct alerts *a = arg;
	int64_t id = apg_id(req);
	struct apg_req *p;
	char err[256];

	if (!api_authorized(a->deps.api, req))
		return;
	if (id == 0) {
		http_reply_error(req, 404, "not_found", "no alert '%s'",
		    req->params[0]);
		return;
	}
	if (req->method != HTTP_GET && api_is_stopping(a->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	if (req->method == HTTP_PATCH) { /* a draft's whole definition */
		apg_create(a, req, id);
		return;
	}
	if (req->method == HTTP_DELETE) {
		p = apg_req_new(a, req);
		p->id = id;
		if (sap_draft(a->deps.st, id, NULL, msg_now_ms(), apg_drafted,
			p, err, sizeof(err)) == -1) {
			apg_store_error(req, "delete", err);
			apg_req_free(p);
		}
		return;
	}
	p = apg_req_new(a, req);
	p->id = id;
	p->code = 200;
	apg_reply_alert(p);
}

/* preview: the audience read, the answer made as on SQLite. */
static void
apg_preview_read(void *arg, int rc, const struct alert_reach *reach,
    const int64_t *missing, const char *error)
{
	struct apg_req *p = arg;
	char err[512];
	json_t *report;

	if (rc == -1) {
		apg_store_error(p->req, "preview", error);
		goto done;
	}
	report = json_array();
	alerts_missing_report(p->needs, p->nneeds, missing, report, err,
	    sizeof(err));
	http_reply_json(p->req, 200,
	    alerts_preview_json(&p->pv, reach, report));
done:
	apg_req_free(p);
}

/* preview: the alert read; its templates, then its audience. */
static void
apg_preview_loaded(void *arg, int rc, const struct alert_row *row,
    int64_t key_alert, const char *error)
{
	struct apg_req *p = arg;
	struct sap_missing_q *mq;
	struct alert_problem pr;
	char err[256];

	(void)key_alert;
	if (rc == -1) {
		apg_store_error(p->req, "preview", error);
		goto done;
	}
	if (row == NULL) {
		http_reply_error(p->req, 404, "not_found", "no alert %lld",
		    (long long)p->id);
		goto done;
	}
	apg_row_copy(&p->row, row);
	if (alerts_compile(&ALERT_TEXTS_OF(p->row), &p->t, &pr) == -1) {
		http_reply_error(p->req, 422, "invalid_request",
		    "%s: line %u column %u: %s", pr.field, pr.err.line,
		    pr.err.column, pr.err.message);
		goto done;
	}
	p->compiled = true;
	alerts_preview_init(&p->pv, p->a, &p->row, &p->t);
	mq = apg_missing_q(p);
	if (sap_audience(p->a->deps.st,
		&(struct sap_audience_q){.audience = p->row.audience,
		    .sms = p->row.sms,
		    .email = p->row.email,
		    .missing = mq,
		    .nmissing = p->nneeds,
		    .walk = ALERTS_PREVIEW_WALK,
		    .longest = alerts_preview_fields,
		    .nlongest = p->t.sms != NULL ? ALERTS_PREVIEW_FIELDS : 0,
		    .longest_limit = ALERTS_PREVIEW_LONGEST,
		    .v = {alerts_preview_member, &p->pv}},
		apg_preview_read, p, err, sizeof(err)) == -1) {
		free(mq);
		apg_store_error(p->req, "preview", err);
		goto done;
	}
	free(mq);
	return;
done:
	apg_req_free(p);
}

/* An action's writes (p->act), answered once they committed. */
static void
apg_action_write(struct apg_req *p)
{
	struct alerts *a = p->a;
	char err[256];

	if (sap_action(a->deps.st, &p->act, apg_written, p, err, sizeof(err)) ==
	    -1) {
		apg_store_error(p->req, p->action, err);
		apg_req_free(p);
		return;
	}
	log_info("alert_%s_requested alert=%lld node=%s", p->action,
	    (long long)p->id, apg_node(a));
	if (p->act.t.to == ALERT_SENDING && p->urgent)
		log_info("alert_urgent alert=%lld quiet_hours=overridden",
		    (long long)p->id);
	p->code = 200;
	/* The engine looks at once; resumed messages are due again. */
	apg_arm(a, 0);
	if (strcmp(p->action, "resume") == 0)
		dispatch_kick(a->deps.dispatch);
}

static int
apg_reached(void *arg, const struct alert_member *m, char *err, size_t errlen)
{
	struct apg_req *p = arg;

	(void)m;
	(void)err;
	(void)errlen;
	p->reached++;
	return 0;
}

/* send, schedule, resume: whether the audience reaches somebody now. */
static void
apg_action_checked(void *arg, int rc, const struct alert_reach *reach,
    const int64_t *missing, const char *error)
{
	struct apg_req *p = arg;

	(void)reach;
	(void)missing;
	if (rc == -1) {
		apg_store_error(p->req, "audience", error);
		apg_req_free(p);
	} else if (p->reached == 0) {
		http_reply_error(p->req, 422, "invalid_request",
		    "lists: the audience reaches nobody now (opted out, "
		    "unconfirmed, bouncing or unsubscribed since it was made)");
		apg_req_free(p);
	} else
		apg_action_write(p);
}

/* An action: the alert read, its status checked, then its writes. */
static void
apg_action_loaded(void *arg, int rc, const struct alert_row *row,
    int64_t key_alert, const char *error)
{
	struct apg_req *p = arg;
	struct alerts *a = p->a;
	struct http_req *req = p->req;
	const char *action = p->action;
	int64_t now = msg_now_ms();
	struct sap_action act = {0};
	struct alert_problem pr;
	struct alert_tpls t;
	unsigned from;
	enum alert_status to;
	json_t *v;
	char err[256];

	if (rc == -1) {
		apg_store_error(req, action, error);
		goto done;
	}
	if (row == NULL) {
		http_reply_error(req, 404, "not_found", "no alert %lld",
		    (long long)p->id);
		goto done;
	}
	act.id = row->id;
	if (strcmp(action, "send") == 0) {
		from = 1u << ALERT_DRAFT | 1u << ALERT_SCHEDULED;
		to = ALERT_SENDING;
		if (p->key != NULL && key_alert == row->id) {
			/* A retry: the send already happened. */
			p->code = 200;
			p->extra = json_pack("{s:b}", "duplicate", 1);
			apg_reply_alert(p);
			return;
		}
		if (p->key != NULL && key_alert != 0) {
			http_reply_error(req, 422, "invalid_request",
			    "Idempotency-Key: already used to send alert "
			    "%lld; use a new key for this one",
			    (long long)key_alert);
			goto done;
		}
		act.key = p->key;
	} else if (strcmp(action, "schedule") == 0) {
		from = 1u << ALERT_DRAFT;
		to = ALERT_SCHEDULED;
	} else if (strcmp(action, "pause") == 0) {
		from = 1u << ALERT_SCHEDULED | 1u << ALERT_SENDING;
		to = ALERT_PAUSED;
	} else if (strcmp(action, "resume") == 0) {
		from = 1u << ALERT_PAUSED;
		to = row->started_at != 0 || row->scheduled_at <= now
		    ? ALERT_SENDING
		    : ALERT_SCHEDULED;
		act.release = true;
	} else {
		from = 1u << ALERT_DRAFT | 1u << ALERT_SCHEDULED |
		    1u << ALERT_SENDING | 1u << ALERT_PAUSED;
		to = ALERT_CANCELLED;
	}
	if ((from & (1u << row->status)) == 0) {
		http_reply_error(req, 409, "conflict",
		    "alert %lld is %s: it cannot %s", (long long)row->id,
		    alert_status_name(row->status), action);
		goto done;
	}
	if (to == ALERT_SCHEDULED && row->started_at == 0) {
		act.at = row->scheduled_at;
		if (strcmp(action, "schedule") == 0 && p->body != NULL &&
		    (v = json_object_get(p->body, "at")) != NULL &&
		    api_parse_time(v, &act.at) == -1) {
			http_reply_error(req, 422, "invalid_request",
			    "at: an ISO 8601 time such as "
			    "2026-12-08T15:00:00Z");
			goto done;
		}
		if (act.at == 0 || act.at < now) {
			http_reply_error(req, 422, "invalid_request", "at: %s",
			    act.at == 0 ? "required (when to send)"
					: "in the past; send it now instead");
			goto done;
		}
	}
	act.t = (struct alert_transition){from, to, "paused by staff", now};
	p->act = act;
	p->urgent = row->urgent;
	if (to == ALERT_SENDING || to == ALERT_SCHEDULED) {
		/* al_check_quick(): the templates compile and the audience
		 * reaches somebody now (the first member reached) */
		if (alerts_compile(&ALERT_TEXTS_OF(*row), &t, &pr) == -1) {
			http_reply_error(req, 422, "invalid_request",
			    "%s: line %u column %u: %s", pr.field, pr.err.line,
			    pr.err.column, pr.err.message);
			goto done;
		}
		alerts_tpls_free(&t);
		if (sap_audience(a->deps.st,
			&(struct sap_audience_q){.audience = row->audience,
			    .sms = row->sms,
			    .email = row->email,
			    .skip_reach = true,
			    .walk = 1,
			    .v = {apg_reached, p}},
			apg_action_checked, p, err, sizeof(err)) == -1) {
			apg_store_error(req, action, err);
			goto done;
		}
		return;
	}
	apg_action_write(p);
	return;
done:
	apg_req_free(p);
}

static void
apg_action(struct http_req *req, void *arg)
{
	static const char *const actions[] = {"send", "schedule", "pause",
	    "resume", "cancel", NULL};
	struct alerts *a = arg;
	int64_t id = apg_id(req);
	const char *action = req->params[1], *key = NULL;
	struct apg_req *p;
	char err[256];
	json_t *v;
	size_t i;

	if (!api_authorized(a->deps.api, req))
		return;
	if (id == 0) {
		http_reply_error(req, 404, "not_found", "no alert '%s'",
		    req->params[0]);
		return;
	}
	if (strcmp(action, "preview") == 0) {
		p = apg_req_new(a, req);
		p->id = id;
		if (sap_load(a->deps.st, id, NULL, apg_preview_loaded, p, err,
			sizeof(err)) == -1) {
			apg_store_error(req, "preview", err);
			apg_req_free(p);
		}
		return;
	}
	for (i = 0; actions[i] != NULL; i++)
		if (strcmp(action, actions[i]) == 0)
			break;
	if (actions[i] == NULL) {
		http_reply_error(req, 404, "not_found",
		    "no action '%.32s' (preview, schedule, send, pause, "
		    "resume, cancel)",
		    action);
		return;
	}
	if (api_is_stopping(a->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	p = apg_req_new(a, req);
	p->id = id;
	p->action = actions[i];
	if (req->body_len > 0 &&
	    (strcmp(action, "schedule") == 0 ||
		(strcmp(action, "send") == 0 &&
		    http_header(req, "Idempotency-Key") == NULL))) {
		if ((p->body = api_read_object(req)) == NULL) {
			apg_req_free(p);
			return;
		}
	}
	if (strcmp(action, "send") == 0) {
		key = http_header(req, "Idempotency-Key");
		if (key == NULL && p->body != NULL) {
			v = json_object_get(p->body, "idempotency_key");
			if (v != NULL && !json_is_string(v)) {
				http_reply_error(req, 422, "invalid_request",
				    "idempotency_key: must be a string");
				apg_req_free(p);
				return;
			}
			key = json_string_value(v);
		}
		if (key != NULL && strlen(key) > ALERTS_PG_KEY_MAX) {
			http_reply_error(req, 422, "invalid_request",
			    "Idempotency-Key: at most %d characters",
			    ALERTS_PG_KEY_MAX);
			apg_req_free(p);
			return;
		}
		p->key = key != NULL ? xstrdup(key) : NULL;
	}
	if (sap_load(a->deps.st, id, p->key, apg_action_loaded, p, err,
		sizeof(err)) == -1) {
		apg_store_error(req, action, err);
		apg_req_free(p);
	}
}

/* ---- Life --------------------------------------------------------------- */

void
alerts_pg_new(struct alerts *a, struct http_server *srv)
{
	struct alerts_pg *pg = xcalloc(1, sizeof(*pg));
	char err[256];

	TAILQ_INIT(&pg->runs);
	LIST_INIT(&pg->announcing);
	a->pg = pg;
	pg->timer = evtimer_new(a->deps.base, apg_tick, a);
	if (pg->timer == NULL)
		fatalx("alerts_pg_new: evtimer_new failed");
	/* The fan-out's own connection (a third one per node). */
	if ((pg->fan = sap_fan_open(a->deps.base, a->deps.cfg->store_url,
		 apg_node(a), err, sizeof(err))) == NULL)
		fatalx("alerts: the fan-out connection: %s", err);
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/alerts", apg_collection,
	    a);
	http_route(srv, HTTP_GET | HTTP_PATCH | HTTP_DELETE,
	    "/api/v1/alerts/{id}", apg_item, a);
	http_route(srv, HTTP_POST, "/api/v1/alerts/{id}/{action}", apg_action,
	    a);
}

void
alerts_pg_start(struct alerts *a)
{
	apg_arm(a, 0);
}

void
alerts_pg_stop(struct alerts *a)
{
	evtimer_del(a->pg->timer);
}

void
alerts_pg_free(struct alerts *a)
{
	struct alerts_pg *pg = a->pg;
	struct alert_run *r;
	struct apg_ann *ann;

	if (pg == NULL)
		return;
	pg->closing = true;
	while ((ann = LIST_FIRST(&pg->announcing)) != NULL) {
		LIST_REMOVE(ann, entry);
		ann->a = NULL; /* its read's answer only frees it */
	}
	sap_fan_close(pg->fan); /* what is in flight is answered "closed" */
	while ((r = TAILQ_FIRST(&pg->runs)) != NULL) {
		TAILQ_REMOVE(&pg->runs, r, entry);
		alerts_run_free(r);
	}
	if (pg->timer != NULL)
		event_free(pg->timer);
	free(pg);
	a->pg = NULL;
}
