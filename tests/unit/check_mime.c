/*
 * check_mime.c - quoted-printable, RFC 2047 encoded-words and message
 * structure of adapters/mime.c.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <event2/buffer.h>
#include <openssl/evp.h>

#include "check_suites.h"
#include "mime.h"

/* Drains b into a new NUL-terminated string. */
static char *
check_mime_take(struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	char *s = malloc(len + 1);

	ck_assert_ptr_nonnull(s);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

static char *
check_mime_qp(const char *in)
{
	struct evbuffer *b = evbuffer_new();

	mime_qp_encode(b, in);
	return check_mime_take(b);
}

/* Every line ends in CRLF and holds at most 'max' characters. */
static void
check_mime_lines(const char *s, size_t max)
{
	const char *p = s, *e;

	while (*p != '\0') {
		e = strstr(p, "\r\n");
		ck_assert_msg(e != NULL, "line without CRLF: %s", p);
		ck_assert_msg((size_t)(e - p) <= max, "line of %zu chars",
		    (size_t)(e - p));
		ck_assert_msg(memchr(p, '\n', (size_t)(e - p)) == NULL,
		    "bare LF");
		p = e + 2;
	}
}

START_TEST(test_mime_qp_escapes)
{
	char *s = check_mime_qp("a=b caf\xc3\xa9 \nend \n.dot\n");

	ck_assert_str_eq(s, "a=3Db caf=C3=A9=20\r\nend=20\r\n=2Edot\r\n");
	free(s);
}
END_TEST

START_TEST(test_mime_qp_soft_breaks)
{
	char in[400];
	char *s;

	memset(in, 'x', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	s = check_mime_qp(in);
	check_mime_lines(s, 76);
	/* 75 x and a soft break per full line: 5 full lines + 24. */
	ck_assert_int_eq(strlen(s), 399 + 5 * 3 + 2);
	ck_assert_ptr_nonnull(strstr(s, "=\r\n"));
	free(s);
}
END_TEST

/* A '.' that a soft break moves to the start of a line is escaped like
 * any leading '.' (found by fuzz/fuzz_mime). */
START_TEST(test_mime_qp_dot_after_soft_break)
{
	char in[80];
	char *s;

	memset(in, 'a', 75);
	strcpy(in + 75, ".b");
	s = check_mime_qp(in);
	check_mime_lines(s, 76);
	ck_assert_ptr_null(strstr(s, "\r\n."));
	ck_assert_ptr_nonnull(strstr(s, "a=\r\n=2Eb\r\n"));
	free(s);
}
END_TEST

/*
 * The eight-bytes-at-a-time path (past a line's first byte) gives what
 * the byte rules give at its edges: a space ending a word before a line
 * end, CRLF or the end of the text; '=', DEL and a tab inside a word; a
 * word that would run past column 75.
 */
START_TEST(test_mime_qp_word_edges)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"Xabcdefg \nY", "Xabcdefg=20\r\nY\r\n"},
	    {"Xabcdefg \r\nY", "Xabcdefg=20\r\nY\r\n"},
	    {"Xabcdefg ", "Xabcdefg=20\r\n"},
	    {"Xabcdefg h", "Xabcdefg h\r\n"},
	    {"Xabc=defgh", "Xabc=3Ddefgh\r\n"},
	    {"Xabc\x7f"
	     "defgh",
		"Xabc=7Fdefgh\r\n"},
	    {"Xabc\tdefgh", "Xabc\tdefgh\r\n"},
	};
	char in[90], want[100];
	size_t i;
	char *s;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = check_mime_qp(cases[i].in);
		ck_assert_str_eq(s, cases[i].out);
		free(s);
	}
	memset(in, 'a', 70);
	in[70] = '=';
	memset(in + 71, 'b', 10);
	in[81] = '\0';
	memset(want, 'a', 70);
	strcpy(want + 70, "=3Dbb=\r\nbbbbbbbb\r\n");
	s = check_mime_qp(in);
	ck_assert_str_eq(s, want);
	free(s);
}
END_TEST

