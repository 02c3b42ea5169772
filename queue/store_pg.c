/*
 * store_pg.c - the PostgreSQL store core (issue 13, doc/postgresql.md):
 * open (connect, durability check, migrations, node start), group commit
 * on a pipelined connection, and the node duties (heartbeat, sweep). The
 * public functions are store.h's; store.c branches here when the store is
 * PostgreSQL. Built only with libpq.
 *
 * DESIGN
 *
 * Two connections per node (queue/pg.c, each non-blocking and
 * pipelined). The GROUP connection carries the group commits and the
 * callers' reads (store_pg_conn()); the QUEUE connection carries the
 * node's pg_queue (store_pg_queue()), whose operations are one statement
 * each and commit on their own: on the group connection they would run
 * inside whatever group transaction is open there, and commit or fail
 * with it.
 *
 * Open. store_open_config() creates both connections on the caller's
 * loop and runs that loop until the node is ready or connect_timeout_ms
 * passed (nothing is served before the store is open, so waiting there is
 * allowed): pg_check_durability() on each connection (a COMMIT must wait
 * for the WAL flush, or a 202 would promise what the server does not
 * keep), pg_migrate() on the group connection, then pgq_start() on the
 * queue connection, which registers the node, refuses a second live
 * process under the same name (a session advisory lock) and returns this
 * node's previous life's claims to the queue. Any failure frees both
 * connections and returns the first error.
 *
 * Group commit. The first store_pg_group_send() of a turn opens a group;
 * the statements of the turn are kept (copied) in the group, and at the
 * commit point (the end of the turn, or commit_delay_ms later: the same
 * commit_ev scheduling as store.c) the whole group is handed to the
 * driver in one go: BEGIN, the statements, COMMIT, all pipelined behind
 * whatever is already in flight. While a group's COMMIT is in flight,
 * the next one keeps gathering and goes out when that COMMIT answers (as
 * store.c keeps its next group open while an fsync runs): one WAL flush
 * per group, and groups grow with the load. Sending each turn's group
 * behind the last made every turn wait for a WAL flush of its own (one
 * flush per API request under wrk -c64: 220 to 430 durable enqueues per
 * second in bench/run --store postgresql). store_flush() and a closing
 * store send at once. Answers come back in order: each statement's
 * callback runs (a RETURNING id is read there) before its group's COMMIT
 * is answered, and the groups' COMMITs are answered, and their
 * store_on_commit() callbacks run, in the order the groups were sent.
 *
 * Why hand a group over whole, not each statement as it comes. The
 * driver sends queued queries when the connection is up and keeps them
 * waiting for the next connection when it is not. A group whose BEGIN
 * went out on a connection that then died, with later statements still
 * queued, would see those statements run on the next connection outside
 * any transaction (autocommit), each committed on its own. Handed over in
 * one synchronous sequence of pg_send() calls, a group goes out whole on
 * one connection (the driver's kick sends everything queued; libpq
 * reports a failed write at the next read, not from PQsendQueryParams),
 * or waits whole for the next connection, BEGIN first. (A group is not
 * even handed over while the connection is down: it stays open, keeps
 * gathering, and goes out once the connection is up again, or fails
 * after SPG_HOLD_MS; otherwise the driver's wait timeout, which fails
 * each waiting query on its own, could fail its BEGIN and not a
 * statement queued a millisecond later.) It also makes
 * store_pg_conn() safe: a query sent there directly can never land
 * between a group's BEGIN and COMMIT, so it runs in autocommit, seeing
 * committed data only. With commit_delay_ms 0 it costs nothing: the
 * driver's kick would send the turn's queries at the end of the turn
 * anyway. With a delay, the statements' answers come after the commit
 * point rather than before it, which no caller needs: what it
 * acknowledges waits for the COMMIT.
 *
 * Failure. A group succeeds only when every one of its statements
 * answered without error and its COMMIT answered with the command tag
 * "COMMIT": PostgreSQL answers the COMMIT of a transaction aborted by an
 * error with the tag "ROLLBACK", not an error. A COMMIT lost with the
 * connection (maybe_ran) may or may not have committed; its callbacks get
 * ok = false (the client retries, idempotency keys make that safe). Any
 * failure fails the whole group: every store_on_commit() callback of it
 * gets ok = false; nothing of it is stored (the transaction rolled back).
 * The driver reconnects by itself; the next group goes out on the new
 * connection. store_abort_group() sends the open group with ROLLBACK
 * instead of COMMIT: its statements are answered as usual, its callbacks
 * get ok = false.
 *
 * store_on_commit() with no group open: the write it guards is already
 * committed; the callback runs on the next loop turn with ok = true.
 *
 * Node duties. store_attach() starts a 1 s timer: pgq_heartbeat() (the
 * node counts as live for the routes' fair share) and pgq_sweep()
 * (expired leases of any node back to the queue), each only when its
 * previous one has answered.
 *
 * After a reconnection, each connection checks durability again
 * (synchronous_commit may have been changed for the role or the
 * database); a failure makes store_ping() fail with the reason, is
 * logged, and fails every group whose COMMIT is answered while it lasts
 * (the COMMIT did not wait for the WAL flush: no acknowledgement may
 * say it is durable). The check is queued on PG_UP, before any held group
 * goes out, so it is answered before that group's COMMIT.
 *
 * The node's name lock after a reconnection of the queue connection: the
 * advisory lock pgq_start() took belonged to the lost session, so the
 * node takes it again on the new one (pgq_relock(): the lock only; its
 * claims in flight stay its own), retried on each duty tick until held.
 * Until then a process started under the same name is not refused. The
 * lock may still be held by the old session, when the server has not yet
 * seen that connection die (a network cut: until TCP keep-alives tell
 * it), or by another process started under this name meanwhile; the
 * warning names the backend that holds it, and says so again every
 * SPG_RELOCK_NAG ticks.
 *
 * Ownership: struct store_pg owns both connections, the pg_queue, its
 * events and the groups (open and in flight); spg_close() flushes and
 * frees them, pg_queue before the connections.
 */
