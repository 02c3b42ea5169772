"""
test_config.py - the command line and the configuration: FILE:LINE
errors with exit 78, --check-config, --help, --version, -v, ${ENV}
values, SIGHUP log reopening, and the lock that keeps a second daemon off
the same database.
"""

import http.client
import os
import re
import signal
import socket
import subprocess

import pytest

from conftest import (OD_STORE, OUTREACHD, TOKEN, VALGRIND_CMD, VALGRIND,
                      VERSION, scaled, wait_for)

EX_CONFIG = 78

GOOD = """\
[daemon]
var_dir = {d}/var

[http]
listen = 127.0.0.1:0
api_token = {token}

[sender console]
provider = console
from = +15550100000
file = {d}/outbox.jsonl

[email]
adapter = file
dir = {d}/mail
"""


def run(*args, env=None, cwd=None, timeout=20):
    cmd = [str(OUTREACHD)] + [str(a) for a in args]
    if VALGRIND:
        cmd = VALGRIND_CMD + cmd
    return subprocess.run(cmd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, **(env or {})),
                          timeout=scaled(timeout))


def write_conf(tmp_path, text):
    """Writes od.conf (0600). Returns (path, lines) with lines 1-based."""
    path = tmp_path / "od.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path, [None] + text.splitlines()


def line_of(lines, text):
    """The 1-based number of the one line equal to text."""
    hits = [i for i, l in enumerate(lines) if l == text]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def good(tmp_path):
    return GOOD.format(d=tmp_path, token=TOKEN)


def edit(text, section, add):
    """Inserts the line 'add' right after the [section] header."""
    head = "[%s]\n" % section
    if head not in text:
        return text + "\n" + head + add + "\n"
    return text.replace(head, head + add + "\n", 1)


# (id, transform of the good config, offending line, words in the message)
BAD = [
    ("unknown-key", lambda t: edit(t, "http", "lisen = 127.0.0.1:0"),
     "lisen = 127.0.0.1:0", ["unknown key 'lisen' in [http]"]),
    ("unknown-key-daemon", lambda t: edit(t, "daemon", "var = x"),
     "var = x", ["unknown key 'var' in [daemon]"]),
    ("unknown-key-sender", lambda t: edit(t, "sender console", "colour = red"),
     "colour = red", ["unknown key 'colour' in [sender console]"]),
    ("unknown-key-email", lambda t: edit(t, "email", "smtp_host = mx.example"),
     "smtp_host = mx.example", ["unknown key 'smtp_host' in [email]"]),
    ("bad-uint", lambda t: edit(t, "dispatch", "batch = many"),
     "batch = many", ["batch"]),
    ("bad-duration", lambda t: edit(t, "daemon", "shutdown_timeout = 3 weeks"),
     "shutdown_timeout = 3 weeks", ["shutdown_timeout"]),
    ("bad-size", lambda t: edit(t, "http", "max_body = huge"),
     "max_body = huge", ["max_body"]),
    ("bad-level", lambda t: edit(t, "daemon", "log_level = loud"),
     "log_level = loud", ["log_level"]),
    ("bad-port", lambda t: t.replace("listen = 127.0.0.1:0",
                                     "listen = 127.0.0.1:99999"),
     "listen = 127.0.0.1:99999", ["listen"]),
    ("bad-rate", lambda t: edit(t, "sender console", "rate = fast"),
     "rate = fast", ["rate"]),
    ("bad-delay", lambda t: edit(t, "sender console", "delay = soon"),
     "delay = soon", ["delay"]),
    ("bad-email-adapter", lambda t: t.replace("adapter = file",
                                              "adapter = pigeon"),
     "adapter = pigeon", ["pigeon"]),
    ("file-email-workers", lambda t: edit(t, "email", "workers = 0"),
     "workers = 0", ["workers must be between 1 and 64"]),
    ("unknown-section", lambda t: t + "\n[bogus]\nx = 1\n",
     "[bogus]", ["bogus"]),
    ("missing-provider", lambda t: t + "\n[sender s2]\nfrom = +15550100001\n",
     "[sender s2]", ["provider"]),
    ("unset-env", lambda t: t.replace("api_token = " + TOKEN,
                                      "api_token = ${OD_IT_UNSET_VAR}"),
     "api_token = ${OD_IT_UNSET_VAR}", ["OD_IT_UNSET_VAR"]),
    ("unknown-default-sender",
     lambda t: t + "\n[sms]\ndefault_sender = nosuch\n",
     "default_sender = nosuch", ["nosuch"]),
    ("short-token", lambda t: t.replace("api_token = " + TOKEN,
                                        "api_token = abc123"),
     "api_token = abc123", ["api_token", "fewer than 16"]),
    ("console-from-not-e164",
     lambda t: t.replace("from = +15550100000", "from = 5550100"),
     "from = 5550100", ["'5550100' is not an E.164 number"]),
    ("empty-stop-word", lambda t: t + "\n[sms]\nstop_words = STOP,,,,\n",
     "stop_words = STOP,,,,", ["empty entry"]),
    ("unknown-placeholder",
     lambda t: t + "\n[sms]\nhelp_reply = {program}: call {phone}\n",
     "help_reply = {program}: call {phone}", ["unknown placeholder {phone}"]),
    ("list-time-zone",
     lambda t: t + "\n[list town]\nkeywords = TOWN\ntime_zone = Tokio\n",
     "time_zone = Tokio",
     ["time_zone 'Tokio' of [list town] is not a zone of the system's tz "
      "database"]),
]


