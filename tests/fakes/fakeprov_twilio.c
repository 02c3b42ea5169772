/*
 * fakeprov_twilio.c - fakeprov's Twilio: POST
 * /2010-04-01/Accounts/{AccountSid}/Messages.json with Basic auth and a
 * form, answered 201 with the Message resource or Twilio's error JSON,
 * and Twilio's status and inbound webhooks signed with
 * X-Twilio-Signature (HMAC-SHA1 over the URL and sorted parameters).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "compat.h"
#include "fakeprov.h"

/* ---------------------------------------------------------------------
 * answering sends
 */

void
fp_twilio_error(struct fp_call *c, int status, int code, const char *msg)
{
	char more[96];

	if (code == 0)
		code = status == 429 ? 20429 : status >= 500 ? 20500 : status;
	if (msg == NULL)
		msg = code == 21610
		    ? "Attempt to send to unsubscribed recipient"
		    : code == 21211 ? "Invalid 'To' Phone Number"
		    : code == 20429 ? "Too Many Requests"
		    : code == 20003 ? "Authenticate"
				    : "Internal Server Error";
	snprintf(more, sizeof(more), "https://www.twilio.com/docs/errors/%d",
	    code);
	fp_answer_json(c, status,
	    json_pack("{s:i, s:s, s:s, s:i}", "code", code, "message", msg,
		"more_info", more, "status", status));
}

/* Twilio's checks of a send, in its order; 0 = fine. */
static int
fp_twilio_check(struct fp_call *c)
{
	const char *to = fp_field(c, "To"), *from = fp_field(c, "From");
	const char *mss = fp_field(c, "MessagingServiceSid");
	const char *body = fp_field(c, "Body");

	if (fp_empty(to))
		fp_twilio_error(c, 400, 21604,
		    "A 'To' phone number is required.");
	else if (!fp_is_e164(to) && strncmp(to, "whatsapp:", 9) != 0)
		fp_twilio_error(c, 400, 21211, NULL);
	else if (fp_empty(from) && fp_empty(mss))
		fp_twilio_error(c, 400, 21603,
		    "A 'From' phone number is required.");
	else if (fp_empty(body) && fp_field(c, "MediaUrl") == NULL)
		fp_twilio_error(c, 400, 21602, "Message body is required.");
	else if (body != NULL && fp_utf8_chars(body) > 1600)
		fp_twilio_error(c, 400, 21617,
		    "The concatenated message body exceeds the 1600 character "
		    "limit.");
	else
		return 0;
	return -1;
}

/* Twilio's 201: the message resource as its API returns it. */
static void
fp_twilio_created(struct fp_call *c, const char *sid, const char *id)
{
	struct fp *fp = c->fp;
	struct evbuffer *b = c->out;
	const char *mss = fp_field(c, "MessagingServiceSid");
	const char *body = fp_field(c, "Body");

	if (fp->date_at != time(NULL)) {
		fp->date_at = time(NULL);
		fp_time_text(FP_T_RFC2822, 0, fp->date, sizeof(fp->date));
	}
	evbuffer_add_printf(b,
	    "{\"account_sid\":\"%s\",\"api_version\":\"2010-04-01\"", sid);
	fp_jw_kv(b, "body", body);
	evbuffer_add_printf(b,
	    ",\"date_created\":\"%s\",\"date_sent\":null,"
	    "\"date_updated\":\"%s\",\"direction\":\"outbound-api\","
	    "\"error_code\":null,\"error_message\":null",
	    fp->date, fp->date);
	fp_jw_kv(b, "from", fp_field(c, "From"));
	fp_jw_kv(b, "messaging_service_sid", mss);
	/* with a Messaging Service Twilio answers "0" until it picked one */
	evbuffer_add_printf(b,
	    ",\"num_media\":\"%d\",\"num_segments\":\"%u\",\"price\":null,"
	    "\"price_unit\":\"USD\",\"sid\":\"%s\",\"status\":\"%s\","
	    "\"subresource_uris\":{\"media\":\"/2010-04-01/Accounts/%s/"
	    "Messages/%s/Media.json\"}",
	    fp_field(c, "MediaUrl") != NULL,
	    mss != NULL ? 0 : fp_segments(body != NULL ? body : "", NULL), id,
	    mss != NULL ? "accepted" : "queued", sid, id);
	fp_jw_kv(b, "to", fp_field(c, "To"));
	evbuffer_add_printf(b,
	    ",\"uri\":\"/2010-04-01/Accounts/%s/Messages/%s.json\"}", sid, id);
	fp_set_header(c, "Content-Type", "application/json; charset=utf-8");
	c->status = 201;
}

