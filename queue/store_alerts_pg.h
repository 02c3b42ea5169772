/*
 * store_alerts_pg.h - action alerts on the PostgreSQL store (issue 13,
 * doc/postgresql.md): what the alerts API (daemon/alerts_pg.c) reads and
 * writes, and the fan-out of an alert into its messages, which every
 * node runs and exactly one node at a time does for a given alert.
 * SQLite keeps store_alerts.h; nothing here is called on it.
 *
 * Contract:
 *  - Loop thread only. Every operation answers through its callback,
 *    exactly once, from the loop (never before the call returned); a call
 *    that returns -1 (err set) started nothing and never calls back.
 *  - Reads (sap_lists(), sap_audience(), sap_get(), sap_list(),
 *    sap_load()) go outside the group on the store's connection and see
 *    committed data.
 *  - Writes (sap_create(), sap_draft(), sap_action()) are statements in the
 * node's group transaction, written never to fail in an expected way (a key
 *    seen before, a status changed meanwhile); their callback runs once
 *    the group committed (ok) or failed (!ok).
 *  - The fan-out runs on its own connection (sap_fan_open(): a third
 *    connection per node). sap_fan_tick() is three autocommit
 *    statements: scheduled alerts whose time came start sending, sending
 *    alerts fanned out whose messages all finished are done, and the
 *    alerts sending are read. sap_batch() is one transaction:
 *    the alert's row locked FOR UPDATE SKIP LOCKED (an alert another node
 *    is fanning out is skipped, d->rc 0), the next members after its
 *    cursor read and handed to the visitor, which adds their messages
 *    (sap_batch_add()), then one statement writes the messages and the
 *    new cursor, guarded by the cursor read, and COMMIT. Messages and
 *    cursor commit together or not at all, whatever happens to the node
 *    or the connection: no member gets two messages from the fan-out and
 *    none is skipped.
 *  - JSON results are new references for the callback to keep or drop.
 */
#ifndef OD_STORE_ALERTS_PG_H
#define OD_STORE_ALERTS_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store_alerts.h"

struct event_base;
struct queue_new;
struct store;

/* ---- The API's reads and writes ---------------------------------------- */

/* One entry of an audience's "lists" as resolved. */
struct sap_list_ref {
	int64_t id;	    /* 0 = no such list */
	const char *sender; /* its sender, or NULL */
};
struct sap_lists_answer {
	const struct sap_list_ref *refs; /* one per entry, in order */
	size_t n;
	bool follow_up; /* its follow_up's alert exists (or it has none) */
};
/*
 * Resolves the "lists" of 'audience' (an alert's audience as JSON text,
 * its lists ids and names as given) in order, and looks for the alert
 * of its "follow_up": fn gets rc 0 and the answer, or rc -1 and the
 * error.
 */
typedef void sap_lists_fn(void *arg, int rc, const struct sap_lists_answer *l,
    const char *error);
int sap_lists(struct store *st, const char *audience, sap_lists_fn *fn,
    void *arg, char *err, size_t errlen);

/*
 * What an audience reaches, read in one round trip outside the group (as
 * store_alert_reach(), store_alert_missing(), store_alert_walk() and
 * store_alert_longest() read it on SQLite, over every member):
 *  - its reach on the channels 'sms' and 'email' (unless skip_reach:
 *    fn then gets zeros; a send checks only that somebody is reached);
 *  - for each of 'missing', the members reached on that channel alone
 *    who lack the field (a count each, in order);
 *  - when walk > 0, the first 'walk' members reached, to the visitor;
 *  - then for each of 'longest', the 'longest_limit' members reached by
 *    SMS (email off) with the longest values of the field, to the
 *    visitor.
 * The visitor runs from the loop before fn; fn gets rc 0, the reach and
 * the counts, or rc -1 and the error (the visitor may have run).
 */
struct sap_missing_q {
	bool sms; /* the field of an SMS template, else of an email's */
	struct alert_field f;
};
struct sap_audience_q {
	const char *audience; /* JSON text, as stored */
	bool sms;
	bool email;
	bool skip_reach;
	const struct sap_missing_q *missing;
	size_t nmissing;
	size_t walk;
	const struct alert_field *longest;
	size_t nlongest;
	size_t longest_limit;
	struct alert_visitor v; /* for walk and longest */
};
typedef void sap_audience_fn(void *arg, int rc, const struct alert_reach *r,
    const int64_t *missing, const char *error);
int sap_audience(struct store *st, const struct sap_audience_q *q,
    sap_audience_fn *fn, void *arg, char *err, size_t errlen);

/*
 * The alert as the API shows it (store_alert_json()'s shape) with its
 * "counts" (store_alert_counts()'s) and "caused" ({optouts, replies}):
 * fn gets rc 0 and the object (NULL: no such alert), or rc -1.
 */
typedef void sap_json_fn(void *arg, int rc, json_t *o, const char *error);
int sap_get(struct store *st, int64_t id, int64_t now, sap_json_fn *fn,
    void *arg, char *err, size_t errlen);
/* A page of alerts as store_alert_list() makes it (a JSON array). */
struct sap_page {
	int64_t before; /* 0 = from the newest */
	size_t limit;
	const char *status; /* NULL = any */
};
int sap_list(struct store *st, const struct sap_page *p, sap_json_fn *fn,
    void *arg, char *err, size_t errlen);

