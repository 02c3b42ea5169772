/*
 * lists_pg.c - the /api/v1/lists routes on a PostgreSQL store (issue 13,
 * doc/postgresql.md): create, list, fetch, update and delete lists, a
 * list's members (who is on it, subscribe, unsubscribe) and its CSV
 * export, as members_lists.c and members_export.c serve them on SQLite,
 * through the operations of queue/store_lists_pg.h.
 *
 * The input is checked by members_lists.c's functions (mb_parse_list(),
 * mb_sub_head(), mb_sub_addr(), ...: members-internal.h), so the answers
 * and their messages are the same; what differs is when the store
 * answers. Every route first reads the list by reference (an id, else a
 * name: 404 before anything else, as mb_list_param() answers), outside
 * the group; a write is then its statements in the node's group and is
 * answered after the COMMIT, with the list read then (as mb_on_commit()
 * does on SQLite). What the write's statement found is told after the
 * commit, not read before it, since another node may change it in
 * between: a name or keyword another list has (409), a list from the
 * config (409), members still on a list being deleted (409), a list or a
 * member gone (404).
 *
 * Routing on any node: the lists live in the database only (no node
 * keeps a copy), and a received text that may be a keyword or a YES
 * reads the lists it needs when it arrives (inbound_plan_lists(),
 * store_route_lists_pg()): a list made, changed or deleted through any
 * node's API routes, or stops routing, on every node from its COMMIT on.
 *
 * A subscribe finds its member first (by id, else phone, else email: one
 * read), checks it as mb_sub_member() does, then writes the subscription
 * (and the member, when new) in one statement. An email subscription to
 * a double opt-in list is pending with its confirmation email, written
 * by email_links_subscribe_durable() in one statement of the group (a
 * new member is made first, by the members API's create, in the group
 * before); the answer's opted_out is read after it.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "api.h"
#include "email_links.h"
#include "http.h"
#include "log.h"
#include "members-internal.h"
#include "message.h"
#include "store_lists_pg.h"
#include "xmalloc.h"

/* What a request does once its list is read. */
enum lp_op {
	LP_GET = 0,
	LP_PATCH,
	LP_DELETE,
	LP_MEMBERS,
	LP_SUBSCRIBE,
	LP_UNSUBSCRIBE,
	LP_EXPORT,
};

/* A request waiting for the store. */
struct lp_req {
	struct members *m;
	struct http_req *req;
	enum lp_op op;
	const char *what; /* the log's: "list_get", "list_update", ... */
	int64_t list;
	int code;	      /* the answer's status once read */
	char loc[64];	      /* Location header, "" = none */
	json_t *cur;	      /* the list as read (owned) */
	json_t *body;	      /* the request's object (owned) */
	struct mb_listdef ld; /* a create's, a PATCH's definition */
	/* a subscribe */
	struct mb_subwho w;
	const char *pin;    /* the phone as given (from body) */
	const char *source; /* consent_source (from body) */
	int ch;
	/* an unsubscribe */
	int64_t member;
	unsigned channels;
	/* an email subscription to a double opt-in list, settled */
	enum sub_change change;
	enum sub_status sub_status;
	/* a delete */
	bool force;
	/* a listing's query */
	struct list_members_query q;
	char status[16];
};

static struct lp_req *
lp_req_new(struct members *m, struct http_req *req, enum lp_op op,
    const char *what)
{
	struct lp_req *r = xcalloc(1, sizeof(*r));

	r->m = m;
	r->req = req;
	r->op = op;
	r->what = what;
	r->code = 200;
	return r;
}

static void
lp_req_free(struct lp_req *r)
{
	mb_listdef_clear(&r->ld);
	free(r->w.email);
	json_decref(r->cur);
	json_decref(r->body);
	free(r);
}

/* A write's group did not commit. */
static void
lp_unavailable(struct lp_req *r, const char *error)
{
	if (error != NULL)
		log_warnx("members_store_failed op=%s error=\"%s\"", r->what,
		    error);
	http_reply_error(r->req, 503, "unavailable",
	    "the store could not commit; nothing was saved, retry");
}

/* A read answered: r->code with o, a store error, or 404. */
static void
lp_on_json(void *arg, json_t *o, const char *error)
{
	struct lp_req *r = arg;

	if (o != NULL) {
		if (r->loc[0] != '\0')
			http_add_header(r->req, "Location", r->loc);
		http_reply_json(r->req, r->code, o);
	} else if (error != NULL)
		mb_store_error(r->req, r->what, error);
	else
		http_reply_error(r->req, 404, "not_found", "no list %lld",
		    (long long)r->list);
	lp_req_free(r);
}

