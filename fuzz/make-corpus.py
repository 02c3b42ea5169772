#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora, fuzz/corpus/<target>/, from the
recorded fixtures in tests/fixtures/ (and etc/outreachd.conf), so every
seed is a real provider request or file the unit tests already use.

Run from the top of the source tree after changing fixtures; the output is
committed (small: a few hundred kilobytes at most). Webhook seeds use the
request format of fuzz/fuzz_util.h: "METHOD TARGET", header lines, an
empty line, the body. Signatures come from the fixtures' .sig files, the
Plivo V3 signer of tests/fixtures/plivo/make-v3-vectors.py (run again
here) and the Telnyx signatures listed in tests/unit/check_telnyx.c.
"""
import base64
import glob
import hashlib
import hmac
import os
import shutil
from urllib.parse import parse_qsl

FIX = "tests/fixtures"
OUT = "fuzz/corpus"
FORM = "application/x-www-form-urlencoded"


def read(path):
    with open(path, "rb") as f:
        return f.read()


def seed(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def request(method, target, headers, body=b""):
    head = "%s %s\n" % (method, target)
    head += "".join("%s: %s\n" % h for h in headers)
    return head.encode() + b"\n" + body


def twilio():
    for form in sorted(glob.glob(FIX + "/twilio/*.form")):
        name = os.path.basename(form)[:-5]
        kind = "inbound" if name.startswith("inbound") else "status"
        sig = read(form[:-5] + ".sig").decode().strip()
        seed("fuzz_webhook_twilio", name, request(
            "POST", "/webhooks/tw1/" + kind,
            [("Content-Type", FORM), ("X-Twilio-Signature", sig)],
            read(form).rstrip(b"\n")))


def vonage():
    for path in sorted(glob.glob(FIX + "/vonage/*")):
        name = os.path.basename(path)
        kind = "status" if name.startswith("dlr") else "inbound"
        if name.startswith("send-") or name.endswith(".py"):
            continue
        body = read(path)
        if name.endswith(".json"):
            seed("fuzz_webhook_vonage", name, request(
                "POST", "/webhooks/v3/" + kind,
                [("Content-Type", "application/json")], body))
        else:
            form = body.strip()
            seed("fuzz_webhook_vonage", name, request(
                "POST", "/webhooks/v1/" + kind, [("Content-Type", FORM)],
                form))
            seed("fuzz_webhook_vonage", name + ".get", request(
                "GET", "/webhooks/v1/%s?%s" % (kind, form.decode()), []))


def plivo_v3(method, url, params, nonce):
    """The V3 signature (make-v3-vectors.py's algorithm)."""
    ns = {}
    src = read(FIX + "/plivo/make-v3-vectors.py").decode()
    exec(src.split("\nfor method, uri")[0], ns)
    s = ns["signed_string"](method, url, params)
    mac = hmac.new(b"plivo-test-auth-token", ("%s.%s" % (s, nonce)).encode(),
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def plivo():
    for path in sorted(glob.glob(FIX + "/plivo/*.txt")):
        name = os.path.basename(path)
        kind = "inbound" if name.startswith("inbound") else "status"
        target = "/webhooks/p1/" + kind
        body = read(path).strip()
        params = {}
        for k, v in parse_qsl(body.decode(), keep_blank_values=True):
            params.setdefault(k, []).append(v)
        nonce = "12345678901234567890"
        sig = plivo_v3("POST", "https://gw.example.org" + target, params,
                       nonce)
        seed("fuzz_webhook_plivo", name, request(
            "POST", target, [("Content-Type", FORM),
                             ("X-Plivo-Signature-V3", sig),
                             ("X-Plivo-Signature-V3-Nonce", nonce)], body))


def telnyx():
    signed = {}
    src = read("tests/unit/check_telnyx.c").decode()
    block = src.split("tt_signed[][2] = {")[1].split("};")[0]
    for entry in block.split("{")[1:]:
        parts = [p.split('"')[1] for p in entry.split("\n") if '"' in p]
        signed[parts[0]] = "".join(parts[1:])
    for path in sorted(glob.glob(FIX + "/telnyx/*.json")):
        name = os.path.basename(path)
        if name.startswith("send-"):
            continue
        kind = "inbound" if name.startswith("inbound") else "status"
        hdr = [("Content-Type", "application/json")]
        if name in signed:
            hdr += [("telnyx-signature-ed25519", signed[name]),
                    ("telnyx-timestamp", "1795749274")]
        seed("fuzz_webhook_telnyx", name, request(
            "POST", "/webhooks/t1/" + kind, hdr, read(path)))


def kannel():
    for path in sorted(glob.glob(FIX + "/kannel/*.query")):
        name = os.path.basename(path)
        kind = "status" if name.startswith("dlr") else "inbound"
        query = read(path).decode().strip()
        body_file = path[:-6] + ".body"
        if os.path.exists(body_file):
            seed("fuzz_webhook_kannel", name, request(
                "POST", "/webhooks/k1/%s?%s" % (kind, query),
                [("Content-Type", "text/plain; charset=utf-8")],
                read(body_file)))
        else:
            seed("fuzz_webhook_kannel", name, request(
                "GET", "/webhooks/k1/%s?%s" % (kind, query), []))


def config():
    for path in sorted(glob.glob(FIX + "/config/*.conf")):
        seed("fuzz_config", os.path.basename(path), read(path))
    seed("fuzz_config", "outreachd.conf", read("etc/outreachd.conf"))


def csv():
    # Byte 0: limits (even = defaults); bytes 1-4: cut points.
    texts = {
        "members.csv": b"phone,first_name,last_name,zip,email\r\n"
                       b"+14155550100,Ana,Lopez,94110,ana@example.org\r\n"
                       b"\"+1 415 555 0101\",\"O'Brien, Pat\",\"say \"\"hi\"\"\","
                       b",\r\n",
        "bom-cr.csv": b"\xef\xbb\xbfphone;name\rx,\"multi\nline\"\r\r\n",
        "broken.csv": b"a,\"unterminated\nb,c\n\xff\xfe,\"x\"y\n",
    }
    for i, (name, text) in enumerate(sorted(texts.items())):
        seed("fuzz_csv", name, bytes([i * 2, 40, 90, 160, 250]) + text)
    seed("fuzz_csv", "small-limits.csv",
         bytes([0x21, 10, 20, 30, 200]) + texts["members.csv"])


def api_message():
    bodies = {
        "sms.json": b'{"to": "+14155550100", "body": "Hello \\u00e9 \\ud83d'
                    b'\\udc4d", "sender": "alerts", "priority": 3}',
        "sms-times.json": b'{"channel": "sms", "to": "+14155550100", '
                          b'"body": "x", "not_before": '
                          b'"2026-11-27T10:00:00.5+02:00", "expires_at": '
                          b'4102444800, "idempotency_key": "k-1"}',
        "email.json": b'{"channel": "email", "to": "ana@example.org", '
                      b'"subject": "Hi", "body": "Text", "html": "<p>x</p>",'
                      b' "from": "Team <team@example.org>"}',
        "bad.json": b'{"to": 5, "body": "x", "bogus": true}',
    }
    for name, body in bodies.items():
        seed("fuzz_api_message", name, body)


def smstext():
    texts = {
        "ascii.txt": b"Hello, world! Reply STOP to opt out.",
        "gsm-ext.txt": "Price: 5\u20ac [x] {y} ~ ^ | \\".encode(),
        "ucs2.txt": "Caf\u00e9 \U0001F44D \u201csmart\u201d \u2014 "
                    "\uff21\uff42\u2026".encode(),
        "long.txt": ("a" * 152 + "\u20ac" + "b" * 10).encode(),
        "bad.txt": b"ok \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80",
    }
    for name, text in texts.items():
        seed("fuzz_smstext", name, text)


def mime():
    fields = {
        "plain": (0, [b"Hello", b"Line one\nLine two.\n.dot\r\nend ",
                      b"<p>x</p>", b"Team <team@example.org>",
                      b"ana@example.org"]),
        "utf8-html": (0x0f, ["Caf\u00e9 \U0001F44D news for you all, "
                             "and a longer subject line".encode(),
                             ("x" * 100 + " =\t\n").encode(),
                             b"<html><body><p>Hi</p></BODY></html>",
                             "\"Z\u00fcrich Team\" <team@example.org>"
                             .encode(), b"ana@example.org"]),
        "long-ascii": (2, [b"word " * 60, b"y" * 300, b"", b"a@b.org",
                           b"c@d.org"]),
    }
    for name, (flags, f) in fields.items():
        seed("fuzz_mime", name, bytes([flags]) + b"\0".join(f))


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    for fn in (twilio, vonage, plivo, telnyx, kannel, config, csv,
               api_message, smstext, mime):
        fn()
