"""
test_auth.py - who may use the API (doc/staff.md): bearer tokens from the
store, the daemon's own token as staff #1's, password and token logins,
the session cookie and its flags, CSRF on session writes, logout, session
expiry, login rate limits, revoked tokens and disabled staff.
"""

import os
import subprocess
import threading
import time

from conftest import OD_STORE, SRCDIR, TOKEN, scaled, wait_for
from staffutil import (COOKIE, PASSWORD, Session, add_staff, cookie_value,
                       login, new_token, set_cookie, sha256_hex)


def test_no_token_is_401(daemon):
    r = daemon.api("GET", "/api/v1/status", token=None)
    assert r.status == 401, r
    assert r.error_code() == "unauthorized"
    assert "Bearer" in r.headers.get("WWW-Authenticate", "")
    r = daemon.api("GET", "/api/v1/status", token="not-a-token-at-all")
    assert r.status == 401, r
    assert r.error_message() == "invalid API token"


def test_daemon_token_is_the_first_admins(daemon):
    r = daemon.api("GET", "/api/v1/me")
    assert r.status == 200, r
    me = r.json
    assert me["csrf"] is None
    assert me["staff"]["id"] == 1
    assert me["staff"]["role"] == "admin"
    assert me["staff"]["name"] == "Administrator"
    rows = daemon.query("SELECT staff_id, daemon, token_hash, revoked_at "
                        "FROM api_tokens")
    assert [tuple(x) for x in rows] == [(1, 1, sha256_hex(TOKEN), None)]


def stored_bytes(d):
    """All that the daemon's store holds: the SQLite file and its WAL, or
    on PostgreSQL a dump of its database's rows."""
    if OD_STORE == "postgresql":
        bindir = subprocess.run([str(SRCDIR / "tests" / "pg.sh"), "bindir"],
                                capture_output=True, text=True,
                                check=True).stdout.strip()
        return subprocess.run([os.path.join(bindir, "pg_dump"), "-a",
                               d.conf("store", "url")], capture_output=True,
                              check=True, timeout=scaled(60)).stdout
    with open(d.db_path, "rb") as f:
        data = f.read()
    wal = d.db_path.with_name(d.db_path.name + "-wal")
    if wal.exists():
        data += wal.read_bytes()
    return data


def test_no_secret_is_stored_in_clear(daemon):
    s = add_staff(daemon, role="admin")
    tid, tok = new_token(daemon, staff_id=s["id"])
    sess = login(daemon)
    assert daemon.api("GET", "/api/v1/me", token=tok).status == 200
    daemon.api("POST", "/api/v1/members", {"phone": "+12025550111"})
    data = stored_bytes(daemon)
    assert b"+12025550111" in data	# what is not secret is there
    for secret in (TOKEN, tok, sess.cookie, sess.csrf, PASSWORD):
        assert secret.encode() not in data, secret
    h = daemon.scalar("SELECT password_hash FROM staff WHERE id = ?",
                      (s["id"],))
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), h


def test_login_by_password_sets_a_strict_cookie(daemon):
    add_staff(daemon)
    r = daemon.api("POST", "/api/v1/login",
                   {"email": "Olga@Example.org", "password": PASSWORD},
                   token=None)
    assert r.status == 200, r
    assert r.json["staff"]["email"] == "olga@example.org"
    assert r.json["staff"]["role"] == "organizer"
    c = set_cookie(r)
    flags = [x.strip() for x in c.split(";")]
    assert flags[0].startswith(COOKIE + "=")
    assert len(flags[0]) == len(COOKIE) + 1 + 64
    assert "HttpOnly" in flags and "SameSite=Strict" in flags
    assert "Path=/" in flags
    assert "Secure" not in flags  # plain-http public URL (none)
    sess = Session(daemon, cookie_value(r), r.json["csrf"], r.json["staff"])
    r = sess.api("GET", "/api/v1/me")
    assert r.status == 200, r
    assert r.json["csrf"] == sess.csrf
    assert r.json["staff"]["id"] == sess.staff["id"]
    assert sess.api("GET", "/api/v1/status").status == 200
    row = daemon.query("SELECT via, peer, revoked_at FROM sessions")[0]
    assert tuple(row) == ("password", "127.0.0.1", None)


def test_cookie_is_secure_behind_an_https_public_url(make_daemon):
    d = make_daemon({"http": {"public_url": "https://outreach.example.org"}})
    r = d.api("POST", "/api/v1/login", {"token": TOKEN}, token=None)
    assert r.status == 200, r
    flags = [x.strip() for x in set_cookie(r).split(";")]
    assert "Secure" in flags and "HttpOnly" in flags


