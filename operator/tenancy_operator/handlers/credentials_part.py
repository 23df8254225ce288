"""The CredentialsReady part: stage, apply and publish credentials, and rotate them without downtime.

Order matters for "never cut a running app": a rotation is first recorded in the Tenant's status
(`status.credentials.pending`, which tenants cannot write), its passwords staged in
`tenant-credentials-next`, then every backend is told to accept them (the old ones stay valid
through the overlap), and only then does `tenant-credentials`, which apps read, move to them. A
crash anywhere resumes from the pending state with the same passwords. The Secrets are user-writable:
their values are read tolerantly and their annotations never as truth. A deleted Secret (or a
namespace deleted and recreated) is a rotation from the status state, never a reset. A password
edited in either Secret is never given to a backend (status keeps each password's SHA-256 to tell):
in `tenant-credentials` it is a rotation, in the staged Secret it is made anew. Secret values are
never logged.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..api.common import parse_duration
from ..api.tenant import TenantSpec
from ..backends import kube
from ..backends.base import Report, TenantSlice
from ..reconcile import credentials as creds
from ..reconcile import labels
from ..reconcile.namespace import owner_reference
from ..reconcile.status import PartResult

__all__ = ["SECRET", "STAGED", "Plan", "prepare", "unknown", "slice_for", "publish", "CONDITION", "PASSWORD_KEYS",
           "ROTATIONS", "public_endpoints"]

CONDITION = "CredentialsReady"
SECRET = "tenant-credentials"
STAGED = "tenant-credentials-next"
PASSWORD_KEYS = {"postgres": "PGPASSWORD", "redis": "REDIS_PASSWORD", "search": "SEARCH_PASSWORD",
                 "mongodb": "MONGODB_PASSWORD"}
ROTATIONS = (creds.REQUESTED, creds.SCHEDULED, creds.SECRET_DELETED, creds.PASSWORD_REMOVED, creds.PASSWORD_EDITED)
"""Reasons that make a new version a rotation (a Normal `Rotated` Event and the rotations metric)."""
_SECRET_KEYS = ("PASSWORD", "DATABASE_URL", "REDIS_URL", "MONGODB_URI")
_RETIRED_ANNOTATIONS = (creds.PREVIOUS_REDIS_SHA, creds.ROTATE_HANDLED)  # bookkeeping older versions kept here


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _decode(secret: Mapping[str, Any] | None) -> dict[str, str]:
    """A user-writable Secret's data; a value that is not base64 of UTF-8 text reads as absent."""
    out: dict[str, str] = {}
    for key, value in (((secret or {}).get("data") or {}) or {}).items():
        try:
            out[str(key)] = base64.b64decode(value or "", validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
            continue
    return out


def public_endpoints(data: dict[str, str]) -> dict[str, str]:
    """What may appear in status: everything but passwords, URLs that embed them, and certificates
    (not secret, but a PEM block is no endpoint)."""
    return {k: v for k, v in data.items() if not any(s in k for s in (*_SECRET_KEYS, "CA_CERT"))}


@dataclass
class Plan:
    """The credentials every backend is asked to accept in this pass."""

    state: creds.State
    passwords: dict[str, str] = field(repr=False, default_factory=dict)
    """Empty for a service: its backend keeps the password it has (credentials could not be read)."""
    staged: bool = False
    previous_valid: bool = False
    live: dict[str, Any] | None = None
    waiting: str = ""
    """Why a wanted rotation did not start yet (shown in the condition)."""
    closing: bool = False
    """This pass ends the previous version's overlap: the backends drop it."""
    suspended: bool = False
    """The overlap ends early because the tenant's doors are closed (see `suspend`)."""


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


def _owned(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """`live`'s ownerReferences with ours put back (others' kept); None when ours is there."""
    refs = list((live.get("metadata") or {}).get("ownerReferences") or [])
    ours = desired["metadata"]["ownerReferences"][0]
    if any(r.get("uid") == ours["uid"] for r in refs):
        return None
    return [r for r in refs if not r.get("controller")] + [ours]


def _replace_body(desired: dict[str, Any], live: Mapping[str, Any], drop_annotations: tuple[str, ...] = ()) -> dict[str, Any]:
    """A merge patch that makes `live` hold exactly `desired`'s data: keys of a disabled service must go;
    our ownerReference is put back when it was removed (the Secret goes with its Tenant)."""
    annotations = {**{k: None for k in drop_annotations if k in (live.get("metadata", {}).get("annotations") or {})},
                   **desired["metadata"]["annotations"]}
    meta: dict[str, Any] = {"labels": desired["metadata"]["labels"], "annotations": annotations}
    refs = _owned(desired, live)
    if refs is not None:
        meta["ownerReferences"] = refs
    return {"metadata": meta,
            "data": {**{k: None for k in (live.get("data") or {}) if k not in desired["data"]}, **desired["data"]}}


def _migrating(status: Mapping[str, Any] | None) -> bool:
    """`status.credentials` predates the state in status (an older operator kept it on the Secret).

    A pending rotation without a live state is this operator's first credentials under way: the
    Secrets' annotations (anyone with Secret write access sets them) are not read then."""
    return creds.from_status(status) is None and not (status or {}).get("pending")


def current_state(status: Mapping[str, Any] | None, live: Mapping[str, Any] | None) -> creds.State:
    """The authoritative state: `status.credentials`, or once (migration) the Secret's annotations;
    version 0 while the first credentials are pending."""
    state = creds.from_status(status)
    if state is None and not _migrating(status):
        return creds.State()
    if state is None:
        annotations = ((live or {}).get("metadata") or {}).get("annotations")
        state = creds.from_annotations(annotations, status)
        state = replace(state, services=tuple(s for s, k in PASSWORD_KEYS.items() if _decode(live).get(k)))
    return state


def suspend(plan: Plan) -> Plan:
    """The plan of a pass whose doors are closed (suspended with its logins revoked, archived): a
    rotation's overlap ends. The previous version's doors close with the tenant's, and not every
    backend could open them again at resume (OpenSearch's users are deleted, and their passwords are
    not kept); the workloads start on the current version then. A rotation staged in such a pass
    (rotateEvery due, a request) has no overlap either."""
    if not plan.state.previous_open:
        return plan
    return replace(plan, previous_valid=False, closing=True, suspended=True)


def unknown(status: Mapping[str, Any] | None, spec: TenantSpec) -> Plan:
    """The plan when credentials could not be prepared: every backend keeps its passwords and the live
    slot, so the other parts (suspend above all) still converge."""
    state = current_state(status, None)
    return Plan(state, {}, previous_valid=creds.in_overlap(state, parse_duration(spec.credentials.overlap), _now()))


async def _stage(tenant: str, uid: str, namespace: str, target: creds.State, passwords: dict[str, str],
                 existing: Mapping[str, Any] | None, record: dict[str, Any] | None = None) -> None:
    """Record the target in status first (authoritative), then its passwords in the staged Secret.

    `record`: other status fields to write in the same patch (a new placement); emptied once written."""
    extra = dict(record or {})
    await kube.merge_patch("Tenant", tenant, None,
                           {"status": {**extra, "credentials": {"pending": creds.to_status(target)}}}, "status")
    if record:
        record.clear()
    staged = _secret(STAGED, namespace, tenant, uid, {PASSWORD_KEYS[s]: p for s, p in passwords.items()}, target)
    if existing is None:
        try:
            await kube.create(staged)
            return
        except kube.Conflict:
            existing = await kube.get("Secret", STAGED, namespace) or {}
    await kube.merge_patch("Secret", STAGED, namespace, _replace_body(staged, existing))


async def prepare(tenant: str, uid: str, namespace: str, spec: TenantSpec, services: list[str],
                  requested: str, status: Mapping[str, Any] | None, logger: logging.Logger,
                  record: dict[str, Any] | None = None) -> Plan:
    """Read the Secrets, decide on rotation, and stage new passwords when one is due.

    `status` is `status.credentials`. `record`: status fields the caller has yet to write (a new
    placement); a staging writes them in its own patch and empties the dict, else they stay there.
    Raises kube.KubeError when the API server refuses a read or write.
    """
    now = _now()
    live = await kube.get("Secret", SECRET, namespace)
    staged = await kube.get("Secret", STAGED, namespace)
    state = current_state(status, live)
    current = _decode(live)
    if "redis" in services and not state.redis_sha256 and current.get("REDIS_PASSWORD"):
        state = replace(state, redis_sha256=creds.password_sha256(current["REDIS_PASSWORD"]))  # migration: the hash the server holds
    every, overlap = parse_duration(spec.credentials.rotate_every), parse_duration(spec.credentials.overlap)
    wanted = [s for s in services if s in PASSWORD_KEYS]
    in_secret = {s: current.get(PASSWORD_KEYS[s], "") for s in wanted}
    edited = creds.edited(state, in_secret)
    trusted = {s: p for s, p in in_secret.items() if p and s not in edited}
    pending = creds.from_status((status or {}).get("pending")) if not _migrating(status) else (
        creds.from_annotations((staged or {}).get("metadata", {}).get("annotations")) if staged else None)

    if pending is None or pending.version <= state.version:
        missing = [s for s in wanted if not current.get(PASSWORD_KEYS[s])]
        lost = ""
        if live is None and state.version > 0:
            lost = creds.SECRET_DELETED
        elif any(s in state.services for s in missing):
            lost = creds.PASSWORD_REMOVED
        elif edited:
            # Someone wrote a password into the Secret: pushing it would cut every app holding ours
            # (and let a Secret writer choose a weak one). Rotate instead; ours stays valid.
            lost = creds.PASSWORD_EDITED
            logger.warning("tenant %s: the %s password in Secret %s was edited; edits are not applied, rotating",
                           tenant, ", ".join(edited), SECRET)
        due, why = creds.rotation_due(state, every, overlap, requested, now, lost)
        if not due and not missing:
            if staged is not None:  # a leftover, or not ours: nothing is pending
                await kube.delete("Secret", STAGED, namespace)
            return Plan(state, {s: trusted[s] for s in wanted}, live=live, waiting=why,
                        previous_valid=creds.in_overlap(state, overlap, now),
                        closing=creds.closing(state, overlap, now))
        if due:
            target = creds.next_state(state, now, requested, why)
            passwords = {s: creds.new_password() for s in wanted}
        else:  # a newly enabled service: add its password, keep the others and the slot
            target = creds.with_service(state, now)
            passwords = {s: trusted.get(s) or creds.new_password() for s in wanted}
        target = creds.with_passwords(replace(target, services=tuple(wanted)), passwords)
        await _stage(tenant, uid, namespace, target, passwords, staged, record)
        logger.info("staged credentials version %s for tenant %s (%s)", target.version, tenant, target.reason or why)
        return Plan(target, passwords, staged=True, previous_valid=_keeps_previous(state, target, overlap, now),
                    live=live)

    # A rotation is under way: resume it with the staged passwords. Ones that are gone (the staged
    # Secret deleted with its namespace) or not the ones staged (edited) are made anew; the live
    # version's slot is not touched.
    staged_data = _decode(staged)
    passwords = {s: staged_data.get(PASSWORD_KEYS[s]) or "" for s in wanted}
    passwords = {s: "" if s in creds.edited(pending, passwords) else p for s, p in passwords.items()}
    if not all(passwords.values()):
        keep = pending.reason not in ROTATIONS and pending.reason != "first credentials"
        passwords = {s: p or (keep and trusted.get(s)) or creds.new_password() for s, p in passwords.items()}
        await _stage(tenant, uid, namespace, creds.with_passwords(replace(pending, services=tuple(wanted)), passwords),
                     passwords, staged, record)
    target = creds.with_passwords(replace(pending, services=tuple(wanted)), passwords)
    return Plan(target, passwords, staged=True, previous_valid=_keeps_previous(state, target, overlap, now), live=live)


def _keeps_previous(state: creds.State, target: creds.State, overlap: Any, now: datetime) -> bool:
    """Does the previous credential stay valid while `target` is applied?

    Only when there is an earlier credential to keep working: a rotation to the other slot, or an
    overlap still running. First credentials and a newly enabled service have none; switching the
    idle slot's login on for one pass and off on the next wrote twice on every new tenant.
    """
    return (state.version > 0 and target.slot != state.slot) or creds.in_overlap(state, overlap, now)


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
        password_staged=plan.staged,
        suspended=suspended,
        connection_limit=spec.postgres.connection_limit,
        transit_key=spec.vault.transit_key,
        kv=spec.vault.kv,
        max_shards=spec.search.max_shards,
        signing_algorithm=signing_algorithm,
        tokens_issued_before=_retire_tokens_before(plan),
    )


def _retire_tokens_before(plan: Plan) -> float | None:
    """When the live version came from a rotation whose overlap is over: tokens from before it retire."""
    state = plan.state
    if plan.staged or plan.previous_valid or state.reason not in ROTATIONS or state.rotated_at is None:
        return None
    # rotatedAt is kept to the second: a token issued in that second may predate the rotation (a rotation
    # asked for right after a login runs at once), so it retires too; one issued after it logs in again.
    return state.rotated_at.replace(tzinfo=UTC).timestamp() + 1


@dataclass
class Published:
    """What publishing did: the part, `status.credentials`, drift it put back, and what people are told."""

    part: PartResult
    status: dict[str, Any]
    repaired: list[str] = field(default_factory=list)
    rotated: str = ""
    """The rotation reason when this pass completed one (requested, scheduled, secret-deleted, ...)."""
    events: list[str] = field(default_factory=list)
    """Messages of Normal `Rotated` Events."""


async def publish(tenant: str, uid: str, namespace: str, plan: Plan, reports: dict[str, Report],
                  spec: TenantSpec, status: Mapping[str, Any] | None) -> Published:
    """Move `tenant-credentials` to what every backend now accepts, and say so in status."""
    data: dict[str, str] = {}
    for report in reports.values():
        data.update(report.endpoints)
    state = plan.state
    if plan.closing:
        state = replace(state, previous_redis_sha256="", previous_open=False)
    state = creds.with_passwords(state, {s: data.get(k, "") for s, k in PASSWORD_KEYS.items()})
    state = replace(state, redis_sha256=state.password_sha256.get("redis", ""),
                    services=tuple(s for s, k in PASSWORD_KEYS.items() if data.get(k)))
    desired = _secret(SECRET, namespace, tenant, uid, data, state)
    out = Published(PartResult(CONDITION, True, "Succeeded", ""), {})
    live = plan.live
    if live is None:
        try:
            await kube.create(desired)
        except kube.Conflict:
            await kube.merge_patch("Secret", SECRET, namespace, {k: desired[k] for k in ("metadata", "data")})
        if not plan.staged:  # a rotation (secret-deleted included) makes it anew: not drift
            out.repaired.append(f"Secret {SECRET}")
    else:
        annotations = live.get("metadata", {}).get("annotations") or {}
        if (_decode(live) != data or len(_decode(live)) != len(live.get("data") or {})
                or any(annotations.get(k) != v for k, v in desired["metadata"]["annotations"].items())
                or any(k in annotations for k in _RETIRED_ANNOTATIONS) or labels.tenant_of(live) != tenant
                or _owned(desired, live) is not None):
            await kube.merge_patch("Secret", SECRET, namespace, _replace_body(desired, live, _RETIRED_ANNOTATIONS))
            if not plan.staged:
                out.repaired.append(f"Secret {SECRET}")
    if plan.staged:
        await kube.delete("Secret", STAGED, namespace)
        if state.reason in ROTATIONS:
            out.rotated = state.reason
            out.events.append(f"credentials rotated to version {state.version} on slot {state.slot} ({state.reason}); "
                              + ("the previous version no longer works (the tenant's doors are closed)" if plan.suspended
                                 else f"the previous version keeps working for {spec.credentials.overlap}")
                              + ("; a password written into the Secret is never applied" if state.reason == creds.PASSWORD_EDITED else ""))
    elif plan.closing:
        rotated = f" at {state.rotated_at:%Y-%m-%dT%H:%M:%SZ}" if state.rotated_at else ""
        out.events.append(f"the credentials from before the rotation{rotated} no longer work: its overlap ended"
                          + (" early (the tenant's doors are closed)" if plan.suspended else ""))
    every = parse_duration(spec.credentials.rotate_every)
    fields = {
        **creds.to_status(state),
        "activeRole": data.get("PGUSER"),
        "nextRotationAt": (state.rotated_at + every).strftime("%Y-%m-%dT%H:%M:%SZ") if state.rotated_at else None,
        "secretName": SECRET,
    }
    now = {k: v for k, v in fields.items() if v is not None}
    # Merge patches keep keys they do not name: name the ones to drop (and the pending rotation).
    out.status = {**now, **{k: None for k in (status or {}) if k not in now}}
    if plan.staged:
        out.status["pending"] = None
    message = f"Secret {SECRET} at version {state.version}"
    if plan.waiting:
        message += f"; {plan.waiting}"
    out.part = PartResult(CONDITION, True, "Succeeded", message)
    return out
