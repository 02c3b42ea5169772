/*
 * pg.c - one PostgreSQL connection on the libevent loop: libpq in
 * non-blocking pipeline mode (issue 13; doc/postgresql.md).
 *
 * DESIGN
 *
 * Why pipeline mode. The store's work is many small statements per loop
 * turn (one group commit: BEGIN, the turn's inserts and updates, COMMIT).
 * Sent one at a time, each costs a round trip to the server; pipelined,
 * the whole turn goes out in one write and the answers stream back, so a
 * turn costs about one round trip however many statements it holds.
 * libpq's pipeline mode (PostgreSQL 14+) keeps the extended-query
 * protocol's order: answers come back in the order the queries were sent,
 * which is why the queries in flight are one FIFO here.
 *
 * Segments. In a pipeline, an error makes the server skip every later
 * query up to the next Sync message. We end every query with a Sync
 * (PQpipelineSync), so each query is its own segment and an error fails
 * that query only; the ones after it are answered as if sent alone.
 * Transactions are explicit (BEGIN ... COMMIT, pipelined like the rest):
 * inside one, an error leaves the transaction aborted for the statements
 * after it (25P02) until the COMMIT, which then rolls back, exactly the
 * all-or-nothing group the store needs. The price of a Sync per query is
 * one small message each way; PQpipelineSync() of libpq 15 also pushes
 * the output buffer at each call, so a turn's queries may take several
 * write(2)s instead of one. Both are cheap next to a round trip each.
 *
 * Never blocking. The connection is made with PQconnectStart() and driven
 * by PQconnectPoll() on socket readiness, with a timer for the connect
 * timeout. Once up, the socket is non-blocking (PQsetnonblocking): a send
 * that does not fit the kernel's buffer leaves the rest in libpq's buffer
 * and PQflush() is called again on EV_WRITE; answers are read with
 * PQconsumeInput() on EV_READ and taken with PQgetResult() only while
 * PQisBusy() says a whole result is there. No PQexec(), no PQgetResult()
 * that could wait, on the loop.
 *
 * Sending. pg_send() only queues the query and makes a "kick" event
 * active; the kick sends every waiting query of the turn, so a callback
 * never runs from inside pg_send(), and a turn's queries leave together.
 *
 * Losing the connection. A read or write error, EOF, or an answer whose
 * SQLSTATE says the backend is going away (class 08, 57P0x, or an error
 * libpq made up without one) drops the connection. What was sent and not
 * answered may or may not have run on the server: those queries fail
 * with maybe_ran set, except the ones marked PG_IDEMPOTENT, which go back
 * to the head of the queue and are sent again after reconnection. Never
 * resending the others silently is the at-least-once boundary the store
 * builds its guarantees on (a COMMIT lost in flight must be decided by the
 * caller, who knows what it committed). Queries not yet sent simply wait;
 * one that waits longer than wait_timeout_ms fails, so a caller always
 * gets an answer. Reconnection retries after reconnect_min_ms, doubling up
 * to reconnect_max_ms, and re-issues every LISTEN first.
 *
 * Prepared statements, on demand (PG_PREPARE). A query with parameters
 * and that flag is sent as a named prepared statement of its session:
 * the first time its text is sent on a connection, a Parse goes in the
 * same pipeline segment just before its Execute (no extra round trip),
 * and later sends are Execute only. It is for a large statement sent
 * many times whose planning costs more than its execution (an import's
 * row: 0.67 ms a row prepared against 1.9 ms planned each time). Every
 * statement prepared was tried once (aa6b7e4) and taken back: left to
 * itself PostgreSQL moved the dispatcher's statements to generic plans
 * that were far slower; a statement asks for it only where a generic
 * plan does no harm (lookups by key). The cache maps a text to its
 * name by hash, holds at most PG_PREPARED_MAX texts (more are sent
 * unnamed, as before), and is emptied with each new connection, since
 * prepared statements live and die with the session. A Parse that fails
 * (a syntax error) answers its query with the Parse's error and forgets
 * the text, so the next send parses it again; a query of the same text
 * sent before that answer came gets "prepared statement does not exist"
 * (26000), also for a text the session lost otherwise, which forgets it
 * too. Nothing is re-sent: inside a group no statement may run alone.
 * Queries without parameters (BEGIN, COMMIT, LISTEN, ...) are sent
 * unnamed.
 *
 * Notifications. LISTEN is a query like any other; NOTIFY messages arrive
 * with the answers and are taken with PQnotifies() after each read.
 *
 * Simple queries (PG_SIMPLE). A migration file holds many statements,
 * PL/pgSQL bodies among them; only the server parses them all correctly,
 * through the simple-query protocol, which pipeline mode forbids. So a
 * PG_SIMPLE query at the head of the waiting queue holds the queue until
 * nothing is in flight and the answer to every Sync is taken (else
 * PQexitPipelineMode() refuses), then goes out alone out of pipeline mode;
 * pipeline mode is entered again when its answer is complete, before its
 * callback runs. Its multi-statement answer is folded like any other:
 * the first error wins, else the last result. Rare by design (start-up),
 * so the lost round trips do not matter.
 *
 * Ownership: struct pg owns the PGconn, its events, the queued queries and
 * their copies of SQL and parameters. Answers are borrowed by callbacks.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "compat.h"
#include "log.h"
#include "pg.h"
#include "xmalloc.h"

#define PG_CONNECT_TIMEOUT_MS 10000
#define PG_RECONNECT_MIN_MS   100
#define PG_RECONNECT_MAX_MS   5000
#define PG_WAIT_TIMEOUT_MS    10000
#define PG_SWEEP_MIN_MS	      50
#define PG_CHANNEL_MAX	      63 /* NAMEDATALEN - 1 */
#define PG_ERR_MAX	      512
#define PG_PREPARED_MAX	      256 /* texts prepared per connection */
#define PG_PREPARED_SLOTS     512 /* the cache's hash table: 2x */

