"""
test_keywords.py - inbound keyword routing end to end (issue 4,
doc/compliance.md): the real outreachd with a Twilio sender pointed at
tests/fakes/fakeprov, which posts Twilio-signed inbound webhooks and
records every message the daemon sends, with its time.

Covered: joining by keyword (welcome with the parts carriers require,
"already in" on a second join, aliases), STOP in its variants (one
confirmation, opted out, a queued message ends suppressed and never
reaches the provider, a second STOP gets no reply), START (back in, the
subscriptions count again), YES from an opted-out member, HELP (reaches
an opted-out member too), double opt-in, follow-up questions (good
answer, bad then good, bad twice), unknown text as an unread conversation
message, and the STOP race: a STOP arriving while 1,000 messages to the
member are being sent stops every one not yet handed to the provider.

Member, subscription and consent state is read from the daemon's SQLite
file (read-only) until the members API covers it.
"""

import subprocess
import threading
import time
import urllib.parse

from conftest import OUTREACHD, render_conf, wait_for
from fakeprov import MEMBER, OUR_NUMBER, fakeprov, sms_daemon, stays  # noqa

P = "twilio"
PROGRAM = "Darfur Now"
CONTACT = "help@darfur.example"
OTHER = "+15551230002"

LISTS = {
    "sms": {"program": PROGRAM, "contact": CONTACT, "stop_words": "arret"},
    "list DARFUR": {"keywords": "darfur, sudan"},
    "list VOTE": {"keywords": "vote", "double_optin": "yes"},
    "list ASK": {"keywords": "ask", "questions": "first_name, zip",
                 "ask_zip": "And your ZIP code?"},
}
# What every opt-in confirmation must carry (doc/compliance.md).
REQUIRED = [PROGRAM, "Msg freq", "Msg&data rates may apply", "HELP", "STOP"]


def start(make_daemon, fp, conf=None, sender_keys=None):
    c = {k: dict(v) for k, v in LISTS.items()}
    for k, v in (conf or {}).items():
        c.setdefault(k, {}).update(v)
    return sms_daemon(make_daemon, fp, P, conf=c, sender_keys=sender_keys)


def text(fp, body, frm=MEMBER):
    """The member texts body; asserts the webhook's 200 (after commit)."""
    r = fp.callback(P, kind="inbound", text=body,
                    **{"from": frm, "to": OUR_NUMBER})
    assert r["status"] == 200, r
    return r


def received(fp, to=MEMBER):
    """(t, body) of each message the fake got for 'to', oldest first."""
    out = []
    for r in fp.requests(P):
        f = dict(urllib.parse.parse_qsl(r["body"] or ""))
        if f.get("To") == to:
            out.append((r["t"], f.get("Body")))
    return out


def bodies(fp, to=MEMBER):
    return [b for _, b in received(fp, to)]


def replies(d, fp, n, to=MEMBER):
    """Waits for exactly n messages at the fake for 'to' (and an idle
    queue, so no other is on its way); returns their bodies."""
    wait_for(lambda: len(received(fp, to)) >= n, 10,
             what="%d message(s) to %s at the fake" % (n, to))
    d.wait_idle()
    got = bodies(fp, to)
    assert len(got) == n, got
    return got


def member(d, phone=MEMBER):
    rows = d.query("SELECT * FROM members WHERE phone = ?", (phone,))
    assert len(rows) == 1, rows
    return rows[0]


def opted_out(d, phone=MEMBER):
    return d.scalar("SELECT count(*) FROM sms_optout o JOIN members m ON "
                    "m.id = o.member_id WHERE m.phone = ?", (phone,)) == 1


def sub_status(d, listname, phone=MEMBER):
    rows = d.query("SELECT s.status FROM subscriptions s JOIN members m ON "
                   "m.id = s.member_id JOIN lists l ON l.id = s.list_id "
                   "WHERE m.phone = ? AND l.name = ? AND s.channel = 'sms'",
                   (phone, listname))
    return rows[0]["status"] if rows else None


def events(d, phone=MEMBER):
    """(action, source, list name or None) of the member's SMS consent log."""
    return [tuple(r) for r in d.query(
        "SELECT e.action, e.source, l.name FROM consent_events e "
        "JOIN members m ON m.id = e.member_id "
        "LEFT JOIN lists l ON l.id = e.list_id "
        "WHERE m.phone = ? AND e.channel = 'sms' ORDER BY e.id", (phone,))]


def assert_compliant(body):
    for part in REQUIRED:
        assert part in body, "%r lacks %r" % (body, part)


def queue_msgs(d, n, body="Rally at noon #%d", **extra):
    """POSTs n messages to MEMBER through the API (8 connections);
    returns their ids in order."""
    ids = [None] * n
    errors = []

    def worker(k):
        try:
            for i in range(k, n, 8):
                msg = {"to": MEMBER, "body": body % i}
                msg.update(extra)
                r = d.api("POST", "/api/v1/messages", msg)
                assert r.status == 202, r
                ids[i] = r.json["id"]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    return ids


