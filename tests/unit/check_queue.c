/*
 * check_queue.c - unit tests of queue/: the store (open, lock, migrations,
 * statement cache, group commit on a real event_base) and the queue
 * (enqueue, claim, transitions, recovery, expiry, idempotency,
 * suppression, the API JSON and the backoff schedule).
 *
 * Every test gets a fresh directory (and database) under a per-TCase root
 * made with mkdtemp; the root is removed by an unchecked fixture, which
 * runs in the parent even when a forked test fails. Times are made up and
 * passed in, so every expected value is exact.
 */
#include "autoconf.h"

#include <sys/stat.h>
#include <sys/time.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>
#include <jansson.h>
#include <sqlite3.h>

#include "check_suites.h"
#include "check_util.h"
#include "message.h"
#include "queue.h"
#include "store-internal.h"
#include "store_members.h"

/* The newest migration in queue/schema/ (NNN_name.sql). */
#define Q_SCHEMA_NEWEST 15 /* ... 014_login_failures, 015_sending_index */
#define Q_T0		INT64_C(1795749274123) /* 2026-11-27T03:14:34.123Z */
#define Q_LEASE		60000 /* ms, the [dispatch] lease default */
#define Q_LOOP_MAX	5000 /* loop turns (1 ms apart) before a test gives up */

struct q_cbrec {
	int calls;
	bool ok;
};

static char q_root[64];
static char q_dir[128];
static char q_path[192];
static struct store *q_st;
static char q_err[512];

static void
q_root_setup(void)
{
	snprintf(q_root, sizeof(q_root), "/tmp/check_queue.XXXXXX");
	if (mkdtemp(q_root) == NULL)
		ck_abort_msg("mkdtemp %s failed", q_root);
}

static void
q_root_teardown(void)
{
	cku_rmtree(q_root);
}

static struct store *
q_open(void)
{
	struct store *st;

	st = store_open(q_path, q_err, sizeof(q_err));
	ck_assert_msg(st != NULL, "store_open: %s", q_err);
	return st;
}

static void
q_setup(void)
{
	snprintf(q_dir, sizeof(q_dir), "%s/t.XXXXXX", q_root);
	if (mkdtemp(q_dir) == NULL)
		ck_abort_msg("mkdtemp %s failed", q_dir);
	snprintf(q_path, sizeof(q_path), "%s/outreachd.db", q_dir);
	q_st = q_open();
}

static void
q_teardown(void)
{
	store_close(q_st);
	q_st = NULL;
	cku_rmtree(q_dir);
}

/* The first column of the first row of 'sql' as an integer (-1 if none). */
static int64_t
q_db_int(const char *sql)
{
	sqlite3_stmt *stmt;
	int64_t v = -1;

	ck_assert_int_eq(
	    sqlite3_prepare_v2(store_db(q_st), sql, -1, &stmt, NULL),
	    SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

static void
q_db_exec(const char *sql)
{
	ck_assert_msg(sqlite3_exec(store_db(q_st), sql, NULL, NULL, NULL) ==
		SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(store_db(q_st)));
}

static int64_t
q_enqueue_full(struct queue_new *m, int64_t now)
{
	struct queue_stored qs = {0, true};

	ck_assert_msg(queue_enqueue(q_st, m, now, &qs, q_err, sizeof(q_err)) ==
		0,
	    "queue_enqueue: %s", q_err);
	ck_assert(!qs.dup);
	ck_assert_int_gt(qs.id, 0);
	return qs.id;
}

/* An SMS through sender "console" with priority 'prio', made at 'now'. */
static int64_t
q_enqueue(int prio, int64_t now)
{
	struct queue_new m = {.channel = CHANNEL_SMS,
	    .to = "+15551230001",
	    .sender = "console",
	    .body = "hello",
	    .priority = prio};

	return q_enqueue_full(&m, now);
}

/* queue_claim() of at most max due messages of the console route. */
static ssize_t
q_claim_console(int64_t now, size_t max, struct out_msg **out)
{
	return queue_claim(q_st,
	    &(struct queue_claim_req){.ch = CHANNEL_SMS,
		.sender = "console",
		.now = now,
		.lease_ms = Q_LEASE,
		.max = max},
	    out, q_err, sizeof(q_err));
}

/* Claims at most one due message of the console route; its id or 0. */
static int64_t
q_claim1(int64_t now)
{
	struct out_msg *out[1];
	ssize_t n;
	int64_t id;

	n = q_claim_console(now, 1, out);
	ck_assert_msg(n >= 0, "queue_claim: %s", q_err);
	if (n == 0)
		return 0;
	id = out[0]->id;
	out_msg_free(out[0]);
	return id;
}

static void
q_sent(int64_t id, int64_t now)
{
	struct queue_result r = {.provider = "console",
	    .provider_id = "console-1"};

	ck_assert_msg(
	    queue_mark_sent(q_st, id, &r, now, q_err, sizeof(q_err)) == 0,
	    "queue_mark_sent: %s", q_err);
}

static void
q_flush(void)
{
	ck_assert_msg(store_flush(q_st, q_err, sizeof(q_err)) == 0,
	    "store_flush: %s", q_err);
}

static int64_t
q_events(int64_t id)
{
	char sql[128];

	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM message_events WHERE message_id = %lld",
	    (long long)id);
	return q_db_int(sql);
}

static void
q_commit_cb(void *arg, bool ok)
{
	struct q_cbrec *rec = arg;

	rec->calls++;
	rec->ok = ok;
}

/*
 * Runs loop turns until rec has seen 'calls' callbacks. An attached store
 * runs callbacks once its syncer thread's fdatasync is done, so this
 * polls against a deadline rather than counting turns.
 */
static void
q_loop_until(struct event_base *base, const struct q_cbrec *rec, int calls)
{
	struct timespec nap = {0, 1000000}; /* 1 ms */
	int i;

	for (i = 0; i < Q_LOOP_MAX && rec->calls < calls; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (rec->calls < calls)
			nanosleep(&nap, NULL);
	}
	ck_assert_int_eq(rec->calls, calls);
}

/* --- store: open, lock, migrations, statements --- */

START_TEST(test_queue_open_creates_and_migrates)
{
	sqlite3_stmt *stmt;

	ck_assert_int_eq(store_schema_version(q_st), Q_SCHEMA_NEWEST);
	ck_assert_int_eq(q_db_int("PRAGMA user_version"), Q_SCHEMA_NEWEST);
	ck_assert_int_eq(q_db_int("PRAGMA foreign_keys"), 1);
	ck_assert_int_eq(q_db_int("PRAGMA synchronous"), 2); /* FULL */
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM sqlite_schema WHERE"
				  " name IN ('messages', 'message_events',"
				  " 'members', 'sms_optout', 'email_optout')"),
	    5);
	ck_assert_int_eq(sqlite3_prepare_v2(store_db(q_st),
			     "PRAGMA journal_mode", -1, &stmt, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	ck_assert_int_eq(store_ping(q_st, q_err, sizeof(q_err)), 0);
	ck_assert(!store_in_transaction(q_st));
}
END_TEST

START_TEST(test_queue_reopen_keeps_data)
{
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	q_flush();
	store_close(q_st);
	q_st = q_open();
	ck_assert_int_eq(store_schema_version(q_st), Q_SCHEMA_NEWEST);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 1);
}
END_TEST

/*
 * A store of version 14 (messages_sending still there, a message in
 * flight) opened by this build: migration 015 drops the index, and the
 * start-up recovery, which now finds the rows in flight through
 * messages_status, puts the message back in the queue.
 */
START_TEST(test_queue_migrate_15_drops_sending_index)
{
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	q_flush();
	ck_assert_int_eq(q_claim1(Q_T0), id);
	q_flush();
	q_db_exec("CREATE INDEX messages_sending ON messages(lease_until)"
		  " WHERE status = 'sending'; PRAGMA user_version = 14");
	store_close(q_st);
	q_st = q_open();
	ck_assert_int_eq(store_schema_version(q_st), Q_SCHEMA_NEWEST);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM sqlite_master"
				  " WHERE name = 'messages_sending'"),
	    0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_SENDING);
	ck_assert_int_eq(queue_recover(q_st, Q_T0 + 1, q_err, sizeof(q_err)),
	    1);
	q_flush();
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	ck_assert_int_eq(q_claim1(Q_T0 + 2), id);
}
END_TEST

START_TEST(test_queue_second_open_refused)
{
	char want[512];
	struct store *st2;

	st2 = store_open(q_path, q_err, sizeof(q_err));
	ck_assert_ptr_null(st2);
	snprintf(want, sizeof(want),
	    "database %s is in use by another outreachd process (lock %s.lock)",
	    q_path, q_path);
	ck_assert_str_eq(q_err, want);
	/* Closing the first store releases the lock. */
	store_close(q_st);
	q_st = q_open();
}
END_TEST

START_TEST(test_queue_newer_schema_refused)
{
	char want[512];

	q_db_exec("PRAGMA user_version = 99");
	store_close(q_st);
	q_st = store_open(q_path, q_err, sizeof(q_err));
	ck_assert_ptr_null(q_st);
	snprintf(want, sizeof(want),
	    "database %s: schema version 99 is newer than this outreachd "
	    "supports (%d)",
	    q_path, Q_SCHEMA_NEWEST);
	ck_assert_str_eq(q_err, want);
}
END_TEST

START_TEST(test_queue_open_missing_dir_names_path)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/no/such/dir/od.db", q_dir);
	ck_assert_ptr_null(store_open(path, q_err, sizeof(q_err)));
	ck_assert_msg(strstr(q_err, path) != NULL, "error lacks path: %s",
	    q_err);
}
END_TEST

/* Distinct addresses, so the cache has to grow past its first size. */
static char q_many_sql[200][40];

START_TEST(test_queue_stmt_cache)
{
	static const char bad[] = "SELEC nonsense";
	sqlite3_stmt *first[200];
	sqlite3_stmt *s;
	char want[40];
	int i;

	for (i = 0; i < 200; i++) {
		snprintf(q_many_sql[i], sizeof(q_many_sql[i]), "SELECT %d", i);
		first[i] =
		    store_stmt(q_st, q_many_sql[i], q_err, sizeof(q_err));
		ck_assert_ptr_nonnull(first[i]);
	}
	for (i = 0; i < 200; i++) {
		s = store_stmt(q_st, q_many_sql[i], q_err, sizeof(q_err));
		ck_assert_ptr_eq(s, first[i]);
		snprintf(want, sizeof(want), "SELECT %d", i);
		ck_assert_str_eq(sqlite3_sql(s), want);
		ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
		ck_assert_int_eq(sqlite3_column_int(s, 0), i);
	}
	/* Handed back reset: a half-read statement starts over. */
	s = store_stmt(q_st, q_many_sql[7], q_err, sizeof(q_err));
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(s, 0), 7);
	sqlite3_reset(s);
	ck_assert_ptr_null(store_stmt(q_st, bad, q_err, sizeof(q_err)));
	ck_assert_msg(
	    strncmp(q_err, "cannot prepare \"SELEC nonsense\": ", 33) == 0,
	    "%s", q_err);
}
END_TEST

/* --- group commit --- */

START_TEST(test_queue_group_commit_loop)
{
	struct event_base *base = event_base_new();
	struct q_cbrec rec = {0, false};
	struct store_stats stats;
	int64_t id;

	store_attach(q_st, base, 0);
	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert(store_in_transaction(q_st));
	store_on_commit(q_st, q_commit_cb, &rec);
	ck_assert_int_eq(rec.calls, 0);
	q_loop_until(base, &rec, 1);
	ck_assert(rec.ok);
	ck_assert(!store_in_transaction(q_st));
	store_get_stats(q_st, &stats);
	ck_assert_uint_eq(stats.commits, 1);
	ck_assert_uint_eq(stats.commit_failures, 0);
	ck_assert_uint_eq(stats.writes, 1);
	ck_assert_uint_le(stats.commit_us_max, stats.commit_us_sum);
	store_close(q_st);
	event_base_free(base);
	q_st = q_open();
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
}
END_TEST

