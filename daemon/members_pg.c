/*
 * members_pg.c - the /api/v1/members routes on a PostgreSQL store (issue
 * 13, doc/postgresql.md): create, search, one member, update, opt-out and
 * opt-in, the consent log and its export, as members.c serves them on
 * SQLite, through the operations of queue/store_members_pg.h.
 *
 * The input is checked by the same functions as on SQLite
 * (members-internal.h), so the answers and their messages are the same;
 * what differs is when the store answers. A read waits for its
 * statements' answers; a write is its statements in the node's group and
 * is answered after the COMMIT, with the member read then (as
 * mb_on_commit() does on SQLite), outside the group. A missing member,
 * a phone or email another member has, are what the write's statement
 * found, told after the commit (404, 409), not read before it: another
 * node may change them in between.
 *
 * A PATCH reads the member first (404 before anything is written; the
 * rule that a member keeps a phone or an email is checked on what it
 * read), then writes; add_tags and remove_tags are applied to the stored
 * tags by the write's statement, so two nodes changing one member's tags
 * at once lose neither change. A create's "subscribe" items are checked
 * as on SQLite, their lists read (422 for one that is not there), and the
 * subscriptions and their consent events written by the create's
 * statement. An email subscription to a double opt-in list is pending
 * with its confirmation email (email_links_subscribe_durable(): one
 * statement): the email's link is signed with the member's id, which
 * the create's statement returns only with its answer, so these are
 * written by the next group, once the create committed, and the 201
 * waits for them. A node that dies in between leaves the member without
 * those subscriptions (the retry answers 409; subscribe it with the
 * lists API). The consent log's CSV export is members_export.c's, its
 * pages read through store_export_consent_pg().
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
#include "store_members_pg.h"
#include "xmalloc.h"

#define MBP_SUBS_MAX 20 /* "subscribe" items of one create */

/* A request waiting for the store. */
struct mbp_req {
	struct members *m;
	struct http_req *req;
	int64_t id;	     /* the member */
	const char *op;	     /* "member_get", "optout", ...: the log's */
	int code;	     /* the answer's status once read */
	char loc[64];	     /* Location header, "" = none */
	json_t *extra;	     /* merged into the answer (owned) */
	json_t *body;	     /* the request's object (owned) */
	struct mb_fields mf; /* a create's, a PATCH's fields, from body */
	/* a create's "subscribe" items: the lists by reference, then by id */
	struct member_sub_pg subs[MBP_SUBS_MAX];
	const char *refs[MBP_SUBS_MAX]; /* borrowed from body or refbuf */
	char refbuf[MBP_SUBS_MAX][24];
	size_t nsubs;
	const char *source; /* consent_source, from body */
	/* a create's email subscriptions to double opt-in lists: pending
	 * with their confirmation, once the member is made */
	int64_t confirm[MBP_SUBS_MAX];
	size_t nconfirm;
	size_t confirm_left; /* their writes not answered yet */
};

static void mbp_confirm_start(struct mbp_req *r);

static struct mbp_req *
mbp_req_new(struct members *m, struct http_req *req, int64_t id, const char *op)
{
	struct mbp_req *r = xcalloc(1, sizeof(*r));

	r->m = m;
	r->req = req;
	r->id = id;
	r->op = op;
	r->code = 200;
	return r;
}

static void
mbp_req_free(struct mbp_req *r)
{
	mb_fields_clear(&r->mf);
	json_decref(r->extra);
	json_decref(r->body);
	free(r);
}

static void
mbp_no_member(struct http_req *req, const char *ref)
{
	http_reply_error(req, 404, "not_found",
	    "no member '%s' (members are addressed by id; find one "
	    "with GET /api/v1/members?phone=...)",
	    ref);
}

/* A read answered: r->code with o (and r->extra), a store error, 404. */
static void
mbp_on_json(void *arg, json_t *o, const char *error)
{
	struct mbp_req *r = arg;

	if (o != NULL) {
		if (r->extra != NULL)
			json_object_update(o, r->extra);
		if (r->loc[0] != '\0')
			http_add_header(r->req, "Location", r->loc);
		http_reply_json(r->req, r->code, o);
	} else if (error != NULL)
		mb_store_error(r->req, r->op, error);
	else
		http_reply_error(r->req, 404, "not_found", "no member %lld",
		    (long long)r->id);
	mbp_req_free(r);
}

