"""Archive and restore of one tenant (ArchiveReady, RestoreReady): the kopf-side glue.

Archive (spec.state Archived, or reclaim Archive on delete): doors closed first, then export,
verify, and only then release the live data as Delete does (the transit key that wraps the archive's
data key stays). `status.archive` records the archive (`id`, `location`, `createdAt`, `expiresAt`,
`bytes`) and its `state`: `Exported` (the archive is complete, the live data may still be there),
`Released` (the live data is gone), `Superseded` (the tenant is Active again, so the archive no longer
holds its current data). It is written right after the export, so an export is never made twice for
one archive step, and a release killed halfway is finished by the next pass without a new export.

Restore (spec.restoreFrom): once every service is provisioned, the whole archive is verified (see
backends/archive.py: the manifest's tenant, id, wrapping key and that key's owner record agree,
backends/archive_checks.py and archive_restore.py, then every file) and every name its parts would
write is checked to stay in this tenant's own place, all before anything is written; a target that
already holds data is refused unless `overwrite: true`. `status.restore` records `Loading` before
the first write (a crash mid-load is redone with overwrite, as those writes were ours) and `Done`
after, so a restore never runs twice.

Progress: while an archive or restore runs, `status.archive` / `status.restore` carry `bytesDone`
and `bytesTotal` (see backends/archive.Progress), written at most once every
TENANCY_ARCHIVE_PROGRESS_INTERVAL seconds (default 5) and only when they changed; the final record
has them equal. Nothing is written between jobs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from ..api.common import parse_duration
from ..api.tenant import TenantSpec
from ..backends import (
    archive,
    archive_checks,
    archive_store,
    kube,
    kube_export,
    registry,
)
from ..backends.archive_crypto import Tampered
from ..backends.base import BackendRefused, BackendUnavailable, Target
from ..reconcile.status import PartResult
from . import archive_restore, audit_trail, credentials_part, events, services_part
from .archive_progress import ProgressWriter, estimates
from .targets import TargetError, target_for

__all__ = ["ARCHIVE_CONDITION", "RESTORE_CONDITION", "ArchiveError", "fresh_status", "current", "released", "make", "export", "release",
           "archive_for_delete", "has_archives", "converge_archived", "restore", "seconds", "steps"]

ARCHIVE_CONDITION = "ArchiveReady"
RESTORE_CONDITION = "RestoreReady"
ARCHIVED_SERVICES = ("postgres", "redis", "vault", "mongodb", "search")
KUBERNETES = Target(name="kubernetes", type="kubernetes", host="", port=0)
"""The tenant namespace's ConfigMaps are a part of every archive (backends/kube_export)."""


class ArchiveError(Exception):
    """An archive step cannot go on. `needs_person`: retrying alone will not help (Stalled)."""

    def __init__(self, reason: str, message: str, needs_person: bool) -> None:
        super().__init__(message)
        self.reason, self.message, self.needs_person = reason, message, needs_person


def seconds(duration: str) -> float:
    return parse_duration(duration).total_seconds()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


async def fresh_status(name: str) -> dict[str, Any]:
    return ((await kube.get("Tenant", name)) or {}).get("status") or {}


def released(status: Any) -> bool:
    return ((status or {}).get("archive") or {}).get("state") == "Released"


async def current(name: str) -> dict[str, Any] | None:
    """The archive that holds the tenant's current data (Exported or Released, and still in the store)."""
    record = (await fresh_status(name)).get("archive") or {}
    if record.get("state") not in ("Exported", "Released"):
        return None
    try:
        archive_store.from_env().manifest(record["id"])
    except archive_store.StoreError:
        return None
    return record


def has_archives(name: str, uid: str) -> bool:
    """Does the store hold an archive of the Tenant `uid` named `name` (not of an earlier one of that
    name, whose archives are wrapped by a key of its own)?"""
    try:
        store = archive_store.from_env()
        return any(a.startswith(f"{name}-") and (m := store.manifest(a)).get("tenant") == name
                   and m.get("tenantUid") in (uid, None) for a in store.list())
    except archive_store.StoreError:
        return False