def test_wrong_password_and_unknown_email_are_alike(daemon):
    add_staff(daemon)
    a = daemon.api("POST", "/api/v1/login",
                   {"email": "olga@example.org", "password": "wrong one!"},
                   token=None)
    b = daemon.api("POST", "/api/v1/login",
                   {"email": "nobody@example.org", "password": PASSWORD},
                   token=None)
    assert a.status == b.status == 401, (a, b)
    assert a.json == b.json
    assert "Set-Cookie" not in a.headers
    assert daemon.scalar("SELECT count(*) FROM sessions") == 0


def test_staff_without_password_cannot_log_in_by_password(daemon):
    add_staff(daemon, password=None)
    r = daemon.api("POST", "/api/v1/login",
                   {"email": "olga@example.org", "password": ""},
                   token=None)
    assert r.status == 401, r


def test_login_by_token(daemon):
    s = add_staff(daemon)
    _, tok = new_token(daemon, staff_id=s["id"])
    sess = login(daemon, token=tok)
    assert sess.staff["id"] == s["id"]
    assert sess.api("GET", "/api/v1/me").json["staff"]["id"] == s["id"]
    assert daemon.query("SELECT via FROM sessions")[0][0] == "token"
    r = daemon.api("POST", "/api/v1/login", {"token": tok + "x"},
                   token=None)
    assert r.status == 401, r


def test_login_body_is_checked(daemon):
    for body in ({}, {"email": "a@example.org"}, {"token": 5},
                 {"token": TOKEN, "email": "a@example.org"},
                 {"token": TOKEN, "remember": True}):
        r = daemon.api("POST", "/api/v1/login", body, token=None)
        assert r.status == 422, (body, r)
    # a NUL never cuts a token or password short: not JSON we take
    r = daemon.api("POST", "/api/v1/login", {"token": TOKEN + "\u0000x"},
                   token=None)
    assert r.status == 400, r


def count_members(d):
    return d.scalar("SELECT count(*) FROM members")


def test_csrf_is_required_on_session_writes(daemon):
    add_staff(daemon, role="admin")
    sess = login(daemon)
    body = {"phone": "+12025550123"}
    for csrf in (None, "", "0" * 64, sess.csrf[:-1]):
        h = {} if csrf is None else {"X-CSRF-Token": csrf}
        r = daemon.api("POST", "/api/v1/members", body, token=None,
                       headers=dict(h, Cookie="%s=%s" % (COOKIE,
                                                          sess.cookie)))
        assert r.status == 403, (csrf, r)
        assert r.error_code() == "csrf"
    assert count_members(daemon) == 0
    # another session's token is no good either
    other = login(daemon, token=TOKEN)
    r = sess.api("PATCH", "/api/v1/staff/1", {"name": "Mallory"},
                 csrf=other.csrf)
    assert r.status == 403 and r.error_code() == "csrf", r
    assert daemon.scalar("SELECT name FROM staff WHERE id = 1") == \
        "Administrator"
    # reads need none; the right token passes
    assert sess.api("GET", "/api/v1/status", csrf=False).status == 200
    r = sess.api("POST", "/api/v1/members", body)
    assert r.status == 201, r
    assert count_members(daemon) == 1
    # bearer tokens need no CSRF token
    r = daemon.api("POST", "/api/v1/members", {"phone": "+12025550124"})
    assert r.status == 201, r


def test_logout_revokes_the_session(daemon):
    add_staff(daemon)
    sess = login(daemon)
    r = sess.api("POST", "/api/v1/logout", csrf=False)
    assert r.status == 403 and r.error_code() == "csrf", r
    assert sess.api("GET", "/api/v1/me").status == 200
    r = sess.api("POST", "/api/v1/logout")
    assert r.status == 204, r
    assert "Max-Age=0" in set_cookie(r)
    r = sess.api("GET", "/api/v1/me")
    assert r.status == 401, r
    assert sess.api("GET", "/api/v1/status").status == 401
    assert daemon.scalar("SELECT revoked_at IS NOT NULL FROM sessions") == 1
    # a new login works
    assert login(daemon).api("GET", "/api/v1/me").status == 200


def test_a_new_password_ends_the_other_sessions(daemon):
    olga = add_staff(daemon)
    a, b = login(daemon), login(daemon)
    # an admin's own session survives its own password change
    add_staff(daemon, name="Ada Admin", email="ada@example.org", role="admin")
    ada = login(daemon, email="ada@example.org")
    r = ada.api("PATCH", "/api/v1/staff/%d" % ada.staff["id"],
                {"password": "a brand new passphrase"})
    assert r.status == 200, r
    assert ada.api("GET", "/api/v1/me").status == 200
    # Olga's password changed by the admin: both her sessions end
    r = ada.api("PATCH", "/api/v1/staff/%d" % olga["id"],
                {"password": "another new passphrase"})
    assert r.status == 200, r
    assert a.api("GET", "/api/v1/me").status == 401
    assert b.api("GET", "/api/v1/me").status == 401
    assert ada.api("GET", "/api/v1/me").status == 200
    # her API tokens are not tied to the password
    assert login(daemon, password="another new passphrase").api(
        "GET", "/api/v1/me").status == 200


