"""
test_pg_lists.py - lists, list keywords and conversation messages on a
PostgreSQL store (issue 13, doc/postgresql.md: queue/store_lists.c's
store_lists_sync_pg(), queue/queue_pg.c's qpg_sql_route, daemon/inbound.c's
inbound_plan()): two daemons on one database of the session's throwaway
cluster (pgcluster.py), their Twilio sender pointed at tests/fakes/fakeprov,
which records every message they send.

Covered, on states only (no timing assertions):
  - two nodes starting together with the same [list] sections: one row per
    list, its keywords, marked from the config;
  - a keyword texted to node A: the member subscribed (sms, active), one
    consent event with the list and the keyword, the welcome queued and
    sent once; Twilio's retry of the same webhook to node B changes
    nothing (no second row, event or welcome);
  - a keyword of a list the member is on: the "already" reply;
  - double opt-in: the keyword on node A makes the subscription pending
    with the "reply YES" text; YES on node B confirms it (a confirm
    event) and sends that list's welcome;
  - a text that is no keyword lands in a conversation row (made on the
    first, bumped on the second, on the other node), the texts linked to
    it, each announced by a "message" and a "conversation" event; an
    opted-out member's keyword lifts the opt-out;
  - a node restarted with another config: its lists win (a changed
    welcome, a keyword moved, a list gone from the config unmarked with
    its keywords dropped), still one row per list.
"""

import urllib.parse

from conftest import wait_for, scaled
from fakeprov import CREDENTIALS, OUR_NUMBER, fakeprov  # noqa: F401
from test_webhooks import PUBLIC, inbound_params, new_sid, post_form

MEMBER = "+15551230061"
INBOUND = "/webhooks/tw/inbound"
TW = CREDENTIALS["twilio"]
PROGRAM = "Darfur Now"
TAIL = " Msg freq varies. Msg&data rates may apply. Reply HELP for help," \
    " STOP to end."


def conf(url, node, fp, **lists):
    c = {"store": {"backend": "postgresql", "url": url, "node": node},
         "http": {"public_url": PUBLIC},
         "dispatch": {"retry_base": "200ms", "retry_max": "5s"},
         "sms": {"program": PROGRAM, "contact": "help@darfur.example",
                 "default_sender": "tw"},
         "sender tw": {"provider": "twilio", "from": OUR_NUMBER,
                       "account_sid": TW["account_sid"],
                       "auth_token": TW["auth_token"],
                       "base_url": fp.url, "timeout": "1s"},
         "list DARFUR": {"keywords": "darfur, sudan",
                         "welcome": "{program}: welcome to {list}!" + TAIL},
         "list VOTE": {"keywords": "vote", "double_optin": "yes",
                       "welcome": "{program}: {list} confirmed." + TAIL}}
    c.update(lists)
    return c


