/*
 * queue_async.c - the dispatcher's queue operations on either store; the
 * contract is queue_async.h.
 *
 * DESIGN
 *
 * What: one asynchronous interface for what daemon/dispatch.c does with
 * the queue, served on SQLite by queue.c (and store_email.c) and on
 * PostgreSQL by pg_queue.c on the node's queue connection
 * (store_pg_queue()). The daemon calls only this; it never learns which
 * store it runs on.
 *
 * Why answers through callbacks, even on SQLite: PostgreSQL answers a
 * statement a round trip later, from the loop; SQLite answers at once.
 * Each operation therefore answers to a callback, which SQLite calls
 * before the operation returns. The dispatcher is written for "later",
 * and "at once" is a special case of it, so the SQLite path keeps its
 * order of events and its cost: the same queue.c calls as before, plus a
 * function call per operation (per batch on the hot path, not per
 * message).
 *
 * Claims and durability. On SQLite a claim is written in the open group
 * transaction and is durable only when the group commits: its messages go
 * out from qa_when_durable()'s callback, which is store_on_commit(), as
 * before. On PostgreSQL a claim is one statement that commits before it
 * answers (pg_queue.c), so qa_when_durable() calls back at once. The
 * claim's answer carries pg_queue's deadline, converted to msg_now_ms():
 * nothing of the claim is handed out at or after it, so a message is not
 * handed out after its lease may have been swept by another node.
 *
 * Results. pg_queue records a result only while this node still holds the
 * message's lease; a result it drops (another node owns the message now)
 * comes back as n = 0 or ok[i] = false with why[i] = NULL, which the
 * dispatcher logs at debug: it is the documented duplicate window at
 * work, not an error. On SQLite a message the batch could not move is
 * recorded alone (queue_mark_sent()), which says why, in why[i].
 *
 * Route leases (PostgreSQL). Each sender route ("sms:NAME", "email") is
 * paced by one node at a time (pg_queue.c's design). A 1 s timer sends
 * pgq_route_acquire() for every route (one at a time per route), and
 * qa_route_held() is pgq_route_held(): the dispatcher claims a route only
 * while held, and restarts its token bucket empty when the epoch changed
 * (another node paced it meanwhile). A route taken, lost or changing
 * epoch is reported to the dispatcher, which claims at once when it gets
 * one. qa_routes_release() gives the leases up at a graceful shutdown and
 * leaves (pgq_leave(): the node stops counting as live for the fair
 * share), so another node takes them at its next renewal, without
 * waiting for them to expire or for this node's heartbeat to age. On SQLite
 * every route is always held, epoch 0.
 *
 * Idle. A PostgreSQL operation is pending until its answer; qa_busy()
 * says so and qa_on_idle() tells when the last one answered, so that a
 * graceful shutdown waits for its releases to be recorded before the
 * store closes.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "compat.h"
#include "queue.h"
#include "queue_async.h"
#include "store-internal.h"
#include "store.h"
#include "store_members.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include "pg.h"
#include "pg_queue.h"
#endif

#define QA_ROUTE_RENEW_MS 1000 /* route leases renewed this often */
#define QA_ROUTE_KEY_MAX  (MSG_SENDER_MAX + 8)

struct qa_route_state {
	char key[QA_ROUTE_KEY_MAX]; /* "sms:NAME", "email" */
	bool asking;		    /* an acquire is pending */
	bool held;		    /* as last reported */
	int64_t epoch;
};

struct qa {
	struct store *st;
	struct event_base *base;
	struct pg_queue *pgq; /* NULL: SQLite */
	size_t pending;	      /* PostgreSQL operations not answered */
	void (*idle_fn)(void *);
	void *idle_arg;
	struct qa_route_state *routes;
	size_t nroutes;
	qa_route_fn *route_changed;
	void *route_arg;
	struct event *route_ev;
	bool released;
};

struct qa *
qa_new(struct store *st, struct event_base *base)
{
	struct qa *q = xcalloc(1, sizeof(*q));

	q->st = st;
	q->base = base;
#ifdef HAVE_LIBPQ
	if (st != NULL && store_backend(st) == STORE_POSTGRESQL)
		q->pgq = store_pg_queue(st);
#endif
	return q;
}

