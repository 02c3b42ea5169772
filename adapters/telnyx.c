/*
 * telnyx.c - the Telnyx Messaging v2 adapter (doc/providers.md): pure
 * request building and answer classification for the shared HTTP driver
 * (smshttp.c), plus the webhooks, which Telnyx signs with Ed25519.
 *
 * Send: POST {base_url}/v2/messages, Authorization: Bearer <api_key>,
 * JSON {from, to, text, webhook_url, messaging_profile_id}; numbers keep
 * their '+' (Telnyx requires it). 2xx carries data.id. Errors carry
 * errors[{code, title, detail}]: 40300 means the recipient texted STOP,
 * which is final and records the opt-out (SEND_F_OPTED_OUT).
 *
 * Keys of [sender NAME] with provider = telnyx:
 *   api_key               API v2 key (required)
 *   public_key            the account's Ed25519 public key from the
 *                         portal, base64 of the raw 32 bytes (required:
 *                         webhooks are always verified)
 *   messaging_profile_id  sent with every message (optional; with it
 *                         'from' may be left to the profile's pool)
 *
 * Webhooks: one JSON envelope for everything. message.received comes to
 * the inbound URL; message.sent and message.finalized to the status URL
 * (the webhook_url we send); any other event is acknowledged and
 * ignored. The signature covers timestamp + "|" + the raw body bytes,
 * which are never re-serialised (telnyx-python telnyx/webhook.py).
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "log.h"
#include "smshttp.h"
#include "xmalloc.h"

/* How far telnyx-timestamp may be from our clock, in seconds. */
#define TELNYX_SIG_WINDOW  300
#define TELNYX_ED25519_KEY 32 /* raw public key bytes */
#define TELNYX_ED25519_SIG 64 /* signature bytes */
/* Error code of a send to a number that texted STOP (doc/providers.md). */
#define TELNYX_ERR_OPTED_OUT 40300
/* Provider error text kept in send_result.text. */
#define TELNYX_TITLE_MAX 100

struct telnyx {
	char *from;	  /* the sender's default; NULL = profile's pool */
	char *profile_id; /* NULL = none */
	EVP_PKEY *pub;	  /* webhook signatures */
	char auth[512];	  /* "Authorization: Bearer ..." */
};

static int telnyx_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int telnyx_configure(const struct config_section *, const char *,
    void **, char *, size_t);
static EVP_PKEY *telnyx_pubkey(const char *);
static void telnyx_prov_free(void *);
static int telnyx_build(const void *, const struct out_msg *, const char *,
    struct smshttp_req *, char *, size_t);
static void telnyx_classify(const void *, const struct httpc_response *,
    struct send_result *);
static void telnyx_classify_error(int, json_t *, struct send_result *);
static int telnyx_verify(struct adapter *, const struct webhook_req *, char *,
    size_t);
static int telnyx_timestamp(const char *, int64_t, char *, size_t);
static json_t *telnyx_event(const struct webhook_req *, const char **,
    json_t **, char *, size_t);
static int telnyx_parse_inbound(struct adapter *, const struct webhook_req *,
    struct in_msg *, char *, size_t);
static int telnyx_parse_status(struct adapter *, const struct webhook_req *,
    struct status_update *, char *, size_t);
static int telnyx_status_of(const char *, enum msg_status *);
static const char *telnyx_reply_body(struct adapter *, enum webhook_kind,
    const char **);
static int telnyx_b64_decode(const char *, unsigned char *, size_t);
static int telnyx_code_of(const json_t *);
static bool telnyx_is_e164(const char *);
static void telnyx_scrub(const char *, char *, size_t);

static const char *const telnyx_keys[] = {"api_key", "public_key",
    "messaging_profile_id", NULL};

const struct smshttp_provider telnyx_provider = {
    .name = "telnyx",
    .default_base_url = "https://api.telnyx.com",
    .keys = telnyx_keys,
    .configure = telnyx_configure,
    .prov_free = telnyx_prov_free,
    .build = telnyx_build,
    .classify = telnyx_classify,
};

const struct adapter_ops telnyx_ops = {
    .name = "telnyx",
    .channel = CHANNEL_SMS,
    .init = telnyx_init,
    .send = smshttp_send,
    .drain = smshttp_drain,
    .free = smshttp_free,
    .verify = telnyx_verify,
    .parse_inbound = telnyx_parse_inbound,
    .parse_status = telnyx_parse_status,
    .reply_body = telnyx_reply_body,
};

