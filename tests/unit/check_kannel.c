/*
 * check_kannel.c - unit tests of the Kannel smsbox adapter: the exact
 * sendsms GET (credentials, fields, coding switching, the encoded
 * dlr-url with our id, secret and %d), the classification of smsbox's
 * answers, the webhook guard (secret in the URL, allowed sources incl.
 * CIDRs and IPv6), the parsing of get-url/post-url MOs (charsets) and
 * dlr-url reports from tests/fixtures/kannel/, and configuration errors
 * with FILE:LINE. Kannel signs nothing, so there is no provider vector.
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
#include <event2/http.h>

#include "adapter.h"
#include "check_sms.h"
#include "check_suites.h"
#include "config.h"
#include "message.h"
#include "smshttp.h"

#define KT_PUBLIC "https://gw.example.org"
#define KT_SECRET "s3cret-Token_0123456789"
#define KT_HEAD	  "[sender k1]\nprovider = kannel\nfrom = +14155550199\n"
#define KT_KEYS                                                               \
	"username = kuser\npassword = p@ss w&rd\nwebhook_secret = " KT_SECRET \
	"\n"

static struct cks_ctx kt_ctx;

static void kt_setup(void);
static void kt_teardown(void);
static void kt_req(const char *method, const char *query_file,
    const char *body_file, const char *peer);
static void kt_req_query(const char *query, const char *peer);
static char *kt_build(const struct out_msg *msg, struct smshttp_req *req,
    int *rc);
static void kt_classify(const char *file, int status, struct send_result *res);

static void
kt_setup(void)
{
	cks_setup(&kt_ctx, &kannel_provider, "k1");
}

static void
kt_teardown(void)
{
	cks_teardown(&kt_ctx);
}

/*
 * A request to the inbound URL with the query of 'query_file' and the
 * body of 'body_file' (may be NULL), from 'peer'. The params the webhook
 * layer would decode are not needed: the adapter reads the raw query.
 */
static void
kt_req(const char *method, const char *query_file, const char *body_file,
    const char *peer)
{
	char *q = cks_fixture("kannel", query_file);

	kt_req_query(q, peer);
	free(q);
	kt_ctx.r.req.method = method;
	if (body_file != NULL) {
		free(kt_ctx.r.body);
		kt_ctx.r.body = cks_fixture("kannel", body_file);
		kt_ctx.r.req.body = kt_ctx.r.body;
		kt_ctx.r.req.body_len = strlen(kt_ctx.r.body);
	}
}

static void
kt_req_query(const char *query, const char *peer)
{
	struct cks_req *r = &kt_ctx.r;

	cks_req_init(r, "GET", KT_PUBLIC "/webhooks/k1/inbound", "", peer);
	r->query = strdup(query);
	r->req.query = r->query;
}

/* A GET has no body: returns the sendsms path, or build()'s reason. */
static char *
kt_build(const struct out_msg *msg, struct smshttp_req *req, int *rc)
{
	char *body = cks_build(&kt_ctx, msg, req, rc);

	if (*rc == 0)
		ck_assert_str_eq(body, "");
	free(body);
	return strdup(*rc == 0 ? req->path : kt_ctx.err);
}

static void
kt_classify(const char *file, int status, struct send_result *res)
{
	cks_classify_file(&kannel_provider, status, file, 0, res);
}