#include "autoconf.h"

#include <sys/time.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "log.h"
#include "pg.h"
#include "pg_migrate.h"
#include "pg_queue.h"
#include "store-internal.h"
#include "xmalloc.h"

#define SPG_CONNECT_TIMEOUT_MS 10000
#define SPG_DUTY_MS	       1000
#define SPG_RELOCK_NAG	       30    /* ticks between warnings while not held */
#define SPG_CLOSE_ROUNDS       16    /* callbacks that keep writing at close */
#define SPG_BULK_TURNS	       50000 /* loop turns waiting for the bulk */
#define SPG_HOLD_MS	       10000 /* a group held for a connection, at most */
#define SPG_HOLD_POLL_MS       100
#define SPG_WHY_MAX	       512

struct spg_group;

/* One statement of a group: the caller's query, copied until sent. */
struct spg_stmt {
	struct spg_group *g;
	char *sql;
	int nparams;
	char **values;
	unsigned flags; /* 0 or PG_PREPARE */
	pg_done_fn *done;
	void *arg;
	struct spg_stmt *next;
};

/* A group: open (gathering), then in flight (handed to the driver). */
struct spg_group {
	struct store_pg *sp;
	struct spg_stmt *head, *tail; /* until handed over */
	size_t nstmts;
	struct store_cblist cbs; /* store_on_commit() of this group */
	bool failed;		 /* a statement (or BEGIN) failed */
	bool rollback;		 /* store_abort_group(): ROLLBACK, not COMMIT */
	struct timespec sent;	 /* when handed over, for the stats */
	struct spg_group *next;
};

struct store_pg {
	struct event_base *base;
	struct pg *group; /* the group connection */
	struct pg *qconn; /* the queue connection */
	struct pg_queue *queue;
	struct pg *bulk; /* store_pg_bulk(): opened on first use, or NULL */
	char *url;	 /* for the bulk connection */
	unsigned connect_timeout_ms;
	char *node;

	struct spg_group *open;	    /* gathering this turn's statements */
	struct spg_group *fly_head; /* handed over, COMMIT unanswered */
	struct spg_group *fly_tail;
	struct store_cblist durable; /* registered with no group open */
	struct event *commit_ev;
	unsigned commit_delay_ms;
	bool commit_scheduled;
	bool commit_waiting; /* the open group waits for a COMMIT in flight */
	bool flushing;	     /* store_flush(): send at once */
	int64_t held_since;  /* pg_clock_ms() the open group waits since; 0 */
	int committing;	     /* depth of callback runs in progress */
	bool closing;

	struct event *duty_ev; /* NULL until spg_attach() */
	bool heartbeat_busy;
	bool sweep_busy;
	bool heartbeat_failing;
	bool relock_needed; /* the queue connection came back: lock again */
	bool relock_busy;
	unsigned relock_tries;

	enum pg_state group_state;
	char group_why[SPG_WHY_MAX];
	unsigned group_ups, qconn_ups;
	/* The durability check after a reconnection failed: why; "" = no. */
	char group_not_durable[SPG_WHY_MAX];
	char qconn_not_durable[SPG_WHY_MAX];

	struct store_stats stats;
};

static void spg_schedule(struct store_pg *);
static void spg_commit_cb(evutil_socket_t, short, void *);
static void spg_handover(struct store_pg *, struct spg_group *);
static void spg_stmt_strip(struct spg_stmt *);

/* ---- open ----------------------------------------------------------------
 */

