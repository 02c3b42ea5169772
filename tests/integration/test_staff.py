"""
test_staff.py - staff accounts, roles, API tokens and the audit log
(doc/staff.md): admins manage staff, organizers get 403 there and manage
only their own tokens, the last admin stays, and every change made
through /api/v1 leaves an audit row naming who made it.
"""

import json
import sqlite3
import subprocess

import pytest

from conftest import OUTREACHCTL, TOKEN, scaled
from staffutil import PASSWORD, add_staff, login, new_token, sha256_hex


def test_admin_manages_staff(daemon):
    r = daemon.api("POST", "/api/v1/staff",
                   {"name": "Olga", "email": "Olga@Example.ORG",
                    "role": "organizer", "password": PASSWORD})
    assert r.status == 201, r
    s = r.json
    assert r.headers["Location"] == "/api/v1/staff/%d" % s["id"]
    assert s["email"] == "olga@example.org"
    assert s["role"] == "organizer" and s["disabled"] is False
    assert s["created_at"].endswith("Z")
    assert "password" not in s and "password_hash" not in s
    r = daemon.api("GET", "/api/v1/staff")
    assert r.status == 200, r
    assert [x["id"] for x in r.json["staff"]] == [1, s["id"]]
    r = daemon.api("PATCH", "/api/v1/staff/%d" % s["id"],
                   {"name": "Olga K.", "role": "admin"})
    assert r.status == 200, r
    assert r.json["name"] == "Olga K." and r.json["role"] == "admin"
    assert daemon.api("GET", "/api/v1/staff/%d" % s["id"]).json["name"] == \
        "Olga K."
    # a new password works, the old one no longer does
    r = daemon.api("PATCH", "/api/v1/staff/%d" % s["id"],
                   {"password": "another fine password"})
    assert r.status == 200, r
    login(daemon, password="another fine password")
    r = daemon.api("POST", "/api/v1/login",
                   {"email": "olga@example.org", "password": PASSWORD},
                   token=None)
    assert r.status == 401, r


def test_staff_input_is_checked(daemon):
    add_staff(daemon)
    bad = [
        ({"name": "A", "email": "olga@example.org", "role": "organizer"},
         409),
        ({"name": "A", "email": "a@example.org", "role": "boss"}, 422),
        ({"name": "A", "email": "not an email", "role": "admin"}, 422),
        ({"name": "", "email": "a@example.org", "role": "admin"}, 422),
        ({"name": "A\nB", "email": "a@example.org", "role": "admin"}, 422),
        ({"email": "a@example.org", "role": "admin"}, 422),
        ({"name": "A", "email": "a@example.org", "role": "admin",
          "password": "short"}, 422),
        ({"name": "A", "email": "a@example.org", "role": "admin",
          "colour": "red"}, 422),
        # jansson refuses NUL in a string: never a cut password
        ({"name": "A", "email": "a@example.org", "role": "admin",
          "password": "long enough\u0000but cut"}, 400),
    ]
    for body, status in bad:
        r = daemon.api("POST", "/api/v1/staff", body)
        assert r.status == status, (body, r)
    assert daemon.scalar("SELECT count(*) FROM staff") == 2
    for body in ({"disabled": "yes"}, {"role": "boss"}, {"password": 5},
                 {"email": "x@example.org"}):
        r = daemon.api("PATCH", "/api/v1/staff/2", body)
        assert r.status == 422, (body, r)
    assert daemon.api("PATCH", "/api/v1/staff/99", {"name": "X"}).status == \
        404
    assert daemon.api("GET", "/api/v1/staff/abc").status == 404


def test_organizer_cannot_manage_staff(daemon):
    s = add_staff(daemon)
    _, tok = new_token(daemon, staff_id=s["id"])
    r = daemon.api("POST", "/api/v1/staff",
                   {"name": "Eve", "email": "eve@example.org",
                    "role": "admin"}, token=tok)
    assert r.status == 403 and r.error_code() == "forbidden", r
    r = daemon.api("PATCH", "/api/v1/staff/%d" % s["id"], {"role": "admin"},
                   token=tok)
    assert r.status == 403, r
    r = daemon.api("PATCH", "/api/v1/staff/1", {"disabled": True}, token=tok)
    assert r.status == 403, r
    assert daemon.api("GET", "/api/v1/audit", token=tok).status == 403
    assert daemon.api("GET", "/api/v1/staff/1", token=tok).status == 403
    assert daemon.scalar("SELECT count(*) FROM staff") == 2
    assert daemon.scalar("SELECT role FROM staff WHERE id = ?",
                         (s["id"],)) == "organizer"
    # what an organizer may see: names for the assign menu, itself
    r = daemon.api("GET", "/api/v1/staff", token=tok)
    assert r.status == 200, r
    assert r.json["staff"][0] == {"id": 1, "name": "Administrator",
                                  "role": "admin", "disabled": False}
    r = daemon.api("GET", "/api/v1/staff/%d" % s["id"], token=tok)
    assert r.status == 200 and r.json["email"] == "olga@example.org", r
    # the same through a session
    sess = login(daemon)
    r = sess.api("POST", "/api/v1/staff",
                 {"name": "Eve", "email": "eve@example.org", "role": "admin"})
    assert r.status == 403, r


