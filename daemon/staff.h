/*
 * staff.h - staff accounts and who may use the API: bearer tokens, web
 * sessions with CSRF protection, password login with rate limiting, and
 * the audit log (doc/staff.md).
 *
 * Contract:
 *  - staff_new() makes the daemon's token (deps->token: [http] api_token
 *    or the token file) a valid admin token before anything is served:
 *    with no staff yet, staff #1 "Administrator" (admin) is created
 *    holding it, so an install upgrades with no step. It registers
 *    /api/v1/login, logout, me, staff, staff/{id}, tokens, tokens/{id}
 *    and audit, and hooks every reply of the server (the audit log).
 *  - staff_authorize() is api_authorized(): it fills req->auth from an
 *    "Authorization: Bearer" token or the od_session cookie, or answers
 *    401 itself. A session request whose method is not GET or HEAD must
 *    carry X-CSRF-Token equal to the session's CSRF token, else it is
 *    answered 403 (code "csrf") before its handler runs, so nothing
 *    changes. 503 when the store cannot answer.
 *  - Every successful (2xx) request under /api/v1 whose method is not
 *    GET or HEAD and whose req->auth names a staff member gets one audit
 *    row (method and route, path, status, how authenticated; never a
 *    body), written after the reply's own group committed.
 *  - Password hashing and verification run on a worker thread.
 *  - Loop thread only. Dependencies are borrowed and outlive the module.
 */
#ifndef OD_STAFF_H
#define OD_STAFF_H

#include <stdbool.h>
#include <stddef.h>

struct api;
struct config;
struct event_base;
struct http_req;
struct http_server;
struct store;

struct staff_deps {
	struct event_base *base;
	struct http_server *srv;
	struct api *api;
	struct store *st;
	const struct config *cfg;
	const char *token; /* the daemon's own token */
};

struct staff;

/* The module, or NULL with the reason in err (store, worker thread). */
struct staff *staff_new(const struct staff_deps *deps, char *err,
    size_t errlen);
/* Fills req->auth, or answers 401/403/503 itself and returns false. */
bool staff_authorize(struct staff *s, struct http_req *req);
/* Frees the module (waits for a running hash). NULL is a no-op. */
void staff_free(struct staff *s);

#endif
