/*
 * alerts_api.c - the /api/v1/alerts routes: create and update drafts,
 * preview, schedule, send, pause, resume, cancel, show and list
 * (doc/alerts.md has the request and answer shapes).
 *
 * Everything a person can fix is found before anything is stored and
 * answered 422 naming the field: an unknown list, no channel, an empty
 * audience, a template that does not compile (with line and column), a
 * placeholder without a fallback that audience members lack (with how
 * many), a schedule in the past, a template over 64 KiB. Writes answer
 * once their group committed.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "alerts-internal.h"
#include "api.h"
#include "compat.h"
#include "config.h"
#include "dispatch.h"
#include "http.h"
#include "log.h"
#include "message.h"
#include "queue.h"
#include "quiet.h"
#include "smstext.h"
#include "store.h"
#include "store_members.h"
#include "xmalloc.h"

#define ALERTS_NAME_MAX	   200
#define ALERTS_SUBJECT_MAX 255
#define ALERTS_LISTS_MAX   64
#define ALERTS_TAGS_MAX	   64
#define ALERTS_FIELDS_MAX  16
#define ALERTS_KEY_MAX	   200
/* SMS text limits as for single messages (api.c). */
#define ALERTS_SMS_MAX_CHARS 1600

static void al_collection(struct http_req *, void *);
static void al_store_error(struct http_req *, const char *, const char *);
static void al_item(struct http_req *, void *);
static void al_action(struct http_req *, void *);

void
alerts_api_routes(struct alerts *a, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/alerts", al_collection,
	    a);
	http_route(srv, HTTP_GET | HTTP_PATCH | HTTP_DELETE,
	    "/api/v1/alerts/{id}", al_item, a);
	http_route(srv, HTTP_POST, "/api/v1/alerts/{id}/{action}", al_action,
	    a);
}

/* ---- Validation ---------------------------------------------------------- */

static void
al_input_free(struct al_input *in)
{
	json_decref(in->audience);
	free(in->audience_text);
	free(in->sender);
	memset(in, 0, sizeof(*in));
}

static int
al_opt_string(json_t *o, const char *key, size_t max, const char **out,
    char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0) {
		snprintf(err, errlen, "%s: must be a non-empty string", key);
		return -1;
	}
	if (json_string_length(v) > max) {
		snprintf(err, errlen,
		    "%s: at most %zu bytes (this one has %zu)", key, max,
		    json_string_length(v));
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* "lists": names or ids -> ids that exist. */
static int
al_lists(struct alerts *a, json_t *v, json_t *ids, char *err, size_t errlen)
{
	char serr[256];
	json_t *x;
	size_t i;
	int64_t id;
	bool found;

	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > ALERTS_LISTS_MAX) {
		snprintf(err, errlen,
		    "lists: an array of 1 to %d list names or ids",
		    ALERTS_LISTS_MAX);
		return -1;
	}
	if (store_backend(a->deps.st) == STORE_POSTGRESQL) {
		/* Kept as given: the caller resolves them (alerts_pg.c). */
		json_array_foreach(v, i, x) {
			if ((!json_is_integer(x) ||
				json_integer_value(x) <= 0) &&
			    !json_is_string(x)) {
				snprintf(err, errlen,
				    "lists[%zu]: a list name or id", i);
				return -1;
			}
			json_array_append(ids, x);
		}
		return 0;
	}
	json_array_foreach(v, i, x) {
		if (json_is_integer(x)) {
			struct list_info li;

			id = json_integer_value(x);
			if (store_list_get(a->deps.st, id, &li, &found, serr,
				sizeof(serr)) == -1) {
				snprintf(err, errlen, "store: %s", serr);
				return -1;
			}
			if (found)
				list_info_clear(&li);
		} else if (json_is_string(x)) {
			if (store_list_by_name(a->deps.st, json_string_value(x),
				&id, &found, serr, sizeof(serr)) == -1) {
				snprintf(err, errlen, "store: %s", serr);
				return -1;
			}
		} else {
			snprintf(err, errlen, "lists[%zu]: a list name or id",
			    i);
			return -1;
		}
		if (!found) {
			if (json_is_string(x))
				snprintf(err, errlen,
				    "lists[%zu]: no list named '%.64s'", i,
				    json_string_value(x));
			else
				snprintf(err, errlen,
				    "lists[%zu]: no list %lld", i,
				    (long long)json_integer_value(x));
			return -1;
		}
		json_array_append_new(ids, json_integer(id));
	}
	return 0;
}

static bool
al_is_string_array(json_t *v, size_t max)
{
	json_t *x;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) > max)
		return false;
	json_array_foreach(v, i, x)
		if (!json_is_string(x) || json_string_length(x) == 0)
			return false;
	return true;
}

