/*
 * smtp.c - email over SMTP with libESMTP 1.1.0 on worker threads
 * (DESIGN §1, §5; PROTOCOLS §9, §12).
 *
 * send() copies the message into a pending list and returns. On the next
 * loop turn the pending messages are split into jobs, one per free worker
 * and at most session_max_messages each; a job is one SMTP session (one
 * connection, MAIL/RCPT/DATA per message, QUIT) run by libESMTP on a
 * workq thread. The MIME text is built on the worker (mime_build() is
 * pure). When the session returns, every message is judged from its own
 * MAIL, RCPT and DATA statuses (smtp_judge(), smtp.h) and the results go
 * back to the loop through workq's done callback, which calls each
 * message's done exactly once. Nothing waits to fill a batch: a lone
 * message leaves on the next loop turn; under load the backlog that
 * builds while the workers are busy becomes the next sessions.
 *
 * libESMTP 1.1.0 pitfalls (PROTOCOLS §12) and what this file does:
 *  - No TCP_NODELAY (23 msgs/s per session) and no connect timeout: this
 *    file defines connect() (LD-free interposition, §12.3 (a)); the
 *    executable's definition is what libesmtp.so binds to. On an SMTP
 *    worker thread (a thread-local job is set) it sets TCP_NODELAY,
 *    connects non-blocking with connect_timeout, and keeps a dup of the
 *    socket so the loop can shutdown() a stuck session (session_timeout
 *    watchdog, shutdown). Every other caller (libcurl, the resolver) goes
 *    straight to the real connect().
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
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* auth-client.h and openssl/ssl.h before libesmtp.h (PROTOCOLS §12.4/5). */
#include <auth-client.h>
#include <libesmtp.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "dkim.h"
#include "log.h"
#include "mime.h"
#include "smtp.h"
#include "workq.h"
#include "xmalloc.h"

#define SMTP_WATCHDOG_MS 500 /* how often stuck sessions are looked for */

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
	int64_t id;
	char to[MSG_ADDR_MAX];
	char *from; /* NULL = conf from */
	char *subject;
	char *body;
	char *html;
	char *unsubscribe_url;
	char *unsubscribe_mailto;
	char msgid[160];
	int64_t date;
	adapter_done_fn *done;
	void *arg;
	/* worker side */
	char *text; /* the MIME message */
	size_t textlen;
	bool fed;	/* the message callback handed out the text */
	bool body_sent; /* ... and was asked for more: all of it is out */
	bool built;	/* text is there (else res is already final) */
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
	unsigned accepted, transient, permanent;
	char first_reply[200]; /* first non-2xx reply, for the warning */
};

struct smtp {
	struct adapter *ad;
	struct smtp_conf c;
	SSL_CTX *ctx; /* NULL when starttls = off */
	struct workq *wq;
	struct smtp_item_list pending;
	unsigned npending;
	unsigned nrunning;
	TAILQ_HEAD(, smtp_job) running;
	pthread_mutex_t mu;
	struct event *kick_ev;
	struct event *watchdog_ev;
	bool kick_scheduled;
	bool freeing;
};

static int smtp_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int smtp_send(struct adapter *, const struct out_msg *,
    adapter_done_fn *, void *);
static void smtp_drain(struct adapter *);
static void smtp_free(struct adapter *);

const struct adapter_ops smtp_ops = {
    .name = "smtp",
    .channel = CHANNEL_EMAIL,
    .init = smtp_init,
    .send = smtp_send,
    .drain = smtp_drain,
    .free = smtp_free,
};

static const char *const smtp_keys[] = {"host", "port", "starttls", "verify",
    "ca_file", "user", "password", "envelope_from", "from", "reply_to", "helo",
    "connect_timeout", "command_timeout", "data_timeout", "session_timeout",
    "workers", "session_max_messages", NULL};

/* The job of the session this worker thread runs, for connect(). */
static __thread struct smtp_job *smtp_cur_job;

static pthread_once_t smtp_once = PTHREAD_ONCE_INIT;
static int (*smtp_real_connect)(int, const struct sockaddr *, socklen_t);

/* ---------------------------------------------------------------------
 * Pure parts (smtp.h)
 */

