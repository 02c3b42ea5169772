/*
 * pg_queue.h - the outbound queue shared by several nodes on one
 * PostgreSQL database (issue 13, doc/postgresql.md): node identity and
 * heartbeat, claims with FOR UPDATE SKIP LOCKED and leases, results that
 * only the claim's owner may record, recovery of expired leases by any
 * node, one lease per sender route, and the send-time opt-out check. The
 * design is the comment at the top of pg_queue.c. The dispatcher uses it
 * through queue/queue_async.h, on the node's queue connection
 * (store_pg_queue()). Built only with libpq (HAVE_LIBPQ).
 *
 * Contract:
 *  - Loop thread only, asynchronous: every operation queues its statement
 *    on the node's struct pg (queue/pg.h) and returns 0 at once (or -1
 *    with err when it cannot be queued); its 'done' runs exactly once,
 *    later, from the loop, with a struct pgq_answer. Nothing blocks.
 *  - Each operation is ONE statement (its history rows are written by
 *    the same statement), so it commits or fails as a whole, and its
 *    answer comes after the commit (synchronous_commit on): claimed
 *    messages may be handed to an adapter from the callback.
 *  - Times of leases and history rows are the database clock's
 *    milliseconds (clock_timestamp()), so nodes' clocks need not agree.
 *    Deadlines given back to the caller are pg_clock_ms() (monotonic,
 *    this process), computed from before the statement was sent, so they
 *    end before the database's lease does.
 *  - pgq_start() must have answered (node id known) before any other
 *    operation; they fail with "node not started" otherwise.
 *  - A result (pgq_mark_sent(), pgq_mark()) is recorded only for a message
 *    still 'sending' under this node's lease; otherwise it is dropped and
 *    the answer says so (n = 0 / the id missing from ids), not an error.
 *  - pgq_free() detaches the operations still pending: their 'done' is
 *    never called (what they own is freed when the connection answers).
 *    The struct pg outlives the pg_queue; free the pg_queue first.
 */
#ifndef OD_PG_QUEUE_H
#define OD_PG_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"

struct pg;
struct pg_queue;

struct pgq_config {
	struct pg *pg;		  /* the node's connection (not owned) */
	const char *node;	  /* this node's name, one live process each */
	unsigned route_lease_ms;  /* a route lease's length; 0 = 5000 */
	unsigned node_timeout_ms; /* live = a heartbeat this recent; 0 =
				     15000 */
	unsigned sweep_max;	  /* messages per pgq_sweep(); 0 = 5000 */
};

/* The answer to one operation; borrowed for the callback only. */
struct pgq_answer {
	const char *error; /* NULL on success; else one line */
	bool maybe_ran;	   /* the connection was lost after sending */
	size_t n;	   /* messages claimed / moved / recorded, recipients
			      checked, or 1 when a route lease is held */
	/* pgq_claim(): n messages, highest priority first, then oldest; the
	 * callback owns each one (out_msg_free()), not the array. */
	struct out_msg **msgs;
	/* pgq_mark_sent(), pgq_sweep(), pgq_start(): the n ids moved. */
	const int64_t *ids;
	const bool *sup;  /* pgq_suppressed(): one per recipient */
	int64_t node_id;  /* pgq_start(): this node's id */
	int64_t epoch;	  /* pgq_route_acquire(): the lease's epoch, held */
	int64_t deadline; /* pgq_claim(), pgq_route_acquire(): hand out
			     nothing at or after this pg_clock_ms() */
	/* pgq_expire(): the n messages moved, with their routes. */
	const struct pgq_moved *moved;
	/* pgq_next_due(): n = 1 when a message is queued; its due time
	 * minus the database's now (<= 0: due already). */
	int64_t due_in_ms;
	/* pgq_relock(): n = 1 when this session holds the node's lock;
	 * else the backend holding it (0 = none seen) */
	int holder;
};

/* One message a set-wide operation moved (pgq_expire()); borrowed. */
struct pgq_moved {
	int64_t id;
	enum channel ch;
	const char *sender; /* SMS: its sender; email: NULL */
};

