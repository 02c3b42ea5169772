/*
 * smshttp.c - the shared driver of the HTTP SMS providers (smshttp.h).
 *
 * A provider file hands over pure functions (configure, build, classify);
 * this file owns everything with state: the common keys of [sender NAME],
 * the webhook URLs, the request through the shared httpc client, and a
 * record per send in flight.
 *
 * Ownership of a send: smshttp_send() makes a record, owned by the
 * adapter's state and passed to httpc as the callback argument. Either
 * the response arrives (the record leaves the list, done runs once, the
 * record is freed), or smshttp_free() runs first: the core gave those
 * sends up at its shutdown deadline, so free() cancels each record's
 * transfer with httpc_cancel() - no callback can then reach freed memory
 * - and releases the records without calling done (adapter.h rule 6).
 *
 * Sends that fail before any I/O (a message the provider can never carry,
 * a request httpc refuses) still report through done, on the next loop
 * turn (adapter.h rule 2): their record holds a 0 s timer instead of a
 * transfer, and free() cancels that the same way.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "httpclient.h"
#include "log.h"
#include "smshttp.h"
#include "xmalloc.h"

#define SMSHTTP_TIMEOUT_MS     15000  /* default of the 'timeout' key */
#define SMSHTTP_TIMEOUT_MAX_MS 600000 /* 10 min: anything longer is a typo */
#define SMSHTTP_MAX_KEYS       32     /* common + a provider's own */

/* One send in flight: the httpc callback argument. */
struct smshttp_rec {
	TAILQ_ENTRY(smshttp_rec) entry;
	struct adapter *ad;
	adapter_done_fn *done;
	void *arg;
	int64_t msg_id;
	struct event *later;	/* a result before any I/O, or NULL */
	struct send_result res; /* that result */
};
TAILQ_HEAD(smshttp_rec_list, smshttp_rec);

/* The driver state of one HTTP SMS sender: struct adapter's priv. */
struct smshttp {
	const struct smshttp_provider *p;
	void *prov;	     /* made by p->configure */
	char *base_url;	     /* no trailing '/' */
	unsigned timeout_ms; /* whole request */
	char *url_inbound;   /* NULL without [http] public_url */
	char *url_status;    /* idem */
	struct smshttp_rec_list recs;
	/* Kept between sends, as httpc copies what it keeps: the request
	 * body being built, and base_url + path. */
	struct evbuffer *body;
	char *url;
	size_t url_cap;
};

/* Keys every HTTP provider's [sender NAME] may carry. */
static const char *const smshttp_common_keys[] = {"provider", "from", "rate",
    "burst", "base_url", "timeout", NULL};

static int smshttp_check_keys(const struct config_section *,
    const struct smshttp_provider *, char *, size_t);
static int smshttp_base_url(const struct config_section *,
    const struct smshttp_provider *, char **, char *, size_t);
static void smshttp_webhook_urls(struct adapter *, struct smshttp *);
static void smshttp_fail_later(struct smshttp_rec *, enum send_outcome,
    const char *);
static void smshttp_on_later(evutil_socket_t, short, void *);
static int smshttp_start(struct adapter *, struct smshttp_rec *,
    struct smshttp_req *, char *, size_t);
static void smshttp_on_response(void *, const struct httpc_response *);
static const char *smshttp_outcome_to_text(enum send_outcome);

/*
 * Checks the whole [sender NAME] section of an HTTP provider: unknown
 * keys, base_url, timeout, then the provider's own keys through
 * p->configure(). Needs no httpc, so --check-config validates it all.
 * On success ad->priv holds the driver state; errors are FILE:LINE.
 */
