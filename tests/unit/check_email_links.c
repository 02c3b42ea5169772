/*
 * check_email_links.c - the signed tokens of daemon/email_links.c: round
 * trips, and refusal of every alteration (each byte of the decoded token
 * flipped, each character of the text changed, truncation, extension),
 * of the other kind, of another secret, and of an expired confirmation.
 */
#include "autoconf.h"

#include <stdint.h>
#include <string.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check_suites.h"
#include "email_links.h"
#include "hmac.h"

static const unsigned char key1[33] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[33] = "0123456789abcdef0123456789abcdeF";

static struct hmac *mac1, *mac2;

#define NOW 1795743274 /* 2026-11-27, seconds */

static void
el_setup(void)
{
	mac1 = hmac_new("SHA256", key1, 32);
	mac2 = hmac_new("SHA256", key2, 32);
	ck_assert_ptr_nonnull(mac1);
	ck_assert_ptr_nonnull(mac2);
}

static void
el_teardown(void)
{
	hmac_free(mac1);
	hmac_free(mac2);
}

static void
check_make(const struct email_token *t, char *buf)
{
	ck_assert_int_eq(email_token_make(mac1, t, buf, EMAIL_TOKEN_MAX), 0);
}

START_TEST(test_token_roundtrip_unsubscribe)
{
	static const int64_t ids[] = {1, 127, 128, 300, 16384, 1234567890123,
	    INT64_MAX};
	struct email_token t = {.kind = EMAIL_TOKEN_UNSUBSCRIBE}, out;
	char buf[EMAIL_TOKEN_MAX];
	size_t i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		t.msg_id = ids[i];
		check_make(&t, buf);
		/* base64url alphabet, no padding */
		ck_assert_uint_eq(strspn(buf,
				      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
				      "nopqrstuvwxyz0123456789-_"),
		    strlen(buf));
		ck_assert_uint_ge(strlen(buf), 24); /* >= 128-bit MAC */
		ck_assert_int_eq(email_token_verify(mac1,
				     EMAIL_TOKEN_UNSUBSCRIBE, buf, NOW, &out),
		    0);
		ck_assert_int_eq(out.kind, EMAIL_TOKEN_UNSUBSCRIBE);
		ck_assert_int_eq(out.msg_id, ids[i]);
	}
}
END_TEST

START_TEST(test_token_roundtrip_confirm)
{
	struct email_token t = {.kind = EMAIL_TOKEN_CONFIRM,
			       .member = 42,
			       .list = 7,
			       .expires = NOW + 3600},
			   out;
	char buf[EMAIL_TOKEN_MAX];

	check_make(&t, buf);
	ck_assert_int_eq(
	    email_token_verify(mac1, EMAIL_TOKEN_CONFIRM, buf, NOW, &out), 0);
	ck_assert_int_eq(out.member, 42);
	ck_assert_int_eq(out.list, 7);
	ck_assert_int_eq(out.expires, NOW + 3600);
	/* valid up to and including the expiry second */
	ck_assert_int_eq(email_token_verify(mac1, EMAIL_TOKEN_CONFIRM, buf,
			     NOW + 3600, &out),
	    0);
}
END_TEST

START_TEST(test_token_expired)
{
	struct email_token t = {.kind = EMAIL_TOKEN_CONFIRM,
			       .member = 42,
			       .list = 7,
			       .expires = NOW},
			   out;
	char buf[EMAIL_TOKEN_MAX];

	check_make(&t, buf);
	ck_assert_int_eq(
	    email_token_verify(mac1, EMAIL_TOKEN_CONFIRM, buf, NOW + 1, &out),
	    -2);
}
END_TEST

START_TEST(test_token_wrong_kind)
{
	struct email_token u = {.kind = EMAIL_TOKEN_UNSUBSCRIBE, .msg_id = 5};
	struct email_token c = {.kind = EMAIL_TOKEN_CONFIRM,
	    .member = 5,
	    .list = 5,
	    .expires = NOW + 10};
	struct email_token out;
	char buf[EMAIL_TOKEN_MAX];

	check_make(&u, buf);
	ck_assert_int_eq(
	    email_token_verify(mac1, EMAIL_TOKEN_CONFIRM, buf, NOW, &out), -1);
	check_make(&c, buf);
	ck_assert_int_eq(
	    email_token_verify(mac1, EMAIL_TOKEN_UNSUBSCRIBE, buf, NOW, &out),
	    -1);
}
END_TEST

START_TEST(test_token_other_secret)
{
	struct email_token t = {.kind = EMAIL_TOKEN_UNSUBSCRIBE, .msg_id = 9};
	struct email_token out;
	char buf[EMAIL_TOKEN_MAX], buf2[EMAIL_TOKEN_MAX];

	check_make(&t, buf);
	ck_assert_int_eq(
	    email_token_verify(mac2, EMAIL_TOKEN_UNSUBSCRIBE, buf, NOW, &out),
	    -1);
	ck_assert_int_eq(email_token_make(mac2, &t, buf2, sizeof(buf2)), 0);
	ck_assert_str_ne(buf, buf2);
}
END_TEST

