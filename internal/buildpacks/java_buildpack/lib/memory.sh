# The memory calculator, copied into the droplet and run when the app
# starts (MEMORY_LIMIT is the instance's). As Cloud Foundry's does, it
# reserves memory for everything that is not heap and gives the heap the
# rest, so the JVM as a whole stays under the container's limit:
#   thread stacks   -Xss (1M) x threads: 250 from 1G up, fewer below (a
#                   quarter per MiB of the limit, at least 32), since small
#                   apps run few threads
#   metaspace       14M + 5800 bytes per class loaded, estimated as 3000
#                   (the JDK's) + 35% of the class files in the app
#   code cache      an eighth of the limit, between 16M and 240M (the JVM's
#                   default with tiered compilation)
#   direct memory   10M
#   heap (-Xmx)     what is left; at least 16M, else the app cannot start
# A size the user sets in JAVA_OPTS (-Xmx, -Xss, -XX:MaxMetaspaceSize,
# -XX:ReservedCodeCacheSize, -XX:MaxDirectMemorySize) is kept, counted, and
# not repeated.

# java_size_kib SIZE prints a JVM-style size (1024m, 1G, 512k, bytes) in KiB.
java_size_kib() {
  [[ $1 =~ ^([0-9]{1,12})([kKmMgGtT]?)[bB]?$ ]] || return 1
  local n=$((10#${BASH_REMATCH[1]}))
  case ${BASH_REMATCH[2]} in
    "") echo $((n / 1024)) ;;
    k | K) echo "$n" ;;
    m | M) echo $((n * 1024)) ;;
    g | G) echo $((n * 1024 * 1024)) ;;
    t | T) echo $((n * 1024 * 1024 * 1024)) ;;
  esac
}

# java_size KIB prints KIB as the JVM reads it: M when whole, else K.
java_size() {
  if (($1 % 1024 == 0)); then echo "$(($1 / 1024))M"; else echo "${1}K"; fi
}

# java_memory_flags MEMORY_LIMIT APP_CLASSES JAVA_OPTS prints the JVM
# memory flags, or fails saying why on stderr.
java_memory_flags() {
  local limit=$1 app_classes=${2:-0} total heap stack threads meta code direct opt v out=() opts=()
  local heap_set="" stack_set="" meta_set="" code_set="" direct_set=""
  if ! total=$(java_size_kib "$limit") || ((total == 0)); then
    echo "MEMORY_LIMIT '$limit' is not a memory size (like 1024m)" >&2
    return 1
  fi
  [[ $app_classes =~ ^[0-9]{1,9}$ ]] || app_classes=0
  read -r -a opts <<< "${3:-}"
  for opt in ${opts[@]+"${opts[@]}"}; do
    case $opt in
      -Xmx*) heap_set=${opt#-Xmx} ;;
      -Xss*) stack_set=${opt#-Xss} ;;
      -XX:ThreadStackSize=*) stack_set=${opt#*=}k ;;
      -XX:MaxMetaspaceSize=*) meta_set=${opt#*=} ;;
      -XX:ReservedCodeCacheSize=*) code_set=${opt#*=} ;;
      -XX:MaxDirectMemorySize=*) direct_set=${opt#*=} ;;
    esac
  done
  for v in heap_set stack_set meta_set code_set direct_set; do
    if [[ -n ${!v} ]] && ! java_size_kib "${!v}" > /dev/null; then
      echo "JAVA_OPTS has a size the memory calculator cannot read: '${!v}'" >&2
      return 1
    fi
  done

  stack=1024
  [[ -n $stack_set ]] && stack=$(java_size_kib "$stack_set")
  threads=250
  if ((total < 1024 * 1024)); then
    threads=$((total / 1024 / 4))
    ((threads < 32)) && threads=32
  fi
  if [[ -n $meta_set ]]; then
    meta=$(java_size_kib "$meta_set")
  else
    # 14M + 5800 bytes per loaded class, rounded up to a MiB.
    meta=$(((14 * 1048576 + (3000 + app_classes * 35 / 100) * 5800 + 1048575) / 1048576 * 1024))
  fi
  if [[ -n $code_set ]]; then
    code=$(java_size_kib "$code_set")
  else
    code=$((total / 8 / 1024 * 1024))
    ((code < 16 * 1024)) && code=$((16 * 1024))
    ((code > 240 * 1024)) && code=$((240 * 1024))
  fi
  direct=$((10 * 1024))
  [[ -n $direct_set ]] && direct=$(java_size_kib "$direct_set")

  if [[ -n $heap_set ]]; then
    heap=$(java_size_kib "$heap_set")
  else
    heap=$(((total - threads * stack - meta - code - direct) / 1024 * 1024))
    if ((heap < 16 * 1024)); then
      echo "MEMORY_LIMIT $limit is too small for the JVM: $threads thread stacks of $(java_size "$stack"), metaspace $(java_size "$meta"), code cache $(java_size "$code") and direct memory $(java_size "$direct") leave $(java_size $((heap > 0 ? heap : 0))) of heap, less than 16M. Give the app more memory (e.g. cf push -m 256M), or set smaller sizes in JAVA_OPTS (-Xss, -XX:MaxMetaspaceSize, -XX:ReservedCodeCacheSize)." >&2
      return 1
    fi
    out+=("-Xmx$(java_size "$heap")")
  fi
  [[ -z $stack_set ]] && out+=("-Xss$(java_size "$stack")")
  [[ -z $meta_set ]] && out+=("-XX:MaxMetaspaceSize=$(java_size "$meta")")
  [[ -z $code_set ]] && out+=("-XX:ReservedCodeCacheSize=$(java_size "$code")")
  [[ -z $direct_set ]] && out+=("-XX:MaxDirectMemorySize=$(java_size "$direct")")
  echo "${out[*]}"
}
