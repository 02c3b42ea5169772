/*
 * pg_migrate.c - the PostgreSQL schema runner and the durability check
 * (issue 13; doc/postgresql.md). Contract: queue/pg_migrate.h.
 *
 * DESIGN
 *
 * One transaction per migration, each a fresh look. A run is a series of
 * rounds on one connection; each round is
 *
 *	BEGIN ISOLATION LEVEL READ COMMITTED
 *	SELECT pg_advisory_xact_lock(PG_MIGRATE_LOCK_KEY)
 *	CREATE TABLE IF NOT EXISTS schema_version (...)
 *	SELECT coalesce(max(version), 0) FROM schema_version
 *
 * pipelined, then, on the version's answer: COMMIT if the database is up
 * to date; ROLLBACK and an error if it is newer than this build; else the
 * next migration's text, and on its answer its schema_version row and
 * COMMIT (or ROLLBACK on an error). Every statement of a round goes out
 * with the ones before it still in flight or answered on the same
 * connection, never queued behind a query that may be lost: a query
 * still waiting when the connection drops runs on the next connection,
 * outside the transaction (a guard checks the backend's pid too). The
 * version
 * is read only once the lock is held, so when three nodes start together
 * one applies a migration while the others wait on the lock, then read
 * the version it committed and apply nothing twice. The lock is the
 * transaction-scoped kind: a node that dies mid-migration loses its
 * transaction and its lock together, and the next node starts from what
 * was committed. schema_version's primary key is a second guard: a
 * migration recorded twice would fail its transaction, not run twice.
 * READ COMMITTED is explicit: each statement sees what was committed when
 * it starts, so the version read after the lock is the newest (under a
 * database default of REPEATABLE READ, the snapshot of the lock's own
 * statement, taken before the wait, would hide the other node's COMMIT).
 *
 * Who creates schema_version: this runner, not migration 001. The version
 * must be read before anything is known about the database, including
 * whether 001 ran; with the table created by the runner under the lock
 * (CREATE TABLE IF NOT EXISTS inside the locked transaction, so two nodes
 * never race on the catalog), "no row" simply means version 0, and the
 * migration files stay the twins of the SQLite ones, which keep their
 * version in PRAGMA user_version. tests/integration/test_pg_schema.py
 * lists schema_version as PostgreSQL's bookkeeping, like SQLite's pragma.
 * One row per migration (version, file name, time, node) rather than one
 * counter: the history says which node applied what, and when.
 *
 * Sending a migration's text: the simple-query protocol (PG_SIMPLE of
 * queue/pg.c). A migration is many statements, some with PL/pgSQL bodies
 * in $$ quotes, strings and comments. pg.c normally sends one statement
 * per PQsendQueryParams; splitting the files here would mean a second SQL
 * lexer (dollar quotes with tags, E'' strings, nested comments, standard
 * strings) that could disagree with the server's. With PG_SIMPLE the
 * server itself splits the text, exactly as psql -f applies the same
 * files in the tests; the driver leaves pipeline mode for that query
 * only. It costs a drain of the pipeline per migration, at start-up.
 * The statements run inside the round's explicit transaction: an error
 * anywhere aborts it, the runner then sends ROLLBACK instead of the
 * version row and COMMIT, so a migration is applied entirely or not at
 * all (and a COMMIT answered "ROLLBACK" counts as a failure too).
 *
 * The durability check: SHOW synchronous_commit. on, remote_write,
 * remote_apply and local all make COMMIT wait for the local WAL flush
 * (they differ only in what they wait for on standbys); off answers
 * COMMIT before the flush, so a 202 sent on it could be lost with the
 * server. Only off is refused. It is per session (postgresql.conf, ALTER
 * DATABASE/ROLE ... SET, or options= in the URL), hence checked on the
 * connection the store will use.
 *
 * A lost connection mid-run fails the run (with maybe_ran, a COMMIT may
 * or may not have happened: the message says the migration is applied
 * entirely or not at all); the caller starts again, and the next run
 * reads the version anew.
 *
 * Ownership: a run owns a copy of the node name; it is freed after its
 * callback, once no query of it is left unanswered.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "pg_migrate.h"
#include "xmalloc.h"

#define MIG_ERR_MAX 640
#define MIG_LABELS  8 /* >= the queries of a round in flight at once */

static const char mig_create_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version BIGINT NOT NULL PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
    " applied_by TEXT)";
