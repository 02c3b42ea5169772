/*
 * conversations_reply.c - staff replies to a conversation (POST
 * /api/v1/conversations/{id}/reply) and saved replies
 * (/api/v1/saved-replies).
 *
 * A reply goes the way of POST /api/v1/messages: the same validation
 * (api_message_parse(): number, text limits, encoding and segments,
 * sender, its from number, expiry), the same queue_enqueue(), and the
 * 202 from the commit callback. What it adds: the sender the member last
 * texted (else the sender of a list they are active on, else the default
 * sender), priority MSG_PRIO_REPLY, the conversation and the staff
 * member on the message, and the refusal (409 "opted_out") of a member
 * who opted out of SMS. A saved reply is a template rendered for the
 * member as alerts render theirs (alerts_render()).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "alerts-internal.h"
#include "api.h"
#include "compat.h"
#include "config.h"
#include "conversations-internal.h"
#include "dispatch.h"
#include "http.h"
#include "log.h"
#include "message.h"
#include "queue.h"
#include "store.h"
#include "store_alerts.h"
#include "store_conversations.h"
#include "store_members.h"
#include "template.h"
#include "xmalloc.h"

/* Any attr.NAME: a member lacking it gets the fallback, or a 422. */
static const struct template_fields cv_any_field = {.attrs_any = true};

/* ---- Replies ------------------------------------------------------------ */

/*
 * The sender a reply to t goes through: the one the member last texted,
 * else their list's, else the default; NULL when none is configured.
 */
static const char *
cv_reply_sender(struct conversations *cv, const struct conv_target *t)
{
	struct dispatch *d = cv->deps.dispatch;

	if (t->sender[0] != '\0' && dispatch_has_sender(d, t->sender))
		return t->sender;
	if (t->list_sender[0] != '\0' && dispatch_has_sender(d, t->list_sender))
		return t->list_sender;
	return dispatch_default_sender(d);
}

/* A JSON string of the member object o, or NULL. */
static const char *
cv_member_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

char *
cv_render_member(const char *src, const struct alert_member *am, char *err,
    size_t errlen)
{
	struct template_compiled *t = NULL;
	struct template_member_view v;
	struct alerts_view_ctx ctx;
	struct template_error te;
	struct evbuffer *buf;
	char *text;

	if (template_compile(src, strlen(src), TEMPLATE_TEXT, &cv_any_field, &t,
		&te) == -1) {
		snprintf(err, errlen, "saved_reply: line %u column %u: %s",
		    te.line, te.column, te.message);
		return NULL;
	}
	if ((buf = evbuffer_new()) == NULL)
		fatalx("cv_render: evbuffer_new failed");
	alerts_member_view(am, &ctx, &v);
	if ((text = alerts_render(buf, t, &v, true, NULL, &te)) == NULL)
		snprintf(err, errlen, "saved_reply: %s (the member has none)",
		    te.message);
	alerts_view_done(&ctx);
	evbuffer_free(buf);
	template_free(t);
	return text;
}

/*
 * Renders template 'src' for member 'member': a new string, or NULL with
 * "saved_reply: ..." in err (a template that does not compile, a field
 * without fallback the member lacks) or the store's error.
 */
static char *
cv_render(struct conversations *cv, const char *src, int64_t member, char *err,
    size_t errlen)
{
	struct alert_member am;
	json_t *mj;
	char *attrs, *text;

	if ((mj = store_member_json(cv->deps.st, member, err, errlen)) ==
	    NULL) {
		if (err[0] == '\0')
			snprintf(err, errlen, "member %lld vanished",
			    (long long)member);
		return NULL;
	}
	attrs = json_dumps(json_object_get(mj, "attributes"), JSON_COMPACT);
	am = (struct alert_member){.id = member,
	    .phone = cv_member_str(mj, "phone"),
	    .email = cv_member_str(mj, "email"),
	    .first_name = cv_member_str(mj, "first_name"),
	    .last_name = cv_member_str(mj, "last_name"),
	    .zip = cv_member_str(mj, "zip"),
	    .attributes = attrs};
	text = cv_render_member(src, &am, err, errlen);
	free(attrs);
	json_decref(mj);
	return text;
}

