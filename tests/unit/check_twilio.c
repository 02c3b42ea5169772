/*
 * check_twilio.c - unit tests of the Twilio adapter (adapters/twilio.c),
 * the shared SMS driver (adapters/smshttp.c) and the HTTP client
 * (adapters/httpclient.c).
 *
 * The pure parts run on fixtures in tests/fixtures/twilio/, which
 * make-fixtures.py writes with Python's own form encoder and HMAC, so
 * requests and signatures are checked against an independent
 * implementation, and against Twilio's published signature vector.
 * Configuration tests build a struct config_section by hand and call
 * adapter_new() with no HTTP client, as --check-config does.
 *
 * The "httpclient" and "send" cases run a real evhttp server on
 * 127.0.0.1:0 in the test's own event_base (plus a raw listener that
 * drops connections), and drive libcurl through the loop: answers,
 * Retry-After, timeouts, refused and dropped connections, connection
 * reuse and caps, cancellation, and whole sends through the adapter.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "adapter.h"
#include "check_sms.h"
#include "check_suites.h"
#include "compat.h"
#include "config.h"
#include "httpclient.h"
#include "json_fast.h"
#include "message.h"
#include "smshttp.h"

#define TW_ACCT	    "AC0123456789abcdef0123456789abcdef"
#define TW_TOKEN    "test-auth-token-0123456789abcdef"
#define TW_SK	    "SKfedcba9876543210fedcba9876543210"
#define TW_SKSECRET "test-api-key-secret"
#define TW_MG	    "MG00112233445566778899aabbccddeeff"
#define TW_FROM	    "+15550100000"
#define TW_TO	    "+15551230001"
#define TW_PUBLIC   "https://sms.example.org/" /* trailing '/' on purpose */
#define TW_INBOUND  "https://sms.example.org/webhooks/tw1/inbound"
#define TW_STATUS   "https://sms.example.org/webhooks/tw1/status"
#define TW_PATH	    "/2010-04-01/Accounts/" TW_ACCT "/Messages.json"
#define TW_SID	    "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* create-201.json */
/* Twilio's published vector (its webhooks-security documentation) */
#define TW_PV_URL  "https://mycompany.com/myapp.php?foo=1&bar=2"
#define TW_PV_SIG  "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
#define TW_WAIT_MS 5000 /* a test waiting longer than this has failed */
#define TW_MAX_KV  16

/* A [sender tw1] section built in memory. */
struct tw_sec {
	struct config_section sec;
	struct config_kv kv[TW_MAX_KV];
	char keys[TW_MAX_KV][64];
	char vals[TW_MAX_KV][512];
	char name[32], type[16], label[16];
};

/* A webhook request made from a fixture. */
struct tw_hook {
	char *body;
	struct evkeyvalq q;
	struct webhook_kv kv[64];
	struct webhook_kv hdr[2];
	char sig[128];
	struct webhook_req req;
};

/* What a done callback of httpc saw. */
struct tw_got {
	int calls;
	bool in_call; /* ran inside httpc_request/adapter_send: a bug */
	struct httpc_response resp;
	char body[512];
	char ctype[128];
	struct send_result res;
};

/* The loopback server of the "httpclient" and "send" cases. */
struct tw_srv {
	struct evhttp *http;
	struct evconnlistener *closer; /* accepts, reads, hangs up */
	unsigned port;
	unsigned closer_port;
	int hits;
	int mode; /* Twilio path: 0 created, 1 21610, 2 no answer, 3 429 */
	unsigned peers[64];
	char method[16];
	char uri[512];
	char auth[512];
	char ctype[128];
	char xtest[64];
	char *body;
	size_t body_len;
};

static struct tw_sec tw_sec;
static char tw_err[512];
static struct event_base *tw_base;
static struct httpc *tw_httpc;
static struct tw_srv tw_srv;
static bool tw_in_call;
static bool tw_expired;
static int tw_total; /* httpc callbacks so far */

/* Base pairs of a valid Twilio sender, then 'extra' (NULL-terminated). */
static void
tw_sec_make(const char *const *pairs)
{
	size_t i;

	memset(&tw_sec, 0, sizeof(tw_sec));
	strlcpy(tw_sec.name, "sender tw1", sizeof(tw_sec.name));
	strlcpy(tw_sec.type, "sender", sizeof(tw_sec.type));
	strlcpy(tw_sec.label, "tw1", sizeof(tw_sec.label));
	tw_sec.sec.file = "test.conf";
	tw_sec.sec.name = tw_sec.name;
	tw_sec.sec.type = tw_sec.type;
	tw_sec.sec.label = tw_sec.label;
	tw_sec.sec.line = 10;
	for (i = 0; pairs[2 * i] != NULL; i++) {
		ck_assert_uint_lt(i, TW_MAX_KV);
		strlcpy(tw_sec.keys[i], pairs[2 * i], sizeof(tw_sec.keys[i]));
		strlcpy(tw_sec.vals[i], pairs[2 * i + 1],
		    sizeof(tw_sec.vals[i]));
		tw_sec.kv[i].key = tw_sec.keys[i];
		tw_sec.kv[i].value = tw_sec.vals[i];
		tw_sec.kv[i].line = 11 + (int)i;
	}
	tw_sec.sec.kv = tw_sec.kv;
	tw_sec.sec.nkv = i;
}

/* An adapter on the section 'pairs'; NULL (error in tw_err) on failure. */
static struct adapter *
tw_adapter(const char *const *pairs, struct httpc *c, const char *public_url)
{
	struct adapter_env env = {
	    .base = tw_base,
	    .var_dir = "/tmp",
	    .public_url = public_url,
	    .httpc = c,
	};

	tw_sec_make(pairs);
	tw_err[0] = '\0';
	return adapter_new("twilio", "tw1", &env, &tw_sec.sec, tw_err,
	    sizeof(tw_err));
}

static const char *const tw_basic[] = {"provider", "twilio", "from", TW_FROM,
    "account_sid", TW_ACCT, "auth_token", TW_TOKEN, NULL};

static struct adapter *
tw_adapter_basic(void)
{
	struct adapter *ad = tw_adapter(tw_basic, NULL, TW_PUBLIC);

	ck_assert_msg(ad != NULL, "adapter_new: %s", tw_err);
	return ad;
}

/* Fills m: to, body (copied into a static buffer), no expiry. */
static void
tw_msg(struct out_msg *m, const char *to, const char *body)
{
	static char buf[4096];

	ck_assert_uint_lt(strlcpy(buf, body, sizeof(buf)), sizeof(buf));
	memset(m, 0, sizeof(*m));
	m->id = 42;
	m->channel = CHANNEL_SMS;
	strlcpy(m->to, to, sizeof(m->to));
	m->body = buf;
}

/*
 * Renders what build() made as make-fixtures.py writes it: request line,
 * headers, Content-Type, blank line, body, newline. Caller frees.
 */
static char *
tw_render(const struct smshttp_req *req)
{
	struct evbuffer *out = evbuffer_new();
	size_t i, len;
	char *s;

	evbuffer_add_printf(out, "%s %s\n", req->method, req->path);
	for (i = 0; i < req->nheaders; i++)
		evbuffer_add_printf(out, "%s\n", req->headers[i]);
	evbuffer_add_printf(out, "Content-Type: %s\n\n", req->content_type);
	evbuffer_add_buffer(out, req->body);
	evbuffer_add(out, "\n", 1);
	len = evbuffer_get_length(out);
	s = calloc(1, len + 1);
	evbuffer_remove(out, s, len);
	evbuffer_free(out);
	return s;
}

/* Builds msg with ad's provider state and compares with a fixture. */
static void
tw_check_request(struct adapter *ad, const struct out_msg *msg,
    const char *fixture)
{
	struct smshttp_req req;
	char err[256];
	char *got, *want;

	memset(&req, 0, sizeof(req));
	req.body = evbuffer_new();
	ck_assert_int_eq(twilio_provider.build(smshttp_prov(ad), msg,
			     smshttp_webhook_url(ad, WEBHOOK_STATUS), &req, err,
			     sizeof(err)),
	    0);
	got = tw_render(&req);
	want = cks_fixture("twilio", fixture);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	evbuffer_free(req.body);
}

/* Loads fixture NAME.form (+ NAME.sig) into h as a POST to 'url'. */
static void
tw_hook_load(struct tw_hook *h, const char *name, const char *url)
{
	struct evkeyval *kv;
	char file[128];
	char *sig;
	size_t n = 0;

	memset(h, 0, sizeof(*h));
	snprintf(file, sizeof(file), "%s.form", name);
	h->body = cks_fixture("twilio", file);
	TAILQ_INIT(&h->q);
	ck_assert_int_eq(evhttp_parse_query_str(h->body, &h->q), 0);
	TAILQ_FOREACH(kv, &h->q, next) {
		ck_assert_uint_lt(n, 64);
		h->kv[n].key = kv->key;
		h->kv[n++].value = kv->value;
	}
	snprintf(file, sizeof(file), "%s.sig", name);
	sig = cks_fixture("twilio", file);
	sig[strcspn(sig, "\n")] = '\0';
	strlcpy(h->sig, sig, sizeof(h->sig));
	free(sig);
	h->hdr[0].key = "X-Twilio-Signature";
	h->hdr[0].value = h->sig;
	h->req.method = "POST";
	h->req.url = url;
	h->req.body = h->body;
	h->req.body_len = strlen(h->body);
	h->req.peer = "127.0.0.1";
	h->req.params = h->kv;
	h->req.nparams = n;
	h->req.headers = h->hdr;
	h->req.nheaders = 1;
}