def test_last_admin_stays(daemon):
    r = daemon.api("PATCH", "/api/v1/staff/1", {"disabled": True})
    assert r.status == 409 and r.error_code() == "conflict", r
    r = daemon.api("PATCH", "/api/v1/staff/1", {"role": "organizer"})
    assert r.status == 409, r
    s = add_staff(daemon, role="admin")
    _, tok = new_token(daemon, staff_id=s["id"])
    r = daemon.api("PATCH", "/api/v1/staff/1", {"role": "organizer"})
    assert r.status == 200, r
    assert daemon.api("GET", "/api/v1/audit").status == 403
    r = daemon.api("PATCH", "/api/v1/staff/%d" % s["id"], {"disabled": True},
                   token=tok)
    assert r.status == 409, r


def test_tokens(daemon):
    o = add_staff(daemon)
    a = add_staff(daemon, name="Ann", email="ann@example.org")
    r = daemon.api("POST", "/api/v1/tokens",
                   {"name": "laptop", "staff_id": o["id"]})
    assert r.status == 201, r
    t = r.json
    assert t["staff_id"] == o["id"] and t["name"] == "laptop"
    assert len(t["token"]) == 64 and t["created_at"].endswith("Z")
    assert daemon.scalar("SELECT token_hash FROM api_tokens WHERE id = ?",
                         (t["id"],)) == sha256_hex(t["token"])
    tok = t["token"]
    # an organizer makes its own tokens only
    r = daemon.api("POST", "/api/v1/tokens", {"name": "mine"}, token=tok)
    assert r.status == 201 and r.json["staff_id"] == o["id"], r
    own = r.json["id"]
    r = daemon.api("POST", "/api/v1/tokens", {"staff_id": a["id"]},
                   token=tok)
    assert r.status == 403, r
    _, ann_tok = new_token(daemon, staff_id=a["id"])
    ann_tid = daemon.scalar("SELECT max(id) FROM api_tokens")
    # lists: its own for an organizer, all for an admin; never the token
    r = daemon.api("GET", "/api/v1/tokens", token=tok)
    assert r.status == 200, r
    assert sorted(x["id"] for x in r.json["tokens"]) == [t["id"], own]
    assert all("token" not in x for x in r.json["tokens"])
    r = daemon.api("GET", "/api/v1/tokens")
    assert len(r.json["tokens"]) == 4
    assert r.json["tokens"][-1]["daemon"] is True
    # revoke: own yes, another's no
    r = daemon.api("DELETE", "/api/v1/tokens/%d" % ann_tid, token=tok)
    assert r.status == 403, r
    assert daemon.api("GET", "/api/v1/me", token=ann_tok).status == 200
    r = daemon.api("DELETE", "/api/v1/tokens/%d" % own, token=tok)
    assert r.status == 204, r
    r = daemon.api("GET", "/api/v1/tokens", token=tok)
    revoked = [x for x in r.json["tokens"] if x["id"] == own][0]
    assert revoked["revoked_at"] is not None
    assert daemon.api("DELETE", "/api/v1/tokens/999").status == 404
    # tokens for a disabled member are refused
    daemon.api("PATCH", "/api/v1/staff/%d" % a["id"], {"disabled": True})
    r = daemon.api("POST", "/api/v1/tokens", {"staff_id": a["id"]})
    assert r.status == 422, r


