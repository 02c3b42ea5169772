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
 *  - On a PostgreSQL store (store_backend()) the SQLite functions fail
 *    with "... is not available on the PostgreSQL store yet"; its writes go
 *    through store_pg_group_send() (queue/store_pg.c).
 */
#ifndef OD_STORE_INTERNAL_H
#define OD_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

#include "store.h"
#ifdef HAVE_LIBPQ
#include "pg.h"
#endif

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

/*
 * A list of store_on_commit() callbacks (store.c, store_pg.c).
 * store_cblist_run() takes the list first (callbacks may add to it), runs
 * each with ok, counting itself in *depth meanwhile, and frees it.
 */
struct store_cb {
	store_commit_fn *fn;
	void *arg;
};
struct store_cblist {
	struct store_cb *v;
	size_t n;
	size_t cap;
};
void store_cblist_add(struct store_cblist *l, store_commit_fn *cb, void *arg);
void store_cblist_run(struct store_cblist *l, int *depth, bool ok);

/*
 * On a PostgreSQL store the SQLite-only internals above fail cleanly:
 * store_db() returns NULL, store_stmt() NULL and store_write_begin(),
 * store_defer_id() -1, with err "<what> is not available on the
 * PostgreSQL store yet". store_sqlite_only() writes that text for 'what' and
 * returns -1 when st is PostgreSQL, else returns 0: the guard of a
 * SQLite-only function.
 */
int store_sqlite_only(struct store *st, const char *what, char *err,
    size_t errlen);
/*
 * The twin guard of a PostgreSQL-only function: -1 with "<what> is for
 * the PostgreSQL store only" when st is SQLite, else 0. A store can only
 * be PostgreSQL in a build with libpq; the PostgreSQL halves built
 * without it answer store_no_libpq(): -1 with STORE_NO_LIBPQ in err.
 */
int store_postgresql_only(struct store *st, const char *what, char *err,
    size_t errlen);
#define STORE_NO_LIBPQ \
	"this outreachd was built without PostgreSQL support (libpq-dev)"
int store_no_libpq(char *err, size_t errlen);

#ifdef HAVE_LIBPQ
struct pg_queue;

/*
 * The group connection: statements sent here with pg_send() run outside
 * any group (autocommit, seeing committed data only): a group reaches
 * the driver whole (BEGIN, statements, COMMIT) at its commit point, so
 * nothing sent here can land inside one. Use it for reads that need no
 * group. Answers come in the order sent, groups included. Do not keep it
 * across store_close(). NULL on a SQLite store.
 */
struct pg *store_pg_conn(struct store *st);
/*
 * A read on store_pg_conn(): q with done(arg), resent after a
 * reconnection (PG_IDEMPOTENT). 0, or -1 with err when it could not be
 * sent; arg (one plain allocation) is then freed and done never runs.
 */
int store_pg_read(struct store *st, const struct pg_query *q, pg_done_fn *done,
    void *arg, char *err, size_t errlen);
/*
 * The node's bulk connection, opened on first use: a background job's own
 * transactions (BEGIN ... COMMIT sent on it, an import's piece), so that
 * they neither wait inside the node's groups nor hold them up. What a
 * lost connection had queued goes out on the next one outside the
 * transaction (pg.h): guard each statement. store_close() waits for what
 * is in flight on it. NULL on a SQLite store or while closing.
 */
struct pg *store_pg_bulk(struct store *st);
/*
 * The node's shared queue (queue/pg_queue.c) on its OWN connection, so
 * its one-statement operations never run inside a group transaction.
 * Started (node id known) once store_open_config() returned. NULL on a
 * SQLite store.
 */
struct pg_queue *store_pg_queue(struct store *st);
/*
 * Adds q to the open group transaction, opening the group if none is open
 * and scheduling its commit at the end of the loop turn (or
 * commit_delay_ms later), like store_write_begin(). q is copied; at the
 * commit point the group goes out as BEGIN, its statements in order,
 * COMMIT. q->done runs exactly once with the statement's answer, before
 * the group's store_on_commit() callbacks (a RETURNING id is read there);
 * a statement sent from it joins the next group. An error answer fails
 * the whole group: every store_on_commit() callback of the group gets ok
 * = false and nothing of it is stored. So a write that may conflict must
 * not raise an error (INSERT ... ON CONFLICT DO NOTHING RETURNING id).
 * q->flags: 0 or PG_PREPARE (PG_IDEMPOTENT, PG_SIMPLE refused). 0, or
 * -1 with err (nothing queued).
 */
int store_pg_group_send(struct store *st, const struct pg_query *q, char *err,
    size_t errlen);

/*
 * Between store.c and store_pg.c only: the PostgreSQL store's state
 * (struct store_pg, queue/store_pg.c), which struct store points to, and
 * the public store functions' PostgreSQL halves, which store.c calls when
 * st is PostgreSQL. See store.h for what each one does.
 */
struct store_pg;
struct store_pg *store_pg_state(struct store *st);
struct store_pg *spg_open(const struct store_config *cfg, int *schema_version,
    char *err, size_t errlen);
void spg_attach(struct store_pg *sp, unsigned commit_delay_ms);
void spg_on_commit(struct store_pg *sp, store_commit_fn *cb, void *arg);
int spg_flush(struct store_pg *sp, char *err, size_t errlen);
void spg_abort_group(struct store_pg *sp);
bool spg_in_transaction(const struct store_pg *sp);
void spg_get_stats(const struct store_pg *sp, struct store_stats *out);
int spg_ping(struct store_pg *sp, char *err, size_t errlen);
void spg_close(struct store_pg *sp);
#endif

#endif
