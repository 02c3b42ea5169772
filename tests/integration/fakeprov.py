"""
fakeprov.py - drives tests/fakes/fakeprov, the fake SMS provider, from the
integration tests, and starts an outreachd whose SMS sender talks to it.

The fake answers each provider's real request shape (Twilio, Vonage,
Plivo, Telnyx, Kannel) on a loopback port, records every request as a JSON
line, can be scripted to misbehave per provider, and posts signed status
callbacks and inbound messages to the daemon (tests/fakes/README.md).

    def test_x(make_daemon, fakeprov):
        d = sms_daemon(make_daemon, fakeprov, "twilio")
        mid = d.send_sms("+15551230001", "hi")
        d.wait_status(mid, "sent")
        [req] = fakeprov.requests("twilio")

The daemon's HTTP port must be known before it starts (public_url names
it, and the signatures cover it), so sms_daemon() reserves a free port and
retries with another if the daemon loses it to a race.

Environment (besides conftest's):
  OD_FAKEPROV_VALGRIND=1  run the fake under valgrind; its teardown then
                          also fails on a definite leak or memory error.
"""

import base64
import http.client
import json
import os
import re
import select
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import BUILDDIR, SRCDIR, free_port, scaled, wait_for

FAKEPROV = BUILDDIR / "tests" / "fakes" / "fakeprov"
VALGRIND = os.environ.get("OD_FAKEPROV_VALGRIND", "") not in ("", "0", "no")
VALGRIND_CMD = ["valgrind", "--leak-check=full", "--error-exitcode=99",
                "--errors-for-leak-kinds=definite"]

# The sender's number and a member's, for every provider test.
OUR_NUMBER = "+15550100001"
MEMBER = "+15551230001"

# A fixed Ed25519 seed for the fake's Telnyx webhooks (test data only);
# the daemon gets the public key the fake derives from it.
TELNYX_SEED = base64.b64encode(bytes(range(1, 33))).decode()

# The credentials the fake expects, per provider (set through /config).
CREDENTIALS = {
    "twilio": {"account_sid": "AC" + "0123456789abcdef" * 2,
               "auth_token": "tw-auth-token-8c1f"},
    "vonage": {"api_key": "vgkey123", "api_secret": "vg-secret-5e2d",
               "signature_secret": "vg-signing-secret-77a1",
               "signature_method": "md5hash"},
    "plivo": {"auth_id": "MAZDFAKE0000000000AB",
              "auth_token": "plivo-auth-token-3b9a"},
    "telnyx": {"api_key": "KEY0190FAKE_TELNYX_API_KEY"},
    "kannel": {"username": "kuser", "password": "kpass-91c",
               "secret": "kannel-webhook-secret-4f", "secret_param": "secret"},
}

# Kannel's sms-service get-url for the daemon (%p sender, %P receiver, %b
# the text, %I Kannel's id, %C its charset: the escapes kannel.c reads).
KANNEL_GET_URL = ("http://127.0.0.1:%d/webhooks/%s/inbound?"
                  "from=%%p&to=%%P&text=%%b&id=%%I&charset=%%C")

# The keys of [sender NAME] that carry the same credentials to the daemon,
# per provider (adapters/<provider>.c documents them).
SENDER_KEYS = {
    "twilio": lambda c, f: {"account_sid": c["account_sid"],
                            "auth_token": c["auth_token"]},
    "vonage": lambda c, f: {"api_key": c["api_key"],
                            "api_secret": c["api_secret"],
                            "signature_secret": c["signature_secret"],
                            "signature_method": c["signature_method"]},
    "plivo": lambda c, f: {"auth_id": c["auth_id"],
                           "auth_token": c["auth_token"]},
    "telnyx": lambda c, f: {"api_key": c["api_key"],
                            "public_key": f.telnyx_public_key()},
    "kannel": lambda c, f: {"username": c["username"],
                            "password": c["password"],
                            "webhook_secret": c["secret"]},
}


