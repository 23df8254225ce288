"""Conditions without churn: set-by-type reports whether anything changed.

`lastTransitionTime` moves only when status flips, so re-running a reconcile that finds the world as
it was produces an identical status, and the handler can skip the status patch entirely (steady
state writes nothing). Reasons are CamelCase constants that machines and the Lua health checks match.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "TRUE",
    "FALSE",
    "UNKNOWN",
    "READY",
    "RECONCILING",
    "STALLED",
    "DEGRADED",
    "TERMINATING",
    "ANOMALY_DETECTED",
    "SPEC_SUPPORTED",
    "ABNORMAL_TRUE",
    "set_condition",
    "get_condition",
    "is_good",
    "deserves_event",
    "set_condition_for_event",
    "is_true",
    "now_iso",
    "Reason",
]

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
READY, RECONCILING, STALLED, DEGRADED = "Ready", "Reconciling", "Stalled", "Degraded"
ANOMALY_DETECTED = "AnomalyDetected"
# False when the spec asks for something the operator does not build yet (reason NotImplemented); the
# message names each such field. Nothing a user asks for is ignored silently.
SPEC_SUPPORTED = "SpecSupported"
# True while a deletion cannot finish; its message names what blocks it and what a person can do.
TERMINATING = "Terminating"
# Conditions that are bad news when True (kstatus calls them abnormal-true); their Events are Warnings.
ABNORMAL_TRUE = frozenset({RECONCILING, STALLED, DEGRADED, ANOMALY_DETECTED, TERMINATING})


class Reason:
    """CamelCase reasons; one place so handlers, the plugin and the health checks agree."""

    SUCCEEDED = "Succeeded"
    PROGRESSING = "Progressing"
    SPEC_CHANGED = "SpecChanged"
    NAMESPACE_CONFLICT = "NamespaceOwnedElsewhere"
    INVALID_SPEC = "InvalidSpec"
    INVALID_NAME = "InvalidName"
    OWNED_BY_ANOTHER_TENANT = "OwnedByAnotherTenant"
    RETAINED_DATA_ADOPTED = "RetainedDataAdopted"
    BACKEND_UNAVAILABLE = "BackendUnavailable"
    NO_BACKEND = "NoBackendAvailable"
    DISABLED = "Disabled"
    SUSPENDED = "Suspended"
    WORKLOADS_SCALED_DOWN = "WorkloadsScaledDown"
    WORKLOADS_RESTORED = "WorkloadsRestored"
    SUSPENDED_FOR_INACTIVITY = "SuspendedForInactivity"
    MIGRATING = "Migrating"
    TERMINATING = "Terminating"
    DRIFT_REPAIRED = "DriftRepaired"
    ROTATED = "Rotated"
    PROVISIONED = "Provisioned"
    REPEATED_REPAIR = "RepeatedRepair"
    PARTS_NOT_READY = "PartsNotReady"
    POLICY_NOT_FOUND = "PolicyNotFound"
    """The Tenant names a policy (cachePolicyRef, sessionPolicyRef) that does not exist; it recovers when it appears."""
    LIMIT_REACHED = "LimitReached"
    """A part works but the tenant reached a limit of its spec (spec.search.maxShards): the server refuses
    growing further. The condition stays True; its Event is a Warning."""
    NOT_IMPLEMENTED = "NotImplemented"
    """The spec asks for a feature that is designed but not built yet; the message names the fields."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def is_true(conditions: list[dict[str, Any]], type_: str) -> bool:
    found = get_condition(conditions, type_)
    return bool(found and found.get("status") == TRUE)


def is_good(type_: str, status: str | None, reason: str | None = None) -> bool:
    """The condition's normal state: False for the abnormal-true types (Stalled, Degraded...), True for
    the rest. Unknown is never normal, nor is a part that works at a limit (reason LimitReached: True,
    yet a person must act, so its Event is a Warning)."""
    if status not in (TRUE, FALSE) or reason == Reason.LIMIT_REACHED:
        return False
    return (status == TRUE) != (type_ in ABNORMAL_TRUE)


def deserves_event(type_: str, before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether a condition's change from `before` (None: it did not exist) to `after` is worth an Event.

    A condition first written in its normal state tells a person nothing the status does not (a creation
    posted NamespaceReady=True, PostgresReady=True, Stalled=False, Degraded=False... for every tenant):
    no Event, except Ready, the one a person waits for. A condition whose status, reason and message stay
    and only its observedGeneration moves (every condition, at each spec change) is no news either.
    """
    if before is None:
        return type_ == READY or not is_good(type_, after.get("status"), after.get("reason"))
    return any(before.get(k) != after.get(k) for k in ("status", "reason", "message"))


def set_condition_for_event(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                            generation: int | None, *, now: str | None = None) -> bool:
    """`set_condition`, then whether the change deserves an Event (`deserves_event`)."""
    found = get_condition(conditions, type_)
    before = dict(found) if found is not None else None
    changed = set_condition(conditions, type_, status, reason, message, generation, now=now)
    return changed and deserves_event(type_, before, get_condition(conditions, type_) or {})


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    *,
    now: str | None = None,
) -> bool:
    """Set one condition in place; return True when anything but timestamps would change.

    The transition time is kept when the status stays the same, even if reason or message move.
    """
    found = get_condition(conditions, type_)
    wanted = {"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": generation}
    if found is None:
        conditions.append({**wanted, "lastTransitionTime": now or now_iso()})
        return True
    if all(found.get(k) == v for k, v in wanted.items()):
        return False
    if found.get("status") != status:
        found["lastTransitionTime"] = now or now_iso()
    found.update(wanted)
    return True
