#!/usr/bin/env bash
# Builds the Hive operator/agent image (what Dockerfile describes) as an OCI archive, with
# mmdebstrap and buildah: no registry, no daemon, no docker, and no second compile of llama.cpp.
#
#   hack/build-image.sh          build if missing, print the archive's path
#   hack/build-image.sh --print  print the archive's path and image name, build nothing
#
# 1. Root filesystem: Debian bookworm (mmdebstrap, `essential` variant, no docs, man pages or
#    locales) with python3 (bookworm's 3.11) and the C++ runtime llama.cpp links against; cached
#    by the hash of its recipe in ${XDG_CACHE_HOME:-~/.cache}/hive/image-rootfs/<hash>/rootfs,
#    as sandbox-images/build-rootfs.sh does for the sandbox.
# 2. Wheels: Hive's own, built on the host with the venv's pip (--no-deps, from a copy of the
#    tree); the llama-cpp-python wheel that `make venv` compiled, taken from pip's wheel cache
#    (the host is bookworm with the same CPython 3.11 ABI, so it runs in the rootfs); and every
#    pinned dependency of Hive and of llama-cpp-python[server]==<the pyproject pin>, binary only,
#    resolved by pip run by the image's own python3 in a chroot, because environment markers
#    must see bookworm's 3.11.2, not the venv's 3.11.x (redis wants async-timeout below 3.11.3).
#    That step downloads through the host's index, CA bundle and pip cache; its wheels are cached
#    by the pins and the rootfs key in ~/.cache/hive/image-wheels/<hash>.
# 3. Install: pip, run from its wheel by Debian's python3 in the chroot, with --no-index: the
#    install scheme (/usr/local/lib/python3.11/dist-packages) and the scripts' shebang
#    (/usr/bin/python3) are that interpreter's own, which an install from the host's Python
#    (--target/--prefix) gets wrong. `hive --version` and an import of llama.cpp's server check it.
# 4. The models (hack/models.sh, fetched if missing) at /opt/hive/models/: the chat model's GGUF,
#    and the embedding model's model.onnx and tokenizer.json in all-MiniLM-L6-v2-onnx-int8/
#    (HIVE_AGENT__EMBEDDINGS__MODEL_DIR: an agent with semantic memory embeds in its pod), the
#    spaCy English pipeline in en_core_web_sm-3.8.0/ (HIVE_PRIVACY__MODEL_DIR: a team's
#    spec.privacy is applied in its pods, with the `privacy` extra's Presidio and spaCy), and
#    the Dockerfile's ENTRYPOINT ["hive"], CMD ["operator"], HIVE_EMBEDDED_MODEL, USER
#    65532:65532, WORKDIR /.
#
# Output, under testbin's bin folder (hack/testbin.sh --print):
#   images/hive.oci.tar   the archive, tagged localhost/hive:<key>
#   images/hive.image     that image name, one line
# <key> hashes the rootfs recipe, pyproject.toml, the operator/ tree, the model's SHA-256 and this
# script, so a second run with nothing changed only checks the key (well under a second).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${HIVE_TESTBIN_DIR:-$ROOT/.testbin}
BIN=$(bash "$ROOT/hack/testbin.sh" --print)
ARCHIVE="$BIN/images/hive.oci.tar"
NAME_FILE="$BIN/images/hive.image"
MODEL_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_IN_IMAGE=/opt/hive/models/$MODEL_NAME
EMBEDDINGS_IN_IMAGE=/opt/hive/models/all-MiniLM-L6-v2-onnx-int8
SPACY_DIR=en_core_web_sm-3.8.0
SPACY_IN_IMAGE=/opt/hive/models/$SPACY_DIR
PIP="$ROOT/.venv/bin/pip"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/hive

