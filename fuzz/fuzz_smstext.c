/*
 * fuzz_smstext.c - libFuzzer target: SMS text rules (core/smstext.h) on
 * any bytes, checked against an oracle built from the same functions one
 * character at a time, and against iconv:
 *  - smstext_analyze() fails exactly on invalid UTF-8 (the CSV reader's
 *    strict check is the second opinion); smstext_is_gsm7() agrees with
 *    the encoding analyze picks;
 *  - the whole text is GSM-7 iff each character is; its units are the sum
 *    of the characters' septets (GSM-7) or UTF-16 units (UCS-2), and its
 *    segment count is a greedy packing of those characters into parts of
 *    153 septets / 67 units that never splits one (a single part holds
 *    160 / 70);
 *  - UCS-2 round trip: the text as UTF-16BE (encoded here) has as many
 *    units as analyze reports, and iconv turns it back into the same
 *    bytes;
 *  - smstext_smart() replaces character by character, each replacement is
 *    GSM-7, and a second pass changes nothing.
 */
#include "autoconf.h"

#include <iconv.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "smstext.h"

#define FZSMS_MAX_INPUT 8192 /* bytes; longer texts add nothing new */

static size_t fzsms_char_len(const unsigned char *p);
static size_t fzsms_utf16(const unsigned char *s, size_t len, uint8_t *out);
static void fzsms_round_trip(const char *s, size_t len, unsigned units);
static void fzsms_oracle(const char *s, const struct smstext_info *info);
static void fzsms_smart(const char *s);

/* Bytes of the (valid) UTF-8 sequence at p. */
static size_t
fzsms_char_len(const unsigned char *p)
{
	if (*p < 0x80)
		return 1;
	if (*p < 0xe0)
		return 2;
	return *p < 0xf0 ? 3 : 4;
}

/* Valid UTF-8 s as UTF-16BE into out (4 * len bytes); returns units. */
static size_t
fzsms_utf16(const unsigned char *s, size_t len, uint8_t *out)
{
	size_t i = 0, n = 0, j, k;
	uint32_t cp, hi, lo;

	while (i < len) {
		k = fzsms_char_len(s + i);
		cp = k == 1 ? s[i] : s[i] & (0xff >> (k + 1));
		for (j = 1; j < k; j++)
			cp = cp << 6 | (s[i + j] & 0x3f);
		i += k;
		if (cp > 0xffff) {
			hi = 0xd800 + ((cp - 0x10000) >> 10);
			lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			out[2 * n] = (uint8_t)(hi >> 8);
			out[2 * n++ + 1] = (uint8_t)hi;
			out[2 * n] = (uint8_t)(lo >> 8);
			out[2 * n++ + 1] = (uint8_t)lo;
		} else {
			out[2 * n] = (uint8_t)(cp >> 8);
			out[2 * n++ + 1] = (uint8_t)cp;
		}
	}
	return n;
}

static void
fzsms_round_trip(const char *s, size_t len, unsigned units)
{
	static iconv_t cd = (iconv_t)-1;
	uint8_t *u16 = malloc(4 * len + 1);
	char *back = malloc(len + 1);
	char *ip, *op;
	size_t n, inleft, outleft;

	if (u16 == NULL || back == NULL)
		fuzz_fail("out of memory");
	if (cd == (iconv_t)-1 &&
	    (cd = iconv_open("UTF-8", "UTF-16BE")) == (iconv_t)-1)
		fuzz_fail("iconv_open UTF-16BE failed");
	n = fzsms_utf16((const unsigned char *)s, len, u16);
	if (n != units)
		fuzz_fail("UCS-2: %zu UTF-16 units, analyze says %u", n, units);
	ip = (char *)u16;
	inleft = 2 * n;
	op = back;
	outleft = len;
	iconv(cd, NULL, NULL, NULL, NULL);
	if (iconv(cd, &ip, &inleft, &op, &outleft) == (size_t)-1 ||
	    outleft != 0 || memcmp(back, s, len) != 0)
		fuzz_fail("UCS-2 round trip changed the text");
	free(u16);
	free(back);
}

