/*
 * pg_migrate.h - brings a PostgreSQL database to this build's schema
 * (queue/schema/pg/NNN_name.sql, embedded as pg_migrations[]), and the
 * durability check every store connection makes: issue 13,
 * doc/postgresql.md. Built only with libpq (HAVE_LIBPQ). Nothing in the
 * daemon calls it yet: the PostgreSQL store will, at start (pg_migrate)
 * and on each connection's PG_UP (pg_check_durability).
 *
 * Contract:
 *  - Asynchronous, through queue/pg.c on the caller's loop: never blocks.
 *    Both functions either return -1 with err (nothing sent, the callback
 *    never runs) or return 0 and run their callback exactly once, later
 *    (from pg_free() too, with the error "closed", if the connection is
 *    freed first).
 *  - pg_migrate() applies each migration newer than the database's
 *    version in its own transaction, holding the advisory lock
 *    PG_MIGRATE_LOCK_KEY, together with its row in schema_version: any
 *    number of nodes may run it at once on one database, each migration
 *    is applied once, and the others wait for the lock and then see the
 *    new version. A migration that fails rolls back entirely (the
 *    database stays at the version before it) and ends the run with the
 *    error. A database newer than the list is refused, unchanged.
 *  - It first runs pg_check_durability()'s check on the same connection
 *    and refuses, before any change, when it fails.
 *  - The callbacks may call pg_send() (not pg_free()).
 */
#ifndef OD_PG_MIGRATE_H
#define OD_PG_MIGRATE_H

#include <stddef.h>

#include "pg.h"
#include "store-internal.h"

/*
 * The key of pg_advisory_xact_lock() that serializes migrations: the
 * ASCII bytes "odmigrat" as a big-endian integer. Other advisory locks of
 * the store must use other keys.
 */
#define PG_MIGRATE_LOCK_KEY "8026660735355609460"

/* Generated from queue/schema/pg/NNN_name.sql; ends with {0, NULL, NULL}. */
extern const struct store_migration pg_migrations[];

struct pg_migrate_result {
	const char *error; /* NULL on success; else one line */
	int version;	   /* the database's schema version at the end */
	int applied;	   /* migrations this run applied (0: up to date) */
};

typedef void pg_migrate_fn(void *arg, const struct pg_migrate_result *r);

struct pg_migrate_req {
	/* In increasing version order, ended by {0, NULL, NULL}; NULL means
	 * pg_migrations (tests pass their own lists). */
	const struct store_migration *migrations;
	const char *node; /* recorded as schema_version.applied_by */
	pg_migrate_fn *done;
	void *arg;
};

/*
 * Starts bringing pg's database up to the newest of req->migrations.
 * -1 with err when the list is empty or out of order, or pg_send()
 * refuses.
 */
int pg_migrate(struct pg *pg, const struct pg_migrate_req *req, char *err,
    size_t errlen);

/*
 * Checks that a COMMIT on this connection waits for the WAL flush
 * (synchronous_commit is not off): the 202s and webhook 200s the store
 * sends after a COMMIT promise that much. done(arg, NULL) if so, else
 * done(arg, why). 0, or -1 with err if pg_send() refuses.
 */
typedef void pg_check_fn(void *arg, const char *error);
int pg_check_durability(struct pg *pg, pg_check_fn *done, void *arg, char *err,
    size_t errlen);

#endif