void
qa_free(struct qa *q)
{
	if (q == NULL)
		return;
	if (q->route_ev != NULL)
		event_free(q->route_ev);
	free(q->routes);
	free(q);
}

bool
qa_busy(const struct qa *q)
{
	return q->pending > 0;
}

void
qa_on_idle(struct qa *q, void (*fn)(void *), void *arg)
{
	q->idle_fn = fn;
	q->idle_arg = arg;
}

/* Answers an operation with just an error (or nothing). */
static void
qa_answer_error(qa_done_fn *done, void *arg, const char *error, int64_t id)
{
	struct qa_answer a = {.error = error, .id = id};

	if (done != NULL)
		done(arg, &a);
}

/* ---- SQLite: queue.c, answered at once --------------------------------- */

static void
qa_sqlite_claim(struct qa *q, const struct queue_claim_req *req,
    qa_done_fn *done, void *arg)
{
	struct out_msg **msgs =
	    xcalloc(req->max > 0 ? req->max : 1, sizeof(*msgs));
	struct qa_answer a = {0};
	char err[256];
	ssize_t n;
	size_t i;

	n = queue_claim(q->st, req, msgs, err, sizeof(err));
	if (n == -1)
		a.error = err;
	else {
		a.n = (size_t)n;
		a.msgs = msgs;
	}
	if (done != NULL)
		done(arg, &a);
	else
		for (i = 0; i < a.n; i++)
			out_msg_free(msgs[i]);
	free(msgs);
}

static void
qa_sqlite_mark_sent(struct qa *q, const struct queue_sent *v, size_t n,
    int64_t now, qa_done_fn *done, void *arg)
{
	struct queue_sent *w = xreallocarray(NULL, n, sizeof(*w));
	bool *ok = xcalloc(n, sizeof(*ok));
	char **why = xcalloc(n, sizeof(*why));
	struct qa_answer a = {.ok = ok, .why = (const char *const *)why};
	char err[256], err1[256];
	ssize_t got;
	size_t i;

	memcpy(w, v, n * sizeof(*w));
	if ((got = queue_mark_sent_batch(q->st, w, n, now, err, sizeof(err))) ==
	    -1)
		a.error = err; /* rolled back: no second try */
	for (i = 0; got != -1 && i < n; i++) {
		if (w[i].ok) {
			ok[i] = true;
			continue;
		}
		/* Its state changed meanwhile: alone, to learn why. */
		if (queue_mark_sent(q->st, w[i].id,
			&(struct queue_result){.code = w[i].code,
			    .text = w[i].text,
			    .provider = w[i].provider,
			    .provider_id = w[i].provider_id},
			now, err1, sizeof(err1)) == -1)
			why[i] = xstrdup(err1);
		else
			ok[i] = true;
	}
	for (i = 0; i < n; i++)
		a.n += ok[i];
	if (done != NULL)
		done(arg, &a);
	for (i = 0; i < n; i++)
		free(why[i]);
	free(why);
	free(ok);
	free(w);
}

static void
qa_sqlite_mark(struct qa *q, const struct qa_result *r, qa_done_fn *done,
    void *arg)
{
	struct queue_result qr = {.code = r->code,
	    .text = r->text,
	    .to = r->to,
	    .next_attempt_at = r->next_attempt_at};
	struct qa_answer a = {.id = r->id};
	char err[256];
	int rc;

	if (r->to == MSG_ST_QUEUED && r->release)
		rc = queue_release(q->st, r->id, r->now, err, sizeof(err));
	else if (r->to == MSG_ST_QUEUED)
		rc = queue_mark_retry(q->st, r->id, &qr, r->now, err,
		    sizeof(err));
	else
		rc = queue_mark(q->st, r->id, &qr, r->now, err, sizeof(err));
	if (rc == -1)
		a.error = err;
	else
		a.n = 1;
	if (done != NULL)
		done(arg, &a);
}

static void
qa_sqlite_email(struct qa *q, const struct qa_email *e, qa_done_fn *done,
    void *arg)
{
	struct qa_answer a = {0};
	char err[256];
	int rc;

	if (e->accepted)
		rc = store_email_success(q->st, e->address, err, sizeof(err));
	else
		rc = store_email_failure(q->st, e->address, e->limit, e->now,
		    err, sizeof(err));
	if (rc == -1)
		a.error = err;
	else
		a.n = rc == 1;
	if (done != NULL)
		done(arg, &a);
}

