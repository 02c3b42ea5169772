/*
 * store_staff_pg.h - the staff operations of every API request on either
 * backend (issue 13, doc/postgresql.md): a bearer token's check answered
 * through a callback, the daemon's own token at start, and the audit
 * row of a change. store_staff.h has the rest (SQLite only so far).
 *
 * Contract:
 *  - store_token_auth_async(): fn runs exactly once with rc 1 (found:
 *    a holds the staff member), 0 (no valid token) or -1 (error: the
 *    text). On SQLite it runs before the call returns; on PostgreSQL
 *    from the loop, with the answer of one read sent outside the group.
 *    -1 with err when the read could not be sent (fn is not called).
 *  - store_staff_boot(): store_staff_bootstrap() on either backend, made
 *    durable before it returns (it runs the loop on PostgreSQL: start-up
 *    only, nothing is served yet). Nodes starting together on one fresh
 *    database make one Administrator between them.
 *  - store_audit_append(): store_audit_add() on either backend; the row
 *    joins the open group.
 *  - store_token_create_durable(): fn runs exactly once, from the loop,
 *    after the group's commit; -1 with err when nothing was started.
 *  - Loop thread only. Errors: -1 with text in err.
 */
#ifndef OD_STORE_STAFF_PG_H
#define OD_STORE_STAFF_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_staff.h"

struct store;

typedef void store_token_auth_fn(void *arg, int rc, const struct staff_auth *a,
    const char *error);
int store_token_auth_async(struct store *st, const char *hash,
    store_token_auth_fn *fn, void *arg, char *err, size_t errlen);
/*
 * store_token_create() made durable (outreachctl token create): fn runs
 * once the row committed (ok, its id) or the group failed (!ok); id 0
 * when staff_id is no enabled staff member (nothing written). On
 * PostgreSQL one INSERT ... SELECT from the staff row, in the group.
 */
struct token_new {
	int64_t staff_id;
	const char *name;
	const char *hash; /* hex SHA-256 of the token */
	int64_t now;
};
typedef void store_token_made_fn(void *arg, bool ok, int64_t id,
    const char *error);
int store_token_create_durable(struct store *st, const struct token_new *t,
    store_token_made_fn *fn, void *arg, char *err, size_t errlen);
/*
 * store_token_owner() and store_token_revoke() as one durable step
 * (outreachctl token revoke): fn(arg, ok, owner, error) once the group
 * committed; owner 0 = no such token. A token of someone other than
 * 'by' is revoked only when by is 0 (an admin asks); the caller answers
 * 403 for the others. PostgreSQL: one statement in the group.
 */
struct token_revoke {
	int64_t id;
	int64_t by; /* the caller's staff id; 0 = an admin: any token */
	int64_t now;
};
typedef void store_token_revoked_fn(void *arg, bool ok, int64_t owner,
    const char *error);
int store_token_revoke_durable(struct store *st, const struct token_revoke *t,
    store_token_revoked_fn *fn, void *arg, char *err, size_t errlen);
/* An enum staff_boot, or -1. */
int store_staff_boot(struct store *st, const char *hash, int64_t now, char *err,
    size_t errlen);
int store_audit_append(struct store *st, const struct audit_entry *a, char *err,
    size_t errlen);

/* ---- PostgreSQL only: logins, sessions, the staff routes ------------ */
/*
 * The rest of daemon/staff.c and staff_api.c on a PostgreSQL store, as
 * operations answered through callbacks, with the same JSON shapes as
 * store_staff.h. On a SQLite store (or a build without libpq) each call
 * returns -1 with err and calls nothing (SQLite keeps store_staff.h).
 *  - A read is one statement on store_pg_conn(), outside the group; fn
 *    runs exactly once, from the loop.
 *  - A write is one statement in the node's group; fn runs exactly once,
 *    from the loop, after the group committed (d->ok) or failed (!d->ok:
 *    nothing of it is stored). An expected case (an email taken, the
 *    last admin, no such row) is an answer, never an error that would
 *    fail the group.
 *  - -1 with err when nothing was sent (fn is not called).
 */

/* A read's answer: o (a new reference), or NULL (error NULL: none). */
typedef void store_staff_json_fn(void *arg, json_t *o, const char *error);

/* store_staff_json(): member id's API object. */
int store_staff_json_pg(struct store *st, int64_t id, store_staff_json_fn *fn,
    void *arg, char *err, size_t errlen);
/* store_staff_list_json(): the array ('full': with emails). */
int store_staff_list_json_pg(struct store *st, bool full,
    store_staff_json_fn *fn, void *arg, char *err, size_t errlen);