static const char mig_insert_sql[] =
    "INSERT INTO schema_version (version, name, applied_by) "
    "VALUES ($1, $2, $3)";

struct mig_run {
	struct pg *pg;
	const struct store_migration *list;
	int newest;
	char *node;
	pg_migrate_fn *done;
	void *arg;

	/* What each query in flight is, in sending order (answers come in
	 * the same order): for error messages. */
	const char *labels[MIG_LABELS];
	unsigned nsent, nanswered;

	int pid;     /* the backend BEGIN ran on; 0 before */
	int version; /* read in this round */
	int applied; /* by this run */
	const struct store_migration *cur; /* being applied this round */
	char cur_label[96];		   /* "migration NNN_name.sql" */
	bool committing;		   /* the round ends with COMMIT */
	bool failed;
	char error[MIG_ERR_MAX];
};

/* The answer's error as one line, with its SQLSTATE when there is one. */
static void
mig_answer_error(const struct pg_answer *a, char *out, size_t outlen)
{
	if (a->sqlstate != NULL)
		snprintf(out, outlen, "%s (SQLSTATE %s)", a->error,
		    a->sqlstate);
	else
		snprintf(out, outlen, "%s", a->error);
}

/* Records the first error of the run. */
static void
mig_fail(struct mig_run *r, const char *msg)
{
	if (r->failed)
		return;
	r->failed = true;
	snprintf(r->error, sizeof(r->error), "%s", msg);
}

/*
 * Takes the answer's label; records its error, if any, under it. A
 * statement of the round answered by another backend than its BEGIN ran
 * outside the transaction: that is an error too (a guard; the order of
 * sending above keeps it from happening).
 */
static void
mig_answered(struct mig_run *r, const struct pg_answer *a)
{
	const char *label = r->labels[r->nanswered++ % MIG_LABELS];
	char why[MIG_ERR_MAX / 2];
	char msg[MIG_ERR_MAX];

	if (a->error == NULL && !r->failed && r->pid != 0 &&
	    pg_backend_pid(r->pg) != r->pid) {
		snprintf(msg, sizeof(msg),
		    "%s: the connection changed in the middle of the "
		    "migration's transaction",
		    label);
		mig_fail(r, msg);
	}
	if (a->error == NULL || r->failed)
		return;
	mig_answer_error(a, why, sizeof(why));
	if (a->maybe_ran && r->cur != NULL)
		snprintf(msg, sizeof(msg),
		    "%s: %s (migration %s was committed entirely or not at "
		    "all: start again)",
		    label, why, r->cur->name);
	else
		snprintf(msg, sizeof(msg), "%s: %s", label, why);
	mig_fail(r, msg);
}

static void
mig_send(struct mig_run *r, const struct pg_query *q, const char *label)
{
	char err[256];
	char msg[MIG_ERR_MAX];

	if (pg_send(r->pg, q, err, sizeof(err)) == -1) {
		snprintf(msg, sizeof(msg), "%s: %s", label, err);
		mig_fail(r, msg);
		return;
	}
	r->labels[r->nsent++ % MIG_LABELS] = label;
}

/* A query with no parameters, answered to fn. */
static void
mig_sql(struct mig_run *r, const char *sql, unsigned flags, pg_done_fn *fn,
    const char *label)
{
	struct pg_query q;

	memset(&q, 0, sizeof(q));
	q.sql = sql;
	q.flags = flags;
	q.done = fn;
	q.arg = r;
	mig_send(r, &q, label);
}

/* Ends the run if it failed or is done and nothing is left in flight. */
static void
mig_finish(struct mig_run *r)
{
	struct pg_migrate_result res;

	if (r->nsent != r->nanswered)
		return;
	res.error = r->failed ? r->error : NULL;
	res.version = r->version;
	res.applied = r->applied;
	if (r->failed)
		log_info("pg_migrate_failed node=%s version=%d applied=%d "
			 "error=\"%s\"",
		    r->node, r->version, r->applied, r->error);
	else
		log_info("pg_migrate_done node=%s version=%d applied=%d",
		    r->node, r->version, r->applied);
	r->done(r->arg, &res);
	free(r->node);
	free(r);
}

static void mig_round(struct mig_run *r);

/* The lock, CREATE TABLE, the migration's INSERT: errors only. */
static void
mig_on_step(void *arg, const struct pg_answer *a)
{
	mig_answered(arg, a);
}

