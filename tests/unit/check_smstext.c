/*
 * check_smstext.c - unit tests of smstext.c: which characters are GSM-7,
 * how texts are counted in septets or UTF-16 units, the segment counts at
 * every boundary (160/161, 153*2, 70/71, 67*2, an escape or a surrogate
 * pair that must move whole to the next part, 255 parts), invalid UTF-8,
 * and smart replacement. The expected numbers are worked out beside them.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "check_suites.h"
#include "compat.h"
#include "smstext.h"

#define ST_BUF 4096 /* big enough for 3 UCS-2 parts of 3-byte characters */

static void st_add(char *buf, const char *piece, unsigned times);
static void st_check(const char *text, enum smstext_encoding enc,
    unsigned units, unsigned segments);
static size_t st_utf8(uint32_t cp, char *out);

/* Appends 'piece' 'times' times to buf (ST_BUF bytes). */
static void
st_add(char *buf, const char *piece, unsigned times)
{
	unsigned i;

	for (i = 0; i < times; i++)
		ck_assert_uint_lt(strlcat(buf, piece, ST_BUF), ST_BUF);
}

/* Analyzes 'text' and checks encoding, units and segments. */
static void
st_check(const char *text, enum smstext_encoding enc, unsigned units,
    unsigned segments)
{
	struct smstext_info info;

	ck_assert_int_eq(smstext_analyze(text, &info), 0);
	ck_assert_str_eq(smstext_encoding_to_text(info.encoding),
	    smstext_encoding_to_text(enc));
	ck_assert_uint_eq(info.units, units);
	ck_assert_uint_eq(info.segments, segments);
	ck_assert(smstext_is_gsm7(text) == (enc == SMSTEXT_GSM7));
}

/* Encodes a code point as UTF-8 into out (5 bytes); returns its length. */
static size_t
st_utf8(uint32_t cp, char *out)
{
	size_t n;

	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		out[0] = (char)(0xf0 | cp >> 18);
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	out[n] = '\0';
	return n;
}

/* Every character of both GSM tables (doc/providers.md, SMS text). */
START_TEST(test_smstext_gsm_tables)
{
	static const char all[] =
	    "@\xc2\xa3$\xc2\xa5\xc3\xa8\xc3\xa9\xc3\xb9\xc3\xac"
	    "\xc3\xb2\xc3\x87\n\xc3\x98\xc3\xb8\r\xc3\x85\xc3\xa5"
	    "\xce\x94_\xce\xa6\xce\x93\xce\x9b\xce\xa9\xce\xa0\xce\xa8"
	    "\xce\xa3\xce\x98\xce\x9e\xc3\x86\xc3\xa6\xc3\x9f\xc3\x89"
	    " !\"#\xc2\xa4%&'()*+,-./0123456789:;<=>?\xc2\xa1"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ\xc3\x84\xc3\x96\xc3\x91\xc3\x9c"
	    "\xc2\xa7\xc2\xbf"
	    "abcdefghijklmnopqrstuvwxyz\xc3\xa4\xc3\xb6\xc3\xb1\xc3\xbc"
	    "\xc3\xa0";
	struct smstext_info info;

	/* The basic table less ESC: 127 characters, one septet each. */
	st_check(all, SMSTEXT_GSM7, 127, 1);
	ck_assert_int_eq(smstext_analyze(all, &info), 0);
	ck_assert_uint_eq(info.chars, 127);
	/* The extension table: 10 characters, two septets each. */
	st_check("^{}\\[~]|\xe2\x82\xac\f", SMSTEXT_GSM7, 20, 1);
	st_check("", SMSTEXT_GSM7, 0, 1);
}
END_TEST

