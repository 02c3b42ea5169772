# bench/lib.sh - shell functions shared by bench/run, bench/alert and
# bench/kannel (sourced, never run): the exit trap, the build, a daemon
# in a temporary directory, fakeprov, and the measurements both scripts
# run: the HTTP ceiling, the API enqueue, the console and Twilio dispatch,
# the fake's raw limit. Each measure_* takes the progress label ("1/6").
#
# The sourcing script sets prog, srcdir, tmp, keep, overrides (an array of
# --set SECTION.KEY=VALUE), daemon_pid= child_pid= fake_pid= (and may set
# extra_pids, an array of more pids to stop), defines
# daemon_config (the config on stdout, for $phase in $ddir), and installs
# the trap: trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM.
# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034  # globals shared with the sourcing script

daemon_wrap=() # what start_daemon runs the daemon under (callgrind_wrap)
# shellcheck source=bench/callgrind.sh
. "$srcdir/bench/callgrind.sh"

die() {
	echo "$prog: $*" >&2
	exit 1
}

# Stops what this script started, by pid, and removes the temp dir.
# shellcheck disable=SC2317  # reached through the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $child_pid ]] && kill -0 "$child_pid" 2>/dev/null; then
		kill "$child_pid" 2>/dev/null || true
		wait "$child_pid" 2>/dev/null || true
	fi
	if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$daemon_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	if [[ -n $fake_pid ]] && kill -0 "$fake_pid" 2>/dev/null; then
		kill -TERM "$fake_pid" 2>/dev/null || true
		wait "$fake_pid" 2>/dev/null || true
	fi
	# more processes a script started (bench/kannel's Kannel boxes)
	local p
	for p in ${extra_pids[@]+"${extra_pids[@]}"}; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in ${extra_pids[@]+"${extra_pids[@]}"}; do
		wait "$p" 2>/dev/null || true
	done
	# the throwaway PostgreSQL cluster (pg_start), kept or not with $tmp's
	# files: its data is only the run's
	if [[ -n ${pg_url:-} ]]; then
		"$srcdir/tests/pg.sh" stop "$pg_url" >/dev/null 2>&1 || true
	fi
	if [[ $keep == true || $rc -ne 0 ]]; then
		echo "$prog: files kept in $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
# run_child OUTFILE CMD...: runs CMD with its output in OUTFILE, in the
# background as child_pid, and waits, so the trap can stop it (bash defers
# traps while a foreground child runs). The redirection stays on the child:
# one on the function call would also swallow the trap's own messages.
run_child() {
	local out=$1
	shift
	"$@" >"$out" 2>&1 &
	child_pid=$!
	local rc=0
	wait "$child_pid" || rc=$?
	child_pid=
	return "$rc"
}

now() { echo "$EPOCHREALTIME"; }
# Evaluates an awk expression; prints it with ${2:-1} decimals. The
# expression is parenthesised: a bare '>' in printf would redirect.
calc() { awk "BEGIN { printf \"%.${2:-1}f\", ($1) }"; }

# --- build ------------------------------------------------------------------
build() {
	local log=$tmp/build.log
	if [[ -n ${OD_BUILDDIR:-} ]]; then
		builddir=$(cd "$OD_BUILDDIR" && pwd)
	else
		builddir=$srcdir/build-bench
		if [[ ! -x $srcdir/configure ]]; then
			echo "$prog: running autoreconf -fi" >&2
			(cd "$srcdir" && autoreconf -fi) >"$log" 2>&1 ||
				{ tail -20 "$log" >&2; die "autoreconf failed"; }
		fi
		if [[ ! -f $builddir/Makefile ]]; then
			echo "$prog: configuring $builddir (-O2, no sanitizers)" >&2
			mkdir -p "$builddir"
			(cd "$builddir" && "$srcdir/configure" CFLAGS="-O2 -g" \
			    --disable-sanitizers) >>"$log" 2>&1 ||
				{ tail -20 "$log" >&2; die "configure failed (see above)"; }
		fi
		echo "$prog: make in $builddir" >&2
		make -C "$builddir" -j"$(nproc)" >>"$log" 2>&1 ||
			{ tail -30 "$log" >&2; die "make failed (see above)"; }
	fi
	make -C "$builddir" -j"$(nproc)" outreachd bench/sqlite_raw \
	    tests/fakes/fakeprov >>"$log" 2>&1 ||
		{ tail -30 "$log" >&2; die "make outreachd bench/sqlite_raw tests/fakes/fakeprov failed in $builddir"; }
	cflags=$(sed -n 's/^CFLAGS = //p' "$builddir/Makefile")
	if grep -q '^SAN_CFLAGS = .*-fsanitize' "$builddir/Makefile"; then
		echo "$prog: warning: $builddir is built with sanitizers; figures are not representative" >&2
		cflags="$cflags (sanitizers)"
	fi
}

