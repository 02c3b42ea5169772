/*
 * check_sms.c - the harness the SMS provider unit tests share (see
 * check_sms.h): config file to adapter, fixtures, webhook requests, and
 * the provider's build() and classify() run directly.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/buffer.h>
#include <event2/http.h>

#include "adapter.h"
#include "check_sms.h"
#include "config.h"
#include "message.h"
#include "smshttp.h"

#define CKS_FIXTURES OD_SRCDIR "/tests/fixtures"

void
cks_setup(struct cks_ctx *ctx, const struct smshttp_provider *prov,
    const char *label)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->prov = prov;
	ctx->label = label;
	snprintf(ctx->dir, sizeof(ctx->dir), "/tmp/check_%s.XXXXXX",
	    prov->name);
	ck_assert_ptr_nonnull(mkdtemp(ctx->dir));
	snprintf(ctx->path, sizeof(ctx->path), "%s/od.conf", ctx->dir);
}

void
cks_teardown(struct cks_ctx *ctx)
{
	cks_req_free(&ctx->r);
	adapter_free(ctx->ad);
	config_free(ctx->cfg);
	ctx->ad = NULL;
	ctx->cfg = NULL;
	unlink(ctx->path);
	rmdir(ctx->dir);
}

/*
 * The config is a real file (mode 0600, as the daemon wants secrets) so
 * that errors carry the FILE:LINE an operator would see.
 */
struct adapter *
cks_adapter(struct cks_ctx *ctx, const char *text, const char *public_url)
{
	struct adapter_env env = {.var_dir = ctx->dir,
	    .public_url = public_url};
	const struct config_sender *snd;
	FILE *fp;

	adapter_free(ctx->ad);
	config_free(ctx->cfg);
	ctx->ad = NULL;
	fp = fopen(ctx->path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	chmod(ctx->path, 0600);
	ctx->cfg =
	    config_load(ctx->path, NULL, NULL, ctx->err, sizeof(ctx->err));
	if (ctx->cfg == NULL)
		return NULL;
	snd = config_sender_lookup(ctx->cfg, ctx->label);
	ck_assert_ptr_nonnull(snd);
	ctx->ad = adapter_new(ctx->prov->name, ctx->label, &env, snd->section,
	    ctx->err, sizeof(ctx->err));
	return ctx->ad;
}

char *
cks_fixture(const char *provider, const char *name)
{
	char path[PATH_MAX];
	char *buf;
	long n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s/%s", CKS_FIXTURES, provider, name);
	fp = fopen(path, "rb");
	ck_assert_msg(fp != NULL, "cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

void
cks_req_init(struct cks_req *r, const char *method, const char *url,
    const char *body, const char *peer)
{
	cks_req_free(r);
	r->body = strdup(body);
	ck_assert_ptr_nonnull(r->body);
	r->req.method = method;
	r->req.url = url;
	r->req.body = r->body;
	r->req.body_len = strlen(r->body);
	r->req.peer = peer;
	r->req.params = r->kv;
	r->req.headers = r->hdr;
}

/* As the webhook layer decodes a form: '+' is a space, no '=' is "". */
void
cks_req_decode(struct cks_req *r, const char *form)
{
	char *copy = strdup(form), *pair, *save = NULL, *eq;

	ck_assert_ptr_nonnull(copy);
	for (pair = strtok_r(copy, "&", &save); pair != NULL;
	     pair = strtok_r(NULL, "&", &save)) {
		ck_assert_uint_lt(r->req.nparams, CKS_MAX_KV);
		if ((eq = strchr(pair, '=')) != NULL)
			*eq++ = '\0';
		r->own[r->nown] = evhttp_uridecode(pair, 1, NULL);
		r->kv[r->req.nparams].key = r->own[r->nown++];
		r->own[r->nown] =
		    evhttp_uridecode(eq != NULL ? eq : "", 1, NULL);
		r->kv[r->req.nparams++].value = r->own[r->nown++];
	}
	free(copy);
}

void
cks_req_free(struct cks_req *r)
{
	size_t i;

	for (i = 0; i < r->nown; i++)
		free(r->own[i]);
	free(r->query);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int
cks_verify(struct cks_ctx *ctx)
{
	ctx->err[0] = '\0';
	return ctx->ad->ops->verify(ctx->ad, &ctx->r.req, ctx->err,
	    sizeof(ctx->err));
}

void
cks_msg(struct out_msg *msg, const char *body)
{
	memset(msg, 0, sizeof(*msg));
	msg->id = 42;
	msg->channel = CHANNEL_SMS;
	strcpy(msg->to, "+14155550100");
	msg->body = (char *)body;
}

char *
cks_build(struct cks_ctx *ctx, const struct out_msg *msg,
    struct smshttp_req *req, int *rc)
{
	char err[256] = "";
	char *out;

	memset(req, 0, sizeof(*req));
	req->body = evbuffer_new();
	ck_assert_ptr_nonnull(req->body);
	*rc = ctx->prov->build(smshttp_prov(ctx->ad), msg,
	    smshttp_webhook_url(ctx->ad, WEBHOOK_STATUS), req, err,
	    sizeof(err));
	if (*rc == -1) {
		ck_assert_str_ne(err, "");
		snprintf(ctx->err, sizeof(ctx->err), "%s", err);
	}
	evbuffer_add(req->body, "", 1);
	out = strdup((char *)evbuffer_pullup(req->body, -1));
	ck_assert_ptr_nonnull(out);
	evbuffer_free(req->body);
	req->body = NULL;
	return out;
}

/* res is poisoned so that a field classify() forgets shows. */
void
cks_classify(const struct smshttp_provider *prov, int status, const char *body,
    unsigned retry_after, struct send_result *res)
{
	struct httpc_response resp;

	memset(&resp, 0, sizeof(resp));
	resp.status = status;
	resp.maybe_sent = true;
	resp.retry_after = retry_after;
	resp.body = body != NULL ? body : "";
	resp.body_len = strlen(resp.body);
	memset(res, 0xa5, sizeof(*res));
	prov->classify(NULL, &resp, res);
}

void
cks_classify_file(const struct smshttp_provider *prov, int status,
    const char *file, unsigned retry_after, struct send_result *res)
{
	char *body = file != NULL ? cks_fixture(prov->name, file) : NULL;

	cks_classify(prov, status, body, retry_after, res);
	free(body);
}

void
cks_assert_config_error(struct cks_ctx *ctx, const char *text,
    const char *public_url, int line, const char *msg)
{
	char want[PATH_MAX + 16];

	ck_assert_ptr_null(cks_adapter(ctx, text, public_url));
	snprintf(want, sizeof(want), "%s:%d: ", ctx->path, line);
	ck_assert_msg(strncmp(ctx->err, want, strlen(want)) == 0,
	    "'%s' does not start with '%s'", ctx->err, want);
	ck_assert_msg(strstr(ctx->err, msg) != NULL, "'%s' lacks '%s'",
	    ctx->err, msg);
}
