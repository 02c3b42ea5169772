/*
 * check_pgcluster.c - a throwaway PostgreSQL cluster for the unit suites
 * (check_pgcluster.h), started and stopped by tests/pg.sh.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_pgcluster.h"
#ifdef HAVE_LIBPQ
#include <event2/event.h>

#include "pg.h"
#include "store.h"
#endif

static const char *
ckpg_script(void)
{
	static char path[1024];
	const char *src = getenv("OD_SRCDIR");

	snprintf(path, sizeof(path), "%s/tests/pg.sh",
	    src != NULL && *src != '\0' ? src : OD_SRCDIR);
	return path;
}

void
ckpg_start(const char *who, char *url, size_t urllen)
{
	char cmd[2048];
	FILE *f;

	url[0] = '\0';
	snprintf(cmd, sizeof(cmd), "'%s' check", ckpg_script());
	if (system(cmd) != 0) {
		fprintf(stderr,
		    "%s: PostgreSQL tests skipped: "
		    "tests/pg.sh check failed (see above)\n",
		    who);
		return;
	}
	snprintf(cmd, sizeof(cmd), "'%s' start %ld", ckpg_script(),
	    (long)getpid());
	if ((f = popen(cmd, "r")) == NULL || fgets(url, urllen, f) == NULL) {
		url[0] = '\0';
		if (f != NULL)
			pclose(f);
		/* Binaries are there but the cluster would not start: fail. */
		ck_abort_msg("%s: tests/pg.sh start failed", who);
		return;
	}
	pclose(f);
	url[strcspn(url, "\n")] = '\0';
}

void
ckpg_stop(const char *who, const char *url)
{
	char cmd[2048];

	if (url[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "'%s' stop '%s'", ckpg_script(), url);
	if (system(cmd) != 0)
		fprintf(stderr, "%s: %s failed\n", who, cmd);
}

int
ckpg_restart(const char *url)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "'%s' restart '%s'", ckpg_script(), url);
	return system(cmd);
}

void
ckpg_db_url(const char *url, const char *db, char *out, size_t outlen)
{
	const char *q = strchr(url, '?');

	snprintf(out, outlen, "postgresql:///%s%s", db, q != NULL ? q : "");
}

START_TEST(test_pg_not_built)
{
	fprintf(stderr,
	    "PostgreSQL suites skipped: built without libpq "
	    "(configure --with-postgresql)\n");
}
END_TEST

Suite *
ckpg_not_built_suite(const char *name)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create("none");

	tcase_add_test(tc, test_pg_not_built);
	suite_add_tcase(s, tc);
	return s;
}

#ifdef HAVE_LIBPQ
void
ckpg_on_answer(void *arg, const struct pg_answer *a)
{
	struct ckpg_answer *ca = arg;

	ca->done = true;
	if (a->error != NULL)
		snprintf(ca->error, sizeof(ca->error), "%s", a->error);
	else if (a->res != NULL && PQntuples(a->res) > 0 &&
	    PQnfields(a->res) > 0)
		snprintf(ca->value, sizeof(ca->value), "%s",
		    PQgetvalue(a->res, 0, 0));
}

static void
ckpg_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

void
ckpg_run_until(struct event_base *base, const bool *flag, const char *what)
{
	bool late = false;
	struct event *dl = evtimer_new(base, ckpg_deadline, &late);
	struct timeval tv = {CKPG_DEADLINE_S, 0};

	evtimer_add(dl, &tv);
	while (!*flag && !late)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(dl);
	ck_assert_msg(!late, "timed out waiting for %s", what);
}

struct pg *
ckpg_connect(struct event_base *base, const char *url)
{
	struct pg_config cfg;
	char err[256];
	struct pg *pg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.url = url;
	cfg.reconnect_min_ms = 50;
	cfg.reconnect_max_ms = 400;
	pg = pg_new(base, &cfg, err, sizeof(err));
	ck_assert_msg(pg != NULL, "pg_new: %s", err);
	return pg;
}

const char *
ckpg_sql(struct event_base *base, struct pg *pg, const char *sql,
    const char *p1)
{
	static struct ckpg_answer t;
	const char *values[1] = {p1};
	char err[256];

	memset(&t, 0, sizeof(t));
	ck_assert_msg(pg_send(pg,
			  &(struct pg_query){.sql = sql,
			      .nparams = p1 != NULL ? 1 : 0,
			      .values = p1 != NULL ? values : NULL,
			      .done = ckpg_on_answer,
			      .arg = &t},
			  err, sizeof(err)) == 0,
	    "pg_send: %s", err);
	ckpg_run_until(base, &t.done, sql);
	ck_assert_msg(t.error[0] == '\0', "%s: %s", sql, t.error);
	return t.value;
}
void
ckpg_open_nodes(struct event_base *base, const char *url, const char *db,
    const char *const *names, size_t n, struct store **st, struct pg **check)
{
	struct pg *pg = ckpg_connect(base, url);
	char sql[128], dburl[512], err[512];
	size_t i;

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
	ckpg_sql(base, pg, sql, NULL);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	ckpg_sql(base, pg, sql, NULL);
	pg_free(pg);
	ckpg_db_url(url, db, dburl, sizeof(dburl));
	for (i = 0; i < n; i++) {
		st[i] = store_open_config(
		    &(struct store_config){.backend = STORE_POSTGRESQL,
			.url = dburl,
			.node = names[i],
			.base = base},
		    err, sizeof(err));
		ck_assert_msg(st[i] != NULL, "store_open_config %s: %s",
		    names[i], err);
		store_attach(st[i], base, 0);
	}
	if (check != NULL)
		*check = ckpg_connect(base, dburl);
}

#endif
