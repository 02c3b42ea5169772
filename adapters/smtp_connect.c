/*
 * smtp_connect.c - the process's connect() and poll(), for the SMTP
 * sessions.
 *
 * libESMTP 1.1.0 sets no TCP_NODELAY (23 messages/s per session) and has
 * no connect timeout. This file defines connect() (interposition without
 * LD_PRELOAD): the executable's definition is the
 * one libesmtp.so binds to. On an SMTP worker thread during a session
 * (smtp_cur_job set) it sets TCP_NODELAY, connects non-blocking with
 * connect_timeout, and keeps a dup of the socket so the loop can
 * shutdown() a stuck session (session_timeout watchdog, shutdown). Every
 * other caller (libcurl, the resolver) goes straight to the real
 * connect().
 *
 * poll(), the same way: before each command group libESMTP asks whether
 * its socket is readable or writable ({fd, POLLIN}, {fd, POLLOUT}), and
 * the answer is "writable" at once: its socket's send buffer holds many
 * messages and it never fills on SMTP's replies. On an SMTP worker during
 * a session that exact pattern is answered "writable" without the system
 * call: 3 of the 13 system calls of a message (measured with strace: 7
 * polls, 3 writes, 3 reads), a fifth of a bare libESMTP client's CPU
 * (bench/smtp_clients, doc/adapters.md). It changes no outcome: a write
 * that would block still gets EAGAIN, and libESMTP then waits in a poll
 * for POLLOUT alone, which goes to the kernel as before, as do every
 * wait for a reply and every poll of any other thread or shape. Replies
 * are read by the next poll, which asks for POLLIN alone.
 *
 * The object is linked because smtp.c calls smtp_connect_init() and
 * smtp_job_abort_locked(): keep them here, or connect() is left out of
 * the executable and the sessions lose their timeouts.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "smtp-internal.h"

__thread struct smtp_job *smtp_cur_job;

static pthread_once_t smtp_once = PTHREAD_ONCE_INIT;
static int (*smtp_real_connect)(int, const struct sockaddr *, socklen_t);
static int (*smtp_real_poll)(struct pollfd *, nfds_t, int);

static void
smtp_connect_resolve(void)
{
	smtp_real_connect = (int (*)(int, const struct sockaddr *,
	    socklen_t))dlsym(RTLD_NEXT, "connect");
	if (smtp_real_connect == NULL)
		fatalx("smtp: dlsym(RTLD_NEXT, connect) failed: %s", dlerror());
	smtp_real_poll =
	    (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT, "poll");
	if (smtp_real_poll == NULL)
		fatalx("smtp: dlsym(RTLD_NEXT, poll) failed: %s", dlerror());
}

void
smtp_connect_init(void)
{
	pthread_once(&smtp_once, smtp_connect_resolve);
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

int poll(struct pollfd *fds, nfds_t nfds, int timeout);

/*
 * The process's poll(). On an SMTP worker during a session, libESMTP's
 * "readable or writable?" ({fd, POLLIN}, {fd, POLLOUT} on its socket) is
 * answered "writable" without a system call (see the top of the file);
 * everything else is the real poll().
 */
int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	pthread_once(&smtp_once, smtp_connect_resolve);
	if (smtp_cur_job != NULL && nfds == 2 && fds[0].fd >= 0 &&
	    fds[0].fd == fds[1].fd && fds[0].events == POLLIN &&
	    fds[1].events == POLLOUT) {
		fds[0].revents = 0;
		fds[1].revents = POLLOUT;
		return 1;
	}
	return smtp_real_poll(fds, nfds, timeout);
}

/* Ends the job's session from any thread; s->mu held. */
void
smtp_job_abort_locked(struct smtp_job *job)
{
	job->abort = true;
	if (job->fd != -1)
		(void)shutdown(job->fd, SHUT_RDWR);
	pthread_cond_broadcast(&job->s->more);
}
