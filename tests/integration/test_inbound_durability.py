"""
test_inbound_durability.py - inbound webhooks across kill -9 (issue 12,
the MO path): a webhook answered 200 is stored, routed and committed, so
a crash right after loses nothing; one in flight at the crash is either
stored whole (with its routing) or not at all, and the provider's retry
of it (no 200 came) is stored and routed exactly once.

The daemon has a Twilio sender pointed at tests/fakes/fakeprov (the
keyword and STOP confirmations go there); the webhooks are signed here
the way Twilio signs them, from 8 keep-alive clients, each with its own
senders: one text in ten joins a list by keyword, one in ten is STOP, the
rest are conversation texts with a word of their own. The daemon is
killed with SIGKILL after a random number of 200 answers.
"""

import base64
import collections
import hashlib
import hmac
import http.client
import random
import threading
import time
import urllib.parse

import pytest

from conftest import run_clients, scaled
from fakeprov import CREDENTIALS, OUR_NUMBER, fakeprov, sms_daemon  # noqa

P = "twilio"
INBOUND = "/webhooks/tw/inbound"
BURST = 3000
CLIENTS = 8
# [store] commit_delay holds each group open 20 ms: a 200 sent before its
# group's COMMIT (or routing left to a later group) would then be lost at
# the kill far more often than within one loop turn.
CONF = {"sms": {"program": "Durable", "contact": "help@durable.example"},
        "list JOINUS": {"keywords": "joinus", "sender": "tw"},
        "store": {"commit_delay": "20ms"}}


def signature(token, url, params):
    """X-Twilio-Signature: base64 HMAC-SHA1 over the URL and the sorted
    name+value pairs (test_webhooks.py checks it against Twilio's own
    vector)."""
    data = url + "".join(k + v for k, v in sorted(params))
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def webhook(i):
    """The i-th webhook: (sid, kind, from, body)."""
    sid = "SM%032x" % (0xd00d0000 + i)
    frm = "+1202555%04d" % i
    kind = ("join" if i % 10 == 3 else "stop" if i % 10 == 7 else "text")
    body = {"join": "JOINUS", "stop": "STOP",
            "text": "question zq%05d about the rally" % i}[kind]
    return sid, kind, frm, body


def post(conn, url, token, i):
    sid, _, frm, body = webhook(i)
    params = [("AccountSid", CREDENTIALS[P]["account_sid"]),
              ("ApiVersion", "2010-04-01"), ("Body", body), ("From", frm),
              ("MessageSid", sid), ("NumMedia", "0"), ("NumSegments", "1"),
              ("SmsMessageSid", sid), ("SmsSid", sid),
              ("SmsStatus", "received"), ("To", OUR_NUMBER)]
    conn.request("POST", INBOUND, body=urllib.parse.urlencode(params),
                 headers={"Content-Type":
                          "application/x-www-form-urlencoded",
                          "X-Twilio-Signature":
                          signature(token, url + INBOUND, params)})
    r = conn.getresponse()
    r.read()
    return r.status


def burst(d, kill_at, on_reached):
    """
    CLIENTS threads POST webhooks 0..BURST-1 (client n takes i % CLIENTS
    == n); on_reached() runs once when kill_at answers came. A client
    stops at its first connection error. Returns (set of i answered 200,
    Counter of statuses).
    """
    token = CREDENTIALS[P]["auth_token"]
    url = "http://127.0.0.1:%d" % d.port
    lock = threading.Lock()
    ok = set()
    statuses = collections.Counter()
    fired = threading.Event()

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", d.port,
                                          timeout=scaled(30))
        try:
            for i in range(n, BURST, CLIENTS):
                try:
                    st = post(conn, url, token, i)
                except (OSError, http.client.HTTPException):
                    return		# the daemon is gone
                with lock:
                    statuses[st] += 1
                    if st == 200:
                        ok.add(i)
                    total = sum(statuses.values())
                if total >= kill_at and not fired.is_set():
                    fired.set()
                    on_reached()
        finally:
            conn.close()

    run_clients(client, CLIENTS)
    return ok, statuses


