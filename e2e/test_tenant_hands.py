"""What a tenant can do with its own database, and doors a spec change must close (found in review).

A tenant owns its database, so it may change the database's COMMENT (the ownership mark) and make it a
template; neither may keep its logins open through a suspend nor hang its deletion. A service turned
off keeps its data but no login; a rotation's old sessions end with its overlap.
"""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest

from . import kube
from .admin import pg_admin, pg_databases
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg

PG_AUTH = (asyncpg.exceptions.InvalidPasswordError, asyncpg.exceptions.InvalidAuthorizationSpecificationError)


def _unique(prefix: str) -> str:
    return f"{prefix}-{int(time.time() * 1000) % 10_000_000}"


def _ready(name: str, **spec) -> dict[str, str]:
    kube.apply(tenant_yaml(name, **spec))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    return credentials(name)


def _refused(creds: dict[str, str]) -> bool:
    try:
        pg(creds, "SELECT 1")
    except PG_AUTH:
        return True
    return False


@pytest.fixture
def reclaim_delete(backends):
    kube.apply(json.dumps({"apiVersion": "tenancy.dev/v1alpha1", "kind": "LifecyclePolicy",
                           "metadata": {"name": "hands-reclaim-delete"}, "spec": {"reclaim": "Delete"}}))
    return "hands-reclaim-delete"


def test_a_forged_database_mark_neither_stalls_nor_keeps_the_door_open(backends, operator, cleanup_tenants):
    name = _unique("forger")
    cleanup_tenants.append(name)
    creds = _ready(name, postgres={"enabled": True})
    database = creds["PGDATABASE"]
    pg(creds, f'COMMENT ON DATABASE "{database}" IS \'tenancy.dev/tenant-uid=00000000-0000-0000-0000-000000000000\'')
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"state":"Suspended"}}')
    eventually(lambda: _refused(creds), 30, message="the forger's login refused after the suspend")
    tenant = get("tenant", name)
    assert condition(tenant, "DatabaseReady").get("reason") != "OwnedByAnotherTenant", condition(tenant, "DatabaseReady")
    uid = tenant["metadata"]["uid"]
    eventually(lambda: pg_admin("SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1",
                                database)[0]["c"] == f"tenancy.dev/tenant-uid={uid}", 30,
               message="the database's mark put back")


def test_a_database_made_a_template_by_its_tenant_is_still_deleted(backends, operator, cleanup_tenants, reclaim_delete):
    name = _unique("templ")
    cleanup_tenants.append(name)
    creds = _ready(name, postgres={"enabled": True}, lifecyclePolicyRef=reclaim_delete)
    database = creds["PGDATABASE"]
    pg(creds, f'ALTER DATABASE "{database}" IS_TEMPLATE true')
    assert pg_admin("SELECT datistemplate FROM pg_database WHERE datname = $1", database)[0]["datistemplate"]
    kubectl("delete", "tenant", name, "--wait=false")
    eventually(lambda: get("tenant", name) is None, 90, interval=1, message="the tenant deleted")
    assert database not in pg_databases(database)


