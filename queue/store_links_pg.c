/*
 * store_links_pg.c - a one-click unsubscribe's store operations on
 * either backend (store_links_pg.h): the recipient of a message, read
 * through a callback, and a member's opt-out of a channel made durable
 * through a callback. The SQLite half hands on today's synchronous
 * functions (store_email.c, store_members.c, store_consent.c); the
 * PostgreSQL half is here, with its SQL.
 *
 * DESIGN
 *
 * A link made by one node is followed on any node (the nodes share the
 * signing key, doc/postgresql.md), so what the page does must be served
 * by the shared database, and the page answers only after the opt-out
 * committed, as on SQLite.
 *
 * The recipient is one indexed read (the message by id), sent outside
 * the group on the store's connection: it needs no transaction and an
 * error must not fail other requests' writes. The caller lower-cases an
 * email in C between the read and the write, as it does on SQLite
 * (ASCII only, like SQLite's lower(): PostgreSQL's lower() would also
 * fold non-ASCII letters under a UTF-8 ctype, and find another member).
 *
 * The opt-out is ONE statement in the node's group transaction, so that
 * nothing a repeated click does can fail the group (an error there fails
 * every request of the turn):
 *  - the member ensured by address: INSERT ... ON CONFLICT (email or
 *    phone) DO UPDATE SET the same value RETURNING id, which returns the
 *    row whether it was made now, before, or by another node a moment
 *    ago (ON CONFLICT waits for that insert's commit);
 *  - the opt-out row: INSERT ... ON CONFLICT DO NOTHING RETURNING, so an
 *    earlier opt-out (its time and source) is kept as it is, as on
 *    SQLite;
 *  - the consent_events row only when the opt-out row was inserted: two
 *    nodes serving the same click at once write one opt-out and one
 *    event between them (the second insert waits on the first's key and
 *    then does nothing).
 * Whether the member was opted out before is what the statement did
 * (changed), not a separate read that another node's commit could make
 * stale; on SQLite it is read first, as before (one writer).
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "queue.h"
#include "store-internal.h"
#include "store_links_pg.h"
#include "store_members-internal.h"
#include "store_members.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#endif

/* One operation in flight: its caller and what its answers said. */
struct slp_op {
	struct store *st;
	store_recipient_fn *rfn;
	store_optout_fn *ofn;
	void *arg;
	struct store_optout_done d;
	bool failed;	 /* the statement answered an error */
	char error[256]; /* that error, for d.error */
};

static struct slp_op *
slp_op_new(struct store *st, void *arg)
{
	struct slp_op *op = xcalloc(1, sizeof(*op));

	op->st = st;
	op->arg = arg;
	return op;
}

/* Runs the opt-out's callback once, then frees op. */
static void
slp_optout_finish(void *arg, bool ok)
{
	struct slp_op *op = arg;

	op->d.ok = ok && !op->failed;
	if (!op->d.ok && op->error[0] != '\0')
		op->d.error = op->error;
	op->ofn(op->arg, &op->d);
	free(op);
}

/* ---- SQLite: today's functions ----------------------------------------- */

static int
slp_sqlite_optout(struct store *st, const char *address,
    const struct consent_change *cc, struct slp_op *op, char *err,
    size_t errlen)
{
	int64_t id = 0;
	int found, opted = 0;

	if ((found = store_member_find(st, cc->ch, address, &id, err,
		 errlen)) == -1)
		return -1;
	if (found == 1 &&
	    (opted = store_member_is_opted_out(st, id, cc->ch, err, errlen)) ==
		-1)
		return -1;
	if (store_member_optout(st, address, cc, err, errlen) == -1)
		return -1;
	if (found == 0 &&
	    store_member_find(st, cc->ch, address, &id, err, errlen) == -1)
		return -1;
	op->d.member = id;
	op->d.changed = opted == 0;
	store_on_commit(st, slp_optout_finish, op);
	return 0;
}

#ifdef HAVE_LIBPQ

/* ---- PostgreSQL -------------------------------------------------------- */

/* As store_email.c's store_members_sql_recipient. */
static const char slp_sql_recipient[] =
    "SELECT channel, direction, to_addr, from_addr, member_id"
    " FROM messages WHERE id = $1::bigint";

/*
 * The opt-out of one channel in one statement: $1 the address, $2 now,
 * $3 source, $4 message id (NULL), $5 detail (NULL). Answers (member,
 * whether the opt-out row was inserted).
 */
#define SLP_SQL_OPTOUT(col, table, chan)                                     \
	"WITH mem AS (INSERT INTO members (" col ", created_at, updated_at)" \
	" VALUES ($1::text, $2::bigint, $2::bigint) ON CONFLICT (" col ")"   \
	" DO UPDATE SET " col " = excluded." col " RETURNING id),"           \
	" oo AS (INSERT INTO " table " (member_id, opted_out_at, source)"    \
	" SELECT id, $2::bigint, $3::text FROM mem ON CONFLICT DO NOTHING"   \
	" RETURNING member_id),"                                             \
	" ce AS (INSERT INTO consent_events (member_id, channel, action,"    \
	" source, list_id, message_id, detail, created_at)"                  \
	" SELECT member_id, '" chan "', 'opt_out', $3::text, NULL,"          \
	" $4::bigint, $5::text, $2::bigint FROM oo)"                         \
	" SELECT (SELECT id FROM mem), EXISTS (SELECT 1 FROM oo)"
