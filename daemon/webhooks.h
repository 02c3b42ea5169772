/*
 * webhooks.h - provider callbacks in: POST /webhooks/{sender}/inbound and
 * /webhooks/{sender}/status (GET too, for Kannel's get-url).
 *
 * Contract:
 *  - Each request goes verify -> parse -> store -> reply, through the
 *    sender's adapter (adapter.h): a bad signature is 403 and stores
 *    nothing; an unknown sender 404; a malformed body 400; a body over
 *    [http] max_body 413 (evhttp).
 *  - An inbound message is committed before the 200 goes back
 *    (doc/queue.md); a provider's retry of the same message stores nothing new.
 *  - Status updates only move a message forward (a late "sent" never
 *    overwrites "delivered"); an unknown provider id is logged and
 *    answered 200, so providers do not retry forever.
 *  - Dependencies are borrowed and outlive the module. Loop thread only.
 */
#ifndef OD_WEBHOOKS_H
#define OD_WEBHOOKS_H

struct config;
struct dispatch;
struct http_server;
struct inbound;
struct metrics;
struct store;
struct webhooks;

struct webhooks_deps {
	struct store *st;
	struct dispatch *dispatch;
	struct inbound *inbound; /* routes what arrives (keywords, STOP) */
	struct metrics *metrics;
	const struct config *cfg;
};

/* Registers the webhook routes on srv; free with webhooks_free(). */
struct webhooks *webhooks_new(struct http_server *srv,
    const struct webhooks_deps *deps);
/* Frees w; NULL is a no-op. */
void webhooks_free(struct webhooks *w);

#endif