# ---------------------------------------------------------------------------

def test_join_sends_compliant_welcome(make_daemon, fakeprov):
    d = start(make_daemon, fakeprov)
    text(fakeprov, " Darfur! ")
    [welcome] = replies(d, fakeprov, 1)
    assert_compliant(welcome)
    assert "DARFUR" in welcome
    assert sub_status(d, "DARFUR") == "active"
    assert not opted_out(d)
    assert events(d) == [("opt_in", "keyword", "DARFUR")]
    # the welcome went out at reply priority through the sender it came in
    [row] = d.query("SELECT * FROM messages WHERE direction = 'out'")
    assert row["priority"] == 10 and row["sender"] == "sx"
    assert row["optout_exempt"] == 0
    # the keyword text is linked to the member, not an inbox message
    [inb] = d.query("SELECT * FROM messages WHERE direction = 'in'")
    assert inb["member_id"] == member(d)["id"]
    assert d.scalar("SELECT coalesce(sum(unread), 0) FROM conversations") \
        == 0
    # the same list again, by its alias: "already in", no second welcome
    text(fakeprov, "sudan")
    got = replies(d, fakeprov, 2)
    assert "already" in got[1] and "DARFUR" in got[1], got
    assert events(d) == [("opt_in", "keyword", "DARFUR")]
    assert len(d.query("SELECT * FROM members")) == 1


def test_stop_variants(make_daemon, fakeprov):
    d = start(make_daemon, fakeprov)
    variants = ["STOP", "stop.", " Stop!", "STOP ", "unsubscribe", "Cancel",
                "end", "quit", "revoke", "optout", "stopall", "opt out",
                "Stop texting me", "arret"]
    for i, v in enumerate(variants):
        phone = "+1555123%04d" % (1000 + i)
        text(fakeprov, "darfur", frm=phone)
        replies(d, fakeprov, 1, to=phone)
        text(fakeprov, v, frm=phone)
        got = replies(d, fakeprov, 2, to=phone)
        assert "unsubscribed" in got[1] and PROGRAM in got[1], (v, got)
        assert "START" in got[1]
        assert opted_out(d, phone), v
        assert events(d, phone) == [("opt_in", "keyword", "DARFUR"),
                                    ("opt_out", "keyword", None)], v
        # STOP leaves the subscription; the opt-out wins at send time
        assert sub_status(d, "DARFUR", phone) == "active"
    # a longer text is a conversation, not an opt-out
    text(fakeprov, "stop the war in Darfur now please", frm=OTHER)
    d.wait_idle()
    assert not opted_out(d, OTHER) and bodies(fakeprov, OTHER) == []


def test_stop_suppresses_queued_and_confirms_once(make_daemon, fakeprov):
    d = start(make_daemon, fakeprov)
    text(fakeprov, "darfur")
    replies(d, fakeprov, 1)
    # an alert queued for two seconds from now
    [mid] = queue_msgs(d, 1, body="Alert %d", not_before=time.time() + 2)
    text(fakeprov, "Stop.")
    got = replies(d, fakeprov, 2)
    assert "unsubscribed" in got[1]
    # the STOP confirmation is the one exempt reply
    row = d.query("SELECT * FROM messages WHERE direction = 'out' AND "
                  "body = ?", (got[1],))[0]
    assert row["optout_exempt"] == 1 and row["priority"] == 10
    m = d.wait_status(mid, "suppressed", timeout=10)
    assert m["status"] == "suppressed"
    # a second STOP: no second confirmation, no second event
    text(fakeprov, "STOP")
    d.wait_idle()
    stays(lambda: len(bodies(fakeprov)) == 2, 0.5)
    assert [e[0] for e in events(d)] == ["opt_in", "opt_out"]
    # an API message to the opted-out member is suppressed too
    mid2 = d.send_sms(MEMBER, "Another alert")
    d.wait_status(mid2, "suppressed")
    assert all("alert" not in b.lower() for b in bodies(fakeprov))


