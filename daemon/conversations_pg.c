/*
 * conversations_pg.c - the /api/v1/conversations routes on a PostgreSQL
 * store (issue 13, doc/postgresql.md): the listing with its filters and
 * search, a thread, replies, assign, close, reopen, read and notes, as
 * conversations.c serves them on SQLite, through the operations of
 * queue/store_conversations_pg.h.
 *
 * The input is checked by the same functions as on SQLite
 * (conversations-internal.h), so the answers and their messages are the
 * same; what differs is when the store answers. A read waits for its
 * statement's answer; a write is one statement in the node's group and
 * is answered after the COMMIT, then (as cv_on_commit() does on SQLite)
 * with the summary or the note read outside the group. A reply reads its
 * target first (404, 409 before anything is written), then queues the
 * message and marks the conversation replied in one statement; the
 * dispatcher is kicked once it committed (PostgreSQL claims committed
 * rows only). An Idempotency-Key makes a retried reply, on any node,
 * answer the first message (200, "duplicate": true).
 *
 * Saved replies are served here too (/api/v1/saved-replies), and a reply
 * naming one is rendered for the member read with it.
 *
 * Events: each write publishes its "conversation" event into the same
 * group as the change (cvp_publish()), as cv_commit() does on SQLite, so
 * the staff pages of every node hear of it once it committed (a write
 * that finds no conversation publishes one that changed nothing: the
 * page reloads what it shows, no harm). The "message" events of a
 * reply's states are written by the database with each change
 * (migration 012), not through queue.c's queue_observe() hook.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "alerts-internal.h"
#include "api.h"
#include "config.h"
#include "conversations-internal.h"
#include "dispatch.h"
#include "events.h"
#include "http.h"
#include "log.h"
#include "message.h"
#include "queue.h"
#include "store.h"
#include "store_conversations.h"
#include "store_conversations_pg.h"
#include "xmalloc.h"

/* A request waiting for the store. */
struct cvp_req {
	struct conversations *cv;
	struct http_req *req;
	int64_t id;	      /* the conversation (or saved reply) */
	const char *op;	      /* "assign", "reply", ...: the log line's */
	const char *what;     /* a 404's: "conversation", "saved reply" */
	int code;	      /* the answer's status once read */
	int64_t staff;	      /* assign: the staff member asked for */
	json_t *body;	      /* reply, saved reply: the request's object */
	char *key;	      /* reply: the message's idempotency key */
	int64_t saved;	      /* reply: the saved reply to render */
	struct conv_target t; /* reply: whom to */
	char sender[64];
};

static struct cvp_req *
cvp_req_new(struct conversations *cv, struct http_req *req, int64_t id,
    const char *op)
{
	struct cvp_req *r = xcalloc(1, sizeof(*r));

	r->cv = cv;
	r->req = req;
	r->id = id;
	r->op = op;
	r->what = "conversation";
	r->code = 200;
	return r;
}

static void
cvp_req_free(struct cvp_req *r)
{
	json_decref(r->body);
	free(r->key);
	free(r);
}

static struct conv_clock
cvp_clock(const struct conversations *cv)
{
	return (struct conv_clock){.now = msg_now_ms(),
	    .stale_after_ms = cv->deps.cfg->conv_stale_after_ms};
}

/* The "conversation" event of a write just queued in the open group. */
static void
cvp_publish(struct conversations *cv, int64_t id)
{
	events_publish(cv->deps.events, "conversation",
	    json_pack("{s:I}", "id", (json_int_t)id));
}

/* A group that did not commit: nothing was saved. */
static void
cvp_not_committed(struct http_req *req, const char *error)
{
	if (error != NULL)
		log_warnx("conversations_store_failed what=commit error=\"%s\"",
		    error);
	http_reply_error(req, 503, "unavailable",
	    "the store could not commit; nothing was saved, retry");
}

/*
 * A read answered: r->code with o, a store error, or 404 for the
 * conversation (or note) that is not there.
 */
