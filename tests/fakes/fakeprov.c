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
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "compat.h"
#include "xmalloc.h"

#define FP_LOG_FLUSH_MS 50 /* tests read the log: at most this stale */
#define FP_LOG_BLOCK	(256 * 1024)	  /* the log is written in blocks */
#define FP_MAX_BODY	(8 * 1024 * 1024) /* bigger than any provider takes */
#define FP_CB_TIMEOUT_S 10 /* a webhook the daemon never answers */
#define FP_ED25519_LEN	32 /* raw Ed25519 keys and seeds */
#define FP_ED25519_SIG	64
#define FP_URL_MAX	4096

enum fp_pid {
	FP_TWILIO = 0,
	FP_VONAGE,
	FP_PLIVO,
	FP_TELNYX,
	FP_KANNEL,
	FP_NPROV,
};

/* A name/value list: form fields, query parameters, headers. */
struct fp_kv {
	char *key;
	char *value;
};
struct fp_form {
	struct fp_kv *kv;
	size_t n;
	size_t cap;
	bool borrowed; /* the strings belong to someone else */
};

/* A scripted answer for the next 'count' requests of one provider. */
struct fp_rule {
	TAILQ_ENTRY(fp_rule) entry;
	unsigned count; /* 0 = until reset */
	unsigned used;
	int status;	      /* 0 = the provider's normal answer */
	int code;	      /* provider error code for a generated body */
	char *message;	      /* its text; NULL = the provider's wording */
	char *body;	      /* verbatim body instead; NULL = none */
	char *ctype;	      /* content type of 'body' */
	unsigned retry_after; /* Retry-After seconds, 0 = none */
	unsigned delay_ms;    /* answer this much later */
	bool drop;	      /* close the connection, no answer */
	char *to;	      /* only requests to this recipient */
	json_t *headers;      /* extra response headers, or NULL */
};
TAILQ_HEAD(fp_rule_list, fp_rule);

/* An answer held back ('delay_ms') or a connection to drop. */
struct fp_delayed {
	TAILQ_ENTRY(fp_delayed) entry;
	struct fp *fp;
	struct event *ev;
	struct evhttp_request *req;
	int status;
	bool drop;
};
TAILQ_HEAD(fp_delayed_list, fp_delayed);

/* A webhook the fake posts to the daemon: scheduled, then in flight. */
struct fp_cb {
	TAILQ_ENTRY(fp_cb) entry;
	struct fp *fp;
	struct event *ev;		/* delay timer (auto callbacks) */
	json_t *spec;			/* what to send */
	struct evhttp_connection *conn; /* while in flight */
	struct evhttp_request *ctl; /* control request awaiting the answer */
	json_t *sent;		    /* what went out, for the record */
};
TAILQ_HEAD(fp_cb_list, fp_cb);

struct fp_stats {
	unsigned long requests[FP_NPROV + 1]; /* + unknown paths */
	unsigned long accepted[FP_NPROV];
	unsigned long refused[FP_NPROV]; /* auth or validation failures */
	unsigned long scripted, delayed, dropped;
	unsigned long cb_sent, cb_answered, cb_failed;
};

struct fp {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp *ctl;
	int port;
	int ctl_port;
	int log_fd;
	struct evbuffer *log;
	struct event *log_timer;
	struct event *sig_term;
	struct event *sig_int;
	char *daemon_url;
	json_t *conf[FP_NPROV];
	struct fp_rule_list rules[FP_NPROV];
	struct fp_delayed_list delayed;
	struct fp_cb_list cbs;
	EVP_PKEY *telnyx_key;
	EVP_PKEY *telnyx_wrong; /* signs the "invalid" Telnyx webhooks */
	char id_prefix[17];	/* random per process: ids never repeat */
	uint64_t ids;
	uint64_t seq;
	time_t date_at; /* Twilio's date of the last answer, per second */
	char date[40];
	int64_t plivo_sequence;
	struct fp_stats st;
};

/* One request to the provider port while it is being answered. */
struct fp_call {
	struct fp *fp;
	struct evhttp_request *req;
	int pid; /* enum fp_pid, -1 = no provider's path */
	const char *method;
	const char *uri;
	const char *path;
	const char *query;
	char acct[128]; /* the account id in the path */
	char *body;	/* raw, NUL-terminated */
	size_t body_len;
	const char *ctype;
	char *scratch;	     /* decoded copy 'form' points into */
	struct fp_form form; /* form or query fields (borrowed) */
	json_t *json;	     /* or the JSON body's object */
	int status;
	struct evbuffer *out;
	char id[96];	     /* the provider id answered */
	const char *outcome; /* accepted, refused, scripted, drop, ... */
	bool accepted;
	unsigned delay_ms;
	bool drop;
};

/* A webhook being built: URL, method, parameters or JSON, headers. */
struct fp_out {
	char method[8];
	char *url;
	struct fp_form form; /* POST form (or GET query) parameters */
	json_t *json;	     /* JSON body instead of the form */
	struct fp_form headers;
	char *body; /* the bytes sent */
	size_t body_len;
};

struct fp_provider {
	const char *name;
	const char *to_field; /* the recipient in a send request */
	void (*answer)(struct fp_call *c);
	void (*error)(struct fp_call *c, int status, int code, const char *msg);
	int (*build)(struct fp *fp, const json_t *spec, struct fp_out *o,
	    char *err, size_t errlen);
};

static void fp_twilio_answer(struct fp_call *);
static void fp_twilio_error(struct fp_call *, int, int, const char *);
static int fp_twilio_build(struct fp *, const json_t *, struct fp_out *, char *,
    size_t);
static void fp_vonage_answer(struct fp_call *);
static void fp_vonage_error(struct fp_call *, int, int, const char *);
static int fp_vonage_build(struct fp *, const json_t *, struct fp_out *, char *,
    size_t);
static void fp_plivo_answer(struct fp_call *);
static void fp_plivo_error(struct fp_call *, int, int, const char *);
static int fp_plivo_build(struct fp *, const json_t *, struct fp_out *, char *,
    size_t);
static void fp_telnyx_answer(struct fp_call *);
static void fp_telnyx_error(struct fp_call *, int, int, const char *);
static int fp_telnyx_build(struct fp *, const json_t *, struct fp_out *, char *,
    size_t);
static void fp_kannel_answer(struct fp_call *);
static void fp_kannel_error(struct fp_call *, int, int, const char *);
static int fp_kannel_build(struct fp *, const json_t *, struct fp_out *, char *,
    size_t);

