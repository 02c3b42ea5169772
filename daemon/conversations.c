/*
 * conversations.c - the /api/v1/conversations routes: the inbox listing
 * with its filters and full-text search, a thread, assign and release,
 * close, reopen, read and notes; and the observer that turns each state
 * change of a conversation message into a "message" event. Replies and
 * saved replies are in conversations_reply.c.
 *
 * As elsewhere in the API, every handler checks its whole input before
 * it touches the store and names the field at fault (422 "invalid"); a
 * write answers from its group's commit callback; a conversation that
 * does not exist is 404.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "api.h"
#include "config.h"
#include "conversations-internal.h"
#include "events.h"
#include "http.h"
#include "log.h"
#include "message.h"
#include "queue.h"
#include "store.h"
#include "store_conversations.h"
#include "xmalloc.h"

#define CV_PAGE_DEFAULT 50

/* A write waiting for its commit (cv_commit()). */
struct cv_waiting {
	struct conversations *cv;
	struct http_req *req;
	struct cv_pending p;
};

static void cv_collection(struct http_req *, void *);
static void cv_item(struct http_req *, void *);
static void cv_action(struct http_req *, void *);
static void cv_on_commit(void *, bool);
static void cv_observe(void *, const struct queue_change *);

struct conversations *
conversations_new(struct http_server *srv,
    const struct conversations_deps *deps)
{
	struct conversations *cv = xcalloc(1, sizeof(*cv));

	cv->deps = *deps;
	if (store_backend(deps->st) != STORE_SQLITE) {
		cv_pg_routes(srv, cv); /* conversations_pg.c */
		return cv;
	}
	http_route(srv, HTTP_GET, "/api/v1/conversations", cv_collection, cv);
	http_route(srv, HTTP_GET, "/api/v1/conversations/{id}", cv_item, cv);
	http_route(srv, HTTP_POST, "/api/v1/conversations/{id}/{action}",
	    cv_action, cv);
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/saved-replies",
	    cv_saved_replies, cv);
	http_route(srv, HTTP_GET | HTTP_PATCH | HTTP_DELETE,
	    "/api/v1/saved-replies/{id}", cv_saved_reply, cv);
	if (deps->events != NULL)
		queue_observe(deps->st, cv_observe, cv);
	return cv;
}

void
conversations_free(struct conversations *cv)
{
	if (cv == NULL)
		return;
	if (cv->deps.events != NULL &&
	    store_backend(cv->deps.st) == STORE_SQLITE)
		queue_observe(cv->deps.st, NULL, NULL);
	free(cv);
}

/*
 * A conversation message changed state (queue_observe()): the staff page
 * hears of it with the change, in the same group.
 */
static void
cv_observe(void *arg, const struct queue_change *c)
{
	struct conversations *cv = arg;

	events_publish(cv->deps.events, "message",
	    json_pack("{s:I, s:I, s:s, s:s}", "id", (json_int_t)c->id,
		"conversation_id", (json_int_t)c->conversation, "direction",
		c->status == MSG_ST_RECEIVED ? "in" : "out", "status",
		msg_status_to_text(c->status)));
}

/* ---- Shared helpers ------------------------------------------------------ */

int64_t
cv_id_param(struct http_req *req, size_t i, const char *what)
{
	char *end;
	long long id;

	id = strtoll(req->params[i], &end, 10);
	if (*end != '\0' || id <= 0) {
		http_reply_error(req, 404, "not_found", "no %s '%.32s'", what,
		    req->params[i]);
		return 0;
	}
	return id;
}