/* The counts rebuilt from each character analyzed alone. */
static void
fzsms_oracle(const char *s, const struct smstext_info *info)
{
	struct smstext_info one;
	const unsigned char *p = (const unsigned char *)s;
	unsigned gsm_units = 0, ucs_units = 0, chars = 0, used = 0, parts = 1;
	unsigned cost, total, part, single;
	bool gsm = true;
	char c[5];
	size_t k;

	/* First pass: the encoding, units and code points. */
	for (; *p != '\0'; p += k) {
		k = fzsms_char_len(p);
		memcpy(c, p, k);
		c[k] = '\0';
		if (smstext_analyze(c, &one) == -1 || one.chars != 1)
			fuzz_fail("one character did not analyze as one");
		chars++;
		ucs_units += k == 4 ? 2 : 1;
		if (one.encoding == SMSTEXT_GSM7)
			gsm_units += one.units;
		else
			gsm = false;
	}
	total = gsm ? gsm_units : ucs_units;
	if (info->chars != chars || (info->encoding == SMSTEXT_GSM7) != gsm ||
	    info->units != total)
		fuzz_fail("analyze: %u chars %s %u units; oracle: %u %s %u",
		    info->chars, smstext_encoding_to_text(info->encoding),
		    info->units, chars, gsm ? "gsm7" : "ucs2", total);
	/* Second pass: greedy packing, no character split. */
	part = gsm ? SMSTEXT_GSM7_PART : SMSTEXT_UCS2_PART;
	single = gsm ? SMSTEXT_GSM7_SINGLE : SMSTEXT_UCS2_SINGLE;
	if (total > single)
		for (p = (const unsigned char *)s; *p != '\0'; p += k) {
			k = fzsms_char_len(p);
			memcpy(c, p, k);
			c[k] = '\0';
			smstext_analyze(c, &one);
			cost = gsm ? one.units : (k == 4 ? 2 : 1);
			if (used + cost > part) {
				parts++;
				used = 0;
			}
			used += cost;
		}
	if (info->segments != parts)
		fuzz_fail("analyze: %u segments; oracle: %u (%u units)",
		    info->segments, parts, total);
}

static void
fzsms_smart(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *all, *again, *one;
	char c[5];
	size_t k, off = 0, n;

	if ((all = smstext_smart(s)) == NULL)
		fuzz_fail("smart refused valid UTF-8");
	for (; *p != '\0'; p += k) {
		k = fzsms_char_len(p);
		memcpy(c, p, k);
		c[k] = '\0';
		if ((one = smstext_smart(c)) == NULL)
			fuzz_fail("smart refused one character");
		n = strlen(one);
		if (strcmp(one, c) != 0 && !smstext_is_gsm7(one))
			fuzz_fail("smart replaced U+%s by non-GSM-7 '%s'", c,
			    one);
		if (strncmp(all + off, one, n) != 0)
			fuzz_fail("smart of the text is not smart of each "
				  "character");
		off += n;
		free(one);
	}
	if (all[off] != '\0')
		fuzz_fail("smart of the text is longer than its characters'");
	if ((again = smstext_smart(all)) == NULL || strcmp(again, all) != 0)
		fuzz_fail("a second smart pass changed the text");
	free(again);
	free(all);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smstext_info info;
	char *s, *bad;
	size_t len;
	bool valid;
	int rc;

	if (size > FZSMS_MAX_INPUT)
		return 0;
	/* A C string: the text ends at the first NUL. */
	if ((s = strndup((const char *)data, size)) == NULL)
		fuzz_fail("out of memory");
	len = strlen(s);
	valid = fuzz_is_utf8(s, len);
	rc = smstext_analyze(s, &info);
	if ((rc == 0) != valid)
		fuzz_fail("analyze %s invalid UTF-8",
		    valid ? "refused valid" : "accepted");
	if (smstext_is_gsm7(s) != (valid && info.encoding == SMSTEXT_GSM7))
		fuzz_fail("is_gsm7 disagrees with analyze");
	if (!valid && (bad = smstext_smart(s)) != NULL)
		fuzz_fail("smart accepted invalid UTF-8: '%s'", bad);
	if (valid) {
		fzsms_oracle(s, &info);
		if (info.encoding == SMSTEXT_UCS2)
			fzsms_round_trip(s, len, info.units);
		fzsms_smart(s);
	}
	free(s);
	return 0;
}