int
smshttp_init(struct adapter *ad, const struct config_section *sec,
    const struct smshttp_provider *p, char *err, size_t errlen)
{
	struct smshttp *sh;
	unsigned timeout_ms = SMSHTTP_TIMEOUT_MS;
	char *base_url = NULL;
	void *prov = NULL;

	if (sec == NULL) {
		snprintf(err, errlen,
		    "provider '%s' needs a [sender NAME] section with its keys",
		    p->name);
		return -1;
	}
	if (smshttp_check_keys(sec, p, err, errlen) == -1 ||
	    config_section_duration_ms(sec, "timeout",
		&(struct config_range){.min = 1, .max = SMSHTTP_TIMEOUT_MAX_MS},
		&timeout_ms, err, errlen) == -1 ||
	    smshttp_base_url(sec, p, &base_url, err, errlen) == -1)
		return -1;
	if (p->configure(sec, config_section_get(sec, "from"), &prov, err,
		errlen) == -1) {
		free(base_url);
		return -1;
	}
	sh = xcalloc(1, sizeof(*sh));
	sh->p = p;
	sh->prov = prov;
	sh->base_url = base_url;
	sh->timeout_ms = timeout_ms;
	TAILQ_INIT(&sh->recs);
	smshttp_webhook_urls(ad, sh);
	ad->priv = sh;
	return 0;
}

/* Unknown keys fail: the allowed list is the common keys + p->keys. */
static int
smshttp_check_keys(const struct config_section *sec,
    const struct smshttp_provider *p, char *err, size_t errlen)
{
	const char *allowed[SMSHTTP_MAX_KEYS + 1];
	size_t n = 0, i;

	for (i = 0; smshttp_common_keys[i] != NULL; i++)
		allowed[n++] = smshttp_common_keys[i];
	for (i = 0; p->keys != NULL && p->keys[i] != NULL; i++) {
		if (n == SMSHTTP_MAX_KEYS)
			fatalx("smshttp: provider %s has too many keys",
			    p->name);
		allowed[n++] = p->keys[i];
	}
	allowed[n] = NULL;
	return config_section_check_keys(sec, allowed, err, errlen);
}

/*
 * base_url (default: the provider's) must be an absolute http:// or
 * https:// URL with a host and no query or fragment; paths are appended
 * to it, so trailing slashes are dropped. A path prefix is allowed
 * (a proxy, or the fake provider's per-test prefix).
 */
static int
smshttp_base_url(const struct config_section *sec,
    const struct smshttp_provider *p, char **out, char *err, size_t errlen)
{
	const char *v = p->default_base_url;
	struct evhttp_uri *u = NULL;
	const char *scheme, *host;
	size_t len;

	if (config_section_str(sec, "base_url", false, &v, err, errlen) == -1)
		return -1;
	u = evhttp_uri_parse_with_flags(v, 0);
	scheme = u ? evhttp_uri_get_scheme(u) : NULL;
	host = u ? evhttp_uri_get_host(u) : NULL;
	if (u == NULL || scheme == NULL || host == NULL || *host == '\0' ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
	    evhttp_uri_get_query(u) != NULL ||
	    evhttp_uri_get_fragment(u) != NULL ||
	    evhttp_uri_get_userinfo(u) != NULL) {
		if (u != NULL)
			evhttp_uri_free(u);
		snprintf(err, errlen,
		    "%s:%d: base_url = '%s' is not an http:// or https:// URL "
		    "(scheme, host, optional port and path)",
		    sec->file, config_section_line(sec, "base_url"), v);
		return -1;
	}
	evhttp_uri_free(u);
	*out = xstrdup(v);
	len = strlen(*out);
	while (len > 0 && (*out)[len - 1] == '/')
		(*out)[--len] = '\0';
	return 0;
}

/* public_url + "/webhooks/" + sender + "/inbound|status", or NULLs. */
static void
smshttp_webhook_urls(struct adapter *ad, struct smshttp *sh)
{
	const char *pub = ad->env.public_url;
	size_t len;

	if (pub == NULL || *pub == '\0')
		return;
	len = strlen(pub);
	while (len > 0 && pub[len - 1] == '/')
		len--;
	sh->url_inbound =
	    xasprintf("%.*s/webhooks/%s/inbound", (int)len, pub, ad->name);
	sh->url_status =
	    xasprintf("%.*s/webhooks/%s/status", (int)len, pub, ad->name);
}

