/*
 * smtp_clients.c - bare SMTP clients for bench/smtp: how fast libESMTP
 * (the adapter's library, one blocked thread per session) and libcurl's
 * SMTP (one non-blocking multi handle, the alternative) move messages to
 * a sink with no daemon around them. A measurement, not a mail client.
 *
 * usage: smtp_clients esmtp|curl PARALLEL COUNT PER_SESSION HOST PORT
 *
 *  esmtp  PARALLEL threads, each running libESMTP sessions of
 *         PER_SESSION messages (TCP_NODELAY set through connect() below,
 *         as the adapter's smtp_connect.c does) until COUNT are sent;
 *  curl   one curl multi handle with PARALLEL easy handles, one message
 *         per transfer, connections reused (PER_SESSION is ignored:
 *         libcurl keeps a connection for as long as it is reused).
 *
 * Every message is the same text of about 2 KB (headers and a 1,700-byte
 * body, CRLF), to one recipient. Prints one line:
 *   "MODE PARALLEL msgs_per_s CPU_us_per_msg accepted failed"
 * CPU is this process's user + system time (getrusage). Exit 1 when a
 * message was not accepted or a library call failed.
 */
#include "autoconf.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <libesmtp.h>

#define BODY_BYTES   1700
#define MAX_PARALLEL 256

static char text[4096];
static size_t textlen;
static atomic_long left;     /* messages not yet handed to a session */
static atomic_long accepted; /* 2xx after the final "." */
static atomic_long failed;
static const char *server_host, *server_port;
static unsigned per_session;

/* The executable's connect(), which libesmtp.so binds to: TCP_NODELAY on
 * every stream socket (libESMTP sets none: 23 messages/s per session). */
int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	static int (*real)(int, const struct sockaddr *, socklen_t);
	int one = 1;

	if (real == NULL)
		real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(
		    RTLD_NEXT, "connect");
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	return real(fd, sa, len);
}

static void
build_text(void)
{
	static const char line[] =
	    "Rent strike meeting Thursday 7pm, room 4. Bring a neighbour.\r\n";
	size_t n;

	n = (size_t)snprintf(text, sizeof(text),
	    "From: Bench <bench@example.org>\r\n"
	    "To: sink@example.org\r\n"
	    "Subject: Alert\r\n"
	    "Date: Mon, 07 Dec 2026 01:00:00 +0000\r\n"
	    "Message-ID: <1.od@example.org>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n");
	while (n + sizeof(line) < sizeof(text) && n < BODY_BYTES + 300) {
		memcpy(text + n, line, sizeof(line) - 1);
		n += sizeof(line) - 1;
	}
	textlen = n;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---------------------------------------------------------------------
 * libESMTP: one thread per session
 */

/* arg: the message's "handed out" flag (libESMTP frees *ctx: unused) */
static const char *
esmtp_msg_cb(void **ctx, int *len, void *arg)
{
	bool *fed = arg;

	(void)ctx;
	if (len == NULL) { /* rewind */
		*fed = false;
		return NULL;
	}
	if (!*fed) {
		*fed = true;
		*len = (int)textlen;
		return text;
	}
	*len = 0;
	return NULL;
}

static void *
esmtp_thread(void *arg)
{
	char server[300];

	(void)arg;
	snprintf(server, sizeof(server), "%s:%s", server_host, server_port);
	for (;;) {
		smtp_session_t s = smtp_create_session();
		smtp_message_t m[1000];
		bool fed[1000];
		long want = (long)per_session, got;
		const smtp_status_t *st;
		int i, n = 0;

		got = atomic_fetch_sub(&left, want);
		if (got <= 0) {
			smtp_destroy_session(s);
			return NULL;
		}
		if (got < want)
			want = got;
		smtp_set_server(s, server);
		for (i = 0; i < want && i < 1000; i++, n++) {
			m[i] = smtp_add_message(s);
			smtp_set_reverse_path(m[i], "bench@example.org");
			fed[i] = false;
			smtp_set_messagecb(m[i], esmtp_msg_cb, &fed[i]);
			smtp_add_recipient(m[i], "sink@example.org");
		}
		smtp_start_session(s);
		for (i = 0; i < n; i++) {
			st = smtp_message_transfer_status(m[i]);
			if (st != NULL && st->code / 100 == 2)
				atomic_fetch_add(&accepted, 1);
			else
				atomic_fetch_add(&failed, 1);
		}
		smtp_destroy_session(s);
	}
}

static int
run_esmtp(unsigned parallel)
{
	pthread_t t[MAX_PARALLEL];
	unsigned i;

	for (i = 0; i < parallel; i++)
		if (pthread_create(&t[i], NULL, esmtp_thread, NULL) != 0)
			return -1;
	for (i = 0; i < parallel; i++)
		pthread_join(t[i], NULL);
	return 0;
}

/* ---------------------------------------------------------------------
 * libcurl: one multi handle, one message per transfer
 */

struct curl_job {
	CURL *e;
	size_t off;
};

static size_t
curl_read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct curl_job *j = arg;
	size_t n = size * nitems;

	if (n > textlen - j->off)
		n = textlen - j->off;
	memcpy(buf, text + j->off, n);
	j->off += n;
	return n;
}