/* The audience fields of the body into in->audience. */
static int
al_audience(struct alerts *a, json_t *o, struct al_input *in, char *err,
    size_t errlen)
{
	json_t *aud = json_object(), *ids = json_array(), *v, *x;
	const char *k;

	json_object_set_new(aud, "lists", ids);
	in->audience = aud;
	if ((v = json_object_get(o, "lists")) == NULL) {
		snprintf(err, errlen, "lists: required (the lists to reach)");
		return -1;
	}
	if (al_lists(a, v, ids, err, errlen) == -1)
		return -1;
	if ((v = json_object_get(o, "tags")) != NULL && !json_is_null(v)) {
		if (!al_is_string_array(v, ALERTS_TAGS_MAX)) {
			snprintf(err, errlen,
			    "tags: an array of at most %d tags (strings)",
			    ALERTS_TAGS_MAX);
			return -1;
		}
		json_object_set(aud, "tags", v);
	}
	if ((v = json_object_get(o, "fields")) != NULL && !json_is_null(v)) {
		if (!json_is_object(v) ||
		    json_object_size(v) > ALERTS_FIELDS_MAX) {
			snprintf(err, errlen,
			    "fields: an object of at most %d custom fields and "
			    "the values they must equal",
			    ALERTS_FIELDS_MAX);
			return -1;
		}
		json_object_foreach(v, k, x)
			if (!json_is_string(x) && !json_is_number(x)) {
				snprintf(err, errlen,
				    "fields.%.64s: must be a string or a number",
				    k);
				return -1;
			}
		json_object_set(aud, "fields", v);
	}
	if ((v = json_object_get(o, "zip_prefix")) != NULL &&
	    !json_is_null(v)) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > 10) {
			snprintf(err, errlen,
			    "zip_prefix: 1 to 10 characters, e.g. \"021\"");
			return -1;
		}
		json_object_set(aud, "zip_prefix", v);
	}
	if ((v = json_object_get(o, "follow_up")) != NULL && !json_is_null(v)) {
		json_t *al = json_object_get(v, "alert"),
		       *who = json_object_get(v, "who");
		struct alert_row row = {0};
		char serr[256];
		bool found = false;

		if (!json_is_object(v) || !json_is_integer(al) ||
		    !json_is_string(who) ||
		    (strcmp(json_string_value(who), "missed") != 0 &&
			strcmp(json_string_value(who), "no_reply") != 0)) {
			snprintf(err, errlen,
			    "follow_up: {\"alert\": ID, \"who\": \"missed\" "
			    "(failed or expired) or \"no_reply\"}");
			return -1;
		}
		if (store_backend(a->deps.st) == STORE_POSTGRESQL)
			found = true; /* the caller looks (alerts_pg.c) */
		else if (store_alert_load(a->deps.st, json_integer_value(al),
			     &row, &found, serr, sizeof(serr)) == -1) {
			snprintf(err, errlen, "store: %s", serr);
			return -1;
		}
		store_alert_row_free(&row);
		if (!found) {
			snprintf(err, errlen, "follow_up.alert: no alert %lld",
			    (long long)json_integer_value(al));
			return -1;
		}
		json_object_set_new(aud, "follow_up",
		    json_pack("{s:O, s:O}", "alert", al, "who", who));
	}
	in->audience_text = json_dumps(aud, JSON_COMPACT);
	return 0;
}

static int
al_channels(json_t *o, struct alert_def *d, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, "channels"), *x;
	size_t i;

	d->sms = d->email = false;
	if (v == NULL) {
		/* The channels that have templates. */
		d->sms = json_object_get(o, "sms_body") != NULL;
		d->email = json_object_get(o, "email_subject") != NULL ||
		    json_object_get(o, "email_text") != NULL;
	} else if (!json_is_array(v) || json_array_size(v) == 0) {
		snprintf(err, errlen,
		    "channels: [\"sms\"], [\"email\"] or both");
		return -1;
	}
	json_array_foreach(v, i, x) {
		if (json_is_string(x) &&
		    strcmp(json_string_value(x), "sms") == 0)
			d->sms = true;
		else if (json_is_string(x) &&
		    strcmp(json_string_value(x), "email") == 0)
			d->email = true;
		else {
			snprintf(err, errlen,
			    "channels[%zu]: \"sms\" or \"email\"", i);
			return -1;
		}
	}
	if (!d->sms && !d->email) {
		snprintf(err, errlen,
		    "channels: none; give sms_body and/or email_subject and "
		    "email_text");
		return -1;
	}
	if (d->sms && d->sms_body == NULL) {
		snprintf(err, errlen, "sms_body: required for the SMS channel");
		return -1;
	}
	if (d->email && (d->email_subject == NULL || d->email_text == NULL)) {
		snprintf(err, errlen, "%s: required for the email channel",
		    d->email_subject == NULL ? "email_subject" : "email_text");
		return -1;
	}
	return 0;
}

static const char *const al_fields[] = {"name", "lists", "tags", "fields",
    "zip_prefix", "follow_up", "channels", "sender", "sms_body",
    "email_subject", "email_text", "email_html", "urgent", "validity",
    "scheduled_at", "idempotency_key", NULL};

/* Checks a create or update body into *in; -1 with "field: problem". */
static int
al_parse(struct alerts *a, struct http_req *req, json_t *o, struct al_input *in,
    char *err, size_t errlen)
{
	struct alert_def *d = &in->def;
	json_t *v;
	int64_t now = msg_now_ms();

	memset(in, 0, sizeof(*in));
	if (api_check_fields(o, al_fields, err, errlen) == -1)
		return -1;
	if (al_opt_string(o, "name", ALERTS_NAME_MAX, &d->name, err, errlen) ==
		-1 ||
	    al_opt_string(o, "sender", 63, &d->sender, err, errlen) == -1 ||
	    al_opt_string(o, "sms_body", TEMPLATE_MAX_BYTES, &d->sms_body, err,
		errlen) == -1 ||
	    al_opt_string(o, "email_subject", ALERTS_SUBJECT_MAX,
		&d->email_subject, err, errlen) == -1 ||
	    al_opt_string(o, "email_text", TEMPLATE_MAX_BYTES, &d->email_text,
		err, errlen) == -1 ||
	    al_opt_string(o, "email_html", TEMPLATE_MAX_BYTES, &d->email_html,
		err, errlen) == -1 ||
	    al_opt_string(o, "idempotency_key", ALERTS_KEY_MAX, &d->create_key,
		err, errlen) == -1)
		return -1;
	if (d->create_key == NULL)
		d->create_key = http_header(req, "Idempotency-Key");
	if (d->create_key != NULL && strlen(d->create_key) > ALERTS_KEY_MAX) {
		snprintf(err, errlen, "Idempotency-Key: at most %d characters",
		    ALERTS_KEY_MAX);
		return -1;
	}
	if (d->name == NULL) {
		snprintf(err, errlen, "name: required (what staff call it)");
		return -1;
	}
	if (al_channels(o, d, err, errlen) == -1 ||
	    al_audience(a, o, in, err, errlen) == -1)
		return -1;
	d->audience = in->audience_text;
	if ((v = json_object_get(o, "urgent")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(err, errlen, "urgent: true or false");
			return -1;
		}
		d->urgent = json_is_true(v);
	}
	d->validity_s = a->deps.cfg->alerts_validity_s;
	if ((v = json_object_get(o, "validity")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 60 ||
		    json_integer_value(v) > 30 * 86400) {
			snprintf(err, errlen,
			    "validity: seconds, 60 to 2592000 (30 days)");
			return -1;
		}
		d->validity_s = json_integer_value(v);
	}
	if ((v = json_object_get(o, "scheduled_at")) != NULL &&
	    !json_is_null(v)) {
		if (api_parse_time(v, &d->scheduled_at) == -1) {
			snprintf(err, errlen,
			    "scheduled_at: an ISO 8601 time such as "
			    "2026-12-08T15:00:00Z");
			return -1;
		}
		if (d->scheduled_at < now) {
			snprintf(err, errlen,
			    "scheduled_at: in the past; leave it out to send "
			    "when you say send");
			return -1;
		}
	}
	if (d->sms && store_backend(a->deps.st) != STORE_POSTGRESQL) {
		char *s = alerts_sender(a, d->sender, d->audience);

		if (s == NULL) {
			if (d->sender != NULL)
				snprintf(err, errlen,
				    "sender: no SMS sender named '%s'",
				    d->sender);
			else
				snprintf(err, errlen,
				    "sender: no SMS sender is configured "
				    "([sender NAME])");
			return -1;
		}
		in->sender = s;
		d->sender = in->sender;
	}
	return 0;
}

