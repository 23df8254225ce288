# Shared by install.sh, up.sh, down.sh and status.sh (sourced, not run).
# One place for paths, ports and the small helpers that manage processes by pid file.

PLATFORM_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$PLATFORM_SRC/.." && pwd)
# shellcheck source=versions.env
source "$PLATFORM_SRC/versions.env"

CACHE=${TENANCY_CACHE:-$HOME/.cache/tenancy-operator}
STATE=$(readlink -f "$REPO/.platform")  # everything the running platform owns; gitignored (a worktree may link it)
RUN=$STATE/run                 # pid files
LOGS=$STATE/logs
PKI=$STATE/pki
SECRETS=$STATE/secrets         # generated passwords and tokens (mode 600)
PBIN=$STATE/bin                # symlinks to the cached, versioned binaries
VENV_BIN=$REPO/.venv/bin

# PostgreSQL runs as the `postgres` user, which may not be able to reach a checkout under /root or
# another private folder. Its data then lives here instead, keyed by the checkout's path.
PG_OUTSIDE=/var/lib/tenancy-operator/$(printf '%s' "$REPO" | sha256sum | cut -c1-12)

# Loopback ports. Chosen away from the usual defaults so a system service cannot collide.
# TENANCY_PORT_OFFSET moves them all, so a second checkout can run its own platform beside this one
# (a long soak next to the everyday one; an offset of 3000 is clear of every port here); .platform/env
# keeps it for the scripts run later.
PORT_OFFSET=${TENANCY_PORT_OFFSET:-0}
ETCD_PORT=$((12379 + PORT_OFFSET))
ETCD_PEER_PORT=$((12380 + PORT_OFFSET))
APISERVER_PORT=$((16443 + PORT_OFFSET))
KCM_PORT=$((16257 + PORT_OFFSET))
PG_PORT=$((15432 + PORT_OFFSET))
REDIS_PORT=$((16379 + PORT_OFFSET))
BAO_PORT=$((18200 + PORT_OFFSET))
BAO_CLUSTER_PORT=$((18201 + PORT_OFFSET))         # bao -dev always opens its cluster port at listen port + 1
PROM_PORT=$((19090 + PORT_OFFSET))
FERRETDB_PORT=$((17017 + PORT_OFFSET))            # MongoDB wire protocol (FerretDB on the platform's PostgreSQL)
FERRETDB_DEBUG_PORT=$((17088 + PORT_OFFSET))      # FerretDB's metrics and health (/debug/metrics, /debug/livez)
LOADGEN_PORT=$((19091 + PORT_OFFSET))             # not a platform part: hack/loadgen.py listens here, Prometheus scrapes it
OPERATOR_METRICS_PORT=$((19092 + PORT_OFFSET))    # not a platform part: a local operator's metrics (TENANCY_METRICS_PORT)
OPENSEARCH_PORT=$((19200 + PORT_OFFSET))          # HTTPS (security plugin)
OPENSEARCH_TRANSPORT_PORT=$((19300 + PORT_OFFSET))
JAEGER_OTLP_PORT=$((14318 + PORT_OFFSET))         # OTLP/HTTP receiver (the operator's TENANCY_OTLP_ENDPOINT)
JAEGER_QUERY_PORT=$((16686 + PORT_OFFSET))        # UI and query API (/api/traces)
JAEGER_QUERY_GRPC_PORT=$((16685 + PORT_OFFSET))   # query API over gRPC (Jaeger opens it; nothing here uses it)
# The node (platform/node.sh; opt-in with TENANCY_NODE=1). Ports away from the kubelet's usual 10250.
KUBELET_PORT=$((11250 + PORT_OFFSET))             # kubelet API (on the bridge address: the node's InternalIP)
KUBELET_HEALTHZ_PORT=$((11248 + PORT_OFFSET))     # kubelet /healthz on 127.0.0.1
SCHEDULER_PORT=$((11259 + PORT_OFFSET))           # kube-scheduler /healthz (HTTPS) on 127.0.0.1
NODE_NET_INDEX=$(((PORT_OFFSET / 100) % 256))     # offset 0: 10.88.0.0/24 on tnc0; offset 5000: 10.88.50.0/24 on tnc50
NODE_BRIDGE=tnc$NODE_NET_INDEX
NODE_SUBNET=10.88.$NODE_NET_INDEX.0/24
NODE_BRIDGE_IP=10.88.$NODE_NET_INDEX.1            # the bridge's address: the pods' only way out (to the backends)
NODE_BRIDGE_MAC=$(printf '02:74:6e:63:%02x:01' "$NODE_NET_INDEX")  # fixed: a bridge's own address follows its ports'
NODE_NAME=tenancy-node
NODE_CHAIN=TENANCY-NODE-$PORT_OFFSET              # our iptables chain (mangle table), jumped to from FORWARD
NODE_IN_CHAIN=TENANCY-NODE-IN-$PORT_OFFSET        # ours too (mangle table), jumped to from INPUT: what pods may reach on the host
NODE_CGROUP=tenancy-node-$PORT_OFFSET             # the kubelet's cgroupRoot, in every cgroup v1 hierarchy
NODE=$STATE/node                                  # containerd, kubelet, CNI state of the node
CONTAINERD_SOCK=$NODE/containerd/containerd.sock
PAUSE_IMAGE=localhost/tenancy/pause:$PAUSE_VERSION
# The node's images (node.sh images), tagged by the busybox version (Debian's busybox-static); the archive's name carries its content hash.
BUSYBOX_IMAGE=localhost/tenancy/busybox:$( (/bin/busybox 2>/dev/null || true) | sed -n '1s/^BusyBox \(v[0-9.]*\).*/\1/p')
[[ $BUSYBOX_IMAGE == *: ]] && BUSYBOX_IMAGE+=missing
# TENANCY_NODE=1 adds the node to up.sh (down.sh always removes whatever the node left).
node_enabled() { [[ ${TENANCY_NODE:-0} == 1 ]]; }
ALL_PORTS="$ETCD_PORT $ETCD_PEER_PORT $APISERVER_PORT $KCM_PORT $PG_PORT $REDIS_PORT $BAO_PORT $BAO_CLUSTER_PORT $PROM_PORT $OPENSEARCH_PORT $OPENSEARCH_TRANSPORT_PORT"
ALL_PORTS+=" $FERRETDB_PORT $FERRETDB_DEBUG_PORT $JAEGER_OTLP_PORT $JAEGER_QUERY_PORT $JAEGER_QUERY_GRPC_PORT"
ALL_PORTS+=" $KUBELET_PORT $KUBELET_HEALTHZ_PORT $SCHEDULER_PORT"

