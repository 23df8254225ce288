"""The parts of a restore that touch a Backend: the data key's unwrapping (with the wrapping key's
owner checked first), whether the target already holds data, and the load itself.

The unwrap is the restore's trust anchor, so it refuses (archive_checks.Mismatch, the Tenant Stalled
with reason ArchiveMismatch) before asking OpenBao to decrypt anything when the manifest names a
Backend that is not an OpenBao one, or when the owner record of its wrapping key `tenant-<tenant>`
does not name the manifest's Tenant UID (or, restoring into that tenant's own name, this Tenant):
see backends/archive_checks.py. The manifest's tenant, id and key name are checked by then
(archive.verify).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..api import names
from ..backends import (
    archive,
    archive_checks,
    archive_store,
    kube_export,
    postgres_export,
    redis_export,
    vault_export,
)
from ..backends.archive_crypto import Tampered
from ..backends.base import BackendRefused, Target
from .targets import target_for

__all__ = ["unwrapper", "holds_data", "load"]


async def unwrapper(known: dict[str, dict[str, Any]], fallback: Target | None, into: str,
                    into_uid: str) -> Callable[[dict[str, Any]], Awaitable[bytes]]:
    """archive.verify's `unwrap` for a restore into Tenant `into_uid` named `into`: the Backend the
    manifest names (else `fallback`, the target's own OpenBao), the key's owner checked, then transit
    decrypt."""

    async def unwrap(manifest: dict[str, Any]) -> bytes:
        encryption = manifest.get("encryption") or {}
        wrapping = encryption.get("wrappingKey") or {}
        backend = known.get(str(wrapping.get("backend")))
        if backend is not None and (backend.get("spec") or {}).get("type") != "vault":
            raise archive_checks.Mismatch(archive_store.MANIFEST, f"names Backend {wrapping.get('backend')} (type "
                                          f"{(backend.get('spec') or {}).get('type')}) as holding its transit key; "
                                          "only an OpenBao Backend holds one")
        target = await target_for(backend) if backend else fallback
        if target is None:
            raise archive_store.StoreError(f"Backend {wrapping.get('backend')} (holding the archive's transit key) "
                                           "does not exist")
        key = str(wrapping.get("name"))
        owner = await vault_export.key_owner(target, key)
        archive_checks.check_key_owner(manifest, owner, into, into_uid, where=f"{target.name}")
        try:
            return await vault_export.unwrap(target, key, str(encryption.get("wrappedKey")))
        except BackendRefused as exc:
            raise Tampered("manifest.json", f"the data key does not unwrap with transit key {key} "
                                            f"on {target.name} ({exc})") from exc

    return unwrap


async def holds_data(service: str, target: Target, name: str) -> bool:
    if service == "postgres":
        return await postgres_export.holds_data(target, name)
    if service in archive.EXPORTERS:
        return await archive.EXPORTERS[service].holds_data(target, name)
    if service == "redis":
        return await redis_export.holds_data(target, name)
    if service == "kubernetes":
        return await kube_export.holds_data(name)
    return await vault_export.holds_kv(target, name)


async def load(verified: archive.Verified, targets: dict[str, Target], name: str, clean: bool,
               progress: archive.Progress) -> list[str]:
    """Write every verified (and checked) part into tenant `name`; what was loaded, per part."""
    counts = []
    sizes = {e["part"]: int(e.get("plainSize") or 0) for e in verified.manifest["files"].values()}
    for service, path in sorted(verified.plain.items()):
        target = targets[service]
        if service == "postgres":
            version = verified.manifest["backends"]["postgres"]["version"]
            await postgres_export.restore(target, name, path, version, clean=clean)
            counts.append(f"database {names.pg_database(name)}")
        elif service == "redis":
            counts.append(f"{await redis_export.restore(target, name, path)} Redis keys")
        elif service in archive.EXPORTERS:
            counts.append(f"{await archive.EXPORTERS[service].restore(target, name, path)} {service} documents")
        elif service == "kubernetes":
            counts.append(f"{await kube_export.restore(name, path)} ConfigMaps")
        else:
            counts.append(f"{await vault_export.restore_kv(target, name, path)} KV secrets")
        progress.add(sizes.get(service, 0))
    return counts
