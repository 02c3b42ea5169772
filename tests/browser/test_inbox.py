"""
test_inbox.py - the staff inbox in headless chromium against an outreachd
whose SMS sender is Twilio played by fakeprov: a member's text (a signed
inbound webhook) appears in the open inbox without a reload, with its
unread badge; the thread opens; a reply typed in the reply box shows its
segment count and encoding as it is typed, is sent, reaches the fake
provider, and its delivery status shows in the thread as the provider's
callbacks arrive; the reply can be typed and sent with the keyboard.
"""

import re

from ui import (click_tid, find_tid, find_tids, js, Keys, login_token, MEMBER,
                member_texts, select_tid, sent_to, text_of, twilio_daemon,
                type_into, wait_for, wait_text, wait_tid)


def row_for(b, conv_id):
    for r in find_tids(b, "conv-row"):
        if r.get_attribute("data-id") == str(conv_id):
            return r
    return None


def click_row(b, cid, timeout=15):
    """Clicks conversation cid's conv-row (afresh if the list redrew)."""
    wait_for(lambda: (lambda r: r is not None and (r.click() or True))(
        row_for(b, cid)), timeout, what="a click on conv-row %s" % cid)


def thread_texts(b, direction):
    """The thread-body texts of the thread's messages in direction."""
    out = []
    for i in find_tids(b, "thread-item"):
        if i.get_attribute("data-direction") == direction:
            body = find_tid(b, "thread-body", within=i)
            out.append(text_of(body).strip() if body is not None else None)
    return out


def conv_id_of(d, phone=MEMBER):
    """The member's conversation id, from the API (not the page)."""
    r = d.api("GET", "/api/v1/conversations?status=all")
    assert r.status == 200, r
    ids = [c["id"] for c in r.json["conversations"]
           if c["member"]["phone"] == phone]
    return ids[0] if ids else None


def open_inbox(b, d):
    login_token(b, d)
    click_tid(b, "nav-inbox")
    wait_tid(b, "conv-list", visible=False)


def test_inbound_text_appears_live_with_unread_badge(make_daemon, fakeprov,
                                                     browser):
    d = twilio_daemon(make_daemon, fakeprov)
    open_inbox(browser, d)
    browser.shot("empty-inbox")
    assert not find_tids(browser, "conv-row")
    # A marker proves the page is not reloaded: a reload would drop it.
    js(browser, "window.__odNoReload = 1;")
    member_texts(fakeprov, "Can I host a house meeting on Friday?")
    cid = wait_for(lambda: conv_id_of(d), 10, what="a conversation")
    row = wait_for(lambda: row_for(browser, cid), 15,
                   what="conv-row data-id=%s without a reload" % cid)
    assert js(browser, "return window.__odNoReload;") == 1, "page reloaded"
    badge = wait_tid(browser, "conv-unread", within=row)
    assert re.search(r"\b1\b", text_of(badge)), text_of(badge)
    assert "house meeting" in text_of(row)
    browser.shot("row-arrived")
    # A second text from the same member: same row, two unread.
    member_texts(fakeprov, "Also, can I bring my neighbours?")
    wait_for(lambda: (lambda r: r is not None and re.search(
        r"\b2\b", text_of(find_tid(browser, "conv-unread", within=r) or r))
        and "neighbours" in text_of(r))(row_for(browser, cid)), 15,
        what="the row updated to 2 unread")
    assert len(find_tids(browser, "conv-row")) == 1
    assert js(browser, "return window.__odNoReload;") == 1, "page reloaded"
    browser.shot("row-updated")


