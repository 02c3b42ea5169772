/*
 * queue.h - the outbound message queue on the store (doc/queue.md).
 *
 * Contract:
 *  - queue_enqueue() succeeds once the row is in the open group
 *    transaction; callers reply 202 from a store_on_commit() callback,
 *    never before.
 *  - States follow doc/queue.md and message.h; only this module changes them,
 *    and only along these edges (anything else fails with -1 and
 *    "illegal transition FROM -> TO" in err):
 *      queued  -> sending (claim), failed, expired, cancelled, suppressed
 *      sending -> sent, queued (retry/release/recover), failed, expired,
 *                 cancelled, suppressed
 *      sent    -> delivered, undelivered, failed
 *  - Every transition appends a row to the message's history.
 *  - Times are milliseconds since the epoch, passed in by the caller, so
 *    tests control the clock.
 *  - Loop thread only. Errors: 0 / -1 with text in err.
 */
#ifndef OD_QUEUE_H
#define OD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "message.h"

struct store;

/* What a new outbound message needs. Strings are copied. */
struct queue_new {
	enum channel channel;
	const char *to;		     /* required */
	const char *from;	     /* NULL = sender's default */
	const char *sender;	     /* SMS sender name (required for SMS:
				      * the caller resolves the default);
				      * NULL for email */
	const char *subject;	     /* email */
	const char *body;	     /* required */
	const char *html;	     /* email, optional */
	const char *idempotency_key; /* NULL = none; unique when set */
	int priority;		     /* MSG_PRIO_* */
	int64_t member_id;	     /* 0 = none */
	int64_t alert_id;	     /* 0 = none */
	int64_t conversation_id;     /* 0 = none */
	int64_t staff_id;	     /* the staff member who wrote it; 0 */
	const char *encoding;	     /* SMS: "gsm7" or "ucs2"; NULL for email */
	int64_t segments;	     /* SMS parts; 0 = unknown */
	int64_t not_before;	     /* earliest send time; 0 = now */
	int64_t expires_at;	     /* 0 = never */
	/* A compliance reply (the STOP confirmation, a HELP answer): the
	 * send-time opt-out check lets it through. Nothing else. */
	bool optout_exempt;
};

/* The outcome fields of a transition. */
struct queue_result {
	int code;		 /* provider/SMTP code; 0 = none */
	const char *text;	 /* short reason; NULL = none */
	const char *provider;	 /* adapter name, for sent */
	const char *provider_id; /* provider message id, for sent */
	enum msg_status to;	 /* queue_mark(): the new status */
	int64_t next_attempt_at; /* queue_mark_retry(): due again at */
};

/* Where a message was stored: its row, and whether it was there before. */
struct queue_stored {
	int64_t id; /* the message */
	bool dup;   /* no row added: id is the earlier copy */
};

/*
 * Inserts a message as queued. With an idempotency key already used, no
 * row is added: out->id is the existing message and out->dup is set.
 * Returns 0 or -1 (err says why: "sender: required for SMS", a to/from
 * over 255 bytes or a sender over 63). Email is stored with a NULL sender.
 */
int queue_enqueue(struct store *st, const struct queue_new *m, int64_t now,
    struct queue_stored *out, char *err, size_t errlen);

/* What one queue_claim() asks for: a route, the clock, a lease, a count. */
struct queue_claim_req {
	enum channel ch;    /* the route's channel */
	const char *sender; /* the route's SMS sender name; email: NULL */
	int64_t now;
	unsigned lease_ms; /* the claimed messages' lease */
	size_t max;	   /* at most this many; out holds as many */
};

/*
 * Claims up to req->max due messages (queued, not_before/next attempt <=
 * req->now) of one route: channel req->ch and, for SMS, sender name
 * req->sender (email passes NULL; rows match with "sender IS ?"). Highest
 * priority first, then oldest. Sets them sending with a lease until now +
 * lease_ms. Stores new out_msg pointers in out[0..n) (the caller frees
 * each with out_msg_free()). Returns n >= 0, or -1. (Per-route claims let
 * each sender be paced alone: a slow sender never holds up a fast one.)
 */
ssize_t queue_claim(struct store *st, const struct queue_claim_req *req,
    struct out_msg **out, char *err, size_t errlen);

/* sending -> sent, with the provider and its message id. */
int queue_mark_sent(struct store *st, int64_t id, const struct queue_result *r,
    int64_t now, char *err, size_t errlen);
/* One message of queue_mark_sent_batch(). */
struct queue_sent {
	int64_t id;
	const char *provider;	 /* adapter name */
	const char *provider_id; /* provider message id */
	int code;		 /* for the history row; 0 = none */
	const char *text;	 /* idem; NULL = none */
	bool ok;		 /* out: recorded as sent */
};
/*
 * queue_mark_sent() for v[0..n-1] at 'now', a few statements per 64
 * messages instead of three per message: the rows, their history, and
 * the delivery reports kept for them (probed once per call). A message
 * not in 'sending' is left alone with ok = false (call queue_mark_sent()
 * for it to learn why). Returns how many were recorded, or -1 (the
 * group is rolled back, as for any failed operation).
 */
ssize_t queue_mark_sent_batch(struct store *st, struct queue_sent *v, size_t n,
    int64_t now, char *err, size_t errlen);
/*
 * sending -> queued for another attempt at r->next_attempt_at; the
 * attempt counts. r (required) describes the transient failure.
 */
int queue_mark_retry(struct store *st, int64_t id, const struct queue_result *r,
    int64_t now, char *err, size_t errlen);
/*
 * queued|sending -> r->to, one of failed, expired, cancelled, suppressed;
 * or sent -> delivered|undelivered|failed (status callbacks). r is
 * required; its code and text may be empty. Edges that belong to another
 * function (to queued, sending or sent) are refused with "queue_mark
 * cannot move message N from X to Y; use ...".
 */
