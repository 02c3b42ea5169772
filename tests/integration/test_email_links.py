"""
test_email_links.py - List-Unsubscribe headers and footers, one-click
unsubscribe (RFC 8058: GET /u/TOKEN shows a page, POST opts out), email
double opt-in (GET/POST /c/TOKEN), the link secret, and the bounce gauge.

Emails go through the file adapter ([email] adapter = file): each is a .eml
in the test's mail dir, parsed with Python's email package. [http]
public_url is a name the tests never connect to; the path of each link is
requested from the daemon itself.
"""

import email
import email.policy
import os
import re
import stat

import pytest

from conftest import OD_STORE, wait_for

MSGS = "/api/v1/messages"
PUBLIC = "https://act.example.org"
MAILTO = "leave@example.org"
# The double opt-in lists are [list] sections (on either store).
WELCOME = {"double_optin": "yes", "welcome_email": "Glad you are here."}
LINKS_CONF = {"http": {"public_url": PUBLIC + "/"},
              "email": {"unsubscribe_mailto": MAILTO},
              "list newsletter": dict(
                  WELCOME, keywords="news",
                  welcome_email_subject="Welcome to newsletter"),
              "list tenants": dict(
                  WELCOME, keywords="tenants",
                  welcome_email_subject="Welcome to tenants")}
PG = OD_STORE == "postgresql"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ONE_CLICK = b"List-Unsubscribe=One-Click"
U_RE = re.compile(r"https://act\.example\.org/u/([A-Za-z0-9_-]+)")
C_RE = re.compile(r"https://act\.example\.org/c/([A-Za-z0-9_-]+)")


@pytest.fixture
def od(make_daemon):
    return make_daemon(LINKS_CONF)


def send_email(d, to, html=None, subject="Rally on Friday",
               body="Join us at noon.\n"):
    msg = {"channel": "email", "to": to, "subject": subject, "body": body}
    if html is not None:
        msg["html"] = html
    r = d.api("POST", MSGS, msg)
    assert r.status == 202, r
    return r.json["id"]


def eml_path(d, mid):
    return d.mail_dir / ("%d.eml" % mid)


def sent_eml(d, mid):
    """Waits for message mid to be sent; returns (raw bytes, parsed)."""
    d.wait_status(mid, "sent")
    raw = eml_path(d, mid).read_bytes()
    return raw, email.message_from_bytes(raw, policy=email.policy.default)


def parts(msg):
    """{content type: decoded text, LF line ends} of a message."""
    ps = list(msg.iter_parts()) if msg.is_multipart() else [msg]
    return {p.get_content_type(): p.get_content().replace("\r\n", "\n")
            for p in ps}


def unsub_token(msg):
    m = U_RE.search(str(msg["List-Unsubscribe"]))
    assert m, msg["List-Unsubscribe"]
    return m.group(1)


def post(d, path, raw=ONE_CLICK, headers=FORM):
    return d.api("POST", path, raw=raw, token=None, headers=headers)


def get(d, path):
    return d.api("GET", path, token=None)


def email_member(d, addr):
    rows = d.query("SELECT id FROM members WHERE email = ?", (addr,))
    return rows[0]["id"] if rows else None


def optout_rows(d, addr):
    return d.query("SELECT o.source FROM email_optout o JOIN members m "
                   "ON m.id = o.member_id WHERE m.email = ?", (addr,))


def consent(d, addr):
    return [tuple(r) for r in d.query(
        "SELECT e.channel, e.action, e.source, e.message_id, e.list_id "
        "FROM consent_events e JOIN members m ON m.id = e.member_id "
        "WHERE m.email = ? ORDER BY e.id", (addr,))]


def metric(d, line_prefix):
    r = d.api("GET", "/metrics", token=None)
    assert r.status == 200, r
    for line in r.text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.split()[-1])
    return None


