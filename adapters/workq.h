/*
 * workq.h - a fixed pool of worker threads for blocking work (libesmtp
 * sessions, doc/architecture.md), with results handed back to the loop.
 *
 * Contract:
 *  - workq_new(), workq_submit(), workq_pending() and workq_free() are
 *    loop thread only, and so are the 'done' callbacks.
 *  - 'run' executes on a worker thread. It MUST NOT call libevent, the
 *    store (queue/) or any other loop-thread API; it may only touch the
 *    job it was given (a private copy of its data, adapter.h rule 8) and
 *    thread-safe code such as log.c and xmalloc.c.
 *  - On 0 from workq_submit(), 'done' runs exactly once, later, on the
 *    loop thread, never from inside workq_submit(): with cancelled false
 *    after 'run' returned, or with cancelled true (and 'run' never called)
 *    when workq_free() found the job still queued. On -1 neither runs.
 *  - Done callbacks run in the order the jobs finished running, not the
 *    order they were submitted.
 *  - 'job' is the caller's, borrowed until its 'done', which usually
 *    frees it. workq never reads or frees it.
 *  - A done callback may call workq_submit(), but not workq_free().
 *  - workq_post() is the one call for 'run' itself: it hands a part of
 *    its results to the loop before the job ends ('done'(arg, false) on
 *    the loop thread, in the same completion order as finished jobs,
 *    before the job's own done). workq_free() delivers posts like
 *    finished jobs; a post is never cancelled.
 *  - Worker threads block every signal.
 */
#ifndef OD_WORKQ_H
#define OD_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct workq;

/* Upper bound on the pool size: workq is for a few blocking sessions. */
#define WORKQ_MAX_THREADS 64

/* Runs on a worker thread: no libevent, no store (see the contract). */
typedef void workq_run_fn(void *job);
/* Runs on the loop thread once per submitted job; 'cancelled' is true
 * when the job was never started because workq_free() came first. */
typedef void workq_done_fn(void *job, bool cancelled);

/* Starts 'nthreads' (1..WORKQ_MAX_THREADS) workers whose results are
 * delivered on 'base'. Returns the pool, owned by the caller, or NULL
 * with text in 'err'. */
struct workq *workq_new(struct event_base *base, unsigned nthreads, char *err,
    size_t errlen);
/* Queues 'job' for 'run' on a worker, then 'done' on the loop. Returns 0,
 * or -1 (nothing queued, 'done' never runs) once workq_free() has begun. */
int workq_submit(struct workq *q, workq_run_fn *run, workq_done_fn *done,
    void *job);
/* From inside a 'run' on a worker thread only: queues 'done'(arg, false)
 * for the loop thread, as if a job had finished (see the contract); the
 * loop is woken as for a finished job. Never refused. */
void workq_post(struct workq *q, workq_done_fn *done, void *arg);
/* Jobs submitted whose 'done' has not yet been called (a job's own done
 * callback does not count it). */
unsigned workq_pending(const struct workq *q);
/* Stops taking jobs, waits for running ones, joins the threads, calls
 * 'done' for every finished job (cancelled false, in completion order),
 * then for every queued one (cancelled true, in submission order), and
 * frees the pool. NULL is a no-op. Blocks for as long as running jobs do. */
void workq_free(struct workq *q);

#endif
