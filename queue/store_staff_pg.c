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
 *
 * Logins, sessions and the staff routes (the second half of the file,
 * PostgreSQL only): reads outside the group, one statement each, with
 * store_staff.c's JSON; writes one statement each in the group, written
 * so that no expected case raises an error: a session is INSERT ...
 * SELECT from an enabled staff row, a session's revoke an UPDATE that
 * checks owner and liveness, a new member INSERT ... ON CONFLICT (email)
 * DO NOTHING, an update one statement of data-modifying CTEs (the row,
 * its tokens and sessions revoked when disabled, its other sessions on
 * a new password) that refuses the last enabled admin's disable or
 * demotion itself, after a transaction-level advisory lock (1868, 13)
 * taken by every staff update, so that the check sees the other nodes'
 * committed changes and two of them cannot both pass.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "message.h"
#include "store-internal.h"
#include "store_staff.h"
#include "store_staff_pg.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"

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
	return store_no_libpq(err, errlen);
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

/* ---- logins, sessions and the staff routes (PostgreSQL only) -------- */

#ifdef HAVE_LIBPQ
/* Every staff update takes it, for the last-admin rule (see the header). */
#define SSP_ADMIN_LOCK "SELECT pg_advisory_xact_lock(1868, 13)"

/* store_staff.c's STAFF_JSON_COLS, of staff row s */
#define SSP_STAFF_JSON                                             \
	"s.id, s.name, s.email, s.role, s.disabled, s.created_at," \
	" s.password_hash IS NOT NULL"

static const char ssp_sql_staff_one[] =
    "SELECT " SSP_STAFF_JSON " FROM staff s WHERE s.id = $1::bigint";
static const char ssp_sql_staff_list[] =
    "SELECT " SSP_STAFF_JSON " FROM staff s ORDER BY s.id";
static const char ssp_sql_by_email[] =
    "SELECT id, name, coalesce(email, ''), role,"
    " coalesce(password_hash, ''), disabled FROM staff WHERE email = $1::text";
static const char ssp_sql_tokens[] =
    "SELECT t.id, t.name, t.staff_id, s.name, t.daemon, t.created_at,"
    " t.revoked_at FROM api_tokens t JOIN staff s ON s.id = t.staff_id"
    " WHERE $1::bigint = 0 OR t.staff_id = $1::bigint ORDER BY t.id DESC";
/* live: as store_staff.c's SESSION_LIVE, now $2 and idle_ms $3 */
#define SSP_LIVE                                             \
	"x.revoked_at IS NULL AND x.expires_at > $2::bigint" \
	" AND x.last_seen_at + $3::bigint > $2::bigint AND s.disabled = 0"
static const char ssp_sql_session_auth[] =
    "SELECT x.id, s.id, s.role, x.last_seen_at FROM sessions x"
    " JOIN staff s ON s.id = x.staff_id WHERE x.id_hash = $1::text"
    " AND " SSP_LIVE;
static const char ssp_sql_sessions[] =
    "SELECT x.id, x.staff_id, s.name, x.via, x.created_at, x.last_seen_at,"
    " x.expires_at, x.peer FROM sessions x JOIN staff s ON s.id = x.staff_id"
    " WHERE ($1::bigint = 0 OR x.staff_id = $1::bigint) AND " SSP_LIVE
    " ORDER BY x.id DESC";
static const char ssp_sql_audit_list[] =
    "SELECT a.id, a.staff_id, s.name, a.action, a.target, a.detail,"
    " a.created_at FROM audit a LEFT JOIN staff s ON s.id = a.staff_id"
    " WHERE ($1::bigint = 0 OR a.id < $1::bigint)"
    " AND ($2::bigint = 0 OR a.staff_id = $2::bigint)"
    " ORDER BY a.id DESC LIMIT $3::bigint";
static const char ssp_sql_counts[] =
    "SELECT channel, status, count(*) FROM messages GROUP BY 1, 2";
/* /metrics: the counts, then a row of NULLs with the members marked
 * bouncing (the partial index members_bouncing). */
