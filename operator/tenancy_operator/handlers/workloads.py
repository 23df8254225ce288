"""Rolling opted-in workloads when credentials change.

A Deployment or StatefulSet labelled `tenancy.dev/restart-on-rotation: "true"` in the tenant
namespace gets the credential version as a pod-template annotation; a new version rolls it.
"""

from __future__ import annotations

from ..backends import kube
from ..reconcile import labels

__all__ = ["OPT_IN", "roll"]

OPT_IN = "tenancy.dev/restart-on-rotation"


async def roll(namespace: str, version: int) -> list[str]:
    rolled: list[str] = []
    for kind in ("Deployment", "StatefulSet"):
        for obj in await kube.list_objects(kind, namespace, f"{OPT_IN}=true"):
            template = obj.get("spec", {}).get("template", {}).get("metadata", {})
            if (template.get("annotations") or {}).get(labels.CREDENTIAL_VERSION) == str(version):
                continue
            name = obj["metadata"]["name"]
            patch = {"spec": {"template": {"metadata": {"annotations": {labels.CREDENTIAL_VERSION: str(version)}}}}}
            await kube.merge_patch(kind, name, namespace, patch)
            rolled.append(f"{kind}/{name}")
    return rolled
