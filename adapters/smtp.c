/*
 * smtp.c - email over SMTP with libESMTP 1.1.0 on worker threads
 * (doc/adapters.md, SMTP on worker threads).
 *
 * send() copies the message into a pending list and returns. On the next
 * loop turn the pending messages are split into jobs, one per free worker
 * (and one spare queued for the first worker that frees up, while a
 * backlog lasts), at most session_max_messages each; a job is one SMTP
 * session (one connection, MAIL/RCPT/DATA per message, QUIT) run by
 * libESMTP on a workq thread. The MIME text is built on the worker
 * (mime_build() is pure). Every message is judged from its own MAIL, RCPT and
 * DATA statuses (smtp_judge(), smtp.h). An accepted one is final as soon as its
 * "250" after the "." is read: the session hands it to the loop at once while
 * it goes on (the adapter's accepted list, one workq_post wake-up for whatever
 * the loop has not taken yet), so its in-flight slot frees up and the
 * dispatcher claims more without waiting for the session's end; every other
 * message is judged when the session returns, and goes back through workq's
 * done callback. Each message's done is called exactly once. Nothing waits to
 * fill a batch: a lone message leaves on the next loop turn; under load the
 * backlog that builds while the workers are busy becomes the next sessions.
 *
 * libESMTP 1.1.0 pitfalls and what this file does:
 *  - No TCP_NODELAY (23 msgs/s per session) and no connect timeout:
 *    smtp_connect.c defines connect() (LD-free interposition, §12.3 (a));
 *    the executable's definition is what libesmtp.so binds to. On an SMTP
 *    worker thread (a thread-local job is set) it sets TCP_NODELAY,
 *    connects non-blocking with connect_timeout, and keeps a dup of the
 *    socket so the loop can shutdown() a stuck session (session_timeout
 *    watchdog, shutdown). Every other caller (libcurl, the resolver) goes
 *    straight to the real connect().
 *  - Before each command group libESMTP polls its socket for "readable
 *    or writable", which is always "writable" at once: smtp_connect.c
 *    answers that one pattern on SMTP worker threads without the system
 *    call (3 of 7 polls per message); every wait goes to the kernel.
 *  - The second STARTTLS session crashes with libESMTP's own SSL_CTX: one
 *    SSL_CTX per adapter, given to every session (smtp_starttls_set_ctx).
 *  - TLS 1.3 session tickets stall the session: the SSL_CTX is capped at
 *    TLS 1.2.
 *  - smtp_set_timeout() takes milliseconds and is raised to the RFC
 *    minimum unless Timeout_OVERRIDE_RFC2822_MINIMUM is or'ed in: it is.
 *  - smtp_start_session() returns 1 when nothing was delivered: every
 *    message's MAIL/RCPT/DATA status is judged; code 0 = transient.
 *  - A failed AUTH silently continues unauthenticated: with user set, a
 *    monitor callback watches the dialogue; if MAIL is about to be
 *    written without a 235 reply to AUTH, it shuts the socket so MAIL
 *    never leaves, and the batch is transient with SEND_F_SENDER_BROKEN.
 *  - A retry overwrites the earlier status: a session is started once and
 *    judged at once; retries are new sessions from the queue.
 *  - Certificate checks go through the event callback: with verify = yes
 *    any invalid, missing or wrongly named certificate ends the session.
 *
 * Duplicate window: a message whose body and final "." were sent but
 * whose 250 reply never came (dropped connection, data_timeout, watchdog)
 * is reported transient and 'uncertain'; it is sent again, so the server
 * may deliver it twice. Messages not yet at that point are not sent twice.
 * Both copies carry the same Message-ID (it is derived from the message's
 * id and creation time), so receivers that dedup by it drop the second.
 *
 * This file is the loop side (init, send, drain, free, handing jobs to
 * workq); smtp_conf.c reads [smtp] and makes the TLS context,
 * smtp_session.c runs a session on a worker, smtp_connect.c is the
 * connect() above and smtp_judge.c the pure judging (smtp.h). What they
 * share is in smtp-internal.h.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "dkim.h"
#include "log.h"
#include "smtp-internal.h"
#include "workq.h"
#include "xmalloc.h"

#define SMTP_WATCHDOG_MS 500 /* how often stuck sessions are looked for */

static int smtp_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int smtp_send(struct adapter *, const struct out_msg *,
    adapter_done_fn *, void *);
