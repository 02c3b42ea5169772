"""
test_events.py - live events end to end (daemon/events.c, doc/events.md):
GET /api/v1/events, a Server-Sent Events stream, read here by a small
client on a raw HTTP/1.1 connection (http.client decodes the chunks).

Covered: no or a wrong token 401; the stream's headers and its "retry"
line; a "message" and a "conversation" event when a member's text
arrives through a Twilio-signed webhook (tests/fakes/fakeprov); "alert"
events on an alert's status changes; resuming with Last-Event-ID (header
and ?last_event_id=) replays exactly the events missed, also across a
restart, ids growing on; "reset" when the events missed are no longer
kept or the id is from another database; a stream outlives
[http] request_timeout and evhttp's own idle timeout, and gets keep-alive
comments; a client that leaves frees its stream; SIGTERM ends every
stream with a complete chunked reply and the daemon exits 0.

Events are made by alert actions (schedule, then cancel: one "alert"
event each) where the test is about the stream rather than about who
publishes.
"""

import http.client
import json
import queue
import socket
import threading
import time

import pytest

from conftest import TOKEN, scaled, wait_for
from fakeprov import MEMBER, OUR_NUMBER, fakeprov, sms_daemon  # noqa: F401


class Sse:
    """One GET /api/v1/events; a thread parses its events into a queue."""

    def __init__(self, d, last=None, query=None, token=TOKEN):
        self.conn = http.client.HTTPConnection("127.0.0.1", d.port,
                                               timeout=scaled(60))
        hdrs = {"Accept": "text/event-stream"}
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if last is not None:
            hdrs["Last-Event-ID"] = str(last)
        path = "/api/v1/events" + ("?" + query if query else "")
        self.conn.request("GET", path, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.q = queue.Queue()
        self.ended = None	# "eof" (a whole reply) or the exception
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        cur = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    self.ended = "eof"
                    break
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if cur:
                        self.q.put(cur)
                    cur = {}
                elif line.startswith(":"):
                    self.q.put({"comment": line[1:].strip()})
                else:
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    cur[k] = cur[k] + "\n" + v if k in cur else v
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.ended = e
        self.q.put(None)

    def next(self, timeout=10):
        """The next block (event, comment or None at the end)."""
        try:
            return self.q.get(timeout=scaled(timeout))
        except queue.Empty:
            raise AssertionError("no event within %ss" % timeout) from None

    def events(self, n, timeout=10):
        """The next n events (comments and the retry line skipped)."""
        out = []
        deadline = time.monotonic() + scaled(timeout)
        while len(out) < n:
            b = self.next(max(0.1, deadline - time.monotonic()))
            assert b is not None, "stream ended after %r" % out
            if "event" in b:
                b = dict(b, id=int(b["id"]), data=json.loads(b["data"]))
                out.append(b)
        return out

    def event(self, type_, timeout=10):
        """The next event of type type_ (others are skipped)."""
        while True:
            [e] = self.events(1, timeout)
            if e["event"] == type_:
                return e

    def close(self):
        """Leaves: the reader thread sees the end at once (closing the
        response alone would wait for it, holding the buffer's lock)."""
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def make_list(d, name="volunteers"):
    """A list with one member on it (whom the alerts reach)."""
    r = d.api("POST", "/api/v1/lists", {"name": name})
    assert r.status == 201, r
    lid = r.json["id"]
    r = d.api("POST", "/api/v1/lists/%d/members" % lid,
              {"phone": "+12122345678", "consent_source": "test"})
    assert r.status == 201, r
    return lid


def alert_events(d, lst, n=1):
    """Makes n alerts and schedules then cancels each: 2n alert events."""
    ids = []
    for _ in range(n):
        r = d.api("POST", "/api/v1/alerts",
                  {"name": "a", "lists": [lst],
                   "sms_body": "Rally at 7. Reply STOP to opt out"})
        assert r.status == 201, r
        aid = r.json["id"]
        r = d.api("POST", "/api/v1/alerts/%d/schedule" % aid,
                  {"at": "2099-01-01T00:00:00Z"})
        assert r.status == 200, r
        r = d.api("POST", "/api/v1/alerts/%d/cancel" % aid)
        assert r.status == 200, r
        ids.append(aid)
    return ids


def stored_ids(d):
    return [r[0] for r in d.query("SELECT id FROM events ORDER BY id")]


def test_no_token_401(daemon):
    assert Sse(daemon, token=None).status == 401
    assert Sse(daemon, token="not-the-token").status == 401


def test_stream_headers_and_alert_events(daemon):
    d = daemon
    lst = make_list(d)
    s = Sse(d)
    assert s.status == 200
    assert s.resp.getheader("Content-Type") == "text/event-stream"
    assert s.resp.getheader("Cache-Control") == "no-cache"
    assert s.next() == {"retry": "2000"}
    [aid] = alert_events(d, lst)
    got = s.events(2)
    assert [e["event"] for e in got] == ["alert", "alert"]
    assert [e["data"]["status"] for e in got] == ["scheduled", "cancelled"]
    assert all(e["data"]["id"] == aid and "counters" in e["data"]
               for e in got)
    assert got[1]["id"] > got[0]["id"]
    assert stored_ids(d)[-2:] == [e["id"] for e in got]
    s.close()


def test_inbound_text_publishes_message_and_conversation(make_daemon,
                                                         fakeprov):
    d = sms_daemon(make_daemon, fakeprov, "twilio")
    s = Sse(d)
    r = fakeprov.callback("twilio", kind="inbound",
                          text="Can I host a house meeting?",
                          **{"from": MEMBER, "to": OUR_NUMBER})
    assert r["status"] == 200, r
    m = s.event("message")
    [row] = d.query("SELECT id, conversation_id FROM messages "
                    "WHERE direction = 'in'")
    assert m["data"]["id"] == row["id"]
    assert m["data"]["conversation_id"] == row["conversation_id"]
    assert m["data"]["direction"] == "in"
    c = s.event("conversation")
    assert c["data"]["id"] == row["conversation_id"]
    # a second text in the same conversation: events again
    fakeprov.callback("twilio", kind="inbound", text="Or a phone bank?",
                      **{"from": MEMBER, "to": OUR_NUMBER})
    m2 = s.event("message")
    assert m2["id"] > m["id"]
    assert m2["data"]["conversation_id"] == row["conversation_id"]
    # staff changes to the conversation
    for action in ("read", "close", "reopen"):
        r = d.api("POST", "/api/v1/conversations/%d/%s"
                  % (row["conversation_id"], action), {})
        assert r.status == 200, r
        c = s.event("conversation")
        assert c["data"] == {"id": row["conversation_id"]}, action
    s.close()


def test_resume_replays_exactly_the_missed(daemon):
    d = daemon
    lst = make_list(d)
    alert_events(d, lst, 3)
    ids = stored_ids(d)
    assert len(ids) == 6
    # header
    s = Sse(d, last=ids[2])
    got = s.events(3)
    assert [e["id"] for e in got] == ids[3:]
    # nothing more was replayed: the next one is live
    alert_events(d, lst)
    [live] = s.events(1)
    assert live["id"] == stored_ids(d)[6]
    s.close()
    # query parameter, and nothing missed
    last = stored_ids(d)[-1]
    s = Sse(d, query="last_event_id=%d" % last)
    assert s.next() == {"retry": "2000"}
    alert_events(d, lst)
    assert [e["id"] for e in s.events(2)] == stored_ids(d)[-2:]
    s.close()


def test_resume_across_restart(daemon):
    d = daemon
    lst = make_list(d)
    alert_events(d, lst, 2)
    seen = stored_ids(d)
    s = Sse(d, last=seen[0])
    assert [e["id"] for e in s.events(3)] == seen[1:]
    d.stop()
    assert s.next() is None and s.ended == "eof"
    d.start()
    alert_events(d, lst)	# missed while "away"
    after = stored_ids(d)
    assert after[:4] == seen and min(after[4:]) > max(seen)
    s = Sse(d, last=seen[-1])
    assert [e["id"] for e in s.events(2)] == after[4:]
    s.close()


def test_reset_when_too_old_or_unknown(daemon):
    d = daemon
    lst = make_list(d)
    alert_events(d, lst, 2)
    ids = stored_ids(d)
    # pruned while the daemon was stopped (as 24 h would)
    d.stop()
    d.execute("DELETE FROM events WHERE id <= ?", (ids[1],))
    d.start()
    s = Sse(d, last=ids[0])
    [e] = s.events(1)
    assert e["event"] == "reset" and e["data"] == {}
    assert e["id"] == ids[-1]
    alert_events(d, lst)	# then live, after the reset's id
    assert [x["id"] for x in s.events(2)] == stored_ids(d)[-2:]
    s.close()
    # ids[1] is the floor: everything after it is still there
    s = Sse(d, last=ids[1])
    assert [x["id"] for x in s.events(2)] == ids[2:]
    s.close()
    for bad in (str(ids[-1] + 1000), "abc"):
        s = Sse(d, last=bad)
        [e] = s.events(1)
        assert e["event"] == "reset", bad
        s.close()


def test_stream_outlives_request_timeout(make_daemon):
    d = make_daemon({"http": {"request_timeout": "1s"}})
    lst = make_list(d)
    s = Sse(d)
    assert s.next() == {"retry": "2000"}
    time.sleep(3)	# three request_timeouts pass with nothing to send
    alert_events(d, lst)
    assert len(s.events(2)) == 2
    s.close()


@pytest.mark.slow
def test_keepalive_comment_and_events_after_it(make_daemon):
    """A quiet stream gets a keep-alive comment every 15 s and still
    carries events after it (far beyond request_timeout). That it outlives
    evhttp's own 30 s idle timeout is check_events.c's (a unit test on a
    real socket), not waited for twice."""
    d = make_daemon({"http": {"request_timeout": "1s"}})
    lst = make_list(d)
    s = Sse(d)
    assert s.next() == {"retry": "2000"}
    assert s.next(timeout=25) == {"comment": "keepalive"}
    alert_events(d, lst)
    assert len(s.events(2)) == 2
    s.close()


def test_client_leaving_frees_the_stream(make_daemon):
    d = make_daemon(extra=("-v",))
    s = Sse(d)
    assert s.next() == {"retry": "2000"}
    s.close()
    wait_for(lambda: "events_stream_closed" in d.log(), 10,
             what="events_stream_closed in the log")


def test_shutdown_ends_streams(daemon):
    d = daemon
    a, b = Sse(d), Sse(d, last=0)
    for s in (a, b):
        assert s.next() == {"retry": "2000"}
    assert d.stop() == 0
    for s in (a, b):
        assert s.next() is None
        assert s.ended == "eof", s.ended	# a whole chunked reply
