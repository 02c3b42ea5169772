"""
pgcluster.py - a throwaway PostgreSQL cluster for the integration suite
(issue 13, doc/postgresql.md), through tests/pg.sh: initdb into a fresh
directory, a server listening only on a Unix socket there (no TCP), fsync
and synchronous_commit on. The cluster is stopped and its directory removed
at the end of the session that used it, and pg.sh's watchdog removes it too
if pytest dies first.

Fixture (registered by conftest.py, so one cluster serves the session;
each test makes its own database with a name of its own):
  pgcluster  (session scope) a PgCluster; skipped, with the reason printed,
             only when PostgreSQL's server binaries are missing (CI installs
             them through ./bootstrap)

PgCluster(server_env=None)
                       server_env: {name: value} in the server's
                       environment only (pg.sh's OD_PG_SERVER_ENV), e.g.
                       libfaketime's LD_PRELOAD and FAKETIME
  url                  postgresql:///outreachd?host=DIR&user=outreachd
  restart(server_env=None)
                       pg_ctl restart, the server with server_env
  stop()               stops the server, removes its directory
  create_db(name)      a fresh database; returns its URL
  psql(url, sql=..., file=...)
                       runs psql -X -v ON_ERROR_STOP=1 (one transaction
                       with single=True); returns stdout; fails the test
                       with psql's error text
  json(url, sql)       the single json value a query returns, decoded

Standard library only: no psycopg2, psql does the talking.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRCDIR = Path(os.environ.get("OD_SRCDIR") or HERE.parent.parent)
PG_SH = SRCDIR / "tests" / "pg.sh"


def pg_missing():
    """None when a cluster can be started, else why not."""
    r = subprocess.run([str(PG_SH), "check"], capture_output=True, text=True)
    if r.returncode == 0:
        return None
    return r.stderr.strip() or "pg.sh check exited %d" % r.returncode


def _server_env(env):
    """The environment of pg.sh with env ({name: value}) for the
    server only (pg.sh's OD_PG_SERVER_ENV)."""
    out = dict(os.environ)
    out.pop("OD_PG_SERVER_ENV", None)
    if env:
        out["OD_PG_SERVER_ENV"] = "\n".join(
            "%s=%s" % kv for kv in sorted(env.items()))
    return out


class PgCluster:
    def __init__(self, server_env=None):
        r = subprocess.run([str(PG_SH), "start", str(os.getpid())],
                           capture_output=True, text=True, timeout=300,
                           env=_server_env(server_env))
        if r.returncode != 0:
            raise AssertionError("pg.sh start failed (exit %d):\n%s"
                                 % (r.returncode, r.stderr))
        self.url = r.stdout.strip().splitlines()[-1]
        self.bindir = subprocess.run([str(PG_SH), "bindir"],
                                     capture_output=True, text=True,
                                     check=True).stdout.strip()
        self.psql_bin = os.path.join(self.bindir, "psql")

    def stop(self):
        subprocess.run([str(PG_SH), "stop", self.url], check=False,
                       timeout=120)

    def restart(self, server_env=None):
        subprocess.run([str(PG_SH), "restart", self.url], check=True,
                       timeout=120, env=_server_env(server_env))

    def db_url(self, name):
        return self.url.replace("postgresql:///outreachd?",
                                "postgresql:///%s?" % name, 1)

    def create_db(self, name):
        self.psql(self.url, "DROP DATABASE IF EXISTS %s" % name, single=False)
        self.psql(self.url, "CREATE DATABASE %s" % name, single=False)
        return self.db_url(name)

    def psql(self, url, sql=None, file=None, single=True):
        cmd = [self.psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        if single:
            cmd.append("-1")
        if file is not None:
            cmd += ["-f", str(file)]
        else:
            cmd += ["-c", sql]
        cmd.append(url)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError("psql %s failed (exit %d): %s"
                                 % (file or sql[:200], r.returncode,
                                    r.stderr.strip()))
        return r.stdout

    def json(self, url, sql):
        out = self.psql(url, sql, single=False).strip()
        return json.loads(out) if out else None


@pytest.fixture(scope="session")
def pgcluster():
    why = pg_missing()
    if why:
        # Printed past pytest's capture, so the reason is seen in any run.
        sys.__stderr__.write("\nPostgreSQL tests skipped: %s\n" % why)
        pytest.skip(why)
    c = PgCluster()
    try:
        yield c
    finally:
        c.stop()