@pytest.mark.parametrize("mode", ["start", "check"])
@pytest.mark.parametrize("case,transform,bad_line,words", BAD,
                         ids=[b[0] for b in BAD])
def test_config_error(tmp_path, mode, case, transform, bad_line, words):
    os.environ.pop("OD_IT_UNSET_VAR", None)
    path, lines = write_conf(tmp_path, transform(good(tmp_path)))
    n = line_of(lines, bad_line)
    args = ["-f", "-c", path] if mode == "start" else \
        ["--check-config", "-c", path]
    p = run(*args, cwd=tmp_path)
    assert p.returncode == EX_CONFIG, (p.returncode, p.stderr)
    errs = [l for l in p.stderr.splitlines()
            if l.startswith("%s:%d: " % (path, n))]
    assert errs, "no '%s:%d: ' line in stderr:\n%s" % (path, n, p.stderr)
    for w in words:
        assert w in errs[0], (w, errs[0])
    assert "http_listening" not in p.stderr
    assert "configuration OK" not in p.stdout
    if mode == "check":	# --check-config never touches the database
        assert not (tmp_path / "var" / "outreachd.db").exists()


def test_config_file_missing(tmp_path):
    p = run("-f", "-c", tmp_path / "nope.conf", cwd=tmp_path)
    assert p.returncode == EX_CONFIG, (p.returncode, p.stderr)
    assert str(tmp_path / "nope.conf") in p.stderr