int
cv_reply_parse(json_t *o, char **text, int64_t *saved, char *err, size_t errlen)
{
	static const char *const known[] = {"body", "saved_reply", NULL};
	json_t *body = json_object_get(o, "body");
	json_t *sv = json_object_get(o, "saved_reply");

	if (api_check_fields(o, known, err, errlen) == -1)
		return -1;
	if ((body == NULL) == (sv == NULL)) {
		snprintf(err, errlen, "body or saved_reply: give exactly one");
		return -1;
	}
	if (body != NULL) {
		if (!json_is_string(body) || json_string_length(body) == 0) {
			snprintf(err, errlen, "body: a non-empty string");
			return -1;
		}
		*text = xstrdup(json_string_value(body));
		return 1;
	}
	if (!json_is_integer(sv) || json_integer_value(sv) <= 0) {
		snprintf(err, errlen, "saved_reply: a saved reply id");
		return -1;
	}
	*saved = json_integer_value(sv);
	return 0;
}

char *
cv_reply_text(struct conversations *cv, struct http_req *req, json_t *o,
    int64_t member)
{
	char err[512] = "", *src, *text = NULL;
	int64_t saved = 0;
	int rc;

	if ((rc = cv_reply_parse(o, &text, &saved, err, sizeof(err))) == 1)
		return text;
	if (rc == -1)
		;
	else if ((src = store_saved_reply_body(cv->deps.st, saved, err,
		      sizeof(err))) == NULL) {
		if (err[0] != '\0') {
			cv_store_error(req, "saved reply", err);
			return NULL;
		}
		snprintf(err, sizeof(err), "saved_reply: no saved reply %lld",
		    (long long)saved);
	} else {
		text = cv_render(cv, src, member, err, sizeof(err));
		free(src);
	}
	if (text == NULL)
		http_reply_error(req, 422, "invalid", "%s", err);
	return text;
}

bool
cv_reply_check(struct http_req *req, int64_t id, int rc,
    const struct conv_target *t, const char *err)
{
	if (rc == -1)
		cv_store_error(req, "reply", err);
	else if (rc == 0)
		http_reply_error(req, 404, "not_found", "no conversation %lld",
		    (long long)id);
	else if (t->phone[0] == '\0')
		http_reply_error(req, 409, "conflict",
		    "member %lld has no phone number to text",
		    (long long)t->member);
	else if (t->sms_opted_out)
		http_reply_error(req, 409, "opted_out",
		    "member %lld opted out of SMS: no text may go to them "
		    "until they text START",
		    (long long)t->member);
	else
		return true;
	return false;
}

/* Who the reply goes to, or false after answering 404/409. */
static bool
cv_reply_target(struct conversations *cv, struct http_req *req, int64_t id,
    struct conv_target *t)
{
	char err[256];
	int rc;

	rc = store_conv_target(cv->deps.st, id, t, err, sizeof(err));
	return cv_reply_check(req, id, rc, t, err);
}

bool
cv_reply_message(struct conversations *cv, struct http_req *req,
    const struct conv_target *t, const char *text, json_t **mo,
    struct queue_new *m)
{
	const char *sender = cv_reply_sender(cv, t);
	char err[512];

	if (sender == NULL) {
		http_reply_error(req, 409, "conflict",
		    "no SMS sender is configured ([sender NAME])");
		return false;
	}
	*mo = json_pack("{s:s, s:s, s:s, s:s, s:i}", "channel", "sms", "to",
	    t->phone, "body", text, "sender", sender, "priority",
	    MSG_PRIO_REPLY);
	if (*mo == NULL) {
		http_reply_error(req, 422, "invalid", "body: not valid UTF-8");
		return false;
	}
	if (api_message_parse(cv->deps.api, *mo, m, err, sizeof(err)) == -1) {
		http_reply_error(req, 422, "invalid", "%s", err);
		return false;
	}
	return true;
}