struct pg_req {
	TAILQ_ENTRY(pg_req) entry;
	char *sql;
	int nparams;
	char **values;
	unsigned flags;
	pg_done_fn *done;
	void *arg;
	uint64_t queued_ms; /* when it started waiting (monotonic) */
	PGresult *res;	    /* the answer so far, once one came */
	bool listen;	    /* a LISTEN of pg_relisten() */
	/* sent with its Parse: the Parse's answer comes first */
	bool parsing;
	unsigned prepared; /* the statement's name number; 0 = unnamed */
};

/* A text prepared on the current connection (pg->prep). */
struct pg_prep {
	char *sql; /* NULL = a free slot */
	uint64_t hash;
	unsigned name; /* "od_<name>" */
};
TAILQ_HEAD(pg_reqq, pg_req);

struct pg_listener {
	char *channel;
	pg_notify_fn *fn;
	void *arg;
};

struct pg {
	struct event_base *base;
	char *url;
	unsigned connect_timeout_ms;
	unsigned reconnect_min_ms;
	unsigned reconnect_max_ms;
	unsigned wait_timeout_ms;
	void (*on_state)(void *arg, enum pg_state state, const char *why);
	void *arg;

	PGconn *conn;
	enum pg_state state;
	int fd;			/* the socket the events watch; -1 = none */
	struct event *ev_read;	/* persistent */
	struct event *ev_write; /* one-shot, while libpq has output */
	struct event *ev_kick;	/* sends the waiting queries */
	struct event *ev_timer; /* reconnect delay, or connect timeout */
	struct event *ev_sweep; /* fails queries that waited too long */
	unsigned backoff_ms;
	char last_error[PG_ERR_MAX];

	struct pg_reqq waiting;
	struct pg_reqq in_flight;
	size_t nwaiting;
	size_t nin_flight;
	unsigned long sent;
	unsigned connects;

	struct pg_listener *listeners;
	size_t nlisteners;
	bool closing;
	bool simple;  /* out of pipeline mode: a PG_SIMPLE query in flight */
	size_t syncs; /* Syncs sent whose PGRES_PIPELINE_SYNC is not taken */

	struct pg_prep prep[PG_PREPARED_SLOTS]; /* this connection's */
	size_t nprep;
	unsigned prep_seq;
	unsigned long parses; /* Parse messages sent, for the tests */
};

static void pg_on_socket(evutil_socket_t fd, short what, void *arg);
static void pg_lost(struct pg *pg, const char *why);

