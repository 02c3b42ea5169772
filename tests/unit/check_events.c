/*
 * check_events.c - unit tests of the live events' pure parts and their
 * store (daemon/events.c, queue/store_events.c): the Server-Sent Events
 * framing, how a stream starts from a Last-Event-ID (live, replay,
 * reset), ids that keep growing once the oldest events are pruned, the
 * replay walk, pruning by age and by count in bounded batches, the
 * digests' notify state and the first words a digest shows; and the two
 * HTTP primitives a stream relies on (http.h): the bytes a chunked reply
 * has not written yet to a client that does not read, and the call when
 * that client leaves.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include <netinet/in.h>

#include <check.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "check_suites.h"
#include "check_util.h"
#include "events.h"
#include "http.h"
#include "notify.h"
#include "store-internal.h"
#include "store_events.h"

#define E_T0 INT64_C(1795749274123)

static char e_dir[64];
static struct store *e_st;
static char e_err[512];

static void
e_setup(void)
{
	char path[128];

	snprintf(e_dir, sizeof(e_dir), "/tmp/check_events.XXXXXX");
	if (mkdtemp(e_dir) == NULL)
		ck_abort_msg("mkdtemp %s failed", e_dir);
	snprintf(path, sizeof(path), "%s/outreachd.db", e_dir);
	e_st = store_open(path, e_err, sizeof(e_err));
	ck_assert_msg(e_st != NULL, "store_open: %s", e_err);
}

static void
e_teardown(void)
{
	store_close(e_st);
	e_st = NULL;
	cku_rmtree(e_dir);
}

/* Adds n events "t" with data {"n": k}, one ms apart from 'at'. */
static void
e_add(int n, int64_t at)
{
	char data[32];
	int k;

	for (k = 0; k < n; k++) {
		snprintf(data, sizeof(data), "{\"n\":%d}", k);
		ck_assert_msg(store_event_add(e_st, "t", data, at + k, e_err,
				  sizeof(e_err)) > 0,
		    "store_event_add: %s", e_err);
	}
	ck_assert(store_flush(e_st, e_err, sizeof(e_err)) == 0);
}

static struct store_events_bounds
e_bounds(void)
{
	struct store_events_bounds b;

	ck_assert_msg(store_events_bounds(e_st, &b, e_err, sizeof(e_err)) == 0,
	    "%s", e_err);
	return b;
}

