/*
 * store_members.h - members and their consent, as stored (DESIGN §3).
 * Issue 3 needs the carrier opt-out (Twilio 21610, Telnyx 40300); the
 * members module (issue 4) builds on the same functions.
 *
 * Contract:
 *  - Loop thread only; writes join the store's group transaction.
 *  - Every opt-in or opt-out appends a consent_events row: the log is the
 *    proof of consent and is never rewritten.
 *  - Errors: 0 / -1 with text in err.
 */
#ifndef OD_STORE_MEMBERS_H
#define OD_STORE_MEMBERS_H

#include <stdint.h>

#include "message.h"

struct store;

/*
 * Records that 'address' (E.164 number or email) opted out of channel ch,
 * from 'source' ("provider", "keyword", "api", "import", "web"), carried
 * by message 'message_id' (0 = none). Creates the member if unknown.
 * Idempotent: an existing opt-out is kept as it is and no event is added.
 */
int store_member_optout(struct store *st, enum channel ch, const char *address,
    const char *source, int64_t message_id, int64_t now, char *err,
    size_t errlen);

#endif
