"""
test_conversations.py - the staff inbox end to end (issue 11,
doc/conversations.md): texts that are not keywords join the member's
conversation (a closed one reopens), attribution to the last alert within
[conversations] attribution_window and not beyond it, the listing's
filters and full-text search (hostile search text included), a thread
with messages both ways and their states, replies (through the sender
the member texted, to the fake Twilio; refused 409 for an opted-out
member with nothing queued), assign and release, close and reopen, notes
that are never sent, saved replies rendered for the member, and the stale
flag.

Members text through the console sender's inbound webhook (loopback,
JSON From/Body), except where the fake provider's Twilio shape matters.
"""

import urllib.parse

from conftest import wait_for
from fakeprov import OUR_NUMBER, fakeprov, sms_daemon  # noqa: F401

ALICE = "+12125550101"
BOB = "+12125550102"
CAROL = "+12125550103"
ALWAYS = {"alerts": {"quiet_start": "00:00", "quiet_end": "24:00"}}
LISTS = {
    "sms": {"program": "Darfur Now", "contact": "help@darfur.example"},
    "list DARFUR": {"keywords": "darfur"},
}


def conf(*extra):
    out = {k: dict(v) for k, v in LISTS.items()}
    for c in (ALWAYS,) + extra:
        for sec, kv in c.items():
            out.setdefault(sec, {}).update(kv)
    return out


def text(d, frm, body):
    """The member texts body through the console sender."""
    r = d.api("POST", "/webhooks/console/inbound",
              {"From": frm, "Body": body}, token=None)
    assert r.status == 200, r
    return r


def convs(d, query=""):
    r = d.api("GET", "/api/v1/conversations" + query)
    assert r.status == 200, r
    return r.json["conversations"]


def conv_of(d, phone, query="?status=all"):
    found = [c for c in convs(d, query) if c["member"]["phone"] == phone]
    assert len(found) == 1, found
    return found[0]


def thread(d, cid):
    r = d.api("GET", "/api/v1/conversations/%d" % cid)
    assert r.status == 200, r
    return r.json


def act(d, cid, what, body=None, status=200):
    r = d.api("POST", "/api/v1/conversations/%d/%s" % (cid, what), body)
    assert r.status == status, r
    return r.json


def outbox_to(d, phone):
    return [o for o in d.outbox() if o["to"] == phone]


# ---- joining ---------------------------------------------------------------

def test_text_joins_conversation_and_closed_one_reopens(make_daemon):
    d = make_daemon(conf())
    text(d, ALICE, "DARFUR")
    wait_for(lambda: outbox_to(d, ALICE), what="the welcome")
    assert convs(d, "?status=all") == []    # a keyword is not for the inbox
    text(d, ALICE, "Can I host a house meeting?")
    c = conv_of(d, ALICE)
    assert c["status"] == "open" and c["unread"] == 1
    assert c["last_message"] == {"direction": "in", "status": "received",
                                 "body": "Can I host a house meeting?"}
    assert c["assigned"] is None and c["stale"] is False
    text(d, ALICE, "Or next week?")
    c2 = conv_of(d, ALICE)
    assert c2["id"] == c["id"] and c2["unread"] == 2
    closed = act(d, c["id"], "close")
    assert closed["status"] == "closed"
    assert convs(d) == []                   # the inbox shows open ones
    assert [x["id"] for x in convs(d, "?status=closed")] == [c["id"]]
    text(d, ALICE, "Hello again")
    c3 = conv_of(d, ALICE)
    assert c3["id"] == c["id"] and c3["status"] == "open"
    assert c3["unread"] == 3
    assert d.scalar("SELECT count(*) FROM conversations") == 1