int64_t
pg_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval
pg_tv(unsigned ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* How often waiting queries are checked for wait_timeout_ms. */
static struct timeval
pg_sweep_tv(const struct pg *pg)
{
	unsigned ms = pg->wait_timeout_ms / 4;

	return pg_tv(ms > PG_SWEEP_MIN_MS ? ms : PG_SWEEP_MIN_MS);
}

/* libpq's multi-line message as one line, without the trailing newline. */
static void
pg_oneline(const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	if (in == NULL || *in == '\0')
		in = "unknown error";
	for (; *in != '\0' && n + 1 < outlen; in++) {
		if (*in == '\n') {
			if (in[1] == '\0')
				break;
			if (n + 3 >= outlen)
				break;
			out[n++] = ';';
			out[n++] = ' ';
			continue;
		}
		out[n++] = *in;
	}
	out[n] = '\0';
}

static void
pg_state_set(struct pg *pg, enum pg_state st, const char *why)
{
	pg->state = st;
	if (pg->on_state != NULL)
		pg->on_state(pg->arg, st, why);
}

/* ---- prepared statements (see the top) ---------------------------------- */

static uint64_t
pg_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * The cache entry of sql, made (not yet named) when there is room; NULL
 * when sql is not cached and the cache is full.
 */
static struct pg_prep *
pg_prep_find(struct pg *pg, const char *sql)
{
	uint64_t h = pg_hash(sql);
	size_t i = h % PG_PREPARED_SLOTS;

	while (pg->prep[i].sql != NULL) {
		if (pg->prep[i].hash == h && strcmp(pg->prep[i].sql, sql) == 0)
			return &pg->prep[i];
		i = (i + 1) % PG_PREPARED_SLOTS;
	}
	if (pg->nprep >= PG_PREPARED_MAX)
		return NULL;
	pg->prep[i].sql = xstrdup(sql);
	pg->prep[i].hash = h;
	pg->prep[i].name = 0;
	pg->nprep++;
	return &pg->prep[i];
}

/* A Parse of r's text failed: parse it again (a new name) next time. */
static void
pg_prep_forget(struct pg *pg, const struct pg_req *r)
{
	struct pg_prep *e = pg_prep_find(pg, r->sql);

	if (e != NULL && e->name == r->prepared)
		e->name = 0;
}

/*
 * r's Execute found no statement of its name (26000): another query of
 * its text went out before that text's Parse failed, or something else
 * dropped the session's statements. The error stands (inside a group
 * nothing may be re-run alone); the text is parsed again next time.
 */
static void
pg_prep_missing(struct pg *pg, const struct pg_req *r)
{
	const char *state;

	if (r->prepared != 0 && PQresultStatus(r->res) == PGRES_FATAL_ERROR &&
	    (state = PQresultErrorField(r->res, PG_DIAG_SQLSTATE)) != NULL &&
	    strcmp(state, "26000") == 0)
		pg_prep_forget(pg, r);
}

/* A new session: nothing is prepared on it. */
static void
pg_prep_clear(struct pg *pg)
{
	size_t i;

	for (i = 0; i < PG_PREPARED_SLOTS; i++) {
		free(pg->prep[i].sql);
		pg->prep[i].sql = NULL;
	}
	pg->nprep = 0;
}

/*
 * Puts r on the wire: its Parse first when its text is new on this
 * connection, then its Execute (named or unnamed), then a Sync.
 */
static bool
pg_send_req(struct pg *pg, struct pg_req *r)
{
	struct pg_prep *e = NULL;
	char name[24];
	bool ok;

	r->prepared = 0;
	r->parsing = false;
	if (r->nparams > 0 && !r->listen && (r->flags & PG_PREPARE))
		e = pg_prep_find(pg, r->sql);
	if (e != NULL) {
		if (e->name == 0) {
			e->name = ++pg->prep_seq;
			r->parsing = true;
		}
		r->prepared = e->name;
		snprintf(name, sizeof(name), "od_%u", e->name);
	}
	if (r->parsing) {
		pg->parses++;
		if (PQsendPrepare(pg->conn, name, r->sql, r->nparams, NULL) !=
		    1)
			return false;
	}
	if (r->prepared != 0)
		ok = PQsendQueryPrepared(pg->conn, name, r->nparams,
			 (const char *const *)r->values, NULL, NULL, 0) == 1;
	else
		ok = PQsendQueryParams(pg->conn, r->sql, r->nparams, NULL,
			 (const char *const *)r->values, NULL, NULL, 0) == 1;
	return ok && PQpipelineSync(pg->conn) == 1;
}

/* ---- queries ------------------------------------------------------------ */

static void
pg_req_free(struct pg_req *r)
{
	int i;

	if (r->res != NULL)
		PQclear(r->res);
	for (i = 0; i < r->nparams; i++)
		free(r->values[i]);
	free(r->values);
	free(r->sql);
	free(r);
}

/* Runs r's callback with 'a' and frees r (already off its queue). */
static void
pg_req_answer(struct pg_req *r, const struct pg_answer *a)
{
	if (r->done != NULL)
		r->done(r->arg, a);
	pg_req_free(r);
}

/* Fails r with 'why' (no result). */
static void
pg_req_fail(struct pg_req *r, const char *why, bool maybe_ran)
{
	struct pg_answer a = {NULL, why, NULL, maybe_ran};

	pg_req_answer(r, &a);
}

/* Answers r with its result: success or the server's error. */
static void
pg_req_result(struct pg_req *r)
{
	struct pg_answer a = {r->res, NULL, NULL, false};
	char msg[PG_ERR_MAX];
	ExecStatusType st = PQresultStatus(r->res);

	switch (st) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY:
		break;
	case PGRES_PIPELINE_ABORTED:
		a.error = "not run: an earlier query of its pipeline segment "
			  "failed";
		break;
	case PGRES_FATAL_ERROR:
	case PGRES_NONFATAL_ERROR:
	case PGRES_BAD_RESPONSE:
		a.sqlstate = PQresultErrorField(r->res, PG_DIAG_SQLSTATE);
		pg_oneline(
		    PQresultErrorField(r->res, PG_DIAG_MESSAGE_PRIMARY) != NULL
			? PQresultErrorField(r->res, PG_DIAG_MESSAGE_PRIMARY)
			: PQresultErrorMessage(r->res),
		    msg, sizeof(msg));
		a.error = msg;
		break;
	default:
		snprintf(msg, sizeof(msg), "unsupported result: %s",
		    PQresStatus(st));
		a.error = msg;
		break;
	}
	pg_req_answer(r, &a);
}

