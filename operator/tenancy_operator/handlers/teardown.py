"""Deleting a tenant's backend data as its LifecyclePolicy says: Retain keeps it and closes every door,
Delete deletes, Archive exports a verified archive (handlers/archive_part.py) and then deletes,
keeping the transit key that wraps the archive's data key.

Two guards sit in front of the policy. A protected tenant (its own spec.deletionProtection or its
LifecyclePolicy's, both re-read here) never loses data, even when a delete got past the admission
policy: it is retained, with a Warning. And a deletion never waits for ever on a Backend that will
not come back: a person can abandon that Backend's data (labels.ABANDON_DATA on the Tenant,
labels.ABANDON_BACKEND_DATA on the Backend), which leaves it there and forgets it, with a Warning
naming what was left where. A deletion that cannot finish raises `Blocked`, which the delete handler
turns into status and an Event at once.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api import names
from ..api.conditions import Reason
from ..backends import circuit, kube, registry
from ..backends.base import BackendRefused, BackendUnavailable, OwnedByAnotherTenant
from ..reconcile import labels
from . import archive_part, events
from .targets import TargetError, target_for

__all__ = ["Blocked", "Policy", "reclaim_policy", "abandoned", "left_behind", "backends"]


class Blocked(Exception):
    """The deletion cannot finish now. `reason` is CamelCase; `message` names what blocks it and what
    a person can do; `needs_person` means retrying alone will not help (Stalled)."""

    def __init__(self, reason: str, message: str, needs_person: bool, delay: float) -> None:
        super().__init__(message)
        self.reason, self.message, self.needs_person, self.delay = reason, message, needs_person, delay


class Policy:
    """The LifecyclePolicy as the teardown reads it, fresh from the API server."""

    def __init__(self, reclaim: str, protected: bool, ref: str | None) -> None:
        self.reclaim, self.protected, self.ref = reclaim, protected, ref


async def reclaim_policy(body: kopf.Body) -> Policy:
    ref = (body.spec or {}).get("lifecyclePolicyRef")
    if not ref:
        return Policy("Retain", False, None)
    policy = await kube.get("LifecyclePolicy", ref)
    if policy is None:
        events.post(body, type="Warning", reason="LifecyclePolicyMissing",
                    message=f"LifecyclePolicy {ref} not found; retaining backend data")
        return Policy("Retain", False, ref)
    spec = policy.get("spec") or {}
    return Policy(spec.get("reclaim", "Retain"), bool(spec.get("deletionProtection")), ref)


def abandoned(tenant: kopf.Body | dict[str, Any], backend: dict[str, Any]) -> bool:
    """Has a person asked to leave this tenant's data on this Backend behind?"""
    backend_name = backend["metadata"]["name"]
    wanted = ((tenant.get("metadata") or {}).get("annotations") or {}).get(labels.ABANDON_DATA, "")
    if backend_name in {n.strip() for n in wanted.split(",")}:
        return True
    return ((backend["metadata"].get("annotations") or {}).get(labels.ABANDON_BACKEND_DATA) == "true")


def left_behind(service: str, tenant: str) -> str:
    """What a tenant's data on one service is called on the server, for the Event that abandons it."""
    if service == "postgres":
        return (f"database {names.pg_database(tenant)}, roles {names.pg_owner_role(tenant)}, "
                f"{names.pg_login_role(tenant, 'a')}, {names.pg_login_role(tenant, 'b')}")
    if service == "redis":
        return f"ACL user {names.redis_user(tenant)}, keys {names.redis_prefix(tenant)}*"
    if service == "search":
        return (f"indices {names.search_prefix(tenant)}*, index template, role, role mapping and users "
                f"tenant-{tenant}*")
    if service == "mongodb":
        return (f"database {names.mongo_database(tenant)}, roles {names.mongo_owner_role(tenant)}, "
                f"{names.mongo_login_role(tenant, 'a')}, {names.mongo_login_role(tenant, 'b')}")
    if service == "vault":
        return f"transit key {names.vault_key(tenant)}, login role {names.vault_policy(tenant)}, KV {names.vault_kv_path(tenant)}"
    return f"{service} data of {tenant}"


def _remedy(tenant: str, backend_name: str) -> str:
    return (f"to leave this tenant's data there and finish the deletion: kubectl annotate tenant {tenant} "
            f"{labels.ABANDON_DATA}={backend_name} (or, for every tenant on it: kubectl annotate backend "
            f"{backend_name} {labels.ABANDON_BACKEND_DATA}=true)")


