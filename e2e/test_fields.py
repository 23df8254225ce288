"""Every field is true: what is not built says so (Stalled, NotImplemented, an Event), what is built acts.

Objects here are named `fields-*` so they never meet another test's. Kinds nothing acts on yet
(WorkflowRun) and unbuilt values (mongodb, Backend type mongodb) must each be reported, never
ignored silently.
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


def _events(kind: str, name: str) -> list[dict]:
    out = kubectl("get", "events", "-A", "--field-selector", f"involvedObject.kind={kind},involvedObject.name={name}",
                  "-o", "json").stdout
    return json.loads(out)["items"]


def _not_implemented(kind: str, name: str, namespace: str | None = None, timeout: float = 30) -> dict:
    """Wait for Stalled=True reason NotImplemented and Ready=False at the current generation; the object."""

    def reported():
        obj = get(kind, name, namespace)
        stalled, ready = condition(obj, "Stalled"), condition(obj, "Ready")
        generation = obj["metadata"]["generation"]
        return (stalled.get("status") == "True" and stalled.get("reason") == "NotImplemented"
                and ready.get("status") == "False" and ready.get("reason") == "NotImplemented"
                and obj["status"].get("observedGeneration") == generation and obj)

    obj = eventually(reported, timeout, message=f"{kind} {name} Stalled NotImplemented")
    eventually(lambda: any(e["type"] == "Warning" and e["reason"] == "NotImplemented"
                           for e in _events(obj["kind"], name)),
               10, message=f"a Warning Event NotImplemented on {kind} {name}")
    return obj


def _policy(name: str, **spec) -> str:
    return _obj("LifecyclePolicy", name, spec)


def test_tenant_asking_for_unbuilt_features_is_stalled_then_ready_without_them(operator, cleanup_tenants):
    cleanup_tenants.append("fields-unbuilt")
    kube.apply(tenant_yaml("fields-unbuilt", mongodb={"enabled": True}))
    tenant = _not_implemented("tenant", "fields-unbuilt")
    message = condition(tenant, "Stalled")["message"]
    for field in ("spec.mongodb.enabled",):
        assert field in message, (field, message)
    assert tenant["status"]["phase"] == "Stalled"
    assert condition(tenant, "SpecSupported")["status"] == "False"
    assert condition(tenant, "DocumentStoreReady")["reason"] == "NotImplemented"
    # Asking only for what is built, the same tenant is Ready: nothing else was wrong.
    kubectl("patch", "tenant", "fields-unbuilt", "--type=merge", "-p", json.dumps({"spec": {
        "mongodb": {"enabled": False}}}))
    kubectl("wait", "--for=condition=Ready", "tenant/fields-unbuilt", "--timeout=30s", timeout=40)
    tenant = get("tenant", "fields-unbuilt")
    assert condition(tenant, "Stalled")["status"] == "False"
    assert condition(tenant, "SpecSupported")["status"] == "True"


def test_kinds_nothing_acts_on_say_so_and_then_write_nothing(operator):
    kubectl("create", "namespace", "fields-runs", check=False)
    objects = [
               ("workflowrun", "fields-run", "fields-runs",
                _obj("WorkflowRun", "fields-run", {"tenant": "acme", "workflow": "rotate-credentials"}, "fields-runs"))]
    try:
        kube.apply("\n---\n".join(manifest for *_, manifest in objects))
        versions = {}
        for kind, name, namespace, _ in objects:
            obj = _not_implemented(kind, name, namespace)
            assert "not built yet" in condition(obj, "Ready")["message"]
            assert "issue 1" in condition(obj, "Ready")["message"]  # issue 14 or 16 tracks it
            versions[name] = obj["metadata"]["resourceVersion"]
        time.sleep(operator.verify_interval + 1)
        for kind, name, namespace, _ in objects:  # steady state writes nothing
            assert get(kind, name, namespace)["metadata"]["resourceVersion"] == versions[name], name
    finally:
        for kind, name, namespace, _ in objects:
            kubectl("delete", kind, name, *(["-n", namespace] if namespace else []), "--ignore-not-found", check=False)


def test_lifecycle_policy_is_ready_when_it_asks_only_for_what_is_built(operator):
    try:
        kube.apply(_policy("fields-lcp", reclaim="Delete"))
        kubectl("wait", "--for=condition=Ready", "lifecyclepolicy/fields-lcp", "--timeout=30s", timeout=40)
        # reclaim Archive and retention are built (issue 13): the policy stays Ready with them.
        kubectl("patch", "lifecyclepolicy", "fields-lcp", "--type=merge", "-p",
                '{"spec":{"reclaim":"Archive","retention":"48h"}}')
        time.sleep(2)
        kubectl("wait", "--for=condition=Ready", "lifecyclepolicy/fields-lcp", "--timeout=30s", timeout=40)
        kubectl("patch", "lifecyclepolicy", "fields-lcp", "--type=merge", "-p", '{"spec":{"suspendRevokesLogins":false}}')
        obj = _not_implemented("lifecyclepolicy", "fields-lcp")
        assert "spec.suspendRevokesLogins" in condition(obj, "Stalled")["message"]
        kubectl("patch", "lifecyclepolicy", "fields-lcp", "--type=merge", "-p", '{"spec":{"suspendRevokesLogins":true}}')
        kubectl("wait", "--for=condition=Ready", "lifecyclepolicy/fields-lcp", "--timeout=30s", timeout=40)
    finally:
        kubectl("delete", "lifecyclepolicy", "fields-lcp", "--ignore-not-found", check=False)


def test_backend_of_an_unbuilt_type_is_stalled(operator):
    try:
        kube.apply(_obj("Backend", "fields-mongo", {"type": "mongodb", "endpoint": {"host": "127.0.0.1", "port": 27017},
                                                    "adminSecretRef": {"name": "fields-mongo-admin"}}))
        obj = _not_implemented("backend", "fields-mongo")
        assert obj["status"]["phase"] == "Stalled"
        assert "mongodb" in condition(obj, "Stalled")["message"]
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
