"""Credential rotation as decisions on plain data: when to rotate, which slot, when the overlap ends.

The Secret `tenant-credentials` is the source of truth for what apps use; its annotations carry
the version, the PostgreSQL slot, when it was rotated and (during an overlap) the previous Redis
password's hash. A rotation is staged in `tenant-credentials-next` first, so a crash between
telling the backends and updating the Secret resumes with the same new password instead of
inventing another.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["State", "parse_duration", "from_annotations", "to_annotations", "rotation_due", "next_state",
           "in_overlap", "new_password", "VERSION", "SLOT", "ROTATED_AT", "PREVIOUS_REDIS_SHA", "ROTATE_HANDLED"]

VERSION = "tenancy.dev/credential-version"
SLOT = "tenancy.dev/postgres-slot"
ROTATED_AT = "tenancy.dev/rotated-at"
PREVIOUS_REDIS_SHA = "tenancy.dev/previous-redis-sha256"
ROTATE_HANDLED = "tenancy.dev/rotate-handled"

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> timedelta:
    """Go's duration text ("720h", "1h30m") as a timedelta."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def new_password() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class State:
    version: int = 0
    slot: str = "a"
    rotated_at: datetime | None = None
    previous_redis_sha256: str = ""
    rotate_handled: str = ""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def from_annotations(annotations: dict[str, str] | None) -> State:
    a = annotations or {}
    rotated = a.get(ROTATED_AT)
    return State(
        version=int(a.get(VERSION, "0") or 0),
        slot=a.get(SLOT, "a") if a.get(SLOT) in ("a", "b") else "a",
        rotated_at=datetime.strptime(rotated, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=None) if rotated else None,
        previous_redis_sha256=a.get(PREVIOUS_REDIS_SHA, ""),
        rotate_handled=a.get(ROTATE_HANDLED, ""),
    )


def to_annotations(state: State) -> dict[str, str]:
    out = {VERSION: str(state.version), SLOT: state.slot, ROTATE_HANDLED: state.rotate_handled}
    if state.rotated_at:
        out[ROTATED_AT] = _iso(state.rotated_at)
    if state.previous_redis_sha256:
        out[PREVIOUS_REDIS_SHA] = state.previous_redis_sha256
    return out


def in_overlap(state: State, overlap: timedelta, now: datetime) -> bool:
    return state.version > 1 and state.rotated_at is not None and now < state.rotated_at + overlap


def rotation_due(state: State, every: timedelta, overlap: timedelta, requested: str, now: datetime) -> tuple[bool, str]:
    """(due, why). A new rotation waits for the previous overlap to end, so no live credential is cut."""
    if state.version == 0:
        return True, "first credentials"
    wanted = (requested and requested != state.rotate_handled) or (
        state.rotated_at is not None and now >= state.rotated_at + every)
    if not wanted:
        return False, ""
    if in_overlap(state, overlap, now):
        return False, "rotation waits for the previous overlap to end"
    return True, "requested" if requested and requested != state.rotate_handled else "scheduled"


def next_state(state: State, now: datetime, requested: str, previous_redis_sha256: str) -> State:
    """The state after one rotation: the other slot, one version up, the old Redis hash kept for the overlap."""
    if state.version == 0:
        return State(version=1, slot="a", rotated_at=now, rotate_handled=requested)
    return State(version=state.version + 1, slot="b" if state.slot == "a" else "a", rotated_at=now,
                 previous_redis_sha256=previous_redis_sha256, rotate_handled=requested or state.rotate_handled)