int
cv_reply_key(struct http_req *req, int64_t id, char **key)
{
	const char *h = http_header(req, "Idempotency-Key");

	*key = NULL;
	if (h == NULL)
		return 0;
	if (h[0] == '\0' || strlen(h) > CV_KEY_MAX) {
		http_reply_error(req, 422, "invalid",
		    "Idempotency-Key: 1 to %d characters", CV_KEY_MAX);
		return -1;
	}
	*key = xasprintf("reply:%lld:%s", (long long)id, h);
	return 0;
}

void
cv_reply(struct conversations *cv, struct http_req *req, int64_t id)
{
	struct queue_new m = {0};
	struct queue_stored qs = {0};
	struct conv_target t;
	json_t *o, *mo = NULL;
	char err[512], *text = NULL, *key = NULL;
	int64_t now = msg_now_ms();

	if ((o = api_read_object(req)) == NULL)
		return;
	if (cv_reply_key(req, id, &key) == -1 ||
	    !cv_reply_target(cv, req, id, &t) ||
	    (text = cv_reply_text(cv, req, o, t.member)) == NULL)
		goto out;
	if (!cv_reply_message(cv, req, &t, text, &mo, &m))
		goto out;
	m.member_id = t.member;
	m.conversation_id = id;
	m.staff_id = req->auth.staff_id;
	m.idempotency_key = key;
	if (queue_enqueue(cv->deps.st, &m, now, &qs, err, sizeof(err)) == -1) {
		cv_store_error(req, "reply", err);
		goto out;
	}
	if (qs.dup) {
		/* the same reply again: its first message, nothing new */
		cv_commit(cv, req,
		    &(struct cv_pending){.code = 200,
			.body = json_pack("{s:I, s:b}", "message_id",
			    (json_int_t)qs.id, "duplicate", 1),
			.op = "reply"});
		goto out;
	}
	if (store_conv_change(cv->deps.st, id,
		&(struct conv_change){.op = CONV_OP_REPLIED, .now = now}, err,
		sizeof(err)) != 1) {
		/* the message must not leave without its conversation */
		store_abort_group(cv->deps.st);
		cv_store_error(req, "reply", err);
		goto out;
	}
	dispatch_kick(cv->deps.dispatch);
	log_info("conversation_reply id=%lld msg=%lld sender=%s staff=%lld",
	    (long long)id, (long long)qs.id, m.sender,
	    (long long)req->auth.staff_id);
	cv_commit(cv, req,
	    &(struct cv_pending){.code = 202,
		.conv = id,
		.body = json_pack("{s:I}", "message_id", (json_int_t)qs.id),
		.op = "reply"});
out:
	json_decref(mo);
	json_decref(o);
	free(text);
	free(key);
}

/* ---- Saved replies ------------------------------------------------------- */

int
cv_saved_fields(json_t *o, bool create, struct saved_reply *r, char *err,
    size_t errlen)
{
	static const char *const known[] = {"name", "body", NULL};
	struct template_compiled *t = NULL;
	struct template_error te;
	json_t *name = json_object_get(o, "name");
	json_t *body = json_object_get(o, "body");

	if (api_check_fields(o, known, err, errlen) == -1)
		return -1;
	if (create && (name == NULL || body == NULL)) {
		snprintf(err, errlen, "%s: required",
		    name == NULL ? "name" : "body");
		return -1;
	}
	if (name != NULL &&
	    (!json_is_string(name) || json_string_length(name) == 0 ||
		json_string_length(name) > CONV_SAVED_NAME_MAX ||
		strpbrk(json_string_value(name), "\r\n\t") != NULL)) {
		snprintf(err, errlen, "name: 1 to %d bytes on one line",
		    CONV_SAVED_NAME_MAX);
		return -1;
	}
	if (body != NULL &&
	    (!json_is_string(body) || json_string_length(body) == 0 ||
		json_string_length(body) > CONV_SAVED_BODY_MAX)) {
		snprintf(err, errlen, "body: 1 to %d bytes",
		    CONV_SAVED_BODY_MAX);
		return -1;
	}
	if (body != NULL &&
	    template_compile(json_string_value(body), json_string_length(body),
		TEMPLATE_TEXT, &cv_any_field, &t, &te) == -1) {
		snprintf(err, errlen, "body: line %u column %u: %s", te.line,
		    te.column, te.message);
		return -1;
	}
	template_free(t);
	r->name = json_string_value(name);
	r->body = json_string_value(body);
	return 0;
}

