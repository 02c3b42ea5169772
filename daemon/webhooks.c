/*
 * webhooks.c - provider callbacks in: POST (or GET, for Kannel)
 * /webhooks/{sender}/inbound and /webhooks/{sender}/status.
 *
 * Each request goes through the sender's adapter (adapter.h) in a fixed
 * order: find the sender (404), build a struct webhook_req (400 if the
 * form cannot be decoded), verify it (403, nothing stored, a warn line),
 * parse it (400; or 1 = authentic but nothing to store, answered 200 at
 * once), store it, and answer 200 with the adapter's reply body only from
 * the store's on-commit callback (doc/queue.md): a provider that hears 200
 * may forget the message, so it must be on disk first (503 if the group
 * failed; the provider retries, and the retry stores nothing twice).
 *
 * The URL a signature covers: with [http] public_url set it is that base
 * (trailing '/' dropped) followed by the request target exactly as
 * received (path and raw query), since behind a proxy the Host header is
 * the proxy's; without public_url it is "http://" + the Host header + the
 * same target, which is right only when providers reach the daemon
 * directly over plain HTTP (tests, a LAN Kannel).
 *
 * Form fields are decoded here, once, following the URL standard's
 * application/x-www-form-urlencoded parser: fields split on '&', empty
 * ones skipped, name and value split on the first '=', '+' is a space,
 * percent-escapes decoded by libevent's evhttp_uridecode() (malformed ones
 * kept literally). A field that decodes to a NUL byte cannot be handed on
 * as a C string and makes the request malformed.
 *
 * Both backends: a delivery report goes through
 * queue_status_update_durable(), whose callback logs what it did and
 * answers once its group committed. A received text on PostgreSQL is
 * stored and routed in the group (queue_inbound_durable(), planned
 * by inbound_plan(): the compliance words, YES, list keywords and
 * conversation messages; follow-up questions are not asked there); on
 * SQLite by queue_inbound_store() and inbound_route() as before.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "adapter.h"
#include "compat.h"
#include "config.h"
#include "dispatch.h"
#include "http.h"
#include "inbound.h"
#include "log.h"
#include "queue.h"
#include "queue_pg.h"
#include "smstext.h"
#include "store.h"
#include "webhooks.h"
#include "xmalloc.h"

/* Twilio sends about 40 fields; anything near this is not a provider. */
#define WEBHOOKS_MAX_FIELDS 1000
/* Provider-supplied text in a log line (reasons, ids) is cut here. */
#define WEBHOOKS_LOG_TEXT 160
/* A sender name from the URL, echoed in a 404 (config caps names at 63). */
#define WEBHOOKS_NAME_TEXT 65

static const char webhooks_form_type[] = "application/x-www-form-urlencoded";

struct webhooks {
	struct webhooks_deps deps;
};

/* One request while it is verified and parsed; owns what it decoded. */
struct webhooks_call {
	struct http_req *req; /* replied to (and freed) by the handler */
	struct adapter *ad;
	const char *sender; /* req->params[0] */
	enum webhook_kind kind;
	struct webhook_req wr;
	char *url;
	struct webhook_kv *params; /* decoded copies, freed with the call */
	size_t nparams;
	struct webhook_kv *headers; /* borrowed strings */
};

/* A 200 waiting for the group commit that makes its write durable. */
struct webhooks_pending {
	struct http_req *req;
	char *ctype; /* NULL = none */
	char *body;
	size_t len;
	/* for the log line written once the store answered */
	char sender[WEBHOOKS_NAME_TEXT];
	const char *provider;	   /* the adapter's name (static) */
	struct status_update u;	   /* a delivery report */
	struct inbound_plan plan;  /* a received text (PostgreSQL) */
	struct in_msg msg;	   /* the text, while its lists are read */
	struct queue_webhook wh;   /* where it came from (sender: owned) */
	struct store *st;	   /* where it goes */
	char from[MSG_ADDR_MAX];   /* its sender, masked */
	struct dispatch *dispatch; /* kicked for a reply */
	struct inbound *inbound;   /* announces a conversation message */
};

