#!/usr/bin/env bash
# Builds the sandbox image as an OCI archive from the root filesystem that build-rootfs.sh makes,
# with buildah (vfs storage, from scratch): no registry, no daemon, no docker.
#
#   sandbox-images/build-image.sh          build if missing, print the archive's path
#   sandbox-images/build-image.sh --print  print the archive's path and image name, build nothing
#
# The image is what sandbox-images/Dockerfile describes: the same Debian packages (packages.txt),
# operator/hive/runtime/sandbox/bootstrap.py at /opt/hive/bootstrap.py, WORKDIR /, user root
# (the pod's securityContext and the zygote's drop to uid 65534 decide who runs code), and
# ENTRYPOINT ["/usr/bin/python3", "-I", "-B", "/opt/hive/bootstrap.py"] with no CMD (the pod
# gives the arguments). It differs in its base only: mmdebstrap's `essential` variant with no
# docs, man pages or locales, where the Dockerfile starts from debian:bookworm-slim.
#
# Output, under testbin's bin folder (hack/testbin.sh --print):
#   images/sandbox.oci.tar   the archive, tagged localhost/hive-sandbox:<key>
#   images/sandbox.image     that image name, one line
# <key> hashes the rootfs's recipe key, bootstrap.py and this script, so a second run with
# nothing changed only checks the key (well under a second).
# Point the operator at it with HIVE_OPERATOR__SANDBOX_IMAGE=$(cat .../images/sandbox.image)
# after importing the archive into the node's containerd (RealNode.import_image).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/sandbox-images"
BOOTSTRAP="$ROOT/operator/hive/runtime/sandbox/bootstrap.py"
BASE=${HIVE_TESTBIN_DIR:-$ROOT/.testbin}
BIN=$(bash "$ROOT/hack/testbin.sh" --print)
ARCHIVE="$BIN/images/sandbox.oci.tar"
NAME_FILE="$BIN/images/sandbox.image"

log() { printf '[sandbox-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

ROOTFS=$(bash "$HERE/build-rootfs.sh" --print)
ROOTFS_KEY=$(basename "$(dirname "$ROOTFS")")
KEY=$( { echo "$ROOTFS_KEY"; cat "$BOOTSTRAP" "$HERE/build-image.sh"; } | sha256sum | cut -c1-16)
IMAGE="localhost/hive-sandbox:$KEY"

if [[ "${1:-}" == "--print" ]]; then echo "$ARCHIVE $IMAGE"; exit 0; fi

# shellcheck source=hack/image-lib.sh
source "$ROOT/hack/image-lib.sh"
exit_if_cached
require_root_and_buildah "copying the rootfs into the image keeps its owners only as root"
ROOTFS=$(bash "$HERE/build-rootfs.sh")  # builds it if missing

started=$(date +%s)
BUILDAH=(buildah --storage-driver vfs --root "$BASE/.build/buildah/root"
         --runroot "$BASE/.build/buildah/run")
mkdir -p "$BIN/images"
log "building $IMAGE from $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
ctr=$("${BUILDAH[@]}" from --quiet scratch)
trap '"${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$("${BUILDAH[@]}" mount "$ctr")
# cp -a keeps owners, modes, links and times exactly as mmdebstrap left them
cp -a "$ROOTFS/." "$mnt/"
install -D -m 0644 -o 0 -g 0 "$BOOTSTRAP" "$mnt/opt/hive/bootstrap.py"
"${BUILDAH[@]}" umount "$ctr" >/dev/null
"${BUILDAH[@]}" config \
  --entrypoint '["/usr/bin/python3", "-I", "-B", "/opt/hive/bootstrap.py"]' \
  --workingdir / --user 0:0 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --label org.opencontainers.image.title=hive-sandbox \
  --label "dev.hive.rootfs-key=$ROOTFS_KEY" "$ctr"
log "committing the archive"
commit_archive "$ctr"
trap - EXIT
log "built in $(( $(date +%s) - started ))s: $IMAGE, $(du -h "$ARCHIVE" | cut -f1) archive"
echo "$ARCHIVE"
