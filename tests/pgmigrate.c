/*
 * pgmigrate.c - a test tool: brings a PostgreSQL database to this build's
 * schema with pg_migrate() and the embedded pg_migrations[], the way the
 * PostgreSQL store will at start (queue/pg_migrate.h), so the integration
 * tests (test_pg_schema.py) check what the daemon's code builds, not only
 * what psql -f builds from the same files. Built only with libpq.
 *
 *   pgmigrate URL [NODE]
 *
 * Prints "version N applied M" and exits 0; or prints the error on stderr
 * and exits 1 (2: usage or a URL libpq refuses). Log lines (one per
 * migration applied) go to stderr.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "pg.h"
#include "pg_migrate.h"

struct pgm_state {
	struct event_base *base;
	bool ok;
	int version;
	int applied;
};

static void
pgm_done(void *arg, const struct pg_migrate_result *r)
{
	struct pgm_state *st = arg;

	st->version = r->version;
	st->applied = r->applied;
	st->ok = r->error == NULL;
	if (r->error != NULL)
		fprintf(stderr, "pgmigrate: %s\n", r->error);
	event_base_loopbreak(st->base);
}

int
main(int argc, char **argv)
{
	struct pgm_state st;
	struct pg_config cfg;
	struct pg_migrate_req req;
	char err[512];
	struct pg *pg;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: pgmigrate URL [NODE]\n");
		return 2;
	}
	log_open("stderr", LOG_LVL_INFO, "pgmigrate");
	memset(&st, 0, sizeof(st));
	if ((st.base = event_base_new()) == NULL) {
		fprintf(stderr, "pgmigrate: event_base_new failed\n");
		return 1;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.url = argv[1];
	if ((pg = pg_new(st.base, &cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "pgmigrate: %s\n", err);
		return 2;
	}
	memset(&req, 0, sizeof(req));
	req.node = argc == 3 ? argv[2] : "pgmigrate";
	req.done = pgm_done;
	req.arg = &st;
	if (pg_migrate(pg, &req, err, sizeof(err)) == -1) {
		fprintf(stderr, "pgmigrate: %s\n", err);
		return 1;
	}
	event_base_dispatch(st.base);
	pg_free(pg);
	event_base_free(st.base);
	if (!st.ok)
		return 1;
	printf("version %d applied %d\n", st.version, st.applied);
	return 0;
}
