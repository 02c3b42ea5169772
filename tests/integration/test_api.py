"""
test_api.py - the HTTP API (outreachd(8), HTTP INTERFACE) and the console/file
adapters' visible output: accept, deliver, idempotency, auth, request
validation, body limits, /healthz, /metrics, /api/v1/status.
"""

import calendar
import json
import re
import select
import socket
import time

import pytest

from conftest import SMS_FROM, TOKEN, VERSION, scaled, wait_for

MSGS = "/api/v1/messages"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def count_messages(d):
    return d.scalar("SELECT count(*) FROM messages")


# -- accept and deliver --------------------------------------------------

def test_sms_accepted_sent_once(daemon):
    r = daemon.api("POST", MSGS, {"to": "+15551230001",
                                  "body": "Meeting at 7pm, room 4"})
    assert r.status == 202, r
    assert r.headers.get_content_type() == "application/json"
    j = r.json
    mid = j["id"]
    assert isinstance(mid, int) and not isinstance(mid, bool) and mid > 0
    assert j["status"] == "queued"
    assert j["duplicate"] is False
    assert r.headers["Location"] == "/api/v1/messages/%d" % mid

    m = daemon.wait_status(mid, "sent")
    assert m["id"] == mid
    assert m["channel"] == "sms"
    assert m["to"] == "+15551230001"
    assert m["from"] in (None, SMS_FROM)	# either is right
    assert m["body"] == "Meeting at 7pm, room 4"
    assert m["provider"] == "console"
    assert m["provider_message_id"] == "console-%d" % mid
    assert m["attempts"] == 1
    assert m["error"] is None
    assert m["priority"] == 5	# the schema's default
    assert [h["status"] for h in m["history"]] == ["queued", "sending",
                                                   "sent"]
    for h in m["history"]:
        assert ISO_UTC.match(h["at"]), h
    assert ISO_UTC.match(m["created_at"]) and ISO_UTC.match(m["updated_at"])

    daemon.wait_idle()
    lines = [o for o in daemon.outbox() if o.get("id") == mid]
    assert len(lines) == 1, daemon.outbox()
    o = lines[0]
    assert o["to"] == "+15551230001"
    assert o["body"] == "Meeting at 7pm, room 4"
    assert o["from"] == SMS_FROM
    assert o["sender"] == "console"
    assert ISO_UTC.match(o["at"]), o
    assert len(daemon.outbox()) == 1

    # Logged masked ("info console_sms msg=12 to=+1*******0001"; how
    # many stars is log_mask_phone()'s business); the full number and the
    # body never reach the log.
    log = daemon.log()
    assert re.search(r" info console_sms msg=%d( \S+=\S*)* to=\+1\*+0001( |$)"
                     % mid, log, re.M), log
    assert "+15551230001" not in log
    assert "room 4" not in log


def test_sms_unicode_body_roundtrip(daemon):
    body = "Grève demain — 7h, place de la République ✊"
    mid = daemon.send_sms(to="+33612345678", body=body)
    m = daemon.wait_status(mid, "sent")
    assert m["body"] == body
    daemon.wait_idle()
    assert [o["body"] for o in daemon.outbox() if o["id"] == mid] == [body]


def test_email_written_as_eml(daemon):
    r = daemon.api("POST", MSGS, {
        "channel": "email", "to": "alice@example.org",
        "subject": "Tenant meeting", "body": "Hello Alice,\nsee you there.\n"})
    assert r.status == 202, r
    mid = r.json["id"]
    assert r.headers["Location"] == "/api/v1/messages/%d" % mid
    m = daemon.wait_status(mid, "sent")
    assert m["channel"] == "email"
    assert m["to"] == "alice@example.org"
    assert m["subject"] == "Tenant meeting"

    eml = daemon.mail_dir / ("%d.eml" % mid)
    assert eml.is_file(), sorted(p.name for p in daemon.mail_dir.iterdir())
    data = eml.read_bytes()
    assert re.search(rb"(?<!\r)\n", data) is None, "bare LF in %s" % eml
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "no header/body separator"
    headers = {}
    for line in re.split(rb"\r\n(?![ \t])", head):	# unfold
        name, colon, value = line.partition(b":")
        assert colon, "bad header line %r" % line
        headers[name.strip().lower()] = value.strip()
    assert b"alice@example.org" in headers[b"to"]
    assert headers[b"subject"] == b"Tenant meeting"
    assert b"@" in headers[b"from"]
    assert b"date" in headers		# RFC 5322 3.6: Date and From required
    assert b"Hello Alice,\r\nsee you there." in body
    # Only this one message's file.
    assert [p.name for p in daemon.mail_dir.iterdir()
            if p.suffix == ".eml"] == ["%d.eml" % mid]
    assert daemon.outbox() == []