static void smtp_drain(struct adapter *);
static void smtp_free(struct adapter *);
static void smtp_on_kick(evutil_socket_t, short, void *);
static void smtp_on_watchdog(evutil_socket_t, short, void *);
static void smtp_schedule(struct smtp *);

const struct adapter_ops smtp_ops = {
    .name = "smtp",
    .channel = CHANNEL_EMAIL,
    .init = smtp_init,
    .send = smtp_send,
    .drain = smtp_drain,
    .free = smtp_free,
};

/* ---------------------------------------------------------------------
 * Init
 */

/* A condition variable on the monotonic clock (smtp_job_top_up waits). */
static void
smtp_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

static void
smtp_global_init(void)
{
	auth_client_init(); /* once, before any thread (§12.2) */
}

static int
smtp_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	struct smtp *s;
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	if (sec == NULL) {
		snprintf(err, errlen,
		    "[email] adapter = smtp needs an [smtp] section (host, "
		    "from, ...)");
		return -1;
	}
	s = xcalloc(1, sizeof(*s));
	if (smtp_conf_load(&s->c, sec, err, errlen) == -1 ||
	    dkim_signer_from_env(&ad->env, &s->c.dkim, err, errlen) == -1) {
		smtp_conf_clear(&s->c);
		free(s);
		return -1;
	}
	if (s->c.tls != SMTP_TLS_OFF &&
	    (s->ctx = smtp_tls_ctx(&s->c, sec, err, errlen)) == NULL) {
		smtp_conf_clear(&s->c);
		free(s);
		return -1;
	}
	pthread_once(&once, smtp_global_init);
	smtp_connect_init();
	pthread_mutex_init(&s->mu, NULL);
	smtp_cond_init(&s->more);
	TAILQ_INIT(&s->pending);
	TAILQ_INIT(&s->accepted);
	TAILQ_INIT(&s->running);
	s->ad = ad;
	ad->priv = s;
	if (ad->env.base != NULL) {
		s->kick_ev = event_new(ad->env.base, -1, 0, smtp_on_kick, s);
		s->watchdog_ev = event_new(ad->env.base, -1, EV_PERSIST,
		    smtp_on_watchdog, s);
		if (s->kick_ev == NULL || s->watchdog_ev == NULL)
			fatalx("smtp_init: event_new failed");
	}
	if (s->c.tls != SMTP_TLS_OFF && !s->c.verify)
		log_warnx("smtp_tls_unverified host=%s action=\"certificate "
			  "verification is OFF (verify = no): anyone on the "
			  "path can read the mail; set verify = yes\"",
		    s->c.host);
	log_debug("smtp_ready server=%s starttls=%s workers=%u "
		  "session_max_messages=%u auth=%s",
	    s->c.server,
	    s->c.tls == SMTP_TLS_REQUIRED	     ? "required"
		: s->c.tls == SMTP_TLS_OPPORTUNISTIC ? "opportunistic"
						     : "off",
	    s->c.workers, s->c.session_max, s->c.user != NULL ? "yes" : "no");
	return 0;
}

/* ---------------------------------------------------------------------
 * The loop side
 */

/* workq done: hands every item's result to its sender (loop thread). */
static void
smtp_job_done(void *arg, bool cancelled)
{
	struct smtp_job *job = arg;
	struct smtp *s = job->s;
	struct smtp_item *it;
	char masked[MSG_ADDR_MAX], line[512];

	pthread_mutex_lock(&s->mu);
	TAILQ_REMOVE(&s->running, job, entry);
	pthread_mutex_unlock(&s->mu);
	s->nrunning--;
	/* a spare that found nothing to send ran no session: no line */
	if (!cancelled && !s->freeing && job->nitems > 0) {
		snprintf(line, sizeof(line),
		    "smtp_session server=%s messages=%u accepted=%u "
		    "transient=%u permanent=%u tls=%s duration_ms=%lld "
		    "idle_ms=%lld",
		    s->c.server, job->nitems, job->accepted, job->transient,
		    job->permanent, job->tls_ok ? "yes" : "no",
		    (long long)job->duration_ms, (long long)job->idle_ms);
		/* emails handed back unsent at shutdown are no failure */
		if (job->transient + job->permanent > 0 &&
		    strcmp(job->err, "shutting down") != 0)
			log_warnx("%s error=\"%s\"", line, job->first_reply);
		else
			log_info("%s", line);
	}
	while ((it = TAILQ_FIRST(&job->items)) != NULL) {
		TAILQ_REMOVE(&job->items, it, entry);
		if (!cancelled && !s->freeing) {
			if (it->res.outcome != SEND_ACCEPTED)
				log_debug("smtp_result msg=%lld to=%s "
					  "outcome=%s code=%d text=\"%s\"",
				    (long long)it->msg.id,
				    log_mask_email(it->msg.to, masked,
					sizeof(masked)),
				    it->res.outcome == SEND_TRANSIENT
					? "transient"
					: "permanent",
				    it->res.code, it->res.text);
			it->done(it->arg, &it->res);
		}
		smtp_item_free(it);
	}
	free(job);
	if (!s->freeing)
		smtp_schedule(s);
}

