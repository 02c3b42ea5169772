/*
 * members_fields.c - the request side of the members and lists API:
 * member fields parsed and checked from JSON (phone, email, names, ZIP,
 * time zone, attributes, tags), ids, pages and query parameters, the list
 * and member a path or body names, and the error answers (422 naming the
 * field, 500 for the store).
 */

#include "autoconf.h"

#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "compat.h"
#include "config.h"
#include "email_addr.h"
#include "http.h"
#include "log.h"
#include "members-internal.h"
#include "quiet.h"
#include "members.h"
#include "phone.h"
#include "store.h"
#include "store_members.h"
#include "xmalloc.h"

#define MB_PAGE_DEFAULT	   100
#define MB_PAGE_MAX	   1000
#define MB_NAME_MAX	   100 /* first_name, last_name */
#define MB_ZIP_MAX	   16
#define MB_TZ_MAX	   64
#define MB_TAG_MAX	   64
#define MB_TAGS_MAX	   100
#define MB_ATTRS_MAX_BYTES 16384

/* ---- Small helpers ------------------------------------------------ */

void
mb_store_error(struct http_req *req, const char *what, const char *err)
{
	log_warnx("members_store_failed op=%s error=\"%s\"", what, err);
	http_reply_error(req, 503, "unavailable", "store: %s", err);
}

void
mb_invalid(struct http_req *req, const char *err)
{
	http_reply_error(req, 422, "invalid_request", "%s", err);
}

/* A positive decimal integer that fits int64. */
bool
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

/* The cursor ("after") and page size ("limit") of a listing. */
int
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
 * Normalizes the phone number p->text into out; err names p->field. One
 * rule for numbers: a lookup (MB_PHONE_FIND) takes any possible number, or
 * one already in E.164 form as a received text may have stored it, so what
 * is stored is found by the same string; a number a member is created
 * or updated with (MB_PHONE_SET) must be valid, or only possible with
 * [sms] accept_unassigned_numbers.
 */
int
mb_phone(const struct members *m, const struct mb_phonein *p, char *out,
    size_t outlen, char *err, size_t errlen)
{
	enum phone_accept accept = PHONE_VALID;
	char why[256], tmp[PHONE_E164_MAX];

	if (p->use == MB_PHONE_FIND)
		accept = PHONE_STORED;
	else if (m->deps.cfg != NULL && m->deps.cfg->accept_unassigned)
		accept = PHONE_POSSIBLE;
	if (phone_normalize_as(p->text,
		&(struct phone_rules){.region = mb_region(m), .accept = accept},
		out, outlen, why, sizeof(why)) == 0)
		return 0;
	if (accept == PHONE_VALID &&
	    phone_normalize_as(p->text,
		&(struct phone_rules){.region = mb_region(m),
		    .accept = PHONE_POSSIBLE},
		tmp, sizeof(tmp), NULL, 0) == 0)
		snprintf(err, errlen,
		    "%s: %s (an unassigned range; [sms] "
		    "accept_unassigned_numbers = yes accepts it)",
		    p->field, why);
	else
		snprintf(err, errlen, "%s: %s", p->field, why);
	return -1;
}

/*
 * The address checked by the rule of email_addr.h (the import, SMS answers
 * and the messages API use it too) and lower-cased, as a new string; NULL
 * with "email: not an email address: <why>" in err.
 */
char *
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
bool
mb_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/*
 * An optional string field o[f->key]: *out NULL when absent or null,
 * *present (if not NULL) set when the key is there (null included).
 * Checks length (f->max) and controls (f->multiline).
 */
int
mb_str(json_t *o, const struct mb_strfield *f, const char **out, bool *present,
    char *err, size_t errlen)
{
	json_t *v = json_object_get(o, f->key);

	*out = NULL;
	if (present != NULL)
		*present = v != NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s: must be a string", f->key);
		return -1;
	}
	*out = json_string_value(v);
	if (strlen(*out) > f->max) {
		snprintf(err, errlen, "%s: at most %zu bytes", f->key, f->max);
		return -1;
	}
	if (!f->multiline && !mb_printable(*out)) {
		snprintf(err, errlen, "%s: must not hold control characters",
		    f->key);
		return -1;
	}
	return 0;
}

