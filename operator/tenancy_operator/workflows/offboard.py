"""The `offboard` workflow: suspend, archive, delete (operator namespace only; no parameters).

Steps:

1. `prepare`  refuse what would fail after the data is gone (nothing written): a protected tenant
              (its own or its LifecyclePolicy's deletionProtection: the API server would refuse the
              delete), one with no OpenBao backend (its transit key wraps the archive) or no archive
              store. Records `stateBefore` for the undo.
2. `suspend`  `spec.state: Suspended`, until the Tenant is Ready as Suspended (every door closed,
              workloads at 0, sessions cut): the archive is then a quiet copy. Undo: back to
              `stateBefore` (resume).
3. `archive`  `spec.state: Archived`: the Tenant handler exports, verifies, then releases the live data
              (handlers/archive_part.converge_archived); until `status.archive.state` is Released.
              Outputs `archive`, `location`, `bytes`, `expiresAt`. Undo: back to Suspended; when the
              export was complete (Exported or Released: the release may have begun), also
              `spec.restoreFrom: {archive, overwrite: true}`, so the resume of step 2's undo loads the
              data back from the archive.
4. `delete`   delete the Tenant and wait until it is gone. Its data is already released, so the
              teardown has Archive semantics whatever the LifecyclePolicy's reclaim says (it reuses
              the archive; the transit key wrapping it stays until the retention purge). No undo: last.

Restore brings it back: create the Tenant again (any name), then run `restore` with `archive`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..backends import archive_store
from ..reconcile import labels
from .archive import tenant_of
from .engine import Step, StepContext, StepFailed

__all__ = ["steps", "STEP_NAMES"]

STEP_NAMES = ("prepare", "suspend", "archive", "delete")
_TRANSIENT = ("WaitingForServices", "BackendUnavailable")


def _condition(tenant: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (tenant.get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


async def _set_spec(ctx: StepContext, patch: dict[str, Any]) -> None:
    await ctx.services.kube.merge_patch("Tenant", ctx.tenant, None, {"spec": patch})


async def _prepare(ctx: StepContext) -> dict[str, str]:
    tenant = await tenant_of(ctx)
    spec = tenant.get("spec") or {}
    if spec.get("deletionProtection"):
        raise StepFailed(f"Tenant {ctx.tenant} has spec.deletionProtection: the API server would refuse its "
                         "deletion; set it to false first")
    ref = spec.get("lifecyclePolicyRef")
    policy = await ctx.services.kube.get("LifecyclePolicy", ref) if ref else None
    if ((policy or {}).get("spec") or {}).get("deletionProtection"):
        raise StepFailed(f"LifecyclePolicy {ref} of Tenant {ctx.tenant} has deletionProtection: the API server "
                         "would refuse the deletion")
    if ((tenant.get("metadata") or {}).get("labels") or {}).get(labels.DELETION_PROTECTED) == "true":
        # The policy is gone (or the label not yet lifted): a missing policy never lifts protection.
        raise StepFailed(f"Tenant {ctx.tenant} carries the label {labels.DELETION_PROTECTED}=true (its LifecyclePolicy "
                         f"{ref or '(none)'} protected it and is missing now): the API server would refuse the "
                         "deletion; recreate the policy without deletionProtection, or point spec.lifecyclePolicyRef "
                         "at another policy or at none")
    if "vault" not in ((tenant.get("status") or {}).get("placement") or {}):
        raise StepFailed(f"Tenant {ctx.tenant} has no OpenBao backend placed: an archive's data key is wrapped by "
                         "the tenant's transit key; enable spec.vault first")
    try:
        archive_store.from_env()
    except archive_store.StoreError as exc:
        raise StepFailed(str(exc)) from exc
    return {"stateBefore": ctx.outputs.get("stateBefore") or spec.get("state", "Active")}


def _settled(tenant: dict[str, Any], phase: str) -> bool:
    status = tenant.get("status") or {}
    ready = _condition(tenant, "Ready")
    return (status.get("phase") == phase and ready.get("status") == "True"
            and status.get("observedGeneration", 0) >= tenant["metadata"].get("generation", 1))


async def _suspend(ctx: StepContext) -> dict[str, str]:
    tenant = await tenant_of(ctx)
    if (tenant.get("spec") or {}).get("state", "Active") == "Active":
        await _set_spec(ctx, {"state": "Suspended"})
    while not _settled(await tenant_of(ctx), "Suspended"):
        await asyncio.sleep(ctx.services.poll)
    return {}


async def _resume(ctx: StepContext) -> None:
    tenant = await ctx.services.kube.get("Tenant", ctx.tenant)
    before = ctx.outputs.get("stateBefore", "Active")
    if tenant is not None and (tenant.get("spec") or {}).get("state") == "Suspended" and before == "Active":
        await _set_spec(ctx, {"state": "Active"})


async def _archive(ctx: StepContext) -> dict[str, str]:
    tenant = await tenant_of(ctx)
    if (tenant.get("spec") or {}).get("state") != "Archived":
        await _set_spec(ctx, {"state": "Archived"})
    while True:
        tenant = await tenant_of(ctx)
        record = (tenant.get("status") or {}).get("archive") or {}
        if record.get("state") == "Released" and _settled(tenant, "Archived"):
            return {"archive": str(record["id"]), "location": str(record.get("location")),
                    "bytes": str(record.get("bytes")), "expiresAt": str(record.get("expiresAt"))}
        part, stalled = _condition(tenant, "ArchiveReady"), _condition(tenant, "Stalled")
        current = part.get("observedGeneration", 0) >= tenant["metadata"].get("generation", 1)
        if current and part.get("status") == "False" and stalled.get("status") == "True" \
                and part.get("reason") not in _TRANSIENT:
            raise StepFailed(f"Tenant {ctx.tenant} could not be archived ({part.get('reason')}): {part.get('message')}")
        await asyncio.sleep(ctx.services.poll)


async def _unarchive(ctx: StepContext) -> None:
    tenant = await ctx.services.kube.get("Tenant", ctx.tenant)
    if tenant is None:
        return
    record = (tenant.get("status") or {}).get("archive") or {}
    patch: dict[str, Any] = {"state": "Suspended"}
    if record.get("state") in ("Exported", "Released") and record.get("id"):
        patch["restoreFrom"] = {"archive": record["id"], "overwrite": True}
    if (tenant.get("spec") or {}).get("state") == "Archived":
        await _set_spec(ctx, patch)


async def _delete(ctx: StepContext) -> dict[str, str]:
    kube = ctx.services.kube
    if await kube.get("Tenant", ctx.tenant) is not None:
        await kube.delete("Tenant", ctx.tenant)
    while await kube.get("Tenant", ctx.tenant) is not None:
        await asyncio.sleep(ctx.services.poll)
    return {"deleted": ctx.tenant}


def steps(params: dict[str, str]) -> list[Step]:
    if params:
        raise ValueError(f"offboard takes no parameters, got {', '.join(sorted(params))}")
    return [
        Step("prepare", _prepare, timeout=30, retries=3),
        Step("suspend", _suspend, _resume, timeout=600, retries=1),
        Step("archive", _archive, _unarchive, timeout=3600, retries=0),
        Step("delete", _delete, timeout=600, retries=2, backoff=10),
    ]