class FakeProv:
    """One fakeprov process: its ports, control API and request log."""

    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "requests.jsonl"
        self.err_path = self.dir / "fakeprov.stderr"
        self.proc = None
        self.port = None
        self.control = None

    # -- process ------------------------------------------------------
    def start(self):
        cmd = [str(FAKEPROV), "--port", "0", "--control-port", "0",
               "--log", str(self.log_path), "--telnyx-key", TELNYX_SEED]
        if VALGRIND:
            cmd = VALGRIND_CMD + cmd
        assert FAKEPROV.exists(), \
            "%s not built (make tests/fakes/fakeprov)" % FAKEPROV
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.err)
        line = self._first_line(scaled(10))
        m = re.match(rb"fakeprov listening port=(\d+) control=(\d+)$", line)
        assert m, "fakeprov said %r; stderr: %s" % (line, self.stderr())
        self.port, self.control = int(m.group(1)), int(m.group(2))
        for prov, creds in CREDENTIALS.items():
            self.config(prov, **creds)
        return self

    def _first_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError("fakeprov did not start (exit %r): %s"
                                     % (self.proc.poll(), self.stderr()))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    continue
                buf += ch
        return buf.rstrip(b"\n")

    def stderr(self):
        try:
            return self.err_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM; returns the exit code (0 = clean, 99 = valgrind)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(15))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("fakeprov ignored SIGTERM")
        self.proc.stdout.close()
        self.err.close()
        return self.proc.returncode

    @property
    def url(self):
        """The base_url senders use."""
        return "http://127.0.0.1:%d" % self.port

    # -- control API --------------------------------------------------
    def ctl(self, method, path, body=None, timeout=15):
        conn = http.client.HTTPConnection("127.0.0.1", self.control,
                                          timeout=scaled(timeout))
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            raw = r.read()
            out = json.loads(raw) if raw else {}
            assert 200 <= r.status < 300, \
                "fakeprov %s %s: %d %r" % (method, path, r.status, out)
            return out
        finally:
            conn.close()

    def config(self, provider=None, **kw):
        """Merges kw into the provider's settings (credentials, "auto"
        callbacks, "sender", ...); provider=None for daemon_url."""
        if provider is not None:
            kw["provider"] = provider
        return self.ctl("POST", "/config", kw)

    def behave(self, provider, **rule):
        """Scripts the next rule['count'] (default 1, 0 = until reset)
        answers: status, code, message, body, retry_after, delay_ms,
        drop, to, headers."""
        rule["provider"] = provider
        return self.ctl("POST", "/behaviour", rule)

    def reset(self, provider=None, auto=False):
        body = {"auto": auto}
        if provider:
            body["provider"] = provider
        return self.ctl("POST", "/reset", body)

    def callback(self, provider, **spec):
        """Posts one webhook to the daemon and returns fakeprov's report:
        {"status", "body", "content_type", "sent": {method, url, headers,
        body}}. spec: kind (status|inbound), id, status, error_code, from,
        to, text, sequence, params, signature (valid|invalid|missing|
        stale), timestamp, url."""
        spec["provider"] = provider
        return self.ctl("POST", "/callbacks", spec, timeout=30)

    def sign(self, provider, **spec):
        spec["provider"] = provider
        return self.ctl("POST", "/sign", spec)

    def stats(self):
        return self.ctl("GET", "/stats")

    def info(self):
        return self.ctl("GET", "/info")

    def telnyx_public_key(self):
        return self.info()["telnyx_public_key"]

    # -- the request log ----------------------------------------------
    def records(self):
        """Every JSON line so far (requests and callbacks)."""
        self.ctl("POST", "/flush")
        out = []
        with open(self.log_path, "rb") as f:
            for n, line in enumerate(f, 1):
                assert line.endswith(b"\n"), "log line %d cut: %r" % (n, line)
                out.append(json.loads(line))
        return out

    def requests(self, provider=None):
        """The requests to the provider port, oldest first."""
        return [r for r in self.records() if r.get("type") == "request" and
                (provider is None or r["provider"] == provider)]

    def callbacks(self):
        """The webhooks fakeprov posted and the daemon's answers."""
        return [r for r in self.records() if r.get("type") == "callback"]

    def wait_requests(self, n, provider=None, timeout=10):
        """Waits until at least n requests arrived; returns them all."""
        return wait_for(lambda: (lambda rs: rs if len(rs) >= n else None)(
            self.requests(provider)), timeout,
            what="%d request(s) at fakeprov" % n)


@pytest.fixture
def fakeprov(tmp_path):
    """A running fakeprov; at teardown it must exit 0 on SIGTERM."""
    fp = FakeProv(tmp_path / "fakeprov").start()
    yield fp
    rc = fp.stop()
    assert rc == 0, "fakeprov exit %d on SIGTERM: %s" % (rc, fp.stderr())


