#!/usr/bin/env bash
# Runs the operator locally the way the chart runs it in a cluster: the chart is installed (there is
# no kubelet, so its Deployment never starts pods), and this process authenticates with a token of
# the chart's ServiceAccount and takes its settings from the chart's ConfigMap. So `make demo`
# exercises exactly the chart's RBAC. Needs `source .platform/env` for start.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
state=$repo/.platform
pidfile=$state/operator.pid
release=tenancy-operator ns=tenancy-system

start() {
  if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "operator already running (pid $(cat "$pidfile"))"; return; fi
  mkdir -p "$state/logs"
  kubectl apply -f "$repo/manifests/namespace.yaml" >/dev/null
  "$repo/hack/helm" upgrade --install "$release" "$repo/charts/tenancy-operator" -n "$ns" --set replicaCount=1 >/dev/null
  token=$(kubectl create token "$release" -n "$ns" --duration=48h)
  server=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  kubeconfig=$state/operator.kubeconfig
  (umask 077; cat >"$kubeconfig" <<EOC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: $release, user: {token: "$token"}}]
contexts: [{name: $release, context: {cluster: local, user: $release}}]
current-context: $release
EOC
)
  # The chart's settings, as the Deployment would get them; one process, so no peering. Archives go
  # to a folder of the platform state, the host's stand-in for the chart's volume (without one,
  # archiving is Stalled).
  archives=${TENANCY_ARCHIVE_DIR:-$state/archives}
  mkdir -p "$archives"
  mapfile -t settings < <(kubectl get configmap "$release" -n "$ns" -o go-template='{{range $k, $v := .data}}{{$k}}={{$v}}{{"\n"}}{{end}}')
  env "${settings[@]}" KUBECONFIG="$kubeconfig" TENANCY_STANDALONE=true TENANCY_ARCHIVE_DIR="$archives" \
    TENANCY_VERIFY_INTERVAL="${TENANCY_VERIFY_INTERVAL:-30}" TENANCY_LIVENESS=http://127.0.0.1:18080/healthz \
    TENANCY_METRICS_PORT=$((19092 + ${TENANCY_PORT_OFFSET:-0})) TENANCY_METRICS_ADDRESS=127.0.0.1 TENANCY_OTLP_ENDPOINT="${TENANCY_OTLP_ENDPOINT:-${JAEGER_OTLP_URL:-}}" nohup "$repo/.venv/bin/tenancy-operator" >"$state/logs/operator.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 60); do
    curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && { echo "operator running as the chart's ServiceAccount (pid $(cat "$pidfile"))"; return; }
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.5
  done
  echo "operator did not become healthy; last lines of $state/logs/operator.log:" >&2
  tail -20 "$state/logs/operator.log" >&2; exit 1
}

stop() {
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile"); kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true; rm -f "$pidfile"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
