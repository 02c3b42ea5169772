/*
 * store_alerts.c - action alerts as stored (store_alerts.h).
 *
 * The audience is one static query whose JSON parameter carries the
 * lists, tags, fields, ZIP prefix and follow-up of the alert (SQLite's
 * json_each), so every alert shares the same prepared statements and no
 * SQL is ever built from text. The walk goes over members by primary key
 * in bounded ranges (alert_walk.scan), so one call costs a bounded amount
 * of work however sparse the audience is among the members.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "queue-internal.h"
#include "store_alerts.h"
#include "xmalloc.h"

static const char *const alert_status_names[ALERT_STATUS_COUNT] = {
    "draft",
    "scheduled",
    "sending",
    "paused",
    "done",
    "cancelled",
};

/* ?1 = audience JSON. A member reached on SMS / email: the channel flag
 * (?2 / ?3), the address, an active subscription to one of the lists,
 * not opted out, and (email) not bouncing. */
#define ALERT_SQL_SUB(ch, st)                                            \
	"EXISTS (SELECT 1 FROM subscriptions s WHERE s.member_id = m.id" \
	" AND s.channel = '" ch "' AND s.status " st " AND s.list_id IN" \
	" (SELECT value FROM json_each(?1, '$.lists')))"
#define ALERT_SQL_SMS_OPTOUT \
	"EXISTS (SELECT 1 FROM sms_optout o WHERE o.member_id = m.id)"
#define ALERT_SQL_EMAIL_OPTOUT \
	"EXISTS (SELECT 1 FROM email_optout o WHERE o.member_id = m.id)"
#define ALERT_SQL_SMS_OK                                        \
	"(?2 AND m.phone IS NOT NULL AND " ALERT_SQL_SUB("sms", \
	    "= 'active'") " AND NOT " ALERT_SQL_SMS_OPTOUT ")"
#define ALERT_SQL_EMAIL_OK                                                   \
	"(?3 AND m.email IS NOT NULL AND m.bouncing = 0 AND " ALERT_SQL_SUB( \
	    "email", "= 'active'") " AND NOT " ALERT_SQL_EMAIL_OPTOUT ")"
/* The filters besides the lists: every tag, every field, the ZIP prefix,
 * and what became of an earlier alert's message to the member. */
#define ALERT_SQL_FILTERS                                                      \
	" AND NOT EXISTS (SELECT 1 FROM json_each(?1, '$.tags') t"             \
	"  WHERE NOT EXISTS (SELECT 1 FROM json_each(m.tags) mt"               \
	"   WHERE mt.value = t.value))"                                        \
	" AND NOT EXISTS (SELECT 1 FROM json_each(?1, '$.fields') f"           \
	"  WHERE (SELECT CAST(a.value AS TEXT) FROM json_each(m.attributes) a" \
	"   WHERE a.key = f.key) IS NOT CAST(f.value AS TEXT))"                \
	" AND (json_extract(?1, '$.zip_prefix') IS NULL OR"                    \
	"  substr(m.zip, 1, length(json_extract(?1, '$.zip_prefix')))"         \
	"  = json_extract(?1, '$.zip_prefix'))"                                \
	" AND (json_extract(?1, '$.follow_up.alert') IS NULL OR EXISTS"        \
	"  (SELECT 1 FROM messages x WHERE x.member_id = m.id"                 \
	"   AND x.alert_id = json_extract(?1, '$.follow_up.alert')"            \
	"   AND x.direction = 'out' AND CASE json_extract(?1,"                 \
	"   '$.follow_up.who') WHEN 'missed' THEN x.status IN ('failed',"      \
	"   'expired', 'undelivered') ELSE x.status IN ('sent', 'delivered')"  \
	"   AND NOT EXISTS (SELECT 1 FROM messages r WHERE r.member_id ="      \
	"   m.id AND r.direction = 'in' AND r.created_at >= x.created_at)"     \
	"   END))"

