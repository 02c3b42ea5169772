/*
 * email_links.c - signed unsubscribe (/u/) and confirmation (/c/) links.
 *
 * A token is base64url (no padding) of
 *     kind (1 byte) | ids as LEB128 varints | HMAC-SHA256[0..16)
 * where the ids are the message id (unsubscribe), or the member, the list
 * and the expiry in seconds (confirm), and the MAC covers a fixed
 * domain-separation label and every byte before it. Decoding is strict:
 * the text must be the canonical encoding of what it decodes to, and the
 * varints must fill the payload exactly, so no two texts verify as the
 * same token and a changed character never slips through. A verification
 * failure says nothing about why (page "This link is not valid").
 *
 * Pages are tiny, self-contained HTML (no scripts, no external requests,
 * a Content-Security-Policy that forbids both) with a form that POSTs to
 * the same URL. The one-click POST from a mail provider carries
 * "List-Unsubscribe=One-Click" and no cookies (RFC 8058); any POST is
 * accepted: the token alone is the authority, and the action is
 * idempotent.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "compat.h"
#include "config.h"
#include "dispatch.h"
#include "email_links.h"
#include "fileutil.h"
#include "hmac.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "queue_pg.h"
#include "store.h"
#include "store_confirm_pg.h"
#include "store_links_pg.h"
#include "store_members.h"
#include "xmalloc.h"

#define EL_KEY_MIN     32   /* bytes of secret we insist on */
#define EL_KEY_MAX     1024 /* bytes of the file we read */
#define EL_MAC_LEN     16   /* truncated HMAC-SHA256: 128 bits */
#define EL_PAYLOAD_MAX 32   /* kind + three 10-byte varints */
#define EL_LABEL       "outreachd email link v1"
#define EL_URL_MAX     1024

struct email_links {
	struct email_links_deps deps;
	unsigned char key[EL_KEY_MAX]; /* as read, until mac has it */
	size_t keylen;
	struct hmac *mac; /* HMAC-SHA256 under the key */
	char *base_url;	  /* public_url without a trailing '/'; NULL = none */
};

/* A confirmation click between its write and its commit. */
struct el_click {
	struct email_links *el;
	struct http_req *req;
	struct email_token t;
};

/* A subscription with its confirmation, between its reads and commit. */
struct el_confirm_mail {
	struct email_links *el;
	struct email_links_sub s; /* s.email: owned */
	char *source;		  /* owned */
	int64_t now;
	email_links_subscribe_fn *done;
	void *arg;
	char why[256]; /* why no email could be made */
};

/* The texts of a confirmation email (owned). */
struct el_mail {
	char *subject;
	char *text;
	struct evbuffer *html;
};

/* An unsubscribe POST between its read, its write and its commit. */
struct el_unsub {
	struct email_links *el;
	struct http_req *req;
	int64_t msg_id;
	int64_t now;
	char addr[MSG_ADDR_MAX]; /* the recipient, lower-cased */
};

static int el_load_key(struct email_links *, const char *, char *, size_t);
static size_t el_varint_put(unsigned char *, uint64_t);
static int el_varint_get(const unsigned char **, const unsigned char *,
    uint64_t *);
static void el_b64url_encode(const unsigned char *, size_t, char *);
static ssize_t el_b64url_decode(const char *, unsigned char *, size_t);
static void el_mac(struct hmac *, const unsigned char *, size_t,
    unsigned char *);
static void el_html_escape(struct evbuffer *, const char *);
static void el_page(struct http_req *, int, const char *, const char *,
    const char *);
static void el_unsubscribe(struct http_req *, void *);
static void el_unsub_fail(struct el_unsub *, const char *);
static void el_unsub_recipient(void *, int, const struct msg_recipient *,
    const char *);
static void el_unsub_done(void *, const struct store_optout_done *);
static void el_confirm(struct http_req *, void *);
static void el_confirm_page(void *, int, const char *, const char *);
static void el_confirm_done(void *, const struct store_confirm_done *);

/* ---- Tokens ----------------------------------------------------------- */

