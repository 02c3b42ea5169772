/*
 * check_vonage.c - unit tests of the Vonage SMS API adapter: the exact
 * outbound form (encoding, type=unicode switching, ttl), the
 * classification of every documented messages[] status, webhook
 * signatures (the PHP core SDK's published vectors, tampering, stale
 * timestamps, the unsigned api-key check), the parsing of inbound SMS
 * and delivery receipts from tests/fixtures/vonage/, and configuration
 * errors with FILE:LINE.
 *
 * Adapters are made with adapter_new() from a real config file in a
 * per-test directory, with an env whose httpc is NULL: init must do no
 * I/O. The provider's pure functions are then called directly.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "adapter.h"
#include "check_sms.h"
#include "check_suites.h"
#include "config.h"
#include "message.h"
#include "smshttp.h"

#define VT_PUBLIC "https://gw.example.org"
/* The PHP core SDK vector's timestamp (1491346667 s), in ms. */
#define VT_PHP_NOW INT64_C(1491346667000)
/* inbound-json-signed.json's timestamp (2026-11-27T03:14:34Z), in ms. */
#define VT_JSON_NOW INT64_C(1795749274000)

/* The common head of every test config; provider keys follow. */
#define VT_HEAD "[sender v1]\nprovider = vonage\nfrom = +14155550199\n"
#define VT_KEYS "api_key = KEY\napi_secret = SECRET\n"

static struct cks_ctx vt_ctx;

static void vt_setup(void);
static void vt_teardown(void);
static void vt_req_form(struct cks_req *r, const char *body, int64_t now);
static void vt_req_file(struct cks_req *r, const char *name, int64_t now);
static char *vt_build(const struct out_msg *msg, int *rc);
static void vt_classify(const char *body, int status, struct send_result *res);

static void
vt_setup(void)
{
	cks_setup(&vt_ctx, &vonage_provider, "v1");
}

static void
vt_teardown(void)
{
	cks_teardown(&vt_ctx);
}

/*
 * Fills r as the webhook layer would for a POST: the raw body, and its
 * fields decoded when it is a form (a JSON body has none).
 */
static void
vt_req_form(struct cks_req *r, const char *body, int64_t now)
{
	cks_req_init(r, "POST", VT_PUBLIC "/webhooks/v1/inbound", body,
	    "203.0.113.7");
	r->req.now = now;
	if (body[0] != '{')
		cks_req_decode(r, body);
}

static void
vt_req_file(struct cks_req *r, const char *name, int64_t now)
{
	char *body = cks_fixture("vonage", name);

	vt_req_form(r, body, now);
	free(body);
}

/* Runs build() on msg; returns the body (free() it) and checks the shape. */
static char *
vt_build(const struct out_msg *msg, int *rc)
{
	struct smshttp_req req;
	char *out = cks_build(&vt_ctx, msg, &req, rc);

	if (*rc == 0) {
		ck_assert_str_eq(req.method, "POST");
		ck_assert_str_eq(req.path, "/sms/json");
		ck_assert_str_eq(req.content_type,
		    "application/x-www-form-urlencoded");
		ck_assert_uint_eq(req.nheaders, 0);
	}
	return out;
}

static void
vt_classify(const char *body, int status, struct send_result *res)
{
	cks_classify(&vonage_provider, status, body, 0, res);
}

