/*
 * queue_async.h - the dispatcher's queue operations on either store
 * (SQLite or PostgreSQL, issue 13): claim, the send-time opt-out check,
 * results (sent in batches; retry, release, failed, expired, suppressed),
 * the expiry sweep, the next due time, the email bounce count, and the
 * sender routes' leases. One interface, so daemon/dispatch.c never sees
 * which store it runs on; the design is the comment at the top of
 * queue_async.c.
 *
 * Contract:
 *  - Loop thread only. Every operation answers exactly once, to its
 *    'done' (may be NULL), with a struct qa_answer borrowed for the
 *    callback. The answer may come BEFORE the call returns (SQLite always
 *    answers at once; PostgreSQL when the statement cannot be queued) or
 *    later, from the loop (PostgreSQL): callers must work either way.
 *  - qa_claim()'s messages are claimed, not yet durable on SQLite (they
 *    are in the open group): hand them out only from qa_when_durable()'s
 *    callback (SQLite: the group's commit; PostgreSQL: at once, the
 *    claim's statement committed before it answered), and only before
 *    the answer's deadline.
 *  - A result for a message this node no longer holds (PostgreSQL: its
 *    lease ended and another node may own it) is dropped, not an error:
 *    qa_mark() answers n = 0, qa_mark_sent() ok[i] = false with why[i] =
 *    NULL.
 *  - Routes: a route may be claimed only while qa_route_held() says so
 *    (SQLite: always, epoch 0). A new epoch means another node held the
 *    route meanwhile: start its pace afresh (an empty token bucket).
 *  - qa_free() before store_close(); operations still pending then never
 *    answer (wait for qa_busy() to turn false at shutdown).
 */
#ifndef OD_QUEUE_ASYNC_H
#define OD_QUEUE_ASYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "queue.h"

struct event_base;
struct qa;
struct store;

/* The answer to one operation; borrowed for the callback only. */
struct qa_answer {
	const char *error; /* NULL on success; else one line */
	/* Messages claimed / recorded / moved; qa_mark(): 1 recorded, 0
	 * dropped; qa_email_result(): 1 when the address is bouncing. */
	size_t n;
	int64_t id; /* qa_mark(): the message */
	/* qa_claim(): n messages, highest priority first; the callback owns
	 * each one (out_msg_free()), not the array. */
	struct out_msg **msgs;
	/* qa_claim(): hand nothing out at or after this msg_now_ms(); 0 =
	 * no deadline (SQLite: the store's lock is the lease). */
	int64_t deadline;
	/* qa_mark_sent(): per message of the call, recorded or not; when not,
	 * why[i] is the error, or NULL when dropped (not this node's). */
	const bool *ok;
	const char *const *why;
	const bool *sup; /* qa_suppressed(): one per recipient */
	int64_t due;	 /* qa_next_due(): msg_now_ms() time; 0 = none */
};

typedef void qa_done_fn(void *arg, const struct qa_answer *a);
/* A route's lease changed hands: held now or not, with its epoch. */
typedef void qa_route_fn(void *arg, size_t route, bool held, int64_t epoch);

/*
 * The operations on st (either backend) driven by base. Never NULL.
 */
struct qa *qa_new(struct store *st, struct event_base *base);
void qa_free(struct qa *q);
/* True while an operation has not answered yet (never on SQLite). */
bool qa_busy(const struct qa *q);
/* Calls fn(arg) from the loop each time the last pending operation
 * answered (qa_busy() turned false); NULL = none. */
void qa_on_idle(struct qa *q, void (*fn)(void *), void *arg);

/* The routes this node sends through (one per sender, one for email). */
struct qa_route {
	enum channel ch;
	const char *sender; /* SMS: the sender's name; email: NULL */
};
/*
 * Starts holding routes[0..n) (copied): on PostgreSQL, takes and renews
 * each route's lease about every second (its fair share of them), and
 * calls changed (may be NULL) when one is taken, lost or changes epoch.
 * On SQLite every route is held at once, epoch 0, and changed is not
 * called.
 */
void qa_routes_start(struct qa *q, const struct qa_route *routes, size_t n,
    qa_route_fn *changed, void *arg);
/* True while route i (qa_routes_start()'s index) may be handed out. */
bool qa_route_held(struct qa *q, size_t i, int64_t *epoch);
/* Gives every route up (graceful shutdown): no more renewals. */
void qa_routes_release(struct qa *q);

/*
 * Claims up to req->max due messages of one route (queue.h's request;
 * req->now is the SQLite clock, PostgreSQL uses the database's).
 */
void qa_claim(struct qa *q, const struct queue_claim_req *req, qa_done_fn *done,
    void *arg);
/*
 * Calls cb(arg, ok) once what was claimed so far is durable: SQLite, on
 * the open group's commit (store_on_commit()); PostgreSQL, at once with
 * ok = true.
 */
void qa_when_durable(struct qa *q, void (*cb)(void *, bool), void *arg);
/* The send-time opt-out check of n recipients of one channel: sup[i]. */
void qa_suppressed(struct qa *q, enum channel ch, const char *const *to,
    size_t n, qa_done_fn *done, void *arg);
/*
 * sending -> sent for v[0..n) (v[i].ok is not used): ok[i] per message.
 * v may be freed once this returns.
 */
void qa_mark_sent(struct qa *q, const struct queue_sent *v, size_t n,
    int64_t now, qa_done_fn *done, void *arg);

/* The outcome of one send that was not accepted. */
struct qa_result {
	int64_t id;
	/* MSG_ST_QUEUED: retry at next_attempt_at (an attempt) or, with
	 * release, give it back (none); else failed, expired, suppressed. */
	enum msg_status to;
	bool release;
	int64_t next_attempt_at; /* retry: due again then (msg_now_ms()) */
	int code;		 /* 0 = none */
	const char *text;	 /* NULL = none */
	int64_t now;
};
void qa_mark(struct qa *q, const struct qa_result *r, qa_done_fn *done,
    void *arg);

/*
 * Due queued messages past their expiry -> expired; each(arg, ...) hears
 * of every one with its route, then done answers with n.
 */
void qa_expire(struct qa *q, int64_t now, queue_each_fn *each, qa_done_fn *done,
    void *arg);
/* When the next queued message becomes due (answer's due; 0 = none). */
void qa_next_due(struct qa *q, qa_done_fn *done, void *arg);

/* An email send's outcome for its address's bounce count. */
struct qa_email {
	const char *address;
	bool accepted;	/* true: reset; false: a 5xx refusal, counted */
	unsigned limit; /* refusals that mark it bouncing; 0 = never */
	int64_t now;
};
/* store_email_success()/store_email_failure() on either store; the
 * answer's n = 1 when a refusal left the address bouncing. */
void qa_email_result(struct qa *q, const struct qa_email *e, qa_done_fn *done,
    void *arg);

/* A carrier opt-out: the recipient of message_id refused at the carrier. */
struct qa_optout {
	enum channel ch;
	const char *address;
	const char *source; /* CONSENT_PROVIDER */
	int64_t message_id;
	int64_t now;
};
/* store_member_optout() on either store; n = 1 when the opt-out is new
 * (PostgreSQL; SQLite answers 1 whenever it succeeded). */
void qa_member_optout(struct qa *q, const struct qa_optout *o, qa_done_fn *done,
    void *arg);

#endif
