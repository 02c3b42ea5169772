"""
test_webhooks.py - provider webhooks in (daemon/webhooks.c) through the
Twilio adapter: POST /webhooks/{sender}/inbound and /status.

Requests are signed here the way Twilio signs them (doc/providers.md:
base64(HMAC-SHA1(auth token, URL + sorted name+value pairs))), and the
signer itself is checked against the vector Twilio publishes, so a
passing test means the daemon agrees with Twilio, not merely with this
file. The daemon runs with [http] public_url set: it is the URL Twilio
would call and sign, whatever Host the request carries.

Status callbacks are driven end to end with a few lines of fake Twilio
(FakeTwilio below: a Messages.json endpoint that answers 201 with a sid),
so a real outbound message goes sent -> delivered and a late 'sent' does
not move it back. The full forward-only and early-report logic is in the
unit tests (tests/unit/check_queue.c, TCase status_update).

The robustness test POSTs a few thousand malformed bodies at both URLs;
run it on a --enable-sanitizers build too:
  OD_BUILDDIR=/tmp/build-san OD_TIMEOUT_SCALE=3 run.sh -k webhook
"""

import base64
import hashlib
import hmac
import http.server
import json
import random
import re
import threading
import urllib.parse

import pytest

PUBLIC = "https://sms.example.org"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "tw-auth-7f3c9e1d"  # distinctive: the test greps the log for it
INBOUND = "/webhooks/tw/inbound"
STATUS = "/webhooks/tw/status"
FORM = "application/x-www-form-urlencoded"
MEMBER = "+15551230007"
TWIML_EMPTY = b"<Response></Response>"

_sids = iter(range(1, 1 << 30))


def new_sid(prefix="SM"):
    """A fresh Twilio-shaped id: two letters and 32 hex digits."""
    return "%s%032x" % (prefix, next(_sids) * 7919)


def twilio_signature(token, url, params=()):
    """
    X-Twilio-Signature as Twilio computes it (twilio-python
    request_validator): the URL, then every distinct (name, value) pair
    sorted by name then value, concatenated; HMAC-SHA1; base64.
    """
    data = url + "".join(k + v for k, v in sorted(set(params)))
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def tw_conf(extra_http=None, **sender):
    """The config of a daemon with a Twilio sender 'tw' (nothing is sent
    unless a test points base_url at a FakeTwilio)."""
    tw = {"provider": "twilio", "from": "+15550100001",
          "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
          "base_url": "http://127.0.0.1:9"}
    tw.update(sender)
    http_ = {"public_url": PUBLIC}
    http_.update(extra_http or {})
    return {"http": http_, "sender tw": tw}


def post_form(d, path, params, sign=True, token=AUTH_TOKEN, url=None,
              headers=None, raw=None):
    """
    POSTs params (a list of pairs) form-encoded to path, signed for
    PUBLIC + path (or 'url') unless sign is False. raw replaces the body
    (the signature still covers params).
    """
    body = raw if raw is not None else \
        urllib.parse.urlencode(params).encode()
    hdrs = {"Content-Type": FORM}
    if sign:
        hdrs["X-Twilio-Signature"] = twilio_signature(
            token, url or PUBLIC + path, params)
    hdrs.update(headers or {})
    return d.api("POST", path, raw=body, token=None, headers=hdrs)


def inbound_params(sid=None, body="Hi & =+ \U0001F44B\nthere", frm=MEMBER):
    return [("ToCountry", "US"), ("SmsMessageSid", sid),
            ("NumMedia", "0"), ("SmsSid", sid), ("SmsStatus", "received"),
            ("Body", body), ("To", "+15550100001"), ("NumSegments", "1"),
            ("MessageSid", sid), ("AccountSid", ACCOUNT_SID),
            ("From", frm), ("ApiVersion", "2010-04-01")]