static void
cvp_on_json(void *arg, json_t *o, const char *error)
{
	struct cvp_req *r = arg;

	if (o != NULL)
		http_reply_json(r->req, r->code, o);
	else if (error != NULL)
		cv_store_error(r->req, r->op, error);
	else
		http_reply_error(r->req, 404, "not_found", "no %s %lld",
		    r->what, (long long)r->id);
	cvp_req_free(r);
}

/* Answers with the summary of r->id, read now (after a commit). */
static void
cvp_answer_summary(struct cvp_req *r)
{
	struct conv_clock clock = cvp_clock(r->cv);
	char err[256];

	if (store_conv_summary_pg(r->cv->deps.st, r->id, &clock, cvp_on_json, r,
		err, sizeof(err)) == -1) {
		cv_store_error(r->req, r->op, err);
		cvp_req_free(r);
	}
}

/* ---- GET /api/v1/conversations ------------------------------------------ */

static void
cvp_collection(struct http_req *req, void *arg)
{
	static const char *const known[] = {"status", "unread", "assigned",
	    "list", "alert", "stale", "q", "after", "limit", "member", NULL};
	struct conversations *cv = arg;
	struct conv_query q = {.clock = cvp_clock(cv)};
	struct evkeyvalq kv;
	struct cvp_req *r;
	char err[512];

	if (!api_authorized(cv->deps.api, req) ||
	    !api_read_query(req, &kv, known))
		return;
	if (cv_query_parse(req, &kv, &q, err, sizeof(err)) == -1) {
		http_reply_error(req, 422, "invalid", "%s", err);
		goto out;
	}
	r = cvp_req_new(cv, req, 0, "list");
	if (store_conv_list_pg(cv->deps.st, &q, cvp_on_json, r, err,
		sizeof(err)) == -1) {
		/* the values were copied or refused: r was not kept */
		free(r);
		if (q.invalid)
			http_reply_error(req, 422, "invalid", "%s", err);
		else
			cv_store_error(req, "list", err);
	}
out:
	evhttp_clear_headers(&kv);
}

/* ---- GET /api/v1/conversations/{id} ------------------------------------- */

static void
cvp_item(struct http_req *req, void *arg)
{
	struct conversations *cv = arg;
	struct conv_clock clock = cvp_clock(cv);
	struct cvp_req *r;
	char err[256];
	int64_t id;

	if (!api_authorized(cv->deps.api, req) ||
	    (id = cv_id_param(req, 0, "conversation")) == 0)
		return;
	r = cvp_req_new(cv, req, id, "thread");
	if (store_conv_thread_pg(cv->deps.st, id, &clock, cvp_on_json, r, err,
		sizeof(err)) == -1) {
		free(r);
		cv_store_error(req, "thread", err);
	}
}

/* ---- assign, close, reopen, read ----------------------------------------- */

static void
cvp_changed(void *arg, const struct conv_done *d)
{
	struct cvp_req *r = arg;

	if (!d->ok)
		cvp_not_committed(r->req, d->error);
	else if (!d->staff_found)
		http_reply_error(r->req, 422, "invalid",
		    "staff_id: no staff member %lld", (long long)r->staff);
	else if (!d->found)
		http_reply_error(r->req, 404, "not_found",
		    "no conversation %lld", (long long)r->id);
	else {
		log_info("conversation_changed id=%lld op=%s staff=%lld",
		    (long long)r->id, r->op, (long long)r->req->auth.staff_id);
		cvp_answer_summary(r);
		return;
	}
	cvp_req_free(r);
}

