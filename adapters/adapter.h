/*
 * adapter.h - the contract between the daemon core and a message adapter
 * (doc/adapters.md).
 *
 * An adapter moves one outbound message to a provider (an SMS API, an SMTP
 * relay, a local file) and reports one classified result. Each adapter file
 * exports one const struct adapter_ops; adapter.c lists them in
 * adapter_table[] and finds them by name. The core calls adapters only
 * through adapter_send()/adapter_drain()/adapter_free() below, which also
 * enforce the rules.
 *
 * Rules (MUST):
 *  1. init() checks its whole section and rejects unknown keys with a
 *     "FILE:LINE: ..." message. It does no network I/O.
 *  2. send() never blocks. On 0, done runs exactly once, later, on the loop
 *     thread, and never from inside send(). On -1, done never runs.
 *  3. msg is borrowed until done runs: do not modify or free it; copy what
 *     you keep.
 *  4. Transient: timeout, connection refused, 429, 5xx. Permanent: invalid
 *     number, carrier opt-out, other final 4xx. A timeout after the request
 *     was sent also sets 'uncertain' (the documented duplicate window).
 *  5. Adapters never touch queue/ or the store.
 *  6. drain() stops new work and lets what is in flight settle (pending
 *     done callbacks still run). free() runs after it; sends still in
 *     flight then were given up by the core at its shutdown deadline (it
 *     returned them to the queue), so free() cancels them without calling
 *     done.
 *  7. No credentials, full numbers or addresses, or bodies in logs or in
 *     send_result.text; no secrets in URLs.
 *  8. Blocking libraries (libesmtp) run on worker threads that never call
 *     libevent or the store; results return to the loop thread.
 */
#ifndef OD_ADAPTER_H
#define OD_ADAPTER_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "webhook_kv.h"

struct config_section;
struct event_base;
struct httpc;

enum send_outcome {
	SEND_ACCEPTED = 0,
	SEND_TRANSIENT,
	SEND_PERMANENT,
};

/* Extra facts a permanent failure can carry for the core to act on. */
#define SEND_F_OPTED_OUT 0x01u /* the recipient opted out at the carrier */
/* The provider asked us to slow down (HTTP 429, Vonage status 1, ...):
 * the dispatcher pauses the sender for retry_after and halves its rate. */
#define SEND_F_RATE_LIMITED 0x02u
/* The sender itself was refused (credentials, account barred or out of
 * credit): no message of it can go now. The result is transient, the
 * message stays queued, and the dispatcher pauses the whole sender. */
#define SEND_F_SENDER_BROKEN 0x04u

struct send_result {
	enum send_outcome outcome;
	int code;	       /* provider or SMTP code, 0 if none */
	unsigned retry_after;  /* seconds from Retry-After, 0 = none */
	bool uncertain;	       /* request may have reached the provider */
	unsigned flags;	       /* SEND_F_* */
	char provider_id[128]; /* matches status callbacks */
	char text[256];	       /* short, masked, no secrets */
};

/* The one callback of a send; runs on the loop thread. */
typedef void adapter_done_fn(void *arg, const struct send_result *res);

/* What the daemon lends every adapter instance. */
struct adapter_env {
	struct event_base *base;
	const char *var_dir;	/* the daemon's state directory */
	const char *public_url; /* base URL providers call back; may be NULL */
	struct httpc *httpc;	/* shared HTTP client (libcurl multi); NULL
				 * under --check-config */
	/* [email] dkim_*: email adapters sign with these (dkim.h); NULL =
	 * no signing. */
	const char *dkim_domain;
	const char *dkim_selector;
	const char *dkim_key_file;
};

/*
 * A provider's callback as the webhook layer hands it to an adapter's
 * verify/parse functions. Everything is borrowed for the call.
 */
struct webhook_req {
	const char *method; /* "POST" or "GET" */
	/*
	 * The URL as the provider called it: [http] public_url + the path,
	 * plus "?query" when there was one (signatures cover it).
	 */
	const char *url;
	const char *query; /* raw query string, or NULL */
	const char *body;  /* raw bytes as received, NUL-terminated */
	size_t body_len;
	const char *peer; /* client address as text ("127.0.0.1") */
	int64_t now;	  /* ms since the epoch (timestamp checks) */
	/* Decoded fields of a urlencoded POST body, or of the query string
	 * for GET, in the order received (repeated names repeat). */
	const struct webhook_kv *params;
	size_t nparams;
	/* Every request header, as received. */
	const struct webhook_kv *headers;
	size_t nheaders;
};

/* Which webhook of a sender a request came to. */
enum webhook_kind {
	WEBHOOK_INBOUND = 0, /* POST /webhooks/{sender}/inbound */
	WEBHOOK_STATUS,	     /* POST /webhooks/{sender}/status */
};