/* ?4 after, ?5 last id looked at, ?6 limit. */
static const char alert_sql_walk[] =
    "SELECT id, sms_ok, email_ok, phone, email, first_name, last_name, zip,"
    " time_zone, attributes, (SELECT l.time_zone FROM subscriptions s"
    "  JOIN lists l ON l.id = s.list_id WHERE s.member_id = w.id"
    "  AND s.status = 'active' AND l.time_zone IS NOT NULL AND s.list_id IN"
    "  (SELECT value FROM json_each(?1, '$.lists')) ORDER BY l.id LIMIT 1)"
    " FROM (SELECT m.*, " ALERT_SQL_SMS_OK " AS sms_ok, " ALERT_SQL_EMAIL_OK
    " AS email_ok FROM members m WHERE m.id > ?4 AND m.id <= ?5" ALERT_SQL_FILTERS
    ") w WHERE sms_ok OR email_ok ORDER BY id LIMIT ?6";

static const char alert_sql_reach[] =
    "SELECT count(*), total(sms_ok), total(email_ok),"
    " total(sms_ok AND email_ok), total(sms_out), total(email_out),"
    " total(bouncing), total(NOT sms_ok AND NOT email_ok AND pending)"
    " FROM (SELECT " ALERT_SQL_SMS_OK " AS sms_ok, " ALERT_SQL_EMAIL_OK
    " AS email_ok, (?2 AND " ALERT_SQL_SUB("sms",
	"IN ('active', 'pending')") " AND " ALERT_SQL_SMS_OPTOUT ") AS sms_out, (?3 AND " ALERT_SQL_SUB("email",
	"IN ('active', 'pending')") " AND " ALERT_SQL_EMAIL_OPTOUT
				    ") AS email_out, (?3 AND m.bouncing = 1 AND " ALERT_SQL_SUB(
					"email",
					"= 'active'") ") AS bouncing, (" ALERT_SQL_SUB("sms",
					"= 'pending'") " OR " ALERT_SQL_SUB("email",
					"= 'pending'") ") AS pending"
						       " FROM members m WHERE m.id > ?4 AND m.id <= ?5 AND EXISTS"
						       " (SELECT 1 FROM subscriptions s WHERE s.member_id = m.id"
						       " AND s.status IN ('active', 'pending') AND s.list_id IN"
						       " (SELECT value FROM json_each(?1, '$.lists')))" ALERT_SQL_FILTERS
						       ")";

/* The members the walk reaches, with one field's value as 'v' (?7 the
 * column name, ?8 the attribute key). */
#define ALERT_SQL_FIELD                                                     \
	"CASE ?7 WHEN 'first_name' THEN m.first_name WHEN 'last_name' THEN" \
	" m.last_name WHEN 'email' THEN m.email WHEN 'phone' THEN m.phone"  \
	" WHEN 'zip' THEN m.zip ELSE (SELECT CAST(a.value AS TEXT) FROM"    \
	" json_each(m.attributes) a WHERE a.key = ?8) END"
#define ALERT_SQL_REACHED_WITH_FIELD                                      \
	"SELECT m.*, " ALERT_SQL_SMS_OK " AS sms_ok, " ALERT_SQL_EMAIL_OK \
	" AS email_ok, " ALERT_SQL_FIELD " AS v FROM members m"           \
	" WHERE m.id > ?4 AND m.id <= ?5" ALERT_SQL_FILTERS

static const char alert_sql_missing[] =
    "SELECT count(*) FROM (" ALERT_SQL_REACHED_WITH_FIELD ")"
    " WHERE (sms_ok OR email_ok)"
    " AND (v IS NULL OR trim(v, ' ' || char(9, 13, 10)) = '')";
static const char alert_sql_longest[] =
    "SELECT id, sms_ok, email_ok, phone, email, first_name, last_name, zip,"
    " time_zone, attributes, NULL FROM (" ALERT_SQL_REACHED_WITH_FIELD ")"
    " WHERE sms_ok OR email_ok ORDER BY length(v) DESC, id LIMIT ?6";
static const char alert_sql_list_sender[] =
    "SELECT sender FROM lists WHERE id = json_extract(?1, '$.lists[0]')";

#define ALERT_COLS                                                         \
	"id, name, status, pause_reason, audience, sms, email, sender,"    \
	" sms_body, email_subject, email_text, email_html, urgent,"        \
	" validity_s, scheduled_at, audience_max_id, cursor, fanout_done," \
	" created_at, started_at, finished_at, audience_sms, audience_email"
static const char alert_sql_load[] =
    "SELECT " ALERT_COLS " FROM alerts WHERE id = ?1";
static const char alert_sql_list[] =
    "SELECT id FROM alerts WHERE (?1 = 0 OR id < ?1)"
    " AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3";
