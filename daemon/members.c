/*
 * members.c - the members and lists API: /api/v1/members (create, search,
 * fetch, update, opt-out and opt-in, the consent log), /api/v1/lists
 * (create, update, delete, who is on them, subscribe and unsubscribe) and
 * the CSV exports of a list and of the consent log.
 *
 * As in api.c, every handler validates its whole input before it touches
 * the store and names the field at fault; a write is answered from a
 * store_on_commit() callback, so a 201 means the rows are on disk. Phone
 * numbers are normalized to E.164 with phone.h and the [sms]
 * default_region, emails are checked and lower-cased.
 *
 * Exports are streamed: a page of rows is read from the store, turned
 * into CSV (RFC 4180) and sent as one chunk; the next page is read only
 * once that chunk left for the socket, on a later loop turn, so a big
 * export holds one page in memory and never starves other requests.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "api.h"
#include "compat.h"
#include "config.h"
#include "dispatch.h"
#include "email_addr.h"
#include "email_links.h"
#include "http.h"
#include "inbound.h"
#include "log.h"
#include "members.h"
#include "message.h"
#include "phone.h"
#include "store.h"
#include "store_members.h"
#include "xmalloc.h"

#define MB_PAGE_DEFAULT	   100
#define MB_PAGE_MAX	   1000
#define MB_EXPORT_PAGE	   500 /* rows per chunk of an export */
#define MB_NAME_MAX	   100 /* first_name, last_name */
#define MB_ZIP_MAX	   16
#define MB_TZ_MAX	   64
#define MB_TAG_MAX	   64
#define MB_TAGS_MAX	   100
#define MB_SOURCE_MAX	   200	/* consent_source */
#define MB_SUBSCRIBE_MAX   20	/* "subscribe" items of one create */
#define MB_TEXT_MAX	   1600 /* welcome texts, prompts */
#define MB_KEYWORDS_MAX	   20
#define MB_QUESTIONS_MAX   10
#define MB_ATTRS_MAX_BYTES 16384

struct mb_export;

struct members {
	struct members_deps deps;
	TAILQ_HEAD(, mb_export) exports;
};

/* A write waiting for its group commit, and what to answer then. */
struct mb_pending {
	struct members *m;
	struct http_req *req;
	int code;
	int64_t member; /* answer the member's JSON (merged with extra), */
	int64_t list;	/* or the list's, */
	json_t *body;	/* or this (owned) */
	json_t *extra;	/* owned; may be NULL */
	char loc[64];	/* Location header, "" = none */
};

enum mb_export_kind {
	MB_EXPORT_LIST,
	MB_EXPORT_CONSENT,
};

/* A CSV export being streamed. */
struct mb_export {
	TAILQ_ENTRY(mb_export) entry;
	struct members *m;
	struct http_req *req;
	enum mb_export_kind kind;
	int64_t id; /* list, or member (0 = all) */
	int64_t cursor;
	struct evbuffer *buf; /* the page being built */
	char **header;	      /* the header row, to skip its repeats */
	size_t nheader;
	bool header_seen; /* within the current page */
	uint64_t rows;
};

/* A member's fields parsed from a request. */
struct mb_fields {
	struct member_fields f;
	char phone[PHONE_E164_MAX];
	char *email; /* lower-cased copy */
	json_t *tags;
	json_t *add_tags;
	json_t *remove_tags;
};

/* What mb_phone() checks a number for. */
enum mb_phone_use {
	MB_PHONE_SET,  /* a member's number: valid (or possible, per config) */
	MB_PHONE_FIND, /* a lookup: anything a member may be stored with */
};

/* One "subscribe" item of a create. */
struct mb_sub {
	int64_t list;
	enum channel ch;
	bool double_optin;
};

/* A list definition parsed from a request; strings borrowed from JSON. */
struct mb_listdef {
	struct list_def d;
	char **keywords; /* upper-cased copies */
	size_t nkeywords;
	struct list_question q[MB_QUESTIONS_MAX];
};

static void mb_members_post(struct http_req *, void *);
static void mb_members_get(struct http_req *, void *);
static void mb_member_get(struct http_req *, void *);
static void mb_member_patch(struct http_req *, void *);
static void mb_member_optout(struct http_req *, void *);
static void mb_member_optin(struct http_req *, void *);
static void mb_member_consent(struct http_req *, void *);
static void mb_lists_get(struct http_req *, void *);
static void mb_lists_post(struct http_req *, void *);
static void mb_list_one(struct http_req *, void *);
static void mb_list_members_get(struct http_req *, void *);
static void mb_list_member_delete(struct http_req *, void *);
static void mb_list_export(struct http_req *, void *);
static void mb_consent_export(struct http_req *, void *);
static void mb_on_commit(void *, bool);
static void mb_export_next(struct http_req *, void *);

struct members *
members_new(struct http_server *srv, const struct members_deps *deps)
{
	struct members *m = xcalloc(1, sizeof(*m));

	m->deps = *deps;
	TAILQ_INIT(&m->exports);
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

static void
mb_export_free(struct mb_export *x)
{
	size_t i;

	TAILQ_REMOVE(&x->m->exports, x, entry);
	for (i = 0; i < x->nheader; i++)
		free(x->header[i]);
	free(x->header);
	evbuffer_free(x->buf);
	free(x);
}

void
members_free(struct members *m)
{
	struct mb_export *x;

	if (m == NULL)
		return;
	while ((x = TAILQ_FIRST(&m->exports)) != NULL) {
		http_reply_end(x->req);
		mb_export_free(x);
	}
	free(m);
}

/* ---- Small helpers ---------------------------------------------------- */

static void
mb_store_error(struct http_req *req, const char *what, const char *err)
{
	log_warnx("members_store_failed op=%s error=\"%s\"", what, err);
	http_reply_error(req, 503, "unavailable", "store: %s", err);
}

static void
mb_invalid(struct http_req *req, const char *err)
{
	http_reply_error(req, 422, "invalid_request", "%s", err);
}

/* A positive decimal integer that fits int64. */
static bool
mb_parse_id(const char *s, int64_t *id)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || errno != 0 || v <= 0)
		return false;
	*id = v;
	return true;
}

