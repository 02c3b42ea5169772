/*
 * store_members.c - members and their consent as stored (doc/queue.md):
 * members (find, create, update, search, JSON), the per-channel opt-out
 * and opt-in, subscriptions, follow-up prompts, the link of an inbound
 * message to its member and conversation, the consent log and its export,
 * imports, and email bounces. Lists themselves are in store_lists.c.
 *
 * Every consent change is two writes in the store's group transaction:
 * the state (opt-out row, subscription) and the consent_events row that
 * proves it. A state write is conditional ("ON CONFLICT DO NOTHING", "WHERE
 * status != ..."), and the event is appended only when that write changed
 * a row: repeating an opt-out, a subscription or an import writes nothing,
 * and the first record keeps its time and source. As in queue.c, a failure
 * after rows changed rolls the whole group back (queue_op_end()), so a
 * member never ends up opted out or subscribed without the event that
 * says why.
 *
 * Member updates are one UPDATE whose SET computes each new value from
 * the 'set' bits (?3) and whose WHERE clause holds only when a value
 * differs, so "changed" is sqlite3_changes() and an unchanged row is not
 * written. Attribute merges (json_patch) and tag additions run in SQL,
 * which keeps an import row to a few cached statements.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "queue-internal.h"
#include "store-internal.h"
#include "store_members.h"

#define SM_FIELD_MAX 256 /* names, zip, time zone: bytes, NUL excluded */
#define SM_LIMIT_MAX 1000
#define SM_MF_KNOWN                                                    \
	(MF_PHONE | MF_EMAIL | MF_FIRST_NAME | MF_LAST_NAME | MF_ZIP | \
	    MF_TIME_ZONE | MF_ATTRS | MF_TAGS | MF_ATTRS_MERGE | MF_TAGS_ADD)

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
static const char store_members_sql_exists[] =
    "SELECT 1 FROM members WHERE id = ?1";
static const char store_members_sql_addrs[] =
    "SELECT phone, email FROM members WHERE id = ?1";
/* The owner of a phone / email other than member ?2 (NULL: anyone). */
static const char store_members_sql_phone_owner[] =
    "SELECT id FROM members WHERE phone = ?1 AND id IS NOT ?2";
static const char store_members_sql_email_owner[] =
    "SELECT id FROM members WHERE email = lower(?1) AND id IS NOT ?2";

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

/*
 * A new member: ?1 phone, ?2 email, ?3 first, ?4 last, ?5 zip, ?6 time
 * zone, ?7 attributes, ?8 tags, ?9 now.
 */
static const char store_members_sql_insert[] =
    "INSERT INTO members (phone, email, first_name, last_name, zip,"
    " time_zone, attributes, tags, created_at, updated_at)"
    " VALUES (?1, lower(?2), ?3, ?4, ?5, ?6, coalesce(?7, '{}'),"
    " coalesce(?8, '[]'), ?9, ?9)";

/*
 * The new value of each column under the 'set' bits ?3 (MF_*): ?4 phone,
 * ?5 email, ?6 first, ?7 last, ?8 zip, ?9 time zone, ?10 attributes
 * (replace or merge), ?11 tags (replace or add). A replacement equal as
 * JSON keeps the stored text, so it is not a change.
 */
#define SM_NEW_PHONE "iif(?3 & 1, ?4, phone)"
#define SM_NEW_EMAIL "iif(?3 & 2, lower(?5), email)"
#define SM_NEW_FIRST "iif(?3 & 4, ?6, first_name)"
#define SM_NEW_LAST  "iif(?3 & 8, ?7, last_name)"
#define SM_NEW_ZIP   "iif(?3 & 16, ?8, zip)"
#define SM_NEW_TZ    "iif(?3 & 32, ?9, time_zone)"
#define SM_NEW_ATTRS                                                          \
	"iif(?3 & 64, iif(json(?10) IS json(attributes), attributes, ?10),"   \
	" iif(?3 & 256, iif(json_patch(attributes, ?10) IS json(attributes)," \
	" attributes, json_patch(attributes, ?10)), attributes))"
#define SM_TAGS_NEW                                                   \
	"EXISTS (SELECT 1 FROM json_each(?11) n WHERE n.value NOT IN" \
	" (SELECT value FROM json_each(members.tags)))"
#define SM_TAGS_UNION                                                        \
	"(SELECT json_group_array(value) FROM (SELECT 0 AS o, key AS k,"     \
	" value FROM json_each(members.tags) UNION ALL SELECT 1, key, value" \
	" FROM json_each(?11) WHERE value NOT IN (SELECT value FROM"         \
	" json_each(members.tags)) ORDER BY o, k))"
#define SM_NEW_TAGS                                              \
	"iif(?3 & 128, iif(json(?11) IS json(tags), tags, ?11)," \
	" iif(?3 & 512, iif(" SM_TAGS_NEW ", " SM_TAGS_UNION ", tags), tags))"

/* ?1 id, ?2 now, ?3.. as above. Matches only when something differs. */
static const char store_members_sql_update[] =
    "UPDATE members SET phone = " SM_NEW_PHONE ", email = " SM_NEW_EMAIL
    ", first_name = " SM_NEW_FIRST ", last_name = " SM_NEW_LAST
    ", zip = " SM_NEW_ZIP ", time_zone = " SM_NEW_TZ
    ", attributes = " SM_NEW_ATTRS ", tags = " SM_NEW_TAGS
    ", bouncing = iif(email IS NOT " SM_NEW_EMAIL ", 0, bouncing)"
    ", email_failures = iif(email IS NOT " SM_NEW_EMAIL
    ", 0, email_failures), updated_at = ?2"
    " WHERE id = ?1 AND (phone IS NOT " SM_NEW_PHONE
    " OR email IS NOT " SM_NEW_EMAIL " OR first_name IS NOT " SM_NEW_FIRST
    " OR last_name IS NOT " SM_NEW_LAST " OR zip IS NOT " SM_NEW_ZIP
    " OR time_zone IS NOT " SM_NEW_TZ " OR attributes IS NOT " SM_NEW_ATTRS
    " OR tags IS NOT " SM_NEW_TAGS ")";

/* A member as JSON: these columns, in this order (store_members_row()). */
#define SM_COLS                                                             \
	"m.id, m.phone, m.email, m.first_name, m.last_name, m.zip,"         \
	" m.time_zone, m.attributes, m.tags, m.bouncing, m.email_failures," \
	" m.created_at, m.updated_at, so.opted_out_at, so.source,"          \
	" eo.opted_out_at, eo.source"
#define SM_NCOLS 17
#define SM_FROM                                                          \
	" FROM members m LEFT JOIN sms_optout so ON so.member_id = m.id" \
	" LEFT JOIN email_optout eo ON eo.member_id = m.id"
static const char store_members_sql_json[] =
    "SELECT " SM_COLS SM_FROM " WHERE m.id = ?1";
static const char store_members_sql_json_subs[] =
    "SELECT s.list_id, l.name, s.channel, s.status, s.source, s.created_at,"
    " s.updated_at FROM subscriptions s JOIN lists l ON l.id = s.list_id"
    " WHERE s.member_id = ?1 ORDER BY s.list_id, s.channel";