/*
 * adapter_ops.send: builds the provider's request and starts it on the
 * shared client. A message the provider can never carry fails
 * permanently, a request the client refuses transiently; both through
 * done on the next turn. Returns -1 only without a client (--check-config).
 */
int
smshttp_send(struct adapter *ad, const struct out_msg *msg,
    adapter_done_fn *done, void *arg)
{
	struct smshttp *sh = ad->priv;
	struct smshttp_req req;
	struct smshttp_rec *rec;
	char err[256] = "";

	if (ad->env.httpc == NULL)
		return -1;
	rec = xcalloc(1, sizeof(*rec));
	rec->ad = ad;
	rec->done = done;
	rec->arg = arg;
	rec->msg_id = msg->id;
	TAILQ_INSERT_TAIL(&sh->recs, rec, entry);
	/* Field by field: a memset of its 22 KiB cost half a percent. */
	req.method = "POST";
	req.path[0] = '\0';
	req.content_type = NULL;
	req.nheaders = 0;
	if (sh->body == NULL && (sh->body = evbuffer_new()) == NULL)
		fatalx("smshttp_send: evbuffer_new failed");
	req.body = sh->body;
	if (sh->p->build(sh->prov, msg, sh->url_status, &req, err,
		sizeof(err)) == -1)
		smshttp_fail_later(rec, SEND_PERMANENT, err);
	else if (smshttp_start(ad, rec, &req, err, sizeof(err)) == -1)
		smshttp_fail_later(rec, SEND_TRANSIENT, err);
	evbuffer_drain(sh->body, evbuffer_get_length(sh->body));
	return 0;
}

/* Hands the built request to httpc (which copies all of it). */
static int
smshttp_start(struct adapter *ad, struct smshttp_rec *rec,
    struct smshttp_req *req, char *err, size_t errlen)
{
	struct smshttp *sh = ad->priv;
	const char *headers[SMSHTTP_MAX_HEADERS + 2];
	struct httpc_request hr;
	char ctype[256];
	size_t i, n = 0, len, base;

	for (i = 0; i < req->nheaders && i < SMSHTTP_MAX_HEADERS; i++)
		headers[n++] = req->headers[i];
	if (req->content_type != NULL) {
		strlcpy(ctype, "Content-Type: ", sizeof(ctype));
		strlcat(ctype, req->content_type, sizeof(ctype));
		headers[n++] = ctype;
	}
	headers[n] = NULL;
	base = strlen(sh->base_url);
	len = base + strlen(req->path) + 1;
	if (len > sh->url_cap) {
		free(sh->url);
		sh->url = xmalloc(len);
		sh->url_cap = len;
	}
	memcpy(sh->url, sh->base_url, base);
	memcpy(sh->url + base, req->path, len - base);
	memset(&hr, 0, sizeof(hr));
	hr.method = req->method ? req->method : "POST";
	hr.url = sh->url;
	hr.headers = headers;
	hr.body_len = evbuffer_get_length(req->body);
	hr.body = (const char *)evbuffer_pullup(req->body, -1);
	hr.timeout_ms = sh->timeout_ms;
	return httpc_request(ad->env.httpc, &hr, smshttp_on_response, rec, err,
	    errlen);
}

/* A result that exists before any I/O, delivered on the next turn. */
static void
smshttp_fail_later(struct smshttp_rec *rec, enum send_outcome outcome,
    const char *text)
{
	static const struct timeval now = {0, 0};

	send_result_set(&rec->res, outcome, 0, "%s", text);
	rec->later = evtimer_new(rec->ad->env.base, smshttp_on_later, rec);
	if (rec->later == NULL || evtimer_add(rec->later, &now) == -1)
		fatalx("smshttp_fail_later: cannot arm a timer");
}

