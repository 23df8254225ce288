"""Backends over time: drift repaired, outages contained and recovered, deletion by reclaim policy."""

from __future__ import annotations

import subprocess
import time

from . import kube
from .admin import pg_admin, pg_databases, pg_roles, redis_admin, vault_admin, vault_exists
from .kube import REPO, condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client

FULL = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}


def _ready(*names: str, timeout: int = 60) -> None:
    kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in names], f"--timeout={timeout}s",
            timeout=timeout + 10)


def test_backend_drift_is_repaired(backends, operator, cleanup_tenants):
    cleanup_tenants.append("bdrift")
    kube.apply(tenant_yaml("bdrift", **FULL))
    _ready("bdrift")
    creds = credentials("bdrift")
    bound = operator.verify_interval * 1.2 + 8
    pg_admin(f'DROP ROLE "{creds["PGUSER"]}"')
    redis_admin().acl_deluser("tenant:bdrift")
    vault_admin().delete("auth/kubernetes/role/tenant-bdrift")
    started = time.monotonic()
    eventually(lambda: creds["PGUSER"] in pg_roles("t_bdrift_"), bound, message="login role back")
    eventually(lambda: redis_admin().acl_getuser("tenant:bdrift") is not None, bound, message="ACL user back")
    eventually(lambda: vault_exists("auth/kubernetes/role/tenant-bdrift"), bound, message="login role back")
    print(f"\nbackend drift repaired in {time.monotonic() - started:.1f}s")
    assert pg(creds, "SELECT 1")[0][0] == 1
    assert redis_client(creds).ping()


def test_redis_restart_restores_acl_users(backends, operator, cleanup_tenants):
    cleanup_tenants.append("rrestart")
    kube.apply(tenant_yaml("rrestart", redis={"enabled": True}))
    _ready("rrestart")
    creds = credentials("rrestart")
    pid = int((REPO / ".platform" / "run" / "redis-server.pid").read_text())
    subprocess.run(["kill", str(pid)], check=True)
    eventually(lambda: subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0, 20)
    subprocess.run(["bash", str(REPO / "platform" / "up.sh")], check=True, capture_output=True, timeout=120)
    eventually(lambda: redis_client(creds).ping(), 60, 1, message="tenant user works again after restart")


def test_outage_degrades_only_tenants_on_that_backend(second_postgres, operator, cleanup_tenants):
    cleanup_tenants += ["out-second", "out-main"]
    kube.apply("\n---\n".join([tenant_yaml("out-second", postgres={"enabled": True, "backend": "pg-second"}),
                               tenant_yaml("out-main", postgres={"enabled": True, "backend": "pg-main"})]))
    _ready("out-second", "out-main")
    second_postgres.stop()
    started = time.monotonic()

    def degraded():
        t = get("tenant", "out-second")
        return t["status"].get("phase") == "Degraded" and "pg-second" in condition(t, "Ready").get("message", "")

    eventually(degraded, 30, message="tenant on the stopped backend Degraded, naming it")
    print(f"\nDegraded {time.monotonic() - started:.1f}s after the backend stopped")
    t = get("tenant", "out-second")
    assert condition(t, "Reconciling")["status"] == "True" and condition(t, "Ready")["status"] == "False"
    assert condition(t, "DatabaseReady")["reason"] == "BackendUnavailable"
    time.sleep(operator.verify_interval + 1)
    assert condition(get("tenant", "out-main"), "Ready")["status"] == "True"
    second_postgres.start()
    started = time.monotonic()
    _ready("out-second", timeout=90)
    print(f"Ready again {time.monotonic() - started:.1f}s after the backend came back")


def _policy(name: str, reclaim: str) -> str:
    return (f'{{"apiVersion":"tenancy.dev/v1alpha1","kind":"LifecyclePolicy","metadata":{{"name":"{name}"}},'
            f'"spec":{{"reclaim":"{reclaim}"}}}}')


def test_delete_with_reclaim_delete_removes_everything(backends, operator):
    kube.apply(_policy("reclaim-delete", "Delete"))
    kube.apply(tenant_yaml("gone-data", lifecyclePolicyRef="reclaim-delete", **FULL))
    _ready("gone-data")
    redis_client(credentials("gone-data")).set("t:gone-data:k", "v")
    kubectl("delete", "tenant", "gone-data", "--timeout=60s", timeout=70)
    assert pg_databases("t_gone_data") == set()
    assert pg_roles("t_gone_data") == set()
    assert redis_admin().acl_getuser("tenant:gone-data") is None
    assert redis_admin().exists("t:gone-data:k") == 0
    for path in ("transit/keys/tenant-gone-data", "sys/policies/acl/tenant-gone-data",
                 "auth/kubernetes/role/tenant-gone-data"):
        assert not vault_exists(path), path


def test_backend_holding_tenants_is_not_deleted(backends, operator, cleanup_tenants):
    import os

    from .backends_fixtures import admins_env, backend, secret

    cleanup_tenants.append("on-doomed")
    admins = admins_env()
    kube.apply("\n---\n".join([
        secret("pg-doomed-admin", {"username": admins["TENANCY_PG_ADMIN_USER"],
                                   "password": admins["TENANCY_PG_ADMIN_PASSWORD"]}),
        backend("pg-doomed", "postgres", int(os.environ["PGPORT"]), "pg-doomed-admin"),
    ]))
    kubectl("wait", "--for=condition=Ready", "backend/pg-doomed", "--timeout=60s", timeout=70)
    kube.apply(tenant_yaml("on-doomed", postgres={"enabled": True, "backend": "pg-doomed"}))
    _ready("on-doomed")
    kubectl("delete", "backend", "pg-doomed", "--wait=false")
    eventually(lambda: any("on-doomed" in e["message"]
                           for e in kube.object_events("Backend", "pg-doomed", reason="TenantsPlaced")), 30,
               message="Warning names the tenant")
    assert get("backend", "pg-doomed")["metadata"].get("deletionTimestamp")
    kubectl("delete", "tenant", "on-doomed", "--timeout=60s", timeout=70)
    eventually(lambda: get("backend", "pg-doomed") is None, 60, message="backend released once empty")
