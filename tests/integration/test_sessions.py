"""
test_sessions.py - GET /api/v1/sessions and DELETE /api/v1/sessions/{id}
(doc/staff.md): a member lists and ends its own live web sessions, an
admin anyone's; another member's session is 404 to an organizer; a
revoked session is 401 at once; CSRF on DELETE through a session; the
audit row; outreachctl session list and revoke.
"""

import json
import subprocess

from conftest import OUTREACHCTL, TOKEN, scaled
from staffutil import add_staff, login, new_token, sha256_hex


def ids(r):
    return sorted(x["id"] for x in r.json["sessions"])


def test_member_lists_its_own_sessions_with_current(daemon):
    olga = add_staff(daemon)
    add_staff(daemon, name="Oscar", email="oscar@example.org")
    a, b = login(daemon), login(daemon)
    oscar = login(daemon, email="oscar@example.org")
    r = a.api("GET", "/api/v1/sessions")
    assert r.status == 200, r
    rows = r.json["sessions"]
    assert len(rows) == 2, rows
    assert [x["staff"] for x in rows] == [
        {"id": olga["id"], "name": "Olga Organizer"}] * 2
    cur = [x for x in rows if x["current"]]
    assert len(cur) == 1
    mine = daemon.scalar("SELECT id FROM sessions WHERE id_hash = ?",
                         (sha256_hex(a.cookie),))
    assert cur[0]["id"] == mine
    for x in rows:
        assert set(x) == {"id", "staff", "via", "created_at", "last_seen_at",
                          "expires_at", "peer", "current"}, x
        assert x["peer"] == "127.0.0.1"
        assert x["via"] == "password"
        assert x["created_at"].endswith("Z")
        assert x["expires_at"] > x["created_at"]
    # the other session sees the same two, itself current
    r = b.api("GET", "/api/v1/sessions")
    assert ids(r) == sorted(x["id"] for x in rows)
    assert [x["id"] for x in r.json["sessions"] if x["current"]] != [mine]
    # never the hash
    for s in (a, b, oscar):
        assert sha256_hex(s.cookie) not in r.body.decode()
    # an organizer asking for someone else's gets nothing
    r = a.api("GET", "/api/v1/sessions?staff_id=%d" % oscar.staff["id"])
    assert r.status == 200 and r.json["sessions"] == [], r
    r = a.api("GET", "/api/v1/sessions?staff_id=x")
    assert r.status == 422, r


def test_admin_sees_all_and_filters(daemon):
    olga = add_staff(daemon)
    login(daemon)
    login(daemon, token=TOKEN)  # staff #1, by token
    r = daemon.api("GET", "/api/v1/sessions")
    assert r.status == 200, r
    rows = r.json["sessions"]
    assert sorted(x["staff"]["id"] for x in rows) == [1, olga["id"]]
    assert not any(x["current"] for x in rows)  # a bearer token
    assert {x["via"] for x in rows} == {"password", "token"}
    r = daemon.api("GET", "/api/v1/sessions?staff_id=%d" % olga["id"])
    assert [x["staff"]["id"] for x in r.json["sessions"]] == [olga["id"]]
    # an organizer's token sees only its own
    _, tok = new_token(daemon, staff_id=olga["id"])
    r = daemon.api("GET", "/api/v1/sessions", token=tok)
    assert [x["staff"]["id"] for x in r.json["sessions"]] == [olga["id"]]


def test_revoked_and_ended_sessions_are_not_listed(daemon):
    add_staff(daemon)
    a, b = login(daemon), login(daemon)
    assert b.api("POST", "/api/v1/logout").status == 204
    r = a.api("GET", "/api/v1/sessions")
    assert len(r.json["sessions"]) == 1 and r.json["sessions"][0]["current"]


