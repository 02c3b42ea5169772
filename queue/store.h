/*
 * store.h - the durable store (SQLite in WAL mode, or PostgreSQL shared by
 * several nodes: doc/postgresql.md): open, migrate, and group commit.
 *
 * Contract:
 *  - One struct store per process, used from the loop thread only: the
 *    store has exactly one writer (doc/architecture.md). store_open() takes an
 *    exclusive lock on "<path>.lock"; a second daemon on the same file
 *    fails with a clear message.
 *  - Group commit (doc/queue.md): the first write of a loop turn opens a
 *    transaction; it is committed once at the end of that turn (or after
 *    commit_delay_ms). Callers that must acknowledge durability register
 *    store_on_commit() and reply from the callback, never before: it runs
 *    only once the group is on disk (fsynced).
 *  - An operation that fails after it changed rows fails its whole group:
 *    every callback of that group gets ok = false. Callbacks registered
 *    while no group is open always get ok = true.
 *  - Call store_close() before event_base_free().
 *  - Other modules never see SQLite: all SQL lives in queue/.
 *  - PostgreSQL (store_open_config()): the same contract, with the group
 *    a pipelined BEGIN ... COMMIT (queue/store_pg.c): callbacks run on the
 *    COMMIT's answer, in the order of the groups; a COMMIT lost with the
 *    connection counts as failed. store_flush() and store_close() run the
 *    loop until every group is answered, so they must not be called from
 *    inside it (store_flush() then returns -1). store_ping() is 0 while
 *    the group connection is up. The SQLite-only internals
 *    (store-internal.h) refuse with "... not available on the PostgreSQL
 *    store yet".
 *  - Errors: 0 / -1 with text in err; nothing here logs its own failures.
 */
#ifndef OD_STORE_H
#define OD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;

enum store_backend { STORE_SQLITE = 0, STORE_POSTGRESQL = 1 };

/* What store_open_config() opens. */
struct store_config {
	enum store_backend backend;
	const char *path; /* SQLite: the database file */
	const char *url;  /* PostgreSQL: a libpq URI or key=value string */
	const char *node; /* PostgreSQL: this node's name */
	struct event_base *base;     /* PostgreSQL: the loop (required) */
	unsigned connect_timeout_ms; /* PostgreSQL: open gives up after; 0 =
					10000 */
};

/*
 * Called once after the group transaction that was open when it was
 * registered commits (ok = true) or fails and is rolled back (ok = false).
 * Runs on the loop thread.
 */
typedef void store_commit_fn(void *arg, bool ok);

struct store_stats {
	uint64_t commits; /* group commits done */
	uint64_t commit_failures;
	uint64_t commit_us_sum; /* total time in COMMIT, microseconds */
	uint64_t commit_us_max;
	uint64_t writes; /* write operations (store_write_begin
			  * calls) in committed groups */
	bool pipelined;	 /* fsyncs run on the syncer thread */
	uint64_t syncs;	 /* WAL fdatasyncs by that thread */
	uint64_t sync_us_sum;
	uint64_t sync_us_max;
};

/*
 * Opens (creating if needed) the database at 'path', takes the lock, sets
 * WAL + synchronous=FULL + foreign keys, and migrates the schema to the
 * newest version (PRAGMA user_version). Returns the store, or NULL with the
 * reason in err.
 */
struct store *store_open(const char *path, char *err, size_t errlen);
/*
 * store_open() for either backend (STORE_SQLITE: store_open(cfg->path)).
 * For PostgreSQL it connects (two connections: the group's and the
 * queue's), checks durability on both (synchronous_commit off is
 * refused), migrates, and starts the node (pgq_start(): its previous
 * life's claims are recovered; a second live process with the same node
 * name is refused), running cfg->base until done or connect_timeout_ms:
 * allowed because nothing is served before the store is open. Without
 * libpq: NULL with "this outreachd was built without PostgreSQL support
 * (libpq-dev)".
 */
struct store *store_open_config(const struct store_config *cfg, char *err,
    size_t errlen);
/* Which backend st runs on. */
enum store_backend store_backend(const struct store *st);
/*
 * Schedules group commits on 'base': a commit runs at the end of the loop
 * turn that made the first write, or commit_delay_ms later if non-zero.
 * It also starts the syncer thread (pipelined durability, see store.c):
 * COMMIT no longer fsyncs on the loop thread; callbacks run once the
 * syncer's fdatasync of the WAL covers their group. Without
 * store_attach() (unit tests) only store_flush() commits, with
 * synchronous=FULL. On PostgreSQL, 'base' must be the loop the store was
 * opened on (groups commit on it from the open on); store_attach() sets
 * commit_delay_ms and starts the node duties: pgq_heartbeat() and
 * pgq_sweep() every second.
 */
void store_attach(struct store *st, struct event_base *base,
    unsigned commit_delay_ms);
/*
 * Registers cb to run when the currently open group transaction commits.
 * If no transaction is open the write it guards is already durable, and cb
 * runs from the loop on the next turn (or at the next store_flush()).
 */
void store_on_commit(struct store *st, store_commit_fn *cb, void *arg);
/*
 * Commits the open group transaction now, waits until every committed
 * group is on disk, and runs the callbacks.
 */
int store_flush(struct store *st, char *err, size_t errlen);
/*
 * Rolls the open group transaction back: every write since the group
 * began is undone and each of its callbacks gets ok = false. For a step
 * that failed after an earlier step's writes must not stand alone (a
 * received text stored but not routed: the provider's retry must find
 * nothing and route it then). No-op when no group is open.
 */
void store_abort_group(struct store *st);
/* True while a group transaction is open (writes not yet durable). */
bool store_in_transaction(const struct store *st);
/* Counters for /metrics. */
void store_get_stats(struct store *st, struct store_stats *out);
/* A cheap read that proves the database answers (for /healthz). */
int store_ping(struct store *st, char *err, size_t errlen);
/* The schema version after migration. */
int store_schema_version(struct store *st);
/*
 * Flushes, finalizes statements, closes the database and releases the
 * lock. Pending on-commit callbacks run (ok = true after a good flush,
 * false otherwise). NULL is a no-op.
 */
void store_close(struct store *st);

#endif