/*
 * True if 'res' says the connection, not the query, failed: an error
 * libpq made up (no SQLSTATE), a connection exception (08) or the backend
 * shutting down or being terminated (57P01..57P03).
 */
static bool
pg_res_lost(const PGresult *res)
{
	const char *state;

	if (PQresultStatus(res) != PGRES_FATAL_ERROR)
		return false;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return state == NULL || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0;
}

int
pg_send(struct pg *pg, const struct pg_query *q, char *err, size_t errlen)
{
	struct pg_req *r;
	int i;

	if (pg->closing) {
		snprintf(err, errlen, "the connection is being closed");
		return -1;
	}
	if (q->sql == NULL || q->nparams < 0 ||
	    (q->nparams > 0 && q->values == NULL)) {
		snprintf(err, errlen, "malformed query (no SQL or parameters)");
		return -1;
	}
	if ((q->flags & PG_SIMPLE) && q->nparams > 0) {
		snprintf(err, errlen, "a PG_SIMPLE query takes no parameters");
		return -1;
	}
	r = xcalloc(1, sizeof(*r));
	r->sql = xstrdup(q->sql);
	r->nparams = q->nparams;
	r->values =
	    xcalloc(q->nparams > 0 ? (size_t)q->nparams : 1, sizeof(char *));
	for (i = 0; i < q->nparams; i++)
		r->values[i] =
		    q->values[i] != NULL ? xstrdup(q->values[i]) : NULL;
	r->flags = q->flags;
	r->done = q->done;
	r->arg = q->arg;
	r->queued_ms = (uint64_t)pg_clock_ms();
	TAILQ_INSERT_TAIL(&pg->waiting, r, entry);
	pg->nwaiting++;
	if (pg->state == PG_UP)
		event_active(pg->ev_kick, EV_TIMEOUT, 1);
	return 0;
}

/* ---- the socket ------------------------------------------------------------
 */

/* Watches fd for reading and/or writing, moving the events if it changed. */
static void
pg_watch(struct pg *pg, int fd, bool rd, bool wr)
{
	if (fd != pg->fd) {
		if (pg->ev_read != NULL)
			event_free(pg->ev_read);
		if (pg->ev_write != NULL)
			event_free(pg->ev_write);
		pg->ev_read = pg->ev_write = NULL;
		pg->fd = fd;
		if (fd >= 0) {
			pg->ev_read = event_new(pg->base, fd,
			    EV_READ | EV_PERSIST, pg_on_socket, pg);
			pg->ev_write =
			    event_new(pg->base, fd, EV_WRITE, pg_on_socket, pg);
			if (pg->ev_read == NULL || pg->ev_write == NULL)
				fatalx("pg: event_new failed");
		}
	}
	if (fd < 0)
		return;
	if (rd)
		event_add(pg->ev_read, NULL);
	else
		event_del(pg->ev_read);
	if (wr)
		event_add(pg->ev_write, NULL);
	else
		event_del(pg->ev_write);
}

/* Pushes libpq's output; EV_WRITE again while some is left. 0 / -1. */
static int
pg_flush(struct pg *pg)
{
	int r = PQflush(pg->conn);

	if (r == -1)
		return -1;
	if (r == 1)
		event_add(pg->ev_write, NULL);
	return 0;
}

/* ---- connecting ------------------------------------------------------------
 */

static void
pg_retry_later(struct pg *pg)
{
	struct timeval tv = pg_tv(pg->backoff_ms);

	event_add(pg->ev_timer, &tv);
	pg->backoff_ms = pg->backoff_ms * 2 > pg->reconnect_max_ms
	    ? pg->reconnect_max_ms
	    : pg->backoff_ms * 2;
}

static void
pg_listen_done(void *arg, const struct pg_answer *a)
{
	(void)arg;
	if (a->error != NULL && a->res != NULL)
		log_warnx("pg_listen_failed error=\"%s\"", a->error);
}

