"""Credential rotation as decisions on plain data: when to rotate, which slot, when the overlap ends.

The authoritative state (version, PostgreSQL slot, rotatedAt, the rotate request already handled,
the Redis password hashes) lives in the Tenant's `status.credentials`, which only the operator
writes. The Secret `tenant-credentials` is user-writable: its annotations are informative copies,
read once, tolerantly, to migrate a tenant whose status predates this state. A rotation is staged
(`status.credentials.pending`, passwords in `tenant-credentials-next`) before any backend hears of
it, so a crash resumes with the same target instead of inventing another.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["State", "parse_time", "from_status", "to_status", "from_annotations",
           "to_annotations", "rotation_due", "next_state", "with_service", "in_overlap", "closing", "new_password",
           "password_sha256", "edited", "with_passwords", "VERSION", "SLOT", "ROTATED_AT", "PREVIOUS_REDIS_SHA",
           "ROTATE_HANDLED", "SECRET_DELETED", "PASSWORD_REMOVED", "PASSWORD_EDITED"]

VERSION = "tenancy.dev/credential-version"
SLOT = "tenancy.dev/postgres-slot"
ROTATED_AT = "tenancy.dev/rotated-at"
PREVIOUS_REDIS_SHA = "tenancy.dev/previous-redis-sha256"
ROTATE_HANDLED = "tenancy.dev/rotate-handled"

# Why a rotation happened, as the metric label `reason` and the Event say it.
REQUESTED, SCHEDULED, SECRET_DELETED, PASSWORD_REMOVED = "requested", "scheduled", "secret-deleted", "password-removed"
PASSWORD_EDITED = "password-edited"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace").strip()
    return str(value).strip() if value is not None else ""


def parse_time(value: Any) -> datetime | None:
    """Any RFC 3339 form ("Z", an offset, fractions, lower-case, bytes) as naive UTC; None if unreadable."""
    text = _text(value).upper().replace(" ", "T")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _version(value: Any) -> int:
    text = _text(value)
    return int(text) if text.isdigit() and len(text) < 10 else 0


def _sha(value: Any) -> str:
    text = _text(value).lower()
    return text if _SHA256.match(text) else ""


def _hashes(value: Any) -> dict[str, str]:
    """service -> SHA-256 hex, read tolerantly: entries that are not one are left out."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): h for k, v in value.items() if (h := _sha(v))}


def new_password() -> str:
    return secrets.token_urlsafe(32)


def password_sha256(password: str) -> str:
    """SHA-256 of a password as lower-case hex: what status keeps instead of the password."""
    return hashlib.sha256(password.encode()).hexdigest()


@dataclass(frozen=True)
class State:
    """One credential version as every backend knows it."""

    version: int = 0
    slot: str = "a"
    rotated_at: datetime | None = None
    previous_redis_sha256: str = ""
    """The previous Redis password's hash, accepted while the previous version is open."""
    rotate_handled: str = ""
    """The last `tenancy.dev/rotate` value acted on."""
    redis_sha256: str = ""
    """This version's Redis password hash: what keeps it accepted when the Secret is gone."""
    previous_open: bool = False
    """The previous version still works (its overlap has not been closed yet)."""
    reason: str = ""
    """Why this version was made (requested, scheduled, secret-deleted, ...)."""
    services: tuple[str, ...] = ()
    """The services that hold a password in this version."""
    password_sha256: Mapping[str, str] = field(default_factory=dict)
    """Service -> SHA-256 of the password this version gave it: tells an edited Secret from ours."""


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def from_status(status: Mapping[str, Any] | None) -> State | None:
    """The state in `status.credentials` (or its `pending`); None when it holds none yet (migration)."""
    s = status or {}
    if s.get("slot") not in ("a", "b"):
        return None
    return State(
        version=_version(s.get("version")), slot=s["slot"], rotated_at=parse_time(s.get("rotatedAt")),
        previous_redis_sha256=_sha(s.get("previousRedisSha256")), rotate_handled=_text(s.get("rotateHandled")),
        redis_sha256=_sha(s.get("redisSha256")), previous_open=bool(s.get("previousOpen")),
        reason=_text(s.get("reason")),
        services=tuple(x for x in (s.get("services") or []) if isinstance(x, str)),
        password_sha256=_hashes(s.get("passwordSha256")),
    )


def to_status(state: State) -> dict[str, Any]:
    """The fields of `status.credentials` (or its `pending`) that carry the state."""
    return {"version": state.version, "slot": state.slot, "rotatedAt": _iso(state.rotated_at),
            "rotateHandled": state.rotate_handled or None, "redisSha256": state.redis_sha256 or None,
            "previousRedisSha256": state.previous_redis_sha256 or None, "previousOpen": state.previous_open or None,
            "reason": state.reason or None, "services": list(state.services) or None,
            "passwordSha256": dict(sorted(state.password_sha256.items())) or None}


