#!/usr/bin/env bash
# Stops every process of the local platform. Usage: down.sh [--purge]
# Data dirs, certs and passwords under .platform are kept (the next up reuses them, except OpenBao's
# dev-mode in-memory state); --purge then removes .platform entirely. Idempotent.
# Exit status is non-zero if one of the platform's ports is still listening afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=false
case ${1:-} in
  --purge) purge=true ;;
  "") ;;
  *) die "usage: down.sh [--purge]" ;;
esac

if [[ -d $STATE ]]; then
  exec 8>"$STATE/lock"
  flock -w 120 8 || die "another platform up/down holds $STATE/lock"
fi

# The node first (platform/node.sh; nothing to do when it never ran): kubelet, scheduler, every pod
# sandbox and container, containerd, network namespaces, veths, the bridge, our iptables chain,
# mounts and cgroups under .platform/node.
node_rc=0
bash "$PLATFORM_SRC/node.sh" down 8>&- || node_rc=$?

# Dependents first: the controller manager and apiserver before etcd. PostgreSQL gets SIGINT (its
# "fast" shutdown); SIGTERM would be "smart" and wait for every client to disconnect.
if [[ -d $RUN ]]; then
  stop_pid kube-controller-manager 10
  stop_pid kube-apiserver 20
  stop_pid etcd 15
  stop_pid prometheus 15
  stop_pid opensearch 30
  stop_pid bao 10
  stop_pid redis-server 10
  stop_pid ferretdb 10
  stop_pid jaeger 10
  stop_pid postgres 20 INT
fi

# Strays: processes of ours without a pid file (an interrupted up, a deleted .platform/run). All
# parts are started with their cwd inside .platform, so a known binary whose cwd is there is ours.
our_strays() {
  local p exe cwd
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
    [[ $cwd == "$STATE" || $cwd == "$STATE"/* ]] || continue
    case ${exe##*/} in
      etcd* | kube-apiserver* | kube-controller-manager* | kube-scheduler* | kubelet* | containerd | containerd-shim* | postgres | redis-server | bao | prometheus | java | ferretdb* | jaeger*) echo "${p#/proc/}" ;;
    esac
  done
}
strays=$(our_strays)
if [[ -n $strays ]]; then
  log "stopping leftover platform processes: $(echo $strays)"
  # shellcheck disable=SC2086
  kill -TERM $strays 2>/dev/null || true
  for _ in $(seq 50); do [[ -z $(our_strays) ]] && break; sleep 0.2; done
  strays=$(our_strays)
  # shellcheck disable=SC2086
  [[ -z $strays ]] || kill -KILL $strays 2>/dev/null || true
fi

# Verify: nothing may listen on the platform's ports any more (the listener can linger briefly).
busy=()
for _ in $(seq 25); do
  busy=()
  for port in $ALL_PORTS; do port_listening "$port" && busy+=("$port"); done
  [[ ${#busy[@]} -eq 0 ]] && break
  sleep 0.2
done
if [[ ${#busy[@]} -gt 0 ]]; then
  ss -ltnp | grep -E ":($(IFS='|'; echo "${busy[*]}"))\b" >&2 || true
  die "ports still listening after down: ${busy[*]} (not started from this checkout?)"
fi

[[ $node_rc -eq 0 ]] || die "the node's teardown left something behind (see above); .platform kept"

if $purge; then
  rm -rf "$STATE" "$PG_OUTSIDE"
  log "platform: stopped; $STATE removed"
else
  log "platform: stopped (state kept in $STATE; down.sh --purge removes it)"
fi
