"""A Tenant pass's services: placement, a migration's hold, credentials, each backend, the Secret.

`converge` runs after the namespace part (handlers/tenant.py) and fills that pass's `Outcome`. The
placement a pass chooses is recorded before anything is provisioned there, so a crash at any line
cannot place the tenant twice; the credentials Secret is published only when every service is ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import kopf

from ..api import names
from ..api.conditions import Reason
from ..api.tenant import TenantSpec
from ..backends import kube
from ..backends.base import Report, TenantSlice
from ..observability import metrics
from ..reconcile import labels
from ..reconcile.status import PartResult
from . import credentials_part, migration_hold, name_held, services_part, sessions_part, workloads
from .indexes import backends_of, first_stored
from .part_failure import failure

__all__ = ["Outcome", "converge", "record", "carried", "forget"]

carried: dict[str, dict[str, Any]] = {}
"""Status fields a creation's pass writes with its first status write (its Reconciling mark)."""


@dataclass
class Outcome:
    """What one Tenant pass found and did: its parts' results and the status fields besides them."""

    parts: list[PartResult] = field(default_factory=list)
    state: str = "Active"
    status: dict[str, Any] = field(default_factory=dict)
    """Status fields besides conditions and phase (namespace, endpoints, placement...)."""
    repaired: list[str] = field(default_factory=list)
    """Objects written to put the world back in line; each verify pass that writes says so in an Event."""
    rotated: str = ""
    """The reason of a rotation this pass completed (the rotations metric's label)."""
    rotation_events: list[str] = field(default_factory=list)
    """Messages of Normal `Rotated` Events."""
    diffs: dict[str, str] = field(default_factory=dict)
    """What differed, per repaired object (no secret values): logged when a repair recurs."""
    adopted: list[str] = field(default_factory=list)
    """Retained data of a deleted Tenant re-attached by spec.adoptRetainedData (a Normal Event)."""
    ready_message: str | None = None
    """Ready's message when it is not the state's usual one (a suspend that keeps the logins)."""
    notes: list[str] = field(default_factory=list)
    """Writes a referenced policy's change asked for (Normal `PolicyApplied` Events; not drift)."""
    targets: dict[str, Any] = field(default_factory=dict)
    """The backend target each placed service resolved to this pass (the cache budget uses Redis's)."""


# Placements this process wrote that the `placements` index may not show yet: kopf updates an index
# from each object's own event stream, so the next tenant's placement can run before the previous
# tenant's status event reached the index, and would see its backend one tenant emptier.
_placed_here: defaultdict[tuple[str, str], set[str]] = defaultdict(set)


def counts(index: Any) -> dict[tuple[str, str], int]:
    """Tenants placed per (service, backend): the `placements` index's and this process's newer ones."""
    seen = {key: set(store) for key, store in (index or {}).items()}
    for key, pending in _placed_here.items():
        pending -= seen.get(key, set())  # the index caught up with these
        seen.setdefault(key, set()).update(pending)
    return {key: len(tenants) for key, tenants in seen.items()}


def forget(name: str) -> None:
    """Drop what this module keeps of a deleted tenant."""
    carried.pop(name, None)
    for pending in _placed_here.values():
        pending.discard(name)


