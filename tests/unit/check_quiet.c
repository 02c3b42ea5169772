/*
 * check_quiet.c - unit tests of quiet hours (quiet.c) and of the zones of
 * a number (phone_zone.cc), with an injected clock: every "now" is a
 * fixed UTC instant, and every expected answer is worked out by hand in
 * the comment beside it.
 *
 * Numbers and what libphonenumber 8.12's offline geocoder (Debian 12)
 * says of them: +1 212 555 0123 "New York, NY", +1 312 555 0123
 * "Chicago, IL", +1 213 555 0123 "Los Angeles, CA", +1 850 555 0123
 * "Florida" (the panhandle spans Eastern and Central), +1 219 555 0123
 * "Indiana", +1 800 555 0123 "United States" (toll-free), +44 20 7946
 * 0958 "London", +800 1234 5678 "" (international freephone, no
 * country).
 */
#include "autoconf.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "phone_zone.h"
#include "quiet.h"

#define NY  "America/New_York"
#define CHI "America/Chicago"
#define LA  "America/Los_Angeles"

static const struct quiet_window quiet_day = {8 * 60, 20 * 60};

/* ms since the epoch of a UTC date and time (days_from_civil). */
static int64_t
utc(int y, int mo, int d, int h, int mi)
{
	int64_t era, yoe, doy, doe, days;

	y -= mo <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	days = era * 146097 + doe - 719468;
	return ((days * 24 + h) * 60 + mi) * 60 * 1000;
}

/* "2026-01-15T14:00Z" of ms, for failure messages. */
static const char *
iso(int64_t ms, char *buf, size_t len)
{
	int64_t days = ms / 86400000, rem = ms % 86400000;
	int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9, y = yoe + era * 400 + (m <= 2);

	if (ms == QUIET_NO_WINDOW) {
		snprintf(buf, len, "QUIET_NO_WINDOW");
		return buf;
	}
	snprintf(buf, len, "%04lld-%02lld-%02lldT%02lld:%02lldZ", (long long)y,
	    (long long)m, (long long)d, (long long)(rem / 3600000),
	    (long long)(rem / 60000 % 60));
	return buf;
}

static void
zones_of(struct quiet_zones *z, const char *a, const char *b)
{
	memset(z, 0, sizeof(*z));
	snprintf(z->names[z->n++], QUIET_ZONE_NAME_MAX, "%s", a);
	if (b != NULL)
		snprintf(z->names[z->n++], QUIET_ZONE_NAME_MAX, "%s", b);
}

#define ck_next(z, w, now, want)                                               \
	do {                                                                   \
		char b1_[64], b2_[64], b3_[64];                                \
		int64_t got_ = quiet_next_allowed((z), (w), (now));            \
		ck_assert_msg(got_ == (want), "from %s: got %s, want %s",      \
		    iso((now), b1_, sizeof(b1_)), iso(got_, b2_, sizeof(b2_)), \
		    iso((want), b3_, sizeof(b3_)));                            \
	} while (0)

/* Resolves a member's zones with the default America/New_York. */
static void
resolve(const char *member_tz, const char *e164, const char *list_tz,
    int64_t now, struct quiet_zones *z)
{
	char err[256];

	ck_assert_msg(
	    quiet_zones_for(&(struct quiet_hints){.member_tz = member_tz,
				.e164 = e164,
				.list_tz = list_tz,
				.default_tz = NY},
		now, z, err, sizeof(err)) == 0,
	    "%s", err);
}

static void
ck_zones(const struct quiet_zones *z, const char *want)
{
	char buf[QUIET_ZONES_MAX * QUIET_ZONE_NAME_MAX];

	ck_assert_str_eq(quiet_zones_to_text(z, buf, sizeof(buf)), want);
}

