"""
test_pg_events.py - live events across nodes on a PostgreSQL store
(issue 13: daemon/events.c, queue/store_events_pg.c; doc/events.md and
doc/postgresql.md): two real daemons on one database of a throwaway
cluster (pgcluster.py), their GET /api/v1/events streams read by
test_events.py's client.

Events are committed here the way another node's group commits them (the
INSERT and its pg_notify('od_events') in one transaction, through psql),
so the test controls when each id commits; the daemons' own publishers
are covered where they are ported (test_pg_lists.py, ...).

Covered, on states only (no timing assertions):
  - an event committed anywhere reaches the streams of both nodes, each
    once, in id order;
  - order across a gap: an id given to a transaction still open is
    streamed, once it commits, BEFORE the next id that committed first
    (a reader streaming in commit order would send the later one and
    then never the earlier);
  - an id whose transaction rolled back never fills its gap: the events
    after it still come (after the grace period);
  - resuming with Last-Event-ID on the other node replays exactly the
    events after it (the rolled-back id skipped) and goes on live;
  - "reset" for an id this database never gave and for one whose
    successors were pruned;
  - no token: 401;
  - the "message" events of a staff reply (012_message_events.sql: the
    state changes of a conversation message write their event in the
    same statement, on whichever node makes them): replied on node B,
    sent by the fake Twilio, its delivery report to node B, each state
    streamed on node A in order, with the reply's "conversation" event;
    a conversation closed on node A announced on node B's stream.
"""

import subprocess

from conftest import scaled
from fakeprov import fakeprov  # noqa: F401 (fixture)
from test_events import Sse
from test_pg_conversations import act, seed
from test_pg_conversations import pg_node as conv_node
from test_webhooks import tw_conf


def pg_node(make_daemon, url, node):
    conf = tw_conf()
    conf["store"] = {"backend": "postgresql", "url": url, "node": node}
    return make_daemon(conf, name=node)


def publish(pg, url, n):
    """Commits event {"n": n} as a node would: one id, one NOTIFY."""
    return int(pg.psql(url, """
        WITH e AS (INSERT INTO events (type, data, created_at)
            VALUES ('test', '{"n": %d}', 0) RETURNING id)
        SELECT id, pg_notify('od_events', id::text) FROM e""" % n)
        .split("|")[0])


class OpenTx:
    """A psql session holding a transaction open (its id taken, not yet
    committed), as a node's group in flight."""

    def __init__(self, pg, url, n):
        self.p = subprocess.Popen(
            [pg.psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            bufsize=1)
        self.p.stdin.write(
            "BEGIN;\nINSERT INTO events (type, data, created_at) VALUES "
            "('test', '{\"n\": %d}', 0) RETURNING id;\n"
            "SELECT pg_notify('od_events', 'x');\n\\echo ready\n" % n)
        lines = []
        while True:
            line = self.p.stdout.readline()
            assert line, "psql ended: %r" % lines
            if line.strip() == "ready":
                break
            if line.strip():
                lines.append(line.strip())
        self.id = int(lines[0])

    def end(self, how):
        self.p.stdin.write(how + ";\n")
        self.p.stdin.close()
        assert self.p.wait(timeout=scaled(30)) == 0


def sse(d, **kw):
    s = Sse(d, **kw)
    assert s.status == 200, s.status
    return s


def test_events_across_nodes(make_daemon, pgcluster):
    url = pgcluster.create_db("events_nodes")
    a = pg_node(make_daemon, url, "a")
    b = pg_node(make_daemon, url, "b")
    assert Sse(a, token=None).status == 401
    sa, sb = sse(a), sse(b)

    # Live, from anywhere, to both, in order.
    ids = [publish(pgcluster, url, n) for n in (1, 2, 3)]
    assert ids == list(range(ids[0], ids[0] + 3))
    for s in (sa, sb):
        got = s.events(3)
        assert [e["id"] for e in got] == ids
        assert [e["data"]["n"] for e in got] == [1, 2, 3]
        assert {e["event"] for e in got} == {"test"}

    # A gap: id N is taken by an open transaction, N+1 commits first.
    held = OpenTx(pgcluster, url, 4)
    early = publish(pgcluster, url, 5)
    assert early == held.id + 1
    held.end("COMMIT")
    for s in (sa, sb):
        assert [(e["id"], e["data"]["n"]) for e in s.events(2)] == \
            [(held.id, 4), (early, 5)]

    # A rolled-back id leaves a gap nothing fills; what follows comes.
    lost = OpenTx(pgcluster, url, 6)
    lost.end("ROLLBACK")
    after = publish(pgcluster, url, 7)
    assert after == lost.id + 1
    for s in (sa, sb):
        [e] = s.events(1, timeout=30)
        assert (e["id"], e["data"]["n"]) == (after, 7)

    # Resuming on the other node: exactly what came after, then live.
    r = sse(b, last=ids[0])
    assert [e["data"]["n"] for e in r.events(5)] == [2, 3, 4, 5, 7]
    more = publish(pgcluster, url, 8)
    for s in (r, sa, sb):
        [e] = s.events(1)
        assert (e["id"], e["data"]["n"]) == (more, 8)
    r.close()

    # Reset: an id this database never gave, and one whose successors
    # are gone (pruned).
    [e] = sse(a, last=more + 1000).events(1)
    assert e["event"] == "reset" and e["id"] == more
    pgcluster.psql(url, "DELETE FROM events WHERE id <= %d" % ids[1])
    [e] = sse(b, last=ids[0]).events(1)
    assert e["event"] == "reset" and e["id"] == more
    sa.close()
    sb.close()


def test_reply_events_reach_every_node(make_daemon, pgcluster, fakeprov):
    url = pgcluster.create_db("events_reply")
    a = conv_node(make_daemon, fakeprov, url, "a")
    b = conv_node(make_daemon, fakeprov, url, "b")
    fakeprov.config(daemon_url=b.url())
    fakeprov.config("twilio", sender="sx")
    alice, _ = seed(pgcluster, url)
    sa = sse(a)
    mid = act(b, alice, "reply", {"body": "See you Saturday."},
              status=202)["message_id"]
    m = b.wait_status(mid, "sent")
    r = fakeprov.callback("twilio", kind="status", status="delivered",
                          id=m["provider_message_id"])
    assert r["status"] == 200, r
    seen, convs = [], []
    while not seen or seen[-1] != "delivered":
        [e] = sa.events(1)
        if e["event"] == "conversation":
            convs.append(e["data"]["id"])
            continue
        assert e["event"] == "message" and e["data"]["id"] == mid and \
            e["data"]["conversation_id"] == alice and \
            e["data"]["direction"] == "out", e
        seen.append(e["data"]["status"])
    assert seen == ["queued", "sending", "sent", "delivered"], seen
    assert convs == [alice], convs
    # a change on node A: its "conversation" event on node B's stream
    sb = sse(b)
    act(a, alice, "close")
    e = sb.event("conversation")
    assert e["data"] == {"id": alice}, e
    sa.close()
    sb.close()