static const struct fp_provider fp_providers[FP_NPROV] = {
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
 * small helpers
 */

static double
fp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The time formats providers use. */
enum fp_tfmt {
	FP_T_RFC2822, /* Twilio: "Fri, 27 Nov 2026 03:14:34 +0000" */
	FP_T_ISO,     /* Telnyx: "2026-11-27T03:14:34.000+00:00" */
	FP_T_SQL,     /* Vonage, Kannel: "2026-11-27 03:14:34" */
	FP_T_PLIVO,   /* "2026-11-27 03:14:34+00:00" */
	FP_T_SCTS,    /* Twilio RawDlrDoneDate, Vonage scts: YYMMDDhhmm */
};

/* Now + offset_s (UTC) in format f, into buf. */
static const char *
fp_time_text(enum fp_tfmt f, long offset_s, char *buf, size_t len)
{
	time_t t = time(NULL) + offset_s;
	struct tm tm;
	size_t n = 0;

	gmtime_r(&t, &tm);
	switch (f) {
	case FP_T_RFC2822:
		n = strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
		break;
	case FP_T_ISO:
		n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S.000+00:00", &tm);
		break;
	case FP_T_SQL:
		n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
		break;
	case FP_T_PLIVO:
		n = strftime(buf, len, "%Y-%m-%d %H:%M:%S+00:00", &tm);
		break;
	case FP_T_SCTS:
		n = (size_t)snprintf(buf, len, "%02d%02d%02d%02d%02d",
		    tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min);
		break;
	}
	if (n == 0 || n >= len)
		buf[0] = '\0';
	return buf;
}

static bool
fp_empty(const char *s)
{
	return s == NULL || *s == '\0';
}

/* A JSON string of s: null for NULL, U+FFFD for invalid UTF-8. */
static json_t *
fp_jstr(const char *s)
{
	json_t *j;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) == NULL)
		j = json_string("\xef\xbf\xbd");
	return j;
}

/* Like fp_jstr for n bytes that may hold NULs or invalid UTF-8. */
static json_t *
fp_jstrn(const char *s, size_t n)
{
	json_t *j;

	if (s == NULL || n == 0) /* evbuffer_pullup() of nothing is NULL */
		return json_string("");
	if ((j = json_stringn(s, n)) == NULL)
		j = json_string("\xef\xbf\xbd");
	return j;
}

static const char *
fp_jget(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static long long
fp_jint(const json_t *obj, const char *key, long long def)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return def;
}

static void
fp_b64(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	if (outlen < 4 * ((len + 2) / 3) + 1) {
		out[0] = '\0';
		return;
	}
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Decodes base64 'in' into out; returns the byte count or -1. */
static int
fp_unb64(const char *in, unsigned char *out, size_t outlen)
{
	size_t len = strlen(in);
	int n;

	if (len == 0 || len % 4 != 0 || len / 4 * 3 > outlen)
		return -1;
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len)) < 0)
		return -1;
	if (in[len - 1] == '=')
		n--;
	if (in[len - 2] == '=')
		n--;
	return n;
}

static void
fp_hex(const unsigned char *in, size_t len, bool upper, char *out)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/*
 * A fresh provider id: 'prefix' then 'hexlen' hex digits, the process's
 * random prefix followed by a counter (unique, and cheap per request).
 */
static void
fp_new_id(struct fp *fp, const char *prefix, int hexlen, char *buf, size_t len)
{
	snprintf(buf, len, "%s%.*s%0*llx", prefix, hexlen - 16, fp->id_prefix,
	    16, (unsigned long long)++fp->ids);
}

/* A UUID-shaped fresh id (Plivo, Telnyx). */
static void
fp_new_uuid(struct fp *fp, char *buf, size_t len)
{
	unsigned long long n = ++fp->ids;

	snprintf(buf, len, "%.8s-%.4s-4%.3s-8%.3s-%012llx", fp->id_prefix,
	    fp->id_prefix + 8, fp->id_prefix + 12, fp->id_prefix + 13,
	    n & 0xffffffffffffULL);
}

/* Number of code points in UTF-8 s. */
static size_t
fp_utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/*
 * Segments the way carriers count them, close enough for a fake: GSM-7
 * (160, or 153 per part) when every character is printable ASCII or a
 * line break, with the extension characters counting two; else UCS-2
 * (70, or 67 per part) in UTF-16 units.
 */
static unsigned
fp_segments(const char *s, bool *ucs2)
{
	const unsigned char *p;
	size_t gsm = 0, units = 0;
	bool u = false;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p & 0xc0) == 0x80)
			continue;
		if (*p >= 0x80 || *p == '`' ||
		    (*p < 0x20 && *p != '\n' && *p != '\r'))
			u = true;
		gsm += strchr("^{}\\[]~|", *p) != NULL ? 2 : 1;
		units += *p >= 0xf0 ? 2 : 1; /* 4-byte UTF-8: a pair */
	}
	if (ucs2 != NULL)
		*ucs2 = u;
	if (u)
		return units <= 70 ? 1 : (unsigned)((units + 66) / 67);
	return gsm <= 160 ? 1 : (unsigned)((gsm + 152) / 153);
}

/* ---------------------------------------------------------------------
 * name/value lists
 */

/* Appends key=value to f as they are (owned by f unless borrowed). */
static void
fp_form_push(struct fp_form *f, char *key, char *value)
{
	if (f->n == f->cap) {
		f->cap = f->cap == 0 ? 16 : 2 * f->cap;
		f->kv = xreallocarray(f->kv, f->cap, sizeof(*f->kv));
	}
	f->kv[f->n].key = key;
	f->kv[f->n].value = value;
	f->n++;
}

static void
fp_form_add(struct fp_form *f, const char *key, const char *value)
{
	fp_form_push(f, xstrdup(key), xstrdup(value));
}

/* Sets key to value (NULL removes it), replacing every earlier value. */
static void
fp_form_set(struct fp_form *f, const char *key, const char *value)
{
	size_t i, j;

	for (i = j = 0; i < f->n; i++) {
		if (strcmp(f->kv[i].key, key) == 0) {
			free(f->kv[i].key);
			free(f->kv[i].value);
			continue;
		}
		f->kv[j++] = f->kv[i];
	}
	f->n = j;
	if (value != NULL)
		fp_form_add(f, key, value);
}

static const char *
fp_form_get(const struct fp_form *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, key) == 0)
			return f->kv[i].value;
	return NULL;
}

static void
fp_form_clear(struct fp_form *f)
{
	size_t i;

	for (i = 0; i < f->n && !f->borrowed; i++) {
		free(f->kv[i].key);
		free(f->kv[i].value);
	}
	free(f->kv);
	memset(f, 0, sizeof(*f));
}

static int
fp_kv_cmp(const void *a, const void *b)
{
	const struct fp_kv *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	return r != 0 ? r : strcmp(x->value, y->value);
}

/* A copy of f's pairs sorted bytewise by name, then value (borrowed). */
static struct fp_kv *
fp_form_sorted(const struct fp_form *f)
{
	struct fp_kv *s = xreallocarray(NULL, f->n + 1, sizeof(*s));

	if (f->n > 0)
		memcpy(s, f->kv, f->n * sizeof(*s));
	qsort(s, f->n, sizeof(*s), fp_kv_cmp);
	return s;
}

/* application/x-www-form-urlencoded: k=v&k=v, spaces as '+'. */
static char *
fp_form_encode(const struct fp_form *f, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	char *k, *v, *s;
	size_t i, n;

	for (i = 0; i < f->n; i++) {
		k = evhttp_uriencode(f->kv[i].key, -1, 1);
		v = evhttp_uriencode(f->kv[i].value, -1, 1);
		evbuffer_add_printf(b, "%s%s=%s", i > 0 ? "&" : "", k, v);
		free(k);
		free(v);
	}
	n = evbuffer_get_length(b);
	s = xmalloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	*len = n;
	return s;
}

