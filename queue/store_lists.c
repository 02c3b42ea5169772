/*
 * store_lists.c - lists as stored (doc/queue.md): the config's lists synced
 * at start, lists made through the API, their keywords, JSON views and
 * the member export of a list. Subscriptions and consent are in
 * store_members.c.
 *
 * A list's keywords live in list_keywords (keyword is the primary key, so
 * a keyword belongs to one list at most). Lists from the config file
 * (from_config = 1) are the config's: the API cannot change them, and at
 * each start store_list_sync() makes the stored rows match the file. A
 * keyword the config wants that an API list holds stops the start rather
 * than silently moving members' keyword to another list.
 *
 * Writes follow queue.c: inside the store's group transaction, and a
 * failure after rows changed rolls the group back (queue_op_end()).
 *
 * PostgreSQL (issue 13, doc/postgresql.md): the sync at start is here
 * (store_lists_sync_pg(), at the end of this file); the API's lists are
 * store_lists_pg.c's. Nodes sharing the database sync at each start: the
 * node's config wins at its start (its lists made or updated, their
 * keywords theirs, the config lists it lacks unmarked and their keywords
 * dropped, as on SQLite), and a keyword of its config that a list made
 * through the API holds stops the start, as on SQLite. Nodes starting
 * together, and the API's list writes, take turns on a transaction-level
 * advisory lock, so the second sees the first's rows (one row per list)
 * and writes only what differs.
 */
#include "autoconf.h"

#include <ctype.h>
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
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#endif

#define SL_TEXT_MAX 4096 /* welcome texts, prompts: bytes */

static const char store_lists_sql_by_name[] =
    "SELECT id FROM lists WHERE name = ?1";
static const char store_lists_sql_other_name[] =
    "SELECT id FROM lists WHERE name = ?1 AND id IS NOT ?2";
static const char store_lists_sql_by_keyword[] =
    "SELECT list_id FROM list_keywords WHERE keyword = ?1";
static const char store_lists_sql_kw_owner[] =
    "SELECT k.list_id, l.name, l.from_config FROM list_keywords k"
    " JOIN lists l ON l.id = k.list_id WHERE k.keyword = ?1";
/*
 * ?1 name, ?2 sender, ?3 welcome SMS, ?4 email subject, ?5 email body,
 * ?6 double opt-in, ?7 questions, ?8 from_config, ?9 now, ?10 time zone.
 */
static const char store_lists_sql_insert[] =
    "INSERT INTO lists (name, sender, welcome_sms, welcome_email_subject,"
    " welcome_email, double_optin, questions, from_config, created_at,"
    " updated_at, time_zone) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9,"
    " ?10)";
/* ?11 id; matches only when something differs. */
static const char store_lists_sql_update[] =
    "UPDATE lists SET name = ?1, sender = ?2, welcome_sms = ?3,"
    " welcome_email_subject = ?4, welcome_email = ?5, double_optin = ?6,"
    " questions = ?7, from_config = ?8, updated_at = ?9, time_zone = ?10"
    " WHERE id = ?11"
    " AND (name IS NOT ?1 OR sender IS NOT ?2 OR welcome_sms IS NOT ?3"
    " OR welcome_email_subject IS NOT ?4 OR welcome_email IS NOT ?5"
    " OR double_optin IS NOT ?6 OR questions IS NOT ?7"
    " OR from_config IS NOT ?8 OR time_zone IS NOT ?10)";
static const char store_lists_sql_kw_clear[] =
    "DELETE FROM list_keywords WHERE list_id = ?1";
/* In a sync, a keyword may move from one config list to another. */
static const char store_lists_sql_kw_insert[] =
    "INSERT INTO list_keywords (keyword, list_id) VALUES (?1, ?2)"
    " ON CONFLICT (keyword) DO UPDATE SET list_id = excluded.list_id";
static const char store_lists_sql_config_lists[] =
    "SELECT id, name FROM lists WHERE from_config = 1 ORDER BY id";
static const char store_lists_sql_unconfig[] =
    "UPDATE lists SET from_config = 0, updated_at = ?2 WHERE id = ?1";
static const char store_lists_sql_get[] =
    "SELECT id, name, sender, welcome_sms, welcome_email_subject,"
    " welcome_email, double_optin, questions, from_config, created_at,"
    " updated_at, time_zone FROM lists WHERE id = ?1";
static const char store_lists_sql_keywords[] =
    "SELECT keyword FROM list_keywords WHERE list_id = ?1 ORDER BY keyword";
/* STORE_LISTS_STATE_SQL (store_members-internal.h) of list ?1. */
#define STORE_LISTS_STATE_FROM                                     \
	" FROM subscriptions s"                                    \
	" LEFT JOIN sms_optout so ON so.member_id = s.member_id"   \
	" LEFT JOIN email_optout eo ON eo.member_id = s.member_id" \
	" WHERE s.list_id = ?1"
/* Members (not channel rows) by the best state of their subscriptions. */
static const char store_lists_sql_counts[] =
    "SELECT best, count(*) FROM (SELECT max(" STORE_LISTS_STATE_SQL
    ") AS best" STORE_LISTS_STATE_FROM " GROUP BY s.member_id) GROUP BY best";
/* Subscriptions by channel and state. */
static const char store_lists_sql_channel_counts[] =
    "SELECT s.channel, " STORE_LISTS_STATE_SQL
    ", count(*)" STORE_LISTS_STATE_FROM " GROUP BY 1, 2";
static const char store_lists_sql_ids[] = "SELECT id FROM lists ORDER BY id";
static const char store_lists_sql_members[] =
    "SELECT count(DISTINCT member_id) FROM subscriptions WHERE list_id = ?1"
    " AND status != 'left'";
