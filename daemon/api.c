/*
 * api.c - handlers of the JSON admin API, /healthz and /metrics.
 *
 * Every handler validates its input completely before it touches the
 * store, and names the offending field in its error, so a client can fix
 * its request from the message alone. A new message is answered once its
 * group committed (queue_enqueue_durable(), on either backend): the 202
 * means the row is on disk. A message's JSON is read the same way
 * (queue_message_json_async()): at once on SQLite, from the
 * connection's answer on PostgreSQL.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "api.h"
#include "compat.h"
#include "config.h"
#include "dispatch.h"
#include "email_addr.h"
#include "http.h"
#include "json_fast.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "queue_pg.h"
#include "smstext.h"
#include "staff.h"
#include "store.h"
#include "store_members.h"
#include "store_staff_pg.h"
#include "xmalloc.h"

#define API_SMS_MAX_CHARS 1600 /* Twilio's and most providers' cap */
#define API_KEY_MAX	  200  /* idempotency keys */
#define API_PRIO_MAX	  10
#define API_TIME_MAX_S	  253402300799.0 /* 9999-12-31T23:59:59Z */
/* An email subject: the longest line RFC 5322 allows (998 bytes), far
 * past what any mail client shows; headers are folded to 78 anyway. */
#define API_SUBJECT_MAX 998

/* The fields of POST /api/v1/messages. */
static const char *const api_message_fields[] = {"channel", "to", "body",
    "subject", "html", "from", "sender", "idempotency_key", "not_before",
    "expires_at", "priority", NULL};

/*
 * PostgreSQL: /metrics' database-wide gauges (messages by channel and
 * status, bouncing members), every node's figures of the shared tables.
 * Counting them scans the messages table, so a node reads them at most
 * once per API_GAUGES_MAX_AGE_MS, outside the group: a scrape answers
 * from the last read while it is younger than that, else waits for one
 * read, shared by the scrapes that come meanwhile (the loop does not
 * wait). SQLite reads them at each scrape, as before.
 */
#define API_GAUGES_MAX_AGE_MS 10000

struct api_gauges_wait {
	struct http_req *req;
	struct api_gauges_wait *next;
};

struct api_gauges {
	struct api *api; /* NULL once api_free()d: the answer only frees */
	int64_t counts[CHANNEL_COUNT * MSG_ST_COUNT];
	int64_t bouncing;
	int64_t read_at; /* msg_now_ms(); 0 = never */
	bool reading;
	struct api_gauges_wait *waiting;
};

struct api {
	struct api_deps deps;
	struct staff *staff; /* api_set_staff(): who may call */
	bool stopping;
	api_metrics_fn *metrics_fn; /* api_add_metrics() */
	void *metrics_arg;
	struct api_gauges *gauges; /* PostgreSQL only */
};

static void api_healthz(struct http_req *, void *);
static void api_metrics(struct http_req *, void *);
static void api_status(struct http_req *, void *);
static void api_message_post(struct http_req *, void *);
static void api_message_get(struct http_req *, void *);
static void api_on_enqueued(void *, const struct queue_done *);
static void api_on_message(void *, json_t *, const char *);
static int api_sms_body(struct queue_new *, char *, size_t);
static int api_message_sms(struct api *, struct queue_new *, char *, size_t);
static int api_message_email(struct queue_new *, char *, size_t);
static bool api_is_header_text(const char *);
static int api_message_timing(struct api *, json_t *, struct queue_new *,
    char *, size_t);

