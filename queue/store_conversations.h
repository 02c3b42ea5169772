/*
 * store_conversations.h - the staff inbox on the store: conversations
 * (one per member), their threads, staff notes, saved replies and the
 * full-text search over conversation messages (doc/conversations.md).
 *
 * Contract:
 *  - A conversation is made or reopened by store_inbound_link()
 *    (store_members.h) when a member's text is for the inbox; this module
 *    reads them and records what staff do: assign, close, reopen, read,
 *    notes, and replies (store_conv_replied() after the reply's
 *    queue_enqueue(), in the same group).
 *  - JSON answers follow the API's shapes (CONV_SUMMARY and the thread of
 *    /work/briefs/contract.md, doc/conversations.md); times are ISO 8601
 *    UTC strings. Member text is returned as stored: callers render it as
 *    text, never as markup.
 *  - The search text of a listing is user input: it is turned into FTS5
 *    phrases (each word quoted), so no FTS5 syntax reaches SQLite from a
 *    user; a query SQLite still refuses sets q->invalid (an API 422),
 *    never a store error.
 *  - Writes join the store's group transaction: callers answer from a
 *    store_on_commit() callback. Loop thread only. Errors: -1 with text
 *    in err; "not found" is a separate answer (0, or NULL with err
 *    empty), never an error.
 */
#ifndef OD_STORE_CONVERSATIONS_H
#define OD_STORE_CONVERSATIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;

#define CONV_NOTE_MAX	      4096 /* bytes of a note */
#define CONV_SAVED_NAME_MAX   100  /* bytes of a saved reply's name */
#define CONV_SAVED_BODY_MAX   2000 /* bytes of a saved reply's template */
#define CONV_SEARCH_MAX	      256  /* bytes of a search text */
#define CONV_PAGE_MAX	      200  /* conversations per page */
#define CONV_THREAD_MAX_ITEMS 1000 /* newest items of a thread shown */

/* Whom a listing's conversations are assigned to. */
enum conv_assigned {
	CONV_ASSIGNED_ANY = 0,
	CONV_ASSIGNED_NONE,  /* the unassigned pool */
	CONV_ASSIGNED_STAFF, /* conv_query.staff */
};

/* When the stale flag is computed: now and [conversations] stale_after. */
struct conv_clock {
	int64_t now;
	int64_t stale_after_ms;
};

/* A listing's filters and page (GET /api/v1/conversations). */
struct conv_query {
	const char *status; /* "open", "closed"; NULL = both */
	bool unread;	    /* only unread > 0 */
	enum conv_assigned assigned;
	int64_t staff;	   /* CONV_ASSIGNED_STAFF: whose */
	int64_t list_id;   /* members on that list (not left); 0 = any */
	int64_t alert_id;  /* attributed to that alert; 0 = any */
	int64_t member_id; /* that member's; 0 = any */
	bool stale;	   /* only stale ones */
	const char *q;	   /* search text; NULL = none */
	const char *after; /* cursor from an earlier page's "next"; NULL */
	unsigned limit;	   /* 1..CONV_PAGE_MAX */
	struct conv_clock clock;
	bool invalid; /* out: q or after cannot be used (err says why) */
};

/*
 * One page, newest activity first: {"conversations": [CONV_SUMMARY],
 * "next": cursor or null}. NULL on error (err set); a refused search text
 * or cursor sets q->invalid too.
 */
json_t *store_conv_list(struct store *st, struct conv_query *q, char *err,
    size_t errlen);
/* One CONV_SUMMARY; NULL if absent (err empty) or on error (err set). */
json_t *store_conv_summary(struct store *st, int64_t id,
    const struct conv_clock *clock, char *err, size_t errlen);
/*
 * The summary plus "sender" and "items": messages both ways and notes,
 * oldest first (the newest CONV_THREAD_MAX_ITEMS of them). NULL as above.
 */
