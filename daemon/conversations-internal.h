/*
 * conversations-internal.h - what the files of the conversations module
 * share: conversations.c (routes, listings, threads, assign, close,
 * reopen, read, notes, the message observer) and conversations_reply.c
 * (replies and saved replies).
 *
 * Contract:
 *  - Loop thread only, like conversations.h.
 *  - A write keeps its request in a struct cv_pending handed to
 *    cv_commit(), which answers once the group committed (503 if it
 *    failed).
 */
#ifndef OD_CONVERSATIONS_INTERNAL_H
#define OD_CONVERSATIONS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conversations.h"
#include "http.h"

struct conversations {
	struct conversations_deps deps;
};

/* A write waiting for its group commit, and what to answer then. */
struct cv_pending {
	int code;	/* HTTP status */
	int64_t conv;	/* answer this conversation's summary, */
	int64_t note;	/* or this note, */
	int64_t saved;	/* or this saved reply, */
	json_t *body;	/* or this (owned); else no body (204) */
	const char *op; /* for the log line: "assign", "reply", ... */
};

#define CV_KEY_MAX 200 /* bytes of a reply's Idempotency-Key */

struct alert_member;
struct conv_query;
struct evkeyvalq;
struct conv_target;
struct queue_new;
struct saved_reply;

/* ---- conversations.c --------------------------------------------------- */

/*
 * Keeps req until the open group commits, then answers per p (copied).
 * Publishes a "conversation" event for p->conv first, in the group.
 */
void cv_commit(struct conversations *cv, struct http_req *req,
    const struct cv_pending *p);
/* The positive id of path parameter i, or 0 after answering 404. */
int64_t cv_id_param(struct http_req *req, size_t i, const char *what);
/* The start of a write: auth, not stopping. false after answering. */
bool cv_write_begin(struct conversations *cv, struct http_req *req);
/* Answers 503 for a store failure and logs it. */
void cv_store_error(struct http_req *req, const char *what, const char *err);
/* The query string of a listing into q. 0 / -1 with err. */
int cv_query_parse(struct http_req *req, struct evkeyvalq *kv,
    struct conv_query *q, char *err, size_t errlen);
/*
 * The JSON body of an action that needs none: empty, or an object with
 * no field. false after answering.
 */
bool cv_no_body(struct http_req *req);
/* {"body"} of a note: a new copy, or NULL after answering. */
char *cv_note_body(struct http_req *req);
/*
 * {"staff_id": n | null} of an assign: n (not checked against the
 * store), 0 for the pool, -1 after answering 422.
 */
int64_t cv_assign_parse(struct http_req *req);

/* ---- conversations_reply.c --------------------------------------------- */

/* POST /api/v1/conversations/{id}/reply. */
void cv_reply(struct conversations *cv, struct http_req *req, int64_t id);
/*
 * The reply's Idempotency-Key header as the message's key, scoped to
 * conversation id ("reply:<id>:<key>"; *key NULL without the header):
 * 0, or -1 after answering 422.
 */
int cv_reply_key(struct http_req *req, int64_t id, char **key);
/*
 * The answer to store_conv_target()'s rc (err when -1) for a reply to
 * conversation id: true when t may be texted, else false after
 * answering 503, 404 or 409.
 */
bool cv_reply_check(struct http_req *req, int64_t id, int rc,
    const struct conv_target *t, const char *err);
/*
 * The text part of a reply body: 1 with *text the body (a new string), 0
 * with *saved the saved reply to render, or -1 with err (a 422).
 */
int cv_reply_parse(json_t *o, char **text, int64_t *saved, char *err,
    size_t errlen);
/*
 * Saved reply template 'src' rendered for member am: a new string, or
 * NULL with "saved_reply: ..." in err.
 */
char *cv_render_member(const char *src, const struct alert_member *am,
    char *err, size_t errlen);
/*
 * The fields of a saved reply body into r (borrowed from o); with
 * 'create' both are required. 0, or -1 with err.
 */
int cv_saved_fields(json_t *o, bool create, struct saved_reply *r, char *err,
    size_t errlen);
/*
 * The text of a reply body {"body"} or {"saved_reply": id} (rendered for
 * 'member'): a new string, or NULL after answering.
 */
char *cv_reply_text(struct conversations *cv, struct http_req *req, json_t *o,
    int64_t member);
/*
 * Validates the reply as a message (api_message_parse()) into *m, whose
 * strings point into *mo (the caller frees it). false after answering.
 */
bool cv_reply_message(struct conversations *cv, struct http_req *req,
    const struct conv_target *t, const char *text, json_t **mo,
    struct queue_new *m);

/* ---- conversations_pg.c ------------------------------------------------ */

/* The routes on a PostgreSQL store, saved replies included. */
void cv_pg_routes(struct http_server *srv, struct conversations *cv);
/* GET|POST /api/v1/saved-replies. */
void cv_saved_replies(struct http_req *req, void *arg);
/* GET|PATCH|DELETE /api/v1/saved-replies/{id}. */
void cv_saved_reply(struct http_req *req, void *arg);

#endif
