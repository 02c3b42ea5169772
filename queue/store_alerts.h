/*
 * store_alerts.h - action alerts as stored: their definition, their state,
 * the audience they reach and the cursor of their fan-out. The alert
 * engine and API (daemon/alerts.c) use these functions; none of them sees
 * SQL.
 *
 * Contract:
 *  - Loop thread only; writes join the store's group transaction, and an
 *    operation that fails after it changed rows rolls the group back.
 *  - An audience is JSON text (the alerts.audience column):
 *      {"lists": [id, ...],            required, at least one list id
 *       "tags": ["t", ...],            optional: the member has every tag
 *       "fields": {"name": "value"},   optional: attribute equality
 *       "zip_prefix": "021",           optional
 *       "follow_up": {"alert": id, "who": "missed" | "no_reply"}}
 *    The caller (alerts.c) validates it before storing; these functions
 *    trust its shape.
 *  - A member is reached on a channel when the channel is on, the member
 *    has the address, an *active* subscription to one of the lists on that
 *    channel, is not opted out of the channel and, for email, is not
 *    bouncing. The send-time check of dispatch.c stays the last word: an
 *    opt-out committed after a message was made still suppresses it.
 *  - Members are walked in id order up to audience_max_id, fixed when the
 *    alert starts sending, so the audience of a running alert is the one
 *    it started with and a restart resumes at the stored cursor.
 *  - Errors: 0 / -1 with text in err; json_t results are new references
 *    (NULL with err empty = not found).
 */
#ifndef OD_STORE_ALERTS_H
#define OD_STORE_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct store;

enum alert_status {
	ALERT_DRAFT = 0,
	ALERT_SCHEDULED,
	ALERT_SENDING,
	ALERT_PAUSED,
	ALERT_DONE,
	ALERT_CANCELLED,
	ALERT_STATUS_COUNT
};

/* "draft", "scheduled", ...; NULL for an out-of-range value. */
const char *alert_status_name(enum alert_status s);
/* The status called 'name'; -1 if none. */
int alert_status_parse(const char *name, enum alert_status *out);

/* What create and a draft's update write. Strings are copied. */
struct alert_def {
	const char *name;     /* required */
	const char *audience; /* JSON text, see above; required */
	bool sms;
	bool email;
	const char *sender; /* NULL = the first list's */
	const char *sms_body;
	const char *email_subject;
	const char *email_text;
	const char *email_html;
	bool urgent;
	int64_t validity_s;	/* > 0 */
	int64_t scheduled_at;	/* 0 = none */
	const char *create_key; /* Idempotency-Key; NULL = none */
	int64_t created_by;	/* staff id; 0 = none */
};

/*
 * Stores a new draft and returns its id, or -1. With a create_key already
 * used, nothing is stored: the existing alert's id is returned and *dup
 * is set.
 */
int64_t store_alert_create(struct store *st, const struct alert_def *d,
    int64_t now, bool *dup, char *err, size_t errlen);
/* Rewrites draft 'id' (not its create_key): 1, 0 if there is no draft
 * 'id' (absent, or no longer a draft), or -1. */
int store_alert_update(struct store *st, int64_t id, const struct alert_def *d,
    int64_t now, char *err, size_t errlen);
/* Deletes draft 'id'; *found false if there is no draft 'id'. */
int store_alert_delete(struct store *st, int64_t id, bool *found, char *err,
    size_t errlen);

/* The alert as the engine needs it; strings owned, store_alert_row_free(). */
struct alert_row {
	int64_t id;
	char *name;
	enum alert_status status;
	char *pause_reason;
	char *audience;
	bool sms;
	bool email;
	char *sender;
	char *sms_body;
	char *email_subject;
	char *email_text;
	char *email_html;
	bool urgent;
	int64_t validity_s;
	int64_t scheduled_at; /* 0 = none */
	int64_t audience_max_id;
	int64_t cursor;
	bool fanout_done;
	int64_t audience_sms; /* reached per channel; -1 = not counted */
	int64_t audience_email;
	int64_t created_at;
	int64_t started_at; /* 0 = not yet */
	int64_t finished_at;
};
/* Loads alert 'id' into *out; *found false if absent. */
int store_alert_load(struct store *st, int64_t id, struct alert_row *out,
    bool *found, char *err, size_t errlen);