def test_start_and_yes_opt_back_in(make_daemon, fakeprov):
    d = start(make_daemon, fakeprov)
    text(fakeprov, "darfur")
    replies(d, fakeprov, 1)
    text(fakeprov, "stop")
    replies(d, fakeprov, 2)
    text(fakeprov, "Start")
    got = replies(d, fakeprov, 3)
    assert_compliant(got[2])
    assert not opted_out(d)
    assert sub_status(d, "DARFUR") == "active"
    mid = d.send_sms(MEMBER, "Rally tonight")
    d.wait_status(mid, "sent")
    # YES from an opted-out member is an opt-in as well
    text(fakeprov, "stop")
    replies(d, fakeprov, 5)
    text(fakeprov, "yes!")
    got = replies(d, fakeprov, 6)
    assert not opted_out(d)
    assert_compliant(got[5])
    assert [e[0] for e in events(d)] == ["opt_in", "opt_out", "opt_in",
                                         "opt_out", "opt_in"]
    # a keyword also lifts an opt-out (it asks for texts) and welcomes again
    text(fakeprov, "stop")
    replies(d, fakeprov, 7)
    text(fakeprov, "darfur")
    got = replies(d, fakeprov, 8)
    assert not opted_out(d) and "Welcome" in got[7]


def test_help(make_daemon, fakeprov):
    d = start(make_daemon, fakeprov)
    text(fakeprov, "HELP")
    [h] = replies(d, fakeprov, 1)
    assert PROGRAM in h and CONTACT in h and "STOP" in h
    assert not opted_out(d) and events(d) == []
    # an opted-out member still gets the HELP answer (exempt)
    text(fakeprov, "stop")
    replies(d, fakeprov, 2)
    text(fakeprov, "info?")
    got = replies(d, fakeprov, 3)
    assert got[2] == h
    assert opted_out(d)


def test_double_optin(make_daemon, fakeprov):
    d = start(make_daemon, fakeprov)
    text(fakeprov, "VOTE")
    [confirm] = replies(d, fakeprov, 1)
    assert "YES" in confirm and PROGRAM in confirm and "STOP" in confirm
    assert sub_status(d, "VOTE") == "pending"
    # an alert-style message to the list would not count yet; YES confirms
    text(fakeprov, "Yes")
    got = replies(d, fakeprov, 2)
    assert_compliant(got[1])
    assert sub_status(d, "VOTE") == "active"
    assert events(d) == [("opt_in", "keyword", "VOTE"),
                         ("confirm", "keyword", "VOTE")]
    # YES again, with nothing pending: a conversation message
    text(fakeprov, "yes")
    d.wait_idle()
    assert len(bodies(fakeprov)) == 2
    assert d.scalar("SELECT sum(unread) FROM conversations") == 1


def _ask(make_daemon, fp):
    d = start(make_daemon, fp)
    text(fp, "ask")
    got = replies(d, fp, 2)
    assert_compliant(got[0])
    assert got[1] == "What's your first name?"
    return d


def test_questions_good_answers(make_daemon, fakeprov):
    d = _ask(make_daemon, fakeprov)
    text(fakeprov, "  mary ann ")
    got = replies(d, fakeprov, 3)
    assert got[2] == "And your ZIP code?"
    text(fakeprov, "94110-1234")
    d.wait_idle()
    stays(lambda: len(bodies(fakeprov)) == 3, 0.3)
    m = member(d)
    assert m["first_name"] == "Mary Ann" and m["zip"] == "94110-1234"
    assert d.scalar("SELECT count(*) FROM member_prompts") == 0
    # the answers are not inbox messages
    assert d.scalar("SELECT coalesce(sum(unread), 0) FROM conversations") \
        == 0
    # the next text is a conversation message again
    text(fakeprov, "see you at the rally")
    d.wait_idle()
    assert d.scalar("SELECT sum(unread) FROM conversations") == 1


def test_questions_bad_then_good(make_daemon, fakeprov):
    d = _ask(make_daemon, fakeprov)
    text(fakeprov, "Mary")
    replies(d, fakeprov, 3)
    text(fakeprov, "nowhere")
    got = replies(d, fakeprov, 4)
    assert got[3].startswith("Sorry") and "And your ZIP code?" in got[3]
    text(fakeprov, "02139")
    d.wait_idle()
    stays(lambda: len(bodies(fakeprov)) == 4, 0.3)
    assert member(d)["zip"] == "02139"
    assert d.scalar("SELECT count(*) FROM member_prompts") == 0


def test_questions_bad_twice_drops_the_question(make_daemon, fakeprov):
    d = _ask(make_daemon, fakeprov)
    text(fakeprov, "12345")  # not a name
    got = replies(d, fakeprov, 3)
    assert "What's your first name?" in got[2] and got[2].startswith("Sorry")
    text(fakeprov, "why?")  # bad again: dropped, on to the ZIP
    got = replies(d, fakeprov, 4)
    assert got[3] == "And your ZIP code?"
    assert member(d)["first_name"] is None
    text(fakeprov, "abc")
    got = replies(d, fakeprov, 5)
    assert "ZIP" in got[4]
    text(fakeprov, "still no")
    d.wait_idle()
    stays(lambda: len(bodies(fakeprov)) == 5, 0.3)
    m = member(d)
    assert m["first_name"] is None and m["zip"] is None
    assert d.scalar("SELECT count(*) FROM member_prompts") == 0
    # STOP while a question is pending is still an opt-out
    text(fakeprov, "ask")
    replies(d, fakeprov, 6)  # already in
    text(fakeprov, "STOP")
    replies(d, fakeprov, 7)
    assert opted_out(d)