bool
cv_write_begin(struct conversations *cv, struct http_req *req)
{
	if (!api_authorized(cv->deps.api, req))
		return false;
	if (api_is_stopping(cv->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return false;
	}
	return true;
}

void
cv_store_error(struct http_req *req, const char *what, const char *err)
{
	log_warnx("conversations_store_failed what=%s error=\"%s\"", what, err);
	http_reply_error(req, 503, "unavailable", "store: %s", err);
}

/* The clock of the stale flag. */
static struct conv_clock
cv_clock(const struct conversations *cv)
{
	return (struct conv_clock){.now = msg_now_ms(),
	    .stale_after_ms = cv->deps.cfg->conv_stale_after_ms};
}

void
cv_commit(struct conversations *cv, struct http_req *req,
    const struct cv_pending *p)
{
	struct cv_waiting *w = xcalloc(1, sizeof(*w));

	w->cv = cv;
	w->req = req;
	w->p = *p;
	if (p->conv != 0)
		events_publish(cv->deps.events, "conversation",
		    json_pack("{s:I}", "id", (json_int_t)p->conv));
	store_on_commit(cv->deps.st, cv_on_commit, w);
}

static void
cv_on_commit(void *arg, bool ok)
{
	struct cv_waiting *w = arg;
	struct conv_clock clock = cv_clock(w->cv);
	struct store *st = w->cv->deps.st;
	char err[256] = "";
	json_t *o = NULL;

	if (!ok) {
		json_decref(w->p.body);
		http_reply_error(w->req, 503, "unavailable",
		    "the store could not commit; nothing was saved, retry");
		free(w);
		return;
	}
	if (w->p.body != NULL)
		o = w->p.body;
	else if (w->p.note != 0)
		o = store_conv_note_json(st, w->p.note, err, sizeof(err));
	else if (w->p.saved != 0)
		o = store_saved_reply_json(st, w->p.saved, err, sizeof(err));
	else if (w->p.conv != 0)
		o = store_conv_summary(st, w->p.conv, &clock, err, sizeof(err));
	if (w->p.conv != 0)
		log_info("conversation_changed id=%lld op=%s staff=%lld",
		    (long long)w->p.conv, w->p.op != NULL ? w->p.op : "?",
		    (long long)w->req->auth.staff_id);
	if (o != NULL)
		http_reply_json(w->req, w->p.code, o);
	else if (w->p.code == 204)
		http_reply(w->req, 204, NULL, NULL, 0);
	else
		cv_store_error(w->req, "reply",
		    err[0] != '\0' ? err : "row vanished");
	free(w);
}

/* ---- GET /api/v1/conversations ------------------------------------------ */

/* A positive id parameter of the query: 0 / -1 with err. */
static int
cv_query_id(struct evkeyvalq *q, const char *key, int64_t *out, char *err,
    size_t errlen)
{
	const char *s = evhttp_find_header(q, key);
	char *end;
	long long v;

	if (s == NULL)
		return 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v <= 0) {
		snprintf(err, errlen, "%s: a positive id", key);
		return -1;
	}
	*out = v;
	return 0;
}

/* A flag of the query: "1"/"true" or "0"/"false". */
static int
cv_query_flag(struct evkeyvalq *q, const char *key, bool *out, char *err,
    size_t errlen)
{
	const char *s = evhttp_find_header(q, key);

	if (s == NULL)
		return 0;
	if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0)
		*out = true;
	else if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0)
		*out = false;
	else {
		snprintf(err, errlen, "%s: 1 or 0", key);
		return -1;
	}
	return 0;
}

/* status= and assigned= into q. */
static int
cv_query_who(struct http_req *req, struct evkeyvalq *kv, struct conv_query *q,
    char *err, size_t errlen)
{
	const char *s;
	int64_t id = 0;

	q->status = "open";
	if ((s = evhttp_find_header(kv, "status")) != NULL) {
		if (strcmp(s, "all") == 0)
			q->status = NULL;
		else if (strcmp(s, "open") == 0 || strcmp(s, "closed") == 0)
			q->status = s;
		else {
			snprintf(err, errlen, "status: open, closed or all");
			return -1;
		}
	}
	if ((s = evhttp_find_header(kv, "assigned")) == NULL)
		return 0;
	if (strcmp(s, "me") == 0) {
		q->assigned = CONV_ASSIGNED_STAFF;
		q->staff = req->auth.staff_id;
	} else if (strcmp(s, "none") == 0)
		q->assigned = CONV_ASSIGNED_NONE;
	else if (cv_query_id(kv, "assigned", &id, err, errlen) == 0) {
		q->assigned = CONV_ASSIGNED_STAFF;
		q->staff = id;
	} else {
		snprintf(err, errlen, "assigned: me, none or a staff id");
		return -1;
	}
	return 0;
}