# Applies one --set SECTION.KEY=VALUE to the config file $1: replaces the
# key inside its section, or adds it (and the section) if missing.
config_set() {
	local file=$1 spec=$2 sk=${2%%=*}
	local value=${spec#*=} section=${sk%.*} key=${sk##*.}
	awk -v sec="[$section]" -v key="$key" -v val="$value" '
	    function emit() { if (insec && !done) { print key " = " val; done = 1 } }
	    /^[ \t]*$/ { blank++; next }	# held: a new key goes before them
	    /^\[/ { emit(); insec = ($0 == sec) }
	    { for (; blank > 0; blank--) print "" }
	    insec && $1 == key && $2 == "=" { print key " = " val; done = 1; next }
	    { print }
	    END { emit(); if (!done) { print ""; print sec; print key " = " val } }
	' "$file" >"$file.new" && mv "$file.new" "$file"
}

# Starts the daemon of $phase in $ddir (config, log, var/).
start_daemon() {
	local deadline port_line o sec
	token=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
	(umask 077 && mkdir -p "$ddir/var") # members' data: 0700, or the daemon warns
	# PostgreSQL: every node signs links with one key, made once per run
	if [[ ${store_backend:-sqlite} == postgresql && ! -f $ddir/var/email.key ]]; then
		[[ -f $tmp/email.key ]] || (umask 077 &&
		    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/email.key" &&
		    echo >>"$tmp/email.key")
		(umask 077 && cp "$tmp/email.key" "$ddir/var/email.key")
	fi
	# Both files hold the token: 0600 (the daemon warns otherwise).
	(umask 077 && printf 'Authorization: Bearer %s\n' "$token" >"$tmp/auth.header")
	(umask 077 && daemon_config >"$ddir/outreachd.conf")
	for o in "${overrides[@]}"; do
		# a sender's keys go only to the daemon that has that sender
		sec=${o%%=*}
		sec=${sec%.*}
		if [[ $sec == sender\ * ]] &&
		    ! grep -qxF "[$sec]" "$ddir/outreachd.conf"; then
			continue
		fi
		config_set "$ddir/outreachd.conf" "$o"
	done
	chmod 600 "$ddir/outreachd.conf"
	"$builddir/outreachd" --check-config -c "$ddir/outreachd.conf" >"$ddir/check.log" 2>&1 ||
		{ cat "$ddir/check.log" >&2; die "outreachd --check-config rejected the bench config"; }
	# daemon_wrap: a command the daemon runs under (bench/run --callgrind)
	(cd "$ddir" && exec "${daemon_wrap[@]}" \
	    "$builddir/outreachd" -f -c "$ddir/outreachd.conf") \
	    2>"$ddir/outreachd.log" &
	daemon_pid=$!
	deadline=$(($(date +%s) + (${#daemon_wrap[@]} > 0 ? 60 : 10)))
	while :; do
		port_line=$(grep -m1 -o 'http_listening .*port=[0-9]*' "$ddir/outreachd.log" || true)
		[[ -n $port_line ]] && break
		if ! kill -0 "$daemon_pid" 2>/dev/null; then
			tail -20 "$ddir/outreachd.log" >&2
			daemon_pid=
			die "outreachd exited during start (log above)"
		fi
		[[ $(date +%s) -lt $deadline ]] ||
			{ tail -20 "$ddir/outreachd.log" >&2; die "no http_listening line after 10 s"; }
		sleep 0.05
	done
	port=${port_line##*port=}
	base=http://127.0.0.1:$port
}

# The daemon's CPU time so far, in seconds (utime + stime).
daemon_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' \
	    "/proc/$daemon_pid/stat"
}

daemon_alive() {
	kill -0 "$daemon_pid" 2>/dev/null ||
		{ tail -20 "$ddir/outreachd.log" >&2; daemon_pid=; die "outreachd died (log above)"; }
}

api_status() {
	curl -sS --fail --max-time 5 -H @"$tmp/auth.header" "$base/api/v1/status"
}

# The number after KEY= in a "key=value ..." line.
kv_field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$2" | head -1; }

# Prints "commits seconds_sum seconds_max" of the store's group commit,
# from /metrics (no auth).
store_metrics() {
	# /metrics reads SQLite's counts: 503 on PostgreSQL (pg_stats there)
	if [[ ${store_backend:-sqlite} == postgresql ]]; then
		echo "0 0 0"
		return
	fi
	curl -sS --fail --max-time 5 "$base/metrics" | awk '
	    $1 == "outreachd_store_commits_total" { n = $2 }
	    $1 == "outreachd_store_commit_seconds_sum" { sum = $2 }
	    $1 == "outreachd_store_commit_seconds_max" { max = $2 }
	    END { printf "%d %s %s\n", n, sum + 0, max + 0 }'
}

# wrk output field: "Requests/sec:", or a latency percentile ("99%").
wrk_field() { awk -v k="$2" '$1 == k { print $2; exit }' "$1"; }

# Prints "backlog settled stored sent" from a /api/v1/status reply: backlog
# is queued + sending over all channels, settled everything else.
status_counts() {
	jq -r '[([.queue[] | (.queued // 0) + (.sending // 0)] | add // 0),
	    ([.queue[] | to_entries[] | select(.key != "queued" and
	      .key != "sending") | .value] | add // 0),
	    ([.queue[][]] | add // 0),
	    ([.queue[] | .sent // 0] | add // 0)] | @tsv' <<<"$1"
}

# "backlog settled stored sent" of the daemon's store: from its
# /api/v1/status on SQLite; on PostgreSQL (store_backend=postgresql, the
# database at store_url; /api/v1/status is SQLite-only there) from the
# same counts read with psql, the figures of every node of that database.
queue_counts() {
	if [[ ${store_backend:-sqlite} == postgresql ]]; then
		pg_psql "$store_url" "SELECT
		    count(*) FILTER (WHERE status IN ('queued', 'sending')),
		    count(*) FILTER (WHERE status NOT IN ('queued', 'sending')),
		    count(*), count(*) FILTER (WHERE status = 'sent')
		    FROM messages" | tr '|' '\t'
	else
		status_counts "$(api_status)"
	fi
}

# SIGTERM; the daemon must exit 0 within 15 s.
daemon_stop() {
	local rc=0
	kill -TERM "$daemon_pid"
	for _ in $(seq 150); do
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$daemon_pid" 2>/dev/null; then
		die "outreachd did not stop within 15 s of SIGTERM"
	fi
	wait "$daemon_pid" || rc=$?
	daemon_pid=
	[[ $rc -eq 0 ]] || { tail -20 "$ddir/outreachd.log" >&2; die "outreachd exited $rc after SIGTERM"; }
}

# --- the fake provider (5, 6) ---------------------------------------------
# Starts tests/fakes/fakeprov on ephemeral ports with Twilio credentials
# made up for this run; the daemon's [sender tw] points at it.
start_fakeprov() {
	local deadline line
	tw_sid=AC$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	tw_token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	"$builddir/tests/fakes/fakeprov" --port 0 --control-port 0 \
	    --log "$tmp/fakeprov.jsonl" >"$tmp/fakeprov.out" 2>&1 &
	fake_pid=$!
	deadline=$(($(date +%s) + 10))
	until line=$(grep -m1 '^fakeprov listening' "$tmp/fakeprov.out"); do
		kill -0 "$fake_pid" 2>/dev/null ||
			{ cat "$tmp/fakeprov.out" >&2; fake_pid=; die "fakeprov exited during start"; }
		[[ $(date +%s) -lt $deadline ]] || die "fakeprov did not start in 10 s"
		sleep 0.05
	done
	fake_port=$(kv_field port "$line")
	fake_ctl=http://127.0.0.1:$(kv_field control "$line")
	curl -sS --fail --max-time 5 -o /dev/null -H 'Content-Type: application/json' \
	    -d "{\"provider\":\"twilio\",\"account_sid\":\"$tw_sid\",\"auth_token\":\"$tw_token\"}" \
	    "$fake_ctl/config" || die "fakeprov /config failed"
}

fake_stats() {
	curl -sS --fail --max-time 10 "$fake_ctl/stats"
}

# The daemon's VmRSS in KiB.
daemon_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$daemon_pid/status"; }

# --- Twilio dispatch (bench/run step 5) -------------------------------------
# measure_twilio STEP: posts sms_count messages to [sender tw] (wrk +
# post.lua, capped per thread, held by not_before; wrk runs 1.5 times as
# long as $enqueue msgs/s needs), then times the drain through the Twilio
# adapter into fakeprov, sampling the daemon's RSS on every poll. Appends
# to sms_note; reads drain_timeout; STEP labels the progress line ("5/6").
# When set, the functions named by on_drain_start and on_drain_end run
# when the drain starts and ends (bench/kannel --perf).
measure_twilio() {
	local out=$tmp/wrk-post-tw.txt line non per dur nb t0 t1 deadline
	local backlog settled settled0 sent0 sent1 rss posted stored stored0
	per=$(( (sms_count + threads - 1) / threads ))
	sms_count=$((per * threads))
	dur=$(calc "$sms_count * 1.5 / ($enqueue > 0 ? $enqueue : 1000) + 2" 0)
	echo "$prog: $1 Twilio dispatch: posting $sms_count SMS to [sender tw] (wrk ${dur}s), then draining them to fakeprov" >&2
	read -r _ settled0 stored0 sent0 < <(queue_counts) ||
		die "reading the queue counts failed"
	# fakeprov counts since its start (bench/run --store: two daemons)
	tw_fake0=$(fake_stats | jq -r '.accepted.twilio // 0') ||
		die "fakeprov /stats failed"
	nb=$(($(date +%s) + dur + 2))
	OD_BENCH_TOKEN=$token OD_BENCH_RUN=tw-${tmp##*.} OD_BENCH_NOT_BEFORE=$nb \
	    OD_BENCH_SENDER=tw OD_BENCH_MAX_PER_THREAD=$per \
	    run_child "$out" wrk -t"$threads" -c"$connections" -d"${dur}s" \
	    --timeout 10s -s "$srcdir/bench/post.lua" "$base/api/v1/messages" ||
		{ cat "$out" >&2; die "wrk failed"; }
	daemon_alive
	line=$(grep -m1 '^post.lua: responses=' "$out" || true)
	[[ -n $line ]] || { cat "$out" >&2; die "no summary line from post.lua"; }
	posted=$(kv_field status_202 "$line")
	non=$(kv_field non_202 "$line")
	[[ $non -eq 0 ]] || { cat "$out" >&2; die "FAILED: $non POST answers were not 202"; }
	# The daemon's count: wrk misses answers in flight when it stops,
	# and those may still commit (PostgreSQL: a round trip later), so
	# what this step queued is counted again once drained (tw_queued).
	read -r backlog settled _ sent1 < <(queue_counts) ||
		die "reading the queue counts failed"
	tw_queued=$backlog
	[[ $tw_queued -ge $posted ]] ||
		die "FAILED: wrk saw $posted answered 202, the daemon holds $tw_queued"
	[[ $tw_queued -eq $sms_count ]] ||
		sms_note+="$tw_queued of $sms_count enqueued in ${dur}s; "
	[[ $settled -eq $settled0 ]] ||
		sms_note+="WARNING: $((settled - settled0)) sent before their not_before; "
	t1=$(now)
	t0=$(calc "$t1 > $nb ? $t1 : $nb" 6)
	# one reading of the clock: two could make the sleep "-0.001"
	t1=$(now)
	sleep "$(calc "$t0 > $t1 ? $t0 - $t1 : 0" 3)"
	[[ -z ${on_drain_start:-} ]] || "$on_drain_start"
	cpu0=$(daemon_cpu)
	rss_drain_start=$(daemon_rss)
	rss_drain_max=$rss_drain_start
	deadline=$(calc "$t0 + $drain_timeout" 3)
	t1=$t0
	while [[ $backlog -gt 0 ]]; do
		if [[ $(calc "$(now) > $deadline" 0) -eq 1 ]]; then
			sms_note+="NOT drained after ${drain_timeout}s: $backlog left; "
			break
		fi
		sleep "$drain_poll"
		daemon_alive
		rss=$(daemon_rss)
		[[ $rss -le $rss_drain_max ]] || rss_drain_max=$rss
		read -r backlog settled stored sent1 < <(queue_counts) ||
			die "reading the queue counts failed"
		t1=$(now)
	done
	[[ $backlog -gt 0 ]] || tw_queued=$((stored - stored0))
	[[ -z ${on_drain_end:-} ]] || "$on_drain_end"
	rss_drain_end=$(daemon_rss)
	[[ $backlog -gt 0 ]] || t1=$(last_sent_time "$t0" "$t1")
	tw_secs=$(calc "$t1 - $t0" 2)
	tw_cpu=$(calc "$(daemon_cpu) - $cpu0" 2)
	tw_sent=$((sent1 - sent0))
	tw_rate=$(calc "$tw_sent / ($tw_secs > 0 ? $tw_secs : 0.001)")
	tw_fake_accepted=$(fake_stats | jq -r '.accepted.twilio') ||
		die "fakeprov /stats failed"
	tw_fake_accepted=$((tw_fake_accepted - tw_fake0))
	twilio_latency
}

# How often a drain's end is polled for, in seconds. Each poll is a
# /api/v1/status request (a count over the whole messages table on the
# daemon's loop: 12 ms at 100,000 rows) and a curl and a jq process, so
# polling every 100 ms, as these scripts did, took about a tenth of the
# loop and of a CPU from the drain it measured. The drain's end is read
# from the store instead (last_sent_time), so a rare poll loses nothing.
drain_poll=0.5

# last_sent_time T0 T1: the time (s since the epoch) of the latest 'sent'
# history row written after T0, the drain's true end; T1 (the poll that
# found the backlog empty) when the store cannot be read.
last_sent_time() {
	local ms query=(sqlite3 "$ddir/var/outreachd.db")
	if [[ ${store_backend:-sqlite} == postgresql ]]; then
		query=(pg_psql "$store_url")
	elif ! command -v sqlite3 >/dev/null; then
		echo "$2"
		return
	fi
	ms=$("${query[@]}" "SELECT max(created_at) FROM message_events
	    WHERE status = 'sent' AND created_at >= $(calc "$1 * 1000" 0)") || ms=
	if [[ -n $ms ]]; then
		calc "$ms / 1000" 3
	else
		echo "$2"
	fi
}

# p50 / p99 from claim to the provider's acceptance, in ms: per message
# sent, its 'sent' history row's time less its last 'sending' one's (the
# daemon logs one msgs_sent line per batch, the rows are per message).
# The database is read while the daemon runs (WAL readers do not block),
# with sqlite3 or, on PostgreSQL, psql.
twilio_latency() {
	tw_p50=- tw_p99=- tw_lat_n=0
	local query=(sqlite3 "$ddir/var/outreachd.db")
	if [[ ${store_backend:-sqlite} == postgresql ]]; then
		query=(pg_psql "$store_url")
	else
		command -v sqlite3 >/dev/null || return 0
	fi
	read -r tw_p50 tw_p99 tw_lat_n < <(
	    "${query[@]}" "SELECT s.created_at -
		(SELECT max(c.created_at) FROM message_events c
		 WHERE c.message_id = s.message_id AND c.status = 'sending'
		   AND c.id < s.id)
		FROM message_events s JOIN messages m ON m.id = s.message_id
		WHERE s.status = 'sent' AND m.provider = 'twilio'" |
	    sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - 0"; exit }
			p50 = v[int((NR - 1) * 0.50) + 1]
			p99 = v[int((NR - 1) * 0.99) + 1]
			print p50 " " p99 " " NR
		}')
}

stop_fakeprov() {
	local rc=0
	kill -TERM "$fake_pid"
	wait "$fake_pid" || rc=$?
	fake_pid=
	[[ $rc -eq 0 ]] || die "fakeprov exited $rc after SIGTERM"
}

# --- HTTP ceiling (bench/run 1) ---------------------------------------------
# Sets ceiling (req/s), ceiling_p99 and ceiling_cpu (daemon CPU seconds).
measure_ceiling() {
	local out=$tmp/wrk-healthz.txt c0
	echo "$prog: $1 HTTP ceiling: wrk -t$threads -c$connections -d${duration}s GET /healthz" >&2
	c0=$(daemon_cpu)
	run_child "$out" wrk -t"$threads" -c"$connections" -d"${duration}s" \
	    --timeout 10s --latency "$base/healthz" ||
		{ cat "$out" >&2; die "wrk failed"; }
	daemon_alive
	ceiling_cpu=$(calc "$(daemon_cpu) - $c0" 2)
	if grep -q 'Non-2xx' "$out"; then
		cat "$out" >&2
		die "GET /healthz answered non-2xx (above)"
	fi
	ceiling=$(wrk_field "$out" Requests/sec:)
	ceiling_p99=$(wrk_field "$out" 99%)
	[[ -n $ceiling ]] || { cat "$out" >&2; die "cannot read wrk's Requests/sec"; }
}

# --- API enqueue (bench/run 2) ----------------------------------------------
measure_enqueue() {
	local out=$tmp/wrk-post.txt line non
	echo "$prog: $1 API enqueue: wrk -t$threads -c$connections -d${duration}s -s bench/post.lua POST /api/v1/messages" >&2
	not_before=
	[[ $hold == true ]] && not_before=$(($(date +%s) + duration + 2))
	cpu0=$(daemon_cpu)
	OD_BENCH_TOKEN=$token OD_BENCH_RUN=${tmp##*.} OD_BENCH_NOT_BEFORE=$not_before \
	    run_child "$out" wrk -t"$threads" -c"$connections" -d"${duration}s" \
	    --timeout 10s --latency -s "$srcdir/bench/post.lua" "$base/api/v1/messages" ||
		{ cat "$out" >&2; die "wrk failed"; }
	daemon_alive
	enq_cpu=$(calc "$(daemon_cpu) - $cpu0" 2)
	line=$(grep -m1 '^post.lua: responses=' "$out" || true)
	[[ -n $line ]] || { cat "$out" >&2; die "no summary line from post.lua"; }
	accepted=$(kv_field status_202 "$line")
	non=$(kv_field non_202 "$line")
	enqueue=$(kv_field rate_202 "$line")
	enqueue_p50=$(wrk_field "$out" 50%)
	enqueue_p99=$(wrk_field "$out" 99%)
	socket_errors=$(grep -m1 'Socket errors' "$out" || true)
	if [[ $non -ne 0 ]]; then
		cat "$out" >&2
		die "FAILED: $non POST answers were not 202 (statuses above)"
	fi
	[[ $accepted -gt 0 ]] || { cat "$out" >&2; die "no POST was answered 202"; }
}

# --- console dispatch (bench/run 3) -----------------------------------------
# Times the drain of the backlog: from not_before (held mode) or from the
# end of wrk, to the first poll that finds nothing queued or sending.
measure_dispatch() {
	local t0 t1 backlog backlog0 settled settled0 deadline wait_s
	echo "$prog: $1 console dispatch: draining the backlog (polling /api/v1/status every ${drain_poll}s)" >&2
	read -r backlog0 settled0 stored sent < <(queue_counts) ||
		die "reading the queue counts failed"
	read -r enq_commits enq_commit_sum enq_commit_max < <(store_metrics) ||
		die "GET /metrics failed"
	drain_note=
	if [[ -n $not_before ]]; then
		[[ $settled0 -eq 0 ]] ||
			drain_note="WARNING: $settled0 sent before their not_before; "
		wait_s=$(calc "$not_before - $(now)" 3)
		if [[ $(calc "$wait_s > 0" 0) -eq 1 ]]; then
			sleep "$wait_s"
		fi
		t0=$not_before
	else
		t0=$(now)
	fi
	cpu0=$(daemon_cpu)
	backlog=$backlog0
	settled=$settled0
	t1=$t0
	deadline=$(calc "$t0 + $drain_timeout" 3)
	while [[ $backlog -gt 0 ]]; do
		if [[ $(calc "$(now) > $deadline" 0) -eq 1 ]]; then
			drain_note+="NOT drained after ${drain_timeout}s: $backlog left; "
			break
		fi
		sleep "$drain_poll"
		daemon_alive
		read -r backlog settled stored sent < <(queue_counts) ||
			die "reading the queue counts failed"
		t1=$(now)
	done
	[[ $backlog -gt 0 ]] || t1=$(last_sent_time "$t0" "$t1")
	drain_secs=$(calc "$t1 - $t0" 2)
	drain_cpu=$(calc "$(daemon_cpu) - $cpu0" 2)
	if [[ $backlog0 -eq 0 ]]; then
		dispatch=
		drain_note+="no backlog: dispatch kept pace with enqueue"
	else
		dispatch=$(calc "($settled - $settled0) / ($t1 - $t0 > 0 ? $t1 - $t0 : 0.001)")
		drain_note+="$backlog0 queued, drained in ${drain_secs}s"
		[[ -n $not_before ]] && drain_note+=" (held until wrk stopped)"
	fi
	outbox_lines=0
	if [[ -f $ddir/var/sms-outbox.jsonl ]]; then
		outbox_lines=$(wc -l <"$ddir/var/sms-outbox.jsonl")
	fi
}

# --- the fake's raw limit (bench/run 6) -------------------------------------
# wrk POSTs the first request the adapter sent (its path, form body and
# Authorization, read back from fakeprov's log) to the same fakeprov.
measure_fake_limit() {
	local out=$tmp/wrk-fake.txt sample path line
	echo "$prog: $1 fake raw limit: wrk -t$threads -c$connections -d${raw_duration}s -s bench/twilio.lua on fakeprov" >&2
	curl -sS --fail --max-time 10 -X POST -o /dev/null "$fake_ctl/flush" ||
		die "fakeprov /flush failed"
	sample=$(grep -m1 '"type":"request","seq":[0-9]*,"t":[0-9.]*,"provider":"twilio"' \
	    "$tmp/fakeprov.jsonl") || die "no Twilio request in fakeprov's log"
	path=$(jq -r .path <<<"$sample")
	OD_BENCH_TW_BODY=$(jq -r .body <<<"$sample") \
	    OD_BENCH_TW_AUTH=$(jq -r '.headers.Authorization' <<<"$sample") \
	    run_child "$out" wrk -t"$threads" -c"$connections" -d"${raw_duration}s" \
	    --timeout 10s --latency -s "$srcdir/bench/twilio.lua" \
	    "http://127.0.0.1:$fake_port$path" ||
		{ cat "$out" >&2; die "wrk failed"; }
	line=$(grep -m1 '^twilio.lua: responses=' "$out" || true)
	[[ -n $line ]] || { cat "$out" >&2; die "no summary line from twilio.lua"; }
	[[ $(kv_field other "$line") -eq 0 ]] ||
		{ cat "$out" >&2; die "fakeprov answered the recorded request with non-201"; }
	fake_limit=$(kv_field rate_201 "$line")
	fake_p99=$(wrk_field "$out" 99%)
}

# --- perf (bench/alert, bench/kannel --perf) -------------------------------
# perf_start NAME: with perf=true, records the daemon into
# $tmp/perf.NAME.data at ${perf_freq:-97} Hz with DWARF call graphs
# (perf stops by itself when the daemon exits; perf_stop stops it sooner).
perf_start() {
	[[ $perf == true ]] || return 0
	perf record -F "${perf_freq:-97}" --call-graph dwarf,8192 -p "$daemon_pid" \
	    -o "$tmp/perf.$1.data" \
	    >"$tmp/perf.$1.log" 2>&1 &
	perf_pid=$!
	sleep 0.5 # perf attaches
}

perf_stop() {
	[[ -n $perf_pid ]] || return 0
	kill -INT "$perf_pid" 2>/dev/null || true
	wait "$perf_pid" 2>/dev/null || true
	perf_pid=
}

# --- PostgreSQL (bench/run --store postgresql, bench/pgnodes) ---------------
# pg_check: exits 2 with pg.sh's reason when the PostgreSQL server
# binaries are missing (call it before anything is started).
pg_check() {
	local why
	if ! why=$("$srcdir/tests/pg.sh" check 2>&1); then
		echo "$prog: $why" >&2
		echo "$prog: needs the PostgreSQL server binaries (OD_PG_BINDIR, or apt-get install postgresql)" >&2
		exit 2
	fi
}

# pg_start: a throwaway cluster (tests/pg.sh: Unix socket only, fsync and
# synchronous_commit on), stopped by cleanup; its watchdog stops it too if
# this script dies without its trap. Sets pg_url (database "outreachd").
pg_start() {
	pg_check
	pg_bin=$("$srcdir/tests/pg.sh" bindir)
	pg_url=$("$srcdir/tests/pg.sh" start $$) || die "tests/pg.sh start failed"
	echo "$prog: PostgreSQL $("$pg_bin/postgres" --version | awk '{ print $3 }') cluster: $pg_url" >&2
}

# pg_stats: "xids wal_syncs wal_bytes" of the cluster so far: the next
# transaction id (one per write transaction; reading it takes none), the
# WAL fsyncs (pg_stat_wal: a backend's figures reach it within about a
# second) and the WAL position in bytes.
pg_stats() {
	pg_psql "$pg_url" "SELECT pg_snapshot_xmax(pg_current_snapshot()),
	    wal_sync, pg_current_wal_lsn() - '0/0' FROM pg_stat_wal" | tr '|' ' '
}

# pg_cpu: the CPU seconds (utime + stime) of the cluster's processes so
# far: the postmaster and its children (backends live as long as their
# connection: sample while the daemons are connected).
pg_cpu() {
	local d pm pids
	d=${pg_url#*host=}
	d=${d%%&*}
	pm=$(head -n 1 "$d/data/postmaster.pid")
	pids=$(pgrep -P "$pm" | sed 's|.*|/proc/&/stat|' | tr '\n' ' ')
	# shellcheck disable=SC2086  # one path per pid
	cat "/proc/$pm/stat" $pids 2>/dev/null |
	    awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 } END { printf "%.2f", t / hz }'
}

# pg_psql URL SQL: the rows, fields separated by '|', no header.
pg_psql() {
	"$pg_bin/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# pg_fresh_db NAME: creates database NAME in the cluster, prints its URL.
pg_fresh_db() {
	pg_psql "$pg_url" "CREATE DATABASE $1" >/dev/null ||
		die "CREATE DATABASE $1 failed"
	echo "postgresql:///$1?${pg_url#*\?}"
}

# The [store] section of a daemon's config: SQLite in $ddir/var, or the
# PostgreSQL database store_url under node name store_node.
store_section() {
	if [[ ${store_backend:-sqlite} == postgresql ]]; then
		printf '[store]\nbackend = postgresql\nurl = %s\nnode = %s\n' \
		    "$store_url" "${store_node:-bench}"
	else
		printf '[store]\npath = %s\n' "$ddir/var/outreachd.db"
	fi
}
