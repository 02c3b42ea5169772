/*
 * fakeprov_callbacks.c - the webhooks fakeprov posts to the daemon.
 *
 * A webhook starts from a spec (POST /callbacks, or an automatic status
 * after an accepted send), is built by the provider's build function
 * (fakeprov_<provider>.c), signed, and posted on its own connection; the
 * daemon's answer goes to the log and, when asked, to the control
 * request that scheduled it.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "compat.h"
#include "xmalloc.h"
#include "fakeprov.h"

/* ---------------------------------------------------------------------
 * signing webhooks (the schemes are in the provider files)
 */

/*
 * Signs o as provider pid does, in 'mode': "valid", "invalid" (signed
 * with a wrong secret or key), "missing" (no signature at all) or
 * "stale" (valid, but timestamped 'stale_s' seconds ago). spec may
 * override the secrets. Vonage and Kannel change parameters or the URL,
 * so this runs before the body is serialized; the header schemes run
 * after (fp_sign_body).
 */
void
fp_sign_params(struct fp *fp, int pid, const json_t *spec, struct fp_out *o)
{
	const char *mode = fp_jget(spec, "signature");

	mode = mode != NULL ? mode : "valid";
	if (pid == FP_VONAGE)
		fp_vonage_sign_params(fp, spec, o, mode);
	else if (pid == FP_KANNEL)
		fp_kannel_sign_params(fp, spec, o, mode);
}

void
fp_sign_body(struct fp *fp, int pid, const json_t *spec, struct fp_out *o)
{
	const char *mode = fp_jget(spec, "signature"), *tok;
	char *wrong;
	long long ts;

	mode = mode != NULL ? mode : "valid";
	if (strcmp(mode, "missing") == 0 ||
	    (pid != FP_TWILIO && pid != FP_PLIVO && pid != FP_TELNYX))
		return;
	if (pid == FP_TELNYX) {
		ts = fp_jint(spec, "timestamp",
		    (long long)time(NULL) -
			(strcmp(mode, "stale") == 0 ? 600 : 0));
		fp_sign_telnyx(o,
		    strcmp(mode, "invalid") == 0 ? fp->telnyx_wrong
						 : fp->telnyx_key,
		    ts);
		return;
	}
	tok = fp_jget(spec, "auth_token");
	tok = tok != NULL ? tok : fp_conf(fp, pid, "auth_token");
	if (tok == NULL)
		return;
	wrong = xasprintf("%sx", tok);
	if (strcmp(mode, "invalid") == 0)
		tok = wrong;
	if (pid == FP_TWILIO)
		fp_sign_twilio(o, tok);
	else
		fp_sign_plivo(fp, o, tok, fp_jget(spec, "nonce"));
	free(wrong);
}

/* ---------------------------------------------------------------------
 * building webhooks per provider
 *
 * spec (from POST /callbacks or an auto callback): provider, kind
 * ("status" | "inbound"), id, status (generic: sent, delivered,
 * undelivered, failed, or the provider's own word), error_code, from,
 * to, text, sequence, url, params (extra or overriding fields; null
 * removes one), signature, timestamp.
 */

/* The webhook URL: spec.url, the provider's configured one, or
 * daemon_url/webhooks/<sender>/<kind>. NULL (err set) without any. */
static char *
fp_cb_url(struct fp *fp, int pid, const json_t *spec, char *err, size_t errlen)
{
	const char *kind = fp_jget(spec, "kind"), *url = fp_jget(spec, "url");
	const char *sender, *base;

	kind = kind != NULL ? kind : "status";
	if (url != NULL)
		return xstrdup(url);
	url = fp_conf(fp, pid,
	    strcmp(kind, "inbound") == 0 ? "inbound_url" : "status_url");
	if (url != NULL)
		return xstrdup(url);
	sender = fp_jget(spec, "sender");
	sender = sender != NULL ? sender : fp_conf(fp, pid, "sender");
	sender = sender != NULL ? sender : fp_providers[pid].name;
	base = fp_jget(spec, "daemon_url");
	base = base != NULL ? base : fp->daemon_url;
	if (base == NULL) {
		snprintf(err, errlen,
		    "no url, no %s_url configured for %s and "
		    "no --daemon-url",
		    kind, fp_providers[pid].name);
		return NULL;
	}
	return xasprintf("%s/webhooks/%s/%s", base, sender, kind);
}

