/*
 * members_lists.c - the lists API: /api/v1/lists (create, fetch, update,
 * delete) and /api/v1/lists/{id}/members (who is on a list, subscribe
 * and unsubscribe), with the subscription helper the members API uses
 * for the "subscribe" items of a create.
 */

#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "api.h"
#include "compat.h"
#include "config.h"
#include "dispatch.h"
#include "email_links.h"
#include "http.h"
#include "inbound.h"
#include "log.h"
#include "members-internal.h"
#include "members.h"
#include "message.h"
#include "phone.h"
#include "quiet.h"
#include "store.h"
#include "store_members.h"
#include "xmalloc.h"

#define MB_TEXT_MAX	1600 /* welcome texts, prompts */
#define MB_KEYWORDS_MAX 20
#define MB_ZONE_MAX	64 /* time_zone, bytes (as members' time_zone) */

static void mb_lists_post(struct http_req *, void *);

/* ---- Small helpers ------------------------------------------------ */

/*
 * Subscribes member to list on ch from the API: pending for an email
 * subscription to a double opt-in list (and the confirmation email is
 * queued), active otherwise. The channel's opt-out is left alone: an
 * opted-out member is subscribed but not messaged until opted in.
 */
int
mb_subscribe(struct members *m, struct mb_subreq *r, char *err, size_t errlen)
{
	char cerr[256], masked[MSG_ADDR_MAX];
	int64_t now = msg_now_ms();

	r->status = r->ch == CHANNEL_EMAIL && r->double_optin ? SUB_PENDING
							      : SUB_ACTIVE;
	if (store_subscribe(m->deps.st,
		&(struct consent_change){.member = r->member,
		    .list = r->list,
		    .ch = r->ch,
		    .source = CONSENT_API,
		    .detail = r->source,
		    .now = now},
		r->status, &r->change, err, errlen) == -1)
		return -1;
	if (r->status != SUB_PENDING ||
	    (r->change != SUB_CHANGE_NEW && r->change != SUB_CHANGE_REJOINED))
		return 0;
	if (r->email == NULL || m->deps.links == NULL ||
	    email_links_send_confirmation(m->deps.links,
		&(struct email_links_sub){.member = r->member,
		    .list = r->list,
		    .email = r->email},
		now, cerr, sizeof(cerr)) == -1) {
		log_warnx("members_confirmation_failed member=%lld list=%lld "
			  "to=%s error=\"%s\"",
		    (long long)r->member, (long long)r->list,
		    log_mask_addr(r->email != NULL ? r->email : "-", masked,
			sizeof(masked)),
		    m->deps.links == NULL ? "no email links" : cerr);
	}
	return 0;
}

const char *
mb_sub_status_text(enum sub_status s)
{
	return s == SUB_PENDING ? "pending"
	    : s == SUB_ACTIVE	? "active"
				: "left";
}

const char *
mb_sub_change_text(enum sub_change c)
{
	switch (c) {
	case SUB_CHANGE_NEW:
		return "new";
	case SUB_CHANGE_REJOINED:
		return "rejoined";
	case SUB_CHANGE_ACTIVATED:
		return "activated";
	default:
		return "already";
	}
}

/* ---- Lists -------------------------------------------------------- */

void
mb_listdef_clear(struct mb_listdef *ld)
{
	size_t i;

	for (i = 0; i < ld->nkeywords; i++)
		free(ld->keywords[i]);
	free(ld->keywords);
	memset(ld, 0, sizeof(*ld));
}

