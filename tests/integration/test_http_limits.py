"""
test_http_limits.py - slow and surplus HTTP clients: [http] request_timeout
is a deadline for a whole request (head and body), not an idle timeout
that each byte restarts; [http] max_connections caps the connections, the
one over the cap is answered 503 at once and closed; the cap is fitted to
the descriptor limit.
"""

import http.client
import socket
import subprocess
import time

from conftest import OUTREACHD, scaled, wait_for

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def closed_by_server(sock, timeout):
    """
    True once the server has closed 'sock' (EOF or reset), reading and
    discarding what arrives; False if it is still open after timeout.
    """
    sock.settimeout(0.1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
    return False


def read_all(sock, timeout):
    """Everything the server sends until it closes (a reset ends it too)."""
    sock.settimeout(scaled(timeout))
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def trickle(sock, piece, timeout=10):
    """
    Sends piece(n) every 0.2 s until the server closes the connection
    (True) or timeout passes (False).
    """
    deadline = time.monotonic() + scaled(timeout)
    n = 0
    while time.monotonic() < deadline:
        try:
            sock.sendall(piece(n))
        except (BrokenPipeError, ConnectionResetError):
            return True
        n += 1
        if closed_by_server(sock, 0.2):
            return True
    return False


def test_trickling_header_lines_hit_the_deadline(make_daemon):
    d = make_daemon({"http": {"request_timeout": "1s"}})
    s = socket.create_connection(("127.0.0.1", d.port))
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        # Each header line restarts an idle timeout, so only a deadline
        # for the whole head closes this connection.
        assert trickle(s, lambda n: b"X-Slow-%d: y\r\n" % n), \
            "a client trickling header lines kept its connection"
    finally:
        s.close()
    wait_for(lambda: "http_request_timeout peer=127.0.0.1 timeout_ms=1000"
             in d.log(), 5, what="the http_request_timeout log line")
    # The server goes on serving.
    assert d.api("GET", "/healthz", token=None).status == 200


def test_trickled_body_hits_the_deadline(make_daemon):
    d = make_daemon({"http": {"request_timeout": "1s"}})
    s = socket.create_connection(("127.0.0.1", d.port))
    try:
        s.sendall(b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n{")
        assert trickle(s, lambda n: b" "), \
            "a client trickling its body kept its connection"
    finally:
        s.close()
    wait_for(lambda: "http_request_timeout" in d.log(), 5,
             what="the http_request_timeout log line")


def test_keepalive_deadline_is_per_request(make_daemon):
    # Prompt requests on one keep-alive connection, for longer than one
    # request_timeout in all: each request gets its own deadline.
    d = make_daemon({"http": {"request_timeout": "1s"}})
    conn = http.client.HTTPConnection("127.0.0.1", d.port,
                                      timeout=scaled(10))
    try:
        sock = None
        end = time.monotonic() + 2.5
        n = 0
        while time.monotonic() < end or n < 3:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            if sock is None:
                sock = conn.sock
            assert conn.sock is sock, "the connection was not kept"
            n += 1
            time.sleep(0.1)
    finally:
        conn.close()


def test_idle_keepalive_connection_is_closed(make_daemon):
    d = make_daemon({"http": {"request_timeout": "1s"}})
    s = socket.create_connection(("127.0.0.1", d.port))
    try:
        s.sendall(HEALTH)
        s.settimeout(scaled(5))
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        assert closed_by_server(s, scaled(10)), \
            "an idle keep-alive connection outlived request_timeout"
    finally:
        s.close()


def open_healthy(port, n):
    """n keep-alive connections, each having answered one /healthz."""
    conns = []
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port,
                                       timeout=scaled(10))
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        assert r.status == 200
        conns.append(c)
    return conns


def test_connection_over_the_cap_gets_503(make_daemon):
    d = make_daemon({"http": {"max_connections": "3"}})
    d.expect_log(r"http_connections_at_limit max=3")
    conns = open_healthy(d.port, 3)
    try:
        extra = socket.create_connection(("127.0.0.1", d.port))
        try:
            try:
                extra.sendall(HEALTH)
            except (BrokenPipeError, ConnectionResetError):
                pass		# refused before the request went out
            answer = read_all(extra, 10)
        finally:
            extra.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), answer
        assert b"Connection: close" in head
        assert b'"code":"unavailable"' in body, body
        # The connections inside the cap still work.
        for c in conns:
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            assert r.status == 200
        assert "http_connections_at_limit max=3" in d.log()
    finally:
        conns.pop().close()

    # One closed: a new connection is served again.
    def served():
        try:
            return d.api("GET", "/healthz", token=None).status == 200
        except (OSError, http.client.HTTPException):
            return False

    wait_for(served, 10, what="a new connection served below the cap")
    wait_for(lambda: "http_connections_below_limit max=3 refused=1"
             in d.log(), 5, what="http_connections_below_limit")
    r = d.api("GET", "/metrics")
    assert r.status == 200, r
    assert 'outreachd_http_requests_total{route="over_capacity",' \
        'status="503"} 1' in r.text, r.text
    for c in conns:
        c.close()


def test_max_connections_fitted_to_descriptor_limit(make_daemon):
    # A hard limit of 700 descriptors cannot hold 5000 connections plus
    # the reserve (256 + [http_client] max_connections 256): fewer are
    # allowed, with a warning naming what to raise.
    d = make_daemon({"http": {"max_connections": "5000"}}, start=False)
    d.expect_log(r"http_max_connections_lowered configured=5000 used=188 "
                 r"nofile=700")
    plain = d.command
    d.command = lambda *extra: (["prlimit", "--nofile=700:700", "--"]
                                + plain(*extra))
    d.start()
    assert "http_max_connections_lowered configured=5000 used=188" \
        in d.log()


def test_soft_descriptor_limit_is_raised(make_daemon):
    # Soft 300, hard 8000: the soft limit is raised for the default 4096
    # connections; nothing is lowered, nothing logged.
    d = make_daemon(start=False)
    plain = d.command
    d.command = lambda *extra: (["prlimit", "--nofile=300:8000", "--"]
                                + plain(*extra))
    d.start()
    with open("/proc/%d/limits" % d.proc.pid) as f:
        line = [x for x in f if x.startswith("Max open files")][0]
    assert line.split()[3] == str(4096 + 256 + 256), line
    assert "http_max_connections_lowered" not in d.log()


def test_request_timeout_bounds(tmp_path):
    conf = tmp_path / "od.conf"
    conf.write_text("[http]\nlisten = 127.0.0.1:0\nrequest_timeout = 50ms\n")
    r = subprocess.run([str(OUTREACHD), "--check-config", "-c", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 78, r
    assert "%s:3:" % conf in r.stderr and "request_timeout" in r.stderr, \
        r.stderr