static const char alert_sql_by_create_key[] =
    "SELECT id FROM alerts WHERE create_key = ?1";
static const char alert_sql_by_send_key[] =
    "SELECT id FROM alerts WHERE send_key = ?1";
static const char alert_sql_insert[] =
    "INSERT INTO alerts (name, status, audience, sms, email, sender,"
    " sms_body, email_subject, email_text, email_html, urgent, validity_s,"
    " scheduled_at, create_key, created_by, created_at, updated_at)"
    " VALUES (?1, 'draft', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
    " ?13, ?14, ?15, ?15)";
static const char alert_sql_update[] =
    "UPDATE alerts SET name = ?2, audience = ?3, sms = ?4, email = ?5,"
    " sender = ?6, sms_body = ?7, email_subject = ?8, email_text = ?9,"
    " email_html = ?10, urgent = ?11, validity_s = ?12, scheduled_at = ?13,"
    " updated_at = ?14 WHERE id = ?1 AND status = 'draft'";
static const char alert_sql_delete[] =
    "DELETE FROM alerts WHERE id = ?1 AND status = 'draft'";
static const char alert_sql_status[] =
    "SELECT status FROM alerts WHERE id = ?1";
static const char alert_sql_transition[] =
    "UPDATE alerts SET status = ?2, pause_reason = ?3, updated_at = ?4,"
    " started_at = CASE WHEN ?2 = 'sending' THEN coalesce(started_at, ?4)"
    "  ELSE started_at END,"
    " audience_max_id = CASE WHEN ?2 = 'sending' THEN"
    "  coalesce(audience_max_id, (SELECT coalesce(max(id), 0) FROM members))"
    "  ELSE audience_max_id END,"
    " finished_at = CASE WHEN ?2 IN ('done', 'cancelled') THEN ?4"
    "  ELSE finished_at END"
    " WHERE id = ?1";
static const char alert_sql_send_key[] =
    "UPDATE alerts SET send_key = ?2 WHERE id = ?1";
static const char alert_sql_live[] =
    "SELECT id FROM alerts WHERE status IN ('scheduled', 'sending')"
    " ORDER BY id";
static const char alert_sql_cursor[] =
    "UPDATE alerts SET cursor = ?2, fanout_done = ?3, updated_at = ?4"
    " WHERE id = ?1";
/*
 * By state and channel in the order of messages_alert (no sort, however
 * many messages), then the queued ones held for later per channel (a
 * range of messages_alert: alert, 'queued', channel, next_attempt_at):
 * they are taken out of 'pending'. Both read the index only, never a
 * message's row (009_alert_counts.sql; check_store_alerts.c checks the
 * plan).
 */
static const char alert_sql_counts[] =
    "SELECT channel, CASE WHEN status IN ('queued', 'sending') THEN"
    " 'pending' ELSE status END, count(*) FROM messages"
    " WHERE alert_id = ?1 GROUP BY status, channel"
    " UNION ALL SELECT 'sms', 'deferred', count(*) FROM messages"
    " WHERE alert_id = ?1 AND status = 'queued' AND next_attempt_at > ?2"
    " AND channel = 'sms'"
    " UNION ALL SELECT 'email', 'deferred', count(*) FROM messages"
    " WHERE alert_id = ?1 AND status = 'queued' AND next_attempt_at > ?2"
    " AND channel = 'email'";
static const char alert_sql_schedule[] =
    "UPDATE alerts SET scheduled_at = ?2 WHERE id = ?1";
static const char alert_sql_set_audience[] =
    "UPDATE alerts SET audience_sms = ?2, audience_email = ?3 WHERE id = ?1";
/* Each count stops at ?3 rows (-1: no limit). */
static const char alert_sql_backlog[] =
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM messages WHERE alert_id = ?1"
    "  AND status = 'sending' LIMIT ?3))"
    " + (SELECT count(*) FROM (SELECT 1 FROM messages WHERE alert_id = ?1"
    "  AND status = 'queued' AND next_attempt_at <= ?2 LIMIT ?3)),"
    " (SELECT count(*) FROM (SELECT 1 FROM messages WHERE alert_id = ?1"
    "  AND status = 'queued' AND next_attempt_at > ?2 LIMIT ?3))";
