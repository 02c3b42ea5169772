/*
 * fakeprov.c - the fake SMS provider of the integration tests and bench/.
 *
 * One libevent process that answers each provider's real HTTP request
 * shape on loopback the way the provider does: Twilio POST
 * /2010-04-01/Accounts/{sid}/Messages.json (Basic auth, form, 201 JSON),
 * Vonage POST /sms/json (200 messages[], errors per element), Plivo POST
 * /v1/Account/{id}/Message/ (Basic auth, JSON, 202 message_uuid[]),
 * Telnyx POST /v2/messages (Bearer, JSON, 200 {data}) and Kannel
 * GET|POST /cgi-bin/sendsms (202 "0: Accepted for delivery"). Wrong
 * credentials get each provider's own refusal.
 *
 * Every request is recorded as one JSON line in the --log file (time,
 * method, path, headers including Authorization, raw body, parsed fields,
 * the answer). A control API (JSON over HTTP on --control-port, see
 * tests/fakes/README.md) scripts misbehaviour per provider for the next N
 * requests (any status and body, 429 + Retry-After, slow answers, dropped
 * connections) and makes the fake post status callbacks and inbound
 * messages to the daemon's webhooks, signed with each provider's scheme:
 * Twilio X-Twilio-Signature (HMAC-SHA1), Vonage signed parameters (md5hash
 * or HMAC), Plivo V2 and V3 (HMAC-SHA256), Telnyx Ed25519 over
 * "timestamp|body", Kannel a secret in the URL. Callbacks can also follow
 * every accepted send automatically ("delivered" 50 ms later).
 *
 * Speed: one loop, keep-alive, no logging per request besides the JSON
 * line, which is appended to an evbuffer and written out in blocks.
 *
 * The files: this one has the provider table, the request log, the
 * provider port (routing, scripted and delayed answers) and start/stop;
 * fakeprov_<provider>.c answer one provider's sends and build its
 * webhooks; fakeprov_callbacks.c posts webhooks; fakeprov_control.c is
 * the control port; fakeprov_util.c has the helpers (name/value lists,
 * JSON, ids, segments). fakeprov.h holds what they share.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "compat.h"
#include "xmalloc.h"
#include "fakeprov.h"

/* Each provider's answer, error and webhook builder. */
const struct fp_provider fp_providers[FP_NPROV] = {
    {"twilio", "To", fp_twilio_answer, fp_twilio_error, fp_twilio_build},
    {"vonage", "to", fp_vonage_answer, fp_vonage_error, fp_vonage_build},
    {"plivo", "dst", fp_plivo_answer, fp_plivo_error, fp_plivo_build},
    {"telnyx", "to", fp_telnyx_answer, fp_telnyx_error, fp_telnyx_build},
    {"kannel", "to", fp_kannel_answer, fp_kannel_error, fp_kannel_build},
};

/* Default credentials; the control API's POST /config changes them. */
static const char *const fp_default_conf[FP_NPROV] = {
    "{\"account_sid\": \"AC00000000000000000000000000000001\","
    " \"auth_token\": \"fake-twilio-auth-token\"}",
    "{\"api_key\": \"fakekey1\", \"api_secret\": \"fake-vonage-secret\","
    " \"signature_method\": \"md5hash\"}",
    "{\"auth_id\": \"MAFAKE00000000000001\","
    " \"auth_token\": \"fake-plivo-auth-token\"}",
    "{\"api_key\": \"KEYFAKE0000000000000000000000001\"}",
    "{\"username\": \"kuser\", \"password\": \"kpass\","
    " \"secret_param\": \"secret\"}",
};

/* ---------------------------------------------------------------------
 * configuration per provider
 */

const char *
fp_conf(const struct fp *fp, int pid, const char *key)
{
	return fp_jget(fp->conf[pid], key);
}

/* The provider called 'name', or -1. */
int
fp_pid_lookup(const char *name)
{
	int i;

	for (i = 0; name != NULL && i < FP_NPROV; i++)
		if (strcmp(fp_providers[i].name, name) == 0)
			return i;
	return -1;
}

/* ---------------------------------------------------------------------
 * the request log
 */