struct adapter;
struct adapter_call;
TAILQ_HEAD(adapter_call_list, adapter_call);

struct adapter_ops {
	const char *name; /* "console", "file", "twilio", "smtp", ... */
	enum channel channel;
	int (*init)(struct adapter *ad, const struct config_section *sec,
	    char *err, size_t errlen);
	int (*send)(struct adapter *ad, const struct out_msg *msg,
	    adapter_done_fn *done, void *arg);
	void (*drain)(struct adapter *ad); /* optional */
	void (*free)(struct adapter *ad);
	/*
	 * SMS providers only; NULL otherwise. Pure functions of the request
	 * and the adapter's configuration: no I/O, no state changes.
	 *
	 * verify: 0 if the request is authentic (the provider's signature
	 * scheme over req->url, params, headers or raw body; timestamps
	 * fresh), else -1 with the reason in err (answered 403).
	 *
	 * parse_inbound / parse_status: 0 and *out filled; 1 when the request
	 * is authentic but carries nothing to store (an event type or an
	 * intermediate state the daemon ignores; answered 200); -1 with the
	 * reason in err when it is malformed (answered 400).
	 *
	 * reply_body: what a webhook of 'kind' answers with status 200, and
	 * its content type in *ctype (Twilio: an empty TwiML <Response/>).
	 */
	int (*verify)(struct adapter *ad, const struct webhook_req *req,
	    char *err, size_t errlen);
	int (*parse_inbound)(struct adapter *ad, const struct webhook_req *req,
	    struct in_msg *out, char *err, size_t errlen);
	int (*parse_status)(struct adapter *ad, const struct webhook_req *req,
	    struct status_update *out, char *err, size_t errlen);
	const char *(*reply_body)(struct adapter *ad, enum webhook_kind kind,
	    const char **ctype);
};

/* An adapter instance. The core reads it; the adapter owns 'priv'. */
struct adapter {
	const struct adapter_ops *ops;
	char *name; /* instance: sender name or "email" */
	struct adapter_env env;
	void *priv;	    /* the adapter's own state */
	unsigned in_flight; /* sends whose done has not run */
	bool draining;
	struct adapter_call_list calls; /* adapter.c's records of those */
};

/*
 * The adapters, one per file (console.c, file.c, smtp.c, and twilio.c,
 * vonage.c, plivo.c, telnyx.c, kannel.c through smshttp.c); adapter.c
 * lists them in adapter_table[]. Declared here so that the compiler checks
 * each definition against the one type: a new adapter adds its line here
 * and in adapter_table[].
 */
extern const struct adapter_ops console_ops;
extern const struct adapter_ops file_ops;
extern const struct adapter_ops kannel_ops;
extern const struct adapter_ops plivo_ops;
extern const struct adapter_ops smtp_ops;
extern const struct adapter_ops telnyx_ops;
extern const struct adapter_ops twilio_ops;
extern const struct adapter_ops vonage_ops;

/* The ops called 'name' in adapter_table[], or NULL. */
const struct adapter_ops *adapter_ops_lookup(const char *name);

/*
 * Creates an instance of adapter 'ops_name' called 'name' and runs its
 * init() on 'sec' (may be NULL for adapters without keys). Returns it, or
 * NULL with "FILE:LINE: ..." (or "unknown provider ...") in err.
 */
struct adapter *adapter_new(const char *ops_name, const char *name,
    const struct adapter_env *env, const struct config_section *sec, char *err,
    size_t errlen);

/*
 * Hands msg to the adapter. Returns 0 (done will run exactly once, later)
 * or -1 (done never runs; the adapter is draining or refused the message
 * outright, reason in res->text is not available: treat as transient).
 */
int adapter_send(struct adapter *ad, const struct out_msg *msg,
    adapter_done_fn *done, void *arg);

/* Stops new sends; in-flight ones still complete. */
void adapter_drain(struct adapter *ad);
/* Frees the instance; call after in_flight reached 0 or the loop ended. */
void adapter_free(struct adapter *ad);

/*
 * For adapters that finish synchronously (console): schedules
 * done(arg, res) on the loop's next turn, keeping rule 2. res is copied.
 */
void adapter_complete_later(struct adapter *ad, adapter_done_fn *done,
    void *arg, const struct send_result *res);

/* The first value of form field 'key' in req, or NULL. */
const char *webhook_param(const struct webhook_req *req, const char *key);
/* The value of header 'name' (case-insensitive), or NULL. */
const char *webhook_header(const struct webhook_req *req, const char *name);

/* Fills res as accepted / transient / permanent with printf-style text. */
void send_result_set(struct send_result *res, enum send_outcome outcome,
    int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
