/*
 * check_telnyx.c - unit tests of the Telnyx Messaging v2 adapter: the
 * exact outbound request (path, Bearer auth, JSON with UTF-8 text), the
 * classification of Telnyx's answers (40300 = opted out), Ed25519
 * webhook signatures (good, tampered, missing, stale, future, wrong
 * key), the parsing of webhook envelopes from tests/fixtures/telnyx/,
 * and configuration errors with FILE:LINE.
 *
 * Signature vectors: Telnyx publishes none (its SDK tests generate a key
 * at run time: telnyx-python tests/test_webhook.py). The key here is
 * RFC 8032 §7.1 TEST 1 (public d75a9801...511a, published there); the
 * signatures over "1795749274|" + each fixture's bytes were made with
 * the openssl CLI (openssl pkeyutl -sign -rawin) and then accepted by
 * Telnyx's own Node SDK verifier (telnyx 7.24.0, TelnyxWebhook.verify)
 * before being written here.
 *
 * Adapters are made with adapter_new() from a real config file in a
 * per-test directory and an env whose httpc is NULL (no I/O at init).
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

#define TT_PUBLIC "https://gw.example.org"
/* RFC 8032 TEST 1 public key, base64. */
#define TT_PUBKEY "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
/* The signatures' telnyx-timestamp (2026-11-27T03:14:34Z). */
#define TT_TS	   "1795749274"
#define TT_NOW	   INT64_C(1795749274000)
#define TT_PROFILE "4001767e-ce0f-4cae-9d5f-0d5e636e7809"
#define TT_HEAD	   "[sender t1]\nprovider = telnyx\nfrom = +14155550199\n"
#define TT_KEYS                                         \
	"api_key = KEYtestkey\npublic_key = " TT_PUBKEY \
	"\nmessaging_profile_id = " TT_PROFILE "\n"

/* Signed fixtures: the signature of TT_TS "|" + the file's bytes. */
static const char *const tt_signed[][2] = {
    {"inbound-received.json",
	"OQslPK2bCWWyg97+QFL+CyuTy8pkA4ClFSK+fw4mLSWUNV+dT9yzMnb9SHQzIIzVgDJw"
	"ZpfUFV/fUwpW4euRDw=="},
    {"status-delivered.json",
	"TmlnVG/Yz/TpQjvngRuCS2ysOqliyXWUOOIC/Mrbz4h3V5hqZPkzFA6C9cubLwO6kXLF"
	"FlRXc5f7XpsdYiqGDA=="},
    {"status-delivery-failed.json",
	"31go2UcH+HAAlvRHu9HFpWayRh/dOhl8UDke/t8AVLRop/2XP61kn+4ed6xYNUtP1G52"
	"WmPLaknz3Jq6Cy91DA=="},
};

static struct cks_ctx tt_ctx;

static void tt_setup(void);
static void tt_teardown(void);
static void tt_req(const char *name, const char *sig, const char *ts,
    int64_t now);
static void tt_classify(const char *file, int status, struct send_result *res);

static void
tt_setup(void)
{
	cks_setup(&tt_ctx, &telnyx_provider, "t1");
}

static void
tt_teardown(void)
{
	cks_teardown(&tt_ctx);
}

/* A JSON POST of fixture 'name'; NULL sig or ts leaves that header out. */
static void
tt_req(const char *name, const char *sig, const char *ts, int64_t now)
{
	struct cks_req *r = &tt_ctx.r;
	char *body = cks_fixture("telnyx", name);

	cks_req_init(r, "POST", TT_PUBLIC "/webhooks/t1/status", body,
	    "192.0.2.10");
	free(body);
	r->req.now = now;
	r->hdr[r->req.nheaders].key = "Content-Type";
	r->hdr[r->req.nheaders++].value = "application/json";
	if (sig != NULL) {
		r->hdr[r->req.nheaders].key = "Telnyx-Signature-Ed25519";
		r->hdr[r->req.nheaders++].value = sig;
	}
	if (ts != NULL) {
		r->hdr[r->req.nheaders].key = "telnyx-timestamp";
		r->hdr[r->req.nheaders++].value = ts;
	}
}

/* Telnyx's 429 comes with a Retry-After of 3 seconds here. */
static void
tt_classify(const char *file, int status, struct send_result *res)
{
	cks_classify_file(&telnyx_provider, status, file, status == 429 ? 3 : 0,
	    res);
}