def test_stop_while_question_pending(make_daemon, fakeprov):
    d = _ask(make_daemon, fakeprov)
    text(fakeprov, "stop please")
    got = replies(d, fakeprov, 3)
    assert "unsubscribed" in got[2]
    assert opted_out(d)


def test_unknown_text_is_a_conversation_message(make_daemon, fakeprov):
    d = start(make_daemon, fakeprov)
    body = "When is the next meeting?"
    text(fakeprov, body)
    text(fakeprov, "darfurr")
    d.wait_idle()
    assert bodies(fakeprov) == []
    rows = d.query("SELECT * FROM messages WHERE direction = 'in' "
                   "ORDER BY id")
    assert [r["body"] for r in rows] == [body, "darfurr"]
    m = member(d)
    [conv] = d.query("SELECT * FROM conversations")
    assert conv["member_id"] == m["id"] and conv["unread"] == 2
    assert conv["status"] == "open"
    assert all(r["member_id"] == m["id"] and r["conversation_id"] == conv["id"]
               for r in rows)
    assert events(d) == [] and not opted_out(d)


def test_stop_race_with_1000_queued(make_daemon, fakeprov):
    """
    A STOP arrives while 1,000 messages to the member are queued and being
    sent at 50/s: not one is handed to the provider after the STOP is
    committed. Every message the fake got was claimed (sending) no later
    than the STOP was stored and reached the fake before the STOP's 200;
    every other one ends suppressed.
    """
    d = start(make_daemon, fakeprov, sender_keys={"rate": "50"})
    n = 1000
    ids = queue_msgs(d, n)
    sent_before = wait_for(
        lambda: (lambda k: k if k >= 50 else None)(len(bodies(fakeprov))),
        10, what="the first 50 sent")
    assert sent_before < n / 2, \
        "sending outran the test (%d sent already)" % sent_before
    r = text(fakeprov, "STOP")
    t_ack = time.time()
    d.wait_idle(timeout=30)
    got = received(fakeprov)
    alerts = [(t, b) for t, b in got if b.startswith("Rally at noon")]
    confirms = [b for _, b in got if "unsubscribed" in b]
    assert len(confirms) == 1
    late = [(t, b) for t, b in alerts if t >= t_ack]
    assert late == [], late[:5]
    [stop] = d.query("SELECT id, created_at FROM messages WHERE direction = "
                     "'in' AND body = 'STOP'")
    statuses = {}
    for i in ids:
        statuses.setdefault(d.message(i)["status"], []).append(i)
    assert set(statuses) <= {"sent", "suppressed"}, \
        {k: len(v) for k, v in statuses.items()}
    sent = statuses.get("sent", [])
    suppressed = statuses.get("suppressed", [])
    assert len(sent) == len(alerts) and len(sent) + len(suppressed) == n
    assert len(suppressed) >= n / 2
    # each sent one was claimed no later than the STOP was stored
    last_claim = d.scalar(
        "SELECT max(e.created_at) FROM message_events e JOIN messages m ON "
        "m.id = e.message_id WHERE m.status = 'sent' AND e.status = "
        "'sending' AND m.body LIKE 'Rally at noon%'")
    assert last_claim <= stop["created_at"]
    print("\nSTOP race: %d sent before the STOP (%d when it was posted), "
          "%d after its 200, %d suppressed; webhook answered %s"
          % (len(sent), sent_before, len(late), len(suppressed),
             r["status"]))


def test_check_config_warns_about_noncompliant_texts(tmp_path):
    """--check-config names each text that lacks what carriers require;
    the example lists of LISTS draw no warning."""
    good = tmp_path / "good.conf"
    good.write_text(render_conf(dict(
        {"sender a": {"provider": "console"}}, **LISTS)))
    p = subprocess.run([str(OUTREACHD), "--check-config", "-c", str(good)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "config_warning" not in p.stderr, p.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text(render_conf({
        "sender a": {"provider": "console"},
        "list X": {"keywords": "x", "welcome": "Hi, you joined!"}}))
    p = subprocess.run([str(OUTREACHD), "--check-config", "-c", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    warnings = [ln for ln in p.stderr.splitlines() if "config_warning" in ln]
    assert len(warnings) == 3, p.stderr
    assert "[sms] program is not set" in warnings[0]
    assert "[sms] contact is not set" in warnings[1]
    assert warnings[2].endswith(
        "the welcome of [list X] lacks what carriers require: a frequency "
        "(\"Msg freq varies\"), \"Msg&data rates may apply\", HELP "
        "instructions, STOP instructions"), warnings[2]