static int
fp_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes s in place, '+' as a space (forms); returns s. */
static char *
fp_pct_decode(char *s)
{
	char *r, *w = s;
	int hi, lo;

	for (r = s; *r != '\0'; r++) {
		if (*r == '+')
			*w++ = ' ';
		else if (*r == '%' && (hi = fp_hexval(r[1])) >= 0 &&
		    (lo = fp_hexval(r[2])) >= 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 2;
		} else
			*w++ = *r;
	}
	*w = '\0';
	return s;
}

/*
 * Splits the urlencoded form or query s into f, decoding in place: f
 * borrows its strings from s. The per-request path, so no copies.
 */
static void
fp_form_parse(struct fp_form *f, char *s)
{
	char *part, *eq;

	f->borrowed = true;
	while ((part = strsep(&s, "&")) != NULL) {
		if (*part == '\0')
			continue;
		if ((eq = strchr(part, '=')) != NULL)
			*eq++ = '\0';
		fp_form_push(f, fp_pct_decode(part),
		    eq != NULL ? fp_pct_decode(eq) : part + strlen(part));
	}
}

/*
 * Parses a urlencoded form or query string (n bytes of s) into a JSON
 * object: name -> value, or name -> [values] when a name repeats. Names
 * and values are percent-decoded and '+' is a space.
 */
static json_t *
fp_form_json(const char *s, size_t n)
{
	json_t *obj = json_object(), *old, *val;
	const char *p = s, *end = s + n, *amp, *eq;
	char *part, *key, *value;
	size_t klen, vlen;

	while (p < end) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp > p) {
			part = xstrndup(p, (size_t)(amp - p));
			eq = strchr(part, '=');
			if (eq != NULL)
				part[eq - part] = '\0';
			key = evhttp_uridecode(part, 1, &klen);
			value = evhttp_uridecode(eq != NULL ? eq + 1 : "", 1,
			    &vlen);
			val = fp_jstrn(value, vlen);
			if ((old = json_object_get(obj, key)) == NULL)
				json_object_set_new(obj, key, val);
			else if (json_is_array(old))
				json_array_append_new(old, val);
			else
				json_object_set_new(obj, key,
				    json_pack("[Oo]", old, val));
			free(key);
			free(value);
			free(part);
		}
		p = amp + 1;
	}
	return obj;
}

/* Appends the JSON object's string members to f (arrays: each value). */
static void
fp_form_merge_json(struct fp_form *f, const json_t *obj)
{
	const char *key;
	json_t *v, *e;
	char num[32];
	size_t i;

	json_object_foreach((json_t *)obj, key, v) {
		if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%lld",
			    (long long)json_integer_value(v));
			fp_form_set(f, key, num);
		} else if (json_is_string(v))
			fp_form_set(f, key, json_string_value(v));
		else if (json_is_null(v) || json_is_array(v))
			fp_form_set(f, key, NULL);
		json_array_foreach(v, i, e)
			if (json_is_string(e))
				fp_form_add(f, key, json_string_value(e));
	}
}

/* ---------------------------------------------------------------------
 * configuration per provider
 */

static const char *
fp_conf(const struct fp *fp, int pid, const char *key)
{
	return fp_jget(fp->conf[pid], key);
}

/* The provider called 'name', or -1. */
static int
fp_pid_lookup(const char *name)
{
	int i;

	for (i = 0; name != NULL && i < FP_NPROV; i++)
		if (strcmp(fp_providers[i].name, name) == 0)
			return i;
	return -1;
}

/* Loads a Telnyx Ed25519 private key: base64 of the 32-byte seed (or of
 * the 64-byte seed + public key NaCl keeps). Returns 0 / -1. */
static int
fp_telnyx_load_key(struct fp *fp, const char *b64)
{
	unsigned char raw[2 * FP_ED25519_LEN];
	EVP_PKEY *k;
	int n;

	n = fp_unb64(b64, raw, sizeof(raw));
	if (n != FP_ED25519_LEN && n != 2 * FP_ED25519_LEN)
		return -1;
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw,
	    FP_ED25519_LEN);
	OPENSSL_cleanse(raw, sizeof(raw));
	if (k == NULL)
		return -1;
	EVP_PKEY_free(fp->telnyx_key);
	fp->telnyx_key = k;
	return 0;
}

static EVP_PKEY *
fp_ed25519_generate(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY *k = NULL;

	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_keygen(ctx, &k) <= 0)
		k = NULL;
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* The base64 public key of k into buf ("" on failure). */
static const char *
fp_ed25519_public(EVP_PKEY *k, char *buf, size_t len)
{
	unsigned char raw[FP_ED25519_LEN];
	size_t n = sizeof(raw);

	buf[0] = '\0';
	if (k != NULL && EVP_PKEY_get_raw_public_key(k, raw, &n) == 1)
		fp_b64(raw, n, buf, len);
	return buf;
}

/* ---------------------------------------------------------------------
 * writing JSON on the hot path
 *
 * One record line and one answer per request: building jansson objects
 * for them cost a quarter of the fake's time, so these write straight
 * into an evbuffer. Everything else uses jansson.
 */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t
fp_utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

/* Appends the escape of byte ch ('"', '\\' or a control) to b. */
static void
fp_jw_escape(struct evbuffer *b, unsigned char ch)
{
	char esc[8];

	if (ch == '"' || ch == '\\')
		snprintf(esc, sizeof(esc), "\\%c", ch);
	else if (ch == '\n')
		strlcpy(esc, "\\n", sizeof(esc));
	else if (ch == '\r')
		strlcpy(esc, "\\r", sizeof(esc));
	else if (ch == '\t')
		strlcpy(esc, "\\t", sizeof(esc));
	else
		snprintf(esc, sizeof(esc), "\\u%04x", ch);
	evbuffer_add(b, esc, strlen(esc));
}

/* Appends n bytes of s as a JSON string; invalid UTF-8 bytes become
 * U+FFFD. */
static void
fp_jw_str(struct evbuffer *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *run, *end = p + n;
	size_t len;

	evbuffer_add(b, "\"", 1);
	for (run = p; p < end;) {
		if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
			p++;
			continue;
		}
		len = *p >= 0x80 ? fp_utf8_seq(p, (size_t)(end - p)) : 1;
		if (*p >= 0x80 && len > 0) {
			p += len;
			continue;
		}
		evbuffer_add(b, run, (size_t)(p - run));
		if (*p >= 0x80)
			evbuffer_add(b, "\xef\xbf\xbd", 3);
		else
			fp_jw_escape(b, *p);
		run = ++p;
	}
	evbuffer_add(b, run, (size_t)(p - run));
	evbuffer_add(b, "\"", 1);
}

/* s as a JSON string, or null. */
static void
fp_jw_strz(struct evbuffer *b, const char *s)
{
	if (s == NULL)
		evbuffer_add(b, "null", 4);
	else
		fp_jw_str(b, s, strlen(s));
}

