"""
test_sms_twilio.py - the Twilio adapter end to end: the real outreachd
against tests/fakes/fakeprov, which answers Twilio's Messages API shape and
posts Twilio-signed webhooks (X-Twilio-Signature, HMAC-SHA1 over the URL
and the sorted parameters). The fake's signer reproduces the vector Twilio
publishes (test_fake_signs_twilios_published_vector), so a webhook the
daemon accepts here is one Twilio's own validator would accept.

Covered: the outbound request byte for byte (method, path, Basic auth,
form encoding of UTF-8, emoji, '&', '=', '+', newlines); inbound stored
and answered with empty TwiML; bad or missing signatures refused with 403
and nothing stored; status callbacks forward only; 500, timeout and a
dropped connection retried with backoff; 429 + Retry-After honoured;
permanent errors failed without retry; 21610 opts the member out.
"""

import re
import urllib.parse

import pytest

from conftest import wait_for

from fakeprov import (CREDENTIALS, MEMBER, OUR_NUMBER, check_sender_refused, basic_auth,  # noqa
                      check_auto_callbacks, check_carrier_optout,
                      check_permanent, check_retries, check_retry_after,
                      check_status_forward_only, fakeprov, form_pairs,
                      header, inbound_rows, sent_form, sms_daemon, stays)

P = "twilio"
CR = CREDENTIALS[P]
PATH = "/2010-04-01/Accounts/%s/Messages.json" % CR["account_sid"]
FORM = "application/x-www-form-urlencoded"
# Every parameter Twilio's Create Message operation takes
# (twilio_api_v2010.json, CreateMessageRequest).
TWILIO_FIELDS = {
    "To", "From", "MessagingServiceSid", "Body", "MediaUrl", "ContentSid",
    "StatusCallback", "ApplicationSid", "MaxPrice", "ProvideFeedback",
    "Attempt", "ValidityPeriod", "ForceDelivery", "ContentRetention",
    "AddressRetention", "SmartEncoded", "PersistentAction", "ShortenUrls",
    "ScheduleType", "SendAt", "SendAsMms", "ContentVariables", "RiskCheck",
    "TrafficType"}
BODIES = [
    "plain text",
    "caf\u00e9 \U0001F600 \u00a1ol\u00e9! \u4f60\u597d",
    "a&b=c+d %26 %2B\nsecond line\n?x=1#frag",
]


def test_fake_signs_twilios_published_vector(fakeprov):
    """fakeprov's X-Twilio-Signature matches Twilio's documented example
    (webhooks-security: auth token 12345, myapp.php?foo=1&bar=2)."""
    r = fakeprov.sign(P, auth_token="12345",
                      url="https://mycompany.com/myapp.php?foo=1&bar=2",
                      params={"CallSid": "CA1234567890ABCDE",
                              "Caller": "+12349013030", "Digits": "1234",
                              "From": "+12349013030", "To": "+18005551212"})
    assert r["headers"]["X-Twilio-Signature"] == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_outbound_request_is_exactly_twilios(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P)
    ids = [d.send_sms(MEMBER, b) for b in BODIES]
    for mid in ids:
        d.wait_status(mid, "sent")
    reqs = fakeprov.requests(P)
    assert len(reqs) == len(BODIES), reqs
    by_body = {}
    for r in reqs:
        assert r["method"] == "POST"
        assert r["path"] == PATH and r["query"] is None
        assert header(r, "Authorization") == \
            basic_auth(CR["account_sid"], CR["auth_token"])
        ctype = header(r, "Content-Type")
        assert ctype.split(";")[0].strip().lower() == FORM, ctype
        pairs = form_pairs(r["body"])
        fields = dict(pairs)
        assert len(fields) == len(pairs), "a repeated field: %r" % pairs
        assert fields["To"] == MEMBER
        assert fields["From"] == OUR_NUMBER
        assert fields["StatusCallback"] == d.url() + "/webhooks/sx/status"
        assert set(fields) <= TWILIO_FIELDS, set(fields) - TWILIO_FIELDS
        assert r["status"] == 201 and r["outcome"] == "accepted"
        by_body[fields["Body"]] = r
    assert set(by_body) == set(BODIES)
    for mid, body in zip(ids, BODIES):
        m = d.message(mid)
        assert m["provider"] == P
        assert m["provider_message_id"] == by_body[body]["id"]
        assert m["attempts"] == 1


def test_api_key_auth(make_daemon, fakeprov):
    """With an API key the request authenticates as key:secret, still on
    the account's path (Twilio's recommended production setup)."""
    key = "SK" + "fedcba9876543210" * 2
    fakeprov.config(P, api_key_sid=key, api_key_secret="sk-secret-1")
    d = sms_daemon(make_daemon, fakeprov, P,
                   sender_keys={"api_key_sid": key,
                                "api_key_secret": "sk-secret-1"})
    d.wait_status(d.send_sms(MEMBER, "via api key"), "sent")
    [r] = fakeprov.requests(P)
    assert r["path"] == PATH
    assert header(r, "Authorization") == basic_auth(key, "sk-secret-1")


