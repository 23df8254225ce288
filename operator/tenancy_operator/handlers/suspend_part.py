"""Suspension glue (issue 13): inactivity suspend, workloads to zero and back, autoscaling paused.

Per pass, before the services converge, `decide` says how suspended the tenant is
(reconcile/suspension.py) and, when the tenant's LifecyclePolicy has `inactivitySuspendAfter` and
the tenant is idle that long, suspends it: the annotation `tenancy.dev/suspended-for-inactivity` on
the Tenant (spec is never rewritten) and a Normal `SuspendedForInactivity` Event saying why. After
the services, `workloads` scales the namespace's Deployments and StatefulSets to zero (remembering
each count on the workload itself) or restores the remembered counts.

Autoscaling while suspended: the HPA controller does not scale a target whose spec.replicas is 0
(ScalingActive=False, ScalingDisabled) unless the HPA's minReplicas is 0 (the HPAScaleToZero alpha
gate), so no HPA is changed or set aside; the tenant's rules are paused (no HPA write, no lift) and
report AutoscalingReady=True, reason Suspended. Anything that scales a workload up while suspended
(a KEDA ScaledObject, a scale-to-zero HPA, a GitOps sync) is scaled back on the next pass, and its
count becomes the one resume brings back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from ..api import names
from ..api.common import parse_duration
from ..api.conditions import Reason
from ..api.lifecycle_policy import LifecyclePolicySpec
from ..api.tenant import TenantSpec
from ..backends import kube, registry
from ..reconcile import suspension
from ..reconcile.status import PartResult
from . import config, events
from .targets import target_for

__all__ = ["Gate", "policy_of", "decide", "observe", "workloads", "paused_autoscaling", "CONDITION", "WORKLOAD_KINDS"]

CONDITION = "WorkloadsScaled"
"""Reported while suspended, on resume, and after (once it exists): the workloads are where the state wants them."""
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@dataclass
class Gate:
    mode: suspension.Mode
    status: dict[str, Any] = field(default_factory=dict)
    """status.activity (None: no clock runs)."""


def policy_of(spec: dict[str, Any] | None) -> LifecyclePolicySpec | None:
    """The stored LifecyclePolicy spec (camelCase) as a model; None when absent or unreadable."""
    if spec is None:
        return None
    try:
        return LifecyclePolicySpec.model_validate(spec)
    except ValidationError:
        return None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def observe(name: str, tenant: TenantSpec, placement: dict[str, str], backends: dict[str, dict[str, Any]]
                  ) -> suspension.Observation:
    """Read the tenant's use: sessions and clients on each placed backend whose adapter can tell, and
    ready replicas in its namespace. What cannot be read is listed as unknown (never taken for idle)."""
    unknown: list[str] = []
    seen: dict[str, dict[str, int | None]] = {}
    for service in ("postgres", "redis"):
        if not getattr(tenant, service).enabled:
            continue
        backend = backends.get(placement.get(service, ""))
        adapter = registry.adapter(service)
        if backend is None or adapter is None:
            unknown.append(f"{service} is not placed yet")
            continue
        try:
            seen[service] = await adapter.activity(await target_for(backend), name)
        except Exception as exc:  # noqa: BLE001 - an unreadable backend means "cannot tell", never "idle"
            unknown.append(f"{service}: {type(exc).__name__}: {exc}")
    ready = 0
    try:
        for kind in WORKLOAD_KINDS:
            for obj in await kube.list_objects(kind, names.namespace(name)):
                ready += int((obj.get("status") or {}).get("readyReplicas") or 0)
    except kube.KubeError as exc:
        unknown.append(f"workloads: {exc}")
    pg, rd = seen.get("postgres") or {}, seen.get("redis") or {}
    return suspension.Observation(pg_open=pg.get("open"), pg_established=pg.get("established"),
                                  redis_clients=rd.get("clients"), ready_replicas=ready, unknown=unknown)


async def decide(name: str, tenant: TenantSpec, body: kopf.Body, policy: LifecyclePolicySpec | None,
                 backends: dict[str, dict[str, Any]], logger: logging.Logger) -> Gate:
    """The suspension in force this pass; suspends for inactivity when the policy's limit is reached."""
    annotations = dict(body.metadata.get("annotations") or {})
    mode = suspension.mode(tenant.state, annotations, policy)
    if mode.by == "spec" and suspension.INACTIVITY in annotations:
        # A spec suspension supersedes the operator's: resuming by spec must resume.
        await kube.merge_patch("Tenant", name, None, {"metadata": {"annotations": {suspension.INACTIVITY: None}}})
    after = policy.inactivity_suspend_after if policy else None
    if mode.by is not None or after is None:
        return Gate(mode, {"activity": None})  # no clock while suspended: it restarts at resume
    now = _now()
    seen = await observe(name, tenant, dict(body.status.get("placement") or {}), backends)
    verdict = suspension.inactivity(body.status.get("activity"), seen, now, parse_duration(after),
                                    timedelta(seconds=config.load().verify_interval))
    if not verdict.suspend:
        return Gate(mode, {"activity": verdict.record})
    since = suspension.fmt_time(now)
    await kube.merge_patch("Tenant", name, None, {"metadata": {"annotations": {suspension.INACTIVITY: since}}})
    checked = [f"PostgreSQL sessions of {names.pg_login_role(name, 'a')} or {names.pg_login_role(name, 'b')}, "
               f"new sessions to {names.pg_database(name)}" if tenant.postgres.enabled else "",
               f"Redis clients of {names.redis_user(name)}" if tenant.redis.enabled else "",
               f"ready replicas in {names.namespace(name)}"]
    message = (f"suspended for inactivity: {verdict.why}; none of: {', '.join(c for c in checked if c)}. "
               f"Resume with `kubectl tenant resume {name}` (or remove the annotation {suspension.INACTIVITY})")
    logger.info("%s", message)
    events.post(body, type="Normal", reason=Reason.SUSPENDED_FOR_INACTIVITY, message=message)
    revokes = policy is None or policy.suspend_revokes_logins
    return Gate(suspension.Mode("inactivity", revokes, since), {"activity": None})


