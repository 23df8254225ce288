#!/usr/bin/env bash
# Pods on the node reach the API server through the `kubernetes` Service (10.96.0.1:443), as on a
# cluster: in-cluster clients (kopf, the kubernetes client) take KUBERNETES_SERVICE_HOST/PORT, which the
# kubelet sets from that Service. There is no kube-proxy here, and the API server listens on 127.0.0.1
# only, so this script serves that one Service with the least machinery:
#   - a TCP relay (tcp-relay.py, process `node-apiserver-relay`) on the bridge address
#     $NODE_BRIDGE_IP:$APISERVER_PORT to 127.0.0.1:$APISERVER_PORT (TLS passes through; the API
#     server's certificate already names 10.96.0.1, the address the pods dial);
#   - a DNAT rule in our nat chain TENANCY-SVC-<offset>, jumped to from PREROUTING for packets that come
#     in from our bridge: 10.96.0.1:443 -> the relay;
#   - pods get a route to the service range 10.96.0.0/16 via the bridge address (node.sh's CNI config);
#     nothing else of that range is served, and with the host's ip_forward=0 and our FORWARD drop chain a
#     packet to any other service address goes nowhere. Other Services (the operator's metrics Service)
#     are not served to pods: only the API server's.
# The backends that listen on 127.0.0.1 only (OpenSearch, FerretDB, Prometheus; PostgreSQL, Redis and
# OpenBao listen on the bridge address themselves) get the same kind of relay on the bridge address and
# their own port (processes `node-relay-<name>`), so the chart's operator pods reach every backend of
# examples/backends.yaml there. OpenSearch's certificate names the bridge address (opensearch.sh).
# Usage: node-apiserver.sh up | down   (node.sh up and down call it; idempotent)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SVC_CHAIN=TENANCY-SVC-$PORT_OFFSET
KUBERNETES_SERVICE_IP=10.96.0.1        # up.sh: --service-cluster-ip-range=10.96.0.0/16, first address
RELAY=node-apiserver-relay

BACKEND_RELAYS=("node-relay-opensearch:$OPENSEARCH_PORT" "node-relay-ferretdb:$FERRETDB_PORT"
                "node-relay-prometheus:$PROM_PORT")

bridge_listening() { ss -Hltn "sport = :$1" | grep -q "$NODE_BRIDGE_IP:"; }

relay_up() {  # relay_up NAME PORT: NAME relays $NODE_BRIDGE_IP:PORT to 127.0.0.1:PORT
  local name=$1 port=$2
  pid_alive "$name" && return 0
  printf -- '---- %s node-apiserver.sh: starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOGS/$name.log"
  (cd "$STATE" && close_inherited_fds && exec setsid python3 "$PLATFORM_SRC/tcp-relay.py" --name "$name" \
    "$NODE_BRIDGE_IP:$port" "127.0.0.1:$port" </dev/null >>"$LOGS/$name.log" 2>&1) &
  echo $! >"$RUN/$name.pid"
  await_exec "$name"
  wait_for "$name" 15 bridge_listening "$port"   # 15 s: python's start on a loaded machine
}

svc_up() {
  mkdir -p "$RUN" "$LOGS"
  relay_up "$RELAY" "$APISERVER_PORT"
  local pair
  for pair in "${BACKEND_RELAYS[@]}"; do
    relay_up "${pair%%:*}" "${pair#*:}"
  done
  iptables -w -t nat -N "$SVC_CHAIN" 2>/dev/null || true
  local rule=(-d "$KUBERNETES_SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$NODE_BRIDGE_IP:$APISERVER_PORT")
  iptables -w -t nat -C "$SVC_CHAIN" "${rule[@]}" 2>/dev/null || iptables -w -t nat -A "$SVC_CHAIN" "${rule[@]}"
  iptables -w -t nat -C PREROUTING -i "$NODE_BRIDGE" -j "$SVC_CHAIN" 2>/dev/null ||
    iptables -w -t nat -I PREROUTING 1 -i "$NODE_BRIDGE" -j "$SVC_CHAIN"
}

svc_down() {
  local pair
  for pair in "$RELAY:" "${BACKEND_RELAYS[@]}"; do
    stop_pid "${pair%%:*}" 5
  done
  if command -v iptables >/dev/null; then
    while iptables -w -t nat -D PREROUTING -i "$NODE_BRIDGE" -j "$SVC_CHAIN" 2>/dev/null; do :; done
    iptables -w -t nat -F "$SVC_CHAIN" 2>/dev/null || true
    iptables -w -t nat -X "$SVC_CHAIN" 2>/dev/null || true
  fi
}

case ${1:-} in
  up) svc_up ;;
  down) svc_down ;;
  *) die "usage: node-apiserver.sh up|down" ;;
esac
