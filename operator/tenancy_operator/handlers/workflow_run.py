"""WorkflowRun: one kopf daemon per run drives the saga engine (workflows/engine.py) to its end.

A daemon, not a change handler: it starts for every run when the operator starts (so a killed run
resumes from the status it last wrote), it sees `spec.cancel` as soon as it is set (kopf keeps the
daemon's spec live), and it sleeps until a scheduled run's next time or a finished run's TTL.

One run mutates a tenant at a time: the run takes a lease, the Tenant annotation
`tenancy.dev/workflow-run=<namespace>/<name>`, with a resourceVersion-guarded patch; a second run
waits (phase Waiting, `status.holder`, a Reconciling condition naming the holder) until the holder
is finished or gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from croniter import CroniterBadDateError, croniter
from pydantic import ValidationError

from ..api import conditions as cond
from ..api.common import GROUP, VERSION
from ..api.conditions import Reason
from ..api.workflow_run import TENANT_SAFE, WorkflowRunSpec
from ..backends import kube
from ..observability import metrics
from ..reconcile import unbuilt
from ..workflows import engine, faults, registry, verify_isolation
from . import archive_part, archive_purge, config, events, sharding, targets
from . import tenant as tenant_handler

__all__ = ["LEASE", "DAEMONS", "drive", "Services", "conditions_for", "schedule_problem", "schedule_too_frequent"]

CFG = config.load()
LEASE = "tenancy.dev/workflow-run"
POLL = 2.0
DAEMONS: dict[str, asyncio.Event] = {}
"""`namespace/name` of each run whose daemon ran in this process: the Event is set once it exited
(handlers/workflow_run_end.py waits for it before it compensates a deleted run)."""


@dataclass
class Services:
    """What steps get as `ctx.services` (the engine never looks inside)."""

    kube: Any
    """The Kubernetes API module (backends/kube.py)."""
    namespace: str
    """The run's namespace."""
    poll: float = POLL
    """Seconds between reads while a step waits for something."""
    backends: Any = None
    """The Backend objects by name (kopf index), for workflows that place or move data."""
    logger: logging.Logger | None = None

    async def target(self, backend: str) -> Any:
        """The Backend's Target (endpoint, admin credentials). LookupError: no such Backend."""
        obj = await self.kube.get("Backend", backend)
        if obj is None:
            raise LookupError(f"Backend {backend} does not exist")
        return await targets.target_for(obj)

    async def export_archive(self, tenant: str, archive_id: str) -> dict[str, Any]:
        """Export, verify and publish archive `archive_id` of the live tenant (handlers/archive_part.make:
        adopted when already published); the live data stays. Returns `{id, location, createdAt,
        expiresAt, bytes}`. LookupError: no such Tenant; archive_part.ArchiveError: it cannot be made."""
        obj = await self.kube.get("Tenant", tenant)
        if obj is None:
            raise LookupError(f"Tenant {tenant} does not exist")
        placement = dict((obj.get("status") or {}).get("placement") or {})
        known = {b: found for b in set(placement.values()) if (found := await self.kube.get("Backend", b))}
        owner = self.namespace != CFG.operator_namespace  # a tenant owner's run: bounded by ownerExportsKept
        logger = self.logger or logging.getLogger(__name__)
        record = await archive_part.make(tenant, obj["metadata"]["uid"], dict(obj.get("spec") or {}), placement,
                                         known, archive_id, logger, requested_by="owner" if owner else "")
        if owner:
            ref = (obj.get("spec") or {}).get("lifecyclePolicyRef")
            policy = (await self.kube.get("LifecyclePolicy", ref) or {}) if ref else {}
            keep = int((policy.get("spec") or {}).get("ownerExportsKept") or 1)
            try:
                await archive_purge.prune_owner_exports(tenant, obj["metadata"]["uid"], keep, archive_id)
            except Exception as exc:  # noqa: BLE001 - the export stands; failing it would undo the new copy
                logger.warning("owner exports of %s not pruned this time (the next owner export tries again): %s",
                               tenant, exc)
        return record

    async def quiesce(self, tenant: str) -> None:
        """Return once no Tenant reconcile pass of this process that began earlier is still running."""
        async with tenant_handler.lock(tenant):
            pass


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if text else None


