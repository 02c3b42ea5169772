"""
test_pg_imports.py - CSV imports on a PostgreSQL store (issue 13,
doc/postgresql.md: daemon/import_pg.c, queue/store_imports_pg.c): two
real nodes on one database of a throwaway cluster (pgcluster.py).

Covered, on states only (no timing assertions):
  - an import opened on node A takes its pieces on either node: the CSV
    reader's state (a record cut mid-field), the header's mapping and the
    phones and emails already seen travel with the import's row, so a
    duplicate of a row A wrote is found by B; a piece sent again answers
    409 bad_offset on either node; B finishes it and both nodes report
    the same counts and problem rows; the members and their consent
    events are visible on both;
  - the node writing a piece is killed (SIGKILL) while its transaction
    waits inside the piece (a row of the test holds one member's lock),
    and its lost connection is ended on the server: nothing of the piece
    is kept, the import still stands at the bytes before it on the other
    node, the piece sent again there is applied, and every row is
    applied once (one member per phone, one consent event per new
    subscription, exact counts);
  - a piece is a transaction of its own, not in the node's group: while
    one is held inside it (the same member's lock), an API enqueue on the
    same node is answered 202 and committed; the piece then ends as it
    would have (before, the enqueue waited behind the piece's group).
"""

import os
import subprocess
import threading

from conftest import scaled, wait_for
from test_pg_nodes import pg_conf

LIST = "volunteers"
SOURCE = "2024 rally sign-up sheets"
LISTS = {"list volunteers": {"keywords": "JOIN"}}


def one(pg, url, sql):
    return pg.psql(url, sql).strip()


def open_import(d):
    r = d.api("POST", "/api/v1/imports", {"list": LIST, "source": SOURCE})
    assert r.status == 201, r
    return r.json["id"]


def piece(d, iid, data, off, timeout=30):
    return d.api("POST", "/api/v1/imports/%s/data?offset=%d" % (iid, off),
                 raw=data, headers={"Content-Type": "text/csv"},
                 timeout=timeout)


def phone(n):
    return "+1415555%04d" % n


def seed_members(d, phones):
    """Members 'Old' with these phones, by a one-shot import on d."""
    seed = b"phone,first_name\n" + b"".join(
        b"%s,Old\n" % p.encode() for p in phones)
    r = d.api("POST", "/api/v1/imports?list=%s&source=seed" % LIST,
              raw=seed, headers={"Content-Type": "text/csv"})
    assert r.status == 200 and r.json["counts"]["created"] == len(phones), r


LOCKER = "od-test-locker"


def hold_member(pg, url, member_phone):
    """A psql session of the test that holds the member's row lock (until
    release()): a piece's row for that member waits on it, inside the
    piece's transaction."""
    locker = subprocess.Popen(
        [pg.psql_bin, "-X", "-q", "-c", "BEGIN", "-c",
         "SELECT 1 FROM members WHERE phone = '%s' FOR UPDATE" % member_phone,
         "-c", "SELECT pg_sleep(600)", url],
        env=dict(os.environ, PGAPPNAME=LOCKER),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: one(pg, url, """
        SELECT count(*) FROM pg_stat_activity
        WHERE application_name = '%s'
        AND query LIKE 'SELECT pg_sleep%%'""" % LOCKER) == "1", 30,
             what="the test's lock held")
    return locker


def release(pg, url, locker):
    pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = '%s'" % LOCKER)
    locker.wait(scaled(30))


# A piece's row statement waiting on a row lock.
WAITING = "SELECT pid FROM pg_stat_activity WHERE wait_event_type = " \
    "'Lock' AND query LIKE 'WITH ok AS %%'"


