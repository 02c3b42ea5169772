/*
 * smtp_session.c - one SMTP session of the SMTP adapter, on a workq
 * worker thread.
 *
 * smtp_job_run() builds each message's MIME text (DKIM-signed when
 * configured), sets up a libESMTP session (server, timeouts, STARTTLS
 * with the adapter's context, AUTH PLAIN), adds one message and one
 * recipient per item, runs the session once and judges every item from
 * its own statuses (smtp_judge(), smtp.h). While MAIL is accepted, the
 * session takes more items from the adapter's pending list as it goes
 * (smtp_job_top_up, up to session_max_messages). An accepted item is
 * judged as soon as libESMTP reports its final reply (MESSAGESENT) and
 * handed to the loop at once (the adapter's accepted list, workq_post)
 * while the session goes on; the others are judged when it ends. Workers never
 * call libevent or the store (adapter rule 8); what the loop needs is in
 * the job or the post.
 *
 * AUTH: libESMTP continues unauthenticated after a failed AUTH, so with
 * a user set the monitor callback watches the dialogue and ends the
 * session before a MAIL command leaves without a 235 reply.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/x509.h>

#include "compat.h"
#include "dkim.h"
#include "log.h"
#include "mime.h"
#include "smtp-internal.h"
#include "smtp.h"
#include "workq.h"
#include "xmalloc.h"

void
smtp_item_free(struct smtp_item *it)
{
	mime_copy_clear(&it->msg);
	free(it->text);
	free(it);
}

/* Builds it->text; on failure it->res is the final (permanent) result. */
static void
smtp_item_build(const struct smtp_conf *c, struct smtp_item *it)
{
	struct mime_msg m = {0};
	struct evbuffer *buf = evbuffer_new();
	char err[256];
	size_t n;

	if (buf == NULL)
		fatalx("smtp_item_build: evbuffer_new failed");
	/* The same on every attempt: a receiver that dedups by Message-ID
	 * (Gmail does) drops the copy a duplicate window produced. */
	snprintf(it->msgid, sizeof(it->msgid), "%lld.%llx.od@%.64s",
	    (long long)it->msg.id, (unsigned long long)it->created_at,
	    c->domain);
	m.from = it->msg.from != NULL ? it->msg.from : c->from;
	m.to = it->msg.to;
	m.reply_to = c->reply_to;
	m.subject = it->msg.subject != NULL ? it->msg.subject : "";
	m.text = it->msg.body;
	m.html = it->msg.html;
	m.message_id = it->msgid;
	m.date = it->date;
	/* RFC 8058 List-Unsubscribe(-Post) and the visible link */
	m.unsubscribe_url = it->msg.unsubscribe_url;
	m.unsubscribe_mailto = it->msg.unsubscribe_mailto;
	if (mime_build(&m, buf, err, sizeof(err)) == -1) {
		send_result_set(&it->res, SEND_PERMANENT, 0,
		    "cannot build the message: %s", err);
		evbuffer_free(buf);
		return;
	}
	/*
	 * Signed last, over the text exactly as libESMTP will send it: it
	 * adds no header to a message that has Date, From and Message-ID,
	 * and it sends the text as it is.
	 */
	if (c->dkim != NULL) {
		char *sig = dkim_signer_sign(c->dkim,
		    (const char *)evbuffer_pullup(buf, -1),
		    evbuffer_get_length(buf), err, sizeof(err));

		if (sig == NULL) {
			send_result_set(&it->res, SEND_TRANSIENT, 0, "%s", err);
			evbuffer_free(buf);
			return;
		}
		evbuffer_prepend(buf, sig, strlen(sig));
		free(sig);
	}
	n = evbuffer_get_length(buf);
	it->text = xmalloc(n + 1);
	evbuffer_remove(buf, it->text, n);
	it->text[n] = '\0';
	it->textlen = n;
	it->built = true;
	evbuffer_free(buf);
}

/* libESMTP's message source: the whole text in one piece (§12.3 BDAT). */
static const char *
smtp_msg_cb(void **ctx, int *len, void *arg)
{
	struct smtp_item *it = arg;

	(void)ctx;
	if (len == NULL) { /* rewind */
		it->fed = false;
		return NULL;
	}
	if (!it->fed) {
		it->fed = true;
		*len = (int)it->textlen;
		return it->text;
	}
	it->body_sent = true;
	*len = 0;
	return NULL;
}

