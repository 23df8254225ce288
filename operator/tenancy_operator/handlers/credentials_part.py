"""The CredentialsReady part: stage, apply and publish credentials, and rotate them without downtime.

Order matters for "never cut a running app": new passwords are staged in `tenant-credentials-next`,
then every backend is told to accept them (the old ones stay valid through the overlap), and only
then does `tenant-credentials`, which apps read, move to them. A crash anywhere resumes from the
staged Secret with the same passwords. Secret values are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..api.tenant import TenantSpec
from ..backends import kube
from ..backends.base import Report, TenantSlice
from ..reconcile import credentials as creds
from ..reconcile import labels
from ..reconcile.namespace import owner_reference
from ..reconcile.status import PartResult

__all__ = ["SECRET", "STAGED", "Plan", "prepare", "slice_for", "publish", "CONDITION", "PASSWORD_KEYS", "public_endpoints"]

CONDITION = "CredentialsReady"
SECRET = "tenant-credentials"
STAGED = "tenant-credentials-next"
PASSWORD_KEYS = {"postgres": "PGPASSWORD", "redis": "REDIS_PASSWORD"}
_SECRET_KEYS = ("PASSWORD", "DATABASE_URL", "REDIS_URL")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _decode(secret: dict[str, Any] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in ((secret or {}).get("data") or {}).items()}


def public_endpoints(data: dict[str, str]) -> dict[str, str]:
    """What may appear in status: everything but passwords and URLs that embed them."""
    return {k: v for k, v in data.items() if not any(s in k for s in _SECRET_KEYS)}


@dataclass
class Plan:
    """The credentials every backend is asked to accept in this pass."""

    state: creds.State
    passwords: dict[str, str] = field(repr=False, default_factory=dict)
    staged: bool = False
    previous_valid: bool = False
    live: dict[str, Any] | None = None
    waiting: str = ""
    """Why a wanted rotation did not start yet (shown in the condition)."""


def _secret(name: str, namespace: str, tenant: str, uid: str, data: dict[str, str], state: creds.State) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels.owned_labels(tenant),
            "annotations": creds.to_annotations(state),
            "ownerReferences": [owner_reference(tenant, uid)],
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())},
    }


async def prepare(tenant: str, uid: str, namespace: str, spec: TenantSpec, services: list[str],
                  requested: str, logger: logging.Logger) -> Plan:
    """Read the Secrets, decide on rotation, and stage new passwords when one is due."""
    now = _now()
    live = await kube.get("Secret", SECRET, namespace)
    staged = await kube.get("Secret", STAGED, namespace)
    state = creds.from_annotations((live or {}).get("metadata", {}).get("annotations"))
    current = _decode(live)
    every, overlap = creds.parse_duration(spec.credentials.rotate_every), creds.parse_duration(spec.credentials.overlap)
    missing = [s for s in services if s in PASSWORD_KEYS and not current.get(PASSWORD_KEYS[s])]

    if staged is None:
        due, why = creds.rotation_due(state, every, overlap, requested, now)
        if not due and not missing:
            return Plan(state, {s: current[PASSWORD_KEYS[s]] for s in services if s in PASSWORD_KEYS},
                        previous_valid=creds.in_overlap(state, overlap, now), live=live, waiting=why)
        rotating = due
        redis_sha = hashlib.sha256(current["REDIS_PASSWORD"].encode()).hexdigest() if current.get("REDIS_PASSWORD") else ""
        if rotating:
            target = creds.next_state(state, now, requested, redis_sha)
            passwords = {s: creds.new_password() for s in services if s in PASSWORD_KEYS}
        else:  # a newly enabled service: add its password, keep the others and the slot
            target = creds.State(state.version + 1, state.slot, state.rotated_at or now, state.previous_redis_sha256,
                                 state.rotate_handled)
            passwords = {s: current.get(PASSWORD_KEYS[s]) or creds.new_password() for s in services if s in PASSWORD_KEYS}
        staged = _secret(STAGED, namespace, tenant, uid, {PASSWORD_KEYS[s]: p for s, p in passwords.items()}, target)
        try:
            await kube.create(staged)
        except kube.Conflict:
            staged = await kube.get("Secret", STAGED, namespace)
        logger.info("staged credentials version %s for tenant %s (%s)", target.version, tenant,
                    why if rotating else "new service")
    staged_data = _decode(staged)
    target = creds.from_annotations(staged["metadata"].get("annotations"))
    passwords = {s: staged_data.get(PASSWORD_KEYS[s]) or current.get(PASSWORD_KEYS[s], "")
                 for s in services if s in PASSWORD_KEYS}
    return Plan(target, passwords, staged=True, previous_valid=True, live=live)


def slice_for(plan: Plan, service: str, tenant: str, namespace: str, spec: TenantSpec, suspended: bool,
              signing_algorithm: str = "", *, uid: str) -> TenantSlice:
    return TenantSlice(
        tenant=tenant,
        namespace=namespace,
        uid=uid,
        password=plan.passwords.get(service, ""),
        slot=plan.state.slot,
        previous_valid=plan.previous_valid,
        previous_password_sha256=plan.state.previous_redis_sha256,
        suspended=suspended,
        connection_limit=spec.postgres.connection_limit,
        transit_key=spec.vault.transit_key,
        kv=spec.vault.kv,
        signing_algorithm=signing_algorithm,
    )


async def publish(tenant: str, uid: str, namespace: str, plan: Plan, reports: dict[str, Report],
                  spec: TenantSpec) -> tuple[PartResult, dict[str, Any], list[str]]:
    """Move `tenant-credentials` to what every backend now accepts; returns (part, status, repaired)."""
    data: dict[str, str] = {}
    for report in reports.values():
        data.update(report.endpoints)
    state = plan.state
    overlap = creds.parse_duration(spec.credentials.overlap)
    if not plan.staged and not creds.in_overlap(state, overlap, _now()) and state.previous_redis_sha256:
        state = creds.State(state.version, state.slot, state.rotated_at, "", state.rotate_handled)
    desired = _secret(SECRET, namespace, tenant, uid, data, state)
    repaired: list[str] = []
    live = plan.live
    if live is None:
        try:
            await kube.create(desired)
        except kube.Conflict:
            await kube.merge_patch("Secret", SECRET, namespace, {k: desired[k] for k in ("metadata", "data")})
        repaired.append(f"Secret {SECRET}")
    elif (_decode(live) != data or creds.from_annotations(live["metadata"].get("annotations")) != state
          or labels.tenant_of(live) != tenant):
        # Replace data wholesale: keys of a disabled service must go, which a merge patch would keep.
        body = {"metadata": {"labels": desired["metadata"]["labels"],
                             "annotations": {**desired["metadata"]["annotations"],
                                             creds.PREVIOUS_REDIS_SHA: state.previous_redis_sha256 or None}},
                "data": {**{k: None for k in (live.get("data") or {}) if k not in desired["data"]}, **desired["data"]}}
        await kube.merge_patch("Secret", SECRET, namespace, body)
        if not plan.staged:
            repaired.append(f"Secret {SECRET}")
    if plan.staged:
        await kube.delete("Secret", STAGED, namespace)
    every = creds.parse_duration(spec.credentials.rotate_every)
    status = {
        "version": state.version,
        "activeRole": data.get("PGUSER"),
        "rotatedAt": state.rotated_at.strftime("%Y-%m-%dT%H:%M:%SZ") if state.rotated_at else None,
        "nextRotationAt": (state.rotated_at + every).strftime("%Y-%m-%dT%H:%M:%SZ") if state.rotated_at else None,
        "secretName": SECRET,
    }
    message = f"Secret {SECRET} at version {state.version}"
    if plan.waiting:
        message += f"; {plan.waiting}"
    return PartResult(CONDITION, True, "Succeeded", message), status, repaired
