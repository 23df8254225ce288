"""migrate-database on real servers, as users run it: a WorkflowRun in the operator's namespace that the
running e2e operator executes, moving a tenant's PostgreSQL database from pg-main to a second real
PostgreSQL server while the operator (verifying every few seconds) keeps reconciling the tenant.

This module restarts the e2e operator with TENANCY_TEST_FAULTS=1 (the chart never sets it), so that the
runs' test-only annotations count (workflows/faults.py): `tenancy.dev/test-fail-step` fails step k of
that run only, `tenancy.dev/test-pause-step` holds a step after its side effects until this test removes
the pause file (the write freeze is observed there, without racing the run). The operator is restarted
as it was afterwards.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from tenancy_operator.workflows import faults
from tenancy_operator.workflows import migrate_database as mig

from . import kube
from .admin import pg_databases, pg_roles
from .backends_fixtures import backend, secret
from .kube import condition, eventually, get, kubectl, tenant_yaml
from .pg_instance import PostgresInstance
from .tenant_clients import credentials

TARGET = "pg-mig-b"
OPERATOR_NS = "tenancy-system"
POLICY = '{"apiVersion":"tenancy.dev/v1alpha1","kind":"LifecyclePolicy","metadata":{"name":"reclaim-delete"},' \
         '"spec":{"reclaim":"Delete"}}'


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


def create_run(run: str, tenant: str, *, fail: str = "", pause: str = "") -> None:
    """A migrate-database WorkflowRun to TARGET, as a platform engineer creates one; `fail` and `pause` name
    steps for the test-only switches (honoured only by an operator started with TENANCY_TEST_FAULTS=1)."""
    annotations = {k: v for k, v in ((faults.FAIL_STEP, fail), (faults.PAUSE_STEP, pause)) if v}
    body = {"apiVersion": "tenancy.dev/v1alpha1", "kind": "WorkflowRun",
            "metadata": {"name": run, "namespace": OPERATOR_NS, "annotations": annotations},
            "spec": {"tenant": tenant, "workflow": "migrate-database", "parameters": {"targetBackend": TARGET}}}
    kubectl("create", "-f", "-", input=json.dumps(body))


def run_status(run: str) -> dict:
    return (get("workflowrun", run, OPERATOR_NS) or {}).get("status") or {}


def finished(run: str, timeout: float = 180) -> dict:
    """The run's status once it is Succeeded, Failed or Cancelled."""
    eventually(lambda: run_status(run).get("phase") in ("Succeeded", "Failed", "Cancelled"), timeout, 0.5,
               f"WorkflowRun {run} finished")
    return run_status(run)


@pytest.fixture(scope="module")
def switchable(operator, tmp_path_factory) -> Iterator[Path]:
    """The e2e operator restarted with TENANCY_TEST_FAULTS=1 and a pause file (yielded); as before afterwards."""
    marker = tmp_path_factory.mktemp("migrate-pause") / "paused"
    saved = dict(operator.extra_env)
    operator.stop()
    operator.extra_env = {**saved, faults.ENABLED_BY: "1", faults.PAUSE_FILE: str(marker)}
    operator.start()
    try:
        yield marker
    finally:
        marker.unlink(missing_ok=True)
        operator.extra_env = saved
        operator.stop()
        operator.start()


@contextmanager
def paused(marker: Path, run: str, step: str) -> Iterator[None]:
    """Until the block ends, the run waits in `step` after its side effects (its pause annotation)."""
    try:
        eventually(marker.exists, 180, 0.2, f"WorkflowRun {run} paused in step {step}")
        assert marker.read_text() == step and run_status(run)["currentStep"] == step
        yield
    finally:
        marker.unlink(missing_ok=True)


def _phases(status: dict) -> dict[str, str]:
    return {s["name"]: s["phase"] for s in status.get("steps") or []}


def _target_holds(instance: PostgresInstance, name: str) -> list[str]:
    prefix = "t_" + name.replace("-", "_")
    return [r[0] for r in _on_target(instance, "SELECT datname FROM pg_database WHERE datname LIKE $1 UNION ALL "
                                               "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", prefix + "%")]


def _placed(name: str) -> str:
    return ((get("tenant", name) or {}).get("status") or {}).get("placement", {}).get("postgres", "")


