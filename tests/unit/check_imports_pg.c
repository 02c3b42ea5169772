/*
 * check_imports_pg.c - a CSV import's store operations on PostgreSQL
 * (queue/store_imports_pg.c) against a throwaway cluster
 * (check_pgcluster.h), through PostgreSQL stores opened as the daemon
 * opens them (store_open_config()), two "nodes" on one loop:
 *
 *  - an import created by one node is read by the other, with its state;
 *  - both nodes write the same piece of it in the same turn (two
 *    transactions, each on its node's bulk connection, racing for its
 *    claim): both commit, exactly one piece is claimed, and its rows are
 *    applied once (one member per phone, one subscription and one
 *    consent event each, the counts and the bytes of one piece); without
 *    the claim's guard the second piece's rows would be counted twice;
 *  - a next piece from the bytes that were read before is refused
 *    (claimed false, nothing written); a duplicate of a row of the first
 *    piece is found across pieces, with its line; a row whose phone and
 *    email belong to two members is a conflict, written nowhere but in
 *    the problem rows;
 *  - the row statement is prepared once on each node's bulk connection;
 *  - an abort moves an open import once.
 *
 * The SQLite side is import.c's own (test_import.py runs on both
 * stores). States only, no timing assertions. Skipped, with the reason
 * printed, when PostgreSQL's server binaries are missing; without libpq
 * the suite holds one test that says so.
 */
#include "autoconf.h"

#include <stdio.h>

#include <check.h>

#include "check_suites.h"

#ifndef HAVE_LIBPQ

#include "check_pgcluster.h"

Suite *
imports_pg_suite(void)
{
	return ckpg_not_built_suite("imports_pg");
}

#else /* HAVE_LIBPQ */

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "check_pgcluster.h"
#include "pg.h"
#include "store-internal.h"
#include "store.h"
#include "store_imports_pg.h"

static char pg_url[512]; /* "" = no cluster: the tests skip */
static struct event_base *t_base;
static struct pg *t_pg; /* the test database's connection, for checks */

static void
cluster_start(void)
{
	ckpg_start("check_imports_pg", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_imports_pg", pg_url);
}

static const char *
t_sql(const char *sql)
{
	return ckpg_sql(t_base, t_pg, sql, NULL);
}

/* A fresh database 'db' and two nodes' stores on it; t_pg connected. */
static void
t_open(const char *db, struct store *st[2])
{
	static const char *const names[2] = {"a", "b"};

	ckpg_open_nodes(t_base, pg_url, db, names, 2, st, &t_pg);
}

static void
t_close(struct store *st[2])
{
	store_close(st[0]);
	store_close(st[1]);
	pg_free(t_pg);
	t_pg = NULL;
	event_base_free(t_base);
}

/* A write's answer. */
struct t_done {
	bool done;
	bool ok;
	bool claimed;
};

static void
t_on_done(void *arg, bool ok, bool claimed, const char *error)
{
	struct t_done *t = arg;

	ck_assert(!t->done);
	ck_assert_msg(ok || error != NULL, "failed without a reason");
	t->done = true;
	t->ok = ok;
	t->claimed = claimed;
}

/* The import's state: list 1, 'bytes', 'rows' counted so far. */
static void
t_state(struct imp_pg_row *r, int64_t bytes, int64_t rows)
{
	memset(r, 0, sizeof(*r));
	r->id = "imp1";
	r->state = "open";
	r->list_id = 1;
	r->list = "vol";
	r->source = "sheets";
	r->region = "US";
	r->bytes = bytes;
	r->line = 1;
	r->header = "[[1, \"phone\"], [2, \"email\"]]";
	r->columns = "[]";
	r->reader = "csv1 0 1 0 0 0 0 1 1 0 0 0 0 - - -";
	r->n[IMP_PG_ROWS] = rows;
}

static void
t_piece(struct store *st, const struct imp_pg_piece *p, struct t_done *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(
	    store_import_piece_pg(st, p, t_on_done, t, err, sizeof(err)) == 0,
	    "piece: %s", err);
	ck_assert(!t->done); /* answered from the loop */
}

/* A read's answer: the one import's bytes and counts. */
struct t_read {
	bool done;
	size_t n;
	char state[16];
	int64_t bytes;
	int64_t n_created;
	int64_t n_dup;
	int64_t n_conflicts;
	int64_t issues_total;
	size_t issues;
};

static void
t_on_read(void *arg, const struct imp_pg_row *rows, size_t n, json_t *issues,
    const char *error)
{
	struct t_read *t = arg;

	ck_assert_msg(error == NULL, "read: %s", error);
	t->done = true;
	t->n = n;
	if (n > 0) {
		snprintf(t->state, sizeof(t->state), "%s", rows[0].state);
		t->bytes = rows[0].bytes;
		t->n_created = rows[0].n[IMP_PG_CREATED];
		t->n_dup = rows[0].n[IMP_PG_DUPLICATES];
		t->n_conflicts = rows[0].n[IMP_PG_CONFLICTS];
		t->issues_total = rows[0].n[IMP_PG_ISSUES_TOTAL];
	}
	t->issues = json_array_size(issues);
}

static void
t_read(struct store *st, struct t_read *t)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(store_import_read_pg(st,
			  &(struct imp_pg_read){.id = "imp1",
			      .since = 0,
			      .issues = true,
			      .issues_max = 1000},
			  t_on_read, t, err, sizeof(err)) == 0,
	    "read: %s", err);
	ckpg_run_until(t_base, &t->done, "read");
}

