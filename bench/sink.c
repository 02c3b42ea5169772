/*
 * bench/sink.c - a bare libevent HTTP responder for bench/kannel: the sink
 * Kannel's smsbox calls for every received message (its sms-service
 * get-url), and the "bare evhttp" raw limit of the HTTP rows.
 *
 * Usage: sink PORTFILE
 * Listens on 127.0.0.1, an ephemeral port, writes "port=N\n" to PORTFILE
 * once listening. Every request is answered 200 with an empty body and
 * counted, except GET /count, answered with the count so far (not
 * counted). Runs until SIGTERM or SIGINT, then exits 0.
 *
 * Built by bench/kannel with the system compiler (cc -O2 ... -levent), not
 * by the project's Makefile: it is a measuring tool, no part of outreachd.
 * One thread, one event loop, no parsing beyond what evhttp does: the
 * fastest HTTP/1.1 server this machine's libevent gives, so a figure
 * measured against it is the HTTP client's (smsbox's, or wrk's).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>

static unsigned long long hits;

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	const char *uri = evhttp_request_get_uri(req);

	(void)arg;
	if (evhttp_request_get_command(req) == EVHTTP_REQ_GET &&
	    strcmp(uri, "/count") == 0) {
		evbuffer_add_printf(out, "%llu\n", hits);
		evhttp_send_reply(req, 200, "OK", out);
		return;
	}
	hits++;
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int
main(int argc, char **argv)
{
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct sockaddr_storage ss;
	ev_socklen_t len = sizeof(ss);
	struct event *sigterm, *sigint;
	FILE *f;
	int port;

	if (argc != 2) {
		fprintf(stderr, "usage: sink PORTFILE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL ||
	    (http = evhttp_new(base)) == NULL) {
		fprintf(stderr, "sink: libevent init failed\n");
		return 1;
	}
	evhttp_set_gencb(http, on_request, NULL);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	if ((bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0)) ==
	    NULL) {
		fprintf(stderr, "sink: cannot listen on 127.0.0.1\n");
		return 1;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound),
		(struct sockaddr *)&ss, &len) != 0) {
		perror("sink: getsockname");
		return 1;
	}
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if ((f = fopen(argv[1], "w")) == NULL ||
	    fprintf(f, "port=%d\n", port) < 0 || fclose(f) != 0) {
		perror(argv[1]);
		return 1;
	}
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	event_base_dispatch(base);
	fprintf(stderr, "sink: requests=%llu\n", hits);
	event_free(sigterm);
	event_free(sigint);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