START_TEST(test_telnyx_build_request)
{
	struct smshttp_req req;
	struct out_msg msg;
	char *body;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	cks_msg(&msg, "Hi & bye = 1+1\nline2");
	body = cks_build(&tt_ctx, &msg, &req, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(req.method, "POST");
	ck_assert_str_eq(req.path, "/v2/messages");
	ck_assert_str_eq(req.content_type, "application/json");
	ck_assert_uint_eq(req.nheaders, 1);
	ck_assert_str_eq(req.headers[0], "Authorization: Bearer KEYtestkey");
	ck_assert_str_eq(body,
	    "{\"from\":\"+14155550199\",\"to\":\"+14155550100\",\"text\":\"Hi & "
	    "bye = 1+1\\nline2\",\"webhook_url\":\"https://gw.example.org/"
	    "webhooks/t1/status\",\"messaging_profile_id\":\"" TT_PROFILE
	    "\"}");
	free(body);
}
END_TEST

START_TEST(test_telnyx_build_utf8)
{
	struct smshttp_req req;
	struct out_msg msg;
	char *body;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, NULL));
	cks_msg(&msg, "Ol\xc3\xa1 \xf0\x9f\x91\x8b & =+\n\"\\");
	body = cks_build(&tt_ctx, &msg, &req, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(body,
	    "{\"from\":\"+14155550199\",\"to\":\"+14155550100\",\"text\":\"Ol"
	    "\xc3\xa1 \xf0\x9f\x91\x8b & =+\\n\\\"\\\\\",\"messaging_profile_"
	    "id\":\"" TT_PROFILE "\"}");
	free(body);
	cks_msg(&msg, "bad \xc3");
	body = cks_build(&tt_ctx, &msg, &req, &rc);
	ck_assert_int_eq(rc, -1);
	free(body);
}
END_TEST

START_TEST(test_telnyx_build_senders)
{
	struct smshttp_req req;
	struct out_msg msg;
	char *body;
	int rc;

	/* No from: the messaging profile's pool picks the number. */
	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx,
	    "[sender t1]\nprovider = telnyx\n"
	    "api_key = K\npublic_key = " TT_PUBKEY
	    "\nmessaging_profile_id = P\n",
	    NULL));
	cks_msg(&msg, "hi");
	body = cks_build(&tt_ctx, &msg, &req, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(body,
	    "{\"to\":\"+14155550100\",\"text\":\"hi\","
	    "\"messaging_profile_id\":\"P\"}");
	free(body);
	/* A number without '+' gets it; a name stays. */
	strcpy(msg.from, "14155550199");
	body = cks_build(&tt_ctx, &msg, &req, &rc);
	ck_assert_ptr_nonnull(strstr(body, "{\"from\":\"+14155550199\","));
	free(body);
	strcpy(msg.from, "ACME");
	body = cks_build(&tt_ctx, &msg, &req, &rc);
	ck_assert_ptr_nonnull(strstr(body, "{\"from\":\"ACME\","));
	free(body);
}
END_TEST

START_TEST(test_telnyx_build_bad_number)
{
	static const char *const bad[] = {"14155550100", "+1", "+1415555010a",
	    "+1234567890123456", "", NULL};
	struct smshttp_req req;
	struct out_msg msg;
	char *body;
	size_t i;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	for (i = 0; bad[i] != NULL; i++) {
		cks_msg(&msg, "hi");
		strcpy(msg.to, bad[i]);
		body = cks_build(&tt_ctx, &msg, &req, &rc);
		ck_assert_int_eq(rc, -1);
		free(body);
	}
}
END_TEST