int
alerts_parse_input(struct alerts *a, struct http_req *req, json_t *o,
    struct al_input *in, char *err, size_t errlen)
{
	return al_parse(a, req, o, in, err, errlen);
}

void
alerts_input_free(struct al_input *in)
{
	al_input_free(in);
}

/* ---- Template checks against the audience ------------------------------- */

/* al_check_missing(): some members lack a field; the store failed. */
#define AL_MISSING	  ALERTS_MISSING
#define AL_MISSING_FAILED (-2)

size_t
alerts_needs(const struct alert_tpls *t, struct alerts_need **out)
{
	const struct {
		const char *field;
		const struct template_compiled *t;
		bool sms;
	} parts[] = {{"sms_body", t->sms, true},
	    {"email_subject", t->subject, false},
	    {"email_text", t->text, false}, {"email_html", t->html, false}};
	const struct template_need *needs;
	struct alerts_need *v = NULL;
	size_t i, j, n, count = 0;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (parts[i].t == NULL)
			continue;
		n = template_fields_needed(parts[i].t, &needs);
		v = xreallocarray(v, count + n + 1, sizeof(*v));
		for (j = 0; j < n; j++)
			v[count++] = (struct alerts_need){parts[i].field,
			    parts[i].sms,
			    {needs[j].field == TEMPLATE_F_ATTR
				    ? NULL
				    : template_field_to_text(needs[j].field),
				needs[j].attr}};
	}
	*out = v;
	return count;
}

int
alerts_missing_report(const struct alerts_need *needs, size_t n,
    const int64_t *counts, json_t *report, char *err, size_t errlen)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		const char *fname = needs[i].f.column;
		const char *name = fname != NULL ? fname : needs[i].f.attr;
		int64_t count = counts[i];

		if (count == 0)
			continue;
		if (report != NULL)
			json_array_append_new(report,
			    json_pack("{s:s, s:s, s:I}", "template",
				needs[i].template, "field", name, "members",
				(json_int_t)count));
		if (rc == 0)
			snprintf(err, errlen,
			    "%s: %lld member%s of the audience ha%s no "
			    "%s%s; give a fallback such as "
			    "{{%s%s|friend}}",
			    needs[i].template, (long long)count,
			    count == 1 ? "" : "s", count == 1 ? "s" : "ve",
			    fname != NULL ? "" : "attr.", name,
			    fname != NULL ? "" : "attr.", name);
		rc = AL_MISSING;
	}
	return rc;
}

/*
 * The placeholders without fallback that reached members lack, each with
 * its count appended to 'report' (may be NULL). Returns 0 when no member
 * lacks one; AL_MISSING with "field: N members ... have no first_name"
 * for the first in err; AL_MISSING_FAILED with the store's error in err.
 */
static int
al_check_missing(struct alerts *a, const struct alert_def *d,
    const struct alert_tpls *t, json_t *report, char *err, size_t errlen)
{
	struct alert_walk w = {.audience = d->audience};
	struct alerts_need *needs;
	int64_t *counts;
	char serr[256];
	size_t i, n = alerts_needs(t, &needs);
	int rc = 0;

	counts = xcalloc(n + 1, sizeof(*counts));
	for (i = 0; i < n; i++) {
		w.sms = needs[i].sms;
		w.email = !needs[i].sms;
		if ((counts[i] = store_alert_missing(a->deps.st, &w,
			 &needs[i].f, serr, sizeof(serr))) == -1) {
			snprintf(err, errlen, "store: %s", serr);
			rc = AL_MISSING_FAILED;
			break;
		}
	}
	if (rc == 0)
		rc = alerts_missing_report(needs, n, counts, report, err,
		    errlen);
	free(counts);
	free(needs);
	return rc;
}

bool
alerts_reaches_nobody(const struct alert_def *d, const struct alert_reach *r,
    char *err, size_t errlen)
{
	if (r->sms + r->email != 0)
		return false;
	snprintf(err, errlen,
	    "lists: the audience reaches nobody on %s (%lld subscribed: %lld "
	    "opted out of SMS, %lld of email, %lld bouncing, %lld "
	    "unconfirmed)",
	    d->sms && d->email ? "SMS or email"
		: d->sms       ? "SMS"
			       : "email",
	    (long long)r->matched, (long long)r->sms_opted_out,
	    (long long)r->email_opted_out, (long long)r->email_bouncing,
	    (long long)r->unconfirmed);
	return true;
}