/* keywords: upper-cased, letters and digits, not a compliance word. */
static int
mb_parse_keywords(struct members *m, json_t *a, struct mb_listdef *ld,
    char *err, size_t errlen)
{
	const char *s;
	char *k, *p;
	json_t *v;
	size_t i, j;

	if (!json_is_array(a) || json_array_size(a) > MB_KEYWORDS_MAX) {
		snprintf(err, errlen,
		    "keywords: must be an array of at most %d strings",
		    MB_KEYWORDS_MAX);
		return -1;
	}
	ld->keywords = xcalloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach(a, i, v) {
		if ((s = json_string_value(v)) == NULL || *s == '\0' ||
		    strlen(s) > LIST_KEYWORD_MAX) {
			snprintf(err, errlen,
			    "keywords[%zu]: a word of 1 to %d letters or "
			    "digits",
			    i, LIST_KEYWORD_MAX);
			return -1;
		}
		k = xstrdup(s);
		ld->keywords[ld->nkeywords++] = k;
		for (p = k; *p != '\0'; p++) {
			if (!isalnum((unsigned char)*p) || (*p & 0x80)) {
				snprintf(err, errlen,
				    "keywords[%zu]: '%s' must be one word of "
				    "letters and digits",
				    i, s);
				return -1;
			}
			*p = (char)toupper((unsigned char)*p);
		}
		if (inbound_word_reserved(k, m->deps.cfg)) {
			snprintf(err, errlen,
			    "keywords[%zu]: %s is a compliance word (STOP, "
			    "START, HELP, ...) and cannot join a list",
			    i, k);
			return -1;
		}
		for (j = 0; j < i; j++)
			if (strcmp(ld->keywords[j], k) == 0) {
				snprintf(err, errlen,
				    "keywords[%zu]: %s is given twice", i, k);
				return -1;
			}
	}
	ld->d.keywords = (const char *const *)ld->keywords;
	ld->d.nkeywords = ld->nkeywords;
	return 0;
}

static int
mb_parse_questions(json_t *a, struct mb_listdef *ld, char *err, size_t errlen)
{
	static const char *const fields[] = {"first_name", "last_name", "zip",
	    "email", NULL};
	const char *f, *pr;
	json_t *v;
	size_t i, j;

	if (!json_is_array(a) || json_array_size(a) > MB_QUESTIONS_MAX) {
		snprintf(err, errlen,
		    "questions: must be an array of at most %d {\"field\", "
		    "\"prompt\"} objects",
		    MB_QUESTIONS_MAX);
		return -1;
	}
	json_array_foreach(a, i, v) {
		f = json_string_value(json_object_get(v, "field"));
		pr = json_string_value(json_object_get(v, "prompt"));
		for (j = 0; f != NULL && fields[j] != NULL &&
		     strcmp(fields[j], f) != 0;
		     j++)
			;
		if (f == NULL || fields[j] == NULL) {
			snprintf(err, errlen,
			    "questions[%zu].field: one of first_name, "
			    "last_name, zip, email",
			    i);
			return -1;
		}
		if (pr == NULL || *pr == '\0' || strlen(pr) > MB_TEXT_MAX) {
			snprintf(err, errlen,
			    "questions[%zu].prompt: required, at most %d "
			    "bytes",
			    i, MB_TEXT_MAX);
			return -1;
		}
		ld->q[i].field = f;
		ld->q[i].prompt = pr;
	}
	ld->d.questions = ld->q;
	ld->d.nquestions = json_array_size(a);
	return 0;
}

/*
 * time_zone: the zone quiet hours use for the list's members who have
 * none of their own and whose number tells none; the rule members'
 * time_zone follows (quiet_zone_valid()). null or "" clears it.
 */
static int
mb_parse_list_zone(json_t *o, struct mb_listdef *ld, char *err, size_t errlen)
{
	const char *s;
	bool present;

	if (mb_str(o,
		&(struct mb_strfield){.key = "time_zone", .max = MB_ZONE_MAX},
		&s, &present, err, errlen) == -1)
		return -1;
	if (!present)
		return 0;
	if (s != NULL && *s != '\0' && !quiet_zone_valid(s)) {
		snprintf(err, errlen,
		    "time_zone: '%.64s' is not a time zone of this system's tz "
		    "database (an IANA name such as \"America/Chicago\")",
		    s);
		return -1;
	}
	ld->d.time_zone = s != NULL && *s != '\0' ? s : NULL;
	return 0;
}

/*
 * The fields of a list create (all) or update (those present replace
 * what ld already holds).
 */
