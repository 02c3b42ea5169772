/*
 * check_httpclient.c - unit tests of the reuse of transfer records in the
 * HTTP client (adapters/httpclient.c): a finished request's record keeps
 * its easy handle's options, header list, URL and buffers for the next
 * request, which sets only what differs. These cases check that nothing
 * of one request leaks into the next one run on the same record: method,
 * URL, headers, body, timeout, and what the response reports (status,
 * body, Retry-After).
 *
 * A real evhttp server on 127.0.0.1:0 runs in the test's own event_base;
 * the client allows one transfer at a time (max_per_host = max_total = 1),
 * so it keeps one idle record and every request runs on the same one.
 * The server records what it got and answers with the status, body and
 * Retry-After the test scripted for that request, or not at all.
 *
 * The "cancel" cases check the rest of the contract: callbacks run later,
 * on the loop's thread; a cancelled request never calls back, whether it
 * was running or waiting for a connection, and its record and connection
 * slot come back for the next request; httpc_free() with transfers
 * running calls nothing back and leaves nothing behind (the sanitizer and
 * valgrind runs check that).
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <netinet/in.h>

#include <pthread.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "check_suites.h"
#include "compat.h"
#include "httpclient.h"

/* What the server got for one request, and what it answers. */
struct hc_srv {
	struct evhttp *http;
	unsigned port;
	int hits;
	char method[16];
	char uri[256];
	char xa[64]; /* X-A header, "" if absent */
	char xb[64]; /* X-B header, "" if absent */
	char expect[64];
	char body[256];
	size_t body_len;
	/* the scripted answer */
	int status;
	const char *retry_after; /* NULL: no header */
	const char *answer;
	bool silent; /* never answer (the client times out) */
};

/* What the client's callback saw. */
struct hc_got {
	int calls;
	int status;
	int curl_code;
	bool timed_out;
	unsigned retry_after;
	char body[256];
	pthread_t thread; /* the callback's */
};

static struct event_base *hc_base;
static struct httpc *hc;
static struct hc_srv srv;

static const char *
hc_method(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return "OTHER";
	}
}

static void
hc_copy_header(struct evkeyvalq *h, const char *name, char *buf, size_t len)
{
	const char *v = evhttp_find_header(h, name);

	strlcpy(buf, v ? v : "", len);
}

static void
hc_answer(struct evhttp_request *req)
{
	struct evbuffer *out = evbuffer_new();

	if (srv.retry_after != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", srv.retry_after);
	evbuffer_add(out, srv.answer, strlen(srv.answer));
	evhttp_send_reply(req, srv.status, "X", out);
	evbuffer_free(out);
}

static void
hc_on_request(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);

	(void)arg;
	srv.hits++;
	strlcpy(srv.method, hc_method(evhttp_request_get_command(req)),
	    sizeof(srv.method));
	strlcpy(srv.uri, evhttp_request_get_uri(req), sizeof(srv.uri));
	hc_copy_header(h, "X-A", srv.xa, sizeof(srv.xa));
	hc_copy_header(h, "X-B", srv.xb, sizeof(srv.xb));
	hc_copy_header(h, "Expect", srv.expect, sizeof(srv.expect));
	srv.body_len = evbuffer_get_length(in);
	ck_assert_uint_lt(srv.body_len, sizeof(srv.body));
	evbuffer_copyout(in, srv.body, srv.body_len);
	srv.body[srv.body_len] = '\0';
	if (!srv.silent)
		hc_answer(req);
}

static void
hc_setup(void)
{
	struct evhttp_bound_socket *bs;
	struct httpc_config cfg = {.max_per_host = 1, .max_total = 1};
	evutil_socket_t fd;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char err[256];

	curl_global_init(CURL_GLOBAL_DEFAULT);
	memset(&srv, 0, sizeof(srv));
	srv.status = 200;
	srv.answer = "ok";
	hc_base = event_base_new();
	srv.http = evhttp_new(hc_base);
	evhttp_set_gencb(srv.http, hc_on_request, NULL);
	evhttp_set_allowed_methods(srv.http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
		EVHTTP_REQ_DELETE);
	bs = evhttp_bind_socket_with_handle(srv.http, "127.0.0.1", 0);
	ck_assert_ptr_nonnull(bs);
	fd = evhttp_bound_socket_get_fd(bs);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	srv.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	hc = httpc_new(hc_base, &cfg, err, sizeof(err));
	ck_assert_msg(hc != NULL, "%s", err);
}