/*
 * Compiles d's templates and checks them and the audience: one that
 * reaches nobody, or placeholders some of it cannot fill. 0, or -1 after
 * answering (422 or 503).
 */
static int
al_check_templates(struct alerts *a, struct http_req *req,
    const struct alert_def *d, struct alert_tpls *t)
{
	struct alert_walk w = {.audience = d->audience,
	    .sms = d->sms,
	    .email = d->email};
	struct alert_reach reach;
	struct alert_problem p;
	char err[512];
	int rc;

	if (store_alert_reach(a->deps.st, &w, &reach, err, sizeof(err)) == -1) {
		al_store_error(req, "audience", err);
		return -1;
	}
	if (alerts_reaches_nobody(d, &reach, err, sizeof(err))) {
		http_reply_error(req, 422, "invalid_request", "%s", err);
		return -1;
	}

	if (alerts_compile(&ALERT_TEXTS_OF(*d), t, &p) == -1) {
		http_reply_error(req, 422, "invalid_request",
		    "%s: line %u column %u: %s", p.field, p.err.line,
		    p.err.column, p.err.message);
		return -1;
	}
	if ((rc = al_check_missing(a, d, t, NULL, err, sizeof(err))) != 0) {
		alerts_tpls_free(t);
		if (rc == AL_MISSING_FAILED)
			http_reply_error(req, 503, "unavailable", "%s", err);
		else
			http_reply_error(req, 422, "invalid_request", "%s",
			    err);
		return -1;
	}
	return 0;
}

static int
al_first_member(void *arg, const struct alert_member *m, char *err,
    size_t errlen)
{
	(void)arg;
	(void)m;
	(void)err;
	(void)errlen;
	return 0;
}

/*
 * Before a send or a schedule: the templates compile and the audience
 * reaches somebody. The members' fields were checked against the audience
 * when the draft was made or changed (al_check_templates()); counting
 * again here would hold the loop for seconds on a large audience, and a
 * member who joined since without a field still never gets a blank: that
 * message fails, saying which field was missing. 0, or -1 after
 * answering.
 */
static int
al_check_quick(struct alerts *a, struct http_req *req,
    const struct alert_row *row)
{
	const struct alert_visitor v = {al_first_member, NULL};
	struct alert_walk w = {.audience = row->audience,
	    .sms = row->sms,
	    .email = row->email,
	    .limit = 1};
	struct alert_problem p;
	struct alert_cursor cur;
	struct alert_tpls t;
	char err[256];
	ssize_t n;

	if (alerts_compile(&ALERT_TEXTS_OF(*row), &t, &p) == -1) {
		http_reply_error(req, 422, "invalid_request",
		    "%s: line %u column %u: %s", p.field, p.err.line,
		    p.err.column, p.err.message);
		return -1;
	}
	alerts_tpls_free(&t);
	if ((n = store_alert_walk(a->deps.st, &w, &v, &cur, err,
		 sizeof(err))) == -1) {
		al_store_error(req, "audience", err);
		return -1;
	}
	if (n == 0) {
		http_reply_error(req, 422, "invalid_request",
		    "lists: the audience reaches nobody now (opted out, "
		    "unconfirmed, bouncing or unsubscribed since it was made)");
		return -1;
	}
	return 0;
}

/* ---- Answers ------------------------------------------------------------- */

static int64_t
al_id(struct http_req *req)
{
	char *end;
	long long id = strtoll(req->params[0], &end, 10);

	return *end == '\0' && id > 0 ? id : 0;
}

/* The alert as the API shows it: the row, its counts and rates. */
static json_t *
al_json(struct alerts *a, int64_t id, char *err, size_t errlen)
{
	json_t *o, *counts;
	struct alert_guard g;
	struct alert_run *r;

	if ((o = store_alert_json(a->deps.st, id, err, errlen)) == NULL)
		return NULL;
	if ((counts = alerts_counts(a, id, &g, err, errlen)) == NULL) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "counts", counts);
	json_object_set_new(o, "caused",
	    json_pack("{s:I, s:I}", "optouts", (json_int_t)g.optouts, "replies",
		(json_int_t)g.replies));
	if ((r = alerts_run_find(a, id)) != NULL)
		json_object_set_new(o, "rate", json_real(r->rate));
	return o;
}

/* Answers alert 'id' with 'code' once the open group committed. */
struct al_pending {
	struct alerts *a;
	struct http_req *req;
	int64_t id;
	int code;
	json_t *extra;
};

static void
al_on_commit(void *arg, bool ok)
{
	struct al_pending *p = arg;
	char err[256] = "", loc[64];
	json_t *o;

	if (!ok)
		http_reply_error(p->req, 503, "unavailable",
		    "the store could not commit; nothing was saved, retry "
		    "with the same Idempotency-Key");
	else if ((o = al_json(p->a, p->id, err, sizeof(err))) == NULL)
		http_reply_error(p->req, 503, "unavailable", "store: %s",
		    err[0] ? err : "alert vanished");
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
	json_decref(p->extra);
	free(p);
}

static void
al_reply_after_commit(struct alerts *a, struct http_req *req, int64_t id,
    int code, json_t *extra)
{
	struct al_pending *p = xcalloc(1, sizeof(*p));

	p->a = a;
	p->req = req;
	p->id = id;
	p->code = code;
	p->extra = extra;
	store_on_commit(a->deps.st, al_on_commit, p);
}

static void
al_store_error(struct http_req *req, const char *what, const char *err)
{
	log_warnx("alerts_store_failed what=%s error=\"%s\"", what, err);
	http_reply_error(req, 503, "unavailable", "store: %s", err);
}

/* ---- POST /api/v1/alerts, GET /api/v1/alerts ----------------------------- */

