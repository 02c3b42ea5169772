/*
 * fakeprov_plivo.c - fakeprov's Plivo: POST
 * /v1/Account/{auth_id}/Message/ with Basic auth and JSON, answered 202
 * with one message_uuid per recipient, and Plivo's webhooks signed with
 * X-Plivo-Signature-V2 and -V3 (HMAC-SHA256).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "compat.h"
#include "fakeprov.h"

/* ---------------------------------------------------------------------
 * answering sends
 */

void
fp_plivo_error(struct fp_call *c, int status, int code, const char *msg)
{
	char api[48];

	(void)code;
	fp_new_uuid(c->fp, api, sizeof(api));
	fp_answer_json(c, status,
	    json_pack("{s:s, s:s}", "api_id", api, "error",
		msg != NULL	    ? msg
		    : status == 429 ? "too many requests"
		    : status >= 500 ? "internal server error"
				    : "error"));
}

/* Plivo's checks of a send; 0 = fine. */
static int
fp_plivo_check(struct fp_call *c)
{
	const char *dst = fp_field(c, "dst");

	if (c->ctype == NULL ||
	    strncasecmp(c->ctype, "application/json", 16) != 0 ||
	    c->json == NULL)
		fp_plivo_error(c, 400, 0,
		    "content type must be application/json");
	else if (fp_empty(fp_field(c, "src")) &&
	    fp_empty(fp_field(c, "powerpack_uuid")))
		fp_plivo_error(c, 400, 0, "src parameter not present");
	else if (!fp_empty(fp_field(c, "src")) &&
	    !fp_empty(fp_field(c, "powerpack_uuid")))
		fp_plivo_error(c, 400, 0,
		    "Both powerpack_uuid and src cannot be specified");
	else if (fp_empty(dst))
		fp_plivo_error(c, 400, 0, "dst parameter not present");
	else if (fp_empty(fp_field(c, "text")) &&
	    json_object_get(c->json, "media_urls") == NULL)
		fp_plivo_error(c, 400, 0, "text parameter not present");
	else
		return 0;
	return -1;
}

void
fp_plivo_answer(struct fp_call *c)
{
	struct fp *fp = c->fp;
	const char *auth_id = fp_conf(fp, FP_PLIVO, "auth_id"), *p;
	char api[48], id[48];
	json_t *ids;

	if (!fp_basic_is_ok(c, auth_id, fp_conf(fp, FP_PLIVO, "auth_token"))) {
		fp_plivo_error(c, 401, 0, "Authentication failed");
		fp_refuse(c);
		return;
	}
	if (auth_id == NULL || strcmp(c->acct, auth_id) != 0) {
		fp_plivo_error(c, 404, 0, "not found");
		fp_refuse(c);
		return;
	}
	if (fp_plivo_check(c) == -1) {
		fp_refuse(c);
		return;
	}
	/* Several recipients are joined with '<': one uuid each. */
	ids = json_array();
	for (p = fp_field(c, "dst"); p != NULL; p = strchr(p + 1, '<')) {
		fp_new_uuid(fp, id, sizeof(id));
		if (json_array_size(ids) == 0)
			fp_accept(c, id);
		json_array_append_new(ids, json_string(id));
	}
	fp_new_uuid(fp, api, sizeof(api));
	fp_answer_json(c, 202,
	    json_pack("{s:s, s:s, s:o}", "api_id", api, "message",
		"message(s) queued", "message_uuid", ids));
}

/* ---------------------------------------------------------------------
 * its webhooks: signatures V2 and V3, fields
 */

/* scheme://host[:port]/path of o->url into b (Plivo's base URL). */
static void
fp_url_base(const char *url, struct evbuffer *b)
{
	const char *q = strchr(url, '?');

	evbuffer_add(b, url, q != NULL ? (size_t)(q - url) : strlen(url));
}

static void
fp_hmac256_b64(const char *key, struct evbuffer *b, char *out, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	HMAC(EVP_sha256(), key, (int)strlen(key), evbuffer_pullup(b, -1),
	    evbuffer_get_length(b), md, &mdlen);
	fp_b64(md, mdlen, out, len);
}

/*
 * Plivo V2 (HMAC-SHA256 over base URL + nonce) and V3 (over base URL "?"
 * [sorted query "." ] sorted name+value pairs, "." nonce), as
 * plivo-python's utils compute them.
 */