static void
hc_teardown(void)
{
	httpc_free(hc);
	hc = NULL;
	evhttp_free(srv.http);
	event_base_free(hc_base);
	hc_base = NULL;
	curl_global_cleanup();
}

static void
hc_on_done(void *arg, const struct httpc_response *resp)
{
	struct hc_got *g = arg;

	g->calls++;
	g->thread = pthread_self();
	g->status = resp->status;
	g->curl_code = resp->curl_code;
	g->timed_out = resp->timed_out;
	g->retry_after = resp->retry_after;
	strlcpy(g->body, resp->body, sizeof(g->body));
}

/*
 * Runs one request to the server's 'path' and the loop until it is done
 * (or 5 s pass): the next request then reuses the record it ran on.
 */
static void
hc_do(struct hc_got *g, const struct httpc_request *tmpl, const char *path)
{
	struct httpc_request r = *tmpl;
	char url[128], err[256];
	int i;

	memset(g, 0, sizeof(*g));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", srv.port, path);
	r.url = url;
	ck_assert_msg(httpc_request(hc, &r, hc_on_done, g, err, sizeof(err)) ==
		0,
	    "%s", err);
	for (i = 0; i < 500 && g->calls == 0; i++) {
		struct timeval tv = {0, 10000};

		event_base_loopexit(hc_base, &tv);
		event_base_dispatch(hc_base);
	}
	ck_assert_int_eq(g->calls, 1);
	ck_assert_uint_eq(httpc_in_flight(hc), 0);
}

/* Method, URL, headers and body of each request are its own. */
START_TEST(test_reused_record_sends_each_requests_own)
{
	static const char *const ha[] = {"X-A: one", NULL};
	static const char *const hb[] = {"X-B: two", NULL};
	static const char *const hab[] = {"X-A: one", "X-B: two", NULL};
	struct hc_got g;

	hc_do(&g,
	    &(struct httpc_request){.method = "POST",
		.headers = ha,
		.body = "first=1",
		.body_len = 7},
	    "/a");
	ck_assert_str_eq(srv.method, "POST");
	ck_assert_str_eq(srv.uri, "/a");
	ck_assert_str_eq(srv.xa, "one");
	ck_assert_str_eq(srv.xb, "");
	ck_assert_str_eq(srv.body, "first=1");
	ck_assert_str_eq(srv.expect, "");

	/* GET, other URL, no headers: nothing of the POST is left */
	hc_do(&g, &(struct httpc_request){.method = "GET"}, "/b?q=1");
	ck_assert_str_eq(srv.method, "GET");
	ck_assert_str_eq(srv.uri, "/b?q=1");
	ck_assert_str_eq(srv.xa, "");
	ck_assert_uint_eq(srv.body_len, 0);

	/* a custom verb with a body and other headers */
	hc_do(&g,
	    &(struct httpc_request){.method = "PUT",
		.headers = hb,
		.body = "third",
		.body_len = 5},
	    "/c");
	ck_assert_str_eq(srv.method, "PUT");
	ck_assert_str_eq(srv.uri, "/c");
	ck_assert_str_eq(srv.xa, "");
	ck_assert_str_eq(srv.xb, "two");
	ck_assert_str_eq(srv.body, "third");

	/* POST again: the custom verb is gone; a longer header list */
	hc_do(&g,
	    &(struct httpc_request){.method = "POST",
		.headers = hab,
		.body = "x=4",
		.body_len = 3},
	    "/c");
	ck_assert_str_eq(srv.method, "POST");
	ck_assert_str_eq(srv.xa, "one");
	ck_assert_str_eq(srv.xb, "two");
	ck_assert_str_eq(srv.body, "x=4");

	/* a shorter list that is a prefix of the last one */
	hc_do(&g,
	    &(struct httpc_request){.method = "POST",
		.headers = ha,
		.body = "",
		.body_len = 0},
	    "/c");
	ck_assert_str_eq(srv.xa, "one");
	ck_assert_str_eq(srv.xb, "");
	ck_assert_uint_eq(srv.body_len, 0);

	/* a body with a NUL byte and no headers at all */
	hc_do(&g,
	    &(struct httpc_request){.method = "POST",
		.body = "a\0b",
		.body_len = 3},
	    "/d");
	ck_assert_str_eq(srv.xa, "");
	ck_assert_uint_eq(srv.body_len, 3);
	ck_assert_int_eq(memcmp(srv.body, "a\0b", 3), 0);
	ck_assert_int_eq(srv.hits, 6);
}
END_TEST