START_TEST(test_mime_qp_crlf_input)
{
	char *s = check_mime_qp("one\r\ntwo\r\n");

	ck_assert_str_eq(s, "one\r\ntwo\r\n");
	free(s);
}
END_TEST

START_TEST(test_mime_header_ascii_unchanged)
{
	struct evbuffer *b = evbuffer_new();
	char *s;

	mime_header_encode(b, "Subject", "Rally on Friday");
	s = check_mime_take(b);
	ck_assert_str_eq(s, "Subject: Rally on Friday\r\n");
	free(s);
}
END_TEST

/* Decodes every =?UTF-8?B?...?= word of s and concatenates them. */
static void
check_mime_decode_words(const char *s, char *out, size_t outlen)
{
	unsigned char dec[256];
	const char *p = s, *e;
	size_t used = 0;
	int n;

	while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
		p += 10;
		e = strstr(p, "?=");
		ck_assert_ptr_nonnull(e);
		n = EVP_DecodeBlock(dec, (const unsigned char *)p,
		    (int)(e - p));
		ck_assert_int_ge(n, 0);
		/* EVP_DecodeBlock counts base64 padding as zero bytes. */
		while (n > 0 && e[-1] == '=' && dec[n - 1] == '\0') {
			n--;
			e--;
		}
		ck_assert_uint_lt(used + (size_t)n, outlen);
		memcpy(out + used, dec, (size_t)n);
		used += (size_t)n;
		p = strstr(p, "?=") + 2;
	}
	out[used] = '\0';
}

START_TEST(test_mime_header_encoded_words)
{
	const char *subj = "\xc2\xa1"
			   "Actu\xc3\xa9 ya! \xe2\x9c\x8a Marcha por "
			   "la justicia clim\xc3\xa1"
			   "tica este s\xc3\xa1"
			   "bado en la plaza";
	struct evbuffer *b = evbuffer_new();
	char *s, dec[512];

	mime_header_encode(b, "Subject", subj);
	s = check_mime_take(b);
	check_mime_lines(s, 78);
	ck_assert_ptr_nonnull(strstr(s, "\r\n ")); /* folded */
	check_mime_decode_words(s, dec, sizeof(dec));
	ck_assert_str_eq(dec, subj);
	free(s);
}
END_TEST

START_TEST(test_mime_address_display_name)
{
	struct evbuffer *b = evbuffer_new();
	char *s, dec[128];

	mime_address_header(b, "From",
	    "\"Jos\xc3\xa9 P\xc3\xa9rez\" <jose@example.org>");
	s = check_mime_take(b);
	ck_assert_ptr_nonnull(strstr(s, " <jose@example.org>\r\n"));
	check_mime_decode_words(s, dec, sizeof(dec));
	ck_assert_str_eq(dec, "Jos\xc3\xa9 P\xc3\xa9rez");
	free(s);
}
END_TEST

/* Removes every CRLF of s (RFC 5322 unfolding), in place. */
static void
check_mime_unfold(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++)
		if (!(s[0] == '\r' && s[1] == '\n'))
			*w++ = *s;
		else
			s++;
	*w = '\0';
}

/* Every encoded-word of s is at most 75 characters (RFC 2047 §2). */
static void
check_mime_word_lengths(const char *s)
{
	const char *p = s, *e;

	while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
		e = strstr(p + 10, "?=");
		ck_assert_ptr_nonnull(e);
		ck_assert_msg(e + 2 - p <= 75, "encoded-word of %d chars",
		    (int)(e + 2 - p));
		p = e + 2;
	}
}

/*
 * A 200,000-byte ASCII subject used to be one 200,009-byte line (relays
 * refuse lines over 998): it is folded at white space, every line within
 * 78, and unfolding gives it back exactly.
 */