static const char store_lists_sql_delete[] = "DELETE FROM lists WHERE id = ?1";
static const char store_lists_sql_del_prompts[] =
    "DELETE FROM member_prompts WHERE list_id = ?1";
/* ?1 list, ?2 cursor (member id). */
static const char store_lists_sql_export[] =
    STORE_LISTS_EXPORT_FROM " WHERE s.list_id = ?1 AND s.member_id > ?2"
			    " ORDER BY s.member_id, s.channel";

/* STORE_LISTS_STATE_SQL's values, 1-4; 0 is never returned. */
static const char *const store_lists_states[] = {"", "left", "opted_out",
    "pending", "active"};
#define SL_NSTATES (sizeof(store_lists_states) / sizeof(store_lists_states[0]))

static const char *const store_lists_fields[] = {"first_name", "last_name",
    "zip", "email"};

const char *const store_lists_export_head[SL_EXPORT_NCOLS] = {"id", "phone",
    "email", "first_name", "last_name", "zip", "time_zone", "tags",
    "attributes", "channel", "status", "source", "subscribed_at",
    "sms_opted_out", "email_opted_out"};

static int64_t store_lists_find(struct store *, const char *, const char *,
    int64_t, char *, size_t);
struct store_lists_how;
static int64_t store_lists_write(struct store *, const struct store_lists_how *,
    const struct list_def *, char *, size_t);
static int store_lists_keywords(struct store *, int64_t,
    const struct list_def *, char *, size_t);
static json_t *store_lists_zero_counts(void);
static int store_lists_taken(struct store *, const struct list_def *, int64_t,
    bool *, char *, size_t);
static int store_lists_sync_pg(struct store *, const struct list_def *, size_t,
    int64_t, char *, size_t);

void
list_info_clear(struct list_info *li)
{
	size_t i;

	if (li == NULL)
		return;
	free(li->sender);
	free(li->welcome_sms);
	free(li->welcome_email_subject);
	free(li->welcome_email);
	free(li->time_zone);
	for (i = 0; i < li->nquestions; i++) {
		free((char *)li->questions[i].field);
		free((char *)li->questions[i].prompt);
	}
	free(li->questions);
	memset(li, 0, sizeof(*li));
}

/* Checks a definition's lengths, keywords and questions. */
int
store_lists_check(const struct list_def *d, char *err, size_t errlen)
{
	const char *texts[] = {d->sender, d->welcome_sms,
	    d->welcome_email_subject, d->welcome_email, d->time_zone};
	const char *k;
	size_t i;
	size_t j;
	bool ok;

	if (d->name == NULL || *d->name == '\0' ||
	    strlen(d->name) > LIST_NAME_MAX) {
		snprintf(err, errlen, "list name: required, at most %d bytes",
		    LIST_NAME_MAX);
		return -1;
	}
	for (i = 0; i < d->nkeywords; i++) {
		k = d->keywords[i];
		if (k == NULL || *k == '\0' || strlen(k) > LIST_KEYWORD_MAX) {
			snprintf(err, errlen,
			    "list %s: keywords must be 1..%d bytes", d->name,
			    LIST_KEYWORD_MAX);
			return -1;
		}
		for (j = 0; k[j] != '\0'; j++)
			if (islower((unsigned char)k[j]) ||
			    isspace((unsigned char)k[j])) {
				snprintf(err, errlen,
				    "list %s: keyword %s must be upper-case "
				    "without spaces",
				    d->name, k);
				return -1;
			}
		for (j = 0; j < i; j++)
			if (strcmp(d->keywords[j], k) == 0) {
				snprintf(err, errlen,
				    "list %s: keyword %s given twice", d->name,
				    k);
				return -1;
			}
	}
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i] != NULL && strlen(texts[i]) > SL_TEXT_MAX) {
			snprintf(err, errlen,
			    "list %s: texts are at most %d bytes", d->name,
			    SL_TEXT_MAX);
			return -1;
		}
	for (i = 0; i < d->nquestions; i++) {
		ok = false;
		for (j = 0; d->questions[i].field != NULL &&
		     j < sizeof(store_lists_fields) /
			     sizeof(store_lists_fields[0]);
		     j++)
			ok = ok ||
			    strcmp(d->questions[i].field,
				store_lists_fields[j]) == 0;
		if (!ok) {
			snprintf(err, errlen,
			    "list %s: question %zu: field must be first_name, "
			    "last_name, zip or email",
			    d->name, i + 1);
			return -1;
		}
		if (d->questions[i].prompt == NULL ||
		    *d->questions[i].prompt == '\0' ||
		    strlen(d->questions[i].prompt) > SL_TEXT_MAX) {
			snprintf(err, errlen,
			    "list %s: question %zu: prompt required, at most "
			    "%d bytes",
			    d->name, i + 1, SL_TEXT_MAX);
			return -1;
		}
	}
	return 0;
}

/* The questions as stored: [{"field", "prompt"}] (malloc'd). */
char *
store_lists_questions(const struct list_def *d, char *err, size_t errlen)
{
	json_t *a = json_array();
	char *s = NULL;
	size_t i;

	for (i = 0; a != NULL && i < d->nquestions; i++)
		if (json_array_append_new(a,
			json_pack("{s:s, s:s}", "field", d->questions[i].field,
			    "prompt", d->questions[i].prompt)) == -1) {
			json_decref(a);
			a = NULL;
		}
	if (a != NULL)
		s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (s == NULL)
		snprintf(err, errlen,
		    "list %s: questions: out of memory or not UTF-8", d->name);
	return s;
}

/*
 * A list's id by one text parameter (sql: name or keyword) other than
 * 'self': the id (list ids are rowids, never 0), 0 when there is none, or
 * -1.
 */
