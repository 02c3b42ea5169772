/*
 * workq.c - a fixed pool of pthreads fed from one mutex/condvar FIFO,
 * with results returned to the libevent loop through a pipe.
 *
 * A worker takes the oldest queued job, runs it without the lock, then
 * appends it to the 'finished' list and, if no wake-up is outstanding,
 * writes one byte to a non-blocking pipe. The loop's persistent read
 * event drains the pipe, clears the outstanding flag, takes the whole
 * finished list under the lock and calls each 'done' without it: so done
 * callbacks run in completion order and may submit more work. We use a
 * pipe rather than event_active() from the workers so that the daemon
 * needs no evthread locking (evthread_use_pthreads) on its base.
 * workq_post() lets a running job hand part of its results over the same
 * way before it ends (an entry of its own on the 'finished' list).
 *
 * Locking: every field shared with the workers (the two lists, 'stopping'
 * and 'wake_pending') is read and written only under 'mtx'. 'pending',
 * the event and the pipe's read end belong to the loop thread alone.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "workq.h"
#include "xmalloc.h"

/* One submitted job: queued, running on a worker, or finished. */
struct workq_job {
	TAILQ_ENTRY(workq_job) entry;
	workq_run_fn *run;
	workq_done_fn *done;
	void *arg;
	bool posted; /* by workq_post(): not counted in 'pending' */
};
TAILQ_HEAD(workq_job_list, workq_job);

struct workq {
	pthread_mutex_t mtx;
	pthread_cond_t cv; /* signalled when queued grows or stopping */
	struct workq_job_list queued;	/* under mtx: not yet started */
	struct workq_job_list finished; /* under mtx: run, done not called */
	bool stopping;			/* under mtx: workq_free() began */
	bool wake_pending;		/* under mtx: a byte is on its way */
	int wfd;			/* pipe write end, used by workers */
	int rfd;			/* pipe read end, loop thread */
	struct event *ev;		/* loop thread: read event on rfd */
	unsigned pending;		/* loop thread: submitted, not done */
	unsigned nthreads;		/* threads started */
	pthread_t threads[WORKQ_MAX_THREADS];
};

static void *workq_worker(void *arg);
static void workq_wake(struct workq *q);
static void workq_on_wake(int fd, short what, void *arg);
static void workq_drain_pipe(int fd);
static void workq_deliver(struct workq *q, struct workq_job_list *list,
    bool cancelled);
static int workq_start_threads(struct workq *q, unsigned nthreads, char *err,
    size_t errlen);
static void workq_stop_threads(struct workq *q);

/*
 * The body of every worker thread: take the oldest queued job, run it
 * unlocked, hand it to the loop. Returns once 'stopping' is set, without
 * starting any job still queued (workq_free() cancels those).
 */
static void *
workq_worker(void *arg)
{
	struct workq *q = arg;
	struct workq_job *job;

	for (;;) {
		pthread_mutex_lock(&q->mtx);
		while (!q->stopping && TAILQ_EMPTY(&q->queued))
			pthread_cond_wait(&q->cv, &q->mtx);
		if (q->stopping) {
			pthread_mutex_unlock(&q->mtx);
			return NULL;
		}
		job = TAILQ_FIRST(&q->queued);
		TAILQ_REMOVE(&q->queued, job, entry);
		pthread_mutex_unlock(&q->mtx);

		job->run(job->arg);

		pthread_mutex_lock(&q->mtx);
		TAILQ_INSERT_TAIL(&q->finished, job, entry);
		pthread_mutex_unlock(&q->mtx);
		workq_wake(q);
	}
}

/*
 * Worker side: makes sure the loop will look at 'finished'. One byte is
 * enough for any number of finished jobs, so a byte is written only when
 * none is outstanding; the pipe then never fills. EAGAIN would mean it
 * is full of wake-ups already, which is just as good.
 */
static void
workq_wake(struct workq *q)
{
	bool need;
	ssize_t n;

	pthread_mutex_lock(&q->mtx);
	need = !q->wake_pending;
	q->wake_pending = true;
	pthread_mutex_unlock(&q->mtx);
	if (!need)
		return;
	do
		n = write(q->wfd, "w", 1);
	while (n == -1 && errno == EINTR);
}

/* Reads the pipe empty; it is non-blocking, so this stops at EAGAIN. */
static void
workq_drain_pipe(int fd)
{
	char buf[64];
	ssize_t n;

	do
		n = read(fd, buf, sizeof(buf));
	while (n > 0 || (n == -1 && errno == EINTR));
}

/*
 * Loop side of the pipe: drain it first, then clear 'wake_pending' and
 * take the finished jobs, both under the lock. A worker finishing after
 * that sees the flag clear and writes a new byte, so no job is missed.
 */
static void
workq_on_wake(int fd, short what, void *arg)
{
	struct workq *q = arg;
	struct workq_job_list batch;

	(void)what;
	workq_drain_pipe(fd);
	TAILQ_INIT(&batch);
	pthread_mutex_lock(&q->mtx);
	q->wake_pending = false;
	TAILQ_CONCAT(&batch, &q->finished, entry);
	pthread_mutex_unlock(&q->mtx);
	workq_deliver(q, &batch, false);
}

