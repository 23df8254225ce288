"""Tenant handlers: one reconcile for create, update, resume and the periodic verify pass; delete.

Shape (the same for every kind): read, early return, converge each part (every part runs even when
another fails), summarize into kstatus, write status only if it changed, post an Event per changed
condition, and raise TemporaryError with backoff while anything is still failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import defaultdict
from typing import Any

import kopf
from pydantic import ValidationError

from ..api import conditions as cond
from ..api import names
from ..api.common import GROUP, VERSION
from ..api.conditions import Reason
from ..api.tenant import TenantSpec
from ..backends import kube, registry
from ..observability import logs, metrics, tracing
from ..reconcile import diff, repairs, unbuilt, verify_schedule
from ..reconcile import status as tstatus
from ..reconcile.status import PartResult
from ..reconcile.status_patch import status_patch
from . import (
    archive_part,
    autoscaling_part,
    cache_part,
    config,
    credentials_part,
    events,
    loop_slots,
    namespace_part,
    protection,
    sharding,
    suspend_part,
    teardown,
    tenant_services,
)
from .indexes import backends_of, first_stored
from .part_failure import failure
from .tenant_services import Outcome

__all__ = ["reconcile", "verify", "deleted", "lock"]

CFG = config.load()
_repairs = repairs.RepairTracker()
_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
_written: dict[str, tuple[int, str]] = {}
"""The status each tenant's last pass left, by generation, as compact JSON: a body without it is stale (see
_reconcile). Text, not the dict: ~3 KB instead of ~9 KB a tenant (bench/scale/RESULTS.md, 2026-12-06)."""
_schedule = verify_schedule.VerifySchedule(CFG.verify_interval)
_pass_slots = loop_slots.LoopSemaphore(CFG.reconcile_concurrency)
"""At most settings.reconcileConcurrency Tenant passes converge at once (handlers/loop_slots.py)."""


def lock(name: str) -> asyncio.Lock:
    """The lock every pass of this Tenant runs under (workflows wait on it to quiesce a tenant; a migration
    waits on it after taking its hold)."""
    return _locks[name]


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"spec.{where}: {first['msg']}"


async def _converge(name: str, uid: str, body: kopf.Body, logger: logging.Logger, indexes: dict[str, Any]) -> Outcome:
    try:
        names.check(name)
    except ValueError as exc:  # the CRD refuses such names; one made under an older CRD lands here
        return Outcome([PartResult(namespace_part.CONDITION, False, Reason.INVALID_NAME,
                                   f"{exc}; nothing was provisioned. Delete this Tenant (that completes) and "
                                   "create it under a valid name", stalled=True)])
    try:
        tenant = TenantSpec.model_validate(dict(body.spec))
    except ValidationError as exc:
        message = _validation_message(exc)
        return Outcome([PartResult(namespace_part.CONDITION, False, Reason.INVALID_SPEC, message, stalled=True)])
    outcome = Outcome(state=tenant.state)
    fresh = await archive_part.fresh_status(name) if tenant.state == "Archived" else {}
    released = archive_part.released(fresh)  # the live data is gone: provisioning it again would undo the archive
    await _converge_built(name, uid, tenant, body, logger, indexes, outcome, services=not released)
    await archive_part.steps(name, uid, tenant, body, backends_of(indexes.get("backends_by_name")), outcome.parts,
                             outcome.status, released, logger)
    policy = first_stored(indexes.get("lifecycle_policies"), tenant.lifecycle_policy_ref)
    outcome.parts += _unbuilt_parts(tenant, policy) + _lifecycle_policy_parts(tenant, policy, body.status)
    return outcome


LIFECYCLE_CONDITION = "LifecyclePolicyReady"


def _lifecycle_policy_parts(tenant: TenantSpec, policy: dict[str, Any] | None, status: Any) -> list[PartResult]:
    """LifecyclePolicyReady: a spec.lifecyclePolicyRef that names no policy is not ignored in silence (its
    reclaim, retention and protection would not apply). Informational: the tenant serves as before, so Ready
    (what offboard, GitOps and `kubectl wait` read) is not its to say, and nothing retries in a loop; the
    verify pass finds the policy once it exists. Reported only for tenants that name a policy, or named
    one before (to set the condition back to True when the reference is removed). ``policy``: the named
    policy's spec as stored, None when there is none."""
    ref = tenant.lifecycle_policy_ref
    if ref and policy is None:
        return [PartResult(LIFECYCLE_CONDITION, False, Reason.POLICY_NOT_FOUND,
                           f"LifecyclePolicy {ref} does not exist, so its reclaim, retention and protection do not "
                           "apply: a deletion meanwhile retains the data, and a protection label already set stays; "
                           "create the policy or correct spec.lifecyclePolicyRef", informational=True)]
    if ref:
        return [PartResult(LIFECYCLE_CONDITION, True, Reason.SUCCEEDED, f"LifecyclePolicy {ref} applies",
                           informational=True)]
    if any(c.get("type") == LIFECYCLE_CONDITION for c in (status or {}).get("conditions", [])):
        return [PartResult(LIFECYCLE_CONDITION, True, Reason.SUCCEEDED, "no LifecyclePolicy named: reclaim Retain",
                           informational=True)]
    return []