static void webhooks_on_inbound(struct http_req *, void *);
static void webhooks_on_status(struct http_req *, void *);
static void webhooks_handle(struct webhooks *, struct http_req *,
    enum webhook_kind);
static int webhooks_call_init(struct webhooks *, struct webhooks_call *, char *,
    size_t);
static void webhooks_call_clear(struct webhooks_call *);
static char *webhooks_url(const struct webhooks *, struct http_req *);
static bool webhooks_is_form(const struct http_req *);
static int webhooks_form_decode(struct webhooks_call *, const char *, size_t,
    char *, size_t);
static char *webhooks_decode(const char *, size_t);
static void webhooks_inbound(struct webhooks *, struct webhooks_call *);
static void webhooks_status(struct webhooks *, struct webhooks_call *);
static bool webhooks_in_msg_is_utf8(const struct in_msg *);
static bool webhooks_report_is_whole(const struct status_update *, char *,
    size_t);
static void webhooks_malformed(struct webhooks_call *, const char *);
static void webhooks_reply_now(struct webhooks_call *);
static void webhooks_reply_after_commit(struct webhooks *,
    struct webhooks_call *);
static struct webhooks_pending *webhooks_pending_new(struct webhooks_call *);
static void webhooks_pending_free(struct webhooks_pending *);
static void webhooks_on_commit(void *, bool);
static void webhooks_status_done(void *, const struct queue_done *);
static void webhooks_inbound_pg(struct webhooks *, struct webhooks_call *,
    const struct in_msg *);
static void webhooks_inbound_planned(void *, const char *);
static void webhooks_inbound_done(void *, const struct queue_done *);
static const char *webhooks_log_text(const char *, char *, size_t);
static const char *webhooks_kind_to_text(enum webhook_kind);

/*
 * Registers the two routes of every sender on srv. Which senders exist,
 * and whether they take webhooks, is decided per request from the
 * dispatcher's routes, so one pattern serves them all.
 */
struct webhooks *
webhooks_new(struct http_server *srv, const struct webhooks_deps *deps)
{
	struct webhooks *w = xcalloc(1, sizeof(*w));

	w->deps = *deps;
	http_route(srv, HTTP_POST | HTTP_GET, "/webhooks/{sender}/inbound",
	    webhooks_on_inbound, w);
	http_route(srv, HTTP_POST | HTTP_GET, "/webhooks/{sender}/status",
	    webhooks_on_status, w);
	return w;
}

/* Replies still waiting for a commit do not point at w. */
void
webhooks_free(struct webhooks *w)
{
	free(w);
}

static void
webhooks_on_inbound(struct http_req *req, void *arg)
{
	webhooks_handle(arg, req, WEBHOOK_INBOUND);
}

static void
webhooks_on_status(struct http_req *req, void *arg)
{
	webhooks_handle(arg, req, WEBHOOK_STATUS);
}

static const char *
webhooks_kind_to_text(enum webhook_kind kind)
{
	return kind == WEBHOOK_INBOUND ? "inbound" : "status";
}

/*
 * Steps 1-3 of the flow at the top of the file: the sender, the request,
 * its signature; then the kind's own parse-and-store step replies.
 */
static void
webhooks_handle(struct webhooks *w, struct http_req *req,
    enum webhook_kind kind)
{
	struct webhooks_call c = {.req = req, .kind = kind};
	char err[256];
	char safe[WEBHOOKS_LOG_TEXT];

