/*
 * mime.c - RFC 5322 headers, RFC 2045 quoted-printable, RFC 2047
 * encoded-words and multipart/alternative, for email adapters.
 *
 * Quoted-printable is chosen for every body: outreach mail is mostly ASCII
 * text, QP keeps it readable in raw form, and it never needs 8BITMIME
 * from the relay. The multipart boundary starts with "=_", a sequence
 * that QP output can never contain, so no scan of the content is needed.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "compat.h"
#include "mime.h"
#include "xmalloc.h"

#define MIME_QP_LINE	 76  /* RFC 2045 §6.7 rule 5 */
#define MIME_ADDR_MAX	 256 /* an unsubscribe mailto address */
#define MIME_LINE_MAX	 78  /* RFC 5322 §2.1.1: lines SHOULD stay within */
#define MIME_HEADER_MAX	 998 /* RFC 5322 §2.1.1: a line MUST stay within */
#define MIME_EW_MAX	 75  /* RFC 2047 §2: the longest encoded-word */
#define MIME_EW_OVERHEAD 12  /* "=?UTF-8?B?" and "?=" */
/* base64 characters in one word: 75 - 12, down to a multiple of 4 */
#define MIME_EW_TEXT   60
#define MIME_IS_WSP(c) ((c) == ' ' || (c) == '\t')

static bool mime_has_crlf(const char *);
static size_t mime_encoded_words(struct evbuffer *, size_t, const char *,
    size_t, bool);
static size_t mime_fold(struct evbuffer *, size_t, const char *, size_t);
static bool mime_text_is_plain(const char *, size_t);
static size_t mime_word(struct evbuffer *, size_t, const char *, size_t, bool);
static bool mime_is_atext(unsigned char);
static size_t mime_phrase_text(const char *, size_t, char *);
static size_t mime_phrase(struct evbuffer *, size_t, const char *, size_t);
static void mime_body_part(struct evbuffer *, const char *, const char *);
static bool mime_uri_ok(const char *, const char *);
static void mime_list_unsubscribe(struct evbuffer *, const struct mime_msg *);
static void mime_html_escape(struct evbuffer *, const char *);
static const char *mime_text_footer(struct evbuffer *, const struct mime_msg *);
static const char *mime_html_footer(struct evbuffer *, const struct mime_msg *);

static bool
mime_has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* Appends s; cheaper than evbuffer_add_printf(out, "%s", s). */
static void
mime_puts(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, s, strlen(s));
}

/* Appends "name: ". */
static void
mime_header_name(struct evbuffer *out, const char *name)
{
	mime_puts(out, name);
	evbuffer_add(out, ": ", 2);
}

