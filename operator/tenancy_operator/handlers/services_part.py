"""Service parts (DatabaseReady, CacheReady, VaultReady, DocumentStoreReady): placement, then each adapter's ensure.

Every enabled service runs even when another fails; a backend that is down trips its circuit and
only its own part reports Degraded, naming the backend.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..api.conditions import Reason
from ..api.tenant import TenantSpec
from ..backends import circuit, registry
from ..backends.base import (
    AdminPrivilegeMissing,
    BackendRefused,
    BackendUnavailable,
    NameHeldByArchives,
    OwnedByAnotherTenant,
    Report,
    Target,
    TenantSlice,
)
from ..observability import metrics
from ..reconcile import placement
from ..reconcile.status import PartResult
from . import name_held
from .targets import TargetError, target_for

__all__ = ["SERVICES", "enabled_services", "Resolved", "resolve", "run", "owned_elsewhere"]

# service -> the condition it owns
SERVICES = {"postgres": "DatabaseReady", "redis": "CacheReady", "search": "SearchReady", "vault": "VaultReady",
            "mongodb": "DocumentStoreReady"}


def enabled_services(spec: TenantSpec) -> list[str]:
    return [s for s in SERVICES if getattr(spec, s).enabled]


@dataclass
class Resolved:
    """Where each enabled service goes, and the parts that could not be placed."""

    targets: dict[str, Target] = field(default_factory=dict)
    placement: dict[str, str] = field(default_factory=dict)
    problems: dict[str, PartResult] = field(default_factory=dict)


def _candidate(name: str, b: dict[str, Any], counts: dict[tuple[str, str], int]) -> placement.Candidate:
    return placement.candidate(name, b, counts.get(((b.get("spec") or {}).get("type", ""), name), 0))


def _candidates(backends: dict[str, dict[str, Any]], counts: dict[tuple[str, str], int]) -> list[placement.Candidate]:
    return [_candidate(name, b, counts) for name, b in backends.items()]


async def resolve(spec: TenantSpec, placed: dict[str, str], backends: dict[str, dict[str, Any]],
                  counts: dict[tuple[str, str], int]) -> Resolved:
    result = Resolved()
    for service in enabled_services(spec):
        condition = SERVICES[service]
        asked = getattr(spec, service).backend
        name = asked or placed.get(service)
        if not name:
            try:
                name = placement.choose(service, _candidates(backends, counts))
            except placement.NoBackend as exc:
                result.problems[service] = PartResult(condition, False, Reason.NO_BACKEND, str(exc), stalled=True)
                continue
        backend = backends.get(name)
        if backend is None:
            result.problems[service] = PartResult(condition, False, "BackendNotFound",
                                                  f"Backend {name} does not exist; create it or name another",
                                                  stalled=True)
            continue
        if backend.get("spec", {}).get("type") != service:
            result.problems[service] = PartResult(
                condition, False, "BackendTypeMismatch",
                f"Backend {name} is of type {backend.get('spec', {}).get('type')}, not {service}", stalled=True)
            continue
        refused = placement.refusal(_candidate(name, backend, counts)) if asked and not placed.get(service) else None
        if refused is not None:  # a new placement on a named Backend: paused or full takes no new tenant
            reason, message = refused
            result.problems[service] = PartResult(
                condition, False, reason, f"{message}, or name another Backend in spec.{service}.backend (or none, "
                "to have one chosen)", stalled=True)
            continue
        result.placement[service] = name
        try:
            result.targets[service] = await target_for(backend)
        except TargetError as exc:
            result.problems[service] = PartResult(condition, False, "AdminSecretMissing", str(exc), stalled=True)
    return result


def owned_elsewhere(exc: OwnedByAnotherTenant, tenant: str, owner: str | None) -> str:
    """What the Stalled condition says: whose the objects are, and what a person can do."""
    what = f"{', '.join(exc.objects)} on {exc.backend}"
    if owner is not None:
        return (f"{what} belong to Tenant {owner} (uid {exc.owner_uid}) and are never taken over; "
                f"give this tenant another name, or delete Tenant {owner} and its data first")
    return (f"{what} are data retained from a deleted tenant (uid {exc.owner_uid}), a previous Tenant named "
            f"{tenant}; set spec.adoptRetainedData: true to re-attach that data to this Tenant, or have an "
            "administrator remove it from the backend")


async def run(service: str, target: Target, want: TenantSlice, logger: logging.Logger, *,
              adopt_retained: bool = False, owner_of: Callable[[str], str | None] = lambda uid: None,
              ) -> tuple[PartResult, Report]:
    """Ensure one service through its circuit breaker; never raises for backend trouble or bad names.

    `owner_of` maps a UID to the live Tenant's name (None: deleted). Objects marked by a deleted
    Tenant are re-attached only with `adopt_retained` (spec.adoptRetainedData); a live one's never.
    """
    condition = SERVICES[service]
    adapter = registry.adapter(service)
    breaker = circuit.breaker_for(target.name)
    report = Report()
    with metrics.backend_call(target.name, service, "ensure") as call:
        try:
            breaker.check()
            while True:  # once more for each deleted tenant whose mark turns up (each UID once: it ends)
                try:
                    report = await adapter.ensure(target, want)
                    break
                except OwnedByAnotherTenant as exc:
                    owner = owner_of(exc.owner_uid)
                    if owner is not None or not adopt_retained or exc.owner_uid in want.adopt_uids:
                        raise
                    want = dataclasses.replace(want, adopt_uids=want.adopt_uids | {exc.owner_uid})
        except OwnedByAnotherTenant as exc:
            call.fail("owned")
            return PartResult(condition, False, Reason.OWNED_BY_ANOTHER_TENANT,
                              owned_elsewhere(exc, want.tenant, owner_of(exc.owner_uid)), stalled=True), report
        except NameHeldByArchives as exc:
            call.fail("owned")  # the key is another (deleted) Tenant's
            return PartResult(condition, False, name_held.REASON, name_held.message(exc, want.tenant), stalled=True), report
        except AdminPrivilegeMissing as exc:  # the message says what a person with more rights runs
            call.fail("refused")
            return PartResult(condition, False, "InsufficientPrivilege", str(exc), stalled=True), report
        except ValueError as exc:  # a name or value the backend's rules refuse: retrying cannot help
            call.fail("invalid")
            return PartResult(condition, False, Reason.INVALID_SPEC, str(exc), stalled=True), report
        except circuit.CircuitOpen as exc:
            call.fail("circuit_open")
            return PartResult(condition, False, Reason.BACKEND_UNAVAILABLE, str(exc), outage=True), report
        except BackendUnavailable as exc:
            call.fail("unavailable")
            breaker.failure(str(exc))
            logger.warning("%s", exc, extra={"backend": target.name})
            return PartResult(condition, False, Reason.BACKEND_UNAVAILABLE,
                              f"backend {target.name} is unavailable: {exc}", outage=True), report
        except BackendRefused as exc:
            call.fail("refused")
            return PartResult(condition, False, "BackendRefused", str(exc)), report
        except Exception as exc:  # noqa: BLE001 - one adapter's bug must not stop the other parts
            call.fail("unexpected")
            logger.exception("%s adapter failed", service, extra={"backend": target.name})
            return PartResult(condition, False, "UnexpectedError", f"{type(exc).__name__}: {exc}"), report
    breaker.success()
    state = "suspended on" if want.suspended else "ready on"
    message = f"{service} {state} {target.name}" + (f" ({report.version})" if report.version else "")
    if report.refused:  # the writes it made count (drift, audit); what is left needs a person
        return PartResult(condition, False, "InsufficientPrivilege", f"{message}; {report.refused}",
                          stalled=True), report
    if report.limit and not want.suspended:  # the service works; growing it is refused
        return PartResult(condition, True, Reason.LIMIT_REACHED,
                          f"{message}; {report.limit}"), report
    return PartResult(condition, True, Reason.SUSPENDED if want.suspended else Reason.SUCCEEDED, message), report


async def close_disabled(tenant: str, placed: dict[str, str], enabled: list[str],
                         backends: dict[str, dict[str, Any]], logger: logging.Logger) -> tuple[list[str], list[PartResult]]:
    """Services the tenant was placed on but no longer enables: keep their data, close their doors.

    Turning `enabled` off must not leave a login working with the password the tenant already holds.
    Each adapter's `close` reads first, so a closed service costs reads only. Returns (what was closed,
    failing parts); a backend that is gone has nothing left to close.
    """
    closed: list[str] = []
    problems: list[PartResult] = []
    for service, backend_name in sorted(placed.items()):
        if service in enabled or service not in SERVICES or backend_name not in backends:
            continue
        try:
            target = await target_for(backends[backend_name])
            circuit.breaker_for(backend_name).check()
            done = await registry.adapter(service).close(target, tenant)
        except (TargetError, BackendRefused, BackendUnavailable, circuit.CircuitOpen) as exc:
            logger.warning("closing disabled %s on %s: %s", service, backend_name, exc, extra={"backend": backend_name})
            problems.append(PartResult(SERVICES[service], False, "CloseFailed",
                                       f"{service} is disabled but its doors on {backend_name} could not be closed "
                                       f"yet: {exc}"))
            continue
        closed += [f"{service} on {backend_name}: {d}" for d in done]
    return closed, problems
