#!/usr/bin/env bash
# OpenSearch with its security plugin, the local platform's search backend.
# Usage: opensearch.sh install|spawn|start|stop|status   (install.sh, up.sh, down.sh and status.sh call it)
#   install: the distribution zip and the security plugin from Maven Central (mvn), unpacked with the
#            plugin installed into $TENANCY_CACHE/opensearch-<version> (cached per version).
#   start  : TLS certificates signed by the platform CA (.platform/pki), config and data under
#            .platform/opensearch, heap $OPENSEARCH_HEAP; idempotent (a running node is only
#            health-checked). Writes .platform/opensearch.env (SEARCH_* for tests and demos).
#   stop   : stops the node (data kept).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# OpenSearch refuses to run as root: as root it runs as the system user $OS_USER (made by install),
# and its files must be reachable by that user, so the cache and, when the checkout is private to
# root, the node's state live under /var/lib/tenancy-operator instead (as PostgreSQL's do).
OS_USER=tenancy-search
OS_HOME=$(os_home)
OS_STATE=$STATE/opensearch
AS_OS=()
if [[ $(id -u) -eq 0 ]]; then
  AS_OS=(setpriv --reuid="$OS_USER" --regid="$OS_USER" --init-groups --)
  if id "$OS_USER" >/dev/null 2>&1 && ! "${AS_OS[@]}" test -x "$STATE" 2>/dev/null; then
    OS_STATE=$PG_OUTSIDE/opensearch
  fi
fi
OS_CONF=$OS_STATE/config