START_TEST(test_vonage_build_form)
{
	struct out_msg msg;
	char *body;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	cks_msg(&msg, "Hi & bye = 1+1\nline2");
	body = vt_build(&msg, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(body,
	    "api_key=KEY&api_secret=SECRET&from=14155550199&to=14155550100"
	    "&text=Hi%20%26%20bye%20%3D%201%2B1%0Aline2"
	    "&callback=https%3A%2F%2Fgw.example.org%2Fwebhooks%2Fv1%2Fstatus"
	    "&client-ref=42");
	free(body);
}
END_TEST

START_TEST(test_vonage_build_unicode_emoji)
{
	struct out_msg msg;
	char *body;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	cks_msg(&msg, "Ol\xc3\xa1 \xf0\x9f\x91\x8b & =+\n");
	body = vt_build(&msg, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(body,
	    "api_key=KEY&api_secret=SECRET&from=14155550199&to=14155550100"
	    "&text=Ol%C3%A1%20%F0%9F%91%8B%20%26%20%3D%2B%0A&type=unicode"
	    "&callback=https%3A%2F%2Fgw.example.org%2Fwebhooks%2Fv1%2Fstatus"
	    "&client-ref=42");
	free(body);
}
END_TEST

/* The whole basic table and the extension table stay type=text. */
START_TEST(test_vonage_build_gsm_stays_text)
{
	struct out_msg msg;
	char *body;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	cks_msg(&msg,
	    "@\xc2\xa3$\xc2\xa5\xc3\xa8\xc3\xa9\xc3\xb9\xc3\xac"
	    "\xc3\xb2\xc3\x87\n\xc3\x98\xc3\xb8\r\xc3\x85\xc3\xa5"
	    "\xce\x94_\xce\xa6\xce\x93\xce\x9b\xce\xa9\xce\xa0\xce\xa8"
	    "\xce\xa3\xce\x98\xce\x9e\xc3\x86\xc3\xa6\xc3\x9f\xc3\x89"
	    " !\"#\xc2\xa4%&'()*+,-./09:;<=>?\xc2\xa1"
	    "AZ\xc3\x84\xc3\x96\xc3\x91\xc3\x9c\xc2\xa7\xc2\xbf"
	    "az\xc3\xa4\xc3\xb6\xc3\xb1\xc3\xbc\xc3\xa0"
	    "^{}\\[~]|\xe2\x82\xac\f");
	body = vt_build(&msg, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_null(strstr(body, "type=unicode"));
	free(body);
}
END_TEST

/* One character outside GSM-7 makes the whole message unicode. */
START_TEST(test_vonage_build_non_gsm_switches)
{
	static const char *const texts[] = {"back`tick", "tab\there",
	    "\xc3\xa1", "\xc3\xa7", "\xe2\x80\x9cquoted\xe2\x80\x9d",
	    "dash \xe2\x80\x94", "bad utf8 \xc3", NULL};
	struct out_msg msg;
	char *body;
	size_t i;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	for (i = 0; texts[i] != NULL; i++) {
		cks_msg(&msg, texts[i]);
		body = vt_build(&msg, &rc);
		ck_assert_int_eq(rc, 0);
		ck_assert_msg(strstr(body, "&type=unicode&") != NULL,
		    "text %zu not sent as unicode: %s", i, body);
		free(body);
	}
}
END_TEST

START_TEST(test_vonage_build_sender_and_no_callback)
{
	struct out_msg msg;
	char *body;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, NULL));
	cks_msg(&msg, "hi");
	strcpy(msg.from, "AcmeInc");
	body = vt_build(&msg, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(body,
	    "api_key=KEY&api_secret=SECRET&from=AcmeInc"
	    "&to=14155550100&text=hi&client-ref=42");
	free(body);
}
END_TEST

START_TEST(test_vonage_build_ttl)
{
	struct out_msg msg;
	char *body, *p;
	long long ttl;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	cks_msg(&msg, "hi");
	msg.expires_at = msg_now_ms() + 3600000;
	body = vt_build(&msg, &rc);
	ck_assert_int_eq(rc, 0);
	p = strstr(body, "&ttl=");
	ck_assert_ptr_nonnull(p);
	ttl = atoll(p + 5);
	ck_assert_int_le(ttl, 3600000);
	ck_assert_int_gt(ttl, 3600000 - 60000);
	free(body);
	/* Expiring sooner than Vonage's minimum: the minimum. */
	msg.expires_at = msg_now_ms() + 5000;
	body = vt_build(&msg, &rc);
	ck_assert_ptr_nonnull(strstr(body, "&client-ref=42&ttl=20000"));
	free(body);
	/* Beyond Vonage's maximum, or never: no ttl (Vonage's 72 h). */
	msg.expires_at = msg_now_ms() + INT64_C(8) * 86400000;
	body = vt_build(&msg, &rc);
	ck_assert_ptr_null(strstr(body, "ttl="));
	free(body);
	msg.expires_at = 0;
	body = vt_build(&msg, &rc);
	ck_assert_ptr_null(strstr(body, "ttl="));
	free(body);
}
END_TEST

START_TEST(test_vonage_build_bad_number)
{
	static const char *const bad[] = {"+12", "+1415555010x",
	    "+1234567890123456", "14155550100 14155550101", "", NULL};
	struct out_msg msg;
	char *body;
	size_t i;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	for (i = 0; bad[i] != NULL; i++) {
		cks_msg(&msg, "hi");
		strcpy(msg.to, bad[i]);
		body = vt_build(&msg, &rc);
		ck_assert_int_eq(rc, -1);
		free(body);
	}
}
END_TEST

START_TEST(test_vonage_classify_accepted)
{
	struct send_result res;
	char *body = cks_fixture("vonage", "send-ok.json");

	vt_classify(body, 200, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	ck_assert_str_eq(res.provider_id, "0A0000000123ABCD");
	ck_assert(!res.uncertain);
	free(body);
	/* A long text: one element per part; the first part's id. */
	body = cks_fixture("vonage", "send-multipart.json");
	vt_classify(body, 200, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	ck_assert_str_eq(res.provider_id, "0A0000000123ABCD");
	free(body);
}
END_TEST

START_TEST(test_vonage_classify_transient_codes)
{
	struct send_result res;
	char *body = cks_fixture("vonage", "send-throttled.json");

	vt_classify(body, 200, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 1);
	ck_assert(!res.uncertain);
	free(body);
	body = cks_fixture("vonage", "send-internal.json");
	vt_classify(body, 200, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 5);
	free(body);
	/* Part one went out: a retry would repeat it. */
	body = cks_fixture("vonage", "send-partial.json");
	vt_classify(body, 200, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 1);
	ck_assert(res.uncertain);
	free(body);
}
END_TEST

/*
 * Every other documented status, and an undocumented one, is final -
 * except those refusing the sender itself (4 bad credentials, 8 account
 * barred, 9 out of credit): transient, flagged, so no message is failed.
 */
START_TEST(test_vonage_classify_sender_refused)
{
	static const int codes[] = {4, 8, 9};
	struct send_result res;
	char body[256];
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		snprintf(body, sizeof(body),
		    "{\"message-count\":\"1\",\"messages\":[{\"status\":"
		    "\"%d\",\"error-text\":\"x\"}]}",
		    codes[i]);
		vt_classify(body, 200, &res);
		ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
		ck_assert(res.flags & SEND_F_SENDER_BROKEN);
		ck_assert_int_eq(res.code, codes[i]);
	}
}
END_TEST

START_TEST(test_vonage_classify_permanent_codes)
{
	static const int codes[] = {2, 3, 6, 7, 10, 11, 12, 14, 15, 22, 23, 29,
	    32, 33, 99};
	struct send_result res;
	char body[256];
	char *fix;
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		snprintf(body, sizeof(body),
		    "{\"message-count\":\"1\",\"messages\":[{\"status\":"
		    "\"%d\",\"error-text\":\"x\"}]}",
		    codes[i]);
		vt_classify(body, 200, &res);
		ck_assert_int_eq(res.outcome, SEND_PERMANENT);
		ck_assert_int_eq(res.code, codes[i]);
		ck_assert_str_eq(res.provider_id, "");
	}
	fix = cks_fixture("vonage", "send-bad-credentials.json");
	vt_classify(fix, 200, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 4);
	ck_assert_str_eq(res.text, "vonage status 4: invalid credentials");
	free(fix);
}
END_TEST

START_TEST(test_vonage_classify_http)
{
	struct httpc_response resp;
	struct send_result res;

	vt_classify("{\"error\":\"unauthorized\"}", 401, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 401);
	vt_classify("oops", 500, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	/* A 200 that is not Vonage's answer: it arrived, outcome unknown. */
	vt_classify("<html>proxy</html>", 200, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
	vt_classify("{\"messages\":[{\"status\":\"zero\"}]}", 200, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
	memset(&resp, 0, sizeof(resp));
	resp.status = 429;
	resp.retry_after = 7;
	resp.body = "";
	vonage_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_uint_eq(res.retry_after, 7);
	memset(&resp, 0, sizeof(resp));
	resp.timed_out = true;
	resp.maybe_sent = true;
	resp.body = "";
	vonage_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
}
END_TEST

/* The PHP core SDK's vector: a real signed inbound webhook (md5hash). */
START_TEST(test_vonage_verify_php_sdk_vector)
{
	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx,
	    VT_HEAD VT_KEYS "signature_secret = my_secret_key_for_testing\n",
	    VT_PUBLIC));
	vt_req_file(&vt_ctx.r, "inbound-signed.txt", VT_PHP_NOW + 10000);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    0);
}
END_TEST

/* The PHP core SDK's HMAC vectors, one per method, sig as published. */
START_TEST(test_vonage_verify_php_sdk_hmac)
{
	static const char *const cases[][2] = {
	    {"md5", "DDEBD46008C2D4E93CCE578A332A52D5"},
	    {"sha1", "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A"},
	    {"sha256",
		"DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B2"
		"98B6E0FC0D330"},
	    {"sha512",
		"E0D3C650F8C9D1A5C174D10DDDBFB003E561F59B265616208B0"
		"487C5D819481CD3C311D59CF6165ECD1139622D5BA3A256C0D7"
		"63AC4A9AD9144B5A426B94FE82"},
	};
	char conf[512], form[512];
	size_t i;

	i = (size_t)_i;
	snprintf(conf, sizeof(conf),
	    VT_HEAD VT_KEYS "signature_secret = my_secret_key_for_testing\n"
			    "signature_method = %s\n",
	    cases[i][0]);
	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, conf, VT_PUBLIC));
	snprintf(form, sizeof(form),
	    "message-timestamp=2013-11-21+15%%3A27%%3A30&messageId="
	    "020000001B0FE827&msisdn=14843472194&text=Test+again&timestamp="
	    "1385047698&to=13239877404&type=text&sig=%s",
	    cases[i][1]);
	vt_req_form(&vt_ctx.r, form, INT64_C(1385047698000));
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    0);
	/* A signature one hex digit off is refused. */
	form[strlen(form) - 1] ^= 1;
	vt_req_form(&vt_ctx.r, form, INT64_C(1385047698000));
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    -1);
}
END_TEST