def test_audit_records_who_changed_what(daemon):
    o = add_staff(daemon)
    _, tok = new_token(daemon, staff_id=o["id"])
    r = daemon.api("POST", "/api/v1/members", {"phone": "+12025550150"},
                   token=tok)
    assert r.status == 201, r
    mid = r.json["id"]
    sess = login(daemon)
    r = sess.api("PATCH", "/api/v1/members/%d" % mid, {"first_name": "Ana"})
    assert r.status == 200, r
    # not recorded: reads, failures, refusals
    daemon.api("GET", "/api/v1/status", token=tok)
    daemon.api("POST", "/api/v1/members", {"phone": "nope"}, token=tok)
    daemon.api("POST", "/api/v1/staff", {"name": "X"}, token=tok)
    r = daemon.api("GET", "/api/v1/audit")
    assert r.status == 200, r
    rows = r.json["audit"]
    got = [(x["staff"]["id"] if x["staff"] else None, x["action"],
            x["target"], x["detail"]["status"]) for x in rows]
    assert got == [
        (o["id"], "PATCH /api/v1/members/{id}", "/api/v1/members/%d" % mid,
         200),
        (o["id"], "POST /api/v1/login", "/api/v1/login", 200),
        (o["id"], "POST /api/v1/members", "/api/v1/members", 201),
        (1, "POST /api/v1/tokens", "/api/v1/tokens", 201),
        (1, "POST /api/v1/staff", "/api/v1/staff", 201),
    ], got
    assert rows[0]["detail"]["via"] == "session"
    assert rows[2]["detail"]["via"] == "token"
    assert rows[4]["detail"]["location"] == "/api/v1/staff/%d" % o["id"]
    assert rows[0]["staff"]["name"] == "Olga Organizer"
    assert r.json["next"] is None
    # never a secret
    text = r.text + str([tuple(x) for x in daemon.query(
        "SELECT * FROM audit")])
    for secret in (PASSWORD, tok, sess.cookie, sess.csrf, TOKEN):
        assert secret not in text
    # pages and the filter
    r = daemon.api("GET", "/api/v1/audit?limit=2")
    assert [x["id"] for x in r.json["audit"]] == [rows[0]["id"],
                                                 rows[1]["id"]]
    nxt = r.json["next"]
    assert nxt == rows[1]["id"]
    r = daemon.api("GET", "/api/v1/audit?limit=2&after=%d" % nxt)
    assert [x["id"] for x in r.json["audit"]] == [rows[2]["id"],
                                                 rows[3]["id"]]
    r = daemon.api("GET", "/api/v1/audit?staff_id=1")
    assert {x["staff"]["id"] for x in r.json["audit"]} == {1}
    for q in ("limit=0", "limit=501", "after=x", "who=1"):
        assert daemon.api("GET", "/api/v1/audit?" + q).status == 422, q
    # append-only, on either store (psql's error is an AssertionError)
    for sql in ("DELETE FROM audit", "UPDATE audit SET staff_id = 1"):
        with pytest.raises((sqlite3.DatabaseError, AssertionError),
                           match="append-only"):
            daemon.execute(sql)


def test_existing_api_keeps_working_with_the_daemon_token(daemon):
    # what outreachctl and every older client do
    assert daemon.api("GET", "/api/v1/status").status == 200
    mid = daemon.send_sms(body="still here")
    assert daemon.message(mid)["id"] == mid
    rows = daemon.query("SELECT staff_id, action FROM audit")
    assert [tuple(x) for x in rows] == [(1, "POST /api/v1/messages")]


def ctl(d, *args, stdin=None):
    return subprocess.run([str(OUTREACHCTL), "-u", d.url(), "-t", d.token]
                          + [str(a) for a in args],
                          input=stdin, capture_output=True, text=True,
                          timeout=scaled(20))


def test_cli_staff_and_tokens(daemon):
    p = ctl(daemon, "staff", "add", "--name", "Olga", "--email",
            "olga@example.org", "--role", "organizer", "--password-stdin",
            stdin=PASSWORD + "\n")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "staff 2: Olga <olga@example.org> organizer" in p.stdout
    login(daemon)  # the password from stdin
    p = ctl(daemon, "staff", "passwd", "2", stdin="a brand new secret\n")
    assert p.returncode == 0, (p.stdout, p.stderr)
    login(daemon, password="a brand new secret")
    p = ctl(daemon, "staff", "list")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "EMAIL", "ROLE", "STATUS"]
    assert lines[2].split() == ["2", "Olga", "olga@example.org",
                                "organizer", "active"]
    p = ctl(daemon, "staff", "list", "--json")
    assert json.loads(p.stdout)["staff"][1]["email"] == "olga@example.org"
    # a token for Olga, printed once and alone on stdout
    p = ctl(daemon, "token", "create", "--name", "laptop", "--staff", "2")
    assert p.returncode == 0, (p.stdout, p.stderr)
    tok = p.stdout.strip()
    assert len(tok) == 64 and "shown only now" in p.stderr
    r = daemon.api("GET", "/api/v1/me", token=tok)
    assert r.json["staff"]["id"] == 2
    p = ctl(daemon, "token", "list", "--json")
    tokens = json.loads(p.stdout)["tokens"]
    assert tok not in p.stdout
    tid = [t["id"] for t in tokens if t["name"] == "laptop"][0]
    p = ctl(daemon, "token", "list")
    assert "laptop" in p.stdout and tok not in p.stdout
    p = ctl(daemon, "token", "revoke", tid)
    assert p.returncode == 0 and "revoked" in p.stdout, p.stderr
    assert daemon.api("GET", "/api/v1/me", token=tok).status == 401
    p = ctl(daemon, "staff", "disable", "2")
    assert p.returncode == 0 and "(disabled)" in p.stdout, p.stderr
    # refusals and usage errors
    p = ctl(daemon, "staff", "disable", "1")
    assert p.returncode == 1 and "last enabled admin" in p.stderr
    assert ctl(daemon, "staff", "add", "--name", "X").returncode == 2
    assert ctl(daemon, "staff", "passwd", "2", stdin="").returncode == 2
    assert ctl(daemon, "token", "revoke", "x").returncode == 2
    assert ctl(daemon, "token", "frobnicate").returncode == 2