int
mb_channel(json_t *o, const char *key, bool required, int *ch, char *err,
    size_t errlen)
{
	const char *s;

	if (mb_str(o, &(struct mb_strfield){.key = key, .max = 16}, &s, NULL,
		err, errlen) == -1)
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

void
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
		struct mb_strfield f;
		unsigned bit;
	} t[] = {
	    {{.key = "first_name", .max = MB_NAME_MAX}, MF_FIRST_NAME},
	    {{.key = "last_name", .max = MB_NAME_MAX}, MF_LAST_NAME},
	    {{.key = "zip", .max = MB_ZIP_MAX}, MF_ZIP},
	    {{.key = "time_zone", .max = MB_TZ_MAX}, MF_TIME_ZONE},
	};
	const char **dst[] = {&mf->f.first_name, &mf->f.last_name, &mf->f.zip,
	    &mf->f.time_zone};
	const char *s;
	bool present;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(*t); i++) {
		if (mb_str(o, &t[i].f, &s, &present, err, errlen) == -1)
			return -1;
		if (!present || (s == NULL && !patch))
			continue;
		if (s != NULL && t[i].bit == MF_TIME_ZONE &&
		    (*s != '\0' || !patch) && !quiet_zone_valid(s)) {
			snprintf(err, errlen,
			    "time_zone: '%.64s' is not a time zone of this "
			    "system's tz database (an IANA name such as "
			    "\"America/Chicago\")",
			    s);
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

	if (mb_str(o, &(struct mb_strfield){.key = "phone", .max = 64}, &s,
		&present, err, errlen) == -1)
		return -1;
	if (present && (s != NULL || patch)) {
		mf->f.set |= MF_PHONE;
		if (s != NULL) {
			if (mb_phone(m,
				&(struct mb_phonein){.field = "phone",
				    .text = s,
				    .use = MB_PHONE_SET},
				mf->phone, sizeof(mf->phone), err,
				errlen) == -1)
				return -1;
			mf->f.phone = mf->phone;
		}
	}
	if (mb_str(o, &(struct mb_strfield){.key = "email", .max = 254}, &s,
		&present, err, errlen) == -1)
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

int
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
 * Resolves a list given by id or name: 0 with h->found (and h->id, and the
 * list's info in *li if li is not NULL), or -1 with err (a store error).
 */
int
mb_list_ref(struct members *m, const char *ref, struct list_info *li,
    struct mb_listhit *h, char *err, size_t errlen)
{
	struct list_info tmp;

	h->found = false;
	memset(&tmp, 0, sizeof(tmp));
	if (mb_parse_id(ref, &h->id)) {
		if (store_list_get(m->deps.st, h->id, li != NULL ? li : &tmp,
			&h->found, err, errlen) == -1)
			return -1;
		list_info_clear(&tmp);
		if (h->found)
			return 0;
		/* else: a config list may have a name of digits */
	}
	if (store_list_by_name(m->deps.st, ref, &h->id, &h->found, err,
		errlen) == -1)
		return -1;
	if (!h->found)
		return 0;
	if (store_list_get(m->deps.st, h->id, li != NULL ? li : &tmp, &h->found,
		err, errlen) == -1)
		return -1;
	list_info_clear(&tmp);
	return 0;
}

/* As mb_list_ref(), answering 404 / 503 itself (returns false then). */
bool
mb_list_param(struct members *m, struct http_req *req, const char *ref,
    int64_t *id, struct list_info *li)
{
	struct mb_listhit h = {0};
	char err[256];

	if (mb_list_ref(m, ref, li, &h, err, sizeof(err)) == -1) {
		mb_store_error(req, "list_get", err);
		return false;
	}
	if (!h.found) {
		http_reply_error(req, 404, "not_found", "no list '%s'", ref);
		return false;
	}
	*id = h.id;
	return true;
}

/* The member whose id is params[0]: 404 / 503 answered here. */
bool
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