def conditions_for(current: list[dict[str, Any]], phase: str, message: str, generation: int,
                   reason: str = "") -> tuple[list[dict[str, Any]], list[str]]:
    """kstatus conditions for a run phase: Ready when Succeeded, Stalled when finished otherwise."""
    out = [dict(c) for c in current]
    done, good = phase in engine.FINAL, phase == engine.SUCCEEDED
    reason = reason or phase
    changed = []
    for type_, status, why, text in (
        (cond.READY, cond.TRUE if good else cond.FALSE, reason, message or phase),
        (cond.STALLED, cond.TRUE if done and not good else cond.FALSE, reason if done and not good else phase,
         message if done and not good else ""),
        (cond.RECONCILING, cond.FALSE if done else cond.TRUE, reason, "" if done else message or phase),
    ):
        if cond.set_condition(out, type_, status, why, text, generation):
            changed.append(type_)
    return out, changed


class _Writer:
    """Writes the run's status with its conditions, and posts an Event for each condition change."""

    def __init__(self, body: kopf.Body, name: str, namespace: str, generation: int, status: dict[str, Any]) -> None:
        self.body, self.name, self.namespace, self.generation = body, name, namespace, generation
        self.conditions = list(status.get("conditions") or [])
        self.last_phase = status.get("phase")

    async def write(self, status: dict[str, Any], reason: str = "") -> None:
        phase = status.get("phase") or engine.PENDING
        message = status.get("message") or (f"step {status['currentStep']}" if status.get("currentStep") else "")
        self.conditions, _ = conditions_for(self.conditions, phase, message, self.generation, reason)
        body = {**status, "observedGeneration": self.generation, "conditions": self.conditions}
        await kube.merge_patch("WorkflowRun", self.name, self.namespace, {"status": body}, "status")
        if phase != self.last_phase:
            self.last_phase = phase
            bad = phase in (engine.FAILED, engine.CANCELLED, engine.COMPENSATING)
            events.post(self.body, type="Warning" if bad else "Normal", reason=reason or phase,
                        message=f"{phase}: {message}" if message else phase)


async def _stall(writer: _Writer, reason: str, message: str) -> None:
    stalled = cond.get_condition(writer.conditions, cond.STALLED) or {}
    if writer.last_phase == engine.FAILED and stalled.get("reason") == reason and stalled.get("message") == message:
        return  # said already (an operator restart): steady state writes nothing
    await writer.write({"phase": engine.FAILED, "message": message, "currentStep": ""}, reason)


def schedule_problem(schedule: str, now: datetime) -> str:
    """Why `spec.schedule` cannot be run ('' when it can): not five cron fields, or no next time at all.

    croniter reads a sixth field as seconds (`* * * * * *` fires every second) and a year field after
    that; both are refused, as is a date that never comes (30 February), which croniter raises on."""
    usage = f"spec.schedule {schedule!r} is not a cron expression of five fields (UTC), such as 0 3 * * *"
    if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        return usage
    try:
        croniter(schedule, now).get_next(datetime)
    except CroniterBadDateError:
        return f"spec.schedule {schedule!r} never comes: no date matches it"
    return ""


def schedule_too_frequent(schedule: str, now: datetime, minimum: float) -> str:
    """Why a valid `spec.schedule` fires too often ('' when it does not): two of its next 60 times closer
    than `minimum` seconds. A tenant owner's `* * * * *` would probe every backend every minute."""
    fires = croniter(schedule, now)
    times = [fires.get_next(datetime) for _ in range(60)]
    gap = min((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))
    if gap >= minimum:
        return ""
    return (f"spec.schedule {schedule!r} runs {gap:g} s apart at times; a run in a tenant namespace may run at most "
            f"every {minimum / 60:g} minutes (TENANCY_MIN_OWNER_SCHEDULE_SECONDS); the operator's namespace "
            f"{CFG.operator_namespace} has no such limit")


