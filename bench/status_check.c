/*
 * status_check.c - what the CHECK on messages.status costs per INSERT and
 * per status UPDATE, before and after 010_status_check.sql (issue 12,
 * accept path; figures in bench/README.md).
 *
 * Usage: status_check [ROWS [ROUNDS [in|or]]]   (defaults 100000, 3, both)
 *
 * Each round builds two scratch databases from the embedded migrations,
 * one at schema 9 (the IN list) and one at the newest schema (the OR
 * chain), and on each, alternately: inserts ROWS enqueue-shaped messages
 * (one prepared statement, 1000 rows per transaction), then moves every
 * message to 'sending' and then to 'sent' (UPDATE by id). It prints the
 * process CPU time (user + system, getrusage) per row of each phase, and
 * how many OpenEphemeral instructions the INSERT's program has:
 *   status_check form=in round=1 ephemeral=1 insert_us=.. update_us=..
 * synchronous=OFF keeps fsync out of the figures: only the CPU of the
 * statements is compared, on the same machine in the same run. With a
 * third argument only that form runs, e.g. for instructions per row:
 *   valgrind --tool=callgrind --toggle-collect=sc_each_row \
 *       status_check 20000 1 in      (then Ir / 60000: 3 statements a row)
 */
#include "autoconf.h"

#include <sys/resource.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store-internal.h"

#define SC_ROWS_DEFAULT	  100000
#define SC_ROUNDS_DEFAULT 3
#define SC_BATCH	  1000
#define SC_OLD_VERSION	  9 /* before 010_status_check.sql */

#define SC_INSERT                                                             \
	"INSERT INTO messages (direction, channel, member_id, to_addr, body," \
	" status, next_attempt_at, created_at, updated_at) VALUES ('out',"    \
	" 'sms', ?1, '+15550100000', 'Rally at noon on Main St', 'queued',"   \
	" 0, 0, 0)"

static void
sc_die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "status_check: %s: %s\n", what,
	    db != NULL ? sqlite3_errmsg(db) : "?");
	exit(1);
}

static void
sc_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		sc_die(db, sql);
}

static double
sc_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/*
 * A scratch database at 'version' (0: the newest), opened again after the
 * migrations so that the connection reads the schema as stored (010
 * edits the stored text; store.c's runner bumps schema_version for that).
 */
static sqlite3 *
sc_open(const char *path, int version)
{
	const struct store_migration *m;
	sqlite3 *db;

	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		sc_die(db, path);
	for (m = store_migrations; m->sql != NULL; m++) {
		if (version != 0 && m->version > version)
			break;
		sc_exec(db, "BEGIN");
		sc_exec(db, m->sql);
		sc_exec(db, "COMMIT");
	}
	sqlite3_close(db);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		sc_die(db, path);
	sc_exec(db, "PRAGMA journal_mode = WAL");
	sc_exec(db, "PRAGMA synchronous = OFF");
	sc_exec(db, "PRAGMA foreign_keys = ON");
	sc_exec(db, "PRAGMA temp_store = MEMORY");
	return db;
}

static int
sc_ephemeral(sqlite3 *db)
{
	sqlite3_stmt *stmt;
	int n = 0;

	if (sqlite3_prepare_v2(db, "EXPLAIN " SC_INSERT, -1, &stmt, NULL) !=
	    SQLITE_OK)
		sc_die(db, "EXPLAIN");
	while (sqlite3_step(stmt) == SQLITE_ROW)
		if (strcmp((const char *)sqlite3_column_text(stmt, 1),
			"OpenEphemeral") == 0)
			n++;
	sqlite3_finalize(stmt);
	return n;
}

/* Runs 'sql' once per row id 1..rows, binding ?1; CPU us per row. */
static double
sc_each_row(sqlite3 *db, const char *sql, int rows)
{
	sqlite3_stmt *stmt;
	double t0;
	int i;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		sc_die(db, sql);
	t0 = sc_cpu_us();
	for (i = 1; i <= rows; i++) {
		if ((i - 1) % SC_BATCH == 0)
			sc_exec(db, "BEGIN");
		sqlite3_bind_int(stmt, 1, i);
		if (sqlite3_step(stmt) != SQLITE_DONE)
			sc_die(db, sql);
		sqlite3_reset(stmt);
		if (i % SC_BATCH == 0 || i == rows)
			sc_exec(db, "COMMIT");
	}
	sqlite3_finalize(stmt);
	return (sc_cpu_us() - t0) / rows;
}

static void
sc_round(const char *path, int version, int rows, int round)
{
	sqlite3 *db = sc_open(path, version);
	double ins, upd;

	ins = sc_each_row(db, SC_INSERT, rows);
	upd = sc_each_row(db,
	    "UPDATE messages SET status = 'sending' WHERE id = ?1", rows);
	upd += sc_each_row(db,
	    "UPDATE messages SET status = 'sent' WHERE id = ?1", rows);
	printf("status_check form=%s round=%d ephemeral=%d insert_us=%.2f "
	       "update_us=%.2f\n",
	    version != 0 ? "in" : "or", round, sc_ephemeral(db), ins, upd / 2);
	fflush(stdout);
	sqlite3_close(db);
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/status_check.XXXXXX", path[64], wal[80];
	int rows = argc > 1 ? atoi(argv[1]) : SC_ROWS_DEFAULT;
	int rounds = argc > 2 ? atoi(argv[2]) : SC_ROUNDS_DEFAULT;
	const char *form = argc > 3 ? argv[3] : "both";
	int r;

	if (rows <= 0 || rounds <= 0 ||
	    (strcmp(form, "both") != 0 && strcmp(form, "in") != 0 &&
		strcmp(form, "or") != 0) ||
	    mkdtemp(dir) == NULL) {
		fprintf(stderr,
		    "usage: status_check [ROWS [ROUNDS [in|or]]]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/sc.db", dir);
	for (r = 1; r <= rounds; r++) {
		if (strcmp(form, "or") != 0)
			sc_round(path, SC_OLD_VERSION, rows, r);
		if (strcmp(form, "in") != 0)
			sc_round(path, 0, rows, r);
	}
	unlink(path);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	rmdir(dir);
	return 0;
}
