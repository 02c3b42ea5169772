/*
 * check_console.c - unit tests of the console adapter's inbound side
 * (adapters/console.c), which the phone simulator posts to: verify()
 * takes loopback peers only (IPv4 127/8, ::1, IPv4-mapped 127.x) unless
 * allow_remote_inbound = yes, and refuses a foreign Origin; parse reads
 * From/Body (or from/body) from form fields or a JSON body, with an
 * optional Id, and refuses what is malformed; its config keys are
 * checked with FILE:LINE.
 *
 * The adapter comes from a real config file through the SMS harness
 * (check_sms.h), which needs only the adapter's name.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "adapter.h"
#include "check_sms.h"
#include "check_suites.h"
#include "message.h"
#include "smshttp.h"

#define CT_URL	"http://127.0.0.1:8080/webhooks/sim/inbound"
#define CT_HEAD "[sender sim]\nprovider = console\nfrom = +15550100000\n"

/* The harness takes a provider; only its name is used (adapter_new). */
static const struct smshttp_provider ct_console = {.name = "console"};
static struct cks_ctx ct_ctx;

static void
ct_setup(void)
{
	cks_setup(&ct_ctx, &ct_console, "sim");
}

static void
ct_teardown(void)
{
	cks_teardown(&ct_ctx);
}

/* A POST from 'peer' with 'body'; JSON when json, else a form. */
static void
ct_req(const char *peer, const char *body, bool json)
{
	cks_req_init(&ct_ctx.r, "POST", CT_URL, body, peer);
	ct_ctx.r.hdr[0].key = "Content-Type";
	ct_ctx.r.hdr[0].value =
	    json ? "application/json" : "application/x-www-form-urlencoded";
	ct_ctx.r.hdr[1].key = "Host";
	ct_ctx.r.hdr[1].value = "127.0.0.1:8080";
	ct_ctx.r.req.nheaders = 2;
	if (!json)
		cks_req_decode(&ct_ctx.r, body);
}

static void
ct_origin(const char *origin)
{
	ct_ctx.r.hdr[2].key = "Origin";
	ct_ctx.r.hdr[2].value = origin;
	ct_ctx.r.req.nheaders = 3;
}

static int
ct_parse(struct in_msg *m)
{
	memset(m, 0, sizeof(*m));
	return ct_ctx.ad->ops->parse_inbound(ct_ctx.ad, &ct_ctx.r.req, m,
	    ct_ctx.err, sizeof(ct_ctx.err));
}

START_TEST(test_console_verify_loopback_only)
{
	static const char *const ok[] = {"127.0.0.1", "127.1.2.3", "::1",
	    "::ffff:127.0.0.1", NULL};
	static const char *const no[] = {"192.0.2.7", "10.0.0.1", "::2",
	    "::ffff:192.0.2.7", "fe80::1", "", "localhost", NULL};
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&ct_ctx, CT_HEAD, NULL));
	for (i = 0; ok[i] != NULL; i++) {
		ct_req(ok[i], "From=%2B15551230001&Body=hi", false);
		ck_assert_msg(cks_verify(&ct_ctx) == 0, "%s: %s", ok[i],
		    ct_ctx.err);
	}
	for (i = 0; no[i] != NULL; i++) {
		ct_req(no[i], "From=%2B15551230001&Body=hi", false);
		ck_assert_msg(cks_verify(&ct_ctx) == -1, "%s taken", no[i]);
		ck_assert_ptr_nonnull(strstr(ct_ctx.err, "loopback"));
	}
	/* allow_remote_inbound = yes takes any peer */
	ck_assert_ptr_nonnull(
	    cks_adapter(&ct_ctx, CT_HEAD "allow_remote_inbound = yes\n", NULL));
	ct_req("192.0.2.7", "From=%2B15551230001&Body=hi", false);
	ck_assert_int_eq(cks_verify(&ct_ctx), 0);
}
END_TEST

START_TEST(test_console_verify_origin)
{
	static const char *const ok[] = {"http://127.0.0.1:8080",
	    "HTTP://127.0.0.1:8080", "https://127.0.0.1:8080", NULL};
	static const char *const no[] = {"https://evil.example", "null",
	    "http://127.0.0.1:8081", "http://127.0.0.1:8080.evil.example",
	    "http://127.0.0.1", "", NULL};
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&ct_ctx, CT_HEAD, NULL));
	for (i = 0; ok[i] != NULL; i++) {
		ct_req("127.0.0.1", "From=%2B15551230001&Body=hi", false);
		ct_origin(ok[i]);
		ck_assert_msg(cks_verify(&ct_ctx) == 0, "%s: %s", ok[i],
		    ct_ctx.err);
	}
	for (i = 0; no[i] != NULL; i++) {
		ct_req("127.0.0.1", "From=%2B15551230001&Body=hi", false);
		ct_origin(no[i]);
		ck_assert_msg(cks_verify(&ct_ctx) == -1, "%s taken", no[i]);
		ck_assert_ptr_nonnull(strstr(ct_ctx.err, "Origin"));
	}
}
END_TEST

