# bench/callgrind.sh - counting a daemon's instructions over a drain
# with valgrind's callgrind (bench/run --callgrind, bench/smtp
# --callgrind; sourced, never run). CPU times on a shared machine move by
# tens of percent between runs; instruction counts move by under one, so
# a change of a few percent shows here when no timing can show it.
#
# The sourcing script defines die and daemon_pid, and starts the daemon
# under "${daemon_wrap[@]}" after callgrind_wrap FILE.
# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034  # die, daemon_pid, daemon_wrap: shared

# callgrind_wrap FILE: daemon_wrap runs the daemon under callgrind, its
# dumps in FILE (%p: the pid). callgrind_zero at the drain's start and
# callgrind_dump at its end bound what is counted: the first dump
# (FILE.1) holds the drain's instructions only, every thread's.
callgrind_wrap() {
	daemon_wrap=(valgrind --tool=callgrind --callgrind-out-file="$1"
	    --log-file="$1.log")
}
callgrind_zero() {
	callgrind_control -z "$daemon_pid" >/dev/null 2>&1 ||
		die "callgrind_control -z $daemon_pid failed"
}
callgrind_dump() {
	callgrind_control -d "$daemon_pid" >/dev/null 2>&1 ||
		die "callgrind_control -d $daemon_pid failed"
}
# callgrind_ir FILE [FUNCTION]: the instructions of the dump, or the
# inclusive ones of FUNCTION (0 when it did not run).
callgrind_ir() {
	if [[ -z ${2:-} ]]; then
		awk '/^(summary|totals):/ { print $2; exit }' "$1"
		return
	fi
	callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
	    awk -v f="$2" '!found && $0 ~ ":" f " \\[" {
		gsub(",", "", $1); print $1; found = 1 }
		END { if (!found) print 0 }'
}
# callgrind_per_msg FILE N: "A B", the dump's instructions per message of
# N without the status polls' (api_status: each counts the messages table)
# and with them. Dies when the dump is missing.
callgrind_per_msg() {
	local all polls
	[[ -s $1 ]] || die "no callgrind dump $1 (valgrind's log: ${1%.1}.log)"
	all=$(callgrind_ir "$1")
	polls=$(callgrind_ir "$1" api_status)
	awk -v a="$all" -v p="$polls" -v n="$2" \
	    'BEGIN { n = n > 0 ? n : 1; printf "%.0f %.0f\n", (a - p) / n, a / n }'
}
