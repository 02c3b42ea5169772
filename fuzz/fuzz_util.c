/*
 * fuzz_util.c - the harness the libFuzzer targets share (fuzz_util.h):
 * scratch file, adapter from a config text, webhook requests from bytes.
 *
 * The form decoding here mirrors daemon/webhooks.c on purpose (the same
 * splitting, the same libevent decoder, the same refusal of NUL bytes):
 * adapters must survive whatever that layer can hand them, and nothing
 * more is fair to ask.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/http.h>

#include "adapter.h"
#include "config.h"
#include "csv.h"
#include "fuzz_util.h"
#include "message.h"

/* The form type the webhook layer decodes (daemon/webhooks.c). */
static const char fuzz_form_type[] = "application/x-www-form-urlencoded";

static char fuzz_scratch[64];
/* The webhook targets' config: lives as long as the process (and stays
 * reachable, so the leak checker does not count it). */
static struct config *fuzz_cfg;

static void fuzz_scratch_remove(void);
static char *fuzz_line(char **p);
static bool fuzz_is_form(const struct fuzz_req *r);
static int fuzz_form_decode(struct fuzz_req *r, const char *s, size_t len);
static char *fuzz_decode(const char *s, size_t n);
static void fuzz_check_string(const char *what, const char *s, size_t size);

void
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static void
fuzz_scratch_remove(void)
{
	if (fuzz_scratch[0] != '\0')
		unlink(fuzz_scratch);
}

const char *
fuzz_scratch_write(const void *data, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	FILE *fp;
	int fd;

	if (fuzz_scratch[0] == '\0') {
		snprintf(fuzz_scratch, sizeof(fuzz_scratch),
		    "%s/od-fuzz.XXXXXX",
		    tmp != NULL && *tmp != '\0' && strlen(tmp) < 40 ? tmp
								    : "/tmp");
		if ((fd = mkstemp(fuzz_scratch)) == -1)
			fuzz_fail("mkstemp %s failed", fuzz_scratch);
		close(fd);
		atexit(fuzz_scratch_remove);
	}
	/* "w" truncates: the file holds exactly this input. */
	if ((fp = fopen(fuzz_scratch, "w")) == NULL ||
	    fwrite(data, 1, len, fp) != len || fclose(fp) != 0)
		fuzz_fail("cannot write %s", fuzz_scratch);
	return fuzz_scratch;
}

void
fuzz_senders_new(const char *text, const char *public_url,
    struct fuzz_sender *s, size_t n)
{
	struct adapter_env env = {.var_dir = "/nonexistent",
	    .public_url = public_url};
	const struct config_sender *snd;
	struct config *cfg;
	char err[512];
	size_t i;

	cfg = config_load(fuzz_scratch_write(text, strlen(text)), NULL, NULL,
	    err, sizeof(err));
	if (cfg == NULL)
		fuzz_fail("setup: %s", err);
	fuzz_cfg = cfg;
	for (i = 0; i < n; i++) {
		if ((snd = config_sender_lookup(cfg, s[i].name)) == NULL)
			fuzz_fail("setup: no [sender %s]", s[i].name);
		s[i].ad = adapter_new(snd->provider, s[i].name, &env,
		    snd->section, err, sizeof(err));
		if (s[i].ad == NULL)
			fuzz_fail("setup: %s", err);
	}
}

void
fuzz_webhook_input(const char *text, const char *public_url,
    struct fuzz_sender *s, size_t n, const uint8_t *data, size_t len)
{
	struct fuzz_req r;
	size_t i;

	if (s[0].ad == NULL)
		fuzz_senders_new(text, public_url, s, n);
	if (fuzz_req_parse(&r, data, len, public_url, 0) == 0)
		for (i = 0; i < n; i++) {
			r.req.now = s[i].now;
			fuzz_webhook_run(s[i].ad, &r.req);
		}
	fuzz_req_free(&r);
}