static void
smshttp_on_later(evutil_socket_t fd, short what, void *arg)
{
	struct smshttp_rec *rec = arg;
	struct smshttp *sh = rec->ad->priv;

	(void)fd;
	(void)what;
	TAILQ_REMOVE(&sh->recs, rec, entry);
	event_free(rec->later);
	log_trace(TRACE_ADAPTER,
	    "smshttp_refused sender=%s provider=%s msg=%lld outcome=%s",
	    rec->ad->name, sh->p->name, (long long)rec->msg_id,
	    smshttp_outcome_to_text(rec->res.outcome));
	rec->done(rec->arg, &rec->res);
	free(rec);
}

/*
 * httpc's callback: the provider classifies the answer, one trace line
 * records it (status, latency; never numbers, bodies or secrets), and
 * the core hears the result.
 */
static void
smshttp_on_response(void *arg, const struct httpc_response *resp)
{
	struct smshttp_rec *rec = arg;
	struct adapter *ad = rec->ad;
	struct smshttp *sh = ad->priv;
	struct send_result res;

	TAILQ_REMOVE(&sh->recs, rec, entry);
	memset(&res, 0, sizeof(res));
	sh->p->classify(sh->prov, resp, &res);
	/* Whatever the provider's own code (Twilio 20003, Plivo 401, ...), a
	 * 401 says this sender's credentials were refused: every message of
	 * it would fail the same way, so keep them and stop the sender. */
	if (resp->status == 401) {
		res.outcome = SEND_TRANSIENT;
		res.flags |= SEND_F_SENDER_BROKEN;
		res.retry_after = resp->retry_after;
	}
	log_trace(TRACE_ADAPTER,
	    "smshttp_response sender=%s provider=%s msg=%lld status=%d "
	    "curl=%d latency_ms=%.1f outcome=%s code=%d retry_after=%u%s",
	    ad->name, sh->p->name, (long long)rec->msg_id, resp->status,
	    resp->curl_code, resp->total_ms,
	    smshttp_outcome_to_text(res.outcome), res.code, res.retry_after,
	    res.uncertain ? " uncertain=1" : "");
	rec->done(rec->arg, &res);
	free(rec);
}

static const char *
smshttp_outcome_to_text(enum send_outcome o)
{
	switch (o) {
	case SEND_ACCEPTED:
		return "accepted";
	case SEND_TRANSIENT:
		return "transient";
	case SEND_PERMANENT:
		return "permanent";
	}
	return "?";
}

/*
 * adapter_ops.drain: adapter.c already refuses new sends; what is in
 * flight settles through httpc, so there is nothing to stop here.
 */
void
smshttp_drain(struct adapter *ad)
{
	struct smshttp *sh = ad->priv;
	struct smshttp_rec *rec;
	unsigned n = 0;

	TAILQ_FOREACH(rec, &sh->recs, entry)
		n++;
	log_trace(TRACE_ADAPTER, "smshttp_drain sender=%s in_flight=%u",
	    ad->name, n);
}

/*
 * adapter_ops.free: sends still in flight were given up by the core;
 * their transfers are cancelled (no callback) and their records freed.
 */
void
smshttp_free(struct adapter *ad)
{
	struct smshttp *sh = ad->priv;
	struct smshttp_rec *rec;

	if (sh == NULL)
		return;
	while ((rec = TAILQ_FIRST(&sh->recs)) != NULL) {
		TAILQ_REMOVE(&sh->recs, rec, entry);
		if (rec->later != NULL)
			event_free(rec->later);
		else
			httpc_cancel(ad->env.httpc, rec);
		free(rec);
	}
	if (sh->p->prov_free != NULL)
		sh->p->prov_free(sh->prov);
	free(sh->base_url);
	free(sh->url_inbound);
	free(sh->url_status);
	if (sh->body != NULL)
		evbuffer_free(sh->body);
	free(sh->url);
	free(sh);
	ad->priv = NULL;
}

/* RFC 3986's unreserved characters, which a form value keeps as they are. */
static bool
smshttp_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/*
 * smshttp_form_add(): into space reserved for the worst case (every byte
 * as %XX), so a field costs no allocation and no printf.
 */