/* ---- PostgreSQL: pg_queue.c, answered from the loop -------------------- */

#ifdef HAVE_LIBPQ
/* One pending pg_queue operation. */
struct qa_op {
	struct qa *q;
	qa_done_fn *done;
	void *arg;
	int64_t id;	     /* mark: the message */
	int64_t *ids;	     /* mark sent: the messages, in the call's order */
	size_t n;	     /* idem */
	queue_each_fn *each; /* expire */
	size_t route;	     /* route lease */
};

static struct qa_op *
qa_op_new(struct qa *q, qa_done_fn *done, void *arg)
{
	struct qa_op *op = xcalloc(1, sizeof(*op));

	op->q = q;
	op->done = done;
	op->arg = arg;
	q->pending++;
	return op;
}

/* The operation answered (after its callback ran): frees it, and tells
 * the owner when nothing is pending any more. */
static void
qa_op_end(struct qa_op *op)
{
	struct qa *q = op->q;

	free(op->ids);
	free(op);
	if (--q->pending == 0 && q->idle_fn != NULL)
		q->idle_fn(q->idle_arg);
}

/* pgq_*() could not queue the statement: answered at once with err. */
static void
qa_op_failed(struct qa_op *op, const char *err)
{
	qa_answer_error(op->done, op->arg, err, op->id);
	qa_op_end(op);
}

/* msg_now_ms() time of a pg_clock_ms() deadline. */
static int64_t
qa_wall(int64_t pg_deadline)
{
	return msg_now_ms() + (pg_deadline - pg_clock_ms());
}

static void
qa_pg_on_claim(void *arg, const struct pgq_answer *pa)
{
	struct qa_op *op = arg;
	struct qa_answer a = {.error = pa->error,
	    .n = pa->n,
	    .msgs = pa->msgs,
	    .deadline = pa->error == NULL ? qa_wall(pa->deadline) : 0};
	size_t i;

	if (op->done != NULL)
		op->done(op->arg, &a);
	else
		for (i = 0; i < a.n; i++)
			out_msg_free(a.msgs[i]);
	qa_op_end(op);
}

static void
qa_pg_claim(struct qa *q, const struct queue_claim_req *req, qa_done_fn *done,
    void *arg)
{
	struct qa_op *op = qa_op_new(q, done, arg);
	char err[256];

	if (pgq_claim(q->pgq,
		&(struct pgq_claim_req){.ch = req->ch,
		    .sender = req->sender,
		    .lease_ms = req->lease_ms,
		    .max = req->max},
		qa_pg_on_claim, op, err, sizeof(err)) == -1)
		qa_op_failed(op, err);
}

/* Passes the answer's error and n on (opt-out checks, marks, email). */
static void
qa_pg_on_plain(void *arg, const struct pgq_answer *pa)
{
	struct qa_op *op = arg;
	struct qa_answer a = {.error = pa->error,
	    .n = pa->n,
	    .id = op->id,
	    .sup = pa->sup};

	if (op->done != NULL)
		op->done(op->arg, &a);
	qa_op_end(op);
}

static void
qa_pg_suppressed(struct qa *q, enum channel ch, const char *const *to, size_t n,
    qa_done_fn *done, void *arg)
{
	struct qa_op *op = qa_op_new(q, done, arg);
	char err[256];

	if (pgq_suppressed(q->pgq, ch, to, n, qa_pg_on_plain, op, err,
		sizeof(err)) == -1)
		qa_op_failed(op, err);
}

static int
qa_id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Recorded ids -> ok[] in the call's order; the rest were dropped. */
static void
qa_pg_on_sent(void *arg, const struct pgq_answer *pa)
{
	struct qa_op *op = arg;
	bool *ok = xcalloc(op->n > 0 ? op->n : 1, sizeof(*ok));
	const char **why = xcalloc(op->n > 0 ? op->n : 1, sizeof(*why));
	int64_t *got = NULL;
	struct qa_answer a = {.error = pa->error, .ok = ok, .why = why};
	size_t i;

	if (pa->error == NULL && pa->n > 0) {
		got = xreallocarray(NULL, pa->n, sizeof(*got));
		memcpy(got, pa->ids, pa->n * sizeof(*got));
		qsort(got, pa->n, sizeof(*got), qa_id_cmp);
		for (i = 0; i < op->n; i++)
			ok[i] = bsearch(&op->ids[i], got, pa->n, sizeof(*got),
				    qa_id_cmp) != NULL;
		a.n = pa->n;
	}
	if (op->done != NULL)
		op->done(op->arg, &a);
	free(got);
	free(why);
	free(ok);
	qa_op_end(op);
}

