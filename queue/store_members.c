/*
 * store_members.c - members as stored (doc/queue.md): find and create by
 * address, create and update with conflict checks, the member as JSON and
 * the member search. The consent of members is in store_consent.c, their
 * subscriptions in store_subscriptions.c, imports in store_imports.c,
 * prompts and inbound links in store_inbound.c, bounces in store_email.c;
 * lists themselves are in store_lists.c. What these files share is in
 * store_members-internal.h; store_members.h is the public header of all.
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
#include "store_members-internal.h"
#include "store_members.h"

#define SM_FIELD_MAX 256 /* names, zip, time zone: bytes, NUL excluded */
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

/* The member with this phone (SMS) or email: 1 found, 0 none, -1 error. */
static int
store_members_find(struct store *st, enum channel ch, const char *address,
    int64_t *id, char *err, size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? store_members_sql_by_email
					      : store_members_sql_by_phone;
	sqlite3_stmt *stmt;
	bool found;

	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	if (queue_int_row(st, stmt, id, &found, err, errlen) == -1)
		return -1;
	return found ? 1 : 0;
}

/* Finds the member, or creates it: 1 created, 0 found, -1 error. */
int
store_members_ensure(struct store *st, enum channel ch, const char *address,
    struct member_write *w, char *err, size_t errlen)
{
	const char *sql = ch == CHANNEL_EMAIL ? store_members_sql_new_email
					      : store_members_sql_new_phone;
	sqlite3_stmt *stmt;
	int rc;

	rc = store_members_find(st, ch, address, &w->id, err, errlen);
	if (rc != 0)
		return rc == 1 ? 0 : -1;
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, w->now);
	if (queue_step_done(st, stmt, "insert member", err, errlen) == -1)
		return -1;
	w->id = sqlite3_last_insert_rowid(store_db(st));
	return 1;
}

/* *found: member id exists. */
int
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

int
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

int
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
int
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
int
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

void
store_members_bind_clear(struct sm_bind *b)
{
	free(b->attrs);
	free(b->tags);
	b->attrs = b->tags = NULL;
}

/*
 * Whether a member other than 'self' (0: anyone) has this phone or email
 * ('what' names it): 0 free, 1 taken (the message in err), -1 error.
 */
static int
store_members_owner(struct store *st, const char *what, const char *value,
    int64_t self, char *err, size_t errlen)
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
	snprintf(err, errlen, "%s %s already belongs to member %" PRId64, what,
	    value, other);
	return 1;
}

/* Inserts a member with the fields of b->set: its id, or -1. */
int64_t
store_members_insert(struct store *st, const struct member_fields *f,
    const struct sm_bind *b, char *err, size_t errlen)
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
	sqlite3_bind_int64(stmt, 9, b->now);
	if (queue_step_done(st, stmt, "insert member", err, errlen) == -1)
		return -1;
	return sqlite3_last_insert_rowid(store_db(st));
}

/* Updates member id with b->set: 1 a value differed, 0 not, -1 error. */
int
store_members_update_row(struct store *st, int64_t id,
    const struct member_fields *f, const struct sm_bind *b, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;

	if ((stmt = store_stmt(st, store_members_sql_update, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, b->now);
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
	return sqlite3_changes(store_db(st)) > 0 ? 1 : 0;
}

int
store_member_find(struct store *st, enum channel ch, const char *address,
    int64_t *id, char *err, size_t errlen)
{
	if (store_members_check_ch(ch, "find member", err, errlen) == -1 ||
	    store_members_check_addr("find member", address, err, errlen) == -1)
		return -1;
	return store_members_find(st, ch, address, id, err, errlen);
}

int
store_member_ensure(struct store *st, enum channel ch, const char *address,
    struct member_write *w, char *err, size_t errlen)
{
	int rc;

	if (store_members_check_ch(ch, "member", err, errlen) == -1 ||
	    store_members_check_addr("member", address, err, errlen) == -1)
		return -1;
	rc = store_members_ensure(st, ch, address, w, err, errlen);
	return queue_op_end(st, rc, rc == 1);
}

int
store_member_create(struct store *st, const struct member_fields *f,
    struct member_write *w, char *err, size_t errlen)
{
	struct sm_bind b;
	unsigned set;
	int64_t id;
	int rc = 0;

	w->conflict = false;
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
	if ((set & MF_PHONE) != 0)
		rc = store_members_owner(st, "phone", f->phone, 0, err, errlen);
	if (rc == 0 && (set & MF_EMAIL) != 0)
		rc = store_members_owner(st, "email", f->email, 0, err, errlen);
	if (rc != 0) {
		w->conflict = rc == 1;
		return -1;
	}
	if (store_members_prepare(f, set, &b, err, errlen) == -1)
		return -1;
	b.now = w->now;
	rc = store_write_begin(st, err, errlen);
	if (rc == 0) {
		if ((id = store_members_insert(st, f, &b, err, errlen)) == -1)
			rc = -1;
		else
			w->id = id;
	}
	store_members_bind_clear(&b);
	return rc; /* one statement: nothing to roll back */
}

int
store_member_update(struct store *st, int64_t id, const struct member_fields *f,
    struct member_write *w, char *err, size_t errlen)
{
	const char *phone;
	const char *email;
	struct sm_bind b;
	sqlite3_stmt *stmt;
	bool has_phone;
	bool has_email;
	int rc;

	w->changed = false;
	w->conflict = false;
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
	rc = store_members_owner(st, "phone", phone, id, err, errlen);
	if (rc == 0)
		rc = store_members_owner(st, "email", email, id, err, errlen);
	if (rc != 0) {
		w->conflict = rc == 1;
		return -1;
	}
	if (store_members_prepare(f, f->set, &b, err, errlen) == -1)
		return -1;
	b.now = w->now;
	rc = store_write_begin(st, err, errlen);
	if (rc == 0 &&
	    (rc = store_members_update_row(st, id, f, &b, err, errlen)) == 1) {
		w->changed = true;
		rc = 0;
	}
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
json_t *
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
char *
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
