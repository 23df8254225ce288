"""Whose is an existing namespace? The answer decides between create, adopt, wait and Stalled."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from . import labels

__all__ = ["Ownership", "classify", "conflict_message"]


class Ownership(StrEnum):
    ABSENT = "absent"
    OURS = "ours"
    ADOPTABLE = "adoptable"
    FOREIGN = "foreign"
    TERMINATING = "terminating"


def classify(namespace: dict[str, Any] | None, tenant: str, adopt: bool, uid: str = "") -> Ownership:
    """Ours means labelled for this tenant (set atomically at creation, so a crash cannot orphan it),
    or owned by this very Tenant object (so a removed label is drift to repair, not a conflict)."""
    if namespace is None:
        return Ownership.ABSENT
    meta = namespace.get("metadata", {})
    if meta.get("deletionTimestamp") or namespace.get("status", {}).get("phase") == "Terminating":
        return Ownership.TERMINATING
    owner = labels.tenant_of(namespace)
    owned_by_uid = bool(uid) and any(r.get("uid") == uid for r in meta.get("ownerReferences") or [])
    if owner == tenant or (owner is None and owned_by_uid):
        return Ownership.OURS
    if owner is None and adopt:
        return Ownership.ADOPTABLE
    return Ownership.FOREIGN


def conflict_message(namespace: str, live: dict[str, Any], tenant: str) -> str:
    owner = labels.tenant_of(live)
    if owner:
        return (f"namespace {namespace} belongs to tenant {owner!r}; choose another tenant name "
                "or delete that tenant first")
    return (f"namespace {namespace} already exists and is not managed by tenant {tenant!r}; set "
            "spec.adoptNamespace: true to adopt it, or delete the namespace")