def sms_daemon(make_daemon, fake, provider, sender="sx", conf=None,
               sender_keys=None, start=True):
    """
    An outreachd with one SMS sender 'sender' of 'provider' pointed at the
    fake (base_url), with the fake's credentials, [http] public_url = its
    own address, fast retries ([dispatch] retry_base 200ms) and a 1 s
    provider timeout. conf is merged over that; sender_keys over the
    sender section. The fake is told where the daemon's webhooks are.
    """
    sec = {"provider": provider, "from": OUR_NUMBER, "base_url": fake.url,
           "timeout": "1s"}
    sec.update(SENDER_KEYS[provider](CREDENTIALS[provider], fake))
    sec.update(sender_keys or {})
    for attempt in range(5):
        port = free_port()
        sections = {
            "sender console": None,
            "http": {"listen": "127.0.0.1:%d" % port,
                     "public_url": "http://127.0.0.1:%d" % port},
            "dispatch": {"retry_base": "200ms", "retry_max": "5s"},
            "sms": {"default_sender": sender},
            "sender " + sender: dict(sec),
        }
        for k, v in (conf or {}).items():
            if v is None or k not in sections or sections[k] is None:
                sections[k] = v
            else:
                sections[k] = dict(sections[k], **v)
        d = make_daemon(sections, start=False, name="od%d" % attempt)
        if not start:
            break
        try:
            d.start()
            break
        except AssertionError:
            if "Address already in use" not in d.log() or attempt == 4:
                raise
            d.expect_log(r"Address already in use|bind")
    fake.config(daemon_url="http://127.0.0.1:%d" % port)
    fake.config(provider, sender=sender)
    if provider == "kannel":
        # smsbox's sms-service get-url, as kannel.c documents it; the fake
        # adds ?secret= itself (or a wrong or no secret, when told to)
        fake.config(provider, inbound_url=KANNEL_GET_URL % (port, sender))
    return d


def form_pairs(raw):
    """
    Strictly decodes an application/x-www-form-urlencoded body (str) into
    (name, value) pairs, as a provider's server would: every byte must be
    a valid escape or an unreserved character, and the result UTF-8.
    """
    assert re.fullmatch(r"[A-Za-z0-9._~*+%&=-]*", raw), \
        "form body has characters a form encoder never leaves raw: %r" % raw
    return urllib.parse.parse_qsl(raw, keep_blank_values=True,
                                  strict_parsing=True, encoding="utf-8",
                                  errors="strict")


def basic_auth(user, password):
    return "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()


def header(req, name):
    """A recorded request's header, case-insensitively (or None)."""
    for k, v in req["headers"].items():
        if k.lower() == name.lower():
            return v
    return None


def gaps(reqs):
    """Seconds between consecutive recorded requests."""
    return [b["t"] - a["t"] for a, b in zip(reqs, reqs[1:])]


def inbound_rows(d, provider_id=None):
    """Inbound messages stored by the daemon (read-only db)."""
    if provider_id is None:
        return d.query("SELECT * FROM messages WHERE direction = 'in'")
    return d.query("SELECT * FROM messages WHERE direction = 'in' AND "
                   "provider_message_id = ?", (provider_id,))


def opted_out(d, phone):
    """(opted out?, number of provider opt-out consent events) for phone."""
    rows = d.query("SELECT o.source FROM sms_optout o JOIN members m "
                   "ON m.id = o.member_id WHERE m.phone = ?", (phone,))
    events = d.scalar("SELECT count(*) FROM consent_events e JOIN members m "
                      "ON m.id = e.member_id WHERE m.phone = ? AND "
                      "e.action = 'opt_out' AND e.channel = 'sms'", (phone,))
    return bool(rows), events


def spec_path(name):
    """A provider's published API description kept in tests/fixtures
    (see tests/fixtures/twilio/openapi/SOURCE.md), or None."""
    p = SRCDIR / "tests" / "fixtures" / name
    return p if p.exists() else None


def stays(predicate, seconds, what=None, interval=0.05):
    """
    Polls predicate() for 'seconds' (scaled) and fails as soon as it is
    false: for "nothing more happens" checks (no retry, no new request).
    """
    deadline = time.monotonic() + scaled(seconds)
    while time.monotonic() < deadline:
        assert predicate(), "no longer true: %s" % (what or predicate)
        time.sleep(interval)


