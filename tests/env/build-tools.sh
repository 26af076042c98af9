#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kubectl and helm from their Go modules into
# $CACHE_DIR/bin/<component>-<version>/, the node's kubelet, kube-scheduler and kube-proxy beside them
# and crane for its sandbox image (`build-tools.sh node`), and the GitOps readers of tests/gitops/ (kstatus, Argo CD's
# Lua checks) into $CACHE_DIR/bin/gitops-<hash of their source>/. Each is built once per version;
# later runs reuse it. `build-tools.sh gitops-path` prints where the GitOps helper is (built or not).
. "$(dirname "$0")/lib.sh"
need go

export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
BIN_DIR=$CACHE_DIR/bin
mkdir -p "$BIN_DIR"

# Kubernetes pins its k8s.io/* staging modules with relative replaces, which `go install` refuses.
# A throwaway main module replaces them with the published v0.X.Y tags instead.
# The release build stamps its version through the linker; without it /version says v0.0.0-master.
kubernetes_ldflags() {
  local minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  local flags="-s" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

build_kubernetes() {
  local out=$BIN_DIR/kubernetes-$KUBERNETES_VERSION
  if [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/kubectl" ] &&
    "$out/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $KUBERNETES_VERSION"; then
    return 0
  fi
  local staging_version=v0.${KUBERNETES_VERSION#v1.}
  local mod=$CACHE_DIR/src/kubernetes-$KUBERNETES_VERSION
  mkdir -p "$mod" "$out"
  log "building Kubernetes $KUBERNETES_VERSION (first time only; takes a while)"
  local upstream
  upstream=$(cd "$mod" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    echo "module usersync.io/testbed/kubernetes"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    sed -n '/^replace (/,/^)/p' "$upstream" | grep -o 'k8s.io/[a-z0-9-]* =>' | while read -r name _; do
      echo "	$name => $name $staging_version"
    done
    echo ")"
  } >"$mod/go.mod"
  cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$mod" && GOFLAGS=-mod=mod go build -trimpath -ldflags="$(kubernetes_ldflags)" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl)
}

# The node's programs come from the same module as the control plane; they are built only for the
# tests that need a node, since the kubelet alone takes minutes.
build_node() {
  build_kubernetes
  build_crane
  local out=$BIN_DIR/kubernetes-$KUBERNETES_VERSION
  if [ -x "$out/kubelet" ] && [ -x "$out/kube-scheduler" ] && [ -x "$out/kube-proxy" ] &&
    "$out/kubelet" --version 2>/dev/null | grep -qx "Kubernetes $KUBERNETES_VERSION"; then
    return 0
  fi
  local mod=$CACHE_DIR/src/kubernetes-$KUBERNETES_VERSION started=$SECONDS
  log "building the node's kubelet, kube-scheduler and kube-proxy $KUBERNETES_VERSION (first time only)"
  (cd "$mod" && GOFLAGS=-mod=mod go build -trimpath -ldflags="$(kubernetes_ldflags)" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kube-proxy \
    k8s.io/kubernetes/cmd/kubelet)
  log "built the node's programs in $((SECONDS - started))s"
}

build_etcd() {
  local out=$BIN_DIR/etcd-$ETCD_VERSION
  [ -x "$out/etcd" ] && return 0
  local mod=$CACHE_DIR/src/etcd-$ETCD_VERSION
  mkdir -p "$mod" "$out"
  log "building etcd $ETCD_VERSION"
  cat >"$mod/go.mod" <<GOMOD
module usersync.io/testbed/etcd

go 1.26

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
GOMOD
  cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$mod" && GOFLAGS=-mod=mod go build -trimpath -ldflags=-s -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

# go-containerregistry's crane builds the node's sandbox (pause) image; see node.sh.
build_crane() {
  local out=$BIN_DIR/crane-$CRANE_VERSION
  [ -x "$out/crane" ] && return 0
  mkdir -p "$out"
  log "building crane $CRANE_VERSION"
  GOBIN=$out go install -trimpath -ldflags=-s "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
}

build_helm() {
  local out=$BIN_DIR/helm-$HELM_VERSION
  [ -x "$out/helm" ] && "$out/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION" && return 0
  mkdir -p "$out"
  log "building helm $HELM_VERSION"
  GOBIN=$out go install -trimpath -ldflags="-s -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
}

# The helper's versions are pinned by tests/gitops/go.mod and go.sum; its directory is named after a
# digest of that module's files and the Go version, so any change to either builds it anew.
GITOPS_SRC=$(cd "$ENV_DIR/../gitops" && pwd)
gitops_path() {
  local digest
  digest=$(cd "$GITOPS_SRC" && { go env GOVERSION; find . -maxdepth 1 -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) | LC_ALL=C sort | xargs cat; } | sha256sum | cut -c1-12)
  echo "$BIN_DIR/gitops-$digest/usersync-gitops"
}

build_gitops() {
  local bin
  bin=$(gitops_path)
  [ -x "$bin" ] && return 0
  log "building the GitOps helper (kstatus, Argo CD Lua) into $(dirname "$bin")"
  local started=$SECONDS
  mkdir -p "$(dirname "$bin")"
  # Build to a temporary name first, so that an interrupted build is never taken for a finished one.
  (cd "$GITOPS_SRC" && GOFLAGS="$GOFLAGS -mod=readonly" go build -trimpath -ldflags=-s -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
  log "built the GitOps helper in $((SECONDS - started))s"
}

case "${1:-all}" in
  etcd) build_etcd ;;
  kubernetes) build_kubernetes ;;
  node) build_node ;;
  helm) build_helm ;;
  gitops) build_gitops ;;
  gitops-path) gitops_path ;;
  all) build_etcd; build_helm; build_kubernetes; build_node; build_gitops ;;
  *) die "usage: $0 [all|etcd|kubernetes|node|helm|gitops|gitops-path]" ;;
esac
