#!/bin/sh
# pg.sh - a throwaway PostgreSQL cluster for tests (issue 13,
# doc/postgresql.md): initdb into a fresh directory under /tmp, a server
# that listens only on a Unix socket in that directory (no TCP), fsync and
# synchronous_commit on, one database "outreachd" owned by role
# "outreachd" (trust authentication: only the socket exists, in a
# directory only its owner may enter).
#
#   pg.sh bindir              prints the directory of the binaries used
#   pg.sh check               0 if the server binaries are here; else prints
#                             why to stderr and exits 77 (skip)
#   pg.sh start [OWNER_PID]   starts a cluster, prints its URL
#                             (postgresql:///outreachd?host=DIR&user=outreachd);
#                             with OWNER_PID, a watchdog stops and removes
#                             the cluster once that process is gone, so a
#                             test that crashes leaves nothing behind
#   pg.sh restart URL|DIR     pg_ctl restart (the tests of reconnection)
#   pg.sh stop URL|DIR        stops the server and removes DIR; safe to
#                             call twice
#   pg.sh run CMD [ARG...]    start; CMD with OD_PG_URL and OD_PG_DIR in its
#                             environment; stop, even when CMD fails; exits
#                             with CMD's status
#
# Never touches a system cluster: every file is in DIR and the server
# listens nowhere else. As root (CI containers), the server runs as the
# "postgres" user Debian's package creates (else "nobody"): initdb and
# postgres refuse to run as root.
#
# Environment: OD_PG_BINDIR (default /usr/lib/postgresql/15/bin, else the
# newest /usr/lib/postgresql/*/bin), OD_PG_TMPDIR (default /tmp; the
# socket path must stay under 108 bytes), OD_PG_SERVER_ENV (start and
# restart: NAME=VALUE lines, one a line, values may hold spaces, put in
# the environment of pg_ctl and so of the server only, through env(1)
# after the switch to the server's user: e.g. LD_PRELOAD and FAKETIME,
# libfaketime's clock for the server, test_alerts.py's quiet hours;
# initdb, psql and pg.sh itself keep the real clock).
set -eu

bindir() {
	if [ -n "${OD_PG_BINDIR:-}" ]; then
		echo "$OD_PG_BINDIR"
		return
	fi
	if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
		echo /usr/lib/postgresql/15/bin
		return
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ]; then
			echo "$d"
			return
		fi
	done
	echo /usr/lib/postgresql/15/bin
}
BIN=$(bindir)
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

check() {
	for p in initdb pg_ctl postgres psql; do
		if [ ! -x "$BIN/$p" ]; then
			echo "pg.sh: no $BIN/$p: PostgreSQL server binaries" \
			    "missing (apt-get install postgresql)" >&2
			return 77
		fi
	done
	return 0
}

# The user the server runs as: ourselves, or a non-root one as root.
pg_user() {
	if [ "$(id -u)" -ne 0 ]; then
		id -un
	elif id postgres >/dev/null 2>&1; then
		echo postgres
	else
		echo nobody
	fi
}

# as_pg CMD...: CMD as the server's user.
as_pg() {
	if [ "$(id -u)" -ne 0 ]; then
		"$@"
	else
		setpriv --reuid="$(pg_user)" --regid="$(id -g "$(pg_user)")" \
		    --clear-groups -- "$@"
	fi
}

# server_ctl ARG...: pg_ctl ARG... as the server's user, with
# OD_PG_SERVER_ENV's variables added to its environment.
server_ctl() {
	old_ifs=$IFS
	IFS='
'
	set -f
	# shellcheck disable=SC2086 # one word a line
	set -- env ${OD_PG_SERVER_ENV:-} "$BIN/pg_ctl" "$@"
	IFS=$old_ifs
	set +f
	as_pg "$@"
}

# The cluster directory of a URL (its host= parameter) or of a directory.
dir_of() {
	case $1 in
	postgresql:*)
		printf '%s\n' "$1" | sed -n 's/.*[?&]host=\([^&]*\).*/\1/p'
		;;
	*) printf '%s\n' "$1" ;;
	esac
}

