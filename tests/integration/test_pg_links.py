"""
test_pg_links.py - one-click unsubscribe (/u/TOKEN) on the PostgreSQL
store (issue 13, doc/postgresql.md): two real daemons on one database of
a throwaway cluster (pgcluster.py), sharing the link-signing key as the
nodes of one deployment must (conftest gives every PostgreSQL daemon the
same var/email.key).

What is checked, on states only (no timing assertions):
  - an email sent by one node carries a signed List-Unsubscribe link;
    GET on the OTHER node shows the page and changes nothing; the
    one-click POST there answers 200 once the opt-out committed: the
    member is opted out of email (source web, one consent event carrying
    the message), and a later email to them, in any case, sent by
    either node, ends suppressed; repeating the POST, on either node,
    answers 200 and records nothing more;
  - a link signed with another key is refused (403) and changes nothing;
  - a PostgreSQL node without its [email] secret_file refuses to start,
    saying to copy the key from the first node, and creates none;
  - email double opt-in: a member created on node A subscribing by email
    to a double opt-in list is pending with its confirmation email; the
    link's GET on node B shows the page and changes nothing; its POST on
    B answers 200 once the subscription is active (one confirm event)
    and the welcome email queued; a second click, on B and on A, is the
    same page and records nothing more; two nodes serving one click at
    once confirm it once;
  - a list's follow-up questions across nodes (texts through the fake
    Twilio): the keyword texted to node A gets the welcome and the first
    question; the answer texted to node B is stored on the member and
    B asks the next question; a bad answer to A is asked again, the
    good one to B stored; the answers are no inbox messages, the bad one
    is; the next text is a conversation message again; YES to B on a
    double opt-in list asks its question, an email another member has
    is a bad answer, the next one is stored.
"""

import email
import email.policy
import re
import threading

from conftest import scaled, wait_for
from fakeprov import fakeprov  # noqa: F401
from test_pg_nodes import pg_conf

PUBLIC = "https://act.example.org"
LINKS = {"http": {"public_url": PUBLIC + "/"}}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ONE_CLICK = b"List-Unsubscribe=One-Click"
U_RE = re.compile(r"https://act\.example\.org/u/([A-Za-z0-9_-]+)")
C_RE = re.compile(r"https://act\.example\.org/c/([A-Za-z0-9_-]+)")
NEWS = {"list newsletter": {"keywords": "news", "double_optin": "yes",
                            "welcome_email_subject": "Welcome",
                            "welcome_email": "Glad you are here."}}


def two_nodes(make_daemon, url):
    return [make_daemon(pg_conf(url, name, **LINKS), name=name)
            for name in ("a", "b")]


def send_email(d, to):
    r = d.api("POST", "/api/v1/messages",
              {"channel": "email", "to": to, "subject": "Rally",
               "body": "Join us at noon.\n"})
    assert r.status == 202, r.body
    return r.json["id"]


def final_status(d, mid, status):
    m = {}

    def reached():
        m.update(d.api("GET", "/api/v1/messages/%d" % mid).json)
        return m.get("status") == status
    wait_for(reached, scaled(20), what="message %d %s" % (mid, status))
    return m


def sent_by(nodes, mid):
    """(the node whose file adapter wrote message mid, the parsed .eml)."""
    final_status(nodes[0], mid, "sent")
    for d in nodes:
        path = d.mail_dir / ("%d.eml" % mid)
        if path.exists():
            return d, email.message_from_bytes(
                path.read_bytes(), policy=email.policy.default)
    raise AssertionError("message %d sent but in no mail dir" % mid)


def post(d, path, raw=ONE_CLICK, headers=FORM):
    return d.api("POST", path, raw=raw, token=None, headers=headers)


def optouts(pg, url):
    return pg.psql(url, "SELECT m.email || ' ' || o.source FROM email_optout o"
                   " JOIN members m ON m.id = o.member_id ORDER BY 1").strip()


def consent(pg, url):
    return pg.psql(url, "SELECT m.email || ' ' || e.channel || ' ' ||"
                   " e.action || ' ' || e.source || ' ' || e.message_id"
                   " FROM consent_events e JOIN members m"
                   " ON m.id = e.member_id ORDER BY e.id").strip()


