/*
 * check_ratelimit.c - unit tests of the token buckets in ratelimit.c, on
 * simulated time: unlimited buckets, burst then steady rate, exact waits,
 * and the throttle (pause, halving down to the floor, linear recovery, and
 * the pause of an unlimited bucket).
 * The expected numbers are worked out in the comments beside them.
 */
#include "autoconf.h"

#include <stdint.h>

#include <check.h>

#include "check_suites.h"
#include "ratelimit.h"

static unsigned rl_test_drain(struct rl_bucket *b, int64_t now);
static unsigned rl_test_step(struct rl_bucket *b, int64_t from, int64_t to);

/* Takes every token available at 'now'; returns how many. */
static unsigned
rl_test_drain(struct rl_bucket *b, int64_t now)
{
	unsigned n = 0;

	while (rl_take(b, now))
		n++;
	return n;
}

/* Drains the bucket at every millisecond in [from, to); returns the total. */
static unsigned
rl_test_step(struct rl_bucket *b, int64_t from, int64_t to)
{
	unsigned n = 0;
	int64_t t;

	for (t = from; t < to; t++)
		n += rl_test_drain(b, t);
	return n;
}

START_TEST(test_ratelimit_unlimited)
{
	struct rl_bucket b;
	int i;

	rl_init(&b, 0, 0, 5000);
	for (i = 0; i < 100000; i++)
		ck_assert(rl_take(&b, 5000));
	ck_assert_int_eq(rl_wait_ms(&b, 5000), 0);
	ck_assert_double_eq(rl_effective_rate(&b, 5000), 0);
}
END_TEST

START_TEST(test_ratelimit_steady_rate)
{
	struct rl_bucket b;
	int s;

	/* 5/s, burst 1: tokens at 0, 200, 400, 600, 800 ms of each second */
	rl_init(&b, 5, 1, 0);
	for (s = 0; s < 20; s++)
		ck_assert_uint_eq(rl_test_step(&b, s * 1000, (s + 1) * 1000),
		    5);

	/*
	 * 3/s does not divide a second. With burst 3 the fractions carry
	 * over: after the first 3, 30 more in 10 s, the last at 10000 ms.
	 */
	rl_init(&b, 3, 3, 0);
	ck_assert_uint_eq(rl_test_drain(&b, 0), 3);
	ck_assert_uint_eq(rl_test_step(&b, 1, 10000), 29);
	ck_assert_uint_eq(rl_test_step(&b, 10000, 10001), 1);
	/* 1.4/s: 0.0014 a ms adds up to 14 whole tokens, not 13.999... */
	rl_init(&b, 1.4, 2, 0);
	ck_assert_uint_eq(rl_test_drain(&b, 0), 2);
	ck_assert_uint_eq(rl_test_step(&b, 1, 10001), 14);
	/*
	 * With burst 1 a full bucket holds no fraction: polled each ms, it
	 * gives a token at 0, 334, 668, ... (every ceil(333.3) ms).
	 */
	rl_init(&b, 3, 1, 0);
	ck_assert_uint_eq(rl_test_step(&b, 0, 9687), 30);
	ck_assert_uint_eq(rl_test_step(&b, 9687, 10020), 0);
	ck_assert_uint_eq(rl_test_step(&b, 10020, 10021), 1);
}
END_TEST

START_TEST(test_ratelimit_burst)
{
	struct rl_bucket b;

	/* a full bucket of 10 at start, then 2/s */
	rl_init(&b, 2, 10, 1000);
	ck_assert_uint_eq(rl_test_drain(&b, 1000), 10);
	ck_assert(!rl_take(&b, 1499));
	ck_assert_uint_eq(rl_test_step(&b, 1001, 6001), 10);
	/* idle for a minute: the bucket holds at most the burst */
	ck_assert_uint_eq(rl_test_drain(&b, 66000), 10);
	/* burst 0 means 1 */
	rl_init(&b, 2, 0, 0);
	ck_assert_double_eq(b.burst, 1);
	ck_assert_uint_eq(rl_test_drain(&b, 0), 1);
}
END_TEST

