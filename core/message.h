/*
 * message.h - the message model shared by queue/, the dispatcher and the
 * adapters: channels, states (doc/queue.md) and the outbound message an
 * adapter is handed.
 *
 * Contract:
 *  - Plain data; no module state. msg_status_*() are pure.
 *  - A struct out_msg is owned by whoever allocated it (queue_claim()
 *    returns owned ones); free it with out_msg_free(). Adapters only borrow
 *    it until their done callback runs (adapter.h rule 3).
 */
#ifndef OD_MESSAGE_H
#define OD_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum channel {
	CHANNEL_SMS = 0,
	CHANNEL_EMAIL = 1,
};
#define CHANNEL_COUNT 2

/*
 * Message states. Outbound: queued -> sending -> sent -> delivered |
 * undelivered, and queued/sending -> failed | expired | cancelled |
 * suppressed. Inbound messages are stored as received.
 */
enum msg_status {
	MSG_ST_QUEUED = 0,
	MSG_ST_SENDING,
	MSG_ST_SENT,
	MSG_ST_DELIVERED,
	MSG_ST_UNDELIVERED,
	MSG_ST_FAILED,
	MSG_ST_EXPIRED,
	MSG_ST_CANCELLED,
	MSG_ST_SUPPRESSED,
	MSG_ST_RECEIVED,
};
#define MSG_ST_COUNT (MSG_ST_RECEIVED + 1)

/* Priorities: replies to a person outrank alert traffic (doc/queue.md). */
#define MSG_PRIO_ALERT	 0
#define MSG_PRIO_DEFAULT 5
#define MSG_PRIO_REPLY	 10

/* Longest address we store: RFC 5321 caps a path at 256 octets. */
#define MSG_ADDR_MAX 256
/* Sender section names ("[sender NAME]"). */
#define MSG_SENDER_MAX 64

struct out_msg {
	int64_t id;
	enum channel channel;
	int priority;
	int attempts;		     /* attempts made before this one */
	int64_t member_id;	     /* 0 = none */
	int64_t alert_id;	     /* 0 = none */
	int64_t created_at;	     /* ms since the epoch */
	int64_t expires_at;	     /* ms since the epoch; 0 = never */
	bool optout_exempt;	     /* compliance reply: not suppressed */
	char sender[MSG_SENDER_MAX]; /* SMS sender name; "" = default */
	char to[MSG_ADDR_MAX];	     /* E.164 number or email address */
	char from[MSG_ADDR_MAX];     /* "" = the sender's/adapter's default */
	char *subject;		     /* email only; NULL otherwise */
	char *body;		     /* never NULL */
	char *html;		     /* email only; may be NULL */
	/* Email to a list member (set by the dispatcher, RFC 8058): the
	 * one-click unsubscribe URL and the mailto address of
	 * List-Unsubscribe; NULL when there is none. */
	char *unsubscribe_url;
	char *unsubscribe_mailto;
};

/* Frees msg and its strings; NULL is a no-op. */
void out_msg_free(struct out_msg *msg);

/* An inbound message parsed from a webhook. */
struct in_msg {
	char provider_id[128];	 /* the provider's id: de-duplicates retries */
	char from[MSG_ADDR_MAX]; /* the member: +E.164 when it is a number */
	char to[MSG_ADDR_MAX];	 /* our number or short code */
	char *body;		 /* UTF-8, owned: free with in_msg_clear() */
	unsigned segments;	 /* 0 = unknown */
	unsigned num_media;
	/* A part of a concatenated message the provider did not reassemble
	 * (Vonage): same ref for every part, 1-based part number. */
	char concat_ref[64];
	unsigned concat_part;
	unsigned concat_total;
};

/* A delivery report parsed from a status webhook. */
struct status_update {
	int64_t msg_id;		/* our message id when the provider echoes it
				 * (client-ref, dlr-url); 0 = match by id */
	char provider_id[128];	/* the provider's message id */
	enum msg_status status; /* SENT, DELIVERED, UNDELIVERED or FAILED */
	int code;		/* provider error code, 0 = none */
	char text[256];		/* short reason, no secrets */
	int64_t sequence;	/* provider's event order (Plivo), 0 = none */
};

/* Frees what an in_msg owns and zeroes it. */
void in_msg_clear(struct in_msg *msg);

/* "sms" / "email". */
const char *channel_to_text(enum channel ch);
/* Parses "sms" or "email"; -1 if neither. */
int channel_parse(const char *text);
/* "queued", "sending", ... */
const char *msg_status_to_text(enum msg_status st);
/* Parses a status name; -1 if unknown. */
int msg_status_parse(const char *text);
/* True for states no outbound message ever leaves. */
bool msg_status_is_final(enum msg_status st);
/* Wall-clock time in milliseconds since the epoch (the store's unit). */
int64_t msg_now_ms(void);
/*
 * Formats ms-since-epoch as ISO 8601 UTC with milliseconds,
 * "2026-11-27T03:14:34.123Z", into buf (at least 25 bytes). Returns buf.
 */
const char *msg_time_to_text(int64_t ms, char *buf, size_t len);

#endif