static void
cvp_change(struct conversations *cv, struct http_req *req, int64_t id,
    const char *action)
{
	struct conv_change c = {.now = msg_now_ms()};
	struct cvp_req *r;
	char err[256];

	if (strcmp(action, "assign") == 0) {
		c.op = CONV_OP_ASSIGN;
		if ((c.staff = cv_assign_parse(req)) == -1)
			return;
	} else {
		c.op = strcmp(action, "close") == 0 ? CONV_OP_CLOSE
		    : strcmp(action, "reopen") == 0 ? CONV_OP_REOPEN
						    : CONV_OP_READ;
		if (!cv_no_body(req))
			return;
	}
	r = cvp_req_new(cv, req, id, action);
	r->staff = c.staff;
	if (store_conv_change_pg(cv->deps.st, id, &c, cvp_changed, r, err,
		sizeof(err)) == -1) {
		free(r);
		cv_store_error(req, action, err);
		return;
	}
	cvp_publish(cv, id);
}

/* ---- notes -------------------------------------------------------------- */

static void
cvp_noted(void *arg, const struct conv_done *d)
{
	struct cvp_req *r = arg;
	char err[256];

	if (!d->ok)
		cvp_not_committed(r->req, d->error);
	else if (!d->found)
		http_reply_error(r->req, 404, "not_found",
		    "no conversation %lld", (long long)r->id);
	else {
		log_info("conversation_changed id=%lld op=note staff=%lld",
		    (long long)r->id, (long long)r->req->auth.staff_id);
		r->code = 201;
		if (store_conv_note_json_pg(r->cv->deps.st, d->id, cvp_on_json,
			r, err, sizeof(err)) == 0)
			return;
		cv_store_error(r->req, "note", err);
	}
	cvp_req_free(r);
}

static void
cvp_note(struct conversations *cv, struct http_req *req, int64_t id)
{
	struct cvp_req *r;
	char err[256], *body;
	int rc;

	if ((body = cv_note_body(req)) == NULL)
		return;
	r = cvp_req_new(cv, req, id, "note");
	rc = store_conv_note_add_pg(cv->deps.st,
	    &(struct conv_note){.conversation = id,
		.staff = req->auth.staff_id,
		.body = body,
		.now = msg_now_ms()},
	    cvp_noted, r, err, sizeof(err));
	free(body);
	if (rc == -1) {
		free(r);
		cv_store_error(req, "note", err);
		return;
	}
	cvp_publish(cv, id);
}

/* ---- replies ------------------------------------------------------------ */

static void
cvp_replied(void *arg, const struct conv_done *d)
{
	struct cvp_req *r = arg;

	if (!d->ok)
		cvp_not_committed(r->req, d->error);
	else if (d->dup)
		http_reply_json(r->req, 200,
		    json_pack("{s:I, s:b}", "message_id", (json_int_t)d->id,
			"duplicate", 1));
	else {
		/* PostgreSQL claims committed rows only: from now on */
		dispatch_kick(r->cv->deps.dispatch);
		log_info("conversation_reply id=%lld msg=%lld sender=%s "
			 "staff=%lld",
		    (long long)r->id, (long long)d->id, r->sender,
		    (long long)r->req->auth.staff_id);
		http_reply_json(r->req, 202,
		    json_pack("{s:I}", "message_id", (json_int_t)d->id));
	}
	cvp_req_free(r);
}

/* The reply's text is known: validate and queue it, or answer why not. */
static void
cvp_reply_queue(struct cvp_req *r, const char *text)
{
	struct conversations *cv = r->cv;
	struct queue_new m = {0};
	json_t *mo = NULL;
	char err[512];

	if (!cv_reply_message(cv, r->req, &r->t, text, &mo, &m))
		goto fail;
	m.member_id = r->t.member;
	m.conversation_id = r->id;
	m.staff_id = r->req->auth.staff_id;
	m.idempotency_key = r->key;
	snprintf(r->sender, sizeof(r->sender), "%s", m.sender);
	if (store_conv_reply_pg(cv->deps.st, &m, msg_now_ms(), cvp_replied, r,
		err, sizeof(err)) == -1) {
		cv_store_error(r->req, "reply", err);
		goto fail;
	}
	cvp_publish(cv, r->id);
	json_decref(mo);
	return;
fail:
	json_decref(mo);
	cvp_req_free(r);
}

