/*
 * check_plivo.c - unit tests of the Plivo Message API adapter: the exact
 * outbound request (path, Basic auth, JSON fields with UTF-8 text), the
 * classification of Plivo's answers, V2 and V3 webhook signatures, the
 * parsing of inbound SMS and status callbacks from
 * tests/fixtures/plivo/, and configuration errors with FILE:LINE.
 *
 * Signature vectors: the V2 ones are published in Plivo's own SDK tests
 * (plivo-node test/utils.js, plivo-go utils_test.go). Plivo publishes no
 * V3 vector that its maintained SDKs reproduce (plivo-go's
 * TestValidateSignatureV3Pass encodes an older Go variant with "/?" and
 * a trailing '&'), so the V3 vectors below were computed independently
 * with Python's hmac following plivo-python plivo/utils/signature_v3.py,
 * and each was then accepted by Plivo's Node SDK (plivo 4.79.0,
 * validateV3Signature) before being written here.
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

#define PT_PUBLIC "https://gw.example.org"
#define PT_HEAD	  "[sender p1]\nprovider = plivo\nfrom = +14155550199\n"
#define PT_KEYS \
	"auth_id = MAXXXXXXXXXXXXXXXXXX\nauth_token = plivo-test-auth-token\n"

static struct cks_ctx pt_ctx;

static void pt_setup(void);
static void pt_teardown(void);
static void pt_req_post(struct cks_req *r, const char *url, const char *name);
static void pt_sign(struct cks_req *r, const char *version, const char *sig,
    const char *nonce);
static void pt_classify(const char *file, int status, struct send_result *res);
static void pt_v3_req(size_t i);

static void
pt_setup(void)
{
	cks_setup(&pt_ctx, &plivo_provider, "p1");
}

static void
pt_teardown(void)
{
	cks_teardown(&pt_ctx);
}

/* A form POST of fixture 'name' (NULL: no body) to 'url'. */
static void
pt_req_post(struct cks_req *r, const char *url, const char *name)
{
	char *body = name != NULL ? cks_fixture("plivo", name) : NULL;

	cks_req_init(r, "POST", url, body != NULL ? body : "", "203.0.113.9");
	cks_req_decode(r, r->body);
	free(body);
}

/* Adds X-Plivo-Signature-<version> and its -Nonce header. */
static void
pt_sign(struct cks_req *r, const char *version, const char *sig,
    const char *nonce)
{
	static char names[4][64];
	size_t i = r->req.nheaders;

	ck_assert_uint_le(i + 2, 4);
	snprintf(names[i], sizeof(names[i]), "X-Plivo-Signature-%s", version);
	snprintf(names[i + 1], sizeof(names[i + 1]),
	    "x-plivo-signature-%s-nonce", version);
	r->hdr[i].key = names[i];
	r->hdr[i].value = sig;
	r->hdr[i + 1].key = names[i + 1];
	r->hdr[i + 1].value = nonce;
	r->req.nheaders += 2;
}

static void
pt_classify(const char *file, int status, struct send_result *res)
{
	cks_classify_file(&plivo_provider, status, file, 0, res);
}

START_TEST(test_plivo_build_request)
{
	struct smshttp_req req;
	struct out_msg msg;
	char *body;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, PT_HEAD PT_KEYS, PT_PUBLIC));
	cks_msg(&msg, "Hi & bye = 1+1\nline2");
	body = cks_build(&pt_ctx, &msg, &req, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(req.method, "POST");
	ck_assert_str_eq(req.path, "/v1/Account/MAXXXXXXXXXXXXXXXXXX/Message/");
	ck_assert_str_eq(req.content_type, "application/json");
	ck_assert_uint_eq(req.nheaders, 1);
	/* base64("MAXXXXXXXXXXXXXXXXXX:plivo-test-auth-token") */
	ck_assert_str_eq(req.headers[0],
	    "Authorization: Basic "
	    "TUFYWFhYWFhYWFhYWFhYWFhYWFg6cGxpdm8tdGVzdC1hdXRoLXRva2Vu");
	ck_assert_str_eq(body,
	    "{\"src\":\"14155550199\",\"dst\":\"14155550100\",\"text\":\"Hi & "
	    "bye = 1+1\\nline2\",\"url\":\"https://gw.example.org/webhooks/"
	    "p1/status\",\"method\":\"POST\"}");
	free(body);
}
END_TEST