static void
q_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct q_cbrec *rec = arg;

	(void)fd;
	(void)what;
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	store_on_commit(q_st, q_commit_cb, rec);
}

/* Two events active in one turn share one commit, which runs after both. */
START_TEST(test_queue_group_commit_batches_turn)
{
	struct event_base *base = event_base_new();
	struct q_cbrec rec = {0, false};
	struct store_stats stats;
	struct event *e1;
	struct event *e2;

	store_attach(q_st, base, 0);
	e1 = event_new(base, -1, 0, q_write_cb, &rec);
	e2 = event_new(base, -1, 0, q_write_cb, &rec);
	event_active(e1, EV_TIMEOUT, 0);
	event_active(e2, EV_TIMEOUT, 0);
	q_loop_until(base, &rec, 2);
	ck_assert(rec.ok);
	store_get_stats(q_st, &stats);
	ck_assert_uint_eq(stats.commits, 1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 2);
	event_free(e1);
	event_free(e2);
	store_close(q_st);
	q_st = NULL;
	event_base_free(base);
}
END_TEST

/* A step that fails after another's writes takes the whole group back. */
START_TEST(test_queue_abort_group)
{
	struct q_cbrec rec = {0, false};
	int64_t kept, dropped;

	kept = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	q_flush();
	dropped = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert(dropped > kept);
	store_on_commit(q_st, q_commit_cb, &rec);
	store_abort_group(q_st);
	ck_assert_int_eq(store_flush(q_st, q_err, sizeof(q_err)), -1);
	ck_assert_int_eq(rec.calls, 1);
	ck_assert(!rec.ok);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 1);
	ck_assert_int_eq(queue_status(q_st, kept, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	/* the next group is a fresh one, and no open group is a no-op */
	store_abort_group(q_st);
	(void)q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	q_flush();
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 2);
}
END_TEST

START_TEST(test_queue_commit_without_transaction)
{
	struct event_base *base = event_base_new();
	struct q_cbrec rec = {0, false};
	struct store_stats stats;

	/* Not attached: only store_flush() runs it. */
	store_on_commit(q_st, q_commit_cb, &rec);
	ck_assert_int_eq(rec.calls, 0);
	q_flush();
	ck_assert_int_eq(rec.calls, 1);
	ck_assert(rec.ok);
	/* Attached: the next loop turn runs it. */
	store_attach(q_st, base, 0);
	store_on_commit(q_st, q_commit_cb, &rec);
	ck_assert_int_eq(rec.calls, 1);
	q_loop_until(base, &rec, 2);
	ck_assert(rec.ok);
	store_get_stats(q_st, &stats);
	ck_assert_uint_eq(stats.commits, 0);
	store_close(q_st);
	q_st = NULL;
	event_base_free(base);
}
END_TEST

struct q_chain {
	struct q_cbrec first;
	struct q_cbrec second;
	uint64_t commits_at_first;
	uint64_t commits_at_second;
	bool in_txn_after_write;
};

static uint64_t
q_commits(void)
{
	struct store_stats stats;

	store_get_stats(q_st, &stats);
	return stats.commits;
}

static void
q_chain_second_cb(void *arg, bool ok)
{
	struct q_chain *c = arg;

	q_commit_cb(&c->second, ok);
	c->commits_at_second = q_commits();
}

static void
q_chain_cb(void *arg, bool ok)
{
	struct q_chain *c = arg;

	q_commit_cb(&c->first, ok);
	c->commits_at_first = q_commits();
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 1);
	c->in_txn_after_write = store_in_transaction(q_st);
	store_on_commit(q_st, q_chain_second_cb, c);
}

/* A callback's own write and callback belong to the next group. */
START_TEST(test_queue_callback_writes_next_group)
{
	struct event_base *base = event_base_new();
	struct q_chain c;

	memset(&c, 0, sizeof(c));
	store_attach(q_st, base, 0);
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	store_on_commit(q_st, q_chain_cb, &c);
	q_loop_until(base, &c.second, 1);
	ck_assert_int_eq(c.first.calls, 1);
	ck_assert(c.first.ok);
	ck_assert(c.second.ok);
	ck_assert(c.in_txn_after_write);
	ck_assert_uint_eq(c.commits_at_first, 1);
	ck_assert_uint_eq(c.commits_at_second, 2);
	store_close(q_st);
	event_base_free(base);
	q_st = q_open();
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 2);
}
END_TEST

START_TEST(test_queue_commit_delay)
{
	struct event_base *base = event_base_new();
	struct q_cbrec rec = {0, false};
	struct timeval t0;
	struct timeval t1;
	int i;

	store_attach(q_st, base, 30);
	gettimeofday(&t0, NULL);
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	store_on_commit(q_st, q_commit_cb, &rec);
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert_int_eq(rec.calls, 0);
	for (i = 0; i < Q_LOOP_MAX && rec.calls == 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	gettimeofday(&t1, NULL);
	ck_assert_int_eq(rec.calls, 1);
	ck_assert(rec.ok);
	ck_assert_int_ge((t1.tv_sec - t0.tv_sec) * 1000 +
		(t1.tv_usec - t0.tv_usec) / 1000,
	    29);
	store_close(q_st);
	q_st = NULL;
	event_base_free(base);
}
END_TEST

/* A group SQLite rolled back on its own is reported failed, not ok. */
START_TEST(test_queue_commit_lost_transaction_fails)
{
	struct q_cbrec rec = {0, true};
	struct q_cbrec durable = {0, false};
	struct store_stats stats;
	int64_t id;

	/* Registered with no group open: its write is already durable. */
	store_on_commit(q_st, q_commit_cb, &durable);
	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	store_on_commit(q_st, q_commit_cb, &rec);
	q_db_exec("ROLLBACK");
	ck_assert_int_eq(store_flush(q_st, q_err, sizeof(q_err)), -1);
	ck_assert_msg(strstr(q_err, "rolled back") != NULL, "%s", q_err);
	ck_assert_int_eq(rec.calls, 1);
	ck_assert(!rec.ok);
	ck_assert_int_eq(durable.calls, 1);
	ck_assert(durable.ok);
	store_get_stats(q_st, &stats);
	ck_assert_uint_eq(stats.commit_failures, 1);
	ck_assert_uint_eq(stats.commits, 0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)), -1);
	ck_assert_str_eq(q_err, "");
	/* The store carries on with the next group. */
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	q_flush();
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 1);
}
END_TEST

/* What a callback saw of the syncer when it ran. */
struct q_syncrec {
	int calls;
	bool ok;
	bool pipelined;
	uint64_t syncs;
};

static void
q_sync_cb(void *arg, bool ok)
{
	struct q_syncrec *rec = arg;
	struct store_stats stats;

	store_get_stats(q_st, &stats);
	rec->calls++;
	rec->ok = ok;
	rec->pipelined = stats.pipelined;
	rec->syncs = stats.syncs;
}

/*
 * An attached store acknowledges a group only after the syncer thread's
 * fdatasync of the WAL: by the time the callback runs, a sync has been
 * counted, and the data is there after a reopen.
 */
START_TEST(test_queue_pipelined_ack_after_sync)
{
	struct event_base *base = event_base_new();
	struct timespec nap = {0, 1000000};
	struct q_syncrec rec = {0, false, false, 0};
	char err[256];
	int i;

	store_attach(q_st, base, 0);
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	store_on_commit(q_st, q_sync_cb, &rec);
	for (i = 0; i < Q_LOOP_MAX && rec.calls == 0; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (rec.calls == 0)
			nanosleep(&nap, NULL);
	}
	ck_assert_int_eq(rec.calls, 1);
	ck_assert(rec.ok);
	ck_assert(rec.pipelined);
	ck_assert_uint_ge(rec.syncs, 1);
	/* A flush with nothing open settles at once and leaves no waits. */
	ck_assert_int_eq(store_flush(q_st, err, sizeof(err)), 0);
	store_close(q_st);
	q_st = store_open(q_path, err, sizeof(err));
	ck_assert_ptr_nonnull(q_st);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 1);
	event_base_free(base);
}
END_TEST

/*
 * store_flush() on an attached store waits for the fsync itself: every
 * callback of every committed group has run when it returns.
 */
START_TEST(test_queue_pipelined_flush_settles)
{
	struct event_base *base = event_base_new();
	struct q_cbrec rec = {0, false};
	char err[256];
	int i;

	store_attach(q_st, base, 0);
	for (i = 0; i < 5; i++) {
		q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + i);
		store_on_commit(q_st, q_commit_cb, &rec);
		ck_assert_int_eq(store_flush(q_st, err, sizeof(err)), 0);
		ck_assert_int_eq(rec.calls, i + 1);
	}
	ck_assert(rec.ok);
	store_close(q_st);
	q_st = NULL;
	event_base_free(base);
}
END_TEST

START_TEST(test_queue_close_runs_callbacks)
{
	struct q_cbrec rec = {0, false};

	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	store_on_commit(q_st, q_commit_cb, &rec);
	store_close(q_st);
	ck_assert_int_eq(rec.calls, 1);
	ck_assert(rec.ok);
	q_st = q_open();
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 1);
}
END_TEST

/* --- enqueue and claim --- */

START_TEST(test_queue_claim_order)
{
	struct out_msg *out[8];
	int64_t a, b, c, d;
	ssize_t n;
	int i;

	a = q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 1000);
	b = q_enqueue(MSG_PRIO_REPLY, Q_T0 + 2000);
	c = q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 500);
	d = q_enqueue(MSG_PRIO_ALERT, Q_T0 + 100);
	n = queue_claim(q_st,
	    &(struct queue_claim_req){.ch = CHANNEL_SMS,
		.sender = "console",
		.now = Q_T0 + 5000,
		.lease_ms = Q_LEASE,
		.max = 8},
	    out, q_err, sizeof(q_err));
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(out[0]->id, b);
	ck_assert_int_eq(out[1]->id, c);
	ck_assert_int_eq(out[2]->id, a);
	ck_assert_int_eq(out[3]->id, d);
	for (i = 0; i < n; i++)
		out_msg_free(out[i]);
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "console",
				 .now = Q_T0 + 5000,
				 .lease_ms = Q_LEASE,
				 .max = 8},
			     out, q_err, sizeof(q_err)),
	    0);
}
END_TEST

START_TEST(test_queue_claim_batches)
{
	struct out_msg *out[2];
	ssize_t n;
	int i;
	int round;
	int64_t ids[5];

	for (i = 0; i < 5; i++)
		ids[i] = q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + i);
	for (round = 0; round < 3; round++) {
		n = queue_claim(q_st,
		    &(struct queue_claim_req){.ch = CHANNEL_SMS,
			.sender = "console",
			.now = Q_T0 + 10,
			.lease_ms = Q_LEASE,
			.max = 2},
		    out, q_err, sizeof(q_err));
		ck_assert_int_eq(n, round < 2 ? 2 : 1);
		for (i = 0; i < n; i++) {
			ck_assert_int_eq(out[i]->id, ids[round * 2 + i]);
			out_msg_free(out[i]);
		}
	}
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "console",
				 .now = Q_T0 + 10,
				 .lease_ms = Q_LEASE,
				 .max = 0},
			     out, q_err, sizeof(q_err)),
	    0);
}
END_TEST

