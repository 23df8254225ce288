"""e2e: a credential rotation seen by real pods on the platform's node (issue 17, acceptance line 2).

A Tenant with PostgreSQL, Redis and OpenBao (KV) on the Backends at the node's bridge address
(`hack/node-demo.sh backends`, as e2e/test_node_chart.py uses them), `restartWorkloads: true` and an
overlap of OVERLAP seconds; a Deployment of the tenant-workload image (`make image`, imported into the
node's containerd) in its namespace: 2 replicas, `envFrom` the `tenant-credentials` Secret, opted in to
rolling (`tenancy.dev/restart-on-rotation`), maxUnavailable 0 and minReadySeconds MIN_READY (so the old
pods live well into the overlap), PodSecurity `restricted`, `imagePullPolicy: Never`. The
workload reads its environment once, at start: an old pod keeps the old credentials, which is exactly
what the overlap protects.

Every pod's /healthz (PostgreSQL `SELECT 1`, Redis SET/GET, OpenBao Kubernetes-auth login + KV LIST with
the Secret's values) is read from the host at the pod's IP on the bridge. After `kubectl tenant rotate`,
polling every POLL seconds: each old pod answers 200 until it is terminated (a 503, or no answer while
it is not terminating, is a failure); the old PostgreSQL and Redis passwords keep working from the host
until the overlap ends; the Deployment rolls (template annotation = the new version, a new ReplicaSet),
its new pods are Ready and answer 200, and their environment holds the new Secret's values (compared
by hash, never printed); at any moment at least one Ready pod answers 200 (maxUnavailable 0). A bare
pod of the same workload started before the rotation ("held": nothing rolls it) answers 200 for the whole
overlap and 503 after it. After the overlap, the old PostgreSQL password and the old Redis password are
refused.

Uses the host-process `operator` fixture (e2e/conftest.py), like test_node.py and test_node_netpol.py,
and runs in their pytest session (`make test`'s node phase, `make test-node`). Skipped, with the
reason, when the platform runs without its node.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest
import redis

from . import kube
from .tenant_clients import credentials, pg, redis_client

OVERLAP = 40
"""Seconds the previous credentials keep working after a rotation (spec.credentials.overlap)."""
POLL = 0.5
MIN_READY = 8
REPLICAS = 2
DEMO = kube.REPO / "hack" / "node-demo.sh"
IMAGES = kube.REPO / "build" / "images"
PG_REFUSED = (asyncpg.exceptions.InvalidPasswordError, asyncpg.exceptions.InvalidAuthorizationSpecificationError)
# urllib without the environment's proxies: pod IPs are on the local bridge.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _sh(*cmd: str, timeout: float = 600, label: str = "") -> str:
    started = time.monotonic()
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, cwd=kube.REPO)
    assert result.returncode == 0, f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
    print(f"\n{label or ' '.join(cmd[1:])} ({time.monotonic() - started:.1f}s): {result.stdout.strip()[-300:]}")
    return result.stdout


@pytest.fixture(scope="module")
def node_workload(platform, operator):
    """The bridge-address Backends and the tenant-workload image in the node's containerd: its reference."""
    if platform.get("TENANCY_NODE") != "1":
        pytest.skip("the platform runs without its node (start it with TENANCY_NODE=1 make up, or make test-node)")
    _sh("bash", str(DEMO), "backends")
    kube.kubectl("wait", "--for=condition=Ready", "backend/pg-main", "backend/redis-main", "backend/vault-main",
                 "--timeout=60s", timeout=70)
    _sh("bash", "platform/image.sh", "workload", timeout=900)
    ref = (IMAGES / "tenant-workload.ref").read_text().strip()
    # As node-demo.sh's `workload` step does: imported once, then kept in containerd's store.
    _sh("bash", "-c", f'source platform/lib.sh && c() {{ ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }} && '
                      f'{{ c images ls -q | grep -qx "{ref}" || c images import build/images/tenant-workload.oci.tar; }}',
        timeout=300, label=f"{ref} in the node's containerd")
    return ref


