/*
 * store_outbox.h - the messages to and from one address, for the phone
 * simulator (GET /api/v1/messages?to=..., doc/web.md).
 *
 * Contract:
 *  - Read only; loop thread only, like every store call.
 *  - On PostgreSQL (store_outbox_read()), ids are given when a row is
 *    inserted but seen when its transaction commits: a message whose
 *    transaction commits after one with a higher id (another connection
 *    or node) may be passed over by an idle poll's cursor (the highest
 *    id). The simulator is a tool for trying a deployment out.
 *  - Walks the messages after a cursor in id order: each poll reads only
 *    what is new since the last one, whatever the table's size.
 */
#ifndef OD_STORE_OUTBOX_H
#define OD_STORE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;

enum outbox_direction {
	OUTBOX_OUT = 0, /* outbound messages to addr */
	OUTBOX_IN,	/* inbound messages from addr */
	OUTBOX_BOTH,
};

struct outbox_query {
	const char *addr; /* E.164 number or email address, exact */
	enum outbox_direction direction;
	int64_t after;	/* cursor: message ids greater than this */
	unsigned limit; /* 1..1000 */
};

/*
 * {"messages": [{"id", "direction", "channel", "sender", "to", "from",
 * "body", "status", "created_at", "updated_at"}], "next": ID} oldest
 * first. "next" is the cursor of the following call: the last id
 * returned when the page is full, else the highest message id that
 * exists now (so an idle poll does not read the same rows again); null
 * when there are no messages at all. NULL with err set on error.
 */
json_t *store_outbox_json(struct store *st, const struct outbox_query *q,
    char *err, size_t errlen);

/*
 * The same answer on either store, to fn: on SQLite at once (from
 * store_outbox_json(), before the call returns), on PostgreSQL a round
 * trip later (two statements outside the group: the page, then the
 * highest id), never blocking the loop. fn gets the object (a new
 * reference) or NULL and the error. -1 (err set): nothing started and
 * fn is not called.
 */
typedef void store_outbox_fn(void *arg, json_t *o, const char *error);
int store_outbox_read(struct store *st, const struct outbox_query *q,
    store_outbox_fn *fn, void *arg, char *err, size_t errlen);

#endif
