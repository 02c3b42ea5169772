/*
 * check_phone.c - unit tests of phone: phone_normalize() over a table of
 * numbers from several countries, in national and international forms,
 * valid and invalid, what phone_normalize_as() accepts beyond that, and
 * phone_region_known().
 *
 * Each row gives the exact E.164 result, or NULL and a word the error
 * must contain. The numbers are the ones libphonenumber 8.12 calls valid
 * (555-01xx is; Ofcom's 07700 900xxx drama range is not).
 */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check_suites.h"
#include "phone.h"

struct phone_case {
	const char *input;
	const char *region;
	const char *want; /* E.164, or NULL: must fail */
	const char *errword;
};

static const struct phone_case phone_cases[] = {
    /* US: national, with 1, international, exit code 011. */
    {"(415) 555-0100", "US", "+14155550100", NULL},
    {"650.253.0000", "US", "+16502530000", NULL},
    {"1 650 253 0000", "US", "+16502530000", NULL},
    {"+1-650-253-0000", "GB", "+16502530000", NULL},
    {"6502530000", "us", "+16502530000", NULL},
    /* CA and JM share +1; JM's 876 from a US default region. */
    {"(416) 979-1234", "CA", "+14169791234", NULL},
    {"876 927 1234", "US", "+18769271234", NULL},
    {"+1 876-927-1234", "JM", "+18769271234", NULL},
    /* GB: national, 00 from DE, 011 from US. */
    {"020 7946 0958", "GB", "+442079460958", NULL},
    {"07911 123456", "GB", "+447911123456", NULL},
    {"0044 20 7946 0958", "DE", "+442079460958", NULL},
    {"011 44 20 7946 0958", "US", "+442079460958", NULL},
    /* DE, FR. */
    {"030 12345678", "DE", "+493012345678", NULL},
    {"+49 151 23456789", "US", "+4915123456789", NULL},
    {"01 23 45 67 89", "FR", "+33123456789", NULL},
    {"06.12.34.56.78", "FR", "+33612345678", NULL},
    /* MX, IN, BR, AU, NG. */
    {"+52 55 1234 5678", "US", "+525512345678", NULL},
    {"55 1234 5678", "MX", "+525512345678", NULL},
    {"+91 98765 43210", "GB", "+919876543210", NULL},
    {"098765 43210", "IN", "+919876543210", NULL},
    {"(11) 91234-5678", "BR", "+5511912345678", NULL},
    {"0412 345 678", "AU", "+61412345678", NULL},
    {"+61 2 9876 5432", "US", "+61298765432", NULL},
    {"0803 123 4567", "NG", "+2348031234567", NULL},
    {"+234 803 123 4567", "US", "+2348031234567", NULL},
    /* No default region: international forms only. */
    {"+44 20 7946 0958", NULL, "+442079460958", NULL},
    {"+33 6 12 34 56 78", "", "+33612345678", NULL},
    {"650 253 0000", NULL, NULL, "no country code"},

    /* Empty. */
    {"", "US", NULL, "empty"},
    {"  \t ", "US", NULL, "empty"},
    /* Too short, too long. */
    {"12", "US", NULL, "too short"},
    {"+44 20", "US", NULL, "too short"},
    {"123456789012345678", "US", NULL, "too long"},
    {"+1 650 253 0000 0000", "US", NULL, "too long"},
    /* 00 is not the US exit code: it stays part of the number. */
    {"0044 20 7946 0958", "US", NULL, "too long"},
    /* Invalid country codes. */
    {"+999 1234 5678", "US", NULL, "invalid country code"},
    {"00 999 1234 5678", "FR", NULL, "invalid country code"},
    /* Unassigned or fictional: possible length, not valid. */
    {"+1 555 0100", "US", NULL, "lacks its area code"},
    {"+1 555 555 0123", "US", NULL, "not a valid number in US"},
    {"(415) 155-0100", "US", NULL, "not a valid number in US"},
    {"+44 10 1234 5678", "US", NULL, "not a valid number in GB"},
    /* An AU national number with the wrong default region. */
    {"0412 345 678", "US", NULL, "not a valid number in US"},
    /* Letters: vanity numbers are refused, not mapped. */
    {"1-800-FLOWERS", "US", NULL, "letters"},
    {"+1 650 CALL NOW", "US", NULL, "letters"},
    {"hello", "US", NULL, "letters"},
    /* Extensions. */
    {"650 253 0000 x123", "US", NULL, "extension"},
    {"+1 650 253 0000 ext. 4", "US", NULL, "extension"},
    {"020 7946 0958 #12", "GB", NULL, "extension"},
    /* Not a number at all, unknown region. */
    {"+-.()", "US", NULL, "not a phone number"},
    {"650 253 0000", "XX", NULL, "unknown region"},
    {"650 253 0000", "USA", NULL, "unknown region"},
};