async def _targets(placement: dict[str, str], known: dict[str, dict[str, Any]]) -> dict[str, Target]:
    out: dict[str, Target] = {}
    for service in ARCHIVED_SERVICES:
        backend_name = placement.get(service)
        if not backend_name:
            continue
        backend = known.get(backend_name)
        if backend is None:
            raise ArchiveError("BackendGone", f"Backend {backend_name} ({service}) no longer exists; its data "
                                              "cannot be archived", True)
        try:
            out[service] = await target_for(backend)
        except TargetError as exc:
            raise ArchiveError("AdminSecretMissing", str(exc), True) from exc
    return out


async def _policy(ref: str | None) -> tuple[str, str]:
    retention = "720h"
    if ref:
        policy = await kube.get("LifecyclePolicy", ref)
        retention = ((policy or {}).get("spec") or {}).get("retention", retention)
    return ref or "", retention


def _backend_error(exc: Exception, what: str) -> ArchiveError:
    if isinstance(exc, BackendUnavailable):
        return ArchiveError("BackendUnavailable", f"{what}: {exc}", False)
    if isinstance(exc, archive_store.StoreError):
        return ArchiveError("ArchiveStoreUnavailable", f"{what}: {exc}", True)
    if isinstance(exc, archive_checks.Mismatch):
        return ArchiveError("ArchiveMismatch", f"{what}: {exc}; refused before its data key was unwrapped, "
                                               "nothing was written", True)
    if isinstance(exc, archive_checks.Unsafe):
        return ArchiveError("ArchiveUnsafe", f"{what}: {exc}", True)
    if isinstance(exc, Tampered):
        return ArchiveError("ArchiveTampered", f"{what}: archive file {exc}; nothing was written", True)
    if isinstance(exc, (BackendRefused, OSError)):
        return ArchiveError("ArchiveFailed", f"{what}: {exc}", True)
    return ArchiveError("ArchiveFailed", f"{what}: {type(exc).__name__}: {exc}", True)


async def _export_targets(name: str, placement: dict[str, str], known: dict[str, dict[str, Any]]) -> dict[str, Target]:
    targets = await _targets(placement, known)
    if "vault" not in targets:
        raise ArchiveError("ArchiveNeedsVault", f"Tenant {name} has no OpenBao backend placed: an archive's data "
                                                "key is wrapped by the tenant's transit key; enable spec.vault", True)
    return {**targets, "kubernetes": KUBERNETES}


