/*
 * plivo.c - the Plivo Message API adapter (doc/providers.md): pure request
 * building and answer classification for the shared HTTP driver
 * (smshttp.c), plus the inbound (message_url) and status webhooks.
 *
 * Send: POST {base_url}/v1/Account/{auth_id}/Message/ with HTTP Basic
 * auth_id:auth_token and a JSON body {src, dst, text, url, method}; dst
 * is digits only (Plivo joins several recipients with '<', so nothing
 * but digits may reach it). Plivo picks GSM-7 or UCS-2 itself. Success
 * is 202 with message_uuid[] (an array); 4xx is final, 429/5xx retried.
 *
 * Keys of [sender NAME] with provider = plivo:
 *   auth_id, auth_token  REST credentials (required); the token also
 *                        signs webhooks
 *
 * Webhooks are form POSTs signed with X-Plivo-Signature-V3 (preferred)
 * or X-Plivo-Signature-V2, both HMAC-SHA256 with the auth token and a
 * nonce (plivo-python plivo/utils/signature_v3.py and
 * plivo/utils/__init__.py). Neither carries a timestamp, so a captured
 * request could be replayed; the core's de-duplication by MessageUUID
 * and forward-only states keep a replay harmless.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "hmac.h"
#include "log.h"
#include "smshttp.h"
#include "xmalloc.h"

/* base64 of an HMAC-SHA256: 32 bytes -> 44 characters + NUL. */
#define PLIVO_SIG_LEN 45
/* Provider error text kept in send_result.text. */
#define PLIVO_ERR_MAX 120

struct plivo {
	char *auth_id;
	struct hmac *sig_key; /* HMAC-SHA256 under auth_token: webhooks */
	char *from;	      /* the sender's default */
	char auth[512];	      /* "Authorization: Basic ..." */
};

/* A decoded name/value pair we own (query fields for V3). */
struct plivo_kv {
	char *key;
	char *value;
};

static int plivo_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int plivo_configure(const struct config_section *, const char *, void **,
    char *, size_t);
static void plivo_prov_free(void *);
static int plivo_build(const void *, const struct out_msg *, const char *,
    struct smshttp_req *, char *, size_t);
static void plivo_classify(const void *, const struct httpc_response *,
    struct send_result *);
static int plivo_verify(struct adapter *, const struct webhook_req *, char *,
    size_t);
static int plivo_verify_v3(const struct plivo *, const struct webhook_req *,
    const char *, const char *);
static int plivo_verify_v2(const struct plivo *, const struct webhook_req *,
    const char *, const char *);
static void plivo_v3_base(const struct webhook_req *, struct evbuffer *);
static size_t plivo_query_decode(const char *, struct plivo_kv **);
static int plivo_kv_cmp(const void *, const void *);
static void plivo_hmac_b64(struct hmac *, const void *, size_t, char *);
static bool plivo_sig_in(const char *, const char *);
static int plivo_parse_inbound(struct adapter *, const struct webhook_req *,
    struct in_msg *, char *, size_t);
static int plivo_parse_status(struct adapter *, const struct webhook_req *,
    struct status_update *, char *, size_t);
static const char *plivo_reply_body(struct adapter *, enum webhook_kind,
    const char **);
static bool plivo_is_uint(const char *, size_t);
static void plivo_scrub(const char *, char *, size_t);

static const char *const plivo_keys[] = {"auth_id", "auth_token", NULL};

const struct smshttp_provider plivo_provider = {
    .name = "plivo",
    .default_base_url = "https://api.plivo.com",
    .keys = plivo_keys,
    .configure = plivo_configure,
    .prov_free = plivo_prov_free,
    .build = plivo_build,
    .classify = plivo_classify,
};

const struct adapter_ops plivo_ops = {
    .name = "plivo",
    .channel = CHANNEL_SMS,
    .init = plivo_init,
    .send = smshttp_send,
    .drain = smshttp_drain,
    .free = smshttp_free,
    .verify = plivo_verify,
    .parse_inbound = plivo_parse_inbound,
    .parse_status = plivo_parse_status,
    .reply_body = plivo_reply_body,
};

static int
plivo_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	return smshttp_init(ad, sec, &plivo_provider, err, errlen);
}

/*
 * Reads the credentials and precomputes the Basic header. auth_id goes
 * into the URL path, so it must be the alphanumeric id Plivo issues.
 */
