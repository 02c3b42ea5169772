"""
test_pg_conversations.py - the staff inbox on a PostgreSQL store (issue
13, doc/postgresql.md: daemon/conversations_pg.c,
queue/store_conversations_pg.c): two daemons with [store] backend =
postgresql on one database of the session's cluster (pgcluster.py),
their SMS sender pointed at the fake Twilio (fakeprov.py), authenticated
with the daemon's API token.

Covered, on states only (no timing assertions), in one test so that the
two nodes start once:
  - conversations written to the shared tables (as inbound routing
    leaves them) listed on node A: newest activity first, the filters,
    pages with their cursor, the search through the GIN index (accents
    and case folded, prefixes, a phrase; hostile text answered 200), a
    cursor that is not one refused 422; a thread with its messages;
  - a reply posted on node B with an Idempotency-Key: 202 after the
    commit, queued in the conversation, sent by the fake Twilio through
    the sender the member texted, its delivery report (to node B) seen
    in the thread read on node A; the same key on node A answers the
    same message (200, duplicate) and queues nothing;
  - close on one node seen on the other, reopen, assign (an unknown
    staff member 422), read, a note (201, never sent); 404 for a
    conversation that does not exist; 409 opted_out for a member who
    texted STOP, nothing queued;
  - saved replies made on one node (a name taken 409 on the other),
    changed, listed, used in a reply rendered for the member, deleted;
  - outreachctl inbox, thread, reply, note and close against node B.
"""

import json
import re
import subprocess
import urllib.parse

from conftest import OUTREACHCTL, TOKEN, free_port, scaled, wait_for
from fakeprov import (CREDENTIALS, OUR_NUMBER, SENDER_KEYS,  # noqa: F401
                      fakeprov)

ALICE = "+12125550101"
BOB = "+12125550102"


def pg_node(make_daemon, fake, url, node):
    """A node of the shared database whose sender 'sx' is the fake
    Twilio; the sender 'main' (the default) is never used here."""
    port = free_port()
    sx = {"provider": "twilio", "from": OUR_NUMBER, "base_url": fake.url,
          "timeout": "1s"}
    sx.update(SENDER_KEYS["twilio"](CREDENTIALS["twilio"], fake))
    conf = {
        "store": {"backend": "postgresql", "url": url, "node": node},
        "http": {"listen": "127.0.0.1:%d" % port,
                 "public_url": "http://127.0.0.1:%d" % port},
        "dispatch": {"retry_base": "200ms", "retry_max": "5s"},
        "sender sx": sx,
    }
    return make_daemon(conf, name=node)


def seed(pg, url):
    """Two members, each with an open conversation and one text in (as
    inbound routing writes them), Alice's the older."""
    pg.psql(url, """
        INSERT INTO members (phone, first_name, created_at, updated_at)
            VALUES ('%(a)s', 'Alice', 1, 1), ('%(b)s', 'Bob', 1, 1);
        INSERT INTO conversations (member_id, status, unread,
            last_message_at, created_at, sender, last_in_at, updated_at)
            SELECT id, 'open', 1, CASE phone WHEN '%(a)s' THEN 1000
            ELSE 2000 END, 900, 'sx', CASE phone WHEN '%(a)s' THEN 1000
            ELSE 2000 END, 900 FROM members ORDER BY id;
        INSERT INTO messages (direction, channel, member_id, sender,
            to_addr, from_addr, body, status, next_attempt_at,
            conversation_id, created_at, updated_at)
            SELECT 'in', 'sms', m.id, 'sx', '%(our)s', m.phone,
            CASE m.phone WHEN '%(a)s'
            THEN 'Can I host a house meeting at the Café?'
            ELSE 'What time is the RALLY?' END, 'received',
            c.last_in_at, c.id, c.last_in_at, c.last_in_at
            FROM members m JOIN conversations c ON c.member_id = m.id;
        """ % {"a": ALICE, "b": BOB, "our": OUR_NUMBER})
    ids = pg.psql(url, "SELECT c.id FROM conversations c JOIN members m"
                  " ON m.id = c.member_id ORDER BY m.phone").split()
    return int(ids[0]), int(ids[1])


def listing(d, query=""):
    r = d.api("GET", "/api/v1/conversations" + query)
    assert r.status == 200, r
    return r.json