START_TEST(test_ratelimit_refund)
{
	struct rl_bucket b;

	/* a token taken for a suppressed message comes back at once */
	rl_init(&b, 2, 3, 0);
	ck_assert_uint_eq(rl_test_drain(&b, 0), 3);
	rl_refund(&b);
	ck_assert(rl_take(&b, 0));
	ck_assert(!rl_take(&b, 0));
	/* never above the burst */
	rl_init(&b, 2, 3, 0);
	rl_refund(&b);
	rl_refund(&b);
	ck_assert_uint_eq(rl_test_drain(&b, 0), 3);
	/* unlimited: nothing to give back, and nothing breaks */
	rl_init(&b, 0, 1, 0);
	rl_refund(&b);
	ck_assert(rl_take(&b, 0));
}
END_TEST

START_TEST(test_ratelimit_wait_exact)
{
	struct rl_bucket b;

	rl_init(&b, 5, 1, 0);
	ck_assert_int_eq(rl_wait_ms(&b, 0), 0);
	ck_assert(rl_take(&b, 0));
	ck_assert_int_eq(rl_wait_ms(&b, 0), 200);
	ck_assert_int_eq(rl_wait_ms(&b, 150), 50);
	ck_assert(!rl_take(&b, 199));
	ck_assert_int_eq(rl_wait_ms(&b, 199), 1);
	ck_assert(rl_take(&b, 200));

	/* 1000 / 3 = 333.3 ms: the token is there at 334, not at 333 */
	rl_init(&b, 3, 1, 0);
	ck_assert(rl_take(&b, 0));
	ck_assert_int_eq(rl_wait_ms(&b, 0), 334);
	ck_assert(!rl_take(&b, 333));
	ck_assert(rl_take(&b, 334));

	/* one per 1000 s; and a rate near 0 gives a capped wait, no hang */
	rl_init(&b, 0.001, 1, 0);
	ck_assert(rl_take(&b, 0));
	ck_assert_int_eq(rl_wait_ms(&b, 0), 1000000);
	rl_init(&b, 1e-300, 1, 0);
	ck_assert(rl_take(&b, 0));
	ck_assert_int_eq(rl_wait_ms(&b, 0), 1000000000000LL);
}
END_TEST

START_TEST(test_ratelimit_throttle_pause)
{
	struct rl_bucket b, c;

	/*
	 * 10/s with a full bucket of 10, throttled at 1000 ms with
	 * Retry-After 2 s: empty and paused until 3000. Then the rate climbs
	 * from 5/s (at 1000) by 5/30000 per ms; from 3000 the first token is
	 * whole after x ms where (5x + x(4000 + x)/12000) / 1000 >= 1,
	 * x = 187 (0.9949 tokens at 186).
	 */
	rl_init(&b, 10, 10, 0);
	rl_throttle(&b, 1000, 2000);
	ck_assert_int_eq(b.paused_until, 3000);
	ck_assert_int_eq(rl_wait_ms(&b, 1000), 2187);
	c = b;
	ck_assert_uint_eq(rl_test_step(&c, 1000, 3187), 0);
	ck_assert(rl_take(&c, 3187));
	c = b;
	ck_assert(!rl_take(&c, 3000));
	ck_assert(!rl_take(&c, 3186));
	ck_assert(rl_take(&c, 3187));

	/* without Retry-After the pause is 1 s */
	rl_init(&b, 10, 10, 0);
	rl_throttle(&b, 500, 0);
	ck_assert_int_eq(b.paused_until, 1500);
	ck_assert(!rl_take(&b, 1499));

	/* a second, shorter Retry-After does not cut the pause short */
	rl_throttle(&b, 600, 100);
	ck_assert_int_eq(b.paused_until, 1500);
}
END_TEST

