"""The `migrate-database` workflow: move a tenant's PostgreSQL database to another Backend.

Parameter `targetBackend`: the name of another `postgres` Backend. Steps, in order:

1. `freeze`   hold the tenant (`status.migration`, which the Tenant handler obeys: it leaves the
              database, the credentials Secret and the recorded placement alone while held), then
              CONNECTION LIMIT 0 on its login roles and end their sessions (see backends/postgres_move.py
              for why not a read-only default). Undo: limits back to spec.postgres.connectionLimit, hold off.
2. `copy`     provision the roles and database on the target as the adapter does (`postgres.ensure`,
              logins off), then pg_dump | pg_restore. Undo: drop everything of the tenant on the target.
3. `verify`   the freeze still holds, and per-table row counts and checksums (and sequences) are equal
              on both servers. Nothing to undo.
4. `switch`   `tenant-credentials` (PG*, DATABASE_URL) and `status.placement.postgres` move to the target.
              Undo: back to the source; if the target's data changed since `verify` (the tenant wrote
              after `unfreeze`), it is copied back first.
5. `unfreeze` the target's logins on (as the spec says), the hold off. Undo: hold and freeze the target.
6. `release`  drop the tenant's database and roles on the source: last, after verification, and the one
              step with no undo.

Outputs: sourceBackend, targetBackend, frozenAt, copySeconds, copyBytes, tools, verifiedTables,
verifiedRows, contentChecksum, writeFreezeSeconds (frozen until the target took writes), released.

Every Kubernetes write of these steps carries the field manager `tenancy-migrate-database` (in
managedFields and in the API server's audit log, where a test counts them: each happens once).

Test-only switches (fail a step, pause inside one) are per run, annotations on the WorkflowRun read
only by an operator started with `TENANCY_TEST_FAULTS=1`, which the chart never sets: workflows/faults.py
applies them to any workflow's steps; this module holds no test code.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import time
from typing import Any, Protocol

from ..api import names
from ..backends import postgres, postgres_move
from ..backends.base import Target, TenantSlice
from ..reconcile import placement
from ..reconcile.credentials import password_sha256
from .engine import Step, StepContext, StepFailed

__all__ = ["WORKFLOW", "steps", "MigrationServices", "MigrationRefused", "MigrationImpossible", "STEP_NAMES",
           "FIELD_MANAGER"]

WORKFLOW = "migrate-database"
STEP_NAMES = ("freeze", "copy", "verify", "switch", "unfreeze", "release")
SECRET = "tenant-credentials"
FIELD_MANAGER = "tenancy-migrate-database"
PG_KEYS = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "DATABASE_URL")


class Kube(Protocol):
    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...
    async def merge_patch(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any],
                          subresource: str | None = None, field_manager: str | None = None) -> dict[str, Any]: ...


class MigrationServices(Protocol):
    """What the steps need from the handler that runs them."""

    kube: Kube
    """get / merge_patch of plain-dict objects (backends.kube has exactly these)."""

    async def target(self, backend: str) -> Target:
        """The Backend's Target (endpoint and admin credentials); raises when it is missing."""

    async def quiesce(self, tenant: str) -> None:
        """Return once no Tenant pass that began before the hold was written is still running."""


class MigrationRefused(RuntimeError):
    """The migration cannot run as asked; the message says what a person can do."""


class MigrationImpossible(MigrationRefused, StepFailed):
    """A refusal no retry can change (no such target Backend, one of another engine, the tenant pinned or
    without PostgreSQL): a StepFailed, so the engine ends the step at once instead of retrying it."""

    def __init__(self, message: str) -> None:
        StepFailed.__init__(self, message)


async def _tenant(ctx: StepContext) -> dict[str, Any]:
    tenant = await ctx.services.kube.get("Tenant", ctx.tenant)
    if tenant is None:
        raise MigrationRefused(f"Tenant {ctx.tenant} does not exist")
    return tenant