/* What the open sequence waits for; lives on spg_open()'s stack. */
struct spg_opening {
	struct store_pg *sp;
	int pending; /* answers still expected */
	bool migrated;
	bool started;
	bool timed_out;
	int version;
	char error[SPG_WHY_MAX + 64]; /* the first error; "" = none */
};

static void
spg_open_fail(struct spg_opening *o, const char *what, const char *why)
{
	if (o->error[0] == '\0')
		snprintf(o->error, sizeof(o->error), "postgresql: %s: %s", what,
		    why);
}

static void
spg_open_check_group(void *arg, const char *error)
{
	struct spg_opening *o = arg;

	o->pending--;
	if (error != NULL)
		spg_open_fail(o, "group connection", error);
}

static void
spg_open_check_queue(void *arg, const char *error)
{
	struct spg_opening *o = arg;

	o->pending--;
	if (error != NULL)
		spg_open_fail(o, "queue connection", error);
}

static void
spg_open_started(void *arg, const struct pgq_answer *a)
{
	struct spg_opening *o = arg;

	o->pending--;
	if (a->error != NULL) {
		spg_open_fail(o, "starting the node", a->error);
		return;
	}
	o->started = true;
	if (a->n > 0)
		log_info("store: node %s recovered %zu message(s) it was "
			 "sending before its restart",
		    o->sp->node, a->n);
}

static void
spg_open_migrated(void *arg, const struct pg_migrate_result *r)
{
	struct spg_opening *o = arg;
	char err[256];

	o->pending--;
	if (r->error != NULL) {
		spg_open_fail(o, "migrations", r->error);
		return;
	}
	if (o->sp->closing)
		return;
	o->migrated = true;
	o->version = r->version;
	if (r->applied > 0)
		log_info("store: applied %d migration(s), schema version %d",
		    r->applied, r->version);
	/* The nodes table exists now: start the node. */
	if (o->error[0] != '\0')
		return;
	if (pgq_start(o->sp->queue, spg_open_started, o, err, sizeof(err)) ==
	    -1) {
		spg_open_fail(o, "starting the node", err);
		return;
	}
	o->pending++;
}

static void
spg_open_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct spg_opening *o = arg;

	(void)fd;
	(void)what;
	o->timed_out = true;
}

/* A connection's state change. */
static void spg_on_group_state(void *, enum pg_state, const char *);
static void spg_on_qconn_state(void *, enum pg_state, const char *);

static struct pg *
spg_connect(struct store_pg *sp, const struct store_config *cfg,
    void (*on_state)(void *, enum pg_state, const char *), char *err,
    size_t errlen)
{
	struct pg_config pc;

	memset(&pc, 0, sizeof(pc));
	pc.url = cfg->url;
	pc.connect_timeout_ms = cfg->connect_timeout_ms;
	pc.on_state = on_state;
	pc.arg = sp;
	return pg_new(sp->base, &pc, err, errlen);
}

/* Frees what spg_open() made so far (a failed open: nothing in flight). */
static void
spg_free(struct store_pg *sp)
{
	sp->closing = true;
	if (sp->duty_ev != NULL)
		event_free(sp->duty_ev);
	if (sp->commit_ev != NULL)
		event_free(sp->commit_ev);
	if (sp->queue != NULL)
		pgq_free(sp->queue);
	if (sp->qconn != NULL)
		pg_free(sp->qconn);
	if (sp->group != NULL)
		pg_free(sp->group);
	if (sp->bulk != NULL)
		pg_free(sp->bulk);
	free(sp->durable.v);
	free(sp->url);
	free(sp->node);
	free(sp);
}

/* Starts the open sequence's first steps (both checks, the migrations). */
static int
spg_open_send(struct store_pg *sp, struct spg_opening *o, char *err,
    size_t errlen)
{
	struct pg_migrate_req req = {.node = sp->node,
	    .done = spg_open_migrated,
	    .arg = o};

	if (pg_check_durability(sp->group, spg_open_check_group, o, err,
		errlen) == -1)
		return -1;
	o->pending++;
	if (pg_check_durability(sp->qconn, spg_open_check_queue, o, err,
		errlen) == -1)
		return -1;
	o->pending++;
	if (pg_migrate(sp->group, &req, err, errlen) == -1)
		return -1;
	o->pending++;
	return 0;
}

