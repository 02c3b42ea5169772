/*
 * ratelimit.h - token buckets that pace each sender (doc/queue.md).
 *
 * Contract:
 *  - Pure data and arithmetic on caller-supplied times (ms), so it is
 *    testable alone; no allocation, no clock reads, no logging.
 *  - rate 0 means unlimited: rl_take() succeeds except while the bucket
 *    is paused by rl_throttle(), and rl_wait_ms() is the rest of that
 *    pause (0 when not paused).
 *  - A throttle signal (429) pauses the bucket for Retry-After (or 1 s),
 *    whatever its rate: the provider asked us to stop. A bucket with a
 *    rate also halves its effective rate (never below rate/16), which then
 *    recovers linearly to the configured rate over RL_RECOVER_MS unless
 *    throttled again; an unlimited bucket has no rate to halve, so it only
 *    pauses.
 *  - Times before the 'now' given to rl_init() count as paused too (a
 *    clock stepped back right after start): nothing is taken before then.
 */
#ifndef OD_RATELIMIT_H
#define OD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define RL_RECOVER_MS 30000 /* back to full rate 30 s after a throttle */

struct rl_bucket {
	double rate;	      /* configured tokens per second; 0 = unlimited */
	double burst;	      /* bucket depth, >= 1 */
	double tokens;	      /* available now */
	double eff_rate;      /* rate in force (lower after a throttle) */
	double floor_rate;    /* eff_rate right after the last throttle */
	int64_t last_ms;      /* last refill */
	int64_t throttled_at; /* last throttle; 0 before the first throttle */
	int64_t paused_until; /* nothing taken before this time */
};

/* Sets up a full bucket at time now. burst 0 is treated as 1. */
void rl_init(struct rl_bucket *b, double rate, unsigned burst, int64_t now);
/*
 * Takes one token if one is available at 'now'; true if taken. Unlimited
 * (rate 0): true unless paused.
 */
bool rl_take(struct rl_bucket *b, int64_t now);
/*
 * Gives back one token taken for a message that never reached the
 * provider (suppressed or expired at send time), up to the burst.
 */
void rl_refund(struct rl_bucket *b);
/*
 * Milliseconds from 'now' until rl_take() will succeed; 0 if it would
 * now. Unlimited (rate 0): the rest of the pause, 0 if not paused.
 */
int64_t rl_wait_ms(struct rl_bucket *b, int64_t now);
/*
 * The provider throttled us (429): pause retry_after_ms (0 = 1000 ms)
 * and, if the bucket has a rate, halve the effective rate.
 */
void rl_throttle(struct rl_bucket *b, int64_t now, unsigned retry_after_ms);
/* The rate in force at 'now' (tokens per second; 0 = unlimited). */
double rl_effective_rate(struct rl_bucket *b, int64_t now);

#endif
