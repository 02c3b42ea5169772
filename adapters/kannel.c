/*
 * kannel.c - the Kannel smsbox adapter (doc/providers.md): outbound through
 * the sendsms HTTP interface, inbound through an sms-service get-url (or
 * post-url), delivery reports through the dlr-url we hand Kannel. Pure
 * build/classify functions for the shared HTTP driver (smshttp.c).
 *
 * Send: GET {base_url}/cgi-bin/sendsms?username=&password=&from=&to=
 * &text=&charset=UTF-8&coding=0|2&dlr-mask=31&dlr-url=... Kannel takes
 * its credentials in the URL by its own design (POST would need more
 * headers than the driver carries): the URL is a secret and must never
 * be logged (smshttp logs neither URLs nor paths). coding=2 (UCS-2) is
 * asked for when the text is not GSM-7, with charset=UTF-8 so Kannel
 * converts our UTF-8. dlr-mask 31 = delivered, failed, buffered, submit
 * ack, submit nack (gw/dlr.h); the dlr-url carries our message id, the
 * webhook secret and %d (the report type). Kannel answers 202 "0:
 * Accepted for delivery" or "3: Queued for later delivery"; 503 is a
 * retry, other 4xx final. Kannel returns no message id: status reports
 * match by our id (status_update.msg_id).
 *
 * Keys of [sender NAME] with provider = kannel:
 *   username, password  the sendsms-user (required)
 *   smsc                the smsc-id to route through (optional)
 *   webhook_secret      16+ characters of [A-Za-z0-9._~-] (required):
 *                       every webhook URL must carry ?secret=<it>, since
 *                       Kannel signs nothing
 *   allowed_sources     comma-separated IPs or CIDRs Kannel calls from
 *                       (default 127.0.0.1/32, ::1/128)
 *
 * Inbound, in smsbox.conf (mo-recode = true makes UCS-2 arrive as UTF-8):
 *   group = sms-service
 *   keyword = default
 *   get-url = "https://HOST/webhooks/NAME/inbound?secret=SECRET&from=%p
 *              &to=%P&text=%b&id=%I&charset=%C"   (one line)
 *   max-messages = 0
 * Escapes (userguide): %p sender, %P receiver, %b the text (URL-encoded
 * bytes), %I Kannel's message id (de-duplicates retries), %C its
 * charset. With post-url the text may come as the body instead of
 * 'text', and the numbers as X-Kannel-From / X-Kannel-To.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/crypto.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "log.h"
#include "smshttp.h"
#include "smstext.h"
#include "xmalloc.h"

#define KANNEL_MAX_NETS	  32
#define KANNEL_SECRET_MIN 16
#define KANNEL_SECRET_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-"
#define KANNEL_DEFAULT_NETS "127.0.0.1/32, ::1/128"
/* dlr-mask: 1 delivered + 2 failed + 4 buffered + 8 ack + 16 nack. */
#define KANNEL_DLR_MASK "31"
/* Report types (gw/dlr.h). */
#define KANNEL_DLR_SUCCESS   1
#define KANNEL_DLR_FAIL	     2
#define KANNEL_DLR_BUFFERED  4
#define KANNEL_DLR_SMSC_ACK  8
#define KANNEL_DLR_SMSC_NACK 16
#define KANNEL_DLR_INTERIM   32
/* Kannel's answer text kept in send_result.text. */
#define KANNEL_ANSWER_MAX 80

/* One entry of allowed_sources. */
struct kannel_net {
	int af;			/* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network bytes */
	unsigned bits;		/* prefix length */
};

struct kannel {
	char *username;
	char *password;
	char *smsc;   /* NULL = Kannel's routing */
	char *from;   /* NULL = the sendsms-user's default */
	char *secret; /* webhook secret */
	struct kannel_net nets[KANNEL_MAX_NETS];
	size_t nnets;
};

static int kannel_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int kannel_configure(const struct config_section *, const char *,
    void **, char *, size_t);
static int kannel_configure_secret(const struct config_section *,
    struct kannel *, char *, size_t);