struct api *
api_new(struct http_server *srv, const struct api_deps *deps)
{
	struct api *api = xcalloc(1, sizeof(*api));

	api->deps = *deps;
	/* (no store: an API that only parses, as the fuzz harness's) */
	if (deps->st != NULL && store_backend(deps->st) == STORE_POSTGRESQL) {
		api->gauges = xcalloc(1, sizeof(*api->gauges));
		api->gauges->api = api;
	}
	http_route(srv, HTTP_GET | HTTP_HEAD, "/healthz", api_healthz, api);
	http_route(srv, HTTP_GET, "/metrics", api_metrics, api);
	http_route(srv, HTTP_GET, "/api/v1/status", api_status, api);
	http_route(srv, HTTP_POST, "/api/v1/messages", api_message_post, api);
	http_route(srv, HTTP_GET, "/api/v1/messages/{id}", api_message_get,
	    api);
	return api;
}

bool
api_is_stopping(const struct api *api)
{
	return api->stopping;
}

/*
 * The request body as a JSON object, or NULL after answering 415 (not
 * JSON), 400 (does not parse) or 422 (not an object) itself.
 */
json_t *
api_read_object(struct http_req *req)
{
	const char *ctype = http_header(req, "Content-Type");
	json_error_t jerr;
	json_t *o;

	if (ctype != NULL && strncasecmp(ctype, "application/json", 16) != 0) {
		http_reply_error(req, 415, "unsupported_media_type",
		    "Content-Type must be application/json, not %.64s "
		    "(with curl: -H 'Content-Type: application/json')",
		    ctype);
		return NULL;
	}
	/* most bodies are flat and plain: read without jansson's lexer */
	if ((o = json_flat_object(req->body, req->body_len)) != NULL)
		return o;
	if ((o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
		 &jerr)) == NULL) {
		http_reply_error(req, 400, "invalid_json",
		    "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		http_reply_error(req, 422, "invalid_request",
		    "body: must be a JSON object");
		return NULL;
	}
	return o;
}

void
api_add_metrics(struct api *api, api_metrics_fn *fn, void *arg)
{
	api->metrics_fn = fn;
	api->metrics_arg = arg;
}

void
api_set_stopping(struct api *api)
{
	api->stopping = true;
}

void
api_free(struct api *api)
{
	struct api_gauges_wait *w;

	if (api == NULL)
		return;
	if (api->gauges != NULL) {
		while ((w = api->gauges->waiting) != NULL) {
			api->gauges->waiting = w->next;
			free(w);
		}
		if (api->gauges->reading)
			api->gauges->api = NULL; /* its answer frees it */
		else
			free(api->gauges);
	}
	free(api);
}

void
api_set_staff(struct api *api, struct staff *staff)
{
	api->staff = staff;
}

/*
 * A staff member's token or session (staff.c does the work); answers
 * 401 (403 for a session write without its CSRF token) itself.
 */
bool
api_authorized(struct api *api, struct http_req *req)
{
	return staff_authorize(api->staff, req);
}

bool
api_require_admin(struct api *api, struct http_req *req)
{
	if (!api_authorized(api, req))
		return false;
	if (req->auth.role == HTTP_ROLE_ADMIN)
		return true;
	http_reply_error(req, 403, "forbidden", "this needs an admin");
	return false;
}

static void
api_healthz(struct http_req *req, void *arg)
{
	struct api *api = arg;
	char err[256];

	if (store_ping(api->deps.st, err, sizeof(err)) == -1) {
		log_warnx("healthz_failed error=\"%s\"", err);
		http_reply_json(req, 503,
		    json_pack("{s:s, s:s, s:s}", "status", "error", "store",
			err, "version", PACKAGE_VERSION));
		return;
	}
	http_reply_json(req, 200,
	    json_pack("{s:s, s:s, s:s}", "status", "ok", "store", "ok",
		"version", PACKAGE_VERSION));
}

/* counts[channel][status] as {"sms": {"queued": n, ...}, "email": {...}}. */
static json_t *
api_counts_json(const int64_t *counts)
{
	json_t *o, *ch;
	int c, s;

	o = json_object();
	for (c = 0; c < CHANNEL_COUNT; c++) {
		ch = json_object();
		for (s = 0; s < MSG_ST_COUNT; s++)
			json_object_set_new(ch, msg_status_to_text(s),
			    json_integer(counts[c * MSG_ST_COUNT + s]));
		json_object_set_new(o, channel_to_text(c), ch);
	}
	return o;
}

