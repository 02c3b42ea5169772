/*
 * store_inbound.c - what a received text changes on its member: the
 * pending follow-up question (member_prompts) and the link of the inbound
 * message to its member and open conversation (unread count, last message
 * time).
 */

#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

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
int64_t
store_inbound_link(struct store *st, const struct inbound_link_req *req,
    char *err, size_t errlen)
{
	int64_t msg_id = req->msg;
	int64_t member = req->member;
	bool conversation = req->conversation;
	sqlite3_stmt *stmt;
	int64_t conv = 0;
	bool wrote = false;
	bool found;
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
	stmt = store_stmt(st, store_members_sql_in_member, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, msg_id);
	sqlite3_bind_int64(stmt, 2, member);
	if ((rc = queue_step_done(st, stmt, "link message", err, errlen)) == -1)
		return -1;
	wrote = sqlite3_changes(store_db(st)) > 0;
	if (!conversation || conv != 0)
		return conversation ? conv : 0;
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
	sqlite3_bind_int64(stmt, 2, req->now);
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
	if (queue_op_end(st, rc, wrote) == -1)
		return -1;
	return conv;
}
