"""The retention purge: archives older than their LifecyclePolicy's retention are removed on schedule.

Every `TENANCY_ARCHIVE_PURGE_INTERVAL` seconds (default 300) one pass: finishes purges that ended
halfway (a folder whose manifest is gone), removes staging and work folders of exports or restores
that are no longer running (their heartbeat stopped: backends/archive_store.alive; never by age
alone, so an export that runs for hours keeps its folder), then purges each archive whose createdAt plus retention has
passed. Retention is the tenant's LifecyclePolicy's current value when that policy still exists, else
the value recorded in the manifest. Files go first and the manifest last, so a pass killed halfway
leaves an archive the next pass still finds. Each purge posts an Event on the Tenant of that name if
it exists, and always logs a line. When the last archive a transit key wraps is gone, that key and its
owner record are deleted as well (nothing needs it any more), unless it is the key of the live Tenant
of that name (its record names that Tenant's UID: backends/vault_keys.py). A new Tenant under a
deleted one's name that is held (Stalled NameHeldByArchives) owns nothing of the key, so the kept key
is deleted, and the new Tenant continues on its next pass; one a person restored an archive into owns
the key (re-recorded), so it stays.

Runs in every replica (it is not a kopf handler, so peering does not pause it); two replicas purging
the same archive only find it gone, as each step tolerates.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from ..api import names
from ..backends import archive_store, kube, vault_export
from ..observability import audit_store
from . import audit_trail, events, sharding
from .archive_part import seconds
from .targets import target_for

__all__ = ["purge_pass", "interval", "prune_owner_exports"]

log = logging.getLogger("tenancy.archive")
_task: asyncio.Task | None = None


def interval() -> float:
    return float(os.environ.get("TENANCY_ARCHIVE_PURGE_INTERVAL") or 300)


def _created(manifest: dict[str, Any]) -> float:
    return datetime.strptime(manifest["createdAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


async def _retention(manifest: dict[str, Any], policies: dict[str, dict[str, Any]]) -> str:
    ref = manifest.get("lifecyclePolicy")
    if ref and ref not in policies:
        policies[ref] = await kube.get("LifecyclePolicy", ref) or {}
    return ((policies.get(ref or "") or {}).get("spec") or {}).get("retention") or manifest.get("retention") or "720h"


async def _event(tenant: str, message: str, reason: str = "ArchivePurged") -> bool:
    """An Event on the Tenant (:func:`events.send`); False when the Tenant no longer exists."""
    body = await kube.get("Tenant", tenant)
    if body is None:
        return False
    await events.send(body, type="Normal", reason=reason, message=message)
    return True


def _wrapping(manifest: dict[str, Any]) -> tuple[str, str]:
    wrapping = (manifest.get("encryption") or {}).get("wrappingKey") or {}
    return str(wrapping.get("backend")), str(wrapping.get("name"))


async def _drop_key(manifest: dict[str, Any]) -> str:
    wrapping = (manifest.get("encryption") or {}).get("wrappingKey") or {}
    tenant = str(manifest.get("tenant"))
    # The purge cannot authenticate a manifest (it holds no data key), so the only key it deletes is
    # one named after the manifest's own tenant, and only when the key's record does not name the live
    # Tenant of that name: a manifest naming a live tenant's key would otherwise destroy everything
    # that tenant sealed with it.
    if not names.is_vault_key_of(str(wrapping.get("name")), tenant):
        log.warning("archive %s names transit key %r, not its tenant's; that key is left alone",
                    manifest.get("id"), wrapping.get("name"), extra={"tenant": tenant})
        return f"; transit key {wrapping.get('name')!r} left alone (not tenant {tenant}'s own)"
    backend = await kube.get("Backend", str(wrapping.get("backend")))
    if backend is None:
        return ""
    live = await kube.get("Tenant", tenant)
    live_uid = (live or {}).get("metadata", {}).get("uid") if live else None
    if await vault_export.drop_kept_key(await target_for(backend), str(wrapping.get("name")), live_uid):
        with audit_trail.acting_as("purge"):
            await audit_trail.trail.record(audit_trail.changes_of("vault", backend["metadata"]["name"], tenant,
                                                                  "delete", [f"transit key {wrapping.get('name')}"]))
        return f"; transit key {wrapping.get('name')} on {backend['metadata']['name']} deleted (no archive needs it)"
    return ""


async def purge_pass(now: float | None = None) -> list[str]:
    """One pass; returns the ids purged."""
    try:
        store = archive_store.from_env()
    except archive_store.StoreError:
        return []
    now = time.time() if now is None else now
    for gone in store.half_purged():
        store.delete(gone)
        log.info("archive %s: finished a purge that had stopped halfway", gone)
    for gone in store.clean_staging():
        log.info("removed %s, an archive export that stopped without finishing", gone)
    for gone in store.clean_work():
        log.info("removed %s, the work folder of a restore that stopped without finishing", gone)
    policies: dict[str, dict[str, Any]] = {}
    purged: list[str] = []
    manifests = {}
    for archive_id in store.list():
        try:
            manifests[archive_id] = store.manifest(archive_id)
        except archive_store.StoreError as exc:
            log.warning("archive %s: %s; left for a person", archive_id, exc)
    for archive_id, manifest in manifests.items():
        retention = await _retention(manifest, policies)
        try:
            if now < _created(manifest) + seconds(retention):
                continue
        except (KeyError, ValueError) as exc:  # a manifest not as the operator wrote it: the others still go
            log.warning("archive %s: no purge date (%r: %s); left for a person", archive_id, retention, exc)
            continue
        await audit_trail.trail.gate()  # no purge the trail cannot record
        removed = store.delete(archive_id)
        purged.append(archive_id)
        tenant = str(manifest.get("tenant"))
        await audit_trail.trail.record([{"tenant": tenant, "action": "purge", "target": f"archive {archive_id}",
                                         "at": audit_store.now(), "details": {"files": str(len(removed))}}])
        message = (f"archive {archive_id} of tenant {tenant} purged: older than its retention {retention} "
                   f"(created {manifest['createdAt']}); removed {len(removed)} files, the manifest last")
        if not any(_wrapping(m) == _wrapping(manifest) for i, m in manifests.items() if i not in purged):
            message += await _drop_key(manifest)
        told = await _event(tenant, message)
        log.info("%s%s", message, "" if told else f" (Tenant {tenant} no longer exists)", extra={"tenant": tenant})
    return purged


async def _loop() -> None:
    while True:
        try:
            await purge_pass()
        except Exception:  # noqa: BLE001 - a failing pass is retried next interval, never fatal
            log.exception("archive purge pass failed; retried in %s s", interval())
        await asyncio.sleep(interval())


@kopf.on.startup()
async def _start(**_: Any) -> None:
    global _task
    if os.environ.get("TENANCY_ARCHIVE_DIR") and sharding.leads():  # one purge loop for the fleet
        _task = asyncio.create_task(_loop())


@kopf.on.cleanup()
async def _stop(**_: Any) -> None:
    if _task is not None:
        _task.cancel()


async def prune_owner_exports(tenant: str, uid: str, keep: int, newest: str) -> list[str]:
    """Purge this Tenant's (name and UID) archives made by owners' export runs (manifest `requestedBy:
    owner`) beyond the newest `keep`; `newest`, the one just made, always stays. Files go first and
    the manifest last, as in a retention purge, with an audit record each and one Event on the Tenant
    naming them. Returns the ids purged. Raises archive_store.StoreError when there is no store."""
    store = archive_store.from_env()
    older = []
    for archive_id in store.list():
        try:
            manifest = store.manifest(archive_id)
        except archive_store.StoreError:
            continue  # unreadable: the retention pass reports it; never counted, never removed here
        if (archive_id != newest and manifest.get("requestedBy") == "owner" and manifest.get("tenant") == tenant
                and manifest.get("tenantUid") == uid):
            older.append((str(manifest.get("createdAt") or ""), archive_id))
    purged = [archive_id for _, archive_id in sorted(older)[:max(0, len(older) - (keep - 1))]]
    for archive_id in purged:
        await audit_trail.trail.gate()  # no purge the trail cannot record
        removed = store.delete(archive_id)
        await audit_trail.trail.record([{"tenant": tenant, "action": "purge", "target": f"archive {archive_id}",
                                         "at": audit_store.now(), "details": {"files": str(len(removed)),
                                                                              "why": "ownerExportsKept"}}])
    if purged:
        message = (f"owner exports of tenant {tenant} beyond the newest {keep} (LifecyclePolicy ownerExportsKept) "
                   f"purged after export {newest}: {', '.join(purged)}")
        await _event(tenant, message, "OwnerExportsPruned")
        log.info("%s", message)
    return purged