/* The queue's counts (SQLite), as api_counts_json(). */
static json_t *
api_queue_json(struct api *api, char *err, size_t errlen)
{
	int64_t counts[CHANNEL_COUNT][MSG_ST_COUNT];

	if (queue_count_by_status(api->deps.st, counts, err, errlen) == -1)
		return NULL;
	return api_counts_json(&counts[0][0]);
}

static void api_status_reply(struct api *, struct http_req *, json_t *);

/* A status page waiting for the shared table's counts (PostgreSQL). */
struct api_status_wait {
	struct api *api;
	struct http_req *req;
};

static void
api_status_counts(void *arg, const int64_t *counts, const char *error)
{
	struct api_status_wait *w = arg;

	if (counts == NULL)
		http_reply_error(w->req, 503, "unavailable", "store: %s",
		    error != NULL ? error : "no answer");
	else
		api_status_reply(w->api, w->req, api_counts_json(counts));
	free(w);
}

/*
 * GET /api/v1/status: this node's routes and uptime, and the queue's
 * counts (on PostgreSQL the whole database's, one read outside the group).
 */
static void
api_status(struct http_req *req, void *arg)
{
	struct api *api = arg;
	struct api_status_wait *w;
	char err[256];
	json_t *q;

	if (!api_authorized(api, req))
		return;
	if (store_backend(api->deps.st) != STORE_SQLITE) {
		w = xcalloc(1, sizeof(*w));
		w->api = api;
		w->req = req;
		if (store_status_counts_pg(api->deps.st, api_status_counts, w,
			err, sizeof(err)) == -1) {
			free(w);
			http_reply_error(req, 503, "unavailable", "store: %s",
			    err);
		}
		return;
	}
	if ((q = api_queue_json(api, err, sizeof(err))) == NULL) {
		http_reply_error(req, 503, "unavailable", "store: %s", err);
		return;
	}
	api_status_reply(api, req, q);
}

/* Answers the status page with the queue's counts q (consumed). */
static void
api_status_reply(struct api *api, struct http_req *req, json_t *q)
{
	json_t *o;

	o = dispatch_routes_json(api->deps.dispatch);
	json_object_set_new(o, "version", json_string(PACKAGE_VERSION));
	json_object_set_new(o, "uptime_s",
	    json_integer((msg_now_ms() - api->deps.started_at) / 1000));
	json_object_set_new(o, "queue", q);
	http_reply_json(req, 200, o);
}

/* Appends the gauges: the store's (counts[channel * MSG_ST_COUNT +
 * status] and bouncing, read by the caller) and this node's. */
