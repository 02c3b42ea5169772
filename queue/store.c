/*
 * store.c - the durable store: SQLite in WAL mode behind an exclusive
 * lock file, schema migrations, a prepared-statement cache and group
 * commit.
 *
 * Group commit (doc/queue.md) is what makes synchronous=FULL affordable: the
 * first write of a loop turn opens "BEGIN IMMEDIATE", every later write
 * of that turn joins it, and one COMMIT (one fsync of the WAL) at the end
 * of the turn makes them all durable together. Callers that acknowledge
 * durability (API 202, webhook 200) register store_on_commit() and answer
 * from the callback. The commit is a store-owned libevent event that is
 * made active (commit_delay_ms == 0) so that it runs after the callbacks
 * already active in this turn, or a timer (commit_delay_ms > 0).
 *
 * Pipelined durability. Once attached to a loop, the fsync moves off the
 * loop thread: the connection runs with synchronous=NORMAL, so COMMIT
 * writes the group's WAL frames without an fsync, and a syncer thread
 * then fdatasync()s the WAL file. A group's callbacks run only after an
 * fdatasync that started after that group's COMMIT returned, so an
 * acknowledgement still means "on disk", exactly as with synchronous=FULL;
 * meanwhile the loop keeps serving and gathering the next group, and one
 * fsync covers every group committed before it began. While committed
 * groups wait for their fsync, the next group is not committed at the end
 * of its turn but held open, gathering the following turns' writes, and
 * committed when that fsync ends (its own fsync could not start sooner):
 * under load the groups grow with the fsync time instead of staying one
 * turn's worth, and each page is written to the WAL once per group.
 * Checkpoints stay in SQLite's hands: in WAL mode, NORMAL still syncs the
 * WAL before every checkpoint and the database after it, and the WAL
 * header before the file is reused, so a restarted WAL never overwrites
 * frames whose pages are not yet on disk
 * (sqlite.org/pragma.html#pragma_synchronous).
 *
 * Ownership: the store owns its connection, statements, lock file
 * descriptor and commit event; store_close() releases all of them and must
 * run before the event_base it was attached to is freed.
 */
#include "autoconf.h"

#include <sys/file.h>
#include <sys/time.h>

#include <pthread.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "compat.h"
#include "log.h"
#include "store-internal.h"
#include "xmalloc.h"

#define STORE_BUSY_TIMEOUT_MS 5000 /* waits out an outside sqlite3 shell */
#define STORE_STMT_SLOTS_MIN  64   /* the queue uses about 30 statements */
#define STORE_CLOSE_ROUNDS    16   /* callbacks that keep writing at close */
#define STORE_DEFER_MAX	      4	   /* deferred statements (store_defer_id) */

/* One cached statement; the key is the address of its SQL literal. */
struct store_slot {
	const char *sql;
	sqlite3_stmt *stmt;
};

/* The ids a deferred statement runs on at the group's commit. */
struct store_defer {
	const char *sql; /* the literal; NULL = slot free */
	int64_t *ids;
	size_t n;
	size_t cap;
};

/* A committed group waiting for its fdatasync (pipelined stores). */
struct store_wait {
	uint64_t seq;
	struct store_cblist cbs;
	struct store_wait *next;
};

/*
 * The syncer thread's side. Fields marked (mu) are shared with the loop
 * thread under 'mu'; the thread never touches SQLite or libevent.
 */
struct store_syncer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int wal_fd;  /* "<path>-wal", for fdatasync */
	int wake[2]; /* pipe: syncer -> loop, "a sync finished" */
	struct event *wake_ev;
	uint64_t want;	      /* (mu) newest group committed */
	uint64_t done;	      /* (mu) newest group known durable */
	int error;	      /* (mu) errno of a failed fdatasync */
	bool stop;	      /* (mu) */
	uint64_t syncs;	      /* (mu) stats */
	uint64_t sync_us_sum; /* (mu) */
	uint64_t sync_us_max; /* (mu) */
};

struct store {
	sqlite3 *db;	     /* NULL on a PostgreSQL store */
	struct store_pg *pg; /* the PostgreSQL store (store_pg.c), or NULL */
	char *path;
	int lock_fd;
	int schema_version;

	struct store_slot *slots; /* open addressing, power-of-two size */
	size_t nslots;
	size_t nused;

	struct event *commit_ev; /* NULL until store_attach() */
	unsigned commit_delay_ms;
	bool commit_scheduled;
	bool commit_held; /* waits for the fsync in flight (store_commit_cb) */
	int committing;	  /* depth of callback runs in progress */

	struct store_syncer *syncer;  /* NULL: COMMIT itself fsyncs */
	uint64_t group_seq;	      /* last committed group */
	struct store_wait *wait_head; /* committed, not yet durable */
	struct store_wait *wait_tail;

	bool in_txn;	   /* our group transaction is open */
	bool group_failed; /* SQLite dropped the group: roll back, ok=false */
	uint64_t group_writes;
	struct store_cblist pending; /* callbacks of the open group */
	struct store_cblist durable; /* registered with no group open */
	struct store_defer defer[STORE_DEFER_MAX]; /* run before COMMIT */
	char *defer_json;			   /* their ?1, reused */
	size_t defer_json_cap;
	struct store_stats stats;
	struct store_hook msg_hook; /* queue_observe(); fn NULL = none */
};