START_TEST(test_vonage_verify_tampered_missing_stale)
{
	char *body;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx,
	    VT_HEAD VT_KEYS "signature_secret = my_secret_key_for_testing\n",
	    VT_PUBLIC));
	body = cks_fixture("vonage", "inbound-signed.txt");
	/* The sig is hex: any case. */
	vt_req_form(&vt_ctx.r, body, VT_PHP_NOW);
	strcpy(vt_ctx.r.own[11], "E06D9763E3FD0B9C31BEB5FC2FCB011C");
	ck_assert_str_eq(vt_ctx.r.kv[5].key, "sig");
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    0);
	/* Tampered text. */
	vt_req_form(&vt_ctx.r, body, VT_PHP_NOW);
	ck_assert_str_eq(vt_ctx.r.kv[6].key, "text");
	vt_ctx.r.own[13][0] = 'B';
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    -1);
	ck_assert_str_eq(vt_ctx.err, "vonage: signature mismatch");
	/* 300 s old passes, 301 s old and 301 s ahead are refused. */
	vt_req_form(&vt_ctx.r, body, VT_PHP_NOW + 300000);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    0);
	vt_req_form(&vt_ctx.r, body, VT_PHP_NOW + 301000);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    -1);
	ck_assert_str_eq(vt_ctx.err, "vonage: stale timestamp");
	vt_req_form(&vt_ctx.r, body, VT_PHP_NOW - 301000);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    -1);
	/* Unsigned. */
	vt_req_file(&vt_ctx.r, "inbound-concat.txt", VT_PHP_NOW);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    -1);
	ck_assert_str_eq(vt_ctx.err, "vonage: unsigned webhook");
	free(body);
}
END_TEST