/*
 * Searches: ?1 phone or email (the indexed lookups), ?2 name pattern
 * (LIKE, ASCII case-insensitive), ?3 tag, ?4 list, ?5 cursor, ?6 limit.
 */
#define SM_SEARCH_REST                                                  \
	" AND (?2 IS NULL OR m.first_name LIKE ?2 ESCAPE '\\'"          \
	" OR m.last_name LIKE ?2 ESCAPE '\\')"                          \
	" AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(m.tags) t" \
	" WHERE t.value = ?3)) AND (?4 = 0 OR EXISTS (SELECT 1 FROM"    \
	" subscriptions s WHERE s.member_id = m.id AND s.list_id = ?4"  \
	" AND s.status != 'left')) AND m.id > ?5 ORDER BY m.id LIMIT ?6"
static const char store_members_sql_search[] =
    "SELECT " SM_COLS SM_FROM " WHERE 1" SM_SEARCH_REST;
static const char store_members_sql_search_phone[] =
    "SELECT " SM_COLS SM_FROM " WHERE m.phone = ?1" SM_SEARCH_REST;
static const char store_members_sql_search_email[] =
    "SELECT " SM_COLS SM_FROM " WHERE m.email = lower(?1)" SM_SEARCH_REST;
/* Members of a list by member id (subscriptions_list_member). */
static const char store_members_sql_search_list[] =
    "SELECT " SM_COLS SM_FROM " WHERE m.id IN (SELECT s.member_id FROM"
    " subscriptions s WHERE s.list_id = ?4 AND s.member_id > ?5"
    " AND s.status != 'left')" SM_SEARCH_REST;

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

/* Prompts. */
static const char store_members_sql_prompt_get[] =
    "SELECT list_id, question, attempts, asked_at FROM member_prompts"
    " WHERE member_id = ?1";
static const char store_members_sql_prompt_set[] =
    "INSERT INTO member_prompts (member_id, list_id, question, attempts,"
    " asked_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (member_id) DO"
    " UPDATE SET list_id = excluded.list_id, question = excluded.question,"
    " attempts = excluded.attempts, asked_at = excluded.asked_at";
static const char store_members_sql_prompt_clear[] =
    "DELETE FROM member_prompts WHERE member_id = ?1";

/* Inbound messages and conversations. */
static const char store_members_sql_in_msg[] =
    "SELECT member_id, conversation_id FROM messages WHERE id = ?1"
    " AND direction = 'in'";
static const char store_members_sql_in_member[] =
    "UPDATE messages SET member_id = ?2 WHERE id = ?1"
    " AND member_id IS NOT ?2";
static const char store_members_sql_conv_open[] =
    "SELECT id FROM conversations WHERE member_id = ?1 AND status = 'open'"
    " ORDER BY id DESC LIMIT 1";
static const char store_members_sql_conv_new[] =
    "INSERT INTO conversations (member_id, status, unread, last_message_at,"
    " created_at) VALUES (?1, 'open', 1, ?2, ?2)";
static const char store_members_sql_conv_bump[] =
    "UPDATE conversations SET unread = unread + 1, last_message_at = ?2"
    " WHERE id = ?1";
static const char store_members_sql_in_conv[] =
    "UPDATE messages SET conversation_id = ?2 WHERE id = ?1";

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

/*
 * Imports: the member by phone or email with what the row needs to know
 * (its other address), and a channel's opt-out and subscription in one
 * step: ?1 member, ?2 list.
 */
static const char store_members_sql_imp_by_phone[] =
    "SELECT id, email, phone IS NOT NULL FROM members WHERE phone = ?1";
static const char store_members_sql_imp_by_email[] =
    "SELECT id, phone, email IS NOT NULL FROM members"
    " WHERE email = lower(?1)";
static const char store_members_sql_imp_sms[] =
    "SELECT EXISTS (SELECT 1 FROM sms_optout WHERE member_id = ?1),"
    " (SELECT status FROM subscriptions WHERE member_id = ?1"
    " AND list_id = ?2 AND channel = 'sms')";
static const char store_members_sql_imp_email[] =
    "SELECT EXISTS (SELECT 1 FROM email_optout WHERE member_id = ?1),"
    " (SELECT status FROM subscriptions WHERE member_id = ?1"
    " AND list_id = ?2 AND channel = 'email')";

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

static const char *const store_members_actions[] = {
    [CONSENT_OPT_IN] = "opt_in",
    [CONSENT_OPT_OUT] = "opt_out",
    [CONSENT_CONFIRM] = "confirm",
};
static const char *const store_members_statuses[] = {
    [SUB_PENDING] = "pending",
    [SUB_ACTIVE] = "active",
    [SUB_LEFT] = "left",
};

/* What a member write binds: texts borrowed from f or owned JSON text. */
struct sm_bind {
	unsigned set;
	char *attrs; /* owned: json_dumps() */
	char *tags;  /* owned: deduplicated array */
};

static int store_members_find(struct store *, enum channel, const char *,
    int64_t *, bool *, char *, size_t);
static int store_members_ensure(struct store *, enum channel, const char *,
    int64_t, int64_t *, bool *, char *, size_t);
static int store_members_exists(struct store *, int64_t, bool *, char *,
    size_t);
static int store_members_event(struct store *, int64_t, enum channel,
    enum consent_action, const char *, int64_t, int64_t, const char *, int64_t,
    char *, size_t);
static int store_members_optout_rows(struct store *, enum channel, int64_t,
    const char *, int64_t, const char *, int64_t, bool *, char *, size_t);
static int store_members_check_addr(const char *, const char *, char *, size_t);
static int store_members_check_ch(enum channel, const char *, char *, size_t);
static int store_members_consent_begin(struct store *, int64_t, enum channel,
    const char *, const char *, char *, size_t);
static int store_members_check_fields(const struct member_fields *, char *,
    size_t);
static int store_members_prepare(const struct member_fields *, unsigned,
    struct sm_bind *, char *, size_t);
static void store_members_bind_clear(struct sm_bind *);
static int store_members_owner(struct store *, const char *, const char *,
    int64_t, bool *, char *, size_t);
static int store_members_insert(struct store *, const struct member_fields *,
    const struct sm_bind *, int64_t, int64_t *, char *, size_t);
static int store_members_update_row(struct store *, int64_t,
    const struct member_fields *, const struct sm_bind *, int64_t, bool *,
    char *, size_t);
static json_t *store_members_jsoncol(sqlite3_stmt *, int, bool);
static json_t *store_members_row(sqlite3_stmt *);
static json_t *store_members_subs_json(struct store *, int64_t, char *, size_t);
static int store_members_sub_write(struct store *, int64_t, int64_t,
    enum channel, enum sub_status, const char *, int64_t, const char *, int64_t,
    enum sub_change *, bool *, char *, size_t);
static int store_members_sub_parse(const char *);
static char *store_members_cursor(int64_t, char *, size_t);

