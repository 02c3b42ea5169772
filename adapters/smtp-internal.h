/*
 * smtp-internal.h - what the files of the SMTP adapter share: the
 * validated [smtp] section, a message being sent (smtp_item), a session
 * (smtp_job) and the adapter's state (struct smtp).
 *
 *  - smtp.c: the adapter's ops on the loop thread (send, drain, free),
 *    handing batches to workq and results back to the senders;
 *  - smtp_conf.c: [smtp] validation and the TLS context;
 *  - smtp_session.c: one libESMTP session on a worker thread;
 *  - smtp_connect.c: the connect() the sessions' sockets go through;
 *  - smtp_judge.c: the pure judging of a message's replies (smtp.h).
 *
 * Contract:
 *  - struct smtp and its jobs belong to the loop thread, except the
 *    pending list (and npending, draining) and the fields of smtp_job
 *    marked "shared", which are read and written under s->mu, and the
 *    "worker side" fields, which the worker owns until its job is done.
 *    A running session moves items from the pending list to its job
 *    (under s->mu); from then on they are the worker's like the rest.
 *  - struct smtp_conf is read-only once smtp_conf_load() returns.
 */
#ifndef OD_SMTP_INTERNAL_H
#define OD_SMTP_INTERNAL_H

#include <sys/queue.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

/* auth-client.h and openssl/ssl.h before libesmtp.h: it declares its AUTH
 * and TLS functions only when their headers came first. */
#include <auth-client.h>
#include <libesmtp.h>

#include "adapter.h"
#include "config_section.h"
#include "dkim.h"
#include "message.h"
#include "mime.h"

enum smtp_tls {
	SMTP_TLS_OFF = 0,
	SMTP_TLS_OPPORTUNISTIC,
	SMTP_TLS_REQUIRED,
};

/* The [smtp] section, validated. Read-only once init returns. */
struct smtp_conf {
	char *host;
	char server[300]; /* "host:port" for smtp_set_server() */
	unsigned port;
	enum smtp_tls tls;
	bool verify;
	char *ca_file;
	char *user;
	char *password;
	char *envelope_from; /* MAIL FROM */
	char *from;	     /* From header */
	char *reply_to;	     /* NULL = none */
	char *helo;	     /* NULL = libESMTP's default (uname) */
	char *domain;	     /* of From: Message-IDs */
	unsigned connect_ms;
	unsigned command_ms;
	unsigned data_ms;
	unsigned session_ms;
	unsigned workers;
	unsigned session_max;
	struct dkim_signer *dkim; /* [email] dkim_*; NULL = no signing */
};

/* One message, copied from the out_msg (rule 3). */
struct smtp_item {
	TAILQ_ENTRY(smtp_item) entry;
	struct mime_copy msg; /* what to send */
	char msgid[160];      /* built on the worker (smtp_item_build) */
	int64_t created_at;
	int64_t date;
	adapter_done_fn *done;
	void *arg;
	/* worker side */
	char *text; /* the MIME message */
	size_t textlen;
	bool fed;	/* the message callback handed out the text */
	bool body_sent; /* ... and was asked for more: all of it is out */
	bool built;	/* text is there (else res is already final) */
	bool judged;	/* accepted mid-session, res final (smtp->accepted) */
	smtp_message_t m;
	smtp_recipient_t r;
	struct send_result res;
};
TAILQ_HEAD(smtp_item_list, smtp_item);

struct smtp;

/* One SMTP session: a batch of items for one worker. */
struct smtp_job {
	TAILQ_ENTRY(smtp_job) entry; /* smtp->running */
	struct smtp *s;
	struct smtp_item_list items;
	unsigned nitems;
	/* shared with the loop thread, under s->mu */
	int fd;		    /* dup of the session's socket, or -1 */
	bool abort;	    /* stop the session (shutdown, watchdog) */
	bool timed_out;	    /* the watchdog fired */
	int64_t started_ms; /* 0 = not running yet */
	/* worker side, read by the loop after the job is done */
	bool auth_sent;
	bool auth_ok;
	bool auth_failed;
	bool tls_ok;
	bool tls_failed;
	bool connect_timed_out;
	char auth_reply[128];
	char err[256]; /* why the session ended early, "" = it did not */
	int64_t duration_ms;
	int64_t idle_ms; /* of it, waiting for more messages (top-up) */
	unsigned accepted, transient, permanent;
	char first_reply[200]; /* first non-2xx reply, for the warning */
	/* worker side: messages added to the session, MAIL replies read */
	unsigned nadded;
	unsigned nstarted;
};