# The kube builds must pass the same ldflags everywhere: the cache key is name+version only, so
# whoever builds first decides what `--version` prints.
KUBE_MINOR=${KUBE_VERSION#v1.}; KUBE_MINOR=${KUBE_MINOR%%.*}
KUBE_LDFLAGS="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$KUBE_MINOR -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"

# Cached binary paths (what install.sh produces).
bin_path() { echo "$CACHE/bin/$1-$2"; }
ETCD_BIN=$(bin_path etcd "$ETCD_VERSION")
APISERVER_BIN=$(bin_path kube-apiserver "$KUBE_VERSION")
KCM_BIN=$(bin_path kube-controller-manager "$KUBE_VERSION")
HELM_BIN=$(bin_path helm "$HELM_VERSION")
FERRETDB_BIN=$(bin_path ferretdb "$FERRETDB_VERSION")
JAEGER_BIN=$(bin_path jaeger "$JAEGER_VERSION")
KUBELET_BIN=$(bin_path kubelet "$KUBE_VERSION")
SCHEDULER_BIN=$(bin_path kube-scheduler "$KUBE_VERSION")
CRICTL_BIN=$(bin_path crictl "$CRICTL_VERSION")

# Debian installs PostgreSQL under /usr/lib/postgresql/<major>/bin; take the newest present.
pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [[ -n $d && -x $d/postgres ]] && echo "$d"
}

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# running PID: the process exists and is not a zombie. kill -0 alone is not enough: a stopped
# daemon stays a zombie until its parent (here often PID 1, which reaps lazily) collects it.
running() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ ${st%% *} != Z ]]
}

# pid_alive NAME: true when .platform/run/NAME.pid names a live process whose command line still
# mentions NAME (so a pid reused after a reboot by something else does not count).
# Closes every descriptor above stderr in the calling (sub)shell, before it execs a daemon: a daemon must
# not keep a lock its starter held (a `flock FILE make up` around up.sh, or up.sh's own $STATE/lock),
# or every later taker of that lock waits for the daemon to exit.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then { exec {fd}>&-; } 2>/dev/null || true; fi
  done
}

pid_alive() {
  local f=$RUN/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$1"
}

# pid_file_running NAME: the process .platform/run/NAME.pid names is still running, whatever its
# command line says (a part between fork and exec still carries its starter's).
pid_file_running() {
  local f=$RUN/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && running "$pid"
}

# await_exec NAME: after `( ... exec CMD ) &` wrote NAME's pid file, wait (at most 30 s) until that
# subshell has exec'd. Before it has, its command line is the calling script's, and pid_alive (which
# looks for NAME in it) would call a starting part dead: on a loaded machine CI runs failed with
# "ferretdb exited during start-up" and "node-relay-ferretdb exited during start-up", empty logs.
await_exec() {
  local name=$1 pid i
  pid=$(<"$RUN/$name.pid")
  for ((i = 0; i < 300; i++)); do
    running "$pid" || return 0
    pid_alive "$name" && return 0
    sleep 0.1
  done
}