def test_reply_counter_send_and_status(make_daemon, fakeprov, browser):
    d = twilio_daemon(make_daemon, fakeprov)
    member_texts(fakeprov, "What time is the rally?")
    cid = wait_for(lambda: conv_id_of(d), 10, what="a conversation")
    open_inbox(browser, d)
    click_row(browser, cid)
    wait_tid(browser, "thread")
    # (the thread's items are redrawn on every live update: read afresh)
    assert wait_for(lambda: thread_texts(browser, "in"), 15,
                    what="the inbound message in the thread") == \
        ["What time is the rally?"]
    browser.shot("thread")
    # Opening the thread marks it read (the badge goes).
    wait_for(lambda: (lambda r: r is not None and not find_tids(
        browser, "conv-unread", within=r))(row_for(browser, cid)), 15,
        what="the unread badge gone once read")

    box = wait_tid(browser, "reply-box")
    reply = "Rally at 7pm at City Hall, bring a sign!"
    type_into(box, reply)
    c = wait_text(browser, "reply-counter",
                  lambda t: "GSM-7" in t and re.search(r"\b1 segment", t))
    assert str(len(reply)) in c, c
    # One character outside GSM-7 turns the whole text into UCS-2.
    box.send_keys(" \u0416")
    wait_text(browser, "reply-counter",
              lambda t: "UCS-2" in t and re.search(r"\b1 segment", t))
    type_into(box, "x" * 161)
    wait_text(browser, "reply-counter",
              lambda t: "GSM-7" in t and re.search(r"\b2 segments", t))
    browser.shot("counter-2-segments")
    type_into(box, reply)
    wait_text(browser, "reply-counter", lambda t: "GSM-7" in t and
              re.search(r"\b1 segment", t))
    browser.shot("reply-typed")
    click_tid(browser, "reply-send")

    # The reply reaches the fake Twilio, to the member, from our sender.
    wait_for(lambda: reply in sent_to(fakeprov), 15,
             what="the reply at the fake provider")
    assert sent_to(fakeprov).count(reply) == 1
    # Its delivery status shows in the thread (fakeprov reports sent,
    # then delivered), with no reload.
    def out_item():
        for i in find_tids(browser, "thread-item"):
            if i.get_attribute("data-direction") != "out":
                continue
            body = find_tid(browser, "thread-body", within=i)
            if body is not None and text_of(body).strip() == reply:
                return i
        return None
    item = wait_for(out_item, 15, what="the reply in the thread")
    wait_for(lambda: (out_item() or item).get_attribute("data-status")
             == "delivered", 15, what="the reply's status 'delivered'")
    browser.shot("reply-delivered")
    assert (find_tid(browser, "reply-box").get_attribute("value") or "") \
        == "", "the reply box was not cleared after sending"


def test_reply_with_keyboard(make_daemon, fakeprov, browser):
    """The reply box and its send button are reached with Tab and used
    with Enter (on the button), no mouse."""
    d = twilio_daemon(make_daemon, fakeprov)
    member_texts(fakeprov, "Is the meeting still on?")
    cid = wait_for(lambda: conv_id_of(d), 10, what="a conversation")
    login_token(browser, d)
    browser.driver.get(d.url() + "/ui/#/conversations/%d" % cid)
    box = wait_tid(browser, "reply-box")
    box.click()
    box.send_keys("Yes, 6pm.")

    def active_tid():
        return js(browser, "var a = document.activeElement;"
                  "return a && a.getAttribute('data-testid');")
    for _ in range(10):
        if active_tid() == "reply-send":
            break
        browser.driver.switch_to.active_element.send_keys(Keys.TAB)
    assert active_tid() == "reply-send", active_tid()
    browser.shot("send-focused")
    browser.driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(lambda: "Yes, 6pm." in sent_to(fakeprov), 15,
             what="the reply at the fake provider")
    browser.shot("sent")


def test_filters_and_search(make_daemon, fakeprov, browser):
    """Three members' conversations: the search box (Enter) finds one by a
    word of its text, the status filter shows a closed one only under
    Closed, and "Assigned to me" only the one assigned to me."""
    d = twilio_daemon(make_daemon, fakeprov)
    who = {"bus": "+15551230011", "flyer": "+15551230012",
           "door": "+15551230013"}
    member_texts(fakeprov, "Is there a bus to the capitol?", who["bus"])
    member_texts(fakeprov, "Can I print flyers at the office?", who["flyer"])
    member_texts(fakeprov, "I knocked on 40 doors today", who["door"])
    ids = {k: wait_for(lambda p=p: conv_id_of(d, p), 10, what=k)
           for k, p in who.items()}
    r = d.api("POST", "/api/v1/conversations/%d/close" % ids["door"], {})
    assert r.status == 200, r
    r = d.api("POST", "/api/v1/conversations/%d/assign" % ids["flyer"],
              {"staff_id": 1})
    assert r.status == 200, r
    open_inbox(browser, d)

    def shown():
        return sorted(k for k, cid in ids.items()
                      if row_for(browser, cid) is not None)

    wait_for(lambda: shown() == ["bus", "flyer"], 15,
             what="the two open conversations")
    browser.shot("open")
    search = wait_tid(browser, "conv-search")
    type_into(search, "flyers")
    search.send_keys(Keys.ENTER)
    wait_for(lambda: shown() == ["flyer"], 15, what="the search result")
    browser.shot("search")
    type_into(wait_tid(browser, "conv-search"), "")
    wait_tid(browser, "conv-search").send_keys(Keys.ENTER)
    wait_for(lambda: shown() == ["bus", "flyer"], 15,
             what="all open ones again")
    select_tid(browser, "conv-filter-status", text="Closed")
    wait_for(lambda: shown() == ["door"], 15, what="the closed one")
    browser.shot("closed")
    select_tid(browser, "conv-filter-status", text="All")
    wait_for(lambda: shown() == ["bus", "door", "flyer"], 15, what="all")
    select_tid(browser, "conv-filter-assigned", text="Assigned to me")
    wait_for(lambda: shown() == ["flyer"], 15, what="assigned to me")
    browser.shot("mine")
