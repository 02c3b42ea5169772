"""
conftest.py - fixtures for the outreachd integration suite (README.md here).

Every test drives the real binaries from the build directory: a fresh temp
dir per test holds the config, the SQLite database, the console SMS outbox,
the mail directory and the daemon's log (its stderr). The daemon listens on
127.0.0.1:0 and the port is read back from its `http_listening ... port=N`
log line (libevent's regress_http does the same). Nothing sleeps blindly:
every wait polls a condition against a deadline (wait_for()).

At teardown a daemon still running is stopped with SIGTERM and must exit 0,
and the test fails if the log holds a `warn` or `error` line the test did
not declare with daemon.expect_log(regex), or any sanitizer report.

Environment:
  OD_BUILDDIR       build dir holding outreachd and outreachctl (default: .)
  OD_SRCDIR         source tree (default: this file's ../..)
  OD_VALGRIND=1     run outreachd under
                      valgrind --leak-check=full --error-exitcode=99
                      --errors-for-leak-kinds=definite
                    (a definite leak or a memory error makes the exit code
                    99, so the SIGTERM-must-exit-0 checks catch it), and
                    multiply every timeout by OD_TIMEOUT_SCALE (default 10).
  OD_TIMEOUT_SCALE  timeout multiplier (default 1; 10 under valgrind). Use
                    2-3 for a --enable-sanitizers build on a slow machine.
"""

import atexit
import http.client
import itertools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

# One throwaway PostgreSQL cluster for the session's test_pg_* modules.
from pgcluster import pgcluster  # noqa: F401,E402 (fixture)

HERE = Path(__file__).resolve().parent
SRCDIR = Path(os.environ.get("OD_SRCDIR") or HERE.parent.parent)
BUILDDIR = Path(os.environ.get("OD_BUILDDIR") or os.getcwd())
OUTREACHD = BUILDDIR / "outreachd"
OUTREACHCTL = BUILDDIR / "outreachctl"
VALGRIND = os.environ.get("OD_VALGRIND", "") not in ("", "0", "no")
SCALE = float(os.environ.get("OD_TIMEOUT_SCALE") or (10 if VALGRIND else 1))
VALGRIND_CMD = ["valgrind", "--leak-check=full", "--error-exitcode=99",
                "--errors-for-leak-kinds=definite",
                "--suppressions=" + os.path.join(
                    os.environ.get("OD_SRCDIR", os.path.join(
                        os.path.dirname(__file__), "..", "..")),
                    "tests", "valgrind.supp")]

TOKEN = "it-token-3f9c1b7e5a2d4c6e8f0a"
SMS_FROM = "+15550100000"
VERSION = "0.1.0"

# A log line's level is the second field: "2026-11-27T03:14:34.123Z warn ...".
LOG_BAD_LEVEL = re.compile(r"^\S+ (warn|error) ")
# Reports of ASan/UBSan/LSan and valgrind: never acceptable.
SANITIZER_REPORT = re.compile(
    r"runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
    r"SUMMARY: (Address|Undefined|Leak)Sanitizer|"
    r"==\d+== (Invalid (read|write|free)|Conditional jump|"
    r"Syscall param|Mismatched free|Source and destination overlap)")

_live = []	# daemons still running, for the atexit safety net


@atexit.register
def _kill_leftovers():
    for p in _live:
        if p.poll() is None:
            p.kill()


def scaled(seconds):
    """A timeout in seconds, scaled for valgrind/sanitizer runs."""
    return seconds * SCALE


def run_clients(client, count, timeout=120):
    """
    Runs client(0) .. client(count - 1) on threads at once and waits for
    them all; fails the test if one is still running after timeout
    (scaled) seconds.
    """
    threads = [threading.Thread(target=client, args=(n,), daemon=True)
               for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(timeout))
        assert not t.is_alive(), "a client hung"


