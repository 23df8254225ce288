"""Issue 11 items 1, 2 and 4 on the real servers: names are injective and owned, input that can never
work is refused at apply, and a reused name never silently inherits retained data.

Everything is read back from the servers themselves (pg_catalog comments, Redis keys, OpenBao
metadata) and tenant data is reached only with the tenant's own credentials.
"""

from __future__ import annotations

import json

import hvac.exceptions
import pytest
import redis

from . import kube
from .admin import pg_admin, pg_roles, redis_admin, vault_admin
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg, redis_client, vault_login

FULL = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}
ISSUE_L = "bh-long-" + "x" * 48  # 56 characters: under the old scheme cut to t_bh_long_x..x_7eafee39
ISSUE_S = "bh-long-" + "x" * 38 + "-7eafee39"  # 55 characters: L's old cut-plus-hash form, taken literally
DEAD_UID = "00000000-dead-4bad-8000-00000000dead"
MARK = "tenancy.dev/tenant-uid="


def _events(name: str, uid: str | None = None) -> list[dict]:
    return kube.object_events("Tenant", name, uid=uid)


def _uid(name: str) -> str:
    return get("tenant", name)["metadata"]["uid"]


def _pg_marks(prefix: str) -> dict[str, str | None]:
    rows = pg_admin("SELECT rolname AS n, shobj_description(oid, 'pg_authid') AS m FROM pg_roles WHERE rolname LIKE $1 "
                    "UNION ALL SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname LIKE $1", prefix + "%")
    return {r["n"]: r["m"] for r in rows}


def _vault_mark(name: str) -> str | None:
    try:
        meta = vault_admin().read(f"tenants/metadata/{name}")
    except Exception:  # noqa: BLE001 - hvac raises InvalidPath for a missing record
        return None
    return ((meta or {}).get("data") or {}).get("custom_metadata", {}).get("tenancy.dev/tenant-uid")


def _stalled_on(name: str, *parts: str, timeout: float = 60) -> dict:
    def check():
        t = get("tenant", name)
        reasons = {p: condition(t, p).get("reason") for p in parts}
        stalled = condition(t, "Stalled").get("status") == "True"
        assert stalled and set(reasons.values()) == {"OwnedByAnotherTenant"}, (stalled, reasons)
        return t

    return eventually(check, timeout, message=f"{name} Stalled OwnedByAnotherTenant on {parts}")


@pytest.fixture(scope="module")
def reclaim_delete(backends):
    kube.apply(json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                           "metadata": {"name": "names-reclaim-delete"}, "spec": {"reclaim": "Delete"}}))
    return "names-reclaim-delete"


# ---------------------------------------------------------------- item 2: refused at apply

REFUSED = {
    "56-character name (the issue's L)": (ISSUE_L, {}, "at most 55 characters"),
    "64-character name": ("a" * 64, {}, "at most 55 characters"),
    "sub-milli cpu 0.0001": ("names-q", {"quota": {"cpu": "0.0001"}}, "whole millicores"),
    "sub-milli cpu 1.5m": ("names-q", {"quota": {"cpu": "1.5m"}}, "whole millicores"),
    "fractional bytes of memory": ("names-q", {"quota": {"memory": "1.5"}}, "memory must be a whole number"),
    "1.024 bytes of memory as 0.001Ki": ("names-q", {"quota": {"memory": "0.001Ki"}}, "memory must be a whole number"),
    "fractional pods": ("names-q", {"quota": {"pods": "2.5"}}, "pods must be a whole number"),
    "fractional storage": ("names-q", {"quota": {"storage": "0.5"}}, "storage must be a whole number"),
    "ServiceAccount with two colons": ("names-o", {"owners": [{"kind": "ServiceAccount", "name": "a:b:c"}]},
                                       "ServiceAccount owner"),
    "ServiceAccount upper case": ("names-o", {"owners": [{"kind": "ServiceAccount", "name": "Team:deployer"}]},
                                  "ServiceAccount owner"),
    "ServiceAccount namespace of 64": ("names-o", {"owners": [{"kind": "ServiceAccount", "name": "n" * 64 + ":sa"}]},
                                       "ServiceAccount owner"),
}
ACCEPTED = {
    "55-character name (the issue's S)": (ISSUE_S, {}),
    "cpu 1.5, 500m, memory 1.5Gi": ("names-q", {"quota": {"cpu": "1.5", "memory": "1.5Gi", "pods": "20"}}),
    "cpu 250m, storage 100Gi, memory 0.5Ki and 1e3": ("names-q", {"quota": {"cpu": "250m", "storage": "100Gi",
                                                                             "memory": "0.5Ki", "pods": "1e3"}}),
    "ServiceAccount ns:name and bare name, OIDC user": (
        "names-o", {"owners": [{"kind": "ServiceAccount", "name": "ci-ns:deployer.v2"},
                               {"kind": "ServiceAccount", "name": "deployer"},
                               {"kind": "User", "name": "oidc:Jane.Doe@example.com"}]}),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_input_that_can_never_work_is_refused_at_apply(crds, case):
    name, spec, message = REFUSED[case]
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=tenant_yaml(name, **spec), check=False)
    assert result.returncode != 0, f"{case} was accepted"
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize("case", ACCEPTED, ids=list(ACCEPTED))
def test_what_works_is_still_accepted(crds, case):
    name, spec = ACCEPTED[case]
    kubectl("apply", "--dry-run=server", "-f", "-", input=tenant_yaml(name, **spec))