static const char store_sql_begin[] = "BEGIN IMMEDIATE";
static const char store_sql_commit[] = "COMMIT";
static const char store_sql_rollback[] = "ROLLBACK";
static const char store_sql_ping[] = "SELECT 1 FROM sqlite_schema LIMIT 1";

static int store_lock(struct store *, char *, size_t);
static int store_pragmas(struct store *, char *, size_t);
static int store_pragma_wal(struct store *, char *, size_t);
static int store_migrate(struct store *, char *, size_t);
static int store_migrate_one(struct store *, const struct store_migration *,
    char *, size_t);
static int store_user_version(struct store *, int *, char *, size_t);
static int store_bump_schema_version(struct store *);
static size_t store_hash(const void *);
static struct store_slot *store_slot_find(struct store_slot *, size_t,
    const char *);
static void store_slots_grow(struct store *);
static int store_exec_cached(struct store *, const char *, char *, size_t);
static void store_schedule(struct store *);
static void store_commit_cb(evutil_socket_t, short, void *);
static int store_commit_group(struct store *, bool, char *, size_t);
static int store_commit_txn(struct store *, char *, size_t);
static void store_rollback(struct store *);
static int store_defer_run(struct store *, char *, size_t);
static void store_defer_clear(struct store *);
static void store_run_callbacks(struct store *, bool);
static uint64_t store_elapsed_us(const struct timespec *,
    const struct timespec *);
static void store_destroy(struct store *);
static void store_syncer_start(struct store *, struct event_base *);
static void store_syncer_stop(struct store *);
static void *store_syncer_main(void *);
static void store_on_synced(evutil_socket_t, short, void *);
static void store_sync_reached(struct store *, uint64_t);
static void store_wait_push(struct store *);

/*
 * SQLite keeps memory statistics by default, taking a global mutex on
 * every allocation; nothing here reads them (sqlite3_status()), and they
 * cost about 3% of a durable enqueue's instructions. sqlite3_config() is
 * only allowed before SQLite initialises itself, hence once, before the
 * first open; a later call would fail harmlessly with SQLITE_MISUSE.
 */
static pthread_once_t sqlite_config_once = PTHREAD_ONCE_INIT;

static void
store_sqlite_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/*
 * Opens the store at 'path'. The order matters: the lock comes first so a
 * second daemon never touches a database that another one is writing, and
 * WAL must be in place before the migrations write anything.
 */
struct store *
store_open(const char *path, char *err, size_t errlen)
{
	struct store *st;
	int flags =
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

	st = xcalloc(1, sizeof(*st));
	st->lock_fd = -1;
	st->path = xstrdup(path);
	st->nslots = STORE_STMT_SLOTS_MIN;
	st->slots = xcalloc(st->nslots, sizeof(*st->slots));

	if (store_lock(st, err, errlen) == -1)
		goto fail;
	(void)pthread_once(&sqlite_config_once, store_sqlite_config);
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
		    st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	if (store_pragmas(st, err, errlen) == -1)
		goto fail;
	if (store_migrate(st, err, errlen) == -1)
		goto fail;
	return st;
fail:
	store_destroy(st);
	return NULL;
}

/*
 * Opens either backend. A PostgreSQL store is a struct store with no
 * SQLite connection and its state in st->pg: every public function
 * branches to store_pg.c on it, and the SQLite-only internals refuse
 * (store_sqlite_only()).
 */
struct store *
store_open_config(const struct store_config *cfg, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	struct store *st;
	struct store_pg *sp;
	int version = 0;
#endif

	if (cfg->backend == STORE_SQLITE) {
		if (cfg->path == NULL) {
			snprintf(err, errlen, "store: no database path");
			return NULL;
		}
		return store_open(cfg->path, err, errlen);
	}
#ifdef HAVE_LIBPQ
	if ((sp = spg_open(cfg, &version, err, errlen)) == NULL)
		return NULL;
	st = xcalloc(1, sizeof(*st));
	st->lock_fd = -1;
	st->pg = sp;
	st->path = xstrdup(cfg->node != NULL ? cfg->node : "postgresql");
	st->schema_version = version;
	return st;
#else
	store_no_libpq(err, errlen);
	return NULL;
#endif
}

enum store_backend
store_backend(const struct store *st)
{
	return st->pg != NULL ? STORE_POSTGRESQL : STORE_SQLITE;
}

/* The guard of the SQLite-only internals (store-internal.h). */
int
store_sqlite_only(struct store *st, const char *what, char *err, size_t errlen)
{
	if (st->pg == NULL)
		return 0;
	snprintf(err, errlen, "%s is not available on the PostgreSQL store yet",
	    what);
	return -1;
}

int
store_postgresql_only(struct store *st, const char *what, char *err,
    size_t errlen)
{
	if (st->pg == NULL) {
		snprintf(err, errlen, "%s is for the PostgreSQL store only",
		    what);
		return -1;
	}
	return 0;
}

int
store_no_libpq(char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", STORE_NO_LIBPQ);
	return -1;
}