START_TEST(test_piece_race_two_nodes)
{
	static const struct imp_pg_line first[] = {
	    {.line = 2, .phone = "+15550100001", .email = "a@example.org"},
	    {.line = 3, .phone = "+15550100002", .tags = "[\"x\"]"},
	};
	static const struct imp_pg_line second[] = {
	    /* the phone of line 2: a duplicate */
	    {.line = 4, .phone = "+15550100001", .first_name = "Dup"},
	    /* the phone of member 3 and the email of member 4 */
	    {.line = 5, .phone = "+15550100009", .email = "z@example.org"},
	};
	struct store *st[2];
	struct imp_pg_row to[2];
	struct t_done t[2];
	struct t_read r;
	char claim[2][8] = {"c-a", "c-b"};
	int i;

	if (pg_url[0] == '\0')
		return;
	t_base = event_base_new();
	t_open("imports_race", st);
	t_sql("INSERT INTO lists (id, name, created_at, updated_at)"
	      " VALUES (1, 'vol', 1, 1)");
	/* created on A, read on B */
	t_state(&to[0], 0, 0);
	t_piece(st[0],
	    &(struct imp_pg_piece){.to = &to[0],
		.create = true,
		.claim = "c-0",
		.now = 10},
	    &t[0]);
	ckpg_run_until(t_base, &t[0].done, "create");
	ck_assert(t[0].ok && t[0].claimed);
	t_read(st[1], &r);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.state, "open");

	/* the same piece on both nodes in one turn */
	for (i = 0; i < 2; i++) {
		t_state(&to[i], 40, 2);
		t_piece(st[i],
		    &(struct imp_pg_piece){.to = &to[i],
			.from_bytes = 0,
			.claim = claim[i],
			.now = 20,
			.counted = 3,
			.lines = first,
			.nlines = 2},
		    &t[i]);
	}
	ckpg_run_until(t_base, &t[0].done, "piece on a");
	ckpg_run_until(t_base, &t[1].done, "piece on b");
	ck_assert(t[0].ok && t[1].ok);
	ck_assert_int_eq(t[0].claimed + t[1].claimed, 1);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM members"), "2");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM subscriptions"), "3");
	ck_assert_str_eq(t_sql("SELECT string_agg(channel || ' ' || action ||"
			       " ' ' || detail, ',' ORDER BY id) FROM"
			       " consent_events"),
	    "sms opt_in sheets,email opt_in sheets,sms opt_in sheets");
	ck_assert_str_eq(t_sql("SELECT tags FROM members WHERE phone ="
			       " '+15550100002'"),
	    "[\"x\"]");
	t_read(st[0], &r);
	ck_assert_int_eq(r.bytes, 40);
	ck_assert_int_eq(r.n_created, 2);

	/* a piece from the bytes read before: refused, nothing written */
	t_state(&to[0], 80, 4);
	t_piece(st[0],
	    &(struct imp_pg_piece){.to = &to[0],
		.from_bytes = 0,
		.claim = "c-late",
		.now = 30,
		.counted = 5,
		.lines = second,
		.nlines = 2},
	    &t[0]);
	ckpg_run_until(t_base, &t[0].done, "late piece");
	ck_assert(t[0].ok && !t[0].claimed);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM import_lines"), "2");

	/* the next piece: a duplicate across pieces, a conflict */
	t_sql("INSERT INTO members (id, phone, created_at, updated_at) VALUES"
	      " (3, '+15550100009', 1, 1), (4, NULL, 1, 1)");
	t_sql("UPDATE members SET email = 'z@example.org' WHERE id = 4");
	t_piece(st[1],
	    &(struct imp_pg_piece){.to = &to[0],
		.from_bytes = 40,
		.claim = "c-next",
		.now = 30,
		.counted = 5,
		.lines = second,
		.nlines = 2},
	    &t[1]);
	ckpg_run_until(t_base, &t[1].done, "next piece");
	ck_assert(t[1].ok && t[1].claimed);
	/* the row statement prepared once on each node's bulk connection
	 * (PG_PREPARE), which each node's two pieces used */
	for (i = 0; i < 2; i++) {
		struct pg_stats ps;

		pg_get_stats(store_pg_bulk(st[i]), &ps);
		ck_assert_uint_eq(ps.parses, 1);
	}
	t_read(st[0], &r);
	ck_assert_int_eq(r.bytes, 80);
	ck_assert_int_eq(r.n_created, 2);
	ck_assert_int_eq(r.n_dup, 1);
	ck_assert_int_eq(r.n_conflicts, 1);
	ck_assert_int_eq(r.issues_total, 2);
	ck_assert_uint_eq(r.issues, 2);
	ck_assert_str_eq(t_sql("SELECT string_agg(line || ' ' || kind || ' '"
			       " || reason || ' ' || coalesce(first_line::text,"
			       " '-'), ',' ORDER BY line) FROM import_issues"),
	    "4 duplicate phone +15550100001 already on line 2 2,"
	    "5 conflict phone +15550100009 belongs to member 3 and email"
	    " z@example.org to member 4 -");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM members WHERE"
			       " first_name IS NOT NULL"),
	    "0");

	/* an abort moves an open import once */
	for (i = 0; i < 2; i++) {
		char err[256];

		memset(&t[i], 0, sizeof(t[i]));
		ck_assert_msg(store_import_abort_pg(st[i], "imp1", 40,
				  t_on_done, &t[i], err, sizeof(err)) == 0,
		    "abort: %s", err);
	}
	ckpg_run_until(t_base, &t[0].done, "abort on a");
	ckpg_run_until(t_base, &t[1].done, "abort on b");
	ck_assert(t[0].ok && t[1].ok);
	ck_assert_int_eq(t[0].claimed + t[1].claimed, 1);
	t_read(st[1], &r);
	ck_assert_str_eq(r.state, "aborted");
	t_close(st);
}
END_TEST

Suite *
imports_pg_suite(void)
{
	Suite *s = suite_create("imports_pg");
	TCase *tc = tcase_create("pg");

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_piece_race_two_nodes);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