/* A LISTEN query for 'channel', quoted as an identifier. */
static struct pg_req *
pg_listen_req(const char *channel)
{
	struct pg_req *r;
	size_t n, j;

	r = xcalloc(1, sizeof(*r));
	r->sql = xmalloc(strlen("LISTEN \"\"") + 2 * strlen(channel) + 1);
	n = strlen("LISTEN \"");
	memcpy(r->sql, "LISTEN \"", n);
	for (j = 0; channel[j] != '\0'; j++) {
		if (channel[j] == '"')
			r->sql[n++] = '"';
		r->sql[n++] = channel[j];
	}
	r->sql[n++] = '"';
	r->sql[n] = '\0';
	r->values = xcalloc(1, sizeof(char *));
	r->flags = PG_IDEMPOTENT;
	r->done = pg_listen_done;
	r->listen = true;
	r->queued_ms = (uint64_t)pg_clock_ms();
	return r;
}

/*
 * Every LISTEN, at the head of the queue, before anything else is sent;
 * those of an earlier connection still waiting are dropped first.
 */
static void
pg_relisten(struct pg *pg)
{
	struct pg_req *r, *next;
	size_t i;

	for (r = TAILQ_FIRST(&pg->waiting); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (!r->listen)
			continue;
		TAILQ_REMOVE(&pg->waiting, r, entry);
		pg->nwaiting--;
		pg_req_free(r);
	}
	for (i = pg->nlisteners; i-- > 0;) {
		r = pg_listen_req(pg->listeners[i].channel);
		TAILQ_INSERT_HEAD(&pg->waiting, r, entry);
		pg->nwaiting++;
	}
}

static void
pg_up(struct pg *pg)
{
	char why[PG_ERR_MAX];

	if (PQsetnonblocking(pg->conn, 1) != 0 ||
	    PQenterPipelineMode(pg->conn) != 1) {
		pg_oneline(PQerrorMessage(pg->conn), why, sizeof(why));
		pg_lost(pg, why);
		return;
	}
	event_del(pg->ev_timer);
	event_del(pg->ev_sweep);
	pg->backoff_ms = pg->reconnect_min_ms;
	pg->connects++;
	pg_watch(pg, PQsocket(pg->conn), true, false);
	pg_relisten(pg);
	pg_state_set(pg, PG_UP, NULL);
	event_active(pg->ev_kick, EV_TIMEOUT, 1);
}

/* One step of PQconnectPoll(), on readiness of the socket. */
static void
pg_connect_poll(struct pg *pg)
{
	char why[PG_ERR_MAX];

	switch (PQconnectPoll(pg->conn)) {
	case PGRES_POLLING_READING:
		pg_watch(pg, PQsocket(pg->conn), true, false);
		break;
	case PGRES_POLLING_WRITING:
		pg_watch(pg, PQsocket(pg->conn), false, true);
		break;
	case PGRES_POLLING_OK:
		pg_up(pg);
		break;
	case PGRES_POLLING_FAILED:
	default:
		pg_oneline(PQerrorMessage(pg->conn), why, sizeof(why));
		pg_lost(pg, why);
		break;
	}
}

/* Server notices (NOTICE, WARNING, a FATAL between queries): debug only. */
static void
pg_notice(void *arg, const char *message)
{
	char line[PG_ERR_MAX];

	(void)arg;
	pg_oneline(message, line, sizeof(line));
	log_debug("pg_notice message=\"%s\"", line);
}

static void
pg_connect(struct pg *pg)
{
	struct timeval tv = pg_tv(pg->connect_timeout_ms);
	char why[PG_ERR_MAX];

	pg->conn = PQconnectStart(pg->url);
	if (pg->conn == NULL)
		fatalx("pg: out of memory in PQconnectStart");
	if (PQstatus(pg->conn) == CONNECTION_BAD) {
		pg_oneline(PQerrorMessage(pg->conn), why, sizeof(why));
		pg_lost(pg, why);
		return;
	}
	PQsetNoticeProcessor(pg->conn, pg_notice, pg);
	pg_state_set(pg, PG_CONNECTING, NULL);
	event_add(pg->ev_timer, &tv);
	/* libpq wants the socket writable first (PGRES_POLLING_WRITING). */
	pg_watch(pg, PQsocket(pg->conn), false, true);
}

/* Fails the waiting queries older than wait_timeout_ms. */
static void
pg_sweep(struct pg *pg)
{
	struct pg_req *r, *next;
	uint64_t now = (uint64_t)pg_clock_ms();
	char why[PG_ERR_MAX + 64];

	snprintf(why, sizeof(why), "no connection within %u ms: %s",
	    pg->wait_timeout_ms, pg->last_error);
	for (r = TAILQ_FIRST(&pg->waiting); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (now - r->queued_ms < pg->wait_timeout_ms)
			continue;
		TAILQ_REMOVE(&pg->waiting, r, entry);
		pg->nwaiting--;
		pg_req_fail(r, why, false);
	}
}

static void
pg_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pg *pg = arg;

	(void)fd;
	(void)what;
	if (pg->state == PG_CONNECTING)
		pg_lost(pg, "connect timeout");
	else if (pg->state == PG_DOWN)
		pg_connect(pg);
}

static void
pg_on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pg_sweep(arg);
}