void
smshttp_form_add(struct evbuffer *b, char sep, const char *key,
    const char *value, bool space_plus)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t klen = strlen(key), vlen = strlen(value), i;
	struct evbuffer_iovec v;
	unsigned char c;
	char *p;

	if (evbuffer_reserve_space(b, (ev_ssize_t)(klen + 3 * vlen + 2), &v,
		1) != 1)
		fatalx("smshttp_form_add: out of memory");
	p = v.iov_base;
	if (sep != '\0')
		*p++ = sep;
	memcpy(p, key, klen);
	p += klen;
	*p++ = '=';
	for (i = 0; i < vlen; i++) {
		c = (unsigned char)value[i];
		if (smshttp_unreserved(c))
			*p++ = (char)c;
		else if (c == ' ' && space_plus)
			*p++ = '+';
		else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	v.iov_len = (size_t)(p - (char *)v.iov_base);
	if (evbuffer_commit_space(b, &v, 1) == -1)
		fatalx("smshttp_form_add: evbuffer_commit_space failed");
}

/* The provider's state for its webhook functions (borrowed), or NULL. */
void *
smshttp_prov(const struct adapter *ad)
{
	const struct smshttp *sh = ad->priv;

	return sh == NULL ? NULL : sh->prov;
}

/* The sender's webhook URL of 'kind' (borrowed), NULL without public_url. */
const char *
smshttp_webhook_url(const struct adapter *ad, enum webhook_kind kind)
{
	const struct smshttp *sh = ad->priv;

	if (sh == NULL)
		return NULL;
	return kind == WEBHOOK_INBOUND ? sh->url_inbound : sh->url_status;
}

/*
 * The transport half of every provider's classify (smshttp.h). A failed
 * transfer is transient; it is 'uncertain' when the request may have
 * reached the provider. 429 and 5xx are transient with any Retry-After;
 * a 502/504 came from a gateway whose backend may have acted, so it is
 * uncertain too. Anything else is the provider's to read: returns 0.
 */
int
smshttp_classify_transport(const struct httpc_response *resp,
    struct send_result *res)
{
	if (resp->curl_code != 0 || resp->status == 0) {
		if (resp->connect_failed)
			send_result_set(res, SEND_TRANSIENT, 0,
			    "connect failed: %s", resp->error);
		else if (resp->timed_out)
			send_result_set(res, SEND_TRANSIENT, 0,
			    "timeout after %.0f ms%s", resp->total_ms,
			    resp->maybe_sent ? " (may have been sent)" : "");
		else
			send_result_set(res, SEND_TRANSIENT, 0,
			    "transport error: %s", resp->error);
		res->uncertain = resp->maybe_sent;
		return 1;
	}
	if (resp->status == 429 || resp->status >= 500) {
		send_result_set(res, SEND_TRANSIENT, resp->status,
		    "%s (HTTP %d)",
		    resp->status == 429 ? "rate limited" : "provider error",
		    resp->status);
		res->retry_after = resp->retry_after;
		res->uncertain = resp->status == 502 || resp->status == 504;
		if (resp->status == 429)
			res->flags |= SEND_F_RATE_LIMITED;
		return 1;
	}
	return 0;
}

int
smshttp_digits(const char *addr, char *buf, size_t len)
{
	size_t n;

	if (*addr == '+')
		addr++;
	n = strlen(addr);
	if (n < 7 || n > 15 || strspn(addr, "0123456789") != n || n >= len)
		return -1;
	strlcpy(buf, addr, len);
	return 0;
}

void
smshttp_address_in(const char *addr, char *buf, size_t len)
{
	const char *d = addr;
	size_t n;

	if (*d == '+')
		d++;
	else if (strncmp(d, "00", 2) == 0)
		d += 2;
	n = strlen(d);
	if (n >= 7 && n <= 15 && strspn(d, "0123456789") == n)
		snprintf(buf, len, "+%s", d);
	else
		strlcpy(buf, addr, len);
}
