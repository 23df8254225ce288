"""`rotate-credentials`: rotate a tenant's credentials now, and wait until every opted-in workload rolled.

Steps (services: `kube`, the operator's Kubernetes API module; `poll`, seconds between reads):

1. `request-rotation`: set the Tenant's `tenancy.dev/rotate` annotation to `workflowrun/<ns>/<run>`.
   The Tenant handler rotates once per distinct value and records it (`status.credentials.rotateHandled`),
   so running this step again never rotates twice.
2. `wait-rotated`: until the Tenant records that value as handled, with no rotation pending; outputs
   `version` and `slot`.
3. `wait-workloads-rolled`: until every Deployment and StatefulSet labelled
   `tenancy.dev/restart-on-rotation=true` in the tenant namespace carries that credential version in its
   pod template and its controller has rolled it (observedGeneration caught up, every replica updated);
   outputs `rolled`.

A rotation cannot be taken back (the previous credentials keep working through the overlap anyway):
the steps have nothing to compensate.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..api import names
from .engine import Step, StepContext

__all__ = ["steps", "ROTATE", "CREDENTIAL_VERSION", "OPT_IN", "request_value"]

ROTATE = "tenancy.dev/rotate"
CREDENTIAL_VERSION = "tenancy.dev/credential-version"
OPT_IN = "tenancy.dev/restart-on-rotation"


def request_value(ctx: StepContext) -> str:
    """The rotate request of this run: one value per run, so a second rotation needs a second run."""
    return f"workflowrun/{ctx.services.namespace}/{ctx.run}"


async def _request(ctx: StepContext) -> dict[str, str]:
    kube = ctx.services.kube
    tenant = await kube.get("Tenant", ctx.tenant)
    if tenant is None:
        raise LookupError(f"Tenant {ctx.tenant} does not exist")
    value = request_value(ctx)
    handled = ((tenant.get("status") or {}).get("credentials") or {}).get("rotateHandled")
    if (tenant["metadata"].get("annotations") or {}).get(ROTATE) != value and handled != value:
        await kube.merge_patch("Tenant", ctx.tenant, None, {"metadata": {"annotations": {ROTATE: value}}})
    return {"rotateRequest": value}


async def _wait_rotated(ctx: StepContext) -> dict[str, str]:
    value = ctx.outputs.get("rotateRequest") or request_value(ctx)
    while True:
        tenant = await ctx.services.kube.get("Tenant", ctx.tenant) or {}
        credentials = (tenant.get("status") or {}).get("credentials") or {}
        if credentials.get("rotateHandled") == value and not credentials.get("pending"):
            return {"version": str(credentials.get("version", "")), "slot": str(credentials.get("slot", ""))}
        await asyncio.sleep(ctx.services.poll)


def _rolled(obj: dict[str, Any], version: str) -> bool:
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    if (template.get("annotations") or {}).get(CREDENTIAL_VERSION) != version:
        return False
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    wanted = spec.get("replicas", 1)
    return (status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
            and status.get("updatedReplicas", 0) >= wanted)


async def _wait_workloads(ctx: StepContext) -> dict[str, str]:
    version, namespace = ctx.outputs.get("version", ""), names.namespace(ctx.tenant)
    while True:
        waiting, rolled = [], []
        for kind in ("Deployment", "StatefulSet"):
            for obj in await ctx.services.kube.list_objects(kind, namespace, f"{OPT_IN}=true"):
                (rolled if _rolled(obj, version) else waiting).append(f"{kind}/{obj['metadata']['name']}")
        if not waiting:
            return {"rolled": ", ".join(rolled) or "no opted-in workloads"}
        await asyncio.sleep(ctx.services.poll)


def steps(params: dict[str, str]) -> list[Step]:
    if params:
        raise ValueError(f"rotate-credentials takes no parameters, got {', '.join(sorted(params))}")
    return [
        Step("request-rotation", _request, timeout=30, retries=5),
        Step("wait-rotated", _wait_rotated, timeout=300, retries=1),
        Step("wait-workloads-rolled", _wait_workloads, timeout=600, retries=1),
    ]
