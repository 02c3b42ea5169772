"""
test_login.py - logging in to the staff page (/ui/) in headless chromium:
with the daemon's API token (the first admin's), with an email and a
password of a staff member made by `outreachctl staff add`, a wrong
password shown as login-error and leaving the page logged out, logout;
and the login form used with the keyboard only (Tab and Enter).
"""

import subprocess

from conftest import OUTREACHCTL, scaled
from ui import (click_tid, find_tid, find_tids, goto, js, Keys, logged_in,
                login_password, login_token, wait_for, wait_text, wait_tid)

PASSWORD = "correct horse battery staple 7"


def staff_add(d, name, email, role="admin", password=PASSWORD):
    """outreachctl staff add ... --password-stdin; asserts exit 0."""
    p = subprocess.run(
        [str(OUTREACHCTL), "-u", d.url(), "-t", d.token, "staff", "add",
         "--name", name, "--email", email, "--role", role,
         "--password-stdin"],
        input=password + "\n", capture_output=True, text=True,
        timeout=scaled(30))
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p


def test_login_with_token_shows_me_name(daemon, browser):
    goto(browser, daemon, "/login")
    wait_tid(browser, "login-token")
    browser.shot("login-page")
    name = login_token(browser, daemon)
    # The daemon's token is the first admin's (staff #1, "Administrator").
    assert name.strip() == "Administrator", name
    browser.shot("logged-in")
    assert find_tid(browser, "login-error") is None
    # A reload keeps the session (the cookie), no second login.
    browser.driver.refresh()
    assert logged_in(browser).strip() == "Administrator"


def test_login_with_email_and_password(daemon, browser):
    staff_add(daemon, "Rosa Parks", "rosa@example.org", role="organizer")
    name = login_password(browser, daemon, "rosa@example.org", PASSWORD)
    assert name.strip() == "Rosa Parks", name
    browser.shot("logged-in")
    # The session is a cookie the page's script cannot read (HttpOnly).
    assert "od_session" not in js(browser, "return document.cookie;")
    # Logout ends it: the login form is back, and stays after a reload.
    click_tid(browser, "nav-logout")
    wait_tid(browser, "login-email")
    browser.driver.refresh()
    wait_tid(browser, "login-email")
    assert not find_tids(browser, "me-name")
    browser.shot("logged-out")


def test_wrong_password_shows_login_error(daemon, browser):
    daemon.expect_log(r"login")	# a refused login may be logged as warn
    staff_add(daemon, "Ella Baker", "ella@example.org")
    login_password(browser, daemon, "ella@example.org", "not it",
                   wait=False)
    err = wait_text(browser, "login-error", lambda t: t.strip() != "")
    browser.shot("login-error")
    assert not find_tids(browser, "me-name"), "logged in anyway"
    # The same message for an unknown email (no account enumeration).
    login_password(browser, daemon, "nobody@example.org", "not it",
                   wait=False)
    err2 = wait_text(browser, "login-error", lambda t: t.strip() != "")
    assert err2.strip() == err.strip()
    assert not find_tids(browser, "me-name")
    # A wrong token too.
    login_token(browser, daemon, token="x" * 40, wait=False)
    wait_text(browser, "login-error", lambda t: t.strip() != "")
    assert not find_tids(browser, "me-name")
    # And the right password still works (not rate limited after three).
    name = login_password(browser, daemon, "ella@example.org", PASSWORD)
    assert name.strip() == "Ella Baker"


def test_login_form_with_keyboard_only(daemon, browser):
    """Tab from the document reaches the email field, Tab moves on to the
    password (with a visible focus style), and Enter there logs in: no
    mouse needed."""
    staff_add(daemon, "Bayard Rustin", "bayard@example.org")
    goto(browser, daemon, "/login")
    wait_tid(browser, "login-email")
    body = browser.driver.find_element("tag name", "body")
    body.click()	# focus on the document, not in a field

    def active_tid():
        return js(browser, "var a = document.activeElement;"
                  "return a && a.getAttribute('data-testid');")

    def tab_to(name, limit=30):
        for _ in range(limit):
            if active_tid() == name:
                return True
            browser.driver.switch_to.active_element.send_keys(Keys.TAB)
        return active_tid() == name

    assert tab_to("login-email"), "Tab never reached login-email"
    a = browser.driver.switch_to.active_element
    a.send_keys("bayard@example.org")
    a.send_keys(Keys.TAB)
    assert active_tid() == "login-password", active_tid()
    browser.shot("keyboard-focus")
    # The focused field is visibly marked (a focus style: outline or
    # box-shadow differs from the unfocused state).
    style = js(browser, "var s = getComputedStyle(document.activeElement);"
               "return [s.outlineStyle, s.outlineWidth, s.boxShadow];")
    assert style[0] != "none" or style[2] != "none", style
    a = browser.driver.switch_to.active_element
    a.send_keys(PASSWORD)
    a.send_keys(Keys.ENTER)
    assert logged_in(browser).strip() == "Bayard Rustin"
    browser.shot("logged-in")


def test_token_login_with_enter(daemon, browser):
    goto(browser, daemon, "/login")
    field = wait_tid(browser, "login-token")
    field.send_keys(daemon.token)
    field.send_keys(Keys.ENTER)
    assert logged_in(browser).strip() == "Administrator"
    wait_for(lambda: find_tid(browser, "nav-inbox"), 10, what="nav-inbox")


def test_logout_in_another_tab_returns_to_login(daemon, browser):
    """Two tabs share the session; logging out in one ends it for both:
    the other, on its next request, shows the login form instead of
    failing silently."""
    drv = browser.driver
    login_token(browser, daemon)
    first = drv.current_window_handle
    drv.switch_to.new_window("tab")
    drv.get(daemon.url() + "/ui/#/inbox")
    assert logged_in(browser).strip() == "Administrator"
    click_tid(browser, "nav-logout")
    wait_tid(browser, "login-token")
    drv.switch_to.window(first)
    click_tid(browser, "nav-members")	# a request with the dead session
    wait_tid(browser, "login-token", timeout=20)
    assert not find_tids(browser, "me-name")
    browser.shot("back-to-login")
