"""
test_pg_staff.py - logins, web sessions and the staff API of daemons on
one PostgreSQL database (issue 13, doc/postgresql.md: daemon/staff.c,
daemon/staff_api.c, queue/store_staff_pg.c): two nodes, as staff behind
a load balancer meet them.

Covered, on states only (no timing assertions: a change made on one node
is awaited on the other with wait_for, within the cache's life):
  - an admin creates an organizer on node A (the email taken: 409 on B),
    listed and read on B; she logs in on B with her password (a wrong
    one: 401) and her cookie works on A (/me, the CSRF token on a write,
    a token made through the session), her sessions listed on A;
  - a token login on A, logged out on B: the session ends on A;
  - the token list (an organizer sees her own, an admin all);
  - a session deleted by an admin on A ends it on B;
  - disabled on B: her session on A and her token stop working, she
    cannot log in again; the last admin cannot be disabled (409);
  - the audit list of those writes, and GET /api/v1/status with the
    shared queue's counts.
"""

from conftest import wait_for
from staffutil import PASSWORD, Session, add_staff, login
from test_pg_api import one, pg_node


def test_staff_on_two_nodes(make_daemon, pgcluster):
    url = pgcluster.create_db("staff")
    a = pg_node(make_daemon, url, "a")
    b = pg_node(make_daemon, url, "b")
    olga = add_staff(a)
    assert olga["email"] == "olga@example.org" and olga["has_password"]
    assert olga["role"] == "organizer" and not olga["disabled"]
    r = b.api("POST", "/api/v1/staff", {"name": "Other",
                                        "email": "OLGA@example.org",
                                        "role": "organizer"})
    assert r.status == 409, r.body
    r = b.api("GET", "/api/v1/staff")
    assert r.status == 200, r.body
    assert [m["id"] for m in r.json["staff"]] == [1, olga["id"]]
    r = b.api("GET", "/api/v1/staff/%d" % olga["id"])
    assert r.status == 200 and r.json == olga, r.body
    assert b.api("GET", "/api/v1/staff/%d" % (olga["id"] + 9)).status == 404

    # Logged in on B, her cookie works on A.
    r = b.api("POST", "/api/v1/login", {"email": "olga@example.org",
                                        "password": "wrong password!"},
              token=None)
    assert r.status == 401, r.body
    sb = login(b)
    assert sb.staff["id"] == olga["id"]
    sa = Session(a, sb.cookie, sb.csrf, sb.staff)
    r = sa.api("GET", "/api/v1/me")
    assert r.status == 200, r.body
    assert r.json["staff"]["id"] == olga["id"] and r.json["csrf"] == sb.csrf
    r = sa.api("POST", "/api/v1/tokens", {"name": "no csrf"}, csrf=False)
    assert r.status == 403, r.body
    r = sa.api("POST", "/api/v1/tokens", {"name": "hers"})
    assert r.status == 201, r.body
    tok, tok_id = r.json["token"], r.json["id"]
    r = sa.api("GET", "/api/v1/sessions")
    assert r.status == 200, r.body
    mine = r.json["sessions"]
    assert len(mine) == 1 and mine[0]["current"], mine
    assert mine[0]["staff"]["id"] == olga["id"] and mine[0]["via"] == \
        "password"
    # her token list: her token only; the admin's: the daemon's too
    r = a.api("GET", "/api/v1/tokens", token=tok)
    assert [t["id"] for t in r.json["tokens"]] == [tok_id], r.body
    r = b.api("GET", "/api/v1/tokens")
    assert [t["id"] for t in r.json["tokens"]][0] == tok_id, r.body
    assert any(t["daemon"] for t in r.json["tokens"]), r.body

    # A token login on A, logged out on B: ended on A.
    s2 = login(a, token=tok)
    assert s2.api("GET", "/api/v1/me").status == 200
    r = Session(b, s2.cookie, s2.csrf, s2.staff).api("POST", "/api/v1/logout")
    assert r.status == 204, r.body
    wait_for(lambda: s2.api("GET", "/api/v1/me").status == 401,
             what="the session logged out on B refused on A")

    # A session deleted by an admin on A: ended on B.
    s3 = login(b)
    r = a.api("GET", "/api/v1/sessions?staff_id=%d" % olga["id"])
    ids = [x["id"] for x in r.json["sessions"]]
    assert len(ids) == 2, r.body
    assert a.api("DELETE", "/api/v1/sessions/%d" % (max(ids) + 9)).status \
        == 404
    assert a.api("DELETE", "/api/v1/sessions/%d" % max(ids)).status == 204
    wait_for(lambda: s3.api("GET", "/api/v1/me").status == 401,
             what="the session deleted on A refused on B")
    assert sa.api("GET", "/api/v1/me").status == 200

    # Disabled on B: her session on A and her token stop working.
    r = b.api("PATCH", "/api/v1/staff/%d" % olga["id"], {"disabled": True})
    assert r.status == 200 and r.json["disabled"], r.body
    wait_for(lambda: sa.api("GET", "/api/v1/me").status == 401,
             what="the disabled member's session refused on A")
    wait_for(lambda: a.api("GET", "/api/v1/me", token=tok).status == 401,
             what="the disabled member's token refused on A")
    r = a.api("POST", "/api/v1/login", {"email": "olga@example.org",
                                        "password": PASSWORD}, token=None)
    assert r.status == 401, r.body
    assert one(pgcluster, url, "SELECT count(*) FROM sessions WHERE "
               "revoked_at IS NULL") == "0"
    r = a.api("PATCH", "/api/v1/staff/1", {"role": "organizer"})
    assert r.status == 409, r.body
    r = b.api("PATCH", "/api/v1/staff/%d" % (olga["id"] + 9),
              {"name": "Nobody"})
    assert r.status == 404, r.body

    # The audit list of those writes, on either node.
    want = {"POST /api/v1/staff", "POST /api/v1/login",
            "POST /api/v1/logout", "POST /api/v1/tokens",
            "DELETE /api/v1/sessions/{id}", "PATCH /api/v1/staff/{id}"}

    def actions():
        r = a.api("GET", "/api/v1/audit?limit=500")
        assert r.status == 200, r.body
        return want <= {x["action"] for x in r.json["audit"]}
    wait_for(actions, what="the audit rows")
    r = b.api("GET", "/api/v1/audit?limit=1")
    assert len(r.json["audit"]) == 1 and r.json["next"], r.body
    r = b.api("GET", "/api/v1/audit?after=%d" % r.json["next"])
    assert r.status == 200 and r.json["audit"], r.body

    # The status page: the shared queue's counts.
    r = a.api("POST", "/api/v1/messages",
              {"to": "+15550400009", "body": "later", "sender": "tw",
               "not_before": 4102444800})
    assert r.status == 202, r.body
    # its audit row committed before the nodes stop (a group still in
    # flight at SIGTERM is logged shutdown_commit_failed)
    wait_for(lambda: one(pgcluster, url, "SELECT count(*) FROM audit WHERE "
                         "action = 'POST /api/v1/messages'") == "1",
             what="the message's audit row")
    r = b.api("GET", "/api/v1/status")
    assert r.status == 200, r.body
    assert r.json["queue"]["sms"]["queued"] == 1, r.body
    assert "version" in r.json and "uptime_s" in r.json