START_TEST(test_console_parse_form_and_json)
{
	struct in_msg m;

	ck_assert_ptr_nonnull(cks_adapter(&ct_ctx, CT_HEAD, NULL));
	ct_req("127.0.0.1", "From=%2B15551230001&Body=join+now", false);
	ck_assert_int_eq(ct_parse(&m), 0);
	ck_assert_str_eq(m.from, "+15551230001");
	ck_assert_str_eq(m.to, "+15550100000");
	ck_assert_str_eq(m.body, "join now");
	ck_assert_int_eq(strncmp(m.provider_id, "console-in-", 11), 0);
	ck_assert_uint_eq(strlen(m.provider_id), 11 + 24);
	in_msg_clear(&m);
	/* lower-case names, and an Id that de-duplicates */
	ct_req("127.0.0.1", "from=%2B15551230001&body=x&id=a-1", false);
	ck_assert_int_eq(ct_parse(&m), 0);
	ck_assert_str_eq(m.provider_id, "console-in-a-1");
	in_msg_clear(&m);
	ct_req("127.0.0.1",
	    "{\"From\": \"+15551230001\", \"Body\": \"caf\\u00e9 \\ud83d\\ude00\"}",
	    true);
	ck_assert_int_eq(ct_parse(&m), 0);
	ck_assert_str_eq(m.body, "caf\xc3\xa9 \xf0\x9f\x98\x80");
	in_msg_clear(&m);
	ct_req("127.0.0.1", "{\"from\": \"+15551230001\", \"body\": \"\"}",
	    true);
	ck_assert_int_eq(ct_parse(&m), 0);
	ck_assert_str_eq(m.body, "");
	in_msg_clear(&m);
}
END_TEST

START_TEST(test_console_parse_malformed)
{
	static const struct {
		const char *body;
		bool json;
		const char *err;
	} bad[] = {
	    {"Body=hi", false, "From and Body"},
	    {"From=%2B15551230001", false, "From and Body"},
	    {"From=15551230001&Body=hi", false, "E.164"},
	    {"From=%2B1555&Body=hi", false, "E.164"},
	    {"From=%2B0555123000&Body=hi", false, "E.164"},
	    {"From=%2B15551230001&Body=hi&Id=", false, "Id"},
	    {"{\"From\": \"+15551230001\"", true, "JSON"},
	    {"[\"+15551230001\"]", true, "JSON"},
	    {"{\"From\": \"+15551230001\", \"Body\": 5}", true,
		"From and Body"},
	    {"From=%2B15551230001&Body=hi", true, "JSON"},
	};
	struct in_msg m;
	size_t i;

	ck_assert_ptr_nonnull(cks_adapter(&ct_ctx, CT_HEAD, NULL));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ct_req("127.0.0.1", bad[i].body, bad[i].json);
		ck_assert_msg(ct_parse(&m) == -1, "%s taken", bad[i].body);
		ck_assert_msg(strstr(ct_ctx.err, bad[i].err) != NULL, "%s: %s",
		    bad[i].body, ct_ctx.err);
		in_msg_clear(&m);
	}
}
END_TEST

START_TEST(test_console_config)
{
	cks_assert_config_error(&ct_ctx,
	    CT_HEAD "allow_remote_inbound = maybe\n", NULL, 4,
	    "allow_remote_inbound");
	cks_assert_config_error(&ct_ctx, CT_HEAD "webhook_secret = x\n", NULL,
	    4, "webhook_secret");
}
END_TEST

Suite *
console_suite(void)
{
	Suite *s = suite_create("console");
	TCase *tc = tcase_create("inbound");

	tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
	tcase_add_test(tc, test_console_verify_loopback_only);
	tcase_add_test(tc, test_console_verify_origin);
	tcase_add_test(tc, test_console_parse_form_and_json);
	tcase_add_test(tc, test_console_parse_malformed);
	tcase_add_test(tc, test_console_config);
	suite_add_tcase(s, tc);
	return s;
}