def test_session_expires_when_idle(make_daemon):
    idle = int(scaled(2))  # a use right after login is within it
    d = make_daemon({"http": {"session_idle": "%ds" % idle}})
    add_staff(d)
    sess = login(d)
    assert sess.api("GET", "/api/v1/me").status == 200
    time.sleep(idle + 0.5)
    r = sess.api("GET", "/api/v1/me")
    assert r.status == 401, r
    assert "expired" in r.error_message()


def test_session_lifetime_bounds_the_session(make_daemon):
    d = make_daemon({"http": {"session_lifetime": "1s",
                              "session_idle": "1h"}})
    add_staff(d)
    r = d.api("POST", "/api/v1/login",
              {"email": "olga@example.org", "password": PASSWORD},
              token=None)
    assert r.status == 200, r
    assert "Max-Age=1" in [x.strip() for x in set_cookie(r).split(";")]
    span = d.scalar("SELECT expires_at - created_at FROM sessions")
    assert span == 1000
    sess = Session(d, cookie_value(r), r.json["csrf"], r.json["staff"])
    time.sleep(scaled(1.5))
    assert sess.api("GET", "/api/v1/me").status == 401


def test_account_is_locked_after_five_failures(daemon):
    add_staff(daemon)
    add_staff(daemon, name="Ann", email="ann@example.org")
    for _ in range(5):
        r = daemon.api("POST", "/api/v1/login",
                       {"email": "olga@example.org", "password": "nope-nope"},
                       token=None)
        assert r.status == 401, r
    # locked now, even with the right password
    r = daemon.api("POST", "/api/v1/login",
                   {"email": "olga@example.org", "password": PASSWORD},
                   token=None)
    assert r.status == 429, r
    assert r.error_code() == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    # another account from the same address is not
    assert login(daemon, email="ann@example.org").staff["name"] == "Ann"


def test_address_is_locked_after_twenty_failures(daemon):
    add_staff(daemon)
    for i in range(20):
        r = daemon.api("POST", "/api/v1/login",
                       {"email": "x%d@example.org" % i, "password": "nope!!!!"},
                       token=None)
        assert r.status == 401, (i, r)
    r = daemon.api("POST", "/api/v1/login",
                   {"email": "olga@example.org", "password": PASSWORD},
                   token=None)
    assert r.status == 429, r
    assert int(r.headers["Retry-After"]) >= 1
    r = daemon.api("POST", "/api/v1/login", {"token": TOKEN}, token=None)
    assert r.status == 429, r
    # bearer tokens are not logins: they still work
    assert daemon.api("GET", "/api/v1/me").status == 200


def test_revoked_token_is_401(daemon):
    tid, tok = new_token(daemon)
    assert daemon.api("GET", "/api/v1/status", token=tok).status == 200
    r = daemon.api("DELETE", "/api/v1/tokens/%d" % tid)
    assert r.status == 204, r
    r = daemon.api("GET", "/api/v1/status", token=tok)
    assert r.status == 401, r
    r = daemon.api("POST", "/api/v1/login", {"token": tok}, token=None)
    assert r.status == 401, r


def test_disabled_staff_is_401_everywhere(daemon):
    s = add_staff(daemon)
    _, tok = new_token(daemon, staff_id=s["id"])
    sess = login(daemon)
    assert sess.api("GET", "/api/v1/me").status == 200
    r = daemon.api("PATCH", "/api/v1/staff/%d" % s["id"], {"disabled": True})
    assert r.status == 200, r
    assert r.json["disabled"] is True
    assert daemon.api("GET", "/api/v1/me", token=tok).status == 401
    assert sess.api("GET", "/api/v1/me").status == 401
    r = daemon.api("POST", "/api/v1/login",
                   {"email": "olga@example.org", "password": PASSWORD},
                   token=None)
    assert r.status == 401, r
    assert daemon.scalar("SELECT count(*) FROM api_tokens WHERE staff_id = ? "
                         "AND revoked_at IS NULL", (s["id"],)) == 0
    assert daemon.scalar("SELECT count(*) FROM sessions WHERE staff_id = ? "
                         "AND revoked_at IS NULL", (s["id"],)) == 0
    # enabling again does not bring back what was revoked
    r = daemon.api("PATCH", "/api/v1/staff/%d" % s["id"],
                   {"disabled": False})
    assert r.status == 200, r
    assert daemon.api("GET", "/api/v1/me", token=tok).status == 401
    assert login(daemon).staff["id"] == s["id"]


