"""e2e, last of the node session: `make down` with the node leaves nothing behind (issue 17's acceptance:
no container, no network namespace, no iptables rule of ours, no mount; and no process, no port), then
`TENANCY_NODE=1 make up` brings the platform and its node back, whatever the checks found.

test_node.py's teardown test takes only the node down (`make node-down`); this one runs the whole
`make down` a user runs. Skipped, with the reason, when the platform runs without its node.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from . import kube
from .test_node import _leftovers, _lib, _pod, _wait_phase, namespace, node  # noqa: F401  (fixtures)
from .test_zz_platform_restart import _platform_processes


def _make(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> float:
    started = time.monotonic()
    result = subprocess.run(["make", "-C", str(kube.REPO), "--no-print-directory", *args], capture_output=True,
                            text=True, env=env, timeout=timeout)
    assert result.returncode == 0, f"make {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
    return time.monotonic() - started


def _ports() -> set[int]:
    """Every port of the platform (lib.sh's ALL_PORTS) and of its node that something listens on."""
    ours = {int(p) for p in _lib("$ALL_PORTS $KUBELET_PORT $KUBELET_HEALTHZ_PORT $SCHEDULER_PORT").split()}
    out = subprocess.run(["ss", "-Hltun"], capture_output=True, text=True, check=True).stdout
    return {int(line.split()[4].rsplit(":", 1)[1]) for line in out.splitlines()} & ours


def _settled(timeout: float = 180) -> None:
    """Earlier tests' tenants and namespaces, deleted without waiting, gone: their finalizers ran to the end
    before the platform stops (a teardown cut off midway is another test's subject)."""
    def pending() -> list[str]:
        tenants = json.loads(kube.kubectl("get", "tenants", "-o", "json").stdout)["items"]
        namespaces = json.loads(kube.kubectl("get", "namespaces", "-o", "json").stdout)["items"]
        return ([f"tenant/{t['metadata']['name']}" for t in tenants if t["metadata"].get("deletionTimestamp")]
                + [f"namespace/{n['metadata']['name']}" for n in namespaces if n["status"].get("phase") == "Terminating"])
    kube.eventually(lambda: not pending(), timeout, 2, message=f"deletions still under way: {pending()}")


def test_make_down_leaves_nothing_of_the_node_then_make_up_brings_it_back(node, namespace):  # noqa: F811
    # A running pod, so there is a container, its network namespace, a veth and mounts to remove.
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=_pod("longrun", node["image"], "exec sleep 3600"))
    _wait_phase(namespace, "longrun", ("Running",))
    _settled()
    before = _leftovers(node)
    assert any("/netns/cni-" in x for x in before) and any(x.startswith("link ") for x in before) \
        and any(x.startswith("iptables: ") for x in before), f"with a pod running, the node's parts are there: {before}"
    assert _ports() and _platform_processes(), "the platform's ports and processes are there (the checks can fail)"
    try:
        took_down = _make("down")
        assert _leftovers(node) == [], "make down left parts of the node behind"
        assert _ports() == set(), f"ports still listening after make down: {_ports()}"
        assert _platform_processes() == [], _platform_processes()
    finally:
        took_up = _make("up", env=dict(os.environ, TENANCY_NODE="1"), timeout=600)
    kube.eventually(lambda: kube.kubectl("get", "node", node["name"], "-o",
                                         "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                                         check=False).stdout == "True", 120, message="the node Ready again")
    print(f"\nmake down with the node ({len(before)} parts before, none after) in {took_down:.1f}s; "
          f"TENANCY_NODE=1 make up in {took_up:.1f}s")
    kube.kubectl("delete", "pod", "longrun", "-n", namespace, "--grace-period=0", "--force", check=False)
