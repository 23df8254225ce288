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

__all__ = ["Unbuilt", "TENANT", "LIFECYCLE_POLICY", "WHOLE_KINDS", "BACKEND_TYPE", "REPORTED", "for_tenant", "for_lifecycle_policy",
           "for_whole_kind", "for_workflow", "WORKFLOW", "message"]

_RETENTION_DEFAULT = LifecyclePolicySpec().retention


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


TENANT: tuple[Unbuilt, ...] = (
    Unbuilt(("Tenant.spec.mongodb.enabled", "Tenant.spec.mongodb.backend"),
            lambda s: s.mongodb.enabled or s.mongodb.backend is not None,
            "MongoDB tenancy is not built yet, no database or user is made", 15),
    Unbuilt(("Tenant.spec.search.enabled", "Tenant.spec.search.backend"),
            lambda s: s.search.enabled or s.search.backend is not None,
            "OpenSearch tenancy is not built yet, no index space, role or user is made", 15),
    Unbuilt(("Tenant.spec.cachePolicyRef",), lambda s: s.cache_policy_ref is not None,
            "CachePolicy is not built yet, the reference does nothing", 14),
    Unbuilt(("Tenant.spec.sessionPolicyRef",), lambda s: s.session_policy_ref is not None,
            "TenantSessionPolicy is not built yet, the reference does nothing", 14),
    Unbuilt(("Tenant.spec.state",), lambda s: s.state == "Archived",
            "state Archived is not built yet: every door is closed as for Suspended, nothing is exported", 13),
)

LIFECYCLE_POLICY: tuple[Unbuilt, ...] = (
    Unbuilt(("LifecyclePolicy.spec.reclaim",), lambda p: p.reclaim == "Archive",
            "reclaim Archive is not built yet, deleting a tenant retains its backend data instead", 13),
    Unbuilt(("LifecyclePolicy.spec.retention",), lambda p: p.retention != _RETENTION_DEFAULT,
            "retention is not built yet: there are no archives to expire", 13),
    Unbuilt(("LifecyclePolicy.spec.suspendRevokesLogins",), lambda p: not p.suspend_revokes_logins,
            "suspendRevokesLogins: false is not built yet, suspending a tenant still revokes its logins", 13),
)

# Kinds nothing acts on yet: any object of them asks for an unbuilt feature.
WHOLE_KINDS: dict[str, Unbuilt] = {
    "CachePolicy": Unbuilt(("CachePolicy.spec",), lambda _: True,
                           "CachePolicy is not built yet: no tier, TTL, budget or eviction is applied", 14),
    "TenantSessionPolicy": Unbuilt(("TenantSessionPolicy.spec",), lambda _: True,
                                   "TenantSessionPolicy is not built yet: no session key or limit is set up", 14),
}

# Workflows a WorkflowRun can name whose steps are not built (the handler asks the workflow registry).
WORKFLOW = Unbuilt(("WorkflowRun.spec.workflow",), lambda w: w in ("export", "restore", "offboard"),
                   "workflows export, restore and offboard are not built yet (they need the lifecycle archive); "
                   "the run changed nothing", 13)
MIGRATE = Unbuilt(("WorkflowRun.spec.workflow",), lambda w: w == "migrate-database",
                  "workflow migrate-database is not built yet; the run changed nothing", 16)

# A Backend whose type has no adapter yet (the handler asks the adapter registry, this says why).
BACKEND_TYPE = Unbuilt(("Backend.spec.type",), lambda _: True,
                       "backend types mongodb and search are not built yet, no tenant is placed here", 15)

REPORTED: frozenset[str] = frozenset(
    f for u in (*TENANT, *LIFECYCLE_POLICY, *WHOLE_KINDS.values(), BACKEND_TYPE, WORKFLOW) for f in u.fields
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
    return [next((u for u in (WORKFLOW, MIGRATE) if u.asks(workflow)),
                 Unbuilt(("WorkflowRun.spec.workflow",), lambda _: True, f"workflow {workflow} is not built yet", 16)).text()]


def message(found: list[str]) -> str:
    """The condition message: each unbuilt field, what happens instead, and the issue."""
    return "not built yet, so not done: " + "; ".join(found)