/* Answers with list r->list, read now (after a commit). */
static void
lp_answer_list(struct lp_req *r)
{
	char err[256], ref[24];

	snprintf(ref, sizeof(ref), "%lld", (long long)r->list);
	if (store_list_json_pg(r->m->deps.st,
		&(struct list_read_pg){.ref = ref}, lp_on_json, r, err,
		sizeof(err)) == -1) {
		mb_store_error(r->req, r->what, err);
		lp_req_free(r);
	}
}

/* A list write settled: 503, 404, 409, or the list. */
static void
lp_on_list_done(void *arg, const struct list_done *d)
{
	struct lp_req *r = arg;

	if (!d->ok)
		lp_unavailable(r, d->error);
	else if (!d->found)
		http_reply_error(r->req, 404, "not_found", "no list %lld",
		    (long long)r->list);
	else if (d->conflict)
		http_reply_error(r->req, 409, "conflict", "%s",
		    d->error != NULL ? d->error : "conflict");
	else if (r->op == LP_DELETE)
		http_reply_json(r->req, 200,
		    json_pack("{s:I, s:b}", "id", (json_int_t)r->list,
			"deleted", 1));
	else {
		r->list = d->id;
		if (r->code == 201)
			snprintf(r->loc, sizeof(r->loc), "/api/v1/lists/%lld",
			    (long long)r->list);
		lp_answer_list(r);
		return;
	}
	lp_req_free(r);
}

/* Sends r's create (r->list 0) or update of r->ld. */
static void
lp_write(struct lp_req *r)
{
	char err[512];

	if (store_list_write_pg(r->m->deps.st,
		&(struct list_write_pg){.id = r->list,
		    .d = &r->ld.d,
		    .now = msg_now_ms()},
		lp_on_list_done, r, err, sizeof(err)) == -1) {
		mb_store_error(r->req, r->what, err);
		lp_req_free(r);
	}
}

/* ---- GET and POST /api/v1/lists --------------------------------------- */

static void
lp_lists_post(struct http_req *req, struct members *m)
{
	struct lp_req *r;
	char err[512];
	json_t *o;

	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	r = lp_req_new(m, req, LP_GET, "list_create");
	r->body = o;
	r->code = 201;
	if (mb_parse_list(m, o, &r->ld, err, sizeof(err)) == -1) {
		mb_invalid(req, err);
		lp_req_free(r);
		return;
	}
	if (r->ld.d.name == NULL) {
		mb_invalid(req, "name: required");
		lp_req_free(r);
		return;
	}
	lp_write(r);
}

static void
lp_lists(struct http_req *req, void *arg)
{
	struct members *m = arg;
	struct lp_req *r;
	char err[512];

	if (req->method == HTTP_POST) {
		lp_lists_post(req, m);
		return;
	}
	if (!api_authorized(m->deps.api, req))
		return;
	r = lp_req_new(m, req, LP_GET, "lists");
	if (store_list_json_pg(m->deps.st, &(struct list_read_pg){0},
		lp_on_json, r, err, sizeof(err)) == -1) {
		mb_store_error(req, "lists", err);
		lp_req_free(r);
	}
}

/* ---- PATCH and DELETE /api/v1/lists/{id} ------------------------------ */