	c.sender = req->params[0];
	c.ad = dispatch_sender_adapter(w->deps.dispatch, c.sender);
	if (c.ad == NULL) {
		/* Any bytes may arrive here; JSON takes only UTF-8. */
		http_reply_error(req, 404, "not_found", "no sender '%s'",
		    webhooks_log_text(c.sender, safe, WEBHOOKS_NAME_TEXT));
		return;
	}
	if (c.ad->ops->verify == NULL ||
	    (kind == WEBHOOK_INBOUND ? c.ad->ops->parse_inbound == NULL
				     : c.ad->ops->parse_status == NULL)) {
		http_reply_error(req, 404, "not_found",
		    "sender %s takes no webhooks", c.sender);
		return;
	}
	err[0] = '\0';
	if (webhooks_call_init(w, &c, err, sizeof(err)) == -1) {
		/* Before verification: anyone can send this, so no warn. */
		webhooks_log_text(err, safe, sizeof(safe));
		log_info("webhook_malformed sender=%s kind=%s peer=%s "
			 "reason=\"%s\"",
		    c.sender, webhooks_kind_to_text(kind), c.wr.peer, safe);
		http_reply_error(req, 400, "bad_request", "%s", safe);
	} else if (c.ad->ops->verify(c.ad, &c.wr, err, sizeof(err)) != 0) {
		log_warnx("webhook_forbidden sender=%s kind=%s peer=%s "
			  "reason=\"%s\"",
		    c.sender, webhooks_kind_to_text(kind), c.wr.peer,
		    webhooks_log_text(err, safe, sizeof(safe)));
		http_reply_error(req, 403, "forbidden",
		    "the request's signature does not verify");
	} else if (kind == WEBHOOK_INBOUND)
		webhooks_inbound(w, &c);
	else
		webhooks_status(w, &c);
	webhooks_call_clear(&c);
}

/*
 * Fills c->wr from c->req: URL, peer, headers, and the decoded form
 * fields of a urlencoded POST body or of a GET's query. -1 with the
 * reason in err when the form cannot be decoded.
 */
static int
webhooks_call_init(struct webhooks *w, struct webhooks_call *c, char *err,
    size_t errlen)
{
	struct http_req *req = c->req;
	size_t n;

	c->url = webhooks_url(w, req);
	c->wr.method = http_method_to_text(req->method);
	c->wr.url = c->url;
	c->wr.query = req->query;
	c->wr.body = req->body;
	c->wr.body_len = req->body_len;
	c->wr.peer = http_peer(req);
	c->wr.now = msg_now_ms();
	n = http_headers(req, NULL, 0);
	c->headers = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*c->headers));
	c->wr.nheaders = http_headers(req, c->headers, n);
	c->wr.headers = c->headers;
	if (req->method == HTTP_GET && req->query != NULL)
		return webhooks_form_decode(c, req->query, strlen(req->query),
		    err, errlen);
	if (req->method == HTTP_POST && webhooks_is_form(req))
		return webhooks_form_decode(c, req->body, req->body_len, err,
		    errlen);
	return 0;
}

static void
webhooks_call_clear(struct webhooks_call *c)
{
	size_t i;

	for (i = 0; i < c->nparams; i++) {
		free((char *)c->params[i].key);
		free((char *)c->params[i].value);
	}
	free(c->params);
	free(c->headers);
	free(c->url);
}

/* The URL the provider called, as its signature covers it (see top). */
static char *
webhooks_url(const struct webhooks *w, struct http_req *req)
{
	const char *target = evhttp_request_get_uri(req->ev);
	const char *base = w->deps.cfg->public_url;
	const char *host;
	char *own = NULL;
	char *url;
	size_t blen;

	if (target == NULL || target[0] != '/') {
		/* absolute-form request line: rebuild path and query */
		own = xasprintf("%s%s%s", req->path,
		    req->query != NULL ? "?" : "",
		    req->query != NULL ? req->query : "");
		target = own;
	}
	if (base != NULL && *base != '\0') {
		blen = strlen(base);
		while (blen > 0 && base[blen - 1] == '/')
			blen--;
		url = xasprintf("%.*s%s", (int)blen, base, target);
	} else {
		host = http_header(req, "Host");
		url = xasprintf("http://%s%s",
		    host != NULL && *host != '\0' ? host : "localhost", target);
	}
	free(own);
	return url;
}