static void
api_metrics_gauges(struct api *api, struct evbuffer *out, const int64_t *counts,
    int64_t bouncing)
{
	struct store_stats ss;
	int c, s;

	metrics_render_family(out, "outreachd_queue_messages", "gauge",
	    "Messages in the store by channel and status.");
	for (c = 0; c < CHANNEL_COUNT; c++)
		for (s = 0; s < MSG_ST_COUNT; s++) {
			const char *l[] = {"channel", channel_to_text(c),
			    "status", msg_status_to_text(s), NULL};
			metrics_render_sample(out, "outreachd_queue_messages",
			    l, (double)counts[c * MSG_ST_COUNT + s]);
		}
	store_get_stats(api->deps.st, &ss);
	metrics_render_family(out, "outreachd_store_commits_total", "counter",
	    "Group commits of the store.");
	metrics_render_sample(out, "outreachd_store_commits_total", NULL,
	    (double)ss.commits);
	metrics_render_family(out, "outreachd_store_commit_failures_total",
	    "counter", "Group commits that failed and were rolled back.");
	metrics_render_sample(out, "outreachd_store_commit_failures_total",
	    NULL, (double)ss.commit_failures);
	metrics_render_family(out, "outreachd_store_commit_seconds", "summary",
	    "Time spent in COMMIT on the loop thread (includes the fsync "
	    "unless the store is pipelined).");
	metrics_render_sample(out, "outreachd_store_commit_seconds_sum", NULL,
	    (double)ss.commit_us_sum / 1e6);
	metrics_render_sample(out, "outreachd_store_commit_seconds_count", NULL,
	    (double)ss.commits);
	metrics_render_family(out, "outreachd_store_commit_seconds_max",
	    "gauge", "Longest COMMIT so far.");
	metrics_render_sample(out, "outreachd_store_commit_seconds_max", NULL,
	    (double)ss.commit_us_max / 1e6);
	metrics_render_family(out, "outreachd_store_syncs_total", "counter",
	    "WAL fdatasyncs by the syncer thread; a group is acknowledged "
	    "only after one.");
	metrics_render_sample(out, "outreachd_store_syncs_total", NULL,
	    (double)ss.syncs);
	metrics_render_family(out, "outreachd_store_sync_seconds", "summary",
	    "Time spent in fdatasync of the WAL (syncer thread).");
	metrics_render_sample(out, "outreachd_store_sync_seconds_sum", NULL,
	    (double)ss.sync_us_sum / 1e6);
	metrics_render_sample(out, "outreachd_store_sync_seconds_count", NULL,
	    (double)ss.syncs);
	metrics_render_family(out, "outreachd_email_bouncing_members", "gauge",
	    "Members whose address failed permanently [email] "
	    "bounce_limit times: no email goes to them until the "
	    "address changes.");
	metrics_render_sample(out, "outreachd_email_bouncing_members", NULL,
	    (double)bouncing);
	metrics_render_family(out, "outreachd_uptime_seconds", "gauge",
	    "Seconds since the daemon started.");
	metrics_render_sample(out, "outreachd_uptime_seconds", NULL,
	    (double)(msg_now_ms() - api->deps.started_at) / 1000.0);
}

/* Answers a scrape with the store's gauges (NULL counts: 503). */
static void
api_metrics_reply(struct api *api, struct http_req *req, const int64_t *counts,
    int64_t bouncing)
{
	struct evbuffer *out;
	size_t len;
	char *text;

	if (counts == NULL) {
		http_reply_error(req, 503, "unavailable", "store unavailable");
		return;
	}
	if ((out = evbuffer_new()) == NULL)
		fatalx("api_metrics: evbuffer_new failed");
	metrics_render_counters(api->deps.metrics, out);
	api_metrics_gauges(api, out, counts, bouncing);
	if (api->metrics_fn != NULL)
		api->metrics_fn(api->metrics_arg, out);
	len = evbuffer_get_length(out);
	text = (char *)evbuffer_pullup(out, (ev_ssize_t)len);
	http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text,
	    len);
	evbuffer_free(out);
}

/* PostgreSQL: the gauges' read is in; every waiting scrape answers. */
static void
api_gauges_read(void *arg, const int64_t *counts, int64_t bouncing,
    const char *error)
{
	struct api_gauges *g = arg;
	struct api_gauges_wait *w;

	g->reading = false;
	if (g->api == NULL) {
		free(g);
		return;
	}
	(void)error; /* answered 503 "store unavailable", as on SQLite */
	if (counts != NULL) {
		memcpy(g->counts, counts, sizeof(g->counts));
		g->bouncing = bouncing;
		g->read_at = msg_now_ms();
	}
	while ((w = g->waiting) != NULL) {
		g->waiting = w->next;
		api_metrics_reply(g->api, w->req,
		    counts != NULL ? g->counts : NULL, g->bouncing);
		free(w);
	}
}

