"""
test_sms_plivo.py - the Plivo Message API adapter end to end: the real
outreachd against tests/fakes/fakeprov, which answers POST
/v1/Account/{auth_id}/Message/ as Plivo does (Basic auth, JSON, 202 with a
message_uuid array) and posts form webhooks signed with
X-Plivo-Signature-V2 and -V3 (HMAC-SHA256 with the auth token and a
nonce). The fake's V2 reproduces the vector in plivo-python's tests; its
V3 is checked against a transcription of plivo-python's
utils/signature_v3.py below.

Covered: the outbound request exactly (method, path, Basic auth, JSON
body with src/dst as digits, UTF-8, emoji, '&', '=', '+' and newlines);
inbound stored, bad or missing signatures refused; status callbacks
forward only, using Plivo's Sequence; 500, timeout, dropped connection
retried; 429 + Retry-After; 4xx failed without retry.
"""

import base64
import hashlib
import hmac
import json
import re
from urllib.parse import parse_qs, urlparse, urlunparse

import pytest

from fakeprov import (CREDENTIALS, MEMBER, OUR_NUMBER, check_sender_refused, basic_auth,  # noqa
                      check_auto_callbacks, check_bad_signature,
                      check_inbound, check_permanent, check_retries,
                      check_retry_after, check_status_forward_only, fakeprov,
                      header, sms_daemon)

P = "plivo"
CR = CREDENTIALS[P]
PATH = "/v1/Account/%s/Message/" % CR["auth_id"]
# The body parameters of Send a Message (plivo-python messages.py).
PLIVO_FIELDS = {
    "src", "dst", "text", "type", "url", "method", "log", "trackable",
    "powerpack_uuid", "media_urls", "media_ids", "message_expiry",
    "dlt_entity_id", "dlt_template_id", "dlt_template_category"}
BODIES = [
    "plain text",
    "caf\u00e9 \U0001F600 \u00a1ol\u00e9! \u4f60\u597d",
    "a&b=c+d %26 %2B\nsecond line\n?x=1#frag \"quoted\" back\\slash",
]