static int
telnyx_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	return smshttp_init(ad, sec, &telnyx_provider, err, errlen);
}

/* Reads the keys; the public key is decoded and loaded once, here. */
static int
telnyx_configure(const struct config_section *sec, const char *from,
    void **prov, char *err, size_t errlen)
{
	const char *key = NULL, *pub = NULL, *profile = NULL;
	struct telnyx *t;
	EVP_PKEY *pk;

	if (sec == NULL) {
		snprintf(err, errlen,
		    "provider telnyx needs a [sender] section");
		return -1;
	}
	if (config_section_str(sec, "api_key", true, &key, err, errlen) == -1 ||
	    config_section_str(sec, "public_key", true, &pub, err, errlen) ==
		-1 ||
	    config_section_str(sec, "messaging_profile_id", false, &profile,
		err, errlen) == -1)
		return -1;
	if (strlen(key) > 400) {
		snprintf(err, errlen,
		    "%s:%d: api_key is longer than 400 "
		    "characters",
		    sec->file, config_section_line(sec, "api_key"));
		return -1;
	}
	if ((from == NULL || *from == '\0') && profile == NULL) {
		snprintf(err, errlen,
		    "%s:%d: [%s] needs from = ... or messaging_profile_id",
		    sec->file, config_section_line(sec, "from"), sec->name);
		return -1;
	}
	if ((pk = telnyx_pubkey(pub)) == NULL) {
		snprintf(err, errlen,
		    "%s:%d: public_key must be the base64 Ed25519 public key "
		    "(32 bytes) from the Telnyx portal",
		    sec->file, config_section_line(sec, "public_key"));
		return -1;
	}
	t = xcalloc(1, sizeof(*t));
	t->pub = pk;
	t->from = from != NULL && *from != '\0' ? xstrdup(from) : NULL;
	t->profile_id = profile != NULL ? xstrdup(profile) : NULL;
	snprintf(t->auth, sizeof(t->auth), "Authorization: Bearer %s", key);
	*prov = t;
	return 0;
}

/* The EVP key of base64 'b64' (raw 32-byte Ed25519), or NULL. */
static EVP_PKEY *
telnyx_pubkey(const char *b64)
{
	unsigned char raw[TELNYX_ED25519_KEY + 4];

	if (strlen(b64) != 44 ||
	    telnyx_b64_decode(b64, raw, sizeof(raw)) != TELNYX_ED25519_KEY)
		return NULL;
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
	    TELNYX_ED25519_KEY);
}

static void
telnyx_prov_free(void *prov)
{
	struct telnyx *t = prov;

	if (t == NULL)
		return;
	EVP_PKEY_free(t->pub);
	free(t->from);
	free(t->profile_id);
	OPENSSL_cleanse(t->auth, sizeof(t->auth));
	free(t);
}

/*
 * Builds the JSON request. A number sender configured without its '+'
 * gets it back; an alphanumeric one is sent as is. Without a from, the
 * messaging profile picks one of its numbers.
 */
static int
telnyx_build(const void *prov, const struct out_msg *msg,
    const char *status_url, struct smshttp_req *req, char *err, size_t errlen)
{
	const struct telnyx *t = prov;
	const char *src = msg->from[0] != '\0' ? msg->from : t->from;
	char from[MSG_ADDR_MAX];
	json_t *o;
	char *s;

	if (!telnyx_is_e164(msg->to)) {
		snprintf(err, errlen, "telnyx: invalid destination number");
		return -1;
	}
	if ((o = json_object()) == NULL)
		fatalx("telnyx_build: json_object failed");
	if (src != NULL) {
		if (strlen(src) >= 7 && strlen(src) <= 15 &&
		    strspn(src, "0123456789") == strlen(src))
			snprintf(from, sizeof(from), "+%s", src);
		else
			strlcpy(from, src, sizeof(from));
		json_object_set_new(o, "from", json_string(from));
	}
	json_object_set_new(o, "to", json_string(msg->to));
	if (json_object_set_new(o, "text", json_string(msg->body)) == -1) {
		json_decref(o);
		snprintf(err, errlen, "telnyx: text is not valid UTF-8");
		return -1;
	}
	if (status_url != NULL)
		json_object_set_new(o, "webhook_url", json_string(status_url));
	if (t->profile_id != NULL)
		json_object_set_new(o, "messaging_profile_id",
		    json_string(t->profile_id));
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		fatalx("telnyx_build: json_dumps failed");
	json_decref(o);
	req->method = "POST";
	strlcpy(req->path, "/v2/messages", sizeof(req->path));
	req->content_type = "application/json";
	strlcpy(req->headers[0], t->auth, sizeof(req->headers[0]));
	req->nheaders = 1;
	evbuffer_add(req->body, s, strlen(s));
	free(s);
	return 0;
}