static void
tw_hook_free(struct tw_hook *h)
{
	evhttp_clear_headers(&h->q);
	free(h->body);
}

/* Twilio's published vector as a webhook_req (params point at statics). */
static void
tw_hook_vector(struct tw_hook *h, const char *url, const char *sig)
{
	static const struct webhook_kv params[] = {
	    {"CallSid", "CA1234567890ABCDE"},
	    {"Caller", "+12349013030"},
	    {"Digits", "1234"},
	    {"From", "+12349013030"},
	    {"To", "+18005551212"},
	};

	memset(h, 0, sizeof(*h));
	TAILQ_INIT(&h->q);
	memcpy(h->kv, params, sizeof(params));
	strlcpy(h->sig, sig, sizeof(h->sig));
	h->hdr[0].key = "X-Twilio-Signature";
	h->hdr[0].value = h->sig;
	h->req.method = "POST";
	h->req.url = url;
	h->req.body = "";
	h->req.params = h->kv;
	h->req.nparams = sizeof(params) / sizeof(params[0]);
	h->req.headers = h->hdr;
	h->req.nheaders = 1;
}

/* ---------------------------------------------------------------- */
/* config */

START_TEST(test_twilio_config_ok)
{
	struct adapter *ad = tw_adapter_basic();

	ck_assert_str_eq(ad->ops->name, "twilio");
	ck_assert_str_eq(smshttp_webhook_url(ad, WEBHOOK_STATUS), TW_STATUS);
	ck_assert_str_eq(smshttp_webhook_url(ad, WEBHOOK_INBOUND), TW_INBOUND);
	ck_assert_ptr_nonnull(smshttp_prov(ad));
	adapter_free(ad);
	/* without [http] public_url there are no webhook URLs */
	ad = tw_adapter(tw_basic, NULL, NULL);
	ck_assert_ptr_nonnull(ad);
	ck_assert_ptr_null(smshttp_webhook_url(ad, WEBHOOK_STATUS));
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_config_missing_account_sid)
{
	static const char *const p[] = {"provider", "twilio", "from", TW_FROM,
	    "auth_token", TW_TOKEN, NULL};

	ck_assert_ptr_null(tw_adapter(p, NULL, NULL));
	ck_assert_str_eq(tw_err,
	    "test.conf:10: [sender tw1] needs "
	    "account_sid = ...");
}
END_TEST

START_TEST(test_twilio_config_bad_account_sid)
{
	static const char *const p[] = {"provider", "twilio", "from", TW_FROM,
	    "account_sid", "AC0123", "auth_token", TW_TOKEN, NULL};

	ck_assert_ptr_null(tw_adapter(p, NULL, NULL));
	ck_assert_str_eq(tw_err,
	    "test.conf:13: account_sid must be AC "
	    "followed by 32 hex digits");
}
END_TEST

START_TEST(test_twilio_config_missing_auth_token)
{
	static const char *const p[] = {"provider", "twilio", "from", TW_FROM,
	    "account_sid", TW_ACCT, NULL};

	ck_assert_ptr_null(tw_adapter(p, NULL, NULL));
	ck_assert_str_eq(tw_err,
	    "test.conf:10: [sender tw1] needs "
	    "auth_token = ...");
}
END_TEST

START_TEST(test_twilio_config_bad_base_url)
{
	static const char *const bad[] = {"ftp://api.twilio.com",
	    "api.twilio.com", "http://", "https://x/?a=1", NULL};
	const char *p[] = {"provider", "twilio", "from", TW_FROM, "account_sid",
	    TW_ACCT, "auth_token", TW_TOKEN, "base_url", NULL, NULL};
	char want[256];
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		p[9] = bad[i];
		ck_assert_ptr_null(tw_adapter(p, NULL, NULL));
		snprintf(want, sizeof(want),
		    "test.conf:15: base_url = '%s' is not an http:// or "
		    "https:// URL",
		    bad[i]);
		ck_assert_msg(strncmp(tw_err, want, strlen(want)) == 0,
		    "got '%s'", tw_err);
	}
}
END_TEST

START_TEST(test_twilio_config_unknown_key)
{
	static const char *const p[] = {"provider", "twilio", "from", TW_FROM,
	    "account_sid", TW_ACCT, "auth_token", TW_TOKEN, "acount_sid",
	    TW_ACCT, NULL};

	ck_assert_ptr_null(tw_adapter(p, NULL, NULL));
	ck_assert_str_eq(tw_err,
	    "test.conf:15: unknown key 'acount_sid' in [sender tw1]");
}
END_TEST

START_TEST(test_twilio_config_needs_sender)
{
	static const char *const p[] = {"provider", "twilio", "account_sid",
	    TW_ACCT, "auth_token", TW_TOKEN, NULL};
	static const char *const half[] = {"provider", "twilio", "from",
	    TW_FROM, "account_sid", TW_ACCT, "auth_token", TW_TOKEN,
	    "api_key_sid", TW_SK, NULL};
	static const char *const badmg[] = {"provider", "twilio", "account_sid",
	    TW_ACCT, "auth_token", TW_TOKEN, "messaging_service_sid", TW_ACCT,
	    NULL};
	static const char *const timeout[] = {"provider", "twilio", "from",
	    TW_FROM, "account_sid", TW_ACCT, "auth_token", TW_TOKEN, "timeout",
	    "soon", NULL};

	ck_assert_ptr_null(tw_adapter(p, NULL, NULL));
	ck_assert_str_eq(tw_err,
	    "test.conf:10: [sender tw1] needs from = ... "
	    "or messaging_service_sid = ...");
	ck_assert_ptr_null(tw_adapter(half, NULL, NULL));
	ck_assert_str_eq(tw_err,
	    "test.conf:15: api_key_sid and "
	    "api_key_secret go together");
	ck_assert_ptr_null(tw_adapter(badmg, NULL, NULL));
	ck_assert_str_eq(tw_err,
	    "test.conf:14: messaging_service_sid must "
	    "be MG followed by 32 hex digits");
	ck_assert_ptr_null(tw_adapter(timeout, NULL, NULL));
	ck_assert_msg(strncmp(tw_err, "test.conf:15: ", 14) == 0, "got '%s'",
	    tw_err);
}
END_TEST

/* Under --check-config there is no client: init works, send refuses. */
START_TEST(test_twilio_config_check_only)
{
	struct adapter *ad = tw_adapter_basic();
	struct out_msg m;
	struct tw_got g = {0};

	tw_msg(&m, TW_TO, "hi");
	ck_assert_int_eq(adapter_send(ad, &m, NULL, &g), -1);
	ck_assert_uint_eq(ad->in_flight, 0);
	adapter_free(ad);
}
END_TEST

/* ---------------------------------------------------------------- */
/* request */

START_TEST(test_twilio_request_plain)
{
	struct adapter *ad = tw_adapter_basic();
	struct out_msg m;

	tw_msg(&m, TW_TO, "Hello from outreachd");
	tw_check_request(ad, &m, "request-plain.txt");
	adapter_free(ad);
}
END_TEST

/* Emoji, accents, '&', '=', '+', '%', LF and CRLF survive exactly. */
START_TEST(test_twilio_request_utf8)
{
	struct adapter *ad = tw_adapter_basic();
	char *body = cks_fixture("twilio", "body-utf8.txt");
	struct out_msg m;

	ck_assert_ptr_nonnull(strstr(body, "\r\n"));
	tw_msg(&m, TW_TO, body);
	tw_check_request(ad, &m, "request-utf8.txt");
	free(body);
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_request_api_key)
{
	static const char *const p[] = {"provider", "twilio", "from", TW_FROM,
	    "account_sid", TW_ACCT, "auth_token", TW_TOKEN, "api_key_sid",
	    TW_SK, "api_key_secret", TW_SKSECRET, NULL};
	struct adapter *ad = tw_adapter(p, NULL, NULL);
	struct out_msg m;

	ck_assert_msg(ad != NULL, "%s", tw_err);
	tw_msg(&m, TW_TO, "Hello from outreachd");
	tw_check_request(ad, &m, "request-apikey.txt");
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_request_messaging_service)
{
	static const char *const p[] = {"provider", "twilio", "account_sid",
	    TW_ACCT, "auth_token", TW_TOKEN, "messaging_service_sid", TW_MG,
	    NULL};
	struct adapter *ad = tw_adapter(p, NULL, NULL);
	struct out_msg m;

	ck_assert_msg(ad != NULL, "%s", tw_err);
	tw_msg(&m, TW_TO, "Hello from outreachd");
	tw_check_request(ad, &m, "request-service.txt");
	adapter_free(ad);
}
END_TEST

/* The body of the request build() makes for m (caller frees). */
static char *
tw_build_body(struct adapter *ad, const struct out_msg *m)
{
	struct smshttp_req req;
	char err[256];
	size_t len;
	char *s;

	memset(&req, 0, sizeof(req));
	req.body = evbuffer_new();
	ck_assert_int_eq(twilio_provider.build(smshttp_prov(ad), m, NULL, &req,
			     err, sizeof(err)),
	    0);
	len = evbuffer_get_length(req.body);
	s = calloc(1, len + 1);
	evbuffer_remove(req.body, s, len);
	evbuffer_free(req.body);
	return s;
}