/* Two decimal digits of v (0..99) at p. */
static char *
mime_2digits(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

/*
 * RFC 5322 §3.3 date-time in UTC, "Thu, 01 Jan 1970 00:00:00 +0000",
 * written digit by digit (snprintf took 3,000 instructions an email);
 * years outside 0..9999 go through snprintf.
 */
void
mime_date(int64_t when, char *buf, size_t len)
{
	time_t t = (time_t)when;
	struct tm tm;
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char d[sizeof("Thu, 01 Jan 1970 00:00:00 +0000")], *p = d;
	int year;

	if (gmtime_r(&t, &tm) == NULL) { /* a year past int: the epoch */
		t = 0;
		gmtime_r(&t, &tm);
	}
	year = tm.tm_year + 1900;
	if (year < 0 || year > 9999) {
		snprintf(buf, len, "%.3s, %02d %.3s %04d %02d:%02d:%02d +0000",
		    days + 3 * tm.tm_wday, tm.tm_mday, months + 3 * tm.tm_mon,
		    year, tm.tm_hour, tm.tm_min, tm.tm_sec);
		return;
	}
	memcpy(p, days + 3 * tm.tm_wday, 3);
	memcpy(p + 3, ", ", 2);
	p = mime_2digits(p + 5, tm.tm_mday);
	*p++ = ' ';
	memcpy(p, months + 3 * tm.tm_mon, 3);
	p[3] = ' ';
	p = mime_2digits(p + 4, year / 100);
	p = mime_2digits(p, year % 100);
	*p++ = ' ';
	p = mime_2digits(p, tm.tm_hour);
	*p++ = ':';
	p = mime_2digits(p, tm.tm_min);
	*p++ = ':';
	p = mime_2digits(p, tm.tm_sec);
	memcpy(p, " +0000", sizeof(" +0000"));
	strlcpy(buf, d, len);
}

/*
 * True if *p stands for itself at column col of a QP line: '!' to '~'
 * but '=' (and a '.' that would lead the line), or a space or tab that
 * no line end follows. Any other byte takes mime_qp_encode's full rules;
 * this is their common case, decided from at most the next byte.
 */
static inline bool
mime_qp_plain(const unsigned char *p, size_t col)
{
	if (*p >= 33 && *p <= 126)
		return *p != '=' && !(*p == '.' && col == 0);
	return (*p == ' ' || *p == '\t') && p[1] != '\0' && p[1] != '\n' &&
	    p[1] != '\r';
}

/*
 * True if the eight bytes at p all stand for themselves past column 0:
 * each in '!'..'~' but '=', or a space, with the byte after a final
 * space not a line end (so every space is followed by a byte of the
 * line). The word test (any byte < 0x20, >= 0x7f or '=') is Bit
 * Twiddling Hacks' "has a byte less than" and "has a zero byte"; p[8]
 * must be readable (the caller keeps eight bytes before the NUL).
 */
static inline bool
mime_qp_plain8(const unsigned char *p)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t highs = 0x8080808080808080ULL;
	uint64_t w, eq;

	memcpy(&w, p, 8);
	eq = w ^ (ones * '=');
	if (((w - ones * 0x20) | w | ((eq - ones) & ~eq) |
		((w + ones) & highs & ~w)) &
	    highs)
		return false;
	return p[7] != ' ' || (p[8] != '\0' && p[8] != '\n' && p[8] != '\r');
}

/*
 * Encodes QP line by line. Input line ends (LF or CRLF) become CRLF hard
 * breaks; long lines get "=" soft breaks so no output line exceeds 76
 * characters; '=', controls, 8-bit bytes, a leading '.', and whitespace
 * before a line end are hex-escaped.
 */
void
mime_qp_encode(struct evbuffer *out, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)text;
	const unsigned char *end = p + strlen(text);
	char line[MIME_QP_LINE + 4]; /* one output line, without CRLF */
	size_t col = 0;
	bool eol, lit;

	/* Built a line at a time: one evbuffer_add per line, not per byte
	 * (that was the workers' largest cost in a perf profile). */
	for (; *p != '\0'; p++) {
		/* The common case first: bytes that stand for themselves,
		 * while no soft break can fall before them (col < 75): eight
		 * at a time past the line's first byte, else one. */
		for (;;) {
			if (col > 0 && col + 8 <= MIME_QP_LINE - 1 &&
			    end - p >= 8 && mime_qp_plain8(p)) {
				memcpy(line + col, p, 8);
				col += 8;
				p += 8;
			} else if (col < MIME_QP_LINE - 1 &&
			    mime_qp_plain(p, col))
				line[col++] = (char)*p++;
			else
				break;
		}
		if (*p == '\0')
			break;
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\n') {
			memcpy(line + col, "\r\n", 2);
			evbuffer_add(out, line, col + 2);
			col = 0;
			continue;
		}
		eol = p[1] == '\0' || p[1] == '\n' ||
		    (p[1] == '\r' && p[2] == '\n');
		lit = (*p >= 33 && *p <= 126 && *p != '=' &&
			  !(*p == '.' && col == 0)) ||
		    ((*p == ' ' || *p == '\t') && !eol);
		/* Leave room for the soft break "=" (1 char). */
		if (col + (lit ? 1 : 3) > MIME_QP_LINE - 1 &&
		    !(eol && col + (lit ? 1 : 3) <= MIME_QP_LINE)) {
			memcpy(line + col, "=\r\n", 3);
			evbuffer_add(out, line, col + 3);
			col = 0;
			/* a '.' that now leads a line is escaped too (found
			 * by fuzz/fuzz_mime) */
			lit = lit && *p != '.';
		}
		if (lit)
			line[col++] = (char)*p;
		else {
			line[col++] = '=';
			line[col++] = hex[*p >> 4];
			line[col++] = hex[*p & 0x0f];
		}
	}
	if (col > 0) {
		memcpy(line + col, "\r\n", 2);
		evbuffer_add(out, line, col + 2);
	}
}

