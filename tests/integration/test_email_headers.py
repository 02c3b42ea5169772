"""
test_email_headers.py - Subject and From headers as a reader gets them
back: 200 random subjects and display names go through the API and the
file email adapter, and Python's email package (policy=default) parses
each .eml to exactly what was sent. Also: every header line stays within
78 characters, and the API caps subjects at 998 bytes with a 422.

Display names are phrases (RFC 5322 §3.2.2): a run of white space in one
reads as one space, so the expected name is the sent one with its white
space runs made single spaces and none at either end.

Python before the fix of CPython issue gh-128110 keeps the white space
between two adjacent encoded-words of a display name, which RFC 2047 §6.2
says a reader ignores. Where this Python has that bug and a name needed
two adjacent encoded-words, the name is checked with an RFC 2047 reading
written here (rfc2047_phrase) instead; everything else is checked with
Python's own parser.
"""

import base64
import email
import email.policy
import random
import re

MSGS = "/api/v1/messages"
SENDER = "sender@example.org"
SUBJECT_MAX = 998

# Pieces the random texts are made of: ASCII words and specials, white
# space, text that looks like an encoded-word, 2-, 3- and 4-byte UTF-8,
# and words too long for one line.
PIECES = ["a", "Rally", "on", "Friday", " ", " ", "  ", "\t", ",", ".", '"',
          "\\", "(", ")", "<", ">", "@", ";", ":", "=?", "?=", "=?UTF-8?B?",
          "_", "-", "'", "#", "{", "}", "!", "?", "=", "é", "ü", "ß", "ё",
          "中", "文", "😀", "✊", "x" * 30, "y" * 90]


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def python_joins_encoded_words():
    """False if this Python has CPython gh-128110 (see the top)."""
    m = parse(b"From: =?UTF-8?B?YQ==?= =?UTF-8?B?Yg==?= <x@example.org>"
              b"\r\n\r\n")
    return m["From"].addresses[0].display_name == "ab"


EW = re.compile(r"=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$")


def rfc2047_phrase(raw_from):
    """
    The display name of the raw From header the way RFC 5322 and RFC 2047
    read it: unfolded; a quoted-string unescaped; otherwise words joined
    by one space, except that nothing separates two encoded-words.
    """
    v = raw_from.replace("\r\n", "").split(":", 1)[1].strip()
    v = v[:v.rindex("<")].strip()
    if v.startswith('"'):
        return re.sub(r"\\(.)", r"\1", v[1:-1])
    out, prev = "", None
    for tok in v.split():
        m = EW.match(tok)
        piece = base64.b64decode(m.group(1)).decode() if m else tok
        if prev is not None and not (prev and m):
            out += " "
        out += piece
        prev = m is not None
    return out


def phrase(name):
    return re.sub(r"[ \t]+", " ", name).strip(" ")


def random_text(rnd, max_bytes):
    s = ""
    while True:
        p = rnd.choice(PIECES)
        if len((s + p).encode()) > max_bytes:
            return s
        s += p


def quoted(name):
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


def cases(n=200, seed=9):
    """n (subject, display name) pairs: short, long ASCII, long
    non-ASCII and mixed, with the limits' edges."""
    rnd = random.Random(seed)
    out = [("x" * SUBJECT_MAX, "Org Team"),
           ("é" * (SUBJECT_MAX // 2), "Müller, Hans"),
           (" leading and trailing ", '  "quoted"  \\ back  ')]
    while len(out) < n:
        kind = rnd.choice(["short", "ascii", "long"])
        if kind == "ascii":
            subj = " ".join(rnd.choice(["rally", "Friday,", "(plaza)",
                                        "x" * 40, "--"])
                            for _ in range(rnd.randint(20, 120)))
            subj = subj.encode()[:SUBJECT_MAX].decode().strip() or "x"
        else:
            subj = random_text(rnd, 40 if kind == "short" else SUBJECT_MAX)
        if subj.strip("\t ") == "":
            continue
        name = random_text(rnd, rnd.choice([8, 30, 120]))
        if phrase(name) == "" or \
                len((quoted(name) + " <%s>" % SENDER).encode()) >= 256:
            continue
        out.append((subj, name))
    return out


def header_lines(raw):
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def raw_header(raw, name):
    """The named header of raw, folded lines included, as text."""
    lines = header_lines(raw)
    for i, line in enumerate(lines):
        if line.lower().startswith(name.lower().encode() + b":"):
            j = i + 1
            while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
                j += 1
            return b"\r\n".join(lines[i:j]).decode()
    raise AssertionError("no %s header" % name)


def test_random_subjects_and_names_round_trip(daemon):
    sent = []
    for subj, name in cases():
        r = daemon.api("POST", MSGS, {
            "channel": "email", "to": "member@example.org",
            "subject": subj, "body": "hello\n",
            "from": "%s <%s>" % (quoted(name), SENDER)})
        assert r.status == 202, (r, subj, name)
        sent.append((r.json["id"], subj, name))
    daemon.wait_idle(timeout=60)
    joins = python_joins_encoded_words()
    for mid, subj, name in sent:
        assert daemon.message(mid)["status"] == "sent", mid
        raw = (daemon.mail_dir / ("%d.eml" % mid)).read_bytes()
        for line in header_lines(raw):
            assert len(line) <= 78, (len(line), line[:100])
        msg = parse(raw)
        assert str(msg["Subject"]) == subj, (subj, raw_header(raw, "Subject"))
        assert not msg["Subject"].defects, msg["Subject"].defects
        frm = msg["From"]
        assert not frm.defects, (frm.defects, raw_header(raw, "From"))
        assert len(frm.addresses) == 1, raw_header(raw, "From")
        assert frm.addresses[0].addr_spec == SENDER
        raw_from = raw_header(raw, "From")
        adjacent = re.search(r"\?=\s+=\?", raw_from) is not None
        got = frm.addresses[0].display_name if joins or not adjacent \
            else rfc2047_phrase(raw_from)
        assert got == phrase(name), (name, raw_from)


def test_subject_cap_is_422(daemon):
    base = {"channel": "email", "to": "member@example.org", "body": "hi"}
    r = daemon.api("POST", MSGS, dict(base, subject="é" * 499))
    assert r.status == 202, r  # 998 bytes: the cap counts bytes
    r = daemon.api("POST", MSGS, dict(base, subject="x" * (SUBJECT_MAX + 1)))
    assert r.status == 422, r
    assert r.error_code() == "invalid_request"
    assert r.error_message() == "subject: at most 998 bytes (999 given)"
    r = daemon.api("POST", MSGS, dict(base, subject="x" * SUBJECT_MAX))
    assert r.status == 202, r
    r = daemon.api("POST", MSGS, dict(base, subject="bell \x07 here"))
    assert r.status == 422, r
    assert r.error_message().startswith("subject: must not hold control "
                                        "characters")
    daemon.wait_idle()
