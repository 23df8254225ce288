"""From per-part results to kstatus: Ready, Reconciling, Stalled, Degraded, and the phase.

Pure. `Ready=True` means the spec is achieved, whatever it asks: a tenant asked to be Suspended
whose doors are all closed is Ready with phase Suspended, because kstatus, `kubectl wait`, Argo CD
and Flux treat Ready=False as "still in progress" forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api import conditions as cond
from ..api.conditions import Reason

__all__ = ["PartResult", "summarize", "PART_CONDITIONS"]

# The condition each part owns, in the order `kubectl tenant status` shows them.
PART_CONDITIONS = (
    "NamespaceReady",
    "DatabaseReady",
    "CacheReady",
    "DocumentStoreReady",
    "SearchReady",
    "VaultReady",
    "SessionsReady",
    "CredentialsReady",
    "AutoscalingReady",
    "LifecyclePolicyReady",
)


@dataclass(frozen=True)
class PartResult:
    """What one part of the tenant reported after trying to converge."""

    condition: str
    ok: bool
    reason: str
    message: str
    stalled: bool = False
    """The request cannot be met as written; retrying will not help until the spec or world changes."""
    outage: bool = False
    """A backend is down or unreachable; the operator retries with backoff."""
    informational: bool = False
    """Reports something (AnomalyDetected) without bearing on Ready: `ok` is the condition's status."""


def summarize(
    current: list[dict[str, Any]],
    parts: list[PartResult],
    generation: int,
    state: str,
    *,
    now: str | None = None,
    ready_message: str | None = None,
) -> tuple[list[dict[str, Any]], str, list[str]]:
    """New conditions, phase, and the types whose condition changed (each deserves an Event).

    Which changes deserve an Event: `cond.deserves_event` (none for a condition first written in its
    normal state but Ready, none when only observedGeneration moved). Once Stalled has been True, going
    back to False is an Event as before.

    ``ready_message``: Ready's message when all is done, instead of the state's usual one."""
    conditions = [dict(c) for c in current]
    changed: list[str] = []

    def put(type_: str, ok: bool | None, reason: str, message: str) -> None:
        status = cond.UNKNOWN if ok is None else (cond.TRUE if ok else cond.FALSE)
        if cond.set_condition_for_event(conditions, type_, status, reason, message, generation, now=now):
            changed.append(type_)

    for part in parts:
        put(part.condition, part.ok, part.reason, part.message)

    bearing = [p for p in parts if not p.informational]
    stalled = [p for p in bearing if p.stalled]
    failing = [p for p in bearing if not p.ok and not p.stalled]
    outages = [p for p in failing if p.outage]
    if stalled:
        first = stalled[0]
        put(cond.STALLED, True, first.reason, first.message)
        put(cond.RECONCILING, False, first.reason, "waiting for the spec or the cluster to change")
        put(cond.READY, False, first.reason, first.message)
        phase = "Stalled"
    elif failing:
        message = "; ".join(f"{p.condition}: {p.message}" for p in failing)
        put(cond.STALLED, False, Reason.PROGRESSING, "")
        put(cond.RECONCILING, True, failing[0].reason, message)
        put(cond.READY, False, Reason.PARTS_NOT_READY, message)
        phase = "Degraded" if outages else "Provisioning"
    else:
        message = {"Active": "all parts ready", "Suspended": "suspended: every door is closed, data kept",
                   "Archived": "archived"}.get(state, "all parts ready")
        message = ready_message or message
        put(cond.STALLED, False, Reason.SUCCEEDED, "")
        put(cond.RECONCILING, False, Reason.SUCCEEDED, "")
        put(cond.READY, True, Reason.SUCCEEDED if state == "Active" else state, message)
        phase = "Ready" if state == "Active" else state
    degraded_message = "; ".join(p.message for p in outages)
    put(cond.DEGRADED, bool(outages), Reason.BACKEND_UNAVAILABLE if outages else Reason.SUCCEEDED, degraded_message)
    return conditions, phase, changed
