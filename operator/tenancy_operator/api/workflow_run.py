"""The `WorkflowRun` kind: one run of a built-in multi-step workflow (saga) with compensation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Conditions, DNSLabel, Spec, cel

__all__ = ["WorkflowRunSpec", "WorkflowRunStatus", "StepStatus", "ROOT_RULES"]


class WorkflowRunSpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": {"x-kubernetes-validations": [cel("self == oldSelf", "a WorkflowRun's spec is immutable; create a new run")]}
    }

    tenant: DNSLabel
    """The Tenant this run acts on."""
    workflow: Literal["migrate-database", "rotate-credentials", "archive-tenant", "restore-tenant"]
    """Which built-in workflow to run."""
    parameters: dict[str, str] = Field(default_factory=dict, max_length=32)
    """Workflow parameters, such as `targetBackend` for migrate-database."""


class StepStatus(Spec):
    name: str
    phase: str
    """Pending, Running, Succeeded, Failed, Compensated."""
    message: str = ""
    started_at: str | None = None
    finished_at: str | None = None


class WorkflowRunStatus(Spec):
    model_config = Spec.model_config | {"extra": "allow"}

    observed_generation: int | None = None
    phase: str | None = None
    """Pending, Running, Succeeded, Compensating, Compensated or Failed."""
    conditions: Conditions
    steps: list[StepStatus] = Field(default_factory=list)
    """One entry per step, in order."""


ROOT_RULES: list[dict[str, str]] = []
