"""
test_ui.py - the staff web page as the daemon serves it (daemon/ui.c,
doc/web.md) and what the phone simulator needs: the console sender's
inbound webhook (adapters/console.c), GET /api/v1/simulator and
GET /api/v1/messages?to= (daemon/simulator.c, queue/store_outbox.c).

Serving: every file of web/ is served byte for byte with its type, the
security headers (a strict Content-Security-Policy, nosniff,
no-referrer, DENY, no-cache) are on every answer under /ui, ETag and
If-None-Match give 304, HEAD answers GET's headers without a body, /ui
redirects to /ui/. With [http] ui_dir the files come from disk, and no
name leaves the directory: "..", encoded dots and slashes, backslashes,
NUL, hidden files, and symlinks pointing out are all refused.

The simulator: /ui/simulator is 404 without a console sender; a text
posted to /webhooks/console/inbound (form or JSON) is routed like a
provider's (a keyword subscribes and the welcome goes out); a peer that
is not loopback is refused unless allow_remote_inbound = yes, and so is a
foreign Origin; the messages listing pages with a cursor.

The page's segment counter (web/smstext.js) is run under node, when
there is one, against the daemon's own count of a few texts (the full
table runs in chromium: tests/browser/test_smstext.py).
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import urllib.parse

import pytest

from conftest import SRCDIR, TOKEN, scaled, wait_for

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
WEB = SRCDIR / "web"
# web/ holds the page and its build rule: these two are not served
NOT_SERVED = {"embed.sh", "include.am"}
PHONE = "+15551230042"
FORM = "application/x-www-form-urlencoded"
LIST = {"list JOIN": {"keywords": "JOIN"},
        "sms": {"program": "Test Org", "contact": "help@example.org"}}


def web_files():
    return sorted(p for p in WEB.iterdir()
                  if p.is_file() and p.name not in NOT_SERVED)


def get(d, path, method="GET", headers=None):
    """A request without any Authorization: the page is public."""
    return d.api(method, path, token=None, headers=headers)


def assert_security_headers(r):
    h = r.headers
    assert h["Content-Security-Policy"] == CSP, h
    assert h["X-Content-Type-Options"] == "nosniff", h
    assert h["Referrer-Policy"] == "no-referrer", h
    assert h["X-Frame-Options"] == "DENY", h
    assert h["Cache-Control"] == "no-cache", h


def inbound(d, fields, sender="console", json_body=False, headers=None):
    """POSTs a text to the console sender's inbound webhook."""
    if json_body:
        raw = json.dumps(fields).encode()
        hdrs = {"Content-Type": "application/json"}
    else:
        raw = urllib.parse.urlencode(fields).encode()
        hdrs = {"Content-Type": FORM}
    hdrs.update(headers or {})
    return d.api("POST", "/webhooks/%s/inbound" % sender, raw=raw,
                 token=None, headers=hdrs)


def listing(d, **q):
    return d.api("GET", "/api/v1/messages?" + urllib.parse.urlencode(q))


# -- serving the page ----------------------------------------------------

def test_every_web_file_is_served_with_its_type(daemon):
    files = web_files()
    assert {"index.html", "app.js", "style.css", "smstext.js",
            "simulator.html", "simulator.js"} <= {p.name for p in files}
    for p in files:
        r = get(daemon, "/ui/" + p.name)
        assert r.status == 200, (p.name, r)
        assert r.body == p.read_bytes(), p.name
        assert r.headers["Content-Type"] == TYPES[p.suffix], (p.name,
                                                              r.headers)
        assert re.fullmatch(r'"[0-9a-f]{32}"', r.headers["ETag"]), r.headers
        assert_security_headers(r)


def test_index_redirect_and_simulator_names(daemon):
    r = get(daemon, "/ui/")
    assert r.status == 200, r
    assert r.body == (WEB / "index.html").read_bytes()
    assert_security_headers(r)
    r = get(daemon, "/ui")
    assert r.status == 301, r
    assert r.headers["Location"] == "/ui/"
    assert_security_headers(r)
    for path in ("/ui/simulator", "/ui/simulator.html"):
        r = get(daemon, path)
        assert r.status == 200, (path, r)
        assert r.body == (WEB / "simulator.html").read_bytes()
        assert r.headers["Content-Type"] == TYPES[".html"]