def test_moves_100k_rows_to_another_server_and_the_operator_keeps_it_there(target_pg, switchable, cleanup_tenants):
    name = f"mig-{secrets.token_hex(3)}"
    cleanup_tenants.append(name)
    creds = _make_tenant(name, 100_000)
    before = _tenant_contents(creds)
    assert sum(v[0] for k, v in before.items() if k != "nextval") == 100_000
    run = f"migrate-{name}"
    started = time.monotonic()
    create_run(run, name, pause="freeze")

    def refused() -> str:
        try:
            _tenant_contents(creds)
            return "the application still connects during the freeze"
        except asyncpg.PostgresError as exc:
            return type(exc).__name__

    with paused(switchable, run, "freeze"):  # frozen and held; the run waits here until the block ends
        began = time.monotonic()
        first = refused()
        # The operator's verify passes (every 3 s) go on meanwhile: held, they say so and leave the database
        # alone (the freeze stands after them).
        held = eventually(lambda: condition(get("tenant", name), "DatabaseReady").get("reason") == "Migrating"
                          and (get("tenant", name)["status"].get("migration") or {}).get("run") == run, 30, 0.5,
                          "the Tenant's pass says it is held by the run")
        time.sleep(3.5)  # one more verify pass of the operator, which must not lift the freeze
        seen = {"write": first, "held": held, "after passes": refused()}
        own = time.monotonic() - began
    assert seen == {"write": "TooManyConnectionsError", "held": True, "after passes": "TooManyConnectionsError"}, seen

    status = finished(run, 600)
    took = time.monotonic() - started
    assert status["phase"] == "Succeeded", json.dumps(status)[:1500]
    assert set(_phases(status).values()) == {"Succeeded"}, _phases(status)
    outputs = status["outputs"]
    print(f"\nWorkflowRun {run} moved {outputs['verifiedRows']} rows in {outputs['verifiedTables']} tables in "
          f"{took:.1f} s: copy {outputs['copySeconds']} s ({int(outputs['copyBytes']) // 1024} KiB dump, tools "
          f"{outputs['tools']}), write freeze {outputs['writeFreezeSeconds']} s, of which {own:.2f} s this test's "
          "own checks while paused in freeze")
    assert outputs["verifiedRows"] == "100000" and outputs["verifiedTables"] == "3"
    assert float(outputs["writeFreezeSeconds"]) >= own, "the freeze lasted at least while the test saw it"

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
    kubectl("delete", "workflowrun", run, "-n", OPERATOR_NS, "--wait=false")
    kubectl("delete", "tenant", name, "--timeout=60s", timeout=70)
    assert _target_holds(target_pg, name) == [], "reclaim Delete on the new backend removed everything"


@pytest.fixture(scope="module")
def small_tenant(target_pg, switchable):
    name = f"migf-{secrets.token_hex(3)}"
    creds = _make_tenant(name, 1_000)
    yield name, creds, _tenant_contents(creds)
    kubectl("delete", "tenant", name, "--ignore-not-found", "--timeout=60s", check=False, timeout=70)


def _compensated_up_to(step: str) -> dict[str, str]:
    """Step phases of a run failed at `step`: those before it undone (verify's undo is nothing), the failing
    one undone too where it has an undo (it may have acted in part; undos are idempotent), the rest skipped."""
    undo = {s.name: s.compensate is not None for s in mig.steps({})}
    at = mig.STEP_NAMES.index(step)
    return {s: "Compensated" if i < at or (i == at and undo[s]) else "Failed" if i == at else "Skipped"
            for i, s in enumerate(mig.STEP_NAMES)}


@pytest.mark.parametrize("step", mig.STEP_NAMES)
def test_a_failing_step_leaves_the_tenant_as_before(step, small_tenant, target_pg, switchable):
    name, creds, before = small_tenant
    run = f"migf-{step}-{secrets.token_hex(2)}"
    started = time.monotonic()
    create_run(run, name, fail=step)
    status = finished(run)
    took = time.monotonic() - started
    assert status["phase"] == "Failed" and status["compensated"] is True, json.dumps(status)[:1500]
    assert _phases(status) == _compensated_up_to(step), _phases(status)
    failed = next(s for s in status["steps"] if s["name"] == step)
    assert failed["attempts"] == 1 and f"test fault injected at migrate-database:{step}" in status["message"], status
    assert condition(get("workflowrun", run, OPERATOR_NS), "Stalled").get("status") == "True"
    tenant = get("tenant", name)
    assert _placed(name) == "pg-main" and "migration" not in tenant["status"], json.dumps(tenant["status"])[:500]
    assert "tenancy.dev/workflow-run" not in (tenant["metadata"].get("annotations") or {}), "the lease is given up"
    assert credentials(name) == creds, "the Secret is as before"
    assert _tenant_contents(creds) == before, "the credentials work and the data is intact"
    assert _target_holds(target_pg, name) == [], "nothing is left on the target"
    eventually(lambda: condition(get("tenant", name), "Ready").get("status") == "True", 60, 1, "Ready again")
    kubectl("delete", "workflowrun", run, "-n", OPERATOR_NS, "--wait=false")
    print(f"\nfault at {step}: run Failed, {', '.join(f'{k} {v}' for k, v in _phases(status).items())}; "
          f"{took:.1f} s from create to the end of the run")