void
smtp_reply_clean(const char *in, char *out, size_t len)
{
	char word[MSG_ADDR_MAX], masked[MSG_ADDR_MAX];
	size_t o = 0, w;
	const char *p = in != NULL ? in : "";

	if (len == 0)
		return;
	while (*p != '\0' && o + 1 < len) {
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			p++;
			continue;
		}
		/* a word: up to a space or a delimiter around addresses */
		for (w = 0; p[w] != '\0' && !isspace((unsigned char)p[w]) &&
		     !iscntrl((unsigned char)p[w]) &&
		     strchr("<>\"',;:=()[]", p[w]) == NULL;
		     w++)
			;
		if (w == 0) {
			out[o++] = *p++;
			continue;
		}
		if (memchr(p, '@', w) != NULL) {
			snprintf(word, sizeof(word), "%.*s",
			    (int)(w < sizeof(word) - 1 ? w : sizeof(word) - 1),
			    p);
			log_mask_email(word, masked, sizeof(masked));
			o += strlcpy(out + o, masked, len - o);
			if (o >= len)
				o = len - 1;
		} else {
			if (w > len - 1 - o)
				w = len - 1 - o;
			memcpy(out + o, p, w);
			o += w;
		}
		p += w;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* Sets res to outcome with "CODE text" as its text. */
static void
smtp_judge_set(struct send_result *res, enum send_outcome outcome, int code,
    const char *what, const char *text)
{
	char clean[200];

	smtp_reply_clean(text, clean, sizeof(clean));
	if (code != 0)
		send_result_set(res, outcome, code, "%s %d %s", what, code,
		    clean);
	else
		send_result_set(res, outcome, 0, "%s%s%s", what,
		    clean[0] != '\0' ? ": " : "", clean);
}

void
smtp_judge(const struct smtp_judge_in *in, struct send_result *res)
{
	int mail = in->mail_code / 100, rcpt = in->rcpt_code / 100,
	    data = in->data_code / 100;

	if (mail == 2 && rcpt == 2 && data == 2) {
		send_result_set(res, SEND_ACCEPTED, in->data_code, NULL);
		return;
	}
	if (in->auth_failed) {
		smtp_judge_set(res, SEND_TRANSIENT, 0,
		    "SMTP AUTH failed, nothing sent", in->session_err);
		res->flags |= SEND_F_SENDER_BROKEN;
		return;
	}
	if (in->tls_failed) {
		smtp_judge_set(res, SEND_TRANSIENT, 0, "STARTTLS failed",
		    in->session_err);
		res->flags |= SEND_F_SENDER_BROKEN;
		return;
	}
	if (mail == 5) {
		if (in->mail_code == 552) {
			smtp_judge_set(res, SEND_PERMANENT, in->mail_code,
			    "MAIL FROM refused:", in->mail_text);
			return;
		}
		smtp_judge_set(res, SEND_TRANSIENT, in->mail_code,
		    "sender refused: MAIL FROM", in->mail_text);
		res->flags |= SEND_F_SENDER_BROKEN;
		return;
	}
	if (mail != 2) {
		smtp_judge_set(res, SEND_TRANSIENT, in->mail_code,
		    in->mail_code != 0 ? "MAIL FROM" : "not sent",
		    in->mail_code != 0 ? in->mail_text : in->session_err);
		return;
	}
	if (rcpt == 5) {
		smtp_judge_set(res, SEND_PERMANENT, in->rcpt_code, "RCPT TO",
		    in->rcpt_text);
		return;
	}
	if (rcpt != 2) {
		smtp_judge_set(res, SEND_TRANSIENT, in->rcpt_code,
		    in->rcpt_code != 0 ? "RCPT TO" : "not sent",
		    in->rcpt_code != 0 ? in->rcpt_text : in->session_err);
		return;
	}
	if (data == 5) {
		smtp_judge_set(res, SEND_PERMANENT, in->data_code, "DATA",
		    in->data_text);
		return;
	}
	if (data == 4) {
		smtp_judge_set(res, SEND_TRANSIENT, in->data_code, "DATA",
		    in->data_text);
		return;
	}
	/* RCPT accepted, no (or an odd) final reply */
	smtp_judge_set(res, SEND_TRANSIENT, in->data_code,
	    in->body_sent ? "no reply after the message was sent" : "not sent",
	    in->data_code != 0 ? in->data_text : in->session_err);
	res->uncertain = in->body_sent;
}

/* ---------------------------------------------------------------------
 * connect() interposition (PROTOCOLS §12.1, §12.3 (a))
 */

static void
smtp_connect_resolve(void)
{
	smtp_real_connect = (int (*)(int, const struct sockaddr *,
	    socklen_t))dlsym(RTLD_NEXT, "connect");
	if (smtp_real_connect == NULL)
		fatalx("smtp: dlsym(RTLD_NEXT, connect) failed: %s", dlerror());
}

/* Remembers a dup of fd as the job's socket, for smtp_job_abort(). */
static bool
smtp_job_set_fd(struct smtp_job *job, int fd)
{
	struct smtp *s = job->s;
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	bool abort;

	pthread_mutex_lock(&s->mu);
	if (job->fd != -1)
		close(job->fd);
	job->fd = dfd;
	abort = job->abort;
	pthread_mutex_unlock(&s->mu);
	return abort;
}

static bool
smtp_job_aborted(struct smtp_job *job)
{
	bool abort;

	pthread_mutex_lock(&job->s->mu);
	abort = job->abort;
	pthread_mutex_unlock(&job->s->mu);
	return abort;
}

/* Waits for a non-blocking connect on fd; 0 or -1 with errno. */
static int
smtp_connect_wait(struct smtp_job *job, int fd)
{
	struct pollfd pfd;
	struct timespec t0, t;
	int64_t left;
	int soerr, n;
	socklen_t slen = sizeof(soerr);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = (int64_t)job->s->c.connect_ms -
		    ((t.tv_sec - t0.tv_sec) * 1000 +
			(t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0) {
			job->connect_timed_out = true;
			errno = ETIMEDOUT;
			return -1;
		}
		if (smtp_job_aborted(job)) {
			errno = ECANCELED;
			return -1;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		n = poll(&pfd, 1, left < 200 ? (int)left : 200);
		if (n == -1 && errno != EINTR)
			return -1;
		if (n > 0)
			break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == -1)
		return -1;
	if (soerr != 0) {
		errno = soerr;
		return -1;
	}
	return 0;
}

int connect(int fd, const struct sockaddr *sa, socklen_t salen);

/*
 * The process's connect(). Only a TCP connect made on an SMTP worker
 * during a session is changed: TCP_NODELAY, a bounded wait, a dup kept
 * for aborting. The socket is blocking again on return, as libESMTP
 * expects.
 */
int
connect(int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct smtp_job *job = smtp_cur_job;
	int type = 0, one = 1, flags, rc, saved;
	socklen_t tlen = sizeof(type);

	pthread_once(&smtp_once, smtp_connect_resolve);
	if (job == NULL || sa == NULL ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == -1 ||
	    type != SOCK_STREAM)
		return smtp_real_connect(fd, sa, salen);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (smtp_job_set_fd(job, fd)) {
		errno = ECANCELED;
		return -1;
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return smtp_real_connect(fd, sa, salen);
	rc = smtp_real_connect(fd, sa, salen);
	if (rc == -1 && errno == EINPROGRESS)
		rc = smtp_connect_wait(job, fd);
	saved = errno;
	(void)fcntl(fd, F_SETFL, flags);
	errno = saved;
	return rc;
}

/* Ends the job's session from any thread; s->mu held. */
static void
smtp_job_abort_locked(struct smtp_job *job)
{
	job->abort = true;
	if (job->fd != -1)
		(void)shutdown(job->fd, SHUT_RDWR);
}

/* ---------------------------------------------------------------------
 * Configuration
 */

static bool
smtp_host_is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 ||
	    strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "localhost.localdomain") == 0;
}

/* The addr-spec of "Name <addr>" or "addr" into buf; -1 if none. */
static int
smtp_addr_spec(const char *value, char *buf, size_t len)
{
	const char *lt = strrchr(value, '<'), *gt, *p;

	if (lt != NULL) {
		if ((gt = strchr(lt, '>')) == NULL)
			return -1;
		snprintf(buf, len, "%.*s", (int)(gt - lt - 1), lt + 1);
	} else {
		while (isspace((unsigned char)*value))
			value++;
		snprintf(buf, len, "%s", value);
		while (*buf != '\0' &&
		    isspace((unsigned char)buf[strlen(buf) - 1]))
			buf[strlen(buf) - 1] = '\0';
	}
	if ((p = strchr(buf, '@')) == NULL || p == buf || p[1] == '\0' ||
	    strpbrk(buf, " \t\r\n<>") != NULL)
		return -1;
	return 0;
}

static int
smtp_conf_addr(const struct config_section *sec, const char *key,
    const char *value, char *buf, size_t len, char *err, size_t errlen)
{
	if (smtp_addr_spec(value, buf, len) == 0)
		return 0;
	snprintf(err, errlen,
	    "%s:%d: %s must hold an address (Name <user@domain> or "
	    "user@domain)",
	    sec->file, config_section_line(sec, key), key);
	return -1;
}

/* Reads [smtp] into c; FILE:LINE errors (rule 1). */
static int
smtp_conf_load(struct smtp_conf *c, const struct config_section *sec, char *err,
    size_t errlen)
{
	const char *host = NULL, *tls = NULL, *ca = NULL, *user = NULL,
		   *pass = NULL, *env = NULL, *from = NULL, *reply = NULL,
		   *helo = NULL;
	char addr[MSG_ADDR_MAX];
	unsigned port = 0;

	if (config_section_check_keys(sec, smtp_keys, err, errlen) == -1 ||
	    config_section_str(sec, "host", true, &host, err, errlen) == -1 ||
	    config_section_uint(sec, "port", 1, 65535, &port, err, errlen) ==
		-1 ||
	    config_section_str(sec, "starttls", false, &tls, err, errlen) ==
		-1 ||
	    config_section_str(sec, "ca_file", false, &ca, err, errlen) == -1 ||
	    config_section_str(sec, "user", false, &user, err, errlen) == -1 ||
	    config_section_str(sec, "password", false, &pass, err, errlen) ==
		-1 ||
	    config_section_str(sec, "envelope_from", false, &env, err,
		errlen) == -1 ||
	    config_section_str(sec, "from", true, &from, err, errlen) == -1 ||
	    config_section_str(sec, "reply_to", false, &reply, err, errlen) ==
		-1 ||
	    config_section_str(sec, "helo", false, &helo, err, errlen) == -1)
		return -1;
	c->verify = true;
	c->connect_ms = 10000;
	c->command_ms = 60000;
	c->data_ms = 120000;
	c->session_ms = 600000;
	c->workers = 4;
	c->session_max = 100;
	if (config_section_bool(sec, "verify", &c->verify, err, errlen) == -1 ||
	    config_section_duration_ms(sec, "connect_timeout", 100, 600000,
		&c->connect_ms, err, errlen) == -1 ||
	    /* libESMTP's floor is 1000 ms (PROTOCOLS §12.1) */
	    config_section_duration_ms(sec, "command_timeout", 1000, 600000,
		&c->command_ms, err, errlen) == -1 ||
	    config_section_duration_ms(sec, "data_timeout", 1000, 3600000,
		&c->data_ms, err, errlen) == -1 ||
	    config_section_duration_ms(sec, "session_timeout", 1000, 86400000,
		&c->session_ms, err, errlen) == -1 ||
	    config_section_uint(sec, "workers", 1, WORKQ_MAX_THREADS,
		&c->workers, err, errlen) == -1 ||
	    config_section_uint(sec, "session_max_messages", 1, 1000,
		&c->session_max, err, errlen) == -1)
		return -1;
	if (host[0] == '\0' || strpbrk(host, " \t:/[]") != NULL) {
		snprintf(err, errlen,
		    "%s:%d: host must be a host name or an IPv4 address "
		    "(put the port in 'port')",
		    sec->file, config_section_line(sec, "host"));
		return -1;
	}
	if (tls == NULL)
		c->tls = smtp_host_is_loopback(host) ? SMTP_TLS_OFF
						     : SMTP_TLS_REQUIRED;
	else if (strcmp(tls, "required") == 0)
		c->tls = SMTP_TLS_REQUIRED;
	else if (strcmp(tls, "opportunistic") == 0)
		c->tls = SMTP_TLS_OPPORTUNISTIC;
	else if (strcmp(tls, "off") == 0)
		c->tls = SMTP_TLS_OFF;
	else {
		snprintf(err, errlen,
		    "%s:%d: starttls must be required, opportunistic or off, "
		    "not '%s'",
		    sec->file, config_section_line(sec, "starttls"), tls);
		return -1;
	}
	if ((user == NULL) != (pass == NULL)) {
		snprintf(err, errlen, "%s:%d: user and password go together",
		    sec->file,
		    config_section_line(sec,
			user == NULL ? "password" : "user"));
		return -1;
	}
	if (user != NULL && c->tls != SMTP_TLS_REQUIRED &&
	    !smtp_host_is_loopback(host)) {
		snprintf(err, errlen,
		    "%s:%d: AUTH to a remote host needs starttls = required "
		    "(the password would cross the network in clear text)",
		    sec->file, config_section_line(sec, "starttls"));
		return -1;
	}
	if (ca != NULL && c->tls == SMTP_TLS_OFF) {
		snprintf(err, errlen,
		    "%s:%d: ca_file is set but starttls = off", sec->file,
		    config_section_line(sec, "ca_file"));
		return -1;
	}
	if (smtp_conf_addr(sec, "from", from, addr, sizeof(addr), err,
		errlen) == -1)
		return -1;
	c->domain = xstrdup(strrchr(addr, '@') + 1);
	if (env == NULL)
		env = addr;
	else if (smtp_conf_addr(sec, "envelope_from", env, addr, sizeof(addr),
		     err, errlen) == -1)
		return -1;
	else
		env = addr;
	if (reply != NULL) {
		char tmp[MSG_ADDR_MAX];

		if (smtp_conf_addr(sec, "reply_to", reply, tmp, sizeof(tmp),
			err, errlen) == -1)
			return -1;
	}
	if (helo != NULL &&
	    (helo[0] == '\0' || strpbrk(helo, " \t\r\n<>@") != NULL)) {
		snprintf(err, errlen, "%s:%d: helo must be a host name",
		    sec->file, config_section_line(sec, "helo"));
		return -1;
	}
	c->port = port != 0 ? port : user != NULL ? 587 : 25;
	c->host = xstrdup(host);
	snprintf(c->server, sizeof(c->server), "%s:%u", host, c->port);
	c->ca_file = ca != NULL ? xstrdup(ca) : NULL;
	c->user = user != NULL ? xstrdup(user) : NULL;
	c->password = pass != NULL ? xstrdup(pass) : NULL;
	c->envelope_from = xstrdup(env);
	c->from = xstrdup(from);
	c->reply_to = reply != NULL ? xstrdup(reply) : NULL;
	c->helo = helo != NULL ? xstrdup(helo) : NULL;
	return 0;
}

static void
smtp_conf_clear(struct smtp_conf *c)
{
	free(c->host);
	free(c->ca_file);
	free(c->user);
	if (c->password != NULL)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	free(c->envelope_from);
	free(c->from);
	free(c->reply_to);
	free(c->helo);
	free(c->domain);
	dkim_signer_free(c->dkim);
	memset(c, 0, sizeof(*c));
}

/* The adapter's SSL_CTX: TLS 1.2 only (§12.4 bug 2), system + ca_file. */
static SSL_CTX *
smtp_tls_ctx(const struct smtp_conf *c, const struct config_section *sec,
    char *err, size_t errlen)
{
	SSL_CTX *ctx;
	unsigned long e;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "smtp: SSL_CTX_new failed");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "smtp: cannot set up the TLS context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (c->ca_file != NULL &&
	    SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
		e = ERR_get_error();
		snprintf(err, errlen, "%s:%d: cannot load ca_file %s: %s",
		    sec->file, config_section_line(sec, "ca_file"), c->ca_file,
		    e != 0 ? ERR_reason_error_string(e) : "unknown error");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* libESMTP checks the verify result and the name itself and asks
	 * the event callback (smtp_on_event); the handshake completes. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

static void
smtp_global_init(void)
{
	auth_client_init(); /* once, before any thread (§12.2) */
}

static void smtp_on_kick(evutil_socket_t, short, void *);
static void smtp_on_watchdog(evutil_socket_t, short, void *);
static void smtp_schedule(struct smtp *);

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
	pthread_once(&smtp_once, smtp_connect_resolve);
	pthread_mutex_init(&s->mu, NULL);
	TAILQ_INIT(&s->pending);
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
 * The worker side: one libESMTP session
 */

static void
smtp_item_free(struct smtp_item *it)
{
	free(it->from);
	free(it->subject);
	free(it->body);
	free(it->html);
	free(it->unsubscribe_url);
	free(it->unsubscribe_mailto);
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
	m.from = it->from != NULL ? it->from : c->from;
	m.to = it->to;
	m.reply_to = c->reply_to;
	m.subject = it->subject != NULL ? it->subject : "";
	m.text = it->body;
	m.html = it->html;
	m.message_id = it->msgid;
	m.date = it->date;
	/* RFC 8058 List-Unsubscribe(-Post) and the visible link */
	m.unsubscribe_url = it->unsubscribe_url;
	m.unsubscribe_mailto = it->unsubscribe_mailto;
	if (mime_build(&m, buf, err, sizeof(err)) == -1) {
		send_result_set(&it->res, SEND_PERMANENT, 0,
		    "cannot build the message: %s", err);
		evbuffer_free(buf);
		return;
	}
	/*
	 * Signed last, over the text exactly as libESMTP will send it: it
	 * adds no header to a message that has Date, From and Message-ID,
	 * and it sends the text as it is (PROTOCOLS §9).
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

static void
smtp_on_event(smtp_session_t session, int event, void *arg, ...)
{
	struct smtp_job *job = arg;
	const bool verify = job->s->c.verify;
	va_list ap;
	long vfy;
	int *ok, bits;

	(void)session;
	va_start(ap, arg);
	switch (event) {
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

static int64_t
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

	/* the event callback only judges certificates: none without TLS
	 * (it would run several times per message for nothing) */
	if (!smtp_set_server(session, c->server) ||
	    (c->helo != NULL && !smtp_set_hostname(session, c->helo)) ||
	    (c->tls != SMTP_TLS_OFF &&
		!smtp_set_eventcb(session, smtp_on_event, job)))
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

/* Judges every item of the finished session (§12.7). */
static void
smtp_session_judge(struct smtp_job *job)
{
	struct smtp_item *it;
	struct smtp_judge_in in;
	const smtp_status_t *st;
	char reply[200];

	TAILQ_FOREACH(it, &job->items, entry) {
		if (!it->built)
			goto count;
		memset(&in, 0, sizeof(in));
		if (it->m != NULL) {
			if ((st = smtp_reverse_path_status(it->m)) != NULL) {
				in.mail_code = st->code;
				in.mail_text = st->text;
			}
			if ((st = smtp_message_transfer_status(it->m)) !=
			    NULL) {
				in.data_code = st->code;
				in.data_text = st->text;
			}
		}
		if (it->r != NULL &&
		    (st = smtp_recipient_status(it->r)) != NULL) {
			in.rcpt_code = st->code;
			in.rcpt_text = st->text;
		}
		in.body_sent = it->body_sent;
		in.auth_failed = job->auth_failed;
		in.tls_failed = job->tls_failed;
		in.session_err = job->err[0] != '\0' ? job->err : NULL;
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
static void
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
	pthread_mutex_unlock(&s->mu);
	TAILQ_FOREACH(it, &job->items, entry)
		smtp_item_build(&s->c, it);
	if (aborted) {
		snprintf(job->err, sizeof(job->err), "shutting down");
		goto judge;
	}
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
		if ((it->m = smtp_add_message(session)) == NULL ||
		    !smtp_set_reverse_path(it->m, s->c.envelope_from) ||
		    !smtp_set_messagecb(it->m, smtp_msg_cb, it) ||
		    (it->r = smtp_add_recipient(it->m, it->to)) == NULL) {
			snprintf(job->err, sizeof(job->err),
			    "libESMTP setup failed: %s",
			    smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
			goto judge;
		}
		nmsgs++;
	}
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
	char masked[MSG_ADDR_MAX], line[400];

	pthread_mutex_lock(&s->mu);
	TAILQ_REMOVE(&s->running, job, entry);
	pthread_mutex_unlock(&s->mu);
	s->nrunning--;
	if (!cancelled && !s->freeing) {
		snprintf(line, sizeof(line),
		    "smtp_session server=%s messages=%u accepted=%u "
		    "transient=%u permanent=%u tls=%s duration_ms=%lld",
		    s->c.server, job->nitems, job->accepted, job->transient,
		    job->permanent, job->tls_ok ? "yes" : "no",
		    (long long)job->duration_ms);
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
				    (long long)it->id,
				    log_mask_email(it->to, masked,
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

/* Starts sessions for the pending items while workers are free. */
static void
smtp_dispatch(struct smtp *s)
{
	struct smtp_job *job;
	struct smtp_item *it;
	unsigned free_workers, n;
	char err[256];

	if (s->npending == 0 || s->freeing)
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
	while (s->npending > 0) {
		if (s->nrunning < s->c.workers) {
			/* spread a backlog over the free workers, each
			 * session at most session_max messages */
			free_workers = s->c.workers - s->nrunning;
			n = (s->npending + free_workers - 1) / free_workers;
			if (n > s->c.session_max)
				n = s->c.session_max;
		} else if (s->nrunning < 2 * s->c.workers &&
		    s->npending >= s->c.session_max) {
			/* every worker busy and a full session waiting:
			 * queue it, so a worker that finishes starts the
			 * next session at once instead of waiting for the
			 * loop to hand out results first */
			n = s->c.session_max;
		} else
			break;
		job = xcalloc(1, sizeof(*job));
		job->s = s;
		job->fd = -1;
		TAILQ_INIT(&job->items);
		while (job->nitems < n &&
		    (it = TAILQ_FIRST(&s->pending)) != NULL) {
			TAILQ_REMOVE(&s->pending, it, entry);
			TAILQ_INSERT_TAIL(&job->items, it, entry);
			job->nitems++;
			s->npending--;
		}
		pthread_mutex_lock(&s->mu);
		TAILQ_INSERT_TAIL(&s->running, job, entry);
		pthread_mutex_unlock(&s->mu);
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
	if (s->kick_scheduled || s->kick_ev == NULL || s->npending == 0)
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
	it->id = msg->id;
	strlcpy(it->to, msg->to, sizeof(it->to));
	it->from = msg->from[0] != '\0' ? xstrdup(msg->from) : NULL;
	it->subject = msg->subject != NULL ? xstrdup(msg->subject) : NULL;
	it->body = xstrdup(msg->body);
	it->html = msg->html != NULL ? xstrdup(msg->html) : NULL;
	it->unsubscribe_url =
	    msg->unsubscribe_url != NULL ? xstrdup(msg->unsubscribe_url) : NULL;
	it->unsubscribe_mailto = msg->unsubscribe_mailto != NULL
	    ? xstrdup(msg->unsubscribe_mailto)
	    : NULL;
	/* The same on every attempt: a receiver that dedups by Message-ID
	 * (Gmail does) drops the copy a duplicate window produced. */
	snprintf(it->msgid, sizeof(it->msgid), "%lld.%llx.od@%.64s",
	    (long long)msg->id, (unsigned long long)msg->created_at,
	    s->c.domain);
	it->date = (int64_t)time(NULL);
	it->done = done;
	it->arg = arg;
	TAILQ_INSERT_TAIL(&s->pending, it, entry);
	s->npending++;
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

	if (s->npending == 0)
		return;
	/* a job that never runs a session: its items are judged "not
	 * sent: shutting down" and come back through workq as usual */
	job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->fd = -1;
	job->abort = true;
	TAILQ_INIT(&job->items);
	TAILQ_CONCAT(&job->items, &s->pending, entry);
	job->nitems = s->npending;
	s->npending = 0;
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
	if (s->kick_ev != NULL)
		event_free(s->kick_ev);
	if (s->watchdog_ev != NULL)
		event_free(s->watchdog_ev);
	if (s->ctx != NULL)
		SSL_CTX_free(s->ctx);
	pthread_mutex_destroy(&s->mu);
	smtp_conf_clear(&s->c);
	free(s);
	ad->priv = NULL;
}
