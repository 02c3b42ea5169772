/*
 * fakeprov_vonage.c - fakeprov's Vonage SMS API: POST /sms/json
 * (form or JSON, api_key + api_secret or a signature), answered 200 with
 * one messages[] element per part and errors per element, and Vonage's
 * delivery receipts and inbound messages with signed parameters (md5hash
 * or HMAC).
 */
#include "autoconf.h"

#include <ctype.h>
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
#include "xmalloc.h"
#include "fakeprov.h"

/* ---------------------------------------------------------------------
 * answering sends
 */

/* The signature of Vonage's signed requests and webhooks over f
 * (every parameter but sig), as hex into out; 0 / -1 (bad method). */
static int
fp_vonage_sig(const struct fp_form *f, const char *secret, const char *method,
    char *out, size_t outlen)
{
	struct evbuffer *b = evbuffer_new();
	struct fp_kv *s = fp_form_sorted(f);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const EVP_MD *alg;
	const char *p;
	size_t i;
	int rc = -1;

	for (i = 0; i < f->n; i++) {
		if (strcmp(s[i].key, "sig") == 0)
			continue;
		evbuffer_add_printf(b, "&%s=", s[i].key);
		for (p = s[i].value; *p != '\0'; p++)
			evbuffer_add(b, *p == '&' || *p == '=' ? "_" : p, 1);
	}
	if (strcmp(method, "md5hash") == 0) {
		evbuffer_add(b, secret, strlen(secret));
		alg = EVP_md5();
		rc = EVP_Digest(evbuffer_pullup(b, -1), evbuffer_get_length(b),
			 md, &mdlen, alg, NULL) == 1
		    ? 0
		    : -1;
	} else if ((alg = strcmp(method, "md5") == 0	   ? EVP_md5()
			   : strcmp(method, "sha1") == 0   ? EVP_sha1()
			   : strcmp(method, "sha256") == 0 ? EVP_sha256()
			   : strcmp(method, "sha512") == 0 ? EVP_sha512()
							   : NULL) != NULL)
		rc = HMAC(alg, secret, (int)strlen(secret),
			 evbuffer_pullup(b, -1), evbuffer_get_length(b), md,
			 &mdlen) != NULL
		    ? 0
		    : -1;
	if (rc == 0 && outlen > 2 * mdlen)
		fp_hex(md, mdlen, strcmp(method, "md5hash") != 0, out);
	else
		rc = -1;
	free(s);
	evbuffer_free(b);
	return rc;
}

static void
fp_vonage_status(struct fp_call *c, int http, int status, const char *text)
{
	char st[16];

	snprintf(st, sizeof(st), "%d", status);
	fp_answer_json(c, http,
	    json_pack("{s:s, s:[{s:s, s:s}]}", "message-count", "1", "messages",
		"status", st, "error-text", text));
}

void
fp_vonage_error(struct fp_call *c, int status, int code, const char *msg)
{
	if (code != 0) {
		if (msg == NULL)
			msg = code == 1
			    ? "Throughput Rate Exceeded - please wait "
			      "[ 30 ] and retry"
			    : code == 4 ? "Bad Credentials"
			    : code == 5 ? "Internal Error"
			    : code == 7 ? "Number barred."
			    : code == 9 ? "Partner quota exceeded"
					: "Error";
		fp_vonage_status(c, status, code, msg);
		return;
	}
	fp_answer_json(c, status,
	    json_pack("{s:s, s:s}", "type",
		"https://developer.nexmo.com/api-errors#internal", "title",
		msg != NULL ? msg : "Internal Error"));
}

/* Vonage's credentials: api_key with api_secret, or with a valid sig. */
static bool
fp_vonage_auth_is_ok(struct fp_call *c)
{
	struct fp *fp = c->fp;
	const char *key = fp_field(c, "api_key"),
		   *sec = fp_field(c, "api_secret");
	const char *sig = fp_field(c, "sig");
	const char *sigsec = fp_conf(fp, FP_VONAGE, "signature_secret");
	struct fp_form f = {0};
	char want[2 * EVP_MAX_MD_SIZE + 1];
	bool ok = false;

	if (key == NULL || strcmp(key, fp_conf(fp, FP_VONAGE, "api_key")) != 0)
		return false;
	if (sec != NULL)
		return sig == NULL &&
		    strcmp(sec, fp_conf(fp, FP_VONAGE, "api_secret")) == 0;
	if (sig == NULL || sigsec == NULL)
		return false;
	if (c->json != NULL)
		fp_form_merge_json(&f, c->json);
	if (fp_vonage_sig(c->json != NULL ? &f : &c->form, sigsec,
		fp_conf(fp, FP_VONAGE, "signature_method"), want,
		sizeof(want)) == 0)
		ok = strcasecmp(want, sig) == 0;
	fp_form_clear(&f);
	return ok;
}