typedef void pgq_done_fn(void *arg, const struct pgq_answer *a);

/* NULL with err when the config is unusable (no pg, no node name). */
struct pg_queue *pgq_new(const struct pgq_config *cfg, char *err,
    size_t errlen);
void pgq_free(struct pg_queue *q);
/* This node's id once pgq_start() answered; else 0. */
int64_t pgq_node_id(const struct pg_queue *q);

/*
 * Registers the node (the nodes row of its name, created or reused, its
 * started_at and heartbeat_at set) and takes a session advisory lock on
 * its id, refusing with "node NAME is already running" when another live
 * session holds it; then returns this node's previous life's 'sending'
 * messages to 'queued' ("recovered after restart"). The answer has
 * node_id, and ids/n of the recovered messages.
 */
int pgq_start(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen);
/*
 * Takes the node's advisory lock again on this connection's session,
 * after a reconnection lost the session that pgq_start() locked it on:
 * answer n = 1 when held, else n = 0 and 'holder', the backend that holds
 * it (the old session the server has not noticed dead yet, or another
 * process started under this node's name meanwhile). Nothing else
 * changes: claims in flight stay this node's.
 */
int pgq_relock(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen);
/* heartbeat_at = now (answer n = 1); call about every second. After
 * pgq_leave() it keeps heartbeat_at at 0 instead (answer n = 0). */
int pgq_heartbeat(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen);
/*
 * The node is stopping (a graceful shutdown, its route leases released):
 * heartbeat_at = 0, so the other nodes' fair share stops counting it at
 * once and they take the released routes at their next acquire, not
 * node_timeout_ms later. Claims and results go on working. Answer n = 1.
 */
int pgq_leave(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen);

/* What one pgq_claim() asks for: a route, a lease, a count. */
struct pgq_claim_req {
	enum channel ch;    /* the route's channel */
	const char *sender; /* SMS: the sender name; email: NULL */
	unsigned lease_ms;  /* the claimed messages' lease */
	size_t max;	    /* at most this many (1 .. 10000) */
};
/*
 * Claims up to req->max due queued messages of one route, skipping rows
 * other nodes are claiming (SKIP LOCKED): sets them 'sending' with
 * lease_owner = this node and lease_until = now + lease_ms, and writes a
 * 'sending' history row each. The caller claims only routes whose lease
 * it holds (pgq_route_held()) and hands a message to its adapter only
 * before the answer's deadline minus its adapter's timeout.
 */
int pgq_claim(struct pg_queue *q, const struct pgq_claim_req *req,
    pgq_done_fn *done, void *arg, char *err, size_t errlen);

/* One accepted send for pgq_mark_sent(). */
struct pgq_sent {
	int64_t id;
	const char *provider;	 /* adapter name */
	const char *provider_id; /* provider message id */
	int code;		 /* for the history row; 0 = none */
	const char *text;	 /* idem; NULL = none */
};
/*
 * sending -> sent for v[0..n) (n <= 10000) in one statement with their
 * history rows, each only while this node still holds its lease, and the
 * delivery reports kept for them in status_early applied; then, once that
 * committed, a second statement applies the reports kept while the first
 * ran (it could not see them). The answer (after both) has the ids
 * recorded.
 */
int pgq_mark_sent(struct pg_queue *q, const struct pgq_sent *v, size_t n,
    pgq_done_fn *done, void *arg, char *err, size_t errlen);

/* The outcome of one send that was not accepted. */
struct pgq_result {
	int64_t id;
	/* MSG_ST_QUEUED: retry (an attempt) or release (not one); or a final
	 * state: failed (an attempt), expired, cancelled, suppressed. */
	enum msg_status to;
	bool release;	      /* to queued: give it back, no attempt */
	unsigned retry_in_ms; /* to queued: due again now + this */
	int code;	      /* 0 = none */
	const char *text;     /* NULL = none */
};
/* Records r for a message this node still holds (answer n = 1), or
 * drops it (n = 0). */
