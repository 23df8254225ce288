"""Loading a tenant's dump never hands the tenant's code the admin (real PostgreSQL, real operator).

A tenant plants a SECURITY INVOKER plpgsql function that does `RESET ROLE`, records `current_user` and
whether it is a superuser, and tries to make the tenant's login roles SUPERUSER; a CHECK constraint of
a table with rows calls it, so every load of that table runs it. Restored from an archive and copied
by the migrate-database workflow, it must find a role with no superuser, and no role may gain one.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import asyncpg
import pytest

from . import kube
from .admin import pg_admin
from .kube import eventually, get, kubectl, tenant_yaml
from .tenant_clients import credentials, pg
from .test_archive import _delete_and_wait, _fresh, _policy, plugin
from .test_migrate_database import (  # noqa: F401 - the fixtures
    OPERATOR_NS,
    _make_tenant,
    create_run,
    finished,
    paused,
    switchable,
    target_pg,
)

SERVICES = {"postgres": {"enabled": True}, "vault": {"enabled": True}}
PAYLOAD = """
CREATE TABLE seen (who text, super boolean, escalated text);
CREATE FUNCTION evil(x int) RETURNS boolean LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE outcome text := 'refused';
BEGIN
  RESET ROLE;
  BEGIN
    EXECUTE format('ALTER ROLE %I SUPERUSER', current_database() || '_a');
    outcome := 'became superuser';
  EXCEPTION WHEN others THEN NULL;
  END;
  INSERT INTO public.seen SELECT current_user, rolsuper, outcome FROM pg_roles WHERE rolname = current_user;
  RETURN true;
END $$;
CREATE TABLE payload (x int CHECK (evil(x)));
INSERT INTO payload VALUES (1), (2);
"""


def _plant(creds: dict[str, str]) -> None:
    async def go():
        conn = await asyncpg.connect(host=creds["PGHOST"], port=int(creds["PGPORT"]), user=creds["PGUSER"],
                                     password=creds["PGPASSWORD"], database=creds["PGDATABASE"], timeout=5)
        try:
            await conn.execute(PAYLOAD)
        finally:
            await conn.close()
    asyncio.run(go())


def _seen_as(rows, tenant: str) -> list[tuple]:
    """What evil() recorded during loads, leaving out what it recorded when the tenant inserted the rows
    (its login's RESET ROLE returns to its default role, the owner)."""
    own = "t_" + tenant.replace("-", "_") + "_owner"
    return sorted({(r["who"], r["super"], r["escalated"]) for r in rows if r["who"] != own})


def _no_superuser(prefix: str, query=pg_admin) -> None:
    raised = [r["rolname"] for r in query("SELECT rolname FROM pg_roles WHERE rolsuper AND rolname LIKE $1",
                                          prefix + "%")]
    assert raised == [], f"roles made superuser during the load: {raised}"


def test_a_restored_dump_runs_tenant_code_as_no_superuser(backends, operator, cleanup_tenants):
    src, dst = "ldr-src", "ldr-dst"
    for name in (src, dst):
        _fresh(name)
    cleanup_tenants += [dst, src]
    kube.apply(_policy("arc-keep", "Archive", "24h"))  # the archive's data key is wrapped by the tenant's transit key
    kube.apply(tenant_yaml(src, lifecyclePolicyRef="arc-keep", **SERVICES))
    kubectl("wait", "--for=condition=Ready", f"tenant/{src}", "--timeout=90s", timeout=100)
    _plant(credentials(src))
    assert "spec.state=Archived" in plugin("archive", src)
    eventually(lambda: (get("tenant", src)["status"].get("archive") or {}).get("state") == "Released", 120, 1,
               "archive exported and live data released")
    archive_id = get("tenant", src)["status"]["archive"]["id"]
    _delete_and_wait(src)

    # A load role a killed operator left behind (expired): the next load drops it and makes its own.
    pg_admin("DROP ROLE IF EXISTS t_ldr_dst_load")
    pg_admin("CREATE ROLE t_ldr_dst_load LOGIN VALID UNTIL '2000-01-01'")
    kube.apply(tenant_yaml(dst, restoreFrom={"archive": archive_id}, **SERVICES))
    eventually(lambda: ((get("tenant", dst) or {}).get("status", {}).get("restore") or {}).get("state") == "Done",
               120, 0.5, "restore done")
    kubectl("wait", "--for=condition=Ready", f"tenant/{dst}", "--timeout=60s", timeout=70)
    rows = pg(credentials(dst), "SELECT who, super, escalated FROM seen")
    # evil() ran during the load (twice, one per row), as the load role: no superuser, nothing escalated.
    assert _seen_as(rows, src) == [("t_ldr_dst_load", False, "refused")], rows
    _no_superuser("t_ldr_")
    assert pg_admin("SELECT rolname FROM pg_roles WHERE rolname = 't_ldr_dst_load'") == [], "load role dropped"
    assert pg(credentials(dst), "SELECT count(*) AS n FROM payload")[0]["n"] == 2


def test_a_migrated_database_runs_tenant_code_as_no_superuser(target_pg, switchable, cleanup_tenants):  # noqa: F811
    name = f"ldm-{secrets.token_hex(3)}"
    cleanup_tenants.append(name)
    creds = _make_tenant(name, 10)
    _plant(creds)
    database = "t_" + name.replace("-", "_")
    seen: dict[str, list] = {}

    def on_target(sql: str, *args):
        async def go():
            conn = await asyncpg.connect(host="127.0.0.1", port=target_pg.port, user="postgres",
                                         password=target_pg.password, database=database, timeout=5)
            try:
                return await conn.fetch(sql, *args)
            finally:
                await conn.close()
        return asyncio.run(go())

    def copied() -> None:
        rows = on_target("SELECT who, super, escalated FROM seen")
        seen["load"] = _seen_as(rows, name)
        seen["roles"] = [r["rolname"] for r in on_target("SELECT rolname FROM pg_roles WHERE rolsuper AND rolname "
                                                         "LIKE $1", database + "%")]
        # What evil() wrote during the copy is not the source's: take it out so the verify step compares alike.
        on_target("DELETE FROM seen WHERE who <> $1", database + "_owner")

    started = time.monotonic()
    run = f"migrate-{name}"
    create_run(run, name, pause="copy")  # a WorkflowRun the operator runs, held after the copy
    with paused(switchable, run, "copy"):
        copied()
    status = finished(run)
    assert status["phase"] == "Succeeded", f"migration failed: {status.get('message')}"
    outputs = status["outputs"]
    kubectl("delete", "workflowrun", run, "-n", OPERATOR_NS, "--wait=false")
    assert seen["load"] == [(f"{database}_load", False, "refused")], seen
    assert seen["roles"] == [], seen
    assert on_target("SELECT rolname FROM pg_roles WHERE rolname = $1", f"{database}_load") == []
    print(f"\nmigrated with the payload in {time.monotonic() - started:.1f} s ({outputs.get('copySeconds')} s copy)")


@pytest.fixture(autouse=True)
def _no_superuser_left():
    """Whatever a failing run did, no tenant role of these tests stays superuser on the shared server."""
    yield
    for row in pg_admin("SELECT rolname FROM pg_roles WHERE rolsuper AND (rolname LIKE 't\\_ldr\\_%' "
                        "OR rolname LIKE 't\\_ldm\\_%')"):
        pg_admin(f'ALTER ROLE "{row["rolname"]}" NOSUPERUSER')