static void
al_create(struct alerts *a, struct http_req *req)
{
	struct al_input in;
	struct alert_tpls t;
	char err[512];
	json_t *o;
	int64_t id;
	bool dup;

	if ((o = api_read_object(req)) == NULL)
		return;
	if (al_parse(a, req, o, &in, err, sizeof(err)) == -1) {
		http_reply_error(req, 422, "invalid_request", "%s", err);
		goto done;
	}
	if (al_check_templates(a, req, &in.def, &t) == -1)
		goto done;
	alerts_tpls_free(&t);
	if ((id = store_alert_create(a->deps.st, &in.def, msg_now_ms(), &dup,
		 err, sizeof(err))) == -1) {
		al_store_error(req, "create", err);
		goto done;
	}
	al_reply_after_commit(a, req, id, dup ? 200 : 201,
	    json_pack("{s:b}", "duplicate", dup));
done:
	al_input_free(&in);
	json_decref(o);
}

bool
alerts_page_parse(struct http_req *req, struct alerts_page_q *pq)
{
	static const char *const known[] = {"status", "before", "limit", NULL};
	struct evkeyvalq q;
	const char *v;
	enum alert_status s;
	bool ok = false;

	pq->status = NULL;
	pq->before = 0;
	pq->limit = 50;
	if (!api_read_query(req, &q, known))
		return false;
	if ((v = evhttp_find_header(&q, "status")) != NULL) {
		if (alert_status_parse(v, &s) == -1) {
			http_reply_error(req, 422, "invalid_request",
			    "status: one of draft, scheduled, sending, paused, "
			    "done, cancelled");
			goto done;
		}
		pq->status = alert_status_name(s);
	}
	if ((v = evhttp_find_header(&q, "before")) != NULL)
		pq->before = strtoll(v, NULL, 10);
	if ((v = evhttp_find_header(&q, "limit")) != NULL)
		pq->limit = strtoll(v, NULL, 10);
	if (pq->limit < 1 || pq->limit > ALERTS_PAGE_MAX || pq->before < 0) {
		http_reply_error(req, 422, "invalid_request",
		    "limit: 1 to %d; before: an alert id", ALERTS_PAGE_MAX);
		goto done;
	}
	ok = true;
done:
	evhttp_clear_headers(&q);
	return ok;
}

static void
al_list(struct alerts *a, struct http_req *req)
{
	struct alerts_page_q pq;
	char err[256] = "";
	json_t *arr, *last;

	if (!alerts_page_parse(req, &pq))
		return;
	if ((arr = store_alert_list(a->deps.st, pq.before, (size_t)pq.limit,
		 pq.status, err, sizeof(err))) == NULL) {
		al_store_error(req, "list", err);
		return;
	}
	last = json_array_get(arr, json_array_size(arr) - 1);
	http_reply_json(req, 200,
	    json_pack("{s:o, s:o}", "alerts", arr, "next",
		json_array_size(arr) == (size_t)pq.limit && last != NULL
		    ? json_integer(
			  json_integer_value(json_object_get(last, "id")))
		    : json_null()));
}