int
mb_parse_list(struct members *m, json_t *o, struct mb_listdef *ld, char *err,
    size_t errlen)
{
	static const char *const known[] = {"name", "keywords", "sender",
	    "welcome_sms", "welcome_email_subject", "welcome_email",
	    "double_optin", "questions", "time_zone", NULL};
	const char *s;
	bool present;
	json_t *v;
	int64_t id;

	if (api_check_fields(o, known, err, errlen) == -1)
		return -1;
	if (mb_str(o,
		&(struct mb_strfield){.key = "name", .max = LIST_NAME_MAX}, &s,
		&present, err, errlen) == -1)
		return -1;
	if (present) {
		if (s == NULL || *s == '\0' || mb_parse_id(s, &id) ||
		    strchr(s, '/') != NULL || !mb_printable(s)) {
			snprintf(err, errlen,
			    "name: 1 to %d characters, not only digits, no "
			    "'/'",
			    LIST_NAME_MAX);
			return -1;
		}
		ld->d.name = s;
	}
	if ((v = json_object_get(o, "keywords")) != NULL) {
		ld->d.keywords = NULL;
		ld->d.nkeywords = 0;
		if (!json_is_null(v) &&
		    mb_parse_keywords(m, v, ld, err, errlen) == -1)
			return -1;
	}
	if (mb_str(o, &(struct mb_strfield){.key = "sender", .max = 64}, &s,
		&present, err, errlen) == -1)
		return -1;
	if (present) {
		if (s != NULL && !dispatch_has_sender(m->deps.dispatch, s)) {
			snprintf(err, errlen, "sender: no sender named '%s'",
			    s);
			return -1;
		}
		ld->d.sender = s;
	}
#define MB_LIST_TEXT(field, nmax, ml)                        \
	do {                                                 \
		if (mb_str(o,                                \
			&(struct mb_strfield){.key = #field, \
			    .max = nmax,                     \
			    .multiline = ml},                \
			&s, &present, err, errlen) == -1)    \
			return -1;                           \
		if (present)                                 \
			ld->d.field = s;                     \
	} while (0)
	MB_LIST_TEXT(welcome_sms, MB_TEXT_MAX, true);
	MB_LIST_TEXT(welcome_email_subject, 200, false);
	MB_LIST_TEXT(welcome_email, 65536, true);
#undef MB_LIST_TEXT
	if ((v = json_object_get(o, "double_optin")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(err, errlen,
			    "double_optin: must be true or false");
			return -1;
		}
		ld->d.double_optin = json_is_true(v);
	}
	if ((v = json_object_get(o, "questions")) != NULL) {
		ld->d.questions = NULL;
		ld->d.nquestions = 0;
		if (!json_is_null(v) &&
		    mb_parse_questions(v, ld, err, errlen) == -1)
			return -1;
	}
	return mb_parse_list_zone(o, ld, err, errlen);
}

static void
mb_lists_post(struct http_req *req, void *arg)
{
	struct members *m = arg;
	struct mb_listdef ld;
	struct mb_pending *p;
	char err[512];
	bool conflict = false;
	int64_t id;
	json_t *o;

	memset(&ld, 0, sizeof(ld));
	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	if (mb_parse_list(m, o, &ld, err, sizeof(err)) == -1) {
		mb_invalid(req, err);
		goto out;
	}
	if (ld.d.name == NULL) {
		mb_invalid(req, "name: required");
		goto out;
	}
	id = store_list_create(m->deps.st, &ld.d, msg_now_ms(), &conflict, err,
	    sizeof(err));
	if (id == -1) {
		if (conflict)
			http_reply_error(req, 409, "conflict", "%s", err);
		else
			mb_store_error(req, "list_create", err);
		goto out;
	}
	p = mb_pending_new(201);
	p->list = id;
	snprintf(p->loc, sizeof(p->loc), "/api/v1/lists/%lld", (long long)id);
	mb_commit(m, req, p);
out:
	mb_listdef_clear(&ld);
	json_decref(o);
}

void
mb_lists_get(struct http_req *req, void *arg)
{
	struct members *m = arg;
	char err[512];
	json_t *o;

	if (req->method == HTTP_POST) {
		mb_lists_post(req, arg);
		return;
	}
	if (!api_authorized(m->deps.api, req))
		return;
	if ((o = store_lists_json(m->deps.st, err, sizeof(err))) == NULL)
		mb_store_error(req, "lists", err);
	else
		http_reply_json(req, 200, o);
}

/* PATCH: the stored definition, overlaid with the request's fields. */
static void
mb_list_patch(struct http_req *req, struct members *m, int64_t id,
    struct list_info *li)
{
	struct mb_listdef ld;
	struct mb_pending *p;
	char err[512];
	struct list_write lw = {0};
	json_t *o, *cur = NULL, *kw;
	size_t i;