async def converge(name: str, uid: str, tenant: TenantSpec, meta: kopf.Meta, status: kopf.Status,
                   indexes: dict[str, Any], outcome: Outcome, logger: logging.Logger, suspended: bool) -> None:
    """The services of one pass, into `outcome`: a migration's hold (a stale one lifted), placement
    (recorded before anything is provisioned there), disabled services closed, the credentials'
    staging, every enabled service with a backend converged there, sessions, then the credentials
    Secret's publish and the workloads' roll once every service is ready (not while a migration holds
    the database). `suspended`: the doors are closed (the backends' logins revoked). What it raises,
    the caller reports as the credentials part's failure."""
    namespace = names.namespace(name)
    services = services_part.enabled_services(tenant)
    # Placement, credentials and a migration's hold are read fresh: the watched body can lag behind
    # the last status write (this process's own, or a migration's), and a stale view would place the
    # tenant back, rotate twice, or undo a write freeze.
    fresh = ((await kube.get("Tenant", name)) or {}).get("status") or {}
    placed = dict(fresh.get("placement") or status.get("placement") or {})
    hold = fresh.get("migration")
    if hold:  # a hold whose run ended or went (its undo failed) is lifted here, else it would stay for good
        lifted = await migration_hold.lift_if_stale(name, logger)
        if lifted:
            outcome.repaired.append(lifted)
            hold = None
    held = ["postgres"] if hold and "postgres" in services else []
    resolved = await services_part.resolve(tenant, placed, backends_of(indexes.get("backends_by_name")),
                                           counts(indexes.get("placements")))
    new_placement = {**placed, **resolved.placement}
    # The choice is recorded before anything is provisioned there, so a crash cannot place the tenant
    # twice: with the first credentials' staging when there is one (one status patch instead of two
    # on every new tenant), else on its own just before the services run (`record`).
    unrecorded: dict[str, Any] = carried.pop(name, {})  # a creation's Reconciling mark, if any
    if new_placement != placed:
        unrecorded["placement"] = new_placement
        for service, backend in new_placement.items():
            if placed.get(service) != backend:
                _placed_here[(service, backend)].add(name)
    # `placement` is written above, only when a service is first placed; the final status write must
    # not carry it, or a pass that read it before a migration's switch would put the old one back.
    if not held:
        outcome.status["backends"] = " ".join(f"{s}={b}" for s, b in sorted(resolved.placement.items())) or None
    outcome.parts += list(resolved.problems.values())
    outcome.targets = resolved.targets
    closed, problems = await services_part.close_disabled(name, new_placement, services,
                                                          backends_of(indexes.get("backends_by_name")), logger)
    outcome.repaired += closed
    outcome.parts += problems
    if not services:
        await record(name, unrecorded)
        return
    if held:
        await record(name, unrecorded)
        # A migrate-database run holds the database: it, the credentials Secret and the placement are
        # the run's until it ends (status.migration). The other services carry on with their passwords.
        message = (f"WorkflowRun {hold.get('run')} is moving the database to {hold.get('targetBackend')}; writes are "
                   "frozen until it switches or compensates")
        outcome.parts += [PartResult(services_part.SERVICES["postgres"], False, Reason.MIGRATING, message),
                          PartResult(credentials_part.CONDITION, False, Reason.MIGRATING,
                                     f"the credentials Secret is WorkflowRun {hold.get('run')}'s until it ends")]
        await _held_services(name, uid, namespace, tenant, [s for s in services if s not in held],
                             resolved, status, outcome, logger)
        return
    ready = [s for s in services if s in resolved.targets]
    requested = (meta.get("annotations") or {}).get(labels.ROTATE, "")
    known = fresh.get("credentials") or status.get("credentials")
    try:
        plan = await credentials_part.prepare(name, uid, namespace, tenant, ready, requested, known, logger,
                                              record=unrecorded)
        credentials_failed = None
        if suspended:
            plan = credentials_part.suspend(plan)
    except Exception as exc:  # noqa: BLE001 - a credentials failure must not stop the other parts (suspend above all)
        credentials_failed = failure(credentials_part.CONDITION, exc, logger)
        plan = credentials_part.unknown(known, tenant)
    await record(name, unrecorded)  # what no staging carried
    reports: dict[str, Report] = {}
    live = indexes.get("tenants_by_uid")
    session_policy, session_problem = sessions_part.resolve(tenant, indexes.get("session_policies"))
    results = await asyncio.gather(*[
        services_part.run(s, resolved.targets[s],
                          sessions_part.with_key(
                              _restoring(credentials_part.slice_for(plan, s, name, namespace, tenant, suspended, uid=uid),
                                         s, name, tenant),
                              session_policy if s == "vault" else None), logger,
                          adopt_retained=tenant.adopt_retained_data,
                          owner_of=lambda u: first_stored(live, u) if u != uid else name)
        for s in ready
    ])
    # Writes a rotation (or the end of its overlap) makes are the rotation's, not drift.
    rotating = plan.staged and plan.state.reason in credentials_part.ROTATIONS or plan.closing
    for service, (part, report) in zip(ready, results, strict=True):
        outcome.parts.append(part)
        outcome.adopted += report.adopted
        # Re-marking adopted data was asked for in the spec: not drift. Neither is what a rotation
        # changes (passwords, a slot's LOGIN); anything else put back in the same pass is.
        kept = [r for r in report.repaired if not (report.adopted and r.startswith("ownership mark"))
                and not (rotating and r in report.credential_writes)]
        outcome.repaired += kept
        outcome.diffs.update({r: report.diffs[r] for r in kept if r in report.diffs})
        if part.ok or report.refused:  # a refusal leaves the service working: its part says what a person runs
            reports[service] = report
            if service == "postgres":
                metrics.record_database_size(name, report.database_bytes)
    vault_part = next((p for p in outcome.parts if p.condition == services_part.SERVICES["vault"]), None)
    sessions = await sessions_part.converge(name, uid, namespace, tenant, session_policy, session_problem,
                                            reports.get("vault"), vault_part)
    outcome.parts += sessions.parts
    outcome.repaired += sessions.repaired
    outcome.rotation_events += sessions.rotated
    outcome.notes += sessions.policy_changed
    if credentials_failed:
        outcome.parts.append(credentials_failed)
        return
    working = {services_part.SERVICES[s] for s in reports}
    failing = [p for p in outcome.parts if not p.ok and p.condition in services_part.SERVICES.values()
               and p.condition not in working]
    if failing:
        # Waiting on parts that are all Stalled is itself stalled: no retry loop until something changes.
        outcome.parts.append(PartResult(credentials_part.CONDITION, False, "WaitingForBackends",
                                        f"credentials wait for {', '.join(p.condition for p in failing)}",
                                        stalled=all(p.stalled for p in failing)))
        return
    if ((await kube.get("Tenant", name)) or {}).get("status", {}).get("migration"):
        return  # a migration took the hold during this pass: the Secret is its now (see _held_services)
    published = await credentials_part.publish(name, uid, namespace, plan, reports, tenant, known)
    outcome.parts.append(published.part)
    outcome.repaired += published.repaired
    outcome.rotated = published.rotated
    outcome.rotation_events += published.events
    outcome.status["credentials"] = published.status
    data = {k: v for r in reports.values() for k, v in r.endpoints.items()}
    outcome.status["endpoints"] = credentials_part.public_endpoints(data)
    if tenant.credentials.restart_workloads:
        rolled = [f"rolled {w}" for w in await workloads.roll(namespace, plan.state.version)]
        if plan.staged and rolled:
            outcome.rotation_events = [m + "; " + ", ".join(rolled) for m in outcome.rotation_events]
        elif not plan.staged:
            outcome.repaired += rolled


