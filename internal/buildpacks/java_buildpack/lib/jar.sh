# Shared by bin/detect, bin/finalize and bin/release: finding the app's
# main class in a manifest, with nothing but bash, coreutils, grep and gzip
# (a JRE-only stack has no unzip or jar tool).

# jar_manifest JAR prints JAR's META-INF/MANIFEST.MF (at most 1 MiB of it).
# It finds the entry's local header by its name, then inflates the raw
# deflate data with gzip behind a made-up gzip header (gzip then complains
# about the missing trailer, after writing the data).
jar_manifest() {
  local jar=$1 off start method flags csize extra b
  while IFS=: read -r off _; do
    ((off >= 30)) || continue
    read -r -a b <<< "$(od -An -v -tu1 -j $((off - 30)) -N 30 "$jar" | tr '\n' ' ')"
    ((${#b[@]} == 30)) || continue
    [[ "${b[0]} ${b[1]} ${b[2]} ${b[3]}" == "80 75 3 4" ]] || continue # PK\3\4
    (((b[26] + 256 * b[27]) == 20)) || continue                       # the name's length
    flags=${b[6]}
    method=$((b[8] + 256 * b[9]))
    csize=$((b[18] + 256 * b[19] + 65536 * b[20] + 16777216 * b[21]))
    extra=$((b[28] + 256 * b[29]))
    start=$((off + 20 + extra))
    if ((flags & 1)); then
      return 1 # encrypted
    elif ((method == 0)); then
      tail -c +$((start + 1)) "$jar" | head -c $((csize < 1048576 ? csize : 1048576))
      return 0
    elif ((method == 8)); then
      { printf '\037\213\010\000\000\000\000\000\000\003'; tail -c +$((start + 1)) "$jar" | head -c 4194304; } |
        gzip -dc 2> /dev/null | head -c 1048576 || true
      return 0
    fi
    return 1
  done < <(LC_ALL=C grep -abo 'META-INF/MANIFEST\.MF' "$jar" 2> /dev/null | head -n 16)
  return 1
}

# manifest_attr NAME reads a manifest on stdin and prints the value of the
# main section's attribute NAME (names are case-insensitive; a line starting
# with a space continues the one before).
manifest_attr() {
  LC_ALL=C awk -v key="$(tr '[:upper:]' '[:lower:]' <<< "$1")" '
    function flush() {
      i = index(cur, ":")
      if (i > 0 && tolower(substr(cur, 1, i - 1)) == key && !done) {
        v = substr(cur, i + 1); sub(/^ /, "", v); sub(/[ \t]+$/, "", v); print v; done = 1
      }
      cur = ""
    }
    { sub(/\r$/, "") }
    /^$/ { exit }
    /^ / { cur = cur substr($0, 2); next }
    { flush(); cur = $0 }
    END { flush() }'
}

# java_class_name NAME succeeds when NAME is a plain Java class name.
java_class_name() {
  [[ $1 =~ ^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$ ]]
}

# java_main BUILD_DIR prints how the app starts, as "dir CLASS" for an
# unpacked jar (META-INF/MANIFEST.MF with a Main-Class, as `cf push -p
# app.jar` uploads it) or "jar NAME.jar CLASS" for the first jar at the top
# of BUILD_DIR whose manifest has one. It fails when there is neither.
java_main() {
  local build_dir=$1 main jar
  if [[ -f $build_dir/META-INF/MANIFEST.MF ]]; then
    main=$(head -c 1048576 "$build_dir/META-INF/MANIFEST.MF" | manifest_attr Main-Class)
    if [[ -n $main ]]; then
      printf 'dir %s\n' "$main"
      return 0
    fi
  fi
  for jar in "$build_dir"/*.jar; do
    [[ -f $jar ]] || continue
    main=$(jar_manifest "$jar" | manifest_attr Main-Class) || continue
    if [[ -n $main ]]; then
      printf 'jar %s %s\n' "${jar##*/}" "$main"
      return 0
    fi
  done
  return 1
}

# java_classpath BUILD_DIR prints the -cp of an unpacked jar: the app dir
# and its manifest's Class-Path entries (relative paths, as a jar's are),
# all under $HOME, the app dir at run time. Entries with characters a shell
# would read are left out (and named on stderr).
java_classpath() {
  local cp='$HOME/.' entry
  local -a entries
  read -r -a entries <<< "$(head -c 1048576 "$1/META-INF/MANIFEST.MF" | manifest_attr Class-Path)"
  for entry in "${entries[@]}"; do
    if [[ $entry =~ ^[A-Za-z0-9._/+-]+$ && $entry != /* ]]; then
      cp+=":\$HOME/$entry"
    else
      echo "       Warning: Class-Path entry '$entry' left out: only relative paths of letters, digits and ._/+- are used" >&2
    fi
  done
  printf '%s\n' "$cp"
}

# java_web_command BUILD_DIR prints the web start command, or nothing (with
# the reason on stderr) when the app has no main class it can start.
java_web_command() {
  local build_dir=$1 kind name main
  read -r kind name main <<< "$(java_main "$build_dir")" || true
  case $kind in
    dir)
      main=$name
      if ! java_class_name "$main"; then
        echo "Main-Class '$main' in META-INF/MANIFEST.MF is not a Java class name" >&2
        return 1
      fi
      printf '$HOME/.java-buildpack/start -cp %s %s\n' "$(java_classpath "$build_dir" 2> /dev/null)" "$main"
      ;;
    jar)
      if [[ ! $name =~ ^[A-Za-z0-9._+-]+$ ]]; then
        echo "the jar '$name' has characters a start command cannot use unquoted: rename it (letters, digits and ._+-)" >&2
        return 1
      fi
      printf '$HOME/.java-buildpack/start -jar $HOME/%s\n' "$name"
      ;;
    *)
      return 1
      ;;
  esac
}