# ---------------------------------------------------------------- item 1: the issue's pair, and marks

def test_issue_pair_long_name_refused_and_its_hash_form_is_an_ordinary_tenant(backends, operator, reclaim_delete):
    refused = kubectl("apply", "-f", "-", input=tenant_yaml(ISSUE_L, **FULL), check=False)
    assert refused.returncode != 0 and "at most 55 characters" in refused.stderr, refused.stderr
    try:
        kube.apply(tenant_yaml(ISSUE_S, lifecyclePolicyRef=reclaim_delete, **FULL))
        kubectl("wait", "--for=condition=Ready", f"tenant/{ISSUE_S}", "--timeout=90s", timeout=100)
        uid, db = _uid(ISSUE_S), "t_" + ISSUE_S.replace("-", "_")
        creds = credentials(ISSUE_S)
        assert creds["PGDATABASE"] == db and creds["PGUSER"] == db + "_a"  # whole, never cut
        pg(creds, "CREATE TABLE IF NOT EXISTS s_only (v text)")
        marks = _pg_marks(db)
        assert marks == {db: MARK + uid, db + "_owner": MARK + uid, db + "_a": MARK + uid, db + "_b": MARK + uid}
        assert redis_admin().get(f"tenancy:owner:{ISSUE_S}") == MARK + uid
        assert _vault_mark(ISSUE_S) == uid
        # The tenant cannot reach its own marks: the key is outside its fence, the record outside its policy.
        with pytest.raises(redis.exceptions.NoPermissionError):
            redis_client(creds).set(f"tenancy:owner:{ISSUE_S}", MARK + "forged")
        v = vault_login(creds, f"tenant-{ISSUE_S}")
        with pytest.raises(hvac.exceptions.Forbidden):
            v.write(f"tenants/metadata/{ISSUE_S}", custom_metadata={"tenancy.dev/tenant-uid": "forged"})
        assert not any(e["reason"] == "DriftRepaired" for e in _events(ISSUE_S)), "first creation is not drift"
    finally:
        kubectl("delete", "tenant", ISSUE_S, "--ignore-not-found", "--timeout=90s", check=False, timeout=100)


def test_objects_marked_by_another_tenant_are_never_written(backends, operator, reclaim_delete):
    """A live owner's objects, and a deleted tenant's, under this tenant's names: Stalled, untouched."""
    kube.apply(tenant_yaml("own-a", lifecyclePolicyRef=reclaim_delete, postgres={"enabled": True}))
    try:
        kubectl("wait", "--for=condition=Ready", "tenant/own-a", "--timeout=60s", timeout=70)
        uid_a = _uid("own-a")
        # own-b's owner role, made and marked as own-a's (what the old hashing could produce).
        pg_admin("CREATE ROLE t_own_b_owner NOLOGIN")
        pg_admin(f"COMMENT ON ROLE t_own_b_owner IS '{MARK}{uid_a}'")
        # own-c's slice on every backend, marked by a tenant that no longer exists.
        pg_admin("CREATE DATABASE t_own_c")
        pg_admin(f"COMMENT ON DATABASE t_own_c IS '{MARK}{DEAD_UID}'")
        redis_admin().set("tenancy:owner:own-c", MARK + DEAD_UID)
        vault_admin().write("tenants/metadata/own-c", custom_metadata={"tenancy.dev/tenant-uid": DEAD_UID})

        # A live owner's data is never taken, even when asked to adopt retained data.
        kube.apply(tenant_yaml("own-b", lifecyclePolicyRef=reclaim_delete, adoptRetainedData=True,
                               postgres={"enabled": True}))
        b = _stalled_on("own-b", "DatabaseReady")
        message = condition(b, "DatabaseReady")["message"]
        assert "role t_own_b_owner" in message and f"belong to Tenant own-a (uid {uid_a})" in message, message
        assert pg_roles("t_own_b") == {"t_own_b_owner"}, "nothing else was made"
        assert _pg_marks("t_own_b") == {"t_own_b_owner": MARK + uid_a}
        eventually(lambda: any(e["type"] == "Warning" and e["reason"] == "OwnedByAnotherTenant"
                               for e in _events("own-b")), 20, message="a Warning Event")

        kube.apply(tenant_yaml("own-c", lifecyclePolicyRef=reclaim_delete, **FULL))
        c = _stalled_on("own-c", "DatabaseReady", "CacheReady", "VaultReady")
        for part in ("DatabaseReady", "CacheReady", "VaultReady"):
            message = condition(c, part)["message"]
            assert f"retained from a deleted tenant (uid {DEAD_UID})" in message, message
            assert "spec.adoptRetainedData: true" in message, message
        assert _pg_marks("t_own_c") == {"t_own_c": MARK + DEAD_UID}, "no role made, the mark untouched"
        assert redis_admin().acl_getuser("tenant:own-c") is None
        assert _vault_mark("own-c") == DEAD_UID
        assert not kube.get("secret", "tenant-credentials", "tenant-own-c")

        # Deleting with reclaim Delete completes and drops none of it: it is not theirs.
        kubectl("delete", "tenant", "own-b", "own-c", "--timeout=60s", timeout=70)
        assert _pg_marks("t_own_b") == {"t_own_b_owner": MARK + uid_a}
        assert _pg_marks("t_own_c") == {"t_own_c": MARK + DEAD_UID}
        assert redis_admin().get("tenancy:owner:own-c") == MARK + DEAD_UID and _vault_mark("own-c") == DEAD_UID
    finally:
        kubectl("delete", "tenant", "own-a", "own-b", "own-c", "--ignore-not-found", "--timeout=60s", check=False,
                timeout=70)
        pg_admin("DROP DATABASE IF EXISTS t_own_c")
        pg_admin("DROP ROLE IF EXISTS t_own_b_owner")
        redis_admin().delete("tenancy:owner:own-c")
        vault_admin().delete("tenants/metadata/own-c")