START_TEST(test_queue_claim_not_before)
{
	struct queue_new m = {.channel = CHANNEL_SMS,
	    .to = "+15551230001",
	    .sender = "console",
	    .body = "later",
	    .not_before = Q_T0 + 60000};
	int64_t id;

	ck_assert_int_eq(queue_next_due(q_st, q_err, sizeof(q_err)), 0);
	id = q_enqueue_full(&m, Q_T0);
	ck_assert_int_eq(queue_next_due(q_st, q_err, sizeof(q_err)),
	    Q_T0 + 60000);
	ck_assert_int_eq(q_claim1(Q_T0), 0);
	ck_assert_int_eq(q_claim1(Q_T0 + 59999), 0);
	ck_assert_int_eq(q_claim1(Q_T0 + 60000), id);
	ck_assert_int_eq(queue_next_due(q_st, q_err, sizeof(q_err)), 0);
	/* A not_before in the past means now. */
	m.not_before = Q_T0 - 5000;
	id = q_enqueue_full(&m, Q_T0);
	ck_assert_int_eq(queue_next_due(q_st, q_err, sizeof(q_err)), Q_T0);
}
END_TEST

START_TEST(test_queue_claim_fields_and_lease)
{
	struct queue_new m = {.channel = CHANNEL_EMAIL,
	    .to = "ann@example.org",
	    .from = "Org <org@example.org>",
	    .subject = "Hi",
	    .body = "plain",
	    .html = "<p>html</p>",
	    .priority = 7,
	    .member_id = 42,
	    .alert_id = 9,
	    .conversation_id = 3,
	    .expires_at = Q_T0 + 86400000};
	struct out_msg *out[1];
	char sql[128];
	int64_t id;

	id = q_enqueue_full(&m, Q_T0);
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_EMAIL,
				 .sender = NULL,
				 .now = Q_T0 + 10,
				 .lease_ms = Q_LEASE,
				 .max = 1},
			     out, q_err, sizeof(q_err)),
	    1);
	ck_assert_int_eq(out[0]->id, id);
	ck_assert_int_eq(out[0]->channel, CHANNEL_EMAIL);
	ck_assert_int_eq(out[0]->priority, 7);
	ck_assert_int_eq(out[0]->attempts, 0);
	ck_assert_int_eq(out[0]->member_id, 42);
	ck_assert_int_eq(out[0]->alert_id, 9);
	ck_assert_int_eq(out[0]->created_at, Q_T0);
	ck_assert_int_eq(out[0]->expires_at, Q_T0 + 86400000);
	ck_assert_str_eq(out[0]->sender, "");
	ck_assert_str_eq(out[0]->to, "ann@example.org");
	ck_assert_str_eq(out[0]->from, "Org <org@example.org>");
	ck_assert_str_eq(out[0]->subject, "Hi");
	ck_assert_str_eq(out[0]->body, "plain");
	ck_assert_str_eq(out[0]->html, "<p>html</p>");
	out_msg_free(out[0]);
	snprintf(sql, sizeof(sql),
	    "SELECT lease_until FROM messages WHERE id = %lld", (long long)id);
	ck_assert_int_eq(q_db_int(sql), Q_T0 + 10 + Q_LEASE);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_SENDING);
	ck_assert_int_eq(q_events(id), 2);
}
END_TEST

/* Each route (channel + sender) is claimed on its own. */
START_TEST(test_queue_claim_routes)
{
	struct queue_new sms_a = {.channel = CHANNEL_SMS,
	    .to = "+15551230001",
	    .sender = "a",
	    .body = "x"};
	struct queue_new sms_b = sms_a;
	struct queue_new mail = {.channel = CHANNEL_EMAIL,
	    .to = "ann@example.org",
	    .sender = "ignored",
	    .subject = "s",
	    .body = "x"};
	struct out_msg *out[4];
	int64_t ia, ib, im;

	sms_b.sender = "b";
	ia = q_enqueue_full(&sms_a, Q_T0);
	ib = q_enqueue_full(&sms_b, Q_T0);
	im = q_enqueue_full(&mail, Q_T0);
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "b",
				 .now = Q_T0,
				 .lease_ms = Q_LEASE,
				 .max = 4},
			     out, q_err, sizeof(q_err)),
	    1);
	ck_assert_int_eq(out[0]->id, ib);
	ck_assert_str_eq(out[0]->sender, "b");
	out_msg_free(out[0]);
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_EMAIL,
				 .sender = NULL,
				 .now = Q_T0,
				 .lease_ms = Q_LEASE,
				 .max = 4},
			     out, q_err, sizeof(q_err)),
	    1);
	ck_assert_int_eq(out[0]->id, im);
	out_msg_free(out[0]);
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "a",
				 .now = Q_T0,
				 .lease_ms = Q_LEASE,
				 .max = 4},
			     out, q_err, sizeof(q_err)),
	    1);
	ck_assert_int_eq(out[0]->id, ia);
	out_msg_free(out[0]);
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "c",
				 .now = Q_T0,
				 .lease_ms = Q_LEASE,
				 .max = 4},
			     out, q_err, sizeof(q_err)),
	    0);
}
END_TEST

START_TEST(test_queue_enqueue_validation)
{
	struct queue_new m = {.channel = CHANNEL_SMS,
	    .to = "+15551230001",
	    .sender = "console",
	    .body = "x"};
	char longto[MSG_ADDR_MAX + 1];
	struct queue_stored qs;

	m.to = NULL;
	ck_assert_int_eq(
	    queue_enqueue(q_st, &m, Q_T0, &qs, q_err, sizeof(q_err)), -1);
	ck_assert_str_eq(q_err, "to: required");
	m.to = "+15551230001";
	m.sender = NULL;
	ck_assert_int_eq(
	    queue_enqueue(q_st, &m, Q_T0, &qs, q_err, sizeof(q_err)), -1);
	ck_assert_str_eq(q_err, "sender: required for SMS");
	m.sender = "console";
	memset(longto, 'x', sizeof(longto) - 1);
	longto[sizeof(longto) - 1] = '\0';
	m.to = longto;
	ck_assert_int_eq(
	    queue_enqueue(q_st, &m, Q_T0, &qs, q_err, sizeof(q_err)), -1);
	ck_assert_str_eq(q_err, "to: longer than 255 bytes");
	ck_assert(!store_in_transaction(q_st));
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 0);
}
END_TEST

/* --- transitions --- */

START_TEST(test_queue_mark_sent)
{
	struct queue_result r = {.code = 201,
	    .provider = "twilio",
	    .provider_id = "SM123"};
	char sql[160];
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), id);
	ck_assert_int_eq(
	    queue_mark_sent(q_st, id, &r, Q_T0 + 5, q_err, sizeof(q_err)), 0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_SENT);
	snprintf(sql, sizeof(sql),
	    "SELECT attempts + (lease_until IS NULL) * 10 FROM messages"
	    " WHERE id = %lld AND provider = 'twilio'"
	    " AND provider_message_id = 'SM123'",
	    (long long)id);
	ck_assert_int_eq(q_db_int(sql), 11);
	ck_assert_int_eq(q_events(id), 3);
}
END_TEST

START_TEST(test_queue_mark_retry)
{
	struct queue_result r = {.code = 503,
	    .text = "provider unavailable",
	    .next_attempt_at = Q_T0 + 1000};
	struct out_msg *out[1];
	char sql[160];
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), id);
	ck_assert_int_eq(
	    queue_mark_retry(q_st, id, &r, Q_T0 + 1, q_err, sizeof(q_err)), 0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	snprintf(sql, sizeof(sql),
	    "SELECT attempts FROM messages WHERE id = %lld AND error_code = 503"
	    " AND error_text = 'provider unavailable' AND lease_until IS NULL",
	    (long long)id);
	ck_assert_int_eq(q_db_int(sql), 1);
	ck_assert_int_eq(queue_next_due(q_st, q_err, sizeof(q_err)),
	    Q_T0 + 1000);
	ck_assert_int_eq(q_claim1(Q_T0 + 999), 0);
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "console",
				 .now = Q_T0 + 1000,
				 .lease_ms = Q_LEASE,
				 .max = 1},
			     out, q_err, sizeof(q_err)),
	    1);
	ck_assert_int_eq(out[0]->id, id);
	ck_assert_int_eq(out[0]->attempts, 1);
	out_msg_free(out[0]);
	q_sent(id, Q_T0 + 1001);
	snprintf(sql, sizeof(sql),
	    "SELECT attempts FROM messages WHERE id = %lld"
	    " AND error_code IS NULL AND error_text IS NULL",
	    (long long)id);
	ck_assert_int_eq(q_db_int(sql), 2);
}
END_TEST

START_TEST(test_queue_mark_final_states)
{
	struct queue_result perm = {.code = 21211,
	    .text = "invalid number",
	    .to = MSG_ST_FAILED};
	struct queue_result dlr = {.code = 30007,
	    .text = "filtered",
	    .to = MSG_ST_FAILED};
	char sql[128];
	int64_t q, s, d, f;

	q = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(queue_mark(q_st, q,
			     &(struct queue_result){.to = MSG_ST_CANCELLED},
			     Q_T0, q_err, sizeof(q_err)),
	    0);
	ck_assert_int_eq(queue_status(q_st, q, q_err, sizeof(q_err)),
	    MSG_ST_CANCELLED);
	s = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), s);
	ck_assert_int_eq(queue_mark(q_st, s, &perm, Q_T0, q_err, sizeof(q_err)),
	    0);
	snprintf(sql, sizeof(sql),
	    "SELECT error_code FROM messages WHERE id = %lld", (long long)s);
	ck_assert_int_eq(q_db_int(sql), 21211);
	/* the provider's refusal was an attempt; a cancel is not */
	snprintf(sql, sizeof(sql),
	    "SELECT attempts FROM messages WHERE id = %lld", (long long)s);
	ck_assert_int_eq(q_db_int(sql), 1);
	snprintf(sql, sizeof(sql),
	    "SELECT attempts FROM messages WHERE id = %lld", (long long)q);
	ck_assert_int_eq(q_db_int(sql), 0);
	d = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), d);
	q_sent(d, Q_T0);
	ck_assert_int_eq(queue_mark(q_st, d,
			     &(struct queue_result){.to = MSG_ST_DELIVERED},
			     Q_T0, q_err, sizeof(q_err)),
	    0);
	ck_assert_int_eq(queue_status(q_st, d, q_err, sizeof(q_err)),
	    MSG_ST_DELIVERED);
	f = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), f);
	q_sent(f, Q_T0);
	ck_assert_int_eq(queue_mark(q_st, f, &dlr, Q_T0, q_err, sizeof(q_err)),
	    0);
	ck_assert_int_eq(queue_status(q_st, f, q_err, sizeof(q_err)),
	    MSG_ST_FAILED);
	ck_assert_int_eq(q_events(q), 2);
	ck_assert_int_eq(q_events(s), 3);
	ck_assert_int_eq(q_events(d), 4);
	ck_assert_int_eq(q_events(f), 4);
}
END_TEST

START_TEST(test_queue_release)
{
	char sql[128];
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), id);
	ck_assert_int_eq(
	    queue_release(q_st, id, Q_T0 + 1, q_err, sizeof(q_err)), 0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	snprintf(sql, sizeof(sql),
	    "SELECT attempts FROM messages WHERE id = %lld"
	    " AND lease_until IS NULL",
	    (long long)id);
	ck_assert_int_eq(q_db_int(sql), 0);
	ck_assert_int_eq(q_claim1(Q_T0 + 2), id);
}
END_TEST

enum q_op { Q_SENT, Q_RETRY, Q_RELEASE, Q_MARK };

