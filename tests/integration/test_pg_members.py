"""
test_pg_members.py - the members API on a PostgreSQL store (issue 13,
doc/postgresql.md: daemon/members_pg.c, queue/store_members_pg.c): two
real nodes on one database of a throwaway cluster (pgcluster.py), one
pair of daemons for the module.

Covered, on states only (no timing assertions):
  - a member created on node A is read, searched and patched on node B
    (201 only once committed: B reads it at once); a create's
    subscriptions with their consent events (an unknown list, a missing
    consent_source, a channel without its address: 422; email to a
    double opt-in list: 503, nothing written); the search's filters
    (phone, email, name, tag, list by id and by name), its pages, an
    unknown list (404); a PATCH's merge of attributes and its tags; a
    phone another member has (409), a member left with neither phone
    nor email (422), an unknown member (404);
  - an opt-out through B's API suppresses, at send time, the message A
    had accepted for that member before (the console outbox never sees
    it), while a message to another member accepted with it is sent; the
    opt-out's consent_events row is what SQLite writes; a second opt-out
    changes nothing; the opt-in on A; the consent log read on either
    node, and its CSV export (one member's, everyone's);
  - the same member created on both nodes at once, ten times over: one
    201 and one 409 each, one member each, and no group failed.
"""

import csv
import io
import threading
import time

from conftest import scaled, wait_for
from test_pg_nodes import outbox, pg_conf


def one(pg, url, sql):
    return pg.psql(url, sql).strip()


