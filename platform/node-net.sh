#!/usr/bin/env bash
# The node's network (sourced by node.sh): the bridge the pods live on, the CNI configuration, and
# the platform's iptables/ip6tables chains that keep pod traffic on the machine. make_bridge and
# write_cni are idempotent; net_down removes what they made (and what older versions made).
# Needs lib.sh (NODE_BRIDGE, NODE_BRIDGE_IP, NODE_BRIDGE_MAC, NODE_CHAIN, NODE_IN_CHAIN, NODE_SUBNET, ...).

# A kernel booted with ipv6.disable=1 has no /proc/sys/net/ipv6: nothing to turn off or filter then.
ipv6_present() { [[ -d /proc/sys/net/ipv6 ]]; }

# The bridge, with the pods' gateway address (pods get no default route: only the /24 of the bridge),
# and our chains: whatever arrives from the bridge and would leave by another interface is dropped, and
# of the host itself pods reach only the backends' ports.
# (This machine has net.ipv4.ip_forward=0 too; the chain holds even if someone turns it on.)
make_bridge() {
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
  fi
  # Not `ip addr show | grep -q`: grep leaving early can SIGPIPE ip, and with pipefail the address
  # looked missing ("Error: ipv4: Address already assigned" on a second node-up).
  [[ $(ip -4 -o addr show dev "$NODE_BRIDGE") == *" $NODE_BRIDGE_IP/24 "* ]] ||
    ip addr add "$NODE_BRIDGE_IP/24" dev "$NODE_BRIDGE"
  # A fixed address (locally administered, from the net index): a bridge without one takes the lowest
  # of its ports' addresses and changes it as pods come and go, and a pod that resolved its gateway
  # before the change sends to a stale address, switched away instead of routed, until its ARP entry
  # expires (found by e2e/test_node_confinement.py: a pod's connections off its /24 lost that way).
  [[ $(<"/sys/class/net/$NODE_BRIDGE/address") == "$NODE_BRIDGE_MAC" ]] || ip link set "$NODE_BRIDGE" address "$NODE_BRIDGE_MAC"
  ip link set "$NODE_BRIDGE" up
  # Forwarded traffic: in the mangle table too. kube-router keeps its jump first in filter FORWARD
  # (moved back there on every sync) and ACCEPTs there whatever a pod's policies allow (a pod's egress
  # by default), so a rule of ours in filter FORWARD was never read for a pod's packets; mangle's
  # FORWARD runs before filter's.
  iptables -w -t mangle -N "$NODE_CHAIN" 2>/dev/null || true
  iptables -w -t mangle -C "$NODE_CHAIN" -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j DROP 2>/dev/null ||
    iptables -w -t mangle -A "$NODE_CHAIN" -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j DROP
  iptables -w -t mangle -C FORWARD -i "$NODE_BRIDGE" -j "$NODE_CHAIN" 2>/dev/null ||
    iptables -w -t mangle -I FORWARD 1 -i "$NODE_BRIDGE" -j "$NODE_CHAIN"
  # What pods may open on the host itself: the backends' and the API server relay's ports on the bridge
  # address, nothing else (a host process listening on every address, the kubelet's port, is not theirs
  # to reach); replies to the host's own connections (probes, the tests' polls) pass. In the mangle table:
  # its INPUT runs before filter's, where kube-router's firewall ACCEPTs whatever a pod's policies allow
  # (a tenant's policy restricts ingress only) before a rule of ours there would be read. Mangle takes no
  # REJECT, so the rest is dropped: a pod's connection times out.
  iptables -w -t mangle -N "$NODE_IN_CHAIN" 2>/dev/null || true
  iptables -w -t mangle -F "$NODE_IN_CHAIN"
  iptables -w -t mangle -A "$NODE_IN_CHAIN" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  iptables -w -t mangle -A "$NODE_IN_CHAIN" -p tcp -d "$NODE_BRIDGE_IP" -m multiport \
    --dports "$APISERVER_PORT,$PG_PORT,$REDIS_PORT,$BAO_PORT,$OPENSEARCH_PORT,$FERRETDB_PORT,$PROM_PORT" -j RETURN
  iptables -w -t mangle -A "$NODE_IN_CHAIN" -j DROP
  iptables -w -t mangle -C INPUT -i "$NODE_BRIDGE" -j "$NODE_IN_CHAIN" 2>/dev/null ||
    iptables -w -t mangle -I INPUT 1 -i "$NODE_BRIDGE" -j "$NODE_IN_CHAIN"
  # No IPv6 on the bridge (write_cni says why): no address of the host there, and whatever IPv6 comes in
  # from it, switched between pods (br_netfilter passes it through ip6tables) or to the host, is dropped.
  ipv6_present || return 0
  echo 1 >"/proc/sys/net/ipv6/conf/$NODE_BRIDGE/disable_ipv6"
  # Switched packets reach ip6tables only through br_netfilter's ip6tables hook.
  [[ $(cat /proc/sys/net/bridge/bridge-nf-call-ip6tables 2>/dev/null) == 1 ]] ||
    die "node: net.bridge.bridge-nf-call-ip6tables is not 1 (br_netfilter not loaded?): IPv6 between pods would pass unfiltered"
  ip6tables -w -t mangle -N "$NODE_CHAIN" 2>/dev/null || true
  ip6tables -w -t mangle -C "$NODE_CHAIN" -j DROP 2>/dev/null || ip6tables -w -t mangle -A "$NODE_CHAIN" -j DROP
  ip6tables -w -t mangle -C PREROUTING -i "$NODE_BRIDGE" -j "$NODE_CHAIN" 2>/dev/null ||
    ip6tables -w -t mangle -I PREROUTING 1 -i "$NODE_BRIDGE" -j "$NODE_CHAIN"
}

