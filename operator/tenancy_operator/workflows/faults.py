"""Test-only switches of one WorkflowRun: fail a step, or pause inside it. Off in production.

Annotations on the WorkflowRun, honoured only when the operator process has `TENANCY_TEST_FAULTS=1` in
its environment (the chart never sets it; without it the annotations are never read, and the steps run
as registered):

- `tenancy.dev/test-fail-step: <step>` makes that step fail at the start of every attempt, before any
  side effect, as a `StepFailed` (no retry): the engine compensates the steps that ran, that one too.
- `tenancy.dev/test-pause-step: <step>` stops that step after its side effects, before it returns (the
  worst moment for a kill: done, not yet recorded). It writes the step's name to the file named by
  `TENANCY_TEST_PAUSE_FILE` and waits until that file is removed (then the step returns as usual),
  the operator is killed, or the step's timeout ends it. Without that variable it waits until killed.

They are per run, so one operator process serves runs with different switches (e2e
`test_migrate_database.py`, `test_migrate_kill.py`). Any workflow's steps can be switched: `apply`
wraps the registered steps; no workflow carries test code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from .engine import Step, StepContext, StepFailed

__all__ = ["ENABLED_BY", "FAIL_STEP", "PAUSE_STEP", "PAUSE_FILE", "InjectedFault", "enabled", "apply"]

ENABLED_BY = "TENANCY_TEST_FAULTS"
FAIL_STEP = "tenancy.dev/test-fail-step"
PAUSE_STEP = "tenancy.dev/test-pause-step"
PAUSE_FILE = "TENANCY_TEST_PAUSE_FILE"


class InjectedFault(StepFailed):
    """The test-only switch failed this step on purpose."""


def enabled() -> bool:
    """True only in a process started with TENANCY_TEST_FAULTS=1 (tests; never the chart)."""
    return os.environ.get(ENABLED_BY) == "1"


def apply(workflow: str, steps: list[Step], annotations: Mapping[str, Any] | None) -> list[Step]:
    """The run's steps with its test switches applied; `steps` unchanged unless enabled() and switched."""
    if not enabled():
        return steps
    fail, pause = (str((annotations or {}).get(k) or "").strip() for k in (FAIL_STEP, PAUSE_STEP))
    if not fail and not pause:
        return steps
    return [dataclasses.replace(s, run=_switched(workflow, s, s.name == fail, s.name == pause))
            if s.name in (fail, pause) else s for s in steps]


def _switched(workflow: str, step: Step, fail: bool, pause: bool):
    async def run(ctx: StepContext) -> dict[str, str] | None:
        if fail:
            raise InjectedFault(f"test fault injected at {workflow}:{step.name} ({FAIL_STEP})")
        out = await step.run(ctx)
        if pause:
            await _pause(step.name)
        return out
    return run


async def _pause(step: str, poll: float = 0.2) -> None:
    marker = os.environ.get(PAUSE_FILE)
    if not marker:
        while True:
            await asyncio.sleep(3600)
    with open(marker, "w") as f:
        f.write(step)
    while os.path.exists(marker):
        await asyncio.sleep(poll)
