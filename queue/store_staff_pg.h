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

#endif