def min_owner_schedule_seconds() -> float:
    return float(os.environ.get("TENANCY_MIN_OWNER_SCHEDULE_SECONDS") or 900)


def _refusal(spec: WorkflowRunSpec, namespace: str) -> str:
    """Why this run may not run from its namespace ('' when it may); the API server refuses these first."""
    if namespace == CFG.operator_namespace:
        return ""
    if spec.workflow not in TENANT_SAFE:
        return (f"workflow {spec.workflow} runs only from the operator's namespace {CFG.operator_namespace}; "
                f"from a tenant namespace only {', '.join(TENANT_SAFE)}")
    if namespace != f"tenant-{spec.tenant}":
        return f"a run in namespace {namespace} may only act on that namespace's tenant, not {spec.tenant}"
    return ""


async def _holder_alive(holder: str, me: str) -> bool:
    if holder == me:
        return False
    namespace, _, name = holder.partition("/")
    run = await kube.get("WorkflowRun", name, namespace) if name else None
    return run is not None and (run.get("status") or {}).get("phase") not in engine.FINAL


def ahead_in_line(runs: list[dict[str, Any]], tenant: str, me: str, operator_namespace: str) -> str:
    """The waiting run of `tenant` (phase Waiting, not cancelled) that takes a free lease before `me`,
    as `namespace/name`; '' when `me` goes first. Runs from the operator's namespace go first, then the
    oldest: a tenant owner creating runs back to back cannot keep a platform run waiting for ever."""
    def key(run: dict[str, Any]) -> tuple[bool, str, str]:
        meta = run.get("metadata") or {}
        return (meta.get("namespace") != operator_namespace, str(meta.get("creationTimestamp") or ""),
                f"{meta.get('namespace')}/{meta.get('name')}")

    mine = next((r for r in runs if key(r)[2] == me), None)
    if mine is None:
        return ""
    waiting = [r for r in runs if key(r)[2] != me and (r.get("spec") or {}).get("tenant") == tenant
               and not (r.get("spec") or {}).get("cancel") and (r.get("status") or {}).get("phase") == "Waiting"]
    first = min(waiting, key=key, default=None)
    return key(first)[2] if first is not None and key(first) < key(mine) else ""


async def _acquire(tenant: str, me: str) -> str:
    """Take the tenant's lease; '' when held by this run, else the live holder's `namespace/name`, or
    the waiting run that goes before this one when the lease is free (`ahead_in_line`).

    LookupError: the Tenant does not exist."""
    while True:
        obj = await kube.get("Tenant", tenant)
        if obj is None:
            raise LookupError(f"Tenant {tenant} does not exist")
        holder = (obj["metadata"].get("annotations") or {}).get(LEASE, "")
        if holder == me:
            return ""
        if holder and await _holder_alive(holder, me):
            return holder
        ahead = ahead_in_line(await kube.list_objects("WorkflowRun", all_namespaces=True), tenant, me, CFG.operator_namespace)
        if ahead:
            return ahead
        try:  # guarded by resourceVersion: two runs racing for a free lease cannot both win
            await kube.merge_patch("Tenant", tenant, None, {"metadata": {
                "resourceVersion": obj["metadata"]["resourceVersion"], "annotations": {LEASE: me}}})
            return ""
        except kube.Conflict:
            continue


async def _release(tenant: str, me: str) -> None:
    for _ in range(5):
        obj = await kube.get("Tenant", tenant)
        if obj is None or (obj["metadata"].get("annotations") or {}).get(LEASE) != me:
            return
        try:
            await kube.merge_patch("Tenant", tenant, None, {"metadata": {
                "resourceVersion": obj["metadata"]["resourceVersion"], "annotations": {LEASE: None}}})
            return
        except kube.Conflict:
            continue


