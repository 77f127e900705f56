#!/bin/sh
# Installs the system packages Pando needs: runc runs the containers,
# e2fsprogs formats their disk quota volumes, busybox-static gives tests a
# tiny static HTTP server. With "test", also what only the tests need:
# docker-registry (a real registry on loopback for the image tests), node
# with npm and yarn, python3 with venv and pip, ruby with bundler (the buildpacks run
# on the host stack's runtimes), debootstrap (make-stack.sh builds the
# stack the tests push to), and a yarn 2+ release from the npm registry
# (berry projects commit theirs; the nodejs_buildpack's tests commit this
# one into their apps), and postgresql (the store tests start a throwaway
# cluster with its initdb and postgres).
# Idempotent; quiet when everything is present.
set -eu
need=""
# The yarn berry release the tests use (PANDO_TEST_YARN_BERRY finds it).
berry_version=4.18.1
berry=/var/cache/pando/test-deps/yarn-$berry_version.cjs

# fetch_berry puts @yarnpkg/cli-dist's yarn.js (the whole yarn in one
# file, what `yarn set version` commits) at $berry, with the host's npm.
fetch_berry() {
	[ "${1:-}" = test ] && [ ! -s "$berry" ] || return 0
	tmp=$(mktemp -d)
	(cd "$tmp" && npm pack --silent "@yarnpkg/cli-dist@$berry_version" > /dev/null && tar xzf yarnpkg-cli-dist-$berry_version.tgz package/bin/yarn.js) ||
		{ rm -rf "$tmp"; echo "pando: could not fetch @yarnpkg/cli-dist@$berry_version with npm" >&2; return 1; }
	mkdir -p "$(dirname "$berry")"
	mv "$tmp/package/bin/yarn.js" "$berry.tmp" && mv "$berry.tmp" "$berry"
	rm -rf "$tmp"
}
if [ "${1:-}" = test ]; then
	[ -x /usr/bin/docker-registry ] || need="$need docker-registry"
	# A node from elsewhere (NodeSource) bundles npm: leave it alone.
	command -v node >/dev/null 2>&1 || need="$need nodejs npm"
	# yarn for the nodejs_buildpack's yarn.lock tests (Debian names it yarnpkg).
	command -v yarn >/dev/null 2>&1 || command -v yarnpkg >/dev/null 2>&1 || need="$need yarnpkg"
	# The java_buildpack runs on the host's java; the tests build jars with javac.
	command -v javac >/dev/null 2>&1 || need="$need default-jdk-headless"
	# Python and Ruby from Debian at /usr/bin, which the host stack gives
	# apps (a python3 elsewhere on PATH, e.g. pyenv's, is not seen there);
	# the tests build a wheel with pip and take rack and webrick from Debian.
	{ /usr/bin/python3 -c 'import venv, ensurepip, setuptools, wheel' && /usr/bin/python3 -m pip --version; } >/dev/null 2>&1 ||
		need="$need python3 python3-venv python3-pip"
	PATH="$PATH:/usr/sbin:/sbin" command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
	{ [ -x /usr/bin/bundle ] && /usr/bin/ruby -e 'gem "rack"; gem "webrick"'; } >/dev/null 2>&1 ||
		need="$need ruby ruby-bundler ruby-rack ruby-webrick"
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need="$need postgresql"
fi
command -v runc >/dev/null 2>&1 || need="$need runc"
[ -x /bin/busybox ] || need="$need busybox-static"
PATH="$PATH:/usr/sbin:/sbin" command -v mkfs.ext4 >/dev/null 2>&1 || need="$need e2fsprogs"
if [ -z "$need" ]; then
	fetch_berry "${1:-}"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "pando: missing packages:$need; run as root (or: sudo apt-get install -y$need)" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "pando: missing packages:$need and no apt-get; install them with your package manager" >&2
	exit 1
fi
echo "pando: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $need >/dev/null
case "$need" in
*docker-registry*)
	# The tests start their own registry; the packaged service is not wanted.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now docker-registry >/dev/null 2>&1 || true
	fi
	;;
esac
case "$need" in
*postgresql*)
	# The tests start their own clusters; the packaged one is not wanted.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now postgresql >/dev/null 2>&1 || true
	fi
	;;
esac
fetch_berry "${1:-}"
