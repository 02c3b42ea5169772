/*
 * members-internal.h - what the files of the members module share
 * (members.c, members_fields.c, members_lists.c, members_export.c): the
 * module's state, a write waiting for its commit, an export being
 * streamed, the parsed fields of a member, and the helpers each file
 * calls in another.
 *
 * Contract:
 *  - Loop thread only, like members.h.
 *  - Helpers named *_param (like api_read_query()) answer the request
 *    themselves when they return false; the others leave answering to
 *    the caller and put "field: problem" in err.
 */
#ifndef OD_MEMBERS_INTERNAL_H
#define OD_MEMBERS_INTERNAL_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "http.h"
#include "members.h"
#include "message.h"
#include "phone.h"
#include "store_members.h"

#define MB_SOURCE_MAX 200 /* consent_source */

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

struct mb_export;
/* What follows a page's read: rc 0 (more: pages remain) or -1 (err). */
typedef void mb_export_cont_fn(struct mb_export *x, int rc, bool more,
    const char *err);

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
	char filename[LIST_NAME_MAX + 16]; /* Content-Disposition's */
	/* PostgreSQL: a page read in flight, and what follows it */
	struct export_page page;
	struct export_sink sink;
	mb_export_cont_fn *cont;
	bool busy;   /* the read is in flight */
	bool orphan; /* the module went away meanwhile: free on its answer */
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

/* A phone number of a request, as mb_phone() takes it. */
struct mb_phonein {
	const char *field; /* the request's field, named in errors */
	const char *text;  /* the number as given */
	enum mb_phone_use use;
};

/* A string field of a request and its rule, as mb_str() takes it. */
struct mb_strfield {
	const char *key;
	size_t max;	/* bytes */
	bool multiline; /* line breaks and tabs allowed */
};

/* A list mb_list_ref() looked up: its id if found. */
struct mb_listhit {
	int64_t id;
	bool found;
};

/* ---- members.c ---------------------------------------------------- */

/* Keeps req until the open group commits, then answers per p. */
void mb_commit(struct members *m, struct http_req *req, struct mb_pending *p);

/* A new pending answer with HTTP status code (owned by mb_commit()). */
struct mb_pending *mb_pending_new(int code);

/* Common start of a write: auth, not stopping, a JSON object body. */
json_t *mb_write_begin(struct members *m, struct http_req *req);

/* ---- members_pg.c, lists_pg.c ------------------------------------- */

/* The /api/v1/lists routes on a PostgreSQL store (lists_pg.c). */
void mb_lists_pg_routes(struct members *m, struct http_server *srv);

/* The /api/v1/members routes on a PostgreSQL store. */
void mb_pg_routes(struct members *m, struct http_server *srv);

/* ---- members_fields.c --------------------------------------------- */

/* Answers 503 (a store error, logged once with what and err). */
void mb_store_error(struct http_req *req, const char *what, const char *err);

/* Answers 422 "invalid_field" with err ("field: problem"). */
void mb_invalid(struct http_req *req, const char *err);

/* A positive decimal integer that fits int64. */
bool mb_parse_id(const char *s, int64_t *id);

/* The cursor ("after") and page size ("limit") of a listing. */
int mb_page(struct evkeyvalq *q, int64_t *after, unsigned *limit, char *err,
    size_t errlen);

/*
 * Normalizes the phone number p->text into out; err names p->field. One
 * rule for numbers: a lookup (MB_PHONE_FIND) takes any possible number, or
 * one already in E.164 form as a received text may have stored it, so what
 * is stored is found by the same string; a number a member is created
 * or updated with (MB_PHONE_SET) must be valid, or only possible with
 * [sms] accept_unassigned_numbers.
 */
int mb_phone(const struct members *m, const struct mb_phonein *p, char *out,
    size_t outlen, char *err, size_t errlen);

/*
 * The address checked by the rule of email_addr.h (the import, SMS answers
 * and the messages API use it too) and lower-cased, as a new string; NULL
 * with "email: not an email address: <why>" in err.
 */
char *mb_email(const char *s, char *err, size_t errlen);

/* True if s holds no control character. */
bool mb_printable(const char *s);

/*
 * An optional string field o[f->key]: *out NULL when absent or null,
 * *present (if not NULL) set when the key is there (null included).
 * Checks length (f->max) and controls (f->multiline).
 */
int mb_str(json_t *o, const struct mb_strfield *f, const char **out,
    bool *present, char *err, size_t errlen);

/*
 * The "subscribe" items of a create, as both stores check them. The
 * head: *source ("consent_source", required when there are items) and
 * *items (NULL: none; else an array of at most max). 0 / -1 with err.
 */
int mb_subscribe_head(json_t *o, size_t max, const char **source,
    json_t **items, char *err, size_t errlen);
/* Item i: its list (a name, or an id as text in ref) into *list and its
 * channel into *ch (default: phone's SMS, else email), one the member
 * has an address for. 0 / -1 with err. */
int mb_subscribe_item(json_t *it, size_t i, const struct mb_fields *mf,
    char ref[24], const char **list, int *ch, char *err, size_t errlen);
/* The channel in o[key] ("sms" / "email") into *ch; -1 with err. */
int mb_channel(json_t *o, const char *key, bool required, int *ch, char *err,
    size_t errlen);

/* Frees what mf owns (not mf). */
void mb_fields_clear(struct mb_fields *mf);

/* A member's fields from o into mf (patch: absent fields stay unset);
 * -1 with "field: problem" in err. */
