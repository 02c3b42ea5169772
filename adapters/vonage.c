/*
 * vonage.c - the Vonage (Nexmo) SMS API adapter (doc/providers.md): pure
 * request building and answer classification for the shared HTTP driver
 * (smshttp.c), plus the inbound and delivery-receipt webhooks.
 *
 * Send: POST {base_url}/sms/json, form-encoded, with api_key/api_secret
 * in the body (Vonage's own design), to/from as digits without '+',
 * type=unicode when the text is not GSM-7 (else characters are lost),
 * callback = the sender's status URL and client-ref = our message id, so
 * every part's receipt maps back to the message. Vonage answers 200 even
 * when it refuses: every element of messages[] is checked.
 *
 * Keys of [sender NAME] with provider = vonage:
 *   api_key, api_secret  REST credentials (required)
 *   signature_secret     when set, every webhook must be signed with it
 *   signature_method     md5hash (default), md5, sha1, sha256, sha512
 * Without signature_secret Vonage signs nothing; webhooks are then only
 * checked for our api-key, which keeps out noise but is no proof of
 * origin (say so to operators: enable signed webhooks).
 *
 * Webhooks arrive as GET (query), POST form or POST JSON, as configured
 * in Vonage's dashboard; all three are read through vonage_fields.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "hmac.h"
#include "log.h"
#include "smshttp.h"
#include "smstext.h"
#include "xmalloc.h"

/* Vonage's ttl bounds in ms (sms.yml): 20 s to 7 days. */
#define VONAGE_TTL_MIN 20000
#define VONAGE_TTL_MAX 604800000
/* How far a signed webhook's timestamp may be from our clock, seconds. */
#define VONAGE_SIG_WINDOW 300
/* The longest hex digest we compare (SHA-512). */
#define VONAGE_HEX_MAX (EVP_MAX_MD_SIZE * 2 + 1)

enum vonage_sigm {
	VONAGE_SIG_MD5HASH = 0, /* md5(base + secret) */
	VONAGE_SIG_MD5,		/* the HMACs below: hmac(secret, base) */
	VONAGE_SIG_SHA1,
	VONAGE_SIG_SHA256,
	VONAGE_SIG_SHA512,
};

static const char *const vonage_sigm_names[] = {"md5hash", "md5", "sha1",
    "sha256", "sha512", NULL};
/* The digests of the HMAC methods, as OpenSSL names them. */
static const char *const vonage_sigm_digests[] = {NULL, "MD5", "SHA1", "SHA256",
    "SHA512"};

struct vonage {
	char *api_key;
	char *api_secret;
	char *from;	  /* the sender's default; NULL = none */
	char *sig_secret; /* NULL = unsigned webhooks */
	enum vonage_sigm sig_method;
	struct hmac *sig_key; /* under sig_secret, the HMAC methods */
};

/* A webhook's fields, whichever way Vonage sent them. */
struct vonage_fields {
	const struct webhook_kv *kv;
	size_t n;
	struct webhook_kv *own; /* JSON mode: our array */
	char **tmp;		/* JSON mode: formatted numbers */
	json_t *root;
};

/* One messages[] element's status code and our reading of it. */
struct vonage_code {
	int status;
	enum send_outcome outcome;
	const char *what;
};

static int vonage_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int vonage_configure(const struct config_section *, const char *,
    void **, char *, size_t);
static int vonage_configure_sig(const struct config_section *, struct vonage *,
    char *, size_t);
static void vonage_prov_free(void *);
static int vonage_build(const void *, const struct out_msg *, const char *,
    struct smshttp_req *, char *, size_t);
static void vonage_classify(const void *, const struct httpc_response *,
    struct send_result *);
static void vonage_classify_messages(json_t *, struct send_result *);
static int vonage_verify(struct adapter *, const struct webhook_req *, char *,
    size_t);
static int vonage_verify_sig(const struct vonage *,
    const struct vonage_fields *, int64_t, char *, size_t);
static int vonage_parse_inbound(struct adapter *, const struct webhook_req *,
    struct in_msg *, char *, size_t);
static int vonage_inbound_concat(const struct vonage_fields *, struct in_msg *,
    char *, size_t);
static int vonage_parse_status(struct adapter *, const struct webhook_req *,
    struct status_update *, char *, size_t);