def plivo_v3(token, uri, params, nonce):
    """X-Plivo-Signature-V3 for a POST, as plivo-python computes it
    (construct_post_url + get_signature_v3), written out here."""
    u = urlparse(uri)
    base = urlunparse((u.scheme, u.netloc, u.path, "", "", ""))
    query = parse_qs(u.query, keep_blank_values=True)
    qs = "&".join("&".join("%s=%s" % (k, v) for v in sorted(query[k]))
                  for k in sorted(query))
    if params:
        base += "?" + qs + ("." if qs else "")
    elif qs:
        base += "?" + qs
    base += "".join("%s%s" % (k, params[k]) for k in sorted(params))
    mac = hmac.new(token.encode(), ("%s.%s" % (base, nonce)).encode(),
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def test_fake_signs_plivos_published_v2_vector(fakeprov):
    """plivo-python tests/resources/test_signature.py."""
    r = fakeprov.sign(P, url="https://answer.url", nonce="12345",
                      auth_token="my_auth_token")
    assert r["headers"]["X-Plivo-Signature-V2"] == \
        "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc="


@pytest.mark.parametrize("url", [
    "https://example.org/webhooks/p/status",
    "https://example.org:8443/hooks?b=2&a=1&a=0",
])
def test_fake_v3_matches_plivo_python(fakeprov, url):
    params = {"MessageUUID": "abc", "Status": "delivered", "Text": "a&b=c +"}
    r = fakeprov.sign(P, url=url, params=params, nonce="9876543210",
                      auth_token="tok")
    assert r["headers"]["X-Plivo-Signature-V3"] == \
        plivo_v3("tok", url, params, "9876543210")


def test_outbound_request_is_exactly_plivos(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P)
    ids = {d.send_sms(MEMBER, b): b for b in BODIES}
    for mid in ids:
        d.wait_status(mid, "sent")
    reqs = fakeprov.requests(P)
    assert len(reqs) == len(BODIES), reqs
    by_text = {}
    for r in reqs:
        assert r["method"] == "POST"
        assert r["path"] == PATH and r["query"] is None
        assert header(r, "Authorization") == \
            basic_auth(CR["auth_id"], CR["auth_token"])
        ctype = header(r, "Content-Type")
        assert ctype.split(";")[0].strip().lower() == "application/json"
        body = json.loads(r["body"])    # valid JSON, valid UTF-8
        assert isinstance(body, dict)
        assert set(body) <= PLIVO_FIELDS, set(body) - PLIVO_FIELDS
        # digits with the country code; '<' would add recipients
        assert body["dst"] == MEMBER[1:]
        assert body["src"].lstrip("+") == OUR_NUMBER[1:]
        assert body["url"] == d.url() + "/webhooks/sx/status"
        assert body.get("method", "POST") == "POST"
        assert body.get("type", "sms") == "sms"
        assert r["status"] == 202
        by_text[body["text"]] = r
    assert set(by_text) == set(BODIES)
    for mid, text in ids.items():
        assert d.message(mid)["provider_message_id"] == by_text[text]["id"]


def test_wrong_credentials_pause_the_sender(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P,
                   sender_keys={"auth_token": "not-the-token"})
    check_sender_refused(d, fakeprov, P, (401,))


def test_4xx_fails_without_retry(make_daemon, fakeprov):
    check_permanent(make_daemon, fakeprov, P, 400, status=400,
                    message="invalid dst number")


def test_inbound_signed_is_stored(make_daemon, fakeprov):
    d, r = check_inbound(make_daemon, fakeprov, P,
                         id_="6f4a2c1e-0000-4000-8000-00000000a001")
    assert r["sent"]["headers"]["X-Plivo-Signature-V3"]
    # Plivo runs the answer as Message XML: an empty <Response> sends
    # nothing (plivo.com/docs/messaging/xml/request/messages)
    if r["body"].strip():
        assert r["content_type"].split(";")[0] in ("text/xml",
                                                   "application/xml"), r
        assert re.fullmatch(r"\s*(<\?xml[^>]*\?>)?\s*(<Response/>|"
                            r"<Response>\s*</Response>)\s*", r["body"]), r


@pytest.mark.parametrize("signature", ["invalid", "missing"])
def test_inbound_bad_signature_is_refused(make_daemon, fakeprov, signature):
    check_bad_signature(make_daemon, fakeprov, P, signature,
                        id="6f4a2c1e-0000-4000-8000-00000000a002")


def test_v3_of_other_parameters_is_refused(make_daemon, fakeprov):
    """A valid V3 signature, but of other parameters (V3 covers them)."""
    d = sms_daemon(make_daemon, fakeprov, P)
    good = fakeprov.sign(P, url=d.url() + "/webhooks/sx/inbound",
                         params={"Text": "original", "From": MEMBER[1:]})
    h = good["headers"]
    d.expect_log(r"webhook_forbidden")
    r = fakeprov.callback(P, kind="inbound", text="forged",
                          **{"from": MEMBER, "to": OUR_NUMBER,
                             "signature": "missing",
                             "headers": {k: h[k] for k in h
                                         if k.startswith("X-Plivo")}})
    assert r["status"] == 403, r


def test_status_callbacks_only_move_forward(make_daemon, fakeprov):
    check_status_forward_only(make_daemon, fakeprov, P, seq=True)


def test_automatic_callbacks_reach_delivered(make_daemon, fakeprov):
    d, cbs = check_auto_callbacks(make_daemon, fakeprov, P)
    assert {c["sent"]["url"] for c in cbs} == \
        {d.url() + "/webhooks/sx/status"}


def test_500_timeout_and_drop_are_retried_with_backoff(make_daemon,
                                                       fakeprov):
    check_retries(make_daemon, fakeprov, P)


def test_429_retry_after_is_honoured(make_daemon, fakeprov):
    check_retry_after(make_daemon, fakeprov, P)