async def workloads(namespace: str, mode: suspension.Mode, body: kopf.Body, had_condition: bool
                    ) -> tuple[list[PartResult], dict[str, Any]]:
    """Scale every Deployment and StatefulSet in ``namespace`` to where the mode wants it.

    Returns (parts, status fields): status.suspension while suspended ({by, since, loginsRevoked,
    workloads: {"Deployment/api": 3}}), None otherwise. One Normal Event per pass that scaled anything.
    """
    down = mode.workloads_down
    changed: list[str] = []
    kept: dict[str, int] = {}
    try:
        for kind in WORKLOAD_KINDS:
            for obj in await kube.list_objects(kind, namespace):
                patch, what = suspension.workload_patch(obj, down)
                meta = obj["metadata"]
                if patch is not None:
                    await kube.merge_patch(kind, meta["name"], namespace, patch)
                    changed.append(what)
                note = (patch or {}).get("metadata", {}).get("annotations", {}).get(suspension.SUSPENDED_REPLICAS) \
                    or (meta.get("annotations") or {}).get(suspension.SUSPENDED_REPLICAS)
                if down and note and suspension.remembered_count(note) is not None:
                    kept[f"{kind}/{meta['name']}"] = int(note)
    except kube.KubeError as exc:
        part = PartResult(CONDITION, False, "ApiError",
                          f"scaling the workloads {'to zero' if down else 'back'} failed: API server said {exc}")
        return [part], {}
    if changed:
        events.post(body, type="Normal", reason=Reason.WORKLOADS_SCALED_DOWN if down else Reason.WORKLOADS_RESTORED,
                    message=("scaled to 0 (counts kept in the annotation " + suspension.SUSPENDED_REPLICAS + "): "
                            if down else "restored: ") + ", ".join(changed))
    status: dict[str, Any] = {"suspension": None}
    if down:
        status["suspension"] = {"by": mode.by, "loginsRevoked": mode.doors_closed, "workloads": kept,
                                **({"since": mode.since} if mode.since else {})}
    if not (down or changed or had_condition):
        return [], status
    if down:
        message = f"{len(kept)} workloads at 0 replicas, counts kept for resume" if kept else "no workload to scale"
        return [PartResult(CONDITION, True, Reason.SUSPENDED, message)], status
    message = ("restored " + ", ".join(changed)) if changed else "not suspended: workloads run at their own counts"
    return [PartResult(CONDITION, True, Reason.SUCCEEDED, message)], status


def paused_autoscaling(tenant: TenantSpec) -> list[PartResult]:
    """AutoscalingReady while suspended: the rules are paused (no HPA write), the HPAs hold still."""
    if not tenant.autoscaling:
        return []
    return [PartResult("AutoscalingReady", True, Reason.SUSPENDED,
                       "paused while suspended: the targets are at 0 replicas, where the HPA controller does not "
                       "scale (ScalingDisabled); no HPA is written until resume")]