/*
 * POST-JSON webhooks sign the same fields. No published JSON vector
 * exists; inbound-json-signed.json was signed independently with
 * Python's hmac (sha256, secret "json-signing-secret") following the PHP
 * core SDK's base string.
 */
START_TEST(test_vonage_verify_json)
{
	char *body = cks_fixture("vonage", "inbound-json-signed.json");
	char *p;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx,
	    VT_HEAD VT_KEYS
	    "signature_secret = json-signing-secret\nsignature_method = "
	    "sha256\n",
	    VT_PUBLIC));
	vt_req_form(&vt_ctx.r, body, VT_JSON_NOW);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    0);
	/* One digit of 'to' changed. */
	p = strstr(body, "447700900000");
	ck_assert_ptr_nonnull(p);
	p[11] = '9';
	vt_req_form(&vt_ctx.r, body, VT_JSON_NOW);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    -1);
	free(body);
}
END_TEST

START_TEST(test_vonage_verify_unsigned_api_key)
{
	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	vt_req_file(&vt_ctx.r, "inbound-concat.txt", 0);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    0);
	vt_req_form(&vt_ctx.r, "msisdn=1&api-key=KEX", 0);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    -1);
	vt_req_form(&vt_ctx.r, "msisdn=1&api-key=KEY0", 0);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    -1);
	vt_req_file(&vt_ctx.r, "inbound-signed.txt", 0);
	ck_assert_int_eq(vt_ctx.ad->ops->verify(vt_ctx.ad, &vt_ctx.r.req,
			     vt_ctx.err, sizeof(vt_ctx.err)),
	    -1);
}
END_TEST