static int
plivo_configure(const struct config_section *sec, const char *from, void **prov,
    char *err, size_t errlen)
{
	const char *id = NULL, *token = NULL;
	unsigned char b64[400];
	struct hmac *sig_key;
	struct plivo *p;
	char *pair;

	if (sec == NULL) {
		snprintf(err, errlen,
		    "provider plivo needs a [sender] section");
		return -1;
	}
	if (config_section_str(sec, "auth_id", true, &id, err, errlen) == -1 ||
	    config_section_str(sec, "auth_token", true, &token, err, errlen) ==
		-1)
		return -1;
	/* The id lands in the URL path; the Basic header has 512 bytes. */
	if (strlen(id) > 64 ||
	    strspn(id,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789") != strlen(id)) {
		snprintf(err, errlen,
		    "%s:%d: auth_id must be Plivo's alphanumeric id (at most "
		    "64 characters)",
		    sec->file, config_section_line(sec, "auth_id"));
		return -1;
	}
	if (strlen(token) > 200) {
		snprintf(err, errlen,
		    "%s:%d: auth_token is longer than 200 characters",
		    sec->file, config_section_line(sec, "auth_token"));
		return -1;
	}
	if (from == NULL || *from == '\0') {
		snprintf(err, errlen,
		    "%s:%d: [%s] needs from = ... (provider "
		    "plivo has no default sender)",
		    sec->file, config_section_line(sec, "from"), sec->name);
		return -1;
	}
	if ((sig_key = hmac_new("SHA256", token, strlen(token))) == NULL) {
		snprintf(err, errlen, "%s:%d: [%s]: OpenSSL has no HMAC-SHA256",
		    sec->file, sec->line, sec->name);
		return -1;
	}
	p = xcalloc(1, sizeof(*p));
	p->auth_id = xstrdup(id);
	p->sig_key = sig_key;
	p->from = xstrdup(from);
	pair = xasprintf("%s:%s", id, token);
	EVP_EncodeBlock(b64, (const unsigned char *)pair, (int)strlen(pair));
	OPENSSL_cleanse(pair, strlen(pair));
	free(pair);
	snprintf(p->auth, sizeof(p->auth), "Authorization: Basic %s", b64);
	OPENSSL_cleanse(b64, sizeof(b64));
	*prov = p;
	return 0;
}

static void
plivo_prov_free(void *prov)
{
	struct plivo *p = prov;

	if (p == NULL)
		return;
	free(p->auth_id);
	hmac_free(p->sig_key);
	free(p->from);
	OPENSSL_cleanse(p->auth, sizeof(p->auth));
	free(p);
}

/*
 * Builds the JSON request. Without a status URL ([http] public_url
 * unset) no url/method is sent and Plivo reports nothing back.
 */
static int
plivo_build(const void *prov, const struct out_msg *msg, const char *status_url,
    struct smshttp_req *req, char *err, size_t errlen)
{
	const struct plivo *p = prov;
	const char *src = msg->from[0] != '\0' ? msg->from : p->from;
	char dst[32], from[MSG_ADDR_MAX];
	json_t *o;
	char *s;

	if (smshttp_digits(msg->to, dst, sizeof(dst)) == -1) {
		snprintf(err, errlen, "plivo: invalid destination number");
		return -1;
	}
	if (smshttp_digits(src, from, sizeof(from)) == -1)
		strlcpy(from, src, sizeof(from)); /* alphanumeric sender */
	o = json_pack("{s:s, s:s, s:s}", "src", from, "dst", dst, "text",
	    msg->body);
	if (o == NULL) {
		snprintf(err, errlen, "plivo: text is not valid UTF-8");
		return -1;
	}
	if (status_url != NULL) {
		json_object_set_new(o, "url", json_string(status_url));
		json_object_set_new(o, "method", json_string("POST"));
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		fatalx("plivo_build: json_dumps failed");
	req->method = "POST";
	snprintf(req->path, sizeof(req->path), "/v1/Account/%s/Message/",
	    p->auth_id);
	req->content_type = "application/json";
	strlcpy(req->headers[0], p->auth, sizeof(req->headers[0]));
	req->nheaders = 1;
	evbuffer_add(req->body, s, strlen(s));
	free(s);
	return 0;
}

/*
 * 2xx with message_uuid[]: accepted, the first uuid (one message, one
 * uuid; long texts are split by Plivo behind it). A 2xx without one
 * reached Plivo but cannot be matched: transient and uncertain. Other
 * 4xx are final: bad number, auth, balance, sender.
 */
static void
plivo_classify(const void *prov, const struct httpc_response *resp,
    struct send_result *res)
{
	const char *uuid, *error;
	char clean[PLIVO_ERR_MAX];
	json_t *root;

	(void)prov;
	if (smshttp_classify_transport(resp, res))
		return;
	root = json_loadb(resp->body, resp->body_len, 0, NULL);
	if (resp->status >= 200 && resp->status < 300) {
		uuid = json_string_value(
		    json_array_get(json_object_get(root, "message_uuid"), 0));
		if (uuid != NULL && *uuid != '\0') {
			send_result_set(res, SEND_ACCEPTED, 0, NULL);
			strlcpy(res->provider_id, uuid,
			    sizeof(res->provider_id));
		} else {
			send_result_set(res, SEND_TRANSIENT, resp->status,
			    "plivo: %d without message_uuid", resp->status);
			res->uncertain = true;
		}
	} else {
		error = json_string_value(json_object_get(root, "error"));
		plivo_scrub(error != NULL ? error : "", clean, sizeof(clean));
		send_result_set(res, SEND_PERMANENT, resp->status,
		    "plivo http %d%s%s", resp->status,
		    *clean != '\0' ? ": " : "", clean);
	}
	json_decref(root);
}

/*
 * V3 when its headers are present (and then only V3: it covers the
 * body), else V2; a request with neither is refused.
 */
static int
plivo_verify(struct adapter *ad, const struct webhook_req *req, char *err,
    size_t errlen)
{
	const struct plivo *p = smshttp_prov(ad);
	const char *sig3 = webhook_header(req, "X-Plivo-Signature-V3");
	const char *non3 = webhook_header(req, "X-Plivo-Signature-V3-Nonce");
	const char *sig2 = webhook_header(req, "X-Plivo-Signature-V2");
	const char *non2 = webhook_header(req, "X-Plivo-Signature-V2-Nonce");

	if (sig3 != NULL || non3 != NULL) {
		if (sig3 != NULL && non3 != NULL &&
		    plivo_verify_v3(p, req, sig3, non3) == 0)
			return 0;
		snprintf(err, errlen, "plivo: V3 signature mismatch");
		return -1;
	}
	if (sig2 != NULL && non2 != NULL) {
		if (plivo_verify_v2(p, req, sig2, non2) == 0)
			return 0;
		snprintf(err, errlen, "plivo: V2 signature mismatch");
		return -1;
	}
	snprintf(err, errlen, "plivo: unsigned webhook");
	return -1;
}

/* base64(HMAC-SHA256(token, S + "." + nonce)); any listed one matches. */
static int
plivo_verify_v3(const struct plivo *p, const struct webhook_req *req,
    const char *sig, const char *nonce)
{
	struct evbuffer *b = evbuffer_new();
	char want[PLIVO_SIG_LEN];

	if (b == NULL)
		fatalx("plivo_verify_v3: evbuffer_new failed");
	plivo_v3_base(req, b);
	evbuffer_add_printf(b, ".%s", nonce);
	plivo_hmac_b64(p->sig_key, evbuffer_pullup(b, -1),
	    evbuffer_get_length(b), want);
	evbuffer_free(b);
	return plivo_sig_in(sig, want) ? 0 : -1;
}

/* V2: base64(HMAC-SHA256(token, scheme://host/path + nonce)), no query. */
static int
plivo_verify_v2(const struct plivo *p, const struct webhook_req *req,
    const char *sig, const char *nonce)
{
	char want[PLIVO_SIG_LEN];
	char *data;
	size_t n = strcspn(req->url, "?#");

	data = xasprintf("%.*s%s", (int)n, req->url, nonce);
	plivo_hmac_b64(p->sig_key, data, strlen(data), want);
	free(data);
	return plivo_sig_in(sig, want) ? 0 : -1;
}

/*
 * The V3 string S, as plivo-python's construct_get_url/construct_post_url
 * build it: the URL without query, then "?" + the decoded query fields
 * sorted as "k=v&k=v" (repeated names: values sorted). For a POST with
 * fields, "?" always follows (even with no query), then "." when there
 * was a query, then every field sorted and joined as name+value.
 */
static void
plivo_v3_base(const struct webhook_req *req, struct evbuffer *b)
{
	struct plivo_kv *q = NULL, *f = NULL;
	size_t nq, nf = 0, i, n = strcspn(req->url, "?#");
	bool post = strcmp(req->method, "GET") != 0 && req->nparams > 0;

	evbuffer_add(b, req->url, n);
	nq = req->url[n] == '?' ? plivo_query_decode(req->url + n + 1, &q) : 0;
	if (nq > 0 || post)
		evbuffer_add(b, "?", 1);
	for (i = 0; i < nq; i++)
		evbuffer_add_printf(b, "%s%s=%s", i > 0 ? "&" : "", q[i].key,
		    q[i].value);
	if (post) {
		if (nq > 0)
			evbuffer_add(b, ".", 1);
		f = xcalloc(req->nparams, sizeof(*f));
		for (nf = 0; nf < req->nparams; nf++) {
			f[nf].key = (char *)req->params[nf].key;
			f[nf].value = (char *)req->params[nf].value;
		}
		qsort(f, nf, sizeof(*f), plivo_kv_cmp);
		for (i = 0; i < nf; i++)
			evbuffer_add_printf(b, "%s%s", f[i].key, f[i].value);
		free(f);
	}
	for (i = 0; i < nq; i++) {
		free(q[i].key);
		free(q[i].value);
	}
	free(q);
}

/*
 * Decodes "a=1&b=2" as Python's parse_qs(keep_blank_values=True) does:
 * split on '&', empty fields skipped, a field without '=' has an empty
 * value, '+' is a space. The fields come back sorted by name, then value.
 */
static size_t
plivo_query_decode(const char *query, struct plivo_kv **out)
{
	size_t n = 0, cap = 0, len;
	const char *p = query, *end, *eq;
	char *raw;

	*out = NULL;
	while (*p != '\0' && *p != '#') {
		len = strcspn(p, "&#");
		end = p + len;
		if (len > 0) {
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				*out = xreallocarray(*out, cap, sizeof(**out));
			}
			eq = memchr(p, '=', len);
			raw = xstrndup(p, eq != NULL ? (size_t)(eq - p) : len);
			(*out)[n].key = evhttp_uridecode(raw, 1, NULL);
			free(raw);
			raw = eq != NULL
			    ? xstrndup(eq + 1, (size_t)(end - eq - 1))
			    : xstrdup("");
			(*out)[n].value = evhttp_uridecode(raw, 1, NULL);
			free(raw);
			if ((*out)[n].key == NULL || (*out)[n].value == NULL)
				fatalx("plivo_query_decode: uridecode failed");
			n++;
		}
		p = *end == '&' ? end + 1 : end;
	}
	if (n > 0)
		qsort(*out, n, sizeof(**out), plivo_kv_cmp);
	return n;
}

/* Name, then value, bytewise (Python's str order for UTF-8 text). */
static int
plivo_kv_cmp(const void *a, const void *b)
{
	const struct plivo_kv *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->value, y->value);
}

