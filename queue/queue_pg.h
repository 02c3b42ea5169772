/*
 * queue_pg.h - the queue operations of the daemon's hot path on either
 * backend, answered through callbacks (issue 13, doc/postgresql.md):
 * enqueue with its idempotency key, a message as JSON, a delivery
 * report, and a received text with its opt-out keywords.
 *
 * On SQLite each one is today's synchronous function (queue.h) with its
 * answer handed on; on PostgreSQL it is one statement sent in the group
 * transaction (or a read outside it), answered by the connection.
 *
 * Contract:
 *  - A durable operation (queue_enqueue_durable(),
 *    queue_status_update_durable(), queue_inbound_durable()) returns 0
 *    and later calls 'done' exactly once, from the loop, after the
 *    group that holds its write committed (d->ok) or failed (!d->ok:
 *    answer 503, the client retries; d->error may say why). It returns
 *    -1 with err when nothing was started (bad input, the store cannot
 *    take writes): then 'done' is never called.
 *  - Nothing an expected case does fails the group: an idempotency key
 *    used before, a provider's retry of an inbound webhook, a late or
 *    repeated delivery report all become "nothing written" answers.
 *  - A read (queue_message_json_async()) calls its callback exactly
 *    once: at once on SQLite (before the call returns), from the loop
 *    on PostgreSQL; -1 with err when it could not be sent (not called).
 *  - Loop thread only. Strings given are copied; what a callback gets is
 *    borrowed for the call.
 */
#ifndef OD_QUEUE_PG_H
#define OD_QUEUE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "queue.h"

struct store;

/* What a durable operation reports once its group is settled. */
struct queue_done {
	bool ok;	   /* committed */
	const char *error; /* !ok: why, when known; else NULL */
	int64_t id;	   /* the message (0: a report for no message) */
	bool dup;	   /* nothing added: id is the earlier copy */
	int status;	   /* enqueue of a dup: the message's msg_status,
			    * -1 unknown */
	int su;		   /* status update: a queue_su_result */
	/* inbound on PostgreSQL: what routing did */
	int64_t member;	  /* the sender's member; 0 = not routed */
	bool changed;	  /* the opt-out state changed */
	int64_t reply_id; /* the reply queued; 0 = none */
	/* QUEUE_IN_YES, _KEYWORD, _TEXT: "optin", "join", "pending",
	 * "already", "confirm", "answer", "reask" (a bad answer, asked
	 * again), "dropped" (a second bad one), "conversation" or "none";
	 * NULL otherwise */
	const char *routed;
	const char *list;     /* the list joined or confirmed; NULL none */
	int64_t conversation; /* the text joined it; 0 none */
};
typedef void queue_done_fn(void *arg, const struct queue_done *d);

/*
 * queue_enqueue() made durable: d->id is the new message, or with an
 * idempotency key used before, the first message (d->dup, d->status).
 * PostgreSQL: INSERT ... ON CONFLICT (idempotency_key) DO NOTHING
 * RETURNING id with its history row in the same statement; a
 * duplicate's id is read once the group committed (the other node's
 * insert had committed before ours could decide: ON CONFLICT waits).
 */
int queue_enqueue_durable(struct store *st, const struct queue_new *m,
    int64_t now, queue_done_fn *done, void *arg, char *err, size_t errlen);

/*
 * queue_status_update() made durable: d->su and d->id as it answers.
 * PostgreSQL: one statement finds the message (by our id or the
 * provider's), moves it forward only, or keeps the report in
 * status_early under the keys queue_webhooks.c uses ("#<id>" for a
 * message not sent yet, else the provider's id), for queue_mark_sent()
 * or the PostgreSQL dispatcher to apply at 'sent'.
 */
int queue_status_update_durable(struct store *st,
    const struct queue_webhook *wh, const struct status_update *u,
    queue_done_fn *done, void *arg, char *err, size_t errlen);

/* What a received text asks for (daemon/inbound.c classifies it). */
enum queue_in_action {
	QUEUE_IN_NONE = 0, /* stored only (routing not done here) */
	QUEUE_IN_OPTOUT,   /* sms opt-out; reply only when it changed */
	QUEUE_IN_OPTIN,	   /* opt-in; reply always */
	QUEUE_IN_YES,	   /* opt-in only if opted out; reply if so */
	QUEUE_IN_HELP,	   /* reply only */
	QUEUE_IN_KEYWORD,  /* a list keyword: join (see below) */
	QUEUE_IN_TEXT,	   /* a conversation message */
};

/*
 * One reply a routed text may get (QUEUE_IN_YES, _KEYWORD), chosen by
 * the store from what it finds: kind "start" (YES lifted an opt-out),
 * "already" (a keyword of a list the member is active on), "confirm"
 * (double opt-in: reply YES), "welcome" (of list 'list').
 */