# stop_pid NAME [GRACE_SECONDS] [SIGNAL]: SIGNAL (default TERM), wait up to GRACE, then SIGKILL;
# removes the pid file.
stop_pid() {
  local name=$1 grace=${2:-15} sig=${3:-TERM} f=$RUN/$1.pid pid i
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  if pid_alive "$name"; then
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      running "$pid" || break
      sleep 0.1
    done
    ((i < 30)) || log "$name took $((i / 10))s to stop"
    if running "$pid"; then
      log "$name did not stop within ${grace}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do running "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$f"
}

# port_listening PORT: something listens on 127.0.0.1:PORT or on every address over TCP, so a server
# could not bind 127.0.0.1:PORT. A listener on another single address (the node's relays on the bridge
# address, node-apiserver.sh) does not count.
port_listening() {
  ss -Hltn "sport = :$1" 2>/dev/null | awk '{print $4}' |
    grep -qE '^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]|\[::ffff:127\.0\.0\.1\]):'
}

# Credentials generated once per .platform (kept across down/up, gone with --purge).
secret() {
  local f=$SECRETS/$1
  if [[ ! -s $f ]]; then
    mkdir -p "$SECRETS"; chmod 700 "$SECRETS"
    (umask 077; openssl rand -hex 16 >"$f")
  fi
  cat "$f"
}

# Versions, one short string each; empty when the binary is absent.
ver_kube()     { [[ -x $1 ]] && "$1" --version 2>/dev/null | awk '{print $2}'; }
ver_etcd()     { [[ -x $ETCD_BIN ]] && "$ETCD_BIN" --version 2>/dev/null | awk '/etcd Version/ {print $3}'; }
ver_postgres() { local d; d=$(pg_bindir) && "$d/postgres" --version | awk '{print $3}'; }
ver_redis()    { command -v redis-server >/dev/null && redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'; }
ver_prometheus() { command -v prometheus >/dev/null && prometheus --version 2>/dev/null | awk 'NR == 1 {print $3}'; }
ver_bao()      { [[ -x $VENV_BIN/bao ]] && "$VENV_BIN/bao" version 2>/dev/null | awk '{print $2}'; }
ver_kubectl()  { [[ -x $VENV_BIN/kubectl ]] && "$VENV_BIN/kubectl" version --client 2>/dev/null | awk '/Client Version/ {print $3}'; }
# OpenSearch's unpacked distribution: per version in the cache, or (as root, since OpenSearch runs as
# its own user who cannot enter /root) under /var/lib/tenancy-operator.
os_home() {
  if [[ $(id -u) -eq 0 ]]; then echo "/var/lib/tenancy-operator/opensearch-$OPENSEARCH_VERSION"
  else echo "$CACHE/opensearch-$OPENSEARCH_VERSION"; fi
}
ver_opensearch() { [[ -x $(os_home)/bin/opensearch ]] && echo "$OPENSEARCH_VERSION"; }
ver_ferretdb() { [[ -x $FERRETDB_BIN ]] && "$FERRETDB_BIN" --version 2>/dev/null | awk '/^version:/ {print $2}'; }
ver_jaeger()   { [[ -x $JAEGER_BIN ]] && echo "$JAEGER_VERSION"; }
ver_helm()     { [[ -x $HELM_BIN ]] && "$HELM_BIN" version --short 2>/dev/null; }

# wait_for NAME TIMEOUT CHECK...: poll CHECK until it succeeds. Fails early if the process died (its
# pid file's process gone: not pid_alive, which calls a part that has not exec'd yet dead), and on
# timeout, naming the part and showing the tail of its log.
wait_for() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! pid_file_running "$name"; then
      log "---- tail of $LOGS/$name.log"; tail -n 25 "$LOGS/$name.log" >&2 || true
      die "$name exited during start-up (log: $LOGS/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      log "---- tail of $LOGS/$name.log"; tail -n 25 "$LOGS/$name.log" >&2 || true
      die "$name not healthy after ${timeout}s (log: $LOGS/$name.log)"
    fi
    sleep 0.2
  done
}

# write_kubeconfig FILE USER CERT-BASENAME ($PKI/CERT.crt and .key): self-contained (certs inlined), so any client,
# including the Python kubernetes client, can use it with no paths to resolve.
write_kubeconfig() {
  local file=$1 user=$2 cert=$3
  (umask 077; cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tenancy-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI/$cert.key")
contexts:
- name: tenancy-local
  context: {cluster: tenancy-local, user: $user}
current-context: tenancy-local
EOF
  )
  mv "$file.tmp" "$file"
}
