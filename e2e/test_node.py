"""e2e: the platform's real node (platform/node.sh; issue 17): kubelet, containerd, runc, CNI on a bridge.

Needs the platform started with the node (`TENANCY_NODE=1 make up`, or `make test-node`). Without it
the whole module is skipped, with the reason in pytest's summary (the skip is the only way it passes
without running); with it, anything missing is a failure. The last test takes the node down
(`make node-down`, the first step of `make down`), checks that nothing of it stays behind, and brings it
back up; e2e/test_node_zz_make_down.py runs the whole `make down` at the end of the session.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from . import kube

PLATFORM = kube.REPO / "platform"


def _sh(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stdout}{result.stderr}")
    return result


def _lib(expr: str) -> str:
    """A value of platform/lib.sh, for this platform's offset."""
    return _sh("bash", "-c", f'source "{PLATFORM}/lib.sh" && echo "{expr}"').stdout.strip()


@pytest.fixture(scope="module")
def node(platform):
    if platform.get("TENANCY_NODE") != "1":
        pytest.skip("the platform runs without its node (start it with TENANCY_NODE=1 make up, or make test-node)")
    n = {
        "name": platform["TENANCY_NODE_NAME"],
        "bridge_ip": platform["TENANCY_NODE_BRIDGE_IP"],
        "image": platform["TENANCY_NODE_BUSYBOX_IMAGE"],
        "bridge": _lib("$NODE_BRIDGE"),
        "chain": _lib("$NODE_CHAIN"),
        "in_chain": _lib("$NODE_IN_CHAIN"),
        "svc_chain": _lib("TENANCY-SVC-$PORT_OFFSET"),   # nat: the kubernetes Service (node-apiserver.sh)
        "cgroup": _lib("$NODE_CGROUP"),
        "dir": _lib("$NODE"),
        "sock": _lib("$CONTAINERD_SOCK"),
    }
    ready = kube.kubectl("get", "node", n["name"], "-o",
                         "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}", check=False)
    assert ready.stdout == "True", (
        f"TENANCY_NODE=1 but node {n['name']} is not Ready ({ready.stdout or ready.stderr.strip()}): "
        "see .platform/logs/kubelet.log and containerd.log")
    return n


@pytest.fixture
def namespace(platform):
    name = f"node-e2e-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _pod(name: str, image: str, command: str, *, restricted: bool = True, privileged: bool = False,
         restart: str = "Never") -> str:
    sc = ("securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true, "
          "capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}") if restricted else ""
    if privileged:
        sc = "securityContext: {privileged: true}"
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {restart}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", {command!r}]
    {sc}