def test_headers_and_visible_link(od):
    mid = send_email(od, "alice@example.org",
                     html="<html><body><p>Join us</p></body></html>")
    raw, msg = sent_eml(od, mid)
    for line in raw.split(b"\r\n"):
        assert len(line) <= 78, line
    tok = unsub_token(msg)
    url = "%s/u/%s" % (PUBLIC, tok)
    lu = " ".join(str(msg["List-Unsubscribe"]).split())
    assert lu == "<%s>, <mailto:%s?subject=unsubscribe>" % (url, MAILTO)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    p = parts(msg)
    assert p["text/plain"].startswith("Join us at noon.\n")
    assert "To stop these emails: %s\n" % url in p["text/plain"]
    html = p["text/html"]
    assert '<a href="%s">unsubscribe</a>' % url in html
    assert html.index("<p>Join us</p>") < html.index(url) \
        < html.index("</body>")
    # a token names one message: another email gets another token
    mid2 = send_email(od, "alice@example.org")
    _, msg2 = sent_eml(od, mid2)
    assert unsub_token(msg2) != tok
    assert "To stop these emails: %s/u/%s" % (PUBLIC, unsub_token(msg2)) \
        in parts(msg2)["text/plain"]


def test_get_shows_page_post_unsubscribes(od):
    mid = send_email(od, "bob@example.org")
    _, msg = sent_eml(od, mid)
    path = "/u/" + unsub_token(msg)

    r = get(od, path)
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/html")
    assert '<form method="post">' in r.text
    assert r.headers["Cache-Control"] == "no-store"
    # GET changes nothing (link scanners prefetch)
    assert optout_rows(od, "bob@example.org") == []
    assert consent(od, "bob@example.org") == []

    r = post(od, path)
    assert r.status == 200, r
    assert "unsubscribed" in r.text
    assert [x["source"] for x in optout_rows(od, "bob@example.org")] == \
        ["web"]
    assert consent(od, "bob@example.org") == \
        [("email", "opt_out", "web", mid, None)]
    assert metric(od, 'outreachd_email_link_actions_total'
                      '{action="unsubscribe"}') == 1

    # idempotent: a second click answers 200 and records nothing more
    r = post(od, path, raw=b"", headers={})
    assert r.status == 200, r
    assert len(consent(od, "bob@example.org")) == 1
    assert metric(od, 'outreachd_email_link_actions_total'
                      '{action="unsubscribe"}') == 1

    # nothing more goes to that address, whatever its case
    for to in ("bob@example.org", "Bob@Example.ORG"):
        mid2 = send_email(od, to)
        m = od.wait_status(mid2, "suppressed")
        assert m["error"]["text"] == "recipient opted out", m
        assert not eml_path(od, mid2).exists()


def test_mixed_case_address_opted_out(od):
    mid = send_email(od, "Mixed.Case@Example.ORG")
    _, msg = sent_eml(od, mid)
    assert post(od, "/u/" + unsub_token(msg)).status == 200
    assert [x["source"] for x in optout_rows(od, "mixed.case@example.org")] \
        == ["web"]
    m2 = send_email(od, "mixed.case@example.org")
    od.wait_status(m2, "suppressed")


def test_consent_api_shows_web_optout(od):
    mid = send_email(od, "carol@example.org")
    _, msg = sent_eml(od, mid)
    assert post(od, "/u/" + unsub_token(msg)).status == 200
    member = email_member(od, "carol@example.org")
    r = od.api("GET", "/api/v1/members/%d/consent" % member)
    assert r.status == 200, r
    ev = r.json["events"]
    assert [(e["channel"], e["action"], e["source"], e["message_id"])
            for e in ev] == [("email", "opt_out", "web", mid)]
    r = od.api("GET", "/api/v1/members/%d" % member)
    assert r.status == 200, r
    assert r.json["channels"]["email"]["opted_out"] is True
    assert r.json["channels"]["email"]["source"] == "web"