/* True if the body is application/x-www-form-urlencoded (any params). */
static bool
webhooks_is_form(const struct http_req *req)
{
	const char *ct = http_header(req, "Content-Type");
	size_t n = sizeof(webhooks_form_type) - 1;

	if (ct == NULL || strncasecmp(ct, webhooks_form_type, n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/*
 * Decodes 's' (len bytes, not necessarily NUL-terminated) as form fields
 * into c->params, in order. -1 with err set on a NUL byte (raw or
 * decoded) or more than WEBHOOKS_MAX_FIELDS fields.
 */
static int
webhooks_form_decode(struct webhooks_call *c, const char *s, size_t len,
    char *err, size_t errlen)
{
	const char *p = s, *end = s + len, *amp, *eq;
	size_t cap = 0;
	char *key, *value;

	if (memchr(s, '\0', len) != NULL) {
		snprintf(err, errlen, "form data holds a NUL byte");
		return -1;
	}
	for (; p < end; p = amp + 1) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp == p)
			continue; /* "a=1&&b=2": the standard skips it */
		if (c->nparams == WEBHOOKS_MAX_FIELDS) {
			snprintf(err, errlen, "more than %d form fields",
			    WEBHOOKS_MAX_FIELDS);
			return -1;
		}
		eq = memchr(p, '=', (size_t)(amp - p));
		key = webhooks_decode(p, (size_t)((eq != NULL ? eq : amp) - p));
		value = eq != NULL
		    ? webhooks_decode(eq + 1, (size_t)(amp - eq - 1))
		    : xstrdup("");
		if (key == NULL || value == NULL) {
			free(key);
			free(value);
			snprintf(err, errlen,
			    "form field %zu decodes to a "
			    "NUL byte",
			    c->nparams + 1);
			return -1;
		}
		if (c->nparams == cap) {
			cap = cap == 0 ? 32 : cap * 2;
			c->params =
			    xreallocarray(c->params, cap, sizeof(*c->params));
		}
		c->params[c->nparams].key = key;
		c->params[c->nparams++].value = value;
		c->wr.params = c->params;
		c->wr.nparams = c->nparams;
	}
	return 0;
}

/*
 * Percent-decodes n bytes of s with '+' as a space. Returns a new string,
 * or NULL if it would hold a NUL byte ("%00").
 */
static char *
webhooks_decode(const char *s, size_t n)
{
	char *raw = xstrndup(s, n);
	char *out;
	size_t outlen = 0;

	out = evhttp_uridecode(raw, 1, &outlen);
	free(raw);
	if (out == NULL)
		fatalx("webhooks_decode: evhttp_uridecode failed");
	if (strlen(out) != outlen) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * An authentic inbound message: parse, store (a provider's retry finds
 * the first copy), route it (inbound.c: STOP, keywords, conversations) in
 * the same group transaction, and answer once all of it is on disk. A
 * retried webhook is not routed again.
 */
static void
webhooks_inbound(struct webhooks *w, struct webhooks_call *c)
{
	struct in_msg m = {0};
	char err[256], safe[WEBHOOKS_LOG_TEXT], note[256] = "";
	char masked[MSG_ADDR_MAX];
	struct queue_webhook wh = {.sender = c->sender,
	    .provider = c->ad->ops->name,
	    .now = msg_now_ms()};
	struct queue_stored qs = {0};
	int rc;

	err[0] = '\0';
	rc = c->ad->ops->parse_inbound(c->ad, &c->wr, &m, err, sizeof(err));
	if (rc == 0 && !webhooks_in_msg_is_utf8(&m)) {
		snprintf(err, sizeof(err),
		    "the text or an address is not valid UTF-8");
		rc = -1;
	}
	if (rc == -1)
		webhooks_malformed(c, err);
	else if (rc == 1)
		webhooks_reply_now(c);
	else if (store_backend(w->deps.st) != STORE_SQLITE)
		webhooks_inbound_pg(w, c, &m);
	else if (queue_inbound_store(w->deps.st, &wh, &m, &qs, err,
		     sizeof(err)) == -1 ||
	    (!qs.dup &&
		inbound_route(w->deps.inbound,
		    &(struct inbound_msg){.msg_id = qs.id,
			.wh = &wh,
			.m = &m,
			.note = note,
			.notelen = sizeof(note)},
		    err, sizeof(err)) == -1)) {
		/* A text stored but not routed (a STOP not honoured) must
		 * not commit: the provider retries the 503 and finds
		 * nothing, so the retry is routed. */
		store_abort_group(w->deps.st);
		webhooks_log_text(err, safe, sizeof(safe));
		log_warnx("webhook_store_failed sender=%s kind=inbound "
			  "error=\"%s\"",
		    c->sender, safe);
		http_reply_error(c->req, 503, "unavailable", "store: %s", safe);
	} else {
		log_mask_addr(m.from, masked, sizeof(masked));
		if (qs.dup)
			log_info("msg_received_again msg=%lld sender=%s "
				 "from=%s",
			    (long long)qs.id, c->sender, masked);
		else
			log_info("msg_received msg=%lld sender=%s from=%s%s%s",
			    (long long)qs.id, c->sender, masked,
			    note[0] != '\0' ? " " : "", note);
		webhooks_reply_after_commit(w, c);
	}
	in_msg_clear(&m);
}

/*
 * An authentic delivery report: parse, apply forward-only (queue.h), and
 * answer 200 once the change is on disk, also for stale reports and for
 * ids no message carries (kept a while; providers would retry a non-200).
 */
static void
webhooks_status(struct webhooks *w, struct webhooks_call *c)
{
	struct status_update u = {0};
	char err[256], safe[WEBHOOKS_LOG_TEXT];
	struct webhooks_pending *p;
	int rc;

	err[0] = '\0';
	rc = c->ad->ops->parse_status(c->ad, &c->wr, &u, err, sizeof(err));
	if (rc == -1) {
		webhooks_malformed(c, err);
		return;
	}
	if (rc == 1) {
		webhooks_reply_now(c);
		return;
	}
	if (!webhooks_report_is_whole(&u, err, sizeof(err))) {
		webhooks_malformed(c, err);
		return;
	}
	p = webhooks_pending_new(c);
	p->u = u;
	if (queue_status_update_durable(w->deps.st,
		&(struct queue_webhook){.sender = c->sender,
		    .provider = c->ad->ops->name,
		    .now = msg_now_ms()},
		&u, webhooks_status_done, p, err, sizeof(err)) == -1) {
		webhooks_pending_free(p);
		webhooks_log_text(err, safe, sizeof(safe));
		log_warnx("webhook_store_failed sender=%s kind=status "
			  "error=\"%s\"",
		    c->sender, safe);
		http_reply_error(c->req, 503, "unavailable", "store: %s", safe);
	}
}

/* The report is durable (or its group failed): log it, answer. */
static void
webhooks_status_done(void *arg, const struct queue_done *d)
{
	struct webhooks_pending *p = arg;
	const struct status_update *u = &p->u;
	char safe[WEBHOOKS_LOG_TEXT];

	if (!d->ok && d->error != NULL)
		log_warnx("webhook_store_failed sender=%s kind=status "
			  "error=\"%s\"",
		    p->sender, webhooks_log_text(d->error, safe, sizeof(safe)));
	else if (!d->ok)
		;
	else if (d->su == QUEUE_SU_APPLIED)
		log_info("msg_status msg=%lld sender=%s provider=%s status=%s "
			 "code=%d",
		    (long long)d->id, p->sender, p->provider,
		    msg_status_to_text(u->status), u->code);
	else if (d->su == QUEUE_SU_STALE)
		log_debug("msg_status_stale msg=%lld sender=%s status=%s",
		    (long long)d->id, p->sender, msg_status_to_text(u->status));
	else
		log_info("status_unknown_id sender=%s provider_id=%s msg=%lld "
			 "status=%s",
		    p->sender,
		    webhooks_log_text(u->provider_id, safe, sizeof(safe)),
		    (long long)u->msg_id, msg_status_to_text(u->status));
	webhooks_on_commit(p, d->ok);
}

/*
 * PostgreSQL: the text stored and routed in the group (see the top of
 * the file); logged and answered once it committed. A YES or a word that
 * may be a keyword reads the stored lists first (inbound_plan_lists()),
 * so the text is kept until they are in.
 */
static void
webhooks_inbound_pg(struct webhooks *w, struct webhooks_call *c,
    const struct in_msg *m)
{
	struct webhooks_pending *p = webhooks_pending_new(c);
	char err[256];
	int rc;

	log_mask_addr(m->from, p->from, sizeof(p->from));
	p->dispatch = w->deps.dispatch;
	p->inbound = w->deps.inbound;
	p->st = w->deps.st;
	p->wh = (struct queue_webhook){.sender = xstrdup(c->sender),
	    .provider = c->ad->ops->name,
	    .now = msg_now_ms()};
	p->msg = *m;
	p->msg.body = m->body != NULL ? xstrdup(m->body) : NULL;
	inbound_plan(w->deps.inbound, &p->wh, m, &p->plan);
	rc = inbound_plan_lists(w->deps.inbound, &p->plan,
	    webhooks_inbound_planned, p, err, sizeof(err));
	if (rc == 1)
		webhooks_inbound_planned(p, NULL);
	else if (rc == -1)
		webhooks_inbound_planned(p, err);
}

/* The text's route is planned (error: its lists could not be read). */
static void
webhooks_inbound_planned(void *arg, const char *error)
{
	struct webhooks_pending *p = arg;
	char err[256], safe[WEBHOOKS_LOG_TEXT];

	if (error == NULL &&
	    queue_inbound_durable(p->st, &p->wh, &p->msg, &p->plan.route,
		webhooks_inbound_done, p, err, sizeof(err)) == 0)
		return;
	webhooks_log_text(error != NULL ? error : err, safe, sizeof(safe));
	log_warnx("webhook_store_failed sender=%s kind=inbound "
		  "error=\"%s\"",
	    p->sender, safe);
	http_reply_error(p->req, 503, "unavailable", "store: %s", safe);
	webhooks_pending_free(p);
}

static void
webhooks_inbound_done(void *arg, const struct queue_done *d)
{
	struct webhooks_pending *p = arg;
	char safe[WEBHOOKS_LOG_TEXT], note[256];

	if (!d->ok && d->error != NULL)
		log_warnx("webhook_store_failed sender=%s kind=inbound "
			  "error=\"%s\"",
		    p->sender, webhooks_log_text(d->error, safe, sizeof(safe)));
	else if (d->ok && d->dup)
		log_info("msg_received_again msg=%lld sender=%s from=%s",
		    (long long)d->id, p->sender, p->from);
	else if (d->ok) {
		inbound_plan_note(&p->plan, d, note, sizeof(note));
		log_info("msg_received msg=%lld sender=%s from=%s %s",
		    (long long)d->id, p->sender, p->from, note);
		if (d->reply_id != 0 && p->dispatch != NULL)
			dispatch_kick(p->dispatch);
		if (d->conversation != 0)
			inbound_plan_publish(p->inbound, d);
	}
	webhooks_on_commit(p, d->ok);
}

/*
 * What is stored must be UTF-8, since the API's JSON carries nothing else
 * (jansson refuses other bytes, and the field would read null); form
 * fields decode to any bytes, and only Kannel's adapter checks its text.
 * Found by fuzz/fuzz_webhook_twilio.
 */
static bool
webhooks_in_msg_is_utf8(const struct in_msg *m)
{
	struct smstext_info info;

	return smstext_analyze(m->body, &info) == 0 &&
	    smstext_analyze(m->from, &info) == 0 &&
	    smstext_analyze(m->to, &info) == 0 &&
	    smstext_analyze(m->provider_id, &info) == 0;
}

/*
 * A parsed report must name a message and a delivery state; otherwise the
 * adapter let through something malformed, and a 503 from the store
 * would only make the provider retry it forever.
 */
static bool
webhooks_report_is_whole(const struct status_update *u, char *err,
    size_t errlen)
{
	if (u->status != MSG_ST_SENT && u->status != MSG_ST_DELIVERED &&
	    u->status != MSG_ST_UNDELIVERED && u->status != MSG_ST_FAILED) {
		snprintf(err, errlen, "not a delivery state");
		return false;
	}
	if (u->msg_id <= 0 && u->provider_id[0] == '\0') {
		snprintf(err, errlen, "the report names no message");
		return false;
	}
	return true;
}

/*
 * An authentic request the adapter cannot parse: the provider changed
 * its format or we have a bug, so an operator should hear of it.
 */
static void
webhooks_malformed(struct webhooks_call *c, const char *reason)
{
	char safe[WEBHOOKS_LOG_TEXT];

	webhooks_log_text(reason, safe, sizeof(safe));
	log_warnx("webhook_malformed sender=%s kind=%s peer=%s reason=\"%s\"",
	    c->sender, webhooks_kind_to_text(c->kind), c->wr.peer, safe);
	http_reply_error(c->req, 400, "bad_request", "%s",
	    reason[0] != '\0' ? safe : "malformed request");
}

/* 200 with the adapter's reply body for this kind of webhook. */
static void
webhooks_reply_now(struct webhooks_call *c)
{
	const char *ctype = NULL;
	const char *body = NULL;

	if (c->ad->ops->reply_body != NULL)
		body = c->ad->ops->reply_body(c->ad, c->kind, &ctype);
	http_reply(c->req, 200, ctype, body != NULL ? body : "",
	    body != NULL ? strlen(body) : 0);
}

/*
 * Answers from the store's on-commit callback. The reply is copied now,
 * so the callback needs neither the adapter nor w.
 */
static void
webhooks_reply_after_commit(struct webhooks *w, struct webhooks_call *c)
{
	store_on_commit(w->deps.st, webhooks_on_commit,
	    webhooks_pending_new(c));
}

/* The reply to send once the store answered, copied now. */
static struct webhooks_pending *
webhooks_pending_new(struct webhooks_call *c)
{
	struct webhooks_pending *p = xcalloc(1, sizeof(*p));
	const char *ctype = NULL;
	const char *body = NULL;

	if (c->ad->ops->reply_body != NULL)
		body = c->ad->ops->reply_body(c->ad, c->kind, &ctype);
	p->req = c->req;
	p->ctype = ctype != NULL ? xstrdup(ctype) : NULL;
	p->body = xstrdup(body != NULL ? body : "");
	p->len = strlen(p->body);
	webhooks_log_text(c->sender, p->sender, sizeof(p->sender));
	p->provider = c->ad->ops->name;
	return p;
}

static void
webhooks_pending_free(struct webhooks_pending *p)
{
	inbound_plan_clear(&p->plan);
	in_msg_clear(&p->msg);
	free((char *)p->wh.sender);
	free(p->ctype);
	free(p->body);
	free(p);
}

static void
webhooks_on_commit(void *arg, bool ok)
{
	struct webhooks_pending *p = arg;

	if (ok)
		http_reply(p->req, 200, p->ctype, p->body, p->len);
	else
		http_reply_error(p->req, 503, "unavailable",
		    "the store could not commit; retry");
	webhooks_pending_free(p);
}

/*
 * Provider- or client-supplied text made safe for a key="value" log
 * field and for a JSON error message (jansson refuses invalid UTF-8):
 * bytes outside printable ASCII, quotes and backslashes become '?', and
 * the text is cut to len - 1 bytes. Returns buf.
 */
static const char *
webhooks_log_text(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] =
		    s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\'
		    ? '?'
		    : s[i];
	buf[i] = '\0';
	return buf;
}
