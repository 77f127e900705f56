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