void store_alert_row_free(struct alert_row *r);
/* The alert as the API shows it (without counters). */
json_t *store_alert_json(struct store *st, int64_t id, char *err,
    size_t errlen);
/*
 * A page of alerts, newest first: ids below 'before' (0 = from the
 * newest), at most 'limit'; 'status' NULL = any. A JSON array.
 */
json_t *store_alert_list(struct store *st, int64_t before, size_t limit,
    const char *status, char *err, size_t errlen);

/* A change of an alert's status. */
struct alert_transition {
	unsigned from;	      /* the statuses it may leave: 1u << status */
	enum alert_status to; /* the one it enters */
	const char *reason;   /* kept as pause_reason for ALERT_PAUSED */
	int64_t now;
};
/*
 * Moves alert 'id' to t->to if its status is one of t->from: 1 when it
 * moved, 0 if the alert is absent or in another status, -1 on error.
 * pause_reason is t->reason for ALERT_PAUSED and cleared otherwise.
 * Entering ALERT_SENDING the first time fixes audience_max_id and
 * started_at; ALERT_DONE and ALERT_CANCELLED set finished_at.
 */
int store_alert_transition(struct store *st, int64_t id,
    const struct alert_transition *t, char *err, size_t errlen);
/*
 * The send's Idempotency-Key: returns the alert that already used 'key'
 * (0 = none), or -1. With 'record' and no such alert, the key becomes
 * alert id's (call it once the send succeeded).
 */
int64_t store_alert_send_key(struct store *st, int64_t id, const char *key,
    bool record, char *err, size_t errlen);
/* Alerts in 'scheduled' or 'sending', oldest first, to the callback. */
typedef void store_alert_id_fn(void *arg, int64_t id);
int store_alert_live(struct store *st, store_alert_id_fn *fn, void *arg,
    char *err, size_t errlen);
/* Sets when a draft goes out (schedule). */
int store_alert_schedule(struct store *st, int64_t id, int64_t at, char *err,
    size_t errlen);
/* Records whom the alert reached per channel when it started. */
int store_alert_set_audience(struct store *st, int64_t id, int64_t sms,
    int64_t email, char *err, size_t errlen);
/* Where a walk stopped: the last member id looked at, and whether
 * nothing is left up to the audience bound. */
struct alert_cursor {
	int64_t next;
	bool end;
};
/* Saves the fan-out cursor (c->next, and c->end: the walk is done). */
int store_alert_set_cursor(struct store *st, int64_t id,
    const struct alert_cursor *c, int64_t now, char *err, size_t errlen);

/* ---- Audience ----------------------------------------------------------- */

/* A member as the walk hands it over; borrowed for the callback. */
struct alert_member {
	int64_t id;
	const char *phone; /* NULL when not reached by SMS */
	const char *email; /* NULL when not reached by email */
	const char *first_name;
	const char *last_name;
	const char *zip;
	const char *time_zone;
	const char *attributes;	    /* JSON object text */
	const char *list_time_zone; /* of the first list reaching it; NULL */
};
/* Returns 0, or -1 (with err) to stop the walk with that error. */
typedef int store_alert_member_fn(void *arg, const struct alert_member *m,
    char *err, size_t errlen);
/* Who hears of each member a walk finds. */
struct alert_visitor {
	store_alert_member_fn *fn;
	void *arg;
};

