/*
 * ratelimit.c - token buckets that pace each sender (doc/queue.md).
 *
 * Tokens accrue continuously at the rate in force, capped at the burst.
 * The rate in force is a function of time alone: the configured rate,
 * or, after a throttle at T, a line from floor_rate at T up to the
 * configured rate at T + RL_RECOVER_MS. Accrual integrates that line
 * exactly (rl_accrued), so the tokens at a given time do not depend on
 * how often the caller looked, and rl_wait_ms() can search for the first
 * millisecond at which rl_take() will succeed, using the very same sum.
 *
 * No tokens accrue while the bucket is paused (after a 429): the provider
 * asked us to stop, and a burst saved up during the pause would hit it
 * again the moment the pause ends. An unlimited bucket (rate 0) keeps no
 * tokens, but the pause holds for it all the same: a provider that sends
 * 429 to an unpaced sender wants it to stop just as much.
 */
#include "autoconf.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "ratelimit.h"

/*
 * Tokens are doubles that grow in small steps (0.005 a millisecond at
 * 5/s); a token that is 1 - 1e-12 short of whole because of rounding
 * still counts. A billionth of a token is never observable.
 */
#define RL_EPSILON	    1e-9
#define RL_PAUSE_DEFAULT_MS 1000 /* a 429 without Retry-After */
/* bounds rl_wait_ms() at rates near 0: about 31 years */
#define RL_WAIT_MAX_MS	 1000000000000LL
#define RL_FLOOR_DIVISOR 16 /* throttling never goes below rate/16 */

static bool rl_is_recovering(const struct rl_bucket *b);
static double rl_accrued(const struct rl_bucket *b, int64_t from, int64_t to);
static double rl_tokens_at(const struct rl_bucket *b, int64_t now);
static void rl_refill(struct rl_bucket *b, int64_t now);

/* True once throttled: the floor sits below the configured rate. */
static bool
rl_is_recovering(const struct rl_bucket *b)
{
	return b->floor_rate < b->rate;
}

/*
 * Tokens earned between 'from' and 'to' (ms): the integral of the rate in
 * force, a line from floor_rate at throttled_at to rate at throttled_at +
 * RL_RECOVER_MS, and rate after that.
 */
static double
rl_accrued(const struct rl_bucket *b, int64_t from, int64_t to)
{
	double sum = 0, slope, u0, u1;
	int64_t end, mid;

	if (to <= from)
		return 0;
	if (rl_is_recovering(b)) {
		end = b->throttled_at + RL_RECOVER_MS;
		if (from < b->throttled_at)
			from = b->throttled_at;
		if (from < end) {
			mid = to < end ? to : end;
			slope = (b->rate - b->floor_rate) / RL_RECOVER_MS;
			u0 = (double)(from - b->throttled_at);
			u1 = (double)(mid - b->throttled_at);
			sum += b->floor_rate * (u1 - u0) +
			    slope / 2 * (u1 * u1 - u0 * u0);
			from = mid;
		}
	}
	if (to > from)
		sum += b->rate * (double)(to - from);
	return sum / 1000; /* rates are per second, times in ms */
}

/* The tokens the bucket holds at 'now' (>= last_ms), without changing it. */
static double
rl_tokens_at(const struct rl_bucket *b, int64_t now)
{
	int64_t from =
	    b->last_ms > b->paused_until ? b->last_ms : b->paused_until;
	double t;

	if (now <= from)
		return b->tokens;
	t = b->tokens + rl_accrued(b, from, now);
	return t < b->burst ? t : b->burst;
}

static void
rl_refill(struct rl_bucket *b, int64_t now)
{
	if (now <= b->last_ms)
		return; /* the clock went back: earn nothing */
	b->tokens = rl_tokens_at(b, now);
	b->last_ms = now;
}

/*
 * Sets up b full (burst tokens) at 'now'; rate <= 0 makes it unlimited,
 * burst 0 counts as 1. b is caller-owned; nothing is allocated.
 */
void
rl_init(struct rl_bucket *b, double rate, unsigned burst, int64_t now)
{
	b->rate = rate > 0 ? rate : 0;
	b->burst = burst > 0 ? burst : 1;
	b->tokens = b->burst;
	b->eff_rate = b->rate;
	b->floor_rate = b->rate;
	b->last_ms = now;
	b->throttled_at = 0;
	b->paused_until = now;
}