	memset(&ld, 0, sizeof(ld));
	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	if ((cur = store_list_json(m->deps.st, id, err, sizeof(err))) == NULL) {
		mb_store_error(req, "list_get", err);
		goto out;
	}
	ld.d.name = li->name;
	ld.d.sender = li->sender;
	ld.d.welcome_sms = li->welcome_sms;
	ld.d.welcome_email_subject = li->welcome_email_subject;
	ld.d.welcome_email = li->welcome_email;
	ld.d.double_optin = li->double_optin;
	ld.d.questions = li->questions;
	ld.d.nquestions = li->nquestions;
	ld.d.time_zone = li->time_zone;
	if (json_object_get(o, "keywords") == NULL) {
		kw = json_object_get(cur, "keywords");
		ld.keywords = xcalloc(json_array_size(kw) + 1, sizeof(char *));
		for (i = 0; i < json_array_size(kw); i++)
			ld.keywords[ld.nkeywords++] =
			    xstrdup(json_string_value(json_array_get(kw, i)));
		ld.d.keywords = (const char *const *)ld.keywords;
		ld.d.nkeywords = ld.nkeywords;
	}
	if (mb_parse_list(m, o, &ld, err, sizeof(err)) == -1) {
		mb_invalid(req, err);
		goto out;
	}
	lw.now = msg_now_ms();
	if (store_list_update(m->deps.st, id, &ld.d, &lw, err, sizeof(err)) ==
	    -1) {
		if (lw.conflict)
			http_reply_error(req, 409, "conflict", "%s", err);
		else
			mb_store_error(req, "list_update", err);
		goto out;
	}
	p = mb_pending_new(200);
	p->list = id;
	mb_commit(m, req, p);
out:
	mb_listdef_clear(&ld);
	json_decref(cur);
	json_decref(o);
}

static void
mb_list_delete(struct http_req *req, struct members *m, int64_t id)
{
	static const char *const known[] = {"force", NULL};
	struct mb_pending *p;
	struct evkeyvalq q;
	const char *f;
	char err[512];
	bool conflict = false, force;

	if (api_is_stopping(m->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	if (!api_read_query(req, &q, known))
		return;
	f = evhttp_find_header(&q, "force");
	force = f != NULL && (strcmp(f, "true") == 0 || strcmp(f, "1") == 0);
	if (f != NULL && !force && strcmp(f, "false") != 0 &&
	    strcmp(f, "0") != 0)
		mb_invalid(req, "force: true or false");
	else if (store_list_delete(m->deps.st, id, force, &conflict, err,
		     sizeof(err)) == -1) {
		if (conflict)
			http_reply_error(req, 409, "conflict", "%s", err);
		else
			mb_store_error(req, "list_delete", err);
	} else {
		p = mb_pending_new(200);
		p->body =
		    json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1);
		mb_commit(m, req, p);
	}
	evhttp_clear_headers(&q);
}

void
mb_list_one(struct http_req *req, void *arg)
{
	struct members *m = arg;
	struct list_info li;
	char err[512];
	int64_t id;
	json_t *o;

	memset(&li, 0, sizeof(li));
	if (!api_authorized(m->deps.api, req) ||
	    !mb_list_param(m, req, req->params[0], &id, &li))
		return;
	if (req->method == HTTP_PATCH)
		mb_list_patch(req, m, id, &li);
	else if (req->method == HTTP_DELETE && li.from_config)
		http_reply_error(req, 409, "conflict",
		    "list %s comes from the config file; remove its [list %s] "
		    "section there (it then stays, with its members, and can "
		    "be deleted)",
		    li.name, li.name);
	else if (req->method == HTTP_DELETE)
		mb_list_delete(req, m, id);
	else if ((o = store_list_json(m->deps.st, id, err, sizeof(err))) ==
	    NULL)
		mb_store_error(req, "list_get", err);
	else
		http_reply_json(req, 200, o);
	list_info_clear(&li);
}

/* ---- /api/v1/lists/{id}/members ----------------------------------- */

static void
mb_list_members_list(struct http_req *req, struct members *m, int64_t id)
{
	static const char *const known[] = {"status", "after", "limit", NULL};
	struct evkeyvalq q;
	const char *status;
	char err[512];
	unsigned limit;
	int64_t after;
	json_t *o;

	if (!api_read_query(req, &q, known))
		return;
	status = evhttp_find_header(&q, "status");
	if (mb_page(&q, &after, &limit, err, sizeof(err)) == -1)
		mb_invalid(req, err);
	else if (status != NULL && strcmp(status, "pending") != 0 &&
	    strcmp(status, "active") != 0 && strcmp(status, "left") != 0)
		mb_invalid(req, "status: one of pending, active, left");
	else if ((o = store_list_members_json(m->deps.st,
		      &(struct list_members_query){.list = id,
			  .status = status,
			  .after = after,
			  .limit = limit},
		      err, sizeof(err))) == NULL)
		mb_store_error(req, "list_members", err);
	else
		http_reply_json(req, 200, o);
	evhttp_clear_headers(&q);
}

bool
mb_sub_mismatch(struct http_req *req, const struct mb_subwho *w, const char *p,
    const char *e)
{
	if ((w->phone[0] == '\0' || (p != NULL && strcmp(p, w->phone) == 0)) &&
	    (w->email == NULL || (e != NULL && strcmp(e, w->email) == 0)))
		return false;
	http_reply_error(req, 409, "conflict",
	    "the phone and the email given are not those of one member "
	    "(member %lld has phone %s and email %s); update the "
	    "member first or give its id",
	    (long long)w->id, p != NULL ? p : "none", e != NULL ? e : "none");
	return true;
}

/*
 * The member w->id found by the phone or email of a subscribe: both given
 * (w->phone, w->email) must be this member's (else 409: they belong to two
 * members, or the member has another), and they become the member's own.
 */
static int
mb_sub_existing(struct members *m, struct http_req *req, struct mb_subwho *w,
    char *err, size_t errlen)
{
	const char *p, *e;
	json_t *cur;

	if ((cur = store_member_json(m->deps.st, w->id, err, errlen)) == NULL)
		return -2;
	p = json_string_value(json_object_get(cur, "phone"));
	e = json_string_value(json_object_get(cur, "email"));
	if (mb_sub_mismatch(req, w, p, e)) {
		json_decref(cur);
		return -3;
	}
	strlcpy(w->phone, p != NULL ? p : "", sizeof(w->phone));
	free(w->email);
	w->email = e != NULL ? xstrdup(e) : NULL;
	json_decref(cur);
	return 0;
}

int
mb_sub_member_ref(json_t *o, char ref[32], char *err, size_t errlen)
{
	json_t *v = json_object_get(o, "member");

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		snprintf(err, errlen, "member: a member id");
		return -1;
	}
	snprintf(ref, 32, "%lld", (long long)json_integer_value(v));
	return 1;
}

