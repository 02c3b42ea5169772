"""
test_phone.py - the staff page on a phone-sized screen (390x844 CSS
pixels, mobile emulation): the page declares a device-width viewport (so
the phone does not render it at desktop width and zoom out), nothing
overflows the body horizontally on the login, inbox and thread views, and
the inbox is usable: a row is tapped, its thread opens, the reply box and
send button are on screen and a reply goes out.
"""

from test_inbox import click_row, conv_id_of, row_for
from ui import (click_tid, find_tids, js, login_token, member_texts, sent_to,
                text_of, twilio_daemon, type_into, wait_for, wait_tid)

OVERFLOW = """
var de = document.documentElement, b = document.body;
return {inner: window.innerWidth, doc: de.scrollWidth, body: b.scrollWidth,
        wide: Array.prototype.slice.call(document.querySelectorAll('body *'))
            .filter(function (e) {
                var r = e.getBoundingClientRect();
                return r.width > 0 && (r.right > window.innerWidth + 1 ||
                                       r.left < -1);
            }).slice(0, 5).map(function (e) {
                return e.tagName + '.' + e.className + '[' +
                    (e.getAttribute('data-testid') || '') + '] ' +
                    Math.round(e.getBoundingClientRect().right);
            })};
"""


def no_overflow(b, where):
    o = js(b, OVERFLOW)
    assert o["inner"] <= 400, ("the page is laid out %dpx wide on a 390px "
                               "phone: no device-width viewport?" % o["inner"])
    assert o["doc"] <= o["inner"] and o["body"] <= o["inner"], (where, o)
    return o


def in_view(b, el):
    return js(b, "var r = arguments[0].getBoundingClientRect();"
              "return r.width > 0 && r.left >= 0 && "
              "r.right <= window.innerWidth + 1;", el)


def test_inbox_on_a_phone(make_daemon, fakeprov, phone_browser):
    b = phone_browser
    d = twilio_daemon(make_daemon, fakeprov)
    member_texts(fakeprov, "Hi! Is there a meeting near me this week? " * 3)
    cid = wait_for(lambda: conv_id_of(d), 10, what="a conversation")
    b.driver.get(d.url() + "/ui/#/login")
    wait_tid(b, "login-token")
    b.shot("login")
    no_overflow(b, "login")
    login_token(b, d)
    click_tid(b, "nav-inbox")
    row = wait_for(lambda: row_for(b, cid), 15, what="conv-row")
    b.shot("inbox")
    no_overflow(b, "inbox")
    assert in_view(b, row), "the conversation row is not on screen"
    click_row(b, cid)
    wait_tid(b, "thread")
    box = wait_tid(b, "reply-box")
    send = wait_tid(b, "reply-send")
    b.shot("thread")
    no_overflow(b, "thread")
    assert in_view(b, box) and in_view(b, send)
    type_into(box, "Yes: Thursday 7pm, library.")
    js(b, "arguments[0].scrollIntoView({block: 'center'});", send)
    send.click()
    wait_for(lambda: "Yes: Thursday 7pm, library." in sent_to(fakeprov), 15,
             what="the reply at the fake provider")
    b.shot("replied")
    no_overflow(b, "after the reply")


def test_simulator_on_a_phone(make_daemon, phone_browser):
    """A newcomer on a phone: the simulator asks to log in (its own form),
    then texts HELP and sees the answer; nothing overflows."""
    b = phone_browser
    d = make_daemon({"sms": {"program": "Town Union",
                             "contact": "help@union.example"}})
    b.driver.get(d.url() + "/ui/simulator")
    field = wait_tid(b, "login-token")
    b.shot("login")
    no_overflow(b, "simulator login")
    type_into(field, d.token)
    click_tid(b, "login-submit")
    type_into(wait_tid(b, "sim-text"), "HELP")
    click_tid(b, "sim-send")
    wait_for(lambda: any(
        m.get_attribute("data-direction") == "in" and
        "help@union.example" in text_of(m)
        for m in find_tids(b, "sim-msg")), 20, what="the HELP answer")
    b.shot("help-answer")
    no_overflow(b, "simulator")
    for el in (wait_tid(b, "sim-text"), wait_tid(b, "sim-send")):
        assert in_view(b, el)
