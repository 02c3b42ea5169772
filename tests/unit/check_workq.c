/*
 * check_workq.c - unit tests of the worker pool in workq.c, on a real
 * event_base: which thread runs what, every job completing exactly once
 * under load, done callbacks in completion order, a slow job not blocking
 * the loop, workq_free() finishing running jobs and cancelling queued
 * ones, and a running job's workq_post() parts delivered before its
 * done. Waits poll the loop against a deadline; the only sleeps are the
 * jobs' own work on the worker threads.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <event2/event.h>

#include "check_suites.h"
#include "workq.h"

#define WQ_TEST_DEADLINE_MS 10000 /* generous: valgrind serialises threads */
#define WQ_TEST_MANY	    1000
#define WQ_TEST_ORDER	    4

/* One test job. Worker-side fields are read on the loop only after done,
 * which workq orders after 'run' through its mutex. */
struct wq_test_job {
	unsigned sleep_ms;	  /* work to simulate in run */
	unsigned runs;		  /* worker: times run was called */
	pthread_t run_thread;	  /* worker: who ran it */
	unsigned finish_seq;	  /* worker: order run returned in */
	unsigned dones;		  /* loop: times done was called */
	bool cancelled;		  /* loop: the flag done got */
	pthread_t done_thread;	  /* loop: who called done */
	unsigned done_seq;	  /* loop: order done was called in */
	struct wq_test_state *st; /* shared counters */
};

/* Counters for one test. 'seq_mtx' guards the worker-side counters. */
struct wq_test_state {
	pthread_mutex_t seq_mtx;
	unsigned started;     /* under seq_mtx: runs begun */
	unsigned finish_next; /* under seq_mtx: runs ended */
	struct workq *q;      /* loop thread only */
	unsigned done_next;   /* loop thread only */
	unsigned ticks;	      /* loop thread only: timer firings */
	int64_t first_tick_ms;
	int64_t done_ms;
};

static int64_t wq_test_now_ms(void);
static void wq_test_sleep_ms(unsigned ms);
static void wq_test_run(void *arg);
static void wq_test_done(void *arg, bool cancelled);
static void wq_test_done_stopping(void *arg, bool cancelled);
static void wq_test_noop(int fd, short what, void *arg);
static void wq_test_poll(struct event_base *base,
    const struct wq_test_state *st, unsigned want);
static void wq_test_tick(int fd, short what, void *arg);
static void wq_test_init(struct wq_test_state *st, struct wq_test_job *jobs,
    unsigned n);

static int64_t
wq_test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
wq_test_sleep_ms(unsigned ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1)
		continue;
}

/* The worker side: simulate blocking work, then record who and when. */
static void
wq_test_run(void *arg)
{
	struct wq_test_job *j = arg;

	pthread_mutex_lock(&j->st->seq_mtx);
	j->st->started++;
	pthread_mutex_unlock(&j->st->seq_mtx);
	j->runs++;
	j->run_thread = pthread_self();
	if (j->sleep_ms > 0)
		wq_test_sleep_ms(j->sleep_ms);
	pthread_mutex_lock(&j->st->seq_mtx);
	j->finish_seq = j->st->finish_next++;
	pthread_mutex_unlock(&j->st->seq_mtx);
}

static void
wq_test_done(void *arg, bool cancelled)
{
	struct wq_test_job *j = arg;

	j->dones++;
	j->cancelled = cancelled;
	j->done_thread = pthread_self();
	j->done_seq = j->st->done_next++;
	j->st->done_ms = wq_test_now_ms();
}

/* A done callback run by workq_free(): new work must be refused. */
static void
wq_test_done_stopping(void *arg, bool cancelled)
{
	struct wq_test_job *j = arg;

	wq_test_done(arg, cancelled);
	ck_assert_int_eq(workq_submit(j->st->q, wq_test_run, wq_test_done, arg),
	    -1);
}

