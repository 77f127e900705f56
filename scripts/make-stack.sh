#!/bin/sh
# make-stack.sh DIR [MIRROR] [--runtimes LIST]: builds the Debian bookworm
# root filesystem stack apps run on (`pando server --stack bookworm=DIR`):
# a minbase debootstrap, then, with apt in a chroot, the language runtimes
# the builtin buildpacks use and the libraries and tools apps usually need.
# LIST is a comma-separated subset of node,python,ruby,java (the default,
# all four): node/npm/yarn (Debian's yarnpkg, beside Debian's npm: both
# run on Debian's nodejs), python3/pip/venv, ruby/bundler, a headless JRE.
# Built in DIR.tmp and moved into place when complete; an existing DIR is
# left alone (containers may be using it), with a note when it lacks a
# runtime. Builds into one parent directory take turns (a lock on it), so
# a second make-stack.sh for the same DIR waits and then finds it built.
set -eu
usage="usage: make-stack.sh DIR [MIRROR] [--runtimes node,python,ruby,java]"
dir=""
mirror=http://deb.debian.org/debian
runtimes=node,python,ruby,java
positional=0
while [ $# -gt 0 ]; do
	case "$1" in
	--runtimes=*) runtimes=${1#--runtimes=} ;;
	--runtimes)
		[ $# -ge 2 ] || { echo "make-stack.sh: --runtimes needs a list; $usage" >&2; exit 2; }
		runtimes=$2
		shift
		;;
	-*) echo "make-stack.sh: unknown option $1; $usage" >&2; exit 2 ;;
	*)
		positional=$((positional + 1))
		case $positional in
		1) dir=$1 ;;
		2) mirror=$1 ;;
		*) echo "make-stack.sh: too many arguments; $usage" >&2; exit 2 ;;
		esac
		;;
	esac
	shift
done
[ -n "$dir" ] || { echo "$usage" >&2; exit 2; }
suite=bookworm

# What every stack has, then each runtime's packages and the commands that
# show it is there.
packages="ca-certificates tzdata libssl3 libpq5 curl git bash netcat-openbsd procps"
bins=""
for rt in $(echo "$runtimes" | tr ',' ' '); do
	case "$rt" in
	node) packages="$packages nodejs npm yarnpkg" bins="$bins node npm yarnpkg" ;;
	python) packages="$packages python3 python3-pip python3-venv" bins="$bins python3" ;;
	ruby) packages="$packages ruby ruby-bundler ruby-rack ruby-webrick" bins="$bins ruby bundle" ;;
	java) packages="$packages openjdk-17-jre-headless" bins="$bins java" ;;
	*) echo "make-stack.sh: unknown runtime '$rt' in --runtimes $runtimes (known: node,python,ruby,java)" >&2; exit 2 ;;
	esac
done

# check_existing exits when DIR is already a stack, saying which of the
# runtimes asked for it lacks.
check_existing() {
	[ -x "$dir/bin/sh" ] || return 0
	missing=""
	for bin in $bins; do
		[ -e "$dir/usr/bin/$bin" ] || missing="$missing $bin"
	done
	if [ -n "$missing" ]; then
		echo "stack already at $dir, without:$missing; to rebuild it: stop the servers using it, rm -rf $dir, make stack" >&2
	else
		echo "stack already at $dir"
	fi
	exit 0
}
check_existing
if [ "$(id -u)" != 0 ]; then
	echo "make-stack.sh: run as root (debootstrap and chroot)" >&2
	exit 1
fi
PATH="$PATH:/usr/sbin:/sbin"
parent=$(dirname "$dir")
mkdir -p "$parent"
exec 9< "$parent"
if ! flock -n 9; then
	echo "make-stack.sh: another build in $parent is running: waiting for it" >&2
	flock 9
fi
check_existing
command -v debootstrap > /dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap > /dev/null

tmp=$dir.tmp
cleanup() {
	umount "$tmp/proc" 2> /dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup # a build stopped before left its /proc mounted
rm -rf "$tmp"
# dpkg without fsync while building (a failed build is thrown away
# anyway): both stages of debootstrap and the apt install below.
debootstrap --foreign --variant=minbase "$suite" "$tmp" "$mirror"
unsafe_io=$tmp/etc/dpkg/dpkg.cfg.d/make-stack-unsafe-io
echo force-unsafe-io > "$unsafe_io"
chroot "$tmp" /debootstrap/debootstrap --second-stage

cat > "$tmp/etc/apt/sources.list" << LIST
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://security.debian.org/debian-security $suite-security main
LIST
# The JRE's and ca-certificates-java's install scripts need /proc.
mount -t proc proc "$tmp/proc"
chroot "$tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 apt-get update -qq
# shellcheck disable=SC2086 # the package list splits on purpose
chroot "$tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
	apt-get install -y -qq --no-install-recommends $packages
chroot "$tmp" apt-get clean
rm -rf "$tmp/var/lib/apt/lists/"* "$unsafe_io"
umount "$tmp/proc"
sync -f "$tmp"
mv "$tmp" "$dir"
echo "stack built at $dir (runtimes: $runtimes)"