def test_revoke_own_session_then_401(daemon):
    add_staff(daemon)
    laptop, phone = login(daemon), login(daemon)
    sid = daemon.scalar("SELECT id FROM sessions WHERE id_hash = ?",
                        (sha256_hex(laptop.cookie),))
    # CSRF is needed through a session
    r = phone.api("DELETE", "/api/v1/sessions/%d" % sid, csrf=False)
    assert r.status == 403 and r.error_code() == "csrf", r
    r = phone.api("DELETE", "/api/v1/sessions/%d" % sid, csrf="0" * 64)
    assert r.status == 403 and r.error_code() == "csrf", r
    assert laptop.api("GET", "/api/v1/me").status == 200
    r = phone.api("DELETE", "/api/v1/sessions/%d" % sid)
    assert r.status == 204, r
    r = laptop.api("GET", "/api/v1/me")
    assert r.status == 401, r
    assert phone.api("GET", "/api/v1/me").status == 200
    assert daemon.scalar("SELECT revoked_at IS NOT NULL FROM sessions "
                         "WHERE id = ?", (sid,)) == 1
    # gone: a second revoke is 404
    r = phone.api("DELETE", "/api/v1/sessions/%d" % sid)
    assert r.status == 404 and r.error_code() == "not_found", r
    # the audit row names who ended which session
    row = daemon.query("SELECT staff_id, action, target, detail FROM audit "
                       "WHERE action = 'DELETE /api/v1/sessions/{id}'")
    assert len(row) == 1, [tuple(x) for x in row]
    assert row[0]["staff_id"] == phone.staff["id"]
    assert row[0]["target"] == "/api/v1/sessions/%d" % sid
    d = json.loads(row[0]["detail"])
    assert d["status"] == 204 and d["via"] == "session"


def test_organizer_cannot_revoke_anothers_session(daemon):
    add_staff(daemon)
    add_staff(daemon, name="Oscar", email="oscar@example.org")
    olga = login(daemon)
    oscar = login(daemon, email="oscar@example.org")
    sid = daemon.scalar("SELECT id FROM sessions WHERE id_hash = ?",
                        (sha256_hex(oscar.cookie),))
    r = olga.api("DELETE", "/api/v1/sessions/%d" % sid)
    assert r.status == 404 and r.error_code() == "not_found", r
    # the same answer as an id that does not exist
    for bad in ("999999", "0", "x"):
        r = olga.api("DELETE", "/api/v1/sessions/" + bad)
        assert r.status == 404 and r.error_code() == "not_found", (bad, r)
    assert oscar.api("GET", "/api/v1/me").status == 200
    assert daemon.scalar("SELECT count(*) FROM audit WHERE action = "
                         "'DELETE /api/v1/sessions/{id}'") == 0


def test_admin_revokes_a_members_session(daemon):
    add_staff(daemon)
    olga = login(daemon)
    sid = daemon.scalar("SELECT id FROM sessions")
    r = daemon.api("DELETE", "/api/v1/sessions/%d" % sid)
    assert r.status == 204, r
    assert olga.api("GET", "/api/v1/me").status == 401
    assert daemon.api("GET", "/api/v1/sessions").json["sessions"] == []
    row = daemon.query("SELECT staff_id, target FROM audit WHERE action = "
                       "'DELETE /api/v1/sessions/{id}'")
    assert [tuple(x) for x in row] == [(1, "/api/v1/sessions/%d" % sid)]


def ctl(daemon, *args):
    return subprocess.run(
        [str(OUTREACHCTL), "-u", daemon.url(), "-t", TOKEN, *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=scaled(20))


def test_outreachctl_session_list_and_revoke(daemon):
    add_staff(daemon)
    olga = login(daemon)
    sid = daemon.scalar("SELECT id FROM sessions")
    r = ctl(daemon, "session", "list")
    assert r.returncode == 0, r
    assert "Olga Organizer" in r.stdout and "127.0.0.1" in r.stdout
    assert r.stdout.split("\n")[0].split()[0] == "ID"
    r = ctl(daemon, "session", "list", "--json")
    assert r.returncode == 0, r
    assert [x["id"] for x in json.loads(r.stdout)["sessions"]] == [sid]
    r = ctl(daemon, "session", "list", "--json", "--staff", "1")
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["sessions"] == []
    r = ctl(daemon, "session", "list", "--staff", "x")
    assert r.returncode == 2, r
    r = ctl(daemon, "session", "revoke", str(sid))
    assert r.returncode == 0, r
    assert r.stdout.strip() == "session %d revoked" % sid
    assert olga.api("GET", "/api/v1/me").status == 401
    r = ctl(daemon, "session", "revoke", str(sid))
    assert r.returncode == 1, r
    r = ctl(daemon, "session", "revoke")
    assert r.returncode == 2, r
    r = ctl(daemon, "session", "frob")
    assert r.returncode == 2, r