static size_t
el_varint_put(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

/* Reads a minimal LEB128 varint of at most 63 bits; -1 if malformed. */
static int
el_varint_get(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
	const unsigned char *p = *pp;
	unsigned shift = 0;

	*v = 0;
	for (;;) {
		if (p >= end || shift > 56)
			return -1;
		*v |= (uint64_t)(*p & 0x7f) << shift;
		if ((*p & 0x80) == 0)
			break;
		p++;
		shift += 7;
	}
	/* A trailing zero group would make a second encoding of v. */
	if (shift > 0 && *p == 0)
		return -1;
	if (*v > INT64_MAX)
		return -1;
	*pp = p + 1;
	return 0;
}

/* base64url without padding; out holds 4 * ceil(len / 3) + 1 bytes. */
static void
el_b64url_encode(const unsigned char *in, size_t len, char *out)
{
	char *p;
	int n;

	n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	out[n] = '\0';
	for (p = out; *p != '\0'; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=') {
			*p = '\0';
			break;
		}
	}
}

/*
 * Decodes canonical base64url without padding into out (max bytes).
 * Returns the length, or -1 (bad character, bad length, a non-canonical
 * encoding, too long).
 */
static ssize_t
el_b64url_decode(const char *text, unsigned char *out, size_t max)
{
	char std[EMAIL_TOKEN_MAX + 4], again[EMAIL_TOKEN_MAX + 4];
	unsigned char raw[EMAIL_TOKEN_MAX];
	size_t len = strlen(text), i, pad;
	int n;

	if (len == 0 || len >= EMAIL_TOKEN_MAX || len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++) {
		if (text[i] == '-')
			std[i] = '+';
		else if (text[i] == '_')
			std[i] = '/';
		else if (text[i] == '+' || text[i] == '/' || text[i] == '=')
			return -1;
		else
			std[i] = text[i];
	}
	pad = (4 - len % 4) % 4;
	memset(std + len, '=', pad);
	std[len + pad] = '\0';
	if ((n = EVP_DecodeBlock(raw, (unsigned char *)std, (int)(len + pad))) <
	    0)
		return -1;
	n -= (int)pad; /* EVP_DecodeBlock counts the padding as zeros */
	if (n <= 0 || (size_t)n > max || (size_t)n > sizeof(raw))
		return -1;
	el_b64url_encode(raw, (size_t)n, again);
	if (strcmp(again, text) != 0)
		return -1;
	memcpy(out, raw, (size_t)n);
	return n;
}

static void
el_mac(struct hmac *key, const unsigned char *payload, size_t len,
    unsigned char *mac)
{
	unsigned char data[sizeof(EL_LABEL) + EL_PAYLOAD_MAX];
	unsigned char full[HMAC_OUT_MAX];

	memcpy(data, EL_LABEL, sizeof(EL_LABEL)); /* with its NUL */
	memcpy(data + sizeof(EL_LABEL), payload, len);
	if (hmac_sign(key, data, sizeof(EL_LABEL) + len, full) < EL_MAC_LEN)
		fatalx("email_links: HMAC-SHA256 too short");
	memcpy(mac, full, EL_MAC_LEN);
}

int
email_token_make(struct hmac *key, const struct email_token *t, char *buf,
    size_t len)
{
	unsigned char raw[EL_PAYLOAD_MAX + EL_MAC_LEN];
	size_t n = 0;

	if (len < EMAIL_TOKEN_MAX || key == NULL)
		return -1;
	raw[n++] = (unsigned char)t->kind;
	switch (t->kind) {
	case EMAIL_TOKEN_UNSUBSCRIBE:
		if (t->msg_id <= 0)
			return -1;
		n += el_varint_put(raw + n, (uint64_t)t->msg_id);
		break;
	case EMAIL_TOKEN_CONFIRM:
		if (t->member <= 0 || t->list <= 0 || t->expires <= 0)
			return -1;
		n += el_varint_put(raw + n, (uint64_t)t->member);
		n += el_varint_put(raw + n, (uint64_t)t->list);
		n += el_varint_put(raw + n, (uint64_t)t->expires);
		break;
	default:
		return -1;
	}
	el_mac(key, raw, n, raw + n);
	el_b64url_encode(raw, n + EL_MAC_LEN, buf);
	return 0;
}