def ids(d, query=""):
    return [c["id"] for c in listing(d, query)["conversations"]]


def act(d, cid, what, body=None, status=200, headers=None):
    r = d.api("POST", "/api/v1/conversations/%d/%s" % (cid, what), body,
              headers=headers)
    assert r.status == status, r
    return r.json


def thread(d, cid):
    r = d.api("GET", "/api/v1/conversations/%d" % cid)
    assert r.status == 200, r
    return r.json


def ctl(d, *args):
    p = subprocess.run(
        [str(OUTREACHCTL), "-u", d.url(), "-t", TOKEN] +
        [str(a) for a in args], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=scaled(20))
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout


def test_inbox_on_two_nodes(make_daemon, pgcluster, fakeprov):
    url = pgcluster.create_db("conversations")
    a = pg_node(make_daemon, fakeprov, url, "a")
    b = pg_node(make_daemon, fakeprov, url, "b")
    fakeprov.config(daemon_url=b.url())
    fakeprov.config("twilio", sender="sx")

    def one(sql):
        return pgcluster.psql(url, sql).strip()

    alice, bob = seed(pgcluster, url)
    # ---- listings on node A
    page = listing(a)
    assert [c["id"] for c in page["conversations"]] == [bob, alice]
    assert page["next"] is None
    c = page["conversations"][1]
    assert c["member"]["phone"] == ALICE and c["unread"] == 1
    assert c["last_message"] == {"direction": "in", "status": "received",
                                 "body": "Can I host a house meeting at "
                                 "the Café?"}
    assert ids(a, "?status=closed") == []
    assert ids(a, "?assigned=none&unread=1") == [bob, alice]
    first = listing(a, "?limit=1")
    assert [c["id"] for c in first["conversations"]] == [bob]
    assert ids(a, "?limit=1&after=" + first["next"]) == [alice]
    assert ids(a, "?q=cafe") == [alice]                 # accent folded
    assert ids(a, "?q=RAL") == [bob]                    # a prefix
    assert ids(a, "?q=" + urllib.parse.quote('"house meeting"')) == [alice]
    assert ids(a, "?q=" + urllib.parse.quote('"meeting house"')) == []
    assert ids(a, "?q=" + urllib.parse.quote("o'brien \\ & | ! ( :* <->")) \
        == []
    r = a.api("GET", "/api/v1/conversations?after=12x")
    assert r.status == 422 and "after" in r.json["error"]["message"], r
    t = thread(a, alice)
    assert t["sender"] == "sx"
    assert [(i["kind"], i["direction"]) for i in t["items"]] == \
        [("message", "in")]
    assert a.api("GET", "/api/v1/conversations/99999").status == 404
    # ---- a reply on node B, retried on node A
    key = {"Idempotency-Key": "reply-7f3a"}
    mid = act(b, alice, "reply", {"body": "Yes, Saturday at 10."},
              status=202, headers=key)["message_id"]
    again = act(a, alice, "reply", {"body": "Yes, Saturday at 10."},
                status=200, headers=key)
    assert again == {"message_id": mid, "duplicate": True}
    assert one("SELECT count(*) FROM messages WHERE direction = 'out'") \
        == "1"
    assert one("SELECT conversation_id || ' ' || priority || ' ' || "
               "sender FROM messages WHERE id = %d" % mid) == \
        "%d 10 sx" % alice
    m = a.wait_status(mid, "sent")
    [req] = fakeprov.wait_requests(1, "twilio")
    f = dict(urllib.parse.parse_qsl(req["body"]))
    assert f["To"] == ALICE and f["Body"] == "Yes, Saturday at 10."
    r = fakeprov.callback("twilio", kind="status", status="delivered",
                          id=m["provider_message_id"])
    assert r["status"] == 200, r
    t = thread(a, alice)
    assert t["unread"] == 0                             # a reply reads
    out = t["items"][-1]
    assert (out["direction"], out["id"], out["status"]) == \
        ("out", mid, "delivered")
    assert out["staff"]["id"] == 1
    # ---- state changes across the nodes
    assert act(a, alice, "close")["status"] == "closed"
    assert ids(b, "?status=closed") == [alice]
    assert act(b, alice, "reopen")["status"] == "open"
    assert act(a, bob, "assign", {"staff_id": 1})["assigned"]["id"] == 1
    assert ids(b, "?assigned=1") == [bob]
    r = b.api("POST", "/api/v1/conversations/%d/assign" % bob,
              {"staff_id": 999})
    assert r.status == 422 and "no staff member 999" in r.body.decode(), r
    assert act(b, bob, "assign", {"staff_id": None})["assigned"] is None
    assert act(b, bob, "read")["unread"] == 0
    note = act(b, bob, "notes", {"body": "Wants to bring a group"},
               status=201)
    assert note["kind"] == "note" and note["staff"]["id"] == 1
    assert [i["kind"] for i in thread(a, bob)["items"]] == \
        ["message", "note"]
    for what in ("close", "notes", "reply"):
        r = a.api("POST", "/api/v1/conversations/99999/" + what,
                  {"body": "x"} if what != "close" else None)
        assert r.status == 404, (what, r)
    pgcluster.psql(url, "INSERT INTO sms_optout (member_id, opted_out_at,"
                   " source) SELECT id, 1, 'keyword' FROM members"
                   " WHERE phone = '%s'" % BOB)
    r = a.api("POST", "/api/v1/conversations/%d/reply" % bob,
              {"body": "Still there?"})
    assert r.status == 409 and r.json["error"]["code"] == "opted_out", r
    assert one("SELECT count(*) FROM messages WHERE direction = 'out'") \
        == "1"
    # ---- saved replies: made on one node, used on the other
    r = a.api("POST", "/api/v1/saved-replies",
              {"name": "thanks", "body": "Thanks {{first_name|friend}}!"})
    assert r.status == 201, r
    sid = r.json["id"]
    r = b.api("POST", "/api/v1/saved-replies", {"name": "thanks",
                                                "body": "x"})
    assert r.status == 409, r
    r = b.api("PATCH", "/api/v1/saved-replies/%d" % sid,
              {"body": "Thanks, {{first_name|friend}}!"})
    assert r.status == 200 and r.json["name"] == "thanks", r
    r = a.api("GET", "/api/v1/saved-replies")
    assert r.json["saved_replies"] == [
        {"id": sid, "name": "thanks", "body": "Thanks, {{first_name|friend}}!"}]
    mid3 = act(b, alice, "reply", {"saved_reply": sid},
               status=202)["message_id"]
    assert a.wait_status(mid3, "sent")["body"] == "Thanks, Alice!"
    r = a.api("POST", "/api/v1/conversations/%d/reply" % alice,
              {"saved_reply": sid + 100})
    assert r.status == 422 and "no saved reply" in r.body.decode(), r
    assert b.api("DELETE", "/api/v1/saved-replies/%d" % sid).status == 204
    assert a.api("GET", "/api/v1/saved-replies/%d" % sid).status == 404
    # ---- outreachctl against node B
    out = ctl(b, "inbox")
    assert out.splitlines()[0].split()[:3] == ["id", "status", "unread"]
    assert "What time is the RALLY?" in out
    # the reply made Alice's the newest
    assert ctl(b, "inbox", "-q").split() == [str(alice), str(bob)]
    js = json.loads(ctl(b, "inbox", "--json", "--search", "meeting"))
    assert [c["id"] for c in js["conversations"]] == [alice]
    out = ctl(b, "reply", alice, "See you there!")
    mid2 = int(re.search(r"queued message (\d+)", out).group(1))
    assert re.match(r"note \d+ added", ctl(b, "note", alice, "Confirmed"))
    a.wait_status(mid2, "sent")
    out = ctl(b, "thread", alice)
    assert "conversation %d: Alice %s" % (alice, ALICE) in out
    assert re.search(r"out #%d \[sent\]" % mid2, out), out
    assert re.search(r"note by .*\n  Confirmed", out), out
    ctl(b, "close", alice)
    assert ids(a, "?status=closed") == [alice]
    wait_for(lambda: len(fakeprov.requests("twilio")) >= 3, scaled(10),
             what="three replies at the fake")
    assert [dict(urllib.parse.parse_qsl(q["body"]))["Body"]
            for q in fakeprov.requests("twilio")] == \
        ["Yes, Saturday at 10.", "Thanks, Alice!", "See you there!"]
