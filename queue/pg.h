/*
 * pg.h - one PostgreSQL connection driven by the daemon's libevent loop:
 * non-blocking libpq in pipeline mode, a FIFO of queries answered through
 * callbacks, reconnection with backoff, LISTEN/NOTIFY. The groundwork of
 * the PostgreSQL store of issue 13 (doc/postgresql.md); nothing in the
 * daemon uses it yet. Built only with libpq (HAVE_LIBPQ).
 *
 * Contract:
 *  - Loop thread only. No call here blocks on the network: the socket is
 *    non-blocking and every read and write waits for libevent. (One
 *    exception libpq imposes: a host name in the URL is resolved inside
 *    PQconnectStart(); give a socket directory or hostaddr= to avoid it.)
 *  - pg_send() never runs a callback itself: queries are sent on the next
 *    loop turn, all of a turn's queries in one write. Every query's 'done'
 *    runs exactly once, later, in the order the queries were sent.
 *  - Each query is its own pipeline segment (followed by a sync): an error
 *    in one fails that one only; the queries after it are answered as if
 *    sent alone. A transaction is explicit: "BEGIN", the queries, "COMMIT",
 *    all pipelined; an error inside it leaves the transaction aborted
 *    (SQLSTATE 25P02 for the rest) until COMMIT or ROLLBACK, as in psql.
 *  - When the connection drops, each query already sent and not answered
 *    fails with maybe_ran set ("connection lost"), unless it was sent with
 *    PG_IDEMPOTENT: those go back to the head of the queue and are sent
 *    again once reconnected. Queries not sent yet wait for the connection.
 *    A query that waited longer than wait_timeout_ms for a connection fails
 *    with "no connection". Reconnection is retried with a doubling delay
 *    (reconnect_min_ms .. reconnect_max_ms), forever, until pg_free().
 *  - LISTEN channels registered with pg_listen() are listened to again after
 *    each reconnection; notifications sent while the connection was down
 *    are lost (on_state(PG_UP) tells the owner to re-read what it watches).
 *  - The answer, its PGresult included, is borrowed for the callback only.
 *  - pg_free() fails every unanswered query ("closed") and returns; it must
 *    not be called from a pg callback, and callbacks it runs cannot send.
 */
#ifndef OD_PG_H
#define OD_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

struct event_base;
struct pg;

enum pg_state {
	PG_DOWN = 0, /* not connected; a connection attempt is due */
	PG_CONNECTING,
	PG_UP, /* connected, pipeline mode, LISTENs re-issued */
};

struct pg_config {
	const char *url;	     /* a libpq URI or key=value string */
	unsigned connect_timeout_ms; /* one attempt; 0 = 10000 */
	unsigned reconnect_min_ms;   /* first retry delay; 0 = 100 */
	unsigned reconnect_max_ms;   /* delay cap; 0 = 5000 */
	unsigned wait_timeout_ms;    /* a query's wait for a connection;
					0 = 10000 */
	/* Each change of state, with the reason for PG_DOWN; or NULL. */
	void (*on_state)(void *arg, enum pg_state state, const char *why);
	void *arg;
};

/* The answer to one query. */
struct pg_answer {
	/* The result; NULL when no result came (connection lost, closed, no
	 * connection). For a server error it holds the error's fields. */
	const PGresult *res;
	const char *error;    /* NULL on success; else one line */
	const char *sqlstate; /* the server's SQLSTATE of an error, or NULL */
	bool maybe_ran;	      /* lost after sending: it may have run */
};

typedef void pg_done_fn(void *arg, const struct pg_answer *a);

#define PG_IDEMPOTENT 0x01u /* resent after a reconnection */
/*
 * PG_SIMPLE: sql is sent with the simple-query protocol (PQsendQuery), so
 * it may hold several statements separated by semicolons, split by the
 * server itself (PL/pgSQL $$ bodies, strings, comments: all as psql -c
 * would). No parameters. Pipeline mode forbids it, so the driver waits
 * until every query sent before it is answered, leaves pipeline mode,
 * sends it alone, and enters pipeline mode again once it is answered: the
 * queries after it wait for its answer, order is kept. Costs a round trip
 * of its own: meant for migrations (queue/pg_migrate.c), not the hot path.
 * Its answer is the first error, or else the last statement's result. It
 * runs inside the transaction a pipelined "BEGIN" opened, if any; without
 * one, the server runs its statements as one implicit transaction. The
 * queries waiting behind it are not in flight: if the connection drops
 * while it runs, they go out on the next connection, outside the lost
 * transaction; so send the rest of a transaction (its COMMIT) only from
 * its callback.
 */
#define PG_SIMPLE 0x02u
/*
 * PG_PREPARE: a query with parameters is prepared once per connection
 * and then only executed (pg.c's top): for a large statement sent many
 * times whose generic plan is as good as a custom one. Allowed in a
 * group (store_pg_group_send()).
 */
#define PG_PREPARE 0x04u

struct pg_query {
	const char *sql; /* one statement, $1..$n parameters */
	int nparams;
	const char *const *values; /* text format; NULL = SQL NULL */
	unsigned flags;		   /* PG_IDEMPOTENT, PG_SIMPLE, PG_PREPARE */
	pg_done_fn *done;	   /* may be NULL: the answer is dropped */
	void *arg;
};

struct pg_stats {
	size_t waiting;	      /* queued, not sent yet */
	size_t in_flight;     /* sent, not answered */
	unsigned long sent;   /* queries written to the connection */
	unsigned connects;    /* successful connections so far */
	unsigned long parses; /* statements prepared (PG_PREPARE) */
	enum pg_state state;
};

/*
 * A connection on 'base'; its first attempt starts on the next loop turn.
 * NULL with the reason in err when the config is unusable (no URL, a URL
 * libpq cannot parse).
 */
struct pg *pg_new(struct event_base *base, const struct pg_config *cfg,
    char *err, size_t errlen);
void pg_free(struct pg *pg);
/*
 * Queues a query (sql, values are copied). 0, or -1 with err when pg is
 * being freed or the query is malformed (no SQL, negative nparams).
 */
int pg_send(struct pg *pg, const struct pg_query *q, char *err, size_t errlen);
/*
 * Calls fn(arg, channel, payload) for each NOTIFY on 'channel' (an SQL
 * identifier, sent quoted) from the next connection on, and now if up.
 * 0, or -1 with err (bad channel name).
 */
typedef void pg_notify_fn(void *arg, const char *channel, const char *payload);
int pg_listen(struct pg *pg, const char *channel, pg_notify_fn *fn, void *arg,
    char *err, size_t errlen);
/*
 * Forgets the listener pg_listen(channel, fn, arg) registered: fn is not
 * called again (the session stays listening; what arrives is dropped).
 * Not from inside that listener's call.
 */
void pg_unlisten(struct pg *pg, const char *channel, pg_notify_fn *fn,
    void *arg);
/* The backend's process id (for pg_cancel_backend and tests); 0 if down. */
int pg_backend_pid(const struct pg *pg);
void pg_get_stats(const struct pg *pg, struct pg_stats *st);
/* Milliseconds on CLOCK_MONOTONIC: the clock of the driver's waits and of
 * pg_queue's deadlines. */
int64_t pg_clock_ms(void);

#endif
