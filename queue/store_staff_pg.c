/*
 * store_staff_pg.c - the staff operations of every API request on either
 * backend (store_staff_pg.h): the bearer token check, the daemon's own
 * token at start, and the audit row. SQLite hands on store_staff.c; the
 * PostgreSQL half is here, with its SQL.
 *
 * DESIGN
 *
 * The token check is on the path of every API request. daemon/staff.c
 * answers most requests from its cache of recent answers; a miss on
 * PostgreSQL is one indexed read (token hash joined with its staff row,
 * as store_staff.c reads it) sent on the store's connection outside the
 * group: it needs no transaction, and an error must not fail the group
 * of other requests' writes. The request waits for the answer (staff.c
 * runs its handler again), the loop never does. A token revoked or a
 * member disabled on another node is seen when the cache entry ends
 * (STAFF_TOKEN_KEEP_MS): the generation counter of store_staff.c only
 * counts this process's writes.
 *
 * The daemon's token ([http] api_token) is made staff #1's at the first
 * start, as on SQLite (store_staff_bootstrap() has the five outcomes).
 * On PostgreSQL it is one statement with data-modifying CTEs, after a
 * transaction-level advisory lock in the same group: nodes starting
 * together on a fresh database take turns, and because the statement
 * after the lock takes a fresh snapshot (READ COMMITTED), the second
 * node sees the Administrator the first made, instead of making a
 * second one and failing on the token's unique hash. It runs at start,
 * before anything is served, so waiting for its commit there
 * (store_flush()) blocks nobody.
 *
 * The audit row of each change (staff.c's reply hook, one per 2xx write
 * under /api/v1, so one per accepted message) is one INSERT in the
 * group, like SQLite's.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "store-internal.h"
#include "store_staff.h"
#include "store_staff_pg.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"

/* Nodes bootstrapping the daemon's token take turns (see the top). */
#define SSP_BOOT_LOCK "SELECT pg_advisory_xact_lock(1868, 1)"

/* As store_staff.c's token_sql_auth. */
static const char ssp_sql_token_auth[] =
    "SELECT s.id, s.role FROM api_tokens t JOIN staff s ON s.id = t.staff_id"
    " WHERE t.token_hash = $1::text AND t.revoked_at IS NULL"
    " AND s.disabled = 0";

/*
 * store_staff_bootstrap() in one statement: $1 the token's hash, $2 now.
 * Answers its enum staff_boot, or -1 when no enabled admin can hold it.
 */
static const char ssp_sql_boot[] =
    "WITH d AS MATERIALIZED (SELECT id, token_hash = $1::text AS same,"
    " revoked_at IS NOT NULL AS revoked FROM api_tokens WHERE daemon = 1"
    " ORDER BY id LIMIT 1),"
    " o AS MATERIALIZED (SELECT id FROM api_tokens"
    " WHERE token_hash = $1::text"
    " AND NOT EXISTS (SELECT 1 FROM d WHERE same)),"
    " todo AS MATERIALIZED (SELECT 1 AS x"
    " WHERE NOT EXISTS (SELECT 1 FROM d WHERE same)"
    " AND NOT EXISTS (SELECT 1 FROM o)),"
    " rh AS (UPDATE api_tokens SET token_hash = $1::text, revoked_at = NULL,"
    " created_at = $2::bigint WHERE id = (SELECT id FROM d)"
    " AND EXISTS (SELECT 1 FROM todo) RETURNING id),"
    " ns AS (INSERT INTO staff (name, role, created_at, updated_at)"
    " SELECT 'Administrator', 'admin', $2::bigint, $2::bigint FROM todo"
    " WHERE NOT EXISTS (SELECT 1 FROM d)"
    " AND NOT EXISTS (SELECT 1 FROM staff) RETURNING id),"
    " adm AS MATERIALIZED (SELECT min(id) AS id FROM staff"
    " WHERE role = 'admin' AND disabled = 0),"
    " holder AS MATERIALIZED (SELECT id FROM ns UNION ALL"
    " SELECT id FROM adm WHERE id IS NOT NULL"
    " AND EXISTS (SELECT 1 FROM todo) AND NOT EXISTS (SELECT 1 FROM d)"
    " AND EXISTS (SELECT 1 FROM staff)),"
    " ti AS (INSERT INTO api_tokens (staff_id, name, token_hash, daemon,"
    " created_at) SELECT id, 'daemon token', $1::text, 1, $2::bigint"
    " FROM holder RETURNING id)"
    " SELECT CASE WHEN EXISTS (SELECT 1 FROM d WHERE same)"
    " THEN CASE WHEN (SELECT revoked FROM d) THEN 4 ELSE 0 END"
    " WHEN EXISTS (SELECT 1 FROM o) THEN 0"
    " WHEN EXISTS (SELECT 1 FROM rh) THEN 2"
    " WHEN EXISTS (SELECT 1 FROM ns) AND EXISTS (SELECT 1 FROM ti) THEN 1"
    " WHEN EXISTS (SELECT 1 FROM ti) THEN 3 ELSE -1 END";

