"""A WorkflowRun deleted before it finished is compensated first, then let go.

Every WorkflowRun carries the operator's finalizer (`tenancy.dev/finalizer`, which kopf keeps on
objects with a daemon). Deleting a run stops its daemon (handlers/workflow_run.py); this handler
waits until that daemon of this process has exited (so two hands never drive one run), then, for a
run that started and is not finished, undoes the steps that ran, last first, exactly as
`spec.cancel: true` does (a migrate-database run unfreezes the tenant, drops a half-made target and
clears `status.migration`), and gives up the tenant's lease. Only then does the finalizer come off.

Finalizers never wait on each other: a Tenant that is itself being deleted (its own finalizer may be
waiting for its namespace, and so for this run) is not compensated, its teardown removes what the run
made; a Tenant that is gone needs nothing. A compensation that fails after the steps' own retries is
reported (Warning Event on the run and the Tenant: a person must check) and the run still goes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from ..api.common import GROUP, VERSION
from ..api.workflow_run import WorkflowRunSpec
from ..backends import kube
from ..workflows import engine, registry
from . import events, sharding
from . import workflow_run as wfr

__all__ = ["compensate_deleted", "undo"]

DAEMON_EXIT_WAIT = 30.0
"""Seconds to wait for the run's daemon to exit (kopf cancels it 5 s after asking it to stop)."""


async def undo(name: str, namespace: str, body: Any, logger: logging.Logger) -> str:
    """Compensate the live run `namespace/name` if it started and is not finished; release its lease.

    Returns what was done, for the log: 'nothing to undo', 'tenant being deleted', 'compensated' or
    'compensation failed: ...'. Raises kube.KubeError when the API server cannot be read or written.
    """
    live = await kube.get("WorkflowRun", name, namespace)
    if live is None:
        return "gone"
    status = dict(live.get("status") or {})
    try:
        spec = WorkflowRunSpec.model_validate(dict(live.get("spec") or {}))
        steps = registry.steps_for(spec.workflow, spec.parameters)
    except (ValidationError, KeyError, ValueError):
        return "nothing to undo"  # refused at its start: it never ran a step
    me = f"{namespace}/{name}"
    started = any(s.get("phase") not in (engine.PENDING, engine.SKIPPED) for s in status.get("steps") or [])
    if status.get("phase") in engine.FINAL or not started:
        await wfr._release(spec.tenant, me)
        return "nothing to undo"
    tenant = await kube.get("Tenant", spec.tenant)
    if tenant is None or tenant["metadata"].get("deletionTimestamp"):
        return "tenant gone or being deleted"
    writer = wfr._Writer(body, name, namespace, live["metadata"].get("generation", 1), status)
    context = engine.StepContext(run=name, tenant=spec.tenant, params=dict(spec.parameters), outputs={},
                                 services=wfr.Services(kube=kube, namespace=namespace, logger=logger))
    status["message"] = "the run was deleted before it finished: undoing its steps"
    final = await engine.advance(steps, status, writer.write, context, lambda: True)
    await wfr._release(spec.tenant, me)
    if final.get("compensated") is False:
        text = f"WorkflowRun {me} was deleted mid-way and its compensation failed: {final.get('message')}"
        events.post(body, type="Warning", reason="CompensationFailed", message=text)
        events.post(tenant, type="Warning", reason="CompensationFailed", message=text)  # its uid: kubectl describe
        return f"compensation failed: {final.get('message')}"
    return "compensated"


@kopf.on.delete(GROUP, VERSION, "workflowruns", backoff=5.0, when=sharding.owns_run)
async def compensate_deleted(body: kopf.Body, meta: kopf.Meta, logger: logging.Logger, **_: Any) -> None:
    key = f"{meta['namespace']}/{meta['name']}"
    idle = wfr.DAEMONS.get(key)
    if idle is not None:
        try:
            await asyncio.wait_for(idle.wait(), DAEMON_EXIT_WAIT)
        except TimeoutError as exc:
            raise kopf.TemporaryError("the run's daemon has not stopped yet", delay=5) from exc
    try:
        done = await undo(meta["name"], meta["namespace"], body, logger)
    except kube.KubeError as exc:
        raise kopf.TemporaryError(f"API server said {exc}", delay=5) from exc
    logger.info("deleted WorkflowRun %s: %s", key, done)
