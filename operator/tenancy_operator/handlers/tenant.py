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
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from ..api import conditions as cond
from ..api import names
from ..api.common import GROUP, VERSION
from ..api.conditions import Reason
from ..api.tenant import TenantSpec
from ..backends import kube, registry
from ..backends.base import Report, TenantSlice
from ..observability import logs, metrics, tracing
from ..reconcile import diff, labels, repairs, unbuilt, verify_schedule
from ..reconcile import status as tstatus
from ..reconcile.status import PartResult
from ..reconcile.status_patch import status_patch
from . import (
    archive_part,
    autoscaling_part,
    cache_part,
    config,
    credentials_part,
    loop_slots,
    migration_hold,
    name_held,
    namespace_part,
    protection,
    services_part,
    sessions_part,
    sharding,
    suspend_part,
    teardown,
    workloads,
)

__all__ = ["reconcile", "verify", "deleted", "lock"]

CFG = config.load()
_repairs = repairs.RepairTracker()
_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
_written: dict[str, tuple[int, str]] = {}
"""The status each tenant's last pass left, by generation, as compact JSON: a body without it is stale (see
_reconcile). Text, not the dict: ~3 KB instead of ~9 KB a tenant (bench/scale/RESULTS.md, 2026-12-06)."""
_schedule = verify_schedule.VerifySchedule(CFG.verify_interval)
_carried: dict[str, dict[str, Any]] = {}
"""Status fields a creation's pass writes with its first status write (its Reconciling mark)."""
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


@dataclass
class Outcome:
    parts: list[PartResult] = field(default_factory=list)
    state: str = "Active"
    status: dict[str, Any] = field(default_factory=dict)
    """Status fields besides conditions and phase (namespace, endpoints, placement...)."""
    repaired: list[str] = field(default_factory=list)
    """Objects written to put the world back in line; each verify pass that writes says so in an Event."""
    rotated: str = ""
    """The reason of a rotation this pass completed (the rotations metric's label)."""
    rotation_events: list[str] = field(default_factory=list)
    """Messages of Normal `Rotated` Events."""
    diffs: dict[str, str] = field(default_factory=dict)
    """What differed, per repaired object (no secret values): logged when a repair recurs."""
    adopted: list[str] = field(default_factory=list)
    """Retained data of a deleted Tenant re-attached by spec.adoptRetainedData (a Normal Event)."""
    ready_message: str | None = None
    """Ready's message when it is not the state's usual one (a suspend that keeps the logins)."""
    notes: list[str] = field(default_factory=list)
    """Writes a referenced policy's change asked for (Normal `PolicyApplied` Events; not drift)."""
    targets: dict[str, Any] = field(default_factory=dict)
    """The backend target each placed service resolved to this pass (the cache budget uses Redis's)."""


def _store_first(index: Any, key: Any) -> Any:
    store = index.get(key) if index is not None else None
    return next(iter(store), None) if store else None


def _backends(index: Any) -> dict[str, dict[str, Any]]:
    return {name: _store_first(index, name) for name in (index or {})}


# Placements this process wrote that the `placements` index may not show yet: kopf updates an index
# from each object's own event stream, so the next tenant's placement can run before the previous
# tenant's status event reached the index, and would see its backend one tenant emptier.
_placed_here: defaultdict[tuple[str, str], set[str]] = defaultdict(set)


def _counts(index: Any) -> dict[tuple[str, str], int]:
    seen = {key: set(store) for key, store in (index or {}).items()}
    for key, pending in _placed_here.items():
        pending -= seen.get(key, set())  # the index caught up with these
        seen.setdefault(key, set()).update(pending)
    return {key: len(tenants) for key, tenants in seen.items()}


