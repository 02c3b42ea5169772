/*
 * fakeprov_telnyx.c - fakeprov's Telnyx: POST /v2/messages
 * with a Bearer key and JSON, answered 200 {data}, and Telnyx's
 * message.sent / message.finalized / message.received webhooks signed
 * with Ed25519 over "timestamp|body" (the key comes from --telnyx-key or
 * is made at start; GET /info gives its public half).
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "compat.h"
#include "fakeprov.h"

/* ---------------------------------------------------------------------
 * the Ed25519 keys that sign its webhooks
 */

/* Loads a Telnyx Ed25519 private key: base64 of the 32-byte seed (or of
 * the 64-byte seed + public key NaCl keeps). Returns 0 / -1. */
int
fp_telnyx_load_key(struct fp *fp, const char *b64)
{
	unsigned char raw[2 * FP_ED25519_LEN];
	EVP_PKEY *k;
	int n;

	n = fp_unb64(b64, raw, sizeof(raw));
	if (n != FP_ED25519_LEN && n != 2 * FP_ED25519_LEN)
		return -1;
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw,
	    FP_ED25519_LEN);
	OPENSSL_cleanse(raw, sizeof(raw));
	if (k == NULL)
		return -1;
	EVP_PKEY_free(fp->telnyx_key);
	fp->telnyx_key = k;
	return 0;
}

EVP_PKEY *
fp_ed25519_generate(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY *k = NULL;

	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_keygen(ctx, &k) <= 0)
		k = NULL;
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* The base64 public key of k into buf ("" on failure). */
const char *
fp_ed25519_public(EVP_PKEY *k, char *buf, size_t len)
{
	unsigned char raw[FP_ED25519_LEN];
	size_t n = sizeof(raw);

	buf[0] = '\0';
	if (k != NULL && EVP_PKEY_get_raw_public_key(k, raw, &n) == 1)
		fp_b64(raw, n, buf, len);
	return buf;
}

/* ---------------------------------------------------------------------
 * answering sends
 */

void
fp_telnyx_error(struct fp_call *c, int status, int code, const char *msg)
{
	char codes[16], url[96], detail[160];

	if (code == 0)
		code = status == 429 ? 10011 : status >= 500 ? 10007 : status;
	snprintf(codes, sizeof(codes), "%d", code);
	snprintf(url, sizeof(url),
	    "https://developers.telnyx.com/api/errors/%d", code);
	/* 40300's detail names both numbers, as Telnyx's does */
	snprintf(detail, sizeof(detail),
	    "Messages cannot be sent from '%.20s' to '%.20s' due to an existing "
	    "block rule.",
	    fp_field(c, "from") ? fp_field(c, "from") : "",
	    fp_field(c, "to") ? fp_field(c, "to") : "");
	if (msg == NULL)
		msg = code == 40300 ? "Blocked due to STOP message"
		    : code == 40310 ? "Invalid 'to' address"
		    : code == 10009 ? "Authentication failed"
		    : code == 10011 ? "Too many requests"
				    : "Unexpected error";
	fp_answer_json(c, status,
	    json_pack("{s:[{s:s, s:s, s:s, s:{s:s}}]}", "errors", "code", codes,
		"title", msg, "detail", code == 40300 ? detail : msg, "meta",
		"url", url));
}

/* Telnyx's checks of a send; 0 = fine. */
static int
fp_telnyx_check(struct fp_call *c)
{
	const char *to = fp_field(c, "to");

	if (c->ctype == NULL ||
	    strncasecmp(c->ctype, "application/json", 16) != 0 ||
	    c->json == NULL)
		fp_telnyx_error(c, 400, 10015, "The request body is not JSON");
	else if (fp_empty(to))
		fp_telnyx_error(c, 422, 10004,
		    "The 'to' parameter is required");
	else if (!fp_is_e164(to))
		fp_telnyx_error(c, 400, 40310, NULL);
	else if (fp_empty(fp_field(c, "from")) &&
	    fp_empty(fp_field(c, "messaging_profile_id")))
		fp_telnyx_error(c, 400, 40305, "Invalid 'from' address");
	else if (fp_empty(fp_field(c, "text")) &&
	    json_object_get(c->json, "media_urls") == NULL)
		fp_telnyx_error(c, 422, 10004,
		    "The 'text' or 'media_urls' parameter is required");
	else
		return 0;
	return -1;
}

void
fp_telnyx_answer(struct fp_call *c)
{
	const char *key = fp_conf(c->fp, FP_TELNYX, "api_key");
	const char *h, *text = fp_field(c, "text");
	char id[48], now[40], until[40];
	bool ucs2;
	unsigned parts;

	h = evhttp_find_header(evhttp_request_get_input_headers(c->req),
	    "Authorization");
	if (h == NULL || key == NULL || strncmp(h, "Bearer ", 7) != 0 ||
	    strcmp(h + 7, key) != 0) {
		fp_telnyx_error(c, 401, 10009, NULL);
		fp_refuse(c);
		return;
	}
	if (fp_telnyx_check(c) == -1) {
		fp_refuse(c);
		return;
	}
	parts = fp_segments(text != NULL ? text : "", &ucs2);
	fp_new_uuid(c->fp, id, sizeof(id));
	fp_time_text(FP_T_ISO, 0, now, sizeof(now));
	fp_time_text(FP_T_ISO, 86400, until, sizeof(until));
	fp_answer_json(c, 200,
	    json_pack("{s:{s:s, s:s, s:s, s:s, s:o, s:{s:o, s:s, s:s},"
		      " s:[{s:o, s:s, s:s, s:s}], s:[], s:o, s:[], s:o, s:o,"
		      " s:s, s:i, s:[], s:n, s:s, s:n, s:n, s:s, s:[]}}",
		"data", "record_type", "message", "direction", "outbound", "id",
		id, "type", "SMS", "messaging_profile_id",
		fp_jstr(fp_field(c, "messaging_profile_id")), "from",
		"phone_number", fp_jstr(fp_field(c, "from")), "carrier",
		"Telnyx", "line_type", "Wireless", "to", "phone_number",
		fp_jstr(fp_field(c, "to")), "status", "queued", "carrier",
		"T-MOBILE USA, INC.", "line_type", "Wireless", "cc", "text",
		fp_jstr(text), "media", "webhook_url",
		fp_jstr(fp_field(c, "webhook_url")), "webhook_failover_url",
		fp_jstr(fp_field(c, "webhook_failover_url")), "encoding",
		ucs2 ? "UCS-2" : "GSM-7", "parts", (int)parts, "tags", "cost",
		"received_at", now, "sent_at", "completed_at", "valid_until",
		until, "errors"));
	fp_accept(c, id);
}