/*
 * Alert 'id' as the engine needs it (r: NULL when absent, borrowed for
 * the call) and the alert that already used send key 'key' (0 = none;
 * key may be NULL).
 */
typedef void sap_load_fn(void *arg, int rc, const struct alert_row *r,
    int64_t key_alert, const char *error);
int sap_load(struct store *st, int64_t id, const char *key, sap_load_fn *fn,
    void *arg, char *err, size_t errlen);

/* What a write reports once its group is settled. */
struct sap_done {
	bool ok;	   /* committed */
	const char *error; /* !ok: why, when known */
	int64_t id;	   /* create: the alert (the first one for a key) */
	bool dup;	   /* create: the key was used before */
	bool moved;	   /* action: the alert changed status */
	int64_t key_alert; /* send: the alert holding its key (0 = none) */
};
typedef void sap_done_fn(void *arg, const struct sap_done *d);
/*
 * Stores a new draft (INSERT ... ON CONFLICT (create_key) DO NOTHING):
 * with a create_key used before, on any node, nothing is stored and d->id
 * is the first alert's, d->dup set.
 */
int sap_create(struct store *st, const struct alert_def *d, int64_t now,
    sap_done_fn *fn, void *arg, char *err, size_t errlen);
/*
 * Draft 'id' rewritten with d (all but its create_key), or deleted when
 * d is NULL, only while it is a draft: d->moved tells whether it was
 * (false: absent, or no longer a draft).
 */
int sap_draft(struct store *st, int64_t id, const struct alert_def *d,
    int64_t now, sap_done_fn *fn, void *arg, char *err, size_t errlen);
/*
 * An action's writes, all in the group: status t->to when the alert is
 * in one of t->from (as store_alert_transition(); 'at' sets scheduled_at
 * first when > 0), its queued messages held (pause) or released (resume
 * from paused), the send key recorded when it moved to sending, and its
 * queued messages cancelled (cancel). A send key another alert holds,
 * committed by any node, moves nothing: d->key_alert names that alert
 * (the alert's own id: the key's send happened already).
 */
struct sap_action {
	int64_t id;
	struct alert_transition t;
	int64_t at;	 /* schedule: when; 0 = keep */
	bool release;	 /* it was paused: release its messages */
	const char *key; /* send: Idempotency-Key, or NULL */
};
int sap_action(struct store *st, const struct sap_action *a, sap_done_fn *fn,
    void *arg, char *err, size_t errlen);

/* ---- The fan-out ------------------------------------------------------- */

struct sap_fan;
/* The fan-out's own connection to 'url', its application_name
 * "outreachd-alerts:NODE"; NULL with err. */
struct sap_fan *sap_fan_open(struct event_base *base, const char *url,
    const char *node, char *err, size_t errlen);
/* Fails what is in flight (callbacks run) and closes; NULL is a no-op. */
void sap_fan_close(struct sap_fan *f);

/* What a tick found: alerts moved, and those left to fan out. */
struct sap_tick {
	size_t started; /* scheduled alerts moved to sending */
	size_t done;	/* sending alerts moved to done */
	const int64_t *started_ids;
	const int64_t *done_ids;
	const struct alert_row *rows; /* sending (fanned out or not), by id */
	size_t nrows;
};
typedef void sap_tick_fn(void *arg, int rc, const struct sap_tick *t,
    const char *error);
int sap_fan_tick(struct sap_fan *f, int64_t now, sap_tick_fn *fn, void *arg,
    char *err, size_t errlen);

/*
 * The guard rails' figures of alert 'id' (store_alert_guard()'s), read
 * on the fan-out connection: fn gets rc 0 and g, or rc -1 and the error.
 */
typedef void sap_guard_fn(void *arg, int rc, const struct alert_guard *g,
    const char *error);
int sap_fan_guard(struct sap_fan *f, int64_t id, sap_guard_fn *fn, void *arg,
    char *err, size_t errlen);

/* One batch of an alert's fan-out. */
struct sap_batch_req {
	const struct alert_row *row; /* as the tick read it */
	int64_t now;
	bool sms; /* channels with a template (and a sender) */
	bool email;
	int64_t backlog; /* due messages the alert may have ([alerts]) */
	size_t chunk;	 /* at most this many members */
	int64_t scan;	 /* member ids looked at per batch */
};
struct sap_batch_done {
	int rc; /* 1 committed, 0 skipped (locked or no longer sending;
		 * nothing written), -1 failed (nothing written) */
	const char *error;
	int64_t members; /* handed to the visitor and committed */
	int64_t made;	 /* messages committed */
	struct alert_cursor cursor;
};
typedef void sap_batch_fn(void *arg, const struct sap_batch_done *d);
struct sap_batch;
/*
 * Runs one batch of req->row's fan-out; v->fn is called for each member
 * from the loop, and adds the member's messages with sap_batch_add().
 * The batch, or NULL with err.
 */
struct sap_batch *sap_batch(struct sap_fan *f, const struct sap_batch_req *req,
    const struct alert_visitor *v, sap_batch_fn *fn, void *arg, char *err,
    size_t errlen);
/*
 * A message of the member being visited: q as queue_enqueue() takes it
 * (its strings copied), failed with 'render_err' when not NULL.
 */
void sap_batch_add(struct sap_batch *b, const struct queue_new *q,
    const char *render_err);

#endif
