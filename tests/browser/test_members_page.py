"""
test_members_page.py - the members pages in headless chromium: search by
name finds the member (member-row), the profile (member-profile) shows
the member's lists and the consent log (consent-log) with the join by
keyword and the STOP, and member-supplied text there is shown as text.
"""

from test_simulator import CONF
from ui import (click_tid, find_tids, js, login_token, no_alert, text_of,
                type_into, wait_for, wait_tid)

PHONE = "+15551230077"


def inbound(d, body):
    r = d.api("POST", "/webhooks/console/inbound",
              {"From": PHONE, "Body": body})
    assert r.status == 200, r


def test_member_search_profile_consent(make_daemon, browser):
    d = make_daemon(CONF)
    inbound(d, "JOIN")
    d.wait_idle()
    inbound(d, "STOP")
    d.wait_idle()
    r = d.api("GET", "/api/v1/members?phone=%2B" + PHONE[1:])
    assert r.status == 200, r
    r = d.api("PATCH", "/api/v1/members/%d" % r.json["members"][0]["id"],
              {"first_name": "<b>Rosa</b>",
               "last_name": "<img src=x onerror=alert(1)>"})
    assert r.status == 200, r
    login_token(browser, d)
    click_tid(browser, "nav-members")
    type_into(wait_tid(browser, "member-search"), "Rosa")

    def row():
        return next((r for r in find_tids(browser, "member-row")
                     if "<b>Rosa</b>" in text_of(r)), None)
    wait_for(row, 15, what="the member's row, name as text")
    browser.shot("search")
    assert not js(browser, "return document.querySelectorAll("
                  "'img[src=\"x\"], b').length;")
    # (the results are redrawn as the search runs again: click afresh)
    wait_for(lambda: (lambda r: r is not None and (r.click() or True))(
        row()), 15, what="a click on the member's row")
    prof = wait_tid(browser, "member-profile")
    wait_for(lambda: PHONE in text_of(wait_tid(browser, "member-profile")),
             15, what="the profile with the number")
    log = wait_tid(browser, "consent-log")
    wait_for(lambda: "opt" in text_of(wait_tid(browser, "consent-log"))
             .lower(), 15, what="the opt-out in the consent log")
    text = text_of(wait_tid(browser, "member-profile")).lower()
    assert "join" in text, text		# the list the keyword joined
    browser.shot("profile")
    no_alert(browser)
    assert not js(browser, "return document.querySelectorAll("
                  "'img[src=\"x\"]').length;")
    assert prof is not None and log is not None
