/*
 * fuzz_mime.c - libFuzzer target: the MIME encoders of adapters/mime.h.
 * Each output is decoded here, by decoders written for this test (the
 * product has none), and must give back what was encoded:
 *  - mime_qp_encode(): quoted-printable lines of at most 76 characters,
 *    CRLF only, printable ASCII, no trailing blank, no leading '.', and
 *    decoding gives the text with its line ends as LF (plus a final LF);
 *  - mime_header_encode(): lines of at most 78 characters; unfolded and
 *    decoded as a reader does (RFC 2047 6.2), the value reads as it was;
 *  - mime_address_header(): lines within 998; the addr-spec as it was,
 *    the display name reads as RFC 5322 reads the one given (trimmed,
 *    unquoted, blanks collapsed);
 *  - mime_build(): every line within 998 characters and CRLF-ended; the
 *    text part decodes to the text.
 *
 * Input: byte 0 holds flags (html, reply-to, unsubscribe URL and mailto),
 * the rest is NUL-separated fields: subject, text, html, from, to.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "fuzz_util.h"
#include "mime.h"

#define FZMIME_QP_LINE	   76  /* RFC 2045 6.7 rule 5 */
#define FZMIME_HEADER_LINE 78  /* RFC 5322 2.1.1 SHOULD */
#define FZMIME_HARD_LINE   998 /* RFC 5322 2.1.1 MUST */
#define FZMIME_EW_MAX	   75  /* RFC 2047 2: an encoded-word */
#define FZMIME_ADDR_MAX	   254 /* from/to as the daemon accepts them */

static char *fzmime_take(struct evbuffer *b, size_t *len);
static char *fzmime_qp_decode(const char *in, size_t len, size_t *outlen);
static char *fzmime_text_lf(const char *text, size_t *len);
static void fzmime_qp(const char *text);
static char *fzmime_unfold(const char *in, size_t len, size_t limit);
static bool fzmime_is_ew(const char *s, size_t n);
static char *fzmime_decode(const char *s, bool phrase);
static char *fzmime_display_name(const char *in, size_t len);
static void fzmime_squeeze(char *s);
static void fzmime_header(const char *value);
static void fzmime_address(const char *value);
static void fzmime_build(const char *const *f, unsigned flags);

/* The contents of b, NUL-terminated, malloc'ed; b is emptied. */
static char *
fzmime_take(struct evbuffer *b, size_t *len)
{
	char *s;

	*len = evbuffer_get_length(b);
	if ((s = malloc(*len + 1)) == NULL)
		fuzz_fail("out of memory");
	evbuffer_remove(b, s, *len);
	s[*len] = '\0';
	return s;
}

static int
fzmime_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 2045 wants upper case */
}

/*
 * Checks QP lines and decodes them: soft breaks vanish, a CRLF hard break
 * is LF, =XX its byte.
 */
