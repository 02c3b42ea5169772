"""
ui.py - page-level helpers of the browser tests: finding the staff page's
data-testid hooks (the contract: /work/briefs/contract.md, "Web", and
doc/web.md), logging in, and waiting for what the page shows. Every wait
polls against a deadline (conftest.wait_for); nothing sleeps blindly.

    b = browser                      # conftest.Browser
    login_token(b, d)                # /ui/, token form, waits for me-name
    row = wait_tid(b, "conv-row")    # a visible element, waited for
"""

import urllib.parse

from conftest import TOKEN
from conftest import wait_for as _wait_for
from fakeprov import MEMBER, OUR_NUMBER, sms_daemon

from selenium.common.exceptions import (NoAlertPresentException,
                                        StaleElementReferenceException,
                                        WebDriverException)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

__all__ = ["By", "Keys", "MEMBER", "OUR_NUMBER", "TOKEN", "wait_for", "tid",
           "find_tid", "find_tids", "click_tid", "select_tid", "wait_tid",
           "wait_tids", "wait_gone", "open_ui", "login_token",
           "login_password", "twilio_daemon", "member_texts", "sent_to",
           "text_of", "no_alert", "type_into", "logged_in", "js", "wait_js",
           "wait_text", "goto"]


def wait_for(predicate, timeout=10.0, interval=0.1, what=None):
    """conftest.wait_for for predicates that read the page: an element
    the page replaced while it was read (stale) counts as not yet."""
    def guarded():
        try:
            return predicate()
        except StaleElementReferenceException:
            return None
    return _wait_for(guarded, timeout, interval=interval, what=what)


def tid(name, extra=""):
    """The CSS selector of a data-testid hook."""
    return '[data-testid="%s"]%s' % (name, extra)


def find_tids(b, name, within=None, visible=True):
    """Elements with data-testid=name now (visible ones unless told)."""
    root = within or b.driver
    try:
        els = root.find_elements(By.CSS_SELECTOR, tid(name))
        return [e for e in els if not visible or e.is_displayed()]
    except StaleElementReferenceException:
        return []


def find_tid(b, name, within=None):
    """The first visible element with data-testid=name now, or None."""
    els = find_tids(b, name, within)
    return els[0] if els else None


def wait_tid(b, name, timeout=15, within=None, what=None, visible=True):
    """Waits for a visible (or, with visible=False, present: an empty
    list has no size) data-testid=name; returns the element."""
    def look():
        els = find_tids(b, name, within, visible)
        return els[0] if els else None
    return wait_for(look, timeout, interval=0.1,
                    what=what or "data-testid=%s" % name)


def wait_tids(b, name, n, timeout=15, within=None, what=None):
    """Waits until at least n visible data-testid=name; returns them."""
    return wait_for(lambda: (lambda es: es if len(es) >= n else None)(
        find_tids(b, name, within)), timeout, interval=0.1,
        what=what or "%d x data-testid=%s" % (n, name))


def click_tid(b, name, timeout=15):
    """Clicks the visible data-testid=name, again if the page redrew it
    between finding and clicking (a live update)."""
    def go():
        el = find_tid(b, name)
        if el is None:
            return None
        el.click()
        return True
    wait_for(go, timeout, what="a click on data-testid=%s" % name)


def select_tid(b, name, index=None, text=None, timeout=15):
    """Chooses an option (by index or visible text) of the <select>
    data-testid=name, waiting for the option and surviving redraws."""
    from selenium.webdriver.support.ui import Select

    def go():
        el = find_tid(b, name)
        if el is None:
            return None
        sel = Select(el)
        if index is not None:
            if len(sel.options) <= index:
                return None
            sel.select_by_index(index)
        else:
            if not any(o.text.strip() == text for o in sel.options):
                return None
            sel.select_by_visible_text(text)
        return True
    wait_for(go, timeout, what="option %r of data-testid=%s"
             % (text if index is None else index, name))


def wait_gone(b, name, timeout=15):
    wait_for(lambda: not find_tids(b, name), timeout, interval=0.1,
             what="data-testid=%s gone" % name)


def js(b, script, *args):
    return b.driver.execute_script(script, *args)


