/*
 * store_inbound.c - what a received text changes on its member: the
 * pending follow-up question (member_prompts) and the link of the inbound
 * message to its member and conversation (unread count, last message
 * time, the sender it came in on, and what it answers). A text linked to
 * a conversation joins the search index (conversation_fts) at its group's
 * commit, with the other texts of the group, in the same transaction.
 */

#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "queue-internal.h"
#include "store-internal.h"
#include "store_members-internal.h"
#include "store_members.h"

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
/* The member's conversation, open or closed (one per member). */
static const char store_members_sql_conv_latest[] =
    "SELECT id FROM conversations WHERE member_id = ?1"
    " ORDER BY id DESC LIMIT 1";
/* ?2 now, ?3 sender, ?4 alert, ?5 the message the text answers. */
static const char store_members_sql_conv_new[] =
    "INSERT INTO conversations (member_id, status, unread, last_message_at,"
    " created_at, last_in_at, sender, alert_id, reply_to, updated_at)"
    " VALUES (?1, 'open', 1, ?2, ?2, ?2, ?3, ?4, ?5, ?2)";
static const char store_members_sql_conv_bump[] =
    "UPDATE conversations SET status = 'open', unread = unread + 1,"
    " last_message_at = ?2, last_in_at = ?2, sender = coalesce(?3, sender),"
    " alert_id = coalesce(?4, alert_id), reply_to = coalesce(?5, reply_to),"
    " updated_at = ?2 WHERE id = ?1";
/* The member too: one row write for a text that joins a conversation. */
static const char store_members_sql_in_conv[] =
    "UPDATE messages SET conversation_id = ?2, reply_to = ?3, member_id = ?4"
    " WHERE id = ?1";
/* The texts a group linked join the search index together, just before
 * its COMMIT (store_defer_id(); 008_fts_batch.sql says why). */
static const char store_members_sql_in_fts[] =
    "INSERT INTO conversation_fts (rowid, body) SELECT id, body FROM messages"
    " WHERE id IN (SELECT value FROM json_each(?1))"
    " AND conversation_id IS NOT NULL";
/* What a text answers: the member's last alert message that left, and
 * their last message that left at all (messages_member). */
static const char store_members_sql_attr_alert[] =
    "SELECT id, alert_id, updated_at FROM messages WHERE member_id = ?1"
    " AND direction = 'out' AND alert_id IS NOT NULL"
    " AND status IN ('sent', 'delivered') ORDER BY id DESC LIMIT 1";
static const char store_members_sql_attr_last[] =
    "SELECT id FROM messages WHERE member_id = ?1 AND direction = 'out'"
    " AND status IN ('sent', 'delivered') ORDER BY id DESC LIMIT 1";

/* What an inbound text answers (store_inbound_attribute()). */
struct inbound_attr {
	int64_t alert;	 /* 0 = no alert message within the window */
	int64_t message; /* the message it answers; 0 = none */
};

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
 * What req's text answers: the last alert message within the window,
 * else the last message the member got. 0 / -1.
 */
static int
store_inbound_attribute(struct store *st, const struct inbound_link_req *req,
    struct inbound_attr *a, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	bool found;
	int rc;

	memset(a, 0, sizeof(*a));
	if ((stmt = store_stmt(st, store_members_sql_attr_alert, err,
		 errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, req->member);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW &&
	    sqlite3_column_int64(stmt, 2) >= req->now - req->window_ms) {
		a->message = sqlite3_column_int64(stmt, 0);
		a->alert = sqlite3_column_int64(stmt, 1);
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_errmsg(st, "attribute message", err, errlen);
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (a->alert != 0)
		return 0;
	if ((stmt = store_stmt(st, store_members_sql_attr_last, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, req->member);
	return queue_int_row(st, stmt, &a->message, &found, err, errlen);
}

/*
 * Appends message req->msg to the member's conversation (made, or bumped
 * and reopened) with what it answers. The conversation's id, or -1 (the
 * caller rolls back).
 */
static int64_t
store_inbound_converse(struct store *st, const struct inbound_link_req *req,
    char *err, size_t errlen)
{
	struct inbound_attr a;
	sqlite3_stmt *stmt;
	int64_t conv = 0;
	bool found;

	if (store_inbound_attribute(st, req, &a, err, errlen) == -1 ||
	    (stmt = store_stmt(st, store_members_sql_conv_latest, err,
		 errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, req->member);
	if (queue_int_row(st, stmt, &conv, &found, err, errlen) == -1)
		return -1;
	stmt = store_stmt(st,
	    found ? store_members_sql_conv_bump : store_members_sql_conv_new,
	    err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, found ? conv : req->member);
	sqlite3_bind_int64(stmt, 2, req->now);
	queue_bind_text(stmt, 3, req->sender);
	queue_bind_id(stmt, 4, a.alert);
	queue_bind_id(stmt, 5, a.message);
	if (queue_step_done(st, stmt, "update conversation", err, errlen) == -1)
		return -1;
	if (!found)
		conv = sqlite3_last_insert_rowid(store_db(st));
	if ((stmt = store_stmt(st, store_members_sql_in_conv, err, errlen)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, req->msg);
	sqlite3_bind_int64(stmt, 2, conv);
	queue_bind_id(stmt, 3, a.message);
	sqlite3_bind_int64(stmt, 4, req->member);
	if (queue_step_done(st, stmt, "link conversation", err, errlen) == -1 ||
	    store_defer_id(st, store_members_sql_in_fts, req->msg, err,
		errlen) == -1)
		return -1;
	return conv;
}

/*
 * A message already in a conversation keeps it (a repeated call counts
 * nothing twice). A text that joins one gets its member with the same
 * row write (store_inbound_converse()).
 */
int64_t
store_inbound_link(struct store *st, const struct inbound_link_req *req,
    char *err, size_t errlen)
{
	int64_t msg_id = req->msg;
	sqlite3_stmt *stmt;
	int64_t conv = 0;
	int rc;

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
	if (!req->conversation || conv != 0) {
		stmt = store_stmt(st, store_members_sql_in_member, err, errlen);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, msg_id);
		sqlite3_bind_int64(stmt, 2, req->member);
		if (queue_step_done(st, stmt, "link message", err, errlen) ==
		    -1)
			return -1;
		return req->conversation ? conv : 0;
	}
	/* a failure after a write rolls the group back */
	if ((conv = store_inbound_converse(st, req, err, errlen)) == -1)
		return queue_op_end(st, -1, true);
	return conv;
}