def from_annotations(annotations: Mapping[str, Any] | None, old_status: Mapping[str, Any] | None = None) -> State:
    """Migration: the state an older operator kept on the Secret, read tolerantly. A value that does
    not parse falls back to the older status (version, rotatedAt, activeRole), then to nothing."""
    a, old = annotations or {}, old_status or {}
    slot = _text(a.get(SLOT)).lower()
    if slot not in ("a", "b"):
        role = _text(old.get("activeRole"))
        slot = role[-1] if role.endswith(("_a", "_b")) else "a"
    version = _version(a.get(VERSION)) or _version(old.get("version"))
    return State(
        version=version,
        slot=slot,
        rotated_at=parse_time(a.get(ROTATED_AT)) or parse_time(old.get("rotatedAt")),
        previous_redis_sha256=_sha(a.get(PREVIOUS_REDIS_SHA)),
        rotate_handled=_text(a.get(ROTATE_HANDLED)),
        previous_open=version > 1,  # in_overlap still asks the clock
    )


def to_annotations(state: State) -> dict[str, str]:
    """Informative copies on the Secret, for people and workloads; never read back as truth."""
    out = {VERSION: str(state.version), SLOT: state.slot}
    if state.rotated_at:
        out[ROTATED_AT] = _iso(state.rotated_at) or ""
    return out


def edited(state: State, secret_passwords: Mapping[str, str]) -> list[str]:
    """The services whose password in the user-writable Secret is not the one this version gave them.

    `secret_passwords`: service -> the password the Secret holds now (absent or empty: not an edit,
    that is a removed password). A service without a recorded hash (a tenant from before the hashes
    were kept) is compared with `redis_sha256` for Redis and trusted otherwise, until the next publish
    records it. An edit is never applied to a backend: it is a rotation (`PASSWORD_EDITED`)."""
    recorded = dict(state.password_sha256)
    if state.redis_sha256:
        recorded.setdefault("redis", state.redis_sha256)
    return sorted(s for s, password in secret_passwords.items()
                  if password and s in recorded and password_sha256(password) != recorded[s])


def in_overlap(state: State, overlap: timedelta, now: datetime) -> bool:
    """The previous version still works: after a rotation, until `overlap` has passed."""
    if state.version <= 1 or not state.previous_open:
        return False
    return state.rotated_at is not None and now < state.rotated_at + overlap


def closing(state: State, overlap: timedelta, now: datetime) -> bool:
    """This pass closes the previous version: it was open and its overlap is over."""
    return state.previous_open and not in_overlap(state, overlap, now)


def rotation_due(state: State, every: timedelta, overlap: timedelta, requested: str, now: datetime,
                 lost: str = "") -> tuple[bool, str]:
    """(due, why). `lost` names a forced reason (the Secret or a password is gone): it rotates at once,
    because apps cannot start without it. Otherwise a new rotation waits for the previous overlap to
    end, so no live credential is cut. An unknown rotation time (a migrated, unreadable one) is due."""
    if state.version == 0:
        return True, "first credentials"
    if lost:
        return True, lost
    is_requested = bool(requested) and requested != state.rotate_handled
    wanted = is_requested or state.rotated_at is None or now >= state.rotated_at + every
    if not wanted:
        return False, ""
    if in_overlap(state, overlap, now):
        return False, "rotation waits for the previous overlap to end"
    return True, REQUESTED if is_requested else SCHEDULED


def next_state(state: State, now: datetime, requested: str, why: str = "") -> State:
    """The state after one rotation: the other slot, one version up, this version's Redis hash kept
    as the previous one for the overlap. Never back to version 1 once there was a version."""
    if state.version == 0:
        return State(version=1, slot="a", rotated_at=now, rotate_handled=requested, reason=why)
    return State(version=state.version + 1, slot="b" if state.slot == "a" else "a", rotated_at=now,
                 previous_redis_sha256=state.redis_sha256, rotate_handled=requested or state.rotate_handled,
                 previous_open=True, reason=why)


def with_passwords(state: State, passwords: Mapping[str, str]) -> State:
    """`state` recording the hashes of `passwords` (service -> password) and nothing else."""
    return replace(state, password_sha256={s: password_sha256(p) for s, p in sorted(passwords.items()) if p})


def with_service(state: State, now: datetime) -> State:
    """A newly enabled service gets its password: one version up (workloads roll), same slot."""
    return replace(state, version=state.version + 1, rotated_at=state.rotated_at or now, reason="service-added")
