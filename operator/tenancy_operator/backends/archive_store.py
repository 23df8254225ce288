"""Where archives live: one folder per archive, `manifest.json` plus one encrypted file per part.

`ArchiveStore` is the small interface (stage, publish, list, read, delete); `DirectoryStore` is the
built and tested one, on a directory (the chart mounts a PersistentVolumeClaim there; the operator
reads `TENANCY_ARCHIVE_DIR`). An S3-compatible bucket fits the same interface (stage locally, upload
the files, the manifest last; list by the manifest's key) and is not built.

Completeness is the manifest: an archive is written under `.staging-<id>` and renamed to `<id>` only
after every file and the manifest are on disk and synced, so a process killed mid-export leaves a
staging folder, never a folder that looks complete; `clean_staging` removes those on the next pass.
Whether an export (or a restore's `.work-<tenant>` folder) is still running is told by its heartbeat,
not its age: while a job runs, a `Heartbeat` thread touches its folder every `HEARTBEAT_S` seconds, and
only a folder untouched for `stale_seconds()` (TENANCY_ARCHIVE_STALE_SECONDS, default 300) whose job is
not running in this process is removed, so an export of a large database that runs for hours is never
cleaned away under itself, by this replica or another one sharing the volume.
A purge removes the data files first and the manifest last, then the folder, so a purge killed
halfway leaves an archive that still lists (by its manifest) and is finished by the next pass.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = ["ArchiveStore", "DirectoryStore", "Heartbeat", "MANIFEST", "StoreError", "from_env", "new_id", "valid_id",
           "tenant_of", "stale_seconds", "alive"]

MANIFEST = "manifest.json"
_ID = re.compile(r"^[a-z0-9][-a-z0-9]{0,120}$")
_STAGING = ".staging-"
_ID_TAIL = r"-\d{8}-\d{6}-[0-9a-f]{6}"
"""What follows the tenant's name in an id: tenant `acme`'s ids never match tenant `acme-eu`'s."""


HEARTBEAT_S = 15.0
_RUNNING: set[Path] = set()
"""Job folders a Heartbeat of this process keeps alive."""


def stale_seconds() -> float:
    """How long a job folder may go untouched before it counts as left by a dead process."""
    return float(os.environ.get("TENANCY_ARCHIVE_STALE_SECONDS") or 300)


def alive(path: Path, now: float | None = None) -> bool:
    """Is a job still writing `path`: one of this process's, or touched within stale_seconds()?"""
    if path in _RUNNING:
        return True
    try:
        touched = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return (time.time() if now is None else now) - touched < stale_seconds()


class Heartbeat:
    """Touches `path` every `every` seconds from a thread (so a long blocking step cannot starve it)
    until stopped; a context manager. While it runs, `alive(path)` holds."""

    def __init__(self, path: Path, every: float = HEARTBEAT_S) -> None:
        self.path, self.every = path, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {path.name}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def start(self) -> Heartbeat:
        _RUNNING.add(self.path)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        _RUNNING.discard(self.path)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class StoreError(Exception):
    """The store is not configured, not writable, or the archive is not there."""


def valid_id(archive_id: str) -> str:
    if not _ID.fullmatch(archive_id or ""):
        raise StoreError(f"{archive_id!r} is not an archive id (lower-case letters, digits and '-')")
    return archive_id


def tenant_of(archive_id: str) -> str | None:
    """The tenant name an id begins with (`acme` of `acme-20260101-000000-abcdef`); None when the id does
    not have the shape `new_id` gives (the tail's shape is fixed, so the name before it is unambiguous)."""
    match = re.fullmatch(r"(.+)" + _ID_TAIL, archive_id or "")
    return match.group(1) if match else None


def new_id(tenant: str, now: datetime | None = None) -> str:
    """A fresh archive id of ``tenant``: `<tenant>-<YYYYmmdd-HHMMSS>-<6 hex>` (UTC; `now` defaults to the clock)."""
    now = now or datetime.now(UTC)
    return f"{tenant}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class ArchiveStore(Protocol):
    location: str

    def stage(self, archive_id: str) -> Path: ...
    def publish(self, archive_id: str) -> None: ...
    def list(self) -> list[str]: ...
    def manifest(self, archive_id: str) -> dict[str, Any]: ...
    def file(self, archive_id: str, name: str) -> Path: ...
    def delete(self, archive_id: str) -> list[str]: ...
    def clean_staging(self, tenant: str = "", archive_id: str = "") -> list[str]: ...


