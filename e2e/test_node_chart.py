"""e2e: the operator as the chart's Deployment on the platform's real node (issue 17 item 4).

`hack/node-demo.sh` (what `make node-demo` runs) imports the operator's image (`make image`) into the
node's containerd, creates Backends on the bridge address, and `helm upgrade --install`s the chart with
imagePullPolicy Never and 2 replicas. Then: both pods Running and Ready, one active by kopf peering (the
ClusterKopfPeering the chart creates and its ConfigMap names), a Tenant Ready; `kubectl delete pod` of the
active pod: the other takes over and a Tenant applied then is Ready (the takeover time is printed).

Needs the platform with its node (`TENANCY_NODE=1 make up`); without it the module is skipped with the
reason, as e2e/test_node.py is. Runs in its own pytest session (`make test-node-chart`): the host-process
operator of the other e2e tests peers on the same ClusterKopfPeering and, started earlier, would outrank
the pods (the fixture fails, saying so, when a live peer other than the release's pods is there). At the
end `node-demo.sh park` scales the Deployment to 0 and removes the image from containerd, so the release
conftest.py installs for the host-process tests runs no pod.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import time
import uuid

import pytest

from . import kube

NS = "tenancy-system"
RELEASE = "tenancy-operator"
SELECTOR = f"app.kubernetes.io/name=tenancy-operator,app.kubernetes.io/instance={RELEASE}"
DEMO = kube.REPO / "hack" / "node-demo.sh"


def _demo(*args: str, timeout: float = 900) -> str:
    started = time.monotonic()
    result = subprocess.run(["bash", str(DEMO), *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"node-demo.sh {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
    print(f"\nnode-demo.sh {' '.join(args)} ({time.monotonic() - started:.1f}s): {result.stdout.strip()}")
    return result.stdout


def _pods() -> list[dict]:
    out = kube.kubectl("get", "pods", "-n", NS, "-l", SELECTOR, "-o", "json").stdout
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def _ready(pod: dict) -> bool:
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def _peering() -> dict:
    cm = kube.get("configmap", RELEASE, NS)
    assert cm, f"the chart's ConfigMap {NS}/{RELEASE} is missing"
    name = cm["data"]["TENANCY_PEERING_NAME"]
    obj = kube.get("clusterkopfpeering", name)
    assert obj, f"ClusterKopfPeering {name} (the ConfigMap's TENANCY_PEERING_NAME) is missing"
    return obj


def _live_peers(peering: dict) -> dict[str, dict]:
    now = datetime.datetime.now(datetime.UTC)
    live = {}
    for ident, info in (peering.get("status") or {}).items():
        seen = datetime.datetime.fromisoformat(info["lastseen"])
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=datetime.UTC)
        if (now - seen).total_seconds() < float(info.get("lifetime", 60)):
            live[ident] = info
    return live


def _active(peering: dict) -> str:
    live = _live_peers(peering)
    assert live, f"no live peer in {peering.get('status')}"
    return max(live, key=lambda ident: int(live[ident].get("priority", 0)))


def _logs(pod: str) -> str:
    return kube.kubectl("logs", pod, "-n", NS, check=False).stdout


def _wait_tenant_ready(name: str, timeout: float = 180) -> float:
    started = time.monotonic()
    kube.kubectl("wait", "--for=condition=Ready", f"tenant/{name}", f"--timeout={int(timeout)}s", timeout=timeout + 10)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def release(platform):
    if platform.get("TENANCY_NODE") != "1":
        pytest.skip("the platform runs without its node (start it with TENANCY_NODE=1 make up, or make test-node-chart)")
    _demo("import")
    _demo("backends")
    _demo("install")
    pods = kube.eventually(lambda: (p := _pods()) and len(p) == 2 and all(map(_ready, p)) and p, 180,
                           message="both operator pods Running and Ready")
    names = {p["metadata"]["name"] for p in pods}
    # Each pod writes its record within a second or two of starting.
    kube.eventually(lambda: (o := _peering()) and names <= set(_live_peers(o)) and o, 60,
                    message="both pods in the peering object")
    # A pod of an older ReplicaSet the rollout is terminating withdraws its record on SIGTERM (or it ages
    # out after its lifetime); a live peer that stays is another operator on the same peering object (the
    # host-process one of another e2e session).
    peering = _peering()
    lifetime = max([float(i.get("lifetime", 60)) for i in _live_peers(peering).values()] or [60])
    try:
        kube.eventually(lambda: not set(_live_peers(_peering())) - names, lifetime + 15)
    except AssertionError:
        foreign = set(_live_peers(_peering())) - names
        raise AssertionError(f"live peers other than the release's pods on {peering['metadata']['name']} after "
                             f"{lifetime + 15:.0f}s: {foreign} (a host-process operator? run this module in its own "
                             "session: make test-node-chart)") from None
    images = kube.REPO / "build" / "images"
    ref = (images / "tenancy-operator.ref").read_text().strip()
    yield {"ref": ref, "image": f"{ref.rsplit(':', 1)[0]}@{(images / 'tenancy-operator.digest').read_text().strip()}"}
    # Host-process mode again for the other e2e tests: no operator pod left, the image out of containerd.
    _demo("park", timeout=120)


@pytest.fixture
def tenants():
    created: list[str] = []
    yield created
    for name in created:
        kube.kubectl("delete", "tenant", name, "--ignore-not-found", "--wait=false", check=False)


def _tenant(name: str) -> str:
    return kube.tenant_yaml(name, displayName=f"node chart {name}", postgres={"enabled": True},
                            redis={"enabled": True}, vault={"enabled": True, "kv": True})


def test_both_pods_ready_from_the_imported_image_one_active_by_peering(release, tenants):
    pods = _pods()
    assert len(pods) == 2 and all(map(_ready, pods)), [(p["metadata"]["name"], p["status"].get("phase")) for p in pods]
    for pod in pods:
        c = pod["spec"]["containers"][0]
        assert c["image"] == release["image"] and c["imagePullPolicy"] == "Never", (c["image"], c["imagePullPolicy"])
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["nodeName"] == kube.load_platform_env()["TENANCY_NODE_NAME"]
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"], status
    labels = kube.get("namespace", NS)["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", labels
    peering = _peering()
    live = _live_peers(peering)
    names = sorted(p["metadata"]["name"] for p in pods)
    assert sorted(live) == names, live
    # The ConfigMap's settings reached the pods: the peering object it names, the lifetime it sets.
    cm = kube.get("configmap", RELEASE, NS)["data"]
    assert {str(info["lifetime"]) for info in live.values()} == {cm["TENANCY_PEERING_LIFETIME"]}, live
    priorities = {int(info["priority"]) for info in live.values()}
    assert len(priorities) == 2, f"two peers with one priority would both pause: {live}"
    active = _active(peering)
    print(f"\nactive by peering: {active}; standby: {[n for n in names if n != active]}")
    # The active pod handles a Tenant; the standby does not.
    name = f"nc-{uuid.uuid4().hex[:6]}"
    tenants.append(name)
    kube.apply(_tenant(name))
    took = _wait_tenant_ready(name)
    print(f"tenant {name} Ready in {took:.1f}s")
    assert name in _logs(active)
    (standby,) = [n for n in names if n != active]
    assert name not in _logs(standby), f"the standby {standby} handled {name} too"


def test_delete_the_active_pod_the_other_takes_over(release, tenants):
    peering = _peering()
    active = _active(peering)
    (standby,) = [p["metadata"]["name"] for p in _pods() if p["metadata"]["name"] != active]
    resumed_before = _logs(standby).count("Resuming operations")
    started = time.monotonic()
    deleted_at = datetime.datetime.now(datetime.UTC)
    kube.kubectl("delete", "pod", active, "-n", NS, "--wait=false")

    # The standby resumes: kopf logs it when the active peer's record is gone (removed on SIGTERM) or expired.
    def resumed():
        lines = [line for line in _logs(standby).splitlines() if "Resuming operations" in line]
        return lines[resumed_before:] or None
    line = kube.eventually(resumed, 60, 0.2, message=f"{standby} resumed operations")[0]
    took_over = time.monotonic() - started
    logged = datetime.datetime.fromisoformat(json.loads(line)["time"].replace("Z", "+00:00"))
    assert _active(_peering()) == standby
    assert active not in _live_peers(_peering())

    name = f"nc-{uuid.uuid4().hex[:6]}"
    tenants.append(name)
    applied = time.monotonic()
    kube.apply(_tenant(name))
    ready = _wait_tenant_ready(name)
    assert name in _logs(standby), f"{name} was not handled by {standby}"
    print(f"\ntakeover: {active} deleted, {standby} active after {took_over:.1f}s "
          f"(its log: {(logged - deleted_at).total_seconds():.1f}s after the delete); "
          f"tenant {name} Ready {ready:.1f}s after apply, {time.monotonic() - started:.1f}s after the delete "
          f"(applied at +{applied - started:.1f}s)")

    # The Deployment replaces the pod; the newcomer stands by (it is younger than the new leader).
    pods = kube.eventually(lambda: (p := _pods()) and len(p) == 2 and all(map(_ready, p)) and p, 180,
                           message="a replacement pod Ready")
    newcomer = next(p["metadata"]["name"] for p in pods if p["metadata"]["name"] != standby)
    kube.eventually(lambda: newcomer in _live_peers(_peering()), 60, message=f"{newcomer} in the peering object")
    assert _active(_peering()) == standby
    print(f"replacement {newcomer} Ready and standing by, {time.monotonic() - started:.1f}s after the delete")


def test_tenant_workload_reaches_its_backends_with_the_secret(release, tenants):
    """The tenant workload image (make image) in the tenant's namespace: envFrom tenant-credentials, the
    tenant's ServiceAccount; its /healthz checks PostgreSQL (SELECT 1), Redis (SET/GET under its prefix as
    its ACL user) and OpenBao (Kubernetes-auth login, lookup-self, LIST of its KV folder)."""
    name = f"nc-{uuid.uuid4().hex[:6]}"
    tenants.append(name)
    kube.apply(_tenant(name))
    _wait_tenant_ready(name)
    out = _demo("workload", name, timeout=300)
    body = json.loads(out.split("/healthz: ", 1)[1].strip().splitlines()[0])
    assert body["status"] == "ok", body
    assert {k: v["ok"] for k, v in body["backends"].items()} == {"postgres": True, "redis": True, "openbao": True}, body
    ns = kube.get("tenant", name)["status"]["namespace"]
    pod = kube.kubectl("get", "pod", "-n", ns, "-l", "app=workload", "-o", "jsonpath={.items[0].status.podIP}").stdout
    bridge_ip = kube.load_platform_env()["TENANCY_NODE_BRIDGE_IP"]
    assert pod.startswith(bridge_ip.rsplit(".", 1)[0] + "."), f"the workload pod's IP {pod} is not on the bridge"


def test_every_example_backend_is_reached_from_the_pods(release, tenants):
    """What make demo shows: the Backends of examples/backends.yaml on the bridge address (OpenSearch,
    FerretDB and Prometheus through the node's relays), probed Ready by the operator in its pod, and the
    example tenant with every backend (examples/tenant-full.yaml: PostgreSQL, Redis, OpenSearch, MongoDB
    on FerretDB, OpenBao) Ready under a fresh name."""
    backends = json.loads(kube.kubectl("get", "backends", "-o", "json").stdout)["items"]
    bridge_ip = kube.load_platform_env()["TENANCY_NODE_BRIDGE_IP"]
    assert {b["metadata"]["name"]: b["spec"]["endpoint"]["host"] for b in backends} == {
        n: bridge_ip for n in ("pg-main", "redis-main", "vault-main", "search-main", "mongo-main")}
    kube.kubectl("wait", "--for=condition=Ready", "backends", "--all", "--timeout=120s", timeout=130)
    kube.kubectl("apply", "-f", str(kube.REPO / "examples" / "policies.yaml"))
    name = f"nc-full-{uuid.uuid4().hex[:6]}"
    full = (kube.REPO / "examples" / "tenant-full.yaml").read_text().replace("name: globex", f"name: {name}", 1)
    assert f"name: {name}" in full
    tenants.append(name)
    kube.apply(full)
    took = _wait_tenant_ready(name, 300)
    ready = {c["type"] for c in kube.get("tenant", name)["status"]["conditions"] if c["status"] == "True"}
    print(f"\n{name} (every backend) Ready in {took:.1f}s from the operator's pod: {sorted(ready)}")
    assert {"DatabaseReady", "CacheReady", "SearchReady", "DocumentStoreReady", "VaultReady"} <= ready, ready