async def _report(body: kopf.Body, spec: WorkflowRunSpec, status: dict[str, Any], name: str, namespace: str) -> None:
    metrics.WORKFLOW_RUNS.labels(spec.workflow, status["phase"]).inc()
    if spec.workflow != "verify-isolation":
        return
    allowed = verify_isolation.allowed_probes(status.get("outputs") or {})
    if status["phase"] in (engine.SUCCEEDED, engine.FAILED) and (allowed or status["phase"] == engine.SUCCEEDED):
        metrics.record_isolation(spec.tenant, len(allowed))
    if allowed:
        text = f"isolation of tenant {spec.tenant} broken: not refused by the server: {'; '.join(allowed)}"
        events.post(body, type="Warning", reason="IsolationBreached", message=text)
        # On the live Tenant too (its uid: `kubectl describe tenant` lists only its uid's Events). The
        # run's outcome is already written; a failed read loses this Event, not the run's count.
        try:
            tenant = await kube.get("Tenant", spec.tenant)
        except Exception as exc:  # noqa: BLE001 - an Event is auxiliary
            logging.getLogger("tenancy.workflows").warning("IsolationBreached not posted on Tenant %s: %s",
                                                          spec.tenant, type(exc).__name__)
            tenant = None
        if tenant is not None:
            events.post(tenant, type="Warning", reason="IsolationBreached",
                        message=f"{text} (WorkflowRun {namespace}/{name})")


