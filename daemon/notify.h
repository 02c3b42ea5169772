/*
 * notify.h - email digests of new inbound conversation messages, for the
 * staff who answer them (doc/events.md, "Digests").
 *
 * Contract:
 *  - New inbound conversation messages are announced by one email per
 *    recipient: the assigned staff member's address, else [conversations]
 *    notify_email; a message with neither is covered and never emailed.
 *    Each email lists every thread with new messages since the last
 *    digest: who wrote (name and number), how many, their first words
 *    and a link <base>/ui/#/conversations/<id>.
 *  - A digest goes out [conversations] digest_interval after the oldest
 *    message it covers arrived, and never sooner than digest_interval
 *    after the previous digest: at most one email per recipient per
 *    interval, and a lone text waits at most one interval.
 *  - Emails are queued as email messages (queue.h; [email] from, the
 *    email adapter sends them, durable like any message) in the same
 *    group transaction as the notify state that records what they
 *    covered, so a restart neither repeats nor skips a digest.
 *  - On PostgreSQL every node runs it over the shared tables and each
 *    digest is queued once, by one node (the top of notify.c).
 *  - Loop thread only. Dependencies are borrowed.
 */
#ifndef OD_NOTIFY_H
#define OD_NOTIFY_H

struct config;
struct dispatch;
struct event_base;
struct store;

struct notify_deps {
	struct event_base *base;
	struct store *st;
	struct dispatch *dispatch; /* kicked once a digest is queued */
	const struct config *cfg;
	const char *base_url; /* links: public_url or the listen URL */
};

struct notify;

/* Starts watching for new messages; free with notify_free(). */
struct notify *notify_new(const struct notify_deps *deps);
/* Shutdown: no digest is started from now on. */
void notify_stop(struct notify *n);
/* NULL is a no-op. */
void notify_free(struct notify *n);

/*
 * For the unit tests: the first words of a message as a digest shows
 * them, on one line, at most 80 bytes (cut at a space, never inside a
 * UTF-8 sequence, "..." when cut). A new string.
 */
char *notify_words(const char *body);

#endif
