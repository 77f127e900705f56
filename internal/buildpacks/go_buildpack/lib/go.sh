# Shared by bin/finalize and bin/release.

# go_find prints the stack's Go: $GOROOT/bin/go, /usr/local/go/bin/go, or go on PATH.
go_find() {
  local g
  for g in "${GOROOT:+$GOROOT/bin/go}" /usr/local/go/bin/go "$(command -v go || true)"; do
    if [[ -n $g && -x $g ]]; then
      printf '%s\n' "$g"
      return 0
    fi
  done
  return 1
}

# go_module_path BUILD_DIR prints the module path declared in go.mod.
go_module_path() {
  awk '$1 == "module" { gsub(/"/, "", $2); print $2; exit }' "$1/go.mod"
}

# go_exe_name IMPORT_PATH prints the executable name `go build -o DIR/` gives
# a main package: its last path element, skipping a /vN major version suffix.
go_exe_name() {
  local p=${1%/} last prev
  last=${p##*/}
  if [[ $last =~ ^v[0-9]+$ && $p == */* ]]; then
    prev=${p%/*}
    last=${prev##*/}
  fi
  printf '%s\n' "$last"
}

# go_web_binary BUILD_DIR prints the binary the web process runs: the first
# package of GO_INSTALL_PACKAGE_SPEC (default ".", the module root). Empty
# when that package is a pattern ("./cmd/...") and no single binary was built.
go_web_binary() {
  local build_dir=$1 spec first name
  spec=${GO_INSTALL_PACKAGE_SPEC:-.}
  read -r first _ <<< "$spec"
  case "$first" in
    . | ./) name=$(go_exe_name "$(go_module_path "$build_dir")") ;;
    *...*) name="" ;;
    ./*) name=$(go_exe_name "$(go_module_path "$build_dir")/${first#./}") ;;
    *) name=$(go_exe_name "$first") ;;
  esac
  if [[ -z $name && -d $build_dir/bin ]]; then
    local bins=("$build_dir"/bin/*)
    if [[ ${#bins[@]} -eq 1 && -x ${bins[0]} ]]; then
      name=${bins[0]##*/}
    fi
  fi
  printf '%s\n' "$name"
}
