"""
test_sms_telnyx.py - the Telnyx Messaging v2 adapter end to end: the real
outreachd against tests/fakes/fakeprov, which answers POST /v2/messages as
Telnyx does (Bearer API key, JSON, 200 {data: {id, ...}}; errors as
{errors: [{code, title, detail}]}) and posts JSON webhooks signed as
Telnyx signs them: Ed25519 over "timestamp|raw body", in the
telnyx-signature-ed25519 and telnyx-timestamp headers. The fake holds a
fixed test private key; the daemon is configured with the public key the
fake derives from it, as an operator copies it from the portal.

Covered: the outbound request exactly (Bearer auth, JSON with +E.164
numbers, UTF-8, emoji, '&', '=', '+' and newlines); inbound stored; an
invalid, missing, stale (> 5 min) or other-body signature refused; status
events forward only (a late message.sent after message.finalized);
500, timeout, dropped connection retried; 429 + Retry-After; 40310
failed without retry; 40300 (STOP) failed and the member opted out.
"""

import json

import pytest

from fakeprov import (CREDENTIALS, MEMBER, OUR_NUMBER, check_sender_refused,  # noqa: F401
                      check_auto_callbacks, check_bad_signature,
                      check_carrier_optout, check_inbound, check_permanent,
                      check_retries, check_retry_after,
                      check_status_forward_only, fakeprov, header,
                      inbound_rows, sms_daemon)

P = "telnyx"
CR = CREDENTIALS[P]
# The body of POST /v2/messages (developers.telnyx.com/api/messaging/
# send-message).
TELNYX_FIELDS = {
    "from", "to", "text", "subject", "media_urls", "webhook_url",
    "webhook_failover_url", "use_profile_webhooks", "type",
    "messaging_profile_id", "auto_detect", "send_at", "encoding"}
BODIES = [
    "plain text",
    "caf\u00e9 \U0001F600 \u00a1ol\u00e9! \u4f60\u597d",
    "a&b=c+d %26 %2B\nsecond line\n?x=1#frag \"quoted\" back\\slash",
]


def test_outbound_request_is_exactly_telnyxs(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P)
    ids = {d.send_sms(MEMBER, b): b for b in BODIES}
    for mid in ids:
        d.wait_status(mid, "sent")
    reqs = fakeprov.requests(P)
    assert len(reqs) == len(BODIES), reqs
    by_text = {}
    for r in reqs:
        assert r["method"] == "POST"
        assert r["path"] == "/v2/messages" and r["query"] is None
        assert header(r, "Authorization") == "Bearer " + CR["api_key"]
        ctype = header(r, "Content-Type")
        assert ctype.split(";")[0].strip().lower() == "application/json"
        body = json.loads(r["body"])
        assert isinstance(body, dict)
        assert set(body) <= TELNYX_FIELDS, set(body) - TELNYX_FIELDS
        # Telnyx requires the '+'
        assert body["to"] == MEMBER
        assert body["from"] == OUR_NUMBER
        assert body["webhook_url"] == d.url() + "/webhooks/sx/status"
        assert r["status"] == 200
        by_text[body["text"]] = r
    assert set(by_text) == set(BODIES)
    for mid, text in ids.items():
        assert d.message(mid)["provider_message_id"] == by_text[text]["id"]


def test_wrong_api_key_pauses_the_sender(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P,
                   sender_keys={"api_key": "KEY-not-this-one"})
    check_sender_refused(d, fakeprov, P, (401, 10009))


def test_invalid_to_fails_without_retry(make_daemon, fakeprov):
    check_permanent(make_daemon, fakeprov, P, 40310, status=400, code=40310)


def test_40300_fails_and_opts_the_member_out(make_daemon, fakeprov):
    """Telnyx answers 409 with code 40300 when the recipient texted STOP
    (developers.telnyx.com/api/errors/40300)."""
    check_carrier_optout(make_daemon, fakeprov, P, 40300, status=409,
                         code=40300)


def test_inbound_signed_is_stored(make_daemon, fakeprov):
    d, r = check_inbound(make_daemon, fakeprov, P,
                         id_="b301ed3f-1490-491f-995f-6e64e69674d4")
    assert r["sent"]["headers"]["telnyx-signature-ed25519"]
    assert json.loads(r["sent"]["body"])["data"]["event_type"] == \
        "message.received"
    assert r["body"] == "", r   # Telnyx wants a 2xx within 2 s, no body


@pytest.mark.parametrize("signature", ["invalid", "missing", "stale"])
def test_inbound_bad_signature_is_refused(make_daemon, fakeprov, signature):
    """'stale' is correctly signed, but 600 s old (Telnyx: refuse > 300 s)."""
    check_bad_signature(make_daemon, fakeprov, P, signature,
                        id="b301ed3f-1490-491f-995f-6e64e69674d5")


def test_signature_of_other_bytes_is_refused(make_daemon, fakeprov):
    """A valid signature and timestamp, but of a different body: the
    signature covers the raw bytes."""
    d = sms_daemon(make_daemon, fakeprov, P)
    good = fakeprov.sign(P, url=d.url() + "/webhooks/sx/inbound",
                         raw_body='{"data":{"event_type":"message.received"}}')
    d.expect_log(r"webhook_forbidden")
    r = fakeprov.callback(P, kind="inbound", text="forged",
                          signature="missing",
                          headers={k: v for k, v in good["headers"].items()
                                   if k.startswith("telnyx-")},
                          **{"from": MEMBER, "to": OUR_NUMBER})
    assert r["status"] == 403, r
    assert inbound_rows(d) == []


def test_status_events_only_move_forward(make_daemon, fakeprov):
    """message.finalized (delivered), then a late message.sent."""
    check_status_forward_only(make_daemon, fakeprov, P)


def test_automatic_events_reach_delivered(make_daemon, fakeprov):
    d, cbs = check_auto_callbacks(make_daemon, fakeprov, P)
    assert {c["sent"]["url"] for c in cbs} == \
        {d.url() + "/webhooks/sx/status"}


def test_500_timeout_and_drop_are_retried_with_backoff(make_daemon,
                                                       fakeprov):
    check_retries(make_daemon, fakeprov, P)


def test_429_retry_after_is_honoured(make_daemon, fakeprov):
    check_retry_after(make_daemon, fakeprov, P)