/* A token for an enabled staff member: $1 staff, $2 name, $3 hash, $4 now. */
static const char ssp_sql_token_new[] =
    "INSERT INTO api_tokens (staff_id, name, token_hash, daemon, created_at)"
    " SELECT id, $2::text, $3::text, 0, $4::bigint FROM staff"
    " WHERE id = $1::bigint AND disabled = 0 RETURNING id";

/* $1 token, $2 the caller (0: any token), $3 now; answers its owner. */
static const char ssp_sql_token_revoke[] =
    "WITH t AS MATERIALIZED (SELECT id, staff_id FROM api_tokens"
    " WHERE id = $1::bigint),"
    " u AS (UPDATE api_tokens x SET revoked_at = $3::bigint FROM t"
    " WHERE x.id = t.id AND x.revoked_at IS NULL"
    " AND ($2::bigint = 0 OR t.staff_id = $2::bigint) RETURNING x.id)"
    " SELECT coalesce((SELECT staff_id FROM t), 0),"
    " (SELECT count(*) FROM u)";

static const char ssp_sql_audit[] =
    "INSERT INTO audit (staff_id, action, target, detail, created_at)"
    " VALUES ($1::bigint, $2::text, $3::text, $4::text, $5::bigint)";

/* One token check in flight. */
struct ssp_auth {
	store_token_auth_fn *fn;
	void *arg;
};

static void
ssp_auth_answer(void *arg, const struct pg_answer *a)
{
	struct ssp_auth *op = arg;
	struct staff_auth sa;

	memset(&sa, 0, sizeof(sa));
	if (a->error != NULL)
		op->fn(op->arg, -1, NULL, a->error);
	else if (PQntuples(a->res) == 0)
		op->fn(op->arg, 0, NULL, NULL);
	else {
		sa.staff_id = strtoll(PQgetvalue(a->res, 0, 0), NULL, 10);
		strlcpy(sa.role, PQgetvalue(a->res, 0, 1), sizeof(sa.role));
		op->fn(op->arg, 1, &sa, NULL);
	}
	free(op);
}

static int
ssp_token_auth(struct store *st, const char *hash, struct ssp_auth *op,
    char *err, size_t errlen)
{
	const char *v[1] = {hash};

	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = ssp_sql_token_auth,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = ssp_auth_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	return 0;
}

/* The bootstrap's answer, read after store_flush(). */
struct ssp_boot {
	bool answered;
	int rc;
	char error[256];
};

static void
ssp_boot_answer(void *arg, const struct pg_answer *a)
{
	struct ssp_boot *b = arg;

	b->answered = true;
	if (a->error != NULL) {
		b->rc = -1;
		snprintf(b->error, sizeof(b->error), "daemon token: %s",
		    a->error);
	} else if (PQntuples(a->res) == 1)
		b->rc = atoi(PQgetvalue(a->res, 0, 0));
	else {
		b->rc = -1;
		snprintf(b->error, sizeof(b->error), "daemon token: no answer");
	}
	if (b->rc == -1 && b->error[0] == '\0')
		snprintf(b->error, sizeof(b->error),
		    "no enabled admin to hold the daemon's token");
}

