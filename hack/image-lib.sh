# Shared by hack/build-image.sh and sandbox-images/build-image.sh (sourced, not run): the content
# key's cache check, what buildah needs, and the commit. Uses the caller's log, IMAGE, ARCHIVE,
# NAME_FILE and BUILDAH.

# The archive already holds IMAGE (same content key): say so, print its path, and end the script.
exit_if_cached() {
  if [[ -s "$ARCHIVE" && "$(cat "$NAME_FILE" 2>/dev/null)" == "$IMAGE" ]]; then
    log "cached: $IMAGE in $ARCHIVE"
    echo "$ARCHIVE"
    exit 0
  fi
}

# require_root_and_buildah WHY: root (WHY says what needs it) and buildah, or one line and exit 1.
require_root_and_buildah() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "build-image: $1" >&2
    exit 1
  fi
  command -v buildah >/dev/null 2>&1 \
    || { echo "build-image: buildah is missing: run hack/node.sh packages" >&2; exit 1; }
}

# commit_archive CONTAINER: commit the buildah container as one layer (timestamps 0) into
# ARCHIVE tagged IMAGE, then record IMAGE in NAME_FILE; both appear whole or not at all.
commit_archive() {
  rm -f "$ARCHIVE.tmp"
  "${BUILDAH[@]}" commit --quiet --rm --squash --timestamp 0 "$1" \
    "oci-archive:$ARCHIVE.tmp:$IMAGE" >/dev/null
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  echo "$IMAGE" > "$NAME_FILE.tmp" && mv "$NAME_FILE.tmp" "$NAME_FILE"
}