/* Answers with member r->id, read now (after a commit). */
static void
mbp_answer_member(struct mbp_req *r)
{
	char err[256];

	if (store_member_json_pg(r->m->deps.st, r->id, mbp_on_json, r, err,
		sizeof(err)) == -1) {
		mb_store_error(r->req, r->op, err);
		mbp_req_free(r);
	}
}

/*
 * A write settled: 503 when it did not commit, 404, 409, or the member.
 * 'changed' goes into the answer for an opt-out or opt-in.
 */
static void
mbp_on_done(void *arg, const struct mb_done *d)
{
	struct mbp_req *r = arg;

	if (!d->ok) {
		if (d->error != NULL)
			log_warnx("members_store_failed op=%s error=\"%s\"",
			    r->op, d->error);
		http_reply_error(r->req, 503, "unavailable",
		    "the store could not commit; nothing was saved, retry");
	} else if (d->conflict)
		http_reply_error(r->req, 409, "conflict", "%s",
		    d->error != NULL ? d->error : "phone or email taken");
	else if (!d->found)
		http_reply_error(r->req, 404, "not_found", "no member %lld",
		    (long long)r->id);
	else {
		r->id = d->id;
		if (r->code == 201)
			snprintf(r->loc, sizeof(r->loc), "/api/v1/members/%lld",
			    (long long)r->id);
		if (strcmp(r->op, "optout") == 0 || strcmp(r->op, "optin") == 0)
			r->extra = json_pack("{s:b}", "changed", d->changed);
		if (r->nconfirm > 0)
			mbp_confirm_start(r);
		else
			mbp_answer_member(r);
		return;
	}
	mbp_req_free(r);
}

/* ---- POST /api/v1/members ----------------------------------------- */

/*
 * One pending subscription and its confirmation settled: as on SQLite a
 * confirmation that could not be made is logged, not answered; the
 * member is answered once the last one is in.
 */
static void
mbp_confirm_done(void *arg, const struct email_links_subscribe_done *d)
{
	struct mbp_req *r = arg;
	char masked[MSG_ADDR_MAX];

	if (!d->ok)
		log_warnx("members_store_failed op=subscribe member=%lld "
			  "error=\"%s\"",
		    (long long)r->id, d->error != NULL ? d->error : "-");
	else if (d->confirm_error != NULL)
		log_warnx("members_confirmation_failed member=%lld to=%s "
			  "error=\"%s\"",
		    (long long)r->id,
		    log_mask_addr(r->mf.f.email != NULL ? r->mf.f.email : "-",
			masked, sizeof(masked)),
		    d->confirm_error);
	if (--r->confirm_left == 0)
		mbp_answer_member(r);
}

/*
 * The create committed: its email subscriptions to double opt-in lists,
 * pending with their confirmation emails, then the answer (one that
 * could not be started is logged, as one that failed).
 */
static void
mbp_confirm_start(struct mbp_req *r)
{
	char err[256];
	size_t i;

	r->confirm_left = r->nconfirm + 1; /* +1: until all are sent */
	for (i = 0; i < r->nconfirm; i++) {
		if (r->m->deps.links != NULL &&
		    email_links_subscribe_durable(r->m->deps.links,
			&(struct email_links_sub){.member = r->id,
			    .list = r->confirm[i],
			    .email = r->mf.f.email},
			r->source, msg_now_ms(), mbp_confirm_done, r, err,
			sizeof(err)) == 0)
			continue;
		log_warnx("members_store_failed op=subscribe member=%lld "
			  "list=%lld error=\"%s\"",
		    (long long)r->id, (long long)r->confirm[i],
		    r->m->deps.links == NULL ? "no email links" : err);
		r->confirm_left--;
	}
	if (--r->confirm_left == 0)
		mbp_answer_member(r);
}

/* Sends a create's write, its lists resolved (r->subs). */
static void
mbp_create(struct mbp_req *r)
{
	char err[512];

	if (store_member_write_pg(r->m->deps.st,
		&(struct member_write_pg){.f = &r->mf.f,
		    .now = msg_now_ms(),
		    .subs = r->subs,
		    .nsubs = r->nsubs,
		    .source = r->source},
		mbp_on_done, r, err, sizeof(err)) == -1) {
		mb_store_error(r->req, r->op, err);
		mbp_req_free(r);
	}
}

