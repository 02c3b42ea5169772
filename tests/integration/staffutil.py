"""
staffutil.py - helpers of test_auth.py and test_staff.py: staff members
made through the API, password and token logins, and requests through a
web session (cookie + X-CSRF-Token).
"""

import hashlib
import re

COOKIE = "od_session"
PASSWORD = "correct horse battery"


def sha256_hex(s):
    return hashlib.sha256(s.encode()).hexdigest()


def add_staff(d, name="Olga Organizer", email="olga@example.org",
              role="organizer", password=PASSWORD, token=None):
    """POST /api/v1/staff as the daemon's admin token; returns the JSON."""
    body = {"name": name, "email": email, "role": role}
    if password is not None:
        body["password"] = password
    kw = {} if token is None else {"token": token}
    r = d.api("POST", "/api/v1/staff", body, **kw)
    assert r.status == 201, r
    return r.json


def new_token(d, staff_id=None, name="test", token=None):
    """POST /api/v1/tokens; returns (id, token)."""
    body = {"name": name}
    if staff_id is not None:
        body["staff_id"] = staff_id
    kw = {} if token is None else {"token": token}
    r = d.api("POST", "/api/v1/tokens", body, **kw)
    assert r.status == 201, r
    return r.json["id"], r.json["token"]


def set_cookie(r):
    """The Set-Cookie header of a response (asserts there is one)."""
    v = r.headers.get("Set-Cookie")
    assert v, "no Set-Cookie in %r (%r)" % (r, dict(r.headers))
    return v


def cookie_value(r):
    m = re.match(COOKIE + r"=([^;]*)", set_cookie(r))
    assert m, set_cookie(r)
    return m.group(1)


class Session:
    """A logged-in browser: the cookie and the CSRF token."""

    def __init__(self, d, cookie, csrf, staff):
        self.d = d
        self.cookie = cookie
        self.csrf = csrf
        self.staff = staff

    def api(self, method, path, body=None, csrf=True, headers=None):
        h = {"Cookie": "%s=%s" % (COOKIE, self.cookie)}
        if csrf is True and method not in ("GET", "HEAD"):
            h["X-CSRF-Token"] = self.csrf
        elif isinstance(csrf, str):
            h["X-CSRF-Token"] = csrf
        h.update(headers or {})
        return self.d.api(method, path, body, token=None, headers=h)


def login(d, email="olga@example.org", password=PASSWORD, token=None):
    """POST /api/v1/login (password, or token if given): asserts 200."""
    body = {"token": token} if token else {"email": email,
                                           "password": password}
    r = d.api("POST", "/api/v1/login", body, token=None)
    assert r.status == 200, r
    return Session(d, cookie_value(r), r.json["csrf"], r.json["staff"])