json_t *store_conv_thread(struct store *st, int64_t id,
    const struct conv_clock *clock, char *err, size_t errlen);

/* What a state change of a conversation sets. */
enum conv_op {
	CONV_OP_ASSIGN = 0, /* assigned_staff = staff (0: the pool) */
	CONV_OP_CLOSE,
	CONV_OP_REOPEN,
	CONV_OP_READ,	 /* unread = 0 */
	CONV_OP_REPLIED, /* a staff reply left now: last_out_at, unread 0 */
};

struct conv_change {
	enum conv_op op;
	int64_t staff; /* CONV_OP_ASSIGN */
	int64_t now;
};

/* Applies c to conversation id: 1, 0 if there is none, -1. */
int store_conv_change(struct store *st, int64_t id, const struct conv_change *c,
    char *err, size_t errlen);
/* 1 if staff member id exists, 0 if not, -1. */
int store_conv_staff_exists(struct store *st, int64_t id, char *err,
    size_t errlen);

/* A note to add. */
struct conv_note {
	int64_t conversation;
	int64_t staff; /* 0 = none (a token without a staff member) */
	const char *body;
	int64_t now;
};

/* Adds a note: its id, 0 if the conversation does not exist, -1. */
int64_t store_conv_note_add(struct store *st, const struct conv_note *n,
    char *err, size_t errlen);
/* A note as {"kind": "note", "id", "body", "staff", "created_at"}. */
json_t *store_conv_note_json(struct store *st, int64_t id, char *err,
    size_t errlen);

/* Where a staff reply to a conversation goes. */
struct conv_target {
	int64_t member;
	char phone[32];	      /* E.164; "" = the member has none */
	char sender[64];      /* the sender the member last texted; "" */
	char list_sender[64]; /* a sender of a list the member is on; "" */
	bool sms_opted_out;
};

/* Fills *t for conversation id: 1, 0 if there is none, -1. */
int store_conv_target(struct store *st, int64_t id, struct conv_target *t,
    char *err, size_t errlen);

/* ---- Saved replies ----------------------------------------------------- */

/* A saved reply to write: name and body (a template). */
struct saved_reply {
	const char *name;
	const char *body;
	int64_t now;
	bool conflict; /* out: the name is taken */
};

/* {"saved_replies": [{"id", "name", "body"}]}, by name. */
json_t *store_saved_replies_json(struct store *st, char *err, size_t errlen);
/* One {"id", "name", "body"}; NULL if absent (err empty) or on error. */
json_t *store_saved_reply_json(struct store *st, int64_t id, char *err,
    size_t errlen);
/* The body of saved reply id (new string): NULL if absent (err empty). */
char *store_saved_reply_body(struct store *st, int64_t id, char *err,
    size_t errlen);
/* Creates one: its id, or -1 (r->conflict when the name is taken). */
int64_t store_saved_reply_create(struct store *st, struct saved_reply *r,
    char *err, size_t errlen);
/*
 * Updates the fields of r that are not NULL: 1, 0 if there is none, -1
 * (r->conflict when the name is taken).
 */
int store_saved_reply_update(struct store *st, int64_t id,
    struct saved_reply *r, char *err, size_t errlen);
/* Deletes one: 1, 0 if there is none, -1. */
int store_saved_reply_delete(struct store *st, int64_t id, char *err,
    size_t errlen);

/* ---- Search text ------------------------------------------------------- */

/*
 * Turns what a person typed into an FTS5 query of plain words: each
 * word (split at white space) becomes a quoted string, inner '"'
 * doubled, so the words must all appear; a "double quoted" run stays one
 * phrase.
 * Bare words match as prefixes ("meet" finds "meeting"). Text without a
 * word gives "" (matches nothing). Writes at most outlen bytes; -1 when
 * text is over CONV_SEARCH_MAX bytes or the result does not fit. Pure.
 */
int store_conv_fts_query(const char *text, char *out, size_t outlen);

#endif