/* PostgreSQL: from the last read while young enough, else after one. */
static void
api_metrics_pg(struct api *api, struct http_req *req)
{
	struct api_gauges *g = api->gauges;
	struct api_gauges_wait *w;
	char err[256];

	if (g->read_at != 0 && !g->reading &&
	    msg_now_ms() - g->read_at < API_GAUGES_MAX_AGE_MS) {
		api_metrics_reply(api, req, g->counts, g->bouncing);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->req = req;
	w->next = g->waiting;
	g->waiting = w;
	if (g->reading)
		return;
	g->reading = true;
	if (store_metrics_gauges_pg(api->deps.st, api_gauges_read, g, err,
		sizeof(err)) == -1)
		api_gauges_read(g, NULL, 0, err);
}

static void
api_metrics(struct http_req *req, void *arg)
{
	struct api *api = arg;
	int64_t counts[CHANNEL_COUNT][MSG_ST_COUNT], bouncing;
	char err[256];

	if (api->gauges != NULL) {
		api_metrics_pg(api, req);
		return;
	}
	if (queue_count_by_status(api->deps.st, counts, err, sizeof(err)) ==
		-1 ||
	    (bouncing = store_email_bouncing_count(api->deps.st, err,
		 sizeof(err))) == -1) {
		api_metrics_reply(api, req, NULL, 0);
		return;
	}
	api_metrics_reply(api, req, &counts[0][0], bouncing);
}

/*
 * Parses a time given as ISO 8601 UTC ("2026-11-27T10:00:00Z", optional
 * fraction, "Z" or +HH:MM / -HH:MM) or as Unix seconds (a JSON number).
 */
bool
api_read_query(struct http_req *req, struct evkeyvalq *q,
    const char *const *known)
{
	struct evkeyval *kv;
	size_t i;

	TAILQ_INIT(q);
	if (req->query != NULL && evhttp_parse_query_str(req->query, q) != 0) {
		evhttp_clear_headers(q);
		http_reply_error(req, 422, "invalid_request",
		    "query string: cannot be parsed");
		return false;
	}
	TAILQ_FOREACH(kv, q, next) {
		for (i = 0; known[i] != NULL && strcmp(known[i], kv->key); i++)
			;
		if (known[i] == NULL) {
			http_reply_error(req, 422, "invalid_request",
			    "%s: unknown query parameter", kv->key);
			evhttp_clear_headers(q);
			return false;
		}
	}
	return true;
}

int
api_parse_time(const json_t *v, int64_t *ms)
{
	struct tm tm = {0};
	const char *s, *p;
	int oh = 0, om = 0, sign = 1;
	double frac = 0, sec;
	char digits[16]; /* "0." and 9 digits: milliseconds and more */
	size_t n;
	time_t t;

	if (json_is_number(v)) {
		/* Range first: converting a double past int64_t is
		 * undefined (1e300; found by fuzz/fuzz_api_message). */
		sec = json_number_value(v);
		if (!(sec > 0 && sec <= API_TIME_MAX_S))
			return -1;
		*ms = (int64_t)(sec * 1000.0);
		return *ms > 0 ? 0 : -1;
	}
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.') {
		/* Digits only: strtod() would take ".5e3" (500 s) or
		 * ".5e999" (infinity). */
		n = strspn(p + 1, "0123456789");
		if (n == 0)
			return -1;
		snprintf(digits, sizeof(digits), "0.%.*s", (int)(n < 9 ? n : 9),
		    p + 1);
		frac = strtod(digits, NULL);
		p += 1 + n;
	}
	if (*p == 'Z' && p[1] == '\0')
		;
	else if ((*p == '+' || *p == '-') &&
	    sscanf(p + 1, "%2d:%2d", &oh, &om) == 2 && strlen(p) == 6)
		sign = *p == '-' ? -1 : 1;
	else
		return -1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*ms = ((int64_t)t - sign * (oh * 3600 + om * 60)) * 1000 +
	    (int64_t)(frac * 1000.0);
	return 0;
}