#ifdef HAVE_LIBPQ
/* The PostgreSQL state, for store_pg.c; NULL on a SQLite store. */
struct store_pg *
store_pg_state(struct store *st)
{
	return st->pg;
}
#endif

/*
 * Takes an exclusive, non-blocking flock on "<path>.lock". The lock dies
 * with the process (kill -9 included), so there is never a stale lock to
 * clean up; the file itself is left in place on purpose (unlinking a lock
 * file races with the next opener).
 */
static int
store_lock(struct store *st, char *err, size_t errlen)
{
	char lockpath[4096];

	if ((size_t)snprintf(lockpath, sizeof(lockpath), "%s.lock", st->path) >=
	    sizeof(lockpath)) {
		snprintf(err, errlen, "database path too long: %s", st->path);
		return -1;
	}
	st->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd == -1) {
		snprintf(err, errlen, "cannot open lock file %s: %s", lockpath,
		    strerror(errno));
		return -1;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen,
			    "database %s is in use by another outreachd process (lock %s)",
			    st->path, lockpath);
		else
			snprintf(err, errlen, "cannot lock %s: %s", lockpath,
			    strerror(errno));
		return -1;
	}
	return 0;
}

static int
store_pragmas(struct store *st, char *err, size_t errlen)
{
	static const char *const pragmas[] = {
	    "PRAGMA synchronous = FULL",
	    "PRAGMA foreign_keys = ON",
	    /*
	     * Statement and savepoint journals, and the temporary tables
	     * of RETURNING and IN (...), stay in memory: on disk they
	     * cost about a dozen pwrite(2) calls per queue operation.
	     */
	    "PRAGMA temp_store = MEMORY",
	};
	size_t i;

	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	if (store_pragma_wal(st, err, errlen) == -1)
		return -1;
	for (i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
		if (sqlite3_exec(st->db, pragmas[i], NULL, NULL, NULL) !=
		    SQLITE_OK) {
			snprintf(err, errlen, "database %s: %s: %s", st->path,
			    pragmas[i], sqlite3_errmsg(st->db));
			return -1;
		}
	}
	return 0;
}

/* WAL can silently not happen (e.g. an in-memory or read-only path). */
static int
store_pragma_wal(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	const unsigned char *mode;
	int rc = -1;

	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &stmt,
		NULL) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_ROW) {
		snprintf(err, errlen, "database %s: cannot enable WAL: %s",
		    st->path, sqlite3_errmsg(st->db));
		goto done;
	}
	mode = sqlite3_column_text(stmt, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		snprintf(err, errlen,
		    "database %s: journal mode is '%s', not 'wal'; put the database on a local file system",
		    st->path, mode != NULL ? (const char *)mode : "?");
		goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(stmt);
	return rc;
}

/*
 * Brings PRAGMA user_version up to the newest store_migrations[] entry,
 * one transaction per migration, and refuses a database written by a
 * newer outreachd (its schema may mean things this build does not know).
 */
static int
store_migrate(struct store *st, char *err, size_t errlen)
{
	const struct store_migration *m;
	int cur;
	int newest = 0;

	if (store_user_version(st, &cur, err, errlen) == -1)
		return -1;
	for (m = store_migrations; m->sql != NULL; m++) {
		if (m->version <= newest) {
			snprintf(err, errlen,
			    "migration %s is out of order (version %d after %d)",
			    m->name, m->version, newest);
			return -1;
		}
		newest = m->version;
	}
	if (cur > newest) {
		snprintf(err, errlen,
		    "database %s: schema version %d is newer than this outreachd supports (%d)",
		    st->path, cur, newest);
		return -1;
	}
	for (m = store_migrations; m->sql != NULL; m++) {
		if (m->version <= cur)
			continue;
		if (store_migrate_one(st, m, err, errlen) == -1)
			return -1;
		cur = m->version;
	}
	st->schema_version = cur;
	return 0;
}

static int
store_migrate_one(struct store *st, const struct store_migration *m, char *err,
    size_t errlen)
{
	char setver[64];

	snprintf(setver, sizeof(setver), "PRAGMA user_version = %d",
	    m->version);
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
		SQLITE_OK ||
	    sqlite3_exec(st->db, m->sql, NULL, NULL, NULL) != SQLITE_OK ||
	    store_bump_schema_version(st) == -1 ||
	    sqlite3_exec(st->db, setver, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "database %s: migration %s failed: %s",
		    st->path, m->name, sqlite3_errmsg(st->db));
		if (!sqlite3_get_autocommit(st->db))
			(void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL,
			    NULL);
		return -1;
	}
	return 0;
}

/*
 * Adds one to PRAGMA schema_version inside the migration's transaction. A
 * migration may edit a table's stored CREATE text directly (010, under
 * writable_schema); SQLite's procedure for that
 * (sqlite.org/lang_altertable.html#otheralter) requires this bump, which
 * makes every connection, this one included, parse the schema again.
 * After an ordinary migration it only costs that parse. On failure the
 * reason is in sqlite3_errmsg().
 */
