#!/bin/sh
# fuzz/smoke.sh - runs each libFuzzer target over its seeds, from the
# build directory (`make fuzz-smoke`): FUZZ_RUNS inputs (default 20000)
# from the fixed random seed FUZZ_SEED (default 1), so the test command
# gives the same verdict on every run and machine; or, with FUZZ_SECONDS
# set, for that long from a random seed (a real fuzzing session).
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
if [ -n "${FUZZ_SECONDS:-}" ]; then
	budget="-max_total_time=$FUZZ_SECONDS"
	what="in ${FUZZ_SECONDS}s"
else
	budget="-runs=${FUZZ_RUNS:-20000} -seed=${FUZZ_SEED:-1}"
	what="from seed ${FUZZ_SEED:-1}"
fi
pass=0
fail=0
mkdir -p fuzz/crashes
for t in "$@"; do
	name=$(basename "$t")
	mkdir -p "fuzz/corpus-run/$name"
	log=fuzz/$name.log
	# -timeout: an input taking 10 s is a hang; -rss_limit_mb: the
	# sanitizers' shadow memory included.
	# shellcheck disable=SC2086 # $budget is two options or one
	if "$t" $budget -timeout=10 -rss_limit_mb=2560 \
	    -print_final_stats=1 -artifact_prefix="fuzz/crashes/$name-" \
	    "fuzz/corpus-run/$name" "$seeds/$name" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "PASS: $name (${runs:-?} inputs $what)"
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