/* "connection lost: " and what the lost result or the connection said. */
static void
pg_lost_msg(struct pg *pg, const PGresult *res, char *msg, size_t msglen)
{
	char why[PG_ERR_MAX];
	const char *primary = NULL;

	if (res != NULL) {
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		if (primary == NULL)
			primary = PQresultErrorMessage(res);
	}
	pg_oneline(primary != NULL && *primary != '\0' ? primary
						       : pg->last_error,
	    why, sizeof(why));
	snprintf(msg, msglen, "connection lost: %s", why);
}

/*
 * The connection is gone (or never came): close it, answer or requeue
 * what was in flight, and try again later.
 */
static void
pg_lost(struct pg *pg, const char *why)
{
	struct pg_reqq again = TAILQ_HEAD_INITIALIZER(again);
	struct pg_req *r;
	struct timeval sweep = pg_sweep_tv(pg);
	char msg[PG_ERR_MAX + 32];

	strlcpy(pg->last_error, why, sizeof(pg->last_error));
	pg_watch(pg, -1, false, false);
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	pg->conn = NULL;
	pg->simple = false;
	pg->syncs = 0;
	pg_prep_clear(pg);
	event_del(pg->ev_timer);
	pg->state = PG_DOWN;
	while ((r = TAILQ_FIRST(&pg->in_flight)) != NULL) {
		TAILQ_REMOVE(&pg->in_flight, r, entry);
		pg->nin_flight--;
		if (r->res != NULL && !r->parsing && !pg_res_lost(r->res)) {
			pg_req_result(r);
			continue;
		}
		if (r->flags & PG_IDEMPOTENT) {
			if (r->res != NULL)
				PQclear(r->res);
			r->res = NULL;
			r->queued_ms = (uint64_t)pg_clock_ms();
			TAILQ_INSERT_TAIL(&again, r, entry);
			continue;
		}
		pg_lost_msg(pg, r->res, msg, sizeof(msg));
		pg_req_fail(r, msg, true);
	}
	/* Back to the head, in their order (LISTENs: pg_relisten()). */
	while ((r = TAILQ_LAST(&again, pg_reqq)) != NULL) {
		TAILQ_REMOVE(&again, r, entry);
		TAILQ_INSERT_HEAD(&pg->waiting, r, entry);
		pg->nwaiting++;
	}
	pg_state_set(pg, PG_DOWN, pg->last_error);
	/* Not re-armed when pending: attempts more frequent than the sweep
	 * would otherwise postpone it forever. */
	if (!event_pending(pg->ev_sweep, EV_TIMEOUT, NULL))
		event_add(pg->ev_sweep, &sweep);
	pg_retry_later(pg);
}

/* ---- connected --------------------------------------------------------------
 */

/*
 * Sends r, a PG_SIMPLE query, alone out of pipeline mode once nothing is
 * in flight and every Sync is answered. 1 sent, 0 not yet (a kick after
 * the next answers retries), -1 leaving pipeline mode or the send failed.
 */
static int
pg_send_simple(struct pg *pg, struct pg_req *r)
{
	if (!TAILQ_EMPTY(&pg->in_flight) || pg->syncs > 0)
		return 0;
	if (PQpipelineStatus(pg->conn) != PQ_PIPELINE_OFF &&
	    PQexitPipelineMode(pg->conn) != 1)
		return -1;
	pg->simple = true;
	return PQsendQuery(pg->conn, r->sql) == 1 ? 1 : -1;
}

static void
pg_on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct pg *pg = arg;
	struct pg_req *r;
	char why[PG_ERR_MAX];
	bool ok;
	int rc;

	(void)fd;
	(void)what;
	if (pg->state != PG_UP)
		return;
	while (!pg->simple && (r = TAILQ_FIRST(&pg->waiting)) != NULL) {
		if (r->flags & PG_SIMPLE) {
			if ((rc = pg_send_simple(pg, r)) == 0)
				break;
			ok = rc == 1;
		} else {
			ok = pg_send_req(pg, r);
			if (ok)
				pg->syncs++;
		}
		/* Even a failed send may have put part of it on the wire:
		 * in flight, so pg_lost() treats it as maybe run. */
		TAILQ_REMOVE(&pg->waiting, r, entry);
		pg->nwaiting--;
		TAILQ_INSERT_TAIL(&pg->in_flight, r, entry);
		pg->nin_flight++;
		pg->sent++;
		if (!ok) {
			pg_oneline(PQerrorMessage(pg->conn), why, sizeof(why));
			pg_lost(pg, why);
			return;
		}
	}
	if (pg_flush(pg) == -1) {
		pg_oneline(PQerrorMessage(pg->conn), why, sizeof(why));
		pg_lost(pg, why);
	}
}

/*
 * A PG_SIMPLE query's answer is complete: back to pipeline mode, and the
 * queries that waited behind it go out on the next kick. 0 / -1.
 */
