/*
 * check_sms.h - the harness the SMS provider unit tests share
 * (check_kannel.c, check_plivo.c, check_telnyx.c, check_twilio.c,
 * check_vonage.c): an adapter of one [sender] made from a real config
 * file in a per-test temp dir, fixtures from tests/fixtures/<provider>/,
 * webhook requests with their decoded fields, and the provider's pure
 * build() and classify() run on one message or one answer.
 *
 * Contract:
 *  - Test code only: a failure of the harness itself (a missing
 *    fixture, a full request) is a failed Check assertion; only what the
 *    adapter answers comes back to the caller.
 *  - A struct cks_ctx is the state of one test: cks_setup() as the
 *    checked fixture's setup, cks_teardown() as its teardown; in between
 *    it owns its temp dir, config, adapter and request.
 *  - Adapters get an env whose httpc is NULL: init must do no I/O.
 *  - Strings returned are malloc'ed and the caller frees them; a struct
 *    cks_req owns what its req points at until cks_req_free().
 */
#ifndef OD_CHECK_SMS_H
#define OD_CHECK_SMS_H

#include <limits.h>
#include <stddef.h>

#include "adapter.h"
#include "message.h"
#include "smshttp.h"

struct config;

#define CKS_MAX_KV  40 /* decoded fields of one request */
#define CKS_MAX_HDR 4  /* headers of one request */

/* A webhook request with its own body, query, decoded fields, headers. */
struct cks_req {
	struct webhook_req req;
	struct webhook_kv kv[CKS_MAX_KV];
	struct webhook_kv hdr[CKS_MAX_HDR];
	char *own[2 * CKS_MAX_KV]; /* kv[i] is own[2i] = own[2i + 1] */
	size_t nown;
	char *query;
	char *body;
};

/* One test's [sender] adapter and the files behind it. */
struct cks_ctx {
	const struct smshttp_provider *prov;
	const char *label;   /* the [sender LABEL] cks_adapter() makes */
	char dir[64];	     /* /tmp/check_<provider>.XXXXXX */
	char path[PATH_MAX]; /* dir/od.conf */
	char err[512];
	struct config *cfg;
	struct adapter *ad;
	struct cks_req r;
};

/*
 * Starts a test of prov's [sender label]: makes ctx's temp dir, with no
 * config, adapter or request yet.
 */
void cks_setup(struct cks_ctx *ctx, const struct smshttp_provider *prov,
    const char *label);

/* Frees what ctx holds and removes its temp dir. */
void cks_teardown(struct cks_ctx *ctx);

/*
 * Writes 'text' as ctx's config file, loads it and makes the adapter of
 * [sender ctx->label] into ctx->ad (freeing any earlier one). NULL with
 * ctx->err set when config or init fails.
 */
struct adapter *cks_adapter(struct cks_ctx *ctx, const char *text,
    const char *public_url);
/*
 * Asserts that config 'text' makes no adapter and that the error reads
 * "FILE:LINE: ..." at 'line' and contains 'msg'.
 */
void cks_assert_config_error(struct cks_ctx *ctx, const char *text,
    const char *public_url, int line, const char *msg);

/* tests/fixtures/<provider>/<name>, NUL-terminated; free() it. */
char *cks_fixture(const char *provider, const char *name);

/*
 * Resets r to a 'method' request to 'url' from 'peer' with a copy of
 * 'body'; params and headers point at r's empty arrays.
 */
void cks_req_init(struct cks_req *r, const char *method, const char *url,
    const char *body, const char *peer);

/* Appends the fields of urlencoded 'form' to r's params, decoded. */
void cks_req_decode(struct cks_req *r, const char *form);

/* Frees what r owns and zeroes it. */
void cks_req_free(struct cks_req *r);

/* Runs verify() of ctx's adapter on ctx->r; 0 / -1 with ctx->err set. */
int cks_verify(struct cks_ctx *ctx);

/* Fills msg: id 42, SMS to +14155550100, 'body' (not copied). */
void cks_msg(struct out_msg *msg, const char *body);

/*
 * Runs build() of ctx's provider for msg on ctx->ad (with its status
 * URL) into req; *rc is its result, on -1 with its reason (never empty)
 * in ctx->err. Returns the body made (free() it); req->body is NULL.
 */
char *cks_build(struct cks_ctx *ctx, const struct out_msg *msg,
    struct smshttp_req *req, int *rc);

/*
 * Runs prov's classify() on an answer 'status' with 'body' (NULL: none)
 * and 'retry_after', into res, which is poisoned first.
 */
void cks_classify(const struct smshttp_provider *prov, int status,
    const char *body, unsigned retry_after, struct send_result *res);

/* cks_classify() with the body of prov's fixture 'file' (NULL: none). */
void cks_classify_file(const struct smshttp_provider *prov, int status,
    const char *file, unsigned retry_after, struct send_result *res);

#endif