/* The saved reply and the member read: render it for them. */
static void
cvp_saved_for(void *arg, int rc, const struct conv_saved_for *s,
    const char *error)
{
	struct cvp_req *r = arg;
	struct alert_member am;
	char err[512], *text;

	if (rc == -1) {
		cv_store_error(r->req, "saved reply", error);
		cvp_req_free(r);
		return;
	}
	if (rc == 0)
		snprintf(err, sizeof(err), "member %lld vanished",
		    (long long)r->t.member);
	else if (s->body == NULL)
		snprintf(err, sizeof(err), "saved_reply: no saved reply %lld",
		    (long long)r->saved);
	else {
		am = (struct alert_member){.id = r->t.member,
		    .phone = s->phone,
		    .email = s->email,
		    .first_name = s->first_name,
		    .last_name = s->last_name,
		    .zip = s->zip,
		    .attributes = s->attributes};
		if ((text = cv_render_member(s->body, &am, err, sizeof(err))) !=
		    NULL) {
			cvp_reply_queue(r, text);
			free(text);
			return;
		}
	}
	http_reply_error(r->req, 422, "invalid", "%s", err);
	cvp_req_free(r);
}

/* The reply's target read: its text next, or the answer why not. */
static void
cvp_targeted(void *arg, int rc, const struct conv_target *t, const char *error)
{
	struct cvp_req *r = arg;
	char err[512], *text = NULL;

	if (!cv_reply_check(r->req, r->id, rc, t, error)) {
		cvp_req_free(r);
		return;
	}
	r->t = *t;
	rc = cv_reply_parse(r->body, &text, &r->saved, err, sizeof(err));
	if (rc == 1) {
		cvp_reply_queue(r, text);
		free(text);
		return;
	}
	if (rc == 0 &&
	    store_conv_saved_for_pg(r->cv->deps.st, r->saved, t->member,
		cvp_saved_for, r, err, sizeof(err)) == 0)
		return;
	if (rc == 0)
		cv_store_error(r->req, "saved reply", err);
	else
		http_reply_error(r->req, 422, "invalid", "%s", err);
	cvp_req_free(r);
}

static void
cvp_reply(struct conversations *cv, struct http_req *req, int64_t id)
{
	struct cvp_req *r;
	char err[256], *key;
	json_t *o;

	if ((o = api_read_object(req)) == NULL)
		return;
	if (cv_reply_key(req, id, &key) == -1) {
		json_decref(o);
		return;
	}
	r = cvp_req_new(cv, req, id, "reply");
	r->body = o;
	r->key = key;
	if (store_conv_target_pg(cv->deps.st, id, cvp_targeted, r, err,
		sizeof(err)) == -1) {
		cv_store_error(req, "reply", err);
		cvp_req_free(r);
	}
}

/* ---- saved replies ------------------------------------------------------- */

/* Reads saved reply r->id and answers r->code with it. */
static void
cvp_saved_answer(struct cvp_req *r)
{
	char err[256];

	if (store_saved_reply_json_pg(r->cv->deps.st, r->id, cvp_on_json, r,
		err, sizeof(err)) == -1) {
		cv_store_error(r->req, "saved reply", err);
		cvp_req_free(r);
	}
}

static void
cvp_saved_written(void *arg, const struct conv_done *d)
{
	struct cvp_req *r = arg;

	if (!d->ok)
		cvp_not_committed(r->req, d->error);
	else if (d->dup)
		http_reply_error(r->req, 409, "conflict",
		    "name: a saved reply is already called '%s'",
		    json_string_value(json_object_get(r->body, "name")));
	else if (!d->found)
		http_reply_error(r->req, 404, "not_found",
		    "no saved reply %lld", (long long)r->id);
	else if (r->code == 204)
		http_reply(r->req, 204, NULL, NULL, 0);
	else {
		if (d->id != 0)
			r->id = d->id;
		cvp_saved_answer(r);
		return;
	}
	cvp_req_free(r);
}

