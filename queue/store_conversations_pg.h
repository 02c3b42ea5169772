/*
 * store_conversations_pg.h - the staff inbox on the PostgreSQL store
 * (issue 13, doc/postgresql.md): store_conversations.h's reads and
 * writes as operations answered through callbacks, for
 * daemon/conversations_pg.c. SQLite keeps store_conversations.h.
 *
 * Contract:
 *  - PostgreSQL only: on a SQLite store (or a build without libpq) each
 *    call returns -1 with err and calls nothing.
 *  - A read sends one statement (a thread: two) on store_pg_conn(),
 *    outside the group; its callback runs exactly once, from the loop,
 *    with the same JSON shapes as store_conversations.h (o is a new
 *    reference; o NULL and error NULL: not found).
 *  - A write is one statement in the node's group; its callback runs
 *    exactly once, from the loop, after the group committed (d->ok) or
 *    failed (!d->ok: nothing of it is stored). Nothing an expected case
 *    does fails the group: a conversation or staff member that does not
 *    exist, an idempotency key used before, are answers (d->found,
 *    d->staff_found, d->dup), never errors.
 *  - -1 with err when nothing was sent (then no callback runs). A
 *    listing's search text or cursor that cannot be used sets q->invalid
 *    too (an API 422). Loop thread only; what is given is copied.
 */
#ifndef OD_STORE_CONVERSATIONS_PG_H
#define OD_STORE_CONVERSATIONS_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store_conversations.h"

struct store;
struct queue_new;

/* A read's answer: o (new reference), or NULL (error NULL: none). */
typedef void store_conv_json_fn(void *arg, json_t *o, const char *error);

/* store_conv_list(): one page as {"conversations": [...], "next"}. */
int store_conv_list_pg(struct store *st, struct conv_query *q,
    store_conv_json_fn *fn, void *arg, char *err, size_t errlen);
/* store_conv_summary(): one CONV_SUMMARY. */
int store_conv_summary_pg(struct store *st, int64_t id,
    const struct conv_clock *clock, store_conv_json_fn *fn, void *arg,
    char *err, size_t errlen);
/* store_conv_thread(): the summary, "sender" and "items". */
int store_conv_thread_pg(struct store *st, int64_t id,
    const struct conv_clock *clock, store_conv_json_fn *fn, void *arg,
    char *err, size_t errlen);
/* store_conv_note_json(): one note. */
int store_conv_note_json_pg(struct store *st, int64_t id,
    store_conv_json_fn *fn, void *arg, char *err, size_t errlen);

/* store_conv_target(): fn gets rc 1 (t filled), 0 (none) or -1. */
typedef void store_conv_target_fn(void *arg, int rc,
    const struct conv_target *t, const char *error);
int store_conv_target_pg(struct store *st, int64_t id, store_conv_target_fn *fn,
    void *arg, char *err, size_t errlen);

/* What a write reports once its group is settled. */
struct conv_done {
	bool ok;	   /* committed (or nothing to commit) */
	const char *error; /* !ok: why, when known */
	bool found;	   /* the conversation exists */
	bool staff_found;  /* assign: the staff member exists (or 0) */
	int64_t id;	   /* a note's id; a reply's message */
	bool dup;	   /* a reply: the key was used, id is its message */
};
typedef void store_conv_done_fn(void *arg, const struct conv_done *d);

/*
 * store_conv_change(): one UPDATE ... RETURNING; an assign checks its
 * staff member in the same statement (d->staff_found false: nothing
 * changed).
 */
int store_conv_change_pg(struct store *st, int64_t id,
    const struct conv_change *c, store_conv_done_fn *fn, void *arg, char *err,
    size_t errlen);
/* store_conv_note_add(): INSERT ... SELECT from the conversation. */
int store_conv_note_add_pg(struct store *st, const struct conv_note *n,
    store_conv_done_fn *fn, void *arg, char *err, size_t errlen);
/*
 * A staff reply: m (an SMS with conversation_id, member_id and staff_id
 * set; idempotency_key may be set) queued with its history row, and the
 * conversation marked replied (CONV_OP_REPLIED), in one statement that
 * does both only when the key is new (INSERT ... ON CONFLICT DO
 * NOTHING). d->id is the message; with a key used before, d->dup and
 * the first message's id, read once the group committed.
 */
int store_conv_reply_pg(struct store *st, const struct queue_new *m,
    int64_t now, store_conv_done_fn *fn, void *arg, char *err, size_t errlen);

/* ---- Saved replies ----------------------------------------------------- */

/* store_saved_replies_json(): {"saved_replies": [...]}, by name. */
int store_saved_replies_json_pg(struct store *st, store_conv_json_fn *fn,
    void *arg, char *err, size_t errlen);
/* store_saved_reply_json(): one {"id", "name", "body"}. */
int store_saved_reply_json_pg(struct store *st, int64_t id,
    store_conv_json_fn *fn, void *arg, char *err, size_t errlen);

/* A saved reply's write. */
enum saved_op {
	SAVED_CREATE = 0, /* r->name and r->body */
	SAVED_UPDATE,	  /* the fields of r that are not NULL */
	SAVED_DELETE,
};

/*
 * store_saved_reply_create(), _update() and _delete() in one statement
 * of the group, behind a transaction-level advisory lock that every
 * saved reply's write takes, so that two nodes naming two replies alike
 * at once answer one of them 409 instead of failing a group on the
 * unique name. fn gets d->found (the reply exists; a create: made), d->id
 * (a create: the new id) and d->dup (the name is taken by another
 * reply: nothing changed).
 */
int store_saved_reply_write_pg(struct store *st, enum saved_op op, int64_t id,
    const struct saved_reply *r, store_conv_done_fn *fn, void *arg, char *err,
    size_t errlen);

/*
 * What a saved reply is rendered with for a member: the saved reply's
 * template (NULL: no such saved reply) and the member's fields, as
 * store_member_json() has them. Borrowed for the callback.
 */
struct conv_saved_for {
	const char *body; /* NULL: no such saved reply */
	const char *phone, *email, *first_name, *last_name, *zip;
	const char *attributes; /* JSON object text */
};
/* fn gets rc 1 (s filled), 0 (no such member) or -1 with error. */
typedef void store_conv_saved_fn(void *arg, int rc,
    const struct conv_saved_for *s, const char *error);
int store_conv_saved_for_pg(struct store *st, int64_t saved, int64_t member,
    store_conv_saved_fn *fn, void *arg, char *err, size_t errlen);

/*
 * store_conv_fts_query() for PostgreSQL: what a person typed as a
 * to_tsquery() text: each bare word a quoted prefix ('word':*), a
 * "double quoted" run the phrase of its words ('a' <-> 'b'), all of
 * them ANDed; quotes and backslashes inside doubled, so no tsquery
 * syntax comes from the user. Text without a word gives "" (the caller
 * matches nothing). -1 when text is over CONV_SEARCH_MAX bytes or the
 * result does not fit in outlen. Pure.
 */
int store_conv_tsquery(const char *text, char *out, size_t outlen);

#endif