static void hc_run_for(int);

/*
 * A URL libcurl's parser refuses fails the request at once, with the
 * parser's reason and no callback; the record's next request goes to its
 * own URL.
 */
START_TEST(test_rejected_url_fails_at_once)
{
	static const char *const bad[] = {"http://127.0.0.1:99999/x",
	    "http://exa mple.test/", "http://[::1/", NULL};
	struct httpc_request r = {.method = "GET"};
	struct hc_got g;
	char err[256];
	size_t i;

	hc_do(&g, &r, "/before");
	for (i = 0; bad[i] != NULL; i++) {
		memset(&g, 0, sizeof(g));
		r.url = bad[i];
		err[0] = '\0';
		ck_assert_int_eq(
		    httpc_request(hc, &r, hc_on_done, &g, err, sizeof(err)),
		    -1);
		ck_assert_msg(strncmp(err, "URL rejected: ", 14) == 0, "%s: %s",
		    bad[i], err);
		ck_assert_uint_eq(httpc_in_flight(hc), 0);
	}
	hc_run_for(20);
	ck_assert_int_eq(g.calls, 0);
	hc_do(&g, &(struct httpc_request){.method = "GET"}, "/after?x=1");
	ck_assert_int_eq(g.status, 200);
	ck_assert_str_eq(srv.uri, "/after?x=1");
	ck_assert_int_eq(srv.hits, 2);
}
END_TEST

/* Status, body and Retry-After of one answer do not reach the next. */
START_TEST(test_reused_record_reports_each_answer_alone)
{
	struct httpc_request post = {.method = "POST",
	    .body = "b",
	    .body_len = 1};
	struct hc_got g;

	srv.status = 429;
	srv.retry_after = "7";
	srv.answer = "slow down, this answer is the longer one";
	hc_do(&g, &post, "/m");
	ck_assert_int_eq(g.status, 429);
	ck_assert_uint_eq(g.retry_after, 7);
	ck_assert_str_eq(g.body, "slow down, this answer is the longer one");

	srv.status = 500;
	srv.retry_after = NULL;
	srv.answer = "oops";
	hc_do(&g, &post, "/m");
	ck_assert_int_eq(g.status, 500);
	ck_assert_uint_eq(g.retry_after, 0);
	ck_assert_str_eq(g.body, "oops");

	srv.status = 201;
	srv.answer = "";
	hc_do(&g, &post, "/m");
	ck_assert_int_eq(g.status, 201);
	ck_assert_str_eq(g.body, "");
}
END_TEST

/* A request's timeout is its own: a short one, then the default. */
START_TEST(test_reused_record_takes_each_timeout)
{
	struct httpc_request post = {.method = "POST",
	    .body = "b",
	    .body_len = 1,
	    .timeout_ms = 100};
	struct hc_got g;

	srv.silent = true;
	hc_do(&g, &post, "/slow");
	ck_assert(g.timed_out);
	ck_assert_int_ne(g.curl_code, 0);

	srv.silent = false;
	post.timeout_ms = 0; /* the client's 15 s */
	hc_do(&g, &post, "/slow");
	ck_assert(!g.timed_out);
	ck_assert_int_eq(g.curl_code, 0);
	ck_assert_int_eq(g.status, 200);
}
END_TEST

/* Runs the loop for about ms milliseconds. */
static void
hc_run_for(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(hc_base, &tv);
	event_base_dispatch(hc_base);
}

