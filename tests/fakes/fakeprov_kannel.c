/*
 * fakeprov_kannel.c - fakeprov's Kannel smsbox: GET|POST
 * /cgi-bin/sendsms, answered 202 "0: Accepted for delivery", and the
 * delivery reports and received messages Kannel sends by expanding the
 * request's dlr-url (or a get-url template) with a secret in the URL.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "compat.h"
#include "xmalloc.h"
#include "fakeprov.h"

/* ---------------------------------------------------------------------
 * answering sends
 */

void
fp_kannel_error(struct fp_call *c, int status, int code, const char *msg)
{
	(void)code;
	if (msg == NULL)
		msg = status == 503 ? "Temporal failure, try again later."
		    : status >= 500 ? "Internal error"
				    : "Rejected";
	fp_answer_text(c, status, "text/html", msg);
}

void
fp_kannel_answer(struct fp_call *c)
{
	struct fp *fp = c->fp;
	const char *user = fp_field(c, "username"),
		   *pass = fp_field(c, "password");
	char id[40];

	if (user == NULL)
		user = fp_field(c, "user");
	if (pass == NULL)
		pass = fp_field(c, "pass");
	if (user == NULL || pass == NULL ||
	    strcmp(user, fp_conf(fp, FP_KANNEL, "username")) != 0 ||
	    strcmp(pass, fp_conf(fp, FP_KANNEL, "password")) != 0) {
		fp_kannel_error(c, 403, 0, "Authorization failed for sendsms");
		fp_refuse(c);
	} else if (fp_empty(fp_field(c, "to"))) {
		fp_kannel_error(c, 400, 0, "Missing receiver number, rejected");
		fp_refuse(c);
	} else if (fp_field(c, "text") == NULL && fp_field(c, "udh") == NULL) {
		fp_kannel_error(c, 400, 0, "Missing text, rejected");
		fp_refuse(c);
	} else {
		/* No id in Kannel's answer; this one is the SMSC's (%F). */
		fp_new_id(fp, "K", 16, id, sizeof(id));
		fp_answer_text(c, 202, "text/html", "0: Accepted for delivery");
		fp_accept(c, id);
		c->id[0] = '\0';
		strlcpy(c->acct, id, sizeof(c->acct));
	}
}

/* ---------------------------------------------------------------------
 * its webhooks: URL templates, the secret in the URL, DLR types
 */

/* Sets (or with NULL removes) query parameter 'name' of *url. */
static void
fp_url_param(char **url, const char *name, const char *value)
{
	char *q = strchr(*url, '?'), *base, *enc, *next;
	struct fp_form f = {0};
	json_t *obj;
	size_t len;

	base = xstrndup(*url, q != NULL ? (size_t)(q - *url) : strlen(*url));
	if (q != NULL) {
		obj = fp_form_json(q + 1, strlen(q + 1));
		fp_form_merge_json(&f, obj);
		json_decref(obj);
	}
	fp_form_set(&f, name, value);
	enc = fp_form_encode(&f, &len);
	next = len > 0 ? xasprintf("%s?%s", base, enc) : xstrdup(base);
	free(*url);
	*url = next;
	free(enc);
	free(base);
	fp_form_clear(&f);
}

/* Kannel's secret in the URL (secret_param), in 'mode' (see
 * fp_sign_params). */
void
fp_kannel_sign_params(struct fp *fp, const json_t *spec, struct fp_out *o,
    const char *mode)
{
	const char *sec, *param;

	param = fp_conf(fp, FP_KANNEL, "secret_param");
	sec = fp_jget(spec, "secret");
	sec = sec != NULL ? sec : fp_conf(fp, FP_KANNEL, "secret");
	if (param == NULL)
		return;
	if (strcmp(mode, "missing") == 0)
		fp_url_param(&o->url, param, NULL);
	else if (strcmp(mode, "invalid") == 0)
		fp_url_param(&o->url, param, "wrong-secret");
	else if (sec != NULL)
		fp_url_param(&o->url, param, sec);
}

