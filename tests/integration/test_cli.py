"""
test_cli.py - outreachctl, the admin CLI over the HTTP API: send, status,
--help, and the exit status 3 "cannot reach" when the daemon is not there.
"""

import os
import re
import subprocess

from conftest import OUTREACHCTL, TOKEN, free_port, scaled

EX_REFUSED = 1		# outreachctl.c: the daemon said no
EX_UNREACHABLE = 3	# no HTTP answer at all


def ctl(*args, timeout=20):
    return subprocess.run([str(OUTREACHCTL)] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=scaled(timeout))


def test_send_reaches_outbox(daemon):
    p = ctl("-u", daemon.url(), "-t", TOKEN, "send",
            "--to", "+15551239999", "--body", "from the cli")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    m = re.search(r"queued message (\d+)", p.stdout)
    assert m, p.stdout
    mid = int(m.group(1))
    m = daemon.wait_status(mid, "sent")
    assert (m["to"], m["body"]) == ("+15551239999", "from the cli")
    daemon.wait_idle()
    assert [(o["id"], o["to"], o["body"]) for o in daemon.outbox()] == \
        [(mid, "+15551239999", "from the cli")]


def test_send_quiet_wait_stdin(daemon):
    p = subprocess.run(
        [str(OUTREACHCTL), "-u", daemon.url(), "-t", TOKEN, "send", "-q",
         "--wait", "10", "--to", "+15551238888", "--body-file", "-"],
        input="line one\nline two\n\n", capture_output=True, text=True,
        timeout=scaled(20))
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    mid = int(p.stdout.strip().splitlines()[0])	# -q: only the id
    # --wait returned only once the message was sent.
    assert daemon.message(mid)["status"] == "sent"
    assert [o["body"] for o in daemon.outbox() if o["id"] == mid] == \
        ["line one\nline two"]


def test_send_idempotent(daemon):
    args = ["-u", daemon.url(), "-t", TOKEN, "send", "--to", "+15551237777",
            "--body", "once", "--idempotency-key", "ctl-1"]
    p1 = ctl(*args)
    assert p1.returncode == 0, p1.stderr
    mid = int(re.search(r"queued message (\d+)", p1.stdout).group(1))
    p2 = ctl(*args)
    assert p2.returncode == 0, p2.stderr
    assert re.search(r"message %d already exists" % mid, p2.stdout), \
        p2.stdout
    daemon.wait_status(mid, "sent")
    daemon.wait_idle()
    assert [o["id"] for o in daemon.outbox()] == [mid]


def test_send_email(daemon):
    p = ctl("-u", daemon.url(), "-t", TOKEN, "send", "--channel", "email",
            "--to", "carol@example.org", "--subject", "From ctl",
            "--body", "hi")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    mid = int(re.search(r"queued message (\d+)", p.stdout).group(1))
    daemon.wait_status(mid, "sent")
    files = [f.name for f in daemon.mail_dir.glob("*.eml")]
    assert files == ["%d.eml" % mid], files


def test_send_rejected_by_api(daemon):
    p = ctl("-u", daemon.url(), "-t", TOKEN, "send",
            "--to", "not-a-number", "--body", "x")
    assert p.returncode == EX_REFUSED, (p.returncode, p.stderr)
    assert "to:" in p.stderr, p.stderr	# the API's message, shown
    assert daemon.scalar("SELECT count(*) FROM messages") == 0


def test_wrong_token(daemon):
    p = ctl("-u", daemon.url(), "-t", "wrong", "status")
    assert p.returncode == EX_REFUSED, (p.returncode, p.stderr)
    assert "unauthorized" in (p.stderr + p.stdout).lower()


def test_status(daemon):
    mid = daemon.send_sms()
    daemon.wait_status(mid, "sent")
    p = ctl("-u", daemon.url(), "-t", TOKEN, "status")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "0.1.0" in p.stdout, p.stdout
    assert "console" in p.stdout, p.stdout


def test_help():
    p = ctl("--help")
    assert p.returncode == 0, p.stderr
    for word in ("-u", "-t", "send", "status"):
        assert word in p.stdout, (word, p.stdout)


def test_unreachable():
    url = "http://127.0.0.1:%d" % free_port()
    p = ctl("-u", url, "-t", TOKEN, "status")
    assert p.returncode == EX_UNREACHABLE, (p.returncode, p.stderr)
    assert "cannot reach" in p.stderr, p.stderr
    p = ctl("-u", url, "-t", TOKEN, "send", "--to", "+15551230001",
            "--body", "x")
    assert p.returncode == EX_UNREACHABLE, (p.returncode, p.stderr)
    assert "cannot reach" in p.stderr, p.stderr


# ---- where outreachctl finds the daemon ------------------------------------
# -u, then $OUTREACHD_URL, then the URL the daemon wrote to VAR/outreachd.url
# of its config file (-c FILE, else the one outreachd uses by default), then
# the config's [http] listen; the token likewise from the config.

