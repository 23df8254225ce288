"""The `export` and `restore` workflows, on the lifecycle archive (handlers/archive_part.py does the work).

`export` (no parameters; tenant-safe): a copy for safekeeping; the tenant stays as it is (Active and
Ready, its live data untouched). Steps:

1. `reserve-id`  choose the archive id (`<tenant>-<UTC time>-<6 hex>`) and record it in the run's
                 outputs before anything is written, so a run killed mid-export reuses that id: the
                 export is redone under it (its staging folder made anew) or, when it was already
                 published, adopted. A rerun never makes a second archive. Refuses a tenant whose live
                 data is already released (state Archived: its archive is in `status.archive`).
2. `export`      export, verify and publish that archive (`services.export_archive`: the same code as
                 `spec.state: Archived`, without the release). Outputs `archive`, `location`, `bytes`,
                 `expiresAt` (the LifecyclePolicy's retention purges it as any other archive).
                 Undo: delete the archive folder (and a staging folder of it).

`restore` (parameters `archive`, optional `overwrite`: true|false; operator namespace only): loads an
archive into the run's Tenant, which must exist and be Active. Steps:

1. `check-archive`   the archive is in the store with a readable manifest (else nothing is written).
2. `request-restore` set the Tenant's `spec.restoreFrom: {archive, overwrite}`; the Tenant handler
                     verifies every file and the data key before writing (see archive_part.restore).
                     Undo: take `spec.restoreFrom` off again when it still names this archive and no
                     write began (`status.restore` is not Loading or Done for it), so a refused or
                     tampered restore leaves the Tenant as it was. When writes began (a failure
                     midway, such as a backend outage past the step's timeout), it stays: the Tenant
                     handler finishes the load when it can (it redoes the load, as those writes were
                     its own), and the run says Failed meanwhile.
3. `wait-restored`   until `status.restore` says Done for this archive; fails at once, with the
                     Tenant's reason and message (ArchiveTampered naming the file, RestoreRefused...),
                     when the Tenant is Stalled on the restore. Outputs `restoredAt`, `restoreSeconds`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..backends import archive_store
from .engine import Step, StepContext, StepFailed

__all__ = ["export_steps", "restore_steps", "EXPORT_STEPS", "RESTORE_STEPS", "tenant_of", "archive_failure",
           "remove_archive", "restore_condition"]

EXPORT_STEPS = ("reserve-id", "export")
RESTORE_STEPS = ("check-archive", "request-restore", "wait-restored")
RESTORE_CONDITION = "RestoreReady"


async def tenant_of(ctx: StepContext) -> dict[str, Any]:
    tenant = await ctx.services.kube.get("Tenant", ctx.tenant)
    if tenant is None:
        raise StepFailed(f"Tenant {ctx.tenant} does not exist")
    return tenant


def archive_failure(exc: Exception) -> Exception:
    """An archive error a retry cannot fix becomes the step's verdict (reason: message); others retry."""
    if getattr(exc, "needs_person", False):
        return StepFailed(f"{getattr(exc, 'reason', type(exc).__name__)}: {getattr(exc, 'message', exc)}")
    return exc


def _store() -> archive_store.DirectoryStore:
    try:
        return archive_store.from_env()
    except archive_store.StoreError as exc:
        raise StepFailed(str(exc)) from exc


def remove_archive(archive_id: str) -> None:
    """Delete archive `archive_id` and any staging folder of it (idempotent)."""
    store = archive_store.from_env()
    store.delete(archive_id)
    store.clean_staging(archive_id=archive_id)


async def _reserve(ctx: StepContext) -> dict[str, str]:
    tenant = await tenant_of(ctx)
    _store()
    record = (tenant.get("status") or {}).get("archive") or {}
    if record.get("state") == "Released":
        raise StepFailed(f"Tenant {ctx.tenant} is archived: its live data was released into archive "
                         f"{record.get('id')}; there is nothing live to export")
    return {"archive": ctx.outputs.get("archive") or archive_store.new_id(ctx.tenant)}


async def _export(ctx: StepContext) -> dict[str, str]:
    try:
        record = await ctx.services.export_archive(ctx.tenant, ctx.outputs["archive"])
    except Exception as exc:  # noqa: BLE001 - sorted into a verdict or a retry
        raise archive_failure(exc) from exc
    return {"archive": record["id"], "location": record["location"], "bytes": str(record["bytes"]),
            "expiresAt": record["expiresAt"]}