START_TEST(test_mime_header_long_ascii_folded)
{
	static const char *const words[] = {"rally", "Friday,", "at", "the",
	    "plaza", "(bring", "water)", "-", "everyone", "welcome!"};
	struct evbuffer *b = evbuffer_new();
	size_t len = 0, i = 0, n;
	char *subj = malloc(200001), *s;

	ck_assert_ptr_nonnull(subj);
	while (len < 200000) {
		n = strlen(words[i % 10]);
		if (len + n + 1 > 200000)
			break;
		memcpy(subj + len, words[i++ % 10], n);
		len += n;
		subj[len++] = i % 7 == 0 ? '\t' : ' ';
	}
	memset(subj + len, 'x', 200000 - len); /* ends in a word */
	subj[200000] = '\0';
	mime_header_encode(b, "Subject", subj);
	s = check_mime_take(b);
	check_mime_lines(s, 78);
	ck_assert_ptr_null(strstr(s, "=?")); /* stayed readable */
	check_mime_unfold(s);
	ck_assert_str_eq(s + strlen("Subject: "), subj);
	free(s);
	free(subj);
}
END_TEST

/*
 * A long non-ASCII subject starts its first encoded-word on the header
 * line: "Subject:" alone on a line decodes with a leading space.
 */
START_TEST(test_mime_header_first_word_on_header_line)
{
	struct evbuffer *b = evbuffer_new();
	char subj[601], dec[1024], *s;
	size_t i;

	for (i = 0; i < 300; i += 2)
		memcpy(subj + i, "\xc3\xa9", 2); /* é */
	for (; i < 600; i += 3)
		memcpy(subj + i, "\xe4\xb8\xad", 3); /* 中 */
	subj[600] = '\0';
	mime_header_encode(b, "Subject", subj);
	s = check_mime_take(b);
	ck_assert_msg(strncmp(s, "Subject: =?UTF-8?B?", 19) == 0, "%.40s", s);
	check_mime_lines(s, 78);
	check_mime_word_lengths(s);
	check_mime_decode_words(s, dec, sizeof(dec));
	ck_assert_str_eq(dec, subj);
	free(s);
}
END_TEST

/*
 * ASCII that a reader would not get back as written is encoded: leading
 * or trailing white space (parsers drop it), text looking like an
 * encoded-word, a control character, a word longer than a line.
 */
START_TEST(test_mime_header_ascii_needing_words)
{
	char longword[120];
	const char *in[] = {" leading space", "trailing space ",
	    "not =?UTF-8?B?w6k=?= a word", "bell \x07 here", longword};
	struct evbuffer *b;
	char *s, dec[256];
	size_t i;

	memset(longword, 'w', sizeof(longword) - 1);
	longword[sizeof(longword) - 1] = '\0';
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		b = evbuffer_new();
		mime_header_encode(b, "Subject", in[i]);
		s = check_mime_take(b);
		ck_assert_msg(strncmp(s, "Subject: =?UTF-8?B?", 19) == 0, "%s",
		    s);
		check_mime_lines(s, 78);
		check_mime_decode_words(s, dec, sizeof(dec));
		ck_assert_str_eq(dec, in[i]);
		free(s);
	}
}
END_TEST

/*
 * Bytes that are not UTF-8 (a config value may hold any): a long run of
 * continuation bytes overflowed the encoder's base64 buffer (found by
 * fuzz/fuzz_mime under ASan). Each word stays within 75 characters and
 * the value decodes back.
 */
START_TEST(test_mime_header_continuation_bytes)
{
	char in[160];
	struct evbuffer *b;
	char *s, dec[256];
	size_t start;

	/* after a word, and at the very start of the value */
	for (start = 0; start <= 7; start += 7) {
		memcpy(in, "word wo", start);
		memset(in + start, 0xa0, sizeof(in) - 1 - start);
		in[sizeof(in) - 1] = '\0';
		b = evbuffer_new();
		mime_header_encode(b, "Subject", in);
		s = check_mime_take(b);
		check_mime_lines(s, 78);
		check_mime_decode_words(s, dec, sizeof(dec));
		ck_assert_str_eq(dec, in);
		free(s);
	}
}
END_TEST

/* Writes the From header of 'value' and compares it with 'want'. */
static void
check_mime_from(const char *value, const char *want)
{
	struct evbuffer *b = evbuffer_new();
	char *s;

	mime_address_header(b, "From", value);
	s = check_mime_take(b);
	ck_assert_str_eq(s, want);
	free(s);
}