def check_sender_refused(d, fp, provider, codes):
    """
    The provider refused the sender's credentials: the message is not
    failed but kept (back in the queue, the provider's code in its error
    and history), the whole sender pauses (no second request for a while),
    and the operator is warned.
    """
    d.expect_log(r" warn sender_paused ")
    mid = d.send_sms(MEMBER, "x")
    wait_for(lambda: len(fp.requests(provider)) >= 1, 10,
             what="the first request")

    def requeued():
        m = d.message(mid)
        return m if [h["status"] for h in m["history"]] == \
            ["queued", "sending", "queued"] else None
    m = wait_for(requeued, 10, what="the message back in the queue")
    assert m["status"] == "queued", m
    assert m["error"]["code"] in codes, m
    assert m["history"][-1]["code"] in codes, m
    stays(lambda: len(fp.requests(provider)) == 1, 1.5, "the sender paused")
    assert re.search(r" warn sender_paused sender=\S+ provider=%s code=\d+ "
                     r"resume_in_s=60 " % provider, d.log()), d.log()


def sent_form(report):
    """The form fields fakeprov sent in a callback report, as a dict."""
    return dict(urllib.parse.parse_qsl(report["sent"]["body"] or "",
                                       keep_blank_values=True))


# ---------------------------------------------------------------------------
# Scenarios every provider's test file runs (test_sms_<provider>.py); the
# provider-specific parts are arguments.

def status_spec(fake, d, provider, mid, status, **extra):
    """
    The fakeprov callback spec of a status report for our message mid:
    the provider's id from the daemon, or (Kannel, which has none) the
    dlr-url the adapter sent with the request.
    """
    m = d.message(mid)
    spec = {"kind": "status", "status": status, "to": MEMBER,
            "from": OUR_NUMBER, "id": m["provider_message_id"]}
    if provider == "kannel":
        reqs = [r for r in fake.requests("kannel")
                if r["fields"].get("dlr-url")]
        assert reqs, "no sendsms request carried a dlr-url"
        spec["url"] = reqs[-1]["fields"]["dlr-url"]
    spec.update(extra)
    return spec


def check_status_forward_only(make_daemon, fake, provider, late="sent",
                              seq=False):
    """
    sent -> delivered through a signed status callback; a forged one is
    403 and changes nothing; a late report of 'late' (the provider's word
    for an earlier state) leaves "delivered" alone (with seq, the late one
    carries an older Plivo Sequence, as it would).
    """
    d = sms_daemon(make_daemon, fake, provider)
    d.expect_log(r"webhook_forbidden")
    mid = d.send_sms(MEMBER, "track me")
    d.wait_status(mid, "sent")
    r = fake.callback(provider, signature="invalid", **status_spec(
        fake, d, provider, mid, "undelivered"))
    assert r["status"] == 403, r
    assert d.message(mid)["status"] == "sent"
    extra = {"sequence": 2} if seq else {}
    r = fake.callback(provider, **status_spec(fake, d, provider, mid,
                                              "delivered", **extra))
    assert r["status"] == 200, r
    d.wait_status(mid, "delivered")
    extra = {"sequence": 1} if seq else {}
    r = fake.callback(provider, **status_spec(fake, d, provider, mid, late,
                                              **extra))
    assert r["status"] == 200, r
    assert d.message(mid)["status"] == "delivered"
    return d


def check_auto_callbacks(make_daemon, fake, provider, n=5, first="sent"):
    """The fake reports 'first' (sent) then delivered after each accepted
    send, to the callback URL the request named."""
    fake.config(provider, auto=[{"status": first, "delay_ms": 20},
                                {"status": "delivered", "delay_ms": 80}])
    d = sms_daemon(make_daemon, fake, provider)
    ids = [d.send_sms("+1555123%04d" % i, "auto %d" % i) for i in range(n)]
    for mid in ids:
        d.wait_status(mid, "delivered")
    cbs = wait_for(lambda: (lambda c: c if len(c) >= 2 * n else None)(
        fake.callbacks()), what="%d callbacks answered" % (2 * n))
    assert {c["status"] for c in cbs} == {200}, cbs
    return d, cbs


def check_inbound(make_daemon, fake, provider, id_=None, text=None):
    """
    A signed inbound message is stored (read back from the db) and
    answered 200; the same webhook again stores nothing new. Returns
    (daemon, fakeprov's report) for the provider's own reply checks.
    """
    d = sms_daemon(make_daemon, fake, provider)
    text = text or "Hi there \U0001F600 & = + 100%\nsecond line"
    spec = {"kind": "inbound", "text": text, "from": MEMBER,
            "to": OUR_NUMBER}
    if id_ is not None:
        spec["id"] = id_
    r = fake.callback(provider, **spec)
    assert r["status"] == 200, r
    rows = [row for row in inbound_rows(d) if row["body"] == text]
    assert len(rows) == 1, [dict(x) for x in inbound_rows(d)]
    row = rows[0]
    assert row["from_addr"] == MEMBER, dict(row)
    assert row["status"] == "received" and row["provider"] == provider
    if id_ is not None:
        assert row["provider_message_id"] == id_
        r2 = fake.callback(provider, **spec)
        assert r2["status"] == 200, r2
        assert len(inbound_rows(d, id_)) == 1
    return d, r


