"""
test_dispatch_batch.py - the batched MT path (daemon/dispatch.c,
doc/queue.md "Claiming and pacing", issue 12) keeps every guarantee of the
per-message one, through the Twilio adapter and tests/fakes/fakeprov:

- a STOP committed after a batch was claimed and before it was handed to
  the adapter suppresses every message of the batch (the opt-out check
  runs once per batch, after the claim's commit);
- delivery reports that overtake the provider's answer are kept and
  applied when the batch of results is recorded;
- every message's history is complete (queued, sending, sent, ...), one
  row per change, however the results were grouped;
- kill -9 while a batch is at the provider re-sends at most the in-flight
  window ([dispatch] max_in_flight), and every message goes out.
"""

import re
import time
import urllib.parse

import pytest

from conftest import OD_STORE, wait_for
from fakeprov import MEMBER, fakeprov, sms_daemon  # noqa: F401
from test_keywords import queue_msgs, received, start, text

P = "twilio"


def history(d, mid):
    return [r[0] for r in d.query(
        "SELECT status FROM message_events WHERE message_id = ? ORDER BY id",
        (mid,))]


def sent_counts(d):
    """The msgs_sent lines' counts, summed: accepted sends recorded."""
    return sum(int(n) for n in re.findall(r" msgs_sent sender=\S+ "
                                          r"provider=\S+ count=(\d+) ",
                                          d.log()))


def post_many(d, n, body):
    """n SMS to distinct numbers; their ids."""
    return [d.send_sms("+1555200%04d" % i, body % i) for i in range(n)]


@pytest.mark.skipif(OD_STORE == "postgresql", reason="the claim joins the "
                    "STOP's group only on SQLite; on PostgreSQL a claim is "
                    "its own statement, committed at once, and a batch may "
                    "go out before the STOP: check_pg_queue "
                    "test_optout_between_claim_and_check covers the check")
def test_stop_committed_between_claim_and_send(make_daemon, fakeprov):
    """
    A backlog of 200 messages to the member is claimed as one batch at
    start-up; the claim's group is held open a second ([store]
    commit_delay) and the member's STOP joins it. The send-time check runs
    after that commit, so not one message reaches the provider: each ends
    suppressed, claimed before the STOP was stored.
    """
    d = start(make_daemon, fakeprov)
    n = 200
    ids = queue_msgs(d, n, body="Rally at noon #%d",
                     not_before=int(time.time()) + 3600)
    assert d.stop() == 0
    # due now, as if the hour had passed while the daemon was down
    d.execute("UPDATE messages SET next_attempt_at = 0, not_before = NULL"
              " WHERE status = 'queued'")
    d.restart(conf={"store": {"commit_delay": "1s"}})
    text(fakeprov, "STOP")		# answered after the group's commit
    d.wait_idle(timeout=30)
    alerts = [b for _, b in received(fakeprov) if b.startswith("Rally")]
    assert alerts == []
    [stop] = d.query("SELECT id, created_at FROM messages WHERE direction"
                     " = 'in' AND body = 'STOP'")
    for mid in ids:
        assert history(d, mid) == ["queued", "sending", "suppressed"], mid
    claimed = d.query("SELECT max(e.created_at), count(*) FROM"
                      " message_events e JOIN messages m ON m.id ="
                      " e.message_id WHERE e.status = 'sending'"
                      " AND m.body LIKE 'Rally at noon%'")[0]
    assert claimed[1] == n
    assert claimed[0] <= stop["created_at"], \
        "the batch was claimed after the STOP: the test did not race"
    assert re.search(r" msg_suppressed msg=\d+ channel=sms", d.log())


def test_overtaking_reports_and_complete_history(make_daemon, fakeprov):
    """
    The fake posts each message's 'delivered' report 700 ms before it
    answers 201: every report overtakes the answer, is kept, and is
    applied when the batch of results is recorded. Each message has
    exactly one history row per change and the fake got each once.
    """
    fakeprov.config(P, auto=[{"status": "delivered", "delay_ms": 0}])
    fakeprov.behave(P, delay_ms=700, count=0)
    d = sms_daemon(make_daemon, fakeprov, P, sender_keys={"timeout": "20s"})
    n = 60
    ids = post_many(d, n, "report race %d")
    for mid in ids:
        d.wait_status(mid, "delivered", timeout=60)
    for mid in ids:
        assert history(d, mid) == ["queued", "sending", "sent", "delivered"]
    assert d.scalar("SELECT count(*) FROM status_early") == 0
    assert re.search(r" status_unknown_id ", d.log()), \
        "no report overtook an answer: the test did not race"
    tos = [dict(urllib.parse.parse_qsl(r["body"]))["To"]
           for r in fakeprov.requests(P)]
    assert sorted(tos) == sorted("+1555200%04d" % i for i in range(n))
    assert sent_counts(d) == n


def test_kill9_with_a_batch_at_the_provider(make_daemon, fakeprov):
    """
    400 messages, the fake answering each after 300 ms; kill -9 once 150
    requests arrived, restart with a prompt fake. Every message goes out
    and ends sent with its whole history; at most max_in_flight (64) of
    them reached the fake twice.
    """
    window = 64
    fakeprov.behave(P, delay_ms=300, count=0)
    d = sms_daemon(make_daemon, fakeprov, P,
                   conf={"dispatch": {"max_in_flight": str(window)}},
                   sender_keys={"timeout": "20s"})
    n = 400
    ids = post_many(d, n, "crash %d")
    fakeprov.wait_requests(150, P, timeout=60)
    d.kill9()
    fakeprov.reset(P)
    d.restart()
    for mid in ids:
        d.wait_status(mid, "sent", timeout=60)
    d.wait_idle()
    got = {}
    for r in fakeprov.requests(P):
        to = dict(urllib.parse.parse_qsl(r["body"]))["To"]
        got[to] = got.get(to, 0) + 1
    assert sorted(got) == sorted("+1555200%04d" % i for i in range(n))
    dups = sum(c - 1 for c in got.values())
    assert dups <= window, "%d duplicates, window %d" % (dups, window)
    for mid in ids:
        h = history(d, mid)
        assert h[0] == "queued" and h[-1] == "sent", (mid, h)
        assert h.count("sent") == 1, (mid, h)
        # each claim is followed by exactly one outcome
        for a, b in zip(h, h[1:]):
            assert (a, b) in {("queued", "sending"), ("sending", "sent"),
                              ("sending", "queued")}, (mid, h)
    print("\nkill -9 with a batch at the provider: %d duplicates "
          "(window %d)" % (dups, window))