int
mb_sub_addr(const struct members *m, json_t *o, struct mb_subwho *w,
    const char **pin, char *err, size_t errlen)
{
	const char *s;

	if (mb_str(o, &(struct mb_strfield){.key = "phone", .max = 64}, pin,
		NULL, err, errlen) == -1)
		return -1;
	if (*pin != NULL &&
	    mb_phone(m,
		&(struct mb_phonein){.field = "phone",
		    .text = *pin,
		    .use = MB_PHONE_FIND},
		w->phone, sizeof(w->phone), err, errlen) == -1)
		return -1;
	if (mb_str(o, &(struct mb_strfield){.key = "email", .max = 254}, &s,
		NULL, err, errlen) == -1)
		return -1;
	if (s != NULL && (w->email = mb_email(s, err, errlen)) == NULL)
		return -1;
	if (w->phone[0] == '\0' && w->email == NULL) {
		snprintf(err, errlen,
		    "member: give a member id, a phone or "
		    "an email");
		return -1;
	}
	return 0;
}

/*
 * The member a subscribe names: "member" (an id), or "phone" / "email"
 * (found, else created), into *w (zeroed by the caller; w->email is the
 * caller's to free whatever the result). -1 invalid (err), -2 store (err),
 * -3 answered.
 */
static int
mb_sub_member(struct members *m, struct http_req *req, json_t *o,
    struct mb_subwho *w, char *err, size_t errlen)
{
	struct member_fields f = {0};
	json_t *cur;
	const char *s;
	const char *pin; /* the phone as given */
	char ref[32];
	struct member_write mw = {0};
	int found = 0;