void
fp_log_flush(struct fp *fp)
{
	while (evbuffer_get_length(fp->log) > 0)
		if (evbuffer_write(fp->log, fp->log_fd) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "fakeprov: log write: %s\n",
			    strerror(errno));
			evbuffer_drain(fp->log, evbuffer_get_length(fp->log));
		}
}

int
fp_log_dump_cb(const char *buf, size_t size, void *arg)
{
	return evbuffer_add(arg, buf, size);
}

/* Appends obj as one JSON line (obj is stolen). */
void
fp_log_json(struct fp *fp, json_t *obj)
{
	json_dump_callback(obj, fp_log_dump_cb, fp->log, JSON_COMPACT);
	evbuffer_add(fp->log, "\n", 1);
	json_decref(obj);
	if (evbuffer_get_length(fp->log) >= FP_LOG_BLOCK)
		fp_log_flush(fp);
}

static void
fp_log_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fp_log_flush(arg);
}

/* Records one request to the provider port and its answer. */
static void
fp_record(struct fp_call *c)
{
	struct evbuffer *b = c->fp->log;
	struct evkeyval *kv;
	bool first = true;

	evbuffer_add_printf(b,
	    "{\"type\":\"request\",\"seq\":%llu,\"t\":%.6f,\"provider\":"
	    "\"%s\",\"method\":\"%s\"",
	    (unsigned long long)++c->fp->seq, fp_now(),
	    c->pid >= 0 ? fp_providers[c->pid].name : "unknown", c->method);
	fp_jw_kv(b, "uri", c->uri);
	fp_jw_kv(b, "path", c->path);
	fp_jw_kv(b, "query", c->query);
	evbuffer_add(b, ",\"headers\":{", 12);
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(c->req), next) {
		evbuffer_add(b, ",", !first);
		first = false;
		fp_jw_strz(b, kv->key);
		evbuffer_add(b, ":", 1);
		fp_jw_strz(b, kv->value);
	}
	evbuffer_add(b, "}", 1);
	fp_jw_kv(b, "content_type", c->ctype);
	evbuffer_add(b, ",\"fields\":", 10);
	if (c->json != NULL)
		json_dump_callback(c->json, fp_log_dump_cb, b, JSON_COMPACT);
	else
		fp_jw_form(b, &c->form);
	evbuffer_add_printf(b, ",\"status\":%d", c->drop ? 0 : c->status);
	fp_jw_kv(b, "id", c->id[0] != '\0' ? c->id : NULL);
	fp_jw_kv(b, "outcome", c->outcome);
	if (c->delay_ms > 0)
		evbuffer_add_printf(b, ",\"delay_ms\":%u", c->delay_ms);
	evbuffer_add(b, ",\"body\":", 8);
	fp_jw_str(b, c->body, c->body_len);
	evbuffer_add(b, "}\n", 2);
	if (evbuffer_get_length(b) >= FP_LOG_BLOCK)
		fp_log_flush(c->fp);
}

/* ---------------------------------------------------------------------
 * answering requests: helpers shared by the providers
 */

/* The first value of field 'name' of the request, or NULL. */
const char *
fp_field(const struct fp_call *c, const char *name)
{
	json_t *v;

	if (c->json == NULL)
		return fp_form_get(&c->form, name);
	v = json_object_get(c->json, name);
	if (json_is_array(v))
		v = json_array_get(v, 0);
	return json_string_value(v);
}

void
fp_set_header(struct fp_call *c, const char *name, const char *value)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);

	evhttp_remove_header(h, name);
	evhttp_add_header(h, name, value);
}

/* Sets the answer to status + obj as JSON (obj is stolen). */
void
fp_answer_json(struct fp_call *c, int status, json_t *obj)
{
	json_dump_callback(obj, fp_log_dump_cb, c->out, JSON_COMPACT);
	json_decref(obj);
	fp_set_header(c, "Content-Type", "application/json; charset=utf-8");
	c->status = status;
}

void
fp_answer_text(struct fp_call *c, int status, const char *ctype,
    const char *text)
{
	evbuffer_add(c->out, text, strlen(text));
	fp_set_header(c, "Content-Type", ctype);
	c->status = status;
}

void
fp_refuse(struct fp_call *c)
{
	c->outcome = "refused";
	c->fp->st.refused[c->pid]++;
}

void
fp_accept(struct fp_call *c, const char *id)
{
	strlcpy(c->id, id, sizeof(c->id));
	c->outcome = "accepted";
	c->accepted = true;
	c->fp->st.accepted[c->pid]++;
}

