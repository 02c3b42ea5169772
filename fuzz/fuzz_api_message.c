/*
 * fuzz_api_message.c - libFuzzer target: the body of POST /api/v1/messages,
 * as the daemon reads it: json_loadb() with the API's flags, then
 * api_message_parse() (daemon/api.h) against a daemon with two console
 * senders and an email adapter.
 *
 * What it accepts must hold what the queue relies on: an SMS goes to
 * +E.164 through a configured sender with a UTF-8 body of 1 to 255
 * segments; an email goes to an address with a subject, neither with a
 * line break; a priority from 0 to 10 and a future expiry. A refusal names
 * its field ("field: problem"). Seeds: fuzz/corpus/fuzz_api_message/.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "api.h"
#include "config.h"
#include "dispatch.h"
#include "fuzz_util.h"
#include "http.h"
#include "message.h"
#include "queue.h"
#include "smstext.h"

#define FZAPI_PRIO_MAX 10 /* api.c's API_PRIO_MAX */

static const char fzapi_conf[] =
    "[sms]\ndefault_sender = bulk\n"
    "[sender bulk]\nprovider = console\nfrom = +15550100001\n"
    "[sender alerts]\nprovider = console\nfrom = +15550100002\n"
    "[email]\nadapter = file\nfrom = Outreach <outreach@example.org>\n";

/* Made once; kept reachable so the leak checker does not count them. */
static struct api *fzapi_api;
static struct event_base *fzapi_base;
static struct http_server *fzapi_srv;

static void fzapi_setup(void);
static void fzapi_check(const struct queue_new *m, int64_t before);

/* One daemon's worth of api, dispatcher and config, made once. */
static void
fzapi_setup(void)
{
	struct api_deps deps = {.token = "fuzz-token"};
	struct config *cfg;
	char err[512];

	cfg = config_load(fuzz_scratch_write(fzapi_conf, strlen(fzapi_conf)),
	    NULL, NULL, err, sizeof(err));
	if (cfg == NULL)
		fuzz_fail("setup: %s", err);
	deps.cfg = cfg;
	/* As --check-config: adapters made, no loop, no I/O. */
	deps.dispatch =
	    dispatch_new(&(struct dispatch_deps){.cfg = cfg}, err, sizeof(err));
	if (deps.dispatch == NULL)
		fuzz_fail("setup: %s", err);
	if ((fzapi_base = event_base_new()) == NULL ||
	    (fzapi_srv = http_new(fzapi_base, 1 << 20, NULL)) == NULL)
		fuzz_fail("setup: no event base or HTTP server");
	fzapi_api = api_new(fzapi_srv, &deps);
}

/* What an accepted message promises the queue. */
static void
fzapi_check(const struct queue_new *m, int64_t before)
{
	struct smstext_info info;

	if (m->to == NULL || m->body == NULL || m->body[0] == '\0')
		fuzz_fail("accepted without to or body");
	if (m->priority < 0 || m->priority > FZAPI_PRIO_MAX)
		fuzz_fail("accepted priority %d", m->priority);
	if (m->expires_at <= before)
		fuzz_fail("accepted an expiry in the past (%lld)",
		    (long long)m->expires_at);
	if (m->from != NULL &&
	    (strlen(m->from) >= MSG_ADDR_MAX || strpbrk(m->from, "\r\n")))
		fuzz_fail("accepted a bad from");
	if (m->channel == CHANNEL_EMAIL) {
		if (strchr(m->to, '@') == NULL || strpbrk(m->to, "\r\n <>"))
			fuzz_fail("accepted email to '%s'", m->to);
		if (m->subject == NULL || m->subject[0] == '\0' ||
		    strpbrk(m->subject, "\r\n") != NULL)
			fuzz_fail("accepted an email without a clean subject");
		return;
	}
	if (m->to[0] != '+' ||
	    strspn(m->to + 1, "0123456789") != strlen(m->to + 1) ||
	    strlen(m->to) > 16)
		fuzz_fail("accepted SMS to '%s'", m->to);
	if (m->sender == NULL || m->encoding == NULL)
		fuzz_fail("accepted an SMS without sender or encoding");
	if (smstext_analyze(m->body, &info) == -1)
		fuzz_fail("accepted an SMS body that is not UTF-8");
	if (m->segments < 1 || m->segments > SMSTEXT_MAX_SEGMENTS ||
	    (unsigned)m->segments != info.segments)
		fuzz_fail("accepted %lld segments", (long long)m->segments);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_new m;
	json_error_t jerr;
	json_t *o;
	char err[512];
	int64_t before;

	if (fzapi_api == NULL)
		fzapi_setup();
	/* As api_read_object(): anything but an object is answered earlier. */
	o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL)
		return 0;
	if (json_is_object(o)) {
		memset(&m, 0, sizeof(m));
		err[0] = '\0';
		before = msg_now_ms();
		if (api_message_parse(fzapi_api, o, &m, err, sizeof(err)) == 0)
			fzapi_check(&m, before);
		else if (strstr(err, ": ") == NULL &&
		    strlen(err) < sizeof(err) - 1) /* a long name is cut */
			fuzz_fail("a refusal that names no field: '%s'", err);
	}
	json_decref(o);
	return 0;
}