install_os() {
  if [[ $(id -u) -eq 0 ]] && ! id "$OS_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER"
    log "opensearch: made the system user $OS_USER (OpenSearch does not run as root)"
  fi
  if [[ -x $OS_HOME/bin/opensearch && -d $OS_HOME/plugins/opensearch-security ]]; then
    log "opensearch $OPENSEARCH_VERSION: cached"; return
  fi
  command -v mvn >/dev/null || die "mvn is not on PATH; it fetches OpenSearch from Maven Central"
  command -v java >/dev/null || die "java (17) is not on PATH; OpenSearch $OPENSEARCH_VERSION needs it"
  local start=$SECONDS dl=$CACHE/build/opensearch-$OPENSEARCH_VERSION
  mkdir -p "$dl"
  log "opensearch $OPENSEARCH_VERSION: fetching the distribution and the security plugin (mvn)"
  mvn -q dependency:copy -DoutputDirectory="$dl" \
    -Dartifact="org.opensearch.distribution.integ-test-zip:opensearch:$OPENSEARCH_VERSION:zip" >&2
  mvn -q dependency:copy -DoutputDirectory="$dl" \
    -Dartifact="org.opensearch.plugin:opensearch-security:$OPENSEARCH_SECURITY_VERSION:zip" >&2
  rm -rf "$OS_HOME.tmp"; mkdir -p "$OS_HOME.tmp"
  (cd "$OS_HOME.tmp" && unzip -q "$dl/opensearch-$OPENSEARCH_VERSION.zip")
  local home=$OS_HOME.tmp/opensearch-$OPENSEARCH_VERSION
  JAVA_HOME=$(java_home) "$home/bin/opensearch-plugin" install --batch \
    "file://$dl/opensearch-security-$OPENSEARCH_SECURITY_VERSION.zip" >&2
  chmod +x "$home"/plugins/opensearch-security/tools/*.sh
  rm -rf "$OS_HOME"; mv "$home" "$OS_HOME"; rm -rf "$OS_HOME.tmp" "$dl"
  log "opensearch $OPENSEARCH_VERSION: installed in $((SECONDS - start))s"
}

# The JDK OpenSearch 2.x runs on: Java 17 (the distribution zip carries none).
java_home() {
  local j
  for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/java-17-openjdk; do
    [[ -x $j/bin/java ]] && { echo "$j"; return; }
  done
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

# Node certificate (serverAuth+clientAuth, SAN 127.0.0.1/localhost and the node's bridge address) signed by the platform CA, so the
# operator verifies OpenSearch with the same ca.crt as the apiserver. PKCS#8 keys, as the plugin wants.
make_certs() {
  cd "$PKI"
  [[ -s ca.crt && -s ca.key ]] || die "opensearch: $PKI/ca.crt missing (up.sh makes the platform CA)"
  cat >opensearch.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[node]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:@NODE_BRIDGE_IP@
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  # The node's bridge address too: the chart's operator pods reach OpenSearch there (node-apiserver.sh's
  # relay). A certificate made before it named that address is made again.
  sed -i "s/@NODE_BRIDGE_IP@/$NODE_BRIDGE_IP/" opensearch.cnf
  if [[ -s opensearch-node.crt ]] && ! openssl x509 -in opensearch-node.crt -noout -ext subjectAltName 2>/dev/null |
       grep -q "IP Address:$NODE_BRIDGE_IP\b"; then
    rm -f opensearch-node.crt opensearch-node.key
  fi
  umask 077
  local n s e
  for n in "opensearch-node:/CN=opensearch-node:node" "opensearch-admin:/CN=opensearch-admin:client"; do
    IFS=: read -r n s e <<<"$n"
    [[ -s $n.crt && -s $n.key ]] && continue
    openssl req -new -newkey rsa:2048 -nodes -config opensearch.cnf -subj "$s" -keyout "$n.key" -out "$n.csr" 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in "$n.csr" -CA ca.crt -CAkey ca.key \
      -set_serial "0x$(openssl rand -hex 16)" -extfile opensearch.cnf -extensions "$e" -out "$n.crt" 2>/dev/null
    rm -f "$n.csr"
  done
  cd - >/dev/null
}

write_config() {
  local pw hash
  pw=$(secret opensearch-admin-password)
  mkdir -p "$OS_CONF" "$OS_STATE/data" "$OS_STATE/logs" "$OS_STATE/tmp"
  [[ $OS_STATE == "$PG_OUTSIDE"/* ]] && chmod 755 "$PG_OUTSIDE"
  if [[ ! -d $OS_CONF/opensearch-security ]]; then
    cp -r "$OS_HOME/config/." "$OS_CONF/"
  fi
  cp "$PKI/ca.crt" "$PKI/opensearch-node.crt" "$PKI/opensearch-node.key" "$OS_CONF/"
  # jvm.options is rewritten from the distribution's copy on every start, so a platform directory
  # that moved (or was first started from another checkout) never keeps a stale absolute path.
  cp "$OS_HOME/config/jvm.options" "$OS_CONF/jvm.options"
  # Small heap: the test platform holds a few dozen tiny indices.
  # The JVM's own files (GC log, error file, heap dumps) go under the node's state, not the cwd.
  sed -i -E "s/^-Xms.*/-Xms$OPENSEARCH_HEAP/; s/^-Xmx.*/-Xmx$OPENSEARCH_HEAP/
    s#file=logs/gc.log#file=$OS_STATE/logs/gc.log#; s#filecount=32,filesize=64m#filecount=2,filesize=8m#
    s#^-XX:HeapDumpPath=.*#-XX:HeapDumpPath=$OS_STATE/tmp#; s#^-XX:ErrorFile=logs/#-XX:ErrorFile=$OS_STATE/logs/#" \
    "$OS_CONF/jvm.options"
  cat >"$OS_CONF/opensearch.yml" <<EOF
cluster.name: tenancy-local
node.name: node-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: $OPENSEARCH_PORT
transport.port: $OPENSEARCH_TRANSPORT_PORT
path.data: $OS_STATE/data
path.logs: $OS_STATE/logs
# A nearly full test disk must not turn every index read-only.
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
plugins.security.ssl.transport.pemcert_filepath: opensearch-node.crt
plugins.security.ssl.transport.pemkey_filepath: opensearch-node.key
plugins.security.ssl.transport.pemtrustedcas_filepath: ca.crt
plugins.security.ssl.transport.enforce_hostname_verification: false
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: opensearch-node.crt
plugins.security.ssl.http.pemkey_filepath: opensearch-node.key
plugins.security.ssl.http.pemtrustedcas_filepath: ca.crt
plugins.security.allow_default_init_securityindex: true
plugins.security.authcz.admin_dn: ["CN=opensearch-admin"]
plugins.security.nodes_dn: ["CN=opensearch-node"]
plugins.security.restapi.roles_enabled: ["all_access"]
plugins.security.system_indices.enabled: true
plugins.security.audit.type: noop
plugins.security.check_snapshot_restore_write_privileges: true
plugins.security.enable_snapshot_restore_privilege: true
EOF
  # The one internal user the security index starts with: the platform's admin (all_access). The
  # operator's Backend Secret holds it. Written only once: the security index is the truth afterwards.
  if [[ ! -s $OS_STATE/.security-initialised ]]; then
    hash=$(JAVA_HOME=$(java_home) OPENSEARCH_JAVA_HOME=$(java_home) \
      "$OS_HOME/plugins/opensearch-security/tools/hash.sh" -p "$pw" 2>/dev/null | tail -n1)
    [[ $hash == \$2* ]] || die "opensearch: could not hash the admin password"
    (umask 077; cat >"$OS_CONF/opensearch-security/internal_users.yml" <<EOF
_meta:
  type: "internalusers"
  config_version: 2
admin:
  hash: "$hash"
  reserved: true
  backend_roles: ["admin"]
  description: "local platform admin (tenancy operator Backend Secret)"
EOF
    )
    # Role mappings: admin to all_access only. The plugin's default file also maps `own_index`
    # (indices_all, aliases included, on an index named like the user) to every user: a tenant could
    # make index `tenant-<name>_a` and alias it into another tenant's `t-<other>_*` space.
    cat >"$OS_CONF/opensearch-security/roles_mapping.yml" <<EOF
_meta:
  type: "rolesmapping"
  config_version: 2
all_access:
  reserved: false
  backend_roles: ["admin"]
  description: "Maps admin to all_access"
EOF
    echo yes >"$OS_STATE/.security-initialised"
  fi
  [[ $(id -u) -eq 0 ]] && chown -R "$OS_USER:" "$OS_STATE"
  chmod 700 "$OS_STATE"
}