struct store_pg *
spg_open(const struct store_config *cfg, int *schema_version, char *err,
    size_t errlen)
{
	struct spg_opening o;
	struct store_pg *sp;
	struct event *timer;
	struct timeval tv;
	unsigned ms = cfg->connect_timeout_ms != 0 ? cfg->connect_timeout_ms
						   : SPG_CONNECT_TIMEOUT_MS;

	if (cfg->base == NULL || cfg->url == NULL || cfg->url[0] == '\0' ||
	    cfg->node == NULL || cfg->node[0] == '\0') {
		snprintf(err, errlen,
		    "postgresql: the store needs a loop, a URL and a node name");
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	sp = xcalloc(1, sizeof(*sp));
	o.sp = sp;
	sp->base = cfg->base;
	sp->node = xstrdup(cfg->node);
	sp->url = xstrdup(cfg->url);
	sp->connect_timeout_ms = cfg->connect_timeout_ms;
	sp->commit_ev = event_new(sp->base, -1, 0, spg_commit_cb, sp);
	if (sp->commit_ev == NULL)
		fatalx("store: event_new failed");
	if ((sp->group = spg_connect(sp, cfg, spg_on_group_state, err,
		 errlen)) == NULL ||
	    (sp->qconn = spg_connect(sp, cfg, spg_on_qconn_state, err,
		 errlen)) == NULL) {
		spg_free(sp);
		return NULL;
	}
	sp->queue =
	    pgq_new(&(struct pgq_config){.pg = sp->qconn, .node = sp->node},
		err, errlen);
	if (sp->queue == NULL || spg_open_send(sp, &o, err, errlen) == -1) {
		spg_free(sp); /* pending answers hear "closed", o is live */
		return NULL;
	}
	timer = evtimer_new(sp->base, spg_open_timeout, &o);
	if (timer == NULL)
		fatalx("store: evtimer_new failed");
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(timer, &tv);
	while (o.pending > 0 && o.error[0] == '\0' && !o.timed_out)
		if (event_base_loop(sp->base, EVLOOP_ONCE) == -1) {
			spg_open_fail(&o, "open",
			    "the loop is already running");
			break;
		}
	event_free(timer);
	if (o.error[0] == '\0' && (!o.migrated || !o.started))
		snprintf(o.error, sizeof(o.error),
		    "postgresql: not ready after %u ms: %s", ms,
		    sp->group_why[0] != '\0' ? sp->group_why
					     : "no answer from the server");
	if (o.error[0] != '\0') {
		snprintf(err, errlen, "%s", o.error);
		spg_free(sp);
		return NULL;
	}
	*schema_version = o.version;
	return sp;
}

/* ---- connection states -----------------------------------------------------
 */

/* A reconnected connection's durability verdict into why ("" = ok). */
static void
spg_rechecked(struct store_pg *sp, char *why, const char *what,
    const char *error)
{
	if (error == NULL) {
		why[0] = '\0';
		return;
	}
	if (sp->closing)
		return;
	snprintf(why, SPG_WHY_MAX, "%s", error);
	log_error("store: %s connection after reconnecting: %s", what, error);
}

static void
spg_on_recheck_group(void *arg, const char *error)
{
	struct store_pg *sp = arg;

	spg_rechecked(sp, sp->group_not_durable, "group", error);
}

static void
spg_on_recheck_qconn(void *arg, const char *error)
{
	struct store_pg *sp = arg;

	spg_rechecked(sp, sp->qconn_not_durable, "queue", error);
}

/* On each reconnection (not the first connection: spg_open checks). */
static void
spg_recheck(struct store_pg *sp, struct pg *pg, pg_check_fn *done)
{
	char err[256];

	if (sp->closing)
		return;
	if (pg_check_durability(pg, done, sp, err, sizeof(err)) == -1)
		log_warnx("store: durability check: %s", err);
}

static void
spg_on_group_state(void *arg, enum pg_state state, const char *why)
{
	struct store_pg *sp = arg;

	sp->group_state = state;
	if (state == PG_DOWN && why != NULL)
		snprintf(sp->group_why, sizeof(sp->group_why), "%s", why);
	if (state == PG_UP && sp->group_ups++ > 0)
		spg_recheck(sp, sp->group, spg_on_recheck_group);
	if (state == PG_UP && sp->held_since != 0 && sp->commit_scheduled) {
		/* The held group goes out now. */
		event_del(sp->commit_ev);
		sp->commit_scheduled = false;
		spg_schedule(sp);
	}
}

static void spg_relock(struct store_pg *);

static void
spg_on_qconn_state(void *arg, enum pg_state state, const char *why)
{
	struct store_pg *sp = arg;

	(void)why;
	if (state == PG_UP && sp->qconn_ups++ > 0) {
		spg_recheck(sp, sp->qconn, spg_on_recheck_qconn);
		sp->relock_needed = true;
		sp->relock_tries = 0;
		spg_relock(sp);
	}
}

/* ---- group commit ----------------------------------------------------------
 */

/* As store.c's store_schedule(): active now, or a (zero) timer. */
static void
spg_schedule(struct store_pg *sp)
{
	struct timeval tv;

	if (sp->commit_scheduled || sp->closing)
		return;
	sp->commit_scheduled = true;
	if (sp->commit_delay_ms == 0 && sp->committing == 0) {
		event_active(sp->commit_ev, EV_TIMEOUT, 0);
		return;
	}
	tv.tv_sec = sp->commit_delay_ms / 1000;
	tv.tv_usec = (suseconds_t)(sp->commit_delay_ms % 1000) * 1000;
	evtimer_add(sp->commit_ev, &tv);
}

/*
 * A group that cannot go out: each statement hears why, the callbacks
 * hear ok = false. Nothing of it was sent.
 */
static void
spg_group_fail(struct store_pg *sp, struct spg_group *g, const char *why)
{
	struct spg_stmt *s, *next;
	struct pg_answer a = {NULL, why, NULL, false};

	for (s = g->head; s != NULL; s = next) {
		next = s->next;
		if (s->done != NULL)
			s->done(s->arg, &a);
		spg_stmt_strip(s);
		free(s);
	}
	if (!g->rollback)
		sp->stats.commit_failures++;
	store_cblist_run(&g->cbs, &sp->committing, false);
	free(g);
}

/*
 * True while the open group waits for the group connection to come up
 * (see DESIGN): checked again every SPG_HOLD_POLL_MS and on PG_UP. After
 * SPG_HOLD_MS it fails instead.
 */
static bool
spg_hold(struct store_pg *sp)
{
	struct timeval tv = {0, SPG_HOLD_POLL_MS * 1000};
	char why[SPG_WHY_MAX + 64];
	struct spg_group *g = sp->open;

	if (sp->group_state == PG_UP || sp->closing) {
		sp->held_since = 0;
		return false;
	}
	if (sp->held_since == 0)
		sp->held_since = pg_clock_ms();
	if (pg_clock_ms() - sp->held_since < SPG_HOLD_MS) {
		sp->commit_scheduled = true;
		evtimer_add(sp->commit_ev, &tv);
		return true;
	}
	sp->open = NULL;
	sp->held_since = 0;
	snprintf(why, sizeof(why), "no connection to the database: %s",
	    sp->group_why[0] != '\0' ? sp->group_why : "connecting");
	spg_group_fail(sp, g, why);
	return true;
}

/* The commit point: the open group goes out, the durable list runs. */
static void
spg_commit_now(struct store_pg *sp)
{
	struct spg_group *g = sp->open;

	if (sp->commit_scheduled) {
		event_del(sp->commit_ev);
		sp->commit_scheduled = false;
	}
	if (g != NULL && sp->fly_head != NULL && !sp->flushing &&
	    !sp->closing) {
		sp->commit_waiting = true; /* spg_on_end() sends it */
	} else if (g != NULL && !spg_hold(sp)) {
		sp->commit_waiting = false;
		sp->open = NULL;
		spg_handover(sp, g);
	}
	if (sp->durable.n > 0)
		store_cblist_run(&sp->durable, &sp->committing, true);
}

static void
spg_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_pg *sp = arg;

	(void)fd;
	(void)what;
	sp->commit_scheduled = false;
	spg_commit_now(sp);
}

