#!/usr/bin/env bash
# NetworkPolicy enforcement on the platform's node (issue 17 item 3): kube-router's network-policy
# controller only (--run-firewall; no routing, no service proxy), a host process beside the kubelet.
# It writes iptables rules (filter table: chains KUBE-ROUTER-INPUT/FORWARD/OUTPUT, KUBE-NWPLCY-*,
# KUBE-POD-FW-*) and ipsets (KUBE-SRC-*, KUBE-DST-*). Pods on the node's bridge are switched, not
# routed: br_netfilter (net.bridge.bridge-nf-call-iptables=1) hands bridged packets to iptables, where
# kube-router's physdev rules catch them.
# Usage: netpol.sh up | down | status   (node.sh up calls up after the kubelet; node.sh down calls down)
#   down: stops kube-router, then removes its rules, chains and ipsets, unless a kube-router of another
#         platform (another offset's .platform) still runs: kube-router's chain and set names are
#         fixed, so two platforms on one machine share them, and only the last one down removes them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBECTL=$VENV_BIN/kubectl
KR_NAME=kube-router
KUBE_ROUTER_BIN=$(bin_path kube-router "$KUBE_ROUTER_VERSION")
KR_KUBECONFIG=$NODE/kube-router.kubeconfig
KR_CHAINS_RE='^(KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-)'
KR_SETS_RE='^(KUBE-SRC-|KUBE-DST-)'