/* Winter, 2026-01-15 12:00Z: New York 07:00, Chicago 06:00, LA 04:00. */
START_TEST(test_quiet_three_zones)
{
	struct quiet_zones z;
	int64_t now = utc(2026, 1, 15, 12, 0);

	zones_of(&z, NY, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 13, 0)); /* 08 EST */
	zones_of(&z, CHI, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 14, 0)); /* 08 CST */
	zones_of(&z, LA, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 16, 0)); /* 08 PST */

	/* 15:00Z: New York 10:00 and Chicago 09:00 now, LA at 08:00. */
	now = utc(2026, 1, 15, 15, 0);
	zones_of(&z, NY, NULL);
	ck_next(&z, &quiet_day, now, now);
	zones_of(&z, CHI, NULL);
	ck_next(&z, &quiet_day, now, now);
	zones_of(&z, LA, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 16, 0));

	/* 19:59 local is inside, 20:00 is not: LA 19:59:30 PST. */
	now = utc(2026, 1, 16, 3, 59) + 30000;
	ck_next(&z, &quiet_day, now, now);
	ck_next(&z, &quiet_day, utc(2026, 1, 16, 4, 0),
	    utc(2026, 1, 16, 16, 0));
}
END_TEST

/* The same members found by their numbers, none with a time_zone. */
START_TEST(test_quiet_numbers)
{
	struct quiet_zones z;
	int64_t now = utc(2026, 1, 15, 12, 0);

	resolve(NULL, "+12125550123", NULL, now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_NUMBER_AREA);
	ck_assert_str_eq(z.area, "New York, NY");
	ck_zones(&z, NY);
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 13, 0));

	resolve(NULL, "+13125550123", NULL, now, &z);
	ck_assert_str_eq(z.area, "Chicago, IL");
	ck_zones(&z, CHI);
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 14, 0));

	resolve(NULL, "+12135550123", NULL, now, &z);
	ck_assert_str_eq(z.area, "Los Angeles, CA");
	ck_zones(&z, LA);
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 16, 0));
}
END_TEST

/*
 * Florida's 850 and Indiana's 219 span Eastern and Central: the window
 * safe in both is 08:00 Central to 20:00 Eastern (09:00-20:00 Eastern).
 */
START_TEST(test_quiet_ambiguous_area)
{
	struct quiet_zones z;
	int64_t now = utc(2026, 1, 15, 12, 0);

	resolve(NULL, "+18505550123", NULL, now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_NUMBER_AREA);
	ck_assert_str_eq(z.region, "US");
	ck_assert_str_eq(z.area, "Florida");
	ck_zones(&z, NY "," CHI);
	/* 13:00Z is 08:00 in New York but 07:00 in Chicago. */
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 14, 0));
	ck_next(&z, &quiet_day, utc(2026, 1, 15, 13, 0),
	    utc(2026, 1, 15, 14, 0));
	/* 00:30Z: 19:30 Eastern, 18:30 Central: now. */
	ck_next(&z, &quiet_day, utc(2026, 1, 16, 0, 30),
	    utc(2026, 1, 16, 0, 30));
	/* 01:30Z: 20:30 Eastern (19:30 Central): tomorrow 08:00 Central. */
	ck_next(&z, &quiet_day, utc(2026, 1, 16, 1, 30),
	    utc(2026, 1, 16, 14, 0));

	resolve(NULL, "+12195550123", NULL, now, &z);
	ck_assert_str_eq(z.area, "Indiana");
	ck_zones(&z, "America/Indiana/Indianapolis," CHI);
	ck_next(&z, &quiet_day, utc(2026, 1, 16, 1, 30),
	    utc(2026, 1, 16, 14, 0));
}
END_TEST

/*
 * 2026-03-08: clocks go from 02:00 to 03:00 local (EST to EDT, CST to
 * CDT, PST to PDT). 08:00 EDT is 12:00Z, not 13:00Z.
 */
START_TEST(test_quiet_dst_spring)
{
	struct quiet_zones z;
	struct quiet_window w = {2 * 60 + 30, 12 * 60};
	int64_t now = utc(2026, 3, 8, 6, 0); /* 01:00 EST, 00:00 CST */

	zones_of(&z, NY, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 3, 8, 12, 0));
	zones_of(&z, CHI, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 3, 8, 13, 0));
	/* 22:00 PST on the 7th: tomorrow's 08:00 is PDT. */
	zones_of(&z, LA, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 3, 8, 15, 0));
	/* From 20:30 EST on the 7th, across the transition. */
	zones_of(&z, NY, NULL);
	ck_next(&z, &quiet_day, utc(2026, 3, 8, 1, 30), utc(2026, 3, 8, 12, 0));
	/* Both: 08:00 CDT = 09:00 EDT = 13:00Z. */
	zones_of(&z, NY, CHI);
	ck_next(&z, &quiet_day, now, utc(2026, 3, 8, 13, 0));
	/* A window from 02:30, which does not exist that day: from 03:00
	 * EDT, the transition (07:00Z). */
	zones_of(&z, NY, NULL);
	ck_next(&z, &w, now, utc(2026, 3, 8, 7, 0));
}
END_TEST

