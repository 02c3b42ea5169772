"""
test_sms_vonage.py - the Vonage (SMS API) adapter end to end: the real
outreachd against tests/fakes/fakeprov, which answers POST /sms/json as
Vonage does (200 with messages[], errors per element) and posts signed
webhooks (Vonage's signed parameters: timestamp, nonce and sig, here
md5hash with the signature secret). The fake's signer reproduces the
vectors of Vonage's own SDK (vonage-php-sdk-core SignatureTest), so what
the daemon accepts here Vonage's scheme accepts.

Covered: the outbound form exactly (credentials in the body, numbers as
digits without '+', type=unicode for non-GSM text, callback URL, the
encoding of emoji, '&', '=', '+' and newlines); inbound stored, bad,
missing or stale signatures refused; delivery receipts forward only;
500, timeout, dropped connection and Vonage's throttle status retried;
429 + Retry-After; permanent statuses failed without retry.
"""

import pytest

from fakeprov import (CREDENTIALS, MEMBER, OUR_NUMBER, check_sender_refused,  # noqa: F401
                      check_auto_callbacks, check_bad_signature,
                      check_inbound, check_permanent, check_retries,
                      check_retry_after, check_status_forward_only, fakeprov,
                      form_pairs, gaps, header, sms_daemon)

P = "vonage"
CR = CREDENTIALS[P]
FORM = "application/x-www-form-urlencoded"
# The parameters of POST /sms/json (Nexmo/api-specification sms.yml).
VONAGE_FIELDS = {
    "api_key", "api_secret", "sig", "timestamp", "from", "to", "text",
    "type", "ttl", "status-report-req", "callback", "message-class", "body",
    "udh", "protocol-id", "client-ref", "account-ref", "entity-id",
    "content-id", "title", "url", "validity", "vcard", "vcal"}
BODIES = {
    "plain text": "text",
    "caf\u00e9 \U0001F600 \u00a1ol\u00e9! \u4f60\u597d": "unicode",
    "a&b=c+d %26 %2B\nsecond line\n?x=1#frag": "text",
}


@pytest.mark.parametrize("method,want,secret,params", [
    # an inbound webhook Vonage signed, with '&' and '=' in the text
    ("md5hash", "e06d9763e3fd0b9c31beb5fc2fcb011c",
     "my_secret_key_for_testing",
     {"keyword": "TEST", "message-timestamp": "2017-04-04 22:57:47",
      "messageId": "0B00000042AC53BD", "msisdn": "14843472194",
      "nonce": "929d6744-bd28-42c8-b6cf-31d5b4f43732",
      "text": "Test with & and =", "timestamp": "1491346667",
      "to": "12192259404", "type": "text"}),
    ("sha256",
     "9FEC5EF6D0F2B3D2BB7558B6E4042569823CAB9EA0DD30503472B7B304601975",
     "71efab63122f1d179f51c46bac838fb5",
     {"api_key": "fake_api_key", "to": "14155550100", "from": "AcmeInc",
      "text": "Test From Nexmo", "type": "text", "timestamp": "1540924779"}),
])
def test_fake_signs_vonages_published_vectors(fakeprov, method, want, secret,
                                              params):
    r = fakeprov.sign(P, url="http://x/", params=params, nonce=False,
                      signature_secret=secret, signature_method=method)
    assert r["params"]["sig"] == want


def test_outbound_request_is_exactly_vonages(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P)
    ids = {d.send_sms(MEMBER, b): b for b in BODIES}
    for mid in ids:
        d.wait_status(mid, "sent")
    reqs = fakeprov.requests(P)
    assert len(reqs) == len(BODIES), reqs
    by_text = {}
    for r in reqs:
        assert r["method"] == "POST"
        assert r["path"] == "/sms/json"
        assert r["query"] is None, "no credentials in the URL"
        assert header(r, "Authorization") is None
        ctype = header(r, "Content-Type")
        assert ctype.split(";")[0].strip().lower() == FORM, ctype
        pairs = form_pairs(r["body"])
        f = dict(pairs)
        assert len(f) == len(pairs), "a repeated field: %r" % pairs
        assert set(f) <= VONAGE_FIELDS, set(f) - VONAGE_FIELDS
        assert f["api_key"] == CR["api_key"]
        assert f["api_secret"] == CR["api_secret"]
        assert "sig" not in f, "api_secret and sig together is error 32"
        # E.164 without '+' (vonage-python-sdk sms requests.py)
        assert f["to"] == MEMBER[1:]
        assert f["from"] == OUR_NUMBER[1:]
        assert f["callback"] == d.url() + "/webhooks/sx/status"
        assert len(f.get("client-ref", "")) <= 100
        by_text[f["text"]] = (r, f)
    assert set(by_text) == set(BODIES)
    for mid, text in ids.items():
        r, f = by_text[text]
        assert f.get("type", "text") == BODIES[text], (text, f)
        assert d.message(mid)["provider_message_id"] == r["id"]


def test_wrong_credentials_pause_the_sender(make_daemon, fakeprov):
    """Vonage says 200 with status 4 (Bad Credentials): the sender is
    refused, not the message: kept, the sender pauses, a warning."""
    d = sms_daemon(make_daemon, fakeprov, P)
    fakeprov.behave(P, code=4)
    check_sender_refused(d, fakeprov, P, (4,))


@pytest.mark.parametrize("code", [7, 15])
def test_permanent_status_fails_without_retry(make_daemon, fakeprov, code):
    """7 number barred, 15 illegal sender: final, whatever the HTTP 200."""
    check_permanent(make_daemon, fakeprov, P, code, code=code)


def test_throttled_status_is_retried(make_daemon, fakeprov):
    """Status 1 (throughput exceeded) arrives in a 200; it is transient."""
    d = sms_daemon(make_daemon, fakeprov, P)
    fakeprov.behave(P, code=1)
    mid = d.send_sms(MEMBER, "throttled first")
    d.wait_status(mid, "sent", timeout=15)
    reqs = fakeprov.requests(P)
    assert [r["outcome"] for r in reqs] == ["scripted", "accepted"]
    assert gaps(reqs)[0] >= 0.09


def test_inbound_signed_is_stored(make_daemon, fakeprov):
    d, r = check_inbound(make_daemon, fakeprov, P, id_="0B00000042AC53BD")
    # Vonage only wants a 2xx (anything else is resent for 24 h)
    assert r["body"] == "", r


@pytest.mark.parametrize("signature", ["invalid", "missing", "stale"])
def test_inbound_bad_signature_is_refused(make_daemon, fakeprov, signature):
    check_bad_signature(make_daemon, fakeprov, P, signature,
                        id="0B00000042AC53BE")


def test_delivery_receipts_only_move_forward(make_daemon, fakeprov):
    # "accepted" is Vonage's word for handed to the carrier
    check_status_forward_only(make_daemon, fakeprov, P, late="accepted")


def test_automatic_receipts_reach_delivered(make_daemon, fakeprov):
    d, cbs = check_auto_callbacks(make_daemon, fakeprov, P, first="accepted")
    assert {c["sent"]["url"] for c in cbs} == \
        {d.url() + "/webhooks/sx/status"}


def test_500_timeout_and_drop_are_retried_with_backoff(make_daemon,
                                                       fakeprov):
    check_retries(make_daemon, fakeprov, P)


def test_429_retry_after_is_honoured(make_daemon, fakeprov):
    check_retry_after(make_daemon, fakeprov, P)
