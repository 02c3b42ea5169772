"""
conftest.py - fixtures of the browser tests (README: tests/README.md,
"Browser tests"): headless Debian chromium driven through chromedriver by
python3-selenium, against the real outreachd of the integration suite.

The integration fixtures are reused, not copied: tests/integration's
conftest.py is loaded as a module and its public names (Daemon,
make_daemon, daemon, wait_for, scaled, TOKEN, ...) are re-exported here,
so tests/integration/fakeprov.py (which does `from conftest import ...`)
and its `fakeprov` fixture work unchanged in this directory. The browser
suite therefore runs in its own pytest process (tests/browser/run.sh):
two conftest modules named "conftest" cannot share one.

Fixtures:
  browser        a desktop chromium (1280x900), logged in to nothing yet
  phone_browser  a phone-sized one (390x844 CSS pixels, mobile emulation)
  make_browser   factory: make_browser(name="second", phone=False)
Every browser is screenshotted at teardown (each of its windows), pass or
fail, into the artifacts directory; a failed test also leaves the page's
HTML and the browser console there. Uncaught page errors and CSP
violations in the console fail the test.

The browsers' binaries: /usr/bin/chromium and /usr/bin/chromedriver (or
$OD_CHROMIUM, $OD_CHROMEDRIVER). When either, or python3-selenium, cannot
be found, every browser test is skipped with the reason (bootstrap
installs them: chromium chromium-driver python3-selenium).

Environment (besides the integration suite's):
  OD_ARTIFACTS      where screenshots go
                    (default: $OD_BUILDDIR/test-artifacts/browser)
  OD_CHROMIUM, OD_CHROMEDRIVER   the binaries (defaults above)
  OD_HEADFUL=1      show the window (needs a display), for debugging
  OD_UI_DIR=web     daemons serve the page from that directory ([http]
                    ui_dir) instead of the copy built into the binary
"""

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_IT_DIR = HERE.parent / "integration"
if str(_IT_DIR) not in sys.path:
    sys.path.insert(0, str(_IT_DIR))

# The integration conftest, loaded under its own name, then re-exported.
_spec = importlib.util.spec_from_file_location(
    "od_integration_conftest", _IT_DIR / "conftest.py")
_it = importlib.util.module_from_spec(_spec)
sys.modules["od_integration_conftest"] = _it
_spec.loader.exec_module(_it)
for _name in dir(_it):
    if not _name.startswith("_") and _name not in ("pytest_configure",):
        globals()[_name] = getattr(_it, _name)
wait_for = _it.wait_for
scaled = _it.scaled
BUILDDIR = _it.BUILDDIR
SRCDIR = _it.SRCDIR
TOKEN = _it.TOKEN
make_daemon = _it.make_daemon
daemon = _it.daemon

from fakeprov import fakeprov  # noqa: E402,F401  (the fixture)

# OD_UI_DIR=DIR: every test daemon serves the page from DIR ([http]
# ui_dir) instead of the copy built into it: edit web/, rerun, no rebuild.
UI_DIR = os.environ.get("OD_UI_DIR")
if UI_DIR:
    _default_conf = _it.default_conf

    def _conf_with_ui_dir(d):
        conf = _default_conf(d)
        conf["http"]["ui_dir"] = str(Path(UI_DIR).resolve())
        return conf
    _it.default_conf = _conf_with_ui_dir

CHROMIUM = os.environ.get("OD_CHROMIUM") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("OD_CHROMEDRIVER") or "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("OD_ARTIFACTS") or
                 BUILDDIR / "test-artifacts" / "browser")
DESKTOP = (1280, 900)
PHONE = (390, 844)

# Console lines that fail a test: an exception the page did not catch, a
# Content-Security-Policy refusal (a script or style the page needs is
# blocked, or the page tried inline code).
CONSOLE_BAD = re.compile(r"Uncaught|Refused to (execute|load|apply|"
                         r"connect|evaluate)|Content.Security.Policy")


def _missing():
    """Why the browser tests cannot run here, or None."""
    why = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        why.append("python3-selenium (import selenium failed)")
    for path, pkg in ((CHROMIUM, "chromium"),
                      (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            why.append("%s (%s not found)" % (pkg, path))
    if not why:
        return None
    return ("browser tests need " + ", ".join(why) +
            "; ./bootstrap deps installs them")


MISSING = _missing()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long-running but required (runs by default)")


def pytest_collection_modifyitems(config, items):
    """Without a browser every test is skipped before any daemon starts."""
    if MISSING:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=MISSING))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item, for the screenshots'
    names and the failure dumps."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _safe(s):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_")[:120]