def _tenant(name: str) -> str:
    return kube.tenant_yaml(
        name, displayName=f"node rotation {name}",
        postgres={"enabled": True, "backend": "pg-main"}, redis={"enabled": True, "backend": "redis-main"},
        vault={"enabled": True, "kv": True, "backend": "vault-main"},
        credentials={"rotateEvery": "720h", "overlap": f"{OVERLAP}s", "restartWorkloads": True})


def _deployment(ns: str, image: str, version: str) -> str:
    """The workload, opted in to rolling; its template already carries the current version, so the operator
    has nothing to roll before the rotation."""
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "workload", "namespace": ns, "labels": {"tenancy.dev/restart-on-rotation": "true"}},
        "spec": {
            "replicas": REPLICAS, "selector": {"matchLabels": {"app": "workload"}},
            # Each new pod must stay Ready MIN_READY seconds before an old one goes: the old pods live well
            # into the overlap, so their /healthz is read there for a while, not only for a moment.
            "minReadySeconds": MIN_READY,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "workload"}, "annotations": {"tenancy.dev/credential-version": version}},
                "spec": {
                    "serviceAccountName": "tenant-app",
                    "terminationGracePeriodSeconds": 5,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "workload", "image": image, "imagePullPolicy": "Never",
                        "envFrom": [{"secretRef": {"name": "tenant-credentials"}}],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2,
                                           "timeoutSeconds": 10, "failureThreshold": 3},
                        "livenessProbe": {"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 10},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}},
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                      "limits": {"cpu": "500m", "memory": "256Mi"}},
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                },
            },
        },
    })


def _held_pod(ns: str, image: str) -> str:
    """A bare pod of the workload, not of the Deployment: nothing restarts it, so it keeps the old values for
    the whole overlap and after it (the witness that old pods keep working exactly as long as the overlap)."""
    template = json.loads(_deployment(ns, image, "0"))["spec"]["template"]
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "held", "namespace": ns, "labels": {"app": "held"}},
                       "spec": template["spec"]})


def _pods(ns: str) -> dict[str, dict]:
    out = kube.kubectl("get", "pods", "-n", ns, "-l", "app=workload", "-o", "json").stdout
    return {p["metadata"]["name"]: p for p in json.loads(out)["items"]}


def _ready(pod: dict) -> bool:
    return (not pod["metadata"].get("deletionTimestamp") and pod["status"].get("phase") == "Running"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])))


