"""
test_simulator.py - the phone simulator (/ui/simulator) round trip in
headless chromium against an outreachd with the console sender and a
list with a keyword and a follow-up question: as a supporter with a
chosen number, text the keyword and see the welcome, then the question,
answer it, write a free text, text STOP and see the one confirmation,
START and see the resubscription; each message a sim-msg bubble in
order. Meanwhile the staff inbox, open in another tab of the same
browser, shows the supporter's free text arrive without a reload.
"""

from ui import (click_tid, find_tids, js, login_token, text_of, type_into,
                wait_for, wait_tid)

PROGRAM = "Town Union"
CONTACT = "help@union.example"
PHONE = "+15551230042"
CONF = {
    "sms": {"program": PROGRAM, "contact": CONTACT},
    "list JOIN": {"keywords": "join", "sender": "console",
                  "questions": "first_name",
                  "ask_first_name": "Thanks! What's your first name?"},
}


def bubbles(b):
    """(direction, text) of every sim-msg, in page order."""
    out = []
    for m in find_tids(b, "sim-msg"):
        try:
            out.append((m.get_attribute("data-direction"),
                        text_of(m).strip()))
        except Exception:	# re-rendered while read: read again
            return None
    return out


def wait_bubble(b, direction, pred, n_before, what):
    """Waits for a bubble past the first n_before matching direction and
    pred; returns the bubbles then."""
    def check():
        bs = bubbles(b)
        if bs is None:
            return None
        return bs if any(d == direction and pred(t)
                         for d, t in bs[n_before:]) else None
    return wait_for(check, 20, interval=0.1, what=what)


def send(b, text):
    type_into(wait_tid(b, "sim-text"), text)
    click_tid(b, "sim-send")


def test_simulator_round_trip_and_inbox(make_daemon, browser):
    d = make_daemon(CONF)
    r = d.api("GET", "/api/v1/simulator")
    assert r.status == 200 and r.json["enabled"] is True, r
    drv = browser.driver
    # Tab 1: the staff inbox, logged in (the cookie is shared by tabs).
    login_token(browser, d)
    click_tid(browser, "nav-inbox")
    wait_tid(browser, "conv-list", visible=False)
    js(browser, "window.__odNoReload = 1;")
    inbox = drv.current_window_handle
    # Tab 2: the simulator.
    drv.switch_to.new_window("tab")
    sim = drv.current_window_handle
    drv.get(d.url() + "/ui/simulator")
    num = wait_tid(browser, "sim-number")
    type_into(num, PHONE)
    browser.shot("simulator")

    send(browser, "JOIN")
    bs = wait_bubble(browser, "in", lambda t: "Welcome" in t, 0,
                     "the welcome bubble")
    assert any(dd == "out" and t.startswith("JOIN") for dd, t in bs), bs
    bs = wait_bubble(browser, "in", lambda t: "first name" in t, 0,
                     "the follow-up question")
    welcome = [t for dd, t in bs if dd == "in" and "Welcome" in t][0]
    for part in (PROGRAM, "Msg&data rates may apply", "HELP", "STOP"):
        assert part in welcome, welcome
    browser.shot("welcome-and-question")
    # The order on the phone: JOIN, welcome, question.
    seq = [(dd, t) for dd, t in bs]
    i_join = next(i for i, (dd, t) in enumerate(seq)
                  if dd == "out" and t.startswith("JOIN"))
    i_wel = next(i for i, (dd, t) in enumerate(seq) if "Welcome" in t)
    i_q = next(i for i, (dd, t) in enumerate(seq) if "first name" in t)
    assert i_join < i_wel < i_q, seq

    n = len(bs)
    send(browser, "Ana")
    wait_bubble(browser, "out", lambda t: t.startswith("Ana"), n,
                "the answer bubble")
    wait_for(lambda: (lambda r: r.status == 200 and r.json["members"] and
                      r.json["members"][0].get("first_name") == "Ana")(
        d.api("GET", "/api/v1/members?phone=%2B" + PHONE[1:])), 15,
        what="the answer stored as first_name")

    free = "Can I help with the phone bank on Saturday?"
    send(browser, free)
    bs = wait_bubble(browser, "out", lambda t: t.startswith(free), n,
                     "the free text bubble")

    n = len(bs)
    send(browser, "STOP")
    bs = wait_bubble(browser, "in", lambda t: "unsubscribed" in t, n,
                     "the STOP confirmation")
    browser.shot("stopped")
    stops = [t for dd, t in bs if dd == "in" and "unsubscribed" in t]
    assert len(stops) == 1, bs
    assert PROGRAM in stops[0]

    n = len(bs)
    send(browser, "START")
    bs = wait_bubble(browser, "in", lambda t: "subscribed again" in t, n,
                     "the START confirmation")
    browser.shot("started-again")
    # Every bubble the phone shows from the daemon is a message the daemon
    # really sent to the number (the console outbox), in that order (a
    # bubble's text starts with the message; its time and status follow).
    d.wait_idle()
    bodies = [o["body"] for o in d.outbox() if o.get("to") == PHONE]
    ins = [t for dd, t in bubbles(browser) if dd == "in"]
    assert len(ins) == len(bodies) and all(
        t.startswith(body.strip()) for t, body in zip(ins, bodies)), \
        (ins, bodies)

    # Back in tab 1: the supporter's free text arrived live.
    drv.switch_to.window(inbox)

    def row():
        for r in find_tids(browser, "conv-row"):
            if free[:20] in text_of(r) or PHONE[-4:] in text_of(r) or \
                    "Ana" in text_of(r):
                return r
        return None
    wait_for(row, 20, what="the supporter's conversation in the inbox")
    assert js(browser, "return window.__odNoReload;") == 1, "page reloaded"
    browser.shot("inbox-live")
    wait_for(lambda: (lambda r: r is not None and (r.click() or True))(
        row()), 15, what="a click on the supporter's conv-row")
    wait_tid(browser, "thread")
    wait_for(lambda: any(
        text_of(b).strip() == free for b in find_tids(browser, "thread-body")),
        15, what="the free text in the thread")
    browser.shot("inbox-thread")
    drv.switch_to.window(sim)
    assert find_tids(browser, "sim-messages", visible=False)
