"""Deleting tenants safely on the real servers (issue 12, items 1 to 3).

- A LifecyclePolicy's deletionProtection is enforced by the API server (through the label the
  operator mirrors onto the Tenant), and the teardown keeps a protected tenant's data even when the
  admission policy is out of the way.
- Reclaim Delete removes what a tenant's roles own or were granted in every database of the server,
  so a grant from another tenant or a large object in `postgres` cannot hold the deletion for ever.
- A deletion that cannot finish says so at once in status and an Event, and a terminating Backend
  that stopped answering does not hold its tenant for ever: an annotation abandons its data.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import asyncpg

from . import kube
from .admin import pg_admin, pg_databases, pg_roles
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg

LABEL = "tenancy.dev/deletion-protected"
BINDING = "tenancy-operator-tenant-deletion-protection"


def _ready(*names: str, timeout: int = 60) -> None:
    kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in names], f"--timeout={timeout}s",
            timeout=timeout + 10)


def _event(kind: str, name: str, reason: str, type_: str = "Warning", uid: str | None = None) -> dict | None:
    """The first `type_` Event of `reason` on the object; `uid`: the one taken before it was deleted."""
    return next((e for e in kube.object_events(kind, name, reason=reason, uid=uid) if e.get("type") == type_), None)


def _policy(name: str, **spec) -> str:
    return json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": name},
                       "spec": spec})


def _pg_in(database: str, sql: str, *args):
    """As the platform's admin, in the named database of the main server."""
    async def go():
        conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]),
                                     user=os.environ["PGUSER"], password=os.environ["PGPASSWORD"], database=database)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def _purge_pg(tenant: str) -> None:
    """Remove what an earlier (failed or retained) run left on the main server, so reruns start clean."""
    base = tenant.replace("-", "_")
    roles = sorted(pg_roles(f"t_{base}_"))
    pg_admin(f'DROP DATABASE IF EXISTS "t_{base}" WITH (FORCE)')
    if roles:
        quoted = ", ".join(f'"{r}"' for r in roles)
        for row in pg_admin("SELECT datname FROM pg_database WHERE datallowconn AND datconnlimit <> -2"):
            _pg_in(row["datname"], f"DROP OWNED BY {quoted}")
        for role in roles:
            pg_admin(f'DROP ROLE IF EXISTS "{role}"')


def _gone(kind: str, name: str, timeout: float = 60) -> None:
    eventually(lambda: get(kind, name) is None, timeout, 1, message=f"{kind}/{name} deleted")


def _label(name: str) -> str | None:
    return ((get("tenant", name) or {}).get("metadata", {}).get("labels") or {}).get(LABEL)


# --- item 1: deletion protection from a LifecyclePolicy ---------------------------------------------


def _without_admission_binding(action) -> None:
    """Run `action` with the deletion-protection binding removed, then put it back as it was."""
    saved = json.loads(kubectl("get", "validatingadmissionpolicybinding", BINDING, "-o", "json").stdout)
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
        saved["metadata"].pop(key, None)
    saved.pop("status", None)
    kubectl("delete", "validatingadmissionpolicybinding", BINDING)
    try:
        action()
    finally:
        kubectl("create", "-f", "-", input=json.dumps(saved))