/*
 * 2xx with data.id: accepted. A 2xx without one reached Telnyx but
 * cannot be matched: transient and uncertain. Other statuses (401, 403,
 * 404, 422, ...) are final, with Telnyx's first error code when given.
 */
static void
telnyx_classify(const void *prov, const struct httpc_response *resp,
    struct send_result *res)
{
	const char *id;
	json_t *root;

	(void)prov;
	if (smshttp_classify_transport(resp, res))
		return;
	root = json_loadb(resp->body, resp->body_len, 0, NULL);
	if (resp->status >= 200 && resp->status < 300) {
		id = json_string_value(
		    json_object_get(json_object_get(root, "data"), "id"));
		if (id != NULL && *id != '\0') {
			send_result_set(res, SEND_ACCEPTED, 0, NULL);
			strlcpy(res->provider_id, id, sizeof(res->provider_id));
		} else {
			send_result_set(res, SEND_TRANSIENT, resp->status,
			    "telnyx: %d without data.id", resp->status);
			res->uncertain = true;
		}
	} else
		telnyx_classify_error(resp->status,
		    json_array_get(json_object_get(root, "errors"), 0), res);
	json_decref(root);
}

/* A final refusal; 40300 also says the recipient opted out. */
static void
telnyx_classify_error(int status, json_t *e, struct send_result *res)
{
	char title[TELNYX_TITLE_MAX];
	int code = telnyx_code_of(json_object_get(e, "code"));
	const char *t = json_string_value(json_object_get(e, "title"));

	telnyx_scrub(t != NULL ? t : "", title, sizeof(title));
	if (code > 0)
		send_result_set(res, SEND_PERMANENT, code,
		    "telnyx http %d code %d%s%s", status, code,
		    *title != '\0' ? ": " : "", title);
	else
		send_result_set(res, SEND_PERMANENT, status, "telnyx http %d",
		    status);
	if (code == TELNYX_ERR_OPTED_OUT)
		res->flags |= SEND_F_OPTED_OUT;
}

/*
 * Ed25519 over telnyx-timestamp + "|" + raw body with the configured
 * public key; the timestamp must be within TELNYX_SIG_WINDOW of
 * req->now either way (old ones are replays, future ones forged).
 */
static int
telnyx_verify(struct adapter *ad, const struct webhook_req *req, char *err,
    size_t errlen)
{
	const struct telnyx *t = smshttp_prov(ad);
	const char *sig = webhook_header(req, "telnyx-signature-ed25519");
	const char *ts = webhook_header(req, "telnyx-timestamp");
	unsigned char raw[TELNYX_ED25519_SIG + 4];
	struct evbuffer *b;
	EVP_MD_CTX *ctx;
	int ok;

	if (sig == NULL || ts == NULL) {
		snprintf(err, errlen, "telnyx: unsigned webhook");
		return -1;
	}
	if (telnyx_timestamp(ts, req->now, err, errlen) == -1)
		return -1;
	if (strlen(sig) != 88 ||
	    telnyx_b64_decode(sig, raw, sizeof(raw)) != TELNYX_ED25519_SIG) {
		snprintf(err, errlen, "telnyx: malformed signature");
		return -1;
	}
	if ((b = evbuffer_new()) == NULL || (ctx = EVP_MD_CTX_new()) == NULL)
		fatalx("telnyx_verify: out of memory");
	evbuffer_add_printf(b, "%s|", ts);
	evbuffer_add(b, req->body, req->body_len);
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, t->pub) == 1 &&
	    EVP_DigestVerify(ctx, raw, TELNYX_ED25519_SIG,
		evbuffer_pullup(b, -1), evbuffer_get_length(b)) == 1;
	EVP_MD_CTX_free(ctx);
	evbuffer_free(b);
	if (!ok) {
		snprintf(err, errlen, "telnyx: signature mismatch");
		return -1;
	}
	return 0;
}

