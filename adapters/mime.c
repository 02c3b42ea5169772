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
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "compat.h"
#include "mime.h"

#define MIME_QP_LINE  76  /* RFC 2045 §6.7 rule 5 */
#define MIME_ADDR_MAX 256 /* an unsubscribe mailto address */
#define MIME_EW_CHUNK                                  \
	45 /* bytes per encoded-word: 60 base64 chars, \
	    * 72 with =?UTF-8?B?...?=, within 75 */

static bool mime_is_ascii(const char *);
static bool mime_has_crlf(const char *);
static void mime_encoded_words(struct evbuffer *, size_t, const char *, size_t);
static void mime_body_part(struct evbuffer *, const char *, const char *);
static bool mime_uri_ok(const char *, const char *);
static void mime_list_unsubscribe(struct evbuffer *, const struct mime_msg *);
static void mime_html_escape(struct evbuffer *, const char *);
static const char *mime_text_footer(struct evbuffer *, const struct mime_msg *);
static const char *mime_html_footer(struct evbuffer *, const struct mime_msg *);

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
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)text;
	char line[MIME_QP_LINE + 4]; /* one output line, without CRLF */
	size_t col = 0;
	bool eol, lit;

	/* Built a line at a time: one evbuffer_add per line, not per byte
	 * (that was the workers' largest cost in a perf profile). */
	for (; *p != '\0'; p++) {
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
		if (*s <= ' ' || *s >= 0x7f || strchr("<>\"\\", *s) != NULL ||
		    strchr(more, *s) != NULL)
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
	evbuffer_add_printf(out, "List-Unsubscribe:");
	col = strlen("List-Unsubscribe:");
	for (i = 0; i < n; i++) {
		/* " <entry>" plus "," unless last */
		len = 1 + strlen(entry[i]) + 2 + (i + 1 < n);
		if (col + len > 78) {
			evbuffer_add(out, "\r\n", 2);
			col = 0;
		}
		evbuffer_add_printf(out, " <%s>%s", entry[i],
		    i + 1 < n ? "," : "");
		col += len;
	}
	evbuffer_add(out, "\r\n", 2);
	if (m->unsubscribe_url != NULL)
		evbuffer_add_printf(out,
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
	evbuffer_add_printf(b, "%s\n-- \n",
	    len > 0 && m->text[len - 1] != '\n' ? "\n" : "");
	if (m->unsubscribe_url != NULL)
		evbuffer_add_printf(b, "To stop these emails: %s\n",
		    m->unsubscribe_url);
	else
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
	evbuffer_add_printf(b,
	    "\n<p style=\"font-size:small;color:#666666\">"
	    "To stop these emails: <a href=\"");
	if (m->unsubscribe_url != NULL)
		mime_html_escape(b, m->unsubscribe_url);
	else {
		evbuffer_add_printf(b, "mailto:");
		mime_html_escape(b, m->unsubscribe_mailto);
		evbuffer_add_printf(b, "?subject=unsubscribe");
	}
	evbuffer_add_printf(b, "\">unsubscribe</a></p>\n");
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
	evbuffer_add_printf(out, "Date: %s\r\n", date);
	mime_address_header(out, "From", m->from);
	mime_address_header(out, "To", m->to);
	if (m->reply_to != NULL && m->reply_to[0] != '\0')
		mime_address_header(out, "Reply-To", m->reply_to);
	mime_header_encode(out, "Subject", m->subject);
	evbuffer_add_printf(out, "Message-ID: <%s>\r\nMIME-Version: 1.0\r\n",
	    m->message_id);
	if (unsub)
		mime_list_unsubscribe(out, m);
	for (h = m->extra_headers; h != NULL && *h != NULL; h++)
		evbuffer_add_printf(out, "%s\r\n", *h);
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