/* Calls and frees every job of 'list', in order, on the loop thread. */
static void
workq_deliver(struct workq *q, struct workq_job_list *list, bool cancelled)
{
	struct workq_job *job;

	while ((job = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, job, entry);
		if (!job->posted)
			q->pending--;
		job->done(job->arg, cancelled);
		free(job);
	}
}

/*
 * Starts the workers with every signal blocked, so that signals reach
 * the loop thread (libevent's evsignal) and never interrupt a session.
 * On failure, stops the threads already started and fills 'err'.
 */
static int
workq_start_threads(struct workq *q, unsigned nthreads, char *err,
    size_t errlen)
{
	sigset_t all;
	sigset_t old;
	int rc = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (q->nthreads = 0; q->nthreads < nthreads; q->nthreads++) {
		rc = pthread_create(&q->threads[q->nthreads], NULL,
		    workq_worker, q);
		if (rc != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		return 0;
	snprintf(err, errlen, "workq: pthread_create: %s", strerror(rc));
	workq_stop_threads(q);
	return -1;
}

/* Sets 'stopping', wakes every worker and joins them. */
static void
workq_stop_threads(struct workq *q)
{
	unsigned i;

	pthread_mutex_lock(&q->mtx);
	q->stopping = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mtx);
	for (i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	q->nthreads = 0;
}

/*
 * Creates the pool: the pipe (both ends O_CLOEXEC, so a forked helper
 * does not inherit them, and O_NONBLOCK, so neither side can stall), the
 * persistent read event on 'base', then 'nthreads' workers.
 *
 * Returns the pool, which the caller frees with workq_free(), or NULL
 * with a message in 'err' (bad 'nthreads', no pipe, no event, no thread).
 */
struct workq *
workq_new(struct event_base *base, unsigned nthreads, char *err, size_t errlen)
{
	struct workq *q;
	int fds[2];

	if (nthreads == 0 || nthreads > WORKQ_MAX_THREADS) {
		snprintf(err, errlen, "workq: %u threads (want 1..%d)",
		    nthreads, WORKQ_MAX_THREADS);
		return NULL;
	}
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "workq: pipe2: %s", strerror(errno));
		return NULL;
	}
	q = xcalloc(1, sizeof(*q));
	pthread_mutex_init(&q->mtx, NULL);
	pthread_cond_init(&q->cv, NULL);
	TAILQ_INIT(&q->queued);
	TAILQ_INIT(&q->finished);
	q->rfd = fds[0];
	q->wfd = fds[1];
	q->ev = event_new(base, q->rfd, EV_READ | EV_PERSIST, workq_on_wake, q);
	if (q->ev == NULL || event_add(q->ev, NULL) == -1) {
		snprintf(err, errlen, "workq: cannot add the pipe event");
		goto fail;
	}
	if (workq_start_threads(q, nthreads, err, errlen) == -1)
		goto fail;
	return q;
fail:
	workq_free(q);
	return NULL;
}

/*
 * Queues a job: 'run'(job) later on a worker, then 'done'(job, false) on
 * the loop thread; or 'done'(job, true) alone if workq_free() finds it
 * still queued. Never calls either callback itself.
 *
 * Returns 0, or -1 once workq_free() has begun (from a done callback it
 * runs); then nothing is queued and the caller still owns 'job'.
 */
int
workq_submit(struct workq *q, workq_run_fn *run, workq_done_fn *done, void *job)
{
	struct workq_job *j;

	j = xmalloc(sizeof(*j));
	j->run = run;
	j->done = done;
	j->arg = job;
	j->posted = false;
	pthread_mutex_lock(&q->mtx);
	if (q->stopping) {
		pthread_mutex_unlock(&q->mtx);
		free(j);
		return -1;
	}
	TAILQ_INSERT_TAIL(&q->queued, j, entry);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mtx);
	q->pending++;
	return 0;
}

/*
 * Worker side, from inside a 'run': a finished entry of its own, so the
 * loop calls 'done'(arg, false) in completion order with the jobs (the
 * job's own entry comes after it, when 'run' returns). Not counted in
 * 'pending': it was never submitted.
 */
void
workq_post(struct workq *q, workq_done_fn *done, void *arg)
{
	struct workq_job *j;

	j = xmalloc(sizeof(*j));
	j->run = NULL;
	j->done = done;
	j->arg = arg;
	j->posted = true;
	pthread_mutex_lock(&q->mtx);
	TAILQ_INSERT_TAIL(&q->finished, j, entry);
	pthread_mutex_unlock(&q->mtx);
	workq_wake(q);
}

/*
 * Returns how many submitted jobs have not had their 'done' called yet:
 * queued, running, or finished and waiting for the loop. Inside a done
 * callback, that job is no longer counted.
 */
unsigned
workq_pending(const struct workq *q)
{
	return q->pending;
}

/*
 * Shuts the pool down: stops taking jobs, lets running ones finish and
 * joins every worker (so this blocks as long as the slowest running job),
 * then, with no thread left, calls 'done' for each finished job (cancelled
 * false, completion order) and each job never started (cancelled true,
 * submission order). Done callbacks here get -1 from workq_submit().
 * Closes the pipe and frees 'q'. NULL does nothing. Loop thread only,
 * and never from a done callback.
 */
void
workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	workq_stop_threads(q);
	workq_deliver(q, &q->finished, false);
	workq_deliver(q, &q->queued, true);
	if (q->ev != NULL)
		event_free(q->ev);
	close(q->rfd);
	close(q->wfd);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mtx);
	free(q);
}
