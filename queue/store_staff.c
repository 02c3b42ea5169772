/*
 * store_staff.c - staff, API tokens, web sessions and audit rows as
 * stored (store_staff.h).
 *
 * Every statement is a static literal cached by store_stmt(). A token or
 * a session is found by the hex SHA-256 of its value through a UNIQUE
 * index, joined with its staff row, so one indexed read answers whether a
 * request may go on and as whom.
 *
 * Every function here that writes a staff or api_tokens row first counts
 * one more change (staff_changed()): daemon/staff.c keeps the answers of
 * store_token_auth() while store_staff_generation() stays the same.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "queue-internal.h"
#include "store_staff.h"

/* Writes to staff and api_tokens so far (see the top of the file). */
static uint64_t staff_generation;

static const char staff_sql_insert[] =
    "INSERT INTO staff (name, email, role, password_hash, created_at,"
    " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
static const char staff_sql_email_taken[] =
    "SELECT id FROM staff WHERE email = ?1";
static const char staff_sql_update[] =
    "UPDATE staff SET"
    " name = CASE WHEN ?2 THEN ?3 ELSE name END,"
    " role = CASE WHEN ?4 THEN ?5 ELSE role END,"
    " password_hash = CASE WHEN ?6 THEN ?7 ELSE password_hash END,"
    " disabled = CASE WHEN ?8 THEN ?9 ELSE disabled END,"
    " updated_at = ?10 WHERE id = ?1";
static const char staff_sql_revoke_tokens[] =
    "UPDATE api_tokens SET revoked_at = ?2 WHERE staff_id = ?1"
    " AND revoked_at IS NULL";
static const char staff_sql_revoke_sessions[] =
    "UPDATE sessions SET revoked_at = ?2 WHERE staff_id = ?1"
    " AND revoked_at IS NULL";
static const char staff_sql_revoke_other_sessions[] =
    "UPDATE sessions SET revoked_at = ?2 WHERE staff_id = ?1"
    " AND revoked_at IS NULL AND id != ?3";
#define STAFF_COLS \
	"id, name, coalesce(email, ''), role, coalesce(password_hash, ''), disabled"
static const char staff_sql_get[] =
    "SELECT " STAFF_COLS " FROM staff WHERE id = ?1";
static const char staff_sql_by_email[] =
    "SELECT " STAFF_COLS " FROM staff WHERE email = ?1";
static const char staff_sql_admins[] =
    "SELECT count(*) FROM staff WHERE role = 'admin' AND disabled = 0"
    " AND id != ?1";
#define STAFF_JSON_COLS \
	"id, name, email, role, disabled, created_at, password_hash IS NOT NULL"
static const char staff_sql_json[] =
    "SELECT " STAFF_JSON_COLS " FROM staff WHERE id = ?1";
static const char staff_sql_list[] =
    "SELECT " STAFF_JSON_COLS " FROM staff ORDER BY id";
static const char staff_sql_count[] = "SELECT count(*) FROM staff";
static const char staff_sql_first_admin[] =
    "SELECT min(id) FROM staff WHERE role = 'admin' AND disabled = 0";

static const char token_sql_insert[] =
    "INSERT INTO api_tokens (staff_id, name, token_hash, daemon, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";
static const char token_sql_auth[] =
    "SELECT s.id, s.role FROM api_tokens t JOIN staff s ON s.id = t.staff_id"
    " WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND s.disabled = 0";
static const char token_sql_owner[] =
    "SELECT staff_id FROM api_tokens WHERE id = ?1";
static const char token_sql_revoke[] =
    "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1"
    " AND revoked_at IS NULL";
static const char token_sql_list[] =
    "SELECT t.id, t.name, t.staff_id, s.name, t.daemon, t.created_at,"
    " t.revoked_at FROM api_tokens t JOIN staff s ON s.id = t.staff_id"
    " WHERE ?1 = 0 OR t.staff_id = ?1 ORDER BY t.id DESC";
static const char token_sql_daemon[] =
    "SELECT id, token_hash = ?1, revoked_at IS NOT NULL FROM api_tokens"
    " WHERE daemon = 1";
static const char token_sql_by_hash[] =
    "SELECT id FROM api_tokens WHERE token_hash = ?1";
