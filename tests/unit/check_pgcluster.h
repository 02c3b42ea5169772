/*
 * check_pgcluster.h - a throwaway PostgreSQL cluster for the unit suites
 * that need a server (check_pg.c, check_pg_migrate.c, ...), through
 * tests/pg.sh: initdb in a temp dir, a Unix socket only, removed by
 * ckpg_stop() and by pg.sh's watchdog if the test runner dies first.
 *
 * Contract: ckpg_start() is meant for an unchecked fixture (it runs once,
 * in the runner's process). When PostgreSQL's server binaries are missing
 * it prints why, "<who>: PostgreSQL tests skipped", and leaves url empty:
 * the suite's cluster tests then return at once (skipped). When the
 * binaries are there but the cluster does not start, it fails the test.
 */
#ifndef OD_CHECK_PGCLUSTER_H
#define OD_CHECK_PGCLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include <check.h>

/* url: postgresql:///outreachd?host=DIR&user=outreachd, or "" (skip). */
void ckpg_start(const char *who, char *url, size_t urllen);
/* Stops the cluster of url and removes its directory; "" does nothing. */
void ckpg_stop(const char *who, const char *url);
/* pg_ctl restart of url's cluster (reconnection tests); system()'s status. */
int ckpg_restart(const char *url);
/* The URL of database db on url's cluster (db: a plain identifier). */
void ckpg_db_url(const char *url, const char *db, char *out, size_t outlen);
/* Built without libpq: suite 'name' with one test that says it skipped. */
Suite *ckpg_not_built_suite(const char *name);

#ifdef HAVE_LIBPQ
struct pg_answer;

/* One query's answer as the suites' synchronous waits keep it. */
struct ckpg_answer {
	bool done;
	char value[256]; /* the first row's first value; "" for none */
	char error[512]; /* "" on success */
};

/* A pg_done_fn for a struct ckpg_answer (arg): sets done, copies. */
void ckpg_on_answer(void *arg, const struct pg_answer *a);

struct event_base;
struct pg;

/* Runs base until *flag; fails the test after CKPG_DEADLINE_S (a hang). */
#define CKPG_DEADLINE_S 240
void ckpg_run_until(struct event_base *base, const bool *flag,
    const char *what);
/* A connection to url on base (reconnecting after 50..400 ms). */
struct pg *ckpg_connect(struct event_base *base, const char *url);
/*
 * Runs sql ($1 = p1 unless NULL) on pg and waits: the first row's first
 * value ("" for none), valid until the next call; fails the test on an
 * error.
 */
const char *ckpg_sql(struct event_base *base, struct pg *pg, const char *sql,
    const char *p1);

struct store;
/*
 * A fresh database 'db' on url's cluster and n nodes' stores on it,
 * named names[i], opened as the daemon opens them (store_open_config())
 * and attached to base; *check: a connection to it for the test's own
 * reads (NULL: none).
 */
void ckpg_open_nodes(struct event_base *base, const char *url, const char *db,
    const char *const *names, size_t n, struct store **st, struct pg **check);
#endif

#endif