static const char ssp_sql_gauges[] =
    "SELECT channel, status, count(*) FROM messages GROUP BY 1, 2"
    " UNION ALL SELECT NULL, NULL, count(*) FROM members"
    " WHERE bouncing = 1";
static const char ssp_sql_touch[] =
    "UPDATE sessions SET last_seen_at = $2::bigint WHERE id = $1::bigint"
    " AND last_seen_at < $2::bigint";

/* Columns: 0 the session, then SSP_STAFF_JSON. */
static const char ssp_sql_session_new[] =
    "WITH i AS (INSERT INTO sessions (staff_id, id_hash, via, peer,"
    " created_at, last_seen_at, expires_at) SELECT id, $2::text, $3::text,"
    " $4::text, $5::bigint, $5::bigint, $6::bigint FROM staff"
    " WHERE id = $1::bigint AND disabled = 0 RETURNING id, staff_id)"
    " SELECT i.id, " SSP_STAFF_JSON " FROM i JOIN staff s ON s.id = i.staff_id";

/* $1 session, $2 now, $3 idle_ms, $4 by (0: anyone's); its owner. */
static const char ssp_sql_session_revoke[] =
    "UPDATE sessions x SET revoked_at = $2::bigint FROM staff s"
    " WHERE x.id = $1::bigint AND s.id = x.staff_id"
    " AND ($4::bigint = 0 OR x.staff_id = $4::bigint) AND " SSP_LIVE
    " RETURNING x.staff_id";

/* $1 name, $2 email, $3 role, $4 password hash, $5 now. */
static const char ssp_sql_staff_new[] =
    "WITH i AS (INSERT INTO staff (name, email, role, password_hash,"
    " created_at, updated_at) VALUES ($1::text, $2::text, $3::text,"
    " $4::text, $5::bigint, $5::bigint) ON CONFLICT (email) DO NOTHING"
    " RETURNING *) SELECT 0, " SSP_STAFF_JSON " FROM i s";

/*
 * store_staff_update() and the last-admin check in one statement: $1 id,
 * $2/$3 set_name/name, $4/$5 role, $6/$7 password hash, $8/$9 disabled,
 * $10 now, $11 keep_session. Columns: 0 found, 1 refused (last admin),
 * then SSP_STAFF_JSON of the changed row (NULLs when none).
 */
static const char ssp_sql_staff_update[] =
    "WITH cur AS MATERIALIZED (SELECT id, role, disabled FROM staff"
    " WHERE id = $1::bigint),"
    " refused AS MATERIALIZED (SELECT 1 AS x FROM cur"
    " WHERE cur.role = 'admin' AND cur.disabled = 0"
    " AND (($8::int = 1 AND $9::int = 1)"
    " OR ($4::int = 1 AND $5::text <> 'admin'))"
    " AND NOT EXISTS (SELECT 1 FROM staff o WHERE o.role = 'admin'"
    " AND o.disabled = 0 AND o.id <> $1::bigint)),"
    " u AS (UPDATE staff SET"
    " name = CASE WHEN $2::int = 1 THEN $3::text ELSE name END,"
    " role = CASE WHEN $4::int = 1 THEN $5::text ELSE role END,"
    " password_hash = CASE WHEN $6::int = 1 THEN $7::text"
    " ELSE password_hash END,"
    " disabled = CASE WHEN $8::int = 1 THEN $9::bigint ELSE disabled END,"
    " updated_at = $10::bigint WHERE id = $1::bigint"
    " AND NOT EXISTS (SELECT 1 FROM refused) RETURNING *),"
    " rt AS (UPDATE api_tokens SET revoked_at = $10::bigint"
    " WHERE staff_id = $1::bigint AND revoked_at IS NULL"
    " AND $8::int = 1 AND $9::int = 1 AND EXISTS (SELECT 1 FROM u)"
    " RETURNING 1),"
    " rs AS (UPDATE sessions SET revoked_at = $10::bigint"
    " WHERE staff_id = $1::bigint AND revoked_at IS NULL"
    " AND EXISTS (SELECT 1 FROM u) AND (($8::int = 1 AND $9::int = 1)"
    " OR ($6::int = 1 AND id <> $11::bigint)) RETURNING 1)"
    " SELECT EXISTS (SELECT 1 FROM cur), EXISTS (SELECT 1 FROM refused),"
    " " SSP_STAFF_JSON ", (SELECT count(*) FROM rt) + (SELECT count(*) FROM rs)"
    " FROM (SELECT 1) one LEFT JOIN u s ON true";

