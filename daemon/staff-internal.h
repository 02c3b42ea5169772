/*
 * staff-internal.h - what the two halves of the staff module share:
 * staff.c (authorization, sessions, login, logout, me, the audit hook)
 * and staff_api.c (staff, tokens and audit routes). Only they include it.
 *
 * Contract:
 *  - Loop thread only; the worker thread runs staff_hash_job's 'run'.
 *  - Handlers answer changes from a store_on_commit() callback
 *    (staff_reply_after_commit()), so a 2xx means the rows are on disk.
 */
#ifndef OD_STAFF_INTERNAL_H
#define OD_STAFF_INTERNAL_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "staff.h"

struct auth_limiter;
struct staff_wait;
struct workq;

/*
 * An answer of store_token_auth() kept while store_staff_generation()
 * stays the same (staff.c, staff_token_auth()); hash "" = empty slot.
 */
struct staff_token_seen {
	char hash[AUTH_HEX_LEN];
	int64_t seen_at; /* read from the store then (ms) */
	int64_t staff_id;
	char role[16];
	int64_t session_id;   /* sessions (PostgreSQL): the row */
	int64_t last_seen_at; /* ... and its last use, for the touch */
};
#define STAFF_TOKEN_SLOTS   64	 /* direct-mapped by the hash's first byte */
#define STAFF_TOKEN_KEEP_MS 1000 /* then read again (outside changes) */

struct staff {
	struct staff_deps deps;
	struct workq *wq;		 /* password hashes, off the loop */
	struct auth_limiter *by_account; /* failed logins per email */
	struct auth_limiter *by_peer;	 /* ... per client address */
	int64_t idle_ms;		 /* [http] session_idle */
	int64_t lifetime_ms;		 /* [http] session_lifetime */
	bool secure;			 /* public_url is https: Secure */
	struct staff_token_seen tokens[STAFF_TOKEN_SLOTS];
	uint64_t tokens_gen; /* staff_generation() they belong to */
	/* PostgreSQL: session answers kept as tokens are (same life) */
	struct staff_token_seen sessions[STAFF_TOKEN_SLOTS];
	uint64_t dropped; /* this node's writes of staff or session rows */
	/* requests waiting for a token read (PostgreSQL, staff.c) */
	LIST_HEAD(, staff_wait) waits;
	int64_t forgot_at; /* the shared counts' last cleanup (PostgreSQL) */
};

/*
 * A password to hash or verify on the worker. 'encoded' empty and
 * 'verify' false: hash 'password' into 'encoded'. 'verify': check it
 * against 'encoded' into 'match' (an empty 'encoded' hashes instead,
 * costing the same, and never matches).
 */
struct staff_hash_job {
	struct staff *s;
	struct http_req *req;
	bool verify;
	char password[AUTH_PASSWORD_MAX + 1];
	char encoded[AUTH_HASH_MAX];
	bool ok;    /* the hash was made */
	bool match; /* verify: it matched */
	char err[128];
	void (*done)(struct staff_hash_job *job, bool cancelled);
	void *arg; /* for 'done' */
	int64_t id;
};

/*
 * Runs job on the worker, then job->done on the loop. On failure to
 * queue, job->done runs at once with cancelled true.
 */
void staff_hash_submit(struct staff *s, struct staff_hash_job *job);
/*
 * Once the open group commits, answers req with 'code' and obj (consumed;
 * NULL = no body), or 503 if the group failed.
 */
void staff_reply_after_commit(struct staff *s, struct http_req *req, int code,
    json_t *obj);
/* Answers 503 for a store failure 'err' during 'what', logging it. */
void staff_store_error(struct http_req *req, const char *what, const char *err);
/* Registers the staff, tokens and audit routes (staff_api.c). */
void staff_api_routes(struct staff *s);
/* A password's length rule: 0, or -1 with the reason in err. */
int staff_password_check(const char *pw, char *err, size_t errlen);
/*
 * Forgets the kept token and session answers (a staff or session row
 * was written on PostgreSQL, where store_staff_generation() does not
 * count): this node sees the change at once, the others within
 * STAFF_TOKEN_KEEP_MS.
 */
void staff_cache_drop(struct staff *s);
/*
 * A read of the store answered as JSON (PostgreSQL): arg for the
 * store_staff_json_fn staff_read_answer(), which answers req 200 with o
 * (wrapped as {wrap: o} unless wrap is NULL), 404 "no <what>" when there
 * is none, 503 on an error. The strings are static.
 */
void *staff_read_new(struct http_req *req, const char *what, const char *wrap);
void staff_read_answer(void *arg, json_t *o, const char *error);
/* The role as the HTTP layer knows it. */
int staff_role_of(const char *role);

#endif