/*
 * 2026-11-01: clocks go back from 02:00 to 01:00 local (at 06:00Z in New
 * York, 07:00Z in Chicago, 09:00Z in Los Angeles).
 */
START_TEST(test_quiet_dst_fall)
{
	struct quiet_zones z;
	struct quiet_window w = {1 * 60 + 30, 12 * 60};
	int64_t now = utc(2026, 11, 1, 6, 0); /* 01:00 EST, 01:00 CDT */

	zones_of(&z, NY, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 11, 1, 13, 0));
	zones_of(&z, CHI, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 11, 1, 14, 0));
	zones_of(&z, LA, NULL);
	ck_next(&z, &quiet_day, now, utc(2026, 11, 1, 16, 0));
	/* 01:30 happens twice in New York: 05:30Z (EDT) and 06:30Z (EST).
	 * From 01:00 EDT the first; from 01:10 EST the second. */
	zones_of(&z, NY, NULL);
	ck_next(&z, &w, utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 5, 30));
	ck_next(&z, &w, utc(2026, 11, 1, 6, 10), utc(2026, 11, 1, 6, 30));
	/* From 20:30 EDT on 31 October: 08:00 EST. */
	ck_next(&z, &quiet_day, utc(2026, 11, 1, 0, 30),
	    utc(2026, 11, 1, 13, 0));
}
END_TEST

/*
 * Chicago and Dhaka (no DST) are 12 hours apart in January: an 08-20
 * window in one is 20-08 in the other, so there is none. In July
 * (Chicago on CDT, 11 hours apart) they share 08:00-09:00 CDT.
 */
START_TEST(test_quiet_no_window)
{
	struct quiet_zones z;

	zones_of(&z, CHI, "Asia/Dhaka");
	ck_next(&z, &quiet_day, utc(2026, 1, 15, 12, 0), QUIET_NO_WINDOW);
	ck_next(&z, &quiet_day, utc(2026, 7, 15, 0, 0),
	    utc(2026, 7, 15, 13, 0));
	ck_next(&z, &quiet_day, utc(2026, 7, 15, 13, 59),
	    utc(2026, 7, 15, 13, 59));
	ck_next(&z, &quiet_day, utc(2026, 7, 15, 14, 0),
	    utc(2026, 7, 16, 13, 0));
	/* No zones, or a zone ICU cannot open: never "send now". */
	memset(&z, 0, sizeof(z));
	ck_next(&z, &quiet_day, utc(2026, 1, 15, 15, 0), QUIET_NO_WINDOW);
}
END_TEST

START_TEST(test_quiet_zone_valid)
{
	static const char *const good[] = {NY, CHI, LA, "Europe/London", "UTC",
	    "Asia/Dhaka", "America/Indiana/Indianapolis",
	    "America/Argentina/Buenos_Aires", "Etc/GMT+5", NULL};
	static const char *const bad[] = {"Mars/Olympus", "../etc/passwd", "",
	    "America/../Europe/London", "/usr/share/zoneinfo/UTC", "posixrules",
	    "localtime", "Factory", "posix/America/New_York", "right/UTC",
	    "America", "America/", "America/New_York ", "america/new_york",
	    "zone.tab", "iso3166.tab", "tzdata.zi", "America//New_York",
	    "America/New York", NULL};
	const char *tz;
	size_t i;

	for (i = 0; good[i] != NULL; i++)
		ck_assert_msg(quiet_zone_valid(good[i]), "%s refused", good[i]);
	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(!quiet_zone_valid(bad[i]), "'%s' accepted",
		    bad[i]);
	ck_assert(!quiet_zone_valid(NULL));
	/* Every zone the number table names is one the API accepts. */
	for (i = 0; (tz = phone_zone_table_zone(i)) != NULL; i++)
		ck_assert_msg(quiet_zone_valid(tz), "table zone %s refused",
		    tz);
	ck_assert_uint_gt(i, 40);
}
END_TEST