/* The member with this phone (SMS) or email; *found false if none. */
static int
store_members_find(struct store *st, enum channel ch, const char *address,
    int64_t *id, bool *found, char *err, size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? store_members_sql_by_email
					      : store_members_sql_by_phone;
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	return queue_int_row(st, stmt, id, found, err, errlen);
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
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, now);
	if (queue_step_done(st, stmt, "insert member", err, errlen) == -1)
		return -1;
	*id = sqlite3_last_insert_rowid(store_db(st));
	*wrote = true;
	return 0;
}

/* *found: member id exists. */
static int
store_members_exists(struct store *st, int64_t id, bool *found, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t one;

	if ((stmt = store_stmt(st, store_members_sql_exists, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	return queue_int_row(st, stmt, &one, found, err, errlen);
}

/* Appends a consent event; list, message id 0 and detail NULL = none. */
static int
store_members_event(struct store *st, int64_t member, enum channel ch,
    enum consent_action action, const char *source, int64_t list,
    int64_t message_id, const char *detail, int64_t now, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, store_members_sql_event, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, member);
	sqlite3_bind_text(stmt, 2, channel_to_text(ch), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, store_members_actions[action], -1,
	    SQLITE_STATIC);
	queue_bind_text(stmt, 4, source);
	queue_bind_id(stmt, 5, list);
	queue_bind_id(stmt, 6, message_id > 0 ? message_id : 0);
	queue_bind_text(stmt, 7, detail);
	sqlite3_bind_int64(stmt, 8, now);
	return queue_step_done(st, stmt, "insert consent event", err, errlen);
}

/*
 * Inserts the channel's opt-out row for member 'id' if it has none, and
 * then, only then, the consent event. Sets *wrote on any change.
 */
static int
store_members_optout_rows(struct store *st, enum channel ch, int64_t id,
    const char *source, int64_t message_id, const char *detail, int64_t now,
    bool *wrote, char *err, size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? store_members_sql_email_optout
					      : store_members_sql_sms_optout;
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, now);
	sqlite3_bind_text(stmt, 3, source, -1, SQLITE_STATIC);
	if (queue_step_done(st, stmt, "insert opt-out", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return 0; /* opted out before: keep that record as it is */
	*wrote = true;
	return store_members_event(st, id, ch, CONSENT_OPT_OUT, source, 0,
	    message_id, detail, now, err, errlen);
}

static int
store_members_check_addr(const char *what, const char *address, char *err,
    size_t errlen)
{
	if (address == NULL || *address == '\0' ||
	    strlen(address) >= MSG_ADDR_MAX) {
		snprintf(err, errlen, "%s: address required, at most %d bytes",
		    what, MSG_ADDR_MAX - 1);
		return -1;
	}
	return 0;
}

static int
store_members_check_ch(enum channel ch, const char *what, char *err,
    size_t errlen)
{
	if (ch != CHANNEL_SMS && ch != CHANNEL_EMAIL) {
		snprintf(err, errlen, "%s: unknown channel %d", what, (int)ch);
		return -1;
	}
	return 0;
}

/* Lengths and JSON types of the fields f sets. */
static int
store_members_check_fields(const struct member_fields *f, char *err,
    size_t errlen)
{
	const struct {
		unsigned bit;
		const char *name;
		const char *v;
		size_t max;
	} t[] = {
	    {MF_PHONE, "phone", f->phone, MSG_ADDR_MAX - 1},
	    {MF_EMAIL, "email", f->email, MSG_ADDR_MAX - 1},
	    {MF_FIRST_NAME, "first_name", f->first_name, SM_FIELD_MAX},
	    {MF_LAST_NAME, "last_name", f->last_name, SM_FIELD_MAX},
	    {MF_ZIP, "zip", f->zip, SM_FIELD_MAX},
	    {MF_TIME_ZONE, "time_zone", f->time_zone, SM_FIELD_MAX},
	};
	size_t i;
	size_t n;
	const json_t *v;

	if ((f->set & ~SM_MF_KNOWN) != 0) {
		snprintf(err, errlen, "member fields: unknown bits 0x%x",
		    f->set & ~SM_MF_KNOWN);
		return -1;
	}
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if ((f->set & t[i].bit) == 0 || t[i].v == NULL)
			continue;
		if (strlen(t[i].v) > t[i].max) {
			snprintf(err, errlen, "%s: longer than %zu bytes",
			    t[i].name, t[i].max);
			return -1;
		}
		if (t[i].bit <= MF_EMAIL && *t[i].v == '\0') {
			snprintf(err, errlen,
			    "%s: empty (leave it out to clear)", t[i].name);
			return -1;
		}
	}
	if ((f->set & (MF_ATTRS | MF_ATTRS_MERGE)) != 0 && f->attrs != NULL &&
	    !json_is_object(f->attrs)) {
		snprintf(err, errlen, "attributes: must be a JSON object");
		return -1;
	}
	if ((f->set & (MF_TAGS | MF_TAGS_ADD)) != 0 && f->tags != NULL) {
		if (!json_is_array(f->tags)) {
			snprintf(err, errlen, "tags: must be a JSON array");
			return -1;
		}
		n = json_array_size(f->tags);
		for (i = 0; i < n; i++) {
			v = json_array_get(f->tags, i);
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) > SM_FIELD_MAX) {
				snprintf(err, errlen,
				    "tags: each must be a non-empty string of "
				    "at most %d bytes",
				    SM_FIELD_MAX);
				return -1;
			}
		}
	}
	return 0;
}

/*
 * The JSON texts f's attributes and tags bind as (tags deduplicated, in
 * order), under the 'set' bits 'set'. 0 / -1.
 */
static int
store_members_prepare(const struct member_fields *f, unsigned set,
    struct sm_bind *b, char *err, size_t errlen)
{
	json_t *u;
	json_t *v;
	size_t i;
	size_t j;
	bool dup;

	memset(b, 0, sizeof(*b));
	b->set = set;
	if ((set & (MF_ATTRS | MF_ATTRS_MERGE)) != 0) {
		if (f->attrs == NULL)
			b->attrs = strdup("{}");
		else
			b->attrs = json_dumps(f->attrs, JSON_COMPACT);
		if (b->attrs == NULL)
			goto oom;
	}
	if ((set & (MF_TAGS | MF_TAGS_ADD)) != 0) {
		if ((u = json_array()) == NULL)
			goto oom;
		for (i = 0; f->tags != NULL && i < json_array_size(f->tags);
		     i++) {
			v = json_array_get(f->tags, i);
			dup = false;
			for (j = 0; j < json_array_size(u) && !dup; j++)
				dup = json_equal(v, json_array_get(u, j));
			if (!dup)
				json_array_append(u, v);
		}
		b->tags = json_dumps(u, JSON_COMPACT);
		json_decref(u);
		if (b->tags == NULL)
			goto oom;
	}
	return 0;
oom:
	store_members_bind_clear(b);
	snprintf(err, errlen, "member fields: out of memory");
	return -1;
}

static void
store_members_bind_clear(struct sm_bind *b)
{
	free(b->attrs);
	free(b->tags);
	b->attrs = b->tags = NULL;
}

/*
 * A phone or email ('what' names it) that a member other than 'self' (0:
 * anyone) has sets *conflict and the message. 0 when free, -1 otherwise.
 */
