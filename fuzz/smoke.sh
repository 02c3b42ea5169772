#!/bin/sh
# fuzz/smoke.sh - runs each libFuzzer target for FUZZ_SECONDS (default 5)
# over its seeds, from the build directory (`make fuzz-smoke`).
#
#   smoke.sh SEED_DIR TARGET...    e.g. smoke.sh ../fuzz/corpus fuzz/fuzz_csv
#
# New inputs a run finds go to fuzz/corpus-run/<target>/ (kept for the
# next run, never into the seeds); a crash, leak, sanitizer report or
# broken invariant fails the target, with its input saved as
# fuzz/crashes/<target>-crash-* and the run's output in fuzz/<target>.log.
# Prints "PASS: name" or "FAIL: name" per target, then
# "fuzz-smoke: N passed, N failed"; exits 1 if any failed.
set -u
seeds=$1
shift
secs=${FUZZ_SECONDS:-5}
pass=0
fail=0
mkdir -p fuzz/crashes
for t in "$@"; do
	name=$(basename "$t")
	mkdir -p "fuzz/corpus-run/$name"
	log=fuzz/$name.log
	# -timeout: an input taking 10 s is a hang; -rss_limit_mb: the
	# sanitizers' shadow memory included.
	if "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2560 \
	    -print_final_stats=1 -artifact_prefix="fuzz/crashes/$name-" \
	    "fuzz/corpus-run/$name" "$seeds/$name" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "PASS: $name (${runs:-?} inputs in ${secs}s)"
		pass=$((pass + 1))
	else
		echo "FAIL: $name (output: $log)"
		grep -E 'ERROR|fuzz: |SUMMARY|Test unit written' "$log" |
			head -n 20 | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "fuzz-smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
