"""Doors a tenant no longer has stay shut: Retain on delete, OpenBao flags that are off, shared databases.

Every refusal comes from the real server, with the credentials the tenant's application held.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets

import asyncpg
import hvac.exceptions
import pytest
import redis

from . import kube
from .admin import pg_admin, pg_databases, redis_admin, vault_admin, vault_exists
from .backends_fixtures import secret
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .pg_instance import PostgresInstance
from .tenant_clients import credentials, pg, redis_client, vault_login

FULL = {"postgres": {"enabled": True}, "redis": {"enabled": True}, "vault": {"enabled": True}}


def _ready(name: str, timeout: int = 60) -> None:
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", f"--timeout={timeout}s", timeout=timeout + 10)


def _forget_retained(name: str) -> None:
    """Drop what Retain kept, as an administrator would; each run uses a fresh name, so nothing piles up."""
    stem = "t_" + name.replace("-", "_")
    pg_admin(f'DROP DATABASE IF EXISTS "{stem}" WITH (FORCE)')
    for role in (f"{stem}_a", f"{stem}_b", f"{stem}_owner"):
        pg_admin(f'DROP ROLE IF EXISTS "{role}"')
    r = redis_admin()
    r.acl_deluser(f"tenant:{name}")
    keys = list(r.scan_iter(match=f"t:{name}:*"))
    if keys:
        r.unlink(*keys)
    v = vault_admin()
    for path in (f"auth/kubernetes/role/tenant-{name}", f"sys/policies/acl/tenant-{name}",
                 f"tenants/metadata/tenant-{name}/db"):
        v.delete(path)
    if vault_exists(f"transit/keys/tenant-{name}"):
        v.write(f"transit/keys/tenant-{name}/config", deletion_allowed=True)
        v.delete(f"transit/keys/tenant-{name}")
    v.delete(f"tenants/metadata/_transit-keys/tenant-{name}")  # the key's owner record


def test_retain_keeps_the_data_and_closes_every_door(backends, operator):
    """Issue 11 item 3: after `kubectl delete` with reclaim Retain, nothing the tenant held opens anything."""
    name = f"kept-{secrets.token_hex(3)}"
    kube.apply('{"apiVersion":"tenancy.dev/v1alpha1","kind":"LifecyclePolicy","metadata":{"name":"reclaim-retain"},'
               '"spec":{"reclaim":"Retain"}}')
    kube.apply(tenant_yaml(name, lifecyclePolicyRef="reclaim-retain", **FULL))
    loop = asyncio.new_event_loop()
    try:
        _ready(name)
        creds = credentials(name)
        pg(creds, "CREATE TABLE kept (v text)")
        pg(creds, "INSERT INTO kept VALUES ('still here')")
        held_pg = loop.run_until_complete(asyncpg.connect(
            host=creds["PGHOST"], port=int(creds["PGPORT"]), user=creds["PGUSER"], password=creds["PGPASSWORD"],
            database=creds["PGDATABASE"], timeout=5))
        held_redis = redis_client(creds)
        held_redis.set(f"t:{name}:k", "kept")
        v = vault_login(creds, f"tenant-{name}")
        v.secrets.kv.v2.create_or_update_secret(mount_point="tenants", path=f"tenant-{name}/db", secret={"v": "kept"})
        accessor = v.lookup_token()["data"]["accessor"]

        uid = get("tenant", name)["metadata"]["uid"]  # its Retained Event is read once it is gone
        kubectl("delete", "tenant", name, "--timeout=90s", timeout=100)

        # Doors: closed, for the Secret's credentials and for what was already connected or issued.
        with pytest.raises(asyncpg.exceptions.InvalidAuthorizationSpecificationError):
            pg(creds, "SELECT 1")
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            loop.run_until_complete(held_pg.fetch("SELECT 1"))
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis_client(creds).ping()
        assert not [c for c in redis_admin().client_list() if c.get("user") == f"tenant:{name}"]
        with pytest.raises(redis.exceptions.ConnectionError):  # killed, and AUTH on reconnect is refused
            held_redis.get(f"t:{name}:k")
        with pytest.raises(hvac.exceptions.Forbidden):
            v.secrets.kv.v2.read_secret_version(mount_point="tenants", path=f"tenant-{name}/db", raise_on_deleted_version=True)
        with pytest.raises(hvac.exceptions.Forbidden):
            v.secrets.transit.encrypt_data(f"tenant-{name}", "aGk=")
        with pytest.raises(hvac.exceptions.InvalidRequest):  # the token itself is revoked, not only denied
            vault_admin().auth.token.lookup_accessor(accessor)
        assert not vault_exists(f"auth/kubernetes/role/tenant-{name}")
        assert not vault_exists(f"sys/policies/acl/tenant-{name}")  # no per-tenant policy (the fixed ones are shared)

        # Data: all of it kept.
        assert pg_databases(creds["PGDATABASE"]) == {creds["PGDATABASE"]}
        admin = loop.run_until_complete(asyncpg.connect(
            host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]), user=os.environ["PGUSER"],
            password=os.environ["PGPASSWORD"], database=creds["PGDATABASE"], timeout=5))
        assert loop.run_until_complete(admin.fetchval("SELECT v FROM kept")) == "still here"
        loop.run_until_complete(admin.close())
        assert redis_admin().get(f"t:{name}:k") == "kept"
        kv = vault_admin().secrets.kv.v2.read_secret_version(mount_point="tenants", path=f"tenant-{name}/db",
                                                              raise_on_deleted_version=True)
        assert kv["data"]["data"] == {"v": "kept"}
        assert vault_exists(f"transit/keys/tenant-{name}")

        retained = [e["message"] for e in kube.object_events("Tenant", name, reason="Retained", uid=uid)]
        assert retained and "doors closed" in retained[-1], retained
        for service in ("postgres on pg-main", "redis on redis-main", "vault on vault-main"):
            assert service in retained[-1], retained[-1]
    finally:
        loop.close()
        kubectl("delete", "tenant", name, "--ignore-not-found", "--timeout=60s", check=False, timeout=70)
        _forget_retained(name)


def _secret_keys(name: str) -> set[str]:
    return set(credentials(name))


def test_vault_flags_shape_the_policy_the_secret_and_what_a_token_may_do(backends, operator):
    """Issue 11 item 6: kv / transitKey off means no path in the policy, no key in the Secret, a refused token."""
    name = f"vflags-{secrets.token_hex(3)}"
    kube.apply(tenant_yaml(name, vault={"enabled": True, "kv": False, "transitKey": True}))
    try:
        _ready(name)
        keys = _secret_keys(name)
        assert {"VAULT_TRANSIT_MOUNT", "VAULT_TRANSIT_KEY"} <= keys and not {"VAULT_KV_MOUNT", "VAULT_KV_PATH"} & keys
        creds = credentials(name)
        v = vault_login(creds, f"tenant-{name}")
        assert v.secrets.transit.encrypt_data(f"tenant-{name}", "aGk=")["data"]["ciphertext"]
        with pytest.raises(hvac.exceptions.Forbidden):
            v.secrets.kv.v2.create_or_update_secret(mount_point="tenants", path=f"tenant-{name}/db", secret={"v": "x"})

        # Flip both on a live tenant: KV opens, transit closes (for the token issued before too: it is
        # revoked, as it still holds the transit policy), and the key stays (its ciphertexts stay readable).
        before = v
        kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"vault":{"kv":true,"transitKey":false}}}')
        eventually(lambda: {"VAULT_KV_MOUNT", "VAULT_KV_PATH"} <= _secret_keys(name), 30, message="KV keys in the Secret")
        _ready(name)
        keys = _secret_keys(name)
        assert not {"VAULT_TRANSIT_MOUNT", "VAULT_TRANSIT_KEY"} & keys, keys
        v = vault_login(credentials(name), f"tenant-{name}")
        v.secrets.kv.v2.create_or_update_secret(mount_point="tenants", path=f"tenant-{name}/db", secret={"v": "x"})
        for token in (v, before):
            with pytest.raises(hvac.exceptions.Forbidden):
                token.secrets.transit.encrypt_data(f"tenant-{name}", "aGk=")
        assert vault_exists(f"transit/keys/tenant-{name}")
        role = vault_admin().read(f"auth/kubernetes/role/tenant-{name}")["data"]
        assert role["token_policies"] == ["tenancy-tenant-kv"], role
    finally:
        kubectl("delete", "tenant", name, "--ignore-not-found", "--timeout=60s", check=False, timeout=70)
        _forget_retained(name)


def test_shared_databases_are_closed_to_tenants_and_the_admin_keeps_working(backends, operator):
    """Issue 11 item 7, the server side: pg-main (default restrictSharedDatabases) took PUBLIC's grants away."""
    eventually(lambda: condition(get("backend", "pg-main"), "SharedDatabasesRestricted").get("status") == "True", 30,
               message="pg-main SharedDatabasesRestricted=True")
    rows = pg_admin("""SELECT d.datname, EXISTS (SELECT 1 FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) x
                       WHERE x.grantee = 0) AS public_any FROM pg_database d
                       WHERE d.datname IN ('postgres', 'template1') ORDER BY 1""")
    assert [(r["datname"], r["public_any"]) for r in rows] == [("postgres", False), ("template1", False)]
    assert condition(get("backend", "pg-main"), "Ready")["status"] == "True"  # the admin's own pool still connects