static int
store_members_owner(struct store *st, const char *what, const char *value,
    int64_t self, bool *conflict, char *err, size_t errlen)
{
	const char *sql = strcmp(what, "phone") == 0
	    ? store_members_sql_phone_owner
	    : store_members_sql_email_owner;
	sqlite3_stmt *stmt;
	int64_t other;
	bool found;

	if (value == NULL)
		return 0;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, value, -1, SQLITE_STATIC);
	queue_bind_id(stmt, 2, self);
	if (queue_int_row(st, stmt, &other, &found, err, errlen) == -1)
		return -1;
	if (!found)
		return 0;
	*conflict = true;
	snprintf(err, errlen, "%s %s already belongs to member %" PRId64, what,
	    value, other);
	return -1;
}

/* Inserts a member with the fields of b->set. */
static int
store_members_insert(struct store *st, const struct member_fields *f,
    const struct sm_bind *b, int64_t now, int64_t *id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	unsigned s = b->set;

	if ((stmt = store_stmt(st, store_members_sql_insert, err, errlen)) ==
	    NULL)
		return -1;
	queue_bind_text(stmt, 1, (s & MF_PHONE) ? f->phone : NULL);
	queue_bind_text(stmt, 2, (s & MF_EMAIL) ? f->email : NULL);
	queue_bind_text(stmt, 3, (s & MF_FIRST_NAME) ? f->first_name : NULL);
	queue_bind_text(stmt, 4, (s & MF_LAST_NAME) ? f->last_name : NULL);
	queue_bind_text(stmt, 5, (s & MF_ZIP) ? f->zip : NULL);
	queue_bind_text(stmt, 6, (s & MF_TIME_ZONE) ? f->time_zone : NULL);
	queue_bind_text(stmt, 7, b->attrs);
	queue_bind_text(stmt, 8, b->tags);
	sqlite3_bind_int64(stmt, 9, now);
	if (queue_step_done(st, stmt, "insert member", err, errlen) == -1)
		return -1;
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

/* Updates member id with b->set; *changed if a value differed. */
static int
store_members_update_row(struct store *st, int64_t id,
    const struct member_fields *f, const struct sm_bind *b, int64_t now,
    bool *changed, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, store_members_sql_update, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, now);
	sqlite3_bind_int(stmt, 3, (int)b->set);
	queue_bind_text(stmt, 4, f->phone);
	queue_bind_text(stmt, 5, f->email);
	queue_bind_text(stmt, 6, f->first_name);
	queue_bind_text(stmt, 7, f->last_name);
	queue_bind_text(stmt, 8, f->zip);
	queue_bind_text(stmt, 9, f->time_zone);
	queue_bind_text(stmt, 10, b->attrs);
	queue_bind_text(stmt, 11, b->tags);
	if (queue_step_done(st, stmt, "update member", err, errlen) == -1)
		return -1;
	*changed = sqlite3_changes(store_db(st)) > 0;
	return 0;
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

	if (store_members_check_ch(ch, "opt-out", err, errlen) == -1 ||
	    store_members_check_addr("opt-out", address, err, errlen) == -1)
		return -1;
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
		    NULL, now, &wrote, err, errlen);
	return queue_op_end(st, rc, wrote);
}

int
store_member_find(struct store *st, enum channel ch, const char *address,
    int64_t *id, bool *found, char *err, size_t errlen)
{
	*found = false;
	if (store_members_check_ch(ch, "find member", err, errlen) == -1 ||
	    store_members_check_addr("find member", address, err, errlen) == -1)
		return -1;
	return store_members_find(st, ch, address, id, found, err, errlen);
}

int
store_member_ensure(struct store *st, enum channel ch, const char *address,
    int64_t now, int64_t *id, bool *created, char *err, size_t errlen)
{
	bool wrote = false;
	int rc;

	*created = false;
	if (store_members_check_ch(ch, "member", err, errlen) == -1 ||
	    store_members_check_addr("member", address, err, errlen) == -1)
		return -1;
	rc =
	    store_members_ensure(st, ch, address, now, id, &wrote, err, errlen);
	*created = rc == 0 && wrote;
	return queue_op_end(st, rc, wrote);
}

int
store_member_create(struct store *st, const struct member_fields *f,
    int64_t now, int64_t *id, bool *conflict, char *err, size_t errlen)
{
	struct sm_bind b;
	unsigned set;
	int rc;

	*conflict = false;
	if (store_members_check_fields(f, err, errlen) == -1)
		return -1;
	set = f->set;
	if ((set & MF_ATTRS_MERGE) != 0)
		set = (set & ~MF_ATTRS_MERGE) | MF_ATTRS;
	if ((set & MF_TAGS_ADD) != 0)
		set = (set & ~MF_TAGS_ADD) | MF_TAGS;
	if (!((set & MF_PHONE) && f->phone != NULL) &&
	    !((set & MF_EMAIL) && f->email != NULL)) {
		snprintf(err, errlen,
		    "member: a phone or an email is required");
		return -1;
	}
	if (((set & MF_PHONE) &&
		store_members_owner(st, "phone", f->phone, 0, conflict, err,
		    errlen) == -1) ||
	    ((set & MF_EMAIL) &&
		store_members_owner(st, "email", f->email, 0, conflict, err,
		    errlen) == -1))
		return -1;
	if (store_members_prepare(f, set, &b, err, errlen) == -1)
		return -1;
	rc = store_write_begin(st, err, errlen);
	if (rc == 0)
		rc = store_members_insert(st, f, &b, now, id, err, errlen);
	store_members_bind_clear(&b);
	return rc; /* one statement: nothing to roll back */
}