static uint64_t
spg_since_us(const struct timespec *t0)
{
	struct timespec t1;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = ((int64_t)t1.tv_sec - t0->tv_sec) * 1000000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

/* The driver copied the query: only the callback's part stays. */
static void
spg_stmt_strip(struct spg_stmt *s)
{
	int i;

	for (i = 0; i < s->nparams; i++)
		free(s->values[i]);
	free(s->values);
	free(s->sql);
	s->values = NULL;
	s->sql = NULL;
	s->nparams = 0;
}

/* A statement's answer: the group fails on any error; then the caller's. */
static void
spg_on_stmt(void *arg, const struct pg_answer *a)
{
	struct spg_stmt *s = arg;

	if (a->error != NULL)
		s->g->failed = true;
	if (s->done != NULL)
		s->done(s->arg, a);
	free(s);
}

static void
spg_on_begin(void *arg, const struct pg_answer *a)
{
	struct spg_group *g = arg;

	if (a->error != NULL)
		g->failed = true;
}

/* Answers come in order, so g is the head; the walk is for refusals. */
static void
spg_fly_remove(struct store_pg *sp, struct spg_group *g)
{
	struct spg_group **pp = &sp->fly_head, *prev = NULL;

	while (*pp != NULL && *pp != g) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == NULL)
		return;
	*pp = g->next;
	if (sp->fly_tail == g)
		sp->fly_tail = prev;
}

