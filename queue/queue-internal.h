/*
 * queue-internal.h - what the two halves of the queue module share:
 * queue.c (enqueue, claims, the outcome of a send, recovery, expiry and
 * the read side) and queue_webhooks.c (inbound messages and delivery
 * reports, including the early reports queue_mark_sent() applies). Only
 * these two files include this; other modules use queue.h.
 *
 * Contract:
 *  - An operation's writes run between queue_op_begin(), which joins or
 *    opens the store's group transaction, and queue_op_end(), which rolls
 *    the whole group back when the operation failed after changing rows
 *    (see the top of queue.c). The other helpers here neither begin nor
 *    end anything: they run inside the caller's operation.
 *  - Statements come from store_stmt() (store-internal.h), cached by the
 *    address of their SQL literal; each literal is static in the one file
 *    that runs it.
 *  - Every state change appends its history row with queue_event_add().
 *  - Loop thread only. Errors: 0 / -1 with text in err; nothing logs.
 */
#ifndef OD_QUEUE_INTERNAL_H
#define OD_QUEUE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "message.h"
#include "queue.h"
#include "store-internal.h"

/* Joins (or opens) the group transaction before an operation's first
 * write. 0 / -1. */
int queue_op_begin(struct store *st, char *err, size_t errlen);
/*
 * Ends an operation: if it failed (rc == -1) after changing rows
 * ('wrote'), rolls the group back. Returns rc; err still says what failed.
 */
int queue_op_end(struct store *st, int rc, bool wrote);
/*
 * Steps a bound write to completion and resets stmt. 0, or -1 with
 * "what: SQLite message" in err.
 */
int queue_step_done(struct store *st, sqlite3_stmt *stmt, const char *what,
    char *err, size_t errlen);
/*
 * Steps a bound one-column integer query into *out and resets stmt.
 * *found is false when there is no row or the value is NULL. 0 / -1.
 */
int queue_int_row(struct store *st, sqlite3_stmt *stmt, int64_t *out,
    bool *found, char *err, size_t errlen);
/* Binds s to parameter i, or NULL when s is NULL. stmt borrows s, which
 * must outlive the step. */
void queue_bind_text(sqlite3_stmt *stmt, int i, const char *s);
/* Binds an optional id or time to parameter i: 0 binds NULL. */
void queue_bind_id(sqlite3_stmt *stmt, int i, int64_t v);
/* One history row of a message: what it became, why, and when. */
struct queue_event {
	enum msg_status status;
	int code;	  /* provider/SMTP code; 0 = none */
	const char *text; /* short reason; NULL = none */
	int64_t now;
};
/*
 * Appends the history row ev of message id (message_events). 0 / -1.
 */
int queue_event_add(struct store *st, int64_t id, const struct queue_event *ev,
    char *err, size_t errlen);
/*
 * Column 'col' of the current row as a new JSON value for the API: text
 * (null when NULL or not UTF-8, which jansson refuses), an integer, or
 * milliseconds since the epoch as ISO 8601 UTC; null when NULL. Shared by
 * every queue/ module that answers in JSON.
 */
json_t *queue_json_text(sqlite3_stmt *stmt, int col);
json_t *queue_json_int(sqlite3_stmt *stmt, int col);
json_t *queue_json_time(sqlite3_stmt *stmt, int col);
/*
 * After queue_mark_sent() recorded r->provider and r->provider_id for
 * message id: applies the delivery reports kept for it, then drops them.
 * Runs inside the caller's operation (which rolls back on -1). 0 / -1.
 */
int queue_early_apply(struct store *st, int64_t id,
    const struct queue_result *r, int64_t now, char *err, size_t errlen);
/*
 * The input checks of queue_enqueue(), queue_status_update() and
 * queue_inbound_store(), shared with their PostgreSQL twins
 * (queue_pg.c). 0, or -1 with the field and the problem in err.
 */
int queue_check_new(const struct queue_new *m, char *err, size_t errlen);
int queue_check_report(const char *provider, const struct status_update *u,
    char *err, size_t errlen);
int queue_check_inbound(const char *sender, const char *provider,
    const struct in_msg *m, char *err, size_t errlen);

#endif