START_TEST(test_plivo_build_utf8)
{
	struct smshttp_req req;
	struct out_msg msg;
	char *body;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, PT_HEAD PT_KEYS, PT_PUBLIC));
	cks_msg(&msg, "Ol\xc3\xa1 \xf0\x9f\x91\x8b \"q\" & =+\n");
	body = cks_build(&pt_ctx, &msg, &req, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(body,
	    "{\"src\":\"14155550199\",\"dst\":\"14155550100\",\"text\":\"Ol"
	    "\xc3\xa1 \xf0\x9f\x91\x8b \\\"q\\\" & =+\\n\",\"url\":\"https://"
	    "gw.example.org/webhooks/p1/status\",\"method\":\"POST\"}");
	free(body);
	/* Text that is not UTF-8 can never be sent. */
	cks_msg(&msg, "bad \xff");
	body = cks_build(&pt_ctx, &msg, &req, &rc);
	ck_assert_int_eq(rc, -1);
	free(body);
}
END_TEST

START_TEST(test_plivo_build_sender_no_callback)
{
	struct smshttp_req req;
	struct out_msg msg;
	char *body;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, PT_HEAD PT_KEYS, NULL));
	cks_msg(&msg, "hi");
	strcpy(msg.from, "ACME");
	body = cks_build(&pt_ctx, &msg, &req, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(body,
	    "{\"src\":\"ACME\",\"dst\":\"14155550100\",\"text\":\"hi\"}");
	free(body);
}
END_TEST

/* dst is digits only: Plivo's '<' separator must never get through. */
START_TEST(test_plivo_build_bad_number)
{
	static const char *const bad[] = {"+14155550100<14155550101", "+123",
	    "+1 415 555 0100", "", NULL};
	struct smshttp_req req;
	struct out_msg msg;
	char *body;
	size_t i;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, PT_HEAD PT_KEYS, PT_PUBLIC));
	for (i = 0; bad[i] != NULL; i++) {
		cks_msg(&msg, "hi");
		strcpy(msg.to, bad[i]);
		body = cks_build(&pt_ctx, &msg, &req, &rc);
		ck_assert_int_eq(rc, -1);
		free(body);
	}
}
END_TEST