/* The next line of *p (LF or CRLF cut off), or NULL at the end. */
static char *
fuzz_line(char **p)
{
	char *line = *p, *nl;
	size_t n;

	if (line == NULL)
		return NULL;
	if ((nl = strchr(line, '\n')) != NULL) {
		*nl = '\0';
		*p = nl + 1;
	} else
		*p = NULL;
	n = strlen(line);
	if (n > 0 && line[n - 1] == '\r')
		line[n - 1] = '\0';
	return line;
}

int
fuzz_req_parse(struct fuzz_req *r, const uint8_t *data, size_t len,
    const char *public_url, int64_t now)
{
	const uint8_t *sep;
	const char *target;
	char *p, *line, *sp, *colon;
	size_t hlen, blen;

	memset(r, 0, sizeof(*r));
	/* The head ends at the first empty line; the body is the rest. */
	hlen = len;
	blen = 0;
	for (sep = data;
	     (sep = memchr(sep, '\n', len - (size_t)(sep - data))) != NULL;
	     sep++) {
		if ((size_t)(sep - data) + 1 < len && sep[1] == '\n') {
			hlen = (size_t)(sep - data);
			blen = len - hlen - 2;
			break;
		}
		if ((size_t)(sep - data) + 2 < len && sep[1] == '\r' &&
		    sep[2] == '\n') {
			hlen = (size_t)(sep - data);
			blen = len - hlen - 3;
			break;
		}
	}
	r->text = strndup((const char *)data, hlen); /* stops at a NUL */
	r->body = malloc(blen + 1);
	if (r->text == NULL || r->body == NULL)
		fuzz_fail("out of memory");
	memcpy(r->body, data + len - blen, blen);
	r->body[blen] = '\0';

	p = r->text;
	line = fuzz_line(&p);
	r->req.method = "POST";
	if (line == NULL)
		target = "/";
	else if ((sp = strchr(line, ' ')) != NULL) {
		*sp = '\0';
		target = sp + 1;
		if (strcmp(line, "GET") == 0)
			r->req.method = "GET";
	} else
		target = line;
	if ((r->req.query = strchr(target, '?')) != NULL)
		r->req.query++;
	if (asprintf(&r->url, "%s%s", public_url, target) == -1)
		fuzz_fail("out of memory");
	while ((line = fuzz_line(&p)) != NULL &&
	    r->req.nheaders < FUZZ_MAX_HEADERS) {
		if ((colon = strchr(line, ':')) == NULL)
			continue;
		*colon++ = '\0';
		colon += strspn(colon, " \t");
		r->hdr[r->req.nheaders].key = line;
		r->hdr[r->req.nheaders++].value = colon;
	}
	r->req.url = r->url;
	r->req.body = r->body;
	r->req.body_len = blen;
	r->req.peer = "127.0.0.1";
	r->req.now = now;
	r->req.headers = r->hdr;
	if (strcmp(r->req.method, "GET") == 0 && r->req.query != NULL)
		return fuzz_form_decode(r, r->req.query, strlen(r->req.query));
	if (strcmp(r->req.method, "POST") == 0 && fuzz_is_form(r))
		return fuzz_form_decode(r, r->body, blen);
	return 0;
}

void
fuzz_req_free(struct fuzz_req *r)
{
	size_t i;

	for (i = 0; i < r->req.nparams; i++) {
		free((char *)r->params[i].key);
		free((char *)r->params[i].value);
	}
	free(r->params);
	free(r->text);
	free(r->body);
	free(r->url);
	memset(r, 0, sizeof(*r));
}

