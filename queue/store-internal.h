/*
 * store-internal.h - what queue/ modules share about the store. Only files
 * in queue/ include it; it and queue-internal.h (which builds on it) are
 * the only headers where SQLite types appear.
 *
 * Contract:
 *  - store_stmt() returns a cached prepared statement for a SQL string
 *    literal, reset and with bindings cleared; the cache is keyed by the
 *    string's address, so always pass the same static literal.
 *  - store_write_begin() must be called before any write: it opens the
 *    group transaction if none is open and schedules its commit.
 */
#ifndef OD_STORE_INTERNAL_H
#define OD_STORE_INTERNAL_H

#include <stddef.h>

#include <sqlite3.h>

#include "store.h"

struct store_migration {
	int version;
	const char *name;
	const char *sql;
};

/* Generated from queue/schema/NNN_name.sql; ends with { 0, NULL, NULL }. */
extern const struct store_migration store_migrations[];

/* The connection, for queue/ modules only. */
sqlite3 *store_db(struct store *st);
/*
 * The prepared statement for 'sql' (a string literal), prepared on first
 * use with SQLITE_PREPARE_PERSISTENT. NULL with the SQLite error in err.
 */
sqlite3_stmt *store_stmt(struct store *st, const char *sql, char *err,
    size_t errlen);
/* Opens the group transaction if needed; counts one write. 0 / -1. */
int store_write_begin(struct store *st, char *err, size_t errlen);
/*
 * Defers work on row 'id' to the group's commit point: 'sql' (a string
 * literal, the cache key as for store_stmt()) runs once per group, inside
 * the group's transaction just before its COMMIT, with ?1 bound to the
 * JSON array of the ids deferred to it ("[12,13]"; read it with
 * json_each(?1)). For a statement whose cost is per call rather than per
 * row: an FTS5 insert writes an index segment at every later statement
 * savepoint (queue/schema/008_fts_batch.sql). Its failure fails the
 * group; a rolled-back group forgets its ids. Opens the group like
 * store_write_begin(). 0 / -1.
 */
int store_defer_id(struct store *st, const char *sql, int64_t id, char *err,
    size_t errlen);
/*
 * The hook queue.c calls on each state change of a conversation message
 * (queue_observe(), queue.h); fn NULL = none. Kept on the store.
 */
struct queue_change;
struct store_hook {
	void (*fn)(void *arg, const struct queue_change *c);
	void *arg;
};
struct store_hook *store_msg_hook(struct store *st);
/* Writes the connection's last error as "what: sqlite message" into err. */
void store_errmsg(struct store *st, const char *what, char *err, size_t errlen);

#endif