static int
store_bump_schema_version(struct store *st)
{
	sqlite3_stmt *stmt = NULL;
	char sql[64];
	int version;

	if (sqlite3_prepare_v2(st->db, "PRAGMA schema_version", -1, &stmt,
		NULL) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_ROW) {
		sqlite3_finalize(stmt);
		return -1;
	}
	version = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	snprintf(sql, sizeof(sql), "PRAGMA schema_version = %d", version + 1);
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	return 0;
}

static int
store_user_version(struct store *st, int *version, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &stmt,
		NULL) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_ROW) {
		snprintf(err, errlen,
		    "database %s: cannot read the schema version: %s", st->path,
		    sqlite3_errmsg(st->db));
		goto done;
	}
	*version = sqlite3_column_int(stmt, 0);
	rc = 0;
done:
	sqlite3_finalize(stmt);
	return rc;
}

/*
 * Schedules commits on 'base'. Attaching again replaces the event. A group
 * already open (or callbacks already waiting) is scheduled at once.
 */
void
store_attach(struct store *st, struct event_base *base,
    unsigned commit_delay_ms)
{
#ifdef HAVE_LIBPQ
	if (st->pg != NULL) {
		(void)base; /* the store runs on the loop it was opened on */
		spg_attach(st->pg, commit_delay_ms);
		return;
	}
#endif
	if (st->commit_ev != NULL)
		event_free(st->commit_ev);
	st->commit_ev = event_new(base, -1, 0, store_commit_cb, st);
	if (st->commit_ev == NULL)
		fatalx("store_attach: event_new failed");
	st->commit_delay_ms = commit_delay_ms;
	st->commit_scheduled = false;
	if (st->syncer == NULL)
		store_syncer_start(st, base);
	if (st->in_txn || st->pending.n > 0 || st->durable.n > 0)
		store_schedule(st);
}

/*
 * With commit_delay_ms == 0 the commit event is made active, so it runs
 * in this loop turn after the callbacks that are already active: all the
 * requests that arrived together share one fsync. From inside a commit's
 * callbacks it is a zero timer instead, which lets the loop poll I/O
 * before the next group; otherwise a callback that writes would chain
 * groups forever inside one turn.
 */
static void
store_schedule(struct store *st)
{
	struct timeval tv;

	if (st->commit_ev == NULL || st->commit_scheduled)
		return;
	st->commit_scheduled = true;
	if (st->commit_delay_ms == 0 && st->committing == 0) {
		event_active(st->commit_ev, EV_TIMEOUT, 0);
		return;
	}
	tv.tv_sec = st->commit_delay_ms / 1000;
	tv.tv_usec = (suseconds_t)(st->commit_delay_ms % 1000) * 1000;
	evtimer_add(st->commit_ev, &tv);
}

static void
store_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	char err[256];

	(void)fd;
	(void)what;
	st->commit_scheduled = false;
	/*
	 * Groups committed earlier still wait for their fdatasync, and this
	 * one's could only start after that one ends: until then the group
	 * stays open and later turns' writes join it, and store_on_synced()
	 * commits it. Fewer, bigger groups (fewer WAL frames per write) at
	 * the same latency, give or take the COMMIT itself.
	 */
	if (st->in_txn && st->syncer != NULL && st->wait_head != NULL) {
		st->commit_held = true;
		return;
	}
	/* A failure reaches the callbacks (ok = false) and the stats. */
	(void)store_commit_group(st, false, err, sizeof(err));
}

/*
 * A callback registered while no group is open guards a write that is
 * already committed. If that write may still wait for its fsync (a
 * pipelined group in flight), the callback joins the newest such group;
 * otherwise it is durable already, goes to its own list and hears ok =
 * true whatever happens to the next group.
 */
void
store_on_commit(struct store *st, store_commit_fn *cb, void *arg)
{
#ifdef HAVE_LIBPQ
	if (st->pg != NULL) {
		spg_on_commit(st->pg, cb, arg);
		return;
	}
#endif
	if (st->in_txn)
		store_cblist_add(&st->pending, cb, arg);
	else if (st->wait_tail != NULL)
		store_cblist_add(&st->wait_tail->cbs, cb, arg);
	else {
		store_cblist_add(&st->durable, cb, arg);
		store_schedule(st);
	}
}

void
store_cblist_add(struct store_cblist *l, store_commit_fn *cb, void *arg)
{
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 16 : l->cap * 2;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n].fn = cb;
	l->v[l->n].arg = arg;
	l->n++;
}

/*
 * Commits the open group now (a scheduled commit event is cancelled) and
 * runs its callbacks; on a pipelined store it also waits for the fsync of
 * every committed group, so that afterwards nothing is left waiting.
 * Returns 0, or -1 with the reason in err when the group failed (its
 * callbacks then heard ok = false).
 */
int
store_flush(struct store *st, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	if (st->pg != NULL)
		return spg_flush(st->pg, err, errlen);
#endif
	if (st->commit_scheduled) {
		event_del(st->commit_ev);
		st->commit_scheduled = false;
	}
	return store_commit_group(st, true, err, errlen);
}

/*
 * Commits the open group (if any) and settles callbacks. Without a syncer
 * COMMIT itself fsynced, so the group's callbacks run now. With one, a
 * committed group joins the wait list for the syncer thread; only with
 * 'sync_now' (store_flush) is the WAL fsynced here, on this thread.
 */
