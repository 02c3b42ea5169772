/*
 * smtp_judge.c - the pure parts of the SMTP adapter (smtp.h): how one
 * message's MAIL, RCPT and DATA replies become its send_result, and how
 * a server reply is made safe for logs and results (control bytes
 * removed, addresses masked). No I/O, no libESMTP: worker threads call
 * it, and the unit tests (check_smtp.c) drive it directly.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "adapter.h"
#include "compat.h"
#include "log.h"
#include "message.h"
#include "smtp.h"

void
smtp_reply_clean(const char *in, char *out, size_t len)
{
	char word[MSG_ADDR_MAX], masked[MSG_ADDR_MAX];
	size_t o = 0, w;
	const char *p = in != NULL ? in : "";

	if (len == 0)
		return;
	while (*p != '\0' && o + 1 < len) {
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			p++;
			continue;
		}
		/* a word: up to a space or a delimiter around addresses */
		for (w = 0; p[w] != '\0' && !isspace((unsigned char)p[w]) &&
		     !iscntrl((unsigned char)p[w]) &&
		     strchr("<>\"',;:=()[]", p[w]) == NULL;
		     w++)
			;
		if (w == 0) {
			out[o++] = *p++;
			continue;
		}
		if (memchr(p, '@', w) != NULL) {
			snprintf(word, sizeof(word), "%.*s",
			    (int)(w < sizeof(word) - 1 ? w : sizeof(word) - 1),
			    p);
			log_mask_email(word, masked, sizeof(masked));
			o += strlcpy(out + o, masked, len - o);
			if (o >= len)
				o = len - 1;
		} else {
			if (w > len - 1 - o)
				w = len - 1 - o;
			memcpy(out + o, p, w);
			o += w;
		}
		p += w;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* Sets res to outcome with "CODE text" as its text. */
static void
smtp_judge_set(struct send_result *res, enum send_outcome outcome, int code,
    const char *what, const char *text)
{
	char clean[200];

	smtp_reply_clean(text, clean, sizeof(clean));
	if (code != 0)
		send_result_set(res, outcome, code, "%s %d %s", what, code,
		    clean);
	else
		send_result_set(res, outcome, 0, "%s%s%s", what,
		    clean[0] != '\0' ? ": " : "", clean);
}

void
smtp_judge(const struct smtp_judge_in *in, struct send_result *res)
{
	int mail = in->mail_code / 100, rcpt = in->rcpt_code / 100,
	    data = in->data_code / 100;

	if (mail == 2 && rcpt == 2 && data == 2) {
		send_result_set(res, SEND_ACCEPTED, in->data_code, NULL);
		return;
	}
	if (in->auth_failed) {
		smtp_judge_set(res, SEND_TRANSIENT, 0,
		    "SMTP AUTH failed, nothing sent", in->session_err);
		res->flags |= SEND_F_SENDER_BROKEN;
		return;
	}
	if (in->tls_failed) {
		smtp_judge_set(res, SEND_TRANSIENT, 0, "STARTTLS failed",
		    in->session_err);
		res->flags |= SEND_F_SENDER_BROKEN;
		return;
	}
	if (mail == 5) {
		if (in->mail_code == 552) {
			smtp_judge_set(res, SEND_PERMANENT, in->mail_code,
			    "MAIL FROM refused:", in->mail_text);
			return;
		}
		smtp_judge_set(res, SEND_TRANSIENT, in->mail_code,
		    "sender refused: MAIL FROM", in->mail_text);
		res->flags |= SEND_F_SENDER_BROKEN;
		return;
	}
	if (mail != 2) {
		smtp_judge_set(res, SEND_TRANSIENT, in->mail_code,
		    in->mail_code != 0 ? "MAIL FROM" : "not sent",
		    in->mail_code != 0 ? in->mail_text : in->session_err);
		return;
	}
	if (rcpt == 5) {
		smtp_judge_set(res, SEND_PERMANENT, in->rcpt_code, "RCPT TO",
		    in->rcpt_text);
		return;
	}
	if (rcpt != 2) {
		smtp_judge_set(res, SEND_TRANSIENT, in->rcpt_code,
		    in->rcpt_code != 0 ? "RCPT TO" : "not sent",
		    in->rcpt_code != 0 ? in->rcpt_text : in->session_err);
		return;
	}
	if (data == 5) {
		smtp_judge_set(res, SEND_PERMANENT, in->data_code, "DATA",
		    in->data_text);
		return;
	}
	if (data == 4) {
		smtp_judge_set(res, SEND_TRANSIENT, in->data_code, "DATA",
		    in->data_text);
		return;
	}
	/* RCPT accepted, no (or an odd) final reply */
	smtp_judge_set(res, SEND_TRANSIENT, in->data_code,
	    in->body_sent ? "no reply after the message was sent" : "not sent",
	    in->data_code != 0 ? in->data_text : in->session_err);
	res->uncertain = in->body_sent;
}