/* The group's end (COMMIT or ROLLBACK) answered: its callbacks run. */
static void
spg_on_end(void *arg, const struct pg_answer *a)
{
	struct spg_group *g = arg;
	struct store_pg *sp = g->sp;
	uint64_t us = spg_since_us(&g->sent);
	bool ok;

	ok = !g->failed && !g->rollback && a->error == NULL && a->res != NULL &&
	    strcmp(PQcmdStatus((PGresult *)a->res), "COMMIT") == 0 &&
	    sp->group_not_durable[0] == '\0';
	spg_fly_remove(sp, g);
	if (ok) {
		sp->stats.commits++;
		sp->stats.commit_us_sum += us;
		if (us > sp->stats.commit_us_max)
			sp->stats.commit_us_max = us;
		sp->stats.writes += g->nstmts;
	} else if (!g->rollback) {
		sp->stats.commit_failures++;
		if (a->error != NULL)
			log_debug("store: group of %zu statement(s) failed: %s",
			    g->nstmts, a->error);
	}
	store_cblist_run(&g->cbs, &sp->committing, ok);
	free(g);
	/* the group that gathered while this one flew goes out now */
	if (sp->fly_head == NULL && sp->commit_waiting)
		spg_commit_now(sp);
}

/* A query the driver refused (only while closing): answered here. */
static void
spg_refused(pg_done_fn *done, void *arg, const char *why)
{
	struct pg_answer a = {NULL, why, NULL, false};

	if (done != NULL)
		done(arg, &a);
}

/*
 * Hands the whole group to the driver: BEGIN, its statements, COMMIT (or
 * ROLLBACK), in one synchronous run of pg_send() (see DESIGN).
 */
static void
spg_handover(struct store_pg *sp, struct spg_group *g)
{
	struct spg_stmt *s, *next;
	char err[256];
	struct pg_query q;

	clock_gettime(CLOCK_MONOTONIC, &g->sent);
	if (sp->fly_tail != NULL)
		sp->fly_tail->next = g;
	else
		sp->fly_head = g;
	sp->fly_tail = g;
	memset(&q, 0, sizeof(q));
	q.sql = "BEGIN";
	q.done = spg_on_begin;
	q.arg = g;
	if (pg_send(sp->group, &q, err, sizeof(err)) == -1)
		g->failed = true;
	for (s = g->head; s != NULL; s = next) {
		next = s->next;
		memset(&q, 0, sizeof(q));
		q.sql = s->sql;
		q.nparams = s->nparams;
		q.values = (const char *const *)s->values;
		q.flags = s->flags;
		q.done = spg_on_stmt;
		q.arg = s;
		if (g->failed ||
		    pg_send(sp->group, &q, err, sizeof(err)) == -1) {
			g->failed = true;
			spg_refused(s->done, s->arg,
			    "not sent: the group failed");
			spg_stmt_strip(s);
			free(s);
			continue;
		}
		spg_stmt_strip(s); /* the answer frees s */
	}
	g->head = g->tail = NULL;
	memset(&q, 0, sizeof(q));
	q.sql = g->rollback ? "ROLLBACK" : "COMMIT";
	q.done = spg_on_end;
	q.arg = g;
	if (pg_send(sp->group, &q, err, sizeof(err)) == -1)
		spg_refused(spg_on_end, g, err);
}

int
store_pg_group_send(struct store *st, const struct pg_query *q, char *err,
    size_t errlen)
{
	struct store_pg *sp = store_pg_state(st);
	struct spg_group *g;
	struct spg_stmt *s;
	int i;

	if (sp == NULL) {
		snprintf(err, errlen,
		    "store_pg_group_send: not a PostgreSQL "
		    "store");
		return -1;
	}
	if (sp->closing) {
		snprintf(err, errlen, "the store is being closed");
		return -1;
	}
	if (q->sql == NULL || q->nparams < 0 ||
	    (q->nparams > 0 && q->values == NULL)) {
		snprintf(err, errlen, "malformed query (no SQL or parameters)");
		return -1;
	}
	if ((q->flags & ~PG_PREPARE) != 0) {
		snprintf(err, errlen,
		    "a group statement takes no flags but PG_PREPARE (not "
		    "PG_IDEMPOTENT, PG_SIMPLE)");
		return -1;
	}
	if ((g = sp->open) == NULL) {
		g = sp->open = xcalloc(1, sizeof(*g));
		g->sp = sp;
		spg_schedule(sp);
	}
	s = xcalloc(1, sizeof(*s));
	s->g = g;
	s->sql = xstrdup(q->sql);
	s->nparams = q->nparams;
	s->values = xcalloc(q->nparams > 0 ? (size_t)q->nparams : 1,
	    sizeof(*s->values));
	for (i = 0; i < q->nparams; i++)
		s->values[i] =
		    q->values[i] != NULL ? xstrdup(q->values[i]) : NULL;
	s->flags = q->flags;
	s->done = q->done;
	s->arg = q->arg;
	if (g->tail != NULL)
		g->tail->next = s;
	else
		g->head = s;
	g->tail = s;
	g->nstmts++;
	return 0;
}