START_TEST(test_plivo_classify_accepted)
{
	struct send_result res;

	pt_classify("send-ok.json", 202, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	ck_assert_str_eq(res.provider_id,
	    "db3ce55a-7f1d-11e1-8ea7-1231380bc196");
	ck_assert(!res.uncertain);
	/* 202 that cannot be matched: it reached Plivo, outcome unknown. */
	pt_classify("send-no-uuid.json", 202, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
}
END_TEST

START_TEST(test_plivo_classify_errors)
{
	struct send_result res;

	pt_classify("send-invalid-dst.json", 400, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 400);
	/* The number in Plivo's text is masked. */
	ck_assert_str_eq(res.text,
	    "plivo http 400: # is not a valid dst "
	    "number");
	pt_classify("send-unauthorized.json", 401, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 401);
	pt_classify(NULL, 404, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_str_eq(res.text, "plivo http 404");
	pt_classify(NULL, 429, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	pt_classify(NULL, 500, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	pt_classify(NULL, 503, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	pt_classify(NULL, 0, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
}
END_TEST

/* V2 vectors published in Plivo's SDK tests (plivo-node test/utils.js). */
START_TEST(test_plivo_verify_v2_sdk_vectors)
{
	static const char *const cases[][4] = {
	    {"my_auth_token", "https://answer.url", "12345",
		"ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc="},
	    {"my_auth_token", "https://answer.url:8000", "24725744043720739450",
		"LDphWoWimP4QM5AoWI1uwP6WmlWtt5ITPZjXIWYvCNU="},
	    {"my_auth_tokens", "https://answer.url:8080", "123456",
		"xeV6S6BPIQJ/rgKCjCm/Fo2ve5zNe1fatQoHyRT8vxQ="},
	};
	char conf[512], url[128];
	size_t i = (size_t)_i;

	snprintf(conf, sizeof(conf),
	    PT_HEAD "auth_id = MAXXXXXXXXXXXXXXXXXX\nauth_token = %s\n",
	    cases[i][0]);
	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, conf, PT_PUBLIC));
	pt_req_post(&pt_ctx.r, cases[i][1], "status-delivered.txt");
	pt_sign(&pt_ctx.r, "V2", cases[i][3], cases[i][2]);
	ck_assert_int_eq(cks_verify(&pt_ctx), 0);
	/* V2 covers neither the query nor the body. */
	snprintf(url, sizeof(url), "%s?x=1", cases[i][1]);
	pt_ctx.r.req.url = url;
	ck_assert_int_eq(cks_verify(&pt_ctx), 0);
	/* The port is signed (plivo-node: "fail for correct url but with
	 * port"). */
	snprintf(url, sizeof(url), "%s:9", cases[i][1]);
	pt_ctx.r.req.url = url;
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	pt_ctx.r.req.url = cases[i][1];
	pt_ctx.r.hdr[1].value = "54321";
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	ck_assert_str_eq(pt_ctx.err, "plivo: V2 signature mismatch");
}
END_TEST

/* The V3 vectors (see the top of the file for how they were made). */
static const struct {
	const char *method;
	const char *url;
	const char *file; /* POST body; NULL = none */
	const char *nonce;
	const char *sig;
} pt_v3[] = {
    {"POST", PT_PUBLIC "/webhooks/p1/status", "status-delivered.txt",
	"05429567804466091622", "Odgp6o3+udgRww/pZqmI0ezj+z0bNfmESocIaMFdejI="},
    {"POST", PT_PUBLIC "/webhooks/p1/inbound", "inbound-utf8.txt",
	"81302218765408917001", "2LG/eYQP3BqD245EeLqADJMzmGbvbTZ6bPOXBWAFRxo="},
    {"POST",
	"https://gw.example.org:8443/webhooks/p1/inbound?tag=a+b&x=2&tag=a"
	"%26c",
	"inbound.txt", "11111111111111111111",
	"60zCVY78TwDWROnAIpcPpLHPoQs6zJY3DiG81bDzQdo="},
    {"GET",
	PT_PUBLIC "/webhooks/p1/status?Status=sent&MessageUUID=db3ce55a-7f1d-"
		  "11e1-8ea7-1231380bc196&Sequence=2",
	NULL, "22222222222222222222",
	"XiBK/SUh0OND+MMwbHkgQ3L8/omqXe9X9NCbodgpE6w="},
    {"POST", PT_PUBLIC "/webhooks/p1/status?only=query", NULL,
	"33333333333333333333", "L/2O3u+R81w8OTmNu3H0L2DhdvRo6R6ld4+uS4IbdBY="},
};

/* Fills pt_ctx.r as the webhook layer would for vector i. */
static void
pt_v3_req(size_t i)
{
	const char *q;

	pt_req_post(&pt_ctx.r, pt_v3[i].url, pt_v3[i].file);
	pt_ctx.r.req.method = pt_v3[i].method;
	if (strcmp(pt_v3[i].method, "GET") == 0 &&
	    (q = strchr(pt_v3[i].url, '?')) != NULL) {
		pt_ctx.r.req.query = q + 1;
		cks_req_decode(&pt_ctx.r, q + 1);
	}
}

START_TEST(test_plivo_verify_v3_vectors)
{
	char multi[128];
	size_t i = (size_t)_i;

	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, PT_HEAD PT_KEYS, PT_PUBLIC));
	pt_v3_req(i);
	pt_sign(&pt_ctx.r, "V3", pt_v3[i].sig, pt_v3[i].nonce);
	ck_assert_int_eq(cks_verify(&pt_ctx), 0);
	/* One signature per active token: any one matching will do. */
	snprintf(multi, sizeof(multi), "bm90IGl0=, %s", pt_v3[i].sig);
	pt_ctx.r.hdr[0].value = multi;
	ck_assert_int_eq(cks_verify(&pt_ctx), 0);
	pt_ctx.r.hdr[0].value = "bm90IGl0=,c3RpbGwgbm90";
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	/* Another nonce. */
	pt_ctx.r.hdr[0].value = pt_v3[i].sig;
	pt_ctx.r.hdr[1].value = "99999999999999999999";
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	ck_assert_str_eq(pt_ctx.err, "plivo: V3 signature mismatch");
}
END_TEST

START_TEST(test_plivo_verify_v3_tampered)
{
	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, PT_HEAD PT_KEYS, PT_PUBLIC));
	/* A changed field. */
	pt_v3_req(0);
	pt_sign(&pt_ctx.r, "V3", pt_v3[0].sig, pt_v3[0].nonce);
	ck_assert_str_eq(pt_ctx.r.kv[4].key, "Status");
	pt_ctx.r.own[9][0] = 'D';
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	/* An added field. */
	pt_v3_req(0);
	pt_sign(&pt_ctx.r, "V3", pt_v3[0].sig, pt_v3[0].nonce);
	cks_req_decode(&pt_ctx.r, "Extra=1");
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	/* Another URL. */
	pt_v3_req(0);
	pt_sign(&pt_ctx.r, "V3", pt_v3[0].sig, pt_v3[0].nonce);
	pt_ctx.r.req.url = PT_PUBLIC "/webhooks/p2/status";
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	/* A changed query value. */
	pt_v3_req(2);
	pt_sign(&pt_ctx.r, "V3", pt_v3[2].sig, pt_v3[2].nonce);
	pt_ctx.r.req.url =
	    "https://gw.example.org:8443/webhooks/p1/inbound?tag=a+"
	    "b&x=3&tag=a%26c";
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	/* Half a V3 header pair is refused even beside a valid V2. */
	pt_req_post(&pt_ctx.r, "https://answer.url", "status-delivered.txt");
	pt_sign(&pt_ctx.r, "V2",
	    "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc=", "12345");
	pt_ctx.r.hdr[2].key = "X-Plivo-Signature-V3";
	pt_ctx.r.hdr[2].value = "bm90IGl0";
	pt_ctx.r.req.nheaders = 3;
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	/* No signature at all. */
	pt_req_post(&pt_ctx.r, PT_PUBLIC "/webhooks/p1/status",
	    "status-delivered.txt");
	ck_assert_int_eq(cks_verify(&pt_ctx), -1);
	ck_assert_str_eq(pt_ctx.err, "plivo: unsigned webhook");
}
END_TEST

START_TEST(test_plivo_parse_inbound)
{
	struct in_msg m;

	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, PT_HEAD PT_KEYS, PT_PUBLIC));
	memset(&m, 0, sizeof(m));
	pt_req_post(&pt_ctx.r, PT_PUBLIC "/webhooks/p1/inbound", "inbound.txt");
	ck_assert_int_eq(pt_ctx.ad->ops->parse_inbound(pt_ctx.ad, &pt_ctx.r.req,
			     &m, pt_ctx.err, sizeof(pt_ctx.err)),
	    0);
	ck_assert_str_eq(m.provider_id, "2a340179-0ad0-4c3b-9d16-6e0f4a1e1b5c");
	ck_assert_str_eq(m.from, "+14155550100");
	ck_assert_str_eq(m.to, "+14155550199");
	ck_assert_str_eq(m.body, "STOP");
	ck_assert_uint_eq(m.segments, 1);
	in_msg_clear(&m);
	pt_req_post(&pt_ctx.r, PT_PUBLIC "/webhooks/p1/inbound",
	    "inbound-utf8.txt");
	ck_assert_int_eq(pt_ctx.ad->ops->parse_inbound(pt_ctx.ad, &pt_ctx.r.req,
			     &m, pt_ctx.err, sizeof(pt_ctx.err)),
	    0);
	ck_assert_str_eq(m.body, "Ol\xc3\xa1 \xf0\x9f\x91\x8b & = +\nline2");
	ck_assert_uint_eq(m.segments, 2);
	in_msg_clear(&m);
	pt_req_post(&pt_ctx.r, PT_PUBLIC "/webhooks/p1/inbound",
	    "inbound-no-from.txt");
	ck_assert_int_eq(pt_ctx.ad->ops->parse_inbound(pt_ctx.ad, &pt_ctx.r.req,
			     &m, pt_ctx.err, sizeof(pt_ctx.err)),
	    -1);
	ck_assert_ptr_null(m.body);
}
END_TEST