/* Which members and how many at a time. */
struct alert_walk {
	const char *audience; /* JSON text */
	bool sms;
	bool email;
	int64_t after;	/* members with id > after ... */
	int64_t max_id; /* ... and <= max_id (0 = no bound) */
	size_t limit;	/* at most this many reached members */
	size_t scan;	/* and look at ids up to after + scan (0 = no bound) */
};
/*
 * Hands each reached member (one channel at least) in id order to the
 * visitor. Returns how many it handed over, or -1. out->next is the id to
 * resume after: the last member handed over when 'limit' was reached,
 * else the end of the range looked at; out->end is set when nothing is
 * left up to max_id.
 */
ssize_t store_alert_walk(struct store *st, const struct alert_walk *w,
    const struct alert_visitor *v, struct alert_cursor *out, char *err,
    size_t errlen);

/* Who an audience reaches and who it leaves out, per channel. */
struct alert_reach {
	int64_t matched; /* members subscribed in any status who match */
	int64_t sms;	 /* reached by SMS */
	int64_t email;	 /* reached by email */
	int64_t both;	 /* reached on both */
	int64_t sms_opted_out;
	int64_t email_opted_out;
	int64_t email_bouncing;
	int64_t unconfirmed; /* pending (double opt-in) on every channel */
};
int store_alert_reach(struct store *st, const struct alert_walk *w,
    struct alert_reach *out, char *err, size_t errlen);

/* A member field: a column ("first_name", "last_name", "email", "phone",
 * "zip"), or column NULL and attr the key of a custom attribute. */
struct alert_field {
	const char *column;
	const char *attr;
};
/*
 * Members the walk reaches who lack field f: no value, or only blanks. A
 * template placeholder without a fallback needs it. The count, or -1.
 */
int64_t store_alert_missing(struct store *st, const struct alert_walk *w,
    const struct alert_field *f, char *err, size_t errlen);
/* Members the walk reaches with the longest values of field f, to the
 * visitor, at most w->limit: the preview's worst cases. */
ssize_t store_alert_longest(struct store *st, const struct alert_walk *w,
    const struct alert_field *f, const struct alert_visitor *v, char *err,
    size_t errlen);
/* The sender of the audience's first list into *out (a new string; NULL
 * when that list names none). */
int store_alert_list_sender(struct store *st, const char *audience, char **out,
    char *err, size_t errlen);

/* ---- Messages of an alert ----------------------------------------------- */

/*
 * Per channel and state counts of the alert's messages:
 * {"sms": {"pending": n, "deferred": n, "sent": n, ...}, "email": {...}}:
 * "pending" are queued and due by 'now' or in flight, "deferred" queued
 * for later (quiet hours, retries, a pause); the other names are the
 * message states.
 */
json_t *store_alert_counts(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen);
/*
 * An alert's unfinished messages, each kind counted up to 'limit' (what
 * the caller needs to know: the fan-out's bound, or 1 for whether any is
 * left), so a turn costs the limit, not a scan of a million held ones.
 */
struct alert_backlog {
	int64_t limit;	 /* in: count up to this many of each; 0: all */
	int64_t due;	 /* in flight, or queued and due by 'now' */
	int64_t waiting; /* queued for later (quiet hours, retries, held) */
};
int store_alert_backlog(struct store *st, int64_t id, int64_t now,
    struct alert_backlog *out, char *err, size_t errlen);

/* What the guard rails look at, over the alert's SMS and email. */
struct alert_guard {
	int64_t reached;  /* messages that left: sent, delivered, undelivered */
	int64_t optouts;  /* of those, whose member opted out of the channel
			   * within 24 h after the message was made */
	int64_t failed;	  /* failed permanently */
	int64_t finished; /* reached + failed */
	int64_t replies;  /* of those reached, whose member wrote within
			   * 24 h after the message was made */
};
int store_alert_guard(struct store *st, int64_t id, struct alert_guard *out,
    char *err, size_t errlen);
/*
 * Holds the alert's queued messages (pause: next_attempt_at far ahead) or
 * releases them (resume: next_attempt_at = max(not_before, now)).
 */
int store_alert_hold(struct store *st, int64_t id, bool hold, int64_t now,
    char *err, size_t errlen);

#endif