async def _services(name: str, uid: str, tenant: TenantSpec, meta: kopf.Meta, status: kopf.Status,
                    indexes: dict[str, Any], outcome: Outcome, logger: logging.Logger, suspended: bool) -> None:
    namespace = names.namespace(name)
    services = services_part.enabled_services(tenant)
    # Placement, credentials and a migration's hold are read fresh: the watched body can lag behind
    # the last status write (this process's own, or a migration's), and a stale view would place the
    # tenant back, rotate twice, or undo a write freeze.
    fresh = ((await kube.get("Tenant", name)) or {}).get("status") or {}
    placed = dict(fresh.get("placement") or status.get("placement") or {})
    hold = fresh.get("migration")
    if hold:  # a hold whose run ended or went (its undo failed) is lifted here, else it would stay for good
        lifted = await migration_hold.lift_if_stale(name, logger)
        if lifted:
            outcome.repaired.append(lifted)
            hold = None
    held = ["postgres"] if hold and "postgres" in services else []
    resolved = await services_part.resolve(tenant, placed, _backends(indexes.get("backends_by_name")),
                                           _counts(indexes.get("placements")))
    new_placement = {**placed, **resolved.placement}
    # The choice is recorded before anything is provisioned there, so a crash cannot place the tenant
    # twice: with the first credentials' staging when there is one (one status patch instead of two
    # on every new tenant), else on its own just before the services run (`_record`).
    unrecorded: dict[str, Any] = _carried.pop(name, {})  # a creation's Reconciling mark, if any
    if new_placement != placed:
        unrecorded["placement"] = new_placement
        for service, backend in new_placement.items():
            if placed.get(service) != backend:
                _placed_here[(service, backend)].add(name)
    # `placement` is written above, only when a service is first placed; the final status write must
    # not carry it, or a pass that read it before a migration's switch would put the old one back.
    if not held:
        outcome.status["backends"] = " ".join(f"{s}={b}" for s, b in sorted(resolved.placement.items())) or None
    outcome.parts += list(resolved.problems.values())
    outcome.targets = resolved.targets
    closed, problems = await services_part.close_disabled(name, new_placement, services,
                                                          _backends(indexes.get("backends_by_name")), logger)
    outcome.repaired += closed
    outcome.parts += problems
    if not services:
        await _record(name, unrecorded)
        return
    if held:
        await _record(name, unrecorded)
        # A migrate-database run holds the database: it, the credentials Secret and the placement are
        # the run's until it ends (status.migration). The other services carry on with their passwords.
        message = (f"WorkflowRun {hold.get('run')} is moving the database to {hold.get('targetBackend')}; writes are "
                   "frozen until it switches or compensates")
        outcome.parts += [PartResult(services_part.SERVICES["postgres"], False, Reason.MIGRATING, message),
                          PartResult(credentials_part.CONDITION, False, Reason.MIGRATING,
                                     f"the credentials Secret is WorkflowRun {hold.get('run')}'s until it ends")]
        await _held_services(name, uid, namespace, tenant, [s for s in services if s not in held],
                             resolved, status, outcome, logger)
        return
    ready = [s for s in services if s in resolved.targets]
    requested = (meta.get("annotations") or {}).get(labels.ROTATE, "")
    known = fresh.get("credentials") or status.get("credentials")
    try:
        plan = await credentials_part.prepare(name, uid, namespace, tenant, ready, requested, known, logger,
                                              record=unrecorded)
        credentials_failed = None
    except Exception as exc:  # noqa: BLE001 - a credentials failure must not stop the other parts (suspend above all)
        credentials_failed = _failure(credentials_part.CONDITION, exc, logger)
        plan = credentials_part.unknown(known, tenant)
    await _record(name, unrecorded)  # what no staging carried
    reports: dict[str, Report] = {}
    live = indexes.get("tenants_by_uid")
    session_policy, session_problem = sessions_part.resolve(tenant, indexes.get("session_policies"))
    results = await asyncio.gather(*[
        services_part.run(s, resolved.targets[s],
                          sessions_part.with_key(
                              _restoring(credentials_part.slice_for(plan, s, name, namespace, tenant, suspended, uid=uid),
                                         s, name, tenant),
                              session_policy if s == "vault" else None), logger,
                          adopt_retained=tenant.adopt_retained_data,
                          owner_of=lambda u: _store_first(live, u) if u != uid else name)
        for s in ready
    ])
    # Writes a rotation (or the end of its overlap) makes are the rotation's, not drift.
    rotating = plan.staged and plan.state.reason in credentials_part.ROTATIONS or plan.closing
    for service, (part, report) in zip(ready, results, strict=True):
        outcome.parts.append(part)
        outcome.adopted += report.adopted
        if not (rotating and service in credentials_part.PASSWORD_KEYS):
            # Re-marking adopted data was asked for in the spec: not drift.
            kept = [r for r in report.repaired if not (report.adopted and r.startswith("ownership mark"))]
            outcome.repaired += kept
            outcome.diffs.update({r: report.diffs[r] for r in kept if r in report.diffs})
        if part.ok:
            reports[service] = report
            if service == "postgres":
                metrics.record_database_size(name, report.database_bytes)
    vault_part = next((p for p in outcome.parts if p.condition == services_part.SERVICES["vault"]), None)
    sessions = await sessions_part.converge(name, uid, namespace, tenant, session_policy, session_problem,
                                            reports.get("vault"), vault_part)
    outcome.parts += sessions.parts
    outcome.repaired += sessions.repaired
    outcome.rotation_events += sessions.rotated
    outcome.notes += sessions.policy_changed
    if credentials_failed:
        outcome.parts.append(credentials_failed)
        return
    failing = [p for p in outcome.parts if not p.ok and p.condition in services_part.SERVICES.values()]
    if failing:
        # Waiting on parts that are all Stalled is itself stalled: no retry loop until something changes.
        outcome.parts.append(PartResult(credentials_part.CONDITION, False, "WaitingForBackends",
                                        f"credentials wait for {', '.join(p.condition for p in failing)}",
                                        stalled=all(p.stalled for p in failing)))
        return
    if ((await kube.get("Tenant", name)) or {}).get("status", {}).get("migration"):
        return  # a migration took the hold during this pass: the Secret is its now (see _held_services)
    published = await credentials_part.publish(name, uid, namespace, plan, reports, tenant, known)
    outcome.parts.append(published.part)
    outcome.repaired += published.repaired
    outcome.rotated = published.rotated
    outcome.rotation_events += published.events
    outcome.status["credentials"] = published.status
    data = {k: v for r in reports.values() for k, v in r.endpoints.items()}
    outcome.status["endpoints"] = credentials_part.public_endpoints(data)
    if tenant.credentials.restart_workloads:
        rolled = [f"rolled {w}" for w in await workloads.roll(namespace, plan.state.version)]
        if plan.staged and rolled:
            outcome.rotation_events = [m + "; " + ", ".join(rolled) for m in outcome.rotation_events]
        elif not plan.staged:
            outcome.repaired += rolled


