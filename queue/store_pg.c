/*
 * store_pg.c - the PostgreSQL store core (issue 13, doc/postgresql.md):
 * open (connect, durability check, migrations, node start), group commit
 * on a pipelined connection, and the node duties (heartbeat, sweep).
 *
 * STUB: the interface is in place (store.h, store-internal.h) so that the
 * dispatcher and API code can be written against it; opening a
 * PostgreSQL store fails until the implementation lands.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "pg_queue.h"
#include "store-internal.h"

struct store_pg {
	struct pg *group;
	struct pg_queue *queue;
	struct store_stats stats;
};

struct store_pg *
spg_open(const struct store_config *cfg, int *schema_version, char *err,
    size_t errlen)
{
	(void)cfg;
	*schema_version = 0;
	snprintf(err, errlen, "the PostgreSQL store is not built yet");
	return NULL;
}

void
spg_attach(struct store_pg *sp, unsigned commit_delay_ms)
{
	(void)sp;
	(void)commit_delay_ms;
}

void
spg_on_commit(struct store_pg *sp, store_commit_fn *cb, void *arg)
{
	(void)sp;
	cb(arg, false);
}

int
spg_flush(struct store_pg *sp, char *err, size_t errlen)
{
	(void)sp;
	snprintf(err, errlen, "the PostgreSQL store is not built yet");
	return -1;
}

void
spg_abort_group(struct store_pg *sp)
{
	(void)sp;
}

bool
spg_in_transaction(const struct store_pg *sp)
{
	(void)sp;
	return false;
}

void
spg_get_stats(const struct store_pg *sp, struct store_stats *out)
{
	*out = sp->stats;
}

int
spg_ping(struct store_pg *sp, char *err, size_t errlen)
{
	(void)sp;
	snprintf(err, errlen, "database connection down: not built yet");
	return -1;
}

void
spg_close(struct store_pg *sp)
{
	(void)sp;
}

struct pg *
store_pg_conn(struct store *st)
{
	struct store_pg *sp = store_pg_state(st);

	return sp != NULL ? sp->group : NULL;
}

struct pg_queue *
store_pg_queue(struct store *st)
{
	struct store_pg *sp = store_pg_state(st);

	return sp != NULL ? sp->queue : NULL;
}

int
store_pg_group_send(struct store *st, const struct pg_query *q, char *err,
    size_t errlen)
{
	(void)st;
	(void)q;
	snprintf(err, errlen, "the PostgreSQL store is not built yet");
	return -1;
}