def _unbuilt_parts(tenant: TenantSpec, policy: dict[str, Any] | None) -> list[PartResult]:
    """SpecSupported: nothing asked for is ignored silently (reconcile/unbuilt.py lists what is not built)."""
    found = unbuilt.for_tenant(tenant, policy)
    if found:
        return [PartResult(cond.SPEC_SUPPORTED, False, Reason.NOT_IMPLEMENTED, unbuilt.message(found), stalled=True)]
    return [PartResult(cond.SPEC_SUPPORTED, True, Reason.SUCCEEDED, "every field the spec sets is built")]


async def _converge_built(name: str, uid: str, tenant: TenantSpec, body: kopf.Body, logger: logging.Logger,
                          indexes: dict[str, Any], outcome: Outcome, services: bool = True) -> None:
    ref = tenant.lifecycle_policy_ref
    policy = suspend_part.policy_of(first_stored(indexes.get("lifecycle_policies"), ref) if ref else None)
    gate = await suspend_part.decide(name, tenant, body, policy, backends_of(indexes.get("backends_by_name")), logger)
    outcome.status.update(gate.status)
    if gate.mode.by == "inactivity":
        outcome.state = "Suspended"
    if gate.mode.workloads_down and not gate.mode.doors_closed:
        outcome.ready_message = ("suspended: workloads at 0 replicas; backend logins kept "
                                 "(LifecyclePolicy suspendRevokesLogins: false)")
    try:
        result, written = await namespace_part.ensure(name, uid, tenant, logger)
        for step in written:
            what = f"{step.action.value} {step.kind}/{step.name}"
            outcome.repaired.append(what)
            outcome.diffs[what] = diff.describe(step)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a condition, at once
        result = failure(namespace_part.CONDITION, exc, logger)
    outcome.parts.append(result)
    if not result.ok and not gate.mode.workloads_down:
        return
    # A suspended tenant's doors close even when its namespace cannot be made (owned elsewhere, held in
    # Terminating by a finalizer): nothing the namespace holds is needed to close them.
    if result.ok:
        outcome.status["namespace"] = names.namespace(name)
    try:
        if services:
            await tenant_services.converge(name, uid, tenant, body.metadata, body.status, indexes, outcome,
                                           logger, gate.mode.doors_closed)
    except Exception as exc:  # noqa: BLE001
        outcome.parts.append(failure(credentials_part.CONDITION, exc, logger))
    try:
        outcome.parts, outcome.status["cache"], written = await cache_part.ensure(
            name, uid, tenant, outcome.parts, outcome.targets.get("redis"), body.status.get("cache"), indexes,
            result.ok, logger)
        if written:  # a policy change or a first publish, not drift: a Normal Event, never a repair count
            events.post(body, type="Normal", reason="CacheSettingsPublished",
                        message=f"{', '.join(written)} (CachePolicy {tenant.cache_policy_ref or 'none'})")
    except Exception as exc:  # noqa: BLE001
        outcome.parts = [p for p in outcome.parts if p.condition != cache_part.CONDITION]
        outcome.parts.append(failure(cache_part.CONDITION, exc, logger))
    try:
        if gate.mode.workloads_down:  # the rules pause: their targets go to 0, where HPAs hold still
            parts, status, repaired = suspend_part.paused_autoscaling(tenant), {}, []
        else:
            parts, status, repaired = await autoscaling_part.ensure(name, uid, names.namespace(name), tenant, logger)
    except Exception as exc:  # noqa: BLE001
        parts, status, repaired = [failure(autoscaling_part.CONDITION, exc, logger)], {}, []
    outcome.parts += parts
    outcome.status.update(status)
    outcome.repaired += repaired
    had = cond.get_condition(list(body.status.get("conditions") or []), suspend_part.CONDITION) is not None
    parts, status = await suspend_part.workloads(names.namespace(name), gate.mode, body, had)
    outcome.parts += parts
    outcome.status.update(status)