async def _record(name: str, unrecorded: dict[str, Any]) -> None:
    """Write the status fields still in `unrecorded` (a placement) and empty it."""
    if unrecorded:
        await kube.merge_patch("Tenant", name, None, {"status": dict(unrecorded)}, "status")
        unrecorded.clear()


def _restoring(want: TenantSlice, service: str, name: str, tenant: TenantSpec) -> TenantSlice:
    # A restore into a name held by a deleted tenant's archives hands their key on (handlers/name_held.py).
    return name_held.with_restore(want, name, tenant) if service == "vault" else want


async def _held_services(name: str, uid: str, namespace: str, tenant: TenantSpec, services: list[str],
                         resolved: services_part.Resolved, status: kopf.Status, outcome: Outcome,
                         logger: logging.Logger) -> None:
    """The services a migration does not hold, with the passwords they have (no rotation, no publish)."""
    plan = credentials_part.unknown(status.get("credentials"), tenant)
    suspended = tenant.state != "Active"
    for service in [s for s in services if s in resolved.targets]:
        part, report = await services_part.run(
            service, resolved.targets[service],
            credentials_part.slice_for(plan, service, name, namespace, tenant, suspended, uid=uid), logger,
            adopt_retained=tenant.adopt_retained_data)
        outcome.parts.append(part)
        outcome.repaired += report.repaired


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
    await archive_part.steps(name, uid, tenant, body, _backends(indexes.get("backends_by_name")), outcome.parts,
                             outcome.status, released, logger)
    outcome.parts += _unbuilt_parts(tenant, indexes)
    return outcome


def _unbuilt_parts(tenant: TenantSpec, indexes: dict[str, Any]) -> list[PartResult]:
    """SpecSupported: nothing asked for is ignored silently (reconcile/unbuilt.py lists what is not built)."""
    ref = tenant.lifecycle_policy_ref
    policy = _store_first(indexes.get("lifecycle_policies"), ref) if ref else None
    found = unbuilt.for_tenant(tenant, policy)
    if found:
        return [PartResult(cond.SPEC_SUPPORTED, False, Reason.NOT_IMPLEMENTED, unbuilt.message(found), stalled=True)]
    return [PartResult(cond.SPEC_SUPPORTED, True, Reason.SUCCEEDED, "every field the spec sets is built")]


