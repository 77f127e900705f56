#!/bin/sh
# make-stack.sh DIR [MIRROR]: builds the Debian bookworm root filesystem
# stack apps run on (`pando server --stack bookworm=DIR`): a minbase
# debootstrap, then, with apt in a chroot, the language runtimes the builtin
# buildpacks use (node/npm, python3/pip/venv, ruby/bundler, a headless JRE)
# and the libraries and tools apps usually need. Built in DIR.tmp and moved
# into place when complete; an existing DIR is left alone (containers may
# be using it), with a note when it lacks a runtime.
set -eu
dir=${1:?usage: make-stack.sh DIR [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
suite=bookworm
packages="ca-certificates tzdata libssl3 libpq5 curl git bash netcat-openbsd procps
nodejs npm python3 python3-pip python3-venv ruby ruby-bundler ruby-rack ruby-webrick openjdk-17-jre-headless"

if [ -x "$dir/bin/sh" ]; then
	missing=""
	for bin in node npm python3 ruby bundle java; do
		[ -e "$dir/usr/bin/$bin" ] || missing="$missing $bin"
	done
	if [ -n "$missing" ]; then
		echo "stack already at $dir, without:$missing; to rebuild it: stop the servers using it, rm -rf $dir, make stack" >&2
	else
		echo "stack already at $dir"
	fi
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "make-stack.sh: run as root (debootstrap and chroot)" >&2
	exit 1
fi
PATH="$PATH:/usr/sbin:/sbin"
command -v debootstrap > /dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap > /dev/null

tmp=$dir.tmp
cleanup() {
	umount "$tmp/proc" 2> /dev/null || true
}
trap cleanup EXIT
rm -rf "$tmp"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase "$suite" "$tmp" "$mirror"

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
rm -rf "$tmp/var/lib/apt/lists/"*
umount "$tmp/proc"
mv "$tmp" "$dir"
echo "stack built at $dir"