/* {"id", "name"} of staff columns col (id) and col + 1 (name). */
static json_t *
ssp_staff_ref(const PGresult *res, int row, int col)
{
	return json_pack("{s:o, s:o}", "id", pgr_json_int(res, row, col),
	    "name", pgr_json_text(res, row, col + 1));
}

/* A member's API object from SSP_STAFF_JSON at column c (store_staff.c's
 * staff_json_row()). */
static json_t *
ssp_staff_row(const PGresult *res, int row, int c, bool full)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", pgr_json_int(res, row, c));
	json_object_set_new(o, "name", pgr_json_text(res, row, c + 1));
	if (full)
		json_object_set_new(o, "email", pgr_json_text(res, row, c + 2));
	json_object_set_new(o, "role", pgr_json_text(res, row, c + 3));
	json_object_set_new(o, "disabled",
	    json_boolean(pgr_get_i64(res, row, c + 4) != 0));
	if (full) {
		json_object_set_new(o, "created_at",
		    pgr_json_time(res, row, c + 5));
		json_object_set_new(o, "has_password",
		    json_boolean(pgr_get_bool(res, row, c + 6)));
	}
	return o;
}

static json_t *
ssp_token_row(const PGresult *res, int row)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", pgr_json_int(res, row, 0));
	json_object_set_new(o, "name", pgr_json_text(res, row, 1));
	json_object_set_new(o, "staff", ssp_staff_ref(res, row, 2));
	json_object_set_new(o, "daemon",
	    json_boolean(pgr_get_i64(res, row, 4) != 0));
	json_object_set_new(o, "created_at", pgr_json_time(res, row, 5));
	json_object_set_new(o, "revoked_at", pgr_json_time(res, row, 6));
	return o;
}

static json_t *
ssp_session_row(const PGresult *res, int row, int64_t current)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", pgr_json_int(res, row, 0));
	json_object_set_new(o, "staff", ssp_staff_ref(res, row, 1));
	json_object_set_new(o, "via", pgr_json_text(res, row, 3));
	json_object_set_new(o, "created_at", pgr_json_time(res, row, 4));
	json_object_set_new(o, "last_seen_at", pgr_json_time(res, row, 5));
	json_object_set_new(o, "expires_at", pgr_json_time(res, row, 6));
	json_object_set_new(o, "peer", pgr_json_text(res, row, 7));
	json_object_set_new(o, "current",
	    json_boolean(current != 0 && pgr_get_i64(res, row, 0) == current));
	return o;
}

static json_t *
ssp_audit_row(const PGresult *res, int row)
{
	json_t *o = json_object(), *detail = NULL;

	json_object_set_new(o, "id", pgr_json_int(res, row, 0));
	json_object_set_new(o, "staff",
	    PQgetisnull(res, row, 1) ? json_null()
				     : ssp_staff_ref(res, row, 1));
	json_object_set_new(o, "action", pgr_json_text(res, row, 3));
	json_object_set_new(o, "target", pgr_json_text(res, row, 4));
	if (!PQgetisnull(res, row, 5))
		detail = json_loads(PQgetvalue(res, row, 5), 0, NULL);
	json_object_set_new(o, "detail", detail != NULL ? detail : json_null());
	json_object_set_new(o, "created_at", pgr_json_time(res, row, 6));
	return o;
}

/* The reads (outside the group). */
enum ssp_read {
	SSP_STAFF_ONE,
	SSP_STAFF_LIST,
	SSP_STAFF_LIST_FULL,
	SSP_TOKENS,
	SSP_SESSIONS,
	SSP_AUDIT,
};