/* True for +, a non-zero digit, then 7-14 digits: E.164, 8-15 digits. */
static bool
api_is_e164(const char *s)
{
	size_t n = 0;

	if (*s++ != '+' || *s == '0')
		return false;
	for (; *s != '\0'; s++, n++)
		if (!isdigit((unsigned char)*s))
			return false;
	return n >= 8 && n <= 15;
}

/* True if s holds no control character but tab (UTF-8 passes). */
static bool
api_is_header_text(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return false;
	return true;
}

/*
 * Checks an SMS body and records its encoding and segment count, computed
 * once here (doc/providers.md, SMS text) and shown in the message's JSON.
 */
static int
api_sms_body(struct queue_new *m, char *err, size_t errlen)
{
	struct smstext_info info;

	if (smstext_analyze(m->body, &info) == -1) {
		snprintf(err, errlen, "body: not valid UTF-8");
		return -1;
	}
	if (info.chars > API_SMS_MAX_CHARS ||
	    info.segments > SMSTEXT_MAX_SEGMENTS) {
		snprintf(err, errlen,
		    "body: SMS text is limited to %d "
		    "characters (this one has %u, %u segments)",
		    API_SMS_MAX_CHARS, info.chars, info.segments);
		return -1;
	}
	m->encoding = smstext_encoding_to_text(info.encoding);
	m->segments = info.segments;
	return 0;
}