static int
smtp_interact(auth_client_request_t req, char **result, int fields, void *arg)
{
	struct smtp_job *job = arg;
	int i;

	for (i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = job->s->c.user;
		else if (req[i].flags & AUTH_PASS)
			result[i] = job->s->c.password;
		else
			result[i] = NULL;
		if (result[i] == NULL)
			return 0;
	}
	return 1;
}

/* Ends this thread's own session (the monitor callback found MAIL
 * coming without a successful AUTH). */
static void
smtp_job_abort_self(struct smtp_job *job)
{
	pthread_mutex_lock(&job->s->mu);
	smtp_job_abort_locked(job);
	pthread_mutex_unlock(&job->s->mu);
}

/*
 * Watches the dialogue when AUTH is configured (§12.5): a 235 reply to
 * AUTH marks success; a MAIL command about to leave without it ends the
 * session before it is written (the monitor runs before the write).
 */
static void
smtp_monitor(const char *buf, int len, int writing, void *arg)
{
	struct smtp_job *job = arg;
	const char *p, *end = buf + len;

	if (job->auth_ok || job->auth_failed)
		return;
	if (writing) {
		if (len >= 5 && strncasecmp(buf, "AUTH ", 5) == 0)
			job->auth_sent = true;
		else if (len >= 5 && strncasecmp(buf, "MAIL ", 5) == 0) {
			job->auth_failed = true;
			smtp_job_abort_self(job);
		}
		return;
	}
	if (!job->auth_sent)
		return;
	for (p = buf; p < end;) {
		if (end - p >= 3 && strncmp(p, "235", 3) == 0) {
			job->auth_ok = true;
			return;
		}
		if (end - p >= 3 && (p[0] == '4' || p[0] == '5') &&
		    isdigit((unsigned char)p[1]) &&
		    isdigit((unsigned char)p[2])) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			char line[128];

			snprintf(line, sizeof(line), "%.*s",
			    (int)((nl != NULL ? nl : end) - p), p);
			smtp_reply_clean(line, job->auth_reply,
			    sizeof(job->auth_reply));
		}
		if ((p = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		p++;
	}
}

unsigned
smtp_take_pending_locked(struct smtp *s, struct smtp_item_list *to,
    unsigned max)
{
	struct smtp_item *it;
	unsigned n = 0;

	while (n < max && (it = TAILQ_FIRST(&s->pending)) != NULL) {
		TAILQ_REMOVE(&s->pending, it, entry);
		TAILQ_INSERT_TAIL(to, it, entry);
		s->npending--;
		n++;
	}
	return n;
}

static bool smtp_item_add(smtp_session_t, const struct smtp_conf *,
    struct smtp_item *);
static void smtp_job_top_up(struct smtp_job *, smtp_session_t, bool);

/* What smtp_judge() needs of one item: its own replies, the session's
 * flags and error. */
static void
smtp_item_judge_in(const struct smtp_job *job, const struct smtp_item *it,
    struct smtp_judge_in *in)
{
	const smtp_status_t *st;

	memset(in, 0, sizeof(*in));
	if (it->m != NULL) {
		if ((st = smtp_reverse_path_status(it->m)) != NULL) {
			in->mail_code = st->code;
			in->mail_text = st->text;
		}
		if ((st = smtp_message_transfer_status(it->m)) != NULL) {
			in->data_code = st->code;
			in->data_text = st->text;
		}
	}
	if (it->r != NULL && (st = smtp_recipient_status(it->r)) != NULL) {
		in->rcpt_code = st->code;
		in->rcpt_text = st->text;
	}
	in->body_sent = it->body_sent;
	in->auth_failed = job->auth_failed;
	in->tls_failed = job->tls_failed;
	in->session_err = job->err[0] != '\0' ? job->err : NULL;
}

/*
 * Hands an accepted item to the loop at once: it joins the adapter's
 * accepted list, and the first item of an empty list posts one wake-up
 * (workq_post); the loop takes the whole list when it runs
 * (smtp_accepted_done). While the loop is busy the list grows, so the
 * hand-over batches itself without holding any item back.
 */
static void
smtp_item_hand_over(struct smtp *s, struct smtp_item *it)
{
	bool post;

	pthread_mutex_lock(&s->mu);
	TAILQ_INSERT_TAIL(&s->accepted, it, entry);
	post = !s->accepted_posted;
	s->accepted_posted = true;
	pthread_mutex_unlock(&s->mu);
	if (post)
		workq_post(s->wq, smtp_accepted_done, s);
}

/*
 * libESMTP is done with message m (SMTP_EV_MESSAGESENT: after the reply
 * to the final ".", or to a refused DATA): an accepted one (MAIL, RCPT
 * and the final reply 2xx) is final whatever happens to the session
 * later (smtp_judge() says so first), so it is judged now and handed to
 * the loop at once (smtp_item_hand_over). Any other waits for the
 * session's end.
 */
static void
smtp_message_sent(struct smtp_job *job, smtp_session_t session,
    smtp_message_t m)
{
	struct smtp_item *it = smtp_message_get_application_data(m);
	struct smtp_judge_in in;

	if (it == NULL || it->judged)
		return;
	smtp_item_judge_in(job, it, &in);
	if (in.mail_code / 100 != 2 || in.rcpt_code / 100 != 2 ||
	    in.data_code / 100 != 2)
		return;
	smtp_judge(&in, &it->res);
	snprintf(it->res.provider_id, sizeof(it->res.provider_id), "<%.120s>",
	    it->msgid);
	it->judged = true;
	/* libESMTP is done with the text; freed here, not on the loop */
	free(it->text);
	it->text = NULL;
	it->textlen = 0;
	mime_copy_clear(&it->msg);
	job->accepted++;
	TAILQ_REMOVE(&job->items, it, entry);
	smtp_item_hand_over(job->s, it);
	/* nothing queued after it: the session would end (QUIT); the
	 * protocol engine moves to the next message after this event */
	if (job->nadded == job->nstarted)
		smtp_job_top_up(job, session, true);
}

/*
 * Keeps the session going: when fewer than SMTP_LOOKAHEAD messages wait
 * in libESMTP after the one whose MAIL reply just came, takes more from
 * the adapter's pending list (up to session_max_messages in all), builds
 * them and adds them to the running session, whose protocol engine finds
 * them when it moves to the next message. Nothing is taken once the
 * session is being aborted or the adapter drains.
 */
static void
smtp_job_top_up(struct smtp_job *job, smtp_session_t session, bool wait)
{
	struct smtp *s = job->s;
	struct smtp_item_list got;
	struct smtp_item *it;
	struct timespec until;
	int64_t t0;
	unsigned want, waiting = job->nadded - job->nstarted;

	if (waiting >= SMTP_LOOKAHEAD || job->nitems >= s->c.session_max)
		return;
	want = 2 * SMTP_LOOKAHEAD - waiting;
	if (want > s->c.session_max - job->nitems)
		want = s->c.session_max - job->nitems;
	TAILQ_INIT(&got);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += SMTP_IDLE_WAIT_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	/* the last message is done: wait a little for the next claim */
	if (wait && !job->abort && !s->draining && TAILQ_EMPTY(&s->pending)) {
		t0 = smtp_now_ms();
		while (!job->abort && !s->draining &&
		    TAILQ_EMPTY(&s->pending) &&
		    pthread_cond_timedwait(&s->more, &s->mu, &until) == 0)
			;
		job->idle_ms += smtp_now_ms() - t0;
	}
	if (!job->abort && !s->draining)
		(void)smtp_take_pending_locked(s, &got, want);
	pthread_mutex_unlock(&s->mu);
	while ((it = TAILQ_FIRST(&got)) != NULL) {
		TAILQ_REMOVE(&got, it, entry);
		TAILQ_INSERT_TAIL(&job->items, it, entry);
		job->nitems++;
		smtp_item_build(&s->c, it);
		if (!it->built)
			continue; /* res is final (permanent) */
		if (!smtp_item_add(session, &s->c, it))
			fatalx("smtp: libESMTP cannot add a message: out of "
			       "memory");
		job->nadded++;
	}
}

static void
smtp_on_event(smtp_session_t session, int event, void *arg, ...)
{
	struct smtp_job *job = arg;
	const bool verify = job->s->c.verify;
	const smtp_status_t *st;
	va_list ap;
	long vfy;
	int *ok, bits;

	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_MAILSTATUS:
		/* (mailbox, message): more only while MAIL is taken, or a
		 * refused sender would fail the whole backlog */
		job->nstarted++;
		(void)va_arg(ap, const char *);
		st = smtp_reverse_path_status(va_arg(ap, smtp_message_t));
		if (st != NULL && st->code / 100 == 2)
			smtp_job_top_up(job, session, false);
		break;
	case SMTP_EV_MESSAGESENT:
		smtp_message_sent(job, session, va_arg(ap, smtp_message_t));
		break;
	case SMTP_EV_STARTTLS_OK:
		job->tls_ok = true;
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		job->tls_failed = true;
		snprintf(job->err, sizeof(job->err),
		    "the server does not offer STARTTLS (starttls = "
		    "required)");
		break;
	case SMTP_EV_INVALID_PEER_CERTIFICATE:
		vfy = va_arg(ap, long);
		ok = va_arg(ap, int *);
		*ok = !verify;
		if (verify) {
			job->tls_failed = true;
			snprintf(job->err, sizeof(job->err),
			    "certificate verification failed: %s (check "
			    "ca_file)",
			    X509_verify_cert_error_string(vfy));
		}
		break;
	case SMTP_EV_NO_PEER_CERTIFICATE:
	case SMTP_EV_WRONG_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = !verify;
		if (verify) {
			job->tls_failed = true;
			snprintf(job->err, sizeof(job->err), "%s",
			    event == SMTP_EV_NO_PEER_CERTIFICATE
				? "the server sent no certificate"
				: "the certificate does not name the host "
				  "(host must match its DNS name)");
		}
		break;
	case SMTP_EV_WEAK_CIPHER:
		bits = va_arg(ap, int);
		ok = va_arg(ap, int *);
		*ok = 0;
		job->tls_failed = true;
		snprintf(job->err, sizeof(job->err),
		    "weak TLS cipher (%d bits)", bits);
		break;
	case SMTP_EV_SYNTAXWARNING:
	case SMTP_EV_EXTNA_DSN:
	case SMTP_EV_EXTNA_8BITMIME:
	case SMTP_EV_EXTNA_ETRN:
	case SMTP_EV_EXTNA_CHUNKING:
	case SMTP_EV_EXTNA_BINARYMIME:
		ok = va_arg(ap, int *); /* quit_now: keep going */
		if (ok != NULL)
			*ok = 0;
		break;
	default:
		break;
	}
	va_end(ap);
}

