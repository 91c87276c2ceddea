# Progress of a long script (sourced, not run): what it does now, and a heartbeat while it is quiet.
#
#   source hack/progress.sh
#   progress_start testbin                              # the prefix of this script's lines
#   trap 'rc=$?; set +e; progress_stop; exit $rc' EXIT
#   progress_log "building x"                           # [testbin 12:00:00] building x
#   bash child.sh 2>&1 >/dev/null | progress_steps      # the child's log lines, each a step
#
# Every line shown is remembered as the step under way, the lines of the scripts a step runs
# (hack/node.sh's builds, the images) included, so the heartbeat names what really runs. When a
# step has printed nothing for a whole interval (HIVE_PROGRESS_INTERVAL_S, 30 s), the heartbeat
# says so with the step's elapsed time: a silent terminal always means something is wrong.

progress_start() {  # progress_start NAME
  PROGRESS_NAME=$1
  PROGRESS_FILE=$(mktemp)
  PROGRESS_INTERVAL_S=${HIVE_PROGRESS_INTERVAL_S:-30}
  _progress_heartbeat &
  PROGRESS_HEARTBEAT=$!
}

progress_stop() {
  if [[ -n "${PROGRESS_HEARTBEAT:-}" ]]; then
    pkill -P "$PROGRESS_HEARTBEAT" 2>/dev/null  # its sleep
    kill "$PROGRESS_HEARTBEAT" 2>/dev/null
    wait "$PROGRESS_HEARTBEAT" 2>/dev/null
    PROGRESS_HEARTBEAT=
  fi
  rm -f "${PROGRESS_FILE:-}"
  return 0
}

_progress_remember() {  # _progress_remember STEP
  printf '%s %s\n' "$(date +%s)" "$1" > "$PROGRESS_FILE"
}

progress_log() {  # progress_log MESSAGE...: shown with this script's prefix; the step under way
  printf '[%s %(%H:%M:%S)T] %s\n' "$PROGRESS_NAME" -1 "$*" >&2
  _progress_remember "$*"
}

progress_steps() {  # stdin: another script's log lines ("[node 12:00:00] building x"), shown
  local line
  while IFS= read -r line; do
    printf '%s\n' "$line" >&2
    if [[ $line =~ ^\[([^][ ]+)\ [0-9:]+\]\ +(.*)$ ]]; then
      _progress_remember "${BASH_REMATCH[1]}: ${BASH_REMATCH[2]}"
    elif [[ -n $line ]]; then
      _progress_remember "$line"
    fi
  done
}

_progress_heartbeat() {
  local last="" line since step
  while true; do
    sleep "$PROGRESS_INTERVAL_S" & wait $!
    IFS= read -r line < "$PROGRESS_FILE" || continue
    if [[ $line == "$last" ]]; then  # nothing new for a whole interval
      read -r since step <<< "$line"
      printf '[%s %(%H:%M:%S)T]   ... still %s (%ds)\n' \
        "$PROGRESS_NAME" -1 "$step" $(( $(date +%s) - since )) >&2
    fi
    last=$line
  done
}
