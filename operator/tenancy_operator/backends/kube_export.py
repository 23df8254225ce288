"""Kubernetes part of an archive: the tenant namespace's own ConfigMaps, `configmaps.json`.

What is archived: every ConfigMap in `tenant-<name>` that the tenant made, with its name, labels,
annotations, `data`, `binaryData` and `immutable`. What is not: Secrets (never kept, not even
encrypted: the credentials Secret is the operator's and is made anew for the restored tenant, and
a tenant's own Secrets belong in its OpenBao KV path, which is archived), the operator's own
ConfigMaps (labelled `app.kubernetes.io/managed-by: tenancy-operator`, such as
`tenant-session-keys`), `kube-root-ca.crt` (the cluster's), and workloads, Services and every other
kind (they are deployed from the tenant's own manifests, not data).

Restore writes them into the new tenant's namespace; with overwrite (or a rerun after a crash) a
ConfigMap of the same name is replaced (deleted, then created: an immutable one cannot be patched).
Before the first write the whole part is checked (`check`): each name a ConfigMap name (DNS-1123
subdomain, so the delete's URL stays in the namespace), none that an export leaves out (the
operator's own, `kube-root-ca.crt`); otherwise it is refused (archive_checks.Unsafe, naming it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..api import names
from . import kube
from .archive_checks import Unsafe
from .base import BackendUnavailable

__all__ = ["SKIPPED", "user_configmaps", "dump", "check", "restore", "holds_data"]

SKIPPED = ("kube-root-ca.crt",)
MANAGED_BY, OPERATOR, TENANT = "app.kubernetes.io/managed-by", "tenancy-operator", "tenancy.dev/tenant"
"""As reconcile/labels.py has them (a backend may not import reconcile)."""
_KEPT_ANNOTATIONS_DROPPED = ("kubectl.kubernetes.io/last-applied-configuration",)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
"""A ConfigMap's name: a DNS-1123 subdomain (at most 253 characters)."""


def _tenants_own(cm: dict[str, Any]) -> bool:
    meta = cm.get("metadata") or {}
    return (meta.get("name") not in SKIPPED
            and (meta.get("labels") or {}).get(MANAGED_BY) != OPERATOR)


async def user_configmaps(tenant: str) -> list[dict[str, Any]]:
    """The tenant's own ConfigMaps in its namespace (none when the namespace is gone)."""
    try:
        items = await kube.list_objects("ConfigMap", names.namespace(tenant))
    except kube.NotFound:
        return []
    except kube.KubeError as exc:
        if exc.status == 0:
            raise BackendUnavailable(f"Kubernetes API: {exc}") from exc
        raise
    return sorted((cm for cm in items if _tenants_own(cm)), key=lambda cm: cm["metadata"]["name"])


async def dump(tenant: str, out: Path) -> int:
    """Writes the tenant's ConfigMaps as one JSON list; returns how many."""
    kept = []
    for cm in await user_configmaps(tenant):
        meta = cm["metadata"]
        kept.append({"name": meta["name"], "labels": meta.get("labels") or {},
                     "annotations": {k: v for k, v in (meta.get("annotations") or {}).items()
                                     if k not in _KEPT_ANNOTATIONS_DROPPED},
                     "data": cm.get("data") or {}, "binaryData": cm.get("binaryData") or {},
                     "immutable": bool(cm.get("immutable"))})
    out.write_text(json.dumps(kept, sort_keys=True))
    return len(kept)


async def holds_data(tenant: str) -> bool:
    return bool(await user_configmaps(tenant))


def check(path: Path) -> list[dict[str, Any]]:
    """The archived ConfigMaps, once each is one an export could have kept; else Unsafe naming it."""
    items = json.loads(path.read_text())
    if not isinstance(items, list):
        raise Unsafe("kubernetes", "the ConfigMap part is not a JSON list")
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or len(name) > 253 or not _NAME.fullmatch(name):
            raise Unsafe("kubernetes", f"ConfigMap name {name!r} is not a DNS-1123 subdomain")
        labels = item.get("labels") or {}
        if not isinstance(labels, dict) or not _tenants_own({"metadata": {"name": name, "labels": labels}}):
            raise Unsafe("kubernetes", f"ConfigMap {name} is not the tenant's own (an export never keeps "
                                       f"{', '.join(SKIPPED)} or ConfigMaps labelled {MANAGED_BY}: {OPERATOR})")
    return items


async def restore(tenant: str, path: Path) -> int:
    """Creates (or replaces) each archived ConfigMap in the tenant's namespace; returns how many.
    The tenant label follows the new tenant (an archived `tenancy.dev/tenant` names the old one)."""
    namespace = names.namespace(tenant)
    count = 0
    for item in check(path):  # every name checked before the first write
        item_labels = dict(item.get("labels") or {})
        if TENANT in item_labels:
            item_labels[TENANT] = tenant
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": item["name"], "namespace": namespace, "labels": item_labels,
                                             "annotations": item.get("annotations") or {}},
                                "data": item.get("data") or {}, "binaryData": item.get("binaryData") or {}}
        if item.get("immutable"):
            body["immutable"] = True
        try:
            await kube.create(body)
        except kube.Conflict:
            await kube.delete("ConfigMap", item["name"], namespace)
            await kube.create(body)
        count += 1
    return count