/* BEGIN: the round's backend, for mig_answered()'s guard. */
static void
mig_on_begin(void *arg, const struct pg_answer *a)
{
	struct mig_run *r = arg;

	r->pid = 0;
	mig_answered(r, a);
	if (a->error == NULL)
		r->pid = pg_backend_pid(r->pg);
}

/* SHOW synchronous_commit: "off" is refused (see DESIGN). */
static const char *
mig_durability_error(const struct pg_answer *a)
{
	const char *v;

	if (a->error != NULL || a->res == NULL || PQntuples(a->res) != 1)
		return NULL; /* reported as the query's own error */
	v = PQgetvalue(a->res, 0, 0);
	if (strcmp(v, "off") != 0)
		return NULL;
	return "synchronous_commit is off on this PostgreSQL connection: a "
	       "COMMIT would be answered before it is durable, and outreachd "
	       "answers 202 only after a durable COMMIT; set synchronous_commit "
	       "= on (postgresql.conf, ALTER DATABASE or ALTER ROLE ... SET, or "
	       "options in the URL)";
}

static void
mig_on_sync_commit(void *arg, const struct pg_answer *a)
{
	struct mig_run *r = arg;
	const char *why = mig_durability_error(a);

	mig_answered(r, a);
	if (why != NULL)
		mig_fail(r, why);
}

/* COMMIT or ROLLBACK: the round is over. */
static void
mig_on_end(void *arg, const struct pg_answer *a)
{
	struct mig_run *r = arg;
	char msg[MIG_ERR_MAX];

	mig_answered(r, a);
	/* COMMIT of an aborted transaction answers "ROLLBACK". */
	if (!r->failed && r->committing && a->res != NULL &&
	    strcmp(PQcmdStatus((PGresult *)a->res), "COMMIT") != 0) {
		snprintf(msg, sizeof(msg), "COMMIT answered %s",
		    PQcmdStatus((PGresult *)a->res));
		mig_fail(r, msg);
	}
	if (!r->failed && r->cur != NULL) {
		log_info("pg_migrate_applied node=%s version=%d name=%s",
		    r->node, r->cur->version, r->cur->name);
		r->version = r->cur->version;
		r->applied++;
		r->cur = NULL;
		mig_round(r);
		if (!r->failed)
			return;
	}
	mig_finish(r);
}

/* The first migration newer than 'version', or NULL. */
static const struct store_migration *
mig_next(const struct mig_run *r, int version)
{
	const struct store_migration *m;

	for (m = r->list; m->sql != NULL; m++)
		if (m->version > version)
			return m;
	return NULL;
}

/*
 * The migration's text is answered: on success its schema_version row and
 * COMMIT (pipelined together), else ROLLBACK. Sent only now, not queued
 * behind the text: queries that wait behind a PG_SIMPLE one are not in
 * flight, so a connection lost under the text would have let them run on
 * the next connection, outside the transaction (the version recorded
 * without its migration).
 */
static void
mig_on_applied(void *arg, const struct pg_answer *a)
{
	struct mig_run *r = arg;
	struct pg_query q;
	char version[16];
	const char *values[3];

	mig_answered(r, a);
	if (r->failed) {
		r->committing = false;
		mig_sql(r, "ROLLBACK", 0, mig_on_end, "ROLLBACK");
		mig_finish(r); /* only if the ROLLBACK could not be sent */
		return;
	}
	snprintf(version, sizeof(version), "%d", r->cur->version);
	values[0] = version;
	values[1] = r->cur->name;
	values[2] = r->node;
	memset(&q, 0, sizeof(q));
	q.sql = mig_insert_sql;
	q.nparams = 3;
	q.values = values;
	q.done = mig_on_step;
	q.arg = r;
	mig_send(r, &q, "schema_version");
	mig_sql(r, "COMMIT", 0, mig_on_end, "COMMIT");
	mig_finish(r); /* only if nothing could be sent */
}

/* Sends the migration m alone (PG_SIMPLE); mig_on_applied() goes on. */
static void
mig_apply(struct mig_run *r, const struct store_migration *m)
{
	r->cur = m;
	r->committing = true;
	snprintf(r->cur_label, sizeof(r->cur_label), "migration %s", m->name);
	mig_sql(r, m->sql, PG_SIMPLE, mig_on_applied, r->cur_label);
}

