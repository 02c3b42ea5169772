"""
test_notify.py - email digests of new inbound conversation messages
(daemon/notify.c, doc/events.md "Digests"): members text through a
Twilio-signed webhook (tests/fakes/fakeprov), the daemon mails through
its SMTP adapter to a recording aiosmtpd server (tests/integration/
smtpserver.py), where the emails are counted.

Covered: several texts within one digest_interval make one email per
recipient, listing each thread (name or number, count, first words, a
link under [http] public_url); a conversation assigned to a staff member
goes to that member's address, unassigned ones to [conversations]
notify_email; without notify_email an unassigned one mails no one; a
restart neither resends a digest nor skips messages that arrived before
it.
"""

import email
import email.policy
import re

import pytest

from conftest import scaled, wait_for
from fakeprov import OUR_NUMBER, fakeprov, sms_daemon, stays  # noqa: F401
from smtpserver import SmtpServer

ANN = "+12122345601"
BOB = "+12122345602"
INBOX = "inbox@example.org"
ORGANIZER = "rosa@example.org"
INTERVAL = max(3, int(scaled(3)))	# seconds


@pytest.fixture
def smtp():
    srv = SmtpServer().start()
    yield srv
    srv.stop()


def start(make_daemon, fp, smtp, notify_email=INBOX):
    conf = {
        "email": {"adapter": "smtp", "dir": None},
        "smtp": {"host": "127.0.0.1", "port": str(smtp.port),
                 "from": "Town Union <org@example.org>",
                 "starttls": "off"},
        "conversations": {"digest_interval": "%ds" % INTERVAL,
                          "notify_email": notify_email},
    }
    d = sms_daemon(make_daemon, fp, "twilio", conf=conf)
    return d


def text(fp, frm, body):
    r = fp.callback("twilio", kind="inbound", text=body,
                    **{"from": frm, "to": OUR_NUMBER})
    assert r["status"] == 200, r


def conv_of(d, phone):
    return d.scalar("SELECT c.id FROM conversations c JOIN members m "
                    "ON m.id = c.member_id WHERE m.phone = ?", (phone,))


def mails(smtp):
    """[(recipient, subject, text)] of every email the server got."""
    out = []
    for m in list(smtp.messages):
        msg = email.message_from_bytes(m["data"], policy=email.policy.default)
        body = msg.get_body(("plain",)).get_content()
        for r in m["rcpt_tos"]:
            out.append((r, str(msg["Subject"]), body))
    return out


def wait_mails(smtp, n, timeout=None):
    wait_for(lambda: len(mails(smtp)) >= n, timeout or 4 * INTERVAL + 10,
             what="%d digest email(s)" % n)
    return mails(smtp)


def test_digests_batched_per_recipient(make_daemon, fakeprov, smtp):
    d = start(make_daemon, fakeprov, smtp)
    link = d.conf("http", "public_url") + "/ui/#/conversations/%d"
    text(fakeprov, ANN, "Can I host a house meeting next week?")
    text(fakeprov, BOB, "Hi")
    [(to, subject, body)] = wait_mails(smtp, 1)
    a, b = conv_of(d, ANN), conv_of(d, BOB)
    assert to == INBOX
    assert subject == "2 new messages in 2 conversations"
    assert link % a in body and link % b in body
    assert ANN in body and BOB in body
    assert '"Can I host a house meeting next week?"' in body
    # Bob's conversation goes to a staff member from now on
    r = d.api("POST", "/api/v1/staff", {"name": "Rosa", "email": ORGANIZER,
                                        "role": "organizer"})
    assert r.status == 201, r
    r = d.api("POST", "/api/v1/conversations/%d/assign" % b,
              {"staff_id": r.json["id"]})
    assert r.status == 200, r
    for k in range(3):
        text(fakeprov, ANN, "Ann again %d" % k)
    text(fakeprov, BOB, "Bob again with a rather long message that goes on "
         "and on well past what a digest shows of it, so it is cut")
    text(fakeprov, BOB, "Bob once more")
    got = wait_mails(smtp, 3)
    # one email per recipient, however many texts came in the interval
    stays(lambda: len(mails(smtp)) == 3, INTERVAL + 1)
    got = got[1:]
    by = {to: (subject, body) for to, subject, body in got}
    assert sorted(by) == sorted([INBOX, ORGANIZER])
    subject, body = by[INBOX]
    assert subject == "3 new messages in 1 conversation"
    assert link % a in body and link % b not in body
    assert "3 new messages" in body and '"Ann again 2"' in body
    subject, body = by[ORGANIZER]
    assert subject == "2 new messages in 1 conversation"
    assert link % b in body and link % a not in body
    assert '"Bob once more"' in body


def test_unassigned_without_notify_email_mails_no_one(make_daemon, fakeprov,
                                                      smtp):
    d = start(make_daemon, fakeprov, smtp, notify_email=None)
    text(fakeprov, ANN, "Hello?")
    wait_for(lambda: re.search(r"notify_digest recipients=0 messages=1 "
                               r"unaddressed=1", d.log()),
             4 * INTERVAL + 10, what="the digest covering Ann's text")
    assert mails(smtp) == []


def test_restart_neither_resends_nor_skips(make_daemon, fakeprov, smtp):
    d = start(make_daemon, fakeprov, smtp)
    text(fakeprov, ANN, "First")
    [(_, subject, _)] = wait_mails(smtp, 1)
    assert subject == "1 new message in 1 conversation"
    d.wait_idle()
    d.restart()
    fakeprov.config(daemon_url=d.url())
    stays(lambda: len(mails(smtp)) == 1, 2 * INTERVAL)
    # a text, then a restart before its digest: it is mailed after
    text(fakeprov, BOB, "Second")
    d.stop()
    d.start()
    fakeprov.config(daemon_url=d.url())
    got = wait_mails(smtp, 2)
    assert len(got) == 2
    assert '"Second"' in got[1][2] and '"First"' not in got[1][2]
    stays(lambda: len(mails(smtp)) == 2, INTERVAL + 1)