/* POST /api/v1/saved-replies: 201 with the saved reply. */
static void
cv_saved_create(struct conversations *cv, struct http_req *req)
{
	struct saved_reply r = {.now = msg_now_ms()};
	char err[512];
	int64_t id;
	json_t *o;

	if (!cv_write_begin(cv, req) || (o = api_read_object(req)) == NULL)
		return;
	if (cv_saved_fields(o, true, &r, err, sizeof(err)) == -1)
		http_reply_error(req, 422, "invalid", "%s", err);
	else if ((id = store_saved_reply_create(cv->deps.st, &r, err,
		      sizeof(err))) != -1)
		cv_commit(cv, req,
		    &(struct cv_pending){.code = 201,
			.saved = id,
			.op = "saved_reply"});
	else if (r.conflict)
		http_reply_error(req, 409, "conflict", "%s", err);
	else
		cv_store_error(req, "saved reply", err);
	json_decref(o);
}

void
cv_saved_replies(struct http_req *req, void *arg)
{
	struct conversations *cv = arg;
	char err[256];
	json_t *o;

	if (req->method == HTTP_POST) {
		cv_saved_create(cv, req);
		return;
	}
	if (!api_authorized(cv->deps.api, req))
		return;
	if ((o = store_saved_replies_json(cv->deps.st, err, sizeof(err))) ==
	    NULL)
		cv_store_error(req, "saved replies", err);
	else
		http_reply_json(req, 200, o);
}

/* PATCH: 200 with the saved reply; DELETE: 204. */
static void
cv_saved_write(struct conversations *cv, struct http_req *req, int64_t id)
{
	struct saved_reply r = {.now = msg_now_ms()};
	char err[512];
	json_t *o = NULL;
	int rc;

	if (req->method == HTTP_PATCH) {
		if ((o = api_read_object(req)) == NULL)
			return;
		if (cv_saved_fields(o, false, &r, err, sizeof(err)) == -1) {
			http_reply_error(req, 422, "invalid", "%s", err);
			json_decref(o);
			return;
		}
		rc = store_saved_reply_update(cv->deps.st, id, &r, err,
		    sizeof(err));
	} else
		rc =
		    store_saved_reply_delete(cv->deps.st, id, err, sizeof(err));
	if (rc == 1)
		cv_commit(cv, req,
		    &(struct cv_pending){
			.code = req->method == HTTP_PATCH ? 200 : 204,
			.saved = req->method == HTTP_PATCH ? id : 0,
			.op = "saved_reply"});
	else if (rc == 0)
		http_reply_error(req, 404, "not_found", "no saved reply %lld",
		    (long long)id);
	else if (r.conflict)
		http_reply_error(req, 409, "conflict", "%s", err);
	else
		cv_store_error(req, "saved reply", err);
	json_decref(o);
}

void
cv_saved_reply(struct http_req *req, void *arg)
{
	struct conversations *cv = arg;
	char err[256];
	int64_t id;
	json_t *o;

	if (req->method == HTTP_GET) {
		if (!api_authorized(cv->deps.api, req) ||
		    (id = cv_id_param(req, 0, "saved reply")) == 0)
			return;
		if ((o = store_saved_reply_json(cv->deps.st, id, err,
			 sizeof(err))) != NULL)
			http_reply_json(req, 200, o);
		else if (err[0] != '\0')
			cv_store_error(req, "saved reply", err);
		else
			http_reply_error(req, 404, "not_found",
			    "no saved reply %lld", (long long)id);
		return;
	}
	if (!cv_write_begin(cv, req) ||
	    (id = cv_id_param(req, 0, "saved reply")) == 0)
		return;
	cv_saved_write(cv, req, id);
}
