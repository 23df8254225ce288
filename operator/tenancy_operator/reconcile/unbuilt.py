"""What a spec asks for that the operator does not build yet. Pure: specs in, findings out.

The rule (README, DESIGN): every field either acts, is refused at apply, or sets a condition saying
it is not built yet. This module is that condition's one source. Each `Unbuilt` names the fields it
covers (tests/field_coverage.py points at them, and the field-coverage test checks they are here),
says when a spec asks for the feature (a default never does), and which issue tracks the work.
Handlers turn findings into `Stalled=True`, reason `NotImplemented`, and a Warning Event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..api.lifecycle_policy import LifecyclePolicySpec
from ..api.tenant import TenantSpec

__all__ = ["Unbuilt", "TENANT", "LIFECYCLE_POLICY", "WHOLE_KINDS", "REPORTED", "for_tenant", "for_lifecycle_policy",
           "for_whole_kind", "for_workflow", "message"]

@dataclass(frozen=True)
class Unbuilt:
    """One feature a spec can ask for that is not built yet."""

    fields: tuple[str, ...]
    """Field paths as `Kind.spec.a.b` (a path covers every field under it)."""
    asks: Callable[[Any], bool]
    """True when the spec (the kind's pydantic model) asks for the feature."""
    what: str
    """What the user asked for and what happens instead, for the condition's message."""
    issue: int
    """The issue that builds it."""

    def text(self) -> str:
        """`spec.a.b: what happens (issue N)`; a whole kind shows as `spec`."""
        shown = ", ".join("spec." + f.split(".spec.", 1)[1] for f in self.fields if ".spec." in f)
        return f"{shown or 'spec'}: {self.what} (issue {self.issue})"


TENANT: tuple[Unbuilt, ...] = ()  # every Tenant field is built (issues 13, 14, 15)

LIFECYCLE_POLICY: tuple[Unbuilt, ...] = ()  # every LifecyclePolicy field is built (issue 13)

# Kinds nothing acts on yet: any object of them asks for an unbuilt feature.
WHOLE_KINDS: dict[str, Unbuilt] = {
}

# Every workflow a WorkflowRun can name is built (issue 16); `for_workflow` still reports one a newer CRD
# names that this operator's registry lacks.

REPORTED: frozenset[str] = frozenset(
    f for u in (*TENANT, *LIFECYCLE_POLICY, *WHOLE_KINDS.values()) for f in u.fields
)
"""Every field path some finding reports on (the field-coverage test reads this)."""


def for_lifecycle_policy(spec: LifecyclePolicySpec) -> list[Unbuilt]:
    return [u for u in LIFECYCLE_POLICY if u.asks(spec)]


def for_tenant(spec: TenantSpec, lifecycle_policy: dict[str, Any] | None = None) -> list[str]:
    """One line per unbuilt feature the tenant asks for, its LifecyclePolicy's included.

    `lifecycle_policy` is the referenced policy's spec as stored (camelCase), or None when the tenant
    names none or it does not exist (teardown reports a missing one when it matters).
    """
    found = [u.text() for u in TENANT if u.asks(spec)]
    if lifecycle_policy is not None and spec.lifecycle_policy_ref:
        try:
            policy = LifecyclePolicySpec.model_validate(lifecycle_policy)
        except ValueError:
            return found  # the API server validated it; a stale cache entry is not worth a finding
        found += [f"LifecyclePolicy {spec.lifecycle_policy_ref} (spec.lifecyclePolicyRef) {u.text()}"
                  for u in for_lifecycle_policy(policy)]
    return found


def for_whole_kind(kind: str) -> list[str]:
    return [WHOLE_KINDS[kind].text()] if kind in WHOLE_KINDS else []


def for_workflow(workflow: str, built: set[str]) -> list[str]:
    """The finding for a run of a workflow whose steps are not registered (empty when they are)."""
    if workflow in built:
        return []
    return [Unbuilt(("WorkflowRun.spec.workflow",), lambda _: True, f"workflow {workflow} is not built yet", 16).text()]


def message(found: list[str]) -> str:
    """The condition message: each unbuilt field, what happens instead, and the issue."""
    return "not built yet, so not done: " + "; ".join(found)