/* POST, PATCH, DELETE: the write, then the answer. */
static void
cvp_saved_write(struct conversations *cv, struct http_req *req, int64_t id,
    enum saved_op op)
{
	struct saved_reply s = {.now = msg_now_ms()};
	struct cvp_req *r;
	char err[512];
	json_t *o = NULL;

	if (op != SAVED_DELETE) {
		if ((o = api_read_object(req)) == NULL)
			return;
		if (cv_saved_fields(o, op == SAVED_CREATE, &s, err,
			sizeof(err)) == -1) {
			http_reply_error(req, 422, "invalid", "%s", err);
			json_decref(o);
			return;
		}
	}
	r = cvp_req_new(cv, req, id, "saved_reply");
	r->what = "saved reply";
	r->body = o;
	r->code = op == SAVED_CREATE ? 201 : op == SAVED_DELETE ? 204 : 200;
	if (store_saved_reply_write_pg(cv->deps.st, op, id, &s,
		cvp_saved_written, r, err, sizeof(err)) == -1) {
		cv_store_error(req, "saved reply", err);
		cvp_req_free(r);
	}
}

/* GET|POST /api/v1/saved-replies. */
static void
cvp_saved_replies(struct http_req *req, void *arg)
{
	struct conversations *cv = arg;
	struct cvp_req *r;
	char err[256];

	if (req->method == HTTP_POST) {
		if (cv_write_begin(cv, req))
			cvp_saved_write(cv, req, 0, SAVED_CREATE);
		return;
	}
	if (!api_authorized(cv->deps.api, req))
		return;
	r = cvp_req_new(cv, req, 0, "saved replies");
	if (store_saved_replies_json_pg(cv->deps.st, cvp_on_json, r, err,
		sizeof(err)) == -1) {
		cv_store_error(req, "saved replies", err);
		cvp_req_free(r);
	}
}

/* GET|PATCH|DELETE /api/v1/saved-replies/{id}. */
static void
cvp_saved_reply(struct http_req *req, void *arg)
{
	struct conversations *cv = arg;
	struct cvp_req *r;
	int64_t id;

	if (req->method == HTTP_GET) {
		if (!api_authorized(cv->deps.api, req) ||
		    (id = cv_id_param(req, 0, "saved reply")) == 0)
			return;
		r = cvp_req_new(cv, req, id, "saved reply");
		r->what = "saved reply";
		cvp_saved_answer(r);
		return;
	}
	if (!cv_write_begin(cv, req) ||
	    (id = cv_id_param(req, 0, "saved reply")) == 0)
		return;
	cvp_saved_write(cv, req, id,
	    req->method == HTTP_PATCH ? SAVED_UPDATE : SAVED_DELETE);
}

/* ---- POST /api/v1/conversations/{id}/{action} --------------------------- */

static void
cvp_action(struct http_req *req, void *arg)
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
		cvp_reply(cv, req, id);
	else if (strcmp(action, "notes") == 0)
		cvp_note(cv, req, id);
	else
		cvp_change(cv, req, id, actions[i]);
}

void
cv_pg_routes(struct http_server *srv, struct conversations *cv)
{
	http_route(srv, HTTP_GET, "/api/v1/conversations", cvp_collection, cv);
	http_route(srv, HTTP_GET, "/api/v1/conversations/{id}", cvp_item, cv);
	http_route(srv, HTTP_POST, "/api/v1/conversations/{id}/{action}",
	    cvp_action, cv);
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/saved-replies",
	    cvp_saved_replies, cv);
	http_route(srv, HTTP_GET | HTTP_PATCH | HTTP_DELETE,
	    "/api/v1/saved-replies/{id}", cvp_saved_reply, cv);
}
