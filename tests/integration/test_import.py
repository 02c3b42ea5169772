"""
test_import.py - CSV imports of members (daemon/import.c, daemon/csv.c,
outreachctl import): a 100,000-row file with every kind of row a real
spreadsheet holds, exact counts in the report, a rerun that changes
nothing; each header and row error message; the CLI with its progress
output.

The big file is generated here (deterministic seed) together with what the
report must say about it: every row is of a known kind, and the expected
issues (line, kind) are recorded as the file is written, line numbers
counting the blank lines and the line breaks inside quoted fields.
"""

import json
import random
import sqlite3
import subprocess
import time

import pytest

from conftest import OUTREACHCTL, TOKEN, scaled
from pgcluster import SRCDIR

LIST = "volunteers"
SOURCE = "2024 rally sign-up sheets"
CONF = {"list volunteers": {"keywords": "JOIN"},
        "list other": {"keywords": "OTHER"}}

AREAS = ["212", "415", "617", "312", "206", "303", "512", "404", "213", "702"]
EXCHANGES = ["234", "345", "456", "567", "678", "789", "823", "872", "262",
             "398"]
FIRST = ["Zoë", "José", "Łukasz", "Nguyễn", "東京", "Ana María", "O'Brien",
         "Ann", "Bob", "Chloé", "Dmitri", "Émile"]
LAST = ["Smith, Jr.", "Doe", "Müller", "García", "Kowalski", "Lee",
        "\"The Rock\" Johnson", "Øster"]
HEADER = ["Phone Number", "E-mail", "First Name", "Last Name", "ZIP", "Tags",
          "Notes"]


