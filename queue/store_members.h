/*
 * store_members.h - members, lists, subscriptions and their consent, as
 * stored (doc/queue.md). The daemon's inbound routing (inbound.c), the
 * members API (members.c), imports (import.c) and email unsubscribes use
 * these functions; none of them sees SQL.
 *
 * Contract:
 *  - Loop thread only; writes join the store's group transaction
 *    (store_write_begin()); an operation that fails after it changed rows
 *    rolls the whole group back, as queue.c does.
 *  - Every opt-in, confirmation and opt-out appends a consent_events row
 *    with its source and the message that carried it: the log is the
 *    proof of consent and is never rewritten (triggers refuse it).
 *  - Phones are stored E.164 ("+14155550100"), emails lower-cased; the
 *    callers normalize (phone.h) before they call. These functions check
 *    only lengths.
 *  - Opt-out is global per channel, not per list: STOP leaves the
 *    subscriptions as they are, and START (store_member_optin()) makes
 *    them count again. Whether a member can be messaged is always
 *    "subscribed AND not opted out" (AND not bouncing, for email).
 *  - Functions returning json_t return a new reference (NULL with err set
 *    on failure; NULL with err empty means "not found").
 *  - Errors: 0 / -1 with text in err. A refusal the caller should show
 *    the user (a phone that belongs to another member, a keyword taken)
 *    also sets *conflict when the function takes one, so the API can
 *    answer 409 instead of 503.
 */
#ifndef OD_STORE_MEMBERS_H
#define OD_STORE_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "message.h"

struct store;

/* Consent sources (consent_events.source, *_optout.source). */
#define CONSENT_KEYWORD	 "keyword"  /* a text from the member */
#define CONSENT_API	 "api"	    /* the admin API */
#define CONSENT_IMPORT	 "import"   /* a CSV import (detail: its source) */
#define CONSENT_WEB	 "web"	    /* unsubscribe / confirmation page */
#define CONSENT_PROVIDER "provider" /* a carrier opt-out error (21610) */

enum consent_action {
	CONSENT_OPT_IN = 0,
	CONSENT_OPT_OUT,
	CONSENT_CONFIRM,
};

/*
 * One change of a member's consent: whose, on which channel and list, and
 * what the consent log records about it. Callers fill it with designated
 * initializers; fields left out are 0 / NULL.
 */
struct consent_change {
	int64_t member;	    /* member id (store_member_optout: unused) */
	int64_t list;	    /* list id; 0 for a channel's opt-out / opt-in */
	enum channel ch;    /* CHANNEL_SMS or CHANNEL_EMAIL */
	const char *source; /* required: one of CONSENT_* above */
	int64_t message_id; /* the message that carried it, 0 = none */
	const char *detail; /* free text for the log (keyword, ...), or NULL */
	int64_t now;	    /* ms since the epoch */
};

/*
 * Records that 'address' (E.164 number or email) opted out of channel
 * cc->ch, from cc->source ("provider", "keyword", "api", "import", "web"),
 * carried by cc->message_id. Creates the member if unknown. Idempotent: an
 * existing opt-out is kept as it is and no event is added.
 */
int store_member_optout(struct store *st, const char *address,
    const struct consent_change *cc, char *err, size_t errlen);

/* ---- Members ---------------------------------------------------------- */

/* Field bits of struct member_fields.set. */
#define MF_PHONE       0x001u
#define MF_EMAIL       0x002u
#define MF_FIRST_NAME  0x004u
#define MF_LAST_NAME   0x008u
#define MF_ZIP	       0x010u
#define MF_TIME_ZONE   0x020u
#define MF_ATTRS       0x040u /* attributes: replaced by 'attrs' */
#define MF_TAGS	       0x080u /* tags: replaced by 'tags' */
#define MF_ATTRS_MERGE 0x100u /* attributes: 'attrs' merged (RFC 7396) */
#define MF_TAGS_ADD    0x200u /* tags: those of 'tags' added to the stored */

/*
 * The fields a create, update or import sets. Only fields whose MF_ bit is
 * in 'set' are written; a set field whose value is NULL is cleared (the
 * member must keep a phone or an email). Strings are borrowed.
 */
struct member_fields {
	unsigned set;
	const char *phone; /* E.164, already normalized */
	const char *email; /* already lower-cased */
	const char *first_name;
	const char *last_name;
	const char *zip;
	const char *time_zone;
	const json_t *attrs; /* JSON object (custom fields) */
	const json_t *tags;  /* JSON array of strings */
};