/* Kannel's DLR type for a generic status (dlr-mask bits). */
int
fp_kannel_type(const char *st)
{
	if (strcmp(st, "delivered") == 0)
		return 1;
	if (strcmp(st, "undelivered") == 0 || strcmp(st, "failed") == 0)
		return 2;
	if (strcmp(st, "buffered") == 0)
		return 4;
	if (strcmp(st, "sent") == 0)
		return 8;
	if (strcmp(st, "rejected") == 0)
		return 16;
	return atoi(st);
}

/* The value of Kannel escape 'e' (%e) for spec, or NULL if unknown. */
static const char *
fp_kannel_var(char e, const json_t *spec, char *buf, size_t len)
{
	const char *text = fp_str(spec, "text", ""), *sp;

	switch (e) {
	case 'p':
		return fp_str(spec, "from", "");
	case 'P':
		return fp_str(spec, "to", "");
	case 'a':
	case 'b':
		return text;
	case 'k':
		snprintf(buf, len, "%.*s", (int)strcspn(text, " "), text);
		return buf;
	case 'r':
		sp = strchr(text, ' ');
		return sp != NULL ? sp + 1 : "";
	case 'd':
		snprintf(buf, len, "%d", fp_kannel_type(fp_cb_status(spec)));
		return buf;
	case 'A':
		snprintf(buf, len, "id:%s sub:001 dlvrd:001 stat:%s err:%03lld",
		    fp_str(spec, "id", ""),
		    fp_kannel_type(fp_cb_status(spec)) == 1 ? "DELIVRD"
							    : "UNDELIV",
		    fp_jint(spec, "error_code", 0));
		return buf;
	case 'F':
	case 'I':
		return fp_str(spec, "id", "");
	case 'T':
		snprintf(buf, len, "%lld", (long long)time(NULL));
		return buf;
	case 't':
		return fp_time_text(FP_T_SQL, 0, buf, len);
	case 'i':
		return "fakesmsc";
	case 'c':
		return "0";
	case 'C':
		return "UTF-8";
	case 'n':
		return "default";
	default:
		return NULL;
	}
}

/* Expands a Kannel get-url or dlr-url template (values URL-encoded). */
static char *
fp_kannel_expand(const char *tmpl, const json_t *spec)
{
	struct evbuffer *b = evbuffer_new();
	const char *p, *v;
	char buf[512], *enc, *s;
	size_t n;

	for (p = tmpl; *p != '\0'; p++) {
		if (*p != '%' || p[1] == '\0' ||
		    (v = fp_kannel_var(p[1], spec, buf, sizeof(buf))) == NULL) {
			evbuffer_add(b, p, 1);
			continue;
		}
		enc = evhttp_uriencode(v, -1, 0);
		evbuffer_add(b, enc, strlen(enc));
		free(enc);
		p++;
	}
	n = evbuffer_get_length(b);
	s = xmalloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

int
fp_kannel_build(struct fp *fp, const json_t *spec, struct fp_out *o, char *err,
    size_t errlen)
{
	char *url;

	(void)fp;
	if (!fp_is_inbound(spec) && fp_jget(spec, "url") == NULL &&
	    fp_conf(fp, FP_KANNEL, "status_url") == NULL) {
		snprintf(err, errlen,
		    "kannel status callbacks need the "
		    "request's dlr-url as 'url'");
		return -1;
	}
	strlcpy(o->method, "GET", sizeof(o->method));
	url = fp_kannel_expand(o->url, spec);
	free(o->url);
	o->url = url;
	return 0;
}

/* True if Kannel's dlr-mask of c asks for DLR type 'type'. */
bool
fp_kannel_mask_has(const struct fp_call *c, int type)
{
	const char *mask = fp_field(c, "dlr-mask");

	return mask == NULL || (atoi(mask) & type) != 0;
}
