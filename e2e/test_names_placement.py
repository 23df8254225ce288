"""Names that push every backend's limits, hostile input, and placement by free capacity."""

from __future__ import annotations

import json
import os
import secrets

import pytest

from . import kube
from .admin import pg_databases, redis_admin, vault_exists
from .backends_fixtures import admins_env, backend, secret
from .kube import get, kubectl, tenant_yaml
from .pg_instance import PostgresInstance
from .tenant_clients import credentials, pg, redis_client, vault_login

LONG = "long-" + "x" * 22 + "-" + "y" * 27  # 55 characters, the longest Tenant name, dashes included
FULL = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}


def test_55_character_name_works_on_every_backend_uncut(backends, operator, cleanup_tenants):
    assert len(LONG) == 55
    cleanup_tenants.append(LONG)
    kube.apply(tenant_yaml(LONG, **FULL))
    kubectl("wait", "--for=condition=Ready", f"tenant/{LONG}", "--timeout=60s", timeout=70)
    tenant = get("tenant", LONG)
    namespace = tenant["status"]["namespace"]
    assert namespace == f"tenant-{LONG}"
    creds = credentials(LONG, namespace)
    assert creds["PGDATABASE"] == "t_" + LONG.replace("-", "_") and creds["PGDATABASE"] in pg_databases("t_long_")
    assert len(creds["PGDATABASE"] + "_owner") == 63
    row = pg(creds, "SELECT session_user, current_user")[0]
    assert (row[0], row[1]) == (creds["PGUSER"], creds["PGDATABASE"] + "_owner")  # objects belong to the owner
    r = redis_client(creds)
    r.set(creds["REDIS_KEY_PREFIX"] + "k", "v")
    assert r.get(creds["REDIS_KEY_PREFIX"] + "k") == "v"
    assert redis_admin().acl_getuser(f"tenant:{LONG}") is not None
    client = vault_login(creds, namespace)
    client.secrets.kv.v2.create_or_update_secret(mount_point="tenants", path=f"tenant-{LONG}/k", secret={"v": "1"})
    assert vault_exists(f"auth/kubernetes/role/tenant-{LONG}")


HOSTILE = ["a'b", "a;b", "a*b", "a b", 'a"b', "x$(id)", "a\\b", "t:*", "%", "--"]
FIELDS = {
    "owner name": lambda v: {"owners": [{"kind": "User", "name": v}]},
    "quota cpu": lambda v: {"quota": {"cpu": v}},
    "postgres backend": lambda v: {"postgres": {"enabled": True, "backend": v}},
    "policy ref": lambda v: {"lifecyclePolicyRef": v},
    "rotation period": lambda v: {"credentials": {"rotateEvery": v}},
}


@pytest.mark.parametrize("field", FIELDS, ids=list(FIELDS))
def test_hostile_values_are_refused_at_apply(crds, field):
    for value in HOSTILE:
        result = kubectl("apply", "--dry-run=server", "-f", "-", input=tenant_yaml("hostile", **FIELDS[field](value)),
                         check=False)
        assert result.returncode != 0, f"{field}={value!r} was accepted"
        assert "spec." in result.stderr, result.stderr


def test_hostile_free_text_never_reaches_a_backend(backends, operator, cleanup_tenants):
    cleanup_tenants.append("free-text")
    display = "Robert'); DROP TABLE students;-- * ~ & \" $(id)"
    manifest = json.loads(tenant_yaml("free-text", displayName=display, **FULL))
    manifest["metadata"]["labels"] = {"team": "a-b_c.d"}
    kube.apply(json.dumps(manifest))
    kubectl("wait", "--for=condition=Ready", "tenant/free-text", "--timeout=60s", timeout=70)
    assert pg_databases("t_free_text") == {"t_free_text"}
    acl = redis_admin().acl_getuser("tenant:free-text")
    assert acl["keys"] == ["~t:free-text:*"] or acl["keys"] == "~t:free-text:*"


