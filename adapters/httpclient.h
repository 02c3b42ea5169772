/*
 * httpclient.h - one libcurl multi handle driven by the daemon's libevent
 * loop (CURLMOPT_SOCKETFUNCTION + CURLMOPT_TIMERFUNCTION): outbound HTTP
 * that never blocks the loop.
 *
 * Contract:
 *  - Loop thread only. httpc_request() never blocks; 'done' runs exactly
 *    once, later, on the loop thread, never from inside httpc_request().
 *  - Connections are reused (keep-alive) and capped per host; connect and
 *    total timeouts apply to every request.
 *  - TLS peer and host verification are always on; ca_file adds a CA
 *    bundle (e.g. a test CA). There is no switch to turn them off.
 *  - The response is borrowed for the callback only.
 *  - Nothing here logs; failures arrive in the response.
 *  - A done callback may start or cancel requests, but must not call
 *    httpc_free().
 */
#ifndef OD_HTTPCLIENT_H
#define OD_HTTPCLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct httpc;

/* A response body over this many bytes fails the request (curl_code). */
#define HTTPC_MAX_BODY (1024 * 1024)

struct httpc_config {
	unsigned connect_timeout_ms; /* 0 = 5000 */
	unsigned timeout_ms;	     /* whole request; 0 = 15000 */
	unsigned max_per_host;	     /* connections per host; 0 = 16 */
	unsigned max_total;	     /* connections in all; 0 = 256 */
	const char *ca_file;	     /* extra CA bundle (PEM); NULL = none */
};

struct httpc_request {
	const char *method; /* "POST", "GET", ... */
	const char *url;    /* absolute http:// or https:// URL */
	/* Extra request headers, "Name: value", NULL-terminated; or NULL. */
	const char *const *headers;
	const char *body; /* may be NULL for GET */
	size_t body_len;
	unsigned timeout_ms; /* 0 = the client's default */
};

struct httpc_response {
	int status;	     /* HTTP status; 0 when no response came */
	int curl_code;	     /* CURLcode; 0 = transfer completed */
	bool timed_out;	     /* connect or total timeout */
	bool connect_failed; /* refused, unreachable, DNS: nothing sent */
	/* True if the request may have reached the server (the connection
	 * was established): a failure then leaves the outcome uncertain. */
	bool maybe_sent;
	unsigned retry_after;	  /* seconds from a Retry-After header; 0 */
	const char *content_type; /* or NULL */
	const char *body;	  /* NUL-terminated; "" when empty */
	size_t body_len;
	double total_ms; /* request to end of response */
	char error[256]; /* curl's text when curl_code != 0 */
};

typedef void httpc_done_fn(void *arg, const struct httpc_response *resp);

/*
 * Creates the client on base (curl_global_init must have run: the daemon
 * does it once in main). Returns it, or NULL with the reason in err.
 */
struct httpc *httpc_new(struct event_base *base, const struct httpc_config *cfg,
    char *err, size_t errlen);
/*
 * Starts a request; the request struct and its strings are copied. Returns
 * 0 (done will run exactly once) or -1 with err set (done never runs).
 */
int httpc_request(struct httpc *c, const struct httpc_request *req,
    httpc_done_fn *done, void *arg, char *err, size_t errlen);
/*
 * Cancels every unfinished request started with this 'arg': their done
 * callbacks never run. Returns how many were cancelled. For owners that
 * give up sends (smshttp_free at the shutdown deadline) so that no
 * callback reaches freed memory. Callable from a done callback, not from
 * inside libcurl's own callbacks.
 */
unsigned httpc_cancel(struct httpc *c, const void *arg);
/* Requests started and not yet finished. */
unsigned httpc_in_flight(const struct httpc *c);
/*
 * Aborts every transfer still running, without calling their done
 * callbacks, and frees the client. Call after the adapters settled or
 * were given up at the shutdown deadline. NULL is a no-op.
 */
void httpc_free(struct httpc *c);

#endif