/*
 * workq done of the accepted list (smtp_item_hand_over): takes every
 * item accepted so far, then calls each done. A worker that accepts one
 * after the list was taken posts again.
 */
void
smtp_accepted_done(void *arg, bool cancelled)
{
	struct smtp *s = arg;
	struct smtp_item_list items;
	struct smtp_item *it;

	TAILQ_INIT(&items);
	pthread_mutex_lock(&s->mu);
	TAILQ_CONCAT(&items, &s->accepted, entry);
	s->accepted_posted = false;
	pthread_mutex_unlock(&s->mu);
	while ((it = TAILQ_FIRST(&items)) != NULL) {
		TAILQ_REMOVE(&items, it, entry);
		if (!cancelled && !s->freeing)
			it->done(it->arg, &it->res);
		smtp_item_free(it);
	}
}

/*
 * Starts sessions while workers are free and items are pending. A session
 * starts with a few items (its share of the backlog, at most
 * 2 x SMTP_LOOKAHEAD) and takes more from the shared pending list as it
 * goes (smtp_job_top_up), so no session holds a long private list while
 * another worker idles. With every worker busy and messages pending, one
 * spare job, empty, waits in workq's queue: the first worker whose
 * session ends starts it at once, taking its first messages from the
 * pending list then (smtp_job_run), instead of waiting for the loop to
 * see that end (smtp_job_done), which took milliseconds of a busy loop
 * per session. Empty until it starts, it keeps nothing from the running
 * sessions' top-ups.
 */
static void
smtp_dispatch(struct smtp *s)
{
	struct smtp_job *job;
	unsigned free_workers, n;
	bool keep;
	char err[256];

	if (s->freeing || s->nrunning >= s->c.workers + SMTP_SPARE_JOBS)
		return;
	pthread_mutex_lock(&s->mu);
	n = s->npending;
	pthread_mutex_unlock(&s->mu);
	if (n == 0)
		return;
	if (s->wq == NULL &&
	    (s->wq = workq_new(s->ad->env.base, s->c.workers, err,
		 sizeof(err))) == NULL)
		fatalx("smtp: cannot start workers: %s", err);
	if (s->watchdog_ev != NULL &&
	    !event_pending(s->watchdog_ev, EV_TIMEOUT, NULL)) {
		struct timeval tv = {0, SMTP_WATCHDOG_MS * 1000};

		event_add(s->watchdog_ev, &tv);
	}
	while (s->nrunning < s->c.workers + SMTP_SPARE_JOBS) {
		job = xcalloc(1, sizeof(*job));
		job->s = s;
		job->fd = -1;
		TAILQ_INIT(&job->items);
		pthread_mutex_lock(&s->mu);
		if (s->nrunning < s->c.workers) {
			free_workers = s->c.workers - s->nrunning;
			n = (s->npending + free_workers - 1) / free_workers;
			if (n > 2 * SMTP_LOOKAHEAD)
				n = 2 * SMTP_LOOKAHEAD;
			job->nitems = smtp_take_pending_locked(s, &job->items,
			    n < s->c.session_max ? n : s->c.session_max);
			keep = job->nitems > 0;
		} else
			keep =
			    s->npending > 0; /* the spare, empty till it runs */
		if (keep)
			TAILQ_INSERT_TAIL(&s->running, job, entry);
		pthread_mutex_unlock(&s->mu);
		if (!keep) {
			free(job);
			break;
		}
		s->nrunning++;
		if (workq_submit(s->wq, smtp_job_run, smtp_job_done, job) == -1)
			fatalx("smtp: workq_submit refused a job");
	}
}

static void
smtp_on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct smtp *s = arg;

	(void)fd;
	(void)what;
	s->kick_scheduled = false;
	smtp_dispatch(s);
}

