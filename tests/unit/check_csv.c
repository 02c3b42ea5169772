/*
 * check_csv.c - unit tests of the incremental CSV reader (daemon/csv.c).
 *
 * Records are rendered into a text ("L<line>[field|field]" or
 * "L<line>!error", one per line) so every expectation is one exact string
 * compare, and so the same input fed whole, byte by byte and cut in two
 * at every position can be compared.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "check_suites.h"
#include "csv.h"

struct csvt_out {
	char text[8192];
	size_t len;
	int stop_after; /* > 0: the callback fails on that record */
	int nrec;
};

static int
csvt_cb(void *arg, const struct csv_record *rec, char *err, size_t errlen)
{
	struct csvt_out *o = arg;
	size_t i;
	int n;

	if (o->stop_after > 0 && ++o->nrec == o->stop_after) {
		snprintf(err, errlen, "stopped at line %lu", rec->line);
		return -1;
	}
	if (rec->error != NULL) {
		n = snprintf(o->text + o->len, sizeof(o->text) - o->len,
		    "L%lu!%s\n", rec->line, rec->error);
		o->len += (size_t)n;
		return 0;
	}
	n = snprintf(o->text + o->len, sizeof(o->text) - o->len, "L%lu[",
	    rec->line);
	o->len += (size_t)n;
	for (i = 0; i < rec->nfields; i++) {
		ck_assert_uint_eq(strlen(rec->fields[i]), rec->lens[i]);
		n = snprintf(o->text + o->len, sizeof(o->text) - o->len, "%s%s",
		    i > 0 ? "|" : "", rec->fields[i]);
		o->len += (size_t)n;
	}
	n = snprintf(o->text + o->len, sizeof(o->text) - o->len, "]\n");
	o->len += (size_t)n;
	ck_assert_uint_lt(o->len, sizeof(o->text) - 1);
	return 0;
}

/* What csvt_run() parses, and how. */
struct csvt_feed {
	const char *in;
	size_t inlen;
	size_t step;   /* pieces of this many bytes; 0 = whole */
	size_t cut;    /* with step SIZE_MAX: two pieces, cut here */
	size_t maxrec; /* csv_new()'s limits */
	size_t maxf;
};

/*
 * Parses f->in cut into pieces of f->step bytes (0 = whole), or in two at
 * f->cut when f->step is SIZE_MAX. Returns the rendering; *rc gets the last
 * return code, err the error text.
 */
static int
csvt_run(const struct csvt_feed *f, struct csvt_out *o, char *err,
    size_t errlen)
{
	const char *in = f->in;
	size_t inlen = f->inlen, step = f->step, cut = f->cut;
	struct csv *c;
	size_t off = 0, n;
	int rc = 0;

	memset(o, 0, sizeof(*o));
	c = csv_new(f->maxrec, f->maxf, csvt_cb, o);
	err[0] = '\0';
	if (step == SIZE_MAX) {
		rc = csv_feed(c, in, cut, err, errlen);
		if (rc == 0)
			rc = csv_feed(c, in + cut, inlen - cut, err, errlen);
	} else {
		while (rc == 0 && off < inlen) {
			n = step == 0 || inlen - off < step ? inlen - off
							    : step;
			rc = csv_feed(c, in + off, n, err, errlen);
			off += n;
		}
	}
	if (rc == 0)
		rc = csv_finish(c, err, errlen);
	csv_free(c);
	return rc;
}

static void
csvt_expect(const char *in, const char *want)
{
	struct csvt_out o;
	char err[256];

	ck_assert_int_eq(
	    csvt_run(&(struct csvt_feed){in, strlen(in), 0, 0, 0, 0}, &o, err,
		sizeof(err)),
	    0);
	ck_assert_str_eq(o.text, want);
}

START_TEST(test_csv_basic)
{
	csvt_expect("phone,email\n+15550001,a@x.org\n+15550002,b@x.org\n",
	    "L1[phone|email]\nL2[+15550001|a@x.org]\nL3[+15550002|b@x.org]\n");
	/* No line end at the end; a trailing comma is an empty field. */
	csvt_expect("a,b\n1,", "L1[a|b]\nL2[1|]\n");
	csvt_expect("a\n,,\n", "L1[a]\nL2[||]\n");
	csvt_expect("", "");
}
END_TEST