/* Messages that left, and whether their member then opted out of the
 * channel or wrote back within a day. */
static const char alert_sql_guard[] =
    "SELECT total(x.status IN ('sent', 'delivered', 'undelivered')),"
    " total(x.status IN ('sent', 'delivered', 'undelivered') AND"
    "  CASE x.channel WHEN 'sms' THEN EXISTS (SELECT 1 FROM sms_optout o"
    "   WHERE o.member_id = x.member_id AND o.opted_out_at >= x.created_at"
    "   AND o.opted_out_at < x.created_at + 86400000)"
    "  ELSE EXISTS (SELECT 1 FROM email_optout o"
    "   WHERE o.member_id = x.member_id AND o.opted_out_at >= x.created_at"
    "   AND o.opted_out_at < x.created_at + 86400000) END),"
    " total(x.status = 'failed'),"
    " total(x.status IN ('sent', 'delivered', 'undelivered') AND EXISTS"
    "  (SELECT 1 FROM messages r WHERE r.member_id = x.member_id"
    "   AND r.direction = 'in' AND r.created_at >= x.created_at"
    "   AND r.created_at < x.created_at + 86400000))"
    " FROM messages x WHERE x.alert_id = ?1 AND x.direction = 'out'"
    " AND x.status IN ('sent', 'delivered', 'undelivered', 'failed')";
/* Paused alerts keep their queued messages this far ahead. */
#define ALERT_HELD_AT INT64_C(0x7fffffffffff)
static const char alert_sql_hold[] =
    "UPDATE messages SET next_attempt_at = ?3 WHERE alert_id = ?1"
    " AND status = 'queued' AND next_attempt_at < ?3";
static const char alert_sql_release[] =
    "UPDATE messages SET next_attempt_at = max(coalesce(not_before, 0), ?2)"
    " WHERE alert_id = ?1 AND status = 'queued' AND next_attempt_at = ?3";

const char *
alert_status_name(enum alert_status s)
{
	if ((unsigned)s >= ALERT_STATUS_COUNT)
		return NULL;
	return alert_status_names[s];
}

int
alert_status_parse(const char *name, enum alert_status *out)
{
	for (unsigned i = 0; name != NULL && i < ALERT_STATUS_COUNT; i++)
		if (strcmp(name, alert_status_names[i]) == 0) {
			*out = (enum alert_status)i;
			return 0;
		}
	return -1;
}

/* Binds the definition's columns from parameter 'first' on, in the order
 * of alert_sql_insert (name ... scheduled_at). */
static void
alert_bind_def(sqlite3_stmt *s, int first, const struct alert_def *d)
{
	int i = first;

	queue_bind_text(s, i++, d->name);
	queue_bind_text(s, i++, d->audience);
	sqlite3_bind_int(s, i++, d->sms);
	sqlite3_bind_int(s, i++, d->email);
	queue_bind_text(s, i++, d->sender);
	queue_bind_text(s, i++, d->sms_body);
	queue_bind_text(s, i++, d->email_subject);
	queue_bind_text(s, i++, d->email_text);
	queue_bind_text(s, i++, d->email_html);
	sqlite3_bind_int(s, i++, d->urgent);
	sqlite3_bind_int64(s, i++, d->validity_s);
	queue_bind_id(s, i, d->scheduled_at);
}

/* The id a key column holds 'key' under: 0 = none, -1 on error. */
static int64_t
alert_by_key(struct store *st, const char *sql, const char *key, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;
	int64_t id;
	bool found;

	if ((s = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (queue_int_row(st, s, &id, &found, err, errlen) == -1)
		return -1;
	return found ? id : 0;
}

int64_t
store_alert_create(struct store *st, const struct alert_def *d, int64_t now,
    bool *dup, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int64_t id;

	*dup = false;
	if (d->create_key != NULL) {
		if ((id = alert_by_key(st, alert_sql_by_create_key,
			 d->create_key, err, errlen)) != 0) {
			*dup = id > 0;
			return id;
		}
	}
	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, alert_sql_insert, err, errlen)) == NULL)
		return -1;
	alert_bind_def(s, 1, d);
	queue_bind_text(s, 13, d->create_key);
	queue_bind_id(s, 14, d->created_by);
	sqlite3_bind_int64(s, 15, now);
	if (queue_step_done(st, s, "alert insert", err, errlen) == -1)
		return -1;
	return sqlite3_last_insert_rowid(store_db(st));
}

