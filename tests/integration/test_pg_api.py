"""
test_pg_api.py - the API, token auth, delivery reports and the opt-out
keywords of daemons on a PostgreSQL store (issue 13, doc/postgresql.md:
queue/queue_pg.c, queue/store_staff_pg.c): real daemons with [store]
backend = postgresql on one database of a throwaway cluster
(pgcluster.py), two nodes where it matters.

Covered, on states only (no timing assertions):
  - bearer tokens: the daemon's own on both nodes (staff #1 made once);
    one made and revoked through the API (outreachctl token create and
    revoke) on one node and used on the other; a
    token written to the shared tables (as another node's `outreachctl
    token create` leaves it) works on a node that never saw it, and a
    burst of requests with it, all waiting for the same first read, are
    all answered; revoked, it stops working (after the cache's life);
    unknown: 401; every accepted message leaves its audit row;
  - POST then GET of a message (202 only once committed: the other node
    reads it at once), with its history;
  - delivery reports by Twilio's id: forward only; an id no message
    carries yet is kept in status_early; the 200 comes after the commit;
  - received texts: a provider's retry to the other node stores nothing
    twice; STOP opts out (one consent event, one exempt confirmation
    queued), a second STOP changes nothing, START opts back in, HELP is
    answered; a plain text joins the member's conversation (lists and
    conversations: test_pg_lists.py).
"""

import hashlib
import threading

from conftest import TOKEN, wait_for, scaled
from test_webhooks import (INBOUND, MEMBER, STATUS, inbound_params, new_sid,
                           post_form, status_params, tw_conf)


def pg_node(make_daemon, url, node):
    conf = tw_conf()
    conf["store"] = {"backend": "postgresql", "url": url, "node": node}
    return make_daemon(conf, name=node)


# A read any authorized caller gets (404: no such message); 401 if not.
PROBE = "/api/v1/messages/999999"


def one(pg, url, sql):
    return pg.psql(url, sql).strip()


