"""
test_pg_lists_api.py - the lists API on a PostgreSQL store (issue 13,
doc/postgresql.md: daemon/lists_pg.c, queue/store_lists_pg.c, and the
routing of received texts with the stored lists, daemon/inbound.c's
inbound_plan_lists()): two daemons on one database of the session's
throwaway cluster (pgcluster.py), their Twilio sender pointed at
tests/fakes/fakeprov, which records every message they send.

Covered, on states only (no timing assertions):
  - a list created through node A's API is read on node B (one list, all
    lists) and its keyword, texted to B, subscribes the member with the
    list's own welcome, sent once;
  - a member subscribed through B's API shows on A's list members, with
    the counts; a second subscribe is "already"; an unsubscribe on A,
    then again (nothing left); the list's CSV export on B;
  - a PATCH on B moving the list's keywords: the old one, texted to A,
    is a conversation message, the new one subscribes; a keyword or a
    name another list has, a config list changed or deleted: 409;
  - a list with members deleted on A: 409 without force, then with
    force; B answers 404 for it and its keyword texted to B no longer
    subscribes anyone;
  - two nodes creating lists with one keyword (and with one name) at the
    same moment, ten times over: one 201 and one 409 each, one list, and
    no group failed;
  - a node started with a [list] section whose keyword a list made
    through the API holds refuses to start, saying so, as on SQLite, and
    the API's list keeps its keyword.
"""

import csv
import io
import threading
import urllib.parse

from conftest import scaled, wait_for
from fakeprov import CREDENTIALS, fakeprov  # noqa: F401
from test_pg_lists import PROGRAM, TAIL, conf
from test_webhooks import inbound_params, new_sid, post_form

INBOUND = "/webhooks/tw/inbound"
TW = CREDENTIALS["twilio"]
ANA = "+15551230071"
BEN = "+14155550172"


def test_lists_api_across_two_nodes(make_daemon, pgcluster, fakeprov):
    url = pgcluster.create_db("pg_lists_api")
    a = make_daemon(conf(url, "a", fakeprov), name="a")
    b = make_daemon(conf(url, "b", fakeprov), name="b")

    def one(sql):
        return pgcluster.psql(url, sql).strip()

    def text(d, frm, body):
        r = post_form(d, INBOUND, inbound_params(new_sid(), body, frm=frm),
                      token=TW["auth_token"])
        assert r.status == 200, r.body

    def sent(to):
        out = []
        for r in fakeprov.requests("twilio"):
            f = dict(urllib.parse.parse_qsl(r["body"] or ""))
            if f.get("To") == to:
                out.append(f.get("Body"))
        return out

    def subs(phone):
        return one("SELECT string_agg(l.name || ':' || s.status, ',' ORDER "
                   "BY l.name) FROM subscriptions s JOIN lists l ON l.id = "
                   "s.list_id JOIN members m ON m.id = s.member_id WHERE "
                   "m.phone = '%s'" % phone)

    # ---- a list made on A: read on B, its keyword routes on B ----
    r = a.api("POST", "/api/v1/lists",
              {"name": "rally", "keywords": ["rally", "March"],
               "welcome_sms": "{program}: see you at the {list}!" + TAIL})
    assert r.status == 201, r.body
    rally = r.json["id"]
    assert r.headers["Location"] == "/api/v1/lists/%d" % rally
    assert r.json["keywords"] == ["MARCH", "RALLY"]
    assert r.json["from_config"] is False
    assert r.json["counts"] == {"active": 0, "pending": 0, "opted_out": 0,
                                "left": 0}
    got = b.api("GET", "/api/v1/lists/rally")
    assert got.status == 200 and got.json == r.json, got.body
    assert b.api("GET", "/api/v1/lists/%d" % rally).json["name"] == "rally"
    names = [x["name"] for x in b.api("GET", "/api/v1/lists").json["lists"]]
    assert names == ["DARFUR", "VOTE", "rally"]
    assert b.api("GET", "/api/v1/lists/nolist").status == 404

    text(b, ANA, "Rally")
    assert subs(ANA) == "rally:active"
    assert one("SELECT action || ':' || source || ':' || detail FROM "
               "consent_events WHERE list_id = %d" % rally) == \
        "opt_in:keyword:RALLY"
    welcome = PROGRAM + ": see you at the rally!" + TAIL
    wait_for(lambda: sent(ANA) == [welcome], scaled(20),
             what="the list's welcome at the fake")

    # ---- a subscribe on B, seen on A ----
    r = b.api("POST", "/api/v1/lists/%d/members" % rally,
              {"phone": BEN, "consent_source": "rally sign-up sheet"})
    assert r.status == 201, r.body
    ben = r.json["member_id"]
    assert r.json == {"member_id": ben, "list_id": rally, "channel": "sms",
                      "status": "active", "change": "new",
                      "member_created": True, "opted_out": False}
    r = a.api("POST", "/api/v1/lists/rally/members",
              {"member": ben, "consent_source": "again"})
    assert r.status == 200 and r.json["change"] == "already", r.body
    r = a.api("POST", "/api/v1/lists/rally/members",
              {"phone": BEN, "email": "ben@example.org",
               "consent_source": "x"})
    assert r.status == 409, r.body
    assert a.api("POST", "/api/v1/lists/rally/members",
                 {"member": 999999, "consent_source": "x"}).status == 404
    assert a.api("POST", "/api/v1/lists/rally/members",
                 {"phone": BEN}).status == 422
    page = a.api("GET", "/api/v1/lists/rally/members").json
    assert [(m["phone"], m["subscription"]["status"])
            for m in page["members"]] == [(ANA, "active"), (BEN, "active")]
    assert page["next_cursor"] is None
    assert a.api("GET", "/api/v1/lists/rally").json["counts"]["active"] == 2

    # ---- an unsubscribe on A; the export on B ----
    r = a.api("DELETE", "/api/v1/lists/rally/members/%d" % ben)
    assert r.status == 200, r.body
    assert r.json == {"member_id": ben, "list_id": rally, "left": ["sms"],
                      "changed": True}
    r = b.api("DELETE", "/api/v1/lists/rally/members/%d" % ben)
    assert r.json["changed"] is False and r.json["left"] == [], r.body
    r = b.api("GET", "/api/v1/lists/rally/export.csv")
    assert r.status == 200, r.body
    rows = list(csv.reader(io.StringIO(r.body.decode(), newline="")))
    assert [(x[1], x[10]) for x in rows[1:]] == [(ANA, "active"),
                                                  (BEN, "left")]
    assert one("SELECT string_agg(action, ',' ORDER BY id) FROM "
               "consent_events WHERE list_id = %d AND member_id = %d"
               % (rally, ben)) == "opt_in,opt_out"

    # ---- keywords moved on B; conflicts ----
    r = b.api("PATCH", "/api/v1/lists/%d" % rally,
              {"keywords": ["march", "walk"]})
    assert r.status == 200 and r.json["keywords"] == ["MARCH", "WALK"], \
        r.body
    text(a, BEN, "rally")
    assert subs(BEN) == "rally:left"
    assert one("SELECT count(*) FROM conversations c JOIN members m ON "
               "m.id = c.member_id WHERE m.phone = '%s'" % BEN) == "1"
    text(a, BEN, "walk")
    assert subs(BEN) == "rally:active"
    r = a.api("POST", "/api/v1/lists", {"name": "other",
                                        "keywords": ["darfur"]})
    assert r.status == 409, r.body
    assert "keyword DARFUR belongs to list" in r.json["error"]["message"]
    r = a.api("POST", "/api/v1/lists", {"name": "rally"})
    assert r.status == 409, r.body
    assert r.json["error"]["message"] == \
        "list name rally is taken by list %d" % rally
    r = b.api("PATCH", "/api/v1/lists/DARFUR", {"welcome_sms": "x"})
    assert r.status == 409, r.body
    assert "comes from the config file" in r.json["error"]["message"]
    assert b.api("DELETE", "/api/v1/lists/DARFUR").status == 409

    # ---- deleted on A: gone on B, its keyword no longer routes ----
    r = a.api("DELETE", "/api/v1/lists/rally")
    assert r.status == 409, r.body
    assert r.json["error"]["message"] == \
        "list %d has 2 members; use force" % rally
    r = a.api("DELETE", "/api/v1/lists/rally?force=true")
    assert r.status == 200 and r.json == {"id": rally, "deleted": True}, \
        r.body
    assert b.api("GET", "/api/v1/lists/rally").status == 404
    assert b.api("GET", "/api/v1/lists/%d/members" % rally).status == 404
    text(b, "+15551230073", "march")
    assert subs("+15551230073") == ""
    assert one("SELECT count(*) FROM conversations c JOIN members m ON "
               "m.id = c.member_id WHERE m.phone = '+15551230073'") == "1"