/*
 * ASCII display names: words of atext as they are, anything with
 * specials one quoted-string (quotes and backslashes escaped), white
 * space runs made one space; an already quoted name is read, not quoted
 * twice.
 */
START_TEST(test_mime_address_ascii_names)
{
	check_mime_from("Org Team <org@example.org>",
	    "From: Org Team <org@example.org>\r\n");
	check_mime_from("  Org \t  Team   <org@example.org>",
	    "From: Org Team <org@example.org>\r\n");
	check_mime_from("Smith, John <js@example.org>",
	    "From: \"Smith, John\" <js@example.org>\r\n");
	check_mime_from("\"Say \\\"hi\\\" \\\\ bye\" <a@example.org>",
	    "From: \"Say \\\"hi\\\" \\\\ bye\" <a@example.org>\r\n");
	check_mime_from("J. R. <jr@example.org>",
	    "From: \"J. R.\" <jr@example.org>\r\n");
	check_mime_from("<bare@example.org>", "From: <bare@example.org>\r\n");
	check_mime_from("bare@example.org", "From: bare@example.org\r\n");
}
END_TEST

/*
 * Non-ASCII display names: the words that need it are encoded (with the
 * spaces between them inside the words), atext words between stay as
 * they are; a long name folds within 78 characters.
 */
START_TEST(test_mime_address_encoded_names)
{
	struct evbuffer *b = evbuffer_new();
	char name[512], run[256], *s, dec[512];
	size_t i;

	check_mime_from("M\xc3\xbcller, Hans <h@example.org>",
	    "From: =?UTF-8?B?TcO8bGxlciw=?= Hans <h@example.org>\r\n");
	check_mime_from("\"Jos\xc3\xa9  Mar\xc3\xad"
			"a\" <j@example.org>",
	    "From: =?UTF-8?B?Sm9zw6kgTWFyw61h?= <j@example.org>\r\n");
	for (i = 0; i < 200; i += 2)
		memcpy(run + i, "\xd0\xb6", 2); /* ж */
	run[200] = '\0';
	snprintf(name, sizeof(name), "%s Ivanov <long@example.org>", run);
	mime_address_header(b, "From", name);
	s = check_mime_take(b);
	ck_assert_msg(strncmp(s, "From: =?UTF-8?B?", 16) == 0, "%.30s", s);
	check_mime_lines(s, 78);
	check_mime_word_lengths(s);
	check_mime_decode_words(s, dec, sizeof(dec));
	ck_assert_str_eq(dec, run);
	check_mime_unfold(s);
	ck_assert_ptr_nonnull(strstr(s, "?= Ivanov <long@example.org>"));
	free(s);
}
END_TEST

/*
 * mime_date() writes its digits itself: it must give what strftime()
 * gives in the C locale for the RFC 5322 date, from 1970 to 9999 (days,
 * months, leap days, the last second of a year), and what snprintf
 * gives past 9999; a short buffer gets a truncated string, and an
 * instant gmtime_r cannot place the epoch.
 */
START_TEST(test_mime_date_matches_strftime)
{
	static const int64_t fixed[] = {0, 59, 86399, 951782400, 951868799,
	    1795743274, 4107542400, 253402300799};
	char got[64], want[64];
	struct tm tm;
	time_t t;
	int64_t when;
	unsigned seed = 12345;
	size_t i;

	for (i = 0; i < 20000; i++) {
		if (i < sizeof(fixed) / sizeof(fixed[0]))
			when = fixed[i];
		else {
			seed = seed * 1103515245u + 12345u;
			when =
			    (int64_t)(((uint64_t)seed << 16 ^ i * 2654435761u) %
				253402300800u);
		}
		t = (time_t)when;
		gmtime_r(&t, &tm);
		strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S +0000",
		    &tm);
		mime_date(when, got, sizeof(got));
		ck_assert_msg(strcmp(got, want) == 0, "%lld: %s, not %s",
		    (long long)when, got, want);
	}
	mime_date(253402300800, got, sizeof(got)); /* 10000-01-01 */
	ck_assert_str_eq(got, "Sat, 01 Jan 10000 00:00:00 +0000");
	mime_date(0, got, 8);
	ck_assert_str_eq(got, "Thu, 01");
	mime_date(INT64_MAX, got, sizeof(got)); /* gmtime_r fails */
	ck_assert_str_eq(got, "Thu, 01 Jan 1970 00:00:00 +0000");
}
END_TEST

