/*
 * check_schema.c - unit tests of migration 010_status_check.sql (issue 12,
 * accept path): the CHECK on messages.status becomes a chain of
 * equalities, edited in place under writable_schema, on a database that
 * already holds messages.
 *
 * A database is built at schema 9 with plain SQLite (the embedded
 * store_migrations[] up to 9), given one message in each of the ten
 * states and a history row, then opened with store_open(), which
 * migrates it. The tests show: the rows are intact, integrity_check is
 * ok, the CHECK still refuses a state outside the set on INSERT and on
 * UPDATE and accepts each state in it, and an INSERT's program (EXPLAIN)
 * no longer opens an ephemeral table, on the migrating connection itself
 * (the runner's schema_version bump makes it parse the edited text). A
 * database whose messages table reads otherwise is refused with the
 * guard's reason and left at 9.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sqlite3.h>

#include "check_suites.h"
#include "check_util.h"
#include "store-internal.h"

#define S_OLD_VERSION 9 /* the schema before 010_status_check.sql */

/* The program of an enqueue-shaped INSERT, for its opcodes. */
#define S_INSERT                                                           \
	"INSERT INTO messages (direction, channel, to_addr, body, status," \
	" next_attempt_at, created_at, updated_at) VALUES ('out', 'sms',"  \
	" '+15550100000', 'hi', ?1, 0, 0, 0)"

static const char *const s_states[] = {"queued", "sending", "sent", "delivered",
    "undelivered", "failed", "expired", "cancelled", "suppressed", "received"};
#define S_NSTATES (sizeof(s_states) / sizeof(s_states[0]))

/* Every message and history row, in one string, to compare before/after. */
#define S_ROWS                                                              \
	"SELECT group_concat(id || ':' || status || ':' || body, ',') FROM" \
	" (SELECT id, status, body FROM messages UNION ALL SELECT"          \
	" message_id, status, text FROM message_events ORDER BY 1, 2)"

static char s_dir[64];
static char s_path[128];
static char s_err[512];
static struct store *s_st;

static void
s_setup(void)
{
	snprintf(s_dir, sizeof(s_dir), "/tmp/check_schema.XXXXXX");
	if (mkdtemp(s_dir) == NULL)
		ck_abort_msg("mkdtemp %s failed", s_dir);
	snprintf(s_path, sizeof(s_path), "%s/outreachd.db", s_dir);
	s_st = NULL;
}

static void
s_teardown(void)
{
	if (s_st != NULL)
		store_close(s_st);
	s_st = NULL;
	cku_rmtree(s_dir);
}

static void
s_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK,
	    "%s: %s", sql, err != NULL ? err : "?");
}

/* The first column of the first row of 'sql', as a malloc'd string. */
static char *
s_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt;
	const unsigned char *t;
	char *out;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
	t = sqlite3_column_text(stmt, 0);
	out = strdup(t != NULL ? (const char *)t : "");
	sqlite3_finalize(stmt);
	return out;
}

/* How many instructions of S_INSERT's program are 'opcode'. */
static int
s_opcodes(sqlite3 *db, const char *opcode)
{
	sqlite3_stmt *stmt;
	const unsigned char *op;
	int n = 0;

	ck_assert_int_eq(
	    sqlite3_prepare_v2(db, "EXPLAIN " S_INSERT, -1, &stmt, NULL),
	    SQLITE_OK);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		op = sqlite3_column_text(stmt, 1);
		if (op != NULL && strcmp((const char *)op, opcode) == 0)
			n++;
	}
	sqlite3_finalize(stmt);
	return n;
}