static int kannel_nets_parse(const char *, struct kannel *);
static int kannel_net_parse(const char *, size_t, struct kannel_net *);
static void kannel_prov_free(void *);
static int kannel_build(const void *, const struct out_msg *, const char *,
    struct smshttp_req *, char *, size_t);
static void kannel_dlr_url(const struct kannel *, const struct out_msg *,
    const char *, struct evbuffer *);
static void kannel_classify(const void *, const struct httpc_response *,
    struct send_result *);
static int kannel_verify(struct adapter *, const struct webhook_req *, char *,
    size_t);
static bool kannel_peer_allowed(const struct kannel *, const char *);
static bool kannel_net_has(const struct kannel_net *, int,
    const unsigned char *);
static int kannel_parse_inbound(struct adapter *, const struct webhook_req *,
    struct in_msg *, char *, size_t);
static char *kannel_inbound_text(const struct webhook_req *, char *, size_t);
static char *kannel_to_utf8(const char *, size_t, const char *);
static int kannel_parse_status(struct adapter *, const struct webhook_req *,
    struct status_update *, char *, size_t);
static const char *kannel_reply_body(struct adapter *, enum webhook_kind,
    const char **);
static char *kannel_query_get(const char *, const char *, size_t *);
static bool kannel_is_number(const char *);
static bool kannel_is_utf8(const char *, size_t);

static const char *const kannel_keys[] = {"username", "password", "smsc",
    "webhook_secret", "allowed_sources", NULL};

const struct smshttp_provider kannel_provider = {
    .name = "kannel",
    .default_base_url = "http://127.0.0.1:13013",
    .keys = kannel_keys,
    .configure = kannel_configure,
    .prov_free = kannel_prov_free,
    .build = kannel_build,
    .classify = kannel_classify,
};

const struct adapter_ops kannel_ops = {
    .name = "kannel",
    .channel = CHANNEL_SMS,
    .init = kannel_init,
    .send = smshttp_send,
    .drain = smshttp_drain,
    .free = smshttp_free,
    .verify = kannel_verify,
    .parse_inbound = kannel_parse_inbound,
    .parse_status = kannel_parse_status,
    .reply_body = kannel_reply_body,
};

static int
kannel_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	return smshttp_init(ad, sec, &kannel_provider, err, errlen);
}

static int
kannel_configure(const struct config_section *sec, const char *from,
    void **prov, char *err, size_t errlen)
{
	const char *user = NULL, *pass = NULL, *smsc = NULL, *nets = NULL;
	struct kannel *k;

	if (sec == NULL) {
		snprintf(err, errlen,
		    "provider kannel needs a [sender] section");
		return -1;
	}
	if (config_section_str(sec, "username", true, &user, err, errlen) ==
		-1 ||
	    config_section_str(sec, "password", true, &pass, err, errlen) ==
		-1 ||
	    config_section_str(sec, "smsc", false, &smsc, err, errlen) == -1 ||
	    config_section_str(sec, "allowed_sources", false, &nets, err,
		errlen) == -1)
		return -1;
	k = xcalloc(1, sizeof(*k));
	if (kannel_configure_secret(sec, k, err, errlen) == -1) {
		kannel_prov_free(k);
		return -1;
	}
	if (kannel_nets_parse(nets != NULL ? nets : KANNEL_DEFAULT_NETS, k) ==
	    -1) {
		snprintf(err, errlen,
		    "%s:%d: allowed_sources must list IPv4/IPv6 addresses or "
		    "CIDRs, comma-separated (at most %d)",
		    sec->file, config_section_line(sec, "allowed_sources"),
		    KANNEL_MAX_NETS);
		kannel_prov_free(k);
		return -1;
	}
	k->username = xstrdup(user);
	k->password = xstrdup(pass);
	k->smsc = smsc != NULL && *smsc != '\0' ? xstrdup(smsc) : NULL;
	k->from = from != NULL && *from != '\0' ? xstrdup(from) : NULL;
	*prov = k;
	return 0;
}

/*
 * The secret travels inside the dlr-url, where Kannel expands '%'
 * escapes: only unreserved URL characters are allowed, so it needs no
 * percent-encoding that Kannel could mistake for one (%A, %B, %C ...).
 */