START_TEST(test_kannel_build_request)
{
	struct smshttp_req req;
	struct out_msg msg;
	char *path;
	int rc;

	ck_assert_ptr_nonnull(
	    cks_adapter(&kt_ctx, KT_HEAD KT_KEYS "smsc = smsc1\n", KT_PUBLIC));
	cks_msg(&msg, "Hi & bye = 1+1\nline2");
	path = kt_build(&msg, &req, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(req.method, "GET");
	ck_assert_ptr_null(req.content_type);
	ck_assert_uint_eq(req.nheaders, 0);
	ck_assert_str_eq(path,
	    "/cgi-bin/sendsms?username=kuser&password=p%40ss%20w%26rd"
	    "&from=%2B14155550199&to=%2B14155550100"
	    "&text=Hi%20%26%20bye%20%3D%201%2B1%0Aline2&charset=UTF-8&coding=0"
	    "&smsc=smsc1&dlr-mask=31&dlr-url=https%3A%2F%2Fgw.example.org%2F"
	    "webhooks%2Fk1%2Fstatus%3Fsecret%3D" KT_SECRET
	    "%26id%3D42%26type%3D%25d");
	free(path);
}
END_TEST

/* Kannel decodes the dlr-url once and expands %d in what is left. */
START_TEST(test_kannel_build_dlr_url_decodes)
{
	struct smshttp_req req;
	struct out_msg msg;
	char *path, *dlr, *amp;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, KT_PUBLIC));
	cks_msg(&msg, "x");
	msg.id = 9007199254740993LL;
	path = kt_build(&msg, &req, &rc);
	ck_assert_int_eq(rc, 0);
	dlr = strstr(path, "&dlr-url=");
	ck_assert_ptr_nonnull(dlr);
	amp = strchr(dlr + 1, '&');
	ck_assert_ptr_null(amp); /* the last field, its '&' all encoded */
	dlr = evhttp_uridecode(dlr + 9, 0, NULL);
	ck_assert_str_eq(dlr,
	    KT_PUBLIC "/webhooks/k1/status?secret=" KT_SECRET
		      "&id=9007199254740993&type=%d");
	free(dlr);
	free(path);
}
END_TEST

START_TEST(test_kannel_build_coding)
{
	static const struct {
		const char *text;
		const char *coding;
	} cases[] = {
	    {"plain [GSM] {ext} \xe2\x82\xac \xc3\xa9\xc3\xb1", "0"},
	    {"Ol\xc3\xa1 \xf0\x9f\x91\x8b", "2"},
	    {"\xc3\xa7", "2"},
	    {"back`tick", "2"},
	};
	struct smshttp_req req;
	struct out_msg msg;
	char want[32];
	char *path;
	size_t i;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, NULL));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cks_msg(&msg, cases[i].text);
		path = kt_build(&msg, &req, &rc);
		ck_assert_int_eq(rc, 0);
		snprintf(want, sizeof(want), "&coding=%s", cases[i].coding);
		ck_assert_msg(strstr(path, want) != NULL, "case %zu: %s", i,
		    path);
		/* No public_url: no delivery reports asked for. */
		ck_assert_ptr_null(strstr(path, "dlr-"));
		free(path);
	}
	cks_msg(&msg, "Ol\xc3\xa1 \xf0\x9f\x91\x8b");
	path = kt_build(&msg, &req, &rc);
	ck_assert_str_eq(path,
	    "/cgi-bin/sendsms?username=kuser&password=p%40ss%20w%26rd"
	    "&from=%2B14155550199&to=%2B14155550100"
	    "&text=Ol%C3%A1%20%F0%9F%91%8B&charset=UTF-8&coding=2");
	free(path);
}
END_TEST

START_TEST(test_kannel_build_refused)
{
	static const char *const bad[] = {"+14155550100 +14155550101",
	    "+1415555010a", "", "+12", NULL};
	struct smshttp_req req;
	struct out_msg msg;
	char *path, *big;
	size_t i;
	int rc;

	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, KT_PUBLIC));
	for (i = 0; bad[i] != NULL; i++) {
		cks_msg(&msg, "hi");
		strcpy(msg.to, bad[i]);
		path = kt_build(&msg, &req, &rc);
		ck_assert_int_eq(rc, -1);
		free(path);
	}
	/* A text whose GET does not fit cannot be sent: 2,000 emoji are
	 * 24,000 bytes percent-encoded, over smshttp_req.path. */
	big = malloc(4 * 2000 + 1);
	for (i = 0; i < 2000; i++)
		memcpy(big + 4 * i, "\xf0\x9f\x91\x8b", 4);
	big[4 * 2000] = '\0';
	cks_msg(&msg, big);
	path = kt_build(&msg, &req, &rc);
	ck_assert_int_eq(rc, -1);
	ck_assert_ptr_nonnull(strstr(path, "exceeds"));
	free(path);
	free(big);
}
END_TEST