/*
 * Appends value[0..len) as RFC 2047 encoded-words ("B" encoding), each at
 * most 75 characters and holding whole UTF-8 characters, and returns the
 * new column. 'col' is the current column; with 'sep' a separating space
 * goes first. The first word always starts on the current line (a header
 * line holding only "Subject:" would decode with a leading space); later
 * ones fold onto continuation lines, so lines stay within 78 characters.
 * Whitespace between adjacent encoded-words is not part of the text (RFC
 * 2047 §6.2): the value's own spaces travel inside the words.
 */
static size_t
mime_encoded_words(struct evbuffer *out, size_t col, const char *value,
    size_t len, bool sep)
{
	unsigned char b64[MIME_EW_TEXT + 4];
	char word[MIME_EW_MAX + 4];
	size_t off = 0, n, room, cap;
	int outl;

	while (off < len) {
		room = col + sep + MIME_EW_OVERHEAD < MIME_LINE_MAX
		    ? MIME_LINE_MAX - col - sep - MIME_EW_OVERHEAD
		    : 0;
		if (room > MIME_EW_TEXT)
			room = MIME_EW_TEXT;
		n = room / 4 * 3; /* base64: 4 characters per 3 bytes */
		if (n > len - off)
			n = len - off;
		/* Never split a UTF-8 sequence: back up over continuation
		 * bytes at the cut. */
		while (n > 0 && off + n < len &&
		    ((unsigned char)value[off + n] & 0xC0) == 0x80)
			n--;
		if (n == 0 && col > 1 && (sep || off > 0)) {
			evbuffer_add(out, "\r\n ", 3);
			col = 1;
			sep = false;
			continue;
		}
		/* A very long header name: one character. Bytes that are
		 * not UTF-8 (a run of continuation bytes) are cut where the
		 * line ends, or b64[] overflows (found by fuzz/fuzz_mime). */
		cap = room / 4 * 3 > 4 ? room / 4 * 3 : 4;
		if (n == 0)
			for (n = 1; n < cap && off + n < len &&
			     ((unsigned char)value[off + n] & 0xC0) == 0x80;
			     n++)
				;
		(void)EVP_EncodeBlock(b64, (const unsigned char *)value + off,
		    (int)n);
		outl = snprintf(word, sizeof(word),
		    "%s=?UTF-8?B?%s?=", sep ? " " : "", (const char *)b64);
		evbuffer_add(out, word, (size_t)outl);
		col += (size_t)outl;
		off += n;
		sep = true;
	}
	return col;
}

/*
 * Appends s[0..len), plain ASCII, folded (RFC 5322 §2.2.3) before a run
 * of white space once a line would pass 78 characters; returns the new
 * column. Unfolding (removing the CRLFs) gives back s exactly. A line
 * only grows past 78 when one word does not fit on a line of its own.
 */
static size_t
mime_fold(struct evbuffer *out, size_t col, const char *s, size_t len)
{
	size_t start = 0, brk = 0, i;

	for (i = 0; i < len; i++) {
		if (MIME_IS_WSP(s[i]) && i > start && !MIME_IS_WSP(s[i - 1]))
			brk = i;
		if (col + i + 1 - start > MIME_LINE_MAX && brk > start) {
			evbuffer_add(out, s + start, brk - start);
			evbuffer_add(out, "\r\n", 2);
			col = 0;
			start = brk;
		}
	}
	evbuffer_add(out, s + start, len - start);
	return col + len - start;
}