static int
store_commit_group(struct store *st, bool sync_now, char *err, size_t errlen)
{
	bool had = st->in_txn, ok = true;

	if (had)
		ok = store_commit_txn(st, err, errlen) == 0;
	if (st->syncer == NULL) {
		store_run_callbacks(st, ok);
		return ok ? 0 : -1;
	}
	if (had && ok)
		store_wait_push(st);
	else
		store_cblist_run(&st->pending, &st->committing, ok);
	store_cblist_run(&st->durable, &st->committing, true);
	if (sync_now && st->wait_head != NULL) {
		if (fdatasync(st->syncer->wal_fd) == -1)
			fatal("store: fdatasync of %s-wal failed; committed "
			      "writes may not be durable (restart to recover "
			      "from the WAL)",
			    st->path);
		pthread_mutex_lock(&st->syncer->mu);
		if (st->group_seq > st->syncer->done)
			st->syncer->done = st->group_seq;
		pthread_mutex_unlock(&st->syncer->mu);
		store_sync_reached(st, st->group_seq);
	}
	return ok ? 0 : -1;
}

/* Moves the just-committed group's callbacks to the wait list. */
static void
store_wait_push(struct store *st)
{
	struct store_wait *w = xcalloc(1, sizeof(*w));

	w->seq = ++st->group_seq;
	w->cbs = st->pending;
	memset(&st->pending, 0, sizeof(st->pending));
	if (st->wait_tail != NULL)
		st->wait_tail->next = w;
	else
		st->wait_head = w;
	st->wait_tail = w;
	pthread_mutex_lock(&st->syncer->mu);
	st->syncer->want = w->seq;
	pthread_cond_signal(&st->syncer->cv);
	pthread_mutex_unlock(&st->syncer->mu);
}

/* Runs (and empties) one callback list, taken first: callbacks may add. */
void
store_cblist_run(struct store_cblist *l, int *depth, bool ok)
{
	struct store_cblist run = *l;
	size_t i;

	memset(l, 0, sizeof(*l));
	(*depth)++;
	for (i = 0; i < run.n; i++)
		run.v[i].fn(run.v[i].arg, ok);
	(*depth)--;
	free(run.v);
}

/* Every group up to 'done' is on disk: run their callbacks, in order. */
static void
store_sync_reached(struct store *st, uint64_t done)
{
	struct store_wait *w;

	while ((w = st->wait_head) != NULL && w->seq <= done) {
		st->wait_head = w->next;
		if (st->wait_head == NULL)
			st->wait_tail = NULL;
		store_cblist_run(&w->cbs, &st->committing, true);
		free(w);
	}
}

/*
 * Starts the syncer: opens the WAL file for fdatasync, a wake-up pipe
 * back to the loop, switches the connection to synchronous=NORMAL and
 * starts the thread. If any step fails the store simply stays with
 * synchronous=FULL (stats.pipelined stays false): slower, never unsafe.
 */
static void
store_syncer_start(struct store *st, struct event_base *base)
{
	struct store_syncer *sy = xcalloc(1, sizeof(*sy));
	char walpath[4096];

	sy->wal_fd = sy->wake[0] = sy->wake[1] = -1;
	snprintf(walpath, sizeof(walpath), "%s-wal", st->path);
	if ((sy->wal_fd = open(walpath, O_RDWR | O_CLOEXEC)) == -1 ||
	    pipe2(sy->wake, O_NONBLOCK | O_CLOEXEC) == -1 ||
	    (sy->wake_ev = event_new(base, sy->wake[0], EV_READ | EV_PERSIST,
		 store_on_synced, st)) == NULL ||
	    event_add(sy->wake_ev, NULL) == -1 ||
	    sqlite3_exec(st->db, "PRAGMA synchronous = NORMAL", NULL, NULL,
		NULL) != SQLITE_OK)
		goto fail;
	pthread_mutex_init(&sy->mu, NULL);
	pthread_cond_init(&sy->cv, NULL);
	st->syncer = sy;
	if (pthread_create(&sy->thread, NULL, store_syncer_main, sy) != 0) {
		st->syncer = NULL;
		pthread_mutex_destroy(&sy->mu);
		pthread_cond_destroy(&sy->cv);
		(void)sqlite3_exec(st->db, "PRAGMA synchronous = FULL", NULL,
		    NULL, NULL);
		goto fail;
	}
	st->stats.pipelined = true;
	return;
fail:
	if (sy->wake_ev != NULL)
		event_free(sy->wake_ev);
	if (sy->wal_fd != -1)
		close(sy->wal_fd);
	if (sy->wake[0] != -1) {
		close(sy->wake[0]);
		close(sy->wake[1]);
	}
	free(sy);
}

/*
 * The syncer thread: fdatasync the WAL whenever a newer group than the
 * last synced one was committed, then wake the loop. It touches only its
 * own struct (under mu), the WAL descriptor and the pipe.
 */