def test_lifecycle_policy_protection_is_enforced_and_teardown_keeps_the_data(backends, operator, cleanup_tenants):
    for leftover in ("prot", "prot-lift"):
        if get("tenant", leftover) is not None:
            kube.apply(_policy("protect", reclaim="Delete", deletionProtection=False))
            eventually(lambda n=leftover: _label(n) is None, 30, message="label lifted on a leftover")
            kubectl("delete", "tenant", leftover, "--timeout=60s", timeout=70)
        _purge_pg(leftover)
    cleanup_tenants += ["prot", "prot-lift"]
    # The exact input.
    kube.apply("""
apiVersion: tenancy.dev/v1alpha1
kind: LifecyclePolicy
metadata: {name: protect}
spec: {reclaim: Delete, deletionProtection: true}
---
apiVersion: tenancy.dev/v1alpha1
kind: Tenant
metadata: {name: prot}
spec: {postgres: {enabled: true}, lifecyclePolicyRef: protect}
""")
    kube.apply(tenant_yaml("prot-lift", postgres={"enabled": True}, lifecyclePolicyRef="protect"))
    _ready("prot", "prot-lift")
    prot_uid = get("tenant", "prot")["metadata"]["uid"]  # its Events are read once it is gone
    started = time.monotonic()
    creds = credentials("prot")
    pg(creds, "CREATE TABLE keep (v text)")
    pg(creds, "INSERT INTO keep VALUES ('precious')")
    eventually(lambda: _label("prot") == "true" and _label("prot-lift") == "true", 30,
               message="the operator mirrors the policy's protection onto the Tenants")
    print(f"\nlabel on both tenants {time.monotonic() - started:.1f}s after Ready")

    refused = kubectl("delete", "tenant", "prot", "--wait=false", check=False)
    assert refused.returncode != 0, "the API server accepted deleting a tenant its LifecyclePolicy protects"
    assert "LifecyclePolicy protect" in refused.stderr and "deletionProtection" in refused.stderr, refused.stderr
    assert not get("tenant", "prot")["metadata"].get("deletionTimestamp")
    unlabel = kubectl("label", "tenant", "prot", f"{LABEL}-", check=False)
    assert unlabel.returncode != 0 and "kept by the tenancy operator" in unlabel.stderr, unlabel.stderr

    # Second line of defence: with the admission binding gone, the delete goes through, and the
    # teardown still keeps the data (reclaim Delete overridden to Retain, with a Warning).
    def delete_unguarded():
        eventually(lambda: kubectl("delete", "tenant", "prot", "--wait=false", check=False).returncode == 0, 30,
                   message="delete accepted once the binding is gone")
        _gone("tenant", "prot")

    _without_admission_binding(delete_unguarded)
    assert _pg_in("t_prot", "SELECT v FROM keep")[0]["v"] == "precious"
    warning = _event("Tenant", "prot", "DeletionProtected", uid=prot_uid)
    assert warning and "LifecyclePolicy protect" in warning["message"], kube.object_events(
        "Tenant", "prot", uid=prot_uid)

    # Deleting the protecting policy does not lift its protection (found by a review: the label went in 5 s
    # and the delete went through): the label stays, the delete is refused, and the Tenant says why.
    kubectl("delete", "lifecyclepolicy", "protect")
    missing = eventually(lambda: condition(get("tenant", "prot-lift"), "LifecyclePolicyReady").get("reason")
                         == "PolicyNotFound" and condition(get("tenant", "prot-lift"), "LifecyclePolicyReady"), 30,
                         message="LifecyclePolicyReady False, PolicyNotFound")
    assert "protect does not exist" in missing["message"], missing
    refused = kubectl("delete", "tenant", "prot-lift", "--wait=false", check=False)
    assert refused.returncode != 0 and _label("prot-lift") == "true", refused.stderr

    # Lifting the policy's protection removes the label from every tenant using it; delete then works.
    kube.apply(_policy("protect", reclaim="Delete", deletionProtection=False))
    eventually(lambda: _label("prot-lift") is None, 30, message="label removed once the policy lifts protection")
    kubectl("delete", "tenant", "prot-lift", "--timeout=60s", timeout=70)
    assert pg_roles("t_prot_lift_") == set()
    _purge_pg("prot")
    kubectl("delete", "lifecyclepolicy", "protect", "--ignore-not-found")


# --- item 2: objects and grants outside the tenant's database -------------------------------------


