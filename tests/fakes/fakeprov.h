/*
 * fakeprov.h - what the files of fakeprov (tests/fakes/) share: the
 * state of the process, of a request being answered and of a webhook
 * being built, the provider table, and the helpers the files call across.
 *
 * Contract:
 *  - One loop thread; nothing here is thread-safe.
 *  - Functions that take a json_t "stolen" own it afterwards; getters
 *    return borrowed strings.
 *  - fp_providers[] is indexed by enum fp_pid; every provider file
 *    provides its _answer, _error and _build.
 */
#ifndef FAKEPROV_H
#define FAKEPROV_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>

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

/* The time formats providers use. */
enum fp_tfmt {
	FP_T_RFC2822, /* Twilio: "Fri, 27 Nov 2026 03:14:34 +0000" */
	FP_T_ISO,     /* Telnyx: "2026-11-27T03:14:34.000+00:00" */
	FP_T_SQL,     /* Vonage, Kannel: "2026-11-27 03:14:34" */
	FP_T_PLIVO,   /* "2026-11-27 03:14:34+00:00" */
	FP_T_SCTS,    /* Twilio RawDlrDoneDate, Vonage scts: YYMMDDhhmm */
};

extern const struct fp_provider fp_providers[FP_NPROV];

/* fakeprov.c */

/* The string value of key in provider pid's configuration, or NULL. */
const char *fp_conf(const struct fp *fp, int pid, const char *key);

/* The provider called 'name', or -1. */
int fp_pid_lookup(const char *name);

/* Writes the buffered request log out to the --log file. */
void fp_log_flush(struct fp *fp);

/* json_dump_callback() into an evbuffer (arg). */
int fp_log_dump_cb(const char *buf, size_t size, void *arg);

/* Appends obj as one JSON line (obj is stolen). */
void fp_log_json(struct fp *fp, json_t *obj);

/* The first value of field 'name' of the request, or NULL. */
const char *fp_field(const struct fp_call *c, const char *name);

/* Sets (replaces) response header name of c. */
void fp_set_header(struct fp_call *c, const char *name, const char *value);

/* Sets the answer to status + obj as JSON (obj is stolen). */
void fp_answer_json(struct fp_call *c, int status, json_t *obj);

/* Sets the answer to status + text with content type ctype. */
void fp_answer_text(struct fp_call *c, int status, const char *ctype,
    const char *text);

/* Counts and records c as refused (auth or validation). */
void fp_refuse(struct fp_call *c);

/* Counts and records c as accepted with provider id 'id'. */
void fp_accept(struct fp_call *c, const char *id);

/* True if the request carries HTTP Basic credentials user:pass. */
bool fp_basic_is_ok(const struct fp_call *c, const char *user,
    const char *pass);

/* True if s is +E.164: '+' and 8 to 15 digits, no leading 0. */
bool fp_is_e164(const char *s);

/* True if s is lo..hi digits only. */
bool fp_is_digits(const char *s, size_t lo, size_t hi);

/* Frees a scripted-behaviour rule (NULL: nothing). */
void fp_rule_free(struct fp_rule *r);

/* fakeprov_util.c */

/* Wall-clock time in seconds, with fractions. */
double fp_now(void);

/* Now + offset_s (UTC) in format f, into buf. */
const char *fp_time_text(enum fp_tfmt f, long offset_s, char *buf, size_t len);

/* True if s is NULL or "". */
bool fp_empty(const char *s);

/* A JSON string of s: null for NULL, U+FFFD for invalid UTF-8. */
json_t *fp_jstr(const char *s);

/* Like fp_jstr for n bytes that may hold NULs or invalid UTF-8. */
json_t *fp_jstrn(const char *s, size_t n);

/* The string member key of obj, or NULL (borrowed). */
const char *fp_jget(const json_t *obj, const char *key);

/* The integer (or numeric string) member key of obj, or def. */
long long fp_jint(const json_t *obj, const char *key, long long def);

/* base64 of len bytes of in into out ("" if outlen is too small). */
void fp_b64(const unsigned char *in, size_t len, char *out, size_t outlen);

/* Decodes base64 'in' into out; returns the byte count or -1. */
int fp_unb64(const char *in, unsigned char *out, size_t outlen);

/* len bytes of in as hex into out (2 * len + 1 bytes). */
void fp_hex(const unsigned char *in, size_t len, bool upper, char *out);