async def _converge_built(name: str, uid: str, tenant: TenantSpec, body: kopf.Body, logger: logging.Logger,
                          indexes: dict[str, Any], outcome: Outcome, services: bool = True) -> None:
    ref = tenant.lifecycle_policy_ref
    policy = suspend_part.policy_of(_store_first(indexes.get("lifecycle_policies"), ref) if ref else None)
    gate = await suspend_part.decide(name, tenant, body, policy, _backends(indexes.get("backends_by_name")), logger)
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
        result = _failure(namespace_part.CONDITION, exc, logger)
    outcome.parts.append(result)
    if not result.ok and not gate.mode.workloads_down:
        return
    # A suspended tenant's doors close even when its namespace cannot be made (owned elsewhere, held in
    # Terminating by a finalizer): nothing the namespace holds is needed to close them.
    if result.ok:
        outcome.status["namespace"] = names.namespace(name)
    try:
        if services:
            await _services(name, uid, tenant, body.metadata, body.status, indexes, outcome, logger,
                            gate.mode.doors_closed)
    except Exception as exc:  # noqa: BLE001
        outcome.parts.append(_failure(credentials_part.CONDITION, exc, logger))
    try:
        outcome.parts, outcome.status["cache"], written = await cache_part.ensure(
            name, uid, tenant, outcome.parts, outcome.targets.get("redis"), body.status.get("cache"), indexes,
            result.ok, logger)
        if written:  # a policy change or a first publish, not drift: a Normal Event, never a repair count
            kopf.event(body, type="Normal", reason="CacheSettingsPublished",
                       message=f"{', '.join(written)} (CachePolicy {tenant.cache_policy_ref or 'none'})")
    except Exception as exc:  # noqa: BLE001
        outcome.parts = [p for p in outcome.parts if p.condition != cache_part.CONDITION]
        outcome.parts.append(_failure(cache_part.CONDITION, exc, logger))
    try:
        if gate.mode.workloads_down:  # the rules pause: their targets go to 0, where HPAs hold still
            parts, status, repaired = suspend_part.paused_autoscaling(tenant), {}, []
        else:
            parts, status, repaired = await autoscaling_part.ensure(name, uid, names.namespace(name), tenant, logger)
    except Exception as exc:  # noqa: BLE001
        parts, status, repaired = [_failure(autoscaling_part.CONDITION, exc, logger)], {}, []
    outcome.parts += parts
    outcome.status.update(status)
    outcome.repaired += repaired
    had = cond.get_condition(list(body.status.get("conditions") or []), suspend_part.CONDITION) is not None
    parts, status = await suspend_part.workloads(names.namespace(name), gate.mode, body, had)
    outcome.parts += parts
    outcome.status.update(status)


def _failure(condition: str, exc: Exception, logger: logging.Logger) -> PartResult:
    """A part that raised: a failing PartResult (Ready False with the reason in this pass's status)."""
    if isinstance(exc, kube.KubeError):
        return _api_failure(condition, exc)
    logger.exception("%s failed", condition)
    return PartResult(condition, False, "UnexpectedError", f"{type(exc).__name__}: {exc}")


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
        kopf.event(body, type="Warning", reason=Reason.REPEATED_REPAIR,
                   message=f"written on two passes in a row with nothing else changing it: {', '.join(verdict.new)}; "
                           "a comparison defect, not drift (see the operator log); verify passes back off")
    fresh = [r for r in outcome.repaired if r not in verdict.recurring]
    if not fresh:
        return
    if was_ready:
        metrics.count_repairs(name, len(fresh))
        kopf.event(body, type="Warning", reason=Reason.DRIFT_REPAIRED, message="put back: " + ", ".join(fresh))
    else:
        kopf.event(body, type="Normal", reason=Reason.PROVISIONED, message="provisioned: " + ", ".join(fresh))