int64_t
smtp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sets up the session; -1 with job->err on a libESMTP API failure. */
static int
smtp_session_setup(struct smtp_job *job, smtp_session_t session,
    auth_context_t *authp)
{
	const struct smtp_conf *c = &job->s->c;
	static const int which[] = {Timeout_GREETING, Timeout_ENVELOPE,
	    Timeout_DATA, Timeout_TRANSFER, Timeout_DATA2};
	size_t i;
	long ms;
	auth_context_t auth;

	/* the event callback judges certificates and hands accepted
	 * messages over early (smtp_message_sent) */
	if (!smtp_set_server(session, c->server) ||
	    (c->helo != NULL && !smtp_set_hostname(session, c->helo)) ||
	    !smtp_set_eventcb(session, smtp_on_event, job))
		return -1;
	for (i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
		ms = which[i] == Timeout_TRANSFER || which[i] == Timeout_DATA2
		    ? (long)c->data_ms
		    : (long)c->command_ms;
		/* milliseconds, and below the RFC minimum only with the
		 * override flag (§12.1) */
		smtp_set_timeout(session,
		    which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, ms);
	}
	if (c->tls != SMTP_TLS_OFF &&
	    (!smtp_starttls_enable(session,
		 c->tls == SMTP_TLS_REQUIRED ? Starttls_REQUIRED
					     : Starttls_ENABLED) ||
		!smtp_starttls_set_ctx(session, job->s->ctx)))
		return -1;
	if (c->user != NULL) {
		if ((auth = auth_create_context()) == NULL)
			return -1;
		*authp = auth;
		auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(auth, smtp_interact, job);
		if (!smtp_auth_set_context(session, auth) ||
		    !smtp_set_monitorcb(session, smtp_monitor, job, 0))
			return -1;
	}
	return 0;
}