/* é ñ ü (and their capitals, ¿ ¡, Ç) are GSM; á ç í ó ú â ê are not. */
START_TEST(test_smstext_gsm_accents)
{
	static const char *const gsm[] = {"\xc3\xa9", "\xc3\xb1", "\xc3\xbc",
	    "\xc3\x89", "\xc3\x91", "\xc3\x9c", "\xc2\xbf", "\xc2\xa1",
	    "\xc3\x87", NULL};
	static const char *const not [] = {"\xc3\xa1", "\xc3\xa7", "\xc3\xad",
	    "\xc3\xb3", "\xc3\xba", "\xc3\xa2", "\xc3\xaa", "`", "\t", "\x1b",
	    "\x7f", "\xc2\xa0", "\xe2\x80\x9c", "\xf0\x9f\x98\x80", NULL};
	size_t i;

	for (i = 0; gsm[i] != NULL; i++)
		ck_assert_msg(smstext_is_gsm7(gsm[i]), "gsm %zu", i);
	for (i = 0; not [i] != NULL; i++)
		ck_assert_msg(!smstext_is_gsm7(not [i]), "not %zu", i);
	/* "¿Qué año?" is Spanish that stays GSM: 9 septets. */
	st_check("\xc2\xbfQu\xc3\xa9 a\xc3\xb1o?", SMSTEXT_GSM7, 9, 1);
	/* "Está aquí" is not: 9 UTF-16 units. */
	st_check("Est\xc3\xa1 aqu\xc3\xad", SMSTEXT_UCS2, 9, 1);
}
END_TEST

/* 160 septets fit one part; 161 need two of at most 153. */
START_TEST(test_smstext_gsm_single_limit)
{
	char buf[ST_BUF] = "";

	st_add(buf, "a", 160);
	st_check(buf, SMSTEXT_GSM7, 160, 1);
	st_add(buf, "a", 1);
	st_check(buf, SMSTEXT_GSM7, 161, 2);
	/* 80 extension characters are 160 septets: still one part. */
	buf[0] = '\0';
	st_add(buf, "{", 80);
	st_check(buf, SMSTEXT_GSM7, 160, 1);
	st_add(buf, "a", 1);
	st_check(buf, SMSTEXT_GSM7, 161, 2);
}
END_TEST

/* 153 * 2 = 306 septets fill two parts exactly; 307 need a third. */
START_TEST(test_smstext_gsm_concat_parts)
{
	char buf[ST_BUF] = "";

	st_add(buf, "a", 153 * 2);
	st_check(buf, SMSTEXT_GSM7, 306, 2);
	st_add(buf, "a", 1);
	st_check(buf, SMSTEXT_GSM7, 307, 3);
	buf[0] = '\0';
	st_add(buf, "a", 153 * 3);
	st_check(buf, SMSTEXT_GSM7, 459, 3);
}
END_TEST

/*
 * An escape pair (€ = 1B 65) never straddles parts. With 152 septets in
 * the first part, € does not fit its last septet and moves whole, so 306
 * septets take 3 parts (152 | € + 151 | 1), not 306 / 153 = 2.
 */
START_TEST(test_smstext_gsm_escape_boundary)
{
	char buf[ST_BUF] = "";

	st_add(buf, "a", 152);
	st_add(buf, "\xe2\x82\xac", 1);
	st_add(buf, "a", 152);
	st_check(buf, SMSTEXT_GSM7, 306, 3);
	/* € as septets 152-153 fits part 1: 151 + 2 | 153 = 2 parts. */
	buf[0] = '\0';
	st_add(buf, "a", 151);
	st_add(buf, "\xe2\x82\xac", 1);
	st_add(buf, "a", 153);
	st_check(buf, SMSTEXT_GSM7, 306, 2);
	/* € as septets 154-155 opens part 2: 153 | 2 + 151 = 2 parts. */
	buf[0] = '\0';
	st_add(buf, "a", 153);
	st_add(buf, "\xe2\x82\xac", 1);
	st_add(buf, "a", 151);
	st_check(buf, SMSTEXT_GSM7, 306, 2);
	/* The same with [ in the first part's last septet but one. */
	buf[0] = '\0';
	st_add(buf, "a", 152);
	st_add(buf, "[", 1);
	st_add(buf, "a", 9);
	/* 163 septets: 152 | [ + 9 = 11: 2 parts either way. */
	st_check(buf, SMSTEXT_GSM7, 163, 2);
}
END_TEST