START_TEST(test_kannel_classify)
{
	struct send_result res;

	kt_classify("send-accepted.txt", 202, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	kt_classify("send-queued.txt", 202, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	kt_classify("send-unexpected.txt", 200, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
	kt_classify("send-auth-failed.txt", 403, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 403);
	ck_assert_str_eq(res.text,
	    "kannel http 403: Authorization failed for sendsms");
	kt_classify("send-no-receiver.txt", 400, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 400);
	kt_classify("send-temporal.txt", 503, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 503);
	kt_classify(NULL, 0, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
}
END_TEST

START_TEST(test_kannel_verify_secret)
{
	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, KT_PUBLIC));
	kt_req("GET", "inbound-get.query", NULL, "127.0.0.1");
	ck_assert_int_eq(cks_verify(&kt_ctx), 0);
	/* Percent-encoded, it is still the secret. */
	kt_req_query("from=1&secret=s3cret%2DToken_0123456789", "127.0.0.1");
	ck_assert_int_eq(cks_verify(&kt_ctx), 0);
	kt_req_query("secret=s3cret-Token_012345678", "127.0.0.1");
	ck_assert_int_eq(cks_verify(&kt_ctx), -1);
	ck_assert_str_eq(kt_ctx.err, "kannel: wrong secret");
	kt_req_query("secret=s3cret-Token_01234567890", "127.0.0.1");
	ck_assert_int_eq(cks_verify(&kt_ctx), -1);
	kt_req_query("secret=s3cret-Token_0123456788", "127.0.0.1");
	ck_assert_int_eq(cks_verify(&kt_ctx), -1);
	kt_req_query("secret=s3cret-Token_0123456789%00x", "127.0.0.1");
	ck_assert_int_eq(cks_verify(&kt_ctx), -1);
	kt_req_query("from=1&to=2", "127.0.0.1");
	ck_assert_int_eq(cks_verify(&kt_ctx), -1);
	ck_assert_str_eq(kt_ctx.err, "kannel: no secret in the URL");
	kt_ctx.r.req.query = NULL;
	ck_assert_int_eq(cks_verify(&kt_ctx), -1);
}
END_TEST

START_TEST(test_kannel_verify_sources)
{
	static const struct {
		const char *peer;
		int rc;
	} def[] = {{"127.0.0.1", 0}, {"::1", 0}, {"::ffff:127.0.0.1", 0},
	    {"127.0.0.2", -1}, {"10.0.0.1", -1}, {"::2", -1},
	    {"not an address", -1}},
	  cidr[] = {{"10.1.255.3", 0}, {"10.1.0.0", 0}, {"10.2.0.1", -1},
	      {"10.0.255.255", -1}, {"192.0.2.77", 0}, {"192.0.2.78", -1},
	      {"2001:db8:1::5", 0}, {"2001:db9::1", -1}, {"127.0.0.1", -1},
	      {"::ffff:10.1.2.3", 0}};
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, KT_PUBLIC));
	for (i = 0; i < sizeof(def) / sizeof(def[0]); i++) {
		kt_req("GET", "inbound-get.query", NULL, def[i].peer);
		ck_assert_msg(cks_verify(&kt_ctx) == def[i].rc, "%s",
		    def[i].peer);
	}
	kt_req("GET", "inbound-get.query", NULL, NULL);
	ck_assert_int_eq(cks_verify(&kt_ctx), -1);
	ck_assert_str_eq(kt_ctx.err, "kannel: peer not in allowed_sources");
	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx,
	    KT_HEAD KT_KEYS
	    "allowed_sources = 10.1.0.0/16 ,192.0.2.77, 2001:db8::/32\n",
	    KT_PUBLIC));
	for (i = 0; i < sizeof(cidr) / sizeof(cidr[0]); i++) {
		kt_req("GET", "inbound-get.query", NULL, cidr[i].peer);
		ck_assert_msg(cks_verify(&kt_ctx) == cidr[i].rc, "%s",
		    cidr[i].peer);
	}
}
END_TEST

