#!/usr/bin/env bash
# The platform's one real Kubernetes node: containerd (+ runc, the CNI plugins) with its own root,
# state and socket under .platform/node, a kubelet and a kube-scheduler, pods on a bridge the platform
# makes. Usage: node.sh images | bridge | up | down | status
#   images : build the pause and busybox OCI archives (cached by the hash of their inputs)
#   bridge : the bridge, its address and our iptables/ip6tables chains (node-net.sh; up.sh calls it
#            before the backends start, so they can listen on the bridge address too)
#   up     : bridge, containerd, images imported, kubelet, kube-scheduler; waits for the node Ready
#   down   : removes everything of the node (processes, containers, network namespaces, veths, the
#            bridge, our iptables/ip6tables chains, mounts, cgroups); idempotent, quick when nothing is there
# The API server must run (up.sh); up.sh calls `node.sh up` when TENANCY_NODE=1, down.sh calls `down`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/node-net.sh"   # make_bridge, write_cni, net_down

KUBECTL=$VENV_BIN/kubectl
IMAGES=$CACHE/node-images
CGROUP_CONTROLLERS="cpu cpuacct cpuset memory devices freezer blkio pids systemd hugetlb net_cls net_prio perf_event rdma misc"

ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
crictl_() { "$CRICTL_BIN" --runtime-endpoint "unix://$CONTAINERD_SOCK" --image-endpoint "unix://$CONTAINERD_SOCK" --timeout 20s "$@"; }

