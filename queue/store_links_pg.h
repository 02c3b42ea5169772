/*
 * store_links_pg.h - what a one-click unsubscribe (/u/{token},
 * daemon/email_links.c) reads and writes, on either backend (issue 13,
 * doc/postgresql.md): the recipient of the message the link was made
 * for, and the member's opt-out of a channel with its consent event.
 *
 * On SQLite each one is today's synchronous functions (store_members.h)
 * with the answer handed on; on PostgreSQL a read sent outside the group
 * or one statement in the group transaction, answered by the connection.
 *
 * Contract:
 *  - store_message_recipient_async(): fn runs exactly once with rc 0 (r
 *    holds the answer; r->found false when there is no such message) or
 *    -1 (error: the text). On SQLite before the call returns; on
 *    PostgreSQL from the loop. -1 with err when the read could not be
 *    sent (fn is not called).
 *  - store_member_optout_durable(): store_member_optout() made durable:
 *    the member found or created by address (an email lower-cased by the
 *    caller), its opt-out of cc->ch written if it has none, and then
 *    only then the consent event (cc->source, cc->message_id,
 *    cc->detail). Idempotent: a second call, on any node, changes
 *    nothing and says so (d->changed false). Returns 0 and later calls
 *    'done' exactly once, from the loop, after the group that holds the
 *    write committed (d->ok) or failed (!d->ok; d->error may say why);
 *    -1 with err when nothing was started (bad input, the store cannot
 *    take writes): then 'done' is never called.
 *  - Loop thread only. Strings given are copied or used before the call
 *    returns; what a callback gets is borrowed for the call.
 */
#ifndef OD_STORE_LINKS_PG_H
#define OD_STORE_LINKS_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_members.h"

struct store;

typedef void store_recipient_fn(void *arg, int rc,
    const struct msg_recipient *r, const char *error);
int store_message_recipient_async(struct store *st, int64_t id,
    store_recipient_fn *fn, void *arg, char *err, size_t errlen);

/* What an opt-out reports once its group is settled. */
struct store_optout_done {
	bool ok;	   /* committed */
	const char *error; /* !ok: why, when known; else NULL */
	int64_t member;	   /* the member (SQLite: 0 when it was created) */
	bool changed;	   /* opted out now, not before */
};
typedef void store_optout_fn(void *arg, const struct store_optout_done *d);
int store_member_optout_durable(struct store *st, const char *address,
    const struct consent_change *cc, store_optout_fn *done, void *arg,
    char *err, size_t errlen);

#endif