def wait_for(predicate, timeout=10.0, interval=0.02, what=None):
    """
    Polls predicate() until it returns a truthy value, which is returned.
    Fails the test when timeout (scaled) passes first, naming 'what' (or
    the predicate) and the last value seen.
    """
    deadline = time.monotonic() + scaled(timeout)
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s "
                                 "(last value: %r)" % (scaled(timeout),
                                                       what or predicate, last))
        time.sleep(interval)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    """An HTTP answer: status, headers (case-insensitive), raw body, json."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError("response is not JSON (%s): %r"
                                 % (e, self.body[:300])) from None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def error_code(self):
        """The "code" of a {"error":{"code","message"}} body."""
        j = self.json
        assert isinstance(j.get("error"), dict), "no error object: %r" % j
        return j["error"].get("code")

    def error_message(self):
        return self.json["error"].get("message") or ""

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


_DEFAULT = object()


# The link-signing key the PostgreSQL nodes of a test share, as the nodes
# of one deployment must (doc/postgresql.md).
PG_EMAIL_KEY = b"6f7574726561636864" * 4 + b"\n"


# OD_STORE=postgresql: every test daemon gets [store] backend =
# postgresql on a fresh database of one throwaway cluster per test
# process (tests/pg.sh, started at the first daemon), instead of its
# SQLite file: the whole suite against the shared store (issue 13). Tests
# that read the SQLite file themselves, or use what is not on PostgreSQL
# yet, fail there; doc/postgresql.md says how many pass.
OD_STORE = os.environ.get("OD_STORE", "sqlite")
_store_cluster = []
_store_dbs = itertools.count()


def store_conf():
    """The [store] section of a new test daemon (None: SQLite's default)."""
    if OD_STORE != "postgresql":
        return None
    if not _store_cluster:
        from pgcluster import PgCluster
        _store_cluster.append(PgCluster())
        atexit.register(_store_cluster[0].stop)
    name = "od_%d_%d" % (os.getpid(), next(_store_dbs))
    return {"backend": "postgresql",
            "url": _store_cluster[0].create_db(name), "node": name}


class PgRow(tuple):
    """A row read from PostgreSQL, indexed like sqlite3.Row: by position
    or by column name."""

    def __new__(cls, names, values):
        r = super().__new__(cls, values)
        r._names = names
        return r

    def __getitem__(self, k):
        if isinstance(k, str):
            return tuple.__getitem__(self, self._names.index(k))
        return tuple.__getitem__(self, k)

    def keys(self):
        return list(self._names)


def _pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, bytes):
        v = v.decode()
    return "'" + str(v).replace("'", "''") + "'"


def _pg_bind(sql, args):
    """sql with its ? (or ?N) placeholders replaced by args as literals,
    outside quoted strings."""
    out, i, n, quote = [], 0, 0, None
    while i < len(sql):
        ch = sql[i]
        if quote is not None:
            out.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            j = i + 1
            while j < len(sql) and sql[j].isdigit():
                j += 1
            k = int(sql[i + 1:j]) - 1 if j > i + 1 else n
            n += 1
            out.append(_pg_literal(args[k]))
            i = j
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


_psql_bin = []


def pg_query(url, sql, args=()):
    """The rows of sql on PostgreSQL's url, through psql: json_agg keeps
    the columns' types (numbers, NULLs) and order."""
    if not _psql_bin:
        bindir = subprocess.run([str(SRCDIR / "tests" / "pg.sh"), "bindir"],
                                capture_output=True, text=True,
                                check=True).stdout.strip()
        _psql_bin.append(os.path.join(bindir, "psql"))
    wrapped = ("SELECT coalesce(json_agg(row_to_json(t))::text, '[]') "
               "FROM (%s) t" % _pg_bind(sql.strip().rstrip(";"), args))
    r = subprocess.run([_psql_bin[0], "-X", "-q", "-A", "-t", "-v",
                        "ON_ERROR_STOP=1", "-c", wrapped, url],
                       capture_output=True, text=True, timeout=scaled(60))
    if r.returncode != 0:
        raise AssertionError("psql %s: %s" % (sql[:200], r.stderr.strip()))
    rows = json.loads(r.stdout, object_pairs_hook=lambda kv: kv)
    return [PgRow([k for k, _ in row], [v for _, v in row]) for row in rows]