START_TEST(test_ratelimit_throttle_unlimited)
{
	struct rl_bucket b;
	int64_t t;
	int i;

	/*
	 * Unlimited, throttled at 5000 with Retry-After 3 s: every take is
	 * refused until 8000, and the wait is exactly the rest of the pause.
	 */
	rl_init(&b, 0, 0, 5000);
	rl_throttle(&b, 5000, 3000);
	ck_assert_int_eq(b.paused_until, 8000);
	ck_assert_int_eq(b.throttled_at, 5000);
	for (t = 5000; t < 8000; t++) {
		ck_assert_int_eq(rl_wait_ms(&b, t), 8000 - t);
		ck_assert(!rl_take(&b, t));
	}
	/* right after the pause: unlimited again, rate still 0 */
	ck_assert_int_eq(rl_wait_ms(&b, 8000), 0);
	for (i = 0; i < 100000; i++)
		ck_assert(rl_take(&b, 8000));
	ck_assert_int_eq(rl_wait_ms(&b, 8000), 0);
	ck_assert_double_eq(rl_effective_rate(&b, 8000), 0);
	ck_assert_double_eq(b.rate, 0);

	/*
	 * Throttled at time 0 without Retry-After: 1 s. A second, shorter
	 * pause does not cut it short; a longer one moves the end.
	 */
	rl_init(&b, 0, 1, 0);
	rl_throttle(&b, 0, 0);
	ck_assert_int_eq(b.throttled_at, 0);
	ck_assert_int_eq(rl_wait_ms(&b, 0), 1000);
	ck_assert(!rl_take(&b, 999));
	rl_throttle(&b, 500, 100);
	ck_assert_int_eq(rl_wait_ms(&b, 500), 500);
	rl_throttle(&b, 900, 2000);
	ck_assert_int_eq(rl_wait_ms(&b, 900), 2000);
	ck_assert(!rl_take(&b, 2899));
	ck_assert_int_eq(rl_wait_ms(&b, 2899), 1);
	ck_assert(rl_take(&b, 2900));
}
END_TEST

START_TEST(test_ratelimit_throttle_halving)
{
	struct rl_bucket b;

	/* 16/s halves to 8, 4, 2, 1, and stops at the floor 16/16 = 1 */
	rl_init(&b, 16, 16, 0);
	ck_assert_double_eq(rl_effective_rate(&b, 0), 16);
	rl_throttle(&b, 100, 0);
	ck_assert_double_eq(rl_effective_rate(&b, 100), 8);
	rl_throttle(&b, 100, 0);
	ck_assert_double_eq(rl_effective_rate(&b, 100), 4);
	rl_throttle(&b, 100, 0);
	ck_assert_double_eq(rl_effective_rate(&b, 100), 2);
	rl_throttle(&b, 100, 0);
	ck_assert_double_eq(rl_effective_rate(&b, 100), 1);
	rl_throttle(&b, 100, 0);
	ck_assert_double_eq(rl_effective_rate(&b, 100), 1);
	ck_assert_double_eq(b.floor_rate, 1);
}
END_TEST

START_TEST(test_ratelimit_recovery)
{
	struct rl_bucket b, c;

	/* 10/s throttled at 1000: 5/s, then a line up to 10/s at 31000 */
	rl_init(&b, 10, 1000, 0);
	rl_throttle(&b, 1000, 1);
	ck_assert_double_eq(rl_effective_rate(&b, 1000), 5);
	ck_assert_double_eq(rl_effective_rate(&b, 16000), 7.5);
	ck_assert_double_eq(rl_effective_rate(&b, 31000), 10);
	ck_assert_double_eq(rl_effective_rate(&b, 91000), 10);

	/*
	 * Tokens follow the same line: from the end of the pause (1001) to
	 * 31000 the integral is (5 * 29999 + 5/30000/2 * (30000^2 - 1)) /
	 * 1000 = 224.99 tokens, however often the bucket is looked at.
	 */
	c = b;
	ck_assert_uint_eq(rl_test_drain(&c, 31000), 224);
	c = b;
	ck_assert_uint_eq(rl_test_step(&c, 1000, 31001), 224);

	/* throttled again halfway: 7.5/s halves to 3.75/s */
	rl_throttle(&b, 16000, 1);
	ck_assert_double_eq(rl_effective_rate(&b, 16000), 3.75);
	ck_assert_double_eq(rl_effective_rate(&b, 31000), 3.75 + 6.25 / 2);
	ck_assert_double_eq(rl_effective_rate(&b, 46000), 10);
}
END_TEST

Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc;

	tc = tcase_create("bucket");
	tcase_add_test(tc, test_ratelimit_unlimited);
	tcase_add_test(tc, test_ratelimit_steady_rate);
	tcase_add_test(tc, test_ratelimit_burst);
	tcase_add_test(tc, test_ratelimit_wait_exact);
	suite_add_tcase(s, tc);

	tc = tcase_create("throttle");
	tcase_add_test(tc, test_ratelimit_throttle_pause);
	tcase_add_test(tc, test_ratelimit_throttle_halving);
	tcase_add_test(tc, test_ratelimit_recovery);
	tcase_add_test(tc, test_ratelimit_throttle_unlimited);
	tcase_add_test(tc, test_ratelimit_refund);
	suite_add_tcase(s, tc);
	return s;
}