def test_link_made_by_one_node_works_on_the_other(make_daemon, pgcluster):
    url = pgcluster.create_db("links2")
    nodes = two_nodes(make_daemon, url)
    mid = send_email(nodes[0], "Ann@Example.org")
    maker, msg = sent_by(nodes, mid)
    other = nodes[1] if maker is nodes[0] else nodes[0]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    m = U_RE.search(str(msg["List-Unsubscribe"]))
    assert m, msg["List-Unsubscribe"]
    path = "/u/" + m.group(1)

    # GET on the other node: the page, and nothing changes (link
    # scanners prefetch).
    r = other.api("GET", path, token=None)
    assert r.status == 200, (r.status, r.body)
    assert '<form method="post">' in r.text
    assert optouts(pgcluster, url) == ""

    # The one-click POST on the other node: 200 after the commit.
    r = post(other, path)
    assert r.status == 200, (r.status, r.body)
    assert "unsubscribed" in r.text
    assert optouts(pgcluster, url) == "ann@example.org web"
    assert consent(pgcluster, url) == \
        "ann@example.org email opt_out web %d" % mid
    assert re.search(r"\bmember_opted_out channel=email .*source=web "
                     r"msg=%d\b" % mid, other.log())

    # Again, on both nodes: 200, nothing more recorded.
    for d in (other, maker):
        r = post(d, path, raw=b"", headers={})
        assert r.status == 200, (r.status, r.body)
    assert optouts(pgcluster, url) == "ann@example.org web"
    assert len(consent(pgcluster, url).splitlines()) == 1

    # Nothing more goes to that address, whatever its case, from either
    # node's API.
    for d, to in ((maker, "ann@example.org"), (other, "ANN@example.ORG")):
        mid2 = send_email(d, to)
        m2 = final_status(d, mid2, "suppressed")
        assert m2["error"]["text"] == "recipient opted out", m2
        assert not any((n.mail_dir / ("%d.eml" % mid2)).exists()
                       for n in nodes)


def test_link_signed_with_another_key_refused(make_daemon, pgcluster):
    url = pgcluster.create_db("links_key")
    a = make_daemon(pg_conf(url, "a", **LINKS), name="a")
    # c signs with a key of its own (a deployment that did not copy it).
    c = make_daemon(pg_conf(url, "c", **LINKS), name="c", start=False)
    key = c.dir / "own.key"
    key.write_bytes(b"f" * 64)
    key.chmod(0o600)
    c.configure({"email": {"secret_file": str(key)}})
    c.start()
    # The link is made by whichever node holds the email route.
    mid = send_email(c, "bo@example.org")
    maker, msg = sent_by([a, c], mid)
    other = a if maker is c else c
    path = "/u/" + U_RE.search(str(msg["List-Unsubscribe"])).group(1)
    r = other.api("GET", path, token=None)
    assert r.status == 403, (r.status, r.body)
    r = post(other, path)
    assert r.status == 403, (r.status, r.body)
    assert optouts(pgcluster, url) == ""
    # The node that made it still takes it.
    assert post(maker, path).status == 200
    assert optouts(pgcluster, url) == "bo@example.org web"


def test_node_without_key_refuses_to_start(make_daemon, pgcluster):
    url = pgcluster.create_db("links_nokey")
    d = make_daemon(pg_conf(url, "lone", **LINKS), name="lone", start=False)
    missing = d.dir / "var" / "shared.key"
    d.configure({"email": {"secret_file": str(missing)}})
    d.start(wait=False)
    assert d.proc.wait(scaled(30)) != 0
    log = d.log()
    assert "email secret %s: missing" % missing in log, log
    assert "copy the file from the first node" in log, log
    assert "openssl rand -hex 32" in log, log
    assert not missing.exists()
    d.expect_log(r"email secret .*: missing")


def sub_state(pg, url, addr):
    return pg.psql(url, "SELECT s.status FROM subscriptions s JOIN members m"
                   " ON m.id = s.member_id WHERE m.email = '%s'" % addr
                   ).strip()


