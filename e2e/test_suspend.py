"""Suspend closes every door and keeps the data; the tenant is Ready with phase Suspended. Resume reopens.

OpenBao tokens issued before the suspend are cut too (issue 11 item 5): the policy denies all while
suspended, and the role's tokens are revoked.
"""

from __future__ import annotations

import time

import asyncpg
import hvac.exceptions
import pytest
import redis

from . import kube
from .admin import vault_admin
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client, vault_login

SPEC = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}


def _drift_repairs(name: str) -> int:
    return sum(e.get("count") or 1 for e in kube.object_events("Tenant", name, reason="DriftRepaired"))


def test_suspend_and_resume(backends, operator, cleanup_tenants):
    cleanup_tenants.append("sleepy")
    kube.apply(tenant_yaml("sleepy", **SPEC))
    kubectl("wait", "--for=condition=Ready", "tenant/sleepy", "--timeout=60s", timeout=70)
    creds = credentials("sleepy")
    pg(creds, "CREATE TABLE IF NOT EXISTS kept (v text)")  # Retain: a rerun finds the last run's table
    pg(creds, "DELETE FROM kept")
    pg(creds, "INSERT INTO kept VALUES ('still here')")
    token = vault_login(creds, "tenant-sleepy")  # a real Kubernetes-auth login, as a tenant-app pod does
    token.secrets.kv.v2.create_or_update_secret(mount_point="tenants", path="tenant-sleepy/db", secret={"v": "kept"})
    assert token.secrets.transit.encrypt_data(creds["VAULT_TRANSIT_KEY"], "aGk=")["data"]["ciphertext"]
    accessor = token.lookup_token()["data"]["accessor"]

    kubectl("patch", "tenant", "sleepy", "--type=merge", "-p", '{"spec":{"state":"Suspended"}}')
    eventually(lambda: get("tenant", "sleepy")["status"].get("phase") == "Suspended", 30, message="phase Suspended")
    kubectl("wait", "--for=condition=Ready", "tenant/sleepy", "--timeout=30s", timeout=40)
    assert "suspended" in condition(get("tenant", "sleepy"), "DatabaseReady")["message"]
    with pytest.raises(asyncpg.exceptions.InvalidAuthorizationSpecificationError):
        pg(creds, "SELECT 1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client(creds).ping()
    # The token issued before the suspend: refused for KV and transit, and revoked outright.
    with pytest.raises(hvac.exceptions.Forbidden):
        token.secrets.kv.v2.read_secret_version(mount_point="tenants", path="tenant-sleepy/db", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        token.secrets.transit.encrypt_data(creds["VAULT_TRANSIT_KEY"], "aGk=")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault_admin().auth.token.lookup_accessor(accessor)
    with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):  # no role to log in with
        vault_login(creds, "tenant-sleepy")
    # Closed is a steady state: verify passes over a suspended tenant read and repair nothing.
    repairs = _drift_repairs("sleepy")
    time.sleep(operator.verify_interval * 2 + 1)
    assert _drift_repairs("sleepy") == repairs

    kubectl("patch", "tenant", "sleepy", "--type=merge", "-p", '{"spec":{"state":"Active"}}')
    eventually(lambda: get("tenant", "sleepy")["status"].get("phase") == "Ready", 30, message="phase Ready")
    assert pg(creds, "SELECT v FROM kept")[0][0] == "still here"
    assert redis_client(creds).ping()
    fresh = vault_login(creds, "tenant-sleepy")
    assert fresh.secrets.kv.v2.read_secret_version(mount_point="tenants", path="tenant-sleepy/db",
                                                   raise_on_deleted_version=True)["data"]["data"] == {"v": "kept"}
    with pytest.raises(hvac.exceptions.Forbidden):  # revoked stays revoked
        token.secrets.kv.v2.read_secret_version(mount_point="tenants", path="tenant-sleepy/db", raise_on_deleted_version=True)
