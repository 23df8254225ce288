"""Placement: which Backend a tenant's service lands on when the Tenant names none.

The ready, unpaused Backend of that type with the most free capacity wins; ties go to the name
that sorts first, so the choice is deterministic. Once made, the choice is recorded in status and
kept (the CRD refuses a spec that contradicts it).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Candidate", "choose", "NoBackend"]


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