START_TEST(test_vonage_parse_inbound)
{
	struct in_msg m;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	memset(&m, 0, sizeof(m));
	vt_req_file(&vt_ctx.r, "inbound-signed.txt", 0);
	ck_assert_int_eq(vt_ctx.ad->ops->parse_inbound(vt_ctx.ad, &vt_ctx.r.req,
			     &m, vt_ctx.err, sizeof(vt_ctx.err)),
	    0);
	ck_assert_str_eq(m.provider_id, "0B00000042AC53BD");
	ck_assert_str_eq(m.from, "+14843472194");
	ck_assert_str_eq(m.to, "+12192259404");
	ck_assert_str_eq(m.body, "Test with & and =");
	ck_assert_uint_eq(m.concat_total, 0);
	in_msg_clear(&m);
	/* POST-JSON, UTF-8 text. */
	vt_req_file(&vt_ctx.r, "inbound-json.json", 0);
	ck_assert_int_eq(vt_ctx.ad->ops->parse_inbound(vt_ctx.ad, &vt_ctx.r.req,
			     &m, vt_ctx.err, sizeof(vt_ctx.err)),
	    0);
	ck_assert_str_eq(m.body, "Ol\xc3\xa1 \xf0\x9f\x91\x8b & = +");
	ck_assert_str_eq(m.from, "+447700900001");
	in_msg_clear(&m);
}
END_TEST

