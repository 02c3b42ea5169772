#!/bin/sh
# check-layout.sh - the directory picture has no arrow running back up:
#
#     cli ──> core          daemon ──> adapters, queue ──> core ──> compat
#
# Every quoted #include of a file in core/, adapters/, queue/ and cli/ must
# name a header of its own directory or of one below it. (Headers are
# found by bare name through -I, so only this check keeps the layering.)
# Prints each offending line; exits 1 if there is one.
top=${OD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 99

# dir: the directories whose headers it may include
allowed() {
	case $1 in
	core) echo "core compat" ;;
	adapters) echo "adapters core compat" ;;
	queue) echo "queue core compat" ;;
	cli) echo "cli core compat" ;;
	esac
}

out=$(for dir in core adapters queue cli; do
	for f in "$dir"/*.c "$dir"/*.h "$dir"/*.cc; do
		[ -f "$f" ] || continue
		grep -n '^#include "' "$f" | while IFS= read -r line; do
			hdr=$(printf '%s\n' "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
			[ "$hdr" = autoconf.h ] && continue
			ok=
			for d in $(allowed "$dir"); do
				[ -f "$d/$hdr" ] && ok=1
			done
			[ -n "$ok" ] && continue
			echo "$f:${line%%:*}: includes \"$hdr\", which is not in $(allowed "$dir")"
		done
	done
done)
if [ -n "$out" ]; then
	printf '%s\n' "$out"
	exit 1
fi
echo "layout: no include runs back up"
