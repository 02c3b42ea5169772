/*
 * email_links.h - the signed links of email: one-click unsubscribe
 * (RFC 8058, GET/POST /u/{token}) and double opt-in confirmation
 * (GET/POST /c/{token}).
 *
 * Contract:
 *  - Tokens carry what they act on (the message, or the member and list)
 *    and an HMAC-SHA256 under a server secret ([email] secret_file,
 *    created with 32 random bytes, mode 0600, on first start); a token
 *    that does not verify is answered 403 and changes nothing. Ids alone
 *    cannot be turned into a token, so tokens cannot be enumerated.
 *  - GET never changes state (mail scanners follow links); POST does.
 *  - Loop thread only. Dependencies are borrowed.
 */
#ifndef OD_EMAIL_LINKS_H
#define OD_EMAIL_LINKS_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct dispatch;
struct email_links;
struct http_server;
struct metrics;
struct store;

struct email_links_deps {
	struct store *st;
	struct dispatch *dispatch;
	struct metrics *metrics;
	const struct config *cfg;
};

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

/*
 * Queues the confirmation email of a pending email subscription of
 * member to list, whose link activates it. 0 / -1.
 */
int email_links_send_confirmation(struct email_links *el, int64_t member,
    int64_t list, const char *email, int64_t now, char *err, size_t errlen);

#endif