static int
kannel_configure_secret(const struct config_section *sec, struct kannel *k,
    char *err, size_t errlen)
{
	const char *secret = NULL;

	if (config_section_str(sec, "webhook_secret", true, &secret, err,
		errlen) == -1)
		return -1;
	if (strlen(secret) < KANNEL_SECRET_MIN ||
	    strspn(secret, KANNEL_SECRET_CHARS) != strlen(secret)) {
		snprintf(err, errlen,
		    "%s:%d: webhook_secret must be at least %d characters of "
		    "A-Z a-z 0-9 . _ ~ -",
		    sec->file, config_section_line(sec, "webhook_secret"),
		    KANNEL_SECRET_MIN);
		return -1;
	}
	k->secret = xstrdup(secret);
	return 0;
}

/* Parses "a, b/n, ..." into k->nets; -1 on any bad entry. */
static int
kannel_nets_parse(const char *list, struct kannel *k)
{
	const char *p = list;
	size_t n;

	for (;;) {
		p += strspn(p, " \t");
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0 || k->nnets == KANNEL_MAX_NETS ||
		    kannel_net_parse(p, n, &k->nets[k->nnets]) == -1)
			return -1;
		k->nnets++;
		p += strcspn(p, ",");
		if (*p == '\0')
			return 0;
		p++;
	}
}

/* One "addr" or "addr/bits" of length n. */
static int
kannel_net_parse(const char *s, size_t n, struct kannel_net *net)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned max;
	long bits;

	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->af = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->af = AF_INET6;
		max = 128;
	} else
		return -1;
	net->bits = max;
	if (slash != NULL) {
		errno = 0;
		bits = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || errno != 0 || bits < 0 ||
		    bits > (long)max)
			return -1;
		net->bits = (unsigned)bits;
	}
	return 0;
}

static void
kannel_prov_free(void *prov)
{
	struct kannel *k = prov;

	if (k == NULL)
		return;
	free(k->username);
	if (k->password != NULL)
		OPENSSL_cleanse(k->password, strlen(k->password));
	free(k->password);
	free(k->smsc);
	free(k->from);
	if (k->secret != NULL)
		OPENSSL_cleanse(k->secret, strlen(k->secret));
	free(k->secret);
	free(k);
}

/*
 * Builds the sendsms GET. 'to' must be one number: Kannel splits
 * recipients on spaces. A text whose request does not fit the driver's
 * path (about 1 KB) cannot be sent this way and fails permanently.
 */
static int
kannel_build(const void *prov, const struct out_msg *msg,
    const char *status_url, struct smshttp_req *req, char *err, size_t errlen)
{
	const struct kannel *k = prov;
	const char *from = msg->from[0] != '\0' ? msg->from : k->from;
	struct evbuffer *q = evbuffer_new();
	size_t len;

	if (q == NULL)
		fatalx("kannel_build: evbuffer_new failed");
	if (!kannel_is_number(msg->to)) {
		evbuffer_free(q);
		snprintf(err, errlen, "kannel: invalid destination number");
		return -1;
	}
	evbuffer_add(q, "/cgi-bin/sendsms", 16);
	smshttp_form_add(q, '?', "username", k->username, false);
	smshttp_form_add(q, '&', "password", k->password, false);
	if (from != NULL)
		smshttp_form_add(q, '&', "from", from, false);
	smshttp_form_add(q, '&', "to", msg->to, false);
	smshttp_form_add(q, '&', "text", msg->body, false);
	smshttp_form_add(q, '&', "charset", "UTF-8", false);
	smshttp_form_add(q, '&', "coding",
	    smstext_is_gsm7(msg->body) ? "0" : "2", false);
	if (k->smsc != NULL)
		smshttp_form_add(q, '&', "smsc", k->smsc, false);
	if (status_url != NULL)
		kannel_dlr_url(k, msg, status_url, q);
	len = evbuffer_get_length(q);
	if (len >= sizeof(req->path)) {
		evbuffer_free(q);
		snprintf(err, errlen,
		    "kannel: request of %zu bytes exceeds the %zu a GET can "
		    "carry here",
		    len, sizeof(req->path) - 1);
		return -1;
	}
	evbuffer_remove(q, req->path, len);
	req->path[len] = '\0';
	evbuffer_free(q);
	req->method = "GET";
	req->content_type = NULL;
	return 0;
}

