#!/bin/sh
# run.sh - the browser suite: pytest driving headless chromium through
# chromedriver (python3-selenium) against the real outreachd; the automake
# TESTS entry for tests/browser. See tests/README.md, "Browser tests".
#
# OD_SRCDIR defaults to this script's ../.., OD_BUILDDIR (where outreachd
# and outreachctl were built) to the current directory. Arguments go to
# pytest: run.sh -k simulator -x
#
# Its own pytest process: tests/browser/conftest.py re-exports the
# integration suite's conftest, and two modules named "conftest" cannot
# share one process. Without chromium, chromedriver or python3-selenium
# every test is skipped with that reason (exit 0); 5 ("no tests
# collected") is a failure. Screenshots: $OD_BUILDDIR/test-artifacts/browser.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
: "${OD_SRCDIR:=$(cd "$here/../.." && pwd)}"
: "${OD_BUILDDIR:=$(pwd)}"
export OD_SRCDIR OD_BUILDDIR

# Debian's python3 with python3-pytest and python3-selenium.
PYTHON=${OD_PYTHON:-/usr/bin/python3}
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE

if ! "$PYTHON" -c 'import pytest' 2>/dev/null; then
	echo "run.sh: $PYTHON cannot import pytest" \
	    "(apt-get install python3-pytest)" >&2
	exit 99
fi
if [ ! -x "$OD_BUILDDIR/outreachd" ]; then
	echo "run.sh: no outreachd in OD_BUILDDIR=$OD_BUILDDIR" >&2
	exit 99
fi

where="$OD_SRCDIR/tests/browser"
for a in "$@"; do
	case $a in
	-*) ;;
	*.py | *.py::* | */) where= ;;
	esac
done
# -rs: each skip's reason in the summary (a missing browser says so).
"$PYTHON" -m pytest -q -rs -p no:cacheprovider $where "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
	echo "run.sh: pytest collected no tests" >&2
fi
exit "$rc"