def pg_execute(url, sql, args=()):
    """Runs one statement that returns no rows (a write) on PostgreSQL's
    url, through psql."""
    pg_query(url, "SELECT 1", ())  # finds psql
    r = subprocess.run([_psql_bin[0], "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        "-f", "-", url], input=_pg_bind(sql, args) + ";\n",
                       capture_output=True, text=True, timeout=scaled(60))
    if r.returncode != 0:
        raise AssertionError("psql %s: %s" % (sql[:200], r.stderr.strip()))


def default_conf(d):
    """The base config of every test daemon, as {section: {key: value}}."""
    conf = {
        "daemon": {"var_dir": str(d / "var"), "shutdown_timeout": "10s"},
        "http": {"listen": "127.0.0.1:0", "api_token": TOKEN},
        "sender console": {"provider": "console", "from": SMS_FROM,
                           "file": str(d / "outbox.jsonl")},
        "email": {"adapter": "file", "dir": str(d / "mail")},
    }
    store = store_conf()
    if store is not None:
        conf["store"] = store
    return conf


def render_conf(sections):
    out = []
    for name, kv in sections.items():
        out.append("[%s]" % name)
        for k, v in kv.items():
            if v is not None:
                out.append("%s = %s" % (k, v))
        out.append("")
    return "\n".join(out)


class Daemon:
    """
    One outreachd in its own temp dir. conf overrides default_conf():
    {"dispatch": {"max_in_flight": "8"}}; a value of None removes a key.
    """

    def __init__(self, tmp_path, conf=None, token=TOKEN):
        self.dir = Path(tmp_path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.conf_path = self.dir / "od.conf"
        self.log_path = self.dir / "od.log"
        self.outbox_path = self.dir / "outbox.jsonl"
        self.mail_dir = self.dir / "mail"
        self.db_path = self.dir / "var" / "outreachd.db"
        self.sections = default_conf(self.dir)
        self.configure(conf or {})
        self.proc = None
        self.port = None
        self.starts = 0
        self.expected = []
        self.args = []
        self.env = {}		# extra environment for the daemon

    # -- config -------------------------------------------------------
    def configure(self, conf):
        """Merges conf into the config and rewrites the file (mode 0600)."""
        for sec, kv in conf.items():
            if kv is None:
                self.sections.pop(sec, None)
                continue
            self.sections.setdefault(sec, {}).update(kv)
        text = render_conf(self.sections)
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    def conf(self, section, key, default=None):
        return self.sections.get(section, {}).get(key, default)

    def share_email_key(self):
        """A PostgreSQL node refuses to start without its [email]
        secret_file (every node must sign links with the same key): unless
        the test names one, each gets the same PG_EMAIL_KEY in var/."""
        if (self.conf("store", "backend") != "postgresql"
                or self.conf("email", "secret_file") is not None):
            return
        path = Path(self.conf("daemon", "var_dir")) / "email.key"
        if path.exists():
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(PG_EMAIL_KEY)

    # -- process ------------------------------------------------------
    def command(self, *extra):
        cmd = [str(OUTREACHD), "-f", "-c", str(self.conf_path)] + list(extra)
        return VALGRIND_CMD + cmd if VALGRIND else cmd

    def start(self, *extra, wait=True):
        """Starts the daemon; with wait, returns once /healthz is 200."""
        assert self.proc is None or self.proc.poll() is not None, \
            "daemon already running"
        self.share_email_key()
        self.args = list(extra)
        with open(self.log_path, "ab") as log:
            log.write(b"--- start %d: %s\n"
                      % (self.starts + 1, " ".join(self.command(*extra))
                         .encode()))
            log.flush()
            self.log_offset = log.tell()
            self.proc = subprocess.Popen(
                self.command(*extra), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, cwd=self.dir,
                env=dict(os.environ, **self.env))
        _live.append(self.proc)
        self.starts += 1
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(
                    "outreachd exited with %d before listening; log:\n%s"
                    % (self.proc.returncode, self.log_tail()))
            m = re.search(r"\bhttp_listening\b.*\bport=(\d+)",
                          self.log(since_start=True))
            return int(m.group(1)) if m else None

        self.port = wait_for(listening, timeout, what="http_listening")
        assert self.port > 0

        def healthy():
            try:
                return self.api("GET", "/healthz", token=None,
                                timeout=2).status == 200
            except OSError:
                return False

        wait_for(healthy, timeout, what="GET /healthz == 200")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Sends sig and waits; returns the exit code (-N: killed by N)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    "outreachd did not exit within %.1fs of signal %d; log:\n%s"
                    % (scaled(timeout), sig, self.log_tail())) from None
        return self.proc.returncode

    def kill9(self):
        """kill -9: no cleanup of any kind in the daemon."""
        assert self.running()
        self.proc.kill()
        self.proc.wait()

    def restart(self, *extra, conf=None):
        """Stops (SIGTERM, must exit 0) if running, then starts again on
        the same dir and database; conf is merged into the config first."""
        if self.running():
            rc = self.stop()
            assert rc == 0, "exit %d on SIGTERM; log:\n%s" % (
                rc, self.log_tail())
        if conf:
            self.configure(conf)
        return self.start(*extra)

    # -- observation --------------------------------------------------
    def log(self, since_start=False):
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            if since_start:
                f.seek(self.log_offset)
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def expect_log(self, regex):
        """Declares that warn/error lines matching regex are expected."""
        self.expected.append(re.compile(regex))

    def unexpected_log_lines(self):
        bad = []
        for line in self.log().splitlines():
            if SANITIZER_REPORT.search(line):
                bad.append(line)
            elif LOG_BAD_LEVEL.search(line) and \
                    not any(r.search(line) for r in self.expected):
                bad.append(line)
        return bad

    def outbox(self):
        """
        The console outbox as a list of dicts, one per line. While the
        daemon runs, an unterminated last line is a write in progress and
        is left out; once it has exited (even by kill -9), it is an error.
        """
        if not self.outbox_path.exists():
            return []
        out = []
        with open(self.outbox_path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.endswith(b"\n") and self.running():
                    break
                assert line.endswith(b"\n"), \
                    "outbox line %d is not terminated: %r" % (n, line[-80:])
                try:
                    out.append(json.loads(line))
                except ValueError as e:
                    raise AssertionError("outbox line %d is not JSON (%s): %r"
                                         % (n, e, line[:200])) from None
        return out

    def db(self):
        """A read-only connection to the daemon's database (close it)."""
        assert self.db_path.exists(), "no database at %s" % self.db_path
        c = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True,
                            timeout=scaled(5))
        c.row_factory = sqlite3.Row
        return c

    def query(self, sql, args=()):
        """Rows of sql (? placeholders) in the daemon's database: its
        SQLite file, or on [store] backend = postgresql its database,
        read with psql (pg_query())."""
        if self.conf("store", "backend") == "postgresql":
            return pg_query(self.conf("store", "url"), sql, args)
        c = self.db()
        try:
            return c.execute(sql, args).fetchall()
        finally:
            c.close()

    def scalar(self, sql, args=()):
        return self.query(sql, args)[0][0]

    def execute(self, sql, args=()):
        """Runs one write (? placeholders) on the daemon's database, either
        store; on SQLite stop the daemon first (its file is locked)."""
        if self.conf("store", "backend") == "postgresql":
            pg_execute(self.conf("store", "url"), sql, args)
            return
        c = sqlite3.connect(str(self.db_path), timeout=scaled(5))
        try:
            with c:
                c.execute(sql, args)
        finally:
            c.close()

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # -- HTTP ---------------------------------------------------------
    def api(self, method, path, body=None, token=_DEFAULT, headers=None,
            raw=None, timeout=10):
        """
        One request on a fresh connection. body is sent as JSON
        (Content-Type: application/json); raw is sent as is (set the
        Content-Type in headers). token=None sends no Authorization.
        """
        hdrs = {}
        tok = self.token if token is _DEFAULT else token
        if tok is not None:
            hdrs["Authorization"] = "Bearer " + tok
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if raw is not None:
            data = raw
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=scaled(timeout))
        try:
            try:
                conn.request(method, path, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError) as e:
                # The server answered early (413, 414, 431, ...) and closed
                # while the request was still going out: read that answer
                # if it reached us, else report the send error.
                try:
                    r = conn.getresponse()
                    return Response(r.status, r.headers, r.read())
                except (OSError, http.client.HTTPException):
                    raise e from None
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    def send_sms(self, to="+15551230001", body="hello", **extra):
        """POSTs an SMS; asserts 202 and returns the id."""
        msg = {"to": to, "body": body}
        msg.update(extra)
        r = self.api("POST", "/api/v1/messages", msg)
        assert r.status == 202, r
        return r.json["id"]

    def message(self, mid):
        r = self.api("GET", "/api/v1/messages/%d" % mid)
        assert r.status == 200, r
        return r.json

    def wait_status(self, mid, status="sent", timeout=10):
        """Polls GET /api/v1/messages/ID until status; returns the JSON."""
        seen = {}

        def reached():
            seen["m"] = self.message(mid)
            return seen["m"] if seen["m"]["status"] == status else None

        try:
            return wait_for(reached, timeout,
                            what="message %d status %s" % (mid, status))
        except AssertionError as e:
            raise AssertionError("%s; last: %r" % (e, seen.get("m"))) from None

    def wait_idle(self, timeout=20):
        """Waits until no message is queued or sending (read from the db)."""
        wait_for(lambda: self.scalar(
            "SELECT count(*) FROM messages "
            "WHERE status IN ('queued', 'sending')") == 0,
            timeout, interval=0.05, what="an idle queue")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long-running but required (runs by default)")


@pytest.fixture
def make_daemon(tmp_path):
    """
    Factory: make_daemon(conf=None, start=True, name="od") -> Daemon in
    tmp_path/name. At teardown each daemon still running must exit 0 on
    SIGTERM, and no log may hold an undeclared warn/error line.
    """
    daemons = []

    def make(conf=None, start=True, name="od", extra=()):
        d = Daemon(tmp_path / name, conf)
        daemons.append(d)
        if start:
            d.start(*extra)
        return d

    yield make
    problems = []
    for d in daemons:
        if d.running():
            rc = d.stop()
            if rc != 0:
                problems.append("%s: exit %d on SIGTERM at teardown"
                                % (d.dir, rc))
        bad = d.unexpected_log_lines()
        if bad:
            problems.append("%s: unexpected log lines:\n  %s"
                            % (d.log_path, "\n  ".join(bad)))
    if problems:
        pytest.fail("\n".join(problems) + "\n(last log lines of %s:\n%s)"
                    % (daemons[-1].log_path, daemons[-1].log_tail()),
                    pytrace=False)


@pytest.fixture
def daemon(make_daemon):
    """A running daemon with the default config."""
    return make_daemon()