/* ,"key": then s as a JSON string or null. */
static void
fp_jw_kv(struct evbuffer *b, const char *key, const char *s)
{
	evbuffer_add_printf(b, ",\"%s\":", key);
	fp_jw_strz(b, s);
}

/* A form as a JSON object; a repeated name becomes an array. */
static void
fp_jw_form(struct evbuffer *b, const struct fp_form *f)
{
	size_t i, j, n, k = 0;

	evbuffer_add(b, "{", 1);
	for (i = 0; i < f->n; i++) {
		for (j = 0, n = 0; j < f->n; j++)
			if (strcmp(f->kv[j].key, f->kv[i].key) == 0) {
				if (j < i)
					break;
				n++;
			}
		if (j < f->n)
			continue; /* written with its first occurrence */
		evbuffer_add(b, ",", k++ > 0);
		fp_jw_strz(b, f->kv[i].key);
		evbuffer_add(b, n > 1 ? ":[" : ":", n > 1 ? 2 : 1);
		for (j = i, n = 0; j < f->n; j++)
			if (strcmp(f->kv[j].key, f->kv[i].key) == 0) {
				evbuffer_add(b, ",", n++ > 0);
				fp_jw_strz(b, f->kv[j].value);
			}
		evbuffer_add(b, "]", n > 1);
	}
	evbuffer_add(b, "}", 1);
}

/* ---------------------------------------------------------------------
 * the request log
 */

static void
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

static int
fp_log_dump_cb(const char *buf, size_t size, void *arg)
{
	return evbuffer_add(arg, buf, size);
}

/* Appends obj as one JSON line (obj is stolen). */
static void
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
static const char *
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

static void
fp_set_header(struct fp_call *c, const char *name, const char *value)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);

	evhttp_remove_header(h, name);
	evhttp_add_header(h, name, value);
}

/* Sets the answer to status + obj as JSON (obj is stolen). */
static void
fp_answer_json(struct fp_call *c, int status, json_t *obj)
{
	json_dump_callback(obj, fp_log_dump_cb, c->out, JSON_COMPACT);
	json_decref(obj);
	fp_set_header(c, "Content-Type", "application/json; charset=utf-8");
	c->status = status;
}

static void
fp_answer_text(struct fp_call *c, int status, const char *ctype,
    const char *text)
{
	evbuffer_add(c->out, text, strlen(text));
	fp_set_header(c, "Content-Type", ctype);
	c->status = status;
}

static void
fp_refuse(struct fp_call *c)
{
	c->outcome = "refused";
	c->fp->st.refused[c->pid]++;
}

static void
fp_accept(struct fp_call *c, const char *id)
{
	strlcpy(c->id, id, sizeof(c->id));
	c->outcome = "accepted";
	c->accepted = true;
	c->fp->st.accepted[c->pid]++;
}

/* True if the request carries HTTP Basic credentials user:pass. */
static bool
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
static bool
fp_is_e164(const char *s)
{
	size_t n;

	if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	n = strspn(s + 1, "0123456789");
	return s[1 + n] == '\0' && n >= 8 && n <= 15;
}

/* True if s is lo..hi digits only. */
static bool
fp_is_digits(const char *s, size_t lo, size_t hi)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strspn(s, "0123456789");
	return s[n] == '\0' && n >= lo && n <= hi;
}

/* ---------------------------------------------------------------------
 * Twilio: POST /2010-04-01/Accounts/{AccountSid}/Messages.json
 */

static void
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

static void
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
 * Vonage SMS API: POST /sms/json (form or JSON; errors per message)
 */

/* The signature of Vonage's signed requests and webhooks over f
 * (every parameter but sig), as hex into out; 0 / -1 (bad method). */
static int
fp_vonage_sig(const struct fp_form *f, const char *secret, const char *method,
    char *out, size_t outlen)
{
	struct evbuffer *b = evbuffer_new();
	struct fp_kv *s = fp_form_sorted(f);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const EVP_MD *alg;
	const char *p;
	size_t i;
	int rc = -1;

	for (i = 0; i < f->n; i++) {
		if (strcmp(s[i].key, "sig") == 0)
			continue;
		evbuffer_add_printf(b, "&%s=", s[i].key);
		for (p = s[i].value; *p != '\0'; p++)
			evbuffer_add(b, *p == '&' || *p == '=' ? "_" : p, 1);
	}
	if (strcmp(method, "md5hash") == 0) {
		evbuffer_add(b, secret, strlen(secret));
		alg = EVP_md5();
		rc = EVP_Digest(evbuffer_pullup(b, -1), evbuffer_get_length(b),
			 md, &mdlen, alg, NULL) == 1
		    ? 0
		    : -1;
	} else if ((alg = strcmp(method, "md5") == 0	   ? EVP_md5()
			   : strcmp(method, "sha1") == 0   ? EVP_sha1()
			   : strcmp(method, "sha256") == 0 ? EVP_sha256()
			   : strcmp(method, "sha512") == 0 ? EVP_sha512()
							   : NULL) != NULL)
		rc = HMAC(alg, secret, (int)strlen(secret),
			 evbuffer_pullup(b, -1), evbuffer_get_length(b), md,
			 &mdlen) != NULL
		    ? 0
		    : -1;
	if (rc == 0 && outlen > 2 * mdlen)
		fp_hex(md, mdlen, strcmp(method, "md5hash") != 0, out);
	else
		rc = -1;
	free(s);
	evbuffer_free(b);
	return rc;
}

static void
fp_vonage_status(struct fp_call *c, int http, int status, const char *text)
{
	char st[16];

	snprintf(st, sizeof(st), "%d", status);
	fp_answer_json(c, http,
	    json_pack("{s:s, s:[{s:s, s:s}]}", "message-count", "1", "messages",
		"status", st, "error-text", text));
}

static void
fp_vonage_error(struct fp_call *c, int status, int code, const char *msg)
{
	if (code != 0) {
		if (msg == NULL)
			msg = code == 1
			    ? "Throughput Rate Exceeded - please wait "
			      "[ 30 ] and retry"
			    : code == 4 ? "Bad Credentials"
			    : code == 5 ? "Internal Error"
			    : code == 7 ? "Number barred."
			    : code == 9 ? "Partner quota exceeded"
					: "Error";
		fp_vonage_status(c, status, code, msg);
		return;
	}
	fp_answer_json(c, status,
	    json_pack("{s:s, s:s}", "type",
		"https://developer.nexmo.com/api-errors#internal", "title",
		msg != NULL ? msg : "Internal Error"));
}

/* Vonage's credentials: api_key with api_secret, or with a valid sig. */
static bool
fp_vonage_auth_is_ok(struct fp_call *c)
{
	struct fp *fp = c->fp;
	const char *key = fp_field(c, "api_key"),
		   *sec = fp_field(c, "api_secret");
	const char *sig = fp_field(c, "sig");
	const char *sigsec = fp_conf(fp, FP_VONAGE, "signature_secret");
	struct fp_form f = {0};
	char want[2 * EVP_MAX_MD_SIZE + 1];
	bool ok = false;

	if (key == NULL || strcmp(key, fp_conf(fp, FP_VONAGE, "api_key")) != 0)
		return false;
	if (sec != NULL)
		return sig == NULL &&
		    strcmp(sec, fp_conf(fp, FP_VONAGE, "api_secret")) == 0;
	if (sig == NULL || sigsec == NULL)
		return false;
	if (c->json != NULL)
		fp_form_merge_json(&f, c->json);
	if (fp_vonage_sig(c->json != NULL ? &f : &c->form, sigsec,
		fp_conf(fp, FP_VONAGE, "signature_method"), want,
		sizeof(want)) == 0)
		ok = strcasecmp(want, sig) == 0;
	fp_form_clear(&f);
	return ok;
}

