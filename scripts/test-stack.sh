#!/bin/sh
# test-stack.sh [--background]: the bookworm stack the end-to-end tests push
# to, built by make-stack.sh (the code `make stack` runs) with the runtimes
# in $PANDO_TEST_STACK_RUNTIMES (default node,python,ruby,java) from
# $DEBIAN_MIRROR. Built once per machine, in $PANDO_STACK_CACHE (default
# /var/cache/pando/stacks), under a name keyed by make-stack.sh's content,
# the runtimes and the mirror: a changed script builds a new stack.
# Prints the stack's directory on stdout (make-stack.sh's output goes to
# stderr). With --background, starts the build with its output in DIR.log
# and returns at once; a later test-stack.sh waits for that build
# (make-stack.sh's lock) instead of starting another.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
runtimes=${PANDO_TEST_STACK_RUNTIMES:-node,python,ruby,java}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${PANDO_STACK_CACHE:-/var/cache/pando/stacks}
key=$({
	cat "$here/make-stack.sh"
	echo "$runtimes $mirror"
} | sha256sum | cut -c1-12)
dir=$cache/bookworm-$(echo "$runtimes" | tr ',' '-')-$key
case "${1:-}" in
--background)
	if [ ! -x "$dir/bin/sh" ]; then
		mkdir -p "$cache"
		# Detached from the caller's terminal and output, so `make test`
		# goes on (and its output pipe closes) while the stack builds.
		"$here/make-stack.sh" "$dir" "$mirror" --runtimes "$runtimes" >> "$dir.log" 2>&1 < /dev/null &
		echo "building the test stack in the background: $dir (output in $dir.log)" >&2
	fi
	;;
"") "$here/make-stack.sh" "$dir" "$mirror" --runtimes "$runtimes" >&2 ;;
*)
	echo "usage: test-stack.sh [--background]" >&2
	exit 2
	;;
esac
echo "$dir"