class DirectoryStore:
    """Archives as folders under `root`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.location = f"dir://{self.root}"

    def _ready(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"archive directory {self.root} cannot be made: {exc}") from exc

    def stage(self, archive_id: str) -> Path:
        self._ready()
        path = self.staging(archive_id)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700)
        return path

    def publish(self, archive_id: str) -> None:
        staged = self.root / (_STAGING + valid_id(archive_id))
        for f in staged.iterdir():
            with f.open("rb") as handle:
                os.fsync(handle.fileno())
        if not (staged / MANIFEST).is_file():
            raise StoreError(f"archive {archive_id}: no manifest staged")
        os.rename(staged, self.root / archive_id)
        _sync_dir(self.root)

    def list(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())

    def half_purged(self) -> list[str]:
        """Folders whose manifest is gone (a purge that ended before the folder): purge finishes them."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and not (p / MANIFEST).exists())

    def manifest(self, archive_id: str) -> dict[str, Any]:
        path = self.root / valid_id(archive_id) / MANIFEST
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise StoreError(f"archive {archive_id} not found in {self.location}") from None
        except ValueError as exc:
            raise StoreError(f"archive {archive_id}: {MANIFEST} is not JSON ({exc})") from exc

    def file(self, archive_id: str, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise StoreError(f"archive {archive_id}: bad file name {name!r} in the manifest")
        return self.root / valid_id(archive_id) / name

    def size(self, archive_id: str) -> int:
        folder = self.root / valid_id(archive_id)
        return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())

    def delete(self, archive_id: str) -> list[str]:
        """Data files first, the manifest last, then the folder; returns what it removed."""
        folder = self.root / valid_id(archive_id)
        if not folder.is_dir():
            return []
        removed = []
        for f in sorted(folder.iterdir()):
            if f.name != MANIFEST:
                f.unlink()
                removed.append(f.name)
        if (folder / MANIFEST).exists():
            (folder / MANIFEST).unlink()
            removed.append(MANIFEST)
        folder.rmdir()
        return removed

    def staging(self, archive_id: str) -> Path:
        return self.root / (_STAGING + valid_id(archive_id))

    def clean_staging(self, tenant: str = "", archive_id: str = "") -> list[str]:
        """Remove staging folders of exports that are no longer running (no heartbeat: see `alive`).
        `tenant`: only that tenant's (its name is matched whole, since `acme-` also begins tenant
        `acme-eu`'s ids). `archive_id`: that archive's, running or not (its owner is undoing it)."""
        if not self.root.is_dir():
            return []
        ours = (re.compile(re.escape(_STAGING + archive_id) + "$") if archive_id
                else re.compile(re.escape(_STAGING + tenant) + _ID_TAIL + "$") if tenant else None)
        gone = []
        for p in self.root.iterdir():
            if (p.is_dir() and p.name.startswith(_STAGING) and (ours is None or ours.match(p.name))
                    and (archive_id or not alive(p))):
                shutil.rmtree(p, ignore_errors=True)
                gone.append(p.name)
        return gone

    def work(self, owner: str) -> Path:
        """A fresh private folder `.work-<owner>` for a restore's decrypted files (one per tenant, so a
        rerun after a crash replaces the killed run's folder instead of leaving it behind)."""
        self._ready()
        path = self.root / f".work-{valid_id(owner)}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700)
        return path

    def clean_work(self) -> list[str]:
        """Remove restore work folders whose restore is no longer running."""
        if not self.root.is_dir():
            return []
        gone = []
        for p in self.root.glob(".work-*"):
            if not alive(p):
                shutil.rmtree(p, ignore_errors=True)
                gone.append(p.name)
        return gone


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def from_env() -> DirectoryStore:
    """The configured store: `TENANCY_ARCHIVE_DIR` (the chart's archive volume). Unset: StoreError."""
    root = os.environ.get("TENANCY_ARCHIVE_DIR", "")
    if not root:
        raise StoreError("no archive store is configured: set TENANCY_ARCHIVE_DIR (chart value archive.*)")
    return DirectoryStore(root)