/* 0 if 'ts' (Unix seconds) is within the window around now_ms. */
static int
telnyx_timestamp(const char *ts, int64_t now_ms, char *err, size_t errlen)
{
	long long t;
	size_t n = strlen(ts);

	if (n == 0 || n > 12 || strspn(ts, "0123456789") != n) {
		snprintf(err, errlen, "telnyx: malformed timestamp");
		return -1;
	}
	t = atoll(ts);
	if (now_ms / 1000 - t > TELNYX_SIG_WINDOW) {
		snprintf(err, errlen, "telnyx: stale timestamp");
		return -1;
	}
	if (t - now_ms / 1000 > TELNYX_SIG_WINDOW) {
		snprintf(err, errlen, "telnyx: timestamp in the future");
		return -1;
	}
	return 0;
}

/*
 * Reads the envelope: returns the parsed root (caller decrefs) with
 * *type = data.event_type and *payload = data.payload (borrowed), or
 * NULL with err set when the body is not such an envelope.
 */
static json_t *
telnyx_event(const struct webhook_req *req, const char **type, json_t **payload,
    char *err, size_t errlen)
{
	json_t *root, *data;

	root = json_loadb(req->body, req->body_len, 0, NULL);
	data = json_object_get(root, "data");
	*type = json_string_value(json_object_get(data, "event_type"));
	*payload = json_object_get(data, "payload");
	if (*type == NULL || !json_is_object(*payload)) {
		json_decref(root);
		snprintf(err, errlen, "telnyx: not a webhook envelope");
		return NULL;
	}
	return root;
}

/*
 * message.received: payload.from.phone_number is the member,
 * to[0].phone_number our number, payload.id the message (retries repeat
 * it). An MMS without text has an empty body.
 */
static int
telnyx_parse_inbound(struct adapter *ad, const struct webhook_req *req,
    struct in_msg *out, char *err, size_t errlen)
{
	const char *type, *id, *from, *to, *text;
	json_t *root, *p, *parts;
	int rc = -1;

	(void)ad;
	if ((root = telnyx_event(req, &type, &p, err, errlen)) == NULL)
		return -1;
	if (strcmp(type, "message.received") != 0) {
		json_decref(root);
		return 1;
	}
	id = json_string_value(json_object_get(p, "id"));
	from = json_string_value(
	    json_object_get(json_object_get(p, "from"), "phone_number"));
	to = json_string_value(json_object_get(
	    json_array_get(json_object_get(p, "to"), 0), "phone_number"));
	text = json_string_value(json_object_get(p, "text"));
	parts = json_object_get(p, "parts");
	if (id == NULL || *id == '\0' || from == NULL || *from == '\0' ||
	    to == NULL || strlen(id) >= sizeof(out->provider_id))
		snprintf(err, errlen,
		    "telnyx: message.received lacks id, "
		    "from or to");
	else {
		strlcpy(out->provider_id, id, sizeof(out->provider_id));
		strlcpy(out->from, from, sizeof(out->from));
		strlcpy(out->to, to, sizeof(out->to));
		out->body = xstrdup(text != NULL ? text : "");
		if (json_is_integer(parts) && json_integer_value(parts) > 0 &&
		    json_integer_value(parts) < 256)
			out->segments = (unsigned)json_integer_value(parts);
		out->num_media =
		    (unsigned)json_array_size(json_object_get(p, "media"));
		rc = 0;
	}
	json_decref(root);
	return rc;
}

/*
 * message.sent / message.finalized: the recipient's status in
 * payload.to[0].status, the first error's code when it failed.
 */
static int
telnyx_parse_status(struct adapter *ad, const struct webhook_req *req,
    struct status_update *out, char *err, size_t errlen)
{
	const char *type, *id, *st, *title;
	char clean[TELNYX_TITLE_MAX];
	json_t *root, *p, *e;
	int rc = -1;

