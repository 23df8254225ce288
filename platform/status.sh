#!/usr/bin/env bash
# One line per part: up/down, version, port. "up" means its process runs (pid file) and its port
# listens; up.sh does the real health checks. Exit status 0 when all servers are up, 1 otherwise.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

all_up=0
row() {  # row LABEL PIDNAME PORT VERSION
  local state=down pid=-
  if pid_alive "$2" && port_listening "$3"; then state=up; pid=$(<"$RUN/$2.pid"); else all_up=1; fi
  printf '%-24s %-5s %-10s 127.0.0.1:%-6s pid %s\n' "$1" "$state" "${4:-not-installed}" "$3" "$pid"
}
row etcd etcd "$ETCD_PORT" "$(ver_etcd)"
row kube-apiserver kube-apiserver "$APISERVER_PORT" "$(ver_kube "$APISERVER_BIN")"
row kube-controller-manager kube-controller-manager "$KCM_PORT" "$(ver_kube "$KCM_BIN")"
row postgres postgres "$PG_PORT" "$(ver_postgres)"
row redis redis-server "$REDIS_PORT" "$(ver_redis)"
row openbao bao "$BAO_PORT" "$(ver_bao)"
row prometheus prometheus "$PROM_PORT" "$(ver_prometheus)"
row opensearch opensearch "$OPENSEARCH_PORT" "$(ver_opensearch)"
row ferretdb ferretdb "$FERRETDB_PORT" "$(ver_ferretdb)"
row jaeger jaeger "$JAEGER_QUERY_PORT" "$(ver_jaeger)"
# The node (TENANCY_NODE=1), when it was started: kubelet (its healthz port), kube-scheduler, containerd.
if [[ -f $RUN/kubelet.pid || -f $RUN/containerd.pid ]]; then
  row kubelet kubelet "$KUBELET_HEALTHZ_PORT" "$(ver_kube "$KUBELET_BIN")"
  row kube-scheduler kube-scheduler "$SCHEDULER_PORT" "$(ver_kube "$SCHEDULER_BIN")"
  if pid_alive containerd && [[ -S $CONTAINERD_SOCK ]]; then
    printf '%-24s %-5s %-10s %s pid %s\n' containerd up "$(containerd --version | awk '{print $3}')" "${CONTAINERD_SOCK#"$REPO/"}" "$(<"$RUN/containerd.pid")"
  else
    printf '%-24s %-5s\n' containerd down; all_up=1
  fi
fi
# Clients: no process, only whether they are installed.
printf '%-24s %-5s %s\n' kubectl client "$(ver_kubectl || echo not-installed)"
printf '%-24s %-5s %s\n' helm client "$(ver_helm || echo not-installed)"
exit $all_up
