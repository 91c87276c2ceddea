#!/usr/bin/env bash
# Creates the virtual environment with Hive and its test and benchmark tools, showing progress.
#
#   PYTHON=python3.11 CMAKE_ARGS=... hack/venv.sh .venv
#
# The one long step is llama.cpp (the embedded model's server), compiled from source for the
# baseline CPU: about six minutes on two cores the first time, then taken from pip's wheel cache.
# Its compiler progress is shown as percentages so a new user sees it move.
set -euo pipefail

VENV=${1:-.venv}
PYTHON=${PYTHON:-python3.11}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PIP=("$VENV/bin/pip" --disable-pip-version-check)
started=$(date +%s)
log() { printf '[venv %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

log "1/3 virtual environment in $VENV ($($PYTHON --version))"
"$PYTHON" -m venv "$VENV"
"${PIP[@]}" install --quiet --upgrade pip==25.3

llama=$(grep -o 'llama-cpp-python\[server\]==[0-9.]*' "$ROOT/pyproject.toml")
log "2/3 $llama: compiled for the baseline CPU (minutes the first time, then cached by pip)"
# Only the compile here (its dependencies come, pinned, in step 3). pip -v streams the build's
# output; keep CMake's progress, once per 5% more: the Makefile generator prints [ 42%], Ninja
# prints [42/190].
build_log="$VENV/llama-build.log"
"${PIP[@]}" install -v --no-deps "$llama" 2>&1 | tee "$build_log" | awk '
  match($0, /\[ *[0-9]+%\]/) { pct = substr($0, RSTART + 1, RLENGTH - 2) + 0 }
  match($0, /\[[0-9]+\/[0-9]+\]/) {
    split(substr($0, RSTART + 1, RLENGTH - 2), n, "/"); pct = int(100 * n[1] / n[2])
  }
  pct >= last + 5 || (pct == 100 && last < 100) {
    printf "  llama.cpp build %3d%%\n", pct; fflush(); last = pct
  }
  /^Successfully installed/ { print "  " $0; fflush() }
' >&2 || { tail -n 40 "$build_log" >&2; log "llama.cpp failed to build (whole log: $build_log)"; exit 1; }

log "3/3 Hive with its test and benchmark tools"
"${PIP[@]}" install --progress-bar off -e "$ROOT[dev,embedded,bench,privacy]" 2>&1 \
  | grep --line-buffered -v -e '^Requirement already satisfied' -e '^  Using cached' >&2
log "done in $(( $(date +%s) - started ))s"