def test_not_before_in_future_waits(daemon):
    later = daemon.send_sms(body="later", not_before=int(time.time()) + 3600)
    now = daemon.send_sms(body="now")
    daemon.wait_status(now, "sent")
    m = daemon.message(later)
    assert m["status"] == "queued", m
    assert [o["id"] for o in daemon.outbox()] == [now]


# -- idempotency ---------------------------------------------------------

def test_idempotency_key_dedups(daemon):
    msg = {"to": "+15551230002", "body": "once only",
           "idempotency_key": "alert-42/member-7"}
    r1 = daemon.api("POST", MSGS, msg)
    assert r1.status == 202, r1
    mid = r1.json["id"]
    assert r1.json["duplicate"] is False
    r2 = daemon.api("POST", MSGS, msg)
    assert r2.status == 200, r2
    assert r2.json["id"] == mid
    assert r2.json["duplicate"] is True
    assert r2.json["status"] in ("queued", "sending", "sent"), r2.json

    daemon.wait_status(mid, "sent")
    r3 = daemon.api("POST", MSGS, msg)		# after delivery too
    assert (r3.status, r3.json["id"], r3.json["duplicate"],
            r3.json["status"]) == (200, mid, True, "sent"), r3
    daemon.wait_idle()
    assert [o["id"] for o in daemon.outbox()] == [mid]
    assert count_messages(daemon) == 1
    assert daemon.scalar("SELECT idempotency_key FROM messages WHERE id = ?",
                         (mid,)) == "alert-42/member-7"


def test_distinct_idempotency_keys_are_distinct(daemon):
    a = daemon.send_sms(body="a", idempotency_key="k-a")
    b = daemon.send_sms(body="b", idempotency_key="k-b")
    assert a != b
    daemon.wait_status(b, "sent")
    daemon.wait_idle()
    assert sorted(o["id"] for o in daemon.outbox()) == sorted([a, b])


# -- auth ----------------------------------------------------------------

@pytest.mark.parametrize("auth", [
    None, "Bearer wrong-token", "Bearer " + TOKEN[:-1], "Basic " + TOKEN,
    "Bearer", "Bearer  " + TOKEN + "x"],
    ids=["missing", "wrong", "prefix", "basic", "empty", "suffix"])
def test_unauthorized(daemon, auth):
    headers = {} if auth is None else {"Authorization": auth}
    for method, path, body in [("POST", MSGS, {"to": "+15551230001",
                                               "body": "x"}),
                               ("GET", "/api/v1/status", None),
                               ("GET", MSGS + "/1", None)]:
        r = daemon.api(method, path, body, token=None, headers=headers)
        assert r.status == 401, (method, path, r)
        assert r.error_code() == "unauthorized"
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), \
            r.headers.items()
    assert count_messages(daemon) == 0