stop() {
	d=$(dir_of "$1")
	[ -n "$d" ] || { echo "pg.sh: stop: no directory in '$1'" >&2; return 2; }
	[ -d "$d" ] || return 0
	[ -f "$d/pg.sh.cluster" ] ||
	    { echo "pg.sh: stop: $d is not a pg.sh cluster" >&2; return 2; }
	# immediate: the directory goes next, so the shutdown checkpoint
	# (seconds of writes and fsyncs after a big test) would be wasted
	if [ -f "$d/data/postmaster.pid" ]; then
		as_pg "$BIN/pg_ctl" -D "$d/data" -m immediate -w -t 30 stop \
		    >/dev/null 2>&1 || true
	fi
	if [ -f "$d/data/postmaster.pid" ]; then
		pid=$(head -n 1 "$d/data/postmaster.pid")
		kill -9 "$pid" 2>/dev/null || true
	fi
	if [ -f "$d/watchdog.pid" ]; then
		w=$(cat "$d/watchdog.pid")
		[ "$w" = "${WATCHDOG_SELF:-}" ] || kill "$w" 2>/dev/null || true
	fi
	rm -rf "$d"
}

start() {
	owner=${1:-}
	check || return $?
	d=$(mktemp -d "${OD_PG_TMPDIR:-/tmp}/odpg.XXXXXX")
	: >"$d/pg.sh.cluster"
	# From here on, any failure removes everything.
	trap 'stop "$d" >/dev/null 2>&1 || true' EXIT
	if [ "$(id -u)" -eq 0 ]; then
		chown -R "$(pg_user)" "$d"
	fi
	if ! as_pg "$BIN/initdb" -D "$d/data" -U outreachd -A trust -E UTF8 \
	    --lc-collate=C --lc-ctype=C.UTF-8 -N >"$d/initdb.log" 2>&1; then
		cat "$d/initdb.log" >&2
		echo "pg.sh: initdb failed" >&2
		return 1
	fi
	cat >>"$d/data/postgresql.conf" <<EOF
# pg.sh: a throwaway test cluster
listen_addresses = ''
unix_socket_directories = '$d'
unix_socket_permissions = 0700
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 16MB
max_connections = 50
max_wal_size = 256MB
log_min_messages = warning
EOF
	if ! server_ctl -D "$d/data" -l "$d/server.log" -w -t 60 \
	    start >/dev/null 2>&1; then
		cat "$d/server.log" >&2 || true
		echo "pg.sh: the server did not start" >&2
		return 1
	fi
	if ! "$BIN/psql" -X -q -h "$d" -U outreachd -d postgres \
	    -c 'CREATE DATABASE outreachd' >/dev/null 2>"$d/psql.log"; then
		cat "$d/psql.log" >&2
		echo "pg.sh: CREATE DATABASE failed" >&2
		return 1
	fi
	if [ -n "$owner" ]; then
		# The watchdog: detached, holding none of our descriptors, so
		# a caller reading our output sees its end.
		WATCHDOG_SELF= setsid sh -c '
			while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do
				sleep 1
			done
			WATCHDOG_SELF=$$ exec "$0" stop "$2"' "$SELF" "$owner" "$d" \
		    </dev/null >/dev/null 2>&1 &
		echo $! >"$d/watchdog.pid"
	fi
	trap - EXIT
	echo "postgresql:///outreachd?host=$d&user=outreachd"
}

restart() {
	d=$(dir_of "$1")
	[ -f "$d/pg.sh.cluster" ] ||
	    { echo "pg.sh: restart: $d is not a pg.sh cluster" >&2; return 2; }
	server_ctl -D "$d/data" -l "$d/server.log" -m fast -w -t 60 \
	    restart >/dev/null 2>&1
}

run() {
	url=$(start)
	OD_PG_URL=$url
	OD_PG_DIR=$(dir_of "$url")
	export OD_PG_URL OD_PG_DIR
	trap 'stop "$OD_PG_DIR"' EXIT
	trap 'exit 130' INT TERM
	rc=0
	"$@" || rc=$?
	return $rc
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
bindir) echo "$BIN" ;;
check) check ;;
start) start "$@" ;;
stop) [ $# -eq 1 ] || { echo "usage: pg.sh stop URL|DIR" >&2; exit 2; }; stop "$1" ;;
restart) [ $# -eq 1 ] || { echo "usage: pg.sh restart URL|DIR" >&2; exit 2; }; restart "$1" ;;
run) [ $# -ge 1 ] || { echo "usage: pg.sh run CMD [ARG...]" >&2; exit 2; }; run "$@" ;;
*)
	echo "usage: pg.sh bindir | check | start [OWNER_PID] | restart URL|DIR |" \
	    "stop URL|DIR | run CMD [ARG...]" >&2
	exit 2
	;;
esac