static void
fp_vonage_answer(struct fp_call *c)
{
	const char *to = fp_field(c, "to"), *type = fp_field(c, "type");
	const char *text = fp_field(c, "text");
	char id[40], count[16];
	json_t *msgs;
	unsigned i, parts;

	if (fp_field(c, "api_key") == NULL) {
		fp_vonage_status(c, 200, 2, "Missing api_key");
	} else if (!fp_vonage_auth_is_ok(c)) {
		fp_vonage_status(c, 200, 4, "Bad Credentials");
	} else if (fp_empty(fp_field(c, "from"))) {
		fp_vonage_status(c, 200, 2, "Missing from param");
	} else if (fp_empty(to)) {
		fp_vonage_status(c, 200, 2, "Missing to param");
	} else if (!fp_is_digits(to, 7, 15)) {
		fp_vonage_status(c, 200, 3, "Invalid to address");
	} else if ((type == NULL || strcmp(type, "text") == 0 ||
		       strcmp(type, "unicode") == 0) &&
	    fp_empty(text)) {
		fp_vonage_status(c, 200, 2, "Missing text param");
	} else {
		parts = fp_segments(text != NULL ? text : "", NULL);
		msgs = json_array();
		for (i = 0; i < parts; i++) {
			fp_new_id(c->fp, "", 16, id, sizeof(id));
			if (i == 0)
				fp_accept(c, id);
			json_array_append_new(msgs,
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
				"to", to, "message-id", id, "status", "0",
				"remaining-balance", "3.14159265",
				"message-price", "0.00570000", "network",
				"310260", "client-ref",
				fp_jstr(fp_field(c, "client-ref"))));
			if (fp_field(c, "client-ref") == NULL)
				json_object_del(json_array_get(msgs, i),
				    "client-ref");
		}
		snprintf(count, sizeof(count), "%u", parts);
		fp_answer_json(c, 200,
		    json_pack("{s:s, s:o}", "message-count", count, "messages",
			msgs));
		return;
	}
	fp_refuse(c);
}

/* ---------------------------------------------------------------------
 * Plivo: POST /v1/Account/{auth_id}/Message/ (JSON)
 */

static void
fp_plivo_error(struct fp_call *c, int status, int code, const char *msg)
{
	char api[48];

	(void)code;
	fp_new_uuid(c->fp, api, sizeof(api));
	fp_answer_json(c, status,
	    json_pack("{s:s, s:s}", "api_id", api, "error",
		msg != NULL	    ? msg
		    : status == 429 ? "too many requests"
		    : status >= 500 ? "internal server error"
				    : "error"));
}

/* Plivo's checks of a send; 0 = fine. */
static int
fp_plivo_check(struct fp_call *c)
{
	const char *dst = fp_field(c, "dst");

	if (c->ctype == NULL ||
	    strncasecmp(c->ctype, "application/json", 16) != 0 ||
	    c->json == NULL)
		fp_plivo_error(c, 400, 0,
		    "content type must be application/json");
	else if (fp_empty(fp_field(c, "src")) &&
	    fp_empty(fp_field(c, "powerpack_uuid")))
		fp_plivo_error(c, 400, 0, "src parameter not present");
	else if (!fp_empty(fp_field(c, "src")) &&
	    !fp_empty(fp_field(c, "powerpack_uuid")))
		fp_plivo_error(c, 400, 0,
		    "Both powerpack_uuid and src cannot be specified");
	else if (fp_empty(dst))
		fp_plivo_error(c, 400, 0, "dst parameter not present");
	else if (fp_empty(fp_field(c, "text")) &&
	    json_object_get(c->json, "media_urls") == NULL)
		fp_plivo_error(c, 400, 0, "text parameter not present");
	else
		return 0;
	return -1;
}

static void
fp_plivo_answer(struct fp_call *c)
{
	struct fp *fp = c->fp;
	const char *auth_id = fp_conf(fp, FP_PLIVO, "auth_id"), *p;
	char api[48], id[48];
	json_t *ids;

	if (!fp_basic_is_ok(c, auth_id, fp_conf(fp, FP_PLIVO, "auth_token"))) {
		fp_plivo_error(c, 401, 0, "Authentication failed");
		fp_refuse(c);
		return;
	}
	if (auth_id == NULL || strcmp(c->acct, auth_id) != 0) {
		fp_plivo_error(c, 404, 0, "not found");
		fp_refuse(c);
		return;
	}
	if (fp_plivo_check(c) == -1) {
		fp_refuse(c);
		return;
	}
	/* Several recipients are joined with '<': one uuid each. */
	ids = json_array();
	for (p = fp_field(c, "dst"); p != NULL; p = strchr(p + 1, '<')) {
		fp_new_uuid(fp, id, sizeof(id));
		if (json_array_size(ids) == 0)
			fp_accept(c, id);
		json_array_append_new(ids, json_string(id));
	}
	fp_new_uuid(fp, api, sizeof(api));
	fp_answer_json(c, 202,
	    json_pack("{s:s, s:s, s:o}", "api_id", api, "message",
		"message(s) queued", "message_uuid", ids));
}

/* ---------------------------------------------------------------------
 * Telnyx: POST /v2/messages (Bearer, JSON)
 */

static void
fp_telnyx_error(struct fp_call *c, int status, int code, const char *msg)
{
	char codes[16], url[96], detail[160];

	if (code == 0)
		code = status == 429 ? 10011 : status >= 500 ? 10007 : status;
	snprintf(codes, sizeof(codes), "%d", code);
	snprintf(url, sizeof(url),
	    "https://developers.telnyx.com/api/errors/%d", code);
	/* 40300's detail names both numbers, as Telnyx's does */
	snprintf(detail, sizeof(detail),
	    "Messages cannot be sent from '%.20s' to '%.20s' due to an existing "
	    "block rule.",
	    fp_field(c, "from") ? fp_field(c, "from") : "",
	    fp_field(c, "to") ? fp_field(c, "to") : "");
	if (msg == NULL)
		msg = code == 40300 ? "Blocked due to STOP message"
		    : code == 40310 ? "Invalid 'to' address"
		    : code == 10009 ? "Authentication failed"
		    : code == 10011 ? "Too many requests"
				    : "Unexpected error";
	fp_answer_json(c, status,
	    json_pack("{s:[{s:s, s:s, s:s, s:{s:s}}]}", "errors", "code", codes,
		"title", msg, "detail", code == 40300 ? detail : msg, "meta",
		"url", url));
}