# -- validation ----------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b'{"to": "+15551230001", "body": ',
    b'{"to": "+15551230001" "body": "x"}',
    b'{"to": "+15551230001",\n "body": "x",}',
    b'not json at all',
    b'',
], ids=["truncated", "no-comma", "trailing-comma", "garbage", "empty"])
def test_malformed_json_400(daemon, raw):
    r = daemon.api("POST", MSGS, raw=raw,
                   headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    assert r.error_code() == "invalid_json"
    msg = r.error_message()
    if raw:	# an empty body has no position worth naming
        assert re.search(r"line\D{0,3}\d+", msg, re.I), msg
        assert re.search(r"col(umn)?\D{0,3}\d+", msg, re.I), msg
    assert count_messages(daemon) == 0


SMS = {"to": "+15551230001", "body": "x"}


@pytest.mark.parametrize("body,field", [
    ({"to": "+15551230001"}, "body"),
    ({"to": "+15551230001", "body": ""}, "body"),
    ({"to": "+15551230001", "body": 42}, "body"),
    ({"body": "x"}, "to"),
    (dict(SMS, to="5551230001"), "to"),
    (dict(SMS, to="+1555abc0001"), "to"),
    (dict(SMS, to="+1234567"), "to"),			# 7 digits
    (dict(SMS, to="+1234567890123456"), "to"),		# 16 digits
    (dict(SMS, to="alice@example.org"), "to"),		# email on sms
    ({"channel": "email", "to": "alice@example.org", "body": "x"},
     "subject"),
    ({"channel": "email", "to": "not-an-address", "subject": "s",
      "body": "x"}, "to"),
    (dict(SMS, channel="fax"), "channel"),
    (dict(SMS, priority=11), "priority"),
    (dict(SMS, priority=-1), "priority"),
    (dict(SMS, priority="high"), "priority"),
    (dict(SMS, idempotency_key=""), "idempotency_key"),
    (dict(SMS, idempotency_key="k" * 201), "idempotency_key"),
    (dict(SMS, sender="no-such-sender"), "sender"),
    (dict(SMS, not_before="next tuesday"), "not_before"),
    # found by fuzz/fuzz_api_message: an out-of-range number was undefined
    # behaviour, and strtod() took an exponent in the fraction
    (dict(SMS, not_before=1e300), "not_before"),
    (dict(SMS, not_before="2026-11-27T10:00:00.5e999Z"), "not_before"),
    (dict(SMS, expires_at="2099-11-27T10:00:00.5e3Z"), "expires_at"),
    (dict(SMS, expires_at="2026-13-45T99:00:00Z"), "expires_at"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_invalid_request_422(daemon, body, field):
    r = daemon.api("POST", MSGS, body)
    assert r.status == 422, r
    assert r.error_code() == "invalid_request"
    msg = r.error_message()
    # The message names the field ("to: not an E.164 phone number ...")
    assert re.match(r"%s\b" % re.escape(field), msg), msg
    assert count_messages(daemon) == 0


def test_not_an_object_422(daemon):
    r = daemon.api("POST", MSGS, raw=b'["+15551230001", "x"]',
                   headers={"Content-Type": "application/json"})
    assert r.status == 422, r
    assert r.error_code() == "invalid_request"


def test_limits_accepted(daemon):
    """The edges of the valid ranges are accepted."""
    for extra in ({"priority": 0}, {"priority": 10},
                  {"idempotency_key": "k" * 200}, {"idempotency_key": "k"},
                  {"to": "+12345678"}, {"to": "+123456789012345"}):
        r = daemon.api("POST", MSGS, dict(SMS, **extra))
        assert r.status == 202, (extra, r)


def test_content_type(daemon):
    raw = json.dumps(SMS).encode()
    r = daemon.api("POST", MSGS, raw=raw,
                   headers={"Content-Type": "text/plain"})
    assert r.status == 415, r
    assert r.error_code() == "unsupported_media_type"
    r = daemon.api("POST", MSGS, raw=raw, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415, r
    assert count_messages(daemon) == 0
    r = daemon.api("POST", MSGS, raw=raw,
                   headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 202, r


# -- routing -------------------------------------------------------------

def test_unknown_path_404(daemon):
    for path in ("/nope", "/api/v1/nope", "/api/v2/messages",
                 MSGS + "/999999", MSGS + "/abc", MSGS + "/1/x"):
        r = daemon.api("GET", path)
        assert r.status == 404, (path, r)
        assert r.error_code() == "not_found", path


def test_invalid_utf8_in_path_is_answered(daemon):
    """Error texts echo the path: bytes that are not UTF-8 must neither
    kill the daemon (jansson refuses them) nor reach the JSON raw."""
    for method, path in [("GET", "/%FF"), ("GET", "/api/v1/%C3%28x"),
                         ("PUT", "/webhooks/%FF/inbound"),
                         ("DELETE", "/api/v1/messages/%FE%FF")]:
        r = daemon.api(method, path, raw=b"" if method != "GET" else None)
        assert r.status in (404, 405), (method, path, r)
        assert r.headers.get_content_type() == "application/json"
        msg = r.error_message()
        assert msg.isascii() and "?" in msg, (path, msg)
    assert daemon.api("GET", "/healthz", token=None).status == 200


def test_wrong_method_405(daemon):
    for method, path, allowed in [("PUT", MSGS, "POST"),
                                  ("DELETE", MSGS, "POST"),
                                  ("POST", "/healthz", "GET"),
                                  ("POST", "/api/v1/status", "GET"),
                                  ("POST", "/metrics", "GET")]:
        r = daemon.api(method, path, raw=b"{}",
                       headers={"Content-Type": "application/json"})
        assert r.status == 405, (method, path, r)
        assert r.error_code() == "method_not_allowed"
        allow = [m.strip() for m in r.headers.get("Allow", "").split(",")]
        assert allowed in allow, (method, path, r.headers.items())
        assert method not in allow


def raw_post(port, length, chunk=64 * 1024):
    """
    POSTs 'length' bytes with a correct Content-Length, stopping as soon as
    the server answers or closes. Returns the raw response bytes.
    """
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
    try:
        s.sendall(b"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % length)
        block = b'{"body": "' + b"x" * chunk
        sent = 0
        resp = b""
        deadline = time.monotonic() + scaled(20)
        while time.monotonic() < deadline:
            want_write = sent < length
            r, w, _ = select.select([s], [s] if want_write else [], [], 1)
            if r:
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                resp += data
                if b"\r\n\r\n" in resp:
                    want_write = False
                    sent = length	# stop sending; read the rest
            elif w:
                try:
                    sent += s.send(block[:length - sent])
                except (BrokenPipeError, ConnectionResetError):
                    sent = length
        return resp
    finally:
        s.close()


def test_body_too_large_413(daemon):
    resp = raw_post(daemon.port, 10 * 1024 * 1024)
    assert resp.startswith(b"HTTP/1.1 413 ") or \
        resp.startswith(b"HTTP/1.0 413 "), resp[:300]
    # The daemon keeps serving.
    r = daemon.api("GET", "/healthz", token=None)
    assert r.status == 200, r
    mid = daemon.send_sms(body="after the big one")
    daemon.wait_status(mid, "sent")
    assert count_messages(daemon) == 1


def test_body_at_max_body_accepted(make_daemon):
    d = make_daemon({"http": {"max_body": "4096"}})
    mail = {"channel": "email", "to": "a@example.org", "subject": "s",
            "body": ""}
    pad = 4096 - len(json.dumps(mail).encode())
    body = json.dumps(dict(mail, body="y" * pad)).encode()
    assert len(body) == 4096
    r = d.api("POST", MSGS, raw=body,
              headers={"Content-Type": "application/json"})
    assert r.status == 202, r
    over = json.dumps(dict(mail, body="y" * (pad + 1))).encode()
    r = d.api("POST", MSGS, raw=over,
              headers={"Content-Type": "application/json"})
    assert r.status == 413, r
    assert d.api("GET", "/healthz", token=None).status == 200


# -- health, metrics, status ---------------------------------------------

def test_healthz(daemon):
    r = daemon.api("GET", "/healthz", token=None)
    assert r.status == 200
    assert r.headers.get_content_type() == "application/json"
    j = r.json
    assert (j["status"], j["store"], j["version"]) == ("ok", "ok", VERSION)
    # A token is not needed, and a wrong one does not hurt.
    assert daemon.api("GET", "/healthz", token="wrong").status == 200


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> ({family: type}, [(name, {labels}, value)])."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ
        elif line.startswith("#") or not line.strip():
            continue
        else:
            m = SAMPLE.match(line)
            assert m, "bad metrics line %r" % line
            labels = dict(LABEL.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return types, samples


def metric(samples, name, **labels):
    vals = [v for n, l, v in samples
            if n == name and all(l.get(k) == x for k, x in labels.items())]
    assert len(vals) == 1, "%s%r: %d samples" % (name, labels, len(vals))
    return vals[0]


def test_metrics(daemon):
    ids = [daemon.send_sms(body="m%d" % i) for i in range(3)]
    for mid in ids:
        daemon.wait_status(mid, "sent")
    r = daemon.api("GET", "/metrics", token=None)
    assert r.status == 200, r
    ctype = r.headers.get("Content-Type", "").replace(" ", "")
    assert ctype.startswith("text/plain;version=0.0.4"), ctype
    types, s = parse_metrics(r.text)
    assert types.get("outreachd_queue_messages") == "gauge", types
    assert types.get("outreachd_messages_total") == "counter", types
    assert types.get("outreachd_http_requests_total") == "counter", types
    assert types.get("outreachd_store_commits_total") == "counter", types

    assert metric(s, "outreachd_queue_messages", channel="sms",
                  status="queued") == 0
    assert metric(s, "outreachd_messages_total", channel="sms",
                  provider="console", outcome="accepted") == 3
    assert metric(s, "outreachd_http_requests_total",
                  route="/api/v1/messages", status="202") == 3
    commits = metric(s, "outreachd_store_commits_total")
    assert commits >= 1
    n = metric(s, "outreachd_store_commit_seconds_count")
    total = metric(s, "outreachd_store_commit_seconds_sum")
    mx = metric(s, "outreachd_store_commit_seconds_max")
    assert n >= 1
    assert 0 <= mx < 10 and 0 <= total <= n * mx + 1e-6, (total, n, mx)
    for name, labels, v in s:
        assert name.startswith("outreachd_"), name
        assert v >= 0, (name, labels, v)

    # Counters only grow, and count what happens next.
    daemon.send_sms(body="one more")
    r2 = daemon.api("GET", "/metrics", token=None)
    _, s2 = parse_metrics(r2.text)
    assert metric(s2, "outreachd_http_requests_total",
                  route="/api/v1/messages", status="202") == 4
    assert metric(s2, "outreachd_store_commits_total") > commits


def test_status_counts(daemon):
    r = daemon.api("GET", "/api/v1/status")
    assert r.status == 200, r
    j = r.json
    assert j["version"] == VERSION
    assert isinstance(j["uptime_s"], (int, float)) and j["uptime_s"] >= 0
    sms = [daemon.send_sms(body="s%d" % i) for i in range(3)]
    r = daemon.api("POST", MSGS, {"channel": "email", "to": "bob@example.org",
                                  "subject": "Hi", "body": "Hello"})
    assert r.status == 202, r
    email = r.json["id"]
    for mid in sms + [email]:
        daemon.wait_status(mid, "sent")
    j = daemon.api("GET", "/api/v1/status").json
    q = j["queue"]
    assert q["sms"]["sent"] == 3, q
    assert q["sms"]["queued"] == 0 and q["sms"]["sending"] == 0, q
    assert q["email"]["sent"] == 1, q
    assert q["email"]["queued"] == 0 and q["email"]["sending"] == 0, q
    senders = {s["name"]: s for s in j["senders"]}
    assert "console" in senders, j["senders"]
    c = senders["console"]
    assert c["provider"] == "console"
    assert c["rate"] == 0
    assert c["in_flight"] == 0


def test_idempotency_key_concurrent(daemon):
    """The same key from 8 clients at once: one message, one 202."""
    import threading
    msg = {"to": "+15551230003", "body": "race", "idempotency_key": "race-1"}
    results = []
    lock = threading.Lock()
    go = threading.Barrier(8)

    def post():
        go.wait()
        r = daemon.api("POST", MSGS, msg)
        with lock:
            results.append((r.status, r.json.get("id"),
                            r.json.get("duplicate")))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(20))
    assert len(results) == 8, results
    assert sorted(s for s, _, _ in results) == [200] * 7 + [202], results
    assert len({i for _, i, _ in results}) == 1, results
    assert sorted(d for _, _, d in results) == [False] + [True] * 7
    mid = results[0][1]
    daemon.wait_status(mid, "sent")
    daemon.wait_idle()
    assert [o["id"] for o in daemon.outbox()] == [mid]
    assert count_messages(daemon) == 1


def test_idempotency_key_other_payload(daemon):
    """A reused key answers the first message, whatever the new body."""
    a = daemon.send_sms(body="first", idempotency_key="same")
    r = daemon.api("POST", MSGS, {"to": "+15559999999", "body": "second",
                                  "idempotency_key": "same"})
    assert (r.status, r.json["id"], r.json["duplicate"]) == (200, a, True)
    daemon.wait_status(a, "sent")
    daemon.wait_idle()
    assert [(o["id"], o["body"]) for o in daemon.outbox()] == [(a, "first")]


def test_expired_before_due(daemon):
    """Due after it expires: ends "expired" and is never sent."""
    # whole seconds: a margin of 2 s keeps expires_at in the future when
    # the request lands, even on a loaded machine
    now = int(time.time())
    r = daemon.api("POST", MSGS, dict(
        SMS, not_before=now + 3,
        expires_at=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                 time.gmtime(now + 2))))
    assert r.status == 202, r
    mid = r.json["id"]
    m = daemon.wait_status(mid, "expired", timeout=15)
    assert m["history"][0]["status"] == "queued"
    assert m["history"][-1]["status"] == "expired"
    assert "sending" not in [h["status"] for h in m["history"]]
    assert daemon.outbox() == []
    _, s = parse_metrics(daemon.api("GET", "/metrics", token=None).text)
    assert metric(s, "outreachd_messages_total", channel="sms",
                  provider="console", outcome="expired") == 1


def test_not_before_iso(daemon):
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                          time.gmtime(time.time() + 3600))
    a = daemon.send_sms(body="later", not_before=later)
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    b = daemon.send_sms(body="past is due", not_before=soon)
    daemon.wait_status(b, "sent")
    assert daemon.message(a)["status"] == "queued"


def test_priority_order(make_daemon):
    """Messages due at the same moment go out by priority, then age."""
    d = make_daemon({"dispatch": {"max_in_flight": "1"}})
    due = int(time.time()) + 2
    plan = [3, 5, 9, 0, 9, 7, 5]
    ids = [d.send_sms(body="p%d" % p, priority=p, not_before=due)
           for p in plan]
    wait_for(lambda: len(d.outbox()) == len(plan), 15, what="all sent")
    want = [i for _, i in sorted(zip(plan, ids), key=lambda x: (-x[0], x[1]))]
    assert [o["id"] for o in d.outbox()] == want
    for i, p in zip(ids, plan):
        assert d.message(i)["priority"] == p


def test_sender_and_from(make_daemon, tmp_path):
    d = make_daemon({
        "sender alt": {"provider": "console", "from": "+15550100009",
                       "file": str(tmp_path / "alt.jsonl")},
        "sms": {"default_sender": "alt"}})
    a = d.send_sms(body="to default")		# [sms] default_sender = alt
    b = d.send_sms(body="to console", sender="console")
    c = d.send_sms(body="own from", sender="console", **{"from": "+15550100077"})
    for mid in (a, b, c):
        d.wait_status(mid, "sent")
    alt = [json.loads(l) for l in (tmp_path / "alt.jsonl").read_text()
           .splitlines()]
    assert [(o["id"], o["sender"], o["from"]) for o in alt] == \
        [(a, "alt", "+15550100009")]
    assert [(o["id"], o["sender"], o["from"]) for o in d.outbox()] == \
        [(b, "console", SMS_FROM), (c, "console", "+15550100077")]
    assert d.message(a)["provider"] == "console"


def test_email_html_alternative(daemon):
    r = daemon.api("POST", MSGS, {
        "channel": "email", "to": "dan@example.org", "subject": "Both",
        "body": "plain part", "html": "<p>html part</p>"})
    assert r.status == 202, r
    mid = r.json["id"]
    daemon.wait_status(mid, "sent")
    data = (daemon.mail_dir / ("%d.eml" % mid)).read_bytes()
    assert re.search(rb"(?im)^content-type:\s*multipart/alternative", data), \
        data[:500]
    assert re.search(rb"(?im)^content-type:\s*text/plain", data)
    assert re.search(rb"(?im)^content-type:\s*text/html", data)
    assert b"plain part" in data and b"<p>html part</p>" in data
    assert re.search(rb"(?<!\r)\n", data) is None


def test_rate_limit(make_daemon):
    d = make_daemon({"sender console": {"rate": "20", "burst": "1"}})
    n = 11
    ids = [d.send_sms(body="r%d" % i) for i in range(n)]
    wait_for(lambda: len(d.outbox()) == n, 10, what="all sent")
    senders = d.api("GET", "/api/v1/status").json["senders"]
    assert [s["rate"] for s in senders if s["name"] == "console"] == [20]

    def ts(o):	# "2026-11-27T03:37:32.306Z" -> seconds
        m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$", o["at"])
        assert m, o["at"]
        return calendar.timegm(time.strptime(m.group(1),
                                             "%Y-%m-%dT%H:%M:%S")) + \
            float(m.group(2) or 0)

    at = sorted(ts(o) for o in d.outbox())
    # 11 messages at 20/s with a bucket of 1: 10 gaps of 50 ms at least
    # between claims; the stamps are taken a little later, with jitter.
    assert at[-1] - at[0] >= (n - 1) / 20 - scaled(0.03), at
    assert sorted(o["id"] for o in d.outbox()) == sorted(ids)


# -- edges ---------------------------------------------------------------

def test_outbox_json_escaping(daemon):
    body = 'quote " backslash \\ newline\n tab\t ctl \x01 slash / emoji 🙂 é'
    mid = daemon.send_sms(body=body)
    daemon.wait_status(mid, "sent")
    assert daemon.message(mid)["body"] == body
    assert [o["body"] for o in daemon.outbox()] == [body]


def test_json_nul_and_bad_utf8(daemon):
    # An escaped NUL: refusing is fine, truncating is not.
    r = daemon.api("POST", MSGS, raw=b'{"to": "+15551230001", '
                   b'"body": "before\\u0000after"}',
                   headers={"Content-Type": "application/json"})
    assert r.status in (202, 400, 422), r
    if r.status == 202:
        assert daemon.message(r.json["id"])["body"] == "before\x00after"
    else:
        assert count_messages(daemon) == 0
    r = daemon.api("POST", MSGS, raw=b'{"to": "+15551230001", '
                   b'"body": "bad \xff\xfe utf8"}',
                   headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    assert r.error_code() == "invalid_json"


def test_content_type_optional_and_case(daemon):
    raw = json.dumps(SMS).encode()
    # 415 only for another type, when a Content-Type is present.
    r = daemon.api("POST", MSGS, raw=raw)
    assert r.status == 202, r
    r = daemon.api("POST", MSGS, raw=raw,
                   headers={"Content-Type": "Application/JSON"})
    assert r.status == 202, r	# media types are case-insensitive


def test_bearer_scheme_case_insensitive(daemon):
    # RFC 7235 2.1: the auth-scheme is case-insensitive.
    r = daemon.api("GET", "/api/v1/status", token=None,
                   headers={"Authorization": "bearer " + TOKEN})
    assert r.status == 200, r


def test_query_string_ignored(daemon):
    assert daemon.api("GET", "/healthz?probe=1", token=None).status == 200
    r = daemon.api("POST", MSGS + "?x=1", SMS)
    assert r.status == 202, r


def test_odd_ids_404(daemon):
    for path in (MSGS + "/0", MSGS + "/-1", MSGS + "/99999999999999999999",
                 MSGS + "/1e3", MSGS + "/%31"):
        r = daemon.api("GET", path)
        assert r.status == 404, (path, r)
        assert r.error_code() == "not_found"


def test_chunked_body(daemon):
    """Transfer-Encoding: chunked works, and max_body applies to it."""
    def chunked(port, payload, piece):
        s = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
        try:
            s.sendall(b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            try:
                for i in range(0, len(payload), piece):
                    part = payload[i:i + piece]
                    s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                s.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            resp = b""
            while b"\r\n\r\n" not in resp:
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                resp += data
            return resp
        finally:
            s.close()

    resp = chunked(daemon.port, json.dumps(SMS).encode(), 7)
    assert resp.startswith(b"HTTP/1.1 202 "), resp[:200]
    big = json.dumps(dict(SMS, body="z" * (2 << 20))).encode()
    resp = chunked(daemon.port, big, 256 * 1024)
    assert resp.startswith(b"HTTP/1.1 413 "), resp[:200]
    assert daemon.api("GET", "/healthz", token=None).status == 200
    daemon.wait_idle()
    assert count_messages(daemon) == 1


def test_client_gone_before_reply(daemon):
    """A client that closes right after sending: the message still counts."""
    body = json.dumps(dict(SMS, body="fire and forget")).encode()
    s = socket.create_connection(("127.0.0.1", daemon.port))
    s.sendall(b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
              b"Content-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    s.close()
    wait_for(lambda: [o for o in daemon.outbox()
                      if o["body"] == "fire and forget"], 10,
             what="the message sent")
    assert daemon.api("GET", "/healthz", token=None).status == 200


def test_sighup_with_stderr_log(daemon):
    import signal
    daemon.proc.send_signal(signal.SIGHUP)
    mid = daemon.send_sms()
    daemon.wait_status(mid, "sent")
    assert daemon.running()


def parse_eml(data):
    import email
    import email.policy
    return email.message_from_bytes(data, policy=email.policy.default)


def test_email_non_ascii(daemon):
    subject = "Réunion des locataires ✊"
    body = "Bonjour Zoë,\nla réunion est à 19h.\n"
    r = daemon.api("POST", MSGS, {"channel": "email", "to": "zoe@example.org",
                                  "subject": subject, "body": body})
    assert r.status == 202, r
    mid = r.json["id"]
    daemon.wait_status(mid, "sent")
    data = (daemon.mail_dir / ("%d.eml" % mid)).read_bytes()
    head = data.partition(b"\r\n\r\n")[0]
    assert max(head) < 128, "raw 8-bit header: %r" % head	# RFC 5322 2.2
    msg = parse_eml(data)
    assert str(msg["Subject"]) == subject
    assert msg["To"].addresses[0].addr_spec == "zoe@example.org"
    # the body, then the unsubscribe footer (links default to the daemon)
    assert msg.get_content().replace("\r\n", "\n").startswith(body)
    assert msg.get_content_charset() in ("utf-8", "UTF-8")


def test_email_header_injection(daemon):
    r = daemon.api("POST", MSGS, {"channel": "email", "to": "eve@example.org",
                                  "subject": "Hi\r\nBcc: victim@example.org",
                                  "body": "x"})
    if r.status == 202:
        # Accepted, then it must go out: a header line break is a bad
        # field for the API to refuse (422), not a send-time failure.
        mid = r.json["id"]
        m = wait_for(lambda: (lambda m: m if m["status"] not in (
            "queued", "sending") else None)(daemon.message(mid)), 10,
            what="a final status")
        assert m["status"] == "sent", m
        msg = parse_eml((daemon.mail_dir / ("%d.eml" % mid)).read_bytes())
        assert msg["Bcc"] is None, msg.items()
        assert len(msg.get_all("Subject")) == 1
    else:
        assert (r.status, r.error_code()) == (422, "invalid_request"), r
    r = daemon.api("POST", MSGS, {"channel": "email",
                                  "to": "eve@example.org\r\nBcc: v@example.org",
                                  "subject": "s", "body": "x"})
    assert (r.status, r.error_code()) == (422, "invalid_request"), r
    assert r.error_message().startswith("to"), r


def test_email_from_and_reply_to(make_daemon):
    d = make_daemon()
    r = d.api("POST", MSGS, {"channel": "email", "to": "a@example.org",
                             "subject": "s", "body": "b"})
    assert r.status == 202, r
    a = r.json["id"]
    d.wait_status(a, "sent")
    msg = parse_eml((d.mail_dir / ("%d.eml" % a)).read_bytes())
    # [email] from defaults to "outreachd <outreachd@localhost>".
    assert msg["From"].addresses[0].addr_spec == "outreachd@localhost"
    assert msg["From"].addresses[0].display_name == "outreachd"
    assert msg["Reply-To"] is None

    d.restart(conf={"email": {"from": "Tenants Union <tu@example.org>",
                              "reply_to": "help@example.org"}})
    r = d.api("POST", MSGS, {"channel": "email", "to": "b@example.org",
                             "subject": "s", "body": "b"})
    b = r.json["id"]
    d.wait_status(b, "sent")
    msg = parse_eml((d.mail_dir / ("%d.eml" % b)).read_bytes())
    assert msg["From"].addresses[0].addr_spec == "tu@example.org"
    assert msg["From"].addresses[0].display_name == "Tenants Union"
    assert msg["Reply-To"].addresses[0].addr_spec == "help@example.org"
    assert msg["Message-ID"], msg.items()
    _, s = parse_metrics(d.api("GET", "/metrics", token=None).text)
    # Counters restart with the process: only b since the restart.
    assert metric(s, "outreachd_messages_total", channel="email",
                  provider="file", outcome="accepted") == 1


def test_email_from_injection_422(daemon):
    r = daemon.api("POST", MSGS, {"channel": "email", "to": "eve@example.org",
                                  "from": "me@example.org\r\nBcc: v@example.org",
                                  "subject": "s", "body": "x"})
    assert (r.status, r.error_code()) == (422, "invalid_request"), r
    assert r.error_message().startswith("from"), r
    assert count_messages(daemon) == 0


def test_sms_encoding_and_segments_recorded(daemon):
    """Encoding and segment count are computed once at enqueue:
    161 GSM-7 characters are 2 parts; one curly quote makes it UCS-2."""
    gsm = daemon.send_sms(body="a" * 161)
    ucs = daemon.send_sms(body="\u201cRally\u201d at 7")
    m = daemon.message(gsm)
    assert (m["encoding"], m["segments"]) == ("gsm7", 2), m
    m = daemon.message(ucs)
    assert (m["encoding"], m["segments"]) == ("ucs2", 1), m
    r = daemon.api("POST", MSGS, dict(SMS, body="\u00e1" * 1601))
    assert (r.status, r.error_code()) == (422, "invalid_request"), r
    assert r.error_message().startswith("body"), r