int
cv_query_parse(struct http_req *req, struct evkeyvalq *kv, struct conv_query *q,
    char *err, size_t errlen)
{
	const char *s;
	char *end;
	long n;

	q->limit = CV_PAGE_DEFAULT;
	if ((s = evhttp_find_header(kv, "limit")) != NULL) {
		n = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0' || n < 1 || n > CONV_PAGE_MAX) {
			snprintf(err, errlen, "limit: 1 to %d", CONV_PAGE_MAX);
			return -1;
		}
		q->limit = (unsigned)n;
	}
	if (cv_query_who(req, kv, q, err, errlen) == -1 ||
	    cv_query_flag(kv, "unread", &q->unread, err, errlen) == -1 ||
	    cv_query_flag(kv, "stale", &q->stale, err, errlen) == -1 ||
	    cv_query_id(kv, "list", &q->list_id, err, errlen) == -1 ||
	    cv_query_id(kv, "alert", &q->alert_id, err, errlen) == -1 ||
	    cv_query_id(kv, "member", &q->member_id, err, errlen) == -1)
		return -1;
	q->after = evhttp_find_header(kv, "after");
	if ((s = evhttp_find_header(kv, "q")) != NULL && *s != '\0')
		q->q = s;
	return 0;
}

static void
cv_collection(struct http_req *req, void *arg)
{
	static const char *const known[] = {"status", "unread", "assigned",
	    "list", "alert", "stale", "q", "after", "limit", "member", NULL};
	struct conversations *cv = arg;
	struct conv_query q = {.clock = cv_clock(cv)};
	struct evkeyvalq kv;
	char err[512];
	json_t *o;

	if (!api_authorized(cv->deps.api, req) ||
	    !api_read_query(req, &kv, known))
		return;
	if (cv_query_parse(req, &kv, &q, err, sizeof(err)) == -1) {
		http_reply_error(req, 422, "invalid", "%s", err);
		goto out;
	}
	if ((o = store_conv_list(cv->deps.st, &q, err, sizeof(err))) != NULL)
		http_reply_json(req, 200, o);
	else if (q.invalid)
		http_reply_error(req, 422, "invalid", "%s", err);
	else
		cv_store_error(req, "list", err);
out:
	evhttp_clear_headers(&kv);
}

/* ---- GET /api/v1/conversations/{id} ------------------------------------- */

static void
cv_item(struct http_req *req, void *arg)
{
	struct conversations *cv = arg;
	struct conv_clock clock = cv_clock(cv);
	char err[256];
	int64_t id;
	json_t *o;

	if (!api_authorized(cv->deps.api, req) ||
	    (id = cv_id_param(req, 0, "conversation")) == 0)
		return;
	if ((o = store_conv_thread(cv->deps.st, id, &clock, err,
		 sizeof(err))) != NULL)
		http_reply_json(req, 200, o);
	else if (err[0] != '\0')
		cv_store_error(req, "thread", err);
	else
		http_reply_error(req, 404, "not_found", "no conversation %lld",
		    (long long)id);
}

/* ---- POST /api/v1/conversations/{id}/{action} --------------------------- */

bool
cv_no_body(struct http_req *req)
{
	json_t *o;
	bool empty;

	if (req->body_len == 0 || strspn(req->body, " \t\r\n") == req->body_len)
		return true;
	if ((o = api_read_object(req)) == NULL)
		return false;
	empty = json_object_size(o) == 0;
	json_decref(o);
	if (!empty)
		http_reply_error(req, 422, "invalid",
		    "%s: this action takes no fields", req->params[1]);
	return empty;
}

int64_t
cv_assign_parse(struct http_req *req)
{
	static const char *const known[] = {"staff_id", NULL};
	char err[256];
	json_t *o, *v;
	int64_t staff = -1;

	if ((o = api_read_object(req)) == NULL)
		return -1;
	v = json_object_get(o, "staff_id");
	if (api_check_fields(o, known, err, sizeof(err)) == -1)
		;
	else if (v == NULL)
		snprintf(err, sizeof(err),
		    "staff_id: required (a staff id, or null to release)");
	else if (json_is_null(v))
		staff = 0;
	else if (!json_is_integer(v) || json_integer_value(v) <= 0)
		snprintf(err, sizeof(err), "staff_id: a staff id or null");
	else
		staff = json_integer_value(v);
	json_decref(o);
	if (staff == -1)
		http_reply_error(req, 422, "invalid", "%s", err);
	return staff;
}

