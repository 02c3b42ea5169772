/*
 * store_consent.c - members' consent as stored: the per-channel opt-out
 * and opt-in (by address or by member id), the consent_events row that
 * records every change, the consent log as JSON and its CSV export.
 *
 * A state write (the opt-out row) is conditional and its event is appended
 * only when it changed a row, in the same group transaction
 * (store_members.c has the whole rule).
 */

#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>
#include <sqlite3.h>

#include "queue-internal.h"
#include "store-internal.h"
#include "store_members-internal.h"
#include "store_members.h"

/* ?1 member, ?2 now, ?3 source. */
static const char store_members_sql_sms_optout[] =
    "INSERT INTO sms_optout (member_id, opted_out_at, source)"
    " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
static const char store_members_sql_email_optout[] =
    "INSERT INTO email_optout (member_id, opted_out_at, source)"
    " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
static const char store_members_sql_sms_optin[] =
    "DELETE FROM sms_optout WHERE member_id = ?1";
static const char store_members_sql_email_optin[] =
    "DELETE FROM email_optout WHERE member_id = ?1";
static const char store_members_sql_sms_is_out[] =
    "SELECT 1 FROM sms_optout WHERE member_id = ?1";
static const char store_members_sql_email_is_out[] =
    "SELECT 1 FROM email_optout WHERE member_id = ?1";
/*
 * ?1 member, ?2 channel, ?3 action, ?4 source, ?5 list, ?6 message id,
 * ?7 detail, ?8 now.
 */
static const char store_members_sql_event[] =
    "INSERT INTO consent_events (member_id, channel, action, source,"
    " list_id, message_id, detail, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/* The consent log: ?1 member, ?2 cursor, ?3 limit. */
static const char store_members_sql_consent[] =
    "SELECT e.id, e.channel, e.action, e.source, e.list_id, l.name,"
    " e.message_id, e.detail, e.created_at FROM consent_events e"
    " LEFT JOIN lists l ON l.id = e.list_id WHERE e.member_id = ?1"
    " AND e.id > ?2 ORDER BY e.id LIMIT ?3";
#define SM_EXPORT_CONSENT_COLS                                             \
	"SELECT e.id, e.member_id, m.phone, m.email, e.channel, e.action," \
	" e.source, l.name, e.message_id, e.detail, e.created_at"          \
	" FROM consent_events e JOIN members m ON m.id = e.member_id"      \
	" LEFT JOIN lists l ON l.id = e.list_id"
static const char store_members_sql_export_consent[] =
    SM_EXPORT_CONSENT_COLS " WHERE e.member_id = ?1 AND e.id > ?2"
			   " ORDER BY e.id LIMIT ?3";
static const char store_members_sql_export_consent_all[] =
    SM_EXPORT_CONSENT_COLS " WHERE e.id > ?2 ORDER BY e.id LIMIT ?3";

static const char *const store_members_actions[] = {
    [CONSENT_OPT_IN] = "opt_in",
    [CONSENT_OPT_OUT] = "opt_out",
    [CONSENT_CONFIRM] = "confirm",
};

/* Appends cc as a consent event of 'action' (see the header). */
int
store_members_event(struct store *st, const struct consent_change *cc,
    enum consent_action action, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, store_members_sql_event, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, cc->member);
	sqlite3_bind_text(stmt, 2, channel_to_text(cc->ch), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, store_members_actions[action], -1,
	    SQLITE_STATIC);
	queue_bind_text(stmt, 4, cc->source);
	queue_bind_id(stmt, 5, cc->list);
	queue_bind_id(stmt, 6, cc->message_id > 0 ? cc->message_id : 0);
	queue_bind_text(stmt, 7, cc->detail);
	sqlite3_bind_int64(stmt, 8, cc->now);
	return queue_step_done(st, stmt, "insert consent event", err, errlen);
}

/*
 * Inserts cc->ch's opt-out row for member cc->member if it has none, and
 * then, only then, the consent event (without a list). Sets *wrote on any
 * change.
 */