/* Adds list to r's confirmations unless it is there (SQLite's second
 * subscription to a list changes nothing). */
static void
mbp_confirm_add(struct mbp_req *r, int64_t list)
{
	size_t i;

	for (i = 0; i < r->nconfirm; i++)
		if (r->confirm[i] == list)
			return;
	r->confirm[r->nconfirm++] = list;
}

/*
 * A create's lists read: 422 for one that does not exist, else the
 * create, whose statement writes the subscriptions but the email ones to
 * double opt-in lists (r->confirm: after it, mbp_confirm_start()).
 */
static void
mbp_subs_read(void *arg, json_t *o, const char *error)
{
	struct mbp_req *r = arg;
	json_t *l;
	size_t i, n = 0;

	if (o == NULL) {
		mb_store_error(r->req, "list_get",
		    error != NULL ? error : "no answer");
		goto fail;
	}
	for (i = 0; i < r->nsubs; i++) {
		l = json_array_get(o, i);
		if (!json_is_array(l)) {
			http_reply_error(r->req, 422, "invalid_request",
			    "subscribe[%zu].list: no list '%s'", i, r->refs[i]);
			goto fail;
		}
	}
	for (i = 0; i < r->nsubs; i++) {
		l = json_array_get(o, i);
		if (r->subs[i].ch == CHANNEL_EMAIL &&
		    json_is_true(json_array_get(l, 1))) {
			mbp_confirm_add(r,
			    json_integer_value(json_array_get(l, 0)));
			continue;
		}
		r->subs[n].ch = r->subs[i].ch;
		r->subs[n++].list = json_integer_value(json_array_get(l, 0));
	}
	r->nsubs = n;
	json_decref(o);
	mbp_create(r);
	return;
fail:
	json_decref(o);
	mbp_req_free(r);
}

/*
 * The "subscribe" items of a create into r (their lists by reference,
 * resolved later), checked as members.c's mb_parse_subs() checks them.
 */
static int
mbp_parse_subs(struct mbp_req *r, json_t *o, char *err, size_t errlen)
{
	json_t *a, *it;
	size_t i;
	int ch;

	r->nsubs = 0;
	if (mb_subscribe_head(o, MBP_SUBS_MAX, &r->source, &a, err, errlen) ==
	    -1)
		return -1;
	if (a == NULL)
		return 0;
	json_array_foreach(a, i, it) {
		if (mb_subscribe_item(it, i, &r->mf, r->refbuf[i], &r->refs[i],
			&ch, err, errlen) == -1)
			return -1;
		r->subs[i].ch = ch;
		r->nsubs = i + 1;
	}
	return 0;
}

static void
mbp_members_post(struct http_req *req, struct members *m)
{
	static const char *const known[] = {"phone", "email", "first_name",
	    "last_name", "zip", "time_zone", "attributes", "tags", "subscribe",
	    "consent_source", NULL};
	struct mbp_req *r;
	json_t *o;
	char err[512];

	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	r = mbp_req_new(m, req, 0, "member_create");
	r->body = o;
	r->code = 201;
	if (api_check_fields(o, known, err, sizeof(err)) == -1 ||
	    mb_parse_fields(m, o, &r->mf, false, err, sizeof(err)) == -1)
		goto invalid;
	if (r->mf.f.phone == NULL && r->mf.f.email == NULL) {
		snprintf(err, sizeof(err),
		    "phone: a phone or an email is required");
		goto invalid;
	}
	if (mbp_parse_subs(r, o, err, sizeof(err)) == -1)
		goto invalid;
	if (r->nsubs == 0) {
		mbp_create(r);
		return;
	}
	if (store_lists_resolve_pg(m->deps.st, r->refs, r->nsubs, mbp_subs_read,
		r, err, sizeof(err)) == -1) {
		mb_store_error(req, "list_get", err);
		goto out;
	}
	return;
invalid:
	mb_invalid(req, err);
out:
	mbp_req_free(r);
}

/* ---- GET /api/v1/members (search) --------------------------------- */

static void
mbp_on_search(void *arg, json_t *o, const char *error)
{
	struct mbp_req *r = arg;

	if (o != NULL)
		http_reply_json(r->req, 200, o);
	else if (error != NULL)
		mb_store_error(r->req, r->op, error);
	else
		http_reply_error(r->req, 404, "not_found", "no list '%s'",
		    json_string_value(r->body));
	mbp_req_free(r);
}