/* Adds it to the session: one message, one recipient; false on a
 * libESMTP failure (smtp_errno()). */
static bool
smtp_item_add(smtp_session_t session, const struct smtp_conf *c,
    struct smtp_item *it)
{
	if ((it->m = smtp_add_message(session)) == NULL)
		return false;
	/* no release function: the item is ours (smtp_message_sent) */
	smtp_message_set_application_data_release(it->m, it, NULL);
	return smtp_set_reverse_path(it->m, c->envelope_from) &&
	    smtp_set_messagecb(it->m, smtp_msg_cb, it) &&
	    (it->r = smtp_add_recipient(it->m, it->msg.to)) != NULL;
}

/* Judges every item of the finished session (§12.7). */
static void
smtp_session_judge(struct smtp_job *job)
{
	struct smtp_item *it;
	struct smtp_judge_in in;
	char reply[200];

	TAILQ_FOREACH(it, &job->items, entry) {
		if (it->judged)
			continue; /* accepted mid-session, counted then */
		if (!it->built)
			goto count;
		smtp_item_judge_in(job, it, &in);
		smtp_judge(&in, &it->res);
		if (it->res.outcome == SEND_ACCEPTED)
			snprintf(it->res.provider_id,
			    sizeof(it->res.provider_id), "<%.120s>", it->msgid);
	count:
		switch (it->res.outcome) {
		case SEND_ACCEPTED:
			job->accepted++;
			break;
		case SEND_TRANSIENT:
			job->transient++;
			break;
		case SEND_PERMANENT:
			job->permanent++;
			break;
		}
		if (it->res.outcome != SEND_ACCEPTED &&
		    job->first_reply[0] == '\0') {
			smtp_reply_clean(it->res.text, reply, sizeof(reply));
			snprintf(job->first_reply, sizeof(job->first_reply),
			    "%s", reply);
		}
	}
}