static int
pg_simple_done(struct pg *pg)
{
	if (PQenterPipelineMode(pg->conn) != 1)
		return -1;
	pg->simple = false;
	event_active(pg->ev_kick, EV_TIMEOUT, 1);
	return 0;
}

/*
 * Takes every complete result libpq holds and answers its query. -1 when
 * a result says the connection is lost (the query keeps it for
 * pg_lost()).
 */
static int
pg_results(struct pg *pg)
{
	struct pg_req *head;
	PGresult *res;

	while (!PQisBusy(pg->conn)) {
		head = TAILQ_FIRST(&pg->in_flight);
		res = PQgetResult(pg->conn);
		if (res == NULL) {
			/* The end of the head query's results, or none yet. */
			if (head == NULL || head->res == NULL)
				break;
			if (pg_res_lost(head->res))
				return -1;
			if (head->parsing) {
				/* That was its Parse's answer; its Execute's
				 * follows (skipped if the Parse failed, whose
				 * error is kept for it). */
				head->parsing = false;
				if (PQresultStatus(head->res) ==
				    PGRES_COMMAND_OK) {
					PQclear(head->res);
					head->res = NULL;
				} else
					pg_prep_forget(pg, head);
				continue;
			}
			TAILQ_REMOVE(&pg->in_flight, head, entry);
			pg->nin_flight--;
			pg_prep_missing(pg, head);
			if (pg->simple && pg_simple_done(pg) == -1) {
				TAILQ_INSERT_HEAD(&pg->in_flight, head, entry);
				pg->nin_flight++;
				return -1;
			}
			pg_req_result(head);
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			if (pg->syncs > 0)
				pg->syncs--;
			continue;
		}
		if (head == NULL) {
			/* An answer nobody asked for: the protocol is off. */
			PQclear(res);
			return -1;
		}
		if (head->res != NULL &&
		    PQresultStatus(head->res) == PGRES_FATAL_ERROR) {
			PQclear(res); /* keep the first error */
			continue;
		}
		if (head->res != NULL)
			PQclear(head->res);
		head->res = res;
		if (pg_res_lost(res))
			return -1;
	}
	return 0;
}

static void
pg_notifies(struct pg *pg)
{
	PGnotify *n;
	size_t i;

	while (pg->conn != NULL && (n = PQnotifies(pg->conn)) != NULL) {
		for (i = 0; i < pg->nlisteners; i++) {
			if (strcmp(pg->listeners[i].channel, n->relname) == 0)
				pg->listeners[i].fn(pg->listeners[i].arg,
				    n->relname, n->extra);
		}
		PQfreemem(n);
	}
}

static void
pg_io(struct pg *pg, short what)
{
	char why[PG_ERR_MAX];
	int ok = 1;

	if (what & EV_READ)
		ok = PQconsumeInput(pg->conn);
	if (pg_results(pg) == -1 || !ok) {
		pg_notifies(pg);
		pg_oneline(PQerrorMessage(pg->conn), why, sizeof(why));
		pg_lost(pg, why);
		return;
	}
	pg_notifies(pg);
	if (pg_flush(pg) == -1 || PQstatus(pg->conn) == CONNECTION_BAD) {
		pg_oneline(PQerrorMessage(pg->conn), why, sizeof(why));
		pg_lost(pg, why);
		return;
	}
	/* A PG_SIMPLE query waits for the pipeline to drain: retry. */
	if (TAILQ_EMPTY(&pg->in_flight) && !TAILQ_EMPTY(&pg->waiting))
		event_active(pg->ev_kick, EV_TIMEOUT, 1);
}

static void
pg_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct pg *pg = arg;

	(void)fd;
	if (pg->conn == NULL)
		return;
	if (pg->state == PG_CONNECTING)
		pg_connect_poll(pg);
	else if (pg->state == PG_UP)
		pg_io(pg, what);
}

/* ---- the rest of the interface ------------------------------------------ */