def test_delete_removes_grants_and_objects_in_other_databases(backends, operator, cleanup_tenants):
    cleanup_tenants += ["del-victim", "del-grantor"]
    for leftover in ("del-victim", "del-grantor"):  # an earlier run's tenants may still be going
        kubectl("delete", "tenant", leftover, "--ignore-not-found", "--wait=false")
        _gone("tenant", leftover, timeout=60)
        _purge_pg(leftover)
    kube.apply(_policy("reclaim-delete-all", reclaim="Delete"))
    kube.apply("\n---\n".join(tenant_yaml(n, postgres={"enabled": True}, lifecyclePolicyRef="reclaim-delete-all")
                              for n in ("del-victim", "del-grantor")))
    _ready("del-victim", "del-grantor")
    victim, grantor = credentials("del-victim"), credentials("del-grantor")
    # Another tenant grants on its own table to the victim's owner role, in its own database...
    pg(grantor, "CREATE TABLE its_table (v int)")
    pg(grantor, "GRANT SELECT ON its_table TO t_del_victim_owner")
    # ...and the victim makes a large object in the shared `postgres` database, while CONNECT there is
    # PUBLIC's as on a stock server (the platform revokes it; put back at once). The operator's admin is
    # no superuser (docs/backend-admins.md): it reaches the grantor's database as that database's owner's
    # member for the moment, and `postgres` with its own CONNECT.
    pg_admin("GRANT CONNECT ON DATABASE postgres TO PUBLIC")
    try:
        oid = pg(victim, "SELECT lo_create(0) AS oid", "postgres")[0]["oid"]
    finally:
        pg_admin("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
    assert _pg_in("postgres", "SELECT pg_get_userbyid(lomowner) AS o FROM pg_largeobject_metadata WHERE oid = $1",
                  oid)[0]["o"] == "t_del_victim_owner"

    kubectl("delete", "tenant", "del-victim", "--wait=false")
    _gone("tenant", "del-victim", timeout=60)
    assert pg_roles("t_del_victim_") == set()
    assert _pg_in("postgres", "SELECT count(*) AS n FROM pg_largeobject_metadata WHERE oid = $1", oid)[0]["n"] == 0
    # The grantor's table is untouched; only the grant to the gone role went.
    assert pg(grantor, "SELECT count(*) AS n FROM its_table")[0]["n"] == 0
    acl = _pg_in("t_del_grantor", "SELECT relacl::text AS acl FROM pg_class WHERE relname = 'its_table'")[0]["acl"]
    assert "t_del_victim" not in (acl or ""), acl
    kubectl("delete", "tenant", "del-grantor", "--timeout=60s", timeout=70)
    assert pg_roles("t_del_grantor_") == set()


def test_a_database_left_invalid_by_a_cut_off_drop_is_named_then_dropped_on_delete(backends, operator,
                                                                                   cleanup_tenants):
    """A DROP DATABASE cut off (a timeout, a crash; seen at N=500 on a loaded machine) leaves the database
    invalid: PostgreSQL then refuses every ALTER of it, which held the deletion for ever. The live tenant
    says what happened; the deletion drops it."""
    name = "del-halfdrop"
    cleanup_tenants.append(name)
    kubectl("delete", "tenant", name, "--ignore-not-found", "--wait=false")
    _gone("tenant", name, timeout=60)
    _purge_pg(name)
    kube.apply(_policy("reclaim-delete-all", reclaim="Delete"))
    kube.apply(tenant_yaml(name, postgres={"enabled": True}, lifecyclePolicyRef="reclaim-delete-all"))
    _ready(name)
    # What PostgreSQL (15.4 and later) writes when a DROP DATABASE does not finish.
    pg_admin("UPDATE pg_database SET datconnlimit = -2 WHERE datname = 't_del_halfdrop'")
    said = eventually(lambda: "is invalid" in (condition(get("tenant", name), "DatabaseReady").get("message") or "")
                      and condition(get("tenant", name), "DatabaseReady"), timeout=30,
                      message="DatabaseReady names the invalid database")
    assert said["status"] == "False", said
    assert pg_databases("t_del_halfdrop") == {"t_del_halfdrop"}  # not dropped nor recreated while the tenant lives
    kubectl("delete", "tenant", name, "--wait=false")
    _gone("tenant", name, timeout=60)
    assert pg_databases("t_del_halfdrop") == set()
    assert pg_roles("t_del_halfdrop_") == set()


# --- items 2 and 3: a stuck deletion is visible, and never waits for ever on a dead Backend -------


def test_tenant_on_a_terminating_dead_backend_is_released_by_abandoning_its_data(second_postgres, operator,
                                                                                  cleanup_tenants):
    cleanup_tenants.append("on-dead")
    kube.apply(_policy("reclaim-delete-all", reclaim="Delete"))
    kube.apply(tenant_yaml("on-dead", postgres={"enabled": True, "backend": "pg-second"},
                           lifecyclePolicyRef="reclaim-delete-all"))
    _ready("on-dead")
    uid = get("tenant", "on-dead")["metadata"]["uid"]  # its DataAbandoned Event is read once it is gone
    try:
        kubectl("delete", "backend", "pg-second", "--wait=false")

        def waiting_truthfully():
            backend, warning = get("backend", "pg-second"), _event("Backend", "pg-second", "TenantsPlaced")
            return (backend["metadata"].get("deletionTimestamp") and backend["status"].get("tenantsPlaced") == 1
                    and warning and "on-dead" in warning["message"])

        eventually(waiting_truthfully, 30, 1, message="terminating Backend reports its tenant and waits")
        warning = _event("Backend", "pg-second", "TenantsPlaced")["message"]
        assert "migrate-database" not in warning and "tenancy.dev/abandon-backend-data=true" in warning, warning

        second_postgres.stop()
        eventually(lambda: condition(get("backend", "pg-second"), "Ready").get("status") == "False", 40, 1,
                   message="the terminating Backend keeps probing and reports it is unreachable")

        kubectl("delete", "tenant", "on-dead", "--wait=false")
        started = time.monotonic()

        def says_it_is_stuck():
            t = get("tenant", "on-dead")
            return (t["status"].get("phase") == "Terminating" and condition(t, "Ready").get("status") == "False"
                    and condition(t, "Terminating").get("status") == "True" and t)

        t = eventually(says_it_is_stuck, 20, 0.5, message="the blocked deletion shows in status at once")
        print(f"\nTerminating condition {time.monotonic() - started:.1f}s after kubectl delete")
        message = condition(t, "Terminating")["message"]
        assert "pg-second" in message and "kubectl annotate tenant on-dead tenancy.dev/abandon-data=pg-second" in message
        assert condition(t, "Stalled").get("status") == "True", "a terminating, unreachable Backend needs a person"
        assert _event("Tenant", "on-dead", "BackendUnavailable"), kube.object_events("Tenant", "on-dead")
        assert get("tenant", "on-dead") is not None

        kubectl("annotate", "backend", "pg-second", "tenancy.dev/abandon-backend-data=true")
        started = time.monotonic()
        _gone("tenant", "on-dead", timeout=60)
        print(f"tenant released {time.monotonic() - started:.1f}s after the annotation")
        _gone("backend", "pg-second", timeout=60)
        print(f"Backend released {time.monotonic() - started:.1f}s after the annotation")
        abandoned = _event("Tenant", "on-dead", "DataAbandoned", uid=uid)
        assert abandoned and "pg-second" in abandoned["message"] and "t_on_dead" in abandoned["message"]
    finally:
        if get("backend", "pg-second") is not None:
            kubectl("annotate", "--overwrite", "backend", "pg-second", "tenancy.dev/abandon-backend-data=true",
                    check=False)
