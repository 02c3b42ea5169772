"""
test_alerts.py - action alerts end to end (daemon/alerts.c, alerts_api.c,
queue/store_alerts.c, daemon/template.c, daemon/quiet.c): the real
outreachd, its console SMS outbox and file email adapter, or a Twilio
sender pointed at tests/fakes/fakeprov, which records every request in
the order it came.

Covered: a 10,000-member alert over SMS and email (each eligible member
exactly one message per channel, the alert's counters equal to what
arrived); an opt-out during the send (STOP webhook and the members API);
cancel, pause and resume across a restart, kill -9 and restart in the
middle of an alert; quiet hours under libfaketime at a fixed instant
(members in New York, Chicago, Los Angeles, and on Florida and Indiana
numbers; on PostgreSQL the tests that wait for the held texts give the
server the same fake clock, FakedStore), and an urgent alert; template
errors with member counts, the UCS-2 preview, smart quotes kept in GSM-7,
HTML escaping of member data; the opt-out guard rail; two alerts on one
paced sender and a HELP reply overtaking them; bad input; Idempotency-Key
on create and send.

Members are seeded through the CSV import API with a list subscription
(both channels), as an organizer would.
"""

import collections
import datetime
import email
import email.policy
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.parse

import pytest

import conftest
from conftest import wait_for
from fakeprov import OUR_NUMBER, fakeprov, sms_daemon, stays  # noqa: F401
from smtpserver import SmtpServer

# The window open all day: tests that are not about quiet hours must not
# depend on the hour they run at.
ALWAYS = {"alerts": {"quiet_start": "00:00", "quiet_end": "24:00"}}
AREAS = ["212", "415", "617", "312", "206", "303", "512", "404", "213", "702"]
EXCHANGES = ["234", "345", "456", "567", "678", "789", "823", "872", "262",
             "398"]
STOP_LINE = "Reply STOP to opt out"


