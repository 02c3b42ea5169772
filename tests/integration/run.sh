#!/bin/sh
# run.sh - the integration suite (pytest driving the real outreachd binary);
# the automake TESTS entry for tests/integration. See README.md here.
#
# OD_SRCDIR defaults to this script's ../.., OD_BUILDDIR (where outreachd
# and outreachctl were built) to the current directory. Arguments go to
# pytest: run.sh -k idempotency -x
#
# pytest's exit code is passed through: 0 is a pass, anything else fails,
# including 5 ("no tests collected"), which must never count as a pass.
# OD_SUITE names the directory of tests/ to run (default integration;
# tests/browser/run.sh runs its suite through this script).

here=$(cd "$(dirname "$0")" && pwd) || exit 99
: "${OD_SRCDIR:=$(cd "$here/../.." && pwd)}"
: "${OD_BUILDDIR:=$(pwd)}"
export OD_SRCDIR OD_BUILDDIR

# Debian's python3 with python3-pytest, not a pyenv python first on PATH.
PYTHON=${OD_PYTHON:-/usr/bin/python3}
# The source tree may be read-only (make distcheck): no __pycache__ there.
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

# The whole suite unless a test file or directory is named:
# run.sh tests/integration/test_api.py -k idempotency
where="$OD_SRCDIR/tests/${OD_SUITE:-integration}"
for a in "$@"; do
	case $a in
	-*) ;;
	*.py | *.py::* | */) where= ;;
	esac
done
# The whole suite runs its test files on two workers (pytest-xdist,
# python3-pytest-xdist) when it is installed: most of a test's time is
# spent waiting on daemons, peers and clusters, not on the CPU, so two
# files side by side take about half the time on a 2-core machine. A
# file's tests stay together on one worker (--dist loadfile), in order,
# with its module fixtures. OD_TEST_JOBS=1 runs one file at a time; a
# named file runs in-process, as before.
jobs=${OD_TEST_JOBS:-2}
par=
if [ -n "$where" ] && [ "$jobs" -gt 1 ] &&
	"$PYTHON" -c 'import xdist' 2>/dev/null; then
	par="-n $jobs --dist loadfile"
fi
# shellcheck disable=SC2086 # $where and $par are word lists
"$PYTHON" -m pytest -q -p no:cacheprovider $par $where "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
	echo "run.sh: pytest collected no tests" >&2
fi
exit "$rc"