static const char token_sql_rehash[] =
    "UPDATE api_tokens SET token_hash = ?2, revoked_at = NULL,"
    " created_at = ?3 WHERE id = ?1";

static const char session_sql_insert[] =
    "INSERT INTO sessions (staff_id, id_hash, via, peer, created_at,"
    " last_seen_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)";
static const char session_sql_auth[] =
    "SELECT x.id, s.id, s.role, x.last_seen_at FROM sessions x"
    " JOIN staff s ON s.id = x.staff_id WHERE x.id_hash = ?1"
    " AND x.revoked_at IS NULL AND x.expires_at > ?2"
    " AND x.last_seen_at + ?3 > ?2 AND s.disabled = 0";
static const char session_sql_touch[] =
    "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1";
static const char session_sql_revoke[] =
    "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1"
    " AND revoked_at IS NULL";
/* live: as session_sql_auth decides, with now ?2 and idle_ms ?3 */
#define SESSION_LIVE                                 \
	"x.revoked_at IS NULL AND x.expires_at > ?2" \
	" AND x.last_seen_at + ?3 > ?2 AND s.disabled = 0"
static const char session_sql_owner[] =
    "SELECT x.staff_id FROM sessions x JOIN staff s ON s.id = x.staff_id"
    " WHERE x.id = ?1 AND " SESSION_LIVE;
static const char session_sql_list[] =
    "SELECT x.id, x.staff_id, s.name, x.via, x.created_at, x.last_seen_at,"
    " x.expires_at, x.peer FROM sessions x JOIN staff s ON s.id = x.staff_id"
    " WHERE (?1 = 0 OR x.staff_id = ?1) AND " SESSION_LIVE
    " ORDER BY x.id DESC";

static const char audit_sql_insert[] =
    "INSERT INTO audit (staff_id, action, target, detail, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";
static const char audit_sql_list[] =
    "SELECT a.id, a.staff_id, s.name, a.action, a.target, a.detail,"
    " a.created_at FROM audit a LEFT JOIN staff s ON s.id = a.staff_id"
    " WHERE (?1 = 0 OR a.id < ?1) AND (?2 = 0 OR a.staff_id = ?2)"
    " ORDER BY a.id DESC LIMIT ?3";

static void staff_copy_col(sqlite3_stmt *, int, char *, size_t);

/* A staff or token row is about to change: cached answers are stale. */
static void
staff_changed(void)
{
	staff_generation++;
}

uint64_t
store_staff_generation(void)
{
	return staff_generation;
}

/* Column col as text into a fixed buffer (truncated; "" for NULL). */
static void
staff_copy_col(sqlite3_stmt *s, int col, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	strlcpy(buf, t != NULL ? (const char *)t : "", len);
}

/* Steps a query of STAFF_COLS into *out: 1 / 0 / -1. */
static int
staff_row_step(struct store *st, sqlite3_stmt *s, struct staff_row *out,
    char *err, size_t errlen)
{
	int rc = sqlite3_step(s);

	memset(out, 0, sizeof(*out));
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(s, 0);
		staff_copy_col(s, 1, out->name, sizeof(out->name));
		staff_copy_col(s, 2, out->email, sizeof(out->email));
		staff_copy_col(s, 3, out->role, sizeof(out->role));
		staff_copy_col(s, 4, out->password_hash,
		    sizeof(out->password_hash));
		out->disabled = sqlite3_column_int(s, 5) != 0;
		sqlite3_reset(s);
		return 1;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "staff read", err, errlen);
		return -1;
	}
	return 0;
}

/* A one-integer query bound with one id: its value, 0 if none, -1. */
static int64_t
staff_int_query(struct store *st, const char *sql, int64_t arg, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;
	int64_t v;
	bool found;

	if ((s = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	if (sqlite3_bind_parameter_count(s) > 0)
		sqlite3_bind_int64(s, 1, arg);
	if (queue_int_row(st, s, &v, &found, err, errlen) == -1)
		return -1;
	return found ? v : 0;
}

int64_t
store_staff_create(struct store *st, const struct staff_new *n, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;
	int64_t id;
	bool found;

	if (n->email != NULL) {
		if ((s = store_stmt(st, staff_sql_email_taken, err, errlen)) ==
		    NULL)
			return -1;
		sqlite3_bind_text(s, 1, n->email, -1, SQLITE_STATIC);
		if (queue_int_row(st, s, &id, &found, err, errlen) == -1)
			return -1;
		if (found)
			return 0;
	}
	staff_changed();
	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, staff_sql_insert, err, errlen)) == NULL)
		return -1;
	queue_bind_text(s, 1, n->name);
	queue_bind_text(s, 2, n->email);
	queue_bind_text(s, 3, n->role);
	queue_bind_text(s, 4, n->password_hash);
	sqlite3_bind_int64(s, 5, n->now);
	if (queue_step_done(st, s, "staff insert", err, errlen) == -1)
		return -1;
	return sqlite3_last_insert_rowid(store_db(st));
}

