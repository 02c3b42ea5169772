"""
test_sms_pacing.py - a sender's rate limit, measured where it matters: at
the provider. A Twilio sender with rate = 5 and burst = 5 gets 60 queued
messages at once; fakeprov timestamps every request it receives, and over
the whole run no sliding 1 s window may hold more than rate + burst
requests, and no 5 s window more than 5 * rate + burst. The run must also
take about (60 - burst) / rate seconds: a limiter that is too strict
fails as well.
"""

import bisect

from fakeprov import fakeprov, sms_daemon  # noqa: F401

RATE = 5
BURST = 5
COUNT = 60


def most_in_window(ts, width):
    """The largest number of sorted timestamps in any [t, t + width)."""
    return max(bisect.bisect_left(ts, t + width) - i
               for i, t in enumerate(ts))


def per_second(ts):
    """Requests per 1 s bucket from the first request, for the report."""
    out = [0] * (int(ts[-1] - ts[0]) + 1)
    for t in ts:
        out[int(t - ts[0])] += 1
    return out


def test_sender_rate_is_never_exceeded(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, "twilio",
                   sender_keys={"rate": str(RATE), "burst": str(BURST)})
    ids = [d.send_sms("+1555100%04d" % i, "pace %d" % i)
           for i in range(COUNT)]
    d.wait_idle(timeout=(COUNT - BURST) / RATE + 15)
    for mid in ids:
        assert d.message(mid)["status"] == "sent"
    ts = sorted(r["t"] for r in fakeprov.requests("twilio"))
    assert len(ts) == COUNT
    one, five = most_in_window(ts, 1.0), most_in_window(ts, 5.0)
    span = ts[-1] - ts[0]
    print("pacing: %d requests in %.2f s; per second %s; max in 1 s %d, "
          "in 5 s %d" % (COUNT, span, per_second(ts), one, five))
    assert one <= RATE + BURST, per_second(ts)
    assert five <= 5 * RATE + BURST, per_second(ts)
    # and not much slower than the rate allows
    ideal = (COUNT - BURST) / RATE
    assert ideal - 0.5 <= span <= ideal + 3.0, (span, per_second(ts))