/*
 * True if s can be written as it is (folded) in an unstructured header
 * starting at 'col': printable ASCII and white space only, no white space
 * at either end (parsers drop it), nothing a decoder would take for an
 * encoded-word ("=?"), and every word, with the white space before it,
 * fits a line.
 */
static bool
mime_text_is_plain(const char *s, size_t col)
{
	size_t i, seg = col;

	if (*s == '\0')
		return true;
	if (MIME_IS_WSP(s[0]) || strstr(s, "=?") != NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (!MIME_IS_WSP(s[i]) &&
		    ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f))
			return false;
		if (MIME_IS_WSP(s[i]) && !MIME_IS_WSP(s[i - 1]))
			seg = 0; /* a fold may go here */
		if (++seg > MIME_LINE_MAX)
			return false;
	}
	return !MIME_IS_WSP(s[i - 1]);
}

void
mime_header_encode(struct evbuffer *out, const char *name, const char *value)
{
	size_t col = strlen(name) + 2;

	mime_header_name(out, name);
	if (mime_text_is_plain(value, col))
		mime_fold(out, col, value, strlen(value));
	else
		mime_encoded_words(out, col, value, strlen(value), false);
	evbuffer_add(out, "\r\n", 2);
}

/* True for RFC 5322 atext (§3.2.3): the characters of an unquoted word. */
static bool
mime_is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Copies the display name in[0..len) into out (size > len): without
 * surrounding double quotes (and their backslash escapes), with each run
 * of white space made one space and none at either end, as RFC 5322
 * reads a phrase. Returns its length.
 */
