"""
test_files.py - the files outreachd writes outside the store: private
modes (umask 077: files 0600, directories 0700), warnings about a state
directory or data files others can read, and durability - the API token,
the email link key and each .eml are written to a temporary name, fsynced,
renamed (or linked) and their directory fsynced (once for a batch of .eml
files, before any of them counts as sent); a console outbox line is
fdatasynced before the send counts as accepted. The order of those system
calls is read from strace.
"""

import collections
import os
import re
import shutil
import signal
import stat
import time

import pytest

from conftest import OD_STORE, VALGRIND, scaled, wait_for

MSGS = "/api/v1/messages"
# On PostgreSQL no store file is in var/, and the link key is the one the
# nodes share, put there before the start (conftest), never made.
PG = OD_STORE == "postgresql"
STORE_FILES = () if PG else ("outreachd.db", "outreachd.db-wal",
                             "outreachd.db-shm")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def send_both(d):
    """One SMS and one email; waits until both are sent; returns the ids."""
    sms = d.send_sms(body="files test")
    r = d.api("POST", MSGS, {"channel": "email", "to": "alice@example.org",
                             "subject": "s", "body": "b"})
    assert r.status == 202, r
    email = r.json["id"]
    d.wait_status(sms, "sent")
    d.wait_status(email, "sent")
    return sms, email


def token_conf():
    """The default config, with the API token read from var/api.token."""
    return {"http": {"api_token": None}}


def start_with_token_file(d):
    d.start(wait=False)
    token = d.dir / "var" / "api.token"
    wait_for(lambda: token.exists() and token.read_text().strip(), 10,
             what="var/api.token")
    d.token = token.read_text().strip()
    d.wait_ready()


def test_data_files_are_private(make_daemon):
    d = make_daemon(token_conf(), start=False)
    start_with_token_file(d)
    send_both(d)
    var = d.dir / "var"
    assert mode(var) == 0o700
    for name in STORE_FILES + ("api.token", "email.key"):
        assert mode(var / name) == 0o600, name
    assert mode(d.outbox_path) == 0o600
    assert mode(d.mail_dir) == 0o700
    emls = list(d.mail_dir.glob("*.eml"))
    assert emls and all(mode(p) == 0o600 for p in emls)


def test_open_state_directory_and_readable_files_warn(make_daemon):
    # the data file: the store's, or on PostgreSQL the API token's
    data = "api.token" if PG else "outreachd.db"
    d = make_daemon(token_conf() if PG else None, start=not PG)
    if PG:
        start_with_token_file(d)
    var = d.dir / "var"
    assert d.stop() == 0
    os.chmod(var, 0o755)
    os.chmod(var / data, 0o644)
    d.expect_log(r"var_dir_open path=\S+/var mode=0755")
    d.expect_log(r"data_file_readable path=\S+/%s mode=0644"
                 % re.escape(data))
    d.start()
    log = d.log(since_start=True)
    assert re.search(r" warn var_dir_open path=%s mode=0755 "
                     r"hint=\"chmod 700 " % re.escape(str(var)), log), log
    assert re.search(r" warn data_file_readable path=%s mode=0644 "
                     r"hint=\"chmod 600 " % re.escape(str(var / data)),
                     log), log
    # Warned about, not changed.
    assert mode(var) == 0o755


def test_empty_token_file_is_replaced(make_daemon):
    # What a power loss left of the token file of an older version: the
    # daemon used to refuse to start until it was deleted.
    d = make_daemon(token_conf(), start=False)
    var = d.dir / "var"
    var.mkdir(mode=0o700)
    (var / "api.token").write_bytes(b"")
    os.chmod(var / "api.token", 0o600)
    d.expect_log(r"api_token_empty file=\S+/api\.token")
    start_with_token_file(d)
    token = (var / "api.token").read_text()
    assert re.fullmatch(r"[0-9a-f]{64}\n", token), repr(token)
    assert mode(var / "api.token") == 0o600
    r = d.api("GET", MSGS + "/1")
    assert r.status == 404, r	# authorized with the new token


# -- durability, read from strace -------------------------------------

STRACE = shutil.which("strace")


def strace_calls(path, pids=None):
    """
    [(syscall, text)] in order, from 'strace -f -y' output; a call that
    another thread interrupted counts where it started. With a list as
    pids, the thread of each call is appended to it.
    """
    calls = []
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.match(r"^(\d+)\s+(\w+)\((.*)$", line)
        if m and "resumed>" not in line:
            calls.append((m.group(2), m.group(3)))
            if pids is not None:
                pids.append(int(m.group(1)))
    return calls


def find(calls, start, pred, what):
    for i in range(start, len(calls)):
        if pred(*calls[i]):
            return i
    raise AssertionError("no %s after call %d in strace" % (what, start))


def fd_is(args, path):
    """The first argument is a descriptor that strace -y shows as path."""
    return re.match(r"\d+<%s>" % re.escape(str(path)), args) is not None


