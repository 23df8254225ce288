"""Archive jobs: export a tenant's backend data into the store, and verify and read it back.

Format (version 1), one folder per archive:

    manifest.json     formatVersion, id, tenant, tenantUid, createdAt, expiresAt, retention,
                      lifecyclePolicy, spec (the Tenant's spec at archive time), backends (per part:
                      Backend name, server version, what it holds), encryption (cipher, chunk size,
                      wrappedKey and the transit key that wraps it), files (per file: part, size and
                      sha256 of the encrypted file, plainSize), manifestMac
    postgres.dump.enc pg_dump --format=custom of t_<name>        (see postgres_export)
    redis.jsonl.enc   every key under t:<name>: with DUMP and PTTL  (see redis_export)
    kv.json.enc       latest data of every KV secret under tenants/<name>/  (see vault_export)
    mongodb.jsonl.enc every collection of t_<name>: indexes and documents  (see mongodb_export)
    search.jsonl.enc  every index t-<name>_*: mappings, settings, documents  (see search_export)
    configmaps.json.enc  the tenant namespace's own ConfigMaps  (see kube_export: what is and is not kept;
                      Secrets never are)

`verify` checks, in this order and before anything
is written anywhere: the manifest's identity (its tenant, the archive id and the wrapping key agree:
archive_checks.check_identity), every file is there with its size and sha256, the data key unwraps
(the caller's `unwrap` first checks the key's owner record: archive_checks.check_key_owner), the
manifest's MAC matches, and every chunk of every file authenticates. Each failure names the file or
the mismatch. `check_contents` then checks every name the parts would write (archive_checks).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import (
    archive_checks,
    kube_export,
    postgres_export,
    redis_export,
    vault_export,
)
from . import archive_crypto as crypto
from .archive_store import MANIFEST, DirectoryStore, Heartbeat
from .base import Target
from .lazy_modules import LazyModules

__all__ = ["FORMAT_VERSION", "FILES", "EXPORTERS", "CHECKS", "Export", "Progress", "export", "verify", "Verified",
           "check_contents"]

FORMAT_VERSION = 1
FILES = {"postgres": "postgres.dump", "redis": "redis.jsonl", "vault": "kv.json", "mongodb": "mongodb.jsonl",
         "search": "search.jsonl", "kubernetes": "configmaps.json"}
"""Each part's plaintext name; on disk it carries `.enc`."""
EXPORTERS = LazyModules(__package__, {"mongodb": "mongodb_export", "search": "search_export"})
"""Parts whose module (imported on first use: lazy_modules.py says why) has `dump(target, tenant, path) -> counts`, `restore(target, tenant, path) -> int`,
`holds_data(target, tenant)` and `server_version(target)`."""
CHECKS: dict[str, Callable[[Path], Any]] = {
    "vault": vault_export.check_kv, "kubernetes": kube_export.check,
    "mongodb": lambda path: EXPORTERS["mongodb"].check(path), "search": lambda path: EXPORTERS["search"].check(path)}
"""Parts whose names a restore writes to: each check reads the decrypted part, writes nothing, and raises
archive_checks.Unsafe naming what would leave the tenant. PostgreSQL (pg_restore into the tenant's own
database as its load role) and Redis (every key gets the target's prefix) take no name from the archive."""


@dataclass
class Progress:
    """Bytes done of total of a running archive or restore, read by the throttled status writer.

    Export: plain bytes the parts dumped; `total` is an estimate while a part is being dumped (the
    database's size for PostgreSQL, its file's size so far for the rest) and exact once each part is
    done. Restore: each archived plain byte counts twice, once when verified and once when loaded."""

    done: int = 0
    total: int = 0
    dumping: Path | None = None
    """The file a part is being dumped into now; its size counts as done."""

    def add(self, n: int) -> None:
        self.done += n
        self.total = max(self.total, self.done)

    def snapshot(self) -> tuple[int, int]:
        try:
            extra = self.dumping.stat().st_size if self.dumping else 0
        except FileNotFoundError:
            extra = 0
        return self.done + extra, max(self.total, self.done + extra)