def test_unknown_files_are_404_with_the_headers(daemon):
    for path in ("/ui/nosuch.js", "/ui/index", "/ui/embed.sh",
                 "/ui/include.am", "/ui/app.js.bak", "/ui/a/app.js",
                 "/ui/.index.html"):
        r = get(daemon, path)
        assert r.status == 404, (path, r)
    r = get(daemon, "/ui/nosuch.css")
    assert r.error_code() == "not_found"
    assert_security_headers(r)


def test_etag_and_if_none_match(daemon):
    r = get(daemon, "/ui/app.js")
    etag = r.headers["ETag"]
    assert get(daemon, "/ui/style.css").headers["ETag"] != etag
    for inm in (etag, "W/" + etag, '"other", ' + etag, "*"):
        r = get(daemon, "/ui/app.js", headers={"If-None-Match": inm})
        assert r.status == 304, (inm, r)
        assert r.body == b""
        assert r.headers["ETag"] == etag
        assert_security_headers(r)
    r = get(daemon, "/ui/app.js", headers={"If-None-Match": '"other"'})
    assert r.status == 200, r
    assert r.body == (WEB / "app.js").read_bytes()


def test_head_answers_the_headers_of_get(daemon):
    g = get(daemon, "/ui/app.js")
    h = get(daemon, "/ui/app.js", method="HEAD")
    assert h.status == 200, h
    assert h.body == b""
    assert int(h.headers["Content-Length"]) == len(g.body)
    for k in ("Content-Type", "ETag", "Content-Security-Policy"):
        assert h.headers[k] == g.headers[k], k
    r = get(daemon, "/ui/", method="HEAD")
    assert r.status == 200 and r.body == b""
    r = get(daemon, "/ui/app.js", method="POST")
    assert r.status == 405, r


# -- [http] ui_dir -------------------------------------------------------