/* Telnyx's checks of a send; 0 = fine. */
static int
fp_telnyx_check(struct fp_call *c)
{
	const char *to = fp_field(c, "to");

	if (c->ctype == NULL ||
	    strncasecmp(c->ctype, "application/json", 16) != 0 ||
	    c->json == NULL)
		fp_telnyx_error(c, 400, 10015, "The request body is not JSON");
	else if (fp_empty(to))
		fp_telnyx_error(c, 422, 10004,
		    "The 'to' parameter is required");
	else if (!fp_is_e164(to))
		fp_telnyx_error(c, 400, 40310, NULL);
	else if (fp_empty(fp_field(c, "from")) &&
	    fp_empty(fp_field(c, "messaging_profile_id")))
		fp_telnyx_error(c, 400, 40305, "Invalid 'from' address");
	else if (fp_empty(fp_field(c, "text")) &&
	    json_object_get(c->json, "media_urls") == NULL)
		fp_telnyx_error(c, 422, 10004,
		    "The 'text' or 'media_urls' parameter is required");
	else
		return 0;
	return -1;
}

static void
fp_telnyx_answer(struct fp_call *c)
{
	const char *key = fp_conf(c->fp, FP_TELNYX, "api_key");
	const char *h, *text = fp_field(c, "text");
	char id[48], now[40], until[40];
	bool ucs2;
	unsigned parts;

	h = evhttp_find_header(evhttp_request_get_input_headers(c->req),
	    "Authorization");
	if (h == NULL || key == NULL || strncmp(h, "Bearer ", 7) != 0 ||
	    strcmp(h + 7, key) != 0) {
		fp_telnyx_error(c, 401, 10009, NULL);
		fp_refuse(c);
		return;
	}
	if (fp_telnyx_check(c) == -1) {
		fp_refuse(c);
		return;
	}
	parts = fp_segments(text != NULL ? text : "", &ucs2);
	fp_new_uuid(c->fp, id, sizeof(id));
	fp_time_text(FP_T_ISO, 0, now, sizeof(now));
	fp_time_text(FP_T_ISO, 86400, until, sizeof(until));
	fp_answer_json(c, 200,
	    json_pack("{s:{s:s, s:s, s:s, s:s, s:o, s:{s:o, s:s, s:s},"
		      " s:[{s:o, s:s, s:s, s:s}], s:[], s:o, s:[], s:o, s:o,"
		      " s:s, s:i, s:[], s:n, s:s, s:n, s:n, s:s, s:[]}}",
		"data", "record_type", "message", "direction", "outbound", "id",
		id, "type", "SMS", "messaging_profile_id",
		fp_jstr(fp_field(c, "messaging_profile_id")), "from",
		"phone_number", fp_jstr(fp_field(c, "from")), "carrier",
		"Telnyx", "line_type", "Wireless", "to", "phone_number",
		fp_jstr(fp_field(c, "to")), "status", "queued", "carrier",
		"T-MOBILE USA, INC.", "line_type", "Wireless", "cc", "text",
		fp_jstr(text), "media", "webhook_url",
		fp_jstr(fp_field(c, "webhook_url")), "webhook_failover_url",
		fp_jstr(fp_field(c, "webhook_failover_url")), "encoding",
		ucs2 ? "UCS-2" : "GSM-7", "parts", (int)parts, "tags", "cost",
		"received_at", now, "sent_at", "completed_at", "valid_until",
		until, "errors"));
	fp_accept(c, id);
}

/* ---------------------------------------------------------------------
 * Kannel: GET|POST /cgi-bin/sendsms (smsbox)
 */

static void
fp_kannel_error(struct fp_call *c, int status, int code, const char *msg)
{
	(void)code;
	if (msg == NULL)
		msg = status == 503 ? "Temporal failure, try again later."
		    : status >= 500 ? "Internal error"
				    : "Rejected";
	fp_answer_text(c, status, "text/html", msg);
}

static void
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
 * scripted behaviour (POST /behaviour)
 */

static void
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
 * signing webhooks
 */

/* X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + sorted
 * name+value pairs)), each distinct pair once. */
static void
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

/* scheme://host[:port]/path of o->url into b (Plivo's base URL). */
static void
fp_url_base(const char *url, struct evbuffer *b)
{
	const char *q = strchr(url, '?');

	evbuffer_add(b, url, q != NULL ? (size_t)(q - url) : strlen(url));
}

static void
fp_hmac256_b64(const char *key, struct evbuffer *b, char *out, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	HMAC(EVP_sha256(), key, (int)strlen(key), evbuffer_pullup(b, -1),
	    evbuffer_get_length(b), md, &mdlen);
	fp_b64(md, mdlen, out, len);
}

/*
 * Plivo V2 (HMAC-SHA256 over base URL + nonce) and V3 (over base URL "?"
 * [sorted query "." ] sorted name+value pairs, "." nonce), as
 * plivo-python's utils compute them.
 */
static void
fp_sign_plivo(struct fp *fp, struct fp_out *o, const char *token,
    const char *fixed_nonce)
{
	struct evbuffer *b = evbuffer_new();
	struct fp_kv *s = fp_form_sorted(&o->form);
	json_t *q = NULL;
	char nonce[32], sig[128];
	const char *query = strchr(o->url, '?');
	size_t i;

	if (fixed_nonce != NULL)
		strlcpy(nonce, fixed_nonce, sizeof(nonce));
	else
		snprintf(nonce, sizeof(nonce), "%llu%08llu",
		    (unsigned long long)time(NULL),
		    (unsigned long long)++fp->ids);
	fp_url_base(o->url, b);
	evbuffer_add(b, nonce, strlen(nonce));
	fp_hmac256_b64(token, b, sig, sizeof(sig));
	fp_form_set(&o->headers, "X-Plivo-Signature-V2", sig);
	fp_form_set(&o->headers, "X-Plivo-Signature-Ma-V2", sig);
	fp_form_set(&o->headers, "X-Plivo-Signature-V2-Nonce", nonce);

	evbuffer_drain(b, evbuffer_get_length(b));
	fp_url_base(o->url, b);
	if (query != NULL && query[1] != '\0')
		q = fp_form_json(query + 1, strlen(query + 1));
	if (q != NULL || (o->form.n > 0 && strcmp(o->method, "POST") == 0))
		evbuffer_add(b, "?", 1);
	if (q != NULL) {
		struct fp_form qf = {0};
		struct fp_kv *qs;

		fp_form_merge_json(&qf, q);
		qs = fp_form_sorted(&qf);
		for (i = 0; i < qf.n; i++)
			evbuffer_add_printf(b, "%s%s=%s", i > 0 ? "&" : "",
			    qs[i].key, qs[i].value);
		if (o->form.n > 0)
			evbuffer_add(b, ".", 1);
		free(qs);
		fp_form_clear(&qf);
		json_decref(q);
	}
	for (i = 0; i < o->form.n; i++)
		evbuffer_add_printf(b, "%s%s", s[i].key, s[i].value);
	evbuffer_add_printf(b, ".%s", nonce);
	fp_hmac256_b64(token, b, sig, sizeof(sig));
	fp_form_set(&o->headers, "X-Plivo-Signature-V3", sig);
	fp_form_set(&o->headers, "X-Plivo-Signature-V3-Nonce", nonce);
	free(s);
	evbuffer_free(b);
}