static void *
store_syncer_main(void *arg)
{
	struct store_syncer *sy = arg;
	struct timespec t0, t1;
	uint64_t target, us;
	int rc, e;

	pthread_mutex_lock(&sy->mu);
	for (;;) {
		while (!sy->stop && sy->want <= sy->done)
			pthread_cond_wait(&sy->cv, &sy->mu);
		if (sy->want <= sy->done)
			break; /* stopping, and nothing left to sync */
		target = sy->want;
		pthread_mutex_unlock(&sy->mu);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = fdatasync(sy->wal_fd);
		e = errno;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		us = store_elapsed_us(&t0, &t1);
		pthread_mutex_lock(&sy->mu);
		if (rc == -1 && sy->error == 0)
			sy->error = e;
		if (target > sy->done)
			sy->done = target;
		sy->syncs++;
		sy->sync_us_sum += us;
		if (us > sy->sync_us_max)
			sy->sync_us_max = us;
		/* A full pipe already holds a wake-up: nothing is lost. */
		(void)!write(sy->wake[1], "s", 1);
	}
	pthread_mutex_unlock(&sy->mu);
	return NULL;
}

/* The loop side of a finished sync. */
static void
store_on_synced(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	uint64_t done;
	char buf[64];
	int error;

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&st->syncer->mu);
	done = st->syncer->done;
	error = st->syncer->error;
	pthread_mutex_unlock(&st->syncer->mu);
	if (error != 0) {
		errno = error;
		fatal("store: fdatasync of %s-wal failed; committed writes may "
		      "not be durable (restart to recover from the WAL)",
		    st->path);
	}
	store_sync_reached(st, done);
	if (st->commit_held && st->wait_head == NULL) {
		st->commit_held = false;
		store_schedule(st);
	}
}

/* Stops and joins the thread; later flushes sync on the loop thread. */
static void
store_syncer_stop(struct store *st)
{
	struct store_syncer *sy = st->syncer;

	if (sy == NULL || sy->stop)
		return;
	pthread_mutex_lock(&sy->mu);
	sy->stop = true;
	pthread_cond_signal(&sy->cv);
	pthread_mutex_unlock(&sy->mu);
	pthread_join(sy->thread, NULL);
	event_free(sy->wake_ev);
	sy->wake_ev = NULL;
}

/*
 * COMMITs the group, timed for /metrics. If SQLite already rolled the
 * group back on its own (it does so after some I/O and disk-full errors),
 * or a write found it gone, the whole group is reported failed: none of
 * its acknowledgements may be sent.
 */