void
fp_sign_plivo(struct fp *fp, struct fp_out *o, const char *token,
    const char *fixed_nonce)
{
	struct evbuffer *b = evbuffer_new();
	struct fp_kv *s = fp_form_sorted(&o->form);
	json_t *q = NULL;
	char nonce[32], sig[128];
	const char *query = strchr(o->url, '?');
	size_t i;

	if (fixed_nonce != NULL)
		strlcpy(nonce, fixed_nonce, sizeof(nonce));
	else
		snprintf(nonce, sizeof(nonce), "%llu%08llu",
		    (unsigned long long)time(NULL),
		    (unsigned long long)++fp->ids);
	fp_url_base(o->url, b);
	evbuffer_add(b, nonce, strlen(nonce));
	fp_hmac256_b64(token, b, sig, sizeof(sig));
	fp_form_set(&o->headers, "X-Plivo-Signature-V2", sig);
	fp_form_set(&o->headers, "X-Plivo-Signature-Ma-V2", sig);
	fp_form_set(&o->headers, "X-Plivo-Signature-V2-Nonce", nonce);

	evbuffer_drain(b, evbuffer_get_length(b));
	fp_url_base(o->url, b);
	if (query != NULL && query[1] != '\0')
		q = fp_form_json(query + 1, strlen(query + 1));
	if (q != NULL || (o->form.n > 0 && strcmp(o->method, "POST") == 0))
		evbuffer_add(b, "?", 1);
	if (q != NULL) {
		struct fp_form qf = {0};
		struct fp_kv *qs;

		fp_form_merge_json(&qf, q);
		qs = fp_form_sorted(&qf);
		for (i = 0; i < qf.n; i++)
			evbuffer_add_printf(b, "%s%s=%s", i > 0 ? "&" : "",
			    qs[i].key, qs[i].value);
		if (o->form.n > 0)
			evbuffer_add(b, ".", 1);
		free(qs);
		fp_form_clear(&qf);
		json_decref(q);
	}
	for (i = 0; i < o->form.n; i++)
		evbuffer_add_printf(b, "%s%s", s[i].key, s[i].value);
	evbuffer_add_printf(b, ".%s", nonce);
	fp_hmac256_b64(token, b, sig, sizeof(sig));
	fp_form_set(&o->headers, "X-Plivo-Signature-V3", sig);
	fp_form_set(&o->headers, "X-Plivo-Signature-V3-Nonce", nonce);
	free(s);
	evbuffer_free(b);
}

int
fp_plivo_build(struct fp *fp, const json_t *spec, struct fp_out *o, char *err,
    size_t errlen)
{
	const char *st = fp_cb_status(spec), *id = fp_jget(spec, "id");
	char idbuf[48], ts[40], seq[32], code[16];

	(void)err;
	(void)errlen;
	if (id == NULL) {
		fp_new_uuid(fp, idbuf, sizeof(idbuf));
		id = idbuf;
	}
	fp_time_text(FP_T_PLIVO, 0, ts, sizeof(ts));
	if (fp_is_inbound(spec)) {
		fp_form_add(&o->form, "From", fp_digits(fp_jget(spec, "from")));
		fp_form_add(&o->form, "To", fp_digits(fp_jget(spec, "to")));
		fp_form_add(&o->form, "Type", "sms");
		fp_form_add(&o->form, "Text", fp_str(spec, "text", ""));
		fp_form_add(&o->form, "MessageUUID", id);
		fp_form_add(&o->form, "Units", "1");
		fp_form_add(&o->form, "TotalRate", "0.00000");
		fp_form_add(&o->form, "TotalAmount", "0.00000");
		fp_form_add(&o->form, "PowerpackUUID", "");
		return 0;
	}
	snprintf(seq, sizeof(seq), "%lld",
	    fp_jint(spec, "sequence", (long long)++fp->plivo_sequence));
	fp_form_add(&o->form, "MessageUUID", id);
	fp_form_add(&o->form, "ParentMessageUUID", id);
	fp_form_add(&o->form, "PartInfo", "1 of 1");
	fp_form_add(&o->form, "To", fp_digits(fp_jget(spec, "to")));
	fp_form_add(&o->form, "From", fp_digits(fp_jget(spec, "from")));
	fp_form_add(&o->form, "Type", "sms");
	fp_form_add(&o->form, "Status", st);
	fp_form_add(&o->form, "Units", "1");
	fp_form_add(&o->form, "TotalRate", "0.00500");
	fp_form_add(&o->form, "TotalAmount", "0.00500");
	fp_form_add(&o->form, "MCC", "310");
	fp_form_add(&o->form, "MNC", "260");
	fp_form_add(&o->form, "Sequence", seq);
	fp_form_add(&o->form, "MessageTime", ts);
	fp_form_add(&o->form, "QueuedTime", ts);
	fp_form_add(&o->form, "SentTime", ts);
	if (strcmp(st, "delivered") == 0 || strcmp(st, "undelivered") == 0)
		fp_form_add(&o->form, "DeliveryReportTime", ts);
	fp_form_add(&o->form, "PowerpackUUID", "");
	if (fp_jint(spec, "error_code", 0) != 0 || strcmp(st, "failed") == 0 ||
	    strcmp(st, "undelivered") == 0) {
		snprintf(code, sizeof(code), "%lld",
		    fp_jint(spec, "error_code", 0));
		fp_form_add(&o->form, "ErrorCode", code);
	}
	return 0;
}