/* The result code of S_INSERT with 'status'. */
static int
s_insert(sqlite3 *db, const char *status)
{
	sqlite3_stmt *stmt;
	int rc;

	ck_assert_int_eq(sqlite3_prepare_v2(db, S_INSERT, -1, &stmt, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(stmt, 1, status, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc;
}

/* The result code of setting message 'id' to 'status'. */
static int
s_update(sqlite3 *db, int id, const char *status)
{
	sqlite3_stmt *stmt;
	int rc;

	ck_assert_int_eq(sqlite3_prepare_v2(db,
			     "UPDATE messages SET status = ?2 WHERE id = ?1",
			     -1, &stmt, NULL),
	    SQLITE_OK);
	sqlite3_bind_int(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, status, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc;
}

/*
 * Writes a database at schema 9 with one message per state (ids 1..10,
 * in s_states order) and a history row for the first; returns its rows
 * as S_ROWS reads them. 'edit', if not NULL, runs last (to make the
 * stored CREATE text differ).
 */
static char *
s_make_old(const char *edit)
{
	const struct store_migration *m;
	char sql[512], *rows;
	sqlite3 *db;
	size_t i;

	ck_assert_int_eq(sqlite3_open(s_path, &db), SQLITE_OK);
	for (m = store_migrations; m->sql != NULL; m++)
		if (m->version <= S_OLD_VERSION)
			s_exec(db, m->sql);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", S_OLD_VERSION);
	s_exec(db, sql);
	for (i = 0; i < S_NSTATES; i++) {
		snprintf(sql, sizeof(sql),
		    "INSERT INTO messages (id, direction, channel, to_addr,"
		    " body, status, next_attempt_at, created_at, updated_at)"
		    " VALUES (%zu, 'out', 'sms', '+15550100000', 'body %zu',"
		    " '%s', 0, 0, 0)",
		    i + 1, i + 1, s_states[i]);
		s_exec(db, sql);
	}
	s_exec(db,
	    "INSERT INTO message_events (message_id, status, text,"
	    " created_at) VALUES (1, 'queued', 'accepted', 0)");
	/* The premise: before 010, every INSERT builds a b-tree of states. */
	ck_assert_int_eq(s_opcodes(db, "OpenEphemeral"), 1);
	if (edit != NULL) {
		s_exec(db, "PRAGMA writable_schema = ON");
		s_exec(db, edit);
		s_exec(db, "PRAGMA writable_schema = OFF");
	}
	rows = s_text(db, S_ROWS);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	return rows;
}

START_TEST(test_status_check_migrates_existing_rows)
{
	char *before, *after, *ok, *text;
	sqlite3 *db;
	size_t i;

	before = s_make_old(NULL);
	s_st = store_open(s_path, s_err, sizeof(s_err));
	ck_assert_msg(s_st != NULL, "store_open: %s", s_err);
	ck_assert_int_gt(store_schema_version(s_st), S_OLD_VERSION);
	db = store_db(s_st);

	after = s_text(db, S_ROWS);
	ck_assert_str_eq(after, before);
	ok = s_text(db, "PRAGMA integrity_check");
	ck_assert_str_eq(ok, "ok");
	text = s_text(db,
	    "SELECT sql FROM sqlite_schema WHERE name ="
	    " 'messages'");
	ck_assert_ptr_null(strstr(text, "status IN ("));
	ck_assert_ptr_nonnull(strstr(text, "OR status = 'received'"));

	/* This connection migrated and already runs the new program. */
	ck_assert_int_eq(s_opcodes(db, "OpenEphemeral"), 0);

	/* The same set: outside it refused, on INSERT and UPDATE. */
	ck_assert_int_eq(s_insert(db, "bogus"), SQLITE_CONSTRAINT);
	ck_assert_int_eq(sqlite3_extended_errcode(db), SQLITE_CONSTRAINT_CHECK);
	ck_assert_int_eq(s_insert(db, "Queued"), SQLITE_CONSTRAINT);
	ck_assert_int_eq(s_update(db, 1, "bogus"), SQLITE_CONSTRAINT);
	ck_assert_int_eq(sqlite3_extended_errcode(db), SQLITE_CONSTRAINT_CHECK);
	ck_assert_int_eq(s_update(db, 2, ""), SQLITE_CONSTRAINT);
	for (i = 0; i < S_NSTATES; i++) {
		ck_assert_int_eq(s_insert(db, s_states[i]), SQLITE_DONE);
		ck_assert_int_eq(s_update(db, 1, s_states[i]), SQLITE_DONE);
	}
	free(before);
	free(after);
	free(ok);
	free(text);
}
END_TEST

/* A new database gets the same CHECK (001 then 010 on first open). */
START_TEST(test_status_check_new_database)
{
	sqlite3 *db;

	s_st = store_open(s_path, s_err, sizeof(s_err));
	ck_assert_msg(s_st != NULL, "store_open: %s", s_err);
	db = store_db(s_st);
	ck_assert_int_eq(s_opcodes(db, "OpenEphemeral"), 0);
	ck_assert_int_eq(s_insert(db, "queued"), SQLITE_DONE);
	ck_assert_int_eq(s_insert(db, "queue"), SQLITE_CONSTRAINT);
}
END_TEST

/*
 * A messages table whose CHECK does not read as 001 wrote it is not
 * edited blindly: the migration fails with the guard's name, rolls back,
 * and the database stays at 9 with its text and rows.
 */
START_TEST(test_status_check_unexpected_text_refused)
{
	char *before, *after, *text;
	sqlite3 *db;

	before = s_make_old(
	    "UPDATE sqlite_schema SET sql = replace(sql, '''sending'', "
	    "''sent'',', '''sending'',''sent'',') WHERE name = 'messages'");
	s_st = store_open(s_path, s_err, sizeof(s_err));
	ck_assert_ptr_null(s_st);
	ck_assert_msg(strstr(s_err,
			  "migration 010_status_check.sql failed: "
			  "CHECK constraint failed: "
			  "messages_status_check_not_as_written_"
			  "by_001") != NULL,
	    "%s", s_err);

	ck_assert_int_eq(sqlite3_open(s_path, &db), SQLITE_OK);
	text = s_text(db, "PRAGMA user_version");
	ck_assert_str_eq(text, "9");
	free(text);
	text = s_text(db,
	    "SELECT sql FROM sqlite_schema WHERE name ="
	    " 'messages'");
	ck_assert_ptr_nonnull(strstr(text, "'sending','sent',"));
	after = s_text(db, S_ROWS);
	ck_assert_str_eq(after, before);
	ck_assert_int_eq(s_opcodes(db, "OpenEphemeral"), 1);
	sqlite3_close(db);
	free(before);
	free(after);
	free(text);
}
END_TEST

Suite *
schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("status_check");

	tcase_add_checked_fixture(tc, s_setup, s_teardown);
	tcase_add_test(tc, test_status_check_migrates_existing_rows);
	tcase_add_test(tc, test_status_check_new_database);
	tcase_add_test(tc, test_status_check_unexpected_text_refused);
	suite_add_tcase(s, tc);
	return s;
}
