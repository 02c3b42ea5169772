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

/* ---- conversations_reply.c --------------------------------------------- */

/* POST /api/v1/conversations/{id}/reply. */
void cv_reply(struct conversations *cv, struct http_req *req, int64_t id);
/* GET|POST /api/v1/saved-replies. */
void cv_saved_replies(struct http_req *req, void *arg);
/* GET|PATCH|DELETE /api/v1/saved-replies/{id}. */
void cv_saved_reply(struct http_req *req, void *arg);

#endif