START_TEST(test_mime_build_multipart)
{
	struct mime_msg m = {
	    .from = "Org <org@example.org>",
	    .to = "a@example.org",
	    .reply_to = "team@example.org",
	    .subject = "Hi",
	    .text = "plain",
	    .html = "<p>html</p>",
	    .message_id = "1.ab@example.org",
	    .date = 1795743274, /* 2026-11-27 */
	};
	struct evbuffer *b = evbuffer_new();
	char err[128], *s, *bnd, boundary[64];

	ck_assert_int_eq(mime_build(&m, b, err, sizeof(err)), 0);
	s = check_mime_take(b);
	check_mime_lines(s, 78);
	ck_assert_ptr_nonnull(strstr(s, "Date: Fri, 27 Nov 2026 "));
	ck_assert_ptr_nonnull(strstr(s, "Message-ID: <1.ab@example.org>\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "Reply-To: team@example.org\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "MIME-Version: 1.0\r\n"));
	bnd = strstr(s, "boundary=\"");
	ck_assert_ptr_nonnull(bnd);
	ck_assert_int_eq(sscanf(bnd, "boundary=\"%63[^\"]\"", boundary), 1);
	ck_assert(strncmp(boundary, "=_od_", 5) == 0);
	/* text part before html part, closing delimiter last */
	ck_assert(strstr(s, "text/plain") < strstr(s, "text/html"));
	ck_assert_ptr_nonnull(strstr(s, "--\r\n"));
	free(s);
}
END_TEST

START_TEST(test_mime_build_rejects_header_injection)
{
	struct mime_msg m = {
	    .from = "org@example.org",
	    .to = "a@example.org",
	    .subject = "Hi\r\nBcc: victim@example.org",
	    .text = "x",
	    .message_id = "1@example.org",
	};
	struct evbuffer *b = evbuffer_new();
	char err[128];

	ck_assert_int_eq(mime_build(&m, b, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "line break"));
	evbuffer_free(b);
}
END_TEST

/* Builds m and returns the message text (checked: CRLF, <= 78 columns). */
static char *
check_mime_build(const struct mime_msg *m)
{
	struct evbuffer *b = evbuffer_new();
	char err[128], *s;

	ck_assert_int_eq(mime_build(m, b, err, sizeof(err)), 0);
	s = check_mime_take(b);
	check_mime_lines(s, 78);
	return s;
}

/*
 * Undoes quoted-printable over the whole message: "=\r\n" soft breaks go,
 * "=XX" (upper-case hex) become the byte. Headers hold no such sequence.
 */
static char *
check_mime_unqp(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	unsigned v;

	ck_assert_ptr_nonnull(out);
	while (*s != '\0') {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n')
			s += 3;
		else if (s[0] == '=' && strchr("0123456789ABCDEF", s[1]) &&
		    s[1] != '\0' && strchr("0123456789ABCDEF", s[2]) &&
		    s[2] != '\0' && sscanf(s + 1, "%2X", &v) == 1) {
			*o++ = (char)v;
			s += 3;
		} else
			*o++ = *s++;
	}
	*o = '\0';
	return out;
}

#define CHECK_URL "https://act.example.org/u/AQFxyz-_0123456789abcdefghijklmn"