START_TEST(test_vonage_parse_inbound_concat)
{
	struct in_msg m;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	memset(&m, 0, sizeof(m));
	vt_req_file(&vt_ctx.r, "inbound-concat.txt", 0);
	ck_assert_int_eq(vt_ctx.ad->ops->parse_inbound(vt_ctx.ad, &vt_ctx.r.req,
			     &m, vt_ctx.err, sizeof(vt_ctx.err)),
	    0);
	ck_assert_str_eq(m.concat_ref, "1a2b");
	ck_assert_uint_eq(m.concat_part, 2);
	ck_assert_uint_eq(m.concat_total, 2);
	ck_assert_str_eq(m.body, "Second half");
	in_msg_clear(&m);
}
END_TEST

START_TEST(test_vonage_parse_inbound_ignored_and_malformed)
{
	static const char *const bad[] = {"inbound-no-msisdn.txt",
	    "inbound-bad-concat.txt", "inbound-json-truncated.json", NULL};
	struct in_msg m;
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	memset(&m, 0, sizeof(m));
	vt_req_file(&vt_ctx.r, "inbound-binary.txt", 0);
	ck_assert_int_eq(vt_ctx.ad->ops->parse_inbound(vt_ctx.ad, &vt_ctx.r.req,
			     &m, vt_ctx.err, sizeof(vt_ctx.err)),
	    1);
	ck_assert_ptr_null(m.body);
	for (i = 0; bad[i] != NULL; i++) {
		vt_req_file(&vt_ctx.r, bad[i], 0);
		ck_assert_msg(vt_ctx.ad->ops->parse_inbound(vt_ctx.ad,
				  &vt_ctx.r.req, &m, vt_ctx.err,
				  sizeof(vt_ctx.err)) == -1,
		    "%s parsed", bad[i]);
		ck_assert_ptr_null(m.body);
	}
}
END_TEST

START_TEST(test_vonage_parse_status)
{
	static const struct {
		const char *file;
		int rc;
		enum msg_status st;
		int code;
	} cases[] = {
	    {"dlr-delivered.txt", 0, MSG_ST_DELIVERED, 0},
	    {"dlr-expired.txt", 0, MSG_ST_UNDELIVERED, 1},
	    {"dlr-failed.txt", 0, MSG_ST_UNDELIVERED, 5},
	    {"dlr-rejected.txt", 0, MSG_ST_FAILED, 6},
	    {"dlr-accepted.txt", 1, 0, 0},
	    {"dlr-buffered.txt", 1, 0, 0},
	    {"dlr-unknown.txt", 1, 0, 0},
	    {"dlr-no-message-id.txt", -1, 0, 0},
	};
	struct status_update u;
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&u, 0, sizeof(u));
		vt_req_file(&vt_ctx.r, cases[i].file, 0);
		ck_assert_msg(vt_ctx.ad->ops->parse_status(vt_ctx.ad,
				  &vt_ctx.r.req, &u, vt_ctx.err,
				  sizeof(vt_ctx.err)) == cases[i].rc,
		    "%s", cases[i].file);
		if (cases[i].rc != 0)
			continue;
		ck_assert_int_eq(u.status, cases[i].st);
		ck_assert_int_eq(u.code, cases[i].code);
		ck_assert_str_eq(u.provider_id, "0A0000000123ABCD");
		ck_assert_int_eq(u.msg_id, 42);
	}
}
END_TEST

START_TEST(test_vonage_reply_body)
{
	const char *ctype = NULL;

	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx, VT_HEAD VT_KEYS, VT_PUBLIC));
	ck_assert_str_eq(
	    vt_ctx.ad->ops->reply_body(vt_ctx.ad, WEBHOOK_INBOUND, &ctype), "");
	ck_assert_str_eq(ctype, "text/plain");
	ck_assert_str_eq(
	    vt_ctx.ad->ops->reply_body(vt_ctx.ad, WEBHOOK_STATUS, &ctype), "");
}
END_TEST

