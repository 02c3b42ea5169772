"""
test_ctl_userconf.py - outreachctl's per-user file ($OUTREACHCTL_CONFIG,
else $XDG_CONFIG_HOME/outreachctl/config, else ~/.config/outreachctl/config):
its url and token are used after the command line and the environment and
before the daemon's config file (which -c makes win, the user file then not
being read); a token in a file others can read is refused; a malformed file
or an unknown key is an error at FILE:LINE; a staff member's own token works
through it, and the 401 of a revoked one names the file.

Every run is in an empty directory, so no daemon config or ./var/api.token
can be found from the current directory.
"""

import os
import subprocess

from conftest import OUTREACHCTL, TOKEN, free_port, scaled
from staffutil import add_staff, new_token

EX_REFUSED = 1
EX_USAGE = 2
EX_UNREACHABLE = 3


def run(cwd, *args, env=None):
    """outreachctl in 'cwd' with only the given OUTREACHD_*/XDG/HOME env."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("OUTREACHD_", "OUTREACHCTL_", "XDG_"))
         and k != "HOME"}
    e.update(env or {})
    return subprocess.run([str(OUTREACHCTL)] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=scaled(20), cwd=str(cwd), env=e)


def user_file(home, text, mode=0o600):
    """Writes HOME/.config/outreachctl/config; returns its path."""
    path = home / ".config" / "outreachctl" / "config"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def dirs(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    return home, cwd


def test_url_and_token_from_the_user_file(daemon, tmp_path):
    home, cwd = dirs(tmp_path)
    # without the file: no URL (the default 8080 or nothing) and no token
    p = run(cwd, "lists", env={"HOME": str(home),
                               "OUTREACHD_URL": daemon.url()})
    assert p.returncode == EX_REFUSED, p.stderr
    assert "no API token" in p.stderr, p.stderr
    assert ".config/outreachctl/config" in p.stderr, p.stderr
    path = user_file(home, "# mine\nurl = %s\ntoken = %s\n"
                     % (daemon.url(), TOKEN))
    p = run(cwd, "status", env={"HOME": str(home)})
    assert p.returncode == 0, p.stderr
    assert "at %s: ok" % daemon.url() in p.stdout, p.stdout
    # $XDG_CONFIG_HOME, and $OUTREACHCTL_CONFIG, name it too
    for env in ({"XDG_CONFIG_HOME": str(home / ".config")},
                {"OUTREACHCTL_CONFIG": str(path)},
                {"HOME": str(tmp_path / "nohome"),
                 "OUTREACHCTL_CONFIG": str(path)}):
        p = run(cwd, "lists", env=env)
        assert p.returncode == 0, (env, p.stderr)
    # ${NAME} from the environment, a token_file next to the file
    (path.parent / "token").write_text(TOKEN + "\n")
    user_file(home, "url = ${OD_T_URL}\ntoken_file = token\n", mode=0o644)
    p = run(cwd, "lists", env={"HOME": str(home), "OD_T_URL": daemon.url()})
    assert p.returncode == 0, p.stderr
    # a missing file is no error
    p = run(cwd, "-u", daemon.url(), "-t", TOKEN, "lists",
            env={"OUTREACHCTL_CONFIG": str(tmp_path / "none")})
    assert p.returncode == 0, p.stderr


def test_environment_and_options_come_first(daemon, tmp_path):
    home, cwd = dirs(tmp_path)
    user_file(home, "url = %s\ntoken = %s\n" % (daemon.url(), TOKEN))
    env = {"HOME": str(home)}
    other = "http://127.0.0.1:%d" % free_port()
    for args, extra in ((["-u", other], {}),
                        ([], {"OUTREACHD_URL": other})):
        p = run(cwd, *args, "status", env=dict(env, **extra))
        assert p.returncode == EX_UNREACHABLE, (args, p.stderr)
        assert other in p.stderr, p.stderr
    p = run(cwd, "lists", env=dict(env, OUTREACHD_TOKEN="wrong"))
    assert p.returncode == EX_REFUSED, p.stderr
    assert "$OUTREACHD_TOKEN" in p.stderr, p.stderr
    # -t beats both the environment and the file
    p = run(cwd, "-t", "wrong", "lists",
            env=dict(env, OUTREACHD_TOKEN=TOKEN))
    assert p.returncode == EX_REFUSED, p.stderr
    assert "the -t/--token option" in p.stderr, p.stderr
    p = run(cwd, "-t", TOKEN, "lists", env=dict(env, OUTREACHD_TOKEN="x"))
    assert p.returncode == 0, p.stderr


def test_explicit_daemon_config_wins(make_daemon, tmp_path):
    d = make_daemon()
    home, cwd = dirs(tmp_path)
    other = "http://127.0.0.1:%d" % free_port()
    # a file that would fail either way: wrong URL, wrong token
    user_file(home, "url = %s\ntoken = wrong\n" % other)
    p = run(cwd, "status", env={"HOME": str(home)})
    assert p.returncode == EX_UNREACHABLE and other in p.stderr, p.stderr
    p = run(cwd, "-c", d.conf_path, "lists", env={"HOME": str(home)})
    assert p.returncode == 0, p.stderr
    # with -c the file is not read at all, not even to refuse it
    user_file(home, "bogus = 1\n")
    p = run(cwd, "-c", d.conf_path, "lists", env={"HOME": str(home)})
    assert p.returncode == 0, p.stderr


def test_readable_token_file_refused(daemon, tmp_path):
    home, cwd = dirs(tmp_path)
    path = user_file(home, "url = %s\ntoken = %s\n" % (daemon.url(), TOKEN),
                     mode=0o640)
    for mode in (0o640, 0o604):
        path.chmod(mode)
        p = run(cwd, "lists", env={"HOME": str(home)})
        assert p.returncode == EX_USAGE, (mode, p.stderr)
        assert str(path) in p.stderr and "chmod 600" in p.stderr, p.stderr
        assert TOKEN not in p.stderr + p.stdout
    # a URL alone may be readable by anyone
    user_file(home, "url = %s\n" % daemon.url(), mode=0o644)
    p = run(cwd, "-t", TOKEN, "lists", env={"HOME": str(home)})
    assert p.returncode == 0, p.stderr


def test_malformed_file_refused_at_its_line(tmp_path):
    home, cwd = dirs(tmp_path)
    cases = (
        ("url = http://127.0.0.1:1\nnot a key value line\n", 2,
         "syntax error"),
        ("# comment\nurl = http://127.0.0.1:1\nbogus = 1\n", 3,
         "unknown key 'bogus'"),
        ("[daemon]\nurl = http://127.0.0.1:1\n", 2, "before any section"),
        ("token = ${OD_T_UNSET_VAR}\n", 1, "OD_T_UNSET_VAR is not set"),
    )
    for text, line, why in cases:
        path = user_file(home, text)
        p = run(cwd, "-u", "http://127.0.0.1:1", "-t", "x", "status",
                env={"HOME": str(home)})
        assert p.returncode == EX_USAGE, (text, p.stderr)
        assert "%s:%d: " % (path, line) in p.stderr, (text, p.stderr)
        assert why in p.stderr, (text, p.stderr)
    # both token and token_file: which one was meant?
    user_file(home, "token = a\ntoken_file = t\n")
    p = run(cwd, "status", env={"HOME": str(home)})
    assert p.returncode == EX_USAGE and "not both" in p.stderr, p.stderr


def test_staff_token_through_the_file(daemon, tmp_path):
    home, cwd = dirs(tmp_path)
    staff = add_staff(daemon)	# an organizer
    tid, tok = new_token(daemon, staff_id=staff["id"], name="laptop")
    r = daemon.api("GET", "/api/v1/me", token=tok)
    assert r.status == 200 and r.json["staff"]["id"] == staff["id"], r
    path = user_file(home, "url = %s\ntoken = %s\n" % (daemon.url(), tok))
    env = {"HOME": str(home)}
    p = run(cwd, "status", env=env)
    assert p.returncode == 0, p.stderr
    p = run(cwd, "-j", "token", "list", env=env)
    assert p.returncode == 0, p.stderr
    assert "laptop" in p.stdout, p.stdout
    # the daemon takes us for the organizer, not an admin: staff add is
    # refused, and made with the admin token from the environment
    add = ("staff", "add", "--name", "Bo", "--email", "bo@example.org",
           "--role", "organizer")
    p = run(cwd, *add, env=env)
    assert p.returncode == EX_REFUSED and "403" in p.stderr, p.stderr
    p = run(cwd, *add, env=dict(env, OUTREACHD_TOKEN=TOKEN))
    assert p.returncode == 0, p.stderr
    # revoked: the 401 names the file, never the token
    r = daemon.api("DELETE", "/api/v1/tokens/%d" % tid)
    assert r.status in (200, 204), r
    p = run(cwd, "lists", env=env)
    assert p.returncode == EX_REFUSED, p.stderr
    assert "unauthorized" in p.stderr and str(path) in p.stderr, p.stderr
    assert "token create" in p.stderr, p.stderr
    assert tok not in p.stderr + p.stdout