static void
plivo_hmac_b64(struct hmac *key, const void *data, size_t len, char *out)
{
	unsigned char mac[HMAC_OUT_MAX];
	size_t maclen = hmac_sign(key, data, len, mac);

	if (maclen != 32)
		fatalx("plivo_hmac_b64: HMAC-SHA256 gave %zu bytes", maclen);
	EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
}

/*
 * True if 'want' is one of the comma-separated signatures in 'header'
 * (Plivo sends one per active auth token). Constant time per candidate.
 */
static bool
plivo_sig_in(const char *header, const char *want)
{
	size_t wlen = strlen(want), n;
	const char *p = header;
	bool found = false;

	for (;;) {
		p += strspn(p, " \t");
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == wlen && CRYPTO_memcmp(p, want, wlen) == 0)
			found = true;
		p += strcspn(p, ",");
		if (*p == '\0')
			break;
		p++;
	}
	return found;
}

/*
 * Inbound SMS (message_url): From is the member, To our number, Text the
 * body, MessageUUID the id (retries repeat it). Units, when given, is
 * the segment count.
 */
static int
plivo_parse_inbound(struct adapter *ad, const struct webhook_req *req,
    struct in_msg *out, char *err, size_t errlen)
{
	const char *from = webhook_param(req, "From");
	const char *to = webhook_param(req, "To");
	const char *text = webhook_param(req, "Text");
	const char *uuid = webhook_param(req, "MessageUUID");
	const char *units = webhook_param(req, "Units");