async def drive(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, stopped: Any, logger: logging.Logger,
                indexes: dict[str, Any] | None = None) -> None:
    """Run one WorkflowRun to its end (and again on its schedule), then honour its TTL."""
    name, namespace, generation = meta["name"], meta["namespace"], meta.get("generation", 1)
    live = await kube.get("WorkflowRun", name, namespace)
    if live is None:
        return
    status = dict(live.get("status") or {})
    writer = _Writer(body, name, namespace, generation, status)
    try:
        run_spec = WorkflowRunSpec.model_validate(dict(spec))
    except ValidationError as exc:
        first = exc.errors()[0]
        return await _stall(writer, Reason.INVALID_SPEC, f"spec.{'.'.join(map(str, first['loc']))}: {first['msg']}")
    refused = _refusal(run_spec, namespace)
    if refused:
        return await _stall(writer, "Forbidden", refused)
    missing = unbuilt.for_workflow(run_spec.workflow, set(registry.WORKFLOWS))
    if missing:
        return await _stall(writer, Reason.NOT_IMPLEMENTED, unbuilt.message(missing))
    try:
        steps = registry.steps_for(run_spec.workflow, run_spec.parameters)
    except ValueError as exc:
        return await _stall(writer, "InvalidParameters", str(exc))
    # Test-only per-run switches (annotations), read only with TENANCY_TEST_FAULTS=1: never in production.
    switched = faults.apply(run_spec.workflow, steps, meta.get("annotations"))
    if switched is not steps:
        logger.warning("test-only switches of this run are on (%s=1): %s", faults.ENABLED_BY,
                       {k: v for k, v in (meta.get("annotations") or {}).items() if k in (faults.FAIL_STEP,
                                                                                        faults.PAUSE_STEP)})
        steps = switched
    bad_schedule = schedule_problem(run_spec.schedule, datetime.now(UTC)) if run_spec.schedule else ""
    if bad_schedule:
        return await _stall(writer, "InvalidSchedule", bad_schedule)
    if run_spec.schedule and namespace != CFG.operator_namespace:
        too_often = schedule_too_frequent(run_spec.schedule, datetime.now(UTC), min_owner_schedule_seconds())
        if too_often:
            return await _stall(writer, "ScheduleTooFrequent", too_often)
    me = f"{namespace}/{name}"
    services = Services(kube=kube, namespace=namespace, backends=(indexes or {}).get("backends_by_name"), logger=logger)
    while not stopped:
        if status.get("phase") in engine.FINAL:
            if run_spec.schedule and spec.get("cancel"):
                if status.get("nextRunAt"):  # cancel ends the schedule; the last run's result stays
                    status["nextRunAt"] = None
                    await writer.write(status)
                return
            if run_spec.schedule:
                now = datetime.now(UTC)
                due = _parse(status.get("nextRunAt"))
                if due is None:
                    due = croniter(run_spec.schedule, now).get_next(datetime)
                    status["nextRunAt"] = _iso(due)
                    await writer.write(status)
                if now < due:
                    # In short slices: `spec.cancel` set meanwhile ends the schedule now, not at the next tick.
                    await stopped.wait(min((due - now).total_seconds(), POLL))
                    continue
                outputs = {k: None for k in status.get("outputs") or {}}
                status = {**engine.new_status(steps), "outputs": outputs, "runs": status.get("runs", 1),
                          "nextRunAt": None, "finishedAt": None, "startedAt": None, "compensated": None,
                          "cancelled": None}
                await writer.write(status)
                status["outputs"] = {}
                continue
            if run_spec.ttl_seconds_after_finished is not None:
                end = (_parse(status.get("finishedAt")) or datetime.now(UTC)) + timedelta(
                    seconds=run_spec.ttl_seconds_after_finished)
                wait = (end - datetime.now(UTC)).total_seconds()
                if wait > 0:
                    await stopped.wait(wait)
                    continue
                await kube.delete("WorkflowRun", name, namespace)
                logger.info("deleted after ttlSecondsAfterFinished=%s", run_spec.ttl_seconds_after_finished)
            return
        if spec.get("cancel") and status.get("phase") in (None, engine.PENDING, "Waiting"):
            status.update(holder=None, phase=engine.PENDING)  # never started: nothing to undo, no lease needed
            status = await engine.advance(steps, status, writer.write, engine.StepContext(
                run=name, tenant=run_spec.tenant, params={}, outputs={}, services=services), lambda: True)
            continue
        try:
            holder = await _acquire(run_spec.tenant, me)
        except LookupError as exc:
            return await _stall(writer, "TenantNotFound", str(exc))
        if holder:
            if status.get("holder") != holder:
                status.update(phase="Waiting", holder=holder,
                              message=f"waiting for WorkflowRun {holder}, which holds tenant {run_spec.tenant} "
                                      "or is ahead in line for it")
                await writer.write(status, "WaitingForTenant")
            await stopped.wait(POLL)
            continue
        if status.get("holder") or status.get("phase") == "Waiting":
            status.update(holder=None, message="", phase=engine.PENDING)
        context = engine.StepContext(run=name, tenant=run_spec.tenant, params=dict(run_spec.parameters), outputs={},
                                     services=services)
        try:
            status = await engine.advance(steps, status, writer.write, context, lambda: bool(spec.get("cancel")))
        except ValueError as exc:  # recorded by an operator version whose workflow had other steps
            await _release(run_spec.tenant, me)
            return await _stall(writer, "StepsChanged", f"{exc}; create a new run")
        finally:
            if status.get("phase") in engine.FINAL:
                await _release(run_spec.tenant, me)
        if run_spec.schedule:
            status["runs"] = int(status.get("runs") or 0) + 1
        await _report(body, run_spec, status, name, namespace)


@kopf.daemon(GROUP, VERSION, "workflowruns", cancellation_timeout=5.0, backoff=CFG.retry_max,
             when=sharding.owns_run)
async def workflow_run(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, stopped: Any, logger: logging.Logger,
                       **kwargs: Any) -> None:
    idle = DAEMONS.setdefault(f"{meta['namespace']}/{meta['name']}", asyncio.Event())
    idle.clear()
    try:
        await drive(body, spec, meta, stopped, logger, kwargs)
    except kube.KubeError as exc:
        # The status could not be written: retry from the last status written (the engine resumes there).
        raise kopf.TemporaryError(f"API server said {exc}", delay=CFG.retry_base * 2) from exc
    finally:
        idle.set()
