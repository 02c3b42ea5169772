"""
test_ctl_inbox.py - outreachctl's inbox commands over the conversations
API: inbox (filters, search, --json), thread (both ways, notes, --json),
reply (text and --saved), assign (an id, me, none), close, reopen, note,
and their usage errors. Member text printed to the terminal is
sanitized.
"""

import json
import re
import subprocess

from conftest import OUTREACHCTL, TOKEN, scaled, wait_for

ALICE = "+12125550101"
BOB = "+12125550102"
EX_REFUSED = 1
EX_USAGE = 2


def ctl(d, *args, timeout=20):
    return subprocess.run(
        [str(OUTREACHCTL), "-u", d.url(), "-t", TOKEN] +
        [str(a) for a in args], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=scaled(timeout))


def ok(d, *args):
    p = ctl(d, *args)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout


def text(d, frm, body):
    r = d.api("POST", "/webhooks/console/inbound",
              {"From": frm, "Body": body}, token=None)
    assert r.status == 200, r


def conv_id(d, phone):
    return d.scalar("SELECT c.id FROM conversations c JOIN members m"
                    " ON m.id = c.member_id WHERE m.phone = ?", (phone,))


def test_inbox_thread_reply_note(daemon):
    d = daemon
    text(d, ALICE, "Can I host a house meeting?")
    text(d, BOB, "What time is the rally?\x1b[31m")
    a, b = conv_id(d, ALICE), conv_id(d, BOB)
    out = ok(d, "inbox")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["id", "status", "unread"]
    assert [int(l.split()[0]) for l in lines[1:]] == [b, a]
    assert "house meeting" in out and "\x1b" not in out
    # --json is the API's answer
    js = json.loads(ok(d, "inbox", "--json", "--search", "meeting"))
    assert [c["id"] for c in js["conversations"]] == [a]
    assert js["next"] is None
    assert ok(d, "inbox", "-q", "--unread").split() == [str(b), str(a)]
    # reply and note
    out = ok(d, "reply", a, "Yes! We'll send details.")
    mid = int(re.search(r"queued message (\d+)", out).group(1))
    d.wait_status(mid, "sent")
    assert [o["body"] for o in d.outbox() if o["to"] == ALICE] == \
        ["Yes! We'll send details."]
    assert re.match(r"note \d+ added", ok(d, "note", a, "Follow up Friday"))
    out = ok(d, "thread", a)
    assert "conversation %d: %s" % (a, ALICE) in out
    assert "sender: console" in out
    assert re.search(r"in +#\d+ \[received\]\n  Can I host a house meeting",
                     out), out
    assert re.search(r"out #%d \[sent\]" % mid, out), out
    assert re.search(r"note by .*\n  Follow up Friday", out), out
    t = json.loads(ok(d, "thread", a, "--json"))
    assert [i["kind"] for i in t["items"]] == ["message", "message", "note"]
    # nothing but the reply left
    d.wait_idle()
    assert len(d.outbox()) == 1
    # a saved reply
    r = d.api("POST", "/api/v1/saved-replies",
              {"name": "time", "body": "Hi {{first_name|there}}, 7pm."})
    assert r.status == 201, r
    mid = int(ok(d, "reply", "-q", b, "--saved", r.json["id"]).strip())
    d.wait_status(mid, "sent")
    assert [o["body"] for o in d.outbox() if o["to"] == BOB] == \
        ["Hi there, 7pm."]


def test_assign_close_reopen(daemon):
    d = daemon
    text(d, ALICE, "hello")
    a = conv_id(d, ALICE)
    staff = d.scalar("SELECT max(id) FROM staff")
    me = ctl(d, "assign", a, "me")
    if staff is None:	# before staff accounts: the token is nobody
        assert me.returncode != 0
    else:
        assert me.returncode == 0, me.stderr
        assert "assigned: " in me.stdout and "(#%d)" % staff in me.stdout
        out = ok(d, "inbox", "--assigned", "me", "-q")
        assert out.split() == [str(a)]
        out = ok(d, "assign", a, str(staff))
        assert "(#%d)" % staff in out
    out = ok(d, "assign", a, "none")
    assert "assigned: -" in out
    assert ok(d, "inbox", "--assigned", "none", "-q").split() == [str(a)]
    assert "status: closed" in ok(d, "close", a)
    assert ok(d, "inbox", "-q").split() == []
    assert ok(d, "inbox", "--status", "closed", "-q").split() == [str(a)]
    assert "status: open" in ok(d, "reopen", a)
    js = json.loads(ok(d, "close", a, "-j"))
    assert js["status"] == "closed" and js["id"] == a


def test_usage_and_refusals(daemon):
    d = daemon
    text(d, ALICE, "hi")
    a = conv_id(d, ALICE)
    for args in (["thread"], ["thread", "x"], ["reply", a],
                 ["reply", a, "one", "two"], ["assign", a, "someone"],
                 ["close", a, "extra"], ["inbox", "extra"],
                 ["note", a, "x", "--saved", "1"], ["close", a, "--unread"]):
        p = ctl(d, *args)
        assert p.returncode == EX_USAGE, (args, p.returncode, p.stderr)
    p = ctl(d, "thread", 9999)
    assert p.returncode == EX_REFUSED and "9999" in p.stderr, p.stderr
    p = ctl(d, "inbox", "--status", "maybe")
    assert p.returncode == EX_REFUSED and "status" in p.stderr, p.stderr
    text(d, ALICE, "STOP")
    wait_for(lambda: d.outbox(), what="the STOP confirmation")
    p = ctl(d, "reply", a, "are you sure?")
    assert p.returncode == EX_REFUSED and "opted out" in p.stderr, p.stderr