int
email_token_verify(struct hmac *key, enum email_token_kind kind,
    const char *text, int64_t now_s, struct email_token *t)
{
	unsigned char raw[EL_PAYLOAD_MAX + EL_MAC_LEN], mac[EL_MAC_LEN];
	const unsigned char *p, *end;
	uint64_t a = 0, b = 0, c = 0;
	ssize_t n;

	memset(t, 0, sizeof(*t));
	if (key == NULL ||
	    (n = el_b64url_decode(text, raw, sizeof(raw))) <= EL_MAC_LEN + 1)
		return -1;
	end = raw + n - EL_MAC_LEN;
	el_mac(key, raw, (size_t)(end - raw), mac);
	if (CRYPTO_memcmp(mac, end, EL_MAC_LEN) != 0 || raw[0] != kind)
		return -1;
	p = raw + 1;
	if (el_varint_get(&p, end, &a) == -1)
		return -1;
	if (kind == EMAIL_TOKEN_CONFIRM &&
	    (el_varint_get(&p, end, &b) == -1 ||
		el_varint_get(&p, end, &c) == -1))
		return -1;
	if (p != end || a == 0)
		return -1;
	t->kind = kind;
	if (kind == EMAIL_TOKEN_UNSUBSCRIBE) {
		t->msg_id = (int64_t)a;
		return 0;
	}
	if (b == 0 || c == 0)
		return -1;
	t->member = (int64_t)a;
	t->list = (int64_t)b;
	t->expires = (int64_t)c;
	return t->expires < now_s ? -2 : 0;
}

/* ---- Secret ------------------------------------------------------------ */

/*
 * Reads the secret from 'path', or creates it (32 random bytes, 0600)
 * when it does not exist: durably (fileutil_publish), since links signed
 * with it go out at once and must still verify after a power loss, and
 * exclusively, so a file that appeared meanwhile wins. Not on the
 * PostgreSQL store: a link made by one node is followed on any node, so
 * every node needs the same key, and a key made up by one of them would
 * break the links of the others: the file must be there (copied from
 * the first node) or the daemon refuses to start. A file that group
 * or others may read or write is refused: anyone who reads it can forge
 * unsubscribes.
 */
static int
el_load_key(struct email_links *el, const char *path, char *err, size_t errlen)
{
	char why[512];
	struct stat sb;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 &&
	    errno == ENOENT) {
		if (el->deps.st != NULL &&
		    store_backend(el->deps.st) == STORE_POSTGRESQL) {
			snprintf(err, errlen,
			    "email secret %s: missing; on the PostgreSQL store "
			    "every node must sign links with the same key: copy "
			    "the file from the first node (mode 0600), or make "
			    "one with '(umask 077; openssl rand -hex 32 > %s)' "
			    "and copy it to every node ([email] secret_file)",
			    path, path);
			return -1;
		}
		if (RAND_bytes(el->key, EL_KEY_MIN) != 1) {
			snprintf(err, errlen, "email secret: no randomness");
			return -1;
		}
		if (fileutil_publish(path, el->key, EL_KEY_MIN,
			&(struct fileutil_create){.mode = 0600, .excl = true},
			why, sizeof(why)) == 0) {
			el->keylen = EL_KEY_MIN;
			log_info("email_secret_created file=%s", path);
			return 0;
		}
		if (errno != EEXIST) {
			snprintf(err, errlen,
			    "email secret %s: cannot create it: %s ([email] "
			    "secret_file)",
			    path, why);
			return -1;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd == -1) {
		snprintf(err, errlen,
		    "email secret %s: %s ([email] secret_file)", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen,
		    "email secret %s: must be a regular file that only its "
		    "owner can read (chmod 600 %s)",
		    path, path);
		close(fd);
		return -1;
	}
	n = read(fd, el->key, sizeof(el->key));
	close(fd);
	if (n < EL_KEY_MIN) {
		snprintf(err, errlen,
		    "email secret %s: holds %zd bytes, needs at least %d "
		    "random bytes (delete it to get a new one; links already "
		    "sent stop working)",
		    path, n < 0 ? (ssize_t)0 : n, EL_KEY_MIN);
		return -1;
	}
	el->keylen = (size_t)n;
	return 0;
}

/* ---- Module ------------------------------------------------------------ */