/*
 * One write of a member: when it happens (set by the caller) and what
 * came of it (filled by the store).
 */
struct member_write {
	int64_t now;   /* ms since the epoch: created_at / updated_at */
	int64_t id;    /* out: the member created or found (create, ensure) */
	bool changed;  /* out (update): a value differed */
	bool conflict; /* out (create, update): phone or email is another's */
};

/*
 * Finds the member by phone (SMS) or email into *id: 1 found, 0 none,
 * -1 error.
 */
int store_member_find(struct store *st, enum channel ch, const char *address,
    int64_t *id, char *err, size_t errlen);
/*
 * Finds or creates the member by address at w->now; its id in w->id.
 * 1 created, 0 found, -1 error.
 */
int store_member_ensure(struct store *st, enum channel ch, const char *address,
    struct member_write *w, char *err, size_t errlen);
/*
 * Creates a member at w->now; its id in w->id. Needs a phone or an email;
 * a phone or email that another member has fails with w->conflict set
 * and "phone +1... already belongs to member N" in err. 0 / -1.
 */
int store_member_create(struct store *st, const struct member_fields *f,
    struct member_write *w, char *err, size_t errlen);
/*
 * Updates member id with the fields in f->set at w->now. Same conflicts
 * as create; an absent member fails with err "no member N" and
 * w->conflict false. Changing the email clears 'bouncing' and its
 * failure count (the address was fixed). w->changed is set only if a
 * value differs. 0 / -1.
 */
int store_member_update(struct store *st, int64_t id,
    const struct member_fields *f, struct member_write *w, char *err,
    size_t errlen);
/*
 * The member as JSON: id, phone, email, first_name, last_name, zip,
 * time_zone, attributes {}, tags [], channels {sms {opted_out,
 * opted_out_at, source}, email {opted_out, opted_out_at, source, bouncing,
 * failures}} ("email" is the address, so the channel states are grouped),
 * subscriptions [{list_id, list, channel, status, source, created_at,
 * updated_at}], created_at, updated_at (ISO 8601 UTC).
 */
json_t *store_member_json(struct store *st, int64_t id, char *err,
    size_t errlen);

/* A member search; all criteria optional and ANDed. */
struct member_query {
	const char *phone; /* exact E.164 */
	const char *email; /* exact, lower-cased */
	const char *name;  /* case-insensitive substring of first or last */
	const char *tag;   /* members whose tags contain it */
	int64_t list_id;   /* subscribed (any status but left) to it; 0 any */
	int64_t after;	   /* cursor: ids greater than this */
	unsigned limit;	   /* 1..1000 */
};
/*
 * {"members": [member json without subscriptions], "next_cursor": "ID"
 * or null}. Ordered by id.
 */
json_t *store_member_search(struct store *st, const struct member_query *q,
    char *err, size_t errlen);

/* Deletes nothing: members are never deleted (the consent log refers to
 * them). */

/* ---- Opt-out and opt-in by member id ------------------------------------ */

/*
 * Opts member cc->member out of cc->ch (see store_member_optout()).
 * *changed is set when the member was not opted out before (and the event
 * added). The event has no list, whatever cc->list holds.
 */
int store_member_optout_id(struct store *st, const struct consent_change *cc,
    bool *changed, char *err, size_t errlen);
/*
 * Opts member cc->member back in to cc->ch: removes the opt-out and
 * appends an opt_in event (no list). The member's subscriptions count
 * again. *changed only if the member was opted out.
 */
int store_member_optin(struct store *st, const struct consent_change *cc,
    bool *changed, char *err, size_t errlen);
/* 1 opted out of ch, 0 not, -1 error. */
int store_member_is_opted_out(struct store *st, int64_t id, enum channel ch,
    char *err, size_t errlen);

/* ---- Lists --------------------------------------------------------------- */

#define LIST_NAME_MAX	 64
#define LIST_KEYWORD_MAX 32

/* A follow-up question: the member field its answer fills, and the text. */
struct list_question {
	const char *field; /* "first_name", "last_name", "zip" or "email" */
	const char *prompt;
};

/* A list as written; strings borrowed. NULL text = none. */
struct list_def {
	const char *name;
	const char *const *keywords; /* upper-case, unique across lists */
	size_t nkeywords;
	const char *sender; /* NULL = the default sender */
	const char *welcome_sms;
	const char *welcome_email_subject;
	const char *welcome_email;
	bool double_optin;
	const struct list_question *questions;
	size_t nquestions;
	/* quiet hours fallback for its members (an IANA name the caller
	 * checked with quiet_zone_valid()); NULL = none */
	const char *time_zone;
};