def test_writes_on_the_target_come_back_when_the_move_is_undone(target_pg, switchable, cleanup_tenants):
    """After `unfreeze` the application writes on the target; `release` then fails: undoing `switch`
    copies the target's data back to the source before pointing the tenant there again."""
    name = f"migw-{secrets.token_hex(3)}"
    cleanup_tenants.append(name)
    creds = _make_tenant(name, 500)
    run = f"migrate-{name}"
    create_run(run, name, pause="unfreeze", fail="release")
    with paused(switchable, run, "unfreeze"):
        moved = credentials(name)
        assert moved["PGPORT"] == str(target_pg.port)

        async def write() -> None:
            conn = await asyncpg.connect(host=moved["PGHOST"], port=int(moved["PGPORT"]), user=moved["PGUSER"],
                                         password=moved["PGPASSWORD"], database=moved["PGDATABASE"], timeout=5)
            try:
                await conn.execute("INSERT INTO accounts (name, balance) VALUES ('written after the switch', 1)")
            finally:
                await conn.close()
        asyncio.run(write())
    status = finished(run)
    assert status["phase"] == "Failed" and status["compensated"] is True, json.dumps(status)[:1500]
    assert _phases(status) == _compensated_up_to("release"), _phases(status)
    assert _placed(name) == "pg-main" and credentials(name) == creds
    after = _tenant_contents(creds)
    assert after["accounts"][0] == 251 and after["nextval"] == 251, after
    assert _target_holds(target_pg, name) == []
    kubectl("delete", "workflowrun", run, "-n", OPERATOR_NS, "--wait=false")


def test_a_tenants_search_path_never_runs_its_code_as_the_admin(small_tenant, target_pg, switchable):
    """The tenant owns its database and may set its defaults: `search_path = public, pg_catalog` put its own
    `md5(text)` in front of the catalog's in every session there, the admin's too (a migration's checksums
    call md5 as the admin). Shown first with a plain admin session, then a migration (undone after its
    verify step, so the checksums ran on both servers) must not run it."""
    name, creds, _ = small_tenant
    database = creds["PGDATABASE"]

    def tenant(sql: str):
        async def go():
            conn = await asyncpg.connect(host=creds["PGHOST"], port=int(creds["PGPORT"]), user=creds["PGUSER"],
                                         password=creds["PGPASSWORD"], database=database, timeout=5)
            try:
                return await conn.fetch(sql)
            finally:
                await conn.close()
        return asyncio.run(go())

    tenant("CREATE TABLE caught (who text)")
    try:
        tenant("GRANT INSERT ON caught TO PUBLIC")
        tenant("CREATE FUNCTION public.md5(text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN "
               "INSERT INTO public.caught VALUES (session_user); RETURN pg_catalog.md5($1); END $$")
        tenant(f'ALTER DATABASE "{database}" SET search_path = public, pg_catalog')
        from .admin import pg_admin
        pg_admin("SELECT md5('x')", database=database)  # a session without pinned settings runs the tenant's md5
        shown = [r["who"] for r in tenant("SELECT who FROM caught")]
        assert shown and shown[0] != creds["PGUSER"], shown
        tenant("DELETE FROM caught")

        run = f"migf-trap-{secrets.token_hex(2)}"
        create_run(run, name, fail="switch")
        status = finished(run)
        assert status["phase"] == "Failed" and status["compensated"] is True, json.dumps(status)[:1000]
        assert _phases(status) == _compensated_up_to("switch"), _phases(status)  # verify (the checksums) ran
        assert [r["who"] for r in tenant("SELECT who FROM caught")] == [], "the tenant's md5 ran in an admin session"
        kubectl("delete", "workflowrun", run, "-n", OPERATOR_NS, "--wait=false")
    finally:  # the tenant is shared with the fault tests, whose contents check must not see the trap
        tenant(f'ALTER DATABASE "{database}" RESET search_path')
        tenant("DROP FUNCTION IF EXISTS public.md5(text)")
        tenant("DROP TABLE IF EXISTS caught")
