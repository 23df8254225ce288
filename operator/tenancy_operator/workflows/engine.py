"""The saga engine: runs a workflow's steps in order, compensates on failure, resumes after a kill.

The step contract (other workflow modules code against exactly these names):
a workflow is an ordered list of `Step`s; each step's `run` and `compensate` are idempotent
coroutines taking a `StepContext`. The engine never touches Kubernetes itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Step", "StepContext"]


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