/* ValidityPeriod only when the message expires within 1..36000 s. */
START_TEST(test_twilio_request_validity)
{
	struct adapter *ad = tw_adapter_basic();
	struct out_msg m;
	char *b;

	tw_msg(&m, TW_TO, "x");
	m.expires_at = msg_now_ms() + 600500;
	b = tw_build_body(ad, &m);
	ck_assert_str_eq(b,
	    "To=%2B15551230001&From=%2B15550100000&Body=x&"
	    "ValidityPeriod=600");
	free(b);
	m.expires_at = msg_now_ms() + 36002000LL; /* 36001 s */
	b = tw_build_body(ad, &m);
	ck_assert_ptr_null(strstr(b, "ValidityPeriod"));
	free(b);
	m.expires_at = msg_now_ms() - 1000;
	b = tw_build_body(ad, &m);
	ck_assert_ptr_null(strstr(b, "ValidityPeriod"));
	free(b);
	adapter_free(ad);
}
END_TEST

/*
 * smshttp_form_add() (Twilio's, Vonage's and Kannel's fields) writes the
 * bytes evhttp_uriencode() makes, in both space modes, for every byte
 * value and for random strings of them; sep and key go first as given.
 */
START_TEST(test_form_add_matches_evhttp_uriencode)
{
	struct evbuffer *b = evbuffer_new();
	char value[300], want[1024], *enc;
	unsigned seed = 12345;
	size_t len, i;
	int round, plus;

	for (round = 0; round < 2000; round++) {
		if (round < 255) { /* each byte value once, in a word */
			snprintf(value, sizeof(value), "a%cz", round + 1);
		} else {
			len = (size_t)(rand_r(&seed) % 299);
			for (i = 0; i < len; i++) /* every byte but NUL */
				value[i] = (char)(1 + rand_r(&seed) % 255);
			value[len] = '\0';
		}
		for (plus = 0; plus < 2; plus++) {
			enc = evhttp_uriencode(value, -1, plus);
			ck_assert_ptr_nonnull(enc);
			snprintf(want, sizeof(want), "&Body=%s", enc);
			free(enc);
			evbuffer_drain(b, evbuffer_get_length(b));
			smshttp_form_add(b, '&', "Body", value, plus);
			ck_assert_uint_eq(evbuffer_get_length(b), strlen(want));
			ck_assert_int_eq(
			    memcmp(evbuffer_pullup(b, -1), want, strlen(want)),
			    0);
		}
	}
	evbuffer_drain(b, evbuffer_get_length(b));
	smshttp_form_add(b, '\0', "To", "+1 555", true);
	smshttp_form_add(b, '&', "Body", "", true);
	ck_assert_uint_eq(evbuffer_get_length(b), 17);
	ck_assert_int_eq(
	    memcmp(evbuffer_pullup(b, -1), "To=%2B1+555&Body=", 17), 0);
	evbuffer_free(b);
}
END_TEST