static const char *vonage_reply_body(struct adapter *, enum webhook_kind,
    const char **);
static int vonage_fields_load(const struct webhook_req *,
    struct vonage_fields *, char *, size_t);
static void vonage_fields_free(struct vonage_fields *);
static const char *vonage_field(const struct vonage_fields *, const char *);
static int vonage_sig_compute(const struct vonage *,
    const struct vonage_fields *, char *, size_t);
static void vonage_sig_base(const struct vonage_fields *, struct evbuffer *);
static bool vonage_hex_equal(const char *, const char *);
static int vonage_status_of(const json_t *);
static const struct vonage_code *vonage_code_lookup(int);

static const char *const vonage_keys[] = {"api_key", "api_secret",
    "signature_secret", "signature_method", NULL};

const struct smshttp_provider vonage_provider = {
    .name = "vonage",
    .default_base_url = "https://rest.nexmo.com",
    .keys = vonage_keys,
    .configure = vonage_configure,
    .prov_free = vonage_prov_free,
    .build = vonage_build,
    .classify = vonage_classify,
};

const struct adapter_ops vonage_ops = {
    .name = "vonage",
    .channel = CHANNEL_SMS,
    .init = vonage_init,
    .send = smshttp_send,
    .drain = smshttp_drain,
    .free = smshttp_free,
    .verify = vonage_verify,
    .parse_inbound = vonage_parse_inbound,
    .parse_status = vonage_parse_status,
    .reply_body = vonage_reply_body,
};

/*
 * messages[].status codes (sms.yml x-errors). Only throttling (1) and
 * Vonage's internal error (5) are worth a retry; the rest are fixed by a
 * person (credentials, account, sender, number), so they fail the
 * message with the code. Codes not listed are permanent too.
 */
static const struct vonage_code vonage_codes[] = {
    {1, SEND_TRANSIENT, "throttled"},
    {2, SEND_PERMANENT, "missing parameters"},
    {3, SEND_PERMANENT, "invalid parameters"},
    {4, SEND_PERMANENT, "invalid credentials"},
    {5, SEND_TRANSIENT, "internal error"},
    {6, SEND_PERMANENT, "invalid message"},
    {7, SEND_PERMANENT, "number barred"},
    {8, SEND_PERMANENT, "partner account barred"},
    {9, SEND_PERMANENT, "partner quota violation"},
    {10, SEND_PERMANENT, "too many existing binds"},
    {11, SEND_PERMANENT, "account not enabled for HTTP"},
    {12, SEND_PERMANENT, "message too long"},
    {14, SEND_PERMANENT, "invalid signature"},
    {15, SEND_PERMANENT, "invalid sender address"},
    {22, SEND_PERMANENT, "invalid network code"},
    {23, SEND_PERMANENT, "invalid callback URL"},
    {29, SEND_PERMANENT, "non-whitelisted destination"},
    {32, SEND_PERMANENT, "signature and api secret disallowed"},
    {33, SEND_PERMANENT, "number de-activated"},
    {0, SEND_PERMANENT, NULL},
};

static int
vonage_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	return smshttp_init(ad, sec, &vonage_provider, err, errlen);
}

static int
vonage_configure(const struct config_section *sec, const char *from,
    void **prov, char *err, size_t errlen)
{
	const char *key = NULL, *secret = NULL;
	struct vonage *v;

	if (sec == NULL) {
		snprintf(err, errlen,
		    "provider vonage needs a [sender] section");
		return -1;
	}
	if (config_section_str(sec, "api_key", true, &key, err, errlen) == -1 ||
	    config_section_str(sec, "api_secret", true, &secret, err, errlen) ==
		-1)
		return -1;
	if (from == NULL || *from == '\0') {
		snprintf(err, errlen,
		    "%s:%d: [%s] needs from = ... (provider "
		    "vonage has no default sender)",
		    sec->file, config_section_line(sec, "from"), sec->name);
		return -1;
	}
	v = xcalloc(1, sizeof(*v));
	if (vonage_configure_sig(sec, v, err, errlen) == -1) {
		vonage_prov_free(v);
		return -1;
	}
	v->api_key = xstrdup(key);
	v->api_secret = xstrdup(secret);
	v->from = xstrdup(from);
	*prov = v;
	return 0;
}

