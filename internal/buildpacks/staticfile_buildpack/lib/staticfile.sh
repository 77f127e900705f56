# Shared by bin/finalize and bin/release: reads the app's Staticfile.
#
# Staticfile is "key: value" lines. Supported keys (as CF's staticfile
# buildpack names them): root, pushstate: enabled, directory: visible,
# host_dot_files: enabled, gzip: off. Others are reported and ignored.

sf_trim() {
  local s=$1
  s=${s#"${s%%[![:space:]]*}"}
  s=${s%"${s##*[![:space:]]}"}
  if [[ ${#s} -ge 2 && ( ( $s == \"*\" ) || ( $s == \'*\' ) ) ]]; then
    s=${s:1:${#s}-2}
  fi
  printf '%s' "$s"
}

sf_on() {
  case "${1,,}" in enabled|enable|true|yes|on|visible) return 0 ;; *) return 1 ;; esac
}

# staticfile_parse BUILD_DIR sets SF_ROOT (relative, "" = the app dir itself),
# SF_FLAGS (static-serve flags) and SF_IGNORED (unsupported keys). It fails
# with a message on stderr when the root is unusable.
staticfile_parse() {
  local build_dir=$1 file="$1/Staticfile" line key value root=""
  SF_ROOT="" SF_FLAGS="" SF_IGNORED=()
  local pushstate=false listing=false dotfiles=false gzip=true
  if [[ -f $file ]]; then
    while IFS= read -r line || [[ -n $line ]]; do
      line=${line%$'\r'}
      value=$(sf_trim "$line")
      [[ -z $value || $value == \#* || $value == --- ]] && continue
      if [[ $line != *:* ]]; then
        SF_IGNORED+=("$value")
        continue
      fi
      key=$(sf_trim "${line%%:*}")
      key=${key,,}
      value=${line#*:}
      value=$(sf_trim "${value%%[[:space:]]#*}")
      case "$key" in
        root) root=$value ;;
        pushstate) sf_on "$value" && pushstate=true ;;
        directory) sf_on "$value" && listing=true ;;
        host_dot_files) sf_on "$value" && dotfiles=true ;;
        gzip) sf_on "$value" || gzip=false ;;
        *) SF_IGNORED+=("$key") ;;
      esac
    done < "$file"
  fi

  root=${root#./}
  while [[ $root == */ ]]; do root=${root%/}; done
  [[ $root == . ]] && root=""
  if [[ -n $root ]]; then
    if [[ ! $root =~ ^[A-Za-z0-9._/-]+$ || $root == /* || /$root/ == */../* || /$root/ == */./* ]]; then
      echo "Staticfile root '$root' is invalid: use a relative directory inside the app (letters, digits, '.', '_', '-', '/')" >&2
      return 1
    fi
  fi
  if [[ ! -d $build_dir/$root ]]; then
    echo "Staticfile root '$root' is not a directory in the app" >&2
    return 1
  fi
  SF_ROOT=$root
  $pushstate && SF_FLAGS+=" --pushstate"
  $listing && SF_FLAGS+=" --directory-listing"
  $dotfiles && SF_FLAGS+=" --dotfiles"
  $gzip || SF_FLAGS+=" --gzip=false"
  return 0
}