def test_a_service_turned_off_keeps_its_data_and_closes_its_login(backends, operator, cleanup_tenants):
    name = _unique("turnoff")
    cleanup_tenants.append(name)
    creds = _ready(name, postgres={"enabled": True})
    pg(creds, "CREATE TABLE kept (v text)")
    pg(creds, "INSERT INTO kept VALUES ('here')")
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"postgres":{"enabled":false}}}')
    eventually(lambda: _refused(creds), 30, message="the login of a disabled service refused")
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=30s", timeout=40)
    assert pg_admin("SELECT count(*) AS n FROM pg_database WHERE datname = $1", creds["PGDATABASE"])[0]["n"] == 1
    kubectl("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"postgres":{"enabled":true}}}')
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=60s", timeout=70)
    assert pg(credentials(name), "SELECT v FROM kept")[0][0] == "here"


def test_sessions_of_the_old_role_end_with_the_overlap(backends, operator, cleanup_tenants):
    name = _unique("oldsess")
    cleanup_tenants.append(name)
    old = _ready(name, postgres={"enabled": True}, credentials={"rotateEvery": "720h", "overlap": "30s"})

    async def hold() -> bool:
        conn = await asyncpg.connect(host=old["PGHOST"], port=int(old["PGPORT"]), user=old["PGUSER"],
                                     password=old["PGPASSWORD"], database=old["PGDATABASE"], timeout=5)
        try:
            kubectl("annotate", "--overwrite", "tenant", name, f"tenancy.dev/rotate=test-{time.time()}")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the overlap: the held session keeps working
                await conn.fetchval("SELECT 1")
                await asyncio.sleep(1)
            for _ in range(90):  # then it is ended
                try:
                    await conn.fetchval("SELECT 1")
                except (asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.ConnectionDoesNotExistError,
                        asyncpg.exceptions.InterfaceError):
                    return True
                await asyncio.sleep(1)
            return False
        finally:
            await conn.close()

    assert asyncio.run(hold()), "a session of the rotated-away role still worked a minute after the overlap"
    assert _refused(old)
    assert pg(credentials(name), "SELECT 1")


def _as_login_role(creds: dict[str, str], statement: str) -> None:
    """`statement` as the login role itself (RESET ROLE leaves the owner role its sessions start in)."""
    async def go():
        conn = await asyncpg.connect(host=creds["PGHOST"], port=int(creds["PGPORT"]), user=creds["PGUSER"],
                                     password=creds["PGPASSWORD"], database=creds["PGDATABASE"], timeout=5)
        try:
            await conn.execute("RESET ROLE")
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


def test_role_attributes_given_by_hand_are_taken_back(backends, operator, cleanup_tenants):
    """CREATEROLE on a tenant's login role would let it grant itself another tenant's roles (PostgreSQL
    15: a CREATEROLE holder grants any non-superuser role); CREATEDB, BYPASSRLS on its owner role work
    after its sessions' SET ROLE. A person's ALTER ROLE is put back on the next pass, as drift; what the
    Backend's admin (CREATEROLE, no superuser) may not take stalls the part, naming the statement."""
    name = _unique("powers")
    cleanup_tenants.append(name)
    creds = _ready(name, postgres={"enabled": True})
    login, owner = creds["PGUSER"], f"t_{name.replace('-', '_')}_owner"
    pg_admin(f'ALTER ROLE "{login}" CREATEROLE CREATEDB')
    pg_admin(f'ALTER ROLE "{owner}" BYPASSRLS CREATEDB')

    def powers() -> dict[str, list[str]]:
        rows = pg_admin("SELECT rolname, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
                        "WHERE rolname = ANY($1)", [login, owner])
        return {r["rolname"]: [k for k in ("rolcreaterole", "rolcreatedb", "rolbypassrls") if r[k]] for r in rows}

    # The admin takes what a CREATEROLE holder may; BYPASSRLS is a superuser's to change.
    eventually(lambda: powers() == {login: [], owner: ["rolbypassrls"]}, 60, message="CREATEROLE, CREATEDB taken back")
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        _as_login_role(creds, f'CREATE ROLE "{name}_made_by_tenant"')

    def stalled() -> dict:
        part = condition(get("tenant", name), "DatabaseReady")
        return part if part.get("status") == "False" and part.get("reason") == "InsufficientPrivilege" else {}

    part = eventually(stalled, 30, message="DatabaseReady False, InsufficientPrivilege")
    assert f'ALTER ROLE "{owner}" NOBYPASSRLS' in part["message"], part
    assert condition(get("tenant", name), "Stalled").get("status") == "True"
    pg_admin(f'ALTER ROLE "{owner}" NOBYPASSRLS')  # the person the message asks for
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=60s", timeout=70)

    def said() -> str:
        events = kube.object_events("Tenant", name, reason="DriftRepaired")
        text = " ".join(e["message"] for e in events)
        assert f"attributes of {login}" in text, text
        return text

    eventually(said, 30, message="a DriftRepaired Event names the login role")

    # SUPERUSER: PostgreSQL lets only a superuser alter such a role at all (its password, LOGIN too), so
    # the pass writes nothing and stalls the part, naming the statement; the person's fix makes it Ready.
    # CREATEDB on the owner is drift the admin could take back: it stays while the pass refuses.
    pg_admin(f'ALTER ROLE "{login}" SUPERUSER')
    pg_admin(f'ALTER ROLE "{owner}" CREATEDB')
    try:
        part = eventually(stalled, 30, message="DatabaseReady False, InsufficientPrivilege for SUPERUSER")
        assert f'ALTER ROLE "{login}" NOSUPERUSER' in part["message"] and "only a superuser" in part["message"], part
        time.sleep(3 * 3)  # three more verify passes (e2e interval 3 s): still nothing written
        assert powers()[owner] == ["rolcreatedb"], "no write in a pass refused before its writes"
    finally:  # never leave a SUPERUSER with a known password on the shared server
        pg_admin(f'ALTER ROLE "{login}" NOSUPERUSER')
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=60s", timeout=70)
    eventually(lambda: powers()[owner] == [], 30, message="CREATEDB taken back once the role may be altered")