void
fp_vonage_answer(struct fp_call *c)
{
	const char *to = fp_field(c, "to"), *type = fp_field(c, "type");
	const char *text = fp_field(c, "text");
	char id[40], count[16];
	json_t *msgs;
	unsigned i, parts;

	if (fp_field(c, "api_key") == NULL) {
		fp_vonage_status(c, 200, 2, "Missing api_key");
	} else if (!fp_vonage_auth_is_ok(c)) {
		fp_vonage_status(c, 200, 4, "Bad Credentials");
	} else if (fp_empty(fp_field(c, "from"))) {
		fp_vonage_status(c, 200, 2, "Missing from param");
	} else if (fp_empty(to)) {
		fp_vonage_status(c, 200, 2, "Missing to param");
	} else if (!fp_is_digits(to, 7, 15)) {
		fp_vonage_status(c, 200, 3, "Invalid to address");
	} else if ((type == NULL || strcmp(type, "text") == 0 ||
		       strcmp(type, "unicode") == 0) &&
	    fp_empty(text)) {
		fp_vonage_status(c, 200, 2, "Missing text param");
	} else {
		parts = fp_segments(text != NULL ? text : "", NULL);
		msgs = json_array();
		for (i = 0; i < parts; i++) {
			fp_new_id(c->fp, "", 16, id, sizeof(id));
			if (i == 0)
				fp_accept(c, id);
			json_array_append_new(msgs,
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
				"to", to, "message-id", id, "status", "0",
				"remaining-balance", "3.14159265",
				"message-price", "0.00570000", "network",
				"310260", "client-ref",
				fp_jstr(fp_field(c, "client-ref"))));
			if (fp_field(c, "client-ref") == NULL)
				json_object_del(json_array_get(msgs, i),
				    "client-ref");
		}
		snprintf(count, sizeof(count), "%u", parts);
		fp_answer_json(c, 200,
		    json_pack("{s:s, s:o}", "message-count", count, "messages",
			msgs));
		return;
	}
	fp_refuse(c);
}

/* ---------------------------------------------------------------------
 * signing webhooks
 */

/*
 * Vonage's signed parameters: timestamp, nonce and sig (md5hash or an
 * HMAC of the sorted parameters) with the signature secret, in 'mode'
 * (see fp_sign_params).
 */
void
fp_vonage_sign_params(struct fp *fp, const json_t *spec, struct fp_out *o,
    const char *mode)
{
	const char *sec, *method;
	char sig[2 * EVP_MAX_MD_SIZE + 1], ts[32], nonce[48], *wrong;

	sec = fp_jget(spec, "signature_secret");
	sec = sec != NULL ? sec : fp_conf(fp, FP_VONAGE, "signature_secret");
	method = fp_jget(spec, "signature_method");
	method = method ? method : fp_conf(fp, FP_VONAGE, "signature_method");
	if (sec == NULL || strcmp(mode, "missing") == 0)
		return;
	snprintf(ts, sizeof(ts), "%lld",
	    fp_jint(spec, "timestamp",
		(long long)time(NULL) -
		    (strcmp(mode, "stale") == 0 ? 3600 : 0)));
	if (fp_form_get(&o->form, "timestamp") == NULL)
		fp_form_set(&o->form, "timestamp", ts);
	/* Vonage adds a nonce; "nonce": false leaves it out (the
	 * vectors of Vonage's SDK have none) */
	fp_new_uuid(fp, nonce, sizeof(nonce));
	if (fp_form_get(&o->form, "nonce") == NULL &&
	    !json_is_false(json_object_get(spec, "nonce")))
		fp_form_set(&o->form, "nonce", nonce);
	wrong = xasprintf("%sx", sec);
	if (fp_vonage_sig(&o->form, strcmp(mode, "invalid") == 0 ? wrong : sec,
		method != NULL ? method : "md5hash", sig, sizeof(sig)) == 0)
		fp_form_set(&o->form, "sig", sig);
	free(wrong);
}

/* ---------------------------------------------------------------------
 * its webhooks
 */

int
fp_vonage_build(struct fp *fp, const json_t *spec, struct fp_out *o, char *err,
    size_t errlen)
{
	const char *text = fp_str(spec, "text", ""), *id = fp_jget(spec, "id");
	char idbuf[40], ts[32], scts[16], code[16], kw[64];
	size_t n;
	bool ucs2;

	(void)err;
	(void)errlen;
	if (id == NULL) {
		fp_new_id(fp, "", 16, idbuf, sizeof(idbuf));
		id = idbuf;
	}
	fp_time_text(FP_T_SQL, 0, ts, sizeof(ts));
	if (fp_is_inbound(spec)) {
		n = strcspn(text, " \t\r\n");
		snprintf(kw, sizeof(kw), "%.*s", (int)n, text);
		for (n = 0; kw[n] != '\0'; n++)
			kw[n] = (char)toupper((unsigned char)kw[n]);
		fp_form_add(&o->form, "msisdn",
		    fp_digits(fp_jget(spec, "from")));
		fp_form_add(&o->form, "to", fp_digits(fp_jget(spec, "to")));
		fp_form_add(&o->form, "messageId", id);
		fp_form_add(&o->form, "text", text);
		fp_segments(text, &ucs2);
		fp_form_add(&o->form, "type", ucs2 ? "unicode" : "text");
		fp_form_add(&o->form, "keyword", kw);
		fp_form_add(&o->form, "api-key",
		    fp_conf(fp, FP_VONAGE, "api_key"));
		fp_form_add(&o->form, "message-timestamp", ts);
		return 0;
	}
	snprintf(code, sizeof(code), "%lld", fp_jint(spec, "error_code", 0));
	fp_form_add(&o->form, "msisdn", fp_digits(fp_jget(spec, "to")));
	fp_form_add(&o->form, "to", fp_digits(fp_jget(spec, "from")));
	fp_form_add(&o->form, "network-code", "310260");
	fp_form_add(&o->form, "messageId", id);
	fp_form_add(&o->form, "price", "0.00570000");
	fp_form_add(&o->form, "status", fp_cb_status(spec));
	fp_form_add(&o->form, "scts",
	    fp_time_text(FP_T_SCTS, 0, scts, sizeof(scts)));
	fp_form_add(&o->form, "err-code", code);
	fp_form_add(&o->form, "api-key", fp_conf(fp, FP_VONAGE, "api_key"));
	if (fp_jget(spec, "client_ref") != NULL)
		fp_form_add(&o->form, "client-ref",
		    fp_jget(spec, "client_ref"));
	fp_form_add(&o->form, "message-timestamp", ts);
	return 0;
}
