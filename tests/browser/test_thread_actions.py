"""
test_thread_actions.py - what staff do in a thread besides replying, in
headless chromium: an internal note (shown as a note, never sent),
assigning the conversation to oneself and releasing it, closing and
reopening it, a saved reply with the template syntax filled for the
member; a reply to a member who texted STOP is refused with a clear
message and nothing reaches the provider; and after the daemon restarts
under the open page, a new text still appears live (the event stream
reconnects by itself).
"""

import re

from test_inbox import conv_id_of, row_for, thread_texts
from ui import (click_tid, find_tid, find_tids, js, login_token, MEMBER,
                member_texts, select_tid, sent_to, text_of, twilio_daemon,
                type_into, wait_for, wait_tid)


def open_thread(b, d, cid):
    login_token(b, d)
    b.driver.get(d.url() + "/ui/#/conversations/%d" % cid)
    wait_tid(b, "thread", visible=False)
    wait_tid(b, "reply-box")


def conv(d, cid):
    r = d.api("GET", "/api/v1/conversations/%d" % cid)
    assert r.status == 200, r
    return r.json


def test_note_assign_close_reopen(make_daemon, fakeprov, browser):
    d = twilio_daemon(make_daemon, fakeprov)
    member_texts(fakeprov, "Who do I call about the bus?")
    cid = wait_for(lambda: conv_id_of(d), 10, what="a conversation")
    open_thread(browser, d, cid)

    type_into(wait_tid(browser, "note-box"), "Ask Maria, she runs transport")
    click_tid(browser, "note-add")

    def note_item():
        for i in find_tids(browser, "thread-item"):
            body = find_tid(browser, "thread-body", within=i)
            if i.get_attribute("data-kind") == "note" and body is not None:
                return text_of(body)
        return None
    assert wait_for(note_item, 15, what="the note in the thread").strip() \
        == "Ask Maria, she runs transport"
    browser.shot("note")
    items = conv(d, cid)["items"]
    assert [i["kind"] for i in items] == ["message", "note"], items
    assert items[1]["staff"]["name"] == "Administrator"
    assert sent_to(fakeprov) == [], "a note was sent to the member"

    # Assign to me (the only staff member), then release.
    select_tid(browser, "assign-select", index=1)
    wait_for(lambda: (conv(d, cid)["assigned"] or {}).get("name") ==
             "Administrator", 15, what="the conversation assigned")
    browser.shot("assigned")
    select_tid(browser, "assign-select", index=0)
    wait_for(lambda: conv(d, cid)["assigned"] is None, 15,
             what="the conversation released")

    click_tid(browser, "close-button")
    wait_tid(browser, "reopen-button")
    assert conv(d, cid)["status"] == "closed"
    browser.shot("closed")
    click_tid(browser, "reopen-button")
    wait_tid(browser, "close-button")
    assert conv(d, cid)["status"] == "open"
    # The audit log names who did each.
    r = d.api("GET", "/api/v1/audit?limit=50")
    assert r.status == 200, r
    acts = " ".join(a["action"] + " " + str(a.get("target"))
                    for a in r.json["audit"])
    for what in ("notes", "assign", "close", "reopen"):
        assert what in acts, (what, acts)


def test_saved_reply_fills_member_name(make_daemon, fakeprov, browser):
    d = twilio_daemon(make_daemon, fakeprov)
    member_texts(fakeprov, "hello?")
    cid = wait_for(lambda: conv_id_of(d), 10, what="a conversation")
    r = d.api("GET", "/api/v1/members?phone=%2B" + MEMBER[1:])
    mid = r.json["members"][0]["id"]
    r = d.api("PATCH", "/api/v1/members/%d" % mid, {"first_name": "Dolores"})
    assert r.status == 200, r
    r = d.api("POST", "/api/v1/saved-replies", {
        "name": "Thanks", "body": "Thanks {{first_name|friend}}, we'll call."})
    assert r.status == 201, r
    open_thread(browser, d, cid)
    select_tid(browser, "saved-replies", text="Thanks")
    wait_for(lambda: "first_name" in (wait_tid(browser, "reply-box")
                                      .get_attribute("value") or ""), 10,
             what="the saved reply in the reply box")
    browser.shot("saved-reply")
    click_tid(browser, "reply-send")
    wait_for(lambda: "Thanks Dolores, we'll call." in sent_to(fakeprov), 15,
             what="the saved reply, filled in, at the fake provider")
    wait_for(lambda: "Thanks Dolores, we'll call." in thread_texts(
        browser, "out"), 15, what="the filled reply in the thread")


def test_reply_to_opted_out_member_refused(make_daemon, fakeprov, browser):
    d = twilio_daemon(make_daemon, fakeprov)
    member_texts(fakeprov, "Where is the meeting?")
    cid = wait_for(lambda: conv_id_of(d), 10, what="a conversation")
    member_texts(fakeprov, "STOP")
    d.wait_idle()
    before = sent_to(fakeprov)	# the STOP confirmation
    open_thread(browser, d, cid)
    type_into(wait_tid(browser, "reply-box"), "It's at the library.")
    click_tid(browser, "reply-send")

    def refusal():
        for e in browser.driver.find_elements(
                "css selector", '[role="alert"]'):
            if e.is_displayed() and re.search(r"opted out", text_of(e), re.I):
                return text_of(e)
        return None
    wait_for(refusal, 15, what="a visible 'opted out' message")
    browser.shot("refused")
    d.wait_idle()
    assert sent_to(fakeprov) == before
    assert "It's at the library." not in thread_texts(browser, "out")


def test_live_again_after_daemon_restart(make_daemon, fakeprov, browser):
    d = twilio_daemon(make_daemon, fakeprov)
    login_token(browser, d)
    click_tid(browser, "nav-inbox")
    wait_tid(browser, "conv-list", visible=False)
    js(browser, "window.__odNoReload = 1;")
    member_texts(fakeprov, "first, before the restart")
    cid = wait_for(lambda: conv_id_of(d), 10, what="a conversation")
    wait_for(lambda: row_for(browser, cid), 15, what="conv-row")
    d.restart()
    member_texts(fakeprov, "second, after the restart")
    wait_for(lambda: (lambda r: r is not None and "after the restart" in
                      text_of(r))(row_for(browser, cid)), 30,
             what="the row updated after the daemon restarted")
    assert js(browser, "return window.__odNoReload;") == 1, "page reloaded"
    browser.shot("after-restart")
