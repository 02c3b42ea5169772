"""
test_xss.py - member text is rendered as text, never as HTML: a member
whose message (and first name) holds <script> and <img onerror> markup
shows up in the inbox row and the thread with exactly that text, no
dialog opens, and no script or img element is made from it.
"""

from test_inbox import click_row, conv_id_of, row_for
from ui import (click_tid, find_tid, find_tids, js, login_token, MEMBER,
                member_texts, no_alert, text_of, twilio_daemon, wait_for,
                wait_tid)

EVIL = ('<script>alert(1)</script> hi <img src=x onerror=alert(1)> '
        '<b>bold</b> &amp; &lt;')


def planted(b):
    """Elements the markup would have made, if it had been parsed."""
    return js(b, """
        var out = [];
        document.querySelectorAll('img').forEach(function (i) {
            if ((i.getAttribute('src') || '') === 'x' || i.onerror ||
                i.getAttribute('onerror')) out.push(i.outerHTML);
        });
        document.querySelectorAll('script').forEach(function (s) {
            if (s.textContent.indexOf('alert(1)') >= 0) out.push(s.outerHTML);
        });
        document.querySelectorAll('b').forEach(function (x) {
            if (x.textContent === 'bold') out.push(x.outerHTML);
        });
        return out;""")


def test_member_markup_rendered_as_text(make_daemon, fakeprov, browser):
    d = twilio_daemon(make_daemon, fakeprov)
    login_token(browser, d)
    click_tid(browser, "nav-inbox")
    wait_tid(browser, "conv-list", visible=False)
    member_texts(fakeprov, EVIL)
    cid = wait_for(lambda: conv_id_of(d), 10, what="a conversation")
    # The member's name holds markup too (the row and thread show it).
    r = d.api("GET", "/api/v1/members?phone=%s" % MEMBER.replace("+", "%2B"))
    assert r.status == 200, r
    mid = r.json["members"][0]["id"]
    r = d.api("PATCH", "/api/v1/members/%d" % mid,
              {"first_name": "<img src=x onerror=alert(1)>"})
    assert r.status == 200, r
    row = wait_for(lambda: row_for(browser, cid), 15, what="conv-row")
    no_alert(browser)
    browser.shot("inbox")
    assert planted(browser) == []
    wait_for(lambda: "<script>alert(1)</script>" in
             text_of(row_for(browser, cid) or row), 10,
             what="the markup as literal text in the row")
    click_row(browser, cid)
    wait_tid(browser, "thread")

    def body():
        thread = find_tid(browser, "thread")
        if thread is None:
            return None
        for i in find_tids(browser, "thread-item", within=thread):
            b = find_tid(browser, "thread-body", within=i)
            if b is not None and i.get_attribute("data-direction") == "in":
                return b
        return None
    b = wait_for(body, 15, what="the inbound thread-body")
    assert text_of(b) == EVIL, text_of(b)
    # Nothing inside it but text.
    assert js(browser, "return arguments[0].children.length;", b) == 0
    no_alert(browser)
    assert planted(browser) == []
    browser.shot("thread")
    # A reload renders it the same way (the first paint, not only updates).
    browser.driver.refresh()
    b = wait_for(body, 15, what="the inbound thread-body after a reload")
    assert text_of(b) == EVIL
    no_alert(browser)
    assert planted(browser) == []