def _was_ready(status: kopf.Status, generation: int) -> bool:
    """Was the tenant Ready at this generation before this pass? Only then is a write drift.

    Tenants written before `readyGeneration` existed count when Ready is True at this generation.
    """
    if status.get("readyGeneration") is not None:
        return status.get("readyGeneration") == generation
    ready = cond.get_condition(list(status.get("conditions") or []), cond.READY) or {}
    return ready.get("status") == cond.TRUE and ready.get("observedGeneration") == generation


def _report_writes(body: kopf.Body, name: str, generation: int, was_ready: bool, outcome: Outcome,
                   logger: logging.Logger) -> None:
    """Events, metrics and logs for what this pass wrote.

    Writes before the tenant was first Ready at this generation provision it (Normal `Provisioned`);
    after, they repair drift (Warning `DriftRepaired`). An object written again on the very next pass
    is a comparison defect, not drift: one error log with the diff, one `RepeatedRepair` Event,
    cached references forgotten, and the tenant's verify passes held back while it recurs.
    """
    version = str((outcome.status.get("credentials") or {}).get("version", ""))
    verdict = _repairs.record(name, generation, {r: outcome.diffs.get(r, "") for r in outcome.repaired}, version)
    if verdict.recurring:
        metrics.count_repeated_repairs(name, len(verdict.recurring))
    if verdict.new:
        for adapter in registry.loaded():
            adapter.forget_cache()
        logger.error("repeated repair, not drift: %s was written again on the next pass of generation %s "
                     "although nothing else changed it; the comparison disagrees with the server. Differences: %s. "
                     "Cached references forgotten; verify passes held back (%s passes, doubling while it recurs)",
                     ", ".join(verdict.new), generation,
                     "; ".join(f"{r}: {outcome.diffs.get(r, '?')}" for r in verdict.new), verdict.hold_passes)
        events.post(body, type="Warning", reason=Reason.REPEATED_REPAIR,
                    message=f"written on two passes in a row with nothing else changing it: {', '.join(verdict.new)}; "
                           "a comparison defect, not drift (see the operator log); verify passes back off")
    fresh = [r for r in outcome.repaired if r not in verdict.recurring]
    if not fresh:
        return
    if was_ready:
        metrics.count_repairs(name, len(fresh))
        events.post(body, type="Warning", reason=Reason.DRIFT_REPAIRED, message="put back: " + ", ".join(fresh))
    else:
        events.post(body, type="Normal", reason=Reason.PROVISIONED, message="provisioned: " + ", ".join(fresh))


async def reconcile(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, logger: logging.Logger,
                    retry: int = 0, **kwargs: Any) -> bool:
    """One pass, in one trace (its span is the parent of every backend call's, observability/tracing.py);
    True when it wrote anything (provisioning or drift), False when it only read."""
    with tracing.reconcile_span("Tenant", meta["name"]):
        return await _reconcile(body, meta, status, logger, retry, **kwargs)