static void
qa_pg_mark_sent(struct qa *q, const struct queue_sent *v, size_t n,
    qa_done_fn *done, void *arg)
{
	struct qa_op *op = qa_op_new(q, done, arg);
	struct pgq_sent *w = xcalloc(n > 0 ? n : 1, sizeof(*w));
	char err[256];
	size_t i;

	op->ids = xcalloc(n > 0 ? n : 1, sizeof(*op->ids));
	op->n = n;
	for (i = 0; i < n; i++) {
		op->ids[i] = v[i].id;
		w[i] = (struct pgq_sent){.id = v[i].id,
		    .provider = v[i].provider,
		    .provider_id = v[i].provider_id,
		    .code = v[i].code,
		    .text = v[i].text};
	}
	if (pgq_mark_sent(q->pgq, w, n, qa_pg_on_sent, op, err, sizeof(err)) ==
	    -1)
		qa_op_failed(op, err);
	free(w);
}

static void
qa_pg_mark(struct qa *q, const struct qa_result *r, qa_done_fn *done, void *arg)
{
	struct qa_op *op = qa_op_new(q, done, arg);
	int64_t delay = r->next_attempt_at - r->now;
	char err[256];

	op->id = r->id;
	if (delay < 0)
		delay = 0;
	if (delay > UINT32_MAX)
		delay = UINT32_MAX;
	if (pgq_mark(q->pgq,
		&(struct pgq_result){.id = r->id,
		    .to = r->to,
		    .release = r->release,
		    .retry_in_ms = (unsigned)delay,
		    .code = r->code,
		    .text = r->text},
		qa_pg_on_plain, op, err, sizeof(err)) == -1)
		qa_op_failed(op, err);
}

static void
qa_pg_on_expired(void *arg, const struct pgq_answer *pa)
{
	struct qa_op *op = arg;
	struct qa_answer a = {.error = pa->error, .n = pa->n};
	size_t i;

	for (i = 0; op->each != NULL && pa->error == NULL && i < pa->n; i++)
		op->each(op->arg, pa->moved[i].id, pa->moved[i].ch,
		    pa->moved[i].sender);
	if (op->done != NULL)
		op->done(op->arg, &a);
	qa_op_end(op);
}

static void
qa_pg_on_due(void *arg, const struct pgq_answer *pa)
{
	struct qa_op *op = arg;
	struct qa_answer a = {.error = pa->error};

	/* At least 1: 0 says nothing is queued (a due time long past, as
	 * in tests, would come out near 0). */
	if (pa->error == NULL && pa->n == 1 &&
	    (a.due = msg_now_ms() + pa->due_in_ms) < 1)
		a.due = 1;
	if (op->done != NULL)
		op->done(op->arg, &a);
	qa_op_end(op);
}

/* A route's acquire answered: tell the owner when its hold changed. */
static void
qa_pg_on_route(void *arg, const struct pgq_answer *pa)
{
	struct qa_op *op = arg;
	struct qa *q = op->q;
	struct qa_route_state *r = &q->routes[op->route];
	int64_t epoch = 0;
	bool held;

	r->asking = false;
	held = !q->released && pgq_route_held(q->pgq, r->key, &epoch);
	(void)pa; /* an error leaves the route not held (pg_queue.c) */
	if (held != r->held || (held && epoch != r->epoch)) {
		r->held = held;
		if (held)
			r->epoch = epoch;
		if (q->route_changed != NULL)
			q->route_changed(q->route_arg, op->route, held, epoch);
	}
	qa_op_end(op);
}