/*
 * Parses the query string into q (free with evhttp_clear_headers()) and
 * refuses parameters not in 'known'. Answers 422 itself on failure.
 */
static bool
mb_query(struct http_req *req, struct evkeyvalq *q, const char *const *known)
{
	struct evkeyval *kv;
	size_t i;

	TAILQ_INIT(q);
	if (req->query != NULL && evhttp_parse_query_str(req->query, q) != 0) {
		evhttp_clear_headers(q);
		mb_invalid(req, "query string: cannot be parsed");
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

/* The cursor ("after") and page size ("limit") of a listing. */
static int
mb_page(struct evkeyvalq *q, int64_t *after, unsigned *limit, char *err,
    size_t errlen)
{
	const char *a = evhttp_find_header(q, "after");
	const char *l = evhttp_find_header(q, "limit");
	int64_t v;

	*after = 0;
	*limit = MB_PAGE_DEFAULT;
	if (a != NULL && *a != '\0' && !mb_parse_id(a, after)) {
		snprintf(err, errlen,
		    "after: not a cursor (use next_cursor of the previous "
		    "page)");
		return -1;
	}
	if (l != NULL) {
		if (!mb_parse_id(l, &v) || v > MB_PAGE_MAX) {
			snprintf(err, errlen, "limit: an integer from 1 to %d",
			    MB_PAGE_MAX);
			return -1;
		}
		*limit = (unsigned)v;
	}
	return 0;
}

static const char *
mb_region(const struct members *m)
{
	const char *r =
	    m->deps.cfg != NULL ? m->deps.cfg->default_region : NULL;

	return r != NULL && *r != '\0' ? r : "US";
}

/*
 * Normalizes a phone number into out; err names 'field'. One rule for
 * numbers: a lookup (MB_PHONE_FIND) takes any possible number, or one
 * already in E.164 form as a received text may have stored it, so what
 * is stored is found by the same string; a number a member is created
 * or updated with (MB_PHONE_SET) must be valid, or only possible with
 * [sms] accept_unassigned_numbers.
 */
static int
mb_phone(const struct members *m, const char *field, const char *in,
    enum mb_phone_use use, char *out, size_t outlen, char *err, size_t errlen)
{
	enum phone_accept accept = PHONE_VALID;
	char why[256], tmp[PHONE_E164_MAX];

	if (use == MB_PHONE_FIND)
		accept = PHONE_STORED;
	else if (m->deps.cfg != NULL && m->deps.cfg->accept_unassigned)
		accept = PHONE_POSSIBLE;
	if (phone_normalize_as(in, mb_region(m), accept, out, outlen, why,
		sizeof(why)) == 0)
		return 0;
	if (accept == PHONE_VALID &&
	    phone_normalize_as(in, mb_region(m), PHONE_POSSIBLE, tmp,
		sizeof(tmp), NULL, 0) == 0)
		snprintf(err, errlen,
		    "%s: %s (an unassigned range; [sms] "
		    "accept_unassigned_numbers = yes accepts it)",
		    field, why);
	else
		snprintf(err, errlen, "%s: %s", field, why);
	return -1;
}

/*
 * The address checked by the rule of email_addr.h (the import, SMS answers
 * and the messages API use it too) and lower-cased, as a new string; NULL
 * with "email: not an email address: <why>" in err.
 */
static char *
mb_email(const char *s, char *err, size_t errlen)
{
	char buf[EMAIL_ADDR_MAX + 1], why[160];

	if (email_addr_normalize(s, buf, sizeof(buf), why, sizeof(why)) == -1) {
		snprintf(err, errlen, "email: not an email address: %s", why);
		return NULL;
	}
	return xstrdup(buf);
}

/* True if s holds no control character. */
static bool
mb_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/*
 * An optional string field: *out NULL when absent or null, *present set
 * when the key is there (null included). Checks length and controls.
 */
static int
mb_str(json_t *o, const char *key, size_t max, bool multiline, const char **out,
    bool *present, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (present != NULL)
		*present = v != NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s: must be a string", key);
		return -1;
	}
	*out = json_string_value(v);
	if (strlen(*out) > max) {
		snprintf(err, errlen, "%s: at most %zu bytes", key, max);
		return -1;
	}
	if (!multiline && !mb_printable(*out)) {
		snprintf(err, errlen, "%s: must not hold control characters",
		    key);
		return -1;
	}
	return 0;
}

static int
mb_channel(json_t *o, const char *key, bool required, int *ch, char *err,
    size_t errlen)
{
	const char *s;

	if (mb_str(o, key, 16, false, &s, NULL, err, errlen) == -1)
		return -1;
	*ch = -1;
	if (s == NULL) {
		if (required) {
			snprintf(err, errlen,
			    "%s: required (\"sms\" or \"email\")", key);
			return -1;
		}
		return 0;
	}
	if ((*ch = channel_parse(s)) == -1) {
		snprintf(err, errlen, "%s: must be \"sms\" or \"email\"", key);
		return -1;
	}
	return 0;
}

/* A tag array: 1-64 printable bytes each, no commas, deduplicated. */
static int
mb_tag_array(json_t *v, const char *key, json_t **out, char *err, size_t errlen)
{
	json_t *t, *u;
	size_t i, j;
	const char *s;

	if (!json_is_array(v) || json_array_size(v) > MB_TAGS_MAX) {
		snprintf(err, errlen,
		    "%s: must be an array of at most %d strings", key,
		    MB_TAGS_MAX);
		return -1;
	}
	*out = json_array();
	json_array_foreach(v, i, t) {
		s = json_string_value(t);
		if (s == NULL || *s == '\0' || strlen(s) > MB_TAG_MAX ||
		    !mb_printable(s) || strchr(s, ',') != NULL) {
			snprintf(err, errlen,
			    "%s[%zu]: a tag is a string of 1 to %d "
			    "characters without commas",
			    key, i, MB_TAG_MAX);
			json_decref(*out);
			*out = NULL;
			return -1;
		}
		json_array_foreach(*out, j, u)
			if (strcmp(json_string_value(u), s) == 0)
				break;
		if (j == json_array_size(*out))
			json_array_append(*out, t);
	}
	return 0;
}

/* A time zone name: "America/Chicago"; shape only (tzdata decides). */
static bool
mb_tz_ok(const char *s)
{
	const char *p;

	if (*s == '\0' || *s == '/' || strstr(s, "..") != NULL)
		return false;
	for (p = s; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
			return false;
	return true;
}

static void
mb_fields_clear(struct mb_fields *mf)
{
	free(mf->email);
	json_decref(mf->tags);
	json_decref(mf->add_tags);
	json_decref(mf->remove_tags);
	memset(mf, 0, sizeof(*mf));
}

/* The plain text fields; a null clears (only in a PATCH). */
static int
mb_parse_texts(json_t *o, struct mb_fields *mf, bool patch, char *err,
    size_t errlen)
{
	static const struct {
		const char *key;
		unsigned bit;
		size_t max;
	} t[] = {
	    {"first_name", MF_FIRST_NAME, MB_NAME_MAX},
	    {"last_name", MF_LAST_NAME, MB_NAME_MAX},
	    {"zip", MF_ZIP, MB_ZIP_MAX},
	    {"time_zone", MF_TIME_ZONE, MB_TZ_MAX},
	};
	const char **dst[] = {&mf->f.first_name, &mf->f.last_name, &mf->f.zip,
	    &mf->f.time_zone};
	const char *s;
	bool present;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(*t); i++) {
		if (mb_str(o, t[i].key, t[i].max, false, &s, &present, err,
			errlen) == -1)
			return -1;
		if (!present || (s == NULL && !patch))
			continue;
		if (s != NULL && t[i].bit == MF_TIME_ZONE && !mb_tz_ok(s)) {
			snprintf(err, errlen,
			    "time_zone: not a time zone name "
			    "(\"America/Chicago\")");
			return -1;
		}
		if (s != NULL && *s == '\0' && patch)
			s = NULL; /* "" clears, as null does */
		mf->f.set |= t[i].bit;
		*dst[i] = s;
	}
	return 0;
}

/* phone and email. */
static int
mb_parse_addrs(struct members *m, json_t *o, struct mb_fields *mf, bool patch,
    char *err, size_t errlen)
{
	const char *s;
	bool present;

	if (mb_str(o, "phone", 64, false, &s, &present, err, errlen) == -1)
		return -1;
	if (present && (s != NULL || patch)) {
		mf->f.set |= MF_PHONE;
		if (s != NULL) {
			if (mb_phone(m, "phone", s, MB_PHONE_SET, mf->phone,
				sizeof(mf->phone), err, errlen) == -1)
				return -1;
			mf->f.phone = mf->phone;
		}
	}
	if (mb_str(o, "email", 254, false, &s, &present, err, errlen) == -1)
		return -1;
	if (present && (s != NULL || patch)) {
		mf->f.set |= MF_EMAIL;
		if (s != NULL) {
			if ((mf->email = mb_email(s, err, errlen)) == NULL)
				return -1;
			mf->f.email = mf->email;
		}
	}
	return 0;
}

/* attributes and tags (and, for a PATCH, the tag and merge options). */
static int
mb_parse_json_fields(json_t *o, struct mb_fields *mf, bool patch, char *err,
    size_t errlen)
{
	json_t *v = json_object_get(o, "attributes"), *r;
	char *dump;
	size_t len;

	if (v != NULL && !json_is_null(v)) {
		if (!json_is_object(v)) {
			snprintf(err, errlen, "attributes: must be an object");
			return -1;
		}
		dump = json_dumps(v, JSON_COMPACT);
		len = dump != NULL ? strlen(dump) : 0;
		free(dump);
		if (len > MB_ATTRS_MAX_BYTES) {
			snprintf(err, errlen, "attributes: at most %d bytes",
			    MB_ATTRS_MAX_BYTES);
			return -1;
		}
		mf->f.attrs = v;
		mf->f.set |= MF_ATTRS_MERGE;
	}
	if ((r = json_object_get(o, "replace_attributes")) != NULL) {
		if (!json_is_boolean(r)) {
			snprintf(err, errlen,
			    "replace_attributes: must be true or false");
			return -1;
		}
		if (json_is_true(r)) {
			if (mf->f.attrs == NULL)
				mf->f.attrs = json_object_get(o, "attributes");
			mf->f.set &= ~MF_ATTRS_MERGE;
			mf->f.set |= MF_ATTRS;
		}
	}
	if (!patch && mf->f.attrs != NULL)
		mf->f.set = (mf->f.set & ~MF_ATTRS_MERGE) | MF_ATTRS;
	if ((v = json_object_get(o, "tags")) != NULL && !json_is_null(v)) {
		if (mb_tag_array(v, "tags", &mf->tags, err, errlen) == -1)
			return -1;
		mf->f.tags = mf->tags;
		mf->f.set |= MF_TAGS;
	}
	if ((v = json_object_get(o, "add_tags")) != NULL &&
	    mb_tag_array(v, "add_tags", &mf->add_tags, err, errlen) == -1)
		return -1;
	if ((v = json_object_get(o, "remove_tags")) != NULL &&
	    mb_tag_array(v, "remove_tags", &mf->remove_tags, err, errlen) == -1)
		return -1;
	if (mf->tags != NULL && (mf->add_tags != NULL || mf->remove_tags)) {
		snprintf(err, errlen,
		    "tags: give either tags (replaces them all) or "
		    "add_tags/remove_tags, not both");
		return -1;
	}
	return 0;
}

static int
mb_parse_fields(struct members *m, json_t *o, struct mb_fields *mf, bool patch,
    char *err, size_t errlen)
{
	if (mb_parse_addrs(m, o, mf, patch, err, errlen) == -1 ||
	    mb_parse_texts(o, mf, patch, err, errlen) == -1 ||
	    mb_parse_json_fields(o, mf, patch, err, errlen) == -1)
		return -1;
	return 0;
}

/*
 * Resolves a list given by id or name. 0 with *found, or -1 with err (a
 * store error).
 */
static int
mb_list_ref(struct members *m, const char *ref, int64_t *id,
    struct list_info *li, bool *found, char *err, size_t errlen)
{
	struct list_info tmp;

	*found = false;
	memset(&tmp, 0, sizeof(tmp));
	if (mb_parse_id(ref, id)) {
		if (store_list_get(m->deps.st, *id, li != NULL ? li : &tmp,
			found, err, errlen) == -1)
			return -1;
		list_info_clear(&tmp);
		if (*found)
			return 0;
		/* else: a config list may have a name of digits */
	}
	if (store_list_by_name(m->deps.st, ref, id, found, err, errlen) == -1)
		return -1;
	if (!*found)
		return 0;
	if (store_list_get(m->deps.st, *id, li != NULL ? li : &tmp, found, err,
		errlen) == -1)
		return -1;
	list_info_clear(&tmp);
	return 0;
}

/* As mb_list_ref(), answering 404 / 503 itself (returns false then). */
static bool
mb_list_param(struct members *m, struct http_req *req, const char *ref,
    int64_t *id, struct list_info *li)
{
	char err[256];
	bool found;

	if (mb_list_ref(m, ref, id, li, &found, err, sizeof(err)) == -1) {
		mb_store_error(req, "list_get", err);
		return false;
	}
	if (!found) {
		http_reply_error(req, 404, "not_found", "no list '%s'", ref);
		return false;
	}
	return true;
}

/* The member whose id is params[0]: 404 / 503 answered here. */
static bool
mb_member_param(struct members *m, struct http_req *req, const char *ref,
    int64_t *id, json_t **out)
{
	char err[256] = "";
	json_t *o;

	if (!mb_parse_id(ref, id)) {
		http_reply_error(req, 404, "not_found",
		    "no member '%s' (members are addressed by id; find one "
		    "with GET /api/v1/members?phone=...)",
		    ref);
		return false;
	}
	if ((o = store_member_json(m->deps.st, *id, err, sizeof(err))) ==
	    NULL) {
		if (err[0] != '\0')
			mb_store_error(req, "member_get", err);
		else
			http_reply_error(req, 404, "not_found",
			    "no member %lld", (long long)*id);
		return false;
	}
	if (out != NULL)
		*out = o;
	else
		json_decref(o);
	return true;
}

/* Keeps req until the open group commits, then answers per p. */
static void
mb_commit(struct members *m, struct http_req *req, struct mb_pending *p)
{
	p->m = m;
	p->req = req;
	store_on_commit(m->deps.st, mb_on_commit, p);
}

static struct mb_pending *
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
static json_t *
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

/*
 * Subscribes member to list on ch from the API: pending for an email
 * subscription to a double opt-in list (and the confirmation email is
 * queued), active otherwise. The channel's opt-out is left alone: an
 * opted-out member is subscribed but not messaged until opted in.
 */
static int
mb_subscribe(struct members *m, int64_t member, int64_t list, bool dbl,
    enum channel ch, const char *email, const char *source,
    enum sub_change *change, enum sub_status *status, char *err, size_t errlen)
{
	char cerr[256], masked[MSG_ADDR_MAX];
	int64_t now = msg_now_ms();

	*status = ch == CHANNEL_EMAIL && dbl ? SUB_PENDING : SUB_ACTIVE;
	if (store_subscribe(m->deps.st, member, list, ch, *status, CONSENT_API,
		0, source, now, change, err, errlen) == -1)
		return -1;
	if (*status != SUB_PENDING ||
	    (*change != SUB_CHANGE_NEW && *change != SUB_CHANGE_REJOINED))
		return 0;
	if (email == NULL || m->deps.links == NULL ||
	    email_links_send_confirmation(m->deps.links, member, list, email,
		now, cerr, sizeof(cerr)) == -1) {
		log_warnx("members_confirmation_failed member=%lld list=%lld "
			  "to=%s error=\"%s\"",
		    (long long)member, (long long)list,
		    log_mask_addr(email != NULL ? email : "-", masked,
			sizeof(masked)),
		    m->deps.links == NULL ? "no email links" : cerr);
	}
	return 0;
}

static const char *
mb_sub_status_text(enum sub_status s)
{
	return s == SUB_PENDING ? "pending"
	    : s == SUB_ACTIVE	? "active"
				: "left";
}

static const char *
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

/* ---- POST /api/v1/members --------------------------------------------- */

/* The "subscribe" items of a create, lists resolved. */
static int
mb_parse_subs(struct members *m, json_t *o, const struct mb_fields *mf,
    struct mb_sub *subs, size_t *nsubs, const char **source, char *err,
    size_t errlen)
{
	json_t *a = json_object_get(o, "subscribe"), *it, *l;
	struct list_info li;
	char ref[32];
	const char *name;
	bool found;
	size_t i;
	int ch;

	*nsubs = 0;
	if (mb_str(o, "consent_source", MB_SOURCE_MAX, false, source, NULL, err,
		errlen) == -1)
		return -1;
	if (a == NULL || json_is_null(a))
		return 0;
	if (!json_is_array(a) || json_array_size(a) > MB_SUBSCRIBE_MAX) {
		snprintf(err, errlen,
		    "subscribe: must be an array of at most %d "
		    "{\"list\", \"channel\"} objects",
		    MB_SUBSCRIBE_MAX);
		return -1;
	}
	if (json_array_size(a) > 0 && (*source == NULL || **source == '\0')) {
		snprintf(err, errlen,
		    "consent_source: required when subscribing (how the "
		    "member agreed, e.g. \"signup form at the rally\")");
		return -1;
	}
	json_array_foreach(a, i, it) {
		l = json_object_get(it, "list");
		if (json_is_integer(l))
			snprintf(ref, sizeof(ref), "%lld",
			    (long long)json_integer_value(l));
		name = json_is_integer(l) ? ref : json_string_value(l);
		if (!json_is_object(it) || name == NULL) {
			snprintf(err, errlen,
			    "subscribe[%zu].list: required (a list name or "
			    "id)",
			    i);
			return -1;
		}
		if (mb_channel(it, "channel", false, &ch, err, errlen) == -1)
			return -1;
		if (ch == -1)
			ch = mf->f.phone != NULL ? CHANNEL_SMS : CHANNEL_EMAIL;
		if ((ch == CHANNEL_SMS && mf->f.phone == NULL) ||
		    (ch == CHANNEL_EMAIL && mf->f.email == NULL)) {
			snprintf(err, errlen,
			    "subscribe[%zu].channel: %s needs the member's %s",
			    i, channel_to_text(ch),
			    ch == CHANNEL_SMS ? "phone" : "email");
			return -1;
		}
		memset(&li, 0, sizeof(li));
		if (mb_list_ref(m, name, &subs[i].list, &li, &found, err,
			errlen) == -1)
			return -2; /* store error */
		if (!found) {
			snprintf(err, errlen,
			    "subscribe[%zu].list: no list '%s'", i, name);
			return -1;
		}
		subs[i].ch = ch;
		subs[i].double_optin = li.double_optin;
		list_info_clear(&li);
		*nsubs = i + 1;
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
	struct mb_sub subs[MB_SUBSCRIBE_MAX];
	struct mb_pending *p;
	enum sub_change change;
	enum sub_status status;
	const char *source = NULL;
	char err[512];
	bool conflict = false;
	size_t nsubs = 0, i;
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
	if ((rc = mb_parse_subs(m, o, &mf, subs, &nsubs, &source, err,
		 sizeof(err))) == -2) {
		mb_store_error(req, "list_get", err);
		goto out;
	} else if (rc == -1)
		goto invalid;
	if (store_member_create(m->deps.st, &mf.f, msg_now_ms(), &id, &conflict,
		err, sizeof(err)) == -1) {
		if (conflict)
			http_reply_error(req, 409, "conflict", "%s", err);
		else
			mb_store_error(req, "member_create", err);
		goto out;
	}
	for (i = 0; i < nsubs; i++)
		if (mb_subscribe(m, id, subs[i].list, subs[i].double_optin,
			subs[i].ch, mf.f.email, source, &change, &status, err,
			sizeof(err)) == -1) {
			mb_store_error(req, "subscribe", err);
			goto out;
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

/* ---- GET /api/v1/members (search) ------------------------------------- */

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
	if (!api_authorized(m->deps.api, req) || !mb_query(req, &q, known))
		return;
	if (mb_page(&q, &mq.after, &mq.limit, err, sizeof(err)) == -1)
		goto invalid;
	if ((s = evhttp_find_header(&q, "phone")) != NULL) {
		if (mb_phone(m, "phone", s, MB_PHONE_FIND, phone, sizeof(phone),
			err, sizeof(err)) == -1)
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

/* ---- GET / PATCH /api/v1/members/{id} ---------------------------------- */

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
	bool changed = false, conflict = false, phone, email;
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
	if (mf.f.set != 0 &&
	    store_member_update(m->deps.st, id, &mf.f, msg_now_ms(), &changed,
		&conflict, err, sizeof(err)) == -1) {
		if (conflict)
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

/* ---- POST /api/v1/members/{id}/optout and /optin ----------------------- */

static void
mb_member_optchange(struct http_req *req, struct members *m, bool out)
{
	static const char *const known[] = {"channel", "detail", NULL};
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
	    mb_str(o, "detail", MB_SOURCE_MAX, false, &detail, NULL, err,
		sizeof(err)) == -1) {
		mb_invalid(req, err);
		goto done;
	}
	if (!mb_member_param(m, req, req->params[0], &id, NULL))
		goto done;
	rc = out ? store_member_optout_id(m->deps.st, id, ch, CONSENT_API, 0,
		       detail, msg_now_ms(), &changed, err, sizeof(err))
		 : store_member_optin(m->deps.st, id, ch, CONSENT_API, 0,
		       detail, msg_now_ms(), &changed, err, sizeof(err));
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

/* ---- GET /api/v1/members/{id}/consent ---------------------------------- */

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

	if (!api_authorized(m->deps.api, req) || !mb_query(req, &q, known))
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

/* ---- Lists -------------------------------------------------------------- */

static void
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
 * The fields of a list create (all) or update (those present replace
 * what ld already holds).
 */
static int
mb_parse_list(struct members *m, json_t *o, struct mb_listdef *ld, char *err,
    size_t errlen)
{
	static const char *const known[] = {"name", "keywords", "sender",
	    "welcome_sms", "welcome_email_subject", "welcome_email",
	    "double_optin", "questions", NULL};
	const char *s;
	bool present;
	json_t *v;
	int64_t id;

	if (api_check_fields(o, known, err, errlen) == -1)
		return -1;
	if (mb_str(o, "name", LIST_NAME_MAX, false, &s, &present, err,
		errlen) == -1)
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
	if (mb_str(o, "sender", 64, false, &s, &present, err, errlen) == -1)
		return -1;
	if (present) {
		if (s != NULL && !dispatch_has_sender(m->deps.dispatch, s)) {
			snprintf(err, errlen, "sender: no sender named '%s'",
			    s);
			return -1;
		}
		ld->d.sender = s;
	}
#define MB_LIST_TEXT(key, max, ml)                                             \
	do {                                                                   \
		if (mb_str(o, #key, max, ml, &s, &present, err, errlen) == -1) \
			return -1;                                             \
		if (present)                                                   \
			ld->d.key = s;                                         \
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
	return 0;
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
	if (store_list_create(m->deps.st, &ld.d, msg_now_ms(), &id, &conflict,
		err, sizeof(err)) == -1) {
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

static void
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
	bool conflict = false;
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
	if (store_list_update(m->deps.st, id, &ld.d, msg_now_ms(), &conflict,
		err, sizeof(err)) == -1) {
		if (conflict)
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
	if (!mb_query(req, &q, known))
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

static void
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

/* ---- /api/v1/lists/{id}/members ---------------------------------------- */

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

	if (!mb_query(req, &q, known))
		return;
	status = evhttp_find_header(&q, "status");
	if (mb_page(&q, &after, &limit, err, sizeof(err)) == -1)
		mb_invalid(req, err);
	else if (status != NULL && strcmp(status, "pending") != 0 &&
	    strcmp(status, "active") != 0 && strcmp(status, "left") != 0)
		mb_invalid(req, "status: one of pending, active, left");
	else if ((o = store_list_members_json(m->deps.st, id, status, after,
		      limit, err, sizeof(err))) == NULL)
		mb_store_error(req, "list_members", err);
	else
		http_reply_json(req, 200, o);
	evhttp_clear_headers(&q);
}

/*
 * The member found by the phone or email of a subscribe: both given must
 * be this member's (else 409: they belong to two members, or the member
 * has another), and phone / *email become the member's own.
 */
static int
mb_sub_existing(struct members *m, struct http_req *req, int64_t id,
    char *phone, char **email, char *err, size_t errlen)
{
	const char *p, *e;
	json_t *cur;

	if ((cur = store_member_json(m->deps.st, id, err, errlen)) == NULL)
		return -2;
	p = json_string_value(json_object_get(cur, "phone"));
	e = json_string_value(json_object_get(cur, "email"));
	if ((*phone != '\0' && (p == NULL || strcmp(p, phone) != 0)) ||
	    (*email != NULL && (e == NULL || strcmp(e, *email) != 0))) {
		http_reply_error(req, 409, "conflict",
		    "the phone and the email given are not those of one member "
		    "(member %lld has phone %s and email %s); update the "
		    "member first or give its id",
		    (long long)id, p != NULL ? p : "none",
		    e != NULL ? e : "none");
		json_decref(cur);
		return -3;
	}
	strlcpy(phone, p != NULL ? p : "", PHONE_E164_MAX);
	free(*email);
	*email = e != NULL ? xstrdup(e) : NULL;
	json_decref(cur);
	return 0;
}

/*
 * The member a subscribe names: "member" (an id), or "phone" / "email"
 * (found, else created). -1 invalid (err), -2 store (err), -3 answered.
 */
static int
mb_sub_member(struct members *m, struct http_req *req, json_t *o, int64_t *id,
    bool *created, char *phone, char **email, char *err, size_t errlen)
{
	struct member_fields f = {0};
	json_t *v = json_object_get(o, "member"), *cur;
	const char *s;
	const char *pin; /* the phone as given */
	char ref[32];
	bool found = false, conflict = false;

	*created = false;
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			snprintf(err, errlen, "member: a member id");
			return -1;
		}
		snprintf(ref, sizeof(ref), "%lld",
		    (long long)json_integer_value(v));
		if (!mb_member_param(m, req, ref, id, &cur))
			return -3;
		if ((s = json_string_value(json_object_get(cur, "phone"))))
			strlcpy(phone, s, PHONE_E164_MAX);
		if ((s = json_string_value(json_object_get(cur, "email"))))
			*email = xstrdup(s);
		json_decref(cur);
		return 0;
	}
	if (mb_str(o, "phone", 64, false, &pin, NULL, err, errlen) == -1)
		return -1;
	if (pin != NULL &&
	    mb_phone(m, "phone", pin, MB_PHONE_FIND, phone, PHONE_E164_MAX, err,
		errlen) == -1)
		return -1;
	if (mb_str(o, "email", 254, false, &s, NULL, err, errlen) == -1)
		return -1;
	if (s != NULL && (*email = mb_email(s, err, errlen)) == NULL)
		return -1;
	if (*phone == '\0' && *email == NULL) {
		snprintf(err, errlen,
		    "member: give a member id, a phone or "
		    "an email");
		return -1;
	}
	if (*phone != '\0' &&
	    store_member_find(m->deps.st, CHANNEL_SMS, phone, id, &found, err,
		errlen) == -1)
		return -2;
	if (!found && *email != NULL &&
	    store_member_find(m->deps.st, CHANNEL_EMAIL, *email, id, &found,
		err, errlen) == -1)
		return -2;
	if (found)
		return mb_sub_existing(m, req, *id, phone, email, err, errlen);
	/* found by any number it may be stored as; created by a good one */
	if (pin != NULL &&
	    mb_phone(m, "phone", pin, MB_PHONE_SET, phone, PHONE_E164_MAX, err,
		errlen) == -1)
		return -1;
	f.set = (*phone != '\0' ? MF_PHONE : 0) | (*email ? MF_EMAIL : 0);
	f.phone = *phone != '\0' ? phone : NULL;
	f.email = *email;
	if (store_member_create(m->deps.st, &f, msg_now_ms(), id, &conflict,
		err, errlen) == -1) {
		if (conflict) {
			http_reply_error(req, 409, "conflict", "%s", err);
			return -3;
		}
		return -2;
	}
	*created = true;
	return 0;
}

static void
mb_list_members_post(struct http_req *req, struct members *m, int64_t list,
    const struct list_info *li)
{
	static const char *const known[] = {"member", "phone", "email",
	    "channel", "consent_source", NULL};
	struct mb_pending *p;
	enum sub_change change;
	enum sub_status status;
	const char *source;
	char err[512], phone[PHONE_E164_MAX] = "", *email = NULL;
	bool created, found;
	int64_t id;
	json_t *o;
	int ch, rc, opted;

	if ((o = mb_write_begin(m, req)) == NULL)
		return;
	if (api_check_fields(o, known, err, sizeof(err)) == -1 ||
	    mb_channel(o, "channel", false, &ch, err, sizeof(err)) == -1 ||
	    mb_str(o, "consent_source", MB_SOURCE_MAX, false, &source, NULL,
		err, sizeof(err)) == -1)
		goto invalid;
	if (source == NULL || *source == '\0') {
		snprintf(err, sizeof(err),
		    "consent_source: required (how the member agreed, e.g. "
		    "\"signup form at the rally\")");
		goto invalid;
	}
	if (json_object_get(o, "member") != NULL &&
	    (json_object_get(o, "phone") || json_object_get(o, "email"))) {
		snprintf(err, sizeof(err),
		    "member: give a member id or a phone/email, not both");
		goto invalid;
	}
	/* Check what needs no store before a member may be created. */
	if (json_object_get(o, "member") == NULL && ch != -1 &&
	    json_object_get(o, ch == CHANNEL_SMS ? "phone" : "email") == NULL) {
		snprintf(err, sizeof(err), "%s: required for channel %s",
		    ch == CHANNEL_SMS ? "phone" : "email", channel_to_text(ch));
		goto invalid;
	}
	rc = mb_sub_member(m, req, o, &id, &created, phone, &email, err,
	    sizeof(err));
	if (rc == -3)
		goto out;
	if (rc == -2) {
		mb_store_error(req, "member_find", err);
		goto out;
	}
	if (rc == -1)
		goto invalid;
	if (ch == -1)
		ch = phone[0] != '\0' ? CHANNEL_SMS : CHANNEL_EMAIL;
	if ((ch == CHANNEL_SMS && phone[0] == '\0') ||
	    (ch == CHANNEL_EMAIL && email == NULL)) {
		snprintf(err, sizeof(err), "channel: member %lld has no %s",
		    (long long)id, ch == CHANNEL_SMS ? "phone" : "email");
		goto invalid;
	}
	if (mb_subscribe(m, id, list, li->double_optin, ch, email, source,
		&change, &status, err, sizeof(err)) == -1 ||
	    (change == SUB_CHANGE_ALREADY &&
		store_subscription_status(m->deps.st, id, list, ch, &status,
		    &found, err, sizeof(err)) == -1) ||
	    (opted = store_member_is_opted_out(m->deps.st, id, ch, err,
		 sizeof(err))) == -1) {
		mb_store_error(req, "subscribe", err);
		goto out;
	}
	p = mb_pending_new(
	    change == SUB_CHANGE_NEW || change == SUB_CHANGE_REJOINED ? 201
								      : 200);
	p->body = json_pack("{s:I, s:I, s:s, s:s, s:s, s:b, s:b}", "member_id",
	    (json_int_t)id, "list_id", (json_int_t)list, "channel",
	    channel_to_text(ch), "status", mb_sub_status_text(status), "change",
	    mb_sub_change_text(change), "member_created", created, "opted_out",
	    opted == 1);
	mb_commit(m, req, p);
	goto out;
invalid:
	mb_invalid(req, err);
out:
	free(email);
	json_decref(o);
}

static void
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

static void
mb_list_member_delete(struct http_req *req, void *arg)
{
	static const char *const known[] = {"channel", NULL};
	struct members *m = arg;
	struct mb_pending *p;
	struct evkeyvalq q;
	const char *c;
	char err[512];
	bool changed, any = false;
	int64_t list, id;
	json_t *left;
	int ch;

	if (!api_authorized(m->deps.api, req))
		return;
	if (api_is_stopping(m->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	if (!mb_query(req, &q, known))
		return;
	c = evhttp_find_header(&q, "channel");
	if (c != NULL && channel_parse(c) == -1) {
		mb_invalid(req, "channel: must be \"sms\" or \"email\"");
		goto out;
	}
	if (!mb_list_param(m, req, req->params[0], &list, NULL) ||
	    !mb_member_param(m, req, req->params[1], &id, NULL))
		goto out;
	left = json_array();
	for (ch = 0; ch < CHANNEL_COUNT; ch++) {
		if (c != NULL && ch != channel_parse(c))
			continue;
		if (store_unsubscribe(m->deps.st, id, list, ch, CONSENT_API, 0,
			NULL, msg_now_ms(), &changed, err, sizeof(err)) == -1) {
			json_decref(left);
			mb_store_error(req, "unsubscribe", err);
			goto out;
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
out:
	evhttp_clear_headers(&q);
}

/* ---- CSV exports -------------------------------------------------------- */

/* A plain number ("+14155550100", "-3.5") is not a formula. */
static bool
mb_csv_number(const char *s)
{
	bool dot = false;

	if (*s == '+' || *s == '-')
		s++;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.' && !dot)
			dot = true;
		else if (!isdigit((unsigned char)*s))
			return false;
	}
	return true;
}

/*
 * Appends one CSV field (RFC 4180): quoted when it holds a comma, a quote,
 * CR or LF (quotes doubled). A cell a spreadsheet would run as a formula
 * (starting with = + - @, a tab or CR, and not a plain number) gets a
 * leading ' so it stays text (OWASP CSV injection).
 */
static void
mb_csv_field(struct evbuffer *b, const char *s)
{
	bool formula = s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL &&
	    !mb_csv_number(s);
	const char *p;

	if (strpbrk(s, ",\"\r\n") == NULL) {
		if (formula)
			evbuffer_add(b, "'", 1);
		evbuffer_add(b, s, strlen(s));
		return;
	}
	evbuffer_add(b, "\"", 1);
	if (formula)
		evbuffer_add(b, "'", 1);
	for (p = s; *p != '\0'; p++) {
		if (*p == '"')
			evbuffer_add(b, "\"\"", 2);
		else
			evbuffer_add(b, p, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static bool
mb_export_is_header(const struct mb_export *x, const struct export_row *row)
{
	size_t i;

	if (x->header == NULL || row->ncols != x->nheader)
		return false;
	for (i = 0; i < row->ncols; i++)
		if (row->cols[i] == NULL || strcmp(row->cols[i], x->header[i]))
			return false;
	return true;
}

/* Store callback: one row into the page buffer (the header once). */
static int
mb_export_row(void *arg, const struct export_row *row)
{
	struct mb_export *x = arg;
	size_t i;

	if (!x->header_seen && mb_export_is_header(x, row)) {
		x->header_seen = true;
		return 0; /* the header again, on a later page */
	}
	if (x->header == NULL) {
		x->header = xcalloc(row->ncols, sizeof(char *));
		for (i = 0; i < row->ncols; i++)
			x->header[i] =
			    xstrdup(row->cols[i] != NULL ? row->cols[i] : "");
		x->nheader = row->ncols;
		x->header_seen = true;
	} else
		x->rows++;
	for (i = 0; i < row->ncols; i++) {
		if (i > 0)
			evbuffer_add(x->buf, ",", 1);
		if (row->cols[i] != NULL)
			mb_csv_field(x->buf, row->cols[i]);
	}
	evbuffer_add(x->buf, "\r\n", 2);
	return 0;
}

/* Reads the next page into x->buf; *more when rows remain. */
static int
mb_export_page(struct mb_export *x, bool *more, char *err, size_t errlen)
{
	struct store *st = x->m->deps.st;
	int64_t next = 0;
	int rc;

	x->header_seen = false;
	rc = x->kind == MB_EXPORT_LIST
	    ? store_export_list(st, x->id, x->cursor, MB_EXPORT_PAGE,
		  mb_export_row, x, &next, err, errlen)
	    : store_export_consent(st, x->id, x->cursor, MB_EXPORT_PAGE,
		  mb_export_row, x, &next, err, errlen);
	if (rc == -1)
		return -1;
	x->cursor = next;
	*more = next != 0;
	return 0;
}

/* Sends the page in x->buf, and continues once it left. */
static void
mb_export_send(struct mb_export *x, bool more)
{
	size_t len = evbuffer_get_length(x->buf);
	unsigned char *data = evbuffer_pullup(x->buf, (ev_ssize_t)len);

	if (more) {
		http_reply_chunk_then(x->req, data, len, mb_export_next, x);
		evbuffer_drain(x->buf, len);
		return;
	}
	http_reply_chunk(x->req, data, len);
	evbuffer_drain(x->buf, len);
	log_info("export_done kind=%s id=%lld rows=%llu",
	    x->kind == MB_EXPORT_LIST ? "list" : "consent", (long long)x->id,
	    (unsigned long long)x->rows);
	http_reply_end(x->req);
	mb_export_free(x);
}

/* The previous page left for the client (or the client left). */
static void
mb_export_next(struct http_req *req, void *arg)
{
	struct mb_export *x = arg;
	char err[512];
	bool more;

	if (http_reply_gone(req)) {
		log_info("export_aborted kind=%s id=%lld rows=%llu "
			 "reason=\"client went away\"",
		    x->kind == MB_EXPORT_LIST ? "list" : "consent",
		    (long long)x->id, (unsigned long long)x->rows);
		http_reply_end(req);
		mb_export_free(x);
		return;
	}
	if (mb_export_page(x, &more, err, sizeof(err)) == -1) {
		/* Headers are gone: cut the body short so the client sees
		 * an incomplete transfer, never a silently short file. */
		log_warnx("members_store_failed op=export error=\"%s\" "
			  "rows=%llu",
		    err, (unsigned long long)x->rows);
		http_reply_abort(req);
		mb_export_free(x);
		return;
	}
	mb_export_send(x, more);
}

/*
 * Starts an export: the first page is read before the status is sent, so
 * a store error is still a 503.
 */
static void
mb_export_start(struct members *m, struct http_req *req,
    enum mb_export_kind kind, int64_t id, const char *filename)
{
	struct mb_export *x = xcalloc(1, sizeof(*x));
	char err[512], disp[128];
	bool more;

	x->m = m;
	x->req = req;
	x->kind = kind;
	x->id = id;
	if ((x->buf = evbuffer_new()) == NULL)
		fatalx("mb_export_start: evbuffer_new failed");
	TAILQ_INSERT_TAIL(&m->exports, x, entry);
	if (mb_export_page(x, &more, err, sizeof(err)) == -1) {
		mb_export_free(x);
		mb_store_error(req, "export", err);
		return;
	}
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", filename);
	http_add_header(req, "Content-Disposition", disp);
	http_add_header(req, "Cache-Control", "no-store");
	http_reply_start(req, 200, "text/csv; charset=utf-8");
	mb_export_send(x, more);
}

static void
mb_list_export(struct http_req *req, void *arg)
{
	struct members *m = arg;
	struct list_info li;
	char fn[LIST_NAME_MAX + 16], *p;
	int64_t id;

	memset(&li, 0, sizeof(li));
	if (!api_authorized(m->deps.api, req) ||
	    !mb_list_param(m, req, req->params[0], &id, &li))
		return;
	snprintf(fn, sizeof(fn), "%s.csv", li.name);
	for (p = fn; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_", *p))
			*p = '_';
	list_info_clear(&li);
	mb_export_start(m, req, MB_EXPORT_LIST, id, fn);
}

static void
mb_consent_export(struct http_req *req, void *arg)
{
	static const char *const known[] = {"member", NULL};
	struct members *m = arg;
	struct evkeyvalq q;
	const char *s;
	int64_t id = 0;

	if (!api_authorized(m->deps.api, req) || !mb_query(req, &q, known))
		return;
	s = evhttp_find_header(&q, "member");
	if (s == NULL || mb_member_param(m, req, s, &id, NULL))
		mb_export_start(m, req, MB_EXPORT_CONSENT, id, "consent.csv");
	evhttp_clear_headers(&q);
}
