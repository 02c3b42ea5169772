/*
 * sqlite_raw.c - the raw SQLite ceiling for bench/run: how many enqueue-
 * shaped rows per second this machine's disk allows with the daemon's
 * durability settings (WAL, synchronous=FULL, foreign keys) when rows are
 * committed in groups of BATCH. The daemon's figure is reported as a ratio
 * to this one.
 *
 * Usage: sqlite_raw DBFILE [ROWS [BATCH]]   (defaults 200000, 100)
 * DBFILE must not exist yet; it is created (and left for inspection).
 * Prints one line:
 *   sqlite_raw rows=N batch=B seconds=S rows_per_sec=R
 *
 * Links only SQLite. The CREATE statements copy messages and
 * message_events (with their indexes) from queue/schema/001_initial.sql,
 * with the status CHECK as 010_status_check.sql rewrites it; keep them in
 * step.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define RAW_ROWS_DEFAULT  200000
#define RAW_BATCH_DEFAULT 100
#define RAW_T0		  INT64_C(1795749274123) /* fixed clock: same rows each run */

static const char raw_schema[] =
    "CREATE TABLE messages ("
    " id INTEGER PRIMARY KEY,"
    " direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),"
    " channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),"
    " member_id INTEGER,"
    " sender TEXT,"
    " to_addr TEXT NOT NULL,"
    " from_addr TEXT,"
    " subject TEXT,"
    " body TEXT NOT NULL,"
    " html TEXT,"
    " status TEXT NOT NULL CHECK (status = 'queued' OR status = 'sending'"
    "  OR status = 'sent' OR status = 'delivered'"
    "  OR status = 'undelivered' OR status = 'failed'"
    "  OR status = 'expired' OR status = 'cancelled'"
    "  OR status = 'suppressed' OR status = 'received'),"
    " priority INTEGER NOT NULL DEFAULT 5,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at INTEGER NOT NULL,"
    " lease_until INTEGER,"
    " provider TEXT,"
    " provider_message_id TEXT,"
    " error_code INTEGER,"
    " error_text TEXT,"
    " encoding TEXT,"
    " segments INTEGER,"
    " alert_id INTEGER,"
    " conversation_id INTEGER,"
    " idempotency_key TEXT UNIQUE,"
    " not_before INTEGER,"
    " expires_at INTEGER,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE INDEX messages_due ON messages(channel, sender, priority DESC,"
    " next_attempt_at) WHERE status = 'queued';"
    "CREATE INDEX messages_next_due ON messages(next_attempt_at)"
    " WHERE status = 'queued';"
    "CREATE INDEX messages_expiry ON messages(expires_at)"
    " WHERE status = 'queued' AND expires_at IS NOT NULL;"
    "CREATE INDEX messages_provider_id ON messages(provider,"
    " provider_message_id) WHERE provider_message_id IS NOT NULL;"
    "CREATE INDEX messages_member ON messages(member_id, id);"
    "CREATE INDEX messages_alert ON messages(alert_id, status)"
    " WHERE alert_id IS NOT NULL;"
    "CREATE TABLE message_events ("
    " id INTEGER PRIMARY KEY,"
    " message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
    " status TEXT NOT NULL,"
    " code INTEGER,"
    " text TEXT,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX message_events_message ON message_events(message_id, id);";

/* What queue_enqueue() writes for an API message without extras. */
static const char raw_insert_msg[] =
    "INSERT INTO messages (direction, channel, member_id, sender, to_addr,"
    " from_addr, subject, body, html, status, priority, next_attempt_at,"
    " alert_id, conversation_id, idempotency_key, not_before, expires_at,"
    " created_at, updated_at) VALUES ('out', 'sms', NULL, 'console', ?1,"
    " NULL, NULL, ?2, NULL, 'queued', 5, ?3, NULL, NULL, NULL, NULL, ?4,"
    " ?3, ?3) ON CONFLICT (idempotency_key) DO NOTHING";
static const char raw_insert_event[] =
    "INSERT INTO message_events (message_id, status, code, text, created_at)"
    " VALUES (?1, 'queued', NULL, NULL, ?2)";

