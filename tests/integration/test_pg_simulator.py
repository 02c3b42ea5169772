"""
test_pg_simulator.py - the phone simulator's API on a PostgreSQL store
(issue 13, doc/postgresql.md; daemon/simulator.c, queue/store_outbox.c):
two real daemons with [store] backend = postgresql on one database of a
throwaway cluster (pgcluster.py).

Checked, on states only (no timing assertions): GET /api/v1/simulator
answers from the node's config; a text posted to node A's console
inbound webhook and a message sent through node B's API are both listed
by GET /api/v1/messages?to= on either node, oldest first, with the same
cursor ("next": the last id of a full page, else the highest message id
of the database); a poll from that cursor reads nothing again.
"""
import urllib.parse

from conftest import scaled, wait_for

PHONE = "+15551230042"
FORM = "application/x-www-form-urlencoded"


def pg_conf(url, node):
    return {"store": {"backend": "postgresql", "url": url, "node": node},
            "dispatch": {"lease": "2s"}}


def listing(d, **q):
    r = d.api("GET", "/api/v1/messages?" + urllib.parse.urlencode(q))
    assert r.status == 200, r.body
    return r.json


def test_simulator_across_nodes(make_daemon, pgcluster):
    url = pgcluster.create_db("simulator")
    a, b = [make_daemon(pg_conf(url, n), name=n) for n in ("a", "b")]
    for d in (a, b):
        r = d.api("GET", "/api/v1/simulator")
        assert r.status == 200, r.body
        assert r.json == {"enabled": True, "sender": "console",
                          "from": "+15550100000"}
    assert listing(a, to=PHONE) == {"messages": [], "next": None}

    # A text to node A (as the simulator page posts it), a reply and a
    # message to another number through node B's API.
    r = a.api("POST", "/webhooks/console/inbound",
              raw=urllib.parse.urlencode({"From": PHONE,
                                          "Body": "hello"}).encode(),
              token=None, headers={"Content-Type": FORM})
    assert r.status == 200, r.body
    mid = b.send_sms(PHONE, "hi from b")
    b.send_sms("+15551230099", "elsewhere")
    wait_for(lambda: a.api("GET", "/api/v1/messages/%d" % mid)
             .json.get("status") == "sent", scaled(20),
             what="the message sent")

    newest = int(pgcluster.psql(url, "SELECT max(id) FROM messages")
                 .strip())
    both = [listing(d, to=PHONE, direction="all") for d in (a, b)]
    assert both[0] == both[1], both
    got = both[0]["messages"]
    assert [(m["direction"], m["body"]) for m in got] == [
        ("in", "hello"), ("out", "hi from b")], got
    assert got[1]["id"] == mid and got[1]["status"] == "sent"
    assert got[1]["to"] == PHONE and got[1]["sender"] == "console"
    assert got[0]["from"] == PHONE and got[0]["channel"] == "sms"
    assert both[0]["next"] == newest
    # only what was sent to the number; a full page's cursor; idle polls
    out = listing(b, to=PHONE)
    assert [m["body"] for m in out["messages"]] == ["hi from b"], out
    page = listing(a, to=PHONE, direction="all", limit=1)
    assert [m["id"] for m in page["messages"]] == [got[0]["id"]]
    assert page["next"] == got[0]["id"]
    rest = listing(b, to=PHONE, direction="all", after=page["next"])
    assert [m["id"] for m in rest["messages"]] == [mid]
    assert listing(a, to=PHONE, after=newest) == {"messages": [],
                                                  "next": newest}
    r = b.api("GET", "/api/v1/messages?to=%2B15551230042&limit=0")
    assert r.status == 422, r.body