static int64_t
store_lists_find(struct store *st, const char *sql, const char *key,
    int64_t self, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t id = 0;
	bool found;

	if (key == NULL)
		return 0;
	if ((stmt = store_stmt(st, sql, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	if (sql == store_lists_sql_other_name)
		queue_bind_id(stmt, 2, self);
	if (queue_int_row(st, stmt, &id, &found, err, errlen) == -1)
		return -1;
	return found ? id : 0;
}

/* How store_lists_write() writes a list: which row, whose, when. */
struct store_lists_how {
	int64_t id;	  /* the list to update; 0 = insert a new one */
	bool from_config; /* a [list] section of the config file */
	int64_t now;
};

/*
 * Inserts (how->id 0) or updates list how->id with d. Writes nothing when
 * the row already says the same. Returns the list's id (the new one after
 * an insert), or -1.
 */
static int64_t
store_lists_write(struct store *st, const struct store_lists_how *how,
    const struct list_def *d, char *err, size_t errlen)
{
	int64_t id = how->id;
	sqlite3_stmt *stmt;
	char *q;
	int rc;

	if ((q = store_lists_questions(d, err, errlen)) == NULL)
		return -1;
	stmt = store_stmt(st,
	    id == 0 ? store_lists_sql_insert : store_lists_sql_update, err,
	    errlen);
	if (stmt == NULL) {
		free(q);
		return -1;
	}
	sqlite3_bind_text(stmt, 1, d->name, -1, SQLITE_STATIC);
	queue_bind_text(stmt, 2, d->sender);
	queue_bind_text(stmt, 3, d->welcome_sms);
	queue_bind_text(stmt, 4, d->welcome_email_subject);
	queue_bind_text(stmt, 5, d->welcome_email);
	sqlite3_bind_int(stmt, 6, d->double_optin ? 1 : 0);
	sqlite3_bind_text(stmt, 7, q, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 8, how->from_config ? 1 : 0);
	sqlite3_bind_int64(stmt, 9, how->now);
	queue_bind_text(stmt, 10, d->time_zone);
	if (id != 0)
		sqlite3_bind_int64(stmt, 11, id);
	rc = queue_step_done(st, stmt, id == 0 ? "insert list" : "update list",
	    err, errlen);
	free(q);
	if (rc == -1)
		return -1;
	return id == 0 ? sqlite3_last_insert_rowid(store_db(st)) : id;
}

/* Makes d's keywords list id's, exactly. */
static int
store_lists_keywords(struct store *st, int64_t id, const struct list_def *d,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	size_t i;

	if ((stmt = store_stmt(st, store_lists_sql_kw_clear, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	if (queue_step_done(st, stmt, "clear keywords", err, errlen) == -1)
		return -1;
	for (i = 0; i < d->nkeywords; i++) {
		stmt = store_stmt(st, store_lists_sql_kw_insert, err, errlen);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_text(stmt, 1, d->keywords[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, id);
		if (queue_step_done(st, stmt, "insert keyword", err, errlen) ==
		    -1)
			return -1;
	}
	return 0;
}

/*
 * A name or keyword of d that a list other than 'self' (0: any) has:
 * *conflict and err, -1.
 */
static int
store_lists_taken(struct store *st, const struct list_def *d, int64_t self,
    bool *conflict, char *err, size_t errlen)
{
	int64_t other;
	size_t i;

	other = store_lists_find(st, store_lists_sql_other_name, d->name, self,
	    err, errlen);
	if (other == -1)
		return -1;
	if (other != 0) {
		*conflict = true;
		snprintf(err, errlen, "list name %s is taken by list %" PRId64,
		    d->name, other);
		return -1;
	}
	for (i = 0; i < d->nkeywords; i++) {
		other = store_lists_find(st, store_lists_sql_by_keyword,
		    d->keywords[i], 0, err, errlen);
		if (other == -1)
			return -1;
		if (other != 0 && other != self) {
			*conflict = true;
			snprintf(err, errlen,
			    "keyword %s belongs to list %" PRId64,
			    d->keywords[i], other);
			return -1;
		}
	}
	return 0;
}

/* True if d has keyword k. */
static bool
store_lists_find_kw(const struct list_def *d, const char *k)
{
	size_t i;

	for (i = 0; i < d->nkeywords; i++)
		if (strcmp(d->keywords[i], k) == 0)
			return true;
	return false;
}

/* Checks the config's definitions: each, and against each other. */
static int
store_lists_defs_check(const struct list_def *defs, size_t n, char *err,
    size_t errlen)
{
	size_t i;
	size_t j;
	size_t k;

	for (i = 0; i < n; i++) {
		if (store_lists_check(&defs[i], err, errlen) == -1)
			return -1;
		for (j = 0; j < i; j++) {
			if (strcmp(defs[i].name, defs[j].name) == 0) {
				snprintf(err, errlen,
				    "[list %s] is defined twice", defs[i].name);
				return -1;
			}
			for (k = 0; k < defs[i].nkeywords; k++)
				if (store_lists_find_kw(&defs[j],
					defs[i].keywords[k])) {
					snprintf(err, errlen,
					    "keyword %s is in both [list %s] "
					    "and [list %s]",
					    defs[i].keywords[k], defs[j].name,
					    defs[i].name);
					return -1;
				}
		}
	}
	return 0;
}

/* Checks every keyword of the config against API lists (before writing). */
static int
store_lists_sync_check(struct store *st, const struct list_def *defs, size_t n,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	const char *owner;
	size_t i;
	size_t j;
	size_t k;
	bool adopted;
	int rc;

	if (store_lists_defs_check(defs, n, err, errlen) == -1)
		return -1;
	for (i = 0; i < n; i++)
		for (k = 0; k < defs[i].nkeywords; k++) {
			stmt = store_stmt(st, store_lists_sql_kw_owner, err,
			    errlen);
			if (stmt == NULL)
				return -1;
			sqlite3_bind_text(stmt, 1, defs[i].keywords[k], -1,
			    SQLITE_STATIC);
			rc = sqlite3_step(stmt);
			if (rc == SQLITE_ROW &&
			    sqlite3_column_int(stmt, 2) == 0) {
				owner =
				    (const char *)sqlite3_column_text(stmt, 1);
				adopted = false;
				for (j = 0; owner != NULL && j < n; j++)
					adopted = adopted ||
					    strcmp(owner, defs[j].name) == 0;
				if (!adopted) {
					snprintf(err, errlen,
					    "keyword %s of [list %s] belongs to "
					    "list %" PRId64
					    " (created through the API)",
					    defs[i].keywords[k], defs[i].name,
					    (int64_t)sqlite3_column_int64(stmt,
						0));
					sqlite3_reset(stmt);
					return -1;
				}
			} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
				store_errmsg(st, "read keyword", err, errlen);
				sqlite3_reset(stmt);
				return -1;
			}
			sqlite3_reset(stmt);
		}
	return 0;
}

/*
 * Config lists no longer in defs stay with their members but lose the
 * config mark and their keywords (nothing in the config answers them).
 */
/* The config's lists, for store_lists_sync_gone(). */
struct store_lists_defs {
	const struct list_def *v;
	size_t n;
};

static int
store_lists_sync_gone(struct store *st, const struct store_lists_defs *d,
    int64_t now, bool *wrote, char *err, size_t errlen)
{
	const struct list_def *defs = d->v;
	size_t n = d->n;
	static const struct list_def none = {NULL, NULL, 0, NULL, NULL, NULL,
	    NULL, false, NULL, 0, NULL};
	sqlite3_stmt *stmt;
	int64_t gone[64];
	size_t ngone;
	size_t i;
	bool keep;
	int rc;

	do {
		ngone = 0;
		stmt =
		    store_stmt(st, store_lists_sql_config_lists, err, errlen);
		if (stmt == NULL)
			return -1;
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW &&
		    ngone < sizeof(gone) / sizeof(gone[0])) {
			keep = false;
			for (i = 0; i < n && !keep; i++)
				keep = strcmp((const char *)sqlite3_column_text(
						  stmt, 1),
					   defs[i].name) == 0;
			if (!keep)
				gone[ngone++] = sqlite3_column_int64(stmt, 0);
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			store_errmsg(st, "read lists", err, errlen);
			sqlite3_reset(stmt);
			return -1;
		}
		sqlite3_reset(stmt);
		for (i = 0; i < ngone; i++) {
			*wrote = true;
			stmt = store_stmt(st, store_lists_sql_unconfig, err,
			    errlen);
			if (stmt == NULL)
				return -1;
			sqlite3_bind_int64(stmt, 1, gone[i]);
			sqlite3_bind_int64(stmt, 2, now);
			if (queue_step_done(st, stmt, "update list", err,
				errlen) == -1 ||
			    store_lists_keywords(st, gone[i], &none, err,
				errlen) == -1)
				return -1;
		}
	} while (ngone == sizeof(gone) / sizeof(gone[0]));
	return 0;
}

int
store_list_sync(struct store *st, const struct list_def *defs, size_t n,
    int64_t now, char *err, size_t errlen)
{
	bool wrote = false;
	int64_t id;
	size_t i;
	int rc = 0;

	if (store_backend(st) == STORE_POSTGRESQL) {
		if (store_lists_defs_check(defs, n, err, errlen) == -1)
			return -1;
		return store_lists_sync_pg(st, defs, n, now, err, errlen);
	}
	if (store_lists_sync_check(st, defs, n, err, errlen) == -1)
		return -1;
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	for (i = 0; i < n && rc == 0; i++) {
		id = store_lists_find(st, store_lists_sql_by_name, defs[i].name,
		    0, err, errlen);
		rc = id == -1 ? -1 : 0;
		if (rc == 0) {
			id = store_lists_write(st,
			    &(struct store_lists_how){.id = id,
				.from_config = true,
				.now = now},
			    &defs[i], err, errlen);
			rc = id == -1 ? -1 : 0;
		}
		wrote = wrote || (rc == 0 && sqlite3_changes(store_db(st)) > 0);
		if (rc == 0) {
			rc =
			    store_lists_keywords(st, id, &defs[i], err, errlen);
			wrote = true;
		}
	}
	if (rc == 0)
		rc = store_lists_sync_gone(st,
		    &(struct store_lists_defs){defs, n}, now, &wrote, err,
		    errlen);
	return queue_op_end(st, rc, wrote);
}

int64_t
store_list_create(struct store *st, const struct list_def *d, int64_t now,
    bool *conflict, char *err, size_t errlen)
{
	int64_t id;
	int rc;

	*conflict = false;
	if (store_lists_check(d, err, errlen) == -1 ||
	    store_lists_taken(st, d, 0, conflict, err, errlen) == -1)
		return -1;
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	id = store_lists_write(st, &(struct store_lists_how){.now = now}, d,
	    err, errlen);
	if (id == -1)
		return -1;
	rc = store_lists_keywords(st, id, d, err, errlen);
	if (queue_op_end(st, rc, true) == -1)
		return -1;
	return id;
}

int
store_list_update(struct store *st, int64_t id, const struct list_def *d,
    struct list_write *w, char *err, size_t errlen)
{
	bool *conflict = &w->conflict;
	int64_t now = w->now;
	sqlite3_stmt *stmt;
	int rc;

	*conflict = false;
	if (store_lists_check(d, err, errlen) == -1)
		return -1;
	if ((stmt = store_stmt(st, store_lists_sql_get, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE)
		snprintf(err, errlen, "no list %" PRId64, id);
	else if (rc != SQLITE_ROW)
		store_errmsg(st, "read list", err, errlen);
	else if (sqlite3_column_int(stmt, 8) != 0) {
		*conflict = true;
		snprintf(err, errlen,
		    "list %" PRId64
		    " comes from the config file; edit [list %s] there",
		    id, (const char *)sqlite3_column_text(stmt, 1));
		rc = SQLITE_ERROR;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW)
		return -1;
	if (store_lists_taken(st, d, id, conflict, err, errlen) == -1)
		return -1;
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	if (store_lists_write(st,
		&(struct store_lists_how){.id = id, .now = now}, d, err,
		errlen) == -1)
		return -1;
	rc = store_lists_keywords(st, id, d, err, errlen);
	return queue_op_end(st, rc, true);
}

int
store_list_delete(struct store *st, int64_t id, bool force, bool *conflict,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t members = 0;
	bool found;
	int rc;

	*conflict = false;
	stmt = store_stmt(st, store_lists_sql_get, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	if (queue_int_row(st, stmt, &members, &found, err, errlen) == -1)
		return -1;
	if (!found) {
		snprintf(err, errlen, "no list %" PRId64, id);
		return -1;
	}
	if (!force) {
		stmt = store_stmt(st, store_lists_sql_members, err, errlen);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, id);
		if (queue_int_row(st, stmt, &members, &found, err, errlen) ==
		    -1)
			return -1;
		if (members > 0) {
			*conflict = true;
			snprintf(err, errlen,
			    "list %" PRId64 " has %" PRId64
			    " members; use force",
			    id, members);
			return -1;
		}
	}
	if (store_write_begin(st, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_lists_sql_del_prompts, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	if (queue_step_done(st, stmt, "delete prompts", err, errlen) == -1)
		return -1;
	stmt = store_stmt(st, store_lists_sql_delete, err, errlen);
	rc = stmt == NULL ? -1 : 0;
	if (rc == 0) {
		sqlite3_bind_int64(stmt, 1, id);
		rc = queue_step_done(st, stmt, "delete list", err, errlen);
	}
	return queue_op_end(st, rc, true);
}

/* A malloc'd copy of a text column, NULL for null. */
static char *
store_lists_dup(sqlite3_stmt *stmt, int col)
{
	const char *s = (const char *)sqlite3_column_text(stmt, col);

	return s != NULL ? strdup(s) : NULL;
}

/* Fills li->questions from the stored JSON. */
static int
store_lists_parse_questions(struct list_info *li, const char *text, char *err,
    size_t errlen)
{
	json_t *a;
	json_t *q;
	const char *field;
	const char *prompt;
	size_t i;
	size_t n;

	if (text == NULL || (a = json_loads(text, 0, NULL)) == NULL)
		return 0;
	n = json_array_size(a);
	if (n > 0 &&
	    (li->questions = calloc(n, sizeof(*li->questions))) == NULL) {
		json_decref(a);
		snprintf(err, errlen, "read list: out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		q = json_array_get(a, i);
		field = json_string_value(json_object_get(q, "field"));
		prompt = json_string_value(json_object_get(q, "prompt"));
		if (field == NULL || prompt == NULL)
			continue;
		li->questions[li->nquestions].field = strdup(field);
		li->questions[li->nquestions].prompt = strdup(prompt);
		li->nquestions++;
	}
	json_decref(a);
	return 0;
}

int
store_list_get(struct store *st, int64_t id, struct list_info *out, bool *found,
    char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	char *q = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	*found = false;
	if ((stmt = store_stmt(st, store_lists_sql_get, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(stmt, 0);
		snprintf(out->name, sizeof(out->name), "%s",
		    (const char *)sqlite3_column_text(stmt, 1));
		out->sender = store_lists_dup(stmt, 2);
		out->welcome_sms = store_lists_dup(stmt, 3);
		out->welcome_email_subject = store_lists_dup(stmt, 4);
		out->welcome_email = store_lists_dup(stmt, 5);
		out->double_optin = sqlite3_column_int(stmt, 6) != 0;
		q = store_lists_dup(stmt, 7);
		out->from_config = sqlite3_column_int(stmt, 8) != 0;
		out->time_zone = store_lists_dup(stmt, 11);
		*found = true;
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "read list", err, errlen);
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : -1;
	rc = store_lists_parse_questions(out, q, err, errlen);
	free(q);
	if (rc == -1) {
		list_info_clear(out);
		*found = false;
	}
	return rc;
}

int
store_list_by_keyword(struct store *st, const char *keyword, int64_t *id,
    bool *found, char *err, size_t errlen)
{
	int64_t v;

	v = store_lists_find(st, store_lists_sql_by_keyword, keyword, 0, err,
	    errlen);
	*found = v > 0;
	if (v > 0)
		*id = v;
	return v == -1 ? -1 : 0;
}

int
store_list_by_name(struct store *st, const char *name, int64_t *id, bool *found,
    char *err, size_t errlen)
{
	int64_t v;

	v = store_lists_find(st, store_lists_sql_by_name, name, 0, err, errlen);
	*found = v > 0;
	if (v > 0)
		*id = v;
	return v == -1 ? -1 : 0;
}

/* The name of a STORE_LISTS_STATE_SQL value. */
const char *
store_lists_state(int v)
{
	return v > 0 && (size_t)v < SL_NSTATES ? store_lists_states[v]
					       : "unknown";
}

/* {"active": 0, "pending": 0, "opted_out": 0, "left": 0} */
static json_t *
store_lists_zero_counts(void)
{
	return json_pack("{s:i, s:i, s:i, s:i}", "active", 0, "pending", 0,
	    "opted_out", 0, "left", 0);
}

/*
 * Adds "keywords", "counts" (members by the best state of their
 * subscriptions, so each is counted once) and "channel_counts"
 * (subscriptions by channel and state) to list o.
 */
static int
store_lists_json_more(struct store *st, int64_t id, json_t *o, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *a;
	json_t *c;
	int rc;

	if ((stmt = store_stmt(st, store_lists_sql_keywords, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	a = json_array();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		json_array_append_new(a, queue_json_text(stmt, 0));
	sqlite3_reset(stmt);
	json_object_set_new(o, "keywords", a);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "read keywords", err, errlen);
		return -1;
	}
	if ((stmt = store_stmt(st, store_lists_sql_counts, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	c = store_lists_zero_counts();
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		json_object_set_new(c,
		    store_lists_state(sqlite3_column_int(stmt, 0)),
		    json_integer(sqlite3_column_int64(stmt, 1)));
	sqlite3_reset(stmt);
	json_object_set_new(o, "counts", c);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "count subscriptions", err, errlen);
		return -1;
	}
	if ((stmt = store_stmt(st, store_lists_sql_channel_counts, err,
		 errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	c = json_pack("{s:o, s:o}", "sms", store_lists_zero_counts(), "email",
	    store_lists_zero_counts());
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		json_object_set_new(
		    json_object_get(c,
			(const char *)sqlite3_column_text(stmt, 0)),
		    store_lists_state(sqlite3_column_int(stmt, 1)),
		    json_integer(sqlite3_column_int64(stmt, 2)));
	sqlite3_reset(stmt);
	json_object_set_new(o, "channel_counts", c);
	if (rc != SQLITE_DONE) {
		store_errmsg(st, "count subscriptions", err, errlen);
		return -1;
	}
	return 0;
}

json_t *
store_list_json(struct store *st, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	json_t *o = NULL;
	json_t *q;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if ((stmt = store_stmt(st, store_lists_sql_get, err, errlen)) == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		o = json_object();
		json_object_set_new(o, "id", json_integer(id));
		json_object_set_new(o, "name", queue_json_text(stmt, 1));
		json_object_set_new(o, "sender", queue_json_text(stmt, 2));
		json_object_set_new(o, "welcome_sms", queue_json_text(stmt, 3));
		json_object_set_new(o, "welcome_email_subject",
		    queue_json_text(stmt, 4));
		json_object_set_new(o, "welcome_email",
		    queue_json_text(stmt, 5));
		json_object_set_new(o, "double_optin",
		    json_boolean(sqlite3_column_int(stmt, 6) != 0));
		q = NULL;
		if (sqlite3_column_text(stmt, 7) != NULL)
			q = json_loads(
			    (const char *)sqlite3_column_text(stmt, 7), 0,
			    NULL);
		json_object_set_new(o, "questions",
		    json_is_array(q) ? q : json_array());
		if (q != NULL && !json_is_array(q))
			json_decref(q);
		json_object_set_new(o, "time_zone", queue_json_text(stmt, 11));
		json_object_set_new(o, "from_config",
		    json_boolean(sqlite3_column_int(stmt, 8) != 0));
		json_object_set_new(o, "created_at", queue_json_time(stmt, 9));
		json_object_set_new(o, "updated_at", queue_json_time(stmt, 10));
	} else if (rc != SQLITE_DONE)
		store_errmsg(st, "read list", err, errlen);
	sqlite3_reset(stmt);
	if (o != NULL && store_lists_json_more(st, id, o, err, errlen) == -1) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

json_t *
store_lists_json(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int64_t *ids = NULL;
	size_t n = 0;
	size_t max = 0;
	size_t i;
	json_t *a;
	json_t *l;
	int64_t *tmp;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if ((stmt = store_stmt(st, store_lists_sql_ids, err, errlen)) == NULL)
		return NULL;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == max) {
			max = max == 0 ? 16 : 2 * max;
			if ((tmp = realloc(ids, max * sizeof(*ids))) == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			ids = tmp;
		}
		ids[n++] = sqlite3_column_int64(stmt, 0);
	}
	if (rc != SQLITE_DONE)
		store_errmsg(st, "read lists", err, errlen);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		free(ids);
		return NULL;
	}
	a = json_array();
	for (i = 0; i < n; i++) {
		if ((l = store_list_json(st, ids[i], err, errlen)) == NULL) {
			json_decref(a);
			free(ids);
			return NULL;
		}
		json_array_append_new(a, l);
	}
	free(ids);
	return json_pack("{s:o}", "lists", a);
}

int
store_export_list(struct store *st, int64_t list, struct export_page *pg,
    const struct export_sink *to, char *err, size_t errlen)
{
	const char *cols[SL_EXPORT_NCOLS];
	struct export_row row = {store_lists_export_head, SL_EXPORT_NCOLS};
	sqlite3_stmt *stmt;
	char idbuf[32];
	char at[40];
	int64_t last = 0;
	int64_t id;
	unsigned n = 0;
	bool found;
	size_t i;
	int rc;

	pg->next = 0;
	if (pg->limit < 1) {
		snprintf(err, errlen, "export: limit must be at least 1");
		return -1;
	}
	if ((stmt = store_stmt(st, store_lists_sql_get, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, list);
	if (queue_int_row(st, stmt, &id, &found, err, errlen) == -1)
		return -1;
	if (!found) {
		snprintf(err, errlen, "no list %" PRId64, list);
		return -1;
	}
	if (pg->after <= 0 && to->each(to->arg, &row) == -1) {
		snprintf(err, errlen, "export: stopped by the writer");
		return -1;
	}
	row.cols = cols;
	if ((stmt = store_stmt(st, store_lists_sql_export, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, list);
	sqlite3_bind_int64(stmt, 2, pg->after > 0 ? pg->after : 0);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		id = sqlite3_column_int64(stmt, 0);
		if (id != last) {
			if (n == pg->limit) {
				pg->next = last;
				break;
			}
			n++;
			last = id;
		}
		for (i = 0; i < SL_EXPORT_NCOLS; i++)
			cols[i] =
			    (const char *)sqlite3_column_text(stmt, (int)i);
		snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
		cols[0] = idbuf;
		cols[10] = store_lists_state(sqlite3_column_int(stmt, 10));
		cols[12] = msg_time_to_text(sqlite3_column_int64(stmt, 12), at,
		    sizeof(at));
		cols[13] = sqlite3_column_int(stmt, 13) ? "true" : "false";
		cols[14] = sqlite3_column_int(stmt, 14) ? "true" : "false";
		if (to->each(to->arg, &row) == -1) {
			sqlite3_reset(stmt);
			snprintf(err, errlen, "export: stopped by the writer");
			return -1;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_errmsg(st, "export list", err, errlen);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	return 0;
}

/* ---- PostgreSQL: the config's lists at start ------------------------- */

#ifdef HAVE_LIBPQ

/* Nodes syncing their lists take turns (see the top of the file). */
#define SL_PG_SYNC_LOCK "SELECT pg_advisory_xact_lock(1868, 2)"

/*
 * One config list: $1 name, $2 sender, $3 welcome SMS, $4 email subject,
 * $5 email body, $6 double opt-in, $7 questions, $8 now, $9 time zone,
 * $10 its keywords (a text array). The row is written only when it
 * differs; its keywords become exactly $10 (a keyword another list held
 * moves here: the config wins). Answers the list's id.
 */
static const char sl_pg_sql_upsert[] =
    "WITH l AS (INSERT INTO lists (name, sender, welcome_sms,"
    " welcome_email_subject, welcome_email, double_optin, questions,"
    " from_config, created_at, updated_at, time_zone) VALUES ($1::text,"
    " $2::text, $3::text, $4::text, $5::text, $6::bigint, $7::text, 1,"
    " $8::bigint, $8::bigint, $9::text) ON CONFLICT (name) DO UPDATE"
    " SET sender = excluded.sender, welcome_sms = excluded.welcome_sms,"
    " welcome_email_subject = excluded.welcome_email_subject,"
    " welcome_email = excluded.welcome_email,"
    " double_optin = excluded.double_optin, questions = excluded.questions,"
    " from_config = 1, updated_at = excluded.updated_at,"
    " time_zone = excluded.time_zone"
    " WHERE (lists.sender, lists.welcome_sms, lists.welcome_email_subject,"
    " lists.welcome_email, lists.double_optin, lists.questions,"
    " lists.from_config, lists.time_zone) IS DISTINCT FROM"
    " (excluded.sender, excluded.welcome_sms,"
    " excluded.welcome_email_subject, excluded.welcome_email,"
    " excluded.double_optin, excluded.questions, 1::bigint,"
    " excluded.time_zone) RETURNING id),"
    " i AS MATERIALIZED (SELECT id FROM l UNION ALL SELECT id FROM lists"
    " WHERE name = $1::text AND NOT EXISTS (SELECT 1 FROM l)),"
    " kd AS (DELETE FROM list_keywords WHERE list_id IN (SELECT id FROM i)"
    " AND keyword <> ALL ($10::text[])),"
    " ki AS (INSERT INTO list_keywords (keyword, list_id)"
    " SELECT k, (SELECT id FROM i) FROM unnest($10::text[]) AS k"
    " ON CONFLICT (keyword) DO UPDATE SET list_id = excluded.list_id"
    " WHERE list_keywords.list_id <> excluded.list_id)"
    " SELECT (SELECT id FROM i)";
/*
 * A keyword of the config ($1) that a list made through the API holds,
 * unless that list is one of the config's ($2, names: it is adopted):
 * the first, by keyword, with its list.
 */
#define SL_PG_TAKEN                                                     \
	"SELECT k.keyword, k.list_id FROM list_keywords k JOIN lists l" \
	" ON l.id = k.list_id WHERE l.from_config = 0"                  \
	" AND k.keyword = ANY ($1::text[]) AND l.name <> ALL ($2::text[])"
static const char sl_pg_sql_taken[] =
    SL_PG_TAKEN " ORDER BY k.keyword COLLATE \"C\" LIMIT 1";
/* Fails the group (division by zero) when there is such a keyword. */
static const char sl_pg_sql_taken_stop[] =
    "SELECT 1 / (CASE WHEN EXISTS (" SL_PG_TAKEN ") THEN 0 ELSE 1 END)";
/* Config lists no longer in any of $1 (names): unmarked, keywords gone. */
static const char sl_pg_sql_gone[] =
    "WITH g AS (UPDATE lists SET from_config = 0, updated_at = $2::bigint"
    " WHERE from_config = 1 AND name <> ALL ($1::text[]) RETURNING id)"
    " DELETE FROM list_keywords WHERE list_id IN (SELECT id FROM g)";

/* The first error any statement of the sync answered. */
struct sl_pg_sync {
	char error[256];
	const struct list_def *defs; /* the config's */
	size_t n;
	char taken[512]; /* a keyword an API list holds: the start's error */
};

static void sl_pg_answer(void *, const struct pg_answer *);

/* The answer of sl_pg_sql_taken: SQLite's refusal, if any. */
static void
sl_pg_taken_answer(void *arg, const struct pg_answer *a)
{
	struct sl_pg_sync *s = arg;
	const char *k, *claim = "?";
	size_t i;

	if (a->error != NULL || PQntuples(a->res) != 1) {
		sl_pg_answer(arg, a);
		return;
	}
	k = PQgetvalue(a->res, 0, 0);
	for (i = 0; i < s->n; i++)
		if (store_lists_find_kw(&s->defs[i], k))
			claim = s->defs[i].name;
	snprintf(s->taken, sizeof(s->taken),
	    "keyword %s of [list %s] belongs to list %s (created through the "
	    "API)",
	    k, claim, PQgetvalue(a->res, 0, 1));
}

static void
sl_pg_answer(void *arg, const struct pg_answer *a)
{
	struct sl_pg_sync *s = arg;

	if (a->error != NULL && s->error[0] == '\0')
		snprintf(s->error, sizeof(s->error), "sync lists: %s",
		    a->error);
}

/* A text array literal of n strings (none NULL). Malloc'd. */
char *
sl_pg_array(const char *const *v, size_t n)
{
	size_t i, len = 3;
	const char *p;
	char *out, *o;

	for (i = 0; i < n; i++)
		len += 2 * strlen(v[i]) + 3;
	o = out = xmalloc(len);
	*o++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		for (p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

/* One list's upsert, sent in the group. */
static int
sl_pg_send_list(struct store *st, const struct list_def *d, const char *now,
    struct sl_pg_sync *s, char *err, size_t errlen)
{
	char *q, *kw;
	const char *v[10];
	int rc;

	if ((q = store_lists_questions(d, err, errlen)) == NULL)
		return -1;
	kw = sl_pg_array(d->keywords, d->nkeywords);
	v[0] = d->name;
	v[1] = d->sender;
	v[2] = d->welcome_sms;
	v[3] = d->welcome_email_subject;
	v[4] = d->welcome_email;
	v[5] = d->double_optin ? "1" : "0";
	v[6] = q;
	v[7] = now;
	v[8] = d->time_zone;
	v[9] = kw;
	rc = store_pg_group_send(st,
	    &(struct pg_query){.sql = sl_pg_sql_upsert,
		.nparams = 10,
		.values = v,
		.done = sl_pg_answer,
		.arg = s},
	    err, errlen);
	free(kw);
	free(q);
	return rc;
}

/*
 * The sync in one group: the lock, one upsert per list, the lists gone;
 * then, since nothing is served yet, waits for its commit.
 */
static int
store_lists_sync_pg(struct store *st, const struct list_def *defs, size_t n,
    int64_t now, char *err, size_t errlen)
{
	struct sl_pg_sync s = {.defs = defs, .n = n};
	const char **names = xcalloc(n + 1, sizeof(*names)), **kws;
	char nows[24], *all, *allkw;
	size_t i, j, nk = 0;
	int rc = 0;

	snprintf(nows, sizeof(nows), "%" PRId64, now);
	for (i = 0; i < n; i++) {
		names[i] = defs[i].name;
		nk += defs[i].nkeywords;
	}
	kws = xcalloc(nk + 1, sizeof(*kws));
	for (i = 0, nk = 0; i < n; i++)
		for (j = 0; j < defs[i].nkeywords; j++)
			kws[nk++] = defs[i].keywords[j];
	all = sl_pg_array(names, n);
	allkw = sl_pg_array(kws, nk);
	free(names);
	free(kws);
	if (store_pg_group_send(st, &(struct pg_query){.sql = SL_PG_SYNC_LOCK},
		err, errlen) == -1)
		rc = -1;
	/* a keyword an API list holds: told, and the group stopped */
	if (rc == 0)
		rc = store_pg_group_send(st,
		    &(struct pg_query){.sql = sl_pg_sql_taken,
			.nparams = 2,
			.values = (const char *[]){allkw, all},
			.done = sl_pg_taken_answer,
			.arg = &s},
		    err, errlen);
	if (rc == 0)
		rc = store_pg_group_send(st,
		    &(struct pg_query){.sql = sl_pg_sql_taken_stop,
			.nparams = 2,
			.values = (const char *[]){allkw, all},
			.done = sl_pg_answer,
			.arg = &s},
		    err, errlen);
	for (i = 0; i < n && rc == 0; i++)
		rc = sl_pg_send_list(st, &defs[i], nows, &s, err, errlen);
	if (rc == 0)
		rc = store_pg_group_send(st,
		    &(struct pg_query){.sql = sl_pg_sql_gone,
			.nparams = 2,
			.values = (const char *[]){all, nows},
			.done = sl_pg_answer,
			.arg = &s},
		    err, errlen);
	free(all);
	free(allkw);
	/* start-up: wait for the commit (nothing is served yet) */
	if (store_flush(st, err, errlen) == -1) {
		if (s.taken[0] != '\0' || s.error[0] != '\0')
			snprintf(err, errlen, "%s",
			    s.taken[0] != '\0' ? s.taken : s.error);
		return -1;
	}
	if (rc == 0 && (s.taken[0] != '\0' || s.error[0] != '\0')) {
		snprintf(err, errlen, "%s",
		    s.taken[0] != '\0' ? s.taken : s.error);
		return -1;
	}
	return rc;
}

#else /* !HAVE_LIBPQ */

static int
store_lists_sync_pg(struct store *st, const struct list_def *defs, size_t n,
    int64_t now, char *err, size_t errlen)
{
	(void)st, (void)defs, (void)n, (void)now;
	return store_no_libpq(err, errlen);
}

#endif /* HAVE_LIBPQ */
