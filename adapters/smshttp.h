/*
 * smshttp.h - the shared driver of the HTTP SMS providers (Twilio,
 * Vonage, Plivo, Telnyx, Kannel): Kannel's two-level split without its
 * #include'd .c files (doc/adapters.md).
 *
 * A provider file supplies pure functions: configure (its keys of
 * [sender NAME]), build (the request for one message) and classify (the
 * provider's answer as a send_result), plus its webhook functions. This
 * driver does everything else: the common keys, libcurl through httpc,
 * the in-flight list, drain and free. Provider functions are exported in
 * a const struct smshttp_provider so unit tests run them on fixtures with
 * no sockets.
 *
 * Common keys of [sender NAME] (besides the provider's own):
 *   provider, from, rate, burst  (read by config.c and the dispatcher)
 *   base_url   the provider's API root; default the real one, tests and
 *              benchmarks point it at the fake provider on loopback
 *   timeout    whole request, default 15s
 *
 * Contract:
 *  - smshttp_send() follows adapter.h rules 2-7: never blocks, done
 *    exactly once on the loop thread; a failure after the connection was
 *    made is transient and 'uncertain'.
 *  - build() and classify() are pure: no I/O, no globals, no logging; the
 *    secrets they place in headers never reach send_result.text.
 */
#ifndef OD_SMSHTTP_H
#define OD_SMSHTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter.h"
#include "httpclient.h"

struct evbuffer;

#define SMSHTTP_MAX_HEADERS 4

/* What build() fills for one message. */
struct smshttp_req {
	const char *method; /* "POST" (default) or "GET" */
	/* 20 KiB: a Kannel GET carries 1,600 UCS-2 characters, each up to
	 * 12 bytes once UTF-8 is percent-encoded. */
	char path[20480];	  /* appended to base_url; may hold a
				   * query for GET */
	const char *content_type; /* NULL for GET */
	struct evbuffer *body;	  /* handed over empty; append to it */
	/* Extra headers, "Name: value" (e.g. Authorization). */
	char headers[SMSHTTP_MAX_HEADERS][512];
	size_t nheaders;
};

struct smshttp_provider {
	const char *name;	      /* as in adapter_ops */
	const char *default_base_url; /* "https://api.twilio.com" */
	/* The provider's own keys of [sender NAME], NULL-terminated. */
	const char *const *keys;
	/*
	 * Reads the provider's keys from sec into a new state object
	 * (*prov); FILE:LINE errors in err. 'from' is the sender's from
	 * (may be NULL). Returns 0 / -1.
	 */
	int (*configure)(const struct config_section *sec, const char *from,
	    void **prov, char *err, size_t errlen);
	void (*prov_free)(void *prov);
	/*
	 * Builds the request sending msg. 'status_url' is the sender's
	 * status webhook URL (NULL when [http] public_url is unset).
	 * Returns 0, or -1 when msg can never be sent this way (err set:
	 * the message fails permanently).
	 */
	int (*build)(const void *prov, const struct out_msg *msg,
	    const char *status_url, struct smshttp_req *req, char *err,
	    size_t errlen);
	/* Maps the provider's answer (or a transport failure) to res. */
	void (*classify)(const void *prov, const struct httpc_response *resp,
	    struct send_result *res);
};

/*
 * Each provider file's functions (twilio.c, vonage.c, plivo.c, telnyx.c,
 * kannel.c), used by its adapter_ops.init and by the unit tests, which run
 * them on fixtures.
 */
extern const struct smshttp_provider kannel_provider;
extern const struct smshttp_provider plivo_provider;
extern const struct smshttp_provider telnyx_provider;
extern const struct smshttp_provider twilio_provider;
extern const struct smshttp_provider vonage_provider;

/*
 * adapter_ops.init for an HTTP provider: checks the common and the
 * provider's keys (unknown ones fail with FILE:LINE), runs configure().
 */
int smshttp_init(struct adapter *ad, const struct config_section *sec,
    const struct smshttp_provider *p, char *err, size_t errlen);
/* adapter_ops.send / drain / free for every HTTP provider. */
int smshttp_send(struct adapter *ad, const struct out_msg *msg,
    adapter_done_fn *done, void *arg);
void smshttp_drain(struct adapter *ad);
void smshttp_free(struct adapter *ad);

/* The provider's state made by configure(), for its webhook functions. */
void *smshttp_prov(const struct adapter *ad);
/*
 * The public URL of this sender's webhook of 'kind'
 * ("<public_url>/webhooks/<sender>/status"), or NULL without a
 * public_url. Borrowed from the adapter.
 */
const char *smshttp_webhook_url(const struct adapter *ad,
    enum webhook_kind kind);

/*
 * addr (E.164, with or without '+') as bare digits into buf, the form
 * Vonage, Plivo and Kannel take; -1 unless it is 7 to 15 digits.
 */
int smshttp_digits(const char *addr, char *buf, size_t len);
/*
 * A number a provider reports without '+' ("15551230001", or
 * "0015551230001" from some SMSCs) as +E.164 in buf; short codes and
 * alphanumeric senders are copied as they are.
 */
void smshttp_address_in(const char *addr, char *buf, size_t len);

/*
 * Appends sep (nothing when '\0'), key, '=' and value percent-encoded
 * for a form body or a query string: every byte but A-Z a-z 0-9 - . _ ~
 * as %XX (upper-case hex); a space as '+' when space_plus, else as %20.
 * The bytes are evhttp_uriencode()'s, written straight into b.
 */
void smshttp_form_add(struct evbuffer *b, char sep, const char *key,
    const char *value, bool space_plus);

/*
 * The transport part of classify, shared by all providers: no response
 * (refused, DNS: transient, certain), timeout or connection dropped
 * (transient, uncertain), 429 (transient, Retry-After), 5xx (transient).
 * Returns 1 when it classified resp, 0 when the provider must look at
 * the HTTP status and body itself.
 */
int smshttp_classify_transport(const struct httpc_response *resp,
    struct send_result *res);

#endif