struct email_links *
email_links_new(struct http_server *srv, const struct email_links_deps *deps,
    char *err, size_t errlen)
{
	struct email_links *el = xcalloc(1, sizeof(*el));
	const char *url =
	    deps->base_url != NULL ? deps->base_url : deps->cfg->public_url;
	size_t n;

	el->deps = *deps;
	if (el_load_key(el, deps->cfg->email_secret_file, err, errlen) == -1) {
		OPENSSL_cleanse(el->key, sizeof(el->key));
		free(el);
		return NULL;
	}
	/* the context keeps the key: this copy is no longer needed */
	el->mac = hmac_new("SHA256", el->key, el->keylen);
	OPENSSL_cleanse(el->key, sizeof(el->key));
	if (el->mac == NULL) {
		snprintf(err, errlen,
		    "email links: OpenSSL has no HMAC-SHA256");
		free(el);
		return NULL;
	}
	if (url != NULL && url[0] != '\0') {
		n = strlen(url);
		while (n > 0 && url[n - 1] == '/')
			n--;
		el->base_url = xstrndup(url, n);
	} else if (strcmp(deps->cfg->email_adapter, "smtp") == 0)
		log_warnx("email_links_disabled reason=\"emails go out without "
			  "List-Unsubscribe and email double opt-in is off: "
			  "set [http] public_url\"");
	else /* the local file adapter sends nothing: no need to warn */
		log_info("email_links_disabled reason=\"emails go out without "
			 "List-Unsubscribe and email double opt-in is off: "
			 "set [http] public_url\"");
	if (srv != NULL) {
		http_route(srv, HTTP_GET | HTTP_HEAD | HTTP_POST, "/u/{token}",
		    el_unsubscribe, el);
		http_route(srv, HTTP_GET | HTTP_HEAD | HTTP_POST, "/c/{token}",
		    el_confirm, el);
	}
	return el;
}

void
email_links_free(struct email_links *el)
{
	if (el == NULL)
		return;
	hmac_free(el->mac);
	free(el->base_url);
	free(el);
}

int
email_links_unsubscribe_url(const struct email_links *el, int64_t msg_id,
    char *buf, size_t len)
{
	struct email_token t = {.kind = EMAIL_TOKEN_UNSUBSCRIBE,
	    .msg_id = msg_id};
	char tok[EMAIL_TOKEN_MAX];
	int n;

	if (el == NULL || el->base_url == NULL ||
	    email_token_make(el->mac, &t, tok, sizeof(tok)) == -1)
		return -1;
	n = snprintf(buf, len, "%s/u/%s", el->base_url, tok);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* ---- Pages ------------------------------------------------------------- */

static void
el_html_escape(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			evbuffer_add(out, "&amp;", 5);
			break;
		case '<':
			evbuffer_add(out, "&lt;", 4);
			break;
		case '>':
			evbuffer_add(out, "&gt;", 4);
			break;
		case '"':
			evbuffer_add(out, "&quot;", 6);
			break;
		case '\'':
			evbuffer_add(out, "&#39;", 5);
			break;
		default:
			evbuffer_add(out, s, 1);
		}
	}
}

/*
 * Replies with a small HTML page: a title, a paragraph (already HTML) and,
 * when 'button' is set, a form POSTing to this same URL.
 */
static void
el_page(struct http_req *req, int code, const char *title,
    const char *para_html, const char *button)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;

	if (b == NULL)
		fatalx("el_page: evbuffer_new failed");
	evbuffer_add_printf(b,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width\">"
	    "<meta name=\"robots\" content=\"noindex\">"
	    "<title>%s</title><style>body{font-family:sans-serif;"
	    "max-width:32em;margin:3em auto;padding:0 1em;line-height:1.5}"
	    "button{font-size:1.1em;padding:.5em 1.2em}</style></head>"
	    "<body><h1>%s</h1><p>%s</p>",
	    title, title, para_html);
	if (button != NULL)
		evbuffer_add_printf(b,
		    "<form method=\"post\"><button type=\"submit\">%s"
		    "</button></form>",
		    button);
	evbuffer_add_printf(b, "</body></html>\n");
	http_add_header(req, "Cache-Control", "no-store");
	http_add_header(req, "Referrer-Policy", "no-referrer");
	http_add_header(req, "X-Robots-Tag", "noindex");
	http_add_header(req, "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'; "
	    "form-action 'self'; frame-ancestors 'none'");
	len = evbuffer_get_length(b);
	http_reply(req, code, "text/html; charset=utf-8",
	    (const char *)evbuffer_pullup(b, (ev_ssize_t)len), len);
	evbuffer_free(b);
}