START_TEST(test_plivo_parse_status)
{
	static const struct {
		const char *file;
		int rc;
		enum msg_status st;
		int code;
		int64_t seq;
	} cases[] = {
	    {"status-queued.txt", 1, 0, 0, 0},
	    {"status-sent.txt", 0, MSG_ST_SENT, 0, 2},
	    {"status-delivered.txt", 0, MSG_ST_DELIVERED, 0, 3},
	    {"status-undelivered.txt", 0, MSG_ST_UNDELIVERED, 200, 4},
	    {"status-failed.txt", 0, MSG_ST_FAILED, 420, 5},
	    {"status-read.txt", 0, MSG_ST_DELIVERED, 0, 6},
	    {"status-rejected.txt", 0, MSG_ST_FAILED, 450, 7},
	    {"status-no-uuid.txt", -1, 0, 0, 0},
	};
	struct status_update u;
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, PT_HEAD PT_KEYS, PT_PUBLIC));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&u, 0, sizeof(u));
		pt_req_post(&pt_ctx.r, PT_PUBLIC "/webhooks/p1/status",
		    cases[i].file);
		ck_assert_msg(pt_ctx.ad->ops->parse_status(pt_ctx.ad,
				  &pt_ctx.r.req, &u, pt_ctx.err,
				  sizeof(pt_ctx.err)) == cases[i].rc,
		    "%s", cases[i].file);
		if (cases[i].rc != 0)
			continue;
		ck_assert_int_eq(u.status, cases[i].st);
		ck_assert_int_eq(u.code, cases[i].code);
		ck_assert_int_eq(u.sequence, cases[i].seq);
		ck_assert_int_eq(u.msg_id, 0);
		ck_assert_str_eq(u.provider_id,
		    "db3ce55a-7f1d-11e1-8ea7-1231380bc196");
	}
}
END_TEST