	w->created = false;
	if ((found = mb_sub_member_ref(o, ref, err, errlen)) == -1)
		return -1;
	if (found == 1) {
		if (!mb_member_param(m, req, ref, &w->id, &cur))
			return -3;
		if ((s = json_string_value(json_object_get(cur, "phone"))))
			strlcpy(w->phone, s, sizeof(w->phone));
		if ((s = json_string_value(json_object_get(cur, "email"))))
			w->email = xstrdup(s);
		json_decref(cur);
		return 0;
	}
	if (mb_sub_addr(m, o, w, &pin, err, errlen) == -1)
		return -1;
	if (w->phone[0] != '\0')
		found = store_member_find(m->deps.st, CHANNEL_SMS, w->phone,
		    &w->id, err, errlen);
	if (found == 0 && w->email != NULL)
		found = store_member_find(m->deps.st, CHANNEL_EMAIL, w->email,
		    &w->id, err, errlen);
	if (found == -1)
		return -2;
	if (found == 1)
		return mb_sub_existing(m, req, w, err, errlen);
	/* found by any number it may be stored as; created by a good one */
	if (mb_sub_new_phone(m, pin, w, err, errlen) == -1)
		return -1;
	f.set =
	    (w->phone[0] != '\0' ? MF_PHONE : 0) | (w->email ? MF_EMAIL : 0);
	f.phone = w->phone[0] != '\0' ? w->phone : NULL;
	f.email = w->email;
	mw.now = msg_now_ms();
	if (store_member_create(m->deps.st, &f, &mw, err, errlen) == -1) {
		if (mw.conflict) {
			http_reply_error(req, 409, "conflict", "%s", err);
			return -3;
		}
		return -2;
	}
	w->id = mw.id;
	w->created = true;
	return 0;
}

int
mb_sub_new_phone(const struct members *m, const char *pin, struct mb_subwho *w,
    char *err, size_t errlen)
{
	if (pin == NULL)
		return 0;
	return mb_phone(m,
	    &(struct mb_phonein){.field = "phone",
		.text = pin,
		.use = MB_PHONE_SET},
	    w->phone, sizeof(w->phone), err, errlen);
}

int
mb_sub_head(json_t *o, int *ch, const char **source, char *err, size_t errlen)
{
	static const char *const known[] = {"member", "phone", "email",
	    "channel", "consent_source", NULL};

	if (api_check_fields(o, known, err, errlen) == -1 ||
	    mb_channel(o, "channel", false, ch, err, errlen) == -1 ||
	    mb_str(o,
		&(struct mb_strfield){.key = "consent_source",
		    .max = MB_SOURCE_MAX},
		source, NULL, err, errlen) == -1)
		return -1;
	if (*source == NULL || **source == '\0') {
		snprintf(err, errlen,
		    "consent_source: required (how the member agreed, e.g. "
		    "\"signup form at the rally\")");
		return -1;
	}
	if (json_object_get(o, "member") != NULL &&
	    (json_object_get(o, "phone") || json_object_get(o, "email"))) {
		snprintf(err, errlen,
		    "member: give a member id or a phone/email, not both");
		return -1;
	}
	/* Check what needs no store before a member may be created. */
	if (json_object_get(o, "member") == NULL && *ch != -1 &&
	    json_object_get(o, *ch == CHANNEL_SMS ? "phone" : "email") ==
		NULL) {
		snprintf(err, errlen, "%s: required for channel %s",
		    *ch == CHANNEL_SMS ? "phone" : "email",
		    channel_to_text(*ch));
		return -1;
	}
	return 0;
}

int
mb_sub_channel(const struct mb_subwho *w, int *ch, char *err, size_t errlen)
{
	if (*ch == -1)
		*ch = w->phone[0] != '\0' ? CHANNEL_SMS : CHANNEL_EMAIL;
	if ((*ch == CHANNEL_SMS && w->phone[0] == '\0') ||
	    (*ch == CHANNEL_EMAIL && w->email == NULL)) {
		snprintf(err, errlen, "channel: member %lld has no %s",
		    (long long)w->id, *ch == CHANNEL_SMS ? "phone" : "email");
		return -1;
	}
	return 0;
}

json_t *
mb_sub_answer(const struct mb_subwho *w, const struct mb_subreq *r,
    bool opted_out)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:b, s:b}", "member_id",
	    (json_int_t)w->id, "list_id", (json_int_t)r->list, "channel",
	    channel_to_text(r->ch), "status", mb_sub_status_text(r->status),
	    "change", mb_sub_change_text(r->change), "member_created",
	    w->created, "opted_out", opted_out);
}