bool
fp_is_inbound(const json_t *spec)
{
	const char *kind = fp_jget(spec, "kind");

	return kind != NULL && strcmp(kind, "inbound") == 0;
}

/* The generic status word of spec (default "delivered"). */
const char *
fp_cb_status(const json_t *spec)
{
	const char *st = fp_jget(spec, "status");

	return st != NULL ? st : "delivered";
}

/* Digits of an E.164 number, without the '+' (Vonage, Plivo). */
const char *
fp_digits(const char *s)
{
	return s != NULL && s[0] == '+' ? s + 1 : s != NULL ? s : "";
}

/* ---------------------------------------------------------------------
 * posting webhooks
 */

void
fp_out_clear(struct fp_out *o)
{
	free(o->url);
	fp_form_clear(&o->form);
	fp_form_clear(&o->headers);
	json_decref(o->json);
	free(o->body);
	memset(o, 0, sizeof(*o));
}

/* Serializes o's body (form or JSON) and content type. */
void
fp_out_serialize(struct fp_out *o)
{
	if (strcmp(o->method, "GET") == 0)
		return;
	if (o->json != NULL) {
		o->body = json_dumps(o->json, JSON_COMPACT);
		o->body_len = strlen(o->body);
		fp_form_set(&o->headers, "Content-Type", "application/json");
	} else {
		o->body = fp_form_encode(&o->form, &o->body_len);
		fp_form_set(&o->headers, "Content-Type",
		    "application/x-www-form-urlencoded");
	}
}

/*
 * Builds the complete webhook of spec into o: URL, fields, body and
 * signature. Returns 0, or -1 with err set.
 */
static int
fp_out_build(struct fp *fp, const json_t *spec, struct fp_out *o, char *err,
    size_t errlen)
{
	int pid = fp_pid_lookup(fp_jget(spec, "provider"));
	const json_t *params = json_object_get(spec, "params");
	const char *key;
	json_t *v;

	if (pid < 0) {
		snprintf(err, errlen, "unknown provider");
		return -1;
	}
	strlcpy(o->method, fp_str(spec, "method", "POST"), sizeof(o->method));
	if ((o->url = fp_cb_url(fp, pid, spec, err, errlen)) == NULL ||
	    fp_providers[pid].build(fp, spec, o, err, errlen) == -1)
		return -1;
	if (json_is_object(params)) {
		if (o->json != NULL)
			json_object_update(
			    json_object_get(json_object_get(o->json, "data"),
				"payload"),
			    (json_t *)params);
		else
			fp_form_merge_json(&o->form, params);
	}
	if (fp_jget(spec, "raw_body") != NULL) {
		o->body = xstrdup(fp_jget(spec, "raw_body"));
		o->body_len = strlen(o->body);
		fp_form_set(&o->headers, "Content-Type",
		    fp_str(spec, "content_type",
			"application/x-www-form-urlencoded"));
	} else {
		fp_sign_params(fp, pid, spec, o);
		fp_out_serialize(o);
	}
	fp_sign_body(fp, pid, spec, o);
	if (pid == FP_TWILIO)
		fp_form_set(&o->headers, "User-Agent", "TwilioProxy/1.1");
	/* "headers": set (or with null remove) headers after signing, e.g.
	 * a signature of other content */
	json_object_foreach(json_object_get(spec, "headers"), key, v)
		fp_form_set(&o->headers, key, json_string_value(v));
	return 0;
}

/* What went out, for the record and the control reply. */
json_t *
fp_out_json(const struct fp_out *o)
{
	json_t *h = json_object();
	size_t i;

	for (i = 0; i < o->headers.n; i++)
		json_object_set_new(h, o->headers.kv[i].key,
		    fp_jstr(o->headers.kv[i].value));
	return json_pack("{s:s, s:o, s:o, s:o}", "method", o->method, "url",
	    fp_jstr(o->url), "headers", h, "body",
	    o->body != NULL ? fp_jstrn(o->body, o->body_len) : json_null());
}

static void
fp_cb_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fp_cb_free(arg);
}