@dataclass
class Export:
    """What an export needs to know beyond the backends themselves."""

    archive_id: str
    tenant: str
    uid: str
    spec: dict[str, Any]
    created_at: str
    expires_at: str
    retention: str
    policy: str | None
    targets: dict[str, Target] = field(default_factory=dict)
    """service -> its Backend; `vault` is required (it wraps the data key)."""
    progress: Progress = field(default_factory=Progress)
    estimates: dict[str, int] = field(default_factory=dict)
    """service -> expected plain bytes of its part (progress only)."""
    requested_by: str = ""
    """"owner": an `export` run from the tenant's namespace (kept to LifecyclePolicy ownerExportsKept)."""


async def _part(service: str, target: Target, tenant: str, plain: Path) -> dict[str, Any]:
    if service == "postgres":
        version = await postgres_export.server_version(target)
        await postgres_export.dump(target, tenant, plain, version)
        return {"backend": target.name, "version": version}
    if service in EXPORTERS:
        counts = await EXPORTERS[service].dump(target, tenant, plain)
        return {"backend": target.name, "version": await EXPORTERS[service].server_version(target), **counts}
    if service == "redis":
        keys = await redis_export.dump(target, tenant, plain)
        return {"backend": target.name, "version": await redis_export.server_version(target), "keys": keys}
    if service == "kubernetes":
        return {"backend": target.name, "configMaps": await kube_export.dump(tenant, plain)}
    secrets = await vault_export.dump_kv(target, tenant, plain)
    return {"backend": target.name, "version": await vault_export.server_version(target), "secrets": secrets,
            "transitKeys": "not archived: tenant transit keys are not exportable; the key wrapping this "
                           "archive is kept until the tenant's last archive is purged"}


async def export(store: DirectoryStore, job: Export) -> dict[str, Any]:
    """Writes the archive under a staging name, verifies it, then publishes it; returns the manifest.
    A Heartbeat keeps the staging folder alive (never cleaned) for as long as the export runs."""
    staging = store.stage(job.archive_id)
    with Heartbeat(staging):
        return await _export(store, job, staging)


async def _export(store: DirectoryStore, job: Export, staging: Path) -> dict[str, Any]:
    data_key = crypto.new_data_key()
    vault = job.targets["vault"]
    key_name, wrapped = await vault_export.wrap(vault, job.tenant, job.uid, data_key)
    backends: dict[str, Any] = {}
    files: dict[str, Any] = {}
    progress = job.progress
    progress.total = sum(job.estimates.get(s, 0) for s in job.targets)
    for service, target in sorted(job.targets.items()):
        plain = staging / f".plain-{FILES[service]}"
        progress.dumping = plain
        backends[service] = await _part(service, target, job.tenant, plain)
        name = FILES[service] + ".enc"
        plain_size = await asyncio.to_thread(_seal, plain, staging / name, data_key, job.archive_id, name)
        progress.dumping = None
        progress.total += plain_size - job.estimates.get(service, 0)
        progress.add(plain_size)
        plain.unlink()  # the clear copy lives only inside the 0700 staging folder, for one step
        size, digest = crypto.sha256_file(staging / name)
        files[name] = {"part": service, "size": size, "sha256": digest, "plainSize": plain_size}
    manifest: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION, "id": job.archive_id, "tenant": job.tenant, "tenantUid": job.uid,
        "createdAt": job.created_at, "expiresAt": job.expires_at, "retention": job.retention,
        "lifecyclePolicy": job.policy, "spec": job.spec, "backends": backends,
        **({"requestedBy": job.requested_by} if job.requested_by else {}),
        "encryption": {"cipher": crypto.CIPHER, "chunkBytes": crypto.CHUNK, "wrappedKey": wrapped,
                       "wrappingKey": {"backend": vault.name, "mount": "transit",
                                       "name": key_name}},
        "files": files,
    }
    manifest["manifestMac"] = crypto.manifest_mac(manifest, data_key)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    await _check(staging, manifest, data_key, None)
    store.publish(job.archive_id)
    return manifest