# Pods get IPv4 only. kube-router enforces policies with iptables (IPv4; --enable-ipv6=false), so a pod's
# IPv6 link-local address on the bridge was a way round every tenant's NetworkPolicy (a fresh user's
# review connected from one tenant's pod to another's over fe80::). The tuning plugin turns IPv6 off
# inside each pod's network namespace; make_bridge turns it off on the bridge and drops any IPv6 that
# comes in from it all the same.
write_cni() {
  mkdir -p "$NODE/cni/net.d" "$NODE/cni/ipam"
  local tuning=""
  ipv6_present && tuning=',
    {"type": "tuning", "sysctl": {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}}'

  # Written aside and moved in: containerd watches the folder and would read a half-written file.
  cat >"$NODE/cni/10-tenancy.conflist.tmp" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "tenancy-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$NODE_SUBNET", "rangeStart": "10.88.$NODE_NET_INDEX.10", "gateway": "$NODE_BRIDGE_IP"}]],
        "routes": [{"dst": "10.96.0.0/16", "gw": "$NODE_BRIDGE_IP"}],
        "dataDir": "$NODE/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}$tuning
  ]
}
EOF
  if cmp -s "$NODE/cni/10-tenancy.conflist.tmp" "$NODE/cni/net.d/10-tenancy.conflist"; then
    rm -f "$NODE/cni/10-tenancy.conflist.tmp"
  else
    mv "$NODE/cni/10-tenancy.conflist.tmp" "$NODE/cni/net.d/10-tenancy.conflist"
  fi
}

# Everything make_bridge made: veths on the bridge, the bridge, our chains and jumps.
net_down() {
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    for p in $(ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$p" 2>/dev/null || true
    done
    ip link del "$NODE_BRIDGE" 2>/dev/null || true
  fi
  if command -v iptables >/dev/null; then
    # Filter FORWARD held the chain before it moved to mangle: a platform started by an older node.sh.
    while iptables -w -D FORWARD -i "$NODE_BRIDGE" -j "$NODE_CHAIN" 2>/dev/null; do :; done
    while iptables -w -t mangle -D FORWARD -i "$NODE_BRIDGE" -j "$NODE_CHAIN" 2>/dev/null; do :; done
    iptables -w -t mangle -F "$NODE_CHAIN" 2>/dev/null || true
    iptables -w -t mangle -X "$NODE_CHAIN" 2>/dev/null || true
    while iptables -w -t mangle -D INPUT -i "$NODE_BRIDGE" -j "$NODE_IN_CHAIN" 2>/dev/null; do :; done
    iptables -w -t mangle -F "$NODE_IN_CHAIN" 2>/dev/null || true
    iptables -w -t mangle -X "$NODE_IN_CHAIN" 2>/dev/null || true
    iptables -w -F "$NODE_CHAIN" 2>/dev/null || true
    iptables -w -X "$NODE_CHAIN" 2>/dev/null || true
  fi
  if ipv6_present && command -v ip6tables >/dev/null; then
    while ip6tables -w -t mangle -D PREROUTING -i "$NODE_BRIDGE" -j "$NODE_CHAIN" 2>/dev/null; do :; done
    ip6tables -w -t mangle -F "$NODE_CHAIN" 2>/dev/null || true
    ip6tables -w -t mangle -X "$NODE_CHAIN" 2>/dev/null || true
  fi
}