/* The message's own from wins; a message without To cannot be sent. */
START_TEST(test_twilio_request_from_and_to)
{
	struct adapter *ad = tw_adapter_basic();
	struct smshttp_req req;
	struct out_msg m;
	char err[256] = "";
	char *b;

	tw_msg(&m, TW_TO, "x");
	strlcpy(m.from, "+15550109999", sizeof(m.from));
	b = tw_build_body(ad, &m);
	ck_assert_str_eq(b, "To=%2B15551230001&From=%2B15550109999&Body=x");
	free(b);
	tw_msg(&m, "", "x");
	memset(&req, 0, sizeof(req));
	req.body = evbuffer_new();
	ck_assert_int_eq(twilio_provider.build(smshttp_prov(ad), &m, NULL, &req,
			     err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "message has no To number");
	evbuffer_free(req.body);
	adapter_free(ad);
}
END_TEST

/* ---------------------------------------------------------------- */
/* classify */

/* Classifies an HTTP answer with the body of fixture 'file' (or none). */
static void
tw_classify(int status, const char *file, unsigned retry_after,
    struct send_result *res)
{
	cks_classify_file(&twilio_provider, status, file, retry_after, res);
}

START_TEST(test_twilio_classify_accepted)
{
	struct send_result res;

	tw_classify(201, "create-201.json", 0, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	ck_assert_str_eq(res.provider_id, TW_SID);
	ck_assert_uint_eq(res.flags, 0);
	ck_assert(!res.uncertain);
	tw_classify(201, "create-201-service.json", 0, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	ck_assert_str_eq(res.provider_id, TW_SID);
}
END_TEST

/* ---------------------------------------------------------------- */
/* jpeek_object() (core/json_fast.c): what twilio_classify reads the
 * answer with */

/* jpeek_object() on s; when it answers (0), jansson must accept s and
 * agree on "code" (integer) and "sid" (string). Returns its answer. */
static int
tw_peek_agrees(const char *s, size_t len)
{
	struct jpeek_field f[2] = {{.name = "code", .type = JPEEK_INT},
	    {.name = "sid", .type = JPEEK_STRING}};
	json_t *j, *code, *sid;
	int rc;

	rc = jpeek_object(s, len, f, 2);
	j = json_loadb(s, len, 0, NULL);
	if (rc == 0) {
		ck_assert_msg(j != NULL,
		    "jansson refuses what jpeek_object took: %s", s);
		code = json_object_get(j, "code");
		sid = json_object_get(j, "sid");
		ck_assert_int_eq(f[0].found, json_is_integer(code));
		if (f[0].found)
			ck_assert(f[0].i == json_integer_value(code));
		ck_assert_int_eq(f[1].found, json_is_string(sid));
		if (f[1].found && !f[1].s_escaped)
			ck_assert(f[1].len == strlen(json_string_value(sid)) &&
			    memcmp(f[1].s, json_string_value(sid), f[1].len) ==
				0);
	} else
		ck_assert(!f[0].found && !f[1].found);
	json_decref(j);
	return rc;
}

START_TEST(test_twilio_jsonpeek_agrees_with_jansson)
{
	/* 0: jpeek_object reads it; -1: left to jansson (which may refuse) */
	static const struct {
		const char *s;
		int want;
	} cases[] = {
	    {"{\"code\": 21211, \"message\": \"m\", \"status\": 400}", 0},
	    {"  {\"sid\" : \"SMx\" }  \r\n", 0},
	    {"{\"sid\":\"a\",\"sid\":\"b\"}", 0},
	    {"{\"sid\":\"a\",\"sid\":5}", 0},
	    {"{\"code\":-5,\"code\":7}", 0},
	    {"{\"code\":1.5}", 0},
	    {"{\"code\":true,\"sid\":null}", 0},
	    {"{\"a\":[1,-0.25,{\"b\":null,\"c\":[]}],\"sid\":\"x\"}", 0},
	    {"{\"sid\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", 0},
	    {"{\"sid\":\"a\\nb\\\"c\\/\"}", 0},
	    {"{}", 0},
	    {"[1,2,\"sid\"]", 0},
	    {"{\"code\":999999999999999999}", 0},
	    {"{\"code\":1e3}", -1},
	    {"{\"code\":1234567890123456789012}", -1},
	    {"{\"s\\u0069d\":\"x\"}", -1},
	    {"{\"sid\":\"\\u00e9\"}", -1},
	    {"{\"sid\":\"\xc3\"}", -1},
	    {"{\"sid\":\"\xed\xa0\x80\"}", -1},
	    {"{\"sid\":\"\xc0\xaf\"}", -1},
	    {"{\"sid\":\"\xf4\x90\x80\x80\"}", -1},
	    {"{\"sid\":\"a\x01\"}", -1},
	    {"{\"sid\":\"a\\x\"}", -1},
	    {"{\"a\":1,}", -1},
	    {"{\"a\":01}", -1},
	    {"{\"a\":-}", -1},
	    {"{\"a\":1.}", -1},
	    {"{\"a\" 1}", -1},
	    {"{\"a\":tru}", -1},
	    {"{a:1}", -1},
	    {"[1,]", -1},
	    {"\"sid\"", -1},
	    {"17", -1},
	    {"", -1},
	    {"   ", -1},
	    {"{\"a\":1} x", -1},
	    {"{\"a\":1}{}", -1},
	    {"{\"sid\":\"x\"", -1},
	    /* what jsmn, even strict, lets through and the glue must not */
	    {"{\"a\":1 \"sid\":\"x\"}", -1},
	    {"{\"a\":\"y\" \"sid\":\"x\"}", -1},
	    {"{\"a\" \"sid\"}", -1},
	    {"{\"a\":1,,\"sid\":\"x\"}", -1},
	    {"{,\"sid\":\"x\"}", -1},
	    {"{\"sid\"::\"x\"}", -1},
	    {"{:\"x\"}", -1},
	    {"{\"a\":1:2}", -1},
	    {"[\"a\":1]", -1},
	    {"[1 2]", -1},
	    {"[,1]", -1},
	    {"[1,,2]", -1},
	    {"{\"a\":00}", -1},
	    {"{\"a\":-01}", -1},
	    {"{\"a\":--1}", -1},
	    {"{\"a\":+1}", -1},
	    {"{\"a\":1.2.3}", -1},
	    {"{\"a\":.5}", -1},
	    {"{\"a\":0x1F}", -1},
	    {"{\"a\":truex}", -1},
	    {"{\"a\":nul}", -1},
	    {"{\"a\":nan}", -1},
	    {"{\"a\":t}", -1},
	    {"{\"sid\":\"x\"} \"y\"", -1},
	    {"{\"sid\":\"x\"} 1 ", -1},
	    {"{\"sid\":\"x\"}]", -1},
	    {"{\"a\":[1,2}]", -1},
	    {"{\"a\":{\"b\":1]}", -1},
	    {"{\"s\x01id\":\"x\"}", -1},
	    {"{\"sid\":\"a\tb\"}", -1},
	    {"{\"sid\":\"\xff\"}", -1},
	    {"{\"sid\":\"\xe2\x82\"}", -1},
	    {"{\"sid\":\"\\\\u0041\"}", 0},
	    {"{\"sid\":\"x\x7f\"}", 0},
	    {"{\"code\":-0,\"sid\":\"\"}", 0},
	};
	char deep[256], twilio[1024];
	size_t i;
	int d;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(tw_peek_agrees(cases[i].s, strlen(cases[i].s)) ==
			cases[i].want,
		    "case %zu: %s", i, cases[i].s);
	/* a NUL byte inside or after the text */
	ck_assert_int_eq(tw_peek_agrees("{\"sid\":\"a\0b\"}", 13), -1);
	ck_assert_int_eq(tw_peek_agrees("{\"sid\":\"ab\"}\0", 13), -1);
	/* past JPEEK_DEPTH_MAX: jansson's to judge */
	for (d = 0; d < 70; d++)
		deep[d] = '[';
	for (d = 0; d < 70; d++)
		deep[70 + d] = ']';
	ck_assert_int_eq(tw_peek_agrees(deep, 140), -1);
	ck_assert_int_eq(tw_peek_agrees(deep + 10, 120), 0);
	/* the answer fakeprov and Twilio give, as the bench sees it */
	snprintf(twilio, sizeof(twilio),
	    "{\"account_sid\":\"AC%s\",\"api_version\":\"2010-04-01\","
	    "\"body\":\"burst 1\",\"date_created\":\"Mon, 07 Dec 2026 "
	    "02:00:00 +0000\",\"date_sent\":null,\"error_code\":null,"
	    "\"num_segments\":\"1\",\"price\":null,\"sid\":\"%s\","
	    "\"subresource_uris\":{\"media\":\"/2010-04-01/Accounts/x/"
	    "Media.json\"},\"to\":\"+15551230001\"}",
	    "0123456789abcdef0123456789abcdef", TW_SID);
	ck_assert_int_eq(tw_peek_agrees(twilio, strlen(twilio)), 0);
}
END_TEST

/* A 201 whose sid jpeek_object leaves to jansson, or that is too long. */
START_TEST(test_twilio_classify_unusual_sid)
{
	struct httpc_response resp;
	struct send_result res;
	char body[512];

	memset(&resp, 0, sizeof(resp));
	resp.status = 201;
	resp.body = body;
	snprintf(body, sizeof(body), "{\"sid\":\"SM\\u0031\\/2\"}");
	resp.body_len = strlen(body);
	twilio_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	ck_assert_str_eq(res.provider_id, "SM1/2");
	snprintf(body, sizeof(body), "{\"sid\":\"SM%0128d\"}", 7);
	resp.body_len = strlen(body);
	twilio_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
	snprintf(body, sizeof(body), "{\"sid\":\"SM%0125d\"}", 7);
	resp.body_len = strlen(body);
	twilio_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_ACCEPTED);
	ck_assert_uint_eq(strlen(res.provider_id), 127);
	snprintf(body, sizeof(body), "{\"sid\":\"\"}");
	resp.body_len = strlen(body);
	twilio_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
}
END_TEST

START_TEST(test_twilio_classify_opted_out)
{
	struct send_result res;

	tw_classify(400, "error-21610.json", 0, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 21610);
	ck_assert_uint_eq(res.flags, SEND_F_OPTED_OUT);
}
END_TEST

/* Permanent codes; Twilio's messages (with numbers) never reach text. */
START_TEST(test_twilio_classify_permanent)
{
	static const int codes[] = {21211, 21614, 21612, 21635, 21408, 21606,
	    21608};
	struct httpc_response resp;
	struct send_result res;
	char file[64], body[256];
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		snprintf(file, sizeof(file), "error-%d.json", codes[i]);
		tw_classify(400, file, 0, &res);
		ck_assert_int_eq(res.outcome, SEND_PERMANENT);
		ck_assert_int_eq(res.code, codes[i]);
		ck_assert_uint_eq(res.flags, 0);
		ck_assert_msg(strstr(res.text, "+1555") == NULL, "%s",
		    res.text);
	}
	/* codes Twilio reports at create time less often, inline bodies */
	memset(&resp, 0, sizeof(resp));
	resp.status = 400;
	resp.body = body;
	for (i = 0; i < 2; i++) {
		snprintf(body, sizeof(body),
		    "{\"code\": %d, \"message\": \"m\", \"status\": 400}",
		    i == 0 ? 30006 : 30034);
		resp.body_len = strlen(body);
		twilio_provider.classify(NULL, &resp, &res);
		ck_assert_int_eq(res.outcome, SEND_PERMANENT);
		ck_assert_int_eq(res.code, i == 0 ? 30006 : 30034);
	}
}
END_TEST

START_TEST(test_twilio_classify_rate_limited)
{
	struct send_result res;

	/* HTTP 429 (Twilio 20429) keeps code 429: dispatch paces on it */
	tw_classify(429, "error-20429.json", 7, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 429);
	ck_assert_uint_eq(res.retry_after, 7);
	/* a bare 429 (a proxy's) is transient too */
	tw_classify(429, NULL, 3, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 429);
	ck_assert_uint_eq(res.retry_after, 3);
	/* 20429 in a 400 keeps its Retry-After and slows the sender too */
	tw_classify(400, "error-20429.json", 2, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_uint_eq(res.retry_after, 2);
	ck_assert_uint_eq(res.flags, SEND_F_RATE_LIMITED);
}
END_TEST

/*
 * 20003 (HTTP 401) refuses the sender's credentials: the table says what
 * the driver does (the message held, the sender paused for Retry-After),
 * where it used to say "permanent" while every 401 was held anyway.
 */
START_TEST(test_twilio_classify_auth_refused)
{
	struct send_result res;

	tw_classify(401, "error-20003.json", 30, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 20003);
	ck_assert_uint_eq(res.flags, SEND_F_SENDER_BROKEN);
	ck_assert_uint_eq(res.retry_after, 30);
	ck_assert_str_eq(res.text, "twilio 20003: authentication failed");
}
END_TEST

START_TEST(test_twilio_classify_queue_full)
{
	struct httpc_response resp;
	struct send_result res;
	const char *body = "{\"code\":30001,\"status\":400}";

	tw_classify(400, "error-21611.json", 0, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 21611);
	memset(&resp, 0, sizeof(resp));
	resp.status = 400;
	resp.body = body;
	resp.body_len = strlen(body);
	twilio_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 30001);
}
END_TEST

START_TEST(test_twilio_classify_server_error)
{
	struct send_result res;

	tw_classify(500, "error-20500.json", 0, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 20500);
	ck_assert(!res.uncertain);
	tw_classify(503, NULL, 30, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(res.code, 503);
	ck_assert_uint_eq(res.retry_after, 30);
	tw_classify(504, NULL, 0, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
}
END_TEST

START_TEST(test_twilio_classify_transport)
{
	struct httpc_response resp;
	struct send_result res;

	memset(&resp, 0, sizeof(resp));
	resp.body = "";
	resp.curl_code = CURLE_OPERATION_TIMEDOUT;
	resp.timed_out = true;
	resp.maybe_sent = true;
	twilio_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
	/* a connect timeout: nothing was sent */
	resp.maybe_sent = false;
	twilio_provider.classify(NULL, &resp, &res);
	ck_assert(!res.uncertain);
	memset(&resp, 0, sizeof(resp));
	resp.body = "";
	resp.curl_code = CURLE_COULDNT_CONNECT;
	resp.connect_failed = true;
	twilio_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(!res.uncertain);
	memset(&resp, 0, sizeof(resp));
	resp.body = "";
	resp.curl_code = CURLE_GOT_NOTHING;
	resp.maybe_sent = true;
	twilio_provider.classify(NULL, &resp, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
}
END_TEST

START_TEST(test_twilio_classify_unknown)
{
	struct send_result res;

	tw_classify(400, "error-21617.json", 0, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 21617);
	tw_classify(404, NULL, 0, &res);
	ck_assert_int_eq(res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(res.code, 404);
	/* a 2xx without a sid: maybe sent, cannot be matched */
	tw_classify(201, NULL, 0, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
	ck_assert(res.uncertain);
	/* no redirect is followed; a 3xx is a configuration problem */
	tw_classify(301, NULL, 0, &res);
	ck_assert_int_eq(res.outcome, SEND_TRANSIENT);
}
END_TEST

/* ---------------------------------------------------------------- */
/* webhook */

START_TEST(test_twilio_verify_published_vector)
{
	static const char *const p[] = {"provider", "twilio", "from", TW_FROM,
	    "account_sid", TW_ACCT, "auth_token", "12345", NULL};
	struct adapter *ad = tw_adapter(p, NULL, NULL);
	struct tw_hook h;
	char err[256];

	ck_assert_ptr_nonnull(ad);
	tw_hook_vector(&h, TW_PV_URL, TW_PV_SIG);
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), 0);
	/* the same parameters in another order sign the same */
	h.kv[0] = (struct webhook_kv){"To", "+18005551212"};
	h.kv[4] = (struct webhook_kv){"CallSid", "CA1234567890ABCDE"};
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), 0);
	/* a tampered parameter */
	h.kv[2].value = "1235";
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "X-Twilio-Signature does not match");
	adapter_free(ad);
}
END_TEST

/*
 * As in Twilio's SDKs, the URL is accepted with its port removed or the
 * scheme's default port added. Signatures made by make-fixtures' signer.
 */
START_TEST(test_twilio_verify_port_variants)
{
	static const char *const p[] = {"provider", "twilio", "from", TW_FROM,
	    "account_sid", TW_ACCT, "auth_token", "12345", NULL};
	static const struct {
		const char *url, *sig;
		int want;
	} cases[] = {
	    {"https://mycompany.com:443/myapp.php?foo=1&bar=2", TW_PV_SIG, 0},
	    {TW_PV_URL, "EpDEmp1PyjDYp77YxYU3GILBWzE=", 0},
	    {"http://mycompany.com/myapp.php?foo=1&bar=2",
		"boT12oXXJ0BuzO2U/6iCqFdh2Do=", 0},
	    {"https://mycompany.com:8443/myapp.php?foo=1&bar=2", TW_PV_SIG, 0},
	    {"https://mycompany.com:8443/myapp.php?foo=1&bar=2",
		"SffuNP6bC3hHFCUbsco6GyaPyas=", 0},
	    {TW_PV_URL, "SffuNP6bC3hHFCUbsco6GyaPyas=", -1},
	    {"https://mycompany.com/myapp.php?foo=1&bar=3", TW_PV_SIG, -1},
	};
	struct adapter *ad = tw_adapter(p, NULL, NULL);
	struct tw_hook h;
	char err[256];
	size_t i;

	ck_assert_ptr_nonnull(ad);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tw_hook_vector(&h, cases[i].url, cases[i].sig);
		ck_assert_msg(ad->ops->verify(ad, &h.req, err, sizeof(err)) ==
			cases[i].want,
		    "case %zu", i);
	}
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_verify_missing_header)
{
	static const char *const p[] = {"provider", "twilio", "from", TW_FROM,
	    "account_sid", TW_ACCT, "auth_token", "12345", NULL};
	struct adapter *ad = tw_adapter(p, NULL, NULL);
	struct tw_hook h;
	char err[256];

	tw_hook_vector(&h, TW_PV_URL, TW_PV_SIG);
	h.req.nheaders = 0;
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "missing X-Twilio-Signature");
	/* empty, truncated, or one bit off */
	tw_hook_vector(&h, TW_PV_URL, "");
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), -1);
	tw_hook_vector(&h, TW_PV_URL, "0/KCTR6DLpKmkAf8muzZqo1nDgQ");
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), -1);
	tw_hook_vector(&h, TW_PV_URL, "0/KCTR6DLpKmkAf8muzZqo1nDgR=");
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), -1);
	tw_hook_vector(&h, TW_PV_URL, TW_PV_SIG "x");
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), -1);
	adapter_free(ad);
}
END_TEST