/* Reads signature_secret and signature_method into v. */
static int
vonage_configure_sig(const struct config_section *sec, struct vonage *v,
    char *err, size_t errlen)
{
	const char *secret = NULL, *method = NULL;
	size_t i;

	if (config_section_str(sec, "signature_secret", false, &secret, err,
		errlen) == -1 ||
	    config_section_str(sec, "signature_method", false, &method, err,
		errlen) == -1)
		return -1;
	if (method != NULL && secret == NULL) {
		snprintf(err, errlen,
		    "%s:%d: signature_method needs signature_secret", sec->file,
		    config_section_line(sec, "signature_method"));
		return -1;
	}
	if (secret != NULL && *secret == '\0') {
		snprintf(err, errlen,
		    "%s:%d: signature_secret must not be empty", sec->file,
		    config_section_line(sec, "signature_secret"));
		return -1;
	}
	if (method != NULL) {
		for (i = 0; vonage_sigm_names[i] != NULL; i++)
			if (strcmp(method, vonage_sigm_names[i]) == 0)
				break;
		if (vonage_sigm_names[i] == NULL) {
			snprintf(err, errlen,
			    "%s:%d: signature_method must be md5hash, md5, "
			    "sha1, sha256 or sha512",
			    sec->file,
			    config_section_line(sec, "signature_method"));
			return -1;
		}
		v->sig_method = (enum vonage_sigm)i;
	}
	if (secret == NULL)
		return 0;
	v->sig_secret = xstrdup(secret);
	if (v->sig_method != VONAGE_SIG_MD5HASH &&
	    (v->sig_key = hmac_new(vonage_sigm_digests[v->sig_method], secret,
		 strlen(secret))) == NULL) {
		snprintf(err, errlen,
		    "%s:%d: this OpenSSL has no HMAC-%s (a FIPS setup has no "
		    "MD5): choose another signature_method in Vonage's "
		    "dashboard and here",
		    sec->file, config_section_line(sec, "signature_method"),
		    vonage_sigm_digests[v->sig_method]);
		return -1;
	}
	return 0;
}

static void
vonage_prov_free(void *prov)
{
	struct vonage *v = prov;

	if (v == NULL)
		return;
	free(v->api_key);
	free(v->api_secret);
	free(v->from);
	if (v->sig_secret != NULL)
		OPENSSL_cleanse(v->sig_secret, strlen(v->sig_secret));
	free(v->sig_secret);
	hmac_free(v->sig_key);
	free(v);
}

/*
 * Builds the form for one message. The text travels as UTF-8; with any
 * character outside GSM-7 Vonage must be told type=unicode. ttl follows
 * the message's expiry: Vonage keeps it queued no longer than we would
 * still want it (below Vonage's 20 s minimum we ask for the minimum;
 * beyond its 7-day maximum we leave Vonage's 72 h default).
 */
static int
vonage_build(const void *prov, const struct out_msg *msg,
    const char *status_url, struct smshttp_req *req, char *err, size_t errlen)
{
	const struct vonage *v = prov;
	char to[MSG_ADDR_MAX], from[MSG_ADDR_MAX], num[32];
	const char *src = msg->from[0] != '\0' ? msg->from : v->from;
	int64_t ttl;

	if (smshttp_digits(msg->to, to, sizeof(to)) == -1) {
		snprintf(err, errlen, "vonage: invalid destination number");
		return -1;
	}
	/* A number sender loses its '+'; an alphanumeric one is kept. */
	if (smshttp_digits(src, from, sizeof(from)) == -1)
		strlcpy(from, src, sizeof(from));
	req->method = "POST";
	strlcpy(req->path, "/sms/json", sizeof(req->path));
	req->content_type = "application/x-www-form-urlencoded";
	smshttp_form_add(req->body, '\0', "api_key", v->api_key, false);
	smshttp_form_add(req->body, '&', "api_secret", v->api_secret, false);
	smshttp_form_add(req->body, '&', "from", from, false);
	smshttp_form_add(req->body, '&', "to", to, false);
	smshttp_form_add(req->body, '&', "text", msg->body, false);
	if (!smstext_is_gsm7(msg->body))
		smshttp_form_add(req->body, '&', "type", "unicode", false);
	if (status_url != NULL)
		smshttp_form_add(req->body, '&', "callback", status_url, false);
	snprintf(num, sizeof(num), "%lld", (long long)msg->id);
	smshttp_form_add(req->body, '&', "client-ref", num, false);
	if (msg->expires_at > 0) {
		ttl = msg->expires_at - msg_now_ms();
		if (ttl < VONAGE_TTL_MIN)
			ttl = VONAGE_TTL_MIN;
		if (ttl <= VONAGE_TTL_MAX) {
			snprintf(num, sizeof(num), "%lld", (long long)ttl);
			smshttp_form_add(req->body, '&', "ttl", num, false);
		}
	}
	return 0;
}

