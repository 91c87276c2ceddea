#!/usr/bin/env bash
# Installs or builds what one real node of the local cluster needs, cached by version.
#
#   hack/node.sh            install/build what is missing (make testbin runs it)
#   hack/node.sh PART...    only these parts: packages, kubelet, coredns, gvisor, kube-router, images
#
# - Debian packages, only when missing: containerd + ctr (1.6), runc, the CNI plugins (bridge,
#   host-local, loopback), iptables and ipset, buildah (images without a daemon), busybox-static.
# - kubelet and kube-proxy (iptables mode: Service addresses), built from the same
#   k8s.io/kubernetes version as kube-apiserver (hack/testbin.sh), into testbin's bin folder and
#   its machine cache; conntrack from Debian for kube-proxy.
# - CoreDNS, built with only the plugins a cluster's DNS needs, run as the kube-dns pod.
# - gVisor's containerd-shim-runsc-v1 and the runsc it drives, both built from one pinned
#   gvisor.dev/gvisor version (Debian ships runsc only, from 2022: too old for a 2026 shim). The
#   shim speaks containerd 2's start protocol; hack/gvisor-shim-containerd16.patch makes it
#   speak containerd 1.6's and tolerate a refused oom_score_adj write.
# - kube-router, built from its pinned Go module: the node runs it as a firewall-only
#   NetworkPolicy controller (iptables + ipset), without its router, proxy or CNI parts.
# - Two OCI archives built with buildah from scratch: the pod sandbox ("pause", compiled from
#   the kubernetes module's build/pause/linux/pause.c), CoreDNS's, and a tiny busybox image.
#
# Everything lands under testbin's bin folder (hack/testbin.sh --print):
#   kubelet, kube-proxy, coredns, gvisor/{containerd-shim-runsc-v1,runsc}, kube-router,
#   images/{pause,busybox,coredns}.oci.tar
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_VERSION=$(sed -n 's/^KUBE_VERSION=\([0-9.]*\).*/\1/p' "$ROOT/hack/testbin.sh")
GVISOR_VERSION=v0.0.0-20260905035102-160fafc42237   # gvisor.dev/gvisor@latest when pinned
KUBE_ROUTER_VERSION=v2.1.0
COREDNS_VERSION=v1.15.0
PAUSE_VERSION=3.10.2                                 # TAG in the module's build/pause/Makefile
BUSYBOX_IMAGE=localhost/hive-busybox:3
PATCH="$ROOT/hack/gvisor-shim-containerd16.patch"

BASE=${HIVE_TESTBIN_DIR:-$ROOT/.testbin}
BIN=$(bash "$ROOT/hack/testbin.sh" --print)
STAMP=$(basename "$BIN")
CACHE=${HIVE_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hive/testbin}/$STAMP
GVISOR_DIR="gvisor-$GVISOR_VERSION-$(sha256sum "$PATCH" | cut -c1-8)"