static int
ssp_boot(struct store *st, const char *hash, int64_t now, char *err,
    size_t errlen)
{
	struct ssp_boot b = {.rc = -1};
	char nows[24];
	const char *v[2] = {hash, nows};

	snprintf(nows, sizeof(nows), "%" PRId64, now);
	if (store_pg_group_send(st, &(struct pg_query){.sql = SSP_BOOT_LOCK},
		err, errlen) == -1 ||
	    store_pg_group_send(st,
		&(struct pg_query){.sql = ssp_sql_boot,
		    .nparams = 2,
		    .values = v,
		    .done = ssp_boot_answer,
		    .arg = &b},
		err, errlen) == -1)
		return -1;
	/* Start-up: wait for the commit (see the top of the file). */
	if (store_flush(st, err, errlen) == -1) {
		if (b.answered && b.error[0] != '\0')
			snprintf(err, errlen, "%s", b.error);
		return -1;
	}
	if (!b.answered) {
		snprintf(err, errlen, "daemon token: no answer");
		return -1;
	}
	if (b.rc == -1)
		snprintf(err, errlen, "%s", b.error);
	return b.rc;
}

static int
ssp_audit(struct store *st, const struct audit_entry *a, char *err,
    size_t errlen)
{
	char staff[24], now[24];
	const char *v[5] = {NULL, a->action, a->target, a->detail, now};

	if (a->staff_id != 0) {
		snprintf(staff, sizeof(staff), "%" PRId64, a->staff_id);
		v[0] = staff;
	}
	snprintf(now, sizeof(now), "%" PRId64, a->now);
	return store_pg_group_send(st,
	    &(struct pg_query){.sql = ssp_sql_audit, .nparams = 5, .values = v},
	    err, errlen);
}
#endif /* HAVE_LIBPQ */

/* A token create or revoke waiting for its group. */
struct ssp_made {
	store_token_made_fn *fn;
	void *arg;
	int64_t id; /* the new token; a revoke: the token's owner */
	bool failed;
	char error[256];
};

static void
ssp_made_commit(void *arg, bool ok)
{
	struct ssp_made *op = arg;

	ok = ok && !op->failed;
	op->fn(op->arg, ok, ok ? op->id : 0,
	    !ok && op->error[0] != '\0' ? op->error : NULL);
	free(op);
}

#ifdef HAVE_LIBPQ
static void
ssp_made_answer(void *arg, const struct pg_answer *a)
{
	struct ssp_made *op = arg;

	if (a->error != NULL) {
		op->failed = true;
		snprintf(op->error, sizeof(op->error), "%s", a->error);
	} else if (PQntuples(a->res) == 1)
		op->id = strtoll(PQgetvalue(a->res, 0, 0), NULL, 10);
}

static int
ssp_token_revoke(struct store *st, const struct token_revoke *t,
    struct ssp_made *op, char *err, size_t errlen)
{
	char id[24], by[24], now[24];
	const char *v[3] = {id, by, now};

