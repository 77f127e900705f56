# Shared by bin/finalize and bin/release.

# nodejs_web_command BUILD_DIR NODE prints the web start command: `npm start`
# when package.json has scripts.start, else `node server.js` or `node app.js`
# when the file exists; nothing otherwise. (A Procfile wins over it.)
nodejs_web_command() {
  local build_dir=$1 node=$2 bp_dir start
  bp_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  start=$("$node" "$bp_dir/lib/pkg.js" get "$build_dir" start) || return 1
  if [[ -n $start ]]; then
    echo "npm start"
  elif [[ -f $build_dir/server.js ]]; then
    echo "node server.js"
  elif [[ -f $build_dir/app.js ]]; then
    echo "node app.js"
  fi
}

# nodejs_file_sha256 NODE FILE prints FILE's SHA-256 (hex), computed by node
# so the stack needs no sha256sum.
nodejs_file_sha256() {
  "$1" -e 'const c = require("crypto"), fs = require("fs");
process.stdout.write(c.createHash("sha256").update(fs.readFileSync(process.argv[1])).digest("hex"));' "$2"
}

# nodejs_restore_modules CACHE_DIR KEY copies the node_modules kept in
# CACHE_DIR into the current directory when it was kept under KEY.
nodejs_restore_modules() {
  local cache=$1 key=$2
  [[ -d $cache/node_modules && -f $cache/node_modules.key && $(< "$cache/node_modules.key") == "$key" ]] || return 1
  if ! cp -a "$cache/node_modules" node_modules; then
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