START_TEST(test_telnyx_classify_accepted)
{
	struct send_result res;

	tt_classify("send-ok.json", 200, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	ck_assert_str_eq(res.provider_id,
	    "40385f64-5717-4562-b3fc-2c963f66afa6");
	ck_assert_uint_eq(res.flags, 0);
	tt_classify("send-no-id.json", 200, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
}
END_TEST

START_TEST(test_telnyx_classify_opted_out)
{
	struct send_result res;

	tt_classify("send-opted-out.json", 403, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 40300);
	ck_assert_uint_eq(res.flags, SEND_F_OPTED_OUT);
	/* Telnyx's title is kept, its detail (with both numbers) is not. */
	ck_assert_str_eq(res.text,
	    "telnyx http 403 code 40300: Blocked due to STOP message");
	tt_classify("send-opted-out.json", 400, &res);
	ck_assert_uint_eq(res.flags, SEND_F_OPTED_OUT);
}
END_TEST

START_TEST(test_telnyx_classify_errors)
{
	struct send_result res;

	tt_classify("send-invalid-to.json", 422, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 40310);
	ck_assert_uint_eq(res.flags, 0);
	tt_classify("send-unauthorized.json", 401, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 10009);
	tt_classify(NULL, 404, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 404);
	tt_classify(NULL, 403, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	tt_classify("send-invalid-to.json", 429, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_uint_eq(res.retry_after, 3);
	tt_classify(NULL, 500, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	tt_classify(NULL, 503, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	tt_classify(NULL, 0, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
}
END_TEST

START_TEST(test_telnyx_verify_signed)
{
	size_t i = (size_t)_i;

	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	tt_req(tt_signed[i][0], tt_signed[i][1], TT_TS, TT_NOW + 1000);
	ck_assert_int_eq(cks_verify(&tt_ctx), 0);
}
END_TEST

START_TEST(test_telnyx_verify_tampered)
{
	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	/* One byte of the body. */
	tt_req(tt_signed[0][0], tt_signed[0][1], TT_TS, TT_NOW);
	tt_ctx.r.body[strlen(tt_ctx.r.body) - 2] = ' ';
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
	ck_assert_str_eq(tt_ctx.err, "telnyx: signature mismatch");
	/* Re-serialised JSON (a trailing newline less) no longer matches. */
	tt_req(tt_signed[0][0], tt_signed[0][1], TT_TS, TT_NOW);
	tt_ctx.r.req.body_len--;
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
	/* Another fixture's signature. */
	tt_req(tt_signed[0][0], tt_signed[1][1], TT_TS, TT_NOW);
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
	/* The timestamp is signed too. */
	tt_req(tt_signed[0][0], tt_signed[0][1], "1795749275", TT_NOW);
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
}
END_TEST

START_TEST(test_telnyx_verify_wrong_key)
{
	/* RFC 8032 TEST 2's public key: valid, but not the signer's. */
	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx,
	    TT_HEAD "api_key = K\npublic_key = "
		    "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=\n",
	    TT_PUBLIC));
	tt_req(tt_signed[0][0], tt_signed[0][1], TT_TS, TT_NOW);
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
}
END_TEST

START_TEST(test_telnyx_verify_stale_future)
{
	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	tt_req(tt_signed[1][0], tt_signed[1][1], TT_TS, TT_NOW + 300000);
	ck_assert_int_eq(cks_verify(&tt_ctx), 0);
	tt_req(tt_signed[1][0], tt_signed[1][1], TT_TS, TT_NOW + 301000);
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
	ck_assert_str_eq(tt_ctx.err, "telnyx: stale timestamp");
	tt_req(tt_signed[1][0], tt_signed[1][1], TT_TS, TT_NOW - 300000);
	ck_assert_int_eq(cks_verify(&tt_ctx), 0);
	tt_req(tt_signed[1][0], tt_signed[1][1], TT_TS, TT_NOW - 301000);
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
	ck_assert_str_eq(tt_ctx.err, "telnyx: timestamp in the future");
}
END_TEST

START_TEST(test_telnyx_verify_missing_malformed)
{
	static const char *const bad_ts[] = {"", "-1795749274", "1795749274.5",
	    "17957492740000", "x", NULL};
	static const char *const bad_sig[] = {"", "c2ln",
	    "!!!!ZxsfFhq8EhsADKfw6NtFFY8=", NULL};
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	tt_req(tt_signed[0][0], NULL, TT_TS, TT_NOW);
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
	ck_assert_str_eq(tt_ctx.err, "telnyx: unsigned webhook");
	tt_req(tt_signed[0][0], tt_signed[0][1], NULL, TT_NOW);
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
	for (i = 0; bad_ts[i] != NULL; i++) {
		tt_req(tt_signed[0][0], tt_signed[0][1], bad_ts[i], TT_NOW);
		ck_assert_int_eq(cks_verify(&tt_ctx), -1);
	}
	for (i = 0; bad_sig[i] != NULL; i++) {
		tt_req(tt_signed[0][0], bad_sig[i], TT_TS, TT_NOW);
		ck_assert_int_eq(cks_verify(&tt_ctx), -1);
		ck_assert_str_eq(tt_ctx.err, "telnyx: malformed signature");
	}
	/* 88 characters that are not base64. */
	tt_req(tt_signed[0][0],
	    "****slPK2bCWWyg97+QFL+CyuTy8pkA4ClFSK+fw4mLSWUNV+dT9yzMnb9SHQzII"
	    "zVgDJwZpfUFV/fUwpW4euRDw==",
	    TT_TS, TT_NOW);
	ck_assert_int_eq(cks_verify(&tt_ctx), -1);
}
END_TEST

START_TEST(test_telnyx_parse_inbound)
{
	struct in_msg m;

	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	memset(&m, 0, sizeof(m));
	tt_req("inbound-received.json", NULL, NULL, 0);
	ck_assert_int_eq(tt_ctx.ad->ops->parse_inbound(tt_ctx.ad, &tt_ctx.r.req,
			     &m, tt_ctx.err, sizeof(tt_ctx.err)),
	    0);
	ck_assert_str_eq(m.provider_id, "84cca175-9755-4859-b67f-4730d7f58aa3");
	ck_assert_str_eq(m.from, "+14155550100");
	ck_assert_str_eq(m.to, "+14155550199");
	ck_assert_str_eq(m.body, "Ol\xc3\xa1 \xf0\x9f\x91\x8b & = +\nSTOP");
	ck_assert_uint_eq(m.segments, 1);
	ck_assert_uint_eq(m.num_media, 0);
	in_msg_clear(&m);
	tt_req("inbound-mms.json", NULL, NULL, 0);
	ck_assert_int_eq(tt_ctx.ad->ops->parse_inbound(tt_ctx.ad, &tt_ctx.r.req,
			     &m, tt_ctx.err, sizeof(tt_ctx.err)),
	    0);
	ck_assert_str_eq(m.body, "");
	ck_assert_uint_eq(m.num_media, 1);
	in_msg_clear(&m);
}
END_TEST

START_TEST(test_telnyx_parse_inbound_ignored_and_malformed)
{
	static const struct {
		const char *file;
		int rc;
	} cases[] = {
	    {"status-delivered.json", 1},
	    {"event-other.json", 1},
	    {"inbound-no-from.json", -1},
	    {"envelope-truncated.json", -1},
	    {"envelope-array.json", -1},
	};
	struct in_msg m;
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&m, 0, sizeof(m));
		tt_req(cases[i].file, NULL, NULL, 0);
		ck_assert_msg(tt_ctx.ad->ops->parse_inbound(tt_ctx.ad,
				  &tt_ctx.r.req, &m, tt_ctx.err,
				  sizeof(tt_ctx.err)) == cases[i].rc,
		    "%s", cases[i].file);
		ck_assert_ptr_null(m.body);
	}
}
END_TEST

START_TEST(test_telnyx_parse_status)
{
	static const struct {
		const char *file;
		int rc;
		enum msg_status st;
		int code;
	} cases[] = {
	    {"status-sent.json", 0, MSG_ST_SENT, 0},
	    {"status-delivered.json", 0, MSG_ST_DELIVERED, 0},
	    {"status-delivery-failed.json", 0, MSG_ST_UNDELIVERED, 40008},
	    {"status-sending-failed.json", 0, MSG_ST_FAILED, 40002},
	    {"status-unconfirmed.json", 0, MSG_ST_SENT, 0},
	    {"status-queued.json", 1, 0, 0},
	    {"status-sending.json", 1, 0, 0},
	    {"inbound-received.json", 1, 0, 0},
	    {"event-other.json", 1, 0, 0},
	    {"status-no-to.json", -1, 0, 0},
	    {"envelope-truncated.json", -1, 0, 0},
	};
	struct status_update u;
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&u, 0, sizeof(u));
		tt_req(cases[i].file, NULL, NULL, 0);
		ck_assert_msg(tt_ctx.ad->ops->parse_status(tt_ctx.ad,
				  &tt_ctx.r.req, &u, tt_ctx.err,
				  sizeof(tt_ctx.err)) == cases[i].rc,
		    "%s", cases[i].file);
		if (cases[i].rc != 0)
			continue;
		ck_assert_int_eq(u.status, cases[i].st);
		ck_assert_int_eq(u.code, cases[i].code);
		ck_assert_str_eq(u.provider_id,
		    "40385f64-5717-4562-b3fc-2c963f66afa6");
		ck_assert_int_eq(u.msg_id, 0);
	}
	tt_req("status-delivery-failed.json", NULL, NULL, 0);
	ck_assert_int_eq(tt_ctx.ad->ops->parse_status(tt_ctx.ad, &tt_ctx.r.req,
			     &u, tt_ctx.err, sizeof(tt_ctx.err)),
	    0);
	ck_assert_str_eq(u.text, "telnyx delivery_failed: Undeliverable");
}
END_TEST

START_TEST(test_telnyx_reply_body)
{
	const char *ctype = NULL;

	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx, TT_HEAD TT_KEYS, TT_PUBLIC));
	ck_assert_str_eq(
	    tt_ctx.ad->ops->reply_body(tt_ctx.ad, WEBHOOK_INBOUND, &ctype), "");
	ck_assert_str_eq(ctype, "text/plain");
}
END_TEST

