"""
smtpserver.py - a recording SMTP server for the SMTP adapter's tests:
Debian's aiosmtpd run in-process (its own thread and asyncio loop) on an
ephemeral loopback port.

    srv = SmtpServer(rcpt_codes={"bad@example.org": "550 5.1.1 no such"})
    srv.start()
    ... srv.messages, srv.sessions ...
    srv.stop()

Every SMTP session that says EHLO/HELO counts once in srv.sessions, and
every message whose DATA the server accepted is kept in srv.messages as a
dict: session (1-based), mail_from, rcpt_tos, data (bytes), tls (bool),
tls_version ("TLSv1.2"; None without TLS), auth (user or None). Knobs:
  rcpt_codes   {address: "451 4.3.0 try later"}: RCPT reply per address
  drop_data    set of 1-based DATA numbers (counted over the server's
               life) after which the connection is cut without a reply;
               drop_keep: whether such a message is still recorded (the
               server queued it but the 250 was lost: a duplicate window)
  hang_data    seconds to wait before answering each DATA
  hold_rcpt    an address whose DATA is not answered until srv.release()
               (srv.holding is set once such a DATA waits)
  tls          a ssl.SSLContext: STARTTLS is offered
  auth         (user, password): AUTH PLAIN/LOGIN offered and required;
               auth_mechs limits what is offered (["LOGIN"])
srv.mail_commands counts MAIL commands, srv.auth_mechs_used the AUTH
mechanisms tried, srv.auth_failures the refused ones.
Helpers make a test CA and a certificate for "localhost" (make_ca()).
"""

import asyncio
import os
import socket
import ssl
import subprocess
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_ca(directory, name="test"):
    """
    Creates a CA and a server certificate for DNS:localhost signed by it
    in directory; returns (ca_pem, cert_pem, key_pem) paths.
    """
    d = str(directory)
    ca_key, ca_crt = os.path.join(d, name + "-ca.key"), \
        os.path.join(d, name + "-ca.pem")
    key, csr, crt = os.path.join(d, name + ".key"), \
        os.path.join(d, name + ".csr"), os.path.join(d, name + ".pem")
    ext = os.path.join(d, name + ".ext")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj",
        "/CN=outreachd test CA " + name)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=localhost")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost\n"
                "basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey",
        ca_key, "-CAcreateserial", "-out", crt, "-days", "2", "-extfile",
        ext)
    return ca_crt, crt, key


def server_tls(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def _tls_version(server):
    if server._tls_protocol is None:
        return None
    obj = server.transport.get_extra_info("ssl_object")
    return obj.version() if obj is not None else "?"


class _Handler:
    def __init__(self, srv):
        self.srv = srv

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        with self.srv.lock:
            self.srv.mail_commands += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        code = self.srv.rcpt_codes.get(address.lower())
        if code is not None:
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        srv = self.srv
        with srv.lock:
            srv.ndata += 1
            n = srv.ndata
        if srv.hang_data:
            await asyncio.sleep(srv.hang_data)
        if srv.hold_rcpt is not None and \
                srv.hold_rcpt in [r.lower() for r in envelope.rcpt_tos]:
            srv.holding.set()
            while not srv.released.is_set():
                await asyncio.sleep(0.01)
        drop = n in srv.drop_data
        if not drop or srv.drop_keep:
            with srv.lock:
                srv.messages.append({
                    "session": getattr(server, "od_session", 0),
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "data": bytes(envelope.original_content
                                  or envelope.content),
                    "tls": server._tls_protocol is not None,
                    "tls_version": _tls_version(server),
                    "auth": getattr(server, "od_user", None),
                })
        if drop:
            server.transport.abort()
            return "421 dropped"
        return "250 2.0.0 Ok: queued as Q%d" % n


class _SMTP(SMTP):
    """Counts sessions (first EHLO/HELO of a connection)."""

    def _count(self):
        if getattr(self, "od_session", 0) == 0:
            with self.od_srv.lock:
                self.od_srv.sessions += 1
                self.od_session = self.od_srv.sessions

    async def smtp_EHLO(self, arg):
        self._count()
        return await super().smtp_EHLO(arg)

    async def smtp_HELO(self, arg):
        self._count()
        return await super().smtp_HELO(arg)


class _Controller(Controller):
    def __init__(self, srv, **kw):
        self.od_srv = srv
        super().__init__(_Handler(srv), **kw)

    def factory(self):
        s = _SMTP(self.handler, **self.SMTP_kwargs)
        s.od_srv = self.od_srv
        return s


class SmtpServer:
    def __init__(self, rcpt_codes=None, drop_data=(), drop_keep=False,
                 hang_data=0, hold_rcpt=None, tls=None, auth=None,
                 auth_mechs=None):
        self.rcpt_codes = {k.lower(): v for k, v in
                           (rcpt_codes or {}).items()}
        self.drop_data = set(drop_data)
        self.drop_keep = drop_keep
        self.hang_data = hang_data
        self.hold_rcpt = hold_rcpt.lower() if hold_rcpt else None
        self.holding = threading.Event()
        self.released = threading.Event()
        self.tls = tls
        self.auth = auth
        self.auth_mechs = auth_mechs  # offer only these (None: all)
        self.auth_mechs_used = []
        self.mail_commands = 0
        self.lock = threading.Lock()
        self.messages = []
        self.sessions = 0
        self.ndata = 0
        self.auth_failures = 0
        self.port = free_port()
        self.controller = None

    def _authenticator(self, server, session, envelope, mechanism,
                       auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and (auth_data.login.decode(), auth_data.password.decode())
              == self.auth)
        with self.lock:
            self.auth_mechs_used.append(mechanism)
        if ok:
            server.od_user = self.auth[0]
        else:
            with self.lock:
                self.auth_failures += 1
        return AuthResult(success=ok, handled=False)

    def start(self):
        kw = dict(hostname="127.0.0.1", port=self.port,
                  server_hostname="smtp.test", ready_timeout=10)
        if self.tls is not None:
            kw.update(tls_context=self.tls)
        if self.auth is not None:
            kw.update(authenticator=self._authenticator,
                      auth_required=True, auth_require_tls=False)
            if self.auth_mechs is not None:
                kw.update(auth_exclude_mechanism=[
                    m for m in ("PLAIN", "LOGIN") if m not in self.auth_mechs])
        self.controller = _Controller(self, **kw)
        self.controller.start()
        # the controller's readiness probe is a connection of its own
        # that never says EHLO: it is not counted
        return self

    def release(self):
        """Answers the DATA held for hold_rcpt (and any later one)."""
        self.released.set()

    def stop(self):
        self.released.set()
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def rcpts(self):
        """Every recipient of every recorded message, in order."""
        with self.lock:
            return [r for m in self.messages for r in m["rcpt_tos"]]