struct pg *
pg_new(struct event_base *base, const struct pg_config *cfg, char *err,
    size_t errlen)
{
	struct pg *pg;
	PQconninfoOption *opts;
	char *perr = NULL;
	struct timeval now = {0, 0}, sweep;

	if (cfg->url == NULL || *cfg->url == '\0') {
		snprintf(err, errlen, "no PostgreSQL URL");
		return NULL;
	}
	if ((opts = PQconninfoParse(cfg->url, &perr)) == NULL) {
		snprintf(err, errlen, "PostgreSQL URL: %s",
		    perr != NULL ? perr : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		PQfreemem(perr);
		return NULL;
	}
	PQconninfoFree(opts);
	pg = xcalloc(1, sizeof(*pg));
	pg->base = base;
	pg->url = xstrdup(cfg->url);
	pg->connect_timeout_ms = cfg->connect_timeout_ms
	    ? cfg->connect_timeout_ms
	    : PG_CONNECT_TIMEOUT_MS;
	pg->reconnect_min_ms =
	    cfg->reconnect_min_ms ? cfg->reconnect_min_ms : PG_RECONNECT_MIN_MS;
	pg->reconnect_max_ms =
	    cfg->reconnect_max_ms ? cfg->reconnect_max_ms : PG_RECONNECT_MAX_MS;
	if (pg->reconnect_max_ms < pg->reconnect_min_ms)
		pg->reconnect_max_ms = pg->reconnect_min_ms;
	pg->wait_timeout_ms =
	    cfg->wait_timeout_ms ? cfg->wait_timeout_ms : PG_WAIT_TIMEOUT_MS;
	pg->on_state = cfg->on_state;
	pg->arg = cfg->arg;
	pg->fd = -1;
	pg->backoff_ms = pg->reconnect_min_ms;
	strlcpy(pg->last_error, "not connected yet", sizeof(pg->last_error));
	TAILQ_INIT(&pg->waiting);
	TAILQ_INIT(&pg->in_flight);
	pg->ev_kick = event_new(base, -1, 0, pg_on_kick, pg);
	pg->ev_timer = event_new(base, -1, 0, pg_on_timer, pg);
	pg->ev_sweep = event_new(base, -1, EV_PERSIST, pg_on_sweep, pg);
	if (pg->ev_kick == NULL || pg->ev_timer == NULL || pg->ev_sweep == NULL)
		fatalx("pg: event_new failed");
	event_add(pg->ev_timer, &now);
	sweep = pg_sweep_tv(pg);
	event_add(pg->ev_sweep, &sweep);
	return pg;
}

void
pg_free(struct pg *pg)
{
	struct pg_req *r;
	size_t i;

	if (pg == NULL)
		return;
	pg->closing = true;
	pg_watch(pg, -1, false, false);
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	pg->conn = NULL;
	while ((r = TAILQ_FIRST(&pg->in_flight)) != NULL) {
		TAILQ_REMOVE(&pg->in_flight, r, entry);
		pg_req_fail(r, "closed", true);
	}
	while ((r = TAILQ_FIRST(&pg->waiting)) != NULL) {
		TAILQ_REMOVE(&pg->waiting, r, entry);
		pg_req_fail(r, "closed", false);
	}
	event_free(pg->ev_kick);
	event_free(pg->ev_timer);
	event_free(pg->ev_sweep);
	for (i = 0; i < pg->nlisteners; i++)
		free(pg->listeners[i].channel);
	free(pg->listeners);
	pg_prep_clear(pg);
	free(pg->url);
	free(pg);
}

int
pg_listen(struct pg *pg, const char *channel, pg_notify_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct pg_listener *l;
	struct pg_req *r;
	size_t n = strlen(channel);

	if (n == 0 || n > PG_CHANNEL_MAX) {
		snprintf(err, errlen, "LISTEN channel must be 1 to %d bytes",
		    PG_CHANNEL_MAX);
		return -1;
	}
	if (fn == NULL) {
		snprintf(err, errlen, "LISTEN %s: no callback", channel);
		return -1;
	}
	pg->listeners = xreallocarray(pg->listeners, pg->nlisteners + 1,
	    sizeof(*pg->listeners));
	l = &pg->listeners[pg->nlisteners++];
	l->channel = xstrdup(channel);
	l->fn = fn;
	l->arg = arg;
	if (pg->state == PG_UP) {
		/* not in the macro's argument: evaluated more than once */
		r = pg_listen_req(channel);
		TAILQ_INSERT_TAIL(&pg->waiting, r, entry);
		pg->nwaiting++;
		event_active(pg->ev_kick, EV_TIMEOUT, 1);
	}
	return 0;
}

void
pg_unlisten(struct pg *pg, const char *channel, pg_notify_fn *fn, void *arg)
{
	size_t i;

	for (i = 0; i < pg->nlisteners; i++) {
		if (pg->listeners[i].fn != fn || pg->listeners[i].arg != arg ||
		    strcmp(pg->listeners[i].channel, channel) != 0)
			continue;
		free(pg->listeners[i].channel);
		memmove(&pg->listeners[i], &pg->listeners[i + 1],
		    (pg->nlisteners - i - 1) * sizeof(*pg->listeners));
		pg->nlisteners--;
		return;
	}
}

int
pg_backend_pid(const struct pg *pg)
{
	return pg->state == PG_UP ? PQbackendPID(pg->conn) : 0;
}

void
pg_get_stats(const struct pg *pg, struct pg_stats *st)
{
	st->waiting = pg->nwaiting;
	st->in_flight = pg->nin_flight;
	st->sent = pg->sent;
	st->connects = pg->connects;
	st->parses = pg->parses;
	st->state = pg->state;
}
