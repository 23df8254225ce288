"""Suspend stops the workloads and cuts every open connection; resume brings back exactly what ran (issue 13).

Real servers, real clients: the tenant's own credentials against PostgreSQL, Redis and OpenBao, a
Deployment and a StatefulSet in its namespace (no kubelet here: their spec.replicas is what is
scaled), and an HPA the HPA controller runs (it does not scale a target the suspend put at 0).
Also: a LifecyclePolicy with suspendRevokesLogins: false (workloads stop, logins stay), and
inactivitySuspendAfter (an idle tenant is suspended by annotation, spec untouched, and resumed by
`kubectl tenant resume`).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import hvac.exceptions
import pytest
import redis

from . import kube
from .admin import vault_admin
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client, vault_login

SPEC = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}
SECURITY = {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 1000,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
PLUGIN = str(Path(sys.executable).parent / "kubectl-tenant")


def _policy(name: str, **spec) -> str:
    return json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": name},
                       "spec": {"reclaim": "Delete", **spec}})


def _workload(kind: str, name: str, namespace: str, replicas: int) -> str:
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                "name": name, "image": "example.invalid/app:1", "securityContext": SECURITY}]}}}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return json.dumps({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
                       "spec": spec})


def _hpa(namespace: str, target: str, minimum: int) -> str:
    return json.dumps({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                       "metadata": {"name": f"{target}-user", "namespace": namespace},
                       "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                                "minReplicas": minimum, "maxReplicas": minimum + 2,
                                "metrics": [{"type": "Resource", "resource": {
                                    "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}})


def _replicas(kind: str, name: str, namespace: str) -> int:
    return int((get(kind, name, namespace) or {}).get("spec", {}).get("replicas", -1))


def _phase(name: str) -> str | None:
    return (get("tenant", name) or {}).get("status", {}).get("phase")


def _make(name: str, policy: str, cleanup: list[str], **policy_spec) -> dict[str, str]:
    cleanup.append(name)
    kube.apply(_policy(policy, **policy_spec))
    kube.apply(tenant_yaml(name, **SPEC, lifecyclePolicyRef=policy))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    return credentials(name)


def _events(name: str, reason: str) -> list[str]:
    """Messages of the Events of this reason on the Tenant of this name now."""
    return [e.get("message", "") for e in kube.object_events("Tenant", name, reason=reason)]


async def _cut_times(creds: dict[str, str], suspend) -> tuple[float, float]:
    """Open a PostgreSQL session and a Redis connection as the tenant, call ``suspend``, and return how
    long each took to be cut (seconds from the call)."""
    session = await asyncpg.connect(host=creds["PGHOST"], port=int(creds["PGPORT"]), user=creds["PGUSER"],
                                    password=creds["PGPASSWORD"], database=creds["PGDATABASE"], timeout=5)
    conn = redis.Connection(host=creds["REDIS_HOST"], port=int(creds["REDIS_PORT"]), username=creds["REDIS_USERNAME"],
                            password=creds["REDIS_PASSWORD"], socket_timeout=2)
    conn.connect()
    assert await session.fetchval("SELECT 1") == 1
    conn.send_command("PING")
    assert conn.read_response() in (b"PONG", "PONG")
    start = time.monotonic()
    suspend()
    pg_cut = redis_cut = None
    while (pg_cut is None or redis_cut is None) and time.monotonic() - start < 30:
        if pg_cut is None:
            try:
                await session.fetchval("SELECT 1", timeout=2)
            except Exception:  # noqa: BLE001 - terminated by the server: asyncpg reports it in several ways
                pg_cut = time.monotonic() - start
        if redis_cut is None:
            try:
                conn.send_command("PING")
                conn.read_response()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                redis_cut = time.monotonic() - start
        await asyncio.sleep(0.1)
    if not session.is_closed():
        session.terminate()
    conn.disconnect()
    assert pg_cut is not None and redis_cut is not None, f"open connections not cut within 30 s: pg {pg_cut}, redis {redis_cut}"
    return pg_cut, redis_cut


def test_suspend_scales_workloads_to_zero_cuts_connections_and_resume_restores(backends, operator, cleanup_tenants):
    name, namespace = "susp-work", "tenant-susp-work"
    creds = _make(name, "susp-work-policy", cleanup_tenants)
    pg(creds, "CREATE TABLE IF NOT EXISTS kept (v text)")
    pg(creds, "DELETE FROM kept")
    pg(creds, "INSERT INTO kept VALUES ('row before suspend')")
    key = creds["REDIS_KEY_PREFIX"] + "kept"
    redis_client(creds).set(key, "key before suspend")
    token = vault_login(creds, namespace)
    token.secrets.kv.v2.create_or_update_secret(mount_point="tenants", path=f"tenant-{name}/db", secret={"v": "kept"})
    accessor = token.lookup_token()["data"]["accessor"]
    kube.apply(_workload("Deployment", "api", namespace, 3))
    kube.apply(_workload("StatefulSet", "db", namespace, 2))
    kube.apply(_hpa(namespace, "api", 3))  # holds api at >= 3 while active; must not lift it off 0 while suspended

    pg_cut, redis_cut = asyncio.run(_cut_times(creds, lambda: kubectl(
        "patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Suspended"}}')))
    print(f"\nopen connections cut after suspend: PostgreSQL session {pg_cut:.2f} s, Redis client {redis_cut:.2f} s")
    assert pg_cut <= 5 and redis_cut <= 5
    eventually(lambda: _phase(name) == "Suspended", 30, message="phase Suspended")
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=30s", timeout=40)
    eventually(lambda: _replicas("Deployment", "api", namespace) == 0 and _replicas("StatefulSet", "db", namespace) == 0,
               20, message="workloads at 0")
    tenant = get("tenant", name)
    assert tenant["status"]["suspension"]["workloads"] == {"Deployment/api": 3, "StatefulSet/db": 2}
    assert get("deployment", "api", namespace)["metadata"]["annotations"]["tenancy.dev/suspended-replicas"] == "3"
    assert any("Deployment/api (was 3)" in m for m in _events(name, "WorkloadsScaledDown"))
    # Every credential refused by every server.
    with pytest.raises(asyncpg.exceptions.InvalidAuthorizationSpecificationError):
        pg(creds, "SELECT 1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client(creds).ping()
    with pytest.raises(hvac.exceptions.Forbidden):
        token.secrets.kv.v2.read_secret_version(mount_point="tenants", path=f"tenant-{name}/db", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault_admin().auth.token.lookup_accessor(accessor)
    with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
        vault_login(creds, namespace)
    # The HPA (sync period 5 s here) does not scale a target at 0: three periods later it is still 0.
    time.sleep(16)
    assert _replicas("Deployment", "api", namespace) == 0
    assert _phase(name) == "Suspended"

    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Active"}}')
    eventually(lambda: _phase(name) == "Ready", 40, message="phase Ready")
    assert _replicas("Deployment", "api", namespace) == 3
    assert _replicas("StatefulSet", "db", namespace) == 2
    assert "tenancy.dev/suspended-replicas" not in (get("statefulset", "db", namespace)["metadata"].get("annotations") or {})
    assert "suspension" not in get("tenant", name)["status"]
    assert pg(creds, "SELECT v FROM kept")[0][0] == "row before suspend"
    assert redis_client(creds).get(key) == "key before suspend"
    fresh = vault_login(creds, namespace)
    assert fresh.secrets.kv.v2.read_secret_version(mount_point="tenants", path=f"tenant-{name}/db",
                                                   raise_on_deleted_version=True)["data"]["data"] == {"v": "kept"}


def test_suspend_that_keeps_logins_still_stops_workloads(backends, operator, cleanup_tenants):
    name, namespace = "susp-keep", "tenant-susp-keep"
    creds = _make(name, "susp-keep-policy", cleanup_tenants, suspendRevokesLogins=False)
    assert condition(get("tenant", name), "SpecSupported")["status"] == "True"
    kube.apply(_workload("Deployment", "api", namespace, 2))
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Suspended"}}')
    eventually(lambda: _phase(name) == "Suspended" and _replicas("Deployment", "api", namespace) == 0, 30,
               message="Suspended with the Deployment at 0")
    ready = condition(get("tenant", name), "Ready")
    assert ready["status"] == "True" and "logins kept" in ready["message"]
    assert get("tenant", name)["status"]["suspension"]["loginsRevoked"] is False
    assert pg(creds, "SELECT 1")[0][0] == 1  # the logins still work
    assert redis_client(creds).ping()
    assert vault_login(creds, namespace).lookup_token()
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Active"}}')
    eventually(lambda: _phase(name) == "Ready" and _replicas("Deployment", "api", namespace) == 2, 30,
               message="Ready with the Deployment back at 2")


def test_inactivity_suspends_an_idle_tenant_by_annotation_and_resume_lifts_it(backends, operator, cleanup_tenants):
    name, namespace = "susp-idle", "tenant-susp-idle"
    after = 12
    creds = _make(name, "susp-idle-policy", cleanup_tenants, inactivitySuspendAfter=f"{after}s")
    kube.apply(_workload("Deployment", "api", namespace, 1))
    # In use (an open Redis client) for longer than the limit: not suspended.
    busy = redis_client(creds)
    busy.ping()
    time.sleep(after + 6)
    assert _phase(name) == "Ready"
    busy.close()
    started = time.monotonic()
    eventually(lambda: _phase(name) == "Suspended", after + 30, message="suspended for inactivity")
    print(f"\nidle tenant suspended {time.monotonic() - started:.1f} s after its last client left "
          f"(inactivitySuspendAfter {after}s)")
    tenant = get("tenant", name)
    assert tenant["spec"]["state"] == "Active"  # spec is never rewritten: GitOps sees no drift
    assert "tenancy.dev/suspended-for-inactivity" in tenant["metadata"]["annotations"]
    assert tenant["status"]["suspension"]["by"] == "inactivity"
    assert any("suspended for inactivity" in m for m in _events(name, "SuspendedForInactivity"))
    eventually(lambda: _replicas("Deployment", "api", namespace) == 0, 20, message="Deployment at 0")
    with pytest.raises(asyncpg.exceptions.InvalidAuthorizationSpecificationError):
        pg(creds, "SELECT 1")

    def handled() -> str:  # what kopf's update handler last saw (its diff base)
        return get("tenant", name)["metadata"]["annotations"].get("tenancy.dev/last-handled-configuration", "")

    # The mark is part of what the update handler reacts to: removing it starts a pass at once.
    eventually(lambda: "suspended-for-inactivity" in handled(), 30, message="the mark in the diff base")
    out = subprocess.run([PLUGIN, "resume", name], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    eventually(lambda: "suspended-for-inactivity" not in handled(), 30, message="the update handler saw the resume")
    eventually(lambda: _phase(name) == "Ready", 30, message="resumed")
    keep = redis_client(creds)  # in use again at once, so the restarted clock does not run out mid-test
    assert keep.ping()
    assert "tenancy.dev/suspended-for-inactivity" not in (get("tenant", name)["metadata"].get("annotations") or {})
    assert _replicas("Deployment", "api", namespace) == 1
    assert pg(creds, "SELECT 1")[0][0] == 1
    time.sleep(after + 3)
    assert _phase(name) == "Ready"  # the clock restarted at resume and the open client keeps it running
    keep.close()
    # The suspension's and the resume's writes (logins off and on, sessions ended) are theirs, as a spec
    # suspension's are: no DriftRepaired Warning (Events outlive a tenant of this name: this one's only).
    drift = _events(name, "DriftRepaired")
    assert not drift, drift