struct ssp_read_op {
	enum ssp_read kind;
	store_staff_json_fn *fn;
	void *arg;
	int64_t current; /* sessions: the caller's */
	int limit;	 /* audit: the page */
};

static json_t *
ssp_read_json(const struct ssp_read_op *op, const PGresult *res)
{
	json_t *a;
	int64_t last = 0;
	int i, n = PQntuples(res);

	if (op->kind == SSP_STAFF_ONE)
		return n == 1 ? ssp_staff_row(res, 0, 0, true) : NULL;
	a = json_array();
	for (i = 0; i < n; i++) {
		if (op->kind == SSP_TOKENS)
			json_array_append_new(a, ssp_token_row(res, i));
		else if (op->kind == SSP_SESSIONS)
			json_array_append_new(a,
			    ssp_session_row(res, i, op->current));
		else if (op->kind == SSP_AUDIT) {
			last = pgr_get_i64(res, i, 0);
			json_array_append_new(a, ssp_audit_row(res, i));
		} else
			json_array_append_new(a,
			    ssp_staff_row(res, i, 0,
				op->kind == SSP_STAFF_LIST_FULL));
	}
	if (op->kind != SSP_AUDIT)
		return a;
	return json_pack("{s:o, s:o}", "audit", a, "next",
	    n == op->limit && last > 1 ? json_integer(last) : json_null());
}

static void
ssp_read_answer(void *arg, const struct pg_answer *a)
{
	struct ssp_read_op *op = arg;

	if (a->error != NULL)
		op->fn(op->arg, NULL, a->error);
	else
		op->fn(op->arg, ssp_read_json(op, a->res), NULL);
	free(op);
}

/* Sends a read: op is freed on failure. 0 / -1 with err. */
static int
ssp_read(struct store *st, struct ssp_read_op *op, const struct pg_query *q,
    char *err, size_t errlen)
{
	return store_pg_read(st, q, ssp_read_answer, op, err, errlen);
}

static struct ssp_read_op *
ssp_read_new(enum ssp_read kind, store_staff_json_fn *fn, void *arg)
{
	struct ssp_read_op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->fn = fn;
	op->arg = arg;
	return op;
}

/* A session check or an email's row in flight. */
struct ssp_row_op {
	store_token_auth_fn *auth;
	store_staff_row_fn *row;
	void *arg;
};

static void
ssp_row_answer(void *arg, const struct pg_answer *a)
{
	struct ssp_row_op *op = arg;
	struct staff_auth sa;
	struct staff_row r;
	int rc = a->error != NULL ? -1 : PQntuples(a->res) > 0;

	memset(&sa, 0, sizeof(sa));
	memset(&r, 0, sizeof(r));
	if (rc == 1 && op->auth != NULL) {
		sa.session_id = pgr_get_i64(a->res, 0, 0);
		sa.staff_id = pgr_get_i64(a->res, 0, 1);
		strlcpy(sa.role, PQgetvalue(a->res, 0, 2), sizeof(sa.role));
		sa.last_seen_at = pgr_get_i64(a->res, 0, 3);
	} else if (rc == 1) {
		r.id = pgr_get_i64(a->res, 0, 0);
		strlcpy(r.name, PQgetvalue(a->res, 0, 1), sizeof(r.name));
		strlcpy(r.email, PQgetvalue(a->res, 0, 2), sizeof(r.email));
		strlcpy(r.role, PQgetvalue(a->res, 0, 3), sizeof(r.role));
		strlcpy(r.password_hash, PQgetvalue(a->res, 0, 4),
		    sizeof(r.password_hash));
		r.disabled = pgr_get_i64(a->res, 0, 5) != 0;
	}
	if (op->auth != NULL)
		op->auth(op->arg, rc, rc == 1 ? &sa : NULL, a->error);
	else
		op->row(op->arg, rc, rc == 1 ? &r : NULL, a->error);
	free(op);
}

/* A write waiting for its group. */
struct ssp_write_op {
	store_staff_done_fn *fn;
	void *arg;
	bool failed;
	char error[256];
	bool found;
	bool last_admin;
	int64_t id;
	json_t *o;
	char role[16];
	int kind; /* 0 session create, 1 revoke, 2 staff create, 3 update */
};