/* Starts a request to 'path' with 'g' as its callback's argument. */
static void
hc_start(struct hc_got *g, const char *path)
{
	struct httpc_request r = {.method = "POST", .body = "b", .body_len = 1};
	char url[128], err[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", srv.port, path);
	r.url = url;
	ck_assert_msg(httpc_request(hc, &r, hc_on_done, g, err, sizeof(err)) ==
		0,
	    "%s", err);
}

/* The callback runs later, from the loop, on the loop's thread. */
START_TEST(test_done_runs_on_the_loop_thread)
{
	struct hc_got g;

	memset(&g, 0, sizeof(g));
	hc_start(&g, "/t");
	ck_assert_int_eq(g.calls, 0);
	ck_assert_uint_eq(httpc_in_flight(hc), 1);
	while (g.calls == 0)
		hc_run_for(10);
	ck_assert_int_eq(g.calls, 1);
	ck_assert(pthread_equal(g.thread, pthread_self()));
	ck_assert_int_eq(g.status, 200);
	ck_assert_uint_eq(httpc_in_flight(hc), 0);
}
END_TEST

/*
 * A request the server got and never answers, cancelled: no callback,
 * not in flight any more, and the one record and connection slot of this
 * client come back, so the next request runs and is answered.
 */
START_TEST(test_cancel_running_request)
{
	struct hc_got g0, g;
	int i;

	memset(&g0, 0, sizeof(g0));
	srv.silent = true;
	hc_start(&g0, "/held");
	for (i = 0; i < 500 && srv.hits == 0; i++)
		hc_run_for(10);
	ck_assert_int_eq(srv.hits, 1);
	ck_assert_uint_eq(httpc_cancel(hc, &g0), 1);
	ck_assert_uint_eq(httpc_in_flight(hc), 0);
	ck_assert_uint_eq(httpc_cancel(hc, &g0), 0);
	hc_run_for(100);
	ck_assert_int_eq(g0.calls, 0);

	srv.silent = false;
	srv.answer = "after the cancel";
	hc_do(&g, &(struct httpc_request){.method = "GET"}, "/next");
	ck_assert_int_eq(g.status, 200);
	ck_assert_str_eq(g.body, "after the cancel");
	ck_assert_int_eq(g0.calls, 0);
}
END_TEST

/*
 * Requests cancelled while one of them holds the only connection (the
 * server got it and does not answer) and the others wait behind it, two
 * in the client's queue, and one of another owner left to finish: only
 * that one calls back, once the held one is aborted.
 */
START_TEST(test_cancel_waiting_requests)
{
	struct hc_got gc, gk;
	int i;

	memset(&gc, 0, sizeof(gc));
	memset(&gk, 0, sizeof(gk));
	srv.silent = true;
	hc_start(&gc, "/c");
	hc_start(&gc, "/c");
	for (i = 0; i < 500 && srv.hits == 0; i++)
		hc_run_for(10);
	ck_assert_int_eq(srv.hits, 1);
	srv.silent = false;
	hc_start(&gc, "/c");
	hc_start(&gk, "/k");
	hc_start(&gc, "/c");
	ck_assert_uint_eq(httpc_cancel(hc, &gc), 4);
	ck_assert_uint_eq(httpc_in_flight(hc), 1);
	for (i = 0; i < 500 && gk.calls == 0; i++)
		hc_run_for(10);
	ck_assert_int_eq(gk.calls, 1);
	ck_assert_int_eq(gk.status, 200);
	ck_assert_str_eq(srv.uri, "/k");
	ck_assert_int_eq(srv.hits, 2);
	hc_run_for(50);
	ck_assert_int_eq(gc.calls, 0);
	ck_assert_uint_eq(httpc_in_flight(hc), 0);
}
END_TEST

/* Freed with transfers running and waiting: nothing calls back. */
START_TEST(test_free_with_transfers_running)
{
	struct hc_got g;
	int i;

	memset(&g, 0, sizeof(g));
	srv.silent = true;
	for (i = 0; i < 3; i++)
		hc_start(&g, "/held");
	for (i = 0; i < 500 && srv.hits == 0; i++)
		hc_run_for(10);
	ck_assert_int_eq(srv.hits, 1);
	httpc_free(hc);
	hc = NULL;
	hc_run_for(50);
	ck_assert_int_eq(g.calls, 0);
}
END_TEST

Suite *
httpclient_suite(void)
{
	Suite *s = suite_create("httpclient");
	TCase *tc = tcase_create("reuse");

	tcase_add_checked_fixture(tc, hc_setup, hc_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_reused_record_sends_each_requests_own);
	tcase_add_test(tc, test_reused_record_reports_each_answer_alone);
	tcase_add_test(tc, test_reused_record_takes_each_timeout);
	tcase_add_test(tc, test_rejected_url_fails_at_once);
	suite_add_tcase(s, tc);
	tc = tcase_create("cancel");
	tcase_add_checked_fixture(tc, hc_setup, hc_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_done_runs_on_the_loop_thread);
	tcase_add_test(tc, test_cancel_running_request);
	tcase_add_test(tc, test_cancel_waiting_requests);
	tcase_add_test(tc, test_free_with_transfers_running);
	suite_add_tcase(s, tc);
	return s;
}
