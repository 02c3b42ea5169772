/*
 * store_confirm_pg.c - an email double opt-in's store operations on
 * either backend (store_confirm_pg.h): a list's name, read through a
 * callback, and the confirmation click made durable through a callback.
 * The SQLite half hands on today's synchronous functions
 * (store_subscriptions.c, store_consent.c, store_lists.c, queue.c); the
 * PostgreSQL half is here, with its SQL.
 *
 * DESIGN
 *
 * A confirmation link made by one node is opened on any node (the nodes
 * share the signing key, doc/postgresql.md), so the click is served by
 * the shared database, and its page answers only after the write
 * committed, as on SQLite.
 *
 * The list's name (the GET page, the confirmation email's text) is one
 * indexed read outside the group: it needs no transaction, and an error
 * must not fail other requests' writes.
 *
 * The click is ONE statement in the node's group transaction, so that
 * nothing a repeated click does can fail the group:
 *  - the subscription moved pending -> active by an UPDATE whose WHERE
 *    says status = 'pending': two nodes serving the same click at once
 *    take turns on the row (READ COMMITTED re-checks the WHERE once the
 *    first committed), so exactly one moves it and the other writes
 *    nothing: one "confirm" event, one welcome;
 *  - only from what that UPDATE returned: the email opt-out removed
 *    (DELETE ... RETURNING), the consent events (confirm, then opt_in
 *    when an opt-out was removed: one INSERT whose rows are ordered, so
 *    their ids are in SQLite's order) and the welcome email with its
 *    history row, from the list's row and the member's address;
 *  - what the subscription was (none, left, pending, active) is read by
 *    the same statement (its snapshot, before the UPDATE), so a link to
 *    an unknown or ended subscription answers 410 and writes nothing.
 * On SQLite the same steps run one after the other (one writer), as
 * el_confirm_apply() did before.
 *
 * An email subscription to a double opt-in list (the members API's) is
 * one statement too: the subscription made pending by INSERT ... ON
 * CONFLICT DO UPDATE ... WHERE it was 'left' (a pending or active one is
 * left alone, also one another node is inserting: ON CONFLICT waits for
 * it), its opt_in event, and the confirmation email with its history
 * row only from what that returned: a subscription is pending with its
 * email queued, or not changed, never one without the other. The email
 * is rendered by the caller (email_links.c: the link is signed in C) and
 * only needs the member's id, so a member created by an earlier group
 * (members_pg.c) gets it in the next one.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compat.h"
#include "queue-internal.h"
#include "queue.h"
#include "store-internal.h"
#include "store_confirm_pg.h"
#include "store_members-internal.h"
#include "store_members.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"
#endif

/* One operation in flight: its caller and what its answers said. */
struct scp_op {
	struct store *st;
	store_list_name_fn *nfn;
	store_confirm_fn *cfn;
	store_confirm_sub_fn *sfn;
	void *arg;
	struct store_confirm_done d;
	struct store_confirm_sub_done sd;
	bool failed;	 /* the statement answered an error */
	char error[256]; /* that error, for d.error */
};

static struct scp_op *
scp_op_new(struct store *st, void *arg)
{
	struct scp_op *op = xcalloc(1, sizeof(*op));

	op->st = st;
	op->arg = arg;
	return op;
}

/* Whether op's group committed with its statement, and why not. */
static bool
scp_settled(struct scp_op *op, bool ok, const char **error)
{
	ok = ok && !op->failed;
	*error = !ok && op->error[0] != '\0' ? op->error : NULL;
	return ok;
}

/* Runs the confirmation's callback once, then frees op. */
static void
scp_confirm_finish(void *arg, bool ok)
{
	struct scp_op *op = arg;

	op->d.ok = scp_settled(op, ok, &op->d.error);
	op->cfn(op->arg, &op->d);
	free(op);
}

/* Runs the subscription's callback once, then frees op. */
static void
scp_sub_finish(void *arg, bool ok)
{
	struct scp_op *op = arg;

	op->sd.ok = scp_settled(op, ok, &op->sd.error);
	op->sfn(op->arg, &op->sd);
	free(op);
}

