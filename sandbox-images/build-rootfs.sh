#!/usr/bin/env bash
# Builds the sandbox's root filesystem from the same recipe as sandbox-images/Dockerfile
# (Debian bookworm + packages.txt), with mmdebstrap from Debian's mirror; no container registry.
#
#   sandbox-images/build-rootfs.sh          build if missing, print the rootfs path
#   sandbox-images/build-rootfs.sh --print  print the path it would have, build nothing
#
# The result is cached by the hash of the recipe (this script, packages.txt, suite, mirror) in
# ${XDG_CACHE_HOME:-~/.cache}/hive/sandbox-rootfs/<hash>/rootfs, so it builds once per machine;
# <cache>/current points at the latest one, which hive.runtime.sandbox uses by default.
# Set HIVE_SANDBOX_SNAPSHOT=20260101T000000Z to build from snapshot.debian.org at that moment,
# which makes the package set byte-for-byte repeatable; without it the mirror's current
# bookworm point release is used (as `apt-get install` in the Dockerfile does).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=bookworm
SNAPSHOT=${HIVE_SANDBOX_SNAPSHOT:-}
if [[ -n $SNAPSHOT ]]; then
  MIRROR="http://snapshot.debian.org/archive/debian/$SNAPSHOT"
else
  MIRROR=${HIVE_SANDBOX_MIRROR:-http://deb.debian.org/debian}
fi
PACKAGES=$(grep -v '^\s*#' "$HERE/packages.txt" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
KEY=$( { cat "$HERE/build-rootfs.sh" "$HERE/packages.txt"; echo "$SUITE $MIRROR"; } \
       | sha256sum | cut -c1-16)
CACHE=${HIVE_SANDBOX_ROOTFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hive/sandbox-rootfs}
OUT="$CACHE/$KEY"

if [[ "${1:-}" == "--print" ]]; then echo "$OUT/rootfs"; exit 0; fi

log() { printf '[sandbox-rootfs %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
mkdir -p "$CACHE"

if [[ -x "$OUT/rootfs/usr/bin/python3" && -f "$OUT/done" ]]; then
  log "cached: $OUT/rootfs"
else
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "build-rootfs: mmdebstrap is missing; install it with: sudo apt-get install -y mmdebstrap" >&2
      exit 1
    fi
    log "apt-get install mmdebstrap"
    apt-cache show mmdebstrap >/dev/null 2>&1 || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
  fi
  mode=root; [[ $(id -u) -eq 0 ]] || mode=unshare
  started=$(date +%s)
  log "building $SUITE + $PACKAGES from $MIRROR (about a minute) -> $OUT"
  rm -rf "$OUT.tmp"
  mkdir -p "$OUT.tmp"
  # A fixed SOURCE_DATE_EPOCH and no docs, man pages, locales or apt lists: the tree depends
  # only on the packages it holds.
  SOURCE_DATE_EPOCH=1700000000 mmdebstrap \
    --mode="$mode" --variant=essential --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1/var/lib/apt/lists" "$1/var/cache/apt" "$1/var/log"/*' \
    --customize-hook='chroot "$1" dpkg-query -W -f "\${Package} \${Version}\n" > "$1/.manifest"' \
    "$SUITE" "$OUT.tmp/rootfs" "$MIRROR" 2>&1 \
    | while IFS= read -r line; do log "mmdebstrap: $line"; done
  [[ -x "$OUT.tmp/rootfs/usr/bin/python3" ]] || { log "build failed: no python3 in the tree"; exit 1; }
  mv "$OUT.tmp/rootfs/.manifest" "$OUT.tmp/manifest.txt"
  echo "$SUITE $MIRROR $PACKAGES" > "$OUT.tmp/recipe.txt"
  rm -rf "$OUT"
  mv "$OUT.tmp" "$OUT"
  touch "$OUT/done"
  log "built in $(( $(date +%s) - started ))s: $(du -sh "$OUT/rootfs" | cut -f1), $(wc -l < "$OUT/manifest.txt") packages"
fi
ln -sfn "$KEY" "$CACHE/current.tmp" && mv -T "$CACHE/current.tmp" "$CACHE/current"
echo "$OUT/rootfs"