static void
mbp_members_get(struct http_req *req, void *arg)
{
	static const char *const known[] = {"phone", "email", "name", "tag",
	    "list", "after", "limit", NULL};
	struct members *m = arg;
	struct member_search s = {0};
	struct evkeyvalq q;
	struct mbp_req *r;
	char err[512], phone[PHONE_E164_MAX], *email = NULL;
	const char *v;

	if (req->method == HTTP_POST) {
		mbp_members_post(req, m);
		return;
	}
	if (!api_authorized(m->deps.api, req) ||
	    !api_read_query(req, &q, known))
		return;
	if (mb_page(&q, &s.q.after, &s.q.limit, err, sizeof(err)) == -1)
		goto invalid;
	if ((v = evhttp_find_header(&q, "phone")) != NULL) {
		if (mb_phone(m,
			&(struct mb_phonein){.field = "phone",
			    .text = v,
			    .use = MB_PHONE_FIND},
			phone, sizeof(phone), err, sizeof(err)) == -1)
			goto invalid;
		s.q.phone = phone;
	}
	if ((v = evhttp_find_header(&q, "email")) != NULL) {
		if ((email = mb_email(v, err, sizeof(err))) == NULL)
			goto invalid;
		s.q.email = email;
	}
	s.q.name = evhttp_find_header(&q, "name");
	s.q.tag = evhttp_find_header(&q, "tag");
	s.list_ref = evhttp_find_header(&q, "list");
	r = mbp_req_new(m, req, 0, "member_search");
	r->body = s.list_ref != NULL ? json_string(s.list_ref) : NULL;
	if (store_member_search_pg(m->deps.st, &s, mbp_on_search, r, err,
		sizeof(err)) == -1) {
		mbp_req_free(r);
		mb_store_error(req, "member_search", err);
	}
	goto out;
invalid:
	mb_invalid(req, err);
out:
	free(email);
	evhttp_clear_headers(&q);
}

/* ---- GET / PATCH /api/v1/members/{id} ----------------------------- */

/* The member a PATCH read: check, apply the tags, write. */
static void
mbp_patch_read(void *arg, json_t *cur, const char *error)
{
	struct mbp_req *r = arg;
	struct mb_fields *mf = &r->mf;
	char err[512];
	bool phone, email;

	if (cur == NULL) {
		mbp_on_json(r, NULL, error);
		return;
	}
	phone = mf->f.set & MF_PHONE
	    ? mf->f.phone != NULL
	    : json_is_string(json_object_get(cur, "phone"));
	email = mf->f.set & MF_EMAIL
	    ? mf->f.email != NULL
	    : json_is_string(json_object_get(cur, "email"));
	if (!phone && !email) {
		mb_invalid(r->req,
		    "phone: a member must keep a phone or an email");
		goto fail;
	}
	if (mf->f.set == 0 && mf->add_tags == NULL && mf->remove_tags == NULL) {
		mbp_on_json(r, cur, NULL); /* nothing to write */
		return;
	}
	json_decref(cur);
	if (store_member_write_pg(r->m->deps.st,
		&(struct member_write_pg){.id = r->id,
		    .f = &mf->f,
		    .now = msg_now_ms(),
		    .add_tags = mf->add_tags,
		    .remove_tags = mf->remove_tags},
		mbp_on_done, r, err, sizeof(err)) == -1) {
		mb_store_error(r->req, r->op, err);
		mbp_req_free(r);
	}
	return;
fail:
	json_decref(cur);
	mbp_req_free(r);
}

static void
mbp_member_patch(struct http_req *req, struct members *m)
{
	static const char *const known[] = {"phone", "email", "first_name",
	    "last_name", "zip", "time_zone", "attributes", "replace_attributes",
	    "tags", "add_tags", "remove_tags", NULL};
	struct mbp_req *r;
	char err[512];
	int64_t id;
	json_t *o;

	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	r = mbp_req_new(m, req, 0, "member_update");
	r->body = o;
	if (api_check_fields(o, known, err, sizeof(err)) == -1 ||
	    mb_parse_fields(m, o, &r->mf, true, err, sizeof(err)) == -1) {
		mb_invalid(req, err);
		goto fail;
	}
	if (!mb_parse_id(req->params[0], &id)) {
		mbp_no_member(req, req->params[0]);
		goto fail;
	}
	r->id = id;
	if (store_member_json_pg(m->deps.st, id, mbp_patch_read, r, err,
		sizeof(err)) == -1) {
		mb_store_error(req, "member_get", err);
		goto fail;
	}
	return;
fail:
	mbp_req_free(r);
}