START_TEST(test_csv_line_ends)
{
	csvt_expect("a,b\r\n1,2\r\n3,4", "L1[a|b]\nL2[1|2]\nL3[3|4]\n");
	csvt_expect("a,b\r1,2\r3,4\r", "L1[a|b]\nL2[1|2]\nL3[3|4]\n");
	/* Blank lines are skipped but counted, in every style. */
	csvt_expect("a\n\n\nb\r\n\r\nc\r\rd\n", "L1[a]\nL4[b]\nL6[c]\nL8[d]\n");
	/* Mixed ends in one file. */
	csvt_expect("a\r\nb\nc\rd", "L1[a]\nL2[b]\nL3[c]\nL4[d]\n");
}
END_TEST

START_TEST(test_csv_quotes)
{
	csvt_expect("name,city\n\"Doe, Jane\",\"He said \"\"hi\"\"\"\n",
	    "L1[name|city]\nL2[Doe, Jane|He said \"hi\"]\n");
	/* Embedded line breaks are kept and counted for later records. */
	csvt_expect("a,b\n\"line1\nline2\",x\n\"c\r\nd\",y\nz,w\n",
	    "L1[a|b]\nL2[line1\nline2|x]\nL4[c\r\nd|y]\nL6[z|w]\n");
	/* Empty quoted fields; a quoted last field without a line end. */
	csvt_expect("\"\",\"\"\n\"x\"", "L1[|]\nL2[x]\n");
}
END_TEST

START_TEST(test_csv_lenient)
{
	/* A quote inside an unquoted field, text after a closing quote. */
	csvt_expect("ab\"c,\"d\"e,f\n", "L1[ab\"c|de|f]\n");
}
END_TEST

START_TEST(test_csv_bom)
{
	csvt_expect("\xef\xbb\xbfphone\n1\n", "L1[phone]\nL2[1]\n");
	/* Not a BOM: a lone start of one is data (and not UTF-8). */
	csvt_expect("\xef\xbbX\n1\n",
	    "L1!field 1 is not valid UTF-8 (byte 0xef at offset 1); save "
	    "the file as UTF-8\nL2[1]\n");
	/* A BOM only in the first record: later it is data. */
	csvt_expect("a\n\xef\xbb\xbf"
		    "b\n",
	    "L1[a]\nL2[\xef\xbb\xbf"
	    "b]\n");
	csvt_expect("\xef\xbb",
	    "L1!field 1 is not valid UTF-8 (byte 0xef at "
	    "offset 1); save the file as UTF-8\n");
}
END_TEST

START_TEST(test_csv_utf8)
{
	size_t bad = 99;

	csvt_expect("Zoë,José,東京,😀\n", "L1[Zoë|José|東京|😀]\n");
	csvt_expect("ok,caf\xe9\nnext,row\n",
	    "L1!field 2 is not valid UTF-8 (byte 0xe9 at offset 4); save "
	    "the file as UTF-8\nL2[next|row]\n");
	ck_assert_int_eq(csv_utf8_check("ab", 2, &bad), 0);
	ck_assert_int_eq(csv_utf8_check("\xc0\xaf", 2, &bad),
	    -1); /* overlong */
	ck_assert_uint_eq(bad, 0);
	ck_assert_int_eq(csv_utf8_check("x\xed\xa0\x80", 4, &bad), -1);
	ck_assert_uint_eq(bad, 1); /* a surrogate */
	ck_assert_int_eq(csv_utf8_check("\xf4\x90\x80\x80", 4, &bad), -1);
	ck_assert_int_eq(csv_utf8_check("ab\xe2\x82", 4, &bad), -1);
	ck_assert_uint_eq(bad, 2); /* truncated */
	ck_assert_int_eq(csv_utf8_check("\xe2\x82\xac", 3, &bad), 0);
	ck_assert_int_eq(csv_utf8_check("\xff", 1, &bad), -1);
}
END_TEST

