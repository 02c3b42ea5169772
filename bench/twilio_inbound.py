#!/usr/bin/env python3
"""
bench/twilio_inbound.py - writes the signed Twilio inbound webhooks that
bench/kannel replays with wrk (bench/inbound.lua): wrk's Lua has no HMAC,
so every request is signed here beforehand.

usage: twilio_inbound.py --count N --threads T --url URL --token TOKEN
                         --account-sid SID --to NUMBER --keyword WORD
                         --out PREFIX

Writes PREFIX.1 .. PREFIX.T, one request per line, split round-robin:
    X-Twilio-Signature value, a TAB, the form body
The signature is Twilio's: base64 of HMAC-SHA1 keyed with the auth token
over URL followed by every POST parameter sorted by name, name and value
concatenated (the same computation as tests/integration/test_webhooks.py).
URL is the public URL the daemon checks against ([http] public_url plus
/webhooks/NAME/inbound).

Every message has its own sender (+1 201 555 0000 onwards, unique per
run), its own MessageSid and its own body. The mix, by message number:
one in ten texts the list keyword (a new member joins and is welcomed),
one in ten texts STOP (an opt-out, confirmed), the other eight are
conversation texts (a conversation is opened for the staff inbox).
"""

import argparse
import base64
import hashlib
import hmac
import sys
import urllib.parse


def signature(token, url, params):
    data = url + "".join(k + v for k, v in sorted(params))
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def body_of(i, keyword):
    kind = i % 10
    if kind == 3:
        return keyword
    if kind == 7:
        return "STOP"
    return "Hello, question %d about the meeting on %d/%d?" % (
        i, 1 + i % 12, 1 + i % 28)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--account-sid", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--keyword", required=True)
    ap.add_argument("--run", default="0")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.count < 1 or a.threads < 1 or a.count > 8000000:
        sys.exit("twilio_inbound.py: --count 1..8000000, --threads >= 1")
    outs = [open("%s.%d" % (a.out, t + 1), "w") for t in range(a.threads)]
    for i in range(a.count):
        sid = "SM%08x%024x" % (int(a.run, 16) & 0xffffffff, i)
        params = [
            ("AccountSid", a.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("Body", body_of(i, a.keyword)),
            ("From", "+1201%07d" % (5550000 + i)),
            ("MessageSid", sid),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
            ("SmsMessageSid", sid),
            ("SmsSid", sid),
            ("SmsStatus", "received"),
            ("To", a.to),
        ]
        sig = signature(a.token, a.url, params)
        body = urllib.parse.urlencode(params)
        outs[i % a.threads].write("%s\t%s\n" % (sig, body))
    for f in outs:
        f.close()


if __name__ == "__main__":
    main()