def e164(n):
    """The n-th test number (n < 1,000,000) in E.164."""
    return "+1%s%s%04d" % (AREAS[n % 10], EXCHANGES[(n // 10) % 10],
                           (n // 100) % 10000)


def written(n, style):
    """The n-th number as people write it."""
    a, e, line = e164(n)[2:5], e164(n)[5:8], e164(n)[8:]
    return ["+1 %s-%s-%s" % (a, e, line), "(%s) %s-%s" % (a, e, line),
            "%s.%s.%s" % (a, e, line), a + e + line,
            "1-%s-%s-%s" % (a, e, line)][style % 5]


def csv_field(v):
    if isinstance(v, bytes):
        return v
    if any(c in v for c in ',"\r\n'):
        v = '"' + v.replace('"', '""') + '"'
    return v.encode()


def csv_record(fields):
    """The bytes of one CRLF record, and the line breaks it spans."""
    raw = b",".join(csv_field(f) for f in fields) + b"\r\n"
    breaks = sum((f.count("\n") if isinstance(f, str) else 0)
                 for f in fields) + 1
    return raw, breaks


# Row kinds of the big file and how many of each.
KINDS = {
    "upd": 1000,       # existing member (phone only): gets an email
    "unch": 1000,      # existing member, row exactly as stored
    "opt": 500,        # existing member who opted out of SMS
    "conf": 200,       # phone of one member, email of another
    "badp": 1500,      # bad phone, no (or a bad) email: rejected
    "warnp": 500,      # bad phone, good new email: created, warning
    "warne": 300,      # good new phone, bad email: created, warning
    "nocontact": 300,  # a name but no phone and no email: rejected
    "badutf8": 200,    # Latin-1 bytes in a cell: rejected
    "dupp": 1000,      # phone of an earlier row (another format)
    "dupe": 500,       # email of an earlier row (other case)
    "dupx": 300,       # phone of one earlier row + email of another
    "blank": 50,       # ",,,,,," : skipped, not a row
}
RECORDS = 100000
KINDS["new"] = RECORDS - sum(KINDS.values())
BLANK_LINES = 50       # empty lines: not records at all
BAD_PHONES = ["555-12", "12345678901234567", "call me", "(123) 456-7890",
              "+1 555 0100", "0"]
BAD_EMAILS = ["bob@", "no-at-sign.org", "a b@example.org", "x@localhost"]


def seed_row(kind, k):
    """The row for member k of a seeded kind (seed file and big file)."""
    if kind == "unch":
        n = 500000 + k
        return [written(n, k), "same%d@example.org" % k, "Same", "Row",
                "02139", "a;b", "kept, as is"]
    if kind == "upd":
        return [written(510000 + k, k), "", "Old", "", "", "", ""]
    if kind == "conf_a":
        return [written(520000 + k, k), "", "A", "", "", "", ""]
    if kind == "conf_b":
        return ["", "confb%d@example.org" % k, "B", "", "", "", ""]
    raise ValueError(kind)


def seed_csv():
    out = [csv_record(HEADER)[0]]
    for kind, n in (("upd", KINDS["upd"]), ("unch", KINDS["unch"]),
                    ("conf_a", KINDS["conf"]), ("conf_b", KINDS["conf"])):
        for k in range(n):
            out.append(csv_record(seed_row(kind, k))[0])
    return b"".join(out)


def opt_phone(k):
    return e164(530000 + k)


def big_csv(seed=4):
    """
    The 100,000-record file: (bytes, expected issues [(line, kind)] in
    file order, a sample {phone: (first_name, notes)} of created members).
    """
    rnd = random.Random(seed)
    # The first 1,000 records are new members, so that every duplicate
    # has earlier rows to copy; the rest is shuffled.
    tail = [k for k, n in KINDS.items() if k != "new" for _ in range(n)]
    tail += ["new"] * (KINDS["new"] - 1000)
    rnd.shuffle(tail)
    kinds = ["new"] * 1000 + tail
    assert len(kinds) == RECORDS
    blank_at = set(rnd.sample(range(1, RECORDS), BLANK_LINES))
    out = [b"\xef\xbb\xbf", csv_record(HEADER)[0]]
    line = 2
    issues = []
    sample = {}
    pool_p, pool_e = [], []     # earlier new rows: (n, phone) / email
    count = {k: 0 for k in KINDS}
    nxt = 0                     # next fresh number
    for i, kind in enumerate(kinds):
        if i in blank_at:
            out.append(b"\r\n")
            line += 1
        k = count[kind]
        count[kind] += 1
        if kind == "new":
            n = nxt
            nxt += 1
            email = "user%d@example.org" % n if n % 10 < 7 else ""
            notes = ""
            if n % 20 == 0:
                notes = "line one\nline two, with a comma"
            elif n % 20 == 1:
                notes = 'He said "hi"'
            tags = ["", "volunteer;donor", "a|b", " x ; y "][n % 4]
            row = [written(n, n), email, FIRST[n % len(FIRST)],
                   LAST[n % len(LAST)], "%05d" % (n % 99999), tags, notes]
            pool_p.append(n)
            if email:
                pool_e.append(email)
            if n < 40:
                sample[e164(n)] = (FIRST[n % len(FIRST)], notes)
        elif kind in ("upd", "unch"):
            row = seed_row(kind, k)
            if kind == "upd":
                row = [row[0], "upd%d@example.org" % k, "New", "", "", "",
                       ""]
        elif kind == "opt":
            row = [opt_phone(k), "", "Opted", "", "", "", ""]
        elif kind == "conf":
            row = [written(520000 + k, k + 1), "confb%d@example.org" % k,
                   "C", "", "", "", ""]
        elif kind == "badp":
            row = [BAD_PHONES[k % len(BAD_PHONES)],
                   BAD_EMAILS[k % len(BAD_EMAILS)] if k % 2 else "",
                   "Bad", "", "", "", ""]
        elif kind == "warnp":
            row = [BAD_PHONES[k % len(BAD_PHONES)],
                   "warnp%d@example.org" % k, "W", "", "", "", ""]
        elif kind == "warne":
            row = [written(540000 + k, k), BAD_EMAILS[k % len(BAD_EMAILS)],
                   "W", "", "", "", ""]
        elif kind == "nocontact":
            row = ["", "", "Nobody", "Known", "12345", "", ""]
        elif kind == "badutf8":
            row = [written(550000 + k, k), "", "Caf", "", "", "",
                   b"caf\xe9 latin-1"]
        elif kind == "dupp":
            n = rnd.choice(pool_p)
            row = [written(n, n + 1 + k), "", "Dup", "", "", "", ""]
        elif kind == "dupe":
            row = [written(560000 + k, k), rnd.choice(pool_e).upper(),
                   "Dup", "", "", "", ""]
        elif kind == "dupx":
            n = rnd.choice(pool_p)
            row = [written(n, n), rnd.choice(pool_e), "Dup", "", "", "", ""]
        elif kind == "blank":
            row = ["", "", "", " ", "", "", ""]
        raw, breaks = csv_record(row)
        out.append(raw)
        issue = {"conf": "conflict", "badp": "rejected",
                 "warnp": "warning", "warne": "warning",
                 "nocontact": "rejected", "badutf8": "rejected",
                 "dupp": "duplicate", "dupe": "duplicate",
                 "dupx": "duplicate"}.get(kind)
        if issue:
            issues.append((line, issue))
        line += breaks
    return b"".join(out), issues, sample


EXPECTED = {
    "rows": RECORDS - KINDS["blank"],
    "created": KINDS["new"] + KINDS["warnp"] + KINDS["warne"],
    "updated": KINDS["upd"],
    "unchanged": KINDS["unch"],
    "opted_out": KINDS["opt"],
    "duplicates_in_file": KINDS["dupp"] + KINDS["dupe"] + KINDS["dupx"],
    "conflicts": KINDS["conf"],
    "rejected": KINDS["badp"] + KINDS["nocontact"] + KINDS["badutf8"],
    "warnings": KINDS["warnp"] + KINDS["warne"],
    "blank": KINDS["blank"],
}


def open_import(d, body=None):
    r = d.api("POST", "/api/v1/imports",
              body or {"list": LIST, "source": SOURCE})
    assert r.status == 201, r
    assert r.headers["Location"] == "/api/v1/imports/" + r.json["id"]
    return r.json["id"]


def stream(d, data, piece):
    """Sends data through an import session in pieces; the final report."""
    iid = open_import(d)
    off = 0
    while off < len(data):
        chunk = data[off:off + piece]
        r = d.api("POST", "/api/v1/imports/%s/data?offset=%d" % (iid, off),
                  raw=chunk, headers={"Content-Type": "text/csv"},
                  timeout=60)
        assert r.status == 200, r
        off += len(chunk)
        assert r.json["bytes"] == off
    r = d.api("POST", "/api/v1/imports/%s/finish" % iid, timeout=60)
    assert r.status == 200, r
    assert r.json["state"] == "finished"
    return r.json


def oneshot(d, data, list_=LIST, source=SOURCE, extra=""):
    from urllib.parse import quote
    return d.api("POST", "/api/v1/imports?list=%s&source=%s%s"
                 % (quote(list_), quote(source), extra), raw=data,
                 headers={"Content-Type": "text/csv"}, timeout=60)


def ctl(*args, timeout=60, stdin=None):
    return subprocess.run([str(OUTREACHCTL)] + [str(a) for a in args],
                          input=stdin, capture_output=True,
                          timeout=scaled(timeout))


def seed_opted_out(d, phones):
    """Members who opted out of SMS by keyword, written straight into the
    stopped daemon's store (its SQLite file, or its PostgreSQL database
    through psql)."""
    if d.conf("store", "backend") != "postgresql":
        c = sqlite3.connect(str(d.db_path))
        with c:
            for phone in phones:
                cur = c.execute("INSERT INTO members (phone, first_name, "
                                "created_at, updated_at) VALUES (?, 'Opt', "
                                "1, 1)", (phone,))
                c.execute("INSERT INTO sms_optout VALUES (?, 2, 'keyword')",
                          (cur.lastrowid,))
                c.execute("INSERT INTO consent_events (member_id, channel, "
                          "action, source, created_at) VALUES (?, 'sms', "
                          "'opt_out', 'keyword', 2)", (cur.lastrowid,))
        c.close()
        return
    bindir = subprocess.run([str(SRCDIR / "tests" / "pg.sh"), "bindir"],
                            capture_output=True, text=True,
                            check=True).stdout.strip()
    sql = ("WITH m AS (INSERT INTO members (phone, first_name, created_at, "
           "updated_at) SELECT p, 'Opt', 1, 1 FROM unnest('{%s}'::text[]) p "
           "RETURNING id), o AS (INSERT INTO sms_optout SELECT id, 2, "
           "'keyword' FROM m) INSERT INTO consent_events (member_id, "
           "channel, action, source, created_at) SELECT id, 'sms', "
           "'opt_out', 'keyword', 2 FROM m" % ",".join(phones))
    subprocess.run([bindir + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-c", sql, d.conf("store", "url")], check=True,
                   capture_output=True, timeout=scaled(60))


@pytest.mark.slow
def test_import_100k(make_daemon, tmp_path):
    d = make_daemon(CONF)
    r = oneshot(d, seed_csv())
    assert r.status == 200, r
    assert r.json["counts"]["created"] == 2400, r.json
    # Members who texted STOP before the import: no subscription, opted
    # out, written while the daemon is stopped.
    d.stop()
    seed_opted_out(d, [opt_phone(k) for k in range(KINDS["opt"])])
    d.start()
    data, issues, sample = big_csv()
    assert len(data) > 6_000_000
    events0 = d.scalar("SELECT count(*) FROM consent_events")
    members0 = d.scalar("SELECT count(*) FROM members")
    t0 = time.monotonic()
    rep = stream(d, data, 250_007)   # odd pieces: cut mid-record
    took = time.monotonic() - t0
    print("100,000-row import: %.1f s, %.0f rows/s; report %s"
          % (took, RECORDS / took, rep["counts"]))
    assert rep["counts"] == EXPECTED
    assert rep["bom"] is True
    assert rep["bytes"] == len(data)
    assert rep["issues_total"] == len(issues)
    assert rep["issues_omitted"] == len(issues) - 1000
    assert [(i["line"], i["kind"]) for i in rep["issues"]] == issues[:1000]
    assert [c["field"] for c in rep["columns"]] == \
        ["phone", "email", "first_name", "last_name", "zip", "tags",
         "custom"]
    members1 = d.scalar("SELECT count(*) FROM members")
    assert members1 == members0 + EXPECTED["created"]
    events1 = d.scalar("SELECT count(*) FROM consent_events")
    assert events1 > events0
    # Opted-out members: fields updated, opt-out intact, never subscribed.
    rows = d.query("SELECT m.first_name, o.source, "
                   "(SELECT count(*) FROM subscriptions s "
                   " WHERE s.member_id = m.id) AS subs "
                   "FROM members m JOIN sms_optout o ON o.member_id = m.id")
    assert len(rows) == KINDS["opt"]
    assert {(r["first_name"], r["source"], r["subs"]) for r in rows} == \
        {("Opted", "keyword", 0)}
    # Non-ASCII names, quoted commas and line breaks arrive intact.
    for phone, (first, notes) in sample.items():
        m = d.query("SELECT first_name, attributes FROM members "
                    "WHERE phone = ?", (phone,))
        assert len(m) == 1, phone
        assert m[0]["first_name"] == first
        attrs = json.loads(m[0]["attributes"])
        assert attrs == ({"Notes": notes} if notes else {}), phone
    # The consent source is on every import event.
    assert d.scalar("SELECT count(*) FROM consent_events WHERE source = "
                    "'import' AND (detail IS NULL OR detail <> ?)",
                    (SOURCE,)) == 0

    # The same file again, through the CLI: nothing changes.
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    # On PostgreSQL each row is a statement of its own: about 1,600 rows a
    # second on the CI machine (doc/postgresql.md), where SQLite makes
    # more than 10,000.
    pg = d.conf("store", "backend") == "postgresql"
    p = ctl("-u", d.url(), "-t", TOKEN, "-j", "import", path, "--list",
            LIST, "--source", SOURCE, timeout=600 if pg else 120)
    assert p.returncode == 0, p.stderr
    rep2 = json.loads(p.stdout)
    want = dict(EXPECTED, created=0, updated=0,
                unchanged=EXPECTED["created"] + EXPECTED["updated"] +
                EXPECTED["unchanged"])
    assert rep2["counts"] == want
    assert [(i["line"], i["kind"]) for i in rep2["issues"]] == issues[:1000]
    assert d.scalar("SELECT count(*) FROM consent_events") == events1
    assert d.scalar("SELECT count(*) FROM members") == members1
    assert d.scalar("SELECT count(*) FROM sms_optout") == KINDS["opt"]


@pytest.fixture
def od(make_daemon):
    return make_daemon(CONF)


def small(d, text, **kw):
    r = oneshot(d, text.encode() if isinstance(text, str) else text, **kw)
    return r


@pytest.mark.parametrize("text,message", [
    ("first_name,zip\nAnn,02139\n",
     "line 1: header: no phone or email column (the first line must name "
     "the columns, e.g. phone,email,first_name,last_name,zip,tags)"),
    ("phone,Mobile\n+14155550100,\n",
     "line 1: header: columns 1 ('phone') and 2 ('Mobile') both mean "
     "phone; rename or remove one"),
    ("phone,Shirt,shirt \n+14155550100,L,M\n",
     "line 1: header: columns 2 ('Shirt') and 3 ('shirt') both mean the "
     "same custom field; rename or remove one"),
    ("", "the file is empty: the first line must name the columns"),
    ("\n\n", "the file is empty: the first line must name the columns"),
    ("phone,note\n+14155550100,ok\n+14155550101,\"never closed\n"
     "+14155550102,x\n",
     "line 3: unterminated quoted field: the file ends inside the quote "
     "opened there (a missing closing '\"'?)"),
    ("ph\xe9ne,email\n",
     "line 1: header: field 1 is not valid UTF-8 (byte 0xe9 at offset 3); "
     "save the file as UTF-8"),
])
def test_import_header_errors(od, text, message):
    data = text.encode("latin-1") if "\xe9" in text else text.encode()
    r = oneshot(od, data)
    assert r.status == 422, r
    assert r.error_code() == "invalid_csv"
    assert r.error_message() == message


ROWS = [
    ("555-12,", "rejected",
     "phone '555-12' is too short to be a phone number; no email"),
    (",bob@", "rejected",
     "email 'bob@' is not an address: nothing after the '@'; no phone"),
    ("call me,a b@example.org", "rejected",
     "phone 'call me' has letters, which are not allowed in a phone "
     "number: write it with digits only; email 'a b@example.org' is not an "
     "address: a space or a character not allowed in an address before the "
     "'@'"),
    (",", None, None),                                 # blank
    (",,Ann", "rejected", "no phone and no email"),
    ("(123) 456-7890,w@example.org", "warning",
     "phone '(123) 456-7890' is not a valid number in US; imported by "
     "email only"),
    ("415 555 2671,x@nowhere", "warning",
     "email 'x@nowhere' is not an address: the domain has no dot "
     "(name@domain.example); imported by phone only"),
    ("+14155552671,", "duplicate", "phone +14155552671 already on line 8"),
    ("+14155552699,W@EXAMPLE.org", "duplicate",
     "email w@example.org already on line 7"),
    ("+14155552698,,a,b", "rejected",
     "4 fields but the header names 3; is a comma in a value not quoted?"),
    ("+14155552698,,,,", None, None),                  # extra empty cells
    ("+14155552697,,\"" + "x" * 257 + "\"", "rejected",
     "first_name: longer than 256 bytes"),
]


def test_import_row_errors(od):
    text = "phone,email,first_name\n" + "\n".join(r[0] for r in ROWS) + "\n"
    r = small(od, text)
    assert r.status == 200, r
    want = [{"line": i + 2, "kind": k, "reason": why}
            for i, (_, k, why) in enumerate(ROWS) if k is not None]
    for w in want:
        if w["kind"] == "duplicate":
            w["first_line"] = int(w["reason"].rsplit(" ", 1)[1])
    assert r.json["issues"] == want
    assert r.json["counts"] == {
        "rows": 11, "created": 3, "updated": 0, "unchanged": 0,
        "opted_out": 0, "duplicates_in_file": 2, "conflicts": 0,
        "rejected": 6, "warnings": 2, "blank": 1}


def test_import_request_errors(od):
    d = od
    for body, msg in [
            ({"source": SOURCE}, "list: required"),
            ({"list": "nope", "source": SOURCE}, "list: no list named"),
            ({"list": LIST}, "source: required"),
            ({"list": LIST, "source": "a\nb"}, "source: required"),
            ({"list": LIST, "source": SOURCE, "region": "XX"},
             "region: 'XX' is not a country code"),
            ({"list": LIST, "source": SOURCE, "region": 1},
             "region: must be a string")]:
        r = d.api("POST", "/api/v1/imports", body)
        assert r.status == 422, (body, r)
        assert r.error_message().startswith(msg), (body, r)
    r = d.api("POST", "/api/v1/imports", {"list": LIST}, token=None)
    assert r.status == 401
    r = d.api("GET", "/api/v1/imports/0123", token=None)
    assert r.status == 401
    r = d.api("GET", "/api/v1/imports/0123")
    assert r.status == 404 and r.error_message().startswith("no import '0123'")
    r = d.api("POST", "/api/v1/imports", raw=b"phone\n",
              headers={"Content-Type": "text/csv"})
    assert r.status == 422 and "?list=NAME&source=TEXT" in r.error_message()

    iid = open_import(d)
    base = "/api/v1/imports/" + iid
    r = d.api("POST", base + "/data", {"not": "csv"})
    assert r.status == 415, r
    r = d.api("POST", base + "/data?offset=0", raw=b"phone,em",
              headers={"Content-Type": "text/csv"})
    assert r.status == 200 and r.json["bytes"] == 8
    r = d.api("POST", base + "/data?offset=0", raw=b"ail\n",
              headers={"Content-Type": "text/csv"})
    assert r.status == 409 and r.error_code() == "bad_offset", r
    assert r.error_message() == ("offset: this import has received 8 bytes, "
                               "not 0; send the piece that starts at 8")
    r = d.api("POST", base + "/data?offset=8",
              raw=b"ail\r\n+14155550100,a@example.org\r\n+1415",
              headers={"Content-Type": "text/csv"})
    assert r.status == 200 and r.json["counts"]["created"] == 1, r
    r = d.api("POST", base + "/data", raw=b"5550101,\r\n",
              headers={"Content-Type": "text/csv"})
    assert r.status == 200 and r.json["counts"]["created"] == 2, r
    r = d.api("GET", "/api/v1/imports")
    assert [i["id"] for i in r.json["imports"]] == [iid]
    r = d.api("DELETE", base)
    assert r.status == 200 and r.json["state"] == "aborted"
    r = d.api("POST", base + "/finish")
    assert r.status == 409 and r.error_message() == \
        "import %s is aborted" % iid
    assert d.scalar("SELECT count(*) FROM members") == 2


def test_import_failed_session_refuses_more(od):
    iid = open_import(od)
    base = "/api/v1/imports/" + iid
    r = od.api("POST", base + "/data", raw=b"name\nx\n",
                   headers={"Content-Type": "text/csv"})
    assert r.status == 422 and r.error_code() == "invalid_csv"
    r = od.api("POST", base + "/data", raw=b"more\n",
                   headers={"Content-Type": "text/csv"})
    assert r.status == 409 and r.error_message().startswith(
        "import %s is failed: line 1: header: no phone" % iid)
    r = od.api("GET", base)
    assert r.json["state"] == "failed"


def test_import_region(od):
    r = small(od, "phone\n020 7946 0958\n07400 123456\n",
              extra="&region=GB")
    assert r.status == 200, r
    assert r.json["region"] == "GB"
    phones = {x[0] for x in od.query("SELECT phone FROM members")}
    assert phones == {"+442079460958", "+447400123456"}


def test_import_cli(od, tmp_path):
    text = "\ufeffphone,email,first name,tags\r\n"
    text += "".join("+1415555%04d,u%d@example.org,Ann,\"a, b\"\r\n"
                    % (2000 + i, i) for i in range(3000))
    text += "555-12,,Bad,\r\n+14155552000,,Dup,\r\n"
    f = tmp_path / "m.csv"
    f.write_text(text, encoding="utf-8")
    p = ctl("-u", od.url(), "-t", TOKEN, "import", f, "--list", LIST,
            "--source", SOURCE)
    assert p.returncode == 0, p.stderr
    out, err = p.stdout.decode(), p.stderr.decode()
    # Not a tty: one progress line per 10% at most, and a last one.
    assert err.splitlines()[-1].startswith(
        "outreachctl: import: 100%% (%d of %d bytes), 3002 rows, "
        % (len(text.encode()), len(text.encode())))
    assert "Import into list volunteers finished." in out
    assert "  created                              3000\n" in out
    assert "  rejected                                1\n" in out
    assert "  duplicates in the file                  1\n" in out
    assert "line 3002     rejected  phone '555-12' is too short" in out
    assert "line 3003     duplicate phone +14155552000 already on line 2" \
        in out
    assert "2 rows were not imported (see above)" in out
    p = ctl("-u", od.url(), "-t", TOKEN, "import", f, "--list", LIST,
            "--source", SOURCE, "-q")
    assert p.returncode == 0 and p.stderr == b""
    assert p.stdout.decode() == (
        "rows=3002 created=0 updated=0 unchanged=3000 opted_out=0 "
        "duplicates_in_file=1 conflicts=0 rejected=1 warnings=0\n")
    # stdin, and the daemon refusing: exit 1 with its message.
    p = ctl("-u", od.url(), "-t", TOKEN, "import", "-", "--list",
            "nope", "--source", SOURCE, stdin=b"phone\n")
    assert p.returncode == 1
    assert b"list: no list named 'nope'" in p.stderr
    p = ctl("-u", od.url(), "-t", TOKEN, "import", "-", "--list", LIST,
            "--source", SOURCE, "-q", stdin=b"name\nx\n")
    assert p.returncode == 1
    assert b"line 1: header: no phone or email column" in p.stderr
    p = ctl("import", f, "--list", LIST)
    assert p.returncode == 2 and b"--source TEXT is required" in p.stderr
    p = ctl("import", "--help")
    assert p.returncode == 0 and b"Exit status: 0 when the import" in \
        p.stdout