async def _secret(ctx: StepContext) -> dict[str, str]:
    live = await ctx.services.kube.get("Secret", SECRET, names.namespace(ctx.tenant)) or {}
    return {k: base64.b64decode(v).decode() for k, v in (live.get("data") or {}).items()}


def _edited(tenant: dict[str, Any], password: str) -> bool:
    """The Secret's PGPASSWORD is not the one the operator gave (status keeps its SHA-256): a password
    written in by hand, which is never applied to a server (the Tenant handler rotates it instead)."""
    recorded = (((tenant.get("status") or {}).get("credentials") or {}).get("passwordSha256") or {}).get("postgres")
    return bool(recorded) and password_sha256(password) != recorded


def _edit_refused(tenant: str) -> MigrationRefused:
    return MigrationRefused(f"the PGPASSWORD in Secret {SECRET} of tenant {tenant} was edited by hand and is "
                            "never applied; the tenant's next pass rotates it: run the migration after that")


async def _slice(ctx: StepContext, tenant: dict[str, Any], *, suspended: bool, undoing: bool = False) -> TenantSlice:
    """The tenant as the adapter sees it, with the slot and password the Secret holds now.

    A password edited by hand in the Secret is refused (MigrationRefused) on the way forward; while
    `undoing`, the password is left empty instead, so the servers keep the verifiers they hold."""
    data = await _secret(ctx)
    slot = ((tenant.get("status") or {}).get("credentials") or {}).get("slot") or data.get("PGUSER", "_a")[-1]
    if not data.get("PGPASSWORD"):
        raise MigrationRefused(f"Secret {SECRET} of tenant {ctx.tenant} holds no PGPASSWORD yet; "
                               "wait until the tenant is Ready")
    password = data["PGPASSWORD"]
    if _edited(tenant, password):
        if not undoing:
            raise _edit_refused(ctx.tenant)
        password = ""
    return TenantSlice(tenant=ctx.tenant, namespace=names.namespace(ctx.tenant), uid=tenant["metadata"]["uid"],
                       password=password, slot=slot, suspended=suspended,
                       connection_limit=_limit(tenant))


def _limit(tenant: dict[str, Any]) -> int:
    return int(((tenant.get("spec") or {}).get("postgres") or {}).get("connectionLimit", 20))


def _state(tenant: dict[str, Any]) -> str:
    return (tenant.get("spec") or {}).get("state", "Active")


async def _set_hold(ctx: StepContext, on: bool) -> None:
    """Write (or clear) `status.migration`; never touches another run's hold."""
    tenant = await _tenant(ctx)
    hold = (tenant.get("status") or {}).get("migration")
    if hold and hold.get("run") != ctx.run:
        raise MigrationRefused(f"WorkflowRun {hold.get('run')} holds tenant {ctx.tenant} (migrating to "
                               f"{hold.get('targetBackend')}); wait for it to finish")
    if on and not hold:
        value = {"run": ctx.run, "targetBackend": ctx.params["targetBackend"],
                 "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        await ctx.services.kube.merge_patch("Tenant", ctx.tenant, None, {"status": {"migration": value}}, "status",
                                            FIELD_MANAGER)
    elif not on and hold:
        await ctx.services.kube.merge_patch("Tenant", ctx.tenant, None, {"status": {"migration": None}}, "status",
                                            FIELD_MANAGER)
    if on:
        await ctx.services.quiesce(ctx.tenant)


def _source(ctx: StepContext, tenant: dict[str, Any]) -> str:
    return ctx.outputs.get("sourceBackend") or ((tenant.get("status") or {}).get("placement") or {}).get("postgres", "")