def test_an_admin_that_may_not_restrict_shared_databases_says_so_and_the_backend_stays_ready(backends, operator):
    """Issue 11 item 7, a shared server: the admin (CREATEDB, CREATEROLE, owns nothing) cannot change the grants."""
    password, low_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    instance = PostgresInstance(port=kube.free_port(), password=password)
    instance.init()
    instance.start()

    def as_superuser(sql: str):
        async def go():
            conn = await asyncpg.connect(host="127.0.0.1", port=instance.port, user="postgres", password=password,
                                         database="postgres", timeout=5)
            try:
                return await conn.fetch(sql)
            finally:
                await conn.close()
        return asyncio.run(go())

    def public_grants():
        return {r["datname"]: r["n"] for r in as_superuser(
            "SELECT d.datname, (SELECT count(*) FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) x "
            "WHERE x.grantee = 0) AS n FROM pg_database d WHERE d.datname IN ('postgres', 'template1')")}

    def shared() -> dict:
        return condition(get("backend", "pg-lowpriv"), "SharedDatabasesRestricted")

    as_superuser(f"CREATE ROLE lowadmin LOGIN CREATEDB CREATEROLE PASSWORD '{low_password}'")
    as_superuser("GRANT pg_signal_backend TO lowadmin")  # what a managed service grants (docs/backend-admins.md)
    initial = public_grants()  # initdb: CONNECT and TEMPORARY on postgres, CONNECT on template1
    assert initial["postgres"] and initial["template1"], initial
    kube.apply("\n---\n".join([
        secret("pg-lowpriv-admin", {"username": "lowadmin", "password": low_password}),
        json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "Backend", "metadata": {"name": "pg-lowpriv"},
                    "spec": {"type": "postgres", "endpoint": {"host": "127.0.0.1", "port": instance.port},
                             "adminSecretRef": {"name": "pg-lowpriv-admin"}, "paused": True}}),
    ]))
    try:
        eventually(lambda: shared().get("reason") == "InsufficientPrivilege", 30, message="InsufficientPrivilege")
        assert shared()["status"] == "False" and "restrictSharedDatabases" in shared()["message"]
        assert condition(get("backend", "pg-lowpriv"), "Ready")["status"] == "True"
        assert public_grants() == initial  # untouched

        kubectl("patch", "backend", "pg-lowpriv", "--type=merge", "-p", '{"spec":{"postgres":{"restrictSharedDatabases":false}}}')
        eventually(lambda: shared().get("reason") == "NotRequested", 30, message="NotRequested once turned off")

        # The same server with an admin that may (a superuser): restricted, and its own pool keeps connecting.
        kube.apply("\n---\n".join([
            secret("pg-lowpriv-admin", {"username": "postgres", "password": password}),
        ]))
        kubectl("patch", "backend", "pg-lowpriv", "--type=merge", "-p", '{"spec":{"postgres":{"restrictSharedDatabases":true}}}')
        eventually(lambda: shared().get("reason") == "Restricted", 30, message="Restricted with a superuser admin")
        assert public_grants() == {"postgres": 0, "template1": 0}
        assert condition(get("backend", "pg-lowpriv"), "Ready")["status"] == "True"
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):  # the low admin relied on PUBLIC
            asyncio.run(asyncpg.connect(host="127.0.0.1", port=instance.port, user="lowadmin", password=low_password,
                                        database="postgres", timeout=5))
    finally:
        kubectl("delete", "backend", "pg-lowpriv", "--ignore-not-found", check=False)
        kubectl("delete", "secret", "pg-lowpriv-admin", "-n", "tenancy-system", "--ignore-not-found", check=False)
        instance.remove()
