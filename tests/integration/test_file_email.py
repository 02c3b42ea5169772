"""
test_file_email.py - the file email adapter (adapters/file.c) under load
and failure: it writes .eml files on worker threads, in batches with one
directory fsync each, and reports a message sent only after that fsync.

Covered: an alert of 2,000 emails arrives exactly once as .eml files while
GET /healthz keeps answering; a file that cannot be written fails alone
(transient, retried, then sent) while the rest of its batch is sent; a
SIGTERM in the middle of an alert's emails leaves every message reported
sent on disk, and after a restart each email exists exactly once.
"""

import collections
import os
import re
import signal
import time
import urllib.parse

from conftest import scaled, wait_for

ALWAYS = {"alerts": {"quiet_start": "00:00", "quiet_end": "24:00"}}
MSGS = "/api/v1/messages"


def email_alert(d, n):
    """A list of n members m0..m{n-1}@example.org (email only) and a draft
    email alert to it; returns (alert id, the n addresses)."""
    r = d.api("POST", "/api/v1/lists", {"name": "town"})
    assert r.status == 201, r
    addrs = ["m%d@example.org" % k for k in range(n)]
    text = "email,first_name\n" + "".join(
        "%s,Ann%d\n" % (a, k) for k, a in enumerate(addrs))
    r = d.api("POST", "/api/v1/imports?list=town&source=%s"
              % urllib.parse.quote("test sheet"), raw=text.encode(),
              headers={"Content-Type": "text/csv"}, timeout=120)
    assert r.status == 200, r
    assert r.json["counts"]["rejected"] == 0, r.json
    r = d.api("POST", "/api/v1/alerts", {
        "name": "vote", "lists": ["town"],
        "email_subject": "Vote today, {{first_name}}",
        "email_text": "Hi {{first_name}},\nvote today.\n"})
    assert r.status == 201, r
    return r.json["id"], addrs


def send_alert(d, aid):
    r = d.api("POST", "/api/v1/alerts/%d/send" % aid)
    assert r.status == 200, r


def emls(d):
    return list(d.mail_dir.glob("*.eml")) if d.mail_dir.exists() else []


def recipients(d):
    """Counter of the To addresses of the .eml files written."""
    got = collections.Counter()
    for p in emls(d):
        m = re.search(rb"^To: *(.*?)\r\n", p.read_bytes(), re.M)
        assert m, "no To header in %s" % p
        got[m.group(1).decode()] += 1
    return got


def test_2000_emails_arrive_once_while_the_api_answers(make_daemon):
    d = make_daemon(ALWAYS)
    aid, addrs = email_alert(d, 2000)
    send_alert(d, aid)
    answered_mid_drain = 0
    deadline = time.monotonic() + scaled(120)
    while True:
        # The loop serves requests while workers write the files.
        r = d.api("GET", "/healthz", token=None)
        assert r.status == 200, r
        n = len(emls(d))
        if n >= 2000:
            break
        if n > 0:
            answered_mid_drain += 1
        assert time.monotonic() < deadline, "%d of 2000 .eml files" % n
    assert answered_mid_drain > 0, "the drain ended before any answer"
    wait_for(lambda: d.scalar("SELECT count(*) FROM messages WHERE "
                              "alert_id = ? AND status = 'sent'", (aid,))
             == 2000, 30, interval=0.05, what="2000 emails sent")
    got = recipients(d)
    assert max(got.values()) == 1, [a for a, k in got.items() if k > 1][:5]
    assert set(got) == set(addrs)
    ids = {r["id"] for r in d.query(
        "SELECT id FROM messages WHERE alert_id = ?", (aid,))}
    assert {int(p.stem) for p in emls(d)} == ids
    assert not list(d.mail_dir.glob(".*.tmp"))
    a = d.api("GET", "/api/v1/alerts/%d" % aid)
    assert a.status == 200, a
    assert a.json["counts"]["email"] == {"sent": 2000}, a.json
    # Each email said sent once, after its file was in place.
    assert len(re.findall(r" file_email msg=\d+ ", d.log())) == 2000


def post_email(d, to, when):
    r = d.api("POST", MSGS, {"channel": "email", "to": to, "subject": "s",
                             "body": "b", "not_before": when})
    assert r.status == 202, r
    return r.json["id"]


def test_a_file_that_cannot_be_written_fails_alone(make_daemon):
    d = make_daemon()
    # Due together, so they are handed to the adapter in one loop turn.
    when = int(time.time()) + 2
    ids = [post_email(d, "p%d@example.org" % k, when) for k in range(5)]
    bad = ids[2]
    # A directory where its file goes: the rename onto it fails (EISDIR).
    d.mail_dir.mkdir(mode=0o700, exist_ok=True)
    (d.mail_dir / ("%d.eml" % bad)).mkdir()
    (d.mail_dir / ("%d.eml" % bad) / "keep").write_text("x")
    d.expect_log(r"file_email_failed dir=\S+ messages=\d+ written=\d+ "
                 r"transient=1 error=\"cannot rename .*\.%d\.eml\.tmp "
                 r"to .*/%d\.eml: Is a directory\"" % (bad, bad))
    for mid in ids:
        if mid != bad:
            d.wait_status(mid, "sent")
            assert (d.mail_dir / ("%d.eml" % mid)).is_file()
    wait_for(lambda: "file_email_failed" in d.log(), 10,
             what="the file_email_failed warning")
    row = d.query("SELECT status, attempts, error_text FROM messages "
                  "WHERE id = ?", (bad,))[0]
    assert row["status"] in ("queued", "sending"), dict(row)
    assert "Is a directory" in (row["error_text"] or ""), dict(row)
    # Once the obstacle is gone, its retry writes it.
    (d.mail_dir / ("%d.eml" % bad) / "keep").unlink()
    (d.mail_dir / ("%d.eml" % bad)).rmdir()
    d.wait_status(bad, "sent", timeout=30)
    data = (d.mail_dir / ("%d.eml" % bad)).read_bytes()
    assert b"To: p2@example.org\r\n" in data
    assert not list(d.mail_dir.glob(".*.tmp"))
    assert d.scalar("SELECT attempts FROM messages WHERE id = ?",
                    (bad,)) >= 2


def test_sigterm_mid_alert_keeps_every_sent_email(make_daemon):
    d = make_daemon(ALWAYS)
    aid, addrs = email_alert(d, 1500)
    send_alert(d, aid)
    wait_for(lambda: len(emls(d)) > 0, 30, interval=0.01,
             what="the first .eml")
    assert d.stop(signal.SIGTERM) == 0
    # Every email the store counts as sent is on disk, whole.
    sent = [r["id"] for r in d.query(
        "SELECT id FROM messages WHERE alert_id = ? AND status = 'sent'",
        (aid,))]
    for mid in sent:
        data = (d.mail_dir / ("%d.eml" % mid)).read_bytes()
        assert b"vote today." in data and data.endswith(b"\r\n"), mid
    assert d.scalar("SELECT count(*) FROM messages WHERE alert_id = ? AND "
                    "status = 'sending'", (aid,)) == 0
    d.start()
    wait_for(lambda: d.scalar("SELECT count(*) FROM messages WHERE "
                              "alert_id = ? AND status = 'sent'", (aid,))
             == 1500, 120, interval=0.05, what="1500 emails sent")
    got = recipients(d)
    assert max(got.values()) == 1
    assert set(got) == set(addrs)
    assert not list(d.mail_dir.glob(".*.tmp"))
    print("sent before SIGTERM: %d of 1500" % len(sent))