def ctl_in(cwd, *args, env=None, timeout=20):
    """outreachctl run in 'cwd' with no OUTREACHD_* in its environment,
    and no user file of outreachctl's (test_ctl_userconf.py tests those)."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("OUTREACHD_")}
    e["OUTREACHCTL_CONFIG"] = os.devnull
    e.update(env or {})
    return subprocess.run([str(OUTREACHCTL)] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=scaled(timeout), cwd=str(cwd),
                          env=e)


def test_url_and_token_from_the_config(make_daemon, tmp_path):
    # no api_token in the file: the daemon creates VAR/api.token
    d = make_daemon({"http": {"api_token": None}})
    url_file = d.dir / "var" / "outreachd.url"
    assert url_file.read_text() == d.url() + "/\n"
    p = ctl_in(tmp_path, "-c", d.conf_path, "status")
    assert p.returncode == 0, p.stderr
    assert "at %s: ok" % d.url() in p.stdout, p.stdout
    p = ctl_in(tmp_path, "-c", d.conf_path, "send", "--to", "+14155550123",
               "--body", "hi", "--wait", "10")
    assert p.returncode == 0, p.stderr	# --wait: 0 once sent
    # -u and $OUTREACHD_URL come first
    other = "http://127.0.0.1:%d" % free_port()
    for args, env in ((["-u", other], None),
                      ([], {"OUTREACHD_URL": other})):
        p = ctl_in(tmp_path, *args, "-c", d.conf_path, "status", env=env)
        assert p.returncode == EX_UNREACHABLE, (args, p.stderr)
        assert other in p.stderr, p.stderr
    # -t comes before the config's token
    p = ctl_in(tmp_path, "-c", d.conf_path, "-t", "wrong", "status")
    assert p.returncode == EX_REFUSED and "the -t/--token option" in \
        p.stderr, p.stderr
    # a stopped daemon takes its address with it
    assert d.stop() == 0
    assert not url_file.exists()
    p = ctl_in(tmp_path, "-c", tmp_path / "missing.conf", "status")
    assert p.returncode == 2, p.stderr
    assert "missing.conf" in p.stderr, p.stderr


def test_api_token_of_the_config(make_daemon, tmp_path):
    d = make_daemon({"http": {"api_token": "${OD_TEST_TOKEN}"}},
                    start=False)
    d.env["OD_TEST_TOKEN"] = TOKEN
    d.start()
    p = ctl_in(tmp_path, "-c", d.conf_path, "status",
               env={"OD_TEST_TOKEN": TOKEN})
    assert p.returncode == 0, p.stderr
    # without the variable: no token, and the 401 says why
    p = ctl_in(tmp_path, "-c", d.conf_path, "lists")
    assert p.returncode == EX_REFUSED, p.stderr
    assert "OD_TEST_TOKEN, which is not set" in p.stderr, p.stderr


def test_default_config_of_a_source_tree(make_daemon, tmp_path):
    """./bootstrap run: the config in etc/ names a port other than 8080."""
    port = free_port()
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "daemon").mkdir()
    (tree / "daemon" / "main.c").write_text("")
    d = make_daemon({"http": {"listen": "127.0.0.1:%d" % port}},
                    start=False)
    conf = tree / "etc" / "outreachd.conf"
    conf.write_text(d.conf_path.read_text())
    # before the daemon writes its URL file: [http] listen
    p = ctl_in(tree, "status")
    assert p.returncode == EX_UNREACHABLE, p.stderr
    assert "127.0.0.1:%d" % port in p.stderr, p.stderr
    d.start()
    p = ctl_in(tree, "status")
    assert p.returncode == 0, p.stderr
    assert "at http://127.0.0.1:%d: ok" % port in p.stdout, p.stdout


def test_wildcard_listener(make_daemon, tmp_path):
    d = make_daemon({"http": {"listen": "0.0.0.0:0"}}, start=False)
    d.expect_log(r"warn public_url_unset url=http://127\.0\.0\.1:\d+/ ")
    d.start()
    url = (d.dir / "var" / "outreachd.url").read_text().strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:%d/" % d.port, url), url
    p = ctl_in(tmp_path, "-c", d.conf_path, "status")
    assert p.returncode == 0, p.stderr


def test_unknown_command_lists_every_command():
    p = ctl("bogus")
    assert p.returncode == 2, p.stderr
    listed = re.search(r"unknown command 'bogus' \(commands: ([^)]*)\)",
                       p.stderr)
    assert listed, p.stderr
    h = ctl("--help")
    cmds = re.findall(r"^  ([a-z]+) ", h.stdout.split("Commands:\n")[1]
                      .split("\n\n")[0], re.M)
    assert listed.group(1).split(", ") == cmds, (listed.group(1), cmds)
    assert {"members", "lists", "import", "export"} <= set(cmds)
