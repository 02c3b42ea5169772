/*
 * store_subscriptions.c - members' subscriptions to lists as stored:
 * subscribe (pending or active), unsubscribe, the status of one, the
 * pending one a "YES" confirms, and a list's members as JSON. Each change
 * appends its consent event (store_consent.c) in the same transaction.
 */

#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "queue-internal.h"
#include "store-internal.h"
#include "store_members-internal.h"
#include "store_members.h"

/* Subscriptions: ?1 member, ?2 list, ?3 channel. */
static const char store_members_sql_sub_status[] =
    "SELECT status FROM subscriptions WHERE member_id = ?1 AND list_id = ?2"
    " AND channel = ?3";
/* ?4 status, ?5 source, ?6 now. */
static const char store_members_sql_sub_insert[] =
    "INSERT INTO subscriptions (member_id, list_id, channel, status, source,"
    " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
static const char store_members_sql_sub_set[] =
    "UPDATE subscriptions SET status = ?4, source = ?5, updated_at = ?6"
    " WHERE member_id = ?1 AND list_id = ?2 AND channel = ?3";
static const char store_members_sql_sub_leave[] =
    "UPDATE subscriptions SET status = 'left', source = ?4, updated_at = ?5"
    " WHERE member_id = ?1 AND list_id = ?2 AND channel = ?3"
    " AND status != 'left'";
static const char store_members_sql_sub_pending[] =
    "SELECT list_id FROM subscriptions WHERE member_id = ?1 AND channel = ?2"
    " AND status = 'pending' ORDER BY updated_at DESC, list_id DESC LIMIT 1";
static const char store_members_sql_list_exists[] =
    "SELECT 1 FROM lists WHERE id = ?1";
/*
 * A list's members, one row per subscription, by member id: ?1 list,
 * ?2 status (NULL: pending and active), ?3 cursor.
 */
static const char store_members_sql_list_members[] =
    "SELECT " SM_COLS ", s.channel, s.status, s.source, s.created_at"
    " FROM subscriptions s JOIN members m ON m.id = s.member_id"
    " LEFT JOIN sms_optout so ON so.member_id = m.id"
    " LEFT JOIN email_optout eo ON eo.member_id = m.id"
    " WHERE s.list_id = ?1 AND s.member_id > ?3 AND (s.status = ?2"
    " OR (?2 IS NULL AND s.status != 'left'))"
    " ORDER BY s.member_id, s.channel";

static const char *const store_members_statuses[] = {
    [SUB_PENDING] = "pending",
    [SUB_ACTIVE] = "active",
    [SUB_LEFT] = "left",
};

/* ---- Subscriptions ---------------------------------------------------- */

/* "pending" / "active" / "left" to enum sub_status; -1 if none. */
int
store_members_sub_parse(const char *s)
{
	int i;

	for (i = SUB_PENDING; s != NULL && i <= SUB_LEFT; i++)
		if (strcmp(s, store_members_statuses[i]) == 0)
			return i;
	return -1;
}

/*
 * The write of store_subscribe(), inside the caller's operation: 'cur' is
 * the current status (-1 none). Sets *change and *wrote.
 */
int
store_members_sub_apply(struct store *st, const struct consent_change *cc,
    struct sm_sub *s, char *err, size_t errlen)
{
	enum consent_action action = CONSENT_OPT_IN;
	sqlite3_stmt *stmt;
	const char *sql;

	if (s->cur == SUB_ACTIVE ||
	    (s->cur == SUB_PENDING && s->status == SUB_PENDING)) {
		s->change = SUB_CHANGE_ALREADY;
		return 0;
	}
	if (s->cur < 0) {
		s->change = SUB_CHANGE_NEW;
		sql = store_members_sql_sub_insert;
	} else if (s->cur == SUB_LEFT) {
		s->change = SUB_CHANGE_REJOINED;
		sql = store_members_sql_sub_set;
	} else {
		s->change = SUB_CHANGE_ACTIVATED;
		action = CONSENT_CONFIRM;
		sql = store_members_sql_sub_set;
	}
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, cc->member);
	sqlite3_bind_int64(stmt, 2, cc->list);
	sqlite3_bind_text(stmt, 3, channel_to_text(cc->ch), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, store_members_statuses[s->status], -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, cc->source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, cc->now);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(store_db(st)) ==
		    SQLITE_CONSTRAINT_FOREIGNKEY)
			snprintf(err, errlen,
			    "subscribe: no member %" PRId64
			    " or no list %" PRId64,
			    cc->member, cc->list);
		else
			store_errmsg(st, "subscribe", err, errlen);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	s->wrote = true;
	return store_members_event(st, cc, action, err, errlen);
}