static size_t
mime_phrase_text(const char *in, size_t len, char *out)
{
	size_t i, n = 0;
	bool quoted;

	while (len > 0 && MIME_IS_WSP(in[0])) {
		in++;
		len--;
	}
	while (len > 0 && MIME_IS_WSP(in[len - 1]))
		len--;
	quoted = len >= 2 && in[0] == '"' && in[len - 1] == '"';
	if (quoted) {
		in++;
		len -= 2;
	}
	for (i = 0; i < len; i++) {
		if (MIME_IS_WSP(in[i])) {
			if (n > 0 && out[n - 1] != ' ')
				out[n++] = ' ';
			continue;
		}
		if (quoted && in[i] == '\\' && i + 1 < len)
			i++;
		out[n++] = in[i];
	}
	if (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return n;
}

/*
 * Appends the display name p (normalized by mime_phrase_text) from column
 * col; returns the new column. Printable ASCII stays readable: words of
 * atext as they are, anything else one quoted-string. With other bytes,
 * each run of words that are not plain atext becomes encoded-words (the
 * spaces inside the run with them) and the atext words between runs
 * stay as they are: a space next to an encoded-word is kept by every
 * decoder, one between two encoded-words by none (RFC 2047 §6.2).
 */
static size_t
mime_phrase(struct evbuffer *out, size_t col, const char *p, size_t len)
{
	char q[2 * MIME_HEADER_MAX + 3];
	size_t i, n = 0, w, run = 0, nrun = 0;
	bool ascii = strstr(p, "=?") == NULL, atoms = true, plain;

	for (i = 0; i < len; i++) {
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
			ascii = false;
		else if (p[i] != ' ' && !mime_is_atext((unsigned char)p[i]))
			atoms = false;
	}
	if (ascii && !atoms) {
		q[n++] = '"';
		for (i = 0; i < len; i++) {
			if (p[i] == '"' || p[i] == '\\')
				q[n++] = '\\';
			q[n++] = p[i];
		}
		q[n++] = '"';
	}
	q[n] = '\0';
	/* readable when every word fits a line; else encoded word by word */
	if (ascii && mime_text_is_plain(atoms ? p : q, col))
		return mime_fold(out, col, atoms ? p : q, atoms ? len : n);
	for (i = 0; i <= len; i = w + 1) {
		w = i + strcspn(p + i, " ");
		plain = w > i && w - i < MIME_LINE_MAX;
		for (n = i; n < w && plain; n++)
			plain = mime_is_atext((unsigned char)p[n]) &&
			    !(p[n] == '=' && p[n + 1] == '?');
		if (!plain) {
			if (nrun == 0)
				run = i;
			nrun = w - run;
			if (w < len)
				continue;
		}
		if (nrun > 0) {
			col = mime_encoded_words(out, col, p + run, nrun,
			    run > 0);
			nrun = 0;
		}
		if (plain)
			col = mime_word(out, col, p + i, w - i, i > 0);
	}
	return col;
}

/*
 * Appends one unbreakable token (after a space with 'sep', or on a
 * continuation line when it would pass 78 characters); returns the new
 * column.
 */
static size_t
mime_word(struct evbuffer *out, size_t col, const char *w, size_t len, bool sep)
{
	if (sep && col > 1 && col + 1 + len > MIME_LINE_MAX) {
		evbuffer_add(out, "\r\n ", 3);
		col = 1;
	} else if (sep) {
		evbuffer_add(out, " ", 1);
		col++;
	}
	evbuffer_add(out, w, len);
	return col + len;
}

void
mime_address_header(struct evbuffer *out, const char *name, const char *value)
{
	char p[MIME_HEADER_MAX + 1];
	const char *lt = strrchr(value, '<');
	size_t col = strlen(name) + 2, len;

	mime_header_name(out, name);
	if (lt == NULL || (size_t)(lt - value) > MIME_HEADER_MAX) {
		mime_puts(out, value);
		evbuffer_add(out, "\r\n", 2);
		return;
	}
	len = mime_phrase_text(value, (size_t)(lt - value), p);
	if (len > 0)
		col = mime_phrase(out, col, p, len);
	mime_word(out, col, lt, strlen(lt), len > 0);
	evbuffer_add(out, "\r\n", 2);
}

static void
mime_body_part(struct evbuffer *out, const char *ctype, const char *body)
{
	mime_header_name(out, "Content-Type");
	mime_puts(out, ctype);
	mime_puts(out,
	    "; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	mime_qp_encode(out, body);
}

/*
 * True if s can sit between < and > of List-Unsubscribe and in an HTML
 * href: printable ASCII, no space, no <>"\\ (and none of 'more').
 */
static bool
mime_uri_ok(const char *s, const char *more)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 0x7f || *s == '<' || *s == '>' ||
		    *s == '"' || *s == '\\' ||
		    (*more != '\0' && strchr(more, *s) != NULL))
			return false;
	return true;
}

/*
 * List-Unsubscribe (RFC 2369) and, with a URL, List-Unsubscribe-Post
 * (RFC 8058). An entry is one unbreakable token: one that does not fit
 * in 78 columns goes on a continuation line (folding after the colon or
 * the comma).
 */
static void
mime_list_unsubscribe(struct evbuffer *out, const struct mime_msg *m)
{
	char mailto[MIME_ADDR_MAX + 32];
	const char *entry[2];
	size_t n = 0, i, col, len;

	if (m->unsubscribe_url != NULL)
		entry[n++] = m->unsubscribe_url;
	if (m->unsubscribe_mailto != NULL) {
		snprintf(mailto, sizeof(mailto),
		    "mailto:%s?subject=unsubscribe", m->unsubscribe_mailto);
		entry[n++] = mailto;
	}
	mime_puts(out, "List-Unsubscribe:");
	col = strlen("List-Unsubscribe:");
	for (i = 0; i < n; i++) {
		/* " <entry>" plus "," unless last */
		len = 1 + strlen(entry[i]) + 2 + (i + 1 < n);
		if (col + len > 78) {
			evbuffer_add(out, "\r\n", 2);
			col = 0;
		}
		evbuffer_add(out, " <", 2);
		mime_puts(out, entry[i]);
		mime_puts(out, i + 1 < n ? ">," : ">");
		col += len;
	}
	evbuffer_add(out, "\r\n", 2);
	if (m->unsubscribe_url != NULL)
		mime_puts(out,
		    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
}

static void
mime_html_escape(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '&')
			evbuffer_add(out, "&amp;", 5);
		else if (*s == '<')
			evbuffer_add(out, "&lt;", 4);
		else if (*s == '>')
			evbuffer_add(out, "&gt;", 4);
		else if (*s == '"')
			evbuffer_add(out, "&quot;", 6);
		else
			evbuffer_add(out, s, 1);
	}
}