/*
 * Classifies Vonage's answer. Transport failures, 429 and 5xx are the
 * driver's; any other non-200 is permanent. A 200 must carry messages[]
 * (one element per part); an unreadable 200 reached Vonage, so it is
 * transient and uncertain.
 */
static void
vonage_classify(const void *prov, const struct httpc_response *resp,
    struct send_result *res)
{
	json_t *root, *msgs;

	(void)prov;
	if (smshttp_classify_transport(resp, res))
		return;
	if (resp->status != 200) {
		send_result_set(res, SEND_PERMANENT, resp->status,
		    "vonage http %d", resp->status);
		return;
	}
	root = json_loadb(resp->body, resp->body_len, 0, NULL);
	msgs = json_object_get(root, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		send_result_set(res, SEND_TRANSIENT, resp->status,
		    "vonage: unreadable answer");
		res->uncertain = true;
	} else
		vonage_classify_messages(msgs, res);
	json_decref(root);
}

/*
 * Every part must have status "0". The first failing part decides the
 * outcome; when another part was already accepted, a retry would repeat
 * it, so the result is also marked uncertain.
 */
static void
vonage_classify_messages(json_t *msgs, struct send_result *res)
{
	const struct vonage_code *c;
	const char *id = NULL;
	bool some_ok = false, unreadable = false;
	json_t *m;
	size_t i;
	int code = -1, n;

	json_array_foreach(msgs, i, m) {
		n = vonage_status_of(json_object_get(m, "status"));
		if (n == 0) {
			some_ok = true;
			if (id == NULL)
				id = json_string_value(
				    json_object_get(m, "message-id"));
		} else if (n < 0)
			unreadable = true;
		else if (code == -1)
			code = n;
	}
	if (unreadable) {
		send_result_set(res, SEND_TRANSIENT, 200,
		    "vonage: unreadable part status");
		res->uncertain = true;
		return;
	}
	if (code == -1) {
		send_result_set(res, SEND_ACCEPTED, 0, NULL);
		if (id != NULL)
			strlcpy(res->provider_id, id, sizeof(res->provider_id));
		return;
	}
	c = vonage_code_lookup(code);
	send_result_set(res, c->outcome, code, "vonage status %d: %s", code,
	    c->what);
	res->uncertain = some_ok;
	if (code == 1) /* "Throttled": slow the sender down */
		res->flags |= SEND_F_RATE_LIMITED;
	/* invalid credentials, account barred, out of credit: the sender is
	 * refused, not the message */
	if (code == 4 || code == 8 || code == 9) {
		res->outcome = SEND_TRANSIENT;
		res->flags |= SEND_F_SENDER_BROKEN;
	}
}

/* A messages[] status: Vonage sends "0"; a number is read too; -1 if neither.
 */
static int
vonage_status_of(const json_t *st)
{
	const char *s = json_string_value(st);

	if (json_is_integer(st))
		return (int)json_integer_value(st);
	if (s == NULL || *s == '\0' || strlen(s) > 6 ||
	    strspn(s, "0123456789") != strlen(s))
		return -1;
	return atoi(s);
}

static const struct vonage_code *
vonage_code_lookup(int status)
{
	static const struct vonage_code other = {0, SEND_PERMANENT, "rejected"};
	size_t i;

	for (i = 0; vonage_codes[i].what != NULL; i++)
		if (vonage_codes[i].status == status)
			return &vonage_codes[i];
	return &other;
}

/*
 * Authenticates a webhook. With signature_secret: 'sig' must match and
 * 'timestamp' be within VONAGE_SIG_WINDOW of req->now. Without: the
 * api-key Vonage includes must be ours (not a proof of origin, see the
 * top of the file).
 */