/* PATCH: the stored definition (r->cur), overlaid with the request's. */
static void
lp_patch(struct lp_req *r)
{
	struct mb_listdef *ld = &r->ld;
	json_t *cur = r->cur, *kw, *q, *v;
	char err[512];
	size_t i;

	if ((r->body = mb_write_begin(r->m, r->req)) == NULL) {
		lp_req_free(r);
		return;
	}
	ld->d.name = json_string_value(json_object_get(cur, "name"));
	ld->d.sender = json_string_value(json_object_get(cur, "sender"));
	ld->d.welcome_sms =
	    json_string_value(json_object_get(cur, "welcome_sms"));
	ld->d.welcome_email_subject =
	    json_string_value(json_object_get(cur, "welcome_email_subject"));
	ld->d.welcome_email =
	    json_string_value(json_object_get(cur, "welcome_email"));
	ld->d.double_optin = json_is_true(json_object_get(cur, "double_optin"));
	ld->d.time_zone = json_string_value(json_object_get(cur, "time_zone"));
	q = json_object_get(cur, "questions");
	json_array_foreach(q, i, v) {
		if (i >= MB_QUESTIONS_MAX)
			break;
		ld->q[i].field = json_string_value(json_object_get(v, "field"));
		ld->q[i].prompt =
		    json_string_value(json_object_get(v, "prompt"));
		ld->d.nquestions = i + 1;
	}
	ld->d.questions = ld->q;
	if (json_object_get(r->body, "keywords") == NULL) {
		kw = json_object_get(cur, "keywords");
		ld->keywords = xcalloc(json_array_size(kw) + 1, sizeof(char *));
		for (i = 0; i < json_array_size(kw); i++)
			ld->keywords[ld->nkeywords++] =
			    xstrdup(json_string_value(json_array_get(kw, i)));
		ld->d.keywords = (const char *const *)ld->keywords;
		ld->d.nkeywords = ld->nkeywords;
	}
	if (mb_parse_list(r->m, r->body, ld, err, sizeof(err)) == -1) {
		mb_invalid(r->req, err);
		lp_req_free(r);
		return;
	}
	lp_write(r);
}

static void
lp_delete(struct lp_req *r)
{
	static const char *const known[] = {"force", NULL};
	struct evkeyvalq q;
	const char *f, *name;
	char err[512];

	if (json_is_true(json_object_get(r->cur, "from_config"))) {
		name = json_string_value(json_object_get(r->cur, "name"));
		http_reply_error(r->req, 409, "conflict",
		    "list %s comes from the config file; remove its [list %s] "
		    "section there (it then stays, with its members, and can "
		    "be deleted)",
		    name, name);
		lp_req_free(r);
		return;
	}
	if (api_is_stopping(r->m->deps.api)) {
		http_reply_error(r->req, 503, "unavailable", "shutting down");
		lp_req_free(r);
		return;
	}
	if (!api_read_query(r->req, &q, known)) {
		lp_req_free(r);
		return;
	}
	f = evhttp_find_header(&q, "force");
	r->force = f != NULL && (strcmp(f, "true") == 0 || strcmp(f, "1") == 0);
	if (f != NULL && !r->force && strcmp(f, "false") != 0 &&
	    strcmp(f, "0") != 0) {
		mb_invalid(r->req, "force: true or false");
		lp_req_free(r);
	} else if (store_list_delete_pg(r->m->deps.st, r->list, r->force,
		       lp_on_list_done, r, err, sizeof(err)) == -1) {
		mb_store_error(r->req, "list_delete", err);
		lp_req_free(r);
	}
	evhttp_clear_headers(&q);
}

/* ---- GET /api/v1/lists/{id}/members ----------------------------------- */

static void
lp_members(struct lp_req *r)
{
	static const char *const known[] = {"status", "after", "limit", NULL};
	struct evkeyvalq q;
	const char *status;
	char err[512];

	if (!api_read_query(r->req, &q, known)) {
		lp_req_free(r);
		return;
	}
	status = evhttp_find_header(&q, "status");
	if (mb_page(&q, &r->q.after, &r->q.limit, err, sizeof(err)) == -1) {
		mb_invalid(r->req, err);
		lp_req_free(r);
	} else if (status != NULL && strcmp(status, "pending") != 0 &&
	    strcmp(status, "active") != 0 && strcmp(status, "left") != 0) {
		mb_invalid(r->req, "status: one of pending, active, left");
		lp_req_free(r);
	} else {
		if (status != NULL) {
			snprintf(r->status, sizeof(r->status), "%s", status);
			r->q.status = r->status;
		}
		r->q.list = r->list;
		if (store_list_members_json_pg(r->m->deps.st, &r->q, lp_on_json,
			r, err, sizeof(err)) == -1) {
			mb_store_error(r->req, "list_members", err);
			lp_req_free(r);
		}
	}
	evhttp_clear_headers(&q);
}

/* ---- POST /api/v1/lists/{id}/members ---------------------------------- */

static void
lp_on_sub_done(void *arg, const struct list_done *d)
{
	struct lp_req *r = arg;
	struct mb_subreq sr = {.list = r->list,
	    .ch = (enum channel)r->ch,
	    .change = d->change,
	    .status = d->status};

	if (!d->ok)
		lp_unavailable(r, d->error);
	else if (!d->found)
		http_reply_error(r->req, 404, "not_found", "no list '%s'",
		    r->req->params[0]);
	else if (d->conflict)
		http_reply_error(r->req, 409, "conflict", "%s",
		    d->error != NULL ? d->error : "conflict");
	else {
		r->w.id = d->member;
		r->w.created = d->member_created;
		http_reply_json(r->req,
		    d->change == SUB_CHANGE_NEW ||
			    d->change == SUB_CHANGE_REJOINED
			? 201
			: 200,
		    mb_sub_answer(&r->w, &sr, d->opted_out));
	}
	lp_req_free(r);
}

