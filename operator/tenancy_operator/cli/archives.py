"""`kubectl tenant archives`: the archive store as a table (id, tenant, size, age, expiry).

Reads the store directly (`--dir`, else TENANCY_ARCHIVE_DIR): run it where the archive volume is
mounted (the host-process operator's folder, or `kubectl exec` into the operator pod). Each archive's
manifest says everything listed; a folder without a manifest is an unfinished export or purge and is
not listed (the operator cleans those up).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from ..api.common import parse_duration
from .render import age, parse_time

__all__ = ["read", "with_current_retention", "table", "human_bytes", "restore_spec"]

NOT_CARRIED = ("state", "restoreFrom", "adoptNamespace", "adoptRetainedData")
"""Spec fields a new tenant does not take from the archived one: they are about that tenant's own
life (its state, its own restore, what it adopted), not what it gets."""


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def read(root: str | None) -> list[dict[str, Any]]:
    """One row per complete archive; raises ValueError when no store is given."""
    folder = root or os.environ.get("TENANCY_ARCHIVE_DIR", "")
    if not folder:
        raise ValueError("no archive store: pass --dir PATH or set TENANCY_ARCHIVE_DIR (where the operator's "
                         "archive volume is mounted)")
    rows = []
    base = Path(folder)
    for path in sorted(base.iterdir()) if base.is_dir() else []:
        manifest_file = path / "manifest.json"
        if path.name.startswith(".") or not manifest_file.is_file():
            continue
        manifest = json.loads(manifest_file.read_text())
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        rows.append({"id": path.name, "tenant": manifest.get("tenant", "?"), "bytes": size,
                     "createdAt": manifest.get("createdAt"), "expiresAt": manifest.get("expiresAt"),
                     "retention": manifest.get("retention"), "lifecyclePolicy": manifest.get("lifecyclePolicy"),
                     "parts": sorted(manifest.get("backends") or {})})
    return rows


def with_current_retention(rows: list[dict[str, Any]], policies: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with `expiresAt` as the operator's purge pass decides it: createdAt plus the retention
    its LifecyclePolicy has now (`policies`: name to object, as listed), else the retention the
    manifest recorded, else 720h. The manifest's own expiresAt is the retention at export time."""
    out = []
    for r in rows:
        policy = policies.get(r.get("lifecyclePolicy") or "") or {}
        retention = (policy.get("spec") or {}).get("retention") or r.get("retention") or "720h"
        created = parse_time(r.get("createdAt"))
        try:
            expires = created + parse_duration(retention) if created else None
        except ValueError:  # a manifest not written by the operator: its own date stands
            expires = None
        if expires is None:
            out.append(r)
            continue
        out.append({**r, "retention": retention, "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return out


def restore_spec(root: str | None, archive_id: str) -> dict[str, Any]:
    """The spec to create a new tenant with, to restore `archive_id` into: the archived tenant's spec
    (services, quota, policies...) from the manifest, without NOT_CARRIED. Raises ValueError."""
    folder = root or os.environ.get("TENANCY_ARCHIVE_DIR", "")
    if not folder:
        raise ValueError("the tenant does not exist; to create it from the archive the plugin reads the archive's "
                         "manifest: pass --dir PATH or set TENANCY_ARCHIVE_DIR (or apply a Tenant with "
                         "spec.restoreFrom yourself)")
    manifest_file = Path(folder) / archive_id / "manifest.json"
    if "/" in archive_id or archive_id.startswith(".") or not manifest_file.is_file():
        raise ValueError(f"archive {archive_id} not found in {folder} (kubectl tenant archives lists them)")
    spec = json.loads(manifest_file.read_text()).get("spec") or {}
    return {k: v for k, v in spec.items() if k not in NOT_CARRIED}


def table(rows: list[dict[str, Any]], now: datetime) -> str:
    lines = [["ID", "TENANT", "SIZE", "AGE", "EXPIRES", "PARTS"]]
    for r in rows:
        expires = parse_time(r["expiresAt"])
        when = ("in " + age(expires, now)) if expires and expires > now else "due (next purge pass)"
        lines.append([r["id"], r["tenant"], human_bytes(r["bytes"]), age(parse_time(r["createdAt"]), now), when,
                      ",".join(r["parts"])])
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines)
    return text + f"\n{len(rows)} archives, {human_bytes(sum(r['bytes'] for r in rows))}\n"
