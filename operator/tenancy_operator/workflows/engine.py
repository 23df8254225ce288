"""The saga engine: runs a workflow's steps in order, compensates on failure, resumes after a kill.

The step contract (other workflow modules code against exactly these names): a workflow is an
ordered list of `Step`s; each step's `run` and `compensate` are idempotent coroutines taking a
`StepContext`. The engine is pure with respect to Kubernetes: it advances a run's status dict
(the WorkflowRun's `status`, camelCase) and calls `persist` with it before and after every side
effect, so a run killed at any line resumes where it was: a step recorded Succeeded never runs
again, a step caught Running runs again (steps are idempotent, so a side effect that completed
before the kill is not repeated by the step).

Status shape the engine owns::

    phase: Pending | Running | Compensating | Succeeded | Failed | Cancelled
    currentStep: the step running or being compensated ("" when none)
    message: why the run failed or was cancelled
    outputs: {key: value}                  # merged from every step's return value
    steps: [{name, phase, attempts, startedAt, finishedAt, message}]
    startedAt, finishedAt

Step phases: Pending, Running, Succeeded, Failed, Compensating, Compensated, Skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Step", "StepContext", "StepFailed", "advance", "FINAL", "new_status", "PENDING", "RUNNING", "SUCCEEDED",
           "FAILED", "COMPENSATING", "COMPENSATED", "SKIPPED", "CANCELLED"]

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
COMPENSATING, COMPENSATED, SKIPPED, CANCELLED = "Compensating", "Compensated", "Skipped", "Cancelled"
FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
"""Run phases after which nothing more happens."""


@dataclass(frozen=True)
class Step:
    """One idempotent step of a workflow, with the action that undoes it."""

    name: str
    run: Callable[[StepContext], Awaitable[dict[str, str] | None]]
    """Idempotent; the returned dict is merged into the run's outputs (persisted in status)."""
    compensate: Callable[[StepContext], Awaitable[None]] | None = None
    """Idempotent; undoes `run` (None: nothing to undo)."""
    timeout: float = 300.0
    """Seconds per attempt."""
    retries: int = 3
    """Attempts after the first."""
    backoff: float = 2.0
    """Seconds before the first retry, doubled per attempt."""


@dataclass
class StepContext:
    """What a step sees: the run, its tenant and parameters, earlier outputs, injected services."""

    run: str
    """The WorkflowRun's name."""
    tenant: str
    params: dict[str, str]
    outputs: dict[str, str]
    """Everything earlier steps returned (read it; return new keys)."""
    services: Any
    """What the handler injects (kube API, backend targets...); the engine never looks inside."""


class StepFailed(Exception):
    """A step's verdict that retrying cannot change (a probe allowed, a check that disagrees).

    `outputs` are still merged into the run's outputs, so a report of what failed reaches status.
    """

    def __init__(self, message: str, outputs: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.outputs = dict(outputs or {})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_status(steps: list[Step]) -> dict[str, Any]:
    """The status of a run that has not started: every step Pending."""
    return {"phase": PENDING, "currentStep": "", "message": "", "outputs": {},
            "steps": [{"name": s.name, "phase": PENDING, "attempts": 0, "message": ""} for s in steps]}


@dataclass
class _Run:
    steps: list[Step]
    status: dict[str, Any]
    persist: Callable[[dict[str, Any]], Awaitable[None]]
    context: StepContext
    cancelled: Callable[[], bool]
    poll: float
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    def record(self, i: int) -> dict[str, Any]:
        return self.status["steps"][i]

    async def save(self) -> None:
        await self.persist(self.status)

    async def attempt(self, fn: Callable[[StepContext], Awaitable[Any]], timeout: float) -> Any:
        """One attempt, stopped early by a cancel request (raises asyncio.CancelledError then)."""
        task = asyncio.ensure_future(asyncio.wait_for(fn(self.context), timeout))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.poll)
                if done:
                    return task.result()
                if self.cancelled() and self.status["phase"] == RUNNING:
                    task.cancel()
                    raise _Cancelled()
        finally:
            if not task.done():
                task.cancel()


class _Cancelled(Exception):
    pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text and not isinstance(exc, StepFailed) else text or type(exc).__name__