/* Config errors name FILE:LINE of the key (or of the section header). */
START_TEST(test_vonage_config_errors)
{
	static const struct {
		const char *text;
		int line;
		const char *msg;
	} cases[] = {
	    {VT_HEAD "api_key = KEY\n", 1, "[sender v1] needs api_secret"},
	    {VT_HEAD VT_KEYS "colour = blue\n", 6, "colour"},
	    {VT_HEAD VT_KEYS "signature_secret = s\nsignature_method = sha3\n",
		7, "signature_method must be md5hash"},
	    {VT_HEAD VT_KEYS "signature_method = sha256\n", 6,
		"signature_method needs signature_secret"},
	    {"[sender v1]\nprovider = vonage\n" VT_KEYS, 1,
		"[sender v1] needs from"},
	};
	size_t i = (size_t)_i;

	cks_assert_config_error(&vt_ctx, cases[i].text, VT_PUBLIC,
	    cases[i].line, cases[i].msg);
}
END_TEST

START_TEST(test_vonage_config_no_io)
{
	ck_assert_ptr_nonnull(cks_adapter(&vt_ctx,
	    VT_HEAD VT_KEYS
	    "signature_secret = s3cret\nsignature_method = sha512\n"
	    "base_url = http://127.0.0.1:9\n",
	    NULL));
	ck_assert_ptr_eq(vt_ctx.ad->ops, adapter_ops_lookup("vonage"));
	ck_assert_ptr_null(smshttp_webhook_url(vt_ctx.ad, WEBHOOK_STATUS));
	ck_assert_uint_eq(vt_ctx.ad->in_flight, 0);
}
END_TEST

Suite *
vonage_suite(void)
{
	Suite *s = suite_create("vonage");
	TCase *tc;

	tc = tcase_create("build");
	tcase_add_checked_fixture(tc, vt_setup, vt_teardown);
	tcase_add_test(tc, test_vonage_build_form);
	tcase_add_test(tc, test_vonage_build_unicode_emoji);
	tcase_add_test(tc, test_vonage_build_gsm_stays_text);
	tcase_add_test(tc, test_vonage_build_non_gsm_switches);
	tcase_add_test(tc, test_vonage_build_sender_and_no_callback);
	tcase_add_test(tc, test_vonage_build_ttl);
	tcase_add_test(tc, test_vonage_build_bad_number);
	suite_add_tcase(s, tc);

	tc = tcase_create("classify");
	tcase_add_test(tc, test_vonage_classify_accepted);
	tcase_add_test(tc, test_vonage_classify_transient_codes);
	tcase_add_test(tc, test_vonage_classify_permanent_codes);
	tcase_add_test(tc, test_vonage_classify_sender_refused);
	tcase_add_test(tc, test_vonage_classify_http);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_add_checked_fixture(tc, vt_setup, vt_teardown);
	tcase_add_test(tc, test_vonage_verify_php_sdk_vector);
	tcase_add_loop_test(tc, test_vonage_verify_php_sdk_hmac, 0, 4);
	tcase_add_test(tc, test_vonage_verify_tampered_missing_stale);
	tcase_add_test(tc, test_vonage_verify_json);
	tcase_add_test(tc, test_vonage_verify_unsigned_api_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, vt_setup, vt_teardown);
	tcase_add_test(tc, test_vonage_parse_inbound);
	tcase_add_test(tc, test_vonage_parse_inbound_concat);
	tcase_add_test(tc, test_vonage_parse_inbound_ignored_and_malformed);
	tcase_add_test(tc, test_vonage_parse_status);
	tcase_add_test(tc, test_vonage_reply_body);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, vt_setup, vt_teardown);
	tcase_add_loop_test(tc, test_vonage_config_errors, 0, 5);
	tcase_add_test(tc, test_vonage_config_no_io);
	suite_add_tcase(s, tc);
	return s;
}
