"""Deleting a tenant's backend data as its LifecyclePolicy says: Retain forgets, Delete deletes.

Archive (export, then delete) is not built yet: it is refused with a clear Event and treated as
Retain, so nothing is ever lost by a policy the operator cannot carry out.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api.conditions import Reason
from ..backends import circuit, kube, registry
from ..backends.base import BackendRefused, BackendUnavailable, OwnedByAnotherTenant
from .targets import TargetError, target_for

__all__ = ["reclaim_policy", "backends"]


async def reclaim_policy(body: kopf.Body) -> str:
    ref = (body.spec or {}).get("lifecyclePolicyRef")
    if not ref:
        return "Retain"
    policy = await kube.get("LifecyclePolicy", ref)
    if policy is None:
        kopf.event(body, type="Warning", reason="LifecyclePolicyMissing",
                   message=f"LifecyclePolicy {ref} not found; retaining backend data")
        return "Retain"
    return (policy.get("spec") or {}).get("reclaim", "Retain")


async def backends(body: kopf.Body, placement: dict[str, str], known: dict[str, dict[str, Any]],
                   logger: logging.Logger) -> None:
    reclaim = await reclaim_policy(body)
    name = body.metadata["name"]
    if reclaim == "Archive":
        kopf.event(body, type="Warning", reason="ArchiveNotSupported",
                   message="reclaim Archive is not supported yet; backend data is retained")
        reclaim = "Retain"
    if reclaim == "Retain":
        if placement:
            kopf.event(body, type="Normal", reason="Retained",
                       message="backend data retained: " + ", ".join(f"{s} on {b}" for s, b in placement.items()))
        return
    for service, backend_name in sorted(placement.items()):
        adapter = registry.adapter(service)
        backend = known.get(backend_name)
        if adapter is None or backend is None:
            kopf.event(body, type="Warning", reason="BackendGone",
                       message=f"Backend {backend_name} no longer exists; {service} data of {name} left in place")
            continue
        try:
            target = await target_for(backend)
            circuit.breaker_for(backend_name).check()
            done = await adapter.delete(target, name, body.metadata["uid"])
        except OwnedByAnotherTenant as exc:
            # Another tenant's (or a deleted one's retained) data under this name: never ours to drop.
            kopf.event(body, type="Warning", reason=Reason.OWNED_BY_ANOTHER_TENANT,
                       message=f"{exc}; not this tenant's, left in place")
            continue
        except (TargetError, BackendRefused) as exc:
            raise kopf.TemporaryError(f"cannot delete {service} data on {backend_name}: {exc}", delay=30) from exc
        except (BackendUnavailable, circuit.CircuitOpen) as exc:
            raise kopf.TemporaryError(f"waiting for {backend_name} to delete {service} data: {exc}", delay=10) from exc
        if done:
            logger.info("deleted from %s: %s", backend_name, ", ".join(done))
            kopf.event(body, type="Normal", reason="Deleted", message=f"{backend_name}: " + ", ".join(done))