async def _reconcile(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, logger: logging.Logger,
                     retry: int = 0, **kwargs: Any) -> bool:
    if meta.get("deletionTimestamp"):
        return False
    name, uid, generation = meta["name"], meta["uid"], meta.get("generation", 1)
    # The slot after the tenant's lock: a second pass of the same tenant waits on the lock, not in the
    # slot queue holding a place another tenant could use.
    async with _locks[name], _pass_slots.hold():
        started = time.monotonic()
        written = _written.get(name)
        if written and written[0] == generation and status_patch(status, json.loads(written[1])) is not None:
            # This pass's body predates the status this process last wrote (a verify timer that fired
            # while a creation slower than the verify interval ran, or a watch lagging under load).
            # Read it again, or the pass would mark Reconciling again, patch the status and post every
            # condition's Event once more (bench/scale/RESULTS.md: most tenants of a batch of 100+).
            fresh = await kube.get("Tenant", name)
            fresh_meta = (fresh or {}).get("metadata") or {}
            if fresh is None or fresh_meta.get("deletionTimestamp") or fresh_meta.get("generation", 1) != generation:
                return False  # gone, going, or a newer generation whose own update pass follows
            status = fresh.get("status") or {}
        await sharding.ensure_label(name, meta.get("labels"), logger)
        await protection.mirror(name, body, kwargs.get("lifecycle_protection"), logger)
        current_conditions = list(status.get("conditions", []))
        if status.get("observedGeneration") != generation:
            # Say that a new generation is being worked on; kstatus reads this as in progress.
            progressing = [dict(c) for c in current_conditions]
            message = f"applying generation {generation}"
            marked = cond.set_condition(progressing, cond.RECONCILING, cond.TRUE, Reason.SPEC_CHANGED, message,
                                        generation)
            if marked and status.get("observedGeneration") is None:
                # A creation: the mark rides on the pass's first status write (the placement, with the
                # credentials' staging), not a write and an Event of its own; the summary below starts
                # from no Reconciling condition, so it posts no Reconciling=False either.
                tenant_services.carried[name] = {"conditions": progressing}
            elif marked:
                await kube.merge_patch("Tenant", name, None, {"status": {"conditions": progressing}}, "status")
                events.post(body, type="Normal", reason=Reason.SPEC_CHANGED, message=f"Reconciling=True: {message}")
                current_conditions = progressing

        try:
            with metrics.RECONCILE_SECONDS.labels("Tenant").time():
                outcome = await _converge(name, uid, body, logger, kwargs)
        except (Exception, asyncio.CancelledError):
            # The pass wrote no status: the carried mark at least (a failed write changes nothing).
            carried = tenant_services.carried.pop(name, None)
            if carried:
                with contextlib.suppress(Exception):
                    await kube.merge_patch("Tenant", name, None, {"status": carried}, "status")
            raise
        tenant_services.carried.pop(name, None)  # not written by the pass: the status write below carries the outcome
        parts = outcome.parts
        conditions, phase, changed = tstatus.summarize(current_conditions, parts, generation, outcome.state,
                                                       ready_message=outcome.ready_message)
        metrics.record_tenant(name, conditions, phase)
        metrics.record_credentials(name, outcome.status.get("credentials"))
        for p in parts:
            if not p.ok and not p.informational:
                metrics.PART_FAILURES.labels(p.condition, p.reason).inc()
        wanted = {"observedGeneration": generation, "phase": phase, "conditions": conditions, **outcome.status}
        if outcome.rotated:
            metrics.count_rotation(name, outcome.rotated)
        for message in outcome.rotation_events:
            events.post(body, type="Normal", reason=Reason.ROTATED, message=message)
        for message in outcome.notes:
            events.post(body, type="Normal", reason="PolicyApplied", message=message)
        if cond.is_true(conditions, cond.READY):
            wanted["readyGeneration"] = generation
        # A suspension begun or lifted without a spec change (for inactivity, by its annotation) writes
        # as a spec change does: its own writes, not drift.
        suspension_changed = "suspension" in outcome.status and bool(status.get("suspension")) != bool(
            outcome.status["suspension"])
        _report_writes(body, name, generation, _was_ready(status, generation) and not suspension_changed, outcome,
                       logger)
        if outcome.adopted:
            events.post(body, type="Normal", reason=Reason.RETAINED_DATA_ADOPTED,
                        message="re-attached data retained from a deleted tenant of this name (spec.adoptRetainedData): "
                               + ", ".join(outcome.adopted))
        patch = status_patch(status, wanted)  # names with null what `status` keeps that `wanted` dropped
        if patch is not None:
            await kube.merge_patch("Tenant", name, None, {"status": patch}, "status")
        _written[name] = (generation, json.dumps(wanted, separators=(",", ":")))
        _schedule.finished(name, started)
        events.post_condition_changes(body, conditions, changed)

    failing = [p for p in parts if not p.ok and not p.stalled and not p.informational]
    metrics.RECONCILES.labels("Tenant", "retry" if failing else phase).inc()
    if failing:
        delay = min(CFG.retry_max, CFG.retry_base * (2 ** min(retry, 10)))
        raise kopf.TemporaryError("; ".join(p.message for p in failing), delay=delay)
    return bool(outcome.repaired)


def _jitter(**_: Any) -> float:
    return random.uniform(0, CFG.verify_interval * CFG.verify_jitter) + CFG.verify_interval


@kopf.on.resume(GROUP, VERSION, "tenants", backoff=CFG.retry_max, when=sharding.owns_tenant)
@kopf.on.create(GROUP, VERSION, "tenants", backoff=CFG.retry_max, when=sharding.owns_tenant)
@kopf.on.update(GROUP, VERSION, "tenants", backoff=CFG.retry_max, when=sharding.owns_tenant)
async def changed(**kwargs: Any) -> None:
    with metrics.handler_run("tenant"), logs.reconcile_scope():
        await reconcile(**kwargs)


@kopf.timer(GROUP, VERSION, "tenants", interval=CFG.verify_interval, initial_delay=_jitter, backoff=CFG.retry_max,
            when=sharding.owns_tenant)