def raw_get(d, target):
    """GET with the request target exactly as written (no client-side
    normalization of dots or escapes)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=scaled(10))
    try:
        c.putrequest("GET", target, skip_accept_encoding=True)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_ui_dir_serves_from_disk_and_stays_inside(make_daemon, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>from disk</p>")
    (site / "app.js").write_text("// v1\n")
    (site / ".hidden.js").write_text("// hidden\n")
    (site / "notes.xyz").write_text("no type\n")
    secret = tmp_path / "secret.js"
    secret.write_text("SECRET-7d1e\n")
    os.symlink(secret, site / "out.js")		# points out: refused
    os.symlink(site / "app.js", site / "same.js")	# stays in: served
    (site / "sub").mkdir()
    (site / "sub" / "deep.js").write_text("// deep\n")
    d = make_daemon({"http": {"ui_dir": str(site)}})
    r = get(d, "/ui/")
    assert r.status == 200 and r.body == b"<p>from disk</p>", r
    assert_security_headers(r)
    r1 = get(d, "/ui/app.js")
    assert r1.body == b"// v1\n"
    assert get(d, "/ui/same.js").body == b"// v1\n"
    # edited on disk: served at once, with a new validator
    (site / "app.js").write_text("// v2\n")
    r2 = get(d, "/ui/app.js", headers={"If-None-Match": r1.headers["ETag"]})
    assert r2.status == 200 and r2.body == b"// v2\n", r2
    assert r2.headers["ETag"] != r1.headers["ETag"]
    for target in ("/ui/out.js", "/ui/.hidden.js", "/ui/notes.xyz",
                   "/ui/../secret.js", "/ui/%2e%2e/secret.js",
                   "/ui/..%2fsecret.js", "/ui/%2e%2e%2fsecret.js",
                   "/ui/%2E%2E%2Fsecret.js", "/ui/..%5csecret.js",
                   "/ui/.%2e/secret.js", "/ui/sub/deep.js",
                   "/ui/sub%2fdeep.js", "/ui/sub%2F..%2F..%2Fsecret.js",
                   "/ui/%00", "/ui/app.js%00.html", "/ui/..",
                   "/ui/%2e%2e", "/ui/~/secret.js", "/ui//etc/passwd",
                   "/ui/%252e%252e%252fsecret.js"):
        status, body = raw_get(d, target)
        assert status in (400, 404), (target, status, body)
        assert b"SECRET" not in body, target
    assert "ui_file_refused name=out.js" in d.log()


def test_ui_dir_that_does_not_exist_stops_the_start(make_daemon, tmp_path):
    d = make_daemon({"http": {"ui_dir": str(tmp_path / "nope")}},
                    start=False)
    d.expect_log(r"error start_failed error=\"\[http\] ui_dir .*nope: ")
    d.start(wait=False)
    d.proc.wait(scaled(15))
    assert d.proc.returncode == 1, d.log_tail()


# -- the simulator -------------------------------------------------------

def test_simulator_is_404_without_a_console_sender(make_daemon):
    d = make_daemon({"sender console": None,
                     "sender kan": {"provider": "kannel",
                                    "base_url": "http://127.0.0.1:9",
                                    "from": "12345", "username": "u",
                                    "password": "p",
                                    "webhook_secret": "s" * 20}})
    for path in ("/ui/simulator", "/ui/simulator.html"):
        r = get(d, path)
        assert r.status == 404, (path, r)
        assert "console" in r.error_message()
        assert_security_headers(r)
    assert get(d, "/ui/").status == 200
    r = d.api("GET", "/api/v1/simulator")
    assert r.status == 200, r
    assert r.json == {"enabled": False, "sender": None, "from": None}
    assert "web_simulator" not in d.log()
    assert re.search(r"info web_inbox url=http://127\.0\.0\.1:\d+/ui/ ",
                     d.log())


def test_simulator_endpoint_and_banner(daemon):
    r = daemon.api("GET", "/api/v1/simulator")
    assert r.status == 200, r
    assert r.json == {"enabled": True, "sender": "console",
                      "from": "+15550100000"}
    assert daemon.api("GET", "/api/v1/simulator", token=None).status == 401
    assert re.search(r"info web_simulator url=http://127\.0\.0\.1:%d/ui/"
                     r"simulator sender=console to=\+15550100000"
                     % daemon.port, daemon.log())


def test_console_inbound_form_routes_a_keyword(make_daemon):
    d = make_daemon(LIST)
    r = inbound(d, {"From": PHONE, "Body": "join"})
    assert r.status == 200, r
    assert r.json == {"received": True}
    assert r.headers["Content-Type"] == "application/json"
    rows = [tuple(r) for r in d.query(
        "SELECT direction, from_addr, to_addr, body, sender, status "
        "FROM messages WHERE direction = 'in'")]
    assert rows == [("in", PHONE, "+15550100000", "join", "console",
                     "received")], rows
    # routed like a provider's text: the member joined, the welcome went
    assert d.scalar("SELECT count(*) FROM subscriptions s JOIN members m "
                    "ON m.id = s.member_id WHERE m.phone = ? AND "
                    "s.status = 'active'", (PHONE,)) == 1
    welcome = wait_for(lambda: [o for o in d.outbox() if o["to"] == PHONE],
                       what="the welcome in the outbox")
    assert "Welcome to JOIN" in welcome[0]["body"], welcome


def test_console_inbound_json_and_lower_case_and_id(make_daemon):
    d = make_daemon(LIST)
    r = inbound(d, {"from": PHONE, "body": "Hello \U0001F44B <b>"},
                json_body=True)
    assert r.status == 200, r
    r = inbound(d, {"From": PHONE, "Body": "again", "Id": "abc-1"},
                json_body=True)
    assert r.status == 200, r
    # the same Id again (a retry) stores nothing twice
    r = inbound(d, {"From": PHONE, "Body": "again", "Id": "abc-1"})
    assert r.status == 200, r
    bodies = [b for (b,) in d.query(
        "SELECT body FROM messages WHERE direction = 'in' ORDER BY id")]
    assert bodies == ["Hello \U0001F44B <b>", "again"], bodies
    assert "msg_received_again" in d.log()


def test_console_inbound_malformed(daemon):
    daemon.expect_log(r"warn webhook_malformed sender=console kind=inbound")
    for fields, js in (({"Body": "x"}, False), ({"From": PHONE}, False),
                       ({"From": "5551230042", "Body": "x"}, False),
                       ({"From": "+1 555 123", "Body": "x"}, True),
                       ({"From": PHONE, "Body": 5}, True),
                       ({"From": PHONE, "Body": "x", "Id": ""}, False)):
        r = inbound(daemon, fields, json_body=js)
        assert r.status == 400, (fields, r)
    r = daemon.api("POST", "/webhooks/console/inbound", raw=b"[1,2]",
                   token=None, headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    assert daemon.scalar("SELECT count(*) FROM messages") == 0
    # delivery reports do not exist for the console
    r = inbound(daemon, {"From": PHONE, "Body": "x"}).status
    assert r == 200
    r = daemon.api("POST", "/webhooks/console/status", raw=b"a=b",
                   token=None, headers={"Content-Type": FORM})
    assert r.status == 404, r


def test_console_inbound_unencoded_plus_says_how_to_send_it(daemon):
    """curl -d From=+1... sends the + raw, which a form reads as a space:
    the 400 says so."""
    daemon.expect_log(r"warn webhook_malformed sender=console kind=inbound")
    r = daemon.api("POST", "/webhooks/console/inbound",
                   raw=b"From=+15551230042&Body=JOIN", token=None,
                   headers={"Content-Type": FORM})
    assert r.status == 400, r
    assert "%2B" in r.text and "--data-urlencode" in r.text, r
    assert daemon.scalar("SELECT count(*) FROM messages") == 0


def test_console_inbound_refuses_a_foreign_origin(daemon):
    daemon.expect_log(r"warn webhook_forbidden sender=console kind=inbound "
                      r"peer=127\.0\.0\.1 reason=\"console: a page of "
                      r"another site")
    r = inbound(daemon, {"From": PHONE, "Body": "STOP"},
                headers={"Origin": "https://evil.example"})
    assert r.status == 403, r
    assert daemon.scalar("SELECT count(*) FROM messages") == 0
    for origin in ("http://127.0.0.1:%d" % daemon.port, "null"):
        r = inbound(daemon, {"From": PHONE, "Body": "hi"},
                    headers={"Origin": origin})
        assert r.status == (200 if origin != "null" else 403), (origin, r)
    assert daemon.scalar("SELECT count(*) FROM messages") == 1


def own_address():
    """An address of this host that is not loopback, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))	# no packet is sent
            a = s.getsockname()[0]
        except OSError:
            return None
    return None if a.startswith("127.") else a


