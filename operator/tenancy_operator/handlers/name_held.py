"""A name held by a deleted tenant's archives: what the Stalled VaultReady part says, and the restore that frees it.

When Tenant `<name>` is deleted with its archives kept, its transit key `tenant-<name>` is kept (it
wraps those archives' data keys) and recorded as that Tenant's (backends/vault_keys.py). The fixed
OpenBao tenant policies give a login from namespace `tenant-<name>` exactly that key, so a new Tenant
of the name gets no login role while the key is another's: the adapter raises NameHeldByArchives and
the part is Stalled with reason NameHeldByArchives, naming the archives and the ways out. A restore
of one of those archives into the name (spec.restoreFrom) is a person's decision to hand the old data
and key on: `restoring_uid` reads that archive's manifest so the adapter re-records the key.
"""

from __future__ import annotations

import dataclasses
import logging

from ..api import names
from ..api.tenant import TenantSpec
from ..backends import archive_store
from ..backends.base import NameHeldByArchives, TenantSlice

__all__ = ["REASON", "archives_of", "message", "with_restore"]

REASON = "NameHeldByArchives"
MAX_LISTED = 5
log = logging.getLogger(__name__)


def archives_of(tenant: str, owner_uid: str) -> list[str]:
    """Ids of the stored archives of Tenant `owner_uid` named `tenant` (ids begin with the name: a
    cheap filter before each manifest is read). Empty when no store is configured or readable."""
    try:
        store = archive_store.from_env()
        found = []
        for archive_id in store.list():
            if archive_id.startswith(f"{tenant}-"):
                manifest = store.manifest(archive_id)
                if manifest.get("tenant") == tenant and manifest.get("tenantUid") == owner_uid:
                    found.append(archive_id)
        return found
    except (archive_store.StoreError, OSError) as exc:
        log.warning("listing the archives of %s: %s", tenant, exc)
        return []


def message(exc: NameHeldByArchives, tenant: str) -> str:
    """What the Stalled condition and its Event say: whose archives hold the name, and the ways out."""
    found = archives_of(tenant, exc.owner_uid)
    listed = ", ".join(found[:MAX_LISTED]) + (f" and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else "")
    which = f"archives {listed}" if found else "its archives (kubectl tenant archives lists them)"
    example = found[0] if found else "<id>"
    return (f"{exc}: {which}. This Tenant gets no OpenBao login role while that key is another's, since its "
            f"workloads would reach it. Either give this tenant another name; or restore one of those archives "
            f"into it (kubectl tenant restore {tenant} --from {example}, i.e. spec.restoreFrom), which hands this "
            "Tenant the old data and the key on purpose; or wait for the retention purge of those archives "
            "(kubectl tenant archives shows when; shortening the old LifecyclePolicy's spec.retention brings it "
            "forward), which deletes the key and its record, and this Tenant then continues on its next pass")


def with_restore(want: TenantSlice, tenant: str, spec: TenantSpec) -> TenantSlice:
    """`want` with `restoring_uid` set when spec.restoreFrom names an archive of this name wrapped by its
    key `tenant-<name>` (read from the archive's manifest; any problem there is the restore's to report)."""
    asked = spec.restore_from
    if asked is None or spec.state != "Active":
        return want
    try:
        manifest = archive_store.from_env().manifest(asked.archive)
    except (archive_store.StoreError, OSError):
        return want
    wrapping = (manifest.get("encryption") or {}).get("wrappingKey") or {}
    uid = str(manifest.get("tenantUid") or "")
    if manifest.get("tenant") != tenant or wrapping.get("name") != names.vault_key(tenant) or not uid:
        return want
    return dataclasses.replace(want, restoring_uid=uid)
