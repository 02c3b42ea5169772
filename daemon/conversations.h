/*
 * conversations.h - the staff inbox API (doc/conversations.md):
 * /api/v1/conversations (list, thread, reply, assign, close, reopen,
 * read, notes) and /api/v1/saved-replies.
 *
 * Contract:
 *  - Conversations are made by inbound.c (store_inbound_link()); this
 *    module lets staff read and act on them. Every route needs
 *    api_authorized(); req->auth.staff_id is who acts ("assigned=me",
 *    the author of a reply or a note).
 *  - A reply is an SMS queued at MSG_PRIO_REPLY through the sender the
 *    member last texted (else a sender of a list they are on, else the
 *    default sender), validated as POST /api/v1/messages validates, with
 *    the conversation and the staff member recorded on the message. It
 *    is refused 409 "opted_out" when the member opted out of SMS (the
 *    dispatcher's send-time check stays the last guard). 202 is sent
 *    only after the commit.
 *  - Writes answer after their group committed; each publishes a
 *    "conversation" event, and every state change of a conversation
 *    message a "message" event (through queue_observe()), written in the
 *    same group (events.h).
 *  - On a PostgreSQL store the same routes and answers are served by
 *    conversations_pg.c (store_conversations_pg.h), without the events
 *    and the message observer.
 *  - Dependencies are borrowed and must outlive the module. Loop thread
 *    only.
 */
#ifndef OD_CONVERSATIONS_H
#define OD_CONVERSATIONS_H

struct api;
struct config;
struct dispatch;
struct events;
struct http_server;
struct store;

struct conversations_deps {
	struct store *st;
	struct dispatch *dispatch;
	struct api *api;
	struct events *events; /* may be NULL */
	const struct config *cfg;
};

struct conversations;

/* Registers the routes on srv and the message observer on the store. */
struct conversations *conversations_new(struct http_server *srv,
    const struct conversations_deps *deps);
/* Stops observing the store and frees; NULL is a no-op. */
void conversations_free(struct conversations *cv);

#endif
