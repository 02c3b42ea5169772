/*
 * twilio.c - the Twilio Programmable Messaging adapter (doc/providers.md).
 *
 * Sending is Twilio's Messages API exactly as its OpenAPI document
 * (twilio/twilio-oai, twilio_api_v2010) describes it:
 *   POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json
 *   Authorization: Basic base64(AccountSid:AuthToken | KeySid:KeySecret)
 *   Content-Type: application/x-www-form-urlencoded
 *   To, From and/or MessagingServiceSid, Body, StatusCallback (when
 *   [http] public_url is set), ValidityPeriod (when the message expires
 *   within Twilio's 1..36000 s window)
 * and a 201 answer carries the message "sid". Errors are JSON
 * {code, message, more_info, status}; we classify by Twilio's code (the
 * table below), never quoting its message, which can hold the number.
 *
 * Webhooks (inbound SMS, status callbacks) are form POSTs signed with
 * X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + the sorted
 * parameters)); the URL is the configured public one, tried also with its
 * port removed or the default port added (Twilio's SDKs accept both).
 * Inbound webhooks answer an empty TwiML <Response></Response>, so Twilio
 * sends nothing by itself; status callbacks answer an empty 200.
 *
 * The driver work (libcurl, in-flight records, drain, free) is smshttp.c;
 * everything here is a pure function of the configuration and its input.
 *
 * Keys of [sender NAME] with provider = twilio (besides smshttp's):
 *   account_sid            AC + 32 hex (required)
 *   auth_token             required: REST auth, and it signs webhooks
 *   api_key_sid            SK + 32 hex, with api_key_secret: REST auth by
 *   api_key_secret         API key instead of the auth token (optional)
 *   messaging_service_sid  MG + 32 hex: Twilio picks the sender from the
 *                          service's pool; needed when 'from' is unset
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "hmac.h"
#include "json_fast.h"
#include "log.h"
#include "smshttp.h"
#include "xmalloc.h"

#define TWILIO_SID_LEN	    34	  /* two letters + 32 hex digits */
#define TWILIO_SECRET_MAX   256	  /* keeps the Basic header in 512 bytes */
#define TWILIO_VALIDITY_MAX 36000 /* s: Twilio's ValidityPeriod ceiling */
#define TWILIO_SIG_MAX	    64	  /* base64 of a 20-byte HMAC-SHA1 is 28 */

/* An empty TwiML document: Twilio sends no reply of its own. */
#define TWILIO_TWIML_EMPTY \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"

/* The provider state configure() makes. */
struct twilio {
	char account_sid[TWILIO_SID_LEN + 1];
	char service_sid[TWILIO_SID_LEN + 1]; /* "" = none */
	struct hmac *sig_key;  /* HMAC-SHA1 under auth_token: webhooks */
	char *from;	       /* NULL = service only */
	char auth_header[512]; /* "Authorization: Basic ..." */
};

/* How a Twilio error code is handled (doc/providers.md, Twilio). */
struct twilio_error {
	int code;
	enum send_outcome outcome;
	unsigned flags;
	const char *text; /* ours, never Twilio's message */
};

/* A MessageStatus value and what it means for our message. */
struct twilio_status {
	const char *name;
	int status; /* enum msg_status, or -1 = intermediate: ignored */
};

static int twilio_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int twilio_configure(const struct config_section *, const char *,
    void **, char *, size_t);
static void twilio_prov_free(void *);
static int twilio_build(const void *, const struct out_msg *, const char *,
    struct smshttp_req *, char *, size_t);
static void twilio_classify(const void *, const struct httpc_response *,
    struct send_result *);
static int twilio_verify(struct adapter *, const struct webhook_req *, char *,
    size_t);
static int twilio_parse_inbound(struct adapter *, const struct webhook_req *,
    struct in_msg *, char *, size_t);
static int twilio_parse_status(struct adapter *, const struct webhook_req *,
    struct status_update *, char *, size_t);
static const char *twilio_reply_body(struct adapter *, enum webhook_kind,
    const char **);

static const char *const twilio_keys[] = {"account_sid", "auth_token",
    "api_key_sid", "api_key_secret", "messaging_service_sid", NULL};