	(void)ad;
	if (from == NULL || *from == '\0' || to == NULL || text == NULL ||
	    uuid == NULL || *uuid == '\0' ||
	    strlen(uuid) >= sizeof(out->provider_id)) {
		snprintf(err, errlen,
		    "plivo: inbound lacks From, To, Text or MessageUUID");
		return -1;
	}
	strlcpy(out->provider_id, uuid, sizeof(out->provider_id));
	smshttp_address_in(from, out->from, sizeof(out->from));
	smshttp_address_in(to, out->to, sizeof(out->to));
	if (units != NULL && plivo_is_uint(units, 3))
		out->segments = (unsigned)atoi(units);
	out->body = xstrdup(text);
	return 0;
}

/*
 * Status callback. delivered (and read, which implies it) -> delivered;
 * undelivered -> undelivered; failed and rejected (older docs) ->
 * failed; sent -> sent; queued and anything new are ignored. Sequence
 * orders callbacks so the core can drop stale ones.
 */
static int
plivo_parse_status(struct adapter *ad, const struct webhook_req *req,
    struct status_update *out, char *err, size_t errlen)
{
	const char *uuid = webhook_param(req, "MessageUUID");
	const char *st = webhook_param(req, "Status");
	const char *code = webhook_param(req, "ErrorCode");
	const char *seq = webhook_param(req, "Sequence");