def test_lists_created_at_once_on_two_nodes(make_daemon, pgcluster,
                                            fakeprov):
    url = pgcluster.create_db("pg_lists_race")
    a = make_daemon(conf(url, "a", fakeprov), name="a")
    b = make_daemon(conf(url, "b", fakeprov), name="b")
    for i in range(10):
        # one keyword, two names; then one name, two keywords
        for same in ("keyword", "name"):
            bodies = [{"name": "%s-%d-%s" % (same, i, n),
                       "keywords": ["K%s%d" % (same[0], i)]}
                      for n in ("a", "b")]
            if same == "name":
                bodies = [{"name": "n-%d" % i, "keywords": ["N%d%s" % (i, n)]}
                          for n in ("A", "B")]
            out = [None, None]
            go = threading.Barrier(2)

            def post(k, d):
                go.wait()
                out[k] = d.api("POST", "/api/v1/lists", bodies[k])

            ts = [threading.Thread(target=post, args=(k, d))
                  for k, d in enumerate((a, b))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            codes = sorted(r.status for r in out)
            assert codes == [201, 409], [(r.status, r.body) for r in out]
            lost = [r for r in out if r.status == 409][0]
            assert ("belongs to list" if same == "keyword" else
                    "is taken by list") in lost.json["error"]["message"]
    n = int(pgcluster.psql(url, "SELECT count(*) FROM lists WHERE "
                           "from_config = 0").strip())
    assert n == 20
    for d in (a, b):
        assert "members_store_failed" not in d.log()


def test_config_keyword_held_by_an_api_list(make_daemon, pgcluster,
                                            fakeprov):
    url = pgcluster.create_db("pg_lists_taken")
    a = make_daemon(conf(url, "a", fakeprov), name="a")
    r = a.api("POST", "/api/v1/lists", {"name": "petition",
                                        "keywords": ["sign", "petition"]})
    assert r.status == 201, r.body
    pid = r.json["id"]
    b = make_daemon(conf(url, "b", fakeprov,
                         **{"list PETITION2": {"keywords": "sign"}}),
                    name="b", start=False)
    b.expect_log(r"belongs to list")
    b.start(wait=False)
    assert b.proc.wait(scaled(30)) != 0
    assert ("keyword SIGN of [list PETITION2] belongs to list %d (created "
            "through the API)" % pid) in b.log()
    assert a.api("GET", "/api/v1/lists/petition").json["keywords"] == \
        ["PETITION", "SIGN"]
    assert pgcluster.psql(url, "SELECT count(*) FROM lists WHERE name = "
                          "'PETITION2'").strip() == "0"