/* telnyx-signature-ed25519: base64(Ed25519(timestamp "|" body)). */
static int
fp_sign_telnyx(struct fp_out *o, EVP_PKEY *key, long long ts)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct evbuffer *b = evbuffer_new();
	unsigned char sig[FP_ED25519_SIG];
	size_t siglen = sizeof(sig);
	char text[128];
	int rc = -1;

	evbuffer_add_printf(b, "%lld|", ts);
	evbuffer_add(b, o->body, o->body_len);
	if (ctx != NULL && key != NULL &&
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, evbuffer_pullup(b, -1),
		evbuffer_get_length(b)) == 1) {
		fp_b64(sig, siglen, text, sizeof(text));
		fp_form_set(&o->headers, "telnyx-signature-ed25519", text);
		snprintf(text, sizeof(text), "%lld", ts);
		fp_form_set(&o->headers, "telnyx-timestamp", text);
		rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	evbuffer_free(b);
	return rc;
}

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

/*
 * Signs o as provider pid does, in 'mode': "valid", "invalid" (signed
 * with a wrong secret or key), "missing" (no signature at all) or
 * "stale" (valid, but timestamped 'stale_s' seconds ago). spec may
 * override the secrets. Vonage and Kannel change parameters or the URL,
 * so this runs before the body is serialized; the header schemes run
 * after (fp_sign_body).
 */
static void
fp_sign_params(struct fp *fp, int pid, const json_t *spec, struct fp_out *o)
{
	const char *mode = fp_jget(spec, "signature");
	const char *sec, *method, *param;
	char sig[2 * EVP_MAX_MD_SIZE + 1], ts[32], nonce[48], *wrong;

	mode = mode != NULL ? mode : "valid";
	if (pid == FP_VONAGE) {
		sec = fp_jget(spec, "signature_secret");
		sec = sec != NULL ? sec : fp_conf(fp, pid, "signature_secret");
		method = fp_jget(spec, "signature_method");
		method = method ? method : fp_conf(fp, pid, "signature_method");
		if (sec == NULL || strcmp(mode, "missing") == 0)
			return;
		snprintf(ts, sizeof(ts), "%lld",
		    fp_jint(spec, "timestamp",
			(long long)time(NULL) -
			    (strcmp(mode, "stale") == 0 ? 3600 : 0)));
		if (fp_form_get(&o->form, "timestamp") == NULL)
			fp_form_set(&o->form, "timestamp", ts);
		/* Vonage adds a nonce; "nonce": false leaves it out (the
		 * vectors of Vonage's SDK have none) */
		fp_new_uuid(fp, nonce, sizeof(nonce));
		if (fp_form_get(&o->form, "nonce") == NULL &&
		    !json_is_false(json_object_get(spec, "nonce")))
			fp_form_set(&o->form, "nonce", nonce);
		wrong = xasprintf("%sx", sec);
		if (fp_vonage_sig(&o->form,
			strcmp(mode, "invalid") == 0 ? wrong : sec,
			method != NULL ? method : "md5hash", sig,
			sizeof(sig)) == 0)
			fp_form_set(&o->form, "sig", sig);
		free(wrong);
	} else if (pid == FP_KANNEL) {
		param = fp_conf(fp, pid, "secret_param");
		sec = fp_jget(spec, "secret");
		sec = sec != NULL ? sec : fp_conf(fp, pid, "secret");
		if (param == NULL)
			return;
		if (strcmp(mode, "missing") == 0)
			fp_url_param(&o->url, param, NULL);
		else if (strcmp(mode, "invalid") == 0)
			fp_url_param(&o->url, param, "wrong-secret");
		else if (sec != NULL)
			fp_url_param(&o->url, param, sec);
	}
}

static void
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

static bool
fp_is_inbound(const json_t *spec)
{
	const char *kind = fp_jget(spec, "kind");

	return kind != NULL && strcmp(kind, "inbound") == 0;
}

/* The generic status word of spec (default "delivered"). */
static const char *
fp_cb_status(const json_t *spec)
{
	const char *st = fp_jget(spec, "status");

	return st != NULL ? st : "delivered";
}

/* Digits of an E.164 number, without the '+' (Vonage, Plivo). */
static const char *
fp_digits(const char *s)
{
	return s != NULL && s[0] == '+' ? s + 1 : s != NULL ? s : "";
}

static const char *
fp_str(const json_t *spec, const char *key, const char *def)
{
	const char *v = fp_jget(spec, key);

	return v != NULL ? v : def;
}

static int
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

static int
fp_vonage_build(struct fp *fp, const json_t *spec, struct fp_out *o, char *err,
    size_t errlen)
{
	const char *text = fp_str(spec, "text", ""), *id = fp_jget(spec, "id");
	char idbuf[40], ts[32], scts[16], code[16], kw[64];
	size_t n;
	bool ucs2;

	(void)err;
	(void)errlen;
	if (id == NULL) {
		fp_new_id(fp, "", 16, idbuf, sizeof(idbuf));
		id = idbuf;
	}
	fp_time_text(FP_T_SQL, 0, ts, sizeof(ts));
	if (fp_is_inbound(spec)) {
		n = strcspn(text, " \t\r\n");
		snprintf(kw, sizeof(kw), "%.*s", (int)n, text);
		for (n = 0; kw[n] != '\0'; n++)
			kw[n] = (char)toupper((unsigned char)kw[n]);
		fp_form_add(&o->form, "msisdn",
		    fp_digits(fp_jget(spec, "from")));
		fp_form_add(&o->form, "to", fp_digits(fp_jget(spec, "to")));
		fp_form_add(&o->form, "messageId", id);
		fp_form_add(&o->form, "text", text);
		fp_segments(text, &ucs2);
		fp_form_add(&o->form, "type", ucs2 ? "unicode" : "text");
		fp_form_add(&o->form, "keyword", kw);
		fp_form_add(&o->form, "api-key",
		    fp_conf(fp, FP_VONAGE, "api_key"));
		fp_form_add(&o->form, "message-timestamp", ts);
		return 0;
	}
	snprintf(code, sizeof(code), "%lld", fp_jint(spec, "error_code", 0));
	fp_form_add(&o->form, "msisdn", fp_digits(fp_jget(spec, "to")));
	fp_form_add(&o->form, "to", fp_digits(fp_jget(spec, "from")));
	fp_form_add(&o->form, "network-code", "310260");
	fp_form_add(&o->form, "messageId", id);
	fp_form_add(&o->form, "price", "0.00570000");
	fp_form_add(&o->form, "status", fp_cb_status(spec));
	fp_form_add(&o->form, "scts",
	    fp_time_text(FP_T_SCTS, 0, scts, sizeof(scts)));
	fp_form_add(&o->form, "err-code", code);
	fp_form_add(&o->form, "api-key", fp_conf(fp, FP_VONAGE, "api_key"));
	if (fp_jget(spec, "client_ref") != NULL)
		fp_form_add(&o->form, "client-ref",
		    fp_jget(spec, "client_ref"));
	fp_form_add(&o->form, "message-timestamp", ts);
	return 0;
}

