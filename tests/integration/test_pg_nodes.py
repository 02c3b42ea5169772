"""
test_pg_nodes.py - several outreachd nodes on one PostgreSQL store
(issue 13, doc/postgresql.md): real daemons, each with [store] backend =
postgresql on one database of a throwaway cluster (pgcluster.py), sharing
the queue, the members' opt-outs and the senders' pace.

What is checked, on states and counts only (no timing assertions):
  - three nodes drain 50,000 messages of three senders (a route each:
    a route is paced by the node holding its lease); the one that sent
    most is killed with SIGKILL mid-drain: every message ends sent, and
    every message handed out twice is one the killed node had handed to
    its adapter and never recorded, at most [dispatch] max_in_flight per
    route, each brought back by a sweep of its expired lease;
  - a sender's rate is one budget across nodes: with three nodes ready to
    send, the console outboxes together never hold more than rate +
    burst messages stamped within any one second;
  - a STOP received by node A suppresses the message that node B sends
    afterwards (the send-time check reads A's committed opt-out);
  - a message accepted by one node's API is read back through another's;
  - a second live process under a node's name is refused at start.
"""

import json
import re
import time
from collections import Counter
from datetime import datetime

import pytest

from conftest import TOKEN, scaled, wait_for

LEASE = "2s"
WINDOW = 64  # [dispatch] max_in_flight of every node here


def pg_conf(url, node, **extra):
    conf = {"store": {"backend": "postgresql", "url": url, "node": node},
            "dispatch": {"lease": LEASE, "max_in_flight": str(WINDOW),
                         "batch": str(WINDOW)}}
    for sec, kv in extra.items():
        conf.setdefault(sec, {}).update(kv)
    return conf


def outbox(d):
    """Every console outbox line daemon d wrote, of all its senders.

    Read while the node writes, a file may end in the part of a line
    written so far: only lines that end in a newline count."""
    lines = []
    for path in sorted(d.dir.glob("outbox*.jsonl")):
        done = path.read_text().split("\n")[:-1]
        lines += [json.loads(line) for line in done if line.strip()]
    return lines


def three_senders(d):
    """Senders console, s2 and s3 on daemon d, each with its outbox."""
    return {"sender s%d" % i: {"provider": "console",
                               "from": "+1555010000%d" % i,
                               "file": str(d / ("outbox-s%d.jsonl" % i))}
            for i in (2, 3)}


def queue_bulk(pg, url, n, senders=("console",), first_to=15550200000):
    """n queued SMS inserted straight into the shared table (the
    fixture's fast path for 50,000 rows), spread over senders in turn;
    returns their ids."""
    now = int(time.time() * 1000)
    pg.psql(url, """
        INSERT INTO messages (direction, channel, sender, to_addr, body,
            status, next_attempt_at, created_at, updated_at)
        SELECT 'out', 'sms', (ARRAY['%s'])[1 + g %% %d],
            '+' || (%d + g)::text, 'bulk ' || g::text, 'queued', %d, %d, %d
        FROM generate_series(1, %d) AS g
    """ % ("','".join(senders), len(senders), first_to, now, now, now, n))
    return [int(x) for x in pg.psql(
        url, "SELECT id FROM messages WHERE body LIKE 'bulk %%' "
        "ORDER BY id").split()]


def status_counts(pg, url):
    out = pg.psql(url, "SELECT status, count(*) FROM messages "
                  "WHERE direction = 'out' GROUP BY status")
    return {k: int(v) for k, v in
            (line.split("|") for line in out.splitlines() if line)}


def start_nodes(make_daemon, url, names, **extra):
    return [make_daemon(pg_conf(url, name, **extra), name=name)
            for name in names]


def test_three_nodes_drain_and_one_is_killed(make_daemon, pgcluster):
    url = pgcluster.create_db("drain3")
    n = 50000
    nodes = []
    for name in ("n1", "n2", "n3"):
        d = make_daemon(pg_conf(url, name), start=False, name=name)
        d.configure(three_senders(d.dir))
        nodes.append(d.start())
    # Three senders: each route is paced by one node at a time (its
    # lease), so the three share the work a route each.
    ids = queue_bulk(pgcluster, url, n, ("console", "s2", "s3"))
    assert len(ids) == n
    wait_for(lambda: status_counts(pgcluster, url).get("sent", 0) >= n / 5,
             scaled(120), what="a fifth sent")
    # Kill the node that has sent the most so far, mid-drain.
    victim = max(nodes, key=lambda d: len(outbox(d)))
    victim.kill9()
    wait_for(lambda: status_counts(pgcluster, url).get("sent", 0) == n,
             scaled(300), what="all 50,000 messages sent")
    assert status_counts(pgcluster, url) == {"sent": n}
    seen = {}
    for d in nodes:
        for line in outbox(d):
            seen.setdefault(line["id"], []).append(d.dir.name)
    assert set(seen) == set(ids)
    twice = {i: where for i, where in seen.items() if len(where) > 1}
    # Only what the killed node handed out and never recorded comes back.
    assert all(victim.dir.name in where and len(where) == 2
               for where in twice.values())
    # At most one in-flight window per route the killed node held.
    sender = {line["id"]: line["sender"] for line in outbox(victim)}
    per_route = Counter(sender[i] for i in twice)
    assert all(k <= WINDOW for k in per_route.values()), per_route
    # The killed node's routes went on at the others once its leases
    # ended.
    others = {line["sender"] for d in nodes if d is not victim
              for line in outbox(d)}
    assert set(sender.values()) <= others, (set(sender.values()), others)
    # Each of them came back through a sweep of the dead node's lease.
    swept = {int(x) for x in pgcluster.psql(url, """
        SELECT DISTINCT message_id FROM message_events
        WHERE text = 'lease expired'""").split()}
    assert set(twice) <= swept, sorted(set(twice) - swept)[:10]