/* As webhooks_is_form(): the type, then the end or parameters. */
static bool
fuzz_is_form(const struct fuzz_req *r)
{
	const char *ct = webhook_header(&r->req, "Content-Type");
	size_t n = sizeof(fuzz_form_type) - 1;

	if (ct == NULL || strncasecmp(ct, fuzz_form_type, n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/* As webhooks_form_decode() (without its cap of 1,000 fields). */
static int
fuzz_form_decode(struct fuzz_req *r, const char *s, size_t len)
{
	const char *p = s, *end = s + len, *amp, *eq;
	char *key, *value;

	if (memchr(s, '\0', len) != NULL)
		return -1;
	for (; p < end; p = amp + 1) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp == p)
			continue;
		eq = memchr(p, '=', (size_t)(amp - p));
		key = fuzz_decode(p, (size_t)((eq != NULL ? eq : amp) - p));
		value = eq != NULL ? fuzz_decode(eq + 1, (size_t)(amp - eq - 1))
				   : strdup("");
		if (key == NULL || value == NULL) {
			free(key);
			free(value);
			return -1;
		}
		if (r->req.nparams == r->cap) {
			r->cap = r->cap == 0 ? 32 : r->cap * 2;
			r->params =
			    reallocarray(r->params, r->cap, sizeof(*r->params));
			if (r->params == NULL)
				fuzz_fail("out of memory");
		}
		r->params[r->req.nparams].key = key;
		r->params[r->req.nparams++].value = value;
		r->req.params = r->params;
	}
	return 0;
}

/* Percent-decoded copy of s[0..n) with '+' as a space; NULL on a NUL. */
static char *
fuzz_decode(const char *s, size_t n)
{
	char *raw = strndup(s, n), *out;
	size_t outlen = 0;

	if (raw == NULL)
		fuzz_fail("out of memory");
	out = evhttp_uridecode(raw, 1, &outlen);
	free(raw);
	if (out == NULL)
		fuzz_fail("evhttp_uridecode failed");
	if (strlen(out) != outlen) {
		free(out);
		return NULL;
	}
	return out;
}

/* A fixed-size string field must be NUL-terminated inside its array. */
static void
fuzz_check_string(const char *what, const char *s, size_t size)
{
	if (memchr(s, '\0', size) == NULL)
		fuzz_fail("%s is not NUL-terminated", what);
}

void
fuzz_webhook_run(struct adapter *ad, const struct webhook_req *req)
{
	struct in_msg m;
	struct status_update u;
	const char *ctype = NULL, *reply;
	char err[256];
	int rc;

	err[0] = '\0';
	rc = ad->ops->verify(ad, req, err, sizeof(err));
	if (rc != 0 && (rc != -1 || err[0] == '\0'))
		fuzz_fail("verify returned %d with reason '%s'", rc, err);

	memset(&m, 0, sizeof(m));
	err[0] = '\0';
	rc = ad->ops->parse_inbound(ad, req, &m, err, sizeof(err));
	if (rc == -1 && err[0] == '\0')
		fuzz_fail("parse_inbound failed without a reason");
	if (rc == 0) {
		fuzz_check_string("in_msg.provider_id", m.provider_id,
		    sizeof(m.provider_id));
		fuzz_check_string("in_msg.from", m.from, sizeof(m.from));
		fuzz_check_string("in_msg.to", m.to, sizeof(m.to));
		fuzz_check_string("in_msg.concat_ref", m.concat_ref,
		    sizeof(m.concat_ref));
		/* Bytes that are not UTF-8 are refused by the webhook layer
		 * (webhooks_in_msg_is_utf8), not by every adapter. */
		if (m.body == NULL)
			fuzz_fail("parse_inbound gave no body");
	} else if (rc != 1 && rc != -1)
		fuzz_fail("parse_inbound returned %d", rc);
	in_msg_clear(&m);

	memset(&u, 0, sizeof(u));
	err[0] = '\0';
	rc = ad->ops->parse_status(ad, req, &u, err, sizeof(err));
	if (rc == -1 && err[0] == '\0')
		fuzz_fail("parse_status failed without a reason");
	if (rc == 0) {
		fuzz_check_string("status_update.provider_id", u.provider_id,
		    sizeof(u.provider_id));
		fuzz_check_string("status_update.text", u.text, sizeof(u.text));
		if ((unsigned)u.status >= MSG_ST_COUNT)
			fuzz_fail("parse_status gave status %d", (int)u.status);
	} else if (rc != 1 && rc != -1)
		fuzz_fail("parse_status returned %d", rc);

	reply = ad->ops->reply_body(ad, WEBHOOK_INBOUND, &ctype);
	if (reply == NULL)
		fuzz_fail("reply_body returned NULL");
}

bool
fuzz_is_utf8(const char *s, size_t len)
{
	size_t bad;

	return csv_utf8_check(s, len, &bad) == 0;
}
