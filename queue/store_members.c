/*
 * store_members.c - members and their consent as stored: for now the
 * opt-out a provider reports (Twilio 21610, Telnyx 40300) or a keyword
 * asks for. The members module (issue 4) builds on these functions.
 *
 * An opt-out is three writes in the store's group transaction: the member
 * (created on first sight, keyed by phone or lower-cased email), the
 * channel's opt-out row, and the consent_events row that proves it. The
 * opt-out row is inserted "ON CONFLICT DO NOTHING", and the event is
 * appended only when that insert added the row: a repeated opt-out leaves
 * the first one, its time and its source, as they were. As in queue.c, a
 * failure after rows changed rolls the whole group back, so a member
 * never ends up opted out without the event that says why.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "store-internal.h"
#include "store_members.h"

static const char store_members_sql_rollback[] = "ROLLBACK";

/* Members by address; emails are compared and stored lower-cased. */
static const char store_members_sql_by_phone[] =
    "SELECT id FROM members WHERE phone = ?1";
static const char store_members_sql_by_email[] =
    "SELECT id FROM members WHERE email = lower(?1)";
static const char store_members_sql_new_phone[] =
    "INSERT INTO members (phone, created_at, updated_at) VALUES (?1, ?2, ?2)";
static const char store_members_sql_new_email[] =
    "INSERT INTO members (email, created_at, updated_at)"
    " VALUES (lower(?1), ?2, ?2)";

/* ?1 member, ?2 now, ?3 source. */
static const char store_members_sql_sms_optout[] =
    "INSERT INTO sms_optout (member_id, opted_out_at, source)"
    " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
static const char store_members_sql_email_optout[] =
    "INSERT INTO email_optout (member_id, opted_out_at, source)"
    " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
/* ?1 member, ?2 channel, ?3 source, ?4 message id, ?5 now. */
static const char store_members_sql_consent_optout[] =
    "INSERT INTO consent_events (member_id, channel, action, source,"
    " message_id, created_at) VALUES (?1, ?2, 'opt_out', ?3, ?4, ?5)";

static int store_members_step(struct store *, sqlite3_stmt *, const char *,
    char *, size_t);
static int store_members_find(struct store *, enum channel, const char *,
    int64_t *, bool *, char *, size_t);
static int store_members_ensure(struct store *, enum channel, const char *,
    int64_t, int64_t *, bool *, char *, size_t);
static int store_members_optout_rows(struct store *, enum channel, int64_t,
    const char *, int64_t, int64_t, bool *, char *, size_t);
static int store_members_end(struct store *, int, bool);

/* Steps a write to completion and resets it. 0 / -1. */
static int
store_members_step(struct store *st, sqlite3_stmt *stmt, const char *what,
    char *err, size_t errlen)
{
	int rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		store_errmsg(st, what, err, errlen);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* The member with this phone (SMS) or email; *found false if none. */
static int
store_members_find(struct store *st, enum channel ch, const char *address,
    int64_t *id, bool *found, char *err, size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? store_members_sql_by_email
					      : store_members_sql_by_phone;
	sqlite3_stmt *stmt;
	int rc;

	*found = false;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(stmt, 0);
		*found = true;
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "find member", err, errlen);
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Finds the member, or creates it (setting *wrote). 0 / -1. */
static int
store_members_ensure(struct store *st, enum channel ch, const char *address,
    int64_t now, int64_t *id, bool *wrote, char *err, size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? store_members_sql_new_email
					      : store_members_sql_new_phone;
	sqlite3_stmt *stmt;
	bool found;

	if (store_members_find(st, ch, address, id, &found, err, errlen) == -1)
		return -1;
	if (found)
		return 0;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, now);
	if (store_members_step(st, stmt, "insert member", err, errlen) == -1)
		return -1;
	*id = sqlite3_last_insert_rowid(store_db(st));
	*wrote = true;
	return 0;
}

/*
 * Inserts the channel's opt-out row for member 'id' if it has none, and
 * then, only then, the consent event. Sets *wrote on any change.
 */
static int
store_members_optout_rows(struct store *st, enum channel ch, int64_t id,
    const char *source, int64_t message_id, int64_t now, bool *wrote, char *err,
    size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? store_members_sql_email_optout
					      : store_members_sql_sms_optout;
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, now);
	sqlite3_bind_text(stmt, 3, source, -1, SQLITE_STATIC);
	if (store_members_step(st, stmt, "insert opt-out", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return 0; /* opted out before: keep that record as it is */
	*wrote = true;
	stmt = store_stmt(st, store_members_sql_consent_optout, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, channel_to_text(ch), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, source, -1, SQLITE_STATIC);
	if (message_id > 0)
		sqlite3_bind_int64(stmt, 4, message_id);
	else
		sqlite3_bind_null(stmt, 4);
	sqlite3_bind_int64(stmt, 5, now);
	return store_members_step(st, stmt, "insert consent event", err,
	    errlen);
}

/* Rolls the group back if an operation failed after changing rows. */
static int
store_members_end(struct store *st, int rc, bool wrote)
{
	char ignored[256]; /* err already holds the failure that matters */
	sqlite3_stmt *stmt;

	if (rc == -1 && wrote && !sqlite3_get_autocommit(store_db(st))) {
		stmt = store_stmt(st, store_members_sql_rollback, ignored,
		    sizeof(ignored));
		if (stmt != NULL)
			(void)store_members_step(st, stmt, "rollback", ignored,
			    sizeof(ignored));
	}
	return rc;
}

/*
 * Records an opt-out of channel ch for 'address' (see the header). The
 * address must be non-empty and fit MSG_ADDR_MAX; 'source' names who
 * asked ("provider", "keyword", ...). 0 / -1 with err set.
 */
int
store_member_optout(struct store *st, enum channel ch, const char *address,
    const char *source, int64_t message_id, int64_t now, char *err,
    size_t errlen)
{
	bool wrote = false;
	int64_t id = 0;
	int rc;

	if (ch != CHANNEL_SMS && ch != CHANNEL_EMAIL) {
		snprintf(err, errlen, "opt-out: unknown channel %d", (int)ch);
		return -1;
	}
	if (address == NULL || *address == '\0' ||
	    strlen(address) >= MSG_ADDR_MAX) {
		snprintf(err, errlen,
		    "opt-out: address required, at most %d "
		    "bytes",
		    MSG_ADDR_MAX - 1);
		return -1;
	}
	if (source == NULL || *source == '\0') {
		snprintf(err, errlen, "opt-out: source required");
		return -1;
	}
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	rc = store_members_ensure(st, ch, address, now, &id, &wrote, err,
	    errlen);
	if (rc == 0)
		rc = store_members_optout_rows(st, ch, id, source, message_id,
		    now, &wrote, err, errlen);
	return store_members_end(st, rc, wrote);
}