/* The member's time_zone beats the number; the list and the default
 * come in when the number gives nothing. */
START_TEST(test_quiet_sources)
{
	struct quiet_zones z;
	int64_t now = utc(2026, 1, 15, 12, 0);
	char err[256];

	/* A Los Angeles member with a Florida number. */
	resolve(LA, "+18505550123", CHI, now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_MEMBER);
	ck_zones(&z, LA);
	ck_assert_str_eq(z.note, "");
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 16, 0));

	/* A member zone tzdata no longer has: skipped, with a note. */
	resolve("Mars/Olympus", "+13125550123", NULL, now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_NUMBER_AREA);
	ck_zones(&z, CHI);
	ck_assert_str_eq(z.note,
	    "member time_zone 'Mars/Olympus' is not a known zone; ignored");

	/* +800: international freephone, no country. */
	resolve(NULL, "+80012345678", CHI, now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_LIST);
	ck_assert_str_eq(z.region, "");
	ck_zones(&z, CHI);
	resolve(NULL, "+80012345678", NULL, now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_DEFAULT);
	ck_zones(&z, NY);
	resolve("", "", "", now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_DEFAULT);
	resolve(NULL, "not a number", "Europe/Berlin", now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_LIST);
	ck_zones(&z, "Europe/Berlin");
	resolve(NULL, NULL, "Mars/Olympus", now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_DEFAULT);
	ck_assert_str_eq(z.note,
	    "list time_zone 'Mars/Olympus' is not a known zone; ignored");

	/* No valid default: an error, not a guess. */
	ck_assert_int_eq(
	    quiet_zones_for(&(struct quiet_hints){.default_tz = "Mars/Olympus"},
		now, &z, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err,
	    "no time zone for the member: the default time zone "
	    "'Mars/Olympus' is not a known zone");
	ck_assert_str_eq(quiet_source_to_text(QUIET_SRC_NUMBER_COUNTRY),
	    "number-country");
}
END_TEST

/*
 * A number whose area says nothing: every zone of its country, one per
 * set of rules. US toll-free: New York to Honolulu, so the common window
 * is 08:00 Hawaii (18:00Z) to 20:00 Eastern (01:00Z) in January.
 */
START_TEST(test_quiet_country)
{
	struct quiet_zones z;
	int64_t now = utc(2026, 1, 15, 12, 0);

	resolve(NULL, "+18005550123", NULL, now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_NUMBER_COUNTRY);
	ck_assert_str_eq(z.area, "United States");
	ck_zones(&z,
	    NY "," CHI ",America/Denver,America/Phoenix," LA
	       ",America/Anchorage,America/Adak,Pacific/Honolulu");
	ck_next(&z, &quiet_day, now, utc(2026, 1, 15, 18, 0));
	ck_next(&z, &quiet_day, utc(2026, 1, 16, 0, 59),
	    utc(2026, 1, 16, 0, 59));
	ck_next(&z, &quiet_day, utc(2026, 1, 16, 1, 0),
	    utc(2026, 1, 16, 18, 0));

	/* One zone: the country's. */
	resolve(NULL, "+442079460958", NULL, now, &z);
	ck_assert_int_eq(z.source, QUIET_SRC_NUMBER_COUNTRY);
	ck_assert_str_eq(z.region, "GB");
	ck_zones(&z, "Europe/London");
	ck_next(&z, &quiet_day, now, now);
}
END_TEST

START_TEST(test_quiet_area_table)
{
	const char *zones[PHONE_ZONE_MAX];

	ck_assert_uint_eq(
	    phone_zone_for_area("US", "Miami, FL", zones, PHONE_ZONE_MAX), 2);
	ck_assert_str_eq(zones[0], NY);
	ck_assert_str_eq(zones[1], CHI);
	ck_assert_uint_eq(phone_zone_for_area("US", "Texas", zones, 1), 1);
	ck_assert_str_eq(zones[0], CHI);
	ck_assert_uint_eq(
	    phone_zone_for_area("CA", "Toronto, ON", zones, PHONE_ZONE_MAX), 3);
	ck_assert_str_eq(zones[0], "America/Toronto");
	/* "CA" is California only in the US. */
	ck_assert_uint_eq(
	    phone_zone_for_area("CA", "Nowhere, CA", zones, PHONE_ZONE_MAX), 0);
	ck_assert_uint_eq(
	    phone_zone_for_area("US", "United States", zones, PHONE_ZONE_MAX),
	    0);
	ck_assert_uint_eq(
	    phone_zone_for_area("MX", "Mexico City, FD", zones, PHONE_ZONE_MAX),
	    0);
}
END_TEST