/* Re-encodes raw bytes as base64url without padding. */
static void
check_b64url(const unsigned char *raw, size_t n, char *out)
{
	char *p;
	int len = EVP_EncodeBlock((unsigned char *)out, raw, (int)n);

	out[len] = '\0';
	for (p = out; *p != '\0'; p++)
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=')
			*p = '\0';
}

static size_t
check_unb64url(const char *text, unsigned char *raw)
{
	char std[EMAIL_TOKEN_MAX + 4];
	size_t len = strlen(text), i, pad = (4 - len % 4) % 4;
	int n;

	for (i = 0; i < len; i++)
		std[i] = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];
	memset(std + len, '=', pad);
	n = EVP_DecodeBlock(raw, (unsigned char *)std, (int)(len + pad));
	ck_assert_int_gt(n, 0);
	return (size_t)n - pad;
}

START_TEST(test_token_each_byte_flipped)
{
	struct email_token t = {.kind = EMAIL_TOKEN_CONFIRM,
			       .member = 1000,
			       .list = 3,
			       .expires = NOW + 100},
			   out;
	unsigned char raw[EMAIL_TOKEN_MAX], bad[EMAIL_TOKEN_MAX];
	char buf[EMAIL_TOKEN_MAX], text[EMAIL_TOKEN_MAX + 4];
	size_t n, i;
	unsigned bit;

	check_make(&t, buf);
	n = check_unb64url(buf, raw);
	for (i = 0; i < n; i++)
		for (bit = 0; bit < 8; bit++) {
			memcpy(bad, raw, n);
			bad[i] ^= (unsigned char)(1u << bit);
			check_b64url(bad, n, text);
			ck_assert_msg(email_token_verify(mac1,
					  EMAIL_TOKEN_CONFIRM, text, NOW,
					  &out) == -1,
			    "byte %zu bit %u flipped still verifies", i, bit);
		}
}
END_TEST

START_TEST(test_token_each_char_changed)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
				       "nopqrstuvwxyz0123456789-_+/=. ";
	struct email_token t = {.kind = EMAIL_TOKEN_UNSUBSCRIBE,
			       .msg_id = 123456},
			   out;
	char buf[EMAIL_TOKEN_MAX], bad[EMAIL_TOKEN_MAX];
	size_t i, a;

	check_make(&t, buf);
	for (i = 0; buf[i] != '\0'; i++)
		for (a = 0; alphabet[a] != '\0'; a++) {
			if (alphabet[a] == buf[i])
				continue;
			strcpy(bad, buf);
			bad[i] = alphabet[a];
			ck_assert_msg(email_token_verify(mac1,
					  EMAIL_TOKEN_UNSUBSCRIBE, bad, NOW,
					  &out) == -1,
			    "char %zu -> '%c' still verifies", i, alphabet[a]);
		}
}
END_TEST

START_TEST(test_token_truncated_and_extended)
{
	struct email_token t = {.kind = EMAIL_TOKEN_UNSUBSCRIBE, .msg_id = 77};
	struct email_token out;
	char buf[EMAIL_TOKEN_MAX], bad[EMAIL_TOKEN_MAX + 8];
	size_t len, i;

	check_make(&t, buf);
	len = strlen(buf);
	for (i = 0; i < len; i++) {
		memcpy(bad, buf, i);
		bad[i] = '\0';
		ck_assert_msg(email_token_verify(mac1, EMAIL_TOKEN_UNSUBSCRIBE,
				  bad, NOW, &out) == -1,
		    "prefix of %zu chars verifies", i);
	}
	snprintf(bad, sizeof(bad), "%sA", buf);
	ck_assert_int_eq(
	    email_token_verify(mac1, EMAIL_TOKEN_UNSUBSCRIBE, bad, NOW, &out),
	    -1);
	snprintf(bad, sizeof(bad), "%s==", buf);
	ck_assert_int_eq(
	    email_token_verify(mac1, EMAIL_TOKEN_UNSUBSCRIBE, bad, NOW, &out),
	    -1);
	ck_assert_int_eq(
	    email_token_verify(mac1, EMAIL_TOKEN_UNSUBSCRIBE, "", NOW, &out),
	    -1);
}
END_TEST

START_TEST(test_token_other_message_differs)
{
	struct email_token a = {.kind = EMAIL_TOKEN_UNSUBSCRIBE, .msg_id = 1};
	struct email_token b = {.kind = EMAIL_TOKEN_UNSUBSCRIBE, .msg_id = 2};
	struct email_token out;
	char ta[EMAIL_TOKEN_MAX], tb[EMAIL_TOKEN_MAX];

	check_make(&a, ta);
	check_make(&b, tb);
	ck_assert_str_ne(ta, tb);
	ck_assert_int_eq(
	    email_token_verify(mac1, EMAIL_TOKEN_UNSUBSCRIBE, tb, NOW, &out),
	    0);
	ck_assert_int_eq(out.msg_id, 2);
}
END_TEST

