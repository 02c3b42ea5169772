/*
 * members.c - the members API: /api/v1/members (create, search, fetch,
 * update, opt-out and opt-in, the consent log), the module's routes and
 * the answer of a write after its group commit. The lists API is in
 * members_lists.c, the CSV exports in members_export.c, the parsing of
 * request fields in members_fields.c; members-internal.h holds what they
 * share.
 *
 * As in api.c, every handler validates its whole input before it touches
 * the store and names the field at fault; a write is answered from a
 * store_on_commit() callback, so a 201 means the rows are on disk. Phone
 * numbers are normalized to E.164 with phone.h and the [sms]
 * default_region, emails are checked (email_addr.h) and lower-cased.
 */

#include "autoconf.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "api.h"
#include "compat.h"
#include "http.h"
#include "members-internal.h"
#include "members.h"
#include "message.h"
#include "phone.h"
#include "store.h"
#include "store_members.h"
#include "xmalloc.h"

#define MB_SUBSCRIBE_MAX 20 /* "subscribe" items of one create */

/* One "subscribe" item of a create. */
struct mb_sub {
	int64_t list;
	enum channel ch;
	bool double_optin;
};

/* The "subscribe" items of a create and their consent_source. */
struct mb_subs {
	struct mb_sub item[MB_SUBSCRIBE_MAX];
	size_t n;
	const char *source; /* borrowed from the request's JSON */
};

static void mb_members_post(struct http_req *, void *);
static void mb_members_get(struct http_req *, void *);
static void mb_member_get(struct http_req *, void *);
static void mb_member_patch(struct http_req *, void *);
static void mb_member_optout(struct http_req *, void *);
static void mb_member_optin(struct http_req *, void *);
static void mb_member_consent(struct http_req *, void *);
static void mb_on_commit(void *, bool);

struct members *
members_new(struct http_server *srv, const struct members_deps *deps)
{
	struct members *m = xcalloc(1, sizeof(*m));

	m->deps = *deps;
	TAILQ_INIT(&m->exports);
	if (store_backend(deps->st) == STORE_POSTGRESQL) {
		/* members_pg.c, lists_pg.c */
		mb_pg_routes(m, srv);
		mb_lists_pg_routes(m, srv);
		return m;
	}
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/members", mb_members_get,
	    m);
	http_route(srv, HTTP_GET | HTTP_PATCH, "/api/v1/members/{id}",
	    mb_member_get, m);
	http_route(srv, HTTP_POST, "/api/v1/members/{id}/optout",
	    mb_member_optout, m);
	http_route(srv, HTTP_POST, "/api/v1/members/{id}/optin",
	    mb_member_optin, m);
	http_route(srv, HTTP_GET, "/api/v1/members/{id}/consent",
	    mb_member_consent, m);
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/lists", mb_lists_get, m);
	http_route(srv, HTTP_GET | HTTP_PATCH | HTTP_DELETE,
	    "/api/v1/lists/{id}", mb_list_one, m);
	http_route(srv, HTTP_GET | HTTP_POST, "/api/v1/lists/{id}/members",
	    mb_list_members_get, m);
	http_route(srv, HTTP_DELETE, "/api/v1/lists/{id}/members/{member}",
	    mb_list_member_delete, m);
	http_route(srv, HTTP_GET, "/api/v1/lists/{id}/export.csv",
	    mb_list_export, m);
	http_route(srv, HTTP_GET, "/api/v1/consent/export.csv",
	    mb_consent_export, m);
	return m;
}

void
members_free(struct members *m)
{
	struct mb_export *x;

	if (m == NULL)
		return;
	while ((x = TAILQ_FIRST(&m->exports)) != NULL) {
		http_reply_end(x->req);
		if (x->busy) { /* its read answers later: freed then */
			TAILQ_REMOVE(&m->exports, x, entry);
			x->orphan = true;
		} else
			mb_export_free(x);
	}
	free(m);
}

/* ---- Small helpers ------------------------------------------------ */

/* Keeps req until the open group commits, then answers per p. */
void
mb_commit(struct members *m, struct http_req *req, struct mb_pending *p)
{
	p->m = m;
	p->req = req;
	store_on_commit(m->deps.st, mb_on_commit, p);
}

struct mb_pending *
mb_pending_new(int code)
{
	struct mb_pending *p = xcalloc(1, sizeof(*p));

	p->code = code;
	return p;
}