async def _point_at(ctx: StepContext, backend: str, target: Target, slot: str, password: str) -> None:
    """The Secret's PostgreSQL keys and `status.placement.postgres` (with endpoints and the summary) to `backend`."""
    data = await _secret(ctx)
    found = postgres.endpoints(target, ctx.tenant, slot, password or data.get("PGPASSWORD", ""))
    if not password:  # undoing after a hand edit: PGPASSWORD stays as it is; the Tenant handler rotates it
        found.pop("PGPASSWORD", None)
    if any(data.get(k) != v for k, v in found.items()):
        await ctx.services.kube.merge_patch(
            "Secret", SECRET, names.namespace(ctx.tenant), {"data": {k: base64.b64encode(v.encode()).decode()
                                                                     for k, v in found.items()}},
            field_manager=FIELD_MANAGER)
    tenant = await _tenant(ctx)
    status = tenant.get("status") or {}
    placement = {**(status.get("placement") or {}), "postgres": backend}
    public = {k: v for k, v in found.items() if k not in ("PGPASSWORD", "DATABASE_URL")}
    wanted = {"placement": placement, "endpoints": {**(status.get("endpoints") or {}), **public},
              "backends": " ".join(f"{s}={b}" for s, b in sorted(placement.items()) if b)}
    if any(status.get(k) != v for k, v in wanted.items()):
        await ctx.services.kube.merge_patch("Tenant", ctx.tenant, None, {"status": wanted}, "status", FIELD_MANAGER)


# --- 1. freeze -------------------------------------------------------------------------------------

async def freeze(ctx: StepContext) -> dict[str, str]:
    tenant = await _tenant(ctx)
    spec, status = tenant.get("spec") or {}, tenant.get("status") or {}
    goal = ctx.params.get("targetBackend", "")
    source = _source(ctx, tenant)
    pinned = (spec.get("postgres") or {}).get("backend")
    if not (spec.get("postgres") or {}).get("enabled"):
        raise MigrationImpossible(f"tenant {ctx.tenant} has no PostgreSQL database (spec.postgres.enabled is false)")
    if not source:
        raise MigrationRefused(f"tenant {ctx.tenant} is not placed on a postgres Backend yet")
    if not goal or goal == source:
        raise MigrationImpossible(f"targetBackend must name another postgres Backend than {source}")
    if pinned:
        raise MigrationImpossible(f"spec.postgres.backend pins tenant {ctx.tenant} to {pinned}; remove that field "
                               "(the placement stays recorded in status) and run the migration again")
    if (status.get("credentials") or {}).get("pending"):
        raise MigrationRefused(f"a credential rotation of tenant {ctx.tenant} is under way; run the migration after it")
    if _edited(tenant, (await _secret(ctx)).get("PGPASSWORD") or ""):
        raise _edit_refused(ctx.tenant)  # before anything is written
    try:
        target = await ctx.services.target(goal)
    except LookupError as exc:  # no such Backend: waiting will not make one
        raise MigrationImpossible(f"targetBackend: {exc}") from exc
    if target.type != "postgres":
        raise MigrationImpossible(f"Backend {goal} is of type {target.type}, not postgres")
    hold = status.get("migration")
    if not (hold and hold.get("run") == ctx.run):
        await _accepts_new_tenant(ctx, goal)
        left = await postgres_move.objects_of(target, ctx.tenant)
        if left:
            raise MigrationImpossible(f"Backend {goal} already holds {', '.join(left)}; remove them before moving "
                                   f"tenant {ctx.tenant} there")
    await _set_hold(ctx, True)
    await postgres_move.freeze(await ctx.services.target(source), ctx.tenant)
    # Rerun after a kill: the freeze began at the first attempt, when the hold (just before it) was written.
    began = calendar.timegm(time.strptime(hold["since"], "%Y-%m-%dT%H:%M:%SZ")) if hold and hold.get(
        "run") == ctx.run and hold.get("since") else time.time()
    return {"sourceBackend": source, "targetBackend": goal, "frozenAt": ctx.outputs.get("frozenAt") or f"{began:.3f}"}