/* One character outside GSM turns the whole text into UCS-2. */
START_TEST(test_smstext_one_char_switches)
{
	char buf[ST_BUF] = "";

	st_add(buf, "a", 100);
	st_check(buf, SMSTEXT_GSM7, 100, 1);
	/* Last character á: 101 units > 70, so 67 | 34. */
	st_add(buf, "\xc3\xa1", 1);
	st_check(buf, SMSTEXT_UCS2, 101, 2);
	/* Extension characters cost 1 unit once the text is UCS-2. */
	st_check("[]{}\xe2\x82\xac\xc3\xa7", SMSTEXT_UCS2, 6, 1);
	/* The first character switches just as well. */
	buf[0] = '\0';
	st_add(buf, "\xe2\x80\x94", 1);
	st_add(buf, "^", 150);
	st_check(buf, SMSTEXT_UCS2, 151, 3);
}
END_TEST

/* 70 UTF-16 units fit one part; 71 need two of at most 67. */
START_TEST(test_smstext_ucs2_limits)
{
	char buf[ST_BUF] = "";

	st_add(buf, "\xc3\xa7", 70);
	st_check(buf, SMSTEXT_UCS2, 70, 1);
	st_add(buf, "a", 1);
	st_check(buf, SMSTEXT_UCS2, 71, 2);
	buf[0] = '\0';
	st_add(buf, "\xe2\x80\x9c", 67 * 2);
	st_check(buf, SMSTEXT_UCS2, 134, 2);
	st_add(buf, "x", 1);
	st_check(buf, SMSTEXT_UCS2, 135, 3);
}
END_TEST

/*
 * An emoji (U+1F600) is a surrogate pair: 2 units, 1 character, never
 * split. 66 units then the emoji would straddle units 67-68, so it opens
 * part 2: 134 units take 3 parts (66 | 2 + 65 | 1).
 */
START_TEST(test_smstext_ucs2_surrogates)
{
	struct smstext_info info;
	char buf[ST_BUF] = "";

	ck_assert_int_eq(smstext_analyze("\xf0\x9f\x98\x80", &info), 0);
	ck_assert_int_eq(info.encoding, SMSTEXT_UCS2);
	ck_assert_uint_eq(info.units, 2);
	ck_assert_uint_eq(info.chars, 1);
	ck_assert_uint_eq(info.segments, 1);
	/* 35 emoji = 70 units: one part; 36 = 72: 33 | 3. */
	st_add(buf, "\xf0\x9f\x98\x80", 35);
	st_check(buf, SMSTEXT_UCS2, 70, 1);
	st_add(buf, "\xf0\x9f\x98\x80", 1);
	st_check(buf, SMSTEXT_UCS2, 72, 2);
	buf[0] = '\0';
	st_add(buf, "a", 66);
	st_add(buf, "\xf0\x9f\x98\x80", 1);
	st_add(buf, "a", 66);
	st_check(buf, SMSTEXT_UCS2, 134, 3);
	ck_assert_int_eq(smstext_analyze(buf, &info), 0);
	ck_assert_uint_eq(info.chars, 133);
	/* The pair at units 66-67 fits: 65 + 2 | 67 = 2 parts. */
	buf[0] = '\0';
	st_add(buf, "a", 65);
	st_add(buf, "\xf0\x9f\x98\x80", 1);
	st_add(buf, "a", 67);
	st_check(buf, SMSTEXT_UCS2, 134, 2);
	/* The last code point, U+10FFFF, is a pair as well. */
	st_check("\xf4\x8f\xbf\xbf", SMSTEXT_UCS2, 2, 1);
}
END_TEST

