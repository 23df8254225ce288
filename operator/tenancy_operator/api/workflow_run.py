"""The `WorkflowRun` kind: one run of a built-in multi-step workflow (saga) with compensation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Conditions, DNSLabel, Spec, cel

__all__ = ["WorkflowRunSpec", "WorkflowRunStatus", "StepStatus", "ROOT_RULES", "WORKFLOWS", "TENANT_SAFE", "PARAMETERS"]

WORKFLOWS = ("rotate-credentials", "verify-isolation", "migrate-database", "export", "restore", "offboard")
TENANT_SAFE = ("rotate-credentials", "verify-isolation", "export")
"""Workflows a WorkflowRun in a tenant's own namespace may run (for that tenant only); the others run
only from the operator's namespace. The API server enforces it (the chart's workflow-run admission policy)."""
PARAMETERS: dict[str, tuple[str, ...]] = {
    "rotate-credentials": (),
    "verify-isolation": ("peers",),
    "migrate-database": ("targetBackend",),
    "export": (),
    "restore": ("archive", "overwrite"),
    "offboard": (),
}
"""The parameters each workflow accepts (the API server refuses any other key); each workflow checks the values."""

Workflow = Literal["rotate-credentials", "verify-isolation", "migrate-database", "export", "restore", "offboard"]

_FIXED = ("tenant", "workflow", "parameters")
_IMMUTABLE = " && ".join([f"self.{f} == oldSelf.{f}" for f in _FIXED] + [
    f"has(self.{f}) == has(oldSelf.{f}) && (!has(self.{f}) || self.{f} == oldSelf.{f})"
    for f in ("schedule", "ttlSecondsAfterFinished")])


def _parameter_rules() -> list[dict[str, str]]:
    rules = []
    for workflow, keys in PARAMETERS.items():
        allowed = ", ".join(f"'{k}'" for k in keys)
        check = f"self.parameters.all(k, k in [{allowed}])" if keys else "size(self.parameters) == 0"
        rules.append(cel(f"self.workflow != '{workflow}' || (has(self.cancel) && self.cancel) || {check}",
                         f"workflow {workflow} takes " + (f"only the parameters {', '.join(keys)}" if keys
                                                          else "no parameters")))
    return rules


class WorkflowRunSpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": {"x-kubernetes-validations": [
            cel(_IMMUTABLE, "a WorkflowRun's spec is immutable, except setting cancel: true; create a new run"),
            cel("!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",
                "cancel cannot be taken back"),
            cel("!has(self.schedule) || self.workflow == 'verify-isolation'",
                "schedule is only for workflow verify-isolation"),
            # cancel: true stays possible on a run stored before these two rules existed (the spec is
            # immutable, so it could not drop the field instead).
            cel("(has(self.cancel) && self.cancel) || !has(self.schedule) || !has(self.ttlSecondsAfterFinished)",
                "ttlSecondsAfterFinished is for a run without schedule (a scheduled run stays until it is "
                "cancelled or deleted); drop one of the two"),
            # croniter would read a sixth field as seconds (every second) and a seventh as the year.
            cel("!has(self.schedule) || self.schedule.matches('^ *[^ ]+( +[^ ]+){4} *$')",
                "schedule takes five cron fields separated by spaces (minute hour day-of-month month "
                "day-of-week, UTC), such as 0 3 * * *"),
            *_parameter_rules(),
        ]}
    }

    tenant: DNSLabel
    """The Tenant this run acts on."""
    workflow: Workflow
    """Which built-in workflow to run: rotate-credentials, verify-isolation, migrate-database, export, restore,
    offboard. A run in a tenant namespace may only run rotate-credentials, verify-isolation or export, for that
    namespace's tenant."""
    parameters: dict[str, str] = Field(default={}, max_length=32)
    """Workflow parameters: `peers` (comma-separated Tenant names) for verify-isolation, `targetBackend` for
    migrate-database, `archive` (an archive id) and `overwrite` (true|false) for restore. rotate-credentials, export
    and offboard take none."""
    cancel: bool = False
    """Set true to stop the run: the running step is stopped and every step that ran is compensated."""
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0, le=31_536_000)
    """Delete the run this many seconds after it finished (as Jobs do); unset keeps it. Refused with schedule."""
    schedule: str | None = Field(default=None, max_length=100)
    """verify-isolation only: run again on this cron schedule (five fields, UTC, such as `0 3 * * *`)."""


class StepStatus(Spec):
    name: str
    phase: str
    """Pending, Running, Succeeded, Failed, Compensating, Compensated or Skipped."""
    attempts: int = 0
    """Attempts started so far (retries included)."""
    message: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    compensation_failed: bool | None = None
    """True when undoing this step failed: a person must check."""


class WorkflowRunStatus(Spec):
    model_config = Spec.model_config | {"extra": "allow"}

    observed_generation: int | None = None
    phase: str | None = None
    """Pending, Waiting, Running, Compensating, Succeeded, Failed (compensated) or Cancelled."""
    conditions: Conditions
    current_step: str | None = None
    """The step running or being compensated."""
    message: str | None = None
    """Why the run failed, was cancelled or waits."""
    steps: list[StepStatus] = Field(default_factory=list)
    """One entry per step, in order."""
    outputs: dict[str, str] | None = None
    """What the steps reported (no secrets): verify-isolation's probes (`probe <what>`: the server's answer)."""
    started_at: str | None = None
    finished_at: str | None = None
    compensated: bool | None = None
    """After a failure or cancel: every step that ran was undone."""
    cancelled: bool | None = None
    holder: str | None = None
    """The run (namespace/name) holding this run's tenant while this one waits."""
    runs: int | None = None
    """How many times a scheduled run has run."""
    next_run_at: str | None = None
    """When a scheduled run runs next."""


ROOT_RULES: list[dict[str, str]] = []