	(void)ad;
	if (uuid == NULL || *uuid == '\0' || st == NULL ||
	    strlen(uuid) >= sizeof(out->provider_id)) {
		snprintf(err, errlen,
		    "plivo: status lacks MessageUUID or "
		    "Status");
		return -1;
	}
	if (strcmp(st, "delivered") == 0 || strcmp(st, "read") == 0)
		out->status = MSG_ST_DELIVERED;
	else if (strcmp(st, "undelivered") == 0)
		out->status = MSG_ST_UNDELIVERED;
	else if (strcmp(st, "failed") == 0 || strcmp(st, "rejected") == 0)
		out->status = MSG_ST_FAILED;
	else if (strcmp(st, "sent") == 0)
		out->status = MSG_ST_SENT;
	else
		return 1;
	strlcpy(out->provider_id, uuid, sizeof(out->provider_id));
	if (code != NULL && plivo_is_uint(code, 9))
		out->code = atoi(code);
	if (seq != NULL && plivo_is_uint(seq, 18))
		out->sequence = atoll(seq);
	if (out->code != 0)
		snprintf(out->text, sizeof(out->text), "plivo %s (error %d)",
		    st, out->code);
	else
		snprintf(out->text, sizeof(out->text), "plivo %s", st);
	return 0;
}

/*
 * message_url expects Message XML or an empty response: an empty
 * <Response> sends nothing back. Status callbacks only need the 200.
 */
static const char *
plivo_reply_body(struct adapter *ad, enum webhook_kind kind, const char **ctype)
{
	(void)ad;
	if (kind == WEBHOOK_INBOUND) {
		*ctype = "text/xml";
		return "<Response></Response>";
	}
	*ctype = "text/plain";
	return "";
}

/* True for 1 to 'max' decimal digits. */
static bool
plivo_is_uint(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && strspn(s, "0123456789") == n;
}

/*
 * Copies Plivo's error text for send_result.text: control characters
 * become spaces and any run of 5 or more digits (a phone number) is
 * masked, so no full number reaches a log (adapter.h rule 7).
 */
static void
plivo_scrub(const char *in, char *out, size_t len)
{
	size_t i = 0, run;

	while (*in != '\0' && i + 1 < len) {
		run = strspn(in, "0123456789");
		if (run >= 5) {
			out[i++] = '#';
			in += run;
			continue;
		}
		if (run > 0) {
			for (; run > 0 && i + 1 < len; run--)
				out[i++] = *in++;
			continue;
		}
		out[i++] = (unsigned char)*in < 0x20 ? ' ' : *in;
		in++;
	}
	out[i] = '\0';
}