/* The member read after a pending subscription: the answer. */
static void
lp_confirm_answer(void *arg, json_t *o, const char *error)
{
	struct lp_req *r = arg;
	struct mb_subreq sr = {.list = r->list,
	    .ch = CHANNEL_EMAIL,
	    .change = r->change,
	    .status = r->sub_status};
	json_t *ch = json_object_get(json_object_get(o, "channels"), "email");

	if (o == NULL)
		mb_store_error(r->req, "subscribe",
		    error != NULL ? error : "member vanished");
	else
		http_reply_json(r->req,
		    r->change == SUB_CHANGE_NEW ||
			    r->change == SUB_CHANGE_REJOINED
			? 201
			: 200,
		    mb_sub_answer(&r->w, &sr,
			json_is_true(json_object_get(ch, "opted_out"))));
	json_decref(o);
	lp_req_free(r);
}

/* The pending subscription and its confirmation email settled. */
static void
lp_confirm_done(void *arg, const struct email_links_subscribe_done *d)
{
	struct lp_req *r = arg;
	char err[256], masked[MSG_ADDR_MAX];

	if (!d->ok) {
		lp_unavailable(r, d->error);
		lp_req_free(r);
		return;
	}
	if (d->confirm_error != NULL)
		log_warnx("members_confirmation_failed member=%lld list=%lld "
			  "to=%s error=\"%s\"",
		    (long long)r->w.id, (long long)r->list,
		    log_mask_addr(r->w.email != NULL ? r->w.email : "-", masked,
			sizeof(masked)),
		    d->confirm_error);
	r->change = d->change;
	r->sub_status = d->status;
	if (store_member_json_pg(r->m->deps.st, r->w.id, lp_confirm_answer, r,
		err, sizeof(err)) == -1) {
		mb_store_error(r->req, "subscribe", err);
		lp_req_free(r);
	}
}

/* An email subscription of member r->w to the double opt-in list. */
static void
lp_confirm(struct lp_req *r)
{
	char err[256];

	if (r->m->deps.links == NULL ||
	    email_links_subscribe_durable(r->m->deps.links,
		&(struct email_links_sub){.member = r->w.id,
		    .list = r->list,
		    .email = r->w.email},
		r->source, msg_now_ms(), lp_confirm_done, r, err,
		sizeof(err)) == -1) {
		mb_store_error(r->req, "subscribe",
		    r->m->deps.links == NULL ? "no email links" : err);
		lp_req_free(r);
	}
}

/* The new member of an email subscription to a double opt-in list. */
static void
lp_confirm_created(void *arg, const struct mb_done *d)
{
	struct lp_req *r = arg;

	if (!d->ok)
		lp_unavailable(r, d->error);
	else if (d->conflict)
		http_reply_error(r->req, 409, "conflict", "%s",
		    d->error != NULL ? d->error : "phone or email taken");
	else {
		r->w.id = d->id;
		r->w.created = true;
		lp_confirm(r);
		return;
	}
	lp_req_free(r);
}

/* The member is known (r->w; id 0: a new one): the subscription. */
static void
lp_subscribe(struct lp_req *r)
{
	struct member_fields f = {0};
	char err[512];
	bool dbl = json_is_true(json_object_get(r->cur, "double_optin"));

	if (mb_sub_channel(&r->w, &r->ch, err, sizeof(err)) == -1) {
		mb_invalid(r->req, err);
		lp_req_free(r);
		return;
	}
	if (r->ch == CHANNEL_EMAIL && dbl && r->w.id != 0) {
		lp_confirm(r);
		return;
	}
	if (r->ch == CHANNEL_EMAIL && dbl) {
		f.set = (r->w.phone[0] != '\0' ? MF_PHONE : 0) | MF_EMAIL;
		f.phone = r->w.phone[0] != '\0' ? r->w.phone : NULL;
		f.email = r->w.email;
		if (store_member_write_pg(r->m->deps.st,
			&(struct member_write_pg){.f = &f, .now = msg_now_ms()},
			lp_confirm_created, r, err, sizeof(err)) == -1) {
			mb_store_error(r->req, "member_create", err);
			lp_req_free(r);
		}
		return;
	}
	if (store_list_subscribe_pg(r->m->deps.st,
		&(struct list_sub_pg){.member = r->w.id,
		    .phone = r->w.phone[0] != '\0' ? r->w.phone : NULL,
		    .email = r->w.email,
		    .list = r->list,
		    .ch = (enum channel)r->ch,
		    .status = SUB_ACTIVE,
		    .detail = r->source,
		    .now = msg_now_ms()},
		lp_on_sub_done, r, err, sizeof(err)) == -1) {
		mb_store_error(r->req, "subscribe", err);
		lp_req_free(r);
	}
}