def test_tampered_truncated_foreign_tokens_403(od):
    mid = send_email(od, "dave@example.org")
    _, msg = sent_eml(od, mid)
    tok = unsub_token(msg)
    bad = [
        tok[:-1] + ("A" if tok[-1] != "A" else "B"),	# last char
        ("A" if tok[0] != "A" else "B") + tok[1:],	# first char
        tok[:len(tok) // 2] + ("x" if tok[len(tok) // 2] != "x" else "y")
        + tok[len(tok) // 2 + 1:],
        tok[:-2],					# truncated
        tok + "A",					# extended
        "abc", "A" * 200,
    ]
    for b in bad:
        for method in ("GET", "POST"):
            r = od.api(method, "/u/" + b, raw=ONE_CLICK if method == "POST"
                       else None, token=None, headers=FORM)
            assert r.status == 403, (b, method, r)
            assert "not valid" in r.text
    # a confirmation link does not open the unsubscribe door, nor the
    # other way round
    assert post(od, "/c/" + tok).status == 403
    assert optout_rows(od, "dave@example.org") == []
    assert consent(od, "dave@example.org") == []
    od.wait_idle()


def test_token_acts_only_for_its_message(od):
    ma = send_email(od, "erin@example.org")
    mb = send_email(od, "frank@example.org")
    _, a = sent_eml(od, ma)
    _, b = sent_eml(od, mb)
    assert post(od, "/u/" + unsub_token(b)).status == 200
    assert optout_rows(od, "frank@example.org") != []
    assert optout_rows(od, "erin@example.org") == []
    assert consent(od, "frank@example.org") == \
        [("email", "opt_out", "web", mb, None)]
    # erin still gets email; her own link still works for her alone
    m2 = send_email(od, "erin@example.org")
    sent_eml(od, m2)
    assert post(od, "/u/" + unsub_token(a)).status == 200
    assert consent(od, "erin@example.org") == \
        [("email", "opt_out", "web", ma, None)]


@pytest.mark.skipif(PG, reason="a PostgreSQL node never makes a key: "
                    "test_pg_links.py")
def test_secret_created_0600_and_kept(od):
    key = od.dir / "var" / "email.key"
    st = key.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 32
    secret = key.read_bytes()
    mid = send_email(od, "gina@example.org")
    _, msg = sent_eml(od, mid)
    od.restart()
    assert key.read_bytes() == secret
    # links sent before the restart still work
    assert post(od, "/u/" + unsub_token(msg)).status == 200
    assert optout_rows(od, "gina@example.org") != []


def test_secret_readable_by_others_refused(make_daemon):
    d = make_daemon(LINKS_CONF)
    key = d.dir / "var" / "email.key"
    assert d.stop() == 0
    os.chmod(key, 0o644)
    d.expect_log(r"start_failed .*email secret .*chmod 600")
    d.start(wait=False)
    assert d.proc.wait(timeout=30) == 1
    assert "chmod 600" in d.log(since_start=True)


def test_mailto_and_default_link_without_public_url(make_daemon):
    d = make_daemon({"email": {"unsubscribe_mailto": MAILTO}})
    mid = send_email(d, "hank@example.org", html="<p>x</p>")
    _, msg = sent_eml(d, mid)
    lu = " ".join(str(msg["List-Unsubscribe"]).split())
    m = re.fullmatch(r"<%s/u/([A-Za-z0-9_-]+)>, "
                     r"<mailto:%s\?subject=unsubscribe>"
                     % (re.escape(d.url()), re.escape(MAILTO)), lu)
    assert m, lu
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_links_default_to_the_listen_address(daemon):
    """Without public_url, links point at the daemon itself and work."""
    mid = send_email(daemon, "ivy@example.org", html="<p>x</p>")
    _, msg = sent_eml(daemon, mid)
    m = re.fullmatch(r"<%s/u/([A-Za-z0-9_-]+)>" % re.escape(daemon.url()),
                     str(msg["List-Unsubscribe"]))
    assert m, msg["List-Unsubscribe"]
    url = "%s/u/%s" % (daemon.url(), m.group(1))
    assert "To stop these emails: %s\n" % url in parts(msg)["text/plain"]
    assert "email_links_disabled" not in daemon.log()
    r = get(daemon, "/u/" + m.group(1))
    assert r.status == 200, r
    r = post(daemon, "/u/" + m.group(1))
    assert r.status == 200, r
    assert [x["source"] for x in optout_rows(daemon, "ivy@example.org")] \
        == ["web"]


def make_list(d, name="newsletter"):
    """The id of the [list] section 'name' (a double opt-in list)."""
    return d.scalar("SELECT id FROM lists WHERE name = ?", (name,))


def join(d, lid, addr):
    """A new member addr subscribed to list lid by email (the members
    API): its subscription."""
    r = d.api("POST", "/api/v1/members",
              {"email": addr, "consent_source": "signup form",
               "subscribe": [{"list": lid, "channel": "email"}]})
    assert r.status == 201, r
    subs = [x for x in r.json["subscriptions"] if x["list_id"] == lid]
    assert len(subs) == 1, r.json
    return subs[0]


def mail_to(d, addr):
    """Ids of the messages to addr, oldest first."""
    return [r["id"] for r in d.query(
        "SELECT id FROM messages WHERE to_addr = ? ORDER BY id", (addr,))]


def sub_status(d, addr, lid):
    rows = d.query("SELECT s.status FROM subscriptions s JOIN members m ON "
                   "m.id = s.member_id WHERE m.email = ? AND s.list_id = ? "
                   "AND s.channel = 'email'", (addr, lid))
    return rows[0]["status"] if rows else None


def confirmation(d, addr):
    """Waits for the one confirmation email to addr; returns (id, msg)."""
    ids = wait_for(lambda: mail_to(d, addr), what="confirmation email")
    assert len(ids) == 1, ids
    _, msg = sent_eml(d, ids[0])
    return ids[0], msg


def test_double_optin_confirm(od):
    lid = make_list(od)
    j = join(od, lid, "jo@example.org")
    assert j["status"] == "pending", j
    cid, msg = confirmation(od, "jo@example.org")
    assert "newsletter" in str(msg["Subject"])
    # a compliance message: no unsubscribe header
    assert msg["List-Unsubscribe"] is None
    p = parts(msg)
    tok = C_RE.search(p["text/plain"]).group(1)
    assert 'href="%s/c/%s"' % (PUBLIC, tok) in p["text/html"]

    r = get(od, "/c/" + tok)
    assert r.status == 200, r
    assert "newsletter" in r.text and '<form method="post">' in r.text
    assert sub_status(od, "jo@example.org", lid) == "pending"

    r = post(od, "/c/" + tok, raw=b"", headers={})
    assert r.status == 200, r
    assert sub_status(od, "jo@example.org", lid) == "active"
    ev = consent(od, "jo@example.org")
    assert ev[-1][:3] == ("email", "confirm", "web"), ev
    assert ev[-1][4] == lid
    assert metric(od, 'outreachd_email_link_actions_total'
                      '{action="confirm"}') == 1
    # the welcome email, with its unsubscribe link this time
    ids = wait_for(lambda: [i for i in mail_to(od, "jo@example.org")
                            if i != cid], what="welcome email")
    assert len(ids) == 1
    _, w = sent_eml(od, ids[0])
    assert str(w["Subject"]) == "Welcome to newsletter"
    assert parts(w)["text/plain"].startswith("Glad you are here.")
    assert w["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # confirming twice changes nothing and sends no second welcome
    n_events = len(consent(od, "jo@example.org"))
    assert post(od, "/c/" + tok).status == 200
    assert len(consent(od, "jo@example.org")) == n_events
    od.wait_idle()
    assert len(mail_to(od, "jo@example.org")) == 2

    # a changed confirmation token is refused
    bad = tok[:-1] + ("A" if tok[-1] != "A" else "B")
    assert post(od, "/c/" + bad).status == 403
    assert post(od, "/u/" + tok).status == 403


def test_confirm_after_optout_opts_back_in(od):
    # kim signs up: the confirmation reaches her ...
    lid = make_list(od, "tenants")
    assert join(od, lid, "kim@example.org")["status"] == "pending"
    cid, c = confirmation(od, "kim@example.org")
    # ... then unsubscribes from all email with one click ...
    mid = send_email(od, "kim@example.org")
    _, msg = sent_eml(od, mid)
    assert post(od, "/u/" + unsub_token(msg)).status == 200
    # ... and confirms after all
    tok = C_RE.search(parts(c)["text/plain"]).group(1)
    assert post(od, "/c/" + tok).status == 200
    assert sub_status(od, "kim@example.org", lid) == "active"
    # the click is fresh consent: opted back in, with an event
    assert optout_rows(od, "kim@example.org") == []
    actions = [(e[1], e[2]) for e in consent(od, "kim@example.org")]
    assert ("opt_out", "web") in actions and ("confirm", "web") in actions
    assert actions[-1] == ("opt_in", "web"), actions
    # and the welcome is sent, not suppressed
    w = wait_for(lambda: [i for i in mail_to(od, "kim@example.org")
                          if i not in (mid, cid)], what="welcome")
    od.wait_status(w[0], "sent")


def test_double_optin_without_public_url(make_daemon):
    """The confirmation link points at the daemon itself and works."""
    daemon = make_daemon({"list newsletter": {"double_optin": "yes",
                                              "keywords": "news"}})
    lid = make_list(daemon)
    assert join(daemon, lid, "lee@example.org")["status"] == "pending"
    _, msg = confirmation(daemon, "lee@example.org")
    m = re.search(r"%s/c/([A-Za-z0-9_-]+)" % re.escape(daemon.url()),
                  parts(msg)["text/plain"])
    assert m, parts(msg)["text/plain"]
    r = post(daemon, "/c/" + m.group(1), raw=b"", headers={})
    assert r.status == 200, r
    assert sub_status(daemon, "lee@example.org", lid) == "active"
    assert get(daemon, "/c/AAAA").status == 403


def bouncing_gauge(n):
    """What /metrics says of n bouncing members, on either store (on
    PostgreSQL read at most every 10 s: the first scrape reads)."""
    return n


def test_bouncing_gauge(od):
    assert metric(od, "outreachd_email_bouncing_members") == \
        bouncing_gauge(0)


# ---- bounces (SMTP adapter against aiosmtpd answering 550) ------------------

@pytest.fixture
def smtp_server():
    from smtpserver import SmtpServer
    srv = SmtpServer(rcpt_codes={
        "gone@example.org": "550 5.1.1 <gone@example.org>: no such user",
        "flaky@example.org": "550 5.1.1 <flaky@example.org>: no such user",
        "busy@example.org": "451 4.3.0 mailbox busy"}).start()
    yield srv
    srv.stop()


def smtp_daemon(make_daemon, srv, limit=2):
    d = make_daemon({
        "email": {"adapter": "smtp", "dir": None,
                  "bounce_limit": str(limit)},
        "smtp": {"host": "127.0.0.1", "port": str(srv.port),
                 "from": "Org <org@example.org>", "starttls": "off",
                 "workers": "1", "connect_timeout": "2s",
                 "command_timeout": "5s", "data_timeout": "5s"},
        "dispatch": {"retry_base": "10s", "retry_max": "10s"},
        "http": {"public_url": PUBLIC}})
    d.expect_log(r"smtp_session .*(transient|permanent)=[1-9]")
    d.expect_log(r"email_bouncing ")
    return d


def member_email_state(d, addr):
    r = d.query("SELECT bouncing, email_failures FROM members WHERE "
                "email = ?", (addr,))
    return tuple(r[0]) if r else None


def new_member(d, addr):
    r = d.api("POST", "/api/v1/members", {"email": addr})
    assert r.status == 201, r


def test_bounce_limit_marks_bouncing_and_suppresses(make_daemon, smtp_server):
    d = smtp_daemon(make_daemon, smtp_server, limit=2)
    new_member(d, "gone@example.org")
    m1 = send_email(d, "gone@example.org")
    assert d.wait_status(m1, "failed")["error"]["code"] == 550
    assert member_email_state(d, "gone@example.org") == (0, 1)
    assert "email_bouncing" not in d.log()
    m2 = send_email(d, "gone@example.org")
    d.wait_status(m2, "failed")
    assert member_email_state(d, "gone@example.org") == (1, 2)
    assert re.search(r"warn email_bouncing to=\S+ msg=%d code=550 limit=2"
                     % m2, d.log())
    assert "gone@example.org" not in d.log()	# masked
    assert metric(d, "outreachd_email_bouncing_members") == \
        bouncing_gauge(1)
    # nothing more is tried: suppressed at send time, never at the server
    m3 = send_email(d, "gone@example.org")
    d.wait_status(m3, "suppressed")
    assert smtp_server.mail_commands == 2
    # a 4xx is no bounce
    new_member(d, "busy@example.org")
    m4 = send_email(d, "busy@example.org")
    wait_for(lambda: d.message(m4)["attempts"] >= 1, what="451 answered")
    assert member_email_state(d, "busy@example.org") == (0, 0)


def test_accepted_resets_failures(make_daemon, smtp_server):
    d = smtp_daemon(make_daemon, smtp_server, limit=3)
    new_member(d, "flaky@example.org")
    d.wait_status(send_email(d, "flaky@example.org"), "failed")
    d.wait_status(send_email(d, "flaky@example.org"), "failed")
    assert member_email_state(d, "flaky@example.org") == (0, 2)
    smtp_server.rcpt_codes.pop("flaky@example.org")
    d.wait_status(send_email(d, "flaky@example.org"), "sent")
    assert member_email_state(d, "flaky@example.org") == (0, 0)
    assert metric(d, "outreachd_email_bouncing_members") == \
        bouncing_gauge(0)


# ---- DKIM (a build with libopendkim; verified with python3-dkim) ------------

def dkim_daemon(make_daemon, tmp_path, key_mode=0o600):
    """A daemon signing as example.org/od, or a skip when this build or
    this machine has no DKIM."""
    import subprocess
    from conftest import OUTREACHD
    dkim = pytest.importorskip("dkim")
    key = tmp_path / "dkim.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"],
                   check=True, capture_output=True)
    os.chmod(key, key_mode)
    conf = {"http": {"public_url": PUBLIC},
            "email": {"unsubscribe_mailto": MAILTO,
                      "from": "Org <org@example.org>",
                      "dkim_domain": "example.org", "dkim_selector": "od",
                      "dkim_key_file": str(key)}}
    d = make_daemon(conf, start=False)
    r = subprocess.run([str(OUTREACHD), "--check-config", "-c",
                        str(d.conf_path)], capture_output=True, text=True)
    if "built without DKIM" in r.stderr:
        pytest.skip("outreachd built without libopendkim")
    return d, dkim, key, r


def dkim_dns(key):
    import base64
    import subprocess
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout",
                          "-outform", "DER"], check=True,
                         capture_output=True).stdout
    txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    def dns(name, timeout=5):
        return txt if name == b"od._domainkey.example.org." else None
    return dns