async def _unexport(ctx: StepContext) -> None:
    if ctx.outputs.get("archive"):
        remove_archive(ctx.outputs["archive"])


def export_steps(params: dict[str, str]) -> list[Step]:
    if params:
        raise ValueError(f"export takes no parameters, got {', '.join(sorted(params))}")
    return [
        Step("reserve-id", _reserve, timeout=30, retries=3),
        Step("export", _export, _unexport, timeout=3600, retries=2, backoff=10),
    ]


def restore_condition(tenant: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in (tenant.get("status") or {}).get("conditions") or [] if c.get("type") == RESTORE_CONDITION),
                {})


async def _check_archive(ctx: StepContext) -> dict[str, str]:
    archive_id = ctx.params["archive"]
    try:
        manifest = _store().manifest(archive_id)
    except archive_store.StoreError as exc:
        raise StepFailed(f"{exc}; nothing was written") from exc
    return {"archive": archive_id, "archivedTenant": str(manifest.get("tenant")),
            "archivedAt": str(manifest.get("createdAt"))}


async def _request_restore(ctx: StepContext) -> dict[str, str]:
    tenant = await tenant_of(ctx)
    state = (tenant.get("spec") or {}).get("state", "Active")
    if state != "Active":
        raise StepFailed(f"Tenant {ctx.tenant} is {state}: a restore loads into an Active tenant; set spec.state: "
                         "Active first")
    wanted = {"archive": ctx.params["archive"], "overwrite": ctx.params.get("overwrite") == "true"}
    if (tenant.get("spec") or {}).get("restoreFrom") != wanted:
        await ctx.services.kube.merge_patch("Tenant", ctx.tenant, None, {"spec": {"restoreFrom": wanted}})
    return {}


async def _unrequest_restore(ctx: StepContext) -> None:
    tenant = await ctx.services.kube.get("Tenant", ctx.tenant)
    if tenant is None:
        return
    done = (tenant.get("status") or {}).get("restore") or {}
    if done.get("archive") == ctx.params["archive"] and done.get("state") in ("Loading", "Done"):
        return  # writes began: the Tenant handler finishes them; taking the request off would leave half a load
    if ((tenant.get("spec") or {}).get("restoreFrom") or {}).get("archive") == ctx.params["archive"]:
        await ctx.services.kube.merge_patch("Tenant", ctx.tenant, None, {"spec": {"restoreFrom": None}})


async def _wait_restored(ctx: StepContext) -> dict[str, str]:
    archive_id = ctx.params["archive"]
    while True:
        tenant = await tenant_of(ctx)
        status = tenant.get("status") or {}
        done = status.get("restore") or {}
        if done.get("archive") == archive_id and done.get("state") == "Done":
            return {"restoredAt": str(done.get("restoredAt")), "restoreSeconds": str(done.get("seconds"))}
        part = restore_condition(tenant)
        stalled = next((c for c in status.get("conditions") or [] if c.get("type") == "Stalled"), {})
        current = part.get("observedGeneration", 0) >= tenant["metadata"].get("generation", 1)
        if current and part.get("status") == "False" and stalled.get("status") == "True" \
                and part.get("reason") not in ("WaitingForServices", "BackendUnavailable"):
            raise StepFailed(f"Tenant {ctx.tenant} refused the restore ({part.get('reason')}): {part.get('message')}")
        await asyncio.sleep(ctx.services.poll)


def restore_steps(params: dict[str, str]) -> list[Step]:
    unknown = sorted(set(params) - {"archive", "overwrite"})
    if unknown:
        raise ValueError(f"restore takes the parameters archive and overwrite, not {', '.join(unknown)}")
    if not params.get("archive"):
        raise ValueError("restore needs the parameter archive (an archive id; kubectl tenant archives lists them)")
    try:
        archive_store.valid_id(params["archive"])
    except archive_store.StoreError as exc:
        raise ValueError(f"parameter archive: {exc}") from exc
    if params.get("overwrite", "false") not in ("true", "false"):
        raise ValueError(f"parameter overwrite is true or false, not {params['overwrite']!r}")
    return [
        Step("check-archive", _check_archive, timeout=30, retries=3),
        Step("request-restore", _request_restore, _unrequest_restore, timeout=30, retries=5),
        Step("wait-restored", _wait_restored, timeout=3600, retries=0),
    ]
