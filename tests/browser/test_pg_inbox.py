"""
test_pg_inbox.py - the staff page on two nodes of one PostgreSQL store
(issue 13, doc/postgresql.md): the page is served by node A, the member's
texts and the provider's callbacks reach node B (as behind a load
balancer), and staff on A see it all live.

A member's text arrives at node B; the conversation appears in the inbox
open on node A without a reload (events cross the nodes); the thread
opens; a reply typed on A is sent (by whichever node holds the sender),
reaches the fake Twilio once, and its delivery status, reported to node
B, shows in the thread on A.
"""

from test_inbox import click_row, conv_id_of, row_for, thread_texts
from test_pg_conversations import pg_node
from ui import (click_tid, find_tid, find_tids, js, login_token,
                member_texts, sent_to, text_of, type_into, wait_for,
                wait_tid)


def test_inbox_across_nodes(make_daemon, pgcluster, fakeprov, browser):
    url = pgcluster.create_db("ui_inbox")
    a = pg_node(make_daemon, fakeprov, url, "a")
    b = pg_node(make_daemon, fakeprov, url, "b")
    fakeprov.config(daemon_url=b.url())
    fakeprov.config("twilio", sender="sx",
                    auto=[{"status": "sent", "delay_ms": 20},
                          {"status": "delivered", "delay_ms": 80}])
    login_token(browser, a)
    click_tid(browser, "nav-inbox")
    wait_tid(browser, "conv-list", visible=False)
    js(browser, "window.__odNoReload = 1;")

    member_texts(fakeprov, "Can I host a house meeting on Friday?")
    cid = wait_for(lambda: conv_id_of(a), 10, what="a conversation")
    wait_for(lambda: row_for(browser, cid), 15,
             what="conv-row %s on node A without a reload" % cid)
    assert js(browser, "return window.__odNoReload;") == 1, "page reloaded"
    browser.shot("pg-row-arrived")

    click_row(browser, cid)
    wait_tid(browser, "thread")
    assert wait_for(lambda: thread_texts(browser, "in"), 15,
                    what="the text in the thread") == \
        ["Can I host a house meeting on Friday?"]
    reply = "Yes! Saturday at 10, we'll bring flyers."
    type_into(wait_tid(browser, "reply-box"), reply)
    click_tid(browser, "reply-send")
    wait_for(lambda: reply in sent_to(fakeprov), 15,
             what="the reply at the fake provider")

    def out_item():
        for i in find_tids(browser, "thread-item"):
            if i.get_attribute("data-direction") != "out":
                continue
            body = find_tid(browser, "thread-body", within=i)
            if body is not None and text_of(body).strip() == reply:
                return i
        return None
    def out_status():
        # One read of the item: the thread re-renders on each event, so a
        # second lookup may find it between two renders.
        item = out_item()
        return item is not None and \
            item.get_attribute("data-status") == "delivered"
    wait_for(out_status, 15,
             what="the reply 'delivered' in the thread on node A")
    assert sent_to(fakeprov).count(reply) == 1
    browser.shot("pg-reply-delivered")