/* ---- SQLite: today's functions ----------------------------------------- */

static int
scp_sqlite_subscribe(struct store *st, const struct store_confirm_sub *c,
    struct scp_op *op, char *err, size_t errlen)
{
	struct queue_stored qs = {0};

	if (store_subscribe(st,
		&(struct consent_change){.member = c->member,
		    .list = c->list,
		    .ch = CHANNEL_EMAIL,
		    .source = CONSENT_API,
		    .detail = c->source,
		    .now = c->now},
		SUB_PENDING, &op->sd.change, err, errlen) == -1)
		return -1;
	op->sd.status = SUB_PENDING;
	if (op->sd.change == SUB_CHANGE_ALREADY &&
	    store_subscription_status(st,
		&(struct sub_key){.member = c->member,
		    .list = c->list,
		    .ch = CHANNEL_EMAIL},
		&op->sd.status, err, errlen) == -1)
		return -1;
	if (op->sd.change != SUB_CHANGE_ALREADY && c->mail != NULL) {
		if (queue_enqueue(st, c->mail, c->now, &qs, err, errlen) == -1)
			return -1;
		op->sd.msg_id = qs.id;
	}
	store_on_commit(st, scp_sub_finish, op);
	return 0;
}

/* The welcome email of list c->list to member c->member, if it has one. */
static int
scp_sqlite_welcome(struct store *st, const struct store_confirm *c,
    struct scp_op *op, char *err, size_t errlen)
{
	struct list_info li = {0};
	struct queue_new q = {0};
	struct queue_stored qs = {0};
	json_t *mj = NULL;
	const char *to;
	bool found = false;
	int rc = -1;

	if (store_list_get(st, c->list, &li, &found, err, errlen) == -1)
		return -1;
	if (!found || li.welcome_email == NULL || li.welcome_email[0] == '\0') {
		list_info_clear(&li);
		return 0;
	}
	if ((mj = store_member_json(st, c->member, err, errlen)) == NULL)
		goto done;
	if ((to = json_string_value(json_object_get(mj, "email"))) == NULL) {
		rc = 0; /* the address was removed since */
		goto done;
	}
	q.channel = CHANNEL_EMAIL;
	q.to = to;
	q.subject = li.welcome_email_subject != NULL &&
		li.welcome_email_subject[0] != '\0'
	    ? li.welcome_email_subject
	    : li.name;
	q.body = li.welcome_email;
	q.priority = c->priority;
	q.member_id = c->member;
	if (queue_enqueue(st, &q, c->now, &qs, err, errlen) == -1)
		goto done;
	op->d.welcome = qs.id;
	rc = 0;
done:
	json_decref(mj);
	list_info_clear(&li);
	return rc;
}

static int
scp_sqlite_confirm(struct store *st, const struct store_confirm *c,
    struct scp_op *op, char *err, size_t errlen)
{
	struct consent_change cc = {.member = c->member,
	    .list = c->list,
	    .ch = CHANNEL_EMAIL,
	    .source = CONSENT_WEB,
	    .detail = "confirmation link",
	    .now = c->now};
	enum sub_status status;
	enum sub_change change;
	int sub;

	if ((sub = store_subscription_status(st,
		 &(struct sub_key){.member = c->member,
		     .list = c->list,
		     .ch = CHANNEL_EMAIL},
		 &status, err, errlen)) == -1)
		return -1;
	if (sub == 0)
		op->d.result = STORE_CONFIRM_UNKNOWN;
	else if (status == SUB_LEFT)
		op->d.result = STORE_CONFIRM_LEFT;
	else {
		if (store_subscribe(st, &cc, SUB_ACTIVE, &change, err,
			errlen) == -1)
			return -1;
		op->d.activated = change == SUB_CHANGE_ACTIVATED;
		if (op->d.activated &&
		    (store_member_optin(st, &cc, &op->d.opted_back_in, err,
			 errlen) == -1 ||
			scp_sqlite_welcome(st, c, op, err, errlen) == -1))
			return -1;
	}
	store_on_commit(st, scp_confirm_finish, op);
	return 0;
}

