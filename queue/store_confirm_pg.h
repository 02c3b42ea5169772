/*
 * store_confirm_pg.h - what an email double opt-in (/c/{token},
 * daemon/email_links.c) reads and writes, on either backend (issue 13,
 * doc/postgresql.md): a list's name (the page and the confirmation
 * email), and the click that confirms a pending email subscription.
 *
 * On SQLite each one is today's synchronous functions (store_members.h,
 * queue.h) with the answer handed on; on PostgreSQL a read sent outside
 * the group or one statement in the group transaction, answered by the
 * connection.
 *
 * Contract:
 *  - store_list_name_async(): fn runs exactly once with rc 0 (name NULL
 *    when there is no such list) or -1 (error: the text). On SQLite
 *    before the call returns; on PostgreSQL from the loop. -1 with err
 *    when the read could not be sent (fn is not called).
 *  - store_confirm_durable(): the pending email subscription of
 *    (member, list) made active with its "confirm" consent event (source
 *    "web", detail "confirmation link"), the member's email opt-out
 *    lifted with its "opt_in" event (no list) when there was one, and
 *    the list's welcome email queued when it has one and the member an
 *    address: all only when the subscription was pending. Idempotent: a
 *    second click, on any node, or two at once, write nothing more
 *    (d->activated false). d->result says what the subscription was.
 *    Returns 0 and later calls 'done' exactly once, from the loop, after
 *    the group that holds the write committed (d->ok) or failed (!d->ok;
 *    d->error may say why); -1 with err when nothing was started: then
 *    'done' is never called.
 *  - store_confirm_subscribe_durable(): store_subscribe() of an email
 *    subscription to a double opt-in list, pending (source "api", its
 *    "opt_in" consent event with the list and c->source as the detail),
 *    and, only when that made it pending (it was none or "left"), its
 *    confirmation email c->mail queued, in one write: a subscription
 *    already pending or active is left as it is and gets no second
 *    email (d->change SUB_CHANGE_ALREADY). Returns 0 and calls 'done' as
 *    store_confirm_durable() does; -1 with err when nothing was started.
 *  - Loop thread only. Strings given are copied or used before the call
 *    returns; what a callback gets is borrowed for the call.
 */
#ifndef OD_STORE_CONFIRM_PG_H
#define OD_STORE_CONFIRM_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "store_members.h"

struct store;

typedef void store_list_name_fn(void *arg, int rc, const char *name,
    const char *error);
int store_list_name_async(struct store *st, int64_t list,
    store_list_name_fn *fn, void *arg, char *err, size_t errlen);

/* A confirmation click: the subscription of the token, the time. */
struct store_confirm {
	int64_t member;
	int64_t list;
	int64_t now;
	int priority; /* the welcome email's */
};

/* What the subscription was when the click came. */
enum store_confirm_result {
	STORE_CONFIRM_OK = 0,	   /* pending (now active) or active */
	STORE_CONFIRM_LEFT = 1,	   /* ended after the link was sent */
	STORE_CONFIRM_UNKNOWN = 2, /* no such subscription */
};

/* What a confirmation reports once its group is settled. */
struct store_confirm_done {
	bool ok;	   /* committed */
	const char *error; /* !ok: why, when known; else NULL */
	enum store_confirm_result result;
	bool activated;	    /* pending -> active by this click */
	bool opted_back_in; /* an email opt-out was lifted */
	int64_t welcome;    /* the welcome email queued; 0 none */
};
typedef void store_confirm_fn(void *arg, const struct store_confirm_done *d);
int store_confirm_durable(struct store *st, const struct store_confirm *c,
    store_confirm_fn *done, void *arg, char *err, size_t errlen);

/* An email subscription to a double opt-in list, with its email. */
struct store_confirm_sub {
	int64_t member;
	int64_t list;
	const char *source; /* consent_source: the opt_in event's detail */
	int64_t now;
	/* the confirmation email (channel email, to, subject, body, html,
	 * priority, optout_exempt are used); NULL: none can be made */
	const struct queue_new *mail;
};

/* What it reports once its group is settled. */
struct store_confirm_sub_done {
	bool ok;		/* committed */
	const char *error;	/* !ok: why, when known; else NULL */
	enum sub_change change; /* NEW, REJOINED: pending now; ALREADY */
	enum sub_status status; /* the subscription's, after */
	int64_t msg_id;		/* the confirmation email; 0 none */
};
typedef void store_confirm_sub_fn(void *arg,
    const struct store_confirm_sub_done *d);
int store_confirm_subscribe_durable(struct store *st,
    const struct store_confirm_sub *c, store_confirm_sub_fn *done, void *arg,
    char *err, size_t errlen);

#endif