void
spg_on_commit(struct store_pg *sp, store_commit_fn *cb, void *arg)
{
	if (sp->open != NULL) {
		store_cblist_add(&sp->open->cbs, cb, arg);
		return;
	}
	store_cblist_add(&sp->durable, cb, arg);
	spg_schedule(sp);
}

/*
 * Sends the open group now and runs the loop until every group sent is
 * answered. From inside the loop (a callback) the loop cannot run again:
 * the group is sent and -1 says so.
 */
int
spg_flush(struct store_pg *sp, char *err, size_t errlen)
{
	uint64_t failures = sp->stats.commit_failures;
	int rc;

	sp->flushing = true;
	spg_commit_now(sp);
	sp->flushing = false;
	while (sp->fly_head != NULL || sp->open != NULL) {
		rc = event_base_loop(sp->base, EVLOOP_ONCE);
		if (rc == -1) {
			snprintf(err, errlen,
			    "store_flush: cannot wait from inside the loop");
			return -1;
		}
		if (rc == 1) /* nothing left to wait for */
			break;
	}
	if (sp->durable.n > 0)
		store_cblist_run(&sp->durable, &sp->committing, true);
	if (sp->fly_head != NULL || sp->open != NULL) {
		snprintf(err, errlen, "store_flush: groups left unanswered");
		return -1;
	}
	if (sp->stats.commit_failures != failures) {
		snprintf(err, errlen,
		    "store_flush: a group failed to commit: %s",
		    sp->group_state == PG_UP ? "its transaction rolled back"
					     : sp->group_why);
		return -1;
	}
	return 0;
}

void
spg_abort_group(struct store_pg *sp)
{
	if (sp->open != NULL)
		sp->open->rollback = true;
}

bool
spg_in_transaction(const struct store_pg *sp)
{
	return sp->open != NULL;
}

void
spg_get_stats(const struct store_pg *sp, struct store_stats *out)
{
	*out = sp->stats;
}

int
spg_ping(struct store_pg *sp, char *err, size_t errlen)
{
	if (sp->group_state != PG_UP) {
		snprintf(err, errlen, "database connection down: %s",
		    sp->group_why[0] != '\0' ? sp->group_why : "connecting");
		return -1;
	}
	if (sp->group_not_durable[0] != '\0' ||
	    sp->qconn_not_durable[0] != '\0') {
		snprintf(err, errlen, "database not durable: %s",
		    sp->group_not_durable[0] != '\0' ? sp->group_not_durable
						     : sp->qconn_not_durable);
		return -1;
	}
	return 0;
}

/* ---- node duties ---------------------------------------------------------
 */

static void
spg_on_heartbeat(void *arg, const struct pgq_answer *a)
{
	struct store_pg *sp = arg;

	sp->heartbeat_busy = false;
	if (a->error != NULL && !sp->heartbeat_failing && !sp->closing)
		log_warnx("store: node %s heartbeat: %s", sp->node, a->error);
	else if (a->error == NULL && sp->heartbeat_failing)
		log_info("store: node %s heartbeat again", sp->node);
	sp->heartbeat_failing = a->error != NULL;
}

static void
spg_on_sweep(void *arg, const struct pgq_answer *a)
{
	struct store_pg *sp = arg;

	sp->sweep_busy = false;
	if (a->error == NULL && a->n > 0)
		log_info("store: %zu message(s) back to the queue after their "
			 "lease expired",
		    a->n);
}

static void
spg_on_relock(void *arg, const struct pgq_answer *a)
{
	struct store_pg *sp = arg;

	sp->relock_busy = false;
	if (sp->closing)
		return;
	if (a->error == NULL && a->n == 1) {
		sp->relock_needed = false;
		log_info("store: node %s holds its name's lock again after "
			 "the queue connection's reconnection",
		    sp->node);
		return;
	}
	if (sp->relock_tries++ % SPG_RELOCK_NAG != 0)
		return;
	if (a->error != NULL)
		log_warnx("store: node %s: taking its name's lock again: %s",
		    sp->node, a->error);
	else
		log_warnx("store: node %s: its name's lock is held by backend "
			  "%d (this node's lost session, until the server "
			  "sees it dead, or another process started as %s); "
			  "until this node holds it again, a process started "
			  "under this name is not refused: retrying",
		    sp->node, a->holder, sp->node);
}

/* Sends pgq_relock() once at a time while it is needed. */
static void
spg_relock(struct store_pg *sp)
{
	char err[256];

	if (!sp->relock_needed || sp->relock_busy || sp->closing)
		return;
	if (pgq_relock(sp->queue, spg_on_relock, sp, err, sizeof(err)) == 0)
		sp->relock_busy = true;
}