async def _accepts_new_tenant(ctx: StepContext, goal: str) -> None:
    """MigrationImpossible when Backend ``goal`` takes no new tenant (paused, or its last probe counted
    ``status.tenantsPlaced`` at its capacity), as placement holds a Tenant that names it."""
    backend = await ctx.services.kube.get("Backend", goal) or {}
    counted = int((backend.get("status") or {}).get("tenantsPlaced") or 0)
    refused = placement.refusal(placement.candidate(goal, backend, counted))
    if refused is not None:
        raise MigrationImpossible(f"targetBackend: {refused[1]}, or run the migration to another Backend")


async def thaw_source(ctx: StepContext) -> None:
    tenant = await _tenant(ctx)
    hold = (tenant.get("status") or {}).get("migration")
    if hold and hold.get("run") != ctx.run:
        return  # refused because another run holds the tenant: its freeze is not ours to lift
    source = _source(ctx, tenant)
    if source:
        await postgres_move.set_connection_limit(await ctx.services.target(source), ctx.tenant, _limit(tenant))
    await _set_hold(ctx, False)


# --- 2. copy ---------------------------------------------------------------------------------------

async def _provision(ctx: StepContext, target: Target) -> None:
    """Roles and database on `target` as the adapter makes them, logins off (nothing may write yet)."""
    want = await _slice(ctx, await _tenant(ctx), suspended=True)
    await postgres.ensure(target, want)


async def copy(ctx: StepContext) -> dict[str, str]:
    source = await ctx.services.target(ctx.outputs["sourceBackend"])
    target = await ctx.services.target(ctx.outputs["targetBackend"])
    why = await postgres_move.frozen(source, ctx.tenant)
    if why:
        raise MigrationRefused(f"tenant {ctx.tenant} is not frozen on {source.name}: {why}")
    if await postgres_move.database_exists(target, ctx.tenant):
        # A rerun after a kill: pg_restore runs in one transaction, so the target holds all of the
        # copy or none of it. All of it (equal contents of a frozen source that has any): keep it,
        # copying again would drop and re-create the database the killed run already made.
        found = await postgres_move.contents(source, ctx.tenant)
        if found and await postgres_move.contents(target, ctx.tenant) == found:
            return {"copyFound": f"the copy a killed run made on {target.name} is complete; not copied again"}
        # Else what an interrupted restore left is dropped: the copy starts from an empty database.
        await postgres_move.drop_database(target, ctx.tenant)
    await _provision(ctx, target)
    out = await postgres_move.copy(source, target, ctx.tenant)
    return out


async def remove_copy(ctx: StepContext) -> None:
    target = await ctx.services.target(ctx.outputs.get("targetBackend") or ctx.params["targetBackend"])
    tenant = await _tenant(ctx)
    await postgres.delete(target, ctx.tenant, tenant["metadata"]["uid"])


# --- 3. verify -------------------------------------------------------------------------------------

async def verify(ctx: StepContext) -> dict[str, str]:
    source = await ctx.services.target(ctx.outputs["sourceBackend"])
    target = await ctx.services.target(ctx.outputs["targetBackend"])
    why = await postgres_move.frozen(source, ctx.tenant)
    if why:
        raise MigrationRefused(f"the write freeze on {source.name} did not hold ({why}): the copy may miss writes")
    before, after = await asyncio.gather(postgres_move.contents(source, ctx.tenant),
                                         postgres_move.contents(target, ctx.tenant))
    if before != after:
        differ = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        raise MigrationRefused(f"the copy on {target.name} differs from {source.name} in {', '.join(differ[:10])}")
    tables = [k for k in before if k.startswith("table ")]
    return {"verifiedTables": str(len(tables)), "verifiedRows": str(sum(int(before[k].split(":")[0]) for k in tables)),
            "contentChecksum": postgres_move.digest(before)}


# --- 4. switch -------------------------------------------------------------------------------------