/* Revokes every token and session of member id. 0 / -1. */
static int
staff_revoke_all(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen)
{
	const char *const sql[] = {staff_sql_revoke_tokens,
	    staff_sql_revoke_sessions};
	sqlite3_stmt *s;
	size_t i;

	for (i = 0; i < 2; i++) {
		if ((s = store_stmt(st, sql[i], err, errlen)) == NULL)
			return -1;
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, now);
		if (queue_step_done(st, s, "staff revoke", err, errlen) == -1)
			return -1;
	}
	return 0;
}

int
store_staff_update(struct store *st, int64_t id, const struct staff_patch *p,
    char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	staff_changed();
	if (queue_op_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, staff_sql_update, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, p->set_name);
	queue_bind_text(s, 3, p->name);
	sqlite3_bind_int(s, 4, p->set_role);
	queue_bind_text(s, 5, p->role);
	sqlite3_bind_int(s, 6, p->set_password);
	queue_bind_text(s, 7, p->password_hash);
	sqlite3_bind_int(s, 8, p->set_disabled);
	sqlite3_bind_int(s, 9, p->disabled);
	sqlite3_bind_int64(s, 10, p->now);
	if (queue_step_done(st, s, "staff update", err, errlen) == -1)
		return -1;
	if (sqlite3_changes(store_db(st)) == 0)
		return 0;
	rc = 1;
	if (p->set_disabled && p->disabled)
		rc = staff_revoke_all(st, id, p->now, err, errlen) == -1 ? -1
									 : 1;
	else if (p->set_password) {
		if ((s = store_stmt(st, staff_sql_revoke_other_sessions, err,
			 errlen)) == NULL)
			rc = -1;
		else {
			sqlite3_bind_int64(s, 1, id);
			sqlite3_bind_int64(s, 2, p->now);
			sqlite3_bind_int64(s, 3, p->keep_session);
			if (queue_step_done(st, s, "staff revoke sessions", err,
				errlen) == -1)
				rc = -1;
		}
	}
	return queue_op_end(st, rc, true);
}