/* GET: the signature covers the URL (query included) only. */
START_TEST(test_twilio_verify_get)
{
	static const char *const p[] = {"provider", "twilio", "from", TW_FROM,
	    "account_sid", TW_ACCT, "auth_token", "12345", NULL};
	struct adapter *ad = tw_adapter(p, NULL, NULL);
	struct tw_hook h;
	char err[256];

	tw_hook_vector(&h, TW_PV_URL, "zYQTYrRWXE7LtzbG4PfP7/bkkGo=");
	h.req.method = "GET";
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), 0);
	h.req.method = "POST";
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), -1);
	adapter_free(ad);
}
END_TEST

/* Every recorded webhook verifies against its public URL, and only it. */
START_TEST(test_twilio_verify_fixtures)
{
	static const char *const names[] = {"status-sent", "status-delivered",
	    "status-undelivered", "status-failed", "status-canceled",
	    "status-queued", NULL};
	struct adapter *ad = tw_adapter_basic();
	struct tw_hook h;
	char err[256];
	size_t i;

	tw_hook_load(&h, "inbound", TW_INBOUND);
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), 0);
	h.req.url = TW_STATUS;
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), -1);
	tw_hook_free(&h);
	/* repeated names and unknown fields are signed as well */
	tw_hook_load(&h, "inbound-repeated", TW_INBOUND);
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), 0);
	h.req.nparams--; /* a field dropped by a proxy */
	ck_assert_int_eq(ad->ops->verify(ad, &h.req, err, sizeof(err)), -1);
	tw_hook_free(&h);
	for (i = 0; names[i] != NULL; i++) {
		tw_hook_load(&h, names[i], TW_STATUS);
		ck_assert_msg(ad->ops->verify(ad, &h.req, err, sizeof(err)) ==
			0,
		    "%s: %s", names[i], err);
		tw_hook_free(&h);
	}
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_parse_inbound)
{
	struct adapter *ad = tw_adapter_basic();
	struct in_msg in;
	struct tw_hook h;
	char err[256];

	tw_hook_load(&h, "inbound", TW_INBOUND);
	ck_assert_int_eq(
	    ad->ops->parse_inbound(ad, &h.req, &in, err, sizeof(err)), 0);
	ck_assert_str_eq(in.provider_id, "SM1f0e5b1c2d3e4f5a6b7c8d9e0f1a2b3c");
	ck_assert_str_eq(in.from, TW_TO);
	ck_assert_str_eq(in.to, TW_FROM);
	ck_assert_str_eq(in.body,
	    "Join Rally & more: caf\xc3\xa9 "
	    "\xf0\x9f\x91\x8d");
	ck_assert_uint_eq(in.segments, 2);
	ck_assert_uint_eq(in.num_media, 0);
	in_msg_clear(&in);
	tw_hook_free(&h);
	tw_hook_load(&h, "inbound-no-sid", TW_INBOUND);
	ck_assert_int_eq(
	    ad->ops->parse_inbound(ad, &h.req, &in, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "missing MessageSid");
	ck_assert_ptr_null(in.body);
	tw_hook_free(&h);
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_parse_status)
{
	static const struct {
		const char *name;
		enum msg_status st;
		int code;
	} cases[] = {
	    {"status-sent", MSG_ST_SENT, 0},
	    {"status-delivered", MSG_ST_DELIVERED, 0},
	    {"status-undelivered", MSG_ST_UNDELIVERED, 30003},
	    {"status-failed", MSG_ST_FAILED, 30007},
	    {"status-canceled", MSG_ST_FAILED, 0},
	};
	struct adapter *ad = tw_adapter_basic();
	struct status_update su;
	struct tw_hook h;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tw_hook_load(&h, cases[i].name, TW_STATUS);
		ck_assert_int_eq(
		    ad->ops->parse_status(ad, &h.req, &su, err, sizeof(err)),
		    0);
		ck_assert_str_eq(su.provider_id, TW_SID);
		ck_assert_int_eq(su.status, cases[i].st);
		ck_assert_int_eq(su.code, cases[i].code);
		ck_assert_int_eq(su.msg_id, 0);
		tw_hook_free(&h);
	}
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_parse_status_ignored)
{
	static const char *const names[] = {"status-queued", "status-sending",
	    "status-accepted", "status-scheduled", "status-receiving", NULL};
	struct adapter *ad = tw_adapter_basic();
	struct status_update su;
	struct tw_hook h;
	char err[256];
	size_t i;

	for (i = 0; names[i] != NULL; i++) {
		tw_hook_load(&h, names[i], TW_STATUS);
		ck_assert_msg(ad->ops->parse_status(ad, &h.req, &su, err,
				  sizeof(err)) == 1,
		    "%s", names[i]);
		tw_hook_free(&h);
	}
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_parse_status_malformed)
{
	struct adapter *ad = tw_adapter_basic();
	struct status_update su;
	struct tw_hook h;
	char err[256];

	tw_hook_load(&h, "status-no-sid", TW_STATUS);
	ck_assert_int_eq(
	    ad->ops->parse_status(ad, &h.req, &su, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "missing MessageSid");
	tw_hook_free(&h);
	tw_hook_load(&h, "status-no-status", TW_STATUS);
	ck_assert_int_eq(
	    ad->ops->parse_status(ad, &h.req, &su, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "missing MessageStatus");
	tw_hook_free(&h);
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_reply_body)
{
	struct adapter *ad = tw_adapter_basic();
	const char *ctype = NULL;

	ck_assert_str_eq(ad->ops->reply_body(ad, WEBHOOK_INBOUND, &ctype),
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<Response></Response>");
	ck_assert_str_eq(ctype, "text/xml");
	ck_assert_str_eq(ad->ops->reply_body(ad, WEBHOOK_STATUS, &ctype), "");
	ck_assert_str_eq(ctype, "text/plain");
	adapter_free(ad);
}
END_TEST

/* ---------------------------------------------------------------- */
/* the loopback server */

static void
tw_srv_reply(struct evhttp_request *req, int code, const char *ctype,
    const char *body, size_t len)
{
	struct evbuffer *b = evbuffer_new();

	if (ctype != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", ctype);
	evbuffer_add(b, body, len);
	evhttp_send_reply(req, code, code == 201 ? "Created" : "Whatever", b);
	evbuffer_free(b);
}

/* Records the request, then answers the path's way. */
static void
tw_srv_record(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *v;
	char *addr;
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr,
	    &port);
	if (tw_srv.hits < 64)
		tw_srv.peers[tw_srv.hits] = port;
	tw_srv.hits++;
	strlcpy(tw_srv.method,
	    evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST"
							       : "OTHER",
	    sizeof(tw_srv.method));
	strlcpy(tw_srv.uri, evhttp_request_get_uri(req), sizeof(tw_srv.uri));
	v = evhttp_find_header(h, "Authorization");
	strlcpy(tw_srv.auth, v ? v : "", sizeof(tw_srv.auth));
	v = evhttp_find_header(h, "Content-Type");
	strlcpy(tw_srv.ctype, v ? v : "", sizeof(tw_srv.ctype));
	v = evhttp_find_header(h, "X-Test");
	strlcpy(tw_srv.xtest, v ? v : "", sizeof(tw_srv.xtest));
	free(tw_srv.body);
	tw_srv.body_len = evbuffer_get_length(in);
	tw_srv.body = calloc(1, tw_srv.body_len + 1);
	evbuffer_copyout(in, tw_srv.body, tw_srv.body_len);
}

/* Answers the fake Twilio Messages path per tw_srv.mode. */
static void
tw_srv_twilio(struct evhttp_request *req)
{
	char *body;
	const char *file[] = {"create-201.json", "error-21610.json", NULL,
	    "error-20429.json"};
	int code[] = {201, 400, 0, 429};

	if (tw_srv.mode == 2)
		return; /* never answers */
	if (tw_srv.mode == 3)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", "5");
	body = cks_fixture("twilio", file[tw_srv.mode]);
	tw_srv_reply(req, code[tw_srv.mode], "application/json", body,
	    strlen(body));
	free(body);
}

static void
tw_srv_on_request(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_request_get_uri(req);
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	char date[64], *big;
	time_t t;

	(void)arg;
	tw_srv_record(req);
	if (strcmp(path, TW_PATH) == 0) {
		tw_srv_twilio(req);
	} else if (strcmp(path, "/ok") == 0) {
		tw_srv_reply(req, 201, "application/json", "{\"sid\":\"SMx\"}",
		    13);
	} else if (strcmp(path, "/echo") == 0) {
		tw_srv_reply(req, 200, "application/octet-stream", tw_srv.body,
		    tw_srv.body_len);
	} else if (strcmp(path, "/429") == 0) {
		evhttp_add_header(oh, "Retry-After", "7");
		tw_srv_reply(req, 429, NULL, "", 0);
	} else if (strcmp(path, "/429date") == 0) {
		t = time(NULL) + 120;
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT",
		    gmtime(&t));
		evhttp_add_header(oh, "Retry-After", date);
		tw_srv_reply(req, 429, NULL, "", 0);
	} else if (strcmp(path, "/500") == 0) {
		tw_srv_reply(req, 500, "text/plain", "oops", 4);
	} else if (strcmp(path, "/big") == 0) {
		big = malloc(HTTPC_MAX_BODY + 1);
		memset(big, 'x', HTTPC_MAX_BODY + 1);
		tw_srv_reply(req, 200, "text/plain", big, HTTPC_MAX_BODY + 1);
		free(big);
	}
	/* "/slow" and anything else: no answer */
}

/* The closer: read the request, then hang up without a byte. */
static void
tw_closer_on_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	tw_srv.hits++;
	bufferevent_free(bev);
}

static void
tw_closer_on_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent *bev;

	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	bev = bufferevent_socket_new(tw_base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, tw_closer_on_read, NULL, NULL, NULL);
	bufferevent_enable(bev, EV_READ);
}