static int
q_apply(enum q_op op, int64_t id, enum msg_status to)
{
	switch (op) {
	case Q_SENT:
		return queue_mark_sent(q_st, id, NULL, Q_T0, q_err,
		    sizeof(q_err));
	case Q_RETRY:
		return queue_mark_retry(q_st, id,
		    &(struct queue_result){.next_attempt_at = Q_T0}, Q_T0,
		    q_err, sizeof(q_err));
	case Q_RELEASE:
		return queue_release(q_st, id, Q_T0, q_err, sizeof(q_err));
	default:
		return queue_mark(q_st, id, &(struct queue_result){.to = to},
		    Q_T0, q_err, sizeof(q_err));
	}
}

START_TEST(test_queue_illegal_transitions)
{
	enum { ILLEGAL, HINT, ABSENT };
	struct {
		int which; /* index into ids[] */
		enum q_op op;
		enum msg_status to;
		int kind;
		const char *edge; /* ILLEGAL/HINT: "from -> to" */
	} cases[] = {
	    {0, Q_SENT, MSG_ST_SENT, ILLEGAL, "queued -> sent"},
	    {0, Q_RETRY, MSG_ST_QUEUED, ILLEGAL, "queued -> queued"},
	    {0, Q_MARK, MSG_ST_DELIVERED, ILLEGAL, "queued -> delivered"},
	    {0, Q_MARK, MSG_ST_SENDING, HINT, "queued to sending"},
	    {1, Q_MARK, MSG_ST_UNDELIVERED, ILLEGAL, "sending -> undelivered"},
	    {2, Q_RELEASE, MSG_ST_QUEUED, ILLEGAL, "sent -> queued"},
	    {2, Q_RETRY, MSG_ST_QUEUED, ILLEGAL, "sent -> queued"},
	    {2, Q_SENT, MSG_ST_SENT, ILLEGAL, "sent -> sent"},
	    {2, Q_MARK, MSG_ST_CANCELLED, ILLEGAL, "sent -> cancelled"},
	    {3, Q_SENT, MSG_ST_SENT, ILLEGAL, "delivered -> sent"},
	    {3, Q_MARK, MSG_ST_FAILED, ILLEGAL, "delivered -> failed"},
	    {4, Q_MARK, MSG_ST_SENDING, ILLEGAL, "failed -> sending"},
	    {4, Q_MARK, MSG_ST_QUEUED, ILLEGAL, "failed -> queued"},
	    {4, Q_MARK, MSG_ST_CANCELLED, ILLEGAL, "failed -> cancelled"},
	    {5, Q_SENT, MSG_ST_SENT, ABSENT, NULL},
	    {5, Q_MARK, MSG_ST_FAILED, ABSENT, NULL},
	};
	static const enum msg_status state[] = {MSG_ST_QUEUED, MSG_ST_SENDING,
	    MSG_ST_SENT, MSG_ST_DELIVERED, MSG_ST_FAILED};
	int64_t ids[6];
	int64_t events[5];
	int64_t id;
	char want[256];
	size_t i;

	/* One message in each state; claims take the oldest queued. */
	ids[1] = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), ids[1]);
	ids[2] = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), ids[2]);
	q_sent(ids[2], Q_T0);
	ids[3] = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), ids[3]);
	q_sent(ids[3], Q_T0);
	ck_assert_int_eq(q_apply(Q_MARK, ids[3], MSG_ST_DELIVERED), 0);
	ids[4] = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_apply(Q_MARK, ids[4], MSG_ST_FAILED), 0);
	ids[0] = q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 1000000);
	ids[5] = 999;
	for (i = 0; i < 5; i++)
		events[i] = q_events(ids[i]);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(
		    q_apply(cases[i].op, ids[cases[i].which], cases[i].to), -1);
		id = ids[cases[i].which];
		if (cases[i].kind == ILLEGAL)
			snprintf(want, sizeof(want),
			    "illegal transition %s for message %lld",
			    cases[i].edge, (long long)id);
		else if (cases[i].kind == HINT)
			snprintf(want, sizeof(want),
			    "queue_mark cannot move message %lld from %s; use queue_claim, queue_mark_sent, queue_mark_retry or queue_release",
			    (long long)id, cases[i].edge);
		else
			snprintf(want, sizeof(want), "no message %lld",
			    (long long)id);
		ck_assert_str_eq(q_err, want);
	}
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(
		    queue_status(q_st, ids[i], q_err, sizeof(q_err)), state[i]);
		ck_assert_int_eq(q_events(ids[i]), events[i]);
	}
	q_flush();
}
END_TEST

/*
 * A failure after an operation changed rows fails the whole group: no
 * half-done operation and no acknowledgement of the group may survive.
 */
START_TEST(test_queue_failed_op_fails_group)
{
	struct q_cbrec before = {0, true};
	struct q_cbrec after = {0, true};
	struct queue_new m = {.channel = CHANNEL_SMS,
	    .to = "+15551230002",
	    .sender = "console",
	    .body = "doomed"};
	struct queue_stored qs;

	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	store_on_commit(q_st, q_commit_cb, &before);
	q_db_exec("CREATE TEMP TRIGGER q_boom BEFORE INSERT ON message_events"
		  " BEGIN SELECT RAISE(ABORT, 'boom'); END");
	ck_assert_int_eq(
	    queue_enqueue(q_st, &m, Q_T0, &qs, q_err, sizeof(q_err)), -1);
	ck_assert_str_eq(q_err, "insert message event: boom");
	/* The rollback took the trigger (made inside the group) with it. */
	/* Later writes of the same group share its fate. */
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	store_on_commit(q_st, q_commit_cb, &after);
	ck_assert_int_eq(store_flush(q_st, q_err, sizeof(q_err)), -1);
	ck_assert_int_eq(before.calls, 1);
	ck_assert(!before.ok);
	ck_assert_int_eq(after.calls, 1);
	ck_assert(!after.ok);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 0);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM message_events"), 0);
	/* The next group is healthy. */
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	q_flush();
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 1);
}
END_TEST

/* A statement that fails before changing anything leaves the group alone. */
START_TEST(test_queue_failed_statement_keeps_group)
{
	struct q_cbrec rec = {0, false};
	struct queue_new m = {.channel = CHANNEL_SMS,
	    .to = "+15551230002",
	    .sender = "console",
	    .body = "refused"};
	int64_t kept;
	struct queue_stored qs;

	kept = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	store_on_commit(q_st, q_commit_cb, &rec);
	q_db_exec("CREATE TEMP TRIGGER q_no BEFORE INSERT ON messages"
		  " BEGIN SELECT RAISE(ABORT, 'no'); END");
	ck_assert_int_eq(
	    queue_enqueue(q_st, &m, Q_T0, &qs, q_err, sizeof(q_err)), -1);
	ck_assert_str_eq(q_err, "insert message: no");
	q_db_exec("DROP TRIGGER q_no");
	ck_assert_int_eq(
	    queue_mark_sent(q_st, kept, NULL, Q_T0, q_err, sizeof(q_err)), -1);
	q_flush();
	ck_assert_int_eq(rec.calls, 1);
	ck_assert(rec.ok);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 1);
	ck_assert_int_eq(queue_status(q_st, kept, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	ck_assert_int_eq(q_events(kept), 1);
}
END_TEST

/* --- recovery and expiry --- */

START_TEST(test_queue_recover)
{
	json_t *j;
	json_t *h;
	int64_t a, b, c;

	a = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	b = q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 1);
	c = q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 2);
	ck_assert_int_eq(q_claim1(Q_T0 + 10), a);
	ck_assert_int_eq(q_claim1(Q_T0 + 10), b);
	q_flush();
	store_close(q_st); /* the "crash" */
	q_st = q_open();
	ck_assert_int_eq(queue_recover(q_st, Q_T0 + 20, q_err, sizeof(q_err)),
	    2);
	ck_assert_int_eq(queue_status(q_st, a, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	ck_assert_int_eq(queue_status(q_st, b, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	ck_assert_int_eq(queue_status(q_st, c, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	j = queue_message_json(q_st, a, q_err, sizeof(q_err));
	ck_assert_ptr_nonnull(j);
	h = json_array_get(json_object_get(j, "history"), 2);
	ck_assert_str_eq(json_string_value(json_object_get(h, "status")),
	    "queued");
	ck_assert_str_eq(json_string_value(json_object_get(h, "text")),
	    "recovered after restart");
	json_decref(j);
	ck_assert_int_eq(queue_recover(q_st, Q_T0 + 30, q_err, sizeof(q_err)),
	    0);
	ck_assert_int_eq(q_claim1(Q_T0 + 40), a);
}
END_TEST

START_TEST(test_queue_reclaim_expired_leases)
{
	struct out_msg *out[1];
	int64_t id;
	int64_t other;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "console",
				 .now = Q_T0,
				 .lease_ms = 1000,
				 .max = 1},
			     out, q_err, sizeof(q_err)),
	    1);
	out_msg_free(out[0]);
	other = q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 500);
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "console",
				 .now = Q_T0 + 500,
				 .lease_ms = 1000,
				 .max = 1},
			     out, q_err, sizeof(q_err)),
	    1);
	out_msg_free(out[0]);
	ck_assert_int_eq(queue_reclaim_expired_leases(q_st, Q_T0 + 1000, q_err,
			     sizeof(q_err)),
	    0);
	ck_assert_int_eq(queue_reclaim_expired_leases(q_st, Q_T0 + 1001, q_err,
			     sizeof(q_err)),
	    1);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	ck_assert_int_eq(queue_status(q_st, other, q_err, sizeof(q_err)),
	    MSG_ST_SENDING);
	ck_assert_int_eq(q_events(id), 3);
}
END_TEST

/* What the expiry sweep reported, per message. */
struct q_expired {
	int n;
	int64_t id;
	enum channel ch;
	char sender[64];
};

static void
q_on_expired(void *arg, int64_t id, enum channel ch, const char *sender)
{
	struct q_expired *e = arg;

	e->n++;
	e->id = id;
	e->ch = ch;
	snprintf(e->sender, sizeof(e->sender), "%s", sender ? sender : "");
}