START_TEST(test_mime_unsubscribe_headers_folded)
{
	struct mime_msg m = {
	    .from = "Org <org@example.org>",
	    .to = "a@example.org",
	    .subject = "Hi",
	    .text = "Come to the rally.",
	    .html = "<html><body><p>Come &amp; see</p></BODY></html>",
	    .message_id = "1.ab@example.org",
	    .unsubscribe_url = CHECK_URL,
	    .unsubscribe_mailto = "unsubscribe@example.org",
	};
	char *s = check_mime_build(&m), *d, *footer, *end;

	/* Too long for one line: folded before each entry. */
	ck_assert_ptr_nonnull(strstr(s,
	    "\r\nList-Unsubscribe:\r\n <" CHECK_URL ">,\r\n "
	    "<mailto:unsubscribe@example.org?subject=unsubscribe>\r\n"));
	ck_assert_ptr_nonnull(strstr(s,
	    "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
	/* Headers come before the body. */
	ck_assert(strstr(s, "List-Unsubscribe-Post") < strstr(s, "\r\n\r\n"));
	d = check_mime_unqp(s);
	/* Text footer, then the html part's footer: a link, before the
	 * closing body tag. */
	ck_assert_ptr_nonnull(strstr(d,
	    "Come to the rally.\r\n\r\n-- \r\n"
	    "To stop these emails: " CHECK_URL "\r\n"));
	footer = strstr(d, "<a href=\"" CHECK_URL "\">unsubscribe</a>");
	ck_assert_ptr_nonnull(footer);
	end = strstr(d, "</BODY></html>");
	ck_assert_ptr_nonnull(end);
	ck_assert(strstr(d, "Come &amp; see") < footer);
	ck_assert(footer < end);
	free(d);
	free(s);
}
END_TEST

START_TEST(test_mime_unsubscribe_short_one_line)
{
	struct mime_msg m = {
	    .from = "org@example.org",
	    .to = "a@example.org",
	    .subject = "Hi",
	    .text = "x\n",
	    .message_id = "1@example.org",
	    .unsubscribe_url = "https://e.org/u/T",
	    .unsubscribe_mailto = "u@e.org",
	};
	char *s = check_mime_build(&m), *d = check_mime_unqp(s);

	ck_assert_ptr_nonnull(strstr(s,
	    "\r\nList-Unsubscribe: "
	    "<https://e.org/u/T>, "
	    "<mailto:u@e.org?subject=unsubscribe>\r\n"));
	/* text ended in a newline: no extra blank line added */
	ck_assert_ptr_nonnull(strstr(d,
	    "\r\n\r\nx\r\n\r\n-- \r\n"
	    "To stop these emails: https://e.org/u/T\r\n"));
	free(d);
	free(s);
}
END_TEST

START_TEST(test_mime_unsubscribe_mailto_only)
{
	struct mime_msg m = {
	    .from = "org@example.org",
	    .to = "a@example.org",
	    .subject = "Hi",
	    .text = "x",
	    .html = "<p>x</p>",
	    .message_id = "1@example.org",
	    .unsubscribe_mailto = "u@e.org",
	};
	char *s = check_mime_build(&m), *d = check_mime_unqp(s);

	ck_assert_ptr_nonnull(strstr(s,
	    "\r\nList-Unsubscribe: <mailto:u@e.org?subject=unsubscribe>\r\n"));
	/* One-click needs an https URL: no -Post header without one. */
	ck_assert_ptr_null(strstr(s, "List-Unsubscribe-Post"));
	ck_assert_ptr_nonnull(strstr(d,
	    "To stop these emails, write to "
	    "u@e.org with the subject"));
	ck_assert_ptr_nonnull(
	    strstr(d, "href=\"mailto:u@e.org?subject=unsubscribe\""));
	/* no </body>: the footer is appended */
	ck_assert(strstr(d, "<p>x</p>") < strstr(d, "unsubscribe</a>"));
	free(d);
	free(s);
}
END_TEST

START_TEST(test_mime_unsubscribe_html_escaped)
{
	struct mime_msg m = {
	    .from = "org@example.org",
	    .to = "a@example.org",
	    .subject = "Hi",
	    .text = "x",
	    .html = "<p>x</p>",
	    .message_id = "1@example.org",
	    .unsubscribe_url = "https://e.org/u/T?a=1&b=2",
	};
	char *s = check_mime_build(&m), *d = check_mime_unqp(s);

	ck_assert_ptr_nonnull(
	    strstr(d, "href=\"https://e.org/u/T?a=1&amp;b=2\""));
	ck_assert_ptr_nonnull(strstr(d,
	    "To stop these emails: "
	    "https://e.org/u/T?a=1&b=2\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "List-Unsubscribe-Post"));
	free(d);
	free(s);
}
END_TEST

START_TEST(test_mime_no_unsubscribe_no_footer)
{
	struct mime_msg m = {
	    .from = "org@example.org",
	    .to = "a@example.org",
	    .subject = "Hi",
	    .text = "x",
	    .message_id = "1@example.org",
	};
	char *s = check_mime_build(&m);

	ck_assert_ptr_null(strstr(s, "List-Unsubscribe"));
	ck_assert_ptr_null(strstr(s, "To stop these emails"));
	free(s);
}
END_TEST

START_TEST(test_mime_unsubscribe_rejects_bad_values)
{
	static const char *const urls[] = {"https://e.org/u/T>\r\nBcc: x",
	    "https://e.org/u/a b", "https://e.org/\"x", ""};
	static const char *const tos[] = {"u@e.org?cc=v@e.org", "nobody",
	    "u@e.org>, <https://evil", "u@e.org\r\n"};
	struct mime_msg m = {
	    .from = "org@example.org",
	    .to = "a@example.org",
	    .subject = "Hi",
	    .text = "x",
	    .message_id = "1@example.org",
	};
	struct evbuffer *b;
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		b = evbuffer_new();
		m.unsubscribe_url = urls[i];
		m.unsubscribe_mailto = NULL;
		ck_assert_int_eq(mime_build(&m, b, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "unsubscribe"));
		ck_assert_uint_eq(evbuffer_get_length(b), 0);
		evbuffer_free(b);
		b = evbuffer_new();
		m.unsubscribe_url = NULL;
		m.unsubscribe_mailto = tos[i];
		ck_assert_int_eq(mime_build(&m, b, err, sizeof(err)), -1);
		ck_assert_uint_eq(evbuffer_get_length(b), 0);
		evbuffer_free(b);
	}
}
END_TEST

Suite *
mime_suite(void)
{
	Suite *s = suite_create("mime");
	TCase *tc;

	tc = tcase_create("qp");
	tcase_add_test(tc, test_mime_qp_escapes);
	tcase_add_test(tc, test_mime_qp_soft_breaks);
	tcase_add_test(tc, test_mime_qp_crlf_input);
	tcase_add_test(tc, test_mime_qp_word_edges);
	tcase_add_test(tc, test_mime_qp_dot_after_soft_break);
	suite_add_tcase(s, tc);
	tc = tcase_create("headers");
	tcase_add_test(tc, test_mime_header_ascii_unchanged);
	tcase_add_test(tc, test_mime_header_encoded_words);
	tcase_add_test(tc, test_mime_address_display_name);
	tcase_add_test(tc, test_mime_header_long_ascii_folded);
	tcase_add_test(tc, test_mime_header_first_word_on_header_line);
	tcase_add_test(tc, test_mime_header_ascii_needing_words);
	tcase_add_test(tc, test_mime_header_continuation_bytes);
	tcase_add_test(tc, test_mime_address_ascii_names);
	tcase_add_test(tc, test_mime_address_encoded_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("message");
	tcase_add_test(tc, test_mime_build_multipart);
	tcase_add_test(tc, test_mime_date_matches_strftime);
	tcase_add_test(tc, test_mime_build_rejects_header_injection);
	suite_add_tcase(s, tc);
	tc = tcase_create("unsubscribe");
	tcase_add_test(tc, test_mime_unsubscribe_headers_folded);
	tcase_add_test(tc, test_mime_unsubscribe_short_one_line);
	tcase_add_test(tc, test_mime_unsubscribe_mailto_only);
	tcase_add_test(tc, test_mime_unsubscribe_html_escaped);
	tcase_add_test(tc, test_mime_no_unsubscribe_no_footer);
	tcase_add_test(tc, test_mime_unsubscribe_rejects_bad_values);
	suite_add_tcase(s, tc);
	return s;
}