int mb_parse_fields(struct members *m, json_t *o, struct mb_fields *mf,
    bool patch, char *err, size_t errlen);

/*
 * Resolves a list given by id or name: 0 with h->found (and h->id, and the
 * list's info in *li if li is not NULL), or -1 with err (a store error).
 */
int mb_list_ref(struct members *m, const char *ref, struct list_info *li,
    struct mb_listhit *h, char *err, size_t errlen);

/* As mb_list_ref(), answering 404 / 503 itself (returns false then). */
bool mb_list_param(struct members *m, struct http_req *req, const char *ref,
    int64_t *id, struct list_info *li);

/* The member whose id is params[0]: 404 / 503 answered here. */
bool mb_member_param(struct members *m, struct http_req *req, const char *ref,
    int64_t *id, json_t **out);

/* ---- members_lists.c ---------------------------------------------- */

/* A subscription the API asks for (mb_subscribe()), and what came of it. */
struct mb_subreq {
	int64_t member;
	int64_t list;
	enum channel ch;
	bool double_optin;	/* the list's */
	const char *email;	/* the member's address: the confirmation */
	const char *source;	/* consent_source: the event's detail */
	enum sub_change change; /* out */
	enum sub_status status; /* out */
};

/*
 * Subscribes r->member to r->list on r->ch from the API: pending for an
 * email subscription to a double opt-in list (and the confirmation email
 * is queued), active otherwise. The channel's opt-out is left alone: an
 * opted-out member is subscribed but not messaged until opted in. Fills
 * r->change and r->status; 0, or -1 with err (a store error).
 */
int mb_subscribe(struct members *m, struct mb_subreq *r, char *err,
    size_t errlen);

/* A list definition parsed from a request; strings borrowed from JSON. */
#define MB_QUESTIONS_MAX 10
struct mb_listdef {
	struct list_def d;
	char **keywords; /* upper-cased copies */
	size_t nkeywords;
	struct list_question q[MB_QUESTIONS_MAX];
};

/*
 * The fields of a list create (all) or update (those present replace
 * what ld already holds); -1 with "field: problem" in err.
 */
int mb_parse_list(struct members *m, json_t *o, struct mb_listdef *ld,
    char *err, size_t errlen);
/* Frees what ld owns and zeroes it. */
void mb_listdef_clear(struct mb_listdef *ld);

/* "pending" / "active" / "left"; "new" / "rejoined" / ... */
const char *mb_sub_status_text(enum sub_status s);
const char *mb_sub_change_text(enum sub_change c);

/*
 * The member a subscribe (POST /api/v1/lists/{id}/members) names: its id,
 * whether it was created, and its phone ("" if none) and email (owned,
 * NULL if none).
 */
struct mb_subwho {
	int64_t id;
	bool created;
	char phone[PHONE_E164_MAX];
	char *email;
};
/* A subscribe's fields that need no store: *ch (-1: by the member's
 * address) and *source (consent_source). 0 / -1 with err. */
int mb_sub_head(json_t *o, int *ch, const char **source, char *err,
    size_t errlen);
/* "member" as text in ref: 1, 0 when absent, -1 (err) when not an id. */
int mb_sub_member_ref(json_t *o, char ref[32], char *err, size_t errlen);
/* "phone" (as a lookup; *pin: as given) and "email" into w; one needed. */
int mb_sub_addr(const struct members *m, json_t *o, struct mb_subwho *w,
    const char **pin, char *err, size_t errlen);
/* The phone as given (pin, NULL: none) checked for a new member. */
int mb_sub_new_phone(const struct members *m, const char *pin,
    struct mb_subwho *w, char *err, size_t errlen);
/* True (409 answered) when w's phone or email is not member w->id's
 * (its phone p, its email e). */
bool mb_sub_mismatch(struct http_req *req, const struct mb_subwho *w,
    const char *p, const char *e);
/* The channel (default: the phone's, else email) the member has. */
int mb_sub_channel(const struct mb_subwho *w, int *ch, char *err,
    size_t errlen);
/* The answer of a subscribe. */
json_t *mb_sub_answer(const struct mb_subwho *w, const struct mb_subreq *r,
    bool opted_out);

/* GET and POST /api/v1/lists. */
void mb_lists_get(struct http_req *req, void *arg);

/* GET, PATCH and DELETE /api/v1/lists/{id}. */
void mb_list_one(struct http_req *req, void *arg);

/* GET and POST /api/v1/lists/{id}/members. */
void mb_list_members_get(struct http_req *req, void *arg);

/*
 * The start of DELETE /api/v1/lists/{id}/members/{member}: auth, not
 * stopping, the query's channel into *channels (1 << channel; both when
 * absent). False when answered (401, 503, 422).
 */
bool mb_unsub_begin(struct members *m, struct http_req *req,
    unsigned *channels);

/* DELETE /api/v1/lists/{id}/members/{member}. */
void mb_list_member_delete(struct http_req *req, void *arg);

/* ---- members_export.c --------------------------------------------- */

/* Unlinks and frees an export (its request is the caller's). */
void mb_export_free(struct mb_export *x);

/* Starts the export of list id (found), named after it. */
void mb_list_export_start(struct members *m, struct http_req *req, int64_t id,
    const char *name);

/* GET /api/v1/lists/{id}/export.csv. */
void mb_list_export(struct http_req *req, void *arg);

/* GET /api/v1/consent/export.csv. */
void mb_consent_export(struct http_req *req, void *arg);

#endif