def test_wrong_credentials_pause_the_sender(make_daemon, fakeprov):
    """Twilio's 401 (code 20003) refuses the sender, not the message: it
    stays queued, the sender pauses, the operator is warned."""
    d = sms_daemon(make_daemon, fakeprov, P,
                   sender_keys={"auth_token": "not-the-token"})
    check_sender_refused(d, fakeprov, P, (20003, 401))


def test_huge_retry_after_is_capped_not_wrapped(make_daemon, fakeprov):
    """A 401 with Retry-After: 4294968 s pauses the sender for the cap, a
    day. The seconds used to become milliseconds in an unsigned before
    the cap: 704 ms, and the next message went out at once."""
    d = sms_daemon(make_daemon, fakeprov, P)
    d.expect_log(r" warn sender_paused ")
    fakeprov.behave(P, status=401, code=20003, retry_after=4294968)
    d.send_sms(MEMBER, "first")
    wait_for(lambda: re.search(r" warn sender_paused sender=\S+ "
                               r"provider=twilio code=20003 "
                               r"resume_in_s=86400 ", d.log()),
             10, what="a pause of a day, in the log")
    d.send_sms(MEMBER, "second")
    stays(lambda: len(fakeprov.requests(P)) == 1, 2, "the sender paused")


def test_inbound_signed_is_stored_and_answered(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P)
    text = "Hi there \U0001F600 & = + 100%\nsecond line"
    sid = "SM" + "1" * 32
    r = fakeprov.callback(P, kind="inbound", id=sid, text=text,
                          **{"from": MEMBER, "to": OUR_NUMBER})
    assert r["status"] == 200, r
    assert r["content_type"].split(";")[0] == "text/xml"
    assert "<Response></Response>" in r["body"] or \
        "<Response/>" in r["body"], r["body"]
    assert r["sent"]["url"] == d.url() + "/webhooks/sx/inbound"
    [row] = inbound_rows(d, sid)
    assert row["body"] == text
    assert row["from_addr"] == MEMBER and row["to_addr"] == OUR_NUMBER
    assert row["status"] == "received" and row["provider"] == P
    # Twilio retries a webhook it got no 200 for: nothing stored twice
    r = fakeprov.callback(P, kind="inbound", id=sid, text=text,
                          **{"from": MEMBER, "to": OUR_NUMBER})
    assert r["status"] == 200
    assert len(inbound_rows(d, sid)) == 1


@pytest.mark.parametrize("signature", ["invalid", "missing", "other-body"])
def test_inbound_bad_signature_is_refused(make_daemon, fakeprov, signature):
    d = sms_daemon(make_daemon, fakeprov, P)
    d.expect_log(r"webhook_forbidden")
    spec = {"kind": "inbound", "id": "SM" + "2" * 32, "text": "forged",
            "from": MEMBER, "to": OUR_NUMBER, "signature": signature}
    if signature == "other-body":
        # a valid signature, but of different parameters
        good = fakeprov.sign(P, url=d.url() + "/webhooks/sx/inbound",
                             params={"Body": "original", "From": MEMBER})
        spec.update(signature="missing", headers={
            "X-Twilio-Signature": good["headers"]["X-Twilio-Signature"]})
    r = fakeprov.callback(P, **spec)
    assert r["status"] == 403, r
    assert inbound_rows(d) == []


def test_status_callbacks_only_move_forward(make_daemon, fakeprov):
    d = check_status_forward_only(make_daemon, fakeprov, P)
    [cb] = [c for c in fakeprov.callbacks()
            if sent_form(c).get("MessageStatus") == "delivered"]
    assert cb["sent"]["headers"]["X-Twilio-Signature"]
    # an unknown sid is answered 200 so Twilio does not retry forever
    r = fakeprov.callback(P, kind="status", id="SM" + "9" * 32,
                          status="delivered", to=MEMBER)
    assert r["status"] == 200, r
    assert "status_unknown_id" in d.log()


def test_automatic_callbacks_reach_delivered(make_daemon, fakeprov):
    """Twilio's usual sequence after each send (sent, then delivered),
    posted to the StatusCallback URL each request named."""
    d, cbs = check_auto_callbacks(make_daemon, fakeprov, P)
    assert {c["sent"]["url"] for c in cbs} == \
        {d.url() + "/webhooks/sx/status"}


def test_500_timeout_and_drop_are_retried_with_backoff(make_daemon,
                                                       fakeprov):
    check_retries(make_daemon, fakeprov, P)


def test_429_retry_after_is_honoured(make_daemon, fakeprov):
    check_retry_after(make_daemon, fakeprov, P)


@pytest.mark.parametrize("code", [21211, 21614])
def test_permanent_error_fails_without_retry(make_daemon, fakeprov, code):
    check_permanent(make_daemon, fakeprov, P, code, status=400, code=code)


def test_21610_fails_and_opts_the_member_out(make_daemon, fakeprov):
    check_carrier_optout(make_daemon, fakeprov, P, 21610, status=400,
                         code=21610)
