#!/usr/bin/env bash
# Installs what the local platform needs and is missing; safe to rerun (does nothing when all is
# present). Usage: install.sh [apt] [etcd] [kube] [helm] [opensearch] [ferretdb] [jaeger]   (no argument = all of them)
#   apt  : Debian packages postgresql, redis-server, prometheus (+ openssl, curl if absent), mmdebstrap,
#          umoci and runc (make image and its test)
#   etcd, kube (kube-apiserver + kube-controller-manager), helm : Go builds into the per-version
#          cache $TENANCY_CACHE/bin (default ~/.cache/tenancy-operator/bin), see build-go-tool.sh.
#   opensearch : Maven Central zips into $TENANCY_CACHE/opensearch-<version>, see opensearch.sh.
#   ferretdb : the same cache, through build-ferretdb.sh (it must add a file the module lacks).
#   jaeger : the same cache, through jaeger.sh install (build-go-tool.sh, one package at a time).
#   node : the real node (only with TENANCY_NODE=1 or when named): Debian containerd, runc,
#          containernetworking-plugins, iptables, ipset, busybox-static, gcc; kubelet and
#          kube-scheduler (same k8s.io/kubernetes version), crictl; the pause and busybox images.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(apt etcd kube helm opensearch ferretdb jaeger)
[[ $# -gt 0 ]] || ! node_enabled || parts+=(node)
want() { local p; for p in "${parts[@]}"; do [[ $p == "$1" ]] && return 0; done; return 1; }

install_apt() {
  local pkgs=()
  pg_bindir >/dev/null || pkgs+=(postgresql)
  command -v redis-server >/dev/null || pkgs+=(redis-server)
  command -v prometheus >/dev/null && command -v promtool >/dev/null || pkgs+=(prometheus)
  command -v openssl >/dev/null || pkgs+=(openssl)
  command -v curl >/dev/null || pkgs+=(curl)
  command -v ss >/dev/null || pkgs+=(iproute2)
  # make image (platform/image.sh) and its test (tests/image: umoci unpack, runc run)
  command -v mmdebstrap >/dev/null || pkgs+=(mmdebstrap)
  command -v umoci >/dev/null || pkgs+=(umoci)
  command -v runc >/dev/null || pkgs+=(runc)
  if [[ ${#pkgs[@]} -eq 0 ]]; then log "apt: nothing to install"; return; fi
  [[ $(id -u) -eq 0 ]] || die "apt packages missing (${pkgs[*]}): run as root or install them yourself"
  # Packaged services would start on their default ports on all interfaces (redis 6379, prometheus
  # 9090, ...). The platform starts its own instances on loopback, so keep the packaged ones from
  # starting during the install with a temporary policy-rc.d, unless the machine already has one.
  local guard=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$guard"; chmod 755 "$guard"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  log "apt: installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: prometheus would otherwise pull node-exporter and friends.
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
  if [[ -n $guard ]]; then rm -f "$guard"; trap - EXIT; fi
}

# build NAME MODULE@VERSION PACKAGE [LDFLAGS]: build-go-tool.sh with a timing line, skipped if cached.
build() {
  local name=$1 version=${2#*@} start
  if [[ -x $(bin_path "$name" "$version") ]]; then log "$name $version: cached"; return; fi
  command -v go >/dev/null || die "go is not on PATH; it is needed to build $name"
  log "$name $version: building (minutes; log in $CACHE/build/$name-$version.log)"
  start=$SECONDS
  mkdir -p "$CACHE/build"
  if ! "$PLATFORM_SRC/build-go-tool.sh" "$@" >/dev/null 2>"$CACHE/build/$name-$version.log"; then
    tail -n 30 "$CACHE/build/$name-$version.log" >&2
    die "build of $name $version failed (full log: $CACHE/build/$name-$version.log)"
  fi
  log "$name $version: built in $((SECONDS - start))s"
}

# Two concurrent builds of the same binary would fight over the same work dir: take a lock.
mkdir -p "$CACHE"
exec 9>"$CACHE/install.lock"
flock -n 9 || { log "another install.sh holds $CACHE/install.lock; waiting"; flock 9; }

want apt && install_apt

if want etcd; then
  # The main package of etcd's server module is the module root.
  build etcd "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3
fi

if want kube; then
  build kube-apiserver "k8s.io/kubernetes@$KUBE_VERSION" k8s.io/kubernetes/cmd/kube-apiserver "$KUBE_LDFLAGS"
  build kube-controller-manager "k8s.io/kubernetes@$KUBE_VERSION" k8s.io/kubernetes/cmd/kube-controller-manager "$KUBE_LDFLAGS"
fi

if want helm && [[ ! -x $HELM_BIN ]]; then
  # Helm's Makefile stamps its version and the Kubernetes version it assumes offline (helm template,
  # helm lint) from the client-go it builds with; do the same or helm reports "v3.22" and a
  # Kubernetes 1.20 default.
  command -v go >/dev/null || die "go is not on PATH; it is needed to build helm"
  gomod=$(cd "$CACHE" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  cg=$(awk '$1 == "k8s.io/client-go" {print $2}' "$gomod")   # e.g. v0.37.0 -> Kubernetes 1.37
  cg_minor=${cg#v0.}; cg_minor=${cg_minor%%.*}
  HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    HELM_LDFLAGS+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$cg_minor"
  done
  build helm "helm.sh/helm/v3@$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$HELM_LDFLAGS"
elif want helm; then
  log "helm $HELM_VERSION: cached"
fi

want opensearch && bash "$PLATFORM_SRC/opensearch.sh" install
if want ferretdb; then
  if [[ -x $FERRETDB_BIN ]]; then
    log "ferretdb $FERRETDB_VERSION: cached"
  else
    command -v go >/dev/null || die "go is not on PATH; it is needed to build ferretdb"
    log "ferretdb $FERRETDB_VERSION: building (minutes; log in $CACHE/build/ferretdb-$FERRETDB_VERSION.log)"
    start=$SECONDS
    mkdir -p "$CACHE/build"
    if ! "$PLATFORM_SRC/build-ferretdb.sh" "$FERRETDB_VERSION" >/dev/null 2>"$CACHE/build/ferretdb-$FERRETDB_VERSION.log"; then
      tail -n 30 "$CACHE/build/ferretdb-$FERRETDB_VERSION.log" >&2
      die "build of ferretdb $FERRETDB_VERSION failed (full log: $CACHE/build/ferretdb-$FERRETDB_VERSION.log)"
    fi
    log "ferretdb $FERRETDB_VERSION: built in $((SECONDS - start))s"
  fi
fi

want jaeger && bash "$PLATFORM_SRC/jaeger.sh" install

if want node; then
  pkgs=()
  for b in containerd runc iptables ipset gcc; do command -v $b >/dev/null || pkgs+=("$b"); done
  [[ -x /usr/lib/cni/bridge ]] || pkgs+=(containernetworking-plugins)
  file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || pkgs+=(busybox-static)
  if [[ ${#pkgs[@]} -gt 0 ]]; then
    [[ $(id -u) -eq 0 ]] || die "node packages missing (${pkgs[*]}): run as root or install them yourself"
    log "apt: installing ${pkgs[*]}"
    # The Debian containerd must not start as a system service: the node runs its own.
    guard=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      guard=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$guard"; chmod 755 "$guard"
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${pkgs[@]}" >&2
    if [[ -n $guard ]]; then rm -f "$guard"; trap - EXIT; fi
  fi
  build kubelet "k8s.io/kubernetes@$KUBE_VERSION" k8s.io/kubernetes/cmd/kubelet "$KUBE_LDFLAGS"
  build kube-scheduler "k8s.io/kubernetes@$KUBE_VERSION" k8s.io/kubernetes/cmd/kube-scheduler "$KUBE_LDFLAGS"
  build crictl "sigs.k8s.io/cri-tools@$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
  bash "$PLATFORM_SRC/node.sh" images
  # NetworkPolicy enforcement (platform/netpol.sh): kube-router's firewall.
  build kube-router "github.com/cloudnativelabs/kube-router/v2@$KUBE_ROUTER_VERSION" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
fi

log "install: done"
