"""Sharding (issue 20 item 6, docs/scale.md): two operator processes, each owning one shard of the
Tenants by their `tenancy.dev/shard` label; each reconciles only its own and none is missed.

The Tenants use PostgreSQL, Redis and OpenBao with reclaim Delete, so each shard provisions and
removes backend objects, not only namespaces. The session's unsharded operator is stopped for the
duration (it would reconcile every Tenant) and started again after, as test_zy_peering does. The evidence of who reconciled what is each process's
own log: kopf names the Tenant on every line about it, and a process is blind to other shards'.
"""

from __future__ import annotations

import json

from tenancy_operator.api import names
from tenancy_operator.reconcile import sharding

from . import kube
from .admin import pg_admin, redis_admin, vault_admin
from .kube import eventually, get, kubectl, tenant_yaml

SHARDS = 2
NAMES = [f"shard-t{i}" for i in range(9)]
POLICY = json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                     "metadata": {"name": "shard-delete"}, "spec": {"reclaim": "Delete"}})
SPEC = {"postgres": {"enabled": True}, "redis": {"enabled": True},
        "vault": {"enabled": True, "kv": True, "transitKey": True}, "lifecyclePolicyRef": "shard-delete"}


def _backend_objects(name: str) -> dict[str, bool]:
    """Whether each backend holds the tenant's object (read with the servers' superusers)."""
    r = redis_admin()
    try:
        acl = names.redis_user(name) in r.acl_users()
    finally:
        r.close()
    keys = ((vault_admin().list("transit/keys") or {}).get("data") or {}).get("keys") or []
    return {
        "postgres database": bool(pg_admin("SELECT 1 FROM pg_database WHERE datname = $1", names.pg_database(name))),
        "redis ACL user": acl,
        "openbao transit key": names.vault_key(name) in keys,
    }


def _shard_process(operator, operator_kubeconfig, shard: int) -> kube.Operator:
    env = {**operator.extra_env, "TENANCY_SHARDS": str(SHARDS), "TENANCY_SHARD": str(shard)}
    process = kube.Operator(operator_kubeconfig, verify_interval=operator.verify_interval, extra_env=env)
    process.log = kube.STATE / "logs" / f"operator-e2e-shard-{shard}.log"
    process.log.unlink(missing_ok=True)
    return process


def _lines(process: kube.Operator, tenant: str) -> list[str]:
    """The messages of the process's log lines about this tenant (JSON lines, the chart's format, or text)."""
    out = []
    for line in (process.log.read_text() if process.log.exists() else "").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if f"[{tenant}]" in line:
                out.append(line)
            continue
        if entry.get("tenant") == tenant:
            out.append(str(entry.get("message")))
    return out


def _label(name: str) -> str | None:
    return ((get("tenant", name) or {}).get("metadata", {}).get("labels") or {}).get(sharding.LABEL)


def test_two_shards_each_reconcile_only_their_own_tenants(operator, operator_kubeconfig, backends, cleanup_tenants):
    by_hash = {n: sharding.shard_of(n, SHARDS) for n in NAMES}
    assert set(by_hash.values()) == {0, 1}, "the names cover both shards"
    # One Tenant arrives labelled against its hash: the label wins (a person moved it, or a tool placed it).
    moved = f"shard-moved-{next(i for i in range(100) if sharding.shard_of(f'shard-moved-{i}', SHARDS) == 0)}"
    expected = {**by_hash, moved: 1}
    cleanup_tenants += list(expected)
    kube.apply(POLICY)
    operator.stop()
    processes = [_shard_process(operator, operator_kubeconfig, i) for i in range(SHARDS)]
    try:
        for p in processes:
            p.start()
        manifests = [json.loads(tenant_yaml(n, **SPEC)) for n in NAMES]
        manifests.append({**json.loads(tenant_yaml(moved, **SPEC)),
                          "metadata": {"name": moved, "labels": {sharding.LABEL: "1"}}})
        kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(m) for m in manifests))
        kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in expected], "--timeout=90s", timeout=100)

        for name, shard in expected.items():
            held = _backend_objects(name)
            assert all(held.values()), f"{name}: its shard provisioned every backend, yet {held}"
            assert _label(name) == str(shard), f"{name} carries its shard's label"
            mine, other = _lines(processes[shard], name), _lines(processes[1 - shard], name)
            assert any(m.startswith("Creation is processed") for m in mine), (name, mine)
            assert other == [], f"{name} belongs to shard {shard}, yet shard {1 - shard} logged: {other[:3]}"
            finalizers = get("tenant", name)["metadata"].get("finalizers") or []
            assert finalizers == [sharding.finalizer(shard, SHARDS)], (name, finalizers)
        counts = {i: sum(1 for s in expected.values() if s == i) for i in range(SHARDS)}
        print(f"\n{len(expected)} tenants Ready over {SHARDS} shards: {counts[0]} by shard 0, {counts[1]} by shard 1")

        # A spec change goes to the same shard, and the Tenant keeps its label.
        name = NAMES[0]
        shard = expected[name]
        kubectl("patch", "tenant", name, "--type=merge", "-p", json.dumps({"spec": {"quota": {"pods": "30"}}}))
        eventually(lambda: any(m.startswith("Updating is processed") for m in _lines(processes[shard], name)), 30,
                   message="the owning shard handles the update")
        assert _lines(processes[1 - shard], name) == []
        assert _label(name) == str(shard)
        quota = json.loads(kubectl("get", "resourcequota", "-n", f"tenant-{name}", "-o", "json").stdout)["items"]
        assert any(q["spec"]["hard"].get("pods") == "30" for q in quota), quota

        # Deletion is the owner's too: each shard takes its own finalizer off, none is left behind.
        kubectl("delete", "tenants", *expected, "--wait=false")
        eventually(lambda: all(get("tenant", n) is None for n in expected), 90, message="every shard deletes its own")
        for name, shard in expected.items():
            held = _backend_objects(name)
            assert not any(held.values()), f"{name}: reclaim Delete, yet its backends still hold {held}"
            assert any(m.startswith("Deletion is processed") for m in _lines(processes[shard], name)), name
            assert _lines(processes[1 - shard], name) == []
    finally:
        for p in processes:
            p.stop()
        operator.start()