START_TEST(test_telnyx_config_errors)
{
	static const struct {
		const char *text;
		int line;
		const char *msg;
	} cases[] = {
	    {TT_HEAD "api_key = K\n", 1, "[sender t1] needs public_key"},
	    {TT_HEAD "api_key = K\npublic_key = abc\n", 5,
		"public_key must be the base64 Ed25519 public key"},
	    {TT_HEAD "api_key = K\npublic_key = "
		     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n",
		5, "public_key must be"},
	    {"[sender t1]\nprovider = telnyx\napi_key = K\npublic_key = " TT_PUBKEY
	     "\n",
		1, "[sender t1] needs from = ... or messaging_profile_id"},
	    {TT_HEAD TT_KEYS "webhook_secret = x\n", 7, "webhook_secret"},
	};
	size_t i = (size_t)_i;

	cks_assert_config_error(&tt_ctx, cases[i].text, TT_PUBLIC,
	    cases[i].line, cases[i].msg);
}
END_TEST

START_TEST(test_telnyx_config_no_io)
{
	ck_assert_ptr_nonnull(cks_adapter(&tt_ctx,
	    TT_HEAD TT_KEYS "base_url = http://127.0.0.1:9/v\n", NULL));
	ck_assert_ptr_eq(tt_ctx.ad->ops, adapter_ops_lookup("telnyx"));
	ck_assert_ptr_null(smshttp_webhook_url(tt_ctx.ad, WEBHOOK_STATUS));
}
END_TEST