struct queue_in_reply {
	const char *kind;
	const char *list; /* "welcome": the list's name; else NULL */
	const char *body;
	const char *encoding; /* NULL: not known */
	int segments;	      /* 0: not known */
};

/*
 * What a routed text's statement is prepared with (PostgreSQL): the
 * member's pending follow-up question, and the list the text may join,
 * read by one statement outside the group just before (see
 * queue_in_route.prepare). Strings are borrowed for the call.
 */
struct queue_in_prompt {
	const char *body; /* the text */
	int64_t now;	  /* its time */
	/* the pending question: list_id 0 = none */
	int64_t list_id;
	const char *list;      /* its list's name; NULL: the list is gone */
	const char *questions; /* that list's questions as stored (JSON) */
	unsigned index;	       /* the question, into them */
	unsigned attempts;     /* bad answers so far */
	int64_t asked_at;
	/* the list a keyword names, or the pending one a YES confirms */
	const char *join;	    /* its name; NULL none */
	const char *join_questions; /* its questions (JSON) */
};
typedef void queue_in_prepare_fn(void *arg, const struct queue_in_prompt *pr);

/*
 * The answer to the pending question, as prepare decided it: the
 * statement acts on it only while the question is still the one read
 * (list_id, index, attempts, asked_at).
 */
struct queue_in_answer {
	int64_t list_id; /* 0: no pending question */
	unsigned index;
	unsigned attempts;
	int64_t asked_at;
	bool clear;	   /* stale, or its list gone: cleared, the text is
			    * a conversation message */
	const char *field; /* first_name, last_name, zip or email */
	const char *value; /* the answer parsed for it; NULL: a bad one */
	const char *good;  /* after a good answer: "next" or "clear" */
	const char *bad;   /* after a bad one: "reask", "next" or "clear" */
};

/* The routing of one received text, done in its insert's statement. */
struct queue_in_route {
	enum queue_in_action action;
	const char *phone; /* the member's E.164 number; NULL = no member */
	/* The reply (channel SMS, to = phone, member set by the store);
	 * NULL = none. Sent only when the action calls for one. */
	const struct queue_new *reply;
	/*
	 * QUEUE_IN_YES, _KEYWORD and _TEXT (with phone): YES lifts an
	 * opt-out, else confirms the member's latest pending subscription;
	 * a keyword subscribes to list 'list' (the lists row of that name:
	 * pending on a double opt-in list, else active; "already" when
	 * active); what neither handles joins the member's conversation
	 * (attributed within window_ms, as store_inbound_link()). The
	 * reply is one of replies[], sent from reply_from.
	 */
	const char *list;
	const char *keyword; /* the consent event's detail */
	const struct queue_in_reply *replies;
	size_t nreplies;
	const char *reply_from;
	int64_t window_ms;
	/*
	 * Follow-up questions: when set, the member's pending question and
	 * the list the text may join are read first, and prepare(arg) is
	 * called with them before the statement is sent; it may add the
	 * reply candidates "first" (the first question of the list joined
	 * or confirmed: list = its name), "next" and "reask" (after an
	 * answer), and fill 'answer'. A good answer is no conversation
	 * message; a bad one is asked again once, then dropped.
	 */
	queue_in_prepare_fn *prepare;
	void *prepare_arg;
	struct queue_in_answer answer;
};

/*
 * PostgreSQL only: queue_inbound_store() and the opt-out keywords in
 * one statement of the group, done only when the text is new (a
 * provider's retry stores and changes nothing: d->dup): the member
 * ensured by phone and linked, sms_optout written or removed with its
 * consent_events row (only on a change), the reply queued with its
 * history row. YES, list keywords and conversation messages
 * (QUEUE_IN_YES, _KEYWORD, _TEXT) are one statement too, after one that
 * locks the member's row (so that nodes routing texts of one member
 * take turns and each sees what the other committed): the
 * subscription and its consent event, the conversation made or bumped
 * with the text in it, the reply. SQLite keeps queue_inbound_store()
 * and inbound_route().
 */
int queue_inbound_durable(struct store *st, const struct queue_webhook *wh,
    const struct in_msg *m, const struct queue_in_route *r, queue_done_fn *done,
    void *arg, char *err, size_t errlen);

/*
 * The message as queue_message_json() builds it; fn gets the object
 * (a new reference, or NULL when there is no such message) or, with o
 * NULL, the error text.
 */
typedef void queue_json_fn(void *arg, json_t *o, const char *error);
int queue_message_json_async(struct store *st, int64_t id, queue_json_fn *fn,
    void *arg, char *err, size_t errlen);

#endif