def test_tokens_on_postgresql(make_daemon, pgcluster):
    url = pgcluster.create_db("api_tokens")
    a = pg_node(make_daemon, url, "a")
    b = pg_node(make_daemon, url, "b")
    assert one(pgcluster, url, "SELECT count(*) FROM staff") == "1"
    for d in (a, b):
        r = d.api("GET", PROBE)
        assert r.status == 404, r.body
    # A token made elsewhere: node b has never read it.
    tok = "pg-api-token-0123456789"
    pgcluster.psql(url, """
        INSERT INTO staff (name, role, created_at, updated_at)
            VALUES ('Org', 'organizer', 1, 1);
        INSERT INTO api_tokens (staff_id, name, token_hash, daemon,
            created_at) SELECT id, 'ctl', '%s', 0, 1 FROM staff
            WHERE name = 'Org';""" % hashlib.sha256(tok.encode()).hexdigest())
    codes = []

    def get():
        codes.append(b.api("GET", PROBE, token=tok).status)
    threads = [threading.Thread(target=get) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [404] * 20, codes
    r = b.api("POST", "/api/v1/messages",
              {"to": "+15550400001", "body": "from an organizer"}, token=tok)
    assert r.status == 202, r.body
    wait_for(lambda: one(pgcluster, url, "SELECT count(*) FROM audit "
                         "WHERE action = 'POST /api/v1/messages'") == "1",
             scaled(10), what="the audit row")
    r = a.api("GET", PROBE, token="no-such-token")
    assert r.status == 401, r.body
    pgcluster.psql(url, "UPDATE api_tokens SET revoked_at = 2 "
                   "WHERE name = 'ctl'")
    wait_for(lambda: b.api("GET", PROBE, token=tok).status == 401,
             scaled(10), what="the revoked token refused")
    assert a.api("GET", PROBE, token=tok).status == 401
    # outreachctl token create / revoke: through the API, on either node.
    r = a.api("POST", "/api/v1/tokens", {"name": "ci"})
    assert r.status == 201, r.body
    made, tid = r.json["token"], r.json["id"]
    assert r.headers["Location"] == "/api/v1/tokens/%d" % tid
    assert b.api("GET", PROBE, token=made).status == 404
    r = b.api("POST", "/api/v1/tokens", {"staff_id": 99})
    assert r.status == 422, r.body
    assert b.api("DELETE", "/api/v1/tokens/%d" % (tid + 100)).status == 404
    r = b.api("DELETE", "/api/v1/tokens/%d" % tid)
    assert r.status == 204, r.body
    wait_for(lambda: a.api("GET", PROBE, token=made).status == 401,
             scaled(10), what="the revoked token refused")
    # The daemon's token still works on both, after a restart too.
    b.restart()
    assert b.api("GET", PROBE, token=TOKEN).status == 404
    assert one(pgcluster, url, "SELECT count(*) FROM staff") == "2"


def test_message_and_reports_on_postgresql(make_daemon, pgcluster):
    url = pgcluster.create_db("api_reports")
    a = pg_node(make_daemon, url, "a")
    b = pg_node(make_daemon, url, "b")
    r = a.api("POST", "/api/v1/messages",
              {"to": MEMBER, "body": "hello", "sender": "tw",
               "not_before": 4102444800})  # 2100: never claimed here
    assert r.status == 202, r.body
    mid = r.json["id"]
    assert r.headers["Location"] == "/api/v1/messages/%d" % mid
    m = b.message(mid)
    assert m["status"] == "queued" and m["to"] == MEMBER
    assert [h["status"] for h in m["history"]] == ["queued"]
    assert b.api("GET", "/api/v1/messages/%d" % (mid + 1000)).status == 404
    # As if a node had sent it through Twilio.
    sid = new_sid()
    pgcluster.psql(url, "UPDATE messages SET status = 'sent', provider = "
                   "'twilio', provider_message_id = '%s' WHERE id = %d"
                   % (sid, mid))
    r = post_form(b, STATUS, status_params(sid, "delivered"))
    assert r.status == 200, r.body
    assert a.message(mid)["status"] == "delivered"
    r = post_form(a, STATUS, status_params(sid, "failed", 30005))
    assert r.status == 200, r.body
    m = b.message(mid)
    assert m["status"] == "delivered" and m["error"] is None
    # (the test set it sent without a history row)
    assert [h["status"] for h in m["history"]] == ["queued", "delivered"]
    early = new_sid()
    r = post_form(a, STATUS, status_params(early, "delivered"))
    assert r.status == 200, r.body
    assert one(pgcluster, url, "SELECT status FROM status_early WHERE "
               "provider_message_id = '%s'" % early) == "delivered"


def test_keywords_on_postgresql(make_daemon, pgcluster):
    url = pgcluster.create_db("api_keywords")
    a = pg_node(make_daemon, url, "a")
    b = pg_node(make_daemon, url, "b")

    def text(d, body, sid=None):
        r = post_form(d, INBOUND, inbound_params(sid or new_sid(), body))
        assert r.status == 200, r.body

    def count(sql):
        return int(one(pgcluster, url, sql))

    hello = new_sid()
    text(a, "hello there", hello)
    text(b, "hello there", hello)  # Twilio's retry, to the other node
    assert count("SELECT count(*) FROM messages WHERE direction = 'in'") == 1
    text(a, "STOP")
    assert count("SELECT count(*) FROM sms_optout o JOIN members m ON "
                 "m.id = o.member_id WHERE m.phone = '%s'" % MEMBER) == 1
    replies = "SELECT count(*) FROM messages WHERE direction = 'out' " \
        "AND to_addr = '%s'" % MEMBER
    assert count(replies + " AND optout_exempt = 1") == 1
    text(b, "stop")  # nothing changes, no second confirmation
    assert count("SELECT count(*) FROM consent_events") == 1
    assert count(replies) == 1
    text(b, "START")
    assert count("SELECT count(*) FROM sms_optout") == 0
    assert count("SELECT count(*) FROM consent_events "
                 "WHERE action = 'opt_in'") == 1
    assert count(replies) == 2
    text(a, "HELP")
    assert count(replies + " AND optout_exempt = 1") == 2
    assert count("SELECT count(*) FROM members") == 1
    assert count("SELECT count(*) FROM messages WHERE direction = 'in' "
                 "AND member_id IS NOT NULL") == 5
    assert "action=conversation" in a.log()
    assert count("SELECT count(*) FROM conversations") == 1
    assert "action=optout changed=1" in a.log()


def test_stop_right_after_writes(make_daemon, pgcluster):
    """SIGTERM while the last writes' groups (each accepted message's
    audit row comes in a group after its 202) may still be in flight:
    they are committed at the stop, outside the loop, and the node exits
    0 without an error line (the fixture fails on any)."""
    url = pgcluster.create_db("api_stop")
    a = pg_node(make_daemon, url, "a")
    for round_ in range(3):
        for i in range(5):
            r = a.api("POST", "/api/v1/messages",
                      {"to": MEMBER, "body": "stop %d.%d" % (round_, i),
                       "not_before": 4102444800})
            assert r.status == 202, r.body
        assert a.stop() == 0
        a.start()
    assert one(pgcluster, url, "SELECT count(*) FROM audit WHERE action ="
               " 'POST /api/v1/messages'") == "15"