async def switch(ctx: StepContext) -> dict[str, str]:
    source = await ctx.services.target(ctx.outputs["sourceBackend"])
    target = await ctx.services.target(ctx.outputs["targetBackend"])
    if await postgres_move.database_exists(source, ctx.tenant):
        why = await postgres_move.frozen(source, ctx.tenant)
        if why:
            raise MigrationRefused(f"the write freeze on {source.name} did not hold ({why}); not switching")
    want = await _slice(ctx, await _tenant(ctx), suspended=True)
    await _point_at(ctx, target.name, target, want.slot, want.password)
    return {"switchedAt": f"{time.time():.3f}"}


async def switch_back(ctx: StepContext) -> None:
    source = await ctx.services.target(ctx.outputs["sourceBackend"])
    target = await ctx.services.target(ctx.outputs["targetBackend"])
    tenant = await _tenant(ctx)
    want = await _slice(ctx, tenant, suspended=True, undoing=True)
    there = await postgres_move.database_exists(target, ctx.tenant)
    changed = there and postgres_move.digest(await postgres_move.contents(target, ctx.tenant)) != ctx.outputs.get(
        "contentChecksum")
    if changed or not await postgres_move.database_exists(source, ctx.tenant):
        if not there:
            raise MigrationRefused(f"neither {source.name} nor {target.name} holds {names.pg_database(ctx.tenant)}")
        # The tenant wrote on the target since `verify`: bring that back, never lose it.
        await postgres_move.freeze(target, ctx.tenant)
        await postgres_move.drop_database(source, ctx.tenant)
        await postgres.ensure(source, await _slice(ctx, tenant, suspended=_state(tenant) != "Active", undoing=True))
        await postgres_move.freeze(source, ctx.tenant)
        await postgres_move.copy(target, source, ctx.tenant)
    await _point_at(ctx, source.name, source, want.slot, want.password)


# --- 5. unfreeze -----------------------------------------------------------------------------------

async def unfreeze(ctx: StepContext) -> dict[str, str]:
    target = await ctx.services.target(ctx.outputs["targetBackend"])
    tenant = await _tenant(ctx)
    await postgres.ensure(target, await _slice(ctx, tenant, suspended=_state(tenant) != "Active"))
    await _set_hold(ctx, False)
    frozen_at = float(ctx.outputs.get("frozenAt") or time.time())
    return {"writeFreezeSeconds": ctx.outputs.get("writeFreezeSeconds") or f"{time.time() - frozen_at:.2f}"}


async def refreeze(ctx: StepContext) -> None:
    await _set_hold(ctx, True)
    target = await ctx.services.target(ctx.outputs["targetBackend"])
    if await postgres_move.database_exists(target, ctx.tenant):
        await postgres.ensure(target, await _slice(ctx, await _tenant(ctx), suspended=True, undoing=True))
        await postgres_move.freeze(target, ctx.tenant)


# --- 6. release ------------------------------------------------------------------------------------

async def release(ctx: StepContext) -> dict[str, str]:
    tenant = await _tenant(ctx)
    placed = ((tenant.get("status") or {}).get("placement") or {}).get("postgres")
    if placed != ctx.outputs["targetBackend"] or not ctx.outputs.get("contentChecksum"):
        raise MigrationRefused(f"tenant {ctx.tenant} is placed on {placed}, not on the verified copy; "
                               "the source is kept")
    source = await ctx.services.target(ctx.outputs["sourceBackend"])
    done = await postgres.delete(source, ctx.tenant, tenant["metadata"]["uid"])
    return {"released": ", ".join(done) or f"nothing left on {source.name} (released before a restart)"}


def steps(params: dict[str, str]) -> list[Step]:
    """The six steps; `params["targetBackend"]` is checked by `freeze` (MigrationRefused names the problem)."""
    return [
        Step("freeze", freeze, thaw_source, timeout=120),
        Step("copy", copy, remove_copy, timeout=3600, retries=1),
        Step("verify", verify, None, timeout=3600, retries=1),
        Step("switch", switch, switch_back, timeout=120),
        Step("unfreeze", unfreeze, refreeze, timeout=120),
        Step("release", release, None, timeout=300),
    ]