static void
el_page_invalid(struct http_req *req)
{
	el_page(req, 403, "This link is not valid",
	    "The link may have been cut or changed on its way to you. Please "
	    "use the complete link from the email.",
	    NULL);
}

static void
el_page_unavailable(struct http_req *req)
{
	el_page(req, 503, "Please try again",
	    "We could not complete this right now. Please try again in a few "
	    "minutes.",
	    NULL);
}

/* ---- /u/{token} --------------------------------------------------------- */

/*
 * GET shows a confirmation page; POST opts the message's recipient out of
 * email (consent source "web", carried by the message): the recipient
 * read, then the opt-out written, each answered through a callback
 * (queue/store_links_pg.h: at once on SQLite, a round trip later on
 * PostgreSQL, so a link made by any node works on any node). The page
 * answers once the opt-out committed.
 */
static void
el_unsubscribe(struct http_req *req, void *arg)
{
	struct email_links *el = arg;
	struct email_token t;
	struct el_unsub *u;
	char err[256];
	int64_t now = msg_now_ms();

	if (email_token_verify(el->mac, EMAIL_TOKEN_UNSUBSCRIBE, req->params[0],
		now / 1000, &t) != 0) {
		log_info("email_link_rejected kind=unsubscribe method=%s "
			 "peer=%s",
		    http_method_to_text(req->method), http_peer(req));
		el_page_invalid(req);
		return;
	}
	if (req->method != HTTP_POST) {
		el_page(req, 200, "Unsubscribe",
		    "Do you want to stop getting emails from us at this "
		    "address?",
		    "Unsubscribe");
		return;
	}
	u = xcalloc(1, sizeof(*u));
	u->el = el;
	u->req = req;
	u->msg_id = t.msg_id;
	u->now = now;
	if (store_message_recipient_async(el->deps.st, t.msg_id,
		el_unsub_recipient, u, err, sizeof(err)) == -1)
		el_unsub_fail(u, err);
}

/* Logs why the unsubscribe failed, answers 503 and frees u. */
static void
el_unsub_fail(struct el_unsub *u, const char *why)
{
	log_warnx("email_unsubscribe_failed msg=%lld error=\"%s\"",
	    (long long)u->msg_id, why != NULL ? why : "commit failed");
	el_page_unavailable(u->req);
	free(u);
}

