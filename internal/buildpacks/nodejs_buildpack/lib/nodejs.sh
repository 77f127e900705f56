# Shared by bin/finalize and bin/release.

# nodejs_web_command BUILD_DIR NODE prints the web start command (see
# webCommand in pkg.js): scripts.start (`npm start`, or the `node FILE` it
# runs), else `node server.js` or `node app.js` when the file exists;
# nothing otherwise. (A Procfile wins over it.)
nodejs_web_command() {
  local bp_dir
  bp_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  "$2" "$bp_dir/lib/pkg.js" web "$1"
}

# nodejs_web_file BUILD_DIR is where bin/finalize leaves the web command for
# bin/release in the same staging (as CF's buildpacks leave their release
# YAML in /tmp), saving release a node start.
nodejs_web_file() {
  local d=${1%/}
  printf '%s' "${TMPDIR:-/tmp}/nodejs_buildpack-web${d//\//_}"
}

# nodejs_restore_modules CACHE_DIR KEY copies the node_modules kept in
# CACHE_DIR into the current directory when it was kept under KEY: as hard
# links where both are on one file system (a staging's are: nothing changes
# the files after, and linking thousands of small files is much faster than
# copying them), else as a copy.
nodejs_restore_modules() {
  local cache=$1 key=$2
  [[ -d $cache/node_modules && -f $cache/node_modules.key && $(< "$cache/node_modules.key") == "$key" ]] || return 1
  if cp -al "$cache/node_modules" node_modules 2> /dev/null; then
    :
  elif ! { rm -rf node_modules && cp -a "$cache/node_modules" node_modules; }; then
    echo "       Warning: copying the kept node_modules failed; installing instead" >&2
    rm -rf node_modules
    return 1
  fi
  # As npm does when it links bins: their targets are executable, also those
  # outside node_modules (a file: dependency is a link into the app, whose
  # files come fresh from the package).
  find node_modules -path '*/.bin/*' -type l -exec chmod +x {} + 2> /dev/null || true
}

# nodejs_save_modules CACHE_DIR KEY keeps a copy of ./node_modules in
# CACHE_DIR under KEY (the key is written last: a half-saved copy is never
# reused).
nodejs_save_modules() {
  local cache=$1 key=$2
  rm -rf "$cache/node_modules" "$cache/node_modules.key"
  [[ -d node_modules ]] || return 0
  if ! cp -a node_modules "$cache/node_modules" || ! printf '%s' "$key" > "$cache/node_modules.key"; then
    rm -rf "$cache/node_modules" "$cache/node_modules.key"
    return 1
  fi
}