static unsigned
tw_fd_port(evutil_socket_t fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

/* A port on 127.0.0.1 nobody listens on (bound, then closed). */
static unsigned
tw_dead_port(void)
{
	evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin;
	unsigned port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	port = tw_fd_port(fd);
	close(fd);
	return port;
}

static void
tw_loop_setup(void)
{
	struct evhttp_bound_socket *bs;
	struct httpc_config hc = {.max_per_host = 4};
	struct sockaddr_in sin;
	char err[256];

	curl_global_init(CURL_GLOBAL_DEFAULT);
	memset(&tw_srv, 0, sizeof(tw_srv));
	tw_total = 0;
	tw_base = event_base_new();
	tw_srv.http = evhttp_new(tw_base);
	evhttp_set_gencb(tw_srv.http, tw_srv_on_request, NULL);
	evhttp_set_allowed_methods(tw_srv.http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
	bs = evhttp_bind_socket_with_handle(tw_srv.http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(bs);
	tw_srv.port = tw_fd_port(evhttp_bound_socket_get_fd(bs));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	tw_srv.closer = evconnlistener_new_bind(tw_base, tw_closer_on_accept,
	    NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	    (struct sockaddr *)&sin, sizeof(sin));
	ck_assert_ptr_nonnull(tw_srv.closer);
	tw_srv.closer_port = tw_fd_port(evconnlistener_get_fd(tw_srv.closer));
	tw_httpc = httpc_new(tw_base, &hc, err, sizeof(err));
	ck_assert_msg(tw_httpc != NULL, "%s", err);
}

static void
tw_loop_teardown(void)
{
	httpc_free(tw_httpc);
	tw_httpc = NULL;
	evconnlistener_free(tw_srv.closer);
	evhttp_free(tw_srv.http);
	free(tw_srv.body);
	event_base_free(tw_base);
	tw_base = NULL;
	curl_global_cleanup();
}

static void
tw_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	tw_expired = true;
}

/* Runs the loop until *count reaches want or ms pass. */
static void
tw_run(const int *count, int want, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	struct event *deadline = evtimer_new(tw_base, tw_on_deadline, NULL);

	tw_expired = false;
	evtimer_add(deadline, &tv);
	while (*count < want && !tw_expired)
		event_base_loop(tw_base, EVLOOP_ONCE);
	event_free(deadline);
}

/* httpc's callback: keeps a copy of what it saw. */
static void
tw_on_http(void *arg, const struct httpc_response *resp)
{
	struct tw_got *g = arg;

	g->calls++;
	tw_total++;
	g->in_call = tw_in_call;
	g->resp = *resp;
	strlcpy(g->body, resp->body, sizeof(g->body));
	strlcpy(g->ctype, resp->content_type ? resp->content_type : "",
	    sizeof(g->ctype));
	g->resp.body = NULL;
	g->resp.content_type = NULL;
}

/* Starts METHOD base+path with a body; asserts it was accepted. */
static void
tw_get(struct tw_got *g, const char *method, const char *path, const char *body,
    unsigned timeout_ms)
{
	static const char *const headers[] = {"X-Test: yes",
	    "Content-Type: text/plain", NULL};
	struct httpc_request r = {0};
	char url[256], err[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", tw_srv.port, path);
	r.method = method;
	r.url = url;
	r.headers = headers;
	r.body = body;
	r.body_len = body ? strlen(body) : 0;
	r.timeout_ms = timeout_ms;
	tw_in_call = true;
	ck_assert_int_eq(
	    httpc_request(tw_httpc, &r, tw_on_http, g, err, sizeof(err)), 0);
	tw_in_call = false;
}

/* ---------------------------------------------------------------- */
/* httpclient */

START_TEST(test_twilio_httpc_created)
{
	struct tw_got g = {0};

	tw_get(&g, "GET", "/ok", NULL, 0);
	ck_assert_int_eq(g.calls, 0); /* never inside httpc_request */
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 1);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert(!g.in_call);
	ck_assert_int_eq(g.resp.status, 201);
	ck_assert_int_eq(g.resp.curl_code, 0);
	ck_assert_str_eq(g.body, "{\"sid\":\"SMx\"}");
	ck_assert_uint_eq(g.resp.body_len, 13);
	ck_assert_str_eq(g.ctype, "application/json");
	ck_assert(g.resp.maybe_sent);
	ck_assert(!g.resp.timed_out && !g.resp.connect_failed);
	ck_assert_uint_eq(g.resp.retry_after, 0);
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 0);
	/* exactly once: nothing more arrives */
	tw_run(&g.calls, 2, 200);
	ck_assert_int_eq(g.calls, 1);
}
END_TEST

START_TEST(test_twilio_httpc_post_body)
{
	struct tw_got g = {0};

	tw_get(&g, "POST", "/echo", "a=1&b=%F0%9F%91%8D+x", 0);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.resp.status, 200);
	ck_assert_str_eq(tw_srv.method, "POST");
	ck_assert_str_eq(tw_srv.body, "a=1&b=%F0%9F%91%8D+x");
	ck_assert_str_eq(tw_srv.ctype, "text/plain");
	ck_assert_str_eq(tw_srv.xtest, "yes");
	ck_assert_str_eq(g.body, "a=1&b=%F0%9F%91%8D+x");
}
END_TEST

START_TEST(test_twilio_httpc_retry_after)
{
	struct tw_got g = {0}, d = {0};

	tw_get(&g, "GET", "/429", NULL, 0);
	tw_get(&d, "GET", "/429date", NULL, 0);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	tw_run(&d.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.resp.status, 429);
	ck_assert_uint_eq(g.resp.retry_after, 7);
	ck_assert_int_eq(d.resp.status, 429);
	ck_assert_msg(d.resp.retry_after >= 100 && d.resp.retry_after <= 121,
	    "HTTP-date Retry-After gave %u s", d.resp.retry_after);
}
END_TEST

