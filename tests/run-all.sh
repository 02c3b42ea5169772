#!/bin/sh
# run-all.sh - every test of a build tree: unit (Check) and integration
# (pytest). Usage: tests/run-all.sh [BUILDDIR]  (default: ./build)
set -eu
dir=${1:-build}
exec make -C "$dir" check
