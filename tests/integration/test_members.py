"""
test_members.py - the members and lists API (/api/v1/members,
/api/v1/lists, subscriptions, the consent log), the CSV exports, and the
outreachctl members / lists / export commands.
"""

import csv
import http.client
import io
import json
import re
import subprocess
import time

import urllib.parse

import pytest

from conftest import OUTREACHCTL, TOKEN, scaled, wait_for
from fakeprov import OUR_NUMBER, fakeprov, sms_daemon  # noqa: F401

EX_REFUSED = 1


def ctl(daemon, *args, timeout=30):
    return subprocess.run(
        [str(OUTREACHCTL), "-u", daemon.url(), "-t", TOKEN] +
        [str(a) for a in args], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=scaled(timeout))


def create(daemon, **fields):
    r = daemon.api("POST", "/api/v1/members", fields)
    assert r.status == 201, r
    return r.json


def make_list(daemon, name, **fields):
    body = {"name": name}
    body.update(fields)
    r = daemon.api("POST", "/api/v1/lists", body)
    assert r.status == 201, r
    return r.json


def subscribe(daemon, lst, consent="test form", **who):
    body = {"consent_source": consent}
    body.update(who)
    r = daemon.api("POST", "/api/v1/lists/%s/members" % lst, body)
    assert r.status in (200, 201), r
    return r.json


def get_csv(daemon, path):
    r = daemon.api("GET", path, timeout=60)
    assert r.status == 200, r
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(r.body.decode("utf-8"),
                                       newline="")))


# ---- members: create, fetch, errors ----------------------------------------

def test_member_create_and_get(daemon):
    r = daemon.api("POST", "/api/v1/members", {
        "phone": "+1 (415) 555-0100", "email": "Ana.Lopez@Example.ORG",
        "first_name": "Ana", "last_name": "López", "zip": "94110",
        "time_zone": "America/Los_Angeles",
        "attributes": {"ward": 9, "volunteer": True},
        "tags": ["rally", "door", "rally"]})
    assert r.status == 201, r
    m = r.json
    assert r.headers["Location"] == "/api/v1/members/%d" % m["id"]
    assert m["phone"] == "+14155550100"
    assert m["email"] == "ana.lopez@example.org"
    assert (m["first_name"], m["last_name"], m["zip"], m["time_zone"]) == \
        ("Ana", "López", "94110", "America/Los_Angeles")
    assert m["attributes"] == {"ward": 9, "volunteer": True}
    assert m["tags"] == ["rally", "door"]
    assert m["channels"]["sms"]["opted_out"] is False
    assert m["subscriptions"] == []
    g = daemon.api("GET", "/api/v1/members/%d" % m["id"])
    assert g.status == 200 and g.json == m


def test_member_national_number_uses_default_region(make_daemon):
    d = make_daemon(conf={"sms": {"default_region": "GB"}})
    m = create(d, phone="020 7946 0958")
    assert m["phone"] == "+442079460958"
    r = d.api("GET", "/api/v1/members?phone=%2B44%2020%207946%200958")
    assert [x["id"] for x in r.json["members"]] == [m["id"]]


def test_member_default_region_us(daemon):
    assert create(daemon, phone="(415) 555-0123")["phone"] == "+14155550123"


@pytest.mark.parametrize("phone,reason", [
    ("12", r"too short"),
    ("+1 555 0100", r"lacks its area code"),
    ("+1 555 555 0123", r"not a valid number in US .*"
     r"\[sms\] accept_unassigned_numbers = yes"),
    ("415-CALL-NOW", r"letters"),
])
def test_member_bad_phone_422(daemon, phone, reason):
    r = daemon.api("POST", "/api/v1/members", {"phone": phone})
    assert r.status == 422, r
    assert r.error_code() == "invalid_request"
    msg = r.error_message()
    assert msg.startswith("phone: "), msg
    assert re.search(reason, msg), msg
    assert daemon.scalar("SELECT count(*) FROM members") == 0


@pytest.mark.parametrize("body,field", [
    ({"email": "not-an-email"}, "email"),
    ({}, "phone"),
    ({"phone": "+14155550100", "tags": "x"}, "tags"),
    ({"phone": "+14155550100", "tags": ["a,b"]}, "tags[0]"),
    ({"phone": "+14155550100", "attributes": [1]}, "attributes"),
    ({"phone": "+14155550100", "first_name": 5}, "first_name"),
    ({"phone": "+14155550100", "nickname": "x"}, "nickname"),
    ({"phone": "+14155550100", "time_zone": "../etc"}, "time_zone"),
    ({"phone": "+14155550100", "subscribe": [{"list": "x"}]},
     "consent_source"),
    ({"phone": "+14155550100", "subscribe": [{"list": "nolist"}],
      "consent_source": "form"}, "subscribe[0].list"),
])
def test_member_invalid_fields_422(daemon, body, field):
    r = daemon.api("POST", "/api/v1/members", body)
    assert r.status == 422, r
    assert r.error_message().startswith(field + ":"), r.error_message()


def test_member_duplicate_409(daemon):
    a = create(daemon, phone="+14155550100", email="a@example.org")
    r = daemon.api("POST", "/api/v1/members", {"phone": "(415) 555-0100"})
    assert r.status == 409, r
    assert r.error_code() == "conflict"
    assert str(a["id"]) in r.error_message()
    r = daemon.api("POST", "/api/v1/members", {"email": "A@EXAMPLE.ORG"})
    assert r.status == 409, r
    assert str(a["id"]) in r.error_message()
    b = create(daemon, phone="+14155550101")
    r = daemon.api("PATCH", "/api/v1/members/%d" % b["id"],
                   {"phone": "+14155550100"})
    assert r.status == 409, r
    assert str(a["id"]) in r.error_message()