def check_bad_signature(make_daemon, fake, provider, signature, **extra):
    """An inbound webhook with a bad signature is 403; nothing stored."""
    d = sms_daemon(make_daemon, fake, provider)
    d.expect_log(r"webhook_forbidden")
    spec = {"kind": "inbound", "text": "forged", "from": MEMBER,
            "to": OUR_NUMBER, "signature": signature}
    spec.update(extra)
    r = fake.callback(provider, **spec)
    assert r["status"] == 403, r
    assert inbound_rows(d) == []
    return d


def check_retries(make_daemon, fake, provider):
    """
    500, then an answer after the sender's 1 s timeout, then a dropped
    connection: the message is retried with exponential backoff (base
    200 ms, equal jitter: >= 100, 200, 400 ms) and finally sent, with
    identical requests.
    """
    d = sms_daemon(make_daemon, fake, provider)
    fake.behave(provider, status=500)
    fake.behave(provider, delay_ms=2500)
    fake.behave(provider, drop=True)
    mid = d.send_sms(MEMBER, "persist")
    m = d.wait_status(mid, "sent", timeout=20)
    reqs = fake.requests(provider)
    assert [r["outcome"] for r in reqs] == \
        ["scripted", "accepted", "dropped", "accepted"], reqs
    # the same request each time, but for what counts time: a signature's
    # timestamp, the validity left (Vonage ttl, Twilio ValidityPeriod, ...)
    clock = ("timestamp", "sig", "ttl", "ValidityPeriod", "validity",
             "message_expiry")
    same = [(r["path"], json.dumps({k: v for k, v in r["fields"].items()
                                    if k not in clock}, sort_keys=True))
            for r in reqs]
    assert len(set(same)) == 1, "retries must repeat the request: %r" % same
    if reqs[-1]["id"] is not None:
        assert m["provider_message_id"] == reqs[-1]["id"]
    assert m["attempts"] == 4
    g = gaps(reqs)
    assert g[0] >= 0.09, g
    assert g[1] >= 1.0 + 0.19, g
    assert g[2] >= 0.39, g
    return d


def check_retry_after(make_daemon, fake, provider, **rule):
    """429 with Retry-After: 2: the next attempt comes >= 2 s later."""
    d = sms_daemon(make_daemon, fake, provider)
    fake.behave(provider, status=429, retry_after=2, **rule)
    mid = d.send_sms(MEMBER, "slow down")
    d.wait_status(mid, "sent", timeout=15)
    reqs = fake.requests(provider)
    assert len(reqs) == 2 and reqs[0]["status"] == 429, reqs
    assert gaps(reqs)[0] >= 2.0, gaps(reqs)
    return d


def check_permanent(make_daemon, fake, provider, want, **rule):
    """A permanent error (fakeprov rule): failed with the provider's code
    'want', no retry."""
    d = sms_daemon(make_daemon, fake, provider)
    fake.behave(provider, **rule)
    mid = d.send_sms(MEMBER, "never")
    m = d.wait_status(mid, "failed")
    assert m["error"]["code"] == want, m
    stays(lambda: len(fake.requests(provider)) == 1, 1.5, "no retry")
    assert d.message(mid)["attempts"] == 1
    return d


def check_carrier_optout(make_daemon, fake, provider, want, **rule):
    """
    The provider refuses a send because the recipient opted out at the
    carrier: failed with its code, the member's SMS opt-out recorded (with
    one consent event), and a later message to them suppressed before it
    reaches the provider.
    """
    d = sms_daemon(make_daemon, fake, provider)
    member = "+15551239999"
    fake.behave(provider, to=member, **rule)
    mid = d.send_sms(member, "to a number that sent STOP")
    m = d.wait_status(mid, "failed")
    assert m["error"]["code"] == want, m
    wait_for(lambda: opted_out(d, member)[0], what="sms_optout row")
    assert opted_out(d, member)[1] == 1
    n = len(fake.requests(provider))
    d.wait_status(d.send_sms(member, "again"), "suppressed")
    assert len(fake.requests(provider)) == n
    d.wait_status(d.send_sms(MEMBER, "others are fine"), "sent")
    return d