#ifdef HAVE_LIBPQ

/* ---- PostgreSQL -------------------------------------------------------- */

static const char scp_sql_list_name[] =
    "SELECT name FROM lists WHERE id = $1::bigint";

/*
 * The click: $1 member, $2 list, $3 now, $4 the welcome's priority.
 * Answers (the subscription's status before, or NULL; whether this
 * click activated it; whether an opt-out was lifted; the welcome's id or
 * 0).
 */
static const char scp_sql_confirm[] =
    "WITH cur AS MATERIALIZED (SELECT status FROM subscriptions"
    " WHERE member_id = $1::bigint AND list_id = $2::bigint"
    " AND channel = 'email'),"
    " up AS (UPDATE subscriptions SET status = 'active', source = 'web',"
    " updated_at = $3::bigint WHERE member_id = $1::bigint"
    " AND list_id = $2::bigint AND channel = 'email' AND status = 'pending'"
    " RETURNING member_id),"
    " oi AS (DELETE FROM email_optout WHERE member_id = $1::bigint"
    " AND EXISTS (SELECT 1 FROM up) RETURNING member_id),"
    " ce AS (INSERT INTO consent_events (member_id, channel, action,"
    " source, list_id, message_id, detail, created_at)"
    " SELECT e.member_id, 'email', e.action, 'web', e.list, NULL,"
    " 'confirmation link', $3::bigint FROM ("
    "SELECT member_id, 'confirm' AS action, $2::bigint AS list, 1 AS ord"
    " FROM up UNION ALL SELECT member_id, 'opt_in', NULL::bigint, 2"
    " FROM oi) e ORDER BY e.ord),"
    " w AS MATERIALIZED (SELECT m.email, coalesce(nullif("
    "l.welcome_email_subject, ''), l.name) AS subject, l.welcome_email"
    " FROM up JOIN members m ON m.id = up.member_id"
    " JOIN lists l ON l.id = $2::bigint WHERE m.email IS NOT NULL"
    " AND l.welcome_email IS NOT NULL AND l.welcome_email <> ''),"
    " msg AS (INSERT INTO messages (direction, channel, member_id, to_addr,"
    " subject, body, status, priority, next_attempt_at, created_at,"
    " updated_at, optout_exempt) SELECT 'out', 'email', $1::bigint,"
    " w.email, w.subject, w.welcome_email, 'queued', $4::bigint,"
    " $3::bigint, $3::bigint, $3::bigint, 0 FROM w RETURNING id),"
    " mh AS (INSERT INTO message_events (message_id, status, created_at)"
    " SELECT id, 'queued', $3::bigint FROM msg)"
    " SELECT (SELECT status FROM cur), EXISTS (SELECT 1 FROM up),"
    " EXISTS (SELECT 1 FROM oi), coalesce((SELECT id FROM msg), 0)";

/*
 * An email subscription to a double opt-in list: $1 member, $2 list,
 * $3 the consent event's detail, $4 now, $5-$9 the confirmation email's
 * to (NULL: none), subject, body, html, priority. Answers (the status
 * before or NULL, whether it is pending now by this statement, the
 * email's id or 0). A row another node inserted meanwhile is waited for
 * by ON CONFLICT and then left as it is (not 'left').
 */
