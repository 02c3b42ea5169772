#!/usr/bin/env python3
"""bench/alert.py - the database side of bench/alert (Python 3 standard
library only). It works on a stopped daemon's database.

  alert.py seed DB LIST N [--email]
      Adds N members, each with a unique phone number (and, with --email,
      a unique address) and an active SMS (and email) subscription to the
      list named LIST, which the daemon made from its config. Prints one
      "key=value ..." line.

  alert.py stats DB ALERT_ID
      Per channel of the alert: its messages by status, how many members
      they went to, and the latency from the message's created_at (when
      the fan-out queued it) to its 'sent' event (when the provider, or
      the email adapter, accepted it), as p50/p99/max in ms, and the first
      and last 'sent' times. Prints one "key=value ..." line per channel.

Phone numbers are +1 NPA NXX XXXX with area codes across the US time
zones (the quiet-hours code looks each one up), exchanges 230 and up: not
a list of real subscribers, and unique by construction.
"""

import sqlite3
import sys
import time

AREAS = (202, 212, 305, 312, 713, 303, 602, 415, 206, 907)
NAMES = ("Ana", "Ben", "Chioma", "Dmitri", "Elif", "Farah", "Gus", "Hana",
         "Ivo", None)   # one in ten has no first name: the fallback renders


def phone(i):
    area = AREAS[i % len(AREAS)]
    j = i // len(AREAS)
    return "+1%03d%03d%04d" % (area, 230 + j // 10000, j % 10000)


def seed(db, list_name, n, email):
    t0 = time.monotonic()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous = OFF")
    row = con.execute("SELECT id FROM lists WHERE name = ?",
                      (list_name,)).fetchone()
    if row is None:
        sys.exit("alert.py: no list '%s' in %s" % (list_name, db))
    list_id = row[0]
    first = con.execute("SELECT coalesce(max(id), 0) FROM members").fetchone()[0]
    now = int(time.time() * 1000)
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO members (id, phone, email, first_name, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        ((first + 1 + i, phone(i),
          "m%d@bench.example.org" % i if email else None,
          NAMES[i % len(NAMES)], now, now) for i in range(n)))
    channels = ("sms", "email") if email else ("sms",)
    for ch in channels:
        con.executemany(
            "INSERT INTO subscriptions (member_id, list_id, channel, status,"
            " source, created_at, updated_at)"
            " VALUES (?, ?, ?, 'active', 'import', ?, ?)",
            ((first + 1 + i, list_id, ch, now, now) for i in range(n)))
    con.execute("COMMIT")
    con.close()
    print("list_id=%d members=%d subscriptions=%d seconds=%.1f" %
          (list_id, n, n * len(channels), time.monotonic() - t0))


def pct(sorted_values, p):
    if not sorted_values:
        return -1
    return sorted_values[int((len(sorted_values) - 1) * p)]


def stats(db, alert_id):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    by_status = {}
    for ch, st, n in con.execute(
            "SELECT channel, status, count(*) FROM messages"
            " WHERE alert_id = ? GROUP BY 1, 2", (alert_id,)):
        by_status.setdefault(ch, {})[st] = n
    for ch in ("sms", "email"):
        if ch not in by_status:
            continue
        members = con.execute(
            "SELECT count(DISTINCT member_id) FROM messages"
            " WHERE alert_id = ? AND channel = ?", (alert_id, ch)).fetchone()[0]
        lat, first, last = [], None, None
        for created, sent in con.execute(
                "SELECT m.created_at, min(e.created_at) FROM messages m"
                " JOIN message_events e ON e.message_id = m.id"
                " AND e.status = 'sent'"
                " WHERE m.alert_id = ? AND m.channel = ? GROUP BY m.id",
                (alert_id, ch)):
            lat.append(sent - created)
            first = sent if first is None or sent < first else first
            last = sent if last is None or sent > last else last
        lat.sort()
        print("channel=%s messages=%d members=%d sent=%d %s p50_ms=%d"
              " p99_ms=%d max_ms=%d first_sent_ms=%d last_sent_ms=%d" %
              (ch, sum(by_status[ch].values()), members, len(lat),
               " ".join("status_%s=%d" % kv
                        for kv in sorted(by_status[ch].items())),
               pct(lat, 0.50), pct(lat, 0.99), lat[-1] if lat else -1,
               first or 0, last or 0))
    con.close()


def main(argv):
    if len(argv) >= 5 and argv[1] == "seed":
        seed(argv[2], argv[3], int(argv[4]), "--email" in argv[5:])
    elif len(argv) == 4 and argv[1] == "stats":
        stats(argv[2], int(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