/* The daemon answered (or the connection failed: req == NULL). */
static void
fp_cb_done(struct evhttp_request *req, void *arg)
{
	struct fp_cb *cb = arg;
	struct fp *fp = cb->fp;
	struct timeval now = {0, 0};
	struct evbuffer *in;
	json_t *res;
	const char *ct = NULL;
	int status = 0;

	res = json_object();
	if (req != NULL &&
	    (status = evhttp_request_get_response_code(req)) > 0) {
		in = evhttp_request_get_input_buffer(req);
		ct = evhttp_find_header(evhttp_request_get_input_headers(req),
		    "Content-Type");
		json_object_set_new(res, "body",
		    fp_jstrn((const char *)evbuffer_pullup(in, -1),
			evbuffer_get_length(in)));
		fp->st.cb_answered++;
	} else {
		json_object_set_new(res, "error",
		    json_string("no answer (connection failed or timed out)"));
		fp->st.cb_failed++;
	}
	json_object_set_new(res, "status", json_integer(status));
	json_object_set_new(res, "content_type", fp_jstr(ct));
	json_object_set_new(res, "sent", json_incref(cb->sent));
	json_object_set_new(res, "spec", json_incref(cb->spec));
	if (cb->ctl != NULL) {
		struct evbuffer *b = evbuffer_new();

		json_dump_callback(res, fp_log_dump_cb, b, JSON_COMPACT);
		evhttp_add_header(evhttp_request_get_output_headers(cb->ctl),
		    "Content-Type", "application/json");
		evhttp_send_reply(cb->ctl, 200, "OK", b);
		evbuffer_free(b);
		cb->ctl = NULL;
	}
	json_object_set_new(res, "type", json_string("callback"));
	json_object_set_new(res, "t", json_real(fp_now()));
	json_object_set_new(res, "seq", json_integer((json_int_t)++fp->seq));
	fp_log_json(fp, res);
	/* libevent still uses the connection after this returns */
	event_free(cb->ev);
	cb->ev = evtimer_new(fp->base, fp_cb_reap_cb, cb);
	evtimer_add(cb->ev, &now);
}

/* Sends o to the daemon for cb; 0, or -1 with err set. */
static int
fp_cb_send(struct fp_cb *cb, struct fp_out *o, char *err, size_t errlen)
{
	struct evhttp_uri *u = evhttp_uri_parse(o->url);
	struct evhttp_request *req;
	struct evkeyvalq *h;
	char target[FP_URL_MAX], host[300];
	const char *path;
	size_t i;
	int port;

	if (u == NULL || evhttp_uri_get_host(u) == NULL) {
		snprintf(err, errlen, "bad url");
		evhttp_uri_free(u);
		return -1;
	}
	port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
	path = evhttp_uri_get_path(u);
	snprintf(target, sizeof(target), "%s%s%s", fp_empty(path) ? "/" : path,
	    evhttp_uri_get_query(u) ? "?" : "",
	    evhttp_uri_get_query(u) ? evhttp_uri_get_query(u) : "");
	snprintf(host, sizeof(host), "%s:%d", evhttp_uri_get_host(u), port);
	cb->conn = evhttp_connection_base_new(cb->fp->base, NULL,
	    evhttp_uri_get_host(u), (unsigned short)port);
	evhttp_uri_free(u);
	evhttp_connection_set_timeout(cb->conn, FP_CB_TIMEOUT_S);
	req = evhttp_request_new(fp_cb_done, cb);
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "Connection", "close");
	for (i = 0; i < o->headers.n; i++)
		evhttp_add_header(h, o->headers.kv[i].key,
		    o->headers.kv[i].value);
	if (o->body != NULL)
		evbuffer_add(evhttp_request_get_output_buffer(req), o->body,
		    o->body_len);
	if (evhttp_make_request(cb->conn, req,
		strcmp(o->method, "GET") == 0 ? EVHTTP_REQ_GET
					      : EVHTTP_REQ_POST,
		target) == -1) {
		/* the request is freed by libevent, the connection by
		 * fp_cb_free() */
		snprintf(err, errlen, "cannot start the request");
		return -1;
	}
	cb->fp->st.cb_sent++;
	return 0;
}

/* Builds and sends cb's webhook; on failure answers its control request
 * with 400 and frees cb. */