def test_thread_both_ways_reply_read_and_notes(make_daemon):
    d = make_daemon(conf())
    text(d, ALICE, "When is the rally?")
    cid = conv_of(d, ALICE)["id"]
    r = d.api("POST", "/api/v1/conversations/%d/reply" % cid,
              {"body": "Saturday at 10, City Hall."})
    assert r.status == 202, r
    mid = r.json["message_id"]
    d.wait_status(mid, "sent")
    [o] = outbox_to(d, ALICE)
    assert o["body"] == "Saturday at 10, City Hall."
    note = act(d, cid, "notes", {"body": "Wants to bring a group"},
               status=201)
    assert note["kind"] == "note" and note["body"] == "Wants to bring a group"
    t = thread(d, cid)
    assert t["sender"] == "console" and t["unread"] == 0  # a reply reads
    assert [(i["kind"], i.get("direction"), i.get("status"))
            for i in t["items"]] == [("message", "in", "received"),
                                     ("message", "out", "sent"),
                                     ("note", None, None)]
    out = t["items"][1]
    assert out["id"] == mid and out["channel"] == "sms"
    assert out["body"] == "Saturday at 10, City Hall."
    assert out["created_at"].endswith("Z") and out["error_code"] is None
    msg = d.query("SELECT * FROM messages WHERE id = ?", (mid,))[0]
    assert msg["priority"] == 10 and msg["conversation_id"] == cid
    # the note went nowhere
    d.wait_idle()
    assert [o["body"] for o in d.outbox()] == ["Saturday at 10, City Hall."]
    text(d, ALICE, "Great, thanks")
    assert conv_of(d, ALICE)["unread"] == 1
    assert act(d, cid, "read")["unread"] == 0


def test_reply_with_idempotency_key(make_daemon):
    """The same Idempotency-Key again answers the first message; the key
    is the conversation's own."""
    d = make_daemon(conf())
    text(d, ALICE, "Are we on?")
    text(d, BOB, "Me too?")
    a, b = conv_of(d, ALICE)["id"], conv_of(d, BOB)["id"]

    def reply(cid, key, status):
        r = d.api("POST", "/api/v1/conversations/%d/reply" % cid,
                  {"body": "Yes."}, headers={"Idempotency-Key": key})
        assert r.status == status, r
        return r.json

    mid = reply(a, "k-1", 202)["message_id"]
    assert reply(a, "k-1", 200) == {"message_id": mid, "duplicate": True}
    assert reply(b, "k-1", 202)["message_id"] != mid
    assert "Idempotency-Key" in reply(a, "x" * 201, 422)["error"]["message"]
    assert d.scalar("SELECT count(*) FROM messages "
                    "WHERE direction = 'out'") == 2


def test_reply_goes_through_the_sender_the_member_used(make_daemon, fakeprov):
    """The default sender is the console; the member texted the Twilio
    number, so the reply reaches the fake Twilio, not the console."""
    d = sms_daemon(make_daemon, fakeprov, "twilio", conf=conf({
        "sender console": {"provider": "console", "from": "+15550100009",
                           "file": "outbox.jsonl"},
        "sms": {"default_sender": "console"}}))
    r = fakeprov.callback("twilio", kind="inbound", text="Is this real?",
                          **{"from": ALICE, "to": OUR_NUMBER})
    assert r["status"] == 200, r
    cid = conv_of(d, ALICE)["id"]
    assert thread(d, cid)["sender"] == "sx"
    r = d.api("POST", "/api/v1/conversations/%d/reply" % cid,
              {"body": "Yes, it's us. Reply STOP to opt out."})
    assert r.status == 202, r
    d.wait_status(r.json["message_id"], "sent")
    [req] = fakeprov.wait_requests(1, "twilio")
    f = dict(urllib.parse.parse_qsl(req["body"]))
    assert f["To"] == ALICE and f["Body"].startswith("Yes, it's us")
    assert f["From"] == OUR_NUMBER
    assert d.outbox() == []
    # a reply the provider refuses shows failed, with its reason
    fakeprov.behave("twilio", status=400, code=21211,
                    message="Invalid 'To' Phone Number")
    r = d.api("POST", "/api/v1/conversations/%d/reply" % cid,
              {"body": "Are you there?"})
    assert r.status == 202, r
    d.wait_status(r.json["message_id"], "failed")
    last = thread(d, cid)["items"][-1]
    assert (last["direction"], last["status"], last["error_code"]) == \
        ("out", "failed", 21211)
    assert "21211" in last["error_text"]


def test_reply_to_opted_out_member_is_refused(make_daemon):
    d = make_daemon(conf())
    text(d, ALICE, "Who are you people?")
    cid = conv_of(d, ALICE)["id"]
    text(d, ALICE, "STOP")
    wait_for(lambda: outbox_to(d, ALICE), what="the STOP confirmation")
    d.wait_idle()
    before = d.scalar("SELECT count(*) FROM messages WHERE direction = 'out'")
    r = d.api("POST", "/api/v1/conversations/%d/reply" % cid,
              {"body": "Sorry to see you go"})
    assert r.status == 409 and r.error_code() == "opted_out", r
    assert d.scalar("SELECT count(*) FROM messages WHERE direction = 'out'") \
        == before
    assert d.scalar("SELECT count(*) FROM messages WHERE conversation_id = ?"
                    " AND direction = 'out'", (cid,)) == 0


