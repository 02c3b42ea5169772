/*
 * fakeprov_control.c - fakeprov's control port: JSON over HTTP that
 * tests and bench/ use to configure providers, script misbehaviour,
 * trigger webhooks, compute signatures and read counters
 * (tests/fakes/README.md lists the routes).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "compat.h"
#include "xmalloc.h"
#include "fakeprov.h"

/* ---------------------------------------------------------------------
 * the control port
 */

static void
fp_ctl_reply(struct evhttp_request *req, int status, json_t *obj)
{
	struct evbuffer *b = evbuffer_new();

	json_dump_callback(obj, fp_log_dump_cb, b, JSON_COMPACT);
	json_decref(obj);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
}

static void
fp_ctl_error(struct evhttp_request *req, int status, const char *msg)
{
	fp_ctl_reply(req, status, json_pack("{s:s}", "error", msg));
}

/* The provider named by body.provider; answers 400 and returns -1 when
 * it is missing or unknown (unless 'optional': then -2 for "none"). */
static int
fp_ctl_pid(struct evhttp_request *req, const json_t *body, bool optional)
{
	const char *name = fp_jget(body, "provider");
	int pid = fp_pid_lookup(name);

	if (name == NULL && optional)
		return -2;
	if (pid < 0)
		fp_ctl_error(req, 400,
		    "provider: one of twilio, vonage, plivo, telnyx, kannel");
	return pid;
}

static json_t *
fp_ctl_counts(const unsigned long *v)
{
	json_t *obj = json_object();
	int i;

	for (i = 0; i < FP_NPROV; i++)
		json_object_set_new(obj, fp_providers[i].name,
		    json_integer((json_int_t)v[i]));
	return obj;
}

static void
fp_ctl_stats(struct fp *fp, struct evhttp_request *req, json_t *body)
{
	unsigned long pending = 0;
	struct fp_cb *cb;

	(void)body;
	TAILQ_FOREACH(cb, &fp->cbs, entry)
		pending++;
	fp_ctl_reply(req, 200,
	    json_pack("{s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I,"
		      " s:I, s:I}}",
		"requests", fp_ctl_counts(fp->st.requests), "accepted",
		fp_ctl_counts(fp->st.accepted), "refused",
		fp_ctl_counts(fp->st.refused), "unknown",
		(json_int_t)fp->st.requests[FP_NPROV], "scripted",
		(json_int_t)fp->st.scripted, "delayed",
		(json_int_t)fp->st.delayed, "dropped",
		(json_int_t)fp->st.dropped, "seq", (json_int_t)fp->seq,
		"callbacks", "sent", (json_int_t)fp->st.cb_sent, "answered",
		(json_int_t)fp->st.cb_answered, "failed",
		(json_int_t)fp->st.cb_failed, "pending", (json_int_t)pending));
}

static void
fp_ctl_info(struct fp *fp, struct evhttp_request *req, json_t *body)
{
	char pub[64];
	json_t *conf = json_object();
	int i;

	(void)body;
	for (i = 0; i < FP_NPROV; i++)
		json_object_set(conf, fp_providers[i].name, fp->conf[i]);
	fp_ctl_reply(req, 200,
	    json_pack("{s:i, s:i, s:o, s:s, s:o}", "port", fp->port, "control",
		fp->ctl_port, "daemon_url", fp_jstr(fp->daemon_url),
		"telnyx_public_key",
		fp_ed25519_public(fp->telnyx_key, pub, sizeof(pub)), "config",
		conf));
}

static void
fp_ctl_config(struct fp *fp, struct evhttp_request *req, json_t *body)
{
	const char *key = fp_jget(body, "private_key");
	int pid = fp_ctl_pid(req, body, true);

	if (pid == -1)
		return;
	if (fp_jget(body, "daemon_url") != NULL) {
		free(fp->daemon_url);
		fp->daemon_url = xstrdup(fp_jget(body, "daemon_url"));
	}
	if (pid >= 0) {
		if (key != NULL &&
		    (pid != FP_TELNYX || fp_telnyx_load_key(fp, key) == -1)) {
			fp_ctl_error(req, 400,
			    "private_key: base64 of a 32-byte Ed25519 seed "
			    "(telnyx only)");
			return;
		}
		json_object_del(body, "provider");
		json_object_del(body, "private_key");
		json_object_del(body, "daemon_url");
		json_object_update(fp->conf[pid], body);
	}
	fp_ctl_info(fp, req, NULL);
}

/* Copies a string member of obj, or NULL. */
static char *
fp_jdup(const json_t *obj, const char *key)
{
	const char *s = fp_jget(obj, key);

	return s != NULL ? xstrdup(s) : NULL;
}

static void
fp_ctl_behaviour(struct fp *fp, struct evhttp_request *req, json_t *body)
{
	struct fp_rule *r;
	json_t *b = json_object_get(body, "body");
	int pid = fp_ctl_pid(req, body, false);

	if (pid < 0)
		return;
	r = xcalloc(1, sizeof(*r));
	r->count = (unsigned)fp_jint(body, "count", 1);
	r->status = (int)fp_jint(body, "status", 0);
	r->code = (int)fp_jint(body, "code", 0);
	r->message = fp_jdup(body, "message");
	r->body = json_is_string(b)	    ? xstrdup(json_string_value(b))
	    : b != NULL && !json_is_null(b) ? json_dumps(b, JSON_COMPACT)
					    : NULL;
	r->ctype = fp_jdup(body, "content_type");
	r->retry_after = (unsigned)fp_jint(body, "retry_after", 0);
	r->delay_ms = (unsigned)fp_jint(body, "delay_ms", 0);
	r->drop = json_is_true(json_object_get(body, "drop"));
	r->to = fp_jdup(body, "to");
	if (json_is_object(json_object_get(body, "headers")))
		r->headers = json_incref(json_object_get(body, "headers"));
	TAILQ_INSERT_TAIL(&fp->rules[pid], r, entry);
	fp_ctl_reply(req, 200, json_pack("{s:b}", "ok", 1));
}

