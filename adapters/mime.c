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
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "compat.h"
#include "mime.h"

#define MIME_QP_LINE 76 /* RFC 2045 §6.7 rule 5 */
#define MIME_EW_CHUNK                                  \
	45 /* bytes per encoded-word: 60 base64 chars, \
	    * 72 with =?UTF-8?B?...?=, within 75 */

static bool mime_is_ascii(const char *);
static bool mime_has_crlf(const char *);
static void mime_encoded_words(struct evbuffer *, size_t, const char *, size_t);
static void mime_body_part(struct evbuffer *, const char *, const char *);

static bool
mime_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static bool
mime_has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

void
mime_date(int64_t when, char *buf, size_t len)
{
	time_t t = (time_t)when;
	struct tm tm;
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

	gmtime_r(&t, &tm);
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
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
	const unsigned char *p = (const unsigned char *)text;
	char tok[4];
	size_t col = 0, toklen;
	bool eol;

	for (; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\n') {
			evbuffer_add(out, "\r\n", 2);
			col = 0;
			continue;
		}
		eol = p[1] == '\0' || p[1] == '\n' ||
		    (p[1] == '\r' && p[2] == '\n');
		if ((*p >= 33 && *p <= 126 && *p != '=' &&
			!(*p == '.' && col == 0)) ||
		    ((*p == ' ' || *p == '\t') && !eol)) {
			tok[0] = (char)*p;
			toklen = 1;
		} else {
			snprintf(tok, sizeof(tok), "=%02X", *p);
			toklen = 3;
		}
		/* Leave room for the soft break "=" (1 char). */
		if (col + toklen > MIME_QP_LINE - 1 &&
		    !(eol && col + toklen <= MIME_QP_LINE)) {
			evbuffer_add(out, "=\r\n", 3);
			col = 0;
		}
		evbuffer_add(out, tok, toklen);
		col += toklen;
	}
	if (col > 0)
		evbuffer_add(out, "\r\n", 2);
}

/*
 * Appends value as encoded-words, each holding whole UTF-8 characters,
 * folded onto continuation lines. 'col' is the current column.
 */
static void
mime_encoded_words(struct evbuffer *out, size_t col, const char *value,
    size_t len)
{
	unsigned char b64[4 * MIME_EW_CHUNK / 3 + 4];
	size_t off = 0, n;
	int outl;

	while (off < len) {
		n = len - off < MIME_EW_CHUNK ? len - off : MIME_EW_CHUNK;
		/* Never split a UTF-8 sequence: back up over continuation
		 * bytes at the cut. */
		while (off + n < len && n > 1 &&
		    ((unsigned char)value[off + n] & 0xC0) == 0x80)
			n--;
		outl = EVP_EncodeBlock(b64, (const unsigned char *)value + off,
		    (int)n);
		if (col + (size_t)outl + 12 > 78) {
			evbuffer_add(out, "\r\n ", 3);
			col = 1;
		} else if (off > 0) {
			evbuffer_add(out, " ", 1);
			col++;
		}
		evbuffer_add_printf(out, "=?UTF-8?B?%s?=", b64);
		col += (size_t)outl + 12;
		off += n;
	}
}

void
mime_header_encode(struct evbuffer *out, const char *name, const char *value)
{
	evbuffer_add_printf(out, "%s: ", name);
	if (mime_is_ascii(value))
		evbuffer_add_printf(out, "%s", value);
	else
		mime_encoded_words(out, strlen(name) + 2, value, strlen(value));
	evbuffer_add(out, "\r\n", 2);
}

void
mime_address_header(struct evbuffer *out, const char *name, const char *value)
{
	const char *lt = strrchr(value, '<');
	size_t nlen;

	if (lt == NULL || mime_is_ascii(value)) {
		evbuffer_add_printf(out, "%s: %s\r\n", name, value);
		return;
	}
	/* Display name: trim spaces and surrounding quotes, then encode. */
	nlen = (size_t)(lt - value);
	while (nlen > 0 && value[nlen - 1] == ' ')
		nlen--;
	if (nlen >= 2 && value[0] == '"' && value[nlen - 1] == '"') {
		value++;
		nlen -= 2;
	}
	evbuffer_add_printf(out, "%s: ", name);
	mime_encoded_words(out, strlen(name) + 2, value, nlen);
	evbuffer_add_printf(out, " %s\r\n", lt);
}

static void
mime_body_part(struct evbuffer *out, const char *ctype, const char *body)
{
	evbuffer_add_printf(out,
	    "Content-Type: %s; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
	    ctype);
	mime_qp_encode(out, body);
}

int
mime_build(const struct mime_msg *m, struct evbuffer *out, char *err,
    size_t errlen)
{
	const char *const *h;
	unsigned char rnd[12];
	char date[64], boundary[48];
	size_t i;

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
	mime_date(m->date, date, sizeof(date));
	evbuffer_add_printf(out, "Date: %s\r\n", date);
	mime_address_header(out, "From", m->from);
	mime_address_header(out, "To", m->to);
	if (m->reply_to != NULL && m->reply_to[0] != '\0')
		mime_address_header(out, "Reply-To", m->reply_to);
	mime_header_encode(out, "Subject", m->subject);
	evbuffer_add_printf(out, "Message-ID: <%s>\r\nMIME-Version: 1.0\r\n",
	    m->message_id);
	for (h = m->extra_headers; h != NULL && *h != NULL; h++)
		evbuffer_add_printf(out, "%s\r\n", *h);
	if (m->html == NULL) {
		mime_body_part(out, "text/plain", m->text);
		return 0;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(err, errlen, "mime: no randomness for a boundary");
		return -1;
	}
	strlcpy(boundary, "=_od_", sizeof(boundary));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(boundary + 5 + 2 * i, sizeof(boundary) - 5 - 2 * i,
		    "%02x", rnd[i]);
	evbuffer_add_printf(out,
	    "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
	    "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n",
	    boundary, boundary);
	mime_body_part(out, "text/plain", m->text);
	evbuffer_add_printf(out, "\r\n--%s\r\n", boundary);
	mime_body_part(out, "text/html", m->html);
	evbuffer_add_printf(out, "\r\n--%s--\r\n", boundary);
	return 0;
}
