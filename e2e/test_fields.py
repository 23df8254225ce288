"""Every field is true: what is built says so (SpecSupported, Ready), and bad input names its cause.

Objects here are named `fields-*` so they never meet another test's. Every Tenant, Backend and policy
field is built today; a WorkflowRun of a workflow that is not built is covered in e2e/test_workflows.py.
"""

from __future__ import annotations

import json
import os
import time

from . import kube
from .admin import pg_admin
from .backends_fixtures import secret
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials

API = "tenancy.dev/v1alpha1"


def _obj(kind: str, name: str, spec: dict, namespace: str | None = None) -> str:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return json.dumps({"apiVersion": API, "kind": kind, "metadata": meta, "spec": spec})


def _policy(name: str, **spec) -> str:
    return _obj("LifecyclePolicy", name, spec)


def test_a_tenant_says_every_field_it_sets_is_built(backends, operator, cleanup_tenants):
    cleanup_tenants.append("fields-built")
    kube.apply(tenant_yaml("fields-built", postgres={"enabled": True}))
    kubectl("wait", "--for=condition=Ready", "tenant/fields-built", "--timeout=60s", timeout=70)
    tenant = get("tenant", "fields-built")
    supported = condition(tenant, "SpecSupported")
    assert supported["status"] == "True" and "every field the spec sets is built" in supported["message"], supported
    assert condition(tenant, "Stalled")["status"] == "False"


def test_policy_kinds_are_ready_and_then_write_nothing(operator):
    objects = [("cachepolicy", "fields-cache", _obj("CachePolicy", "fields-cache", {"memoryBudget": "64Mi"})),
               ("tenantsessionpolicy", "fields-session", _obj("TenantSessionPolicy", "fields-session", {})),
               ("lifecyclepolicy", "fields-lcp-steady", _policy("fields-lcp-steady", reclaim="Delete"))]
    try:
        kube.apply("\n---\n".join(manifest for *_, manifest in objects))
        versions = {}
        for kind, name, _ in objects:
            kubectl("wait", "--for=condition=Ready", f"{kind}/{name}", "--timeout=30s", timeout=40)
            versions[name] = get(kind, name)["metadata"]["resourceVersion"]
        time.sleep(operator.verify_interval + 1)
        for kind, name, _ in objects:  # steady state writes nothing
            assert get(kind, name)["metadata"]["resourceVersion"] == versions[name], name
    finally:
        for kind, name, _ in objects:
            kubectl("delete", kind, name, "--ignore-not-found", check=False)


def test_lifecycle_policy_is_ready_with_every_field(operator):
    try:
        kube.apply(_policy("fields-lcp", reclaim="Delete"))
        kubectl("wait", "--for=condition=Ready", "lifecyclepolicy/fields-lcp", "--timeout=30s", timeout=40)
        # Every field is built (issue 13): the policy stays Ready with each of them set.
        kubectl("patch", "lifecyclepolicy", "fields-lcp", "--type=merge", "-p", json.dumps({"spec": {
            "reclaim": "Archive", "retention": "48h", "suspendRevokesLogins": False,
            "inactivitySuspendAfter": "1h", "deletionProtection": True}}))
        time.sleep(2)
        kubectl("wait", "--for=condition=Ready", "lifecyclepolicy/fields-lcp", "--timeout=30s", timeout=40)
        obj = get("lifecyclepolicy", "fields-lcp")
        assert obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        assert condition(obj, "Stalled").get("status") != "True"
    finally:
        kubectl("delete", "lifecyclepolicy", "fields-lcp", "--ignore-not-found", check=False)


def test_backend_whose_admin_secret_is_missing_says_which(operator):
    try:
        kube.apply(_obj("Backend", "fields-mongo", {"type": "mongodb", "endpoint": {"host": "127.0.0.1", "port": 27017},
                                                    "adminSecretRef": {"name": "fields-mongo-admin"}}))

        def refused():
            ready = condition(get("backend", "fields-mongo"), "Ready")
            return ready.get("status") == "False" and ready.get("reason") == "AdminSecretMissing" and ready
        ready = eventually(refused, 30, message="Backend fields-mongo Ready=False AdminSecretMissing")
        assert "fields-mongo-admin" in ready["message"], ready
    finally:
        kubectl("delete", "backend", "fields-mongo", "--ignore-not-found", "--timeout=30s", check=False, timeout=40)


def _limits(tenant: str) -> dict[str, int]:
    """CONNECTION LIMIT of the tenant's database and of its two login roles."""
    db = f"t_{tenant.replace('-', '_')}"
    rows = pg_admin("SELECT datconnlimit FROM pg_database WHERE datname = $1", db)
    out = {db: rows[0]["datconnlimit"]} if rows else {}
    for row in pg_admin("SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname IN ($1, $2)", db + "_a", db + "_b"):
        out[row["rolname"]] = row["rolconnlimit"]
    return out


def test_connection_limit_is_the_databases_and_follows_the_spec(backends, operator, cleanup_tenants):
    cleanup_tenants.append("fields-connlim")
    kube.apply(_policy("fields-delete", reclaim="Delete"))  # a rerun starts from nothing
    kube.apply(tenant_yaml("fields-connlim", postgres={"enabled": True, "connectionLimit": 7},
                           lifecyclePolicyRef="fields-delete"))
    kubectl("wait", "--for=condition=Ready", "tenant/fields-connlim", "--timeout=60s", timeout=70)
    assert set(_limits("fields-connlim").values()) == {7}, _limits("fields-connlim")
    assert len(_limits("fields-connlim")) == 3
    kubectl("patch", "tenant", "fields-connlim", "--type=merge", "-p", '{"spec":{"postgres":{"connectionLimit":9}}}')
    eventually(lambda: set(_limits("fields-connlim").values()) == {9}, 30, message="connection limits follow to 9")
    kubectl("delete", "tenant", "fields-connlim", "--timeout=60s", timeout=70)


def test_public_host_is_what_tenants_are_given(backends, operator, cleanup_tenants):
    cleanup_tenants.append("fields-pubhost")
    kube.apply(_policy("fields-delete", reclaim="Delete"))
    backend = json.loads(_obj("Backend", "fields-pg-public", {
        "type": "postgres", "endpoint": {"host": "127.0.0.1", "port": int(os.environ["PGPORT"]),
                                         "publicHost": "db.tenants.example"},
        "adminSecretRef": {"name": "fields-pg-public-admin"}}))
    kube.apply("\n---\n".join([
        secret("fields-pg-public-admin", {"username": os.environ["PGUSER"], "password": os.environ["PGPASSWORD"]}),
        json.dumps(backend)]))
    try:
        kubectl("wait", "--for=condition=Ready", "backend/fields-pg-public", "--timeout=60s", timeout=70)
        kube.apply(tenant_yaml("fields-pubhost", postgres={"enabled": True, "backend": "fields-pg-public"},
                               lifecyclePolicyRef="fields-delete"))
        kubectl("wait", "--for=condition=Ready", "tenant/fields-pubhost", "--timeout=60s", timeout=70)
        creds = credentials("fields-pubhost")
        assert creds["PGHOST"] == "db.tenants.example"
        assert "@db.tenants.example:" in creds["DATABASE_URL"]
        kubectl("delete", "tenant", "fields-pubhost", "--timeout=60s", timeout=70)
    finally:
        kubectl("delete", "tenant", "fields-pubhost", "--ignore-not-found", "--timeout=60s", check=False, timeout=70)
        kubectl("delete", "backend", "fields-pg-public", "--ignore-not-found", "--timeout=60s", check=False, timeout=70)