/* Fetches an optional string field; -1 (with err) if it is not a string. */
static int
api_opt_string(json_t *o, const char *key, const char **out, char *err,
    size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s: must be a string", key);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/*
 * Refuses fields not in the NULL-terminated 'known': a typo must not pass
 * silently. 0, or -1 with "FIELD: unknown field" in err.
 */
int
api_check_fields(json_t *o, const char *const *known, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(o, key, v) {
		for (i = 0; known[i] != NULL && strcmp(known[i], key) != 0; i++)
			;
		if (known[i] == NULL) {
			snprintf(err, errlen, "%s: unknown field", key);
			return -1;
		}
	}
	return 0;
}

/* The SMS-only checks; resolves the sender and the number it sends from. */
static int
api_message_sms(struct api *api, struct queue_new *m, char *err, size_t errlen)
{
	if (!api_is_e164(m->to)) {
		snprintf(err, errlen,
		    "to: not an E.164 phone number (+ and 8-15 digits)");
		return -1;
	}
	if (m->subject != NULL || m->html != NULL) {
		snprintf(err, errlen, "%s: only for email",
		    m->subject != NULL ? "subject" : "html");
		return -1;
	}
	if (api_sms_body(m, err, errlen) == -1)
		return -1;
	if (m->sender == NULL)
		m->sender = dispatch_default_sender(api->deps.dispatch);
	if (m->sender == NULL) {
		snprintf(err, errlen,
		    "sender: no SMS sender is configured ([sender NAME])");
		return -1;
	}
	if (!dispatch_has_sender(api->deps.dispatch, m->sender)) {
		snprintf(err, errlen, "sender: no sender named '%s'",
		    m->sender);
		return -1;
	}
	/* Record the number it will go out from. */
	if (m->from == NULL)
		m->from = dispatch_sender_from(api->deps.dispatch, m->sender);
	return 0;
}

/* The email-only checks. Header fields never carry a line break. */
static int
api_message_email(struct queue_new *m, char *err, size_t errlen)
{
	char why[160];

	/* the rule of email_addr.h, as for members and imports */
	if (email_addr_check(m->to, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "to: not an email address: %s", why);
		return -1;
	}
	if (m->subject == NULL || m->subject[0] == '\0') {
		snprintf(err, errlen, "subject: required for email");
		return -1;
	}
	if (strpbrk(m->subject, "\r\n") != NULL) {
		snprintf(err, errlen, "subject: must not hold a line break");
		return -1;
	}
	if (strlen(m->subject) > API_SUBJECT_MAX) {
		snprintf(err, errlen, "subject: at most %d bytes (%zu given)",
		    API_SUBJECT_MAX, strlen(m->subject));
		return -1;
	}
	if (!api_is_header_text(m->subject)) {
		snprintf(err, errlen,
		    "subject: must not hold control characters (tab aside)");
		return -1;
	}
	if (m->sender != NULL) {
		snprintf(err, errlen, "sender: only for SMS");
		return -1;
	}
	return 0;
}

/* priority, not_before and expires_at (default: now + [dispatch] validity). */
static int
api_message_timing(struct api *api, json_t *o, struct queue_new *m, char *err,
    size_t errlen)
{
	int64_t now = msg_now_ms();
	json_t *v;

	m->priority = MSG_PRIO_DEFAULT;
	if ((v = json_object_get(o, "priority")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > API_PRIO_MAX) {
			snprintf(err, errlen,
			    "priority: an integer from 0 to %d", API_PRIO_MAX);
			return -1;
		}
		m->priority = (int)json_integer_value(v);
	}
	if ((v = json_object_get(o, "not_before")) != NULL &&
	    api_parse_time(v, &m->not_before) == -1) {
		snprintf(err, errlen,
		    "not_before: an ISO 8601 time "
		    "(2026-11-27T10:00:00Z) or Unix seconds");
		return -1;
	}
	m->expires_at = now + (int64_t)api->deps.cfg->validity_s * 1000;
	if ((v = json_object_get(o, "expires_at")) != NULL) {
		if (api_parse_time(v, &m->expires_at) == -1) {
			snprintf(err, errlen,
			    "expires_at: an ISO 8601 time "
			    "(2026-11-27T10:00:00Z) or Unix seconds");
			return -1;
		}
		if (m->expires_at <= now) {
			snprintf(err, errlen, "expires_at: already past");
			return -1;
		}
	}
	return 0;
}

/*
 * Validates a POST /api/v1/messages body into m (strings borrowed from o).
 * Returns 0, or -1 with "field: problem" in err. Exported for
 * fuzz/fuzz_api_message.c.
 */
int
api_message_parse(struct api *api, json_t *o, struct queue_new *m, char *err,
    size_t errlen)
{
	const char *chan = NULL;

	if (api_check_fields(o, api_message_fields, err, errlen) == -1 ||
	    api_opt_string(o, "channel", &chan, err, errlen) == -1 ||
	    api_opt_string(o, "to", &m->to, err, errlen) == -1 ||
	    api_opt_string(o, "body", &m->body, err, errlen) == -1 ||
	    api_opt_string(o, "subject", &m->subject, err, errlen) == -1 ||
	    api_opt_string(o, "html", &m->html, err, errlen) == -1 ||
	    api_opt_string(o, "from", &m->from, err, errlen) == -1 ||
	    api_opt_string(o, "sender", &m->sender, err, errlen) == -1 ||
	    api_opt_string(o, "idempotency_key", &m->idempotency_key, err,
		errlen) == -1)
		return -1;
	if (chan != NULL && channel_parse(chan) == -1) {
		snprintf(err, errlen, "channel: must be \"sms\" or \"email\"");
		return -1;
	}
	m->channel = chan != NULL ? channel_parse(chan) : CHANNEL_SMS;
	if (m->to == NULL || m->body == NULL || m->body[0] == '\0') {
		snprintf(err, errlen, "%s: required",
		    m->to == NULL ? "to" : "body");
		return -1;
	}
	if ((m->channel == CHANNEL_SMS
		    ? api_message_sms(api, m, err, errlen)
		    : api_message_email(m, err, errlen)) == -1)
		return -1;
	if (m->from != NULL &&
	    (strlen(m->from) >= MSG_ADDR_MAX ||
		strpbrk(m->from, "\r\n") != NULL)) {
		snprintf(err, errlen, "from: too long or holds a line break");
		return -1;
	}
	if (m->idempotency_key != NULL &&
	    (m->idempotency_key[0] == '\0' ||
		strlen(m->idempotency_key) > API_KEY_MAX)) {
		snprintf(err, errlen, "idempotency_key: 1 to %d characters",
		    API_KEY_MAX);
		return -1;
	}
	return api_message_timing(api, o, m, err, errlen);
}

static void
api_message_post(struct http_req *req, void *arg)
{
	struct api *api = arg;
	struct queue_new m = {0};
	char err[512];
	json_t *o;

	if (!api_authorized(api, req))
		return;
	if (api->stopping) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	if ((o = api_read_object(req)) == NULL)
		return;
	if (api_message_parse(api, o, &m, err, sizeof(err)) == -1) {
		json_decref(o);
		http_reply_error(req, 422, "invalid_request", "%s", err);
		return;
	}
	req->user = api;
	if (queue_enqueue_durable(api->deps.st, &m, msg_now_ms(),
		api_on_enqueued, req, err, sizeof(err)) == -1) {
		json_decref(o);
		log_warnx("api_enqueue_failed error=\"%s\"", err);
		http_reply_error(req, 503, "unavailable", "store: %s", err);
		return;
	}
	json_decref(o);
	/* SQLite claims in the same group: the row is there already */
	if (store_backend(api->deps.st) == STORE_SQLITE)
		dispatch_kick(api->deps.dispatch);
}

/* The enqueue is durable (or failed): now the client may hear of it. */
static void
api_on_enqueued(void *arg, const struct queue_done *d)
{
	struct http_req *req = arg;
	struct api *api = req->user;
	char loc[64], body[96];
	int n;

	/* PostgreSQL claims committed rows only: from now on */
	if (d->ok && !d->dup && store_backend(api->deps.st) != STORE_SQLITE)
		dispatch_kick(api->deps.dispatch);
	if (!d->ok) {
		if (d->error != NULL)
			log_warnx("api_enqueue_failed error=\"%s\"", d->error);
		http_reply_error(req, 503, "unavailable",
		    "the store could not commit; retry with the same "
		    "idempotency_key");
	} else if (d->dup) {
		http_reply_json(req, 200,
		    json_pack("{s:I, s:s, s:b}", "id", (json_int_t)d->id,
			"status",
			d->status >= 0 ? msg_status_to_text(d->status)
				       : "unknown",
			"duplicate", 1));
	} else {
		/* the hot path: printed as json_dumps() would print it */
		snprintf(loc, sizeof(loc), "/api/v1/messages/%lld",
		    (long long)d->id);
		http_add_header(req, "Location", loc);
		n = snprintf(body, sizeof(body),
		    "{\"id\":%lld,\"status\":\"queued\",\"duplicate\":false}",
		    (long long)d->id);
		http_reply(req, 202, "application/json", body, (size_t)n);
	}
}

static void
api_message_get(struct http_req *req, void *arg)
{
	struct api *api = arg;
	char err[256], *end;
	long long id;

	if (!api_authorized(api, req))
		return;
	id = strtoll(req->params[0], &end, 10);
	if (*end != '\0' || id <= 0) {
		http_reply_error(req, 404, "not_found", "no message '%s'",
		    req->params[0]);
		return;
	}
	if (queue_message_json_async(api->deps.st, id, api_on_message, req, err,
		sizeof(err)) == -1)
		http_reply_error(req, 503, "unavailable", "store: %s", err);
}

/* The message read (or not found, or the store failed). */
static void
api_on_message(void *arg, json_t *o, const char *error)
{
	struct http_req *req = arg;

	if (o != NULL)
		http_reply_json(req, 200, o);
	else if (error != NULL)
		http_reply_error(req, 503, "unavailable", "store: %s", error);
	else
		http_reply_error(req, 404, "not_found", "no message %s",
		    req->params[0]);
}