static void
spg_duty(evutil_socket_t fd, short what, void *arg)
{
	struct store_pg *sp = arg;
	char err[256];

	(void)fd;
	(void)what;
	spg_relock(sp);
	if (!sp->heartbeat_busy) {
		if (pgq_heartbeat(sp->queue, spg_on_heartbeat, sp, err,
			sizeof(err)) == 0)
			sp->heartbeat_busy = true;
	}
	if (!sp->sweep_busy) {
		if (pgq_sweep(sp->queue, spg_on_sweep, sp, err, sizeof(err)) ==
		    0)
			sp->sweep_busy = true;
	}
}

void
spg_attach(struct store_pg *sp, unsigned commit_delay_ms)
{
	struct timeval tv = {SPG_DUTY_MS / 1000, (SPG_DUTY_MS % 1000) * 1000};

	sp->commit_delay_ms = commit_delay_ms;
	if (sp->duty_ev != NULL)
		return;
	sp->duty_ev = event_new(sp->base, -1, EV_PERSIST, spg_duty, sp);
	if (sp->duty_ev == NULL || evtimer_add(sp->duty_ev, &tv) == -1)
		fatalx("store: cannot start the node duties timer");
}

/* ---- close -----------------------------------------------------------------
 */

/*
 * Waits (bounded rounds) for the bulk connection's transactions in flight
 * (an import's piece), as a group's COMMIT is waited for: a SIGTERM lets
 * them answer.
 */
static void
spg_bulk_drain(struct store_pg *sp)
{
	struct pg_stats s;
	int i;

	for (i = 0; sp->bulk != NULL && i < SPG_BULK_TURNS; i++) {
		pg_get_stats(sp->bulk, &s);
		if ((s.waiting == 0 && s.in_flight == 0) || s.state != PG_UP)
			break;
		if (event_base_loop(sp->base, EVLOOP_ONCE) != 0)
			break;
	}
}

/*
 * Flushes (callbacks may write again: bounded rounds), then frees. A
 * group still open after the rounds is rolled back by pg_free() (its
 * statements hear "closed").
 */
void
spg_close(struct store_pg *sp)
{
	struct spg_group *g;
	char err[256];
	int i;

	if (sp->duty_ev != NULL) {
		event_free(sp->duty_ev);
		sp->duty_ev = NULL;
	}
	spg_bulk_drain(sp); /* its callbacks may open groups: flushed below */
	for (i = 0; i < SPG_CLOSE_ROUNDS; i++) {
		if (sp->open == NULL && sp->fly_head == NULL &&
		    sp->durable.n == 0)
			break;
		if (spg_flush(sp, err, sizeof(err)) == -1 &&
		    (sp->fly_head != NULL || sp->open != NULL))
			break; /* cannot wait: failed below */
	}
	sp->closing = true;
	if ((g = sp->open) != NULL) {
		sp->open = NULL;
		spg_group_fail(sp, g, "the store is being closed");
	}
	if (sp->queue != NULL)
		pgq_free(sp->queue);
	sp->queue = NULL;
	pg_free(sp->qconn);
	sp->qconn = NULL;
	pg_free(sp->group); /* answers what is in flight: ok = false */
	sp->group = NULL;
	if (sp->bulk != NULL)
		pg_free(sp->bulk);
	sp->bulk = NULL;
	if (sp->durable.n > 0)
		store_cblist_run(&sp->durable, &sp->committing, true);
	spg_free(sp);
}

/* ---- accessors (store-internal.h) ----------------------------------------
 */

struct pg *
store_pg_conn(struct store *st)
{
	struct store_pg *sp = store_pg_state(st);

	return sp != NULL ? sp->group : NULL;
}

int
store_pg_read(struct store *st, const struct pg_query *q, pg_done_fn *done,
    void *arg, char *err, size_t errlen)
{
	struct pg_query s = *q;

	s.flags = PG_IDEMPOTENT;
	s.done = done;
	s.arg = arg;
	if (pg_send(store_pg_conn(st), &s, err, errlen) == -1) {
		free(arg);
		return -1;
	}
	return 0;
}

struct pg *
store_pg_bulk(struct store *st)
{
	struct store_pg *sp = store_pg_state(st);
	struct pg_config pc;
	char err[256];

	if (sp == NULL || sp->closing)
		return NULL;
	if (sp->bulk == NULL) {
		memset(&pc, 0, sizeof(pc));
		pc.url = sp->url;
		pc.connect_timeout_ms = sp->connect_timeout_ms;
		/* the URL was accepted by the two others: fails only if
		 * libpq cannot allocate */
		if ((sp->bulk = pg_new(sp->base, &pc, err, sizeof(err))) ==
		    NULL)
			fatalx("store: the bulk connection: %s", err);
	}
	return sp->bulk;
}

struct pg_queue *
store_pg_queue(struct store *st)
{
	struct store_pg *sp = store_pg_state(st);

	return sp != NULL ? sp->queue : NULL;
}