def list_consent(pg, url, addr):
    return pg.psql(url, "SELECT string_agg(e.action || ' ' || e.source,"
                   " ',' ORDER BY e.id) FROM consent_events e JOIN members m"
                   " ON m.id = e.member_id WHERE m.email = '%s'" % addr
                   ).strip()


def mails_to(pg, url, addr):
    return pg.psql(url, "SELECT coalesce(string_agg(subject, ',' ORDER BY"
                   " id), '') FROM messages WHERE to_addr = '%s'" % addr
                   ).strip()


def signup(pg, url, nodes, d, addr):
    """addr created on node d, subscribed by email to the double opt-in
    list: its confirmation link's path, once the email is sent."""
    r = d.api("POST", "/api/v1/members",
              {"email": addr, "consent_source": "signup form",
               "subscribe": [{"list": "newsletter", "channel": "email"}]})
    assert r.status == 201, r.body
    assert [s["status"] for s in r.json["subscriptions"]] == ["pending"]
    mid = int(pg.psql(url, "SELECT id FROM messages WHERE to_addr = '%s'"
                      % addr).strip())
    _, msg = sent_by(nodes, mid)
    assert str(msg["Subject"]) == "Please confirm: newsletter"
    m = C_RE.search(msg.get_body(("plain",)).get_content())
    assert m, msg.get_body(("plain",)).get_content()
    return "/c/" + m.group(1)