START_TEST(test_plivo_reply_body)
{
	const char *ctype = NULL;

	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx, PT_HEAD PT_KEYS, PT_PUBLIC));
	ck_assert_str_eq(
	    pt_ctx.ad->ops->reply_body(pt_ctx.ad, WEBHOOK_INBOUND, &ctype),
	    "<Response></Response>");
	ck_assert_str_eq(ctype, "text/xml");
	ck_assert_str_eq(
	    pt_ctx.ad->ops->reply_body(pt_ctx.ad, WEBHOOK_STATUS, &ctype), "");
}
END_TEST

START_TEST(test_plivo_config_errors)
{
	static const struct {
		const char *text;
		int line;
		const char *msg;
	} cases[] = {
	    {PT_HEAD "auth_id = MAXXXXXXXXXXXXXXXXXX\n", 1,
		"[sender p1] needs auth_token"},
	    {PT_HEAD "auth_id = MA/../x\nauth_token = t\n", 4,
		"auth_id must be Plivo's alphanumeric id"},
	    {PT_HEAD PT_KEYS "signature = v3\n", 6, "signature"},
	    {"[sender p1]\nprovider = plivo\n" PT_KEYS, 1,
		"[sender p1] needs from"},
	};
	size_t i = (size_t)_i;

	cks_assert_config_error(&pt_ctx, cases[i].text, PT_PUBLIC,
	    cases[i].line, cases[i].msg);
}
END_TEST

START_TEST(test_plivo_config_no_io)
{
	ck_assert_ptr_nonnull(cks_adapter(&pt_ctx,
	    PT_HEAD PT_KEYS "base_url = http://127.0.0.1:9\ntimeout = 2s\n",
	    NULL));
	ck_assert_ptr_eq(pt_ctx.ad->ops, adapter_ops_lookup("plivo"));
	ck_assert_ptr_null(smshttp_webhook_url(pt_ctx.ad, WEBHOOK_STATUS));
}
END_TEST

Suite *
plivo_suite(void)
{
	Suite *s = suite_create("plivo");
	TCase *tc;

	tc = tcase_create("build");
	tcase_add_checked_fixture(tc, pt_setup, pt_teardown);
	tcase_add_test(tc, test_plivo_build_request);
	tcase_add_test(tc, test_plivo_build_utf8);
	tcase_add_test(tc, test_plivo_build_sender_no_callback);
	tcase_add_test(tc, test_plivo_build_bad_number);
	suite_add_tcase(s, tc);

	tc = tcase_create("classify");
	tcase_add_test(tc, test_plivo_classify_accepted);
	tcase_add_test(tc, test_plivo_classify_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_add_checked_fixture(tc, pt_setup, pt_teardown);
	tcase_add_loop_test(tc, test_plivo_verify_v2_sdk_vectors, 0, 3);
	tcase_add_loop_test(tc, test_plivo_verify_v3_vectors, 0,
	    sizeof(pt_v3) / sizeof(pt_v3[0]));
	tcase_add_test(tc, test_plivo_verify_v3_tampered);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, pt_setup, pt_teardown);
	tcase_add_test(tc, test_plivo_parse_inbound);
	tcase_add_test(tc, test_plivo_parse_status);
	tcase_add_test(tc, test_plivo_reply_body);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, pt_setup, pt_teardown);
	tcase_add_loop_test(tc, test_plivo_config_errors, 0, 4);
	tcase_add_test(tc, test_plivo_config_no_io);
	suite_add_tcase(s, tc);
	return s;
}
