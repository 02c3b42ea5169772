"""
test_pg_alerts.py - action alerts on a PostgreSQL store (issue 13,
doc/postgresql.md: daemon/alerts_pg.c, queue/store_alerts_pg.c): real
daemons with [store] backend = postgresql on one database of a throwaway
cluster (pgcluster.py). Lists, members and subscriptions are written
with SQL (the lists API is not on PostgreSQL yet).

Covered, on states and counts only (no timing assertions), with one set
of three nodes:
  - the API across nodes: a draft created on A (its Idempotency-Key
    answers the same alert on B; an unknown list and a template error
    are 422s), listed on B, sent on B (the send's key: a retry on A is a
    duplicate), its progress read on A: every reachable member of the
    list gets one personalized message, the opted-out, unsubscribed and
    email-only ones none, and the alert ends done; node C's event
    stream carries its "alert" events, "sending" first, "done" last with
    the final counters; members in a zone
    where it is night get theirs queued for their morning (quiet hours:
    the same C code as on SQLite), then cancelled; a draft changed on C
    and read on A, another deleted on B (409 once it is not a draft); a
    cancelled draft; a preview; a follow_up of a draft reaches nobody;
  - an alert to 3,000 members, paused on A and resumed on B, whose next
    batch is held inside its transaction (the test locks subscriptions,
    which the walk reads): the node whose fan-out connection waits is
    killed with SIGKILL; no other node waits on the alert's row, the
    cursor stays; once the lock goes the others carry on from the
    committed cursor: every reachable member has exactly one message of
    the alert, all sent, and the alert ends done;
  - the guard rails: an alert whose template needs a field half of its
    members lack (since it was made) pauses itself on its
    permanent-failure rate, once across the nodes (one
    alert_guard_tripped line), then is cancelled.
With two more nodes: the preview on B of an alert made on A, the
create's checks of the audience (SQLite's 422s), a follow_up alert
made and sent on B to those who got the alert sent via A and did not
reply, and two alerts sent with one Idempotency-Key on both nodes at
once (one sends, the other is answered 422, five times).
"""

import os
import re
import subprocess
import threading
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from conftest import scaled, wait_for
from test_events import Sse

RATE = 400  # the console sender's rate: the fan-out's pace (its backlog)


def pg_conf(url, node, always=False):
    """A node's config; always: the quiet-hours window open all day, for
    tests of non-urgent alerts that are not about quiet hours (the
    members' +1555 numbers place them in [alerts] time_zone, New York by
    default, where it is night from 01:00 to 13:00 UTC)."""
    alerts = {"guard_min": "50"}
    if always:
        alerts.update(quiet_start="00:00", quiet_end="24:00")
    return {"store": {"backend": "postgresql", "url": url, "node": node},
            "dispatch": {"lease": "2s"},
            "alerts": alerts,
            "sender console": {"rate": str(RATE), "burst": str(RATE)}}


def one(pg, url, sql):
    return pg.psql(url, sql).strip()


def seed(pg, url, name, first, n):
    """List 'name' (sender console) and n members from id 'first' on,
    subscribed by SMS; of them every 20th opted out of SMS, every 20th
    (offset 1) unsubscribed ('left'), every 20th (offset 2) with email
    only and bouncing. Returns the ids that must be reached by SMS."""
    pg.psql(url, """
        INSERT INTO lists (name, sender, created_at, updated_at)
            VALUES ('%(name)s', 'console', 1, 1);
        INSERT INTO members (id, phone, email, first_name, bouncing,
                created_at, updated_at)
            SELECT g, CASE WHEN g %% 20 = 2 THEN NULL
                    ELSE '+1555' || lpad(g::text, 7, '0') END,
                CASE WHEN g %% 20 = 2 THEN 'm' || g || '@example.org' END,
                'M' || g, CASE WHEN g %% 20 = 2 THEN 1 ELSE 0 END, 1, 1
            FROM generate_series(%(first)d, %(last)d) g;
        INSERT INTO subscriptions (member_id, list_id, channel, status,
                source, created_at, updated_at)
            SELECT g, (SELECT id FROM lists WHERE name = '%(name)s'),
                CASE WHEN g %% 20 = 2 THEN 'email' ELSE 'sms' END,
                CASE WHEN g %% 20 = 1 THEN 'left' ELSE 'active' END,
                'test', 1, 1
            FROM generate_series(%(first)d, %(last)d) g;
        INSERT INTO sms_optout (member_id, opted_out_at, source)
            SELECT g, 1, 'test' FROM generate_series(%(first)d, %(last)d) g
            WHERE g %% 20 = 0;
        SELECT setval(pg_get_serial_sequence('members', 'id'),
            (SELECT max(id) FROM members));
    """ % {"name": name, "first": first, "last": first + n - 1})
    return {g for g in range(first, first + n) if g % 20 not in (0, 1, 2)}