def test_confirmation_made_by_one_node_confirms_on_the_other(make_daemon,
                                                           pgcluster):
    url = pgcluster.create_db("confirm2")
    a, b = [make_daemon(pg_conf(url, name, **LINKS, **NEWS), name=name)
            for name in ("a", "b")]
    path = signup(pgcluster, url, (a, b), a, "joe@example.org")
    assert sub_state(pgcluster, url, "joe@example.org") == "pending"

    # GET on B: the page naming the list; nothing changes.
    r = b.api("GET", path, token=None)
    assert r.status == 200, (r.status, r.body)
    assert "newsletter" in r.text and '<form method="post">' in r.text
    assert sub_state(pgcluster, url, "joe@example.org") == "pending"

    # The POST on B: 200 once the subscription is active, one confirm
    # event, the welcome queued (and sent by either node).
    r = post(b, path, raw=b"", headers={})
    assert r.status == 200, (r.status, r.body)
    assert "subscribed" in r.text
    assert sub_state(pgcluster, url, "joe@example.org") == "active"
    assert list_consent(pgcluster, url, "joe@example.org") == \
        "opt_in api,confirm web"
    assert mails_to(pgcluster, url, "joe@example.org") == \
        "Please confirm: newsletter,Welcome"
    assert re.search(r"email_subscription_confirmed member=\d+ list=\d+ "
                     r"opted_back_in=0", b.log())

    # A second click, on B and on A: the same page, nothing more.
    for d in (b, a):
        r = post(d, path)
        assert r.status == 200, (r.status, r.body)
        assert "subscribed" in r.text
    assert list_consent(pgcluster, url, "joe@example.org") == \
        "opt_in api,confirm web"
    assert mails_to(pgcluster, url, "joe@example.org") == \
        "Please confirm: newsletter,Welcome"

    # One click served by both nodes at once: confirmed once.
    path = signup(pgcluster, url, (a, b), b, "kay@example.org")
    go = threading.Barrier(2)
    codes = []

    def click(d):
        go.wait()
        codes.append(post(d, path).status)
    ts = [threading.Thread(target=click, args=(d,)) for d in (a, b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert codes == [200, 200], codes
    assert sub_state(pgcluster, url, "kay@example.org") == "active"
    assert list_consent(pgcluster, url, "kay@example.org") == \
        "opt_in api,confirm web"
    assert mails_to(pgcluster, url, "kay@example.org") == \
        "Please confirm: newsletter,Welcome"
    assert len(re.findall(r"email_subscription_confirmed", a.log() +
                          b.log())) == 2


def test_questions_asked_by_one_node_answered_on_the_other(make_daemon,
                                                          pgcluster,
                                                          fakeprov):
    import urllib.parse
    from test_pg_lists import MEMBER, INBOUND, TW, conf
    from test_webhooks import inbound_params, new_sid, post_form

    url = pgcluster.create_db("questions2")
    ask = {"list ASK": {"keywords": "ask", "questions": "first_name, zip",
                        "ask_zip": "And your ZIP code?"},
           "list POLL": {"keywords": "poll", "double_optin": "yes",
                         "questions": "email"}}
    a, b = [make_daemon(conf(url, name, fakeprov, **ask), name=name)
            for name in ("a", "b")]
    assert "list_questions_not_asked" not in a.log() + b.log()

    def one(sql):
        return pgcluster.psql(url, sql).strip()

    def text(d, body):
        r = post_form(d, INBOUND, inbound_params(new_sid(), body,
                                                 frm=MEMBER),
                      token=TW["auth_token"])
        assert r.status == 200, r.body

    def sent():
        out = []
        for r in fakeprov.requests("twilio"):
            f = dict(urllib.parse.parse_qsl(r["body"] or ""))
            if f.get("To") == MEMBER:
                out.append(f.get("Body"))
        return out

    def queued():
        """The replies to MEMBER in the store, oldest first."""
        return one("SELECT string_agg(body, '|' ORDER BY id) FROM messages"
                   " WHERE direction = 'out' AND to_addr = '%s'"
                   % MEMBER).split("|")

    member = "(SELECT id FROM members WHERE phone = '%s')" % MEMBER
    prompt = "SELECT coalesce((SELECT l.name || ':' || p.question || ':' ||" \
        " p.attempts FROM member_prompts p JOIN lists l ON l.id = p.list_id" \
        " WHERE p.member_id = %s), '-')" % member
    fields = "SELECT coalesce(first_name, '-') || ':' || coalesce(zip, '-')" \
        " FROM members WHERE id = " + member
    unread = "SELECT coalesce(sum(unread), 0) FROM conversations"

    # The keyword to node A: the welcome, then the first question.
    text(a, "ask")
    got = queued()
    assert len(got) == 2 and got[1] == "What's your first name?", got
    assert one(prompt) == "ASK:0:0"
    # Its answer to node B: stored, and B asks the next question.
    text(b, "  mary ann ")
    assert one(fields) == "Mary Ann:-"
    assert one(prompt) == "ASK:1:0"
    assert queued()[2:] == ["And your ZIP code?"]
    assert "action=answer list=ASK field=first_name" in b.log()
    # A bad answer to A: asked again; the good one to B: stored, done.
    text(a, "nowhere")
    got = queued()
    assert len(got) == 4 and got[3].startswith("Sorry") and \
        "And your ZIP code?" in got[3], got
    assert one(prompt) == "ASK:1:1"
    assert "action=bad_answer list=ASK field=zip reask=1" in a.log()
    text(b, "02139")
    assert one(fields) == "Mary Ann:02139"
    assert one(prompt) == "-"
    assert len(queued()) == 4
    # The good answers are no inbox messages; the bad one is.
    assert one(unread) == "1"
    # Every reply reaches the fake, once.
    wait_for(lambda: len(sent()) == 4, scaled(20), what="4 replies")
    assert sent() == queued()
    # The next text is a conversation message again.
    text(a, "see you at the rally")
    assert one(unread) == "2"
    assert len(queued()) == 4

    # A double opt-in list: YES on B confirms, welcomes and asks; an
    # email another member has is asked again, the next one stored.
    text(a, "poll")
    assert one(prompt) == "-"
    text(b, "yes")
    got = queued()
    assert len(got) == 7 and got[6] == "What's your email address?", got
    assert one(prompt) == "POLL:0:0"
    # another member's address is a bad answer (not a failed group)
    r = b.api("POST", "/api/v1/members", {"email": "taken@example.org"})
    assert r.status == 201, r.body
    text(a, "taken@example.org")
    assert one(prompt) == "POLL:0:1"
    assert queued()[7].startswith("Sorry")
    text(a, "Mary@Example.org")
    assert one("SELECT email FROM members WHERE id = " + member) == \
        "mary@example.org"
    assert one(prompt) == "-"
    assert "action=answer list=POLL field=email" in a.log()
