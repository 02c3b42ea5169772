"""
test_alerts_page.py - an alert's progress bar moves live: a draft alert of
a few members on a paced console sender is open on the page
(#/alerts/<id>), the alert is sent, and alert-progress climbs to the
total without a reload (SSE `alert` events). Then the composer: name,
list, text, preview (segments and audience), send, and its progress bar
reaches the total too.
"""

import re

import test_alerts as ta	# the integration suite's alert helpers

from ui import (click_tid, js, login_token, type_into, wait_for, wait_text,
                wait_tid)

N = 6
CONF = ta.merged(ta.ALWAYS, {"sender console": {"rate": "3"}})


def progress(b, aid=None):
    """(sent, total) shown by alert-progress (in alert aid's alert-row
    when aid is given, else the first visible one), or None."""
    return js(b, """
        var root = document, aid = arguments[0];
        if (aid !== null) {
            root = document.querySelector(
                '[data-testid="alert-row"][data-id="' + aid + '"]');
            if (!root) return null;
        }
        var els = root.querySelectorAll('[data-testid="alert-progress"]');
        for (var i = 0; i < els.length; i++) {
            var e = els[i];
            if (e.getClientRects().length === 0) continue;
            var s = e.getAttribute('data-sent'),
                t = e.getAttribute('data-total');
            if (s !== null && t !== null) return [Number(s), Number(t)];
            if (e.tagName === 'PROGRESS')
                return [Number(e.value), Number(e.max)];
        }
        return null;""", aid)


def members(d, n=N):
    ta.make_list(d, "town")
    for k in range(n):
        r = d.api("POST", "/api/v1/members", {
            "phone": ta.e164(k), "first_name": "Ann%d" % k,
            "subscribe": [{"list": "town"}], "consent_source": "test form"})
        assert r.status == 201, r


def watch_to_total(b, d, aid, n=N, in_row=False):
    """Waits for the bar to show n of n; returns the values it showed."""
    seen = []

    def done():
        p = progress(b, aid if in_row else None)
        if p is not None and (not seen or seen[-1] != p):
            seen.append(p)
        return p is not None and p[1] == n and p[0] == n
    wait_for(done, 30, interval=0.05, what="alert-progress at %d/%d" % (n, n))
    ta.wait_alert(d, aid, "done")
    return seen


def test_alert_progress_moves_live(make_daemon, browser):
    """The alerts list is open while an alert is sent (through the API,
    as another organizer or outreachctl would): its row's bar climbs to
    the total with no reload."""
    d = make_daemon(CONF)
    members(d)
    a = ta.sms_alert(d, ["town"])
    login_token(browser, d)
    browser.driver.get(d.url() + "/ui/#/alerts")
    wait_for(lambda: progress(browser, a["id"]) is not None, 15,
             what="alert-progress in the draft's alert-row")
    js(browser, "window.__odNoReload = 1;")
    before = progress(browser, a["id"])
    assert before[0] == 0, before
    browser.shot("draft")
    ta.action(d, a["id"], "send")
    seen = watch_to_total(browser, d, a["id"], in_row=True)
    assert js(browser, "return window.__odNoReload;") == 1, "page reloaded"
    browser.shot("done")
    assert len(d.outbox()) == N
    # The alert's own page shows the same, from its first paint.
    browser.driver.get(d.url() + "/ui/#/alerts/%d" % a["id"])
    wait_for(lambda: progress(browser) == [N, N], 15,
             what="alert-progress %d/%d on the alert's page" % (N, N))
    browser.shot("detail")
    assert seen


def test_alert_composer_preview_send(make_daemon, browser):
    d = make_daemon(CONF)
    members(d)
    login_token(browser, d)
    browser.driver.get(d.url() + "/ui/#/alerts/new")
    lst = wait_tid(browser, "alert-list")
    # the form is complete once the lists are in it
    wait_for(lambda: "town" in (lst.get_attribute("textContent") or "") or
             lst.tag_name != "select", 10, what="list 'town' in alert-list")
    type_into(wait_tid(browser, "alert-name"), "Rally tonight")
    if lst.tag_name == "select":
        from selenium.webdriver.support.ui import Select
        sel = Select(lst)
        wait_for(lambda: any(o.text.strip().startswith("town")
                             for o in sel.options), 10, what="list 'town'")
        for o in sel.options:
            if o.text.strip().startswith("town"):
                sel.select_by_visible_text(o.text)
                break
        assert [o.text for o in sel.all_selected_options], "no list chosen"
    else:
        type_into(lst, "town")
    body = "Rally at 7 tonight, {{first_name|friend}}! " + ta.STOP_LINE
    type_into(wait_tid(browser, "alert-body"), body)
    click_tid(browser, "alert-preview")
    pv = wait_text(browser, "alert-preview-result",
                   lambda t: re.search(r"\b%d\b" % N, t) and
                   re.search(r"segment", t, re.I),
                   what="a preview naming %d members and segments" % N)
    browser.shot("preview")
    assert "GSM-7" in pv or "gsm7" in pv.lower().replace("-", ""), pv
    click_tid(browser, "alert-send")
    # Sending may ask for a confirmation (a dialog the page owns).
    try:
        browser.driver.switch_to.alert.accept()
    except Exception:
        pass
    aid = wait_for(lambda: (lambda ids: ids[0] if ids else None)(
        ta.alerts_ids(d)), 15, what="the alert made by the composer")
    wait_tid(browser, "alert-progress", timeout=15)
    watch_to_total(browser, d, aid)
    browser.shot("sent")
    got = sorted(o["body"] for o in d.outbox())
    assert got == sorted("Rally at 7 tonight, Ann%d! %s" % (k, ta.STOP_LINE)
                         for k in range(N)), got