static int
store_members_optout_rows(struct store *st, const struct consent_change *cc,
    bool *wrote, char *err, size_t errlen)
{
	const char *sql = cc->ch == CHANNEL_EMAIL
	    ? store_members_sql_email_optout
	    : store_members_sql_sms_optout;
	struct consent_change ev = *cc;
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, cc->member);
	sqlite3_bind_int64(stmt, 2, cc->now);
	sqlite3_bind_text(stmt, 3, cc->source, -1, SQLITE_STATIC);
	if (queue_step_done(st, stmt, "insert opt-out", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return 0; /* opted out before: keep that record as it is */
	*wrote = true;
	ev.list = 0; /* a channel's opt-out is no list's */
	return store_members_event(st, &ev, CONSENT_OPT_OUT, err, errlen);
}

int
store_members_check_optout(const char *address, const struct consent_change *cc,
    char *err, size_t errlen)
{
	if (store_members_check_ch(cc->ch, "opt-out", err, errlen) == -1 ||
	    store_members_check_addr("opt-out", address, err, errlen) == -1)
		return -1;
	if (cc->source == NULL || *cc->source == '\0') {
		snprintf(err, errlen, "opt-out: source required");
		return -1;
	}
	return 0;
}

/*
 * Records an opt-out of channel ch for 'address' (see the header). The
 * address must be non-empty and fit MSG_ADDR_MAX; 'source' names who
 * asked ("provider", "keyword", ...). 0 / -1 with err set.
 */
int
store_member_optout(struct store *st, const char *address,
    const struct consent_change *cc, char *err, size_t errlen)
{
	struct consent_change c = *cc;
	struct member_write w = {.now = cc->now};
	bool wrote = false;
	int rc;

	if (store_members_check_optout(address, cc, err, errlen) == -1)
		return -1;
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	rc = store_members_ensure(st, cc->ch, address, &w, err, errlen);
	wrote = rc == 1;
	c.member = w.id;
	if (rc != -1)
		rc = store_members_optout_rows(st, &c, &wrote, err, errlen);
	return queue_op_end(st, rc, wrote);
}

/* ---- Opt-out and opt-in by id ----------------------------------------- */

/*
 * What an opt-out or opt-in of member cc->member needs before it writes:
 * a channel, a source, a member that exists; then the group transaction.
 */
static int
store_members_consent_begin(struct store *st, const struct consent_change *cc,
    const char *what, char *err, size_t errlen)
{
	bool found;

	if (store_members_check_ch(cc->ch, what, err, errlen) == -1)
		return -1;
	if (cc->source == NULL || *cc->source == '\0') {
		snprintf(err, errlen, "%s: source required", what);
		return -1;
	}
	if (store_members_exists(st, cc->member, &found, err, errlen) == -1)
		return -1;
	if (!found) {
		snprintf(err, errlen, "no member %" PRId64, cc->member);
		return -1;
	}
	return store_write_begin(st, err, errlen);
}

int
store_member_optout_id(struct store *st, const struct consent_change *cc,
    bool *changed, char *err, size_t errlen)
{
	int rc;

	*changed = false;
	if (store_members_consent_begin(st, cc, "opt-out", err, errlen) == -1)
		return -1;
	rc = store_members_optout_rows(st, cc, changed, err, errlen);
	return queue_op_end(st, rc, *changed);
}

int
store_member_optin(struct store *st, const struct consent_change *cc,
    bool *changed, char *err, size_t errlen)
{
	const char *sql = cc->ch == CHANNEL_EMAIL
	    ? store_members_sql_email_optin
	    : store_members_sql_sms_optin;
	struct consent_change ev = *cc;
	sqlite3_stmt *stmt;
	int rc;

	*changed = false;
	if (store_members_consent_begin(st, cc, "opt-in", err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, cc->member);
	if (queue_step_done(st, stmt, "remove opt-out", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return 0;
	*changed = true;
	ev.list = 0; /* a channel's opt-in is no list's */
	rc = store_members_event(st, &ev, CONSENT_OPT_IN, err, errlen);
	return queue_op_end(st, rc, true);
}

int
store_member_is_opted_out(struct store *st, int64_t id, enum channel ch,
    char *err, size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? store_members_sql_email_is_out
					      : store_members_sql_sms_is_out;
	sqlite3_stmt *stmt;
	int64_t one;
	bool found;

	if (store_members_check_ch(ch, "opt-out", err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	if (queue_int_row(st, stmt, &one, &found, err, errlen) == -1)
		return -1;
	return found ? 1 : 0;
}

/* ---- Consent log ------------------------------------------------------- */

json_t *
store_consent_json(struct store *st, int64_t member, int64_t after,
    unsigned limit, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *a;
	json_t *e;
	json_t *o;
	char buf[32];
	int64_t last = 0;
	unsigned n = 0;
	bool found;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if (limit < 1 || limit > SM_LIMIT_MAX) {
		snprintf(err, errlen, "limit: must be 1..%d", SM_LIMIT_MAX);
		return NULL;
	}
	if (store_members_exists(st, member, &found, err, errlen) == -1 ||
	    !found)
		return NULL;
	if ((stmt = store_stmt(st, store_members_sql_consent, err, errlen)) ==
	    NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, member);
	sqlite3_bind_int64(stmt, 2, after > 0 ? after : 0);
	sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1);
	a = json_array();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && n < limit) {
		e = json_object();
		last = sqlite3_column_int64(stmt, 0);
		json_object_set_new(e, "id", json_integer(last));
		json_object_set_new(e, "channel", queue_json_text(stmt, 1));
		json_object_set_new(e, "action", queue_json_text(stmt, 2));
		json_object_set_new(e, "source", queue_json_text(stmt, 3));
		json_object_set_new(e, "list_id",
		    sqlite3_column_type(stmt, 4) == SQLITE_NULL
			? json_null()
			: json_integer(sqlite3_column_int64(stmt, 4)));
		json_object_set_new(e, "list", queue_json_text(stmt, 5));
		json_object_set_new(e, "message_id",
		    sqlite3_column_type(stmt, 6) == SQLITE_NULL
			? json_null()
			: json_integer(sqlite3_column_int64(stmt, 6)));
		json_object_set_new(e, "detail", queue_json_text(stmt, 7));
		json_object_set_new(e, "at", queue_json_time(stmt, 8));
		json_array_append_new(a, e);
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_errmsg(st, "read consent log", err, errlen);
		sqlite3_reset(stmt);
		json_decref(a);
		return NULL;
	}
	sqlite3_reset(stmt);
	o = json_object();
	json_object_set_new(o, "member_id", json_integer(member));
	json_object_set_new(o, "events", a);
	json_object_set_new(o, "next_cursor",
	    rc == SQLITE_ROW
		? json_string(store_members_cursor(last, buf, sizeof(buf)))
		: json_null());
	return o;
}

static const char *const store_members_consent_head[] = {"id", "member_id",
    "phone", "email", "channel", "action", "source", "list", "message_id",
    "detail", "at"};
#define SM_CONSENT_NCOLS                      \
	(sizeof(store_members_consent_head) / \
	    sizeof(store_members_consent_head[0]))

int
store_export_consent(struct store *st, int64_t member, struct export_page *pg,
    const struct export_sink *to, char *err, size_t errlen)
{
	const char *cols[SM_CONSENT_NCOLS];
	char nums[3][32];
	char at[40];
	struct export_row row = {cols, SM_CONSENT_NCOLS};
	sqlite3_stmt *stmt;
	int64_t last = 0;
	unsigned n = 0;
	size_t i;
	int rc;

	pg->next = 0;
	if (pg->limit < 1) {
		snprintf(err, errlen, "export: limit must be at least 1");
		return -1;
	}
	if (pg->after <= 0) {
		row.cols = store_members_consent_head;
		if (to->each(to->arg, &row) == -1) {
			snprintf(err, errlen, "export: stopped by the writer");
			return -1;
		}
		row.cols = cols;
	}
	stmt = store_stmt(st,
	    member > 0 ? store_members_sql_export_consent
		       : store_members_sql_export_consent_all,
	    err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, member);
	sqlite3_bind_int64(stmt, 2, pg->after > 0 ? pg->after : 0);
	sqlite3_bind_int64(stmt, 3, (int64_t)pg->limit + 1);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == pg->limit) {
			pg->next = last;
			break;
		}
		for (i = 0; i < SM_CONSENT_NCOLS; i++)
			cols[i] =
			    (const char *)sqlite3_column_text(stmt, (int)i);
		last = sqlite3_column_int64(stmt, 0);
		cols[0] = store_members_cursor(last, nums[0], sizeof(nums[0]));
		cols[1] = store_members_cursor(sqlite3_column_int64(stmt, 1),
		    nums[1], sizeof(nums[1]));
		if (cols[8] != NULL)
			cols[8] =
			    store_members_cursor(sqlite3_column_int64(stmt, 8),
				nums[2], sizeof(nums[2]));
		cols[10] = msg_time_to_text(sqlite3_column_int64(stmt, 10), at,
		    sizeof(at));
		if (to->each(to->arg, &row) == -1) {
			sqlite3_reset(stmt);
			snprintf(err, errlen, "export: stopped by the writer");
			return -1;
		}
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_errmsg(st, "export consent", err, errlen);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	return 0;
}