START_TEST(test_queue_expire)
{
	struct q_expired seen = {0, 0, CHANNEL_EMAIL, ""};
	struct queue_new m = {.channel = CHANNEL_SMS,
	    .to = "+15551230001",
	    .sender = "console",
	    .body = "x",
	    .expires_at = Q_T0 + 5000};
	int64_t exp;
	int64_t keep;
	int64_t never;

	exp = q_enqueue_full(&m, Q_T0);
	m.expires_at = Q_T0 + 9000;
	keep = q_enqueue_full(&m, Q_T0);
	never = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	q_flush();
	ck_assert_int_eq(
	    queue_expire(q_st, Q_T0 + 4999, NULL, NULL, q_err, sizeof(q_err)),
	    0);
	ck_assert(!store_in_transaction(q_st));
	ck_assert_int_eq(queue_expire(q_st, Q_T0 + 5000, q_on_expired, &seen,
			     q_err, sizeof(q_err)),
	    1);
	ck_assert_int_eq(seen.n, 1);
	ck_assert_int_eq(seen.id, exp);
	ck_assert_int_eq(seen.ch, CHANNEL_SMS);
	ck_assert_str_eq(seen.sender, "console");
	ck_assert_int_eq(queue_status(q_st, exp, q_err, sizeof(q_err)),
	    MSG_ST_EXPIRED);
	ck_assert_int_eq(queue_status(q_st, keep, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	ck_assert_int_eq(queue_status(q_st, never, q_err, sizeof(q_err)),
	    MSG_ST_QUEUED);
	ck_assert_int_eq(q_events(exp), 2);
	ck_assert_int_eq(
	    queue_expire(q_st, Q_T0 + 5000, NULL, NULL, q_err, sizeof(q_err)),
	    0);
}
END_TEST

/* An idle tick opens no transaction, so it costs no commit. */
START_TEST(test_queue_idle_tick_writes_nothing)
{
	struct out_msg *out[4];

	q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 60000);
	q_flush();
	ck_assert_int_eq(queue_claim(q_st,
			     &(struct queue_claim_req){.ch = CHANNEL_SMS,
				 .sender = "console",
				 .now = Q_T0,
				 .lease_ms = Q_LEASE,
				 .max = 4},
			     out, q_err, sizeof(q_err)),
	    0);
	ck_assert_int_eq(
	    queue_expire(q_st, Q_T0, NULL, NULL, q_err, sizeof(q_err)), 0);
	ck_assert_int_eq(
	    queue_reclaim_expired_leases(q_st, Q_T0, q_err, sizeof(q_err)), 0);
	ck_assert(!store_in_transaction(q_st));
}
END_TEST

/* --- idempotency --- */

START_TEST(test_queue_idempotency)
{
	struct queue_new m = {.channel = CHANNEL_SMS,
	    .to = "+15551230001",
	    .sender = "console",
	    .body = "once",
	    .idempotency_key = "order-77"};
	struct queue_stored qs1 = {0, true};
	struct queue_stored qs2 = {0};
	struct queue_stored qs3 = {0};

	ck_assert_int_eq(
	    queue_enqueue(q_st, &m, Q_T0, &qs1, q_err, sizeof(q_err)), 0);
	ck_assert(!qs1.dup);
	/* Same group, then after a commit: both find the first message. */
	m.body = "twice";
	ck_assert_int_eq(
	    queue_enqueue(q_st, &m, Q_T0 + 1, &qs2, q_err, sizeof(q_err)), 0);
	ck_assert(qs2.dup);
	ck_assert_int_eq(qs2.id, qs1.id);
	q_flush();
	ck_assert_int_eq(
	    queue_enqueue(q_st, &m, Q_T0 + 2, &qs3, q_err, sizeof(q_err)), 0);
	ck_assert(qs3.dup);
	ck_assert_int_eq(qs3.id, qs1.id);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 1);
	ck_assert_int_eq(q_events(qs1.id), 1);
	m.idempotency_key = "order-78";
	ck_assert_int_eq(
	    queue_enqueue(q_st, &m, Q_T0, &qs3, q_err, sizeof(q_err)), 0);
	ck_assert(!qs3.dup);
	ck_assert_int_ne(qs3.id, qs1.id);
}
END_TEST

/* --- suppression --- */

/*
 * Members 1 (SMS opted out), 2 (email bouncing), 3 (email opted out) of
 * the suppression checks.
 */
static void
q_seed_suppressed(void)
{
	q_db_exec("INSERT INTO members (id, phone, email, created_at,"
		  " updated_at) VALUES (1, '+15551230001', 'ann@example.org',"
		  " 0, 0);"
		  "INSERT INTO sms_optout VALUES (1, 0, 'keyword');"
		  "INSERT INTO members (id, phone, email, bouncing, created_at,"
		  " updated_at) VALUES (2, '+15551230002', 'bob@example.org',"
		  " 1, 0, 0);"
		  "INSERT INTO members (id, phone, email, created_at,"
		  " updated_at) VALUES (3, '+15551230003', 'cy@example.org',"
		  " 0, 0);"
		  "INSERT INTO email_optout VALUES (3, 0, 'web');");
}

START_TEST(test_queue_suppression)
{
	q_seed_suppressed();
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_SMS, "+15551230001",
			     q_err, sizeof(q_err)),
	    1);
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_SMS, "+15551230002",
			     q_err, sizeof(q_err)),
	    0);
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_SMS, "+15559999999",
			     q_err, sizeof(q_err)),
	    0);
	/* An SMS opt-out says nothing about email. */
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_EMAIL,
			     "ann@example.org", q_err, sizeof(q_err)),
	    0);
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_EMAIL,
			     "Bob@Example.ORG", q_err, sizeof(q_err)),
	    1);
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_EMAIL,
			     "CY@example.org", q_err, sizeof(q_err)),
	    1);
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_EMAIL,
			     "nobody@example.org", q_err, sizeof(q_err)),
	    0);
}
END_TEST

/* --- JSON and counts --- */

START_TEST(test_queue_message_json)
{
	static const char *const want[] = {"queued", "sending", "sent"};
	static const char *const at[] = {"2026-11-27T03:14:34.123Z",
	    "2026-11-27T03:14:35.123Z", "2026-11-27T03:14:36.123Z"};
	struct queue_result r = {.provider = "console",
	    .provider_id = "console-1"};
	json_t *j;
	json_t *h;
	json_t *e;
	size_t i;
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0 + 1000), id);
	ck_assert_int_eq(
	    queue_mark_sent(q_st, id, &r, Q_T0 + 2000, q_err, sizeof(q_err)),
	    0);
	j = queue_message_json(q_st, id, q_err, sizeof(q_err));
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "id")), id);
	ck_assert_str_eq(json_string_value(json_object_get(j, "channel")),
	    "sms");
	ck_assert_str_eq(json_string_value(json_object_get(j, "to")),
	    "+15551230001");
	ck_assert(json_is_null(json_object_get(j, "from")));
	ck_assert(json_is_null(json_object_get(j, "subject")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "body")),
	    "hello");
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")),
	    "sent");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "priority")), 5);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "attempts")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(j, "provider")),
	    "console");
	ck_assert_str_eq(
	    json_string_value(json_object_get(j, "provider_message_id")),
	    "console-1");
	ck_assert(json_is_null(json_object_get(j, "error")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "created_at")),
	    at[0]);
	ck_assert_str_eq(json_string_value(json_object_get(j, "updated_at")),
	    at[2]);
	h = json_object_get(j, "history");
	ck_assert_int_eq(json_array_size(h), 3);
	for (i = 0; i < 3; i++) {
		e = json_array_get(h, i);
		ck_assert_str_eq(
		    json_string_value(json_object_get(e, "status")), want[i]);
		ck_assert_str_eq(json_string_value(json_object_get(e, "at")),
		    at[i]);
		ck_assert(json_is_null(json_object_get(e, "code")));
	}
	json_decref(j);
	ck_assert_ptr_null(
	    queue_message_json(q_st, id + 1, q_err, sizeof(q_err)));
	ck_assert_str_eq(q_err, "");
	ck_assert_int_eq(queue_status(q_st, id + 1, q_err, sizeof(q_err)), -1);
	ck_assert_str_eq(q_err, "");
}
END_TEST

START_TEST(test_queue_message_json_error)
{
	struct queue_result r = {.code = 429,
	    .text = "rate limited",
	    .next_attempt_at = Q_T0 + 500};
	json_t *j;
	json_t *e;
	json_t *h;
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), id);
	ck_assert_int_eq(
	    queue_mark_retry(q_st, id, &r, Q_T0 + 1, q_err, sizeof(q_err)), 0);
	j = queue_message_json(q_st, id, q_err, sizeof(q_err));
	ck_assert_ptr_nonnull(j);
	e = json_object_get(j, "error");
	ck_assert(json_is_object(e));
	ck_assert_int_eq(json_integer_value(json_object_get(e, "code")), 429);
	ck_assert_str_eq(json_string_value(json_object_get(e, "text")),
	    "rate limited");
	h = json_array_get(json_object_get(j, "history"), 2);
	ck_assert_str_eq(json_string_value(json_object_get(h, "status")),
	    "queued");
	ck_assert_int_eq(json_integer_value(json_object_get(h, "code")), 429);
	ck_assert_str_eq(json_string_value(json_object_get(h, "text")),
	    "rate limited");
	json_decref(j);
}
END_TEST

START_TEST(test_queue_count_by_status)
{
	struct queue_new mail = {.channel = CHANNEL_EMAIL,
	    .to = "ann@example.org",
	    .subject = "s",
	    .body = "x"};
	int64_t counts[CHANNEL_COUNT][MSG_ST_COUNT];
	int64_t total = 0;
	int c;
	int s;

	q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 1);
	q_enqueue(MSG_PRIO_DEFAULT, Q_T0 + 2);
	q_enqueue_full(&mail, Q_T0);
	ck_assert_int_gt(q_claim1(Q_T0 + 5), 0);
	ck_assert_int_eq(
	    queue_count_by_status(q_st, counts, q_err, sizeof(q_err)), 0);
	ck_assert_int_eq(counts[CHANNEL_SMS][MSG_ST_QUEUED], 2);
	ck_assert_int_eq(counts[CHANNEL_SMS][MSG_ST_SENDING], 1);
	ck_assert_int_eq(counts[CHANNEL_EMAIL][MSG_ST_QUEUED], 1);
	for (c = 0; c < CHANNEL_COUNT; c++)
		for (s = 0; s < MSG_ST_COUNT; s++)
			total += counts[c][s];
	ck_assert_int_eq(total, 4);
}
END_TEST

/* --- backoff --- */

START_TEST(test_queue_backoff_schedule)
{
	const double almost1 = 0.999999999;

	/* base 1 s, cap 1 h: d = 1, 2, 4 s ... then 3600 s. */
	ck_assert_int_eq(queue_backoff_ms(1, 1000, 3600000, 0, 0.0), 500);
	ck_assert_int_eq(queue_backoff_ms(1, 1000, 3600000, 0, almost1), 999);
	ck_assert_int_eq(queue_backoff_ms(1, 1000, 3600000, 0, 0.5), 750);
	ck_assert_int_eq(queue_backoff_ms(2, 1000, 3600000, 0, 0.0), 1000);
	ck_assert_int_eq(queue_backoff_ms(3, 1000, 3600000, 0, 0.5), 3000);
	ck_assert_int_eq(queue_backoff_ms(12, 1000, 3600000, 0, 0.0), 1024000);
	/* 2^12 s > 1 h: capped. */
	ck_assert_int_eq(queue_backoff_ms(13, 1000, 3600000, 0, 0.0), 1800000);
	ck_assert_int_eq(queue_backoff_ms(13, 1000, 3600000, 0, almost1),
	    3599999);
	ck_assert_int_eq(queue_backoff_ms(13, 1000, 3600000, 0, 1.0), 3599999);
	/* Retry-After wins only when larger. */
	ck_assert_int_eq(queue_backoff_ms(1, 1000, 3600000, 30000, 0.0), 30000);
	ck_assert_int_eq(queue_backoff_ms(1, 1000, 3600000, 7200000, 0.0),
	    7200000);
	ck_assert_int_eq(queue_backoff_ms(13, 1000, 3600000, 1000, 0.0),
	    1800000);
	/* Huge attempt numbers and extreme parameters do not overflow. */
	ck_assert_int_eq(queue_backoff_ms(UINT_MAX, 1000, 3600000, 0, 0.0),
	    1800000);
	ck_assert_int_eq(queue_backoff_ms(64, UINT_MAX, UINT_MAX, 0, 0.0),
	    (int64_t)UINT_MAX / 2);
	ck_assert_int_eq(
	    queue_backoff_ms(UINT_MAX, 1, UINT_MAX, 0, nextafter(1.0, 0.0)),
	    (int64_t)UINT_MAX - 1);
	ck_assert_int_eq(queue_backoff_ms(UINT_MAX, 0, 3600000, 250, 0.5), 250);
	/* Odd inputs: attempt 0 is the first retry; bad rnd means 0. */
	ck_assert_int_eq(queue_backoff_ms(0, 1000, 3600000, 0, 0.0), 500);
	ck_assert_int_eq(queue_backoff_ms(1, 1000, 3600000, 0, -3.0), 500);
	ck_assert_int_eq(queue_backoff_ms(1, 1000, 3600000, 0, NAN), 500);
	ck_assert_int_eq(queue_backoff_ms(1, 10000, 5000, 0, 0.0), 2500);
}
END_TEST