/* A no-op timer callback: it only makes event_base_loop() return. */
static void
wq_test_noop(int fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until 'want' done callbacks have run or the deadline
 * passes; a 10 ms persistent timer brings the loop back to check it. */
static void
wq_test_poll(struct event_base *base, const struct wq_test_state *st,
    unsigned want)
{
	int64_t deadline = wq_test_now_ms() + WQ_TEST_DEADLINE_MS;
	struct timeval tv = {0, 10000};
	struct event *tick;

	tick = event_new(base, -1, EV_PERSIST, wq_test_noop, NULL);
	event_add(tick, &tv);
	while (st->done_next < want && wq_test_now_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
	ck_assert_uint_eq(st->done_next, want);
}

/* Counts a 20 ms timer's firings and the time of the first one. */
static void
wq_test_tick(int fd, short what, void *arg)
{
	struct wq_test_state *st = arg;

	(void)fd;
	(void)what;
	if (st->ticks++ == 0)
		st->first_tick_ms = wq_test_now_ms();
}

static void
wq_test_init(struct wq_test_state *st, struct wq_test_job *jobs, unsigned n)
{
	unsigned i;

	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&st->seq_mtx, NULL);
	memset(jobs, 0, n * sizeof(*jobs));
	for (i = 0; i < n; i++) {
		jobs[i].st = st;
	}
}

START_TEST(test_workq_threads)
{
	struct event_base *base = event_base_new();
	struct wq_test_state st;
	struct wq_test_job j;
	struct workq *q;
	char err[128];

	wq_test_init(&st, &j, 1);
	q = workq_new(base, 2, err, sizeof(err));
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(workq_submit(q, wq_test_run, wq_test_done, &j), 0);
	ck_assert_uint_eq(workq_pending(q), 1);
	ck_assert_uint_eq(j.dones, 0); /* never from inside submit */
	wq_test_poll(base, &st, 1);
	ck_assert_uint_eq(workq_pending(q), 0);
	ck_assert_uint_eq(j.runs, 1);
	ck_assert(!j.cancelled);
	ck_assert(!pthread_equal(j.run_thread, pthread_self()));
	ck_assert(pthread_equal(j.done_thread, pthread_self()));
	workq_free(q);
	ck_assert_uint_eq(j.dones, 1);
	event_base_free(base);
	pthread_mutex_destroy(&st.seq_mtx);
}
END_TEST

START_TEST(test_workq_bad_args)
{
	struct event_base *base = event_base_new();
	char err[128];

	err[0] = '\0';
	ck_assert_ptr_null(workq_new(base, 0, err, sizeof(err)));
	ck_assert_str_ne(err, "");
	ck_assert_ptr_null(
	    workq_new(base, WORKQ_MAX_THREADS + 1, err, sizeof(err)));
	workq_free(NULL);
	event_base_free(base);
}
END_TEST

START_TEST(test_workq_many)
{
	static struct wq_test_job jobs[WQ_TEST_MANY];
	struct event_base *base = event_base_new();
	struct wq_test_state st;
	struct workq *q;
	char err[128];
	unsigned i;

	wq_test_init(&st, jobs, WQ_TEST_MANY);
	q = workq_new(base, 4, err, sizeof(err));
	ck_assert_ptr_nonnull(q);
	for (i = 0; i < WQ_TEST_MANY; i++)
		ck_assert_int_eq(
		    workq_submit(q, wq_test_run, wq_test_done, &jobs[i]), 0);
	wq_test_poll(base, &st, WQ_TEST_MANY);
	ck_assert_uint_eq(workq_pending(q), 0);
	workq_free(q);
	for (i = 0; i < WQ_TEST_MANY; i++) {
		ck_assert_uint_eq(jobs[i].runs, 1);
		ck_assert_uint_eq(jobs[i].dones, 1);
		ck_assert(!jobs[i].cancelled);
	}
	ck_assert_uint_eq(st.finish_next, WQ_TEST_MANY);
	event_base_free(base);
	pthread_mutex_destroy(&st.seq_mtx);
}
END_TEST

/*
 * Four jobs on four threads, the first submitted working longest (120,
 * 90, 60, 30 ms): they finish in reverse, 30 ms apart, and done must
 * follow that order rather than the submission order.
 */
START_TEST(test_workq_completion_order)
{
	struct wq_test_job jobs[WQ_TEST_ORDER];
	struct event_base *base = event_base_new();
	struct wq_test_state st;
	struct workq *q;
	char err[128];
	unsigned i;

	wq_test_init(&st, jobs, WQ_TEST_ORDER);
	q = workq_new(base, WQ_TEST_ORDER, err, sizeof(err));
	ck_assert_ptr_nonnull(q);
	for (i = 0; i < WQ_TEST_ORDER; i++) {
		jobs[i].sleep_ms = 30 * (WQ_TEST_ORDER - i);
		ck_assert_int_eq(
		    workq_submit(q, wq_test_run, wq_test_done, &jobs[i]), 0);
	}
	wq_test_poll(base, &st, WQ_TEST_ORDER);
	for (i = 0; i < WQ_TEST_ORDER; i++) {
		ck_assert_uint_eq(jobs[i].done_seq, jobs[i].finish_seq);
		ck_assert_uint_eq(jobs[i].done_seq, WQ_TEST_ORDER - 1 - i);
	}
	workq_free(q);
	event_base_free(base);
	pthread_mutex_destroy(&st.seq_mtx);
}
END_TEST

/* A job working 200 ms must not stop a 20 ms loop timer from firing. */
START_TEST(test_workq_loop_not_blocked)
{
	struct event_base *base = event_base_new();
	struct timeval tv = {0, 20000};
	struct wq_test_state st;
	struct wq_test_job j;
	struct event *timer;
	struct workq *q;
	char err[128];
	int64_t start;

	wq_test_init(&st, &j, 1);
	j.sleep_ms = 200;
	q = workq_new(base, 1, err, sizeof(err));
	ck_assert_ptr_nonnull(q);
	timer = event_new(base, -1, 0, wq_test_tick, &st);
	start = wq_test_now_ms();
	ck_assert_int_eq(workq_submit(q, wq_test_run, wq_test_done, &j), 0);
	event_add(timer, &tv);
	wq_test_poll(base, &st, 1);
	ck_assert_uint_eq(st.ticks, 1);
	ck_assert_int_lt(st.first_tick_ms, st.done_ms);
	ck_assert_int_ge(st.done_ms - start, 200);
	event_free(timer);
	workq_free(q);
	event_base_free(base);
	pthread_mutex_destroy(&st.seq_mtx);
}
END_TEST

/*
 * Two threads, seven jobs of 100 ms: once the first two are running,
 * workq_free() waits for them (done, not cancelled), cancels the five
 * still queued without running them, and rejects submissions made from
 * those done callbacks. Nothing may leak (ASan / valgrind).
 */
START_TEST(test_workq_free_cancels)
{
	struct wq_test_job jobs[7];
	struct event_base *base = event_base_new();
	struct wq_test_state st;
	struct workq *q;
	char err[128];
	int64_t deadline;
	unsigned started;
	unsigned i;

	wq_test_init(&st, jobs, 7);
	q = workq_new(base, 2, err, sizeof(err));
	ck_assert_ptr_nonnull(q);
	st.q = q;
	for (i = 0; i < 7; i++) {
		jobs[i].sleep_ms = 100;
		ck_assert_int_eq(workq_submit(q, wq_test_run,
				     wq_test_done_stopping, &jobs[i]),
		    0);
	}
	ck_assert_uint_eq(workq_pending(q), 7);
	deadline = wq_test_now_ms() + WQ_TEST_DEADLINE_MS;
	do {
		pthread_mutex_lock(&st.seq_mtx);
		started = st.started;
		pthread_mutex_unlock(&st.seq_mtx);
		if (started < 2)
			wq_test_sleep_ms(1); /* poll interval */
	} while (started < 2 && wq_test_now_ms() < deadline);
	ck_assert_uint_eq(started, 2);
	workq_free(q);
	ck_assert_uint_eq(st.done_next, 7);
	for (i = 0; i < 7; i++) {
		ck_assert_uint_eq(jobs[i].dones, 1);
		ck_assert_uint_eq(jobs[i].runs, i < 2 ? 1 : 0);
		ck_assert(jobs[i].cancelled == (i >= 2));
		/* finished first, then the cancelled in submission order */
		if (i < 2)
			ck_assert_uint_eq(jobs[i].done_seq, jobs[i].finish_seq);
		else
			ck_assert_uint_eq(jobs[i].done_seq, i);
	}
	event_base_free(base);
	pthread_mutex_destroy(&st.seq_mtx);
}
END_TEST

/* A part of a job's results handed over with workq_post(). */
struct wq_test_post {
	struct wq_test_state *st;
	unsigned dones;
	bool cancelled;
	unsigned done_seq;
	pthread_mutex_t *mtx; /* guards 'delivered' against the worker */
	bool delivered;
};

/* A job that posts: 'posts' entries, waiting after the first until the
 * loop delivered it (when wait_first), then sleeps 'sleep_ms'. */
struct wq_test_poster {
	struct wq_test_job job;
	struct workq *q;
	struct wq_test_post *posts;
	unsigned nposts;
	bool wait_first;
	bool saw_first; /* worker: the first post was delivered mid-run */
};

static void
wq_test_post_done(void *arg, bool cancelled)
{
	struct wq_test_post *p = arg;

	p->dones++;
	p->cancelled = cancelled;
	p->done_seq = p->st->done_next++;
	pthread_mutex_lock(p->mtx);
	p->delivered = true;
	pthread_mutex_unlock(p->mtx);
}

static void
wq_test_post_run(void *arg)
{
	struct wq_test_poster *w = arg;
	int64_t deadline = wq_test_now_ms() + WQ_TEST_DEADLINE_MS;
	unsigned i;
	bool seen = false;

	for (i = 0; i < w->nposts; i++) {
		workq_post(w->q, wq_test_post_done, &w->posts[i]);
		while (i == 0 && w->wait_first && !seen &&
		    wq_test_now_ms() < deadline) {
			pthread_mutex_lock(w->posts[0].mtx);
			seen = w->posts[0].delivered;
			pthread_mutex_unlock(w->posts[0].mtx);
			if (!seen)
				wq_test_sleep_ms(1); /* poll interval */
		}
	}
	w->saw_first = seen;
	wq_test_run(&w->job);
}

static void
wq_test_poster_init(struct wq_test_poster *w, struct wq_test_state *st,
    struct wq_test_post *posts, unsigned n, pthread_mutex_t *mtx)
{
	unsigned i;

	memset(w, 0, sizeof(*w));
	memset(posts, 0, n * sizeof(*posts));
	w->job.st = st;
	w->posts = posts;
	w->nposts = n;
	for (i = 0; i < n; i++) {
		posts[i].st = st;
		posts[i].mtx = mtx;
	}
}

/*
 * A running job hands three parts over with workq_post(): the first is
 * delivered on the loop while the job still runs (it waits for it), all
 * three in order and before the job's own done, none counted pending.
 */
START_TEST(test_workq_post)
{
	struct event_base *base = event_base_new();
	pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
	struct wq_test_post posts[3];
	struct wq_test_poster w;
	struct wq_test_state st;
	char err[128];
	unsigned i;

	wq_test_init(&st, &w.job, 1);
	wq_test_poster_init(&w, &st, posts, 3, &mtx);
	w.wait_first = true;
	w.q = workq_new(base, 2, err, sizeof(err));
	ck_assert_ptr_nonnull(w.q);
	ck_assert_int_eq(workq_submit(w.q, wq_test_post_run, wq_test_done, &w),
	    0);
	wq_test_poll(base, &st, 4);
	ck_assert(w.saw_first);
	ck_assert_uint_eq(workq_pending(w.q), 0);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(posts[i].dones, 1);
		ck_assert(!posts[i].cancelled);
		ck_assert_uint_eq(posts[i].done_seq, i);
	}
	ck_assert_uint_eq(w.job.dones, 1);
	ck_assert_uint_eq(w.job.done_seq, 3);
	workq_free(w.q);
	event_base_free(base);
	pthread_mutex_destroy(&st.seq_mtx);
}
END_TEST

