/*
 * check_email_addr.c - unit tests of email_addr.c, the one recipient
 * address check. The cases are a table shared with the integration test
 * (tests/fixtures/email_addr/cases.tsv): each row is run through
 * email_addr_normalize() and must give the stored form or the refusal
 * with its reason. A few C-only cases follow (NULL, a short output
 * buffer, no reason wanted).
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "check_suites.h"
#include "compat.h"
#include "email_addr.h"

#define EA_CASES   OD_SRCDIR "/tests/fixtures/email_addr/cases.tsv"
#define EA_MAXROWS 200 /* the table has about 60 rows */
#define EA_LINE	   1024

struct ea_case {
	int line;
	char in[EA_LINE];
	char out[EA_LINE]; /* "-" = refused */
	char why[EA_LINE]; /* a piece of the reason, for refusals */
};

static struct ea_case ea_cases[EA_MAXROWS];
static int ea_ncases;

static int ea_load(void);

/* Reads the table into ea_cases; returns the row count (fatal if none). */
static int
ea_load(void)
{
	FILE *f = fopen(EA_CASES, "r");
	char line[3 * EA_LINE], *fields[4], *p;
	int lineno = 0, i;

	if (f == NULL) {
		fprintf(stderr, "check_email_addr: cannot open %s\n", EA_CASES);
		abort();
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (ea_ncases == EA_MAXROWS)
			abort();
		memset(fields, 0, sizeof(fields));
		for (i = 0, p = line; i < 4 && p != NULL; i++) {
			fields[i] = p;
			if ((p = strchr(p, '\t')) != NULL)
				*p++ = '\0';
		}
		if (fields[1] == NULL)
			abort(); /* a row needs the expected result */
		ea_cases[ea_ncases].line = lineno;
		strlcpy(ea_cases[ea_ncases].in, fields[0], EA_LINE);
		strlcpy(ea_cases[ea_ncases].out, fields[1], EA_LINE);
		strlcpy(ea_cases[ea_ncases].why,
		    fields[2] != NULL ? fields[2] : "", EA_LINE);
		ea_ncases++;
	}
	fclose(f);
	if (ea_ncases == 0)
		abort();
	return ea_ncases;
}

START_TEST(test_email_addr_table)
{
	const struct ea_case *c = &ea_cases[_i];
	char out[EA_LINE] = "", why[256] = "";
	int rc;

	rc = email_addr_normalize(c->in, out, sizeof(out), why, sizeof(why));
	if (strcmp(c->out, "-") == 0) {
		ck_assert_msg(rc == -1, "line %d: '%s' accepted as '%s'",
		    c->line, c->in, out);
		ck_assert_msg(strstr(why, c->why) != NULL,
		    "line %d: '%s' refused with '%s', not '%s'", c->line, c->in,
		    why, c->why);
		ck_assert(!email_addr_is_valid(c->in));
	} else {
		ck_assert_msg(rc == 0, "line %d: '%s' refused: %s", c->line,
		    c->in, why);
		ck_assert_str_eq(out, c->out);
		ck_assert(email_addr_is_valid(c->in));
		ck_assert_int_eq(email_addr_check(c->in, NULL, 0), 0);
	}
}
END_TEST

START_TEST(test_email_addr_edges)
{
	char out[16], why[128];

	/* NULL is refused, not a crash */
	ck_assert_int_eq(email_addr_check(NULL, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "empty");
	/* valid, but not room for it: refused with the room there was */
	ck_assert_int_eq(email_addr_normalize("mary.ann@example.org", out,
			     sizeof(out), why, sizeof(why)),
	    -1);
	ck_assert_str_eq(why, "longer than 15 characters");
	ck_assert_int_eq(email_addr_normalize("A@B.ORG", out, 0, NULL, 0), -1);
	ck_assert_int_eq(
	    email_addr_normalize("A@B.ORG", out, sizeof(out), NULL, 0), 0);
	ck_assert_str_eq(out, "a@b.org");
	/* the reason is cut to whylen, never overflows */
	ck_assert_int_eq(email_addr_check("a@b", why, 4), -1);
	ck_assert_str_eq(why, "the");
}
END_TEST

Suite *
email_addr_suite(void)
{
	Suite *s = suite_create("email_addr");
	TCase *tc;

	tc = tcase_create("table");
	tcase_add_loop_test(tc, test_email_addr_table, 0, ea_load());
	suite_add_tcase(s, tc);
	tc = tcase_create("edges");
	tcase_add_test(tc, test_email_addr_edges);
	suite_add_tcase(s, tc);
	return s;
}