static void
al_collection(struct http_req *req, void *arg)
{
	struct alerts *a = arg;

	if (!api_authorized(a->deps.api, req))
		return;
	if (req->method == HTTP_GET) {
		al_list(a, req);
		return;
	}
	if (api_is_stopping(a->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	al_create(a, req);
}

/* ---- /api/v1/alerts/{id} ------------------------------------------------- */

static void
al_item(struct http_req *req, void *arg)
{
	struct alerts *a = arg;
	int64_t id = al_id(req);
	struct al_input in;
	struct alert_tpls t;
	char err[512] = "";
	bool found = false;
	int rc;
	json_t *o;

	if (!api_authorized(a->deps.api, req))
		return;
	if (id == 0) {
		http_reply_error(req, 404, "not_found", "no alert '%s'",
		    req->params[0]);
		return;
	}
	if (req->method == HTTP_GET) {
		if ((o = al_json(a, id, err, sizeof(err))) == NULL) {
			if (err[0] != '\0')
				al_store_error(req, "get", err);
			else
				http_reply_error(req, 404, "not_found",
				    "no alert %lld", (long long)id);
			return;
		}
		http_reply_json(req, 200, o);
		return;
	}
	if (api_is_stopping(a->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	if (req->method == HTTP_DELETE) {
		if (store_alert_delete(a->deps.st, id, &found, err,
			sizeof(err)) == -1) {
			al_store_error(req, "delete", err);
			return;
		}
		if (!found) {
			http_reply_error(req, 409, "conflict",
			    "alert %lld is not a draft (or does not exist); "
			    "cancel it instead",
			    (long long)id);
			return;
		}
		http_reply(req, 204, NULL, NULL, 0);
		return;
	}
	/* PATCH: a draft's whole definition again. */
	if ((o = api_read_object(req)) == NULL)
		return;
	if (al_parse(a, req, o, &in, err, sizeof(err)) == -1) {
		http_reply_error(req, 422, "invalid_request", "%s", err);
		goto done;
	}
	if (al_check_templates(a, req, &in.def, &t) == -1)
		goto done;
	alerts_tpls_free(&t);
	if ((rc = store_alert_update(a->deps.st, id, &in.def, msg_now_ms(), err,
		 sizeof(err))) == -1) {
		al_store_error(req, "update", err);
		goto done;
	}
	if (rc == 0) {
		http_reply_error(req, 409, "conflict",
		    "alert %lld is not a draft (or does not exist): only "
		    "drafts can be changed",
		    (long long)id);
		goto done;
	}
	al_reply_after_commit(a, req, id, 200, NULL);
done:
	al_input_free(&in);
	json_decref(o);
}

/* ---- Preview ------------------------------------------------------------- */

/* The members whose longest values the preview renders (SMS only). */
const struct alert_field alerts_preview_fields[ALERTS_PREVIEW_FIELDS] = {
    {"first_name", NULL}, {"last_name", NULL}, {"email", NULL}, {"phone", NULL},
    {"zip", NULL}};

/* Notes each non-GSM-7 character of s (UTF-8) with its replacement. */
static void
al_preview_ucs2(struct alerts_preview *pv, const char *s)
{
	char ch[8], *rep;
	size_t n;

	while (*s != '\0') {
		unsigned char c = (unsigned char)*s;

		n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (strnlen(s, n) < n)
			break;
		memcpy(ch, s, n);
		ch[n] = '\0';
		s += n;
		if (smstext_is_gsm7(ch) || json_object_get(pv->ucs2, ch))
			continue;
		rep = smstext_smart(ch);
		json_object_set_new(pv->ucs2, ch,
		    rep != NULL && strcmp(rep, ch) != 0 && smstext_is_gsm7(rep)
			? json_string(rep)
			: json_null());
		free(rep);
	}
}

void
alerts_preview_init(struct alerts_preview *pv, struct alerts *a,
    const struct alert_row *row, const struct alert_tpls *t)
{
	memset(pv, 0, sizeof(*pv));
	pv->a = a;
	pv->row = row;
	pv->t = t;
	pv->now = msg_now_ms();
	pv->buf = evbuffer_new();
	pv->samples = json_array();
	pv->email_samples = json_array();
	pv->ucs2 = json_object();
}

void
alerts_preview_free(struct alerts_preview *pv)
{
	json_decref(pv->samples);
	json_decref(pv->email_samples);
	json_decref(pv->ucs2);
	if (pv->buf != NULL)
		evbuffer_free(pv->buf);
	memset(pv, 0, sizeof(*pv));
}

int
alerts_preview_member(void *arg, const struct alert_member *m, char *err,
    size_t errlen)
{
	struct alerts_preview *pv = arg;
	struct template_member_view v;
	struct alerts_view_ctx ctx;
	struct template_error te;
	struct smstext_info info;
	char *text;
	size_t len;

	(void)err;
	(void)errlen;
	for (size_t i = 0; i < pv->nseen; i++)
		if (pv->seen[i] == m->id)
			return 0;
	if (pv->nseen < sizeof(pv->seen) / sizeof(pv->seen[0]))
		pv->seen[pv->nseen++] = m->id;
	alerts_member_view(m, &ctx, &v);
	if (m->phone != NULL && pv->t->sms != NULL) {
		char *raw;

		text = alerts_render(pv->buf, pv->t->sms, &v, true, &raw, &te);
		if (text != NULL) {
			/* What forced UCS-2, and what replaced it. */
			if (raw != NULL || !smstext_is_gsm7(text))
				al_preview_ucs2(pv, raw != NULL ? raw : text);
			if (smstext_analyze(text, &info) == 0) {
				if (info.chars > pv->max_chars)
					pv->max_chars = info.chars;
				if (info.segments > pv->max_segments)
					pv->max_segments = info.segments;
				if (info.encoding != SMSTEXT_GSM7)
					pv->any_ucs2 = true;
			}
			if (json_array_size(pv->samples) < ALERTS_SAMPLES)
				json_array_append_new(pv->samples,
				    json_pack("{s:I, s:s}", "member",
					(json_int_t)m->id, "text", text));
			free(text);
			free(raw);
		}
		if (!pv->row->urgent) {
			pv->looked++;
			if (alerts_sms_not_before(pv->a, m, pv->now, NULL) !=
			    pv->now)
				pv->outside++;
		}
	}
	if (m->email != NULL && pv->t->subject != NULL &&
	    json_array_size(pv->email_samples) < ALERTS_SAMPLES) {
		json_t *s = json_object();
		const struct template_compiled *parts[] = {pv->t->subject,
		    pv->t->text, pv->t->html};
		const char *names[] = {"subject", "text", "html"};

		for (size_t i = 0; i < 3; i++) {
			if (parts[i] == NULL)
				continue;
			evbuffer_drain(pv->buf, evbuffer_get_length(pv->buf));
			if (template_render(parts[i], &v, pv->buf, &te) == -1)
				continue;
			len = evbuffer_get_length(pv->buf);
			json_object_set_new(s, names[i],
			    json_stringn((const char *)evbuffer_pullup(pv->buf,
					     (ev_ssize_t)len),
				len));
		}
		json_object_set_new(s, "member", json_integer(m->id));
		json_array_append_new(pv->email_samples, s);
	}
	alerts_view_done(&ctx);
	return 0;
}

/* Case-insensitive "does text contain word". */
static bool
al_mentions(const char *text, const char *word)
{
	return text != NULL && word != NULL && strcasestr(text, word) != NULL;
}

json_t *
alerts_preview_json(struct alerts_preview *pv, const struct alert_reach *reach,
    json_t *missing)
{
	const struct config *cfg = pv->a->deps.cfg;
	const struct alert_row *row = pv->row;
	const struct config_sender *snd;
	json_t *o, *warnings = json_array();
	double secs = 0;
	char window[32];

	if (pv->t->sms != NULL) {
		if (!al_mentions(row->sms_body, "STOP"))
			json_array_append_new(warnings,
			    json_string("sms_body: no opt-out wording; add "
					"\"Reply STOP to opt out\""));
		if (cfg->program != NULL &&
		    !al_mentions(row->sms_body, cfg->program))
			json_array_append_new(warnings,
			    json_sprintf("sms_body: does not name the "
					 "program (\"%s\")",
				cfg->program));
		if (reach->sms > 0 && row->sender != NULL &&
		    (snd = config_sender_lookup(cfg, row->sender)) != NULL &&
		    snd->rate > 0)
			secs = (double)reach->sms / snd->rate;
	}
	if (row->urgent)
		snprintf(window, sizeof(window), "urgent: not held");
	else
		snprintf(window, sizeof(window), "%02u:%02u-%02u:%02u",
		    cfg->quiet_start_min / 60, cfg->quiet_start_min % 60,
		    cfg->quiet_end_min / 60, cfg->quiet_end_min % 60);
	if (reach->sms + reach->email == 0)
		json_array_append_new(warnings,
		    json_string("the audience reaches nobody"));
	o = json_pack("{s:I, s:{s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}},"
		      " s:o, s:o}",
	    "alert", (json_int_t)row->id, "audience", "matched",
	    (json_int_t)reach->matched, "sms", (json_int_t)reach->sms, "email",
	    (json_int_t)reach->email, "both", (json_int_t)reach->both,
	    "excluded", "sms_opted_out", (json_int_t)reach->sms_opted_out,
	    "email_opted_out", (json_int_t)reach->email_opted_out,
	    "email_bouncing", (json_int_t)reach->email_bouncing, "unconfirmed",
	    (json_int_t)reach->unconfirmed, "missing_fields", missing,
	    "warnings", warnings);
	if (pv->t->sms != NULL)
		json_object_set_new(o, "sms",
		    json_pack("{s:O, s:s, s:I, s:I, s:O, s:I, s:s, s:f, s:{s:s,"
			      " s:I, s:I}}",
			"samples", pv->samples, "encoding",
			pv->any_ucs2 ? "ucs2" : "gsm7", "segments",
			(json_int_t)pv->max_segments, "chars",
			(json_int_t)pv->max_chars, "ucs2_characters", pv->ucs2,
			"total_segments",
			(json_int_t)(reach->sms * (int64_t)pv->max_segments),
			"sender", row->sender != NULL ? row->sender : "",
			"duration_s", secs, "quiet_hours", "window", window,
			"outside_now", (json_int_t)pv->outside, "sampled",
			(json_int_t)pv->looked));
	if (pv->t->subject != NULL)
		json_object_set_new(o, "email",
		    json_pack("{s:O}", "samples", pv->email_samples));
	return o;
}

static void
al_preview(struct alerts *a, struct http_req *req, int64_t id)
{
	struct alert_row row;
	struct alert_tpls t;
	struct alert_reach reach;
	struct alert_walk w;
	struct alerts_preview pv;
	const struct alert_visitor v = {alerts_preview_member, &pv};
	struct alert_cursor cur;
	char serr[256] = "";
	bool found;
	json_t *missing;
	size_t i;

	if (store_alert_load(a->deps.st, id, &row, &found, serr,
		sizeof(serr)) == -1) {
		al_store_error(req, "preview", serr);
		return;
	}
	if (!found) {
		http_reply_error(req, 404, "not_found", "no alert %lld",
		    (long long)id);
		return;
	}
	{
		struct alert_problem p;

		if (alerts_compile(&ALERT_TEXTS_OF(row), &t, &p) == -1) {
			http_reply_error(req, 422, "invalid_request",
			    "%s: line %u column %u: %s", p.field, p.err.line,
			    p.err.column, p.err.message);
			store_alert_row_free(&row);
			return;
		}
	}
	w = (struct alert_walk){.audience = row.audience,
	    .sms = row.sms,
	    .email = row.email};
	if (store_alert_reach(a->deps.st, &w, &reach, serr, sizeof(serr)) ==
	    -1) {
		al_store_error(req, "preview", serr);
		goto done;
	}
	alerts_preview_init(&pv, a, &row, &t);
	/* The first members, then those with the longest value of each
	 * field the SMS uses: the longest renderings. */
	w.limit = ALERTS_PREVIEW_WALK;
	if (store_alert_walk(a->deps.st, &w, &v, &cur, serr, sizeof(serr)) ==
	    -1)
		goto preview_failed;
	if (t.sms != NULL) {
		w.email = false;
		w.limit = ALERTS_PREVIEW_LONGEST;
		for (i = 0; i < ALERTS_PREVIEW_FIELDS; i++)
			if (store_alert_longest(a->deps.st, &w,
				&alerts_preview_fields[i], &v, serr,
				sizeof(serr)) == -1)
				goto preview_failed;
		w.email = row.email;
		w.limit = 0;
	}
	missing = json_array();
	if (al_check_missing(a,
		&(struct alert_def){.audience = row.audience,
		    .sms = row.sms,
		    .email = row.email},
		&t, missing, serr, sizeof(serr)) == AL_MISSING_FAILED) {
		json_decref(missing);
		goto preview_failed;
	}
	http_reply_json(req, 200, alerts_preview_json(&pv, &reach, missing));
	goto preview_done;
preview_failed:
	al_store_error(req, "preview", serr);
preview_done:
	alerts_preview_free(&pv);
done:
	alerts_tpls_free(&t);
	store_alert_row_free(&row);
}

/* ---- Actions ------------------------------------------------------------- */

/*
 * The writes of an action on the alert 'row' (as loaded): a schedule's
 * time, the transition t, holding (pause) or releasing (resume) its
 * queued messages, the send's Idempotency-Key 'key' (may be NULL), and
 * for cancel its queued messages cancelled. 0 or -1.
 */
static int
al_apply(struct alerts *a, const struct alert_transition *t,
    const struct alert_row *row, const char *key, char *err, size_t errlen)
{
	int64_t id = row->id;
	struct store *st = a->deps.st;
	int moved;
	ssize_t n;

	if (t->to == ALERT_SCHEDULED && row->started_at == 0 &&
	    store_alert_schedule(st, id, row->scheduled_at, err, errlen) == -1)
		return -1;
	if ((moved = store_alert_transition(st, id, t, err, errlen)) == -1)
		return -1;
	if (t->to == ALERT_PAUSED &&
	    store_alert_hold(st, id, true, t->now, err, errlen) == -1)
		return -1;
	if (row->status == ALERT_PAUSED &&
	    (t->to == ALERT_SENDING || t->to == ALERT_SCHEDULED) &&
	    store_alert_hold(st, id, false, t->now, err, errlen) == -1)
		return -1;
	if (moved && t->to == ALERT_SENDING && key != NULL &&
	    store_alert_send_key(st, id, key, true, err, errlen) == -1)
		return -1;
	if (t->to == ALERT_CANCELLED) {
		do
			n = queue_cancel_alert(st, id, t->now, err, errlen);
		while (n > 0);
		if (n == -1)
			return -1;
	}
	return 0;
}

/*
 * send: draft or scheduled -> sending (after the template check against
 * today's audience); schedule: draft -> scheduled; pause, resume, cancel.
 */
static void
al_action(struct http_req *req, void *arg)
{
	struct alerts *a = arg;
	int64_t id = al_id(req), now = msg_now_ms(), dup_id = 0;
	const char *action = req->params[1], *key = NULL;
	struct alert_row row;
	char err[512];
	bool found;
	unsigned from;
	enum alert_status to;
	json_t *o = NULL, *v;

	if (!api_authorized(a->deps.api, req))
		return;
	if (id == 0) {
		http_reply_error(req, 404, "not_found", "no alert '%s'",
		    req->params[0]);
		return;
	}
	if (strcmp(action, "preview") == 0) {
		al_preview(a, req, id);
		return;
	}
	if (api_is_stopping(a->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	if (store_alert_load(a->deps.st, id, &row, &found, err, sizeof(err)) ==
	    -1) {
		al_store_error(req, action, err);
		return;
	}
	if (!found) {
		http_reply_error(req, 404, "not_found", "no alert %lld",
		    (long long)id);
		return;
	}
	if (strcmp(action, "send") == 0) {
		from = 1u << ALERT_DRAFT | 1u << ALERT_SCHEDULED;
		to = ALERT_SENDING;
		key = http_header(req, "Idempotency-Key");
		if (key == NULL && req->body_len > 0) {
			/* or in the body, as create takes it */
			if ((o = api_read_object(req)) == NULL)
				goto done;
			v = json_object_get(o, "idempotency_key");
			if (v != NULL && !json_is_string(v)) {
				http_reply_error(req, 422, "invalid_request",
				    "idempotency_key: must be a string");
				goto done;
			}
			key = json_string_value(v);
		}
		if (key != NULL) {
			if (strlen(key) > ALERTS_KEY_MAX) {
				http_reply_error(req, 422, "invalid_request",
				    "Idempotency-Key: at most %d characters",
				    ALERTS_KEY_MAX);
				goto done;
			}
			if ((dup_id = store_alert_send_key(a->deps.st, id, key,
				 false, err, sizeof(err))) == -1) {
				al_store_error(req, action, err);
				goto done;
			}
			if (dup_id == id) {
				/* A retry: the send already happened. */
				al_reply_after_commit(a, req, id, 200,
				    json_pack("{s:b}", "duplicate", 1));
				goto done;
			}
			if (dup_id != 0) {
				http_reply_error(req, 422, "invalid_request",
				    "Idempotency-Key: already used to send "
				    "alert %lld; use a new key for this one",
				    (long long)dup_id);
				goto done;
			}
		}
	} else if (strcmp(action, "schedule") == 0) {
		from = 1u << ALERT_DRAFT;
		to = ALERT_SCHEDULED;
	} else if (strcmp(action, "pause") == 0) {
		from = 1u << ALERT_SCHEDULED | 1u << ALERT_SENDING;
		to = ALERT_PAUSED;
	} else if (strcmp(action, "resume") == 0) {
		from = 1u << ALERT_PAUSED;
		/* back to what it was doing; a schedule whose time passed
		 * while it was paused sends now */
		to = row.started_at != 0 || row.scheduled_at <= now
		    ? ALERT_SENDING
		    : ALERT_SCHEDULED;
	} else if (strcmp(action, "cancel") == 0) {
		from = 1u << ALERT_DRAFT | 1u << ALERT_SCHEDULED |
		    1u << ALERT_SENDING | 1u << ALERT_PAUSED;
		to = ALERT_CANCELLED;
	} else {
		http_reply_error(req, 404, "not_found",
		    "no action '%.32s' (preview, schedule, send, pause, "
		    "resume, cancel)",
		    action);
		goto done;
	}
	if ((from & (1u << row.status)) == 0) {
		http_reply_error(req, 409, "conflict",
		    "alert %lld is %s: it cannot %s", (long long)id,
		    alert_status_name(row.status), action);
		goto done;
	}
	if (to == ALERT_SCHEDULED && row.started_at == 0) {
		if (strcmp(action, "schedule") == 0) {
			if ((o = api_read_object(req)) == NULL)
				goto done;
			v = json_object_get(o, "at");
			if (v != NULL &&
			    api_parse_time(v, &row.scheduled_at) == -1) {
				http_reply_error(req, 422, "invalid_request",
				    "at: an ISO 8601 time such as "
				    "2026-12-08T15:00:00Z");
				goto done;
			}
		}
		if (row.scheduled_at == 0 || row.scheduled_at < now) {
			http_reply_error(req, 422, "invalid_request", "at: %s",
			    row.scheduled_at == 0
				? "required (when to send)"
				: "in the past; send it now instead");
			goto done;
		}
	}
	if ((to == ALERT_SENDING || to == ALERT_SCHEDULED) &&
	    al_check_quick(a, req, &row) == -1)
		goto done;
	/* The writes of one action stand or fall together. */
	if (al_apply(a,
		&(struct alert_transition){from, to, "paused by staff", now},
		&row, key, err, sizeof(err)) == -1) {
		store_abort_group(a->deps.st);
		al_store_error(req, action, err);
		goto done;
	}
	log_info("alert_%s_requested alert=%lld", action, (long long)id);
	if (to == ALERT_SENDING && row.urgent)
		log_info("alert_urgent alert=%lld quiet_hours=overridden",
		    (long long)id);
	alerts_changed(a, id);
	if (strcmp(action, "resume") == 0)
		dispatch_kick(
		    a->deps.dispatch); /* its messages are due again */
	al_reply_after_commit(a, req, id, 200, NULL);
done:
	json_decref(o);
	store_alert_row_free(&row);
}