static const char slp_sql_optout_email[] =
    SLP_SQL_OPTOUT("email", "email_optout", "email");
static const char slp_sql_optout_sms[] =
    SLP_SQL_OPTOUT("phone", "sms_optout", "sms");

static void
slp_recipient_answer(void *arg, const struct pg_answer *a)
{
	struct slp_op *op = arg;
	struct msg_recipient r = {0};
	const PGresult *res = a->res;
	bool in;

	if (a->error != NULL) {
		op->rfn(op->arg, -1, NULL, a->error);
		free(op);
		return;
	}
	if (PQntuples(res) == 1) {
		r.ch = channel_parse(PQgetvalue(res, 0, 0)) == CHANNEL_EMAIL
		    ? CHANNEL_EMAIL
		    : CHANNEL_SMS;
		in = strcmp(PQgetvalue(res, 0, 1), "in") == 0;
		snprintf(r.addr, sizeof(r.addr), "%s",
		    PQgetvalue(res, 0, in ? 3 : 2)); /* "" when NULL */
		r.member = PQgetisnull(res, 0, 4)
		    ? 0
		    : strtoll(PQgetvalue(res, 0, 4), NULL, 10);
		r.found = true;
	}
	op->rfn(op->arg, 0, &r, NULL);
	free(op);
}

static int
slp_pg_recipient(struct store *st, int64_t id, struct slp_op *op, char *err,
    size_t errlen)
{
	char ids[24];
	const char *v[1] = {ids};

	snprintf(ids, sizeof(ids), "%" PRId64, id);
	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = slp_sql_recipient,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = slp_recipient_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	return 0;
}

static void
slp_optout_answer(void *arg, const struct pg_answer *a)
{
	struct slp_op *op = arg;

	if (a->error != NULL) {
		op->failed = true;
		snprintf(op->error, sizeof(op->error), "%s", a->error);
		return;
	}
	if (PQntuples(a->res) != 1 || PQgetisnull(a->res, 0, 0)) {
		op->failed = true;
		snprintf(op->error, sizeof(op->error),
		    "opt-out: no member row");
		return;
	}
	op->d.member = strtoll(PQgetvalue(a->res, 0, 0), NULL, 10);
	op->d.changed = PQgetvalue(a->res, 0, 1)[0] == 't';
}

static int
slp_pg_optout(struct store *st, const char *address,
    const struct consent_change *cc, struct slp_op *op, char *err,
    size_t errlen)
{
	char now[24], msg[24];
	const char *v[5];

	snprintf(now, sizeof(now), "%" PRId64, cc->now);
	snprintf(msg, sizeof(msg), "%" PRId64, cc->message_id);
	v[0] = address;
	v[1] = now;
	v[2] = cc->source;
	v[3] = cc->message_id > 0 ? msg : NULL;
	v[4] = cc->detail;
	if (store_pg_group_send(st,
		&(struct pg_query){.sql = cc->ch == CHANNEL_EMAIL
			? slp_sql_optout_email
			: slp_sql_optout_sms,
		    .nparams = 5,
		    .values = v,
		    .done = slp_optout_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	store_on_commit(st, slp_optout_finish, op);
	return 0;
}

#else /* !HAVE_LIBPQ */

/* The PostgreSQL half is missing: this build has no libpq. */
static int
slp_no_pg(struct slp_op *op, char *err, size_t errlen)
{
	free(op);
	return store_no_libpq(err, errlen);
}

#endif /* HAVE_LIBPQ */

/* ---- the public operations: one branch per backend --------------------- */

int
store_message_recipient_async(struct store *st, int64_t id,
    store_recipient_fn *fn, void *arg, char *err, size_t errlen)
{
	struct msg_recipient r = {0};
	struct slp_op *op;
	char e[256];

	if (store_backend(st) == STORE_SQLITE) {
		if (store_message_recipient(st, id, &r, e, sizeof(e)) == -1)
			fn(arg, -1, NULL, e);
		else
			fn(arg, 0, &r, NULL);
		return 0;
	}
	op = slp_op_new(st, arg);
	op->rfn = fn;
#ifdef HAVE_LIBPQ
	return slp_pg_recipient(st, id, op, err, errlen);
#else
	(void)id;
	return slp_no_pg(op, err, errlen);
#endif
}

int
store_member_optout_durable(struct store *st, const char *address,
    const struct consent_change *cc, store_optout_fn *done, void *arg,
    char *err, size_t errlen)
{
	struct slp_op *op;
	int rc;

	if (store_members_check_optout(address, cc, err, errlen) == -1)
		return -1;
	op = slp_op_new(st, arg);
	op->ofn = done;
	if (store_backend(st) == STORE_SQLITE) {
		if ((rc = slp_sqlite_optout(st, address, cc, op, err,
			 errlen)) == -1)
			free(op);
		return rc;
	}
#ifdef HAVE_LIBPQ
	return slp_pg_optout(st, address, cc, op, err, errlen);
#else
	return slp_no_pg(op, err, errlen);
#endif
}