static void
fp_ctl_reset(struct fp *fp, struct evhttp_request *req, json_t *body)
{
	struct fp_rule *r;
	int pid = fp_ctl_pid(req, body, true), i;

	if (pid == -1)
		return;
	for (i = 0; i < FP_NPROV; i++) {
		if (pid >= 0 && i != pid)
			continue;
		while ((r = TAILQ_FIRST(&fp->rules[i])) != NULL) {
			TAILQ_REMOVE(&fp->rules[i], r, entry);
			fp_rule_free(r);
		}
		if (json_is_true(json_object_get(body, "auto")))
			json_object_del(fp->conf[i], "auto");
	}
	fp_ctl_reply(req, 200, json_pack("{s:b}", "ok", 1));
}

/* POST /callbacks: posts one webhook now (or after delay_ms); with
 * "wait" (default true) answers with the daemon's reply. */
static void
fp_ctl_callbacks(struct fp *fp, struct evhttp_request *req, json_t *body)
{
	bool wait = !json_is_false(json_object_get(body, "wait"));

	if (fp_ctl_pid(req, body, false) < 0)
		return;
	fp_cb_schedule(fp, json_incref(body),
	    (unsigned)fp_jint(body, "delay_ms", 0), wait ? req : NULL);
	if (!wait)
		fp_ctl_reply(req, 202, json_pack("{s:b}", "scheduled", 1));
}

/* POST /sign: the signature fakeprov puts on a webhook, for checks
 * against the providers' published vectors. */
static void
fp_ctl_sign(struct fp *fp, struct evhttp_request *req, json_t *body)
{
	struct fp_out o = {0};
	int pid = fp_ctl_pid(req, body, false);
	json_t *params = json_object_get(body, "params"), *form, *res;
	size_t i;

	if (pid < 0)
		return;
	if (fp_jget(body, "url") == NULL) {
		fp_ctl_error(req, 400, "url is required");
		return;
	}
	strlcpy(o.method, fp_str(body, "method", "POST"), sizeof(o.method));
	o.url = xstrdup(fp_jget(body, "url"));
	if (json_is_object(params))
		fp_form_merge_json(&o.form, params);
	fp_sign_params(fp, pid, body, &o);
	if (fp_jget(body, "raw_body") != NULL) {
		o.body = xstrdup(fp_jget(body, "raw_body"));
		o.body_len = strlen(o.body);
	} else
		fp_out_serialize(&o);
	fp_sign_body(fp, pid, body, &o);
	form = json_object();
	for (i = 0; i < o.form.n; i++)
		json_object_set_new(form, o.form.kv[i].key,
		    fp_jstr(o.form.kv[i].value));
	res = fp_out_json(&o);
	json_object_set_new(res, "params", form);
	fp_out_clear(&o);
	fp_ctl_reply(req, 200, res);
}

static void
fp_ctl_flush(struct fp *fp, struct evhttp_request *req, json_t *body)
{
	(void)body;
	fp_log_flush(fp);
	fp_ctl_reply(req, 200, json_pack("{s:I}", "seq", (json_int_t)fp->seq));
}

typedef void fp_ctl_fn(struct fp *, struct evhttp_request *, json_t *);

static const struct {
	enum evhttp_cmd_type method;
	const char *path;
	fp_ctl_fn *fn;
} fp_ctl_routes[] = {
    {EVHTTP_REQ_GET, "/health", fp_ctl_flush},
    {EVHTTP_REQ_GET, "/info", fp_ctl_info},
    {EVHTTP_REQ_GET, "/stats", fp_ctl_stats},
    {EVHTTP_REQ_POST, "/config", fp_ctl_config},
    {EVHTTP_REQ_POST, "/behaviour", fp_ctl_behaviour},
    {EVHTTP_REQ_POST, "/behavior", fp_ctl_behaviour},
    {EVHTTP_REQ_POST, "/reset", fp_ctl_reset},
    {EVHTTP_REQ_POST, "/callbacks", fp_ctl_callbacks},
    {EVHTTP_REQ_POST, "/sign", fp_ctl_sign},
    {EVHTTP_REQ_POST, "/flush", fp_ctl_flush},
};

void
fp_on_control(struct evhttp_request *req, void *arg)
{
	struct fp *fp = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *path =
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	json_t *body = NULL;
	json_error_t jerr;
	size_t i;

	for (i = 0; i < sizeof(fp_ctl_routes) / sizeof(fp_ctl_routes[0]); i++)
		if (path != NULL && strcmp(path, fp_ctl_routes[i].path) == 0 &&
		    evhttp_request_get_command(req) == fp_ctl_routes[i].method)
			break;
	if (i == sizeof(fp_ctl_routes) / sizeof(fp_ctl_routes[0])) {
		fp_ctl_error(req, 404, "no such control route");
		return;
	}
	if (evbuffer_get_length(in) > 0) {
		body = json_loadb((const char *)evbuffer_pullup(in, -1),
		    evbuffer_get_length(in), 0, &jerr);
		if (!json_is_object(body)) {
			json_decref(body);
			fp_ctl_error(req, 400, "body: a JSON object");
			return;
		}
	} else
		body = json_object();
	fp_ctl_routes[i].fn(fp, req, body);
	json_decref(body);
}