def _seal(plain: Path, sealed: Path, key: bytes, archive_id: str, name: str) -> int:
    with plain.open("rb") as src, sealed.open("wb") as dst:
        return crypto.encrypt_file(src, dst, key, archive_id, name)


class Workdir:
    """A restore's private folder of decrypted files, kept alive by a Heartbeat until `cleanup()`."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        self._beat = Heartbeat(path).start()

    def cleanup(self) -> None:
        self._beat.stop()
        shutil.rmtree(self.name, ignore_errors=True)


@dataclass
class Verified:
    manifest: dict[str, Any]
    plain: dict[str, Path]
    """service -> its decrypted file in `workdir` (deleted with it)."""
    workdir: Workdir


async def _check(folder: Path, manifest: dict[str, Any], key: bytes, into: Path | None,
                 progress: Progress | None = None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for name, entry in sorted(manifest.get("files", {}).items()):
        target = into / name.removesuffix(".enc") if into else None
        await asyncio.to_thread(_open, folder / name, target, key, manifest["id"], name,
                                progress.add if progress else None)
        if target:
            out[entry["part"]] = target
    return out


def _open(sealed: Path, target: Path | None, key: bytes, archive_id: str, name: str,
          on_bytes: Callable[[int], None] | None) -> None:
    with sealed.open("rb") as src, (target.open("wb") if target else open(os.devnull, "wb")) as dst:
        crypto.decrypt_file(src, dst, key, archive_id, name, on_bytes)


async def verify(store: DirectoryStore, archive_id: str,
                 unwrap: Callable[[dict[str, Any]], Awaitable[bytes]], owner: str = "",
                 progress: Progress | None = None) -> Verified:
    """Checks the whole archive and decrypts it into a private work folder (`.work-<owner>`, made
    anew: a killed restore's folder is replaced, not left behind; `owner` defaults to the archive
    id); raises crypto.Tampered naming the file (archive_checks.Mismatch when the manifest's tenant,
    id and wrapping key disagree), or StoreError when the archive is not there. `unwrap` gets the
    manifest, whose identity is checked by then, and returns the data key: it must check the key's
    owner record (archive_checks.check_key_owner) before the transit decrypt. `progress` gets its
    total (twice the plain bytes: verified, then loaded) and the bytes verified."""
    manifest = store.manifest(archive_id)
    if manifest.get("formatVersion") != FORMAT_VERSION or manifest.get("id") != archive_id:
        raise crypto.Tampered(MANIFEST, f"format {manifest.get('formatVersion')!r} / id {manifest.get('id')!r} "
                                        f"is not an archive {archive_id} of format {FORMAT_VERSION}")
    archive_checks.check_identity(archive_id, manifest)
    for name, entry in sorted((manifest.get("files") or {}).items()):
        path = store.file(archive_id, name)
        if not path.is_file():
            raise crypto.Tampered(name, "is missing")
        size, digest = crypto.sha256_file(path)
        if size != entry.get("size") or digest != entry.get("sha256"):
            raise crypto.Tampered(name, f"size {size} / sha256 {digest[:12]}... differ from the manifest "
                                        f"({entry.get('size')} / {str(entry.get('sha256'))[:12]}...)")
    key = await unwrap(manifest)
    crypto.check_manifest_mac(manifest, key)
    if progress is not None:
        progress.total = 2 * sum(int(e.get("plainSize") or 0) for e in manifest["files"].values())
    workdir = Workdir(store.work(owner or archive_id))
    try:
        plain = await _check(store.root / archive_id, manifest, key, Path(workdir.name), progress)
    except BaseException:
        workdir.cleanup()
        raise
    return Verified(manifest, plain, workdir)


async def check_contents(verified: Verified) -> None:
    """Every part's names checked (CHECKS) before the first write; raises archive_checks.Unsafe."""
    for service, path in sorted(verified.plain.items()):
        if service in CHECKS:
            await asyncio.to_thread(CHECKS[service], path)