/* True if the request carries HTTP Basic credentials user:pass. */
bool
fp_basic_is_ok(const struct fp_call *c, const char *user, const char *pass)
{
	const char *h;
	unsigned char raw[512];
	char want[512];
	int n;

	h = evhttp_find_header(evhttp_request_get_input_headers(c->req),
	    "Authorization");
	if (h == NULL || user == NULL || pass == NULL ||
	    strncasecmp(h, "Basic ", 6) != 0)
		return false;
	if ((n = fp_unb64(h + 6, raw, sizeof(raw) - 1)) < 0)
		return false;
	raw[n] = '\0';
	snprintf(want, sizeof(want), "%s:%s", user, pass);
	return strcmp((char *)raw, want) == 0;
}

/* True if s is +E.164: '+' and 8 to 15 digits, no leading 0. */
bool
fp_is_e164(const char *s)
{
	size_t n;

	if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	n = strspn(s + 1, "0123456789");
	return s[1 + n] == '\0' && n >= 8 && n <= 15;
}

/* True if s is lo..hi digits only. */
bool
fp_is_digits(const char *s, size_t lo, size_t hi)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strspn(s, "0123456789");
	return s[n] == '\0' && n >= lo && n <= hi;
}

/* ---------------------------------------------------------------------
 * scripted behaviour (POST /behaviour)
 */

void
fp_rule_free(struct fp_rule *r)
{
	if (r == NULL)
		return;
	free(r->message);
	free(r->body);
	free(r->ctype);
	free(r->to);
	json_decref(r->headers);
	free(r);
}

/*
 * The first rule of c's provider that applies to c (its recipient
 * matches); counts its use and unlinks it when used up (the caller then
 * owns it: *owned). NULL when none applies.
 */
static struct fp_rule *
fp_rule_take(struct fp_call *c, bool *owned)
{
	struct fp_rule_list *l = &c->fp->rules[c->pid];
	struct fp_rule *r;
	const char *to;

	*owned = false;
	to = fp_field(c, fp_providers[c->pid].to_field);
	TAILQ_FOREACH(r, l, entry) {
		if (r->to != NULL && (to == NULL || strcmp(r->to, to) != 0))
			continue;
		r->used++;
		if (r->count > 0 && r->used >= r->count) {
			TAILQ_REMOVE(l, r, entry);
			*owned = true;
		}
		return r;
	}
	return NULL;
}

/* Answers c as rule r scripts it (status and body), if it does. */
static bool
fp_rule_answer(struct fp_call *c, const struct fp_rule *r)
{
	const char *key;
	json_t *v;
	char ra[16];
	int status = r->status;

	if (status == 0 && r->retry_after > 0)
		status = 429;
	/* Vonage reports errors per message in a 200; Telnyx answers its
	 * opt-out block with 409 (developers.telnyx.com/api/errors/40300) */
	if (status == 0 && r->code != 0)
		status = c->pid == FP_VONAGE		      ? 200
		    : c->pid == FP_TELNYX && r->code == 40300 ? 409
							      : 400;
	if (status == 0 && r->body == NULL)
		return false;
	if (status == 0)
		status = 200;
	if (r->body != NULL) {
		evbuffer_add(c->out, r->body, strlen(r->body));
		fp_set_header(c, "Content-Type",
		    r->ctype != NULL	    ? r->ctype
			: r->body[0] == '{' ? "application/json"
					    : "text/plain");
		c->status = status;
	} else
		fp_providers[c->pid].error(c, status, r->code, r->message);
	if (r->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%u", r->retry_after);
		fp_set_header(c, "Retry-After", ra);
	}
	json_object_foreach(r->headers, key, v)
		if (json_is_string(v))
			fp_set_header(c, key, json_string_value(v));
	c->outcome = "scripted";
	c->fp->st.scripted++;
	return true;
}

/* ---------------------------------------------------------------------
 * delayed answers and dropped connections
 */

static void
fp_delayed_free(struct fp_delayed *d)
{
	TAILQ_REMOVE(&d->fp->delayed, d, entry);
	event_free(d->ev);
	free(d);
}