async def _forward(run: _Run) -> None:
    for i, step in enumerate(run.steps):
        rec = run.record(i)
        if rec["phase"] in (SUCCEEDED, SKIPPED):
            continue
        while True:
            if run.cancelled():
                raise _Cancelled()
            rec.update(phase=RUNNING, attempts=rec.get("attempts", 0) + 1, message="")
            rec.setdefault("startedAt", _now())
            run.status["currentStep"] = step.name
            await run.save()  # before the side effect: a kill from here on runs this step again
            try:
                out = await run.attempt(step.run, step.timeout)
            except _Cancelled:
                rec.update(message="stopped by spec.cancel")
                raise
            except StepFailed as exc:
                run.status["outputs"].update(exc.outputs)
                rec.update(phase=FAILED, message=_describe(exc), finishedAt=_now())
                raise StepFailed(f"step {step.name} failed: {_describe(exc)}") from exc
            except Exception as exc:  # noqa: BLE001 - any error of a step is the step's failure
                rec["message"] = f"attempt {rec['attempts']}: {_describe(exc)}"
                if rec["attempts"] > step.retries:
                    rec.update(phase=FAILED, finishedAt=_now())
                    raise StepFailed(f"step {step.name} failed after {rec['attempts']} attempts: {_describe(exc)}") from exc
                await run.save()
                await run.sleep(step.backoff * 2 ** (rec["attempts"] - 1))
                continue
            run.status["outputs"].update({str(k): str(v) for k, v in (out or {}).items()})
            rec.update(phase=SUCCEEDED, finishedAt=_now())
            await run.save()  # after the side effect: from here on it is never run again
            break


async def _compensate(run: _Run) -> list[str]:
    """Undo every step that ran (the failed or interrupted one too: it may have acted in part), last first.

    Returns the steps whose compensation failed (they stay Failed, with the message)."""
    broken: list[str] = []
    for i in reversed(range(len(run.steps))):
        step, rec = run.steps[i], run.record(i)
        if rec["phase"] == PENDING:
            rec.update(phase=SKIPPED)
            continue
        if rec["phase"] in (SKIPPED, COMPENSATED) or (rec["phase"] == FAILED and rec.get("compensationFailed")):
            continue
        if step.compensate is None:  # nothing to undo; a failed step stays Failed, with its message
            if rec["phase"] != FAILED:
                rec.update(phase=COMPENSATED, message="nothing to undo")
            continue
        attempts = 0
        while True:
            attempts += 1
            rec["phase"] = COMPENSATING
            run.status["currentStep"] = step.name
            await run.save()
            try:
                await asyncio.wait_for(step.compensate(run.context), step.timeout)
            except Exception as exc:  # noqa: BLE001
                if attempts > step.retries:
                    rec.update(phase=FAILED, compensationFailed=True, message=f"compensation failed: {_describe(exc)}")
                    broken.append(step.name)
                    break
                await run.sleep(step.backoff * 2 ** (attempts - 1))
                continue
            rec.update(phase=COMPENSATED, finishedAt=_now())
            break
    await run.save()
    return broken


async def advance(steps: list[Step], status: dict[str, Any], persist: Callable[[dict[str, Any]], Awaitable[None]],
                  context: StepContext, cancelled: Callable[[], bool] = lambda: False, *, poll: float = 1.0,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> dict[str, Any]:
    """Run (or resume) a workflow until it is Succeeded, Failed (compensated) or Cancelled.

    `status` is the run's last persisted status (empty: a new run); it is updated in place and
    handed to `persist` before and after each side effect (persist raising stops the run: it
    resumes from the last persisted state). `cancelled()` is polled between steps and while a
    step runs. Returns the final status. A run already final is returned unchanged.
    """
    if not status.get("steps"):
        status.update(new_status(steps))
    status.setdefault("outputs", {})
    if [s["name"] for s in status["steps"]] != [s.name for s in steps]:
        raise ValueError("the run's recorded steps are not this workflow's steps")
    if status.get("phase") in FINAL:
        return status
    context.outputs = status["outputs"]
    run = _Run(steps, status, persist, context, cancelled, poll, sleep)
    if status.get("phase") in (PENDING, None, RUNNING):
        if status.get("phase") != RUNNING:
            status.update(phase=RUNNING, startedAt=status.get("startedAt") or _now())
        try:
            await _forward(run)
        except _Cancelled:
            status.update(phase=COMPENSATING, message="cancelled by spec.cancel", cancelled=True)
        except StepFailed as exc:
            status.update(phase=COMPENSATING, message=str(exc))
        else:
            status.update(phase=SUCCEEDED, currentStep="", finishedAt=_now())
            await run.save()
            return status
        await run.save()
    broken = await _compensate(run)
    if broken:
        status["message"] = f"{status.get('message', '')}; compensation failed for {', '.join(broken)}: a person must check"
    status.update(phase=CANCELLED if status.get("cancelled") else FAILED, currentStep="", finishedAt=_now(),
                  compensated=not broken)
    await run.save()
    return status