START_TEST(test_phone_table)
{
	const struct phone_case *c = &phone_cases[_i];
	char out[PHONE_E164_MAX], err[256];
	int rc;

	memset(out, 'x', sizeof(out));
	err[0] = '\0';
	rc = phone_normalize(c->input, c->region, out, sizeof(out), err,
	    sizeof(err));
	if (c->want != NULL) {
		ck_assert_msg(rc == 0, "'%s' (%s): failed: %s", c->input,
		    c->region ? c->region : "NULL", err);
		ck_assert_str_eq(out, c->want);
	} else {
		ck_assert_msg(rc == -1, "'%s' (%s): accepted as %s", c->input,
		    c->region ? c->region : "NULL", out);
		ck_assert_str_eq(out, "");
		ck_assert_msg(strstr(err, c->errword) != NULL,
		    "'%s': error '%s' lacks '%s'", c->input, err, c->errword);
	}
}
END_TEST

/* phone_normalize_as(): what each level accepts beyond a valid number. */
struct phone_as_case {
	const char *input;
	const char *region;
	enum phone_accept accept;
	const char *want; /* E.164, or NULL: must fail */
	const char *errword;
};

static const struct phone_as_case phone_as_cases[] = {
    /* A valid number passes every level, the same way. */
    {"(415) 555-0100", "US", PHONE_VALID, "+14155550100", NULL},
    {"(415) 555-0100", "US", PHONE_POSSIBLE, "+14155550100", NULL},
    {"(415) 555-0100", "US", PHONE_STORED, "+14155550100", NULL},
    /* Unassigned ranges (NPA 555, Ofcom's drama range): possible only. */
    {"+1 555 555 0123", "US", PHONE_VALID, NULL, "not a valid number"},
    {"+1 555 555 0123", "US", PHONE_POSSIBLE, "+15555550123", NULL},
    {"(555) 867-5310", "US", PHONE_POSSIBLE, "+15558675310", NULL},
    {"+15558675310", NULL, PHONE_STORED, "+15558675310", NULL},
    {"+44 7700 900123", "US", PHONE_POSSIBLE, "+447700900123", NULL},
    /* Without an area code, or the wrong length: never. */
    {"555 0100", "US", PHONE_POSSIBLE, NULL, "lacks its area code"},
    {"+1 555 0100", "US", PHONE_STORED, NULL, "lacks its area code"},
    {"+1 555 555 01234", "US", PHONE_POSSIBLE, NULL, "too long"},
    {"12", "US", PHONE_STORED, NULL, "too short"},
    /* E.164 as written: only PHONE_STORED takes what does not parse. */
    {"+9991234567", "US", PHONE_POSSIBLE, NULL, "invalid country code"},
    {"+9991234567", "US", PHONE_STORED, "+9991234567", NULL},
    {"+15551", NULL, PHONE_STORED, "+15551", NULL},
    {"+999 123 4567", "US", PHONE_STORED, NULL, "invalid country code"},
    {"+0123456789", NULL, PHONE_STORED, NULL, "country code"},
    {"+1234567890123456", NULL, PHONE_STORED, NULL, "too long"},
    /* Letters and extensions stay refused. */
    {"1-800-FLOWERS", "US", PHONE_STORED, NULL, "letters"},
    {"+1 555 555 0123 x1", "US", PHONE_POSSIBLE, NULL, "extension"},
};

START_TEST(test_phone_as_table)
{
	const struct phone_as_case *c = &phone_as_cases[_i];
	char out[PHONE_E164_MAX], err[256];
	int rc;

	memset(out, 'x', sizeof(out));
	err[0] = '\0';
	rc = phone_normalize_as(c->input,
	    &(struct phone_rules){.region = c->region, .accept = c->accept},
	    out, sizeof(out), err, sizeof(err));
	if (c->want != NULL) {
		ck_assert_msg(rc == 0, "'%s' (%d): failed: %s", c->input,
		    (int)c->accept, err);
		ck_assert_str_eq(out, c->want);
	} else {
		ck_assert_msg(rc == -1, "'%s' (%d): accepted as %s", c->input,
		    (int)c->accept, out);
		ck_assert_str_eq(out, "");
		ck_assert_msg(strstr(err, c->errword) != NULL,
		    "'%s': error '%s' lacks '%s'", c->input, err, c->errword);
	}
}
END_TEST

/*
 * PHONE_STORED takes "+1" and ten digits whose first is 2-9 without
 * parsing them (phone.cc): the result must be what libphonenumber makes
 * of them, so every area code, with exchanges and lines from every
 * corner, is read both ways: PHONE_POSSIBLE parses (they all have a
 * possible length) and must give back the input too, whatever the
 * region.
 */