/* The subscription's status as enum sub_status, -1 none, -2 error. */
static int
store_members_sub_get(struct store *st, int64_t member, int64_t list,
    enum channel ch, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;
	int v = -1;

	stmt = store_stmt(st, store_members_sql_sub_status, err, errlen);
	if (stmt == NULL)
		return -2;
	sqlite3_bind_int64(stmt, 1, member);
	sqlite3_bind_int64(stmt, 2, list);
	sqlite3_bind_text(stmt, 3, channel_to_text(ch), -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		v = store_members_sub_parse(
		    (const char *)sqlite3_column_text(stmt, 0));
	else if (rc != SQLITE_DONE) {
		store_errmsg(st, "read subscription", err, errlen);
		v = -2;
	}
	sqlite3_reset(stmt);
	return v;
}

static int
store_members_sub_write(struct store *st, const struct consent_change *cc,
    struct sm_sub *s, char *err, size_t errlen)
{
	if ((s->cur = store_members_sub_get(st, cc->member, cc->list, cc->ch,
		 err, errlen)) == -2)
		return -1;
	return store_members_sub_apply(st, cc, s, err, errlen);
}

int
store_subscribe(struct store *st, const struct consent_change *cc,
    enum sub_status status, enum sub_change *change, char *err, size_t errlen)
{
	struct sm_sub s = {.status = status, .change = SUB_CHANGE_ALREADY};
	int rc;

	*change = SUB_CHANGE_ALREADY;
	if (store_members_check_ch(cc->ch, "subscribe", err, errlen) == -1)
		return -1;
	if (status != SUB_PENDING && status != SUB_ACTIVE) {
		snprintf(err, errlen,
		    "subscribe: status must be pending or "
		    "active");
		return -1;
	}
	if (cc->source == NULL || *cc->source == '\0') {
		snprintf(err, errlen, "subscribe: source required");
		return -1;
	}
	rc = store_members_sub_write(st, cc, &s, err, errlen);
	*change = s.change;
	return queue_op_end(st, rc, s.wrote);
}

int
store_unsubscribe(struct store *st, const struct consent_change *cc,
    bool *changed, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	*changed = false;
	if (store_members_check_ch(cc->ch, "unsubscribe", err, errlen) == -1)
		return -1;
	if (cc->source == NULL || *cc->source == '\0') {
		snprintf(err, errlen, "unsubscribe: source required");
		return -1;
	}
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_members_sql_sub_leave, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, cc->member);
	sqlite3_bind_int64(stmt, 2, cc->list);
	sqlite3_bind_text(stmt, 3, channel_to_text(cc->ch), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, cc->source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, cc->now);
	if (queue_step_done(st, stmt, "unsubscribe", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return 0;
	*changed = true;
	rc = store_members_event(st, cc, CONSENT_OPT_OUT, err, errlen);
	return queue_op_end(st, rc, true);
}

int
store_subscription_status(struct store *st, const struct sub_key *k,
    enum sub_status *status, char *err, size_t errlen)
{
	int cur;

	if (store_members_check_ch(k->ch, "subscription", err, errlen) == -1)
		return -1;
	if ((cur = store_members_sub_get(st, k->member, k->list, k->ch, err,
		 errlen)) == -2)
		return -1;
	if (cur < 0)
		return 0;
	*status = (enum sub_status)cur;
	return 1;
}

int
store_subscription_pending(struct store *st, int64_t member, enum channel ch,
    int64_t *list, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	bool found;

	if (store_members_check_ch(ch, "subscription", err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_members_sql_sub_pending, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, member);
	sqlite3_bind_text(stmt, 2, channel_to_text(ch), -1, SQLITE_STATIC);
	if (queue_int_row(st, stmt, list, &found, err, errlen) == -1)
		return -1;
	return found ? 1 : 0;
}

/*
 * One entry per subscription; a page holds whole members (both channels
 * of a member are on the same page), at most 'limit' of them.
 */
json_t *
store_list_members_json(struct store *st, const struct list_members_query *q,
    char *err, size_t errlen)
{
	int64_t list = q->list;
	const char *status = q->status;
	int64_t after = q->after;
	unsigned limit = q->limit;
	sqlite3_stmt *stmt;
	json_t *a;
	json_t *o;
	json_t *s;
	char buf[32];
	int64_t last = 0;
	int64_t id;
	unsigned n = 0;
	bool found;
	bool more = false;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if (limit < 1 || limit > SM_LIMIT_MAX) {
		snprintf(err, errlen, "limit: must be 1..%d", SM_LIMIT_MAX);
		return NULL;
	}
	if (status != NULL && store_members_sub_parse(status) < 0) {
		snprintf(err, errlen,
		    "status: must be pending, active or left");
		return NULL;
	}
	stmt = store_stmt(st, store_members_sql_list_exists, err, errlen);
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, list);
	if (queue_int_row(st, stmt, &id, &found, err, errlen) == -1 || !found)
		return NULL;
	stmt = store_stmt(st, store_members_sql_list_members, err, errlen);
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, list);
	queue_bind_text(stmt, 2, status);
	sqlite3_bind_int64(stmt, 3, after > 0 ? after : 0);
	a = json_array();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		id = sqlite3_column_int64(stmt, 0);
		if (id != last) {
			if (n == limit) {
				more = true;
				break;
			}
			n++;
			last = id;
		}
		o = store_members_row(stmt);
		s = json_object();
		json_object_set_new(s, "channel",
		    queue_json_text(stmt, SM_NCOLS));
		json_object_set_new(s, "status",
		    queue_json_text(stmt, SM_NCOLS + 1));
		json_object_set_new(s, "source",
		    queue_json_text(stmt, SM_NCOLS + 2));
		json_object_set_new(s, "created_at",
		    queue_json_time(stmt, SM_NCOLS + 3));
		json_object_set_new(o, "subscription", s);
		json_array_append_new(a, o);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_errmsg(st, "list members", err, errlen);
		sqlite3_reset(stmt);
		json_decref(a);
		return NULL;
	}
	sqlite3_reset(stmt);
	o = json_object();
	json_object_set_new(o, "members", a);
	json_object_set_new(o, "next_cursor",
	    more ? json_string(store_members_cursor(last, buf, sizeof(buf)))
		 : json_null());
	return o;
}