def wait_js(b, script, *args, timeout=15, what=None):
    """Polls a JS expression (a function body returning a value)."""
    return wait_for(lambda: js(b, script, *args), timeout, interval=0.1,
                    what=what or script)


def text_of(el):
    """An element's text as the DOM holds it (textContent)."""
    return el.get_attribute("textContent")


def wait_text(b, name, predicate, timeout=15, what=None):
    """Waits until a visible data-testid=name's textContent satisfies
    predicate; returns that text."""
    def check():
        el = find_tid(b, name)
        if el is None:
            return None
        try:
            t = text_of(el)
        except StaleElementReferenceException:
            return None
        return t if predicate(t) else None
    return wait_for(check, timeout, interval=0.1,
                    what=what or "text of data-testid=%s" % name)


def no_alert(b):
    """Asserts that no alert/confirm/prompt dialog is open."""
    try:
        a = b.driver.switch_to.alert
        text = a.text
    except NoAlertPresentException:
        return
    raise AssertionError("a JavaScript dialog is open: %r" % text)


def type_into(el, text):
    """Clears an input or textarea and types text (send_keys cannot type
    characters outside the BMP, so those go in through JS, with an input
    event, as a paste would)."""
    el.clear()
    if all(ord(c) <= 0xFFFF for c in text):
        el.send_keys(text)
        return
    el.parent.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        el, text)


def goto(b, d, route=""):
    """Opens /ui/ (and #route) of daemon d."""
    b.driver.get(d.url() + "/ui/" + (("#" + route) if route else ""))


def open_ui(b, d, route=""):
    goto(b, d, route)
    return b


def _submit_of(b, field):
    """The login-submit button of field's form (the page may have one
    form per way of logging in), else the first visible one."""
    try:
        return field.find_element(
            By.XPATH, "ancestor::form//*[@data-testid='login-submit']")
    except WebDriverException:
        return wait_tid(b, "login-submit")


def logged_in(b, timeout=15):
    """Waits for me-name; returns its text."""
    return wait_text(b, "me-name", lambda t: t.strip() != "", timeout,
                     what="me-name (logged in)")


def _clear(b, *names):
    """Empties the other way's fields (one form may hold both)."""
    for n in names:
        for el in find_tids(b, n):
            el.clear()


def login_token(b, d, token=TOKEN, wait=True):
    """Logs in with an API token through the login page."""
    goto(b, d, "/login")
    field = wait_tid(b, "login-token")
    _clear(b, "login-email", "login-password")
    type_into(field, token)
    _submit_of(b, field).click()
    return logged_in(b) if wait else None


def login_password(b, d, email, password, wait=True):
    """Logs in with email and password through the login page."""
    goto(b, d, "/login")
    e = wait_tid(b, "login-email")
    type_into(e, email)
    p = wait_tid(b, "login-password")
    type_into(p, password)
    _clear(b, "login-token")
    _submit_of(b, p).click()
    return logged_in(b) if wait else None


# -- the daemon side ---------------------------------------------------------

def twilio_daemon(make_daemon, fp, conf=None):
    """An outreachd whose SMS sender 'sx' is Twilio played by fakeprov,
    which reports sent then delivered after every send."""
    fp.config("twilio", auto=[{"status": "sent", "delay_ms": 20},
                              {"status": "delivered", "delay_ms": 80}])
    return sms_daemon(make_daemon, fp, "twilio", conf=conf)


def member_texts(fp, body, frm=MEMBER):
    """A member texts body (a Twilio-signed inbound webhook posted by
    fakeprov); asserts the daemon's 200 (sent after commit)."""
    r = fp.callback("twilio", kind="inbound", text=body,
                    **{"from": frm, "to": OUR_NUMBER})
    assert r["status"] == 200, r
    return r


def sent_to(fp, to=MEMBER):
    """Bodies of the Twilio requests to 'to' at the fake, oldest first."""
    out = []
    for r in fp.requests("twilio"):
        f = dict(urllib.parse.parse_qsl(r["body"] or ""))
        if f.get("To") == to:
            out.append(f.get("Body"))
    return out