/* A list as read back; owned, free with list_info_clear(). */
struct list_info {
	int64_t id;
	char name[LIST_NAME_MAX + 1];
	char *sender; /* NULL = default */
	char *welcome_sms;
	char *welcome_email_subject;
	char *welcome_email;
	bool double_optin;
	bool from_config;
	struct list_question *questions; /* field/prompt owned */
	size_t nquestions;
	char *time_zone; /* NULL = none */
};
void list_info_clear(struct list_info *li);

/*
 * Makes the config's lists the stored truth at start: each def is
 * created or updated (from_config = 1) with exactly its keywords. Lists
 * made through the API are left alone, except that a keyword the config
 * claims fails the start with "keyword K of [list NAME] belongs to list
 * M (created through the API)". Lists that left the config keep their
 * members and stay (from_config = 0) but lose their keywords (nothing in
 * the config answers them any more); their time_zone stays. A stored
 * list with a config list's name becomes that config list (same id,
 * members kept).
 */
int store_list_sync(struct store *st, const struct list_def *defs, size_t n,
    int64_t now, char *err, size_t errlen);
/*
 * Creates a list: returns its id, or -1 (a taken name or keyword sets
 * *conflict).
 */
int64_t store_list_create(struct store *st, const struct list_def *d,
    int64_t now, bool *conflict, char *err, size_t errlen);
/*
 * Replaces list id's definition with d (name may change; keywords
 * replaced) at w->now. A config list refuses with w->conflict ("list N
 * comes from the config file; edit [list NAME] there").
 */
/* A list write's time, and whether it was refused (a name or keyword
 * taken, a config list). */
struct list_write {
	int64_t now;   /* in */
	bool conflict; /* out */
};
int store_list_update(struct store *st, int64_t id, const struct list_def *d,
    struct list_write *w, char *err, size_t errlen);
/*
 * Deletes list id. Unless 'force', a list with subscriptions (any status
 * but left) is refused with *conflict ("list N has M members; use
 * force"). Consent events keep their list_id; pending follow-up
 * questions of the list are dropped.
 */
int store_list_delete(struct store *st, int64_t id, bool force, bool *conflict,
    char *err, size_t errlen);
/* Fills *out for list id; *found false if absent. */
int store_list_get(struct store *st, int64_t id, struct list_info *out,
    bool *found, char *err, size_t errlen);
/* The list a keyword (upper-case) or a name belongs to; *found false if
 * none. */
int store_list_by_keyword(struct store *st, const char *keyword, int64_t *id,
    bool *found, char *err, size_t errlen);
int store_list_by_name(struct store *st, const char *name, int64_t *id,
    bool *found, char *err, size_t errlen);
/*
 * A list as JSON: id, name, keywords [], sender, welcome_sms,
 * welcome_email_subject, welcome_email, double_optin, questions
 * [{field, prompt}], time_zone (null if none), from_config, counts
 * {active, pending, left} (of
 * subscriptions: a member on SMS and email counts twice), created_at,
 * updated_at. store_lists_json(): {"lists": [...]}.
 */
json_t *store_list_json(struct store *st, int64_t id, char *err, size_t errlen);
json_t *store_lists_json(struct store *st, char *err, size_t errlen);

/* ---- Subscriptions ----------------------------------------------------- */

enum sub_status {
	SUB_PENDING = 0, /* double opt-in: waiting for YES / the click */
	SUB_ACTIVE,
	SUB_LEFT,
};

/* What store_subscribe() did. */
enum sub_change {
	SUB_CHANGE_NEW = 0,   /* new subscription, now 'status' */
	SUB_CHANGE_REJOINED,  /* was left, now 'status' again */
	SUB_CHANGE_ALREADY,   /* already active (or pending, when pending
			       * was asked): nothing written */
	SUB_CHANGE_ACTIVATED, /* was pending, active asked: confirmed */
};

/*
 * Subscribes cc->member to cc->list on cc->ch with 'status' (SUB_PENDING
 * or SUB_ACTIVE). Appends an opt_in event with the list (confirm when a
 * pending one became active) unless nothing changed. Does not touch the
 * channel's opt-out: callers decide (a keyword join opts the member back
 * in; an import never does).
 */