/* workq_free() while a job that posted still runs: the posts are
 * delivered (not cancelled), before the job's done. */
START_TEST(test_workq_free_delivers_posts)
{
	struct event_base *base = event_base_new();
	pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
	struct wq_test_post posts[2];
	struct wq_test_poster w;
	struct wq_test_state st;
	int64_t deadline;
	unsigned started;
	char err[128];

	wq_test_init(&st, &w.job, 1);
	wq_test_poster_init(&w, &st, posts, 2, &mtx);
	w.job.sleep_ms = 100;
	w.q = workq_new(base, 1, err, sizeof(err));
	ck_assert_ptr_nonnull(w.q);
	ck_assert_int_eq(workq_submit(w.q, wq_test_post_run, wq_test_done, &w),
	    0);
	deadline = wq_test_now_ms() + WQ_TEST_DEADLINE_MS;
	do {
		pthread_mutex_lock(&st.seq_mtx);
		started = st.started;
		pthread_mutex_unlock(&st.seq_mtx);
		if (started < 1)
			wq_test_sleep_ms(1); /* poll interval */
	} while (started < 1 && wq_test_now_ms() < deadline);
	ck_assert_uint_eq(started, 1);
	workq_free(w.q);
	ck_assert_uint_eq(st.done_next, 3);
	ck_assert_uint_eq(posts[0].dones, 1);
	ck_assert_uint_eq(posts[1].dones, 1);
	ck_assert(!posts[0].cancelled && !posts[1].cancelled);
	ck_assert_uint_eq(posts[0].done_seq, 0);
	ck_assert_uint_eq(posts[1].done_seq, 1);
	ck_assert_uint_eq(w.job.done_seq, 2);
	ck_assert(!w.job.cancelled);
	event_base_free(base);
	pthread_mutex_destroy(&st.seq_mtx);
}
END_TEST

Suite *
workq_suite(void)
{
	Suite *s = suite_create("workq");
	TCase *tc;

	tc = tcase_create("threads");
	tcase_add_test(tc, test_workq_threads);
	tcase_add_test(tc, test_workq_bad_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("delivery");
	tcase_set_timeout(tc, 60); /* valgrind */
	tcase_add_test(tc, test_workq_many);
	tcase_add_test(tc, test_workq_completion_order);
	tcase_add_test(tc, test_workq_loop_not_blocked);
	tcase_add_test(tc, test_workq_post);
	suite_add_tcase(s, tc);

	tc = tcase_create("free");
	tcase_add_test(tc, test_workq_free_cancels);
	tcase_add_test(tc, test_workq_free_delivers_posts);
	suite_add_tcase(s, tc);
	return s;
}
