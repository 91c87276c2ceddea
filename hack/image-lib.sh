# Shared by hack/build-image.sh and sandbox-images/build-image.sh (sourced, not run): the content
# key's cache check and what buildah needs. Uses the caller's log, IMAGE, ARCHIVE and NAME_FILE.

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