@pytest.fixture
def capacity_backends(platform, backends):
    """Two fresh Backends on two real servers, nobody placed on them yet: pg-cap-a (capacity 8, the
    platform's server) and pg-cap-b (capacity 5, a second server). pg-main is paused meanwhile."""
    instance = PostgresInstance(port=kube.free_port(), password=secrets.token_urlsafe(16))
    instance.init()
    instance.start()
    kubectl("patch", "backend", "pg-main", "--type=merge", "-p", '{"spec":{"paused":true}}')
    admins = admins_env()
    kube.apply("\n---\n".join([
        secret("pg-cap-a-admin", {"username": admins["TENANCY_PG_ADMIN_USER"], "password": admins["TENANCY_PG_ADMIN_PASSWORD"]}),
        backend("pg-cap-a", "postgres", int(os.environ["PGPORT"]), "pg-cap-a-admin", capacity=8),
        secret("pg-cap-b-admin", instance.operator_admin()),
        backend("pg-cap-b", "postgres", instance.port, "pg-cap-b-admin", capacity=5),
    ]))
    kubectl("wait", "--for=condition=Ready", "backend/pg-cap-a", "backend/pg-cap-b", "--timeout=60s", timeout=70)
    yield
    kubectl("patch", "backend", "pg-main", "--type=merge", "-p", '{"spec":{"paused":false}}')
    kubectl("delete", "backend", "pg-cap-a", "pg-cap-b", "--ignore-not-found", check=False)
    instance.remove()


def test_placement_by_free_capacity_and_sticky(capacity_backends, operator):
    names = [f"place-{i}" for i in range(10)]
    try:
        for name in names:  # one at a time: each choice sees the previous ones
            kube.apply(tenant_yaml(name, postgres={"enabled": True}))
            kube.eventually(lambda n=name: (get("tenant", n).get("status", {}).get("placement") or {}).get("postgres"),
                            30, message=f"{name} placed")
        kubectl("wait", "--for=condition=Ready", *[f"tenant/{n}" for n in names], "--timeout=90s", timeout=100)
        placed = [get("tenant", n)["status"]["placement"]["postgres"] for n in names]
        print(f"\nplacement of 10 tenants (capacities pg-cap-a=8, pg-cap-b=5): {placed}")
        # Greedy by free capacity, ties to the first name.
        assert [p[-1] for p in placed] == list("aaaababab" + "a")
        refused = kubectl("patch", "tenant", names[0], "--type=merge", "-p",
                          json.dumps({"spec": {"postgres": {"backend": "pg-cap-b"}}}), check=False)
        assert refused.returncode != 0 and "cannot change once the tenant is placed" in refused.stderr, refused.stderr
        kubectl("patch", "tenant", names[0], "--type=merge", "-p",
                json.dumps({"spec": {"postgres": {"backend": "pg-cap-a"}}}))
        # A Backend named by the Tenant is held to `paused` too (pg-main is paused by the fixture): Stalled,
        # saying what to change, nothing made there; naming a Backend with room then places it.
        kube.apply(tenant_yaml("place-named", postgres={"enabled": True, "backend": "pg-main"}))
        stalled = kube.eventually(lambda: kube.condition(get("tenant", "place-named"), "Stalled").get("status") == "True"
                                  and kube.condition(get("tenant", "place-named"), "Stalled"), 30, 1, "place-named Stalled")
        print(f"\na tenant naming the paused pg-main: {stalled['reason']}: {stalled['message']}")
        assert stalled["reason"] == "BackendPaused" and "pg-main is paused" in stalled["message"], stalled
        assert not (get("tenant", "place-named")["status"].get("placement") or {}).get("postgres")
        assert not pg_databases("t_place_named")
        kubectl("patch", "tenant", "place-named", "--type=merge", "-p",
                json.dumps({"spec": {"postgres": {"backend": "pg-cap-b"}}}))
        kubectl("wait", "--for=condition=Ready", "tenant/place-named", "--timeout=60s", timeout=70)
        assert get("tenant", "place-named")["status"]["placement"]["postgres"] == "pg-cap-b"
    finally:
        kubectl("delete", "tenants", *names, "place-named", "--ignore-not-found", "--timeout=90s", check=False,
                timeout=100)
