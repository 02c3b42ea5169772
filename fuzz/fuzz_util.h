/*
 * fuzz_util.h - what the libFuzzer targets in fuzz/ share: a scratch file
 * for parsers that read a path, an SMS adapter made from a config text,
 * and a provider callback decoded from the fuzzer's bytes the way the
 * daemon's webhook layer decodes a real one.
 *
 * A webhook input is written like an HTTP/1.1 request, so seeds can be
 * made from the recorded fixtures and read by eye:
 *
 *	POST /webhooks/tw1/inbound?optional=query
 *	Content-Type: application/x-www-form-urlencoded
 *	X-Twilio-Signature: ...
 *
 *	body bytes (to the end of the input; may hold anything)
 *
 * The request line is "METHOD TARGET" (a missing or odd method is POST);
 * header lines are "Name: value" up to an empty line; LF or CRLF ends a
 * line. Form fields come from the query of a GET and from the body of a
 * POST whose Content-Type is application/x-www-form-urlencoded, decoded as
 * daemon/webhooks.c does ('+' is a space, percent-escapes decoded, a field
 * that would hold a NUL byte makes the request malformed).
 *
 * Contract:
 *  - Test code only. A broken invariant or a harness failure calls
 *    fuzz_fail(), which prints the reason and aborts, so libFuzzer saves
 *    the input as a crash.
 *  - struct fuzz_req owns every string its req points at until
 *    fuzz_req_free().
 */
#ifndef OD_FUZZ_UTIL_H
#define OD_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"

#define FUZZ_MAX_HEADERS 32 /* headers kept of one request */

/* libFuzzer's entry point, which every target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A webhook request decoded from fuzzer bytes. */
struct fuzz_req {
	struct webhook_req req;
	struct webhook_kv hdr[FUZZ_MAX_HEADERS];
	struct webhook_kv *params; /* decoded copies */
	size_t cap;
	char *text; /* the input, NUL-terminated, cut into strings */
	char *body; /* a NUL-terminated copy of the body bytes */
	char *url;
};

/* Prints "fuzz: " and the message to stderr, then aborts. */
void fuzz_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Replaces the contents of this process's scratch file with data and
 * returns its path (made on first use in $TMPDIR, removed at exit).
 */
const char *fuzz_scratch_write(const void *data, size_t len);

/* One [sender] a webhook target runs every input through. */
struct fuzz_sender {
	const char *name; /* [sender NAME] of the target's config */
	int64_t now;	  /* the clock (ms) its seeds were signed at */
	struct adapter *ad;
};

/*
 * Loads config 'text' and makes the adapter of each s[i].name into
 * s[i].ad with 'public_url' (may be NULL), as the daemon does at start.
 * Fails (aborts) when the text does not configure them: the target's own
 * setup is wrong. Config and adapters live as long as the process.
 */
void fuzz_senders_new(const char *text, const char *public_url,
    struct fuzz_sender *s, size_t n);

/*
 * One webhook target's whole test of an input: makes the senders on the
 * first call, decodes data as a request to public_url and runs it through
 * every sender at that sender's clock (fuzz_webhook_run()).
 */
void fuzz_webhook_input(const char *text, const char *public_url,
    struct fuzz_sender *s, size_t n, const uint8_t *data, size_t len);

/*
 * Decodes data (len bytes) into r as described at the top: URL is
 * public_url + the target, the peer 127.0.0.1, the clock 'now' (ms).
 * Returns 0, or -1 when the form cannot be decoded (the daemon answers
 * such a request 400 before any adapter sees it). Free r either way.
 */
int fuzz_req_parse(struct fuzz_req *r, const uint8_t *data, size_t len,
    const char *public_url, int64_t now);
/* Frees what r owns and zeroes it. */
void fuzz_req_free(struct fuzz_req *r);

/*
 * Runs ad's verify, parse_inbound, parse_status and reply_body on req, as
 * the webhook layer would (parsing even when verify fails, to reach the
 * parsers), and checks what each promises: an error reason on -1, and on
 * 0 bounded strings, a body and a known state.
 */
void fuzz_webhook_run(struct adapter *ad, const struct webhook_req *req);

/* True if s[0..len) is valid UTF-8 (the CSV reader's strict check). */
bool fuzz_is_utf8(const char *s, size_t len);

#endif