/* workq run: the whole SMTP session of one job, on a worker thread. */
void
smtp_job_run(void *arg)
{
	struct smtp_job *job = arg;
	struct smtp *s = job->s;
	struct smtp_item *it;
	smtp_session_t session = NULL;
	auth_context_t auth = NULL;
	char ebuf[160];
	int64_t t0 = smtp_now_ms();
	int rc = 0, nmsgs = 0;
	bool aborted;

	pthread_mutex_lock(&s->mu);
	job->started_ms = t0;
	aborted = job->abort;
	/* a spare (smtp_dispatch) takes its first messages now */
	if (job->nitems == 0 && !aborted && !s->draining)
		job->nitems = smtp_take_pending_locked(s, &job->items,
		    s->c.session_max < 2 * SMTP_LOOKAHEAD ? s->c.session_max
							  : 2 * SMTP_LOOKAHEAD);
	pthread_mutex_unlock(&s->mu);
	TAILQ_FOREACH(it, &job->items, entry)
		smtp_item_build(&s->c, it);
	if (aborted) {
		snprintf(job->err, sizeof(job->err), "shutting down");
		goto judge;
	}
	if (job->nitems == 0)
		goto judge; /* a spare that found nothing: no session */
	if ((session = smtp_create_session()) == NULL ||
	    smtp_session_setup(job, session, &auth) == -1) {
		snprintf(job->err, sizeof(job->err),
		    "libESMTP setup failed: %s",
		    smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
		goto judge;
	}
	TAILQ_FOREACH(it, &job->items, entry) {
		if (!it->built)
			continue;
		if (!smtp_item_add(session, &s->c, it)) {
			snprintf(job->err, sizeof(job->err),
			    "libESMTP setup failed: %s",
			    smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
			goto judge;
		}
		nmsgs++;
	}
	job->nadded = (unsigned)nmsgs;
	smtp_cur_job = job;
	if (nmsgs > 0)
		rc = smtp_start_session(session);
	smtp_cur_job = NULL;
	/* return 1 means nothing (§12.1): the statuses say what happened */
	if (nmsgs > 0 && job->err[0] == '\0') {
		pthread_mutex_lock(&s->mu);
		aborted = job->abort && !job->auth_failed;
		pthread_mutex_unlock(&s->mu);
		if (job->timed_out)
			snprintf(job->err, sizeof(job->err),
			    "session exceeded session_timeout");
		else if (aborted)
			snprintf(job->err, sizeof(job->err),
			    "session aborted at shutdown");
		else if (job->auth_failed)
			snprintf(job->err, sizeof(job->err), "%s",
			    job->auth_sent ? "the server refused the "
					     "credentials"
					   : "the server offers no usable "
					     "AUTH mechanism (PLAIN, LOGIN)");
		else if (job->connect_timed_out)
			snprintf(job->err, sizeof(job->err),
			    "connect to %.200s timed out after %u ms",
			    s->c.server, s->c.connect_ms);
		else if (rc == 0 || smtp_errno() != 0)
			snprintf(job->err, sizeof(job->err), "%s%s",
			    rc == 0 ? "cannot connect or greeting refused: "
				    : "",
			    smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
		if (job->auth_failed && job->auth_reply[0] != '\0') {
			size_t n = strlen(job->err);

			snprintf(job->err + n, sizeof(job->err) - n, " (%s)",
			    job->auth_reply);
		}
	}
judge:
	smtp_session_judge(job);
	if (session != NULL)
		smtp_destroy_session(session);
	if (auth != NULL)
		auth_destroy_context(auth);
	pthread_mutex_lock(&s->mu);
	if (job->fd != -1)
		close(job->fd);
	job->fd = -1;
	pthread_mutex_unlock(&s->mu);
	job->duration_ms = smtp_now_ms() - t0;
}