START_TEST(test_token_make_refuses_bad_ids)
{
	struct email_token t = {.kind = EMAIL_TOKEN_UNSUBSCRIBE, .msg_id = 0};
	char buf[EMAIL_TOKEN_MAX];

	ck_assert_int_eq(email_token_make(mac1, &t, buf, sizeof(buf)), -1);
	t.kind = EMAIL_TOKEN_CONFIRM;
	t.member = 1;
	t.list = 0;
	t.expires = NOW;
	ck_assert_int_eq(email_token_make(mac1, &t, buf, sizeof(buf)), -1);
	t.kind = 9;
	ck_assert_int_eq(email_token_make(mac1, &t, buf, sizeof(buf)), -1);
}
END_TEST

/*
 * Tokens already in people's mailboxes keep working: these two were
 * computed outside the daemon (Python's hmac module over the documented
 * layout: kind, LEB128 ids, HMAC-SHA256 of "outreachd email link v1\0"
 * and them, cut to 16 bytes, base64url), and are made and verified the
 * same after any number of MACs on one key context.
 */
START_TEST(test_token_known_values)
{
	struct email_token u = {.kind = EMAIL_TOKEN_UNSUBSCRIBE, .msg_id = 300};
	struct email_token c = {.kind = EMAIL_TOKEN_CONFIRM,
	    .member = 42,
	    .list = 7,
	    .expires = NOW + 86400};
	struct email_token out;
	char buf[EMAIL_TOKEN_MAX];
	int i;

	for (i = 0; i < 3; i++) {
		check_make(&u, buf);
		ck_assert_str_eq(buf, "AawCwHTS9wMIR6sMasrSyaVZ2g");
		check_make(&c, buf);
		ck_assert_str_eq(buf, "AioHqt-o2AZIxO9FH38InmpvB6bSmJJq");
		ck_assert_int_eq(email_token_verify(mac1, EMAIL_TOKEN_CONFIRM,
				     "AioHqt-o2AZIxO9FH38InmpvB6bSmJJq", NOW,
				     &out),
		    0);
		ck_assert_int_eq(out.member, 42);
	}
}
END_TEST

/*
 * core/hmac.c: one context, signing again and again, gives what OpenSSL's
 * one-shot HMAC() gives for each digest the daemon uses, for keys
 * shorter and longer than a block and inputs of every length up to 300.
 */
START_TEST(test_hmac_matches_one_shot)
{
	static const char *const names[] = {"SHA1", "SHA256", "SHA512"};
	const EVP_MD *mds[] = {EVP_sha1(), EVP_sha256(), EVP_sha512()};
	unsigned char key[200], data[300], want[EVP_MAX_MD_SIZE];
	unsigned char got[HMAC_OUT_MAX];
	unsigned int wlen;
	size_t i, klen, len, glen;
	struct hmac *h;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 7 + 1);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 13 + 5);
	for (i = 0; i < 3; i++) {
		for (klen = 1; klen <= sizeof(key); klen += 199) {
			h = hmac_new(names[i], key, klen);
			ck_assert_ptr_nonnull(h);
			for (len = 0; len <= sizeof(data); len++) {
				ck_assert_ptr_nonnull(HMAC(mds[i], key,
				    (int)klen, data, len, want, &wlen));
				glen = hmac_sign(h, data, len, got);
				ck_assert_uint_eq(glen, wlen);
				ck_assert_int_eq(memcmp(got, want, wlen), 0);
			}
			hmac_free(h);
		}
	}
	ck_assert_ptr_null(hmac_new("NO-SUCH-DIGEST", key, 32));
	hmac_free(NULL);
}
END_TEST

Suite *
email_links_suite(void)
{
	Suite *s = suite_create("email_links");
	TCase *tc = tcase_create("tokens");

	tcase_add_checked_fixture(tc, el_setup, el_teardown);
	tcase_add_test(tc, test_token_known_values);
	tcase_add_test(tc, test_hmac_matches_one_shot);
	tcase_add_test(tc, test_token_roundtrip_unsubscribe);
	tcase_add_test(tc, test_token_roundtrip_confirm);
	tcase_add_test(tc, test_token_expired);
	tcase_add_test(tc, test_token_wrong_kind);
	tcase_add_test(tc, test_token_other_secret);
	tcase_add_test(tc, test_token_each_byte_flipped);
	tcase_add_test(tc, test_token_each_char_changed);
	tcase_add_test(tc, test_token_truncated_and_extended);
	tcase_add_test(tc, test_token_other_message_differs);
	tcase_add_test(tc, test_token_make_refuses_bad_ids);
	suite_add_tcase(s, tc);
	return s;
}