Suite *
telnyx_suite(void)
{
	Suite *s = suite_create("telnyx");
	TCase *tc;

	tc = tcase_create("build");
	tcase_add_checked_fixture(tc, tt_setup, tt_teardown);
	tcase_add_test(tc, test_telnyx_build_request);
	tcase_add_test(tc, test_telnyx_build_utf8);
	tcase_add_test(tc, test_telnyx_build_senders);
	tcase_add_test(tc, test_telnyx_build_bad_number);
	suite_add_tcase(s, tc);

	tc = tcase_create("classify");
	tcase_add_test(tc, test_telnyx_classify_accepted);
	tcase_add_test(tc, test_telnyx_classify_opted_out);
	tcase_add_test(tc, test_telnyx_classify_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_add_checked_fixture(tc, tt_setup, tt_teardown);
	tcase_add_loop_test(tc, test_telnyx_verify_signed, 0,
	    sizeof(tt_signed) / sizeof(tt_signed[0]));
	tcase_add_test(tc, test_telnyx_verify_tampered);
	tcase_add_test(tc, test_telnyx_verify_wrong_key);
	tcase_add_test(tc, test_telnyx_verify_stale_future);
	tcase_add_test(tc, test_telnyx_verify_missing_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, tt_setup, tt_teardown);
	tcase_add_test(tc, test_telnyx_parse_inbound);
	tcase_add_test(tc, test_telnyx_parse_inbound_ignored_and_malformed);
	tcase_add_test(tc, test_telnyx_parse_status);
	tcase_add_test(tc, test_telnyx_reply_body);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, tt_setup, tt_teardown);
	tcase_add_loop_test(tc, test_telnyx_config_errors, 0, 5);
	tcase_add_test(tc, test_telnyx_config_no_io);
	suite_add_tcase(s, tc);
	return s;
}