def status_params(sid, status, error_code=None):
    p = [("SmsSid", sid), ("SmsStatus", status), ("MessageStatus", status),
         ("To", MEMBER), ("MessageSid", sid), ("AccountSid", ACCOUNT_SID),
         ("From", "+15550100001"), ("ApiVersion", "2010-04-01")]
    if error_code is not None:
        p.append(("ErrorCode", str(error_code)))
    return p


def inbound_rows(d):
    return d.query("SELECT * FROM messages WHERE direction = 'in'")


# -- the signer ----------------------------------------------------------

def test_signer_matches_twilio_published_vector():
    # https://www.twilio.com/docs/usage/webhooks/webhooks-security
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"),
              ("Digits", "1234"), ("From", "+12349013030"),
              ("To", "+18005551212")]
    assert twilio_signature("12345",
                            "https://mycompany.com/myapp.php?foo=1&bar=2",
                            params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


# -- inbound -------------------------------------------------------------

def test_inbound_signed_stored_once(make_daemon):
    d = make_daemon(tw_conf())
    sid = new_sid()
    params = inbound_params(sid)
    r = post_form(d, INBOUND, params)
    assert r.status == 200, r
    assert r.headers.get_content_type() == "text/xml"
    assert TWIML_EMPTY in r.body
    rows = inbound_rows(d)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["provider"] == "twilio"
    assert row["provider_message_id"] == sid
    assert row["sender"] == "tw"
    assert row["from_addr"] == MEMBER
    assert row["to_addr"] == "+15550100001"
    assert row["body"] == "Hi & =+ \U0001F44B\nthere"
    assert row["status"] == "received"

    # The 200 came after the commit: the API sees the message at once.
    m = d.message(row["id"])
    assert m["status"] == "received"
    assert m["body"] == "Hi & =+ \U0001F44B\nthere"
    assert [h["status"] for h in m["history"]] == ["received"]

    # Twilio retries (the same MessageSid): 200 again, nothing new.
    for _ in range(2):
        r = post_form(d, INBOUND, params)
        assert r.status == 200, r
        assert TWIML_EMPTY in r.body
    assert len(inbound_rows(d)) == 1
    assert d.scalar("SELECT count(*) FROM message_events WHERE "
                    "message_id = ?", (row["id"],)) == 1

    log = d.log()
    assert re.search(r" info msg_received msg=%d sender=tw from=\+1\*+0007"
                     % row["id"], log), log
    assert "msg_received_again msg=%d" % row["id"] in log
    assert MEMBER not in log, "full number in the log"
    assert "there" not in log, "message body in the log"


def test_inbound_url_with_query_is_signed_as_called(make_daemon):
    """Twilio signs the URL as configured, query included, unsorted."""
    d = make_daemon(tw_conf())
    path = INBOUND + "?b=2&a=1"
    r = post_form(d, path, inbound_params(new_sid()))
    assert r.status == 200, r
    assert len(inbound_rows(d)) == 1
    # The same request signed for the URL without the query is refused.
    d.expect_log(r"webhook_forbidden sender=tw kind=inbound")
    r = post_form(d, path, inbound_params(new_sid()), url=PUBLIC + INBOUND)
    assert r.status == 403, r
    assert len(inbound_rows(d)) == 1


def test_inbound_port_variant_accepted(make_daemon):
    """Twilio's SDKs accept the URL with the default port added."""
    d = make_daemon(tw_conf())
    r = post_form(d, INBOUND, inbound_params(new_sid()),
                  url="https://sms.example.org:443" + INBOUND)
    assert r.status == 200, r


def test_inbound_without_public_url_uses_host(make_daemon):
    """Without public_url the daemon signs http:// + Host + target."""
    d = make_daemon(tw_conf({"public_url": None}))
    host = "127.0.0.1:%d" % d.port
    r = post_form(d, INBOUND, inbound_params(new_sid()),
                  url="http://%s%s" % (host, INBOUND))
    assert r.status == 200, r
    assert len(inbound_rows(d)) == 1


@pytest.mark.parametrize("case", ["missing", "wrong-token", "wrong-url",
                                  "tampered", "extra-field", "garbage"])
def test_inbound_bad_signature_forbidden(make_daemon, case):
    d = make_daemon(tw_conf())
    d.expect_log(r"webhook_forbidden sender=tw kind=inbound peer=127\.0\.0\.1")
    params = inbound_params(new_sid())
    if case == "missing":
        r = post_form(d, INBOUND, params, sign=False)
    elif case == "wrong-token":
        r = post_form(d, INBOUND, params, token="not-the-token")
    elif case == "wrong-url":
        r = post_form(d, INBOUND, params, url=PUBLIC + STATUS)
    elif case == "tampered":
        sig = twilio_signature(AUTH_TOKEN, PUBLIC + INBOUND, params)
        params[5] = ("Body", "something else")
        r = post_form(d, INBOUND, params, sign=False,
                      headers={"X-Twilio-Signature": sig})
    elif case == "extra-field":
        sig = twilio_signature(AUTH_TOKEN, PUBLIC + INBOUND, params)
        r = post_form(d, INBOUND, params + [("Extra", "1")], sign=False,
                      headers={"X-Twilio-Signature": sig})
    else:
        r = post_form(d, INBOUND, params, sign=False,
                      headers={"X-Twilio-Signature": "A" * 400})
    assert r.status == 403, r
    assert r.error_code() == "forbidden"
    assert d.scalar("SELECT count(*) FROM messages") == 0
    assert re.search(r" warn webhook_forbidden sender=tw kind=inbound "
                     r"peer=127\.0\.0\.1 reason=\"[^\"]+\"", d.log())
    assert AUTH_TOKEN not in d.log()


def test_status_bad_signature_forbidden(make_daemon):
    d = make_daemon(tw_conf())
    d.expect_log(r"webhook_forbidden sender=tw kind=status")
    r = post_form(d, STATUS, status_params(new_sid(), "delivered"),
                  token="nope")
    assert r.status == 403, r
    assert d.scalar("SELECT count(*) FROM status_early") == 0


# -- routing -------------------------------------------------------------

def test_unknown_sender_and_senders_without_webhooks(make_daemon):
    d = make_daemon(tw_conf())
    params = inbound_params(new_sid())
    for path in ("/webhooks/nosuch/inbound", "/webhooks/nosuch/status"):
        r = post_form(d, path, params)
        assert r.status == 404, r
        assert r.error_code() == "not_found"
        assert "nosuch" in r.error_message()
    # Any bytes may name a sender: the 404 still is valid JSON.
    r = post_form(d, "/webhooks/%FF%FE%22x/status", params)
    assert r.status == 404, r
    assert r.error_message() == "no sender '???x'"
    # The console adapter takes texts (the phone simulator), no reports.
    r = post_form(d, "/webhooks/console/status", params)
    assert r.status == 404, r
    assert r.error_message() == "sender console takes no webhooks"
    r = post_form(d, "/webhooks/tw/other", params)
    assert r.status == 404, r
    r = d.api("PUT", INBOUND, raw=b"", token=None)
    assert r.status == 405, r
    assert "GET" in r.headers["Allow"] and "POST" in r.headers["Allow"]
    assert d.scalar("SELECT count(*) FROM messages") == 0


def test_webhooks_counted_in_metrics(make_daemon):
    d = make_daemon(tw_conf())
    d.expect_log(r"webhook_forbidden")
    assert post_form(d, INBOUND, inbound_params(new_sid())).status == 200
    assert post_form(d, INBOUND, inbound_params(new_sid()),
                     sign=False).status == 403
    text = d.api("GET", "/metrics", token=None).text
    assert re.search(r'outreachd_http_requests_total\{route="/webhooks/'
                     r'\{sender\}/inbound",status="200"\} 1\b', text), text
    assert re.search(r'outreachd_http_requests_total\{route="/webhooks/'
                     r'\{sender\}/inbound",status="403"\} 1\b', text), text


# -- malformed and oversized ---------------------------------------------

def test_inbound_malformed_400(make_daemon):
    d = make_daemon(tw_conf())
    d.expect_log(r"webhook_malformed sender=tw kind=inbound .*"
                 r"reason=\"missing MessageSid\"")
    params = [p for p in inbound_params(new_sid()) if p[0] != "MessageSid"]
    r = post_form(d, INBOUND, params)
    assert r.status == 400, r
    assert r.error_code() == "bad_request"
    assert "MessageSid" in r.error_message()
    assert d.scalar("SELECT count(*) FROM messages") == 0


def test_form_with_nul_is_400_before_verification(make_daemon):
    """A field that decodes to NUL cannot be checked: 400, info only."""
    d = make_daemon(tw_conf())
    params = inbound_params(new_sid(), body="a\x00b")
    r = post_form(d, INBOUND, params)
    assert r.status == 400, r
    assert "NUL" in r.error_message()
    r = post_form(d, INBOUND, params, raw=b"MessageSid=x&Body=a\x00b")
    assert r.status == 400, r
    assert d.scalar("SELECT count(*) FROM messages") == 0
    assert re.search(r" info webhook_malformed sender=tw kind=inbound",
                     d.log())


def test_inbound_text_not_utf8_400(make_daemon):
    """A signed text whose Body decodes to bytes that are not UTF-8 is
    malformed (the API's JSON could not show it): 400, nothing stored.
    Found by fuzz/fuzz_webhook_twilio."""
    d = make_daemon(tw_conf())
    d.expect_log(r"webhook_malformed sender=tw kind=inbound .*"
                 r"reason=\"the text or an address is not valid UTF-8\"")
    params = [p for p in inbound_params(new_sid()) if p[0] != "Body"]
    # The signature covers the decoded bytes: sign them as bytes.
    pairs = sorted([(k.encode(), v.encode()) for k, v in params] +
                   [(b"Body", b"caf\xe9 \xff")])
    data = (PUBLIC + INBOUND).encode() + b"".join(k + v for k, v in pairs)
    sig = base64.b64encode(hmac.new(AUTH_TOKEN.encode(), data,
                                    hashlib.sha1).digest()).decode()
    body = urllib.parse.urlencode(params).encode() + b"&Body=caf%E9+%FF"
    r = post_form(d, INBOUND, params, sign=False, raw=body,
                  headers={"X-Twilio-Signature": sig})
    assert r.status == 400, r
    assert r.error_code() == "bad_request"
    assert "UTF-8" in r.error_message()
    assert d.scalar("SELECT count(*) FROM messages") == 0


def test_oversized_413_and_keeps_serving(make_daemon):
    d = make_daemon(tw_conf({"max_body": "16K"}))
    params = inbound_params(new_sid(), body="x" * 20000)
    r = post_form(d, INBOUND, params)
    assert r.status == 413, r
    assert d.scalar("SELECT count(*) FROM messages") == 0
    r = post_form(d, INBOUND, inbound_params(new_sid(), body="x" * 8000))
    assert r.status == 200, r
    assert d.api("GET", "/healthz", token=None).status == 200
    assert len(inbound_rows(d)) == 1


# -- status callbacks ------------------------------------------------------

def test_status_unknown_sid_200_and_logged(make_daemon):
    d = make_daemon(tw_conf())
    sid = new_sid()
    r = post_form(d, STATUS, status_params(sid, "delivered"))
    assert r.status == 200, r
    assert r.body == b""
    assert re.search(r" info status_unknown_id sender=tw provider_id=%s "
                     r"msg=0 status=delivered" % sid, d.log())
    # Kept a while, in case the send's own answer is still on its way.
    rows = d.query("SELECT * FROM status_early")
    assert [(x["provider"], x["provider_message_id"], x["status"])
            for x in rows] == [("twilio", sid, "delivered")]
    # Intermediate states carry nothing: 200, nothing kept.
    r = post_form(d, STATUS, status_params(new_sid(), "queued"))
    assert r.status == 200, r
    assert d.scalar("SELECT count(*) FROM status_early") == 1
    assert d.scalar("SELECT count(*) FROM messages") == 0


class FakeTwilio:
    """
    Just enough of Twilio's Messages API for a message to be 'sent': each
    POST .../Messages.json is answered 201 with a new sid. Requests are
    recorded as (path, form fields).
    """

    def __init__(self):
        fake = self
        self.requests = []
        self.sids = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qsl(self.rfile.read(n).decode(),
                                              keep_blank_values=True)
                sid = new_sid()
                fake.requests.append((self.path, form))
                fake.sids.append(sid)
                body = json.dumps({"sid": sid, "status": "queued"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_twilio():
    f = FakeTwilio()
    yield f
    f.close()


def test_status_moves_forward_only(make_daemon, fake_twilio):
    d = make_daemon(tw_conf(base_url=fake_twilio.url))
    mid = d.send_sms(body="status test", sender="tw")
    m = d.wait_status(mid, "sent")
    sid = m["provider_message_id"]
    assert m["provider"] == "twilio" and sid == fake_twilio.sids[0]
    form = dict(fake_twilio.requests[0][1])
    assert form["StatusCallback"] == PUBLIC + STATUS

    r = post_form(d, STATUS, status_params(sid, "sent"))
    assert r.status == 200, r
    assert d.message(mid)["status"] == "sent"
    r = post_form(d, STATUS, status_params(sid, "delivered"))
    assert r.status == 200, r
    # Answered after the commit: the API already shows it.
    m = d.message(mid)
    assert m["status"] == "delivered"
    assert [h["status"] for h in m["history"]] == [
        "queued", "sending", "sent", "delivered"]
    assert re.search(r" info msg_status msg=%d sender=tw provider=twilio "
                     r"status=delivered" % mid, d.log())
    # Late and repeated callbacks: 200, and nothing moves back.
    for st in ("sent", "undelivered", "delivered"):
        r = post_form(d, STATUS, status_params(sid, st, 30003))
        assert r.status == 200, r
    m = d.message(mid)
    assert m["status"] == "delivered"
    assert len(m["history"]) == 4
    assert m["error"] is None


def test_status_failure_keeps_code(make_daemon, fake_twilio):
    d = make_daemon(tw_conf(base_url=fake_twilio.url))
    mid = d.send_sms(body="will fail", sender="tw")
    sid = d.wait_status(mid, "sent")["provider_message_id"]
    r = post_form(d, STATUS, status_params(sid, "undelivered", 30003))
    assert r.status == 200, r
    m = d.message(mid)
    assert m["status"] == "undelivered"
    assert m["error"]["code"] == 30003
    assert m["history"][-1]["code"] == 30003


# -- robustness --------------------------------------------------------------

def _fuzz_bodies(rng, n):
    """
    (body bytes, content type, sign?) triples: random bytes, truncated
    and mangled forms, huge fields under the 1M limit, bad
    percent-escapes, NULs, too many fields.
    """
    valid_in = urllib.parse.urlencode(inbound_params(new_sid())).encode()
    valid_st = urllib.parse.urlencode(status_params(new_sid(),
                                                    "delivered")).encode()
    junk = [b"%", b"%G1", b"%4", b"%%", b"=", b"&", b"==", b"+", b"%00",
            b"\x00", b"\xff\xfe", b"\r\n", b"MessageSid", b"MessageSid=",
            b"From=", b"MessageStatus=", b"a=%zz%", b"%E2%82", b"\xc3("]
    for i in range(n):
        kind = i % 10
        if kind == 0:
            body = bytes(rng.randrange(256)
                         for _ in range(rng.randrange(0, 600)))
        elif kind == 1:
            src = valid_in if rng.random() < .5 else valid_st
            body = src[:rng.randrange(len(src) + 1)]
        elif kind == 2:
            src = bytearray(valid_in if rng.random() < .5 else valid_st)
            for _ in range(rng.randrange(1, 8)):
                pos = rng.randrange(len(src) + 1)
                src[pos:pos] = rng.choice(junk)
            body = bytes(src)
        elif kind == 3:
            body = b"&".join(rng.choice(junk) for _ in range(20))
        elif kind == 4 and i % 40 == 4:
            big = rng.choice([b"A", b"%41", b"+", b"%"]) * \
                rng.randrange(100000, 300000)
            body = rng.choice([b"Body=", b"MessageSid=", b"X", b""]) + big
        elif kind == 5 and i % 50 == 5:
            body = b"a=1&" * rng.randrange(900, 3000)
        else:
            # Well-formed forms with missing, odd or oversized fields:
            # signed, so they reach the adapter's parser and the store.
            p = (inbound_params(new_sid()) if rng.random() < .5
                 else status_params(new_sid(), rng.choice(
                     ["delivered", "sent", "failed", "queued", "bogus", ""]),
                     rng.choice([None, "30003", "x", "-1", "99999999999"])))
            for _ in range(rng.randrange(0, 4)):
                j = rng.randrange(len(p))
                op = rng.randrange(4)
                if op == 0:
                    del p[j]
                elif op == 1:
                    p[j] = (p[j][0], "Z" * rng.choice([0, 1, 127, 128, 300]))
                elif op == 2:
                    p[j] = (p[j][0], "\u00e9\U0001F44B&=+%")
                else:
                    p.append(("MessageSid", new_sid()))
            yield urllib.parse.urlencode(p).encode(), FORM, p
            continue
        ctype = rng.choice([FORM, FORM, FORM + "; charset=utf-8",
                            "application/json", None])
        yield body, ctype, None


@pytest.mark.slow
def test_malformed_webhooks_survived(make_daemon):
    """A few thousand malformed webhooks: no crash, every answer 200 or
    4xx, the daemon healthy after (also under --enable-sanitizers)."""
    d = make_daemon(tw_conf())
    d.expect_log(r"webhook_forbidden sender=tw")
    d.expect_log(r"webhook_malformed sender=tw")
    rng = random.Random(20261127)
    seen = {}
    for i, (body, ctype, signed) in enumerate(_fuzz_bodies(rng, 3000)):
        path = INBOUND if i % 2 == 0 else STATUS
        method = "GET" if i % 17 == 0 else "POST"
        if i % 25 == 7:
            # Any bytes but '/' and NUL as the sender: no such sender.
            name = bytes(rng.choice(range(1, 256)) for _ in range(12))
            path = "/webhooks/%s/%s" % (
                urllib.parse.quote(name.replace(b"/", b"x"), safe=""),
                rng.choice(["inbound", "status"]))
        hdrs = {}
        if ctype is not None:
            hdrs["Content-Type"] = ctype
        if method == "GET":
            # The request line must stay under evhttp's 16 KiB header
            # limit: longer ones are cut off before any handler runs.
            path += "?" + urllib.parse.quote(body[:3000], safe="=&%+")
            body = None
        if signed is not None:
            hdrs["X-Twilio-Signature"] = twilio_signature(
                AUTH_TOKEN, PUBLIC + path, signed if method == "POST"
                else ())
        elif rng.random() < .3:
            hdrs["X-Twilio-Signature"] = base64.b64encode(
                rng.randbytes(20)).decode()
        r = d.api(method, path, raw=body, token=None, headers=hdrs,
                  timeout=30)
        assert r.status == 200 or 400 <= r.status < 500, (i, r)
        if i % 25 == 7:
            assert r.status == 404 and r.error_code() == "not_found", r
        else:
            assert r.status not in (404, 405), (i, r)
        seen[r.status] = seen.get(r.status, 0) + 1
    # The mix reached every stage: refused, malformed, and stored.
    assert seen.get(403, 0) > 100 and seen.get(400, 0) > 100 and \
        seen.get(200, 0) > 100, seen
    assert d.running()
    assert d.api("GET", "/healthz", token=None).status == 200
    r = post_form(d, INBOUND, inbound_params(new_sid(), body="still here"))
    assert r.status == 200, r
    assert d.scalar("SELECT count(*) FROM messages WHERE body = "
                    "'still here'") == 1