def test_saved_replies_rendered_for_the_member(make_daemon):
    d = make_daemon(conf())
    m = d.api("POST", "/api/v1/members", {"phone": BOB, "first_name": "Bob"})
    assert m.status == 201, m
    text(d, BOB, "hi there")
    text(d, CAROL, "hello")
    r = d.api("POST", "/api/v1/saved-replies",
              {"name": "thanks", "body": "Thanks {{first_name|friend}}!"})
    assert r.status == 201, r
    sid = r.json["id"]
    assert r.json == {"id": sid, "name": "thanks",
                      "body": "Thanks {{first_name|friend}}!"}
    assert d.api("POST", "/api/v1/saved-replies",
                 {"name": "thanks", "body": "x"}).status == 409
    bad = d.api("POST", "/api/v1/saved-replies",
                {"name": "broken", "body": "Hi {{first_name"})
    assert bad.status == 422 and "line 1" in bad.error_message(), bad
    listed = d.api("GET", "/api/v1/saved-replies").json["saved_replies"]
    assert [s["name"] for s in listed] == ["thanks"]
    for phone in (BOB, CAROL):
        cid = conv_of(d, phone)["id"]
        r = d.api("POST", "/api/v1/conversations/%d/reply" % cid,
                  {"saved_reply": sid})
        assert r.status == 202, r
        d.wait_status(r.json["message_id"], "sent")
    assert [o["body"] for o in outbox_to(d, BOB)] == ["Thanks Bob!"]
    assert [o["body"] for o in outbox_to(d, CAROL)] == ["Thanks friend!"]
    r = d.api("PATCH", "/api/v1/saved-replies/%d" % sid,
              {"body": "Thank you, {{first_name|friend}}."})
    assert r.status == 200 and r.json["body"].startswith("Thank you"), r
    assert d.api("DELETE", "/api/v1/saved-replies/%d" % sid).status == 204
    assert d.api("DELETE", "/api/v1/saved-replies/%d" % sid).status == 404
    cid = conv_of(d, BOB)["id"]
    r = d.api("POST", "/api/v1/conversations/%d/reply" % cid,
              {"saved_reply": sid})
    assert r.status == 422, r


def test_bad_requests(make_daemon):
    d = make_daemon(conf())
    text(d, ALICE, "question")
    cid = conv_of(d, ALICE)["id"]
    assert d.api("GET", "/api/v1/conversations", token=None).status == 401
    assert d.api("GET", "/api/v1/conversations/999").status == 404
    assert d.api("GET", "/api/v1/conversations/abc").status == 404
    assert d.api("POST", "/api/v1/conversations/999/close").status == 404
    assert d.api("POST", "/api/v1/conversations/%d/explode"
                 % cid).status == 404
    for q in ("?status=maybe", "?unread=yes", "?assigned=someone",
              "?limit=0", "?limit=9999", "?after=12", "?bogus=1",
              "?list=-1"):
        r = d.api("GET", "/api/v1/conversations" + q)
        assert r.status == 422, (q, r)
    for body in ({}, {"body": ""}, {"body": "a", "saved_reply": 1},
                 {"body": "x", "extra": 1}, {"body": "x" * 1700}):
        r = d.api("POST", "/api/v1/conversations/%d/reply" % cid, body)
        assert r.status == 422, (body, r)
    assert act(d, cid, "assign", {"staff_id": 999}, status=422)
    assert act(d, cid, "assign", {}, status=422)
    assert act(d, cid, "notes", {"body": "  "}, status=422)
    assert d.scalar("SELECT count(*) FROM messages WHERE direction = 'out'") \
        == 0


def test_assign_and_release(make_daemon):
    d = make_daemon(conf())
    text(d, ALICE, "one")
    text(d, BOB, "two")
    a = conv_of(d, ALICE)["id"]
    staff = d.query("SELECT id, name FROM staff ORDER BY id")
    if not staff:   # before staff accounts: make one to assign to
        d.stop()
        d.execute("INSERT INTO staff (name, role, created_at) VALUES"
                  " ('Organizer One', 'organizer', 0)")
        d.start()
        staff = d.query("SELECT id, name FROM staff ORDER BY id")
    sid, name = staff[-1]["id"], staff[-1]["name"]
    c = act(d, a, "assign", {"staff_id": sid})
    assert c["assigned"] == {"id": sid, "name": name}
    assert [x["id"] for x in convs(d, "?assigned=%d" % sid)] == [a]
    assert [x["member"]["phone"] for x in convs(d, "?assigned=none")] == [BOB]
    c = act(d, a, "assign", {"staff_id": None})
    assert c["assigned"] is None
    assert len(convs(d, "?assigned=none")) == 2
    assert convs(d, "?assigned=%d" % sid) == []