def per_member(pg, url, alert):
    """{member id: messages of the alert}."""
    out = pg.psql(url, "SELECT member_id, count(*) FROM messages "
                  "WHERE alert_id = %d GROUP BY member_id" % alert)
    return {int(k): int(v) for k, v in
            (line.split("|") for line in out.splitlines() if line)}


def cursor(pg, url, alert):
    """(cursor, fanout_done) of the alert, as text."""
    return tuple(one(pg, url, "SELECT cursor, fanout_done FROM alerts "
                     "WHERE id = %d" % alert).split("|"))


def alert_status(pg, url, alert):
    return one(pg, url, "SELECT status FROM alerts WHERE id = %d" % alert)


def night_zone():
    """A zone where it is between midnight and 6 now: hours from the
    08:00 opening of the default quiet-hours window."""
    now = datetime.now(timezone.utc)
    for z in ("Pacific/Honolulu", "America/Los_Angeles", "America/New_York",
              "UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo",
              "Pacific/Auckland"):
        if now.astimezone(ZoneInfo(z)).hour < 6:
            return z
    raise AssertionError("no zone at night at %s" % now)


BODY = {"name": "Rally", "lists": ["news"], "urgent": True,
        "sms_body": "Hi {{first_name|friend}}, rally at 5"}


def test_alerts_across_nodes_and_a_node_killed_mid_fanout(make_daemon,
                                                          pgcluster):
    url = pgcluster.create_db("alerts3")
    a, b, c = [make_daemon(pg_conf(url, n), name=n) for n in ("a", "b", "c")]
    small = seed(pgcluster, url, "news", 1, 60)

    # -- the API across nodes ------------------------------------------
    r = a.api("POST", "/api/v1/alerts", BODY,
              headers={"Idempotency-Key": "rally-1"})
    assert r.status == 201, r.body
    aid = r.json["id"]
    assert r.headers["Location"] == "/api/v1/alerts/%d" % aid
    assert r.json["status"] == "draft" and r.json["sender"] == "console"
    assert r.json["audience"]["lists"] == [
        int(one(pgcluster, url, "SELECT id FROM lists WHERE name = 'news'"))]
    r = b.api("POST", "/api/v1/alerts", BODY,
              headers={"Idempotency-Key": "rally-1"})
    assert r.status == 200 and r.json["id"] == aid, r.body
    assert r.json["duplicate"] is True
    assert one(pgcluster, url, "SELECT count(*) FROM alerts") == "1"
    r = b.api("POST", "/api/v1/alerts", dict(BODY, lists=["nope"]))
    assert r.status == 422 and "no list named 'nope'" in \
        r.json["error"]["message"], r.body
    r = b.api("POST", "/api/v1/alerts", dict(BODY, sms_body="{{oops"))
    assert r.status == 422 and "sms_body" in r.json["error"]["message"]
    r = b.api("GET", "/api/v1/alerts")
    assert r.status == 200 and [x["id"] for x in r.json["alerts"]] == [aid]
    r = c.api("POST", "/api/v1/alerts/%d/pause" % aid)
    assert r.status == 409, r.body  # a draft cannot pause
    r = c.api("POST", "/api/v1/alerts/%d/preview" % aid, {})
    assert r.status == 200, r.body
    assert r.json["audience"]["sms"] == len(small), r.json
    # A draft changed on C, read on A; another deleted on B.
    r = c.api("PATCH", "/api/v1/alerts/%d" % aid,
              dict(BODY, sms_body="Hi {{first_name|friend}}, rally at 6"))
    assert r.status == 200, r.body
    r = a.api("GET", "/api/v1/alerts/%d" % aid)
    assert r.json["sms_body"] == "Hi {{first_name|friend}}, rally at 6"
    r = c.api("PATCH", "/api/v1/alerts/%d" % aid, dict(BODY, lists=["x"]))
    assert r.status == 422, r.body
    r = a.api("POST", "/api/v1/alerts", dict(BODY, name="Gone"))
    assert r.status == 201, r.body
    gone = r.json["id"]
    assert b.api("DELETE", "/api/v1/alerts/%d" % gone).status == 204
    assert a.api("GET", "/api/v1/alerts/%d" % gone).status == 404
    assert c.api("DELETE", "/api/v1/alerts/%d" % gone).status == 409
    # A follow-up of a draft reaches nobody yet (as on SQLite).
    r = c.api("POST", "/api/v1/alerts",
              dict(BODY, follow_up={"alert": aid, "who": "missed"}))
    assert r.status == 422 and "reaches nobody" in \
        r.json["error"]["message"], r.body

    stream = Sse(c)  # the "alert" events, whoever fans out
    assert stream.status == 200
    r = b.api("POST", "/api/v1/alerts/%d/send" % aid,
              headers={"Idempotency-Key": "send-rally-1"})
    assert r.status == 200 and r.json["status"] == "sending", r.body
    r = a.api("POST", "/api/v1/alerts/%d/send" % aid,
              headers={"Idempotency-Key": "send-rally-1"})
    assert r.status == 200 and r.json["duplicate"] is True, r.body
    wait_for(lambda: alert_status(pgcluster, url, aid) == "done",
             scaled(60), what="the small alert done")
    got = per_member(pgcluster, url, aid)
    assert set(got) == small and set(got.values()) == {1}, got
    r = a.api("GET", "/api/v1/alerts/%d" % aid)
    assert r.status == 200 and r.json["status"] == "done", r.body
    assert r.json["fanout_done"] is True
    assert r.json["audience_size"] == {"sms": len(small), "email": 0}
    assert r.json["counts"]["sms"] == {"sent": len(small)}, r.json["counts"]
    assert r.json["counts"]["email"] == {}
    body = one(pgcluster, url, "SELECT body FROM messages WHERE alert_id = "
               "%d AND member_id = 3" % aid)
    assert body == "Hi M3, rally at 6"
    r = b.api("PATCH", "/api/v1/alerts/%d" % aid, BODY)
    assert r.status == 409, r.body  # no longer a draft
    statuses = []
    while not statuses or statuses[-1] != "done":
        e = stream.event("alert", timeout=30)
        assert e["data"]["id"] == aid, e
        statuses.append(e["data"]["status"])
    assert statuses[0] == "sending", statuses
    assert e["data"]["counters"]["sms"] == {"sent": len(small)}, e
    stream.close()
    assert b.api("DELETE", "/api/v1/alerts/%d" % aid).status == 409
    # Quiet hours, as on SQLite (the same C code): members in a zone
    # where it is night now get their SMS queued for their morning.
    zone = night_zone()
    pgcluster.psql(url, "UPDATE members SET time_zone = '%s' WHERE id <= 60"
                   % zone)
    r = b.api("POST", "/api/v1/alerts", dict(BODY, name="Night",
                                              urgent=False))
    assert r.status == 201, r.body
    night = r.json["id"]
    t0 = int(time.time() * 1000)
    assert a.api("POST", "/api/v1/alerts/%d/send" % night).status == 200
    wait_for(lambda: cursor(pgcluster, url, night)[1] == "1", scaled(60),
             what="the night alert fanned out")
    assert per_member(pgcluster, url, night) == {m: 1 for m in small}
    held = one(pgcluster, url, "SELECT count(*) FROM messages WHERE "
               "alert_id = %d AND status = 'queued' AND not_before > %d "
               "AND next_attempt_at = not_before" % (night, t0 + 3600000))
    assert held == str(len(small)), (zone, held)
    r = c.api("POST", "/api/v1/alerts/%d/cancel" % night)
    assert r.status == 200 and r.json["status"] == "cancelled", r.body
    assert r.json["counts"]["sms"] == {"cancelled": len(small)}, r.json
    pgcluster.psql(url, "UPDATE members SET time_zone = NULL")
    # A cancelled draft; an unknown alert.
    r = c.api("POST", "/api/v1/alerts", dict(BODY, name="Never"))
    assert r.status == 201, r.body
    never = r.json["id"]
    r = a.api("POST", "/api/v1/alerts/%d/cancel" % never)
    assert r.status == 200 and r.json["status"] == "cancelled", r.body
    assert a.api("GET", "/api/v1/alerts/%d" % (never + 99)).status == 404

    # -- a node killed mid fan-out ---------------------------------------
    big = seed(pgcluster, url, "big", 1001, 3000)
    r = c.api("POST", "/api/v1/alerts", dict(BODY, name="Big",
                                              lists=["big"]))
    assert r.status == 201, r.body
    bid = r.json["id"]
    r = c.api("POST", "/api/v1/alerts/%d/send" % bid)
    assert r.status == 200, r.body
    # Pause and resume on other nodes while it fans out.
    assert a.api("POST", "/api/v1/alerts/%d/pause" % bid).status == 200
    assert alert_status(pgcluster, url, bid) == "paused"
    r = b.api("POST", "/api/v1/alerts/%d/resume" % bid)
    assert r.status == 200 and r.json["status"] == "sending", r.body
    batch = re.compile(r"alert_fanout_batch alert=%d node=(\w+) "
                       r"members=[1-9]" % bid)
    wait_for(lambda: int(cursor(pgcluster, url, bid)[0]) > 1000,
             scaled(60), what="the big alert's first batch")
    # Hold the next batch inside its transaction: its walk reads
    # subscriptions, which a session of the test locks. The node whose
    # fan-out connection then waits on that lock holds the alert's row.
    locker = subprocess.Popen(
        [pgcluster.psql_bin, "-X", "-q", "-c", "BEGIN", "-c",
         "LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE", "-c",
         "SELECT pg_sleep(600)", url],
        env=dict(os.environ, PGAPPNAME="od-test-locker"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        app = wait_for(lambda: one(pgcluster, url, """
            SELECT application_name FROM pg_stat_activity
            WHERE application_name LIKE 'outreachd-alerts:%%'
            AND wait_event_type = 'Lock' AND query LIKE 'SELECT id, sms_ok, %%'
            """), scaled(60), what="a node's batch waiting on the lock")
        assert "\n" not in app, "two nodes walk the alert at once: " + app
        victim = {"outreachd-alerts:" + d.dir.name: d for d in (a, b, c)}[app]
        held = cursor(pgcluster, url, bid)
        assert held[1] == "0", held
        victim.kill9()
        # Nothing of its batch is committed; no other node waits on the
        # alert's row (they skip it), only on the test's lock.
        assert cursor(pgcluster, url, bid) == held
        assert one(pgcluster, url, """
            SELECT count(*) FROM pg_stat_activity
            WHERE application_name LIKE 'outreachd-alerts:%%'
            AND wait_event_type = 'Lock'
            AND query NOT LIKE 'SELECT id, sms_ok, %%'""") == "0"
    finally:
        pgcluster.psql(url, "SELECT pg_terminate_backend(pid) FROM "
                       "pg_stat_activity WHERE application_name = "
                       "'od-test-locker'")
        locker.wait(scaled(30))
    wait_for(lambda: alert_status(pgcluster, url, bid) == "done",
             scaled(120), what="the big alert done without the victim")
    got = per_member(pgcluster, url, bid)
    assert set(got) == big, (len(got), len(big),
                             sorted(set(got) ^ big)[:10])
    assert set(got.values()) == {1}, {k: v for k, v in got.items() if v > 1}
    others = [d for d in (a, b, c) if d is not victim]
    assert any(batch.search(d.log()) for d in others)
    assert one(pgcluster, url, "SELECT count(*) FROM messages WHERE "
               "alert_id = %d AND status NOT IN ('sent')" % bid) == "0"

    # -- the guard rails ---------------------------------------------------
    # Half the members lack the field the template needs without a
    # fallback: their messages fail, and the failure rate trips the rail
    # on whichever node reads the figures first; the alert pauses once.
    # (The create counts those members, as on SQLite: the field goes
    # from half of them once the alert is made.)
    ward = seed(pgcluster, url, "ward", 5001, 2000)
    pgcluster.psql(url, "UPDATE members SET attributes = '{\"ward\": 5}' "
                   "WHERE id BETWEEN 5001 AND 7000")
    for d in others:
        d.expect_log(r"alert_guard_tripped alert=")
    x, y = others  # the victim is gone
    r = x.api("POST", "/api/v1/alerts",
              dict(BODY, name="Ward", lists=["ward"],
                   sms_body="Ward {{attr.ward}} meets at 6"))
    assert r.status == 201, r.body
    wid = r.json["id"]
    pgcluster.psql(url, "UPDATE members SET attributes = '{}' "
                   "WHERE id BETWEEN 5001 AND 7000 AND id % 2 = 1")
    assert y.api("POST", "/api/v1/alerts/%d/send" % wid).status == 200
    wait_for(lambda: alert_status(pgcluster, url, wid) == "paused",
             scaled(60), what="the guard rail pausing the alert")
    reason = one(pgcluster, url, "SELECT pause_reason FROM alerts WHERE "
                 "id = %d" % wid)
    assert reason.startswith("permanent-failure rate "), reason
    assert "max_failure_rate" in reason, reason
    tripped = [d for d in others
               if "alert_guard_tripped alert=%d " % wid in d.log()]
    assert len(tripped) == 1, [d.dir.name for d in tripped]
    got = per_member(pgcluster, url, wid)
    assert set(got) <= ward and set(got.values()) == {1}
    failed = one(pgcluster, url, "SELECT count(*) FROM messages WHERE "
                 "alert_id = %d AND status = 'failed' AND error_text "
                 "LIKE '%%ward%%'" % wid)
    assert int(failed) > 0, failed
    r = x.api("POST", "/api/v1/alerts/%d/cancel" % wid)
    assert r.status == 200 and r.json["status"] == "cancelled", r.body



def test_preview_checks_and_follow_up_across_nodes(make_daemon, pgcluster):
    """The preview of an alert made on A, read on B; the create's checks
    of the audience (nobody reached, a field members lack) on either
    node; a follow_up alert made and sent on B to the members who got
    the alert sent via A and did not reply (three replied, through B's
    console webhook)."""
    url = pgcluster.create_db("alerts_fu")
    a, b = [make_daemon(pg_conf(url, n, always=True), name=n)
            for n in ("a", "b")]
    small = seed(pgcluster, url, "news", 1, 40)
    pgcluster.psql(url, "INSERT INTO lists (name, created_at, updated_at) "
                   "VALUES ('empty', 1, 1)")
    body = dict(BODY, urgent=False, sms_body="Hi {{first_name}}, rally "
                "at 5. Reply STOP to opt out")
    r = a.api("POST", "/api/v1/alerts", body)
    assert r.status == 201, r.body
    aid = r.json["id"]

    # -- the preview, on the other node ----------------------------------
    r = b.api("POST", "/api/v1/alerts/%d/preview" % aid)
    assert r.status == 200, r.body
    pv = r.json
    # 40 members: 2 left the list, 2 opted out of SMS, 2 email only
    assert pv["alert"] == aid
    assert pv["audience"] == {
        "matched": 38, "sms": len(small), "email": 0, "both": 0,
        "excluded": {"sms_opted_out": 2, "email_opted_out": 0,
                     "email_bouncing": 0, "unconfirmed": 0}}, pv
    assert pv["missing_fields"] == [] and pv["warnings"] == [], pv
    sms = pv["sms"]
    assert [x["member"] for x in sms["samples"]] == [3, 4, 5], sms
    assert sms["samples"][0]["text"] == \
        "Hi M3, rally at 5. Reply STOP to opt out"
    assert sms["encoding"] == "gsm7" and sms["segments"] == 1, sms
    assert sms["total_segments"] == len(small) and \
        sms["sender"] == "console", sms
    assert sms["quiet_hours"]["sampled"] == len(small), sms
    assert b.api("POST", "/api/v1/alerts/%d/preview" % (aid + 99)).status \
        == 404

    # -- the create's checks of the audience ------------------------------
    r = b.api("POST", "/api/v1/alerts", dict(body, lists=["empty"]))
    assert r.status == 422, r.body
    assert r.json["error"]["message"] == (
        "lists: the audience reaches nobody on SMS (0 subscribed: 0 "
        "opted out of SMS, 0 of email, 0 bouncing, 0 unconfirmed)"), r.body
    pgcluster.psql(url, "UPDATE members SET attributes = '{\"ward\": 5}' "
                   "WHERE id <= 20")
    r = a.api("POST", "/api/v1/alerts",
              dict(body, sms_body="Ward {{attr.ward}} meets at 6"))
    assert r.status == 422, r.body
    missing = len([m for m in small if m > 20])
    assert r.json["error"]["message"] == (
        "sms_body: %d members of the audience have no attr.ward; give a "
        "fallback such as {{attr.ward|friend}}" % missing), r.body
    r = b.api("POST", "/api/v1/alerts", dict(
        body, follow_up={"alert": aid + 99, "who": "no_reply"}))
    assert r.status == 422 and r.json["error"]["message"] == \
        "follow_up.alert: no alert %d" % (aid + 99), r.body
    assert one(pgcluster, url, "SELECT count(*) FROM alerts") == "1"

    # -- a follow-up, on B, of the alert sent via A ------------------------
    assert a.api("POST", "/api/v1/alerts/%d/send" % aid).status == 200
    wait_for(lambda: alert_status(pgcluster, url, aid) == "done",
             scaled(60), what="the first alert done")
    replied = {3, 4, 5}
    for m in sorted(replied):
        r = b.api("POST", "/webhooks/console/inbound",
                  raw=("From=%%2B1555%07d&Body=thanks" % m).encode(),
                  token=None, headers={
                      "Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 200, r.body
    r = b.api("POST", "/api/v1/alerts", dict(
        body, name="Reminder", sms_body="Reminder, {{first_name}}: 5 pm",
        follow_up={"alert": aid, "who": "no_reply"}))
    assert r.status == 201, r.body
    fid = r.json["id"]
    assert r.json["audience"]["follow_up"] == {"alert": aid,
                                              "who": "no_reply"}
    r = a.api("POST", "/api/v1/alerts/%d/preview" % fid)
    assert r.status == 200, r.body
    assert r.json["audience"]["sms"] == len(small - replied), r.json
    r = b.api("POST", "/api/v1/alerts", dict(
        body, name="Missed", follow_up={"alert": aid, "who": "missed"}))
    assert r.status == 422 and "reaches nobody" in \
        r.json["error"]["message"], r.body  # every message was sent
    assert b.api("POST", "/api/v1/alerts/%d/send" % fid).status == 200
    wait_for(lambda: alert_status(pgcluster, url, fid) == "done",
             scaled(60), what="the follow-up done")
    got = per_member(pgcluster, url, fid)
    assert set(got) == small - replied and set(got.values()) == {1}, got

    # -- one send key for two alerts, on two nodes at once -----------------
    # One sends, the other is told whose key it is (a 422, as on SQLite),
    # never a failed group (503).
    for k in range(5):
        ids = []
        for node in (a, b):
            r = node.api("POST", "/api/v1/alerts", dict(body, name="K%d" % k))
            assert r.status == 201, r.body
            ids.append(r.json["id"])
        res = [None, None]

        def send(i, node):
            res[i] = node.api("POST", "/api/v1/alerts/%d/send" % ids[i],
                              headers={"Idempotency-Key": "same-%d" % k})
        threads = [threading.Thread(target=send, args=(i, node))
                   for i, node in enumerate((a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status for r in res) == [200, 422], \
            [(r.status, r.body) for r in res]
        won = 0 if res[0].status == 200 else 1
        assert res[1 - won].json["error"]["message"] == (
            "Idempotency-Key: already used to send alert %d; use a new "
            "key for this one" % ids[won]), res[1 - won].body
        assert alert_status(pgcluster, url, ids[1 - won]) == "draft"
        r = a.api("POST", "/api/v1/alerts/%d/cancel" % ids[won])
        assert r.status == 200, r.body
