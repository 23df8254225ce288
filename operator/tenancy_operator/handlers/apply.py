"""Carries out a reconcile Plan against the API server, one step at a time.

Every step tolerates having been done already (a crash between a create and the status write
re-runs the create, which finds the object and moves on).
"""

from __future__ import annotations

import logging
from typing import Any

from ..backends import kube
from ..reconcile.diff import Action, Plan, Step

__all__ = ["execute"]


def _patch_body(desired: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}


async def _one(step: Step, logger: logging.Logger) -> None:
    kind, name = step.kind, step.name
    namespace = (step.desired or step.observed or {}).get("metadata", {}).get("namespace")
    if step.action is Action.CREATE:
        assert step.desired is not None
        try:
            await kube.create(step.desired)
        except kube.Conflict:
            # Made by an earlier run we did not see finish: bring it in line instead.
            await kube.merge_patch(kind, name, namespace, _patch_body(step.desired))
    elif step.action is Action.PATCH:
        assert step.desired is not None
        await kube.merge_patch(kind, name, namespace, _patch_body(step.desired))
    elif step.action is Action.REPLACE:
        assert step.desired is not None
        await kube.delete(kind, name, namespace)
        await kube.create(step.desired)
    elif step.action is Action.DELETE:
        await kube.delete(kind, name, namespace)
    if step.action is not Action.NOOP:
        logger.info("%s %s %s%s", step.action.value, kind, f"{namespace}/" if namespace else "", name)


async def execute(plan: Plan, logger: logging.Logger) -> list[Step]:
    """Apply every write of the plan in order; return the steps that wrote."""
    for step in plan.writes:
        await _one(step, logger)
    return plan.writes