/* --- webhooks: inbound messages --- */

/* An inbound SMS as a provider's webhook would give it. */
static void
q_in_msg(struct in_msg *m, const char *pid, const char *body)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->provider_id, sizeof(m->provider_id), "%s", pid);
	snprintf(m->from, sizeof(m->from), "+15551230007");
	snprintf(m->to, sizeof(m->to), "+15550100000");
	m->body = (char *)body; /* borrowed: never in_msg_clear()ed here */
	m->segments = 1;
}

static int64_t
q_inbound(const char *provider, const struct in_msg *m, int64_t now, bool *dup)
{
	struct queue_webhook wh = {.sender = "tw",
	    .provider = provider,
	    .now = now};
	struct queue_stored qs = {0};

	ck_assert_msg(
	    queue_inbound_store(q_st, &wh, m, &qs, q_err, sizeof(q_err)) == 0,
	    "queue_inbound_store: %s", q_err);
	ck_assert_int_gt(qs.id, 0);
	*dup = qs.dup;
	return qs.id;
}

START_TEST(test_queue_inbound_store)
{
	struct in_msg m;
	char sql[512];
	int64_t id;
	bool dup = true;

	q_in_msg(&m, "SM0001", "Hello & =+ \xf0\x9f\x91\x8b");
	id = q_inbound("twilio", &m, Q_T0, &dup);
	ck_assert(!dup);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_RECEIVED);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM messages WHERE id = %lld AND direction = 'in'"
	    " AND channel = 'sms' AND sender = 'tw' AND provider = 'twilio'"
	    " AND provider_message_id = 'SM0001' AND from_addr = '+15551230007'"
	    " AND to_addr = '+15550100000' AND segments = 1"
	    " AND body = 'Hello & =+ ' || char(128075) AND member_id IS NULL"
	    " AND created_at = %lld",
	    (long long)id, (long long)Q_T0);
	ck_assert_int_eq(q_db_int(sql), 1);
	ck_assert_int_eq(q_events(id), 1);
	/* Never claimed: inbound rows are not queued. */
	ck_assert_int_eq(q_claim1(Q_T0 + 1), 0);
	ck_assert(store_in_transaction(q_st));
	q_flush();
}
END_TEST

/* A provider retrying its webhook stores nothing new, before or after
 * the first copy committed. */
START_TEST(test_queue_inbound_dedupe)
{
	struct in_msg m;
	int64_t id1, id2, id3, other;
	bool dup = false;

	q_in_msg(&m, "SM0002", "first");
	id1 = q_inbound("twilio", &m, Q_T0, &dup);
	ck_assert(!dup);
	m.body = (char *)"retry in the same group";
	id2 = q_inbound("twilio", &m, Q_T0 + 1, &dup);
	ck_assert(dup);
	ck_assert_int_eq(id2, id1);
	q_flush();
	dup = false;
	id3 = q_inbound("twilio", &m, Q_T0 + 2, &dup);
	ck_assert(dup);
	ck_assert_int_eq(id3, id1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 1);
	ck_assert_int_eq(q_events(id1), 1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages WHERE"
				  " body = 'first'"),
	    1);
	/* The same id from another provider is another message. */
	other = q_inbound("plivo", &m, Q_T0 + 3, &dup);
	ck_assert(!dup);
	ck_assert_int_ne(other, id1);
	/* Without a provider id nothing can be matched: both are kept. */
	q_in_msg(&m, "", "no id");
	ck_assert_int_ne(q_inbound("kannel", &m, Q_T0, &dup),
	    q_inbound("kannel", &m, Q_T0, &dup));
	ck_assert(!dup);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 4);
}
END_TEST

START_TEST(test_queue_inbound_member_and_validation)
{
	struct in_msg m;
	struct queue_stored qs = {-1, true};
	int64_t id = 0;
	char sql[128];
	bool dup;

	q_db_exec("INSERT INTO members (id, phone, created_at, updated_at)"
		  " VALUES (41, '+15551230007', 0, 0)");
	q_in_msg(&m, "SM0003", "hi");
	id = q_inbound("twilio", &m, Q_T0, &dup);
	snprintf(sql, sizeof(sql),
	    "SELECT member_id FROM messages WHERE id = %lld", (long long)id);
	ck_assert_int_eq(q_db_int(sql), 41);
	/* A NULL body is stored as empty text. */
	q_in_msg(&m, "SM0004", NULL);
	id = q_inbound("twilio", &m, Q_T0, &dup);
	snprintf(sql, sizeof(sql),
	    "SELECT length(body) FROM messages WHERE id = %lld", (long long)id);
	ck_assert_int_eq(q_db_int(sql), 0);

	m.from[0] = '\0';
	ck_assert_int_eq(queue_inbound_store(q_st,
			     &(struct queue_webhook){.sender = "tw",
				 .provider = "twilio",
				 .now = Q_T0},
			     &m, &qs, q_err, sizeof(q_err)),
	    -1);
	ck_assert_str_eq(q_err, "inbound message: from required");
	ck_assert_int_eq(qs.id, 0);
	q_in_msg(&m, "SM0005", "x");
	ck_assert_int_eq(queue_inbound_store(q_st,
			     &(struct queue_webhook){.sender = "tw",
				 .provider = "",
				 .now = Q_T0},
			     &m, &qs, q_err, sizeof(q_err)),
	    -1);
	ck_assert_str_eq(q_err, "inbound message: provider required");
	ck_assert_int_eq(queue_inbound_store(q_st,
			     &(struct queue_webhook){.sender = NULL,
				 .provider = "twilio",
				 .now = Q_T0},
			     &m, &qs, q_err, sizeof(q_err)),
	    -1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"), 2);
}
END_TEST

/* --- webhooks: delivery reports --- */

/* An outbound SMS claimed and accepted by 'provider' as 'pid'. */
static int64_t
q_sent_as(const char *provider, const char *pid, int64_t now)
{
	struct queue_result r = {.provider = provider, .provider_id = pid};
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, now);
	ck_assert_int_eq(q_claim1(now), id);
	ck_assert_msg(
	    queue_mark_sent(q_st, id, &r, now, q_err, sizeof(q_err)) == 0,
	    "queue_mark_sent: %s", q_err);
	return id;
}

static struct status_update
q_report(const char *pid, enum msg_status status, int code, int64_t seq)
{
	struct status_update u = {.status = status,
	    .code = code,
	    .sequence = seq};

	snprintf(u.provider_id, sizeof(u.provider_id), "%s", pid);
	if (code != 0)
		snprintf(u.text, sizeof(u.text), "code %d", code);
	return u;
}

/* Applies u from 'provider'; asserts the outcome and returns the id. */
static int64_t
q_update(const char *provider, const struct status_update *u, int64_t now,
    int want)
{
	int64_t id = -1;
	int rc;

	rc = queue_status_update(q_st,
	    &(struct queue_webhook){.provider = provider, .now = now}, u, &id,
	    q_err, sizeof(q_err));
	ck_assert_msg(rc == want, "queue_status_update: %d, not %d (%s)", rc,
	    want, rc == -1 ? q_err : "");
	return id;
}

/* The message's history as "queued,sending,sent,...". */
static const char *
q_history(int64_t id, char *buf, size_t len)
{
	sqlite3_stmt *stmt;
	char sql[160];

	snprintf(sql, sizeof(sql),
	    "SELECT group_concat(status, ',') FROM (SELECT status FROM"
	    " message_events WHERE message_id = %lld ORDER BY id)",
	    (long long)id);
	ck_assert_int_eq(
	    sqlite3_prepare_v2(store_db(q_st), sql, -1, &stmt, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
	snprintf(buf, len, "%s",
	    sqlite3_column_text(stmt, 0) != NULL
		? (const char *)sqlite3_column_text(stmt, 0)
		: "");
	sqlite3_finalize(stmt);
	return buf;
}

/* sent -> delivered, then every later report is stale. */
START_TEST(test_queue_status_forward_only)
{
	struct status_update u;
	char h[256];
	int64_t id;

	id = q_sent_as("twilio", "SM100", Q_T0);
	u = q_report("SM100", MSG_ST_DELIVERED, 0, 0);
	ck_assert_int_eq(q_update("twilio", &u, Q_T0 + 10, QUEUE_SU_APPLIED),
	    id);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_DELIVERED);
	ck_assert_str_eq(q_history(id, h, sizeof(h)),
	    "queued,sending,sent,delivered");
	/* A late 'sent', a repeat, and another final state: all stale. */
	u = q_report("SM100", MSG_ST_SENT, 0, 0);
	ck_assert_int_eq(q_update("twilio", &u, Q_T0 + 20, QUEUE_SU_STALE), id);
	u = q_report("SM100", MSG_ST_DELIVERED, 0, 0);
	q_update("twilio", &u, Q_T0 + 21, QUEUE_SU_STALE);
	u = q_report("SM100", MSG_ST_FAILED, 30008, 0);
	q_update("twilio", &u, Q_T0 + 22, QUEUE_SU_STALE);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_DELIVERED);
	ck_assert_str_eq(q_history(id, h, sizeof(h)),
	    "queued,sending,sent,delivered");
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"
				  " WHERE error_code IS NOT NULL"),
	    0);
	/* A stale report only reads: it opens no group. */
	q_flush();
	u = q_report("SM100", MSG_ST_SENT, 0, 0);
	q_update("twilio", &u, Q_T0 + 30, QUEUE_SU_STALE);
	ck_assert(!store_in_transaction(q_st));
}
END_TEST

/* undelivered / failed keep the provider's code and text. */
START_TEST(test_queue_status_failure_code)
{
	struct status_update u;
	json_t *o, *ev;
	int64_t id;

	id = q_sent_as("twilio", "SM200", Q_T0);
	u = q_report("SM200", MSG_ST_UNDELIVERED, 30003, 0);
	q_update("twilio", &u, Q_T0 + 5, QUEUE_SU_APPLIED);
	o = queue_message_json(q_st, id, q_err, sizeof(q_err));
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "status")),
	    "undelivered");
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(o, "error"), "code")),
	    30003);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(o, "error"), "text")),
	    "code 30003");
	ev = json_array_get(json_object_get(o, "history"), 3);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "status")),
	    "undelivered");
	ck_assert_int_eq(json_integer_value(json_object_get(ev, "code")),
	    30003);
	json_decref(o);
	/* Reports are matched per provider: another one's id is unknown. */
	u = q_report("SM200", MSG_ST_DELIVERED, 0, 0);
	ck_assert_int_eq(q_update("plivo", &u, Q_T0 + 6, QUEUE_SU_EARLY), 0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_UNDELIVERED);
}
END_TEST

/* Plivo's Sequence: a report older than the last one applied is stale. */
START_TEST(test_queue_status_sequence)
{
	struct status_update u;
	char sql[128];
	int64_t id;

	id = q_sent_as("plivo", "uuid-1", Q_T0);
	/* 'sent' #5 moves nothing but is remembered ... */
	u = q_report("uuid-1", MSG_ST_SENT, 0, 5);
	q_update("plivo", &u, Q_T0 + 1, QUEUE_SU_STALE);
	snprintf(sql, sizeof(sql),
	    "SELECT status_sequence FROM messages WHERE id = %lld",
	    (long long)id);
	ck_assert_int_eq(q_db_int(sql), 5);
	/* ... so 'delivered' #3, generated before it, is stale ... */
	u = q_report("uuid-1", MSG_ST_DELIVERED, 0, 3);
	q_update("plivo", &u, Q_T0 + 2, QUEUE_SU_STALE);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_SENT);
	/* ... a lower 'sent' changes nothing, and 'delivered' #6 applies. */
	u = q_report("uuid-1", MSG_ST_SENT, 0, 4);
	q_update("plivo", &u, Q_T0 + 3, QUEUE_SU_STALE);
	ck_assert_int_eq(q_db_int(sql), 5);
	u = q_report("uuid-1", MSG_ST_DELIVERED, 0, 6);
	q_update("plivo", &u, Q_T0 + 4, QUEUE_SU_APPLIED);
	ck_assert_int_eq(q_db_int(sql), 6);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_DELIVERED);
}
END_TEST