/* &dlr-mask=31&dlr-url=<status_url?secret=S&id=ID&type=%d, encoded>. */
static void
kannel_dlr_url(const struct kannel *k, const struct out_msg *msg,
    const char *status_url, struct evbuffer *q)
{
	char *url;

	url = xasprintf("%s%csecret=%s&id=%lld&type=%%d", status_url,
	    strchr(status_url, '?') != NULL ? '&' : '?', k->secret,
	    (long long)msg->id);
	smshttp_form_add(q, '&', "dlr-mask", KANNEL_DLR_MASK, false);
	smshttp_form_add(q, '&', "dlr-url", url, false);
	free(url);
}

/*
 * 202 "0: Accepted for delivery" or "3: Queued for later delivery":
 * accepted. Another 2xx reached Kannel but says nothing we know:
 * transient and uncertain. 4xx (bad credentials, missing receiver,
 * refused sender) are final; 503 and other 5xx are the driver's.
 */
static void
kannel_classify(const void *prov, const struct httpc_response *resp,
    struct send_result *res)
{
	char text[KANNEL_ANSWER_MAX];
	unsigned char c;
	size_t i;

	(void)prov;
	if (smshttp_classify_transport(resp, res))
		return;
	/* The first line of Kannel's answer, printable ASCII only. */
	for (i = 0; i + 1 < sizeof(text) && i < resp->body_len; i++) {
		c = (unsigned char)resp->body[i];
		if (c == '\n' || c == '\r')
			break;
		text[i] = c < 0x20 || c > 0x7e ? '?' : (char)c;
	}
	text[i] = '\0';
	if (resp->status == 202 &&
	    (strncmp(resp->body, "0:", 2) == 0 ||
		strncmp(resp->body, "3:", 2) == 0))
		send_result_set(res, SEND_ACCEPTED, 0, NULL);
	else if (resp->status >= 200 && resp->status < 300) {
		send_result_set(res, SEND_TRANSIENT, resp->status,
		    "kannel http %d: unexpected answer", resp->status);
		res->uncertain = true;
	} else
		send_result_set(res, SEND_PERMANENT, resp->status,
		    "kannel http %d: %s", resp->status, text);
}

/*
 * Kannel signs nothing: a webhook must come from allowed_sources and
 * carry our secret in its query (compared in constant time).
 */
static int
kannel_verify(struct adapter *ad, const struct webhook_req *req, char *err,
    size_t errlen)
{
	const struct kannel *k = smshttp_prov(ad);
	char *secret;
	bool ok;

	if (req->peer == NULL || !kannel_peer_allowed(k, req->peer)) {
		snprintf(err, errlen, "kannel: peer not in allowed_sources");
		return -1;
	}
	if ((secret = kannel_query_get(req->query, "secret", NULL)) == NULL) {
		snprintf(err, errlen, "kannel: no secret in the URL");
		return -1;
	}
	ok = strlen(secret) == strlen(k->secret) &&
	    CRYPTO_memcmp(secret, k->secret, strlen(secret)) == 0;
	free(secret);
	if (!ok) {
		snprintf(err, errlen, "kannel: wrong secret");
		return -1;
	}
	return 0;
}

/* True if the textual address 'peer' is inside one of k->nets. */
static bool
kannel_peer_allowed(const struct kannel *k, const char *peer)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff};
	unsigned char a[16];
	size_t i;

	if (inet_pton(AF_INET, peer, a) == 1) {
		for (i = 0; i < k->nnets; i++)
			if (kannel_net_has(&k->nets[i], AF_INET, a))
				return true;
		return false;
	}
	if (inet_pton(AF_INET6, peer, a) != 1)
		return false;
	for (i = 0; i < k->nnets; i++)
		if (kannel_net_has(&k->nets[i], AF_INET6, a) ||
		    (memcmp(a, mapped, sizeof(mapped)) == 0 &&
			kannel_net_has(&k->nets[i], AF_INET, a + 12)))
			return true;
	return false;
}