def test_a_token_in_use_follows_role_and_disable(daemon):
    # staff.c keeps a token's answer between requests: every change of
    # the member must show on the very next request made with it
    s = add_staff(daemon)
    _, tok = new_token(daemon, staff_id=s["id"])
    for _ in range(2):
        assert daemon.api("GET", "/api/v1/me", token=tok).status == 200
        assert daemon.api("GET", "/api/v1/audit", token=tok).status == 403
    r = daemon.api("PATCH", "/api/v1/staff/%d" % s["id"], {"role": "admin"})
    assert r.status == 200, r
    assert daemon.api("GET", "/api/v1/audit", token=tok).status == 200
    r = daemon.api("PATCH", "/api/v1/staff/%d" % s["id"],
                   {"role": "organizer"})
    assert r.status == 200, r
    assert daemon.api("GET", "/api/v1/audit", token=tok).status == 403
    # another member's token in use meanwhile stays as it was
    o = add_staff(daemon, name="Ann", email="ann@example.org")
    _, other = new_token(daemon, staff_id=o["id"])
    assert daemon.api("GET", "/api/v1/me", token=other).status == 200
    r = daemon.api("PATCH", "/api/v1/staff/%d" % s["id"], {"disabled": True})
    assert r.status == 200, r
    r = daemon.api("GET", "/api/v1/me", token=tok)
    assert r.status == 401, r
    assert daemon.api("GET", "/api/v1/me", token=other).status == 200
    assert daemon.api("GET", "/api/v1/me").status == 200


def test_a_token_revoked_outside_the_daemon_stops_working(daemon):
    # a token's kept answer is read again after a second at most, so a
    # change made in the database while the daemon runs shows too
    tid, tok = new_token(daemon)
    assert daemon.api("GET", "/api/v1/me", token=tok).status == 200
    daemon.execute("UPDATE api_tokens SET revoked_at = 1 WHERE id = ?",
                   (tid,))
    wait_for(lambda: daemon.api("GET", "/api/v1/me", token=tok).status
             == 401, timeout=scaled(10), what="the revoked token's 401")
    assert daemon.api("GET", "/api/v1/me").status == 200


def test_token_file_install_upgrades_without_a_step(make_daemon):
    # an install that keeps its token in var/api.token (no api_token)
    d = make_daemon({"http": {"api_token": None}})
    tok = (d.dir / "var" / "api.token").read_text().strip()
    d.token = tok
    assert d.api("GET", "/api/v1/me").json["staff"]["role"] == "admin"
    d.stop()
    # as a database from before staff accounts: no staff, no tokens
    for table in ("sessions", "api_tokens", "staff"):
        d.execute("DELETE FROM %s" % table)
    d.start()
    r = d.api("GET", "/api/v1/me")
    assert r.status == 200, r
    assert r.json["staff"]["role"] == "admin"
    assert d.scalar("SELECT count(*) FROM staff") == 1
    # and across an ordinary restart, nothing changes
    d.stop()
    d.start()
    assert d.api("GET", "/api/v1/status").status == 200
    assert d.scalar("SELECT count(*) FROM api_tokens") == 1


def test_a_changed_daemon_token_replaces_the_old_one(make_daemon):
    d = make_daemon()
    d.stop()
    d.configure({"http": {"api_token": "rotated-token-0123456789abcdef"}})
    old = d.token
    d.token = "rotated-token-0123456789abcdef"
    d.start()
    assert d.api("GET", "/api/v1/me").json["staff"]["id"] == 1
    assert d.api("GET", "/api/v1/me", token=old).status == 401
    assert d.scalar("SELECT count(*) FROM api_tokens") == 1


def test_revoked_daemon_token_stays_revoked(make_daemon):
    d = make_daemon()
    s = add_staff(d, role="admin")
    _, tok = new_token(d, staff_id=s["id"])
    r = d.api("DELETE", "/api/v1/tokens/1", token=tok)
    assert r.status == 204, r
    assert d.api("GET", "/api/v1/me").status == 401
    d.expect_log(r"api_token_revoked")
    d.stop()
    d.start()
    assert d.api("GET", "/api/v1/me").status == 401
    assert d.api("GET", "/api/v1/me", token=tok).status == 200


def test_sigterm_while_passwords_are_checked(daemon):
    """Logins in flight at shutdown get an answer or a closed connection,
    and the daemon still exits 0 (no reply after the server is gone)."""
    add_staff(daemon)
    answers = []

    def one():
        try:
            r = daemon.api("POST", "/api/v1/login",
                           {"email": "olga@example.org",
                            "password": PASSWORD}, token=None)
            answers.append(r.status)
        except OSError:
            answers.append("closed")

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: daemon.scalar("SELECT count(*) FROM sessions") > 0 or
             len(answers) > 0, what="a first login")
    assert daemon.stop() == 0
    for t in threads:
        t.join(scaled(20))
    assert len(answers) == 8
    assert set(answers) <= {200, 503, "closed"}, answers