START_TEST(test_frame)
{
	char *f = events_frame(42, "message", "{\"id\":7}");

	ck_assert_str_eq(f, "id: 42\nevent: message\ndata: {\"id\":7}\n\n");
	free(f);
	/* a line break in the data never ends the event early */
	f = events_frame(1, "x", "a\nb\r\nc\rd");
	ck_assert_str_eq(f,
	    "id: 1\nevent: x\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
	free(f);
	f = events_frame(3, "reset", "{}");
	ck_assert_str_eq(f, "id: 3\nevent: reset\ndata: {}\n\n");
	free(f);
	f = events_frame(4, "x", "\n\n\n");
	ck_assert_str_eq(f,
	    "id: 4\nevent: x\ndata: \ndata: \ndata: \ndata: \n\n");
	free(f);
}
END_TEST

START_TEST(test_plan)
{
	struct events_resume r = {.floor = 10, .shown = 50};

	ck_assert_int_eq(events_plan(&r), EVENTS_LIVE);
	r.asked = r.valid = true;
	r.last = 10; /* everything after 10 is kept */
	ck_assert_int_eq(events_plan(&r), EVENTS_REPLAY);
	r.last = 50; /* nothing missed */
	ck_assert_int_eq(events_plan(&r), EVENTS_REPLAY);
	r.last = 9; /* event 10 may be gone */
	ck_assert_int_eq(events_plan(&r), EVENTS_RESET);
	r.last = 51; /* from another database */
	ck_assert_int_eq(events_plan(&r), EVENTS_RESET);
	r.last = 20;
	r.valid = false; /* "abc" */
	ck_assert_int_eq(events_plan(&r), EVENTS_RESET);
	r.valid = true;
	r.floor = 0;
	r.shown = 20 + EVENTS_REPLAY_MAX + 1; /* too many to replay */
	ck_assert_int_eq(events_plan(&r), EVENTS_RESET);
	r.shown--;
	ck_assert_int_eq(events_plan(&r), EVENTS_REPLAY);
}
END_TEST

/* Collects the ids a walk visits. */
struct e_seen {
	int64_t ids[64];
	int n;
};

static int
e_collect(void *arg, const struct store_event *e)
{
	struct e_seen *s = arg;

	ck_assert_str_eq(e->type, "t");
	if (s->n < 64)
		s->ids[s->n++] = e->id;
	return 0;
}

/* The PostgreSQL hub's order: the next id at once, a later one only
 * once its gap outlived EVENTS_GAP_MS. */
START_TEST(test_order_take)
{
	struct events_order o = {.shown = 10};

	ck_assert(!events_order_take(&o, 10, 1000)); /* streamed already */
	ck_assert(events_order_take(&o, 11, 1000));
	ck_assert_int_eq(o.shown, 11);
	/* 12 is in flight: 13 waits, from the first time it is seen */
	ck_assert(!events_order_take(&o, 13, 2000));
	ck_assert(!events_order_take(&o, 13, 2000 + EVENTS_GAP_MS - 1));
	ck_assert_int_eq(o.shown, 11);
	/* 12 committed: it comes, then 13, and the gap is forgotten */
	ck_assert(events_order_take(&o, 12, 3000));
	ck_assert(events_order_take(&o, 13, 3000));
	ck_assert_int_eq(o.gap_since, 0);
	/* 14 rolled back: 15 is taken once the grace is over */
	ck_assert(!events_order_take(&o, 15, 5000));
	ck_assert(events_order_take(&o, 15, 5000 + EVENTS_GAP_MS));
	ck_assert_int_eq(o.shown, 15);
	ck_assert_int_eq(o.gap_since, 0);
	/* a new gap starts its own grace */
	ck_assert(!events_order_take(&o, 17, 20000));
	ck_assert_int_eq(o.gap_since, 20000);
}
END_TEST

START_TEST(test_walk)
{
	struct e_seen s = {0};
	int64_t n;

	ck_assert_int_eq(e_bounds().last, 0);
	ck_assert_int_eq(e_bounds().floor, 0);
	e_add(10, E_T0);
	ck_assert_int_eq(e_bounds().last, 10);
	ck_assert_int_eq(e_bounds().floor, 0);
	n = store_events_walk(e_st, &(struct store_events_range){3, 7, 100},
	    e_collect, &s, e_err, sizeof(e_err));
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(s.n, 4);
	ck_assert_int_eq(s.ids[0], 4);
	ck_assert_int_eq(s.ids[3], 7);
	s.n = 0;
	n = store_events_walk(e_st, &(struct store_events_range){0, 10, 3},
	    e_collect, &s, e_err, sizeof(e_err));
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(s.ids[2], 3);
}
END_TEST

START_TEST(test_prune_by_count_and_ids_grow)
{
	const struct store_events_prune keep5 = {0, 5, 100};

	e_add(12, E_T0);
	ck_assert_int_eq(store_events_prune(e_st, &keep5, e_err, sizeof(e_err)),
	    7);
	ck_assert(store_flush(e_st, e_err, sizeof(e_err)) == 0);
	ck_assert_int_eq(e_bounds().floor, 7);
	ck_assert_int_eq(e_bounds().last, 12);
	ck_assert_int_eq(store_events_prune(e_st, &keep5, e_err, sizeof(e_err)),
	    0);
	/* everything goes: the ids still continue after the last one */
	ck_assert_int_eq(store_events_prune(e_st,
			     &(struct store_events_prune){0, 0, 100}, e_err,
			     sizeof(e_err)),
	    5);
	ck_assert(store_flush(e_st, e_err, sizeof(e_err)) == 0);
	ck_assert_int_eq(e_bounds().floor, 12);
	ck_assert_int_eq(e_bounds().last, 12);
	e_add(1, E_T0);
	ck_assert_int_eq(e_bounds().last, 13);
	ck_assert_int_eq(e_bounds().floor, 12);
}
END_TEST

START_TEST(test_prune_by_age_in_batches)
{
	const struct store_events_prune old = {E_T0 + 8, 1000, 3};

	e_add(10, E_T0); /* created at T0 .. T0+9: ids 1..8 are too old */
	ck_assert_int_eq(store_events_prune(e_st, &old, e_err, sizeof(e_err)),
	    3);
	ck_assert_int_eq(store_events_prune(e_st, &old, e_err, sizeof(e_err)),
	    3);
	ck_assert_int_eq(store_events_prune(e_st, &old, e_err, sizeof(e_err)),
	    2);
	ck_assert_int_eq(store_events_prune(e_st, &old, e_err, sizeof(e_err)),
	    0);
	ck_assert(store_flush(e_st, e_err, sizeof(e_err)) == 0);
	ck_assert_int_eq(e_bounds().floor, 8);
	ck_assert_int_eq(e_bounds().last, 10);
}
END_TEST

START_TEST(test_notify_state)
{
	struct notify_state ns;
	int64_t at = 0;

	ck_assert(store_notify_state(e_st, &ns, e_err, sizeof(e_err)) == 0);
	ck_assert_int_eq(ns.last_message_id, 0);
	ck_assert_int_eq(ns.last_digest_at, 0);
	ck_assert_int_eq(store_notify_first(e_st, 0, &at, e_err, sizeof(e_err)),
	    0);
	ck_assert(store_notify_state_set(e_st, &(struct notify_state){17, E_T0},
		      e_err, sizeof(e_err)) == 0);
	ck_assert(store_flush(e_st, e_err, sizeof(e_err)) == 0);
	ck_assert(store_notify_state(e_st, &ns, e_err, sizeof(e_err)) == 0);
	ck_assert_int_eq(ns.last_message_id, 17);
	ck_assert_int_eq(ns.last_digest_at, E_T0);
}
END_TEST

/* Checks notify_words(in) == want. */
static void
e_words(const char *in, const char *want)
{
	char *got = notify_words(in);

	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_notify_words)
{
	char long_utf8[200];
	char *got;
	size_t i;

	e_words("Hi there", "Hi there");
	e_words("line one\nline\ttwo\r", "line one line two ");
	e_words(NULL, "");
	/* 90 bytes: cut at the last space within 80, "..." added */
	e_words("aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa "
		"aaaaaaaaa aaaaaaaaa aaaaaaaaa",
	    "aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa "
	    "aaaaaaaaa aaaaaaaaa...");
	/* no space: never inside a UTF-8 sequence (2-byte 'e' acute) */
	for (i = 0; i + 2 < sizeof(long_utf8); i += 2)
		memcpy(long_utf8 + i, "\xc3\xa9", 2);
	long_utf8[i] = '\0';
	got = notify_words(long_utf8);
	ck_assert_uint_eq(strlen(got), 80 + 3);
	ck_assert_str_eq(got + 80, "...");
	free(got);
	memmove(long_utf8, long_utf8 + 1, strlen(long_utf8)); /* odd start */
	got = notify_words(long_utf8);
	ck_assert_uint_eq(strlen(got), 79 + 3);
	ck_assert(((unsigned char)got[78] & 0xc0) == 0x80);
	free(got);
}
END_TEST

/* ---- http_reply_pending() and http_reply_watch() on a real socket ----- */

struct e_http {
	struct http_req *req; /* the held stream */
	int started;	      /* the handler ran */
	int gone;	      /* http_reply_watch() calls */
};

static void
e_http_gone(struct http_req *req, void *arg)
{
	struct e_http *h = arg;

	h->gone++;
	h->req = NULL;
	http_reply_end(req);
}

static void
e_http_stream(struct http_req *req, void *arg)
{
	struct e_http *h = arg;

	h->req = req;
	h->started = 1;
	http_reply_start(req, 200, "text/event-stream");
	http_reply_watch(req, e_http_gone, h);
}

/* Runs base until *flag is set, at most about turns * 10 ms. */
static void
e_http_loop(struct event_base *base, const int *flag, int turns)
{
	int i;

	for (i = 0; i < turns && !*flag; i++) {
		struct timeval tv = {0, 10000};

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

START_TEST(test_http_pending_and_gone)
{
	static const char get[] = "GET /s HTTP/1.1\r\nHost: x\r\n\r\n";
	struct event_base *base = event_base_new();
	struct http_server *srv = http_new(base, 1 << 20, NULL);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct e_http h = {0};
	size_t chunk = 1 << 20, i, before;
	char *data = calloc(1, chunk);
	unsigned port;
	int fd, never = 0;

	ck_assert_ptr_nonnull(data);
	http_route(srv, HTTP_GET, "/s", e_http_stream, &h);
	ck_assert(
	    http_listen(srv, "127.0.0.1", 0, &port, e_err, sizeof(e_err)) == 0);
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	ck_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	ck_assert(
	    write(fd, get, sizeof(get) - 1) == (ssize_t)(sizeof(get) - 1));
	e_http_loop(base, &h.started, 500);
	ck_assert_ptr_nonnull(h.req);
	/* 32 MiB to a client that reads nothing: the kernel takes a few
	 * MiB at most, the rest stays queued and counted */
	for (i = 0; i < 32; i++)
		http_reply_chunk(h.req, data, chunk);
	before = http_reply_pending(h.req);
	ck_assert_uint_ge(before, 31 * chunk);
	e_http_loop(base, &never, 100); /* ~1 s of writing what fits */
	ck_assert_uint_gt(http_reply_pending(h.req), 16 * chunk);
	ck_assert_uint_le(http_reply_pending(h.req), before);
	ck_assert_int_eq(h.gone, 0);
	close(fd); /* the client leaves: the watch ends the reply */
	e_http_loop(base, &h.gone, 500);
	ck_assert_int_eq(h.gone, 1);
	free(data);
	http_free(srv);
	event_base_free(base);
}
END_TEST

/*
 * evhttp closes a connection idle for 30 s, and counted a reply held open
 * with nothing to write as idle: a held chunked reply outlives that now
 * (31 s, the one slow test of the suite).
 */
START_TEST(test_http_held_reply_outlives_idle_timeout)
{
	static const char get[] = "GET /s HTTP/1.1\r\nHost: x\r\n\r\n";
	struct event_base *base = event_base_new();
	struct http_server *srv = http_new(base, 1 << 20, NULL);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct e_http h = {0};
	char buf[4096];
	unsigned port;
	ssize_t n;
	size_t got = 0;
	int fd, never = 0;

	http_route(srv, HTTP_GET, "/s", e_http_stream, &h);
	ck_assert(
	    http_listen(srv, "127.0.0.1", 0, &port, e_err, sizeof(e_err)) == 0);
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	ck_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	ck_assert(
	    write(fd, get, sizeof(get) - 1) == (ssize_t)(sizeof(get) - 1));
	e_http_loop(base, &h.started, 500);
	ck_assert_ptr_nonnull(h.req);
	e_http_loop(base, &h.gone, 3100); /* 31 s with nothing written */
	ck_assert_int_eq(h.gone, 0);
	http_reply_chunk(h.req, "still here", 10);
	e_http_loop(base, &never, 20);
	while (got < sizeof(buf) - 1 &&
	    (n = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	ck_assert_msg(strstr(buf, "still here") != NULL, "got: %s", buf);
	http_reply_end(h.req);
	close(fd);
	http_free(srv);
	event_base_free(base);
}
END_TEST

Suite *
events_suite(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("frame");
	TCase *ts = tcase_create("store");

	tcase_add_test(tc, test_frame);
	tcase_add_test(tc, test_plan);
	tcase_add_test(tc, test_order_take);
	tcase_add_test(tc, test_notify_words);
	tcase_add_test(tc, test_http_pending_and_gone);
	tcase_add_test(tc, test_http_held_reply_outlives_idle_timeout);
	tcase_set_timeout(tc, 90);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(ts, e_setup, e_teardown);
	tcase_add_test(ts, test_walk);
	tcase_add_test(ts, test_prune_by_count_and_ids_grow);
	tcase_add_test(ts, test_prune_by_age_in_batches);
	tcase_add_test(ts, test_notify_state);
	suite_add_tcase(s, ts);
	return s;
}
