/*
 * smtp.h - the pure parts of the SMTP adapter (adapters/smtp.c), exposed
 * for the unit tests: how one message's libESMTP statuses become one
 * send_result, and how a server reply is made safe for logs and results.
 *
 * Contract:
 *  - Pure: no I/O, no logging, no libESMTP calls; safe on worker threads.
 *  - smtp_judge() classifies one message with one
 *    recipient, judged right after its one smtp_start_session() (a
 *    session is never restarted, so no status is overwritten by a retry).
 */
#ifndef OD_SMTP_H
#define OD_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter.h"

/* One message's statuses after its session; codes 0 = unknown. */
struct smtp_judge_in {
	int mail_code;		 /* MAIL FROM reply (reverse path status) */
	const char *mail_text;	 /* may be NULL */
	int rcpt_code;		 /* RCPT TO reply of the one recipient */
	const char *rcpt_text;	 /* may be NULL */
	int data_code;		 /* DATA / final "." reply (transfer status) */
	const char *data_text;	 /* may be NULL */
	bool body_sent;		 /* the whole body was handed to libESMTP */
	bool auth_failed;	 /* AUTH was required and did not succeed */
	bool tls_failed;	 /* STARTTLS required but missing or refused */
	const char *session_err; /* why the session ended early; may be NULL */
};

/*
 * Fills res from in:
 *  - RCPT 2xx and final 2xx: accepted (even if AUTH/TLS flags are set:
 *    the server took it);
 *  - AUTH failed or TLS failed: transient with SEND_F_SENDER_BROKEN (the
 *    relay refused us, not the recipient);
 *  - MAIL 5xx: transient, SEND_F_SENDER_BROKEN (our envelope sender or
 *    our client was refused), except 552 (size): permanent;
 *  - RCPT 5xx: permanent; RCPT 2xx and final 5xx: permanent;
 *  - 4xx anywhere, or code 0 (never tried, dropped, timed out): transient;
 *    RCPT 2xx, body sent and no final reply: transient and uncertain (the
 *    server may have queued it: the duplicate window).
 * res->text holds the reply with addresses masked, never the body.
 */
void smtp_judge(const struct smtp_judge_in *in, struct send_result *res);

/*
 * Copies a server reply into out (NUL-terminated, at most len bytes):
 * CR/LF and control bytes become spaces, runs of spaces collapse, and
 * every word holding '@' is masked like log_mask_email() ("u***@d").
 */
void smtp_reply_clean(const char *in, char *out, size_t len);

#endif