/*
 * Takes one token if the bucket holds one at 'now' (after refilling up
 * to 'now'); false while paused or short. When unlimited, false only
 * while paused.
 */
bool
rl_take(struct rl_bucket *b, int64_t now)
{
	if (b->rate == 0)
		return now >= b->paused_until;
	rl_refill(b, now);
	if (now < b->paused_until || b->tokens < 1 - RL_EPSILON)
		return false;
	b->tokens = b->tokens > 1 ? b->tokens - 1 : 0;
	return true;
}

void
rl_refund(struct rl_bucket *b)
{
	if (b->rate == 0)
		return;
	b->tokens += 1;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
}

/*
 * The smallest wait w such that rl_take(b, now + w) succeeds, found by
 * bisection over the same rl_tokens_at() that rl_take() uses, so the
 * answer is exact to the millisecond: at now + w - 1 there is no token.
 * The upper bound is the rest of the pause plus one token at the lowest
 * rate the bucket can be in (the rate never drops below it until the
 * next throttle). An unlimited bucket waits only for the pause to end.
 */
int64_t
rl_wait_ms(struct rl_bucket *b, int64_t now)
{
	int64_t start, lo, hi, mid;
	double slowest, span;

	if (b->rate == 0)
		return now < b->paused_until ? b->paused_until - now : 0;
	rl_refill(b, now);
	start = now > b->paused_until ? now : b->paused_until;
	if (rl_tokens_at(b, start) >= 1 - RL_EPSILON)
		return start - now;
	slowest = b->floor_rate < b->rate ? b->floor_rate : b->rate;
	span = ceil(1000 / slowest) + 1;
	hi = start + (span < RL_WAIT_MAX_MS ? (int64_t)span : RL_WAIT_MAX_MS);
	if (rl_tokens_at(b, hi) < 1 - RL_EPSILON)
		return hi - now; /* an absurdly slow rate: cap the wait */
	lo = start;		 /* no token at lo, one at hi */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (rl_tokens_at(b, mid) >= 1 - RL_EPSILON)
			hi = mid;
		else
			lo = mid;
	}
	return hi - now;
}

/*
 * Pauses b until now + retry_after_ms (a pause already running longer is
 * kept). A bucket with a rate also has the rate in force at 'now' halved
 * (not below rate/16) and is emptied; recovery starts from the new floor
 * at 'now'. An unlimited bucket has no rate to halve: it only pauses.
 */
void
rl_throttle(struct rl_bucket *b, int64_t now, unsigned retry_after_ms)
{
	double cur, floor_rate;
	int64_t until;

	if (b->rate > 0) {
		/* before throttled_at moves: the line of the last throttle */
		cur = rl_effective_rate(b, now);
		floor_rate = cur / 2;
		if (floor_rate < b->rate / RL_FLOOR_DIVISOR)
			floor_rate = b->rate / RL_FLOOR_DIVISOR;
		b->floor_rate = floor_rate;
		b->eff_rate = floor_rate;
		b->tokens = 0;
		if (now > b->last_ms)
			b->last_ms = now;
	}
	b->throttled_at = now;
	until =
	    now + (retry_after_ms > 0 ? retry_after_ms : RL_PAUSE_DEFAULT_MS);
	if (until > b->paused_until)
		b->paused_until = until;
}

/*
 * The rate in force at 'now': the configured rate, or during the
 * RL_RECOVER_MS after a throttle, the point on the line from floor_rate
 * up to it. Also records it in b->eff_rate.
 */
double
rl_effective_rate(struct rl_bucket *b, int64_t now)
{
	int64_t dt;

	if (!rl_is_recovering(b))
		b->eff_rate = b->rate;
	else if ((dt = now - b->throttled_at) >= RL_RECOVER_MS)
		b->eff_rate = b->rate;
	else if (dt <= 0)
		b->eff_rate = b->floor_rate;
	else
		b->eff_rate = b->floor_rate +
		    (b->rate - b->floor_rate) * (double)dt / RL_RECOVER_MS;
	return b->eff_rate;
}