static int
curl_start(CURLM *multi, struct curl_job *j)
{
	if (atomic_fetch_sub(&left, 1) <= 0)
		return 0;
	j->off = 0;
	curl_multi_add_handle(multi, j->e);
	return 1;
}

static int
run_curl(unsigned parallel)
{
	static struct curl_job jobs[MAX_PARALLEL];
	struct curl_slist *rcpt = curl_slist_append(NULL, "<sink@example.org>");
	char url[300];
	CURLM *multi;
	CURLMsg *msg;
	unsigned i;
	int running = 1, q;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)parallel);
	snprintf(url, sizeof(url), "smtp://%s:%s/bench.example.org",
	    server_host, server_port);
	for (i = 0; i < parallel; i++) {
		CURL *e = curl_easy_init();

		jobs[i].e = e;
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_MAIL_FROM, "<bench@example.org>");
		curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE, (long)textlen);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, curl_read_cb);
		curl_easy_setopt(e, CURLOPT_READDATA, &jobs[i]);
		curl_easy_setopt(e, CURLOPT_PRIVATE, &jobs[i]);
		curl_start(multi, &jobs[i]);
	}
	while (running > 0) {
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &q)) != NULL) {
			struct curl_job *j;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&j);
			if (msg->data.result == CURLE_OK)
				atomic_fetch_add(&accepted, 1);
			else
				atomic_fetch_add(&failed, 1);
			curl_multi_remove_handle(multi, j->e);
			if (curl_start(multi, j))
				running++;
		}
		if (running > 0)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
	for (i = 0; i < parallel; i++)
		curl_easy_cleanup(jobs[i].e);
	curl_multi_cleanup(multi);
	curl_slist_free_all(rcpt);
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned parallel;
	long count;
	double t0, c0, t1, c1;
	int rc;

	if (argc != 7) {
		fprintf(stderr,
		    "usage: smtp_clients esmtp|curl PARALLEL "
		    "COUNT PER_SESSION HOST PORT\n");
		return 64;
	}
	parallel = (unsigned)strtoul(argv[2], NULL, 10);
	count = strtol(argv[3], NULL, 10);
	per_session = (unsigned)strtoul(argv[4], NULL, 10);
	server_host = argv[5];
	server_port = argv[6];
	if (parallel < 1 || parallel > MAX_PARALLEL || count < 1 ||
	    per_session < 1 || per_session > 1000) {
		fprintf(stderr,
		    "smtp_clients: PARALLEL 1..%d, COUNT >= 1, "
		    "PER_SESSION 1..1000\n",
		    MAX_PARALLEL);
		return 64;
	}
	signal(SIGPIPE, SIG_IGN);
	build_text();
	atomic_store(&left, count);
	t0 = now_s();
	c0 = cpu_s();
	if (strcmp(argv[1], "esmtp") == 0)
		rc = run_esmtp(parallel);
	else if (strcmp(argv[1], "curl") == 0)
		rc = run_curl(parallel);
	else {
		fprintf(stderr, "smtp_clients: mode esmtp or curl\n");
		return 64;
	}
	t1 = now_s();
	c1 = cpu_s();
	printf("%s %u %.0f %.0f %ld %ld\n", argv[1], parallel,
	    (double)atomic_load(&accepted) / (t1 - t0),
	    (c1 - c0) * 1e6 / (double)count, atomic_load(&accepted),
	    atomic_load(&failed));
	return rc == 0 && atomic_load(&failed) == 0 &&
		atomic_load(&accepted) == count
	    ? 0
	    : 1;
}