int
store_alert_update(struct store *st, int64_t id, const struct alert_def *d,
    int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *s;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, alert_sql_update, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	alert_bind_def(s, 2, d);
	sqlite3_bind_int64(s, 14, now);
	if (queue_step_done(st, s, "alert update", err, errlen) == -1)
		return -1;
	return sqlite3_changes(store_db(st)) > 0;
}

int
store_alert_delete(struct store *st, int64_t id, bool *found, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;

	*found = false;
	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, alert_sql_delete, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	if (queue_step_done(st, s, "alert delete", err, errlen) == -1)
		return -1;
	*found = sqlite3_changes(store_db(st)) > 0;
	return 0;
}

static char *
alert_col_dup(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	return t == NULL ? NULL : xstrdup((const char *)t);
}

int
store_alert_load(struct store *st, int64_t id, struct alert_row *out,
    bool *found, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof(*out));
	*found = false;
	if ((s = store_stmt(st, alert_sql_load, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = true;
		out->id = sqlite3_column_int64(s, 0);
		out->name = alert_col_dup(s, 1);
		if (alert_status_parse((const char *)sqlite3_column_text(s, 2),
			&out->status) == -1)
			out->status = ALERT_CANCELLED; /* CHECK forbids it */
		out->pause_reason = alert_col_dup(s, 3);
		out->audience = alert_col_dup(s, 4);
		out->sms = sqlite3_column_int(s, 5) != 0;
		out->email = sqlite3_column_int(s, 6) != 0;
		out->sender = alert_col_dup(s, 7);
		out->sms_body = alert_col_dup(s, 8);
		out->email_subject = alert_col_dup(s, 9);
		out->email_text = alert_col_dup(s, 10);
		out->email_html = alert_col_dup(s, 11);
		out->urgent = sqlite3_column_int(s, 12) != 0;
		out->validity_s = sqlite3_column_int64(s, 13);
		out->scheduled_at = sqlite3_column_int64(s, 14);
		out->audience_max_id = sqlite3_column_int64(s, 15);
		out->cursor = sqlite3_column_int64(s, 16);
		out->fanout_done = sqlite3_column_int(s, 17) != 0;
		out->created_at = sqlite3_column_int64(s, 18);
		out->started_at = sqlite3_column_int64(s, 19);
		out->finished_at = sqlite3_column_int64(s, 20);
		out->audience_sms = sqlite3_column_type(s, 21) == SQLITE_NULL
		    ? -1
		    : sqlite3_column_int64(s, 21);
		out->audience_email = sqlite3_column_type(s, 22) == SQLITE_NULL
		    ? -1
		    : sqlite3_column_int64(s, 22);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "alert load", err, errlen);
		store_alert_row_free(out);
		*found = false;
		return -1;
	}
	return 0;
}

void
store_alert_row_free(struct alert_row *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->pause_reason);
	free(r->audience);
	free(r->sender);
	free(r->sms_body);
	free(r->email_subject);
	free(r->email_text);
	free(r->email_html);
	memset(r, 0, sizeof(*r));
}