def test_dkim_signature_covers_unsubscribe(make_daemon, tmp_path):
    d, dkim, key, check = dkim_daemon(make_daemon, tmp_path)
    assert check.returncode == 0, check.stderr
    d.start()
    mid = send_email(d, "sig@example.org", html="<p>Hi</p>",
                     subject="Réunion ce soir ✊")
    raw, msg = sent_eml(d, mid)
    assert raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; "
                          b"c=relaxed/relaxed; d=example.org; s=od;")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 78, line
    h = re.search(r"(?:^|;)h=([^;]+);", re.sub(r"\s+", "",
                                          str(msg["DKIM-Signature"])))
    signed = [x.lower() for x in h.group(1).split(":")]
    for name in ("from", "to", "subject", "date", "message-id",
                 "list-unsubscribe", "list-unsubscribe-post"):
        assert name in signed, signed
    dns = dkim_dns(key)
    assert dkim.verify(raw, dnsfunc=dns)
    # the unsubscribe headers are bound to the signature
    assert not dkim.verify(raw.replace(b"mailto:" + MAILTO.encode(),
                                       b"mailto:evil@example.org"),
                           dnsfunc=dns)
    added = raw.replace(b"\r\nMIME-Version:",
                        b"\r\nList-Unsubscribe: <https://evil.example>"
                        b"\r\nMIME-Version:", 1)
    assert not dkim.verify(added, dnsfunc=dns)


def test_dkim_key_readable_by_others_refused(make_daemon, tmp_path):
    d, _, _, check = dkim_daemon(make_daemon, tmp_path, key_mode=0o644)
    assert check.returncode == 78, check
    assert "chmod 600" in check.stderr