def attempt(d, email, password):
    return d.api("POST", "/api/v1/login",
                 {"email": email, "password": password}, token=None)


def test_failed_logins_count_on_every_node(make_daemon, pgcluster):
    """
    The failed-login limits (5 per account, 20 per address) count the
    attempts made on every node (queue/store_logins_pg.c): five wrong
    passwords spread over two nodes lock the account on both, where each
    node alone saw only two or three. A success on one node clears the
    account's count on the others. Then twenty failures spread over the
    nodes lock the address on both.
    """
    url = pgcluster.create_db("staff_limits")
    a = pg_node(make_daemon, url, "a")
    b = pg_node(make_daemon, url, "b")
    add_staff(a)
    add_staff(a, name="Ann", email="ann@example.org")

    # A success on B clears what A counted: three failures on A, a
    # login on B, then four more on A are all answered 401, not 429.
    for _ in range(3):
        assert attempt(a, "olga@example.org", "nope-nope").status == 401
    assert one(pgcluster, url, "SELECT failures FROM login_failures"
               " WHERE key = 'account:olga@example.org'") == "3"
    login(b)
    assert one(pgcluster, url, "SELECT count(*) FROM login_failures"
               " WHERE key = 'account:olga@example.org'") == "0"
    for _ in range(4):
        assert attempt(a, "olga@example.org", "nope-nope").status == 401
    login(b)

    # Five failures over both nodes (A has three, B two): locked on both,
    # even with the right password.
    for d in (a, b, a, b, a):
        r = attempt(d, "OLGA@example.org", "nope-nope")
        assert r.status == 401, r
    for d in (b, a):
        r = attempt(d, "olga@example.org", PASSWORD)
        assert r.status == 429, r
        assert r.error_code() == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 30
    # another account from the same address is not locked
    assert login(b, email="ann@example.org").staff["name"] == "Ann"

    # The address: 3 + 4 + 5 failures so far (this one client; a
    # success does not clear an address); twenty in all, spread over the
    # nodes, lock it on both.
    n = int(one(pgcluster, url, "SELECT failures FROM login_failures"
                " WHERE key LIKE 'peer:%'"))
    assert n == 12, n
    for i in range(20 - n):
        d = (a, b)[i % 2]
        r = attempt(d, "x%d@example.org" % i, "nope-nope")
        assert r.status == 401, (i, r)
    for d in (a, b):
        r = attempt(d, "ann@example.org", PASSWORD)
        assert r.status == 429, r
        r = d.api("POST", "/api/v1/login", {"token": d.token}, token=None)
        assert r.status == 429, r
        # bearer tokens are not logins: they still work
        assert d.api("GET", "/api/v1/me").status == 200