/* A running session keeps at least this many messages queued in
 * libESMTP after the one in progress, taken from the pending list. */
#define SMTP_LOOKAHEAD 2
/* Empty jobs queued in workq beyond the workers while all are busy and
 * messages pending, so a worker whose session ends starts the next one
 * without the loop (it takes its messages when it starts). */
#define SMTP_SPARE_JOBS 1
/* A session whose last message was accepted waits this long for more
 * before it ends (QUIT): the dispatcher's next claim is on its way. */
#define SMTP_IDLE_WAIT_MS 50

struct smtp {
	struct adapter *ad;
	struct smtp_conf c;
	SSL_CTX *ctx; /* NULL when starttls = off */
	struct workq *wq;
	/* shared with the workers, under mu: sessions take from it */
	struct smtp_item_list pending;
	unsigned npending;
	bool draining; /* under mu: smtp_drain() ran, sessions take no more */
	/* under mu: accepted mid-session, for the loop (smtp_accepted_done) */
	struct smtp_item_list accepted;
	bool accepted_posted; /* a workq_post for it is on its way */
	pthread_cond_t more;  /* with mu: pending grew, a job aborted, drain */
	unsigned nrunning;
	TAILQ_HEAD(, smtp_job) running;
	pthread_mutex_t mu;
	struct event *kick_ev;
	struct event *watchdog_ev;
	bool kick_scheduled;
	bool freeing;
};

/*
 * Reads [smtp] into c, checking every key (unknown keys, ranges,
 * addresses, starttls against AUTH). 0, or -1 with a FILE:LINE message in
 * err; on -1 c may hold copies: smtp_conf_clear() it.
 */
int smtp_conf_load(struct smtp_conf *c, const struct config_section *sec,
    char *err, size_t errlen);

/* Frees what c holds (the password is wiped first) and zeroes it. */
void smtp_conf_clear(struct smtp_conf *c);

/*
 * The adapter's SSL_CTX for STARTTLS (TLS 1.2 only, system CAs plus
 * ca_file). NULL with err set (FILE:LINE for a bad ca_file); the caller
 * owns the context.
 */
SSL_CTX *smtp_tls_ctx(const struct smtp_conf *c,
    const struct config_section *sec, char *err, size_t errlen);

/*
 * Finds the real connect() once (fatal if it cannot); call before the
 * first session. connect() itself is defined in smtp_connect.c.
 */
void smtp_connect_init(void);

/* Ends job's session from any thread (its socket is shut down, a wait
 * for more messages is woken); s->mu must be held. */
void smtp_job_abort_locked(struct smtp_job *job);

/* The job whose session this worker thread runs (NULL elsewhere): set by
 * smtp_job_run() around smtp_start_session(), read by connect(). */
extern __thread struct smtp_job *smtp_cur_job;

/*
 * workq run function: the whole SMTP session of job (arg) on a worker
 * thread; every item's res is final when it returns.
 */
void smtp_job_run(void *arg);

/* workq done of the adapter's accepted list (arg: struct smtp; loop
 * thread): takes the list, calls each item's done, frees the items. */
void smtp_accepted_done(void *arg, bool cancelled);

/* Moves up to max items from the head of the pending list to the tail of
 * 'to'; s->mu must be held. Returns how many. */
unsigned smtp_take_pending_locked(struct smtp *s, struct smtp_item_list *to,
    unsigned max);

/* Frees one item and everything it holds. */
void smtp_item_free(struct smtp_item *it);

/* A monotonic clock in milliseconds. */
int64_t smtp_now_ms(void);

#endif