json_t *
store_alert_json(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	json_t *o = NULL, *aud;
	int rc;

	err[0] = '\0';
	if ((s = store_stmt(st, alert_sql_load, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		aud = json_loads((const char *)sqlite3_column_text(s, 4), 0,
		    NULL);
		o = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
			      " s:o, s:o, s:b, s:I, s:o, s:o, s:I, s:b, s:o,"
			      " s:o, s:o}",
		    "id", (json_int_t)sqlite3_column_int64(s, 0), "name",
		    queue_json_text(s, 1), "status", queue_json_text(s, 2),
		    "pause_reason", queue_json_text(s, 3), "audience",
		    aud != NULL ? aud : json_null(), "channels",
		    json_pack("[]"), "sender", queue_json_text(s, 7),
		    "sms_body", queue_json_text(s, 8), "email_subject",
		    queue_json_text(s, 9), "email_text", queue_json_text(s, 10),
		    "email_html", queue_json_text(s, 11), "urgent",
		    sqlite3_column_int(s, 12) != 0, "validity_s",
		    (json_int_t)sqlite3_column_int64(s, 13), "scheduled_at",
		    queue_json_time(s, 14), "audience_size",
		    json_pack("{s:o, s:o}", "sms", queue_json_int(s, 21),
			"email", queue_json_int(s, 22)),
		    "cursor", (json_int_t)sqlite3_column_int64(s, 16),
		    "fanout_done", sqlite3_column_int(s, 17) != 0, "created_at",
		    queue_json_time(s, 18), "started_at",
		    queue_json_time(s, 19), "finished_at",
		    queue_json_time(s, 20));
		if (o != NULL) {
			json_t *ch = json_object_get(o, "channels");

			if (sqlite3_column_int(s, 5))
				json_array_append_new(ch, json_string("sms"));
			if (sqlite3_column_int(s, 6))
				json_array_append_new(ch, json_string("email"));
		}
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "alert json", err, errlen);
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
store_alert_list(struct store *st, int64_t before, size_t limit,
    const char *status, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	json_t *arr = json_array(), *o;
	int64_t *ids = NULL;
	size_t n = 0, i;
	int rc;

	if ((s = store_stmt(st, alert_sql_list, err, errlen)) == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, before);
	queue_bind_text(s, 2, status);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
	ids = xreallocarray(NULL, limit > 0 ? limit : 1, sizeof(*ids));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < limit)
		ids[n++] = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_errmsg(st, "alert list", err, errlen);
		goto fail;
	}
	/* The load statement is another cached statement: one at a time. */
	for (i = 0; i < n; i++) {
		if ((o = store_alert_json(st, ids[i], err, errlen)) == NULL) {
			if (err[0] != '\0')
				goto fail;
			continue; /* deleted meanwhile */
		}
		json_array_append_new(arr, o);
	}
	free(ids);
	return arr;
fail:
	free(ids);
	json_decref(arr);
	return NULL;
}

int
store_alert_transition(struct store *st, int64_t id,
    const struct alert_transition *t, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	enum alert_status cur;
	bool may = false;
	int rc;

	if ((s = store_stmt(st, alert_sql_status, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW &&
	    alert_status_parse((const char *)sqlite3_column_text(s, 0), &cur) ==
		0 &&
	    (t->from & (1u << cur)) != 0)
		may = true;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_errmsg(st, "alert status", err, errlen);
		return -1;
	}
	if (!may)
		return 0;
	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, alert_sql_transition, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, alert_status_names[t->to], -1, SQLITE_STATIC);
	queue_bind_text(s, 3, t->to == ALERT_PAUSED ? t->reason : NULL);
	sqlite3_bind_int64(s, 4, t->now);
	if (queue_step_done(st, s, "alert transition", err, errlen) == -1)
		return -1;
	return 1;
}

int64_t
store_alert_send_key(struct store *st, int64_t id, const char *key, bool record,
    char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int64_t dup;

	if ((dup = alert_by_key(st, alert_sql_by_send_key, key, err, errlen)) !=
	    0)
		return dup;
	if (!record)
		return 0;
	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, alert_sql_send_key, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	if (queue_step_done(st, s, "alert send key", err, errlen) == -1)
		return -1;
	return 0;
}

int
store_alert_live(struct store *st, store_alert_id_fn *fn, void *arg, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0, i;
	int rc;

	if ((s = store_stmt(st, alert_sql_live, err, errlen)) == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			ids = xreallocarray(ids, cap, sizeof(*ids));
		}
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		free(ids);
		store_errmsg(st, "live alerts", err, errlen);
		return -1;
	}
	/* Called after the reset: the callback may use the store. */
	for (i = 0; i < n; i++)
		fn(arg, ids[i]);
	free(ids);
	return 0;
}

/* A one-row UPDATE of alert id: ?1 = id, ?2 and ?3 = a, b. */
struct alert_update2 {
	const char *sql;
	const char *what;
	int64_t id;
	int64_t a;
	int64_t b;
};

/* Runs u. */
static int
alert_update2(struct store *st, const struct alert_update2 *u, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, u->sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, u->id);
	sqlite3_bind_int64(s, 2, u->a);
	if (sqlite3_bind_parameter_count(s) >= 3)
		sqlite3_bind_int64(s, 3, u->b);
	return queue_step_done(st, s, u->what, err, errlen);
}