# ---------------------------------------------------------------- images
# One-layer OCI archives written by oci-archive.py; the name of the cached file carries the hash of
# the inputs, so a changed input builds anew and an unchanged one is reused.
build_images() {
  mkdir -p "$IMAGES"
  local mod pausec h out tmp
  mod=$(cd "$CACHE" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  pausec=$mod/build/pause/linux/pause.c
  [[ -f $pausec ]] || die "pause.c not found in $mod"
  h=$( (cat "$pausec" "$PLATFORM_SRC/oci-archive.py"; gcc --version | head -1; echo "$PAUSE_VERSION") | sha256sum | cut -c1-12)
  out=$IMAGES/pause-$PAUSE_VERSION-$h.tar
  if [[ ! -s $out ]]; then
    tmp=$(mktemp -d)
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-tenancy" -o "$tmp/pause" "$pausec"
    strip "$tmp/pause"
    python3 "$PLATFORM_SRC/oci-archive.py" "$out" "$PAUSE_IMAGE" --user 65535:65535 \
      --entrypoint '["/pause"]' --file "$tmp/pause:/pause" >/dev/null
    rm -rf "$tmp"
    log "image $PAUSE_IMAGE: built ($out)"
  fi
  echo "$out" >"$IMAGES/pause.current"
  # busybox-static from Debian, every applet a symlink, user 65532 by default.
  [[ -x /bin/busybox ]] && file -L /bin/busybox | grep -q 'statically linked' ||
    die "/bin/busybox is not the static one (apt-get install busybox-static)"
  h=$( (cat /bin/busybox "$PLATFORM_SRC/oci-archive.py") | sha256sum | cut -c1-12)
  out=$IMAGES/busybox-$h.tar
  if [[ ! -s $out ]]; then
    local args=() a
    for a in $(/bin/busybox --list); do [[ $a == busybox ]] || args+=(--link "busybox:/bin/$a"); done
    python3 "$PLATFORM_SRC/oci-archive.py" "$out" "$BUSYBOX_IMAGE" --user 65532:65532 \
      --cmd '["sh"]' --file /bin/busybox:/bin/busybox --dir /tmp --dir /etc "${args[@]}" >/dev/null
    log "image $BUSYBOX_IMAGE: built ($out)"
  fi
  echo "$out" >"$IMAGES/busybox.current"
}

# ---------------------------------------------------------------- certificates and kubeconfigs
node_pki() {
  cd "$PKI"
  [[ -s ca.crt && -s ca.key && -s openssl.cnf ]] || die "the platform's PKI is missing: run up.sh first"
  umask 077
  cat >node-openssl.cnf <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[kubelet_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:$NODE_BRIDGE_IP,IP:127.0.0.1,DNS:$NODE_NAME
EOF
  nleaf() {  # nleaf NAME SUBJECT CONFIG SECTION
    [[ -s $1.crt && -s $1.key ]] && return 0
    openssl req -new -newkey rsa:2048 -nodes -config "$3" -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in "$1.csr" -CA ca.crt -CAkey ca.key \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$3" -extensions "$4" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr"
  }
  nleaf kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" openssl.cnf client
  nleaf kube-scheduler "/CN=system:kube-scheduler" openssl.cnf client
  # The serving cert names the bridge address, so the API server can verify it (up.sh passes
  # --kubelet-certificate-authority). A cert made for another offset's bridge is made anew.
  if [[ -s kubelet-server.crt ]] && ! openssl x509 -in kubelet-server.crt -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$NODE_BRIDGE_IP"; then
    rm -f kubelet-server.crt kubelet-server.key
  fi
  nleaf kubelet-server "/CN=$NODE_NAME" node-openssl.cnf kubelet_server
  cd - >/dev/null
}

# ---------------------------------------------------------------- process helpers (as up.sh's)
node_start() {  # node_start NAME CMD...
  local name=$1; shift
  pid_alive "$name" && return 0
  printf -- '---- %s node.sh: starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOGS/$name.log"
  (cd "$STATE" && close_inherited_fds && exec setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1) &
  echo $! >"$RUN/$name.pid"
  await_exec "$name"
}

# ---------------------------------------------------------------- up
node_up() {
  local t0=$EPOCHREALTIME missing=() b
  for b in "$KUBELET_BIN" "$SCHEDULER_BIN" "$CRICTL_BIN"; do [[ -x $b ]] || missing+=("$b"); done
  for b in containerd containerd-shim-runc-v2 ctr runc iptables ip gcc; do command -v $b >/dev/null || missing+=("$b"); done
  ipv6_present && { command -v ip6tables >/dev/null || missing+=(ip6tables); }
  for b in bridge host-local loopback portmap tuning; do [[ -x /usr/lib/cni/$b ]] || missing+=("/usr/lib/cni/$b"); done
  [[ ${#missing[@]} -eq 0 ]] || die "node: missing ${missing[*]}
  run TENANCY_NODE=1 platform/install.sh node first"
  [[ $(id -u) -eq 0 ]] || die "node: the kubelet and containerd need root"
  "$KUBECTL" --kubeconfig "$STATE/kubeconfig" get --raw /readyz >/dev/null 2>&1 || die "node: the API server is not up (run up.sh)"
  # A platform started without TENANCY_NODE=1 cannot take the node: its controller manager lacks the node
  # lifecycle controller (the not-ready taint would stay) and its backends do not listen on the bridge.
  local kcm_pid
  kcm_pid=$(cat "$RUN/kube-controller-manager.pid" 2>/dev/null || true)
  if ! { tr '\0' ' ' <"/proc/$kcm_pid/cmdline"; } 2>/dev/null | grep -q node-lifecycle-controller ||
     ! ss -Hltn "sport = :$PG_PORT" | grep -q "$NODE_BRIDGE_IP:"; then
    die "node: this platform was started without TENANCY_NODE=1 (kube-controller-manager without
  node-lifecycle-controller, or PostgreSQL not on $NODE_BRIDGE_IP): make down, then TENANCY_NODE=1 make up"
  fi
  mkdir -p "$NODE" "$RUN" "$LOGS"

  make_bridge
  write_cni
  (node_pki)
  write_kubeconfig "$NODE/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet
  write_kubeconfig "$NODE/kube-scheduler.kubeconfig" system:kube-scheduler kube-scheduler
  build_images

  # ---- containerd: its own root (images, snapshots; kept), state (runtime; removed by down) and socket.
  mkdir -p "$NODE/containerd" "$NODE/runc"
  cat >"$NODE/containerd/config.toml" <<EOF
version = 2
root = "$NODE/containerd/root"
state = "$NODE/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CONTAINERD_SOCK"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  # This machine's root lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below its own (the
  # kubelet asks -998 for a sandbox: "failed to update /proc/self/oom_score_adj: Permission denied").
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$NODE/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE/cni/net.d"
    max_conf_num = 1
EOF
  node_start containerd containerd --config "$NODE/containerd/config.toml"
  wait_for containerd 30 ctr_ version
  # Import the images (a second import of the same archive is a no-op in effect, and fast).
  local archive
  for archive in "$(<"$IMAGES/pause.current")" "$(<"$IMAGES/busybox.current")"; do
    ctr_ images import "$archive" >/dev/null 2>"$LOGS/ctr-import.log" ||
      { cat "$LOGS/ctr-import.log" >&2; die "node: could not import $archive"; }
  done
  ctr_ images label "$PAUSE_IMAGE" io.cri-containerd.pinned=pinned >/dev/null 2>&1 || true

  # ---- RBAC: the kubelet's user gets the system:node ClusterRole (the API server authorizes with RBAC
  # only, no Node authorizer). The API server itself reaches the kubelet as a system:masters client.
  "$KUBECTL" --kubeconfig "$STATE/kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: tenancy-platform:node:$NODE_NAME
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:node:$NODE_NAME"}
EOF

  # ---- kubelet
  local c
  for c in $CGROUP_CONTROLLERS; do
    [[ -d /sys/fs/cgroup/$c ]] && mkdir -p "/sys/fs/cgroup/$c/$NODE_CGROUP"
  done
  mkdir -p "$NODE/kubelet" "$NODE/pod-logs" "$NODE/volume-plugins"
  # The kubelet sets vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1 (unless
  # protectKernelDefaults, with which it refuses to start on this machine's values). Keep the values it
  # found, so node.sh down puts them back.
  if [[ ! -s $NODE/sysctl.saved ]]; then
    sysctl -e vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
      kernel.keys.root_maxkeys kernel.keys.root_maxbytes 2>/dev/null | tr -d ' ' >"$NODE/sysctl.saved"
  fi
  cat >"$NODE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_BRIDGE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
imageServiceEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /$NODE_CGROUP
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
failSwapOn: false
makeIPTablesUtilChains: false
podLogsDir: $NODE/pod-logs
volumePluginDir: $NODE/volume-plugins
clusterDomain: cluster.local
resolvConf: ""
maxPods: 60
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 0s
shutdownGracePeriod: 0s
localStorageCapacityIsolation: true
EOF
  node_start kubelet "$KUBELET_BIN" --config="$NODE/kubelet-config.yaml" \
    --kubeconfig="$NODE/kubelet.kubeconfig" --root-dir="$NODE/kubelet" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_BRIDGE_IP" --v=1
  wait_for kubelet 60 curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz"

  # ---- kube-scheduler
  node_start kube-scheduler "$SCHEDULER_BIN" \
    --kubeconfig="$NODE/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$NODE/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$NODE/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false --profiling=false
  wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$SCHEDULER_PORT/healthz"
  bash "$PLATFORM_SRC/node-apiserver.sh" up   # pods reach the API server at 10.96.0.1:443

  node_ready() {
    [[ $("$KUBECTL" --kubeconfig "$STATE/kubeconfig" get node "$NODE_NAME" \
      -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
  }
  wait_for kubelet 90 node_ready
  # The node lifecycle controller (kube-controller-manager, started with the node enabled) lifts the
  # not-ready taint the kubelet registered with; a controller manager started without it never will.
  untainted() {
    ! "$KUBECTL" --kubeconfig "$STATE/kubeconfig" get node "$NODE_NAME" -o jsonpath='{.spec.taints[*].key}' |
      grep -q node.kubernetes.io/not-ready
  }
  wait_for kubelet 60 untainted
  # NetworkPolicy enforcement (platform/netpol.sh): kube-router's firewall, after the kubelet.
  bash "$PLATFORM_SRC/netpol.sh" up >&2
  printf 'node %s Ready (kubelet %s, containerd %s, bridge %s %s) in %.1fs\n' "$NODE_NAME" \
    "$(ver_kube "$KUBELET_BIN")" "$(containerd --version | awk '{print $3}')" "$NODE_BRIDGE" "$NODE_SUBNET" \
    "$(awk "BEGIN {print $EPOCHREALTIME - $t0}")"
}

# ---------------------------------------------------------------- down
# Processes in our cgroup root (every container process, in any hierarchy that has one).
cgroup_pids() {
  local c
  for c in pids memory cpu freezer; do
    if [[ -d /sys/fs/cgroup/$c/$NODE_CGROUP ]]; then
      find "/sys/fs/cgroup/$c/$NODE_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null || true
    fi
  done | sort -un
}
# containerd shims of our containerd (their command line names its socket).
our_shims() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "containerd-shim.* -address $CONTAINERD_SOCK " && echo "${p#/proc/}"
  done
  return 0
}
node_down() {
  bash "$PLATFORM_SRC/node-apiserver.sh" down 8>&-
  local any=false
  [[ -d $NODE ]] && any=true
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && any=true
  $any || return 0
  # kube-router first (it would rewrite its rules while the pods go), with its chains and ipsets.
  local netpol_rc=0
  bash "$PLATFORM_SRC/netpol.sh" down || netpol_rc=$?
  stop_pid kube-scheduler 10
  stop_pid kubelet 15
  # Pod sandboxes through the CRI, while containerd runs: it stops the containers and the CNI plugins
  # remove each pod's veth, address and network namespace.
  if pid_alive containerd && [[ -x $CRICTL_BIN ]]; then
    crictl_ stopp $(crictl_ pods -q 2>/dev/null) >/dev/null 2>&1 || true
    crictl_ rmp -f -a >/dev/null 2>&1 || true
  fi
  stop_pid containerd 15
  # Whatever survived: shims, then any process still in our cgroups.
  local p
  p=$(our_shims)
  # shellcheck disable=SC2086
  [[ -z $p ]] || kill -KILL $p 2>/dev/null || true
  for _ in 1 2 3; do
    p=$(cgroup_pids)
    [[ -z $p ]] && break
    # shellcheck disable=SC2086
    kill -KILL $p 2>/dev/null || true
    sleep 0.3
  done
  # Mounts under .platform/node (rootfs overlays, netns bind mounts, shm, kubelet volumes): deepest first.
  local m
  for m in $(awk -v n="$NODE/" 'index($5, n) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  net_down
  # Our cgroups (empty now), deepest first.
  local c
  for c in $CGROUP_CONTROLLERS unified; do   # unified: the cgroup2 part of this hybrid layout
    [[ -d /sys/fs/cgroup/$c/$NODE_CGROUP ]] &&
      find "/sys/fs/cgroup/$c/$NODE_CGROUP" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  # The kernel settings the kubelet changed.
  if [[ -s $NODE/sysctl.saved ]]; then
    sysctl -q -p "$NODE/sysctl.saved" >/dev/null 2>&1 || true
    rm -f "$NODE/sysctl.saved"
  fi
  # Runtime state goes (images and snapshots in containerd/root stay, for a fast next start); the
  # IPAM leases go with the pods.
  if awk -v n="$NODE/" 'index($5, n) == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
    log "node: mounts remain under $NODE (not removing its runtime state):"
    awk -v n="$NODE/" 'index($5, n) == 1 {print "  " $5}' /proc/self/mountinfo >&2
    return 1
  fi
  # containerd 1.6 keeps its shims' sockets in /run/containerd/s whatever its state dir (ctr adds fifo
  # and runc there): emptied by the shims as they exit; the folders go when nothing else uses them.
  local d
  for d in /run/containerd/s /run/containerd/fifo /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd; do
    [[ -d $d ]] && rmdir "$d" 2>/dev/null || true
  done
  rm -rf "$NODE/containerd/state" "$NODE/runc" "$NODE/cni/ipam" "$NODE/kubelet/pods" "$NODE/kubelet/plugins" 2>/dev/null || true
  ((netpol_rc == 0)) || { log "node: kube-router's rules or ipsets remain (platform/netpol.sh down)"; return 1; }
  log "node: down"
}

node_status() {
  local s
  for s in containerd kubelet kube-scheduler; do
    if pid_alive "$s"; then printf '%-24s up    pid %s\n' "$s" "$(<"$RUN/$s.pid")"; else printf '%-24s down\n' "$s"; fi
  done
  bash "$PLATFORM_SRC/netpol.sh" status
}

case ${1:-} in
  images) build_images ;;
  bridge) make_bridge ;;
  up) node_up ;;
  down) node_down ;;
  status) node_status ;;
  *) die "usage: node.sh images|bridge|up|down|status" ;;
esac