	(void)ad;
	if ((root = telnyx_event(req, &type, &p, err, errlen)) == NULL)
		return -1;
	if (strcmp(type, "message.sent") != 0 &&
	    strcmp(type, "message.finalized") != 0) {
		json_decref(root);
		return 1;
	}
	id = json_string_value(json_object_get(p, "id"));
	st = json_string_value(json_object_get(
	    json_array_get(json_object_get(p, "to"), 0), "status"));
	e = json_array_get(json_object_get(p, "errors"), 0);
	if (id == NULL || *id == '\0' || st == NULL ||
	    strlen(id) >= sizeof(out->provider_id))
		snprintf(err, errlen, "telnyx: %s lacks id or to[0].status",
		    type);
	else if ((rc = telnyx_status_of(st, &out->status)) == 0) {
		strlcpy(out->provider_id, id, sizeof(out->provider_id));
		out->code = telnyx_code_of(json_object_get(e, "code"));
		if (out->code < 0)
			out->code = 0;
		title = json_string_value(json_object_get(e, "title"));
		telnyx_scrub(title != NULL ? title : "", clean, sizeof(clean));
		snprintf(out->text, sizeof(out->text), "telnyx %s%s%s", st,
		    *clean != '\0' ? ": " : "", clean);
	}
	json_decref(root);
	return rc;
}

/*
 * Recipient statuses (doc/providers.md): delivered; delivery_failed and
 * expired (the carrier had it) -> undelivered; sending_failed (never
 * left Telnyx) -> failed; sent and delivery_unconfirmed (sent, no
 * receipt will come) -> sent. queued, sending and the rest: 1, ignored.
 */
static int
telnyx_status_of(const char *st, enum msg_status *out)
{
	static const struct {
		const char *name;
		enum msg_status st;
	} map[] = {
	    {"delivered", MSG_ST_DELIVERED},
	    {"delivery_failed", MSG_ST_UNDELIVERED},
	    {"expired", MSG_ST_UNDELIVERED},
	    {"sending_failed", MSG_ST_FAILED},
	    {"sent", MSG_ST_SENT},
	    {"delivery_unconfirmed", MSG_ST_SENT},
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(st, map[i].name) == 0) {
			*out = map[i].st;
			return 0;
		}
	return 1;
}

/* Telnyx needs a 2xx within 2 s; the body is not read. */
static const char *
telnyx_reply_body(struct adapter *ad, enum webhook_kind kind,
    const char **ctype)
{
	(void)ad;
	(void)kind;
	*ctype = "text/plain";
	return "";
}

/*
 * Decodes standard base64 'in' into out (at most len bytes). Returns the
 * decoded length, or -1 when 'in' is not base64 or does not fit.
 */
static int
telnyx_b64_decode(const char *in, unsigned char *out, size_t len)
{
	size_t n = strlen(in);
	int got, pad = 0;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > len)
		return -1;
	if (in[n - 1] == '=')
		pad++;
	if (in[n - 2] == '=')
		pad++;
	if ((got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n)) < 0)
		return -1;
	return got - pad;
}

/* Telnyx sends error codes as strings ("40300"); -1 if not a number. */
static int
telnyx_code_of(const json_t *code)
{
	const char *s = json_string_value(code);

	if (json_is_integer(code))
		return (int)json_integer_value(code);
	if (s == NULL || *s == '\0' || strlen(s) > 9 ||
	    strspn(s, "0123456789") != strlen(s))
		return -1;
	return atoi(s);
}

/* "+" and 7 to 15 digits. */
static bool
telnyx_is_e164(const char *s)
{
	size_t n;

	if (*s++ != '+')
		return false;
	n = strlen(s);
	return n >= 7 && n <= 15 && strspn(s, "0123456789") == n;
}

/*
 * Copies provider text for send_result/status text: control characters
 * become spaces, runs of 5+ digits (numbers) are masked (rule 7).
 */
static void
telnyx_scrub(const char *in, char *out, size_t len)
{
	size_t i = 0, run;

	while (*in != '\0' && i + 1 < len) {
		run = strspn(in, "0123456789");
		if (run >= 5) {
			out[i++] = '#';
			in += run;
		} else if (run > 0) {
			for (; run > 0 && i + 1 < len; run--)
				out[i++] = *in++;
		} else {
			out[i++] = (unsigned char)*in < 0x20 ? ' ' : *in;
			in++;
		}
	}
	out[i] = '\0';
}