static void
el_unsub_recipient(void *arg, int rc, const struct msg_recipient *r,
    const char *error)
{
	struct el_unsub *u = arg;
	char err[256], *p;

	if (rc == -1) {
		el_unsub_fail(u, error);
		return;
	}
	if (!r->found || r->ch != CHANNEL_EMAIL || r->addr[0] == '\0') {
		/* A signed token whose message is gone (the database was
		 * replaced): nothing to act on. */
		log_warnx("email_unsubscribe_unknown msg=%lld",
		    (long long)u->msg_id);
		el_page(u->req, 404, "This link has expired",
		    "We no longer know this email. Please reply to it and ask to "
		    "be removed, and we will do it by hand.",
		    NULL);
		free(u);
		return;
	}
	/* Members hold emails lower-cased (store_members.h). */
	snprintf(u->addr, sizeof(u->addr), "%s", r->addr);
	for (p = u->addr; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (store_member_optout_durable(u->el->deps.st, u->addr,
		&(struct consent_change){.ch = CHANNEL_EMAIL,
		    .source = CONSENT_WEB,
		    .message_id = u->msg_id,
		    .now = u->now},
		el_unsub_done, u, err, sizeof(err)) == -1)
		el_unsub_fail(u, err);
}

/* The opt-out committed (or failed): the page answers now. */
static void
el_unsub_done(void *arg, const struct store_optout_done *d)
{
	struct el_unsub *u = arg;
	char masked[MSG_ADDR_MAX];

	if (!d->ok) {
		el_unsub_fail(u, d->error);
		return;
	}
	log_mask_email(u->addr, masked, sizeof(masked));
	if (d->changed) {
		log_info("member_opted_out channel=email to=%s source=web "
			 "msg=%lld",
		    masked, (long long)u->msg_id);
		metrics_count_email_link(u->el->deps.metrics,
		    METRICS_LINK_UNSUBSCRIBE);
	} else
		log_debug("email_unsubscribe_repeat to=%s msg=%lld", masked,
		    (long long)u->msg_id);
	el_page(u->req, 200, "You're unsubscribed",
	    "You will not get any more emails from us at this address. "
	    "If this was a mistake, you can sign up again at any time.",
	    NULL);
	free(u);
}

/* ---- /c/{token} --------------------------------------------------------- */

/*
 * GET shows a page naming the list (read through a callback); POST
 * confirms: the pending email subscription made active, the member's
 * email opt-out lifted (the click is fresh consent), the list's welcome
 * email queued the first time, in one write on either store
 * (queue/store_confirm_pg.h: at once on SQLite, a round trip later on
 * PostgreSQL, so a link made by any node works on any node). The page
 * answers once the write committed.
 */
static void
el_confirm(struct http_req *req, void *arg)
{
	struct email_links *el = arg;
	struct email_token t;
	struct el_click *ck;
	char err[256];
	int64_t now = msg_now_ms();
	int rc;

	rc = email_token_verify(el->mac, EMAIL_TOKEN_CONFIRM, req->params[0],
	    now / 1000, &t);
	if (rc == -2) {
		el_page(req, 410, "This link has expired",
		    "Confirmation links work for 7 days. Please sign up again "
		    "to get a new one.",
		    NULL);
		return;
	}
	if (rc != 0) {
		log_info("email_link_rejected kind=confirm method=%s peer=%s",
		    http_method_to_text(req->method), http_peer(req));
		el_page_invalid(req);
		return;
	}
	ck = xcalloc(1, sizeof(*ck));
	ck->el = el;
	ck->req = req;
	ck->t = t;
	if (req->method != HTTP_POST)
		rc = store_list_name_async(el->deps.st, t.list, el_confirm_page,
		    ck, err, sizeof(err));
	else
		rc = store_confirm_durable(el->deps.st,
		    &(struct store_confirm){.member = t.member,
			.list = t.list,
			.now = now,
			.priority = MSG_PRIO_REPLY},
		    el_confirm_done, ck, err, sizeof(err));
	if (rc == -1) {
		log_warnx("email_confirm_failed member=%lld list=%lld "
			  "error=\"%s\"",
		    (long long)t.member, (long long)t.list, err);
		el_page_unavailable(req);
		free(ck);
	}
}

/* The list's name read: the page with the confirmation button. */
static void
el_confirm_page(void *arg, int rc, const char *name, const char *error)
{
	struct el_click *ck = arg;
	struct evbuffer *b;

	if (rc == -1) {
		log_warnx("email_confirm_failed error=\"%s\"", error);
		el_page_unavailable(ck->req);
		free(ck);
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		fatalx("el_confirm: evbuffer_new failed");
	evbuffer_add_printf(b,
	    "Please confirm that you want to get "
	    "emails from ");
	el_html_escape(b, name != NULL ? name : "this list");
	evbuffer_add_printf(b, ".");
	evbuffer_add(b, "", 1);
	el_page(ck->req, 200, "Confirm your subscription",
	    (const char *)evbuffer_pullup(b, -1), "Confirm");
	evbuffer_free(b);
	free(ck);
}

/* The click's write committed (or failed): the page answers now. */
static void
el_confirm_done(void *arg, const struct store_confirm_done *d)
{
	struct el_click *ck = arg;

	if (!d->ok) {
		log_warnx("email_confirm_failed member=%lld list=%lld "
			  "error=\"%s\"",
		    (long long)ck->t.member, (long long)ck->t.list,
		    d->error != NULL ? d->error : "commit failed");
		el_page_unavailable(ck->req);
	} else if (d->result != STORE_CONFIRM_OK)
		el_page(ck->req, 410, "This link is no longer valid",
		    d->result == STORE_CONFIRM_LEFT
			? "This subscription was ended after the link was "
			  "sent. Please sign up again."
			: "We no longer know this sign-up. Please sign up "
			  "again.",
		    NULL);
	else {
		if (d->activated) {
			log_info("email_subscription_confirmed member=%lld "
				 "list=%lld opted_back_in=%d",
			    (long long)ck->t.member, (long long)ck->t.list,
			    d->opted_back_in);
			metrics_count_email_link(ck->el->deps.metrics,
			    METRICS_LINK_CONFIRM);
		}
		if (d->welcome > 0)
			dispatch_kick(ck->el->deps.dispatch);
		el_page(ck->req, 200, "You're subscribed",
		    "Thank you for confirming. You can leave at any time with "
		    "the unsubscribe link at the end of every email.",
		    NULL);
	}
	free(ck);
}

/* ---- Confirmation email ------------------------------------------------- */

static void
el_mail_clear(struct el_mail *mail)
{
	if (mail->html != NULL)
		evbuffer_free(mail->html);
	free(mail->subject);
	free(mail->text);
	memset(mail, 0, sizeof(*mail));
}

/*
 * The confirmation email of s for the list named 'name' into q, its
 * texts in mail (cleared by the caller).
 */
static void
el_confirmation_fill(const struct email_links_sub *s, const char *name,
    const char *url, struct el_mail *mail, struct queue_new *q)
{
	struct evbuffer *html;

	mail->subject = xasprintf("Please confirm: %s", name);
	mail->text = xasprintf(
	    "Hello,\n\nWe received a request to add this address to the list "
	    "\"%s\".\nTo confirm, open this link:\n\n%s\n\nIf you did not ask "
	    "for this, ignore this email: without your confirmation we will "
	    "not send you anything. The link works for 7 days.\n",
	    name, url);
	if ((html = mail->html = evbuffer_new()) == NULL)
		fatalx("email_links_send_confirmation: evbuffer_new failed");
	evbuffer_add_printf(html,
	    "<!DOCTYPE html>\n<html><body><p>Hello,</p>"
	    "<p>We received a request to add this address "
	    "to the list &ldquo;");
	el_html_escape(html, name);
	evbuffer_add_printf(html, "&rdquo;.</p>\n<p><a href=\"");
	el_html_escape(html, url);
	evbuffer_add_printf(html,
	    "\">Confirm my subscription</a></p>\n<p>If you did not ask for "
	    "this, ignore this email: without your confirmation we will not "
	    "send you anything. The link works for 7 days.</p></body></html>\n");
	evbuffer_add(html, "", 1);
	memset(q, 0, sizeof(*q));
	q->channel = CHANNEL_EMAIL;
	q->to = s->email;
	q->subject = mail->subject;
	q->body = mail->text;
	q->html = (const char *)evbuffer_pullup(html, -1);
	q->priority = MSG_PRIO_REPLY;
	q->member_id = s->member;
	q->optout_exempt = true; /* they may have opted out and now ask back */
}

/*
 * What a confirmation needs before the store: a base URL, an address and
 * the signed link, written into url (EL_URL_MAX). 0 / -1 with err.
 */
static int
el_confirmation_url(struct email_links *el, const struct email_links_sub *s,
    int64_t now, char *url, char *err, size_t errlen)
{
	struct email_token t = {.kind = EMAIL_TOKEN_CONFIRM,
	    .member = s->member,
	    .list = s->list,
	    .expires = now / 1000 + EMAIL_LINKS_CONFIRM_TTL_S};
	char tok[EMAIL_TOKEN_MAX];

	if (el->base_url == NULL) {
		snprintf(err, errlen,
		    "email double opt-in needs [http] public_url: the "
		    "confirmation link must point to this server");
		return -1;
	}
	if (s->email == NULL || s->email[0] == '\0' ||
	    email_token_make(el->mac, &t, tok, sizeof(tok)) == -1) {
		snprintf(err, errlen,
		    "email confirmation: bad member, list or "
		    "address");
		return -1;
	}
	snprintf(url, EL_URL_MAX, "%s/c/%s", el->base_url, tok);
	return 0;
}

static void
el_confirmation_log(const struct email_links_sub *s, int64_t id)
{
	char masked[MSG_ADDR_MAX];

	log_info("email_confirmation_queued msg=%lld member=%lld "
		 "list=%lld to=%s",
	    (long long)id, (long long)s->member, (long long)s->list,
	    log_mask_email(s->email, masked, sizeof(masked)));
}

int
email_links_send_confirmation(struct email_links *el,
    const struct email_links_sub *s, int64_t now, char *err, size_t errlen)
{
	struct list_info li = {0};
	struct queue_new q;
	struct el_mail mail = {0};
	char url[EL_URL_MAX];
	struct queue_stored qs = {0};
	bool found = false;
	int rc = -1;

	if (el_confirmation_url(el, s, now, url, err, errlen) == -1)
		return -1;
	if (store_list_get(el->deps.st, s->list, &li, &found, err, errlen) ==
	    -1)
		return -1;
	if (!found) {
		snprintf(err, errlen, "email confirmation: no list %lld",
		    (long long)s->list);
		return -1;
	}
	el_confirmation_fill(s, li.name, url, &mail, &q);
	if (queue_enqueue(el->deps.st, &q, now, &qs, err, errlen) == 0) {
		dispatch_kick(el->deps.dispatch);
		el_confirmation_log(s, qs.id);
		rc = 0;
	}
	el_mail_clear(&mail);
	list_info_clear(&li);
	return rc;
}

/* Tells the caller of email_links_subscribe_durable(), frees cm. */
static void
el_cm_finish(struct el_confirm_mail *cm,
    const struct email_links_subscribe_done *d)
{
	cm->done(cm->arg, d);
	free((char *)cm->s.email);
	free(cm->source);
	free(cm);
}

static void
el_cm_fail(struct el_confirm_mail *cm, const char *error)
{
	el_cm_finish(cm, &(struct email_links_subscribe_done){.error = error});
}

/* The subscription and its email committed (or failed). */
static void
el_cm_written(void *arg, const struct store_confirm_sub_done *d)
{
	struct el_confirm_mail *cm = arg;

	if (d->ok && d->msg_id > 0) {
		dispatch_kick(cm->el->deps.dispatch);
		el_confirmation_log(&cm->s, d->msg_id);
	}
	el_cm_finish(cm,
	    &(struct email_links_subscribe_done){.ok = d->ok,
		.error = d->ok
		    ? NULL
		    : (d->error != NULL ? d->error : "commit failed"),
		.change = d->change,
		.status = d->status,
		.msg_id = d->msg_id,
		.confirm_error =
		    d->ok && d->msg_id == 0 && d->change != SUB_CHANGE_ALREADY
		    ? cm->why
		    : NULL});
}

/* The list's name read: the subscription and its email written. */
static void
el_cm_list(void *arg, int rc, const char *name, const char *error)
{
	struct el_confirm_mail *cm = arg;
	struct el_mail mail = {0};
	struct queue_new q;
	char url[EL_URL_MAX], err[256];

	if (rc == -1) {
		el_cm_fail(cm, error);
		return;
	}
	if (name == NULL) {
		snprintf(err, sizeof(err), "no list %lld",
		    (long long)cm->s.list);
		el_cm_fail(cm, err);
		return;
	}
	if (el_confirmation_url(cm->el, &cm->s, cm->now, url, cm->why,
		sizeof(cm->why)) == 0)
		el_confirmation_fill(&cm->s, name, url, &mail, &q);
	rc = store_confirm_subscribe_durable(cm->el->deps.st,
	    &(struct store_confirm_sub){.member = cm->s.member,
		.list = cm->s.list,
		.source = cm->source,
		.now = cm->now,
		.mail = mail.subject != NULL ? &q : NULL},
	    el_cm_written, cm, err, sizeof(err));
	el_mail_clear(&mail);
	if (rc == -1)
		el_cm_fail(cm, err);
}

int
email_links_subscribe_durable(struct email_links *el,
    const struct email_links_sub *s, const char *source, int64_t now,
    email_links_subscribe_fn *done, void *arg, char *err, size_t errlen)
{
	struct el_confirm_mail *cm;

	if (s->member <= 0 || s->list <= 0 || source == NULL ||
	    *source == '\0') {
		snprintf(err, errlen,
		    "subscribe: member, list and source required");
		return -1;
	}
	cm = xcalloc(1, sizeof(*cm));
	cm->el = el;
	cm->s = *s;
	cm->s.email = s->email != NULL ? xstrdup(s->email) : NULL;
	cm->source = xstrdup(source);
	cm->now = now;
	cm->done = done;
	cm->arg = arg;
	if (store_list_name_async(el->deps.st, s->list, el_cm_list, cm, err,
		errlen) == -1) {
		free((char *)cm->s.email);
		free(cm->source);
		free(cm);
		return -1;
	}
	return 0;
}
