/*
 * check_json_flat.c - unit tests of json_flat.c: every body it reads
 * gives what jansson gives (values, types, key order), and every body it
 * does not know is left to jansson (NULL): escapes, bytes past ASCII,
 * duplicate keys, reals, negative or oversized integers, nesting, syntax
 * errors, trailing bytes, an empty body.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "check_suites.h"
#include "json_flat.h"

static void jf_same(const char *body);
static void jf_left(const char *body);

/* Read by the fast path, and exactly as jansson reads it. */
static void
jf_same(const char *body)
{
	json_error_t jerr;
	json_t *want =
	    json_loadb(body, strlen(body), JSON_REJECT_DUPLICATES, &jerr);
	json_t *got = json_flat_object(body, strlen(body));
	char *a, *b;

	ck_assert_msg(want != NULL, "jansson refuses %s: %s", body, jerr.text);
	ck_assert_msg(got != NULL, "fast path left %s to jansson", body);
	ck_assert_msg(json_equal(want, got), "differs from jansson: %s", body);
	/* key order and integer versus real show in the dump */
	a = json_dumps(want, JSON_COMPACT);
	b = json_dumps(got, JSON_COMPACT);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	json_decref(want);
	json_decref(got);
}

/* Left to jansson. */
static void
jf_left(const char *body)
{
	json_t *got = json_flat_object(body, strlen(body));

	ck_assert_msg(got == NULL, "fast path read %s", body);
}

START_TEST(test_json_flat_reads_what_jansson_reads)
{
	jf_same("{\"channel\":\"sms\",\"to\":\"+15550001234\",\"body\":"
		"\"bench message 1 from thread 1\",\"idempotency_key\":"
		"\"bench-x-1-1\",\"not_before\":1796000000}");
	jf_same("{}");
	jf_same(" \t\r\n{ } \n");
	jf_same("{ \"a\" : \"\" , \"\" : 0 }");
	jf_same("{\"t\":true,\"f\":false,\"n\":null}");
	jf_same("{\"z\":1,\"y\":2,\"x\":3,\"w\":999999999999999999}");
	jf_same("{\"s\":\"~ !#$%&'()*+,-./:;<=>?@[]^_`{|}\"}");
}
END_TEST

START_TEST(test_json_flat_leaves_the_rest_to_jansson)
{
	static const char *const bodies[] = {
	    "",
	    "   ",
	    "[]",
	    "\"x\"",
	    "{",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{\"a\":1,}",
	    "{,}",
	    "{\"a\":1}x",
	    "{\"a\":1}{}",
	    "{\"a\":1 \"b\":2}",
	    "{\"a\":\"x\\\"y\"}",
	    "{\"a\":\"\\u00e9\"}",
	    "{\"a\\n\":1}",
	    "{\"a\":\"\xc3\xa9\"}",
	    "{\"a\":\"\x7f\"}",
	    "{\"a\":\"tab\there\"}",
	    "{\"a\":1,\"a\":2}",
	    "{\"a\":1.5}",
	    "{\"a\":1e3}",
	    "{\"a\":1E3}",
	    "{\"a\":-1}",
	    "{\"a\":01}",
	    "{\"a\":0x1}",
	    "{\"a\":1000000000000000000}",
	    "{\"a\":{}}",
	    "{\"a\":[]}",
	    "{\"a\":tru}",
	    "{\"a\":truex}",
	    "{\"a\":nul}",
	    "{'a':1}",
	    "{\"a\":\"unterminated}",
	    "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\":1}",
	};
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		jf_left(bodies[i]);
	/* a NUL byte: jansson refuses it, and so it is left */
	ck_assert_ptr_null(json_flat_object("{\"a\":\"x\0y\"}", 11));
	ck_assert_ptr_null(json_flat_object("{}\0", 3));
}
END_TEST

Suite *
json_flat_suite(void)
{
	Suite *s = suite_create("json_flat");
	TCase *tc = tcase_create("flat");

	tcase_add_test(tc, test_json_flat_reads_what_jansson_reads);
	tcase_add_test(tc, test_json_flat_leaves_the_rest_to_jansson);
	suite_add_tcase(s, tc);
	return s;
}