int
store_member_update(struct store *st, int64_t id, const struct member_fields *f,
    int64_t now, bool *changed, bool *conflict, char *err, size_t errlen)
{
	const char *phone;
	const char *email;
	struct sm_bind b;
	sqlite3_stmt *stmt;
	bool has_phone;
	bool has_email;
	int rc;

	*changed = false;
	*conflict = false;
	if (store_members_check_fields(f, err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, store_members_sql_addrs, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			snprintf(err, errlen, "no member %" PRId64, id);
		else
			store_errmsg(st, "read member", err, errlen);
		sqlite3_reset(stmt);
		return -1;
	}
	has_phone = sqlite3_column_type(stmt, 0) != SQLITE_NULL;
	has_email = sqlite3_column_type(stmt, 1) != SQLITE_NULL;
	sqlite3_reset(stmt);
	phone = (f->set & MF_PHONE) ? f->phone : NULL;
	email = (f->set & MF_EMAIL) ? f->email : NULL;
	if ((f->set & MF_PHONE) != 0)
		has_phone = phone != NULL;
	if ((f->set & MF_EMAIL) != 0)
		has_email = email != NULL;
	if (!has_phone && !has_email) {
		snprintf(err, errlen,
		    "member %" PRId64 ": would have neither phone nor email",
		    id);
		return -1;
	}
	if (store_members_owner(st, "phone", phone, id, conflict, err,
		errlen) == -1 ||
	    store_members_owner(st, "email", email, id, conflict, err,
		errlen) == -1)
		return -1;
	if (store_members_prepare(f, f->set, &b, err, errlen) == -1)
		return -1;
	rc = store_write_begin(st, err, errlen);
	if (rc == 0)
		rc = store_members_update_row(st, id, f, &b, now, changed, err,
		    errlen);
	store_members_bind_clear(&b);
	return rc; /* one statement: nothing to roll back */
}

/* A stored JSON column; {} / [] when unreadable. */
static json_t *
store_members_jsoncol(sqlite3_stmt *stmt, int col, bool object)
{
	const char *s = (const char *)sqlite3_column_text(stmt, col);
	json_t *v = NULL;

	if (s != NULL)
		v = json_loads(s, 0, NULL);
	if (v != NULL && (object ? json_is_object(v) : json_is_array(v)))
		return v;
	json_decref(v);
	return object ? json_object() : json_array();
}

/* The member in the current row (SM_COLS, from column 0). */
static json_t *
store_members_row(sqlite3_stmt *stmt)
{
	json_t *o = json_object();
	json_t *chs = json_object();
	json_t *c;
	bool out;

	json_object_set_new(o, "id",
	    json_integer(sqlite3_column_int64(stmt, 0)));
	json_object_set_new(o, "phone", queue_json_text(stmt, 1));
	json_object_set_new(o, "email", queue_json_text(stmt, 2));
	json_object_set_new(o, "first_name", queue_json_text(stmt, 3));
	json_object_set_new(o, "last_name", queue_json_text(stmt, 4));
	json_object_set_new(o, "zip", queue_json_text(stmt, 5));
	json_object_set_new(o, "time_zone", queue_json_text(stmt, 6));
	json_object_set_new(o, "attributes",
	    store_members_jsoncol(stmt, 7, true));
	json_object_set_new(o, "tags", store_members_jsoncol(stmt, 8, false));
	c = json_object();
	out = sqlite3_column_type(stmt, 13) != SQLITE_NULL;
	json_object_set_new(c, "opted_out", json_boolean(out));
	json_object_set_new(c, "opted_out_at", queue_json_time(stmt, 13));
	json_object_set_new(c, "source", queue_json_text(stmt, 14));
	json_object_set_new(chs, "sms", c);
	c = json_object();
	out = sqlite3_column_type(stmt, 15) != SQLITE_NULL;
	json_object_set_new(c, "opted_out", json_boolean(out));
	json_object_set_new(c, "opted_out_at", queue_json_time(stmt, 15));
	json_object_set_new(c, "source", queue_json_text(stmt, 16));
	json_object_set_new(c, "bouncing",
	    json_boolean(sqlite3_column_int(stmt, 9) != 0));
	json_object_set_new(c, "failures",
	    json_integer(sqlite3_column_int64(stmt, 10)));
	json_object_set_new(chs, "email", c);
	json_object_set_new(o, "channels", chs);
	json_object_set_new(o, "created_at", queue_json_time(stmt, 11));
	json_object_set_new(o, "updated_at", queue_json_time(stmt, 12));
	return o;
}

/* The member's subscriptions as [{list_id, list, channel, ...}]. */
static json_t *
store_members_subs_json(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *a;
	json_t *e;
	int rc;

	stmt = store_stmt(st, store_members_sql_json_subs, err, errlen);
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	a = json_array();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		e = json_object();
		json_object_set_new(e, "list_id",
		    json_integer(sqlite3_column_int64(stmt, 0)));
		json_object_set_new(e, "list", queue_json_text(stmt, 1));
		json_object_set_new(e, "channel", queue_json_text(stmt, 2));
		json_object_set_new(e, "status", queue_json_text(stmt, 3));
		json_object_set_new(e, "source", queue_json_text(stmt, 4));
		json_object_set_new(e, "created_at", queue_json_time(stmt, 5));
		json_object_set_new(e, "updated_at", queue_json_time(stmt, 6));
		json_array_append_new(a, e);
	}
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "read subscriptions", err, errlen);
		json_decref(a);
		a = NULL;
	}
	sqlite3_reset(stmt);
	return a;
}

json_t *
store_member_json(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *o = NULL;
	json_t *subs;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if ((stmt = store_stmt(st, store_members_sql_json, err, errlen)) ==
	    NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		o = store_members_row(stmt);
	else if (rc != SQLITE_DONE)
		store_errmsg(st, "read member", err, errlen);
	sqlite3_reset(stmt);
	if (o == NULL)
		return NULL;
	if ((subs = store_members_subs_json(st, id, err, errlen)) == NULL) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "subscriptions", subs);
	return o;
}

/* A cursor as the API's string. */
static char *
store_members_cursor(int64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRId64, id);
	return buf;
}

/* Wraps rows of 'stmt' (stepped up to limit + 1) as {key: [...], next}. */
static json_t *
store_members_page(struct store *st, sqlite3_stmt *stmt, unsigned limit,
    char *err, size_t errlen)
{
	char buf[32];
	json_t *a = json_array();
	json_t *o;
	int64_t last = 0;
	unsigned n = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == limit)
			break;
		json_array_append_new(a, store_members_row(stmt));
		last = sqlite3_column_int64(stmt, 0);
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_errmsg(st, "search members", err, errlen);
		sqlite3_reset(stmt);
		json_decref(a);
		return NULL;
	}
	sqlite3_reset(stmt);
	o = json_object();
	json_object_set_new(o, "members", a);
	json_object_set_new(o, "next_cursor",
	    rc == SQLITE_ROW
		? json_string(store_members_cursor(last, buf, sizeof(buf)))
		: json_null());
	return o;
}

json_t *
store_member_search(struct store *st, const struct member_query *q, char *err,
    size_t errlen)
{
	const char *sql = store_members_sql_search;
	sqlite3_stmt *stmt;
	char *pat = NULL;
	size_t i;
	size_t j;
	json_t *o;

	if (errlen > 0)
		err[0] = '\0';
	if (q->limit < 1 || q->limit > SM_LIMIT_MAX) {
		snprintf(err, errlen, "limit: must be 1..%d", SM_LIMIT_MAX);
		return NULL;
	}
	if (q->phone != NULL)
		sql = store_members_sql_search_phone;
	else if (q->email != NULL)
		sql = store_members_sql_search_email;
	else if (q->list_id > 0)
		sql = store_members_sql_search_list;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return NULL;
	if (q->name != NULL && *q->name != '\0') {
		/* %name% with LIKE's wildcards escaped. */
		pat = malloc(2 * strlen(q->name) + 3);
		if (pat == NULL) {
			snprintf(err, errlen, "search members: out of memory");
			return NULL;
		}
		j = 0;
		pat[j++] = '%';
		for (i = 0; q->name[i] != '\0'; i++) {
			if (q->name[i] == '%' || q->name[i] == '_' ||
			    q->name[i] == '\\')
				pat[j++] = '\\';
			pat[j++] = q->name[i];
		}
		pat[j++] = '%';
		pat[j] = '\0';
	}
	queue_bind_text(stmt, 1, q->phone != NULL ? q->phone : q->email);
	queue_bind_text(stmt, 2, pat);
	queue_bind_text(stmt, 3, q->tag);
	sqlite3_bind_int64(stmt, 4, q->list_id > 0 ? q->list_id : 0);
	sqlite3_bind_int64(stmt, 5, q->after > 0 ? q->after : 0);
	sqlite3_bind_int64(stmt, 6, (int64_t)q->limit + 1);
	o = store_members_page(st, stmt, q->limit, err, errlen);
	free(pat);
	return o;
}