static void
fp_delayed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fp_delayed *d = arg;
	struct evhttp_connection *evcon;

	(void)fd;
	(void)what;
	evcon = evhttp_request_get_connection(d->req);
	if (!d->drop)
		evhttp_send_reply(d->req, d->status, NULL, NULL);
	else if (evcon != NULL)
		evhttp_connection_free(evcon); /* closes; frees d->req */
	else
		evhttp_request_free(d->req); /* the client left first */
	fp_delayed_free(d);
}

/* Answers (or drops) c's request after delay_ms, from the loop. */
static void
fp_delay(struct fp_call *c)
{
	struct fp_delayed *d = xcalloc(1, sizeof(*d));
	struct timeval tv;

	d->fp = c->fp;
	d->req = c->req;
	d->status = c->status;
	d->drop = c->drop;
	d->ev = evtimer_new(c->fp->base, fp_delayed_cb, d);
	tv.tv_sec = c->delay_ms / 1000;
	tv.tv_usec = (c->delay_ms % 1000) * 1000;
	evtimer_add(d->ev, &tv);
	TAILQ_INSERT_TAIL(&c->fp->delayed, d, entry);
}

/* ---------------------------------------------------------------------
 * the provider port
 */

/* Which provider's endpoint c is for (-1: none); the account id in the
 * path goes to c->acct. */
static int
fp_route(struct fp_call *c)
{
	const char *p = c->path, *end;
	size_t n;
	bool post = strcmp(c->method, "POST") == 0;

	if (strncmp(p, "/2010-04-01/Accounts/", 21) == 0 && post) {
		p += 21;
		end = strchr(p, '/');
		if (end != NULL && strcmp(end, "/Messages.json") == 0) {
			n = (size_t)(end - p);
			snprintf(c->acct, sizeof(c->acct), "%.*s", (int)n, p);
			return FP_TWILIO;
		}
	} else if (strcmp(p, "/sms/json") == 0 && post)
		return FP_VONAGE;
	else if (strncmp(p, "/v1/Account/", 12) == 0 && post) {
		p += 12;
		end = strchr(p, '/');
		if (end != NULL && strcmp(end, "/Message/") == 0) {
			n = (size_t)(end - p);
			snprintf(c->acct, sizeof(c->acct), "%.*s", (int)n, p);
			return FP_PLIVO;
		}
	} else if (strcmp(p, "/v2/messages") == 0 && post)
		return FP_TELNYX;
	else if (strcmp(p, "/cgi-bin/sendsms") == 0 &&
	    (post || strcmp(c->method, "GET") == 0))
		return FP_KANNEL;
	return -1;
}

/* Reads c's method, URI, body and fields out of the request. */
static void
fp_call_init(struct fp_call *c, struct fp *fp, struct evhttp_request *req)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	bool json, post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;

	memset(c, 0, sizeof(*c));
	c->fp = fp;
	c->req = req;
	c->out = evhttp_request_get_output_buffer(req);
	c->method = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST"
	    : evhttp_request_get_command(req) == EVHTTP_REQ_GET	       ? "GET"
								: "OTHER";
	c->uri = evhttp_request_get_uri(req);
	c->path = evhttp_uri_get_path(u) != NULL ? evhttp_uri_get_path(u) : "/";
	c->query = evhttp_uri_get_query(u);
	c->ctype = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	c->body_len = evbuffer_get_length(in);
	c->body = xmalloc(c->body_len + 1);
	evbuffer_copyout(in, c->body, c->body_len);
	c->body[c->body_len] = '\0';
	c->outcome = "unknown";
	c->pid = fp_route(c);
	json = c->ctype != NULL &&
	    strncasecmp(c->ctype, "application/json", 16) == 0;
	if (json) {
		c->json = json_loadb(c->body, c->body_len, 0, NULL);
		if (!json_is_object(c->json)) {
			json_decref(c->json);
			c->json = NULL;
		}
	} else if (c->pid == FP_KANNEL && c->query != NULL)
		c->scratch = post ? xasprintf("%s&%s", c->query, c->body)
				  : xstrdup(c->query);
	else if (post)
		c->scratch = xstrdup(c->body);
	if (c->scratch != NULL)
		fp_form_parse(&c->form, c->scratch);
}