def test_member_unknown_404(daemon):
    for path in ("/api/v1/members/999", "/api/v1/members/abc",
                 "/api/v1/members/999/consent"):
        r = daemon.api("GET", path)
        assert r.status == 404, (path, r)
        assert r.error_code() == "not_found"
    r = daemon.api("PATCH", "/api/v1/members/999", {"zip": "12345"})
    assert r.status == 404, r
    r = daemon.api("POST", "/api/v1/members/999/optout", {"channel": "sms"})
    assert r.status == 404, r


def test_bad_json_400_and_auth_401(daemon):
    r = daemon.api("POST", "/api/v1/members", raw=b"{nope",
                   headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.error_code() == "invalid_json", r
    r = daemon.api("POST", "/api/v1/lists", raw=b"[1,",
                   headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    for method, path in (("GET", "/api/v1/members"),
                         ("POST", "/api/v1/members"),
                         ("GET", "/api/v1/members/1"),
                         ("GET", "/api/v1/members/1/consent"),
                         ("GET", "/api/v1/lists"),
                         ("GET", "/api/v1/lists/x/export.csv"),
                         ("GET", "/api/v1/consent/export.csv")):
        r = daemon.api(method, path, token=None)
        assert r.status == 401, (method, path, r)
        r = daemon.api(method, path, token="wrong")
        assert r.status == 401, (method, path, r)


# ---- one rule for phone numbers ----------------------------------------------
# A member is created with a valid number (a possible one in an unassigned
# range only with [sms] accept_unassigned_numbers); every lookup takes any
# possible number, or E.164 as stored, so a member is found by its number.

def test_unassigned_number_refused_but_looked_up(daemon):
    p = ctl(daemon, "members", "add", "--phone", "+15555550123")
    assert p.returncode != 0, p.stdout
    assert "not a valid number in US" in p.stderr, p.stderr
    assert "accept_unassigned_numbers = yes" in p.stderr, p.stderr
    # a lookup by it is no error: nobody has it
    r = daemon.api("GET", "/api/v1/members?phone=%2B15555550123")
    assert r.status == 200 and r.json["members"] == [], r
    p = ctl(daemon, "members", "show", "+15555550123")
    assert p.returncode == EX_REFUSED, p.stderr
    assert "no member with phone +15555550123" in p.stderr, p.stderr
    # one without an area code is not a number anywhere
    r = daemon.api("GET", "/api/v1/members?phone=555-0123")
    assert r.status == 422, r
    assert "lacks its area code" in r.error_message(), r
    # the valid 555-01xx of a real area code works out of the box
    p = ctl(daemon, "members", "add", "--phone", "+14155550123")
    assert p.returncode == 0, p.stderr
    p = ctl(daemon, "members", "show", "(415) 555-0123")
    assert p.returncode == 0 and "+14155550123" in p.stdout, p.stderr


def test_accept_unassigned_numbers(make_daemon):
    d = make_daemon(conf={"sms": {"accept_unassigned_numbers": "yes"}})
    p = ctl(d, "members", "add", "--phone", "+15555550123",
            "--first-name", "Ana")
    assert p.returncode == 0, p.stderr
    r = d.api("GET", "/api/v1/members?phone=%2B15555550123")
    assert r.status == 200 and len(r.json["members"]) == 1, r
    mid = r.json["members"][0]["id"]
    assert r.json["members"][0]["phone"] == "+15555550123"
    p = ctl(d, "members", "show", "+15555550123")
    assert p.returncode == 0 and "Ana" in p.stdout, p.stderr
    p = ctl(d, "members", "find", "--phone", "(555) 555-0123")
    assert p.returncode == 0 and "+15555550123" in p.stdout, p.stderr
    # a subscribe by such a number finds the member, or creates one
    make_list(d, "t")
    s = subscribe(d, "t", phone="555.555.0123")
    assert s["member_id"] == mid and s["member_created"] is False, s
    s = subscribe(d, "t", phone="(555) 555-0199")
    assert s["member_created"] is True, s
    # still not numbers: no area code, letters
    for bad, why in (("555-0123", "lacks its area code"),
                     ("+1 555 CALL NOW", "letters")):
        r = d.api("POST", "/api/v1/members", {"phone": bad})
        assert r.status == 422 and why in r.error_message(), (bad, r)


def test_member_from_inbound_text_found_by_number(make_daemon, fakeprov):
    d = sms_daemon(make_daemon, fakeprov, "twilio")
    frm = "+15558675310"	# NPA 555: possible, not valid
    r = fakeprov.callback("twilio", kind="inbound", text="hello",
                          **{"from": frm, "to": OUR_NUMBER})
    assert r["status"] == 200, r
    rows = d.query("SELECT id, phone FROM members")
    assert [x["phone"] for x in rows] == [frm], rows
    mid = rows[0]["id"]
    for q in (frm, "(555) 867-5310", "1-555-867-5310", "+1 555 867 5310"):
        r = d.api("GET", "/api/v1/members?phone=" +
                  urllib.parse.quote(q, safe=""))
        assert r.status == 200, (q, r)
        assert [x["id"] for x in r.json["members"]] == [mid], (q, r)
    p = ctl(d, "members", "show", frm)
    assert p.returncode == 0 and frm in p.stdout, p.stderr
    p = ctl(d, "members", "find", "--phone", frm)
    assert p.returncode == 0 and frm in p.stdout, p.stderr
    make_list(d, "t")
    s = subscribe(d, "t", phone=frm)
    assert s["member_id"] == mid and s["member_created"] is False, s


# ---- update --------------------------------------------------------------

def test_member_patch(daemon):
    m = create(daemon, phone="+14155550100", first_name="Ana",
               attributes={"a": 1, "b": 2}, tags=["x", "y"])
    path = "/api/v1/members/%d" % m["id"]
    r = daemon.api("PATCH", path, {"attributes": {"b": 3, "c": 4},
                                   "add_tags": ["z", "x"],
                                   "remove_tags": ["y"],
                                   "last_name": "Lopez",
                                   "email": "ANA@example.org"})
    assert r.status == 200, r
    j = r.json
    assert j["attributes"] == {"a": 1, "b": 3, "c": 4}
    assert j["tags"] == ["x", "z"]
    assert (j["first_name"], j["last_name"], j["email"]) == \
        ("Ana", "Lopez", "ana@example.org")
    r = daemon.api("PATCH", path, {"attributes": {"only": True},
                                   "replace_attributes": True,
                                   "tags": ["t"], "first_name": None})
    assert r.status == 200, r
    assert r.json["attributes"] == {"only": True}
    assert r.json["tags"] == ["t"]
    assert r.json["first_name"] is None
    r = daemon.api("PATCH", path, {"phone": None, "email": None})
    assert r.status == 422, r
    r = daemon.api("PATCH", path, {"tags": ["a"], "add_tags": ["b"]})
    assert r.status == 422 and r.error_message().startswith("tags:"), r
    assert daemon.api("GET", path).json["tags"] == ["t"]


# ---- search and pagination -------------------------------------------------

def test_search_filters(daemon):
    a = create(daemon, phone="+14155550100", first_name="Maria",
               tags=["door"])
    b = create(daemon, email="bob@example.org", last_name="Marino")
    c = create(daemon, phone="+14155550102", first_name="Zed")
    lst = make_list(daemon, "v1")
    subscribe(daemon, "v1", member=c["id"])

    def ids(q):
        r = daemon.api("GET", "/api/v1/members?" + q)
        assert r.status == 200, (q, r)
        return [m["id"] for m in r.json["members"]]

    assert ids("phone=4155550100") == [a["id"]]
    assert ids("email=BOB@example.org") == [b["id"]]
    assert ids("name=mari") == [a["id"], b["id"]]
    assert ids("tag=door") == [a["id"]]
    assert ids("list=v1") == [c["id"]]
    assert ids("list=%d" % lst["id"]) == [c["id"]]
    assert ids("name=mari&tag=door") == [a["id"]]
    assert ids("name=nobody") == []
    r = daemon.api("GET", "/api/v1/members?phone=12")
    assert r.status == 422 and r.error_message().startswith("phone:"), r
    r = daemon.api("GET", "/api/v1/members?color=red")
    assert r.status == 422 and r.error_message().startswith("color:"), r
    r = daemon.api("GET", "/api/v1/members?limit=1001")
    assert r.status == 422 and r.error_message().startswith("limit:"), r
    r = daemon.api("GET", "/api/v1/members?after=x")
    assert r.status == 422 and r.error_message().startswith("after:"), r
    r = daemon.api("GET", "/api/v1/members?list=nolist")
    assert r.status == 404, r


def test_pagination_walks_every_member_once(daemon):
    made = [create(daemon, phone="+1415555%04d" % (200 + i))["id"]
            for i in range(23)]
    seen, cursor, pages = [], None, 0
    while True:
        q = "limit=5" + ("&after=" + cursor if cursor else "")
        r = daemon.api("GET", "/api/v1/members?" + q)
        assert r.status == 200, r
        pages += 1
        seen += [m["id"] for m in r.json["members"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert seen == made
    assert pages == 5
    r = daemon.api("GET", "/api/v1/members")
    assert len(r.json["members"]) == 23 and r.json["next_cursor"] is None


# ---- opt-out / opt-in and the consent log ------------------------------------

def test_optout_optin_consent_log(daemon):
    lst = make_list(daemon, "news")
    m = create(daemon, phone="+14155550100", email="a@example.org",
               subscribe=[{"list": "news", "channel": "sms"}],
               consent_source="rally sign-up sheet")
    mid = m["id"]
    assert [(s["list"], s["channel"], s["status"])
            for s in m["subscriptions"]] == [("news", "sms", "active")]
    base = "/api/v1/members/%d" % mid
    r = daemon.api("POST", base + "/optout", {"channel": "sms",
                                              "detail": "asked by phone"})
    assert r.status == 200, r
    assert r.json["channels"]["sms"]["opted_out"] is True and r.json["changed"] is True
    r = daemon.api("POST", base + "/optout", {"channel": "sms"})
    assert r.status == 200 and r.json["changed"] is False, r
    r = daemon.api("POST", base + "/optout", {"channel": "email"})
    assert r.status == 200 and r.json["channels"]["email"]["opted_out"] is True, r
    r = daemon.api("POST", base + "/optin", {"channel": "sms"})
    assert r.status == 200, r
    assert r.json["channels"]["sms"]["opted_out"] is False and r.json["changed"]
    r = daemon.api("POST", base + "/optin", {"channel": "fax"})
    assert r.status == 422 and r.error_message().startswith("channel:"), r
    r = daemon.api("POST", base + "/optin", {})
    assert r.status == 422 and r.error_message().startswith("channel:"), r
    r = daemon.api("GET", base + "/consent")
    assert r.status == 200, r
    ev = r.json["events"]
    assert [(e["channel"], e["action"], e["source"]) for e in ev] == [
        ("sms", "opt_in", "api"),
        ("sms", "opt_out", "api"),
        ("email", "opt_out", "api"),
        ("sms", "opt_in", "api"),
    ]
    assert ev[0]["list"] == "news" and ev[0]["list_id"] == lst["id"]
    assert ev[0]["detail"] == "rally sign-up sheet"
    assert ev[1]["detail"] == "asked by phone"
    assert [e["id"] for e in ev] == sorted(e["id"] for e in ev)
    r = daemon.api("GET", base + "/consent?limit=2")
    assert len(r.json["events"]) == 2 and r.json["next_cursor"]
    r2 = daemon.api("GET", base + "/consent?limit=2&after=" +
                    r.json["next_cursor"])
    assert [e["id"] for e in r.json["events"] + r2.json["events"]] == \
        [e["id"] for e in ev]


# ---- lists -------------------------------------------------------------------

def test_list_crud(daemon):
    r = daemon.api("POST", "/api/v1/lists", {
        "name": "volunteers", "keywords": ["join", "Help2"],
        "welcome_sms": "Welcome! Msg&data rates may apply. HELP/STOP",
        "double_optin": False,
        "questions": [{"field": "first_name", "prompt": "Your name?"}]})
    assert r.status == 201, r
    lst = r.json
    assert r.headers["Location"] == "/api/v1/lists/%d" % lst["id"]
    assert sorted(lst["keywords"]) == ["HELP2", "JOIN"]
    assert lst["questions"] == [{"field": "first_name",
                                 "prompt": "Your name?"}]
    assert lst["from_config"] is False
    for ref in ("volunteers", str(lst["id"])):
        g = daemon.api("GET", "/api/v1/lists/" + ref)
        assert g.status == 200 and g.json["id"] == lst["id"], g
    names = [x["name"] for x in daemon.api("GET", "/api/v1/lists")
             .json["lists"]]
    assert "volunteers" in names
    r = daemon.api("PATCH", "/api/v1/lists/volunteers",
                   {"welcome_sms": "New text. HELP/STOP",
                    "double_optin": True})
    assert r.status == 200, r
    assert r.json["welcome_sms"] == "New text. HELP/STOP"
    assert r.json["double_optin"] is True
    assert sorted(r.json["keywords"]) == ["HELP2", "JOIN"]
    assert r.json["questions"] == lst["questions"]
    # conflicts and validation
    r = daemon.api("POST", "/api/v1/lists", {"name": "volunteers"})
    assert r.status == 409, r
    r = daemon.api("POST", "/api/v1/lists", {"name": "other",
                                             "keywords": ["JOIN"]})
    assert r.status == 409, r
    for body, field in (({"name": "x", "keywords": ["STOP"]}, "keywords[0]"),
                        ({"name": "x", "keywords": ["two words"]},
                         "keywords[0]"),
                        ({"name": "123"}, "name"),
                        ({"keywords": ["A"]}, "name"),
                        ({"name": "x", "sender": "nosuch"}, "sender"),
                        ({"name": "x", "questions": [{"field": "age",
                                                      "prompt": "?"}]},
                         "questions[0].field"),
                        ({"name": "x", "double_optin": "yes"},
                         "double_optin"),
                        ({"name": "x", "color": "red"}, "color")):
        r = daemon.api("POST", "/api/v1/lists", body)
        assert r.status == 422, (body, r)
        assert r.error_message().startswith(field + ":"), (body, r)
    r = daemon.api("GET", "/api/v1/lists/nolist")
    assert r.status == 404, r
    r = daemon.api("DELETE", "/api/v1/lists/nolist")
    assert r.status == 404, r


TZ_REFUSED = ("time_zone: '%s' is not a time zone of this system's tz "
              "database (an IANA name such as \"America/Chicago\")")


def test_list_time_zone(daemon):
    """A list's time_zone (the quiet hours fallback of its members):
    set on create, changed and cleared (null or "") by PATCH, kept by a
    PATCH that leaves it out, refused with 422 when the tz database does
    not know it; outreachctl lists show prints it when set."""
    lst = make_list(daemon, "tokyo", time_zone="Asia/Tokyo")
    assert lst["time_zone"] == "Asia/Tokyo"
    assert daemon.scalar("SELECT time_zone FROM lists WHERE id = ?",
                         (lst["id"],)) == "Asia/Tokyo"
    assert daemon.api("GET", "/api/v1/lists/tokyo").json["time_zone"] == \
        "Asia/Tokyo"
    p = ctl(daemon, "lists", "show", "tokyo")
    assert p.returncode == 0, p.stderr
    assert re.search(r"^time zone +Asia/Tokyo$", p.stdout, re.M), p.stdout
    r = daemon.api("PATCH", "/api/v1/lists/tokyo",
                   {"time_zone": "America/Chicago"})
    assert r.status == 200 and r.json["time_zone"] == "America/Chicago", r
    r = daemon.api("PATCH", "/api/v1/lists/tokyo", {"double_optin": True})
    assert r.status == 200 and r.json["time_zone"] == "America/Chicago", r
    for bad in ("America/Springfield", "Mars/Olympus", "../../etc/passwd",
                "posixrules"):
        r = daemon.api("PATCH", "/api/v1/lists/tokyo", {"time_zone": bad})
        assert r.status == 422, (bad, r)
        assert r.error_message() == TZ_REFUSED % bad, r
        r = daemon.api("POST", "/api/v1/lists",
                       {"name": "nowhere", "time_zone": bad})
        assert r.status == 422, (bad, r)
        assert r.error_message() == TZ_REFUSED % bad, r
    r = daemon.api("PATCH", "/api/v1/lists/tokyo", {"time_zone": 9})
    assert r.status == 422 and \
        r.error_message() == "time_zone: must be a string", r
    assert daemon.api("GET", "/api/v1/lists/nowhere").status == 404
    assert daemon.scalar("SELECT time_zone FROM lists WHERE id = ?",
                         (lst["id"],)) == "America/Chicago"
    for clear in ("", None):
        r = daemon.api("PATCH", "/api/v1/lists/tokyo",
                       {"time_zone": "Asia/Tokyo"})
        assert r.status == 200, r
        r = daemon.api("PATCH", "/api/v1/lists/tokyo", {"time_zone": clear})
        assert r.status == 200 and r.json["time_zone"] is None, (clear, r)
        assert daemon.scalar("SELECT time_zone FROM lists WHERE id = ?",
                             (lst["id"],)) is None
    p = ctl(daemon, "lists", "show", "tokyo")
    assert p.returncode == 0 and "time zone" not in p.stdout, p.stdout
    # a list made without one has none; "" on create is none too
    assert make_list(daemon, "plain")["time_zone"] is None
    assert make_list(daemon, "blank", time_zone="")["time_zone"] is None


def test_list_time_zone_from_config(make_daemon):
    d = make_daemon(conf={"list cfgtz": {"keywords": "CFGTZ",
                                         "time_zone": "Asia/Tokyo"}})
    lst = d.api("GET", "/api/v1/lists/cfgtz")
    assert lst.status == 200, lst
    assert (lst.json["time_zone"], lst.json["from_config"]) == \
        ("Asia/Tokyo", True)
    # the config changes it at the next start, and takes it away
    d.stop()
    d.configure({"list cfgtz": {"time_zone": "Europe/Paris"}})
    d.start()
    assert d.api("GET", "/api/v1/lists/cfgtz").json["time_zone"] == \
        "Europe/Paris"
    d.stop()
    d.configure({"list cfgtz": {"time_zone": None}})
    d.start()
    assert d.api("GET", "/api/v1/lists/cfgtz").json["time_zone"] is None


def test_list_delete_refused_when_not_empty(daemon):
    make_list(daemon, "tmp")
    m = create(daemon, phone="+14155550100")
    s = subscribe(daemon, "tmp", member=m["id"])
    assert (s["status"], s["change"], s["channel"]) == \
        ("active", "new", "sms")
    r = daemon.api("DELETE", "/api/v1/lists/tmp")
    assert r.status == 409 and r.error_code() == "conflict", r
    assert "force" in r.error_message()
    assert daemon.api("GET", "/api/v1/lists/tmp").status == 200
    r = daemon.api("DELETE", "/api/v1/lists/tmp?force=maybe")
    assert r.status == 422, r
    r = daemon.api("DELETE", "/api/v1/lists/tmp?force=true")
    assert r.status == 200 and r.json["deleted"] is True, r
    assert daemon.api("GET", "/api/v1/lists/tmp").status == 404
    # the consent log keeps its event
    ev = daemon.api("GET", "/api/v1/members/%d/consent" % m["id"]).json
    assert [e["action"] for e in ev["events"]] == ["opt_in"]
    make_list(daemon, "empty")
    assert daemon.api("DELETE", "/api/v1/lists/empty").status == 200


def test_list_config_list_refuses_changes(make_daemon):
    d = make_daemon(conf={"list cfg": {"keywords": "CFGJOIN",
                                       "welcome": "Hi {program}. Msg&data "
                                       "rates may apply. Reply HELP for "
                                       "help, STOP to stop."}})
    d.expect_log(r"warn .*welcome")
    lst = d.api("GET", "/api/v1/lists/cfg")
    assert lst.status == 200 and lst.json["from_config"] is True, lst
    r = d.api("PATCH", "/api/v1/lists/cfg", {"double_optin": True})
    assert r.status == 409, r
    r = d.api("DELETE", "/api/v1/lists/cfg?force=true")
    assert r.status == 409, r


def test_list_members_subscribe_unsubscribe(daemon):
    make_list(daemon, "team")
    # a new phone creates the member
    s = subscribe(daemon, "team", phone="(415) 555-0199")
    assert s["member_created"] is True and s["status"] == "active"
    mid = s["member_id"]
    assert daemon.api("GET", "/api/v1/members/%d" % mid) \
        .json["phone"] == "+14155550199"
    # again: already
    r = daemon.api("POST", "/api/v1/lists/team/members",
                   {"phone": "+14155550199", "consent_source": "again"})
    assert r.status == 200 and r.json["change"] == "already", r
    assert r.json["member_created"] is False
    # email channel on the same member by id, needs an email
    r = daemon.api("POST", "/api/v1/lists/team/members",
                   {"member": mid, "channel": "email",
                    "consent_source": "x"})
    assert r.status == 422 and r.error_message().startswith("channel:"), r
    for body, field in (({"phone": "+14155550199"}, "consent_source"),
                        ({"consent_source": "x"}, "member"),
                        ({"member": "abc", "consent_source": "x"},
                         "member"),
                        ({"phone": "12", "consent_source": "x"}, "phone"),
                        ({"email": "a@example.org", "channel": "sms",
                          "consent_source": "x"}, "phone")):
        r = daemon.api("POST", "/api/v1/lists/team/members", body)
        assert r.status == 422, (body, r)
        assert r.error_message().startswith(field + ":"), (body, r)
    r = daemon.api("POST", "/api/v1/lists/team/members",
                   {"member": 9999, "consent_source": "x"})
    assert r.status == 404, r
    # a phone of one member with an email that is not theirs
    r = daemon.api("POST", "/api/v1/lists/team/members",
                   {"phone": "+14155550199", "email": "other@example.org",
                    "channel": "email", "consent_source": "x"})
    assert r.status == 409 and str(mid) in r.error_message(), r
    e = subscribe(daemon, "team", email="Mail@Example.org")
    assert e["channel"] == "email" and e["status"] == "active"
    r = daemon.api("GET", "/api/v1/lists/team/members")
    assert [m["id"] for m in r.json["members"]] == [mid, e["member_id"]]
    # unsubscribe
    r = daemon.api("DELETE", "/api/v1/lists/team/members/%d?channel=sms"
                   % mid)
    assert r.status == 200 and r.json["left"] == ["sms"], r
    r = daemon.api("DELETE", "/api/v1/lists/team/members/%d" % mid)
    assert r.status == 200 and r.json["changed"] is False, r
    r = daemon.api("GET", "/api/v1/lists/team/members?status=left")
    assert [m["id"] for m in r.json["members"]] == [mid]
    r = daemon.api("GET", "/api/v1/lists/team/members?status=active")
    assert [m["id"] for m in r.json["members"]] == [e["member_id"]]
    r = daemon.api("GET", "/api/v1/lists/team/members?status=bogus")
    assert r.status == 422, r
    r = daemon.api("DELETE", "/api/v1/lists/team/members/9999")
    assert r.status == 404, r
    ev = daemon.api("GET", "/api/v1/members/%d/consent" % mid).json
    assert [(x["action"], x["source"], x["list"]) for x in ev["events"]] \
        == [("opt_in", "api", "team"), ("opt_out", "api", "team")]


def test_list_counts_members_once(daemon):
    make_list(daemon, "c")
    # a: sms and email; b: sms, then STOP; c: email, then left;
    # d: sms, and email opted out
    a = create(daemon, phone="+14155550100", email="a@example.org")
    b = create(daemon, phone="+14155550101")
    c = create(daemon, email="c@example.org")
    d = create(daemon, phone="+14155550103", email="d@example.org")
    for m, ch in ((a, "sms"), (a, "email"), (b, "sms"), (c, "email"),
                  (d, "sms"), (d, "email")):
        subscribe(daemon, "c", member=m["id"], channel=ch)
    for m, ch in ((b, "sms"), (d, "email")):
        r = daemon.api("POST", "/api/v1/members/%d/optout" % m["id"],
                       {"channel": ch})
        assert r.status == 200, r
    r = daemon.api("DELETE", "/api/v1/lists/c/members/%d" % c["id"])
    assert r.status == 200, r
    lst = daemon.api("GET", "/api/v1/lists/c").json
    # four people: a and d active, b opted out, c left
    assert lst["counts"] == {"active": 2, "pending": 0, "opted_out": 1,
                             "left": 1}, lst
    assert lst["channel_counts"] == {
        "sms": {"active": 2, "pending": 0, "opted_out": 1, "left": 0},
        "email": {"active": 1, "pending": 0, "opted_out": 1, "left": 1},
    }, lst
    listed = [x for x in daemon.api("GET", "/api/v1/lists").json["lists"]
              if x["name"] == "c"]
    assert listed[0]["counts"] == lst["counts"]
    p = ctl(daemon, "lists")
    assert p.returncode == 0, p.stderr
    head = re.split(r"\s{2,}", p.stdout.splitlines()[0].strip())
    row = re.split(r"\s+", [x for x in p.stdout.splitlines()
                            if x.startswith("c ")][0])
    assert head[3:7] == ["ACTIVE", "PENDING", "OPTED OUT", "LEFT"], head
    assert row[3:7] == ["2", "0", "1", "1"], p.stdout
    p = ctl(daemon, "lists", "show", "c")
    assert p.returncode == 0, p.stderr
    assert re.search(r"^opted out +1$", p.stdout, re.M), p.stdout
    assert re.search(r"^by channel +sms 2 active, 1 opted out; "
                     r"email 1 active, 1 opted out, 1 left$",
                     p.stdout, re.M), p.stdout
    got = get_csv(daemon, "/api/v1/lists/c/export.csv")
    st = {(int(r[0]), r[9]): r[10] for r in got[1:]}
    assert st == {(a["id"], "email"): "active", (a["id"], "sms"): "active",
                  (b["id"], "sms"): "opted_out", (c["id"], "email"): "left",
                  (d["id"], "email"): "opted_out",
                  (d["id"], "sms"): "active"}, st


def test_subscribe_opted_out_member_stays_opted_out(daemon):
    make_list(daemon, "team")
    m = create(daemon, phone="+14155550100")
    daemon.api("POST", "/api/v1/members/%d/optout" % m["id"],
               {"channel": "sms"})
    s = subscribe(daemon, "team", member=m["id"])
    assert s["opted_out"] is True
    g = daemon.api("GET", "/api/v1/members/%d" % m["id"]).json
    assert g["channels"]["sms"]["opted_out"] is True


def test_double_optin_email_is_pending(daemon):
    daemon.expect_log(r"members_confirmation_failed|confirmation")
    make_list(daemon, "dbl", double_optin=True)
    s = subscribe(daemon, "dbl", email="new@example.org")
    assert (s["channel"], s["status"]) == ("email", "pending")
    s = subscribe(daemon, "dbl", phone="+14155550111")
    assert (s["channel"], s["status"]) == ("sms", "active")
    m = create(daemon, email="x@example.org",
               subscribe=[{"list": "dbl", "channel": "email"}],
               consent_source="web form")
    assert [s["status"] for s in m["subscriptions"]] == ["pending"]


# ---- exports ---------------------------------------------------------------

def test_export_list_csv_quoting_and_formulas(daemon):
    make_list(daemon, "ex")
    rows = [
        {"phone": "+14155550100", "first_name": "Plain", "last_name": "Doe"},
        {"phone": "+14155550101", "first_name": "Comma, Quote \"Q\"",
         "last_name": "Line"},
        {"email": "f@example.org", "first_name": "=HYPERLINK(\"x\")",
         "last_name": "@SUM(A1)", "zip": "-3+4",
         "attributes": {"k": "v,w"}, "tags": ["t1", "t2"]},
        {"phone": "+14155550103", "first_name": "+cmd", "last_name": "-5"},
    ]
    ids = []
    for f in rows:
        m = create(daemon, subscribe=[{"list": "ex"}],
                   consent_source="export test", **f)
        ids.append(m["id"])
    daemon.api("POST", "/api/v1/members/%d/optout" % ids[3],
               {"channel": "sms"})
    # The API refuses control characters in names; line breaks can still
    # come from older data, so put one in directly.
    daemon.stop()
    daemon.execute("UPDATE members SET last_name = ? WHERE id = ?",
                   ("Line\nbreak\r\nend", ids[1]))
    daemon.start()
    got = get_csv(daemon, "/api/v1/lists/ex/export.csv")
    header = got[0]
    assert header == ["id", "phone", "email", "first_name", "last_name",
                      "zip", "time_zone", "tags", "attributes", "channel",
                      "status", "source", "subscribed_at", "sms_opted_out",
                      "email_opted_out"]
    body = [dict(zip(header, r)) for r in got[1:]]
    assert [int(r["id"]) for r in body] == ids
    api = {m["id"]: m for m in daemon.api(
        "GET", "/api/v1/lists/ex/members").json["members"]}
    for r in body:
        m = api[int(r["id"])]
        for k in ("phone", "email", "first_name", "last_name", "zip"):
            v = m[k] if m[k] is not None else ""
            if v[:1] in ("=", "+", "-", "@") and \
                    not re.fullmatch(r"[+-]?\d+(\.\d+)?", v):
                v = "'" + v
            assert r[k] == v, (k, r[k], m[k])
        assert r["channel"] == m["subscription"]["channel"]
    # an opted-out member's row says so; the others are active
    assert [r["status"] for r in body] == ["active"] * 3 + ["opted_out"]
    assert body[0]["phone"] == "+14155550100"	# a number stays as is
    assert body[1]["first_name"] == 'Comma, Quote "Q"'
    assert body[1]["last_name"] == "Line\nbreak\r\nend"
    assert body[2]["first_name"] == "'=HYPERLINK(\"x\")"
    assert body[2]["last_name"] == "'@SUM(A1)"
    assert body[2]["zip"] == "'-3+4"
    assert json.loads(body[2]["attributes"]) == {"k": "v,w"}
    assert body[3]["first_name"] == "'+cmd" and body[3]["last_name"] == "-5"
    assert body[3]["sms_opted_out"] not in ("", "0", "false")
    assert body[0]["sms_opted_out"] in ("", "0", "false")
    r = daemon.api("GET", "/api/v1/lists/nolist/export.csv")
    assert r.status == 404, r


def test_export_consent_csv(daemon):
    make_list(daemon, "c")
    a = create(daemon, phone="+14155550100", subscribe=[{"list": "c"}],
               consent_source="door, knock")
    b = create(daemon, phone="+14155550101")
    daemon.api("POST", "/api/v1/members/%d/optout" % a["id"],
               {"channel": "sms", "detail": "=cmd"})
    daemon.api("POST", "/api/v1/members/%d/optout" % b["id"],
               {"channel": "sms"})
    got = get_csv(daemon, "/api/v1/consent/export.csv")
    assert got[0] == ["id", "member_id", "phone", "email", "channel",
                      "action", "source", "list", "message_id", "detail",
                      "at"]
    rows = [dict(zip(got[0], r)) for r in got[1:]]
    assert [(int(r["member_id"]), r["action"]) for r in rows] == \
        [(a["id"], "opt_in"), (a["id"], "opt_out"), (b["id"], "opt_out")]
    assert rows[0]["detail"] == "door, knock" and rows[0]["list"] == "c"
    assert rows[1]["detail"] == "'=cmd"
    log = daemon.api("GET", "/api/v1/members/%d/consent" % a["id"]).json
    assert [int(r["id"]) for r in rows[:2]] == \
        [e["id"] for e in log["events"]]
    one = get_csv(daemon, "/api/v1/consent/export.csv?member=%d" % b["id"])
    assert [r[1] for r in one[1:]] == [str(b["id"])]
    r = daemon.api("GET", "/api/v1/consent/export.csv?member=999")
    assert r.status == 404, r
    r = daemon.api("GET", "/api/v1/consent/export.csv?who=1")
    assert r.status == 422, r


N_BIG = 20000


def _fill_big_list(d, n):
    """Writes n members subscribed to list 'big' straight into the db."""
    lid = d.api("GET", "/api/v1/lists/big").json["id"]
    d.stop()
    now = int(time.time() * 1000)
    # ids 1000..; phones +14151000000..., on either store
    nums = "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s" \
        " WHERE i < ?) "
    d.execute(nums + "INSERT INTO members (id, phone, email, first_name, "
              "attributes, tags, created_at, updated_at) SELECT 1000 + i,"
              " '+1415' || (1000000 + i), 'm' || i || '@example.org',"
              " 'Name ' || i, '{}', '[]', ?, ? FROM s", (n - 1, now, now))
    d.execute(nums + "INSERT INTO subscriptions (member_id, list_id, "
              "channel, status, source, created_at, updated_at) SELECT"
              " 1000 + i, ?, 'sms', 'active', 'import', ?, ? FROM s",
              (n - 1, lid, now, now))
    d.start()


@pytest.mark.slow
def test_big_export_streams_completely(make_daemon):
    d = make_daemon()
    make_list(d, "big")
    _fill_big_list(d, N_BIG)
    conn = http.client.HTTPConnection("127.0.0.1", d.port,
                                      timeout=scaled(60))
    conn.request("GET", "/api/v1/lists/big/export.csv",
                 headers={"Authorization": "Bearer " + TOKEN})
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Transfer-Encoding") == "chunked"
    # Other requests are served while the export is still open.
    first = r.read(4096)
    assert d.api("GET", "/healthz").status == 200
    rest = r.read()
    conn.close()
    rows = list(csv.reader(io.StringIO((first + rest).decode(),
                                       newline="")))
    assert len(rows) == N_BIG + 1
    assert [int(x[0]) for x in rows[1:]] == list(range(1000, 1000 + N_BIG))
    assert len({x[1] for x in rows[1:]}) == N_BIG


@pytest.mark.slow
def test_export_client_going_away(make_daemon):
    d = make_daemon()
    make_list(d, "big")
    _fill_big_list(d, N_BIG)
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", d.port,
                                          timeout=scaled(30))
        conn.request("GET", "/api/v1/lists/big/export.csv",
                     headers={"Authorization": "Bearer " + TOKEN})
        r = conn.getresponse()
        assert r.status == 200
        r.read(1000)
        conn.sock.close()
        conn.close()
    wait_for(lambda: len(re.findall(r"export_aborted .*client went away",
                                    d.log())) == 3,
             what="three aborted exports in the log")
    # The daemon is fine and a complete export still works.
    rows = get_csv(d, "/api/v1/lists/big/export.csv")
    assert len(rows) == N_BIG + 1
    # A shutdown with an export still open (client not reading) is clean.
    conn = http.client.HTTPConnection("127.0.0.1", d.port,
                                      timeout=scaled(30))
    conn.request("GET", "/api/v1/lists/big/export.csv",
                 headers={"Authorization": "Bearer " + TOKEN})
    r = conn.getresponse()
    assert r.status == 200
    r.read(100)
    assert d.stop() == 0
    conn.close()


# ---- outreachctl -------------------------------------------------------------

def test_ctl_members_consent(daemon):
    make_list(daemon, "news")
    p = ctl(daemon, "members", "add", "--phone", "(415) 555-0100",
            "--first-name", "Ana", "--tag", "rally", "--list", "news",
            "--source", "clipboard at rally")
    assert p.returncode == 0, (p.stdout, p.stderr)
    mid = int(re.search(r"added member (\d+)", p.stdout).group(1))
    p = ctl(daemon, "members", "optout", "+14155550100", "--channel", "sms")
    assert p.returncode == 0, p.stderr
    assert "opted out of sms" in p.stdout
    p = ctl(daemon, "members", "optin", "4155550100")	# national form
    assert p.returncode == 0, p.stderr
    p = ctl(daemon, "members", "consent", "(415) 555-0100")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "consent log of member %d:" % mid
    assert re.split(r"\s+", lines[1].strip()) == [
        "TIME", "CHANNEL", "ACTION", "SOURCE", "LIST", "MESSAGE", "DETAIL"]
    ev = [re.split(r"\s+", x.strip(), maxsplit=6) for x in lines[2:]]
    assert [(e[1], e[2], e[3]) for e in ev] == [
        ("sms", "opt_in", "api"), ("sms", "opt_out", "api"),
        ("sms", "opt_in", "api")]
    assert ev[0][4] == "news" and ev[0][6] == "clipboard at rally"
    assert all(re.match(r"\d{4}-\d\d-\d\dT", e[0]) for e in ev)
    p = ctl(daemon, "members", "consent", "+14155550999")
    assert p.returncode == EX_REFUSED
    assert "no member with phone" in p.stderr
    p = ctl(daemon, "-j", "members", "consent", str(mid))
    assert p.returncode == 0
    assert len(json.loads(p.stdout.splitlines()[0])["events"]) == 3


def test_ctl_members_find_show_update(daemon):
    p = ctl(daemon, "members", "add", "--email", "z@example.org",
            "--first-name", "Zoe", "--attr", "ward=9", "-q")
    assert p.returncode == 0, p.stderr
    mid = int(p.stdout.strip())
    p = ctl(daemon, "members", "update", "z@example.org", "--last-name",
            "Q", "--add-tag", "vip", "--phone", "415 555 0177")
    assert p.returncode == 0, p.stderr
    m = daemon.api("GET", "/api/v1/members/%d" % mid).json
    assert (m["last_name"], m["tags"], m["phone"], m["attributes"]) == \
        ("Q", ["vip"], "+14155550177", {"ward": "9"})
    p = ctl(daemon, "members", "find", "--tag", "vip")
    assert p.returncode == 0, p.stderr
    assert re.search(r"^\s*%d\s+\+14155550177\s+z@example.org\s+Zoe Q"
                     % mid, p.stdout, re.M), p.stdout
    p = ctl(daemon, "members", "find", "--name", "nobody")
    assert p.returncode == 0 and "no members match" in p.stdout
    p = ctl(daemon, "members", "show", str(mid))
    assert p.returncode == 0, p.stderr
    assert re.search(r"^phone\s+\+14155550177$", p.stdout, re.M)
    p = ctl(daemon, "members", "add", "--phone", "12")
    assert p.returncode == EX_REFUSED
    assert "phone:" in p.stderr and "HTTP 422" in p.stderr
    p = ctl(daemon, "members", "bogus")
    assert p.returncode == 2
    p = ctl(daemon, "members", "--help")
    assert p.returncode == 0 and "consent MEMBER" in p.stdout


def test_ctl_lists_and_export(daemon, tmp_path):
    make_list(daemon, "crew", keywords=["CREW"])
    p = ctl(daemon, "lists", "subscribe", "crew", "+14155550100",
            "--source", "phone bank")
    assert p.returncode == 0, p.stderr
    assert "is now active on crew (sms)" in p.stdout
    p = ctl(daemon, "lists", "subscribe", "crew", "=evil@example.org",
            "--source", "web")
    assert p.returncode == 0, p.stderr
    p = ctl(daemon, "lists")
    assert p.returncode == 0
    row = [x for x in p.stdout.splitlines() if x.startswith("crew")]
    assert row and re.split(r"\s+", row[0])[2:4] == ["CREW", "2"], p.stdout
    p = ctl(daemon, "lists", "show", "crew")
    assert p.returncode == 0 and "CREW" in p.stdout
    out = tmp_path / "crew.csv"
    p = ctl(daemon, "export", "list", "crew", "-o", out)
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "crew.csv.tmp").exists()
    rows = list(csv.reader(open(out, newline="")))
    assert [r[1] for r in rows[1:]] == ["+14155550100", ""]
    assert rows[2][2] == "'=evil@example.org"
    p = ctl(daemon, "export", "list", "nolist", "-o", tmp_path / "x.csv")
    assert p.returncode == EX_REFUSED
    assert not (tmp_path / "x.csv").exists()
    assert not (tmp_path / "x.csv.tmp").exists()
    p = ctl(daemon, "lists", "unsubscribe", "crew", "+14155550100")
    assert p.returncode == 0 and "left crew" in p.stdout, p.stdout
    p = ctl(daemon, "export", "consent", "+14155550100")
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout, newline="")))
    assert [r[5] for r in rows[1:]] == ["opt_in", "opt_out"]
    p = ctl(daemon, "export", "consent")
    assert p.returncode == 0
    assert len(list(csv.reader(io.StringIO(p.stdout, newline="")))) == 4