/* The version is known, and the lock held: decide the round. */
static void
mig_on_version(void *arg, const struct pg_answer *a)
{
	struct mig_run *r = arg;
	const struct store_migration *m;
	char msg[MIG_ERR_MAX];

	mig_answered(r, a);
	if (!r->failed && (a->res == NULL || PQntuples(a->res) != 1))
		mig_fail(r, "schema_version: no version read");
	if (!r->failed)
		r->version = atoi(PQgetvalue(a->res, 0, 0));
	if (!r->failed && r->version > r->newest) {
		snprintf(msg, sizeof(msg),
		    "database schema version %d is newer than this outreachd "
		    "(%d): upgrade outreachd",
		    r->version, r->newest);
		mig_fail(r, msg);
	}
	if (r->failed) {
		r->committing = false;
		mig_sql(r, "ROLLBACK", 0, mig_on_end, "ROLLBACK");
		mig_finish(r); /* only if the ROLLBACK could not be sent */
		return;
	}
	if ((m = mig_next(r, r->version)) == NULL) {
		r->committing = true;
		mig_sql(r, "COMMIT", 0, mig_on_end, "COMMIT");
	} else
		mig_apply(r, m);
	mig_finish(r); /* only if nothing could be sent */
}

/* One round: lock, read the version (see DESIGN). */
static void
mig_round(struct mig_run *r)
{
	mig_sql(r, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, mig_on_begin,
	    "BEGIN");
	mig_sql(r, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK_KEY ")", 0,
	    mig_on_step, "the migration lock");
	mig_sql(r, mig_create_sql, 0, mig_on_step, "CREATE schema_version");
	mig_sql(r, "SELECT coalesce(max(version), 0) FROM schema_version", 0,
	    mig_on_version, "schema_version");
}

/* The newest version of the list; -1 with err if empty or out of order. */
static int
mig_newest(const struct store_migration *list, char *err, size_t errlen)
{
	const struct store_migration *m;
	int newest = 0;

	for (m = list; m->sql != NULL; m++) {
		if (m->version <= newest) {
			snprintf(err, errlen,
			    "migration %s is out of order (version %d after "
			    "%d)",
			    m->name, m->version, newest);
			return -1;
		}
		newest = m->version;
	}
	if (newest == 0) {
		snprintf(err, errlen, "no PostgreSQL migrations");
		return -1;
	}
	return newest;
}

int
pg_migrate(struct pg *pg, const struct pg_migrate_req *req, char *err,
    size_t errlen)
{
	struct mig_run *r;
	const struct store_migration *list =
	    req->migrations != NULL ? req->migrations : pg_migrations;
	int newest;

	if ((newest = mig_newest(list, err, errlen)) == -1)
		return -1;
	r = xcalloc(1, sizeof(*r));
	r->pg = pg;
	r->list = list;
	r->newest = newest;
	r->node = xstrdup(req->node != NULL ? req->node : "");
	r->done = req->done;
	r->arg = req->arg;
	mig_sql(r, "SHOW synchronous_commit", 0, mig_on_sync_commit,
	    "SHOW synchronous_commit");
	if (r->failed) {
		snprintf(err, errlen, "%s", r->error);
		free(r->node);
		free(r);
		return -1;
	}
	mig_round(r);
	return 0;
}

/* ---- the durability check alone ----------------------------------------- */

struct mig_check {
	pg_check_fn *done;
	void *arg;
};

static void
mig_on_check(void *arg, const struct pg_answer *a)
{
	struct mig_check *c = arg;
	const char *why = mig_durability_error(a);
	char msg[MIG_ERR_MAX];

	if (why == NULL && a->error != NULL) {
		mig_answer_error(a, msg, sizeof(msg));
		why = msg;
	}
	c->done(c->arg, why);
	free(c);
}

int
pg_check_durability(struct pg *pg, pg_check_fn *done, void *arg, char *err,
    size_t errlen)
{
	struct mig_check *c = xcalloc(1, sizeof(*c));
	struct pg_query q;

	c->done = done;
	c->arg = arg;
	memset(&q, 0, sizeof(q));
	q.sql = "SHOW synchronous_commit";
	q.flags = PG_IDEMPOTENT;
	q.done = mig_on_check;
	q.arg = c;
	if (pg_send(pg, &q, err, errlen) == -1) {
		free(c);
		return -1;
	}
	return 0;
}
