"""
test_alerts_list_tz.py - a list's time_zone as the quiet hours fallback
(daemon/quiet.c, queue/store_alerts.c): a member with no time_zone whose
number tells no zone (+800, international freephone: no country, no
area) gets the zone of the alert's list they are on before the
[alerts] time_zone default. Run under libfaketime at test_alerts.py's
FAKE_NOW (on PostgreSQL the server too, test_alerts.FakedStore: else the
held text would go once the real clock passed Tokyo's 08:00), 13:30 UTC
on Monday 2026-12-07: 22:30 in Tokyo (outside 08:00-20:00), 08:30 in
New York (the default zone, inside).
"""

import pytest

from conftest import wait_for
from test_alerts import (FAKE_NOW, STOP_LINE, action, alert,  # noqa: F401
                         alert_messages, faked_cluster, faked_store,
                         sms_alert)

# Tokyo's next 08:00 (no DST in Japan): 2026-12-08 08:00 JST.
TOKYO_8AM = "2026-12-07T23:00:00.000Z"

# (label, phone, time_zone, list)
MEMBERS = [
    # the list's zone: nothing else tells one
    ("free_tokyo", "+80012345678", None, "tokyo"),
    # the default zone (New York): the list has none
    ("free_plain", "+80087654321", None, "plain"),
    # the member's own zone and the number's area come first
    ("own_ny", "+80011112222", "America/New_York", "tokyo"),
    ("nyc", "+12125550123", None, "tokyo"),
]


@pytest.fixture
def tz_daemon(faked_store, make_daemon):
    # On PostgreSQL the server's clock is faked too (FakedStore): the
    # held text must wait for Tokyo's 08:00 by the database's clock.
    d = make_daemon({"alerts": {"quiet_start": "08:00",
                                "quiet_end": "20:00"}}, start=False)
    faked_store.start(d, FAKE_NOW)
    r = d.api("POST", "/api/v1/lists", {"name": "tokyo",
                                        "time_zone": "Asia/Tokyo"})
    assert r.status == 201 and r.json["time_zone"] == "Asia/Tokyo", r
    r = d.api("POST", "/api/v1/lists", {"name": "plain"})
    assert r.status == 201 and r.json["time_zone"] is None, r
    who = {}
    for label, phone, tz, lst in MEMBERS:
        body = {"phone": phone, "first_name": label,
                "subscribe": [{"list": lst}],
                "consent_source": "test form"}
        if tz:
            body["time_zone"] = tz
        r = d.api("POST", "/api/v1/members", body)
        assert r.status == 201, r
        who[label] = r.json["id"]
    return d, who


def test_list_time_zone_defers_member_without_zone(tz_daemon):
    d, who = tz_daemon
    a = sms_alert(d, ["tokyo", "plain"],
                  text="Hi {{first_name}}. " + STOP_LINE)
    q = action(d, a["id"], "preview")["sms"]["quiet_hours"]
    assert (q["sampled"], q["outside_now"]) == (4, 1), q
    action(d, a["id"], "send")
    msgs = wait_for(lambda: (lambda m: m if len(m) == 4 else None)(
        alert_messages(d, a["id"])), 10, what="four SMS made")
    held = msgs[who["free_tokyo"]]
    assert held["status"] == "queued", held
    assert held["not_before"] == TOKYO_8AM, held
    for label in ("free_plain", "own_ny", "nyc"):
        d.wait_status(msgs[who[label]]["id"], "sent")
    wait_for(lambda: alert(d, a["id"])["counts"]["sms"] ==
             {"sent": 3, "deferred": 1}, 10, what="three sent, one deferred")
    assert "+80012345678" not in {o["to"] for o in d.outbox()}


def test_list_without_zone_falls_back_to_default(tz_daemon):
    """The zone cleared through the API: the same member is in New York's
    window (the [alerts] default) and gets the text at once."""
    d, who = tz_daemon
    r = d.api("PATCH", "/api/v1/lists/tokyo", {"time_zone": None})
    assert r.status == 200 and r.json["time_zone"] is None, r
    a = sms_alert(d, ["tokyo"], text="Hi {{first_name}}. " + STOP_LINE)
    action(d, a["id"], "send")
    msgs = wait_for(lambda: (lambda m: m if len(m) == 3 else None)(
        alert_messages(d, a["id"])), 10, what="three SMS made")
    m = d.wait_status(msgs[who["free_tokyo"]]["id"], "sent")
    assert m["not_before"] is None, m