static void
mb_list_members_post(struct http_req *req, struct members *m, int64_t list,
    const struct list_info *li)
{
	struct mb_subreq r = {.list = list, .double_optin = li->double_optin};
	struct mb_pending *p;
	const char *source;
	struct mb_subwho w = {0};
	char err[512];
	json_t *o;
	int ch, rc, opted;

	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	if (mb_sub_head(o, &ch, &source, err, sizeof(err)) == -1)
		goto invalid;
	rc = mb_sub_member(m, req, o, &w, err, sizeof(err));
	if (rc == -3)
		goto out;
	if (rc == -2) {
		mb_store_error(req, "member_find", err);
		goto out;
	}
	if (rc == -1 || mb_sub_channel(&w, &ch, err, sizeof(err)) == -1)
		goto invalid;
	r.member = w.id;
	r.ch = ch;
	r.email = w.email;
	r.source = source;
	rc = mb_subscribe(m, &r, err, sizeof(err));
	if (rc == -1 ||
	    (r.change == SUB_CHANGE_ALREADY &&
		store_subscription_status(m->deps.st,
		    &(struct sub_key){.member = w.id, .list = list, .ch = ch},
		    &r.status, err, sizeof(err)) == -1) ||
	    (opted = store_member_is_opted_out(m->deps.st, w.id, ch, err,
		 sizeof(err))) == -1) {
		mb_store_error(req, "subscribe", err);
		goto out;
	}
	p = mb_pending_new(
	    r.change == SUB_CHANGE_NEW || r.change == SUB_CHANGE_REJOINED
		? 201
		: 200);
	p->body = mb_sub_answer(&w, &r, opted == 1);
	mb_commit(m, req, p);
	goto out;
invalid:
	mb_invalid(req, err);
out:
	free(w.email);
	json_decref(o);
}

void
mb_list_members_get(struct http_req *req, void *arg)
{
	struct members *m = arg;
	struct list_info li;
	int64_t id;

	memset(&li, 0, sizeof(li));
	if (!api_authorized(m->deps.api, req) ||
	    !mb_list_param(m, req, req->params[0], &id, &li))
		return;
	if (req->method == HTTP_POST)
		mb_list_members_post(req, m, id, &li);
	else
		mb_list_members_list(req, m, id);
	list_info_clear(&li);
}

bool
mb_unsub_begin(struct members *m, struct http_req *req, unsigned *channels)
{
	static const char *const known[] = {"channel", NULL};
	struct evkeyvalq q;
	const char *c;
	bool ok = true;
	int ch;

	if (!api_authorized(m->deps.api, req))
		return false;
	if (api_is_stopping(m->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return false;
	}
	if (!api_read_query(req, &q, known))
		return false;
	c = evhttp_find_header(&q, "channel");
	if (c != NULL && channel_parse(c) == -1) {
		mb_invalid(req, "channel: must be \"sms\" or \"email\"");
		ok = false;
	}
	*channels = 0;
	for (ch = 0; ch < CHANNEL_COUNT; ch++)
		if (c == NULL || ch == channel_parse(c))
			*channels |= 1u << ch;
	evhttp_clear_headers(&q);
	return ok;
}

void
mb_list_member_delete(struct http_req *req, void *arg)
{
	struct members *m = arg;
	struct mb_pending *p;
	char err[512];
	bool changed, any = false;
	int64_t list, id;
	unsigned channels;
	json_t *left;
	int ch;

	if (!mb_unsub_begin(m, req, &channels) ||
	    !mb_list_param(m, req, req->params[0], &list, NULL) ||
	    !mb_member_param(m, req, req->params[1], &id, NULL))
		return;
	left = json_array();
	for (ch = 0; ch < CHANNEL_COUNT; ch++) {
		if ((channels & (1u << ch)) == 0)
			continue;
		if (store_unsubscribe(m->deps.st,
			&(struct consent_change){.member = id,
			    .list = list,
			    .ch = ch,
			    .source = CONSENT_API,
			    .now = msg_now_ms()},
			&changed, err, sizeof(err)) == -1) {
			json_decref(left);
			mb_store_error(req, "unsubscribe", err);
			return;
		}
		if (changed)
			json_array_append_new(left,
			    json_string(channel_to_text(ch)));
		any = any || changed;
	}
	p = mb_pending_new(200);
	p->body = json_pack("{s:I, s:I, s:o, s:b}", "member_id", (json_int_t)id,
	    "list_id", (json_int_t)list, "left", left, "changed", any);
	mb_commit(m, req, p);
}
