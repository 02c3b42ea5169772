/*
 * adapter.c - the adapter registry and the wrapper that enforces the
 * contract of adapter.h.
 *
 * Every send goes through adapter_send(), which interposes a small call
 * record between the core and the adapter. The record counts the send as
 * in flight, refuses a done callback that runs from inside send() (a
 * broken invariant: fatalx), and releases the count when the one callback
 * arrives. The daemon core therefore never has to trust a driver
 * to keep rule 2.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "log.h"
#include "xmalloc.h"

/* Adding a provider = one file + one line here (doc/adapters.md). */
static const struct adapter_ops *const adapter_table[] = {
    &console_ops,
    &file_ops,
    &kannel_ops,
    &plivo_ops,
    &smtp_ops,
    &telnyx_ops,
    &twilio_ops,
    &vonage_ops,
    NULL,
};

/* One send in flight: what the core asked to be called back with. */
struct adapter_call {
	TAILQ_ENTRY(adapter_call) entry;
	struct adapter *ad;
	adapter_done_fn *done;
	void *arg;
	bool in_send; /* true while ops->send() runs */
};

/* A completion deferred to the next loop turn (adapter_complete_later). */
struct adapter_later {
	adapter_done_fn *done;
	void *arg;
	struct send_result res;
};

static void adapter_on_done(void *arg, const struct send_result *res);
static void adapter_on_later(evutil_socket_t fd, short what, void *arg);

const struct adapter_ops *
adapter_ops_lookup(const char *name)
{
	size_t i;

	for (i = 0; adapter_table[i] != NULL; i++)
		if (strcmp(adapter_table[i]->name, name) == 0)
			return adapter_table[i];
	return NULL;
}

/*
 * Creates and initialises an instance. 'sec' is the adapter's config
 * section (may be NULL); init() validates it and reports FILE:LINE errors.
 */
struct adapter *
adapter_new(const char *ops_name, const char *name,
    const struct adapter_env *env, const struct config_section *sec, char *err,
    size_t errlen)
{
	const struct adapter_ops *ops = adapter_ops_lookup(ops_name);
	struct adapter *ad;
	char known[256] = "";
	size_t i;

	if (ops == NULL) {
		for (i = 0; adapter_table[i] != NULL; i++) {
			if (i > 0)
				strlcat(known, ", ", sizeof(known));
			strlcat(known, adapter_table[i]->name, sizeof(known));
		}
		if (sec != NULL)
			snprintf(err, errlen,
			    "%s:%d: unknown provider '%s' in [%s] (known: %s)",
			    sec->file, config_section_line(sec, "provider"),
			    ops_name, sec->name, known);
		else
			snprintf(err, errlen,
			    "unknown adapter '%s' (known: %s)", ops_name,
			    known);
		return NULL;
	}
	ad = xcalloc(1, sizeof(*ad));
	ad->ops = ops;
	ad->name = xstrdup(name);
	ad->env = *env;
	TAILQ_INIT(&ad->calls);
	if (ops->init(ad, sec, err, errlen) == -1) {
		free(ad->name);
		free(ad);
		return NULL;
	}
	return ad;
}

int
adapter_send(struct adapter *ad, const struct out_msg *msg,
    adapter_done_fn *done, void *arg)
{
	struct adapter_call *call;

	if (ad->draining)
		return -1;
	call = xcalloc(1, sizeof(*call));
	call->ad = ad;
	call->done = done;
	call->arg = arg;
	call->in_send = true;
	ad->in_flight++;
	TAILQ_INSERT_TAIL(&ad->calls, call, entry);
	if (ad->ops->send(ad, msg, adapter_on_done, call) == -1) {
		ad->in_flight--;
		TAILQ_REMOVE(&ad->calls, call, entry);
		free(call);
		return -1;
	}
	call->in_send = false;
	return 0;
}

/*
 * The adapter's one callback: check rule 2, then hand on the result. The
 * record is freed here, so a second call for the same send is a
 * use-after-free: the sanitizer and valgrind runs of the test suite are
 * what catch that, not a check here.
 */
static void
adapter_on_done(void *arg, const struct send_result *res)
{
	struct adapter_call *call = arg;

	if (call->in_send)
		fatalx("adapter_contract adapter=%s error=\"done called from "
		       "inside send\"",
		    call->ad->name);
	call->ad->in_flight--;
	TAILQ_REMOVE(&call->ad->calls, call, entry);
	call->done(call->arg, res);
	free(call);
}

void
adapter_drain(struct adapter *ad)
{
	if (ad->draining)
		return;
	ad->draining = true;
	if (ad->ops->drain != NULL)
		ad->ops->drain(ad);
}

void
adapter_free(struct adapter *ad)
{
	struct adapter_call *call;

	if (ad == NULL)
		return;
	if (ad->ops->free != NULL)
		ad->ops->free(ad);
	/* Sends given up at the shutdown deadline: no callback will come. */
	while ((call = TAILQ_FIRST(&ad->calls)) != NULL) {
		TAILQ_REMOVE(&ad->calls, call, entry);
		free(call);
	}
	free(ad->name);
	free(ad);
}

void
adapter_complete_later(struct adapter *ad, adapter_done_fn *done, void *arg,
    const struct send_result *res)
{
	struct adapter_later *later = xmalloc(sizeof(*later));

	later->done = done;
	later->arg = arg;
	later->res = *res;
	if (event_base_once(ad->env.base, -1, EV_TIMEOUT, adapter_on_later,
		later, NULL) == -1)
		fatalx("adapter_complete_later: event_base_once failed");
}

static void
adapter_on_later(evutil_socket_t fd, short what, void *arg)
{
	struct adapter_later *later = arg;

	(void)fd;
	(void)what;
	later->done(later->arg, &later->res);
	free(later);
}

const char *
webhook_param(const struct webhook_req *req, const char *key)
{
	size_t i;

	for (i = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].key, key) == 0)
			return req->params[i].value;
	return NULL;
}

const char *
webhook_header(const struct webhook_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].key, name) == 0)
			return req->headers[i].value;
	return NULL;
}

void
send_result_set(struct send_result *res, enum send_outcome outcome, int code,
    const char *fmt, ...)
{
	va_list ap;

	memset(res, 0, sizeof(*res));
	res->outcome = outcome;
	res->code = code;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(res->text, sizeof(res->text), fmt, ap);
		va_end(ap);
	}
}