/* The text body with its unsubscribe footer, NUL-terminated in b. */
static const char *
mime_text_footer(struct evbuffer *b, const struct mime_msg *m)
{
	size_t len = strlen(m->text);

	evbuffer_add(b, m->text, len);
	/* a blank line, then the signature separator "-- " */
	mime_puts(b,
	    len > 0 && m->text[len - 1] != '\n' ? "\n\n-- \n" : "\n-- \n");
	if (m->unsubscribe_url != NULL) {
		mime_puts(b, "To stop these emails: ");
		mime_puts(b, m->unsubscribe_url);
		evbuffer_add(b, "\n", 1);
	} else
		evbuffer_add_printf(b,
		    "To stop these emails, write to %s with the subject "
		    "\"unsubscribe\".\n",
		    m->unsubscribe_mailto);
	evbuffer_add(b, "", 1);
	return (const char *)evbuffer_pullup(b, -1);
}

/*
 * The HTML body with an unsubscribe paragraph before its last </body>
 * (or at the end), NUL-terminated in b.
 */
static const char *
mime_html_footer(struct evbuffer *b, const struct mime_msg *m)
{
	const char *h = m->html, *end = NULL, *p;
	size_t len = strlen(h);

	for (p = h; (p = strchr(p, '<')) != NULL; p++)
		if (strncasecmp(p, "</body", 6) == 0)
			end = p;
	if (end == NULL)
		end = h + len;
	evbuffer_add(b, h, (size_t)(end - h));
	mime_puts(b,
	    "\n<p style=\"font-size:small;color:#666666\">"
	    "To stop these emails: <a href=\"");
	if (m->unsubscribe_url != NULL)
		mime_html_escape(b, m->unsubscribe_url);
	else {
		mime_puts(b, "mailto:");
		mime_html_escape(b, m->unsubscribe_mailto);
		mime_puts(b, "?subject=unsubscribe");
	}
	mime_puts(b, "\">unsubscribe</a></p>\n");
	evbuffer_add(b, end, len - (size_t)(end - h));
	evbuffer_add(b, "", 1);
	return (const char *)evbuffer_pullup(b, -1);
}

