/*
 * store_members_pg.h - the members API's reads and writes on the
 * PostgreSQL store (issue 13, doc/postgresql.md): store_members.h's
 * member create, update, search, one member as JSON, opt-out and opt-in
 * by id and the consent log, as operations answered through callbacks,
 * for daemon/members_pg.c. SQLite keeps store_members.h.
 *
 * Contract:
 *  - PostgreSQL only: on a SQLite store (or a build without libpq) each
 *    call returns -1 with err and calls nothing.
 *  - A read sends its statements on store_pg_conn(), outside the group;
 *    its callback runs exactly once, from the loop, with the JSON shapes
 *    of store_members.h (o a new reference; o NULL and error NULL: the
 *    member, or the list of a search, is not there).
 *  - A write is its statements in the node's group; its callback runs
 *    exactly once, from the loop, after the group committed (d->ok) or
 *    failed (!d->ok: nothing of it is stored). Nothing an expected case
 *    does fails the group: a missing member (d->found false), a phone
 *    or email another member has (d->conflict, its text in d->error),
 *    a repeated opt-out (d->changed false) are answers, never errors.
 *  - -1 with err when nothing was sent (bad input: then no callback
 *    runs). Loop thread only; what is given is copied or used before the
 *    call returns.
 */
#ifndef OD_STORE_MEMBERS_PG_H
#define OD_STORE_MEMBERS_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store_members.h"

struct store;

/* A read's answer: o (new reference), or NULL (error NULL: none). */
typedef void store_mb_json_fn(void *arg, json_t *o, const char *error);

/* store_member_json(): the member with its subscriptions. */
int store_member_json_pg(struct store *st, int64_t id, store_mb_json_fn *fn,
    void *arg, char *err, size_t errlen);

/*
 * A search: store_member_search()'s query, with the list given by
 * reference (an id, else a name, as the API takes it; NULL for any)
 * instead of q.list_id, which is not used.
 */
struct member_search {
	struct member_query q;
	const char *list_ref;
};
/* store_member_search(); an unknown list answers o NULL, error NULL. */
int store_member_search_pg(struct store *st, const struct member_search *s,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen);

/*
 * Lists by reference (each an id, else a name, as the API takes them):
 * o is [[id, double_optin] or null for each ref, in order].
 */
int store_lists_resolve_pg(struct store *st, const char *const *refs, size_t n,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen);

/* A page of a member's consent log. */
struct consent_page {
	int64_t member;
	int64_t after;	/* event id cursor, 0 = from the start */
	unsigned limit; /* 1..1000 */
};
/* store_consent_json(): the member's consent events, oldest first. */
int store_consent_json_pg(struct store *st, const struct consent_page *p,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen);

/* What a member write reports once its group is settled. */
struct mb_done {
	bool ok;	   /* committed */
	const char *error; /* !ok: why, when known; conflict: the text */
	int64_t id;	   /* the member (create: the new one) */
	bool found;	   /* update, opt-out, opt-in: the member exists */
	bool conflict;	   /* create, update: phone or email is another's */
	bool changed;	   /* update, opt-out, opt-in: a row changed */
};
typedef void store_mb_done_fn(void *arg, const struct mb_done *d);

/* A list a create subscribes the new member to, on one channel. */
struct member_sub_pg {
	int64_t list;
	enum channel ch;
};

/*
 * A create (id 0) or an update of member id with f's fields at now. A
 * create may subscribe the new member (active, source "api", each with
 * its opt_in consent event whose detail is 'source', as store_subscribe()
 * writes them) to the lists of subs[0..nsubs), in the same statement.
 */
struct member_write_pg {
	int64_t id;
	const struct member_fields *f;
	int64_t now;
	const struct member_sub_pg *subs; /* create only */
	size_t nsubs;
	const char *source; /* the subscriptions' consent_source */
	/*
	 * update only, without MF_TAGS: tags (JSON arrays of strings) taken
	 * from the stored ones, then added after them, in the statement
	 * (as members.c's mb_tags_apply() does to the tags it read); NULL:
	 * none
	 */
	const json_t *add_tags;
	const json_t *remove_tags;
};
/*
 * store_member_create() / store_member_update(). Both take the
 * transaction-level advisory lock (1868, 7) before the statement that
 * reads who owns the phone and email, so that two nodes giving one
 * address to two members at once answer one 409 instead of failing a
 * group; a create's INSERT also does nothing on any unique key, for the
 * writers that do not take the lock (inbound texts, unsubscribe links).
 */
int store_member_write_pg(struct store *st, const struct member_write_pg *w,
    store_mb_done_fn *fn, void *arg, char *err, size_t errlen);

/*
 * store_member_optout_id() / store_member_optin() (cc->member, cc->ch,
 * cc->source, cc->detail, cc->message_id, cc->now): the opt-out row
 * written or removed and, only when that changed a row, the consent
 * event (no list), in one statement.
 */
int store_member_optout_pg(struct store *st, const struct consent_change *cc,
    store_mb_done_fn *fn, void *arg, char *err, size_t errlen);
int store_member_optin_pg(struct store *st, const struct consent_change *cc,
    store_mb_done_fn *fn, void *arg, char *err, size_t errlen);

/*
 * store_export_consent(): one page of the consent log's CSV rows (member
 * 0: every member's) to r->to, the header first on the first page, then
 * done(arg, 0, NULL) with r->pg->next set (0: the last page), or
 * done(arg, -1, error). r->pg and r->to are the caller's and must stay
 * until done runs (once, from the loop).
 */
struct export_req_pg {
	int64_t member;
	struct export_page *pg;
	const struct export_sink *to;
};
typedef void store_export_done_fn(void *arg, int rc, const char *error);
int store_export_consent_pg(struct store *st, const struct export_req_pg *r,
    store_export_done_fn *done, void *arg, char *err, size_t errlen);

#endif
