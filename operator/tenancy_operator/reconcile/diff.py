"""Desired against observed: which objects to create, patch, replace or delete, and which to leave.

The comparison is a subset match: what we want must be present; what the API server or others add
(defaults, status, extra labels) is left alone. Lists must match element by element, so an extra
NetworkPolicy rule counts as drift. Quantities compare by value, because the API server rewrites
them into canonical form. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..api import quantity

__all__ = ["Action", "Step", "Plan", "contains", "mismatches", "describe", "plan", "IMMUTABLE_FIELDS"]

# Fields the API server refuses to change in place: the object must be deleted and created again.
IMMUTABLE_FIELDS = {"RoleBinding": ("roleRef",)}
# Top-level keys that are neither identity nor something we manage.
_IGNORED = {"apiVersion", "kind", "status"}


class Action(StrEnum):
    CREATE = "create"
    PATCH = "patch"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "noop"


@dataclass(frozen=True)
class Step:
    action: Action
    desired: dict[str, Any] | None
    observed: dict[str, Any] | None

    @property
    def kind(self) -> str:
        return (self.desired or self.observed or {}).get("kind", "")

    @property
    def name(self) -> str:
        return (self.desired or self.observed or {}).get("metadata", {}).get("name", "")


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)

    @property
    def writes(self) -> list[Step]:
        return [s for s in self.steps if s.action is not Action.NOOP]

    def by_action(self, action: Action) -> list[Step]:
        return [s for s in self.steps if s.action is action]


def contains(observed: Any, desired: Any) -> bool:
    """True when everything in `desired` is present, equal, in `observed`."""
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return not desired and observed is None
        return all(contains(observed.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(observed) != len(desired):
            return False
        return all(contains(o, d) for o, d in zip(observed, desired, strict=True))
    if isinstance(desired, str) and isinstance(observed, str) and desired != observed:
        return quantity.same(desired, observed)
    return observed == desired


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def mismatches(observed: Any, desired: Any, path: str = "") -> list[str]:
    """Where `contains(observed, desired)` fails: `path: live <value> (want <value>)`, values cut short.

    For logs of a repair; callers never pass Secrets (their values would show).
    """
    if isinstance(desired, dict) and isinstance(observed, dict):
        return [m for k, v in desired.items() for m in mismatches(observed.get(k), v, f"{path}.{k}" if path else k)]
    if (isinstance(desired, list) and isinstance(observed, list) and len(observed) == len(desired)):
        return [m for i, (o, d) in enumerate(zip(observed, desired, strict=True)) for m in mismatches(o, d, f"{path}[{i}]")]
    if contains(observed, desired):
        return []
    return [f"{path or '.'}: live {_short(observed)} (want {_short(desired)})"]


def describe(step: Step) -> str:
    """What a write step changes, in words: `missing`, `delete`, or the mismatching fields."""
    if step.observed is None:
        return "missing"
    if step.desired is None:
        return "not wanted"
    return "; ".join(mismatches(step.observed, _managed(step.desired))) or "equal"


def _managed(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    wanted: dict[str, Any] = {k: v for k, v in obj.items() if k not in _IGNORED and k != "metadata"}
    wanted["metadata"] = {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}
    return wanted


def _step(desired: dict[str, Any], observed: dict[str, Any] | None) -> Step:
    if observed is None:
        return Step(Action.CREATE, desired, None)
    if contains(observed, _managed(desired)):
        return Step(Action.NOOP, desired, observed)
    for key in IMMUTABLE_FIELDS.get(desired["kind"], ()):
        if not contains(observed.get(key), desired.get(key)):
            return Step(Action.REPLACE, desired, observed)
    return Step(Action.PATCH, desired, observed)


def plan(
    desired: list[dict[str, Any]],
    observed: dict[tuple[str, str], dict[str, Any] | None],
    prune: list[dict[str, Any]] | None = None,
) -> Plan:
    """Steps in desired order; `observed` maps (kind, name) to the live object or None.

    `prune` lists live objects we own that the desired state no longer has; each becomes a delete.
    """
    steps = [_step(d, observed.get((d["kind"], d["metadata"]["name"]))) for d in desired]
    wanted = {(d["kind"], d["metadata"]["name"]) for d in desired}
    for live in prune or []:
        if (live["kind"], live["metadata"]["name"]) not in wanted:
            steps.append(Step(Action.DELETE, None, live))
    return Plan(steps)