static int
vonage_verify(struct adapter *ad, const struct webhook_req *req, char *err,
    size_t errlen)
{
	const struct vonage *v = smshttp_prov(ad);
	struct vonage_fields f;
	const char *key;
	int rc = -1;

	if (vonage_fields_load(req, &f, err, errlen) == -1)
		return -1;
	if (v->sig_secret != NULL)
		rc = vonage_verify_sig(v, &f, req->now, err, errlen);
	else if ((key = vonage_field(&f, "api-key")) == NULL)
		snprintf(err, errlen, "vonage: no api-key in webhook");
	else if (strlen(key) != strlen(v->api_key) ||
	    CRYPTO_memcmp(key, v->api_key, strlen(key)) != 0)
		snprintf(err, errlen, "vonage: api-key is not ours");
	else
		rc = 0;
	vonage_fields_free(&f);
	return rc;
}

static int
vonage_verify_sig(const struct vonage *v, const struct vonage_fields *f,
    int64_t now_ms, char *err, size_t errlen)
{
	char want[VONAGE_HEX_MAX];
	const char *sig = vonage_field(f, "sig");
	const char *ts = vonage_field(f, "timestamp");
	long long t;

	if (sig == NULL) {
		snprintf(err, errlen, "vonage: unsigned webhook");
		return -1;
	}
	if (ts == NULL || *ts == '\0' ||
	    strspn(ts, "0123456789") != strlen(ts) || strlen(ts) > 12) {
		snprintf(err, errlen, "vonage: missing or bad timestamp");
		return -1;
	}
	t = atoll(ts);
	if (now_ms / 1000 - t > VONAGE_SIG_WINDOW ||
	    t - now_ms / 1000 > VONAGE_SIG_WINDOW) {
		snprintf(err, errlen, "vonage: stale timestamp");
		return -1;
	}
	if (vonage_sig_compute(v, f, want, sizeof(want)) == -1 ||
	    !vonage_hex_equal(sig, want)) {
		snprintf(err, errlen, "vonage: signature mismatch");
		return -1;
	}
	return 0;
}

/*
 * The signature as Vonage's PHP core SDK computes it
 * (src/Client/Signature.php): md5hash = md5(base + secret), the other
 * methods HMAC(secret, base); lowercase hex into hex.
 */
static int
vonage_sig_compute(const struct vonage *v, const struct vonage_fields *f,
    char *hex, size_t hexlen)
{
	static const char *const hexd = "0123456789abcdef";
	unsigned char out[HMAC_OUT_MAX], *base;
	struct evbuffer *b = evbuffer_new();
	unsigned int outlen = 0, i;

	if (b == NULL)
		fatalx("vonage_sig_compute: evbuffer_new failed");
	vonage_sig_base(f, b);
	if (v->sig_method == VONAGE_SIG_MD5HASH) {
		evbuffer_add(b, v->sig_secret, strlen(v->sig_secret));
		base = evbuffer_pullup(b, -1);
		if (EVP_Digest(base, evbuffer_get_length(b), out, &outlen,
			EVP_md5(), NULL) != 1)
			outlen = 0;
	} else {
		base = evbuffer_pullup(b, -1);
		outlen = (unsigned)hmac_sign(v->sig_key, base,
		    evbuffer_get_length(b), out);
	}
	evbuffer_free(b);
	if (outlen == 0 || outlen * 2 + 1 > hexlen)
		return -1;
	for (i = 0; i < outlen; i++) {
		hex[i * 2] = hexd[out[i] >> 4];
		hex[i * 2 + 1] = hexd[out[i] & 0xf];
	}
	hex[outlen * 2] = '\0';
	return 0;
}

/*
 * The base string of the PHP core SDK: every field but 'sig', sorted by
 * name bytewise, '&' and '=' inside values replaced by '_', joined as
 * "&k1=v1&k2=v2..." with a leading '&'. The Node SDK (v3
 * packages/auth/lib/auth.ts) drops the leading '&', and the two
 * implementations disagree: we follow the PHP core,
 * whose test vectors are real signed webhooks (test/Client/
 * SignatureTest.php), and check against them in check_vonage.c.
 */