static int
store_commit_txn(struct store *st, char *err, size_t errlen)
{
	struct timespec t0;
	struct timespec t1;
	uint64_t us;

	st->in_txn = false;
	st->commit_held = false;
	if (sqlite3_get_autocommit(st->db) || st->group_failed) {
		snprintf(err, errlen,
		    "database %s: the group transaction was rolled back after an earlier error",
		    st->path);
		store_rollback(st);
		goto failed;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (store_defer_run(st, err, errlen) == -1 ||
	    store_exec_cached(st, store_sql_commit, err, errlen) == -1) {
		store_rollback(st);
		goto failed;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = store_elapsed_us(&t0, &t1);
	st->stats.commits++;
	st->stats.commit_us_sum += us;
	if (us > st->stats.commit_us_max)
		st->stats.commit_us_max = us;
	st->stats.writes += st->group_writes;
	st->group_writes = 0;
	return 0;
failed:
	st->stats.commit_failures++;
	st->group_writes = 0;
	st->group_failed = false;
	return -1;
}

/* Best effort: the caller already holds the error worth reporting. */
static void
store_rollback(struct store *st)
{
	char ignored[256];

	store_defer_clear(st);
	if (!sqlite3_get_autocommit(st->db))
		(void)store_exec_cached(st, store_sql_rollback, ignored,
		    sizeof(ignored));
}

/*
 * Runs the callbacks of the group that just ended (with 'ok') and those
 * that were already durable (with true). Both lists are taken first: a
 * callback may write and register callbacks of its own, and those belong
 * to the next group.
 */
static void
store_run_callbacks(struct store *st, bool ok)
{
	struct store_cblist durable = st->durable;
	struct store_cblist group = st->pending;
	size_t i;

	memset(&st->durable, 0, sizeof(st->durable));
	memset(&st->pending, 0, sizeof(st->pending));
	st->committing++;
	for (i = 0; i < durable.n; i++)
		durable.v[i].fn(durable.v[i].arg, true);
	for (i = 0; i < group.n; i++)
		group.v[i].fn(group.v[i].arg, ok);
	st->committing--;
	free(durable.v);
	free(group.v);
}

static uint64_t
store_elapsed_us(const struct timespec *a, const struct timespec *b)
{
	int64_t us;

	us = ((int64_t)b->tv_sec - a->tv_sec) * 1000000 +
	    (b->tv_nsec - a->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

void
store_abort_group(struct store *st)
{
#ifdef HAVE_LIBPQ
	if (st->pg != NULL) {
		spg_abort_group(st->pg);
		return;
	}
#endif
	/* The commit point finds the group gone and fails its callbacks. */
	if (st->in_txn)
		store_rollback(st);
}

/* True between a group's first write and its commit or rollback. */
bool
store_in_transaction(const struct store *st)
{
#ifdef HAVE_LIBPQ
	if (st->pg != NULL)
		return spg_in_transaction(st->pg);
#endif
	return st->in_txn;
}

/* Copies the counters into 'out' (commit times in microseconds). */
void
store_get_stats(struct store *st, struct store_stats *out)
{
#ifdef HAVE_LIBPQ
	if (st->pg != NULL) {
		spg_get_stats(st->pg, out);
		return;
	}
#endif
	*out = st->stats;
	if (st->syncer == NULL)
		return;
	pthread_mutex_lock(&st->syncer->mu);
	out->syncs = st->syncer->syncs;
	out->sync_us_sum = st->syncer->sync_us_sum;
	out->sync_us_max = st->syncer->sync_us_max;
	pthread_mutex_unlock(&st->syncer->mu);
}

/* Reads the schema table through a cached statement: 0, or -1 and err. */
int
store_ping(struct store *st, char *err, size_t errlen)
{
#ifdef HAVE_LIBPQ
	if (st->pg != NULL)
		return spg_ping(st->pg, err, errlen);
#endif
	return store_exec_cached(st, store_sql_ping, err, errlen);
}

/* PRAGMA user_version as store_open() left it. */
int
store_schema_version(struct store *st)
{
	return st->schema_version;
}

/*
 * Closes the store: commits what is open and runs the callbacks (which may
 * write again, hence the bounded loop), then releases everything.
 */
void
store_close(struct store *st)
{
	char err[256]; /* nobody to tell: callbacks hear ok = false */
	int i;

	if (st == NULL)
		return;
#ifdef HAVE_LIBPQ
	if (st->pg != NULL) {
		spg_close(st->pg);
		st->pg = NULL;
		store_destroy(st);
		return;
	}
#endif
	store_syncer_stop(st);
	for (i = 0; i < STORE_CLOSE_ROUNDS; i++) {
		if (!st->in_txn && st->pending.n == 0 && st->durable.n == 0 &&
		    st->wait_head == NULL)
			break;
		(void)store_flush(st, err, sizeof(err));
	}
	if (st->in_txn) {
		st->in_txn = false;
		store_rollback(st);
	}
	if (st->pending.n > 0 || st->durable.n > 0)
		store_run_callbacks(st, false);
	while (st->wait_head != NULL) /* only if callbacks kept writing */
		store_sync_reached(st, st->wait_tail->seq);
	store_destroy(st);
}

/* Frees everything; also the failure path of store_open(). */
static void
store_destroy(struct store *st)
{
	size_t i;

	if (st->commit_ev != NULL)
		event_free(st->commit_ev);
	if (st->syncer != NULL) {
		if (st->syncer->wake_ev != NULL) /* start failed midway */
			event_free(st->syncer->wake_ev);
		close(st->syncer->wal_fd);
		close(st->syncer->wake[0]);
		close(st->syncer->wake[1]);
		pthread_mutex_destroy(&st->syncer->mu);
		pthread_cond_destroy(&st->syncer->cv);
		free(st->syncer);
	}
	for (i = 0; i < st->nslots; i++)
		if (st->slots[i].stmt != NULL)
			sqlite3_finalize(st->slots[i].stmt);
	if (st->db != NULL)
		sqlite3_close(st->db);
	if (st->lock_fd != -1)
		close(st->lock_fd); /* releases the flock */
	free(st->pending.v);
	free(st->durable.v);
	for (i = 0; i < STORE_DEFER_MAX; i++)
		free(st->defer[i].ids);
	free(st->defer_json);
	free(st->slots);
	free(st->path);
	free(st);
}

/* The connection, borrowed: queue/ only, never closed by the caller. */
sqlite3 *
store_db(struct store *st)
{
	return st->db;
}

/* The hook queue_observe() sets: queue/ only. */
struct store_hook *
store_msg_hook(struct store *st)
{
	return &st->msg_hook;
}

/* A 64-bit finalizer (MurmurHash3 fmix64): literals are 8-aligned. */
static size_t
store_hash(const void *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p;

	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return (size_t)h;
}

/* The slot holding 'sql', or the empty slot where it would go. */
static struct store_slot *
store_slot_find(struct store_slot *slots, size_t nslots, const char *sql)
{
	size_t mask = nslots - 1;
	size_t i = store_hash(sql) & mask;

	while (slots[i].sql != NULL && slots[i].sql != sql)
		i = (i + 1) & mask;
	return &slots[i];
}

static void
store_slots_grow(struct store *st)
{
	struct store_slot *old = st->slots;
	size_t oldn = st->nslots;
	size_t i;

	st->nslots *= 2;
	st->slots = xcalloc(st->nslots, sizeof(*st->slots));
	for (i = 0; i < oldn; i++)
		if (old[i].sql != NULL)
			*store_slot_find(st->slots, st->nslots, old[i].sql) =
			    old[i];
	free(old);
}

/*
 * The hot path of every query: one hash probe, then reset and clear. The
 * table stays at most half full, so probes are short.
 */
sqlite3_stmt *
store_stmt(struct store *st, const char *sql, char *err, size_t errlen)
{
	struct store_slot *slot;
	sqlite3_stmt *stmt = NULL;

	if (store_sqlite_only(st, "this operation", err, errlen) == -1)
		return NULL;

	slot = store_slot_find(st->slots, st->nslots, sql);
	if (slot->sql == sql) {
		sqlite3_reset(slot->stmt);
		sqlite3_clear_bindings(slot->stmt);
		return slot->stmt;
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
		&stmt, NULL) != SQLITE_OK ||
	    stmt == NULL) {
		snprintf(err, errlen, "cannot prepare \"%.48s\": %s", sql,
		    sqlite3_errmsg(st->db));
		sqlite3_finalize(stmt);
		return NULL;
	}
	if ((st->nused + 1) * 2 > st->nslots) {
		store_slots_grow(st);
		slot = store_slot_find(st->slots, st->nslots, sql);
	}
	slot->sql = sql;
	slot->stmt = stmt;
	st->nused++;
	return stmt;
}

/* Runs a cached statement that returns no rows we need. */
static int
store_exec_cached(struct store *st, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		snprintf(err, errlen, "database %s: %s: %s", st->path, sql,
		    sqlite3_errmsg(st->db));
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	return 0;
}

/*
 * Opens the group transaction on the first write of a turn and schedules
 * its commit. If SQLite rolled the group back by itself after an error,
 * the callbacks already registered must not hear "ok": the group is
 * flagged failed and a new transaction keeps the later writes together
 * until the commit point rolls them all back.
 */
int
store_write_begin(struct store *st, char *err, size_t errlen)
{
	if (store_sqlite_only(st, "this write", err, errlen) == -1)
		return -1;
	if (st->in_txn) {
		if (!sqlite3_get_autocommit(st->db)) {
			st->group_writes++;
			return 0;
		}
		st->group_failed = true;
	}
	if (store_exec_cached(st, store_sql_begin, err, errlen) == -1)
		return -1;
	st->in_txn = true;
	st->group_writes++;
	store_schedule(st);
	return 0;
}

/*
 * Adds id to the batch of sql, run once at the group's commit point
 * (store-internal.h). Opens the group like any write.
 */
int
store_defer_id(struct store *st, const char *sql, int64_t id, char *err,
    size_t errlen)
{
	struct store_defer *d = NULL;
	size_t i;

	if (store_sqlite_only(st, "a deferred statement", err, errlen) == -1)
		return -1;
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	for (i = 0; i < STORE_DEFER_MAX && d == NULL; i++)
		if (st->defer[i].sql == sql || st->defer[i].sql == NULL)
			d = &st->defer[i];
	if (d == NULL) {
		snprintf(err, errlen,
		    "store: more than %d deferred statements in one group",
		    STORE_DEFER_MAX);
		return -1;
	}
	d->sql = sql;
	if (d->n == d->cap) {
		d->cap = d->cap == 0 ? 64 : d->cap * 2;
		d->ids = xreallocarray(d->ids, d->cap, sizeof(*d->ids));
	}
	d->ids[d->n++] = id;
	return 0;
}

/*
 * Runs each deferred statement once with ?1 = its ids as a JSON array,
 * inside the group, just before COMMIT; then forgets them. 0 / -1 (the
 * caller rolls the group back).
 */
static int
store_defer_run(struct store *st, char *err, size_t errlen)
{
	struct store_defer *d;
	sqlite3_stmt *stmt;
	size_t i, j, len, need;
	int rc = 0;

	for (i = 0; i < STORE_DEFER_MAX && rc == 0; i++) {
		d = &st->defer[i];
		if (d->sql == NULL || d->n == 0)
			continue;
		need = d->n * 22 + 3; /* "-9223372036854775808," */
		if (need > st->defer_json_cap) {
			st->defer_json_cap = need * 2;
			st->defer_json = xreallocarray(st->defer_json,
			    st->defer_json_cap, 1);
		}
		len = 0;
		st->defer_json[len++] = '[';
		for (j = 0; j < d->n; j++)
			len += (size_t)snprintf(st->defer_json + len,
			    st->defer_json_cap - len, "%s%lld",
			    j > 0 ? "," : "", (long long)d->ids[j]);
		st->defer_json[len++] = ']';
		if ((stmt = store_stmt(st, d->sql, err, errlen)) == NULL) {
			rc = -1;
			break;
		}
		sqlite3_bind_text(stmt, 1, st->defer_json, (int)len,
		    SQLITE_STATIC);
		if (sqlite3_step(stmt) != SQLITE_DONE) {
			store_errmsg(st, "deferred statement", err, errlen);
			rc = -1;
		}
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
	}
	store_defer_clear(st);
	return rc;
}

/* The group ended (committed or rolled back): no ids are pending. */
static void
store_defer_clear(struct store *st)
{
	size_t i;

	for (i = 0; i < STORE_DEFER_MAX; i++)
		st->defer[i].n = 0;
}

/* "what: <SQLite's last error>" into err (which may be NULL, errlen 0). */
void
store_errmsg(struct store *st, const char *what, char *err, size_t errlen)
{
	if (store_sqlite_only(st, what, err, errlen) == -1)
		return;
	snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(st->db));
}