class Browser:
    """
    One chromium: the selenium driver as .driver plus helpers used by
    every test file (ui.py has the page-level ones). shot(label) saves a
    screenshot now; teardown saves the last one of each window.
    """

    def __init__(self, driver, name, test, phone):
        self.driver = driver
        self.name = name
        self.test = test
        self.phone = phone
        self.shots = 0
        self.console = []
        self.expected_console = []

    def shot(self, label):
        """Saves a screenshot as <test>-<browser>-NN-<label>.png."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        p = ARTIFACTS / ("%s-%s-%02d-%s.png" % (self.test, self.name,
                                                self.shots, _safe(label)))
        try:
            self.driver.save_screenshot(str(p))
        except Exception as e:	# an alert open, a crashed tab: go on
            p.with_suffix(".txt").write_text("no screenshot: %r\n" % e)
        return p

    def read_console(self):
        """Drains the console into self.console; returns the new lines."""
        try:
            new = self.driver.get_log("browser")
        except Exception:
            new = []
        self.console.extend(new)
        return new

    def expect_console(self, regex):
        """Declares console lines matching regex as expected."""
        self.expected_console.append(re.compile(regex))

    def bad_console(self):
        return [e for e in self.console
                if CONSOLE_BAD.search(e.get("message", "")) and
                not any(r.search(e.get("message", ""))
                        for r in self.expected_console)]


def _driver(phone):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    if os.environ.get("OD_HEADFUL", "") in ("", "0", "no"):
        o.add_argument("--headless=new")
    for a in ("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--no-first-run", "--no-default-browser-check",
              "--disable-extensions", "--disable-background-networking",
              "--disable-sync", "--lang=en-US", "--hide-scrollbars"):
        o.add_argument(a)
    if phone:
        o.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": PHONE[0], "height": PHONE[1],
                              "pixelRatio": 3.0, "touch": True},
            "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) "
                         "AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/120.0 Mobile Safari/537.36"})
        o.add_argument("--window-size=%d,%d" % PHONE)
    else:
        o.add_argument("--window-size=%d,%d" % DESKTOP)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An alert() stays open and is reported by the test that looks for it
    # (test_xss.py), instead of being dismissed behind our back.
    o.set_capability("unhandledPromptBehavior", "ignore")
    svc = Service(CHROMEDRIVER, log_output=os.devnull) \
        if "log_output" in Service.__init__.__code__.co_varnames \
        else Service(CHROMEDRIVER, log_path=os.devnull)
    d = webdriver.Chrome(service=svc, options=o)
    d.set_page_load_timeout(scaled(30))
    d.set_script_timeout(scaled(30))
    return d


@pytest.fixture
def make_browser(request):
    """
    Factory: make_browser(name="desktop", phone=False) -> Browser. At
    teardown each is screenshotted (every window), its console checked
    for uncaught errors and CSP refusals, and closed; a failed test also
    leaves <test>-<name>-FAILED.html and .console.txt in the artifacts.
    """
    if MISSING:
        pytest.skip(MISSING)
    test = _safe(request.node.name)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(test + "-*"):
        old.unlink()
    made = []

    def make(name="desktop", phone=False):
        b = Browser(_driver(phone), name, test, phone)
        made.append(b)
        return b

    yield make
    failed = any(getattr(request.node, "rep_" + w, None) is not None and
                 getattr(request.node, "rep_" + w).failed
                 for w in ("setup", "call"))
    problems = []
    for b in made:
        try:
            handles = b.driver.window_handles
        except Exception:
            handles = []
        for i, h in enumerate(handles):
            try:
                b.driver.switch_to.window(h)
            except Exception:
                continue
            b.shot(("FAILED" if failed else "end") +
                   ("-tab%d" % i if len(handles) > 1 else ""))
            if failed:
                base = ARTIFACTS / ("%s-%s-FAILED%s" % (
                    test, b.name, "-tab%d" % i if len(handles) > 1 else ""))
                try:
                    base.with_suffix(".html").write_text(
                        b.driver.page_source)
                except Exception as e:
                    base.with_suffix(".html").write_text(repr(e))
        b.read_console()
        if failed or b.console:
            (ARTIFACTS / ("%s-%s.console.txt" % (test, b.name))).write_text(
                "".join("%s %s %s\n" % (e.get("timestamp"), e.get("level"),
                                        e.get("message"))
                        for e in b.console))
        bad = b.bad_console()
        if bad:
            problems.append("%s: page errors in the console:\n  %s" % (
                b.name, "\n  ".join(e["message"] for e in bad)))
        try:
            b.driver.quit()
        except Exception:
            pass
    if problems and not failed:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def browser(make_browser):
    """A desktop-sized headless chromium (1280x900)."""
    return make_browser("desktop")


@pytest.fixture
def phone_browser(make_browser):
    """A phone-sized headless chromium (390x844, mobile emulation)."""
    return make_browser("phone", phone=True)


def pytest_report_header(config):
    if MISSING:
        return "browser tests: SKIPPED: " + MISSING
    return "browser tests: %s, %s; artifacts in %s" % (
        CHROMIUM, CHROMEDRIVER, ARTIFACTS)