def test_check_config_ok(tmp_path):
    path, _ = write_conf(tmp_path, good(tmp_path))
    p = run("--check-config", "-c", path, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "%s: configuration OK" % path in p.stdout.splitlines(), p.stdout
    assert not re.search(r"^\S+ (warn|error) ", p.stderr, re.M), p.stderr


def test_check_config_shipped_example(tmp_path):
    """etc/outreachd.conf, as installed, is valid."""
    from conftest import SRCDIR
    p = run("--check-config", "-c", SRCDIR / "etc" / "outreachd.conf",
            cwd=tmp_path)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "configuration OK" in p.stdout


def test_help():
    p = run("--help")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for opt in (r"-c\b", r"-f\b", r"--check-config\b", r"--version\b"):
        assert re.search(r"(^|[\s\[,|])" + opt, out), (opt, out)
    assert run("-h").stdout == out


def test_version():
    p = run("--version")
    assert p.returncode == 0, p.stderr
    assert re.search(r"\b%s\b" % re.escape(VERSION), p.stdout), p.stdout


def test_bad_option():
    p = run("--no-such-option")
    assert p.returncode != 0
    assert "no-such-option" in p.stderr


def test_bad_trace_list(tmp_path):
    path, _ = write_conf(tmp_path, good(tmp_path))
    p = run("--check-config", "-T", "store,bogus", "-c", path, cwd=tmp_path)
    assert p.returncode != 0
    assert "bogus" in p.stderr


def test_verbose_accepted(make_daemon):
    d = make_daemon(extra=("-v",))
    mid = d.send_sms()
    d.wait_status(mid, "sent")
    assert "http_request" not in d.log()	# no trace without -T


def test_trace(make_daemon):
    d = make_daemon(extra=("-T", "http,dispatch"))
    mid = d.send_sms()
    d.wait_status(mid, "sent")
    log = d.log()
    assert re.search(r"^\S+ debug http_request method=POST "
                     r"path=/api/v1/messages\b", log, re.M), log
    assert re.search(r"^\S+ debug dispatch_claimed\b", log, re.M), log


def test_trace_all(make_daemon):
    d = make_daemon(extra=("-T", "all"))
    mid = d.send_sms()
    d.wait_status(mid, "sent")
    assert re.search(r"^\S+ debug http_request\b", d.log(), re.M)


def test_env_token(make_daemon):
    d = make_daemon({"http": {"api_token": "${OD_IT_TOKEN}"}}, start=False)
    d.env["OD_IT_TOKEN"] = "from-the-environment"
    d.token = "from-the-environment"
    d.start()
    assert d.api("GET", "/api/v1/status").status == 200
    assert d.api("GET", "/api/v1/status", token="${OD_IT_TOKEN}").status \
        == 401
    assert d.api("GET", "/api/v1/status", token=TOKEN).status == 401


def test_token_file_generated(make_daemon):
    """Without api_token, VAR/api.token is created 0600 and used."""
    d = make_daemon({"http": {"api_token": None}}, start=False)
    d.token = None
    d.start()
    tf = d.dir / "var" / "api.token"
    assert tf.is_file()
    assert (tf.stat().st_mode & 0o777) == 0o600, oct(tf.stat().st_mode)
    token = tf.read_text().strip()
    assert len(token) >= 16, token
    assert d.api("GET", "/api/v1/status").status == 401
    assert d.api("GET", "/api/v1/status", token=token).status == 200
    # The same token after a restart.
    d.restart()
    assert tf.read_text().strip() == token
    assert d.api("GET", "/api/v1/status", token=token).status == 200


@pytest.mark.skipif(OD_STORE == "postgresql", reason="the SQLite file's "
                    "lock; on PostgreSQL a second process under a node's "
                    "name is refused: test_pg_nodes.py")
def test_second_daemon_same_db(make_daemon):
    d1 = make_daemon()
    d2 = make_daemon({"store": {"path": str(d1.db_path)}}, start=False,
                     name="od2")
    p = subprocess.run(d2.command(), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, cwd=d2.dir,
                       timeout=scaled(20))
    assert p.returncode != 0, p.stderr
    assert "in use" in p.stderr.lower(), p.stderr
    assert "http_listening" not in p.stderr
    # The first one is unharmed.
    mid = d1.send_sms()
    d1.wait_status(mid, "sent")


def test_sighup_reopens_log(make_daemon):
    d = make_daemon(start=False)
    logfile = d.dir / "daemon.log"
    d.configure({"daemon": {"log": str(logfile)}})
    d.start(wait=False)
    m = wait_for(lambda: logfile.exists() and re.search(
        r"\bhttp_listening\b.*\bport=(\d+)", logfile.read_text()),
        10, what="http_listening in the log file")
    d.port = int(m.group(1))
    rotated = d.dir / "daemon.log.1"
    os.rename(logfile, rotated)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(logfile.exists, 5, what="the log file reopened")
    mid = d.send_sms()
    d.wait_status(mid, "sent")
    wait_for(lambda: re.search(r" console_sms msg=%d " % mid,
                               logfile.read_text()), 5,
             what="console_sms in the new log file")
    assert "console_sms" not in rotated.read_text()
    assert d.stop() == 0
    for f in (logfile, rotated):
        bad = [l for l in f.read_text().splitlines()
               if re.match(r"^\S+ (warn|error) ", l)]
        assert not bad, bad


def test_units_and_all_keys_ok(tmp_path):
    """Every documented key with each unit form passes --check-config."""
    text = good(tmp_path) + """
[store]
path = {d}/other.db
commit_delay = 0

[dispatch]
batch = 64
max_in_flight = 128
lease = 2m
tick = 200ms
retry_base = 1
retry_max = 1h
validity = 24h

[sms]
default_sender = console
""".format(d=tmp_path)
    for old, new in [
            ("var_dir = %s/var\n" % tmp_path,
             "log = stderr\nlog_level = warn\nshutdown_timeout = 1500ms\n"),
            ("listen = 127.0.0.1:0\n",
             "max_body = 2M\npublic_url = https://example.org/od\n"),
            ("file = %s/outbox.jsonl\n" % tmp_path,
             "rate = 2.5\nburst = 5\ndelay = 10ms\n"),
            ("dir = %s/mail\n" % tmp_path,
             "from = Org <org@example.org>\nreply_to = help@example.org\n")]:
        assert old in text, old
        text = text.replace(old, old + new)
    path, _ = write_conf(tmp_path, text)
    p = run("--check-config", "-c", path, cwd=tmp_path)
    assert p.returncode == 0, (p.stderr, text)
    assert "%s: configuration OK" % path in p.stdout.splitlines()


def test_token_file_given(make_daemon, tmp_path):
    tf = tmp_path / "tok"
    fd = os.open(tf, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"token-from-file-0123456789\n")
    os.close(fd)
    d = make_daemon({"http": {"api_token": None,
                              "api_token_file": str(tf)}}, start=False)
    d.token = "token-from-file-0123456789"
    d.start()
    assert d.api("GET", "/api/v1/status").status == 200
    assert d.api("GET", "/api/v1/status", token=TOKEN).status == 401


def test_listen_ipv6(make_daemon):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    d = make_daemon({"http": {"listen": "[::1]:0"}}, start=False)
    d.start(wait=False)
    m = wait_for(lambda: re.search(
        r"\bhttp_listening addr=(\S+) port=(\d+)", d.log()), 10,
        what="http_listening")
    assert m.group(1) == "::1", m.group(0)
    conn = http.client.HTTPConnection("::1", int(m.group(2)),
                                      timeout=scaled(5))
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()


def test_detaches_without_f(make_daemon):
    """Without -f the command returns at once and the daemon runs on."""
    d = make_daemon(start=False)
    logfile = d.dir / "daemon.log"
    d.configure({"daemon": {"log": str(logfile)}})
    d.share_email_key()	# what d.start() does first (PostgreSQL)
    p = subprocess.run([str(OUTREACHD), "-c", str(d.conf_path)],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       cwd=d.dir, timeout=scaled(10))
    assert p.returncode == 0, p.stderr
    m = wait_for(lambda: logfile.exists() and re.search(
        r"\boutreachd_ready\b.*\bpid=(\d+)", logfile.read_text()), 10,
        what="outreachd_ready in the log file")
    pid = int(m.group(1))
    try:
        d.port = int(re.search(r"\bhttp_listening\b.*\bport=(\d+)",
                               logfile.read_text()).group(1))
        assert d.api("GET", "/healthz", token=None).status == 200
        assert os.getsid(pid) != os.getsid(0)	# out of our session
        os.kill(pid, signal.SIGTERM)

        def gone():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            with open("/proc/%d/stat" % pid) as f:	# a zombie is gone too
                return f.read().split(") ")[1].startswith("Z")

        wait_for(gone, 10, what="the detached daemon to exit")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    bad = [l for l in logfile.read_text().splitlines()
           if re.match(r"^\S+ (warn|error) ", l)]
    assert not bad, bad
