# Yarn 2+ ("berry") projects, for bin/finalize: the yarn release an app
# commits (yarnPath in .yarnrc.yml, as `yarn set version` leaves it) and
# the linker it asks for. Berry projects carry their own yarn: it runs on
# the stack's node, so the stack needs no yarn of its own.

# nodejs_yarnrc BUILD_DIR KEY prints the top-level scalar KEY of the app's
# .yarnrc.yml (quotes and a trailing comment taken off), nothing if unset.
nodejs_yarnrc() {
  local rc=$1/.yarnrc.yml v
  [[ -f $rc ]] || return 0
  v=$(sed -n "s/^$2:[[:space:]]*//p" "$rc" | head -n 1)
  v=${v%%[[:space:]]#*}
  v=${v%"${v##*[![:space:]]}"}
  [[ $v =~ ^\"(.*)\"$ || $v =~ ^\'(.*)\'$ ]] && v=${BASH_REMATCH[1]}
  printf '%s' "$v"
}

# nodejs_app_yarn BUILD_DIR NODE prints a command that runs the yarn
# release the app's .yarnrc.yml names (yarnPath) on NODE; it returns 1
# when there is none, and 2, saying why, when the file is not in the app.
nodejs_app_yarn() {
  local build_dir=$1 node=$2 rel wrapper
  rel=$(nodejs_yarnrc "$build_dir" yarnPath)
  [[ -n $rel ]] || return 1
  if [[ $rel == /* || /$rel/ == */../* || ! -f $build_dir/$rel ]]; then
    echo "**ERROR** .yarnrc.yml runs yarn from '$rel' (yarnPath), which is not a file in the app. Push the app with its yarn release (keep .yarn/releases out of .cfignore), or run 'yarn set version' again." >&2
    return 2
  fi
  wrapper=${TMPDIR:-/tmp}/nodejs_buildpack-yarn${build_dir//\//_}
  printf '#!/usr/bin/env bash\nexec %q %q "$@"\n' "$node" "$build_dir/$rel" > "$wrapper"
  chmod 0755 "$wrapper"
  printf '%s' "$wrapper"
}

# nodejs_yarn_linker BUILD_DIR prints how yarn 2+ installs the app: the
# app's YARN_NODE_LINKER, else nodeLinker in .yarnrc.yml, else yarn's own
# default, pnp.
nodejs_yarn_linker() {
  local linker=${YARN_NODE_LINKER:-}
  [[ -n $linker ]] || linker=$(nodejs_yarnrc "$1" nodeLinker)
  printf '%s' "${linker:-pnp}"
}

# nodejs_yarn_pnp_cache BUILD_DIR prints the app's yarn cache folder, where
# a pnp install leaves the packages the app loads at run time (.pnp.cjs
# points into it): cacheFolder in .yarnrc.yml, else .yarn/cache.
nodejs_yarn_pnp_cache() {
  local dir
  dir=$(nodejs_yarnrc "$1" cacheFolder)
  dir=${dir:-.yarn/cache}
  [[ $dir == /* ]] || dir=$1/$dir
  printf '%s' "$dir"
}

# nodejs_yarn_pnp_restore APP_CACHE KEPT links (or copies) the package zips
# kept from earlier stagings (KEPT) into the app's yarn cache, so yarn
# fetches none of them again; it prints how many it brought, and notes
# which (nodejs_yarn_pnp_save takes out those the app no longer uses).
nodejs_yarn_pnp_restore() {
  local app_cache=$1 kept=$2 n=0 zip
  mkdir -p "$app_cache"
  : > "$(nodejs_yarn_pnp_restored)"
  for zip in "$kept"/*.zip; do
    [[ -f $zip && ! -e $app_cache/${zip##*/} ]] || continue
    cp -l "$zip" "$app_cache/" 2> /dev/null || cp "$zip" "$app_cache/" || continue
    printf '%s\n' "${zip##*/}" >> "$(nodejs_yarn_pnp_restored)"
    n=$((n + 1))
  done
  printf '%s' "$n"
}

nodejs_yarn_pnp_restored() {
  printf '%s' "${TMPDIR:-/tmp}/nodejs_buildpack-pnp-restored"
}

# nodejs_yarn_pnp_save BUILD_DIR APP_CACHE KEPT, after a pnp install,
# takes the restored zips the app no longer uses (neither named in
# .pnp.cjs nor unplugged) out of its cache, then keeps exactly the app's
# zips in the build cache for the next staging (yarn never changes a zip
# it wrote).
nodejs_yarn_pnp_save() {
  local build_dir=$1 app_cache=$2 kept=$3 zip name refs
  refs=$(grep -o '[^/"]*\.zip' "$build_dir/.pnp.cjs" 2> /dev/null | sort -u) || true
  [[ -f $(nodejs_yarn_pnp_restored) ]] || : > "$(nodejs_yarn_pnp_restored)"
  while IFS= read -r name; do
    [[ -n $name ]] || continue
    grep -qxF -- "$name" <<< "$refs" && continue
    [[ -d $build_dir/.yarn/unplugged/${name%-*} ]] && continue
    rm -f "$app_cache/$name"
  done < "$(nodejs_yarn_pnp_restored)"
  mkdir -p "$kept"
  for zip in "$kept"/*.zip; do
    [[ ! -f $zip || -e $app_cache/${zip##*/} ]] || rm -f "$zip"
  done
  for zip in "$app_cache"/*.zip; do
    [[ -f $zip && ! -e $kept/${zip##*/} ]] || continue
    cp -l "$zip" "$kept/" 2> /dev/null || cp "$zip" "$kept/" || return 1
  done
}