def test_import_across_two_nodes(make_daemon, pgcluster):
    url = pgcluster.create_db("imports2")
    a = make_daemon(pg_conf(url, "a", **LISTS), name="a")
    b = make_daemon(pg_conf(url, "b", **LISTS), name="b")

    head = b"Phone,Email,First Name,Tags,Shirt\r\n"
    rows = [b"%s,u%d@example.org,Ann %d,a;b,M\r\n" % (phone(n).encode(), n, n)
            for n in range(40)]
    data = head + b"".join(rows[:20])
    data += b"415-555-0003,,Dup,,\r\n"            # line 22: of line 5
    data += b",U7@EXAMPLE.ORG,Dup,,\r\n"          # line 23: of line 9
    data += b"555-12,,Bad,,\r\n"                  # line 24: rejected
    data += b"".join(rows[20:])
    cut = len(head) + len(b"".join(rows[:10])) + 7   # inside a record
    iid = open_import(a)
    r = piece(a, iid, data[:cut], 0)
    assert r.status == 200, r
    assert r.json["counts"]["created"] == 10, r.json
    # The rest on B, which never saw the import: the record cut on A
    # goes on, the duplicates of A's rows are found.
    r = piece(b, iid, data[cut:], cut)
    assert r.status == 200, r
    assert r.json["bytes"] == len(data)
    # The same piece again, on either node: the import moved on.
    for d in (a, b):
        r = piece(d, iid, data[cut:], cut)
        assert r.status == 409 and r.error_code() == "bad_offset", r
    r = b.api("POST", "/api/v1/imports/%s/finish" % iid)
    assert r.status == 200, r
    rep = r.json
    assert rep["state"] == "finished"
    assert rep["counts"] == {
        "rows": 43, "created": 40, "updated": 0, "unchanged": 0,
        "opted_out": 0, "duplicates_in_file": 2, "conflicts": 0,
        "rejected": 1, "warnings": 0, "blank": 0}, rep
    assert [(i["line"], i["kind"], i.get("first_line"))
            for i in rep["issues"]] == [(22, "duplicate", 5),
                                        (23, "duplicate", 9),
                                        (24, "rejected", None)]
    assert [c["field"] for c in rep["columns"]] == \
        ["phone", "email", "first_name", "tags", "custom"]
    # A reports what B finished, and lists it.
    r = a.api("GET", "/api/v1/imports/" + iid)
    assert r.status == 200 and r.json["counts"] == rep["counts"]
    assert r.json["issues"] == rep["issues"]
    assert [i["id"] for i in a.api("GET", "/api/v1/imports").json[
        "imports"]] == [iid]
    r = a.api("POST", "/api/v1/imports/%s/finish" % iid)
    assert r.status == 409 and r.error_code() == "not_open", r
    # The members, on both nodes, each subscribed once.
    for d in (a, b):
        r = d.api("GET", "/api/v1/members?phone=%2B14155550007")
        m = r.json["members"]
        assert len(m) == 1 and m[0]["email"] == "u7@example.org"
        assert m[0]["attributes"] == {"Shirt": "M"}
        assert m[0]["tags"] == ["a", "b"]
    assert one(pgcluster, url, "SELECT count(*) FROM members") == "40"
    assert one(pgcluster, url, """
        SELECT count(*) FROM consent_events WHERE source = 'import'
        AND detail = '%s' AND action = 'opt_in'""" % SOURCE) == "80"
    # A rerun on B changes nothing.
    r = b.api("POST", "/api/v1/imports?list=%s&source=x" % LIST, raw=data,
              headers={"Content-Type": "text/csv"})
    assert r.status == 200, r
    assert r.json["counts"]["unchanged"] == 40, r.json
    assert one(pgcluster, url, "SELECT count(*) FROM consent_events") == "80"