static char *
fzmime_qp_decode(const char *in, size_t len, size_t *outlen)
{
	char *out = malloc(len + 1);
	size_t i = 0, n = 0, col = 0;
	unsigned char ch;

	if (out == NULL)
		fuzz_fail("out of memory");
	while (i < len) {
		ch = (unsigned char)in[i];
		if (ch == '\r' && i + 1 < len && in[i + 1] == '\n') {
			if (col > 0 && (in[i - 1] == ' ' || in[i - 1] == '\t'))
				fuzz_fail("QP: blank before a line end");
			out[n++] = '\n';
			i += 2;
			col = 0;
			continue;
		}
		if (col == 0 && ch == '.')
			fuzz_fail("QP: a line starts with '.'");
		if (ch == '=' && i + 2 < len && in[i + 1] == '\r' &&
		    in[i + 2] == '\n') {
			i += 3;
			col = 0;
			continue;
		}
		if (ch == '=') {
			if (i + 2 >= len || fzmime_hex(in[i + 1]) < 0 ||
			    fzmime_hex(in[i + 2]) < 0)
				fuzz_fail("QP: a bad escape at %zu", i);
			out[n++] = (char)(fzmime_hex(in[i + 1]) << 4 |
			    fzmime_hex(in[i + 2]));
			i += 3;
			col += 3;
		} else if ((ch >= 33 && ch <= 126) || ch == ' ' || ch == '\t') {
			out[n++] = (char)ch;
			i++;
			col++;
		} else
			fuzz_fail("QP: raw byte 0x%02x at %zu", ch, i);
		/* A soft break's '=' counts: 76 in all. */
		if (col > FZMIME_QP_LINE)
			fuzz_fail("QP: a line longer than %d", FZMIME_QP_LINE);
	}
	if (n > 0 && out[n - 1] != '\n')
		fuzz_fail("QP: the last line has no CRLF");
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* text with each CRLF as LF, and a final LF if it lacks one. */
static char *
fzmime_text_lf(const char *text, size_t *len)
{
	size_t n = strlen(text), i, o = 0;
	char *out = malloc(n + 2);

	if (out == NULL)
		fuzz_fail("out of memory");
	for (i = 0; i < n; i++)
		if (!(text[i] == '\r' && text[i + 1] == '\n'))
			out[o++] = text[i];
	if (o > 0 && out[o - 1] != '\n')
		out[o++] = '\n';
	out[o] = '\0';
	*len = o;
	return out;
}

static void
fzmime_qp(const char *text)
{
	struct evbuffer *b = evbuffer_new();
	char *enc, *dec, *want;
	size_t elen, dlen, wlen;

	if (b == NULL)
		fuzz_fail("out of memory");
	mime_qp_encode(b, text);
	enc = fzmime_take(b, &elen);
	dec = fzmime_qp_decode(enc, elen, &dlen);
	want = fzmime_text_lf(text, &wlen);
	if (dlen != wlen || memcmp(dec, want, dlen) != 0)
		fuzz_fail("QP: decoding does not give the text back");
	free(enc);
	free(dec);
	free(want);
	evbuffer_free(b);
}

/*
 * Checks a header's lines (CRLF-ended, each within 'limit') and returns
 * it unfolded without its final CRLF.
 */
static char *
fzmime_unfold(const char *in, size_t len, size_t limit)
{
	char *out = malloc(len + 1);
	size_t i, n = 0, col = 0;

	if (out == NULL)
		fuzz_fail("out of memory");
	if (len < 2 || in[len - 2] != '\r' || in[len - 1] != '\n')
		fuzz_fail("header: no final CRLF");
	for (i = 0; i < len - 2; i++) {
		if (in[i] == '\r' && in[i + 1] == '\n' &&
		    (in[i + 2] == ' ' || in[i + 2] == '\t')) {
			i++;
			col = 0;
			continue;
		}
		if (in[i] == '\r' || in[i] == '\n' || in[i] == '\0')
			fuzz_fail("header: a line break that is not folding");
		out[n++] = in[i];
		if (++col > limit)
			fuzz_fail("header: a line longer than %zu", limit);
	}
	out[n] = '\0';
	return out;
}

/* True if s[0..n) is one encoded-word as mime.c writes them. */
static bool
fzmime_is_ew(const char *s, size_t n)
{
	return n >= 12 && strncmp(s, "=?UTF-8?B?", 10) == 0 &&
	    strncmp(s + n - 2, "?=", 2) == 0;
}

/*
 * Decodes an unfolded header value as a reader does (RFC 2047 6.2):
 * encoded-words decoded, blanks between two of them dropped, other text
 * kept; in a 'phrase' (a display name) quoted-strings are unquoted too.
 */
static char *
fzmime_decode(const char *s, bool phrase)
{
	char *out = malloc(strlen(s) + 1);
	size_t n = 0, w, b, pad;
	bool prev_ew = false;
	int got;

	if (out == NULL)
		fuzz_fail("out of memory");
	while (*s != '\0') {
		b = strspn(s, " \t");
		w = strcspn(s + b, " \t");
		if (prev_ew && fzmime_is_ew(s + b, w))
			s += b; /* not content */
		else {
			memcpy(out + n, s, b);
			n += b;
			s += b;
		}
		if (fzmime_is_ew(s, w)) {
			if (w > FZMIME_EW_MAX || (w - 12) % 4 != 0)
				fuzz_fail("header: a bad encoded-word");
			got = EVP_DecodeBlock((unsigned char *)out + n,
			    (const unsigned char *)s + 10, (int)(w - 12));
			pad = (s[w - 3] == '=') + (s[w - 4] == '=');
			if (got < 0 || (size_t)got < pad)
				fuzz_fail("header: bad base64");
			n += (size_t)got - pad;
			prev_ew = true;
			s += w;
			continue;
		}
		prev_ew = false;
		if (phrase && *s == '"') {
			/* a quoted-string may hold blanks: to its end */
			for (s++; *s != '\0' && *s != '"'; s++) {
				if (*s == '\\' && s[1] != '\0')
					s++;
				out[n++] = *s;
			}
			if (*s != '"')
				fuzz_fail(
				    "header: an unterminated quoted-string");
			s++;
			continue;
		}
		memcpy(out + n, s, w);
		n += w;
		s += w;
	}
	out[n] = '\0';
	return out;
}

static void
fzmime_header(const char *value)
{
	struct evbuffer *b = evbuffer_new();
	char *enc, *line, *dec;
	size_t len;

	if (b == NULL)
		fuzz_fail("out of memory");
	mime_header_encode(b, "Subject", value);
	enc = fzmime_take(b, &len);
	line = fzmime_unfold(enc, len, FZMIME_HEADER_LINE);
	if (strncmp(line, "Subject: ", 9) != 0)
		fuzz_fail("header: no 'Subject: '");
	dec = fzmime_decode(line + 9, false);
	if (strcmp(dec, value) != 0)
		fuzz_fail("header: reads '%s', not '%s'", dec, value);
	free(dec);
	free(line);
	free(enc);
	evbuffer_free(b);
}

/*
 * The display name as a reader sees it: trimmed, unquoted (backslash
 * escapes too), each run of blanks one space (mime.c's normalization).
 */
static char *
fzmime_display_name(const char *in, size_t len)
{
	char *out = malloc(len + 1);
	size_t i, n = 0;
	bool quoted;

	if (out == NULL)
		fuzz_fail("out of memory");
	while (len > 0 && (in[0] == ' ' || in[0] == '\t')) {
		in++;
		len--;
	}
	while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t'))
		len--;
	quoted = len >= 2 && in[0] == '"' && in[len - 1] == '"';
	if (quoted) {
		in++;
		len -= 2;
	}
	for (i = 0; i < len; i++) {
		if (in[i] == ' ' || in[i] == '\t') {
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
	return out;
}

/* Makes each run of spaces in s one space and trims it, in place. */
static void
fzmime_squeeze(char *s)
{
	char *o = s, *p;

	for (p = s; *p != '\0'; p++)
		if (!(*p == ' ' && (o == s || o[-1] == ' ')))
			*o++ = *p;
	if (o > s && o[-1] == ' ')
		o--;
	*o = '\0';
}

static void
fzmime_address(const char *value)
{
	struct evbuffer *b = evbuffer_new();
	const char *lt = strrchr(value, '<');
	char *enc, *line, *dec, *want, *tail;
	size_t len;

	if (b == NULL)
		fuzz_fail("out of memory");
	mime_address_header(b, "From", value);
	enc = fzmime_take(b, &len);
	line = fzmime_unfold(enc, len, FZMIME_HARD_LINE);
	if (strncmp(line, "From: ", 6) != 0)
		fuzz_fail("address: no 'From: '");
	if (lt == NULL) {
		if (strcmp(line + 6, value) != 0)
			fuzz_fail("address: a bare address changed");
		goto done;
	}
	/* "From: " [phrase " "] "<addr...>": the addr-spec as it was. */
	want = fzmime_display_name(value, (size_t)(lt - value));
	tail = line + strlen(line) - strlen(lt);
	if (tail < line + 6 || strcmp(tail, lt) != 0)
		fuzz_fail("address: the addr-spec changed");
	if (*want != '\0') {
		if (tail[-1] != ' ')
			fuzz_fail("address: no space before the addr-spec");
		tail[-1] = '\0';
	} else
		*tail = '\0';
	dec = fzmime_decode(line + 6, true);
	/* Readers take a run of blanks in a phrase as one (an escaped
	 * blank in a quoted name, "a \\ b", may become one). */
	fzmime_squeeze(dec);
	fzmime_squeeze(want);
	if (strcmp(dec, want) != 0)
		fuzz_fail("address: the display name reads '%s', not '%s'", dec,
		    want);
	free(dec);
	free(want);
done:
	free(line);
	free(enc);
	evbuffer_free(b);
}

/* A whole message: line limits, and without extras the text part. */
static void
fzmime_build(const char *const *f, unsigned flags)
{
	struct mime_msg m = {.subject = f[0],
	    .text = f[1],
	    .from = f[3],
	    .to = f[4],
	    .message_id = "42.fuzz@example.org",
	    .date = 0};
	struct evbuffer *b = evbuffer_new();
	char err[256], *out, *body, *dec, *want;
	const char *p, *nl;
	size_t len, dlen, wlen;

	if (b == NULL)
		fuzz_fail("out of memory");
	if (flags & 1)
		m.html = f[2];
	if (flags & 2)
		m.reply_to = "Replies <replies@example.org>";
	if (flags & 4)
		m.unsubscribe_url = "https://example.org/u/abc?t=1";
	if (flags & 8)
		m.unsubscribe_mailto = "unsub@example.org";
	if (mime_build(&m, b, err, sizeof(err)) == -1) {
		if (strpbrk(m.subject, "\r\n") == NULL &&
		    strpbrk(m.from, "\r\n") == NULL &&
		    strpbrk(m.to, "\r\n") == NULL)
			fuzz_fail("build refused a clean message: %s", err);
		evbuffer_free(b);
		return;
	}
	out = fzmime_take(b, &len);
	for (p = out; p < out + len; p = nl + 1) {
		if ((nl = memchr(p, '\n', len - (size_t)(p - out))) == NULL ||
		    nl == p || nl[-1] != '\r')
			fuzz_fail("build: a line without CRLF");
		if ((size_t)(nl - p) - 1 > FZMIME_HARD_LINE)
			fuzz_fail("build: a line of %zu characters",
			    (size_t)(nl - p) - 1);
	}
	if ((body = strstr(out, "\r\n\r\n")) == NULL)
		fuzz_fail("build: no blank line after the headers");
	if (m.html == NULL && m.unsubscribe_url == NULL &&
	    m.unsubscribe_mailto == NULL) {
		body += 4;
		dec = fzmime_qp_decode(body, len - (size_t)(body - out), &dlen);
		want = fzmime_text_lf(m.text, &wlen);
		if (dlen != wlen || memcmp(dec, want, dlen) != 0)
			fuzz_fail("build: the text part changed");
		free(dec);
		free(want);
	}
	free(out);
	evbuffer_free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *f[5] = {"Hello", "Hi there", "<p>Hi</p>",
	    "Outreach <outreach@example.org>", "member@example.org"};
	char *copy;
	size_t i, off;

	if (size < 1 || size > 65536)
		return 0;
	if ((copy = malloc(size)) == NULL)
		fuzz_fail("out of memory");
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	/* NUL-separated fields; missing ones keep their defaults. */
	for (i = 0, off = 0; i < 5 && off < size; i++) {
		f[i] = copy + off;
		off += strlen(copy + off) + 1;
	}
	fzmime_qp(f[1]);
	if (strpbrk(f[0], "\r\n") == NULL)
		fzmime_header(f[0]);
	if (strpbrk(f[3], "\r\n") == NULL && strlen(f[3]) <= FZMIME_ADDR_MAX)
		fzmime_address(f[3]);
	if (strlen(f[3]) <= FZMIME_ADDR_MAX && strlen(f[4]) <= FZMIME_ADDR_MAX)
		fzmime_build(f, data[0]);
	free(copy);
	return 0;
}