# nodejs_yarn_pnp_profile prints the profile.d lines that let node resolve
# packages through the app's .pnp.cjs (and .pnp.loader.mjs for ES modules),
# as `yarn node` does.
nodejs_yarn_pnp_profile() {
  cat << 'SH'
if [ -f "$HOME/.pnp.cjs" ]; then
  pnp_opts="--require $HOME/.pnp.cjs"
  [ ! -f "$HOME/.pnp.loader.mjs" ] || pnp_opts="$pnp_opts --experimental-loader file://$HOME/.pnp.loader.mjs"
  export NODE_OPTIONS="$pnp_opts${NODE_OPTIONS:+ $NODE_OPTIONS}"
  unset pnp_opts
fi
SH
}

# nodejs_yarn_berry_net sets what yarn 2+ reads in place of the variables
# npm and yarn 1 read: its proxies (YARN_HTTP_PROXY, YARN_HTTPS_PROXY; with
# staging egress the cell's proxy in HTTP(S)_PROXY is the only way out, so
# it wins) and the operator's npm registry (npm_config_registry, unless the
# app sets YARN_NPM_REGISTRY_SERVER; a plain-http one is let through
# yarn's unsafeHttpWhitelist, as npm lets it). No global mirror: it would
# copy every package out of the staging's reach.
nodejs_yarn_berry_net() {
  local reg=${npm_config_registry:-} host
  export YARN_ENABLE_MIRROR=false
  if [[ ${PANDO_STAGING_EGRESS:-off} == on ]]; then
    [[ -z ${HTTP_PROXY:-} ]] || export YARN_HTTP_PROXY=$HTTP_PROXY
    [[ -z ${HTTPS_PROXY:-} ]] || export YARN_HTTPS_PROXY=$HTTPS_PROXY
  fi
  [[ -z ${YARN_NPM_REGISTRY_SERVER:-} && -n $reg ]] || return 0
  export YARN_NPM_REGISTRY_SERVER=${reg%/}
  if [[ $reg == http://* && -z ${YARN_UNSAFE_HTTP_WHITELIST:-} ]]; then
    host=${reg#http://}
    host=${host%%/*}
    host=${host##*@}
    host=${host%:*}
    export YARN_UNSAFE_HTTP_WHITELIST=$host
  fi
}