static int
fp_plivo_build(struct fp *fp, const json_t *spec, struct fp_out *o, char *err,
    size_t errlen)
{
	const char *st = fp_cb_status(spec), *id = fp_jget(spec, "id");
	char idbuf[48], ts[40], seq[32], code[16];

	(void)err;
	(void)errlen;
	if (id == NULL) {
		fp_new_uuid(fp, idbuf, sizeof(idbuf));
		id = idbuf;
	}
	fp_time_text(FP_T_PLIVO, 0, ts, sizeof(ts));
	if (fp_is_inbound(spec)) {
		fp_form_add(&o->form, "From", fp_digits(fp_jget(spec, "from")));
		fp_form_add(&o->form, "To", fp_digits(fp_jget(spec, "to")));
		fp_form_add(&o->form, "Type", "sms");
		fp_form_add(&o->form, "Text", fp_str(spec, "text", ""));
		fp_form_add(&o->form, "MessageUUID", id);
		fp_form_add(&o->form, "Units", "1");
		fp_form_add(&o->form, "TotalRate", "0.00000");
		fp_form_add(&o->form, "TotalAmount", "0.00000");
		fp_form_add(&o->form, "PowerpackUUID", "");
		return 0;
	}
	snprintf(seq, sizeof(seq), "%lld",
	    fp_jint(spec, "sequence", (long long)++fp->plivo_sequence));
	fp_form_add(&o->form, "MessageUUID", id);
	fp_form_add(&o->form, "ParentMessageUUID", id);
	fp_form_add(&o->form, "PartInfo", "1 of 1");
	fp_form_add(&o->form, "To", fp_digits(fp_jget(spec, "to")));
	fp_form_add(&o->form, "From", fp_digits(fp_jget(spec, "from")));
	fp_form_add(&o->form, "Type", "sms");
	fp_form_add(&o->form, "Status", st);
	fp_form_add(&o->form, "Units", "1");
	fp_form_add(&o->form, "TotalRate", "0.00500");
	fp_form_add(&o->form, "TotalAmount", "0.00500");
	fp_form_add(&o->form, "MCC", "310");
	fp_form_add(&o->form, "MNC", "260");
	fp_form_add(&o->form, "Sequence", seq);
	fp_form_add(&o->form, "MessageTime", ts);
	fp_form_add(&o->form, "QueuedTime", ts);
	fp_form_add(&o->form, "SentTime", ts);
	if (strcmp(st, "delivered") == 0 || strcmp(st, "undelivered") == 0)
		fp_form_add(&o->form, "DeliveryReportTime", ts);
	fp_form_add(&o->form, "PowerpackUUID", "");
	if (fp_jint(spec, "error_code", 0) != 0 || strcmp(st, "failed") == 0 ||
	    strcmp(st, "undelivered") == 0) {
		snprintf(code, sizeof(code), "%lld",
		    fp_jint(spec, "error_code", 0));
		fp_form_add(&o->form, "ErrorCode", code);
	}
	return 0;
}

/* Telnyx's event type and recipient status for a generic status. */
static void
fp_telnyx_event(const char *st, const char **event, const char **tst)
{
	*event = "message.finalized";
	*tst = st;
	if (strcmp(st, "sent") == 0 || strcmp(st, "sending") == 0 ||
	    strcmp(st, "queued") == 0)
		*event = "message.sent";
	else if (strcmp(st, "undelivered") == 0)
		*tst = "delivery_failed";
	else if (strcmp(st, "failed") == 0)
		*tst = "sending_failed";
}

static int
fp_telnyx_build(struct fp *fp, const json_t *spec, struct fp_out *o, char *err,
    size_t errlen)
{
	const char *id = fp_jget(spec, "id"), *event, *tst;
	const char *text = fp_str(spec, "text", "");
	char idbuf[48], evid[48], now[40], code[16];
	json_t *errors = json_array(), *payload;
	bool ucs2, in = fp_is_inbound(spec);

	(void)err;
	(void)errlen;
	if (id == NULL) {
		fp_new_uuid(fp, idbuf, sizeof(idbuf));
		id = idbuf;
	}
	fp_new_uuid(fp, evid, sizeof(evid));
	fp_time_text(FP_T_ISO, 0, now, sizeof(now));
	fp_telnyx_event(fp_cb_status(spec), &event, &tst);
	if (in) {
		event = "message.received";
		tst = "webhook_delivered";
	}
	if (fp_jint(spec, "error_code", 0) != 0) {
		snprintf(code, sizeof(code), "%lld",
		    fp_jint(spec, "error_code", 0));
		json_array_append_new(errors,
		    json_pack("{s:s, s:s, s:s}", "code", code, "title",
			strcmp(code, "40300") == 0
			    ? "Blocked due to STOP message"
			    : "Message failed",
			"detail", "Message failed"));
	}
	fp_segments(text, &ucs2);
	payload = json_pack("{s:s, s:s, s:s, s:s, s:{s:o, s:s, s:s},"
			    " s:[{s:o, s:s, s:s, s:s}], s:o, s:[], s:s, s:i,"
			    " s:o, s:s, s:n, s:[], s:s, s:o, s:o}",
	    "record_type", "message", "direction", in ? "inbound" : "outbound",
	    "id", id, "type", "SMS", "from", "phone_number",
	    fp_jstr(fp_str(spec, "from", "")), "carrier", "T-Mobile USA",
	    "line_type", "long_code", "to", "phone_number",
	    fp_jstr(fp_str(spec, "to", "")), "status", tst, "carrier", "Telnyx",
	    "line_type", "Wireless", "text", fp_jstr(text), "media", "encoding",
	    ucs2 ? "UCS-2" : "GSM-7", "parts", (int)fp_segments(text, NULL),
	    "errors", errors, "received_at", now, "cost", "tags", "sent_at",
	    now, "completed_at",
	    strcmp(event, "message.finalized") == 0 ? json_string(now)
						    : json_null(),
	    "messaging_profile_id", fp_jstr(fp_jget(spec, "profile")));
	o->json = json_pack("{s:{s:s, s:s, s:s, s:o, s:s}, s:{s:i, s:s}}",
	    "data", "event_type", event, "id", evid, "occurred_at", now,
	    "payload", payload, "record_type", "event", "meta", "attempt", 1,
	    "delivered_to", "");
	return o->json != NULL ? 0 : -1;
}

/* Kannel's DLR type for a generic status (dlr-mask bits). */
static int
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

static int
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

/* ---------------------------------------------------------------------
 * posting webhooks
 */

static void
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
static void
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
static json_t *
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

static void fp_cb_free(struct fp_cb *);

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

static void
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
static void
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

/* True if Kannel's dlr-mask of c asks for DLR type 'type'. */
static bool
fp_kannel_mask_has(const struct fp_call *c, int type)
{
	const char *mask = fp_field(c, "dlr-mask");

	return mask == NULL || (atoi(mask) & type) != 0;
}

/*
 * After an accepted send: the provider's configured automatic status
 * callbacks ("auto": [{"status", "delay_ms", "error_code"}]), each to
 * the URL the request named or the configured one.
 */
static void
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

static void
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
