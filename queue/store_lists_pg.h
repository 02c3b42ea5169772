/*
 * store_lists_pg.h - the lists API's reads and writes on the PostgreSQL
 * store (issue 13, doc/postgresql.md): store_members.h's list create,
 * update, delete, one list and all lists as JSON, a list's members,
 * subscribe and unsubscribe from the API, a list's CSV export, and the
 * lists a received text's route needs, as operations answered through
 * callbacks, for daemon/lists_pg.c and daemon/inbound.c. SQLite keeps
 * store_members.h.
 *
 * Contract (as store_members_pg.h's):
 *  - PostgreSQL only: on a SQLite store (or a build without libpq) each
 *    call returns -1 with err and calls nothing.
 *  - A read is one statement on store_pg_conn(), outside the group; its
 *    callback runs exactly once, from the loop, with store_members.h's
 *    JSON shapes (o a new reference; o NULL and error NULL: the list is
 *    not there).
 *  - A write is its statements in the node's group; its callback runs
 *    exactly once, from the loop, after the group committed (d->ok) or
 *    failed (!d->ok: nothing of it is stored). What an expected case
 *    finds (a name or keyword another list has, a list from the config,
 *    a missing list or member, members left on a list) is an answer,
 *    never an error that would fail the group.
 *  - -1 with err when nothing was sent (then no callback runs). Loop
 *    thread only; what is given is copied or used before the call
 *    returns.
 */
#ifndef OD_STORE_LISTS_PG_H
#define OD_STORE_LISTS_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store_members.h"
#include "store_members_pg.h"

struct store;

/*
 * A list by reference (an id, else a name, as the API takes it) as
 * store_list_json() gives it; ref NULL: every list, {"lists": [...]} as
 * store_lists_json(). light: without "counts" and "channel_counts" (a
 * lookup before a write: no count over the list's members).
 */
struct list_read_pg {
	const char *ref;
	bool light;
};
int store_list_json_pg(struct store *st, const struct list_read_pg *r,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen);

/* What a list write reports once its group is settled. */
struct list_done {
	bool ok;	   /* committed */
	const char *error; /* !ok: why, when known; conflict: the text */
	int64_t id;	   /* the list (create: the new one) */
	bool found;	   /* update, delete: the list exists */
	bool conflict;	   /* 409: taken name or keyword, config list,
			    * members left (delete without force) */
	/* subscribe */
	int64_t member;
	bool member_created;
	enum sub_status status;
	enum sub_change change;
	bool opted_out;
	/* unsubscribe: the channels left, bit 1 << channel */
	unsigned left;
};
typedef void store_list_done_fn(void *arg, const struct list_done *d);

/*
 * store_list_create() (id 0) / store_list_update() (list id): d checked
 * as on SQLite, then, in the group, the transaction-level advisory lock
 * (1868, 2) the config sync takes, then one statement that writes only
 * when no other list has the name or a keyword (d->conflict, with
 * SQLite's text) and, for an update, the list is not the config's.
 */
struct list_write_pg {
	int64_t id;
	const struct list_def *d;
	int64_t now;
};
int store_list_write_pg(struct store *st, const struct list_write_pg *w,
    store_list_done_fn *fn, void *arg, char *err, size_t errlen);

/* store_list_delete(): refused (conflict) while members are on it,
 * unless force. */
int store_list_delete_pg(struct store *st, int64_t id, bool force,
    store_list_done_fn *fn, void *arg, char *err, size_t errlen);

/* store_list_members_json(): q->list by id. */
int store_list_members_json_pg(struct store *st,
    const struct list_members_query *q, store_mb_json_fn *fn, void *arg,
    char *err, size_t errlen);

/*
 * The member a subscribe names: by id (member), else the one with the
 * phone, else the one with the email: o {"id", "phone", "email"}, or NULL
 * (error NULL) when there is none.
 */
struct member_find_pg {
	int64_t member;
	const char *phone;
	const char *email;
};
int store_member_find_pg(struct store *st, const struct member_find_pg *f,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen);

/*
 * store_subscribe() from the API (source "api", the consent event's
 * detail s->detail): member s->member, or (0) a new member with s->phone
 * and s->email made by the same statement (after the lock (1868, 7) of
 * the members' creates; d->conflict when another has either). d->status,
 * d->change, d->opted_out and d->member_created as members_lists.c
 * answers them.
 */
struct list_sub_pg {
	int64_t member;
	const char *phone;
	const char *email;
	int64_t list;
	enum channel ch;
	enum sub_status status; /* pending or active */
	const char *detail;
	int64_t now;
};
int store_list_subscribe_pg(struct store *st, const struct list_sub_pg *s,
    store_list_done_fn *fn, void *arg, char *err, size_t errlen);

/*
 * store_unsubscribe() of the channels u->channels (1 << channel) of
 * member 'member' from 'list': d->found false when there is no such
 * member; d->left the channels that changed.
 */
struct list_unsub_pg {
	int64_t member;
	int64_t list;
	unsigned channels;
	int64_t now;
};
int store_list_unsubscribe_pg(struct store *st, const struct list_unsub_pg *u,
    store_list_done_fn *fn, void *arg, char *err, size_t errlen);

/* store_export_list(): one page of list r->member's rows (as
 * store_export_consent_pg(), r->member being the list's id). */
int store_export_list_pg(struct store *st, const struct export_req_pg *r,
    store_export_done_fn *done, void *arg, char *err, size_t errlen);

/*
 * The lists a received text's route needs, read when it is routed:
 * keyword NULL (a YES): every list; else the list with that keyword (none
 * or one). o: [{"name", "welcome_sms", "double_optin"}, ...].
 */
int store_route_lists_pg(struct store *st, const char *keyword,
    store_mb_json_fn *fn, void *arg, char *err, size_t errlen);

#endif