START_TEST(test_kannel_parse_inbound)
{
	static const struct {
		const char *file;
		const char *from;
		const char *to;
		const char *body;
	} cases[] = {
	    {"inbound-get.query", "+14155550100", "+14155550199",
		"Ol\xc3\xa1 \xf0\x9f\x91\x8b & = +\nline2"},
	    {"inbound-00-prefix.query", "+14155550100", "55555", "STOP"},
	    {"inbound-utf16.query", "+14155550100", "+14155550199",
		"Hi\xf0\x9f\x91\x8b"},
	    {"inbound-cp1252.query", "+14155550100", "+14155550199",
		"Ol\xc3\xa1"},
	};
	struct in_msg m;
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, KT_PUBLIC));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&m, 0, sizeof(m));
		kt_req("GET", cases[i].file, NULL, "127.0.0.1");
		ck_assert_msg(kt_ctx.ad->ops->parse_inbound(kt_ctx.ad,
				  &kt_ctx.r.req, &m, kt_ctx.err,
				  sizeof(kt_ctx.err)) == 0,
		    "%s: %s", cases[i].file, kt_ctx.err);
		ck_assert_str_eq(m.from, cases[i].from);
		ck_assert_str_eq(m.to, cases[i].to);
		ck_assert_str_eq(m.body, cases[i].body);
		ck_assert_int_eq(strncmp(m.provider_id, "6f1c2d3e-", 9), 0);
		in_msg_clear(&m);
	}
}
END_TEST

START_TEST(test_kannel_parse_inbound_post)
{
	struct in_msg m;

	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, KT_PUBLIC));
	memset(&m, 0, sizeof(m));
	/* post-url: the text is the body, the sender an X-Kannel header. */
	kt_req("POST", "inbound-post.query", "inbound-post.body", "::1");
	kt_ctx.r.hdr[0].key = "X-Kannel-From";
	kt_ctx.r.hdr[0].value = "+14155550100";
	kt_ctx.r.req.nheaders = 1;
	ck_assert_int_eq(kt_ctx.ad->ops->parse_inbound(kt_ctx.ad, &kt_ctx.r.req,
			     &m, kt_ctx.err, sizeof(kt_ctx.err)),
	    0);
	ck_assert_str_eq(m.from, "+14155550100");
	ck_assert_str_eq(m.body, "Hello from post-url & = +\n");
	in_msg_clear(&m);
}
END_TEST

START_TEST(test_kannel_parse_inbound_malformed)
{
	static const char *const bad[] = {"inbound-bad-utf8.query",
	    "inbound-no-id.query", "inbound-post.query", NULL};
	struct in_msg m;
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, KT_PUBLIC));
	for (i = 0; bad[i] != NULL; i++) {
		memset(&m, 0, sizeof(m));
		kt_req("GET", bad[i], NULL, "127.0.0.1");
		ck_assert_msg(kt_ctx.ad->ops->parse_inbound(kt_ctx.ad,
				  &kt_ctx.r.req, &m, kt_ctx.err,
				  sizeof(kt_ctx.err)) == -1,
		    "%s parsed", bad[i]);
		ck_assert_ptr_null(m.body);
	}
}
END_TEST

START_TEST(test_kannel_parse_status)
{
	static const struct {
		const char *file;
		int rc;
		enum msg_status st;
	} cases[] = {
	    {"dlr-type-1.query", 0, MSG_ST_DELIVERED},
	    {"dlr-type-2.query", 0, MSG_ST_UNDELIVERED},
	    {"dlr-type-16.query", 0, MSG_ST_FAILED},
	    {"dlr-type-4.query", 1, 0},
	    {"dlr-type-8.query", 1, 0},
	    {"dlr-type-32.query", 1, 0},
	    {"dlr-type-99.query", 1, 0},
	    {"dlr-no-type.query", -1, 0},
	    {"dlr-bad-id.query", -1, 0},
	    {"dlr-zero-id.query", -1, 0},
	};
	struct status_update u;
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, KT_PUBLIC));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&u, 0, sizeof(u));
		kt_req("GET", cases[i].file, NULL, "127.0.0.1");
		ck_assert_msg(kt_ctx.ad->ops->parse_status(kt_ctx.ad,
				  &kt_ctx.r.req, &u, kt_ctx.err,
				  sizeof(kt_ctx.err)) == cases[i].rc,
		    "%s", cases[i].file);
		if (cases[i].rc != 0)
			continue;
		ck_assert_int_eq(u.status, cases[i].st);
		ck_assert_int_eq(u.msg_id, 42);
		ck_assert_str_eq(u.provider_id, "42");
	}
}
END_TEST