@pytest.mark.parametrize("allow", [False, True])
def test_console_inbound_from_a_remote_peer(make_daemon, allow):
    addr = own_address()
    if addr is None:
        pytest.skip("this host has no address but loopback")
    conf = {"http": {"listen": "0.0.0.0:0"}}
    if allow:
        conf["sender console"] = {"allow_remote_inbound": "yes"}
    d = make_daemon(conf, start=False)
    d.expect_log(r"warn public_url_unset ")
    d.expect_log(r"warn webhook_forbidden sender=console kind=inbound "
                 r"peer=%s reason=\"console: inbound only from loopback"
                 % re.escape(addr))
    d.start()
    c = http.client.HTTPConnection(addr, d.port, timeout=scaled(10))
    try:
        c.request("POST", "/webhooks/console/inbound",
                  body=urllib.parse.urlencode({"From": PHONE,
                                               "Body": "hi"}),
                  headers={"Content-Type": FORM})
        r = c.getresponse()
        r.read()
    finally:
        c.close()
    assert r.status == (200 if allow else 403), r.status
    assert d.scalar("SELECT count(*) FROM messages") == (1 if allow else 0)
    # loopback is always taken
    assert inbound(d, {"From": PHONE, "Body": "hi"}).status == 200


# -- GET /api/v1/messages?to= -------------------------------------------

def test_messages_listing_with_a_cursor(make_daemon):
    d = make_daemon(LIST)
    other = "+15551230099"
    assert inbound(d, {"From": PHONE, "Body": "JOIN"}).status == 200
    ids = [d.send_sms(PHONE, "one"), d.send_sms(other, "elsewhere"),
           d.send_sms(PHONE, "two")]
    d.wait_idle()
    out = listing(d, to=PHONE)
    assert out.status == 200, out
    got = out.json["messages"]
    assert [m["direction"] for m in got] == ["out"] * 3, got
    assert [m["body"] for m in got][1:] == ["one", "two"]
    assert got[0]["body"].startswith("Test Org: Welcome to JOIN"), got
    m = got[-1]
    assert m["id"] == ids[2] and m["to"] == PHONE
    assert m["from"] == "+15550100000" and m["sender"] == "console"
    assert m["channel"] == "sms" and m["status"] == "sent"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
                        m["created_at"]), m
    # both ways, oldest first; only inbound
    both = listing(d, to=PHONE, direction="all").json["messages"]
    assert [x["direction"] for x in both] == ["in", "out", "out",
                                              "out"], both
    assert both[0]["body"] == "JOIN" and both[0]["from"] == PHONE
    ins = listing(d, to=PHONE, direction="in").json["messages"]
    assert [x["body"] for x in ins] == ["JOIN"]
    # pages: a full page's cursor is its last id
    p1 = listing(d, to=PHONE, direction="all", limit=2).json
    assert [x["id"] for x in p1["messages"]] == [x["id"] for x in both[:2]]
    assert p1["next"] == both[1]["id"]
    p2 = listing(d, to=PHONE, direction="all", limit=1,
                 after=p1["next"]).json
    assert [x["id"] for x in p2["messages"]] == [both[2]["id"]]
    assert p2["next"] == both[2]["id"]
    # a short page's cursor is the newest message: nothing is read twice
    last = listing(d, to=PHONE, after=p2["next"]).json
    assert [x["body"] for x in last["messages"]] == ["two"]
    newest = d.scalar("SELECT max(id) FROM messages")
    assert last["next"] == newest
    idle = listing(d, to=PHONE, after=last["next"]).json
    assert idle == {"messages": [], "next": newest}, idle
    assert listing(d, to="+15550000000").json["messages"] == []


