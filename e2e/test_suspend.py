"""Suspend closes every door and keeps the data; the tenant is Ready with phase Suspended. Resume reopens."""

from __future__ import annotations

import asyncpg
import pytest
import redis

from . import kube
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client

SPEC = {"postgres": {"enabled": True}, "redis": {"enabled": True}}


def test_suspend_and_resume(backends, operator, cleanup_tenants):
    cleanup_tenants.append("sleepy")
    kube.apply(tenant_yaml("sleepy", **SPEC))
    kubectl("wait", "--for=condition=Ready", "tenant/sleepy", "--timeout=60s", timeout=70)
    creds = credentials("sleepy")
    pg(creds, "CREATE TABLE IF NOT EXISTS kept (v text)")  # Retain: a rerun finds the last run's table
    pg(creds, "DELETE FROM kept")
    pg(creds, "INSERT INTO kept VALUES ('still here')")

    kubectl("patch", "tenant", "sleepy", "--type=merge", "-p", '{"spec":{"state":"Suspended"}}')
    eventually(lambda: get("tenant", "sleepy")["status"].get("phase") == "Suspended", 30, message="phase Suspended")
    kubectl("wait", "--for=condition=Ready", "tenant/sleepy", "--timeout=30s", timeout=40)
    assert "suspended" in condition(get("tenant", "sleepy"), "DatabaseReady")["message"]
    with pytest.raises(asyncpg.exceptions.InvalidAuthorizationSpecificationError):
        pg(creds, "SELECT 1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client(creds).ping()

    kubectl("patch", "tenant", "sleepy", "--type=merge", "-p", '{"spec":{"state":"Active"}}')
    eventually(lambda: get("tenant", "sleepy")["status"].get("phase") == "Ready", 30, message="phase Ready")
    assert pg(creds, "SELECT v FROM kept")[0][0] == "still here"
    assert redis_client(creds).ping()