static void
vonage_sig_base(const struct vonage_fields *f, struct evbuffer *b)
{
	const struct webhook_kv **sorted, *t;
	size_t i, j, k = 0;
	const char *p;

	sorted = xcalloc(f->n + 1, sizeof(*sorted));
	for (i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, "sig") != 0)
			sorted[k++] = &f->kv[i];
	/* Insertion sort: stable, and webhooks carry a dozen fields. */
	for (i = 1; i < k; i++)
		for (j = i;
		     j > 0 && strcmp(sorted[j - 1]->key, sorted[j]->key) > 0;
		     j--) {
			t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	for (i = 0; i < k; i++) {
		evbuffer_add_printf(b, "&%s=", sorted[i]->key);
		for (p = sorted[i]->value; *p != '\0'; p++)
			evbuffer_add(b, *p == '&' || *p == '=' ? "_" : p, 1);
	}
	free(sorted);
}

/* Case-insensitive hex comparison in constant time (want is lowercase). */
static bool
vonage_hex_equal(const char *got, const char *want)
{
	char low[VONAGE_HEX_MAX];
	size_t i, n = strlen(want);

	if (strlen(got) != n || n >= sizeof(low))
		return false;
	for (i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)got[i]);
	return CRYPTO_memcmp(low, want, n) == 0;
}

/*
 * Inbound SMS: msisdn is the member, to our number, messageId the
 * provider's id. A part of a long message comes alone with concat=true
 * and its ref/part/total; the core reassembles. Binary messages carry no
 * text and are ignored.
 */
static int
vonage_parse_inbound(struct adapter *ad, const struct webhook_req *req,
    struct in_msg *out, char *err, size_t errlen)
{
	struct vonage_fields f;
	const char *msisdn, *to, *id, *text, *type;
	int rc = -1;

	(void)ad;
	if (vonage_fields_load(req, &f, err, errlen) == -1)
		return -1;
	msisdn = vonage_field(&f, "msisdn");
	to = vonage_field(&f, "to");
	id = vonage_field(&f, "messageId");
	text = vonage_field(&f, "text");
	type = vonage_field(&f, "type");
	if (type != NULL && strcmp(type, "binary") == 0)
		rc = 1;
	else if (msisdn == NULL || *msisdn == '\0' || to == NULL ||
	    id == NULL || *id == '\0' || text == NULL)
		snprintf(err, errlen,
		    "vonage: inbound lacks msisdn, to, "
		    "messageId or text");
	else if (strlen(id) >= sizeof(out->provider_id))
		snprintf(err, errlen, "vonage: messageId too long");
	else if (vonage_inbound_concat(&f, out, err, errlen) == 0) {
		strlcpy(out->provider_id, id, sizeof(out->provider_id));
		smshttp_address_in(msisdn, out->from, sizeof(out->from));
		smshttp_address_in(to, out->to, sizeof(out->to));
		out->body = xstrdup(text);
		rc = 0;
	}
	vonage_fields_free(&f);
	return rc;
}

/* Fills the concat fields of out when the message is one part of many. */
static int
vonage_inbound_concat(const struct vonage_fields *f, struct in_msg *out,
    char *err, size_t errlen)
{
	const char *concat = vonage_field(f, "concat");
	const char *ref = vonage_field(f, "concat-ref");
	const char *part = vonage_field(f, "concat-part");
	const char *total = vonage_field(f, "concat-total");
	int p, t;

	if (concat == NULL || strcmp(concat, "true") != 0)
		return 0;
	/* The part number is one octet of the UDH: 1..255. */
	if (ref == NULL || *ref == '\0' ||
	    strlen(ref) >= sizeof(out->concat_ref) || part == NULL ||
	    total == NULL || strspn(part, "0123456789") != strlen(part) ||
	    strspn(total, "0123456789") != strlen(total) || strlen(part) > 3 ||
	    strlen(total) > 3 || (p = atoi(part)) < 1 ||
	    (t = atoi(total)) < 1 || t > 255 || p > t) {
		snprintf(err, errlen, "vonage: bad concat fields");
		return -1;
	}
	strlcpy(out->concat_ref, ref, sizeof(out->concat_ref));
	out->concat_part = (unsigned)p;
	out->concat_total = (unsigned)t;
	return 0;
}

/*
 * Delivery receipt. Statuses (sms.yml): delivered; expired and failed
 * (the carrier took the message but could not deliver it: undelivered);
 * rejected (refused by Vonage or the carrier before delivery: failed);
 * accepted, buffered and unknown are not final and are ignored.
 * client-ref is our message id, echoed in every part's receipt.
 */