/*
 * A fresh provider id: 'prefix' then 'hexlen' hex digits, the process's
 * random prefix followed by a counter (unique, and cheap per request).
 */
void fp_new_id(struct fp *fp, const char *prefix, int hexlen, char *buf,
    size_t len);

/* A UUID-shaped fresh id (Plivo, Telnyx). */
void fp_new_uuid(struct fp *fp, char *buf, size_t len);

/* Number of code points in UTF-8 s. */
size_t fp_utf8_chars(const char *s);

/*
 * Segments the way carriers count them, close enough for a fake: GSM-7
 * (160, or 153 per part) when every character is printable ASCII or a
 * line break, with the extension characters counting two; else UCS-2
 * (70, or 67 per part) in UTF-16 units.
 */
unsigned fp_segments(const char *s, bool *ucs2);

/* Appends a copy of key=value to f. */
void fp_form_add(struct fp_form *f, const char *key, const char *value);

/* Sets key to value (NULL removes it), replacing every earlier value. */
void fp_form_set(struct fp_form *f, const char *key, const char *value);

/* The first value of key in f, or NULL (borrowed). */
const char *fp_form_get(const struct fp_form *f, const char *key);

/* Frees f's pairs (unless borrowed) and empties it. */
void fp_form_clear(struct fp_form *f);

/* qsort() order of struct fp_kv: name, then value, bytewise. */
int fp_kv_cmp(const void *a, const void *b);

/* A copy of f's pairs sorted bytewise by name, then value (borrowed). */
struct fp_kv *fp_form_sorted(const struct fp_form *f);

/* application/x-www-form-urlencoded: k=v&k=v, spaces as '+'. */
char *fp_form_encode(const struct fp_form *f, size_t *len);

/*
 * Splits the urlencoded form or query s into f, decoding in place: f
 * borrows its strings from s. The per-request path, so no copies.
 */
void fp_form_parse(struct fp_form *f, char *s);

/*
 * Parses a urlencoded form or query string (n bytes of s) into a JSON
 * object: name -> value, or name -> [values] when a name repeats. Names
 * and values are percent-decoded and '+' is a space.
 */
json_t *fp_form_json(const char *s, size_t n);

/* Appends the JSON object's string members to f (arrays: each value). */
void fp_form_merge_json(struct fp_form *f, const json_t *obj);

/* Appends n bytes of s as a JSON string; invalid UTF-8 bytes become
 * U+FFFD. */
void fp_jw_str(struct evbuffer *b, const char *s, size_t n);

/* s as a JSON string, or null. */
void fp_jw_strz(struct evbuffer *b, const char *s);

/* ,"key": then s as a JSON string or null. */
void fp_jw_kv(struct evbuffer *b, const char *key, const char *s);

/* A form as a JSON object; a repeated name becomes an array. */
void fp_jw_form(struct evbuffer *b, const struct fp_form *f);

/* The string member key of spec, or def. */
const char *fp_str(const json_t *spec, const char *key, const char *def);

/* fakeprov_twilio.c */

/* Answers c with Twilio's error JSON (code 0: by status; msg NULL:
 * Twilio's wording). The other providers' _error work alike. */
void fp_twilio_error(struct fp_call *c, int status, int code, const char *msg);

/* Answers a send to Twilio's endpoint; the other _answer alike. */
void fp_twilio_answer(struct fp_call *c);

/* X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + sorted
 * name+value pairs)), each distinct pair once. */
void fp_sign_twilio(struct fp_out *o, const char *token);

/* Builds Twilio's webhook of spec into o; 0, or -1 with err set. The
 * other _build alike. */
int fp_twilio_build(struct fp *fp, const json_t *spec, struct fp_out *o,
    char *err, size_t errlen);

/* fakeprov_vonage.c */

void fp_vonage_error(struct fp_call *c, int status, int code, const char *msg);

void fp_vonage_answer(struct fp_call *c);

/*
 * Vonage's signed parameters: timestamp, nonce and sig (md5hash or an
 * HMAC of the sorted parameters) with the signature secret, in 'mode'
 * (see fp_sign_params).
 */
void fp_vonage_sign_params(struct fp *fp, const json_t *spec, struct fp_out *o,
    const char *mode);

int fp_vonage_build(struct fp *fp, const json_t *spec, struct fp_out *o,
    char *err, size_t errlen);

/* fakeprov_plivo.c */

void fp_plivo_error(struct fp_call *c, int status, int code, const char *msg);

void fp_plivo_answer(struct fp_call *c);