int
store_staff_get(struct store *st, int64_t id, struct staff_row *out, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;

	if ((s = store_stmt(st, staff_sql_get, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return staff_row_step(st, s, out, err, errlen);
}

int
store_staff_by_email(struct store *st, const char *email, struct staff_row *out,
    char *err, size_t errlen)
{
	sqlite3_stmt *s;

	if ((s = store_stmt(st, staff_sql_by_email, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, email, -1, SQLITE_STATIC);
	return staff_row_step(st, s, out, err, errlen);
}

int64_t
store_staff_admins(struct store *st, int64_t except, char *err, size_t errlen)
{
	return staff_int_query(st, staff_sql_admins, except, err, errlen);
}

/* The current row of a STAFF_JSON_COLS query as the API object. */
static json_t *
staff_json_row(sqlite3_stmt *s, bool full)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", queue_json_int(s, 0));
	json_object_set_new(o, "name", queue_json_text(s, 1));
	if (full)
		json_object_set_new(o, "email", queue_json_text(s, 2));
	json_object_set_new(o, "role", queue_json_text(s, 3));
	json_object_set_new(o, "disabled",
	    json_boolean(sqlite3_column_int(s, 4)));
	if (full) {
		json_object_set_new(o, "created_at", queue_json_time(s, 5));
		json_object_set_new(o, "has_password",
		    json_boolean(sqlite3_column_int(s, 6)));
	}
	return o;
}

json_t *
store_staff_json(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	json_t *o = NULL;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if ((s = store_stmt(st, staff_sql_json, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(s, 1, id);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		o = staff_json_row(s, true);
	else if (rc != SQLITE_DONE)
		store_errmsg(st, "staff read", err, errlen);
	sqlite3_reset(s);
	return o;
}

json_t *
store_staff_list_json(struct store *st, bool full, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	json_t *a;
	int rc;

	if ((s = store_stmt(st, staff_sql_list, err, errlen)) == NULL)
		return NULL;
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(a, staff_json_row(s, full));
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "staff list", err, errlen);
		json_decref(a);
		return NULL;
	}
	return a;
}

/* Inserts a token row; 'daemon' marks the daemon's own. Its id, or -1. */
static int64_t
token_insert(struct store *st, const struct session_new *who, const char *name,
    bool daemon, char *err, size_t errlen)
{
	sqlite3_stmt *s;

	staff_changed();
	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, token_sql_insert, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, who->staff_id);
	queue_bind_text(s, 2, name);
	queue_bind_text(s, 3, who->id_hash);
	sqlite3_bind_int(s, 4, daemon);
	sqlite3_bind_int64(s, 5, who->now);
	if (queue_step_done(st, s, "token insert", err, errlen) == -1)
		return -1;
	return sqlite3_last_insert_rowid(store_db(st));
}

int64_t
store_token_create(struct store *st, int64_t staff_id, const char *name,
    const char *hash, int64_t now, char *err, size_t errlen)
{
	struct session_new who = {.staff_id = staff_id,
	    .id_hash = hash,
	    .now = now};

	return token_insert(st, &who, name, false, err, errlen);
}

/* The daemon's token row: id, whether its hash is 'hash', revoked. */
struct staff_daemon_tok {
	int64_t id;
	bool same;
	bool revoked;
};

/* Reads the daemon token's row into *t: 1 / 0 / -1. */
static int
staff_daemon_token(struct store *st, const char *hash,
    struct staff_daemon_tok *t, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	memset(t, 0, sizeof(*t));
	if ((s = store_stmt(st, token_sql_daemon, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		t->id = sqlite3_column_int64(s, 0);
		t->same = sqlite3_column_int(s, 1) != 0;
		t->revoked = sqlite3_column_int(s, 2) != 0;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_errmsg(st, "daemon token read", err, errlen);
		return -1;
	}
	return rc == SQLITE_ROW;
}

/* The daemon's row takes the new hash and is valid again. 0 / -1. */
static int
staff_daemon_rehash(struct store *st, const struct staff_daemon_tok *t,
    const char *hash, int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *s;

	staff_changed();
	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, token_sql_rehash, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, t->id);
	sqlite3_bind_text(s, 2, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	return queue_step_done(st, s, "daemon token update", err, errlen);
}

int
store_staff_bootstrap(struct store *st, const char *hash, int64_t now,
    char *err, size_t errlen)
{
	struct staff_daemon_tok t;
	struct session_new who = {.id_hash = hash, .now = now};
	sqlite3_stmt *s;
	int64_t n, other;
	bool found;
	int rc;

	if ((rc = staff_daemon_token(st, hash, &t, err, errlen)) == -1)
		return -1;
	if (rc == 1 && t.same)
		return t.revoked ? STAFF_BOOT_REVOKED : STAFF_BOOT_KEPT;
	/* the same value held as an ordinary token: it works already */
	if ((s = store_stmt(st, token_sql_by_hash, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	if (queue_int_row(st, s, &other, &found, err, errlen) == -1)
		return -1;
	if (found)
		return STAFF_BOOT_KEPT;
	if (rc == 1)
		return staff_daemon_rehash(st, &t, hash, now, err, errlen) == -1
		    ? -1
		    : STAFF_BOOT_ROTATED;
	if ((n = staff_int_query(st, staff_sql_count, 0, err, errlen)) == -1)
		return -1;
	if (n == 0) {
		if ((who.staff_id = store_staff_create(st,
			 &(struct staff_new){.name = "Administrator",
			     .role = "admin",
			     .now = now},
			 err, errlen)) <= 0)
			return -1;
		return token_insert(st, &who, "daemon token", true, err,
			   errlen) == -1
		    ? -1
		    : STAFF_BOOT_CREATED;
	}
	if ((who.staff_id = staff_int_query(st, staff_sql_first_admin, 0, err,
		 errlen)) <= 0) {
		if (who.staff_id == 0)
			snprintf(err, errlen,
			    "no enabled admin to hold the daemon's token");
		return -1;
	}
	return token_insert(st, &who, "daemon token", true, err, errlen) == -1
	    ? -1
	    : STAFF_BOOT_ATTACHED;
}

/* Steps a query of (staff id, role[, ...]) into *out: 1 / 0 / -1. */
static int
staff_auth_step(struct store *st, sqlite3_stmt *s, struct staff_auth *out,
    int first, char *err, size_t errlen)
{
	int rc = sqlite3_step(s);

	memset(out, 0, sizeof(*out));
	if (rc == SQLITE_ROW) {
		if (first > 0) {
			out->session_id = sqlite3_column_int64(s, 0);
			out->last_seen_at = sqlite3_column_int64(s, 3);
		}
		out->staff_id = sqlite3_column_int64(s, first);
		staff_copy_col(s, first + 1, out->role, sizeof(out->role));
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_errmsg(st, "auth read", err, errlen);
		return -1;
	}
	return rc == SQLITE_ROW;
}

int
store_token_auth(struct store *st, const char *hash, struct staff_auth *out,
    char *err, size_t errlen)
{
	sqlite3_stmt *s;

	if ((s = store_stmt(st, token_sql_auth, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	return staff_auth_step(st, s, out, 0, err, errlen);
}

int
store_token_owner(struct store *st, int64_t id, int64_t *staff_id, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;
	bool found;

	if ((s = store_stmt(st, token_sql_owner, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	if (queue_int_row(st, s, staff_id, &found, err, errlen) == -1)
		return -1;
	return found;
}

/* Runs an UPDATE bound (id, now): 1 if a row changed, 0 if not, -1. */
static int
staff_update_id(struct store *st, const char *sql, int64_t id, int64_t now,
    char *err, size_t errlen)
{
	sqlite3_stmt *s;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	if (queue_step_done(st, s, "staff write", err, errlen) == -1)
		return -1;
	return sqlite3_changes(store_db(st)) > 0;
}

int
store_token_revoke(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen)
{
	staff_changed();
	return staff_update_id(st, token_sql_revoke, id, now, err, errlen);
}

json_t *
store_tokens_json(struct store *st, int64_t staff_id, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	json_t *a, *o;
	int rc;

	if ((s = store_stmt(st, token_sql_list, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(s, 1, staff_id);
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		o = json_object();
		json_object_set_new(o, "id", queue_json_int(s, 0));
		json_object_set_new(o, "name", queue_json_text(s, 1));
		json_object_set_new(o, "staff",
		    json_pack("{s:o, s:o}", "id", queue_json_int(s, 2), "name",
			queue_json_text(s, 3)));
		json_object_set_new(o, "daemon",
		    json_boolean(sqlite3_column_int(s, 4)));
		json_object_set_new(o, "created_at", queue_json_time(s, 5));
		json_object_set_new(o, "revoked_at", queue_json_time(s, 6));
		json_array_append_new(a, o);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "token list", err, errlen);
		json_decref(a);
		return NULL;
	}
	return a;
}

int64_t
store_session_create(struct store *st, const struct session_new *n, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, session_sql_insert, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, n->staff_id);
	queue_bind_text(s, 2, n->id_hash);
	queue_bind_text(s, 3, n->via);
	queue_bind_text(s, 4, n->peer);
	sqlite3_bind_int64(s, 5, n->now);
	sqlite3_bind_int64(s, 6, n->expires_at);
	if (queue_step_done(st, s, "session insert", err, errlen) == -1)
		return -1;
	return sqlite3_last_insert_rowid(store_db(st));
}

int
store_session_auth(struct store *st, const char *hash, int64_t now,
    int64_t idle_ms, struct staff_auth *out, char *err, size_t errlen)
{
	sqlite3_stmt *s;

	if ((s = store_stmt(st, session_sql_auth, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, idle_ms);
	return staff_auth_step(st, s, out, 1, err, errlen);
}

int
store_session_touch(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen)
{
	return staff_update_id(st, session_sql_touch, id, now, err, errlen) ==
		-1
	    ? -1
	    : 0;
}

int
store_session_revoke(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen)
{
	return staff_update_id(st, session_sql_revoke, id, now, err, errlen) ==
		-1
	    ? -1
	    : 0;
}

int
store_session_owner(struct store *st, int64_t id, const struct session_query *q,
    int64_t *staff_id, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	bool found;

	if ((s = store_stmt(st, session_sql_owner, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, q->now);
	sqlite3_bind_int64(s, 3, q->idle_ms);
	if (queue_int_row(st, s, staff_id, &found, err, errlen) == -1)
		return -1;
	return found;
}

/* The current row of session_sql_list as the API object. */
static json_t *
session_json_row(sqlite3_stmt *s, int64_t current)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", queue_json_int(s, 0));
	json_object_set_new(o, "staff",
	    json_pack("{s:o, s:o}", "id", queue_json_int(s, 1), "name",
		queue_json_text(s, 2)));
	json_object_set_new(o, "via", queue_json_text(s, 3));
	json_object_set_new(o, "created_at", queue_json_time(s, 4));
	json_object_set_new(o, "last_seen_at", queue_json_time(s, 5));
	json_object_set_new(o, "expires_at", queue_json_time(s, 6));
	json_object_set_new(o, "peer", queue_json_text(s, 7));
	json_object_set_new(o, "current",
	    json_boolean(
		current != 0 && sqlite3_column_int64(s, 0) == current));
	return o;
}

json_t *
store_sessions_json(struct store *st, const struct session_query *q, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;
	json_t *a;
	int rc;

	if ((s = store_stmt(st, session_sql_list, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(s, 1, q->staff_id);
	sqlite3_bind_int64(s, 2, q->now);
	sqlite3_bind_int64(s, 3, q->idle_ms);
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(a, session_json_row(s, q->current));
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "session list", err, errlen);
		json_decref(a);
		return NULL;
	}
	return a;
}

int
store_audit_add(struct store *st, const struct audit_entry *a, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;

	if (store_write_begin(st, err, errlen) == -1 ||
	    (s = store_stmt(st, audit_sql_insert, err, errlen)) == NULL)
		return -1;
	queue_bind_id(s, 1, a->staff_id);
	queue_bind_text(s, 2, a->action);
	queue_bind_text(s, 3, a->target);
	queue_bind_text(s, 4, a->detail);
	sqlite3_bind_int64(s, 5, a->now);
	return queue_step_done(st, s, "audit insert", err, errlen);
}

/* The current audit row as the API object. */
static json_t *
audit_json_row(sqlite3_stmt *s)
{
	const unsigned char *d = sqlite3_column_text(s, 5);
	json_t *o = json_object(), *detail = NULL;

	json_object_set_new(o, "id", queue_json_int(s, 0));
	if (sqlite3_column_type(s, 1) == SQLITE_NULL)
		json_object_set_new(o, "staff", json_null());
	else
		json_object_set_new(o, "staff",
		    json_pack("{s:o, s:o}", "id", queue_json_int(s, 1), "name",
			queue_json_text(s, 2)));
	json_object_set_new(o, "action", queue_json_text(s, 3));
	json_object_set_new(o, "target", queue_json_text(s, 4));
	if (d != NULL)
		detail = json_loads((const char *)d, 0, NULL);
	json_object_set_new(o, "detail", detail != NULL ? detail : json_null());
	json_object_set_new(o, "created_at", queue_json_time(s, 6));
	return o;
}

json_t *
store_audit_json(struct store *st, const struct audit_query *q, char *err,
    size_t errlen)
{
	sqlite3_stmt *s;
	json_t *a;
	int64_t last = 0;
	int rc, n = 0;

	if ((s = store_stmt(st, audit_sql_list, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(s, 1, q->after);
	sqlite3_bind_int64(s, 2, q->staff_id);
	sqlite3_bind_int(s, 3, q->limit);
	a = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		last = sqlite3_column_int64(s, 0);
		json_array_append_new(a, audit_json_row(s));
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "audit list", err, errlen);
		json_decref(a);
		return NULL;
	}
	return json_pack("{s:o, s:o}", "audit", a, "next",
	    n == q->limit && last > 1 ? json_integer(last) : json_null());
}