static void
mb_on_commit(void *arg, bool ok)
{
	struct mb_pending *p = arg;
	char err[256] = "";
	json_t *o = NULL;

	if (!ok) {
		http_reply_error(p->req, 503, "unavailable",
		    "the store could not commit; nothing was saved, retry");
		goto done;
	}
	if (p->body != NULL) {
		o = p->body;
		p->body = NULL;
	} else if (p->member != 0)
		o = store_member_json(p->m->deps.st, p->member, err,
		    sizeof(err));
	else if (p->list != 0)
		o = store_list_json(p->m->deps.st, p->list, err, sizeof(err));
	if (o == NULL) {
		if (err[0] == '\0')
			snprintf(err, sizeof(err), "row vanished");
		mb_store_error(p->req, "reply", err);
		goto done;
	}
	if (p->extra != NULL)
		json_object_update(o, p->extra);
	if (p->loc[0] != '\0')
		http_add_header(p->req, "Location", p->loc);
	http_reply_json(p->req, p->code, o);
done:
	json_decref(p->body);
	json_decref(p->extra);
	free(p);
}

/* Common start of a write: auth, not stopping, a JSON object body. */
json_t *
mb_write_begin(struct members *m, struct http_req *req)
{
	if (!api_authorized(m->deps.api, req))
		return NULL;
	if (api_is_stopping(m->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return NULL;
	}
	return api_read_object(req);
}

/* ---- POST /api/v1/members ----------------------------------------- */

int
mb_subscribe_head(json_t *o, size_t max, const char **source, json_t **items,
    char *err, size_t errlen)
{
	json_t *a = json_object_get(o, "subscribe");

	*items = NULL;
	if (mb_str(o,
		&(struct mb_strfield){.key = "consent_source",
		    .max = MB_SOURCE_MAX},
		source, NULL, err, errlen) == -1)
		return -1;
	if (a == NULL || json_is_null(a))
		return 0;
	if (!json_is_array(a) || json_array_size(a) > max) {
		snprintf(err, errlen,
		    "subscribe: must be an array of at most %zu "
		    "{\"list\", \"channel\"} objects",
		    max);
		return -1;
	}
	if (json_array_size(a) > 0 && (*source == NULL || **source == '\0')) {
		snprintf(err, errlen,
		    "consent_source: required when subscribing (how the "
		    "member agreed, e.g. \"signup form at the rally\")");
		return -1;
	}
	*items = a;
	return 0;
}

int
mb_subscribe_item(json_t *it, size_t i, const struct mb_fields *mf,
    char ref[24], const char **list, int *ch, char *err, size_t errlen)
{
	json_t *l = json_object_get(it, "list");

	if (json_is_integer(l))
		snprintf(ref, 24, "%lld", (long long)json_integer_value(l));
	*list = json_is_integer(l) ? ref : json_string_value(l);
	if (!json_is_object(it) || *list == NULL) {
		snprintf(err, errlen,
		    "subscribe[%zu].list: required (a list name or id)", i);
		return -1;
	}
	if (mb_channel(it, "channel", false, ch, err, errlen) == -1)
		return -1;
	if (*ch == -1)
		*ch = mf->f.phone != NULL ? CHANNEL_SMS : CHANNEL_EMAIL;
	if ((*ch == CHANNEL_SMS && mf->f.phone == NULL) ||
	    (*ch == CHANNEL_EMAIL && mf->f.email == NULL)) {
		snprintf(err, errlen,
		    "subscribe[%zu].channel: %s needs the member's %s", i,
		    channel_to_text(*ch),
		    *ch == CHANNEL_SMS ? "phone" : "email");
		return -1;
	}
	return 0;
}

/* The "subscribe" items of a create, lists resolved, into *subs. */
static int
mb_parse_subs(struct members *m, json_t *o, const struct mb_fields *mf,
    struct mb_subs *subs, char *err, size_t errlen)
{
	json_t *a, *it;
	struct list_info li;
	char ref[24];
	const char *name;
	struct mb_listhit h;
	size_t i;
	int ch;

	subs->n = 0;
	if (mb_subscribe_head(o, MB_SUBSCRIBE_MAX, &subs->source, &a, err,
		errlen) == -1)
		return -1;
	if (a == NULL)
		return 0;
	json_array_foreach(a, i, it) {
		if (mb_subscribe_item(it, i, mf, ref, &name, &ch, err,
			errlen) == -1)
			return -1;
		memset(&li, 0, sizeof(li));
		if (mb_list_ref(m, name, &li, &h, err, errlen) == -1)
			return -2; /* store error */
		if (!h.found) {
			snprintf(err, errlen,
			    "subscribe[%zu].list: no list '%s'", i, name);
			return -1;
		}
		subs->item[i].list = h.id;
		subs->item[i].ch = ch;
		subs->item[i].double_optin = li.double_optin;
		list_info_clear(&li);
		subs->n = i + 1;
	}
	return 0;
}

static void
mb_members_post(struct http_req *req, void *arg)
{
	static const char *const known[] = {"phone", "email", "first_name",
	    "last_name", "zip", "time_zone", "attributes", "tags", "subscribe",
	    "consent_source", NULL};
	struct members *m = arg;
	struct mb_fields mf = {0};
	struct mb_subs subs = {0};
	struct mb_pending *p;
	char err[512];
	struct member_write mw = {0};
	size_t i;
	int64_t id;
	json_t *o;
	int rc;

	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	if (api_check_fields(o, known, err, sizeof(err)) == -1 ||
	    mb_parse_fields(m, o, &mf, false, err, sizeof(err)) == -1)
		goto invalid;
	if (mf.f.phone == NULL && mf.f.email == NULL) {
		snprintf(err, sizeof(err),
		    "phone: a phone or an email is "
		    "required");
		goto invalid;
	}
	if ((rc = mb_parse_subs(m, o, &mf, &subs, err, sizeof(err))) == -2) {
		mb_store_error(req, "list_get", err);
		goto out;
	} else if (rc == -1)
		goto invalid;
	mw.now = msg_now_ms();
	if (store_member_create(m->deps.st, &mf.f, &mw, err, sizeof(err)) ==
	    -1) {
		if (mw.conflict)
			http_reply_error(req, 409, "conflict", "%s", err);
		else
			mb_store_error(req, "member_create", err);
		goto out;
	}
	id = mw.id;
	for (i = 0; i < subs.n; i++) {
		struct mb_subreq r = {.member = id,
		    .list = subs.item[i].list,
		    .ch = subs.item[i].ch,
		    .double_optin = subs.item[i].double_optin,
		    .email = mf.f.email,
		    .source = subs.source};

		if (mb_subscribe(m, &r, err, sizeof(err)) == -1) {
			mb_store_error(req, "subscribe", err);
			goto out;
		}
	}
	p = mb_pending_new(201);
	p->member = id;
	snprintf(p->loc, sizeof(p->loc), "/api/v1/members/%lld", (long long)id);
	mb_commit(m, req, p);
	goto out;
invalid:
	mb_invalid(req, err);
out:
	mb_fields_clear(&mf);
	json_decref(o);
}

/* ---- GET /api/v1/members (search) --------------------------------- */

static void
mb_members_get(struct http_req *req, void *arg)
{
	static const char *const known[] = {"phone", "email", "name", "tag",
	    "list", "after", "limit", NULL};
	struct members *m = arg;
	struct member_query mq = {0};
	struct evkeyvalq q;
	char err[512], phone[PHONE_E164_MAX], *email = NULL;
	const char *s;
	json_t *o;

	if (req->method == HTTP_POST) {
		mb_members_post(req, arg);
		return;
	}
	if (!api_authorized(m->deps.api, req) ||
	    !api_read_query(req, &q, known))
		return;
	if (mb_page(&q, &mq.after, &mq.limit, err, sizeof(err)) == -1)
		goto invalid;
	if ((s = evhttp_find_header(&q, "phone")) != NULL) {
		if (mb_phone(m,
			&(struct mb_phonein){.field = "phone",
			    .text = s,
			    .use = MB_PHONE_FIND},
			phone, sizeof(phone), err, sizeof(err)) == -1)
			goto invalid;
		mq.phone = phone;
	}
	if ((s = evhttp_find_header(&q, "email")) != NULL) {
		if ((email = mb_email(s, err, sizeof(err))) == NULL)
			goto invalid;
		mq.email = email;
	}
	mq.name = evhttp_find_header(&q, "name");
	mq.tag = evhttp_find_header(&q, "tag");
	if ((s = evhttp_find_header(&q, "list")) != NULL &&
	    !mb_list_param(m, req, s, &mq.list_id, NULL))
		goto out;
	if ((o = store_member_search(m->deps.st, &mq, err, sizeof(err))) ==
	    NULL)
		mb_store_error(req, "member_search", err);
	else
		http_reply_json(req, 200, o);
	goto out;
invalid:
	mb_invalid(req, err);
out:
	free(email);
	evhttp_clear_headers(&q);
}

/* ---- GET / PATCH /api/v1/members/{id} ----------------------------- */

/* Applies add_tags / remove_tags to the member's current tags. */
static void
mb_tags_apply(struct mb_fields *mf, const json_t *cur)
{
	json_t *tags = json_array(), *t, *u;
	size_t i, j;

	json_array_foreach(cur, i, t) {
		json_array_foreach(mf->remove_tags, j, u)
			if (json_equal(t, u))
				break;
		if (mf->remove_tags == NULL ||
		    j == json_array_size(mf->remove_tags))
			json_array_append(tags, t);
	}
	json_array_foreach(mf->add_tags, i, t) {
		json_array_foreach(tags, j, u)
			if (json_equal(t, u))
				break;
		if (j == json_array_size(tags))
			json_array_append(tags, t);
	}
	mf->tags = tags;
	mf->f.tags = tags;
	mf->f.set |= MF_TAGS;
}

static void
mb_member_patch(struct http_req *req, void *arg)
{
	static const char *const known[] = {"phone", "email", "first_name",
	    "last_name", "zip", "time_zone", "attributes", "replace_attributes",
	    "tags", "add_tags", "remove_tags", NULL};
	struct members *m = arg;
	struct mb_fields mf = {0};
	struct mb_pending *p;
	char err[512];
	struct member_write mw = {0};
	bool phone, email;
	json_t *o, *cur = NULL;
	int64_t id;

	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	if (api_check_fields(o, known, err, sizeof(err)) == -1 ||
	    mb_parse_fields(m, o, &mf, true, err, sizeof(err)) == -1) {
		mb_invalid(req, err);
		goto out;
	}
	if (!mb_member_param(m, req, req->params[0], &id, &cur))
		goto out;
	phone = mf.f.set & MF_PHONE
	    ? mf.f.phone != NULL
	    : json_is_string(json_object_get(cur, "phone"));
	email = mf.f.set & MF_EMAIL
	    ? mf.f.email != NULL
	    : json_is_string(json_object_get(cur, "email"));
	if (!phone && !email) {
		mb_invalid(req,
		    "phone: a member must keep a phone or an "
		    "email");
		goto out;
	}
	if (mf.add_tags != NULL || mf.remove_tags != NULL)
		mb_tags_apply(&mf, json_object_get(cur, "tags"));
	mw.now = msg_now_ms();
	if (mf.f.set != 0 &&
	    store_member_update(m->deps.st, id, &mf.f, &mw, err, sizeof(err)) ==
		-1) {
		if (mw.conflict)
			http_reply_error(req, 409, "conflict", "%s", err);
		else
			mb_store_error(req, "member_update", err);
		goto out;
	}
	p = mb_pending_new(200);
	p->member = id;
	mb_commit(m, req, p);
out:
	mb_fields_clear(&mf);
	json_decref(cur);
	json_decref(o);
}

static void
mb_member_get(struct http_req *req, void *arg)
{
	struct members *m = arg;
	int64_t id;
	json_t *o;

	if (req->method == HTTP_PATCH) {
		mb_member_patch(req, arg);
		return;
	}
	if (!api_authorized(m->deps.api, req))
		return;
	if (mb_member_param(m, req, req->params[0], &id, &o))
		http_reply_json(req, 200, o);
}

/* ---- POST /api/v1/members/{id}/optout and /optin ------------------ */

static void
mb_member_optchange(struct http_req *req, struct members *m, bool out)
{
	static const char *const known[] = {"channel", "detail", NULL};
	struct consent_change cc = {.source = CONSENT_API};
	struct mb_pending *p;
	const char *detail;
	char err[512];
	bool changed = false;
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
		goto done;
	}
	if (!mb_member_param(m, req, req->params[0], &id, NULL))
		goto done;
	cc.member = id;
	cc.ch = ch;
	cc.detail = detail;
	cc.now = msg_now_ms();
	rc = out
	    ? store_member_optout_id(m->deps.st, &cc, &changed, err,
		  sizeof(err))
	    : store_member_optin(m->deps.st, &cc, &changed, err, sizeof(err));
	if (rc == -1) {
		mb_store_error(req, out ? "optout" : "optin", err);
		goto done;
	}
	p = mb_pending_new(200);
	p->member = id;
	p->extra = json_pack("{s:b}", "changed", changed);
	mb_commit(m, req, p);
done:
	json_decref(o);
}

static void
mb_member_optout(struct http_req *req, void *arg)
{
	mb_member_optchange(req, arg, true);
}

static void
mb_member_optin(struct http_req *req, void *arg)
{
	mb_member_optchange(req, arg, false);
}

/* ---- GET /api/v1/members/{id}/consent ----------------------------- */

static void
mb_member_consent(struct http_req *req, void *arg)
{
	static const char *const known[] = {"after", "limit", NULL};
	struct members *m = arg;
	struct evkeyvalq q;
	char err[512] = "";
	unsigned limit;
	int64_t id, after;
	json_t *o;

	if (!api_authorized(m->deps.api, req) ||
	    !api_read_query(req, &q, known))
		return;
	if (mb_page(&q, &after, &limit, err, sizeof(err)) == -1)
		mb_invalid(req, err);
	else if (mb_member_param(m, req, req->params[0], &id, NULL)) {
		if ((o = store_consent_json(m->deps.st, id, after, limit, err,
			 sizeof(err))) == NULL) {
			if (err[0] == '\0')
				snprintf(err, sizeof(err), "no consent log");
			mb_store_error(req, "consent", err);
		} else
			http_reply_json(req, 200, o);
	}
	evhttp_clear_headers(&q);
}