int pgq_mark(struct pg_queue *q, const struct pgq_result *r, pgq_done_fn *done,
    void *arg, char *err, size_t errlen);

/*
 * Any node: 'sending' messages whose lease ended (database clock) ->
 * 'queued' ("lease expired"), at most sweep_max, skipping rows another
 * node has locked. Call every second or so; ids/n are the ones moved.
 */
int pgq_sweep(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen);

/*
 * Any node: due 'queued' messages whose expires_at passed (database
 * clock) -> 'expired' ("expired before it was sent"), at most sweep_max a
 * call, skipping rows another node is claiming; the answer's moved/n name
 * them and their routes. Call every second or so.
 */
int pgq_expire(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen);
/*
 * When the next queued message (any route, any node's) becomes due: the
 * answer's n = 1 and due_in_ms, or n = 0 when nothing is queued.
 */
int pgq_next_due(struct pg_queue *q, pgq_done_fn *done, void *arg, char *err,
    size_t errlen);

/* An email send's outcome for the address's bounce count. */
struct pgq_email {
	const char *address;
	bool accepted;	/* true: reset the count; false: a 5xx refusal */
	unsigned limit; /* refusals that mark it bouncing; 0 = never */
};
/*
 * store_email_success() / store_email_failure() on PostgreSQL: an
 * accepted send resets the member's email_failures (unless bouncing); a
 * refusal counts one and marks the member bouncing at the limit. The
 * answer's n = 1 when the address is bouncing after a refusal.
 */
int pgq_email_result(struct pg_queue *q, const struct pgq_email *e,
    pgq_done_fn *done, void *arg, char *err, size_t errlen);

/* A provider's refusal because the recipient opted out at the carrier. */
struct pgq_optout {
	enum channel ch;
	const char *address; /* the number, or the email address */
	const char *source;  /* consent_events.source: "provider" */
	int64_t message_id;  /* the refused message; 0 = none */
};
/*
 * store_member_optout() on PostgreSQL, one statement: the member of
 * o->address (created when none has it), its opt-out of o->ch, and a
 * consent event naming the message, unless it had opted out already
 * (kept as it is). Answer n = 1 when the opt-out is new.
 */
int pgq_member_optout(struct pg_queue *q, const struct pgq_optout *o,
    pgq_done_fn *done, void *arg, char *err, size_t errlen);

/*
 * The send-time opt-out check, one statement for n recipients of one
 * channel, reading committed state: sup[i] is true when to[i] opted out
 * of ch (email: or is bouncing). n <= 10000.
 */
int pgq_suppressed(struct pg_queue *q, enum channel ch, const char *const *to,
    size_t n, pgq_done_fn *done, void *arg, char *err, size_t errlen);

/*
 * Takes or renews the lease on 'route' ("sms:NAME", "email"; at most 63
 * bytes) for route_lease_ms. Taken when free, released or expired (epoch
 * + 1) and this node holds fewer than its fair share (nroutes / live
 * nodes, rounded up); renewed (same epoch) when this node holds it and
 * the route is within its share. The answer: n = 1 and epoch, deadline
 * when held; n = 0 when not (then this node no longer hands the route
 * out, and gives up a lease it held beyond its share).
 */
int pgq_route_acquire(struct pg_queue *q, const char *route, unsigned nroutes,
    pgq_done_fn *done, void *arg, char *err, size_t errlen);
/* Gives the lease up (it stops counting as held at once). */
int pgq_route_release(struct pg_queue *q, const char *route, pgq_done_fn *done,
    void *arg, char *err, size_t errlen);
/*
 * True while this node may hand out messages of 'route': its last
 * acquire or renewal answered held and its deadline (a fifth of the
 * lease before the database's expiry) is not reached. *epoch (may be
 * NULL) receives the lease's epoch: a new epoch means a fresh start (an
 * empty token bucket).
 */
bool pgq_route_held(struct pg_queue *q, const char *route, int64_t *epoch);

#endif