def test_messages_listing_refusals(daemon):
    assert daemon.api("GET", "/api/v1/messages?to=%2B15551230042",
                      token=None).status == 401
    assert listing(daemon, to=PHONE).json == {"messages": [], "next": None}
    for q in ({}, {"to": ""}, {"to": PHONE, "direction": "up"},
              {"to": PHONE, "limit": "0"}, {"to": PHONE, "limit": "1001"},
              {"to": PHONE, "after": "-1"}, {"to": PHONE, "after": "x"},
              {"to": PHONE, "bogus": "1"}):
        r = listing(daemon, **q)
        assert r.status == 422, (q, r)
        assert r.error_code() == "invalid_request"
    # POST /api/v1/messages is still the send
    assert daemon.api("POST", "/api/v1/messages",
                      {"to": PHONE, "body": "x"}).status == 202


# -- the page's segment counter ------------------------------------------

COUNTER_TEXTS = ["", "Hello", "a" * 160, "a" * 161, "\u20ac" * 81,
                 "a" * 152 + "\u20ac" + "a" * 152, "\u0416" * 71,
                 "a" * 66 + "\U0001F600" + "a" * 66, "gar\u00e7on", "a`b"]

NODE_RUN = """
import(process.argv[1]).then((m) => {
  const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  console.log(JSON.stringify(texts.map((t) => m.segmentInfo(t))));
});
"""


def test_segment_counter_agrees_with_the_daemon(daemon):
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no node to run web/smstext.js (the browser tests "
                    "run it in chromium)")
    p = subprocess.run([node, "-e", NODE_RUN, str(WEB / "smstext.js")],
                       input=json.dumps(COUNTER_TEXTS), capture_output=True,
                       text=True, timeout=scaled(30))
    assert p.returncode == 0, p.stderr
    js = json.loads(p.stdout)
    for text, got in zip(COUNTER_TEXTS, js):
        if text == "":
            assert got == {"encoding": "gsm7", "segments": 1, "units": 0,
                           "chars": 0}
            continue
        m = daemon.message(daemon.send_sms(PHONE, text))
        assert (got["encoding"], got["segments"]) == \
            (m["encoding"], m["segments"]), (text[:20], got, m)
        assert got["chars"] == len(text), (text[:20], got)


# -- what the page's source may not do ------------------------------------

def test_page_source_keeps_member_text_as_text_and_the_csp():
    """No file of web/ parses HTML from strings (members' texts reach the
    DOM only as textContent), and the HTML files carry no inline script,
    style or event handler the Content-Security-Policy would refuse."""
    html_sinks = re.compile(r"\.innerHTML\b|\.outerHTML\b|"
                            r"insertAdjacentHTML|document\.write|"
                            r"\beval\(|new Function\(|createContextualFragment")
    for p in web_files():
        text = p.read_text()
        code = "\n".join(line for line in text.splitlines()
                         if not line.lstrip().startswith("//"))
        assert not html_sinks.search(code), (p.name,
                                             html_sinks.search(code))
        if p.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), \
                p.name
            assert not re.search(r"\sstyle=|<style\b", text), p.name
            assert not re.search(r"\son[a-z]+=", text), p.name
            assert not re.search(r"(src|href)=\"(https?:)?//", text), p.name