START_TEST(test_phone_stored_nanp)
{
	static const char *const regions[] = {"US", NULL, "GB"};
	static const int nxx[] = {0, 100, 200, 555, 911, 999};
	static const int line[] = {0, 100, 9999};
	char in[32], out[PHONE_E164_MAX], out2[PHONE_E164_MAX], err[256];
	int npa, i, j, r;

	/* every area code, each with the next exchange/line pair in turn:
	 * every pair over every code would be 14,400 libphonenumber parses,
	 * seconds under valgrind or on a loaded machine */
	for (npa = 200; npa <= 999; npa++) {
		i = npa % 6;
		j = (npa / 6) % 3;
		snprintf(in, sizeof(in), "+1%03d%03d%04d", npa, nxx[i],
		    line[j]);
		r = (npa + i + j) % 3;
		ck_assert_int_eq(phone_normalize_as(in,
				     &(struct phone_rules){.region = regions[r],
					 .accept = PHONE_STORED},
				     out, sizeof(out), err, sizeof(err)),
		    0);
		ck_assert_str_eq(out, in);
		ck_assert_msg(phone_normalize_as(in,
				  &(struct phone_rules){.region = regions[r],
				      .accept = PHONE_POSSIBLE},
				  out2, sizeof(out2), err, sizeof(err)) == 0,
		    "%s: %s", in, err);
		ck_assert_str_eq(out2, in);
	}
	/* Not the shape (spaces): parsed as before. */
	ck_assert_int_eq(
	    phone_normalize_as("+1 415 555 0100",
		&(struct phone_rules){.region = "US", .accept = PHONE_STORED},
		out, sizeof(out), err, sizeof(err)),
	    0);
	ck_assert_str_eq(out, "+14155550100");
}
END_TEST

/* The error quotes the input, shortened and printable. */
START_TEST(test_phone_error_echo)
{
	char in[300], out[PHONE_E164_MAX], err[256];

	ck_assert_int_eq(
	    phone_normalize("12", "US", out, sizeof(out), err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "'12' is too short to be a phone number");

	ck_assert_int_eq(phone_normalize("+1 555 0100", "US", out, sizeof(out),
			     err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err,
	    "'+1 555 0100' lacks its area code: write the whole number");

	ck_assert_int_eq(phone_normalize("1\x01\x7f", "US", out, sizeof(out),
			     err, sizeof(err)),
	    -1);
	/* "'1??'", spelt out: C11 would read ??' as a trigraph. */
	ck_assert_int_eq(strncmp(err, "'1?", 3), 0);
	ck_assert_int_eq(err[3], '?');
	ck_assert_int_eq(err[4], '\'');

	memset(in, '5', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	ck_assert_int_eq(
	    phone_normalize(in, "US", out, sizeof(out), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "too long"));
	ck_assert_ptr_nonnull(strstr(err, "5555...'"));
	ck_assert_uint_lt(strlen(err), 100);
}
END_TEST

/* NULL input, a small output buffer, a tiny error buffer. */
START_TEST(test_phone_edges)
{
	char out[PHONE_E164_MAX], small[8], err[256], tiny[4];

	ck_assert_int_eq(
	    phone_normalize(NULL, "US", out, sizeof(out), err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));

	ck_assert_int_eq(phone_normalize("650 253 0000", "US", small,
			     sizeof(small), err, sizeof(err)),
	    -1);
	ck_assert_str_eq(small, "");

	ck_assert_int_eq(phone_normalize("hello", "US", out, sizeof(out), tiny,
			     sizeof(tiny)),
	    -1);
	ck_assert_str_eq(tiny, "'he");

	/* The longest E.164 number fits PHONE_E164_MAX. */
	ck_assert_int_eq(phone_normalize("+49 30 1234567890", "US", out,
			     sizeof(out), err, sizeof(err)),
	    0);
	ck_assert_str_eq(out, "+49301234567890");
}
END_TEST

START_TEST(test_phone_region_known)
{
	ck_assert(phone_region_known("US"));
	ck_assert(phone_region_known("GB"));
	ck_assert(phone_region_known("JM"));
	ck_assert(phone_region_known("NG"));
	ck_assert(phone_region_known("de"));
	ck_assert(!phone_region_known("XX"));
	ck_assert(!phone_region_known("ZZ"));
	ck_assert(!phone_region_known("001"));
	ck_assert(!phone_region_known("USA"));
	ck_assert(!phone_region_known("U"));
	ck_assert(!phone_region_known(""));
	ck_assert(!phone_region_known(NULL));
}
END_TEST

Suite *
phone_suite(void)
{
	Suite *s = suite_create("phone");
	TCase *tc;

	tc = tcase_create("normalize");
	tcase_add_loop_test(tc, test_phone_table, 0,
	    sizeof(phone_cases) / sizeof(phone_cases[0]));
	tcase_add_loop_test(tc, test_phone_as_table, 0,
	    sizeof(phone_as_cases) / sizeof(phone_as_cases[0]));
	tcase_add_test(tc, test_phone_stored_nanp);
	tcase_add_test(tc, test_phone_error_echo);
	tcase_add_test(tc, test_phone_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("region");
	tcase_add_test(tc, test_phone_region_known);
	suite_add_tcase(s, tc);
	return s;
}