async def make(name: str, uid: str, spec: dict[str, Any], placement: dict[str, str],
               known: dict[str, dict[str, Any]], archive_id: str, logger: logging.Logger,
               progress: archive.Progress | None = None, requested_by: str = "") -> dict[str, Any]:
    """Export, verify and publish archive `archive_id` of the live tenant; writes no Tenant status.

    An archive of that id already published (an earlier attempt killed after publishing) is adopted,
    never made twice; a staging folder of it is made anew. Returns the record `{id, location,
    createdAt, expiresAt, bytes}` (and `bytesDone`/`bytesTotal` when `progress` is given). Raises
    ArchiveError (reason, message, needs_person)."""
    progress = progress or archive.Progress()
    try:
        store = archive_store.from_env()
        archive_store.valid_id(archive_id)
        targets = await _export_targets(name, placement, known)
        policy, retention = await _policy(spec.get("lifecyclePolicyRef"))
        now = _now()
        started = time.monotonic()
        if archive_id in store.list():
            manifest = store.manifest(archive_id)
            now = datetime.strptime(manifest["createdAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            retention = manifest.get("retention") or retention
            progress.add(sum(int(e.get("plainSize") or 0) for e in (manifest.get("files") or {}).values()))
            logger.info("archive %s of %s was published by an earlier attempt; adopted", archive_id, name)
        else:
            await archive.export(store, archive.Export(
                archive_id=archive_id, tenant=name, uid=uid, spec=spec, created_at=_iso(now),
                expires_at=_iso(now + timedelta(seconds=seconds(retention))), retention=retention,
                policy=policy or None, targets=targets, progress=progress,
                estimates=await estimates(targets, name), requested_by=requested_by))
    except ArchiveError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is reported, named
        raise _backend_error(exc, f"archive of {name}") from exc
    record = {"id": archive_id, "location": f"{store.location}/{archive_id}", "createdAt": _iso(now),
              "expiresAt": _iso(now + timedelta(seconds=seconds(retention))), "bytes": store.size(archive_id)}
    if progress.total:
        record |= {"bytesDone": progress.total, "bytesTotal": progress.total}
    logger.info("archived %s as %s (%d bytes, %.1f s)", name, archive_id, record["bytes"], time.monotonic() - started)
    return record


async def export(name: str, uid: str, spec: dict[str, Any], placement: dict[str, str],
                 known: dict[str, dict[str, Any]], logger: logging.Logger) -> dict[str, Any]:
    """Export, verify and publish an archive; records it in status.archive (state Exported)."""
    try:
        store = archive_store.from_env()
    except archive_store.StoreError as exc:
        raise _backend_error(exc, f"archive of {name}") from exc
    await _export_targets(name, placement, known)
    for gone in store.clean_staging(tenant=name):
        logger.info("removed %s, an export of %s that never finished", gone, name)
    # The id is recorded (state Exporting) before the export: a process killed after publishing
    # but before recording it finds its archive here and adopts it instead of making a second one.
    pending = (await fresh_status(name)).get("archive") or {}
    archive_id = pending.get("id") if pending.get("state") == "Exporting" else None
    if not archive_id:
        archive_id = archive_store.new_id(name)
        await kube.merge_patch("Tenant", name, None, {"status": {"archive": {
            "id": archive_id, "state": "Exporting", "location": None, "createdAt": None, "expiresAt": None,
            "bytes": None}}}, "status")
    progress = archive.Progress()
    async with ProgressWriter(name, "archive", progress):
        made = await make(name, uid, spec, placement, known, archive_id, logger, progress)
    record = {**made, "state": "Exported"}
    await kube.merge_patch("Tenant", name, None, {"status": {"archive": record}}, "status")
    return record


async def release(name: str, uid: str, placement: dict[str, str], known: dict[str, dict[str, Any]],
                  logger: logging.Logger) -> list[str]:
    """Delete the live backend data (as reclaim Delete), keeping the transit key that wraps the archive."""
    done: list[str] = []
    for service, target in sorted((await _targets(placement, known)).items()):
        adapter = registry.adapter(service)
        try:
            with audit_trail.acting_as("archive"):  # the live data goes because it is archived
                if service == "vault":
                    done += await adapter.delete(target, name, uid, keep_transit_key=True)
                else:
                    done += await adapter.delete(target, name, uid)
        except Exception as exc:  # noqa: BLE001
            raise _backend_error(exc, f"releasing {service} of {name} on {target.name}") from exc
    for cm in await kube_export.user_configmaps(name):
        await kube.delete("ConfigMap", cm["metadata"]["name"], cm["metadata"]["namespace"])
        done.append(f"ConfigMap {cm['metadata']['name']}")
    logger.info("released live data of %s: %s", name, ", ".join(done) or "nothing left")
    return done


async def archive_for_delete(body: kopf.Body, placement: dict[str, str], known: dict[str, dict[str, Any]],
                             logger: logging.Logger) -> dict[str, Any]:
    """reclaim Archive: close every door, export (unless an archive of the current data exists)."""
    name = body.metadata["name"]
    existing = await current(name)
    if existing:
        return existing
    for service, target in sorted((await _targets(placement, known)).items()):
        try:
            await registry.adapter(service).close(target, name)
        except Exception as exc:  # noqa: BLE001
            raise _backend_error(exc, f"closing {service} of {name} before its archive") from exc
    record = await export(name, body.metadata["uid"], dict(body.spec or {}), placement, known, logger)
    events.post(body, type="Normal", reason="Archived",
                message=f"archive {record['id']} ({record['bytes']} bytes) at {record['location']}, kept until "
                       f"{record['expiresAt']}; now deleting the live data")
    return record


async def converge_archived(name: str, uid: str, body: kopf.Body, placement: dict[str, str],
                            known: dict[str, dict[str, Any]], logger: logging.Logger) -> tuple[PartResult, dict]:
    """spec.state Archived, doors already closed by this pass: export, verify, release. (part, status.archive)"""
    try:
        fresh = (await fresh_status(name)).get("archive") or {}
        record = fresh if fresh.get("state") == "Released" else await current(name)
        if record is None:
            record = await export(name, uid, dict(body.spec or {}), placement, known, logger)
            events.post(body, type="Normal", reason="Archived",
                        message=f"archive {record['id']} ({record['bytes']} bytes) at {record['location']}")
        if record["state"] != "Released":
            await release(name, uid, placement, known, logger)
            record = {**record, "state": "Released"}
            await kube.merge_patch("Tenant", name, None, {"status": {"archive": record}}, "status")
    except ArchiveError as exc:
        return PartResult(ARCHIVE_CONDITION, False, exc.reason, exc.message, stalled=exc.needs_person), {}
    return PartResult(ARCHIVE_CONDITION, True, "Archived",
                      f"archived as {record['id']} at {record['location']} (kept until {record['expiresAt']}); "
                      "live backend data released"), record


async def restore(name: str, tenant: TenantSpec, body: kopf.Body, placement: dict[str, str],
                  known: dict[str, dict[str, Any]], logger: logging.Logger) -> tuple[PartResult, dict]:
    """spec.restoreFrom, after every service is ready. (part, status.restore)"""
    asked = tenant.restore_from
    assert asked is not None
    fresh = await fresh_status(name)
    done = fresh.get("restore") or {}
    if _restored(asked.archive, done):
        return PartResult(RESTORE_CONDITION, True, "Restored",
                          f"restored from archive {asked.archive} at {done.get('restoredAt')}"), done
    resuming = done.get("archive") == asked.archive and done.get("state") == "Loading"
    # The placement this pass wrote is in the fresh status only: the watched body of a Tenant created
    # with restoreFrom holds none yet, and judging by it called every enabled service "not enabled".
    placement = dict(fresh.get("placement") or placement)
    try:
        targets = {**await _targets(placement, known), "kubernetes": KUBERNETES}
        store = archive_store.from_env()
        started = time.monotonic()
        progress = archive.Progress()
        async with ProgressWriter(name, "restore", progress):
            verified, counts, holding = await _verify_and_load(name, asked, store, targets, known, resuming, progress,
                                                               services_part.enabled_services(tenant),
                                                               uid=str(body.metadata.get("uid") or ""))
    except ArchiveError as exc:
        return PartResult(RESTORE_CONDITION, False, exc.reason, exc.message, stalled=exc.needs_person), done
    except Exception as exc:  # noqa: BLE001
        err = _backend_error(exc, f"restore of {name} from {asked.archive}")
        return PartResult(RESTORE_CONDITION, False, err.reason, err.message, stalled=err.needs_person), done
    record = {"archive": asked.archive, "state": "Done", "restoredAt": _iso(_now()),
              "seconds": round(time.monotonic() - started, 1), "bytesDone": progress.total,
              "bytesTotal": progress.total}
    await kube.merge_patch("Tenant", name, None, {"status": {"restore": record}}, "status")
    message = f"restored from archive {asked.archive}: {', '.join(counts)}"
    logger.info("%s (%.1f s)", message, record["seconds"])
    events.post(body, type="Normal", reason="Restored", message=message)
    return PartResult(RESTORE_CONDITION, True, "Restored", f"restored from archive {asked.archive} at "
                                                           f"{record['restoredAt']}"), record


async def _verify_and_load(name: str, asked: Any, store: archive_store.DirectoryStore, targets: dict[str, Target],
                           known: dict[str, dict[str, Any]], resuming: bool, progress: archive.Progress,
                           enabled: list[str], *, uid: str) -> tuple[Any, list[str], list[str]]:
    """Verify every file and every name the parts would write, refuse a target holding data (unless
    overwrite or resuming), then load into Tenant `uid` named `name`.

    A service the archive holds that the spec does not enable is refused (Stalled); one it enables
    that is not placed yet is waited for (Reconciling): only the first needs a person."""
    unwrap = await archive_restore.unwrapper(known, targets.get("vault"), name, uid)
    verified = await archive.verify(store, archive_store.valid_id(asked.archive), unwrap, owner=name,
                                    progress=progress)
    try:
        try:
            await archive.check_contents(verified)
        except archive_checks.Unsafe as exc:
            raise ArchiveError("ArchiveUnsafe", f"archive {asked.archive} refused: {exc}; nothing was written", True) \
                from exc
        missing = [s for s in verified.plain if s not in targets]
        refused = [s for s in missing if s not in enabled]
        if refused:
            raise ArchiveError("RestoreRefused", f"archive {asked.archive} holds {', '.join(refused)} data but this "
                                                 f"Tenant does not enable {', '.join(refused)}; enable it", True)
        if missing:
            raise ArchiveError("WaitingForPlacement", f"archive {asked.archive} holds {', '.join(missing)} data; "
                                                      "the restore starts once those services are placed", False)
        holding = [f"{s} on {targets[s].name}" for s in sorted(verified.plain)
                   if await archive_restore.holds_data(s, targets[s], name)]
        if holding and not (asked.overwrite or resuming):
            raise ArchiveError("RestoreRefused", f"Tenant {name} already holds data ({', '.join(holding)}); nothing "
                                                 "was written. Set spec.restoreFrom.overwrite: true to replace it", True)
        state = {"archive": asked.archive, "state": "Loading", "startedAt": _iso(_now())}
        await kube.merge_patch("Tenant", name, None, {"status": {"restore": state}}, "status")
        counts = await archive_restore.load(verified, targets, name, bool(holding), progress)
    finally:
        verified.workdir.cleanup()
    return verified, counts, holding



def _restored(archive_id: str, record: Mapping[str, Any]) -> bool:
    """Whether `status.restore` (``record``) says archive ``archive_id`` was restored: it never runs again."""
    return record.get("archive") == archive_id and record.get("state") == "Done"


def _restore_waits_for_active(tenant: TenantSpec, body: kopf.Body) -> PartResult | None:
    """RestoreReady False (informational) while spec.restoreFrom waits for spec.state Active: a restore
    loads data into live services, which a Suspended or Archived tenant does not serve. None otherwise."""
    asked = tenant.restore_from
    if asked is None or tenant.state == "Active":
        return None
    if _restored(asked.archive, body.status.get("restore") or {}):
        return None
    return PartResult(RESTORE_CONDITION, False, "WaitingForActive",
                      f"the restore of archive {asked.archive} runs once spec.state is Active (it is {tenant.state})",
                      informational=True)

async def steps(name: str, uid: str, tenant: TenantSpec, body: kopf.Body, known: dict[str, dict[str, Any]],
                parts: list[PartResult], status: dict[str, Any], released: bool, logger: logging.Logger) -> None:
    """spec.state Archived (export, verify, release) and spec.restoreFrom, once the services allow."""
    placement = dict(status.get("placement") or body.status.get("placement") or {})
    services = [p for p in parts if p.condition in (*services_part.SERVICES.values(), credentials_part.CONDITION)]
    restore_waits = _restore_waits_for_active(tenant, body)
    if restore_waits is not None:
        parts.append(restore_waits)
    if tenant.state == "Archived":
        if released or all(p.ok for p in services if p.condition != credentials_part.CONDITION):
            part, record = await converge_archived(name, uid, body, placement, known, logger)
            if record:
                status["archive"] = record
        else:
            part = PartResult(ARCHIVE_CONDITION, False, "WaitingForServices",
                              "the archive is made once every service's doors are closed", informational=True)
        parts.append(part)
        return
    archived = dict(body.status.get("archive") or {})
    if archived.get("state") in ("Exporting", "Exported", "Released"):
        status["archive"] = {**archived, "state": "Superseded"}
    if any(c.get("type") == ARCHIVE_CONDITION for c in body.status.get("conditions") or []):
        # Left Archived (resumed, restored): what the condition said then (released, stalled) is over.
        last = f"; the last archive is {archived['id']} (status.archive)" if archived.get("location") else ""
        parts.append(PartResult(ARCHIVE_CONDITION, True, "NotArchived", f"not archived{last}", informational=True))
    if tenant.restore_from is not None and tenant.state == "Active":
        if services and all(p.ok for p in services):
            part, record = await restore(name, tenant, body, placement, known, logger)
            if record:
                status["restore"] = record
        else:
            part = PartResult(RESTORE_CONDITION, False, "WaitingForServices",
                              "the restore starts once every service and the credentials are ready", informational=True)
        parts.append(part)