/* Answers a path no provider has like an API gateway would. */
static void
fp_not_found(struct fp_call *c)
{
	fp_answer_json(c, 404,
	    json_pack("{s:i, s:s}", "status", 404, "message",
		"The requested resource was not found"));
	c->outcome = "no such endpoint";
}

/* Every request to the provider port: script or answer, record, reply. */
static void
fp_on_request(struct evhttp_request *req, void *arg)
{
	struct fp *fp = arg;
	struct fp_call c;
	struct fp_rule *r = NULL;
	bool owned = false;

	fp_call_init(&c, fp, req);
	fp->st.requests[c.pid >= 0 ? c.pid : FP_NPROV]++;
	if (c.pid < 0)
		fp_not_found(&c);
	else {
		r = fp_rule_take(&c, &owned);
		if (r != NULL) {
			c.delay_ms = r->delay_ms;
			c.drop = r->drop;
		}
		if (c.drop) {
			c.outcome = "dropped";
			fp->st.dropped++;
		} else if (r == NULL || !fp_rule_answer(&c, r))
			fp_providers[c.pid].answer(&c);
	}
	fp_record(&c);
	if (c.accepted && !c.drop &&
	    json_array_size(json_object_get(fp->conf[c.pid], "auto")) > 0)
		fp_auto_callbacks(&c);
	if (c.delay_ms > 0 || c.drop) {
		if (c.delay_ms > 0)
			fp->st.delayed++;
		fp_delay(&c);
	} else
		evhttp_send_reply(req, c.status, NULL, NULL);
	if (owned)
		fp_rule_free(r);
	json_decref(c.json);
	fp_form_clear(&c.form);
	free(c.scratch);
	free(c.body);
}

/* ---------------------------------------------------------------------
 * start and stop
 */

static void
fp_usage(FILE *f)
{
	fprintf(f,
	    "usage: fakeprov [--port N] [--control-port N] [--log FILE]\n"
	    "                [--daemon-url URL] [--telnyx-key BASE64]"
	    " [--bind ADDR]\n");
}

static void
fp_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

/* Binds http to addr:port; returns the port bound, or -1. */
static int
fp_bind(struct evhttp *http, const char *addr, int port)
{
	struct evhttp_bound_socket *s;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if ((s = evhttp_bind_socket_with_handle(http, addr,
		 (unsigned short)port)) == NULL)
		return -1;
	if (getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss,
		&len) == -1)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

struct fp_args {
	int port;
	int ctl_port;
	const char *log;
	const char *daemon_url;
	const char *telnyx_key;
	const char *bind;
};

