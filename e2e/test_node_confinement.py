"""e2e: pod traffic stays inside the machine, and nothing of the platform listens beyond it (issue 17 item 2).

test_node.py shows the rule of ours is in place and that a pod has no route off the bridge. Here the rule
is exercised: with a route into a pod's network namespace (what a pod with NET_ADMIN, or a careless
change to the CNI config, would add) and forwarding on (this machine has `net.ipv4.ip_forward=0`; someone
may turn it on), a pod's connection to an address beyond the bridge (a network namespace the test makes,
standing for the world) is dropped; with the rule taken out the same connection succeeds, so the test can
fail. Every change is undone, whatever happens.

IPv4 only: kube-router filters IPv4, so pods have no IPv6 (node.sh's CNI tuning step) and the node
drops every IPv6 packet from the bridge; two pods that turn IPv6 back on still cannot talk over it.

And every socket a platform process listens on, the node's included, is bound to the loopback or the
bridge address: nothing listens on an address another machine can reach.

Skipped, with the reason, when the platform runs without its node (as e2e/test_node.py).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from . import kube
from .test_node import _lib, _pod, _sandbox_pid, _sh, _wait_phase, namespace, node  # noqa: F401  (fixtures)

OUTSIDE_NET = ipaddress.ip_network("198.18.250.0/30")  # RFC 2544's benchmark range: not routed anywhere
HOST_SIDE, OUTSIDE = (str(a) for a in OUTSIDE_NET.hosts())
PORT = 8099
IPV6 = Path("/proc/sys/net/ipv6").exists()
"""False on a kernel booted without IPv6 (node-net.sh then makes no IPv6 rules: there is nothing to filter)."""
LISTENER = (f"import socket\ns = socket.create_server(('0.0.0.0', {PORT}))\nwhile True:\n"
            "    c, _ = s.accept()\n    c.sendall(b'ok\\n')\n    c.close()\n")


def _forwarding(interface: str) -> Path:
    """IPv4 forwarding of packets that come in on `interface` (the kernel reads the input device's switch)."""
    return Path(f"/proc/sys/net/ipv4/conf/{interface}/forwarding")


def _connect_from_pod(ns: str, pod: str) -> tuple[bool, str]:
    r = kube.kubectl("exec", "-n", ns, pod, "--", "sh", "-c", f"nc -w 2 {OUTSIDE} {PORT} </dev/null 2>&1; echo rc=$?",
                     timeout=30, check=False)
    return r.stdout.splitlines()[:2] == ["ok", "rc=0"], (r.stdout + r.stderr).strip()


def _dropped(node) -> int:  # noqa: F811  (the fixture's value)
    """Packets the platform's rule (mangle, `TENANCY-NODE-<offset>`) has dropped so far."""
    rules = _sh("iptables", "-w", "-t", "mangle", "-v", "-S", node["chain"]).stdout
    m = re.search(rf"-A {re.escape(node['chain'])} -i {node['bridge']} ! -o {node['bridge']} -c (\d+) \d+ -j DROP", rules)
    assert m, f"the platform's rule is not in {node['chain']}:\n{rules}"
    return int(m.group(1))


def _diagnose(node, veth: str, pod_ip: str, in_pod: tuple[str, ...]) -> str:  # noqa: F811
    """What a failed attempt leaves to read: forwarding switches, routes, counters."""
    cmds = [("sysctl", "net.ipv4.ip_forward", f"net.ipv4.conf.{node['bridge']}.forwarding", f"net.ipv4.conf.{veth}.forwarding"),
            ("ip", "route", "get", OUTSIDE, "from", pod_ip, "iif", node["bridge"]), (*in_pod, "ip", "route"),
            ("iptables", "-w", "-t", "mangle", "-v", "-S"), ("iptables", "-w", "-v", "-S", "KUBE-ROUTER-FORWARD"),
            ("ip", "-s", "link", "show", veth), ("ip", "neigh"), ("grep", "198.18", "/proc/net/nf_conntrack"),
            ("nstat", "-az", "IpForwDatagrams", "IpInAddrErrors", "IpInNoRoutes", "IpExtInNoRoutes", "IpOutNoRoutes", "TcpExtTCPSynRetrans"),
            ("bash", "-c", "for n in $(ip netns list | awk '/tnc-e2e-world/{print $1}'); do ip netns exec $n ss -tan; "
             "ip netns exec $n ip route; ip netns exec $n ip neigh; ip netns exec $n nstat -az IpInAddrErrors IpInDelivers TcpPassiveOpens TcpInSegs TcpOutSegs IpOutNoRoutes; done")]
    return "\n".join(f"$ {' '.join(c)}\n{(r := _sh(*c, check=False)).stdout}{r.stderr}" for c in cmds)


def _undo(*cmd: str) -> None:
    """A clean-up step: run it, say if it failed, go on with the others."""
    r = _sh(*cmd, check=False)
    if r.returncode:
        print(f"clean-up {' '.join(cmd)}: {r.stderr.strip()}")


def test_the_platform_drops_what_a_pod_forwards_off_the_bridge(node, namespace):  # noqa: F811
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=_pod("sender", node["image"], "exec sleep 3600"))
    _wait_phase(namespace, "sender", ("Running",), timeout=90)
    pod_ip = kube.get("pod", "sender", namespace)["status"]["podIP"]
    in_pod = ("nsenter", "-t", str(_sandbox_pid(namespace, "sender")), "-n")
    rule = ["-i", node["bridge"], "!", "-o", node["bridge"], "-j", "DROP"]
    # IPv4 only: no IPv6 in the pod nor on the bridge (kube-router would not filter it), IPv6 from it dropped.
    if IPV6:
        assert _sh(*in_pod, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6").stdout.strip() == "1"
        assert _sh(*in_pod, "ip", "-6", "addr").stdout.strip() == ""
        assert Path(f"/proc/sys/net/ipv6/conf/{node['bridge']}/disable_ipv6").read_text().strip() == "1"
        assert f"-A PREROUTING -i {node['bridge']} -j {node['chain']}" in _sh("ip6tables", "-w", "-t", "mangle", "-S").stdout
    tag = uuid.uuid4().hex[:6]
    world, veth = f"tnc-e2e-world-{tag}", f"tnce{tag}"
    bridge_forwarding = _forwarding(node["bridge"]).read_text().strip()
    listener = None
    rule_out = False
    try:
        # "The world": a network namespace at 198.18.250.2 behind a veth, answering "ok" on PORT, with a
        # route back to the pod (no address translation is needed for the test to see an answer).
        _sh("ip", "netns", "add", world)
        _sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", world)
        _sh("ip", "addr", "add", f"{HOST_SIDE}/30", "dev", veth)
        _sh("ip", "link", "set", veth, "up")
        for cmd in (("ip", "addr", "add", f"{OUTSIDE}/30", "dev", "eth0"), ("ip", "link", "set", "eth0", "up"),
                    ("ip", "link", "set", "lo", "up"), ("ip", "route", "add", f"{pod_ip}/32", "via", HOST_SIDE)):
            _sh("ip", "netns", "exec", world, *cmd)
        listener = subprocess.Popen(["ip", "netns", "exec", world, sys.executable, "-c", LISTENER])
        kube.eventually(lambda: f":{PORT}" in _sh("ip", "netns", "exec", world, "ss", "-Hltn").stdout, 10,
                        message="the world's listener")
        # What a pod may not do itself (no NET_ADMIN under `restricted`): a route off the bridge, via the node;
        # and forwarding on for the two interfaces (not the machine's switch: that would touch every interface).
        _sh(*in_pod, "ip", "route", "add", str(OUTSIDE_NET), "via", node["bridge_ip"])
        _forwarding(node["bridge"]).write_text("1\n")
        _forwarding(veth).write_text("1\n")

        before = _dropped(node)
        connected, out = _connect_from_pod(namespace, "sender")
        assert not connected, f"a pod reached {OUTSIDE} beyond the bridge with the platform's rule in place: {out}"
        dropped = _dropped(node) - before
        print(f"\nwith the rule, forwarding on: {out!r}; the rule dropped {dropped} packets meanwhile")
        assert dropped > 0, "the connection failed, but not by the platform's rule"

        # Without the rule (so the check above can fail): the same connection is answered.
        _sh("iptables", "-w", "-t", "mangle", "-D", node["chain"], *rule)
        rule_out = True
        tries: list[str] = []
        for _ in range(5):
            connected, out = _connect_from_pod(namespace, "sender")
            tries.append(out)
            if connected:
                break
        else:
            raise AssertionError(f"a pod does not reach {OUTSIDE} with the platform's rule out: {tries}\n"
                                 f"{_diagnose(node, veth, pod_ip, in_pod)}")
        print(f"without the rule: {out!r}")
    finally:
        _forwarding(node["bridge"]).write_text(bridge_forwarding + "\n")
        if rule_out:
            _undo("iptables", "-w", "-t", "mangle", "-A", node["chain"], *rule)
        if listener is not None:
            listener.kill()
            listener.wait(10)
        _undo(*in_pod, "ip", "route", "del", str(OUTSIDE_NET))
        _undo("ip", "link", "del", veth)
        _undo("ip", "netns", "del", world)
    rules = _sh("iptables", "-w", "-t", "mangle", "-S", node["chain"]).stdout
    assert rules.count(f"-A {node['chain']} {' '.join(rule)}") == 1, f"the platform's rule not back exactly once:\n{rules}"
    assert _forwarding(node["bridge"]).read_text().strip() == bridge_forwarding
    assert not any(world in n for n in _sh("ip", "netns", "list").stdout.split())


def _listeners() -> list[tuple[str, str, int, str]]:
    """Every listening TCP and UDP socket of the machine: (protocol, address, port, `pid:comm` list)."""
    found = []
    for line in _sh("ss", "-Hlntup").stdout.splitlines():
        fields = line.split()
        proto, local = fields[0], fields[4]
        addr, port = local.rsplit(":", 1)
        users = ",".join(f"{pid}:{comm}" for comm, pid in re.findall(r'"([^"]+)",pid=(\d+)', line))
        # An IPv4 address as an IPv6 socket shows it (Java's): ::ffff:127.0.0.1 is 127.0.0.1.
        found.append((proto, addr.strip("[]").split("%")[0].removeprefix("::ffff:"), int(port), users))
    return found


def _ours(pid: int, places: tuple[str, ...]) -> bool:
    """A process of the platform: its command line, executable or working folder is in one of `places`
    (the checkout, the platform's state, PostgreSQL's folder outside it, the build cache)."""
    proc = Path(f"/proc/{pid}")
    try:
        text = " ".join([proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"),
                         str(proc.joinpath("exe").resolve()), str(proc.joinpath("cwd").resolve())])
    except OSError:
        return False
    return any(place in text for place in places)


def test_nothing_of_the_platform_listens_beyond_the_machine(node):  # noqa: F811
    allowed = {"127.0.0.1", "::1", node["bridge_ip"]}
    listeners = _listeners()
    places = (str(kube.REPO), str(kube.STATE.resolve()), _lib("$PG_OUTSIDE"), "/.cache/tenancy-operator/")
    ours = [(p, a, port, users) for p, a, port, users in listeners
            if users and any(_ours(int(u.split(":")[0]), places) for u in users.split(","))]
    print("\n" + "\n".join(f"{p} {a}:{port} {users}" for p, a, port, users in sorted(ours, key=lambda x: x[2])))
    ports = {port for _, _, port, _ in ours}
    # The check knows the platform's processes (so it can fail): these must be among them.
    expected = {int(p) for p in _lib("$APISERVER_PORT $PG_PORT $REDIS_PORT $BAO_PORT $KUBELET_PORT").split()}
    assert expected <= ports, f"the platform's processes (API server, PostgreSQL, Redis, OpenBao, kubelet) were not all found listening: {sorted(expected - ports)}"
    beyond = [f"{p} {a}:{port} ({users})" for p, a, port, users in ours if a not in allowed]
    assert not beyond, f"platform processes listening beyond the loopback and the bridge: {beyond}"
    print(f"{len(ours)} sockets of the platform, all on {sorted(allowed)}")


def _enable_ipv6(in_pod: tuple[str, ...]) -> str:
    """Turn IPv6 back on in a pod's network namespace (as a pod with NET_ADMIN, or a CNI config without the
    tuning step, would have it); return its link-local address once it is usable (not tentative)."""
    for key in ("all", "default", "eth0"):
        _sh(*in_pod, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=0")
    def usable() -> str | None:
        out = _sh(*in_pod, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link").stdout
        m = re.search(r"inet6 (fe80::[0-9a-f:]+)/64", out)
        return m.group(1) if m and "tentative" not in out else None
    return kube.eventually(usable, 15, 0.3, message="a link-local IPv6 address in the pod")


@pytest.mark.skipif(not IPV6, reason="the kernel runs without IPv6: no IPv6 to drop")
def test_ipv6_from_the_bridge_is_dropped_even_when_a_pod_turns_it_on(node, namespace):  # noqa: F811
    """The second layer under the pods' disabled IPv6 (node.sh): the node drops every IPv6 packet that comes
    in from the bridge, switched between pods or not. Two pods turn IPv6 back on: the client's connection
    to the server's link-local address fails; with the node's jump taken out it is answered (so the check
    can fail); the jump is put back whatever happens."""
    server = "exec nc -ll -p 8080 -e echo ok"
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=_pod("server6", node["image"], server, restart="Always"))
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=_pod("client6", node["image"], "exec sleep 3600"))
    for pod in ("server6", "client6"):
        _wait_phase(namespace, pod, ("Running",), timeout=90)
    target = _enable_ipv6(("nsenter", "-t", str(_sandbox_pid(namespace, "server6")), "-n"))
    _enable_ipv6(("nsenter", "-t", str(_sandbox_pid(namespace, "client6")), "-n"))
    jump = ["PREROUTING", "-i", node["bridge"], "-j", node["chain"]]
    probe = f"nc -w 3 {target}%eth0 8080 </dev/null 2>&1; echo rc=$?"

    def attempt() -> str:
        return kube.kubectl("exec", "-n", namespace, "client6", "--", "sh", "-c", probe, timeout=30, check=False).stdout.strip()
    out = attempt()
    assert not out.startswith("ok\n"), f"a pod reached another over IPv6 ({target}) with the node's drop in place: {out!r}"
    _sh("ip6tables", "-w", "-t", "mangle", "-D", *jump)
    try:
        opened = kube.eventually(lambda: (r := attempt()).startswith("ok\n") and r, 15,
                                 message="IPv6 between the pods without the drop")
    finally:
        _undo("ip6tables", "-w", "-t", "mangle", "-I", jump[0], "1", *jump[1:])
    assert f"-A {' '.join(jump)}" in _sh("ip6tables", "-w", "-t", "mangle", "-S").stdout
    print(f"\nIPv6 to {target}: {out!r} with the node's drop; {opened!r} without it")
