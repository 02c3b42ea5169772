"""
test_twilio_conformance.py - the Twilio adapter's requests checked
against Twilio's own published OpenAPI description of the Messages API
(twilio/twilio-oai, trimmed copy in tests/fixtures/twilio/openapi), by a
validator that is not ours: Stoplight Prism in mock mode with --errors
answers 201 only to a request that matches the operation (path, Basic
auth, form fields and their types) and 4xx with the validation errors
otherwise, and logs each verdict.

Prism (npm package @stoplight/prism-cli) is installed on first use into
$OD_BUILDDIR/.cache/prism with `npm install --prefix` (the npm registry
must be reachable once). The test is skipped, saying why, when the spec
or node/npm is missing or the install fails.
"""

import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import BUILDDIR, free_port, scaled, wait_for
from fakeprov import MEMBER, fakeprov, sms_daemon, spec_path  # noqa: F401

SPEC = "twilio/openapi/twilio_api_v2010.messages.json"
PRISM_PKG = "@stoplight/prism-cli"


def prism_bin():
    """The prism executable, installing it into the build dir's cache."""
    cache = os.environ.get("OD_PRISM_DIR") or str(BUILDDIR / ".cache" /
                                                  "prism")
    exe = os.path.join(cache, "node_modules", ".bin", "prism")
    if os.access(exe, os.X_OK):
        return exe
    os.makedirs(cache, exist_ok=True)
    try:
        r = subprocess.run(["npm", "install", "--prefix", cache, "--no-audit",
                            "--no-fund", PRISM_PKG], capture_output=True,
                           text=True, timeout=scaled(300))
    except subprocess.TimeoutExpired:
        pytest.skip("npm install %s timed out (registry unreachable?)"
                    % PRISM_PKG)
    if r.returncode != 0 or not os.access(exe, os.X_OK):
        pytest.skip("npm install --prefix %s %s failed: %s"
                    % (cache, PRISM_PKG, (r.stderr or r.stdout)[-500:]))
    return exe


@pytest.fixture
def prism(tmp_path):
    spec = spec_path(SPEC)
    if spec is None:
        pytest.skip("Twilio's OpenAPI spec is not here "
                    "(OD_SRCDIR/tests/fixtures/%s)" % SPEC)
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node/npm not installed: cannot run Stoplight Prism")
    exe = prism_bin()
    port = free_port()
    log_path = tmp_path / "prism.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([exe, "mock", str(spec), "--errors", "-h",
                             "127.0.0.1", "-p", str(port)],
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)

    def listening():
        if proc.poll() is not None:
            raise AssertionError("prism exited %d: %s" % (
                proc.returncode, log_path.read_text(errors="replace")))
        return "Prism is listening" in log_path.read_text(errors="replace")

    try:
        wait_for(listening, 60, interval=0.2, what="Prism listening")
        yield "http://127.0.0.1:%d" % port, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def prism_verdicts(log_path):
    """Prism's validator lines: (passed, failed lines)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text(errors="replace"))
    ok = len(re.findall(r"\[VALIDATOR\].*The request passed the validation "
                        r"rules", text))
    bad = [line for line in text.splitlines()
           if "[VALIDATOR]" in line and ("\u2716" in line or
                                         "did not pass" in line)]
    return ok, bad


def test_requests_match_twilios_openapi(make_daemon, fakeprov, prism):
    url, log_path = prism
    # Prism, not the fake: a slow answer (Prism took a second under a
    # loaded ASan run) must not time out and be sent again, as the
    # fixture's 1 s timeout would (Prism then saw 4 requests for 3)
    d = sms_daemon(make_daemon, fakeprov, "twilio",
                   sender_keys={"base_url": url,
                                "timeout": "%ds" % scaled(15)})
    now = int(time.time())
    ids = [
        d.send_sms(MEMBER, "plain text"),
        d.send_sms(MEMBER, "caf\u00e9 \U0001F600 a&b=c+d\nline 2"),
        # expires within Twilio's 10 h window: ValidityPeriod is sent
        d.send_sms(MEMBER, "expires soon", expires_at=now + 3600),
    ]
    for mid in ids:
        m = d.wait_status(mid, "sent", timeout=20)
        assert m["provider_message_id"].startswith("SM"), m
    ok, bad = prism_verdicts(log_path)
    assert bad == [], "Prism found requests Twilio's spec refuses:\n" + \
        "\n".join(bad)
    assert ok == len(ids), "Prism validated %d of %d requests:\n%s\n%s" % (
        ok, len(ids), log_path.read_text(errors="replace")[-3000:],
        d.log()[-3000:])
    # nothing reached the fake: every request went to Prism
    assert fakeprov.requests() == []