static void
ssp_write_answer(void *arg, const struct pg_answer *a)
{
	struct ssp_write_op *op = arg;
	int c = op->kind == 3 ? 2 : 1; /* where SSP_STAFF_JSON starts */

	if (a->error != NULL) {
		op->failed = true;
		snprintf(op->error, sizeof(op->error), "%s", a->error);
		return;
	}
	if (PQntuples(a->res) != 1)
		return;
	if (op->kind == 1) {
		op->found = true;
		op->id = pgr_get_i64(a->res, 0, 0);
		return;
	}
	if (op->kind == 3) {
		op->found = pgr_get_bool(a->res, 0, 0);
		op->last_admin = pgr_get_bool(a->res, 0, 1);
		if (PQgetisnull(a->res, 0, c))
			return;
	} else {
		op->found = true;
		op->id = pgr_get_i64(a->res, 0, op->kind == 0 ? 0 : c);
	}
	op->o = ssp_staff_row(a->res, 0, c, true);
	strlcpy(op->role, PQgetvalue(a->res, 0, c + 3), sizeof(op->role));
}

static void
ssp_write_commit(void *arg, bool ok)
{
	struct ssp_write_op *op = arg;
	struct staff_done d = {.ok = ok && !op->failed};

	if (d.ok) {
		d.found = op->found;
		d.last_admin = op->last_admin;
		d.id = op->id;
		d.o = op->o;
		d.role = op->role;
	} else
		d.error = op->error[0] != '\0' ? op->error : NULL;
	op->fn(op->arg, &d);
	json_decref(op->o);
	free(op);
}

/* Sends a write into the group (q's done and arg are set here). */
static int
ssp_write(struct store *st, struct ssp_write_op *op, const struct pg_query *q,
    char *err, size_t errlen)
{
	struct pg_query s = *q;

	s.done = ssp_write_answer;
	s.arg = op;
	if (store_pg_group_send(st, &s, err, errlen) == -1) {
		free(op);
		return -1;
	}
	store_on_commit(st, ssp_write_commit, op);
	return 0;
}

static struct ssp_write_op *
ssp_write_new(int kind, store_staff_done_fn *fn, void *arg)
{
	struct ssp_write_op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->fn = fn;
	op->arg = arg;
	return op;
}

/* The status counts' read (fn), or /metrics' (gfn). */
struct ssp_counts_op {
	store_status_counts_fn *fn;
	store_gauges_fn *gfn;
	void *arg;
};

static void
ssp_counts_answer(void *arg, const struct pg_answer *a)
{
	struct ssp_counts_op *op = arg;
	int64_t counts[CHANNEL_COUNT * MSG_ST_COUNT], bouncing = 0;
	int i, c, s;

	memset(counts, 0, sizeof(counts));
	if (a->error != NULL) {
		if (op->gfn != NULL)
			op->gfn(op->arg, NULL, 0, a->error);
		else
			op->fn(op->arg, NULL, a->error);
		free(op);
		return;
	}
	for (i = 0; i < PQntuples(a->res); i++) {
		if (PQgetisnull(a->res, i, 0)) {
			bouncing = pgr_get_i64(a->res, i, 2);
			continue;
		}
		c = channel_parse(PQgetvalue(a->res, i, 0));
		s = msg_status_parse(PQgetvalue(a->res, i, 1));
		if (c >= 0 && s >= 0)
			counts[c * MSG_ST_COUNT + s] =
			    pgr_get_i64(a->res, i, 2);
	}
	if (op->gfn != NULL)
		op->gfn(op->arg, counts, bouncing, NULL);
	else
		op->fn(op->arg, counts, NULL);
	free(op);
}
#endif /* HAVE_LIBPQ */

/* -1 unless st is a PostgreSQL store this build can drive. */
static int
ssp_need_pg(struct store *st, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	return store_postgresql_only(st, "store_staff_pg", err, errlen);
#else
	(void)st;
	return ssp_no_pg(err, errlen);
#endif
}

