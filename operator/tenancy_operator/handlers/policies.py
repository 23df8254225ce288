"""TenantSessionPolicy and LifecyclePolicy: status that says what is built and what is not.

CachePolicy and TenantSessionPolicy are built (handlers/cache_part.py, handlers/sessions_part.py);
WorkflowRun has its own handler (handlers/workflow_run.py); every LifecyclePolicy field is built. Rather than leave an object that asks for an unbuilt feature
looking accepted, each gets kstatus conditions: `Stalled=True`, reason `NotImplemented`, `Ready=False`
and a message naming every such field and its issue, with a Warning Event when it changes. A
LifecyclePolicy that asks only for what is built is `Ready=True`. Status is written only when it
differs, so steady state writes nothing.

The `lifecycle_policies` and `session_policies` indexes give tenant reconciles each policy's spec
without an API read.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from ..api import conditions as cond
from ..api.common import GROUP, VERSION
from ..api.conditions import Reason
from ..api.lifecycle_policy import LifecyclePolicySpec
from ..backends import kube
from ..reconcile import unbuilt
from . import events, sharding

__all__ = ["lifecycle_policies", "session_policies", "report", "conditions_for"]

BUILT = {"TenantSessionPolicy": "built: tenants naming it get a rotated session key and ConfigMap tenant-session-keys"}
"""The Ready message of a kind that is built as a whole."""


@kopf.index(GROUP, VERSION, "lifecyclepolicies")
def lifecycle_policies(name: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: dict(spec)}


@kopf.index(GROUP, VERSION, "tenantsessionpolicies")
def session_policies(name: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
    """Each TenantSessionPolicy's spec by name: every tenant's pass reads it, so a policy made or changed
    reaches the tenants naming it within one verify interval."""
    return {name: dict(spec)}


def conditions_for(current: list[dict[str, Any]], found: list[str], built: str,
                   generation: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Ready and Stalled from the unbuilt findings; returns the conditions and the types whose change
    deserves an Event (`cond.deserves_event`)."""
    conditions = [dict(c) for c in current]
    changed = []
    if found:
        text = unbuilt.message(found)
        wanted = [(cond.STALLED, cond.TRUE, Reason.NOT_IMPLEMENTED, text),
                  (cond.READY, cond.FALSE, Reason.NOT_IMPLEMENTED, text)]
    else:
        wanted = [(cond.STALLED, cond.FALSE, Reason.SUCCEEDED, ""), (cond.READY, cond.TRUE, Reason.SUCCEEDED, built)]
    for type_, status, reason, message in wanted:
        if cond.set_condition_for_event(conditions, type_, status, reason, message, generation):
            changed.append(type_)
    return conditions, changed


async def report(kind: str, body: kopf.Body, found: list[str], built: str) -> None:
    meta, status = body.metadata, body.status
    generation = meta.get("generation", 1)
    conditions, changed = conditions_for(list(status.get("conditions", [])), found, built, generation)
    wanted = {"observedGeneration": generation, "conditions": conditions}
    if any(status.get(k) != v for k, v in wanted.items()):
        await kube.merge_patch(kind, meta["name"], meta.get("namespace"), {"status": wanted}, "status")
    events.post_condition_changes(body, conditions, changed)


def _whole_kind(kind: str, plural: str) -> None:
    @kopf.on.resume(GROUP, VERSION, plural, id=f"{plural}-not-built", when=sharding.leads)
    @kopf.on.create(GROUP, VERSION, plural, id=f"{plural}-not-built", when=sharding.leads)
    @kopf.on.update(GROUP, VERSION, plural, id=f"{plural}-not-built", when=sharding.leads)
    async def not_built(body: kopf.Body, **_: Any) -> None:
        await report(kind, body, unbuilt.for_whole_kind(kind), BUILT.get(kind, ""))


for _kind, _plural in (("TenantSessionPolicy", "tenantsessionpolicies"),):
    _whole_kind(_kind, _plural)


@kopf.on.resume(GROUP, VERSION, "lifecyclepolicies", when=sharding.leads)
@kopf.on.create(GROUP, VERSION, "lifecyclepolicies", when=sharding.leads)
@kopf.on.update(GROUP, VERSION, "lifecyclepolicies", when=sharding.leads)
async def lifecycle_policy(body: kopf.Body, logger: logging.Logger, **_: Any) -> None:
    try:
        spec = LifecyclePolicySpec.model_validate(dict(body.spec))
    except ValidationError as exc:  # the API server's schema refuses this; an older CRD might not
        logger.warning("LifecyclePolicy %s: %s", body.metadata["name"], exc.errors()[0]["msg"])
        return
    found = [u.text() for u in unbuilt.for_lifecycle_policy(spec)]
    await report("LifecyclePolicy", body, found, f"everything this policy asks for is built (reclaim {spec.reclaim})")