int queue_mark(struct store *st, int64_t id, const struct queue_result *r,
    int64_t now, char *err, size_t errlen);
/* sending -> queued without counting an attempt (graceful shutdown). */
int queue_release(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen);

/*
 * Returns every message left in 'sending' by a previous process to queued
 * (this process holds the store lock, so their leases are void). Returns
 * the number recovered, or -1.
 */
ssize_t queue_recover(struct store *st, int64_t now, char *err, size_t errlen);
/* Returns sending messages whose lease ended before 'now' to queued. */
ssize_t queue_reclaim_expired_leases(struct store *st, int64_t now, char *err,
    size_t errlen);
/* Called for each message a set-wide transition moved. */
typedef void queue_each_fn(void *arg, int64_t id, enum channel ch,
    const char *sender);
/*
 * Marks queued messages whose expires_at <= now as expired; 'each' (may be
 * NULL) hears of every one, with its route. Returns n, or -1.
 */
ssize_t queue_expire(struct store *st, int64_t now, queue_each_fn *each,
    void *arg, char *err, size_t errlen);

/* Queued messages of alert 'alert_id' -> cancelled, at most 5,000 a
 * call: the count, or -1. Call again until it returns 0. */
ssize_t queue_cancel_alert(struct store *st, int64_t alert_id, int64_t now,
    char *err, size_t errlen);

/*
 * The next time (ms) a queued message becomes due, 0 if none is queued,
 * -1 on error (err set). Lets the dispatcher sleep until then.
 */
int64_t queue_next_due(struct store *st, char *err, size_t errlen);

/* Message counts by state, for /metrics: counts[ch][status]. */
int queue_count_by_status(struct store *st,
    int64_t counts[CHANNEL_COUNT][MSG_ST_COUNT], char *err, size_t errlen);

/* The current status of message id; -1 if absent (err empty) or error. */
int queue_status(struct store *st, int64_t id, char *err, size_t errlen);

/*
 * The message as a new JSON object for the API: id, channel, to, from,
 * subject, status, priority, attempts, provider, provider_message_id,
 * error {code, text}, timestamps (ISO 8601 UTC) and "history": [{status,
 * at, code, text}]. Bodies are included. NULL if absent (err empty) or on
 * error (err set).
 */
json_t *queue_message_json(struct store *st, int64_t id, char *err,
    size_t errlen);

/*
 * True if 'to' has opted out of 'ch' (checked at send time, doc/queue.md).
 * Returns 1 (opted out), 0 (not), -1 (error).
 */
int queue_is_suppressed(struct store *st, enum channel ch, const char *to,
    char *err, size_t errlen);
/*
 * queue_is_suppressed() for n recipients of one channel at once (one
 * query per 64): sup[i] is true when to[i] has opted out (email: or is
 * bouncing). 0 / -1.
 */
int queue_suppressed_batch(struct store *st, enum channel ch,
    const char *const *to, size_t n, bool *sup, char *err, size_t errlen);

/* How queue_status_update() dealt with a delivery report. */
enum queue_su_result {
	QUEUE_SU_APPLIED = 0, /* the message moved forward */
	QUEUE_SU_STALE,	      /* not forward (late or repeated): ignored */
	QUEUE_SU_EARLY,	      /* no such message yet: kept for a while */
};

/* Where and when a webhook's content arrived. */
struct queue_webhook {
	const char *sender;   /* the route's sender name (status reports:
			       * unused, may be NULL) */
	const char *provider; /* the adapter's name */
	int64_t now;
};

/*
 * Stores an inbound message received through wh->sender (adapter
 * wh->provider): direction in, status received, with history. If
 * (provider, m->provider_id) was stored before (a provider retrying its
 * webhook), no row is added: out->id is the earlier one and out->dup is
 * set. Returns 0 or -1.
 */
int queue_inbound_store(struct store *st, const struct queue_webhook *wh,
    const struct in_msg *m, struct queue_stored *out, char *err, size_t errlen);

/*
 * Applies a delivery report of wh->provider: finds the message by
 * u->msg_id when set, else by (provider, u->provider_id), and moves it
 * forward only (sending/sent -> delivered | undelivered | failed; sending
 * -> sent is left to the adapter's own answer; final states never
 * change). A report for an id no message carries yet (the callback
 * overtook the provider's own answer) is kept and applied by
 * queue_mark_sent() when that id is recorded; kept reports older than an
 * hour are dropped. wh->now is the clock. Returns a queue_su_result, or
 * -1. *id receives the message id when found (else 0).
 */
int queue_status_update(struct store *st, const struct queue_webhook *wh,
    const struct status_update *u, int64_t *id, char *err, size_t errlen);

/* A state change of a message that belongs to a conversation. */
struct queue_change {
	int64_t id;
	int64_t conversation;
	enum msg_status status; /* the new one (queued when enqueued) */
};
typedef void queue_observe_fn(void *arg, const struct queue_change *c);
/*
 * Calls fn (NULL: no more) on every state change of a message that
 * belongs to a conversation, from enqueue to delivery report, as each
 * history row is written: inside the operation's group, before it
 * commits (what fn writes commits or rolls back with the change). fn
 * must not call queue functions. One observer per store.
 */
void queue_observe(struct store *st, queue_observe_fn *fn, void *arg);

/*
 * Backoff before attempt number 'attempt' (1 = the first retry):
 * base_ms * 2^(attempt-1), capped at max_ms, with "equal jitter" (half
 * fixed, half uniform random from rnd in [0,1)); never less than
 * retry_after_ms when the provider asked for that. Pure.
 */
int64_t queue_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms,
    int64_t retry_after_ms, double rnd);

#endif