def assert_published(calls, path, how):
    """temp file fsynced -> renamed or linked to path -> directory fsynced."""
    tmp = path.parent / ("." + path.name + ".tmp")
    i = find(calls, 0, lambda c, a: c == "fsync" and fd_is(a, tmp),
             "fsync of %s" % tmp)
    j = find(calls, i, lambda c, a: c in how and '"%s"' % path in a,
             "%s to %s" % ("/".join(how), path))
    find(calls, j, lambda c, a: c == "fsync" and fd_is(a, path.parent),
         "fsync of directory %s" % path.parent)


@pytest.mark.skipif(STRACE is None, reason="strace not installed "
                    "(apt-get install strace)")
@pytest.mark.skipif(VALGRIND, reason="not under valgrind")
def test_files_are_synced_before_they_count(make_daemon):
    d = make_daemon(token_conf(), start=False)
    trace = d.dir / "strace.txt"
    plain = d.command
    d.command = lambda *extra: [
        STRACE, "-f", "-qq", "-y", "-s", "200", "-o", str(trace),
        "-e", "trace=openat,write,fsync,fdatasync,rename,renameat,"
        "renameat2,link,linkat"] + plain(*extra)
    # LeakSanitizer cannot run under ptrace (a --enable-sanitizers build).
    d.env["ASAN_OPTIONS"] = ":".join(
        x for x in (os.environ.get("ASAN_OPTIONS"), "detect_leaks=0") if x)
    start_with_token_file(d)
    sms, email = send_both(d)
    # Emails due together go to the file adapter in one loop turn: its
    # workers write them in batches with one directory fsync each.
    when = int(time.time()) + 2
    batch = []
    for k in range(8):
        r = d.api("POST", MSGS, {"channel": "email", "subject": "s",
                                 "to": "b%d@example.org" % k, "body": "b",
                                 "not_before": when})
        assert r.status == 202, r
        batch.append(r.json["id"])
    for mid in batch:
        d.wait_status(mid, "sent")
    # strace would catch a SIGTERM itself: signal the daemon under it.
    pid = int(re.search(r"outreachd_ready .*\bpid=(\d+)", d.log()).group(1))
    os.kill(pid, signal.SIGTERM)
    assert d.proc.wait(scaled(30)) == 0
    pids = []
    calls = strace_calls(trace, pids)
    var = d.dir / "var"

    # The token and the link key: exclusive create, so linked.
    assert_published(calls, var / "api.token", ("link", "linkat"))
    if not PG:
        assert_published(calls, var / "email.key", ("link", "linkat"))
    # Each email: its temporary file fsynced and renamed over any earlier
    # attempt, then, on the same worker thread, the one fsync of the
    # directory for its batch, and only after that the send reported
    # (the adapter's log line, written on the loop thread).
    renames = ("rename", "renameat", "renameat2")
    mail = d.mail_dir
    covered = collections.Counter()
    for mid in [email] + batch:
        path = mail / ("%d.eml" % mid)
        tmp = mail / (".%d.eml.tmp" % mid)
        i = find(calls, 0, lambda c, a: c == "fsync" and fd_is(a, tmp),
                 "fsync of %s" % tmp)
        j = find(calls, i, lambda c, a: c in renames and '"%s"' % path in a,
                 "rename to %s" % path)
        k = next((x for x in range(j + 1, len(calls))
                  if calls[x][0] == "fsync" and fd_is(calls[x][1], mail)
                  and pids[x] == pids[j]), None)
        assert k is not None, "no fsync of %s after the rename to %s " \
            "on its thread" % (mail, path)
        covered[k] += 1
        logged = find(calls, j, lambda c, a: c == "write"
                      and "file_email msg=%d " % mid in a,
                      "the file_email log line of %d" % mid)
        assert k < logged, "email %d reported before its directory " \
            "was synced" % mid
    # Batches: one directory fsync covered several files.
    assert max(covered.values()) > 1, covered

    # The outbox: created and its directory synced, the line written and
    # fdatasynced, and only then the send reported (its log line).
    out = d.outbox_path
    i = find(calls, 0, lambda c, a: c == "openat" and '"%s"' % out in a
             and "O_CREAT" in a, "creation of %s" % out)
    find(calls, i, lambda c, a: c == "fsync" and fd_is(a, out.parent),
         "fsync of directory %s" % out.parent)
    w = find(calls, i, lambda c, a: c == "write" and fd_is(a, out)
             and '\\"id\\":%d,' % sms in a, "write of the outbox line")
    s = find(calls, w, lambda c, a: c in ("fdatasync", "fsync")
             and fd_is(a, out), "fdatasync of %s" % out)
    logged = find(calls, w, lambda c, a: c == "write"
                  and "console_sms msg=%d " % sms in a,
                  "the console_sms log line")
    assert s < logged, "the send was reported before its line was synced"