def state(d):
    """
    What the database holds per webhook i: {i: (count of inbound rows,
    member linked, conversation, opted out, subscribed, confirmations)}.
    """
    inbound = collections.Counter()
    linked = {}
    conv = {}
    for sid, member, c in d.query(
            "SELECT provider_message_id, member_id, conversation_id"
            " FROM messages WHERE direction = 'in'"):
        i = int(sid[2:], 16) - 0xd00d0000
        inbound[i] += 1
        linked[i] = member is not None
        conv[i] = c is not None
    out = {p for (p,) in d.query(
        "SELECT m.phone FROM sms_optout o JOIN members m"
        " ON m.id = o.member_id")}
    subs = {p for (p,) in d.query(
        "SELECT m.phone FROM subscriptions s JOIN members m"
        " ON m.id = s.member_id WHERE s.status = 'active'")}
    replies = collections.Counter(p for (p,) in d.query(
        "SELECT to_addr FROM messages WHERE direction = 'out'"))
    res = {}
    for i in inbound:
        frm = webhook(i)[2]
        res[i] = (inbound[i], linked[i], conv[i], frm in out, frm in subs,
                  replies[frm])
    return res


def routed(i, st):
    """The state a stored, routed webhook i must have."""
    kind = webhook(i)[1]
    n, linked, conv, out, sub, replies = st
    return (n == 1 and linked and conv == (kind == "text")
            and out == (kind == "stop") and sub == (kind == "join")
            and replies == (0 if kind == "text" else 1))


@pytest.mark.slow
def test_kill9_during_inbound_burst(make_daemon, fakeprov, capsys):  # noqa
    d = sms_daemon(make_daemon, fakeprov, P, sender="tw", conf=CONF)
    seed = random.randrange(1 << 30)
    kill_at = random.Random(seed).randint(BURST // 5, BURST // 2)
    killed = {}

    def kill():
        killed["t"] = time.monotonic()
        d.kill9()

    ok, statuses = burst(d, kill_at, kill)
    assert killed, "never reached %d answers: %r" % (kill_at, statuses)
    assert set(statuses) == {200}, statuses
    assert len(ok) >= kill_at

    # Before the restart, from the file the killed daemon left: every
    # 200 stored once and routed (member, conversation or opt-out or
    # subscription, and its confirmation queued), in the same commit.
    st = state(d)
    lost = sorted(i for i in ok if i not in st)
    assert not lost, "%d answered 200, not stored: %r" % (len(lost),
                                                          lost[:5])
    bad = [(i, st[i]) for i in sorted(st) if not routed(i, st[i])]
    assert not bad, "stored but not (wholly) routed: %r" % bad[:5]
    in_flight = len(st) - len(ok)

    # The provider retries what got no 200 (and, harmlessly, some that
    # did): after the restart, every webhook ends stored and routed once.
    d.configure({"store": {"commit_delay": "0"}})
    d.start()
    token = CREDENTIALS[P]["auth_token"]
    url = "http://127.0.0.1:%d" % d.port
    conn = http.client.HTTPConnection("127.0.0.1", d.port,
                                      timeout=scaled(30))
    again = sorted(ok)[:20]
    for i in [i for i in range(BURST) if i not in ok] + again:
        assert post(conn, url, token, i) == 200, i
    conn.close()
    st = state(d)
    assert sorted(st) == list(range(BURST))
    bad = [(i, st[i]) for i in sorted(st) if not routed(i, st[i])]
    assert not bad, "after the retries: %r" % bad[:5]
    # each text is found by its own word (the search index committed
    # with it: SQLite's FTS table, PostgreSQL's GIN index), through the
    # inbox's search
    for i in (i for i in sorted(ok) if webhook(i)[1] == "text"):
        r = d.api("GET", "/api/v1/conversations?status=all&q=zq%05d" % i)
        assert r.status == 200, r
        assert len(r.json["conversations"]) == 1, (i, r.json)
    with capsys.disabled():
        print("\ninbound kill -9 (seed %d): killed after %d answers; "
              "200: %d, stored at the kill: %d (in flight, stored "
              "without a 200: %d); all %d stored and routed once after "
              "the retries" % (seed, kill_at, len(ok), len(ok) + in_flight,
                               in_flight, BURST))
