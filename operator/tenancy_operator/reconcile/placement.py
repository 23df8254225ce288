"""Placement: which Backend a tenant's service lands on when the Tenant names none.

The ready, unpaused Backend of that type with the most free capacity wins; ties go to the name
that sorts first, so the choice is deterministic. Once made, the choice is recorded in status and
kept (the CRD refuses a spec that contradicts it). A Backend the Tenant (or a migrate-database run)
names is held to the same two rules for a *new* placement (`refusal`): paused or full, it takes no
new tenant, and the tenants it holds keep it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Candidate", "candidate", "choose", "refusal", "NoBackend"]


class NoBackend(Exception):
    pass


@dataclass(frozen=True)
class Candidate:
    name: str
    type: str
    ready: bool
    capacity: int
    placed: int
    paused: bool = False

    @property
    def free(self) -> int:
        return self.capacity - self.placed


def candidate(name: str, backend: Mapping[str, Any], placed: int) -> Candidate:
    """Backend object ``backend`` (as stored) as a Candidate holding ``placed`` tenants."""
    spec, status = backend.get("spec") or {}, backend.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
    return Candidate(name, spec.get("type", ""), ready, int(spec.get("capacity", 100)), placed,
                     bool(spec.get("paused", False)))


def choose(service: str, candidates: list[Candidate]) -> str:
    fitting = [c for c in candidates if c.type == service and c.ready and not c.paused and c.free > 0]
    if not fitting:
        of_type = [c for c in candidates if c.type == service]
        if not of_type:
            raise NoBackend(f"no Backend of type {service} exists; create one (see examples/backends.yaml)")
        detail = ", ".join(f"{c.name} ({'ready' if c.ready else 'not ready'}, {c.free} free"
                           f"{', paused' if c.paused else ''})" for c in sorted(of_type, key=lambda c: c.name))
        raise NoBackend(f"no ready {service} Backend with free capacity: {detail}")
    return sorted(fitting, key=lambda c: (-c.free, c.name))[0].name


def refusal(c: Candidate) -> tuple[str, str] | None:
    """(reason, message) when Backend ``c`` takes no new tenant (paused, or ``placed`` at its capacity),
    else None; the message ends with what to change on the Backend, the caller adds its own way out.
    For a Backend named explicitly: readiness is not asked (an outage is retried, not refused)."""
    if c.paused:
        return "BackendPaused", f"Backend {c.name} is paused (spec.paused): it takes no new tenant; unpause it"
    if c.free <= 0:
        return "BackendFull", (f"Backend {c.name} holds {c.placed} tenants, its capacity is {c.capacity}: it takes "
                               "no new tenant; raise its spec.capacity")
    return None