START_TEST(test_twilio_httpc_server_error)
{
	struct tw_got g = {0};

	tw_get(&g, "POST", "/500", "x", 0);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.resp.status, 500);
	ck_assert_int_eq(g.resp.curl_code, 0);
	ck_assert_str_eq(g.body, "oops");
}
END_TEST

/* A server that never answers: the total timeout, after sending. */
START_TEST(test_twilio_httpc_timeout)
{
	struct tw_got g = {0};

	tw_get(&g, "POST", "/slow", "x", 300);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(tw_srv.hits, 1);
	ck_assert(g.resp.timed_out);
	ck_assert(g.resp.maybe_sent);
	ck_assert(!g.resp.connect_failed);
	ck_assert_int_eq(g.resp.status, 0);
	ck_assert_int_eq(g.resp.curl_code, CURLE_OPERATION_TIMEDOUT);
	ck_assert_msg(g.resp.total_ms >= 250 && g.resp.total_ms < 3000,
	    "total_ms %.0f", g.resp.total_ms);
	ck_assert_str_ne(g.resp.error, "");
}
END_TEST

/* A server that reads the request and hangs up. */
START_TEST(test_twilio_httpc_dropped)
{
	struct httpc_request r = {0};
	struct tw_got g = {0};
	char url[128], err[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", tw_srv.closer_port);
	r.method = "POST";
	r.url = url;
	r.body = "x";
	r.body_len = 1;
	ck_assert_int_eq(
	    httpc_request(tw_httpc, &r, tw_on_http, &g, err, sizeof(err)), 0);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_ne(g.resp.curl_code, 0);
	ck_assert_int_eq(g.resp.status, 0);
	ck_assert(!g.resp.timed_out && !g.resp.connect_failed);
	ck_assert(g.resp.maybe_sent);
}
END_TEST

START_TEST(test_twilio_httpc_refused)
{
	struct httpc_request r = {0};
	struct tw_got g = {0};
	char url[128], err[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", tw_dead_port());
	r.method = "POST";
	r.url = url;
	ck_assert_int_eq(
	    httpc_request(tw_httpc, &r, tw_on_http, &g, err, sizeof(err)), 0);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert(g.resp.connect_failed);
	ck_assert(!g.resp.maybe_sent);
	ck_assert_int_eq(g.resp.curl_code, CURLE_COULDNT_CONNECT);
}
END_TEST

START_TEST(test_twilio_httpc_too_large)
{
	struct tw_got g = {0};

	tw_get(&g, "GET", "/big", NULL, 0);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.resp.curl_code, CURLE_WRITE_ERROR);
	ck_assert_ptr_nonnull(strstr(g.resp.error, "over"));
}
END_TEST

/* Sequential requests reuse one connection (same client port). */
START_TEST(test_twilio_httpc_keepalive)
{
	struct tw_got a = {0}, b = {0};

	tw_get(&a, "GET", "/ok", NULL, 0);
	tw_run(&a.calls, 1, TW_WAIT_MS);
	tw_get(&b, "POST", "/ok", "x", 0);
	tw_run(&b.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(tw_srv.hits, 2);
	ck_assert_uint_ne(tw_srv.peers[0], 0);
	ck_assert_uint_eq(tw_srv.peers[0], tw_srv.peers[1]);
}
END_TEST

/* 40 at once over at most max_per_host (4) connections. */
START_TEST(test_twilio_httpc_per_host_cap)
{
	struct tw_got g[40];
	int i, j, distinct = 0;

	memset(g, 0, sizeof(g));
	for (i = 0; i < 40; i++)
		tw_get(&g[i], "POST", "/ok", "x", 0);
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 40);
	tw_run(&tw_total, 40, TW_WAIT_MS);
	ck_assert_int_eq(tw_total, 40);
	for (i = 0; i < 40; i++) {
		ck_assert_int_eq(g[i].resp.status, 201);
		for (j = 0; j < i; j++)
			if (tw_srv.peers[j] == tw_srv.peers[i])
				break;
		distinct += j == i;
	}
	ck_assert_msg(distinct >= 1 && distinct <= 4, "%d connections",
	    distinct);
}
END_TEST

/*
 * Over the per-host cap requests wait in httpc, not in libcurl: a queued
 * one starts when a slot frees, and its timeout covers only its own
 * transfer. A waiting request can be cancelled.
 */
START_TEST(test_twilio_httpc_queue)
{
	struct tw_got slow[4], ok = {0}, gone = {0};
	int i;

	memset(slow, 0, sizeof(slow));
	for (i = 0; i < 4; i++)
		tw_get(&slow[i], "POST", "/slow", "x", 400);
	tw_get(&ok, "GET", "/ok", NULL, 250);
	tw_get(&gone, "GET", "/ok", NULL, 0);
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 6);
	ck_assert_uint_eq(httpc_cancel(tw_httpc, &gone), 1);
	tw_run(&tw_total, 5, TW_WAIT_MS);
	ck_assert_int_eq(ok.calls, 1);
	ck_assert_int_eq(ok.resp.status, 201);
	for (i = 0; i < 4; i++)
		ck_assert(slow[i].calls == 1 && slow[i].resp.timed_out);
	ck_assert_int_eq(gone.calls, 0);
	ck_assert_int_eq(tw_srv.hits, 5);
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 0);
}
END_TEST

/* A done callback may start the next request. */
static void
tw_on_http_chain(void *arg, const struct httpc_response *resp)
{
	struct tw_got *g = arg;

	tw_on_http(g, resp);
	if (g->calls == 1)
		tw_get(g, "GET", "/ok", NULL, 0);
}

START_TEST(test_twilio_httpc_chained)
{
	struct httpc_request r = {0};
	struct tw_got g = {0};
	char url[128], err[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/500", tw_srv.port);
	r.url = url;
	ck_assert_int_eq(
	    httpc_request(tw_httpc, &r, tw_on_http_chain, &g, err, sizeof(err)),
	    0);
	tw_run(&g.calls, 2, TW_WAIT_MS);
	ck_assert_int_eq(g.calls, 2);
	ck_assert_int_eq(g.resp.status, 201);
}
END_TEST

START_TEST(test_twilio_httpc_cancel)
{
	struct tw_got a = {0}, b = {0};

	tw_get(&a, "GET", "/ok", NULL, 0);
	tw_get(&b, "GET", "/ok", NULL, 0);
	ck_assert_uint_eq(httpc_cancel(tw_httpc, &a), 1);
	ck_assert_uint_eq(httpc_cancel(tw_httpc, &a), 0);
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 1);
	tw_run(&b.calls, 1, TW_WAIT_MS);
	tw_run(&a.calls, 1, 200);
	ck_assert_int_eq(a.calls, 0);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 0);
}
END_TEST

/* httpc_free with a transfer on the wire: no callback, nothing leaks. */
START_TEST(test_twilio_httpc_free_in_flight)
{
	struct tw_got g = {0};

	tw_get(&g, "POST", "/slow", "x", 0);
	tw_run(&tw_srv.hits, 1, TW_WAIT_MS);
	ck_assert_int_eq(tw_srv.hits, 1);
	httpc_free(tw_httpc);
	tw_httpc = NULL;
	tw_run(&g.calls, 1, 200);
	ck_assert_int_eq(g.calls, 0);
}
END_TEST

START_TEST(test_twilio_httpc_bad_url)
{
	struct httpc_request r = {0};
	struct tw_got g = {0};
	char err[256] = "";

	r.url = "ftp://127.0.0.1/x";
	ck_assert_int_eq(
	    httpc_request(tw_httpc, &r, tw_on_http, &g, err, sizeof(err)), -1);
	ck_assert_str_ne(err, "");
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 0);
}
END_TEST

/* ---------------------------------------------------------------- */
/* send: the adapter, smshttp and httpc against the loopback server */

static void
tw_on_sent(void *arg, const struct send_result *res)
{
	struct tw_got *g = arg;

	g->calls++;
	g->in_call = tw_in_call;
	g->res = *res;
}

/* A twilio adapter on tw_httpc whose base_url is the loopback server. */
static struct adapter *
tw_adapter_live(unsigned port, const char *timeout)
{
	char base[64];
	const char *p[] = {"provider", "twilio", "from", TW_FROM, "account_sid",
	    TW_ACCT, "auth_token", TW_TOKEN, "base_url", base,
	    timeout ? "timeout" : NULL, timeout, NULL};
	struct adapter *ad;

	snprintf(base, sizeof(base), "http://127.0.0.1:%u/", port);
	ad = tw_adapter(p, tw_httpc, TW_PUBLIC);
	ck_assert_msg(ad != NULL, "%s", tw_err);
	return ad;
}

static void
tw_send(struct adapter *ad, const char *to, const char *body, struct tw_got *g)
{
	struct out_msg m;
	char *b = strdup(body);

	tw_msg(&m, to, b);
	tw_in_call = true;
	ck_assert_int_eq(adapter_send(ad, &m, tw_on_sent, g), 0);
	tw_in_call = false;
	free(b); /* the adapter copied what it needs */
}

