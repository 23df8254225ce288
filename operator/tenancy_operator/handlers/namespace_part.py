"""The NamespaceReady part: namespace, quota, limits, network policy, ServiceAccount and owners' RBAC."""

from __future__ import annotations

import logging

from ..api import names
from ..api.conditions import Reason
from ..api.tenant import TenantSpec
from ..backends import kube
from ..observability import metrics
from ..reconcile import diff, ownership
from ..reconcile import namespace as desired_ns
from ..reconcile.status import PartResult
from . import apply, config

__all__ = ["ensure", "remove", "CONDITION"]

CONDITION = "NamespaceReady"


async def ensure(tenant: str, uid: str, spec: TenantSpec, logger: logging.Logger) -> tuple[PartResult, list[diff.Step]]:
    ns = names.namespace(tenant)
    live_ns = await kube.get("Namespace", ns)
    owner = ownership.classify(live_ns, tenant, spec.adopt_namespace, uid)
    if owner is ownership.Ownership.FOREIGN:
        assert live_ns is not None
        return PartResult(CONDITION, False, Reason.NAMESPACE_CONFLICT,
                          ownership.conflict_message(ns, live_ns, tenant), stalled=True), []
    if owner is ownership.Ownership.TERMINATING:
        return PartResult(CONDITION, False, Reason.PROGRESSING,
                          f"namespace {ns} is still being deleted; waiting to create it again"), []

    cfg = config.load()
    identity = (desired_ns.OperatorIdentity(cfg.operator_namespace, cfg.service_account, cfg.tenant_secrets_role)
                if cfg.tenant_secrets_role and cfg.service_account else None)
    desired = desired_ns.desired_objects(tenant, uid, spec, identity)
    observed: dict[tuple[str, str], dict | None] = {("Namespace", ns): live_ns}
    prune = []
    if live_ns is not None:
        for obj in desired[1:]:
            key = (obj["kind"], obj["metadata"]["name"])
            observed[key] = await kube.get(obj["kind"], key[1], ns)
        wanted = {(o["kind"], o["metadata"]["name"]) for o in desired}
        if ("RoleBinding", desired_ns.OWNERS_BINDING) not in wanted:
            stale = await kube.get("RoleBinding", desired_ns.OWNERS_BINDING, ns)
            if stale is not None:
                stale.setdefault("kind", "RoleBinding")
                prune.append(stale)
    plan = diff.plan(desired, observed, prune)
    quota = next((o for (kind, _), o in observed.items() if kind == "ResourceQuota" and o), None)
    metrics.record_quota(tenant, (quota or {}).get("status"))
    written = await apply.execute(plan, logger)
    message = f"namespace {ns} with quota, limits, network policy and RBAC"
    left_out = desired_ns.system_wide_owners(spec)
    if left_out:  # only a Tenant stored before the CRD refused them
        message += (f"; spec.owners {', '.join(left_out)} left out of the owners' RoleBinding (a system: name "
                    "stands for every identity or workload, other tenants' included): remove it from spec.owners")
    return PartResult(CONDITION, True, Reason.SUCCEEDED, message), written


async def remove(tenant: str, logger: logging.Logger) -> bool:
    """Delete the tenant namespace if it is ours; the controller manager empties it. True if gone."""
    ns = names.namespace(tenant)
    live = await kube.get("Namespace", ns)
    if live is None:
        return True
    if ownership.classify(live, tenant, adopt=False) is ownership.Ownership.FOREIGN:
        logger.warning("namespace %s is not ours; leaving it", ns)
        return True
    if not live.get("metadata", {}).get("deletionTimestamp"):
        await kube.delete("Namespace", ns)
        logger.info("deleting namespace %s", ns)
    return False