static int
vonage_parse_status(struct adapter *ad, const struct webhook_req *req,
    struct status_update *out, char *err, size_t errlen)
{
	struct vonage_fields f;
	const char *id, *st, *ec, *ref;
	int rc = -1;

	(void)ad;
	if (vonage_fields_load(req, &f, err, errlen) == -1)
		return -1;
	id = vonage_field(&f, "messageId");
	st = vonage_field(&f, "status");
	ec = vonage_field(&f, "err-code");
	ref = vonage_field(&f, "client-ref");
	if (id == NULL || *id == '\0' || st == NULL ||
	    strlen(id) >= sizeof(out->provider_id)) {
		snprintf(err, errlen,
		    "vonage: receipt lacks messageId or "
		    "status");
		goto done;
	}
	rc = 0;
	if (strcmp(st, "delivered") == 0)
		out->status = MSG_ST_DELIVERED;
	else if (strcmp(st, "expired") == 0 || strcmp(st, "failed") == 0)
		out->status = MSG_ST_UNDELIVERED;
	else if (strcmp(st, "rejected") == 0)
		out->status = MSG_ST_FAILED;
	else
		rc = 1; /* accepted, buffered, unknown, anything new */
	if (rc == 0) {
		strlcpy(out->provider_id, id, sizeof(out->provider_id));
		if (ec != NULL && strspn(ec, "0123456789") == strlen(ec) &&
		    strlen(ec) < 10)
			out->code = atoi(ec);
		if (ref != NULL && *ref != '\0' && strlen(ref) < 19 &&
		    strspn(ref, "0123456789") == strlen(ref))
			out->msg_id = atoll(ref);
		snprintf(out->text, sizeof(out->text), "vonage %s", st);
	}
done:
	vonage_fields_free(&f);
	return rc;
}

/* Vonage only needs a 2xx; anything else makes it resend for 24 h. */
static const char *
vonage_reply_body(struct adapter *ad, enum webhook_kind kind,
    const char **ctype)
{
	(void)ad;
	(void)kind;
	*ctype = "text/plain";
	return "";
}

/*
 * Collects the webhook's fields: the decoded params (GET query or POST
 * form), or, when there are none and the body is a JSON object
 * (Vonage's POST-JSON method), its top-level scalar members as text.
 */
static int
vonage_fields_load(const struct webhook_req *req, struct vonage_fields *f,
    char *err, size_t errlen)
{
	const char *key;
	json_t *val;
	size_t i = 0;

	memset(f, 0, sizeof(*f));
	if (req->nparams > 0 || req->body == NULL || req->body_len == 0 ||
	    req->body[strspn(req->body, " \t\r\n")] != '{') {
		f->kv = req->params;
		f->n = req->nparams;
		return 0;
	}
	f->root = json_loadb(req->body, req->body_len, 0, NULL);
	if (!json_is_object(f->root)) {
		json_decref(f->root);
		f->root = NULL;
		snprintf(err, errlen, "vonage: unreadable JSON webhook");
		return -1;
	}
	f->own = xcalloc(json_object_size(f->root) + 1, sizeof(*f->own));
	f->tmp = xcalloc(json_object_size(f->root) + 1, sizeof(*f->tmp));
	json_object_foreach(f->root, key, val) {
		if (json_is_string(val))
			f->own[i].value = json_string_value(val);
		else if (json_is_integer(val))
			f->own[i].value = f->tmp[i] = xasprintf("%lld",
			    (long long)json_integer_value(val));
		else if (json_is_boolean(val))
			f->own[i].value = json_is_true(val) ? "true" : "false";
		else
			continue; /* null, real, objects: not signed fields */
		f->own[i++].key = key;
	}
	f->kv = f->own;
	f->n = i;
	return 0;
}

static void
vonage_fields_free(struct vonage_fields *f)
{
	size_t i;

	if (f->tmp != NULL)
		for (i = 0; i < f->n; i++)
			free(f->tmp[i]);
	free(f->tmp);
	free(f->own);
	json_decref(f->root);
	memset(f, 0, sizeof(*f));
}

/* The first value of 'key', or NULL. */
static const char *
vonage_field(const struct vonage_fields *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, key) == 0)
			return f->kv[i].value;
	return NULL;
}