async def verify(meta: kopf.Meta, **kwargs: Any) -> None:
    """The periodic verify pass: reads everything, writes only where it finds drift.

    Skipped while a repeated repair holds the tenant back (see reconcile/repairs.py), and while
    another pass of the tenant runs or one began less than 0.9 of an interval ago
    (reconcile/verify_schedule.py).
    """
    name = meta["name"]
    if _repairs.hold(name, meta.get("generation", 1)):
        return
    held = _locks.get(name)
    if not _schedule.due(name, time.monotonic(), running=held is not None and held.locked()):
        metrics.VERIFY_PASSES.labels("skipped").inc()
        return
    if _pass_slots.full() and _schedule.defer(name):
        # Creations hold every slot: this pass would only queue behind them (bounded, see defer).
        metrics.VERIFY_PASSES.labels("deferred").inc()
        return
    with metrics.handler_run("tenant-verify"), logs.reconcile_scope():
        try:
            wrote = await reconcile(meta=meta, **kwargs)
        except Exception:
            metrics.VERIFY_PASSES.labels("failed").inc()
            raise
        metrics.VERIFY_PASSES.labels("repaired" if wrote else "clean").inc()


async def _report_blocked(body: kopf.Body, status: kopf.Status, blocked: teardown.Blocked) -> None:
    """Say at once, in status and an Event, that the deletion cannot finish and what a person can do."""
    generation = body.metadata.get("generation", 1)
    conditions = [dict(c) for c in status.get("conditions", [])]
    changed = cond.set_condition(conditions, cond.TERMINATING, cond.TRUE, blocked.reason, blocked.message, generation)
    cond.set_condition(conditions, cond.READY, cond.FALSE, Reason.TERMINATING,
                       f"deletion cannot finish: {blocked.message}", generation)
    cond.set_condition(conditions, cond.STALLED, cond.TRUE if blocked.needs_person else cond.FALSE,
                       blocked.reason if blocked.needs_person else Reason.TERMINATING,
                       blocked.message if blocked.needs_person else "", generation)
    cond.set_condition(conditions, cond.RECONCILING, cond.FALSE if blocked.needs_person else cond.TRUE,
                       blocked.reason, "waiting for a person" if blocked.needs_person else "retrying the deletion",
                       generation)
    wanted = {"phase": "Terminating", "conditions": conditions}
    patch = status_patch(status, wanted)
    if patch is not None:
        await kube.merge_patch("Tenant", body.metadata["name"], None, {"status": patch}, "status")
    if changed:
        events.post(body, type="Warning", reason=blocked.reason, message=f"Terminating=True: {blocked.message}")


@kopf.on.delete(GROUP, VERSION, "tenants", backoff=CFG.retry_max, when=sharding.owns_tenant)
async def deleted(**kwargs: Any) -> None:
    with metrics.handler_run("tenant-delete"), logs.reconcile_scope():
        await _delete(**kwargs)


async def _delete(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, logger: logging.Logger, **kwargs: Any) -> None:
    name = meta["name"]
    if not names.is_tenant_name(name):
        # Made under an older CRD: no identifier of ours derives from it, so there is nothing to tear
        # down by name; never fail (the finalizer must come off), say so instead.
        events.post(body, type="Warning", reason=Reason.INVALID_NAME,
                    message=f"{name!r} is not a valid Tenant name (at most {names.MAX_TENANT_NAME} characters, a "
                           "DNS-1123 label); nothing on the backends or namespaces was touched. Objects an older "
                           "operator version made for it (names cut and hashed) must be removed by hand")
        metrics.forget_tenant(name)
        return
    with tracing.reconcile_span("Tenant", name, action="delete"):
        async with _locks[name]:
            try:
                await teardown.backends(body, dict(status.get("placement") or {}),
                                        backends_of(kwargs.get("backends_by_name")), logger)
            except teardown.Blocked as blocked:
                await _report_blocked(body, status, blocked)
                raise kopf.TemporaryError(blocked.message, delay=blocked.delay) from blocked
            gone = await namespace_part.remove(name, logger)
    if kwargs.get("patch") is not None:
        sharding.drop_stale_finalizers(meta, kwargs["patch"])
    _locks.pop(name, None)
    _written.pop(name, None)
    _schedule.forget(name)
    tenant_services.forget(name)
    metrics.forget_tenant(name)
    _repairs.forget(name)
    autoscaling_part.forget(name)  # cached models, refit tasks and metric series of its rules
    if not gone:
        logger.info("namespace deletion requested; the controller manager finishes it")