def _api_failure(condition: str, exc: kube.KubeError) -> PartResult:
    if exc.status == 403 and "exceeded quota" in exc.message:
        return PartResult(condition, False, "QuotaExceeded",
                          f"a ResourceQuota in the tenant namespace refuses the operator's object: {exc.message}")
    if exc.status == 403:
        # Retried with backoff rather than Stalled: a RoleBinding the operator just made takes a moment
        # to reach the authorizer. If it lasts, the message says what a person must fix.
        return PartResult(condition, False, "Forbidden",
                          f"the operator lacks permission (check its RBAC, chart value rbac.*): {exc.message}")
    return PartResult(condition, False, "ApiError", f"API server said {exc}")


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
                _carried[name] = {"conditions": progressing}
            elif marked:
                await kube.merge_patch("Tenant", name, None, {"status": {"conditions": progressing}}, "status")
                kopf.event(body, type="Normal", reason=Reason.SPEC_CHANGED, message=f"Reconciling=True: {message}")
                current_conditions = progressing

        try:
            with metrics.RECONCILE_SECONDS.labels("Tenant").time():
                outcome = await _converge(name, uid, body, logger, kwargs)
        except (Exception, asyncio.CancelledError):
            # The pass wrote no status: the carried mark at least (a failed write changes nothing).
            carried = _carried.pop(name, None)
            if carried:
                with contextlib.suppress(Exception):
                    await kube.merge_patch("Tenant", name, None, {"status": carried}, "status")
            raise
        _carried.pop(name, None)  # not written by the pass: the status write below carries the outcome
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
            kopf.event(body, type="Normal", reason=Reason.ROTATED, message=message)
        for message in outcome.notes:
            kopf.event(body, type="Normal", reason="PolicyApplied", message=message)
        if cond.is_true(conditions, cond.READY):
            wanted["readyGeneration"] = generation
        _report_writes(body, name, generation, _was_ready(status, generation), outcome, logger)
        if outcome.adopted:
            kopf.event(body, type="Normal", reason=Reason.RETAINED_DATA_ADOPTED,
                       message="re-attached data retained from a deleted tenant of this name (spec.adoptRetainedData): "
                               + ", ".join(outcome.adopted))
        patch = status_patch(status, wanted)  # names with null what `status` keeps that `wanted` dropped
        if patch is not None:
            await kube.merge_patch("Tenant", name, None, {"status": patch}, "status")
        _written[name] = (generation, json.dumps(wanted, separators=(",", ":")))
        _schedule.finished(name, started)
        for type_ in changed:
            c = cond.get_condition(conditions, type_) or {}
            good = cond.is_good(type_, c.get("status"), c.get("reason"))
            kopf.event(body, type="Normal" if good else "Warning", reason=c.get("reason") or type_,
                       message=f"{type_}={c.get('status')}: {c.get('message') or c.get('reason')}")

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
        kopf.event(body, type="Warning", reason=blocked.reason, message=f"Terminating=True: {blocked.message}")


@kopf.on.delete(GROUP, VERSION, "tenants", backoff=CFG.retry_max, when=sharding.owns_tenant)
async def deleted(**kwargs: Any) -> None:
    with metrics.handler_run("tenant-delete"), logs.reconcile_scope():
        await _delete(**kwargs)


async def _delete(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, logger: logging.Logger, **kwargs: Any) -> None:
    name = meta["name"]
    if not names.is_tenant_name(name):
        # Made under an older CRD: no identifier of ours derives from it, so there is nothing to tear
        # down by name; never fail (the finalizer must come off), say so instead.
        kopf.event(body, type="Warning", reason=Reason.INVALID_NAME,
                   message=f"{name!r} is not a valid Tenant name (at most {names.MAX_TENANT_NAME} characters, a "
                           "DNS-1123 label); nothing on the backends or namespaces was touched. Objects an older "
                           "operator version made for it (names cut and hashed) must be removed by hand")
        metrics.forget_tenant(name)
        return
    with tracing.reconcile_span("Tenant", name, action="delete"):
        async with _locks[name]:
            try:
                await teardown.backends(body, dict(status.get("placement") or {}),
                                        _backends(kwargs.get("backends_by_name")), logger)
            except teardown.Blocked as blocked:
                await _report_blocked(body, status, blocked)
                raise kopf.TemporaryError(blocked.message, delay=blocked.delay) from blocked
            gone = await namespace_part.remove(name, logger)
    if kwargs.get("patch") is not None:
        sharding.drop_stale_finalizers(meta, kwargs["patch"])
    _locks.pop(name, None)
    _written.pop(name, None)
    _schedule.forget(name)
    for pending in _placed_here.values():
        pending.discard(name)
    metrics.forget_tenant(name)
    _repairs.forget(name)
    autoscaling_part.forget(name)  # cached models, refit tasks and metric series of its rules
    if not gone:
        logger.info("namespace deletion requested; the controller manager finishes it")