int
mime_build(const struct mime_msg *m, struct evbuffer *out, char *err,
    size_t errlen)
{
	struct evbuffer *tb = NULL, *hb = NULL;
	const char *const *h;
	const char *text, *html;
	unsigned char rnd[12];
	char date[64], boundary[48];
	bool unsub;
	size_t i;
	int rc = -1;

	if (m->from == NULL || m->to == NULL || m->subject == NULL ||
	    m->text == NULL || m->message_id == NULL) {
		snprintf(err, errlen,
		    "mime: from, to, subject, text and "
		    "message id are required");
		return -1;
	}
	if (mime_has_crlf(m->from) || mime_has_crlf(m->to) ||
	    mime_has_crlf(m->subject) || mime_has_crlf(m->message_id) ||
	    (m->reply_to != NULL && mime_has_crlf(m->reply_to))) {
		snprintf(err, errlen, "mime: header value holds a line break");
		return -1;
	}
	if (strlen(m->from) > MIME_HEADER_MAX ||
	    strlen(m->to) > MIME_HEADER_MAX ||
	    (m->reply_to != NULL && strlen(m->reply_to) > MIME_HEADER_MAX)) {
		snprintf(err, errlen,
		    "mime: From, To or Reply-To longer than %d bytes",
		    MIME_HEADER_MAX);
		return -1;
	}
	if ((m->unsubscribe_url != NULL &&
		!mime_uri_ok(m->unsubscribe_url, "")) ||
	    (m->unsubscribe_mailto != NULL &&
		(!mime_uri_ok(m->unsubscribe_mailto, "?&,") ||
		    strlen(m->unsubscribe_mailto) >= MIME_ADDR_MAX ||
		    strchr(m->unsubscribe_mailto, '@') == NULL))) {
		snprintf(err, errlen,
		    "mime: unsubscribe URL or mailto address holds "
		    "characters it cannot hold");
		return -1;
	}
	unsub = m->unsubscribe_url != NULL || m->unsubscribe_mailto != NULL;
	text = m->text;
	html = m->html;
	if (unsub) {
		if ((tb = evbuffer_new()) == NULL ||
		    (html != NULL && (hb = evbuffer_new()) == NULL)) {
			snprintf(err, errlen, "mime: out of memory");
			goto done;
		}
		text = mime_text_footer(tb, m);
		if (html != NULL)
			html = mime_html_footer(hb, m);
	}
	mime_date(m->date, date, sizeof(date));
	mime_header_name(out, "Date");
	mime_puts(out, date);
	evbuffer_add(out, "\r\n", 2);
	mime_address_header(out, "From", m->from);
	mime_address_header(out, "To", m->to);
	if (m->reply_to != NULL && m->reply_to[0] != '\0')
		mime_address_header(out, "Reply-To", m->reply_to);
	mime_header_encode(out, "Subject", m->subject);
	mime_puts(out, "Message-ID: <");
	mime_puts(out, m->message_id);
	mime_puts(out, ">\r\nMIME-Version: 1.0\r\n");
	if (unsub)
		mime_list_unsubscribe(out, m);
	for (h = m->extra_headers; h != NULL && *h != NULL; h++) {
		mime_puts(out, *h);
		evbuffer_add(out, "\r\n", 2);
	}
	if (html == NULL) {
		mime_body_part(out, "text/plain", text);
		rc = 0;
		goto done;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(err, errlen, "mime: no randomness for a boundary");
		goto done;
	}
	strlcpy(boundary, "=_od_", sizeof(boundary));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(boundary + 5 + 2 * i, sizeof(boundary) - 5 - 2 * i,
		    "%02x", rnd[i]);
	evbuffer_add_printf(out,
	    "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
	    "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n",
	    boundary, boundary);
	mime_body_part(out, "text/plain", text);
	evbuffer_add_printf(out, "\r\n--%s\r\n", boundary);
	mime_body_part(out, "text/html", html);
	evbuffer_add_printf(out, "\r\n--%s--\r\n", boundary);
	rc = 0;
done:
	if (tb != NULL)
		evbuffer_free(tb);
	if (hb != NULL)
		evbuffer_free(hb);
	return rc;
}

static char *
mime_copy_str(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void
mime_copy_init(struct mime_copy *c, const struct out_msg *msg)
{
	memset(c, 0, sizeof(*c));
	c->id = msg->id;
	strlcpy(c->to, msg->to, sizeof(c->to));
	c->from = msg->from[0] != '\0' ? xstrdup(msg->from) : NULL;
	c->subject = mime_copy_str(msg->subject);
	c->body = xstrdup(msg->body);
	c->html = mime_copy_str(msg->html);
	c->unsubscribe_url = mime_copy_str(msg->unsubscribe_url);
	c->unsubscribe_mailto = mime_copy_str(msg->unsubscribe_mailto);
}

void
mime_copy_clear(struct mime_copy *c)
{
	free(c->from);
	free(c->subject);
	free(c->body);
	free(c->html);
	free(c->unsubscribe_url);
	free(c->unsubscribe_mailto);
	memset(c, 0, sizeof(*c));
}