/* Counts go past 255 parts; SMSTEXT_MAX_SEGMENTS is for callers. */
START_TEST(test_smstext_max_segments)
{
	struct smstext_info info;
	size_t n = 153 * SMSTEXT_MAX_SEGMENTS;
	char *text;

	text = malloc(n + 2);
	ck_assert_ptr_nonnull(text);
	memset(text, 'a', n);
	text[n] = '\0';
	ck_assert_int_eq(smstext_analyze(text, &info), 0);
	ck_assert_uint_eq(info.segments, SMSTEXT_MAX_SEGMENTS);
	text[n] = 'a';
	text[n + 1] = '\0';
	ck_assert_int_eq(smstext_analyze(text, &info), 0);
	ck_assert_uint_eq(info.segments, SMSTEXT_MAX_SEGMENTS + 1);
	ck_assert_uint_eq(info.units, n + 1);
	free(text);
}
END_TEST

/* Invalid UTF-8: analyze fails and leaves *out alone, smart gives NULL. */
START_TEST(test_smstext_invalid_utf8)
{
	static const char *const bad[] = {"\xc3", /* cut short by the NUL */
	    "ok \xc3(",		    /* continuation byte missing */
	    "\x80",		    /* stray continuation byte */
	    "\xc0\xaf",		    /* overlong '/' */
	    "\xe0\x80\xaf",	    /* overlong '/', 3 bytes */
	    "\xf0\x82\x82\xac",	    /* overlong €, 4 bytes */
	    "\xed\xa0\x80",	    /* encoded surrogate U+D800 */
	    "\xed\xbf\xbf",	    /* encoded surrogate U+DFFF */
	    "\xf4\x90\x80\x80",	    /* U+110000 */
	    "\xf8\x88\x80\x80\x80", /* 5-byte form */
	    "\xff",		    /* never in UTF-8 */
	    "\xf0\x9f\x98",	    /* emoji cut short */
	    NULL};
	struct smstext_info info;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		memset(&info, 0x5a, sizeof(info));
		ck_assert_msg(smstext_analyze(bad[i], &info) == -1, "%zu", i);
		ck_assert_uint_eq(info.units, 0x5a5a5a5a);
		ck_assert_msg(!smstext_is_gsm7(bad[i]), "%zu", i);
		ck_assert_ptr_null(smstext_smart(bad[i]));
	}
	/* The largest forms of each length are valid. */
	st_check("\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf", SMSTEXT_UCS2, 5,
	    1);
}
END_TEST

/* A curly-quoted text with dashes and an ellipsis becomes GSM-7. */
START_TEST(test_smstext_smart_quotes)
{
	/* “Rally” — it’s on… ‘Saturday’ */
	static const char text[] =
	    "\xe2\x80\x9cRally\xe2\x80\x9d \xe2\x80\x94 it\xe2\x80\x99s on"
	    "\xe2\x80\xa6 \xe2\x80\x98Saturday\xe2\x80\x99";
	struct smstext_info info;
	char *s;

	st_check(text, SMSTEXT_UCS2, 29, 1);
	s = smstext_smart(text);
	ck_assert_str_eq(s, "\"Rally\" - it's on... 'Saturday'");
	/* The ellipsis became 3 septets: 29 + 2. */
	st_check(s, SMSTEXT_GSM7, 31, 1);
	ck_assert_int_eq(smstext_analyze(s, &info), 0);
	ck_assert_uint_eq(info.chars, 31);
	free(s);
}
END_TEST

/* Spaces, invisible characters, full-width and small forms, fractions. */
START_TEST(test_smstext_smart_forms)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
	    {"", ""},
	    {"plain GSM {text} \xe2\x82\xac", "plain GSM {text} \xe2\x82\xac"},
	    {"a\xc2\xa0"
	     "b\xe2\x80\x89"
	     "c\xe3\x80\x80"
	     "d\te",
		"a b c d e"},
	    {"zero\xe2\x80\x8bwidth\xef\xbb\xbf\xc2\xad", "zerowidth"},
	    {"\xef\xbc\xa1\xef\xbd\x82\xef\xbc\x91\xef\xbc\x81\xef\xbd\x80",
		"Ab1!'"},
	    {"\xef\xbc\xbb\xef\xbd\x9e\xef\xbc\xbd \xef\xb9\xab", "[~] @"},
	    {"\xc2\xbd \xc2\xbc \xc2\xbe \xc3\xb7 \xe2\x80\xbc",
		"1/2 1/4 3/4 / !!"},
	    {"`tick\xc2\xb4 \xc2\xab"
	     "fr\xc2\xbb \xe2\x80\xb9x\xe2\x80\xba",
		"'tick' \"fr\" 'x'"},
	    {"a\xe2\x80\xa8"
	     "b\xe2\x80\x93"
	     "c\xe2\x88\x92"
	     "d\xe2\x80\xa2",
		"a\nb-c-d-"},
	};
	size_t i;
	char *s;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = smstext_smart(cases[i].in);
		ck_assert_msg(s != NULL && strcmp(s, cases[i].out) == 0,
		    "case %zu: %s", i, s != NULL ? s : "(null)");
		ck_assert(smstext_is_gsm7(s));
		free(s);
	}
}
END_TEST