START_TEST(test_csv_nul)
{
	static const char in[] = "a,b\nx\0y,z\nc,d\n";
	struct csvt_out o;
	char err[256];

	ck_assert_int_eq(
	    csvt_run(&(struct csvt_feed){in, sizeof(in) - 1, 0, 0, 0, 0}, &o,
		err, sizeof(err)),
	    0);
	ck_assert_str_eq(o.text,
	    "L1[a|b]\nL2!field 1 holds a NUL byte\nL3[c|d]\n");
}
END_TEST

START_TEST(test_csv_limits)
{
	static const char longrec[] = "a,b\n0123456789012345678901234567890"
				      "1234567890,\"q,\nq\"\nc,d\n";
	static const char wide[] = "a,b,c,d\nx,y\n";
	static const char runaway[] = "a,b\n1,\"never closed\n2,3\n4,5\n";
	struct csvt_out o;
	char err[256];

	/* Too long outside quotes: that record only, quotes still pair. */
	ck_assert_int_eq(csvt_run(&(struct csvt_feed){longrec,
				      sizeof(longrec) - 1, 0, 0, 32, 0},
			     &o, err, sizeof(err)),
	    0);
	ck_assert_str_eq(o.text,
	    "L1[a|b]\nL2!the record is longer than 32 bytes; is a line "
	    "break missing?\nL4[c|d]\n");
	ck_assert_int_eq(
	    csvt_run(&(struct csvt_feed){wide, sizeof(wide) - 1, 0, 0, 0, 3},
		&o, err, sizeof(err)),
	    0);
	ck_assert_str_eq(o.text,
	    "L1!the record has more than 3 fields\nL2[x|y]\n");
	/* A runaway quote is fatal, with the line where it opened. */
	ck_assert_int_eq(csvt_run(&(struct csvt_feed){runaway,
				      sizeof(runaway) - 1, 0, 0, 8, 0},
			     &o, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err,
	    "line 2: unterminated quoted field: the quote opened there runs "
	    "past 8 bytes (a missing closing '\"'?)");
	ck_assert_str_eq(o.text, "L1[a|b]\n");
	/* ... and so is the end of the file inside a quote. */
	ck_assert_int_eq(csvt_run(&(struct csvt_feed){runaway,
				      sizeof(runaway) - 1, 0, 0, 0, 0},
			     &o, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err,
	    "line 2: unterminated quoted field: the file ends inside the "
	    "quote opened there (a missing closing '\"'?)");
}
END_TEST

START_TEST(test_csv_callback_stops)
{
	static const char in[] = "a\nb\nc\n";
	struct csv *c;
	struct csvt_out o;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.stop_after = 2;
	c = csv_new(0, 0, csvt_cb, &o);
	ck_assert_int_eq(csv_feed(c, in, sizeof(in) - 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "stopped at line 2");
	ck_assert_int_eq(csv_feed(c, "d\n", 2, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "the CSV reader stopped at an error");
	ck_assert_int_eq(csv_finish(c, err, sizeof(err)), -1);
	csv_free(c);
}
END_TEST

/* The same records whole, byte by byte, in 7s, and cut at every byte. */
START_TEST(test_csv_pieces)
{
	static const char in[] =
	    "\xef\xbb\xbfphone,email,first_name,note\r\n"
	    "+15550001,a@x.org,Zoë,\"Doe, Jane\"\r\n"
	    "\r\n"
	    "\"+1 555 0002\",b@x.org,\"Jo \"\"JJ\"\" \",\"two\r\nlines\"\r\n"
	    "+15550003,,東京,caf\xe9\r"
	    "x,y,z,\"\"\"\"\n"
	    "last,,,";
	struct csvt_out whole, o;
	char err[256];
	size_t cut, step;

	ck_assert_int_eq(
	    csvt_run(&(struct csvt_feed){in, sizeof(in) - 1, 0, 0, 0, 0},
		&whole, err, sizeof(err)),
	    0);
	ck_assert_str_eq(whole.text,
	    "L1[phone|email|first_name|note]\n"
	    "L2[+15550001|a@x.org|Zoë|Doe, Jane]\n"
	    "L4[+1 555 0002|b@x.org|Jo \"JJ\" |two\r\nlines]\n"
	    "L6!field 4 is not valid UTF-8 (byte 0xe9 at offset 4); save "
	    "the file as UTF-8\n"
	    "L7[x|y|z|\"]\n"
	    "L8[last|||]\n");
	for (step = 1; step <= 7; step++) {
		ck_assert_int_eq(csvt_run(&(struct csvt_feed){in,
					      sizeof(in) - 1, step, 0, 0, 0},
				     &o, err, sizeof(err)),
		    0);
		ck_assert_str_eq(o.text, whole.text);
	}
	for (cut = 0; cut <= sizeof(in) - 1; cut++) {
		ck_assert_int_eq(
		    csvt_run(&(struct csvt_feed){in, sizeof(in) - 1, SIZE_MAX,
				 cut, 0, 0},
			&o, err, sizeof(err)),
		    0);
		ck_assert_str_eq(o.text, whole.text);
	}
}
END_TEST

START_TEST(test_csv_had_bom)
{
	struct csvt_out o;
	struct csv *c;
	char err[64];

	memset(&o, 0, sizeof(o));
	c = csv_new(0, 0, csvt_cb, &o);
	ck_assert_int_eq(csv_feed(c, "\xef", 1, err, sizeof(err)), 0);
	ck_assert(!csv_had_bom(c));
	ck_assert_int_eq(csv_feed(c,
			     "\xbb\xbf"
			     "a\n",
			     4, err, sizeof(err)),
	    0);
	ck_assert(csv_had_bom(c));
	ck_assert_uint_eq(csv_line(c), 2);
	csv_free(c);
}
END_TEST

START_TEST(test_csv_save_restore)
{
	static const char in[] =
	    "\xef\xbb\xbfphone,email,first_name,note\r\n"
	    "+15550001,a@x.org,Zo\xc3\xab,\"Doe, Jane\"\r\n"
	    "\r\n"
	    "\"+1 555 0002\",b@x.org,\"Jo \"\"JJ\"\" \",\"two\r\nlines\"\r\n"
	    "+15550003,,x,caf\xe9\r"
	    "x,y,z,\"\"\"\"\n"
	    "last,,,";
	struct csvt_out whole, o;
	struct csv *c;
	char err[256], *saved;
	size_t i;

	ck_assert_int_eq(
	    csvt_run(&(struct csvt_feed){in, sizeof(in) - 1, 0, 0, 0, 0},
		&whole, err, sizeof(err)),
	    0);
	/* saved and restored after every byte: the same records */
	memset(&o, 0, sizeof(o));
	c = csv_new(0, 0, csvt_cb, &o);
	for (i = 0; i < sizeof(in) - 1; i++) {
		ck_assert_int_eq(csv_feed(c, in + i, 1, err, sizeof(err)), 0);
		saved = csv_save(c);
		ck_assert_ptr_null(strchr(saved, '\n'));
		csv_free(c);
		c = csv_restore(saved, csvt_cb, &o);
		ck_assert_ptr_nonnull(c);
		free(saved);
	}
	ck_assert_int_eq(csv_finish(c, err, sizeof(err)), 0);
	ck_assert(csv_had_bom(c));
	ck_assert_uint_eq(csv_line(c), 8);
	csv_free(c);
	ck_assert_str_eq(o.text, whole.text);
	/* not a saved state */
	ck_assert_ptr_null(csv_restore(NULL, csvt_cb, &o));
	ck_assert_ptr_null(csv_restore("csv1 9 0", csvt_cb, &o));
	ck_assert_ptr_null(
	    csv_restore("csv1 0 1 0 0 0 0 1 1 0 0 0 0 - zz -", csvt_cb, &o));
}
END_TEST

Suite *
csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("reader");

	tcase_add_test(tc, test_csv_basic);
	tcase_add_test(tc, test_csv_line_ends);
	tcase_add_test(tc, test_csv_quotes);
	tcase_add_test(tc, test_csv_lenient);
	tcase_add_test(tc, test_csv_bom);
	tcase_add_test(tc, test_csv_utf8);
	tcase_add_test(tc, test_csv_nul);
	tcase_add_test(tc, test_csv_limits);
	tcase_add_test(tc, test_csv_callback_stops);
	tcase_add_test(tc, test_csv_pieces);
	tcase_add_test(tc, test_csv_had_bom);
	tcase_add_test(tc, test_csv_save_restore);
	suite_add_tcase(s, tc);
	return s;
}