def test_import_node_killed_midway(make_daemon, pgcluster):
    url = pgcluster.create_db("importskill")
    a = make_daemon(pg_conf(url, "a", **LISTS), name="a")
    b = make_daemon(pg_conf(url, "b", **LISTS), name="b")

    # Members the second piece updates (one of them locked by the test).
    seed_members(a, [phone(100 + n) for n in range(10)])

    iid = open_import(a)
    first = b"phone,first_name\n" + b"".join(
        b"%s,New\n" % phone(n).encode() for n in range(10))
    r = piece(a, iid, first, 0)
    assert r.status == 200 and r.json["counts"]["created"] == 10, r
    second = b"".join(b"%s,New\n" % phone(n).encode() for n in range(10, 15))
    second += b"".join(b"%s,Changed\n" % phone(100 + n).encode()
                       for n in range(10))
    second += b"".join(b"%s,New\n" % phone(n).encode() for n in range(15, 20))

    # Hold the piece's transaction inside it: its row for member 105 waits
    # on that member's row, which a session of the test locks.
    locker = hold_member(pgcluster, url, phone(105))
    try:
        def send():
            try:
                piece(a, iid, second, len(first), timeout=120)
            except OSError:
                pass  # A dies without answering

        sent = threading.Thread(target=send, daemon=True)
        sent.start()
        pid = wait_for(lambda: one(pgcluster, url, WAITING), 60,
                       what="A's piece waiting on the member's lock")
        assert "\n" not in pid
        # The rows before the locked one are written, not committed.
        assert one(pgcluster, url, "SELECT count(*) FROM members WHERE "
                   "first_name <> 'Old'") == "10"
        a.kill9()
        # The server learns that A is gone (TCP keep-alives would tell it
        # in time): its transaction is rolled back.
        pgcluster.psql(url, "SELECT pg_terminate_backend(%s)" % pid)
    finally:
        release(pgcluster, url, locker)
    sent.join(scaled(30))

    # On B: the import stands where A's last commit left it.
    r = b.api("GET", "/api/v1/imports/" + iid)
    assert r.status == 200, r
    assert r.json["state"] == "open" and r.json["bytes"] == len(first), r
    assert r.json["counts"]["created"] == 10
    r = piece(b, iid, second, len(first))
    assert r.status == 200, r
    r = b.api("POST", "/api/v1/imports/%s/finish" % iid)
    assert r.status == 200, r
    assert r.json["counts"] == {
        "rows": 30, "created": 20, "updated": 10, "unchanged": 0,
        "opted_out": 0, "duplicates_in_file": 0, "conflicts": 0,
        "rejected": 0, "warnings": 0, "blank": 0}, r.json
    # Each row applied once.
    assert one(pgcluster, url, "SELECT count(*) FROM members") == "30"
    assert one(pgcluster, url, "SELECT count(*) FROM members WHERE "
               "first_name = 'Changed'") == "10"
    assert one(pgcluster, url, """
        SELECT count(*) FROM (SELECT member_id FROM consent_events
        GROUP BY member_id, channel, list_id HAVING count(*) > 1) x""") == "0"
    assert one(pgcluster, url, "SELECT count(*) FROM consent_events") == "30"
    assert one(pgcluster, url, "SELECT count(*) FROM subscriptions") == "30"


def test_piece_holds_no_group(make_daemon, pgcluster):
    """A piece is a transaction of its own (the node's bulk connection,
    queue/store_imports_pg.c): while one is held inside it, the node's
    other writes still commit and answer (here an API enqueue)."""
    url = pgcluster.create_db("importsown")
    a = make_daemon(pg_conf(url, "a", **LISTS), name="a")
    seed_members(a, [phone(1)])
    iid = open_import(a)
    data = b"phone,first_name\n" + b"".join(
        b"%s,New\n" % phone(n).encode() for n in range(5))

    # The piece's row for member 1 waits on that member's row, which a
    # session of the test locks.
    locker = hold_member(pgcluster, url, phone(1))
    answer = {}
    try:
        def send():
            answer["r"] = piece(a, iid, data, 0, timeout=120)

        sent = threading.Thread(target=send, daemon=True)
        sent.start()
        pid = wait_for(lambda: one(pgcluster, url, WAITING), 60,
                       what="the piece waiting on the member's lock")
        # The same node answers an enqueue meanwhile: committed, visible.
        r = a.api("POST", "/api/v1/messages",
                  {"channel": "sms", "to": "+15550300002", "body": "hello",
                   "not_before": 4102444800})
        assert r.status == 202, r
        assert one(pgcluster, url, "SELECT count(*) FROM messages WHERE "
                   "id = %d" % r.json["id"]) == "1"
        # The piece is still held, and nothing of it is visible.
        assert one(pgcluster, url, WAITING) == pid
        assert one(pgcluster, url, "SELECT bytes FROM imports WHERE "
                   "id = '%s'" % iid) == "0"
    finally:
        release(pgcluster, url, locker)
    sent.join(scaled(60))
    r = answer["r"]
    assert r.status == 200, r
    assert r.json["counts"]["created"] == 4, r.json
    assert r.json["counts"]["updated"] == 1, r.json
    r = a.api("GET", "/api/v1/imports/" + iid)
    assert r.status == 200 and r.json["bytes"] == len(data), r