/*
 * Plivo V2 (HMAC-SHA256 over base URL + nonce) and V3 (over base URL "?"
 * [sorted query "." ] sorted name+value pairs, "." nonce), as
 * plivo-python's utils compute them.
 */
void fp_sign_plivo(struct fp *fp, struct fp_out *o, const char *token,
    const char *fixed_nonce);

int fp_plivo_build(struct fp *fp, const json_t *spec, struct fp_out *o,
    char *err, size_t errlen);

/* fakeprov_telnyx.c */

/* Loads a Telnyx Ed25519 private key: base64 of the 32-byte seed (or of
 * the 64-byte seed + public key NaCl keeps). Returns 0 / -1. */
int fp_telnyx_load_key(struct fp *fp, const char *b64);

/* A fresh Ed25519 key, or NULL. */
EVP_PKEY *fp_ed25519_generate(void);

/* The base64 public key of k into buf ("" on failure). */
const char *fp_ed25519_public(EVP_PKEY *k, char *buf, size_t len);

void fp_telnyx_error(struct fp_call *c, int status, int code, const char *msg);

void fp_telnyx_answer(struct fp_call *c);

/* telnyx-signature-ed25519: base64(Ed25519(timestamp "|" body)). */
int fp_sign_telnyx(struct fp_out *o, EVP_PKEY *key, long long ts);

int fp_telnyx_build(struct fp *fp, const json_t *spec, struct fp_out *o,
    char *err, size_t errlen);

/* fakeprov_kannel.c */

void fp_kannel_error(struct fp_call *c, int status, int code, const char *msg);

void fp_kannel_answer(struct fp_call *c);

/* Kannel's secret in the URL (secret_param), in 'mode' (see
 * fp_sign_params). */
void fp_kannel_sign_params(struct fp *fp, const json_t *spec, struct fp_out *o,
    const char *mode);

/* Kannel's DLR type for a generic status (dlr-mask bits). */
int fp_kannel_type(const char *st);

int fp_kannel_build(struct fp *fp, const json_t *spec, struct fp_out *o,
    char *err, size_t errlen);

/* True if Kannel's dlr-mask of c asks for DLR type 'type'. */
bool fp_kannel_mask_has(const struct fp_call *c, int type);

/* fakeprov_callbacks.c */

/*
 * Signs o as provider pid does, in 'mode': "valid", "invalid" (signed
 * with a wrong secret or key), "missing" (no signature at all) or
 * "stale" (valid, but timestamped 'stale_s' seconds ago). spec may
 * override the secrets. Vonage and Kannel change parameters or the URL,
 * so this runs before the body is serialized; the header schemes run
 * after (fp_sign_body).
 */
void fp_sign_params(struct fp *fp, int pid, const json_t *spec,
    struct fp_out *o);

/* Signs o's serialized body with the header schemes (Twilio, Plivo,
 * Telnyx) in spec's mode (see fp_sign_params). */
void fp_sign_body(struct fp *fp, int pid, const json_t *spec, struct fp_out *o);

/* True if spec is an inbound message (kind "inbound"). */
bool fp_is_inbound(const json_t *spec);

/* The generic status word of spec (default "delivered"). */
const char *fp_cb_status(const json_t *spec);

/* Digits of an E.164 number, without the '+' (Vonage, Plivo). */
const char *fp_digits(const char *s);

/* Frees what o holds and zeroes it. */
void fp_out_clear(struct fp_out *o);

/* Serializes o's body (form or JSON) and content type. */
void fp_out_serialize(struct fp_out *o);

/* What went out, for the record and the control reply. */
json_t *fp_out_json(const struct fp_out *o);

/* Unlinks and frees cb (its timer and connection too). */
void fp_cb_free(struct fp_cb *cb);

/* Schedules the webhook of spec (stolen) after delay_ms; ctl (may be
 * NULL) is the control request to answer with the daemon's reply. */
void fp_cb_schedule(struct fp *fp, json_t *spec, unsigned delay_ms,
    struct evhttp_request *ctl);

/*
 * After an accepted send: the provider's configured automatic status
 * callbacks ("auto": [{"status", "delay_ms", "error_code"}]), each to
 * the URL the request named or the configured one.
 */
void fp_auto_callbacks(struct fp_call *c);

/* fakeprov_control.c */

/* Every request to the control port (arg: the struct fp). */
void fp_on_control(struct evhttp_request *req, void *arg);

#endif /* FAKEPROV_H */
