/*
 * check_json_flat.c - unit tests of json_fast.c's json_flat_object():
 * every body it reads gives what jansson gives (values, types, key
 * order), and every body it does not know is left to jansson (NULL):
 * escapes, bytes past ASCII, duplicate keys, reals, negative or oversized
 * integers, nesting, syntax errors (those jsmn lets through included),
 * trailing bytes, an empty body. And random mutations of good texts read
 * by both fast paths (jpeek_object() too) against jansson.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "check_suites.h"
#include "json_fast.h"

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
	    /* what jsmn, even strict, lets through */
	    "{\"a\":\"x\" \"b\":2}",
	    "{\"a\" \"b\"}",
	    "{\"a\":1,,\"b\":2}",
	    "{,\"a\":1}",
	    "{\"a\"::1}",
	    "{:1}",
	    "{\"a\":1:2}",
	    "{\"a\":00}",
	    "{\"a\":--1}",
	    "{\"a\":+1}",
	    "{\"a\":1.2.3}",
	    "{\"a\":nan}",
	    "{\"a\":x}",
	    "{\"a\":1} \"b\"",
	    "{\"a\":1} 1 ",
	    "{\"a\":1}]",
	    "{\"a\":\"x\"]",
	    "{\"a\":\"x\x01\"}",
	    "{\"a\x1f\":1}",
	    "{\"a\":-0}",
	};
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		jf_left(bodies[i]);
	/* a NUL byte: jansson refuses it, and so it is left */
	ck_assert_ptr_null(json_flat_object("{\"a\":\"x\0y\"}", 11));
	ck_assert_ptr_null(json_flat_object("{}\0", 3));
}
END_TEST

/* jpeek_object() on s: when it answers, jansson accepts s and agrees on
 * "a" (an integer) and "sid" (a string without escapes). */
static int
jf_peek_agrees(const char *s, size_t len)
{
	struct jpeek_field f[2] = {{.name = "a", .type = JPEEK_INT},
	    {.name = "sid", .type = JPEEK_STRING}};
	json_t *j = json_loadb(s, len, 0, NULL), *a, *sid;
	int rc = jpeek_object(s, len, f, 2);

	if (rc == 0) {
		ck_assert_msg(j != NULL,
		    "jansson refuses what jpeek took: %.*s", (int)len, s);
		a = json_object_get(j, "a");
		sid = json_object_get(j, "sid");
		ck_assert_int_eq(f[0].found, json_is_integer(a));
		ck_assert(!f[0].found || f[0].i == json_integer_value(a));
		ck_assert_int_eq(f[1].found, json_is_string(sid));
		ck_assert(!f[1].found || f[1].s_escaped ||
		    (f[1].len == json_string_length(sid) &&
			memcmp(f[1].s, json_string_value(sid), f[1].len) == 0));
	}
	json_decref(j);
	return rc;
}

/* json_flat_object() on s: when it answers, jansson gives the same. */
static int
jf_flat_agrees(const char *s, size_t len)
{
	json_t *want = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *got = json_flat_object(s, len);
	char *a, *b;

	if (got != NULL) {
		ck_assert_msg(want != NULL,
		    "jansson refuses what json_flat took: %.*s", (int)len, s);
		a = json_dumps(want, JSON_COMPACT);
		b = json_dumps(got, JSON_COMPACT);
		ck_assert_str_eq(a, b);
		free(a);
		free(b);
	}
	json_decref(want);
	json_decref(got);
	return got != NULL;
}

/*
 * Random mutations of good texts (a byte replaced by one JSON cares
 * about, removed, or doubled; a fixed seed), each read by both fast
 * paths: neither may take what jansson refuses or read it differently.
 */
START_TEST(test_json_fast_mutations_agree_with_jansson)
{
	static const char *const seeds[] = {
	    "{\"channel\":\"sms\",\"to\":\"+15550001234\",\"body\":\"hi\","
	    "\"a\":17,\"t\":true,\"f\":false,\"n\":null}",
	    "{\"a\":-12,\"sid\":\"SM0123\",\"x\":[1,2.5,{\"b\":[]}],"
	    "\"e\":\"caf\xc3\xa9\\n\"}",
	    " [ {\"a\" : 0 } , \"s\" , -0.5 ] ",
	    /* strings longer than the 8-byte steps of jf_plain_run() */
	    "{\"body\":\"a plain ASCII text of some length, read a word at "
	    "a time\",\"sid\":\"SM0123456789abcdef0123456789abcd\","
	    "\"k\":\"0123456789abcdef\\\\ghijklmnop\"}",
	};
	static const char bytes[] = "{}[],:\"\\ \t-+.0159eEtfnulx/\x01\x7f"
				    "\x80\xc3\xed\xff";
	unsigned long r = 12345;
	int peeked = 0, flat = 0, n;
	char buf[256];
	size_t len, at;

	for (n = 0; n < 40000; n++) {
		len = strlen(seeds[n % 4]);
		memcpy(buf, seeds[n % 4], len);
		do {
			r = r * 6364136223846793005UL + 1442695040888963407UL;
			at = (r >> 33) % len;
			switch ((r >> 20) % 3) {
			case 0:
				buf[at] =
				    bytes[(r >> 40) % (sizeof(bytes) - 1)];
				break;
			case 1:
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
				break;
			default:
				memmove(buf + at + 1, buf + at, len - at);
				len++;
			}
		} while (
		    (r >> 50) % 3 == 0 && len > 1 && len < sizeof(buf) - 1);
		peeked += jf_peek_agrees(buf, len) == 0;
		flat += jf_flat_agrees(buf, len);
	}
	/* the fast paths did read some of them */
	ck_assert_int_gt(peeked, 1000);
	ck_assert_int_gt(flat, 100);
}
END_TEST

Suite *
json_flat_suite(void)
{
	Suite *s = suite_create("json_flat");
	TCase *tc = tcase_create("flat");

	tcase_add_test(tc, test_json_flat_reads_what_jansson_reads);
	tcase_add_test(tc, test_json_flat_leaves_the_rest_to_jansson);
	tcase_add_test(tc, test_json_fast_mutations_agree_with_jansson);
	/* 30,000 bodies, each parsed three times: past Check's 4 s under
	 * ASan on a busy machine */
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