"""


def _phase(ns: str, name: str) -> str:
    return kube.kubectl("get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}", check=False).stdout


def _wait_phase(ns: str, name: str, phases: tuple[str, ...], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = _phase(ns, name)
        if phase in phases:
            return phase
        time.sleep(0.5)
    describe = kube.kubectl("describe", "pod", name, "-n", ns, check=False).stdout
    raise AssertionError(f"pod {ns}/{name} not {phases} within {timeout}s (phase {_phase(ns, name)!r}):\n{describe[-2500:]}")


def _sandbox_pid(ns: str, name: str) -> int:
    """The host PID of pod ns/name's sandbox process (`/pause`), found by the pod's UID in its cgroup path
    (`pod<uid>` for the cgroupfs driver, dashes as underscores for the systemd one). Its network namespace
    is the pod's (`nsenter -t PID -n`): containerd keeps pods' namespaces under the node's state folder,
    not in `ip netns`."""
    uid = kube.get("pod", name, ns)["metadata"]["uid"]
    marks = (f"pod{uid}", f"pod{uid.replace('-', '_')}")
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if (p / "cmdline").read_bytes() == b"/pause\0" and any(m in (p / "cgroup").read_text() for m in marks):
                return int(p.name)
        except OSError:
            continue
    raise AssertionError(f"no /pause process in the cgroup of pod {ns}/{name} (uid {uid})")


def _logs(ns: str, name: str) -> str:
    return kube.kubectl("logs", name, "-n", ns).stdout


def test_node_registers_ready(node):
    info = kube.get("node", node["name"])
    assert info is not None
    ready = kube.condition(info, "Ready")
    assert ready["status"] == "True", ready
    server = kube.kubectl("version", "-o", "json").stdout
    assert info["status"]["nodeInfo"]["kubeletVersion"] in server, "the kubelet is the API server's version"
    assert info["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    addresses = {a["type"]: a["address"] for a in info["status"]["addresses"]}
    assert addresses["InternalIP"] == node["bridge_ip"]
    assert not [t for t in info["spec"].get("taints") or [] if t["key"] == "node.kubernetes.io/not-ready"]


def test_pod_runs_as_non_root(node, namespace):
    kube.kubectl("apply", "-n", namespace, "-f", "-",
                 input=_pod("whoami", node["image"], "echo uid=$(id -u) gid=$(id -g); exec sleep 3600"))
    started = time.monotonic()
    _wait_phase(namespace, "whoami", ("Running",))
    print(f"\npod Running {time.monotonic() - started:.1f}s after it was applied")
    logs = kube.eventually(lambda: _logs(namespace, "whoami").strip(), 20, message="the pod's log")
    assert re.fullmatch(r"uid=(\d+) gid=(\d+)", logs), logs
    assert int(logs.split()[0].split("=")[1]) != 0, f"ran as root: {logs}"
    # The image's user (65532). Its group: containerd 1.6's CRI gives gid 0 unless the pod sets runAsGroup.
    assert logs.startswith("uid=65532 "), "the image's user (65532), not root"


def test_pod_security_restricted_is_enforced(node, namespace):
    kube.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
                 "pod-security.kubernetes.io/enforce-version=latest")
    refused = kube.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                           input=_pod("privileged", node["image"], "sleep 3600", privileged=True))
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr
    assert kube.get("pod", "privileged", namespace) is None
    kube.kubectl("apply", "-n", namespace, "-f", "-",
                 input=_pod("compliant", node["image"], "id -u; exec sleep 3600"))
    _wait_phase(namespace, "compliant", ("Running",))
    assert kube.eventually(lambda: _logs(namespace, "compliant").strip(), 20) == "65532"


def test_the_sandbox_is_the_pause_built_from_source(node, namespace):
    """The pod's sandbox process is the pause binary node.sh built from k8s.io/kubernetes's
    build/pause/linux/pause.c (version string `v<PAUSE_VERSION>-tenancy`), containerd's sandbox image is
    the platform's, and every image in the node's containerd is one the platform built (none pulled)."""
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=_pod("sandboxed", node["image"], "exec sleep 3600"))
    _wait_phase(namespace, "sandboxed", ("Running",))
    pid = _sandbox_pid(namespace, "sandboxed")
    version = _lib("v$PAUSE_VERSION-tenancy")
    # pause.c prints "pause.c <VERSION>" for -v; VERSION is what node.sh compiled in.
    out = _sh(f"/proc/{pid}/exe", "-v").stdout.strip()
    assert out == f"pause.c {version}", f"the pod's sandbox (process {pid}) is not our pause build: {out!r}"
    config = Path(_lib("$NODE")) / "containerd" / "config.toml"
    sandbox = re.search(r'sandbox_image = "([^"]+)"', config.read_text())
    assert sandbox and sandbox.group(1) == _lib("$PAUSE_IMAGE"), sandbox
    # `ctr images ls`: REF TYPE DIGEST SIZE PLATFORMS LABELS. The operator's and the workload's images count as
    # ours by name and by the digest of the archive they were built as.
    listed = [line.split()[0:3:2] for line in
              _sh("ctr", "--address", node["sock"], "-n", "k8s.io", "images", "ls").stdout.splitlines()[1:] if line.strip()]
    ours_by_name = {_lib("$PAUSE_IMAGE"), node["image"]}
    ours_by_digest = {}
    for built in ("tenancy-operator", "tenant-workload"):
        folder = kube.REPO / "build" / "images"
        if (folder / f"{built}.ref").exists() and (folder / f"{built}.digest").exists():
            ref, digest = (folder / f"{built}.ref").read_text().strip(), (folder / f"{built}.digest").read_text().strip()
            ours_by_digest |= {ref: digest, f"{ref.rsplit(':', 1)[0]}@{digest}": digest}
    foreign = [f"{name} {digest}" for name, digest in listed if not name.startswith("sha256:")
               and name not in ours_by_name and ours_by_digest.get(name) != digest]
    print(f"\nthe pod's sandbox runs pause {version} (process {pid}); images {sorted(n for n, _ in listed)}")
    assert not foreign, f"images in the node's containerd that the platform did not build: {foreign}"


def _answer_ok(server: socket.socket) -> None:
    """Answer "ok" to every connection until the socket is closed."""
    try:
        while True:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"ok\n")
    except OSError:
        return


def test_pod_reaches_the_backends_on_the_bridge_and_nothing_beyond(node, namespace, platform):
    # The platform's rule: whatever comes in from the bridge and would go out by another interface is dropped.
    # (In mangle FORWARD, before kube-router's ACCEPTs in filter FORWARD; test_node_confinement.py exercises it.)
    rules = _sh("iptables", "-w", "-t", "mangle", "-S", node["chain"]).stdout
    assert f"-A {node['chain']} -i {node['bridge']} ! -o {node['bridge']} -j DROP" in rules, rules
    forward = _sh("iptables", "-w", "-t", "mangle", "-S", "FORWARD").stdout
    assert f"-A FORWARD -i {node['bridge']} -j {node['chain']}" in forward, forward
    # The bridge's own address is fixed (node.sh): one that followed its ports would leave pods' ARP entries
    # for their gateway stale whenever a pod goes.
    assert Path(f"/sys/class/net/{node['bridge']}/address").read_text().strip() == _lib("$NODE_BRIDGE_MAC")
    ip = node["bridge_ip"]
    ports = {"postgres": platform["PGPORT"], "redis": platform["REDIS_URL"].rsplit(":", 1)[1].split("/")[0],
             "openbao": platform["BAO_ADDR"].rsplit(":", 1)[1]}
    script = "ip route; " + " ".join(
        f"nc -w 3 {ip} {port} </dev/null && echo {name}=open || echo {name}=closed;" for name, port in ports.items())
    # busybox nc has no -z; stdin at EOF ends the session once connected. The date stamps time the attempt.
    script += " s=$(date +%s); nc -w 3 1.1.1.1 443 </dev/null; echo outside=$? took=$(( $(date +%s) - s ));"
    # The API server through the `kubernetes` Service (node-apiserver.sh): an HTTP request to its TLS port.
    script += " printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 10.96.0.1 443 | grep -q 'HTTPS server' && echo apiserver=open;"
    # Of the host itself, only the backends' ports: a host process listening on every address is not
    # reachable (the platform's INPUT chain), and Prometheus (reached through the node's relay) keeps its
    # lifecycle API off, so a tenant's pod cannot shut it down.
    host = socket.create_server(("0.0.0.0", 0))
    threading.Thread(target=_answer_ok, args=(host,), daemon=True).start()
    prom = platform["TENANCY_PROMETHEUS_URL"].rsplit(":", 1)[1].strip("/")
    # Prometheus may still be loading its TSDB after a platform start (the relay then closes at once).
    kube.eventually(lambda: requests.get(f"{platform['TENANCY_PROMETHEUS_URL']}/-/ready", timeout=5).ok, 120, 1,
                    message="Prometheus ready")
    script += (f" echo host=$(nc -w 3 {ip} {host.getsockname()[1]} </dev/null 2>&1 | head -c 20);"
               f" printf 'POST /-/quit HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {prom} | head -1 | sed 's/^/prometheus-quit=/'")
    try:
        kube.kubectl("apply", "-n", namespace, "-f", "-", input=_pod("reach", node["image"], script))
        _wait_phase(namespace, "reach", ("Succeeded", "Failed"), timeout=90)
    finally:
        host.close()
    logs = _logs(namespace, "reach")
    print("\n" + logs)
    for name in ports:
        assert f"{name}=open" in logs, f"{name} on {ip} not reachable from a pod:\n{logs}"
    routes = [line for line in logs.splitlines() if " dev eth0" in line]
    assert routes and all(not line.startswith("default") for line in routes), f"a pod has a route off the bridge: {routes}"
    assert "apiserver=open" in logs, f"the API server not reachable at 10.96.0.1:443 from a pod:\n{logs}"
    m = re.search(r"outside=(\d+) took=(\d+)", logs)
    assert m, logs
    assert m.group(1) != "0", f"a pod opened a connection to 1.1.1.1:443:\n{logs}"
    assert "host=ok" not in logs and "host=" in logs, f"a pod reached a host process listening on every address:\n{logs}"
    quit_ = re.search(r"prometheus-quit=(.*)", logs)
    assert quit_ and " 200 " not in quit_.group(1) and " 403 " in quit_.group(1), \
        f"Prometheus's lifecycle API from a pod: {quit_ and quit_.group(1)!r}\n{logs}"
    assert int(m.group(2)) <= 3, f"the connection to 1.1.1.1:443 took {m.group(2)}s to fail"


def _leftovers(node) -> list[str]:
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (p / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue  # a zombie waits for PID 1 to reap it; it holds nothing
        if node["sock"] in cmdline or f"{node['dir']}/" in cmdline or (
                ("node-apiserver-relay" in cmdline or "node-relay-" in cmdline) and f"{node['bridge_ip']}:" in cmdline):
            found.append(f"process {p.name}: {cmdline[:160]}")
    for root in Path("/sys/fs/cgroup").glob(f"*/{node['cgroup']}"):
        if root.exists():
            procs = [f.read_text().split() for f in root.rglob("cgroup.procs")]
            found.append(f"cgroup {root} (processes: {sum(len(x) for x in procs)})")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mountpoint = line.split()[4]
        if mountpoint.startswith(str(kube.STATE.resolve()) + "/"):
            found.append(f"mount {mountpoint}")
    netns = _sh("ip", "netns", "list", check=False).stdout.split()
    found += [f"netns {n}" for n in netns if n.startswith("cni-")]
    links = _sh("ip", "-o", "link", "show").stdout
    if re.search(rf"\d+: {re.escape(node['bridge'])}[:@]", links):
        found.append(f"bridge {node['bridge']}")
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if f"master {node['bridge']} " in line]
    rules = _sh("iptables-save").stdout + _sh("ip6tables-save").stdout
    ours = re.compile(rf"(?<![\w-])({re.escape(node['chain'])}|{re.escape(node['in_chain'])}|{re.escape(node['svc_chain'])}|"
                      rf"{re.escape(node['bridge'])})(?![\w-])")
    found += [f"iptables: {line}" for line in rules.splitlines() if ours.search(line)]
    # kube-router's firewall (platform/netpol.sh): its chains and ipsets (fixed names, one per machine).
    found += [f"iptables: {line}" for line in rules.splitlines()
              if re.search(r"KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-", line)]
    found += [f"ipset {s}" for s in _sh("ipset", "list", "-n", check=False).stdout.split()
              if s.startswith(("KUBE-SRC-", "KUBE-DST-"))]
    return found


def test_teardown_leaves_nothing_then_the_node_comes_back(node, namespace):
    # A running pod, so there is a container, a network namespace and a veth to remove.
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=_pod("longrun", node["image"], "exec sleep 3600"))
    _wait_phase(namespace, "longrun", ("Running",))
    assert _leftovers(node), "with a pod running, the node's parts are there (the check can fail)"
    env = dict(os.environ)
    started = time.monotonic()
    _sh("make", "-C", str(kube.REPO), "--no-print-directory", "node-down")  # what `make down` runs first
    took_down = time.monotonic() - started
    assert _leftovers(node) == []
    started = time.monotonic()
    up = subprocess.run(["bash", str(PLATFORM / "node.sh"), "up"], capture_output=True, text=True, env=env, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    print(f"\nnode down in {took_down:.1f}s, back up and Ready in {time.monotonic() - started:.1f}s: {up.stdout.strip()}")
    # The pod that ran before comes back on the node that came back.
    kube.kubectl("delete", "pod", "longrun", "-n", namespace, "--grace-period=0", "--force", check=False)
