"""
test_sms_kannel.py - the Kannel (smsbox HTTP) adapter end to end: the
real outreachd against tests/fakes/fakeprov, which answers GET
/cgi-bin/sendsms as smsbox does (202 "0: Accepted for delivery"; 403
"Authorization failed for sendsms"; 400 for a missing receiver) and calls
the daemon back the way Kannel does: delivery reports by fetching the
dlr-url the request carried, with %d (and friends) expanded, and inbound
messages through an sms-service get-url (%p, %P, %b, %I, %C). Kannel
signs nothing: the webhook URLs carry a secret, and the daemon also
checks the caller's address.

Covered: the sendsms request exactly (credentials, from/to, the text's
URL encoding with UTF-8, emoji, '&', '=', '+' and newlines, charset and
coding, dlr-mask and a dlr-url that leads back with the secret); inbound
stored with an empty answer (so smsbox sends no reply of its own); a
wrong or missing secret and a caller outside allowed_sources refused;
delivery reports forward only; 500, timeout, dropped connection and 503
retried; 429 + Retry-After; 4xx failed without retry.
"""

import urllib.parse

import pytest

from fakeprov import (CREDENTIALS, MEMBER, OUR_NUMBER,  # noqa: F401
                      check_auto_callbacks, check_bad_signature,
                      check_inbound, check_permanent, check_retries,
                      check_retry_after, check_status_forward_only, fakeprov,
                      form_pairs, gaps, header, sms_daemon)

P = "kannel"
CR = CREDENTIALS[P]
# sendsms parameters (Kannel user guide, "Kannel HTTP interface").
KANNEL_FIELDS = {
    "username", "password", "user", "pass", "from", "to", "text", "charset",
    "coding", "udh", "smsc", "mclass", "mwi", "compress", "validity",
    "deferred", "dlr-mask", "dlr-url", "account", "pid", "alt-dcs", "binfo",
    "rpi", "priority", "meta-data"}
BODIES = {
    "plain text": "0",
    "caf\u00e9 \U0001F600 \u00a1ol\u00e9! \u4f60\u597d": "2",
    "a&b=c+d %26 %2B\nsecond line\n?x=1#frag": "0",
}


def test_outbound_request_is_exactly_kannels(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P)
    ids = {d.send_sms(MEMBER, b): b for b in BODIES}
    for mid in ids:
        d.wait_status(mid, "sent")
    reqs = fakeprov.requests(P)
    assert len(reqs) == len(BODIES), reqs
    by_text = {}
    for r in reqs:
        assert r["method"] == "GET"
        assert r["path"] == "/cgi-bin/sendsms"
        assert r["body"] == ""
        pairs = form_pairs(r["query"])
        f = dict(pairs)
        assert len(f) == len(pairs), "a repeated field: %r" % pairs
        assert set(f) <= KANNEL_FIELDS, set(f) - KANNEL_FIELDS
        assert f["username"] == CR["username"]
        assert f["password"] == CR["password"]
        assert f["to"] == MEMBER, "one recipient, no spaces"
        assert f["from"] == OUR_NUMBER
        # UTF-8 in; with coding 2 Kannel would otherwise read UTF-16BE
        assert f["charset"].upper() == "UTF-8"
        mask = int(f["dlr-mask"])
        assert mask & 1 and mask & 2, "delivered and failed reports"
        dlr = urllib.parse.urlsplit(f["dlr-url"])
        assert "%s://%s" % (dlr.scheme, dlr.netloc) == d.url()
        assert dlr.path == "/webhooks/sx/status"
        assert "%d" in dlr.query, "Kannel puts the report type in %d"
        q = dict(urllib.parse.parse_qsl(dlr.query))
        assert q["secret"] == CR["secret"]
        assert r["status"] == 202
        by_text[f["text"]] = f
    assert set(by_text) == set(BODIES)
    for text, coding in BODIES.items():
        assert by_text[text].get("coding", "0") == coding, by_text[text]


def test_wrong_credentials_fail_permanently(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P,
                   sender_keys={"password": "not-the-password"})
    m = d.wait_status(d.send_sms(MEMBER, "x"), "failed")
    assert m["error"]["code"] == 403
    assert len(fakeprov.requests(P)) == 1


def test_4xx_fails_without_retry(make_daemon, fakeprov):
    check_permanent(make_daemon, fakeprov, P, 400, status=400,
                    message="Missing receiver number, rejected")


def test_503_temporal_failure_is_retried(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, P)
    fakeprov.behave(P, status=503)
    mid = d.send_sms(MEMBER, "later")
    d.wait_status(mid, "sent", timeout=15)
    reqs = fakeprov.requests(P)
    assert [r["status"] for r in reqs] == [503, 202]
    assert gaps(reqs)[0] >= 0.09


def test_inbound_is_stored_and_answered_empty(make_daemon, fakeprov):
    d, r = check_inbound(make_daemon, fakeprov, P, id_="kannel-mo-4711")
    assert r["sent"]["method"] == "GET"
    # a non-empty answer would go back to the member as a reply SMS
    assert r["body"] == ""


@pytest.mark.parametrize("signature", ["invalid", "missing"])
def test_inbound_bad_secret_is_refused(make_daemon, fakeprov, signature):
    check_bad_signature(make_daemon, fakeprov, P, signature,
                        id="kannel-mo-4712")


def test_caller_outside_allowed_sources_is_refused(make_daemon, fakeprov):
    """The right secret, from an address Kannel does not run on."""
    d = sms_daemon(make_daemon, fakeprov, P,
                   sender_keys={"allowed_sources": "192.0.2.0/24"})
    d.expect_log(r"webhook_forbidden")
    r = fakeprov.callback(P, kind="inbound", id="kannel-mo-4713",
                          text="from elsewhere",
                          **{"from": MEMBER, "to": OUR_NUMBER})
    assert r["status"] == 403, r


def test_delivery_reports_only_move_forward(make_daemon, fakeprov):
    """Type 1 (delivered), then a late type 8 (SMSC ack)."""
    check_status_forward_only(make_daemon, fakeprov, P)


def test_automatic_reports_reach_delivered(make_daemon, fakeprov):
    d, cbs = check_auto_callbacks(make_daemon, fakeprov, P)
    for c in cbs:
        assert c["sent"]["url"].startswith(d.url() + "/webhooks/sx/status?")


def test_500_timeout_and_drop_are_retried_with_backoff(make_daemon,
                                                       fakeprov):
    check_retries(make_daemon, fakeprov, P)


def test_429_retry_after_is_honoured(make_daemon, fakeprov):
    check_retry_after(make_daemon, fakeprov, P)