/* Every second: take or renew each route's lease. */
static void
qa_pg_route_tick(evutil_socket_t fd, short what, void *arg)
{
	struct qa *q = arg;
	struct timeval tv = {QA_ROUTE_RENEW_MS / 1000,
	    (QA_ROUTE_RENEW_MS % 1000) * 1000};
	struct qa_op *op;
	char err[256];
	size_t i;

	(void)fd;
	(void)what;
	if (q->released)
		return;
	for (i = 0; i < q->nroutes; i++) {
		if (q->routes[i].asking)
			continue;
		op = qa_op_new(q, NULL, NULL);
		op->route = i;
		q->routes[i].asking = true;
		if (pgq_route_acquire(q->pgq, q->routes[i].key,
			(unsigned)q->nroutes, qa_pg_on_route, op, err,
			sizeof(err)) == -1) {
			q->routes[i].asking = false;
			qa_op_end(op);
		}
	}
	evtimer_add(q->route_ev, &tv);
}

static void
qa_pg_routes_release(struct qa *q)
{
	struct qa_op *op;
	char err[256];
	size_t i;

	if (q->route_ev != NULL)
		evtimer_del(q->route_ev);
	for (i = 0; i < q->nroutes; i++) {
		if (!pgq_route_held(q->pgq, q->routes[i].key, NULL))
			continue;
		op = qa_op_new(q, NULL, NULL);
		if (pgq_route_release(q->pgq, q->routes[i].key, qa_pg_on_plain,
			op, err, sizeof(err)) == -1)
			qa_op_end(op);
	}
	/* Not live any more for the fair share: the others take the
	 * routes at their next acquire. */
	op = qa_op_new(q, NULL, NULL);
	if (pgq_leave(q->pgq, qa_pg_on_plain, op, err, sizeof(err)) == -1)
		qa_op_end(op);
}
#endif /* HAVE_LIBPQ */

/* ---- the interface ------------------------------------------------------ */

void
qa_routes_start(struct qa *q, const struct qa_route *routes, size_t n,
    qa_route_fn *changed, void *arg)
{
	size_t i;

	q->routes = xcalloc(n > 0 ? n : 1, sizeof(*q->routes));
	q->nroutes = n;
	q->route_changed = changed;
	q->route_arg = arg;
	for (i = 0; i < n; i++) {
		if (routes[i].ch == CHANNEL_EMAIL)
			strlcpy(q->routes[i].key, "email",
			    sizeof(q->routes[i].key));
		else
			snprintf(q->routes[i].key, sizeof(q->routes[i].key),
			    "sms:%s", routes[i].sender);
	}
#ifdef HAVE_LIBPQ
	if (q->pgq != NULL && q->base != NULL) {
		q->route_ev = evtimer_new(q->base, qa_pg_route_tick, q);
		if (q->route_ev == NULL)
			abort();
		qa_pg_route_tick(-1, 0, q);
	}
#endif
}

bool
qa_route_held(struct qa *q, size_t i, int64_t *epoch)
{
#ifdef HAVE_LIBPQ
	if (q->pgq != NULL)
		return i < q->nroutes && !q->released &&
		    pgq_route_held(q->pgq, q->routes[i].key, epoch);
#endif
	(void)i;
	if (epoch != NULL)
		*epoch = 0;
	return !q->released;
}

void
qa_routes_release(struct qa *q)
{
	if (q->released)
		return;
#ifdef HAVE_LIBPQ
	if (q->pgq != NULL)
		qa_pg_routes_release(q);
#endif
	q->released = true;
}

void
qa_claim(struct qa *q, const struct queue_claim_req *req, qa_done_fn *done,
    void *arg)
{
#ifdef HAVE_LIBPQ
	if (q->pgq != NULL) {
		qa_pg_claim(q, req, done, arg);
		return;
	}
#endif
	qa_sqlite_claim(q, req, done, arg);
}

void
qa_when_durable(struct qa *q, void (*cb)(void *, bool), void *arg)
{
	if (q->pgq != NULL)
		cb(arg, true);
	else
		store_on_commit(q->st, cb, arg);
}

void
qa_suppressed(struct qa *q, enum channel ch, const char *const *to, size_t n,
    qa_done_fn *done, void *arg)
{
	bool *sup;
	char err[256];

#ifdef HAVE_LIBPQ
	if (q->pgq != NULL) {
		qa_pg_suppressed(q, ch, to, n, done, arg);
		return;
	}
#endif
	sup = xcalloc(n > 0 ? n : 1, sizeof(*sup));
	if (queue_suppressed_batch(q->st, ch, to, n, sup, err, sizeof(err)) ==
	    -1)
		qa_answer_error(done, arg, err, 0);
	else if (done != NULL)
		done(arg, &(struct qa_answer){.n = n, .sup = sup});
	free(sup);
}