/*
 * The callback overtakes the provider's answer: the report is kept and
 * applied by queue_mark_sent(), once, then forgotten.
 */
START_TEST(test_queue_status_early)
{
	struct queue_result r = {.provider = "twilio", .provider_id = "SM300"};
	struct status_update u;
	char h[256];
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), id);
	u = q_report("SM300", MSG_ST_DELIVERED, 0, 0);
	ck_assert_int_eq(q_update("twilio", &u, Q_T0 + 1, QUEUE_SU_EARLY), 0);
	/* A later 'sent' for the same id does not replace 'delivered'. */
	u = q_report("SM300", MSG_ST_SENT, 0, 0);
	q_update("twilio", &u, Q_T0 + 2, QUEUE_SU_EARLY);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM status_early"
				  " WHERE status = 'delivered'"),
	    1);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_SENDING);
	ck_assert_int_eq(
	    queue_mark_sent(q_st, id, &r, Q_T0 + 3, q_err, sizeof(q_err)), 0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_DELIVERED);
	ck_assert_str_eq(q_history(id, h, sizeof(h)),
	    "queued,sending,sent,delivered");
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM status_early"), 0);
	q_flush();
	/* Another message with another id finds nothing kept. */
	ck_assert_int_eq(queue_status(q_st, q_sent_as("twilio", "SM301", Q_T0),
			     q_err, sizeof(q_err)),
	    MSG_ST_SENT);
}
END_TEST

/*
 * A batch of accepted sends, longer than one statement's 64 rows: each
 * message moves to sent with its provider id and its history row; one
 * that is no longer 'sending' is left alone (ok = false); a delivery
 * report that overtook the answer is applied, as queue_mark_sent() does.
 */
/*
 * A claim reads its rows, then moves them by id; a sent batch reads the
 * rows still sending, then moves them. A row that does not move in
 * between (here a temporary trigger skips one) fails the operation with
 * a message, and the rollback leaves every row and its history as it was.
 */
START_TEST(test_queue_rows_read_must_move)
{
	struct out_msg *out[3];
	struct queue_sent v[3];
	char sql[200];
	int64_t ids[3];
	ssize_t n;
	int i;

	for (i = 0; i < 3; i++)
		ids[i] = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	q_flush(); /* a failed operation rolls back its whole group */
	snprintf(sql, sizeof(sql),
	    "CREATE TEMP TRIGGER q_skip BEFORE UPDATE OF status ON messages"
	    " WHEN old.id = %lld BEGIN SELECT RAISE(IGNORE); END",
	    (long long)ids[1]);
	q_db_exec(sql);
	n = q_claim_console(Q_T0, 3, out);
	ck_assert_int_eq(n, -1);
	ck_assert_str_eq(q_err, "claim: 2 of 3 messages read as queued moved");
	ck_assert_int_eq(store_flush(q_st, q_err, sizeof(q_err)), -1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"
				  " WHERE status = 'queued'"),
	    3);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM message_events"
				  " WHERE status = 'sending'"),
	    0);
	q_db_exec("DROP TRIGGER q_skip");
	n = q_claim_console(Q_T0, 3, out);
	ck_assert_msg(n == 3, "queue_claim: %zd %s", n, q_err);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(out[i]->id, ids[i]);
		v[i] = (struct queue_sent){.id = ids[i],
		    .provider = "console",
		    .provider_id = "c-1"};
		out_msg_free(out[i]);
	}
	q_flush();
	q_db_exec(sql);
	n = queue_mark_sent_batch(q_st, v, 3, Q_T0 + 5, q_err, sizeof(q_err));
	ck_assert_int_eq(n, -1);
	ck_assert_str_eq(q_err,
	    "update messages to sent: 2 of 3 sending moved");
	ck_assert_int_eq(store_flush(q_st, q_err, sizeof(q_err)), -1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM messages"
				  " WHERE status = 'sending'"),
	    3);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM message_events"
				  " WHERE status = 'sent'"),
	    0);
	q_db_exec("DROP TRIGGER q_skip");
	n = queue_mark_sent_batch(q_st, v, 3, Q_T0 + 6, q_err, sizeof(q_err));
	ck_assert_msg(n == 3, "queue_mark_sent_batch: %zd %s", n, q_err);
}
END_TEST

START_TEST(test_queue_mark_sent_batch)
{
	struct out_msg *out[80];
	struct queue_sent v[80];
	struct status_update u;
	char pids[80][16], h[256], sql[200];
	int64_t gone, late;
	ssize_t n;
	int i;

	for (i = 0; i < 70; i++)
		q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	n = queue_claim(q_st,
	    &(struct queue_claim_req){.ch = CHANNEL_SMS,
		.sender = "console",
		.now = Q_T0,
		.lease_ms = Q_LEASE,
		.max = 80},
	    out, q_err, sizeof(q_err));
	ck_assert_int_eq(n, 70);
	for (i = 0; i < 70; i++) {
		snprintf(pids[i], sizeof(pids[i]), "SM%d", 500 + i);
		v[i] = (struct queue_sent){.id = out[i]->id,
		    .provider = "twilio",
		    .provider_id = pids[i],
		    .code = 201,
		    .text = "accepted"};
	}
	gone = out[3]->id;
	late = out[66]->id;
	for (i = 0; i < 70; i++)
		out_msg_free(out[i]);
	ck_assert_int_eq(queue_mark(q_st, gone,
			     &(struct queue_result){.to = MSG_ST_EXPIRED},
			     Q_T0 + 1, q_err, sizeof(q_err)),
	    0);
	u = q_report("SM566", MSG_ST_DELIVERED, 0, 0);
	q_update("twilio", &u, Q_T0 + 1, QUEUE_SU_EARLY);
	n = queue_mark_sent_batch(q_st, v, 70, Q_T0 + 5, q_err, sizeof(q_err));
	ck_assert_msg(n == 69, "queue_mark_sent_batch: %zd %s", n, q_err);
	for (i = 0; i < 70; i++)
		ck_assert_int_eq(v[i].ok, v[i].id != gone);
	ck_assert_int_eq(queue_status(q_st, gone, q_err, sizeof(q_err)),
	    MSG_ST_EXPIRED);
	ck_assert_str_eq(q_history(gone, h, sizeof(h)),
	    "queued,sending,expired");
	ck_assert_int_eq(queue_status(q_st, late, q_err, sizeof(q_err)),
	    MSG_ST_DELIVERED);
	ck_assert_str_eq(q_history(late, h, sizeof(h)),
	    "queued,sending,sent,delivered");
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM status_early"), 0);
	ck_assert_int_eq(q_db_int(
			     "SELECT count(*) FROM messages"
			     " WHERE status = 'sent' AND attempts = 1"
			     " AND lease_until IS NULL AND provider = "
			     "'twilio' AND updated_at = 1795749274128"
			     " AND provider_message_id = 'SM' || (id + 499)"),
	    68);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM message_events"
				  " WHERE status = 'sent' AND code = 201"
				  " AND text = 'accepted'"
				  " AND created_at = 1795749274128"),
	    69);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM messages WHERE status = 'sending'");
	ck_assert_int_eq(q_db_int(sql), 0);
	q_flush();
	/* Nothing left to move: a second batch records nothing. */
	ck_assert_int_eq(
	    queue_mark_sent_batch(q_st, v, 70, Q_T0 + 6, q_err, sizeof(q_err)),
	    0);
	ck_assert_int_eq(q_events(v[0].id), 3);
}
END_TEST

/*
 * The send-time opt-out check of a claimed batch agrees with
 * queue_is_suppressed() for every recipient, past one statement's 64.
 */
START_TEST(test_queue_suppressed_batch)
{
	const char *to[100];
	char nums[100][16];
	bool sup[100];
	const char *mail[5] = {"ann@example.org", "Bob@Example.ORG",
	    "CY@example.org", "nobody@example.org", NULL};
	int i;

	q_seed_suppressed();
	q_db_exec("INSERT INTO members (id, phone, created_at, updated_at)"
		  " VALUES (4, '+15551230090', 0, 0);"
		  "INSERT INTO sms_optout VALUES (4, 0, 'keyword');");
	for (i = 0; i < 100; i++) {
		snprintf(nums[i], sizeof(nums[i]), "+155512300%02d", i);
		to[i] = nums[i];
	}
	to[50] = NULL; /* no address: never suppressed */
	ck_assert_int_eq(queue_suppressed_batch(q_st, CHANNEL_SMS, to, 100, sup,
			     q_err, sizeof(q_err)),
	    0);
	for (i = 0; i < 100; i++)
		ck_assert_msg(sup[i] == (i == 1 || i == 90), "recipient %d: %d",
		    i, sup[i]);
	ck_assert_int_eq(queue_suppressed_batch(q_st, CHANNEL_EMAIL, mail, 5,
			     sup, q_err, sizeof(q_err)),
	    0);
	ck_assert(!sup[0] && sup[1] && sup[2] && !sup[3] && !sup[4]);
	ck_assert_int_eq(queue_suppressed_batch(q_st, CHANNEL_SMS, to, 0, sup,
			     q_err, sizeof(q_err)),
	    0);
}
END_TEST

/* 'sent' kept first, then 'undelivered' replaces it: the further one wins. */
START_TEST(test_queue_status_early_upgrade)
{
	struct queue_result r = {.provider = "twilio", .provider_id = "SM310"};
	struct status_update u;
	char h[256];
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), id);
	u = q_report("SM310", MSG_ST_SENT, 0, 0);
	q_update("twilio", &u, Q_T0 + 1, QUEUE_SU_EARLY);
	u = q_report("SM310", MSG_ST_UNDELIVERED, 30005, 0);
	q_update("twilio", &u, Q_T0 + 2, QUEUE_SU_EARLY);
	ck_assert_int_eq(q_db_int("SELECT code FROM status_early"), 30005);
	ck_assert_int_eq(
	    queue_mark_sent(q_st, id, &r, Q_T0 + 3, q_err, sizeof(q_err)), 0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_UNDELIVERED);
	ck_assert_str_eq(q_history(id, h, sizeof(h)),
	    "queued,sending,sent,undelivered");
}
END_TEST

