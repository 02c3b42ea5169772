/*
 * inbound.h - what a received text means (DESIGN §7): opt-out and
 * opt-in words, HELP, list keywords with their welcome, double opt-in and
 * follow-up questions, and otherwise a conversation message.
 *
 * Contract:
 *  - inbound_route() runs right after the webhook stored the message, in
 *    the same group transaction: the opt-out a STOP records is durable
 *    exactly when the provider's webhook is answered, and from that
 *    commit on no SMS leaves for that number (dispatch checks at send
 *    time).
 *  - Auto-replies are queued at MSG_PRIO_REPLY through the sender the
 *    message came in on, and kick the dispatcher.
 *  - Loop thread only. Errors: 0 / -1 with text in err (a store failure:
 *    the webhook answers 503 and the provider retries).
 */
#ifndef OD_INBOUND_H
#define OD_INBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "message.h"

struct dispatch;
struct store;
struct inbound;

struct inbound_deps {
	struct store *st;
	struct dispatch *dispatch;
	const struct config *cfg;
};

/*
 * Creates the router and makes the config's [list NAME] sections the
 * stored lists (store_list_sync()). NULL with the reason in err.
 */
struct inbound *inbound_new(const struct inbound_deps *deps, char *err,
    size_t errlen);
void inbound_free(struct inbound *ib);

/*
 * Routes inbound message msg_id (already stored) that came in through
 * [sender 'sender']. 0 / -1.
 */
int inbound_route(struct inbound *ib, int64_t msg_id, const char *sender,
    const struct in_msg *m, int64_t now, char *err, size_t errlen);

/*
 * For --check-config: warns (one call of 'warn' each) about texts that
 * lack what carriers require: a welcome without the program name, a
 * frequency disclosure, "Msg&data rates may apply", HELP or STOP
 * instructions; a HELP reply without a contact.
 */
void inbound_check_config(const struct config *cfg, config_warn_fn *warn,
    void *arg);

#endif