static void
mbp_member_get(struct http_req *req, void *arg)
{
	struct members *m = arg;
	struct mbp_req *r;
	int64_t id;

	if (req->method == HTTP_PATCH) {
		mbp_member_patch(req, m);
		return;
	}
	if (!api_authorized(m->deps.api, req))
		return;
	if (!mb_parse_id(req->params[0], &id)) {
		mbp_no_member(req, req->params[0]);
		return;
	}
	r = mbp_req_new(m, req, id, "member_get");
	mbp_answer_member(r);
}

/* ---- POST /api/v1/members/{id}/optout and /optin ------------------ */

static void
mbp_member_optchange(struct http_req *req, struct members *m, bool out)
{
	static const char *const known[] = {"channel", "detail", NULL};
	struct consent_change cc = {.source = CONSENT_API};
	struct mbp_req *r;
	const char *detail;
	char err[512];
	int64_t id;
	json_t *o;
	int ch, rc;

	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	if (api_check_fields(o, known, err, sizeof(err)) == -1 ||
	    mb_channel(o, "channel", true, &ch, err, sizeof(err)) == -1 ||
	    mb_str(o,
		&(struct mb_strfield){.key = "detail", .max = MB_SOURCE_MAX},
		&detail, NULL, err, sizeof(err)) == -1) {
		mb_invalid(req, err);
		json_decref(o);
		return;
	}
	if (!mb_parse_id(req->params[0], &id)) {
		mbp_no_member(req, req->params[0]);
		json_decref(o);
		return;
	}
	r = mbp_req_new(m, req, id, out ? "optout" : "optin");
	r->body = o;
	cc.member = id;
	cc.ch = ch;
	cc.detail = detail;
	cc.now = msg_now_ms();
	rc = out ? store_member_optout_pg(m->deps.st, &cc, mbp_on_done, r, err,
		       sizeof(err))
		 : store_member_optin_pg(m->deps.st, &cc, mbp_on_done, r, err,
		       sizeof(err));
	if (rc == -1) {
		mb_store_error(req, r->op, err);
		mbp_req_free(r);
	}
}

static void
mbp_member_optout(struct http_req *req, void *arg)
{
	mbp_member_optchange(req, arg, true);
}

static void
mbp_member_optin(struct http_req *req, void *arg)
{
	mbp_member_optchange(req, arg, false);
}

/* ---- GET /api/v1/members/{id}/consent ----------------------------- */

static void
mbp_member_consent(struct http_req *req, void *arg)
{
	static const char *const known[] = {"after", "limit", NULL};
	struct members *m = arg;
	struct consent_page p = {0};
	struct evkeyvalq q;
	struct mbp_req *r;
	char err[512];

	if (!api_authorized(m->deps.api, req) ||
	    !api_read_query(req, &q, known))
		return;
	if (mb_page(&q, &p.after, &p.limit, err, sizeof(err)) == -1)
		mb_invalid(req, err);
	else if (!mb_parse_id(req->params[0], &p.member))
		mbp_no_member(req, req->params[0]);
	else {
		r = mbp_req_new(m, req, p.member, "consent");
		if (store_consent_json_pg(m->deps.st, &p, mbp_on_json, r, err,
			sizeof(err)) == -1) {
			mbp_req_free(r);
			mb_store_error(req, "consent", err);
		}
	}
	evhttp_clear_headers(&q);
}

void
mb_pg_routes(struct members *m, struct http_server *srv)
{
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/members",
	    mbp_members_get, m);
	http_route(srv, HTTP_GET | HTTP_PATCH, "/api/v1/members/{id}",
	    mbp_member_get, m);
	http_route(srv, HTTP_POST, "/api/v1/members/{id}/optout",
	    mbp_member_optout, m);
	http_route(srv, HTTP_POST, "/api/v1/members/{id}/optin",
	    mbp_member_optin, m);
	http_route(srv, HTTP_GET, "/api/v1/members/{id}/consent",
	    mbp_member_consent, m);
	http_route(srv, HTTP_GET, "/api/v1/consent/export.csv",
	    mb_consent_export, m);
}