int
store_staff_json_pg(struct store *st, int64_t id, store_staff_json_fn *fn,
    void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char ids[24];
	const char *v[1] = {pgr_i64(ids, id, false)};

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	return ssp_read(st, ssp_read_new(SSP_STAFF_ONE, fn, arg),
	    &(struct pg_query){.sql = ssp_sql_staff_one,
		.nparams = 1,
		.values = v},
	    err, errlen);
#else
	(void)id, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_staff_list_json_pg(struct store *st, bool full, store_staff_json_fn *fn,
    void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	return ssp_read(st,
	    ssp_read_new(full ? SSP_STAFF_LIST_FULL : SSP_STAFF_LIST, fn, arg),
	    &(struct pg_query){.sql = ssp_sql_staff_list}, err, errlen);
#else
	(void)full, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_tokens_json_pg(struct store *st, int64_t staff_id,
    store_staff_json_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char ids[24];
	const char *v[1] = {pgr_i64(ids, staff_id, false)};

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	return ssp_read(st, ssp_read_new(SSP_TOKENS, fn, arg),
	    &(struct pg_query){.sql = ssp_sql_tokens,
		.nparams = 1,
		.values = v},
	    err, errlen);
#else
	(void)staff_id, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_sessions_json_pg(struct store *st, const struct session_query *q,
    store_staff_json_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char b[3][24];
	const char *v[3] = {pgr_i64(b[0], q->staff_id, false),
	    pgr_i64(b[1], q->now, false), pgr_i64(b[2], q->idle_ms, false)};
	struct ssp_read_op *op;

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	op = ssp_read_new(SSP_SESSIONS, fn, arg);
	op->current = q->current;
	return ssp_read(st, op,
	    &(struct pg_query){.sql = ssp_sql_sessions,
		.nparams = 3,
		.values = v},
	    err, errlen);
#else
	(void)q, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_audit_json_pg(struct store *st, const struct audit_query *q,
    store_staff_json_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char b[3][24];
	const char *v[3] = {pgr_i64(b[0], q->after, false),
	    pgr_i64(b[1], q->staff_id, false), pgr_i64(b[2], q->limit, false)};
	struct ssp_read_op *op;

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	op = ssp_read_new(SSP_AUDIT, fn, arg);
	op->limit = q->limit;
	return ssp_read(st, op,
	    &(struct pg_query){.sql = ssp_sql_audit_list,
		.nparams = 3,
		.values = v},
	    err, errlen);
#else
	(void)q, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

#ifdef HAVE_LIBPQ
/* Sends a row read (op freed on failure). */
static int
ssp_row_send(struct store *st, struct ssp_row_op *op, const struct pg_query *q,
    char *err, size_t errlen)
{
	return store_pg_read(st, q, ssp_row_answer, op, err, errlen);
}
#endif

int
store_session_auth_pg(struct store *st, const struct session_check *c,
    store_token_auth_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char b[2][24];
	const char *v[3] = {c->hash, pgr_i64(b[0], c->now, false),
	    pgr_i64(b[1], c->idle_ms, false)};
	struct ssp_row_op *op;

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	op = xcalloc(1, sizeof(*op));
	op->auth = fn;
	op->arg = arg;
	return ssp_row_send(st, op,
	    &(struct pg_query){.sql = ssp_sql_session_auth,
		.nparams = 3,
		.values = v},
	    err, errlen);
#else
	(void)c, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_staff_by_email_pg(struct store *st, const char *email,
    store_staff_row_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	const char *v[1] = {email};
	struct ssp_row_op *op;

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	op = xcalloc(1, sizeof(*op));
	op->row = fn;
	op->arg = arg;
	return ssp_row_send(st, op,
	    &(struct pg_query){.sql = ssp_sql_by_email,
		.nparams = 1,
		.values = v},
	    err, errlen);
#else
	(void)email, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_session_touch_pg(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen)
{
#ifdef HAVE_LIBPQ
	char b[2][24];
	const char *v[2] = {pgr_i64(b[0], id, false),
	    pgr_i64(b[1], now, false)};

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	return store_pg_group_send(st,
	    &(struct pg_query){.sql = ssp_sql_touch, .nparams = 2, .values = v},
	    err, errlen);
#else
	(void)id, (void)now;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_session_create_pg(struct store *st, const struct session_new *n,
    store_staff_done_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char b[3][24];
	const char *v[6] = {pgr_i64(b[0], n->staff_id, false), n->id_hash,
	    n->via, n->peer, pgr_i64(b[1], n->now, false),
	    pgr_i64(b[2], n->expires_at, false)};

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	return ssp_write(st, ssp_write_new(0, fn, arg),
	    &(struct pg_query){.sql = ssp_sql_session_new,
		.nparams = 6,
		.values = v},
	    err, errlen);
#else
	(void)n, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_session_revoke_pg(struct store *st, const struct session_revoke *r,
    store_staff_done_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char b[4][24];
	const char *v[4] = {pgr_i64(b[0], r->id, false),
	    pgr_i64(b[1], r->now, false), pgr_i64(b[2], r->idle_ms, false),
	    pgr_i64(b[3], r->by, false)};

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	return ssp_write(st, ssp_write_new(1, fn, arg),
	    &(struct pg_query){.sql = ssp_sql_session_revoke,
		.nparams = 4,
		.values = v},
	    err, errlen);
#else
	(void)r, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_staff_create_pg(struct store *st, const struct staff_new *n,
    store_staff_done_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char now[24];
	const char *v[5] = {n->name, n->email, n->role, n->password_hash,
	    pgr_i64(now, n->now, false)};

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	return ssp_write(st, ssp_write_new(2, fn, arg),
	    &(struct pg_query){.sql = ssp_sql_staff_new,
		.nparams = 5,
		.values = v},
	    err, errlen);
#else
	(void)n, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_staff_update_pg(struct store *st, const struct staff_update *u,
    store_staff_done_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	const struct staff_patch *p = u->patch;
	char b[3][24];
	const char *v[11] = {pgr_i64(b[0], u->id, false),
	    p->set_name ? "1" : "0", p->name, p->set_role ? "1" : "0", p->role,
	    p->set_password ? "1" : "0", p->password_hash,
	    p->set_disabled ? "1" : "0", p->disabled ? "1" : "0",
	    pgr_i64(b[1], p->now, false),
	    pgr_i64(b[2], p->keep_session, false)};

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	if (store_pg_group_send(st, &(struct pg_query){.sql = SSP_ADMIN_LOCK},
		err, errlen) == -1)
		return -1;
	return ssp_write(st, ssp_write_new(3, fn, arg),
	    &(struct pg_query){.sql = ssp_sql_staff_update,
		.nparams = 11,
		.values = v},
	    err, errlen);
#else
	(void)u, (void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

#ifdef HAVE_LIBPQ
/* Sends a counts read (op's): 0, or -1 with err (op is freed). */
static int
ssp_counts_send(struct store *st, const char *sql, struct ssp_counts_op *op,
    char *err, size_t errlen)
{
	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = sql,
		    .flags = PG_IDEMPOTENT,
		    .done = ssp_counts_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	return 0;
}
#endif

int
store_status_counts_pg(struct store *st, store_status_counts_fn *fn, void *arg,
    char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	struct ssp_counts_op *op;

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	op = xcalloc(1, sizeof(*op));
	op->fn = fn;
	op->arg = arg;
	return ssp_counts_send(st, ssp_sql_counts, op, err, errlen);
#else
	(void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}

int
store_metrics_gauges_pg(struct store *st, store_gauges_fn *fn, void *arg,
    char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	struct ssp_counts_op *op;

	if (ssp_need_pg(st, err, errlen) == -1)
		return -1;
	op = xcalloc(1, sizeof(*op));
	op->gfn = fn;
	op->arg = arg;
	return ssp_counts_send(st, ssp_sql_gauges, op, err, errlen);
#else
	(void)fn, (void)arg;
	return ssp_need_pg(st, err, errlen);
#endif
}
