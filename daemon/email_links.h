/*
 * email_links.h - the signed links of email: one-click unsubscribe
 * (RFC 8058, GET/POST /u/{token}) and double opt-in confirmation
 * (GET/POST /c/{token}).
 *
 * Contract:
 *  - Tokens carry what they act on (the message, or the member, list and
 *    expiry) and an HMAC-SHA256 under a server secret ([email]
 *    secret_file, created with 32 random bytes, mode 0600, on first
 *    start), truncated to 128 bits; base64url without padding. A token
 *    that does not verify (tampered, truncated, of the other kind, under
 *    another secret) is answered 403 and changes nothing; an expired
 *    confirmation 410. Ids alone cannot be turned into a token, so tokens
 *    cannot be enumerated.
 *  - GET never changes state (mail scanners follow links); POST does, and
 *    answers 200 only after its group commit. Repeating a POST is
 *    harmless.
 *  - An unsubscribe opts the message's recipient address out of email
 *    (global, every list), consent source "web", naming the message.
 *  - A confirmation makes the pending email subscription active (a
 *    "confirm" consent event) and, if the member had opted out of email
 *    before, opts them back in (source "web"): the click is fresh,
 *    explicit consent. Then the list's welcome email, if it has one, is
 *    queued.
 *  - Loop thread only. Dependencies are borrowed.
 */
#ifndef OD_EMAIL_LINKS_H
#define OD_EMAIL_LINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_members.h"

struct config;
struct dispatch;
struct email_links;
struct hmac;
struct http_server;
struct metrics;
struct store;

struct email_links_deps {
	struct store *st;
	struct dispatch *dispatch;
	struct metrics *metrics;
	const struct config *cfg;
	/* base of the links: [http] public_url, else the daemon's own
	 * address (main.c); NULL = cfg's public_url, none if unset */
	const char *base_url;
};

/* How long a confirmation link works. */
#define EMAIL_LINKS_CONFIRM_TTL_S (7 * 86400)

/* Loads or creates the secret and registers /u/ and /c/. NULL + err. */
struct email_links *email_links_new(struct http_server *srv,
    const struct email_links_deps *deps, char *err, size_t errlen);
void email_links_free(struct email_links *el);

/*
 * Writes the one-click unsubscribe URL of message msg_id into buf:
 * "<public_url>/u/<token>". Returns 0, or -1 when there is no
 * [http] public_url (no link can be made) or buf is too small.
 */
int email_links_unsubscribe_url(const struct email_links *el, int64_t msg_id,
    char *buf, size_t len);

/* A pending email subscription: the member, the list, the address. */
struct email_links_sub {
	int64_t member;
	int64_t list;
	const char *email;
};

/*
 * Queues the confirmation email of the pending subscription *s, whose
 * link activates it. 0 / -1 with err set; without [http] public_url err
 * is "email double opt-in needs [http] public_url: the confirmation link
 * must point to this server".
 */
int email_links_send_confirmation(struct email_links *el,
    const struct email_links_sub *s, int64_t now, char *err, size_t errlen);

/* What email_links_subscribe_durable() reports once settled. */
struct email_links_subscribe_done {
	bool ok;		/* committed */
	const char *error;	/* !ok: why, when known */
	enum sub_change change; /* NEW, REJOINED: pending now; ALREADY */
	enum sub_status status; /* ok: the subscription's, after */
	int64_t msg_id;		/* the confirmation email; 0 none */
	/* ok, pending now but no email could be made (no address, no base
	 * URL): why, for the caller's members_confirmation_failed line */
	const char *confirm_error;
};
typedef void email_links_subscribe_fn(void *arg,
    const struct email_links_subscribe_done *d);

/*
 * An email subscription of s->member to the double opt-in list s->list
 * from the API, on either store (PostgreSQL too), answered through a
 * callback: pending (its opt_in consent event: source "api", the list,
 * 'source' as the detail) and, only when that made it pending (it was
 * none or left), its confirmation email to s->email queued, in one write
 * (queue/store_confirm_pg.h); a pending or active subscription is left
 * as it is (SUB_CHANGE_ALREADY, no second email). The list's name is
 * read first (outside the group on PostgreSQL), then the write joins the
 * node's group; 'done' runs exactly once, after that group committed
 * (d->ok) or failed, or when the list could not be read (!d->ok,
 * nothing written). On SQLite the read and the write happen before the
 * call returns, in the caller's group (as mb_subscribe() and
 * email_links_send_confirmation() do), and 'done' runs after its commit,
 * or before the call returns when the list could not be read.
 * The dispatcher is kicked after the commit. -1 with err when nothing
 * was started (no member, list or source; 'done' never called).
 */
int email_links_subscribe_durable(struct email_links *el,
    const struct email_links_sub *s, const char *source, int64_t now,
    email_links_subscribe_fn *done, void *arg, char *err, size_t errlen);

/* ---- Tokens (pure; exposed for the unit tests) -------------------------- */

#define EMAIL_TOKEN_MAX 96 /* longest token text, with its NUL */

enum email_token_kind {
	EMAIL_TOKEN_UNSUBSCRIBE = 1, /* msg_id */
	EMAIL_TOKEN_CONFIRM = 2,     /* member, list, expires */
};

struct email_token {
	enum email_token_kind kind;
	int64_t msg_id;	 /* unsubscribe */
	int64_t member;	 /* confirm */
	int64_t list;	 /* confirm */
	int64_t expires; /* confirm: seconds since the epoch */
};

/*
 * Writes the token of t, signed with key (HMAC-SHA256, core/hmac.h), into
 * buf (EMAIL_TOKEN_MAX bytes). Ids must be > 0. 0 / -1.
 */
int email_token_make(struct hmac *key, const struct email_token *t, char *buf,
    size_t len);
/*
 * Verifies 'text' as a token of 'kind' under key and fills *t.
 * Returns 0, -1 when it does not verify (any alteration, another kind or
 * key, non-canonical base64url), or -2 for a valid confirmation token
 * whose expiry is before now_s.
 */
int email_token_verify(struct hmac *key, enum email_token_kind kind,
    const char *text, int64_t now_s, struct email_token *t);

#endif
