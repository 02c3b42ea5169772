/*
 * mimeqp.c - CPU time of adapters/mime.c's quoted-printable encoder on
 * the text body bench/smtp sends (its 62-byte line repeated to 1,700
 * bytes), on the same body with every line ending in a space (escaped
 * before the line end), and on 8-bit text (every 'e' an "é": two escapes
 * each), one evbuffer per encode as mime_build() uses it.
 *
 *	make -C BUILDDIR bench/mimeqp && BUILDDIR/bench/mimeqp [N]
 *
 * N encodes each (200,000 by default). Prints one line per body, in
 * microseconds of this process's CPU per encode.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "mime.h"

#define MQ_BODY 1700 /* bench/smtp's body_bytes */

static double
mq_cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 'line' repeated to MQ_BODY bytes, into buf (MQ_BODY + 1 bytes). */
static void
mq_fill(char *buf, const char *line)
{
	size_t n = 0, l = strlen(line);

	while (n < MQ_BODY) {
		size_t k = MQ_BODY - n < l ? MQ_BODY - n : l;

		memcpy(buf + n, line, k);
		n += k;
	}
	buf[MQ_BODY] = '\0';
}

static void
mq_run(const char *what, const char *body, long n)
{
	size_t out = 0;
	double t0 = mq_cpu_seconds();
	long i;

	for (i = 0; i < n; i++) {
		struct evbuffer *b = evbuffer_new();

		mime_qp_encode(b, body);
		out = evbuffer_get_length(b);
		evbuffer_free(b);
	}
	printf("%-36s %5zu bytes -> %5zu  %.3f us per encode\n", what,
	    strlen(body), out, (mq_cpu_seconds() - t0) / (double)n * 1e6);
}

int
main(int argc, char *argv[])
{
	static char plain[MQ_BODY + 1], spaces[MQ_BODY + 1], utf8[MQ_BODY + 1];
	long n = argc > 1 ? atol(argv[1]) : 200000;

	if (n <= 0) {
		fprintf(stderr, "usage: %s [N > 0]\n", argv[0]);
		return 2;
	}
	mq_fill(plain,
	    "Rent strike meeting Thursday 7pm, room 4. Bring a neighbour.\n");
	mq_fill(spaces,
	    "Rent strike meeting Thursday 7pm, room 4. Bring a neighbour. \n");
	mq_fill(utf8,
	    "R\xc3\xa9nt strik\xc3\xa9 m\xc3\xa9\xc3\xa9ting "
	    "Thursday 7pm, room 4. Bring a n\xc3\xa9ighbour.\n");
	mq_run("bench/smtp's body", plain, n);
	mq_run("a space before every line end", spaces, n);
	mq_run("8-bit text", utf8, n);
	return 0;
}