os_ready() {
  curl -fsS --cacert "$PKI/ca.crt" -u "admin:$(secret opensearch-admin-password)" \
    "https://127.0.0.1:$OPENSEARCH_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null
}

spawn_os() {
  [[ -x $OS_HOME/bin/opensearch ]] || die "opensearch $OPENSEARCH_VERSION missing: run platform/install.sh opensearch"
  mkdir -p "$RUN" "$LOGS" "$PKI"
  # A running node (up.sh spawns it early, then `start` waits for it) keeps its files: rewriting its
  # config directory while the JVM walks it at boot failed the start (sed -i's temporary file vanished
  # under OpenSearch's LogConfigurator: NoSuchFileException .../config/sedXXXXXX; CI 2026-12-08).
  pid_alive opensearch && return 0
  (make_certs)
  # The node's data holds the security index, made with the admin password of the checkout that first
  # started it. State kept outside the checkout (/var/lib/..., keyed by the checkout's path) outlives a
  # clone removed and made again at that path, whose new password that index would refuse: such state
  # is removed, as PostgreSQL's is (up.sh).
  local owner
  owner=$(printf '%s' "$(secret opensearch-admin-password)" | sha256sum | cut -c1-16)
  if [[ -d $OS_STATE/data ]] && [[ $(cat "$OS_STATE/.owner" 2>/dev/null) != "$owner" ]]; then
    log "opensearch: removing $OS_STATE, left by an earlier checkout (its admin password is gone)"
    rm -rf "$OS_STATE"
  fi
  write_config
  echo "$owner" >"$OS_STATE/.owner"
  port_listening "$OPENSEARCH_PORT" && die "opensearch: port $OPENSEARCH_PORT is taken by another process"
  printf -- '---- %s opensearch.sh: starting opensearch\n' "$(date -u +%FT%TZ)" >>"$LOGS/opensearch.log"
  (cd "$STATE" && close_inherited_fds && exec env JAVA_HOME="$(java_home)" OPENSEARCH_JAVA_HOME="$(java_home)" \
    OPENSEARCH_PATH_CONF="$OS_CONF" OPENSEARCH_TMPDIR="$OS_STATE/tmp" \
    setsid "${AS_OS[@]}" "$OS_HOME/bin/opensearch" </dev/null >>"$LOGS/opensearch.log" 2>&1) &
  echo $! >"$RUN/opensearch.pid"
  await_exec opensearch
  date +%s.%N >"$OS_STATE/.spawned-at"
}

start_os() {
  spawn_os
  local deadline=$((SECONDS + 120))
  until os_ready 2>/dev/null; do
    if ! pid_alive opensearch; then
      tail -n 25 "$LOGS/opensearch.log" >&2; die "opensearch exited during start-up (log: $LOGS/opensearch.log)"
    fi
    ((SECONDS < deadline)) || { tail -n 25 "$LOGS/opensearch.log" >&2; die "opensearch not healthy after 120s"; }
    sleep 0.5
  done
  (umask 077; cat >"$STATE/opensearch.env" <<EOF
export SEARCH_URL=https://127.0.0.1:$OPENSEARCH_PORT
export SEARCH_ADMIN_USERNAME=admin
export SEARCH_ADMIN_PASSWORD=$(secret opensearch-admin-password)
export SEARCH_CA_FILE=$PKI/ca.crt
EOF
  )
  log "opensearch: ready $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $(cat "$OS_STATE/.spawned-at")}")s after its start"
}

case ${1:-} in
  install) install_os ;;
  spawn) spawn_os ;;   # start without waiting (up.sh waits later, while the other parts start)
  start) start_os ;;
  stop) stop_pid opensearch 30 ;;
  status) os_ready ;;
  *) die "usage: opensearch.sh install|spawn|start|stop|status" ;;
esac