async def backends(body: kopf.Body, placement: dict[str, str], known: dict[str, dict[str, Any]],
                   logger: logging.Logger) -> None:
    """Apply the reclaim policy to each placed service. Raises Blocked when any cannot finish."""
    policy = await reclaim_policy(body)
    reclaim = policy.reclaim
    name = body.metadata["name"]
    own = bool((body.spec or {}).get("deletionProtection"))
    if (own or policy.protected) and reclaim != "Retain":
        by = "its spec.deletionProtection" if own else f"LifecyclePolicy {policy.ref} (deletionProtection)"
        events.post(body, type="Warning", reason="DeletionProtected",
                    message=f"Tenant {name} is protected by {by} but was deleted (was the admission policy "
                           f"bypassed?); reclaim {reclaim} overridden: backend data is retained")
        reclaim = "Retain"
    if archive_part.released(body.status) and reclaim != "Archive":
        # An Archived tenant's live data is already released into its archive (offboard ends so): nothing
        # is left to retain or delete but what the release keeps; Archive reuses that archive.
        reclaim = "Archive"
    archived = reclaim == "Archive"
    if archived:
        # Export first (doors closed, verified), then delete as Delete does, keeping the transit key
        # that wraps the archive's data key. An archive that cannot be made keeps the deletion waiting.
        try:
            await archive_part.archive_for_delete(body, placement, known, logger)
        except archive_part.ArchiveError as exc:
            raise Blocked(exc.reason, f"{exc.message}; the deletion waits for the archive (or set the "
                                      "LifecyclePolicy's reclaim to Retain or Delete)", exc.needs_person,
                          30 if exc.needs_person else 10) from exc
        reclaim = "Delete"
    # The transit key wraps every archive of this tenant (an earlier state Archived too): it goes with
    # the last archive it wraps (the retention purge), never before. A kept key stays recorded as this
    # Tenant's, so a new Tenant of the same name never gets it (backends/vault_keys.py).
    keep_key = archived or archive_part.has_archives(name, body.metadata["uid"])
    retain = reclaim == "Retain"
    verb = "close" if retain else "delete"
    blocked: list[Blocked] = []
    closed: list[str] = []
    for service, backend_name in sorted(placement.items()):
        adapter = registry.adapter(service)
        backend = known.get(backend_name)
        if adapter is None or backend is None:
            events.post(body, type="Warning", reason="BackendGone",
                        message=f"Backend {backend_name} no longer exists; {service} data of {name} left in place")
            continue
        if abandoned(body, backend):
            events.post(body, type="Warning", reason="DataAbandoned",
                        message=f"left on Backend {backend_name}, no longer managed: {left_behind(service, name)}")
            continue
        terminating = bool(backend["metadata"].get("deletionTimestamp"))
        try:
            target = await target_for(backend)
            circuit.breaker_for(backend_name).check()
            # Retain keeps every byte but nobody logs in any more (the adapters' `close`); a door
            # that cannot be closed keeps the deletion waiting, or it would stay open unwatched.
            extra = {"keep_transit_key": True} if service == "vault" and keep_key else {}
            done = await (adapter.close(target, name) if retain else adapter.delete(target, name, body.metadata["uid"], **extra))
        except OwnedByAnotherTenant as exc:
            # Another tenant's (or a deleted one's retained) data under this name: never ours to drop.
            events.post(body, type="Warning", reason=Reason.OWNED_BY_ANOTHER_TENANT,
                        message=f"{exc}; not this tenant's, left in place")
            continue
        except (TargetError, BackendRefused) as exc:
            blocked.append(Blocked("DeletionRefused", f"cannot {verb} {service} of {name} on Backend {backend_name}: "
                                   f"{exc}; fix that, or {_remedy(name, backend_name)}", True, 30))
            continue
        except (BackendUnavailable, circuit.CircuitOpen) as exc:
            # The message stays the same from retry to retry (the error text varies; the Backend's own
            # Ready condition carries it), so status and Events are written once, not every retry.
            logger.warning("%s %s data on %s: %s", verb, service, backend_name, exc)
            state = "terminating and unreachable" if terminating else "unreachable"
            blocked.append(Blocked(
                "BackendUnavailable",
                f"Backend {backend_name} is {state} (its Ready condition says why); the deletion ({verb} "
                f"{service}) waits for it; " + _remedy(name, backend_name), terminating, 10))
            continue
        except Exception as exc:  # noqa: BLE001 - one service's surprise must not leave the others' doors open
            logger.exception("%s %s data on %s failed", verb, service, backend_name)
            blocked.append(Blocked("DeletionFailed", f"cannot {verb} {service} of {name} on Backend {backend_name}: "
                                   f"{type(exc).__name__}: {exc}; see the operator log, or {_remedy(name, backend_name)}",
                                   True, 30))
            continue
        if retain:
            closed.append(f"{service} on {backend_name}" + (f" ({', '.join(done)})" if done else " (already closed)"))
        elif done:
            logger.info("deleted from %s: %s", backend_name, ", ".join(done))
            events.post(body, type="Normal", reason="Deleted", message=f"{backend_name}: " + ", ".join(done))
    if closed:
        logger.info("retained and closed: %s", "; ".join(closed))
        events.post(body, type="Normal", reason="Retained",
                    message="backend data retained, doors closed: " + "; ".join(closed))
    if blocked:
        needs_person = any(b.needs_person for b in blocked)
        first = next(b for b in blocked if b.needs_person == needs_person)
        raise Blocked(first.reason, "; ".join(b.message for b in blocked), needs_person, min(b.delay for b in blocked))
