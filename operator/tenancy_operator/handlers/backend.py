"""Backend handlers: health of each backing service instance, and the indexes placement reads.

A probe runs on every change and on a timer. Status is written only when it changes (health,
version or the count of placed tenants), so a healthy fleet of Backends writes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api import conditions as cond
from ..api.common import GROUP, VERSION
from ..api.tenant import PLACED_SERVICES
from ..backends import circuit, kube, registry
from ..backends.base import (
    AdminPrivilegeMissing,
    BackendRefused,
    BackendUnavailable,
    ServerReport,
    Target,
    UnsafeServerConfig,
)
from ..observability import logs, metrics
from ..reconcile import labels
from . import config, events, sharding
from .targets import TargetError, target_for

__all__ = ["backends_by_name", "placements", "tenants_by_uid", "probe"]

CFG = config.load()
metrics.watch_circuits(lambda: [(b.name, b.open, b.failures) for b in circuit.breakers()])


@kopf.index(GROUP, VERSION, "backends")
def backends_by_name(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {name: {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}}


@kopf.index(GROUP, VERSION, "tenants")
def placements(name: str, status: kopf.Status, **_: Any) -> dict[str, str]:
    placed = status.get("placement") or {}
    return {(service, placed[service]): name for service in PLACED_SERVICES if placed.get(service)}


@kopf.index(GROUP, VERSION, "tenants")
def tenants_by_uid(name: str, uid: str, **_: Any) -> dict[str, str]:
    """Which live Tenant an ownership mark's UID names (absent: a deleted tenant's retained data)."""
    return {uid: name}


async def _probe(body: kopf.Body, logger: logging.Logger, placements: kopf.Index, **_: Any) -> None:
    name, generation = body.metadata["name"], body.metadata.get("generation", 1)
    spec, status = body.spec, body.status
    btype = spec.get("type", "")
    await registry.preload(btype)
    adapter = registry.adapter(btype)
    breaker = circuit.breaker_for(name)
    version = status.get("serverVersion")
    server = None
    if adapter is None:
        # Every type the schema allows has an adapter; an object stored by a newer API version may not.
        ok, reason = False, cond.Reason.NOT_IMPLEMENTED
        message = f"type {btype}: this operator version has no adapter for it, no tenant is placed here"
    else:
        try:
            target = await target_for({"metadata": dict(body.metadata), "spec": dict(spec)})
            with metrics.backend_call(name, btype, "probe") as call:
                try:
                    version = await adapter.probe(target)
                except BackendRefused:
                    call.fail("refused")
                    raise
                except BackendUnavailable:
                    call.fail("unavailable")
                    raise
            metrics.BACKEND_PROBE_SECONDS.labels(name, btype).set(call.seconds)
            breaker.success()
            ok, reason, message = True, "Reachable", f"{btype} {version} at {target.host}:{target.port}"
            if hasattr(adapter, "ensure_server"):
                server = await _ensure_server(adapter, target, dict(spec.get(btype) or {}), logger)
        except TargetError as exc:
            ok, reason, message = False, "AdminSecretMissing", str(exc)
        except UnsafeServerConfig as exc:  # placement needs Ready: no tenant is placed on an unsafe server
            ok, reason, message = False, "UnsafeServerConfig", str(exc)
        except AdminPrivilegeMissing as exc:  # the admin logs in but may not do what tenants need
            ok, reason, message = False, "InsufficientPrivilege", str(exc)
        except BackendRefused as exc:  # wrong admin credentials, an untrusted certificate: name the Secret
            secret = (spec.get("adminSecretRef") or {}).get("name", "")
            ok, reason, message = False, "Refused", f"{exc} (admin Secret {CFG.operator_namespace}/{secret})"
        except BackendUnavailable as exc:
            breaker.failure(str(exc))
            ok, reason, message = False, cond.Reason.BACKEND_UNAVAILABLE, str(exc)
    metrics.record_backend(name, btype, ok)
    placed = len(placements.get((btype, name), []))
    conditions = [dict(c) for c in status.get("conditions", [])]
    ready_news = cond.set_condition_for_event(conditions, cond.READY, cond.TRUE if ok else cond.FALSE, reason, message,
                                              generation)
    # Stalled only for what waiting cannot fix; written once there is something to say, so Backends
    # of built types keep the status they had.
    not_built = adapter is None
    if not_built or cond.get_condition(conditions, cond.STALLED) is not None:
        cond.set_condition(conditions, cond.STALLED, cond.TRUE if not_built else cond.FALSE,
                           reason if not_built else cond.Reason.SUCCEEDED, message if not_built else "", generation)
    phase = "Ready" if ok else "Stalled" if not_built else "Unavailable"
    if server is not None and cond.set_condition_for_event(conditions, server.condition,
                                                           cond.TRUE if server.ok else cond.FALSE,
                                                           server.reason, server.message, generation):
        events.post(body, type="Normal" if server.ok or server.reason == "NotRequested" else "Warning",
                    reason=server.reason, message=f"{server.condition}={server.ok}: {server.message}")
    wanted = {"observedGeneration": generation, "phase": phase, "conditions": conditions,
              "serverVersion": version, "tenantsPlaced": placed}
    if any(status.get(k) != v for k, v in wanted.items()):
        wanted["lastCheckedAt"] = cond.now_iso()
        await kube.merge_patch("Backend", name, None, {"status": wanted}, "status")
    if ready_news:
        events.post(body, type="Normal" if ok else "Warning", reason=reason, message=f"Ready={ok}: {message}")
    if not ok and not not_built:
        logger.warning("backend %s: %s", name, message)


async def _ensure_server(adapter: Any, target: Target, settings: dict[str, Any], logger: logging.Logger) -> ServerReport:
    """Server-wide hardening the spec asks for; trouble there is a condition, never a failed Backend."""
    try:
        report = await adapter.ensure_server(target, settings)
    except (BackendRefused, BackendUnavailable) as exc:
        return ServerReport(adapter.SERVER_CONDITION, False, "Refused", str(exc))
    if report.repaired:
        logger.info("backend %s: restricted %s", target.name, ", ".join(report.repaired))
    return report


@kopf.on.resume(GROUP, VERSION, "backends", when=sharding.leads)
@kopf.on.create(GROUP, VERSION, "backends", when=sharding.leads)
@kopf.on.update(GROUP, VERSION, "backends", when=sharding.leads)
async def changed(**kwargs: Any) -> None:
    with metrics.handler_run("backend"), logs.reconcile_scope():
        await _probe(**kwargs)


@kopf.timer(GROUP, VERSION, "backends", interval=max(2.0, CFG.verify_interval / 2), when=sharding.leads)
async def probe(**kwargs: Any) -> None:
    with metrics.handler_run("backend-probe"), logs.reconcile_scope():
        await _probe(**kwargs)


@kopf.on.delete(GROUP, VERSION, "backends", backoff=10, when=sharding.leads)
async def deleted(body: kopf.Body, placements: kopf.Index, logger: logging.Logger, **_: Any) -> None:
    """A Backend that still holds tenants is not deleted: their data would be orphaned unseen.

    While it waits it keeps probing (kopf stops timers once deletion is requested), so its status
    stays true: reachable or not, and how many tenants are still placed on it.
    """
    await _probe(body=body, logger=logger, placements=placements)
    name, btype = body.metadata["name"], body.spec.get("type", "")
    tenants = sorted(placements.get((btype, name), []))
    if tenants:
        shown = ", ".join(tenants[:10]) + (f" and {len(tenants) - 10} more" if len(tenants) > 10 else "")
        message = (f"Backend {name} still holds {len(tenants)} tenant(s): {shown}; the deletion waits until they "
                   f"are gone: delete them (kubectl delete tenant NAME; reclaim Delete removes their data here "
                   f"first), or, if this server is gone for good, leave their data behind with kubectl annotate "
                   f"backend {name} {labels.ABANDON_BACKEND_DATA}=true")
        events.post(body, type="Warning", reason="TenantsPlaced", message=message)
        raise kopf.TemporaryError(message, delay=10)
    metrics.forget_backend(name, btype)
    logger.info("backend %s released", name)