START_TEST(test_twilio_send_accepted)
{
	struct adapter *ad = tw_adapter_live(tw_srv.port, NULL);
	char *want = cks_fixture("twilio", "request-plain.txt");
	struct tw_got g = {0};
	char *wire;

	tw_send(ad, TW_TO, "Hello from outreachd", &g);
	ck_assert_uint_eq(ad->in_flight, 1);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert(!g.in_call);
	ck_assert_int_eq(g.res.outcome, SEND_ACCEPTED);
	ck_assert_str_eq(g.res.provider_id, TW_SID);
	ck_assert_str_eq(tw_srv.method, "POST");
	ck_assert_str_eq(tw_srv.uri, TW_PATH);
	ck_assert_str_eq(tw_srv.ctype, "application/x-www-form-urlencoded");
	ck_assert_ptr_nonnull(strstr(want, tw_srv.auth));
	ck_assert_uint_gt(strlen(tw_srv.auth), 6);
	/* the body on the wire is the fixture's, byte for byte */
	wire = strstr(want, "\n\n") + 2;
	wire[strcspn(wire, "\n")] = '\0';
	ck_assert_ptr_nonnull(tw_srv.body);
	ck_assert_str_eq(tw_srv.body, wire);
	ck_assert_uint_eq(tw_srv.body_len, strlen(wire));
	ck_assert_uint_eq(ad->in_flight, 0);
	free(want);
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_send_opted_out)
{
	struct adapter *ad = tw_adapter_live(tw_srv.port, NULL);
	struct tw_got g = {0};

	tw_srv.mode = 1;
	tw_send(ad, TW_TO, "hi", &g);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.res.outcome, SEND_PERMANENT);
	ck_assert_int_eq(g.res.code, 21610);
	ck_assert_uint_eq(g.res.flags, SEND_F_OPTED_OUT);
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_send_rate_limited)
{
	struct adapter *ad = tw_adapter_live(tw_srv.port, NULL);
	struct tw_got g = {0};

	tw_srv.mode = 3;
	tw_send(ad, TW_TO, "hi", &g);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.res.outcome, SEND_TRANSIENT);
	ck_assert_int_eq(g.res.code, 429);
	ck_assert_uint_eq(g.res.retry_after, 5);
	adapter_free(ad);
}
END_TEST

/* The sender's timeout key bounds each request; the result is uncertain. */
START_TEST(test_twilio_send_timeout)
{
	struct adapter *ad = tw_adapter_live(tw_srv.port, "300ms");
	struct tw_got g = {0};

	tw_srv.mode = 2;
	tw_send(ad, TW_TO, "hi", &g);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.res.outcome, SEND_TRANSIENT);
	ck_assert(g.res.uncertain);
	adapter_free(ad);
}
END_TEST

START_TEST(test_twilio_send_refused)
{
	struct adapter *ad = tw_adapter_live(tw_dead_port(), NULL);
	struct tw_got g = {0};

	tw_send(ad, TW_TO, "hi", &g);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.res.outcome, SEND_TRANSIENT);
	ck_assert(!g.res.uncertain);
	adapter_free(ad);
}
END_TEST

/* A message build() refuses fails permanently, on a later turn. */
START_TEST(test_twilio_send_unsendable)
{
	struct adapter *ad = tw_adapter_live(tw_srv.port, NULL);
	struct tw_got g = {0}, h = {0};

	tw_send(ad, "", "hi", &g);
	ck_assert_int_eq(g.calls, 0);
	tw_run(&g.calls, 1, TW_WAIT_MS);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.res.outcome, SEND_PERMANENT);
	ck_assert_str_eq(g.res.text, "message has no To number");
	ck_assert_int_eq(tw_srv.hits, 0);
	/* freed before that turn came: the pending result is dropped */
	tw_send(ad, "", "hi", &h);
	adapter_free(ad);
	tw_run(&h.calls, 1, 200);
	ck_assert_int_eq(h.calls, 0);
}
END_TEST

/*
 * Shutdown with sends on the wire: free() cancels them, done never runs,
 * and httpc has nothing left (main.c frees httpc after the adapters).
 */
START_TEST(test_twilio_send_free_in_flight)
{
	struct adapter *ad = tw_adapter_live(tw_srv.port, NULL);
	struct tw_got g = {0}, h = {0};
	struct out_msg m;

	tw_srv.mode = 2;
	tw_send(ad, TW_TO, "one", &g);
	tw_send(ad, TW_TO, "two", &h);
	tw_run(&tw_srv.hits, 2, TW_WAIT_MS);
	ck_assert_int_eq(tw_srv.hits, 2);
	adapter_drain(ad);
	tw_msg(&m, TW_TO, "three");
	ck_assert_int_eq(adapter_send(ad, &m, tw_on_sent, &g), -1);
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 2);
	adapter_free(ad);
	ck_assert_uint_eq(httpc_in_flight(tw_httpc), 0);
	tw_run(&g.calls, 1, 300);
	ck_assert_int_eq(g.calls + h.calls, 0);
}
END_TEST

Suite *
twilio_suite(void)
{
	Suite *s = suite_create("twilio");
	TCase *tc;

	tc = tcase_create("config");
	tcase_add_test(tc, test_twilio_config_ok);
	tcase_add_test(tc, test_twilio_config_missing_account_sid);
	tcase_add_test(tc, test_twilio_config_bad_account_sid);
	tcase_add_test(tc, test_twilio_config_missing_auth_token);
	tcase_add_test(tc, test_twilio_config_bad_base_url);
	tcase_add_test(tc, test_twilio_config_unknown_key);
	tcase_add_test(tc, test_twilio_config_needs_sender);
	tcase_add_test(tc, test_twilio_config_check_only);
	suite_add_tcase(s, tc);

	tc = tcase_create("request");
	tcase_add_test(tc, test_twilio_request_plain);
	tcase_add_test(tc, test_twilio_request_utf8);
	tcase_add_test(tc, test_twilio_request_api_key);
	tcase_add_test(tc, test_twilio_request_messaging_service);
	tcase_add_test(tc, test_twilio_request_validity);
	tcase_add_test(tc, test_twilio_request_from_and_to);
	tcase_add_test(tc, test_form_add_matches_evhttp_uriencode);
	suite_add_tcase(s, tc);

	tc = tcase_create("classify");
	tcase_add_test(tc, test_twilio_classify_accepted);
	tcase_add_test(tc, test_twilio_jsonpeek_agrees_with_jansson);
	tcase_add_test(tc, test_twilio_classify_unusual_sid);
	tcase_add_test(tc, test_twilio_classify_opted_out);
	tcase_add_test(tc, test_twilio_classify_permanent);
	tcase_add_test(tc, test_twilio_classify_rate_limited);
	tcase_add_test(tc, test_twilio_classify_auth_refused);
	tcase_add_test(tc, test_twilio_classify_queue_full);
	tcase_add_test(tc, test_twilio_classify_server_error);
	tcase_add_test(tc, test_twilio_classify_transport);
	tcase_add_test(tc, test_twilio_classify_unknown);
	suite_add_tcase(s, tc);

	tc = tcase_create("webhook");
	tcase_add_test(tc, test_twilio_verify_published_vector);
	tcase_add_test(tc, test_twilio_verify_port_variants);
	tcase_add_test(tc, test_twilio_verify_missing_header);
	tcase_add_test(tc, test_twilio_verify_get);
	tcase_add_test(tc, test_twilio_verify_fixtures);
	tcase_add_test(tc, test_twilio_parse_inbound);
	tcase_add_test(tc, test_twilio_parse_status);
	tcase_add_test(tc, test_twilio_parse_status_ignored);
	tcase_add_test(tc, test_twilio_parse_status_malformed);
	tcase_add_test(tc, test_twilio_reply_body);
	suite_add_tcase(s, tc);

	tc = tcase_create("httpclient");
	tcase_add_checked_fixture(tc, tw_loop_setup, tw_loop_teardown);
	tcase_add_test(tc, test_twilio_httpc_created);
	tcase_add_test(tc, test_twilio_httpc_post_body);
	tcase_add_test(tc, test_twilio_httpc_retry_after);
	tcase_add_test(tc, test_twilio_httpc_server_error);
	tcase_add_test(tc, test_twilio_httpc_timeout);
	tcase_add_test(tc, test_twilio_httpc_dropped);
	tcase_add_test(tc, test_twilio_httpc_refused);
	tcase_add_test(tc, test_twilio_httpc_too_large);
	tcase_add_test(tc, test_twilio_httpc_keepalive);
	tcase_add_test(tc, test_twilio_httpc_per_host_cap);
	tcase_add_test(tc, test_twilio_httpc_queue);
	tcase_add_test(tc, test_twilio_httpc_chained);
	tcase_add_test(tc, test_twilio_httpc_cancel);
	tcase_add_test(tc, test_twilio_httpc_free_in_flight);
	tcase_add_test(tc, test_twilio_httpc_bad_url);
	suite_add_tcase(s, tc);

	tc = tcase_create("send");
	tcase_add_checked_fixture(tc, tw_loop_setup, tw_loop_teardown);
	tcase_add_test(tc, test_twilio_send_accepted);
	tcase_add_test(tc, test_twilio_send_opted_out);
	tcase_add_test(tc, test_twilio_send_rate_limited);
	tcase_add_test(tc, test_twilio_send_timeout);
	tcase_add_test(tc, test_twilio_send_refused);
	tcase_add_test(tc, test_twilio_send_unsendable);
	tcase_add_test(tc, test_twilio_send_free_in_flight);
	suite_add_tcase(s, tc);
	return s;
}
