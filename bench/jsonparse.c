/*
 * jsonparse.c - the fast JSON paths of core/json_fast.c against jansson,
 * in CPU time per parse: jpeek_object() on Twilio's 201 as fakeprov
 * answers it (tests/fakes/fakeprov_twilio.c), json_flat_object() on the
 * request body bench/post.lua posts, and json_loadb() on both.
 *
 *	make -C BUILDDIR bench/jsonparse && BUILDDIR/bench/jsonparse [N]
 *
 * N parses each (1,000,000 by default; jansson a tenth of that). Prints
 * one line per figure, in microseconds of this process's CPU.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "json_fast.h"

#define T_AC "AC0123456789abcdef0123456789abcdef"
#define T_SM "SM0123456789abcdef0123456789abcdef"

static const char twilio[] =
    "{\"account_sid\":\"" T_AC "\",\"api_version\":\"2010-04-01\","
    "\"body\":\"bench message 123456 from thread 3\","
    "\"date_created\":\"Mon, 07 Dec 2026 02:00:00 +0000\","
    "\"date_sent\":null,\"date_updated\":\"Mon, 07 Dec 2026 02:00:00 "
    "+0000\",\"direction\":\"outbound-api\",\"error_code\":null,"
    "\"error_message\":null,\"from\":\"+15550009999\","
    "\"messaging_service_sid\":null,\"num_media\":\"0\","
    "\"num_segments\":\"1\",\"price\":null,\"price_unit\":\"USD\","
    "\"sid\":\"" T_SM "\",\"status\":\"queued\",\"subresource_uris\":{"
    "\"media\":\"/2010-04-01/Accounts/" T_AC "/Messages/" T_SM
    "/Media.json\"},\"to\":\"+15551230001\",\"uri\":\"/2010-04-01/"
    "Accounts/" T_AC "/Messages/" T_SM ".json\"}";
static const char post[] =
    "{\"channel\":\"sms\",\"to\":\"+15550123456\",\"body\":\"bench message "
    "123456 from thread 3\",\"idempotency_key\":\"bench-1796000000-3-"
    "123456\",\"not_before\":1796000000,\"sender\":\"twilio\"}";

static double
cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
report(const char *what, size_t len, double t0, long n)
{
	printf("%-34s %4zu bytes %8.3f us\n", what, len,
	    (cpu_seconds() - t0) / (double)n * 1e6);
}

static int
bench_peek(long n)
{
	struct jpeek_field f[2] = {{.name = "code", .type = JPEEK_INT},
	    {.name = "sid", .type = JPEEK_STRING}};
	double t0 = cpu_seconds();
	json_t *o;
	long i;

	for (i = 0; i < n; i++)
		if (jpeek_object(twilio, sizeof(twilio) - 1, f, 2) != 0 ||
		    !f[1].found)
			return -1;
	report("jpeek_object, Twilio 201", sizeof(twilio) - 1, t0, n);
	t0 = cpu_seconds();
	for (i = 0; i < n / 10; i++) {
		if ((o = json_loadb(twilio, sizeof(twilio) - 1, 0, NULL)) ==
		    NULL)
			return -1;
		json_decref(o);
	}
	report("json_loadb, Twilio 201", sizeof(twilio) - 1, t0, n / 10);
	return 0;
}

static int
bench_flat(long n)
{
	double t0 = cpu_seconds();
	json_t *o;
	long i;

	for (i = 0; i < n; i++) {
		if ((o = json_flat_object(post, sizeof(post) - 1)) == NULL)
			return -1;
		json_decref(o);
	}
	report("json_flat_object, post.lua body", sizeof(post) - 1, t0, n);
	t0 = cpu_seconds();
	for (i = 0; i < n / 10; i++) {
		if ((o = json_loadb(post, sizeof(post) - 1,
			 JSON_REJECT_DUPLICATES, NULL)) == NULL)
			return -1;
		json_decref(o);
	}
	report("json_loadb, post.lua body", sizeof(post) - 1, t0, n / 10);
	return 0;
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;

	if (n < 10 || bench_peek(n) == -1 || bench_flat(n) == -1) {
		fprintf(stderr,
		    "usage: jsonparse [N >= 10]; or a parse failed\n");
		return 1;
	}
	return 0;
}