/* The member a subscribe names, read (o NULL: none). */
static void
lp_sub_found(void *arg, json_t *o, const char *error)
{
	struct lp_req *r = arg;
	const char *p, *e;
	char err[512];

	if (o == NULL && error != NULL) {
		mb_store_error(r->req, "member_find", error);
		goto fail;
	}
	p = json_string_value(json_object_get(o, "phone"));
	e = json_string_value(json_object_get(o, "email"));
	if (o == NULL && r->w.id != 0) {
		http_reply_error(r->req, 404, "not_found", "no member %lld",
		    (long long)r->w.id);
		goto fail;
	}
	if (o == NULL) {
		/* found by any number it may be stored as; made by a good
		 * one */
		if (mb_sub_new_phone(r->m, r->pin, &r->w, err, sizeof(err)) ==
		    -1) {
			mb_invalid(r->req, err);
			goto fail;
		}
		lp_subscribe(r);
		return;
	}
	if (r->w.id == 0) {
		r->w.id = json_integer_value(json_object_get(o, "id"));
		if (mb_sub_mismatch(r->req, &r->w, p, e))
			goto fail;
	}
	snprintf(r->w.phone, sizeof(r->w.phone), "%s", p != NULL ? p : "");
	free(r->w.email);
	r->w.email = e != NULL ? xstrdup(e) : NULL;
	json_decref(o);
	lp_subscribe(r);
	return;
fail:
	json_decref(o);
	lp_req_free(r);
}

static void
lp_sub_post(struct lp_req *r)
{
	char err[512], ref[32];
	int rc;

	if ((r->body = mb_write_begin(r->m, r->req)) == NULL) {
		lp_req_free(r);
		return;
	}
	if (mb_sub_head(r->body, &r->ch, &r->source, err, sizeof(err)) == -1 ||
	    (rc = mb_sub_member_ref(r->body, ref, err, sizeof(err))) == -1 ||
	    (rc == 0 &&
		mb_sub_addr(r->m, r->body, &r->w, &r->pin, err, sizeof(err)) ==
		    -1)) {
		mb_invalid(r->req, err);
		lp_req_free(r);
		return;
	}
	if (rc == 1)
		r->w.id =
		    json_integer_value(json_object_get(r->body, "member"));
	if (store_member_find_pg(r->m->deps.st,
		&(struct member_find_pg){.member = r->w.id,
		    .phone =
			rc == 0 && r->w.phone[0] != '\0' ? r->w.phone : NULL,
		    .email = rc == 0 ? r->w.email : NULL},
		lp_sub_found, r, err, sizeof(err)) == -1) {
		mb_store_error(r->req, "member_find", err);
		lp_req_free(r);
	}
}

/* ---- DELETE /api/v1/lists/{id}/members/{member} ----------------------- */

static void
lp_on_unsub_done(void *arg, const struct list_done *d)
{
	struct lp_req *r = arg;
	json_t *left;
	int ch;

	if (!d->ok)
		lp_unavailable(r, d->error);
	else if (!d->found)
		http_reply_error(r->req, 404, "not_found", "no member %lld",
		    (long long)r->member);
	else {
		left = json_array();
		for (ch = 0; ch < CHANNEL_COUNT; ch++)
			if (d->left & (1u << ch))
				json_array_append_new(left,
				    json_string(
					channel_to_text((enum channel)ch)));
		http_reply_json(r->req, 200,
		    json_pack("{s:I, s:I, s:o, s:b}", "member_id",
			(json_int_t)r->member, "list_id", (json_int_t)r->list,
			"left", left, "changed", d->left != 0));
	}
	lp_req_free(r);
}