const struct smshttp_provider twilio_provider = {
    .name = "twilio",
    .default_base_url = "https://api.twilio.com",
    .keys = twilio_keys,
    .configure = twilio_configure,
    .prov_free = twilio_prov_free,
    .build = twilio_build,
    .classify = twilio_classify,
};

const struct adapter_ops twilio_ops = {
    .name = "twilio",
    .channel = CHANNEL_SMS,
    .init = twilio_init,
    .send = smshttp_send,
    .drain = smshttp_drain,
    .free = smshttp_free,
    .verify = twilio_verify,
    .parse_inbound = twilio_parse_inbound,
    .parse_status = twilio_parse_status,
    .reply_body = twilio_reply_body,
};

/*
 * Twilio's error codes (the "code" of a 4xx answer) and what each does,
 * as the dispatcher acts on the outcome and flags:
 *   fails       SEND_PERMANENT: the message is failed, never retried.
 *   retried     SEND_TRANSIENT: back to the queue, with backoff (and
 *               Twilio's Retry-After, if longer).
 *   +opt-out    SEND_F_OPTED_OUT: the member's SMS opt-out is recorded.
 *   +slowed     SEND_F_RATE_LIMITED: the sender pauses for Retry-After
 *               and halves its rate.
 *   held        SEND_TRANSIENT + SEND_F_SENDER_BROKEN: the message stays
 *               queued and the whole sender pauses (Retry-After, at least
 *               60 s) with a sender_paused warning: every message of it
 *               would fail alike. smshttp.c treats any HTTP 401 so too.
 * A code not listed fails the message. An HTTP 429 or 5xx never reaches
 * this table: it is retried (429 slowed too) whatever its code.
 */
static const struct twilio_error twilio_errors[] = {
    /* held: the credentials were refused (HTTP 401) */
    {20003, SEND_TRANSIENT, SEND_F_SENDER_BROKEN, "authentication failed"},
    /* retried, slowed */
    {20429, SEND_TRANSIENT, SEND_F_RATE_LIMITED, "too many requests"},
    /* fails */
    {21211, SEND_PERMANENT, 0, "invalid To number"},
    {21408, SEND_PERMANENT, 0, "region not enabled (geo permissions)"},
    {21606, SEND_PERMANENT, 0, "From number cannot send to this To"},
    {21608, SEND_PERMANENT, 0, "trial account: To is unverified"},
    /* fails, opt-out recorded */
    {21610, SEND_PERMANENT, SEND_F_OPTED_OUT, "recipient opted out (STOP)"},
    /* retried */
    {21611, SEND_TRANSIENT, 0, "From queue full"},
    /* fails */
    {21612, SEND_PERMANENT, 0, "To unreachable from this sender"},
    {21614, SEND_PERMANENT, 0, "To is not a mobile number"},
    {21635, SEND_PERMANENT, 0, "To is a landline"},
    /* retried */
    {30001, SEND_TRANSIENT, 0, "queue overflow"},
    /* fails */
    {30006, SEND_PERMANENT, 0, "landline or unreachable carrier"},
    {30034, SEND_PERMANENT, 0, "unregistered 10DLC sender"},
};

static const struct twilio_status twilio_statuses[] = {
    {"sent", MSG_ST_SENT},
    {"delivered", MSG_ST_DELIVERED},
    {"read", MSG_ST_DELIVERED}, /* read implies delivered */
    {"undelivered", MSG_ST_UNDELIVERED},
    {"failed", MSG_ST_FAILED},
    {"canceled", MSG_ST_FAILED},
    {"queued", -1},
    {"sending", -1},
    {"accepted", -1},
    {"scheduled", -1},
    {"receiving", -1},
    {"received", -1},
    {"partially_delivered", -1},
};

static int
twilio_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	return smshttp_init(ad, sec, &twilio_provider, err, errlen);
}