def _healthz(ip: str) -> tuple[int | None, str]:
    """(HTTP status, body) of the pod's /healthz from the host; (None, error) when nothing answered."""
    try:
        with _HTTP.open(f"http://{ip}:8080/healthz", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return None, repr(e)


def _pod_env(ns: str, pod: str) -> dict[str, str]:
    """The container's environment (the image has python3 and no shell): what the workload process runs with."""
    out = kube.kubectl("exec", "-n", ns, pod, "--", "python3", "-c",
                       "import json, os; print(json.dumps(dict(os.environ)))", timeout=30).stdout
    return json.loads(out)


def _fingerprint(values: dict[str, str]) -> dict[str, str]:
    """The credentials' values as short hashes: compared, printed if need be, never the secrets themselves."""
    keys = ("PGUSER", "PGPASSWORD", "REDIS_USERNAME", "REDIS_PASSWORD", "VAULT_ROLE")
    return {k: hashlib.sha256(values.get(k, "").encode()).hexdigest()[:12] for k in keys}


def _status_credentials(name: str) -> dict:
    return ((kube.get("tenant", name) or {}).get("status") or {}).get("credentials") or {}


def _template_version(ns: str) -> str | None:
    d = kube.get("deployment", "workload", ns) or {}
    return ((d.get("spec", {}).get("template", {}).get("metadata") or {}).get("annotations") or {}).get(
        "tenancy.dev/credential-version")


def _old_pg_ok(creds: dict[str, str]) -> tuple[bool, str]:
    try:
        pg(creds, "SELECT 1")
        return True, ""
    except Exception as e:  # noqa: BLE001 - any failure is reported
        return False, repr(e)


def _old_redis_ok(creds: dict[str, str]) -> tuple[bool, str]:
    r = redis_client(creds)
    try:
        r.ping()
        return True, ""
    except Exception as e:  # noqa: BLE001
        return False, repr(e)
    finally:
        r.close()


@pytest.fixture
def tenant(node_workload, cleanup_tenants):
    name = f"nrot-{uuid.uuid4().hex[:5]}"
    cleanup_tenants.append(name)
    return name


def test_rotation_rolls_the_workload_and_old_pods_work_through_the_overlap(node_workload, tenant):
    name, image = tenant, node_workload
    t0 = time.monotonic()
    kube.apply(_tenant(name))
    kube.kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=180s", timeout=190)
    ns = kube.get("tenant", name)["status"]["namespace"]
    ns_labels = kube.get("namespace", ns)["metadata"]["labels"]
    assert ns_labels.get("pod-security.kubernetes.io/enforce") == "restricted", ns_labels
    version = str(_status_credentials(name)["version"])
    old_creds = credentials(name, ns)
    assert old_creds["PGHOST"] == kube.load_platform_env()["TENANCY_NODE_BRIDGE_IP"], "the Secret names the bridge address"
    tenant_ready = time.monotonic() - t0

    kube.apply(_deployment(ns, image, version))
    kube.apply(_held_pod(ns, image))
    kube.kubectl("rollout", "status", "deployment/workload", "-n", ns, "--timeout=180s", timeout=190)
    kube.kubectl("wait", "--for=condition=Ready", "pod/held", "-n", ns, "--timeout=120s", timeout=130)
    held_ip = kube.get("pod", "held", ns)["status"]["podIP"]
    assert _healthz(held_ip)[0] == 200, f"the held pod before the rotation: {_healthz(held_ip)}"
    pods = kube.eventually(lambda: (p := {n: v for n, v in _pods(ns).items() if _ready(v)}) and len(p) == REPLICAS and p,
                           60, message=f"{REPLICAS} workload pods Ready")
    workload_ready = time.monotonic() - t0
    old = {n: p["status"]["podIP"] for n, p in pods.items()}
    old_rs = {p["metadata"]["ownerReferences"][0]["name"] for p in pods.values()}
    for pod, ip in old.items():
        code, body = _healthz(ip)
        assert code == 200, f"{pod} ({ip}) /healthz before the rotation: {code} {body}"
        backends = {k: v["ok"] for k, v in json.loads(body)["backends"].items()}
        assert backends == {"postgres": True, "redis": True, "openbao": True}, body
        assert _fingerprint(_pod_env(ns, pod)) == _fingerprint(old_creds), f"{pod} runs with other values than the Secret's"
    print(f"\ntenant {name} Ready in {tenant_ready:.1f}s, {REPLICAS} workload pods Ready at {workload_ready:.1f}s: "
          f"{sorted(old)} (version {version}, {old_creds['PGUSER']}), /healthz 200 from the host")

    # The rotation, by the plugin.
    rotated = time.monotonic()
    out = subprocess.run(["kubectl", "tenant", "rotate", name], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "rotation requested" in out.stdout, f"kubectl tenant rotate: {out.stdout}{out.stderr}"

    polls = 0
    old_ok = {p: 0 for p in old}
    old_fail: list[str] = []
    old_gone: dict[str, float] = {}
    new_first_ok: dict[str, float] = {}
    new_ok = 0
    new_fail: list[str] = []
    no_ready_ok: list[float] = []
    cred_ok = 0
    cred_fail: list[str] = []
    held_ok = 0
    held_fail: list[str] = []
    new_version = None
    version_at = rolled_at = closed_at = None
    overlap_end = None  # monotonic time the overlap ends, from status.credentials.rotatedAt
    deadline = rotated + OVERLAP + 90
    with ThreadPoolExecutor(max_workers=8) as pool:
        while time.monotonic() < deadline:
            polls += 1
            now = time.monotonic()
            current = _pods(ns)
            status = _status_credentials(name)
            if new_version is None and str(status.get("version")) != version:
                new_version, version_at = str(status.get("version")), now
                # rotatedAt has one-second resolution: the overlap ends no earlier than OVERLAP after it.
                rotated_wall = time.mktime(time.strptime(status["rotatedAt"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
                overlap_end = now + (rotated_wall + OVERLAP - time.time())
            # Old pods: asked until they are terminating or gone.
            asking = {p: ip for p, ip in old.items() if p not in old_gone and p in current
                      and not current[p]["metadata"].get("deletionTimestamp")}
            for p in old:
                if p not in old_gone and p not in asking:
                    old_gone[p] = now - rotated
            # New pods: those not recorded before, Ready.
            new = {p: v["status"]["podIP"] for p, v in current.items() if p not in old and _ready(v)}
            answers = dict(zip(list(asking) + list(new), pool.map(_healthz, list(asking.values()) + list(new.values())), strict=True))
            # The old credentials from the host and from the held pod, until one second before the overlap ends.
            if overlap_end is None or time.monotonic() < overlap_end - 1:
                code, body = _healthz(held_ip)
                if code == 200:
                    held_ok += 1
                else:
                    held_fail.append(f"+{time.monotonic() - rotated:.1f}s held pod: {code} {body}")
                for what, (ok, err) in (("postgres", _old_pg_ok(old_creds)), ("redis", _old_redis_ok(old_creds))):
                    if ok:
                        cred_ok += 1
                    else:
                        cred_fail.append(f"+{time.monotonic() - rotated:.1f}s old {what} credentials: {err}")
            any_ready_ok = False
            for p, (code, body) in answers.items():
                at = time.monotonic() - rotated
                late = " (after the overlap's end)" if overlap_end is not None and time.monotonic() > overlap_end else ""
                if p in asking:
                    if code == 200:
                        old_ok[p] += 1
                        any_ready_ok = True
                    elif code is None:
                        # No answer: fine if the pod is being terminated by now (SIGTERM ends the server at once).
                        pod = _pods(ns).get(p)
                        if pod and not pod["metadata"].get("deletionTimestamp"):
                            old_fail.append(f"+{at:.1f}s{late} {p}: no answer while not terminating: {body}")
                        else:
                            old_gone.setdefault(p, at)
                    else:
                        old_fail.append(f"+{at:.1f}s{late} {p}: HTTP {code} {body}")
                else:
                    if code == 200:
                        new_ok += 1
                        new_first_ok.setdefault(p, at)
                        any_ready_ok = True
                    else:
                        new_fail.append(f"+{at:.1f}s {p} (Ready): {code} {body}")
            if not any_ready_ok:
                no_ready_ok.append(round(time.monotonic() - rotated, 1))
            done_rolling = (new_version is not None and len(old_gone) == len(old) and len(new) == REPLICAS
                            and all(p in new_first_ok for p in new))
            if done_rolling and rolled_at is None:
                rolled_at = time.monotonic()
            if rolled_at is not None and not status.get("previousOpen") and overlap_end is not None \
                    and time.monotonic() >= overlap_end:
                closed_at = time.monotonic()
                break
            time.sleep(max(0.0, POLL - (time.monotonic() - now)))

    new_rs = {v["metadata"]["ownerReferences"][0]["name"] for p, v in _pods(ns).items() if p not in old}
    print(f"rotation: version {version} -> {new_version} at +{(version_at or rotated) - rotated:.1f}s; "
          f"old pods gone at {', '.join(f'+{t:.1f}s' for t in sorted(old_gone.values()))}; "
          f"new pods /healthz 200 first at {', '.join(f'+{t:.1f}s' for t in sorted(new_first_ok.values()))}; "
          f"rolled (all {REPLICAS} new pods answering, old gone) at "
          f"{f'+{rolled_at - rotated:.1f}s' if rolled_at else 'never'}; overlap closed (previousOpen off) at "
          f"{f'+{closed_at - rotated:.1f}s' if closed_at else 'never'} (overlap {OVERLAP}s)")
    print(f"{polls} polls every {POLL}s: old pods 200 x {sum(old_ok.values())} ({old_ok}), old-pod failures "
          f"{len(old_fail)}; new pods 200 x {new_ok}, failures {len(new_fail)}; old credentials from the host "
          f"ok x {cred_ok}, failures {len(cred_fail)}; held pod (old values, never restarted) 200 x {held_ok}, "
          f"failures {len(held_fail)}; polls without any Ready pod answering 200: {len(no_ready_ok)}")

    assert new_version is not None and int(new_version) == int(version) + 1, f"no rotation: {_status_credentials(name)}"
    assert not old_fail, f"old pods failed before they were replaced: {old_fail[:5]}"
    assert all(old_ok.values()), f"an old pod never answered 200 after the rotate: {old_ok}"
    assert not cred_fail, f"the old credentials failed before the overlap ended: {cred_fail[:5]}"
    assert cred_ok > 0
    assert not held_fail, f"a pod with the old values failed before the overlap ended: {held_fail[:5]}"
    assert held_ok > 0
    assert _template_version(ns) == new_version, "the operator did not put the new version in the pod template"
    assert new_rs and not new_rs & old_rs, f"no new ReplicaSet: old {old_rs}, new {new_rs}"
    assert rolled_at is not None, (f"the Deployment did not roll within {deadline - rotated:.0f}s: old gone {old_gone}, "
                                   f"new answering {new_first_ok}, pods {sorted(_pods(ns))}")
    assert not new_fail, f"new Ready pods failed /healthz: {new_fail[:5]}"
    assert not no_ready_ok, f"polls where no Ready pod answered 200 (at +s): {no_ready_ok[:10]}"
    assert closed_at is not None, f"the overlap was not closed within {deadline - rotated:.0f}s: {_status_credentials(name)}"

    # The new pods run with the new Secret's values.
    new_creds = credentials(name, ns)
    assert new_creds["PGUSER"] != old_creds["PGUSER"] and new_creds["PGPASSWORD"] != old_creds["PGPASSWORD"]
    assert new_creds["REDIS_PASSWORD"] != old_creds["REDIS_PASSWORD"]
    slots = (old_creds["PGUSER"][-2:], new_creds["PGUSER"][-2:])
    assert sorted(slots) == ["_a", "_b"], f"the PostgreSQL role did not flip slots: {slots}"
    final = {p: v for p, v in _pods(ns).items() if _ready(v)}
    assert len(final) == REPLICAS and not set(final) & set(old), sorted(final)
    for pod in final:
        assert _fingerprint(_pod_env(ns, pod)) == _fingerprint(new_creds), f"{pod} does not run with the new Secret's values"
        code, body = _healthz(final[pod]["status"]["podIP"])
        assert code == 200, f"{pod} /healthz after the overlap: {code} {body}"

    # After the overlap, the servers refuse the old credentials; the new ones work.
    with pytest.raises(PG_REFUSED):
        pg(old_creds, "SELECT 1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client(old_creds).ping()
    assert pg(new_creds, "SELECT 1")
    assert redis_client(new_creds).ping()
    # The held pod, with the old values, fails once the overlap is over (so its 200s above could fail):
    # PostgreSQL and Redis refuse it; its OpenBao login (the ServiceAccount's token) still works.
    code, body = kube.eventually(lambda: (r := _healthz(held_ip))[0] == 503 and r, 20,
                                 message="the held pod answers 503 after the overlap")
    held_after = {k: v["ok"] for k, v in json.loads(body)["backends"].items()}
    assert held_after == {"postgres": False, "redis": False, "openbao": True}, f"{code} {body}"
    print(f"after the overlap: the held pod /healthz {code} {held_after}")
    print(f"after the overlap: old PostgreSQL ({old_creds['PGUSER']}) and Redis passwords refused, new pods "
          f"({new_creds['PGUSER']}) 200; whole test {time.monotonic() - t0:.1f}s")

    # Nothing left running for the tests after this one: the Deployment goes with the namespace, but not at once.
    kube.kubectl("delete", "deployment", "workload", "-n", ns, "--wait=false", check=False)
    kube.kubectl("delete", "pod", "held", "-n", ns, "--wait=false", check=False)