async def record(name: str, unrecorded: dict[str, Any]) -> None:
    """Write the status fields still in `unrecorded` (a new placement, a creation's Reconciling mark)
    and empty it."""
    if unrecorded:
        await kube.merge_patch("Tenant", name, None, {"status": dict(unrecorded)}, "status")
        unrecorded.clear()


def _restoring(want: TenantSlice, service: str, name: str, tenant: TenantSpec) -> TenantSlice:
    # A restore into a name held by a deleted tenant's archives hands their key on (handlers/name_held.py).
    return name_held.with_restore(want, name, tenant) if service == "vault" else want


async def _held_services(name: str, uid: str, namespace: str, tenant: TenantSpec, services: list[str],
                         resolved: services_part.Resolved, status: kopf.Status, outcome: Outcome,
                         logger: logging.Logger) -> None:
    """The services a migration does not hold, with the passwords they have (no rotation, no publish)."""
    plan = credentials_part.unknown(status.get("credentials"), tenant)
    suspended = tenant.state != "Active"
    for service in [s for s in services if s in resolved.targets]:
        part, report = await services_part.run(
            service, resolved.targets[service],
            credentials_part.slice_for(plan, service, name, namespace, tenant, suspended, uid=uid), logger,
            adopt_retained=tenant.adopt_retained_data)
        outcome.parts.append(part)
        outcome.repaired += report.repaired