/* What has no GSM look-alike stays, so the text may stay UCS-2. */
START_TEST(test_smstext_smart_keeps_rest)
{
	static const char text[] =
	    "\xe2\x80\x9cHola\xe2\x80\x9d, est\xc3\xa1s \xf0\x9f\x98\x80";
	char *s;

	s = smstext_smart(text);
	ck_assert_str_eq(s, "\"Hola\", est\xc3\xa1s \xf0\x9f\x98\x80");
	ck_assert(!smstext_is_gsm7(s));
	st_check(s, SMSTEXT_UCS2, 16, 1);
	free(s);
}
END_TEST

/*
 * Every code point: smart replacement either keeps it as it is or turns
 * it into GSM-7, never into something else that is not GSM.
 */
START_TEST(test_smstext_smart_all_codepoints)
{
	char in[8], *s;
	unsigned replaced = 0;
	uint32_t cp;

	for (cp = 1; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		if (cp > 0x10000 && cp % 251 != 0)
			continue; /* no look-alikes past the BMP: sample */
		st_utf8(cp, in);
		s = smstext_smart(in);
		ck_assert_ptr_nonnull(s);
		if (strcmp(s, in) != 0) {
			ck_assert_msg(smstext_is_gsm7(s), "U+%04X",
			    (unsigned)cp);
			replaced++;
		}
		free(s);
	}
	/*
	 * Exactly the 201 code points of smstext_repl_table's 80 entries: a
	 * table out of order would lose some to bsearch(). Update with it.
	 */
	ck_assert_uint_eq(replaced, 201);
}
END_TEST

START_TEST(test_smstext_encoding_text)
{
	ck_assert_str_eq(smstext_encoding_to_text(SMSTEXT_GSM7), "gsm7");
	ck_assert_str_eq(smstext_encoding_to_text(SMSTEXT_UCS2), "ucs2");
}
END_TEST

Suite *
smstext_suite(void)
{
	Suite *s = suite_create("smstext");
	TCase *tc;

	tc = tcase_create("charset");
	tcase_add_test(tc, test_smstext_gsm_tables);
	tcase_add_test(tc, test_smstext_gsm_accents);
	tcase_add_test(tc, test_smstext_invalid_utf8);
	tcase_add_test(tc, test_smstext_encoding_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("segments");
	tcase_add_test(tc, test_smstext_gsm_single_limit);
	tcase_add_test(tc, test_smstext_gsm_concat_parts);
	tcase_add_test(tc, test_smstext_gsm_escape_boundary);
	tcase_add_test(tc, test_smstext_one_char_switches);
	tcase_add_test(tc, test_smstext_ucs2_limits);
	tcase_add_test(tc, test_smstext_ucs2_surrogates);
	tcase_add_test(tc, test_smstext_max_segments);
	suite_add_tcase(s, tc);

	tc = tcase_create("smart");
	tcase_add_test(tc, test_smstext_smart_quotes);
	tcase_add_test(tc, test_smstext_smart_forms);
	tcase_add_test(tc, test_smstext_smart_keeps_rest);
	tcase_add_test(tc, test_smstext_smart_all_codepoints);
	suite_add_tcase(s, tc);
	return s;
}