# ---------------------------------------------------------------- item 4: name reuse

def test_reused_name_inherits_retained_data_only_when_asked(backends, operator, reclaim_delete):
    name = "reuse-x"
    try:
        kube.apply(tenant_yaml(name, **FULL))  # default reclaim: Retain
        kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
        first = _uid(name)
        old = credentials(name)
        pg(old, "CREATE TABLE IF NOT EXISTS kept (v text)")
        pg(old, "INSERT INTO kept VALUES ('from the first tenant')")
        redis_client(old).set("t:reuse-x:k", "from the first tenant")
        vault_login(old, "tenant-reuse-x").secrets.kv.v2.create_or_update_secret(
            mount_point="tenants", path="tenant-reuse-x/db", secret={"v": "from the first tenant"})
        assert not any(e["reason"] == "DriftRepaired" for e in _events(name)), "first creation is not drift"
        kubectl("delete", "tenant", name, "--timeout=90s", timeout=100)
        eventually(lambda: get("namespace", "tenant-reuse-x") is None, 90, message="namespace gone")
        assert _pg_marks("t_reuse_x")["t_reuse_x"] == MARK + first, "Retain keeps the data and its mark"

        # The same name again, without the opt-in: Stalled on every backend, nothing handed out.
        kube.apply(tenant_yaml(name, **FULL))
        second = _uid(name)
        assert second != first
        t = _stalled_on(name, "DatabaseReady", "CacheReady", "VaultReady", timeout=90)
        message = condition(t, "Stalled")["message"]
        assert f"retained from a deleted tenant (uid {first}), a previous Tenant named reuse-x" in message, message
        assert "spec.adoptRetainedData: true" in message
        assert not kube.get("secret", "tenant-credentials", "tenant-reuse-x")
        assert set(_pg_marks("t_reuse_x").values()) == {MARK + first}

        # With the opt-in: re-attached, re-marked, said so, and readable with the new credentials.
        kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"adoptRetainedData":true}}')
        kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
        new = credentials(name)
        assert pg(new, "SELECT v FROM kept")[0][0] == "from the first tenant"
        assert redis_client(new).get("t:reuse-x:k") == "from the first tenant"
        read = vault_login(new, "tenant-reuse-x").secrets.kv.v2.read_secret_version(
            mount_point="tenants", path="tenant-reuse-x/db", raise_on_deleted_version=True)
        assert read["data"]["data"] == {"v": "from the first tenant"}
        assert set(_pg_marks("t_reuse_x").values()) == {MARK + second}
        assert redis_admin().get("tenancy:owner:reuse-x") == MARK + second and _vault_mark(name) == second
        events = _events(name, second)
        adopted = [e for e in events if e["reason"] == "RetainedDataAdopted"]
        assert adopted and adopted[0]["type"] == "Normal" and "database t_reuse_x" in adopted[0]["message"], events
        assert not any(e["reason"] == "DriftRepaired" for e in events), [e["message"] for e in events]
    finally:
        kubectl("patch", "tenant", name, "--type=merge", "-p",
                json.dumps({"spec": {"lifecyclePolicyRef": reclaim_delete}}), check=False)
        kubectl("delete", "tenant", name, "--ignore-not-found", "--timeout=90s", check=False, timeout=100)