/* store_tokens_json(): the array of staff_id's tokens (0: everyone's). */
int store_tokens_json_pg(struct store *st, int64_t staff_id,
    store_staff_json_fn *fn, void *arg, char *err, size_t errlen);
/* store_sessions_json(): the array of q's live sessions. */
int store_sessions_json_pg(struct store *st, const struct session_query *q,
    store_staff_json_fn *fn, void *arg, char *err, size_t errlen);
/* store_audit_json(): {"audit": [...], "next"}. */
int store_audit_json_pg(struct store *st, const struct audit_query *q,
    store_staff_json_fn *fn, void *arg, char *err, size_t errlen);

/* store_session_auth(): fn as store_token_auth_async()'s, a->session_id
 * and a->last_seen_at set. */
struct session_check {
	const char *hash; /* hex SHA-256 of the cookie */
	int64_t now;
	int64_t idle_ms;
};
int store_session_auth_pg(struct store *st, const struct session_check *c,
    store_token_auth_fn *fn, void *arg, char *err, size_t errlen);
/* store_staff_by_email(): fn gets rc 1 (row), 0 (none) or -1 (error). */
typedef void store_staff_row_fn(void *arg, int rc, const struct staff_row *row,
    const char *error);
int store_staff_by_email_pg(struct store *st, const char *email,
    store_staff_row_fn *fn, void *arg, char *err, size_t errlen);
/* store_session_touch(): joins the group, answers nothing. */
int store_session_touch_pg(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen);

/* What a write reports once its group is settled. */
struct staff_done {
	bool ok;	   /* committed */
	const char *error; /* !ok: why, when known */
	bool found;	   /* see each write */
	bool last_admin;   /* a staff update refused: the last admin */
	int64_t id;	   /* see each write */
	json_t *o;	   /* the member's API object (borrowed), or NULL */
	const char *role;  /* the member's role, or "" */
};
typedef void store_staff_done_fn(void *arg, const struct staff_done *d);

/*
 * store_session_create() for an enabled member only (INSERT ... SELECT
 * from its staff row): found, id the session, o and role the member's;
 * !found: the member is disabled or gone, nothing written.
 */
int store_session_create_pg(struct store *st, const struct session_new *n,
    store_staff_done_fn *fn, void *arg, char *err, size_t errlen);
/*
 * store_session_owner() and store_session_revoke() as one statement: the
 * live session id (by now and idle_ms) of 'by' (0: anyone's) revoked;
 * found, id its owner; !found: no such live session, nothing written.
 */
struct session_revoke {
	int64_t id;
	int64_t by;
	int64_t now;
	int64_t idle_ms;
};
int store_session_revoke_pg(struct store *st, const struct session_revoke *r,
    store_staff_done_fn *fn, void *arg, char *err, size_t errlen);
/*
 * store_staff_create(): found, id and o the new member; !found: the
 * email is taken (INSERT ... ON CONFLICT DO NOTHING, so two nodes
 * creating one email at once make one member).
 */
int store_staff_create_pg(struct store *st, const struct staff_new *n,
    store_staff_done_fn *fn, void *arg, char *err, size_t errlen);
/*
 * store_staff_update() with the last-admin rule in the same statement,
 * behind a transaction-level advisory lock every staff update takes (two
 * nodes demoting the last two admins at once cannot both pass): found
 * (the member exists), last_admin (the patch would disable or demote the
 * last enabled admin: nothing changed), o the member after the change.
 * Disabling revokes its tokens and sessions; a new or removed password
 * its sessions but patch->keep_session, as on SQLite.
 */
struct staff_update {
	int64_t id;
	const struct staff_patch *patch;
};
int store_staff_update_pg(struct store *st, const struct staff_update *u,
    store_staff_done_fn *fn, void *arg, char *err, size_t errlen);

/*
 * GET /api/v1/status: queue_count_by_status() over the shared messages
 * table, one read. fn gets counts[channel][status] (zero where none), or
 * NULL and the error.
 */
typedef void store_status_counts_fn(void *arg, const int64_t *counts,
    const char *error);
int store_status_counts_pg(struct store *st, store_status_counts_fn *fn,
    void *arg, char *err, size_t errlen);

/*
 * /metrics' database-wide gauges, one read: the same counts and the
 * members marked bouncing (store_email_bouncing_count()); or NULL, 0 and
 * the error. The caller bounds how often (daemon/api.c).
 */
typedef void store_gauges_fn(void *arg, const int64_t *counts, int64_t bouncing,
    const char *error);
int store_metrics_gauges_pg(struct store *st, store_gauges_fn *fn, void *arg,
    char *err, size_t errlen);

#endif