log() { printf '[node %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
step() {  # step WHAT COMMAND...: run one step, logging its time
  local what=$1 t0; shift; t0=$(date +%s)
  log "$what ..."
  "$@"
  log "$what: done in $(( $(date +%s) - t0 ))s"
}
mkdir -p "$BIN" "$CACHE"
started=$(date +%s)

export GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0
GOPROXY=$(go env GOPROXY); export GOPROXY=${GOPROXY%,direct}  # no slow fallback to the network

# --- Debian packages ----------------------------------------------------------------------------
apt_packages() {
  local want=() pair
  for pair in containerd:containerd ctr:containerd runc:runc iptables:iptables ipset:ipset \
              buildah:buildah conntrack:conntrack; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || want+=("${pair#*:}")
  done
  dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q "ok installed" \
    || want+=(busybox-static)
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] \
    || want+=(containernetworking-plugins)
  [[ ${#want[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "node: missing packages; install them with: sudo apt-get install -y ${want[*]}" >&2
    exit 1
  fi
  log "apt-get install ${want[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${want[@]}" | sort -u) >/dev/null
}

# --- kubelet and kube-proxy: a wrapper module like testbin's, with their two commands as tools ----
build_kubelet() {
  local tool missing=()
  for tool in kubelet kube-proxy; do
    if [[ ! -x "$BIN/$tool" && -x "$CACHE/$tool" ]]; then
      cp "$CACHE/$tool" "$BIN/$tool"; log "$tool: from machine cache"
    fi
    [[ -x "$BIN/$tool" ]] || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local w="$BASE/.build/kubelet-$KUBE_VERSION"
  mkdir -p "$w"
  if [[ ! -f "$w/go.sum.proxy.done" ]]; then
    local gomod staging
    gomod=$(cd "$w" && go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" \
            | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
    staging=$(sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
    {
      printf 'module hive.dev/testbin/kubelet\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes v%s\n\n' \
        "$KUBE_VERSION"
      echo "replace ("
      for m in $staging; do echo "	$m => $m v0.${KUBE_VERSION#1.}"; done
      echo ")"
    } > "$w/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kubelet"\n\t_ "k8s.io/kubernetes/cmd/kube-proxy"\n)\n' \
      > "$w/tools.go"
    (cd "$w" && { go mod tidy -e >/dev/null 2>&1 || true; } && go mod download)
    touch "$w/go.sum.proxy.done"
  fi
  local minor=${KUBE_VERSION#1.}; minor=${minor%%.*}
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for tool in "${missing[@]}"; do
    log "building $tool v$KUBE_VERSION"
    (cd "$w" && go build -trimpath -tags tools -ldflags "$ld" -o "$BIN/$tool.tmp" \
       "k8s.io/kubernetes/cmd/$tool")
    mv "$BIN/$tool.tmp" "$BIN/$tool"
    cp "$BIN/$tool" "$CACHE/$tool.tmp" && mv "$CACHE/$tool.tmp" "$CACHE/$tool"
  done
}

# --- CoreDNS: the cluster's DNS, built with only the plugins a local cluster needs ---------------
# A main package of its own (CoreDNS's documented way to choose plugins at compile time) keeps
# the build small: no cloud DNS providers, no etcd, no forwarding (nothing outside is reachable).
build_coredns() {
  local name="coredns-$COREDNS_VERSION"
  if [[ ! -x "$BIN/$name" && -x "$CACHE/$name" ]]; then
    cp "$CACHE/$name" "$BIN/$name"; log "coredns: from machine cache"
  fi
  if [[ ! -x "$BIN/$name" ]]; then
    local w="$BASE/.build/$name"
    mkdir -p "$w"
    if [[ ! -f "$w/go.sum.done" ]]; then
      printf 'module hive.dev/testbin/coredns\n\ngo 1.26.0\n\nrequire github.com/coredns/coredns %s\n' \
        "$COREDNS_VERSION" > "$w/go.mod"
      cat > "$w/main.go" <<'GO'
// CoreDNS with the plugins a local cluster's DNS needs, in CoreDNS's own order (plugin.cfg).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{"ready", "health", "errors", "log", "loadbalance", "cache",
		"kubernetes"}
}

func main() { coremain.Run() }
GO
      (cd "$w" && { go mod tidy -e >/dev/null 2>&1 || true; } && go mod download)
      touch "$w/go.sum.done"
    fi
    log "building coredns $COREDNS_VERSION"
    (cd "$w" && go build -trimpath -ldflags "-s -w" -o "$BIN/$name.tmp" .)
    mv "$BIN/$name.tmp" "$BIN/$name"
    cp "$BIN/$name" "$CACHE/$name.tmp" && mv "$CACHE/$name.tmp" "$CACHE/$name"
  fi
  ln -sfn "$name" "$BIN/coredns"
}

# --- gVisor: runsc and the containerd shim from one patched copy of the module --------------------
build_gvisor() {
  local out="$BIN/$GVISOR_DIR"
  if [[ ! -x "$out/containerd-shim-runsc-v1" && -x "$CACHE/$GVISOR_DIR/containerd-shim-runsc-v1" \
        && -x "$CACHE/$GVISOR_DIR/runsc" ]]; then
    mkdir -p "$out" && cp "$CACHE/$GVISOR_DIR"/* "$out/"; log "gvisor: from machine cache"
  fi
  if [[ ! -x "$out/containerd-shim-runsc-v1" || ! -x "$out/runsc" ]]; then
    local src="$BASE/.build/$GVISOR_DIR"
    if [[ ! -f "$src/.patched" ]]; then
      local dir
      dir=$(go mod download -json "gvisor.dev/gvisor@$GVISOR_VERSION" \
            | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
      rm -rf "$src" && mkdir -p "$(dirname "$src")"
      cp -r "$dir" "$src" && chmod -R u+w "$src"
      (cd "$src" && patch -p1 --quiet < "$PATCH")
      touch "$src/.patched"
    fi
    mkdir -p "$out" "$CACHE/$GVISOR_DIR"
    local tool
    for tool in shim:containerd-shim-runsc-v1 runsc:runsc; do
      [[ -x "$out/${tool#*:}" ]] && continue
      log "building ${tool#*:} (gvisor $GVISOR_VERSION)"
      (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/${tool#*:}.tmp" "./${tool%%:*}")
      mv "$out/${tool#*:}.tmp" "$out/${tool#*:}"
      cp "$out/${tool#*:}" "$CACHE/$GVISOR_DIR/"
    done
  fi
  ln -sfn "$GVISOR_DIR" "$BIN/gvisor"
}

# --- kube-router: built in its own module's source (its go.mod pins its dependencies) -----------
build_kube_router() {
  local name="kube-router-$KUBE_ROUTER_VERSION"
  if [[ ! -x "$BIN/$name" && -x "$CACHE/$name" ]]; then
    cp "$CACHE/$name" "$BIN/$name"; log "kube-router: from machine cache"
  fi
  if [[ ! -x "$BIN/$name" ]]; then
    local dir
    dir=$(go mod download -json "github.com/cloudnativelabs/kube-router/v2@$KUBE_ROUTER_VERSION" \
          | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
    log "building kube-router $KUBE_ROUTER_VERSION"
    (cd "$dir" && GOFLAGS="-buildvcs=false -mod=readonly" go build -trimpath \
       -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
       -o "$BIN/$name.tmp" ./cmd/kube-router)
    mv "$BIN/$name.tmp" "$BIN/$name"
    cp "$BIN/$name" "$CACHE/$name.tmp" && mv "$CACHE/$name.tmp" "$CACHE/$name"
  fi
  ln -sfn "$name" "$BIN/kube-router"
}

# --- images: buildah from scratch into OCI archives -----------------------------------------------
BUILDAH=(buildah --storage-driver vfs --root "$BASE/.build/buildah/root"
         --runroot "$BASE/.build/buildah/run")
scratch_image() {  # scratch_image ARCHIVE NAME ENTRYPOINT-JSON FILE:DEST...
  local archive=$1 name=$2 entrypoint=$3 ctr pair; shift 3
  ctr=$("${BUILDAH[@]}" from --quiet scratch)
  for pair in "$@"; do "${BUILDAH[@]}" copy --quiet "$ctr" "${pair%%:*}" "${pair#*:}" >/dev/null; done
  "${BUILDAH[@]}" config --entrypoint "$entrypoint" "$ctr"
  "${BUILDAH[@]}" commit --quiet --rm "$ctr" "oci-archive:$archive.tmp:$name" >/dev/null
  mv "$archive.tmp" "$archive"
}

build_images() {
  mkdir -p "$BIN/images"
  if [[ ! -s "$BIN/images/pause.oci.tar" ]]; then
    local dir tmp
    dir=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" \
          | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
    tmp=$(mktemp -d)
    gcc -static -Os -DVERSION="v$PAUSE_VERSION-hive" -o "$tmp/pause" \
      "$dir/build/pause/linux/pause.c"
    strip "$tmp/pause"
    scratch_image "$BIN/images/pause.oci.tar" "localhost/hive-pause:$PAUSE_VERSION" '["/pause"]' \
      "$tmp/pause:/pause"
    rm -rf "$tmp"
  fi
  # /bin/sh and the applets the tests use, as links to the one static binary.
  local applets="sh cat dmesg echo sleep uname ls ps kill nslookup wget nc ssl_client"
  if [[ ! -s "$BIN/images/busybox.oci.tar" \
        || "$(cat "$BIN/images/busybox.applets" 2>/dev/null)" != "$applets" ]]; then
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp/bin"
    cp /bin/busybox "$tmp/bin/busybox"   # busybox-static's: no libraries to carry
    for applet in $applets; do ln -s busybox "$tmp/bin/$applet"; done
    scratch_image "$BIN/images/busybox.oci.tar" "$BUSYBOX_IMAGE" '["/bin/sh"]' "$tmp/bin:/bin"
    echo "$applets" > "$BIN/images/busybox.applets"
    rm -rf "$tmp"
  fi
  if [[ ! -s "$BIN/images/coredns-$COREDNS_VERSION.oci.tar" ]]; then
    scratch_image "$BIN/images/coredns-$COREDNS_VERSION.oci.tar" \
      "localhost/hive-coredns:$COREDNS_VERSION" '["/coredns"]' "$BIN/coredns-$COREDNS_VERSION:/coredns"
  fi
  ln -sfn "coredns-$COREDNS_VERSION.oci.tar" "$BIN/images/coredns.oci.tar"
  echo "$COREDNS_VERSION" > "$BIN/images/coredns.version"
  echo "$PAUSE_VERSION" > "$BIN/images/pause.version"
}

ALL=(packages kubelet coredns gvisor kube-router images)
for part in "${@:-${ALL[@]}}"; do
  case $part in
    packages) step "debian packages (containerd, runc, CNI plugins, iptables, buildah ...)" apt_packages ;;
    kubelet) step "kubelet and kube-proxy v$KUBE_VERSION" build_kubelet ;;
    coredns) step "coredns $COREDNS_VERSION" build_coredns ;;
    gvisor) step "gvisor shim and runsc ($GVISOR_VERSION)" build_gvisor ;;
    kube-router) step "kube-router $KUBE_ROUTER_VERSION" build_kube_router ;;
    images) step "images (pause, busybox, coredns)" build_images ;;
    *) echo "node: unknown part '$part' (parts: ${ALL[*]})" >&2; exit 2 ;;
  esac
done
log "node parts ready in $(( $(date +%s) - started ))s: $BIN"
