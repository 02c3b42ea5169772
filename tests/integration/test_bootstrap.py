"""
test_bootstrap.py - ./bootstrap's build step configures a build directory
again when it was configured with other arguments (./bootstrap test after
./bootstrap run must build with -Werror), after a make clean, and leaves
it alone when the arguments are the same; ./bootstrap test's closing line
counts the browser tests with the others.

The real bootstrap runs in a scratch tree whose configure, make targets,
dpkg-query and autoreconf are stubs that log what they were asked: no
package is installed and nothing is compiled.
"""

import os
import shutil
import subprocess

from conftest import SRCDIR, scaled

# configure: records its arguments and writes a config.status that prints
# them back quoted, as autoconf's does, and a Makefile whose targets log
# (check writes the two runners' logs bootstrap reads).
CONFIGURE = r"""#!/bin/sh
echo "configure $*" >> ../calls.log
{
	echo '#!/bin/sh'
	printf 'echo "'
	for a in "$@"; do printf "'%s' " "$a"; done
	echo '"'
} > config.status
chmod +x config.status
cat > Makefile <<'MK'
all clean fuzz-smoke:
	echo "make $@" >> ../calls.log
check:
	echo "make $@" >> ../calls.log
	mkdir -p tests/unit tests/integration
	echo 'Checks: 1, Failures: 0, Errors: 0' > tests/unit/check_main.log
	echo '1 passed in 0.01s' > tests/integration/run.sh.log
MK
"""


def stub(path, text):
    path.write_text(text)
    path.chmod(0o755)


def tree(tmp_path):
    t = tmp_path / "tree"
    t.mkdir()
    shutil.copy(SRCDIR / "bootstrap", t / "bootstrap")
    (t / "configure.ac").write_text("")
    stub(t / "configure", CONFIGURE)
    os.utime(t / "configure.ac", (1, 1))	# older than configure
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    stub(bin_ / "dpkg-query", "#!/bin/sh\necho 'install ok installed'\n")
    stub(bin_ / "autoreconf", "#!/bin/sh\nexit 1\n")
    return t, bin_


def run(t, bin_, *args):
    env = dict(os.environ, PATH="%s:%s" % (bin_, os.environ["PATH"]))
    p = subprocess.run(["./bootstrap"] + list(args), cwd=str(t), env=env,
                       capture_output=True, text=True, timeout=scaled(60))
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    log = (t / "calls.log").read_text().splitlines()
    (t / "calls.log").unlink()
    return log, p.stderr


def test_build_reconfigures_when_the_arguments_differ(tmp_path):
    t, bin_ = tree(tmp_path)
    log, _ = run(t, bin_, "build")
    assert log == ["configure -q", "make all"], log
    # the same arguments again: configured already
    log, _ = run(t, bin_, "build")
    assert log == ["make all"], log
    # ./bootstrap test wants -Werror: make clean, then configure with it
    log, err = run(t, bin_, "test")
    assert log[:3] == ["make clean", "configure -q --enable-werror",
                       "make all"], (log, err)
    assert "make check" in log, log
    assert "configured with '', now '--enable-werror'" in err, err
    # and the next test run keeps that build
    log, _ = run(t, bin_, "test")
    assert log[0] == "make all" and "make clean" not in log, log
    assert not [x for x in log if x.startswith("configure")], log
    # back to run's arguments: configured again
    log, _ = run(t, bin_, "build")
    assert log == ["make clean", "configure -q", "make all"], log


def test_closing_line_counts_the_browser_tests(tmp_path):
    """./bootstrap test's closing line adds the browser suite's pytest
    line (tests/browser/run.sh.log) to the unit and integration counts."""
    t, bin_ = tree(tmp_path)
    stub(t / "configure", CONFIGURE.replace(
        "\techo '1 passed in 0.01s' > tests/integration/run.sh.log\n",
        "\techo '1 passed in 0.01s' > tests/integration/run.sh.log\n"
        "\tmkdir -p tests/browser\n"
        "\techo '1 failed, 2 passed, 3 skipped in 9.1s' > "
        "tests/browser/run.sh.log\n"))
    env = dict(os.environ, PATH="%s:%s" % (bin_, os.environ["PATH"]))
    p = subprocess.run(["./bootstrap", "test"], cwd=str(t), env=env,
                       capture_output=True, text=True, timeout=scaled(60))
    err = p.stderr
    assert p.returncode == 0, (p.stdout, err)
    assert "browser (pytest, headless chromium): 1 failed, 2 passed, " \
        "3 skipped" in err, err
    closing = [x for x in p.stdout.splitlines() if x.startswith("tests: ")]
    # unit 1 + integration 1 + browser 2 passed; the browser's 1 failed
    # (fuzz targets: none ran, the stub's fuzz-smoke prints no PASS line)
    assert closing == ["tests: 4 passed, 1 failed"], err