static const char scp_sql_subscribe[] =
    "WITH cur AS MATERIALIZED (SELECT status FROM subscriptions"
    " WHERE member_id = $1::bigint AND list_id = $2::bigint"
    " AND channel = 'email'),"
    " sub AS (INSERT INTO subscriptions (member_id, list_id, channel,"
    " status, source, created_at, updated_at) VALUES ($1::bigint,"
    " $2::bigint, 'email', 'pending', 'api', $4::bigint, $4::bigint)"
    " ON CONFLICT (member_id, list_id, channel) DO UPDATE"
    " SET status = 'pending', source = 'api', updated_at = $4::bigint"
    " WHERE subscriptions.status = 'left' RETURNING member_id),"
    " ce AS (INSERT INTO consent_events (member_id, channel, action,"
    " source, list_id, message_id, detail, created_at)"
    " SELECT member_id, 'email', 'opt_in', 'api', $2::bigint, NULL,"
    " $3::text, $4::bigint FROM sub),"
    " msg AS (INSERT INTO messages (direction, channel, member_id, to_addr,"
    " subject, body, html, status, priority, next_attempt_at, created_at,"
    " updated_at, optout_exempt) SELECT 'out', 'email', $1::bigint,"
    " $5::text, $6::text, $7::text, $8::text, 'queued', $9::bigint,"
    " $4::bigint, $4::bigint, $4::bigint, 1 FROM sub"
    " WHERE $5::text IS NOT NULL RETURNING id),"
    " mh AS (INSERT INTO message_events (message_id, status, created_at)"
    " SELECT id, 'queued', $4::bigint FROM msg)"
    " SELECT (SELECT status FROM cur), EXISTS (SELECT 1 FROM sub),"
    " coalesce((SELECT id FROM msg), 0)";

static void
scp_subscribe_answer(void *arg, const struct pg_answer *a)
{
	struct scp_op *op = arg;
	const char *was;
	int st;

	if (a->error != NULL) {
		op->failed = true;
		snprintf(op->error, sizeof(op->error), "%s", a->error);
		return;
	}
	if (PQntuples(a->res) != 1) {
		op->failed = true;
		snprintf(op->error, sizeof(op->error),
		    "subscribe: no answer row");
		return;
	}
	was = pgr_get_text(a->res, 0, 0);
	op->sd.msg_id = pgr_get_i64(a->res, 0, 2);
	op->sd.status = SUB_PENDING;
	if (pgr_get_bool(a->res, 0, 1))
		op->sd.change =
		    was == NULL ? SUB_CHANGE_NEW : SUB_CHANGE_REJOINED;
	else {
		op->sd.change = SUB_CHANGE_ALREADY;
		/* none before: another node's, pending, made meanwhile */
		if ((st = store_members_sub_parse(was)) >= 0)
			op->sd.status = (enum sub_status)st;
	}
}

static int
scp_pg_subscribe(struct store *st, const struct store_confirm_sub *c,
    struct scp_op *op, char *err, size_t errlen)
{
	char mem[24], list[24], now[24], prio[24];
	const struct queue_new *q = c->mail;
	const char *v[9] = {pgr_i64(mem, c->member, false),
	    pgr_i64(list, c->list, false), c->source,
	    pgr_i64(now, c->now, false), q != NULL ? q->to : NULL,
	    q != NULL ? q->subject : NULL, q != NULL ? q->body : NULL,
	    q != NULL ? q->html : NULL,
	    pgr_i64(prio, q != NULL ? q->priority : 0, false)};