void
fp_twilio_answer(struct fp_call *c)
{
	struct fp *fp = c->fp;
	const char *sid = fp_conf(fp, FP_TWILIO, "account_sid");
	char id[40];

	if (!fp_basic_is_ok(c, sid, fp_conf(fp, FP_TWILIO, "auth_token")) &&
	    !fp_basic_is_ok(c, fp_conf(fp, FP_TWILIO, "api_key_sid"),
		fp_conf(fp, FP_TWILIO, "api_key_secret"))) {
		fp_set_header(c, "WWW-Authenticate",
		    "Basic realm=\"Twilio API\"");
		fp_twilio_error(c, 401, 20003, NULL);
		fp_refuse(c);
		return;
	}
	if (sid == NULL || strcmp(c->acct, sid) != 0) {
		fp_twilio_error(c, 404, 20404,
		    "The requested resource was not found");
		fp_refuse(c);
		return;
	}
	if (fp_twilio_check(c) == -1) {
		fp_refuse(c);
		return;
	}
	fp_new_id(fp, "SM", 32, id, sizeof(id));
	fp_twilio_created(c, sid, id);
	fp_accept(c, id);
}

/* ---------------------------------------------------------------------
 * its webhooks: signature and fields
 */

/* X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + sorted
 * name+value pairs)), each distinct pair once. */
void
fp_sign_twilio(struct fp_out *o, const char *token)
{
	struct evbuffer *b = evbuffer_new();
	struct fp_kv *s = fp_form_sorted(&o->form);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char sig[128];
	size_t i;

	evbuffer_add(b, o->url, strlen(o->url));
	for (i = 0; i < o->form.n; i++) {
		if (i > 0 && fp_kv_cmp(&s[i - 1], &s[i]) == 0)
			continue;
		evbuffer_add_printf(b, "%s%s", s[i].key, s[i].value);
	}
	HMAC(EVP_sha1(), token, (int)strlen(token), evbuffer_pullup(b, -1),
	    evbuffer_get_length(b), md, &mdlen);
	fp_b64(md, mdlen, sig, sizeof(sig));
	fp_form_set(&o->headers, "X-Twilio-Signature", sig);
	free(s);
	evbuffer_free(b);
}

int
fp_twilio_build(struct fp *fp, const json_t *spec, struct fp_out *o, char *err,
    size_t errlen)
{
	const char *sid = fp_conf(fp, FP_TWILIO, "account_sid");
	const char *st = fp_cb_status(spec), *id = fp_jget(spec, "id");
	char idbuf[40], code[16], date[16];

	(void)err;
	(void)errlen;
	if (id == NULL) {
		fp_new_id(fp, "SM", 32, idbuf, sizeof(idbuf));
		id = idbuf;
	}
	if (fp_is_inbound(spec)) {
		fp_form_add(&o->form, "ToCountry", "US");
		fp_form_add(&o->form, "SmsMessageSid", id);
		fp_form_add(&o->form, "NumMedia", "0");
		fp_form_add(&o->form, "SmsSid", id);
		fp_form_add(&o->form, "SmsStatus", "received");
		fp_form_add(&o->form, "Body", fp_str(spec, "text", ""));
		fp_form_add(&o->form, "FromCountry", "US");
		fp_form_add(&o->form, "To", fp_str(spec, "to", ""));
		snprintf(code, sizeof(code), "%u",
		    fp_segments(fp_str(spec, "text", ""), NULL));
		fp_form_add(&o->form, "NumSegments", code);
		fp_form_add(&o->form, "MessageSid", id);
		fp_form_add(&o->form, "AccountSid", sid);
		fp_form_add(&o->form, "From", fp_str(spec, "from", ""));
		fp_form_add(&o->form, "ApiVersion", "2010-04-01");
		return 0;
	}
	fp_form_add(&o->form, "SmsSid", id);
	fp_form_add(&o->form, "SmsStatus", st);
	fp_form_add(&o->form, "MessageStatus", st);
	fp_form_add(&o->form, "To", fp_str(spec, "to", "+15551230001"));
	fp_form_add(&o->form, "MessageSid", id);
	fp_form_add(&o->form, "AccountSid", sid);
	fp_form_add(&o->form, "From", fp_str(spec, "from", "+15550100000"));
	fp_form_add(&o->form, "ApiVersion", "2010-04-01");
	if (fp_jint(spec, "error_code", 0) != 0) {
		snprintf(code, sizeof(code), "%lld",
		    fp_jint(spec, "error_code", 0));
		fp_form_add(&o->form, "ErrorCode", code);
	}
	if (strcmp(st, "delivered") == 0 || strcmp(st, "undelivered") == 0)
		fp_form_add(&o->form, "RawDlrDoneDate",
		    fp_time_text(FP_T_SCTS, 0, date, sizeof(date)));
	return 0;
}