START_TEST(test_kannel_reply_body)
{
	const char *ctype = NULL;

	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx, KT_HEAD KT_KEYS, KT_PUBLIC));
	ck_assert_str_eq(
	    kt_ctx.ad->ops->reply_body(kt_ctx.ad, WEBHOOK_INBOUND, &ctype), "");
	ck_assert_str_eq(ctype, "text/plain");
}
END_TEST

START_TEST(test_kannel_config_errors)
{
	static const struct {
		const char *text;
		int line;
		const char *msg;
	} cases[] = {
	    {KT_HEAD "username = u\nwebhook_secret = " KT_SECRET "\n", 1,
		"[sender k1] needs password"},
	    {KT_HEAD "username = u\npassword = p\n", 1,
		"[sender k1] needs webhook_secret"},
	    {KT_HEAD "username = u\npassword = p\nwebhook_secret = short\n", 6,
		"webhook_secret must be at least 16"},
	    {KT_HEAD "username = u\npassword = p\nwebhook_secret = "
		     "0123456789abcdef%41\n",
		6, "webhook_secret must be"},
	    {KT_HEAD KT_KEYS "allowed_sources = 10.0.0.0/33\n", 7,
		"allowed_sources must list"},
	    {KT_HEAD KT_KEYS "allowed_sources = 300.1.1.1\n", 7,
		"allowed_sources"},
	    {KT_HEAD KT_KEYS "allowed_sources = 10.0.0.1,\n", 7,
		"allowed_sources"},
	    {KT_HEAD KT_KEYS "dlr_mask = 31\n", 7, "dlr_mask"},
	};
	size_t i = (size_t)_i;

	cks_assert_config_error(&kt_ctx, cases[i].text, KT_PUBLIC,
	    cases[i].line, cases[i].msg);
}
END_TEST

START_TEST(test_kannel_config_no_io)
{
	/* No from: the sendsms-user's default sender applies. */
	ck_assert_ptr_nonnull(cks_adapter(&kt_ctx,
	    "[sender k1]\nprovider = kannel\n" KT_KEYS
	    "base_url = http://127.0.0.1:9\n",
	    NULL));
	ck_assert_ptr_eq(kt_ctx.ad->ops, adapter_ops_lookup("kannel"));
}
END_TEST

Suite *
kannel_suite(void)
{
	Suite *s = suite_create("kannel");
	TCase *tc;

	tc = tcase_create("build");
	tcase_add_checked_fixture(tc, kt_setup, kt_teardown);
	tcase_add_test(tc, test_kannel_build_request);
	tcase_add_test(tc, test_kannel_build_dlr_url_decodes);
	tcase_add_test(tc, test_kannel_build_coding);
	tcase_add_test(tc, test_kannel_build_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("classify");
	tcase_add_test(tc, test_kannel_classify);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_add_checked_fixture(tc, kt_setup, kt_teardown);
	tcase_add_test(tc, test_kannel_verify_secret);
	tcase_add_test(tc, test_kannel_verify_sources);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, kt_setup, kt_teardown);
	tcase_add_test(tc, test_kannel_parse_inbound);
	tcase_add_test(tc, test_kannel_parse_inbound_post);
	tcase_add_test(tc, test_kannel_parse_inbound_malformed);
	tcase_add_test(tc, test_kannel_parse_status);
	tcase_add_test(tc, test_kannel_reply_body);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, kt_setup, kt_teardown);
	tcase_add_loop_test(tc, test_kannel_config_errors, 0, 8);
	tcase_add_test(tc, test_kannel_config_no_io);
	suite_add_tcase(s, tc);
	return s;
}
