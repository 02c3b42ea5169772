#!/bin/sh
# run.sh - the browser suite: pytest driving headless chromium through
# chromedriver (python3-selenium) against the real outreachd; the automake
# TESTS entry for tests/browser. See tests/README.md, "Browser tests".
#
# The same runner as the integration suite (tests/integration/run.sh:
# OD_SRCDIR, OD_BUILDDIR, arguments to pytest, exit codes), in its own
# pytest process: tests/browser/conftest.py re-exports the integration
# suite's conftest, and two modules named "conftest" cannot share one
# process. Without chromium, chromedriver or python3-selenium every test
# is skipped with that reason, which -rs prints in the summary.
# Screenshots: $OD_BUILDDIR/test-artifacts/browser.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
OD_SUITE=browser exec "$here/../integration/run.sh" -rs "$@"