	snprintf(id, sizeof(id), "%" PRId64, t->id);
	snprintf(by, sizeof(by), "%" PRId64, t->by);
	snprintf(now, sizeof(now), "%" PRId64, t->now);
	if (store_pg_group_send(st,
		&(struct pg_query){.sql = ssp_sql_token_revoke,
		    .nparams = 3,
		    .values = v,
		    .done = ssp_made_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	store_on_commit(st, ssp_made_commit, op);
	return 0;
}

static int
ssp_token_new(struct store *st, const struct token_new *t, struct ssp_made *op,
    char *err, size_t errlen)
{
	char staff[24], now[24];
	const char *v[4] = {staff, t->name, t->hash, now};

	snprintf(staff, sizeof(staff), "%" PRId64, t->staff_id);
	snprintf(now, sizeof(now), "%" PRId64, t->now);
	if (store_pg_group_send(st,
		&(struct pg_query){.sql = ssp_sql_token_new,
		    .nparams = 4,
		    .values = v,
		    .done = ssp_made_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	store_on_commit(st, ssp_made_commit, op);
	return 0;
}
#endif

#ifndef HAVE_LIBPQ
/* Only reached with a PostgreSQL store in a build without libpq. */
static int
ssp_no_pg(char *err, size_t errlen)
{
	snprintf(err, errlen,
	    "this outreachd was built without PostgreSQL support (libpq-dev)");
	return -1;
}
#endif

int
store_token_auth_async(struct store *st, const char *hash,
    store_token_auth_fn *fn, void *arg, char *err, size_t errlen)
{
	struct staff_auth a;
	char e[256];
	int rc;

	if (store_backend(st) == STORE_SQLITE) {
		rc = store_token_auth(st, hash, &a, e, sizeof(e));
		fn(arg, rc, rc == 1 ? &a : NULL, rc == -1 ? e : NULL);
		return 0;
	}
#ifdef HAVE_LIBPQ
	{
		struct ssp_auth *op = xcalloc(1, sizeof(*op));

		op->fn = fn;
		op->arg = arg;
		return ssp_token_auth(st, hash, op, err, errlen);
	}
#else
	(void)fn;
	(void)arg;
	return ssp_no_pg(err, errlen);
#endif
}

int
store_token_create_durable(struct store *st, const struct token_new *t,
    store_token_made_fn *fn, void *arg, char *err, size_t errlen)
{
	struct ssp_made *op = xcalloc(1, sizeof(*op));

	op->fn = fn;
	op->arg = arg;
	if (store_backend(st) == STORE_SQLITE) {
		if ((op->id = store_token_create(st, t->staff_id, t->name,
			 t->hash, t->now, err, errlen)) == -1) {
			free(op);
			return -1;
		}
		store_on_commit(st, ssp_made_commit, op);
		return 0;
	}
#ifdef HAVE_LIBPQ
	return ssp_token_new(st, t, op, err, errlen);
#else
	free(op);
	return ssp_no_pg(err, errlen);
#endif
}

int
store_token_revoke_durable(struct store *st, const struct token_revoke *t,
    store_token_revoked_fn *fn, void *arg, char *err, size_t errlen)
{
	struct ssp_made *op = xcalloc(1, sizeof(*op));
	int rc;

	op->fn = fn; /* the same signature: the id slot holds the owner */
	op->arg = arg;
	if (store_backend(st) == STORE_SQLITE) {
		rc = store_token_owner(st, t->id, &op->id, err, errlen);
		if (rc == 0)
			op->id = 0;
		if (rc == 1 && (t->by == 0 || t->by == op->id))
			rc = store_token_revoke(st, t->id, t->now, err, errlen);
		if (rc == -1) {
			free(op);
			return -1;
		}
		store_on_commit(st, ssp_made_commit, op);
		return 0;
	}
#ifdef HAVE_LIBPQ
	return ssp_token_revoke(st, t, op, err, errlen);
#else
	free(op);
	return ssp_no_pg(err, errlen);
#endif
}

int
store_staff_boot(struct store *st, const char *hash, int64_t now, char *err,
    size_t errlen)
{
	int rc;

	if (store_backend(st) == STORE_SQLITE) {
		if ((rc = store_staff_bootstrap(st, hash, now, err, errlen)) ==
			-1 ||
		    store_flush(st, err, errlen) == -1)
			return -1;
		return rc;
	}
#ifdef HAVE_LIBPQ
	return ssp_boot(st, hash, now, err, errlen);
#else
	return ssp_no_pg(err, errlen);
#endif
}

int
store_audit_append(struct store *st, const struct audit_entry *a, char *err,
    size_t errlen)
{
	if (store_backend(st) == STORE_SQLITE)
		return store_audit_add(st, a, err, errlen);
#ifdef HAVE_LIBPQ
	return ssp_audit(st, a, err, errlen);
#else
	return ssp_no_pg(err, errlen);
#endif
}
