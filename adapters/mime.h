/*
 * mime.h - builds RFC 5322 / MIME messages for the email adapters.
 *
 * Contract:
 *  - Output uses CRLF line ends; no line exceeds 78 characters except
 *    an address or unsubscribe URL longer than that (RFC 5322 allows 998;
 *    From, To and Reply-To values over 998 bytes are refused).
 *  - Bodies are UTF-8, quoted-printable encoded; with html the message is
 *    multipart/alternative (text first, html second, RFC 2046 §5.1).
 *  - Subjects: printable ASCII is folded at white space (RFC 5322
 *    §2.2.3), so unfolding gives it back exactly; anything a reader
 *    would not get back as written (non-ASCII, controls, white space at
 *    either end, "=?", a word longer than a line) becomes RFC 2047
 *    encoded-words of at most 75 characters, the first one on the header
 *    line.
 *  - Display names ("Name <addr>", the name possibly quoted) are phrases:
 *    white space runs count as one space. ASCII stays readable (atoms, or
 *    one quoted-string); otherwise the words that need it are encoded,
 *    spaces included, so RFC 2047 decoders give the name back. The
 *    addr-spec is never encoded.
 *  - With an unsubscribe URL and/or mailto address (RFC 8058, RFC 2369):
 *    "List-Unsubscribe: <URL>, <mailto:ADDR?subject=unsubscribe>" (folded
 *    between the two entries when long), "List-Unsubscribe-Post:
 *    List-Unsubscribe=One-Click" when there is a URL (the one-click POST
 *    needs it), and a visible footer in each part: "To stop these emails:
 *    URL" in the text, an HTML link (before </body> if there is one).
 *  - Pure: no I/O, no logging, safe on worker threads.
 */
#ifndef OD_MIME_H
#define OD_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"

struct evbuffer;

struct out_msg;

/*
 * An email's own copy of what the email adapters send of an out_msg
 * (adapter.h: a job on a worker thread works on a private copy). Both the
 * file and the SMTP adapter keep one per message.
 */
struct mime_copy {
	int64_t id;
	char to[MSG_ADDR_MAX];
	char *from; /* NULL = the adapter's own From */
	char *subject;
	char *body;
	char *html;
	char *unsubscribe_url;
	char *unsubscribe_mailto;
};
/* Copies msg into c (strings duplicated); free with mime_copy_clear(). */
void mime_copy_init(struct mime_copy *c, const struct out_msg *msg);
void mime_copy_clear(struct mime_copy *c);

struct mime_msg {
	const char *from;	/* "Name <addr>" or "addr"; required */
	const char *to;		/* required */
	const char *reply_to;	/* may be NULL */
	const char *subject;	/* required */
	const char *text;	/* required */
	const char *html;	/* may be NULL */
	const char *message_id; /* without <>; required */
	int64_t date;		/* seconds since the epoch */
	/* More "Name: value" lines, already valid ASCII; NULL-terminated
	 * array, or NULL. */
	const char *const *extra_headers;
	/* One-click unsubscribe URL (https, printable ASCII without spaces,
	 * '<' or '>'), and a mailto address; each may be NULL. */
	const char *unsubscribe_url;
	const char *unsubscribe_mailto;
};

/*
 * Appends the whole message (headers, blank line, body) to out. Returns 0,
 * or -1 with the reason in err (a missing field, a header with CR/LF, an
 * unsubscribe URL or address with characters it cannot hold).
 */
int mime_build(const struct mime_msg *m, struct evbuffer *out, char *err,
    size_t errlen);
/* Appends text quoted-printable encoded (RFC 2045 §6.7), CRLF lines. */
void mime_qp_encode(struct evbuffer *out, const char *text);
/*
 * Appends the unstructured header "Name: value\r\n", folded or encoded
 * as the contract says, each line within 78 characters.
 */
void mime_header_encode(struct evbuffer *out, const char *name,
    const char *value);
/*
 * Appends an address header ("From", "To", "Reply-To") of one mailbox,
 * "Display Name <addr>" or "addr": the display name is written as the
 * contract says, the addr-spec as it is. A value without '<' is written
 * as it is.
 */
void mime_address_header(struct evbuffer *out, const char *name,
    const char *value);
/* Writes an RFC 5322 date ("Fri, 27 Nov 2026 03:14:34 +0000") into buf. */
void mime_date(int64_t when, char *buf, size_t len);

#endif