def e164(n):
    """The n-th test number (n < 1,000,000), valid in libphonenumber."""
    return "+1%s%s%04d" % (AREAS[n % 10], EXCHANGES[(n // 10) % 10],
                           (n // 100) % 10000)


def merged(*confs):
    out = {}
    for c in confs:
        for sec, kv in (c or {}).items():
            out.setdefault(sec, {}).update(kv)
    return out


def make_list(d, name):
    r = d.api("POST", "/api/v1/lists", {"name": name})
    assert r.status == 201, r
    return r.json["id"]


def seed(d, list_, rows, header="phone,email,first_name"):
    """Imports CSV rows (lists of cells) into list_ (both channels);
    returns {phone or email: member id}."""
    text = header + "\n" + "".join(",".join(r) + "\n" for r in rows)
    r = d.api("POST", "/api/v1/imports?list=%s&source=%s"
              % (list_, urllib.parse.quote("test sheet")),
              raw=text.encode(), headers={"Content-Type": "text/csv"},
              timeout=120)
    assert r.status == 200, r
    assert r.json["counts"]["rejected"] == 0, r.json
    ids = {}
    for row in d.query("SELECT id, phone, email FROM members"):
        if row["phone"]:
            ids[row["phone"]] = row["id"]
        if row["email"]:
            ids[row["email"]] = row["id"]
    return ids


def seed_people(d, list_, n, first=0, no_email_every=0):
    """n members e164(first..first+n-1), each with an email but every
    no_email_every-th; returns [(phone, email or None)] in id order."""
    people = []
    for k in range(first, first + n):
        mail = None if no_email_every and k % no_email_every == 0 \
            else "m%d@example.org" % k
        people.append((e164(k), mail))
    seed(d, list_, [[p, m or "", "Ann%d" % i]
                    for i, (p, m) in enumerate(people)])
    return people


def create(d, body, headers=None, status=201):
    body = dict(body)
    body.setdefault("name", "alert")
    r = d.api("POST", "/api/v1/alerts", body, headers=headers)
    assert r.status == status, r
    return r.json


def sms_alert(d, lists, text="Hi {{first_name|friend}}, rally at 7. "
              + STOP_LINE, **extra):
    body = {"lists": lists, "sms_body": text}
    body.update(extra)
    return create(d, body)


def action(d, aid, what, status=200, **kw):
    r = d.api("POST", "/api/v1/alerts/%d/%s" % (aid, what), **kw)
    assert r.status == status, r
    return r.json


def alert(d, aid):
    r = d.api("GET", "/api/v1/alerts/%d" % aid)
    assert r.status == 200, r
    return r.json


def wait_alert(d, aid, status, timeout=30):
    seen = {}

    def reached():
        seen["a"] = alert(d, aid)
        return seen["a"] if seen["a"]["status"] == status else None
    try:
        return wait_for(reached, timeout, interval=0.05,
                        what="alert %d %s" % (aid, status))
    except AssertionError as e:
        raise AssertionError("%s; last: %r" % (e, seen.get("a"))) from None


def alerts_ids(d):
    r = d.api("GET", "/api/v1/alerts?limit=200")
    assert r.status == 200, r
    return [a["id"] for a in r.json["alerts"]]


def outbox_to(d):
    """Counter of the console outbox's recipients."""
    return collections.Counter(o["to"] for o in d.outbox())


def mails(d):
    """The .eml files written, as parsed messages."""
    if not d.mail_dir.exists():
        return []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(d.mail_dir.glob("*.eml"))]


def execute(d, sql, args=()):
    """Runs one write (? placeholders) on the daemon's database: its
    SQLite file, or its PostgreSQL database through psql."""
    if d.conf("store", "backend") == "postgresql":
        url = d.conf("store", "url")
        conftest.pg_query(url, "SELECT 1")  # finds psql
        r = subprocess.run([conftest._psql_bin[0], "-X", "-q", "-v",
                            "ON_ERROR_STOP=1", "-c",
                            conftest._pg_bind(sql, args), url],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return
    c = sqlite3.connect(str(d.db_path))
    try:
        with c:
            c.execute(sql, args)
    finally:
        c.close()


def settled(d, aid):
    """Nothing of the alert is queued (and due) or in flight."""
    return d.scalar("SELECT count(*) FROM messages WHERE alert_id = ? AND "
                    "status = 'sending'", (aid,)) == 0


def tw_fields(req):
    return dict(urllib.parse.parse_qsl(req["body"] or "",
                                       keep_blank_values=True))


def tw_sent(fp):
    """(To, Body) of each Twilio request, in arrival order."""
    return [(f.get("To"), f.get("Body"))
            for f in (tw_fields(r) for r in fp.requests("twilio"))]


def inbound(fp, frm, text):
    r = fp.callback("twilio", kind="inbound", text=text,
                    **{"from": frm, "to": OUR_NUMBER})
    assert r["status"] == 200, r
    return r


@pytest.fixture
def smtp():
    """A recording SMTP server (aiosmtpd on a loopback port)."""
    srv = SmtpServer().start()
    yield srv
    srv.stop()


def smtp_conf(srv):
    return {"email": {"adapter": "smtp", "dir": None},
            "smtp": {"host": "127.0.0.1", "port": str(srv.port),
                     "from": "Town Union <org@example.org>",
                     "starttls": "off", "workers": "4",
                     "session_max_messages": "500"},
            "http": {"public_url": "https://od.example.org"}}


# ---- scale -----------------------------------------------------------------

@pytest.mark.slow
def test_alert_10k_members_sms_and_email(make_daemon, smtp):
    """
    10,000 members on the list (8,000 with an email), 40 of them opted out
    of SMS and 40 out of email before the alert, and 50 members of another
    list: every eligible member gets exactly one SMS and one email, nobody
    else anything, and the alert's counters are what arrived.
    """
    d = make_daemon(merged(ALWAYS, smtp_conf(smtp)))
    make_list(d, "town")
    make_list(d, "other")
    people = seed_people(d, "town", 10000, no_email_every=5)
    assert len({p for p, _ in people}) == 10000
    outsiders = seed_people(d, "other", 50, first=20000)
    byphone = {r["phone"]: r["id"] for r in d.query(
        "SELECT id, phone FROM members")}
    sms_out = [people[k][0] for k in range(7, 10000, 250)]
    with_mail = [(p, m) for p, m in people if m]
    email_out = [m for _, m in with_mail[3::len(with_mail) // 40]][:40]
    for p in sms_out:
        r = d.api("POST", "/api/v1/members/%d/optout" % byphone[p],
                  {"channel": "sms"})
        assert r.status == 200, r
    for m in email_out:
        mid = d.scalar("SELECT id FROM members WHERE email = ?", (m,))
        r = d.api("POST", "/api/v1/members/%d/optout" % mid,
                  {"channel": "email"})
        assert r.status == 200, r
    want_sms = {p for p, _ in people} - set(sms_out)
    want_mail = {m for _, m in with_mail} - set(email_out)

    a = create(d, {"lists": ["town"],
                   "sms_body": "Hi {{first_name}}, vote today. " + STOP_LINE,
                   "email_subject": "Vote today, {{first_name}}",
                   "email_text": "Hi {{first_name}},\nvote today.\n"})
    pv = action(d, a["id"], "preview")
    assert pv["audience"]["sms"] == len(want_sms), pv["audience"]
    assert pv["audience"]["email"] == len(want_mail), pv["audience"]
    assert pv["audience"]["excluded"]["sms_opted_out"] == len(sms_out)
    assert pv["audience"]["excluded"]["email_opted_out"] == len(email_out)
    action(d, a["id"], "send")
    done = wait_alert(d, a["id"], "done", timeout=90)

    got_sms = outbox_to(d)
    assert max(got_sms.values()) == 1, [p for p, n in got_sms.items()
                                        if n > 1][:5]
    assert set(got_sms) == want_sms, (len(set(got_sms) - want_sms),
                                      len(want_sms - set(got_sms)))
    assert not set(got_sms) & {p for p, _ in outsiders}
    got_mail = collections.Counter(r for m in smtp.messages
                                   for r in m["rcpt_tos"])
    assert max(got_mail.values()) == 1
    assert set(got_mail) == want_mail, (len(set(got_mail) - want_mail),
                                        len(want_mail - set(got_mail)))
    assert done["counts"] == {"sms": {"sent": len(got_sms)},
                              "email": {"sent": sum(got_mail.values())}}
    assert done["audience_size"] == {"sms": len(want_sms),
                                     "email": len(want_mail)}
    # A body as rendered for its member.
    first = {o["to"]: o["body"] for o in d.outbox()}
    k = 1234
    assert first[people[k][0]] == "Hi Ann%d, vote today. %s" % (k, STOP_LINE)


def test_audience_rules_email_bouncing_pending_and_left(make_daemon):
    """Email skips a bouncing address; a member who left the list, or is
    on another list only, gets nothing; a pending (double opt-in)
    subscription does not count. The preview says who is left out."""
    d = make_daemon(ALWAYS)
    make_list(d, "town")
    make_list(d, "other")
    ids = seed(d, "town", [[e164(k), "p%d@example.org" % k, "P%d" % k]
                           for k in range(5)])
    seed(d, "other", [[e164(9), "p9@example.org", "Other"]])
    # p1 left the list on both channels; p2's address bounces (set while
    # the daemon is stopped: three hard bounces would do it live).
    r = d.api("DELETE", "/api/v1/lists/town/members/%d" % ids[e164(1)])
    assert r.status == 200, r
    d.stop()
    execute(d, "UPDATE members SET bouncing = 1 WHERE email = ?",
            ("p2@example.org",))
    # p3's email subscription awaits confirmation.
    execute(d, "UPDATE subscriptions SET status = 'pending' WHERE "
            "member_id = ? AND channel = 'email'", (ids[e164(3)],))
    d.start()
    a = create(d, {"lists": ["town"], "sms_body": "Hi {{first_name}}. "
                   + STOP_LINE, "email_subject": "Hi",
                   "email_text": "Hi {{first_name}}"})
    pv = action(d, a["id"], "preview")
    assert pv["audience"]["sms"] == 4 and pv["audience"]["email"] == 2, pv
    assert pv["audience"]["excluded"]["email_bouncing"] == 1, pv
    action(d, a["id"], "send")
    done = wait_alert(d, a["id"], "done")
    assert sorted(o["to"] for o in d.outbox()) == \
        sorted(e164(k) for k in (0, 2, 3, 4))
    assert sorted(str(m["To"]) for m in mails(d)) == \
        ["p0@example.org", "p4@example.org"]
    assert done["counts"] == {"sms": {"sent": 4}, "email": {"sent": 2}}


def test_draft_lifecycle(make_daemon):
    """A draft can be changed and deleted; an alert that started cannot."""
    d = make_daemon(ALWAYS)
    make_list(d, "town")
    seed_people(d, "town", 3)
    a = sms_alert(d, ["town"])
    path = "/api/v1/alerts/%d" % a["id"]
    r = d.api("PATCH", path, {"name": "renamed", "lists": ["town"],
                              "sms_body": "New text. " + STOP_LINE})
    assert r.status == 200 and r.json["name"] == "renamed", r
    assert r.json["sms_body"] == "New text. " + STOP_LINE
    b = sms_alert(d, ["town"])
    assert d.api("DELETE", "/api/v1/alerts/%d" % b["id"]).status == 204
    assert d.api("GET", "/api/v1/alerts/%d" % b["id"]).status == 404
    action(d, a["id"], "send")
    wait_alert(d, a["id"], "done")
    assert sorted(o["body"] for o in d.outbox()) == \
        ["New text. " + STOP_LINE] * 3
    r = d.api("PATCH", path, {"name": "x", "lists": ["town"],
                              "sms_body": "y " + STOP_LINE})
    assert r.status == 409, r
    r = d.api("DELETE", path)
    assert r.status == 409 and "cancel it instead" in r.error_message(), r
    assert alerts_ids(d) == [a["id"]]


# ---- opt-out, cancel, pause, crash -------------------------------------------

def test_optout_during_alert_stops_that_member(make_daemon, fakeprov):
    """
    A paced Twilio sender (rate 20) works through 200 members. While it
    does, one late member texts STOP and another is opted out through the
    API: once the opt-out is answered, nothing more reaches them, and their
    alert messages end suppressed; everybody else gets theirs once.
    """
    d = sms_daemon(make_daemon, fakeprov, "twilio",
                   conf=ALWAYS, sender_keys={"rate": "20", "burst": "1"})
    make_list(d, "town")
    people = seed_people(d, "town", 200)
    a = sms_alert(d, ["town"])
    action(d, a["id"], "send")
    fakeprov.wait_requests(5, "twilio", timeout=20)
    stopper, api_out = people[-1][0], people[-2][0]
    inbound(fakeprov, stopper, "STOP")
    mid = d.scalar("SELECT id FROM members WHERE phone = ?", (api_out,))
    r = d.api("POST", "/api/v1/members/%d/optout" % mid, {"channel": "sms"})
    assert r.status == 200, r
    # (the STOP's confirmation may be out already; alert texts start "Hi")
    before = [to for to, b in tw_sent(fakeprov) if b.startswith("Hi ")]
    assert stopper not in before and api_out not in before, \
        "the sender was too fast for this test: the last members were " \
        "reached before the opt-outs"
    done = wait_alert(d, a["id"], "done", timeout=60)
    sent = collections.Counter(to for to, body in tw_sent(fakeprov)
                               if body.startswith("Hi "))
    assert max(sent.values()) == 1
    assert set(sent) == {p for p, _ in people} - {stopper, api_out}
    # The STOP got its one confirmation; the API opt-out nothing.
    assert [b for to, b in tw_sent(fakeprov) if to == stopper] and \
        all(not b.startswith("Hi ") for to, b in tw_sent(fakeprov)
            if to == stopper)
    assert api_out not in {to for to, _ in tw_sent(fakeprov)}
    # Lazy fan-out: a member opted out before the walk reached them gets
    # no message at all; one whose message was already made ends
    # suppressed by the send-time check. Either way nothing is sent.
    counts = done["counts"]["sms"]
    assert counts["sent"] == 198 and set(counts) <= {"sent", "suppressed"}, \
        done


def test_cancel_mid_alert(make_daemon):
    """Cancel while sending: the queued rest becomes cancelled, nothing
    more leaves, and sent + cancelled cover the audience."""
    d = make_daemon(merged(ALWAYS, {"sender console": {"rate": "50"},
                                    "alerts": {"backlog": "100"}}))
    make_list(d, "town")
    people = seed_people(d, "town", 400)
    a = sms_alert(d, ["town"])
    action(d, a["id"], "send")
    wait_for(lambda: len(d.outbox()) >= 30, 20, what="30 messages out")
    c = action(d, a["id"], "cancel")
    assert c["status"] == "cancelled"
    wait_for(lambda: settled(d, a["id"]), 10, what="nothing in flight")
    n = len(d.outbox())
    stays(lambda: len(d.outbox()) == n, 1.5, "nothing sent after cancel")
    got = alert(d, a["id"])
    counts = got["counts"]["sms"]
    # Only the due backlog (about a second at the sender's rate) is made
    # ahead: it ends cancelled unless it had all left already.
    assert set(counts) <= {"sent", "cancelled"}, counts
    assert counts["sent"] == n and max(outbox_to(d).values()) == 1
    assert 30 <= n < len(people), n
    assert d.scalar("SELECT count(*) FROM messages WHERE alert_id = ? AND "
                    "status = 'queued'", (a["id"],)) == 0
    # The members the fan-out had not reached yet get no message at all.
    made = counts["sent"] + counts.get("cancelled", 0)
    assert made <= len(people)
    assert got["finished_at"] is not None
    # A cancelled alert cannot be resumed or sent again.
    r = d.api("POST", "/api/v1/alerts/%d/resume" % a["id"])
    assert r.status == 409, r
    r = d.api("POST", "/api/v1/alerts/%d/send" % a["id"])
    assert r.status == 409, r


def test_pause_restart_resume_delivers_each_once(make_daemon):
    """Pause mid-alert, SIGTERM, start again: still paused and silent;
    resume: every member exactly once."""
    d = make_daemon(merged(ALWAYS, {"sender console": {"rate": "50"},
                                    "alerts": {"backlog": "100"}}))
    make_list(d, "town")
    people = seed_people(d, "town", 400)
    a = sms_alert(d, ["town"])
    action(d, a["id"], "send")
    wait_for(lambda: len(d.outbox()) >= 30, 20, what="30 messages out")
    p = action(d, a["id"], "pause")
    assert p["status"] == "paused"
    assert p["pause_reason"] == "paused by staff"
    wait_for(lambda: settled(d, a["id"]), 10, what="nothing in flight")
    n = len(d.outbox())
    assert n < len(people)
    d.restart()
    got = alert(d, a["id"])
    assert got["status"] == "paused", got
    stays(lambda: len(d.outbox()) == n, 1.5, "nothing sent while paused")
    assert got["counts"]["sms"].get("pending", 0) == 0, got["counts"]
    action(d, a["id"], "resume")
    done = wait_alert(d, a["id"], "done", timeout=60)
    got = outbox_to(d)
    assert max(got.values()) == 1
    assert set(got) == {p for p, _ in people}
    assert done["counts"]["sms"] == {"sent": len(people)}


@pytest.mark.slow
def test_kill9_mid_alert_resumes_without_skipping(make_daemon):
    """
    kill -9 while an alert sends (its fan-out half way), then start
    again: the alert finishes, nobody is skipped, and a member gets a
    second message only from the dispatcher's in-flight window (printed).
    """
    d = make_daemon(merged(ALWAYS, {"sender console": {"rate": "400",
                                                       "burst": "50"},
                                    "alerts": {"backlog": "300"}}))
    make_list(d, "town")
    people = seed_people(d, "town", 3000)
    a = sms_alert(d, ["town"])
    action(d, a["id"], "send")
    wait_for(lambda: len(d.outbox()) >= 600, 30, what="600 messages out")
    d.kill9()
    at_kill = len(d.outbox())
    cursor = d.scalar("SELECT cursor FROM alerts WHERE id = ?", (a["id"],))
    in_flight = d.scalar("SELECT count(*) FROM messages WHERE alert_id = ? "
                         "AND status = 'sending'", (a["id"],))
    d.start()
    done = wait_alert(d, a["id"], "done", timeout=60)
    got = outbox_to(d)
    twice = sorted(p for p, k in got.items() if k > 1)
    print("kill -9 mid-alert: %d of %d out at the kill, fan-out cursor %d, "
          "%d in flight; after restart %d delivered twice"
          % (at_kill, len(people), cursor, in_flight, len(twice)))
    assert set(got) == {p for p, _ in people}, "members skipped"
    assert max(got.values()) <= 2
    assert len(twice) <= in_flight, (twice, in_flight)
    assert done["counts"]["sms"] == {"sent": len(people)}


# ---- quiet hours -------------------------------------------------------------

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
# 13:30 UTC on a Monday in December (no DST): 08:30 in New York, 07:30
# in Chicago, 05:30 in Los Angeles.
FAKE_NOW = "2026-12-07 13:30:00"
# libfaketime fakes the clock of the process it is preloaded into, and
# on PostgreSQL a message is claimed when the DATABASE's clock says it is
# due (pg_queue.c): the tests that wait for the deferred texts give the
# daemon a database on a throwaway cluster (one a test module) whose
# server runs under the same fake clock (faked_store, FakedStore).


def faketime_env(at, speed=None):
    if not shutil.which("faketime") or not os.path.exists(FAKETIME_LIB):
        pytest.skip("libfaketime is not installed (apt-get install "
                    "faketime; bootstrap's deps do)")
    spec = "@" + at + (" x%d" % speed if speed else "")
    env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": spec,
           "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "FAKETIME_NO_CACHE": "1"}
    # Under AddressSanitizer (./bootstrap sanitize) the preloaded library
    # comes before ASan's runtime, which ASan refuses unless told that the
    # order is intended.
    asan = os.environ.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
        "verify_asan_link_order=0"
    return env


class FakedStore:
    """
    The store of a daemon under libfaketime. On SQLite, start(d, at,
    speed) starts d under faketime_env(at, speed). On PostgreSQL, a
    database of its own on the module's cluster (pgcluster.PgCluster in
    holder, started at the first start() of the module, stopped at its
    end) whose server runs under the same fake clock: the server is
    restarted with the new clock at each start() (0.3 s; a new cluster
    takes 1.5 to 3 s).

    The server and the daemon start at different moments, and with
    FAKETIME "@at" each one's clock starts at its own start: the server
    starts at a fake instant SERVER_EARLY real seconds before at (times
    the speed), then the daemon at at, or at the server's clock plus
    DAEMON_AHEAD real seconds (times the speed) if the server got there
    first. The daemon is never behind the server: a text it deferred to
    14:00 (not_before, by its clock) is claimed when the server's clock
    passes 14:00, so it goes at 14:00 or later by the daemon's clock, as
    on SQLite; a text it queued for now goes once the server catches up,
    about SERVER_EARLY + DAEMON_AHEAD real seconds later at most.
    """

    SERVER_EARLY = 1.0
    DAEMON_AHEAD = 0.25
    _dbs = 0

    def __init__(self, holder):
        self.holder = holder
        self.url = None

    def start(self, d, at, speed=None):
        if conftest.OD_STORE != "postgresql":
            d.env.update(faketime_env(at, speed))
            d.start()
            return d
        rate = speed or 1
        at_s = time.mktime(time.strptime(at, "%Y-%m-%d %H:%M:%S"))
        server_env = faketime_env(fake_at(at_s - self.SERVER_EARLY * rate),
                                  speed)
        server_env.pop("ASAN_OPTIONS")
        if not self.holder:
            from pgcluster import PgCluster
            self.holder.append(PgCluster(server_env))
        else:
            self.holder[0].restart(server_env)
        c = self.holder[0]
        if self.url is None:
            FakedStore._dbs += 1
            self.url = c.create_db("quiet_%d" % FakedStore._dbs)
            d.configure({"store": {"url": self.url}})
        t0 = time.time()
        server_ms = int(c.psql(c.url, "SELECT (extract(epoch FROM "
                               "clock_timestamp()) * 1000)::bigint",
                               single=False))
        server_s = server_ms / 1000 + (time.time() - t0) * rate
        d.env.update(faketime_env(fake_at(max(
            at_s, server_s + self.DAEMON_AHEAD * rate)), speed))
        d.start()
        return d


def fake_at(secs):
    """FAKETIME's "@" instant (local time, as libfaketime reads it) of
    secs since the epoch, rounded up to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S",
                         time.localtime(int(secs) + (secs > int(secs))))


@pytest.fixture(scope="module")
def faked_cluster():
    """The module's cluster under libfaketime, if a test started one:
    stopped after the module's last test (after its daemons)."""
    holder = []
    try:
        yield holder
    finally:
        for c in holder:
            c.stop()


@pytest.fixture
def faked_store(faked_cluster):
    return FakedStore(faked_cluster)


QUIET_MEMBERS = [
    # (label, phone, time_zone): the member's zone wins over the number's
    ("ny", "+12125550101", "America/New_York"),
    ("chi", "+12125550102", "America/Chicago"),
    ("la", "+12125550103", "America/Los_Angeles"),
    # no zone: the area's zones, all of them
    ("fl", "+18505550123", None),       # Florida: New_York and Chicago
    ("in", "+12195550123", None),       # Indiana: Indianapolis and Chicago
    ("nyc", "+12125550123", None),      # New York, NY
]
# When each may get its text, at FAKE_NOW (None = now).
QUIET_WANT = {"ny": None, "chi": "2026-12-07T14:00:00.000Z",
              "la": "2026-12-07T16:00:00.000Z",
              "fl": "2026-12-07T14:00:00.000Z",
              "in": "2026-12-07T14:00:00.000Z", "nyc": None}


def quiet_daemon(make_daemon, speed=None, name="od", store=None):
    """A daemon under libfaketime at FAKE_NOW with the QUIET_MEMBERS; with
    store (a FakedStore), one whose store's clock is faked too."""
    d = make_daemon({"alerts": {"quiet_start": "08:00",
                                "quiet_end": "20:00"}},
                    start=False, name=name)
    if store is not None:
        store.start(d, FAKE_NOW, speed)
    else:
        d.env.update(faketime_env(FAKE_NOW, speed))
        d.start()
    make_list(d, "town")
    who = {}
    for label, phone, tz in QUIET_MEMBERS:
        body = {"phone": phone, "first_name": label,
                "subscribe": [{"list": "town"}],
                "consent_source": "test form"}
        if tz:
            body["time_zone"] = tz
        if label == "la":
            body["email"] = "la@example.org"
            body["subscribe"].append({"list": "town", "channel": "email"})
        r = d.api("POST", "/api/v1/members", body)
        assert r.status == 201, r
        who[label] = r.json["id"]
    return d, who


def alert_messages(d, aid, channel="sms"):
    """{member id: message JSON} of the alert's messages on channel."""
    out = {}
    for row in d.query("SELECT id, member_id FROM messages WHERE "
                       "alert_id = ? AND channel = ?", (aid, channel)):
        out[row["member_id"]] = d.message(row["id"])
    return out


def test_quiet_hours_defer_by_member_zone(faked_store, make_daemon):
    d, who = quiet_daemon(make_daemon, store=faked_store)
    a = create(d, {"lists": ["town"],
                   "sms_body": "Hi {{first_name}}. " + STOP_LINE,
                   "email_subject": "Hi", "email_text": "Hi there"})
    pv = action(d, a["id"], "preview")
    assert pv["sms"]["quiet_hours"]["window"] == "08:00-20:00"
    action(d, a["id"], "send")
    wait_for(lambda: len(d.outbox()) >= 2, 10, what="the two in the window")
    wait_for(lambda: alert(d, a["id"])["fanout_done"], 10)
    msgs = wait_for(lambda: (lambda m: m if len(m) == 6 else None)(
        alert_messages(d, a["id"])), 10, what="six SMS made")
    for label, mid in who.items():
        m = msgs[mid]
        if QUIET_WANT[label] is None:
            d.wait_status(m["id"], "sent")
        else:
            assert m["status"] == "queued", (label, m)
            nb = d.scalar("SELECT not_before FROM messages WHERE id = ?",
                          (m["id"],))
            nb = datetime.datetime.fromtimestamp(
                nb / 1000, datetime.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            assert nb == QUIET_WANT[label], (label, nb)
    got = {o["to"] for o in d.outbox()}
    assert got == {"+12125550101", "+12125550123"}, got
    counts = alert(d, a["id"])["counts"]
    assert counts["sms"] == {"sent": 2, "deferred": 4}, counts
    # Email is not held: the Los Angeles member's mail went at 05:30.
    wait_for(lambda: alert(d, a["id"])["counts"]["email"] == {"sent": 1},
             10, what="the email sent")
    assert [str(m["To"]) for m in mails(d)] == ["la@example.org"]
    # The alert waits for the deferred ones; it is not done.
    assert alert(d, a["id"])["status"] == "sending"


def test_preview_counts_each_member_once_for_quiet_hours(make_daemon):
    d, who = quiet_daemon(make_daemon)
    a = sms_alert(d, ["town"])
    q = action(d, a["id"], "preview")["sms"]["quiet_hours"]
    assert (q["sampled"], q["outside_now"]) == (6, 4), q


def test_message_api_shows_not_before(make_daemon):
    d, who = quiet_daemon(make_daemon)
    a = sms_alert(d, ["town"])
    action(d, a["id"], "send")
    msgs = wait_for(lambda: (lambda m: m if len(m) == 6 else None)(
        alert_messages(d, a["id"])), 10, what="six SMS made")
    assert msgs[who["la"]]["not_before"] == QUIET_WANT["la"]


def test_quiet_hours_release_when_the_window_opens(faked_store, make_daemon):
    """Restarted at 14:00:05 UTC (08:00:05 in Chicago) the Chicago,
    Florida and Indiana texts go; Los Angeles still waits until 16:00."""
    d, who = quiet_daemon(make_daemon, store=faked_store)
    a = sms_alert(d, ["town"])
    action(d, a["id"], "send")
    wait_for(lambda: alert(d, a["id"])["counts"]["sms"].get("deferred") == 4,
             10, what="four deferred")
    d.stop()
    faked_store.start(d, "2026-12-07 14:00:05")
    wait_for(lambda: len(d.outbox()) >= 5, 15, what="five sent")
    stays(lambda: len(d.outbox()) == 5, 1.0, "Los Angeles still waits")
    assert "+12125550103" not in {o["to"] for o in d.outbox()}
    counts = alert(d, a["id"])["counts"]["sms"]
    assert counts == {"sent": 5, "deferred": 1}, counts


def test_deferred_texts_expire_with_the_alert(faked_store, make_daemon):
    """validity 1 h from 13:30 UTC: the 14:00 texts go when the window
    opens, the Los Angeles one (16:00) expires unsent, and the alert is
    done with it counted as expired."""
    d, who = quiet_daemon(make_daemon, store=faked_store)
    a = sms_alert(d, ["town"], validity=3600)
    action(d, a["id"], "send")
    wait_for(lambda: alert(d, a["id"])["counts"]["sms"] ==
             {"sent": 2, "deferred": 4}, 10, what="two sent, four deferred")
    d.stop()
    faked_store.start(d, "2026-12-07 14:00:05")
    wait_for(lambda: alert(d, a["id"])["counts"]["sms"] ==
             {"sent": 5, "deferred": 1}, 15, what="five sent")
    d.stop()
    faked_store.start(d, "2026-12-07 16:00:05")
    done = wait_alert(d, a["id"], "done", timeout=20)
    assert done["counts"]["sms"] == {"sent": 5, "expired": 1}, done
    assert "+12125550103" not in {o["to"] for o in d.outbox()}


def test_quiet_hours_with_a_fast_clock(faked_store, make_daemon):
    """
    With libfaketime's clock 120 times as fast (FAKETIME "@... x120",
    CLOCK_MONOTONIC left real for libevent's timers), the deferred Chicago,
    Florida and Indiana texts go once the fake clock passes 14:00 UTC,
    without a restart, and not before; Los Angeles (16:00) still waits.
    """
    d, who = quiet_daemon(make_daemon, speed=120, store=faked_store)
    a = sms_alert(d, ["town"])
    action(d, a["id"], "send")
    # 30 fake minutes are 15 real seconds at x120.
    out = wait_for(lambda: (lambda o: o if len(o) >= 5 else None)(
        d.outbox()), 45, what="five texts, after 14:00 UTC (fake)")
    at = {o["to"]: o["at"] for o in out}
    for phone in ("+12125550101", "+12125550123"):
        assert at[phone] < "2026-12-07T13:45", at
    for phone in ("+12125550102", "+18505550123", "+12195550123"):
        assert "2026-12-07T14:00:00" <= at[phone] < "2026-12-07T15", at
    assert "+12125550103" not in at     # Los Angeles: 16:00


def test_urgent_alert_is_not_held(make_daemon):
    d, who = quiet_daemon(make_daemon)
    a = sms_alert(d, ["town"], urgent=True)
    pv = action(d, a["id"], "preview")
    assert pv["sms"]["quiet_hours"]["window"] == "urgent: not held"
    action(d, a["id"], "send")
    done = wait_alert(d, a["id"], "done", timeout=20)
    assert done["counts"]["sms"] == {"sent": 6}
    assert len(d.outbox()) == 6


# ---- templates ---------------------------------------------------------------

def test_template_errors_name_field_and_count(make_daemon):
    d = make_daemon(ALWAYS)
    make_list(d, "town")
    rows = [[e164(k), "", "Ann" if k % 4 else ""] for k in range(12)]
    seed(d, "town", rows)
    r = d.api("POST", "/api/v1/alerts", {
        "name": "x", "lists": ["town"],
        "sms_body": "Hi {{first_name}}. " + STOP_LINE})
    assert r.status == 422, r
    assert r.error_code() == "invalid_request"
    assert r.error_message() == (
        "sms_body: 3 members of the audience have no first_name; give a "
        "fallback such as {{first_name|friend}}"), r.error_message()
    r = d.api("POST", "/api/v1/alerts", {
        "name": "x", "lists": ["town"], "sms_body": "Hi {{first_name",
        "email_subject": "s", "email_text": "t"})
    assert r.status == 422, r
    assert r.error_message().startswith("sms_body: line 1 column 4: "), r
    r = d.api("POST", "/api/v1/alerts", {
        "name": "x", "lists": ["town"], "sms_body": "ok",
        "email_subject": "s", "email_text": "Dear {{nickname}}"})
    assert r.status == 422, r
    assert r.error_message().startswith("email_text: line 1 column 8: "), r
    assert "nickname" in r.error_message()
    assert alerts_ids(d) == []
    # With a fallback it is fine, and the preview reports nobody missing.
    a = sms_alert(d, ["town"])
    assert action(d, a["id"], "preview")["missing_fields"] == []


def test_ucs2_preview_and_smart_quotes(make_daemon):
    d = make_daemon(ALWAYS)
    make_list(d, "town")
    # é is in GSM-7's table, ë is not.
    seed(d, "town", [[e164(1), "", "José"], [e164(2), "", "Bob"]])
    # A curly apostrophe: smart replacement keeps the text GSM-7.
    a = sms_alert(d, ["town"], text="It\u2019s on, {{first_name}}! "
                  + STOP_LINE)
    pv = action(d, a["id"], "preview")
    assert pv["sms"]["encoding"] == "gsm7", pv["sms"]
    assert pv["sms"]["ucs2_characters"] == {"\u2019": "'"}, pv["sms"]
    assert pv["sms"]["samples"][0]["text"] == "It's on, José! " + STOP_LINE
    action(d, a["id"], "send")
    wait_alert(d, a["id"], "done")
    assert sorted(o["body"] for o in d.outbox()) == sorted(
        ["It's on, José! " + STOP_LINE, "It's on, Bob! " + STOP_LINE])
    # Characters GSM-7 lacks: the preview names them, with no replacement.
    b = sms_alert(d, ["town"], text="Rally \U0001F4E3 \u5927 {{first_name}}."
                  " " + STOP_LINE)
    pv = action(d, b["id"], "preview")
    assert pv["sms"]["encoding"] == "ucs2", pv["sms"]
    assert pv["sms"]["ucs2_characters"] == {"\U0001F4E3": None,
                                            "\u5927": None}, pv["sms"]


def test_html_email_escapes_member_data(make_daemon):
    d = make_daemon(ALWAYS)
    make_list(d, "town")
    nasty = "<script>alert(1)</script> & \"Bo\""
    seed(d, "town", [["", "x@example.org", '"' + nasty.replace('"', '""')
                      + '"']])
    a = create(d, {"lists": ["town"], "email_subject": "Hello",
                   "email_text": "Hi {{first_name}}",
                   "email_html": "<p title=\"{{first_name}}\">Hi "
                                 "{{first_name}}</p>"})
    action(d, a["id"], "send")
    wait_alert(d, a["id"], "done")
    [msg] = mails(d)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    esc = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Bo&quot;"
    assert "<p title=\"%s\">Hi %s</p>" % (esc, esc) in html, html
    assert "<script>" not in html
    # Plain text is never escaped (the unsubscribe footer follows).
    assert text.splitlines()[0] == "Hi " + nasty, text


# ---- guard rail --------------------------------------------------------------

def test_optout_rate_pauses_the_alert(make_daemon, fakeprov):
    """
    400 members, a paced sender; 5% of them (20) text STOP early on. With
    [alerts] guard_min 20 and max_optout_rate 3 the alert pauses itself,
    says why, and sends nothing more.
    """
    d = sms_daemon(make_daemon, fakeprov, "twilio",
                   conf=merged(ALWAYS, {"alerts": {"guard_min": "20",
                                                   "max_optout_rate": "3"}}),
                   sender_keys={"rate": "25", "burst": "1"})
    # (on PostgreSQL the line names the node that paused the alert)
    d.expect_log(r"warn alert_guard_tripped alert=1 (node=\S+ )?"
                 r"reason=\"opt-out rate")
    make_list(d, "town")
    people = seed_people(d, "town", 400)
    a = sms_alert(d, ["town"])
    action(d, a["id"], "send")
    fakeprov.wait_requests(40, "twilio", timeout=20)
    reached = [to for to, _ in tw_sent(fakeprov)][:20]
    for p in reached:
        inbound(fakeprov, p, "STOP")
    got = wait_alert(d, a["id"], "paused", timeout=30)
    assert got["pause_reason"].startswith("opt-out rate "), got
    assert "is over [alerts] max_optout_rate 3.0%" in got["pause_reason"]
    assert got["caused"]["optouts"] == 20, (got, [tuple(r) for r in d.query(
        "SELECT m.phone, x.status, x.created_at, o.opted_out_at "
        "FROM messages x JOIN members m ON m.id = x.member_id "
        "LEFT JOIN sms_optout o ON o.member_id = x.member_id "
        "WHERE x.alert_id = ? AND m.phone IN (%s)"
        % ",".join("?" * len(reached)), (a["id"], *reached))])
    wait_for(lambda: settled(d, a["id"]), 10)
    n = len(fakeprov.requests("twilio"))
    stays(lambda: len(fakeprov.requests("twilio")) == n, 1.5,
          "nothing sent once paused")
    sent = sum(1 for _, b in tw_sent(fakeprov) if b.startswith("Hi "))
    assert sent < len(people)
    counts = alert(d, a["id"])["counts"]["sms"]
    assert counts.get("pending", 0) == 0, counts
    # A paused alert's guard rails are no longer checked, but what it
    # shows must still count the members who opt out after the pause.
    later = [to for to, _ in tw_sent(fakeprov)][20]
    inbound(fakeprov, later, "STOP")
    assert alert(d, a["id"])["caused"]["optouts"] == 21


def test_failure_rate_pauses_the_alert(make_daemon, fakeprov):
    """The provider refuses the first 30 numbers for good (Twilio 21211):
    over [alerts] max_failure_rate 10 once guard_min 20 finished, the
    alert pauses itself and says why."""
    d = sms_daemon(make_daemon, fakeprov, "twilio",
                   conf=merged(ALWAYS, {"alerts": {"guard_min": "20",
                                                   "max_failure_rate": "10"}}),
                   sender_keys={"rate": "25", "burst": "1"})
    d.expect_log(r"warn alert_guard_tripped alert=1 (node=\S+ )?"
                 r"reason=\"permanent-failure rate")
    fakeprov.behave("twilio", status=400, code=21211, count=30)
    make_list(d, "town")
    people = seed_people(d, "town", 300)
    a = sms_alert(d, ["town"])
    action(d, a["id"], "send")
    got = wait_alert(d, a["id"], "paused", timeout=30)
    assert got["pause_reason"].startswith("permanent-failure rate "), got
    assert "is over [alerts] max_failure_rate 10.0%" in got["pause_reason"]
    wait_for(lambda: settled(d, a["id"]), 10)
    counts = alert(d, a["id"])["counts"]["sms"]
    assert counts["failed"] == 30, counts
    assert counts.get("pending", 0) == 0, counts
    assert counts["sent"] + counts["failed"] < len(people), counts


def iso_in(seconds):
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc) + \
        datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def test_scheduled_alert_goes_at_its_time(make_daemon):
    """schedule with a time 2 s ahead: nothing before it, everybody once
    after. A scheduled alert paused and resumed is scheduled again."""
    d = make_daemon(ALWAYS)
    make_list(d, "town")
    people = seed_people(d, "town", 20)
    later = sms_alert(d, ["town"])
    s = action(d, later["id"], "schedule", body={"at": iso_in(3600)})
    assert s["status"] == "scheduled"
    assert action(d, later["id"], "pause")["status"] == "paused"
    assert action(d, later["id"], "resume")["status"] == "scheduled"
    a = sms_alert(d, ["town"])
    at = iso_in(2)
    s = action(d, a["id"], "schedule", body={"at": at})
    assert s["status"] == "scheduled" and s["scheduled_at"] == at, s
    done = wait_alert(d, a["id"], "done", timeout=20)
    assert done["started_at"] >= at, done
    out = d.outbox()
    assert sorted(o["to"] for o in out) == sorted(p for p, _ in people)
    assert min(o["at"] for o in out) >= at, (at, out[:2])
    assert alert(d, later["id"])["status"] == "scheduled"
    assert action(d, later["id"], "cancel")["status"] == "cancelled"


# ---- two alerts, one sender; replies first --------------------------------

def two_alerts(make_daemon, fp, n=40):
    """Two SMS alerts of n members each, sent one after the other on one
    Twilio sender paced at 20 a second."""
    d = sms_daemon(make_daemon, fp, "twilio", conf=ALWAYS,
                   sender_keys={"rate": "20", "burst": "1"})
    make_list(d, "north")
    make_list(d, "south")
    seed_people(d, "north", n)
    south = seed_people(d, "south", n, first=100)
    a = sms_alert(d, ["north"], text="North {{first_name}}. " + STOP_LINE)
    b = sms_alert(d, ["south"], text="South {{first_name}}. " + STOP_LINE)
    action(d, a["id"], "send")
    action(d, b["id"], "send")
    return d, a["id"], b["id"], south


def kinds_sent(fp):
    """N (first alert), S (second alert) or R (a reply) per request, in
    the order the provider got them."""
    return ["N" if body.startswith("North ") else
            "S" if body.startswith("South ") else "R"
            for _, body in tw_sent(fp)]


def test_help_reply_overtakes_queued_alert_messages(make_daemon, fakeprov):
    """A HELP arriving while two alerts drain a paced sender is answered
    before the alert messages still queued: its reply is the next request
    the provider gets (bar what was already claimed)."""
    d, a, b, south = two_alerts(make_daemon, fakeprov)
    fakeprov.wait_requests(10, "twilio", timeout=20)
    asker = south[-1][0]
    inbound(fakeprov, asker, "HELP")
    k = len(fakeprov.requests("twilio"))
    wait_alert(d, a, "done", timeout=60)
    wait_alert(d, b, "done", timeout=60)
    kinds = kinds_sent(fakeprov)
    assert kinds.count("N") == 40 and kinds.count("S") == 40, kinds
    assert kinds.count("R") == 1, kinds
    help_at = kinds.index("R")
    assert tw_sent(fakeprov)[help_at][0] == asker
    # k requests had arrived when the webhook was answered; one or two
    # more may have been claimed by then.
    assert help_at <= k + 2, (help_at, k, "".join(kinds))
    assert kinds[help_at + 1:].count("N") + kinds[help_at + 1:].count("S") \
        >= 80 - k - 2


def test_two_alerts_on_one_sender_both_progress(make_daemon, fakeprov):
    d, a, b, _ = two_alerts(make_daemon, fakeprov)
    wait_alert(d, a, "done", timeout=60)
    wait_alert(d, b, "done", timeout=60)
    kinds = kinds_sent(fakeprov)
    # The second alert's first message before the first alert's last.
    last_n = len(kinds) - 1 - kinds[::-1].index("N")
    assert kinds.index("S") < last_n, "".join(kinds)


# ---- bad input ---------------------------------------------------------------

def test_bad_input_is_refused_and_nothing_stored(make_daemon):
    d = make_daemon(merged(ALWAYS, {"http": {"max_body": "4m"}}))
    make_list(d, "town")
    make_list(d, "empty")
    seed(d, "town", [[e164(1), "", "Ann"]])
    base = {"name": "x", "lists": ["town"], "sms_body": "hi " + STOP_LINE}
    cases = [
        (dict(base, lists=["nope"]), "lists[0]: no list named 'nope'"),
        (dict(base, lists=[999]), "lists[0]: no list 999"),
        (dict(base, lists=[]), "lists: "),
        (dict(base, scheduled_at="2020-01-01T00:00:00Z"),
         "scheduled_at: in the past"),
        (dict(base, scheduled_at="tomorrow"), "scheduled_at: "),
        (dict(base, sms_body="x" * (1 << 20)),
         "sms_body: at most 65536 bytes (this one has 1048576)"),
        (dict(base, email_subject="s", email_text="y" * (1 << 20)),
         "email_text: at most 65536 bytes"),
        (dict(base, channels=["fax"]), "channels[0]: "),
        (dict(base, sender="nosuch"), "sender: no SMS sender named"),
        (dict(base, urgent="yes"), "urgent: "),
        (dict(base, validity=5), "validity: "),
        (dict(base, color="red"), "color"),
    ]
    for body, msg in cases:
        r = d.api("POST", "/api/v1/alerts", body, timeout=30)
        assert r.status == 422, (msg, r)
        assert r.error_code() == "invalid_request"
        assert r.error_message().startswith(msg), (msg, r.error_message())
    assert alerts_ids(d) == []
    # Schedule: in the past, or without a time.
    a = sms_alert(d, ["town"])
    r = d.api("POST", "/api/v1/alerts/%d/schedule" % a["id"],
              {"at": "2020-01-01T00:00:00Z"})
    assert r.status == 422 and r.error_message().startswith(
        "at: in the past"), r
    r = d.api("POST", "/api/v1/alerts/%d/schedule" % a["id"], {})
    assert r.status == 422 and r.error_message().startswith("at: required")
    assert alert(d, a["id"])["status"] == "draft"
    r = d.api("POST", "/api/v1/alerts/%d/frobnicate" % a["id"])
    assert r.status == 404, r
    r = d.api("GET", "/api/v1/alerts/99")
    assert r.status == 404, r
    assert alerts_ids(d) == [a["id"]]


def test_member_time_zone_must_be_known(make_daemon):
    d = make_daemon(ALWAYS)
    r = d.api("POST", "/api/v1/members", {"phone": e164(2),
                                          "time_zone": "America/Springfield"})
    assert r.status == 422, r
    assert r.error_message().startswith("time_zone:"), r
    assert d.scalar("SELECT count(*) FROM members") == 0


def test_body_over_http_limit_is_413(make_daemon):
    """With the default [http] max_body (1 MiB) a 1 MB template does not
    fit in the request: 413, and nothing is stored."""
    d = make_daemon(ALWAYS)
    make_list(d, "town")
    r = d.api("POST", "/api/v1/alerts", {"name": "x", "lists": ["town"],
                                         "sms_body": "x" * (1 << 20)},
              timeout=30)
    assert r.status == 413, r
    assert alerts_ids(d) == []


def test_empty_audience_refused(make_daemon):
    """An audience that reaches nobody is refused at create (nothing
    stored), and at send when it emptied since (still a draft)."""
    d = make_daemon(ALWAYS)
    make_list(d, "empty")
    make_list(d, "town")
    r = d.api("POST", "/api/v1/alerts", {"name": "x", "lists": ["empty"],
                                         "sms_body": "hi " + STOP_LINE})
    assert r.status == 422, r
    assert r.error_message() == (
        "lists: the audience reaches nobody on SMS (0 subscribed: 0 opted "
        "out of SMS, 0 of email, 0 bouncing, 0 unconfirmed)"), r
    assert alerts_ids(d) == []
    ids = seed(d, "town", [[e164(1), "", "Ann"]])
    a = sms_alert(d, ["town"])
    r = d.api("POST", "/api/v1/members/%d/optout" % ids[e164(1)],
              {"channel": "sms"})
    assert r.status == 200, r
    pv = action(d, a["id"], "preview")
    assert "the audience reaches nobody" in pv["warnings"]
    r = d.api("POST", "/api/v1/alerts/%d/send" % a["id"])
    assert r.status == 422, r
    # (the send checks only that somebody is reached: counting who was left
    # out would hold the daemon on a large audience)
    assert r.error_message().startswith(
        "lists: the audience reaches nobody now"), r
    assert alert(d, a["id"])["status"] == "draft"


# ---- idempotency -------------------------------------------------------------

def test_idempotency_key_on_create_and_send(make_daemon):
    d = make_daemon(ALWAYS)
    make_list(d, "town")
    people = seed_people(d, "town", 30)
    body = {"name": "x", "lists": ["town"],
            "sms_body": "Hi {{first_name}}. " + STOP_LINE}
    first = create(d, body, headers={"Idempotency-Key": "create-1"})
    assert first["duplicate"] is False
    again = create(d, body, headers={"Idempotency-Key": "create-1"},
                   status=200)
    assert again["duplicate"] is True and again["id"] == first["id"]
    assert alerts_ids(d) == [first["id"]]
    s1 = action(d, first["id"], "send", headers={"Idempotency-Key": "send-1"})
    assert s1["status"] == "sending"
    s2 = action(d, first["id"], "send", headers={"Idempotency-Key": "send-1"})
    assert s2["duplicate"] is True and s2["id"] == first["id"]
    wait_alert(d, first["id"], "done")
    # A retry after the alert finished: still the same answer, no resend.
    s3 = action(d, first["id"], "send", headers={"Idempotency-Key": "send-1"})
    assert s3["duplicate"] is True and s3["status"] == "done"
    wait_for(lambda: settled(d, first["id"]), 10)
    got = outbox_to(d)
    assert max(got.values()) == 1 and len(got) == len(people)
    assert alerts_ids(d) == [first["id"]]


def test_refused_send_does_not_use_up_its_idempotency_key(make_daemon):
    """A send refused with 422 did nothing, so its retry with the same
    Idempotency-Key, once the cause is fixed, must send, not answer
    "duplicate" for a send that never happened."""
    d = make_daemon(ALWAYS)
    make_list(d, "town")
    ids = seed(d, "town", [[e164(1), "", "Ann"]])
    a = sms_alert(d, ["town"])
    base = "/api/v1/members/%d/" % ids[e164(1)]
    assert d.api("POST", base + "optout", {"channel": "sms"}).status == 200
    r = d.api("POST", "/api/v1/alerts/%d/send" % a["id"],
              headers={"Idempotency-Key": "send-7"})
    assert r.status == 422, r
    assert d.api("POST", base + "optin", {"channel": "sms"}).status == 200
    r = d.api("POST", "/api/v1/alerts/%d/send" % a["id"],
              headers={"Idempotency-Key": "send-7"})
    assert r.status == 200, r
    assert r.json.get("duplicate") is not True, r.json
    wait_alert(d, a["id"], "done")
    assert [o["to"] for o in d.outbox()] == [e164(1)]