/* True if addr (of family af) is inside net. */
static bool
kannel_net_has(const struct kannel_net *net, int af, const unsigned char *addr)
{
	unsigned full = net->bits / 8, rest = net->bits % 8;
	unsigned char m;

	if (net->af != af || memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	m = (unsigned char)(0xff << (8 - rest));
	return (net->addr[full] & m) == (addr[full] & m);
}

/*
 * An MO from the sms-service URL: from/to/id in the query (or the
 * X-Kannel-From/-To headers of a post-url), the text in 'text' or the
 * POST body, converted to UTF-8 from the 'charset' Kannel names.
 */
static int
kannel_parse_inbound(struct adapter *ad, const struct webhook_req *req,
    struct in_msg *out, char *err, size_t errlen)
{
	char *from = kannel_query_get(req->query, "from", NULL);
	char *to = kannel_query_get(req->query, "to", NULL);
	char *id = kannel_query_get(req->query, "id", NULL);
	char *text = NULL;
	int rc = -1;

	(void)ad;
	if (from == NULL && webhook_header(req, "X-Kannel-From") != NULL)
		from = xstrdup(webhook_header(req, "X-Kannel-From"));
	if (to == NULL && webhook_header(req, "X-Kannel-To") != NULL)
		to = xstrdup(webhook_header(req, "X-Kannel-To"));
	if (from == NULL || *from == '\0' || to == NULL || id == NULL ||
	    *id == '\0' || strlen(id) >= sizeof(out->provider_id))
		snprintf(err, errlen, "kannel: inbound lacks from, to or id");
	else if ((text = kannel_inbound_text(req, err, errlen)) != NULL) {
		strlcpy(out->provider_id, id, sizeof(out->provider_id));
		smshttp_address_in(from, out->from, sizeof(out->from));
		smshttp_address_in(to, out->to, sizeof(out->to));
		out->body = text;
		rc = 0;
	}
	free(from);
	free(to);
	free(id);
	return rc;
}

/* The MO text as UTF-8 (owned), or NULL with err set. */
static char *
kannel_inbound_text(const struct webhook_req *req, char *err, size_t errlen)
{
	char *charset = kannel_query_get(req->query, "charset", NULL);
	char *raw, *text = NULL;
	size_t len = 0;

	raw = kannel_query_get(req->query, "text", &len);
	if (raw == NULL && strcmp(req->method, "POST") == 0 &&
	    req->body != NULL) {
		len = req->body_len;
		raw = xmalloc(len + 1);
		memcpy(raw, req->body, len);
		raw[len] = '\0';
	}
	if (raw == NULL) {
		snprintf(err, errlen, "kannel: inbound has no text");
		goto done;
	}
	/* A charset iconv does not know ("GSM") falls back to UTF-8. */
	if (charset != NULL && strcasecmp(charset, "UTF-8") != 0)
		text = kannel_to_utf8(raw, len, charset);
	if (text == NULL && kannel_is_utf8(raw, len)) {
		text = raw;
		raw = NULL;
	}
	if (text == NULL)
		snprintf(err, errlen, "kannel: text is not valid %s",
		    charset != NULL ? "in its charset" : "UTF-8");
done:
	free(raw);
	free(charset);
	return text;
}

/*
 * Converts len bytes in 'charset' (UTF-16BE, WINDOWS-1252, ISO-8859-1,
 * anything iconv knows) to UTF-8; NULL if iconv cannot, or if the
 * result is not clean UTF-8 (a NUL, say).
 */
static char *
kannel_to_utf8(const char *in, size_t len, const char *charset)
{
	size_t cap = len * 4 + 1, inleft = len, outleft = cap - 1;
	char *out = xmalloc(cap), *ip = (char *)in, *op = out;
	iconv_t cd;

	if ((cd = iconv_open("UTF-8", charset)) == (iconv_t)-1) {
		free(out);
		return NULL;
	}
	if (iconv(cd, &ip, &inleft, &op, &outleft) == (size_t)-1 ||
	    inleft != 0) {
		iconv_close(cd);
		free(out);
		return NULL;
	}
	iconv_close(cd);
	*op = '\0';
	if (!kannel_is_utf8(out, (size_t)(op - out))) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * A delivery report from our dlr-url: id is our message id, type the
 * report type (%d): 1 delivered, 2 failed on the phone side
 * (undelivered), 16 rejected by the SMSC (failed); 4, 8 and 32 are not
 * final and are ignored, as is anything unknown.
 */
static int
kannel_parse_status(struct adapter *ad, const struct webhook_req *req,
    struct status_update *out, char *err, size_t errlen)
{
	char *id = kannel_query_get(req->query, "id", NULL);
	char *type = kannel_query_get(req->query, "type", NULL);
	int rc = -1, t;

	(void)ad;
	if (id == NULL || type == NULL || *id == '\0' || strlen(id) > 18 ||
	    strspn(id, "0123456789") != strlen(id) || atoll(id) <= 0 ||
	    *type == '\0' || strlen(type) > 4 ||
	    strspn(type, "0123456789") != strlen(type)) {
		snprintf(err, errlen,
		    "kannel: report lacks a numeric id or "
		    "type");
		goto done;
	}
	t = atoi(type);
	rc = 0;
	if (t == KANNEL_DLR_SUCCESS)
		out->status = MSG_ST_DELIVERED;
	else if (t == KANNEL_DLR_FAIL)
		out->status = MSG_ST_UNDELIVERED;
	else if (t == KANNEL_DLR_SMSC_NACK)
		out->status = MSG_ST_FAILED;
	else
		rc = 1; /* BUFFERED, SMSC_ACK, INTERIM, unknown */
	if (rc == 0) {
		out->msg_id = atoll(id);
		strlcpy(out->provider_id, id, sizeof(out->provider_id));
		snprintf(out->text, sizeof(out->text), "kannel dlr type %d", t);
	}
done:
	free(id);
	free(type);
	return rc;
}

/* Kannel only looks at the status; an empty body sends no reply SMS. */
static const char *
kannel_reply_body(struct adapter *ad, enum webhook_kind kind,
    const char **ctype)
{
	(void)ad;
	(void)kind;
	*ctype = "text/plain";
	return "";
}

/*
 * The decoded first value of 'key' in a raw query string ('+' is a
 * space), or NULL when absent. With lenp, the value may hold NUL bytes
 * (a UTF-16 text) and its length goes to *lenp; without, such a value
 * counts as absent. free() it.
 */
static char *
kannel_query_get(const char *query, const char *key, size_t *lenp)
{
	size_t klen = strlen(key), n, outlen = 0;
	const char *p = query;
	char *raw, *val = NULL;

	while (p != NULL && *p != '\0' && val == NULL) {
		n = strcspn(p, "&");
		if (n >= klen && strncmp(p, key, klen) == 0 &&
		    (n == klen || p[klen] == '=')) {
			/* "key" alone is an empty value. */
			raw = n == klen ? xstrdup("")
					: xstrndup(p + klen + 1, n - klen - 1);
			val = evhttp_uridecode(raw, 1, &outlen);
			free(raw);
			if (val == NULL)
				fatalx("kannel_query_get: uridecode failed");
		}
		p += n;
		if (*p == '&')
			p++;
	}
	if (val != NULL && lenp == NULL && outlen != strlen(val)) {
		free(val);
		return NULL;
	}
	if (lenp != NULL)
		*lenp = outlen;
	return val;
}

/* One number: optional '+' and 3 to 15 digits (short codes too). */
static bool
kannel_is_number(const char *s)
{
	size_t n;

	if (*s == '+')
		s++;
	n = strlen(s);
	return n >= 3 && n <= 15 && strspn(s, "0123456789") == n;
}

/* Strict UTF-8 (no overlongs, surrogates or NULs) of len bytes. */
static bool
kannel_is_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;
	uint32_t cp, min;
	int more;

	while (p < end) {
		if (*p == 0)
			return false;
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			cp = *p & 0x1f;
			more = 1;
			min = 0x80;
		} else if ((*p & 0xf0) == 0xe0) {
			cp = *p & 0x0f;
			more = 2;
			min = 0x800;
		} else if ((*p & 0xf8) == 0xf0) {
			cp = *p & 0x07;
			more = 3;
			min = 0x10000;
		} else
			return false;
		for (p++; more > 0; more--, p++) {
			if (p >= end || (*p & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}