static void
smtp_schedule(struct smtp *s)
{
	unsigned n;

	if (s->kick_scheduled || s->kick_ev == NULL ||
	    s->nrunning >= s->c.workers + SMTP_SPARE_JOBS)
		return;
	pthread_mutex_lock(&s->mu);
	n = s->npending;
	pthread_mutex_unlock(&s->mu);
	if (n == 0)
		return;
	s->kick_scheduled = true;
	event_active(s->kick_ev, EV_TIMEOUT, 0);
}

/* Ends sessions running longer than session_timeout. */
static void
smtp_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct smtp *s = arg;
	struct smtp_job *job;
	int64_t now = smtp_now_ms();

	(void)fd;
	(void)what;
	pthread_mutex_lock(&s->mu);
	TAILQ_FOREACH(job, &s->running, entry)
		if (job->started_ms != 0 && !job->abort &&
		    now - job->started_ms > (int64_t)s->c.session_ms) {
			job->timed_out = true;
			smtp_job_abort_locked(job);
		}
	pthread_mutex_unlock(&s->mu);
}

static int
smtp_send(struct adapter *ad, const struct out_msg *msg, adapter_done_fn *done,
    void *arg)
{
	struct smtp *s = ad->priv;
	struct smtp_item *it;

	if (s->kick_ev == NULL || s->freeing)
		return -1;
	it = xcalloc(1, sizeof(*it));
	mime_copy_init(&it->msg, msg);
	it->created_at = msg->created_at; /* its Message-ID, on the worker */
	it->date = (int64_t)time(NULL);
	it->done = done;
	it->arg = arg;
	pthread_mutex_lock(&s->mu); /* running sessions take from it */
	TAILQ_INSERT_TAIL(&s->pending, it, entry);
	s->npending++;
	pthread_cond_signal(&s->more); /* a session waiting for more */
	pthread_mutex_unlock(&s->mu);
	smtp_schedule(s);
	return 0;
}

/*
 * Stops new work: messages not yet in a session go back to the core at
 * once (transient, nothing was sent); running sessions finish.
 */
static void
smtp_drain(struct adapter *ad)
{
	struct smtp *s = ad->priv;
	struct smtp_job *job;

	/* a job that never runs a session: its items are judged "not
	 * sent: shutting down" and come back through workq as usual */
	job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->fd = -1;
	job->abort = true;
	TAILQ_INIT(&job->items);
	pthread_mutex_lock(&s->mu);
	s->draining = true;
	pthread_cond_broadcast(&s->more);
	TAILQ_CONCAT(&job->items, &s->pending, entry);
	job->nitems = s->npending;
	s->npending = 0;
	pthread_mutex_unlock(&s->mu);
	if (job->nitems == 0) {
		free(job);
		return;
	}
	if (s->wq == NULL) {
		char err[256];

		if ((s->wq = workq_new(ad->env.base, s->c.workers, err,
			 sizeof(err))) == NULL)
			fatalx("smtp: cannot start workers: %s", err);
	}
	pthread_mutex_lock(&s->mu);
	TAILQ_INSERT_TAIL(&s->running, job, entry);
	pthread_mutex_unlock(&s->mu);
	s->nrunning++;
	if (workq_submit(s->wq, smtp_job_run, smtp_job_done, job) == -1)
		fatalx("smtp: workq_submit refused a job");
}

/*
 * Rule 6: running sessions are cut (their sockets shut down, so libESMTP
 * returns at once) and joined; nothing calls done any more.
 */
static void
smtp_free(struct adapter *ad)
{
	struct smtp *s = ad->priv;
	struct smtp_job *job;
	struct smtp_item *it;

	if (s == NULL)
		return;
	s->freeing = true;
	pthread_mutex_lock(&s->mu);
	TAILQ_FOREACH(job, &s->running, entry)
		smtp_job_abort_locked(job);
	pthread_mutex_unlock(&s->mu);
	workq_free(s->wq); /* done callbacks run, without calling done */
	while ((it = TAILQ_FIRST(&s->pending)) != NULL) {
		TAILQ_REMOVE(&s->pending, it, entry);
		smtp_item_free(it);
	}
	smtp_accepted_done(s, true); /* none is left: workq_free ran it */
	if (s->kick_ev != NULL)
		event_free(s->kick_ev);
	if (s->watchdog_ev != NULL)
		event_free(s->watchdog_ev);
	if (s->ctx != NULL)
		SSL_CTX_free(s->ctx);
	pthread_cond_destroy(&s->more);
	pthread_mutex_destroy(&s->mu);
	smtp_conf_clear(&s->c);
	free(s);
	ad->priv = NULL;
}
