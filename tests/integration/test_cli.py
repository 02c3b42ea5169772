"""
test_cli.py - outreachctl, the admin CLI over the HTTP API: send, status,
--help, and the exit status 3 "cannot reach" when the daemon is not there.
"""

import re
import subprocess

from conftest import OUTREACHCTL, TOKEN, free_port, scaled

EX_REFUSED = 1		# outreachctl.c: the daemon said no
EX_UNREACHABLE = 3	# no HTTP answer at all


def ctl(*args, timeout=20):
    return subprocess.run([str(OUTREACHCTL)] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=scaled(timeout))


def test_send_reaches_outbox(daemon):
    p = ctl("-u", daemon.url(), "-t", TOKEN, "send",
            "--to", "+15551239999", "--body", "from the cli")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    m = re.search(r"queued message (\d+)", p.stdout)
    assert m, p.stdout
    mid = int(m.group(1))
    m = daemon.wait_status(mid, "sent")
    assert (m["to"], m["body"]) == ("+15551239999", "from the cli")
    daemon.wait_idle()
    assert [(o["id"], o["to"], o["body"]) for o in daemon.outbox()] == \
        [(mid, "+15551239999", "from the cli")]


def test_send_quiet_wait_stdin(daemon):
    p = subprocess.run(
        [str(OUTREACHCTL), "-u", daemon.url(), "-t", TOKEN, "send", "-q",
         "--wait", "10", "--to", "+15551238888", "--body-file", "-"],
        input="line one\nline two\n\n", capture_output=True, text=True,
        timeout=scaled(20))
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    mid = int(p.stdout.strip().splitlines()[0])	# -q: only the id
    # --wait returned only once the message was sent.
    assert daemon.message(mid)["status"] == "sent"
    assert [o["body"] for o in daemon.outbox() if o["id"] == mid] == \
        ["line one\nline two"]


def test_send_idempotent(daemon):
    args = ["-u", daemon.url(), "-t", TOKEN, "send", "--to", "+15551237777",
            "--body", "once", "--idempotency-key", "ctl-1"]
    p1 = ctl(*args)
    assert p1.returncode == 0, p1.stderr
    mid = int(re.search(r"queued message (\d+)", p1.stdout).group(1))
    p2 = ctl(*args)
    assert p2.returncode == 0, p2.stderr
    assert re.search(r"message %d already exists" % mid, p2.stdout), \
        p2.stdout
    daemon.wait_status(mid, "sent")
    daemon.wait_idle()
    assert [o["id"] for o in daemon.outbox()] == [mid]


def test_send_email(daemon):
    p = ctl("-u", daemon.url(), "-t", TOKEN, "send", "--channel", "email",
            "--to", "carol@example.org", "--subject", "From ctl",
            "--body", "hi")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    mid = int(re.search(r"queued message (\d+)", p.stdout).group(1))
    daemon.wait_status(mid, "sent")
    files = [f.name for f in daemon.mail_dir.glob("*.eml")]
    assert files == ["%d.eml" % mid], files


def test_send_rejected_by_api(daemon):
    p = ctl("-u", daemon.url(), "-t", TOKEN, "send",
            "--to", "not-a-number", "--body", "x")
    assert p.returncode == EX_REFUSED, (p.returncode, p.stderr)
    assert "to:" in p.stderr, p.stderr	# the API's message, shown
    assert daemon.scalar("SELECT count(*) FROM messages") == 0


def test_wrong_token(daemon):
    p = ctl("-u", daemon.url(), "-t", "wrong", "status")
    assert p.returncode == EX_REFUSED, (p.returncode, p.stderr)
    assert "unauthorized" in (p.stderr + p.stdout).lower()


def test_status(daemon):
    mid = daemon.send_sms()
    daemon.wait_status(mid, "sent")
    p = ctl("-u", daemon.url(), "-t", TOKEN, "status")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "0.1.0" in p.stdout, p.stdout
    assert "console" in p.stdout, p.stdout


def test_help():
    p = ctl("--help")
    assert p.returncode == 0, p.stderr
    for word in ("-u", "-t", "send", "status"):
        assert word in p.stdout, (word, p.stdout)


def test_unreachable():
    url = "http://127.0.0.1:%d" % free_port()
    p = ctl("-u", url, "-t", TOKEN, "status")
    assert p.returncode == EX_UNREACHABLE, (p.returncode, p.stderr)
    assert "cannot reach" in p.stderr, p.stderr
    p = ctl("-u", url, "-t", TOKEN, "send", "--to", "+15551230001",
            "--body", "x")
    assert p.returncode == EX_UNREACHABLE, (p.returncode, p.stderr)
    assert "cannot reach" in p.stderr, p.stderr