static int
fp_parse_args(int argc, char **argv, struct fp_args *a)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"control-port", required_argument, NULL, 'c'},
	    {"log", required_argument, NULL, 'l'},
	    {"daemon-url", required_argument, NULL, 'd'},
	    {"telnyx-key", required_argument, NULL, 't'},
	    {"bind", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(a, 0, sizeof(*a));
	a->log = "/dev/null";
	a->bind = "127.0.0.1";
	while (
	    (ch = getopt_long(argc, argv, "p:c:l:d:t:b:h", opts, NULL)) != -1)
		switch (ch) {
		case 'p':
			a->port = atoi(optarg);
			break;
		case 'c':
			a->ctl_port = atoi(optarg);
			break;
		case 'l':
			a->log = optarg;
			break;
		case 'd':
			a->daemon_url = optarg;
			break;
		case 't':
			a->telnyx_key = optarg;
			break;
		case 'b':
			a->bind = optarg;
			break;
		case 'h':
			fp_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	return optind == argc ? 0 : -1;
}

/* Sets up everything of fp from a; 0 / -1 (message on stderr). */
static int
fp_start(struct fp *fp, const struct fp_args *a)
{
	unsigned char rnd[8];
	struct timeval tv = {0, FP_LOG_FLUSH_MS * 1000};
	struct event_config *cfg;
	int i;

	TAILQ_INIT(&fp->delayed);
	TAILQ_INIT(&fp->cbs);
	for (i = 0; i < FP_NPROV; i++) {
		TAILQ_INIT(&fp->rules[i]);
		fp->conf[i] = json_loads(fp_default_conf[i], 0, NULL);
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	fp_hex(rnd, sizeof(rnd), false, fp->id_prefix);
	fp->telnyx_wrong = fp_ed25519_generate();
	if (a->telnyx_key != NULL
		? fp_telnyx_load_key(fp, a->telnyx_key) == -1
		: (fp->telnyx_key = fp_ed25519_generate()) == NULL) {
		fprintf(stderr,
		    "fakeprov: --telnyx-key: base64 of a 32-byte "
		    "Ed25519 seed\n");
		return -1;
	}
	fp->daemon_url = a->daemon_url != NULL ? xstrdup(a->daemon_url) : NULL;
	fp->log_fd =
	    open(a->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fp->log_fd == -1) {
		fprintf(stderr, "fakeprov: %s: %s\n", a->log, strerror(errno));
		return -1;
	}
	fp->log = evbuffer_new();
	/* the changelist folds evhttp's enable/disable of a connection's
	 * events within one loop turn into one epoll_ctl (or none) */
	cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	fp->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	fp->http = evhttp_new(fp->base);
	fp->ctl = evhttp_new(fp->base);
	evhttp_set_max_body_size(fp->http, FP_MAX_BODY);
	evhttp_set_allowed_methods(fp->http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
		EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(fp->http, fp_on_request, fp);
	evhttp_set_gencb(fp->ctl, fp_on_control, fp);
	if ((fp->port = fp_bind(fp->http, a->bind, a->port)) < 0 ||
	    (fp->ctl_port = fp_bind(fp->ctl, a->bind, a->ctl_port)) < 0) {
		fprintf(stderr, "fakeprov: bind %s: %s\n", a->bind,
		    strerror(errno));
		return -1;
	}
	fp->log_timer =
	    event_new(fp->base, -1, EV_PERSIST, fp_log_timer_cb, fp);
	event_add(fp->log_timer, &tv);
	fp->sig_term = evsignal_new(fp->base, SIGTERM, fp_signal_cb, fp->base);
	fp->sig_int = evsignal_new(fp->base, SIGINT, fp_signal_cb, fp->base);
	event_add(fp->sig_term, NULL);
	event_add(fp->sig_int, NULL);
	return 0;
}

/* Frees everything; answers nothing still pending. */
static void
fp_stop(struct fp *fp)
{
	struct fp_delayed *d;
	struct fp_rule *r;
	int i;

	while (!TAILQ_EMPTY(&fp->cbs))
		fp_cb_free(TAILQ_FIRST(&fp->cbs));
	while ((d = TAILQ_FIRST(&fp->delayed)) != NULL) {
		/* a request the client gave up on is ours to free; the others
		 * go with their connections in evhttp_free() */
		if (evhttp_request_get_connection(d->req) == NULL)
			evhttp_request_free(d->req);
		fp_delayed_free(d);
	}
	for (i = 0; i < FP_NPROV; i++) {
		while ((r = TAILQ_FIRST(&fp->rules[i])) != NULL) {
			TAILQ_REMOVE(&fp->rules[i], r, entry);
			fp_rule_free(r);
		}
		json_decref(fp->conf[i]);
	}
	if (fp->http != NULL)
		evhttp_free(fp->http);
	if (fp->ctl != NULL)
		evhttp_free(fp->ctl);
	if (fp->log != NULL) {
		fp_log_flush(fp);
		evbuffer_free(fp->log);
	}
	if (fp->log_fd >= 0)
		close(fp->log_fd);
	if (fp->log_timer != NULL)
		event_free(fp->log_timer);
	if (fp->sig_term != NULL)
		event_free(fp->sig_term);
	if (fp->sig_int != NULL)
		event_free(fp->sig_int);
	if (fp->base != NULL)
		event_base_free(fp->base);
	EVP_PKEY_free(fp->telnyx_key);
	EVP_PKEY_free(fp->telnyx_wrong);
	free(fp->daemon_url);
}

int
main(int argc, char **argv)
{
	struct fp fp;
	struct fp_args a;
	int rc = 0;

	if (fp_parse_args(argc, argv, &a) == -1) {
		fp_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&fp, 0, sizeof(fp));
	fp.log_fd = -1;
	if (fp_start(&fp, &a) == -1)
		rc = 1;
	else {
		printf("fakeprov listening port=%d control=%d\n", fp.port,
		    fp.ctl_port);
		fflush(stdout);
		event_base_dispatch(fp.base);
	}
	fp_stop(&fp);
	libevent_global_shutdown();
	return rc;
}