/* True if s is 'prefix' followed by 32 hex digits (a Twilio SID). */
static bool
twilio_sid_is_valid(const char *s, const char *prefix)
{
	size_t i;

	if (strlen(s) != TWILIO_SID_LEN || strncmp(s, prefix, 2) != 0)
		return false;
	for (i = 2; i < TWILIO_SID_LEN; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* A key of [sender] that holds a SID, as twilio_sid_key() reads it. */
struct twilio_sid_spec {
	const char *key;
	const char *prefix; /* of every SID of its kind: "AC", "SK", "MG" */
	bool required;
};

/* Reads a SID key, checking its form; FILE:LINE errors. */
static int
twilio_sid_key(const struct config_section *sec,
    const struct twilio_sid_spec *k, const char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (config_section_str(sec, k->key, k->required, out, err, errlen) ==
	    -1)
		return -1;
	if (*out != NULL && !twilio_sid_is_valid(*out, k->prefix)) {
		snprintf(err, errlen,
		    "%s:%d: %s must be %s followed by 32 hex digits", sec->file,
		    config_section_line(sec, k->key), k->key, k->prefix);
		return -1;
	}
	return 0;
}

/* A secret key: optional or required, at most TWILIO_SECRET_MAX bytes. */
static int
twilio_secret_key(const struct config_section *sec, const char *key,
    bool required, const char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (config_section_str(sec, key, required, out, err, errlen) == -1)
		return -1;
	if (*out != NULL &&
	    (**out == '\0' || strlen(*out) > TWILIO_SECRET_MAX)) {
		snprintf(err, errlen, "%s:%d: %s must be 1 to %d characters",
		    sec->file, config_section_line(sec, key), key,
		    TWILIO_SECRET_MAX);
		return -1;
	}
	return 0;
}

/* "Authorization: Basic base64(user:pass)" into tw->auth_header. */
static void
twilio_auth_header(struct twilio *tw, const char *user, const char *pass)
{
	unsigned char b64[512];
	char *plain = xasprintf("%s:%s", user, pass);
	int n;

	/* base64 needs 4 bytes per 3: user 34 + pass 256 fits in 512 */
	n = EVP_EncodeBlock(b64, (const unsigned char *)plain,
	    (int)strlen(plain));
	OPENSSL_cleanse(plain, strlen(plain));
	free(plain);
	if (n < 0 ||
	    snprintf(tw->auth_header, sizeof(tw->auth_header),
		"Authorization: Basic %s", b64) >= (int)sizeof(tw->auth_header))
		fatalx("twilio_auth_header: credentials too long");
	OPENSSL_cleanse(b64, sizeof(b64));
}

/*
 * smshttp configure(): reads and checks the Twilio keys of sec. The pair
 * api_key_sid/api_key_secret must come together; a sender needs 'from'
 * or messaging_service_sid (or both: a specific sender of the pool).
 */
static int
twilio_configure(const struct config_section *sec, const char *from,
    void **prov, char *err, size_t errlen)
{
	const char *acct, *token, *key_sid, *key_secret, *svc;
	struct hmac *sig_key;
	struct twilio *tw;

	if (twilio_sid_key(sec,
		&(struct twilio_sid_spec){.key = "account_sid",
		    .prefix = "AC",
		    .required = true},
		&acct, err, errlen) == -1 ||
	    twilio_secret_key(sec, "auth_token", true, &token, err, errlen) ==
		-1 ||
	    twilio_sid_key(sec,
		&(struct twilio_sid_spec){.key = "api_key_sid", .prefix = "SK"},
		&key_sid, err, errlen) == -1 ||
	    twilio_secret_key(sec, "api_key_secret", false, &key_secret, err,
		errlen) == -1 ||
	    twilio_sid_key(sec,
		&(struct twilio_sid_spec){.key = "messaging_service_sid",
		    .prefix = "MG"},
		&svc, err, errlen) == -1)
		return -1;
	if ((key_sid == NULL) != (key_secret == NULL)) {
		snprintf(err, errlen,
		    "%s:%d: api_key_sid and api_key_secret go together",
		    sec->file,
		    config_section_line(sec,
			key_sid ? "api_key_sid" : "api_key_secret"));
		return -1;
	}
	if ((from == NULL || *from == '\0') && svc == NULL) {
		snprintf(err, errlen,
		    "%s:%d: [%s] needs from = ... or messaging_service_sid = ...",
		    sec->file, sec->line, sec->name);
		return -1;
	}
	if ((sig_key = hmac_new("SHA1", token, strlen(token))) == NULL) {
		snprintf(err, errlen, "%s:%d: [%s]: OpenSSL has no HMAC-SHA1",
		    sec->file, sec->line, sec->name);
		return -1;
	}
	tw = xcalloc(1, sizeof(*tw));
	tw->sig_key = sig_key;
	strlcpy(tw->account_sid, acct, sizeof(tw->account_sid));
	if (svc != NULL)
		strlcpy(tw->service_sid, svc, sizeof(tw->service_sid));
	tw->from = from && *from ? xstrdup(from) : NULL;
	if (key_sid != NULL)
		twilio_auth_header(tw, key_sid, key_secret);
	else
		twilio_auth_header(tw, acct, token);
	*prov = tw;
	return 0;
}

static void
twilio_prov_free(void *prov)
{
	struct twilio *tw = prov;

	if (tw == NULL)
		return;
	hmac_free(tw->sig_key);
	OPENSSL_cleanse(tw->auth_header, sizeof(tw->auth_header));
	free(tw->from);
	free(tw);
}

/* ValidityPeriod for a message expiring at 'expires_at'; 0 = omit. */
static long long
twilio_validity(int64_t expires_at, int64_t now)
{
	long long s;

	if (expires_at == 0)
		return 0;
	s = (long long)((expires_at - now) / 1000);
	return s >= 1 && s <= TWILIO_VALIDITY_MAX ? s : 0;
}

/*
 * smshttp build(): the Messages create request for msg. The message's
 * own from (if any) overrides the sender's; the status callback goes
 * along whenever the daemon has a public URL.
 */
static int
twilio_build(const void *prov, const struct out_msg *msg,
    const char *status_url, struct smshttp_req *req, char *err, size_t errlen)
{
	const struct twilio *tw = prov;
	const char *from = msg->from[0] ? msg->from : tw->from;
	long long validity;
	char num[32];

	if (msg->to[0] == '\0') {
		snprintf(err, errlen, "message has no To number");
		return -1;
	}
	req->method = "POST";
	strlcpy(req->path, "/2010-04-01/Accounts/", sizeof(req->path));
	strlcat(req->path, tw->account_sid, sizeof(req->path));
	strlcat(req->path, "/Messages.json", sizeof(req->path));
	req->content_type = "application/x-www-form-urlencoded";
	strlcpy(req->headers[0], tw->auth_header, sizeof(req->headers[0]));
	req->nheaders = 1;
	/* spaces as '+': the form serializer of WHATWG URL and Twilio's SDKs */
	smshttp_form_add(req->body, '\0', "To", msg->to, true);
	if (from != NULL)
		smshttp_form_add(req->body, '&', "From", from, true);
	if (tw->service_sid[0] != '\0')
		smshttp_form_add(req->body, '&', "MessagingServiceSid",
		    tw->service_sid, true);
	smshttp_form_add(req->body, '&', "Body", msg->body, true);
	if (status_url != NULL)
		smshttp_form_add(req->body, '&', "StatusCallback", status_url,
		    true);
	if ((validity = twilio_validity(msg->expires_at, msg_now_ms())) > 0) {
		snprintf(num, sizeof(num), "%lld", validity);
		smshttp_form_add(req->body, '&', "ValidityPeriod", num, true);
	}
	return 0;
}

/* A 4xx with Twilio code 'code' (or the HTTP status if it gave none). */
static void
twilio_classify_error(int code, const struct httpc_response *resp,
    struct send_result *res)
{
	size_t i;

	for (i = 0; i < sizeof(twilio_errors) / sizeof(twilio_errors[0]); i++) {
		if (twilio_errors[i].code != code)
			continue;
		send_result_set(res, twilio_errors[i].outcome, code,
		    "twilio %d: %s", code, twilio_errors[i].text);
		res->flags = twilio_errors[i].flags;
		if (res->outcome == SEND_TRANSIENT)
			res->retry_after = resp->retry_after;
		return;
	}
	send_result_set(res, SEND_PERMANENT, code, "twilio %d (HTTP %d)", code,
	    resp->status);
}

/* A 2xx: accepted when it names the new message's sid (NULL: none). */
static void
twilio_classify_ok(const char *sid, const struct httpc_response *resp,
    struct send_result *res)
{
	if (sid == NULL || *sid == '\0' ||
	    strlen(sid) >= sizeof(res->provider_id)) {
		/* Twilio took the request but we cannot tell what it made */
		send_result_set(res, SEND_TRANSIENT, resp->status,
		    "HTTP %d without a message sid", resp->status);
		res->uncertain = true;
		return;
	}
	send_result_set(res, SEND_ACCEPTED, resp->status, "accepted");
	strlcpy(res->provider_id, sid, sizeof(res->provider_id));
}

/*
 * The answer's "code" (0 unless a positive integer under a million) and
 * "sid" (into sid[], cut to sidlen - 1; "" when none). jpeek_object() reads
 * the usual answer without building it; whatever it is not sure of (or
 * a sid with escapes), jansson reads.
 */
static void
twilio_answer_fields(const struct httpc_response *resp, int *tcode, char *sid,
    size_t sidlen)
{
	struct jpeek_field f[2] = {{.name = "code", .type = JPEEK_INT},
	    {.name = "sid", .type = JPEEK_STRING}};
	json_t *j, *code;
	const char *s;
	size_t n;

	*tcode = 0;
	sid[0] = '\0';
	if (resp->body_len == 0)
		return;
	if (jpeek_object(resp->body, resp->body_len, f, 2) == 0 &&
	    !(f[1].found && f[1].s_escaped)) {
		if (f[0].found && f[0].i > 0 && f[0].i < 1000000)
			*tcode = (int)f[0].i;
		/* cut to sidlen - 1: a sid too long stays too long */
		if (f[1].found) {
			n = f[1].len < sidlen ? f[1].len : sidlen - 1;
			memcpy(sid, f[1].s, n);
			sid[n] = '\0';
		}
		return;
	}
	if ((j = json_loadb(resp->body, resp->body_len, 0, NULL)) == NULL)
		return;
	if ((code = json_object_get(j, "code")) != NULL &&
	    json_is_integer(code) && json_integer_value(code) > 0 &&
	    json_integer_value(code) < 1000000)
		*tcode = (int)json_integer_value(code);
	if ((s = json_string_value(json_object_get(j, "sid"))) != NULL)
		strlcpy(sid, s, sidlen);
	json_decref(j);
}

/*
 * smshttp classify(): transport failures, 429 and 5xx first (a 5xx
 * keeps Twilio's code when the body has one; an HTTP 429, Twilio's 20429,
 * keeps code 429, which the dispatcher's pacing keys on), then 2xx with a sid,
 * then 4xx by Twilio's code. Anything else (a 3xx: no redirects are
 * followed) is transient: a configuration problem, not the message's.
 */
static void
twilio_classify(const void *prov, const struct httpc_response *resp,
    struct send_result *res)
{
	/* one byte longer than provider_id: a longer sid still fails */
	char sid[sizeof(res->provider_id) + 1];
	int tcode;

	(void)prov;
	twilio_answer_fields(resp, &tcode, sid, sizeof(sid));
	if (smshttp_classify_transport(resp, res)) {
		/* 429 stays 429: the dispatcher slows the sender on it */
		if (tcode > 0 && resp->status != 429)
			res->code = tcode;
	} else if (resp->status >= 200 && resp->status < 300) {
		twilio_classify_ok(sid[0] != '\0' ? sid : NULL, resp, res);
	} else if (resp->status >= 400 && resp->status < 500) {
		twilio_classify_error(tcode > 0 ? tcode : resp->status, resp,
		    res);
	} else {
		send_result_set(res, SEND_TRANSIENT, resp->status,
		    "unexpected HTTP status %d", resp->status);
	}
}

/* Orders form fields by name, then value, bytewise (Twilio's sort). */
static int
twilio_kv_cmp(const void *a, const void *b)
{
	const struct webhook_kv *x = *(const struct webhook_kv *const *)a;
	const struct webhook_kv *y = *(const struct webhook_kv *const *)b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/*
 * base64(HMAC-SHA1(token, url [+ name value ...])) into out: the
 * parameters (POST only) sorted by name then value, each distinct
 * name/value pair once (Twilio's request_validator).
 */
static void
twilio_signature(struct hmac *key, const char *url,
    const struct webhook_req *req, bool with_params, char *out, size_t outlen)
{
	const struct webhook_kv **kv = NULL;
	struct evbuffer *data = evbuffer_new();
	unsigned char md[HMAC_OUT_MAX];
	size_t mdlen;
	size_t i, n = with_params ? req->nparams : 0;

	if (data == NULL)
		fatalx("twilio_signature: evbuffer_new failed");
	evbuffer_add(data, url, strlen(url));
	if (n > 0) {
		kv = xreallocarray(NULL, n, sizeof(*kv));
		for (i = 0; i < n; i++)
			kv[i] = &req->params[i];
		qsort(kv, n, sizeof(*kv), twilio_kv_cmp);
	}
	for (i = 0; i < n; i++) {
		if (i > 0 && twilio_kv_cmp(&kv[i - 1], &kv[i]) == 0)
			continue;
		evbuffer_add(data, kv[i]->key, strlen(kv[i]->key));
		evbuffer_add(data, kv[i]->value, strlen(kv[i]->value));
	}
	mdlen = hmac_sign(key, evbuffer_pullup(data, -1),
	    evbuffer_get_length(data), md);
	if (outlen < 4 * ((mdlen + 2) / 3) + 1)
		fatalx("twilio_signature: buffer too small");
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
	free(kv);
	evbuffer_free(data);
}

/*
 * The other spelling of url's port that Twilio may have signed: with an
 * explicit port, the URL without it; without one, the URL with the
 * scheme's default (:443, :80) added. Returns 0 and fills out, or -1.
 */
static int
twilio_url_port_variant(const char *url, char *out, size_t outlen)
{
	const char *auth, *end, *host, *colon = NULL, *p;
	bool https = strncmp(url, "https://", 8) == 0;

	if (!https && strncmp(url, "http://", 7) != 0)
		return -1;
	auth = url + (https ? 8 : 7);
	end = auth + strcspn(auth, "/?#");
	host = auth;
	for (p = auth; p < end; p++)
		if (*p == '@')
			host = p + 1;
	p = host;
	if (*p == '[' && (p = memchr(host, ']', (size_t)(end - host))) == NULL)
		return -1;
	for (; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon != NULL) {
		if (snprintf(out, outlen, "%.*s%s", (int)(colon - url), url,
			end) >= (int)outlen)
			return -1;
	} else if (snprintf(out, outlen, "%.*s:%s%s", (int)(end - url), url,
		       https ? "443" : "80", end) >= (int)outlen) {
		return -1;
	}
	return 0;
}

/* True if 'sig' is the signature of 'url' (constant-time compare). */
static bool
twilio_signature_is_valid(const struct twilio *tw, const char *url,
    const struct webhook_req *req, const char *sig)
{
	char want[TWILIO_SIG_MAX];
	size_t len;

	/* a GET carries its fields in the (signed) URL; others in the body */
	twilio_signature(tw->sig_key, url, req,
	    req->method == NULL || strcmp(req->method, "GET") != 0, want,
	    sizeof(want));
	len = strlen(want);
	return strlen(sig) == len && CRYPTO_memcmp(want, sig, len) == 0;
}

/*
 * adapter_ops.verify: X-Twilio-Signature over req->url (the public URL
 * as Twilio called it, query included) and, for a POST, the form
 * fields; the URL's port variant is accepted too, as Twilio's SDKs do.
 */
static int
twilio_verify(struct adapter *ad, const struct webhook_req *req, char *err,
    size_t errlen)
{
	const struct twilio *tw = smshttp_prov(ad);
	const char *sig = webhook_header(req, "X-Twilio-Signature");
	char alt[4096];

	if (sig == NULL || *sig == '\0') {
		snprintf(err, errlen, "missing X-Twilio-Signature");
		return -1;
	}
	if (tw == NULL || req->url == NULL) {
		snprintf(err, errlen, "no URL to check the signature against");
		return -1;
	}
	if (twilio_signature_is_valid(tw, req->url, req, sig) ||
	    (twilio_url_port_variant(req->url, alt, sizeof(alt)) == 0 &&
		twilio_signature_is_valid(tw, alt, req, sig)))
		return 0;
	snprintf(err, errlen, "X-Twilio-Signature does not match");
	return -1;
}

/* Copies field 'key' of req into dst; -1 if absent or too long. */
static int
twilio_field(const struct webhook_req *req, const char *key, char *dst,
    size_t dstlen, char *err, size_t errlen)
{
	const char *v = webhook_param(req, key);

	if (v == NULL || *v == '\0') {
		snprintf(err, errlen, "missing %s", key);
		return -1;
	}
	if (strlcpy(dst, v, dstlen) >= dstlen) {
		snprintf(err, errlen, "%s too long", key);
		return -1;
	}
	return 0;
}

/* A count field (NumSegments, NumMedia): 0 when absent or not a number. */
static unsigned
twilio_count(const struct webhook_req *req, const char *key)
{
	const char *v = webhook_param(req, key);
	char *end;
	unsigned long n;

	if (v == NULL || !isdigit((unsigned char)*v))
		return 0;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || n > 100000)
		return 0;
	return (unsigned)n;
}

/*
 * adapter_ops.parse_inbound: MessageSid, From and To are required; Body
 * may be absent (a picture alone) and is then empty.
 */
static int
twilio_parse_inbound(struct adapter *ad, const struct webhook_req *req,
    struct in_msg *out, char *err, size_t errlen)
{
	const char *body = webhook_param(req, "Body");

	(void)ad;
	memset(out, 0, sizeof(*out));
	if (twilio_field(req, "MessageSid", out->provider_id,
		sizeof(out->provider_id), err, errlen) == -1 ||
	    twilio_field(req, "From", out->from, sizeof(out->from), err,
		errlen) == -1 ||
	    twilio_field(req, "To", out->to, sizeof(out->to), err, errlen) ==
		-1)
		return -1;
	out->body = xstrdup(body ? body : "");
	out->segments = twilio_count(req, "NumSegments");
	out->num_media = twilio_count(req, "NumMedia");
	return 0;
}

/*
 * adapter_ops.parse_status: MessageSid + MessageStatus. Intermediate
 * states (and ones Twilio may add) are ignored: 1. ErrorCode becomes the
 * update's code.
 */
static int
twilio_parse_status(struct adapter *ad, const struct webhook_req *req,
    struct status_update *out, char *err, size_t errlen)
{
	const char *st = webhook_param(req, "MessageStatus");
	const char *ec = webhook_param(req, "ErrorCode");
	long code;
	size_t i;

	(void)ad;
	memset(out, 0, sizeof(*out));
	if (twilio_field(req, "MessageSid", out->provider_id,
		sizeof(out->provider_id), err, errlen) == -1)
		return -1;
	if (st == NULL || *st == '\0') {
		snprintf(err, errlen, "missing MessageStatus");
		return -1;
	}
	for (i = 0; i < sizeof(twilio_statuses) / sizeof(twilio_statuses[0]);
	     i++)
		if (strcmp(twilio_statuses[i].name, st) == 0)
			break;
	if (i == sizeof(twilio_statuses) / sizeof(twilio_statuses[0]) ||
	    twilio_statuses[i].status == -1)
		return 1;
	out->status = (enum msg_status)twilio_statuses[i].status;
	if (ec != NULL && isdigit((unsigned char)*ec) &&
	    (code = strtol(ec, NULL, 10)) > 0 && code < 1000000)
		out->code = (int)code; /* Twilio codes have 5 digits */
	if (out->code != 0)
		snprintf(out->text, sizeof(out->text), "twilio %s: error %d",
		    st, out->code);
	else if (out->status == MSG_ST_FAILED ||
	    out->status == MSG_ST_UNDELIVERED)
		snprintf(out->text, sizeof(out->text), "twilio %s", st);
	return 0;
}

/* Inbound: empty TwiML (text/xml); status: an empty 200 (text/plain). */
static const char *
twilio_reply_body(struct adapter *ad, enum webhook_kind kind,
    const char **ctype)
{
	(void)ad;
	if (kind == WEBHOOK_INBOUND) {
		*ctype = "text/xml";
		return TWILIO_TWIML_EMPTY;
	}
	*ctype = "text/plain";
	return "";
}