def test_lists_keywords_conversations_on_postgresql(make_daemon, pgcluster,
                                                     fakeprov):
    url = pgcluster.create_db("pg_lists")

    def one(sql):
        return pgcluster.psql(url, sql).strip()

    def count(sql):
        return int(one(sql))

    # Two nodes starting together with the same lists.
    a = make_daemon(conf(url, "a", fakeprov), name="a", start=False)
    b = make_daemon(conf(url, "b", fakeprov), name="b", start=False)
    a.start(wait=False)
    b.start(wait=False)
    a.wait_ready(scaled(30))
    b.wait_ready(scaled(30))
    assert one("SELECT string_agg(name || ':' || from_config || ':' || "
               "double_optin, ',' ORDER BY name) FROM lists") == \
        "DARFUR:1:0,VOTE:1:1"
    assert one("SELECT string_agg(k.keyword || '=' || l.name, ',' ORDER BY "
               "k.keyword) FROM list_keywords k JOIN lists l ON "
               "l.id = k.list_id") == "DARFUR=DARFUR,SUDAN=DARFUR,VOTE=VOTE"

    def text(d, body, sid=None):
        r = post_form(d, INBOUND, inbound_params(sid or new_sid(), body,
                                                 frm=MEMBER),
                      token=TW["auth_token"])
        assert r.status == 200, r.body

    def sent():
        """The bodies the fake got for MEMBER, oldest first."""
        out = []
        for r in fakeprov.requests("twilio"):
            f = dict(urllib.parse.parse_qsl(r["body"] or ""))
            if f.get("To") == MEMBER:
                out.append(f.get("Body"))
        return out

    def idle():
        wait_for(lambda: count("SELECT count(*) FROM messages WHERE "
                               "status IN ('queued', 'sending')") == 0,
                 scaled(20), what="an idle queue")

    member = "(SELECT id FROM members WHERE phone = '%s')" % MEMBER
    subs = "SELECT string_agg(l.name || ':' || s.status || ':' || " \
        "s.channel, ',' ORDER BY l.name) FROM subscriptions s JOIN lists l " \
        "ON l.id = s.list_id WHERE s.member_id = " + member
    events = "SELECT string_agg(e.action || ':' || coalesce(l.name, '-') " \
        "|| ':' || coalesce(e.detail, '-'), ',' ORDER BY e.id) FROM " \
        "consent_events e LEFT JOIN lists l ON l.id = e.list_id"
    welcome_darfur = PROGRAM + ": welcome to DARFUR!" + TAIL

    # A keyword on node A: joined, one event, the welcome sent once.
    sid = new_sid()
    text(a, " Darfur! ", sid)
    assert one(subs) == "DARFUR:active:sms"
    assert one(events) == "opt_in:DARFUR:DARFUR"
    idle()
    wait_for(lambda: sent() == [welcome_darfur], scaled(20),
             what="the welcome at the fake")
    # Twilio's retry of the same webhook, to node B: nothing changes.
    text(b, " Darfur! ", sid)
    assert count("SELECT count(*) FROM messages WHERE direction = 'in'") == 1
    assert count("SELECT count(*) FROM messages WHERE direction = 'out'") \
        == 1
    assert one(events) == "opt_in:DARFUR:DARFUR"
    assert "msg_received_again" in b.log()
    # Its keyword again (another text): "already".
    text(b, "sudan")
    assert one(events) == "opt_in:DARFUR:DARFUR"
    assert "action=already list=DARFUR keyword=SUDAN" in b.log()

    # Double opt-in: pending on node A, confirmed by YES on node B.
    text(a, "VOTE")
    assert one(subs) == "DARFUR:active:sms,VOTE:pending:sms"
    text(b, "yes")
    assert one(subs) == "DARFUR:active:sms,VOTE:active:sms"
    assert one(events) == "opt_in:DARFUR:DARFUR,opt_in:VOTE:VOTE," \
        "confirm:VOTE:YES"
    assert "action=confirm list=VOTE" in b.log()
    idle()
    got = wait_for(lambda: (lambda s: s if len(s) >= 4 else None)(sent()),
                   scaled(20), what="four messages at the fake")
    assert got[0] == welcome_darfur
    assert "already" in got[1]
    assert "YES" in got[2] and "VOTE" in got[2]
    assert got[3] == PROGRAM + ": VOTE confirmed." + TAIL
    assert sent().count(welcome_darfur) == 1

    # Texts that are no keyword: one conversation, on either node.
    text(a, "Is the meeting at 6 tonight?")
    conv = "SELECT id || ':' || status || ':' || unread || ':' || sender " \
        "FROM conversations WHERE member_id = " + member
    cid = one("SELECT id FROM conversations WHERE member_id = " + member)
    assert one(conv) == "%s:open:1:tw" % cid
    text(b, "hello")  # one word, no keyword
    assert one(conv) == "%s:open:2:tw" % cid
    assert count("SELECT count(*) FROM messages WHERE direction = 'in' "
                 "AND conversation_id = %s AND member_id = %s"
                 % (cid, member)) == 2
    assert "action=conversation conversation=%s" % cid in a.log()
    # Each announced to the staff page (written once the text committed).
    wait_for(lambda: one(
        "SELECT string_agg(type, ',' ORDER BY id) FROM events WHERE "
        "(type = 'message' AND data::json->>'conversation_id' = '%s' AND "
        "data::json->>'direction' = 'in') OR (type = 'conversation' AND "
        "data::json->>'id' = '%s')" % (cid, cid))
        == "message,conversation,message,conversation", scaled(10),
        what="the conversation's events")
    assert "inbound_not_routed" not in a.log() + b.log()

    # An opted-out member's keyword lifts the opt-out.
    text(a, "STOP")
    assert count("SELECT count(*) FROM sms_optout") == 1
    text(b, "darfur")
    assert count("SELECT count(*) FROM sms_optout") == 0
    assert one(events).endswith("opt_out:-:-,opt_in:-:DARFUR")
    assert "action=join list=DARFUR keyword=DARFUR" in b.log()

    # Node B restarted with another config: its lists win.
    b.stop()
    b.configure({"list VOTE": None,
                 "list DARFUR": {"keywords": "darfur, vote",
                                 "welcome": "{program}: hi from {list}."
                                 + TAIL}})
    b.start()
    assert one("SELECT string_agg(name || ':' || from_config, ',' ORDER BY "
               "name) FROM lists") == "DARFUR:1,VOTE:0"
    assert one("SELECT string_agg(k.keyword || '=' || l.name, ',' ORDER BY "
               "k.keyword) FROM list_keywords k JOIN lists l ON "
               "l.id = k.list_id") == "DARFUR=DARFUR,VOTE=DARFUR"
    assert one("SELECT welcome_sms FROM lists WHERE name = 'DARFUR'") == \
        PROGRAM + ": hi from DARFUR." + TAIL