static void
fp_cb_start(struct fp_cb *cb)
{
	struct fp_out o = {0};
	char err[256];

	if (fp_out_build(cb->fp, cb->spec, &o, err, sizeof(err)) == 0) {
		cb->sent = fp_out_json(&o);
		if (fp_cb_send(cb, &o, err, sizeof(err)) == 0) {
			fp_out_clear(&o);
			return;
		}
	}
	fp_out_clear(&o);
	if (cb->ctl != NULL) {
		struct evbuffer *b = evbuffer_new();

		evbuffer_add_printf(b, "{\"error\":\"");
		evbuffer_add(b, err, strcspn(err, "\"\\"));
		evbuffer_add_printf(b, "\"}");
		evhttp_send_reply(cb->ctl, 400, "Bad Request", b);
		evbuffer_free(b);
		cb->ctl = NULL;
	} else {
		fp_log_json(cb->fp,
		    json_pack("{s:s, s:s, s:O}", "type", "callback", "error",
			err, "spec", cb->spec));
	}
	fp_cb_free(cb);
}

static void
fp_cb_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fp_cb_start(arg);
}

void
fp_cb_free(struct fp_cb *cb)
{
	TAILQ_REMOVE(&cb->fp->cbs, cb, entry);
	if (cb->ev != NULL)
		event_free(cb->ev);
	if (cb->conn != NULL)
		evhttp_connection_free(cb->conn);
	json_decref(cb->spec);
	json_decref(cb->sent);
	free(cb);
}

/* Schedules the webhook of spec (stolen) after delay_ms; ctl (may be
 * NULL) is the control request to answer with the daemon's reply. */
void
fp_cb_schedule(struct fp *fp, json_t *spec, unsigned delay_ms,
    struct evhttp_request *ctl)
{
	struct fp_cb *cb = xcalloc(1, sizeof(*cb));
	struct timeval tv;

	cb->fp = fp;
	cb->spec = spec;
	cb->ctl = ctl;
	TAILQ_INSERT_TAIL(&fp->cbs, cb, entry);
	cb->ev = evtimer_new(fp->base, fp_cb_timer_cb, cb);
	tv.tv_sec = delay_ms / 1000;
	tv.tv_usec = (delay_ms % 1000) * 1000;
	evtimer_add(cb->ev, &tv);
}

/* The URL an accepted send asked its callbacks to go to, or NULL. */
static const char *
fp_request_cb_url(const struct fp_call *c)
{
	static const char *const fields[FP_NPROV] = {"StatusCallback",
	    "callback", "url", "webhook_url", "dlr-url"};

	return fp_field(c, fields[c->pid]);
}

/*
 * After an accepted send: the provider's configured automatic status
 * callbacks ("auto": [{"status", "delay_ms", "error_code"}]), each to
 * the URL the request named or the configured one.
 */
void
fp_auto_callbacks(struct fp_call *c)
{
	json_t *autos = json_object_get(c->fp->conf[c->pid], "auto"), *a, *spec;
	const char *url = fp_request_cb_url(c), *from;
	size_t i;

	from = fp_field(c,
	    c->pid == FP_TWILIO	     ? "From"
		: c->pid == FP_PLIVO ? "src"
				     : "from");
	if (c->pid == FP_TWILIO && from == NULL)
		from = fp_field(c, "MessagingServiceSid");
	json_array_foreach(autos, i, a) {
		if (c->pid == FP_KANNEL &&
		    (url == NULL ||
			!fp_kannel_mask_has(c,
			    fp_kannel_type(fp_str(a, "status", "delivered")))))
			continue;
		spec = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}",
		    "provider", fp_providers[c->pid].name, "kind", "status",
		    "status", fp_str(a, "status", "delivered"), "id",
		    fp_jstr(c->pid == FP_KANNEL ? c->acct : c->id), "to",
		    fp_jstr(fp_field(c, fp_providers[c->pid].to_field)), "from",
		    fp_jstr(from), "error_code",
		    json_integer(fp_jint(a, "error_code", 0)));
		if (url != NULL)
			json_object_set_new(spec, "url", json_string(url));
		if (fp_field(c, "client-ref") != NULL)
			json_object_set_new(spec, "client_ref",
			    json_string(fp_field(c, "client-ref")));
		if (json_object_get(a, "signature") != NULL)
			json_object_set(spec, "signature",
			    json_object_get(a, "signature"));
		fp_cb_schedule(c->fp, spec,
		    c->delay_ms + (unsigned)fp_jint(a, "delay_ms", 50), NULL);
	}
}