int store_subscribe(struct store *st, const struct consent_change *cc,
    enum sub_status status, enum sub_change *change, char *err, size_t errlen);
/*
 * Sets cc->member's subscription to cc->list on cc->ch to left and
 * appends an opt_out event with the list. *changed only if it was not
 * left already. Absent: *changed false.
 */
int store_unsubscribe(struct store *st, const struct consent_change *cc,
    bool *changed, char *err, size_t errlen);
/* Which subscription: a member's, to a list, on a channel. */
struct sub_key {
	int64_t member;
	int64_t list;
	enum channel ch;
};
/* The subscription's status into *status: 1 found, 0 none, -1 error. */
int store_subscription_status(struct store *st, const struct sub_key *k,
    enum sub_status *status, char *err, size_t errlen);
/*
 * The member's most recent pending subscription on ch (the one a "YES"
 * confirms), its list into *list: 1 found, 0 none, -1 error.
 */
int store_subscription_pending(struct store *st, int64_t member,
    enum channel ch, int64_t *list, char *err, size_t errlen);
/* A page of a list's members. */
struct list_members_query {
	int64_t list;	    /* the list id */
	const char *status; /* pending, active or left; NULL: not left */
	int64_t after;	    /* cursor: member ids greater than this */
	unsigned limit;	    /* members (not rows), 1..1000 */
};
/*
 * {"members": [{member json without subscriptions, plus "subscription":
 * {channel, status, source, created_at}}], "next_cursor"}. Ordered by
 * member id after q->after.
 */
json_t *store_list_members_json(struct store *st,
    const struct list_members_query *q, char *err, size_t errlen);

/* ---- Follow-up questions (one pending question per member) -------------- */

struct member_prompt {
	int64_t list_id;
	unsigned index;	   /* into the list's questions */
	unsigned attempts; /* bad answers so far */
	int64_t asked_at;
};
int store_prompt_get(struct store *st, int64_t member,
    struct member_prompt *out, bool *found, char *err, size_t errlen);
/* Sets (replaces) the member's pending question. */
int store_prompt_set(struct store *st, int64_t member,
    const struct member_prompt *p, char *err, size_t errlen);
int store_prompt_clear(struct store *st, int64_t member, char *err,
    size_t errlen);

/* ---- Inbound messages and conversations -------------------------------- */

/* What one store_inbound_link() links: a message, its member, when. */
struct inbound_link_req {
	int64_t msg;	   /* the inbound message */
	int64_t member;	   /* its member */
	bool conversation; /* for the inbox; false for keyword messages */
	int64_t now;
	/* With conversation: the [sender NAME] the text came in on (staff
	 * replies go back through it; NULL keeps the last one) and
	 * [conversations] attribution_window in ms. */
	const char *sender;
	int64_t window_ms;
};
/*
 * Links inbound message req->msg to req->member and, with
 * req->conversation, appends it to the member's conversation (one per
 * member: made if none, reopened if closed), counting it unread, and
 * records what the text answers: the last alert message the member got
 * (sent or delivered) within req->window_ms as the conversation's
 * alert_id, else the last message they got; the message's reply_to is
 * that message. Keyword messages are linked to the member with
 * conversation false (not for the inbox). A message already in a
 * conversation keeps it: a repeated call counts nothing. Returns the
 * conversation's id, 0 without conversation, or -1.
 */
int64_t store_inbound_link(struct store *st, const struct inbound_link_req *req,
    char *err, size_t errlen);

/* ---- Consent log ------------------------------------------------------- */

/*
 * {"member_id", "events": [{id, channel, action, source, list_id, list,
 * message_id, detail, at}], "next_cursor"}: oldest first, after event id
 * 'after'.
 */
json_t *store_consent_json(struct store *st, int64_t member, int64_t after,
    unsigned limit, char *err, size_t errlen);