# ---- attribution -----------------------------------------------------------

def send_alert(d, body="Call your senator today! Reply STOP to opt out."):
    r = d.api("POST", "/api/v1/alerts",
              {"name": "call", "lists": ["DARFUR"], "sms_body": body})
    assert r.status == 201, r
    aid = r.json["id"]
    r = d.api("POST", "/api/v1/alerts/%d/send" % aid)
    assert r.status == 200, r
    wait_for(lambda: d.scalar("SELECT count(*) FROM messages WHERE "
                              "alert_id = ? AND status = 'sent'", (aid,)),
             what="the alert's message sent")
    return aid


def test_attribution_to_the_last_alert_within_the_window(make_daemon):
    d = make_daemon(conf())
    text(d, ALICE, "DARFUR")
    text(d, BOB, "DARFUR")
    wait_for(lambda: outbox_to(d, BOB), what="the welcomes")
    first = send_alert(d, "First alert. Reply STOP to opt out.")
    aid = send_alert(d)
    text(d, ALICE, "I called, they said they're undecided")
    c = conv_of(d, ALICE)
    assert c["alert_id"] == aid and first != aid
    alert_msg = d.scalar("SELECT id FROM messages WHERE alert_id = ? AND"
                         " to_addr = ?", (aid, ALICE))
    assert d.scalar("SELECT reply_to FROM messages WHERE direction = 'in'"
                    " AND conversation_id = ?", (c["id"],)) == alert_msg
    assert [x["id"] for x in convs(d, "?alert=%d" % aid)] == [c["id"]]
    assert convs(d, "?alert=%d" % first) == []


def test_no_attribution_beyond_the_window(make_daemon):
    import time
    d = make_daemon(conf({"conversations": {"attribution_window": "1s"}}))
    text(d, ALICE, "DARFUR")
    wait_for(lambda: outbox_to(d, ALICE), what="the welcome")
    aid = send_alert(d)
    sent_at = d.scalar("SELECT updated_at FROM messages WHERE alert_id = ?",
                       (aid,))
    # the window is about the clock: let it pass (1 s, plus a margin)
    while time.time() * 1000 < sent_at + 1500:
        time.sleep(0.1)
    text(d, ALICE, "What was that about?")
    c = conv_of(d, ALICE)
    assert c["alert_id"] is None
    assert convs(d, "?alert=%d" % aid) == []
    # still recorded: the last message the member got
    last = d.scalar("SELECT max(id) FROM messages WHERE direction = 'out'"
                    " AND to_addr = ?", (ALICE,))
    assert d.scalar("SELECT reply_to FROM messages WHERE direction = 'in'"
                    " AND conversation_id = ?", (c["id"],)) == last


# ---- listing ---------------------------------------------------------------

