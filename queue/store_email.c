/*
 * store_email.c - email deliverability as stored: failure counts that
 * mark an address bouncing after [email] bounce_limit permanent failures,
 * the reset after a delivery, the count for /metrics, and the recipient
 * of a message (for the unsubscribe links).
 */

#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "queue-internal.h"
#include "store-internal.h"
#include "store_members-internal.h"
#include "store_members.h"

/* Email bounces. ?1 address, ?2 limit, ?3 now. */
static const char store_members_sql_email_fail[] =
    "UPDATE members SET email_failures = email_failures + 1,"
    " bouncing = iif(?2 > 0 AND email_failures + 1 >= ?2, 1, bouncing),"
    " updated_at = ?3 WHERE email = lower(?1) RETURNING bouncing";
static const char store_members_sql_email_ok[] =
    "UPDATE members SET email_failures = 0 WHERE email = lower(?1)"
    " AND email_failures != 0 AND bouncing = 0";
static const char store_members_sql_bouncing[] =
    "SELECT count(*) FROM members WHERE bouncing = 1";
static const char store_members_sql_recipient[] =
    "SELECT channel, direction, to_addr, from_addr, member_id"
    " FROM messages WHERE id = ?1";

/* ---- Email bounces ------------------------------------------------------ */

int
store_email_failure(struct store *st, const char *address, unsigned limit,
    int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	bool bouncing = false;
	int rc;

	if (store_members_check_addr("email failure", address, err, errlen) ==
	    -1)
		return -1;
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_members_sql_email_fail, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, limit);
	sqlite3_bind_int64(stmt, 3, now);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		bouncing = sqlite3_column_int(stmt, 0) != 0;
	else if (rc != SQLITE_DONE)
		store_errmsg(st, "count email failure", err, errlen);
	/* RETURNING: the UPDATE completes on the step after its last row. */
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return -1;
	return bouncing ? 1 : 0;
}

int
store_email_success(struct store *st, const char *address, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;

	if (store_members_check_addr("email success", address, err, errlen) ==
	    -1)
		return -1;
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_members_sql_email_ok, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	return queue_step_done(st, stmt, "reset email failures", err, errlen);
}

int64_t
store_email_bouncing_count(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t n = 0;
	bool found;

	stmt = store_stmt(st, store_members_sql_bouncing, err, errlen);
	if (stmt == NULL)
		return -1;
	if (queue_int_row(st, stmt, &n, &found, err, errlen) == -1)
		return -1;
	return n;
}

/* Outbound: the recipient (to); inbound: the sender (from), the member. */
int
store_message_recipient(struct store *st, int64_t id, struct msg_recipient *r,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	const char *a;
	bool in;
	int rc;

	r->found = false;
	stmt = store_stmt(st, store_members_sql_recipient, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		r->ch = channel_parse((const char *)sqlite3_column_text(stmt,
			    0)) == CHANNEL_EMAIL
		    ? CHANNEL_EMAIL
		    : CHANNEL_SMS;
		in = strcmp((const char *)sqlite3_column_text(stmt, 1), "in") ==
		    0;
		a = (const char *)sqlite3_column_text(stmt, in ? 3 : 2);
		snprintf(r->addr, sizeof(r->addr), "%s", a != NULL ? a : "");
		r->member = sqlite3_column_type(stmt, 4) == SQLITE_NULL
		    ? 0
		    : sqlite3_column_int64(stmt, 4);
		r->found = true;
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "read message", err, errlen);
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}