/* {"staff_id": n | null}: the staff member, 0 for the pool; -1 answered. */
static int64_t
cv_assign_body(struct conversations *cv, struct http_req *req)
{
	char err[256];
	int64_t staff;
	int rc;

	if ((staff = cv_assign_parse(req)) <= 0)
		return staff;
	if ((rc = store_conv_staff_exists(cv->deps.st, staff, err,
		 sizeof(err))) == 1)
		return staff;
	if (rc == 0)
		http_reply_error(req, 422, "invalid",
		    "staff_id: no staff member %lld", (long long)staff);
	else
		cv_store_error(req, "assign", err);
	return -1;
}

char *
cv_note_body(struct http_req *req)
{
	static const char *const known[] = {"body", NULL};
	char err[256];
	json_t *o, *v;
	char *body = NULL;

	if ((o = api_read_object(req)) == NULL)
		return NULL;
	v = json_object_get(o, "body");
	if (api_check_fields(o, known, err, sizeof(err)) == -1)
		;
	else if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strspn(json_string_value(v), " \t\r\n") == json_string_length(v))
		snprintf(err, sizeof(err),
		    "body: required, a non-blank string");
	else if (json_string_length(v) > CONV_NOTE_MAX)
		snprintf(err, sizeof(err), "body: at most %d bytes (%zu given)",
		    CONV_NOTE_MAX, json_string_length(v));
	else if (strlen(json_string_value(v)) != json_string_length(v))
		snprintf(err, sizeof(err), "body: must not hold NUL");
	else
		body = xstrdup(json_string_value(v));
	json_decref(o);
	if (body == NULL)
		http_reply_error(req, 422, "invalid", "%s", err);
	return body;
}

/* POST .../notes: 201 with the note. */
static void
cv_note(struct conversations *cv, struct http_req *req, int64_t id)
{
	struct cv_pending p = {.code = 201, .op = "note"};
	char err[256], *body;
	int64_t note;

	if ((body = cv_note_body(req)) == NULL)
		return;
	note = store_conv_note_add(cv->deps.st,
	    &(struct conv_note){.conversation = id,
		.staff = req->auth.staff_id,
		.body = body,
		.now = msg_now_ms()},
	    err, sizeof(err));
	free(body);
	if (note == -1)
		cv_store_error(req, "note", err);
	else if (note == 0)
		http_reply_error(req, 404, "not_found", "no conversation %lld",
		    (long long)id);
	else {
		p.note = note;
		events_publish(cv->deps.events, "conversation",
		    json_pack("{s:I}", "id", (json_int_t)id));
		cv_commit(cv, req, &p);
	}
}

/* assign, close, reopen, read: one change, then the summary. */
static void
cv_change(struct conversations *cv, struct http_req *req, int64_t id,
    const char *action)
{
	struct conv_change c = {.now = msg_now_ms()};
	char err[256];
	int rc;

	if (strcmp(action, "assign") == 0) {
		c.op = CONV_OP_ASSIGN;
		if ((c.staff = cv_assign_body(cv, req)) == -1)
			return;
	} else {
		c.op = strcmp(action, "close") == 0 ? CONV_OP_CLOSE
		    : strcmp(action, "reopen") == 0 ? CONV_OP_REOPEN
						    : CONV_OP_READ;
		if (!cv_no_body(req))
			return;
	}
	if ((rc = store_conv_change(cv->deps.st, id, &c, err, sizeof(err))) ==
	    -1)
		cv_store_error(req, action, err);
	else if (rc == 0)
		http_reply_error(req, 404, "not_found", "no conversation %lld",
		    (long long)id);
	else
		cv_commit(cv, req,
		    &(struct cv_pending){.code = 200,
			.conv = id,
			.op = action});
}

static void
cv_action(struct http_req *req, void *arg)
{
	static const char *const actions[] = {"reply", "assign", "close",
	    "reopen", "read", "notes", NULL};
	struct conversations *cv = arg;
	const char *action = req->params[1];
	int64_t id;
	size_t i;

	for (i = 0; actions[i] != NULL && strcmp(actions[i], action) != 0; i++)
		;
	if (actions[i] == NULL) {
		http_reply_error(req, 404, "not_found",
		    "no action '%.32s' (reply, assign, close, reopen, read, "
		    "notes)",
		    action);
		return;
	}
	if (!cv_write_begin(cv, req) ||
	    (id = cv_id_param(req, 0, "conversation")) == 0)
		return;
	if (strcmp(action, "reply") == 0)
		cv_reply(cv, req, id);
	else if (strcmp(action, "notes") == 0)
		cv_note(cv, req, id);
	else
		cv_change(cv, req, id, action);
}