def test_sender_rate_is_shared_by_the_nodes(make_daemon, pgcluster):
    url = pgcluster.create_db("rate3")
    rate = 40
    extra = {"sender console": {"rate": str(rate), "burst": str(rate)}}
    nodes = start_nodes(make_daemon, url, ["r1", "r2", "r3"], **extra)
    n = 4 * rate
    queue_bulk(pgcluster, url, n)
    wait_for(lambda: status_counts(pgcluster, url).get("sent", 0) == n,
             scaled(60), what="all messages sent")
    stamps = sorted(datetime.fromisoformat(line["at"].replace("Z", "+00:00"))
                    .timestamp()
                    for d in nodes for line in outbox(d))
    assert len(stamps) == n
    # Any one-second window: at most one bucket's burst plus its refill.
    j = 0
    for i, t in enumerate(stamps):
        while stamps[j] < t - 1.0:
            j += 1
        assert i - j + 1 <= 2 * rate, (i - j + 1, rate)


def test_stop_on_one_node_suppresses_another_nodes_send(make_daemon,
                                                         pgcluster):
    url = pgcluster.create_db("stop2")
    member = "+15550300001"
    # A receives on sender "door" only; only B has "console", so only B
    # can claim the message.
    a_conf = pg_conf(url, "a")
    a_conf["sender console"] = None
    a = make_daemon(a_conf, start=False, name="a")
    a.configure({"sender door": {"provider": "console",
                                 "from": "+15550100009",
                                 "file": str(a.dir / "door.jsonl")}})
    a.start()
    b = make_daemon(pg_conf(url, "b"), name="b")
    # Accepted by B for two seconds from now: queued, not yet claimable.
    not_before = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                               time.gmtime(time.time() + 2))
    r = b.api("POST", "/api/v1/messages",
              {"channel": "sms", "to": member, "body": "after stop",
               "not_before": not_before})
    assert r.status == 202, r.body
    mid = r.json["id"]
    # STOP reaches A, which commits the opt-out before its 200.
    r = a.api("POST", "/webhooks/door/inbound",
              {"From": member, "Body": "STOP", "Id": "stop-1"}, token=None)
    assert r.status == 200, r.body
    wait_for(lambda: pgcluster.psql(
        url, "SELECT status FROM messages WHERE id = %d" % mid).strip()
        == "suppressed", scaled(20), what="message %d suppressed" % mid)
    assert not [m for m in outbox(b) if m["id"] == mid]
    assert re.search(r"\bmsg_suppressed msg=%d\b" % mid, b.log())


def test_api_on_one_node_read_on_another(make_daemon, pgcluster):
    url = pgcluster.create_db("api2")
    a = make_daemon(pg_conf(url, "x"), name="x")
    b = make_daemon(pg_conf(url, "y"), name="y")
    r = a.api("POST", "/api/v1/messages",
              {"channel": "sms", "to": "+15550300002", "body": "hello",
               "idempotency_key": "k-1"})
    assert r.status == 202, r.body
    mid = r.json["id"]
    # The same key on the other node is the same message.
    r = b.api("POST", "/api/v1/messages",
              {"channel": "sms", "to": "+15550300002", "body": "hello",
               "idempotency_key": "k-1"})
    assert r.status in (200, 202), r.body
    assert r.json["id"] == mid
    wait_for(lambda: b.api("GET", "/api/v1/messages/%d" % mid)
             .json.get("status") == "sent", scaled(20),
             what="message sent, read on node y")


def test_one_live_process_per_node_name(make_daemon, pgcluster):
    url = pgcluster.create_db("names")
    make_daemon(pg_conf(url, "same"), name="first")
    second = make_daemon(pg_conf(url, "same"), name="second", start=False)
    second.start(wait=False)
    assert second.proc.wait(scaled(30)) != 0
    assert "node same is already running" in second.log()
    second.expect_log(r"node same is already running")


def test_every_route_family_answers_on_postgresql(make_daemon, pgcluster):
    """No route answers 503 not_on_postgresql any more: a sample of each
    family a node serves, and /metrics with the database-wide gauges."""
    url = pgcluster.create_db("later")
    d = make_daemon(pg_conf(url, "later"), name="later")
    # served there now (test_pg_staff.py); a confirmation link that does
    # not verify is refused (test_pg_links.py)
    assert d.api("GET", "/c/x", token=None).status == 403
    for path in ("/api/v1/status", "/api/v1/me", "/api/v1/tokens", "/ui/",
                 "/api/v1/imports"):
        r = d.api("GET", path)
        assert r.status == 200, (path, r.status, r.body)
    assert d.api("GET", "/healthz", token=None).status == 200
    # /metrics: the node's own figures and the database-wide gauges
    # (read at most every 10 s there: daemon/api.c)
    r = d.api("GET", "/metrics", token=None)
    assert r.status == 200, r.body
    assert b"outreachd_store_commits_total" in r.body
    assert b"outreachd_queue_messages{" in r.body
    assert b"\noutreachd_email_bouncing_members 0\n" in r.body
    # [list] sections are synced there (test_pg_lists.py), and the lists
    # API is served (test_pg_lists_api.py)
    r = d.api("GET", "/api/v1/lists")
    assert r.status == 200 and r.json == {"lists": []}, r.body