	if (store_pg_group_send(st,
		&(struct pg_query){.sql = scp_sql_subscribe,
		    .nparams = 9,
		    .values = v,
		    .done = scp_subscribe_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	store_on_commit(st, scp_sub_finish, op);
	return 0;
}

static void
scp_name_answer(void *arg, const struct pg_answer *a)
{
	struct scp_op *op = arg;

	if (a->error != NULL)
		op->nfn(op->arg, -1, NULL, a->error);
	else
		op->nfn(op->arg, 0,
		    PQntuples(a->res) == 1 ? PQgetvalue(a->res, 0, 0) : NULL,
		    NULL);
	free(op);
}

static int
scp_pg_list_name(struct store *st, int64_t list, struct scp_op *op, char *err,
    size_t errlen)
{
	char ids[24];
	const char *v[1] = {pgr_i64(ids, list, false)};

	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = scp_sql_list_name,
		    .nparams = 1,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = scp_name_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	return 0;
}

static void
scp_confirm_answer(void *arg, const struct pg_answer *a)
{
	struct scp_op *op = arg;
	const char *was;

	if (a->error != NULL) {
		op->failed = true;
		snprintf(op->error, sizeof(op->error), "%s", a->error);
		return;
	}
	if (PQntuples(a->res) != 1) {
		op->failed = true;
		snprintf(op->error, sizeof(op->error),
		    "confirm: no answer row");
		return;
	}
	was = pgr_get_text(a->res, 0, 0);
	op->d.result = was == NULL     ? STORE_CONFIRM_UNKNOWN
	    : strcmp(was, "left") == 0 ? STORE_CONFIRM_LEFT
				       : STORE_CONFIRM_OK;
	op->d.activated = pgr_get_bool(a->res, 0, 1);
	op->d.opted_back_in = pgr_get_bool(a->res, 0, 2);
	op->d.welcome = pgr_get_i64(a->res, 0, 3);
}

static int
scp_pg_confirm(struct store *st, const struct store_confirm *c,
    struct scp_op *op, char *err, size_t errlen)
{
	char mem[24], list[24], now[24], prio[24];
	const char *v[4] = {pgr_i64(mem, c->member, false),
	    pgr_i64(list, c->list, false), pgr_i64(now, c->now, false),
	    pgr_i64(prio, c->priority, false)};

	if (store_pg_group_send(st,
		&(struct pg_query){.sql = scp_sql_confirm,
		    .nparams = 4,
		    .values = v,
		    .done = scp_confirm_answer,
		    .arg = op},
		err, errlen) == -1) {
		free(op);
		return -1;
	}
	store_on_commit(st, scp_confirm_finish, op);
	return 0;
}

#else /* !HAVE_LIBPQ */

/* The PostgreSQL half is missing: this build has no libpq. */
static int
scp_no_pg(struct scp_op *op, char *err, size_t errlen)
{
	free(op);
	return store_no_libpq(err, errlen);
}

#endif /* HAVE_LIBPQ */

/* ---- the public operations: one branch per backend --------------------- */

int
store_list_name_async(struct store *st, int64_t list, store_list_name_fn *fn,
    void *arg, char *err, size_t errlen)
{
	struct list_info li = {0};
	struct scp_op *op;
	bool found = false;
	char e[256];

	if (store_backend(st) == STORE_SQLITE) {
		if (store_list_get(st, list, &li, &found, e, sizeof(e)) == -1)
			fn(arg, -1, NULL, e);
		else
			fn(arg, 0, found ? li.name : NULL, NULL);
		list_info_clear(&li);
		return 0;
	}
	op = scp_op_new(st, arg);
	op->nfn = fn;
#ifdef HAVE_LIBPQ
	return scp_pg_list_name(st, list, op, err, errlen);
#else
	(void)list;
	return scp_no_pg(op, err, errlen);
#endif
}

int
store_confirm_durable(struct store *st, const struct store_confirm *c,
    store_confirm_fn *done, void *arg, char *err, size_t errlen)
{
	struct scp_op *op;
	int rc;

	if (c->member <= 0 || c->list <= 0) {
		snprintf(err, errlen, "confirm: bad member or list");
		return -1;
	}
	op = scp_op_new(st, arg);
	op->cfn = done;
	if (store_backend(st) == STORE_SQLITE) {
		if ((rc = scp_sqlite_confirm(st, c, op, err, errlen)) == -1)
			free(op);
		return rc;
	}
#ifdef HAVE_LIBPQ
	return scp_pg_confirm(st, c, op, err, errlen);
#else
	return scp_no_pg(op, err, errlen);
#endif
}

int
store_confirm_subscribe_durable(struct store *st,
    const struct store_confirm_sub *c, store_confirm_sub_fn *done, void *arg,
    char *err, size_t errlen)
{
	struct scp_op *op;
	int rc;

	if (c->member <= 0 || c->list <= 0 || c->source == NULL ||
	    *c->source == '\0') {
		snprintf(err, errlen,
		    "subscribe: member, list and source required");
		return -1;
	}
	if (c->mail != NULL && queue_check_new(c->mail, err, errlen) == -1)
		return -1;
	op = scp_op_new(st, arg);
	op->sfn = done;
	if (store_backend(st) == STORE_SQLITE) {
		if ((rc = scp_sqlite_subscribe(st, c, op, err, errlen)) == -1)
			free(op);
		return rc;
	}
#ifdef HAVE_LIBPQ
	return scp_pg_subscribe(st, c, op, err, errlen);
#else
	return scp_no_pg(op, err, errlen);
#endif
}