int
store_alert_schedule(struct store *st, int64_t id, int64_t at, char *err,
    size_t errlen)
{
	const struct alert_update2 u = {alert_sql_schedule, "alert schedule",
	    id, at, 0};

	return alert_update2(st, &u, err, errlen);
}

int
store_alert_set_audience(struct store *st, int64_t id, int64_t sms,
    int64_t email, char *err, size_t errlen)
{
	const struct alert_update2 u = {alert_sql_set_audience,
	    "alert audience", id, sms, email};

	return alert_update2(st, &u, err, errlen);
}

int
store_alert_set_cursor(struct store *st, int64_t id,
    const struct alert_cursor *c, int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *s;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, alert_sql_cursor, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, c->next);
	sqlite3_bind_int(s, 3, c->end);
	sqlite3_bind_int64(s, 4, now);
	return queue_step_done(st, s, "alert cursor", err, errlen);
}

/* ?1..?5 of the audience statements. */
static void
alert_bind_walk(sqlite3_stmt *s, const struct alert_walk *w, int64_t last)
{
	sqlite3_bind_text(s, 1, w->audience, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, w->sms);
	sqlite3_bind_int(s, 3, w->email);
	sqlite3_bind_int64(s, 4, w->after);
	sqlite3_bind_int64(s, 5, last);
}

/* The last member id a call looks at: bounded by max_id and by scan. */
static int64_t
alert_walk_last(const struct alert_walk *w)
{
	int64_t last = w->max_id > 0 ? w->max_id : INT64_MAX;

	if (last < w->after)
		return w->after; /* an empty range */
	if (w->scan > 0 && (uint64_t)(last - w->after) > w->scan)
		last = w->after + (int64_t)w->scan;
	return last;
}

static const char *
alert_text(sqlite3_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(s, col);
}

/*
 * Steps s (columns: id, sms_ok, email_ok, phone, email, first_name,
 * last_name, zip, time_zone, attributes, list time zone) and hands each
 * row to fn; *last (may be NULL) is the last id handed over. Resets s.
 * Returns the count, or -1.
 */
static ssize_t
alert_each_member(struct store *st, sqlite3_stmt *s,
    const struct alert_visitor *v, int64_t *last, char *err, size_t errlen)
{
	struct alert_member m;
	ssize_t n = 0;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&m, 0, sizeof(m));
		m.id = sqlite3_column_int64(s, 0);
		m.phone = sqlite3_column_int(s, 1) ? alert_text(s, 3) : NULL;
		m.email = sqlite3_column_int(s, 2) ? alert_text(s, 4) : NULL;
		m.first_name = alert_text(s, 5);
		m.last_name = alert_text(s, 6);
		m.zip = alert_text(s, 7);
		m.time_zone = alert_text(s, 8);
		m.attributes = alert_text(s, 9);
		m.list_time_zone = alert_text(s, 10);
		if (v->fn(v->arg, &m, err, errlen) == -1) {
			sqlite3_reset(s);
			return -1;
		}
		if (last != NULL)
			*last = m.id;
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "alert members", err, errlen);
		return -1;
	}
	return n;
}

ssize_t
store_alert_walk(struct store *st, const struct alert_walk *w,
    const struct alert_visitor *v, struct alert_cursor *out, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;
	int64_t last = alert_walk_last(w);
	ssize_t n;

	out->next = w->after;
	out->end = false;
	if ((s = store_stmt(st, alert_sql_walk, err, errlen)) == NULL)
		return -1;
	alert_bind_walk(s, w, last);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)w->limit);
	if ((n = alert_each_member(st, s, v, &out->next, err, errlen)) == -1)
		return -1;
	if ((size_t)n < w->limit) {
		/* The range is exhausted: resume after its end. */
		out->next = last;
		out->end = w->max_id > 0 ? last >= w->max_id : w->scan == 0;
	}
	return n;
}

int
store_alert_reach(struct store *st, const struct alert_walk *w,
    struct alert_reach *out, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((s = store_stmt(st, alert_sql_reach, err, errlen)) == NULL)
		return -1;
	alert_bind_walk(s, w, alert_walk_last(w));
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->matched = sqlite3_column_int64(s, 0);
		out->sms = sqlite3_column_int64(s, 1);
		out->email = sqlite3_column_int64(s, 2);
		out->both = sqlite3_column_int64(s, 3);
		out->sms_opted_out = sqlite3_column_int64(s, 4);
		out->email_opted_out = sqlite3_column_int64(s, 5);
		out->email_bouncing = sqlite3_column_int64(s, 6);
		out->unconfirmed = sqlite3_column_int64(s, 7);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "alert audience", err, errlen);
		return -1;
	}
	return 0;
}