def test_filters_pages_and_search(make_daemon):
    d = make_daemon(conf())
    text(d, ALICE, "DARFUR")
    text(d, ALICE, "Is the meeting at the café on Main?")
    text(d, BOB, "Please call me back tomorrow")
    text(d, CAROL, "Who organizes the rally?")
    a, b, c = (conv_of(d, p)["id"] for p in (ALICE, BOB, CAROL))
    # newest activity first, pages by cursor
    assert [x["id"] for x in convs(d)] == [c, b, a]
    r = d.api("GET", "/api/v1/conversations?limit=2")
    assert [x["id"] for x in r.json["conversations"]] == [c, b]
    nxt = r.json["next"]
    assert isinstance(nxt, str)
    r = d.api("GET", "/api/v1/conversations?limit=2&after=" +
              urllib.parse.quote(nxt))
    assert [x["id"] for x in r.json["conversations"]] == [a]
    assert r.json["next"] is None
    # unread, list
    act(d, b, "read")
    assert [x["id"] for x in convs(d, "?unread=1")] == [c, a]
    lid = d.scalar("SELECT id FROM lists WHERE name = 'DARFUR'")
    assert [x["id"] for x in convs(d, "?list=%d" % lid)] == [a]
    bob = conv_of(d, BOB)["member"]["id"]
    assert [x["id"] for x in convs(d, "?status=all&member=%d" % bob)] == [b]
    # search: words, prefixes, diacritics, replies too
    assert [x["id"] for x in convs(d, "?q=meeting")] == [a]
    assert [x["id"] for x in convs(d, "?q=MEET")] == [a]
    assert [x["id"] for x in convs(d, "?q=cafe")] == [a]
    assert [x["id"] for x in convs(d, "?q=call%20tomorrow")] == [b]
    assert convs(d, "?q=call%20rally") == []
    assert [x["id"] for x in convs(d, "?q=%22the%20rally%22")] == [c]
    r = d.api("POST", "/api/v1/conversations/%d/reply" % c,
              {"body": "Maria from the union"})
    assert r.status == 202, r
    assert [x["id"] for x in convs(d, "?q=maria")] == [c]
    # hostile search text is words, never FTS5 syntax nor a 500
    for q in ['"', '""', "AND", "OR NOT", "NEAR(a b)", "*", "a*b",
              "body:meeting", "meeting)", "(", "'; DROP TABLE messages; --",
              "^", "-x", "\u00e9\u00e9", "x" * 256]:
        r = d.api("GET", "/api/v1/conversations?status=all&q=" +
                  urllib.parse.quote(q))
        assert r.status == 200, (q, r)
    # OR is a word to find, not an operator (which would find a and c)
    assert convs(d, "?q=" + urllib.parse.quote("meeting OR rally")) == []
    assert [x["id"] for x in convs(d, "?q=" + urllib.parse.quote(
        'meeting "the caf\u00e9'))] == [a]
    r = d.api("GET", "/api/v1/conversations?q=" + "x" * 300)
    assert r.status == 422, r
    r = d.api("GET", "/api/v1/conversations?q=%20%20")
    assert r.status == 200      # blank: no search
    assert d.scalar("SELECT count(*) FROM messages") > 0


def test_stale_flag_and_release(make_daemon):
    d = make_daemon(conf({"conversations": {"stale_after": "1s"}}))
    text(d, ALICE, "Anyone there?")
    cid = conv_of(d, ALICE)["id"]
    staff = d.scalar("SELECT max(id) FROM staff")
    if staff is not None:
        act(d, cid, "assign", {"staff_id": staff})
    wait_for(lambda: conv_of(d, ALICE)["stale"], what="the stale flag")
    assert [x["id"] for x in convs(d, "?stale=1")] == [cid]
    # released to the pool: assign null
    c = act(d, cid, "assign", {"staff_id": None})
    assert c["assigned"] is None and c["stale"] is True
    assert [x["id"] for x in convs(d, "?assigned=none&stale=1")] == [cid]
    # a staff reply answers it
    r = d.api("POST", "/api/v1/conversations/%d/reply" % cid,
              {"body": "Yes! How can we help?"})
    assert r.status == 202, r
    assert conv_of(d, ALICE)["stale"] is False
    assert convs(d, "?stale=1") == []
    # a closed conversation is never stale
    text(d, ALICE, "Thanks")
    wait_for(lambda: conv_of(d, ALICE)["stale"], what="stale again")
    act(d, cid, "close")
    assert conv_of(d, ALICE, "?status=closed")["stale"] is False


def test_events_for_conversation_messages(make_daemon):
    d = make_daemon(conf())
    text(d, ALICE, "ping")
    cid = conv_of(d, ALICE)["id"]
    r = d.api("POST", "/api/v1/conversations/%d/reply" % cid,
              {"body": "pong"})
    assert r.status == 202, r
    mid = r.json["message_id"]
    d.wait_status(mid, "sent")
    import json as _json

    def seen():
        rows = d.query("SELECT type, data FROM events ORDER BY id")
        return [(t, _json.loads(x)) for t, x in rows]
    msgs = [e for t, e in wait_for(
        lambda: (lambda s: s if any(e.get("status") == "sent"
                                    for _, e in s) else None)(seen()),
        what="a sent event") if t == "message"]
    assert msgs[0]["direction"] == "in" and msgs[0]["conversation_id"] == cid
    assert [e["status"] for e in msgs if e["id"] == mid] == \
        ["queued", "sending", "sent"]
    assert all(e["conversation_id"] == cid for e in msgs)
    assert ("conversation", {"id": cid}) in seen()
