/*
 * store_logins_pg.c - the failed-login counts every node of a PostgreSQL
 * store shares (store_logins_pg.h).
 *
 * DESIGN
 *
 * A node counts failed logins per account and per client address
 * (daemon/auth.c's limiter: 5 and 20, then a lockout that doubles). On
 * one SQLite node the counts live in its memory. Behind a load balancer
 * that spreads a client's attempts over N nodes, memory alone would give
 * it N times as many tries, so on PostgreSQL the counts are also kept in
 * the table login_failures (migration 014), one row per key:
 *
 *  - Before a login is tried, its node reads the rows of the attempt's
 *    keys (one read outside the group, a primary-key lookup of two) and
 *    sets them in its own limiter, which then decides as on SQLite. The
 *    rows are the count: a node answers a failed attempt only after its
 *    upsert committed, and a success on another node deleted the
 *    account's row, so a key without a row has no failures.
 *  - A failure is one upsert in the node's group, and its 401 waits for
 *    the group's commit: a new key starts at 1;
 *    a key whose last failure is older than the limiter's memory starts
 *    over at 1; any other adds one. The keys are written in sorted order,
 *    so two groups upserting the same two keys take their row locks in
 *    the same order. A failed group only loses that failure (the count is
 *    lower by one), it never locks anyone out.
 *  - A successful password or token login deletes its account's row
 *    (the address's count stays, as in memory).
 *  - Rows whose last failure is past the memory are deleted by their own
 *    statement outside the group, at most once a minute per node
 *    (daemon/staff.c decides when): a cleanup must never fail the writes
 *    of other requests.
 *
 * Attempts that race (several in flight at once, each read before any
 * failure committed) may together pass the limit by their number, as
 * they do in one node's memory while the password hashes run.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"
#include "store_logins_pg.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"

#define SLG_MAX 2 /* keys per call */

static const char slg_sql_counts[] =
    "SELECT key, failures, last_fail FROM login_failures"
    " WHERE key IN ($1, $2) AND last_fail >= $3";

static const char slg_sql_failed[] =
    "INSERT INTO login_failures (key, failures, last_fail)"
    " SELECT k, 1, $3::bigint FROM unnest(ARRAY[$1, $2]::text[]) AS k"
    " WHERE k IS NOT NULL ORDER BY k"
    " ON CONFLICT (key) DO UPDATE SET"
    " failures = CASE WHEN login_failures.last_fail < $4::bigint THEN 1"
    " ELSE login_failures.failures + 1 END,"
    " last_fail = GREATEST(login_failures.last_fail, EXCLUDED.last_fail)";

static const char slg_sql_cleared[] =
    "DELETE FROM login_failures WHERE key = $1";

static const char slg_sql_forget[] =
    "DELETE FROM login_failures WHERE last_fail < $1";

struct slg_read {
	store_login_counts_fn *fn;
	void *arg;
};

static void
slg_counts_answer(void *arg, const struct pg_answer *a)
{
	struct slg_read *op = arg;
	struct login_count c[SLG_MAX];
	int i, n = 0;

	if (a->error != NULL) {
		op->fn(op->arg, NULL, 0, a->error);
		free(op);
		return;
	}
	for (i = 0; i < PQntuples(a->res) && n < SLG_MAX; i++, n++) {
		c[n].key = PQgetvalue(a->res, i, 0);
		c[n].failures = (unsigned)pgr_get_i64(a->res, i, 1);
		c[n].last_fail = pgr_get_i64(a->res, i, 2);
	}
	op->fn(op->arg, c, (size_t)n, NULL);
	free(op);
}
#endif

int
store_login_counts_pg(struct store *st, const struct login_keys *k,
    store_login_counts_fn *fn, void *arg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	char b[24];
	const char *v[3] = {k->key[0], k->key[1], pgr_i64(b, k->since, false)};
	struct slg_read *op;

	if (store_postgresql_only(st, "the shared login counts", err, errlen) ==
	    -1)
		return -1;
	op = xcalloc(1, sizeof(*op));
	op->fn = fn;
	op->arg = arg;
	return store_pg_read(st,
	    &(struct pg_query){.sql = slg_sql_counts,
		.nparams = 3,
		.values = v},
	    slg_counts_answer, op, err, errlen);
#else
	(void)st, (void)k, (void)fn, (void)arg;
	return store_no_libpq(err, errlen);
#endif
}

int
store_login_failed_pg(struct store *st, const struct login_keys *k, char *err,
    size_t errlen)
{
#ifdef HAVE_LIBPQ
	char b[2][24];
	const char *v[4] = {k->key[0], k->key[1], pgr_i64(b[0], k->now, false),
	    pgr_i64(b[1], k->since, false)};

	if (store_postgresql_only(st, "the shared login counts", err, errlen) ==
	    -1)
		return -1;
	return store_pg_group_send(st,
	    &(struct pg_query){.sql = slg_sql_failed,
		.nparams = 4,
		.values = v},
	    err, errlen);
#else
	(void)st, (void)k;
	return store_no_libpq(err, errlen);
#endif
}

int
store_login_cleared_pg(struct store *st, const char *key, char *err,
    size_t errlen)
{
#ifdef HAVE_LIBPQ
	const char *v[1] = {key};

	if (store_postgresql_only(st, "the shared login counts", err, errlen) ==
	    -1)
		return -1;
	return store_pg_group_send(st,
	    &(struct pg_query){.sql = slg_sql_cleared,
		.nparams = 1,
		.values = v},
	    err, errlen);
#else
	(void)st, (void)key;
	return store_no_libpq(err, errlen);
#endif
}

int
store_login_forget_pg(struct store *st, const struct login_keys *k, char *err,
    size_t errlen)
{
#ifdef HAVE_LIBPQ
	char b[24];
	const char *v[1] = {pgr_i64(b, k->since, false)};

	if (store_postgresql_only(st, "the shared login counts", err, errlen) ==
	    -1)
		return -1;
	return pg_send(store_pg_conn(st),
	    &(struct pg_query){.sql = slg_sql_forget,
		.nparams = 1,
		.values = v,
		.flags = PG_IDEMPOTENT},
	    err, errlen);
#else
	(void)st, (void)k;
	return store_no_libpq(err, errlen);
#endif
}