/* About 60 bytes, GSM-7, like a typical alert. */
static const char raw_body[] =
    "Rally at City Hall 6pm tonight. Bring a friend! Reply STOP to end";

static void raw_die(sqlite3 *, const char *) __attribute__((noreturn));
static long raw_arg(const char *, const char *, long);
static double raw_now(void);
static void raw_exec(sqlite3 *, const char *);
static void raw_insert_one(sqlite3 *, sqlite3_stmt *, sqlite3_stmt *, long);

int
main(int argc, char *argv[])
{
	sqlite3 *db = NULL;
	sqlite3_stmt *msg = NULL;
	sqlite3_stmt *ev = NULL;
	long rows;
	long batch;
	long i;
	double t0;
	double secs;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: sqlite_raw DBFILE [ROWS [BATCH]]\n");
		return 2;
	}
	rows = argc > 2 ? raw_arg("ROWS", argv[2], RAW_ROWS_DEFAULT)
			: RAW_ROWS_DEFAULT;
	batch = argc > 3 ? raw_arg("BATCH", argv[3], RAW_BATCH_DEFAULT)
			 : RAW_BATCH_DEFAULT;
	if (access(argv[1], F_OK) == 0) {
		fprintf(stderr, "sqlite_raw: %s exists; give a new path\n",
		    argv[1]);
		return 2;
	}
	/* as the daemon's store does: no memory statistics */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_open_v2(argv[1], &db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		raw_die(db, argv[1]);
	raw_exec(db, "PRAGMA journal_mode = WAL");
	raw_exec(db, "PRAGMA synchronous = FULL");
	raw_exec(db, "PRAGMA foreign_keys = ON");
	raw_exec(db, raw_schema);
	if (sqlite3_prepare_v3(db, raw_insert_msg, -1,
		SQLITE_PREPARE_PERSISTENT, &msg, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(db, raw_insert_event, -1,
		SQLITE_PREPARE_PERSISTENT, &ev, NULL) != SQLITE_OK)
		raw_die(db, "prepare");

	t0 = raw_now();
	for (i = 0; i < rows; i++) {
		if (i % batch == 0)
			raw_exec(db, "BEGIN IMMEDIATE");
		raw_insert_one(db, msg, ev, i);
		if (i % batch == batch - 1 || i == rows - 1)
			raw_exec(db, "COMMIT");
	}
	secs = raw_now() - t0;

	sqlite3_finalize(msg);
	sqlite3_finalize(ev);
	sqlite3_close(db);
	printf("sqlite_raw rows=%ld batch=%ld seconds=%.3f rows_per_sec=%.0f\n",
	    rows, batch, secs, secs > 0 ? (double)rows / secs : 0.0);
	return 0;
}

/* One enqueue: the message row and its "queued" history row. */
static void
raw_insert_one(sqlite3 *db, sqlite3_stmt *msg, sqlite3_stmt *ev, long i)
{
	char to[16]; /* E.164: + and up to 15 digits */
	int64_t now = RAW_T0 + i;

	snprintf(to, sizeof(to), "+1555%07ld", i % 10000000);
	sqlite3_bind_text(msg, 1, to, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(msg, 2, raw_body, -1, SQLITE_STATIC);
	sqlite3_bind_int64(msg, 3, now);
	sqlite3_bind_int64(msg, 4, now + 86400000); /* 24 h validity */
	if (sqlite3_step(msg) != SQLITE_DONE)
		raw_die(db, "insert message");
	sqlite3_reset(msg);
	sqlite3_bind_int64(ev, 1, sqlite3_last_insert_rowid(db));
	sqlite3_bind_int64(ev, 2, now);
	if (sqlite3_step(ev) != SQLITE_DONE)
		raw_die(db, "insert event");
	sqlite3_reset(ev);
}

static void
raw_die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "sqlite_raw: %s: %s\n", what,
	    db != NULL ? sqlite3_errmsg(db) : "out of memory");
	exit(1);
}

static long
raw_arg(const char *name, const char *s, long def)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v <= 0) {
		fprintf(stderr,
		    "sqlite_raw: %s must be a positive integer,"
		    " not '%s' (default %ld)\n",
		    name, s, def);
		exit(2);
	}
	return v;
}

static double
raw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
raw_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		raw_die(db, sql);
}