/* ---- Opt-out and opt-in by id ----------------------------------------- */

/*
 * What an opt-out or opt-in of member id needs before it writes: a
 * channel, a source, a member that exists; then the group transaction.
 */
static int
store_members_consent_begin(struct store *st, int64_t id, enum channel ch,
    const char *source, const char *what, char *err, size_t errlen)
{
	bool found;

	if (store_members_check_ch(ch, what, err, errlen) == -1)
		return -1;
	if (source == NULL || *source == '\0') {
		snprintf(err, errlen, "%s: source required", what);
		return -1;
	}
	if (store_members_exists(st, id, &found, err, errlen) == -1)
		return -1;
	if (!found) {
		snprintf(err, errlen, "no member %" PRId64, id);
		return -1;
	}
	return store_write_begin(st, err, errlen);
}

int
store_member_optout_id(struct store *st, int64_t id, enum channel ch,
    const char *source, int64_t message_id, const char *detail, int64_t now,
    bool *changed, char *err, size_t errlen)
{
	int rc;

	*changed = false;
	if (store_members_consent_begin(st, id, ch, source, "opt-out", err,
		errlen) == -1)
		return -1;
	rc = store_members_optout_rows(st, ch, id, source, message_id, detail,
	    now, changed, err, errlen);
	return queue_op_end(st, rc, *changed);
}