/* counts[name] += n; a count that reaches 0 is dropped. */
static void
alert_count_add(json_t *counts, const char *name, int64_t n)
{
	int64_t v = json_integer_value(json_object_get(counts, name)) + n;

	if (v != 0)
		json_object_set_new(counts, name, json_integer(v));
	else
		json_object_del(counts, name);
}

json_t *
store_alert_counts(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;
	json_t *o = json_pack("{s:{}, s:{}}", "sms", "email"), *ch;
	int rc;

	if ((s = store_stmt(st, alert_sql_counts, err, errlen)) == NULL) {
		json_decref(o);
		return NULL;
	}
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = alert_text(s, 1);
		int64_t n = sqlite3_column_int64(s, 2);

		if ((ch = json_object_get(o, alert_text(s, 0))) == NULL ||
		    n == 0)
			continue;
		/* queued and sending both add to 'pending'; the deferred
		 * (counted last) are taken from it */
		alert_count_add(ch, name, n);
		if (strcmp(name, "deferred") == 0)
			alert_count_add(ch, "pending", -n);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "alert counts", err, errlen);
		json_decref(o);
		return NULL;
	}
	return o;
}

int
store_alert_backlog(struct store *st, int64_t id, int64_t now,
    struct alert_backlog *out, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	out->due = out->waiting = 0;
	if ((s = store_stmt(st, alert_sql_backlog, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, out->limit > 0 ? out->limit : -1);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->due = sqlite3_column_int64(s, 0);
		out->waiting = sqlite3_column_int64(s, 1);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "alert backlog", err, errlen);
		return -1;
	}
	return 0;
}

int
store_alert_guard(struct store *st, int64_t id, struct alert_guard *out,
    char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((s = store_stmt(st, alert_sql_guard, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->reached = sqlite3_column_int64(s, 0);
		out->optouts = sqlite3_column_int64(s, 1);
		out->failed = sqlite3_column_int64(s, 2);
		out->replies = sqlite3_column_int64(s, 3);
		out->finished = out->reached + out->failed;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "alert guard", err, errlen);
		return -1;
	}
	return 0;
}

int
store_alert_hold(struct store *st, int64_t id, bool hold, int64_t now,
    char *err, size_t errlen)
{
	sqlite3_stmt *s;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, hold ? alert_sql_hold : alert_sql_release, err,
		 errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, ALERT_HELD_AT);
	return queue_step_done(st, s, hold ? "alert hold" : "alert release",
	    err, errlen);
}

/* Binds the field of ALERT_SQL_FIELD: a column name, else an attribute. */
static void
alert_bind_field(sqlite3_stmt *s, const struct alert_field *f)
{
	queue_bind_text(s, 7, f->column != NULL ? f->column : "");
	queue_bind_text(s, 8, f->attr);
}

int64_t
store_alert_missing(struct store *st, const struct alert_walk *w,
    const struct alert_field *f, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int64_t n;
	bool found;

	if ((s = store_stmt(st, alert_sql_missing, err, errlen)) == NULL)
		return -1;
	alert_bind_walk(s, w, alert_walk_last(w));
	alert_bind_field(s, f);
	if (queue_int_row(st, s, &n, &found, err, errlen) == -1)
		return -1;
	return found ? n : 0;
}

ssize_t
store_alert_longest(struct store *st, const struct alert_walk *w,
    const struct alert_field *f, const struct alert_visitor *v, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;

	if ((s = store_stmt(st, alert_sql_longest, err, errlen)) == NULL)
		return -1;
	alert_bind_walk(s, w, alert_walk_last(w));
	sqlite3_bind_int64(s, 6, (sqlite3_int64)w->limit);
	alert_bind_field(s, f);
	return alert_each_member(st, s, v, NULL, err, errlen);
}

int
store_alert_list_sender(struct store *st, const char *audience, char **out,
    char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	*out = NULL;
	if ((s = store_stmt(st, alert_sql_list_sender, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, audience, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = alert_col_dup(s, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "list sender", err, errlen);
		return -1;
	}
	return 0;
}