static void
lp_unsubscribe(struct lp_req *r)
{
	char err[512];

	if (!mb_parse_id(r->req->params[1], &r->member)) {
		http_reply_error(r->req, 404, "not_found",
		    "no member '%s' (members are addressed by id; find one "
		    "with GET /api/v1/members?phone=...)",
		    r->req->params[1]);
		lp_req_free(r);
		return;
	}
	if (store_list_unsubscribe_pg(r->m->deps.st,
		&(struct list_unsub_pg){.member = r->member,
		    .list = r->list,
		    .channels = r->channels,
		    .now = msg_now_ms()},
		lp_on_unsub_done, r, err, sizeof(err)) == -1) {
		mb_store_error(r->req, "unsubscribe", err);
		lp_req_free(r);
	}
}

/* ---- The list read first ---------------------------------------------- */

/* The list of req->params[0] is read: 404, or on with r->op. */
static void
lp_list_read(void *arg, json_t *o, const char *error)
{
	struct lp_req *r = arg;

	if (o == NULL) {
		if (error != NULL)
			mb_store_error(r->req, "list_get", error);
		else
			http_reply_error(r->req, 404, "not_found",
			    "no list '%s'", r->req->params[0]);
		lp_req_free(r);
		return;
	}
	r->cur = o;
	r->list = json_integer_value(json_object_get(o, "id"));
	switch (r->op) {
	case LP_GET:
		r->cur = NULL;
		http_reply_json(r->req, 200, o);
		lp_req_free(r);
		break;
	case LP_PATCH:
		lp_patch(r);
		break;
	case LP_DELETE:
		lp_delete(r);
		break;
	case LP_MEMBERS:
		lp_members(r);
		break;
	case LP_SUBSCRIBE:
		lp_sub_post(r);
		break;
	case LP_UNSUBSCRIBE:
		lp_unsubscribe(r);
		break;
	default:
		mb_list_export_start(r->m, r->req, r->list,
		    json_string_value(json_object_get(o, "name")));
		lp_req_free(r);
	}
}

/* Reads the list of req->params[0] (light: no counts), then r->op. */
static void
lp_read_list(struct lp_req *r, bool light)
{
	char err[512];

	if (store_list_json_pg(r->m->deps.st,
		&(struct list_read_pg){.ref = r->req->params[0],
		    .light = light},
		lp_list_read, r, err, sizeof(err)) == -1) {
		mb_store_error(r->req, "list_get", err);
		lp_req_free(r);
	}
}

static void
lp_list_one(struct http_req *req, void *arg)
{
	struct members *m = arg;

	if (!api_authorized(m->deps.api, req))
		return;
	if (req->method == HTTP_PATCH)
		lp_read_list(lp_req_new(m, req, LP_PATCH, "list_update"), true);
	else if (req->method == HTTP_DELETE)
		lp_read_list(lp_req_new(m, req, LP_DELETE, "list_delete"),
		    true);
	else
		lp_read_list(lp_req_new(m, req, LP_GET, "list_get"), false);
}

static void
lp_list_members(struct http_req *req, void *arg)
{
	struct members *m = arg;

	if (!api_authorized(m->deps.api, req))
		return;
	if (req->method == HTTP_POST)
		lp_read_list(lp_req_new(m, req, LP_SUBSCRIBE, "subscribe"),
		    true);
	else
		lp_read_list(lp_req_new(m, req, LP_MEMBERS, "list_members"),
		    true);
}

static void
lp_list_member_delete(struct http_req *req, void *arg)
{
	struct members *m = arg;
	struct lp_req *r;
	unsigned channels;

	if (!mb_unsub_begin(m, req, &channels))
		return;
	r = lp_req_new(m, req, LP_UNSUBSCRIBE, "unsubscribe");
	r->channels = channels;
	lp_read_list(r, true);
}

static void
lp_list_export(struct http_req *req, void *arg)
{
	struct members *m = arg;

	if (!api_authorized(m->deps.api, req))
		return;
	lp_read_list(lp_req_new(m, req, LP_EXPORT, "list_get"), true);
}

void
mb_lists_pg_routes(struct members *m, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/lists", lp_lists, m);
	http_route(srv, HTTP_GET | HTTP_PATCH | HTTP_DELETE,
	    "/api/v1/lists/{id}", lp_list_one, m);
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/lists/{id}/members",
	    lp_list_members, m);
	http_route(srv, HTTP_DELETE, "/api/v1/lists/{id}/members/{member}",
	    lp_list_member_delete, m);
	http_route(srv, HTTP_GET, "/api/v1/lists/{id}/export.csv",
	    lp_list_export, m);
}