void
qa_mark_sent(struct qa *q, const struct queue_sent *v, size_t n, int64_t now,
    qa_done_fn *done, void *arg)
{
#ifdef HAVE_LIBPQ
	if (q->pgq != NULL) {
		(void)now; /* the database's clock */
		qa_pg_mark_sent(q, v, n, done, arg);
		return;
	}
#endif
	qa_sqlite_mark_sent(q, v, n, now, done, arg);
}

void
qa_mark(struct qa *q, const struct qa_result *r, qa_done_fn *done, void *arg)
{
#ifdef HAVE_LIBPQ
	if (q->pgq != NULL) {
		qa_pg_mark(q, r, done, arg);
		return;
	}
#endif
	qa_sqlite_mark(q, r, done, arg);
}

void
qa_expire(struct qa *q, int64_t now, queue_each_fn *each, qa_done_fn *done,
    void *arg)
{
	char err[256];
	ssize_t n;

#ifdef HAVE_LIBPQ
	struct qa_op *op;

	if (q->pgq != NULL) {
		op = qa_op_new(q, done, arg);
		op->each = each;
		if (pgq_expire(q->pgq, qa_pg_on_expired, op, err,
			sizeof(err)) == -1)
			qa_op_failed(op, err);
		return;
	}
#endif
	if ((n = queue_expire(q->st, now, each, arg, err, sizeof(err))) == -1)
		qa_answer_error(done, arg, err, 0);
	else if (done != NULL)
		done(arg, &(struct qa_answer){.n = (size_t)n});
}

void
qa_next_due(struct qa *q, qa_done_fn *done, void *arg)
{
	char err[256];
	int64_t due;

#ifdef HAVE_LIBPQ
	struct qa_op *op;

	if (q->pgq != NULL) {
		op = qa_op_new(q, done, arg);
		if (pgq_next_due(q->pgq, qa_pg_on_due, op, err, sizeof(err)) ==
		    -1)
			qa_op_failed(op, err);
		return;
	}
#endif
	if ((due = queue_next_due(q->st, err, sizeof(err))) == -1)
		qa_answer_error(done, arg, err, 0);
	else if (done != NULL)
		done(arg, &(struct qa_answer){.due = due});
}

void
qa_member_optout(struct qa *q, const struct qa_optout *o, qa_done_fn *done,
    void *arg)
{
	char err[256];

#ifdef HAVE_LIBPQ
	struct qa_op *op;

	if (q->pgq != NULL) {
		op = qa_op_new(q, done, arg);
		op->id = o->message_id;
		if (pgq_member_optout(q->pgq,
			&(struct pgq_optout){.ch = o->ch,
			    .address = o->address,
			    .source = o->source,
			    .message_id = o->message_id},
			qa_pg_on_plain, op, err, sizeof(err)) == -1)
			qa_op_failed(op, err);
		return;
	}
#endif
	if (store_member_optout(q->st, o->address,
		&(struct consent_change){.ch = o->ch,
		    .source = o->source,
		    .message_id = o->message_id,
		    .now = o->now},
		err, sizeof(err)) == -1)
		qa_answer_error(done, arg, err, o->message_id);
	else if (done != NULL)
		done(arg, &(struct qa_answer){.n = 1, .id = o->message_id});
}

void
qa_email_result(struct qa *q, const struct qa_email *e, qa_done_fn *done,
    void *arg)
{
#ifdef HAVE_LIBPQ
	struct qa_op *op;
	char err[256];

	if (q->pgq != NULL) {
		op = qa_op_new(q, done, arg);
		if (pgq_email_result(q->pgq,
			&(struct pgq_email){.address = e->address,
			    .accepted = e->accepted,
			    .limit = e->limit},
			qa_pg_on_plain, op, err, sizeof(err)) == -1)
			qa_op_failed(op, err);
		return;
	}
#endif
	qa_sqlite_email(q, e, done, arg);
}
