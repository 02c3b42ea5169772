"""
test_pg_notify.py - the email digests of new inbound conversation
messages (daemon/notify.c) on a PostgreSQL store (issue 13,
doc/postgresql.md; the claim is at the top of queue/store_notify_pg.c):
two daemons with [store] backend = postgresql on one database of the
session's cluster (pgcluster.py), texts from the fake Twilio
(fakeprov.py), the digests counted at a recording SMTP server
(smtpserver.py).

Covered, on states only (no timing assertions), in one test so that the
two nodes start once:
  - both nodes are due at once, and the digest is queued once: while a
    psql session holds notify_state's row, the nodes skip it
    (notify_digest_elsewhere) and nothing is mailed; once it is freed,
    one email, queued by one node, and none after it;
  - the node that queued it is killed (-9); the next text's digest is
    queued and mailed by the other node, covering that text only.
"""

import re
import subprocess

from conftest import free_port, scaled, wait_for
from fakeprov import (CREDENTIALS, OUR_NUMBER, SENDER_KEYS,  # noqa: F401
                      fakeprov, stays)
from test_notify import ANN, BOB, INBOX, INTERVAL, mails, smtp  # noqa: F401


def pg_node(make_daemon, fake, smtp, url, node):
    """A node of the shared database: SMS sender 'sx' is the fake
    Twilio, email goes to the recording SMTP server."""
    port = free_port()
    sx = {"provider": "twilio", "from": OUR_NUMBER, "base_url": fake.url,
          "timeout": "1s"}
    sx.update(SENDER_KEYS["twilio"](CREDENTIALS["twilio"], fake))
    conf = {
        "store": {"backend": "postgresql", "url": url, "node": node},
        "http": {"listen": "127.0.0.1:%d" % port,
                 "public_url": "http://127.0.0.1:%d" % port},
        "dispatch": {"retry_base": "200ms", "retry_max": "5s"},
        "sms": {"default_sender": "sx"},
        "sender sx": sx,
        "email": {"adapter": "smtp", "dir": None},
        "smtp": {"host": "127.0.0.1", "port": str(smtp.port),
                 "from": "Town Union <org@example.org>",
                 "starttls": "off"},
        "conversations": {"digest_interval": "%ds" % INTERVAL,
                          "notify_email": INBOX},
    }
    return make_daemon(conf, name=node)


def text(fp, d, frm, body):
    fp.config(daemon_url=d.url())
    r = fp.callback("twilio", kind="inbound", text=body,
                    **{"from": frm, "to": OUR_NUMBER})
    assert r["status"] == 200, r


class RowLock:
    """A psql session holding notify_state's row (FOR UPDATE), as a node
    whose digest is in flight."""

    def __init__(self, pg, url):
        self.p = subprocess.Popen(
            [pg.psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            bufsize=1)
        self.p.stdin.write("BEGIN;\nSELECT id FROM notify_state WHERE id = 1"
                           " FOR UPDATE;\n\\echo ready\n")
        lines = []
        while True:
            line = self.p.stdout.readline()
            assert line, "psql ended: %r" % lines
            if line.strip() == "ready":
                break
            lines.append(line.strip())
        assert lines == ["1"], lines

    def end(self):
        self.p.stdin.write("ROLLBACK;\n")
        self.p.stdin.close()
        assert self.p.wait(timeout=scaled(30)) == 0


def queued(d):
    return len(re.findall(r"notify_digest_queued ", d.log()))


def test_digest_once_across_nodes(make_daemon, pgcluster, fakeprov, smtp):
    url = pgcluster.create_db("notify")
    a = pg_node(make_daemon, fakeprov, smtp, url, "a")
    b = pg_node(make_daemon, fakeprov, smtp, url, "b")
    fakeprov.config("twilio", sender="sx")

    def one(sql):
        return pgcluster.psql(url, sql).strip()

    def emails():
        return int(one("SELECT count(*) FROM messages WHERE channel ="
                       " 'email'"))

    # ---- held: both nodes find the digest due and skip it
    lock = RowLock(pgcluster, url)
    text(fakeprov, a, ANN, "First, on node A")
    wait_for(lambda: "notify_digest_elsewhere" in a.log() + b.log(),
             4 * INTERVAL + 10, what="a node skipping the held digest")
    assert emails() == 0 and mails(smtp) == []
    lock.end()
    # ---- freed: one email, from one node, and no other after it
    wait_for(lambda: len(mails(smtp)) >= 1, 4 * INTERVAL + 10,
             what="the first digest")
    stays(lambda: len(mails(smtp)) == 1, 2 * INTERVAL)
    [(to, subject, body)] = mails(smtp)
    assert to == INBOX and subject == "1 new message in 1 conversation"
    assert '"First, on node A"' in body and ANN in body
    assert emails() == 1
    assert sorted([queued(a), queued(b)]) == [0, 1]
    assert one("SELECT last_message_id = (SELECT max(id) FROM messages"
               " WHERE direction = 'in') FROM notify_state") == "t"
    # ---- the node that queued it dies; the other sends the next one
    holder, other = (a, b) if queued(a) == 1 else (b, a)
    holder.kill9()
    text(fakeprov, other, BOB, "Second, after the kill")
    wait_for(lambda: len(mails(smtp)) >= 2, 4 * INTERVAL + 30,
             what="the second digest from the surviving node")
    stays(lambda: len(mails(smtp)) == 2, INTERVAL + 1)
    body = mails(smtp)[1][2]
    assert '"Second, after the kill"' in body and '"First' not in body
    assert queued(other) == 1
    assert emails() == 2
