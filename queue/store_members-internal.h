/*
 * store_members-internal.h - what the files of the member store share
 * (store_members.c, store_consent.c, store_subscriptions.c,
 * store_imports.c, store_inbound.c, store_email.c): the member columns
 * the JSON of a member is read from, what a member write binds, the
 * argument checks, and the writes one topic makes for another (an import
 * creates members and subscriptions; a subscription appends consent
 * events).
 *
 * Contract:
 *  - Loop thread only, inside the store's operations, like
 *    store_members.h; errors are 0 / -1 with text in err.
 *  - The write helpers run inside the caller's queue_op_begin() /
 *    queue_op_end() and never open an operation themselves.
 */
#ifndef OD_STORE_MEMBERS_INTERNAL_H
#define OD_STORE_MEMBERS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store.h"
#include "store_members.h"

#define SM_LIMIT_MAX 1000 /* rows per page of any member listing */

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

/* What a member write binds: texts borrowed from f or owned JSON text. */
struct sm_bind {
	unsigned set;
	int64_t now; /* the write's time (created_at / updated_at) */
	char *attrs; /* owned: json_dumps() */
	char *tags;  /* owned: deduplicated array */
};

/* ---- store_members.c ---------------------------------------------------- */

/*
 * Finds the member by address, or creates it at w->now; its id in w->id.
 * 1 created (a row written), 0 found, -1 error.
 */
int store_members_ensure(struct store *st, enum channel ch, const char *address,
    struct member_write *w, char *err, size_t errlen);
/* *found: member id exists. 0 / -1. */
int store_members_exists(struct store *st, int64_t id, bool *found, char *err,
    size_t errlen);
/* -1 with "<what>: ..." in err unless address is a non-empty string. */
int store_members_check_addr(const char *what, const char *address, char *err,
    size_t errlen);
/* -1 with "<what>: ..." in err unless ch is SMS or email. */
int store_members_check_ch(enum channel ch, const char *what, char *err,
    size_t errlen);
/* An opt-out of 'address': cc->ch, the address, cc->source. 0 / -1. */
int store_members_check_optout(const char *address,
    const struct consent_change *cc, char *err, size_t errlen);
/* Lengths and JSON types of the fields f sets. 0 / -1. */
int store_members_check_fields(const struct member_fields *f, char *err,
    size_t errlen);
/*
 * The JSON texts f's attributes and tags bind as (tags deduplicated, in
 * order), under the 'set' bits 'set', into b (which owns them: clear it
 * with store_members_bind_clear()); b->now is 0 for the caller to set.
 * 0 / -1.
 */
int store_members_prepare(const struct member_fields *f, unsigned set,
    struct sm_bind *b, char *err, size_t errlen);
/* Frees what b owns. */
void store_members_bind_clear(struct sm_bind *b);
/* Inserts a member with the fields of b->set at b->now: its id, or -1. */
int64_t store_members_insert(struct store *st, const struct member_fields *f,
    const struct sm_bind *b, char *err, size_t errlen);
/*
 * Updates member id with b->set at b->now: 1 a value differed, 0 none
 * did, -1 error.
 */
int store_members_update_row(struct store *st, int64_t id,
    const struct member_fields *f, const struct sm_bind *b, char *err,
    size_t errlen);
/* The member in stmt's current row (SM_COLS from column 0), a new
 * reference. */
json_t *store_members_row(sqlite3_stmt *stmt);
/* id as the API's cursor string, in buf. */
char *store_members_cursor(int64_t id, char *buf, size_t len);

/* ---- store_consent.c ---------------------------------------------------- */

/* Appends cc as a consent event of 'action'; cc->list, cc->message_id 0
 * and cc->detail NULL = none. */
int store_members_event(struct store *st, const struct consent_change *cc,
    enum consent_action action, char *err, size_t errlen);

/* ---- store_subscriptions.c ---------------------------------------------- */

/* "pending" / "active" / "left" to enum sub_status; -1 if none. */
int store_members_sub_parse(const char *s);
/*
 * One subscription write and what it did. 'wrote' and 'refused' are only
 * ever set, so one sm_sub can gather several writes of one operation.
 */
struct sm_sub {
	int cur;		/* in: the current status, -1 = none */
	enum sub_status status; /* in: the status asked for */
	enum sub_change change; /* out: what was done */
	bool wrote;		/* out: a row was written */
	bool refused;		/* out (imports): opted out or left, so not
				 * subscribed again */
};

/*
 * The write of store_subscribe() for cc with s->cur and s->status, inside
 * the caller's operation. Sets s->change, and s->wrote when it wrote.
 */
int store_members_sub_apply(struct store *st, const struct consent_change *cc,
    struct sm_sub *s, char *err, size_t errlen);

/* ---- store_lists.c (shared with store_lists_pg.c) ------------------------ */

/*
 * A subscription's state as a list's counts and export see it: 1 left, 2
 * opted_out (the member opted out of its channel; the row is kept and
 * applies again on opt-in), 3 pending, 4 active, over subscriptions s and
 * the opt-outs so and eo; store_lists_state() names them.
 */
#define STORE_LISTS_STATE_SQL                                           \
	"CASE WHEN s.status = 'left' THEN 1"                            \
	" WHEN (s.channel = 'sms' AND so.member_id IS NOT NULL)"        \
	" OR (s.channel = 'email' AND eo.member_id IS NOT NULL) THEN 2" \
	" WHEN s.status = 'pending' THEN 3 ELSE 4 END"
/* The name of a STORE_LISTS_STATE_SQL value ("unknown" if none). */
const char *store_lists_state(int v);
/* Checks a definition's lengths, keywords and questions: 0 / -1. */
int store_lists_check(const struct list_def *d, char *err, size_t errlen);
/* The questions as stored: [{"field", "prompt"}] (malloc'd), or NULL. */
char *store_lists_questions(const struct list_def *d, char *err, size_t errlen);
/* A list's CSV export rows (then its WHERE on s.list_id and the page). */
#define STORE_LISTS_EXPORT_FROM                                                 \
	"SELECT m.id, m.phone, m.email, m.first_name, m.last_name, m.zip,"      \
	" m.time_zone, m.tags, m.attributes, s.channel, " STORE_LISTS_STATE_SQL \
	", s.source, s.created_at,"                                             \
	" so.member_id IS NOT NULL, eo.member_id IS NOT NULL"                   \
	" FROM subscriptions s JOIN members m ON m.id = s.member_id"            \
	" LEFT JOIN sms_optout so ON so.member_id = m.id"                       \
	" LEFT JOIN email_optout eo ON eo.member_id = m.id"
/* The header of a list's CSV export (store_export_list()). */
extern const char *const store_lists_export_head[];
#define SL_EXPORT_NCOLS 15

#ifdef HAVE_LIBPQ
/* A PostgreSQL text array literal of n strings (none NULL); malloc'd. */
char *sl_pg_array(const char *const *v, size_t n);
/* store_members_pg.c: the member of row 'row' (SM_COLS) as JSON. */
struct pg_result;
json_t *smp_member_row(const struct pg_result *res, int row);
#endif

#endif