/* ---------------------------------------------------------------------
 * its webhooks: signature and event
 */

/* telnyx-signature-ed25519: base64(Ed25519(timestamp "|" body)). */
int
fp_sign_telnyx(struct fp_out *o, EVP_PKEY *key, long long ts)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct evbuffer *b = evbuffer_new();
	unsigned char sig[FP_ED25519_SIG];
	size_t siglen = sizeof(sig);
	char text[128];
	int rc = -1;

	evbuffer_add_printf(b, "%lld|", ts);
	evbuffer_add(b, o->body, o->body_len);
	if (ctx != NULL && key != NULL &&
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, evbuffer_pullup(b, -1),
		evbuffer_get_length(b)) == 1) {
		fp_b64(sig, siglen, text, sizeof(text));
		fp_form_set(&o->headers, "telnyx-signature-ed25519", text);
		snprintf(text, sizeof(text), "%lld", ts);
		fp_form_set(&o->headers, "telnyx-timestamp", text);
		rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	evbuffer_free(b);
	return rc;
}

/* Telnyx's event type and recipient status for a generic status. */
static void
fp_telnyx_event(const char *st, const char **event, const char **tst)
{
	*event = "message.finalized";
	*tst = st;
	if (strcmp(st, "sent") == 0 || strcmp(st, "sending") == 0 ||
	    strcmp(st, "queued") == 0)
		*event = "message.sent";
	else if (strcmp(st, "undelivered") == 0)
		*tst = "delivery_failed";
	else if (strcmp(st, "failed") == 0)
		*tst = "sending_failed";
}

int
fp_telnyx_build(struct fp *fp, const json_t *spec, struct fp_out *o, char *err,
    size_t errlen)
{
	const char *id = fp_jget(spec, "id"), *event, *tst;
	const char *text = fp_str(spec, "text", "");
	char idbuf[48], evid[48], now[40], code[16];
	json_t *errors = json_array(), *payload;
	bool ucs2, in = fp_is_inbound(spec);

	(void)err;
	(void)errlen;
	if (id == NULL) {
		fp_new_uuid(fp, idbuf, sizeof(idbuf));
		id = idbuf;
	}
	fp_new_uuid(fp, evid, sizeof(evid));
	fp_time_text(FP_T_ISO, 0, now, sizeof(now));
	fp_telnyx_event(fp_cb_status(spec), &event, &tst);
	if (in) {
		event = "message.received";
		tst = "webhook_delivered";
	}
	if (fp_jint(spec, "error_code", 0) != 0) {
		snprintf(code, sizeof(code), "%lld",
		    fp_jint(spec, "error_code", 0));
		json_array_append_new(errors,
		    json_pack("{s:s, s:s, s:s}", "code", code, "title",
			strcmp(code, "40300") == 0
			    ? "Blocked due to STOP message"
			    : "Message failed",
			"detail", "Message failed"));
	}
	fp_segments(text, &ucs2);
	payload = json_pack("{s:s, s:s, s:s, s:s, s:{s:o, s:s, s:s},"
			    " s:[{s:o, s:s, s:s, s:s}], s:o, s:[], s:s, s:i,"
			    " s:o, s:s, s:n, s:[], s:s, s:o, s:o}",
	    "record_type", "message", "direction", in ? "inbound" : "outbound",
	    "id", id, "type", "SMS", "from", "phone_number",
	    fp_jstr(fp_str(spec, "from", "")), "carrier", "T-Mobile USA",
	    "line_type", "long_code", "to", "phone_number",
	    fp_jstr(fp_str(spec, "to", "")), "status", tst, "carrier", "Telnyx",
	    "line_type", "Wireless", "text", fp_jstr(text), "media", "encoding",
	    ucs2 ? "UCS-2" : "GSM-7", "parts", (int)fp_segments(text, NULL),
	    "errors", errors, "received_at", now, "cost", "tags", "sent_at",
	    now, "completed_at",
	    strcmp(event, "message.finalized") == 0 ? json_string(now)
						    : json_null(),
	    "messaging_profile_id", fp_jstr(fp_jget(spec, "profile")));
	o->json = json_pack("{s:{s:s, s:s, s:s, s:o, s:s}, s:{s:i, s:s}}",
	    "data", "event_type", event, "id", evid, "occurred_at", now,
	    "payload", payload, "record_type", "event", "meta", "attempt", 1,
	    "delivered_to", "");
	return o->json != NULL ? 0 : -1;
}