SUITE=bookworm
MIRROR=${HIVE_SANDBOX_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,libstdc++6,libgomp1,ca-certificates
ROOTFS_OPTS=(--variant=essential --include="$PACKAGES"
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --customize-hook='rm -rf "$1/var/lib/apt/lists" "$1/var/cache/apt" "$1/var/log"/*')
ROOTFS_KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "${ROOTFS_OPTS[@]}" | sha256sum | cut -c1-16)
ROOTFS="$CACHE/image-rootfs/$ROOTFS_KEY/rootfs"

LLAMA_PIN=$(sed -n 's/^\s*"\(llama-cpp-python\[server\]==[^"]*\)".*/\1/p' "$ROOT/pyproject.toml")
# the [project] dependencies: every quoted pin between `dependencies = [` and its `]`
DEPS=$(sed -n '/^dependencies = \[/,/^\]/s/^\s*"\([^"]*\)".*/\1/p' "$ROOT/pyproject.toml")
# and the `privacy` extra's pins (Presidio, spaCy): agent pods apply their team's spec.privacy
DEPS="$DEPS $(sed -n '/^privacy = \[/,/^\]/s/^\s*"\([^"]*\)".*/\1/p' "$ROOT/pyproject.toml")"
PIP_VERSION=$("$ROOT/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("pip"))' \
  2>/dev/null || echo "no venv")
WHEELS_KEY=$(echo "$ROOTFS_KEY $DEPS $LLAMA_PIN $PIP_VERSION" | sha256sum | cut -c1-16)
WHEELS="$CACHE/image-wheels/$WHEELS_KEY"
MODEL_SHA=$(sed -n 's/^\(GGUF\|EMBEDDING_ONNX\|EMBEDDING_TOKENIZER\|SPACY_WHEEL\)_SHA256=\([0-9a-f]*\).*/\2/p' \
  "$ROOT/hack/models.sh" | tr '\n' ' ')
SOURCE_KEY=$(cd "$ROOT" && find operator -type f ! -name '*.pyc' ! -path '*/__pycache__/*' \
  ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
KEY=$( { echo "$ROOTFS_KEY $WHEELS_KEY $SOURCE_KEY $MODEL_SHA"; \
         cat "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/hack/build-image.sh"; } \
       | sha256sum | cut -c1-16)
IMAGE="localhost/hive:$KEY"

if [[ "${1:-}" == "--print" ]]; then echo "$ARCHIVE $IMAGE"; exit 0; fi

log() { printf '[hive-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
step_started=$(date +%s)
step() { local now; now=$(date +%s); log "$* (previous step $(( now - step_started ))s)"; step_started=$now; }

# shellcheck source=hack/image-lib.sh
source "$ROOT/hack/image-lib.sh"
exit_if_cached
require_root_and_buildah "the rootfs's owners and the chroot install need root"
command -v mmdebstrap >/dev/null 2>&1 \
  || { echo "build-image: mmdebstrap is missing: apt-get install -y mmdebstrap" >&2; exit 1; }
[[ -x $PIP ]] || { echo "build-image: $PIP is missing: run make venv" >&2; exit 1; }
[[ -n $LLAMA_PIN ]] || { echo "build-image: no llama-cpp-python pin in pyproject.toml" >&2; exit 1; }
started=$(date +%s)

# --- 1. the root filesystem ----------------------------------------------------------------------
if [[ -x "$ROOTFS/usr/bin/python3" && -f "$(dirname "$ROOTFS")/done" ]]; then
  log "rootfs cached: $ROOTFS"
else
  out=$(dirname "$ROOTFS")
  step "rootfs: mmdebstrap $SUITE + $PACKAGES from $MIRROR -> $out"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  SOURCE_DATE_EPOCH=1700000000 mmdebstrap --mode=root "${ROOTFS_OPTS[@]}" \
    "$SUITE" "$out.tmp/rootfs" "$MIRROR" 2>&1 \
    | while IFS= read -r line; do log "mmdebstrap: $line"; done
  [[ -x "$out.tmp/rootfs/usr/bin/python3" ]] || { log "rootfs failed: no python3"; exit 1; }
  rm -rf "$out" && mv "$out.tmp" "$out" && touch "$out/done"
  step "rootfs built: $(du -sh "$ROOTFS" | cut -f1)"
fi

# --- Hive's own wheel and the image's tree ----------------------------------------------------
MODEL=$(bash "$ROOT/hack/models.sh")  # fetches the models if missing, else only prints its path
EMBEDDINGS=$(bash "$ROOT/hack/models.sh" --print-embeddings)
SPACY_MODEL="$(dirname "$MODEL")/$SPACY_DIR"
[[ -f "$SPACY_MODEL/config.cfg" ]] || { echo "build-image: no $SPACY_MODEL: make models" >&2; exit 1; }
work="$BASE/.build/hive-image"
rm -rf "$work" && mkdir -p "$work/src" "$work/wheel"
# built from a copy, so the checkout gets no build/ or egg-info
cp -r "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/operator" "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
step "wheel: hive from $work/src"
"$PIP" wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$work/wheel" "$work/src"

BUILDAH=(buildah --storage-driver vfs --root "$BASE/.build/buildah/root"
         --runroot "$BASE/.build/buildah/run")
mkdir -p "$BIN/images"
step "image: $IMAGE from $ROOTFS"
ctr=$("${BUILDAH[@]}" from --quiet scratch)
mnt=$("${BUILDAH[@]}" mount "$ctr")
cleanup() {
  umount "$mnt/tmp/wheels" "$mnt/tmp/pipcache" "$mnt/proc" 2>/dev/null || true
  "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cp -a "$ROOTFS/." "$mnt/"
mount -t proc proc "$mnt/proc"
in_image() { chroot "$mnt" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$@"; }

# --- 2. the wheels, resolved by the image's own python3 (its markers: bookworm has 3.11.2) -------
if [[ -f "$WHEELS/done" ]]; then
  log "dependency wheels cached: $WHEELS"
else
  step "wheels: $LLAMA_PIN from pip's wheel cache, pip $PIP_VERSION"
  llama_version=${LLAMA_PIN##*==}
  pip_cache=$("$PIP" cache dir)
  llama_wheel=$(find "$pip_cache/wheels" -name "llama_cpp_python-$llama_version-*.whl" \
                2>/dev/null | head -n1)
  [[ -n $llama_wheel ]] || {
    echo "build-image: no llama_cpp_python-$llama_version wheel in $pip_cache: run make venv" >&2
    exit 1
  }
  rm -rf "$WHEELS.tmp" && mkdir -p "$WHEELS.tmp/local"
  cp "$llama_wheel" "$WHEELS.tmp/local/"
  "$PIP" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$WHEELS.tmp/local" "pip==$PIP_VERSION"
  step "wheels: the pinned dependencies, binary only, resolved in the image (PyPI, pip's cache)"
  mkdir -p "$mnt/tmp/wheels" "$mnt/tmp/pipcache"
  mount --bind "$WHEELS.tmp" "$mnt/tmp/wheels"
  mount --bind "$pip_cache" "$mnt/tmp/pipcache"
  cp /etc/resolv.conf "$mnt/etc/resolv.conf.build"
  mv "$mnt/etc/resolv.conf" "$mnt/etc/resolv.conf.orig" 2>/dev/null || true
  mv "$mnt/etc/resolv.conf.build" "$mnt/etc/resolv.conf"
  pip_wheel=$(cd "$WHEELS.tmp/local" && ls pip-*.whl)
  # the host's index and CA bundle (a proxy's CA may be in it), as its own pip uses them
  cp "${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}" "$mnt/tmp/host-ca.crt"
  index=${PIP_INDEX_URL:-$("$PIP" config get global.index-url 2>/dev/null || true)}
  # shellcheck disable=SC2086 # one requirement per word
  in_image PIP_CERT=/tmp/host-ca.crt PIP_INDEX_URL="${index:-https://pypi.org/simple}" \
    PIP_DEFAULT_TIMEOUT=180 python3 -B "/tmp/wheels/local/$pip_wheel/pip" wheel --quiet --disable-pip-version-check \
    --only-binary=:all: --cache-dir /tmp/pipcache --find-links /tmp/wheels/local \
    --wheel-dir /tmp/wheels $DEPS "$LLAMA_PIN" "pip==$PIP_VERSION"
  rm -f "$mnt/etc/resolv.conf"
  mv "$mnt/etc/resolv.conf.orig" "$mnt/etc/resolv.conf" 2>/dev/null || true
  umount "$mnt/tmp/wheels" "$mnt/tmp/pipcache"
  rmdir "$mnt/tmp/wheels" "$mnt/tmp/pipcache" && rm -f "$mnt/tmp/host-ca.crt"
  rm -rf "$WHEELS.tmp/local" "$WHEELS"
  mv "$WHEELS.tmp" "$WHEELS" && touch "$WHEELS/done"
  step "wheels ready: $(find "$WHEELS" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1)"
fi

mkdir -p "$mnt/tmp/wheels"
cp "$WHEELS"/*.whl "$work/wheel"/*.whl "$mnt/tmp/wheels/"
step "install: pip in a chroot, Debian's python3, --no-index"
pip_wheel=$(cd "$mnt/tmp/wheels" && ls pip-*.whl)
hive_wheel=$(cd "$work/wheel" && ls hive-*.whl)
in_image python3 "/tmp/wheels/$pip_wheel/pip" install --quiet --no-index --find-links /tmp/wheels \
  --break-system-packages --root-user-action=ignore --disable-pip-version-check --no-cache-dir \
  "/tmp/wheels/$hive_wheel[embedded,privacy]"
version=$(in_image hive --version)
in_image python3 -c 'import llama_cpp, llama_cpp.server.app'  # loads libllama
in_image python3 -c 'import spacy, presidio_analyzer, presidio_anonymizer'
umount "$mnt/proc"
rm -rf "$mnt/tmp/wheels" "$mnt/root/.cache"
install -D -m 0644 -o 0 -g 0 "$(readlink -f "$MODEL")" "$mnt$MODEL_IN_IMAGE"
for file in model.onnx tokenizer.json; do
  install -D -m 0644 -o 0 -g 0 "$(readlink -f "$EMBEDDINGS/$file")" "$mnt$EMBEDDINGS_IN_IMAGE/$file"
done
mkdir -p "$mnt$SPACY_IN_IMAGE"
cp -rL "$SPACY_MODEL/." "$mnt$SPACY_IN_IMAGE/"
chown -R 0:0 "$mnt$SPACY_IN_IMAGE" && chmod -R a+rX,go-w "$mnt$SPACY_IN_IMAGE"
step "installed: $version, $(du -sh "$mnt" | cut -f1) tree"
"${BUILDAH[@]}" umount "$ctr" >/dev/null
"${BUILDAH[@]}" config \
  --entrypoint '["hive"]' --cmd operator \
  --workingdir / --user 65532:65532 \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --env "HIVE_EMBEDDED_MODEL=$MODEL_IN_IMAGE" \
  --env "HIVE_AGENT__EMBEDDINGS__MODEL_DIR=$EMBEDDINGS_IN_IMAGE" \
  --env "HIVE_PRIVACY__MODEL_DIR=$SPACY_IN_IMAGE" \
  --label org.opencontainers.image.title=hive \
  --label "dev.hive.rootfs-key=$ROOTFS_KEY" "$ctr"
step "commit: the archive"
commit_archive "$ctr"
trap - EXIT
rm -rf "$work"
step "built in $(( $(date +%s) - started ))s: $IMAGE, $(du -h "$ARCHIVE" | cut -f1) archive"
echo "$ARCHIVE"
