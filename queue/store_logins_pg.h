/*
 * store_logins_pg.h - failed logins counted by every node of a
 * PostgreSQL store (issue 13, doc/postgresql.md "Logins and sessions on
 * any node"): the counts a login reads before it is tried, a failure
 * added to them, a success that clears its account's count.
 *
 * Contract:
 *  - A key is the limiter's ("account:EMAIL", "peer:ADDRESS"); up to
 *    two per call, a NULL one is left out.
 *  - store_login_counts_pg(): one read outside the group; fn runs
 *    exactly once, from the loop, with the keys' counts whose last
 *    failure is at or after k->since (n may be 0), or with error.
 *  - store_login_failed_pg(), store_login_cleared_pg(): one statement in
 *    the node's group, answered by nothing (a failed group is logged by
 *    the store; the count is then lower by one, never wrong the other
 *    way). They cannot fail in an expected way (upsert, delete).
 *  - store_login_forget_pg(): deletes the rows whose last failure is
 *    before k->since, as its own transaction outside the group.
 *  - -1 with err when nothing was sent (fn is not called); on SQLite
 *    (the node counts in memory) and in a build without libpq too.
 *  - Loop thread only.
 */
#ifndef OD_STORE_LOGINS_PG_H
#define OD_STORE_LOGINS_PG_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct login_keys {
	const char *key[2]; /* NULL = none */
	int64_t now;	    /* the failure's time, ms */
	int64_t since;	    /* failures before this no longer count, ms */
};

struct login_count {
	const char *key; /* valid during the callback */
	unsigned failures;
	int64_t last_fail;
};

typedef void store_login_counts_fn(void *arg, const struct login_count *c,
    size_t n, const char *error);

int store_login_counts_pg(struct store *st, const struct login_keys *k,
    store_login_counts_fn *fn, void *arg, char *err, size_t errlen);
int store_login_failed_pg(struct store *st, const struct login_keys *k,
    char *err, size_t errlen);
int store_login_cleared_pg(struct store *st, const char *key, char *err,
    size_t errlen);
int store_login_forget_pg(struct store *st, const struct login_keys *k,
    char *err, size_t errlen);

#endif
