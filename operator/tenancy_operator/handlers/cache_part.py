"""CachePolicy for one tenant: its settings published to ConfigMap `tenant-cache`, its budget enforced.

Runs after the Redis part each pass (create, update and every verify pass), so a policy change reaches
each tenant that uses it within one verify interval, and a policy that appears lifts PolicyNotFound
on the next one. The result folds into the CacheReady condition. Steady state writes nothing: the
ConfigMap is compared first, and the status carries usage rounded to 1% of the budget.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import kopf
from pydantic import ValidationError

from ..api import names
from ..api.cache_policy import CachePolicySpec
from ..api.common import GROUP, VERSION
from ..api.conditions import Reason, now_iso
from ..api.tenant import TenantSpec
from ..backends import kube, redis_cache
from ..backends.base import BackendRefused, BackendUnavailable, Target
from ..observability import metrics
from ..reconcile import cache, diff, labels
from ..reconcile.status import PartResult
from . import apply, policies, sharding
from .indexes import first_stored

__all__ = ["cache_policies", "cache_policy", "ensure", "CONDITION", "POLICY_NOT_FOUND"]

CONDITION = "CacheReady"
POLICY_NOT_FOUND = Reason.POLICY_NOT_FOUND


@kopf.index(GROUP, VERSION, "cachepolicies")
def cache_policies(name: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: dict(spec)}


@kopf.on.resume(GROUP, VERSION, "cachepolicies", when=sharding.leads)
@kopf.on.create(GROUP, VERSION, "cachepolicies", when=sharding.leads)
@kopf.on.update(GROUP, VERSION, "cachepolicies", when=sharding.leads)
async def cache_policy(body: kopf.Body, **_: Any) -> None:
    """A CachePolicy is Ready: the API server validated it, and every field it has is built."""
    await policies.report("CachePolicy", body, [], "every field is built: tenants naming it get its settings in "
                                                     "ConfigMap tenant-cache and its budget on their Redis keys")


async def _publish(tenant: str, uid: str, settings: dict[str, Any] | None, logger: logging.Logger) -> list[str]:
    """ConfigMap `tenant-cache` as wanted (None: absent, when the tenant names no policy)."""
    namespace = names.namespace(tenant)
    live = await kube.get("ConfigMap", cache.CONFIGMAP, namespace)
    if settings is None:
        if live is None or labels.tenant_of(live) != tenant:
            return []
        await kube.delete("ConfigMap", cache.CONFIGMAP, namespace)
        return [f"delete ConfigMap/{cache.CONFIGMAP}"]
    desired = cache.desired_configmap(tenant, uid, settings)
    plan = diff.plan([desired], {("ConfigMap", cache.CONFIGMAP): live})
    return [f"{s.action.value} ConfigMap/{s.name}" for s in await apply.execute(plan, logger)]


async def _enforce(tenant: str, target: Target, spec: CachePolicySpec, settings: dict[str, Any],
                   previous: dict[str, Any] | None) -> tuple[cache.Estimate, dict[str, Any], str]:
    """Measure, evict when over budget; (estimate after the pass, the status `cache`, a note)."""
    started = time.perf_counter()
    budget = settings["memoryBudgetBytes"]
    measured = await redis_cache.measure(target, tenant)
    sample = cache.Sample(**dataclasses.asdict(measured))
    est = cache.estimate(sample)
    evicted_total = int((previous or {}).get("evictedKeys") or 0)
    last = (previous or {}).get("lastEviction")
    note = ""
    if est.usage_bytes > budget and sample.sizes:
        mean = est.usage_bytes / max(est.keys, 1)
        to_free = est.usage_bytes - int(cache.EVICT_TO * budget)
        scored, used = await redis_cache.candidates(target, tenant, int(to_free / mean) + 1, spec.eviction_order)
        victims = cache.coldest_first(scored, to_free, names.redis_prefix(tenant).encode())
        sizes = {k: s for k, s, _ in scored}
        removed = await redis_cache.unlink(target, tenant, victims)
        freed = sum(sizes[k] for k in victims)
        evicted_total += removed
        metrics.count_evictions(tenant, removed)
        est = cache.Estimate(max(0, est.keys - removed), max(0, est.usage_bytes - freed), est.relative_error)
        last = {"keys": removed, "bytes": freed, "seconds": round(time.perf_counter() - started, 3), "at": now_iso()}
        if used != spec.eviction_order:
            note = (f"evictionOrder {spec.eviction_order} needs {'an LFU' if used == 'IdleTime' else 'a non-LFU'} "
                    f"maxmemory-policy on the server; evicted by {used} instead")
    seconds = time.perf_counter() - started
    metrics.record_cache(tenant, est.usage_bytes, budget, est.relative_error, seconds)
    step = max(1, budget // 100)
    status = {"policy": settings["policy"], "budgetBytes": budget, "usageBytes": round(est.usage_bytes / step) * step,
              "relativeError": round(est.relative_error, 2), "evictedKeys": evicted_total}
    if last:  # absent rather than null: the server drops nulls, and a null here would differ every pass
        status["lastEviction"] = last
    return est, status, note


async def ensure(tenant: str, uid: str, spec: TenantSpec, parts: list[PartResult], target: Target | None,
                 previous: dict[str, Any] | None, indexes: dict[str, Any], namespace_ready: bool,
                 logger: logging.Logger) -> tuple[list[PartResult], dict[str, Any] | None, list[str]]:
    """The parts with CacheReady rewritten for the policy, the status `cache` (None: none), what was written."""
    ref = spec.cache_policy_ref
    if not ref:
        written = await _publish(tenant, uid, None, logger) if namespace_ready else []
        metrics.forget_cache(tenant)
        return parts, None, written
    others = [p for p in parts if p.condition != CONDITION]
    redis_part = next((p for p in parts if p.condition == CONDITION), None)
    raw = first_stored(indexes.get("cache_policies"), ref)
    if raw is None:
        return others + [PartResult(CONDITION, False, POLICY_NOT_FOUND,
                                    f"CachePolicy {ref} (spec.cachePolicyRef) does not exist: create it or name "
                                    "another; the tenant picks it up on its next verify pass", stalled=True)], None, []
    if not spec.redis.enabled:
        return others + [PartResult(CONDITION, False, Reason.INVALID_SPEC,
                                    f"spec.cachePolicyRef {ref} needs spec.redis.enabled: true (the policy governs "
                                    "the tenant's Redis keys)", stalled=True)], None, []
    try:
        policy = CachePolicySpec.model_validate(raw)
    except ValidationError as exc:  # the API server validates policies; an older CRD might not have
        return others + [PartResult(CONDITION, False, Reason.INVALID_SPEC,
                                    f"CachePolicy {ref}: {exc.errors()[0]['msg']}", stalled=True)], None, []
    settings = cache.effective(tenant, ref, policy)
    written = await _publish(tenant, uid, settings, logger) if namespace_ready else []
    if redis_part is None or not redis_part.ok or target is None:
        return parts, previous, written  # the Redis part already says what is wrong
    try:
        est, status, note = await _enforce(tenant, target, policy, settings, previous)
    except (BackendUnavailable, BackendRefused) as exc:
        return others + [PartResult(CONDITION, False, Reason.BACKEND_UNAVAILABLE,
                                    f"{redis_part.message}; the cache budget could not be enforced: {exc}",
                                    outage=isinstance(exc, BackendUnavailable))], previous, written
    text = cache.message(ref, est, settings["memoryBudgetBytes"], status["evictedKeys"], status.get("lastEviction"), note)
    return others + [dataclasses.replace(redis_part, message=f"{redis_part.message}; {text}")], status, written