def test_members_across_two_nodes(make_daemon, pgcluster):
    url = pgcluster.create_db("members2")
    a = make_daemon(pg_conf(url, "a"), name="a")
    b = make_daemon(pg_conf(url, "b"), name="b")

    # ---- create on A, read on B ----
    r = a.api("POST", "/api/v1/members",
              {"phone": "+1 415 555 0101", "email": "Ada@Example.org",
               "first_name": "Ada", "last_name": "Lovelace",
               "tags": ["volunteer", "nyc"],
               "attributes": {"shirt": "M", "ward": 3}})
    assert r.status == 201, r.body
    ada = r.json["id"]
    assert r.headers["Location"] == "/api/v1/members/%d" % ada
    assert r.json["phone"] == "+14155550101"
    assert r.json["email"] == "ada@example.org"
    m = b.api("GET", "/api/v1/members/%d" % ada).json
    assert m["first_name"] == "Ada" and m["tags"] == ["volunteer", "nyc"]
    assert m["attributes"] == {"shirt": "M", "ward": 3}
    assert m["channels"]["sms"] == {"opted_out": False,
                                    "opted_out_at": None, "source": None}
    assert m["subscriptions"] == []
    r = b.api("POST", "/api/v1/members",
              {"email": "grace@example.org", "first_name": "Grace",
               "last_name": "HOPPER", "tags": ["nyc"]})
    assert r.status == 201, r.body
    grace = r.json["id"]
    r = a.api("POST", "/api/v1/members", {"phone": "+14155550101"})
    assert r.status == 409, r.body
    assert ("phone +14155550101 already belongs to member %d" % ada
            in r.json["error"]["message"])
    r = a.api("POST", "/api/v1/members", {"first_name": "Nobody"})
    assert r.status == 422, r.body
    assert b.api("GET", "/api/v1/members/%d" % (grace + 100)).status == 404
    assert b.api("GET", "/api/v1/members/abc").status == 404

    # ---- search on B ----
    def ids(path, node=b):
        r = node.api("GET", path)
        assert r.status == 200, (path, r.body)
        return [x["id"] for x in r.json["members"]]
    assert ids("/api/v1/members") == [ada, grace]
    assert ids("/api/v1/members?phone=%2B14155550101") == [ada]
    assert ids("/api/v1/members?email=GRACE@example.org") == [grace]
    assert ids("/api/v1/members?name=hop") == [grace]
    assert ids("/api/v1/members?name=LOVE") == [ada]
    assert ids("/api/v1/members?name=%25") == []
    assert ids("/api/v1/members?tag=nyc") == [ada, grace]
    assert ids("/api/v1/members?tag=volunteer") == [ada]
    r = b.api("GET", "/api/v1/members?limit=1")
    assert [x["id"] for x in r.json["members"]] == [ada]
    assert r.json["next_cursor"] == str(ada)
    r = b.api("GET", "/api/v1/members?limit=1&after=%d" % ada)
    assert [x["id"] for x in r.json["members"]] == [grace]
    assert r.json["next_cursor"] is None
    assert b.api("GET", "/api/v1/members?list=nosuch").status == 404
    lid = int(one(pgcluster, url, """
        INSERT INTO lists (name, created_at, updated_at)
            VALUES ('rally', 1, 1) RETURNING id"""))
    pgcluster.psql(url, "INSERT INTO subscriptions (member_id, list_id, "
                   "channel, status, source, created_at, updated_at) "
                   "VALUES (%d, %d, 'email', 'active', 'api', 1, 1)"
                   % (grace, lid))
    assert ids("/api/v1/members?list=rally") == [grace]
    assert ids("/api/v1/members?list=%d&tag=nyc" % lid, a) == [grace]
    m = a.api("GET", "/api/v1/members/%d" % grace).json
    assert [(s["list"], s["channel"], s["status"])
            for s in m["subscriptions"]] == [("rally", "email", "active")]

    # ---- a create's subscriptions, with their consent events ----
    pgcluster.psql(url, "INSERT INTO lists (name, double_optin, created_at,"
                   " updated_at) VALUES ('confirmed', 1, 1, 1)")
    r = a.api("POST", "/api/v1/members",
              {"phone": "+14155550102", "email": "lin@example.org",
               "subscribe": [{"list": "rally"},
                             {"list": lid, "channel": "email"},
                             {"list": "confirmed"}],
               "consent_source": "rally form"})
    assert r.status == 201, r.body
    lin = r.json["id"]
    assert [(s["list"], s["channel"], s["status"], s["source"])
            for s in r.json["subscriptions"]] == [
        ("rally", "email", "active", "api"), ("rally", "sms", "active", "api"),
        ("confirmed", "sms", "active", "api")]
    assert one(pgcluster, url, """
        SELECT string_agg(concat_ws(',', e.channel, e.action, e.source,
            l.name, e.detail), ';' ORDER BY e.id) FROM consent_events e
        JOIN lists l ON l.id = e.list_id WHERE e.member_id = %d""" % lin) == (
        "sms,opt_in,api,rally,rally form;email,opt_in,api,rally,rally form;"
        "sms,opt_in,api,confirmed,rally form")
    for body, code in (
            ({"phone": "+14155550103", "subscribe": [{"list": "nosuch"}],
              "consent_source": "x"}, 422),
            ({"phone": "+14155550103", "subscribe": [{"list": "rally"}]},
             422),
            ({"phone": "+14155550103",
              "subscribe": [{"list": "rally", "channel": "email"}],
              "consent_source": "x"}, 422)):
        r = b.api("POST", "/api/v1/members", body)
        assert r.status == code, (body, r.body)
    assert one(pgcluster, url, "SELECT count(*) FROM members WHERE phone ="
               " '+14155550103'") == "0"
    # by email to a double opt-in list: pending, with its confirmation
    # email (test_pg_links.py follows its link)
    r = b.api("POST", "/api/v1/members",
              {"email": "x3@example.org", "consent_source": "x",
               "subscribe": [{"list": "confirmed"}]})
    assert r.status == 201, r.body
    assert [(s["list"], s["channel"], s["status"])
            for s in r.json["subscriptions"]] == [
        ("confirmed", "email", "pending")]
    assert one(pgcluster, url, "SELECT subject FROM messages"
               " WHERE to_addr = 'x3@example.org'") == \
        "Please confirm: confirmed"

    # ---- patch on B ----
    r = b.api("PATCH", "/api/v1/members/%d" % ada,
              {"first_name": "Augusta", "add_tags": ["donor"],
               "remove_tags": ["nyc"],
               "attributes": {"shirt": None, "team": "blue"}})
    assert r.status == 200, r.body
    m = a.api("GET", "/api/v1/members/%d" % ada).json
    assert m["first_name"] == "Augusta"
    assert m["tags"] == ["volunteer", "donor"]
    assert m["attributes"] == {"ward": 3, "team": "blue"}
    r = a.api("PATCH", "/api/v1/members/%d" % grace,
              {"phone": "+14155550101"})
    assert r.status == 409, r.body
    r = a.api("PATCH", "/api/v1/members/%d" % grace, {"email": None})
    assert r.status == 422, r.body
    r = a.api("PATCH", "/api/v1/members/%d" % (grace + 100),
              {"first_name": "X"})
    assert r.status == 404, r.body

    # ---- opt-out on B suppresses what A queued ----
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                          time.gmtime(time.time() + 3))
    r = a.api("POST", "/api/v1/messages",
              {"channel": "sms", "to": "+14155550101", "body": "to ada",
               "not_before": later})
    assert r.status == 202, r.body
    held = r.json["id"]
    r = a.api("POST", "/api/v1/messages",
              {"channel": "sms", "to": "+14155550199", "body": "to another",
               "not_before": later})
    assert r.status == 202, r.body
    other = r.json["id"]
    r = b.api("POST", "/api/v1/members/%d/optout" % ada,
              {"channel": "sms", "detail": "asked by phone"})
    assert r.status == 200, r.body
    assert r.json["changed"] is True
    assert r.json["channels"]["sms"]["opted_out"] is True
    assert r.json["channels"]["sms"]["source"] == "api"
    wait_for(lambda: one(pgcluster, url, "SELECT status FROM messages "
                         "WHERE id = %d" % held) == "suppressed",
             scaled(20), what="message %d suppressed" % held)
    wait_for(lambda: one(pgcluster, url, "SELECT status FROM messages "
                         "WHERE id = %d" % other) == "sent",
             scaled(20), what="message %d sent" % other)
    assert not [x for x in outbox(a) + outbox(b) if x["id"] == held]
    assert one(pgcluster, url, """
        SELECT member_id, channel, action, source, list_id IS NULL,
               message_id IS NULL, detail FROM consent_events
        WHERE member_id = %d ORDER BY id""" % ada) == (
        "%d|sms|opt_out|api|t|t|asked by phone" % ada)
    r = a.api("POST", "/api/v1/members/%d/optout" % ada, {"channel": "sms"})
    assert r.status == 200 and r.json["changed"] is False, r.body
    assert a.api("POST", "/api/v1/members/%d/optout" % (grace + 100),
                 {"channel": "sms"}).status == 404
    r = a.api("POST", "/api/v1/members/%d/optin" % ada, {"channel": "sms"})
    assert r.status == 200 and r.json["changed"] is True, r.body
    assert r.json["channels"]["sms"]["opted_out"] is False
    r = b.api("GET", "/api/v1/members/%d/consent" % ada)
    assert r.status == 200, r.body
    assert [(e["channel"], e["action"], e["source"], e["detail"],
             e["list"]) for e in r.json["events"]] == [
        ("sms", "opt_out", "api", "asked by phone", None),
        ("sms", "opt_in", "api", None, None)]
    assert r.json["member_id"] == ada and r.json["next_cursor"] is None
    r = a.api("GET", "/api/v1/members/%d/consent?limit=1" % ada)
    assert len(r.json["events"]) == 1 and r.json["next_cursor"] is not None
    r = a.api("GET", "/api/v1/members/%d/consent" % grace)
    assert r.status == 200 and r.json["events"] == [], r.body
    assert a.api("GET", "/api/v1/members/%d/consent"
                 % (grace + 100)).status == 404
    # the consent log's CSV export, of one member and of all
    r = b.api("GET", "/api/v1/consent/export.csv?member=%d" % ada)
    assert r.status == 200, r.body
    assert r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.body.decode())))
    assert rows[0] == ["id", "member_id", "phone", "email", "channel",
                       "action", "source", "list", "message_id", "detail",
                       "at"]
    assert [row[1:10] for row in rows[1:]] == [
        [str(ada), "+14155550101", "ada@example.org", "sms", "opt_out",
         "api", "", "", "asked by phone"],
        [str(ada), "+14155550101", "ada@example.org", "sms", "opt_in",
         "api", "", "", ""]]
    assert rows[1][10].endswith("Z")
    r = a.api("GET", "/api/v1/consent/export.csv")
    assert r.status == 200, r.body
    assert len(list(csv.reader(io.StringIO(r.body.decode())))) == 7
    assert a.api("GET", "/api/v1/consent/export.csv?member=%d"
                 % (grace + 100)).status == 404

    # ---- the same member created on both nodes at once ----
    for i in range(10):
        phone = "+1415555%04d" % (200 + i)
        codes = []
        go = threading.Barrier(2)

        def create(node):
            go.wait()
            codes.append(node.api("POST", "/api/v1/members",
                                  {"phone": phone,
                                   "email": "same%d@example.org" % i})
                         .status)
        threads = [threading.Thread(target=create, args=(n,)) for n in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [201, 409], (phone, codes)
        assert one(pgcluster, url, "SELECT count(*) FROM members WHERE "
                   "phone = '%s' OR email = 'same%d@example.org'"
                   % (phone, i)) == "1"
    for d in (a, b):
        assert "members_store_failed" not in d.log()
