"""migrate-database on real servers: a tenant's PostgreSQL database moves from pg-main to a second real
PostgreSQL server, while the operator (a separate process, verifying every few seconds) keeps reconciling it.

The steps are driven here in order, as the saga engine runs them (a failing step, then the completed
steps' compensations in reverse, the failing one's included: compensations are idempotent), with the
operator's own WorkflowRun Services (admin kubeconfig) except `quiesce`, which waits out a pass of the
operator process instead of taking its in-process lock.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import asyncpg
import pytest
from tenancy_operator.backends import kube as kube_api
from tenancy_operator.backends import postgres
from tenancy_operator.handlers import workflow_run
from tenancy_operator.workflows import migrate_database as mig
from tenancy_operator.workflows.engine import StepContext

from . import kube
from .admin import pg_databases, pg_roles
from .backends_fixtures import backend, secret
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .pg_instance import PostgresInstance
from .tenant_clients import credentials

TARGET = "pg-mig-b"
POLICY = '{"apiVersion":"tenancy.dev/v1alpha1","kind":"LifecyclePolicy","metadata":{"name":"reclaim-delete"},' \
         '"spec":{"reclaim":"Delete"}}'


class Services(workflow_run.Services):
    async def quiesce(self, tenant: str) -> None:
        await asyncio.sleep(2.0)  # a Tenant pass takes well under a second; the operator verifies every 3 s


@pytest.fixture(scope="module")
def target_pg(backends, operator):
    """A second real PostgreSQL server and its Backend pg-mig-b; removed afterwards."""
    # Another module using this fixture (e2e/test_load_role.py) may have just deleted pg-mig-b: applying
    # it again while it is still terminating would find it gone a moment later.
    kubectl("wait", "--for=delete", f"backend/{TARGET}", "--timeout=90s", check=False, timeout=100)
    password = secrets.token_urlsafe(16)
    instance = PostgresInstance(port=kube.free_port(), password=password)
    instance.init()
    instance.start()
    kube.apply("\n---\n".join([secret(f"{TARGET}-admin", instance.operator_admin()),
                               backend(TARGET, "postgres", instance.port, f"{TARGET}-admin", capacity=5), POLICY]))
    kubectl("wait", "--for=condition=Ready", f"backend/{TARGET}", "--timeout=60s", timeout=70)
    yield instance
    kubectl("delete", "backend", TARGET, "--ignore-not-found", "--timeout=90s", check=False, timeout=100)
    instance.remove()


def _on_target(instance: PostgresInstance, sql: str, *args):
    async def go():
        conn = await asyncpg.connect(host="127.0.0.1", port=instance.port, user="postgres",
                                     password=instance.password, database="postgres", timeout=5)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()
    return asyncio.run(go())


def _tenant_contents(creds: dict[str, str]) -> dict[str, str]:
    """As the application: per table, rows and a checksum of the sorted rows' text (independent of the operator's)."""
    async def go():
        conn = await asyncpg.connect(host=creds["PGHOST"], port=int(creds["PGPORT"]), user=creds["PGUSER"],
                                     password=creds["PGPASSWORD"], database=creds["PGDATABASE"], timeout=5)
        try:
            out = {}
            for (table,) in await conn.fetch("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
                                             "ORDER BY 1"):
                out[table] = tuple(await conn.fetchrow(
                    f"SELECT count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM {table} AS r"))
            out["nextval"] = await conn.fetchval("SELECT last_value FROM accounts_id_seq")
            return out
        finally:
            await conn.close()
    return asyncio.run(go())


def _load(creds: dict[str, str], rows: int) -> None:
    """Three tables, `rows` rows in all (half, 40 %, 10 %), with text, numbers, times, JSON and bytes."""
    async def go():
        conn = await asyncpg.connect(host=creds["PGHOST"], port=int(creds["PGPORT"]), user=creds["PGUSER"],
                                     password=creds["PGPASSWORD"], database=creds["PGDATABASE"], timeout=5)
        try:
            await conn.execute(f"""
                CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL, balance numeric(12,2));
                CREATE TABLE events (id bigint PRIMARY KEY, account int REFERENCES accounts, at timestamptz, payload jsonb);
                CREATE TABLE blobs (k text PRIMARY KEY, v bytea, ratio double precision);
                INSERT INTO accounts (name, balance) SELECT 'acct ' || i, i * 1.25 FROM generate_series(1, {rows // 2}) i;
                INSERT INTO events SELECT i, 1 + i % {rows // 2}, timestamptz '2026-01-01' + i * interval '1 minute',
                    jsonb_build_object('i', i, 'tag', md5(i::text)) FROM generate_series(1, {rows * 4 // 10}) i;
                INSERT INTO blobs SELECT 'k' || i, decode(md5(i::text), 'hex'), i / 7.0
                    FROM generate_series(1, {rows - rows // 2 - rows * 4 // 10}) i;""")
        finally:
            await conn.close()
    asyncio.run(go())


def _make_tenant(name: str, rows: int) -> dict[str, str]:
    """A Ready tenant placed on pg-main (then unpinned: the placement stays recorded) holding `rows` rows."""
    kube.apply(tenant_yaml(name, postgres={"enabled": True, "backend": "pg-main"}, lifecyclePolicyRef="reclaim-delete"))
    kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=90s", timeout=100)
    kubectl("patch", "tenant", name, "--type=json", "-p", '[{"op":"remove","path":"/spec/postgres/backend"}]')
    creds = credentials(name)
    _load(creds, rows)
    return creds


async def _drive(name: str, after: dict | None = None) -> tuple[dict[str, str], BaseException | None, list[str]]:
    """Run the steps in order; on a failure, compensate what ran (the failing step too), in reverse.
    `after` maps a step name to a check run (in a thread) once that step succeeded."""
    ctx = StepContext(run=f"migrate-{name}", tenant=name, params={"targetBackend": TARGET}, outputs={},
                      services=Services(kube=kube_api, namespace="tenancy-system"))
    done: list[mig.Step] = []
    failure: BaseException | None = None
    compensated: list[str] = []
    try:
        for step in mig.steps(ctx.params):
            done.append(step)
            ctx.outputs.update(await asyncio.wait_for(step.run(ctx), step.timeout) or {})
            if step.name in (after or {}):
                await asyncio.to_thread(after[step.name])
    except Exception as exc:  # noqa: BLE001 - the engine's view: any failure compensates
        failure = exc
        for step in reversed(done):
            if step.compensate is not None:
                await step.compensate(ctx)
                compensated.append(step.name)
    finally:
        await postgres.close_all()
    return ctx.outputs, failure, compensated


def _target_holds(instance: PostgresInstance, name: str) -> list[str]:
    prefix = "t_" + name.replace("-", "_")
    return [r[0] for r in _on_target(instance, "SELECT datname FROM pg_database WHERE datname LIKE $1 UNION ALL "
                                               "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", prefix + "%")]


def _placed(name: str) -> str:
    return ((get("tenant", name) or {}).get("status") or {}).get("placement", {}).get("postgres", "")


def test_moves_100k_rows_to_another_server_and_the_operator_keeps_it_there(target_pg, cleanup_tenants):
    name = f"mig-{secrets.token_hex(3)}"
    cleanup_tenants.append(name)
    creds = _make_tenant(name, 100_000)
    before = _tenant_contents(creds)
    assert sum(v[0] for k, v in before.items() if k != "nextval") == 100_000

    seen: dict[str, str] = {}

    def frozen() -> None:
        began = time.monotonic()
        try:
            _tenant_contents(creds)
            seen["write"] = "the application still connects during the freeze"
        except asyncpg.PostgresError as exc:
            seen["write"] = type(exc).__name__
        # Verify passes of the operator run meanwhile; held, they say so and leave the database alone.
        time.sleep(4)
        seen["held"] = condition(get("tenant", name), "DatabaseReady").get("reason", "")
        pause.append(time.monotonic() - began)

    pause: list[float] = []

    outputs, failure, _ = asyncio.run(_drive(name, after={"freeze": frozen}))
    assert failure is None, f"migration failed: {failure!r}"
    print(f"\nmoved {outputs['verifiedRows']} rows in {outputs['verifiedTables']} tables: copy {outputs['copySeconds']} s "
          f"({int(outputs['copyBytes']) // 1024} KiB dump, tools {outputs['tools']}), write freeze "
          f"{outputs['writeFreezeSeconds']} s, of which {pause[0]:.2f} s this test's own checks while frozen")
    assert outputs["verifiedRows"] == "100000" and outputs["verifiedTables"] == "3"
    assert seen == {"write": "TooManyConnectionsError", "held": "Migrating"}, seen

    moved = credentials(name)  # the application re-reads its Secret
    assert (moved["PGPORT"], moved["PGUSER"], moved["PGPASSWORD"]) == (str(target_pg.port), creds["PGUSER"],
                                                                       creds["PGPASSWORD"])
    assert str(target_pg.port) in moved["DATABASE_URL"]
    assert _tenant_contents(moved) == before
    database = "t_" + name.replace("-", "_")
    assert pg_databases(database) == set() and pg_roles(database) == set(), "the source is released"
    # The operator's verify passes (every 3 s) take the recorded placement and leave it where it is.
    time.sleep(7)
    tenant = get("tenant", name)
    assert _placed(name) == TARGET and "migration" not in tenant["status"]
    eventually(lambda: condition(get("tenant", name), "Ready").get("status") == "True", 60, 1,
               "the moved tenant Ready on the target")
    assert TARGET in condition(get("tenant", name), "DatabaseReady")["message"]
    assert credentials(name) == moved
    assert _tenant_contents(credentials(name)) == before
    kubectl("delete", "tenant", name, "--timeout=60s", timeout=70)
    assert _target_holds(target_pg, name) == [], "reclaim Delete on the new backend removed everything"


@pytest.fixture(scope="module")
def small_tenant(target_pg):
    name = f"migf-{secrets.token_hex(3)}"
    creds = _make_tenant(name, 1_000)
    yield name, creds, _tenant_contents(creds)
    kubectl("delete", "tenant", name, "--ignore-not-found", "--timeout=60s", check=False, timeout=70)


@pytest.mark.parametrize("step", mig.STEP_NAMES)
def test_a_failing_step_leaves_the_tenant_as_before(step, small_tenant, target_pg, monkeypatch):
    name, creds, before = small_tenant
    monkeypatch.setenv("TENANCY_TEST_FAULTS", "1")
    monkeypatch.setenv("TENANCY_TEST_FAIL_STEP", f"migrate-database:{step}")
    started = time.monotonic()
    _, failure, compensated = asyncio.run(_drive(name))
    assert isinstance(failure, mig.InjectedFault), f"expected the injected fault, got {failure!r}"
    index = mig.STEP_NAMES.index(step)
    assert compensated == [s for s in reversed(mig.STEP_NAMES[:index + 1]) if s not in ("verify", "release")]
    tenant = get("tenant", name)
    assert _placed(name) == "pg-main" and "migration" not in tenant["status"], json.dumps(tenant["status"])[:500]
    assert credentials(name) == creds, "the Secret is as before"
    assert _tenant_contents(creds) == before, "the credentials work and the data is intact"
    assert _target_holds(target_pg, name) == [], "nothing is left on the target"
    eventually(lambda: condition(get("tenant", name), "Ready").get("status") == "True", 60, 1, "Ready again")
    print(f"\nfault at {step}: compensated {compensated} in {time.monotonic() - started:.1f} s")


def test_writes_on_the_target_come_back_when_the_move_is_undone(target_pg, cleanup_tenants, monkeypatch):
    """After `unfreeze` the application writes on the target; `release` then fails: undoing `switch`
    copies the target's data back to the source before pointing the tenant there again."""
    name = f"migw-{secrets.token_hex(3)}"
    cleanup_tenants.append(name)
    creds = _make_tenant(name, 500)
    monkeypatch.setenv("TENANCY_TEST_FAULTS", "1")
    monkeypatch.setenv("TENANCY_TEST_FAIL_STEP", "migrate-database:release")

    def write_on_target() -> None:
        moved = credentials(name)
        assert moved["PGPORT"] == str(target_pg.port)

        async def go():
            conn = await asyncpg.connect(host=moved["PGHOST"], port=int(moved["PGPORT"]), user=moved["PGUSER"],
                                         password=moved["PGPASSWORD"], database=moved["PGDATABASE"], timeout=5)
            try:
                await conn.execute("INSERT INTO accounts (name, balance) VALUES ('written after the switch', 1)")
            finally:
                await conn.close()
        asyncio.run(go())

    _, failure, compensated = asyncio.run(_drive(name, after={"unfreeze": write_on_target}))
    assert isinstance(failure, mig.InjectedFault) and compensated == ["unfreeze", "switch", "copy", "freeze"]
    assert _placed(name) == "pg-main" and credentials(name) == creds
    after = _tenant_contents(creds)
    assert after["accounts"][0] == 251 and after["nextval"] == 251, after
    assert _target_holds(target_pg, name) == []