int
store_member_optin(struct store *st, int64_t id, enum channel ch,
    const char *source, int64_t message_id, const char *detail, int64_t now,
    bool *changed, char *err, size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? store_members_sql_email_optin
					      : store_members_sql_sms_optin;
	sqlite3_stmt *stmt;
	int rc;

	*changed = false;
	if (store_members_consent_begin(st, id, ch, source, "opt-in", err,
		errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	if (queue_step_done(st, stmt, "remove opt-out", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return 0;
	*changed = true;
	rc = store_members_event(st, id, ch, CONSENT_OPT_IN, source, 0,
	    message_id, detail, now, err, errlen);
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

/* ---- Subscriptions ---------------------------------------------------- */

/* "pending" / "active" / "left" to enum sub_status; -1 if none. */
static int
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
static int
store_members_sub_apply(struct store *st, int64_t member, int64_t list,
    enum channel ch, int cur, enum sub_status status, const char *source,
    int64_t message_id, const char *detail, int64_t now,
    enum sub_change *change, bool *wrote, char *err, size_t errlen)
{
	enum consent_action action = CONSENT_OPT_IN;
	sqlite3_stmt *stmt;
	const char *sql;

	if (cur == SUB_ACTIVE ||
	    (cur == SUB_PENDING && status == SUB_PENDING)) {
		*change = SUB_CHANGE_ALREADY;
		return 0;
	}
	if (cur < 0) {
		*change = SUB_CHANGE_NEW;
		sql = store_members_sql_sub_insert;
	} else if (cur == SUB_LEFT) {
		*change = SUB_CHANGE_REJOINED;
		sql = store_members_sql_sub_set;
	} else {
		*change = SUB_CHANGE_ACTIVATED;
		action = CONSENT_CONFIRM;
		sql = store_members_sql_sub_set;
	}
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, member);
	sqlite3_bind_int64(stmt, 2, list);
	sqlite3_bind_text(stmt, 3, channel_to_text(ch), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, store_members_statuses[status], -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, now);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(store_db(st)) ==
		    SQLITE_CONSTRAINT_FOREIGNKEY)
			snprintf(err, errlen,
			    "subscribe: no member %" PRId64
			    " or no list %" PRId64,
			    member, list);
		else
			store_errmsg(st, "subscribe", err, errlen);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	*wrote = true;
	return store_members_event(st, member, ch, action, source, list,
	    message_id, detail, now, err, errlen);
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
store_members_sub_write(struct store *st, int64_t member, int64_t list,
    enum channel ch, enum sub_status status, const char *source,
    int64_t message_id, const char *detail, int64_t now,
    enum sub_change *change, bool *wrote, char *err, size_t errlen)
{
	int cur;

	if ((cur = store_members_sub_get(st, member, list, ch, err, errlen)) ==
	    -2)
		return -1;
	return store_members_sub_apply(st, member, list, ch, cur, status,
	    source, message_id, detail, now, change, wrote, err, errlen);
}

int
store_subscribe(struct store *st, int64_t member, int64_t list, enum channel ch,
    enum sub_status status, const char *source, int64_t message_id,
    const char *detail, int64_t now, enum sub_change *change, char *err,
    size_t errlen)
{
	bool wrote = false;
	int rc;

	*change = SUB_CHANGE_ALREADY;
	if (store_members_check_ch(ch, "subscribe", err, errlen) == -1)
		return -1;
	if (status != SUB_PENDING && status != SUB_ACTIVE) {
		snprintf(err, errlen,
		    "subscribe: status must be pending or "
		    "active");
		return -1;
	}
	if (source == NULL || *source == '\0') {
		snprintf(err, errlen, "subscribe: source required");
		return -1;
	}
	rc = store_members_sub_write(st, member, list, ch, status, source,
	    message_id, detail, now, change, &wrote, err, errlen);
	return queue_op_end(st, rc, wrote);
}

int
store_unsubscribe(struct store *st, int64_t member, int64_t list,
    enum channel ch, const char *source, int64_t message_id, const char *detail,
    int64_t now, bool *changed, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	*changed = false;
	if (store_members_check_ch(ch, "unsubscribe", err, errlen) == -1)
		return -1;
	if (source == NULL || *source == '\0') {
		snprintf(err, errlen, "unsubscribe: source required");
		return -1;
	}
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_members_sql_sub_leave, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, member);
	sqlite3_bind_int64(stmt, 2, list);
	sqlite3_bind_text(stmt, 3, channel_to_text(ch), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, now);
	if (queue_step_done(st, stmt, "unsubscribe", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return 0;
	*changed = true;
	rc = store_members_event(st, member, ch, CONSENT_OPT_OUT, source, list,
	    message_id, detail, now, err, errlen);
	return queue_op_end(st, rc, true);
}

int
store_subscription_status(struct store *st, int64_t member, int64_t list,
    enum channel ch, enum sub_status *status, bool *found, char *err,
    size_t errlen)
{
	int cur;

	*found = false;
	if (store_members_check_ch(ch, "subscription", err, errlen) == -1)
		return -1;
	if ((cur = store_members_sub_get(st, member, list, ch, err, errlen)) ==
	    -2)
		return -1;
	if (cur >= 0) {
		*status = (enum sub_status)cur;
		*found = true;
	}
	return 0;
}

int
store_subscription_pending(struct store *st, int64_t member, enum channel ch,
    int64_t *list, bool *found, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	*found = false;
	if (store_members_check_ch(ch, "subscription", err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_members_sql_sub_pending, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, member);
	sqlite3_bind_text(stmt, 2, channel_to_text(ch), -1, SQLITE_STATIC);
	return queue_int_row(st, stmt, list, found, err, errlen);
}

/*
 * One entry per subscription; a page holds whole members (both channels
 * of a member are on the same page), at most 'limit' of them.
 */
json_t *
store_list_members_json(struct store *st, int64_t list, const char *status,
    int64_t after, unsigned limit, char *err, size_t errlen)
{
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

/* ---- Prompts ------------------------------------------------------------ */

int
store_prompt_get(struct store *st, int64_t member, struct member_prompt *out,
    bool *found, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	*found = false;
	stmt = store_stmt(st, store_members_sql_prompt_get, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, member);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		out->list_id = sqlite3_column_int64(stmt, 0);
		out->index = (unsigned)sqlite3_column_int64(stmt, 1);
		out->attempts = (unsigned)sqlite3_column_int64(stmt, 2);
		out->asked_at = sqlite3_column_int64(stmt, 3);
		*found = true;
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "read prompt", err, errlen);
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
store_prompt_set(struct store *st, int64_t member,
    const struct member_prompt *p, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_members_sql_prompt_set, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, member);
	sqlite3_bind_int64(stmt, 2, p->list_id);
	sqlite3_bind_int64(stmt, 3, p->index);
	sqlite3_bind_int64(stmt, 4, p->attempts);
	sqlite3_bind_int64(stmt, 5, p->asked_at);
	return queue_step_done(st, stmt, "set prompt", err, errlen);
}

int
store_prompt_clear(struct store *st, int64_t member, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;

	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_members_sql_prompt_clear, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, member);
	return queue_step_done(st, stmt, "clear prompt", err, errlen);
}

/* ---- Inbound ---------------------------------------------------------- */

/*
 * A message already in a conversation keeps it (a repeated call counts
 * nothing twice).
 */
int
store_inbound_link(struct store *st, int64_t msg_id, int64_t member,
    bool conversation, int64_t now, int64_t *conversation_id, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t conv = 0;
	bool wrote = false;
	bool found;
	int rc;

	*conversation_id = 0;
	if ((stmt = store_stmt(st, store_members_sql_in_msg, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, msg_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 1) != SQLITE_NULL)
		conv = sqlite3_column_int64(stmt, 1);
	if (rc == SQLITE_DONE)
		snprintf(err, errlen, "no inbound message %" PRId64, msg_id);
	else if (rc != SQLITE_ROW)
		store_errmsg(st, "read inbound message", err, errlen);
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW)
		return -1;
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_members_sql_in_member, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, msg_id);
	sqlite3_bind_int64(stmt, 2, member);
	if ((rc = queue_step_done(st, stmt, "link message", err, errlen)) == -1)
		return -1;
	wrote = sqlite3_changes(store_db(st)) > 0;
	if (!conversation || conv != 0) {
		*conversation_id = conversation ? conv : 0;
		return 0;
	}
	if ((stmt = store_stmt(st, store_members_sql_conv_open, err, errlen)) ==
	    NULL)
		return queue_op_end(st, -1, wrote);
	sqlite3_bind_int64(stmt, 1, member);
	if (queue_int_row(st, stmt, &conv, &found, err, errlen) == -1)
		return queue_op_end(st, -1, wrote);
	stmt = store_stmt(st,
	    found ? store_members_sql_conv_bump : store_members_sql_conv_new,
	    err, errlen);
	if (stmt == NULL)
		return queue_op_end(st, -1, wrote);
	sqlite3_bind_int64(stmt, 1, found ? conv : member);
	sqlite3_bind_int64(stmt, 2, now);
	rc = queue_step_done(st, stmt, "update conversation", err, errlen);
	if (rc == 0) {
		wrote = true;
		if (!found)
			conv = sqlite3_last_insert_rowid(store_db(st));
		stmt = store_stmt(st, store_members_sql_in_conv, err, errlen);
		rc = stmt == NULL ? -1 : 0;
	}
	if (rc == 0) {
		sqlite3_bind_int64(stmt, 1, msg_id);
		sqlite3_bind_int64(stmt, 2, conv);
		rc =
		    queue_step_done(st, stmt, "link conversation", err, errlen);
	}
	if (rc == 0)
		*conversation_id = conv;
	return queue_op_end(st, rc, wrote);
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
store_export_consent(struct store *st, int64_t member, int64_t after,
    unsigned limit, export_row_fn *each, void *arg, int64_t *next, char *err,
    size_t errlen)
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

	*next = 0;
	if (limit < 1) {
		snprintf(err, errlen, "export: limit must be at least 1");
		return -1;
	}
	if (after <= 0) {
		row.cols = store_members_consent_head;
		if (each(arg, &row) == -1) {
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
	sqlite3_bind_int64(stmt, 2, after > 0 ? after : 0);
	sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == limit) {
			*next = last;
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
		if (each(arg, &row) == -1) {
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

/* ---- Import ------------------------------------------------------------ */

/* The member found for an import row, and its addresses. */
struct sm_found {
	int64_t id;
	bool found;
	bool has_phone;
	bool has_email;
};

/*
 * Looks the row up by phone, then email (skipping the second lookup when
 * the phone's member already has the row's email). On a phone and an email
 * of two different members, sets *conflict and err.
 */
static int
store_members_imp_find(struct store *st, const struct member_fields *f,
    struct sm_found *m, bool *conflict, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	const char *other;
	int64_t pid = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	if (f->phone != NULL) {
		stmt =
		    store_stmt(st, store_members_sql_imp_by_phone, err, errlen);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_text(stmt, 1, f->phone, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			m->found = true;
			m->id = pid = sqlite3_column_int64(stmt, 0);
			other = (const char *)sqlite3_column_text(stmt, 1);
			m->has_email = other != NULL;
			m->has_phone = true;
			if (f->email != NULL && other != NULL &&
			    strcasecmp(other, f->email) == 0) {
				sqlite3_reset(stmt);
				return 0;
			}
		} else if (rc != SQLITE_DONE) {
			store_errmsg(st, "find member", err, errlen);
			sqlite3_reset(stmt);
			return -1;
		}
		sqlite3_reset(stmt);
	}
	if (f->email == NULL)
		return 0;
	stmt = store_stmt(st, store_members_sql_imp_by_email, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, f->email, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		if (m->found && sqlite3_column_int64(stmt, 0) != pid) {
			*conflict = true;
			snprintf(err, errlen,
			    "phone %s belongs to member %" PRId64
			    " and email %s to member %" PRId64,
			    f->phone, pid, f->email,
			    (int64_t)sqlite3_column_int64(stmt, 0));
		} else if (!m->found) {
			m->found = true;
			m->id = sqlite3_column_int64(stmt, 0);
			m->has_phone =
			    sqlite3_column_type(stmt, 1) != SQLITE_NULL;
			m->has_email = true;
		}
	} else if (rc != SQLITE_DONE) {
		store_errmsg(st, "find member", err, errlen);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	return 0;
}

/*
 * Subscribes an imported member on ch unless opted out or left (which
 * sets *refused). 'created' skips the lookups (a new member has nothing).
 */
static int
store_members_imp_sub(struct store *st, int64_t member, int64_t list,
    enum channel ch, bool created, const char *detail, int64_t now,
    bool *refused, bool *wrote, char *err, size_t errlen)
{
	enum sub_change change;
	sqlite3_stmt *stmt;
	int cur = -1;
	int rc;

	if (!created) {
		stmt = store_stmt(st,
		    ch == CHANNEL_EMAIL ? store_members_sql_imp_email
					: store_members_sql_imp_sms,
		    err, errlen);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, member);
		sqlite3_bind_int64(stmt, 2, list);
		if ((rc = sqlite3_step(stmt)) != SQLITE_ROW) {
			store_errmsg(st, "read subscription", err, errlen);
			sqlite3_reset(stmt);
			return -1;
		}
		if (sqlite3_column_int(stmt, 0) != 0)
			cur = SUB_LEFT; /* opted out: treated as left */
		else if (sqlite3_column_type(stmt, 1) != SQLITE_NULL)
			cur = store_members_sub_parse(
			    (const char *)sqlite3_column_text(stmt, 1));
		sqlite3_reset(stmt);
		if (cur == SUB_LEFT) {
			*refused = true;
			return 0;
		}
	}
	return store_members_sub_apply(st, member, list, ch, cur, SUB_ACTIVE,
	    CONSENT_IMPORT, 0, detail, now, &change, wrote, err, errlen);
}

/*
 * See the header. Fields with a NULL value are not in the row (an import
 * never clears); tags are added and attributes merged. A member who left
 * the list on a channel (unsubscribed) is not rejoined either: like an
 * opt-out, that counts as IMPORT_OPTED_OUT.
 */
int
store_import_row(struct store *st, const struct member_fields *f, int64_t list,
    const char *detail, int64_t now, enum import_outcome *out, int64_t *member,
    char *err, size_t errlen)
{
	struct member_fields g = *f;
	struct sm_found m;
	struct sm_bind b;
	bool conflict = false;
	bool changed = false;
	bool refused = false;
	bool wrote = false;
	bool subbed = false;
	int rc;

	*out = IMPORT_UNCHANGED;
	*member = 0;
	/* Only the fields the row carries. */
	g.set = 0;
	if ((f->set & MF_PHONE) && f->phone != NULL)
		g.set |= MF_PHONE;
	if ((f->set & MF_EMAIL) && f->email != NULL)
		g.set |= MF_EMAIL;
	if ((f->set & MF_FIRST_NAME) && f->first_name != NULL)
		g.set |= MF_FIRST_NAME;
	if ((f->set & MF_LAST_NAME) && f->last_name != NULL)
		g.set |= MF_LAST_NAME;
	if ((f->set & MF_ZIP) && f->zip != NULL)
		g.set |= MF_ZIP;
	if ((f->set & MF_TIME_ZONE) && f->time_zone != NULL)
		g.set |= MF_TIME_ZONE;
	if ((f->set & (MF_ATTRS | MF_ATTRS_MERGE)) && f->attrs != NULL &&
	    json_object_size(f->attrs) > 0)
		g.set |= MF_ATTRS_MERGE;
	if ((f->set & (MF_TAGS | MF_TAGS_ADD)) && f->tags != NULL &&
	    json_array_size(f->tags) > 0)
		g.set |= MF_TAGS_ADD;
	if (!(g.set & MF_PHONE))
		g.phone = NULL;
	if (!(g.set & MF_EMAIL))
		g.email = NULL;
	if (store_members_check_fields(&g, err, errlen) == -1)
		return -1;
	if (g.phone == NULL && g.email == NULL) {
		snprintf(err, errlen,
		    "import: a phone or an email is required");
		return -1;
	}
	if (store_members_imp_find(st, &g, &m, &conflict, err, errlen) == -1)
		return -1;
	if (conflict) {
		*out = IMPORT_CONFLICT;
		return 0;
	}
	if (store_members_prepare(&g, g.set, &b, err, errlen) == -1)
		return -1;
	if ((rc = store_write_begin(st, err, errlen)) == -1)
		goto done;
	if (!m.found) {
		b.set = (b.set & ~(MF_ATTRS_MERGE | MF_TAGS_ADD)) |
		    ((b.set & MF_ATTRS_MERGE) ? MF_ATTRS : 0) |
		    ((b.set & MF_TAGS_ADD) ? MF_TAGS : 0);
		rc = store_members_insert(st, &g, &b, now, &m.id, err, errlen);
		wrote = changed = rc == 0;
	} else if (g.set != 0)
		rc = store_members_update_row(st, m.id, &g, &b, now, &changed,
		    err, errlen);
	wrote = wrote || changed;
	if (rc == 0 && list > 0 && (g.phone != NULL || m.has_phone))
		rc = store_members_imp_sub(st, m.id, list, CHANNEL_SMS,
		    !m.found, detail, now, &refused, &subbed, err, errlen);
	if (rc == 0 && list > 0 && (g.email != NULL || m.has_email))
		rc = store_members_imp_sub(st, m.id, list, CHANNEL_EMAIL,
		    !m.found, detail, now, &refused, &subbed, err, errlen);
	wrote = wrote || subbed;
	if (rc == 0) {
		*member = m.id;
		if (!m.found)
			*out = IMPORT_CREATED;
		else if (refused)
			*out = IMPORT_OPTED_OUT;
		else if (changed || subbed)
			*out = IMPORT_UPDATED;
	}
done:
	store_members_bind_clear(&b);
	return queue_op_end(st, rc, wrote);
}

/* ---- Email bounces ------------------------------------------------------ */

int
store_email_failure(struct store *st, const char *address, unsigned limit,
    int64_t now, bool *bouncing, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	*bouncing = false;
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
		*bouncing = sqlite3_column_int(stmt, 0) != 0;
	else if (rc != SQLITE_DONE)
		store_errmsg(st, "count email failure", err, errlen);
	/* RETURNING: the UPDATE completes on the step after its last row. */
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
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
store_message_recipient(struct store *st, int64_t id, enum channel *ch,
    char *addr, size_t addrlen, int64_t *member, bool *found, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	const char *a;
	bool in;
	int rc;

	*found = false;
	stmt = store_stmt(st, store_members_sql_recipient, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*ch = channel_parse((const char *)sqlite3_column_text(stmt,
			  0)) == CHANNEL_EMAIL
		    ? CHANNEL_EMAIL
		    : CHANNEL_SMS;
		in = strcmp((const char *)sqlite3_column_text(stmt, 1), "in") ==
		    0;
		a = (const char *)sqlite3_column_text(stmt, in ? 3 : 2);
		snprintf(addr, addrlen, "%s", a != NULL ? a : "");
		*member = sqlite3_column_type(stmt, 4) == SQLITE_NULL
		    ? 0
		    : sqlite3_column_int64(stmt, 4);
		*found = true;
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "read message", err, errlen);
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}