/* A report that echoes our id while the message is still sending. */
START_TEST(test_queue_status_early_by_msg_id)
{
	struct queue_result r = {.provider = "kannel", .provider_id = "k-9"};
	struct status_update u = {.status = MSG_ST_FAILED, .code = 16};
	char h[256];
	int64_t id;

	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), id);
	u.msg_id = id;
	ck_assert_int_eq(q_update("kannel", &u, Q_T0 + 1, QUEUE_SU_EARLY), id);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM status_early"
				  " WHERE provider_message_id LIKE '#%'"),
	    1);
	ck_assert_int_eq(
	    queue_mark_sent(q_st, id, &r, Q_T0 + 2, q_err, sizeof(q_err)), 0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_FAILED);
	ck_assert_str_eq(q_history(id, h, sizeof(h)),
	    "queued,sending,sent,failed");
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM status_early"), 0);
	/* Once sent, our id finds it directly ... */
	id = q_sent_as("kannel", "k-10", Q_T0);
	u.msg_id = id;
	u.status = MSG_ST_DELIVERED;
	ck_assert_int_eq(q_update("kannel", &u, Q_T0 + 3, QUEUE_SU_APPLIED),
	    id);
	/* ... but not through another provider, nor an inbound message. */
	id = q_sent_as("kannel", "k-11", Q_T0);
	u.msg_id = id;
	ck_assert_int_eq(q_update("twilio", &u, Q_T0 + 4, QUEUE_SU_EARLY), 0);
	u.msg_id = 99999;
	ck_assert_int_eq(q_update("kannel", &u, Q_T0 + 4, QUEUE_SU_EARLY), 0);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM status_early"), 0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_SENT);
}
END_TEST

/* Kept reports are ignored after an hour and dropped by the next keep. */
START_TEST(test_queue_status_early_expires)
{
	struct queue_result r = {.provider = "twilio", .provider_id = "SM400"};
	struct status_update u;
	const int64_t hour = 3600 * 1000;
	int64_t id;

	u = q_report("SM400", MSG_ST_DELIVERED, 0, 0);
	q_update("twilio", &u, Q_T0, QUEUE_SU_EARLY);
	id = q_enqueue(MSG_PRIO_DEFAULT, Q_T0);
	ck_assert_int_eq(q_claim1(Q_T0), id);
	ck_assert_int_eq(queue_mark_sent(q_st, id, &r, Q_T0 + hour + 1, q_err,
			     sizeof(q_err)),
	    0);
	ck_assert_int_eq(queue_status(q_st, id, q_err, sizeof(q_err)),
	    MSG_ST_SENT);
	u = q_report("SM401", MSG_ST_DELIVERED, 0, 0);
	q_update("twilio", &u, Q_T0 + hour + 1, QUEUE_SU_EARLY);
	ck_assert_int_eq(q_db_int("SELECT group_concat(provider_message_id)"
				  " = 'SM401' FROM status_early"),
	    1);
}
END_TEST

START_TEST(test_queue_status_invalid)
{
	struct status_update u;
	int64_t id = -1;

	u = q_report("SM500", MSG_ST_QUEUED, 0, 0);
	ck_assert_int_eq(
	    queue_status_update(q_st,
		&(struct queue_webhook){.provider = "twilio", .now = Q_T0}, &u,
		&id, q_err, sizeof(q_err)),
	    -1);
	ck_assert_int_eq(id, 0);
	ck_assert_str_eq(q_err,
	    "status report: state 0 is not sent, "
	    "delivered, undelivered or failed");
	u = q_report("", MSG_ST_DELIVERED, 0, 0);
	ck_assert_int_eq(
	    queue_status_update(q_st,
		&(struct queue_webhook){.provider = "twilio", .now = Q_T0}, &u,
		&id, q_err, sizeof(q_err)),
	    -1);
	ck_assert_str_eq(q_err, "status report: names no message");
	u = q_report("SM500", MSG_ST_DELIVERED, 0, 0);
	ck_assert_int_eq(
	    queue_status_update(q_st,
		&(struct queue_webhook){.provider = NULL, .now = Q_T0}, &u, &id,
		q_err, sizeof(q_err)),
	    -1);
	ck_assert_str_eq(q_err, "status report: provider required");
	ck_assert(!store_in_transaction(q_st));
}
END_TEST

/* --- carrier opt-outs (store_members) --- */

static void
q_optout(enum channel ch, const char *addr, int64_t msg, int64_t now)
{
	ck_assert_msg(store_member_optout(q_st, addr,
			  &(struct consent_change){.ch = ch,
			      .source = "provider",
			      .message_id = msg,
			      .now = now},
			  q_err, sizeof(q_err)) == 0,
	    "store_member_optout: %s", q_err);
}

START_TEST(test_queue_optout_records)
{
	q_optout(CHANNEL_SMS, "+15551230009", 12, Q_T0);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM members WHERE"
				  " phone = '+15551230009' AND email IS NULL"),
	    1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM sms_optout o JOIN"
				  " members m ON m.id = o.member_id WHERE"
				  " o.source = 'provider'"),
	    1);
	ck_assert_int_eq(q_db_int(
			     "SELECT count(*) FROM consent_events WHERE"
			     " channel = 'sms' AND action = 'opt_out'"
			     " AND source = 'provider' AND message_id = 12"),
	    1);
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_SMS, "+15551230009",
			     q_err, sizeof(q_err)),
	    1);
	/* Idempotent: the first record stays, no second event. */
	q_optout(CHANNEL_SMS, "+15551230009", 13, Q_T0 + 1000);
	q_flush();
	q_optout(CHANNEL_SMS, "+15551230009", 0, Q_T0 + 2000);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM members"), 1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM consent_events"), 1);
	ck_assert_int_eq(q_db_int("SELECT opted_out_at FROM sms_optout"), Q_T0);
	/* SMS and email are separate; email is matched lower-cased. */
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_EMAIL,
			     "ann@example.org", q_err, sizeof(q_err)),
	    0);
	q_optout(CHANNEL_EMAIL, "Ann@Example.ORG", 0, Q_T0);
	q_optout(CHANNEL_EMAIL, "ann@example.org", 0, Q_T0);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM members WHERE"
				  " email = 'ann@example.org'"),
	    1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM consent_events WHERE"
				  " channel = 'email' AND message_id IS NULL"),
	    1);
	ck_assert_int_eq(queue_is_suppressed(q_st, CHANNEL_EMAIL,
			     "ANN@example.org", q_err, sizeof(q_err)),
	    1);
}
END_TEST

START_TEST(test_queue_optout_existing_member)
{
	q_db_exec("INSERT INTO members (id, phone, email, created_at,"
		  " updated_at) VALUES (7, '+15551230010', 'bo@example.org',"
		  " 0, 0)");
	q_optout(CHANNEL_SMS, "+15551230010", 0, Q_T0);
	q_optout(CHANNEL_EMAIL, "bo@example.org", 0, Q_T0);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM members"), 1);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM consent_events"
				  " WHERE member_id = 7"),
	    2);
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM sms_optout"
				  " WHERE member_id = 7"),
	    1);
	ck_assert_int_eq(store_member_optout(q_st, "",
			     &(struct consent_change){.ch = CHANNEL_SMS,
				 .source = "provider",
				 .now = Q_T0},
			     q_err, sizeof(q_err)),
	    -1);
	ck_assert_int_eq(store_member_optout(q_st, "+15551230011",
			     &(struct consent_change){.ch = CHANNEL_SMS,
				 .source = "",
				 .now = Q_T0},
			     q_err, sizeof(q_err)),
	    -1);
	ck_assert_str_eq(q_err, "opt-out: source required");
	ck_assert_int_eq(q_db_int("SELECT count(*) FROM members"), 1);
}
END_TEST

static TCase *
q_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, q_root_setup, q_root_teardown);
	tcase_add_checked_fixture(tc, q_setup, q_teardown);
	tcase_set_timeout(tc, 60); /* fsync-bound on slow disks */
	return tc;
}

Suite *
queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc;

	tc = q_tcase("store");
	tcase_add_test(tc, test_queue_open_creates_and_migrates);
	tcase_add_test(tc, test_queue_reopen_keeps_data);
	tcase_add_test(tc, test_queue_migrate_15_drops_sending_index);
	tcase_add_test(tc, test_queue_second_open_refused);
	tcase_add_test(tc, test_queue_newer_schema_refused);
	tcase_add_test(tc, test_queue_open_missing_dir_names_path);
	tcase_add_test(tc, test_queue_stmt_cache);
	suite_add_tcase(s, tc);

	tc = q_tcase("group_commit");
	tcase_add_test(tc, test_queue_group_commit_loop);
	tcase_add_test(tc, test_queue_group_commit_batches_turn);
	tcase_add_test(tc, test_queue_commit_without_transaction);
	tcase_add_test(tc, test_queue_abort_group);
	tcase_add_test(tc, test_queue_callback_writes_next_group);
	tcase_add_test(tc, test_queue_commit_delay);
	tcase_add_test(tc, test_queue_commit_lost_transaction_fails);
	tcase_add_test(tc, test_queue_close_runs_callbacks);
	tcase_add_test(tc, test_queue_pipelined_ack_after_sync);
	tcase_add_test(tc, test_queue_pipelined_flush_settles);
	suite_add_tcase(s, tc);

	tc = q_tcase("claim");
	tcase_add_test(tc, test_queue_claim_order);
	tcase_add_test(tc, test_queue_claim_batches);
	tcase_add_test(tc, test_queue_claim_not_before);
	tcase_add_test(tc, test_queue_claim_fields_and_lease);
	tcase_add_test(tc, test_queue_claim_routes);
	tcase_add_test(tc, test_queue_enqueue_validation);
	suite_add_tcase(s, tc);

	tc = q_tcase("transitions");
	tcase_add_test(tc, test_queue_mark_sent);
	tcase_add_test(tc, test_queue_mark_retry);
	tcase_add_test(tc, test_queue_mark_final_states);
	tcase_add_test(tc, test_queue_release);
	tcase_add_test(tc, test_queue_illegal_transitions);
	tcase_add_test(tc, test_queue_failed_op_fails_group);
	tcase_add_test(tc, test_queue_failed_statement_keeps_group);
	suite_add_tcase(s, tc);

	tc = q_tcase("recovery");
	tcase_add_test(tc, test_queue_recover);
	tcase_add_test(tc, test_queue_reclaim_expired_leases);
	tcase_add_test(tc, test_queue_expire);
	tcase_add_test(tc, test_queue_idle_tick_writes_nothing);
	suite_add_tcase(s, tc);

	tc = q_tcase("idempotency");
	tcase_add_test(tc, test_queue_idempotency);
	suite_add_tcase(s, tc);

	tc = q_tcase("suppression");
	tcase_add_test(tc, test_queue_suppression);
	suite_add_tcase(s, tc);

	tc = q_tcase("json");
	tcase_add_test(tc, test_queue_message_json);
	tcase_add_test(tc, test_queue_message_json_error);
	tcase_add_test(tc, test_queue_count_by_status);
	suite_add_tcase(s, tc);

	tc = q_tcase("backoff");
	tcase_add_test(tc, test_queue_backoff_schedule);
	suite_add_tcase(s, tc);

	tc = q_tcase("inbound");
	tcase_add_test(tc, test_queue_inbound_store);
	tcase_add_test(tc, test_queue_inbound_dedupe);
	tcase_add_test(tc, test_queue_inbound_member_and_validation);
	suite_add_tcase(s, tc);

	tc = q_tcase("status_update");
	tcase_add_test(tc, test_queue_status_forward_only);
	tcase_add_test(tc, test_queue_status_failure_code);
	tcase_add_test(tc, test_queue_status_sequence);
	tcase_add_test(tc, test_queue_status_early);
	tcase_add_test(tc, test_queue_mark_sent_batch);
	tcase_add_test(tc, test_queue_rows_read_must_move);
	tcase_add_test(tc, test_queue_suppressed_batch);
	tcase_add_test(tc, test_queue_status_early_upgrade);
	tcase_add_test(tc, test_queue_status_early_by_msg_id);
	tcase_add_test(tc, test_queue_status_early_expires);
	tcase_add_test(tc, test_queue_status_invalid);
	suite_add_tcase(s, tc);

	tc = q_tcase("optout");
	tcase_add_test(tc, test_queue_optout_records);
	tcase_add_test(tc, test_queue_optout_existing_member);
	suite_add_tcase(s, tc);
	return s;
}
