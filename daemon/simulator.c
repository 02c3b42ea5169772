/*
 * simulator.c - GET /api/v1/simulator and GET /api/v1/messages?to=...
 * for the phone simulator page (simulator.h, doc/web.md).
 *
 * The page texts the daemon by posting to the console sender's inbound
 * webhook, exactly as a provider would, and shows the daemon's answers
 * by polling the messages to its number with a cursor. Both routes are
 * served on either store: the listing is read with store_outbox_read(),
 * at once on SQLite, a round trip later on PostgreSQL (any node shows
 * what every node sent and received).
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "message.h"
#include "simulator.h"
#include "store_outbox.h"
#include "xmalloc.h"

#define SIM_LIMIT_DEFAULT 100
#define SIM_LIMIT_MAX	  1000

struct simulator {
	struct simulator_deps deps;
};

static void sim_get(struct http_req *, void *);
static void sim_messages(struct http_req *, void *);

struct simulator *
simulator_new(struct http_server *srv, const struct simulator_deps *deps)
{
	struct simulator *sim = xcalloc(1, sizeof(*sim));

	sim->deps = *deps;
	http_route(srv, HTTP_GET, "/api/v1/simulator", sim_get, sim);
	/* POST /api/v1/messages is api.c's; this route takes the GET */
	http_route(srv, HTTP_GET, "/api/v1/messages", sim_messages, sim);
	return sim;
}

void
simulator_free(struct simulator *sim)
{
	free(sim);
}

const struct config_sender *
simulator_sender(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nsenders; i++)
		if (strcmp(cfg->senders[i].provider, "console") == 0)
			return &cfg->senders[i];
	return NULL;
}

/* {"enabled", "sender", "from"}: whom the simulator texts. */
static void
sim_get(struct http_req *req, void *arg)
{
	struct simulator *sim = arg;
	const struct config_sender *s;

	if (!api_authorized(sim->deps.api, req))
		return;
	s = simulator_sender(sim->deps.cfg);
	http_reply_json(req, 200,
	    json_pack("{s:b, s:s?, s:s?}", "enabled", s != NULL, "sender",
		s != NULL ? s->name : NULL, "from",
		s != NULL ? s->from : NULL));
}

/* A decimal id or count in [min, max]: 0, or -1. */
static int
sim_number(const char *s, long long min, long long max, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || *out < min ||
	    *out > max)
		return -1;
	return 0;
}

/* The messages read (on PostgreSQL a round trip later): the answer. */
static void
sim_messages_read(void *arg, json_t *o, const char *error)
{
	struct http_req *req = arg;

	if (o == NULL) {
		log_warnx("simulator_messages_failed error=\"%s\"", error);
		http_reply_error(req, 503, "unavailable", "store: %s", error);
	} else
		http_reply_json(req, 200, o);
}

/* to (required), direction (out, in or all), after, limit. */
static void
sim_messages(struct http_req *req, void *arg)
{
	static const char *const known[] = {"to", "direction", "after", "limit",
	    NULL};
	struct simulator *sim = arg;
	struct outbox_query oq = {.limit = SIM_LIMIT_DEFAULT};
	struct evkeyvalq q;
	const char *s;
	long long n = 0;
	char err[256];

	if (!api_authorized(sim->deps.api, req) ||
	    !api_read_query(req, &q, known))
		return;
	err[0] = '\0';
	oq.addr = evhttp_find_header(&q, "to");
	if (oq.addr == NULL || *oq.addr == '\0' ||
	    strlen(oq.addr) >= MSG_ADDR_MAX)
		snprintf(err, sizeof(err),
		    "to: required, the number as stored (E.164, "
		    "+15550100001)");
	else if ((s = evhttp_find_header(&q, "direction")) != NULL &&
	    strcmp(s, "out") != 0 && strcmp(s, "in") != 0 &&
	    strcmp(s, "all") != 0)
		snprintf(err, sizeof(err), "direction: out, in or all");
	else if ((s = evhttp_find_header(&q, "after")) != NULL &&
	    sim_number(s, 0, INT64_MAX, &n) == -1)
		snprintf(err, sizeof(err), "after: a message id");
	else if (s != NULL)
		oq.after = n;
	if (err[0] == '\0' && (s = evhttp_find_header(&q, "limit")) != NULL) {
		if (sim_number(s, 1, SIM_LIMIT_MAX, &n) == -1)
			snprintf(err, sizeof(err), "limit: 1 to %d",
			    SIM_LIMIT_MAX);
		else
			oq.limit = (unsigned)n;
	}
	if (err[0] != '\0') {
		http_reply_error(req, 422, "invalid_request", "%s", err);
		evhttp_clear_headers(&q);
		return;
	}
	s = evhttp_find_header(&q, "direction");
	oq.direction = s == NULL || strcmp(s, "out") == 0 ? OUTBOX_OUT
	    : strcmp(s, "in") == 0			  ? OUTBOX_IN
							  : OUTBOX_BOTH;
	if (store_outbox_read(sim->deps.st, &oq, sim_messages_read, req, err,
		sizeof(err)) == -1)
		sim_messages_read(req, NULL, err);
	evhttp_clear_headers(&q);
}