/* One row of an export, borrowed for the callback. */
struct export_row {
	const char *const *cols; /* values, NULL for null */
	size_t ncols;
};
/* One page of an export: where it starts, how long it is, where it ended. */
struct export_page {
	int64_t after;	/* the cursor to start after; 0 = from the start */
	unsigned limit; /* rows (store_export_list(): about; see below) */
	int64_t next;	/* out: the cursor to continue from; 0 = done */
};
/* Where an export's rows go: each(arg, row) for every row. */
typedef int export_row_fn(void *arg, const struct export_row *row);
struct export_sink {
	export_row_fn *each;
	void *arg;
};
/*
 * Calls to->each with the header row first (names; only when pg->after
 * is 0, the first page), then every row, up to pg->limit rows after
 * cursor pg->after (0 = from the start); pg->next is the cursor to
 * continue from, 0 when done. 'each' returns 0, or -1 to stop (the export
 * then fails with "export: stopped by the writer"). store_export_list()
 * pages by member (a member's SMS and email rows stay on one page, so a
 * page may hold a few more than 'limit' rows); values are text, times ISO
 * 8601,
 * *_opted_out "true"/"false". The caller streams them out in
 * pieces so a large export never sits in memory.
 * store_export_list(): member columns id, phone, email, first_name,
 * last_name, zip, time_zone, tags, attributes, channel, status, source,
 * subscribed_at, sms_opted_out, email_opted_out.
 * store_export_consent(): id, member_id, phone, email, channel, action,
 * source, list, message_id, detail, at; member 0 = every member.
 */
int store_export_list(struct store *st, int64_t list, struct export_page *pg,
    const struct export_sink *to, char *err, size_t errlen);
int store_export_consent(struct store *st, int64_t member,
    struct export_page *pg, const struct export_sink *to, char *err,
    size_t errlen);

/* ---- Import ------------------------------------------------------------ */

enum import_outcome {
	IMPORT_CREATED = 0, /* new member, subscribed */
	IMPORT_UPDATED,	    /* existing member: a field changed or a new
			     * subscription */
	IMPORT_UNCHANGED,   /* everything already as the row says */
	IMPORT_OPTED_OUT,   /* member opted out of the list's channel(s):
			     * fields updated, not (re)subscribed */
	IMPORT_CONFLICT,    /* the phone and the email belong to two
			     * different members: row rejected, nothing
			     * written; err says which */
};

/* What the rows of one import go into. */
struct import_into {
	int64_t list;	    /* the list they join; 0 = none */
	const char *detail; /* the import's consent source, or NULL */
	int64_t now;
};
/* What one import row did. */
struct import_result {
	enum import_outcome outcome;
	int64_t member; /* the member found or created; 0 on a conflict */
};

/*
 * One import row, already validated and normalized. Finds the member by
 * phone, then email; creates it or fills fields the row carries (a value
 * in the row replaces the stored one; tags are added; attrs merged).
 * Subscribes it to in->list (0 = none) on SMS when it has a phone and on
 * email when it has an email, active, from CONSENT_IMPORT with in->detail
 * (the import's consent source) - unless that channel is opted out, which
 * always wins. A channel that is already active writes nothing, so
 * running the same import twice changes nothing. Fields whose value is
 * NULL are not in the row (an import never clears); MF_ATTRS/MF_TAGS act
 * as MF_ATTRS_MERGE/MF_TAGS_ADD. A channel the member left the list on
 * (store_unsubscribe()) is not rejoined either: like an opt-out it makes
 * the outcome IMPORT_OPTED_OUT. On IMPORT_CONFLICT the call returns 0.
 */
int store_import_row(struct store *st, const struct member_fields *f,
    const struct import_into *in, struct import_result *res, char *err,
    size_t errlen);

/* ---- Email: bounces and unsubscribes ------------------------------------- */

/*
 * Counts a permanent failure of 'address'; at 'limit' failures the member
 * is marked bouncing (no more email until the address changes). Returns 1
 * when the member is bouncing now, 0 when not (unknown addresses are
 * ignored; limit 0 counts but never marks), or -1.
 */
int store_email_failure(struct store *st, const char *address, unsigned limit,
    int64_t now, char *err, size_t errlen);
/* Resets the failure count after a delivery was accepted. */
int store_email_success(struct store *st, const char *address, char *err,
    size_t errlen);
/* Members marked bouncing, for /metrics. -1 on error. */
int64_t store_email_bouncing_count(struct store *st, char *err, size_t errlen);
/* Whom a message went to (or, inbound, came from). */
struct msg_recipient {
	bool found;		 /* false: no such message, the rest unset */
	enum channel ch;	 /* the message's channel */
	char addr[MSG_ADDR_MAX]; /* outbound: to; inbound: from */
	int64_t member;		 /* 0 = none */
};
/*
 * The recipient of message id (for an inbound message: its sender) into
 * *r; r->found false if there is no such message. 0 / -1.
 */
int store_message_recipient(struct store *st, int64_t id,
    struct msg_recipient *r, char *err, size_t errlen);

#endif