# kube-router processes of other platforms (a different state folder in their --kubeconfig).
other_kube_routers() {
  local p exe cmd
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    [[ ${exe##*/} == kube-router* ]] || continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    [[ $cmd == *"--kubeconfig=$KR_KUBECONFIG "* ]] && continue
    echo "${p#/proc/}"
  done
  return 0
}

kr_pki() {
  cd "$PKI"
  [[ -s ca.crt && -s ca.key && -s openssl.cnf ]] || die "the platform's PKI is missing: run up.sh first"
  umask 077
  if [[ ! -s kube-router.crt || ! -s kube-router.key ]]; then
    openssl req -new -newkey rsa:2048 -nodes -config openssl.cnf -subj "/CN=tenancy-platform:kube-router" \
      -keyout kube-router.key -out kube-router.csr 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in kube-router.csr -CA ca.crt -CAkey ca.key \
      -set_serial "0x$(openssl rand -hex 16)" -extfile openssl.cnf -extensions client -out kube-router.crt 2>/dev/null
    rm -f kube-router.csr
  fi
  write_kubeconfig "$KR_KUBECONFIG" kube-router kube-router
  cd - >/dev/null
}

# kube-router's jump is in FORWARD, its default chain is written and a first full sync ended (its log
# since this start says so: lines after $KR_LOG_FROM).
kr_ready() {
  [[ $(iptables -w -S FORWARD 2>/dev/null) == *"-j KUBE-ROUTER-FORWARD"* ]] &&
    iptables -w -S KUBE-NWPLCY-DEFAULT >/dev/null 2>&1 &&
    [[ $(tail -n "+$KR_LOG_FROM" "$LOGS/$KR_NAME.log") == *"sync iptables took"* ]]
}

netpol_up() {
  local t0=$EPOCHREALTIME b missing=()
  [[ -x $KUBE_ROUTER_BIN ]] || missing+=("$KUBE_ROUTER_BIN")
  for b in iptables iptables-save iptables-restore ipset; do command -v $b >/dev/null || missing+=("$b"); done
  [[ ${#missing[@]} -eq 0 ]] || die "netpol: missing ${missing[*]}
  run TENANCY_NODE=1 platform/install.sh node first"
  # Bridged pod-to-pod traffic reaches iptables only through br_netfilter.
  [[ $(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null) == 1 ]] ||
    die "netpol: net.bridge.bridge-nf-call-iptables is not 1 (br_netfilter not loaded?): kube-router could not see traffic between pods on the bridge"
  pid_alive "$KR_NAME" && { echo "kube-router (NetworkPolicy) already up"; return 0; }
  local others
  others=$(other_kube_routers)
  [[ -z $others ]] || die "netpol: a kube-router of another platform runs (pid $others); kube-router's iptables chains and ipsets have fixed names, so one machine runs one (stop the other platform's node first)"
  (kr_pki)
  # Read-only access to what the policy controller watches (RBAC only on this API server).
  "$KUBECTL" --kubeconfig "$STATE/kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: tenancy-platform:kube-router
rules:
- apiGroups: [""]
  resources: [namespaces, pods, services, nodes, endpoints]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: tenancy-platform:kube-router
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "tenancy-platform:kube-router"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "tenancy-platform:kube-router"}
EOF
  mkdir -p "$RUN" "$LOGS"
  printf -- '---- %s netpol.sh: starting %s\n' "$(date -u +%FT%TZ)" "$KR_NAME" >>"$LOGS/$KR_NAME.log"
  KR_LOG_FROM=$(wc -l <"$LOGS/$KR_NAME.log")
  # --health-port=0: kube-router's health server binds every interface (":port"), and nothing of the
  # platform listens beyond loopback and the bridge; readiness is read from iptables instead.
  # The service range is the API server's (--service-cluster-ip-range in up.sh).
  (cd "$STATE" && close_inherited_fds && exec setsid "$KUBE_ROUTER_BIN" \
    --kubeconfig="$KR_KUBECONFIG" --hostname-override="$NODE_NAME" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --enable-ipv4=true --enable-ipv6=false --enable-cni=false \
    --service-cluster-ip-range=10.96.0.0/16 \
    --health-port=0 --metrics-port=0 \
    --iptables-sync-period=1m --cache-sync-timeout=30s --v=1 \
    </dev/null >>"$LOGS/$KR_NAME.log" 2>&1) &
  echo $! >"$RUN/$KR_NAME.pid"
  await_exec "$KR_NAME"
  wait_for "$KR_NAME" 60 kr_ready
  printf 'kube-router %s (NetworkPolicy only) up in %.1fs\n' "$KUBE_ROUTER_VERSION" \
    "$(awk "BEGIN {print $EPOCHREALTIME - $t0}")"
}

# Removes every rule, chain and ipset kube-router's firewall makes (what its own Cleanup() removes,
# without --cleanup-config, which also tears down IPVS and routes of the whole machine).
kr_clean() {
  command -v iptables >/dev/null || return 0
  local chain rule
  # Jumps from the built-in chains to kube-router's chains.
  for chain in INPUT FORWARD OUTPUT; do
    # By their spec, never by number (another platform may add rules meanwhile); eval keeps the
    # quoted comments whole. (|| true: no match is not an error under pipefail.)
    { iptables -w -S "$chain" 2>/dev/null | grep -E -- "-j (KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-)" || true; } |
      while read -r rule; do
        eval "iptables -w ${rule/-A /-D }" 2>/dev/null || true
      done
  done
  # Flush all of them first (they jump to each other), then delete.
  local chains
  chains=$(iptables -w -S 2>/dev/null | awk '$1 == "-N" {print $2}' | grep -E "$KR_CHAINS_RE" || true)
  for chain in $chains; do iptables -w -F "$chain" 2>/dev/null || true; done
  for chain in $chains; do iptables -w -X "$chain" 2>/dev/null || true; done
  if command -v ipset >/dev/null; then
    local set
    for set in $(ipset list -n 2>/dev/null | grep -E "$KR_SETS_RE" || true); do
      ipset destroy "$set" 2>/dev/null || true
    done
  fi
}

netpol_down() {
  stop_pid "$KR_NAME" 10
  local others
  others=$(other_kube_routers)
  if [[ -n $others ]]; then
    log "netpol: a kube-router of another platform runs (pid $others): its iptables chains and ipsets (shared names) stay"
    return 0
  fi
  kr_clean
  local left
  left=$( (iptables -w -S 2>/dev/null | grep -E -- "KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-"; ipset list -n 2>/dev/null | grep -E "$KR_SETS_RE") || true)
  if [[ -n $left ]]; then
    log "netpol: kube-router's rules or sets remain:"; log "$left"
    return 1
  fi
  return 0
}

netpol_status() {
  if pid_alive "$KR_NAME"; then printf '%-24s up    pid %s\n' "$KR_NAME" "$(<"$RUN/$KR_NAME.pid")"
  else printf '%-24s down\n' "$KR_NAME"; fi
}

case ${1:-} in
  up) netpol_up ;;
  down) netpol_down ;;
  status) netpol_status ;;
  clean) kr_clean ;;
  *) die "usage: netpol.sh up|down|status" ;;
esac