START_TEST(test_quiet_window_parse)
{
	struct quiet_window w;
	unsigned m = 0;
	char err[128];

	ck_assert_int_eq(quiet_time_parse("08:00", &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(m, 480);
	ck_assert_int_eq(quiet_time_parse("8:30", &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(m, 510);
	ck_assert_int_eq(quiet_time_parse("24:00", &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(m, 1440);
	ck_assert_int_eq(quiet_time_parse("24:01", &m, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "'24:01' is not a time of day (00:00 to 24:00)");
	ck_assert_int_eq(quiet_time_parse("8am", &m, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "'8am' is not a time of day (HH:MM)");
	ck_assert_int_eq(quiet_time_parse("08:60", &m, err, sizeof(err)), -1);
	ck_assert_int_eq(quiet_time_parse("008:00", &m, err, sizeof(err)), -1);
	ck_assert_int_eq(quiet_time_parse("08:00 ", &m, err, sizeof(err)), -1);
	ck_assert_int_eq(quiet_time_parse("", &m, err, sizeof(err)), -1);

	w.start_min = 22 * 60;
	w.end_min = 7 * 60;
	ck_assert_int_eq(quiet_window_check(&w, err, sizeof(err)), -1);
	ck_assert_str_eq(err,
	    "quiet_start 22:00 is not before quiet_end 07:00: the sending "
	    "window may not cross midnight");
	w.start_min = 9 * 60;
	w.end_min = 9 * 60 + 59;
	ck_assert_int_eq(quiet_window_check(&w, err, sizeof(err)), -1);
	ck_assert_str_eq(err,
	    "the sending window 09:00-09:59 is shorter than an hour");
	w.end_min = 10 * 60;
	ck_assert_int_eq(quiet_window_check(&w, err, sizeof(err)), 0);
}
END_TEST

/* The ICU rules against the system's: a warning naming both versions. */
START_TEST(test_quiet_tzdata_stale)
{
	char buf[256] = "", want[64];

	if (quiet_tzdata_stale(buf, sizeof(buf))) {
		snprintf(want, sizeof(want), "ICU's time zone rules (%s) ",
		    quiet_tzdata_version());
		ck_assert_msg(strncmp(buf, want, strlen(want)) == 0, "%s", buf);
	} else {
		ck_assert_str_eq(buf, "");
	}
	/* A tz directory without tzdata.zi: nothing to compare. */
	setenv("TZDIR", "/nonexistent", 1);
	ck_assert(!quiet_tzdata_stale(buf, sizeof(buf)));
	unsetenv("TZDIR");
}
END_TEST

Suite *
quiet_suite(void)
{
	Suite *s = suite_create("quiet");
	TCase *tc;

	tc = tcase_create("next_allowed");
	tcase_add_test(tc, test_quiet_three_zones);
	tcase_add_test(tc, test_quiet_ambiguous_area);
	tcase_add_test(tc, test_quiet_dst_spring);
	tcase_add_test(tc, test_quiet_dst_fall);
	tcase_add_test(tc, test_quiet_no_window);
	suite_add_tcase(s, tc);

	tc = tcase_create("zones");
	tcase_add_test(tc, test_quiet_numbers);
	tcase_add_test(tc, test_quiet_zone_valid);
	tcase_add_test(tc, test_quiet_sources);
	tcase_add_test(tc, test_quiet_country);
	tcase_add_test(tc, test_quiet_area_table);
	suite_add_tcase(s, tc);

	tc = tcase_create("window");
	tcase_add_test(tc, test_quiet_window_parse);
	tcase_add_test(tc, test_quiet_tzdata_stale);
	suite_add_tcase(s, tc);
	return s;
}
